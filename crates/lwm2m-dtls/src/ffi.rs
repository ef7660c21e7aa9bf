//! Every `unsafe` call of this crate, isolated here.
//!
//! # Session resumption (always compiled)
//!
//! Client-side session resumption needs `SSL_set_session`, which the `openssl` crate only offers as the
//! `unsafe fn SslRef::set_session`: OpenSSL requires the session to belong to the same `SSL_CTX` as the `SSL`,
//! and the crate cannot check that. There is no safe alternative in the crate (the client-side session cache
//! is not consulted by OpenSSL itself, and `SslContextRef::add_session` is unsafe for the same reason).
//!
//! # Raw public keys (feature `vendored`)
//!
//! RFC 7250 raw public keys need OpenSSL >= 3.2, whose RPK API the `openssl`/`openssl-sys` crates do not bind.
//! The `vendored` feature builds OpenSSL 3.6 from source (openssl-src), so the functions below are declared
//! here and resolved against the library openssl-sys links (its link directives reach the final binary through
//! the `openssl-sys` dependency). Declarations follow `<openssl/ssl.h>` and `<openssl/x509_vfy.h>` of OpenSSL
//! 3.2+; every pointer type comes from `openssl_sys`. Building with `vendored` but `OPENSSL_NO_VENDOR` set
//! against an older system OpenSSL fails at link time (the symbols do not exist), never at run time.
//!
//! The peer's key is checked in the certificate verify callback: for a raw public key OpenSSL calls it with
//! the key in the `X509_STORE_CTX` (`X509_STORE_CTX_get0_rpk`) and, without DANE, with `preverify_ok = 1`,
//! so the callback alone decides. (`SSL_add_expected_rpk` would need DANE enabled on the context and only
//! serves fixed key lists; the server looks keys up in a [`crate::CredentialStore`] that can change at any time.)
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

/// RFC 7250 raw public keys over the OpenSSL >= 3.2 API.
#[cfg(feature = "vendored")]
pub(crate) mod rpk {
    use foreign_types::ForeignTypeRef;
    use openssl::error::ErrorStack;
    use openssl::pkey::{PKey, PKeyRef, Public};
    use openssl::ssl::{SslContextBuilder, SslRef};
    use openssl::x509::X509StoreContextRef;
    use std::os::raw::{c_int, c_uchar};

    /// `TLSEXT_cert_type_x509` (RFC 7250 / IANA TLS Certificate Types).
    pub(crate) const CERT_TYPE_X509: u8 = 0;
    /// `TLSEXT_cert_type_rpk`.
    pub(crate) const CERT_TYPE_RPK: u8 = 2;

    mod sys {
        use openssl_sys::{EVP_PKEY, SSL, SSL_CTX, X509_STORE_CTX};
        use std::os::raw::{c_int, c_uchar};

        extern "C" {
            // ssl.h (OpenSSL 3.2+): the certificate types we accept, in preference order. `val` is copied.
            pub(super) fn SSL_CTX_set1_client_cert_type(ctx: *mut SSL_CTX, val: *const c_uchar, len: usize) -> c_int;
            pub(super) fn SSL_CTX_set1_server_cert_type(ctx: *mut SSL_CTX, val: *const c_uchar, len: usize) -> c_int;
            // ssl.h: the peer's raw public key of the current session (borrowed, may be NULL).
            pub(super) fn SSL_get0_peer_rpk(s: *const SSL) -> *mut EVP_PKEY;
            // ssl.h: the negotiated certificate types (TLSEXT_cert_type_*).
            pub(super) fn SSL_get_negotiated_client_cert_type(s: *const SSL) -> c_int;
            pub(super) fn SSL_get_negotiated_server_cert_type(s: *const SSL) -> c_int;
            // x509_vfy.h (OpenSSL 3.2+): the raw public key being verified (borrowed, NULL for a chain).
            pub(super) fn X509_STORE_CTX_get0_rpk(ctx: *const X509_STORE_CTX) -> *mut EVP_PKEY;
        }
    }

