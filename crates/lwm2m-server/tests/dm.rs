//! Every DM&SE operation through the typed API against a device answering from `lwm2m_client`'s DataModel:
//! all path levels including resource instances (DSE-001), content format selection and override, composite
//! operations, the alternate path, timeouts and undecodable answers.

mod common;

use std::time::Duration;

use common::*;
use lwm2m_coap::{Code, Incoming, Message, UdpEndpoint};
use lwm2m_core::attributes::{AttributeChanges, Change};
use lwm2m_core::format::ContentFormat;
use lwm2m_core::{InstanceNode, Node, ObjectNode, Path, Record, ResourceNode, ResourceValue, Value};
use lwm2m_server::{Content, RequestOptions, ServerConfig, ServerError, ServerHandle, WriteMode};

fn p(s: &str) -> Path {
    s.parse().unwrap()
}

const O: RequestOptions = RequestOptions {
    format: None,
    timeout: None,
};

fn with(f: ContentFormat) -> RequestOptions {
    RequestOptions::default().with_format(f)
}

async fn setup(queries: &[&str]) -> (ServerHandle, Device) {
    let (server, _events, addr) = start_server(ServerConfig::default()).await;
    let mut dev = Device::start(addr).await;
    let mut q = vec!["ep=dev"];
    q.extend_from_slice(queries);
    assert_eq!(dev.register(&q).await.code, Code::CREATED);
    (server, dev)
}

fn multi(id: u16, v: &[(u16, i64)]) -> Node {
    Node::Resource(ResourceNode::multiple(
        id,
        v.iter().map(|(i, x)| (*i, Value::Integer(*x))),
    ))
}

#[tokio::test]
async fn read_on_every_path_level() {
    let (server, mut dev) = setup(&["lwm2m=1.1"]).await;
    let r = server.read("dev", p("/3442/0/110"), O).await.unwrap();
    assert_eq!((r.code, r.format), (Code::CONTENT, Some(ContentFormat::Text)));
    assert_eq!(
        r.node(),
        Some(&Node::Resource(ResourceNode::single(
            110,
            Value::String("hello".into())
        )))
    );
    assert_eq!(dev.next_received().await.accept, None, "no Accept unless overridden");

    // DSE-001: one instance of a multi-instance resource.
    let r = server.read("dev", p("/3442/0/1120/1"), O).await.unwrap();
    assert_eq!(
        r.node(),
        Some(&Node::ResourceInstance {
            id: 1,
            value: Value::Integer(11)
        })
    );
    let r = server.read("dev", p("/3442/0/1120"), O).await.unwrap();
    assert_eq!(r.node(), Some(&multi(1120, &[(0, 10), (1, 11), (2, 12)])));

    let r = server.read("dev", p("/3442/0"), O).await.unwrap();
    let Some(Node::Instance(inst)) = r.node() else {
        panic!("{r:?}")
    };
    assert_eq!(inst.id, 0);
    assert_eq!(
        inst.resources.get(&120).map(|r| &r.value),
        Some(&ResourceValue::Single(Value::Integer(42)))
    );
    let r = server.read("dev", p("/3442"), O).await.unwrap();
    let Some(Node::Object(obj)) = r.node() else {
        panic!("{r:?}")
    };
    assert_eq!(obj.instances.keys().copied().collect::<Vec<_>>(), vec![0]);

    // The client's refusals are responses, not errors.
    for (path, code) in [
        ("/3442/9", Code::NOT_FOUND),
        ("/3442/0/110/0", Code::BAD_REQUEST),
        ("/3/0/4", Code::METHOD_NOT_ALLOWED),
        ("/0/0", Code::NOT_FOUND),
    ] {
        let r = server.read("dev", p(path), O).await.unwrap();
        assert_eq!(r.code, code, "{path}");
        assert!(r.content.is_none() && r.diagnostic.is_some(), "{path}: {r:?}");
    }
    // What the server can tell before sending is an error and nothing goes out.
    assert!(matches!(
        server.read("dev", Path::ROOT, O).await,
        Err(ServerError::InvalidRequest(_))
    ));
}

