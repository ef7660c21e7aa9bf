//! lwm2m-server: the LwM2M 1.1 server role.
//!
//! - [`server`]: the tokio service. [`Server::start`] runs it on one or more CoAP sockets (plain and/or DTLS
//!   drivers from `lwm2m-coap`) and returns a [`ServerHandle`] and a stream of [`Event`]s. It answers
//!   Register, Update, De-register and Send, expires registrations, holds requests for sleeping queue-mode
//!   clients and runs on-registration actions.
//! - [`request`]: the typed DM&SE and Information Reporting requests ([`Request`]) and responses
//!   ([`Response`], [`Content`]), and how they map to CoAP (sans-IO).
//! - [`registry`]: [`Registration`] and the [`RegistrationStore`] trait with its sharded in-memory
//!   implementation.
//! - [`observation`], [`queue`], [`event`], [`error`]: observations, queue-mode state, events, errors.
//! - [`registration`]: parsing and validation of Register, Update and De-register requests (digest §4.1, §4.2)
//!   with the CoAP error code each failure maps to.
//! - [`security`]: the security store (PSK, RPK, X.509 per endpoint) and the endpoint ↔ credential binding
//!   checks, shared with the DTLS handshake.
//! - [`clock`]: the injectable millisecond clock.
//! - [`store`]: persistence in redb: [`store::RedbRegistrationStore`] and [`store::PersistentSecurity`] over
//!   one [`store::ServerDb`] file, with a versioned binary record per registration, credential, observation
//!   and request held for a sleeping queue-mode client (a restarted server sends those when the client wakes
//!   and reports each outcome as [`Event::QueuedRequestDone`]).
//!
//! ```no_run
//! use lwm2m_server::{Event, RequestOptions, Server, ServerConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let (server, mut events) = Server::bind(ServerConfig::default(), "0.0.0.0:5683".parse()?).await?;
//! while let Ok(ev) = events.recv().await {
//!     if let Event::Registered { registration, .. } = ev {
//!         let r = server.read(&registration.endpoint, "/3/0/0".parse()?, RequestOptions::default()).await?;
//!         println!("{} is made by {:?}", registration.endpoint, r.node());
//!     }
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod clock;
pub mod error;
pub mod event;
pub mod observation;
pub mod queue;
pub mod registration;
pub mod registry;
pub mod request;
pub mod security;
pub mod server;
pub mod store;

pub use error::ServerError;
pub use event::Event;
pub use observation::{CancelMode, ObservationEndReason, ObservationId, ObservationInfo};
pub use queue::{Presence, QueuedRequest, QueuedRequestInfo};
pub use registry::{MemoryRegistrationStore, Registration, RegistrationId, RegistrationStore, StoreError};
pub use request::{Content, Request, RequestOptions, Response, WriteMode};
pub use server::{OnRegistration, Server, ServerConfig, ServerHandle, ServerStats, Socket, StartError};
