//! Helpers for tests of lwm2m-server: waiting for a registration, and a PSK DTLS server whose credentials come
//! from the server's security store.

use std::sync::Arc;
use std::time::Duration;

use lwm2m_dtls::coap_layer::DtlsServerLayer;
use lwm2m_dtls::DtlsServer;
use lwm2m_server::security::{Credential, MemorySecurityStore, SecurityInfo, StoreCredentials};
use lwm2m_server::Event;
use tokio::sync::broadcast;

use crate::events::next_event;

/// Waits (within `wait`, see [`next_event`]) until `endpoint` registers.
pub async fn registered(events: &mut broadcast::Receiver<Event>, endpoint: &str, wait: Duration) {
    next_event(
        events,
        wait,
        |e| matches!(e, Event::Registered { registration, .. } if registration.endpoint == endpoint),
    )
    .await;
}

/// A security store that knows `endpoint` by the PSK `identity`/`key`, and a DTLS server layer (default
/// configuration) that takes its credentials from that store; give the store to the server's configuration and
/// the layer to `UdpEndpoint::bind_secure`.
pub fn psk_dtls(endpoint: &str, identity: &str, key: &[u8]) -> (Arc<MemorySecurityStore>, DtlsServerLayer) {
    let security = Arc::new(MemorySecurityStore::new());
    security
        .put(SecurityInfo {
            endpoint: endpoint.into(),
            credential: Credential::Psk {
                identity: identity.into(),
                key: key.to_vec(),
            },
        })
        .expect("store the PSK credential");
    let dtls = DtlsServer::new(
        lwm2m_dtls::ServerConfig::default(),
        Arc::new(StoreCredentials(security.clone())),
    )
    .expect("a DTLS server");
    (security, DtlsServerLayer::new(dtls))
}
