//! Queue mode on tokio's paused clock (held requests, flush in order once awake, per-request timeouts, wake-ups
//! by Update, Send and notifications, a timeout putting the client to sleep) and the on-registration actions of
//! BsR-8 (read/observe right after Register, and a Send right after Register).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use lwm2m_coap::Code;
use lwm2m_core::format::ContentFormat;
use lwm2m_core::{Node, Path, ResourceNode, Value};
use lwm2m_server::{Event, OnRegistration, Request, RequestOptions, ServerConfig, ServerError};

fn p(s: &str) -> Path {
    s.parse().unwrap()
}

const O: RequestOptions = RequestOptions {
    format: None,
    timeout: None,
};

const AWAKE: Duration = Duration::from_secs(93);

#[tokio::test(start_paused = true)]
async fn requests_wait_while_asleep_and_flush_in_order() {
    let (server, mut events, addr) = start_server(ServerConfig::default()).await;
    let mut dev = Device::start(addr).await;
    assert_eq!(
        dev.register(&["ep=q", "lwm2m=1.1", "Q", "lt=3600"]).await.code,
        Code::CREATED
    );
    let t0 = server.now_ms();
    let presence = server.presence("q").expect("queue-mode state");
    assert!(presence.awake);
    assert!(presence.awake_until_ms.unwrap() >= t0 + 93_000 - 100);

    // Awake: requests go out at once.
    assert_eq!(server.read("q", p("/3442/0/110"), O).await.unwrap().code, Code::CONTENT);
    assert_eq!(dev.next_received().await.path, "/3442/0/110");

    // 93 s after its last message it is asleep.
    next_event_within(&mut events, AWAKE * 2, |e| matches!(e, Event::Sleeping { .. })).await;
    let asleep_after = server.now_ms() - t0;
    assert!(
        (93_000..94_000).contains(&asleep_after),
        "asleep after {asleep_after} ms"
    );
    assert!(!server.presence("q").unwrap().awake);

    let write = server.write_value("q", p("/3442/0/120"), Value::Integer(7), O);
    let read1 = server.read("q", p("/3442/0/110"), O);
    let read2 = server.read("q", p("/3442/0/120"), O);
    let wake = async {
        // Everything is held, nothing reached the device.
        let held = server.queued_requests("q");
        let ops: Vec<&str> = held.iter().map(|h| h.operation).collect();
        assert_eq!(ops, vec!["Write-Replace", "Read", "Read"]);
        assert_eq!(held[0].paths, vec![p("/3442/0/120")]);
        assert!(held.iter().all(|h| h.deadline_ms > h.queued_at_ms));
        assert_eq!(server.all_queued_requests().len(), 3);
        assert_eq!(server.presence("q").unwrap().queued, 3);
        assert!(dev.received.try_recv().is_err());
        // The client wakes up with an Update.
        assert_eq!(dev.update(&[], None).await.code, Code::CHANGED);
    };
    let (w, r1, r2, ()) = tokio::join!(write, read1, read2, wake);
    assert_eq!(w.unwrap().code, Code::CHANGED);
    assert_eq!(
        r1.unwrap().node(),
        Some(&Node::Resource(ResourceNode::single(
            110,
            Value::String("hello".into())
        )))
    );
    assert_eq!(
        r2.unwrap().node(),
        Some(&Node::Resource(ResourceNode::single(120, Value::Integer(7))))
    );
    let order: Vec<(Code, String)> = vec![
        dev.next_received().await.op(),
        dev.next_received().await.op(),
        dev.next_received().await.op(),
    ];
    assert_eq!(
        order,
        vec![
            (Code::PUT, "/3442/0/120".into()),
            (Code::GET, "/3442/0/110".into()),
            (Code::GET, "/3442/0/120".into())
        ]
    );
    let ev = next_event(&mut events, |e| matches!(e, Event::Awake { .. })).await;
    assert_eq!(ev.endpoint(), "q");
    assert!(server.queued_requests("q").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_held_request_fails_at_its_own_timeout() {
    let (server, mut events, addr) = start_server(ServerConfig::default()).await;
    let mut dev = Device::start(addr).await;
    assert_eq!(
        dev.register(&["ep=q", "lwm2m=1.1", "Q", "lt=3600"]).await.code,
        Code::CREATED
    );
    next_event_within(&mut events, AWAKE * 2, |e| matches!(e, Event::Sleeping { .. })).await;
    let short = RequestOptions::default().with_timeout(Duration::from_secs(5));
    let long = RequestOptions::default().with_timeout(Duration::from_secs(600));
    let t = tokio::time::Instant::now();
    let (a, b) = tokio::join!(
        server.read("q", p("/3442/0/110"), short),
        server.read("q", p("/3442/0/120"), short)
    );
    assert_eq!(
        server.queued_requests("q").len(),
        0,
        "both timed out and left the queue"
    );
    assert_eq!(a.unwrap_err(), ServerError::ClientSleeping { endpoint: "q".into() });
    assert_eq!(b.unwrap_err(), ServerError::ClientSleeping { endpoint: "q".into() });
    assert_eq!(t.elapsed(), Duration::from_secs(5));
    assert!(dev.received.try_recv().is_err(), "nothing was sent");

    // A request held when the registration ends fails with RegistrationEnded at its deadline.
    let (r, ()) = tokio::join!(server.read("q", p("/3442/0/110"), long), async {
        assert_eq!(server.queued_requests("q").len(), 1);
        assert_eq!(dev.deregister().await.code, Code::DELETED);
    });
    assert_eq!(r.unwrap_err(), ServerError::RegistrationEnded { endpoint: "q".into() });
}

#[tokio::test(start_paused = true)]
async fn a_re_registration_releases_held_requests() {
    let (server, mut events, addr) = start_server(ServerConfig::default()).await;
    let mut dev = Device::start(addr).await;
    assert_eq!(dev.register(&["ep=q", "lwm2m=1.1", "Q"]).await.code, Code::CREATED);
    next_event_within(&mut events, AWAKE * 2, |e| matches!(e, Event::Sleeping { .. })).await;
    let (r, ()) = tokio::join!(server.read("q", p("/3442/0/120"), O), async {
        assert_eq!(server.queued_requests("q").len(), 1);
        // The device rebooted and registers again, without queue mode this time.
        let mut dev2 = Device::start(addr).await;
        assert_eq!(dev2.register(&["ep=q", "lwm2m=1.1"]).await.code, Code::CREATED);
        assert_eq!(dev2.next_received().await.path, "/3442/0/120");
    });
    assert_eq!(r.unwrap().code, Code::CONTENT);
    assert_eq!(server.presence("q"), None, "no queue-mode state left");
}

#[tokio::test(start_paused = true)]
async fn send_and_notifications_wake_the_client() {
    let (server, mut events, addr) = start_server(ServerConfig::default()).await;
    let mut dev = Device::start(addr).await;
    assert_eq!(
        dev.register(&["ep=q", "lwm2m=1.1", "Q", "lt=3600"]).await.code,
        Code::CREATED
    );
    let obs = server
        .observe("q", p("/3303/0/5700"), O)
        .await
        .unwrap()
        .observation
        .unwrap();
    dev.next_received().await;
    next_event_within(&mut events, AWAKE * 2, |e| matches!(e, Event::Sleeping { .. })).await;

    // Send wakes it.
    let (r, ()) = tokio::join!(server.read("q", p("/3442/0/110"), O), async {
        assert_eq!(server.queued_requests("q").len(), 1);
        assert_eq!(
            dev.send(&[p("/3303/0/5700")], ContentFormat::SenmlCbor).await.code,
            Code::CHANGED
        );
    });
    assert_eq!(r.unwrap().code, Code::CONTENT);
    next_event(&mut events, |e| matches!(e, Event::Awake { .. })).await;
    dev.next_received().await;

    // A notification wakes it.
    next_event_within(&mut events, AWAKE * 2, |e| matches!(e, Event::Sleeping { .. })).await;
    let (r, ()) = tokio::join!(server.read("q", p("/3442/0/120"), O), async {
        assert_eq!(server.queued_requests("q").len(), 1);
        dev.set("/3303/0/5700", Value::Float(30.0));
        assert!(dev.notify_all().await.iter().all(Result::is_ok));
    });
    assert_eq!(r.unwrap().code, Code::CONTENT);
    let ev = next_event(&mut events, |e| {
        matches!(e, Event::Notification { .. } | Event::Awake { .. })
    })
    .await;
    assert!(matches!(ev, Event::Awake { .. } | Event::Notification { .. }));
    let _ = obs;
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_request_puts_the_client_to_sleep() {
    let (server, mut events, addr) = start_server(ServerConfig::default()).await;
    let mut dev = Device::start(addr).await;
    assert_eq!(
        dev.register(&["ep=q", "lwm2m=1.1", "Q", "lt=3600"]).await.code,
        Code::CREATED
    );
    dev.handle.shutdown().await;
    let e = server.read("q", p("/3442/0/110"), O).await.unwrap_err();
    assert_eq!(e, ServerError::Timeout { endpoint: "q".into() });
    next_event(&mut events, |e| matches!(e, Event::Sleeping { .. })).await;
    assert!(!server.presence("q").unwrap().awake);
    // The next request is held rather than sent into the void.
    let e = server
        .read(
            "q",
            p("/3442/0/110"),
            RequestOptions::default().with_timeout(Duration::from_secs(1)),
        )
        .await
        .unwrap_err();
    assert_eq!(e, ServerError::ClientSleeping { endpoint: "q".into() });
}

#[tokio::test]
async fn on_registration_actions_run_right_after_register() {
    let global = vec![
        Request::Read { path: p("/3/0/0") },
        Request::Observe {
            path: p("/3303/0/5700"),
        },
        Request::ReadComposite {
            paths: vec![p("/3442/0/110"), p("/3303/0/5700")],
        },
    ];
    let mut per_endpoint = HashMap::new();
    per_endpoint.insert("special".to_string(), vec![Request::Read { path: p("/3442/0/120") }]);
    let config = ServerConfig {
        on_registration: OnRegistration { global, per_endpoint },
        ..ServerConfig::default()
    };
    let (server, mut events, addr) = start_server(config).await;
    let mut dev = Device::start(addr).await;
    assert_eq!(dev.register(&["ep=dev", "lwm2m=1.1"]).await.code, Code::CREATED);
    next_event(&mut events, |e| matches!(e, Event::Registered { .. })).await;
    let mut results = Vec::new();
    for _ in 0..3 {
        match next_event(&mut events, |e| matches!(e, Event::OnRegistrationResult { .. })).await {
            Event::OnRegistrationResult {
                endpoint,
                request,
                result,
                ..
            } => {
                assert_eq!(endpoint, "dev");
                results.push((request, result.unwrap()));
            }
            _ => unreachable!(),
        }
    }
    assert_eq!(results[0].0, Request::Read { path: p("/3/0/0") });
    assert_eq!(
        results[0].1.node(),
        Some(&Node::Resource(ResourceNode::single(
            0,
            Value::String("lwm2m-rs".into())
        )))
    );
    let obs = results[1]
        .1
        .observation
        .expect("the observe action holds an observation");
    assert_eq!(results[2].1.records().map(|r| r.len()), Some(2));
    // Notifications of the on-registration observation arrive as events.
    dev.set("/3303/0/5700", Value::Float(25.0));
    dev.notify_all().await;
    let ev = next_event(&mut events, |e| matches!(e, Event::Notification { .. })).await;
    assert!(matches!(ev, Event::Notification { observation, .. } if observation == obs));

    // An endpoint with its own list gets only that.
    let mut special = Device::start(addr).await;
    assert_eq!(special.register(&["ep=special", "lwm2m=1.1"]).await.code, Code::CREATED);
    let ev = next_event(&mut events, |e| matches!(e, Event::OnRegistrationResult { .. })).await;
    assert!(
        matches!(ev, Event::OnRegistrationResult { ref endpoint, ref request, .. } if endpoint == "special" && *request == Request::Read { path: p("/3442/0/120") }),
        "{ev:?}"
    );
    assert_eq!(special.next_received().await.path, "/3442/0/120");

    // Changed at run time: no global actions any more.
    server.set_on_registration(None, vec![]);
    assert!(server.on_registration().global.is_empty());
    let mut quiet = Device::start(addr).await;
    assert_eq!(quiet.register(&["ep=quiet", "lwm2m=1.1"]).await.code, Code::CREATED);
    // A Send right after the Register (BsR-8 the client's way) is delivered too.
    assert_eq!(
        quiet
            .send(&[p("/3303/0/5700"), p("/3/0/0")], ContentFormat::SenmlJson)
            .await
            .code,
        Code::CHANGED
    );
    let ev = next_event(&mut events, |e| {
        matches!(e, Event::Send { .. } | Event::OnRegistrationResult { .. })
    })
    .await;
    let Event::Send { endpoint, records, .. } = ev else {
        panic!("no actions for quiet: {ev:?}")
    };
    assert_eq!((endpoint.as_str(), records.len()), ("quiet", 2));
    assert!(quiet.received.try_recv().is_err());
}
