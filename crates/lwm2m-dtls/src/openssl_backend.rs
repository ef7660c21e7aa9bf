//! The OpenSSL implementation of [`DtlsSession`].
//!
//! One `SslStream` per peer runs over a [`DatagramChannel`]: an in-memory queue where each `read` yields one
//! queued datagram (or `WouldBlock`) and each `write` is one outgoing datagram. Nothing here touches a socket or
//! a clock.
//!
//! # Handshake retransmission
//!
//! OpenSSL's own DTLS timer reads the wall clock, and the `openssl` crate exposes neither
//! `DTLSv1_get_timeout`/`DTLSv1_handle_timeout` nor `DTLS_set_timer_cb` (and `DTLSv1_handle_timeout` also
//! checks the wall clock), so it cannot follow a virtual clock. This module therefore retransmits on its own
//! timer (RFC 6347 §4.2.4: initial 1 s, doubling, at most 60 s): it remembers the datagrams of the last flight
//! it sent and re-sends them byte for byte when the timer fires. A byte-identical re-send carries the same
//! record sequence numbers, so a peer that already has a record drops the copy (replay window) and a peer that
//! lost it accepts it. Because such copies never make OpenSSL (ours or the peer's, if it is ours too) notice a
//! retransmission, this module also implements the other half of §4.2.4: when a datagram identical to one of
//! the peer's previous flight arrives again, the peer has missed our answer and the last flight is re-sent at
//! once. The side that sent the final flight keeps it ("linger") for that purpose until application data
//! arrives or `final_flight_linger_ms` passes. OpenSSL's native wall-clock retransmission stays active as well;
//! it only triggers when a datagram arrives more than 1 s (real time) after a flight, and its copies are
//! ordinary retransmissions with fresh sequence numbers, which every DTLS peer handles.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use std::sync::Arc;

use openssl::nid::Nid;
use openssl::ssl::{ErrorCode, Ssl, SslContextBuilder, SslRef, SslStream};

use crate::config::{self, RawPublicKey, Timing};
use crate::credentials::CredentialStore;
use crate::error::{DtlsError, Result};
use crate::server::ServerX509;
use crate::session::{CloseReason, DtlsSession, PeerIdentity, SessionState};

/// Largest plaintext of one DTLS record.
pub const MAX_PLAINTEXT: usize = 16_384;
/// At most this many inbound handshake datagrams (and bytes) are remembered for duplicate detection.
const MAX_REMEMBERED_IN: usize = 32;
const MAX_REMEMBERED_IN_BYTES: usize = 32 * 1024;

/// An in-memory datagram pipe: the transport under one `SslStream`.
#[derive(Debug, Default)]
pub struct DatagramChannel {
    inbound: VecDeque<Vec<u8>>,
    outbound: VecDeque<Vec<u8>>,
}

