//! Registrations and where they are kept.
//!
//! - [`Registration`]: everything the server knows about one registered client (digest §4.1): the id it chose
//!   (the `rd/{id}` location), endpoint name, transport address and security identity, lifetime, binding,
//!   queue mode, enabler version, object links (with the alternate path and `ct` list of the root link) and
//!   timestamps in milliseconds since the Unix epoch. Every field is a plain public value so a persistence
//!   layer can mirror it one to one.
//! - [`RegistrationStore`]: the storage trait (object safe, synchronous, fallible) with lookups by id, endpoint
//!   and transport address; replace-on-register and expire-if-still-expired are single store operations so
//!   they stay atomic in any backend.
//! - [`MemoryRegistrationStore`]: the in-memory store, sharded on all three keys.
//! - [`RegistrationModels`]: the object models of one registration (the object versions it registered), for
//!   the codecs.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use lwm2m_coap::PeerIdentity;
use lwm2m_core::format::link::{ObjectLink, RegistrationLinks};
use lwm2m_core::format::ContentFormat;
use lwm2m_core::model::{ModelRegistry, Models, ObjectModel, Version};
use thiserror::Error;

use crate::registration::Binding;

/// The server-chosen registration id; the client's location is `/rd/{id}` (16 lower-case hex digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegistrationId(pub u64);

impl RegistrationId {
    /// A fresh id: unique within this process, unpredictable across processes.
    pub fn generate() -> RegistrationId {
        static KEY: OnceLock<u64> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let key = *KEY.get_or_init(|| RandomState::new().hash_one(0x6c77_6d32_u64));
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // splitmix64's finalizer is a bijection: distinct counters give distinct ids.
        let mut z = n.wrapping_add(key);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        RegistrationId(z ^ (z >> 31))
    }
}

impl fmt::Display for RegistrationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A location segment that is not a registration id.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0:?} is not a registration id (1 to 16 hex digits)")]
pub struct InvalidRegistrationId(pub String);

impl FromStr for RegistrationId {
    type Err = InvalidRegistrationId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(InvalidRegistrationId(s.to_string()));
        }
        u64::from_str_radix(s, 16)
            .map(RegistrationId)
            .map_err(|_| InvalidRegistrationId(s.to_string()))
    }
}

/// One registered client.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// The server-chosen id (location `/rd/{id}`).
    pub id: RegistrationId,
    /// The endpoint client name (`ep`, or the name the security identity gave).
    pub endpoint: String,
    /// The client's transport address: every request to it goes there.
    pub peer: SocketAddr,
    /// Which of the server's sockets (in the order given to `Server::start`) the client uses.
    pub socket: u8,
    /// The identity the client authenticated with (DTLS), `None` on plain CoAP.
    pub identity: Option<PeerIdentity>,
    /// Lifetime in seconds (`lt`).
    pub lifetime_s: u32,
    /// Transports the client supports (`b`).
    pub binding: Binding,
    /// The client uses queue mode (`Q`, or a 1.0 binding with `Q`).
    pub queue_mode: bool,
    /// The client's LwM2M enabler version (`lwm2m`, 1.0 when absent).
    pub version: Version,
    /// MSISDN (`sms`).
    pub sms: Option<String>,
    /// Objects and instances, the alternate path and the `ct` content formats of the root link.
    pub objects: RegistrationLinks,
    /// When the client registered (ms since the Unix epoch).
    pub registered_at_ms: u64,
    /// The last Register or Update (ms since the Unix epoch).
    pub last_update_ms: u64,
    /// When the registration expires without an Update (ms since the Unix epoch).
    pub expires_ms: u64,
    /// Register/Update parameters the server does not know, as sent.
    pub additional: BTreeMap<String, Option<String>>,
}

impl Registration {
    /// The location path the client uses for Update and De-register (`/rd/{id}`).
    pub fn location(&self) -> String {
        format!("/rd/{}", self.id)
    }

    /// The path prefix of requests to this client: the alternate path or `/`.
    pub fn root_path(&self) -> &str {
        self.objects.root_path()
    }

    /// The content formats of the root link's `ct` (empty when not announced).
    pub fn content_formats(&self) -> &[u16] {
        &self.objects.content_formats
    }

    /// True if the client announced `format` in `ct`.
    pub fn announces(&self, format: ContentFormat) -> bool {
        self.objects.content_formats.contains(&format.code())
    }

