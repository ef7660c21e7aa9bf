//! Strict parsing of a DTLS 1.2 ClientHello (record header + handshake header + body, RFC 6347 §4.1, §4.2.2,
//! RFC 5246 §7.4.1.2) and encoding of the stateless HelloVerifyRequest (RFC 6347 §4.2.1).
//!
//! The server uses this before it allocates any per-peer state: a ClientHello without a valid cookie is
//! answered with a HelloVerifyRequest built here. Every length is checked; no input can make it panic.

use thiserror::Error;

/// Record content type `handshake`.
pub const CONTENT_HANDSHAKE: u8 = 22;
/// Handshake type `client_hello`.
pub const HS_CLIENT_HELLO: u8 = 1;
/// Handshake type `hello_verify_request`.
pub const HS_HELLO_VERIFY_REQUEST: u8 = 3;
/// DTLS 1.0 wire version (`{254, 255}`), used in the record of a HelloVerifyRequest.
pub const DTLS1_0: u16 = 0xFEFF;
/// DTLS 1.2 wire version (`{254, 253}`).
pub const DTLS1_2: u16 = 0xFEFD;
/// Record header length.
pub const RECORD_HEADER_LEN: usize = 13;
/// DTLS handshake header length.
pub const HANDSHAKE_HEADER_LEN: usize = 12;
/// Largest cookie this crate produces and accepts (RFC 6347 allows 255; small peers accept 32).
pub const MAX_COOKIE_LEN: usize = 255;

/// Why a datagram is not a well-formed, unfragmented DTLS ClientHello.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClientHelloError {
    /// The input ended before `what` (starting at byte `offset`) was complete.
    #[error("truncated {what} at offset {offset}")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Byte offset of the field in the datagram.
        offset: usize,
    },
    /// The record is not of content type handshake (22).
    #[error("record content type {0} is not handshake (22)")]
    NotHandshake(u8),
    /// The record or ClientHello version is not a DTLS version (major byte 254).
    #[error("version {0:#06x} is not DTLS")]
    NotDtls(u16),
    /// A ClientHello that starts a handshake must use epoch 0.
    #[error("epoch {0} is not 0")]
    NonZeroEpoch(u16),
    /// The handshake message is not a ClientHello.
    #[error("handshake type {0} is not client_hello (1)")]
    NotClientHello(u8),
    /// The ClientHello is split over several fragments (not accepted before a cookie exchange).
    #[error("fragmented ClientHello (offset {offset}, fragment {fragment_len} of {len})")]
    Fragmented {
        /// fragment_offset.
        offset: u32,
        /// fragment_length.
        fragment_len: u32,
        /// length of the whole message.
        len: u32,
    },
    /// The handshake message does not exactly fill the record.
    #[error("handshake length {handshake} does not match record length {record}")]
    LengthMismatch {
        /// Bytes announced by the handshake header plus the header.
        handshake: usize,
        /// Bytes in the record.
        record: usize,
    },
    /// session_id longer than 32 bytes.
    #[error("session_id length {0} > 32")]
    SessionIdTooLong(usize),
    /// cipher_suites is empty or has an odd length.
    #[error("cipher_suites length {0} is empty or odd")]
    BadCipherSuites(usize),
    /// compression_methods is empty.
    #[error("compression_methods is empty")]
    NoCompressionMethods,
    /// The extensions block is malformed (an extension overruns it, or bytes are left over).
    #[error("malformed extensions at offset {0}")]
    BadExtensions(usize),
    /// Bytes after the last field of the ClientHello body.
    #[error("{0} trailing bytes after the ClientHello body")]
    TrailingBytes(usize),
}