impl Read for DatagramChannel {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inbound.pop_front() {
            Some(d) => {
                // Like a UDP socket: a datagram larger than the buffer is truncated.
                let n = d.len().min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), d.get(..n)) {
                    dst.copy_from_slice(src);
                }
                Ok(n)
            }
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for DatagramChannel {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outbound.push_back(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A check run once the handshake completes; an `Err` closes the session with [`CloseReason::Rejected`].
pub type PostHandshakeCheck =
    std::sync::Arc<dyn Fn(&SslRef, Option<&PeerIdentity>) -> std::result::Result<(), String> + Send + Sync>;

/// Handshake flight bookkeeping for our own retransmission timer.
#[derive(Debug)]
struct Flights {
    /// Datagrams of the last flight we sent.
    out: Vec<Vec<u8>>,
    /// Datagrams of the peer flight that triggered `out`.
    prev_in: Vec<Vec<u8>>,
    /// Datagrams received since `out` was sent.
    cur_in: Vec<Vec<u8>>,
    cur_in_bytes: usize,
    /// A (non-duplicate) datagram arrived since our last output: the next output starts a new flight.
    input_since_output: bool,
    rto_ms: u64,
    retransmit_at: Option<u64>,
    /// Established and we sent the final flight: keep it until then.
    linger_until: Option<u64>,
}

impl Flights {
    fn new(initial_rto_ms: u64) -> Self {
        Flights {
            out: Vec::new(),
            prev_in: Vec::new(),
            cur_in: Vec::new(),
            cur_in_bytes: 0,
            input_since_output: true,
            rto_ms: initial_rto_ms,
            retransmit_at: None,
            linger_until: None,
        }
    }
}

/// A DTLS 1.2 session backed by OpenSSL.
pub struct OpensslSession {
    stream: SslStream<DatagramChannel>,
    state: SessionState,
    timing: Timing,
    transmit: VecDeque<Vec<u8>>,
    app_in: VecDeque<Vec<u8>>,
    queued: VecDeque<Vec<u8>>,
    identity: Option<PeerIdentity>,
    reused: bool,
    flights: Option<Flights>,
    handshake_deadline: Option<u64>,
    last_activity_ms: u64,
    post_check: Option<PostHandshakeCheck>,
    just_established: bool,
    completed: bool,
    retransmissions: u64,
}

impl std::fmt::Debug for OpensslSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpensslSession")
            .field("state", &self.state)
            .field("identity", &self.identity)
            .field("reused", &self.reused)
            .finish_non_exhaustive()
    }
}

fn describe(e: &openssl::ssl::Error) -> String {
    match e.ssl_error() {
        Some(stack) => stack
            .errors()
            .iter()
            .map(|x| x.reason().unwrap_or("unknown").to_string())
            .collect::<Vec<_>>()
            .join("; "),
        None => e.to_string(),
    }
}

/// The identity the peer authenticated with, from a completed handshake.
pub(crate) fn extract_identity(ssl: &SslRef) -> Option<PeerIdentity> {
    if let Some(id) = ssl.psk_identity() {
        return Some(PeerIdentity::Psk(id.to_vec()));
    }
    #[cfg(feature = "vendored")]
    if let Some(key) = crate::ffi::rpk::peer_rpk(ssl) {
        return key.public_key_to_der().ok().map(PeerIdentity::Rpk);
    }
    let cert = ssl.peer_certificate()?;
    let common_name = cert
        .subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok());
    let cert_der = cert.to_der().ok()?;
    Some(PeerIdentity::X509 { common_name, cert_der })
}

/// Server side of RPK (RFC 7250): offers a raw public key as server certificate type (with X.509 as the second
/// choice when `x509` is set too), accepts raw public keys from clients, and checks each client key against
/// [`CredentialStore::rpk_allowed`] (SubjectPublicKeyInfo, DER) during the handshake: an unknown key fails it.
///
/// With X.509 configured as well the context holds one key pair, so the RPK key must be the certificate's key
/// (OpenSSL then sends the certificate's public key as the raw key). Call after the X.509 setup.
#[cfg(feature = "vendored")]
pub(crate) fn configure_rpk_server(
    b: &mut SslContextBuilder,
    rpk: &RawPublicKey,
    store: Arc<dyn CredentialStore>,
    x509: Option<&ServerX509>,
) -> Result<()> {
    use crate::ffi::rpk::{set_cert_types, store_ctx_rpk, CERT_TYPE_RPK, CERT_TYPE_X509};
    use openssl::ssl::SslVerifyMode;
    use openssl::x509::X509VerifyResult;

    let key = config::rpk_private_key(&rpk.private_key_der)?;
    let mut mode = SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT;
    let types: &[u8] = match x509 {
        Some(x) => {
            let leaf = x
                .certified_key
                .chain_der
                .first()
                .ok_or_else(|| DtlsError::Config("empty server certificate chain".into()))?;
            let cert_key = config::certificate(leaf)?.public_key()?;
            if !key.public_eq(&cert_key) {
                return Err(DtlsError::Config(
                    "with X.509 and RPK both enabled the RPK key must be the server certificate's key".into(),
                ));
            }
            if !x.require_client_cert {
                mode = SslVerifyMode::PEER;
            }
            &[CERT_TYPE_RPK, CERT_TYPE_X509]
        }
        None => {
            b.set_private_key(&key)?;
            &[CERT_TYPE_RPK]
        }
    };
    set_cert_types(b, types, types)?;
    b.set_verify_callback(mode, move |preverify, ctx| match store_ctx_rpk(ctx) {
        Some(peer) => {
            let ok = peer.public_key_to_der().is_ok_and(|der| store.rpk_allowed(&der));
            if !ok {
                ctx.set_error(X509VerifyResult::APPLICATION_VERIFICATION);
            }
            ok
        }
        // An X.509 chain: OpenSSL's own verdict, as without a callback.
        None => preverify,
    });
    Ok(())
}

