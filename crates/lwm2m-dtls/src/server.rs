//! A sans-IO DTLS server for many peers on one socket.
//!
//! A datagram from an unknown address must be a ClientHello. It is parsed here (strictly, see
//! [`crate::record`]); without a valid cookie it is answered with a HelloVerifyRequest carrying an
//! HMAC-SHA256 cookie over (secret, peer address, ClientHello parameters), and nothing is stored. Only a
//! ClientHello with a valid cookie creates a session: a new OpenSSL object is fed a rebuilt cookie-less copy
//! of it (so OpenSSL's own cookie exchange state lines up; its HelloVerifyRequest is discarded), then the real
//! ClientHello, whose cookie OpenSSL's verify callback checks against the same HMAC.
//!
//! Limits: `max_sessions` (all peers), `max_handshakes` (peers still handshaking), a handshake timeout and an
//! idle timeout, both evicting the session. Resumption: OpenSSL's server session cache plus session tickets.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

use openssl::ex_data::Index;
use openssl::ssl::{
    Ssl, SslContext, SslContextBuilder, SslMethod, SslMode, SslOptions, SslSessionCacheMode, SslVerifyMode, SslVersion,
};

use crate::config::{self, CertifiedKey, CipherOptions, RawPublicKey, Timing};
use crate::cookie::{CookieKey, COOKIE_LEN};
use crate::credentials::CredentialStore;
use crate::error::{DtlsError, Result};
use crate::openssl_backend::{OpensslSession, PostHandshakeCheck};
use crate::record::{self, ClientHelloError};
use crate::session::{CloseReason, DtlsSession, PeerIdentity, SessionState};

/// X.509 settings of the server.
#[derive(Debug, Clone)]
pub struct ServerX509 {
    /// The server's certificate chain and key.
    pub certified_key: CertifiedKey,
    /// CAs (DER) that client certificates must chain to.
    pub client_trust_anchors_der: Vec<Vec<u8>>,
    /// Refuse a certificate handshake without a client certificate.
    pub require_client_cert: bool,
}

/// Server configuration.
#[derive(Clone)]
pub struct ServerConfig {
    /// Retransmission timers, handshake timeout, MTU.
    pub timing: Timing,
    /// Optional suites (CCM_8 always on).
    pub ciphers: CipherOptions,
    /// Accept PSK handshakes (keys from the [`CredentialStore`]).
    pub psk: bool,
    /// Accept certificate handshakes.
    pub x509: Option<ServerX509>,
    /// Accept RPK handshakes with this key pair (client keys are checked with
    /// [`CredentialStore::rpk_allowed`]). Needs the `vendored` feature, else `new` fails with
    /// [`DtlsError::Unsupported`].
    pub rpk: Option<RawPublicKey>,
    /// Largest number of sessions (handshaking or established).
    pub max_sessions: usize,
    /// Largest number of sessions still handshaking.
    pub max_handshakes: usize,
    /// An established session with no datagram for this long is evicted (ms).
    pub idle_timeout_ms: u64,
    /// Allow abbreviated handshakes (session cache and tickets).
    pub resumption: bool,
    /// Size of OpenSSL's server session cache.
    pub session_cache_size: u32,
    /// Cookie secret (random if `None`).
    pub cookie_secret: Option<[u8; 32]>,
    /// The cookie secret rotates this often (ms, 0 = never); cookies of the previous secret stay valid.
    pub cookie_rotation_ms: u64,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The cookie secret is left out on purpose.
        f.debug_struct("ServerConfig")
            .field("timing", &self.timing)
            .field("ciphers", &self.ciphers)
            .field("psk", &self.psk)
            .field("x509", &self.x509)
            .field("rpk", &self.rpk)
            .field("max_sessions", &self.max_sessions)
            .field("max_handshakes", &self.max_handshakes)
            .field("idle_timeout_ms", &self.idle_timeout_ms)
            .field("resumption", &self.resumption)
            .field("session_cache_size", &self.session_cache_size)
            .field("cookie_rotation_ms", &self.cookie_rotation_ms)
            .finish_non_exhaustive()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            timing: Timing::default(),
            ciphers: CipherOptions::SERVER_DEFAULT,
            psk: true,
            x509: None,
            rpk: None,
            max_sessions: 100_000,
            max_handshakes: 1_000,
            idle_timeout_ms: 600_000,
            resumption: true,
            session_cache_size: 20_000,
            cookie_secret: None,
            cookie_rotation_ms: 300_000,
        }
    }
}

