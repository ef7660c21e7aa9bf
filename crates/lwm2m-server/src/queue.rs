//! Queue mode, server side (digest §4.4): requests to a sleeping client are held and sent one at a time once
//! it is awake.
//!
//! A queue-mode client is *awake* from any message it sends (Register, Update, Send, a notification, a
//! response) until `awake_time` (93 s, MAX_TRANSMIT_WAIT) after the last one, and when a request to it times
//! out it is considered asleep at once. This module holds the per-endpoint state; the server drives it and
//! turns its outcomes into events, timers and the flush task.
//!
//! Each held request is a *waiter*: the caller's task waits (with the request's own deadline) for a
//! permit; while it holds the permit it sends its request; dropping the permit lets the next waiter go.
//! A waiter whose deadline passes leaves the queue and fails with `ClientSleeping`.
//!
//! With a persistent store each held request also has a [`QueuedRequest`] record (written when it is
//! queued, removed when it is sent, cancelled or expires). A restarted server puts the records back into
//! the queue as *detached* requests: the server's own task is their waiter, sends them when the client
//! wakes and reports the outcome as `Event::QueuedRequestDone`.

use std::collections::{HashMap, VecDeque};

use lwm2m_core::format::ContentFormat;
use lwm2m_core::Path;
use tokio::sync::oneshot;

use crate::registry::RegistrationId;
use crate::request::Request;

/// A request held for a sleeping queue-mode client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRequestInfo {
    /// Its id in the queue.
    pub id: u64,
    /// The client.
    pub endpoint: String,
    /// The operation name (`Read`, `Write-Replace`, ...).
    pub operation: &'static str,
    /// The target paths.
    pub paths: Vec<Path>,
    /// When it was queued (ms since the Unix epoch).
    pub queued_at_ms: u64,
    /// When it fails unless sent (ms since the Unix epoch).
    pub deadline_ms: u64,
}

/// A held request as persisted (see [`crate::store::encode_queued_request`]): enough to send it after a
/// restart of the server.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedRequest {
    /// Its id in the queue (the record's key; ids grow in queue order).
    pub id: u64,
    /// The client.
    pub endpoint: String,
    /// The registration it was queued for.
    pub registration_id: RegistrationId,
    /// The request.
    pub request: Request,
    /// The content format override of the request ([`crate::RequestOptions::format`]).
    pub format: Option<ContentFormat>,
    /// When it was queued (ms since the Unix epoch, wall clock).
    pub queued_at_ms: u64,
    /// When it fails unless sent (ms since the Unix epoch, wall clock).
    pub deadline_ms: u64,
}

impl QueuedRequest {
    /// What [`crate::ServerHandle::queued_requests`] shows of it.
    pub fn info(&self) -> QueuedRequestInfo {
        QueuedRequestInfo {
            id: self.id,
            endpoint: self.endpoint.clone(),
            operation: self.request.name(),
            paths: self.request.paths(),
            queued_at_ms: self.queued_at_ms,
            deadline_ms: self.deadline_ms,
        }
    }
}

/// The presence of a queue-mode client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presence {
    /// Requests go out now.
    pub awake: bool,
    /// The end of the current awake window (ms since the Unix epoch), while awake.
    pub awake_until_ms: Option<u64>,
    /// Requests held.
    pub queued: usize,
}

/// Permission to send one request; dropping it lets the next held request go.
#[derive(Debug)]
pub(crate) struct Permit {
    _done: oneshot::Sender<()>,
}

#[derive(Debug)]
struct Waiter {
    info: QueuedRequestInfo,
    go: oneshot::Sender<Permit>,
}

#[derive(Debug, Default)]
struct EndpointQueue {
    queue_mode: bool,
    awake: bool,
    awake_until_ms: u64,
    /// A sleep check is scheduled.
    sleep_timer: bool,
    /// A flush task is running.
    flushing: bool,
    waiting: VecDeque<Waiter>,
}

impl EndpointQueue {
    fn idle(&self) -> bool {
        !self.flushing && self.waiting.is_empty()
    }
}

/// What [`Queues::wake`] asks the server to do.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Wake {
    /// Emit `Awake`.
    pub became_awake: bool,
    /// Spawn the flush task (the state already says it runs).
    pub start_flush: bool,
    /// Schedule a sleep check at this time.
    pub sleep_check_at: Option<u64>,
}

