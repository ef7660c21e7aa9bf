//! Raw public key (RFC 7250) tests: our client against our server, in memory, on P-256 keys made here.
//!
//! With the `vendored` feature (OpenSSL 3.6 built from source) RPK works; without it every RPK configuration
//! must fail with the clear `Unsupported` error. No interop test against `openssl s_client`/`s_server`: the
//! system OpenSSL is 3.0, which has no RPK.

use std::sync::Arc;

use openssl::pkey::{PKey, Private};

use crate::testutil::*;
use crate::*;

/// Key pair as (private PKCS#8 DER, SubjectPublicKeyInfo DER).
fn p256() -> (PKey<Private>, Vec<u8>, Vec<u8>) {
    let k = ec_key();
    let private = k.private_key_to_pkcs8().unwrap();
    let spki = k.public_key_to_der().unwrap();
    (k, private, spki)
}

fn rpk_client(own_private: &[u8], server_spki: &[u8]) -> ClientConfig {
    ClientConfig {
        security: ClientSecurity::Rpk(RawPublicKey::new(own_private.to_vec(), Some(server_spki.to_vec()))),
        ..ClientConfig::psk(ID, KEY)
    }
}

fn rpk_server(own_private: &[u8]) -> ServerConfig {
    ServerConfig {
        psk: false,
        rpk: Some(RawPublicKey::new(own_private.to_vec(), None)),
        ..ServerConfig::default()
    }
}

#[test]
fn raw_public_key_helpers() {
    let (k, private, spki) = p256();
    let rpk = RawPublicKey::new(private.clone(), None);
    assert_eq!(rpk.public_key_der().unwrap(), spki);
    assert_eq!(rpk.public_key_der().unwrap(), k.public_key_to_der().unwrap());
    // SEC1/traditional DER works too
    let sec1 = k.ec_key().unwrap().private_key_to_der().unwrap();
    assert_eq!(RawPublicKey::new(sec1, None).public_key_der().unwrap(), spki);
    // the key material never shows in Debug
    let dbg = format!("{:?}", RawPublicKey::new(private, Some(spki)));
    assert_eq!(dbg, "RawPublicKey { has_peer_key: true, .. }");
    assert!(matches!(
        RawPublicKey::new(vec![1, 2, 3], None).public_key_der(),
        Err(DtlsError::Config(m)) if m.contains("private key")
    ));
    let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    assert!(matches!(
        RawPublicKey::new(rsa.private_key_to_pkcs8().unwrap(), None).public_key_der(),
        Err(DtlsError::Config(m)) if m.contains("EC key")
    ));
}

#[cfg(not(feature = "vendored"))]
#[test]
fn rpk_is_unsupported_without_the_vendored_feature() {
    let (_, private, spki) = p256();
    let c = DtlsClient::new(rpk_client(&private, &spki));
    assert!(
        matches!(&c, Err(DtlsError::Unsupported(m)) if m.contains("RPK") && m.contains("vendored")),
        "{c:?}"
    );
    let store: Arc<dyn CredentialStore> = Arc::new(MemoryCredentialStore::new());
    let s = DtlsServer::new(rpk_server(&private), store);
    assert!(
        matches!(&s, Err(DtlsError::Unsupported(m)) if m.contains("RPK") && m.contains("vendored")),
        "{s:?}"
    );
}

#[cfg(feature = "vendored")]
mod vendored {
    use super::*;
    use crate::session::CloseReason;

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
    fn linked_openssl_has_rpk() {
        assert!(openssl::version::number() >= 0x3020_0000, "{}", openssl_version());
    }

