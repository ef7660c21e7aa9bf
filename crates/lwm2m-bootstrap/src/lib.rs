//! lwm2m-bootstrap: the LwM2M 1.1 Bootstrap-Server role (digest §3).
//!
//! - [`config`]: the per-endpoint [`BootstrapConfig`]: server accounts (Security + Server instances with the
//!   1.1 registration-procedure resources 13–20), the Bootstrap-Server account rewrite, Access Control
//!   instances, writes to any object, deletes, the content-format preference and the BsR-7
//!   [`RepairPolicy`]; the device's own credentials with this Bootstrap-Server.
//! - [`store`]: the [`ConfigStore`] trait, [`MemoryConfigStore`] and [`FileConfigStore`] (TOML or JSON,
//!   every change written atomically).
//! - [`session`]: one bootstrap session as a sans-IO state machine ([`Session`]): Discover, Read `/1` and
//!   `/2`, the BsR-7 decision per account, Delete, Write, Finish, with events for every step.
//! - [`server`]: the tokio service ([`BootstrapServer::start`]) on a CoAP and/or CoAP over DTLS socket, with
//!   the endpoint ↔ identity check of `lwm2m_server::security`, per-endpoint session logs, events and the
//!   BsR-2 trigger helper.
//!
//! ```no_run
//! use std::sync::Arc;
//! use lwm2m_bootstrap::{BootstrapConfig, BootstrapServer, BootstrapServerConfig, FileConfigStore, ServerAccount};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(FileConfigStore::open("bootstrap.toml")?);
//! let config = BootstrapServerConfig::new(store);
//! let (bs, mut events) =
//!     BootstrapServer::bind(config, Some("0.0.0.0:5683".parse()?), Some("0.0.0.0:5684".parse()?)).await?;
//! bs.put_config(
//!     "urn:imei:490154203237511",
//!     BootstrapConfig::with_servers(vec![ServerAccount::new(101, "coap://dm.example.com", 300)]),
//! )?;
//! while let Some(ev) = events.recv().await {
//!     println!("{} #{}: {:?}", ev.endpoint, ev.session, ev.kind);
//! }
//! # Ok(()) }
//! ```
//!
//! User documentation: `docs/bootstrap.md`.
#![forbid(unsafe_code)]

pub mod config;
pub mod server;
pub mod session;
pub mod store;

pub use config::{
    AclEntry, AclRight, BootstrapAccount, BootstrapConfig, BootstrapCredential, Bytes, ConfigError, ExtraWrite,
    OnFinishRejected, RepairPolicy, Rights, SecurityConfig, ServerAccount,
};
pub use server::{
    dtls_layer, execute_bootstrap_trigger, BootstrapServer, BootstrapServerConfig, BootstrapServerHandle, Event,
    EventKind, LogEntry, Socket, StartError, TriggerError, TriggerTarget,
};
pub use session::{
    AccountRecord, BsRequest, BsResponse, ExistingAccount, Operation, RepairedAccount, Session, SessionEvent,
    SessionParams,
};
pub use store::{ConfigFile, ConfigStore, FileConfigStore, FileFormat, MemoryConfigStore};