/// What a sleep check found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SleepCheck {
    /// Emit `Sleeping`.
    pub fell_asleep: bool,
    /// Check again at this time (the window was extended).
    pub check_again_at: Option<u64>,
}

/// Queue-mode state of every endpoint that needs one.
#[derive(Debug, Default)]
pub(crate) struct Queues {
    map: HashMap<String, EndpointQueue>,
    next_id: u64,
}

impl Queues {
    /// A message arrived from `endpoint` (or it registered). `queue_mode` is its registration's mode.
    pub fn wake(&mut self, endpoint: &str, queue_mode: bool, now_ms: u64, awake_ms: u64) -> Wake {
        let mut out = Wake::default();
        if !queue_mode {
            // Only requests left over from an earlier queue-mode registration need anything.
            if let Some(q) = self.map.get_mut(endpoint) {
                q.queue_mode = false;
                q.awake = true;
                q.awake_until_ms = u64::MAX;
                if !q.waiting.is_empty() && !q.flushing {
                    q.flushing = true;
                    out.start_flush = true;
                }
                if q.idle() {
                    self.map.remove(endpoint);
                }
            }
            return out;
        }
        let q = self.map.entry(endpoint.to_string()).or_default();
        q.queue_mode = true;
        q.awake_until_ms = now_ms.saturating_add(awake_ms);
        out.became_awake = !q.awake;
        q.awake = true;
        if !q.sleep_timer {
            q.sleep_timer = true;
            out.sleep_check_at = Some(q.awake_until_ms);
        }
        if !q.waiting.is_empty() && !q.flushing {
            q.flushing = true;
            out.start_flush = true;
        }
        out
    }

    /// The sleep check of `endpoint` is due.
    pub fn sleep_check(&mut self, endpoint: &str, now_ms: u64) -> SleepCheck {
        let mut out = SleepCheck::default();
        let Some(q) = self.map.get_mut(endpoint) else {
            return out;
        };
        if !q.queue_mode || !q.awake {
            q.sleep_timer = false;
        } else if q.awake_until_ms <= now_ms {
            q.sleep_timer = false;
            q.awake = false;
            out.fell_asleep = true;
        } else {
            out.check_again_at = Some(q.awake_until_ms);
        }
        out
    }

    /// A request to `endpoint` went unanswered: consider it asleep. True if it was awake.
    pub fn mark_asleep(&mut self, endpoint: &str) -> bool {
        match self.map.get_mut(endpoint) {
            Some(q) if q.queue_mode && q.awake => {
                q.awake = false;
                true
            }
            _ => false,
        }
    }

    /// The registration of `endpoint` ended: it is asleep; held requests wait for a new registration (or
    /// their deadline).
    pub fn registration_ended(&mut self, endpoint: &str) {
        if let Some(q) = self.map.get_mut(endpoint) {
            q.awake = false;
            if q.idle() {
                self.map.remove(endpoint);
            }
        }
    }

    /// Hold a request for a queue-mode client, unless it is awake with nothing held (then `None`: send now).
    pub fn enqueue(
        &mut self,
        endpoint: &str,
        operation: &'static str,
        paths: Vec<Path>,
        now_ms: u64,
        deadline_ms: u64,
    ) -> Option<(u64, oneshot::Receiver<Permit>)> {
        // No state yet (e.g. registrations loaded from a store after a restart): asleep until it speaks.
        let q = self.map.entry(endpoint.to_string()).or_insert_with(|| EndpointQueue {
            queue_mode: true,
            ..EndpointQueue::default()
        });
        if q.awake && q.idle() {
            return None;
        }
        self.next_id += 1;
        let id = self.next_id;
        let (go, rx) = oneshot::channel();
        q.waiting.push_back(Waiter {
            info: QueuedRequestInfo {
                id,
                endpoint: endpoint.to_string(),
                operation,
                paths,
                queued_at_ms: now_ms,
                deadline_ms,
            },
            go,
        });
        Some((id, rx))
    }