    #[test]
    fn rpk_handshake_ecdhe_ecdsa_ccm8_p256_both_ways() {
        let (_, server_private, server_spki) = p256();
        let (_, client_private, client_spki) = p256();
        let mut w = World::new(rpk_server(&server_private));
        w.store.add_rpk(client_spki.clone());
        let c = w.add_client(rpk_client(&client_private, &server_spki), 1000);
        assert_eq!(w.handshake(c), SessionState::Established, "{:?}", w.events);

        // identities: the SPKI DER on both sides
        assert_eq!(
            established(&w),
            vec![(addr(1000), PeerIdentity::Rpk(client_spki.clone()), false)]
        );
        assert_eq!(
            w.peers[c].client.peer_identity(),
            Some(&PeerIdentity::Rpk(server_spki.clone()))
        );

        // cipher, certificate types and curve
        let cs = w.peers[c].client.session().unwrap();
        let ss = w.server.session(&addr(1000)).unwrap();
        assert_eq!(cs.cipher_name(), Some("ECDHE-ECDSA-AES128-CCM8"));
        assert_eq!(ss.cipher_name(), Some("ECDHE-ECDSA-AES128-CCM8"));
        assert_eq!(
            cs.ssl().current_cipher().map(|c| c.name()),
            Some("ECDHE-ECDSA-AES128-CCM8")
        );
        assert_eq!(
            cs.negotiated_cert_types(),
            (2, 2),
            "client and server certificate type RPK"
        );
        assert_eq!(ss.negotiated_cert_types(), (2, 2));
        assert!(cs.ssl().peer_certificate().is_none(), "no certificate was exchanged");
        assert!(ss.ssl().peer_certificate().is_none());
        let eph = cs.ssl().peer_tmp_key().unwrap();
        assert_eq!(
            eph.ec_key().unwrap().group().curve_name(),
            Some(openssl::nid::Nid::X9_62_PRIME256V1),
            "ECDHE on secp256r1"
        );

        // application data both ways
        w.peers[c].client.send(b"hello over rpk").unwrap();
        w.pump();
        assert_eq!(app_data(&w), vec![b"hello over rpk".to_vec()]);
        w.server.send(w.now, addr(1000), b"answer").unwrap();
        w.pump();
        assert_eq!(w.peers[c].rx, vec![b"answer".to_vec()]);
    }

    #[test]
    fn rpk_with_the_cbc_sha256_suite_the_server_must_also_accept() {
        let (_, server_private, server_spki) = p256();
        let (_, client_private, client_spki) = p256();
        let mut w = World::new(rpk_server(&server_private));
        w.store.add_rpk(client_spki.clone());
        let cfg = ClientConfig {
            suites: Some(vec![CipherSuite::EcdheEcdsaAes128CbcSha256]),
            ..rpk_client(&client_private, &server_spki)
        };
        let c = w.add_client(cfg, 1000);
        assert_eq!(w.handshake(c), SessionState::Established, "{:?}", w.events);
        assert_eq!(
            w.peers[c].client.session().unwrap().cipher_name(),
            Some("ECDHE-ECDSA-AES128-SHA256")
        );
        assert_eq!(
            established(&w),
            vec![(addr(1000), PeerIdentity::Rpk(client_spki), false)]
        );
    }

    #[test]
    fn server_rejects_an_unknown_client_key() {
        let (_, server_private, server_spki) = p256();
        let (_, client_private, _) = p256();
        let (_, _, other_spki) = p256();
        let mut w = World::new(rpk_server(&server_private));
        w.store.add_rpk(other_spki); // some other device's key
        let c = w.add_client(rpk_client(&client_private, &server_spki), 1000);
        let st = w.handshake(c);
        assert!(
            matches!(&st, SessionState::Closed(CloseReason::HandshakeFailed(_))),
            "{st:?}"
        );
        w.pump();
        assert!(established(&w).is_empty(), "{:?}", w.events);
        assert!(
            closed(&w)
                .iter()
                .any(|r| matches!(r, CloseReason::HandshakeFailed(m) if m.contains("certificate verify failed"))),
            "{:?}",
            w.events
        );
        assert_eq!(w.server.session_count(), 0);
        assert_eq!(w.server.stats().established, 0);
        assert_eq!(w.server.stats().handshake_failures, 1);
    }

    #[test]
    fn client_rejects_a_server_key_other_than_the_configured_one() {
        let (_, server_private, _) = p256();
        let (_, client_private, client_spki) = p256();
        let (_, _, expected_spki) = p256(); // /0/x/4 names another key
        let mut w = World::new(rpk_server(&server_private));
        w.store.add_rpk(client_spki);
        let c = w.add_client(rpk_client(&client_private, &expected_spki), 1000);
        let st = w.handshake(c);
        assert!(
            matches!(&st, SessionState::Closed(CloseReason::HandshakeFailed(m)) if m.contains("certificate verify failed")),
            "{st:?}"
        );
        assert!(w.peers[c].client.peer_identity().is_none());
        w.pump();
        assert!(established(&w).is_empty(), "{:?}", w.events);
        assert_eq!(
            w.server.session_count(),
            0,
            "the client's alert ends the server side too"
        );
    }

    #[test]
    fn client_refuses_a_server_that_only_has_a_certificate() {
        let ca = TestCa::new("ca");
        let (cert, key) = ca.issue("server", None);
        let cfg = ServerConfig {
            psk: false,
            x509: Some(ServerX509 {
                certified_key: certified(&cert, &key),
                client_trust_anchors_der: vec![ca.cert.to_der().unwrap()],
                require_client_cert: true,
            }),
            ..ServerConfig::default()
        };
        let (_, client_private, _) = p256();
        // even with the certificate's own key as /0/x/4: RPK was not negotiated
        let mut w = World::new(cfg);
        let c = w.add_client(rpk_client(&client_private, &key.public_key_to_der().unwrap()), 1000);
        let st = w.handshake(c);
        assert!(matches!(&st, SessionState::Closed(_)), "{st:?}");
        assert!(established(&w).is_empty());
    }

