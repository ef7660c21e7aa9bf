//! The redb-backed stores: one database file holds a `registrations` table (registration id → record), a
//! `security` table (endpoint → record), an `observations` table (observation id → record) and a
//! `queued_requests` table (queue id → record of a request held for a sleeping client); records are encoded
//! by [`super::encode_registration`], [`super::encode_security`], [`super::encode_observation`] and
//! [`super::encode_queued_request`].
//!
//! Reads never touch the file: both stores keep everything in memory (loaded when opened). Every change is
//! one redb write transaction, committed with immediate durability before the call returns, so a change the
//! caller saw succeed survives a crash (even `SIGKILL`) of the process.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use ::redb::{Database, ReadableTable, TableDefinition};
use thiserror::Error;

use super::{
    decode_observation, decode_queued_request, decode_registration, decode_security, encode_observation,
    encode_queued_request, encode_registration, encode_security, RecordError,
};
use crate::observation::{ObservationId, ObservationInfo};
use crate::queue::QueuedRequest;
use crate::registry::{MemoryRegistrationStore, Registration, RegistrationId, RegistrationStore, StoreError};
use crate::security::{MemorySecurityStore, SecurityChange, SecurityInfo};

const REGISTRATIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("registrations");
const SECURITY: TableDefinition<&str, &[u8]> = TableDefinition::new("security");
const OBSERVATIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("observations");
const QUEUED_REQUESTS: TableDefinition<u64, &[u8]> = TableDefinition::new("queued_requests");

/// Why the persistent store could not be opened, loaded or written.
#[derive(Debug, Error)]
pub enum PersistError {
    /// The database file could not be opened or created.
    #[error("cannot open the database {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    /// A redb operation failed.
    #[error("database error: {0}")]
    Database(Box<::redb::Error>),
    /// A stored record could not be decoded.
    #[error("stored {table} record {key} is corrupt: {error}")]
    Corrupt {
        table: &'static str,
        key: String,
        #[source]
        error: RecordError,
    },
    /// Writing the registrations loaded at open back failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// A stored security record was refused by the in-memory store (e.g. a duplicate PSK identity).
    #[error("stored security record {endpoint:?} was refused: {error}")]
    Refused {
        endpoint: String,
        #[source]
        error: crate::security::StoreError,
    },
}

fn db_err(e: impl Into<::redb::Error>) -> PersistError {
    PersistError::Database(Box::new(e.into()))
}

/// One database file with the server's persistent state. Cheap to clone (the file is opened once; redb
/// refuses a second open of the same file, in this process or another).
#[derive(Clone)]
pub struct ServerDb {
    db: Arc<Database>,
    path: PathBuf,
}

impl fmt::Debug for ServerDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerDb").field("path", &self.path).finish()
    }
}

impl ServerDb {
    /// Opens the database at `path`, creating the file and its tables if missing.
    pub fn open(path: impl AsRef<Path>) -> Result<ServerDb, PersistError> {
        let path = path.as_ref().to_path_buf();
        let db = Database::create(&path).map_err(|e| PersistError::Open {
            reason: match e {
                ::redb::DatabaseError::DatabaseAlreadyOpen => {
                    "it is already open (is another lwm2m server using this data directory?)".to_string()
                }
                e => e.to_string(),
            },
            path: path.clone(),
        })?;
        let txn = db.begin_write().map_err(db_err)?;
        txn.open_table(REGISTRATIONS).map_err(db_err)?;
        txn.open_table(SECURITY).map_err(db_err)?;
        txn.open_table(OBSERVATIONS).map_err(db_err)?;
        txn.open_table(QUEUED_REQUESTS).map_err(db_err)?;
        txn.commit().map_err(db_err)?;
        Ok(ServerDb { db: Arc::new(db), path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The registration store of this database, loaded into memory. Open it once.
    pub fn registrations(&self) -> Result<RedbRegistrationStore, PersistError> {
        RedbRegistrationStore::load(self.db.clone())
    }

    /// The security store of this database, loaded into memory. Open it once.
    pub fn security(&self) -> Result<PersistentSecurity, PersistError> {
        PersistentSecurity::load(self.db.clone())
    }
}

fn lock(m: &Mutex<()>) -> MutexGuard<'_, ()> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A [`RegistrationStore`] persisted in redb: lookups are answered by an inner [`MemoryRegistrationStore`],
/// and each add, update and removal is written through in one transaction before the call returns. Writes
/// are serialized (redb allows one write transaction at a time anyway), so the file sees the changes in the
/// order the memory did. If the write fails, the memory change is undone and [`StoreError::Backend`] is
/// returned.
pub struct RedbRegistrationStore {
    memory: MemoryRegistrationStore,
    db: Arc<Database>,
    writes: Mutex<()>,
}

impl fmt::Debug for RedbRegistrationStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbRegistrationStore")
            .field("registrations", &self.memory.len())
            .finish()
    }
}

impl RedbRegistrationStore {
    /// Opens (creating if missing) the database at `path` and loads its registrations. Use [`ServerDb`]
    /// to share the file with a [`PersistentSecurity`].
    pub fn open(path: impl AsRef<Path>) -> Result<RedbRegistrationStore, PersistError> {
        ServerDb::open(path)?.registrations()
    }