    /// Put a request held by an earlier run of the server (a persisted [`QueuedRequest`]) back at the end of
    /// its endpoint's queue, with its own id; later ids are larger. The endpoint is asleep until it speaks.
    pub fn restore(&mut self, info: QueuedRequestInfo) -> oneshot::Receiver<Permit> {
        self.next_id = self.next_id.max(info.id);
        let q = self.map.entry(info.endpoint.clone()).or_insert_with(|| EndpointQueue {
            queue_mode: true,
            ..EndpointQueue::default()
        });
        let (go, rx) = oneshot::channel();
        q.waiting.push_back(Waiter { info, go });
        rx
    }

    /// Ids given from now on are larger than `id` (ids of persisted requests are not reused).
    pub fn reserve_ids(&mut self, id: u64) {
        self.next_id = self.next_id.max(id);
    }

    /// Drop a held request (its caller gave up).
    pub fn cancel(&mut self, endpoint: &str, id: u64) {
        if let Some(q) = self.map.get_mut(endpoint) {
            q.waiting.retain(|w| w.info.id != id);
            if !q.awake && !q.queue_mode && q.idle() {
                self.map.remove(endpoint);
            }
        }
    }

    /// Hands the permit to the next held request and returns the signal of its completion, or `None` (the
    /// flush ends) when the client sleeps or nothing is left.
    pub fn next_to_send(&mut self, endpoint: &str) -> Option<oneshot::Receiver<()>> {
        let q = self.map.get_mut(endpoint)?;
        loop {
            if !q.awake {
                q.flushing = false;
                return None;
            }
            let Some(w) = q.waiting.pop_front() else {
                q.flushing = false;
                if !q.queue_mode {
                    self.map.remove(endpoint);
                }
                return None;
            };
            if w.go.is_closed() {
                continue;
            }
            let (done, done_rx) = oneshot::channel();
            if w.go.send(Permit { _done: done }).is_err() {
                continue;
            }
            if !q.queue_mode && q.waiting.is_empty() {
                // Left over from a queue-mode registration: nothing can be held any more.
                self.map.remove(endpoint);
            }
            return Some(done_rx);
        }
    }

    /// The requests held for `endpoint`, oldest first.
    pub fn list(&self, endpoint: &str) -> Vec<QueuedRequestInfo> {
        self.map
            .get(endpoint)
            .map(|q| q.waiting.iter().map(|w| w.info.clone()).collect())
            .unwrap_or_default()
    }

    /// Every held request.
    pub fn list_all(&self) -> Vec<QueuedRequestInfo> {
        let mut v: Vec<QueuedRequestInfo> = self
            .map
            .values()
            .flat_map(|q| q.waiting.iter().map(|w| w.info.clone()))
            .collect();
        v.sort_by_key(|i| i.id);
        v
    }

    /// The presence of a queue-mode `endpoint`.
    pub fn presence(&self, endpoint: &str) -> Option<Presence> {
        let q = self.map.get(endpoint)?;
        Some(Presence {
            awake: q.awake,
            awake_until_ms: (q.awake && q.queue_mode).then_some(q.awake_until_ms),
            queued: q.waiting.len(),
        })
    }

