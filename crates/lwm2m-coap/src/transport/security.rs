//! The security hook of the datagram drivers: a sans-IO layer every datagram passes through (CoAP over DTLS,
//! `coaps://`).
//!
//! [`DatagramSecurity`] is what a driver needs from a security layer, without naming a TLS library: ciphertext
//! from the socket goes in with [`DatagramSecurity::on_datagram`]; CoAP datagrams to send go in with
//! [`DatagramSecurity::seal`]; the layer hands back datagrams for the socket ([`DatagramSecurity::poll_transmit`]),
//! decrypted CoAP datagrams ([`DatagramSecurity::poll_plaintext`]), session events
//! ([`DatagramSecurity::poll_event`]) and its next deadline. Time is milliseconds on the driver's monotonic scale.
//! `lwm2m-dtls` implements it for a DTLS server (many peers on one socket) and for DTLS client sessions.
//!
//! The layer also tells who a peer proved to be ([`DatagramSecurity::identity`]); the UDP driver attaches that
//! [`PeerIdentity`] to every inbound request, so the LwM2M server can check the endpoint name against it
//! (digest §10.5).
//!
//! This module is always compiled (no tokio, no TLS library).

use std::any::Any;
use std::net::SocketAddr;

use thiserror::Error;

/// Who a peer proved to be during a secure handshake (neutral: no TLS library type).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerIdentity {
    /// Pre-shared key: the PSK identity the client presented (on the client side: the identity we used).
    Psk(Vec<u8>),
    /// Raw public key (RFC 7250): the peer's SubjectPublicKeyInfo, DER.
    Rpk(Vec<u8>),
    /// X.509 certificate: the subject common name (if any) and the end-entity certificate, DER.
    X509 {
        /// Subject CN, if the certificate has one.
        common_name: Option<String>,
        /// The peer's end-entity certificate, DER.
        cert_der: Vec<u8>,
    },
}

impl PeerIdentity {
    /// The name this identity stands for, if it is text: the PSK identity as UTF-8, or the certificate's CN.
    /// (An RPK has no name; the server looks it up.)
    pub fn name(&self) -> Option<&str> {
        match self {
            PeerIdentity::Psk(id) => std::str::from_utf8(id).ok(),
            PeerIdentity::Rpk(_) => None,
            PeerIdentity::X509 { common_name, .. } => common_name.as_deref(),
        }
    }
}

/// Why a secure session with a peer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityCloseReason {
    /// The handshake failed (bad key, unknown identity, certificate rejected, alert...).
    HandshakeFailed(String),
    /// The handshake did not complete in time.
    HandshakeTimeout,
    /// The credentials were rejected after the handshake.
    Rejected(String),
    /// The peer closed the session (close_notify).
    PeerClosed,
    /// We closed it.
    LocalClose,
    /// No traffic for the idle timeout.
    IdleTimeout,
    /// A new handshake (from the same address, or a reconnect) replaced the session.
    Replaced,
    /// A fatal error on an established session.
    Fatal(String),
}

impl SecurityCloseReason {
    /// True if the peer could not be authenticated (handshake failed, timed out or was rejected): requests
    /// waiting for that session cannot succeed.
    pub fn is_authentication_failure(&self) -> bool {
        matches!(
            self,
            SecurityCloseReason::HandshakeFailed(_)
                | SecurityCloseReason::HandshakeTimeout
                | SecurityCloseReason::Rejected(_)
        )
    }
}

impl std::fmt::Display for SecurityCloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecurityCloseReason::HandshakeFailed(why) => write!(f, "handshake failed: {why}"),
            SecurityCloseReason::HandshakeTimeout => f.write_str("handshake timed out"),
            SecurityCloseReason::Rejected(why) => write!(f, "credentials rejected: {why}"),
            SecurityCloseReason::PeerClosed => f.write_str("closed by the peer"),
            SecurityCloseReason::LocalClose => f.write_str("closed locally"),
            SecurityCloseReason::IdleTimeout => f.write_str("idle timeout"),
            SecurityCloseReason::Replaced => f.write_str("replaced by a new handshake"),
            SecurityCloseReason::Fatal(why) => write!(f, "fatal error: {why}"),
        }
    }
}

/// A change of a peer's secure session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityEvent {
    /// A handshake completed; `identity` is what the peer proved.
    Established {
        /// The peer.
        peer: SocketAddr,
        /// Its authenticated identity.
        identity: PeerIdentity,
    },
    /// A session (or a handshake) ended; its state is gone.
    Closed {
        /// The peer.
        peer: SocketAddr,
        /// Why.
        reason: SecurityCloseReason,
    },
}