    fn load(db: Arc<Database>) -> Result<RedbRegistrationStore, PersistError> {
        let mut records = Vec::new();
        {
            let txn = db.begin_read().map_err(db_err)?;
            let table = txn.open_table(REGISTRATIONS).map_err(db_err)?;
            for item in table.iter().map_err(db_err)? {
                let (k, v) = item.map_err(db_err)?;
                let reg = decode_registration(v.value()).map_err(|error| PersistError::Corrupt {
                    table: "registrations",
                    key: RegistrationId(k.value()).to_string(),
                    error,
                })?;
                records.push((k.value(), reg));
            }
        }
        // Oldest first, so that if an endpoint has two records (which the write-through never leaves
        // behind, but a hand-edited file might) the newest wins; an id clash drops the later record.
        records.sort_by_key(|(_, r)| r.last_update_ms);
        let memory = MemoryRegistrationStore::new();
        let keys: Vec<u64> = records.iter().map(|(k, _)| *k).collect();
        for (_, reg) in records {
            let _ = memory.add(reg);
        }
        let store = RedbRegistrationStore {
            memory,
            db,
            writes: Mutex::new(()),
        };
        // A corrupt observation or held-request record is reported at open, like a corrupt registration.
        store.read_observations()?;
        store.read_queued_requests()?;
        let consistent = store.memory.len() == keys.len()
            && keys
                .iter()
                .all(|k| matches!(store.memory.get(RegistrationId(*k)), Ok(Some(_))));
        if !consistent {
            tracing::warn!(
                records = keys.len(),
                kept = store.memory.len(),
                "stale or duplicate registration records dropped"
            );
            let mut kept = Vec::new();
            store.memory.for_each(&mut |r| kept.push(r.clone()))?;
            store.write(|t| {
                for k in &keys {
                    t.remove(*k)?;
                }
                for r in &kept {
                    t.insert(r.id.0, encode_registration(r).as_slice())?;
                }
                Ok(())
            })?;
        }
        Ok(store)
    }

    /// One write transaction on the registrations table.
    fn write(
        &self,
        f: impl FnOnce(&mut ::redb::Table<u64, &[u8]>) -> Result<(), ::redb::StorageError>,
    ) -> Result<(), StoreError> {
        let backend = |e: ::redb::Error| StoreError::Backend(e.to_string());
        let txn = self.db.begin_write().map_err(|e| backend(e.into()))?;
        {
            let mut table = txn.open_table(REGISTRATIONS).map_err(|e| backend(e.into()))?;
            f(&mut table).map_err(|e| backend(e.into()))?;
        }
        txn.commit().map_err(|e| backend(e.into()))
    }

