//! Errors of the DTLS layer.

use thiserror::Error;

/// An error returned by the DTLS layer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DtlsError {
    /// The requested feature is not available with this backend or library version.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The configuration is invalid (bad key, certificate, identity...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The TLS library reported an error.
    #[error("TLS library error: {0}")]
    Tls(String),
    /// The session is closed; nothing can be sent.
    #[error("session closed")]
    Closed,
    /// No session exists for this peer.
    #[error("no session for this peer")]
    NoSession,
    /// The application record is larger than a DTLS record can carry (16384 bytes).
    #[error("application data of {0} bytes exceeds 16384")]
    TooLarge(usize),
    /// Too much application data is queued while the handshake runs.
    #[error("send queue full while the handshake is in progress")]
    QueueFull,
}

impl From<openssl::error::ErrorStack> for DtlsError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        DtlsError::Tls(e.to_string())
    }
}

/// Result alias of this crate.
pub type Result<T, E = DtlsError> = std::result::Result<T, E>;