    /// Forget everything (shutdown): every held request fails.
    pub fn clear(&mut self) {
        self.map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn awake_window_and_sleep_checks() {
        let mut q = Queues::default();
        let w = q.wake("a", true, 1000, 93_000);
        assert_eq!(
            w,
            Wake {
                became_awake: true,
                start_flush: false,
                sleep_check_at: Some(94_000)
            }
        );
        // A later message extends the window without another timer.
        let w = q.wake("a", true, 50_000, 93_000);
        assert_eq!(w, Wake::default());
        assert_eq!(
            q.sleep_check("a", 94_000),
            SleepCheck {
                fell_asleep: false,
                check_again_at: Some(143_000)
            }
        );
        assert_eq!(
            q.sleep_check("a", 143_000),
            SleepCheck {
                fell_asleep: true,
                check_again_at: None
            }
        );
        assert_eq!(q.presence("a").map(|p| p.awake), Some(false));
        // Waking again schedules a new check.
        assert_eq!(q.wake("a", true, 200_000, 93_000).sleep_check_at, Some(293_000));
        assert!(q.mark_asleep("a"));
        assert!(!q.mark_asleep("a"));
        // Non-queue-mode clients have no state at all.
        assert_eq!(q.wake("b", false, 0, 93_000), Wake::default());
        assert_eq!(q.presence("b"), None);
        assert!(!q.mark_asleep("b"));
    }

    #[test]
    fn held_requests_flush_in_order_once_awake() {
        let mut q = Queues::default();
        q.wake("a", true, 0, 93_000);
        // Awake and idle: send directly.
        assert!(q.enqueue("a", "Read", vec![], 0, 10).is_none());
        assert!(q.mark_asleep("a"));
        let (id1, mut rx1) = q.enqueue("a", "Read", vec![Path::resource(3, 0, 9)], 1, 100).unwrap();
        let (id2, mut rx2) = q.enqueue("a", "Write-Replace", vec![], 2, 100).unwrap();
        let (id3, rx3) = q.enqueue("a", "Delete", vec![], 3, 100).unwrap();
        assert_eq!(
            q.list("a").iter().map(|i| i.id).collect::<Vec<_>>(),
            vec![id1, id2, id3]
        );
        assert_eq!(q.presence("a").map(|p| p.queued), Some(3));
        assert!(q.next_to_send("a").is_none(), "asleep: nothing goes");
        // The third caller gives up.
        drop(rx3);
        q.cancel("a", id3);
        let w = q.wake("a", true, 10, 93_000);
        assert!(w.became_awake && w.start_flush);
        // While flushing, new requests queue behind.
        let (_id4, _rx4) = q.enqueue("a", "Read", vec![], 11, 100).unwrap();
        let done1 = q.next_to_send("a").unwrap();
        let p1 = rx1.try_recv().expect("first permit");
        assert!(rx2.try_recv().is_err(), "second waits");
        drop(p1);
        assert!(done1.blocking_recv().is_err(), "dropping the permit signals completion");
        drop(q.next_to_send("a").unwrap());
        assert!(rx2.try_recv().is_ok());
        assert_eq!(q.list_all().len(), 1);
        q.clear();
        assert!(q.list_all().is_empty());
    }

    #[test]
    fn restored_requests_keep_their_ids_and_order() {
        let mut q = Queues::default();
        let info = |id: u64| QueuedRequestInfo {
            id,
            endpoint: "a".into(),
            operation: "Execute",
            paths: vec![Path::resource(3, 0, 4)],
            queued_at_ms: 1,
            deadline_ms: 100,
        };
        q.reserve_ids(9);
        let mut rx7 = q.restore(info(7));
        let mut rx9 = q.restore(info(9));
        assert_eq!(q.list("a").iter().map(|i| i.id).collect::<Vec<_>>(), vec![7, 9]);
        assert_eq!(
            q.presence("a"),
            Some(Presence {
                awake: false,
                awake_until_ms: None,
                queued: 2
            }),
            "asleep until it speaks"
        );
        // New requests get later ids and queue behind.
        let (id, _rx) = q.enqueue("a", "Read", vec![], 2, 100).unwrap();
        assert_eq!(id, 10);
        assert!(q.wake("a", true, 5, 1000).start_flush);
        drop(q.next_to_send("a").unwrap());
        assert!(rx7.try_recv().is_ok());
        assert!(rx9.try_recv().is_err(), "one at a time");
        let req = QueuedRequest {
            id: 3,
            endpoint: "a".into(),
            registration_id: RegistrationId(1),
            request: Request::Delete {
                path: Path::instance(3303, 0),
            },
            format: None,
            queued_at_ms: 4,
            deadline_ms: 5,
        };
        assert_eq!(
            req.info(),
            QueuedRequestInfo {
                id: 3,
                endpoint: "a".into(),
                operation: "Delete",
                paths: vec![Path::instance(3303, 0)],
                queued_at_ms: 4,
                deadline_ms: 5
            }
        );
    }

    #[test]
    fn leftovers_of_a_queue_mode_registration_flush_when_it_registers_without_q() {
        let mut q = Queues::default();
        q.wake("a", true, 0, 1000);
        q.mark_asleep("a");
        let (_, mut rx) = q.enqueue("a", "Read", vec![], 0, 100).unwrap();
        let w = q.wake("a", false, 5, 1000);
        assert!(w.start_flush && !w.became_awake);
        drop(q.next_to_send("a").unwrap());
        assert!(rx.try_recv().is_ok());
        assert!(q.next_to_send("a").is_none());
        assert_eq!(q.presence("a"), None, "state dropped once empty");
        q.registration_ended("x");
    }
}