/// Why [`DatagramSecurity::seal`] could not take a datagram.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SecurityError {
    /// There is no session with this peer and the layer cannot start one (a server cannot dial a client;
    /// a client layer has no credentials for this address).
    #[error("no secure session with this peer")]
    NoSession,
    /// The session is closed.
    #[error("secure session closed")]
    Closed,
    /// Too much data is queued while the handshake runs.
    #[error("send queue full while the handshake runs")]
    QueueFull,
    /// The datagram is larger than one record can carry.
    #[error("datagram of {0} bytes is too large for one record")]
    TooLarge(usize),
    /// Any other failure of the security library.
    #[error("security layer: {0}")]
    Other(String),
}

/// Lets a driver hand a `&mut dyn DatagramSecurity` back to code that knows the concrete type (see
/// `UdpHandle::with_security`). Implemented for every `'static` type; never implement it by hand.
pub trait AsAny: Any {
    /// `self` as [`Any`], for downcasting.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any> AsAny for T {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// A sans-IO security layer between a datagram socket and a CoAP endpoint (see the module docs).
///
/// Call order in a driver: after every input (`on_datagram`, `seal`, `handle_timeout`), drain
/// `poll_transmit` to the socket, `poll_plaintext` to the endpoint and `poll_event`; re-read `poll_timeout`.
pub trait DatagramSecurity: AsAny + Send {
    /// One datagram received from `peer` (ciphertext or handshake).
    fn on_datagram(&mut self, now_ms: u64, peer: SocketAddr, ciphertext: &[u8]);
    /// Protect one CoAP datagram for `peer`. A client layer may start (or restart) a handshake here and send
    /// the datagram once it completes.
    fn seal(&mut self, now_ms: u64, peer: SocketAddr, plaintext: &[u8]) -> Result<(), SecurityError>;
    /// The next datagram for the socket, with its destination.
    fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)>;
    /// The next decrypted CoAP datagram, with its sender.
    fn poll_plaintext(&mut self) -> Option<(SocketAddr, Vec<u8>)>;
    /// The next session event.
    fn poll_event(&mut self) -> Option<SecurityEvent>;
    /// The earliest instant (ms) at which `handle_timeout` has work, if any (it may be a little early).
    fn poll_timeout(&self) -> Option<u64>;
    /// Runs the timers due at `now_ms` (handshake retransmission, timeouts, eviction).
    fn handle_timeout(&mut self, now_ms: u64);
    /// The authenticated identity of `peer`, while its session is established.
    fn identity(&self, peer: SocketAddr) -> Option<PeerIdentity>;
    /// Close the session with `peer` (if any), telling the peer. Default: nothing.
    fn close(&mut self, _now_ms: u64, _peer: SocketAddr) {}
    /// The driver's hint that `peer` did not answer a request at all (every retransmission went unanswered):
    /// the peer may have lost the session. A client layer may start a new handshake on the next `seal`.
    /// Default: nothing.
    fn peer_unresponsive(&mut self, _now_ms: u64, _peer: SocketAddr) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_names() {
        assert_eq!(PeerIdentity::Psk(b"ep-1".to_vec()).name(), Some("ep-1"));
        assert_eq!(PeerIdentity::Psk(vec![0xff, 0xfe]).name(), None);
        assert_eq!(PeerIdentity::Rpk(vec![1, 2]).name(), None);
        let x = PeerIdentity::X509 {
            common_name: Some("dev".into()),
            cert_der: vec![],
        };
        assert_eq!(x.name(), Some("dev"));
        let x = PeerIdentity::X509 {
            common_name: None,
            cert_der: vec![],
        };
        assert_eq!(x.name(), None);
    }

    #[test]
    fn close_reasons() {
        assert!(SecurityCloseReason::HandshakeFailed("bad key".into()).is_authentication_failure());
        assert!(SecurityCloseReason::HandshakeTimeout.is_authentication_failure());
        assert!(SecurityCloseReason::Rejected("gone".into()).is_authentication_failure());
        for r in [
            SecurityCloseReason::PeerClosed,
            SecurityCloseReason::LocalClose,
            SecurityCloseReason::IdleTimeout,
            SecurityCloseReason::Replaced,
            SecurityCloseReason::Fatal("x".into()),
        ] {
            assert!(!r.is_authentication_failure(), "{r}");
        }
        assert_eq!(
            SecurityCloseReason::HandshakeFailed("bad key".into()).to_string(),
            "handshake failed: bad key"
        );
    }

    #[test]
    fn as_any_downcasts() {
        struct L(u8);
        let mut l = L(7);
        let any = l.as_any_mut();
        assert_eq!(any.downcast_mut::<L>().map(|l| l.0), Some(7));
        assert!(l.as_any_mut().downcast_mut::<u8>().is_none());
    }
}
