//! Block-wise (RFC 7959) tests: both sides of the endpoint, directly and over the simulated network.

use super::test_util::*;
use super::*;
use crate::message::{opt, Block};
use crate::sim::{Handler, NetConfig, Sim};

const CLIENT: u16 = 5001;
const SERVER: u16 = 5683;

/// A deterministic body of `n` bytes.
fn body(n: usize, salt: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt)).collect()
}

fn cfg_block(size: usize) -> EndpointConfig {
    EndpointConfig {
        block_size: size,
        ..Default::default()
    }
}

/// A server handler: GET answers `get_body`; PUT/POST answer 2.04 with the length of what arrived, echoed
/// in the payload when `echo`.
fn handler(get_body: Vec<u8>, echo: bool) -> Handler {
    Box::new(move |_, req: &Message| {
        Some(match req.code {
            Code::GET | Code::FETCH => Message::response_to(req, Code::CONTENT)
                .with_content_format(42)
                .with_payload(get_body.clone()),
            _ => {
                let p = if echo {
                    req.payload.clone()
                } else {
                    req.payload.len().to_string().into_bytes()
                };
                Message::response_to(req, Code::CHANGED).with_payload(p)
            }
        })
    })
}

fn two_nodes(net: NetConfig, seed: u64, client: EndpointConfig, server: EndpointConfig) -> Sim {
    let mut sim = Sim::new(net, seed);
    sim.add(addr(CLIENT), Endpoint::with_seed(client, seed.wrapping_add(1)));
    sim.add(addr(SERVER), Endpoint::with_seed(server, seed.wrapping_add(2)));
    sim
}

/// Messages sent by `from`, decoded.
fn sent_by(sim: &Sim, from: SocketAddr) -> Vec<Message> {
    sim.net
        .log
        .iter()
        .filter(|r| r.datagram.from == from)
        .filter_map(|r| r.message())
        .collect()
}

/// The only response event at the client, with its id.
fn only_response(sim: &Sim) -> (RequestId, Message) {
    let rs: Vec<_> = sim
        .events_at(addr(CLIENT))
        .into_iter()
        .filter_map(|e| match e {
            Event::Response { id, message, .. } => Some((id, message)),
            _ => None,
        })
        .collect();
    assert_eq!(rs.len(), 1, "{:?}", sim.events_at(addr(CLIENT)));
    rs.into_iter().next().unwrap()
}

/// The requests the server application saw.
fn app_requests(sim: &Sim) -> Vec<Message> {
    sim.events_at(addr(SERVER))
        .into_iter()
        .filter_map(|e| match e {
            Event::IncomingRequest { request, .. } => Some(request),
            _ => None,
        })
        .collect()
}

// ------------------------------------------------------------------ Block2

#[test]
fn block2_download_is_transparent_to_both_applications() {
    let data = body(5000, 1);
    let mut sim = two_nodes(
        NetConfig::default(),
        1,
        EndpointConfig::default(),
        EndpointConfig::default(),
    );
    sim.set_handler(addr(SERVER), handler(data.clone(), false));
    let id = sim.send_request(addr(CLIENT), addr(SERVER), Message::request(Code::GET, "/5/0/0"));
    sim.run_until(t(10_000));
    let (rid, resp) = only_response(&sim);
    assert_eq!(rid, id);
    assert_eq!(resp.payload, data);
    assert_eq!(resp.content_format(), Some(42));
    assert_eq!(
        (resp.block2(), resp.size2()),
        (None, None),
        "block options are not shown"
    );
    let client_msgs = sent_by(&sim, addr(CLIENT));
    assert_eq!(resp.token, client_msgs[0].token, "the application's token");
    assert_eq!(app_requests(&sim).len(), 1, "the server application answered once");
    // On the wire: block 0 with Size2 and an ETag, then blocks 1..4 of 1024 bytes fetched by the client.
    let server_msgs = sent_by(&sim, addr(SERVER));
    let blocks: Vec<(u32, bool, u8, usize)> = server_msgs
        .iter()
        .map(|m| {
            let b = m.block2().unwrap();
            (b.num, b.more, b.szx, m.payload.len())
        })
        .collect();
    assert_eq!(
        blocks,
        vec![
            (0, true, 6, 1024),
            (1, true, 6, 1024),
            (2, true, 6, 1024),
            (3, true, 6, 1024),
            (4, false, 6, 904)
        ]
    );
    assert_eq!(server_msgs[0].size2(), Some(5000));
    let etag = server_msgs[0].etag().unwrap().to_vec();
    assert!(server_msgs.iter().all(|m| m.etag() == Some(&etag[..])));
    for (i, m) in client_msgs.iter().enumerate().skip(1) {
        assert_eq!(m.block2().map(|b| (b.num, b.more)), Some((i as u32, false)));
        assert_eq!(m.uri_path(), vec!["5", "0", "0"]);
        assert_ne!(m.token, client_msgs[0].token, "follow-ups use fresh tokens");
    }
    // Everything is cleaned up after EXCHANGE_LIFETIME.
    sim.run_until(t(400_000));
    assert_eq!(sim.endpoint(addr(SERVER)).poll_timeout(), None);
    assert_eq!(sim.endpoint(addr(CLIENT)).outstanding(), 0);
}