/// Without the `vendored` feature: RPK is unsupported.
#[cfg(not(feature = "vendored"))]
pub(crate) fn configure_rpk_server(
    _b: &mut SslContextBuilder,
    _rpk: &RawPublicKey,
    _store: Arc<dyn CredentialStore>,
    _x509: Option<&ServerX509>,
) -> Result<()> {
    Err(config::rpk_unsupported())
}

/// Client side of RPK (RFC 7250): presents our raw public key, accepts only a raw public key from the server,
/// and fails the handshake unless the server's key equals `rpk.peer_spki_der` (`/0/x/4`). Returns the
/// post-handshake check that repeats the comparison (it also covers resumed sessions).
#[cfg(feature = "vendored")]
pub(crate) fn configure_rpk_client(b: &mut SslContextBuilder, rpk: &RawPublicKey) -> Result<PostHandshakeCheck> {
    use crate::ffi::rpk::{set_cert_types, store_ctx_rpk, CERT_TYPE_RPK};
    use openssl::ssl::SslVerifyMode;
    use openssl::x509::X509VerifyResult;

    let key = config::rpk_private_key(&rpk.private_key_der)?;
    let expected_der = rpk
        .peer_spki_der
        .as_deref()
        .ok_or_else(|| DtlsError::Config("RPK client needs the server's public key (/0/x/4)".into()))?;
    let expected = config::public_key(expected_der)?;
    b.set_private_key(&key)?;
    set_cert_types(b, &[CERT_TYPE_RPK], &[CERT_TYPE_RPK])?;
    let wanted = expected.clone();
    b.set_verify_callback(SslVerifyMode::PEER, move |_preverify, ctx| {
        // No certificate chain is acceptable (only RPK was offered); a raw key must be exactly `/0/x/4`.
        let ok = store_ctx_rpk(ctx).is_some_and(|peer| peer.public_eq(&wanted));
        if !ok {
            ctx.set_error(X509VerifyResult::APPLICATION_VERIFICATION);
        }
        ok
    });
    Ok(Arc::new(move |_ssl, id| match id {
        Some(PeerIdentity::Rpk(der))
            if openssl::pkey::PKey::public_key_from_der(der).is_ok_and(|k| k.public_eq(&expected)) =>
        {
            Ok(())
        }
        _ => Err("server public key does not match /0/x/4".into()),
    }))
}

/// Without the `vendored` feature: RPK is unsupported.
#[cfg(not(feature = "vendored"))]
pub(crate) fn configure_rpk_client(_b: &mut SslContextBuilder, _rpk: &RawPublicKey) -> Result<PostHandshakeCheck> {
    Err(config::rpk_unsupported())
}

impl OpensslSession {
    /// Wraps a configured `Ssl` (accept or connect state already set). Nothing is sent yet.
    pub(crate) fn new(ssl: Ssl, timing: Timing, now_ms: u64, post_check: Option<PostHandshakeCheck>) -> Result<Self> {
        let mut ssl = ssl;
        ssl.set_mtu(u32::from(timing.mtu))?;
        let stream = SslStream::new(ssl, DatagramChannel::default())?;
        Ok(OpensslSession {
            stream,
            state: SessionState::Handshaking,
            timing,
            transmit: VecDeque::new(),
            app_in: VecDeque::new(),
            queued: VecDeque::new(),
            identity: None,
            reused: false,
            flights: Some(Flights::new(timing.initial_rto_ms)),
            handshake_deadline: Some(now_ms.saturating_add(timing.handshake_timeout_ms)),
            last_activity_ms: now_ms,
            post_check,
            just_established: false,
            completed: false,
            retransmissions: 0,
        })
    }

