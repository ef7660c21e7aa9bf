//! Observe (RFC 7641) for the endpoint: the observer's notification matching with the §3.4 freshness rule and
//! active/passive cancellation, and the observed side's registration, sequence numbers, the §4.5 CON rule and
//! cancellation on RST, timeout or deregistration.

use std::net::SocketAddr;

use super::{Endpoint, Event, RequestId, Responder};
use crate::message::{Code, Message, MessageType, Token};
use crate::time::Timestamp;

/// Observe values are 24-bit (RFC 7641 §4.4).
const SEQ_MASK: u32 = 0xFF_FFFF;
/// 2^23: half the sequence number space.
const SEQ_HALF: u32 = 1 << 23;
/// A notification more than 128 s after the newest one is fresh whatever its number (RFC 7641 §3.4).
const FRESHNESS_MS: u64 = 128_000;

/// Why an observation of one of our resources ended ([`Event::ObservationCancelled`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CancelReason {
    /// The observer answered a notification (or the registration response) with RST.
    Reset,
    /// A CON notification was not acknowledged after all retransmissions (RFC 7641 §4.5).
    Timeout,
    /// The observer sent a GET/FETCH with Observe=1 and the observation's token (RFC 7641 §3.6).
    Deregistered,
}

/// Observer side: an observation we established.
#[derive(Debug)]
pub(super) struct ClientObservation {
    /// The registering request's id (reported in [`Event::Notification`]).
    pub id: u64,
    /// The registration request as the application sent it (token, options, payload), for cancellation and
    /// for fetching the remaining blocks of notifications.
    pub request: Message,
    /// Observe value and arrival time of the newest notification (the registration response included).
    pub last: Option<(u32, Timestamp)>,
    /// The exchange fetching the remaining blocks of the newest notification.
    pub fetch: Option<u64>,
}

/// Observed side: a peer observing one of our resources.
#[derive(Debug)]
pub(super) struct ServerObservation {
    /// Request key of the registration (for serving the blocks of large notifications).
    pub key: Vec<u8>,
    /// The last Observe value sent.
    pub seq: u32,
    /// When the last CON notification (or the registration response) was sent.
    pub last_con: Timestamp,
    /// Block size exponent for notifications (the registration's Block2 size, if it asked for a smaller one).
    pub szx: u8,
}

/// RFC 7641 §3.4: is notification `v2` arriving at `t2` newer than the newest one so far (`prev`)?
pub(super) fn is_fresh(prev: Option<(u32, Timestamp)>, v2: u32, t2: Timestamp) -> bool {
    let Some((v1, t1)) = prev else { return true };
    let (v1, v2) = (v1 & SEQ_MASK, v2 & SEQ_MASK);
    (v1 < v2 && v2 - v1 < SEQ_HALF) || (v1 > v2 && v1 - v2 > SEQ_HALF) || t2.millis_since(t1) > FRESHNESS_MS
}

impl Endpoint {
    // ------------------------------------------------------------------ observer (client) side

    /// Cancel the observation established by request `id` actively (RFC 7641 §3.6): forget it and send the
    /// registration request again with Observe=1 on the same token. The peer's answer (normally a 2.05 without
    /// Observe) arrives as [`Event::Response`] for the returned id; notifications still in flight are ACKed
    /// but not delivered. Returns `None` if `id` has no live observation.
    pub fn cancel_observe(&mut self, now: Timestamp, id: RequestId) -> Option<RequestId> {
        let key = self.observations.iter().find(|(_, o)| o.id == id.0).map(|(k, _)| *k)?;
        self.last_now = self.last_now.max(now);
        let obs = self.forget_observation(key)?;
        let mut req = obs.request;
        req.set_observe(1);
        req.token = key.1;
        req.message_id = 0;
        Some(RequestId(self.submit(now, key.0, req, None)))
    }

    /// Re-install an observation established before a restart (e.g. by a previous process of a server that
    /// persisted it): notifications from `peer` on `token` are accepted again and delivered as
    /// [`Event::Notification`] for the returned id, exactly as if `request` (the registration request, GET
    /// or FETCH with Observe=0) had just been answered with Observe. No message is sent. The first
    /// notification is always fresh (RFC 7641 §3.4). An observation already on `(peer, token)` is replaced.
    /// Cancel it like any other ([`Endpoint::cancel_observe`], [`Endpoint::cancel_observation`]).
    pub fn restore_observation(
        &mut self,
        now: Timestamp,
        peer: SocketAddr,
        token: Token,
        request: Message,
    ) -> RequestId {
        self.last_now = self.last_now.max(now);
        let id = self.alloc_id();
        let mut request = request;
        request.token = token;
        request.message_id = 0;
        if let Some(old) = self.observations.insert(
            (peer, token),
            ClientObservation {
                id,
                request,
                last: None,
                fetch: None,
            },
        ) {
            if let Some(f) = old.fetch {
                self.drop_exchange(f);
            }
        }
        RequestId(id)
    }

