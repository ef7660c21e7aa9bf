//! CoAP messages: the data model, typed option access, builders, and the RFC 7252 / RFC 8323 codecs.

pub mod codec;
pub mod option;
pub mod tcp;

use std::fmt;

pub use codec::MessageError;
pub use option::{number as opt, Block, Options};

/// The message type of the UDP header (RFC 7252 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// Confirmable (0).
    Con,
    /// Non-confirmable (1).
    Non,
    /// Acknowledgement (2).
    Ack,
    /// Reset (3).
    Rst,
}

impl MessageType {
    /// The type from its 2-bit value (only the low two bits are used).
    pub fn from_bits(bits: u8) -> Self {
        match bits & 3 {
            0 => MessageType::Con,
            1 => MessageType::Non,
            2 => MessageType::Ack,
            _ => MessageType::Rst,
        }
    }

    /// The 2-bit wire value.
    pub fn bits(self) -> u8 {
        match self {
            MessageType::Con => 0,
            MessageType::Non => 1,
            MessageType::Ack => 2,
            MessageType::Rst => 3,
        }
    }
}

/// A message code `class.detail` (class 3 bits, detail 5 bits). Displays as `"2.05"`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(pub u8);

impl Code {
    /// Build from class (0–7) and detail (0–31); out-of-range bits are masked.
    pub const fn new(class: u8, detail: u8) -> Code {
        Code(((class & 7) << 5) | (detail & 0x1F))
    }
    /// The class (0–7).
    pub const fn class(self) -> u8 {
        self.0 >> 5
    }
    /// The detail (0–31).
    pub const fn detail(self) -> u8 {
        self.0 & 0x1F
    }
    /// 0.00.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// 0.01–0.31.
    pub const fn is_request(self) -> bool {
        self.class() == 0 && self.0 != 0
    }
    /// Classes 2–5.
    pub const fn is_response(self) -> bool {
        matches!(self.class(), 2..=5)
    }
    /// 2.xx.
    pub const fn is_success(self) -> bool {
        self.class() == 2
    }
    /// 4.xx or 5.xx.
    pub const fn is_error(self) -> bool {
        matches!(self.class(), 4 | 5)
    }
    /// 7.xx (RFC 8323 signalling).
    pub const fn is_signal(self) -> bool {
        self.class() == 7
    }

