//! Endpoint tests: direct unit tests on the state machine, and simulated-network tests in virtual time.

use super::test_util::*;
use super::*;
use crate::message::opt;
use crate::sim::{NetConfig, Sim};

const CLIENT: u16 = 5001;
const SERVER: u16 = 5683;

/// A random source that always returns the same value.
struct Fixed(u64);
impl RandomSource for Fixed {
    fn next_u64(&mut self) -> u64 {
        self.0
    }
}

fn get(path: &str) -> Message {
    Message::request(Code::GET, path)
}

/// Timestamps of datagrams from `from` in the simulation log.
fn send_times(sim: &Sim, from: SocketAddr) -> Vec<u64> {
    sim.net
        .log
        .iter()
        .filter(|r| r.datagram.from == from)
        .map(|r| r.at.0)
        .collect()
}

// ------------------------------------------------------------------ retransmission timing

fn retransmission_schedule(rng: Box<dyn RandomSource>) -> (Vec<u64>, Vec<(Timestamp, SocketAddr, Event)>) {
    let mut sim = Sim::new(NetConfig::default(), 1);
    sim.add(addr(CLIENT), Endpoint::with_rng(EndpointConfig::default(), rng));
    // No endpoint at SERVER: every request is lost.
    sim.send_request(addr(CLIENT), addr(SERVER), get("/3/0"));
    sim.run_until(t(200_000));
    (send_times(&sim, addr(CLIENT)), sim.take_events())
}

#[test]
fn retransmission_times_at_lower_bound() {
    // below_inclusive(1000) of 0 -> initial timeout exactly ACK_TIMEOUT = 2 s.
    let (times, evs) = retransmission_schedule(Box::new(Fixed(0)));
    assert_eq!(times, vec![0, 2_000, 6_000, 14_000, 30_000]);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].0, t(62_000));
    assert!(matches!(evs[0].2, Event::Timeout { .. }));
}

#[test]
fn retransmission_times_at_upper_bound_is_max_transmit_wait() {
    // 1000 % 1001 = 1000 -> initial timeout ACK_TIMEOUT * ACK_RANDOM_FACTOR = 3 s.
    let (times, evs) = retransmission_schedule(Box::new(Fixed(1000)));
    assert_eq!(times, vec![0, 3_000, 9_000, 21_000, 45_000]);
    assert_eq!(evs[0].0, t(93_000)); // MAX_TRANSMIT_WAIT
}

#[test]
fn retransmission_times_random_within_bounds_and_doubling() {
    let mut initials = std::collections::BTreeSet::new();
    for seed in 0..50 {
        let (times, evs) = retransmission_schedule(Box::new(SplitMix64::new(seed)));
        assert_eq!(times.len(), 5, "1 transmission + MAX_RETRANSMIT 4");
        let first = times[1];
        assert!((2000..=3000).contains(&first), "initial timeout {first}");
        initials.insert(first);
        for k in 1..4 {
            assert_eq!(times[k + 1] - times[k], first << k, "seed {seed}: gap {k} doubles");
        }
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].0, t(first * 31), "fails after the last (5th) timeout");
    }
    assert!(initials.len() > 20, "jitter is actually random: {initials:?}");
}

#[test]
fn retransmission_parameters_are_configurable() {
    let cfg = EndpointConfig {
        ack_timeout_ms: 1000,
        ack_random_factor: 1.0,
        max_retransmit: 2,
        ..Default::default()
    };
    let mut sim = Sim::new(NetConfig::default(), 1);
    sim.add(addr(CLIENT), Endpoint::with_seed(cfg, 9));
    sim.send_request(addr(CLIENT), addr(SERVER), get("/1"));
    sim.run_until(t(100_000));
    assert_eq!(send_times(&sim, addr(CLIENT)), vec![0, 1000, 3000]);
    assert_eq!(sim.events[0].0, t(7000));
}

// ------------------------------------------------------------------ direct state machine tests