/// A parsed ClientHello borrowing from the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello<'a> {
    /// Record-layer version.
    pub record_version: u16,
    /// Record sequence number (48 bits).
    pub record_seq: u64,
    /// Handshake message_seq.
    pub message_seq: u16,
    /// client_version.
    pub client_version: u16,
    /// The 32-byte client random.
    pub random: &'a [u8; 32],
    /// session_id (0..=32 bytes).
    pub session_id: &'a [u8],
    /// cookie (0..=255 bytes).
    pub cookie: &'a [u8],
    /// Raw cipher_suites vector content (pairs of bytes).
    pub cipher_suites: &'a [u8],
    /// Raw compression_methods vector content.
    pub compression_methods: &'a [u8],
    /// Raw extensions block content (without its 2-byte length), if present.
    pub extensions: Option<&'a [u8]>,
    /// Bytes of the datagram after this record (further records), passed on untouched.
    pub rest: &'a [u8],
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }
    fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ClientHelloError> {
        let end = self.pos.checked_add(n).ok_or(ClientHelloError::Truncated {
            what,
            offset: self.offset(),
        })?;
        let s = self.buf.get(self.pos..end).ok_or(ClientHelloError::Truncated {
            what,
            offset: self.offset(),
        })?;
        self.pos = end;
        Ok(s)
    }
    fn uint(&mut self, n: usize, what: &'static str) -> Result<u64, ClientHelloError> {
        Ok(self
            .take(n, what)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, ClientHelloError> {
        Ok(self.uint(1, what)? as u8)
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, ClientHelloError> {
        Ok(self.uint(2, what)? as u16)
    }
    fn u24(&mut self, what: &'static str) -> Result<u32, ClientHelloError> {
        Ok(self.uint(3, what)? as u32)
    }
    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
}

fn check_dtls(version: u16) -> Result<(), ClientHelloError> {
    if version >> 8 == 0xFE {
        Ok(())
    } else {
        Err(ClientHelloError::NotDtls(version))
    }
}

/// Quick check whether a datagram starts with an epoch-0 handshake record carrying a ClientHello.
/// Cheap; used to decide whether a datagram for a known peer starts a new handshake.
pub fn looks_like_client_hello(datagram: &[u8]) -> bool {
    matches!(
        (
            datagram.first(),
            datagram.get(3),
            datagram.get(4),
            datagram.get(RECORD_HEADER_LEN)
        ),
        (Some(&CONTENT_HANDSHAKE), Some(0), Some(0), Some(&HS_CLIENT_HELLO))
    )
}

/// Parses the first record of `datagram` as an unfragmented DTLS ClientHello.
pub fn parse_client_hello(datagram: &[u8]) -> Result<ClientHello<'_>, ClientHelloError> {
    let mut r = Reader::new(datagram, 0);
    let ct = r.u8("record content type")?;
    if ct != CONTENT_HANDSHAKE {
        return Err(ClientHelloError::NotHandshake(ct));
    }
    let record_version = r.u16("record version")?;
    check_dtls(record_version)?;
    let epoch = r.u16("record epoch")?;
    if epoch != 0 {
        return Err(ClientHelloError::NonZeroEpoch(epoch));
    }
    let record_seq = r.uint(6, "record sequence number")?;
    let record_len = usize::from(r.u16("record length")?);
    let record_start = r.offset();
    let record = r.take(record_len, "record body")?;
    let rest = datagram.get(r.pos..).unwrap_or(&[]);

    let mut h = Reader::new(record, record_start);
    let msg_type = h.u8("handshake type")?;
    if msg_type != HS_CLIENT_HELLO {
        return Err(ClientHelloError::NotClientHello(msg_type));
    }
    let len = h.u24("handshake length")?;
    let message_seq = h.u16("message_seq")?;
    let frag_off = h.u24("fragment_offset")?;
    let frag_len = h.u24("fragment_length")?;
    if frag_off != 0 || frag_len != len {
        return Err(ClientHelloError::Fragmented {
            offset: frag_off,
            fragment_len: frag_len,
            len,
        });
    }
    let body_len = len as usize;
    if h.remaining() != body_len {
        return Err(ClientHelloError::LengthMismatch {
            handshake: HANDSHAKE_HEADER_LEN.saturating_add(body_len),
            record: record.len(),
        });
    }
    let body_start = h.offset();
    let body = h.take(body_len, "ClientHello body")?;
    let mut b = Reader::new(body, body_start);
    let client_version = b.u16("client_version")?;
    check_dtls(client_version)?;
    let random: &[u8; 32] = b
        .take(32, "random")?
        .try_into()
        .map_err(|_| ClientHelloError::Truncated {
            what: "random",
            offset: body_start,
        })?;
    let sid_len = usize::from(b.u8("session_id length")?);
    if sid_len > 32 {
        return Err(ClientHelloError::SessionIdTooLong(sid_len));
    }
    let session_id = b.take(sid_len, "session_id")?;
    let cookie_len = usize::from(b.u8("cookie length")?);
    let cookie = b.take(cookie_len, "cookie")?;
    let cs_len = usize::from(b.u16("cipher_suites length")?);
    if cs_len == 0 || cs_len % 2 != 0 {
        return Err(ClientHelloError::BadCipherSuites(cs_len));
    }
    let cipher_suites = b.take(cs_len, "cipher_suites")?;
    let cm_len = usize::from(b.u8("compression_methods length")?);
    if cm_len == 0 {
        return Err(ClientHelloError::NoCompressionMethods);
    }
    let compression_methods = b.take(cm_len, "compression_methods")?;
    let extensions = if b.remaining() == 0 {
        None
    } else {
        let ext_len = usize::from(b.u16("extensions length")?);
        let ext_start = b.offset();
        let ext = b.take(ext_len, "extensions")?;
        let mut e = Reader::new(ext, ext_start);
        while e.remaining() > 0 {
            let at = e.offset();
            e.u16("extension type")
                .map_err(|_| ClientHelloError::BadExtensions(at))?;
            let l = usize::from(
                e.u16("extension length")
                    .map_err(|_| ClientHelloError::BadExtensions(at))?,
            );
            e.take(l, "extension data")
                .map_err(|_| ClientHelloError::BadExtensions(at))?;
        }
        Some(ext)
    };
    if b.remaining() != 0 {
        return Err(ClientHelloError::TrailingBytes(b.remaining()));
    }
    Ok(ClientHello {
        record_version,
        record_seq,
        message_seq,
        client_version,
        random,
        session_id,
        cookie,
        cipher_suites,
        compression_methods,
        extensions,
        rest,
    })
}

fn put_u24(out: &mut Vec<u8>, v: usize) {
    let v = v as u32;
    out.extend_from_slice(&v.to_be_bytes()[1..]);
}

fn put_record_header(out: &mut Vec<u8>, version: u16, seq: u64, len: usize) {
    out.push(CONTENT_HANDSHAKE);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes()[2..]);
    out.extend_from_slice(&(len as u16).to_be_bytes());
}