#[tokio::test]
async fn content_format_choice_and_override() {
    // 1.1 without ct: SenML CBOR for payloads.
    let (server, mut dev) = setup(&["lwm2m=1.1"]).await;
    let v = Value::String("a".into());
    assert_eq!(
        server
            .write_value("dev", p("/3442/0/110"), v.clone(), O)
            .await
            .unwrap()
            .code,
        Code::CHANGED
    );
    assert_eq!(dev.next_received().await.content_format, Some(112));
    // Override per request: text/plain for one value, TLV for a multi-value write.
    assert_eq!(
        server
            .write_value("dev", p("/3442/0/110"), v.clone(), with(ContentFormat::Text))
            .await
            .unwrap()
            .code,
        Code::CHANGED
    );
    assert_eq!(dev.next_received().await.content_format, Some(0));
    let node = multi(1120, &[(0, 1), (1, 2)]);
    let r = server
        .write(
            "dev",
            p("/3442/0/1120"),
            WriteMode::Replace,
            node,
            with(ContentFormat::Tlv),
        )
        .await
        .unwrap();
    assert_eq!(r.code, Code::CHANGED);
    assert_eq!(dev.next_received().await.content_format, Some(11542));
    // A Read with an Accept override: the answer comes in that format and is decoded.
    for f in [
        ContentFormat::SenmlJson,
        ContentFormat::Tlv,
        ContentFormat::Lwm2mJson,
        ContentFormat::SenmlCbor,
    ] {
        let r = server.read("dev", p("/3442/0/1120"), with(f)).await.unwrap();
        assert_eq!((r.code, r.format), (Code::CONTENT, Some(f)));
        assert_eq!(r.node(), Some(&multi(1120, &[(0, 1), (1, 2)])));
        assert_eq!(dev.next_received().await.accept, Some(f.code()));
    }
    let r = server
        .read("dev", p("/3442/0/120"), with(ContentFormat::Cbor))
        .await
        .unwrap();
    assert_eq!(
        (r.format, r.node()),
        (
            Some(ContentFormat::Cbor),
            Some(&Node::Resource(ResourceNode::single(120, Value::Integer(42))))
        )
    );
    // A format the client cannot produce: its 4.06.
    let r = server
        .read("dev", p("/3442/0"), with(ContentFormat::Text))
        .await
        .unwrap();
    assert_eq!(r.code, Code::NOT_ACCEPTABLE);

    // 1.0 without ct: TLV.
    let (server, mut dev) = setup(&[]).await;
    server.write_value("dev", p("/3442/0/110"), v.clone(), O).await.unwrap();
    assert_eq!(dev.next_received().await.content_format, Some(11542));

    // The ct list decides when present.
    let (server, _events, addr) = start_server(ServerConfig::default()).await;
    let mut dev = Device::start(addr).await;
    let links = format!(r#"</>;rt="oma.lwm2m";ct="0 110",{}"#, dev.links());
    assert_eq!(
        dev.register_with(&["ep=dev", "lwm2m=1.1"], &links).await.code,
        Code::CREATED
    );
    server.write_value("dev", p("/3442/0/110"), v.clone(), O).await.unwrap();
    assert_eq!(dev.next_received().await.content_format, Some(110));
    server.read_composite("dev", vec![p("/3442/0/110")], O).await.unwrap();
    assert_eq!(dev.next_received().await.content_format, Some(110));
}

#[tokio::test]
async fn write_replace_partial_and_resource_instances() {
    let (server, mut dev) = setup(&["lwm2m=1.1"]).await;
    // DSE-001: write one resource instance, read it back.
    let r = server
        .write_value("dev", p("/3442/0/1120/1"), Value::Integer(111), O)
        .await
        .unwrap();
    assert_eq!(r.code, Code::CHANGED);
    assert_eq!(dev.next_received().await.op(), (Code::PUT, "/3442/0/1120/1".into()));
    let r = server.read("dev", p("/3442/0/1120/1"), O).await.unwrap();
    assert_eq!(
        r.node(),
        Some(&Node::ResourceInstance {
            id: 1,
            value: Value::Integer(111)
        })
    );
    // A new resource instance.
    server
        .write_value("dev", p("/3442/0/1120/7"), Value::Integer(7), O)
        .await
        .unwrap();
    assert_eq!(
        server.read("dev", p("/3442/0/1120"), O).await.unwrap().node(),
        Some(&multi(1120, &[(0, 10), (1, 111), (2, 12), (7, 7)]))
    );
    // Partial update of a multiple resource (POST on /o/i/r) keeps the others.
    let r = server
        .write(
            "dev",
            p("/3442/0/1120"),
            WriteMode::PartialUpdate,
            multi(1120, &[(0, 100)]),
            O,
        )
        .await
        .unwrap();
    assert_eq!(r.code, Code::CHANGED);
    assert_eq!(
        server.read("dev", p("/3442/0/1120"), O).await.unwrap().node(),
        Some(&multi(1120, &[(0, 100), (1, 111), (2, 12), (7, 7)]))
    );
    // Replace of the whole array.
    server
        .write("dev", p("/3442/0/1120"), WriteMode::Replace, multi(1120, &[(5, 5)]), O)
        .await
        .unwrap();
    assert_eq!(
        server.read("dev", p("/3442/0/1120"), O).await.unwrap().node(),
        Some(&multi(1120, &[(5, 5)]))
    );
    // Partial update of an instance: only what is sent changes.
    let inst = Node::Instance(InstanceNode::new(0, [ResourceNode::single(120, Value::Integer(-1))]));
    let r = server
        .write("dev", p("/3442/0"), WriteMode::PartialUpdate, inst, O)
        .await
        .unwrap();
    assert_eq!(r.code, Code::CHANGED);
    let r = server.read("dev", p("/3442/0"), O).await.unwrap();
    let Some(Node::Instance(i)) = r.node() else { panic!() };
    assert_eq!(
        i.resources.get(&110).map(|r| &r.value),
        Some(&ResourceValue::Single(Value::String("hello".into())))
    );
    assert_eq!(
        i.resources.get(&120).map(|r| &r.value),
        Some(&ResourceValue::Single(Value::Integer(-1)))
    );
    // Replace of an instance drops what is not sent.
    let inst = Node::Instance(InstanceNode::new(
        0,
        [ResourceNode::single(110, Value::String("only".into()))],
    ));
    server
        .write("dev", p("/3442/0"), WriteMode::Replace, inst, O)
        .await
        .unwrap();
    let r = server.read("dev", p("/3442/0"), O).await.unwrap();
    let Some(Node::Instance(i)) = r.node() else { panic!() };
    assert!(!i.resources.contains_key(&120), "{i:?}");
    // Refusals by the client.
    let r = server
        .write_value("dev", p("/3/0/0"), Value::String("x".into()), O)
        .await
        .unwrap();
    assert_eq!(r.code, Code::METHOD_NOT_ALLOWED);
    let r = server
        .write_value("dev", p("/3442/5/110"), Value::String("x".into()), O)
        .await
        .unwrap();
    assert_eq!(r.code, Code::NOT_FOUND);
    // Content that does not sit at the path is refused before sending.
    let e = server
        .write("dev", p("/3442/0/110"), WriteMode::Replace, multi(1120, &[]), O)
        .await
        .unwrap_err();
    assert!(matches!(e, ServerError::InvalidRequest(_)), "{e}");
}

#[tokio::test]
async fn write_attributes_and_discover() {
    let (server, mut dev) = setup(&["lwm2m=1.1"]).await;
    let set = AttributeChanges {
        pmin: Some(Change::Set(10)),
        pmax: Some(Change::Set(60)),
        ..AttributeChanges::default()
    };
    let r = server.write_attributes("dev", p("/3442/0/120"), set, O).await.unwrap();
    assert_eq!(r.code, Code::CHANGED);
    let got = dev.next_received().await;
    assert_eq!(
        (got.code, got.content_format, got.queries.clone()),
        (Code::PUT, None, vec!["pmin=10".into(), "pmax=60".into()])
    );
    assert!(got.payload.is_empty());
    // Attributes on a resource instance (DSE-001) and on an object.
    let gt = AttributeChanges {
        gt: Some(Change::Set(50.0)),
        ..AttributeChanges::default()
    };
    assert_eq!(
        server
            .write_attributes("dev", p("/3442/0/1120/1"), gt, O)
            .await
            .unwrap()
            .code,
        Code::CHANGED
    );
    let obj = AttributeChanges {
        pmax: Some(Change::Set(300)),
        ..AttributeChanges::default()
    };
    assert_eq!(
        server.write_attributes("dev", p("/3442"), obj, O).await.unwrap().code,
        Code::CHANGED
    );

    // Discover at every level it allows.
    let r = server.discover("dev", p("/3442/0/120"), O).await.unwrap();
    let Some(Content::Links { raw, links }) = &r.content else {
        panic!("{r:?}")
    };
    assert!(raw.starts_with("</3442/0/120>"), "{raw}");
    assert_eq!(links[0].0, p("/3442/0/120"));
    assert_eq!((links[0].1.pmin, links[0].1.pmax), (Some(10), Some(60)));
    let r = server.discover("dev", p("/3442/0/1120"), O).await.unwrap();
    let Some(Content::Links { links, .. }) = &r.content else {
        panic!("{r:?}")
    };
    assert_eq!(links[0].1.dim, Some(3));
    assert!(
        links
            .iter()
            .any(|(path, a)| *path == p("/3442/0/1120/1") && a.gt == Some(50.0)),
        "{links:?}"
    );
    let r = server.discover("dev", p("/3442"), O).await.unwrap();
    let Some(Content::Links { links, .. }) = &r.content else {
        panic!("{r:?}")
    };
    assert_eq!((links[0].0, links[0].1.pmax), (p("/3442"), Some(300)));
    assert!(links.iter().any(|(path, _)| *path == p("/3442/0/110")));
    let r = server.discover("dev", p("/3442/0"), O).await.unwrap();
    assert!(matches!(r.content, Some(Content::Links { .. })));

    // Unset, then an invalid combination refused by the client.
    let unset = AttributeChanges {
        pmin: Some(Change::Unset),
        ..AttributeChanges::default()
    };
    server
        .write_attributes("dev", p("/3442/0/120"), unset, O)
        .await
        .unwrap();
    let r = server.discover("dev", p("/3442/0/120"), O).await.unwrap();
    let Some(Content::Links { links, .. }) = &r.content else {
        panic!()
    };
    assert_eq!(links[0].1.pmin, None);
    let bad = AttributeChanges {
        lt: Some(Change::Set(10.0)),
        gt: Some(Change::Set(5.0)),
        ..AttributeChanges::default()
    };
    assert_eq!(
        server
            .write_attributes("dev", p("/3442/0/120"), bad, O)
            .await
            .unwrap()
            .code,
        Code::BAD_REQUEST
    );
    assert!(matches!(
        server.discover("dev", p("/3442/0/1120/1"), O).await,
        Err(ServerError::InvalidRequest(_))
    ));
}

#[tokio::test]
async fn execute_create_delete() {
    let (server, mut dev) = setup(&["lwm2m=1.1"]).await;
    let r = server.execute("dev", p("/3442/0/0"), None, O).await.unwrap();
    assert_eq!(r.code, Code::CHANGED);
    let got = dev.next_received().await;
    assert_eq!((got.code, got.content_format, got.payload.len()), (Code::POST, None, 0));
    let r = server
        .execute("dev", p("/3442/0/0"), Some("0,1='x y'"), O)
        .await
        .unwrap();
    assert_eq!(r.code, Code::CHANGED);
    let got = dev.next_received().await;
    assert_eq!(
        (got.content_format, got.payload.as_slice()),
        (Some(0), &b"0,1='x y'"[..])
    );
    assert_eq!(
        server.execute("dev", p("/3442/0/110"), None, O).await.unwrap().code,
        Code::METHOD_NOT_ALLOWED
    );
    assert_eq!(dev.next_received().await.path, "/3442/0/110");
    // Bad arguments never leave the server.
    let e = server.execute("dev", p("/3442/0/0"), Some("1=x"), O).await.unwrap_err();
    assert!(matches!(e, ServerError::InvalidRequest(_)), "{e}");
    let e = server.execute("dev", p("/3442/0"), None, O).await.unwrap_err();
    assert!(matches!(e, ServerError::InvalidRequest(_)), "{e}");

    // Create with an id (SenML CBOR) and without one (TLV).
    let res = vec![ResourceNode::single(5701, Value::String("Cel".into()))];
    let r = server.create("dev", 3303, Some(5), res.clone(), O).await.unwrap();
    assert_eq!((r.code, r.location), (Code::CREATED, Some(p("/3303/5"))));
    assert_eq!(dev.next_received().await.content_format, Some(112));
    let r = server.create("dev", 3303, None, res.clone(), O).await.unwrap();
    assert_eq!((r.code, r.location), (Code::CREATED, Some(p("/3303/1"))));
    assert_eq!(dev.next_received().await.content_format, Some(11542));
    // With an explicit TLV format and an id, and an existing id refused.
    let r = server
        .create("dev", 3303, Some(9), res.clone(), with(ContentFormat::Tlv))
        .await
        .unwrap();
    assert_eq!((r.code, r.location), (Code::CREATED, Some(p("/3303/9"))));
    assert_eq!(
        server.create("dev", 3303, Some(5), res.clone(), O).await.unwrap().code,
        Code::BAD_REQUEST
    );
    let r = server.read("dev", p("/3303/5/5701"), O).await.unwrap();
    assert_eq!(
        r.node(),
        Some(&Node::Resource(ResourceNode::single(5701, Value::String("Cel".into()))))
    );

    // Delete.
    assert_eq!(server.delete("dev", p("/3303/5"), O).await.unwrap().code, Code::DELETED);
    assert_eq!(
        server.delete("dev", p("/3303/5"), O).await.unwrap().code,
        Code::NOT_FOUND
    );
    assert_eq!(
        server.delete("dev", p("/3/0"), O).await.unwrap().code,
        Code::METHOD_NOT_ALLOWED
    );
    assert!(matches!(
        server.delete("dev", p("/3303"), O).await,
        Err(ServerError::InvalidRequest(_))
    ));
}

#[tokio::test]
async fn composite_read_and_write() {
    let (server, mut dev) = setup(&["lwm2m=1.1"]).await;
    let paths = vec![p("/3442/0/110"), p("/3303/0/5700"), p("/3442/0/1120/2")];
    let r = server.read_composite("dev", paths.clone(), O).await.unwrap();
    assert_eq!((r.code, r.format), (Code::CONTENT, Some(ContentFormat::SenmlCbor)));
    let got = dev.next_received().await;
    assert_eq!(
        (got.code, got.path.as_str(), got.content_format),
        (Code::FETCH, "/", Some(112))
    );
    let recs = r.records().unwrap();
    let vals: Vec<(Path, Value)> = recs.iter().map(|r| (r.path, r.value.clone())).collect();
    assert_eq!(
        vals,
        vec![
            (p("/3442/0/110"), Value::String("hello".into())),
            (p("/3303/0/5700"), Value::Float(20.0)),
            (p("/3442/0/1120/2"), Value::Integer(12)),
        ]
    );
    // SenML JSON on request.
    let r = server
        .read_composite("dev", vec![p("/3442/0")], with(ContentFormat::SenmlJson))
        .await
        .unwrap();
    assert_eq!(r.format, Some(ContentFormat::SenmlJson));
    let got = dev.next_received().await;
    assert_eq!((got.content_format, got.accept), (Some(110), Some(110)));
    assert!(r.records().unwrap().len() >= 3);

    let records = vec![
        Record::new(p("/3442/0/110"), Value::String("composite".into())),
        Record::new(p("/3442/0/1120/0"), Value::Integer(99)),
    ];
    let r = server.write_composite("dev", records, O).await.unwrap();
    assert_eq!(r.code, Code::CHANGED);
    assert_eq!(dev.next_received().await.op(), (Code::IPATCH, "/".into()));
    let r = server
        .read_composite("dev", vec![p("/3442/0/110"), p("/3442/0/1120/0")], O)
        .await
        .unwrap();
    let vals: Vec<Value> = r.records().unwrap().iter().map(|r| r.value.clone()).collect();
    assert_eq!(vals, vec![Value::String("composite".into()), Value::Integer(99)]);
    // Atomic refusal: one target is read-only.
    let records = vec![
        Record::new(p("/3442/0/110"), Value::String("no".into())),
        Record::new(p("/3/0/0"), Value::String("no".into())),
    ];
    assert_eq!(
        server.write_composite("dev", records, O).await.unwrap().code,
        Code::METHOD_NOT_ALLOWED
    );
    let r = server.read("dev", p("/3442/0/110"), O).await.unwrap();
    assert_eq!(
        r.node(),
        Some(&Node::Resource(ResourceNode::single(
            110,
            Value::String("composite".into())
        )))
    );
}

#[tokio::test]
async fn alternate_path_prefixes_requests() {
    let (server, _events, addr) = start_server(ServerConfig::default()).await;
    let mut dev = Device::with_model(addr, data_model(), Some("/lwm2m")).await;
    let links = dev.links();
    assert!(links.starts_with(r#"</lwm2m>;rt="oma.lwm2m""#), "{links}");
    assert_eq!(
        dev.register_with(&["ep=alt", "lwm2m=1.1"], &links).await.code,
        Code::CREATED
    );
    assert_eq!(server.registration("alt").unwrap().unwrap().root_path(), "/lwm2m");
    let r = server.read("alt", p("/3442/0/110"), O).await.unwrap();
    assert_eq!(r.code, Code::CONTENT);
    assert_eq!(dev.next_received().await.path, "/lwm2m/3442/0/110");
    let r = server.read_composite("alt", vec![p("/3442/0/120")], O).await.unwrap();
    assert_eq!(r.records().map(|r| r.len()), Some(1));
    assert_eq!(dev.next_received().await.path, "/lwm2m");
    let res = vec![ResourceNode::single(5701, Value::String("Cel".into()))];
    let r = server.create("alt", 3303, None, res, O).await.unwrap();
    assert_eq!((r.code, r.location), (Code::CREATED, Some(p("/3303/1"))));
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_times_out() {
    let (server, dev) = setup(&["lwm2m=1.1"]).await;
    dev.handle.shutdown().await;
    let opts = RequestOptions::default().with_timeout(Duration::from_millis(500));
    let e = server.read("dev", p("/3/0/0"), opts).await.unwrap_err();
    assert_eq!(e, ServerError::Timeout { endpoint: "dev".into() });
    // Without our own deadline the CoAP retransmissions run out (ack 300 ms, 2 retransmissions).
    let e = server.read("dev", p("/3/0/0"), O).await.unwrap_err();
    assert_eq!(e, ServerError::Timeout { endpoint: "dev".into() });
}

#[tokio::test]
async fn undecodable_answers_are_typed_errors() {
    let (server, _events, addr) = start_server(ServerConfig::default()).await;
    // A raw device: registers, then answers every request with a broken TLV or an unknown format.
    let (h, mut rx) = UdpEndpoint::bind("127.0.0.1:0".parse().unwrap(), fast_coap())
        .await
        .unwrap();
    let reg = Message::request(Code::POST, "/rd?ep=raw&lwm2m=1.1")
        .with_content_format(40)
        .with_payload("</3/0>");
    assert_eq!(h.request(addr, reg).await.unwrap().code, Code::CREATED);
    let responder = h.clone();
    tokio::spawn(async move {
        while let Some(Incoming::Request(r)) = rx.recv().await {
            let (cf, body): (u16, &[u8]) = if r.request.uri_path_string() == "/3/0/0" {
                (11542, &[0xc8, 0x00])
            } else {
                (4242, b"?")
            };
            let m = Message::response_to(&r.request, Code::CONTENT)
                .with_content_format(cf)
                .with_payload(body);
            let _ = responder.respond(r.responder, m);
        }
    });
    let e = server.read("raw", p("/3/0/0"), O).await.unwrap_err();
    assert!(
        matches!(
            e,
            ServerError::Decode {
                format: ContentFormat::Tlv,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("tlv"), "{e}");
    let e = server.read("raw", p("/3/0/1"), O).await.unwrap_err();
    assert_eq!(e, ServerError::UnknownContentFormat(4242));
    let _ = ObjectNode::new(0, []);
}
