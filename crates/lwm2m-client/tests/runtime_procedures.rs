//! Runtime procedures over real UDP on 127.0.0.1 with tokio's paused clock: server-initiated bootstrap (BsR-2),
//! registration retries on a dead server, queue mode, Disable, firmware pull download, coaps:// with PSK.

mod common;

use std::time::Duration;

use common::{lwm2m_server, register_failure, standard_answer, until, Rule, Server, Silent};
use lwm2m_client::dm::{BootstrapConfig, Credentials, FactoryConfig, ServerConfig};
use lwm2m_client::objects::firmware::{FirmwareConfig, FirmwareUpdate};
use lwm2m_client::objects::security::SecurityInstance;
use lwm2m_client::objects::server::ServerInstance;
use lwm2m_client::runtime::{Client, ClientConfig, ClientEvent};
use lwm2m_coap::{Code, EndpointConfig, Message};
use lwm2m_core::format;
use lwm2m_core::{ContentFormat, ModelRegistry, Node, Path, Value};
use lwm2m_testkit::client::bootstrap_only;
use tokio::time::Instant;

fn p(s: &str) -> Path {
    s.parse().unwrap()
}

fn text(m: &Message) -> String {
    String::from_utf8_lossy(&m.payload).into_owned()
}

fn server(ssid: u16, uri: &str, lt: u64) -> ServerConfig {
    let mut s = ServerConfig::new(ssid, uri, lt);
    s.server.mute_send = Some(false);
    s
}

/// A Bootstrap-Write of one instance in SenML JSON.
fn bs_write(path: Path, node: lwm2m_core::InstanceNode) -> Message {
    let body = format::encode(ContentFormat::SenmlJson, &path, &Node::Instance(node)).unwrap();
    Message::request(Code::PUT, &path.to_string())
        .with_content_format(ContentFormat::SenmlJson.code())
        .with_payload(body)
}