    #[test]
    fn rpk_session_resumes_after_address_change_and_rechecks_the_store() {
        let (_, server_private, server_spki) = p256();
        let (_, client_private, client_spki) = p256();
        let mut w = World::new(rpk_server(&server_private));
        w.store.add_rpk(client_spki.clone());
        let c = w.add_client(rpk_client(&client_private, &server_spki), 1000);
        assert_eq!(w.handshake(c), SessionState::Established);
        assert!(w.peers[c].client.has_cached_session());

        w.peers[c].addr = addr(2000);
        w.peers[c].client.reconnect(w.now).unwrap();
        assert_eq!(w.handshake(c), SessionState::Established);
        assert!(w.peers[c].client.session_reused());
        assert_eq!(
            established(&w).last(),
            Some(&(addr(2000), PeerIdentity::Rpk(client_spki.clone()), true))
        );
        assert_eq!(
            w.peers[c].client.peer_identity(),
            Some(&PeerIdentity::Rpk(server_spki.clone()))
        );

        // a key removed from the store cannot resume either
        let mut w2 = World::new(rpk_server(&server_private));
        let shared = Arc::new(RevocableRpk::new(client_spki.clone()));
        w2.server = DtlsServer::new(rpk_server(&server_private), shared.clone()).unwrap();
        let d = w2.add_client(rpk_client(&client_private, &server_spki), 1000);
        assert_eq!(w2.handshake(d), SessionState::Established);
        shared.revoke();
        w2.peers[d].addr = addr(3000);
        w2.peers[d].client.reconnect(w2.now).unwrap();
        w2.handshake(d);
        w2.pump();
        assert!(
            closed(&w2)
                .iter()
                .any(|r| matches!(r, CloseReason::Rejected(m) if m.contains("raw public key"))),
            "{:?}",
            w2.events
        );
        assert!(
            w2.server.session(&addr(3000)).is_none(),
            "the resumed session was dropped"
        );
        assert!(
            matches!(w2.peers[d].client.state(), SessionState::Closed(_)),
            "{:?}",
            w2.peers[d].client.state()
        );
    }

    /// A store allowing one key until revoked.
    struct RevocableRpk {
        key: Vec<u8>,
        revoked: std::sync::atomic::AtomicBool,
    }