#[test]
fn block2_size_negotiation_early_and_by_server() {
    let data = body(300, 2);
    // The client asks for 64-byte blocks (early negotiation, RFC 7959 §2.4).
    let mut sim = two_nodes(
        NetConfig::default(),
        2,
        EndpointConfig::default(),
        EndpointConfig::default(),
    );
    sim.set_handler(addr(SERVER), handler(data.clone(), false));
    let mut req = Message::request(Code::GET, "/big");
    req.set_block2(Block::new(0, false, 2).unwrap());
    sim.send_request(addr(CLIENT), addr(SERVER), req);
    sim.run_until(t(10_000));
    assert_eq!(only_response(&sim).1.payload, data);
    let sizes: Vec<usize> = sent_by(&sim, addr(SERVER)).iter().map(|m| m.payload.len()).collect();
    assert_eq!(sizes, vec![64, 64, 64, 64, 44]);
    assert!(sent_by(&sim, addr(CLIENT)).iter().all(|m| m.block2().unwrap().szx == 2));

    // The server is configured for 32-byte blocks and the client asks for 128: the server's size wins.
    let mut sim = two_nodes(NetConfig::default(), 3, EndpointConfig::default(), cfg_block(32));
    sim.set_handler(addr(SERVER), handler(data.clone(), false));
    let mut req = Message::request(Code::GET, "/big");
    req.set_block2(Block::new(0, false, 3).unwrap());
    sim.send_request(addr(CLIENT), addr(SERVER), req);
    sim.run_until(t(10_000));
    assert_eq!(only_response(&sim).1.payload, data);
    let srv = sent_by(&sim, addr(SERVER));
    assert_eq!(srv.len(), 10);
    assert!(srv.iter().all(|m| m.block2().unwrap().szx == 1));
}

#[test]
fn block2_server_serves_a_larger_requested_size_at_the_same_offset() {
    // A foreign client that asks for block 1 of 512 bytes while we cut 256-byte blocks.
    let mut s = Endpoint::with_seed(cfg_block(256), 1);
    let data = body(2000, 3);
    let mut req = Message::request(Code::GET, "/x");
    req.message_id = 1;
    req.token = Token::try_from_slice(&[1]).unwrap();
    s.handle_datagram(t(0), addr(CLIENT), &req.encode());
    let Some(Event::IncomingRequest { responder, .. }) = s.poll_event() else {
        panic!()
    };
    s.respond(
        t(0),
        responder,
        Message::new(MessageType::Ack, Code::CONTENT).with_payload(data.clone()),
    )
    .unwrap();
    let b0 = decode(&drain(&mut s)[0]);
    assert_eq!(b0.block2(), Some(Block::new(0, true, 4).unwrap()));
    let mut next = req.clone();
    next.message_id = 2;
    next.token = Token::try_from_slice(&[2]).unwrap();
    next.set_block2(Block::new(1, false, 5).unwrap());
    s.handle_datagram(t(1), addr(CLIENT), &next.encode());
    assert!(events(&mut s).is_empty(), "served from the cache");
    let b = decode(&drain(&mut s)[0]);
    assert_eq!(b.block2(), Some(Block::new(2, true, 4).unwrap()));
    assert_eq!(b.payload, data[512..768]);
    assert_eq!(b.token, next.token);
    // Beyond the end: 4.02.
    next.message_id = 3;
    next.set_block2(Block::new(8, false, 4).unwrap());
    s.handle_datagram(t(2), addr(CLIENT), &next.encode());
    assert_eq!(decode(&drain(&mut s)[0]).code, Code::BAD_OPTION);
}

#[test]
fn block2_after_cache_expiry_the_application_answers_and_the_endpoint_slices() {
    let mut s = Endpoint::with_seed(cfg_block(16), 1);
    let data = body(40, 4);
    let mut req = Message::request(Code::GET, "/x");
    req.message_id = 1;
    s.handle_datagram(t(0), addr(CLIENT), &req.encode());
    let Some(Event::IncomingRequest { responder, .. }) = s.poll_event() else {
        panic!()
    };
    s.respond(
        t(0),
        responder,
        Message::new(MessageType::Ack, Code::CONTENT).with_payload(data.clone()),
    )
    .unwrap();
    drain(&mut s);
    assert_eq!(s.poll_timeout(), Some(t(247_000)));
    s.handle_timeout(t(247_000));
    let mut next = req.clone();
    next.message_id = 2;
    next.set_block2(Block::new(2, false, 0).unwrap());
    s.handle_datagram(t(247_001), addr(CLIENT), &next.encode());
    let Some(Event::IncomingRequest { responder, request, .. }) = s.poll_event() else {
        panic!("the cache expired, so the application sees the request")
    };
    assert_eq!(request.block2().map(|b| b.num), Some(2));
    s.respond(
        t(247_001),
        responder,
        Message::new(MessageType::Ack, Code::CONTENT).with_payload(data.clone()),
    )
    .unwrap();
    let b = decode(&drain(&mut s)[0]);
    assert_eq!(b.block2(), Some(Block::new(2, false, 0).unwrap()));
    assert_eq!(b.payload, data[32..]);
}

/// A client talking to a hand-driven server: returns (client, request id, first request).
fn client_with_request(path: &str) -> (Endpoint, RequestId, Message) {
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 7);
    let id = c.send_request(t(0), addr(SERVER), Message::request(Code::GET, path));
    let req = decode(&drain(&mut c)[0]);
    (c, id, req)
}

/// A Block2 response block to `req` (piggybacked) with `etag`.
fn block_resp(req: &Message, num: u32, more: bool, szx: u8, etag: &[u8], data: &[u8]) -> Message {
    let size = 16usize << szx;
    let start = (num as usize * size).min(data.len());
    let end = (start + size).min(data.len());
    let mut m = Message::response_to(req, Code::CONTENT).with_payload(data[start..end].to_vec());
    m.set_block2(Block::new(num, more, szx).unwrap());
    m.set_etag(etag);
    m
}

