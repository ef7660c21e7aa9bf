//! End to end over real UDP on 127.0.0.1 with tokio's paused clock: our client runtime (factory-configured
//! with only a Bootstrap-Server account, or with stale accounts) against our Bootstrap-Server, which
//! provisions accounts pointing at scripted LwM2M servers (lwm2m-coap endpoints answering `POST /rd` with
//! 2.01). Nothing sleeps: every wait is for a message or an event, bounded by a virtual-time guard.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lwm2m_bootstrap::config::{
    BootstrapConfig, BootstrapCredential, Bytes, ExtraWrite, OnFinishRejected, SecurityConfig, ServerAccount,
};
use lwm2m_bootstrap::server::{
    BootstrapServer, BootstrapServerConfig, BootstrapServerHandle, Event, EventKind, LogEntry, TriggerError,
    TriggerTarget,
};
use lwm2m_bootstrap::session::{Operation, SessionEvent};
use lwm2m_bootstrap::store::{ConfigStore, FileConfigStore, MemoryConfigStore};
use lwm2m_client::dm::{Credentials, FactoryConfig, ServerConfig};
use lwm2m_client::runtime::{Client, ClientConfig, ClientEvent, ClientHandle};
use lwm2m_coap::transport::udp::{Incoming, UdpEndpoint, UdpHandle};
use lwm2m_coap::{Code, EndpointConfig, Message};
use lwm2m_server::security::SecurityStore;
use lwm2m_testkit::client::bootstrap_only;
use lwm2m_testkit::events;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Bound of every wait (virtual time only reaches it when something is stuck).
const GUARD: Duration = Duration::from_secs(3 * 86_400);
const PSK: &[u8] = b"0123456789abcdef";

/// (object, instance, owner, entries, ACL instance id).
type AclRow = (u16, u16, u16, Vec<(u16, u16)>, Option<u16>);

/// A Register the scripted server received.
#[derive(Debug, Clone)]
struct Reg {
    server: &'static str,
    at: Instant,
    peer: SocketAddr,
    queries: Vec<String>,
}

/// A LwM2M server that answers Register 2.01, Update 2.04, De-register 2.02 and reports Registers.
struct Lwm2mServer {
    handle: UdpHandle,
    addr: SocketAddr,
}

impl Lwm2mServer {
    async fn start(name: &'static str, log: mpsc::UnboundedSender<Reg>) -> Lwm2mServer {
        let (handle, mut incoming) = UdpEndpoint::bind("127.0.0.1:0".parse().unwrap(), EndpointConfig::default())
            .await
            .unwrap();
        let addr = handle.local_addr();
        let h = handle.clone();
        tokio::spawn(async move {
            while let Some(item) = incoming.recv().await {
                let Incoming::Request(r) = item else { continue };
                let req = &r.request;
                let path = req.uri_path();
                let p: Vec<&str> = path.iter().map(String::as_str).collect();
                let resp = match (req.code, p.as_slice()) {
                    (Code::POST, ["rd"]) => {
                        let _ = log.send(Reg {
                            server: name,
                            at: Instant::now(),
                            peer: r.peer,
                            queries: req.uri_query(),
                        });
                        let mut m = Message::response_to(req, Code::CREATED);
                        m.set_location_path("rd/1");
                        m
                    }
                    (Code::POST, ["rd", _]) => Message::response_to(req, Code::CHANGED),
                    (Code::DELETE, ["rd", _]) => Message::response_to(req, Code::DELETED),
                    _ => Message::response_to(req, Code::NOT_FOUND),
                };
                let _ = h.respond(r.responder, resp);
            }
        });
        Lwm2mServer { handle, addr }
    }

    fn uri(&self) -> String {
        format!("coap://{}", self.addr)
    }
}

/// The next item of `rx` (within [`GUARD`]).
async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    events::recv(rx, GUARD).await
}

/// Waits for the first item `f` accepts (each item within [`GUARD`]).
async fn until<T, R>(rx: &mut mpsc::UnboundedReceiver<T>, f: impl FnMut(&T) -> Option<R>) -> R {
    events::until(rx, GUARD, f).await
}

