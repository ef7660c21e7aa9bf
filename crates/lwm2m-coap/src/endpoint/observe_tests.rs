//! Observe (RFC 7641) tests: both sides of the endpoint, directly and over the simulated network.

use super::test_util::*;
use super::*;
use crate::sim::{NetConfig, Sim};

const CLIENT: u16 = 5001;
const SERVER: u16 = 5683;

/// A random source that always returns the same value (initial ACK timeout exactly ACK_TIMEOUT).
struct Fixed(u64);
impl RandomSource for Fixed {
    fn next_u64(&mut self) -> u64 {
        self.0
    }
}

/// Deliver everything `from` wants to send to `to` at `now`; returns the decoded messages.
fn pump(now: Timestamp, from: &mut Endpoint, from_addr: SocketAddr, to: &mut Endpoint) -> Vec<Message> {
    let mut out = Vec::new();
    for tx in drain(from) {
        out.push(decode(&tx));
        to.handle_datagram(now, from_addr, &tx.bytes);
    }
    out
}

fn observe_get(path: &str) -> Message {
    let mut m = Message::request(Code::GET, path);
    m.set_observe(0);
    m
}

/// Client `c` observes `/3/0/13` on server `s`; the server answers with Observe `first_seq`.
/// Returns (client request id, the request as the server saw it).
fn establish(c: &mut Endpoint, s: &mut Endpoint, first_seq: u32) -> (RequestId, Message) {
    let id = c.send_request(t(0), addr(SERVER), observe_get("/3/0/13").with_query("pmin=1"));
    pump(t(1), c, addr(CLIENT), s);
    let Some(Event::IncomingRequest { request, responder, .. }) = s.poll_event() else {
        panic!("no request")
    };
    let mut r = Message::response_to(&request, Code::CONTENT).with_payload("v0");
    r.set_observe(first_seq);
    s.respond(t(1), responder, r).unwrap();
    assert!(s.is_observed(addr(CLIENT), request.token));
    pump(t(2), s, addr(SERVER), c);
    match &events(c)[..] {
        [Event::Response { id: i, message, .. }] => {
            assert_eq!(*i, id);
            assert_eq!(message.observe(), Some(first_seq));
        }
        other => panic!("{other:?}"),
    }
    assert!(c.is_observing(id));
    (id, request)
}

fn notification(token: Token, mtype: MessageType, payload: &str) -> Message {
    Message::new(mtype, Code::CONTENT)
        .with_token(token)
        .with_payload(payload)
}