    /// True once the lifetime has passed without an Update.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_ms <= now_ms
    }

    /// True if the client registered object `object_id`.
    pub fn has_object(&self, object_id: u16) -> bool {
        self.objects.object(object_id).is_some()
    }

    /// True if the client registered instance `instance_id` of object `object_id`.
    pub fn has_instance(&self, object_id: u16, instance_id: u16) -> bool {
        self.objects
            .object(object_id)
            .is_some_and(|o| o.instances.contains(&instance_id))
    }

    /// The object models of this client (the versions it registered) out of `registry`.
    pub fn models<'a>(&'a self, registry: &'a ModelRegistry) -> RegistrationModels<'a> {
        RegistrationModels {
            registry,
            objects: &self.objects.objects,
        }
    }
}

/// The models a registration uses: for each object the version it announced (`ver`, else the default of
/// digest §1.4) when the registry has that version, else the registry's preferred version.
#[derive(Debug, Clone, Copy)]
pub struct RegistrationModels<'a> {
    registry: &'a ModelRegistry,
    objects: &'a [ObjectLink],
}

impl Models for RegistrationModels<'_> {
    fn object(&self, id: u16) -> Option<&ObjectModel> {
        match self.objects.iter().find(|o| o.object_id == id) {
            Some(o) => self
                .registry
                .object_version(id, o.version_or_default())
                .or_else(|| self.registry.object(id)),
            None => self.registry.object(id),
        }
    }
}

/// A failure of the registration store backend.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    /// Another registration already has this id (the caller retries with a fresh id).
    #[error("registration id {0} is already in use")]
    IdInUse(RegistrationId),
    /// The backend failed (IO, corruption, ...).
    #[error("registration store: {0}")]
    Backend(String),
}

/// Where registrations live. Implementations must keep the three lookups consistent; each method is one
/// atomic operation.
pub trait RegistrationStore: Send + Sync {
    /// Adds `registration`, replacing (and returning) the registration of the same endpoint, if any.
    /// Fails with [`StoreError::IdInUse`] when another endpoint's registration has the same id.
    fn add(&self, registration: Registration) -> Result<Option<Registration>, StoreError>;

    /// The registration with this id.
    fn get(&self, id: RegistrationId) -> Result<Option<Registration>, StoreError>;

    /// The registration of this endpoint.
    fn get_by_endpoint(&self, endpoint: &str) -> Result<Option<Registration>, StoreError>;

    /// The registration whose client uses transport address `peer` on server socket `socket` (the most
    /// recent one if several clients share an address).
    fn get_by_peer(&self, socket: u8, peer: SocketAddr) -> Result<Option<Registration>, StoreError>;

    /// Changes registration `id` in place with `change` (which must not change `id` or `endpoint`) and
    /// returns `(before, after)`; `None` when there is no such registration.
    fn update(
        &self,
        id: RegistrationId,
        change: &mut dyn FnMut(&mut Registration),
    ) -> Result<Option<(Registration, Registration)>, StoreError>;

    /// Removes registration `id`.
    fn remove(&self, id: RegistrationId) -> Result<Option<Registration>, StoreError>;

    /// Removes registration `id` only if it is expired at `now_ms` (an Update may have raced the timer).
    fn remove_if_expired(&self, id: RegistrationId, now_ms: u64) -> Result<Option<Registration>, StoreError>;

    /// Calls `f` for every registration (in no particular order).
    fn for_each(&self, f: &mut dyn FnMut(&Registration)) -> Result<(), StoreError>;

    /// The number of registrations.
    fn len(&self) -> usize;

    /// True when there is no registration.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Persists a live observation so that a restarted server can restore it (a store that does not survive
    /// a restart need not keep it: the default does nothing).
    fn save_observation(&self, _observation: &crate::observation::ObservationInfo) -> Result<(), StoreError> {
        Ok(())
    }

    /// Forgets a persisted observation (it ended). Unknown ids are not an error.
    fn remove_observation(&self, _id: crate::observation::ObservationId) -> Result<(), StoreError> {
        Ok(())
    }

    /// The persisted observations, in no particular order (the default has none).
    fn observations(&self) -> Result<Vec<crate::observation::ObservationInfo>, StoreError> {
        Ok(Vec::new())
    }

    /// Persists a request held for a sleeping queue-mode client so that a restarted server can still send it
    /// (the default does nothing).
    fn save_queued_request(&self, _request: &crate::queue::QueuedRequest) -> Result<(), StoreError> {
        Ok(())
    }

