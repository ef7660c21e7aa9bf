//! lwm2m-dtls: DTLS 1.2 sessions for lwm2m-rs, sans-IO.
//!
//! - [`session::DtlsSession`]: the backend-neutral session interface (datagrams and time in, datagrams,
//!   application data and deadlines out).
//! - [`openssl_backend::OpensslSession`]: the OpenSSL implementation (one `SslStream` over an in-memory
//!   datagram channel per peer).
//! - [`server::DtlsServer`]: many peers behind one socket, stateless HMAC cookies before any per-peer state,
//!   limits, eviction, session resumption, events.
//! - [`client::DtlsClient`]: one connection, reconnect with session resumption.
//! - [`coap_layer`]: CoAP over DTLS: `lwm2m-coap`'s `DatagramSecurity` hook for the server
//!   ([`coap_layer::DtlsServerLayer`]) and client ([`coap_layer::DtlsClientLayer`]) roles.
//!
//! Security modes: PSK and X.509 work; RPK (RFC 7250) needs the `vendored` feature (OpenSSL >= 3.2, built from
//! source) and otherwise returns [`DtlsError::Unsupported`].
//!
//! `unsafe` is denied everywhere except `ffi.rs` (client-side `SSL_set_session`; with `vendored`, the OpenSSL
//! 3.2 RPK calls).
#![deny(unsafe_code)]

pub mod client;
pub mod coap_layer;
pub mod config;
pub mod cookie;
pub mod credentials;
pub mod error;
mod ffi;
pub mod openssl_backend;
pub mod record;
pub mod server;
pub mod session;

pub use client::{ClientConfig, ClientSecurity, DtlsClient};
pub use config::{CertificateUsage, CertifiedKey, CipherOptions, CipherSuite, RawPublicKey, ServerTrust, Timing};
pub use credentials::{CredentialStore, MemoryCredentialStore};
pub use error::{DtlsError, Result};
pub use openssl_backend::OpensslSession;
pub use server::{DtlsServer, ServerConfig, ServerEvent, ServerStats, ServerX509};
pub use session::{CloseReason, DtlsSession, PeerIdentity, SessionState};

/// Version of the linked OpenSSL library, e.g. "OpenSSL 3.0.19 27 Jan 2026".
pub fn openssl_version() -> &'static str {
    openssl::version::version()
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;