fn put_handshake_header(out: &mut Vec<u8>, msg_type: u8, message_seq: u16, len: usize) {
    out.push(msg_type);
    put_u24(out, len);
    out.extend_from_slice(&message_seq.to_be_bytes());
    put_u24(out, 0);
    put_u24(out, len);
}

impl ClientHello<'_> {
    /// Length of the ClientHello body when encoded with `cookie_len` bytes of cookie.
    fn body_len(&self, cookie_len: usize) -> usize {
        2 + 32
            + 1
            + self.session_id.len()
            + 1
            + cookie_len
            + 2
            + self.cipher_suites.len()
            + 1
            + self.compression_methods.len()
            + self.extensions.map_or(0, |e| 2 + e.len())
    }

    /// Encodes this ClientHello as one record, replacing the cookie, the record sequence number and the
    /// message_seq. The trailing records (`rest`) are not included.
    ///
    /// The caller keeps every vector within its wire limit (they are, if `self` came from the parser and
    /// `cookie` is at most 255 bytes).
    pub fn encode_with(&self, cookie: &[u8], record_seq: u64, message_seq: u16) -> Vec<u8> {
        let body = self.body_len(cookie.len());
        let mut out = Vec::with_capacity(RECORD_HEADER_LEN + HANDSHAKE_HEADER_LEN + body);
        put_record_header(&mut out, self.record_version, record_seq, HANDSHAKE_HEADER_LEN + body);
        put_handshake_header(&mut out, HS_CLIENT_HELLO, message_seq, body);
        out.extend_from_slice(&self.client_version.to_be_bytes());
        out.extend_from_slice(self.random);
        out.push(self.session_id.len() as u8);
        out.extend_from_slice(self.session_id);
        out.push(cookie.len() as u8);
        out.extend_from_slice(cookie);
        out.extend_from_slice(&(self.cipher_suites.len() as u16).to_be_bytes());
        out.extend_from_slice(self.cipher_suites);
        out.push(self.compression_methods.len() as u8);
        out.extend_from_slice(self.compression_methods);
        if let Some(ext) = self.extensions {
            out.extend_from_slice(&(ext.len() as u16).to_be_bytes());
            out.extend_from_slice(ext);
        }
        out
    }

    /// Encodes the ClientHello unchanged (same cookie, sequence numbers), without the trailing records.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_with(self.cookie, self.record_seq, self.message_seq)
    }
}

