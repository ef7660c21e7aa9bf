//! A sans-IO DTLS client: one connection to one server, reconnect with session resumption.
//!
//! `connect` starts a handshake (the first ClientHello is then in `poll_transmit`). After an address change
//! (new local port, NAT rebinding) the driver calls `reconnect`: a new handshake that offers the last session
//! for resumption (abbreviated handshake if the server still knows it, by session id or ticket).

use std::sync::Arc;

use openssl::ssl::{
    Ssl, SslContext, SslContextBuilder, SslMethod, SslMode, SslOptions, SslSession, SslSessionCacheMode, SslVerifyMode,
    SslVersion,
};
use openssl::x509::X509;

use crate::config::{
    self, CertificateUsage, CertifiedKey, CipherOptions, CipherSuite, RawPublicKey, ServerTrust, Timing,
};
use crate::error::{DtlsError, Result};
use crate::openssl_backend::{OpensslSession, PostHandshakeCheck};
use crate::session::{CloseReason, DtlsSession, PeerIdentity, SessionState};

/// How the client authenticates.
#[derive(Clone)]
pub enum ClientSecurity {
    /// Pre-shared key (`/0/x/3` identity, `/0/x/5` key).
    Psk {
        /// PSK identity (UTF-8 in LwM2M; must not contain NUL).
        identity: Vec<u8>,
        /// The key (binary).
        key: Vec<u8>,
    },
    /// X.509: our certificate and key, and how to check the server.
    X509 {
        /// Our certificate chain and key.
        own: CertifiedKey,
        /// Server certificate check (Certificate Usage).
        trust: ServerTrust,
    },
    /// Raw public key (RFC 7250): our key pair and the server's expected key (`/0/x/4`, required). Needs the
    /// `vendored` feature, else `DtlsClient::new` fails with [`DtlsError::Unsupported`].
    Rpk(RawPublicKey),
}

impl std::fmt::Debug for ClientSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientSecurity::Psk { identity, .. } => f
                .debug_struct("Psk")
                .field("identity", &String::from_utf8_lossy(identity))
                .finish_non_exhaustive(),
            ClientSecurity::X509 { trust, .. } => f.debug_struct("X509").field("trust", trust).finish_non_exhaustive(),
            ClientSecurity::Rpk(_) => f.write_str("Rpk"),
        }
    }
}

/// Client configuration.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Credentials.
    pub security: ClientSecurity,
    /// Timers and MTU.
    pub timing: Timing,
    /// Optional suites to offer besides CCM_8.
    pub ciphers: CipherOptions,
    /// Offer the previous session on reconnect.
    pub resumption: bool,
    /// Exact suites to propose, in order (LwM2M `/0/x/16`), instead of CCM_8 plus `ciphers`. Suites that do
    /// not fit the security mode are ignored; none left is a configuration error.
    pub suites: Option<Vec<CipherSuite>>,
}

impl ClientConfig {
    /// A PSK configuration with defaults (CCM_8 only, resumption on).
    pub fn psk(identity: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        ClientConfig {
            security: ClientSecurity::Psk {
                identity: identity.into(),
                key: key.into(),
            },
            timing: Timing::default(),
            ciphers: CipherOptions::CCM8_ONLY,
            resumption: true,
            suites: None,
        }
    }
}

static NOT_CONNECTED: SessionState = SessionState::Closed(CloseReason::LocalClose);

/// A DTLS client connection (sans-IO).
pub struct DtlsClient {
    ctx: SslContext,
    timing: Timing,
    resumption: bool,
    /// `(server name for SNI, whether to check the name in the certificate)`.
    server_name: Option<(String, bool)>,
    post_check: Option<PostHandshakeCheck>,
    session: Option<OpensslSession>,
    cached: Option<SslSession>,
}

impl std::fmt::Debug for DtlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsClient")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

fn base_builder(config: &ClientConfig, psk: bool) -> Result<SslContextBuilder> {
    let suites: Vec<CipherSuite> = match &config.suites {
        Some(list) => list.iter().copied().filter(|s| s.is_psk() == psk).collect(),
        None => config.ciphers.suites(psk, !psk),
    };
    if suites.is_empty() {
        return Err(DtlsError::Config("no cipher suite fits the security mode".into()));
    }
    let mut b = SslContextBuilder::new(SslMethod::dtls())?;
    b.set_min_proto_version(Some(SslVersion::DTLS1_2))?;
    b.set_max_proto_version(Some(SslVersion::DTLS1_2))?;
    b.set_options(SslOptions::NO_RENEGOTIATION | SslOptions::NO_COMPRESSION | SslOptions::NO_QUERY_MTU);
    b.set_mode(SslMode::RELEASE_BUFFERS);
    b.set_cipher_list(&config::cipher_string(&suites))?;
    b.set_groups_list("P-256:X25519:P-384")?;
    // DtlsClient keeps its own copy of the last session; OpenSSL's client cache would only grow.
    b.set_session_cache_mode(SslSessionCacheMode::OFF);
    Ok(b)
}