    /// Empty message.
    pub const EMPTY: Code = Code::new(0, 0);
    /// GET.
    pub const GET: Code = Code::new(0, 1);
    /// POST.
    pub const POST: Code = Code::new(0, 2);
    /// PUT.
    pub const PUT: Code = Code::new(0, 3);
    /// DELETE.
    pub const DELETE: Code = Code::new(0, 4);
    /// FETCH (RFC 8132).
    pub const FETCH: Code = Code::new(0, 5);
    /// PATCH (RFC 8132).
    pub const PATCH: Code = Code::new(0, 6);
    /// iPATCH (RFC 8132).
    pub const IPATCH: Code = Code::new(0, 7);
    /// 2.01 Created.
    pub const CREATED: Code = Code::new(2, 1);
    /// 2.02 Deleted.
    pub const DELETED: Code = Code::new(2, 2);
    /// 2.03 Valid.
    pub const VALID: Code = Code::new(2, 3);
    /// 2.04 Changed.
    pub const CHANGED: Code = Code::new(2, 4);
    /// 2.05 Content.
    pub const CONTENT: Code = Code::new(2, 5);
    /// 2.31 Continue (RFC 7959).
    pub const CONTINUE: Code = Code::new(2, 31);
    /// 4.00 Bad Request.
    pub const BAD_REQUEST: Code = Code::new(4, 0);
    /// 4.01 Unauthorized.
    pub const UNAUTHORIZED: Code = Code::new(4, 1);
    /// 4.02 Bad Option.
    pub const BAD_OPTION: Code = Code::new(4, 2);
    /// 4.03 Forbidden.
    pub const FORBIDDEN: Code = Code::new(4, 3);
    /// 4.04 Not Found.
    pub const NOT_FOUND: Code = Code::new(4, 4);
    /// 4.05 Method Not Allowed.
    pub const METHOD_NOT_ALLOWED: Code = Code::new(4, 5);
    /// 4.06 Not Acceptable.
    pub const NOT_ACCEPTABLE: Code = Code::new(4, 6);
    /// 4.08 Request Entity Incomplete (RFC 7959).
    pub const REQUEST_ENTITY_INCOMPLETE: Code = Code::new(4, 8);
    /// 4.09 Conflict (RFC 8132).
    pub const CONFLICT: Code = Code::new(4, 9);
    /// 4.12 Precondition Failed.
    pub const PRECONDITION_FAILED: Code = Code::new(4, 12);
    /// 4.13 Request Entity Too Large.
    pub const REQUEST_ENTITY_TOO_LARGE: Code = Code::new(4, 13);
    /// 4.15 Unsupported Content-Format.
    pub const UNSUPPORTED_CONTENT_FORMAT: Code = Code::new(4, 15);
    /// 4.22 Unprocessable Entity (RFC 8132).
    pub const UNPROCESSABLE_ENTITY: Code = Code::new(4, 22);
    /// 5.00 Internal Server Error.
    pub const INTERNAL_SERVER_ERROR: Code = Code::new(5, 0);
    /// 5.01 Not Implemented.
    pub const NOT_IMPLEMENTED: Code = Code::new(5, 1);
    /// 5.02 Bad Gateway.
    pub const BAD_GATEWAY: Code = Code::new(5, 2);
    /// 5.03 Service Unavailable.
    pub const SERVICE_UNAVAILABLE: Code = Code::new(5, 3);
    /// 5.04 Gateway Timeout.
    pub const GATEWAY_TIMEOUT: Code = Code::new(5, 4);
    /// 5.05 Proxying Not Supported.
    pub const PROXYING_NOT_SUPPORTED: Code = Code::new(5, 5);
    /// 7.01 CSM (RFC 8323, TCP only).
    pub const CSM: Code = Code::new(7, 1);
    /// 7.02 Ping (RFC 8323, TCP only).
    pub const PING: Code = Code::new(7, 2);
    /// 7.03 Pong (RFC 8323, TCP only).
    pub const PONG: Code = Code::new(7, 3);
    /// 7.04 Release (RFC 8323, TCP only).
    pub const RELEASE: Code = Code::new(7, 4);
    /// 7.05 Abort (RFC 8323, TCP only).
    pub const ABORT: Code = Code::new(7, 5);

    /// The RFC 7252 / RFC 8132 name of a response code (`Some("Not Found")` for 4.04), `None` for requests,
    /// signals and unassigned codes.
    pub const fn reason_phrase(self) -> Option<&'static str> {
        Some(match (self.class(), self.detail()) {
            (2, 1) => "Created",
            (2, 2) => "Deleted",
            (2, 3) => "Valid",
            (2, 4) => "Changed",
            (2, 5) => "Content",
            (2, 31) => "Continue",
            (4, 0) => "Bad Request",
            (4, 1) => "Unauthorized",
            (4, 2) => "Bad Option",
            (4, 3) => "Forbidden",
            (4, 4) => "Not Found",
            (4, 5) => "Method Not Allowed",
            (4, 6) => "Not Acceptable",
            (4, 8) => "Request Entity Incomplete",
            (4, 9) => "Conflict",
            (4, 12) => "Precondition Failed",
            (4, 13) => "Request Entity Too Large",
            (4, 15) => "Unsupported Content-Format",
            (4, 22) => "Unprocessable Entity",
            (5, 0) => "Internal Server Error",
            (5, 1) => "Not Implemented",
            (5, 2) => "Bad Gateway",
            (5, 3) => "Service Unavailable",
            (5, 4) => "Gateway Timeout",
            (5, 5) => "Proxying Not Supported",
            _ => return None,
        })
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.class(), self.detail())
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Code({self})")
    }
}

/// A token of 0–8 bytes, stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Token {
    len: u8,
    bytes: [u8; 8],
}

impl Token {
    /// The zero-length token.
    pub const EMPTY: Token = Token { len: 0, bytes: [0; 8] };
    /// Maximum token length.
    pub const MAX_LEN: usize = 8;

