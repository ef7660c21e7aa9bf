//! CoAP over DTLS (`coaps://`): lwm2m-coap's [`DatagramSecurity`] hook implemented with this crate's sessions.
//!
//! - [`DtlsServerLayer`]: a [`DtlsServer`] (many peers on one socket, stateless cookies) as the security layer
//!   of a CoAP server socket. A server cannot dial: sealing for a peer without a session fails with
//!   [`SecurityError::NoSession`].
//! - [`DtlsClientLayer`]: [`DtlsClient`] sessions keyed by server address, for the client role. The first
//!   datagram to a server starts the handshake (the datagram is sent once it completes); after the session
//!   closed (close_notify, alert, failed handshake) or after the driver reported the server unresponsive, the
//!   next datagram starts a new handshake that offers the last session for resumption. After an address change
//!   call [`DtlsClientLayer::reconnect`] (our address changed) or [`DtlsClientLayer::rebind`] (the server's
//!   did); to move sessions to a new socket use [`DtlsClientLayer::take_client`] and
//!   [`DtlsClientLayer::insert_client`].
//!
//! Run either with `lwm2m_coap::UdpEndpoint::spawn_secure`; reach the layer in the running driver with
//! `UdpHandle::with_security::<DtlsClientLayer, _, _>(..)`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::sync::Arc;
//! use lwm2m_coap::{EndpointConfig, UdpEndpoint};
//! use lwm2m_dtls::coap_layer::{DtlsClientLayer, DtlsServerLayer};
//! use lwm2m_dtls::{ClientConfig, DtlsServer, MemoryCredentialStore, ServerConfig};
//!
//! let store = Arc::new(MemoryCredentialStore::new());
//! store.add_psk("urn:imei:490154203237511", b"secret-psk-bytes".to_vec());
//! let server = DtlsServer::new(ServerConfig::default(), store).expect("server config");
//! let (srv, _incoming) =
//!     UdpEndpoint::bind_secure("0.0.0.0:5684".parse().unwrap(), EndpointConfig::default(), DtlsServerLayer::new(server))
//!         .await?;
//!
//! let layer = DtlsClientLayer::with_default(ClientConfig::psk("urn:imei:490154203237511", b"secret-psk-bytes".to_vec()))
//!     .expect("client config");
//! let (client, _) = UdpEndpoint::bind_secure("0.0.0.0:0".parse().unwrap(), EndpointConfig::default(), layer).await?;
//! # let _ = (srv, client); Ok(()) }
//! ```

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use lwm2m_coap::transport::security::{
    DatagramSecurity, PeerIdentity, SecurityCloseReason, SecurityError, SecurityEvent,
};

use crate::client::{ClientConfig, DtlsClient};
use crate::error::{DtlsError, Result};
use crate::server::{DtlsServer, ServerEvent};
use crate::session::{CloseReason, DtlsSession, SessionState};

/// The neutral close reason of a session close reason.
pub fn close_reason(reason: &CloseReason) -> SecurityCloseReason {
    match reason {
        CloseReason::PeerClosed => SecurityCloseReason::PeerClosed,
        CloseReason::LocalClose => SecurityCloseReason::LocalClose,
        CloseReason::HandshakeFailed(why) => SecurityCloseReason::HandshakeFailed(why.clone()),
        CloseReason::HandshakeTimeout => SecurityCloseReason::HandshakeTimeout,
        CloseReason::IdleTimeout => SecurityCloseReason::IdleTimeout,
        CloseReason::Replaced => SecurityCloseReason::Replaced,
        CloseReason::Rejected(why) => SecurityCloseReason::Rejected(why.clone()),
        CloseReason::Fatal(why) => SecurityCloseReason::Fatal(why.clone()),
    }
}

/// The neutral error of a DTLS error.
pub fn security_error(e: DtlsError) -> SecurityError {
    match e {
        DtlsError::NoSession => SecurityError::NoSession,
        DtlsError::Closed => SecurityError::Closed,
        DtlsError::QueueFull => SecurityError::QueueFull,
        DtlsError::TooLarge(n) => SecurityError::TooLarge(n),
        other => SecurityError::Other(other.to_string()),
    }
}

/// A [`DtlsServer`] as the security layer of a CoAP socket (see the module docs).
#[derive(Debug)]
pub struct DtlsServerLayer {
    server: DtlsServer,
    plaintext: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<SecurityEvent>,
}