    /// Client side: produces the first ClientHello.
    pub(crate) fn start(&mut self, now_ms: u64) {
        self.drive(now_ms);
    }

    /// Server side after a stateless cookie exchange: `replayed_hello` is the peer's ClientHello rebuilt without
    /// cookie (message_seq 0), so OpenSSL's own cookie exchange state matches the peer's; the HelloVerifyRequest
    /// OpenSSL answers it with is discarded (the peer already got ours). Then the real ClientHello (with the
    /// cookie) is processed.
    pub(crate) fn accept_after_cookie(
        &mut self,
        now_ms: u64,
        replayed_hellos: Vec<Vec<u8>>,
        datagram: &[u8],
    ) -> Result<()> {
        for hello in replayed_hellos {
            self.stream.get_mut().inbound.push_back(hello);
            match self.stream.do_handshake() {
                Err(e) if e.code() == ErrorCode::WANT_READ => {}
                Ok(()) => {
                    return Err(DtlsError::Tls(
                        "handshake completed on a cookie-less ClientHello".into(),
                    ))
                }
                Err(e) => return Err(DtlsError::Tls(describe(&e))),
            }
            self.stream.get_mut().outbound.clear();
        }
        self.stream.get_mut().inbound.clear();
        self.handle_datagram(now_ms, datagram);
        Ok(())
    }

    /// The underlying `SslRef` (cipher, session, certificates...).
    pub fn ssl(&self) -> &SslRef {
        self.stream.ssl()
    }

    /// The client random of the current handshake.
    pub fn client_random(&self) -> [u8; 32] {
        let mut r = [0u8; 32];
        self.stream.ssl().client_random(&mut r);
        r
    }

    /// Time (ms) of the last datagram received from the peer (or of creation).
    pub fn last_activity_ms(&self) -> u64 {
        self.last_activity_ms
    }

    /// Ends the session without telling the peer. If the handshake had completed (and the session did not end
    /// in a fatal error), a close_notify is generated and discarded first: OpenSSL drops the session from its
    /// cache and marks it non-resumable when an `SSL` is freed without having sent close_notify, which would
    /// defeat resumption after idle eviction, replacement or reconnect.
    pub(crate) fn retire(&mut self, reason: CloseReason) {
        let keep_resumable = self.completed
            && !matches!(
                self.state,
                SessionState::Closed(CloseReason::Fatal(_) | CloseReason::Rejected(_))
            );
        if keep_resumable {
            let _ = self.stream.shutdown();
        }
        self.stream.get_mut().outbound.clear();
        self.transmit.clear();
        if !matches!(self.state, SessionState::Closed(_)) {
            self.fail(reason);
        }
    }

    /// Returns `true` once, right after the handshake completed.
    pub fn take_established(&mut self) -> bool {
        std::mem::take(&mut self.just_established)
    }

    /// Handshake flights re-sent by our timer or on a duplicate peer flight.
    pub fn retransmissions(&self) -> u64 {
        self.retransmissions
    }

    /// The negotiated `(client, server)` certificate types as TLS values (RFC 7250: 0 = X.509, 2 = raw
    /// public key; X.509 is also reported when no certificate was exchanged, e.g. PSK).
    #[cfg(feature = "vendored")]
    pub fn negotiated_cert_types(&self) -> (u8, u8) {
        crate::ffi::rpk::negotiated_cert_types(self.stream.ssl())
    }