#[test]
fn piggybacked_response_completes_request() {
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 1);
    let mut s = Endpoint::with_seed(EndpointConfig::default(), 2);
    let id = c.send_request(t(0), addr(SERVER), get("/3/0/0"));
    let tx = drain(&mut c);
    assert_eq!(tx.len(), 1);
    let req = decode(&tx[0]);
    assert_eq!((req.mtype, req.token.len()), (MessageType::Con, 8));
    s.handle_datagram(t(5), addr(CLIENT), &tx[0].bytes);
    let Event::IncomingRequest {
        peer,
        request,
        responder,
    } = events(&mut s).remove(0)
    else {
        panic!()
    };
    assert_eq!(peer, addr(CLIENT));
    assert_eq!(request.uri_path(), vec!["3", "0", "0"]);
    s.respond(
        t(6),
        responder,
        Message::response_to(&request, Code::CONTENT).with_payload("Acme"),
    )
    .unwrap();
    assert_eq!(
        s.respond(t(6), responder, Message::new(MessageType::Ack, Code::CONTENT)),
        Err(EndpointError::UnknownResponder(responder))
    );
    let tx = drain(&mut s);
    let ack = decode(&tx[0]);
    assert_eq!(
        (ack.mtype, ack.message_id, ack.token),
        (MessageType::Ack, req.message_id, req.token)
    );
    c.handle_datagram(t(10), addr(SERVER), &tx[0].bytes);
    assert_eq!(
        events(&mut c),
        vec![Event::Response {
            id,
            peer: addr(SERVER),
            message: ack.clone()
        }]
    );
    assert_eq!(c.outstanding(), 0);
    // A late duplicate ACK matches nothing.
    c.handle_datagram(t(11), addr(SERVER), &tx[0].bytes);
    assert!(events(&mut c).is_empty());
    assert_eq!(c.stats().unmatched, 1);
    // Only dedup expiry is left as a timer on the server; on the client nothing.
    assert_eq!(c.poll_timeout(), None);
    assert_eq!(s.poll_timeout(), Some(t(5 + 247_000)));
}

#[test]
fn ack_with_wrong_token_is_ignored() {
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 1);
    c.send_request(t(0), addr(SERVER), get("/1"));
    let req = decode(&drain(&mut c)[0]);
    let mut bad = Message::response_to(&req, Code::CONTENT);
    bad.token = Token::try_from_slice(&[0xEE]).unwrap();
    c.handle_datagram(t(1), addr(SERVER), &bad.encode());
    assert!(events(&mut c).is_empty());
    assert_eq!(c.outstanding(), 1);
}

#[test]
fn reset_fails_the_request() {
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 1);
    let id = c.send_request(t(0), addr(SERVER), get("/1"));
    let req = decode(&drain(&mut c)[0]);
    // An RST from another peer does not match.
    c.handle_datagram(t(1), addr(9), &Message::reset(req.message_id).encode());
    assert!(events(&mut c).is_empty());
    c.handle_datagram(t(1), addr(SERVER), &Message::reset(req.message_id).encode());
    assert_eq!(events(&mut c), vec![Event::Reset { id }]);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn ping_gets_reset_and_malformed_con_gets_reset() {
    let mut s = Endpoint::with_seed(EndpointConfig::default(), 1);
    s.handle_datagram(t(0), addr(CLIENT), &[0x40, 0x00, 0xAB, 0xCD]);
    assert_eq!(drain(&mut s)[0].bytes, vec![0x70, 0x00, 0xAB, 0xCD]);
    // CON GET with a reserved option nibble.
    s.handle_datagram(t(0), addr(CLIENT), &[0x40, 0x01, 0x12, 0x34, 0xF0]);
    assert_eq!(drain(&mut s)[0].bytes, vec![0x70, 0x00, 0x12, 0x34]);
    // Version 2 and NON garbage: silently ignored.
    s.handle_datagram(t(0), addr(CLIENT), &[0x80, 0x01, 0x12, 0x34]);
    s.handle_datagram(t(0), addr(CLIENT), &[0x50, 0x01, 0x12, 0x34, 0xF0]);
    s.handle_datagram(t(0), addr(CLIENT), &[0x50, 0x00, 0x12, 0x34]);
    assert!(drain(&mut s).is_empty());
    assert!(events(&mut s).is_empty());
    assert_eq!(s.stats().rejected, 4);
}

#[test]
fn unknown_critical_option_is_answered_bad_option() {
    let mut s = Endpoint::with_seed(EndpointConfig::default(), 1);
    let mut req = get("/3/0");
    req.message_id = 7;
    req.token = Token::try_from_slice(&[1]).unwrap();
    req.options.push(2049, vec![1]); // odd = critical, unknown
    req.options.push(2050, vec![1]); // even = elective, ignored
    s.handle_datagram(t(0), addr(CLIENT), &req.encode());
    assert!(events(&mut s).is_empty());
    let resp = decode(&drain(&mut s)[0]);
    assert_eq!(
        (resp.mtype, resp.code, resp.message_id),
        (MessageType::Ack, Code::BAD_OPTION, 7)
    );
    // Elective unknown options alone are fine.
    let mut ok = get("/3/0");
    ok.message_id = 8;
    ok.options.push(2050, vec![1]);
    s.handle_datagram(t(0), addr(CLIENT), &ok.encode());
    assert_eq!(events(&mut s).len(), 1);
}

