//! Observations the server holds (digest §6.1): who is observed, on which token, for which paths, in which
//! format.
//!
//! An observation is bound to one registration. It is void after De-register, expiry or a new Register of the
//! same endpoint (the server drops it then and reports [`ObservationEndReason::RegistrationEnded`]); the server
//! never re-establishes observations by itself. With a persistent store (see
//! [`RegistrationStore::save_observation`](crate::RegistrationStore::save_observation)) live observations are
//! recorded; a restarted server restores them on the registration's socket (no message is sent) and the
//! client's next notification on the same token is delivered as before.
//!
//! An observation follows its client's address: when an Update comes from a new address (NAT rebinding, digest
//! §4.2), the server moves the registration's CoAP state to it (`UdpHandle::migrate_peer`) before answering, so
//! later notifications from there are delivered on the same observation. Records hold no address: a restore
//! uses the registration's address, which the Update changed in the store.

use std::collections::HashMap;
use std::fmt;

use lwm2m_coap::Code;
use lwm2m_core::format::ContentFormat;
use tokio::sync::oneshot;

use crate::registry::RegistrationId;
use crate::request::Request;

/// Identifies an observation the server holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObservationId(pub u64);

impl fmt::Display for ObservationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "obs-{}", self.0)
    }
}

/// What the server knows about one observation.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservationInfo {
    /// Its id.
    pub id: ObservationId,
    /// The registration it belongs to.
    pub registration_id: RegistrationId,
    /// The observed client.
    pub endpoint: String,
    /// The Observe or Observe-Composite request (its paths).
    pub request: Request,
    /// The CoAP token notifications carry.
    pub token: Vec<u8>,
    /// The content format of the first response (notifications keep it).
    pub format: Option<ContentFormat>,
    /// When it was established (ms since the Unix epoch).
    pub created_ms: u64,
}

/// How to cancel an observation (digest §6, "Cancel Observation").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CancelMode {
    /// Forget it; the next notification is answered with RST (reactive cancel).
    Passive,
    /// Send the observe request again with Observe: 1 (GET or FETCH) and return the client's answer.
    Active,
}

/// Why an observation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObservationEndReason {
    /// The server application cancelled it.
    Cancelled(CancelMode),
    /// The registration ended (De-register, expiry, re-Register).
    RegistrationEnded,
    /// The client ended it with a notification carrying this error code or no Observe option.
    ClientEnded(Code),
    /// The CoAP layer ended it (the socket shut down).
    Closed,
}

/// What a live observation's task can be told.
#[derive(Debug)]
pub(crate) enum Control {
    /// Cancel actively and hand back the client's answer.
    Active(oneshot::Sender<Result<lwm2m_coap::Message, lwm2m_coap::RequestError>>),
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub info: ObservationInfo,
    /// Dropping it (or sending [`Control::Active`]) ends the task; a plain drop cancels passively.
    pub control: Option<oneshot::Sender<Control>>,
}

/// Every live observation, by id and by registration.
#[derive(Debug, Default)]
pub(crate) struct Observations {
    by_id: HashMap<ObservationId, Entry>,
    by_registration: HashMap<RegistrationId, Vec<ObservationId>>,
}

impl Observations {
    pub fn insert(&mut self, entry: Entry) {
        let (id, reg) = (entry.info.id, entry.info.registration_id);
        self.by_id.insert(id, entry);
        self.by_registration.entry(reg).or_default().push(id);
    }

    pub fn remove(&mut self, id: ObservationId) -> Option<Entry> {
        let e = self.by_id.remove(&id)?;
        let reg = e.info.registration_id;
        if let Some(list) = self.by_registration.get_mut(&reg) {
            list.retain(|x| *x != id);
            if list.is_empty() {
                self.by_registration.remove(&reg);
            }
        }
        Some(e)
    }

    pub fn remove_registration(&mut self, reg: RegistrationId) -> Vec<Entry> {
        let ids = self.by_registration.remove(&reg).unwrap_or_default();
        ids.into_iter().filter_map(|id| self.by_id.remove(&id)).collect()
    }

    pub fn get(&self, id: ObservationId) -> Option<ObservationInfo> {
        self.by_id.get(&id).map(|e| e.info.clone())
    }

    /// The observations of registration `reg`, by id.
    pub fn of_registration(&self, reg: RegistrationId) -> Vec<ObservationInfo> {
        let mut v: Vec<ObservationInfo> = self
            .by_registration
            .get(&reg)
            .into_iter()
            .flatten()
            .filter_map(|id| self.by_id.get(id))
            .map(|e| e.info.clone())
            .collect();
        v.sort_by_key(|i| i.id);
        v
    }

    pub fn of_endpoint(&self, endpoint: &str) -> Vec<ObservationInfo> {
        let mut v: Vec<ObservationInfo> = self
            .by_id
            .values()
            .filter(|e| e.info.endpoint == endpoint)
            .map(|e| e.info.clone())
            .collect();
        v.sort_by_key(|i| i.id);
        v
    }

    pub fn all(&self) -> Vec<ObservationInfo> {
        let mut v: Vec<ObservationInfo> = self.by_id.values().map(|e| e.info.clone()).collect();
        v.sort_by_key(|i| i.id);
        v
    }

    pub fn drain(&mut self) -> Vec<Entry> {
        self.by_registration.clear();
        self.by_id.drain().map(|(_, e)| e).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lwm2m_core::Path;

    fn entry(id: u64, reg: u64, ep: &str) -> Entry {
        Entry {
            info: ObservationInfo {
                id: ObservationId(id),
                registration_id: RegistrationId(reg),
                endpoint: ep.into(),
                request: Request::Observe {
                    path: Path::resource(3, 0, 9),
                },
                token: vec![1, 2],
                format: None,
                created_ms: 0,
            },
            control: None,
        }
    }

    #[test]
    fn indexes_by_id_and_registration() {
        let mut o = Observations::default();
        o.insert(entry(1, 10, "a"));
        o.insert(entry(2, 10, "a"));
        o.insert(entry(3, 11, "b"));
        assert_eq!(o.of_endpoint("a").len(), 2);
        let ids = |v: Vec<ObservationInfo>| v.into_iter().map(|i| i.id.0).collect::<Vec<_>>();
        assert_eq!(ids(o.of_registration(RegistrationId(10))), vec![1, 2]);
        assert_eq!(ids(o.of_registration(RegistrationId(11))), vec![3]);
        assert!(o.of_registration(RegistrationId(12)).is_empty());
        assert!(o.remove(ObservationId(1)).is_some());
        assert!(o.remove(ObservationId(1)).is_none());
        assert!(o.get(ObservationId(1)).is_none());
        assert_eq!(o.get(ObservationId(2)).map(|i| i.endpoint), Some("a".into()));
        let gone = o.remove_registration(RegistrationId(10));
        assert_eq!(gone.len(), 1);
        assert!(o.of_endpoint("a").is_empty());
        assert_eq!(o.all().len(), 1);
        assert_eq!(o.drain().len(), 1);
        assert!(o.all().is_empty());
        assert_eq!(ObservationId(7).to_string(), "obs-7");
    }
}