    /// Name of the negotiated cipher suite.
    pub fn cipher_name(&self) -> Option<&'static str> {
        self.stream.ssl().current_cipher().map(|c| c.name())
    }

    fn fail(&mut self, reason: CloseReason) {
        self.state = SessionState::Closed(reason);
        self.flights = None;
        self.handshake_deadline = None;
        self.queued.clear();
    }

    fn drain_outbound(&mut self) -> Vec<Vec<u8>> {
        self.stream.get_mut().outbound.drain(..).collect()
    }

    fn collect_handshake_output(&mut self, now_ms: u64, completed: bool) {
        let outs = self.drain_outbound();
        let Some(f) = self.flights.as_mut() else {
            self.transmit.extend(outs);
            return;
        };
        let sent = !outs.is_empty();
        if sent {
            if f.input_since_output {
                f.out.clear();
                f.prev_in = std::mem::take(&mut f.cur_in);
                f.cur_in_bytes = 0;
                f.input_since_output = false;
                f.rto_ms = self.timing.initial_rto_ms;
            }
            f.out.extend(outs.iter().cloned());
            f.retransmit_at = Some(now_ms.saturating_add(f.rto_ms));
            self.transmit.extend(outs);
        }
        if completed {
            f.retransmit_at = None;
            if sent {
                // We sent the final flight: keep it to answer a retransmitted peer flight.
                f.linger_until = Some(now_ms.saturating_add(self.timing.final_flight_linger_ms));
            } else {
                self.flights = None;
            }
        }
    }

    fn on_established(&mut self) {
        self.state = SessionState::Established;
        self.completed = true;
        self.handshake_deadline = None;
        let ssl = self.stream.ssl();
        self.identity = extract_identity(ssl);
        self.reused = ssl.session_reused();
        if let Some(check) = &self.post_check {
            if let Err(reason) = check(ssl, self.identity.as_ref()) {
                let _ = self.stream.shutdown();
                self.fail(CloseReason::Rejected(reason));
                return;
            }
        }
        self.just_established = true;
    }

    fn read_app(&mut self) {
        let mut buf = [0u8; MAX_PLAINTEXT];
        loop {
            match self.stream.ssl_read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if let Some(d) = buf.get(..n) {
                        self.app_in.push_back(d.to_vec());
                    }
                    // The peer sends data only after it completed the handshake: stop lingering.
                    self.flights = None;
                }
                Err(e) => {
                    match e.code() {
                        ErrorCode::WANT_READ | ErrorCode::WANT_WRITE => {}
                        ErrorCode::ZERO_RETURN => self.fail(CloseReason::PeerClosed),
                        _ => self.fail(CloseReason::Fatal(describe(&e))),
                    }
                    break;
                }
            }
        }
    }

    fn write_app(&mut self, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        match self.stream.ssl_write(data) {
            Ok(_) => Ok(()),
            Err(e) => {
                let msg = describe(&e);
                self.fail(CloseReason::Fatal(msg.clone()));
                Err(DtlsError::Tls(msg))
            }
        }
    }

    fn drive(&mut self, now_ms: u64) {
        if self.state == SessionState::Handshaking {
            let r = self.stream.do_handshake();
            let completed = r.is_ok();
            self.collect_handshake_output(now_ms, completed);
            match r {
                Ok(()) => self.on_established(),
                Err(e) if matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE) => {}
                Err(e) => self.fail(CloseReason::HandshakeFailed(describe(&e))),
            }
        }
        if self.state == SessionState::Established {
            self.read_app();
            while self.state == SessionState::Established {
                let Some(d) = self.queued.pop_front() else { break };
                let _ = self.write_app(&d);
            }
        }
        let outs = self.drain_outbound();
        self.transmit.extend(outs);
    }
}

