//! Client ↔ bootstrap server ↔ server, all three of ours, over real UDP on 127.0.0.1: a device that only knows
//! its Bootstrap-Server is provisioned, registers at the LwM2M Server, and the LwM2M Server's API makes it
//! bootstrap again (BsR-2: Execute /1/x/9, "Bootstrap-Request Trigger"). The Bootstrap-Server reads the
//! device's complete access control state on the way (BsR-1) and finds the existing accounts (BsR-7).

use std::sync::Arc;
use std::time::Duration;

use lwm2m_bootstrap::config::{BootstrapConfig, ServerAccount};
use lwm2m_bootstrap::server::{BootstrapServer, BootstrapServerConfig, Event as BsEvent, EventKind};
use lwm2m_bootstrap::session::SessionEvent;
use lwm2m_bootstrap::store::{ConfigStore, MemoryConfigStore};
use lwm2m_client::dm::Credentials;
use lwm2m_client::runtime::{Client, ClientConfig};
use lwm2m_coap::Code;
use lwm2m_server::{RequestOptions, Server, ServerConfig};
use lwm2m_testkit::client::bootstrap_only;
use lwm2m_testkit::events::next_map;
use lwm2m_testkit::server::registered;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(30);

/// Waits for the end of the next bootstrap session of `endpoint`; returns its number.
async fn session_finished(events: &mut mpsc::UnboundedReceiver<BsEvent>, endpoint: &str) -> u64 {
    next_map(events, WAIT, |e| {
        if e.endpoint != endpoint {
            return None;
        }
        match &e.kind {
            EventKind::Session(SessionEvent::Finished { .. }) => Some(e.session),
            EventKind::Session(SessionEvent::Failed { reason }) => panic!("bootstrap session failed: {reason}"),
            _ => None,
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioned_by_bootstrap_then_bsr_2_trigger_from_the_server_api() {
    const EP: &str = "urn:dev:trio";
    let (server, mut server_events) = Server::bind(ServerConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("server binds");
    let server_uri = format!("coap://{}", server.local_addrs()[0]);

    let store = Arc::new(MemoryConfigStore::new());
    let mut account = ServerAccount::new(1, server_uri.clone(), 300);
    account.mute_send = Some(false);
    store.put(EP, BootstrapConfig::with_servers(vec![account])).unwrap();
    let (bs, mut bs_events) = BootstrapServer::bind(
        BootstrapServerConfig::new(store.clone() as Arc<dyn ConfigStore>),
        Some("127.0.0.1:0".parse().unwrap()),
        None,
    )
    .await
    .expect("bootstrap server binds");
    let bs_uri = format!("coap://{}", bs.local_addrs()[0]);

    // The device knows only its Bootstrap-Server (factory bootstrap of the BS account).
    let dm = bootstrap_only(&bs_uri, Credentials::NoSec).build().unwrap();
    let (client, _client_events) = Client::start(dm, ClientConfig::new(EP)).unwrap();

    let first = session_finished(&mut bs_events, EP).await;
    registered(&mut server_events, EP, WAIT).await;
    let reg = server.registration(EP).unwrap().expect("registration stored");
    assert!(
        reg.objects.objects.iter().any(|o| o.object_id == 1),
        "the provisioned Server object is registered"
    );

    // BsR-1: the Bootstrap-Server read the device's access control state (`/2`) and exposes it.
    assert!(bs.acl_state(EP).is_some(), "ACL state read during the session");
    // BsR-7: it discovered the accounts the device already had (here: only its own BS account).
    let log = bs.session_log(EP);
    assert!(
        log.iter()
            .any(|e| e.session == first && e.op.to_string().contains("Discover")),
        "{log:?}"
    );

    // BsR-2: the operator triggers a client-initiated bootstrap through the LwM2M Server's API.
    let resp = server
        .execute(EP, "/1/0/9".parse().unwrap(), None, RequestOptions::default())
        .await
        .expect("execute answered");
    assert_eq!(resp.code, Code::CHANGED);
    let second = session_finished(&mut bs_events, EP).await;
    assert!(second > first, "a new bootstrap session ran");
    // ... after which the device registers again.
    registered(&mut server_events, EP, WAIT).await;

    client.shutdown().await;
    bs.shutdown().await;
    server.shutdown().await;
}