/// What happened to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// The handshake completed.
    Established {
        /// Peer address.
        peer: SocketAddr,
        /// Authenticated identity.
        identity: PeerIdentity,
        /// The handshake resumed an earlier session.
        resumed: bool,
    },
    /// The session ended (its state is gone).
    Closed {
        /// Peer address.
        peer: SocketAddr,
        /// Why.
        reason: CloseReason,
    },
    /// Decrypted application data.
    AppData {
        /// Peer address.
        peer: SocketAddr,
        /// One application datagram.
        data: Vec<u8>,
    },
}

/// Counters of the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Datagrams received.
    pub datagrams_in: u64,
    /// Datagrams from unknown peers that are not a well-formed ClientHello.
    pub malformed_dropped: u64,
    /// HelloVerifyRequests sent.
    pub hello_verify_sent: u64,
    /// ClientHellos with a wrong cookie.
    pub bad_cookies: u64,
    /// Sessions created (after a valid cookie).
    pub sessions_created: u64,
    /// Valid ClientHellos refused because of `max_sessions` or `max_handshakes`.
    pub rejected_capacity: u64,
    /// Handshakes completed.
    pub established: u64,
    /// ... of which abbreviated (resumed).
    pub resumed: u64,
    /// Handshakes that failed.
    pub handshake_failures: u64,
    /// Handshakes evicted by the handshake timeout.
    pub handshake_timeouts: u64,
    /// Sessions evicted by the idle timeout.
    pub idle_evictions: u64,
}

struct Peer {
    session: OpensslSession,
    handshaking: bool,
    scheduled: Option<u64>,
}

/// A sans-IO DTLS server: datagrams and time in; datagrams, events and deadlines out.
pub struct DtlsServer {
    config: ServerConfig,
    ctx: SslContext,
    cookies: CookieKey,
    cookie_idx: Index<Ssl, [u8; COOKIE_LEN]>,
    post_check: PostHandshakeCheck,
    peers: HashMap<SocketAddr, Peer>,
    handshaking: usize,
    events: VecDeque<ServerEvent>,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    timers: BinaryHeap<Reverse<(u64, SocketAddr)>>,
    stats: ServerStats,
    last_malformed: Option<ClientHelloError>,
}

impl std::fmt::Debug for DtlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsServer")
            .field("sessions", &self.peers.len())
            .field("handshaking", &self.handshaking)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn build_context(
    config: &ServerConfig,
    credentials: &Arc<dyn CredentialStore>,
    cookie_idx: Index<Ssl, [u8; COOKIE_LEN]>,
) -> Result<SslContext> {
    let suites = config
        .ciphers
        .suites(config.psk, config.x509.is_some() || config.rpk.is_some());
    if suites.is_empty() {
        return Err(DtlsError::Config(
            "no security mode enabled (psk = false, no x509, no rpk)".into(),
        ));
    }
    let mut b = SslContextBuilder::new(SslMethod::dtls())?;
    b.set_min_proto_version(Some(SslVersion::DTLS1_2))?;
    b.set_max_proto_version(Some(SslVersion::DTLS1_2))?;
    b.set_options(
        SslOptions::COOKIE_EXCHANGE
            | SslOptions::NO_RENEGOTIATION
            | SslOptions::NO_COMPRESSION
            | SslOptions::NO_QUERY_MTU,
    );
    b.set_mode(SslMode::RELEASE_BUFFERS);
    b.set_cipher_list(&config::cipher_string(&suites))?;
    b.set_groups_list("P-256:X25519:P-384")?;
    if config.psk {
        let store = Arc::clone(credentials);
        b.set_psk_server_callback(move |_ssl, identity, psk_buf| {
            let Some(identity) = identity else { return Ok(0) };
            match store.psk_for_identity(identity) {
                Some(key) if !key.is_empty() => match psk_buf.get_mut(..key.len()) {
                    Some(dst) => {
                        dst.copy_from_slice(&key);
                        Ok(key.len())
                    }
                    None => Ok(0),
                },
                _ => Ok(0),
            }
        });
    }
    if let Some(x) = &config.x509 {
        let mut chain = x.certified_key.chain_der.iter();
        let leaf = chain
            .next()
            .ok_or_else(|| DtlsError::Config("empty server certificate chain".into()))?;
        let leaf = config::certificate(leaf)?;
        b.set_certificate(&leaf)?;
        for c in chain {
            b.add_extra_chain_cert(config::certificate(c)?)?;
        }
        let key = config::private_key(&x.certified_key.private_key_der)?;
        b.set_private_key(&key)?;
        b.check_private_key()
            .map_err(|e| DtlsError::Config(format!("key does not match certificate: {e}")))?;
        for ca in &x.client_trust_anchors_der {
            b.cert_store_mut().add_cert(config::certificate(ca)?)?;
        }
        let mut mode = SslVerifyMode::PEER;
        if x.require_client_cert {
            mode |= SslVerifyMode::FAIL_IF_NO_PEER_CERT;
        }
        b.set_verify(mode);
    }
    if let Some(rpk) = &config.rpk {
        crate::openssl_backend::configure_rpk_server(&mut b, rpk, Arc::clone(credentials), config.x509.as_ref())?;
    }
    if config.resumption {
        b.set_session_id_context(b"lwm2m-dtls")?;
        b.set_session_cache_mode(SslSessionCacheMode::SERVER);
        b.set_session_cache_size(i32::try_from(config.session_cache_size).unwrap_or(i32::MAX));
    } else {
        b.set_session_cache_mode(SslSessionCacheMode::OFF);
        b.set_options(SslOptions::NO_TICKET);
    }
    b.set_cookie_generate_cb(move |ssl, buf| {
        let cookie = ssl.ex_data(cookie_idx).ok_or_else(openssl::error::ErrorStack::get)?;
        let dst = buf.get_mut(..COOKIE_LEN).ok_or_else(openssl::error::ErrorStack::get)?;
        dst.copy_from_slice(cookie);
        Ok(COOKIE_LEN)
    });
    b.set_cookie_verify_cb(move |ssl, cookie| {
        ssl.ex_data(cookie_idx)
            .is_some_and(|c| cookie.len() == COOKIE_LEN && openssl::memcmp::eq(c, cookie))
    });
    Ok(b.build())
}

