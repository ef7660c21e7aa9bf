//! Information Reporting: Observe on every path level, notifications as events, passive (RST) and active
//! (Observe: 1) cancellation, Observe-Composite, a client ending an observation, format override.

mod common;

use common::*;
use lwm2m_coap::{Code, Message, MessageType, RequestError};
use lwm2m_core::format::ContentFormat;
use lwm2m_core::{Node, Path, ResourceNode, Value};
use lwm2m_server::{
    CancelMode, Content, Event, ObservationEndReason, ObservationId, Request, RequestOptions, ServerConfig,
    ServerError, ServerHandle,
};
use tokio::sync::broadcast;

fn p(s: &str) -> Path {
    s.parse().unwrap()
}

const O: RequestOptions = RequestOptions {
    format: None,
    timeout: None,
};

async fn setup() -> (ServerHandle, broadcast::Receiver<Event>, Device) {
    let (server, events, addr) = start_server(ServerConfig::default()).await;
    let mut dev = Device::start(addr).await;
    assert_eq!(dev.register(&["ep=dev", "lwm2m=1.1"]).await.code, Code::CREATED);
    (server, events, dev)
}

async fn notification(events: &mut broadcast::Receiver<Event>, id: ObservationId) -> lwm2m_server::Response {
    match next_event(
        events,
        |e| matches!(e, Event::Notification { observation, .. } if *observation == id),
    )
    .await
    {
        Event::Notification { result, .. } => result.expect("decodable notification"),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn observe_and_notifications_on_every_level() {
    let (server, mut events, mut dev) = setup().await;
    let r = server.observe("dev", p("/3303/0/5700"), O).await.unwrap();
    assert_eq!(r.code, Code::CONTENT);
    assert_eq!(
        r.node(),
        Some(&Node::Resource(ResourceNode::single(5700, Value::Float(20.0))))
    );
    let id = r.observation.expect("observation");
    let got = dev.next_received().await;
    assert_eq!((got.code, got.observe), (Code::GET, Some(0)));

    let info = server.observations("dev");
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].id, id);
    assert_eq!(
        info[0].request,
        Request::Observe {
            path: p("/3303/0/5700")
        }
    );
    assert_eq!(info[0].format, Some(ContentFormat::Text));
    assert!(!info[0].token.is_empty());
    assert_eq!(info[0].token, dev.observers.lock().unwrap()[0].token.as_slice());

    dev.set("/3303/0/5700", Value::Float(21.5));
    let d = dev.notify_all().await;
    assert!(d.iter().all(Result::is_ok), "{d:?}");
    let n = notification(&mut events, id).await;
    assert_eq!(n.observation, Some(id));
    assert_eq!(
        n.node(),
        Some(&Node::Resource(ResourceNode::single(5700, Value::Float(21.5))))
    );

    // Instance, object, multiple resource, resource instance (DSE-001).
    let mut ids = Vec::new();
    for path in ["/3442/0", "/3442", "/3442/0/1120", "/3442/0/1120/1"] {
        let r = server.observe("dev", p(path), O).await.unwrap();
        assert_eq!(r.code, Code::CONTENT, "{path}");
        ids.push((path, r.observation.expect(path)));
    }
    dev.set("/3442/0/1120/1", Value::Integer(77));
    dev.notify_all().await;
    for (path, id) in ids {
        let n = notification(&mut events, id).await;
        match (path, n.node()) {
            ("/3442/0", Some(Node::Instance(i))) => assert!(i.resources.contains_key(&1120)),
            ("/3442", Some(Node::Object(o))) => assert!(o.instances.contains_key(&0)),
            ("/3442/0/1120", Some(Node::Resource(r))) => assert_eq!(r.id, 1120),
            ("/3442/0/1120/1", Some(n)) => assert_eq!(
                n,
                &Node::ResourceInstance {
                    id: 1,
                    value: Value::Integer(77)
                }
            ),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(server.observations("dev").len(), 5);
    assert_eq!(server.all_observations().len(), 5);
}

#[tokio::test]
async fn passive_cancel_rejects_the_next_notification() {
    let (server, mut events, mut dev) = setup().await;
    let id = server
        .observe("dev", p("/3303/0/5700"), O)
        .await
        .unwrap()
        .observation
        .unwrap();
    let token = server.observations("dev")[0].token.clone();
    assert_eq!(
        server.cancel_observation(id, CancelMode::Passive, O).await.unwrap(),
        None
    );
    let ev = next_event(&mut events, |e| matches!(e, Event::ObservationEnded { .. })).await;
    assert!(matches!(
        ev,
        Event::ObservationEnded {
            reason: ObservationEndReason::Cancelled(CancelMode::Passive),
            ..
        }
    ));
    assert!(server.observations("dev").is_empty());
    let d = dev.notify_all().await;
    assert_eq!(d, vec![Err(RequestError::Reset)], "the server answers RST");
    let cancelled = tokio::time::timeout(WAIT, dev.cancelled.recv()).await.unwrap().unwrap();
    assert_eq!(cancelled.as_slice(), token.as_slice());
    assert!(dev.observers.lock().unwrap().is_empty());
    assert_eq!(
        server.cancel_observation(id, CancelMode::Passive, O).await,
        Err(ServerError::UnknownObservation(id))
    );
}

#[tokio::test]
async fn active_cancel_sends_observe_1() {
    let (server, mut events, mut dev) = setup().await;
    let id = server
        .observe("dev", p("/3442/0/120"), O)
        .await
        .unwrap()
        .observation
        .unwrap();
    dev.next_received().await;
    let r = server
        .cancel_observation(id, CancelMode::Active, O)
        .await
        .unwrap()
        .expect("an answer");
    assert_eq!(r.code, Code::CONTENT);
    assert_eq!(
        r.node(),
        Some(&Node::Resource(ResourceNode::single(120, Value::Integer(42))))
    );
    let got = dev.next_received().await;
    assert_eq!(
        (got.code, got.path.as_str(), got.observe),
        (Code::GET, "/3442/0/120", Some(1))
    );
    assert!(
        dev.observers.lock().unwrap().is_empty(),
        "the device dropped the observer"
    );
    let ev = next_event(&mut events, |e| matches!(e, Event::ObservationEnded { .. })).await;
    assert!(matches!(
        ev,
        Event::ObservationEnded {
            reason: ObservationEndReason::Cancelled(CancelMode::Active),
            ..
        }
    ));
    assert!(server.observations("dev").is_empty());
}

#[tokio::test]
async fn observe_composite_and_its_cancels() {
    let (server, mut events, mut dev) = setup().await;
    let paths = vec![p("/3303/0/5700"), p("/3442/0/120")];
    let r = server.observe_composite("dev", paths.clone(), O).await.unwrap();
    assert_eq!((r.code, r.format), (Code::CONTENT, Some(ContentFormat::SenmlCbor)));
    assert_eq!(r.records().map(|r| r.len()), Some(2));
    let id = r.observation.expect("composite observation");
    let got = dev.next_received().await;
    assert_eq!(
        (got.code, got.path.as_str(), got.observe, got.content_format),
        (Code::FETCH, "/", Some(0), Some(112))
    );

    dev.set("/3303/0/5700", Value::Float(-4.0));
    dev.notify_all().await;
    let Event::Notification {
        paths: got_paths,
        result,
        ..
    } = next_event(&mut events, |e| matches!(e, Event::Notification { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(got_paths, paths);
    let n = result.unwrap();
    let Some(Content::Records(recs)) = &n.content else {
        panic!("{n:?}")
    };
    assert_eq!(recs[0].value, Value::Float(-4.0));
    assert_eq!(recs[1].value, Value::Integer(42));

    // Active cancel: FETCH with Observe 1 and the same names.
    let r = server
        .cancel_observation(id, CancelMode::Active, O)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.code, Code::CONTENT);
    assert_eq!(r.records().map(|r| r.len()), Some(2));
    let got = dev.next_received().await;
    assert_eq!((got.code, got.observe), (Code::FETCH, Some(1)));
    assert!(dev.observers.lock().unwrap().is_empty());

    // Passive cancel of a second composite observation.
    let id = server
        .observe_composite(
            "dev",
            paths,
            RequestOptions::default().with_format(ContentFormat::SenmlJson),
        )
        .await
        .unwrap();
    assert_eq!(id.format, Some(ContentFormat::SenmlJson));
    let id = id.observation.unwrap();
    server.cancel_observation(id, CancelMode::Passive, O).await.unwrap();
    assert_eq!(dev.notify_all().await, vec![Err(RequestError::Reset)]);
}

#[tokio::test]
async fn format_override_keeps_notifications_in_that_format() {
    let (server, mut events, dev) = setup().await;
    let r = server
        .observe(
            "dev",
            p("/3442/0"),
            RequestOptions::default().with_format(ContentFormat::SenmlJson),
        )
        .await
        .unwrap();
    assert_eq!(r.format, Some(ContentFormat::SenmlJson));
    let id = r.observation.unwrap();
    dev.set("/3442/0/110", Value::String("json".into()));
    dev.notify_all().await;
    let n = notification(&mut events, id).await;
    assert_eq!(n.format, Some(ContentFormat::SenmlJson));
    let Some(Node::Instance(i)) = n.node() else {
        panic!("{n:?}")
    };
    assert_eq!(
        i.resources[&110],
        ResourceNode::single(110, Value::String("json".into()))
    );
}

#[tokio::test]
async fn a_client_error_notification_ends_the_observation() {
    let (server, mut events, dev) = setup().await;
    let id = server
        .observe("dev", p("/3442/0/110"), O)
        .await
        .unwrap()
        .observation
        .unwrap();
    let o = dev.observers.lock().unwrap()[0].clone();
    let m = Message::new(MessageType::Con, Code::NOT_FOUND).with_token(o.token);
    dev.handle.notify(o.peer, m).await.unwrap();
    let Event::Notification { result, .. } = next_event(&mut events, |e| matches!(e, Event::Notification { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(result.unwrap().code, Code::NOT_FOUND);
    let ev = next_event(&mut events, |e| matches!(e, Event::ObservationEnded { .. })).await;
    assert!(
        matches!(ev, Event::ObservationEnded { observation, reason: ObservationEndReason::ClientEnded(Code::NOT_FOUND), .. } if observation == id),
        "{ev:?}"
    );
    assert!(server.observations("dev").is_empty());
}

#[tokio::test]
async fn observe_refused_by_the_client_holds_nothing() {
    let (server, _events, _dev) = setup().await;
    let r = server.observe("dev", p("/3442/9/110"), O).await.unwrap();
    assert_eq!((r.code, r.observation), (Code::NOT_FOUND, None));
    assert!(server.observations("dev").is_empty());
}

/// With a persistent store, a live observation has a record (what a restarted server restores) and the
/// record goes when the observation ends: cancelled, or its registration ended.
#[tokio::test]
async fn observations_are_persisted_while_they_live() {
    let dir = std::env::temp_dir().join(format!("lwm2m-obs-persist-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = std::sync::Arc::new(lwm2m_server::store::RedbRegistrationStore::open(dir.join("s.redb")).unwrap());
    let config = ServerConfig {
        store: store.clone(),
        ..ServerConfig::default()
    };
    let (server, mut events, addr) = start_server(config).await;
    let mut dev = Device::start(addr).await;
    assert_eq!(dev.register(&["ep=dev", "lwm2m=1.1"]).await.code, Code::CREATED);
    let a = server
        .observe("dev", p("/3303/0/5700"), O)
        .await
        .unwrap()
        .observation
        .unwrap();
    let b = server
        .observe_composite("dev", vec![p("/3442/0/1120"), p("/3303/0")], O)
        .await
        .unwrap()
        .observation
        .unwrap();
    let persisted = |s: &lwm2m_server::store::RedbRegistrationStore| {
        let mut v = lwm2m_server::RegistrationStore::observations(s).unwrap();
        v.sort_by_key(|o| o.id);
        v
    };
    assert_eq!(persisted(&store), server.observations("dev"));
    assert_eq!(persisted(&store).iter().map(|o| o.id).collect::<Vec<_>>(), vec![a, b]);

    server.cancel_observation(a, CancelMode::Passive, O).await.unwrap();
    assert_eq!(persisted(&store).iter().map(|o| o.id).collect::<Vec<_>>(), vec![b]);

    assert_eq!(dev.deregister().await.code, Code::DELETED);
    next_event(
        &mut events,
        |e| matches!(e, Event::ObservationEnded { observation, .. } if *observation == b),
    )
    .await;
    assert!(persisted(&store).is_empty());
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
