//! The backend-neutral, sans-IO DTLS session interface.
//!
//! A session never reads a clock or a socket: the driver passes inbound datagrams and the current time (in
//! milliseconds on any monotonic scale) and takes outbound datagrams, decrypted application data and the next
//! deadline. Another backend (for example a pure-Rust one) can implement the same trait.

use crate::error::Result;

/// Who the peer proved to be during the handshake: the neutral type of `lwm2m-coap`'s security hook, re-used so
/// the CoAP driver and the LwM2M server see the same value without a conversion.
pub use lwm2m_coap::transport::security::PeerIdentity;

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer sent close_notify.
    PeerClosed,
    /// We closed it (close_notify sent).
    LocalClose,
    /// The handshake failed (bad key, unknown identity, certificate rejected, alert...).
    HandshakeFailed(String),
    /// The handshake did not complete in time.
    HandshakeTimeout,
    /// No datagram from the peer for the idle timeout (server eviction).
    IdleTimeout,
    /// A new handshake from the same address replaced the session.
    Replaced,
    /// The credentials were rejected after the handshake (e.g. removed from the store).
    Rejected(String),
    /// A fatal error on an established session (alert received, protocol error).
    Fatal(String),
}

/// The state of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    /// The handshake is running.
    Handshaking,
    /// Application data can flow.
    Established,
    /// The session is over; it produces nothing more (except perhaps queued transmits such as an alert).
    Closed(CloseReason),
}

/// A sans-IO DTLS 1.2 session with one peer.
pub trait DtlsSession {
    /// Feeds one datagram received from the peer.
    fn handle_datagram(&mut self, now_ms: u64, datagram: &[u8]);
    /// Encrypts one application datagram. While the handshake runs the data is queued and sent once it
    /// completes.
    fn send(&mut self, app_data: &[u8]) -> Result<()>;
    /// Next datagram to send to the peer.
    fn poll_transmit(&mut self) -> Option<Vec<u8>>;
    /// Next decrypted application datagram.
    fn poll_app_data(&mut self) -> Option<Vec<u8>>;
    /// The next instant (ms) at which `handle_timeout` must be called, if any.
    fn poll_timeout(&self) -> Option<u64>;
    /// Runs timers (handshake retransmission, handshake timeout) due at `now_ms`.
    fn handle_timeout(&mut self, now_ms: u64);
    /// The current state.
    fn state(&self) -> &SessionState;
    /// The authenticated peer identity, once established.
    fn peer_identity(&self) -> Option<&PeerIdentity>;
    /// Whether the last handshake resumed an earlier session (abbreviated handshake).
    fn session_reused(&self) -> bool;
    /// Sends close_notify and closes the session.
    fn close(&mut self);
}