    /// Forgets a persisted held request (sent, cancelled or expired). Unknown ids are not an error.
    fn remove_queued_request(&self, _id: u64) -> Result<(), StoreError> {
        Ok(())
    }

    /// The persisted held requests, in no particular order (the default has none).
    fn queued_requests(&self) -> Result<Vec<crate::queue::QueuedRequest>, StoreError> {
        Ok(Vec::new())
    }
}

const SHARDS: usize = 16;

type PeerKey = (u8, SocketAddr);

/// The address index of one shard: the newest registration per address, and the older ones it shadows
/// (several clients at one address are rare: NAT reuse, a client that registered under a new name).
#[derive(Debug, Default)]
struct PeerShard {
    current: HashMap<PeerKey, RegistrationId>,
    shadowed: HashMap<PeerKey, Vec<RegistrationId>>,
}

impl PeerShard {
    fn index(&mut self, key: PeerKey, id: RegistrationId) {
        if let Some(old) = self.current.insert(key, id) {
            if old != id {
                self.shadowed.entry(key).or_default().push(old);
            }
        }
    }

    fn unindex(&mut self, key: PeerKey, id: RegistrationId) {
        if self.current.get(&key) == Some(&id) {
            let previous = self.shadowed.get_mut(&key).and_then(Vec::pop);
            if self.shadowed.get(&key).is_some_and(Vec::is_empty) {
                self.shadowed.remove(&key);
            }
            match previous {
                Some(p) => self.current.insert(key, p),
                None => self.current.remove(&key),
            };
        } else if let Some(list) = self.shadowed.get_mut(&key) {
            list.retain(|x| *x != id);
            if list.is_empty() {
                self.shadowed.remove(&key);
            }
        }
    }
}

/// The in-memory [`RegistrationStore`]: three maps (id → registration, endpoint → id, address → id), each
/// split into 16 shards behind their own lock. Locks are taken in the order endpoint → id → address and never
/// held across calls, so lookups on different devices do not contend.
#[derive(Debug)]
pub struct MemoryRegistrationStore {
    by_id: Vec<RwLock<HashMap<RegistrationId, Box<Registration>>>>,
    by_endpoint: Vec<RwLock<HashMap<Box<str>, RegistrationId>>>,
    by_peer: Vec<RwLock<PeerShard>>,
    hasher: RandomState,
    len: AtomicUsize,
}

impl Default for MemoryRegistrationStore {
    fn default() -> Self {
        MemoryRegistrationStore::new()
    }
}

