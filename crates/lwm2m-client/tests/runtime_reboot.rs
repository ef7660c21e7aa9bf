//! The runtime acting on `/3/0/4` Reboot and `/3/0/5` Factory Reset ([`RebootPolicy`]) and purging the
//! Bootstrap-Server account after its `/0/x/12` timeout, against scripted LwM2M and Bootstrap servers on
//! 127.0.0.1 with tokio's paused clock (nothing sleeps for real; timers fire in virtual time).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{standard_answer, until, Logged, Rule, Server};
use lwm2m_client::dm::{BootstrapConfig, Credentials, FactoryConfig, ServerConfig};
use lwm2m_client::objects::security::SecurityInstance;
use lwm2m_client::objects::server::ServerInstance;
use lwm2m_client::runtime::{Client, ClientConfig, ClientEvent, RebootPolicy, ResetKind};
use lwm2m_coap::{Code, Message};
use lwm2m_core::{format, ContentFormat, InstanceNode, Node, Path};
use tokio::time::Instant;

/// The scripted server's rule here: like `common::lwm2m_server`, but every Register gets a new location
/// `rd/<n>`, so a registration after a restart is told apart from the one before.
fn numbered_registrations() -> Rule {
    let mut registrations = 0u32;
    Box::new(move |req| {
        if req.code == Code::POST && req.uri_path() == ["rd"] {
            registrations += 1;
            let mut m = Message::response_to(req, Code::CREATED);
            m.set_location_path(&format!("rd/{registrations}"));
            return Some(m);
        }
        Some(standard_answer(req))
    })
}

/// The `lt=` Uri-Query of a logged request, if any.
fn lifetime(l: &Logged) -> Option<String> {
    l.queries()
        .into_iter()
        .find_map(|q| q.strip_prefix("lt=").map(str::to_owned))
}

fn p(s: &str) -> Path {
    s.parse().unwrap()
}

fn text(m: &Message) -> String {
    String::from_utf8_lossy(&m.payload).into_owned()
}

fn post(path: &str) -> Message {
    Message::request(Code::POST, path)
}

fn put_text(path: &str, value: &str) -> Message {
    Message::request(Code::PUT, path)
        .with_content_format(ContentFormat::Text.code())
        .with_payload(value.to_owned())
}

/// A device registered at `uri` (ssid 1, lifetime `lt`) with a temperature sensor.
fn device(uri: &str, lt: u64) -> FactoryConfig {
    FactoryConfig {
        servers: vec![ServerConfig::new(1, uri, lt)],
        temperature: Some(vec![(0, 21.0)]),
        ..FactoryConfig::default()
    }
}

fn config(endpoint: &str, policy: RebootPolicy) -> ClientConfig {
    let mut c = ClientConfig::new(endpoint);
    c.reboot_policy = policy;
    c
}

/// A Bootstrap-Write of one instance in SenML JSON.
fn bs_write(path: Path, node: InstanceNode) -> Message {
    let body = format::encode(ContentFormat::SenmlJson, &path, &Node::Instance(node)).unwrap();
    Message::request(Code::PUT, &path.to_string())
        .with_content_format(ContentFormat::SenmlJson.code())
        .with_payload(body)
}