#[tokio::test(start_paused = true)]
async fn bootstrap_request_trigger_moves_the_client_to_a_new_server() {
    let mut dm1 = Server::start(lwm2m_server()).await;
    let mut bs = Server::start(lwm2m_server()).await;
    let mut dm2 = Server::start(lwm2m_server()).await;
    let cfg = FactoryConfig {
        servers: vec![server(1, &dm1.uri(), 300)],
        temperature: Some(vec![(0, 20.0)]),
        ..bootstrap_only(&bs.uri(), Credentials::NoSec)
    };
    let (client, mut events) = Client::start(cfg.build().unwrap(), ClientConfig::new("dev-bs")).unwrap();
    let reg = dm1.next().await;
    assert_eq!(reg.line(), "POST /rd");
    until(&mut events, |e| {
        matches!(e, ClientEvent::Registered { ssid: 1, .. }).then_some(())
    })
    .await;

    // Bootstrap requests before a bootstrap runs are refused.
    let early = Message::request(Code::DELETE, "/");
    // (The client's bootstrap endpoint does not exist yet; the DM server executes the trigger.)
    let r = dm1.ask(reg.peer, Message::request(Code::POST, "/1/0/9")).await;
    assert_eq!(r.code, Code::CHANGED);

    // Client Initiated Bootstrap: POST /bs?ep&pct to the Bootstrap-Server.
    let req = bs.next().await;
    assert_eq!(req.line(), "POST /bs");
    let mut q = req.queries();
    q.sort();
    assert_eq!(q, ["ep=dev-bs", "pct=112"]);
    let dev = req.peer;
    until(&mut events, |e| (*e == ClientEvent::BootstrapStarted).then_some(())).await;
    // DM&SE requests wait while bootstrapping.
    assert_eq!(
        dm1.ask(reg.peer, Message::request(Code::GET, "/3/0/0")).await.code,
        Code::SERVICE_UNAVAILABLE
    );

    // Bootstrap-Discover shows the enabler version and the current accounts.
    let mut d = Message::request(Code::GET, "/");
    d.set_accept(40);
    let r = bs.ask(dev, d).await;
    assert_eq!(r.code, Code::CONTENT);
    let links = text(&r);
    assert!(links.starts_with("</>;lwm2m=1.1"), "{links}");
    assert!(links.contains("</0/0>;ssid=1"), "{links}");
    // Delete everything (the Bootstrap-Server account and /3/0 stay), write a new account, read it back.
    assert_eq!(bs.ask(dev, early).await.code, Code::DELETED);
    let sec = SecurityInstance::nosec(dm2.uri(), 2);
    assert_eq!(
        bs.ask(dev, bs_write(p("/0/5"), sec.to_node(5))).await.code,
        Code::CHANGED
    );
    let mut srv2 = ServerInstance::new(2, 120);
    srv2.mute_send = Some(false);
    assert_eq!(
        bs.ask(dev, bs_write(p("/1/5"), srv2.to_node(5))).await.code,
        Code::CHANGED
    );
    let r = bs.ask(dev, Message::request(Code::GET, "/1")).await;
    assert_eq!(r.code, Code::CONTENT);
    // Bootstrap-Read is limited to Objects 1 and 2.
    assert_eq!(
        bs.ask(dev, Message::request(Code::GET, "/3")).await.code,
        Code::METHOD_NOT_ALLOWED
    );
    // Finish: 2.04, then the client registers at the new server (with its new lifetime) ...
    assert_eq!(
        bs.ask(dev, Message::request(Code::POST, "/bs")).await.code,
        Code::CHANGED
    );
    until(&mut events, |e| (*e == ClientEvent::Bootstrapped).then_some(())).await;
    let reg2 = dm2.next().await;
    assert_eq!(reg2.line(), "POST /rd");
    assert!(reg2.queries().contains(&"lt=120".to_string()), "{:?}", reg2.queries());
    assert!(reg2.queries().contains(&"ep=dev-bs".to_string()));
    until(&mut events, |e| {
        matches!(e, ClientEvent::Registered { ssid: 2, .. }).then_some(())
    })
    .await;
    // ... and leaves the old one, whose account was deleted.
    let de = dm1.next_matching("DELETE").await;
    assert_eq!(de.line(), "DELETE /rd/xyz");
    // The Bootstrap-Server is refused outside a bootstrap.
    assert_eq!(
        bs.ask(dev, Message::request(Code::DELETE, "/1")).await.code,
        Code::UNAUTHORIZED
    );
    // The new server manages the device (Delete / removed the temperature sensor instance).
    let r = dm2.ask(reg2.peer, Message::request(Code::GET, "/3/0/0")).await;
    assert_eq!((r.code, text(&r).as_str()), (Code::CONTENT, "lwm2m-rs"));
    let r = dm2.ask(reg2.peer, Message::request(Code::GET, "/3303/0/5700")).await;
    assert_eq!(r.code, Code::NOT_FOUND);
    client.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn inconsistent_finish_and_finish_timeout() {
    let mut bs = Server::start(lwm2m_server()).await;
    let cfg = FactoryConfig {
        bootstrap: Some(BootstrapConfig {
            uri: bs.uri(),
            credentials: Credentials::NoSec,
            hold_off_s: Some(3),
            account_timeout_s: None,
        }),
        ..FactoryConfig::default()
    };
    let (client, mut events) = Client::start(cfg.build().unwrap(), ClientConfig::new("dev-bs2")).unwrap();
    // No server account: bootstrap after the Client Hold Off Time.
    let req = bs.next().await;
    assert_eq!(req.line(), "POST /bs");
    assert!(
        req.at >= Duration::from_secs(3) && req.at < Duration::from_secs(4),
        "{:?}",
        req.at
    );
    // Finish without any server account: 4.06, the session goes on.
    let r = bs.ask(req.peer, Message::request(Code::POST, "/bs")).await;
    assert_eq!(r.code, Code::NOT_ACCEPTABLE);
    let t = Instant::now();
    // No further message: the bootstrap fails 247 s after the last one, and the engine retries later.
    let reason = until(&mut events, |e| match e {
        ClientEvent::BootstrapAttemptFailed { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(reason.contains("Finish"), "{reason}");
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_secs(247) && waited < Duration::from_secs(248),
        "{waited:?}"
    );
    let again = bs.next().await;
    assert_eq!(again.line(), "POST /bs");
    client.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn registration_retries_follow_the_engine_timers() {
    let mut dead = Silent::start().await;
    let mut s = server(1, &format!("coap://{}", dead.addr), 300);
    s.server.retry_count = Some(3);
    s.server.retry_timer_s = Some(10);
    s.server.seq_retry_count = Some(1);
    s.server.bootstrap_on_failure = Some(false);
    let dm = FactoryConfig {
        servers: vec![s],
        ..FactoryConfig::default()
    }
    .build()
    .unwrap();
    let mut cfg = ClientConfig::new("dev-retry");
    // One retransmission 1 s after the first transmission, failure 2 s later: each attempt lasts 3 s.
    cfg.coap = EndpointConfig {
        ack_timeout_ms: 1000,
        ack_random_factor: 1.0,
        max_retransmit: 1,
        ..EndpointConfig::default()
    };
    let t0 = Instant::now();
    let (client, mut events) = Client::start(dm, cfg).unwrap();
    let mut firsts: Vec<(Duration, u16)> = Vec::new();
    while firsts.len() < 3 {
        let (at, m) = dead.next().await;
        assert_eq!(m.uri_path_string(), "/rd");
        if !firsts.iter().any(|(_, mid)| *mid == m.message_id) {
            firsts.push((at, m.message_id));
        }
    }
    // Attempt 1 at 0 s fails at 3 s; attempt 2 after the retry timer (10 s) at 13 s fails at 16 s; attempt 3
    // after 2 × 10 s at 36 s fails at 39 s, and registration to that server has failed.
    let secs: Vec<u64> = firsts.iter().map(|(at, _)| at.as_secs()).collect();
    assert_eq!(secs, [0, 13, 36]);
    until(&mut events, |e| {
        (*e == ClientEvent::RegistrationFailed { ssid: 1 }).then_some(())
    })
    .await;
    assert_eq!(t0.elapsed().as_secs(), 39);
    client.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn queue_mode_sleeps_stores_notifications_and_wakes_with_an_update() {
    let mut srv = Server::start(lwm2m_server()).await;
    let dm = FactoryConfig {
        servers: vec![server(1, "coap://placeholder", 600)],
        temperature: Some(vec![(0, 20.0)]),
        ..FactoryConfig::default()
    };
    let mut dm = dm;
    dm.servers[0].uri = srv.uri();
    let mut cfg = ClientConfig::new("dev-q");
    cfg.queue_mode = true;
    let (client, mut events) = Client::start(dm.build().unwrap(), cfg).unwrap();
    let reg = srv.next().await;
    assert!(reg.queries().contains(&"Q".to_string()), "{:?}", reg.queries());
    until(&mut events, |e| {
        matches!(e, ClientEvent::Registered { .. }).then_some(())
    })
    .await;
    let mut o = Message::request(Code::GET, "/3303/0/5700");
    o.set_accept(ContentFormat::SenmlCbor.code());
    let (_, mut obs) = srv.handle.observe(reg.peer, o).await.unwrap();
    let t = Instant::now();
    // 93 s without traffic: asleep.
    until(&mut events, |e| (*e == ClientEvent::Sleeping { ssid: 1 }).then_some(())).await;
    assert_eq!(t.elapsed().as_secs(), 93);
    assert!(client.status().await.unwrap().servers[0].asleep);
    // Changes while asleep are stored, not sent.
    client.set_value(p("/3303/0/5700"), Value::Float(22.0)).await.unwrap();
    client.set_value(p("/3303/0/5700"), Value::Float(23.0)).await.unwrap();
    // Waking up: an Update, then the stored notifications with their times, then the current value.
    client.update(None).await.unwrap();
    let up = srv.next_matching("POST /rd/xyz").await;
    assert!(up.at >= reg.at + Duration::from_secs(93), "{:?}", up.at);
    until(&mut events, |e| (*e == ClientEvent::Awake { ssid: 1 }).then_some(())).await;
    let n = tokio::time::timeout(common::GUARD, obs.next()).await.unwrap().unwrap();
    let recs = format::decode_records(
        ContentFormat::SenmlCbor,
        &Path::ROOT,
        &n.payload,
        &ModelRegistry::builtin(),
    )
    .unwrap();
    let values: Vec<(Value, bool)> = recs.iter().map(|r| (r.value.clone(), r.time.is_some())).collect();
    assert_eq!(
        values,
        [
            (Value::Float(22.0), true),
            (Value::Float(23.0), true),
            (Value::Float(23.0), false)
        ]
    );
    client.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn disable_deregisters_and_registers_again_after_the_timeout() {
    let mut srv = Server::start(lwm2m_server()).await;
    let mut s = server(1, "coap://x", 300);
    s.uri = srv.uri();
    s.server.disable_timeout_s = Some(30);
    let dm = FactoryConfig {
        servers: vec![s],
        ..FactoryConfig::default()
    }
    .build()
    .unwrap();
    let (client, mut events) = Client::start(dm, ClientConfig::new("dev-dis")).unwrap();
    let reg = srv.next().await;
    until(&mut events, |e| {
        matches!(e, ClientEvent::Registered { .. }).then_some(())
    })
    .await;
    let r = srv.ask(reg.peer, Message::request(Code::POST, "/1/0/4")).await;
    assert_eq!(r.code, Code::CHANGED);
    let de = srv.next().await;
    assert_eq!(de.line(), "DELETE /rd/xyz");
    let d = until(&mut events, |e| match e {
        ClientEvent::Disabled { ssid: 1, duration } => Some(*duration),
        _ => None,
    })
    .await;
    assert_eq!(d, Duration::from_secs(30));
    let again = srv.next().await;
    assert_eq!(again.line(), "POST /rd");
    assert_eq!((again.at - de.at).as_secs(), 30);
    client.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn firmware_pull_download_is_block_wise() {
    let image: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let img = image.clone();
    let rule: Rule = Box::new(move |req| match (req.code, req.uri_path_string().as_str()) {
        (Code::GET, "/fw") => Some(Message::response_to(req, Code::CONTENT).with_payload(img.clone())),
        _ => Some(standard_answer(req)),
    });
    let mut srv = Server::start(rule).await;
    let dm = FactoryConfig {
        servers: vec![server(1, &srv.uri(), 300)],
        firmware: Some(FirmwareConfig::default()),
        ..FactoryConfig::default()
    }
    .build()
    .unwrap();
    let (client, mut events) = Client::start(dm, ClientConfig::new("dev-fw")).unwrap();
    let dev = srv.next().await.peer;
    until(&mut events, |e| {
        matches!(e, ClientEvent::Registered { .. }).then_some(())
    })
    .await;
    let uri = format!("coap://{}/fw", srv.addr);
    let w = Message::request(Code::PUT, "/5/0/1")
        .with_content_format(0)
        .with_payload(uri.clone());
    assert_eq!(srv.ask(dev, w).await.code, Code::CHANGED);
    let got = until(&mut events, |e| match e {
        ClientEvent::FirmwareDownloaded { uri: u, package } if *u == uri => Some(package.clone()),
        _ => None,
    })
    .await;
    assert_eq!(got, image);
    // The GETs came in blocks from the download endpoint, not the registration's.
    let get = srv.next_matching("GET /fw").await;
    assert_ne!(get.peer, dev);
    assert_eq!(text(&srv.ask(dev, Message::request(Code::GET, "/5/0/3")).await), "2");
    // Update: an event for the application, which reports the outcome.
    assert_eq!(
        srv.ask(dev, Message::request(Code::POST, "/5/0/2")).await.code,
        Code::CHANGED
    );
    until(&mut events, |e| {
        (*e == ClientEvent::FirmwareUpdateRequested).then_some(())
    })
    .await;
    client
        .with_data_model(|dm| dm.with_object::<FirmwareUpdate, _>(5, |f, fx| f.update_finished(Ok(()), fx)))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(text(&srv.ask(dev, Message::request(Code::GET, "/5/0/5")).await), "1");
    // A URI that does not exist: Update Result 7 (invalid URI), back to Idle.
    let bad = format!("coap://{}/missing", srv.addr);
    let w = Message::request(Code::PUT, "/5/0/1")
        .with_content_format(0)
        .with_payload(bad);
    assert_eq!(srv.ask(dev, w).await.code, Code::CHANGED);
    let code = until(&mut events, |e| match e {
        ClientEvent::FirmwareDownloadFailed { result, .. } => Some(*result),
        _ => None,
    })
    .await;
    assert_eq!(code, 7);
    assert_eq!(text(&srv.ask(dev, Message::request(Code::GET, "/5/0/3")).await), "0");
    client.shutdown().await;
}

#[cfg(feature = "dtls")]
#[tokio::test]
async fn registers_over_coaps_with_psk() {
    let mut srv = Server::start_secure(lwm2m_server(), "dev-psk", b"0123456789abcdef").await;
    let mut s = server(1, &format!("coaps://{}", srv.addr), 300);
    s.credentials = Credentials::Psk {
        identity: b"dev-psk".to_vec(),
        key: b"0123456789abcdef".to_vec(),
    };
    let dm = FactoryConfig {
        servers: vec![s],
        temperature: Some(vec![(0, 19.5)]),
        ..FactoryConfig::default()
    }
    .build()
    .unwrap();
    let (client, mut events) = Client::start(dm, ClientConfig::new("dev-psk")).unwrap();
    let reg = srv.next().await;
    assert_eq!(reg.line(), "POST /rd");
    until(&mut events, |e| {
        matches!(e, ClientEvent::Registered { .. }).then_some(())
    })
    .await;
    let r = srv.ask(reg.peer, Message::request(Code::GET, "/3303/0/5700")).await;
    assert_eq!((r.code, text(&r).as_str()), (Code::CONTENT, "19.5"));
    client.shutdown().await;
    assert_eq!(srv.next_matching("DELETE").await.line(), "DELETE /rd/xyz");
}

#[cfg(feature = "dtls")]
#[tokio::test(start_paused = true)]
async fn a_wrong_psk_counts_as_a_failed_attempt() {
    let srv = Server::start_secure(lwm2m_server(), "dev-psk", b"0123456789abcdef").await;
    let mut s = server(1, &format!("coaps://{}", srv.addr), 300);
    s.credentials = Credentials::Psk {
        identity: b"dev-psk".to_vec(),
        key: b"wrong-key-wrong!".to_vec(),
    };
    s.server.retry_count = Some(1);
    let dm = FactoryConfig {
        servers: vec![s],
        ..FactoryConfig::default()
    }
    .build()
    .unwrap();
    let (client, mut events) = Client::start(dm, ClientConfig::new("dev-psk")).unwrap();
    let reason = register_failure(&mut events).await;
    assert!(
        reason.contains("HandshakeFailed") || reason.contains("Timeout"),
        "{reason}"
    );
    client.shutdown().await;
}
