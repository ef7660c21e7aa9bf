//! Helpers shared by the endpoint's unit tests (tests.rs, block_tests.rs, observe_tests.rs, migrate_tests.rs).

use super::*;

/// 127.0.0.1:`p`.
pub(super) fn addr(p: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], p))
}

/// The virtual-clock instant `ms`.
pub(super) fn t(ms: u64) -> Timestamp {
    Timestamp(ms)
}

/// Every datagram the endpoint wants to send now.
pub(super) fn drain(ep: &mut Endpoint) -> Vec<Transmit> {
    std::iter::from_fn(|| ep.poll_transmit()).collect()
}

/// Every event the endpoint has for the application now.
pub(super) fn events(ep: &mut Endpoint) -> Vec<Event> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

/// The message in a datagram the endpoint produced (always well-formed).
pub(super) fn decode(tx: &Transmit) -> Message {
    Message::decode(&tx.bytes).unwrap()
}