/// The payloads and Observe values of the notifications in `evs`.
fn notified(evs: &[Event]) -> Vec<(String, Option<u32>)> {
    evs.iter()
        .filter_map(|e| match e {
            Event::Notification { message, .. } => Some((
                String::from_utf8_lossy(&message.payload).into_owned(),
                message.observe(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn server_numbers_notifications_and_client_delivers_them_in_order() {
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 1);
    let mut s = Endpoint::with_seed(EndpointConfig::default(), 2);
    let (id, req) = establish(&mut c, &mut s, 5);
    assert_eq!(s.observers().collect::<Vec<_>>(), vec![(addr(CLIENT), req.token)]);
    let mut now = 10;
    let mut send = |c: &mut Endpoint, s: &mut Endpoint, m: Message| {
        now += 10;
        s.send_notification(t(now), addr(CLIENT), m).unwrap();
        let sent = pump(t(now + 1), s, addr(SERVER), c);
        pump(t(now + 2), c, addr(CLIENT), s);
        sent.into_iter().next().unwrap()
    };
    // Sequence numbers continue from the registration response's Observe value.
    for p in ["a", "b"] {
        send(&mut c, &mut s, notification(req.token, MessageType::Non, p));
    }
    // Application-chosen values are kept and continued from (each step less than 2^23, so still newer).
    for (p, v) in [("x", 0x70_0000), ("y", 0xE0_0000), ("c", 0xFF_FFFE)] {
        let mut m = notification(req.token, MessageType::Con, p);
        m.set_observe(v);
        send(&mut c, &mut s, m);
    }
    // The next two wrap around 2^24.
    let d = send(&mut c, &mut s, notification(req.token, MessageType::Con, "d"));
    let e = send(&mut c, &mut s, notification(req.token, MessageType::Non, "e"));
    assert_eq!((d.observe(), e.observe()), (Some(0xFF_FFFF), Some(0)));
    let evs = events(&mut c);
    assert!(evs
        .iter()
        .all(|e| matches!(e, Event::Notification { id: i, .. } if *i == id)));
    assert_eq!(
        notified(&evs),
        vec![
            ("a".into(), Some(6)),
            ("b".into(), Some(7)),
            ("x".into(), Some(0x70_0000)),
            ("y".into(), Some(0xE0_0000)),
            ("c".into(), Some(0xFF_FFFE)),
            ("d".into(), Some(0xFF_FFFF)),
            ("e".into(), Some(0)),
        ]
    );
    // The CON ones were ACKed.
    let delivered = events(&mut s)
        .iter()
        .filter(|e| matches!(e, Event::Delivered { .. }))
        .count();
    assert_eq!(delivered, 4);
    assert_eq!(c.stats().stale_notifications, 0);
}

#[test]
fn stale_and_reordered_notifications_are_acked_but_dropped() {
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 1);
    let mut s = Endpoint::with_seed(EndpointConfig::default(), 2);
    let (id, req) = establish(&mut c, &mut s, 10);
    let mut mid = 1000;
    let mut deliver = |c: &mut Endpoint, at: u64, seq: u32, payload: &str| {
        mid += 1;
        let mut n = notification(req.token, MessageType::Con, payload);
        n.message_id = mid;
        n.set_observe(seq);
        c.handle_datagram(t(at), addr(SERVER), &n.encode());
        let tx = drain(c);
        assert_eq!(tx.len(), 1, "every CON notification is answered");
        assert_eq!(decode(&tx[0]), Message::empty_ack(mid), "ACK, even when stale");
        notified(&events(c))
    };
    assert_eq!(deliver(&mut c, 100, 12, "12"), vec![("12".into(), Some(12))]);
    // 11 arrives late (reordered): dropped.
    assert_eq!(deliver(&mut c, 110, 11, "11"), vec![]);
    // The registration's own number and a repeat of 12 are not newer either.
    assert_eq!(deliver(&mut c, 120, 10, "10"), vec![]);
    assert_eq!(deliver(&mut c, 130, 12, "12 again"), vec![]);
    // 2^23 ahead is ambiguous, hence older; just below is newer.
    assert_eq!(deliver(&mut c, 140, 12 + (1 << 23), "far"), vec![]);
    assert_eq!(
        deliver(&mut c, 150, 12 + (1 << 23) - 1, "near"),
        vec![("near".into(), Some(12 + (1 << 23) - 1))]
    );
    assert_eq!(c.stats().stale_notifications, 4);
    // More than 128 s after the newest one, even a lower number is taken as fresh (server restart).
    assert_eq!(deliver(&mut c, 150 + 128_000, 20, "old"), vec![]);
    assert_eq!(
        deliver(&mut c, 150 + 128_001, 20, "restart"),
        vec![("restart".into(), Some(20))]
    );
    assert!(c.is_observing(id));
}

#[test]
fn notification_for_unknown_token_gets_reset() {
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 1);
    for (mtype, mid) in [(MessageType::Con, 7), (MessageType::Non, 8)] {
        let mut n = notification(Token::try_from_slice(&[9, 9]).unwrap(), mtype, "x");
        n.message_id = mid;
        n.set_observe(4);
        c.handle_datagram(t(0), addr(SERVER), &n.encode());
        assert_eq!(decode(&drain(&mut c)[0]), Message::reset(mid));
    }
    assert!(events(&mut c).is_empty());
}

#[test]
fn active_cancel_sends_observe_1_on_same_token_and_options() {
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 1);
    let mut s = Endpoint::with_seed(EndpointConfig::default(), 2);
    let (id, req) = establish(&mut c, &mut s, 1);
    // A notification is on its way when the client cancels.
    s.send_notification(
        t(10),
        addr(CLIENT),
        notification(req.token, MessageType::Con, "crossing"),
    )
    .unwrap();
    let crossing = drain(&mut s);
    let cancel = c.cancel_observe(t(11), id).expect("live observation");
    assert!(!c.is_observing(id));
    assert_eq!(c.cancel_observe(t(11), id), None, "only once");
    let sent = pump(t(12), &mut c, addr(CLIENT), &mut s);
    assert_eq!(sent.len(), 1);
    let dereg = &sent[0];
    assert_eq!(dereg.token, req.token);
    assert_eq!(dereg.observe(), Some(1));
    assert_eq!((dereg.uri_path(), dereg.uri_query()), (req.uri_path(), req.uri_query()));
    // The server ends the observation and still shows the GET to the application.
    let evs = events(&mut s);
    assert_eq!(
        evs[0],
        Event::ObservationCancelled {
            peer: addr(CLIENT),
            token: req.token,
            reason: CancelReason::Deregistered
        }
    );
    let Event::IncomingRequest { responder, request, .. } = &evs[1] else {
        panic!("{evs:?}")
    };
    assert!(!s.is_observed(addr(CLIENT), req.token));
    // The crossing notification reaches the client now: ACKed, not delivered, not taken as the response.
    c.handle_datagram(t(13), addr(SERVER), &crossing[0].bytes);
    assert_eq!(drain(&mut c).len(), 1);
    assert!(events(&mut c).is_empty());
    // The separate answer to the cancellation (no Observe) completes it.
    s.accept(*responder).unwrap();
    s.respond(
        t(14),
        *responder,
        Message::response_to(request, Code::CONTENT).with_payload("last"),
    )
    .unwrap();
    let out = pump(t(15), &mut s, addr(SERVER), &mut c);
    assert_eq!(out.len(), 2, "empty ACK then separate response");
    match &events(&mut c)[..] {
        [Event::Response { id: i, message, .. }] => {
            assert_eq!(*i, cancel);
            assert_eq!((message.payload.as_slice(), message.observe()), (&b"last"[..], None));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        decode(&drain(&mut c)[0]).mtype,
        MessageType::Ack,
        "separate response ACKed"
    );
    // Later notifications on that token are rejected.
    let mut late = notification(req.token, MessageType::Non, "late");
    late.set_observe(9);
    s.send_notification(t(20), addr(CLIENT), late).unwrap();
    let out = pump(t(21), &mut s, addr(SERVER), &mut c);
    assert!(out[0].observe() == Some(9), "no longer observed: sent as given");
    assert!(events(&mut c).is_empty());
    assert_eq!(decode(&drain(&mut c)[0]).mtype, MessageType::Rst);
}

#[test]
fn rst_to_non_notification_cancels_observation() {
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 1);
    let mut s = Endpoint::with_seed(EndpointConfig::default(), 2);
    let (id, req) = establish(&mut c, &mut s, 1);
    c.cancel_observation(id);
    let nid = s
        .send_notification(t(10), addr(CLIENT), notification(req.token, MessageType::Non, "n"))
        .unwrap();
    pump(t(11), &mut s, addr(SERVER), &mut c);
    let rst = pump(t(12), &mut c, addr(CLIENT), &mut s);
    assert_eq!(rst[0].mtype, MessageType::Rst);
    assert_eq!(
        events(&mut s),
        vec![
            Event::Reset { id: nid },
            Event::ObservationCancelled {
                peer: addr(CLIENT),
                token: req.token,
                reason: CancelReason::Reset
            }
        ]
    );
    assert_eq!(s.observers().count(), 0);
}

#[test]
fn unacknowledged_con_notification_cancels_observation() {
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 1);
    let mut s = Endpoint::with_rng(EndpointConfig::default(), Box::new(Fixed(0)));
    let (_, req) = establish(&mut c, &mut s, 1);
    let nid = s
        .send_notification(t(1000), addr(CLIENT), notification(req.token, MessageType::Con, "n"))
        .unwrap();
    drain(&mut s); // lost, and so are the retransmissions
    for at in [3_000, 7_000, 15_000, 31_000] {
        s.handle_timeout(t(at));
        assert_eq!(drain(&mut s).len(), 1, "retransmission at {at}");
    }
    assert!(s.is_observed(addr(CLIENT), req.token));
    s.handle_timeout(t(63_000));
    assert_eq!(
        events(&mut s),
        vec![
            Event::Timeout { id: nid },
            Event::ObservationCancelled {
                peer: addr(CLIENT),
                token: req.token,
                reason: CancelReason::Timeout
            }
        ]
    );
    assert!(!s.is_observed(addr(CLIENT), req.token));
    // Further messages on that token are not numbered any more.
    s.send_notification(t(64_000), addr(CLIENT), notification(req.token, MessageType::Non, "x"))
        .unwrap();
    assert_eq!(decode(&drain(&mut s)[0]).observe(), None);
}

#[test]
fn error_notification_and_failed_reregistration_end_server_observation() {
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 1);
    let mut s = Endpoint::with_seed(EndpointConfig::default(), 2);
    let (_, req) = establish(&mut c, &mut s, 1);
    let n = Message::new(MessageType::Con, Code::NOT_FOUND).with_token(req.token);
    s.send_notification(t(10), addr(CLIENT), n).unwrap();
    assert!(!s.is_observed(addr(CLIENT), req.token));
    let sent = decode(&drain(&mut s)[0]);
    assert_eq!(sent.observe(), None, "error notifications carry no Observe");

    // Re-registration on the same token answered without Observe removes the observer.
    let (_, req) = establish(&mut c, &mut s, 1);
    let mut again = observe_get("/3/0/13");
    again.token = req.token;
    again.message_id = 4242;
    s.handle_datagram(t(20), addr(CLIENT), &again.encode());
    let Some(Event::IncomingRequest { responder, request, .. }) = s.poll_event() else {
        panic!()
    };
    s.respond(t(20), responder, Message::response_to(&request, Code::CONTENT))
        .unwrap();
    assert!(!s.is_observed(addr(CLIENT), req.token));
    assert!(!s.remove_observer(addr(CLIENT), req.token));
}