    /// A token from up to 8 bytes; `None` if longer.
    pub fn try_from_slice(b: &[u8]) -> Option<Token> {
        if b.len() > Self::MAX_LEN {
            return None;
        }
        let mut bytes = [0u8; 8];
        bytes.get_mut(..b.len())?.copy_from_slice(b);
        Some(Token {
            len: b.len() as u8,
            bytes,
        })
    }

    /// An 8-byte token from a u64 (big-endian).
    pub fn from_u64(v: u64) -> Token {
        Token {
            len: 8,
            bytes: v.to_be_bytes(),
        }
    }

    /// The token bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len).min(8)]
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True for the zero-length token.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token(")?;
        for b in self.as_slice() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl std::ops::Deref for Token {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

/// A CoAP message as carried over UDP/DTLS (RFC 7252 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// CON, NON, ACK or RST.
    pub mtype: MessageType,
    /// Request method, response code or 0.00 Empty.
    pub code: Code,
    /// Message ID (the endpoint assigns it on send).
    pub message_id: u16,
    /// Token (the endpoint generates one on send if empty).
    pub token: Token,
    /// Options, sorted by number.
    pub options: Options,
    /// Payload (empty = no payload marker).
    pub payload: Vec<u8>,
}

fn split_path(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

impl Message {
    /// A bare message.
    pub fn new(mtype: MessageType, code: Code) -> Message {
        Message {
            mtype,
            code,
            message_id: 0,
            token: Token::EMPTY,
            options: Options::new(),
            payload: Vec::new(),
        }
    }

    /// A CON request for `path` (`"/3/0/1"`, `"rd"`; empty segments are skipped; a query part after `?`
    /// becomes Uri-Query options split at `&`).
    pub fn request(code: Code, path: &str) -> Message {
        let mut m = Message::new(MessageType::Con, code);
        let (p, q) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        m.set_uri_path(p);
        if let Some(q) = q {
            for part in q.split('&').filter(|s| !s.is_empty()) {
                m.add_uri_query(part);
            }
        }
        m
    }

    /// A piggybacked response to `req`: ACK for a CON request (same Message ID), NON otherwise (the endpoint
    /// assigns the ID); the token is copied.
    pub fn response_to(req: &Message, code: Code) -> Message {
        let mtype = if req.mtype == MessageType::Con {
            MessageType::Ack
        } else {
            MessageType::Non
        };
        let mut m = Message::new(mtype, code);
        m.message_id = req.message_id;
        m.token = req.token;
        m
    }

    /// An empty ACK for `message_id`.
    pub fn empty_ack(message_id: u16) -> Message {
        let mut m = Message::new(MessageType::Ack, Code::EMPTY);
        m.message_id = message_id;
        m
    }

    /// An RST for `message_id`.
    pub fn reset(message_id: u16) -> Message {
        let mut m = Message::new(MessageType::Rst, Code::EMPTY);
        m.message_id = message_id;
        m
    }

    /// True for 0.00.
    pub fn is_empty(&self) -> bool {
        self.code.is_empty()
    }

    /// True if the code is a request method.
    pub fn is_request(&self) -> bool {
        self.code.is_request()
    }

    /// True if the code is a response code.
    pub fn is_response(&self) -> bool {
        self.code.is_response()
    }

    // ---- builder-style helpers ----

    /// Set the type (builder).
    pub fn with_type(mut self, mtype: MessageType) -> Self {
        self.mtype = mtype;
        self
    }

    /// Set the token (builder).
    pub fn with_token(mut self, token: Token) -> Self {
        self.token = token;
        self
    }

    /// Set the payload (builder).
    pub fn with_payload(mut self, payload: impl Into<Vec<u8>>) -> Self {
        self.payload = payload.into();
        self
    }

    /// Set the Content-Format (builder).
    pub fn with_content_format(mut self, cf: u16) -> Self {
        self.set_content_format(cf);
        self
    }

    /// Append a Uri-Query (builder).
    pub fn with_query(mut self, q: &str) -> Self {
        self.add_uri_query(q);
        self
    }

    // ---- typed accessors ----

    /// Uri-Path segments (lossy UTF-8).
    pub fn uri_path(&self) -> Vec<String> {
        self.options.get_strings(opt::URI_PATH)
    }

    /// Uri-Path joined as `"/a/b"` (`"/"` when there is none).
    pub fn uri_path_string(&self) -> String {
        let segs = self.uri_path();
        if segs.is_empty() {
            "/".to_string()
        } else {
            segs.iter().fold(String::new(), |acc, s| acc + "/" + s)
        }
    }

    /// Replace the Uri-Path by the segments of `path`.
    pub fn set_uri_path(&mut self, path: &str) {
        self.options.remove(opt::URI_PATH);
        for seg in split_path(path) {
            self.options.push(opt::URI_PATH, seg.as_bytes());
        }
    }

    /// Uri-Query values.
    pub fn uri_query(&self) -> Vec<String> {
        self.options.get_strings(opt::URI_QUERY)
    }

    /// Append a Uri-Query value (`"ep=name"`).
    pub fn add_uri_query(&mut self, q: &str) {
        self.options.push(opt::URI_QUERY, q.as_bytes());
    }

    /// Location-Path segments.
    pub fn location_path(&self) -> Vec<String> {
        self.options.get_strings(opt::LOCATION_PATH)
    }

    /// Replace the Location-Path by the segments of `path`.
    pub fn set_location_path(&mut self, path: &str) {
        self.options.remove(opt::LOCATION_PATH);
        for seg in split_path(path) {
            self.options.push(opt::LOCATION_PATH, seg.as_bytes());
        }
    }

    /// Location-Query values.
    pub fn location_query(&self) -> Vec<String> {
        self.options.get_strings(opt::LOCATION_QUERY)
    }

    /// Append a Location-Query value.
    pub fn add_location_query(&mut self, q: &str) {
        self.options.push(opt::LOCATION_QUERY, q.as_bytes());
    }

    /// Uri-Host.
    pub fn uri_host(&self) -> Option<String> {
        self.options.get_strings(opt::URI_HOST).into_iter().next()
    }

    /// Set Uri-Host.
    pub fn set_uri_host(&mut self, host: &str) {
        self.options.set(opt::URI_HOST, host.as_bytes());
    }

    /// Uri-Port (`None` if absent or longer than 2 bytes).
    pub fn uri_port(&self) -> Option<u16> {
        self.uint_max(opt::URI_PORT, 2).map(|v| v as u16)
    }

    /// Set Uri-Port.
    pub fn set_uri_port(&mut self, port: u16) {
        self.options.set_uint(opt::URI_PORT, u32::from(port));
    }

    fn uint_max(&self, number: u16, max_len: usize) -> Option<u32> {
        let v = self.options.get(number)?;
        if v.len() > max_len {
            return None;
        }
        option::decode_uint(v)
    }

    /// Content-Format number (`None` if absent or malformed).
    pub fn content_format(&self) -> Option<u16> {
        self.uint_max(opt::CONTENT_FORMAT, 2).map(|v| v as u16)
    }

    /// Set Content-Format.
    pub fn set_content_format(&mut self, cf: u16) {
        self.options.set_uint(opt::CONTENT_FORMAT, u32::from(cf));
    }

    /// Accept (`None` if absent or malformed).
    pub fn accept(&self) -> Option<u16> {
        self.uint_max(opt::ACCEPT, 2).map(|v| v as u16)
    }

    /// Set Accept.
    pub fn set_accept(&mut self, cf: u16) {
        self.options.set_uint(opt::ACCEPT, u32::from(cf));
    }

    /// Observe value (24 bits; `None` if absent or malformed).
    pub fn observe(&self) -> Option<u32> {
        self.uint_max(opt::OBSERVE, 3)
    }

    /// Set Observe (only the low 24 bits are kept).
    pub fn set_observe(&mut self, v: u32) {
        self.options.set_uint(opt::OBSERVE, v & 0xFF_FFFF);
    }

    /// Block1 (`None` if absent or malformed, including SZX 7).
    pub fn block1(&self) -> Option<Block> {
        self.options.get(opt::BLOCK1).and_then(|v| Block::decode(v).ok())
    }

    /// Set Block1.
    pub fn set_block1(&mut self, b: Block) {
        self.options.set(opt::BLOCK1, b.encode());
    }

    /// Block2 (`None` if absent or malformed, including SZX 7).
    pub fn block2(&self) -> Option<Block> {
        self.options.get(opt::BLOCK2).and_then(|v| Block::decode(v).ok())
    }

    /// Set Block2.
    pub fn set_block2(&mut self, b: Block) {
        self.options.set(opt::BLOCK2, b.encode());
    }

    /// Size1.
    pub fn size1(&self) -> Option<u32> {
        self.uint_max(opt::SIZE1, 4)
    }

    /// Set Size1.
    pub fn set_size1(&mut self, v: u32) {
        self.options.set_uint(opt::SIZE1, v);
    }

    /// Size2.
    pub fn size2(&self) -> Option<u32> {
        self.uint_max(opt::SIZE2, 4)
    }

    /// Set Size2.
    pub fn set_size2(&mut self, v: u32) {
        self.options.set_uint(opt::SIZE2, v);
    }

    /// ETag values (several in a request, one in a response).
    pub fn etags(&self) -> Vec<Vec<u8>> {
        self.options.get_all(opt::ETAG).map(<[u8]>::to_vec).collect()
    }

    /// First ETag.
    pub fn etag(&self) -> Option<&[u8]> {
        self.options.get(opt::ETAG)
    }

    /// Set a single ETag.
    pub fn set_etag(&mut self, etag: &[u8]) {
        self.options.set(opt::ETAG, etag);
    }

    /// If-Match values.
    pub fn if_match(&self) -> Vec<Vec<u8>> {
        self.options.get_all(opt::IF_MATCH).map(<[u8]>::to_vec).collect()
    }

    /// Append an If-Match value.
    pub fn add_if_match(&mut self, v: &[u8]) {
        self.options.push(opt::IF_MATCH, v);
    }

    /// True if If-None-Match is present.
    pub fn if_none_match(&self) -> bool {
        self.options.contains(opt::IF_NONE_MATCH)
    }

    /// Set or clear If-None-Match.
    pub fn set_if_none_match(&mut self, on: bool) {
        self.options.remove(opt::IF_NONE_MATCH);
        if on {
            self.options.push(opt::IF_NONE_MATCH, Vec::new());
        }
    }

    /// Max-Age in seconds (RFC 7252 default 60 applies when absent; this returns `None` then).
    pub fn max_age(&self) -> Option<u32> {
        self.uint_max(opt::MAX_AGE, 4)
    }

    /// Set Max-Age.
    pub fn set_max_age(&mut self, secs: u32) {
        self.options.set_uint(opt::MAX_AGE, secs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_phrases_of_response_codes_only() {
        assert_eq!(Code::NOT_FOUND.reason_phrase(), Some("Not Found"));
        assert_eq!(Code::CONTINUE.reason_phrase(), Some("Continue"));
        assert_eq!(
            Code::PROXYING_NOT_SUPPORTED.reason_phrase(),
            Some("Proxying Not Supported")
        );
        assert_eq!(Code::new(4, 29).reason_phrase(), None);
        assert_eq!(Code::GET.reason_phrase(), None);
        assert_eq!(Code::CSM.reason_phrase(), None);
    }

    #[test]
    fn code_display_and_parts() {
        assert_eq!(Code::CONTENT.to_string(), "2.05");
        assert_eq!(Code::CONTENT.0, 0x45);
        assert_eq!(Code::NOT_FOUND.0, 0x84);
        assert_eq!(Code::CONTINUE.to_string(), "2.31");
        assert_eq!(Code::REQUEST_ENTITY_TOO_LARGE.to_string(), "4.13");
        assert_eq!(Code::INTERNAL_SERVER_ERROR.to_string(), "5.00");
        assert_eq!(Code::IPATCH.to_string(), "0.07");
        assert!(Code::GET.is_request() && !Code::EMPTY.is_request());
        assert!(Code::BAD_REQUEST.is_error() && Code::CHANGED.is_success());
        assert!(Code::CSM.is_signal());
        assert_eq!(format!("{:?}", Code::FORBIDDEN), "Code(4.03)");
    }

    #[test]
    fn token_inline() {
        let t = Token::try_from_slice(&[1, 2, 3]).unwrap();
        assert_eq!(t.as_slice(), &[1, 2, 3]);
        assert_eq!(t.len(), 3);
        assert!(Token::try_from_slice(&[0; 9]).is_none());
        assert_eq!(
            Token::from_u64(0x0102030405060708).as_slice(),
            &[1, 2, 3, 4, 5, 6, 7, 8]
        );
        assert_eq!(format!("{t:?}"), "Token(010203)");
        assert_ne!(Token::try_from_slice(&[0]).unwrap(), Token::EMPTY);
    }

    #[test]
    fn request_builder_and_accessors() {
        let mut m = Message::request(Code::POST, "/rd?ep=dev1&lt=300&b=U")
            .with_content_format(40)
            .with_payload(b"</1/0>".to_vec());
        assert_eq!(m.mtype, MessageType::Con);
        assert_eq!(m.uri_path(), vec!["rd"]);
        assert_eq!(m.uri_path_string(), "/rd");
        assert_eq!(m.uri_query(), vec!["ep=dev1", "lt=300", "b=U"]);
        assert_eq!(m.content_format(), Some(40));
        m.set_accept(11542);
        m.set_observe(0);
        m.set_block1(Block::new(2, true, 6).unwrap());
        m.set_block2(Block::new(0, false, 2).unwrap());
        m.set_size1(5000);
        m.set_size2(70000);
        m.set_etag(&[1, 2]);
        m.add_if_match(&[3]);
        m.set_if_none_match(true);
        m.set_max_age(30);
        m.set_uri_host("example.invalid");
        m.set_uri_port(5683);
        assert_eq!(m.accept(), Some(11542));
        assert_eq!(m.observe(), Some(0));
        assert_eq!(m.block1().map(|b| (b.num, b.more, b.size())), Some((2, true, 1024)));
        assert_eq!(m.block2().map(|b| b.size()), Some(64));
        assert_eq!((m.size1(), m.size2()), (Some(5000), Some(70000)));
        assert_eq!(m.etag(), Some(&[1u8, 2][..]));
        assert_eq!(m.if_match(), vec![vec![3u8]]);
        assert!(m.if_none_match());
        assert_eq!(m.max_age(), Some(30));
        assert_eq!(m.uri_host().as_deref(), Some("example.invalid"));
        assert_eq!(m.uri_port(), Some(5683));
        assert_eq!(m.options.validate(), Ok(()));
        let back = Message::decode(&m.encode()).unwrap();
        assert_eq!(back, m);
        assert_eq!(Message::request(Code::GET, "").uri_path_string(), "/");
    }

    #[test]
    fn response_to_copies_token_and_mid() {
        let mut req = Message::request(Code::GET, "/3/0");
        req.message_id = 77;
        req.token = Token::try_from_slice(&[9, 9]).unwrap();
        let mut resp = Message::response_to(&req, Code::CREATED);
        resp.set_location_path("/rd/abc");
        resp.add_location_query("x=1");
        assert_eq!(resp.mtype, MessageType::Ack);
        assert_eq!(resp.message_id, 77);
        assert_eq!(resp.token, req.token);
        assert_eq!(resp.location_path(), vec!["rd", "abc"]);
        assert_eq!(resp.location_query(), vec!["x=1"]);
        let non = Message::response_to(&req.clone().with_type(MessageType::Non), Code::CONTENT);
        assert_eq!(non.mtype, MessageType::Non);
    }

    #[test]
    fn malformed_uint_options_read_as_absent() {
        let mut m = Message::new(MessageType::Con, Code::GET);
        m.options.push(opt::CONTENT_FORMAT, vec![0, 0, 1]);
        m.options.push(opt::OBSERVE, vec![1, 2, 3, 4]);
        m.options.push(opt::BLOCK2, vec![0x07]);
        assert_eq!(m.content_format(), None);
        assert_eq!(m.observe(), None);
        assert_eq!(m.block2(), None);
    }
}