impl From<DtlsServer> for DtlsServerLayer {
    fn from(server: DtlsServer) -> Self {
        DtlsServerLayer::new(server)
    }
}

impl DtlsServerLayer {
    /// Wraps a server.
    pub fn new(server: DtlsServer) -> Self {
        DtlsServerLayer {
            server,
            plaintext: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The server (statistics, sessions, configuration).
    pub fn server(&self) -> &DtlsServer {
        &self.server
    }

    /// The server, mutably.
    pub fn server_mut(&mut self) -> &mut DtlsServer {
        &mut self.server
    }

    /// Unwraps the server.
    pub fn into_inner(self) -> DtlsServer {
        self.server
    }

    /// Sort the server's events into plaintext and session events.
    fn drain(&mut self) {
        while let Some(ev) = self.server.poll_event() {
            match ev {
                ServerEvent::AppData { peer, data } => self.plaintext.push_back((peer, data)),
                ServerEvent::Established { peer, identity, .. } => {
                    self.events.push_back(SecurityEvent::Established { peer, identity })
                }
                ServerEvent::Closed { peer, reason } => self.events.push_back(SecurityEvent::Closed {
                    peer,
                    reason: close_reason(&reason),
                }),
            }
        }
    }
}

impl DatagramSecurity for DtlsServerLayer {
    fn on_datagram(&mut self, now_ms: u64, peer: SocketAddr, ciphertext: &[u8]) {
        self.server.handle_datagram(now_ms, peer, ciphertext);
        self.drain();
    }

    fn seal(&mut self, now_ms: u64, peer: SocketAddr, plaintext: &[u8]) -> Result<(), SecurityError> {
        let r = self.server.send(now_ms, peer, plaintext);
        self.drain();
        r.map_err(security_error)
    }

    fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.server.poll_transmit()
    }

    fn poll_plaintext(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.plaintext.pop_front()
    }

    fn poll_event(&mut self) -> Option<SecurityEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<u64> {
        self.server.poll_timeout()
    }

    fn handle_timeout(&mut self, now_ms: u64) {
        self.server.handle_timeout(now_ms);
        self.drain();
    }

    fn identity(&self, peer: SocketAddr) -> Option<PeerIdentity> {
        let s = self.server.session(&peer)?;
        match s.state() {
            SessionState::Established => s.peer_identity().cloned(),
            _ => None,
        }
    }

    fn close(&mut self, _now_ms: u64, peer: SocketAddr) {
        self.server.close(peer);
        self.drain();
    }
}

/// Counters of a [`DtlsClientLayer`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientLayerStats {
    /// Handshakes started (first connections and reconnections).
    pub handshakes: u64,
    /// Handshakes completed.
    pub established: u64,
    /// ... of which resumed an earlier session.
    pub resumed: u64,
    /// Sessions that ended before being established (handshake failed, timed out or was rejected).
    pub failed: u64,
    /// Datagrams from addresses with no client session (dropped).
    pub unknown_peer_datagrams: u64,
}

struct ClientPeer {
    client: DtlsClient,
    /// `connect` was called at least once (before that the client reports a closed state).
    started: bool,
    /// The current connection reached Established.
    established: bool,
    /// The end of the current connection was reported.
    close_reported: bool,
    /// Start a new handshake on the next `seal` (the server seemed to have lost the session).
    reconnect_next: bool,
}

impl ClientPeer {
    fn new(client: DtlsClient) -> Self {
        ClientPeer {
            client,
            started: false,
            established: false,
            close_reported: false,
            reconnect_next: false,
        }
    }
}

/// DTLS client sessions keyed by server address, as the security layer of a CoAP client socket (see the module
/// docs).
pub struct DtlsClientLayer {
    peers: HashMap<SocketAddr, ClientPeer>,
    default_config: Option<ClientConfig>,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    plaintext: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<SecurityEvent>,
    stats: ClientLayerStats,
}