/// NON notifications once an hour for `hours` hours; returns the hours at which a CON went out.
fn con_hours(interval_ms: u64, hours: u64) -> Vec<u64> {
    let cfg = EndpointConfig {
        notify_con_interval_ms: interval_ms,
        ..Default::default()
    };
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 1);
    let mut s = Endpoint::with_seed(cfg, 2);
    let (id, req) = establish(&mut c, &mut s, 1);
    let mut con = Vec::new();
    for h in 1..=hours {
        let now = h * 3_600_000;
        s.send_notification(t(now), addr(CLIENT), notification(req.token, MessageType::Non, "v"))
            .unwrap();
        let sent = pump(t(now + 5), &mut s, addr(SERVER), &mut c);
        if sent[0].mtype == MessageType::Con {
            con.push(h);
        }
        pump(t(now + 10), &mut c, addr(CLIENT), &mut s);
        s.handle_timeout(t(now + 10));
        c.handle_timeout(t(now + 10));
    }
    assert_eq!(notified(&events(&mut c)).len() as u64, hours);
    assert!(c.is_observing(id));
    assert!(s.is_observed(addr(CLIENT), req.token));
    con
}

#[test]
fn non_notification_stream_sends_a_con_every_24_hours() {
    // The registration response went out at 1 ms, so at 24 h only 24 h - 1 ms have passed.
    assert_eq!(con_hours(24 * 3_600_000, 75), vec![25, 49, 73]);
    // Configurable.
    assert_eq!(con_hours(3 * 3_600_000, 10), vec![4, 7, 10]);
}