fn make_post_check(store: Arc<dyn CredentialStore>) -> PostHandshakeCheck {
    Arc::new(move |_ssl, identity| match identity {
        None => Err("no peer identity".into()),
        Some(PeerIdentity::Psk(id)) => {
            if store.psk_for_identity(id).is_some() {
                Ok(())
            } else {
                Err("PSK identity no longer in the credential store".into())
            }
        }
        Some(PeerIdentity::Rpk(k)) => {
            if store.rpk_allowed(k) {
                Ok(())
            } else {
                Err("raw public key not allowed".into())
            }
        }
        Some(PeerIdentity::X509 { common_name, cert_der }) => {
            if store.x509_allowed(cert_der, common_name.as_deref()) {
                Ok(())
            } else {
                Err("certificate refused by the credential store".into())
            }
        }
    })
}

/// Record sequence numbers for the rebuilt cookie-less ClientHellos: distinct from `seq` and inside the
/// 64-record replay window.
fn replay_seqs(seq: u64, n: u16) -> impl Iterator<Item = u64> {
    let n = u64::from(n);
    (0..n).map(move |i| if seq >= n { seq - n + i } else { seq + 1 + i })
}

impl DtlsServer {
    /// Builds a server. Fails on an invalid configuration, or with [`DtlsError::Unsupported`] for RPK without
    /// the `vendored` feature.
    pub fn new(config: ServerConfig, credentials: Arc<dyn CredentialStore>) -> Result<Self> {
        let cookie_idx = Ssl::new_ex_index::<[u8; COOKIE_LEN]>()?;
        let ctx = build_context(&config, &credentials, cookie_idx)?;
        let cookies = CookieKey::new(config.cookie_secret, config.cookie_rotation_ms)?;
        Ok(DtlsServer {
            config,
            ctx,
            cookies,
            cookie_idx,
            post_check: make_post_check(credentials),
            peers: HashMap::new(),
            handshaking: 0,
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            timers: BinaryHeap::new(),
            stats: ServerStats::default(),
            last_malformed: None,
        })
    }

