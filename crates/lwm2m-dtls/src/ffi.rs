//! The single `unsafe` call of this crate, isolated here.
//!
//! Client-side session resumption needs `SSL_set_session`, which the `openssl` crate only offers as the
//! `unsafe fn SslRef::set_session`: OpenSSL requires the session to belong to the same `SSL_CTX` as the `SSL`,
//! and the crate cannot check that. There is no safe alternative in the crate (the client-side session cache
//! is not consulted by OpenSSL itself, and `SslContextRef::add_session` is unsafe for the same reason).
#![allow(unsafe_code)]

use openssl::error::ErrorStack;
use openssl::ssl::{SslRef, SslSessionRef};

/// Offers `session` for resumption in the next handshake of `ssl`.
///
/// Callers must pass a session that came from an `Ssl` created from the same `SslContext` as `ssl`.
/// [`crate::client::DtlsClient`] guarantees it: it owns one context for its whole life and only caches sessions
/// of connections made from that context.
pub(crate) fn offer_session(ssl: &mut SslRef, session: &SslSessionRef) -> Result<(), ErrorStack> {
    // SAFETY: see the function documentation; the only caller (DtlsClient::connect) upholds the
    // same-context requirement by construction.
    unsafe { ssl.set_session(session) }
}