#[test]
fn duplicate_con_replays_cached_piggybacked_response() {
    let mut s = Endpoint::with_seed(EndpointConfig::default(), 1);
    let mut req = get("/3/0");
    req.message_id = 100;
    req.token = Token::try_from_slice(&[5, 5]).unwrap();
    let bytes = req.encode();
    s.handle_datagram(t(0), addr(CLIENT), &bytes);
    let Some(Event::IncomingRequest { responder, .. }) = s.poll_event() else {
        panic!()
    };
    s.respond(
        t(1),
        responder,
        Message::response_to(&req, Code::CONTENT).with_payload("x"),
    )
    .unwrap();
    let first = drain(&mut s);
    for when in [3_000, 100_000, 246_999] {
        s.handle_datagram(t(when), addr(CLIENT), &bytes);
        assert_eq!(drain(&mut s), first, "replay at {when}");
        assert!(events(&mut s).is_empty(), "handler must not see a duplicate");
    }
    assert_eq!(s.stats().duplicates, 3);
    // After EXCHANGE_LIFETIME the Message ID is forgotten: the same bytes are a new request.
    s.handle_timeout(t(247_000));
    assert_eq!(s.poll_timeout(), None);
    s.handle_datagram(t(247_001), addr(CLIENT), &bytes);
    assert_eq!(events(&mut s).len(), 1);
}

#[test]
fn duplicate_non_request_is_dropped_for_non_lifetime() {
    let mut s = Endpoint::with_seed(EndpointConfig::default(), 1);
    let mut req = get("/3/0").with_type(MessageType::Non);
    req.message_id = 1;
    s.handle_datagram(t(0), addr(CLIENT), &req.encode());
    s.handle_datagram(t(1), addr(CLIENT), &req.encode());
    let evs = events(&mut s);
    assert_eq!(evs.len(), 1);
    let Event::IncomingRequest { responder, .. } = evs[0] else {
        panic!()
    };
    s.respond(t(2), responder, Message::new(MessageType::Ack, Code::CONTENT))
        .unwrap();
    let resp = decode(&drain(&mut s)[0]);
    assert_eq!(resp.mtype, MessageType::Non, "NON request gets a NON response");
    s.handle_datagram(t(145_000), addr(CLIENT), &req.encode());
    assert_eq!(events(&mut s).len(), 1, "forgotten after NON_LIFETIME");
}

#[test]
fn duplicate_while_processing_triggers_empty_ack_then_separate_response() {
    let mut s = Endpoint::with_seed(EndpointConfig::default(), 1);
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 2);
    let id = c.send_request(t(0), addr(SERVER), get("/5"));
    let req_tx = drain(&mut c);
    let req = decode(&req_tx[0]);
    s.handle_datagram(t(1), addr(CLIENT), &req_tx[0].bytes);
    let Some(Event::IncomingRequest { responder, .. }) = s.poll_event() else {
        panic!()
    };
    // The client retransmits before the server answered.
    s.handle_datagram(t(2500), addr(CLIENT), &req_tx[0].bytes);
    let ack = drain(&mut s);
    assert_eq!(decode(&ack[0]), Message::empty_ack(req.message_id));
    c.handle_datagram(t(2501), addr(SERVER), &ack[0].bytes);
    assert!(events(&mut c).is_empty());
    // No more retransmissions once ACKed; the next timer is the response timeout.
    assert_eq!(c.poll_timeout(), Some(t(2501 + 120_000)));
    s.respond(
        t(4000),
        responder,
        Message::new(MessageType::Ack, Code::CONTENT).with_payload("big"),
    )
    .unwrap();
    let sep_tx = drain(&mut s);
    let sep = decode(&sep_tx[0]);
    assert_eq!((sep.mtype, sep.token), (MessageType::Con, req.token));
    c.handle_datagram(t(4001), addr(SERVER), &sep_tx[0].bytes);
    let evs = events(&mut c);
    assert_eq!(
        evs,
        vec![Event::Response {
            id,
            peer: addr(SERVER),
            message: sep.clone()
        }]
    );
    let c_ack = drain(&mut c);
    assert_eq!(decode(&c_ack[0]), Message::empty_ack(sep.message_id));
    // A duplicate of the separate response is re-ACKed and not delivered again.
    c.handle_datagram(t(4500), addr(SERVER), &sep_tx[0].bytes);
    assert_eq!(drain(&mut c), c_ack);
    assert!(events(&mut c).is_empty());
    s.handle_datagram(t(4002), addr(CLIENT), &c_ack[0].bytes);
    assert!(events(&mut s).is_empty());
    assert_eq!(s.outstanding(), 0);
}