#[test]
fn block2_etag_change_restarts_then_succeeds() {
    let (mut c, id, req) = client_with_request("/r");
    let old = body(48, 1);
    let new = body(48, 2);
    c.handle_datagram(t(1), addr(SERVER), &block_resp(&req, 0, true, 0, b"A", &old).encode());
    let r1 = decode(&drain(&mut c)[0]);
    assert_eq!(r1.block2().map(|b| b.num), Some(1));
    // The resource changed: block 1 comes with another ETag.
    c.handle_datagram(t(2), addr(SERVER), &block_resp(&r1, 1, true, 0, b"B", &new).encode());
    let r0 = decode(&drain(&mut c)[0]);
    assert_eq!(r0.block2().map(|b| b.num), Some(0), "restarted from block 0");
    let mut cur = r0;
    for num in 0..3u32 {
        c.handle_datagram(
            t(3 + u64::from(num)),
            addr(SERVER),
            &block_resp(&cur, num, num < 2, 0, b"B", &new).encode(),
        );
        if num < 2 {
            cur = decode(&drain(&mut c)[0]);
        }
    }
    match &events(&mut c)[..] {
        [Event::Response { id: i, message, .. }] => {
            assert_eq!(*i, id);
            assert_eq!(message.payload, new, "the new representation, whole");
            assert_eq!(message.etag(), Some(&b"B"[..]));
            assert_eq!(message.token, req.token);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn block2_etag_that_keeps_changing_fails_cleanly() {
    let (mut c, id, req) = client_with_request("/r");
    let data = body(48, 1);
    let mut cur = req;
    let mut tag = 0u8;
    for _ in 0..20 {
        tag += 1;
        let num = cur.block2().map_or(0, |b| b.num);
        c.handle_datagram(
            t(u64::from(tag)),
            addr(SERVER),
            &block_resp(&cur, num, true, 0, &[tag], &data).encode(),
        );
        match drain(&mut c).first() {
            Some(tx) => cur = decode(tx),
            None => break,
        }
    }
    assert_eq!(
        events(&mut c),
        vec![Event::BlockwiseFailed {
            id,
            peer: addr(SERVER),
            error: BlockwiseError::EtagChanged
        }]
    );
    assert_eq!(c.outstanding(), 0);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn block2_error_in_the_middle_is_delivered_as_the_response() {
    let (mut c, id, req) = client_with_request("/r");
    let data = body(48, 1);
    c.handle_datagram(t(1), addr(SERVER), &block_resp(&req, 0, true, 0, b"A", &data).encode());
    let r1 = decode(&drain(&mut c)[0]);
    c.handle_datagram(t(2), addr(SERVER), &Message::response_to(&r1, Code::NOT_FOUND).encode());
    match &events(&mut c)[..] {
        [Event::Response { id: i, message, .. }] => {
            assert_eq!((*i, message.code, message.token), (id, Code::NOT_FOUND, req.token));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn block2_body_above_max_fails() {
    let mut c = Endpoint::with_seed(
        EndpointConfig {
            max_body_size: 40,
            ..Default::default()
        },
        7,
    );
    let id = c.send_request(t(0), addr(SERVER), Message::request(Code::GET, "/r"));
    let req = decode(&drain(&mut c)[0]);
    let data = body(64, 1);
    c.handle_datagram(t(1), addr(SERVER), &block_resp(&req, 0, true, 0, b"A", &data).encode());
    let r1 = decode(&drain(&mut c)[0]);
    c.handle_datagram(t(2), addr(SERVER), &block_resp(&r1, 1, true, 0, b"A", &data).encode());
    let r2 = decode(&drain(&mut c)[0]);
    c.handle_datagram(t(3), addr(SERVER), &block_resp(&r2, 2, true, 0, b"A", &data).encode());
    assert!(drain(&mut c).is_empty());
    assert_eq!(
        events(&mut c),
        vec![Event::BlockwiseFailed {
            id,
            peer: addr(SERVER),
            error: BlockwiseError::TooLarge
        }]
    );
}

#[test]
fn manual_block2_request_is_passed_through() {
    // The application asks for block 3 itself: the endpoint delivers that block and fetches nothing.
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 1);
    let mut req = Message::request(Code::GET, "/r");
    req.set_block2(Block::new(3, false, 0).unwrap());
    let id = c.send_request(t(0), addr(SERVER), req);
    let req = decode(&drain(&mut c)[0]);
    let data = body(100, 1);
    c.handle_datagram(t(1), addr(SERVER), &block_resp(&req, 3, true, 0, b"A", &data).encode());
    assert!(drain(&mut c).is_empty());
    assert!(matches!(&events(&mut c)[..], [Event::Response { id: i, message, .. }]
        if *i == id && message.block2().map(|b| b.num) == Some(3)));
}

// ------------------------------------------------------------------ Block1

#[test]
fn block1_upload_is_transparent_to_both_applications() {
    let data = body(5000, 5);
    let mut sim = two_nodes(
        NetConfig::default(),
        4,
        EndpointConfig::default(),
        EndpointConfig::default(),
    );
    sim.set_handler(addr(SERVER), handler(Vec::new(), false));
    let req = Message::request(Code::PUT, "/5/0/0")
        .with_content_format(42)
        .with_payload(data.clone());
    let id = sim.send_request(addr(CLIENT), addr(SERVER), req);
    sim.run_until(t(10_000));
    let (rid, resp) = only_response(&sim);
    assert_eq!(rid, id);
    assert_eq!((resp.code, resp.payload.as_slice()), (Code::CHANGED, &b"5000"[..]));
    assert_eq!(resp.block1(), None, "block options are not shown");
    let seen = app_requests(&sim);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].payload, data);
    assert_eq!((seen[0].block1(), seen[0].size1()), (None, None));
    assert_eq!(seen[0].content_format(), Some(42));
    // On the wire.
    let up: Vec<(u32, bool, usize)> = sent_by(&sim, addr(CLIENT))
        .iter()
        .map(|m| {
            let b = m.block1().unwrap();
            (b.num, b.more, m.payload.len())
        })
        .collect();
    assert_eq!(
        up,
        vec![
            (0, true, 1024),
            (1, true, 1024),
            (2, true, 1024),
            (3, true, 1024),
            (4, false, 904)
        ]
    );
    assert_eq!(sent_by(&sim, addr(CLIENT))[0].size1(), Some(5000));
    let down: Vec<(Code, Option<Block>)> = sent_by(&sim, addr(SERVER))
        .iter()
        .map(|m| (m.code, m.block1()))
        .collect();
    assert_eq!(down.len(), 5);
    for (i, (code, b)) in down.iter().enumerate().take(4) {
        assert_eq!(
            (*code, *b),
            (Code::CONTINUE, Some(Block::new(i as u32, true, 6).unwrap()))
        );
    }
    assert_eq!(down[4], (Code::CHANGED, Some(Block::new(4, false, 6).unwrap())));
}

#[test]
fn block1_client_honours_smaller_size_from_server() {
    let data = body(3000, 6);
    let mut sim = two_nodes(NetConfig::default(), 5, EndpointConfig::default(), cfg_block(256));
    sim.set_handler(addr(SERVER), handler(Vec::new(), true));
    sim.send_request(
        addr(CLIENT),
        addr(SERVER),
        Message::request(Code::POST, "/5/0/0").with_payload(data.clone()),
    );
    sim.run_until(t(10_000));
    assert_eq!(only_response(&sim).1.payload, data, "the echo came back block-wise too");
    let up: Vec<(u32, u8, usize)> = sent_by(&sim, addr(CLIENT))
        .iter()
        .filter_map(|m| m.block1().map(|b| (b.num, b.szx, m.payload.len())))
        .collect();
    // Block 0 at 1024 bytes, then 256-byte blocks continuing at offset 1024 (num 4).
    assert_eq!(up[0], (0, 6, 1024));
    assert_eq!(up[1], (4, 4, 256));
    assert_eq!(up.last().copied(), Some((11, 4, 3000 - 11 * 256)));
    assert_eq!(up.len(), 1 + 8);
}

#[test]
fn block1_and_block2_combined() {
    let data = body(2500, 7);
    let mut sim = two_nodes(NetConfig::default(), 6, cfg_block(512), EndpointConfig::default());
    sim.set_handler(addr(SERVER), handler(Vec::new(), true));
    sim.send_request(
        addr(CLIENT),
        addr(SERVER),
        Message::request(Code::POST, "/echo").with_payload(data.clone()),
    );
    sim.run_until(t(10_000));
    let (_, resp) = only_response(&sim);
    assert_eq!(resp.payload, data);
    assert_eq!((resp.block1(), resp.block2()), (None, None));
    let client_msgs = sent_by(&sim, addr(CLIENT));
    // 5 Block1 blocks of 512, then Block2 follow-ups without payload and without Block1 (RFC 7959 §3.3).
    assert_eq!(client_msgs.iter().filter(|m| m.block1().is_some()).count(), 5);
    let follow: Vec<&Message> = client_msgs.iter().filter(|m| m.block2().is_some()).collect();
    assert_eq!(
        follow.len(),
        2,
        "the response came in 1024-byte blocks: 0 with the last upload, then 1 and 2"
    );
    assert!(follow.iter().all(|m| m.payload.is_empty() && m.code == Code::POST));
    assert_eq!(app_requests(&sim).len(), 1);
}

/// A Block1 block as a foreign client would send it.
fn b1_block(mid: u16, num: u32, more: bool, szx: u8, data: &[u8]) -> Message {
    let size = 16usize << szx;
    let start = (num as usize * size).min(data.len());
    let end = (start + size).min(data.len());
    let mut m = Message::request(Code::PUT, "/5/0/0").with_payload(data[start..end].to_vec());
    m.message_id = mid;
    m.token = Token::try_from_slice(&mid.to_be_bytes()).unwrap();
    m.set_block1(Block::new(num, more, szx).unwrap());
    m
}

fn answer(s: &mut Endpoint, now: u64, m: &Message) -> Message {
    s.handle_datagram(t(now), addr(CLIENT), &m.encode());
    let tx = drain(s);
    assert_eq!(tx.len(), 1, "one answer to {m:?}");
    decode(&tx[0])
}

#[test]
fn block1_out_of_order_or_missing_start_gets_4_08() {
    let mut s = Endpoint::with_seed(EndpointConfig::default(), 1);
    let data = body(100, 1);
    // No block 0 seen.
    assert_eq!(
        answer(&mut s, 0, &b1_block(1, 1, true, 0, &data)).code,
        Code::REQUEST_ENTITY_INCOMPLETE
    );
    // Block 0, then block 2 (block 1 missing).
    assert_eq!(answer(&mut s, 1, &b1_block(2, 0, true, 0, &data)).code, Code::CONTINUE);
    let r = answer(&mut s, 2, &b1_block(3, 2, true, 0, &data));
    assert_eq!(
        (r.code, r.token),
        (Code::REQUEST_ENTITY_INCOMPLETE, Token::try_from_slice(&[0, 3]).unwrap())
    );
    // The transfer was dropped: block 1 now is out of order too.
    assert_eq!(
        answer(&mut s, 3, &b1_block(4, 1, true, 0, &data)).code,
        Code::REQUEST_ENTITY_INCOMPLETE
    );
    // A short non-final block is a bad request.
    assert_eq!(answer(&mut s, 4, &b1_block(5, 0, true, 0, &data)).code, Code::CONTINUE);
    let mut short = b1_block(6, 1, true, 0, &data);
    short.payload.truncate(10);
    assert_eq!(answer(&mut s, 5, &short).code, Code::BAD_REQUEST);
    assert!(events(&mut s).is_empty(), "the application saw none of it");
    // A repeated block (new Message ID) is accepted, and the upload completes.
    assert_eq!(answer(&mut s, 6, &b1_block(7, 0, true, 0, &data)).code, Code::CONTINUE);
    assert_eq!(answer(&mut s, 7, &b1_block(8, 1, true, 0, &data)).code, Code::CONTINUE);
    assert_eq!(answer(&mut s, 8, &b1_block(9, 1, true, 0, &data)).code, Code::CONTINUE);
    let mut mid = 10;
    for num in 2..6 {
        assert_eq!(
            answer(&mut s, 9, &b1_block(mid, num, true, 0, &data)).code,
            Code::CONTINUE
        );
        mid += 1;
    }
    s.handle_datagram(t(10), addr(CLIENT), &b1_block(mid, 6, false, 0, &data).encode());
    match &events(&mut s)[..] {
        [Event::IncomingRequest { request, .. }] => assert_eq!(request.payload, data),
        other => panic!("{other:?}"),
    }
}

#[test]
fn block1_too_large_gets_4_13_with_size1() {
    let cfg = EndpointConfig {
        max_body_size: 100,
        ..Default::default()
    };
    let mut s = Endpoint::with_seed(cfg, 1);
    let data = body(200, 1);
    // Announced in Size1 on block 0.
    let mut first = b1_block(1, 0, true, 0, &data);
    first.set_size1(200);
    let r = answer(&mut s, 0, &first);
    assert_eq!((r.code, r.size1()), (Code::REQUEST_ENTITY_TOO_LARGE, Some(100)));
    // Not announced: noticed when the body grows past the limit.
    let mut mid = 10;
    for num in 0..6 {
        assert_eq!(
            answer(&mut s, 1, &b1_block(mid, num, true, 0, &data)).code,
            Code::CONTINUE
        );
        mid += 1;
    }
    let r = answer(&mut s, 2, &b1_block(mid, 6, true, 0, &data));
    assert_eq!((r.code, r.size1()), (Code::REQUEST_ENTITY_TOO_LARGE, Some(100)));
    assert!(events(&mut s).is_empty());

    // Our client receives the 4.13 as the response.
    let mut sim = two_nodes(
        NetConfig::default(),
        8,
        cfg_block(16),
        EndpointConfig {
            max_body_size: 100,
            ..Default::default()
        },
    );
    sim.set_handler(addr(SERVER), handler(Vec::new(), false));
    sim.send_request(
        addr(CLIENT),
        addr(SERVER),
        Message::request(Code::PUT, "/x").with_payload(data),
    );
    sim.run_until(t(10_000));
    let (_, resp) = only_response(&sim);
    assert_eq!((resp.code, resp.size1()), (Code::REQUEST_ENTITY_TOO_LARGE, Some(100)));
    assert_eq!(
        sent_by(&sim, addr(CLIENT)).len(),
        1,
        "Size1 on block 0 let the server refuse at once"
    );
}

#[test]
fn block1_client_restarts_smaller_after_4_13_with_block1() {
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 1);
    let data = body(2000, 1);
    let id = c.send_request(
        t(0),
        addr(SERVER),
        Message::request(Code::PUT, "/x").with_payload(data.clone()),
    );
    let b0 = decode(&drain(&mut c)[0]);
    assert_eq!(b0.block1(), Some(Block::new(0, true, 6).unwrap()));
    let mut r = Message::response_to(&b0, Code::REQUEST_ENTITY_TOO_LARGE);
    r.set_block1(Block::new(0, false, 4).unwrap());
    c.handle_datagram(t(1), addr(SERVER), &r.encode());
    let again = decode(&drain(&mut c)[0]);
    assert_eq!(again.block1(), Some(Block::new(0, true, 4).unwrap()));
    assert_eq!(again.payload, data[..256]);
    assert!(events(&mut c).is_empty());
    assert_eq!(c.outstanding(), 1);
    let _ = id;
}

#[test]
fn block1_partial_upload_expires_after_exchange_lifetime() {
    let mut s = Endpoint::with_seed(EndpointConfig::default(), 1);
    let data = body(64, 1);
    assert_eq!(answer(&mut s, 0, &b1_block(1, 0, true, 0, &data)).code, Code::CONTINUE);
    assert_eq!(
        answer(&mut s, 1000, &b1_block(2, 1, true, 0, &data)).code,
        Code::CONTINUE
    );
    // Expiry runs from the last block; the dedup entries of both blocks expire earlier or at the same time.
    assert_eq!(s.poll_timeout(), Some(t(247_000)));
    s.handle_timeout(t(247_000));
    assert_eq!(s.poll_timeout(), Some(t(248_000)));
    s.handle_timeout(t(248_000));
    assert_eq!(s.poll_timeout(), None, "partial upload dropped");
    assert_eq!(
        answer(&mut s, 248_001, &b1_block(3, 2, true, 0, &data)).code,
        Code::REQUEST_ENTITY_INCOMPLETE
    );
}

// ------------------------------------------------------------------ Observe + Block2

#[test]
fn observe_with_block2_registration_and_notifications() {
    let mut sim = two_nodes(NetConfig::default(), 9, EndpointConfig::default(), cfg_block(64));
    let first = body(150, 1);
    let f = first.clone();
    sim.set_handler(
        addr(SERVER),
        Box::new(move |_, req: &Message| {
            let mut r = Message::response_to(req, Code::CONTENT).with_payload(f.clone());
            if req.observe() == Some(0) {
                r.set_observe(0);
            }
            Some(r)
        }),
    );
    let mut req = Message::request(Code::GET, "/3/0");
    req.set_observe(0);
    let id = sim.send_request(addr(CLIENT), addr(SERVER), req);
    sim.run_until(t(5_000));
    let (rid, resp) = only_response(&sim);
    assert_eq!(
        (rid, resp.payload.clone(), resp.observe()),
        (id, first.clone(), Some(0))
    );
    assert!(sim.endpoint(addr(CLIENT)).is_observing(id));
    let token = app_requests(&sim)[0].token;
    assert_eq!(resp.token, token);
    // Follow-ups carried no Observe and were answered from the cache.
    assert_eq!(app_requests(&sim).len(), 1);
    assert!(sent_by(&sim, addr(CLIENT))
        .iter()
        .skip(1)
        .all(|m| m.observe().is_none()));
    sim.take_events();
    sim.net.log.clear();

    // Large notifications: block 0 in the notification, the rest fetched by the observer.
    for (i, n) in [(1u8, 200usize), (2, 64), (3, 129)] {
        let data = body(n, 10 + i);
        let msg = Message::new(MessageType::Non, Code::CONTENT)
            .with_token(token)
            .with_payload(data.clone());
        sim.send_notification(addr(SERVER), addr(CLIENT), msg).unwrap();
        sim.run_for(2_000);
        let evs = sim.take_events();
        let notes: Vec<&Message> = evs
            .iter()
            .filter_map(|e| match &e.2 {
                Event::Notification { id: i, message, .. } if *i == id => Some(message),
                _ => None,
            })
            .collect();
        assert_eq!(notes.len(), 1, "{evs:?}");
        assert_eq!(notes[0].payload, data, "notification {i}");
        assert_eq!(notes[0].observe(), Some(u32::from(i)));
        assert_eq!((notes[0].block2(), notes[0].token), (None, token));
        assert!(!evs.iter().any(|e| matches!(e.2, Event::IncomingRequest { .. })));
    }
    let first_note = sim.net.log[0].message().unwrap();
    assert_eq!(first_note.block2(), Some(Block::new(0, true, 2).unwrap()));
    assert_eq!(first_note.observe(), Some(1));
}

#[test]
fn observe_block2_newer_notification_supersedes_an_unfinished_fetch() {
    // Direct driving: the client gets block 0 of notification 1, then (before fetching the rest) block 0 of
    // notification 2 with another ETag. Only notification 2 is delivered.
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 3);
    let mut req = Message::request(Code::GET, "/3/0");
    req.set_observe(0);
    let id = c.send_request(t(0), addr(SERVER), req);
    let req = decode(&drain(&mut c)[0]);
    let mut r = Message::response_to(&req, Code::CONTENT).with_payload("small");
    r.set_observe(1);
    c.handle_datagram(t(1), addr(SERVER), &r.encode());
    events(&mut c);
    let notif = |mid: u16, seq: u32, etag: &[u8], data: &[u8]| {
        let mut n = Message::new(MessageType::Non, Code::CONTENT)
            .with_token(req.token)
            .with_payload(data[..16].to_vec());
        n.message_id = mid;
        n.set_observe(seq);
        n.set_etag(etag);
        n.set_block2(Block::new(0, true, 0).unwrap());
        n
    };
    let d1 = body(40, 1);
    let d2 = body(40, 2);
    c.handle_datagram(t(2), addr(SERVER), &notif(100, 2, b"1", &d1).encode());
    let f1 = decode(&drain(&mut c)[0]);
    assert_eq!((f1.block2().map(|b| b.num), f1.observe()), (Some(1), None));
    assert_ne!(f1.token, req.token);
    c.handle_datagram(t(3), addr(SERVER), &notif(101, 3, b"2", &d2).encode());
    let f2 = decode(&drain(&mut c)[0]);
    // The answer to the first fetch now matches nothing.
    c.handle_datagram(t(4), addr(SERVER), &block_resp(&f1, 1, true, 0, b"1", &d1).encode());
    assert!(drain(&mut c).is_empty());
    c.handle_datagram(t(5), addr(SERVER), &block_resp(&f2, 1, true, 0, b"2", &d2).encode());
    let f2b = decode(&drain(&mut c)[0]);
    c.handle_datagram(t(6), addr(SERVER), &block_resp(&f2b, 2, false, 0, b"2", &d2).encode());
    match &events(&mut c)[..] {
        [Event::Notification { id: i, message, .. }] => {
            assert_eq!(*i, id);
            assert_eq!((message.payload.clone(), message.observe()), (d2, Some(3)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.outstanding(), 0);
}

// ------------------------------------------------------------------ lossy network

fn lossy() -> NetConfig {
    NetConfig {
        loss: 0.2,
        duplicate: 0.2,
        min_delay_ms: 1,
        max_delay_ms: 400,
    }
}

#[test]
fn sim_block1_and_block2_under_loss_and_duplication() {
    let mut ok = 0;
    let seeds = 0..12u64;
    let total = seeds.clone().count();
    for seed in seeds {
        let up = body(6000 + seed as usize * 37, seed as u8);
        let down = body(7000 + seed as usize * 13, seed as u8 ^ 0x55);
        let mut sim = two_nodes(lossy(), seed, cfg_block(512), EndpointConfig::default());
        sim.set_handler(addr(SERVER), handler(down.clone(), false));
        let put = sim.send_request(
            addr(CLIENT),
            addr(SERVER),
            Message::request(Code::PUT, "/up").with_payload(up.clone()),
        );
        let get = sim.send_request(addr(CLIENT), addr(SERVER), Message::request(Code::GET, "/down"));
        sim.run_until(t(2_000_000));
        let mut outcomes = HashMap::new();
        for e in sim.events_at(addr(CLIENT)) {
            let (id, what) = match e {
                Event::Response { id, message, .. } => {
                    if id == put {
                        assert_eq!(message.payload, up.len().to_string().into_bytes(), "seed {seed}");
                    } else {
                        assert_eq!(id, get);
                        assert_eq!(message.payload, down, "seed {seed}: whole body, in order");
                    }
                    (id, true)
                }
                Event::Timeout { id } => (id, false),
                other => panic!("seed {seed}: {other:?}"),
            };
            assert!(
                outcomes.insert(id, what).is_none(),
                "seed {seed}: one outcome per request"
            );
        }
        assert_eq!(outcomes.len(), 2, "seed {seed}");
        // The server application saw each request at most once, and an upload only when complete.
        let seen = app_requests(&sim);
        assert!(seen.iter().filter(|r| r.code == Code::PUT).all(|r| r.payload == up));
        assert!(seen.iter().filter(|r| r.code == Code::PUT).count() <= 1, "seed {seed}");
        assert!(seen.iter().filter(|r| r.code == Code::GET).count() <= 1, "seed {seed}");
        ok += outcomes.values().filter(|v| **v).count();
        assert!(sim.net.log.iter().any(|r| r.dropped), "seed {seed}: loss happened");
        assert!(
            sim.net.log.iter().any(|r| r.duplicated),
            "seed {seed}: duplication happened"
        );
        sim.run_until(t(3_000_000));
        for a in [addr(CLIENT), addr(SERVER)] {
            assert_eq!(sim.endpoint(a).outstanding(), 0, "seed {seed}");
            assert_eq!(sim.endpoint(a).poll_timeout(), None, "seed {seed}: all state expired");
        }
    }
    // Each block has 5 tries at a 36 % per-try failure rate: nearly all transfers complete.
    assert!(ok >= 2 * total - 3, "only {ok} of {} transfers completed", 2 * total);
}

#[test]
fn sim_large_notifications_under_loss() {
    for seed in 0..6u64 {
        let mut sim = two_nodes(lossy(), seed, EndpointConfig::default(), cfg_block(128));
        sim.set_handler(
            addr(SERVER),
            Box::new(|_, req: &Message| {
                let mut r = Message::response_to(req, Code::CONTENT).with_payload(body(10, 0));
                r.set_observe(0);
                Some(r)
            }),
        );
        let mut req = Message::request(Code::GET, "/3/0");
        req.set_observe(0);
        let id = sim.send_request(addr(CLIENT), addr(SERVER), req);
        sim.run_until(t(100_000));
        let Some(token) = app_requests(&sim).first().map(|r| r.token) else {
            continue;
        };
        for i in 1..=10u8 {
            let msg = Message::new(MessageType::Con, Code::CONTENT)
                .with_token(token)
                .with_payload(body(1000 + usize::from(i), i));
            let _ = sim.send_notification(addr(SERVER), addr(CLIENT), msg);
            // A newer notification supersedes a fetch still running: leave time for retransmissions.
            sim.run_for(40_000);
        }
        sim.run_for(300_000);
        let got: Vec<(u32, Vec<u8>)> = sim
            .events_at(addr(CLIENT))
            .into_iter()
            .filter_map(|e| match e {
                Event::Notification { id: i, message, .. } if i == id => {
                    Some((message.observe().unwrap(), message.payload))
                }
                _ => None,
            })
            .collect();
        for (seq, payload) in &got {
            let i = *seq as u8;
            assert_eq!(
                payload,
                &body(1000 + usize::from(i), i),
                "seed {seed}: notification {seq} intact"
            );
        }
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "seed {seed}: in order");
        assert!(got.len() >= 7, "seed {seed}: only {} of 10 notifications", got.len());
    }
}

// ------------------------------------------------------------------ property: any size survives

fn round_trip(size: usize, client_block: usize, server_block: usize, seed: u64) -> Result<(), String> {
    let up = body(size, seed as u8);
    let mut sim = two_nodes(
        NetConfig::default(),
        seed,
        cfg_block(client_block),
        cfg_block(server_block),
    );
    sim.set_handler(addr(SERVER), handler(Vec::new(), true));
    sim.send_request(
        addr(CLIENT),
        addr(SERVER),
        Message::request(Code::POST, "/echo").with_payload(up.clone()),
    );
    sim.run_until(t(600_000));
    let seen = app_requests(&sim);
    if seen.len() != 1 || seen[0].payload != up {
        return Err(format!("server saw {} requests", seen.len()));
    }
    let (_, resp) = only_response(&sim);
    if resp.payload != up {
        return Err(format!(
            "echo of {} bytes came back as {}",
            up.len(),
            resp.payload.len()
        ));
    }
    // A GET of the same size goes through Block2 alone.
    let mut sim = two_nodes(
        NetConfig::default(),
        seed,
        cfg_block(client_block),
        cfg_block(server_block),
    );
    sim.set_handler(addr(SERVER), handler(up.clone(), false));
    sim.send_request(addr(CLIENT), addr(SERVER), Message::request(Code::GET, "/x"));
    sim.run_until(t(600_000));
    if only_response(&sim).1.payload != up {
        return Err("block2 body differs".into());
    }
    Ok(())
}

#[test]
fn boundary_sizes_survive() {
    for size in [0, 1, 15, 16, 17, 1023, 1024, 1025, 2048, 4097] {
        round_trip(size, 1024, 1024, 1).unwrap();
        round_trip(size, 16, 1024, 2).unwrap();
        round_trip(size, 1024, 32, 3).unwrap();
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Any payload size 0..20000 survives a Block1 upload (echoed back with Block2) and a Block2 download,
    /// whatever block sizes the two sides prefer.
    #[test]
    fn arbitrary_sizes_survive_block1_and_block2(
        size in 0usize..20000,
        client_exp in 0u32..7,
        server_exp in 0u32..7,
        seed in 0u64..1000,
    ) {
        let r = round_trip(size, 16 << client_exp, 16 << server_exp, seed);
        proptest::prop_assert!(r.is_ok(), "{:?}", r);
    }
}

#[test]
fn block_option_values_on_the_wire_are_minimal() {
    // Sanity check on the options our endpoint emits: Size1 only on block 0, Block1 removed from follow-ups.
    let mut c = Endpoint::with_seed(cfg_block(16), 1);
    c.send_request(
        t(0),
        addr(SERVER),
        Message::request(Code::PUT, "/x").with_payload(body(40, 1)),
    );
    let b0 = decode(&drain(&mut c)[0]);
    assert_eq!(b0.size1(), Some(40));
    let mut cont = Message::response_to(&b0, Code::CONTINUE);
    cont.set_block1(Block::new(0, true, 0).unwrap());
    c.handle_datagram(t(1), addr(SERVER), &cont.encode());
    let b1 = decode(&drain(&mut c)[0]);
    assert_eq!((b1.size1(), b1.block1().map(|b| b.num)), (None, Some(1)));
    assert!(!b1.options.contains(opt::BLOCK2));
}

proptest::proptest! {
    /// Arbitrary Block1/Block2/Size1 values, payload sizes and timing never panic the server side, always get
    /// an answer for a CON request, and never make it emit an undecodable datagram.
    #[test]
    fn server_block_handling_never_panics(
        reqs in proptest::collection::vec(
            (
                0u64..100_000,
                proptest::prelude::any::<bool>(),
                proptest::option::of((0u32..(1 << 20), proptest::prelude::any::<bool>(), 0u8..7)),
                proptest::option::of((0u32..(1 << 20), 0u8..7)),
                proptest::option::of(proptest::prelude::any::<u32>()),
                0usize..1100,
                0usize..5000,
            ),
            0..40,
        )
    ) {
        let mut s = Endpoint::with_seed(
            EndpointConfig { block_size: 64, max_body_size: 3000, ..Default::default() },
            9,
        );
        let mut now = 0;
        for (i, (dt, put, b1, b2, size1, len, resp_len)) in reqs.into_iter().enumerate() {
            now += dt;
            let mut m = Message::request(if put { Code::PUT } else { Code::GET }, if i % 2 == 0 { "/a" } else { "/b" })
                .with_payload(vec![7u8; len]);
            m.message_id = i as u16;
            m.token = Token::from_u64(i as u64);
            if let Some((num, more, szx)) = b1 {
                m.set_block1(Block::new(num, more, szx).unwrap());
            }
            if let Some((num, szx)) = b2 {
                m.set_block2(Block::new(num, false, szx).unwrap());
            }
            if let Some(v) = size1 {
                m.set_size1(v);
            }
            s.handle_datagram(t(now), addr(CLIENT), &m.encode());
            while let Some(ev) = s.poll_event() {
                if let Event::IncomingRequest { responder, .. } = ev {
                    let r = Message::new(MessageType::Ack, Code::CONTENT).with_payload(vec![1u8; resp_len]);
                    proptest::prop_assert!(s.respond(t(now), responder, r).is_ok());
                }
            }
            let out = drain(&mut s);
            proptest::prop_assert_eq!(out.len(), 1, "one answer per CON request");
            for tx in out {
                let a = Message::decode(&tx.bytes);
                proptest::prop_assert!(a.is_ok());
                let a = a.unwrap();
                proptest::prop_assert_eq!((a.mtype, a.message_id, a.token), (MessageType::Ack, i as u16, m.token));
                proptest::prop_assert!(a.payload.len() <= 64, "blocks never exceed the configured size");
            }
            if s.poll_timeout().is_some_and(|x| x <= t(now)) {
                s.handle_timeout(t(now));
            }
        }
    }
}