/// Waits for the end of a session of `endpoint`: `Ok(())` on Finished, `Err(reason)` on Failed.
async fn session_end(events: &mut mpsc::UnboundedReceiver<Event>, endpoint: &str) -> (u64, Result<(), String>) {
    until(events, |e| match &e.kind {
        EventKind::Session(SessionEvent::Finished { .. }) if e.endpoint == endpoint => Some((e.session, Ok(()))),
        EventKind::Session(SessionEvent::Failed { reason }) if e.endpoint == endpoint => {
            Some((e.session, Err(reason.clone())))
        }
        _ => None,
    })
    .await
}

fn ops(log: &[LogEntry], session: u64) -> Vec<String> {
    log.iter()
        .filter(|e| e.session == session)
        .map(|e| {
            format!(
                "{} {} {}",
                e.op,
                e.path,
                e.code.map(|c| c.to_string()).unwrap_or_else(|| "-".into())
            )
        })
        .collect()
}

/// A Bootstrap-Server on a plain CoAP socket (and a DTLS one when `secure`).
async fn bootstrap_server(
    store: Arc<dyn ConfigStore>,
    secure: bool,
) -> (BootstrapServerHandle, mpsc::UnboundedReceiver<Event>, String) {
    let cfg = BootstrapServerConfig::new(store);
    let lo: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (bs, events) = BootstrapServer::bind(cfg, Some(lo), secure.then_some(lo))
        .await
        .unwrap();
    let addrs = bs.local_addrs();
    let uri = if secure {
        format!("coaps://{}", addrs[1])
    } else {
        format!("coap://{}", addrs[0])
    };
    (bs, events, uri)
}

fn start_client(f: FactoryConfig, ep: &str) -> (ClientHandle, mpsc::UnboundedReceiver<ClientEvent>) {
    Client::start(f.build().unwrap(), ClientConfig::new(ep)).unwrap()
}

