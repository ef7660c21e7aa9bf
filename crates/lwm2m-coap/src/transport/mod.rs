//! Transport drivers: thin tokio loops around the sans-IO [`Endpoint`](crate::Endpoint).
//!
//! - [`udp`]: one endpoint on one UDP socket (IPv4 or IPv6), one task for all peers; optionally every datagram
//!   passes through a [`security::DatagramSecurity`] layer (CoAP over DTLS).
//! - [`security`]: the sans-IO security hook and the neutral [`security::PeerIdentity`] (always compiled).

pub mod security;
#[cfg(feature = "udp")]
pub mod udp;