    /// True while the observation established by request `id` accepts notifications.
    pub fn is_observing(&self, id: RequestId) -> bool {
        self.observations.values().any(|o| o.id == id.0)
    }

    /// Remove an observation (and abandon the fetch of a notification's remaining blocks).
    pub(super) fn forget_observation(&mut self, key: (SocketAddr, Token)) -> Option<ClientObservation> {
        let obs = self.observations.remove(&key)?;
        if let Some(f) = obs.fetch {
            self.drop_exchange(f);
        }
        Some(obs)
    }

    /// Abandon an exchange without any event (internal fetches).
    pub(super) fn drop_exchange(&mut self, id: u64) {
        if let Some(ex) = self.exchanges.get(&id) {
            if ex.state == super::ExState::Queued {
                let peer = ex.peer;
                if let Some(ps) = self.peers.get_mut(&peer) {
                    ps.queue.retain(|q| *q != id);
                }
            }
        }
        // `finish` needs a time only to start the next queued request: use the latest time we were given.
        let now = self.last_now;
        self.finish(now, id);
    }

    /// Remember a successful registration (the response carried Observe `seq`).
    pub(super) fn register_observation(
        &mut self,
        now: Timestamp,
        peer: SocketAddr,
        token: Token,
        id: u64,
        mut request: Message,
        seq: u32,
    ) {
        request.token = token;
        if let Some(old) = self.observations.insert(
            (peer, token),
            ClientObservation {
                id,
                request,
                last: Some((seq, now)),
                fetch: None,
            },
        ) {
            if let Some(f) = old.fetch {
                self.drop_exchange(f);
            }
        }
    }

    /// A message on the token of the active-cancel request `id` that carries Observe is a notification that
    /// crossed the cancellation, not the (separate) response to it.
    pub(super) fn is_late_notification(&self, id: u64, msg: &Message) -> bool {
        msg.observe().is_some()
            && self.exchanges.get(&id).is_some_and(|e| {
                e.transfer.is_none()
                    && matches!(e.message.code, Code::GET | Code::FETCH)
                    && e.message.observe() == Some(1)
            })
    }

    /// A notification for a live observation (already ACKed and deduplicated by the caller).
    pub(super) fn on_notification(&mut self, now: Timestamp, peer: SocketAddr, msg: Message) {
        let key = (peer, msg.token);
        let Some(obs) = self.observations.get_mut(&key) else {
            return;
        };
        let id = obs.id;
        // RFC 7641 §3.2: a notification that is not 2.xx, or lacks Observe, ends the observation.
        let seq = match msg.observe() {
            Some(v) if msg.code.is_success() => v,
            _ => {
                self.forget_observation(key);
                self.events.push_back(Event::Notification {
                    id: RequestId(id),
                    peer,
                    message: msg,
                });
                return;
            }
        };
        if !is_fresh(obs.last, seq, now) {
            self.stats.stale_notifications += 1;
            return;
        }
        obs.last = Some((seq, now));
        if msg.block2().is_some_and(|b| b.num == 0 && b.more) {
            self.start_notify_fetch(now, peer, msg);
            return;
        }
        if let Some(f) = obs.fetch.take() {
            // A newer complete notification supersedes the one whose blocks were being fetched.
            self.drop_exchange(f);
        }
        self.events.push_back(Event::Notification {
            id: RequestId(id),
            peer,
            message: msg,
        });
    }

    /// The fetch `fetch_id` of a notification's remaining blocks ended; `message` is the whole notification
    /// when it succeeded.
    pub(super) fn notify_fetch_done(
        &mut self,
        peer: SocketAddr,
        token: Token,
        obs_id: u64,
        fetch_id: u64,
        message: Option<Message>,
    ) {
        let Some(obs) = self.observations.get_mut(&(peer, token)) else {
            return;
        };
        if obs.id != obs_id || obs.fetch != Some(fetch_id) {
            return;
        }
        obs.fetch = None;
        if let Some(message) = message {
            self.events.push_back(Event::Notification {
                id: RequestId(obs_id),
                peer,
                message,
            });
        }
    }

    // ------------------------------------------------------------------ observed (server) side

    /// True if `peer` observes one of our resources with `token`.
    pub fn is_observed(&self, peer: SocketAddr, token: Token) -> bool {
        self.observers.contains_key(&(peer, token))
    }

    /// Forget an observer without telling it (e.g. when its registration ends). Returns whether it existed.
    pub fn remove_observer(&mut self, peer: SocketAddr, token: Token) -> bool {
        self.observers.remove(&(peer, token)).is_some()
    }