/// Server name (with whether to check it) and the post-handshake check of an X.509 client.
type X509Parts = (Option<(String, bool)>, Option<PostHandshakeCheck>);

fn x509_context(b: &mut SslContextBuilder, own: &CertifiedKey, trust: &ServerTrust) -> Result<X509Parts> {
    let mut chain = own.chain_der.iter();
    let leaf = chain
        .next()
        .ok_or_else(|| DtlsError::Config("empty client certificate chain".into()))?;
    let leaf = config::certificate(leaf)?;
    b.set_certificate(&leaf)?;
    for c in chain {
        b.add_extra_chain_cert(config::certificate(c)?)?;
    }
    let key = config::private_key(&own.private_key_der)?;
    b.set_private_key(&key)?;
    b.check_private_key()
        .map_err(|e| DtlsError::Config(format!("key does not match certificate: {e}")))?;
    let given: X509 = config::certificate(&trust.certificate_der)?;
    let given_der = given.to_der()?;
    let name_check = trust.usage != CertificateUsage::DomainIssuedCertificate;
    match trust.usage {
        CertificateUsage::CaConstraint | CertificateUsage::TrustAnchorAssertion => {
            b.cert_store_mut().add_cert(given)?;
            if trust.usage == CertificateUsage::CaConstraint {
                for ta in &trust.extra_trust_anchors {
                    b.cert_store_mut().add_cert(config::certificate(ta)?)?;
                }
            }
            b.set_verify(SslVerifyMode::PEER);
        }
        CertificateUsage::ServiceCertificateConstraint => {
            for ta in &trust.extra_trust_anchors {
                b.cert_store_mut().add_cert(config::certificate(ta)?)?;
            }
            let expected = given_der.clone();
            b.set_verify_callback(SslVerifyMode::PEER, move |preverify, ctx| {
                if !preverify {
                    return false;
                }
                if ctx.error_depth() == 0 {
                    return ctx
                        .current_cert()
                        .and_then(|c| c.to_der().ok())
                        .is_some_and(|d| d == expected);
                }
                true
            });
        }
        CertificateUsage::DomainIssuedCertificate => {
            // The given certificate *is* the server's: exact match, no PKIX, no name check.
            let expected = given_der.clone();
            b.set_verify_callback(SslVerifyMode::PEER, move |_preverify, ctx| {
                if ctx.error_depth() == 0 {
                    return ctx
                        .current_cert()
                        .and_then(|c| c.to_der().ok())
                        .is_some_and(|d| d == expected);
                }
                true
            });
        }
    }
    let check: Option<PostHandshakeCheck> = match trust.usage {
        CertificateUsage::DomainIssuedCertificate | CertificateUsage::ServiceCertificateConstraint => {
            let expected = given_der;
            Some(Arc::new(move |_ssl, id| match id {
                Some(PeerIdentity::X509 { cert_der, .. }) if *cert_der == expected => Ok(()),
                _ => Err("server certificate does not match /0/x/4".into()),
            }))
        }
        _ => None,
    };
    Ok((trust.server_name.clone().map(|n| (n, name_check)), check))
}