    /// Handles one datagram from `peer`.
    pub fn handle_datagram(&mut self, now_ms: u64, peer: SocketAddr, datagram: &[u8]) {
        self.stats.datagrams_in += 1;
        let _ = self.cookies.maybe_rotate(now_ms);
        if let Some(p) = self.peers.get_mut(&peer) {
            let new_handshake = record::looks_like_client_hello(datagram)
                && record::parse_client_hello(datagram).is_ok_and(|ch| *ch.random != p.session.client_random());
            if !new_handshake {
                p.session.handle_datagram(now_ms, datagram);
                self.after(now_ms, peer);
                return;
            }
        }
        self.stateless(now_ms, peer, datagram);
    }

    fn stateless(&mut self, now_ms: u64, peer: SocketAddr, datagram: &[u8]) {
        let ch = match record::parse_client_hello(datagram) {
            Ok(ch) => ch,
            Err(e) => {
                self.stats.malformed_dropped += 1;
                self.last_malformed = Some(e);
                return;
            }
        };
        if ch.cookie.is_empty() || !self.cookies.verify(&peer, &ch) {
            if !ch.cookie.is_empty() {
                self.stats.bad_cookies += 1;
            }
            if let Ok(cookie) = self.cookies.generate(&peer, &ch) {
                self.transmits
                    .push_back((peer, record::hello_verify_request(&ch, &cookie)));
                self.stats.hello_verify_sent += 1;
            }
            return;
        }
        // A valid cookie: the peer owns the address. Now, and only now, allocate.
        if ch.message_seq > 4 {
            self.stats.malformed_dropped += 1;
            return;
        }
        let replacing = self.peers.contains_key(&peer);
        if (!replacing && self.peers.len() >= self.config.max_sessions)
            || self.handshaking >= self.config.max_handshakes
        {
            self.stats.rejected_capacity += 1;
            return;
        }
        if replacing {
            self.remove(peer, CloseReason::Replaced);
        }
        let mut cookie = [0u8; COOKIE_LEN];
        if let Some(src) = ch.cookie.get(..COOKIE_LEN) {
            cookie.copy_from_slice(src);
        }
        let replayed: Vec<Vec<u8>> = replay_seqs(ch.record_seq, ch.message_seq)
            .zip(0..ch.message_seq)
            .map(|(seq, mseq)| ch.encode_with(&[], seq, mseq))
            .collect();
        let session = (|| -> Result<OpensslSession> {
            let mut ssl = Ssl::new(&self.ctx)?;
            ssl.set_accept_state();
            ssl.set_ex_data(self.cookie_idx, cookie);
            let mut s = OpensslSession::new(ssl, self.config.timing, now_ms, Some(Arc::clone(&self.post_check)))?;
            s.accept_after_cookie(now_ms, replayed, datagram)?;
            Ok(s)
        })();
        match session {
            Ok(session) => {
                self.stats.sessions_created += 1;
                self.handshaking += 1;
                self.peers.insert(
                    peer,
                    Peer {
                        session,
                        handshaking: true,
                        scheduled: None,
                    },
                );
                self.after(now_ms, peer);
            }
            Err(_) => self.stats.handshake_failures += 1,
        }
    }

    fn remove(&mut self, peer: SocketAddr, reason: CloseReason) {
        if let Some(mut p) = self.peers.remove(&peer) {
            p.session.retire(reason.clone());
            if p.handshaking {
                self.handshaking = self.handshaking.saturating_sub(1);
            }
            match &reason {
                CloseReason::HandshakeTimeout => self.stats.handshake_timeouts += 1,
                CloseReason::IdleTimeout => self.stats.idle_evictions += 1,
                CloseReason::HandshakeFailed(_) => self.stats.handshake_failures += 1,
                _ => {}
            }
            self.events.push_back(ServerEvent::Closed { peer, reason });
        }
    }

    /// Collects what a session produced after an operation, updates counters, events and its timer.
    fn after(&mut self, _now_ms: u64, peer: SocketAddr) {
        let Some(p) = self.peers.get_mut(&peer) else { return };
        while let Some(t) = p.session.poll_transmit() {
            self.transmits.push_back((peer, t));
        }
        if p.session.take_established() {
            if p.handshaking {
                p.handshaking = false;
                self.handshaking = self.handshaking.saturating_sub(1);
            }
            self.stats.established += 1;
            let resumed = p.session.session_reused();
            if resumed {
                self.stats.resumed += 1;
            }
            if let Some(identity) = p.session.peer_identity().cloned() {
                self.events.push_back(ServerEvent::Established {
                    peer,
                    identity,
                    resumed,
                });
            }
        }
        while let Some(data) = p.session.poll_app_data() {
            self.events.push_back(ServerEvent::AppData { peer, data });
        }
        if let SessionState::Closed(reason) = p.session.state() {
            let reason = reason.clone();
            self.remove(peer, reason);
            return;
        }
        let idle = match p.session.state() {
            SessionState::Established => Some(p.session.last_activity_ms().saturating_add(self.config.idle_timeout_ms)),
            _ => None,
        };
        if let Some(d) = [p.session.poll_timeout(), idle].into_iter().flatten().min() {
            let earlier = match p.scheduled {
                Some(s) => d < s,
                None => true,
            };
            if earlier {
                p.scheduled = Some(d);
                self.timers.push(Reverse((d, peer)));
            }
        }
    }