    /// The registered observers as (peer, token), in no particular order.
    pub fn observers(&self) -> impl Iterator<Item = (SocketAddr, Token)> + '_ {
        self.observers.keys().copied()
    }

    /// An inbound request: Observe=1 on an observed token deregisters (RFC 7641 §3.6). The request still goes
    /// to the application, which answers it normally.
    pub(super) fn note_observe_request(&mut self, peer: SocketAddr, msg: &Message) {
        if matches!(msg.code, Code::GET | Code::FETCH)
            && msg.observe() == Some(1)
            && self.observers.remove(&(peer, msg.token)).is_some()
        {
            self.events.push_back(Event::ObservationCancelled {
                peer,
                token: msg.token,
                reason: CancelReason::Deregistered,
            });
        }
    }

    /// The application answers request `r`: register or drop the observer.
    pub(super) fn note_observe_response(&mut self, now: Timestamp, r: &Responder, response: &Message) {
        if !(matches!(r.ctx.method, Code::GET | Code::FETCH) && r.ctx.observe == Some(0)) {
            return;
        }
        let key = (r.peer, r.token);
        match response.observe() {
            Some(seq) if response.code.is_success() => {
                let cfg = self.block_szx();
                let szx = r.ctx.block2.map_or(cfg, |b| b.szx.min(cfg));
                self.observers.insert(
                    key,
                    ServerObservation {
                        key: r.ctx.key.clone(),
                        seq: seq & SEQ_MASK,
                        last_con: now,
                        szx,
                    },
                );
            }
            _ => {
                self.observers.remove(&key);
            }
        }
    }

    /// Number, type and slice a notification for a registered observer.
    pub(super) fn prepare_notification(&mut self, now: Timestamp, peer: SocketAddr, mut message: Message) -> Message {
        let interval = self.config.notify_con_interval_ms;
        let k = (peer, message.token);
        let Some(obs) = self.observers.get_mut(&k) else {
            return message;
        };
        if !message.code.is_success() {
            // RFC 7641 §4.2: an error notification ends the observation.
            self.observers.remove(&k);
            return message;
        }
        match message.observe() {
            Some(v) => obs.seq = v & SEQ_MASK,
            None => {
                obs.seq = obs.seq.wrapping_add(1) & SEQ_MASK;
                message.set_observe(obs.seq);
            }
        }
        if message.mtype == MessageType::Non && now.millis_since(obs.last_con) >= interval {
            message.mtype = MessageType::Con;
        }
        if message.mtype == MessageType::Con {
            obs.last_con = now;
        }
        let (key, szx) = (obs.key.clone(), obs.szx);
        self.block2_notification(now, peer, key, szx, message)
    }

    /// A notification or separate response to `(peer, token)` was rejected with RST (`reset`) or timed out:
    /// the observer is gone (RFC 7641 §3.6, §4.5).
    pub(super) fn end_observer_after_failure(&mut self, peer: SocketAddr, token: Token, reset: bool) {
        if self.observers.remove(&(peer, token)).is_some() {
            self.events.push_back(Event::ObservationCancelled {
                peer,
                token,
                reason: if reset {
                    CancelReason::Reset
                } else {
                    CancelReason::Timeout
                },
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Timestamp {
        Timestamp(ms)
    }

    #[test]
    fn freshness_rule_of_rfc7641_section_3_4() {
        // First notification is always fresh.
        assert!(is_fresh(None, 5, t(0)));
        // Plain increase within 2^23.
        assert!(is_fresh(Some((5, t(0))), 6, t(1)));
        assert!(is_fresh(Some((0, t(0))), SEQ_HALF - 1, t(1)));
        assert!(
            !is_fresh(Some((0, t(0))), SEQ_HALF, t(1)),
            "exactly 2^23 ahead is not newer"
        );
        // Equal or older.
        assert!(!is_fresh(Some((6, t(0))), 6, t(1)));
        assert!(!is_fresh(Some((6, t(0))), 5, t(1)));
        // Wrap-around: V1 > V2 by more than 2^23 means V2 is newer.
        assert!(is_fresh(Some((SEQ_MASK, t(0))), 0, t(1)));
        assert!(is_fresh(Some((SEQ_MASK - 3, t(0))), 2, t(1)));
        assert!(
            !is_fresh(Some((SEQ_HALF, t(0))), 0, t(1)),
            "exactly 2^23 behind is not newer"
        );
        // After 128 s anything is fresh; at exactly 128 s not yet.
        assert!(!is_fresh(Some((6, t(0))), 5, t(128_000)));
        assert!(is_fresh(Some((6, t(0))), 5, t(128_001)));
    }
}