impl DtlsClient {
    /// Builds a client (no handshake yet; call [`DtlsClient::connect`]).
    pub fn new(config: ClientConfig) -> Result<Self> {
        let (ctx, server_name, post_check) = match &config.security {
            ClientSecurity::Psk { identity, key } => {
                if identity.is_empty() || identity.contains(&0) {
                    return Err(DtlsError::Config(
                        "PSK identity must be non-empty and contain no NUL byte".into(),
                    ));
                }
                if key.is_empty() {
                    return Err(DtlsError::Config("empty PSK".into()));
                }
                let mut b = base_builder(&config, true)?;
                let (identity, key) = (identity.clone(), key.clone());
                b.set_psk_client_callback(move |_ssl, _hint, id_buf, psk_buf| {
                    let n = identity.len();
                    match (id_buf.get_mut(..=n), psk_buf.get_mut(..key.len())) {
                        (Some(id_dst), Some(psk_dst)) => {
                            if let Some((last, head)) = id_dst.split_last_mut() {
                                head.copy_from_slice(&identity);
                                *last = 0;
                            }
                            psk_dst.copy_from_slice(&key);
                            Ok(key.len())
                        }
                        _ => Ok(0),
                    }
                });
                (b.build(), None, None)
            }
            ClientSecurity::X509 { own, trust } => {
                let mut b = base_builder(&config, false)?;
                let (name, check) = x509_context(&mut b, own, trust)?;
                (b.build(), name, check)
            }
            ClientSecurity::Rpk(rpk) => {
                let mut b = base_builder(&config, false)?;
                let check = crate::openssl_backend::configure_rpk_client(&mut b, rpk)?;
                (b.build(), None, Some(check))
            }
        };
        Ok(DtlsClient {
            ctx,
            timing: config.timing,
            resumption: config.resumption,
            server_name,
            post_check,
            session: None,
            cached: None,
        })
    }

    /// Starts a new handshake (dropping any current connection without notice), offering the last
    /// session for resumption if enabled. The ClientHello is then available from `poll_transmit`.
    pub fn connect(&mut self, now_ms: u64) -> Result<()> {
        if let Some(mut old) = self.session.take() {
            old.retire(CloseReason::LocalClose);
        }
        let mut ssl = Ssl::new(&self.ctx)?;
        ssl.set_connect_state();
        if let Some((name, check)) = &self.server_name {
            if name.parse::<std::net::IpAddr>().is_err() {
                ssl.set_hostname(name)?;
            }
            if *check {
                if let Ok(ip) = name.parse::<std::net::IpAddr>() {
                    ssl.param_mut().set_ip(ip)?;
                } else {
                    ssl.param_mut().set_host(name)?;
                }
            }
        }
        if self.resumption {
            if let Some(cached) = &self.cached {
                crate::ffi::offer_session(&mut ssl, cached)?;
            }
        }
        let mut s = OpensslSession::new(ssl, self.timing, now_ms, self.post_check.clone())?;
        s.start(now_ms);
        self.session = Some(s);
        self.after();
        Ok(())
    }

    /// Reconnects after an address change or a failure: a new handshake with session resumption.
    pub fn reconnect(&mut self, now_ms: u64) -> Result<()> {
        self.connect(now_ms)
    }

    /// Forgets the cached session (e.g. after the credentials changed).
    pub fn forget_session(&mut self) {
        self.cached = None;
    }

    /// Whether a session is cached for resumption.
    pub fn has_cached_session(&self) -> bool {
        self.cached.is_some()
    }

    /// The current connection, if any.
    pub fn session(&self) -> Option<&OpensslSession> {
        self.session.as_ref()
    }

    fn after(&mut self) {
        let Some(s) = self.session.as_mut() else { return };
        if s.take_established() && self.resumption {
            if let Some(sess) = s.ssl().session() {
                self.cached = Some(sess.to_owned());
            }
        }
    }
}

impl DtlsSession for DtlsClient {
    fn handle_datagram(&mut self, now_ms: u64, datagram: &[u8]) {
        if let Some(s) = self.session.as_mut() {
            s.handle_datagram(now_ms, datagram);
        }
        self.after();
    }

    fn send(&mut self, app_data: &[u8]) -> Result<()> {
        self.session.as_mut().ok_or(DtlsError::Closed)?.send(app_data)
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.session.as_mut()?.poll_transmit()
    }

    fn poll_app_data(&mut self) -> Option<Vec<u8>> {
        self.session.as_mut()?.poll_app_data()
    }

    fn poll_timeout(&self) -> Option<u64> {
        self.session.as_ref()?.poll_timeout()
    }

    fn handle_timeout(&mut self, now_ms: u64) {
        if let Some(s) = self.session.as_mut() {
            s.handle_timeout(now_ms);
        }
    }

    fn state(&self) -> &SessionState {
        self.session.as_ref().map_or(&NOT_CONNECTED, |s| s.state())
    }

    fn peer_identity(&self) -> Option<&PeerIdentity> {
        self.session.as_ref()?.peer_identity()
    }

    fn session_reused(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.session_reused())
    }

    fn close(&mut self) {
        if let Some(s) = self.session.as_mut() {
            s.close();
        }
    }
}
