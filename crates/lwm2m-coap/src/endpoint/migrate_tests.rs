//! Peer migration tests: a device behind a NAT whose public address changes from `A` to `B` while the server
//! (the observer) keeps its observations, exchanges in flight and deduplication state. Time is the endpoint's
//! virtual clock (plain [`Timestamp`]s).

use super::test_util::*;
use super::*;

/// The server.
const SRV: u16 = 5683;
/// The device's public address before the NAT rebind...
const A: u16 = 40001;
/// ...and after it.
const B: u16 = 40002;

/// Server → device: everything the server sends must go to `to`; the device receives it from the server.
fn down(now: Timestamp, srv: &mut Endpoint, to: SocketAddr, dev: &mut Endpoint) -> Vec<Message> {
    drain(srv)
        .into_iter()
        .map(|tx| {
            assert_eq!(tx.peer, to, "the server sends to the device's current address");
            dev.handle_datagram(now, addr(SRV), &tx.bytes);
            decode(&tx)
        })
        .collect()
}

/// Device → server, arriving from `from` (the NAT's public address of the moment).
fn up(now: Timestamp, dev: &mut Endpoint, from: SocketAddr, srv: &mut Endpoint) -> Vec<Message> {
    drain(dev)
        .into_iter()
        .map(|tx| {
            assert_eq!(tx.peer, addr(SRV));
            srv.handle_datagram(now, from, &tx.bytes);
            decode(&tx)
        })
        .collect()
}

fn observe_get(path: &str) -> Message {
    let mut m = Message::request(Code::GET, path);
    m.set_observe(0);
    m
}

fn pair() -> (Endpoint, Endpoint) {
    (
        Endpoint::with_seed(EndpointConfig::default(), 11),
        Endpoint::with_seed(EndpointConfig::default(), 22),
    )
}

/// The server observes `path` on the device at `at`. Returns (request id, token).
fn establish(srv: &mut Endpoint, dev: &mut Endpoint, at: SocketAddr, path: &str, now: u64) -> (RequestId, Token) {
    let id = srv.send_request(t(now), at, observe_get(path));
    down(t(now + 1), srv, at, dev);
    let Some(Event::IncomingRequest { request, responder, .. }) = dev.poll_event() else {
        panic!("the device got no request")
    };
    let mut r = Message::response_to(&request, Code::CONTENT).with_payload("20");
    r.set_observe(1);
    dev.respond(t(now + 1), responder, r).unwrap();
    up(t(now + 2), dev, at, srv);
    assert!(matches!(&events(srv)[..], [Event::Response { id: i, .. }] if *i == id));
    assert!(srv.is_observing(id));
    (id, request.token)
}

/// The device notifies `payload` on `token` (CON) and the datagram arrives from `from`.
fn notify(now: u64, dev: &mut Endpoint, srv: &mut Endpoint, from: SocketAddr, token: Token, payload: &str) {
    let n = Message::new(MessageType::Con, Code::CONTENT)
        .with_token(token)
        .with_payload(payload);
    dev.send_notification(t(now), addr(SRV), n).unwrap();
    up(t(now + 1), dev, from, srv);
}

/// A hand-made CON notification (the device's state is not needed).
fn raw_notification(token: Token, mid: u16, seq: u32, payload: &str) -> Vec<u8> {
    let mut n = Message::new(MessageType::Con, Code::CONTENT)
        .with_token(token)
        .with_payload(payload);
    n.message_id = mid;
    n.set_observe(seq);
    n.encode()
}