impl std::fmt::Debug for DtlsClientLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsClientLayer")
            .field("peers", &self.peers.keys().collect::<Vec<_>>())
            .field("default_config", &self.default_config)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Default for DtlsClientLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl DtlsClientLayer {
    /// A layer with no server configured: add servers with [`DtlsClientLayer::add_peer`]. Datagrams to other
    /// addresses fail with [`SecurityError::NoSession`].
    pub fn new() -> Self {
        DtlsClientLayer {
            peers: HashMap::new(),
            default_config: None,
            transmits: VecDeque::new(),
            plaintext: VecDeque::new(),
            events: VecDeque::new(),
            stats: ClientLayerStats::default(),
        }
    }

    /// A layer that connects to any server address with `config` (checked here).
    pub fn with_default(config: ClientConfig) -> Result<Self> {
        DtlsClient::new(config.clone())?;
        Ok(DtlsClientLayer {
            default_config: Some(config),
            ..Self::new()
        })
    }

    /// Use `config` for the server at `peer` (replacing any session with it). The handshake starts with the
    /// first datagram, or with [`DtlsClientLayer::connect`].
    pub fn add_peer(&mut self, peer: SocketAddr, config: ClientConfig) -> Result<()> {
        let client = DtlsClient::new(config)?;
        self.insert_client(peer, client);
        Ok(())
    }

    /// Adopt an existing client for `peer` (for example one taken from another socket's layer, with its cached
    /// session). Its current connection is kept as it is; a closed one reconnects on the next datagram.
    pub fn insert_client(&mut self, peer: SocketAddr, client: DtlsClient) {
        let mut p = ClientPeer::new(client);
        if let SessionState::Established = p.client.state() {
            p.started = true;
            p.established = true;
        } else if p.client.session().is_some() {
            p.started = true;
        }
        self.peers.insert(peer, p);
    }

    /// Remove and return the client of `peer` (its cached session goes with it).
    pub fn take_client(&mut self, peer: SocketAddr) -> Option<DtlsClient> {
        self.peers.remove(&peer).map(|p| p.client)
    }

    /// The client of `peer`.
    pub fn client(&self, peer: SocketAddr) -> Option<&DtlsClient> {
        self.peers.get(&peer).map(|p| &p.client)
    }

    /// The server addresses this layer has clients for.
    pub fn peers(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.peers.keys().copied()
    }

    /// Counters.
    pub fn stats(&self) -> ClientLayerStats {
        self.stats
    }

    /// Start the handshake with `peer` now (a no-op while one is running or established).
    pub fn connect(&mut self, now_ms: u64, peer: SocketAddr) -> Result<()> {
        self.ensure_peer(peer)?;
        let needs = self.peers.get(&peer).is_some_and(Self::needs_connect);
        if needs {
            self.start(now_ms, peer)?;
        }
        Ok(())
    }

    /// A new handshake with `peer` now, offering the last session for resumption: after our own address
    /// changed (the server keys sessions by address).
    pub fn reconnect(&mut self, now_ms: u64, peer: SocketAddr) -> Result<()> {
        self.ensure_peer(peer)?;
        self.start(now_ms, peer)
    }

    /// The server moved from `old` to `new`: keep its credentials and cached session, and handshake with the
    /// new address now.
    pub fn rebind(&mut self, now_ms: u64, old: SocketAddr, new: SocketAddr) -> Result<()> {
        let p = self.peers.remove(&old).ok_or(DtlsError::NoSession)?;
        self.peers.insert(new, p);
        self.start(now_ms, new)
    }

    fn ensure_peer(&mut self, peer: SocketAddr) -> Result<()> {
        if self.peers.contains_key(&peer) {
            return Ok(());
        }
        let config = self.default_config.clone().ok_or(DtlsError::NoSession)?;
        let client = DtlsClient::new(config)?;
        self.peers.insert(peer, ClientPeer::new(client));
        Ok(())
    }

    fn needs_connect(p: &ClientPeer) -> bool {
        !p.started || p.reconnect_next || matches!(p.client.state(), SessionState::Closed(_))
    }

    /// (Re)start the handshake of a known peer.
    fn start(&mut self, now_ms: u64, peer: SocketAddr) -> Result<()> {
        let Some(p) = self.peers.get_mut(&peer) else {
            return Err(DtlsError::NoSession);
        };
        if p.established && !p.close_reported {
            // `connect` drops the old connection silently; tell the driver it is gone.
            self.events.push_back(SecurityEvent::Closed {
                peer,
                reason: SecurityCloseReason::Replaced,
            });
        }
        p.started = true;
        p.established = false;
        p.close_reported = false;
        p.reconnect_next = false;
        self.stats.handshakes += 1;
        let r = p.client.connect(now_ms);
        self.after(peer);
        r
    }

    /// Collect what a client produced and report its state changes.
    fn after(&mut self, peer: SocketAddr) {
        let Some(p) = self.peers.get_mut(&peer) else { return };
        while let Some(t) = p.client.poll_transmit() {
            self.transmits.push_back((peer, t));
        }
        while let Some(d) = p.client.poll_app_data() {
            self.plaintext.push_back((peer, d));
        }
        if !p.started {
            return;
        }
        match p.client.state() {
            SessionState::Established if !p.established => {
                p.established = true;
                self.stats.established += 1;
                if p.client.session_reused() {
                    self.stats.resumed += 1;
                }
                if let Some(identity) = p.client.peer_identity().cloned() {
                    self.events.push_back(SecurityEvent::Established { peer, identity });
                }
            }
            SessionState::Closed(reason) if !p.close_reported => {
                p.close_reported = true;
                if !p.established {
                    self.stats.failed += 1;
                }
                p.established = false;
                self.events.push_back(SecurityEvent::Closed {
                    peer,
                    reason: close_reason(reason),
                });
            }
            _ => {}
        }
    }
}