    impl RevocableRpk {
        fn new(key: Vec<u8>) -> Self {
            RevocableRpk {
                key,
                revoked: std::sync::atomic::AtomicBool::new(false),
            }
        }
        fn revoke(&self) {
            self.revoked.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    impl CredentialStore for RevocableRpk {
        fn psk_for_identity(&self, _identity: &[u8]) -> Option<Vec<u8>> {
            None
        }
        fn rpk_allowed(&self, spki_der: &[u8]) -> bool {
            !self.revoked.load(std::sync::atomic::Ordering::SeqCst) && spki_der == self.key.as_slice()
        }
    }

    #[test]
    fn one_server_serves_psk_and_rpk_clients() {
        let (_, server_private, server_spki) = p256();
        let (_, client_private, client_spki) = p256();
        let cfg = ServerConfig {
            psk: true,
            ..rpk_server(&server_private)
        };
        let mut w = World::new(cfg);
        w.store.add_rpk(client_spki.clone());
        let r = w.add_client(rpk_client(&client_private, &server_spki), 1000);
        let p = w.add_client(ClientConfig::psk(ID, KEY), 1001);
        assert_eq!(w.handshake(r), SessionState::Established);
        assert_eq!(w.handshake(p), SessionState::Established);
        let mut ids: Vec<PeerIdentity> = established(&w).into_iter().map(|e| e.1).collect();
        ids.sort_by_key(|i| format!("{i:?}"));
        assert_eq!(
            ids,
            vec![PeerIdentity::Psk(ID.to_vec()), PeerIdentity::Rpk(client_spki)]
        );
        assert_eq!(
            w.peers[p].client.session().unwrap().cipher_name(),
            Some("PSK-AES128-CCM8")
        );
        assert_eq!(w.peers[p].client.session().unwrap().negotiated_cert_types(), (0, 0));
    }

    #[test]
    fn one_server_serves_x509_and_rpk_clients_with_one_key_pair() {
        let ca = TestCa::new("ca");
        let (server_cert, server_key) = ca.issue("lwm2m.test", Some("lwm2m.test"));
        let (client_cert, client_cert_key) = ca.issue("urn:imei:42", None);
        let (_, client_private, client_spki) = p256();
        let x509 = ServerX509 {
            certified_key: certified(&server_cert, &server_key),
            client_trust_anchors_der: vec![ca.cert.to_der().unwrap()],
            require_client_cert: true,
        };
        let cfg = ServerConfig {
            psk: false,
            x509: Some(x509.clone()),
            rpk: Some(RawPublicKey::new(server_key.private_key_to_pkcs8().unwrap(), None)),
            ..ServerConfig::default()
        };
        let mut w = World::new(cfg);
        w.store.add_rpk(client_spki.clone());
        let server_spki = server_key.public_key_to_der().unwrap();
        let r = w.add_client(rpk_client(&client_private, &server_spki), 1000);
        let x = w.add_client(
            ClientConfig {
                security: ClientSecurity::X509 {
                    own: certified(&client_cert, &client_cert_key),
                    trust: ServerTrust {
                        usage: CertificateUsage::DomainIssuedCertificate,
                        certificate_der: server_cert.to_der().unwrap(),
                        server_name: None,
                        extra_trust_anchors: Vec::new(),
                    },
                },
                ..ClientConfig::psk(ID, KEY)
            },
            1001,
        );
        assert_eq!(w.handshake(r), SessionState::Established, "{:?}", w.events);
        assert_eq!(w.handshake(x), SessionState::Established, "{:?}", w.events);
        assert_eq!(w.peers[r].client.peer_identity(), Some(&PeerIdentity::Rpk(server_spki)));
        assert!(matches!(
            w.peers[x].client.peer_identity(),
            Some(PeerIdentity::X509 { .. })
        ));
        let ids: Vec<PeerIdentity> = established(&w).into_iter().map(|e| e.1).collect();
        assert!(ids.contains(&PeerIdentity::Rpk(client_spki)), "{ids:?}");
        assert!(ids.iter().any(|i| matches!(i, PeerIdentity::X509 { .. })), "{ids:?}");
        assert_eq!(w.peers[x].client.session().unwrap().negotiated_cert_types(), (0, 0));

        // a different RPK key next to the certificate is a configuration error
        let (_, other_private, _) = p256();
        let bad = ServerConfig {
            psk: false,
            x509: Some(x509),
            rpk: Some(RawPublicKey::new(other_private, None)),
            ..ServerConfig::default()
        };
        let store: Arc<dyn CredentialStore> = Arc::new(MemoryCredentialStore::new());
        let r = DtlsServer::new(bad, store);
        assert!(
            matches!(&r, Err(DtlsError::Config(m)) if m.contains("certificate's key")),
            "{r:?}"
        );
    }

    #[test]
    fn rpk_configuration_errors() {
        let (_, private, spki) = p256();
        // the client needs /0/x/4
        let no_peer = ClientConfig {
            security: ClientSecurity::Rpk(RawPublicKey::new(private.clone(), None)),
            ..ClientConfig::psk(ID, KEY)
        };
        assert!(matches!(DtlsClient::new(no_peer), Err(DtlsError::Config(m)) if m.contains("/0/x/4")));
        // a broken server key
        assert!(matches!(
            DtlsClient::new(rpk_client(&private, b"not a key")),
            Err(DtlsError::Config(m)) if m.contains("SubjectPublicKeyInfo")
        ));
        // a broken or unsuitable own key
        assert!(matches!(
            DtlsClient::new(rpk_client(b"junk", &spki)),
            Err(DtlsError::Config(_))
        ));
        let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let rsa_der = rsa.private_key_to_pkcs8().unwrap();
        assert!(matches!(
            DtlsClient::new(rpk_client(&rsa_der, &spki)),
            Err(DtlsError::Config(m)) if m.contains("EC key")
        ));
        let store: Arc<dyn CredentialStore> = Arc::new(MemoryCredentialStore::new());
        assert!(matches!(
            DtlsServer::new(rpk_server(&rsa_der), Arc::clone(&store)),
            Err(DtlsError::Config(m)) if m.contains("EC key")
        ));
        // RPK alone is a security mode: no PSK, no X.509 is fine
        assert!(DtlsServer::new(rpk_server(&private), store).is_ok());
        // the client's suites must include an ECDHE_ECDSA one
        let psk_only = ClientConfig {
            suites: Some(vec![CipherSuite::PskAes128Ccm8]),
            ..rpk_client(&private, &spki)
        };
        assert!(matches!(DtlsClient::new(psk_only), Err(DtlsError::Config(_))));
    }
}
