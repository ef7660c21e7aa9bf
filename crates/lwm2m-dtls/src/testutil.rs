//! Test helpers: an in-memory network on a virtual clock, and a test PKI (EC P-256) made with the openssl crate.

use std::net::SocketAddr;
use std::sync::Arc;

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509Name, X509};

use crate::{
    CertifiedKey, ClientConfig, DtlsClient, DtlsServer, DtlsSession, MemoryCredentialStore, ServerConfig, ServerEvent,
    SessionState,
};

/// Direction of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// client -> server
    C2S,
    /// server -> client
    S2C,
}

/// One client on the simulated network.
pub struct Peer {
    pub client: DtlsClient,
    pub addr: SocketAddr,
    pub rx: Vec<Vec<u8>>,
    pub sent: usize,
    pub received: usize,
}

/// Decides whether to drop a datagram: (direction, peer index, per-direction datagram index, bytes).
pub type DropRule = Box<dyn FnMut(Dir, usize, usize, &[u8]) -> bool>;

/// A server and some clients, connected in memory, on a virtual clock.
pub struct World {
    pub server: DtlsServer,
    pub store: Arc<MemoryCredentialStore>,
    pub peers: Vec<Peer>,
    pub now: u64,
    pub events: Vec<ServerEvent>,
    pub drop: DropRule,
    pub dropped: usize,
}

pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], port))
}

pub const KEY: &[u8] = b"0123456789abcdef";
pub const ID: &[u8] = b"urn:imei:1234";

impl World {
    /// A server with the default config (PSK identity `ID` -> `KEY`) and no clients.
    pub fn new(config: ServerConfig) -> Self {
        let store = Arc::new(MemoryCredentialStore::new());
        store.add_psk(ID, KEY);
        let server = DtlsServer::new(config, store.clone()).unwrap();
        World {
            server,
            store,
            peers: Vec::new(),
            now: 0,
            events: Vec::new(),
            drop: Box::new(|_, _, _, _| false),
            dropped: 0,
        }
    }

    /// Adds a client at `addr(port)` and starts its handshake. Returns its index.
    pub fn add_client(&mut self, config: ClientConfig, port: u16) -> usize {
        let mut client = DtlsClient::new(config).unwrap();
        client.connect(self.now).unwrap();
        self.peers.push(Peer {
            client,
            addr: addr(port),
            rx: Vec::new(),
            sent: 0,
            received: 0,
        });
        self.peers.len() - 1
    }

    /// Moves datagrams until nothing moves.
    pub fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            for i in 0..self.peers.len() {
                while let Some(d) = self.peers[i].client.poll_transmit() {
                    moved = true;
                    let n = self.peers[i].sent;
                    self.peers[i].sent += 1;
                    if (self.drop)(Dir::C2S, i, n, &d) {
                        self.dropped += 1;
                    } else {
                        let a = self.peers[i].addr;
                        self.server.handle_datagram(self.now, a, &d);
                    }
                }
            }
            while let Some((to, d)) = self.server.poll_transmit() {
                moved = true;
                if let Some(i) = self.peers.iter().position(|p| p.addr == to) {
                    let n = self.peers[i].received;
                    self.peers[i].received += 1;
                    if (self.drop)(Dir::S2C, i, n, &d) {
                        self.dropped += 1;
                    } else {
                        self.peers[i].client.handle_datagram(self.now, &d);
                    }
                }
            }
            while let Some(e) = self.server.poll_event() {
                self.events.push(e);
            }
            for p in &mut self.peers {
                while let Some(d) = p.client.poll_app_data() {
                    p.rx.push(d);
                }
            }
            if !moved {
                return;
            }
        }
        panic!("network did not settle");
    }

    /// Jumps the virtual clock to the next deadline (client or server) and runs the timers.
    /// Returns `false` if no timer is armed.
    pub fn advance(&mut self) -> bool {
        self.advance_until(u64::MAX)
    }

    /// Like `advance`, but never past `limit` (then the clock stops at `limit`, and `false` is returned).
    pub fn advance_until(&mut self, limit: u64) -> bool {
        let next = self
            .peers
            .iter()
            .filter_map(|p| p.client.poll_timeout())
            .chain(self.server.poll_timeout())
            .min();
        let Some(t) = next else { return false };
        if t > limit {
            self.now = self.now.max(limit);
            return false;
        }
        self.now = self.now.max(t);
        self.server.handle_timeout(self.now);
        for p in &mut self.peers {
            p.client.handle_timeout(self.now);
        }
        true
    }

    /// Pumps and advances the clock until `cond` holds or `limit_ms` of virtual time passed.
    pub fn run_until(&mut self, limit_ms: u64, cond: impl Fn(&World) -> bool) -> bool {
        let end = self.now + limit_ms;
        loop {
            self.pump();
            if cond(self) {
                return true;
            }
            if self.now >= end || !self.advance_until(end) {
                return cond(self);
            }
        }
    }

    /// Runs until peer `i` is no longer handshaking (or 10 virtual minutes).
    pub fn handshake(&mut self, i: usize) -> SessionState {
        self.run_until(600_000, |w| w.peers[i].client.state() != &SessionState::Handshaking);
        self.pump();
        self.peers[i].client.state().clone()
    }
}

/// A fresh EC P-256 key.
pub fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn name(cn: &str) -> X509Name {
    let mut n = X509Name::builder().unwrap();
    n.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    n.build()
}

fn serial() -> openssl::asn1::Asn1Integer {
    let mut bn = BigNum::new().unwrap();
    bn.rand(64, openssl::bn::MsbOption::MAYBE_ZERO, false).unwrap();
    bn.to_asn1_integer().unwrap()
}

/// A test certificate authority.
pub struct TestCa {
    pub cert: X509,
    pub key: PKey<Private>,
}

impl TestCa {
    /// A self-signed CA named `cn`.
    pub fn new(cn: &str) -> Self {
        let key = ec_key();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&serial()).unwrap();
        b.set_subject_name(&name(cn)).unwrap();
        b.set_issuer_name(&name(cn)).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
        b.set_not_after(&Asn1Time::days_from_now(3650).unwrap()).unwrap();
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().build().unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        TestCa { cert: b.build(), key }
    }

    /// An end-entity certificate signed by this CA, with subject CN `cn` and optionally a SAN dNSName.
    pub fn issue(&self, cn: &str, dns: Option<&str>) -> (X509, PKey<Private>) {
        let key = ec_key();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&serial()).unwrap();
        b.set_subject_name(&name(cn)).unwrap();
        b.set_issuer_name(self.cert.subject_name()).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
        b.set_not_after(&Asn1Time::days_from_now(365).unwrap()).unwrap();
        b.append_extension(BasicConstraints::new().build().unwrap()).unwrap();
        if let Some(d) = dns {
            let san = SubjectAlternativeName::new()
                .dns(d)
                .build(&b.x509v3_context(Some(&self.cert), None))
                .unwrap();
            b.append_extension(san).unwrap();
        }
        b.sign(&self.key, MessageDigest::sha256()).unwrap();
        (b.build(), key)
    }
}

/// Chain + key as the crate's configuration type.
pub fn certified(cert: &X509, key: &PKey<Private>) -> CertifiedKey {
    CertifiedKey {
        chain_der: vec![cert.to_der().unwrap()],
        private_key_der: key.private_key_to_pkcs8().unwrap(),
    }
}