/// Builds a HelloVerifyRequest answering `hello` (RFC 6347 §4.2.1): record version DTLS 1.0, the record sequence
/// number and message_seq copied from the ClientHello, server_version DTLS 1.0, and the cookie.
pub fn hello_verify_request(hello: &ClientHello<'_>, cookie: &[u8]) -> Vec<u8> {
    let cookie = cookie.get(..MAX_COOKIE_LEN).unwrap_or(cookie);
    let body = 2 + 1 + cookie.len();
    let mut out = Vec::with_capacity(RECORD_HEADER_LEN + HANDSHAKE_HEADER_LEN + body);
    put_record_header(&mut out, DTLS1_0, hello.record_seq, HANDSHAKE_HEADER_LEN + body);
    put_handshake_header(&mut out, HS_HELLO_VERIFY_REQUEST, hello.message_seq, body);
    out.extend_from_slice(&DTLS1_0.to_be_bytes());
    out.push(cookie.len() as u8);
    out.extend_from_slice(cookie);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A minimal ClientHello, built by hand: record seq 0, message_seq 0, no cookie, one suite (0xC0A8), null
    /// compression, no extensions.
    fn minimal() -> Vec<u8> {
        let mut v = vec![22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12 + 42];
        v.extend_from_slice(&[1, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0, 42]);
        v.extend_from_slice(&[0xFE, 0xFD]);
        v.extend_from_slice(&[7u8; 32]);
        v.extend_from_slice(&[0, 0, 0, 2, 0xC0, 0xA8, 1, 0]);
        v
    }

    #[test]
    fn parses_minimal_hello() {
        let d = minimal();
        let ch = parse_client_hello(&d).unwrap();
        assert_eq!(ch.record_seq, 0);
        assert_eq!(ch.message_seq, 0);
        assert_eq!(ch.client_version, DTLS1_2);
        assert_eq!(ch.random, &[7u8; 32]);
        assert!(ch.session_id.is_empty() && ch.cookie.is_empty());
        assert_eq!(ch.cipher_suites, &[0xC0, 0xA8]);
        assert_eq!(ch.compression_methods, &[0]);
        assert_eq!(ch.extensions, None);
        assert_eq!(ch.encode(), d);
        assert!(looks_like_client_hello(&d));
    }

    #[test]
    fn hello_verify_request_bytes() {
        let d = minimal();
        let ch = parse_client_hello(&d).unwrap();
        let hvr = hello_verify_request(&ch, &[0xAA, 0xBB]);
        assert_eq!(
            hvr,
            vec![
                22, 0xFE, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 17, // record header
                3, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 5, // handshake header
                0xFE, 0xFF, 2, 0xAA, 0xBB
            ]
        );
    }

    #[test]
    fn error_cases_name_the_problem() {
        let d = minimal();
        assert_eq!(
            parse_client_hello(&[]),
            Err(ClientHelloError::Truncated {
                what: "record content type",
                offset: 0
            })
        );
        let mut x = d.clone();
        x[0] = 23;
        assert_eq!(parse_client_hello(&x), Err(ClientHelloError::NotHandshake(23)));
        let mut x = d.clone();
        x[1] = 3;
        assert_eq!(parse_client_hello(&x), Err(ClientHelloError::NotDtls(0x03FD)));
        let mut x = d.clone();
        x[4] = 1;
        assert_eq!(parse_client_hello(&x), Err(ClientHelloError::NonZeroEpoch(1)));
        let mut x = d.clone();
        x[13] = 2;
        assert_eq!(parse_client_hello(&x), Err(ClientHelloError::NotClientHello(2)));
        let mut x = d.clone();
        x[24] = 40; // fragment_length
        assert_eq!(
            parse_client_hello(&x),
            Err(ClientHelloError::Fragmented {
                offset: 0,
                fragment_len: 40,
                len: 42
            })
        );
        let mut x = d.clone();
        x.truncate(x.len() - 1);
        assert_eq!(
            parse_client_hello(&x),
            Err(ClientHelloError::Truncated {
                what: "record body",
                offset: 13
            })
        );
        let mut x = d.clone();
        x[12] += 1;
        x.push(0);
        assert_eq!(
            parse_client_hello(&x),
            Err(ClientHelloError::LengthMismatch {
                handshake: 54,
                record: 55
            })
        );
        let mut x = d.clone();
        x[25 + 34] = 33; // session_id length
        assert_eq!(parse_client_hello(&x), Err(ClientHelloError::SessionIdTooLong(33)));
        let mut x = d.clone();
        x[25 + 37] = 3; // cipher_suites length low byte
        assert_eq!(parse_client_hello(&x), Err(ClientHelloError::BadCipherSuites(3)));
        let mut x = d.clone();
        x[25 + 40] = 0; // compression_methods length
        x.pop();
        x[12] -= 1;
        x[16] -= 1;
        x[24] -= 1;
        assert_eq!(parse_client_hello(&x), Err(ClientHelloError::NoCompressionMethods));
        // extensions: announce 4 bytes, one extension of length 5 overruns
        let mut x = d.clone();
        x.extend_from_slice(&[0, 4, 0, 1, 0, 5]);
        x[12] += 6;
        x[16] += 6;
        x[24] += 6;
        assert_eq!(parse_client_hello(&x), Err(ClientHelloError::BadExtensions(69)));
        // a single trailing byte cannot be an extensions length
        let mut x = d.clone();
        x.push(9);
        x[12] += 1;
        x[16] += 1;
        x[24] += 1;
        assert_eq!(
            parse_client_hello(&x),
            Err(ClientHelloError::Truncated {
                what: "extensions length",
                offset: 67
            })
        );
        // bytes after a complete extensions block
        let mut x = d.clone();
        x.extend_from_slice(&[0, 0, 5]);
        x[12] += 3;
        x[16] += 3;
        x[24] += 3;
        assert_eq!(parse_client_hello(&x), Err(ClientHelloError::TrailingBytes(1)));
    }

    prop_compose! {
        fn arb_hello()(
            seq in 0u64..(1 << 48),
            mseq in any::<u16>(),
            random in any::<[u8; 32]>(),
            sid in proptest::collection::vec(any::<u8>(), 0..=32),
            cookie in proptest::collection::vec(any::<u8>(), 0..=255),
            suites in proptest::collection::vec(any::<u8>(), 1..40),
            comp in proptest::collection::vec(any::<u8>(), 1..4),
            exts in proptest::option::of(proptest::collection::vec((any::<u16>(), proptest::collection::vec(any::<u8>(), 0..20)), 0..6)),
        ) -> (u64, u16, [u8; 32], Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, Option<Vec<u8>>) {
            let mut suites = suites;
            if suites.len() % 2 == 1 { suites.pop(); }
            if suites.is_empty() { suites = vec![0xC0, 0xA8]; }
            let exts = exts.map(|v| {
                let mut out = Vec::new();
                for (t, d) in v {
                    out.extend_from_slice(&t.to_be_bytes());
                    out.extend_from_slice(&(d.len() as u16).to_be_bytes());
                    out.extend_from_slice(&d);
                }
                out
            });
            (seq, mseq, random, sid, cookie, suites, comp, exts)
        }
    }

    proptest! {
        #[test]
        fn round_trip((seq, mseq, random, sid, cookie, suites, comp, exts) in arb_hello()) {
            let ch = ClientHello {
                record_version: DTLS1_2, record_seq: seq, message_seq: mseq, client_version: DTLS1_2,
                random: &random, session_id: &sid, cookie: &cookie, cipher_suites: &suites,
                compression_methods: &comp, extensions: exts.as_deref(), rest: &[],
            };
            let bytes = ch.encode();
            let parsed = parse_client_hello(&bytes).unwrap();
            prop_assert_eq!(&parsed, &ch);
            // replacing the cookie keeps everything else
            let rebuilt = ch.encode_with(&[], 5, 0);
            let re = parse_client_hello(&rebuilt).unwrap();
            prop_assert!(re.cookie.is_empty());
            prop_assert_eq!(re.random, ch.random);
            prop_assert_eq!(re.extensions, ch.extensions);
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_client_hello(&bytes);
            let _ = looks_like_client_hello(&bytes);
        }

        #[test]
        fn truncation_is_an_error((seq, mseq, random, sid, cookie, suites, comp, exts) in arb_hello(), cut in any::<prop::sample::Index>()) {
            let ch = ClientHello {
                record_version: DTLS1_2, record_seq: seq, message_seq: mseq, client_version: DTLS1_2,
                random: &random, session_id: &sid, cookie: &cookie, cipher_suites: &suites,
                compression_methods: &comp, extensions: exts.as_deref(), rest: &[],
            };
            let bytes = ch.encode();
            let n = cut.index(bytes.len());
            prop_assert!(parse_client_hello(&bytes[..n]).is_err());
        }
    }
}
