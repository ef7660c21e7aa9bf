//! Client Registration interface and Send, server side, over real UDP sockets on 127.0.0.1: Register with every
//! parameter, every refusal code, re-Register replacing, Update (with an address change), De-register, lifetime
//! expiry on tokio's paused clock, Send, unknown paths and methods, garbage input, and libcoap's
//! `coap-client-notls` registering as a raw client.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use lwm2m_coap::{Code, Message};
use lwm2m_core::format::ContentFormat;
use lwm2m_core::model::Version;
use lwm2m_core::{Path, Value};
use lwm2m_server::registration::Binding;
use lwm2m_server::security::{Credential, MemorySecurityStore, SecurityInfo};
use lwm2m_server::{Event, ObservationEndReason, RequestOptions, ServerConfig};

fn p(s: &str) -> Path {
    s.parse().unwrap()
}

#[tokio::test]
async fn register_with_every_parameter() {
    let (server, mut events, addr) = start_server(ServerConfig::default()).await;
    let mut dev = Device::start(addr).await;
    let payload = format!(r#"</>;rt="oma.lwm2m";ct="60 110 112",{}"#, dev.links());
    let before = server.now_ms();
    let resp = dev
        .register_with(
            &[
                "ep=urn:imei:490154203237518",
                "lt=300",
                "lwm2m=1.1",
                "b=UT",
                "Q",
                "sms=+4912345",
                "apn=iot",
                "flag",
            ],
            &payload,
        )
        .await;
    assert_eq!(resp.code, Code::CREATED);
    let loc = resp.location_path();
    assert_eq!(loc.len(), 2, "one Location-Path option per segment: {loc:?}");
    assert_eq!(loc[0], "rd");

    let Event::Registered {
        registration: r,
        replaced,
    } = next_event(&mut events, |e| matches!(e, Event::Registered { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(replaced, None);
    assert_eq!(r.id.to_string(), loc[1]);
    assert_eq!(r.location(), format!("/rd/{}", loc[1]));
    assert_eq!(r.endpoint, "urn:imei:490154203237518");
    assert_eq!(r.peer, dev.addr());
    assert_eq!((r.socket, r.identity.as_ref()), (0, None));
    assert_eq!(r.lifetime_s, 300);
    assert_eq!(
        r.binding,
        Binding {
            udp: true,
            tcp: true,
            sms: false,
            non_ip: false
        }
    );
    assert!(r.queue_mode);
    assert_eq!(r.version, Version::V1_1);
    assert_eq!(r.sms.as_deref(), Some("+4912345"));
    assert_eq!(r.content_formats(), &[60, 110, 112]);
    assert_eq!(r.root_path(), "/");
    let ids: Vec<u16> = r.objects.objects.iter().map(|o| o.object_id).collect();
    assert_eq!(ids, vec![1, 2, 3, 3303, 3442]);
    assert!(r.has_instance(3303, 0) && r.has_instance(3442, 0));
    assert_eq!(r.additional.get("apn"), Some(&Some("iot".to_string())));
    assert_eq!(r.additional.get("flag"), Some(&None));
    assert!(r.registered_at_ms >= before && r.registered_at_ms == r.last_update_ms);
    assert_eq!(r.expires_ms, r.registered_at_ms + 300_000);

    // Every lookup finds it.
    assert_eq!(
        server.registration("urn:imei:490154203237518").unwrap().as_ref(),
        Some(&r)
    );
    assert_eq!(server.registration_by_id(r.id).unwrap().as_ref(), Some(&r));
    assert_eq!(server.store().get_by_peer(0, dev.addr()).unwrap().as_ref(), Some(&r));
    assert_eq!(server.registrations().unwrap().len(), 1);
}

#[tokio::test]
async fn registration_refusals_carry_their_codes() {
    let security = MemorySecurityStore::new();
    security
        .put(SecurityInfo {
            endpoint: "secure-ep".into(),
            credential: Credential::Psk {
                identity: "id".into(),
                key: b"k".to_vec(),
            },
        })
        .unwrap();
    let config = ServerConfig {
        security: Arc::new(security),
        ..ServerConfig::default()
    };
    let (server, mut events, addr) = start_server(config).await;
    let mut dev = Device::start(addr).await;
    let links = dev.links();
    let cases: &[(&[&str], Code)] = &[
        (&["lt=60"], Code::BAD_REQUEST),                     // 1.0 without ep
        (&["ep="], Code::BAD_REQUEST),                       // empty ep
        (&["ep=a", "lt=0"], Code::BAD_REQUEST),              // zero lifetime
        (&["ep=a", "lt=x"], Code::BAD_REQUEST),              // malformed lifetime
        (&["ep=a", "ep=b"], Code::BAD_REQUEST),              // repeated parameter
        (&["ep=a", "lwm2m=1.1", "b=UQ"], Code::BAD_REQUEST), // Q is no 1.1 binding
        (&["ep=a", "lwm2m=1.1", "Q=1"], Code::BAD_REQUEST),  // Q with a value
        (&["ep=a", "sms="], Code::BAD_REQUEST),              // empty MSISDN
        (&["ep=a", "lwm2m=1.2"], Code::PRECONDITION_FAILED), // newer minor version
        (&["ep=a", "lwm2m=2.0"], Code::PRECONDITION_FAILED), // other major version
        (&["lwm2m=1.1"], Code::BAD_REQUEST),                 // no ep and no identity to name it
        (&["ep=secure-ep"], Code::FORBIDDEN),                // credentials stored: must use DTLS
    ];
    for (q, code) in cases {
        let resp = dev.register_with(q, &links).await;
        assert_eq!(resp.code, *code, "{q:?}: {}", String::from_utf8_lossy(&resp.payload));
        assert!(!resp.payload.is_empty(), "{q:?}: a diagnostic payload says why");
    }
    // Payload problems.
    let resp = dev.register_with(&["ep=a"], "</1/0").await;
    assert_eq!(resp.code, Code::BAD_REQUEST);
    let m = Message::request(Code::POST, "/rd?ep=a")
        .with_content_format(0)
        .with_payload("</1/0>");
    assert_eq!(dev.raw(m).await.unwrap().code, Code::UNSUPPORTED_CONTENT_FORMAT);
    assert!(server.registrations().unwrap().is_empty());

    // Nothing was registered: the first event is the next good registration.
    assert_eq!(dev.register(&["ep=good"]).await.code, Code::CREATED);
    let ev = next_event(&mut events, |_| true).await;
    assert!(
        matches!(ev, Event::Registered { ref registration, .. } if registration.endpoint == "good"),
        "{ev:?}"
    );
}

#[tokio::test]
async fn re_register_replaces_and_voids_observations() {
    let (server, mut events, addr) = start_server(ServerConfig::default()).await;
    let mut first = Device::start(addr).await;
    assert_eq!(first.register(&["ep=dev", "lwm2m=1.1"]).await.code, Code::CREATED);
    let old = server.registration("dev").unwrap().unwrap();
    let obs = server
        .observe("dev", p("/3303/0/5700"), RequestOptions::default())
        .await
        .unwrap();
    let obs_id = obs.observation.expect("observation established");

    // The device reboots: a new socket, a new Register.
    let mut second = Device::start(addr).await;
    assert_eq!(
        second.register(&["ep=dev", "lwm2m=1.1", "lt=120"]).await.code,
        Code::CREATED
    );
    let ev = next_event(
        &mut events,
        |e| matches!(e, Event::Registered { registration, .. } if registration.peer == second.addr()),
    )
    .await;
    let Event::Registered { registration, replaced } = ev else {
        unreachable!()
    };
    assert_eq!(replaced.as_ref().map(|r| r.id), Some(old.id));
    assert_ne!(registration.id, old.id);
    assert_eq!(registration.lifetime_s, 120);
    let ended = next_event(&mut events, |e| matches!(e, Event::ObservationEnded { .. })).await;
    assert!(
        matches!(ended, Event::ObservationEnded { observation, reason: ObservationEndReason::RegistrationEnded, .. } if observation == obs_id),
        "{ended:?}"
    );
    assert!(server.observations("dev").is_empty());
    assert_eq!(server.registrations().unwrap().len(), 1);
    assert_eq!(server.store().get_by_peer(0, first.addr()).unwrap(), None);
    // The old location is gone.
    assert_eq!(first.update(&[], None).await.code, Code::NOT_FOUND);
    // The old observation's notifications are refused with RST.
    let d = first.notify_all().await;
    assert!(matches!(d.as_slice(), [Err(lwm2m_coap::RequestError::Reset)]), "{d:?}");
}

#[tokio::test]
async fn update_changes_what_was_sent_and_follows_the_address() {
    let (server, mut events, addr) = start_server(ServerConfig::default()).await;
    let mut dev = Device::start(addr).await;
    assert_eq!(
        dev.register(&["ep=dev", "lt=60", "lwm2m=1.1"]).await.code,
        Code::CREATED
    );
    let reg = server.registration("dev").unwrap().unwrap();

    // Empty Update: only refreshes.
    assert_eq!(dev.update(&[], None).await.code, Code::CHANGED);
    let Event::Updated { registration, previous } =
        next_event(&mut events, |e| matches!(e, Event::Updated { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(previous.id, reg.id);
    assert_eq!(
        (registration.lifetime_s, registration.objects.clone()),
        (60, reg.objects.clone())
    );
    assert!(registration.last_update_ms >= reg.last_update_ms);

    // Every Update parameter and a new object list.
    let resp = dev
        .update(
            &["lt=600", "b=US", "sms=+33", "extra=1"],
            Some("</1/0>,</3/0>,</3303/0>,</3303/1>"),
        )
        .await;
    assert_eq!(resp.code, Code::CHANGED);
    let r = server.registration("dev").unwrap().unwrap();
    assert_eq!(r.lifetime_s, 600);
    assert_eq!(r.binding.to_string(), "US");
    assert_eq!(r.sms.as_deref(), Some("+33"));
    assert_eq!(r.additional.get("extra"), Some(&Some("1".into())));
    assert!(r.has_instance(3303, 1) && !r.has_object(3442));
    assert_eq!(r.expires_ms, r.last_update_ms + 600_000);

    // An Update from a new address (NAT rebinding): later requests go there.
    let mut moved = Device::start(addr).await;
    moved.location = dev.location.clone();
    assert_eq!(moved.update(&[], None).await.code, Code::CHANGED);
    let r = server.registration("dev").unwrap().unwrap();
    assert_eq!(r.peer, moved.addr());
    assert_eq!(
        server.store().get_by_peer(0, moved.addr()).unwrap().map(|r| r.id),
        Some(reg.id)
    );
    let read = server
        .read("dev", p("/3/0/0"), RequestOptions::default())
        .await
        .unwrap();
    assert_eq!(read.code, Code::CONTENT);
    assert_eq!(moved.next_received().await.op(), (Code::GET, "/3/0/0".into()));

    // Refusals.
    assert_eq!(dev.update(&["lt=abc"], None).await.code, Code::BAD_REQUEST);
    assert_eq!(dev.update(&["b=X"], None).await.code, Code::BAD_REQUEST);
    let m = Message::request(Code::POST, &dev.location.clone().unwrap())
        .with_content_format(0)
        .with_payload("x");
    assert_eq!(dev.raw(m).await.unwrap().code, Code::UNSUPPORTED_CONTENT_FORMAT);
    for path in ["/rd/0000000000000001", "/rd/nothex", "/rd/123456789abcdef01"] {
        let resp = dev.raw(Message::request(Code::POST, path)).await.unwrap();
        assert_eq!(resp.code, Code::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn deregister_and_unknown_requests() {
    let (server, mut events, addr) = start_server(ServerConfig::default()).await;
    let mut dev = Device::start(addr).await;
    assert_eq!(dev.register(&["ep=dev"]).await.code, Code::CREATED);
    let obs = server
        .observe("dev", p("/3303/0/5700"), RequestOptions::default())
        .await
        .unwrap();
    assert!(obs.observation.is_some());
    assert_eq!(dev.deregister().await.code, Code::DELETED);
    let ev = next_event(&mut events, |e| matches!(e, Event::Deregistered { .. })).await;
    assert_eq!(ev.endpoint(), "dev");
    assert!(server.registration("dev").unwrap().is_none());
    assert!(server.observations("dev").is_empty());
    assert_eq!(dev.deregister().await.code, Code::NOT_FOUND);
    assert_eq!(dev.update(&[], None).await.code, Code::NOT_FOUND);

    // Wrong methods on known paths, unknown paths.
    for (code, path, want) in [
        (Code::GET, "/rd", Code::METHOD_NOT_ALLOWED),
        (Code::PUT, "/rd/0011", Code::METHOD_NOT_ALLOWED),
        (Code::GET, "/dp", Code::METHOD_NOT_ALLOWED),
        (Code::POST, "/bs", Code::NOT_FOUND),
        (Code::GET, "/", Code::NOT_FOUND),
        (Code::POST, "/rd/1/2", Code::NOT_FOUND),
        (Code::FETCH, "/x/y/z", Code::NOT_FOUND),
    ] {
        let resp = dev.raw(Message::request(code, path)).await.unwrap();
        assert_eq!(resp.code, want, "{code} {path}");
    }
    // Requests to an unknown endpoint fail typed.
    let e = server
        .read("dev", p("/3/0/0"), RequestOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e, lwm2m_server::ServerError::UnknownEndpoint("dev".into()));
}

#[tokio::test(start_paused = true)]
async fn lifetime_expiry_on_the_paused_clock() {
    let (server, mut events, addr) = start_server(ServerConfig::default()).await;
    let mut dev = Device::start(addr).await;
    assert_eq!(dev.register(&["ep=short", "lt=60"]).await.code, Code::CREATED);
    let mut other = Device::start(addr).await;
    assert_eq!(other.register(&["ep=updated", "lt=60"]).await.code, Code::CREATED);
    let obs = server
        .observe("short", p("/3303/0/5700"), RequestOptions::default())
        .await
        .unwrap();
    let t0 = server.now_ms();

    tokio::time::advance(Duration::from_secs(50)).await;
    assert!(server.registration("short").unwrap().is_some());
    assert_eq!(other.update(&[], None).await.code, Code::CHANGED);

    let ev = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match events.recv().await.unwrap() {
                e @ Event::Expired { .. } => return e,
                _ => continue,
            }
        }
    })
    .await
    .expect("expired within the lifetime");
    let Event::Expired { registration } = ev else {
        unreachable!()
    };
    assert_eq!(registration.endpoint, "short");
    let elapsed = server.now_ms() - t0;
    assert!((60_000..61_000).contains(&elapsed), "expired after {elapsed} ms");
    assert!(server.registration("short").unwrap().is_none());
    assert_eq!(
        dev.update(&[], None).await.code,
        Code::NOT_FOUND,
        "a client must Register again"
    );
    let ended = next_event(&mut events, |e| matches!(e, Event::ObservationEnded { .. })).await;
    assert!(matches!(ended, Event::ObservationEnded { observation, .. } if Some(observation) == obs.observation));

    // The updated one lives until 60 s after its Update.
    assert!(server.registration("updated").unwrap().is_some());
    let ev = next_event_within(&mut events, Duration::from_secs(60), |e| {
        matches!(e, Event::Expired { .. })
    })
    .await;
    let Event::Expired { registration } = ev else {
        unreachable!()
    };
    assert_eq!(registration.endpoint, "updated");
    let elapsed = server.now_ms() - t0;
    assert!((110_000..111_000).contains(&elapsed), "expired after {elapsed} ms");
    assert!(server.registrations().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_shorter_lifetime_in_an_update_expires_earlier() {
    let (server, mut events, addr) = start_server(ServerConfig::default()).await;
    let mut dev = Device::start(addr).await;
    assert_eq!(dev.register(&["ep=dev", "lt=3600"]).await.code, Code::CREATED);
    let t0 = server.now_ms();
    assert_eq!(dev.update(&["lt=10"], None).await.code, Code::CHANGED);
    next_event(&mut events, |e| matches!(e, Event::Expired { .. })).await;
    let elapsed = server.now_ms() - t0;
    assert!((10_000..11_000).contains(&elapsed), "expired after {elapsed} ms");
}

#[tokio::test]
async fn send_delivers_records_and_refuses_what_it_must() {
    let (server, mut events, addr) = start_server(ServerConfig::default()).await;
    let mut dev = Device::start(addr).await;
    // Not registered yet: 4.00.
    assert_eq!(
        dev.send(&[p("/3303/0/5700")], ContentFormat::SenmlCbor).await.code,
        Code::BAD_REQUEST
    );
    assert_eq!(dev.register(&["ep=dev", "lwm2m=1.1"]).await.code, Code::CREATED);

    for format in [ContentFormat::SenmlCbor, ContentFormat::SenmlJson] {
        let resp = dev.send(&[p("/3303/0/5700"), p("/3/0/0")], format).await;
        assert_eq!(resp.code, Code::CHANGED, "{format}");
        let Event::Send { endpoint, records, .. } = next_event(&mut events, |e| matches!(e, Event::Send { .. })).await
        else {
            unreachable!()
        };
        assert_eq!(endpoint, "dev");
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].path, p("/3303/0/5700"));
        assert_eq!(records[0].value, Value::Float(20.0));
        assert_eq!(records[1].value, Value::String("lwm2m-rs".into()));
    }
    let raw = |cf: u16, body: &[u8]| {
        Message::request(Code::POST, "/dp")
            .with_content_format(cf)
            .with_payload(body)
    };
    let cases: Vec<(Message, Code)> = vec![
        (raw(110, br#"[{"n":"/9999/0/0","v":1}]"#), Code::NOT_FOUND), // object not registered
        (raw(110, br#"[{"n":"/3303/7/5700","v":1}]"#), Code::NOT_FOUND), // instance not registered
        (raw(110, br#"[{"n":"/3303/0/5700","v":"#), Code::BAD_REQUEST), // malformed
        (raw(110, b"[]"), Code::BAD_REQUEST),                         // nothing
        (raw(11542, &[0xc1, 0x00, 0x01]), Code::BAD_REQUEST),         // not SenML
        (Message::request(Code::POST, "/dp").with_payload("x"), Code::BAD_REQUEST), // no format
    ];
    for (m, want) in cases {
        let resp = dev.raw(m.clone()).await.unwrap();
        assert_eq!(resp.code, want, "{}", String::from_utf8_lossy(&m.payload));
    }
    let _ = server;
}

#[tokio::test]
async fn garbage_never_stops_the_service() {
    let (server, mut events, addr) = start_server(ServerConfig::default()).await;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for junk in [
        &b""[..],
        b"\x40",
        b"\xff\xff\xff\xff",
        b"\x40\x02\x00\x01\xb2rd\xff",
        b"\x44\x02\x12\x34\x01\x02\x03\x04\xb2rd\x4fep=\xff\xfe\xfd",
    ] {
        sock.send_to(junk, addr).await.unwrap();
    }
    let mut dev = Device::start(addr).await;
    // A request with non-UTF-8 query bytes: refused, not read lossily (the CoAP layer already answers 4.02 for
    // a malformed string option; the server would answer 4.00).
    let mut m = Message::request(Code::POST, "/rd")
        .with_content_format(40)
        .with_payload("</3/0>");
    m.options
        .push(lwm2m_coap::message::opt::URI_QUERY, vec![b'e', b'p', b'=', 0xff, 0xfe]);
    let code = dev.raw(m).await.unwrap().code;
    assert!(code == Code::BAD_OPTION || code == Code::BAD_REQUEST, "{code:?}");
    // A binary payload.
    let m = Message::request(Code::POST, "/rd?ep=x")
        .with_content_format(40)
        .with_payload(vec![0xff, 0x00, 0x3c]);
    assert_eq!(dev.raw(m).await.unwrap().code, Code::BAD_REQUEST);
    assert_eq!(dev.register(&["ep=after-junk"]).await.code, Code::CREATED);
    next_event(&mut events, |e| matches!(e, Event::Registered { .. })).await;
    assert_eq!(server.registrations().unwrap().len(), 1);
}

/// libcoap's `coap-client-notls` registers as a raw client: POST /rd?ep=... answered 2.01 with a two-segment
/// Location-Path.
#[tokio::test]
async fn libcoap_client_registers() {
    let Some(bin) = find_binary("coap-client-notls") else {
        eprintln!("SKIPPED: coap-client-notls not installed (apt-get install libcoap3-bin)");
        return;
    };
    let (server, mut events, addr) = start_server(ServerConfig::default()).await;
    let uri = format!(
        "coap://127.0.0.1:{}/rd?ep=libcoap-dev&lt=120&lwm2m=1.1&b=U",
        addr.port()
    );
    let out = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new(&bin)
            .args([
                "-m",
                "post",
                "-t",
                "40",
                "-e",
                "</1/0>,</3/0>",
                "-v",
                "7",
                "-B",
                "5",
                &uri,
            ])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("coap-client finished")
    .expect("coap-client ran");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let Event::Registered { registration, .. } =
        next_event(&mut events, |e| matches!(e, Event::Registered { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(registration.endpoint, "libcoap-dev");
    assert_eq!(registration.lifetime_s, 120);
    assert_eq!(registration.objects.objects.len(), 2);
    // libcoap logs the response PDU at debug level:
    // `v:1 t:ACK c:2.01 i:cd90 {01} [ Location-Path:rd, Location-Path:d7871ff6adfc50f9 ]`
    let id = registration.id.to_string();
    let want = "c:2.01 i:";
    let line = text
        .lines()
        .find(|l| l.contains(want))
        .unwrap_or_else(|| panic!("no 2.01 in {text}"));
    assert!(
        line.contains(&format!("[ Location-Path:rd, Location-Path:{id} ]")),
        "two Location-Path options rd and {id}: {line}"
    );
    assert!(server.registration("libcoap-dev").unwrap().is_some());
}

fn find_binary(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

#[tokio::test]
async fn re_registering_in_a_loop_does_not_grow_the_timer_heap() {
    let (server, _events, addr) = start_server(ServerConfig::default()).await;
    let mut dev = Device::start(addr).await;
    for _ in 0..1500 {
        assert_eq!(dev.register(&["ep=looping", "lt=4294967295"]).await.code, Code::CREATED);
    }
    let stats = server.stats();
    assert_eq!(stats.registrations, 1);
    assert!(stats.timer_entries <= 2 + 1024 + 1, "{stats:?}");
    assert_eq!((stats.observations, stats.queued_requests), (0, 0));
}