#[test]
fn separate_response_that_is_never_acked_fails() {
    let mut s = Endpoint::with_rng(EndpointConfig::default(), Box::new(Fixed(0)));
    let mut req = get("/5");
    req.message_id = 3;
    req.token = Token::try_from_slice(&[3]).unwrap();
    s.handle_datagram(t(0), addr(CLIENT), &req.encode());
    let Some(Event::IncomingRequest { responder, .. }) = s.poll_event() else {
        panic!()
    };
    s.accept(responder).unwrap();
    assert_eq!(decode(&drain(&mut s)[0]), Message::empty_ack(3));
    s.respond(t(10), responder, Message::new(MessageType::Con, Code::CHANGED))
        .unwrap();
    drain(&mut s);
    let mut now = t(10);
    while let Some(next) = s.poll_timeout() {
        if next > t(100_000) {
            break;
        }
        now = next;
        s.handle_timeout(now);
    }
    assert_eq!(drain(&mut s).len(), 4, "4 retransmissions");
    assert_eq!(now, t(10 + 62_000));
    assert_eq!(
        events(&mut s),
        vec![Event::ResponseFailed {
            responder,
            peer: addr(CLIENT),
            reset: false
        }]
    );
}

#[test]
fn no_separate_response_times_out() {
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 4);
    let id = c.send_request(t(0), addr(SERVER), get("/5"));
    let req = decode(&drain(&mut c)[0]);
    c.handle_datagram(t(100), addr(SERVER), &Message::empty_ack(req.message_id).encode());
    assert_eq!(c.poll_timeout(), Some(t(120_100)));
    c.handle_timeout(t(120_099));
    assert!(events(&mut c).is_empty());
    c.handle_timeout(t(120_100));
    assert_eq!(events(&mut c), vec![Event::Timeout { id }]);
}

#[test]
fn unmatched_separate_response_gets_reset() {
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 4);
    let mut resp = Message::new(MessageType::Con, Code::CONTENT);
    resp.message_id = 9;
    resp.token = Token::try_from_slice(&[1, 2, 3]).unwrap();
    c.handle_datagram(t(0), addr(SERVER), &resp.encode());
    assert_eq!(decode(&drain(&mut c)[0]), Message::reset(9));
    assert!(events(&mut c).is_empty());
}

#[test]
fn nstart_one_queues_requests_per_peer() {
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 4);
    let a = c.send_request(t(0), addr(SERVER), get("/a"));
    let b = c.send_request(t(0), addr(SERVER), get("/b"));
    let other = c.send_request(t(0), addr(6000), get("/o"));
    let cc = c.send_request(t(0), addr(SERVER), get("/c"));
    let tx = drain(&mut c);
    // One to SERVER, one to the other peer.
    assert_eq!(tx.len(), 2);
    assert_eq!(decode(&tx[0]).uri_path(), vec!["a"]);
    assert_eq!(
        (tx[1].peer, decode(&tx[1]).uri_path()),
        (addr(6000), vec!["o".to_string()])
    );
    let mut order = Vec::new();
    let mut pending = decode(&tx[0]);
    for expected in [a, b, cc] {
        order.push(pending.uri_path_string());
        let resp = Message::response_to(&pending, Code::CONTENT);
        c.handle_datagram(t(10), addr(SERVER), &resp.encode());
        let evs = events(&mut c);
        assert!(matches!(evs[..], [Event::Response { id, .. }] if id == expected));
        if let Some(next) = drain(&mut c).first() {
            pending = decode(next);
        }
    }
    assert_eq!(order, vec!["/a", "/b", "/c"]);
    assert_eq!(c.outstanding(), 1, "only the request to the other peer is left");
    c.cancel(t(20), other);
    assert_eq!(c.outstanding(), 0);
    assert!(drain(&mut c).is_empty());
}