impl DatagramSecurity for DtlsClientLayer {
    fn on_datagram(&mut self, now_ms: u64, peer: SocketAddr, ciphertext: &[u8]) {
        match self.peers.get_mut(&peer) {
            Some(p) => {
                p.client.handle_datagram(now_ms, ciphertext);
                self.after(peer);
            }
            None => self.stats.unknown_peer_datagrams += 1,
        }
    }

    fn seal(&mut self, now_ms: u64, peer: SocketAddr, plaintext: &[u8]) -> Result<(), SecurityError> {
        self.ensure_peer(peer).map_err(security_error)?;
        if self.peers.get(&peer).is_some_and(Self::needs_connect) {
            self.start(now_ms, peer).map_err(security_error)?;
        }
        let r = match self.peers.get_mut(&peer) {
            Some(p) => p.client.send(plaintext),
            None => Err(DtlsError::NoSession),
        };
        self.after(peer);
        r.map_err(security_error)
    }

    fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    fn poll_plaintext(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.plaintext.pop_front()
    }

    fn poll_event(&mut self) -> Option<SecurityEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<u64> {
        self.peers.values().filter_map(|p| p.client.poll_timeout()).min()
    }

    fn handle_timeout(&mut self, now_ms: u64) {
        let due: Vec<SocketAddr> = self
            .peers
            .iter()
            .filter(|(_, p)| p.client.poll_timeout().is_some_and(|t| t <= now_ms))
            .map(|(a, _)| *a)
            .collect();
        for peer in due {
            if let Some(p) = self.peers.get_mut(&peer) {
                p.client.handle_timeout(now_ms);
            }
            self.after(peer);
        }
    }

    fn identity(&self, peer: SocketAddr) -> Option<PeerIdentity> {
        let p = self.peers.get(&peer)?;
        match p.client.state() {
            SessionState::Established => p.client.peer_identity().cloned(),
            _ => None,
        }
    }