    /// Every record of the observations table, decoded.
    fn read_observations(&self) -> Result<Vec<ObservationInfo>, PersistError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(OBSERVATIONS).map_err(db_err)?;
        let mut out = Vec::new();
        for item in table.iter().map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            let o = decode_observation(v.value()).map_err(|error| PersistError::Corrupt {
                table: "observations",
                key: ObservationId(k.value()).to_string(),
                error,
            })?;
            out.push(o);
        }
        Ok(out)
    }

    /// Every record of the queued requests table, decoded, oldest (smallest id) first.
    fn read_queued_requests(&self) -> Result<Vec<QueuedRequest>, PersistError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(QUEUED_REQUESTS).map_err(db_err)?;
        let mut out = Vec::new();
        for item in table.iter().map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            let corrupt = |error| PersistError::Corrupt {
                table: "queued_requests",
                key: k.value().to_string(),
                error,
            };
            let q = decode_queued_request(v.value()).map_err(corrupt)?;
            if q.id != k.value() {
                return Err(corrupt(RecordError::Invalid {
                    offset: 1,
                    field: "id",
                    reason: "differs from the record's key",
                }));
            }
            out.push(q);
        }
        Ok(out)
    }

    /// One write transaction on the observations table.
    fn write_observations(
        &self,
        f: impl FnOnce(&mut ::redb::Table<u64, &[u8]>) -> Result<(), ::redb::StorageError>,
    ) -> Result<(), StoreError> {
        self.write_table(OBSERVATIONS, f)
    }

    /// One write transaction on a table keyed by id (observations, queued requests).
    fn write_table(
        &self,
        table: TableDefinition<u64, &[u8]>,
        f: impl FnOnce(&mut ::redb::Table<u64, &[u8]>) -> Result<(), ::redb::StorageError>,
    ) -> Result<(), StoreError> {
        let backend = |e: ::redb::Error| StoreError::Backend(e.to_string());
        let _w = lock(&self.writes);
        let txn = self.db.begin_write().map_err(|e| backend(e.into()))?;
        {
            let mut table = txn.open_table(table).map_err(|e| backend(e.into()))?;
            f(&mut table).map_err(|e| backend(e.into()))?;
        }
        txn.commit().map_err(|e| backend(e.into()))
    }

    fn remove_with(
        &self,
        remove: impl FnOnce(&MemoryRegistrationStore) -> Result<Option<Registration>, StoreError>,
    ) -> Result<Option<Registration>, StoreError> {
        let _w = lock(&self.writes);
        let Some(old) = remove(&self.memory)? else {
            return Ok(None);
        };
        if let Err(e) = self.write(|t| t.remove(old.id.0).map(drop)) {
            let _ = self.memory.add(old);
            return Err(e);
        }
        Ok(Some(old))
    }
}

impl RegistrationStore for RedbRegistrationStore {
    fn add(&self, registration: Registration) -> Result<Option<Registration>, StoreError> {
        let id = registration.id;
        let record = encode_registration(&registration);
        let _w = lock(&self.writes);
        let old = self.memory.add(registration)?;
        let written = self.write(|t| {
            if let Some(old) = old.as_ref().filter(|o| o.id != id) {
                t.remove(old.id.0)?;
            }
            t.insert(id.0, record.as_slice()).map(drop)
        });
        if let Err(e) = written {
            let _ = self.memory.remove(id);
            if let Some(old) = old {
                let _ = self.memory.add(old);
            }
            return Err(e);
        }
        Ok(old)
    }

    fn get(&self, id: RegistrationId) -> Result<Option<Registration>, StoreError> {
        self.memory.get(id)
    }

    fn get_by_endpoint(&self, endpoint: &str) -> Result<Option<Registration>, StoreError> {
        self.memory.get_by_endpoint(endpoint)
    }

    fn get_by_peer(&self, socket: u8, peer: SocketAddr) -> Result<Option<Registration>, StoreError> {
        self.memory.get_by_peer(socket, peer)
    }

    fn update(
        &self,
        id: RegistrationId,
        change: &mut dyn FnMut(&mut Registration),
    ) -> Result<Option<(Registration, Registration)>, StoreError> {
        let _w = lock(&self.writes);
        let Some((before, after)) = self.memory.update(id, change)? else {
            return Ok(None);
        };
        if before != after {
            let record = encode_registration(&after);
            if let Err(e) = self.write(|t| t.insert(id.0, record.as_slice()).map(drop)) {
                let _ = self.memory.update(id, &mut |r| *r = before.clone());
                return Err(e);
            }
        }
        Ok(Some((before, after)))
    }

