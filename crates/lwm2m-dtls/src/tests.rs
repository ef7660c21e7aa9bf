//! End-to-end tests: our client against our server, real OpenSSL on both sides, in memory, virtual time.

use crate::record::{self, parse_client_hello};
use crate::testutil::*;
use crate::*;

fn psk_client() -> ClientConfig {
    ClientConfig::psk(ID, KEY)
}

fn established(w: &World) -> Vec<(std::net::SocketAddr, PeerIdentity, bool)> {
    w.events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Established {
                peer,
                identity,
                resumed,
            } => Some((*peer, identity.clone(), *resumed)),
            _ => None,
        })
        .collect()
}

fn closed(w: &World) -> Vec<CloseReason> {
    w.events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Closed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

fn app_data(w: &World) -> Vec<Vec<u8>> {
    w.events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::AppData { data, .. } => Some(data.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn psk_ccm8_handshake_and_app_data_both_ways() {
    let mut w = World::new(ServerConfig::default());
    let c = w.add_client(psk_client(), 1000);
    assert_eq!(w.handshake(c), SessionState::Established);
    assert_eq!(w.now, 0, "no timer needed on a lossless network");
    assert_eq!(
        w.peers[c].client.session().unwrap().cipher_name(),
        Some("PSK-AES128-CCM8")
    );
    assert_eq!(w.peers[c].client.peer_identity(), Some(&PeerIdentity::Psk(ID.to_vec())));
    assert_eq!(
        established(&w),
        vec![(addr(1000), PeerIdentity::Psk(ID.to_vec()), false)]
    );
    let s = w.server.session(&addr(1000)).unwrap();
    assert_eq!(s.cipher_name(), Some("PSK-AES128-CCM8"));
    assert_eq!(w.server.session_count(), 1);
    assert_eq!(w.server.handshake_count(), 0);

    w.peers[c].client.send(b"hello server").unwrap();
    w.pump();
    assert_eq!(app_data(&w), vec![b"hello server".to_vec()]);
    w.server.send(w.now, addr(1000), b"hello client").unwrap();
    w.pump();
    assert_eq!(w.peers[c].rx, vec![b"hello client".to_vec()]);
    // a big record (fragmented by IP, not by DTLS) and the size limit
    let big = vec![7u8; 4000];
    w.server.send(w.now, addr(1000), &big).unwrap();
    w.pump();
    assert_eq!(w.peers[c].rx.last(), Some(&big));
    assert_eq!(
        w.peers[c].client.send(&vec![0u8; 16_385]),
        Err(DtlsError::TooLarge(16_385))
    );

    // close_notify reaches the server
    w.peers[c].client.close();
    w.pump();
    assert_eq!(closed(&w), vec![CloseReason::PeerClosed]);
    assert_eq!(w.server.session_count(), 0);
    assert_eq!(w.peers[c].client.send(b"x"), Err(DtlsError::Closed));
}

#[test]
fn data_queued_during_handshake_is_sent_after() {
    let mut w = World::new(ServerConfig::default());
    let c = w.add_client(psk_client(), 1000);
    w.peers[c].client.send(b"early").unwrap();
    assert_eq!(w.handshake(c), SessionState::Established);
    w.pump();
    assert_eq!(app_data(&w), vec![b"early".to_vec()]);
}

#[test]
fn wrong_key_fails() {
    let mut w = World::new(ServerConfig::default());
    let c = w.add_client(ClientConfig::psk(ID, b"wrong key 123456".to_vec()), 1000);
    // DTLS discards records that fail authentication (RFC 6347 §4.1.2.7), so the server drops the client's
    // Finished without an alert: neither side ever gets established, and both give up at the handshake timeout.
    let st = w.handshake(c);
    assert_eq!(st, SessionState::Closed(CloseReason::HandshakeTimeout));
    w.run_until(600_000, |w| w.server.session_count() == 0);
    assert_eq!(closed(&w), vec![CloseReason::HandshakeTimeout]);
    assert!(established(&w).is_empty());
    assert!(app_data(&w).is_empty());
    assert_eq!(w.server.session_count(), 0);
    assert_eq!(w.server.handshake_count(), 0);
    assert_eq!(w.server.stats().established, 0);
}

#[test]
fn unknown_identity_fails() {
    let mut w = World::new(ServerConfig::default());
    let c = w.add_client(ClientConfig::psk(b"someone-else".to_vec(), KEY), 1000);
    let st = w.handshake(c);
    assert!(
        matches!(&st, SessionState::Closed(CloseReason::HandshakeFailed(m)) if m.contains("unknown psk identity")),
        "{st:?}"
    );
    assert_eq!(w.server.session_count(), 0);
}

#[test]
fn removed_identity_cannot_resume() {
    let mut w = World::new(ServerConfig::default());
    let c = w.add_client(psk_client(), 1000);
    assert_eq!(w.handshake(c), SessionState::Established);
    w.peers[c].client.close();
    w.pump();
    w.store.remove_psk(ID);
    w.peers[c].client.reconnect(w.now).unwrap();
    w.handshake(c);
    w.pump();
    assert!(
        closed(&w).iter().any(|r| matches!(r, CloseReason::Rejected(_))),
        "{:?}",
        w.events
    );
    assert_eq!(w.server.session_count(), 0);
}

#[test]
fn no_session_before_a_valid_cookie() {
    let mut w = World::new(ServerConfig::default());
    let mut client = DtlsClient::new(psk_client()).unwrap();
    client.connect(0).unwrap();
    let ch1 = client.poll_transmit().unwrap();
    let hello = parse_client_hello(&ch1).unwrap();
    assert!(hello.cookie.is_empty());

    // cookie-less ClientHello: HelloVerifyRequest, no state
    w.server.handle_datagram(0, addr(1), &ch1);
    assert_eq!(w.server.session_count(), 0);
    let (to, hvr) = w.server.poll_transmit().unwrap();
    assert_eq!(to, addr(1));
    assert_eq!(hvr[0], record::CONTENT_HANDSHAKE);
    assert_eq!(hvr[13], record::HS_HELLO_VERIFY_REQUEST);
    assert_eq!(
        &hvr[5..11],
        &ch1[5..11],
        "record sequence number copied from the ClientHello"
    );
    assert_eq!(&hvr[25..27], &[0xFE, 0xFF], "server_version DTLS 1.0");
    assert_eq!(hvr[27], 32, "32-byte cookie");
    let cookie = hvr[28..60].to_vec();

    // a wrong cookie: a new HelloVerifyRequest, still no state
    let bad = hello.encode_with(&[0x55; 32], 1, 1);
    w.server.handle_datagram(0, addr(1), &bad);
    assert_eq!(w.server.session_count(), 0);
    assert_eq!(w.server.stats().bad_cookies, 1);
    assert!(w.server.poll_transmit().is_some());

    // the right cookie from another address (spoofing) is wrong there
    let good = hello.encode_with(&cookie, 1, 1);
    w.server.handle_datagram(0, addr(2), &good);
    assert_eq!(w.server.session_count(), 0);
    assert_eq!(w.server.stats().bad_cookies, 2);
    let _ = w.server.poll_transmit();

    // a different random with the same cookie is wrong too
    let mut other = good.clone();
    other[27] ^= 1;
    w.server.handle_datagram(0, addr(1), &other);
    assert_eq!(w.server.session_count(), 0);
    let _ = w.server.poll_transmit();

    // garbage and non-ClientHello records: dropped, counted, nothing sent
    w.server.handle_datagram(0, addr(3), b"\x17\xfe\xfd\x00\x01garbage");
    w.server.handle_datagram(0, addr(3), &[]);
    assert_eq!(w.server.stats().malformed_dropped, 2);
    assert!(matches!(
        w.server.last_malformed(),
        Some(record::ClientHelloError::Truncated { .. })
    ));
    assert!(w.server.poll_transmit().is_none());
    assert_eq!(w.server.session_count(), 0);

    // the right cookie from the right address creates the session
    w.server.handle_datagram(0, addr(1), &good);
    assert_eq!(w.server.session_count(), 1);
    assert_eq!(w.server.handshake_count(), 1);
    assert_eq!(w.server.stats().sessions_created, 1);
    assert!(w.server.poll_transmit().is_some(), "ServerHello flight");
}

#[test]
fn handshake_timeout_evicts_on_the_virtual_clock() {
    let cfg = ServerConfig {
        timing: Timing {
            handshake_timeout_ms: 30_000,
            ..Timing::default()
        },
        ..Default::default()
    };
    let mut w = World::new(cfg);
    let c = w.add_client(psk_client(), 1000);
    // let the cookie exchange through, then cut the server -> client direction
    w.drop = Box::new(|dir, _, n, _| dir == Dir::S2C && n >= 1);
    w.pump();
    assert_eq!(w.server.session_count(), 1);
    assert_eq!(w.server.handshake_count(), 1);
    w.run_until(29_999, |_| false);
    assert_eq!(w.server.session_count(), 1, "{:?}", w.events);
    assert!(
        w.server.session(&addr(1000)).unwrap().retransmissions() >= 4,
        "1+2+4+8+16 s"
    );
    w.run_until(1_000, |w| w.server.session_count() == 0);
    assert_eq!(w.now, 30_000);
    assert_eq!(w.server.session_count(), 0);
    assert_eq!(w.server.handshake_count(), 0);
    assert_eq!(closed(&w), vec![CloseReason::HandshakeTimeout]);
    assert_eq!(w.server.stats().handshake_timeouts, 1);
    let _ = c;
}

#[test]
fn idle_sessions_are_evicted_and_resume_afterwards() {
    let cfg = ServerConfig {
        idle_timeout_ms: 60_000,
        ..Default::default()
    };
    let mut w = World::new(cfg);
    let c = w.add_client(psk_client(), 1000);
    assert_eq!(w.handshake(c), SessionState::Established);
    w.now = 30_000;
    w.peers[c].client.send(b"ping").unwrap();
    w.pump();
    // idle deadline is now 90 s
    let received = w.peers[c].received;
    w.now = 89_999;
    w.server.handle_timeout(w.now);
    assert_eq!(w.server.session_count(), 1);
    assert_eq!(w.server.poll_timeout(), Some(90_000));
    w.now = 90_000;
    w.server.handle_timeout(w.now);
    w.pump();
    assert_eq!(w.server.session_count(), 0);
    assert_eq!(closed(&w), vec![CloseReason::IdleTimeout]);
    assert_eq!(w.server.stats().idle_evictions, 1);
    assert_eq!(w.peers[c].received, received, "nothing sent on eviction");

    // the client wakes up (queue mode) and resumes
    w.peers[c].client.reconnect(w.now).unwrap();
    assert_eq!(w.handshake(c), SessionState::Established);
    assert!(w.peers[c].client.session_reused());
    assert_eq!(established(&w).last().map(|e| e.2), Some(true));
}

#[test]
fn resumption_after_address_change_is_abbreviated() {
    let mut w = World::new(ServerConfig::default());
    let c = w.add_client(psk_client(), 1000);
    assert_eq!(w.handshake(c), SessionState::Established);
    assert!(!w.peers[c].client.session_reused());
    assert!(w.peers[c].client.has_cached_session());
    let full = w.peers[c].sent + w.peers[c].received;
    // NAT rebinding: new port, no close_notify
    w.peers[c].addr = addr(2000);
    let (s0, r0) = (w.peers[c].sent, w.peers[c].received);
    w.peers[c].client.reconnect(w.now).unwrap();
    assert_eq!(w.handshake(c), SessionState::Established);
    assert!(w.peers[c].client.session_reused());
    assert_eq!(w.peers[c].client.peer_identity(), Some(&PeerIdentity::Psk(ID.to_vec())));
    let ev = established(&w);
    assert_eq!(ev.last(), Some(&(addr(2000), PeerIdentity::Psk(ID.to_vec()), true)));
    assert_eq!(w.server.stats().resumed, 1);
    let abbreviated = w.peers[c].sent - s0 + w.peers[c].received - r0;
    assert!(abbreviated < full, "abbreviated {abbreviated} datagrams vs full {full}");
    w.peers[c].client.send(b"after").unwrap();
    w.pump();
    assert_eq!(app_data(&w), vec![b"after".to_vec()]);
    // without resumption the second handshake is a full one
    let cfg = ClientConfig {
        resumption: false,
        ..psk_client()
    };
    let d = w.add_client(cfg, 3000);
    assert_eq!(w.handshake(d), SessionState::Established);
    w.peers[d].client.reconnect(w.now).unwrap();
    assert_eq!(w.handshake(d), SessionState::Established);
    assert!(!w.peers[d].client.session_reused());
}

#[test]
fn new_handshake_from_same_address_replaces_session() {
    let mut w = World::new(ServerConfig::default());
    let c = w.add_client(psk_client(), 1000);
    assert_eq!(w.handshake(c), SessionState::Established);
    // a delayed duplicate of the ClientHello must not disturb the session
    w.peers[c].client.forget_session();
    w.peers[c].client.reconnect(w.now).unwrap();
    assert_eq!(w.handshake(c), SessionState::Established);
    assert_eq!(closed(&w), vec![CloseReason::Replaced]);
    assert_eq!(established(&w).len(), 2);
    assert_eq!(w.server.session_count(), 1);
    w.peers[c].client.send(b"new").unwrap();
    w.pump();
    assert_eq!(app_data(&w), vec![b"new".to_vec()]);
}

#[test]
fn capacity_limits() {
    let cfg = ServerConfig {
        max_sessions: 1,
        ..Default::default()
    };
    let mut w = World::new(cfg);
    let a = w.add_client(psk_client(), 1000);
    assert_eq!(w.handshake(a), SessionState::Established);
    let b = w.add_client(psk_client(), 1001);
    w.run_until(5_000, |_| false);
    assert_eq!(w.peers[b].client.state(), &SessionState::Handshaking);
    assert_eq!(w.server.session_count(), 1);
    assert!(w.server.stats().rejected_capacity >= 1);

    let cfg = ServerConfig {
        max_handshakes: 1,
        ..Default::default()
    };
    let mut w = World::new(cfg);
    w.drop = Box::new(|dir, peer, n, _| peer == 0 && dir == Dir::S2C && n >= 1);
    let _a = w.add_client(psk_client(), 1000);
    w.pump();
    assert_eq!(w.server.handshake_count(), 1);
    let b = w.add_client(psk_client(), 1001);
    w.pump();
    assert_eq!(w.server.session_count(), 1);
    assert_eq!(w.server.stats().rejected_capacity, 1);
    assert_eq!(w.peers[b].client.state(), &SessionState::Handshaking);
}

/// Runs a lossless handshake and returns (client->server, server->client) datagram counts.
fn lossless_counts(resume: bool) -> (usize, usize) {
    let mut w = World::new(ServerConfig::default());
    let c = w.add_client(psk_client(), 1000);
    assert_eq!(w.handshake(c), SessionState::Established);
    if resume {
        let (s, r) = (w.peers[c].sent, w.peers[c].received);
        w.peers[c].client.reconnect(w.now).unwrap();
        assert_eq!(w.handshake(c), SessionState::Established);
        return (w.peers[c].sent - s, w.peers[c].received - r);
    }
    (w.peers[c].sent, w.peers[c].received)
}

/// Drops the first transmission of the datagrams selected by `lost(dir, index, c2s_total, s2c_total)`.
fn handshake_with_loss(resume: bool, lost: fn(Dir, usize, usize, usize) -> bool) -> World {
    let (tc, ts) = lossless_counts(resume);
    let mut w = World::new(ServerConfig::default());
    let c = w.add_client(psk_client(), 1000);
    let mut base = (0, 0);
    if resume {
        assert_eq!(w.handshake(c), SessionState::Established);
        base = (w.peers[c].sent, w.peers[c].received);
        w.peers[c].client.reconnect(w.now).unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    w.drop = Box::new(move |dir, _, n, d| {
        let idx = n - if dir == Dir::C2S { base.0 } else { base.1 };
        if n < if dir == Dir::C2S { base.0 } else { base.1 } {
            return false;
        }
        lost(dir, idx, tc, ts) && seen.insert(d.to_vec())
    });
    let start = w.now;
    let done = w.run_until(600_000, |w| {
        w.peers[0].client.state() == &SessionState::Established
            && w.server.session_count() == 1
            && w.server.handshake_count() == 0
    });
    assert!(done, "events {:?}", w.events);
    assert!(w.dropped >= 1);
    assert!(w.now > start, "recovery needed a timer");
    w.pump();
    assert_eq!(w.server.session_count(), 1);
    assert_eq!(w.server.handshake_count(), 0, "server finished too");
    // data flows both ways after recovery
    w.peers[c].client.send(b"up").unwrap();
    w.pump();
    assert_eq!(app_data(&w), vec![b"up".to_vec()]);
    w.server.send(w.now, addr(1000), b"down").unwrap();
    w.pump();
    assert_eq!(w.peers[c].rx, vec![b"down".to_vec()]);
    assert_eq!(w.peers[c].client.session_reused(), resume);
    w
}

#[test]
fn lost_client_hello_is_retransmitted() {
    let w = handshake_with_loss(false, |d, i, _, _| d == Dir::C2S && i == 0);
    assert_eq!(w.now, 1_000, "initial retransmission timeout 1 s");
}

#[test]
fn lost_hello_verify_request_is_recovered() {
    handshake_with_loss(false, |d, i, _, _| d == Dir::S2C && i == 0);
}

#[test]
fn lost_server_hello_flight_is_retransmitted() {
    handshake_with_loss(false, |d, i, _, _| d == Dir::S2C && i == 1);
}

#[test]
fn lost_client_key_exchange_flight_is_retransmitted() {
    handshake_with_loss(false, |d, i, tc, _| d == Dir::C2S && i >= 2 && i < tc);
}

#[test]
fn lost_final_server_flight_is_recovered() {
    // the server sent the last flight; the client retransmits its flight, the server answers the duplicate
    handshake_with_loss(false, |d, i, _, ts| d == Dir::S2C && i == ts - 1);
}

#[test]
fn lost_final_client_flight_in_abbreviated_handshake_is_recovered() {
    handshake_with_loss(true, |d, i, tc, _| d == Dir::C2S && i == tc - 1);
}

#[test]
fn lost_server_flight_in_abbreviated_handshake_is_recovered() {
    handshake_with_loss(true, |d, i, _, ts| d == Dir::S2C && i == ts - 1);
}

#[test]
fn retransmission_backoff_doubles_up_to_60s() {
    let mut w = World::new(ServerConfig::default());
    let c = w.add_client(psk_client(), 1000);
    w.drop = Box::new(|_, _, _, _| true);
    let mut times = Vec::new();
    for _ in 0..9 {
        w.pump();
        w.advance();
        times.push(w.now);
    }
    assert_eq!(&times[..7], &[1_000, 3_000, 7_000, 15_000, 31_000, 63_000, 120_000]);
    // the handshake timeout (120 s) ends it
    assert_eq!(
        w.peers[c].client.state(),
        &SessionState::Closed(CloseReason::HandshakeTimeout)
    );
}

// ---------------------------------------------------------------- cipher suites

fn psk_with_suites(suites: Vec<CipherSuite>) -> ClientConfig {
    ClientConfig {
        suites: Some(suites),
        ..psk_client()
    }
}

#[test]
fn cbc_and_gcm_are_configurable() {
    // default server: CCM_8 + CBC_SHA256 (LwM2M server requirement), no GCM
    let mut w = World::new(ServerConfig::default());
    let c = w.add_client(psk_with_suites(vec![CipherSuite::PskAes128CbcSha256]), 1000);
    assert_eq!(w.handshake(c), SessionState::Established);
    assert_eq!(
        w.peers[c].client.session().unwrap().cipher_name(),
        Some("PSK-AES128-CBC-SHA256")
    );
    w.peers[c].client.send(b"cbc").unwrap();
    w.pump();
    assert_eq!(app_data(&w), vec![b"cbc".to_vec()]);

    let g = w.add_client(psk_with_suites(vec![CipherSuite::PskAes128GcmSha256]), 1001);
    let st = w.handshake(g);
    assert!(
        matches!(&st, SessionState::Closed(CloseReason::HandshakeFailed(m)) if m.contains("handshake failure")),
        "{st:?}"
    );

    // GCM enabled on the server
    let cfg = ServerConfig {
        ciphers: CipherOptions {
            cbc_sha256: false,
            gcm: true,
        },
        ..Default::default()
    };
    let mut w = World::new(cfg);
    let g = w.add_client(psk_with_suites(vec![CipherSuite::PskAes128GcmSha256]), 1001);
    assert_eq!(w.handshake(g), SessionState::Established);
    assert_eq!(
        w.peers[g].client.session().unwrap().cipher_name(),
        Some("PSK-AES128-GCM-SHA256")
    );
    let b = w.add_client(psk_with_suites(vec![CipherSuite::PskAes128CbcSha256]), 1002);
    assert!(matches!(
        w.handshake(b),
        SessionState::Closed(CloseReason::HandshakeFailed(_))
    ));
    // a client proposing only certificate suites in PSK mode is a configuration error
    assert!(matches!(
        DtlsClient::new(psk_with_suites(vec![CipherSuite::EcdheEcdsaAes128Ccm8])),
        Err(DtlsError::Config(_))
    ));
}

#[test]
fn client_config_errors() {
    assert!(matches!(
        DtlsClient::new(ClientConfig::psk(b"a\0b".to_vec(), KEY)),
        Err(DtlsError::Config(_))
    ));
    assert!(matches!(
        DtlsClient::new(ClientConfig::psk(ID, Vec::new())),
        Err(DtlsError::Config(_))
    ));
    let rpk = ClientConfig {
        security: ClientSecurity::Rpk(RawPublicKey {
            private_key_der: vec![],
            peer_spki_der: None,
        }),
        ..psk_client()
    };
    // Without the `vendored` feature RPK is unsupported; with it the empty key is a configuration error.
    #[cfg(not(feature = "vendored"))]
    assert!(matches!(DtlsClient::new(rpk), Err(DtlsError::Unsupported(m)) if m.contains("RPK")));
    #[cfg(feature = "vendored")]
    assert!(matches!(DtlsClient::new(rpk), Err(DtlsError::Config(_))));
    // not connected yet
    let mut c = DtlsClient::new(psk_client()).unwrap();
    assert_eq!(c.state(), &SessionState::Closed(CloseReason::LocalClose));
    assert_eq!(c.send(b"x"), Err(DtlsError::Closed));
    assert!(c.poll_transmit().is_none());
    c.connect(0).unwrap();
    assert_eq!(c.state(), &SessionState::Handshaking);
    assert!(c.poll_transmit().is_some());
    assert_eq!(c.poll_timeout(), Some(1_000));
}

// ---------------------------------------------------------------- X.509

struct Pki {
    ca: TestCa,
    server: (openssl::x509::X509, openssl::pkey::PKey<openssl::pkey::Private>),
    client: (openssl::x509::X509, openssl::pkey::PKey<openssl::pkey::Private>),
}

fn pki() -> Pki {
    let ca = TestCa::new("lwm2m test CA");
    let server = ca.issue("lwm2m.test", Some("lwm2m.test"));
    let client = ca.issue("urn:imei:42", None);
    Pki { ca, server, client }
}

fn x509_server(p: &Pki) -> ServerConfig {
    ServerConfig {
        x509: Some(ServerX509 {
            certified_key: certified(&p.server.0, &p.server.1),
            client_trust_anchors_der: vec![p.ca.cert.to_der().unwrap()],
            require_client_cert: true,
        }),
        ..Default::default()
    }
}

fn x509_client(p: &Pki, usage: CertificateUsage, given: &openssl::x509::X509, name: Option<&str>) -> ClientConfig {
    ClientConfig {
        security: ClientSecurity::X509 {
            own: certified(&p.client.0, &p.client.1),
            trust: ServerTrust {
                usage,
                certificate_der: given.to_der().unwrap(),
                server_name: name.map(str::to_string),
                extra_trust_anchors: Vec::new(),
            },
        },
        ..psk_client()
    }
}

fn x509_handshake(_p: &Pki, server: ServerConfig, client: ClientConfig) -> (World, SessionState) {
    let mut w = World::new(server);
    let c = w.add_client(client, 1000);
    let st = w.handshake(c);
    (w, st)
}

#[test]
fn x509_ca_constraint_with_name_check() {
    let p = pki();
    let (mut w, st) = x509_handshake(
        &p,
        x509_server(&p),
        x509_client(&p, CertificateUsage::CaConstraint, &p.ca.cert, Some("lwm2m.test")),
    );
    assert_eq!(st, SessionState::Established);
    assert_eq!(
        w.peers[0].client.session().unwrap().cipher_name(),
        Some("ECDHE-ECDSA-AES128-CCM8")
    );
    let client_der = p.client.0.to_der().unwrap();
    assert_eq!(
        established(&w),
        vec![(
            addr(1000),
            PeerIdentity::X509 {
                common_name: Some("urn:imei:42".into()),
                cert_der: client_der.clone()
            },
            false
        )]
    );
    assert!(matches!(w.peers[0].client.peer_identity(),
        Some(PeerIdentity::X509 { common_name: Some(cn), .. }) if cn == "lwm2m.test"));
    w.peers[0].client.send(b"x509").unwrap();
    w.pump();
    assert_eq!(app_data(&w), vec![b"x509".to_vec()]);
    // resumption keeps the certificate identity
    w.peers[0].client.reconnect(w.now).unwrap();
    assert_eq!(w.handshake(0), SessionState::Established);
    assert!(w.peers[0].client.session_reused());
    assert_eq!(
        established(&w).last(),
        Some(&(
            addr(1000),
            PeerIdentity::X509 {
                common_name: Some("urn:imei:42".into()),
                cert_der: client_der
            },
            true
        ))
    );
}

#[test]
fn x509_name_mismatch_fails() {
    let p = pki();
    let (_, st) = x509_handshake(
        &p,
        x509_server(&p),
        x509_client(&p, CertificateUsage::CaConstraint, &p.ca.cert, Some("other.test")),
    );
    assert!(
        matches!(&st, SessionState::Closed(CloseReason::HandshakeFailed(m)) if m.contains("certificate verify failed")),
        "{st:?}"
    );
}

#[test]
fn x509_cn_is_used_when_there_is_no_san() {
    let p = pki();
    let server = p.ca.issue("cn-only.test", None);
    let mut cfg = x509_server(&p);
    cfg.x509.as_mut().unwrap().certified_key = certified(&server.0, &server.1);
    let (_, st) = x509_handshake(
        &p,
        cfg.clone(),
        x509_client(&p, CertificateUsage::CaConstraint, &p.ca.cert, Some("cn-only.test")),
    );
    assert_eq!(st, SessionState::Established);
    let (_, st) = x509_handshake(
        &p,
        cfg,
        x509_client(&p, CertificateUsage::CaConstraint, &p.ca.cert, Some("lwm2m.test")),
    );
    assert!(matches!(st, SessionState::Closed(CloseReason::HandshakeFailed(_))));
}

#[test]
fn x509_untrusted_ca_fails() {
    let p = pki();
    let other = TestCa::new("other CA");
    let (_, st) = x509_handshake(
        &p,
        x509_server(&p),
        x509_client(&p, CertificateUsage::CaConstraint, &other.cert, Some("lwm2m.test")),
    );
    assert!(
        matches!(st, SessionState::Closed(CloseReason::HandshakeFailed(_))),
        "{st:?}"
    );
    let (_, st) = x509_handshake(
        &p,
        x509_server(&p),
        x509_client(
            &p,
            CertificateUsage::TrustAnchorAssertion,
            &other.cert,
            Some("lwm2m.test"),
        ),
    );
    assert!(
        matches!(st, SessionState::Closed(CloseReason::HandshakeFailed(_))),
        "{st:?}"
    );
}

#[test]
fn x509_trust_anchor_assertion() {
    let p = pki();
    let (_, st) = x509_handshake(
        &p,
        x509_server(&p),
        x509_client(
            &p,
            CertificateUsage::TrustAnchorAssertion,
            &p.ca.cert,
            Some("lwm2m.test"),
        ),
    );
    assert_eq!(st, SessionState::Established);
}

#[test]
fn x509_domain_issued_is_an_exact_match() {
    let p = pki();
    // exact match: no PKIX (the client has no CA at all) and no name check
    let (_, st) = x509_handshake(
        &p,
        x509_server(&p),
        x509_client(
            &p,
            CertificateUsage::DomainIssuedCertificate,
            &p.server.0,
            Some("not-the-name.test"),
        ),
    );
    assert_eq!(st, SessionState::Established);
    // a different certificate of the same CA, same name: refused
    let twin = p.ca.issue("lwm2m.test", Some("lwm2m.test"));
    let (_, st) = x509_handshake(
        &p,
        x509_server(&p),
        x509_client(
            &p,
            CertificateUsage::DomainIssuedCertificate,
            &twin.0,
            Some("lwm2m.test"),
        ),
    );
    assert!(
        matches!(st, SessionState::Closed(CloseReason::HandshakeFailed(_))),
        "{st:?}"
    );
}

#[test]
fn x509_service_certificate_constraint() {
    let p = pki();
    let mut cfg = x509_client(
        &p,
        CertificateUsage::ServiceCertificateConstraint,
        &p.server.0,
        Some("lwm2m.test"),
    );
    if let ClientSecurity::X509 { trust, .. } = &mut cfg.security {
        trust.extra_trust_anchors = vec![p.ca.cert.to_der().unwrap()];
    }
    let (_, st) = x509_handshake(&p, x509_server(&p), cfg);
    assert_eq!(st, SessionState::Established);
    // same certificate but no trust anchor to validate it: refused
    let cfg = x509_client(
        &p,
        CertificateUsage::ServiceCertificateConstraint,
        &p.server.0,
        Some("lwm2m.test"),
    );
    let (_, st) = x509_handshake(&p, x509_server(&p), cfg);
    assert!(
        matches!(st, SessionState::Closed(CloseReason::HandshakeFailed(_))),
        "{st:?}"
    );
}

#[test]
fn x509_server_refuses_client_of_another_ca_and_denied_cn() {
    let p = pki();
    let other = TestCa::new("other CA");
    let stranger = other.issue("urn:imei:666", None);
    let mut cfg = x509_client(&p, CertificateUsage::CaConstraint, &p.ca.cert, Some("lwm2m.test"));
    if let ClientSecurity::X509 { own, .. } = &mut cfg.security {
        *own = certified(&stranger.0, &stranger.1);
    }
    let (w, st) = x509_handshake(&p, x509_server(&p), cfg);
    assert!(
        matches!(st, SessionState::Closed(CloseReason::HandshakeFailed(_))),
        "{st:?}"
    );
    assert!(established(&w).is_empty());
    assert_eq!(w.server.session_count(), 0);

    // chains fine, but the credential store refuses the CN
    let mut w = World::new(x509_server(&p));
    w.store.deny_common_name("urn:imei:42");
    let c = w.add_client(
        x509_client(&p, CertificateUsage::CaConstraint, &p.ca.cert, Some("lwm2m.test")),
        1000,
    );
    w.handshake(c);
    w.pump();
    assert!(
        matches!(closed(&w).as_slice(), [CloseReason::Rejected(_)]),
        "{:?}",
        w.events
    );
    assert!(established(&w).is_empty());
    assert_eq!(w.server.session_count(), 0);
}

#[test]
fn server_with_psk_and_x509_serves_both() {
    let p = pki();
    let mut w = World::new(x509_server(&p));
    let a = w.add_client(psk_client(), 1000);
    let b = w.add_client(
        x509_client(&p, CertificateUsage::CaConstraint, &p.ca.cert, Some("lwm2m.test")),
        1001,
    );
    assert_eq!(w.handshake(a), SessionState::Established);
    assert_eq!(w.handshake(b), SessionState::Established);
    assert_eq!(w.server.session_count(), 2);
}

// ---------------------------------------------------------------- robustness

mod robustness {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn garbage_from_unknown_peers_never_allocates(dgs in vec((any::<u8>(), vec(any::<u8>(), 0..200)), 1..20)) {
            let mut w = World::new(ServerConfig::default());
            for (port, d) in &dgs {
                w.server.handle_datagram(0, addr(u16::from(*port)), d);
            }
            prop_assert_eq!(w.server.session_count(), 0);
            prop_assert_eq!(w.server.stats().sessions_created, 0);
        }

        #[test]
        fn mutated_client_hellos_never_allocate(pos in any::<prop::sample::Index>(), val in any::<u8>(), cut in any::<prop::sample::Index>()) {
            let mut w = World::new(ServerConfig::default());
            let mut client = DtlsClient::new(psk_client()).unwrap();
            client.connect(0).unwrap();
            let mut ch = client.poll_transmit().unwrap();
            let i = pos.index(ch.len());
            ch[i] = val;
            w.server.handle_datagram(0, addr(1), &ch);
            let n = cut.index(ch.len());
            w.server.handle_datagram(0, addr(1), &ch[..n]);
            prop_assert_eq!(w.server.session_count(), 0);
        }

        #[test]
        fn garbage_does_not_break_an_established_session(dgs in vec(vec(any::<u8>(), 0..100), 1..8), flip in any::<prop::sample::Index>()) {
            let mut w = World::new(ServerConfig::default());
            let c = w.add_client(psk_client(), 1000);
            prop_assert_eq!(w.handshake(c), SessionState::Established);
            for d in &dgs {
                w.server.handle_datagram(w.now, addr(1000), d);
                w.peers[c].client.handle_datagram(w.now, d);
            }
            // a tampered record is dropped
            w.peers[c].client.send(b"tampered").unwrap();
            let mut rec = w.peers[c].client.poll_transmit().unwrap();
            let i = flip.index(rec.len());
            rec[i] ^= 0x01;
            w.server.handle_datagram(w.now, addr(1000), &rec);
            w.pump();
            prop_assert!(app_data(&w).is_empty());
            // and the session still works both ways
            w.peers[c].client.send(b"still fine").unwrap();
            w.pump();
            prop_assert_eq!(app_data(&w), vec![b"still fine".to_vec()]);
            w.server.send(w.now, addr(1000), b"yes").unwrap();
            w.pump();
            prop_assert_eq!(w.peers[c].rx.last().cloned(), Some(b"yes".to_vec()));
            prop_assert_eq!(w.server.session_count(), 1);
        }
    }
}
