//! Messages per second through the sans-IO endpoint on one core (no sockets):
//!
//! - `server/con_get_piggybacked`: a CON GET datagram from one of 1000 peers is parsed, deduplicated, matched and
//!   delivered as an event; the application answers 2.05 with a 9-byte payload; the piggybacked ACK is encoded
//!   and taken from the transmit queue.
//! - `client/request_piggybacked_response`: a CON GET is submitted (token and Message ID generated, encoded,
//!   retransmission timer armed), its datagram taken, the peer's piggybacked 2.05 ACK fed back, and the
//!   response event taken.
//! - `codec/decode_encode`: decoding and re-encoding a typical LwM2M Read request, for scale.
//!
//! Run: `cargo bench -p lwm2m-coap --bench endpoint`. Throughput is reported in elements (messages or
//! exchanges) per second.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lwm2m_coap::{Code, Endpoint, EndpointConfig, Event, Message, MessageType, Timestamp, Token};

const PEERS: u32 = 1000;

fn peer(i: u32) -> SocketAddr {
    let ip = Ipv4Addr::from(0x0a00_0000 + i);
    SocketAddr::new(IpAddr::V4(ip), 5683)
}

fn server(c: &mut Criterion) {
    let mut g = c.benchmark_group("server");
    g.throughput(Throughput::Elements(1));
    // A short EXCHANGE_LIFETIME with the clock advancing 1 ms per message keeps the dedup cache at a steady
    // 10 000 entries, as a busy server would have.
    let config = EndpointConfig {
        exchange_lifetime_ms: 10_000,
        ..EndpointConfig::default()
    };
    let mut ep = Endpoint::with_seed(config, 1);
    let mut req = Message::request(Code::GET, "/3/0/0");
    req.token = Token::try_from_slice(&[1, 2, 3, 4]).unwrap();
    let template = req.encode();
    let mut bytes = template.clone();
    let mut n: u64 = 0;
    g.bench_function("con_get_piggybacked", |b| {
        b.iter(|| {
            n += 1;
            let p = peer((n % u64::from(PEERS)) as u32);
            let mid = ((n / u64::from(PEERS)) as u16).to_be_bytes();
            bytes[2] = mid[0];
            bytes[3] = mid[1];
            let now = Timestamp::from_millis(n);
            ep.handle_datagram(now, p, &bytes);
            let Some(Event::IncomingRequest { request, responder, .. }) = ep.poll_event() else {
                panic!("request not delivered");
            };
            let resp = Message::response_to(&request, Code::CONTENT).with_payload(&b"Acme Corp"[..]);
            ep.respond(now, responder, resp).unwrap();
            let tx = ep.poll_transmit().expect("piggybacked ACK");
            black_box(tx);
        })
    });
    g.finish();
}

fn client(c: &mut Criterion) {
    let mut g = c.benchmark_group("client");
    g.throughput(Throughput::Elements(1));
    let mut ep = Endpoint::with_seed(EndpointConfig::default(), 2);
    let mut n: u64 = 0;
    let mut ack = Vec::with_capacity(64);
    g.bench_function("request_piggybacked_response", |b| {
        b.iter(|| {
            n += 1;
            let p = peer((n % u64::from(PEERS)) as u32);
            let now = Timestamp::from_millis(n);
            let id = ep.send_request(now, p, Message::request(Code::GET, "/3/0/0"));
            let tx = ep.poll_transmit().expect("request datagram");
            // The peer's answer, built from the request header: ACK 2.05, same Message ID and token.
            let tkl = usize::from(tx.bytes[0] & 0x0f);
            ack.clear();
            ack.extend_from_slice(&[0x60 | tx.bytes[0] & 0x0f, 0x45, tx.bytes[2], tx.bytes[3]]);
            ack.extend_from_slice(&tx.bytes[4..4 + tkl]);
            ack.extend_from_slice(b"\xffAcme Corp");
            ep.handle_datagram(now, p, &ack);
            match ep.poll_event() {
                Some(Event::Response { id: got, .. }) if got == id => {}
                other => panic!("{other:?}"),
            }
            // Drop the completed exchange's timer, as a driver does before sleeping.
            black_box(ep.poll_timeout());
        })
    });
    g.finish();
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(1));
    let mut m = Message::request(Code::GET, "/3/0/0").with_type(MessageType::Con);
    m.message_id = 0x1234;
    m.token = Token::from_u64(0x1122_3344_5566_7788);
    m.set_accept(11542);
    let bytes = m.encode();
    g.bench_function("decode_encode", |b| {
        b.iter(|| {
            let d = Message::decode(black_box(&bytes)).unwrap();
            black_box(d.encode())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = server, client, codec
}
criterion_main!(benches);