fn shards<T: Default>() -> Vec<RwLock<T>> {
    (0..SHARDS).map(|_| RwLock::new(T::default())).collect()
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

impl MemoryRegistrationStore {
    /// An empty store.
    pub fn new() -> MemoryRegistrationStore {
        MemoryRegistrationStore {
            by_id: shards(),
            by_endpoint: shards(),
            by_peer: shards(),
            hasher: RandomState::new(),
            len: AtomicUsize::new(0),
        }
    }

    fn slot<K: Hash + ?Sized>(&self, key: &K) -> usize {
        // SHARDS is a power of two; the cast keeps the low bits.
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    fn id_shard(&self, id: RegistrationId) -> &RwLock<HashMap<RegistrationId, Box<Registration>>> {
        &self.by_id[(id.0 as usize) % SHARDS]
    }

    fn endpoint_shard(&self, endpoint: &str) -> &RwLock<HashMap<Box<str>, RegistrationId>> {
        &self.by_endpoint[self.slot(endpoint)]
    }

    fn peer_shard(&self, key: &PeerKey) -> &RwLock<PeerShard> {
        &self.by_peer[self.slot(key)]
    }

    fn index_peer(&self, reg: &Registration) {
        let key = (reg.socket, reg.peer);
        write(self.peer_shard(&key)).index(key, reg.id);
    }

    fn unindex_peer(&self, reg: &Registration) {
        let key = (reg.socket, reg.peer);
        write(self.peer_shard(&key)).unindex(key, reg.id);
    }

    fn remove_where(
        &self,
        id: RegistrationId,
        pred: impl Fn(&Registration) -> bool,
    ) -> Result<Option<Registration>, StoreError> {
        let Some(endpoint) = read(self.id_shard(id)).get(&id).map(|r| r.endpoint.clone()) else {
            return Ok(None);
        };
        let mut e = write(self.endpoint_shard(&endpoint));
        let reg = {
            let mut s = write(self.id_shard(id));
            match s.get(&id) {
                Some(r) if pred(r) => s.remove(&id),
                _ => None,
            }
        };
        let Some(reg) = reg else { return Ok(None) };
        if e.get(endpoint.as_str()) == Some(&id) {
            e.remove(endpoint.as_str());
        }
        drop(e);
        self.unindex_peer(&reg);
        self.len.fetch_sub(1, Ordering::Relaxed);
        Ok(Some(*reg))
    }
}

impl RegistrationStore for MemoryRegistrationStore {
    fn add(&self, registration: Registration) -> Result<Option<Registration>, StoreError> {
        let id = registration.id;
        let mut e = write(self.endpoint_shard(&registration.endpoint));
        if let Some(other) = read(self.id_shard(id)).get(&id) {
            if other.endpoint != registration.endpoint {
                return Err(StoreError::IdInUse(id));
            }
        }
        let old_id = e.insert(registration.endpoint.as_str().into(), id);
        let old = old_id.and_then(|oid| write(self.id_shard(oid)).remove(&oid));
        if let Some(old) = &old {
            self.unindex_peer(old);
        }
        self.index_peer(&registration);
        write(self.id_shard(id)).insert(id, Box::new(registration));
        drop(e);
        if old.is_none() {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
        Ok(old.map(|b| *b))
    }

    fn get(&self, id: RegistrationId) -> Result<Option<Registration>, StoreError> {
        Ok(read(self.id_shard(id)).get(&id).map(|r| (**r).clone()))
    }

    fn get_by_endpoint(&self, endpoint: &str) -> Result<Option<Registration>, StoreError> {
        let id = read(self.endpoint_shard(endpoint)).get(endpoint).copied();
        match id {
            Some(id) => self.get(id),
            None => Ok(None),
        }
    }

    fn get_by_peer(&self, socket: u8, peer: SocketAddr) -> Result<Option<Registration>, StoreError> {
        let key = (socket, peer);
        let id = read(self.peer_shard(&key)).current.get(&key).copied();
        match id {
            Some(id) => self.get(id),
            None => Ok(None),
        }
    }

    fn update(
        &self,
        id: RegistrationId,
        change: &mut dyn FnMut(&mut Registration),
    ) -> Result<Option<(Registration, Registration)>, StoreError> {
        let mut s = write(self.id_shard(id));
        let Some(reg) = s.get_mut(&id) else { return Ok(None) };
        let before = (**reg).clone();
        change(reg);
        // The keys of the other maps must not move under them.
        reg.id = before.id;
        if reg.endpoint != before.endpoint {
            reg.endpoint = before.endpoint.clone();
        }
        let after = (**reg).clone();
        if (before.socket, before.peer) != (after.socket, after.peer) {
            self.unindex_peer(&before);
            self.index_peer(&after);
        }
        Ok(Some((before, after)))
    }

    fn remove(&self, id: RegistrationId) -> Result<Option<Registration>, StoreError> {
        self.remove_where(id, |_| true)
    }

    fn remove_if_expired(&self, id: RegistrationId, now_ms: u64) -> Result<Option<Registration>, StoreError> {
        self.remove_where(id, |r| r.is_expired(now_ms))
    }

    fn for_each(&self, f: &mut dyn FnMut(&Registration)) -> Result<(), StoreError> {
        for shard in &self.by_id {
            for reg in read(shard).values() {
                f(reg);
            }
        }
        Ok(())
    }

    fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lwm2m_core::format::link::parse_registration;
    use std::sync::Arc;

    fn reg(ep: &str, port: u16) -> Registration {
        Registration {
            id: RegistrationId::generate(),
            endpoint: ep.into(),
            peer: SocketAddr::from(([127, 0, 0, 1], port)),
            socket: 0,
            identity: None,
            lifetime_s: 60,
            binding: Binding::UDP,
            queue_mode: false,
            version: Version::V1_1,
            sms: None,
            objects: parse_registration(b"</1/0>,</3/0>,</3303>;ver=1.1,</3303/0>").unwrap(),
            registered_at_ms: 1000,
            last_update_ms: 1000,
            expires_ms: 61_000,
            additional: BTreeMap::new(),
        }
    }

    #[test]
    fn ids_are_unique_and_round_trip_as_hex() {
        let ids: std::collections::HashSet<_> = (0..10_000).map(|_| RegistrationId::generate()).collect();
        assert_eq!(ids.len(), 10_000);
        let id = RegistrationId(0x00ab_cdef_0123_4567);
        assert_eq!(id.to_string(), "00abcdef01234567");
        assert_eq!("00abcdef01234567".parse::<RegistrationId>(), Ok(id));
        assert_eq!("ff".parse::<RegistrationId>(), Ok(RegistrationId(255)));
        for bad in ["", "xyz", "00abcdef012345670", "-1", "+1", " 1"] {
            assert!(bad.parse::<RegistrationId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn add_get_replace_remove() {
        let s = MemoryRegistrationStore::new();
        let a = reg("a", 1);
        assert_eq!(s.add(a.clone()).unwrap(), None);
        assert_eq!(s.len(), 1);
        assert_eq!(s.get(a.id).unwrap().as_ref(), Some(&a));
        assert_eq!(s.get_by_endpoint("a").unwrap().as_ref(), Some(&a));
        assert_eq!(s.get_by_peer(0, a.peer).unwrap().as_ref(), Some(&a));
        assert_eq!(s.get_by_peer(1, a.peer).unwrap(), None, "another socket");

        // Re-register from another port: the old one is replaced and every index follows.
        let a2 = reg("a", 2);
        assert_eq!(s.add(a2.clone()).unwrap(), Some(a.clone()));
        assert_eq!(s.len(), 1);
        assert_eq!(s.get(a.id).unwrap(), None);
        assert_eq!(s.get_by_peer(0, a.peer).unwrap(), None);
        assert_eq!(s.get_by_endpoint("a").unwrap().map(|r| r.id), Some(a2.id));

        assert_eq!(s.remove(a2.id).unwrap().map(|r| r.id), Some(a2.id));
        assert_eq!(s.remove(a2.id).unwrap(), None);
        assert!(s.is_empty());
        assert_eq!(s.get_by_endpoint("a").unwrap(), None);
        assert_eq!(s.get_by_peer(0, a2.peer).unwrap(), None);
    }

    #[test]
    fn id_collision_is_refused() {
        let s = MemoryRegistrationStore::new();
        let a = reg("a", 1);
        s.add(a.clone()).unwrap();
        let mut b = reg("b", 2);
        b.id = a.id;
        assert_eq!(s.add(b), Err(StoreError::IdInUse(a.id)));
        assert_eq!(s.get_by_endpoint("b").unwrap(), None);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn update_moves_the_address_index_and_keeps_keys() {
        let s = MemoryRegistrationStore::new();
        let a = reg("a", 1);
        s.add(a.clone()).unwrap();
        let (before, after) = s
            .update(a.id, &mut |r| {
                r.peer = SocketAddr::from(([127, 0, 0, 1], 9));
                r.lifetime_s = 5;
                r.endpoint = "hijack".into();
            })
            .unwrap()
            .unwrap();
        assert_eq!(before, a);
        assert_eq!(after.lifetime_s, 5);
        assert_eq!(after.endpoint, "a", "the endpoint cannot change");
        assert_eq!(s.get_by_peer(0, a.peer).unwrap(), None);
        assert_eq!(s.get_by_peer(0, after.peer).unwrap().map(|r| r.id), Some(a.id));
        assert_eq!(s.update(RegistrationId(1), &mut |_| {}).unwrap(), None);
    }

    #[test]
    fn remove_if_expired_respects_a_later_update() {
        let s = MemoryRegistrationStore::new();
        let a = reg("a", 1);
        s.add(a.clone()).unwrap();
        assert_eq!(s.remove_if_expired(a.id, 60_999).unwrap(), None);
        s.update(a.id, &mut |r| r.expires_ms = 120_000).unwrap();
        assert_eq!(s.remove_if_expired(a.id, 61_000).unwrap(), None);
        assert!(s.remove_if_expired(a.id, 120_000).unwrap().is_some());
        assert!(s.is_empty());
    }

    #[test]
    fn shared_address_keeps_the_newest_and_falls_back_to_the_older() {
        let s = MemoryRegistrationStore::new();
        let a = reg("a", 1);
        let b = reg("b", 1);
        let c = reg("c", 1);
        s.add(a.clone()).unwrap();
        s.add(b.clone()).unwrap();
        s.add(c.clone()).unwrap();
        let at = |s: &MemoryRegistrationStore| s.get_by_peer(0, a.peer).unwrap().map(|r| r.endpoint);
        assert_eq!(at(&s), Some("c".into()));
        s.remove(b.id).unwrap();
        assert_eq!(at(&s), Some("c".into()));
        s.remove(c.id).unwrap();
        assert_eq!(at(&s), Some("a".into()), "the older registration is found again");
        s.remove(a.id).unwrap();
        assert_eq!(at(&s), None);
    }

    #[test]
    fn concurrent_use_keeps_the_indexes_consistent() {
        let s = Arc::new(MemoryRegistrationStore::new());
        let threads: Vec<_> = (0..4u16)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for i in 0..500u16 {
                        let ep = format!("ep-{}", i % 50);
                        let r = reg(&ep, t * 1000 + i);
                        let id = r.id;
                        s.add(r).unwrap();
                        if i % 3 == 0 {
                            s.remove(id).unwrap();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut n = 0;
        s.for_each(&mut |r| {
            n += 1;
            assert_eq!(s.get_by_endpoint(&r.endpoint).unwrap().map(|x| x.id), Some(r.id));
            assert_eq!(s.get_by_peer(r.socket, r.peer).unwrap().map(|x| x.id), Some(r.id));
        })
        .unwrap();
        assert_eq!(n, s.len());
        assert!(n <= 50);
    }

    #[test]
    fn models_follow_the_registered_versions() {
        let registry = ModelRegistry::builtin();
        let mut r = reg("a", 1);
        let m = r.models(&registry);
        assert_eq!(m.object(3303).map(|o| o.version), Some(Version::V1_1));
        assert_eq!(m.object(3).map(|o| o.version), registry.object(3).map(|o| o.version));
        r.objects = parse_registration(b"</3303>;ver=1.0,</3303/0>").unwrap();
        let versions = registry.versions(3303);
        let m = r.models(&registry);
        if versions.contains(&Version::V1_0) {
            assert_eq!(m.object(3303).map(|o| o.version), Some(Version::V1_0));
        }
        // An unknown announced version falls back to the registry's preferred one.
        r.objects = parse_registration(b"</3303>;ver=9.9").unwrap();
        assert_eq!(
            r.models(&registry).object(3303).map(|o| o.version),
            registry.object(3303).map(|o| o.version)
        );
    }

    #[test]
    fn registration_helpers() {
        let r = reg("a", 1);
        assert!(r.location().starts_with("/rd/"));
        assert_eq!(r.root_path(), "/");
        assert!(r.has_object(3303) && r.has_instance(3303, 0));
        assert!(!r.has_instance(3303, 1) && !r.has_object(5));
        assert!(!r.is_expired(60_999) && r.is_expired(61_000));
        assert!(r.content_formats().is_empty());
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn id_text_round_trips(v in any::<u64>()) {
                let id = RegistrationId(v);
                prop_assert_eq!(id.to_string().len(), 16);
                prop_assert_eq!(id.to_string().parse::<RegistrationId>(), Ok(id));
            }

            #[test]
            fn id_parsing_never_panics(s in ".{0,24}") {
                let _ = s.parse::<RegistrationId>();
            }

            /// Any sequence of adds and removes keeps the three indexes consistent with each other.
            #[test]
            fn store_indexes_stay_consistent(ops in prop::collection::vec((0u8..8, 0u16..6, any::<bool>()), 1..60)) {
                let s = MemoryRegistrationStore::new();
                let mut ids = Vec::new();
                for (ep, port, add) in ops {
                    if add || ids.is_empty() {
                        let r = reg(&format!("ep{ep}"), port);
                        ids.push(r.id);
                        s.add(r).unwrap();
                    } else {
                        let id = ids[usize::from(port) % ids.len()];
                        s.remove(id).unwrap();
                    }
                }
                let mut n = 0;
                let mut peers = std::collections::HashSet::new();
                s.for_each(&mut |r| {
                    n += 1;
                    peers.insert((r.socket, r.peer));
                    assert_eq!(s.get_by_endpoint(&r.endpoint).unwrap().map(|x| x.id), Some(r.id));
                    let by_peer = s.get_by_peer(r.socket, r.peer).unwrap().expect("address indexed");
                    assert_eq!(by_peer.peer, r.peer);
                    if let Some(last) = ids.iter().rev().find(|id| matches!(s.get(**id), Ok(Some(x)) if x.peer == r.peer)) {
                        assert_eq!(by_peer.id, *last, "the newest registration at an address wins");
                    }
                }).unwrap();
                prop_assert_eq!(n, s.len());
            }
        }
    }
}