    fn remove(&self, id: RegistrationId) -> Result<Option<Registration>, StoreError> {
        self.remove_with(|m| m.remove(id))
    }

    fn remove_if_expired(&self, id: RegistrationId, now_ms: u64) -> Result<Option<Registration>, StoreError> {
        self.remove_with(|m| m.remove_if_expired(id, now_ms))
    }

    fn for_each(&self, f: &mut dyn FnMut(&Registration)) -> Result<(), StoreError> {
        self.memory.for_each(f)
    }

    fn len(&self) -> usize {
        self.memory.len()
    }

    fn save_observation(&self, observation: &ObservationInfo) -> Result<(), StoreError> {
        let Some(record) = encode_observation(observation) else {
            return Err(StoreError::Backend(format!(
                "{} is not an observe request",
                observation.request.name()
            )));
        };
        self.write_observations(|t| t.insert(observation.id.0, record.as_slice()).map(drop))
    }

    fn remove_observation(&self, id: ObservationId) -> Result<(), StoreError> {
        self.write_observations(|t| t.remove(id.0).map(drop))
    }

    fn observations(&self) -> Result<Vec<ObservationInfo>, StoreError> {
        self.read_observations().map_err(|e| StoreError::Backend(e.to_string()))
    }

    fn save_queued_request(&self, request: &QueuedRequest) -> Result<(), StoreError> {
        let record = encode_queued_request(request);
        self.write_table(QUEUED_REQUESTS, |t| t.insert(request.id, record.as_slice()).map(drop))
    }

    fn remove_queued_request(&self, id: u64) -> Result<(), StoreError> {
        self.write_table(QUEUED_REQUESTS, |t| t.remove(id).map(drop))
    }

    fn queued_requests(&self) -> Result<Vec<QueuedRequest>, StoreError> {
        self.read_queued_requests()
            .map_err(|e| StoreError::Backend(e.to_string()))
    }
}

/// Security credentials persisted in redb: a [`MemorySecurityStore`] (what the server, the DTLS handshake and
/// the web API use) loaded from the file when opened, whose listener writes every `put` and `remove` to the
/// file. A write that fails is logged (the change stays in memory only).
pub struct PersistentSecurity {
    store: Arc<MemorySecurityStore>,
    db: Arc<Database>,
}

impl fmt::Debug for PersistentSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersistentSecurity")
            .field("store", &self.store)
            .finish()
    }
}

impl PersistentSecurity {
    fn load(db: Arc<Database>) -> Result<PersistentSecurity, PersistError> {
        let store = Arc::new(MemorySecurityStore::new());
        {
            let txn = db.begin_read().map_err(db_err)?;
            let table = txn.open_table(SECURITY).map_err(db_err)?;
            for item in table.iter().map_err(db_err)? {
                let (k, v) = item.map_err(db_err)?;
                let key = k.value();
                let info = decode_security(v.value()).map_err(|error| PersistError::Corrupt {
                    table: "security",
                    key: format!("{key:?}"),
                    error,
                })?;
                if info.endpoint != key {
                    return Err(PersistError::Corrupt {
                        table: "security",
                        key: format!("{key:?}"),
                        error: RecordError::Invalid {
                            offset: 1,
                            field: "endpoint",
                            reason: "differs from the record's key",
                        },
                    });
                }
                store.put(info).map_err(|error| PersistError::Refused {
                    endpoint: key.to_string(),
                    error,
                })?;
            }
        }
        let persistent = PersistentSecurity { store, db };
        let writer = PersistentSecurity {
            store: Arc::new(MemorySecurityStore::new()),
            db: persistent.db.clone(),
        };
        persistent.store.set_listener(Box::new(move |change| {
            let (endpoint, result) = match change {
                SecurityChange::Put(info) => (info.endpoint.as_str(), writer.save(info)),
                SecurityChange::Removed(ep) => (ep, writer.delete(ep).map(drop)),
            };
            if let Err(e) = result {
                tracing::error!(%endpoint, error = %e, "security change not persisted; it is lost at restart");
            }
        }));
        Ok(persistent)
    }

    /// The in-memory store to give the server and the web API; its changes are persisted.
    pub fn store(&self) -> &Arc<MemorySecurityStore> {
        &self.store
    }