#[tokio::test(start_paused = true)]
async fn reboot_registers_again_and_keeps_the_data_model() {
    let mut srv = Server::start(numbered_registrations()).await;
    let resets: Arc<Mutex<Vec<ResetKind>>> = Arc::default();
    let seen = resets.clone();
    let policy = RebootPolicy::RestartWith(Arc::new(move |kind, _dm| seen.lock().unwrap().push(kind)));
    let (client, mut events) =
        Client::start(device(&srv.uri(), 300).build().unwrap(), config("dev-reboot", policy)).expect("client starts");
    let reg = srv.next().await;
    assert_eq!(reg.line(), "POST /rd");
    until(&mut events, |e| {
        matches!(e, ClientEvent::Registered { ssid: 1, location } if location == &["rd", "1"]).then_some(())
    })
    .await;
    let dev = reg.peer;
    // The server configures the device and observes the temperature.
    assert_eq!(srv.ask(dev, put_text("/3303/0/5750", "lab")).await.code, Code::CHANGED);
    let (first, _obs) = srv
        .handle
        .observe(dev, Message::request(Code::GET, "/3303/0/5700"))
        .await
        .unwrap();
    assert_eq!(first.code, Code::CONTENT);
    assert_eq!(client.status().await.unwrap().servers[0].observations, 1);

    // Execute Reboot: 2.04, then a fresh Register (not an Update), without a De-register, from a new port.
    assert_eq!(srv.ask(dev, post("/3/0/4")).await.code, Code::CHANGED);
    until(&mut events, |e| (*e == ClientEvent::Reboot).then_some(())).await;
    until(&mut events, |e| {
        (*e == ClientEvent::Restarted {
            kind: ResetKind::Reboot,
        })
        .then_some(())
    })
    .await;
    let again = srv.next().await;
    assert_eq!(
        again.line(),
        "POST /rd",
        "a reboot sends no De-register, and Registers afresh"
    );
    assert_eq!(lifetime(&again).as_deref(), Some("300"));
    assert_ne!(again.peer, dev, "the rebooted device talks from a new endpoint");
    until(&mut events, |e| {
        matches!(e, ClientEvent::Registered { ssid: 1, location } if location == &["rd", "2"]).then_some(())
    })
    .await;
    assert_eq!(*resets.lock().unwrap(), [ResetKind::Reboot]);

    // The configuration survived; the observation did not (the server re-establishes it after a Register).
    let r = srv.ask(again.peer, Message::request(Code::GET, "/3303/0/5750")).await;
    assert_eq!((r.code, text(&r).as_str()), (Code::CONTENT, "lab"));
    assert_eq!(client.status().await.unwrap().servers[0].observations, 0);
    // The old endpoint is gone.
    let old = tokio::time::timeout(
        Duration::from_secs(300),
        srv.handle.request(dev, Message::request(Code::GET, "/3/0/0")),
    )
    .await;
    assert!(
        !matches!(old, Ok(Ok(_))),
        "the pre-reboot endpoint still answers: {old:?}"
    );

    client.shutdown().await;
    let de = loop {
        let l = srv.next().await;
        if l.request.code == Code::DELETE {
            break l;
        }
    };
    assert_eq!(de.line(), "DELETE /rd/2");
}