impl DtlsSession for OpensslSession {
    fn handle_datagram(&mut self, now_ms: u64, datagram: &[u8]) {
        // An empty read would look like end-of-file to OpenSSL and kill the session: ignore empty datagrams.
        if matches!(self.state, SessionState::Closed(_)) || datagram.is_empty() {
            return;
        }
        self.last_activity_ms = now_ms;
        if let Some(f) = self.flights.as_mut() {
            if f.prev_in.iter().any(|p| p.as_slice() == datagram) {
                // The peer retransmitted the flight we already answered: it lost our answer.
                self.transmit.extend(f.out.iter().cloned());
                self.retransmissions += 1;
                if f.linger_until.is_none() {
                    f.retransmit_at = Some(now_ms.saturating_add(f.rto_ms));
                }
            } else if f.linger_until.is_none() {
                f.input_since_output = true;
                if f.cur_in.len() < MAX_REMEMBERED_IN
                    && f.cur_in_bytes.saturating_add(datagram.len()) <= MAX_REMEMBERED_IN_BYTES
                {
                    f.cur_in_bytes = f.cur_in_bytes.saturating_add(datagram.len());
                    f.cur_in.push(datagram.to_vec());
                }
            }
        }
        self.stream.get_mut().inbound.push_back(datagram.to_vec());
        self.drive(now_ms);
    }

    fn send(&mut self, app_data: &[u8]) -> Result<()> {
        if app_data.len() > MAX_PLAINTEXT {
            return Err(DtlsError::TooLarge(app_data.len()));
        }
        match self.state {
            SessionState::Closed(_) => Err(DtlsError::Closed),
            SessionState::Handshaking => {
                if self.queued.len() >= self.timing.max_queued {
                    return Err(DtlsError::QueueFull);
                }
                self.queued.push_back(app_data.to_vec());
                Ok(())
            }
            SessionState::Established => {
                let r = self.write_app(app_data);
                let outs = self.drain_outbound();
                self.transmit.extend(outs);
                r
            }
        }
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    fn poll_app_data(&mut self) -> Option<Vec<u8>> {
        self.app_in.pop_front()
    }

    fn poll_timeout(&self) -> Option<u64> {
        let f = self.flights.as_ref();
        [
            self.handshake_deadline,
            f.and_then(|f| f.retransmit_at),
            f.and_then(|f| f.linger_until),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn handle_timeout(&mut self, now_ms: u64) {
        if matches!(self.state, SessionState::Closed(_)) {
            return;
        }
        if self.state == SessionState::Handshaking && self.handshake_deadline.is_some_and(|d| now_ms >= d) {
            self.fail(CloseReason::HandshakeTimeout);
            return;
        }
        let Some(f) = self.flights.as_mut() else { return };
        if f.linger_until.is_some_and(|t| now_ms >= t) {
            self.flights = None;
            return;
        }
        if f.retransmit_at.is_some_and(|t| now_ms >= t) {
            self.transmit.extend(f.out.iter().cloned());
            self.retransmissions += 1;
            f.rto_ms = f.rto_ms.saturating_mul(2).min(self.timing.max_rto_ms);
            f.retransmit_at = Some(now_ms.saturating_add(f.rto_ms));
        }
    }

    fn state(&self) -> &SessionState {
        &self.state
    }

    fn peer_identity(&self) -> Option<&PeerIdentity> {
        self.identity.as_ref()
    }

    fn session_reused(&self) -> bool {
        self.reused
    }

    fn close(&mut self) {
        if matches!(self.state, SessionState::Closed(_)) {
            return;
        }
        if self.state == SessionState::Established {
            let _ = self.stream.shutdown();
            let outs = self.drain_outbound();
            self.transmit.extend(outs);
        }
        self.fail(CloseReason::LocalClose);
    }
}

#[cfg(test)]
#[path = "rpk_tests.rs"]
mod rpk_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_is_datagram_oriented() {
        let mut c = DatagramChannel::default();
        let mut buf = [0u8; 4];
        assert_eq!(c.read(&mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        c.inbound.push_back(vec![1, 2, 3, 4, 5, 6]);
        c.inbound.push_back(vec![7]);
        assert_eq!(c.read(&mut buf).unwrap(), 4, "truncated like UDP");
        assert_eq!(buf, [1, 2, 3, 4]);
        assert_eq!(c.read(&mut buf).unwrap(), 1);
        assert_eq!(buf[0], 7);
        c.write_all(&[9, 9]).unwrap();
        c.write_all(&[8]).unwrap();
        assert_eq!(c.outbound, vec![vec![9, 9], vec![8]]);
    }
}
