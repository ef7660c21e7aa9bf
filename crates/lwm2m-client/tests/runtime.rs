//! The client runtime against a scripted LwM2M server on 127.0.0.1, with tokio's paused clock: nothing sleeps,
//! every wait is for a message or an event, and timers fire in virtual time.

mod common;

use std::time::Duration;

use common::{lwm2m_server, standard_answer, until, Server};
use lwm2m_client::dm::{DataModel, FactoryConfig, ServerConfig};
use lwm2m_client::objects::firmware::FirmwareConfig;
use lwm2m_client::runtime::{Client, ClientConfig, ClientError, ClientEvent, ClientHandle};
use lwm2m_coap::{Code, Message};
use lwm2m_core::format;
use lwm2m_core::{ContentFormat, ModelRegistry, Path, Value};
use tokio::sync::mpsc;

fn p(s: &str) -> Path {
    s.parse().unwrap()
}

/// A device with one server at `uri` (ssid 1, lifetime `lt`), Send allowed, a temperature sensor and
/// firmware update.
fn device(uri: &str, lt: u64) -> FactoryConfig {
    let mut server = ServerConfig::new(1, uri, lt);
    server.server.mute_send = Some(false);
    FactoryConfig {
        servers: vec![server],
        temperature: Some(vec![(0, 21.0)]),
        firmware: Some(FirmwareConfig::default()),
        ..FactoryConfig::default()
    }
}

fn start(dm: DataModel, cfg: ClientConfig) -> (ClientHandle, mpsc::UnboundedReceiver<ClientEvent>) {
    Client::start(dm, cfg).expect("client starts")
}

fn text(m: &Message) -> String {
    String::from_utf8_lossy(&m.payload).into_owned()
}

fn get(path: &str) -> Message {
    Message::request(Code::GET, path)
}