    /// Encrypts and queues application data for an established (or handshaking) peer.
    pub fn send(&mut self, now_ms: u64, peer: SocketAddr, data: &[u8]) -> Result<()> {
        let p = self.peers.get_mut(&peer).ok_or(DtlsError::NoSession)?;
        let r = p.session.send(data);
        self.after(now_ms, peer);
        r
    }

    /// Closes a peer's session (close_notify) and forgets it.
    pub fn close(&mut self, peer: SocketAddr) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.session.close();
            while let Some(t) = p.session.poll_transmit() {
                self.transmits.push_back((peer, t));
            }
            self.remove(peer, CloseReason::LocalClose);
        }
    }

    /// Next datagram to send, with its destination.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// The earliest instant (ms) at which `handle_timeout` has work (possibly a little early).
    pub fn poll_timeout(&self) -> Option<u64> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// Runs every timer due at `now_ms`: retransmissions, handshake timeouts, idle eviction.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        while let Some(Reverse((t, peer))) = self.timers.peek().copied() {
            if t > now_ms {
                break;
            }
            self.timers.pop();
            let Some(p) = self.peers.get_mut(&peer) else { continue };
            if p.scheduled != Some(t) {
                continue;
            }
            p.scheduled = None;
            p.session.handle_timeout(now_ms);
            if p.session.state() == &SessionState::Established
                && now_ms >= p.session.last_activity_ms().saturating_add(self.config.idle_timeout_ms)
            {
                self.remove(peer, CloseReason::IdleTimeout);
                continue;
            }
            self.after(now_ms, peer);
        }
    }

    /// Number of sessions (handshaking or established).
    pub fn session_count(&self) -> usize {
        self.peers.len()
    }

    /// Number of sessions still handshaking.
    pub fn handshake_count(&self) -> usize {
        self.handshaking
    }

    /// The session of a peer, if any.
    pub fn session(&self, peer: &SocketAddr) -> Option<&OpensslSession> {
        self.peers.get(peer).map(|p| &p.session)
    }

    /// Counters.
    pub fn stats(&self) -> ServerStats {
        self.stats
    }

    /// Why the last datagram from an unknown peer was dropped as malformed.
    pub fn last_malformed(&self) -> Option<&ClientHelloError> {
        self.last_malformed.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_seqs_stay_distinct_and_in_window() {
        assert_eq!(replay_seqs(1, 1).collect::<Vec<_>>(), vec![0]);
        assert_eq!(replay_seqs(0, 1).collect::<Vec<_>>(), vec![1]);
        assert_eq!(replay_seqs(5, 2).collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(replay_seqs(1, 3).collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!(replay_seqs(7, 0).count(), 0);
    }

    #[test]
    fn rpk_and_empty_modes_are_rejected() {
        let store: Arc<dyn CredentialStore> = Arc::new(crate::MemoryCredentialStore::new());
        let cfg = ServerConfig {
            rpk: Some(RawPublicKey {
                private_key_der: vec![],
                peer_spki_der: None,
            }),
            ..ServerConfig::default()
        };
        let r = DtlsServer::new(cfg, Arc::clone(&store));
        #[cfg(not(feature = "vendored"))]
        assert!(matches!(r, Err(DtlsError::Unsupported(_))), "{r:?}");
        #[cfg(feature = "vendored")]
        assert!(
            matches!(r, Err(DtlsError::Config(ref m)) if m.contains("private key")),
            "{r:?}"
        );
        let cfg = ServerConfig {
            psk: false,
            ..ServerConfig::default()
        };
        assert!(matches!(DtlsServer::new(cfg, store), Err(DtlsError::Config(_))));
    }
}