    fn check(ret: c_int) -> Result<(), ErrorStack> {
        if ret == 1 {
            Ok(())
        } else {
            Err(ErrorStack::get())
        }
    }

    /// Sets the client and server certificate types (`CERT_TYPE_*`, preference order) of a context.
    /// An empty list leaves that side at OpenSSL's default (X.509 only, extension not sent).
    pub(crate) fn set_cert_types(b: &mut SslContextBuilder, client: &[u8], server: &[u8]) -> Result<(), ErrorStack> {
        let ctx = b.as_ptr();
        if !client.is_empty() {
            // SAFETY: `ctx` is the live SSL_CTX owned by `b` (exclusively borrowed for this call);
            // `client` is a valid slice of `client.len()` bytes, which OpenSSL validates and copies before
            // returning (set_cert_type in ssl_lib.c), so no pointer is kept.
            check(unsafe { sys::SSL_CTX_set1_client_cert_type(ctx, client.as_ptr().cast::<c_uchar>(), client.len()) })?;
        }
        if !server.is_empty() {
            // SAFETY: as above, for the server certificate type list.
            check(unsafe { sys::SSL_CTX_set1_server_cert_type(ctx, server.as_ptr().cast::<c_uchar>(), server.len()) })?;
        }
        Ok(())
    }

    /// Takes a counted reference to a borrowed `EVP_PKEY` (NULL gives `None`).
    ///
    /// # Safety
    /// `ptr` must be NULL or point to a live `EVP_PKEY` for the duration of the call.
    unsafe fn up_ref(ptr: *mut openssl_sys::EVP_PKEY) -> Option<PKey<Public>> {
        if ptr.is_null() {
            return None;
        }
        // SAFETY: non-NULL and live per the function contract; the borrowed `PKeyRef` does not outlive this
        // call because `to_owned` (EVP_PKEY_up_ref) turns it into an owned, counted reference at once.
        // Treating it as `Public` only restricts which operations the wrapper allows.
        Some(unsafe { PKeyRef::<Public>::from_ptr(ptr) }.to_owned())
    }

    /// The raw public key being verified in a certificate verify callback, or `None` for an X.509 chain.
    pub(crate) fn store_ctx_rpk(ctx: &X509StoreContextRef) -> Option<PKey<Public>> {
        // SAFETY: `ctx.as_ptr()` is the live X509_STORE_CTX of the running verification (borrowed for the
        // call). The result is NULL or a key owned by the context, alive while the context is; `up_ref` takes
        // its own reference before returning.
        unsafe { up_ref(sys::X509_STORE_CTX_get0_rpk(ctx.as_ptr())) }
    }

    /// The peer's raw public key of the current session (after a full or resumed RPK handshake).
    pub(crate) fn peer_rpk(ssl: &SslRef) -> Option<PKey<Public>> {
        // SAFETY: `ssl.as_ptr()` is a live SSL (borrowed for the call). The result is NULL or a key owned by
        // the SSL's session, alive while `ssl` is borrowed; `up_ref` takes its own reference before returning.
        unsafe { up_ref(sys::SSL_get0_peer_rpk(ssl.as_ptr())) }
    }

    /// The negotiated `(client, server)` certificate types (`CERT_TYPE_*`).
    pub(crate) fn negotiated_cert_types(ssl: &SslRef) -> (u8, u8) {
        // SAFETY: `ssl.as_ptr()` is a live SSL; both functions only read an integer field of it.
        let (c, s) = unsafe {
            (
                sys::SSL_get_negotiated_client_cert_type(ssl.as_ptr()),
                sys::SSL_get_negotiated_server_cert_type(ssl.as_ptr()),
            )
        };
        (u8::try_from(c).unwrap_or(u8::MAX), u8::try_from(s).unwrap_or(u8::MAX))
    }
}