#[test]
fn explicit_con_notification_resets_the_24_hour_clock() {
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 1);
    let mut s = Endpoint::with_seed(EndpointConfig::default(), 2);
    let (_, req) = establish(&mut c, &mut s, 1);
    let h = 3_600_000;
    s.send_notification(t(20 * h), addr(CLIENT), notification(req.token, MessageType::Con, "c"))
        .unwrap();
    pump(t(20 * h + 1), &mut s, addr(SERVER), &mut c);
    pump(t(20 * h + 2), &mut c, addr(CLIENT), &mut s);
    for (at, expect) in [
        (30 * h, MessageType::Non),
        (44 * h - 1, MessageType::Non),
        (44 * h, MessageType::Con),
    ] {
        s.send_notification(t(at), addr(CLIENT), notification(req.token, MessageType::Non, "n"))
            .unwrap();
        let sent = pump(t(at + 1), &mut s, addr(SERVER), &mut c);
        assert_eq!(sent[0].mtype, expect, "at {at}");
        pump(t(at + 2), &mut c, addr(CLIENT), &mut s);
    }
}

#[test]
fn sim_observe_under_loss_and_reordering_delivers_fresh_notifications_in_order() {
    let mut stale = 0;
    for seed in 0..8u64 {
        let cfg = NetConfig {
            loss: 0.2,
            duplicate: 0.2,
            min_delay_ms: 1,
            max_delay_ms: 3000,
        };
        let mut sim = Sim::new(cfg, seed);
        sim.add(addr(CLIENT), Endpoint::with_seed(EndpointConfig::default(), seed));
        sim.add(addr(SERVER), Endpoint::with_seed(EndpointConfig::default(), seed + 100));
        sim.set_handler(
            addr(SERVER),
            Box::new(|_, req: &Message| {
                let mut r = Message::response_to(req, Code::CONTENT).with_payload("0");
                if req.observe() == Some(0) {
                    r.set_observe(0);
                }
                Some(r)
            }),
        );
        let id = sim.send_request(addr(CLIENT), addr(SERVER), observe_get("/3303/0/5700"));
        sim.run_until(t(100_000));
        let token = match sim.events.iter().find(|e| matches!(e.2, Event::IncomingRequest { .. })) {
            Some((_, _, Event::IncomingRequest { request, .. })) => request.token,
            _ => continue, // registration lost entirely (unlikely): nothing to observe
        };
        let mut ended = false;
        for i in 1..=60u32 {
            let mtype = if i % 5 == 0 { MessageType::Con } else { MessageType::Non };
            let n = notification(token, mtype, &i.to_string());
            let _ = sim.send_notification(addr(SERVER), addr(CLIENT), n);
            sim.run_for(1_000);
            ended |= !sim.endpoint(addr(SERVER)).is_observed(addr(CLIENT), token);
        }
        sim.run_for(300_000);
        let got: Vec<u32> = sim
            .events_at(addr(CLIENT))
            .iter()
            .filter_map(|e| match e {
                Event::Notification { id: i, message, .. } => {
                    assert_eq!(*i, id);
                    let n: u32 = String::from_utf8_lossy(&message.payload).parse().unwrap();
                    assert_eq!(message.observe(), Some(n), "numbered by the server endpoint");
                    Some(n)
                }
                _ => None,
            })
            .collect();
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "seed {seed}: delivered strictly in order without duplicates: {got:?}"
        );
        if !ended {
            assert!(
                got.len() >= 30,
                "seed {seed}: most notifications arrive ({})",
                got.len()
            );
        }
        stale += sim.endpoint(addr(CLIENT)).stats().stale_notifications;
    }
    assert!(stale > 0, "reordering made the freshness rule drop something");
}