#[tokio::test(start_paused = true)]
async fn factory_reset_deregisters_and_restores_the_factory_lifetime() {
    let mut srv = Server::start(numbered_registrations()).await;
    let (client, mut events) = Client::start(
        device(&srv.uri(), 300).build().unwrap(),
        config("dev-factory", RebootPolicy::Restart),
    )
    .expect("client starts");
    let reg = srv.next().await;
    assert_eq!(
        (reg.line(), lifetime(&reg)),
        ("POST /rd".to_owned(), Some("300".to_owned()))
    );
    let dev = reg.peer;
    until(&mut events, |e| {
        matches!(e, ClientEvent::Registered { ssid: 1, .. }).then_some(())
    })
    .await;

    // The server writes the lifetime: an Update with lt=900.
    assert_eq!(srv.ask(dev, put_text("/1/0/1", "900")).await.code, Code::CHANGED);
    let up = srv.next().await;
    assert_eq!(
        (up.line(), lifetime(&up)),
        ("POST /rd/1".to_owned(), Some("900".to_owned()))
    );

    // Factory Reset: 2.04, a De-register, then a Register with the factory lifetime.
    assert_eq!(srv.ask(dev, post("/3/0/5")).await.code, Code::CHANGED);
    until(&mut events, |e| (*e == ClientEvent::FactoryReset).then_some(())).await;
    let de = srv.next().await;
    assert_eq!(de.line(), "DELETE /rd/1");
    until(&mut events, |e| {
        (*e == ClientEvent::Restarted {
            kind: ResetKind::FactoryReset,
        })
        .then_some(())
    })
    .await;
    let again = srv.next().await;
    assert_eq!(again.line(), "POST /rd");
    assert_eq!(lifetime(&again).as_deref(), Some("300"), "the factory lifetime is back");
    until(&mut events, |e| {
        matches!(e, ClientEvent::Registered { ssid: 1, location } if location == &["rd", "2"]).then_some(())
    })
    .await;
    let r = srv.ask(again.peer, Message::request(Code::GET, "/1/0/1")).await;
    assert_eq!((r.code, text(&r).as_str()), (Code::CONTENT, "300"));
    // The Update schedule follows the factory lifetime: 300 - 93 s after the new Register.
    let up = srv.next().await;
    assert_eq!((up.line(), lifetime(&up)), ("POST /rd/2".to_owned(), None));
    assert_eq!(up.at - again.at, Duration::from_secs(207));
    client.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn event_only_policy_leaves_the_reboot_to_the_application() {
    let mut srv = Server::start(numbered_registrations()).await;
    let (client, mut events) = Client::start(
        device(&srv.uri(), 300).build().unwrap(),
        ClientConfig::new("dev-events"),
    )
    .expect("client starts");
    let dev = srv.next().await.peer;
    until(&mut events, |e| {
        matches!(e, ClientEvent::Registered { .. }).then_some(())
    })
    .await;
    assert_eq!(srv.ask(dev, put_text("/1/0/1", "900")).await.code, Code::CHANGED);
    assert_eq!(srv.next().await.line(), "POST /rd/1");
    assert_eq!(srv.ask(dev, post("/3/0/4")).await.code, Code::CHANGED);
    assert_eq!(srv.ask(dev, post("/3/0/5")).await.code, Code::CHANGED);
    until(&mut events, |e| (*e == ClientEvent::Reboot).then_some(())).await;
    until(&mut events, |e| (*e == ClientEvent::FactoryReset).then_some(())).await;
    // Still the same registration, endpoint and data model.
    let r = srv.ask(dev, Message::request(Code::GET, "/1/0/1")).await;
    assert_eq!((r.code, text(&r).as_str()), (Code::CONTENT, "900"));
    client.update(Some(1)).await.unwrap();
    let up = srv.next().await;
    assert_eq!((up.line(), up.peer), ("POST /rd/1".to_owned(), dev));
    while let Ok(e) = events.try_recv() {
        assert!(!matches!(e, ClientEvent::Restarted { .. }), "{e:?}");
    }
    client.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn bootstrap_account_is_purged_after_its_timeout_and_a_factory_reset_brings_it_back() {
    let mut bs = Server::start(numbered_registrations()).await;
    let mut dm = Server::start(numbered_registrations()).await;
    // Factory: only a Bootstrap-Server account, with a Bootstrap-Server Account Timeout of 60 s.
    let factory = FactoryConfig {
        bootstrap: Some(BootstrapConfig {
            uri: bs.uri(),
            credentials: Credentials::NoSec,
            hold_off_s: Some(0),
            account_timeout_s: Some(60),
        }),
        ..FactoryConfig::default()
    };
    let (client, mut events) =
        Client::start(factory.build().unwrap(), config("dev-bs", RebootPolicy::Restart)).expect("client starts");
    let req = bs.next().await;
    assert_eq!(req.line(), "POST /bs");
    let dev = req.peer;
    // The Bootstrap-Server provisions a LwM2M Server account, then Finish.
    let sec = SecurityInstance::nosec(dm.uri(), 7);
    assert_eq!(
        bs.ask(dev, bs_write(p("/0/3"), sec.to_node(3))).await.code,
        Code::CHANGED
    );
    assert_eq!(
        bs.ask(dev, bs_write(p("/1/3"), ServerInstance::new(7, 3600).to_node(3)))
            .await
            .code,
        Code::CHANGED
    );
    assert_eq!(bs.ask(dev, post("/bs")).await.code, Code::CHANGED);
    let finished = Instant::now();
    until(&mut events, |e| (*e == ClientEvent::Bootstrapped).then_some(())).await;
    let reg = dm.next().await;
    assert_eq!(reg.line(), "POST /rd");
    let dev = reg.peer;
    until(&mut events, |e| {
        matches!(e, ClientEvent::Registered { ssid: 7, .. }).then_some(())
    })
    .await;

    let status = client.status().await.unwrap();
    assert_eq!(status.servers.len(), 1);

    // 60 s after the Finish the Bootstrap-Server account is deleted.
    until(&mut events, |e| {
        (*e == ClientEvent::BootstrapAccountPurged).then_some(())
    })
    .await;
    let waited = finished.elapsed();
    assert!(
        waited >= Duration::from_secs(60) && waited < Duration::from_secs(61),
        "purged after {waited:?}"
    );
    let has_bs_account = client
        .with_data_model(|dm| dm.bootstrap_account().is_some())
        .await
        .unwrap();
    assert!(!has_bs_account);
    // /1/x/9 has nothing to bootstrap from any more: 4.05.
    assert_eq!(dm.ask(dev, post("/1/3/9")).await.code, Code::METHOD_NOT_ALLOWED);
    // The registration is unaffected.
    let r = dm.ask(dev, Message::request(Code::GET, "/3/0/0")).await;
    assert_eq!(r.code, Code::CONTENT);

    // Factory Reset: De-register, the factory configuration (Bootstrap-Server account only) comes back, and
    // the device bootstraps again.
    assert_eq!(dm.ask(dev, post("/3/0/5")).await.code, Code::CHANGED);
    assert_eq!(dm.next().await.line(), "DELETE /rd/1");
    until(&mut events, |e| {
        (*e == ClientEvent::Restarted {
            kind: ResetKind::FactoryReset,
        })
        .then_some(())
    })
    .await;
    let again = bs.next().await;
    assert_eq!(again.line(), "POST /bs");
    until(&mut events, |e| (*e == ClientEvent::BootstrapStarted).then_some(())).await;
    client.shutdown().await;
}