#[test]
fn nstart_slot_released_on_timeout_and_cancel() {
    let mut c = Endpoint::with_rng(EndpointConfig::default(), Box::new(Fixed(0)));
    let a = c.send_request(t(0), addr(SERVER), get("/a"));
    let b = c.send_request(t(0), addr(SERVER), get("/b"));
    let _c3 = c.send_request(t(0), addr(SERVER), get("/c"));
    assert_eq!(drain(&mut c).len(), 1);
    c.cancel(t(1), b); // a queued one: nothing sent
    assert!(drain(&mut c).is_empty());
    for ms in [2_000, 6_000, 14_000, 30_000, 62_000] {
        c.handle_timeout(t(ms));
    }
    assert_eq!(events(&mut c), vec![Event::Timeout { id: a }]);
    let tx = drain(&mut c);
    assert_eq!(tx.len(), 5, "4 retransmissions of /a, then /c starts");
    assert_eq!(decode(&tx[4]).uri_path(), vec!["c"]);
}

#[test]
fn observe_notifications_and_reactive_cancel() {
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 1);
    let mut s = Endpoint::with_seed(EndpointConfig::default(), 2);
    let mut req = get("/3/0/13");
    req.set_observe(0);
    let id = c.send_request(t(0), addr(SERVER), req);
    let tx = drain(&mut c);
    s.handle_datagram(t(1), addr(CLIENT), &tx[0].bytes);
    let Some(Event::IncomingRequest { request, responder, .. }) = s.poll_event() else {
        panic!()
    };
    let mut first = Message::response_to(&request, Code::CONTENT);
    first.set_observe(1);
    s.respond(t(1), responder, first).unwrap();
    c.handle_datagram(t(2), addr(SERVER), &drain(&mut s)[0].bytes);
    assert!(matches!(events(&mut c)[..], [Event::Response { id: i, .. }] if i == id));

    // A CON notification is delivered and ACKed.
    let mut n = Message::new(MessageType::Con, Code::CONTENT)
        .with_token(request.token)
        .with_payload("2");
    n.set_observe(2);
    let nid = s.send_notification(t(10), addr(CLIENT), n).unwrap();
    c.handle_datagram(t(11), addr(SERVER), &drain(&mut s)[0].bytes);
    let evs = events(&mut c);
    assert!(matches!(&evs[..], [Event::Notification { id: i, message, .. }] if *i == id && message.payload == b"2"));
    s.handle_datagram(t(12), addr(CLIENT), &drain(&mut c)[0].bytes);
    assert_eq!(events(&mut s), vec![Event::Delivered { id: nid }]);

    // A NON notification too.
    let mut n = Message::new(MessageType::Non, Code::CONTENT).with_token(request.token);
    n.set_observe(3);
    s.send_notification(t(20), addr(CLIENT), n.clone()).unwrap();
    c.handle_datagram(t(21), addr(SERVER), &drain(&mut s)[0].bytes);
    assert!(matches!(events(&mut c)[..], [Event::Notification { .. }]));
    assert!(drain(&mut c).is_empty());

    // After the client forgets the observation, the next notification is answered with RST.
    c.cancel_observation(id);
    n.set_observe(4);
    let nid = s.send_notification(t(30), addr(CLIENT), n).unwrap();
    c.handle_datagram(t(31), addr(SERVER), &drain(&mut s)[0].bytes);
    assert!(events(&mut c).is_empty());
    s.handle_datagram(t(32), addr(CLIENT), &drain(&mut c)[0].bytes);
    assert_eq!(
        events(&mut s),
        vec![
            Event::Reset { id: nid },
            Event::ObservationCancelled {
                peer: addr(CLIENT),
                token: request.token,
                reason: CancelReason::Reset
            }
        ]
    );
    assert!(!s.is_observed(addr(CLIENT), request.token));

    assert_eq!(
        s.send_notification(t(40), addr(CLIENT), Message::new(MessageType::Con, Code::CONTENT)),
        Err(EndpointError::MissingToken)
    );
}

#[test]
fn error_notification_ends_observation() {
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 1);
    let mut req = get("/3/0/13");
    req.set_observe(0);
    let id = c.send_request(t(0), addr(SERVER), req);
    let req = decode(&drain(&mut c)[0]);
    let mut r = Message::response_to(&req, Code::CONTENT);
    r.set_observe(5);
    c.handle_datagram(t(1), addr(SERVER), &r.encode());
    events(&mut c);
    let mut n = Message::new(MessageType::Non, Code::NOT_FOUND).with_token(req.token);
    n.message_id = 50;
    c.handle_datagram(t(2), addr(SERVER), &n.encode());
    assert!(matches!(events(&mut c)[..], [Event::Notification { id: i, .. }] if i == id));
    n.message_id = 51;
    n.code = Code::CONTENT;
    n.set_observe(6);
    c.handle_datagram(t(3), addr(SERVER), &n.encode());
    assert!(events(&mut c).is_empty());
    assert_eq!(decode(&drain(&mut c)[0]), Message::reset(51));
}