#[test]
fn a_restored_observation_accepts_notifications_after_a_restart_and_unknown_tokens_still_get_rst() {
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 1);
    let mut s = Endpoint::with_seed(EndpointConfig::default(), 2);
    let (_, req) = establish(&mut c, &mut s, 5);
    // The observer restarts: a new endpoint knows nothing until the observation is restored.
    let mut c = Endpoint::with_seed(EndpointConfig::default(), 3);
    let id = c.restore_observation(t(10), addr(SERVER), req.token, observe_get("/3/0/13"));
    assert!(c.is_observing(id));
    assert!(drain(&mut c).is_empty(), "restoring sends nothing");
    // A CON notification with a lower Observe value than before the restart is still fresh and delivered.
    let mut n = notification(req.token, MessageType::Con, "after");
    n.set_observe(3);
    s.send_notification(t(20), addr(CLIENT), n).unwrap();
    pump(t(21), &mut s, addr(SERVER), &mut c);
    let evs = events(&mut c);
    assert_eq!(notified(&evs), vec![("after".to_string(), Some(3))]);
    assert!(matches!(&evs[..], [Event::Notification { id: i, peer, .. }] if *i == id && *peer == addr(SERVER)));
    let acks = pump(t(22), &mut c, addr(CLIENT), &mut s);
    assert_eq!(acks.iter().map(|m| m.mtype).collect::<Vec<_>>(), vec![MessageType::Ack]);
    // A notification on a token the restarted endpoint does not know is answered with RST.
    let other = Token::try_from_slice(&[0xAB, 0xCD]).unwrap();
    let mut stray = notification(other, MessageType::Con, "stray");
    stray.set_observe(9);
    stray.message_id = 0x4242;
    c.handle_datagram(t(30), addr(SERVER), &stray.encode());
    assert!(notified(&events(&mut c)).is_empty());
    let out: Vec<Message> = drain(&mut c).iter().map(decode).collect();
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].mtype, out[0].message_id), (MessageType::Rst, 0x4242));
    // The restored observation is cancelled actively like any other: GET with Observe=1 on its token.
    let cancel = c.cancel_observe(t(40), id).unwrap();
    assert_ne!(cancel, id);
    assert!(!c.is_observing(id));
    let sent: Vec<Message> = drain(&mut c).iter().map(decode).collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].code, sent[0].token, sent[0].observe()),
        (Code::GET, req.token, Some(1))
    );
    assert_eq!(sent[0].uri_path_string(), "/3/0/13");
}
