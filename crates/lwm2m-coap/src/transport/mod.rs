//! Transport drivers: thin tokio loops around the sans-IO [`Endpoint`](crate::Endpoint).
//!
//! - [`udp`]: one endpoint on one UDP socket (IPv4 or IPv6), one task for all peers.

#[cfg(feature = "udp")]
pub mod udp;