#[test]
fn response_without_observe_does_not_register() {
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 1);
    let mut req = get("/3/0/13");
    req.set_observe(0);
    c.send_request(t(0), addr(SERVER), req);
    let req = decode(&drain(&mut c)[0]);
    c.handle_datagram(t(1), addr(SERVER), &Message::response_to(&req, Code::CONTENT).encode());
    events(&mut c);
    let mut n = Message::new(MessageType::Con, Code::CONTENT).with_token(req.token);
    n.set_observe(2);
    c.handle_datagram(t(2), addr(SERVER), &n.encode());
    assert!(events(&mut c).is_empty());
    assert_eq!(decode(&drain(&mut c)[0]).mtype, MessageType::Rst);
}

#[test]
fn caller_token_is_kept_and_mid_assigned() {
    let mut c = Endpoint::with_seed(
        EndpointConfig {
            token_len: 2,
            ..Default::default()
        },
        1,
    );
    let tok = Token::try_from_slice(&[0xAB]).unwrap();
    c.send_request(t(0), addr(SERVER), get("/1").with_token(tok));
    c.send_request(t(0), addr(6000), get("/1"));
    let tx = drain(&mut c);
    assert_eq!(decode(&tx[0]).token, tok);
    assert_eq!(decode(&tx[1]).token.len(), 2);
    assert_ne!(decode(&tx[0]).message_id, decode(&tx[1]).message_id);
}

// ------------------------------------------------------------------ simulated network

fn echo_handler() -> crate::sim::Handler {
    Box::new(|_, req: &Message| Some(Message::response_to(req, Code::CONTENT).with_payload(req.uri_path_string())))
}

#[test]
fn sim_lost_ack_is_replayed_from_cache_and_handler_runs_once() {
    let mut sim = Sim::new(NetConfig::default(), 7);
    sim.add(
        addr(CLIENT),
        Endpoint::with_rng(EndpointConfig::default(), Box::new(Fixed(0))),
    );
    sim.add(addr(SERVER), Endpoint::with_seed(EndpointConfig::default(), 2));
    sim.set_handler(addr(SERVER), echo_handler());
    // Lose the first two piggybacked ACKs from the server.
    let mut lost = 0;
    sim.net.set_filter(Box::new(move |_, d| {
        if d.from == addr(SERVER) && lost < 2 {
            lost += 1;
            return true;
        }
        false
    }));
    let id = sim.send_request(addr(CLIENT), addr(SERVER), get("/3/0"));
    sim.run_until(t(60_000));
    // Client sent at 0, 2 s, 6 s (ACK_TIMEOUT 2 s, doubling); the third copy got the cached ACK.
    assert_eq!(send_times(&sim, addr(CLIENT)), vec![0, 2_000, 6_000]);
    let server_sends: Vec<_> = sim.net.log.iter().filter(|r| r.datagram.from == addr(SERVER)).collect();
    assert_eq!(server_sends.len(), 3);
    assert!(
        server_sends
            .windows(2)
            .all(|w| w[0].datagram.bytes == w[1].datagram.bytes),
        "byte-identical replay"
    );
    let incoming = sim
        .events
        .iter()
        .filter(|e| matches!(e.2, Event::IncomingRequest { .. }))
        .count();
    assert_eq!(incoming, 1, "handler sees the request once");
    let responses: Vec<_> = sim
        .events
        .iter()
        .filter(|e| matches!(e.2, Event::Response { .. }))
        .collect();
    assert_eq!(responses.len(), 1);
    assert!(
        matches!(&responses[0].2, Event::Response { id: i, message, .. } if *i == id && message.payload == b"/3/0")
    );
    assert_eq!(responses[0].0, t(6_020));
    assert_eq!(sim.endpoint(addr(SERVER)).stats().duplicates, 2);
}