    /// Writes `info` to the file (one transaction). The store's listener does this for every `put`; call it
    /// directly only to persist an entry without changing the store.
    pub fn save(&self, info: &SecurityInfo) -> Result<(), PersistError> {
        let record = encode_security(info);
        let txn = self.db.begin_write().map_err(db_err)?;
        txn.open_table(SECURITY)
            .map_err(db_err)?
            .insert(info.endpoint.as_str(), record.as_slice())
            .map_err(db_err)?;
        txn.commit().map_err(db_err)
    }

    /// Deletes an endpoint's entry from the file (one transaction); true if there was one. The store's
    /// listener does this for every `remove`.
    pub fn delete(&self, endpoint: &str) -> Result<bool, PersistError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let existed = txn
            .open_table(SECURITY)
            .map_err(db_err)?
            .remove(endpoint)
            .map_err(db_err)?
            .is_some();
        txn.commit().map_err(db_err)?;
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registration::Binding;
    use crate::security::{Credential, SecurityStore};
    use lwm2m_core::format::link::parse_registration;
    use lwm2m_core::model::Version;
    use std::collections::BTreeMap;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!(
                "lwm2m-store-{name}-{}-{}",
                std::process::id(),
                RegistrationId::generate()
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        fn file(&self) -> PathBuf {
            self.0.join("server.redb")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

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
            objects: parse_registration(b"</1/0>,</3/0>").unwrap(),
            registered_at_ms: 1000,
            last_update_ms: 1000,
            expires_ms: 61_000,
            additional: BTreeMap::new(),
        }
    }

    fn all(s: &dyn RegistrationStore) -> Vec<Registration> {
        let mut v = Vec::new();
        s.for_each(&mut |r| v.push(r.clone())).unwrap();
        v.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        v
    }

    fn observation(id: u64, reg: RegistrationId, path: &str) -> ObservationInfo {
        ObservationInfo {
            id: ObservationId(id),
            registration_id: reg,
            endpoint: "a".into(),
            request: crate::request::Request::Observe {
                path: lwm2m_core::Path::parse(path).unwrap(),
            },
            token: vec![1, 2, 3, 4],
            format: None,
            created_ms: 5,
        }
    }

    #[test]
    fn observations_survive_reopening_and_a_corrupt_one_is_a_typed_error() {
        let dir = TempDir::new("observations");
        let a = reg("a", 1);
        let (o1, o2) = (observation(1, a.id, "/3/0/9"), observation(2, a.id, "/3/0/13"));
        {
            let s = RedbRegistrationStore::open(dir.file()).unwrap();
            s.add(a.clone()).unwrap();
            s.save_observation(&o1).unwrap();
            s.save_observation(&o2).unwrap();
            s.remove_observation(ObservationId(1)).unwrap();
            s.remove_observation(ObservationId(99)).unwrap();
            let read = crate::request::Request::Read {
                path: lwm2m_core::Path::parse("/3").unwrap(),
            };
            assert!(matches!(
                s.save_observation(&ObservationInfo {
                    request: read,
                    ..o1.clone()
                }),
                Err(StoreError::Backend(_))
            ));
        }
        {
            let s = RedbRegistrationStore::open(dir.file()).unwrap();
            assert_eq!(s.observations().unwrap(), vec![o2.clone()]);
            s.write_observations(|t| t.insert(7, &[1u8, 0][..]).map(drop)).unwrap();
        }
        match RedbRegistrationStore::open(dir.file()) {
            Err(PersistError::Corrupt { table, key, error }) => {
                assert_eq!((table, key.as_str()), ("observations", "obs-7"));
                assert_eq!(error, RecordError::Truncated { offset: 1, field: "id" });
            }
            other => panic!("{other:?}"),
        }
    }

    fn queued(id: u64, reg: RegistrationId) -> QueuedRequest {
        QueuedRequest {
            id,
            endpoint: "a".into(),
            registration_id: reg,
            request: crate::request::Request::Execute {
                path: lwm2m_core::Path::parse("/3/0/4").unwrap(),
                arguments: Some("5".into()),
            },
            format: None,
            queued_at_ms: 10,
            deadline_ms: 20,
        }
    }