async fn registered(events: &mut mpsc::UnboundedReceiver<ClientEvent>, want: u16) {
    until(events, |e| {
        matches!(e, ClientEvent::Registered { ssid, .. } if *ssid == want).then_some(())
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn client_is_provisioned_and_registers() {
    let (reg_tx, mut regs) = mpsc::unbounded_channel();
    let dm = Lwm2mServer::start("dm", reg_tx).await;
    let store = Arc::new(MemoryConfigStore::new());
    let mut account = ServerAccount::new(1, dm.uri(), 300);
    account.mute_send = Some(false);
    store
        .put("dev-1", BootstrapConfig::with_servers(vec![account]))
        .unwrap();
    let (bs, mut events, bs_uri) = bootstrap_server(store, false).await;

    let (client, mut cev) = start_client(bootstrap_only(&bs_uri, Credentials::NoSec), "dev-1");
    let started = next(&mut events).await;
    assert_eq!(started.endpoint, "dev-1");
    assert!(matches!(
        started.kind,
        EventKind::SessionStarted {
            secure: false,
            pct: Some(lwm2m_core::ContentFormat::SenmlCbor),
            default_config: false,
            ..
        }
    ));
    let (session, end) = session_end(&mut events, "dev-1").await;
    assert_eq!(end, Ok(()));
    until(&mut cev, |e| (*e == ClientEvent::Bootstrapped).then_some(())).await;
    // The client registers with the provisioned server.
    let reg = next(&mut regs).await;
    assert!(reg.queries.contains(&"ep=dev-1".to_string()), "{:?}", reg.queries);
    assert!(reg.queries.contains(&"lt=300".to_string()), "{:?}", reg.queries);
    registered(&mut cev, 1).await;

    assert_eq!(
        ops(&bs.session_log("dev-1"), session),
        [
            "Bootstrap-Request /bs 2.04",
            "Bootstrap-Discover / 2.05",
            "Bootstrap-Write /0/1 2.04",
            "Bootstrap-Write /1/0 2.04",
            "Bootstrap-Finish /bs 2.04"
        ]
    );
    let accounts = bs.accounts("dev-1").unwrap();
    assert_eq!((accounts[0].ssid, accounts[0].server_instance), (1, Some(0)));
    // The client's data model holds the account, with Last Bootstrapped set.
    let srv = client.with_data_model(|dm| dm.server_instances()).await.unwrap();
    assert_eq!((srv[0].1.ssid, srv[0].1.mute_send), (1, Some(false)));
    assert!(srv[0].1.last_bootstrapped.is_some());
    assert!(bs.active_sessions().is_empty());
    client.shutdown().await;
    bs.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn bootstrap_over_dtls_psk() {
    let (reg_tx, mut regs) = mpsc::unbounded_channel();
    let dm = Lwm2mServer::start("dm", reg_tx).await;
    let store = Arc::new(MemoryConfigStore::new());
    let cfg = BootstrapConfig {
        credentials: Some(BootstrapCredential::Psk {
            identity: "psk-dev".into(),
            key: Bytes(PSK.to_vec()),
        }),
        ..BootstrapConfig::with_servers(vec![ServerAccount::new(3, dm.uri(), 120)])
    };
    store.put("dev-psk", cfg).unwrap();
    let (bs, mut events, bs_uri) = bootstrap_server(store, true).await;
    assert!(bs_uri.starts_with("coaps://"));
    // The security store was filled from the configuration store.
    assert_eq!(
        bs.security_store().by_psk_identity(b"psk-dev").unwrap().endpoint,
        "dev-psk"
    );

    let creds = Credentials::Psk {
        identity: b"psk-dev".to_vec(),
        key: PSK.to_vec(),
    };
    let (client, mut cev) = start_client(bootstrap_only(&bs_uri, creds), "dev-psk");
    let started = next(&mut events).await;
    assert!(
        matches!(started.kind, EventKind::SessionStarted { secure: true, .. }),
        "{started:?}"
    );
    assert_eq!(session_end(&mut events, "dev-psk").await.1, Ok(()));
    let reg = next(&mut regs).await;
    assert!(reg.queries.contains(&"lt=120".to_string()));
    registered(&mut cev, 3).await;
    client.shutdown().await;
    bs.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn identity_mismatch_and_missing_dtls_are_refused() {
    let store = Arc::new(MemoryConfigStore::new());
    for (ep, id) in [("dev-a", "id-a"), ("dev-b", "id-b")] {
        store
            .put(
                ep,
                BootstrapConfig {
                    credentials: Some(BootstrapCredential::Psk {
                        identity: id.into(),
                        key: Bytes(PSK.to_vec()),
                    }),
                    ..BootstrapConfig::with_servers(vec![ServerAccount::new(1, "coap://127.0.0.1:9", 60)])
                },
            )
            .unwrap();
    }
    let (bs, mut events, coaps_uri) = bootstrap_server(store, true).await;
    let coap_uri = format!("coap://{}", bs.local_addrs()[0]);

    // dev-b's name with dev-a's (valid) credentials: 4.00.
    let creds = Credentials::Psk {
        identity: b"id-a".to_vec(),
        key: PSK.to_vec(),
    };
    let (client, mut cev) = start_client(bootstrap_only(&coaps_uri, creds), "dev-b");
    let ev = next(&mut events).await;
    assert_eq!(ev.endpoint, "dev-b");
    let EventKind::Refused { code, reason, .. } = &ev.kind else {
        panic!("{ev:?}")
    };
    assert_eq!(*code, Code::BAD_REQUEST);
    assert!(reason.contains("does not match"), "{reason}");
    let why = until(&mut cev, |e| match e {
        ClientEvent::BootstrapAttemptFailed { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(why.contains("4.00"), "{why}");
    client.shutdown().await;

    // dev-a over plain CoAP although it has credentials: 4.03.
    let (client, mut cev) = start_client(bootstrap_only(&coap_uri, Credentials::NoSec), "dev-a");
    let ev = next(&mut events).await;
    assert!(
        matches!(&ev.kind, EventKind::Refused { code, .. } if *code == Code::FORBIDDEN),
        "{ev:?}"
    );
    until(&mut cev, |e| {
        matches!(e, ClientEvent::BootstrapAttemptFailed { .. }).then_some(())
    })
    .await;
    client.shutdown().await;
    // Logged for the configured endpoint it claimed.
    let log = bs.session_log("dev-a");
    assert_eq!(ops(&log, 0), ["Bootstrap-Request /bs 4.03"]);
    bs.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn unknown_endpoint_gets_4_00_until_a_default_exists() {
    let (reg_tx, mut regs) = mpsc::unbounded_channel();
    let dm = Lwm2mServer::start("dm", reg_tx).await;
    let store = Arc::new(MemoryConfigStore::new());
    let (bs, mut events, bs_uri) = bootstrap_server(store, false).await;
    let (client, mut cev) = start_client(bootstrap_only(&bs_uri, Credentials::NoSec), "stranger");
    let ev = next(&mut events).await;
    assert_eq!(ev.endpoint, "stranger");
    assert!(
        matches!(&ev.kind, EventKind::Refused { code, reason, .. } if *code == Code::BAD_REQUEST && reason.contains("unknown endpoint")),
        "{ev:?}"
    );
    until(&mut cev, |e| {
        matches!(e, ClientEvent::BootstrapAttemptFailed { .. }).then_some(())
    })
    .await;
    assert!(bs.session_log("stranger").is_empty(), "unknown endpoints get no log");

    // A default configuration: the client's next attempt is provisioned with it.
    bs.set_default_config(Some(BootstrapConfig::with_servers(vec![ServerAccount::new(
        4,
        dm.uri(),
        60,
    )])))
    .unwrap();
    let ev = next(&mut events).await;
    assert!(
        matches!(
            ev.kind,
            EventKind::SessionStarted {
                default_config: true,
                ..
            }
        ),
        "{ev:?}"
    );
    assert_eq!(session_end(&mut events, "stranger").await.1, Ok(()));
    let reg = next(&mut regs).await;
    assert!(reg.queries.contains(&"ep=stranger".to_string()));
    registered(&mut cev, 4).await;
    client.shutdown().await;
    bs.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn multi_server_priority_order_and_bsr1_acl_state() {
    let (reg_tx, mut regs) = mpsc::unbounded_channel();
    let s1 = Lwm2mServer::start("s1", reg_tx.clone()).await;
    let s2 = Lwm2mServer::start("s2", reg_tx).await;
    // Listed second-first; the priority order decides.
    let mut a2 = ServerAccount::new(2, s2.uri(), 300);
    a2.registration_priority_order = Some(2);
    a2.initial_registration_delay = Some(5);
    let mut a1 = ServerAccount::new(1, s1.uri(), 300);
    a1.registration_priority_order = Some(1);
    let store = Arc::new(MemoryConfigStore::new());
    store
        .put("dev-multi", BootstrapConfig::with_servers(vec![a2, a1]))
        .unwrap();
    let (bs, mut events, bs_uri) = bootstrap_server(store, false).await;
    let mut f = bootstrap_only(&bs_uri, Credentials::NoSec);
    f.temperature = Some(vec![(0, 21.0)]);
    let (client, mut cev) = start_client(f, "dev-multi");
    assert_eq!(session_end(&mut events, "dev-multi").await.1, Ok(()));

    let first = next(&mut regs).await;
    let second = next(&mut regs).await;
    assert_eq!((first.server, second.server), ("s1", "s2"), "ssid 1 (order 1) first");
    let gap = second.at - first.at;
    assert!(
        gap >= Duration::from_secs(5) && gap < Duration::from_secs(6),
        "the Initial Registration Delay of ssid 2: {gap:?}"
    );
    registered(&mut cev, 1).await;
    registered(&mut cev, 2).await;

    // The generated ACLs are on the device and enforced.
    let (acls, enforced) = client
        .with_data_model(|dm| (dm.acl_instances(), dm.acl_enforced()))
        .await
        .unwrap();
    assert!(enforced);
    assert!(acls
        .iter()
        .any(|(_, a)| (a.object_id, a.instance_id, a.owner) == (3, 0, 1)));

    // BsR-1: a new bootstrap reads /2; the reported ACL state is what the client has, and the valid
    // configuration is left alone.
    client.bootstrap().await.unwrap();
    let acl_state = until(&mut events, |e| match &e.kind {
        EventKind::Session(SessionEvent::AclState { supported: true, acls }) => Some(acls.clone()),
        _ => None,
    })
    .await;
    let (session, end) = session_end(&mut events, "dev-multi").await;
    assert_eq!(end, Ok(()));
    let reported: Vec<AclRow> = acl_state
        .iter()
        .map(|a| {
            (
                a.object_id,
                a.instance_id,
                a.owner,
                a.rights.iter().map(|r| (r.ssid, r.rights.0)).collect(),
                a.acl_instance,
            )
        })
        .collect();
    let on_device: Vec<AclRow> = client
        .with_data_model(|dm| dm.acl_instances())
        .await
        .unwrap()
        .into_iter()
        .map(|(iid, a)| {
            (
                a.object_id,
                a.instance_id,
                a.owner,
                a.acl.iter().map(|(s, r)| (*s, r.0)).collect(),
                Some(iid),
            )
        })
        .collect();
    assert_eq!(reported, on_device);
    assert!(!reported.is_empty());
    assert_eq!(
        bs.acl_state("dev-multi"),
        Some(acl_state.clone()),
        "kept as a record too"
    );
    assert_eq!(
        ops(&bs.session_log("dev-multi"), session),
        [
            "Bootstrap-Request /bs 2.04",
            "Bootstrap-Discover / 2.05",
            "Bootstrap-Read /1 2.05",
            "Bootstrap-Read /2 2.05",
            "Bootstrap-Finish /bs 2.04"
        ]
    );
    client.shutdown().await;
    bs.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn bsr7_only_stale_accounts_are_repaired() {
    let (reg_tx, mut regs) = mpsc::unbounded_channel();
    let s1 = Lwm2mServer::start("s1", reg_tx.clone()).await;
    let s2 = Lwm2mServer::start("s2", reg_tx.clone()).await;
    let s7 = Lwm2mServer::start("s7", reg_tx).await;
    let store = Arc::new(MemoryConfigStore::new());
    store
        .put(
            "dev-stale",
            BootstrapConfig::with_servers(vec![
                ServerAccount::new(1, s1.uri(), 300),
                ServerAccount::new(2, s2.uri(), 300),
            ]),
        )
        .unwrap();
    let (bs, mut events, bs_uri) = bootstrap_server(store, false).await;
    // Factory: ssid 1 valid, ssid 2 with a TLS-DTLS alert code, ssid 7 unknown to the Bootstrap-Server.
    let mut f = bootstrap_only(&bs_uri, Credentials::NoSec);
    let mut alerted = ServerConfig::new(2, s2.uri(), 300);
    alerted.server.tls_alert_code = Some(40);
    f.servers = vec![
        ServerConfig::new(1, s1.uri(), 300),
        alerted,
        ServerConfig::new(7, s7.uri(), 300),
    ];
    let (client, mut cev) = start_client(f, "dev-stale");
    for _ in 0..3 {
        next(&mut regs).await;
    }
    let before = client
        .with_data_model(|dm| (dm.instance_values(0, 0), dm.instance_values(1, 0)))
        .await
        .unwrap();

    client.bootstrap().await.unwrap();
    let (deleted, rewritten, kept) = until(&mut events, |e| match &e.kind {
        EventKind::Session(SessionEvent::Repaired {
            deleted,
            rewritten,
            kept,
            ..
        }) => Some((deleted.clone(), rewritten.clone(), kept.clone())),
        _ => None,
    })
    .await;
    assert_eq!(kept, [1]);
    assert_eq!(deleted.iter().map(|d| d.ssid).collect::<Vec<_>>(), [7]);
    assert_eq!(rewritten.iter().map(|d| d.ssid).collect::<Vec<_>>(), [2]);
    assert_eq!(rewritten[0].reasons, ["TLS-DTLS alert code 40"]);
    let (session, end) = session_end(&mut events, "dev-stale").await;
    assert_eq!(end, Ok(()));
    until(&mut cev, |e| (*e == ClientEvent::Bootstrapped).then_some(())).await;

    // The session log: ssid 7's instances deleted, ssid 2's rewritten, ssid 1's (/0/0, /1/0) untouched.
    let log = ops(&bs.session_log("dev-stale"), session);
    assert_eq!(
        log,
        [
            "Bootstrap-Request /bs 2.04",
            "Bootstrap-Discover / 2.05",
            "Bootstrap-Read /1 2.05",
            "Bootstrap-Read /2 2.05",
            "Bootstrap-Delete /0/2 2.02",
            "Bootstrap-Delete /1/2 2.02",
            "Bootstrap-Write /0/1 2.04",
            "Bootstrap-Write /1/1 2.04",
            "Bootstrap-Finish /bs 2.04"
        ]
    );
    // The client's data model agrees.
    let (after, servers, ssids) = client
        .with_data_model(|dm| {
            (
                (dm.instance_values(0, 0), dm.instance_values(1, 0)),
                dm.server_instances(),
                dm.security_instances()
                    .into_iter()
                    .filter_map(|(_, s)| s.ssid)
                    .collect::<Vec<_>>(),
            )
        })
        .await
        .unwrap();
    assert_eq!(after, before, "the valid account is untouched");
    assert_eq!(servers.iter().map(|(_, s)| s.ssid).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(servers[1].1.tls_alert_code, Some(0));
    assert!(!ssids.contains(&7));
    client.shutdown().await;
    bs.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn bsr2_trigger_makes_the_client_bootstrap_again() {
    let (reg_tx, mut regs) = mpsc::unbounded_channel();
    let dm = Lwm2mServer::start("dm", reg_tx).await;
    let store = Arc::new(MemoryConfigStore::new());
    store
        .put(
            "dev-2",
            BootstrapConfig::with_servers(vec![ServerAccount::new(1, dm.uri(), 300)]),
        )
        .unwrap();
    let (bs, mut events, bs_uri) = bootstrap_server(store, false).await;
    let (client, mut cev) = start_client(bootstrap_only(&bs_uri, Credentials::NoSec), "dev-2");
    let (first, end) = session_end(&mut events, "dev-2").await;
    assert_eq!(end, Ok(()));
    let reg = next(&mut regs).await;
    registered(&mut cev, 1).await;

    // From the Bootstrap-Server's own socket the device refuses (it only takes DM requests from its server).
    let e = bs
        .trigger_bootstrap("dev-2", TriggerTarget::new(reg.peer))
        .await
        .unwrap_err();
    assert_eq!(e, TriggerError::Rejected(Code::UNAUTHORIZED));
    // Through the LwM2M Server's socket (the registration's 5-tuple): accepted, and the client bootstraps.
    bs.trigger_bootstrap("dev-2", TriggerTarget::via(dm.handle.clone(), reg.peer))
        .await
        .unwrap();
    // The Execute operations are reported too (ordered with the new session as the tasks run).
    let started = until(&mut events, |e| {
        matches!(e.kind, EventKind::SessionStarted { .. }).then(|| e.clone())
    })
    .await;
    assert!(started.session > first);
    assert_eq!(session_end(&mut events, "dev-2").await.1, Ok(()));
    let log = bs.session_log("dev-2");
    assert_eq!(ops(&log, 0), ["Execute /1/0/9 4.01", "Execute /1/0/9 2.04"]);
    // Unknown endpoint: no Server instance known.
    assert!(matches!(
        bs.trigger_bootstrap("nobody", TriggerTarget::new(reg.peer)).await,
        Err(TriggerError::NoServerInstance(_))
    ));
    client.shutdown().await;
    bs.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn finish_refused_with_4_06_is_reported() {
    let store = Arc::new(MemoryConfigStore::new());
    // A Server instance without a Security instance: the client refuses Finish.
    let cfg = BootstrapConfig {
        writes: vec![ExtraWrite {
            path: "/1/9".into(),
            value: serde_json::json!({"0": 77, "1": 60, "6": true, "7": "U"}),
        }],
        on_finish_rejected: OnFinishRejected::RewriteAll,
        ..BootstrapConfig::with_servers(vec![ServerAccount::new(1, "coap://127.0.0.1:9", 60)])
    };
    store.put("dev-bad", cfg).unwrap();
    let (bs, mut events, bs_uri) = bootstrap_server(store, false).await;
    let (client, _cev) = start_client(bootstrap_only(&bs_uri, Credentials::NoSec), "dev-bad");
    let (session, end) = session_end(&mut events, "dev-bad").await;
    let reason = end.unwrap_err();
    assert!(reason.contains("4.06 Not Acceptable"), "{reason}");
    assert!(
        reason.contains("Server instance /1/9 (SSID 77) has no Security instance"),
        "{reason}"
    );
    assert!(reason.contains("rewriting everything did not help"), "{reason}");
    let log = ops(&bs.session_log("dev-bad"), session);
    assert_eq!(
        log.iter().filter(|l| *l == "Bootstrap-Finish /bs 4.06").count(),
        2,
        "{log:?}"
    );
    assert!(log.contains(&"Bootstrap-Delete / 2.02".to_string()), "{log:?}");
    client.shutdown().await;
    bs.shutdown().await;
}

#[tokio::test]
async fn config_file_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("lwm2m-bootstrap-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bootstrap.toml");
    let mut account = ServerAccount::new(101, "coaps://dm.example.com:5684", 300);
    account.security = SecurityConfig::Psk {
        identity: "dev-1".into(),
        key: Bytes(vec![7; 16]),
    };
    account.registration_priority_order = Some(1);
    let cfg = BootstrapConfig {
        credentials: Some(BootstrapCredential::Psk {
            identity: "bs-dev-1".into(),
            key: Bytes(PSK.to_vec()),
        }),
        ..BootstrapConfig::with_servers(vec![account])
    };
    {
        let store = Arc::new(FileConfigStore::open(&path).unwrap());
        let (bs, _ev) = BootstrapServer::bind(
            BootstrapServerConfig::new(store),
            Some("127.0.0.1:0".parse().unwrap()),
            None,
        )
        .await
        .unwrap();
        bs.put_config("dev-1", cfg.clone()).unwrap();
        bs.set_default_config(Some(BootstrapConfig::with_servers(vec![ServerAccount::new(
            1, "coap://x", 60,
        )])))
        .unwrap();
        // A PSK identity already used by dev-1: refused, nothing stored.
        let mut clash = cfg.clone();
        clash.servers.clear();
        assert!(bs.put_config("dev-9", clash).is_err());
        assert_eq!(bs.list_configs(), ["dev-1"]);
        bs.shutdown().await;
    }
    let store = Arc::new(FileConfigStore::open(&path).unwrap());
    assert_eq!(store.get("dev-1"), Some(cfg));
    assert!(store.default_config().is_some());
    let (bs, _ev) = BootstrapServer::bind(
        BootstrapServerConfig::new(store),
        Some("127.0.0.1:0".parse().unwrap()),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        bs.security_store().by_psk_identity(b"bs-dev-1").unwrap().endpoint,
        "dev-1"
    );
    assert_eq!(bs.delete_config("dev-1").unwrap().map(|c| c.servers.len()), Some(1));
    assert!(bs.security_store().by_endpoint("dev-1").is_none());
    bs.shutdown().await;
    assert!(FileConfigStore::open(&path).unwrap().get("dev-1").is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A raw CoAP peer acting as a device, to see the server's protocol answers and a replaced session.
#[tokio::test(start_paused = true)]
async fn protocol_errors_and_replaced_sessions() {
    let store = Arc::new(MemoryConfigStore::new());
    store
        .put(
            "raw",
            BootstrapConfig::with_servers(vec![ServerAccount::new(1, "coap://127.0.0.1:9", 60)]),
        )
        .unwrap();
    let mut cfg = BootstrapServerConfig::new(store);
    cfg.log_capacity = 4;
    cfg.clock = Arc::new(|| 1_700_000_000);
    let lo: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (bs, mut events) = BootstrapServer::bind(cfg, Some(lo), None).await.unwrap();
    let bs_addr = bs.local_addrs()[0];
    let (dev, mut incoming) = UdpEndpoint::bind(lo, EndpointConfig::default()).await.unwrap();
    let ask = |m: Message| {
        let dev = dev.clone();
        async move {
            tokio::time::timeout(GUARD, dev.request(bs_addr, m))
                .await
                .unwrap()
                .unwrap()
        }
    };
    let code = |r: &Message| r.code;
    assert_eq!(
        code(&ask(Message::request(Code::POST, "/rd?ep=raw")).await),
        Code::NOT_FOUND
    );
    assert_eq!(
        code(&ask(Message::request(Code::GET, "/bs?ep=raw")).await),
        Code::METHOD_NOT_ALLOWED
    );
    let r = ask(Message::request(Code::POST, "/bs")).await;
    assert_eq!(r.code, Code::BAD_REQUEST, "no ep and no identity");
    let r = ask(Message::request(Code::POST, "/bs?ep=raw&pct=abc")).await;
    assert_eq!(r.code, Code::BAD_REQUEST);
    assert!(
        String::from_utf8_lossy(&r.payload).contains("pct"),
        "diagnostic payload"
    );
    assert_eq!(
        code(&ask(Message::request(Code::POST, "/bs?ep=raw&pct=0")).await),
        Code::UNSUPPORTED_CONTENT_FORMAT
    );
    // Two accepted Bootstrap-Requests: the second replaces the first session.
    assert_eq!(
        code(&ask(Message::request(Code::POST, "/bs?ep=raw&pct=11542")).await),
        Code::CHANGED
    );
    let first = loop {
        let Incoming::Request(r) = tokio::time::timeout(GUARD, incoming.recv()).await.unwrap().unwrap() else {
            continue;
        };
        assert_eq!(
            (r.request.code, r.request.uri_path_string()),
            (Code::GET, "/".to_string())
        );
        assert_eq!(r.request.accept(), Some(40));
        break r;
    };
    assert_eq!(bs.active_sessions(), ["raw"]);
    assert_eq!(
        code(&ask(Message::request(Code::POST, "/bs?ep=raw")).await),
        Code::CHANGED
    );
    let replaced = until(&mut events, |e| match &e.kind {
        EventKind::Session(SessionEvent::Failed { reason }) => Some((e.session, reason.clone())),
        _ => None,
    })
    .await;
    assert!(replaced.1.contains("replaced"), "{replaced:?}");
    // The late answer to the first session's Discover changes nothing; the second session's Discover comes.
    let _ = dev.respond(first.responder, Message::response_to(&first.request, Code::NOT_FOUND));
    let second = loop {
        let Incoming::Request(r) = tokio::time::timeout(GUARD, incoming.recv()).await.unwrap().unwrap() else {
            continue;
        };
        break r;
    };
    assert_ne!(second.request.token, first.request.token);
    let _ = dev.respond(second.responder, Message::response_to(&second.request, Code::NOT_FOUND));
    let (session, end) = session_end(&mut events, "raw").await;
    assert!(session > replaced.0);
    assert!(end.unwrap_err().contains("Bootstrap-Discover / answered 4.04"));
    // The log is bounded (4 entries), newest last, timestamped by the configured clock.
    let log = bs.session_log("raw");
    assert_eq!(log.len(), 4);
    assert!(log.iter().all(|e| e.at_unix_s == 1_700_000_000));
    let last = log.last().unwrap();
    assert_eq!(
        (last.op, last.path.as_str(), last.code),
        (Operation::Discover, "/", Some(Code::NOT_FOUND))
    );
    bs.shutdown().await;
    dev.shutdown().await;
}