#[test]
fn sim_separate_response_under_loss() {
    let mut sim = Sim::new(NetConfig::default(), 7);
    sim.add(
        addr(CLIENT),
        Endpoint::with_rng(EndpointConfig::default(), Box::new(Fixed(0))),
    );
    sim.add(
        addr(SERVER),
        Endpoint::with_rng(EndpointConfig::default(), Box::new(Fixed(0))),
    );
    let id = sim.send_request(addr(CLIENT), addr(SERVER), get("/5/0/3"));
    sim.run_for(10);
    let responder = match &sim.take_events()[..] {
        [(_, _, Event::IncomingRequest { responder, .. })] => *responder,
        other => panic!("{other:?}"),
    };
    // Server announces a separate response; that empty ACK is lost, so the client retransmits at 2 s and the
    // duplicate is answered with the cached empty ACK.
    let mut drops = 0;
    sim.net.set_filter(Box::new(move |_, d| {
        let m = Message::decode(&d.bytes).unwrap();
        // Lose: the first empty ACK from the server, the first separate response, the client's first ACK of it.
        let lose = (drops & 1 == 0 && d.from == addr(SERVER) && m.mtype == MessageType::Ack)
            || (drops & 2 == 0 && d.from == addr(SERVER) && m.mtype == MessageType::Con)
            || (drops & 4 == 0 && d.from == addr(CLIENT) && m.mtype == MessageType::Ack);
        if lose {
            drops |= if m.mtype == MessageType::Con {
                2
            } else if d.from == addr(SERVER) {
                1
            } else {
                4
            };
        }
        lose
    }));
    sim.endpoint(addr(SERVER)).accept(responder).unwrap();
    sim.run_until(t(5_000));
    let now = sim.now();
    sim.endpoint(addr(SERVER))
        .respond(now, responder, Message::new(MessageType::Con, Code::CHANGED))
        .unwrap();
    sim.run_until(t(200_000));

    let log: Vec<(u64, SocketAddr, MessageType, Code, bool)> = sim
        .net
        .log
        .iter()
        .map(|r| {
            let m = r.message().unwrap();
            (r.at.0, r.datagram.from, m.mtype, m.code, r.dropped)
        })
        .collect();
    let (c, s) = (addr(CLIENT), addr(SERVER));
    use MessageType::*;
    assert_eq!(
        log,
        vec![
            (0, c, Con, Code::GET, false),          // request
            (10, s, Ack, Code::EMPTY, true),        // accept(): empty ACK, lost
            (2_000, c, Con, Code::GET, false),      // retransmission
            (2_010, s, Ack, Code::EMPTY, false),    // cached empty ACK replayed
            (5_000, s, Con, Code::CHANGED, true),   // separate response, lost
            (7_000, s, Con, Code::CHANGED, false),  // retransmitted after 2 s
            (7_010, c, Ack, Code::EMPTY, true),     // client's ACK, lost
            (11_000, s, Con, Code::CHANGED, false), // retransmitted after 4 s
            (11_010, c, Ack, Code::EMPTY, false),   // duplicate re-ACKed from the client's cache
        ]
    );
    let evs = sim.take_events();
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert!(matches!(&evs[0], (at, who, Event::Response { id: i, message, .. })
        if *at == t(7_010) && *who == c && *i == id && message.code == Code::CHANGED));
    assert_eq!(sim.endpoint(addr(SERVER)).outstanding(), 0);
    assert_eq!(sim.endpoint(addr(CLIENT)).stats().duplicates, 1);
}