/// (request id, peer, payload) of every notification event.
fn notified(evs: &[Event]) -> Vec<(RequestId, SocketAddr, String)> {
    evs.iter()
        .filter_map(|e| match e {
            Event::Notification { id, peer, message } => {
                Some((*id, *peer, String::from_utf8_lossy(&message.payload).into_owned()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn after_migrate_notifications_from_the_new_address_reach_the_same_observation_and_the_old_one_is_unmatched() {
    let (mut srv, mut dev) = pair();
    let (id, token) = establish(&mut srv, &mut dev, addr(A), "/3303/0/5700", 0);
    notify(10, &mut dev, &mut srv, addr(A), token, "21");
    assert_eq!(notified(&events(&mut srv)), vec![(id, addr(A), "21".into())]);
    down(t(12), &mut srv, addr(A), &mut dev);
    assert!(matches!(&events(&mut dev)[..], [Event::Delivered { .. }]));

    // The NAT rebinds. Before the migration a notification from B matches nothing and gets RST (the gap).
    srv.handle_datagram(t(20), addr(B), &raw_notification(token, 0x7001, 50, "lost"));
    let out = drain(&mut srv);
    assert_eq!((out.len(), out[0].peer), (1, addr(B)));
    assert_eq!(decode(&out[0]), Message::reset(0x7001));
    assert!(notified(&events(&mut srv)).is_empty());
    let unmatched = srv.stats().unmatched;

    let moved = srv.migrate_peer(t(30), addr(A), addr(B));
    assert_eq!(
        moved,
        PeerMigration {
            observations: vec![id],
            // The dedup entry of the CON notification "21" came along.
            other: 1,
            ..PeerMigration::default()
        }
    );
    assert!(srv.is_observing(id));
    assert!(drain(&mut srv).is_empty(), "migrating sends nothing");

    // The device's next notification arrives from B: same observation (request id), ACKed to B.
    notify(40, &mut dev, &mut srv, addr(B), token, "22");
    assert_eq!(notified(&events(&mut srv)), vec![(id, addr(B), "22".into())]);
    let acks = down(t(42), &mut srv, addr(B), &mut dev);
    assert_eq!(acks.iter().map(|m| m.mtype).collect::<Vec<_>>(), vec![MessageType::Ack]);
    assert!(matches!(&events(&mut dev)[..], [Event::Delivered { .. }]));

    // One from A is no longer matched: RST to A, nothing delivered.
    srv.handle_datagram(t(50), addr(A), &raw_notification(token, 0x7002, 60, "stale address"));
    let out = drain(&mut srv);
    assert_eq!((out.len(), out[0].peer), (1, addr(A)));
    assert_eq!(decode(&out[0]), Message::reset(0x7002));
    assert!(notified(&events(&mut srv)).is_empty());
    assert_eq!(srv.stats().unmatched, unmatched + 1);

    // An active cancel goes to B with the observation's token.
    srv.cancel_observe(t(60), id).unwrap();
    let out = drain(&mut srv);
    assert_eq!(out[0].peer, addr(B));
    assert_eq!((decode(&out[0]).token, decode(&out[0]).observe()), (token, Some(1)));
}

#[test]
fn migrating_onto_an_address_with_relations_merges_without_losing_any() {
    let (mut srv, mut dev) = pair();
    let (id_a, tok_a) = establish(&mut srv, &mut dev, addr(A), "/3303/0/5700", 0);
    // B already has an observation (e.g. restored after a restart) ...
    let tok_b = Token::from_u64(0xB0B0);
    let id_b = srv.restore_observation(t(5), addr(B), tok_b, observe_get("/3/0/9"));
    // ... and both addresses hold one on the same token: that one cannot move and stays on A.
    let same = Token::from_u64(0x5A5E);
    let same_a = srv.restore_observation(t(5), addr(A), same, observe_get("/3/0/10"));
    let same_b = srv.restore_observation(t(5), addr(B), same, observe_get("/3/0/11"));

    let moved = srv.migrate_peer(t(10), addr(A), addr(B));
    assert_eq!(moved.observations, vec![id_a]);
    assert_eq!(moved.conflicts, 1);
    for id in [id_a, id_b, same_a, same_b] {
        assert!(srv.is_observing(id), "{id:?} lost");
    }

    let mut mid = 0x6000;
    let mut deliver = |srv: &mut Endpoint, now: u64, from: u16, token: Token, payload: &str| {
        mid += 1;
        srv.handle_datagram(
            t(now),
            addr(from),
            &raw_notification(token, mid, 100 + mid as u32, payload),
        );
        notified(&events(srv))
    };
    assert_eq!(deliver(&mut srv, 20, B, tok_a, "a"), vec![(id_a, addr(B), "a".into())]);
    assert_eq!(deliver(&mut srv, 21, B, tok_b, "b"), vec![(id_b, addr(B), "b".into())]);
    assert_eq!(
        deliver(&mut srv, 22, B, same, "s@B"),
        vec![(same_b, addr(B), "s@B".into())]
    );
    assert_eq!(
        deliver(&mut srv, 23, A, same, "s@A"),
        vec![(same_a, addr(A), "s@A".into())]
    );
    assert!(deliver(&mut srv, 24, A, tok_a, "gone").is_empty());
}

#[test]
fn migrating_an_unknown_peer_or_to_the_same_address_is_a_no_op() {
    let (mut srv, mut dev) = pair();
    let (id, token) = establish(&mut srv, &mut dev, addr(A), "/3303/0/5700", 0);
    let outstanding = srv.outstanding();
    let moved = srv.migrate_peer(t(10), addr(40009), addr(B));
    assert_eq!(moved, PeerMigration::default());
    assert!(moved.is_empty());
    assert!(srv.migrate_peer(t(10), addr(A), addr(A)).is_empty());
    assert!(srv.migrate_tokens(t(10), addr(A), addr(B), &[]).is_empty());
    assert!(drain(&mut srv).is_empty());
    assert_eq!(srv.outstanding(), outstanding);
    // Still observing on A; B knows nothing.
    notify(20, &mut dev, &mut srv, addr(A), token, "21");
    assert_eq!(notified(&events(&mut srv)), vec![(id, addr(A), "21".into())]);
    srv.handle_datagram(t(30), addr(B), &raw_notification(token, 0x1234, 99, "x"));
    assert_eq!(decode(&drain(&mut srv)[1]), Message::reset(0x1234));
}

#[test]
fn requests_in_flight_and_queued_continue_towards_the_new_address() {
    let (mut srv, mut dev) = pair();
    // NSTART 1: the second request waits for the first.
    let r1 = srv.send_request(t(0), addr(A), Message::request(Code::GET, "/3/0/0"));
    let r2 = srv.send_request(t(0), addr(A), Message::request(Code::GET, "/3/0/1"));
    let first = drain(&mut srv);
    assert_eq!(first.len(), 1, "NSTART 1");
    let first = decode(&first[0]);

    // The datagram was lost in the rebind; the server learns the new address.
    let moved = srv.migrate_peer(t(100), addr(A), addr(B));
    assert_eq!(moved.exchanges, vec![r1, r2]);
    assert_eq!(srv.outstanding(), 2);

    // The retransmission (virtual time) goes to B with the same Message ID and token.
    let at = srv.poll_timeout().expect("retransmission timer");
    srv.handle_timeout(at);
    let again = down(at, &mut srv, addr(B), &mut dev);
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].message_id, again[0].token), (first.message_id, first.token));
    assert_eq!(srv.stats().retransmissions, 1);

    // The device answers (from B): r1 completes, then r2 starts towards B.
    let Some(Event::IncomingRequest { request, responder, .. }) = dev.poll_event() else {
        panic!()
    };
    dev.respond(
        at,
        responder,
        Message::response_to(&request, Code::CONTENT).with_payload("Open Mobile Alliance"),
    )
    .unwrap();
    up(at.plus_millis(1), &mut dev, addr(B), &mut srv);
    let evs = events(&mut srv);
    assert!(
        matches!(&evs[..], [Event::Response { id, peer, .. }] if *id == r1 && *peer == addr(B)),
        "{evs:?}"
    );
    let second = down(at.plus_millis(2), &mut srv, addr(B), &mut dev);
    assert_eq!(second[0].uri_path_string(), "/3/0/1");
    let Some(Event::IncomingRequest { request, responder, .. }) = dev.poll_event() else {
        panic!()
    };
    dev.respond(at, responder, Message::response_to(&request, Code::CONTENT))
        .unwrap();
    up(at.plus_millis(3), &mut dev, addr(B), &mut srv);
    assert!(matches!(&events(&mut srv)[..], [Event::Response { id, .. }] if *id == r2));
    assert_eq!(srv.outstanding(), 0);

    // Nothing is left behind on A: a new request to A goes out at once.
    srv.send_request(at.plus_millis(4), addr(A), Message::request(Code::GET, "/3/0/2"));
    assert_eq!(drain(&mut srv).len(), 1);
}

#[test]
fn migration_merges_nstart_state_and_starts_what_may_start() {
    let (mut srv, _) = pair();
    // One request in flight to each address, one queued behind the one to A.
    let a1 = srv.send_request(t(0), addr(A), Message::request(Code::GET, "/1"));
    let a2 = srv.send_request(t(0), addr(A), Message::request(Code::GET, "/2"));
    let b1 = srv.send_request(t(0), addr(B), Message::request(Code::GET, "/3"));
    assert_eq!(drain(&mut srv).len(), 2);
    let moved = srv.migrate_peer(t(1), addr(A), addr(B));
    assert_eq!(moved.exchanges, vec![a1, a2]);
    // B now has two in flight (both were on the wire): a2 waits for both.
    assert!(drain(&mut srv).is_empty());
    let ack = |srv: &mut Endpoint, id: RequestId| {
        let mid = srv.exchanges.get(&id.0).unwrap().mid;
        let tok = srv.exchanges.get(&id.0).unwrap().token;
        let mut resp = Message::new(MessageType::Ack, Code::CONTENT).with_token(tok);
        resp.message_id = mid;
        srv.handle_datagram(t(2), addr(B), &resp.encode());
    };
    ack(&mut srv, b1);
    assert!(drain(&mut srv).is_empty(), "a1 still holds the NSTART slot");
    ack(&mut srv, a1);
    let out = drain(&mut srv);
    assert_eq!((out.len(), out[0].peer), (1, addr(B)));
    assert_eq!(decode(&out[0]).uri_path_string(), "/2");
    let evs = events(&mut srv);
    assert_eq!(evs.len(), 2);
    let _ = a2;
}

#[test]
fn duplicates_and_unanswered_requests_follow_the_peer() {
    let (mut srv, mut dev) = pair();
    // The device sends a CON request (e.g. a Send) from A; the server has not answered when the NAT rebinds.
    let _ = dev.send_request(t(0), addr(SRV), Message::request(Code::POST, "/dp").with_payload("x"));
    let sent = drain(&mut dev);
    srv.handle_datagram(t(1), addr(A), &sent[0].bytes);
    let Some(Event::IncomingRequest { responder, request, .. }) = srv.poll_event() else {
        panic!()
    };
    srv.migrate_peer(t(2), addr(A), addr(B));
    // The answer goes to B, piggybacked on the ACK of the request's Message ID.
    srv.respond(t(3), responder, Message::response_to(&request, Code::CHANGED))
        .unwrap();
    let out = drain(&mut srv);
    assert_eq!((out.len(), out[0].peer), (1, addr(B)));
    let ack = decode(&out[0]);
    assert_eq!(
        (ack.mtype, ack.message_id, ack.code),
        (MessageType::Ack, request.message_id, Code::CHANGED)
    );
    // The device retransmits the request (it missed the answer) from B: a duplicate, answered from the cache.
    srv.handle_datagram(t(4), addr(B), &sent[0].bytes);
    assert!(events(&mut srv).is_empty(), "the application sees the request once");
    assert_eq!(srv.stats().duplicates, 1);
    let out = drain(&mut srv);
    assert_eq!((out[0].peer, decode(&out[0])), (addr(B), ack));
    // The entry still expires on time (its expiry queue entry was renamed, not re-added).
    srv.handle_timeout(t(1).plus_millis(EndpointConfig::default().exchange_lifetime_ms));
    assert!(srv.dedup.is_empty());
    assert!(srv.dedup_con.is_empty());
}

#[test]
fn migrate_tokens_moves_only_the_listed_relations() {
    let (mut srv, mut dev) = pair();
    let (id1, tok1) = establish(&mut srv, &mut dev, addr(A), "/3303/0/5700", 0);
    let (id2, tok2) = establish(&mut srv, &mut dev, addr(A), "/3/0/9", 10);
    let moved = srv.migrate_tokens(t(20), addr(A), addr(B), &[tok1]);
    assert_eq!(moved.observations, vec![id1]);
    assert_eq!(
        (moved.other, moved.conflicts),
        (0, 0),
        "dedup state stays with a token-only migration"
    );
    let n = |srv: &mut Endpoint, now: u64, from: u16, token: Token, mid: u16| {
        srv.handle_datagram(t(now), addr(from), &raw_notification(token, mid, 9, "v"));
        let evs = notified(&events(srv));
        drain(srv);
        evs
    };
    assert_eq!(n(&mut srv, 30, B, tok1, 1), vec![(id1, addr(B), "v".into())]);
    assert_eq!(n(&mut srv, 31, A, tok2, 2), vec![(id2, addr(A), "v".into())]);
    assert!(n(&mut srv, 32, B, tok2, 3).is_empty());
    assert!(n(&mut srv, 33, A, tok1, 4).is_empty());
}

#[test]
fn a_notification_fetched_block_wise_completes_from_the_new_address() {
    let small = EndpointConfig {
        block_size: 16,
        ..EndpointConfig::default()
    };
    let mut srv = Endpoint::with_seed(EndpointConfig::default(), 11);
    let mut dev = Endpoint::with_seed(small, 22);
    let (id, token) = establish(&mut srv, &mut dev, addr(A), "/3/0", 0);
    // A 40-byte notification: block 0 arrives from A, the server asks A for block 1 ...
    let body = "0123456789abcdefghijklmnopqrstuvwxyzABCD";
    notify(10, &mut dev, &mut srv, addr(A), token, body);
    assert!(notified(&events(&mut srv)).is_empty());
    let fetch = drain(&mut srv);
    assert_eq!((fetch.len(), fetch[0].peer), (2, addr(A)), "ACK and the Block2 request");
    // ... which the rebind swallows. After the migration the retransmission goes to B.
    let moved = srv.migrate_peer(t(20), addr(A), addr(B));
    assert_eq!(
        (moved.observations.as_slice(), moved.exchanges.len()),
        ([id].as_slice(), 1)
    );
    let at = srv.poll_timeout().unwrap();
    srv.handle_timeout(at);
    let mut now = at;
    // Fetch to the end through B.
    for _ in 0..4 {
        let sent = down(now, &mut srv, addr(B), &mut dev);
        if sent.is_empty() {
            break;
        }
        up(now.plus_millis(1), &mut dev, addr(B), &mut srv);
        now = now.plus_millis(2);
    }
    assert_eq!(notified(&events(&mut srv)), vec![(id, addr(B), body.into())]);
    assert!(srv.is_observing(id));
}

#[test]
fn the_observed_side_keeps_numbering_for_a_moved_observer() {
    // Here the endpoint is observed (a device) and its observer moves.
    let (mut obs, mut dev) = pair();
    let (_, token) = establish(&mut obs, &mut dev, addr(SRV), "/3/0/13", 0);
    // `dev` saw the observer at SRV; say the observer's address changes to A.
    let moved = dev.migrate_peer(t(10), addr(SRV), addr(A));
    assert_eq!(moved.observers, vec![token]);
    assert!(dev.is_observed(addr(A), token));
    assert!(!dev.is_observed(addr(SRV), token));
    let n = Message::new(MessageType::Non, Code::CONTENT)
        .with_token(token)
        .with_payload("x");
    dev.send_notification(t(20), addr(A), n).unwrap();
    let out = drain(&mut dev);
    assert_eq!(out[0].peer, addr(A));
    assert_eq!(
        decode(&out[0]).observe(),
        Some(2),
        "continues after the registration's Observe 1"
    );
}