    fn close(&mut self, _now_ms: u64, peer: SocketAddr) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.client.close();
        }
        self.after(peer);
    }

    fn peer_unresponsive(&mut self, _now_ms: u64, peer: SocketAddr) {
        // Only an established session is suspect: a running handshake has its own timers.
        if let Some(p) = self.peers.get_mut(&peer) {
            if p.established {
                p.reconnect_next = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::credentials::MemoryCredentialStore;
    use crate::server::ServerConfig;

    const ID: &[u8] = b"ep-1";
    const KEY: &[u8] = b"0123456789abcdef";

    fn server(keys: &[(&[u8], &[u8])]) -> DtlsServerLayer {
        let store = MemoryCredentialStore::new();
        for (id, key) in keys {
            store.add_psk(id.to_vec(), key.to_vec());
        }
        DtlsServer::new(ServerConfig::default(), Arc::new(store))
            .unwrap()
            .into()
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Move every datagram between the two layers (the client at `c`, the server at `s`) until both are quiet;
    /// returns the number moved.
    fn shuttle(
        now: u64,
        client: &mut DtlsClientLayer,
        c: SocketAddr,
        server: &mut DtlsServerLayer,
        s: SocketAddr,
    ) -> usize {
        let mut moved = 0;
        for _ in 0..64 {
            let mut any = false;
            while let Some((to, d)) = client.poll_transmit() {
                assert_eq!(to, s);
                server.on_datagram(now, c, &d);
                any = true;
                moved += 1;
            }
            while let Some((to, d)) = server.poll_transmit() {
                if to == c {
                    client.on_datagram(now, s, &d);
                }
                any = true;
                moved += 1;
            }
            if !any {
                break;
            }
        }
        moved
    }

    fn events(l: &mut dyn DatagramSecurity) -> Vec<SecurityEvent> {
        std::iter::from_fn(|| l.poll_event()).collect()
    }

    #[test]
    fn psk_round_trip_with_identities_on_both_sides() {
        let (c, s) = (addr("127.0.0.1:40000"), addr("127.0.0.1:5684"));
        let mut srv = server(&[(ID, KEY)]);
        let mut cli = DtlsClientLayer::with_default(ClientConfig::psk(ID, KEY)).unwrap();
        assert_eq!(cli.identity(s), None);
        cli.seal(0, s, b"coap request").unwrap();
        assert!(shuttle(0, &mut cli, c, &mut srv, s) > 4);
        assert_eq!(srv.poll_plaintext(), Some((c, b"coap request".to_vec())));
        assert_eq!(srv.identity(c), Some(PeerIdentity::Psk(ID.to_vec())));
        assert_eq!(cli.identity(s), Some(PeerIdentity::Psk(ID.to_vec())));
        assert_eq!(
            events(&mut srv),
            vec![SecurityEvent::Established {
                peer: c,
                identity: PeerIdentity::Psk(ID.to_vec())
            }]
        );
        assert_eq!(events(&mut cli).len(), 1);
        srv.seal(1, c, b"coap response").unwrap();
        shuttle(1, &mut cli, c, &mut srv, s);
        assert_eq!(cli.poll_plaintext(), Some((s, b"coap response".to_vec())));
        assert_eq!(cli.stats().handshakes, 1);
        assert_eq!(cli.stats().established, 1);
        // The server cannot dial an address without a session.
        assert_eq!(srv.seal(2, addr("127.0.0.1:1"), b"x"), Err(SecurityError::NoSession));
    }

    #[test]
    fn wrong_key_and_unknown_identity_fail_the_handshake() {
        let (c, s) = (addr("127.0.0.1:40001"), addr("127.0.0.1:5684"));
        let mut wrong_key = ClientConfig::psk(ID, b"wrong-key-wrong-".to_vec());
        // A record failing authentication is dropped without an alert: the client gives up at its timeout.
        wrong_key.timing.handshake_timeout_ms = 5_000;
        for (cfg, expect_timeout) in [(wrong_key, true), (ClientConfig::psk(b"stranger".to_vec(), KEY), false)] {
            let mut srv = server(&[(ID, KEY)]);
            let mut cli = DtlsClientLayer::with_default(cfg).unwrap();
            cli.seal(0, s, b"hello").unwrap();
            shuttle(0, &mut cli, c, &mut srv, s);
            let mut evs = events(&mut cli);
            for _ in 0..64 {
                if !evs.is_empty() {
                    break;
                }
                let t = cli.poll_timeout().expect("a handshake timer");
                cli.handle_timeout(t);
                srv.handle_timeout(t);
                shuttle(t, &mut cli, c, &mut srv, s);
                evs = events(&mut cli);
            }
            assert_eq!(srv.poll_plaintext(), None);
            assert_eq!(srv.identity(c), None);
            match evs.as_slice() {
                [SecurityEvent::Closed { peer, reason }] => {
                    assert_eq!(*peer, s);
                    assert!(reason.is_authentication_failure(), "{reason:?}");
                    assert_eq!(
                        *reason == SecurityCloseReason::HandshakeTimeout,
                        expect_timeout,
                        "{reason:?}"
                    );
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(cli.stats().failed, 1);
            // The next datagram starts a new handshake.
            cli.seal(6_000, s, b"again").unwrap();
            assert_eq!(cli.stats().handshakes, 2);
            assert!(cli.poll_transmit().is_some(), "a new ClientHello");
        }
    }

    #[test]
    fn reconnect_rebind_and_moving_sessions_resume() {
        let (c1, c2, s) = (addr("127.0.0.1:40002"), addr("127.0.0.1:40003"), addr("127.0.0.1:5684"));
        let mut srv = server(&[(ID, KEY)]);
        let mut cli = DtlsClientLayer::new();
        assert_eq!(
            cli.seal(0, s, b"x"),
            Err(SecurityError::NoSession),
            "no config for this address"
        );
        cli.add_peer(s, ClientConfig::psk(ID, KEY)).unwrap();
        cli.connect(0, s).unwrap();
        shuttle(0, &mut cli, c1, &mut srv, s);
        assert_eq!(cli.identity(s), Some(PeerIdentity::Psk(ID.to_vec())));
        cli.connect(0, s).unwrap();
        assert_eq!(cli.stats().handshakes, 1, "connect is a no-op when established");
        // Our address changed: the moved client resumes from the new address.
        let moved = cli.take_client(s).unwrap();
        let mut cli2 = DtlsClientLayer::new();
        cli2.insert_client(s, moved);
        assert_eq!(cli2.identity(s), Some(PeerIdentity::Psk(ID.to_vec())));
        cli2.reconnect(10, s).unwrap();
        let evs = events(&mut cli2);
        assert!(matches!(
            evs.as_slice(),
            [SecurityEvent::Closed {
                reason: SecurityCloseReason::Replaced,
                ..
            }]
        ));
        shuttle(10, &mut cli2, c2, &mut srv, s);
        assert_eq!(srv.identity(c2), Some(PeerIdentity::Psk(ID.to_vec())));
        assert_eq!(srv.server().stats().resumed, 1);
        assert_eq!(cli2.stats().resumed, 1);
        // The server "moved" (same process here, so the session is still known under the new key).
        let s2 = addr("127.0.0.1:5685");
        cli2.rebind(20, s, s2).unwrap();
        assert!(cli2.client(s).is_none());
        assert!(cli2.client(s2).is_some());
        assert_eq!(cli2.peers().collect::<Vec<_>>(), vec![s2]);
    }

    #[test]
    fn unresponsive_server_means_a_new_handshake_next_time() {
        let (c, s) = (addr("127.0.0.1:40004"), addr("127.0.0.1:5684"));
        let mut srv = server(&[(ID, KEY)]);
        let mut cli = DtlsClientLayer::with_default(ClientConfig::psk(ID, KEY)).unwrap();
        cli.seal(0, s, b"a").unwrap();
        shuttle(0, &mut cli, c, &mut srv, s);
        events(&mut cli);
        cli.peer_unresponsive(5, s);
        cli.seal(6, s, b"b").unwrap();
        assert_eq!(cli.stats().handshakes, 2);
        shuttle(6, &mut cli, c, &mut srv, s);
        assert_eq!(cli.stats().resumed, 1);
        let got: Vec<_> = std::iter::from_fn(|| srv.poll_plaintext()).map(|(_, d)| d).collect();
        assert_eq!(got, vec![b"a".to_vec(), b"b".to_vec()]);
        // Close from our side: reported, and the server forgets the session.
        cli.close(7, s);
        let evs = events(&mut cli);
        assert!(evs.iter().any(|e| matches!(
            e,
            SecurityEvent::Closed {
                reason: SecurityCloseReason::LocalClose,
                ..
            }
        )));
        shuttle(7, &mut cli, c, &mut srv, s);
        assert_eq!(srv.identity(c), None);
        assert_eq!(cli.stats().unknown_peer_datagrams, 0);
        cli.on_datagram(8, addr("127.0.0.1:9"), b"junk");
        assert_eq!(cli.stats().unknown_peer_datagrams, 1);
    }

    #[test]
    fn error_and_reason_mapping() {
        assert_eq!(security_error(DtlsError::NoSession), SecurityError::NoSession);
        assert_eq!(security_error(DtlsError::Closed), SecurityError::Closed);
        assert_eq!(security_error(DtlsError::QueueFull), SecurityError::QueueFull);
        assert_eq!(
            security_error(DtlsError::TooLarge(20000)),
            SecurityError::TooLarge(20000)
        );
        assert!(matches!(
            security_error(DtlsError::Tls("x".into())),
            SecurityError::Other(_)
        ));
        assert_eq!(
            close_reason(&CloseReason::IdleTimeout),
            SecurityCloseReason::IdleTimeout
        );
        assert_eq!(
            close_reason(&CloseReason::HandshakeFailed("alert".into())),
            SecurityCloseReason::HandshakeFailed("alert".into())
        );
        assert!(DtlsClientLayer::with_default(ClientConfig::psk(Vec::new(), KEY)).is_err());
    }
}