#[test]
fn sim_client_and_server_on_one_endpoint_pair_with_colliding_ids() {
    // Same seed on both sides: both pick the same Message IDs and tokens for their own requests.
    let mut sim = Sim::new(NetConfig::default(), 3);
    sim.add(addr(CLIENT), Endpoint::with_seed(EndpointConfig::default(), 99));
    sim.add(addr(SERVER), Endpoint::with_seed(EndpointConfig::default(), 99));
    sim.set_handler(addr(CLIENT), echo_handler());
    sim.set_handler(addr(SERVER), echo_handler());
    let a = sim.send_request(addr(CLIENT), addr(SERVER), get("/rd"));
    let b = sim.send_request(addr(SERVER), addr(CLIENT), get("/3/0"));
    let m0 = sim.net.log[0].message().unwrap();
    let m1 = sim.net.log[1].message().unwrap();
    assert_eq!(
        (m0.message_id, m0.token),
        (m1.message_id, m1.token),
        "ids really collide"
    );
    sim.run_until(t(1_000));
    let mut got: Vec<(SocketAddr, RequestId, Vec<u8>)> = sim
        .events
        .iter()
        .filter_map(|(_, at, e)| match e {
            Event::Response { id, message, .. } => Some((*at, *id, message.payload.clone())),
            _ => None,
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![(addr(CLIENT), a, b"/rd".to_vec()), (addr(SERVER), b, b"/3/0".to_vec())]
    );
    assert_eq!(sim.net.log.len(), 4, "no retransmissions");
}

#[test]
fn sim_random_loss_duplication_reordering_keeps_exactly_once_semantics() {
    for seed in 0..20u64 {
        let cfg = NetConfig {
            loss: 0.25,
            duplicate: 0.25,
            min_delay_ms: 1,
            max_delay_ms: 2500,
        };
        let mut sim = Sim::new(cfg, seed);
        sim.add(
            addr(CLIENT),
            Endpoint::with_seed(
                EndpointConfig {
                    nstart: 4,
                    ..Default::default()
                },
                seed,
            ),
        );
        sim.add(
            addr(SERVER),
            Endpoint::with_seed(EndpointConfig::default(), seed + 1000),
        );
        sim.set_handler(addr(SERVER), echo_handler());
        let mut ids = Vec::new();
        for i in 0..12 {
            let mut req = get(&format!("/{i}"));
            if i % 3 == 0 {
                req.mtype = MessageType::Non;
            }
            ids.push(sim.send_request(addr(CLIENT), addr(SERVER), req));
        }
        sim.run_until(t(400_000));
        let mut outcome = HashMap::new();
        let mut seen_paths = Vec::new();
        for (_, _, e) in &sim.events {
            match e {
                Event::Response { id, message, .. } => {
                    let i = ids.iter().position(|x| x == id).unwrap();
                    assert_eq!(
                        message.payload,
                        format!("/{i}").into_bytes(),
                        "seed {seed}: response matches request"
                    );
                    assert!(
                        outcome.insert(*id, "response").is_none(),
                        "seed {seed}: one outcome per request"
                    );
                }
                Event::Timeout { id } => {
                    assert!(
                        outcome.insert(*id, "timeout").is_none(),
                        "seed {seed}: one outcome per request"
                    );
                }
                Event::IncomingRequest { request, .. } => seen_paths.push(request.uri_path_string()),
                other => panic!("seed {seed}: unexpected {other:?}"),
            }
        }
        assert_eq!(outcome.len(), ids.len(), "seed {seed}: every request ended");
        let n = seen_paths.len();
        seen_paths.sort();
        seen_paths.dedup();
        assert_eq!(
            seen_paths.len(),
            n,
            "seed {seed}: the handler saw each request at most once"
        );
        // CON requests almost always get through with 4 retransmissions at 25 % loss.
        let con_ok = ids
            .iter()
            .enumerate()
            .filter(|(i, id)| i % 3 != 0 && outcome.get(id) == Some(&"response"))
            .count();
        assert!(con_ok >= 7, "seed {seed}: only {con_ok} of 8 CON requests answered");
        for addr in [addr(CLIENT), addr(SERVER)] {
            assert_eq!(sim.endpoint(addr).outstanding(), 0);
            assert_eq!(sim.endpoint(addr).poll_timeout(), None, "all state expired");
        }
    }
}

#[test]
fn block_option_survives_endpoint_round_trip() {
    // Block values are just options to the endpoint: a Block2 request/response passes through unchanged.
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 1);
    let mut req = get("/5/0/0");
    req.set_block2(crate::message::Block::new(3, false, 6).unwrap());
    c.send_request(t(0), addr(SERVER), req);
    let sent = decode(&drain(&mut c)[0]);
    assert_eq!(sent.block2().map(|b| b.num), Some(3));
    assert!(sent.options.contains(opt::BLOCK2));
}

proptest::proptest! {
    /// Arbitrary datagrams (raw bytes and mutated valid messages) never panic the endpoint, whatever state it
    /// is in, and never make it emit an undecodable datagram.
    #[test]
    fn endpoint_never_panics_on_arbitrary_datagrams(
        inputs in proptest::collection::vec(
            (0u64..5000, proptest::prelude::any::<bool>(), proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)),
            0..40,
        )
    ) {
        let mut ep = Endpoint::with_seed(EndpointConfig::default(), 5);
        let mut obs = get("/3/0/1");
        obs.set_observe(0);
        ep.send_request(t(0), addr(SERVER), obs);
        ep.send_request(t(0), addr(SERVER), get("/1"));
        let first = decode(&drain(&mut ep)[0]);
        let mut now = 0;
        for (dt, mutate, bytes) in inputs {
            now += dt;
            let datagram = if mutate {
                // Start from something that matches live state, then splice the random bytes in.
                let mut m = Message::response_to(&first, Code::CONTENT).encode();
                m.truncate(4 + first.token.len());
                m.extend(bytes);
                m
            } else {
                bytes
            };
            ep.handle_datagram(t(now), addr(SERVER), &datagram);
            if let Some(next) = ep.poll_timeout() {
                if next <= t(now) {
                    ep.handle_timeout(t(now));
                }
            }
            while let Some(tx) = ep.poll_transmit() {
                proptest::prop_assert!(Message::decode(&tx.bytes).is_ok());
            }
            while ep.poll_event().is_some() {}
        }
    }
}