    #[test]
    fn queued_requests_survive_reopening_and_a_corrupt_one_is_a_typed_error() {
        let dir = TempDir::new("queued");
        let a = reg("a", 1);
        {
            let s = RedbRegistrationStore::open(dir.file()).unwrap();
            s.add(a.clone()).unwrap();
            for id in [3, 1, 2] {
                s.save_queued_request(&queued(id, a.id)).unwrap();
            }
            s.remove_queued_request(2).unwrap();
            s.remove_queued_request(99).unwrap();
        }
        {
            let s = RedbRegistrationStore::open(dir.file()).unwrap();
            assert_eq!(
                s.queued_requests().unwrap(),
                vec![queued(1, a.id), queued(3, a.id)],
                "oldest first"
            );
            // A record under another record's key.
            let moved = encode_queued_request(&queued(4, a.id));
            s.write_table(QUEUED_REQUESTS, |t| t.insert(5, moved.as_slice()).map(drop))
                .unwrap();
        }
        match RedbRegistrationStore::open(dir.file()) {
            Err(PersistError::Corrupt { table, key, error }) => {
                assert_eq!((table, key.as_str()), ("queued_requests", "5"));
                assert_eq!(
                    error,
                    RecordError::Invalid {
                        offset: 1,
                        field: "id",
                        reason: "differs from the record's key"
                    }
                );
            }
            other => panic!("{other:?}"),
        }
        {
            let db = ServerDb::open(dir.file()).unwrap();
            let txn = db.db.begin_write().unwrap();
            {
                let mut t = txn.open_table(QUEUED_REQUESTS).unwrap();
                t.remove(5).unwrap();
                t.insert(6, &[1u8, 0, 0, 0, 0, 0, 0, 0, 6, 0][..]).unwrap();
            }
            txn.commit().unwrap();
        }
        match RedbRegistrationStore::open(dir.file()) {
            Err(PersistError::Corrupt { table, key, error }) => {
                assert_eq!((table, key.as_str()), ("queued_requests", "6"));
                assert_eq!(
                    error,
                    RecordError::Truncated {
                        offset: 9,
                        field: "registration id"
                    }
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn registrations_survive_reopening() {
        let dir = TempDir::new("reopen");
        let (a, b, c) = (reg("a", 1), reg("b", 2), reg("c", 3));
        let a2 = reg("a", 4);
        let expected = {
            let s = RedbRegistrationStore::open(dir.file()).unwrap();
            assert!(s.is_empty());
            s.add(a.clone()).unwrap();
            s.add(b.clone()).unwrap();
            s.add(c.clone()).unwrap();
            // Re-register: replaces a (new id), the old record must go too.
            assert_eq!(s.add(a2.clone()).unwrap(), Some(a.clone()));
            s.update(b.id, &mut |r| {
                r.lifetime_s = 5;
                r.peer = SocketAddr::from(([127, 0, 0, 1], 9));
            })
            .unwrap()
            .unwrap();
            assert!(s.remove(c.id).unwrap().is_some());
            assert_eq!(s.remove_if_expired(b.id, 0).unwrap(), None);
            all(&s)
        };
        assert_eq!(expected.len(), 2);
        let s = RedbRegistrationStore::open(dir.file()).unwrap();
        assert_eq!(all(&s), expected);
        assert_eq!(s.get(a.id).unwrap(), None);
        assert_eq!(s.get_by_endpoint("a").unwrap().map(|r| r.id), Some(a2.id));
        assert_eq!(
            s.get_by_peer(0, SocketAddr::from(([127, 0, 0, 1], 9)))
                .unwrap()
                .map(|r| r.id),
            Some(b.id)
        );
        assert_eq!(s.get_by_endpoint("b").unwrap().map(|r| r.lifetime_s), Some(5));
        // Removals persist as well.
        assert!(s.remove_if_expired(b.id, 61_000).unwrap().is_some());
        drop(s);
        let s = RedbRegistrationStore::open(dir.file()).unwrap();
        assert_eq!(all(&s).iter().map(|r| r.endpoint.as_str()).collect::<Vec<_>>(), ["a"]);
    }

    #[test]
    fn an_id_clash_changes_nothing() {
        let dir = TempDir::new("clash");
        let s = RedbRegistrationStore::open(dir.file()).unwrap();
        let a = reg("a", 1);
        s.add(a.clone()).unwrap();
        let mut b = reg("b", 2);
        b.id = a.id;
        assert_eq!(s.add(b), Err(StoreError::IdInUse(a.id)));
        drop(s);
        let s = RedbRegistrationStore::open(dir.file()).unwrap();
        assert_eq!(all(&s), vec![a]);
    }

    #[test]
    fn a_second_open_of_the_file_is_refused() {
        let dir = TempDir::new("twice");
        let db = ServerDb::open(dir.file()).unwrap();
        let e = ServerDb::open(dir.file()).unwrap_err();
        assert!(e.to_string().contains("already open"), "{e}");
        drop(db);
        assert!(ServerDb::open(dir.file()).is_ok());
    }

    #[test]
    fn a_corrupt_record_is_a_typed_error() {
        let dir = TempDir::new("corrupt");
        {
            let db = ServerDb::open(dir.file()).unwrap();
            let txn = db.db.begin_write().unwrap();
            txn.open_table(REGISTRATIONS)
                .unwrap()
                .insert(7, &[1u8, 0, 0][..])
                .unwrap();
            txn.commit().unwrap();
        }
        match RedbRegistrationStore::open(dir.file()) {
            Err(PersistError::Corrupt { table, key, error }) => {
                assert_eq!((table, key.as_str()), ("registrations", "0000000000000007"));
                assert_eq!(error, RecordError::Truncated { offset: 1, field: "id" });
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn duplicate_records_are_repaired_at_open_and_the_newest_wins() {
        let dir = TempDir::new("dup");
        let old = reg("a", 1);
        let mut new = reg("a", 2);
        new.last_update_ms = 5000;
        {
            let db = ServerDb::open(dir.file()).unwrap();
            let txn = db.db.begin_write().unwrap();
            {
                let mut t = txn.open_table(REGISTRATIONS).unwrap();
                t.insert(new.id.0, encode_registration(&new).as_slice()).unwrap();
                t.insert(old.id.0, encode_registration(&old).as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
        let s = RedbRegistrationStore::open(dir.file()).unwrap();
        assert_eq!(all(&s), vec![new.clone()]);
        let txn = s.db.begin_read().unwrap();
        let t = txn.open_table(REGISTRATIONS).unwrap();
        assert_eq!(t.iter().unwrap().count(), 1, "the stale record is gone from the file");
        assert!(t.get(new.id.0).unwrap().is_some());
    }

    #[test]
    fn security_changes_are_persisted_through_the_listener() {
        let dir = TempDir::new("security");
        let psk = SecurityInfo {
            endpoint: "dev-s".into(),
            credential: Credential::Psk {
                identity: "id-s".into(),
                key: vec![1, 2, 3],
            },
        };
        let x509 = SecurityInfo {
            endpoint: "dev-x".into(),
            credential: Credential::X509,
        };
        {
            let db = ServerDb::open(dir.file()).unwrap();
            let sec = db.security().unwrap();
            sec.store().put(psk.clone()).unwrap();
            sec.store().put(x509.clone()).unwrap();
            sec.store().remove("dev-x");
            sec.store().put(x509.clone()).unwrap();
            sec.store().remove("dev-x");
            // A refused put changes nothing on disk either.
            let stolen = SecurityInfo {
                endpoint: "other".into(),
                ..psk.clone()
            };
            assert!(sec.store().put(stolen).is_err());
            sec.store().remove("other");
        }
        let db = ServerDb::open(dir.file()).unwrap();
        let sec = db.security().unwrap();
        assert_eq!(sec.store().list(), vec![psk.clone()]);
        assert_eq!(sec.store().by_psk_identity(b"id-s"), Some(psk));
        // save/delete work on the file directly.
        sec.save(&x509).unwrap();
        assert!(sec.delete("dev-s").unwrap());
        assert!(!sec.delete("dev-s").unwrap());
        drop(sec);
        assert_eq!(db.security().unwrap().store().list(), vec![x509]);
    }
}