#[tokio::test(start_paused = true)]
async fn registers_and_answers_dm_requests() {
    let mut srv = Server::start(lwm2m_server()).await;
    let (client, mut events) = start(device(&srv.uri(), 300).build().unwrap(), ClientConfig::new("dev-1"));

    // Register: POST /rd?ep&lt&lwm2m&b, link format with the object list.
    let reg = srv.next().await;
    assert_eq!(reg.line(), "POST /rd");
    let mut q = reg.queries();
    q.sort();
    assert_eq!(q, ["b=U", "ep=dev-1", "lt=300", "lwm2m=1.1"]);
    assert_eq!(reg.request.content_format(), Some(40));
    let links = text(&reg.request);
    assert!(
        links.contains("</3/0>") && links.contains("</3303/0>") && links.contains("</5/0>"),
        "{links}"
    );
    assert!(!links.contains("</0"), "Security is never announced: {links}");
    let location = until(&mut events, |e| match e {
        ClientEvent::Registered { ssid: 1, location } => Some(location.clone()),
        _ => None,
    })
    .await;
    assert_eq!(location, ["rd", "xyz"]);
    let dev = reg.peer;

    // Read a single resource: text/plain.
    let r = srv.ask(dev, get("/3/0/0")).await;
    assert_eq!(
        (r.code, r.content_format(), text(&r).as_str()),
        (Code::CONTENT, Some(0), "lwm2m-rs")
    );
    // Read an instance with Accept SenML JSON.
    let mut m = get("/3303/0");
    m.set_accept(110);
    let r = srv.ask(dev, m).await;
    assert_eq!((r.code, r.content_format()), (Code::CONTENT, Some(110)));
    let recs = format::decode_records(
        ContentFormat::SenmlJson,
        &Path::ROOT,
        &r.payload,
        &ModelRegistry::builtin(),
    )
    .unwrap();
    assert!(recs
        .iter()
        .any(|r| r.path == p("/3303/0/5700") && r.value == Value::Float(21.0)));
    // Discover.
    let mut m = get("/3/0");
    m.set_accept(40);
    let r = srv.ask(dev, m).await;
    assert_eq!((r.code, r.content_format()), (Code::CONTENT, Some(40)));
    assert!(text(&r).starts_with("</3/0>"), "{}", text(&r));
    // Security is invisible, unknown resources are 4.04, read-only ones refuse Write.
    assert_eq!(srv.ask(dev, get("/0/0")).await.code, Code::NOT_FOUND);
    assert_eq!(srv.ask(dev, get("/3/0/99")).await.code, Code::NOT_FOUND);
    let w = Message::request(Code::PUT, "/3/0/0")
        .with_content_format(0)
        .with_payload("x");
    assert_eq!(srv.ask(dev, w).await.code, Code::METHOD_NOT_ALLOWED);
    let mut m = get("/3/0");
    m.set_accept(1234);
    assert_eq!(srv.ask(dev, m).await.code, Code::NOT_ACCEPTABLE);

    // Write-Replace a resource, read it back.
    let w = Message::request(Code::PUT, "/3303/0/5750")
        .with_content_format(0)
        .with_payload("room");
    assert_eq!(srv.ask(dev, w).await.code, Code::CHANGED);
    assert_eq!(text(&srv.ask(dev, get("/3303/0/5750")).await), "room");
    // Write-Attributes (PUT without Content-Format), checked through Discover.
    let wa = Message::request(Code::PUT, "/3303/0/5700?pmin=5&gt=30");
    assert_eq!(srv.ask(dev, wa).await.code, Code::CHANGED);
    let mut m = get("/3303/0/5700");
    m.set_accept(40);
    let d = text(&srv.ask(dev, m).await);
    assert!(d.contains("pmin=5") && d.contains("gt=30"), "{d}");
    let bad = Message::request(Code::PUT, "/3303/0/5700?pmin=x");
    assert_eq!(srv.ask(dev, bad).await.code, Code::BAD_REQUEST);

    // Execute Reboot: 2.04 first, then the event.
    assert_eq!(
        srv.ask(dev, Message::request(Code::POST, "/3/0/4")).await.code,
        Code::CHANGED
    );
    until(&mut events, |e| (*e == ClientEvent::Reboot).then_some(())).await;
    assert_eq!(
        srv.ask(dev, Message::request(Code::POST, "/3/0/0")).await.code,
        Code::METHOD_NOT_ALLOWED
    );

    // Create: 2.01 with the new instance's Location-Path, then an Update with the new object list.
    let c = Message::request(Code::POST, "/3303")
        .with_content_format(110)
        .with_payload(r#"[{"n":"/3303/1/5700","v":18.5}]"#);
    let r = srv.ask(dev, c).await;
    assert_eq!(
        (r.code, r.location_path()),
        (Code::CREATED, vec!["3303".to_string(), "1".to_string()])
    );
    let up = srv.next_matching("POST /rd/xyz").await;
    assert!(text(&up.request).contains("</3303/1>"), "{}", text(&up.request));
    // Delete it: 2.02 and another Update.
    assert_eq!(
        srv.ask(dev, Message::request(Code::DELETE, "/3303/1")).await.code,
        Code::DELETED
    );
    let up = srv.next_matching("POST /rd/xyz").await;
    assert!(!text(&up.request).contains("</3303/1>"));
    assert_eq!(
        srv.ask(dev, Message::request(Code::DELETE, "/3/0")).await.code,
        Code::METHOD_NOT_ALLOWED
    );

    // Read-Composite (FETCH) and Write-Composite (iPATCH); the lifetime write makes an Update with lt.
    let f = Message::request(Code::FETCH, "/")
        .with_content_format(110)
        .with_payload(r#"[{"n":"/3/0/0"},{"n":"/3303/0/5700"}]"#);
    let r = srv.ask(dev, f).await;
    assert_eq!((r.code, r.content_format()), (Code::CONTENT, Some(110)));
    assert!(text(&r).contains("lwm2m-rs"), "{}", text(&r));
    let i = Message::request(Code::IPATCH, "/")
        .with_content_format(110)
        .with_payload(r#"[{"n":"/1/0/1","v":600}]"#);
    assert_eq!(srv.ask(dev, i).await.code, Code::CHANGED);
    let up = srv.next_matching("POST /rd/xyz").await;
    assert_eq!(up.queries(), ["lt=600"]);

    // A non-LwM2M method or path.
    assert_eq!(
        srv.ask(dev, Message::request(Code::PATCH, "/3/0")).await.code,
        Code::METHOD_NOT_ALLOWED
    );
    assert_eq!(srv.ask(dev, get("/rd")).await.code, Code::NOT_FOUND);

    client.shutdown().await;
    let de = srv.next_matching("DELETE").await;
    assert_eq!(de.line(), "DELETE /rd/xyz");
}

#[tokio::test(start_paused = true)]
async fn observe_notify_and_cancel() {
    let mut srv = Server::start(lwm2m_server()).await;
    let (client, mut events) = start(device(&srv.uri(), 300).build().unwrap(), ClientConfig::new("dev-obs"));
    let dev = srv.next().await.peer;
    until(&mut events, |e| {
        matches!(e, ClientEvent::Registered { .. }).then_some(())
    })
    .await;

    // Observe a resource: the 2.05 carries Observe; a value change is notified with the same token.
    let (first, mut obs) = srv.handle.observe(dev, get("/3303/0/5700")).await.unwrap();
    assert_eq!(first.code, Code::CONTENT);
    assert!(first.observe().is_some());
    assert_eq!(text(&first), "21");
    client.set_value(p("/3303/0/5700"), Value::Float(25.5)).await.unwrap();
    let n = tokio::time::timeout(common::GUARD, obs.next()).await.unwrap().unwrap();
    assert_eq!((n.code, text(&n).as_str()), (Code::CONTENT, "25.5"));
    assert_eq!(client.status().await.unwrap().servers[0].observations, 1);

    // Observe-Composite in SenML JSON: both paths in every notification.
    let mut f = Message::request(Code::FETCH, "/")
        .with_content_format(110)
        .with_payload(r#"[{"n":"/3303/0/5700"},{"n":"/3/0/0"}]"#);
    f.set_accept(110);
    let (first, mut cobs) = srv.handle.observe(dev, f).await.unwrap();
    assert_eq!((first.code, first.content_format()), (Code::CONTENT, Some(110)));
    assert!(first.observe().is_some());
    client.set_value(p("/3303/0/5700"), Value::Float(26.0)).await.unwrap();
    let n = tokio::time::timeout(common::GUARD, cobs.next()).await.unwrap().unwrap();
    let recs = format::decode_records(
        ContentFormat::SenmlJson,
        &Path::ROOT,
        &n.payload,
        &ModelRegistry::builtin(),
    )
    .unwrap();
    assert_eq!(recs.len(), 2, "{}", text(&n));
    assert!(recs
        .iter()
        .any(|r| r.path == p("/3303/0/5700") && r.value == Value::Float(26.0)));
    // The single observation got it too.
    let n = tokio::time::timeout(common::GUARD, obs.next()).await.unwrap().unwrap();
    assert_eq!(text(&n), "26");
    assert_eq!(client.status().await.unwrap().servers[0].observations, 2);

    // Cancel with GET Observe=1 (a plain 2.05 answers it), then the composite one the same way.
    let r = obs.deregister().await.unwrap();
    assert_eq!((r.code, r.observe()), (Code::CONTENT, None));
    until(&mut events, |e| {
        (*e == ClientEvent::ObservationCancelled { ssid: 1 }).then_some(())
    })
    .await;
    assert_eq!(client.status().await.unwrap().servers[0].observations, 1);
    cobs.deregister().await.unwrap();
    until(&mut events, |e| {
        (*e == ClientEvent::ObservationCancelled { ssid: 1 }).then_some(())
    })
    .await;
    assert_eq!(client.status().await.unwrap().servers[0].observations, 0);

    // Deleting an observed instance ends its observation with a 4.04 notification.
    let c = Message::request(Code::POST, "/3303")
        .with_content_format(110)
        .with_payload(r#"[{"n":"/3303/4/5700","v":1.5}]"#);
    assert_eq!(srv.ask(dev, c).await.code, Code::CREATED);
    let (_, mut iobs) = srv.handle.observe(dev, get("/3303/4")).await.unwrap();
    assert_eq!(
        srv.ask(dev, Message::request(Code::DELETE, "/3303/4")).await.code,
        Code::DELETED
    );
    let n = tokio::time::timeout(common::GUARD, iobs.next()).await.unwrap().unwrap();
    assert_eq!(n.code, Code::NOT_FOUND);
    assert!(tokio::time::timeout(common::GUARD, iobs.next())
        .await
        .unwrap()
        .is_none());

    // Observing something that does not exist fails without an observation.
    let (r, _o) = srv.handle.observe(dev, get("/3303/7/5700")).await.unwrap();
    assert_eq!(r.code, Code::NOT_FOUND);

    // pmin from Write-Attributes holds notifications back (virtual time): pmin=10 on the instance.
    let wa = Message::request(Code::PUT, "/3303/0?pmin=10");
    assert_eq!(srv.ask(dev, wa).await.code, Code::CHANGED);
    let (_, mut obs) = srv.handle.observe(dev, get("/3303/0/5700")).await.unwrap();
    let t0 = tokio::time::Instant::now();
    client.set_value(p("/3303/0/5700"), Value::Float(30.0)).await.unwrap();
    let n = tokio::time::timeout(common::GUARD, obs.next()).await.unwrap().unwrap();
    assert_eq!(text(&n), "30");
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
        "{waited:?}"
    );

    // RST to a notification ends the observation: drop the Observation (its notifications get RST).
    drop(obs);
    client.set_value(p("/3303/0/5700"), Value::Float(31.0)).await.unwrap();
    until(&mut events, |e| {
        (*e == ClientEvent::ObservationCancelled { ssid: 1 }).then_some(())
    })
    .await;
    assert_eq!(client.status().await.unwrap().servers[0].observations, 0);
    client.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn update_before_lifetime_expiry_and_reregister_on_404() {
    let mut updates = 0;
    let rule: common::Rule = Box::new(move |req| {
        if req.code == Code::POST && req.uri_path() == ["rd", "xyz"] {
            updates += 1;
            if updates == 2 {
                return Some(Message::response_to(req, Code::NOT_FOUND));
            }
        }
        Some(standard_answer(req))
    });
    let mut srv = Server::start(rule).await;
    let (client, _events) = start(device(&srv.uri(), 300).build().unwrap(), ClientConfig::new("dev-lt"));
    let reg = srv.next().await;
    assert_eq!(reg.line(), "POST /rd");
    // Lifetime 300 s: the Update goes out 93 s before the end (at 207 s), an empty Update.
    let up = srv.next().await;
    assert_eq!(up.line(), "POST /rd/xyz");
    assert!(up.queries().is_empty() && up.request.payload.is_empty());
    let since = up.at - reg.at;
    assert!(
        since >= Duration::from_secs(206) && since <= Duration::from_secs(208),
        "{since:?}"
    );
    // The next one is answered 4.04 (the server lost the registration): the client registers again at once.
    let up2 = srv.next().await;
    assert_eq!(up2.line(), "POST /rd/xyz");
    let since = up2.at - up.at;
    assert!(
        since >= Duration::from_secs(206) && since <= Duration::from_secs(208),
        "{since:?}"
    );
    let again = srv.next().await;
    assert_eq!(again.line(), "POST /rd");
    assert!(again.at - up2.at < Duration::from_secs(1));
    assert!(text(&again.request).contains("</3/0>"));
    client.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn send_after_register_and_on_demand() {
    let mut srv = Server::start(lwm2m_server()).await;
    let mut cfg = ClientConfig::new("dev-send");
    cfg.send_on_register = vec![p("/3303/0/5700"), p("/3/0/0")];
    let (client, mut events) = start(device(&srv.uri(), 300).build().unwrap(), cfg);
    assert_eq!(srv.next().await.line(), "POST /rd");
    // BsR-8: Send right after the 2.01, SenML CBOR to /dp.
    let send = srv.next().await;
    assert_eq!(send.line(), "POST /dp");
    assert_eq!(send.request.content_format(), Some(112));
    let recs = format::decode_records(
        ContentFormat::SenmlCbor,
        &Path::ROOT,
        &send.request.payload,
        &ModelRegistry::builtin(),
    )
    .unwrap();
    assert!(recs
        .iter()
        .any(|r| r.path == p("/3303/0/5700") && r.value == Value::Float(21.0)));
    assert!(recs.iter().any(|r| r.path == p("/3/0/0")));
    until(&mut events, |e| {
        matches!(e, ClientEvent::Sent { result: Ok(()), .. }).then_some(())
    })
    .await;

    // On demand.
    client.send(1, vec![p("/3303/0")]).await.unwrap();
    let send = srv.next().await;
    assert_eq!(send.line(), "POST /dp");
    // Not for Security, not to unknown servers.
    assert!(matches!(client.send(1, vec![p("/0/0")]).await, Err(ClientError::Dm(_))));
    assert_eq!(
        client.send(9, vec![p("/3/0")]).await,
        Err(ClientError::NotRegistered(9))
    );
    // Mute Send (absent or true) refuses.
    client
        .with_data_model(|dm| {
            dm.write(
                1,
                &"/1/0/23".parse().unwrap(),
                lwm2m_client::object::WriteMode::Replace,
                ContentFormat::Text,
                b"1",
            )
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.send(1, vec![p("/3303/0")]).await, Err(ClientError::Muted(1)));
    client.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn send_rejection_is_reported() {
    let rule: common::Rule = Box::new(|req| {
        if req.uri_path() == ["dp"] {
            Some(Message::response_to(req, Code::NOT_FOUND))
        } else {
            Some(standard_answer(req))
        }
    });
    let mut srv = Server::start(rule).await;
    let (client, mut events) = start(device(&srv.uri(), 300).build().unwrap(), ClientConfig::new("dev-s4"));
    srv.next().await;
    until(&mut events, |e| {
        matches!(e, ClientEvent::Registered { .. }).then_some(())
    })
    .await;
    assert_eq!(
        client.send(1, vec![p("/3303/0/5700")]).await,
        Err(ClientError::Rejected {
            ssid: 1,
            code: Code::NOT_FOUND
        })
    );
    client.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn requests_right_after_the_register_answer_are_served() {
    use lwm2m_coap::transport::udp::{Incoming, UdpEndpoint};
    let (srv, mut incoming) = UdpEndpoint::bind("127.0.0.1:0".parse().unwrap(), Default::default())
        .await
        .unwrap();
    let uri = format!("coap://{}", srv.local_addr());
    let (client, _events) = start(device(&uri, 300).build().unwrap(), ClientConfig::new("dev-race"));
    let Some(Incoming::Request(reg)) = incoming.recv().await else {
        panic!("no Register")
    };
    assert_eq!(reg.request.uri_path_string(), "/rd");
    let mut created = Message::response_to(&reg.request, Code::CREATED);
    created.set_location_path("rd/1");
    srv.respond(reg.responder, created).unwrap();
    // The Read leaves right behind the 2.01: it may reach the client's task before the Register's outcome
    // does, and is served once the registration is known.
    let read = tokio::time::timeout(common::GUARD, srv.request(reg.peer, get("/3/0/0")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((read.code, text(&read).as_str()), (Code::CONTENT, "lwm2m-rs"));
    drop(incoming);
    drop(client);
}

#[tokio::test(start_paused = true)]
async fn requests_before_registration_are_refused() {
    // A server that never answers the Register still cannot manage the device.
    let rule: common::Rule = Box::new(|req| {
        if req.uri_path() == ["rd"] {
            None
        } else {
            Some(standard_answer(req))
        }
    });
    let mut srv = Server::start(rule).await;
    let mut s = ServerConfig::new(1, srv.uri(), 300);
    s.server.retry_count = Some(1);
    let dm = FactoryConfig {
        servers: vec![s],
        ..FactoryConfig::default()
    }
    .build()
    .unwrap();
    let mut cfg = ClientConfig::new("dev-early");
    // The server acknowledges the Register's retransmission with an empty ACK and never answers: the Register
    // fails when the separate response is overdue, well before the server's own request gives up (120 s).
    cfg.coap.response_timeout_ms = 30_000;
    let (client, mut events) = start(dm, cfg);
    let reg = srv.next().await;
    // While the Register is in flight the request waits; when the Register fails it is refused with 5.03.
    let r = srv.ask(reg.peer, get("/3/0/0")).await;
    assert_eq!(r.code, Code::SERVICE_UNAVAILABLE);
    until(&mut events, |e| {
        (*e == ClientEvent::RegistrationFailed { ssid: 1 }).then_some(())
    })
    .await;
    let r = srv.ask(reg.peer, get("/3/0/0")).await;
    assert_eq!(r.code, Code::SERVICE_UNAVAILABLE);
    client.shutdown().await;
}
