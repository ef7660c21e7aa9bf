//! Persistence: registrations, security credentials, live observations and requests held for sleeping
//! queue-mode clients, all surviving a restart.
//!
//! - [`redb`](self::redb): the redb-backed stores. [`ServerDb`] is one database file;
//!   [`RedbRegistrationStore`] is a [`RegistrationStore`](crate::RegistrationStore) that answers every lookup
//!   from memory and writes each change through to the file (one transaction each);
//!   [`PersistentSecurity`] keeps a [`MemorySecurityStore`](crate::security::MemorySecurityStore) and the file
//!   in step.
//! - The record encoding ([`encode_registration`], [`decode_registration`], [`encode_security`],
//!   [`decode_security`], [`encode_observation`], [`decode_observation`], [`encode_queued_request`],
//!   [`decode_queued_request`]): a versioned, length-prefixed binary record per registration, per credential,
//!   per observation and per request held for a sleeping queue-mode client.
//!   Decoding returns a [`RecordError`] on any malformed input and never panics.
//!
//! Record layout, version 1 (integers big-endian; `str`/`bytes` = `u32` length + bytes; `opt<T>` = `u8` 0
//! or 1, then `T` when 1):
//!
//! ```text
//! registration: u8 version=1, u64 id, str endpoint, peer, u8 socket, identity, u32 lifetime_s,
//!               u8 binding (U=1 T=2 S=4 N=8), u8 queue_mode (0|1), u16 major, u16 minor, opt<str> sms,
//!               opt<str> alternate_path, u32 n + n×u16 ct, u32 n + n×object, u64 registered_at_ms,
//!               u64 last_update_ms, u64 expires_ms, u32 n + n×(str name, opt<str> value)
//! peer:         u8 4, 4 bytes ip, u16 port | u8 6, 16 bytes ip, u16 port, u32 flowinfo, u32 scope_id
//! identity:     u8 0 (none) | 1 bytes psk_identity | 2 bytes spki | 3 opt<str> cn, bytes cert
//! object:       u16 object_id, opt<(u16 major, u16 minor)> version, u32 n + n×u16 instances
//! security:     u8 version=1, str endpoint, u8 kind: 1 str identity, bytes key | 2 bytes spki | 3 (x509)
//! observation:  u8 version=1, u64 id, u64 registration_id, str endpoint, bytes token (at most 8),
//!               u8 kind (1 Observe, 2 Observe-Composite), u32 n + n×str path, opt<u16> content format,
//!               u64 created_ms
//! queued request: u8 version=1, u64 id (queue order), u64 registration_id, str endpoint,
//!               u64 queued_at_ms, u64 deadline_ms (wall clock, like a registration's expiry),
//!               opt<u16> content format override, request
//! request:      u8 op, then: 1 Read path | 2 Discover path | 3 Write path, u8 mode (1 Replace,
//!               2 Partial Update), node | 4 Write-Attributes path, 7×change (pmin, pmax, gt, lt, st, epmin,
//!               epmax) | 5 Execute path, opt<str> arguments | 6 Create u16 object_id, opt<u16> instance_id,
//!               u32 n + n×resource | 7 Delete path | 8 Read-Composite paths | 9 Write-Composite
//!               u32 n + n×(path, value, opt<f64> time) | 10 Observe path | 11 Observe-Composite paths
//! path:         u8 n (0..=4) + n×u16 id          paths: u32 n + n×path
//! change:       u8 0 (absent) | 1 (set) u32 or f64 | 2 (unset); pmin, pmax, epmin, epmax are u32
//! node:         u8 1 u16 object_id, u32 n + n×instance | 2 instance | 3 resource | 4 u16 id, value
//! instance:     u16 id, u32 n + n×resource (ids unique)
//! resource:     u16 id, u8 0 value | 1 u32 n + n×(u16 instance id, value) (ids unique)
//! value:        u8 type: 1 str String | 2 i64 Integer | 3 u64 Unsigned | 4 f64 Float | 5 u8 Boolean (0|1) |
//!               6 bytes Opaque | 7 i64 Time | 8 u16 u16 Objlnk | 9 str Corelnk   (f64 = IEEE 754 bits as u64)
//! ```

pub mod redb;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use lwm2m_coap::PeerIdentity;
use lwm2m_core::attributes::{AttributeChanges, Change};
use lwm2m_core::format::link::{ObjectLink, RegistrationLinks};
use lwm2m_core::format::ContentFormat;
use lwm2m_core::model::Version;
use lwm2m_core::{InstanceNode, Node, ObjLink, ObjectNode, Path, Record, ResourceNode, ResourceValue, Value};
use thiserror::Error;

use crate::observation::{ObservationId, ObservationInfo};
use crate::queue::QueuedRequest;
use crate::registration::Binding;
use crate::registry::{Registration, RegistrationId};
use crate::request::{Request, WriteMode};
use crate::security::{Credential, SecurityInfo};

pub use self::redb::{PersistError, PersistentSecurity, RedbRegistrationStore, ServerDb};

/// The record format version written by this build.
pub const RECORD_VERSION: u8 = 1;

/// Why a stored record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    /// The record is empty.
    #[error("empty record")]
    Empty,
    /// The record was written in a format version this build does not read.
    #[error("record format version {0} is not supported (this build reads version {RECORD_VERSION})")]
    UnsupportedVersion(u8),
    /// The record ends inside a field.
    #[error("record truncated at byte {offset}: {field} needs more bytes")]
    Truncated { offset: usize, field: &'static str },
    /// A field holds a value that is not allowed.
    #[error("invalid {field} at byte {offset}: {reason}")]
    Invalid {
        offset: usize,
        field: &'static str,
        reason: &'static str,
    },
    /// Bytes follow the last field.
    #[error("{0} unexpected bytes after the end of the record")]
    TrailingBytes(usize),
}

// ---------------------------------------------------------------------------------------------------------
// Writer

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }
    /// A length prefix. In-memory values larger than 4 GiB cannot occur in a registration; saturate rather
    /// than panic (the decoder then reports the record as truncated).
    fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    fn bytes(&mut self, v: &[u8]) {
        self.len(v.len());
        self.0.extend_from_slice(v);
    }
    fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }
    fn opt_str(&mut self, v: Option<&str>) {
        match v {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Reader

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], RecordError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let Some(end) = end else {
            return Err(RecordError::Truncated {
                offset: self.pos,
                field,
            });
        };
        let s = self.buf.get(self.pos..end).ok_or(RecordError::Truncated {
            offset: self.pos,
            field,
        })?;
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], RecordError> {
        let s = self.take(N, field)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u8(&mut self, field: &'static str) -> Result<u8, RecordError> {
        Ok(self.array::<1>(field)?[0])
    }
    fn u16(&mut self, field: &'static str) -> Result<u16, RecordError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }
    fn u32(&mut self, field: &'static str) -> Result<u32, RecordError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }
    fn u64(&mut self, field: &'static str) -> Result<u64, RecordError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }
    fn invalid(&self, offset: usize, field: &'static str, reason: &'static str) -> RecordError {
        RecordError::Invalid { offset, field, reason }
    }
    fn bool(&mut self, field: &'static str) -> Result<bool, RecordError> {
        let at = self.pos;
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.invalid(at, field, "a flag is 0 or 1")),
        }
    }
    /// A count of items of at least `min_size` bytes each, checked against the bytes left so a corrupt count
    /// cannot make the decoder allocate more than the record holds.
    fn count(&mut self, min_size: usize, field: &'static str) -> Result<usize, RecordError> {
        let at = self.pos;
        let n = usize::try_from(self.u32(field)?).map_err(|_| self.invalid(at, field, "count too large"))?;
        let need = n.checked_mul(min_size.max(1));
        match need {
            Some(need) if need <= self.buf.len().saturating_sub(self.pos) => Ok(n),
            _ => Err(RecordError::Truncated { offset: at, field }),
        }
    }
    fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], RecordError> {
        let n = self.count(1, field)?;
        self.take(n, field)
    }
    fn str(&mut self, field: &'static str) -> Result<String, RecordError> {
        let at = self.pos;
        let b = self.bytes(field)?;
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(|_| self.invalid(at, field, "not UTF-8"))
    }
    fn opt_str(&mut self, field: &'static str) -> Result<Option<String>, RecordError> {
        if self.bool(field)? {
            self.str(field).map(Some)
        } else {
            Ok(None)
        }
    }
    fn version(&mut self) -> Result<(), RecordError> {
        match self.u8("format version") {
            Err(_) => Err(RecordError::Empty),
            Ok(RECORD_VERSION) => Ok(()),
            Ok(v) => Err(RecordError::UnsupportedVersion(v)),
        }
    }
    fn finish(&self) -> Result<(), RecordError> {
        match self.buf.len().saturating_sub(self.pos) {
            0 => Ok(()),
            n => Err(RecordError::TrailingBytes(n)),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Registration

/// Encodes a registration as a version-1 record.
pub fn encode_registration(r: &Registration) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(128 + 8 * r.objects.objects.len()));
    w.u8(RECORD_VERSION);
    w.u64(r.id.0);
    w.str(&r.endpoint);
    match r.peer {
        SocketAddr::V4(a) => {
            w.u8(4);
            w.0.extend_from_slice(&a.ip().octets());
            w.u16(a.port());
        }
        SocketAddr::V6(a) => {
            w.u8(6);
            w.0.extend_from_slice(&a.ip().octets());
            w.u16(a.port());
            w.u32(a.flowinfo());
            w.u32(a.scope_id());
        }
    }
    w.u8(r.socket);
    match &r.identity {
        None => w.u8(0),
        Some(PeerIdentity::Psk(id)) => {
            w.u8(1);
            w.bytes(id);
        }
        Some(PeerIdentity::Rpk(key)) => {
            w.u8(2);
            w.bytes(key);
        }
        Some(PeerIdentity::X509 { common_name, cert_der }) => {
            w.u8(3);
            w.opt_str(common_name.as_deref());
            w.bytes(cert_der);
        }
    }
    w.u32(r.lifetime_s);
    let b = &r.binding;
    w.u8(u8::from(b.udp) | u8::from(b.tcp) << 1 | u8::from(b.sms) << 2 | u8::from(b.non_ip) << 3);
    w.bool(r.queue_mode);
    w.u16(r.version.major);
    w.u16(r.version.minor);
    w.opt_str(r.sms.as_deref());
    w.opt_str(r.objects.alternate_path.as_deref());
    w.len(r.objects.content_formats.len());
    for ct in &r.objects.content_formats {
        w.u16(*ct);
    }
    w.len(r.objects.objects.len());
    for o in &r.objects.objects {
        w.u16(o.object_id);
        match o.version {
            None => w.u8(0),
            Some(v) => {
                w.u8(1);
                w.u16(v.major);
                w.u16(v.minor);
            }
        }
        w.len(o.instances.len());
        for i in &o.instances {
            w.u16(*i);
        }
    }
    w.u64(r.registered_at_ms);
    w.u64(r.last_update_ms);
    w.u64(r.expires_ms);
    w.len(r.additional.len());
    for (k, v) in &r.additional {
        w.str(k);
        w.opt_str(v.as_deref());
    }
    w.0
}

/// Decodes a record written by [`encode_registration`].
pub fn decode_registration(bytes: &[u8]) -> Result<Registration, RecordError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    r.version()?;
    let id = RegistrationId(r.u64("id")?);
    let endpoint = r.str("endpoint")?;
    let at = r.pos;
    let peer = match r.u8("peer address family")? {
        4 => {
            let ip = Ipv4Addr::from(r.array::<4>("peer IPv4 address")?);
            SocketAddr::V4(SocketAddrV4::new(ip, r.u16("peer port")?))
        }
        6 => {
            let ip = Ipv6Addr::from(r.array::<16>("peer IPv6 address")?);
            let port = r.u16("peer port")?;
            let flow = r.u32("peer flow info")?;
            let scope = r.u32("peer scope id")?;
            SocketAddr::V6(SocketAddrV6::new(ip, port, flow, scope))
        }
        _ => return Err(r.invalid(at, "peer address family", "expected 4 or 6")),
    };
    let socket = r.u8("socket")?;
    let at = r.pos;
    let identity = match r.u8("identity kind")? {
        0 => None,
        1 => Some(PeerIdentity::Psk(r.bytes("PSK identity")?.to_vec())),
        2 => Some(PeerIdentity::Rpk(r.bytes("raw public key")?.to_vec())),
        3 => {
            let common_name = r.opt_str("certificate common name")?;
            let cert_der = r.bytes("certificate")?.to_vec();
            Some(PeerIdentity::X509 { common_name, cert_der })
        }
        _ => return Err(r.invalid(at, "identity kind", "expected 0 to 3")),
    };
    let lifetime_s = r.u32("lifetime")?;
    let at = r.pos;
    let bits = r.u8("binding")?;
    if bits & !0x0f != 0 {
        return Err(r.invalid(at, "binding", "unknown transport bit"));
    }
    let binding = Binding {
        udp: bits & 1 != 0,
        tcp: bits & 2 != 0,
        sms: bits & 4 != 0,
        non_ip: bits & 8 != 0,
    };
    let queue_mode = r.bool("queue mode")?;
    let version = Version::new(r.u16("version major")?, r.u16("version minor")?);
    let sms = r.opt_str("sms")?;
    let alternate_path = r.opt_str("alternate path")?;
    let n = r.count(2, "content formats")?;
    let mut content_formats = Vec::with_capacity(n);
    for _ in 0..n {
        content_formats.push(r.u16("content format")?);
    }
    let n = r.count(7, "objects")?;
    let mut objects = Vec::with_capacity(n);
    for _ in 0..n {
        let object_id = r.u16("object id")?;
        let version = if r.bool("object version flag")? {
            Some(Version::new(
                r.u16("object version major")?,
                r.u16("object version minor")?,
            ))
        } else {
            None
        };
        let k = r.count(2, "instances")?;
        let mut instances = Vec::with_capacity(k);
        for _ in 0..k {
            instances.push(r.u16("instance id")?);
        }
        objects.push(ObjectLink {
            object_id,
            version,
            instances,
        });
    }
    let registered_at_ms = r.u64("registered at")?;
    let last_update_ms = r.u64("last update")?;
    let expires_ms = r.u64("expires")?;
    let n = r.count(5, "additional parameters")?;
    let mut additional = BTreeMap::new();
    for _ in 0..n {
        let at = r.pos;
        let k = r.str("parameter name")?;
        let v = r.opt_str("parameter value")?;
        if additional.insert(k, v).is_some() {
            return Err(r.invalid(at, "parameter name", "repeated"));
        }
    }
    r.finish()?;
    Ok(Registration {
        id,
        endpoint,
        peer,
        socket,
        identity,
        lifetime_s,
        binding,
        queue_mode,
        version,
        sms,
        objects: RegistrationLinks {
            alternate_path,
            content_formats,
            objects,
        },
        registered_at_ms,
        last_update_ms,
        expires_ms,
        additional,
    })
}

// ---------------------------------------------------------------------------------------------------------
// Security

/// Encodes an endpoint's security info as a version-1 record.
pub fn encode_security(info: &SecurityInfo) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(64));
    w.u8(RECORD_VERSION);
    w.str(&info.endpoint);
    match &info.credential {
        Credential::Psk { identity, key } => {
            w.u8(1);
            w.str(identity);
            w.bytes(key);
        }
        Credential::Rpk { public_key_der } => {
            w.u8(2);
            w.bytes(public_key_der);
        }
        Credential::X509 => w.u8(3),
    }
    w.0
}

/// Decodes a record written by [`encode_security`].
pub fn decode_security(bytes: &[u8]) -> Result<SecurityInfo, RecordError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    r.version()?;
    let endpoint = r.str("endpoint")?;
    let at = r.pos;
    let credential = match r.u8("credential kind")? {
        1 => Credential::Psk {
            identity: r.str("PSK identity")?,
            key: r.bytes("PSK key")?.to_vec(),
        },
        2 => Credential::Rpk {
            public_key_der: r.bytes("raw public key")?.to_vec(),
        },
        3 => Credential::X509,
        _ => return Err(r.invalid(at, "credential kind", "expected 1 to 3")),
    };
    r.finish()?;
    Ok(SecurityInfo { endpoint, credential })
}

// ---------------------------------------------------------------------------------------------------------
// Observation

/// Encodes an observation (an Observe or Observe-Composite request) as a version-1 record. Returns `None`
/// for any other request kind, which is never an observation.
pub fn encode_observation(o: &ObservationInfo) -> Option<Vec<u8>> {
    let (kind, paths) = match &o.request {
        Request::Observe { path } => (1u8, std::slice::from_ref(path)),
        Request::ObserveComposite { paths } => (2u8, paths.as_slice()),
        _ => return None,
    };
    let mut w = Writer(Vec::with_capacity(64 + 16 * paths.len()));
    w.u8(RECORD_VERSION);
    w.u64(o.id.0);
    w.u64(o.registration_id.0);
    w.str(&o.endpoint);
    w.bytes(&o.token);
    w.u8(kind);
    w.len(paths.len());
    for p in paths {
        w.str(&p.to_string());
    }
    match o.format {
        None => w.u8(0),
        Some(f) => {
            w.u8(1);
            w.u16(f.code());
        }
    }
    w.u64(o.created_ms);
    Some(w.0)
}

/// Decodes a record written by [`encode_observation`].
pub fn decode_observation(bytes: &[u8]) -> Result<ObservationInfo, RecordError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    r.version()?;
    let id = ObservationId(r.u64("id")?);
    let registration_id = RegistrationId(r.u64("registration id")?);
    let endpoint = r.str("endpoint")?;
    let at = r.pos;
    let token = r.bytes("token")?.to_vec();
    if token.len() > 8 {
        return Err(r.invalid(at, "token", "longer than 8 bytes"));
    }
    let at = r.pos;
    let kind = r.u8("observation kind")?;
    if !matches!(kind, 1 | 2) {
        return Err(r.invalid(at, "observation kind", "expected 1 or 2"));
    }
    let at = r.pos;
    let n = r.count(4, "paths")?;
    if (kind == 1 && n != 1) || n == 0 {
        return Err(r.invalid(at, "paths", "Observe has one path, Observe-Composite at least one"));
    }
    let mut paths = Vec::with_capacity(n);
    for _ in 0..n {
        let at = r.pos;
        let text = r.str("path")?;
        paths.push(lwm2m_core::Path::parse(&text).map_err(|_| r.invalid(at, "path", "not an LwM2M path"))?);
    }
    let format = if r.bool("content format")? {
        let at = r.pos;
        let code = r.u16("content format")?;
        Some(
            lwm2m_core::format::ContentFormat::from_code(code)
                .ok_or_else(|| r.invalid(at, "content format", "unknown content format"))?,
        )
    } else {
        None
    };
    let created_ms = r.u64("created")?;
    r.finish()?;
    let request = match (kind, paths.pop()) {
        (1, Some(path)) => Request::Observe { path },
        (_, Some(last)) => {
            paths.push(last);
            Request::ObserveComposite { paths }
        }
        (_, None) => return Err(r.invalid(at, "paths", "no path")),
    };
    Ok(ObservationInfo {
        id,
        registration_id,
        endpoint,
        request,
        token,
        format,
        created_ms,
    })
}

// ---------------------------------------------------------------------------------------------------------
// Queued request

impl Writer {
    fn path(&mut self, p: &Path) {
        let ids = p.ids();
        self.u8(u8::try_from(ids.len()).unwrap_or(u8::MAX));
        for id in ids {
            self.u16(*id);
        }
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::String(s) => {
                self.u8(1);
                self.str(s);
            }
            Value::Integer(i) => {
                self.u8(2);
                self.u64(u64::from_be_bytes(i.to_be_bytes()));
            }
            Value::UnsignedInteger(u) => {
                self.u8(3);
                self.u64(*u);
            }
            Value::Float(f) => {
                self.u8(4);
                self.u64(f.to_bits());
            }
            Value::Boolean(b) => {
                self.u8(5);
                self.bool(*b);
            }
            Value::Opaque(b) => {
                self.u8(6);
                self.bytes(b);
            }
            Value::Time(t) => {
                self.u8(7);
                self.u64(u64::from_be_bytes(t.to_be_bytes()));
            }
            Value::Objlnk(l) => {
                self.u8(8);
                self.u16(l.object_id);
                self.u16(l.instance_id);
            }
            Value::Corelnk(s) => {
                self.u8(9);
                self.str(s);
            }
        }
    }

    fn resource(&mut self, r: &ResourceNode) {
        self.u16(r.id);
        match &r.value {
            ResourceValue::Single(v) => {
                self.u8(0);
                self.value(v);
            }
            ResourceValue::Multiple(m) => {
                self.u8(1);
                self.len(m.len());
                for (ri, v) in m {
                    self.u16(*ri);
                    self.value(v);
                }
            }
        }
    }

    fn instance(&mut self, i: &InstanceNode) {
        self.u16(i.id);
        self.len(i.resources.len());
        for r in i.resources.values() {
            self.resource(r);
        }
    }

    fn node(&mut self, n: &Node) {
        match n {
            Node::Object(o) => {
                self.u8(1);
                self.u16(o.id);
                self.len(o.instances.len());
                for i in o.instances.values() {
                    self.instance(i);
                }
            }
            Node::Instance(i) => {
                self.u8(2);
                self.instance(i);
            }
            Node::Resource(r) => {
                self.u8(3);
                self.resource(r);
            }
            Node::ResourceInstance { id, value } => {
                self.u8(4);
                self.u16(*id);
                self.value(value);
            }
        }
    }

    fn change_u32(&mut self, c: Option<Change<u32>>) {
        match c {
            None => self.u8(0),
            Some(Change::Set(v)) => {
                self.u8(1);
                self.u32(v);
            }
            Some(Change::Unset) => self.u8(2),
        }
    }

    fn change_f64(&mut self, c: Option<Change<f64>>) {
        match c {
            None => self.u8(0),
            Some(Change::Set(v)) => {
                self.u8(1);
                self.u64(v.to_bits());
            }
            Some(Change::Unset) => self.u8(2),
        }
    }

    fn paths(&mut self, paths: &[Path]) {
        self.len(paths.len());
        for p in paths {
            self.path(p);
        }
    }

    fn request(&mut self, r: &Request) {
        match r {
            Request::Read { path } => {
                self.u8(1);
                self.path(path);
            }
            Request::Discover { path } => {
                self.u8(2);
                self.path(path);
            }
            Request::Write { path, mode, content } => {
                self.u8(3);
                self.path(path);
                self.u8(match mode {
                    WriteMode::Replace => 1,
                    WriteMode::PartialUpdate => 2,
                });
                self.node(content);
            }
            Request::WriteAttributes { path, attributes: a } => {
                self.u8(4);
                self.path(path);
                self.change_u32(a.pmin);
                self.change_u32(a.pmax);
                self.change_f64(a.gt);
                self.change_f64(a.lt);
                self.change_f64(a.st);
                self.change_u32(a.epmin);
                self.change_u32(a.epmax);
            }
            Request::Execute { path, arguments } => {
                self.u8(5);
                self.path(path);
                self.opt_str(arguments.as_deref());
            }
            Request::Create {
                object_id,
                instance_id,
                resources,
            } => {
                self.u8(6);
                self.u16(*object_id);
                match instance_id {
                    None => self.u8(0),
                    Some(i) => {
                        self.u8(1);
                        self.u16(*i);
                    }
                }
                self.len(resources.len());
                for res in resources {
                    self.resource(res);
                }
            }
            Request::Delete { path } => {
                self.u8(7);
                self.path(path);
            }
            Request::ReadComposite { paths } => {
                self.u8(8);
                self.paths(paths);
            }
            Request::WriteComposite { records } => {
                self.u8(9);
                self.len(records.len());
                for rec in records {
                    self.path(&rec.path);
                    self.value(&rec.value);
                    match rec.time {
                        None => self.u8(0),
                        Some(t) => {
                            self.u8(1);
                            self.u64(t.to_bits());
                        }
                    }
                }
            }
            Request::Observe { path } => {
                self.u8(10);
                self.path(path);
            }
            Request::ObserveComposite { paths } => {
                self.u8(11);
                self.paths(paths);
            }
        }
    }
}

impl Reader<'_> {
    /// A path: any ids are taken as they are (the instance id 65535, which requests refuse, included), so
    /// every path a request can hold reads back.
    fn path(&mut self) -> Result<Path, RecordError> {
        let at = self.pos;
        let n = self.u8("path length")?;
        let mut ids = [0u16; 4];
        let Some(slots) = ids.get_mut(..usize::from(n)) else {
            return Err(self.invalid(at, "path length", "more than 4 segments"));
        };
        for id in slots.iter_mut() {
            *id = self.u16("path segment")?;
        }
        Ok(match n {
            0 => Path::ROOT,
            1 => Path::object(ids[0]),
            2 => Path::instance(ids[0], ids[1]),
            3 => Path::resource(ids[0], ids[1], ids[2]),
            _ => Path::resource_instance(ids[0], ids[1], ids[2], ids[3]),
        })
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }

    fn f64(&mut self, field: &'static str) -> Result<f64, RecordError> {
        Ok(f64::from_bits(self.u64(field)?))
    }

    fn value(&mut self) -> Result<Value, RecordError> {
        let at = self.pos;
        Ok(match self.u8("value type")? {
            1 => Value::String(self.str("string value")?),
            2 => Value::Integer(self.i64("integer value")?),
            3 => Value::UnsignedInteger(self.u64("unsigned integer value")?),
            4 => Value::Float(self.f64("float value")?),
            5 => Value::Boolean(self.bool("boolean value")?),
            6 => Value::Opaque(self.bytes("opaque value")?.to_vec()),
            7 => Value::Time(self.i64("time value")?),
            8 => Value::Objlnk(ObjLink::new(
                self.u16("objlnk object id")?,
                self.u16("objlnk instance id")?,
            )),
            9 => Value::Corelnk(self.str("corelnk value")?),
            _ => return Err(self.invalid(at, "value type", "expected 1 to 9")),
        })
    }

    fn resource(&mut self) -> Result<ResourceNode, RecordError> {
        let id = self.u16("resource id")?;
        let at = self.pos;
        let value = match self.u8("resource kind")? {
            0 => ResourceValue::Single(self.value()?),
            1 => {
                let n = self.count(4, "resource instances")?;
                let mut m = BTreeMap::new();
                for _ in 0..n {
                    let at = self.pos;
                    let ri = self.u16("resource instance id")?;
                    if m.insert(ri, self.value()?).is_some() {
                        return Err(self.invalid(at, "resource instance id", "repeated"));
                    }
                }
                ResourceValue::Multiple(m)
            }
            _ => return Err(self.invalid(at, "resource kind", "expected 0 (single) or 1 (multiple)")),
        };
        Ok(ResourceNode { id, value })
    }

    fn instance(&mut self) -> Result<InstanceNode, RecordError> {
        let id = self.u16("instance id")?;
        let n = self.count(5, "resources")?;
        let mut resources = BTreeMap::new();
        for _ in 0..n {
            let at = self.pos;
            let r = self.resource()?;
            if resources.insert(r.id, r).is_some() {
                return Err(self.invalid(at, "resource id", "repeated"));
            }
        }
        Ok(InstanceNode { id, resources })
    }

    fn node(&mut self) -> Result<Node, RecordError> {
        let at = self.pos;
        Ok(match self.u8("node kind")? {
            1 => {
                let id = self.u16("object id")?;
                let n = self.count(6, "instances")?;
                let mut instances = BTreeMap::new();
                for _ in 0..n {
                    let at = self.pos;
                    let i = self.instance()?;
                    if instances.insert(i.id, i).is_some() {
                        return Err(self.invalid(at, "instance id", "repeated"));
                    }
                }
                Node::Object(ObjectNode { id, instances })
            }
            2 => Node::Instance(self.instance()?),
            3 => Node::Resource(self.resource()?),
            4 => Node::ResourceInstance {
                id: self.u16("resource instance id")?,
                value: self.value()?,
            },
            _ => return Err(self.invalid(at, "node kind", "expected 1 to 4")),
        })
    }

    fn change<T>(
        &mut self,
        field: &'static str,
        read: impl FnOnce(&mut Self) -> Result<T, RecordError>,
    ) -> Result<Option<Change<T>>, RecordError> {
        let at = self.pos;
        match self.u8(field)? {
            0 => Ok(None),
            1 => Ok(Some(Change::Set(read(self)?))),
            2 => Ok(Some(Change::Unset)),
            _ => Err(self.invalid(at, field, "expected 0 (absent), 1 (set) or 2 (unset)")),
        }
    }

    fn paths(&mut self, field: &'static str) -> Result<Vec<Path>, RecordError> {
        let n = self.count(1, field)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.path()?);
        }
        Ok(v)
    }

    fn request(&mut self) -> Result<Request, RecordError> {
        let at = self.pos;
        Ok(match self.u8("operation")? {
            1 => Request::Read { path: self.path()? },
            2 => Request::Discover { path: self.path()? },
            3 => {
                let path = self.path()?;
                let at = self.pos;
                let mode = match self.u8("write mode")? {
                    1 => WriteMode::Replace,
                    2 => WriteMode::PartialUpdate,
                    _ => return Err(self.invalid(at, "write mode", "expected 1 (replace) or 2 (partial update)")),
                };
                Request::Write {
                    path,
                    mode,
                    content: self.node()?,
                }
            }
            4 => {
                let path = self.path()?;
                let attributes = AttributeChanges {
                    pmin: self.change("pmin", |r| r.u32("pmin"))?,
                    pmax: self.change("pmax", |r| r.u32("pmax"))?,
                    gt: self.change("gt", |r| r.f64("gt"))?,
                    lt: self.change("lt", |r| r.f64("lt"))?,
                    st: self.change("st", |r| r.f64("st"))?,
                    epmin: self.change("epmin", |r| r.u32("epmin"))?,
                    epmax: self.change("epmax", |r| r.u32("epmax"))?,
                };
                Request::WriteAttributes { path, attributes }
            }
            5 => Request::Execute {
                path: self.path()?,
                arguments: self.opt_str("execute arguments")?,
            },
            6 => {
                let object_id = self.u16("object id")?;
                let instance_id = if self.bool("instance id flag")? {
                    Some(self.u16("instance id")?)
                } else {
                    None
                };
                let n = self.count(5, "resources")?;
                let mut resources = Vec::with_capacity(n);
                for _ in 0..n {
                    resources.push(self.resource()?);
                }
                Request::Create {
                    object_id,
                    instance_id,
                    resources,
                }
            }
            7 => Request::Delete { path: self.path()? },
            8 => Request::ReadComposite {
                paths: self.paths("paths")?,
            },
            9 => {
                let n = self.count(4, "records")?;
                let mut records = Vec::with_capacity(n);
                for _ in 0..n {
                    let path = self.path()?;
                    let value = self.value()?;
                    let time = if self.bool("record time flag")? {
                        Some(self.f64("record time")?)
                    } else {
                        None
                    };
                    records.push(Record { path, value, time });
                }
                Request::WriteComposite { records }
            }
            10 => Request::Observe { path: self.path()? },
            11 => Request::ObserveComposite {
                paths: self.paths("paths")?,
            },
            _ => return Err(self.invalid(at, "operation", "expected 1 to 11")),
        })
    }
}

/// Encodes a request held for a sleeping queue-mode client as a version-1 record.
pub fn encode_queued_request(q: &QueuedRequest) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(64));
    w.u8(RECORD_VERSION);
    w.u64(q.id);
    w.u64(q.registration_id.0);
    w.str(&q.endpoint);
    w.u64(q.queued_at_ms);
    w.u64(q.deadline_ms);
    match q.format {
        None => w.u8(0),
        Some(f) => {
            w.u8(1);
            w.u16(f.code());
        }
    }
    w.request(&q.request);
    w.0
}

/// Decodes a record written by [`encode_queued_request`].
pub fn decode_queued_request(bytes: &[u8]) -> Result<QueuedRequest, RecordError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    r.version()?;
    let id = r.u64("id")?;
    let registration_id = RegistrationId(r.u64("registration id")?);
    let endpoint = r.str("endpoint")?;
    let queued_at_ms = r.u64("queued at")?;
    let deadline_ms = r.u64("deadline")?;
    let format = if r.bool("content format")? {
        let at = r.pos;
        let code = r.u16("content format")?;
        Some(ContentFormat::from_code(code).ok_or_else(|| r.invalid(at, "content format", "unknown content format"))?)
    } else {
        None
    };
    let request = r.request()?;
    r.finish()?;
    Ok(QueuedRequest {
        id,
        endpoint,
        registration_id,
        request,
        format,
        queued_at_ms,
        deadline_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lwm2m_core::format::link::parse_registration;

    fn sample() -> Registration {
        let mut additional = BTreeMap::new();
        additional.insert("x-vendor".to_string(), Some("acme".to_string()));
        additional.insert("flag".to_string(), None);
        Registration {
            id: RegistrationId(0x0123_4567_89ab_cdef),
            endpoint: "dev-1".into(),
            peer: "[fe80::1%3]:5683".parse().unwrap(),
            socket: 2,
            identity: Some(PeerIdentity::X509 {
                common_name: Some("dev-1".into()),
                cert_der: vec![0x30, 0x82, 1, 2],
            }),
            lifetime_s: 300,
            binding: Binding {
                udp: true,
                sms: true,
                ..Binding::default()
            },
            queue_mode: true,
            version: Version::V1_1,
            sms: Some("+4912345".into()),
            objects: parse_registration(b"</lwm2m>;rt=\"oma.lwm2m\";ct=\"60 110\",</lwm2m/1/0>,</lwm2m/3303>;ver=1.1")
                .unwrap(),
            registered_at_ms: 1,
            last_update_ms: 2,
            expires_ms: 300_002,
            additional,
        }
    }

    #[test]
    fn registration_round_trips_and_starts_with_the_version() {
        let r = sample();
        assert_eq!(r.objects.alternate_path.as_deref(), Some("/lwm2m"));
        let bytes = encode_registration(&r);
        assert_eq!(bytes[0], RECORD_VERSION);
        assert_eq!(&bytes[1..9], &0x0123_4567_89ab_cdef_u64.to_be_bytes());
        assert_eq!(&bytes[9..18], b"\0\0\0\x05dev-1");
        assert_eq!(decode_registration(&bytes), Ok(r));
    }

    #[test]
    fn corrupt_registration_records_name_what_is_wrong() {
        let bytes = encode_registration(&sample());
        assert_eq!(decode_registration(&[]), Err(RecordError::Empty));
        assert_eq!(decode_registration(&[9]), Err(RecordError::UnsupportedVersion(9)));
        assert_eq!(
            decode_registration(&bytes[..5]),
            Err(RecordError::Truncated { offset: 1, field: "id" })
        );
        // An endpoint length far beyond the record: truncated, no huge allocation.
        let mut b = bytes.clone();
        b[9..13].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            decode_registration(&b),
            Err(RecordError::Truncated {
                offset: 9,
                field: "endpoint"
            })
        );
        // Peer family byte follows the endpoint.
        let mut b = bytes.clone();
        b[18] = 5;
        assert_eq!(
            decode_registration(&b),
            Err(RecordError::Invalid {
                offset: 18,
                field: "peer address family",
                reason: "expected 4 or 6"
            })
        );
        let mut b = bytes.clone();
        b[13] = 0xff; // endpoint is no longer UTF-8
        assert!(matches!(
            decode_registration(&b),
            Err(RecordError::Invalid { field: "endpoint", .. })
        ));
        let mut b = bytes.clone();
        b.push(0);
        assert_eq!(decode_registration(&b), Err(RecordError::TrailingBytes(1)));
        // Every strict prefix is an error, never a panic.
        for n in 0..bytes.len() {
            assert!(decode_registration(&bytes[..n]).is_err(), "prefix of {n} bytes");
        }
    }

    fn sample_observation() -> ObservationInfo {
        ObservationInfo {
            id: ObservationId(7),
            registration_id: RegistrationId(0x0102),
            endpoint: "dev-1".into(),
            request: Request::Observe {
                path: lwm2m_core::Path::parse("/3/0/9").unwrap(),
            },
            token: vec![0xA1, 0xB2],
            format: Some(lwm2m_core::format::ContentFormat::SenmlCbor),
            created_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn observation_round_trips_and_corrupt_records_name_what_is_wrong() {
        let o = sample_observation();
        let bytes = encode_observation(&o).unwrap();
        assert_eq!(bytes[0], RECORD_VERSION);
        assert_eq!(&bytes[1..9], &7u64.to_be_bytes());
        assert_eq!(&bytes[17..26], b"\0\0\0\x05dev-1");
        assert_eq!(&bytes[26..32], b"\0\0\0\x02\xA1\xB2");
        assert_eq!(bytes[32], 1, "kind Observe");
        assert_eq!(decode_observation(&bytes), Ok(o.clone()));
        let composite = ObservationInfo {
            request: Request::ObserveComposite {
                paths: vec![
                    lwm2m_core::Path::parse("/3/0").unwrap(),
                    lwm2m_core::Path::parse("/1/0/1").unwrap(),
                ],
            },
            format: None,
            ..o.clone()
        };
        assert_eq!(
            decode_observation(&encode_observation(&composite).unwrap()),
            Ok(composite)
        );
        assert_eq!(
            encode_observation(&ObservationInfo {
                request: Request::Read {
                    path: lwm2m_core::Path::parse("/3").unwrap()
                },
                ..o.clone()
            }),
            None
        );

        assert_eq!(decode_observation(&[]), Err(RecordError::Empty));
        assert_eq!(decode_observation(&[2]), Err(RecordError::UnsupportedVersion(2)));
        let mut b = bytes.clone();
        b[26..30].copy_from_slice(&9u32.to_be_bytes());
        b.extend_from_slice(&[0; 7]);
        assert_eq!(
            decode_observation(&b),
            Err(RecordError::Invalid {
                offset: 26,
                field: "token",
                reason: "longer than 8 bytes"
            })
        );
        let mut b = bytes.clone();
        b[32] = 3;
        assert_eq!(
            decode_observation(&b),
            Err(RecordError::Invalid {
                offset: 32,
                field: "observation kind",
                reason: "expected 1 or 2"
            })
        );
        let mut b = bytes.clone();
        b[42] = b'x'; // "/3/0/9" becomes "/x/0/9"
        assert_eq!(
            decode_observation(&b),
            Err(RecordError::Invalid {
                offset: 37,
                field: "path",
                reason: "not an LwM2M path"
            })
        );
        let mut b = bytes.clone();
        let fmt_at = 47;
        b[fmt_at + 1..fmt_at + 3].copy_from_slice(&65000u16.to_be_bytes());
        assert_eq!(
            decode_observation(&b),
            Err(RecordError::Invalid {
                offset: 48,
                field: "content format",
                reason: "unknown content format"
            })
        );
        let mut b = bytes.clone();
        b.push(0);
        assert_eq!(decode_observation(&b), Err(RecordError::TrailingBytes(1)));
        for n in 0..bytes.len() {
            assert!(decode_observation(&bytes[..n]).is_err(), "prefix of {n} bytes");
        }
    }

    fn p(s: &str) -> Path {
        Path::parse(s).unwrap()
    }

    fn sample_queued(request: Request) -> QueuedRequest {
        QueuedRequest {
            id: 5,
            endpoint: "q".into(),
            registration_id: RegistrationId(0x0102),
            request,
            format: None,
            queued_at_ms: 1000,
            deadline_ms: 2000,
        }
    }

    /// One request of every kind, with every value type, node kind and attribute change.
    fn every_request() -> Vec<Request> {
        let values = vec![
            Value::String("héllo".into()),
            Value::Integer(-7),
            Value::UnsignedInteger(u64::MAX),
            Value::Float(-1.5),
            Value::Boolean(true),
            Value::Opaque(vec![0, 0xff]),
            Value::Time(1_700_000_000),
            Value::Objlnk(ObjLink::new(3, 0)),
            Value::Corelnk("</3/0>".into()),
        ];
        let multi = ResourceNode::multiple(1120, [(0, Value::Integer(10)), (7, Value::Integer(11))]);
        let instance = InstanceNode::new(0, [ResourceNode::single(110, Value::String("x".into())), multi.clone()]);
        vec![
            Request::Read { path: p("/3/0/0") },
            Request::Discover { path: p("/3") },
            Request::Write {
                path: p("/3442/0"),
                mode: WriteMode::Replace,
                content: Node::Instance(instance.clone()),
            },
            Request::Write {
                path: p("/3442"),
                mode: WriteMode::PartialUpdate,
                content: Node::Object(ObjectNode::new(3442, [instance.clone(), InstanceNode::new(1, [])])),
            },
            Request::Write {
                path: p("/3442/0/1120"),
                mode: WriteMode::PartialUpdate,
                content: Node::Resource(multi.clone()),
            },
            Request::Write {
                path: p("/3442/0/1120/7"),
                mode: WriteMode::Replace,
                content: Node::ResourceInstance {
                    id: 7,
                    value: Value::Integer(3),
                },
            },
            Request::WriteAttributes {
                path: p("/3303/0/5700"),
                attributes: AttributeChanges {
                    pmin: Some(Change::Set(10)),
                    pmax: Some(Change::Unset),
                    gt: Some(Change::Set(25.5)),
                    lt: None,
                    st: Some(Change::Unset),
                    epmin: None,
                    epmax: Some(Change::Set(60)),
                },
            },
            Request::Execute {
                path: p("/3/0/4"),
                arguments: None,
            },
            Request::Create {
                object_id: 3442,
                instance_id: Some(4),
                resources: vec![ResourceNode::single(120, Value::Integer(1)), multi],
            },
            Request::Create {
                object_id: 3303,
                instance_id: None,
                resources: vec![],
            },
            Request::Delete { path: p("/3303/1") },
            Request::ReadComposite {
                paths: vec![Path::ROOT, p("/3/0/0"), p("/1/0/1/2")],
            },
            Request::WriteComposite {
                records: values
                    .into_iter()
                    .enumerate()
                    .map(|(i, value)| Record {
                        path: Path::resource_instance(3442, 0, 1110, i as u16),
                        value,
                        time: (i % 2 == 0).then_some(i as f64 + 0.25),
                    })
                    .collect(),
            },
            Request::Observe { path: p("/3303/0") },
            Request::ObserveComposite {
                paths: vec![p("/3303/0/5700"), p("/3")],
            },
        ]
    }

    #[test]
    fn queued_request_layout_is_byte_exact() {
        let q = sample_queued(Request::Execute {
            path: p("/3/0/4"),
            arguments: Some("0='x'".into()),
        });
        let bytes = encode_queued_request(&q);
        let mut expected = vec![RECORD_VERSION];
        expected.extend_from_slice(&5u64.to_be_bytes());
        expected.extend_from_slice(&0x0102u64.to_be_bytes());
        expected.extend_from_slice(b"\0\0\0\x01q");
        expected.extend_from_slice(&1000u64.to_be_bytes());
        expected.extend_from_slice(&2000u64.to_be_bytes());
        expected.push(0); // no content format override
        expected.push(5); // Execute
        expected.extend_from_slice(&[3, 0, 3, 0, 0, 0, 4]); // /3/0/4
        expected.extend_from_slice(b"\x01\0\0\0\x050='x'");
        assert_eq!(bytes, expected);
        assert_eq!(decode_queued_request(&bytes), Ok(q));
    }

    #[test]
    fn every_request_kind_round_trips() {
        for (i, request) in every_request().into_iter().enumerate() {
            let q = QueuedRequest {
                id: i as u64,
                format: [None, Some(ContentFormat::Tlv), Some(ContentFormat::SenmlJson)][i % 3],
                ..sample_queued(request)
            };
            let bytes = encode_queued_request(&q);
            assert_eq!(decode_queued_request(&bytes), Ok(q.clone()), "{}", q.request);
            for n in 0..bytes.len() {
                assert!(
                    decode_queued_request(&bytes[..n]).is_err(),
                    "{}: prefix of {n} bytes",
                    q.request
                );
            }
        }
        // Paths a request would refuse (instance 65535) still read back as they were written.
        let odd = sample_queued(Request::Read {
            path: Path::instance(3, 65535),
        });
        assert_eq!(decode_queued_request(&encode_queued_request(&odd)), Ok(odd));
    }

    #[test]
    fn corrupt_queued_request_records_name_what_is_wrong() {
        let q = sample_queued(Request::Execute {
            path: p("/3/0/4"),
            arguments: Some("0='x'".into()),
        });
        let bytes = encode_queued_request(&q);
        let with = |at: usize, b: u8| {
            let mut v = bytes.clone();
            v[at] = b;
            decode_queued_request(&v)
        };
        assert_eq!(decode_queued_request(&[]), Err(RecordError::Empty));
        assert_eq!(decode_queued_request(&[2]), Err(RecordError::UnsupportedVersion(2)));
        assert_eq!(
            decode_queued_request(&bytes[..12]),
            Err(RecordError::Truncated {
                offset: 9,
                field: "registration id"
            })
        );
        assert_eq!(
            with(38, 2),
            Err(RecordError::Invalid {
                offset: 38,
                field: "content format",
                reason: "a flag is 0 or 1"
            })
        );
        assert_eq!(
            with(39, 12),
            Err(RecordError::Invalid {
                offset: 39,
                field: "operation",
                reason: "expected 1 to 11"
            })
        );
        assert_eq!(
            with(40, 5),
            Err(RecordError::Invalid {
                offset: 40,
                field: "path length",
                reason: "more than 4 segments"
            })
        );
        assert_eq!(
            with(47, 7),
            Err(RecordError::Invalid {
                offset: 47,
                field: "execute arguments",
                reason: "a flag is 0 or 1"
            })
        );
        assert!(matches!(
            with(53, 0xff),
            Err(RecordError::Invalid {
                field: "execute arguments",
                reason: "not UTF-8",
                ..
            })
        ));
        // An arguments length far beyond the record: truncated, no huge allocation.
        let mut b = bytes.clone();
        b[48..52].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            decode_queued_request(&b),
            Err(RecordError::Truncated {
                offset: 48,
                field: "execute arguments"
            })
        );
        let mut b = bytes.clone();
        b.push(0);
        assert_eq!(decode_queued_request(&b), Err(RecordError::TrailingBytes(1)));

        // A content format override that does not exist.
        let tlv = encode_queued_request(&QueuedRequest {
            format: Some(ContentFormat::Tlv),
            ..q.clone()
        });
        assert_eq!(&tlv[38..41], &[1, 0x2d, 0x16], "11542");
        let mut b = tlv.clone();
        b[39..41].copy_from_slice(&65000u16.to_be_bytes());
        assert_eq!(
            decode_queued_request(&b),
            Err(RecordError::Invalid {
                offset: 39,
                field: "content format",
                reason: "unknown content format"
            })
        );

        // Inside a Write: the write mode, the node kind, a value type and a repeated resource id.
        let write = encode_queued_request(&sample_queued(Request::Write {
            path: p("/1/0"),
            mode: WriteMode::Replace,
            content: Node::Instance(InstanceNode::new(
                0,
                [
                    ResourceNode::single(1, Value::Integer(60)),
                    ResourceNode::single(2, Value::Boolean(false)),
                ],
            )),
        }));
        // op 39, path 40..45, mode 45, node kind 46, instance id 47..49, count 49..53, resource 1 at 53:
        // id 53..55, single 55, value type 56, i64 57..65; resource 2 at 65.
        assert_eq!(write[45], 1);
        let w = |at: usize, v: &[u8]| {
            let mut b = write.clone();
            b[at..at + v.len()].copy_from_slice(v);
            decode_queued_request(&b)
        };
        assert_eq!(
            w(45, &[3]),
            Err(RecordError::Invalid {
                offset: 45,
                field: "write mode",
                reason: "expected 1 (replace) or 2 (partial update)"
            })
        );
        assert_eq!(
            w(46, &[9]),
            Err(RecordError::Invalid {
                offset: 46,
                field: "node kind",
                reason: "expected 1 to 4"
            })
        );
        assert_eq!(
            w(55, &[2]),
            Err(RecordError::Invalid {
                offset: 55,
                field: "resource kind",
                reason: "expected 0 (single) or 1 (multiple)"
            })
        );
        assert_eq!(
            w(56, &[10]),
            Err(RecordError::Invalid {
                offset: 56,
                field: "value type",
                reason: "expected 1 to 9"
            })
        );
        assert_eq!(
            w(65, &[0, 1]),
            Err(RecordError::Invalid {
                offset: 65,
                field: "resource id",
                reason: "repeated"
            })
        );
        assert_eq!(
            w(49, &[0, 0, 0, 4]),
            Err(RecordError::Truncated {
                offset: 49,
                field: "resources"
            })
        );

        // Write-Attributes: an attribute change that is neither absent, set nor unset.
        let attrs = encode_queued_request(&sample_queued(Request::WriteAttributes {
            path: p("/3/0/9"),
            attributes: AttributeChanges::default(),
        }));
        assert_eq!(attrs.len(), 47 + 7, "seven absent changes");
        let mut b = attrs.clone();
        b[48] = 3;
        assert_eq!(
            decode_queued_request(&b),
            Err(RecordError::Invalid {
                offset: 48,
                field: "pmax",
                reason: "expected 0 (absent), 1 (set) or 2 (unset)"
            })
        );
    }

    #[test]
    fn security_round_trips_and_rejects_corruption() {
        for credential in [
            Credential::Psk {
                identity: "id".into(),
                key: vec![1, 2, 3],
            },
            Credential::Rpk {
                public_key_der: vec![0x30, 1],
            },
            Credential::X509,
        ] {
            let info = SecurityInfo {
                endpoint: "e".into(),
                credential,
            };
            let bytes = encode_security(&info);
            assert_eq!(decode_security(&bytes), Ok(info));
            for n in 0..bytes.len() {
                assert!(decode_security(&bytes[..n]).is_err());
            }
        }
        assert_eq!(
            decode_security(b"\x01\0\0\0\x01e\x07"),
            Err(RecordError::Invalid {
                offset: 6,
                field: "credential kind",
                reason: "expected 1 to 3"
            })
        );
        assert_eq!(decode_security(b"\x02"), Err(RecordError::UnsupportedVersion(2)));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn version() -> impl Strategy<Value = Version> {
            (any::<u16>(), any::<u16>()).prop_map(|(a, b)| Version::new(a, b))
        }

        fn identity() -> impl Strategy<Value = Option<PeerIdentity>> {
            prop_oneof![
                Just(None),
                prop::collection::vec(any::<u8>(), 0..20).prop_map(|v| Some(PeerIdentity::Psk(v))),
                prop::collection::vec(any::<u8>(), 0..20).prop_map(|v| Some(PeerIdentity::Rpk(v))),
                (prop::option::of(".{0,8}"), prop::collection::vec(any::<u8>(), 0..20))
                    .prop_map(|(common_name, cert_der)| Some(PeerIdentity::X509 { common_name, cert_der })),
            ]
        }

        fn object() -> impl Strategy<Value = ObjectLink> {
            (
                any::<u16>(),
                prop::option::of(version()),
                prop::collection::vec(any::<u16>(), 0..5),
            )
                .prop_map(|(object_id, version, instances)| ObjectLink {
                    object_id,
                    version,
                    instances,
                })
        }

        prop_compose! {
            fn registration()(
                id in any::<u64>(), endpoint in ".{0,12}", peer in any::<SocketAddr>(), socket in any::<u8>(),
                identity in identity(), lifetime_s in any::<u32>(), bits in 0u8..16, queue_mode in any::<bool>(),
                version in version(), sms in prop::option::of("[0-9+]{0,10}"),
                alternate_path in prop::option::of("/[a-z]{0,6}"),
                content_formats in prop::collection::vec(any::<u16>(), 0..4),
                objects in prop::collection::vec(object(), 0..6),
                times in any::<(u64, u64, u64)>(),
                additional in prop::collection::btree_map(".{0,6}", prop::option::of(".{0,6}"), 0..4),
            ) -> Registration {
                Registration {
                    id: RegistrationId(id), endpoint, peer, socket, identity, lifetime_s,
                    binding: Binding { udp: bits & 1 != 0, tcp: bits & 2 != 0, sms: bits & 4 != 0, non_ip: bits & 8 != 0 },
                    queue_mode, version, sms,
                    objects: RegistrationLinks { alternate_path, content_formats, objects },
                    registered_at_ms: times.0, last_update_ms: times.1, expires_ms: times.2, additional,
                }
            }
        }

        fn path_strategy() -> impl Strategy<Value = Path> {
            prop::collection::vec(any::<u16>(), 0..=4).prop_map(|ids| match ids.as_slice() {
                [] => Path::ROOT,
                [o] => Path::object(*o),
                [o, i] => Path::instance(*o, *i),
                [o, i, r] => Path::resource(*o, *i, *r),
                [o, i, r, ri, ..] => Path::resource_instance(*o, *i, *r, *ri),
            })
        }

        fn value() -> impl Strategy<Value = Value> {
            prop_oneof![
                ".{0,8}".prop_map(Value::String),
                any::<i64>().prop_map(Value::Integer),
                any::<u64>().prop_map(Value::UnsignedInteger),
                (-1e9f64..1e9).prop_map(Value::Float),
                any::<bool>().prop_map(Value::Boolean),
                prop::collection::vec(any::<u8>(), 0..8).prop_map(Value::Opaque),
                any::<i64>().prop_map(Value::Time),
                (any::<u16>(), any::<u16>()).prop_map(|(o, i)| Value::Objlnk(ObjLink::new(o, i))),
                ".{0,8}".prop_map(Value::Corelnk),
            ]
        }

        fn resource() -> impl Strategy<Value = ResourceNode> {
            (
                any::<u16>(),
                prop_oneof![
                    value().prop_map(ResourceValue::Single),
                    prop::collection::btree_map(any::<u16>(), value(), 0..3).prop_map(ResourceValue::Multiple),
                ],
            )
                .prop_map(|(id, value)| ResourceNode { id, value })
        }

        fn instance() -> impl Strategy<Value = InstanceNode> {
            (any::<u16>(), prop::collection::vec(resource(), 0..3)).prop_map(|(id, r)| InstanceNode::new(id, r))
        }

        fn node() -> impl Strategy<Value = Node> {
            prop_oneof![
                (any::<u16>(), prop::collection::vec(instance(), 0..3))
                    .prop_map(|(id, i)| Node::Object(ObjectNode::new(id, i))),
                instance().prop_map(Node::Instance),
                resource().prop_map(Node::Resource),
                (any::<u16>(), value()).prop_map(|(id, value)| Node::ResourceInstance { id, value }),
            ]
        }

        fn change<T: std::fmt::Debug + Clone + 'static>(
            v: impl Strategy<Value = T> + 'static,
        ) -> impl Strategy<Value = Option<Change<T>>> {
            prop_oneof![
                Just(None),
                Just(Some(Change::Unset)),
                v.prop_map(|x| Some(Change::Set(x)))
            ]
        }

        fn request() -> impl Strategy<Value = Request> {
            let paths = || prop::collection::vec(path_strategy(), 0..4);
            prop_oneof![
                path_strategy().prop_map(|path| Request::Read { path }),
                path_strategy().prop_map(|path| Request::Discover { path }),
                (path_strategy(), any::<bool>(), node()).prop_map(|(path, replace, content)| Request::Write {
                    path,
                    mode: if replace {
                        WriteMode::Replace
                    } else {
                        WriteMode::PartialUpdate
                    },
                    content
                }),
                (
                    path_strategy(),
                    (change(any::<u32>()), change(any::<u32>()), change(-1e6f64..1e6)),
                    (
                        change(-1e6f64..1e6),
                        change(0f64..1e6),
                        change(any::<u32>()),
                        change(any::<u32>())
                    ),
                )
                    .prop_map(|(path, (pmin, pmax, gt), (lt, st, epmin, epmax))| {
                        Request::WriteAttributes {
                            path,
                            attributes: AttributeChanges {
                                pmin,
                                pmax,
                                gt,
                                lt,
                                st,
                                epmin,
                                epmax,
                            },
                        }
                    }),
                (path_strategy(), prop::option::of(".{0,10}"))
                    .prop_map(|(path, arguments)| Request::Execute { path, arguments }),
                (
                    any::<u16>(),
                    prop::option::of(any::<u16>()),
                    prop::collection::vec(resource(), 0..3)
                )
                    .prop_map(|(object_id, instance_id, resources)| Request::Create {
                        object_id,
                        instance_id,
                        resources
                    }),
                path_strategy().prop_map(|path| Request::Delete { path }),
                paths().prop_map(|paths| Request::ReadComposite { paths }),
                prop::collection::vec((path_strategy(), value(), prop::option::of(-1e9f64..1e9)), 0..4).prop_map(|r| {
                    Request::WriteComposite {
                        records: r
                            .into_iter()
                            .map(|(path, value, time)| Record { path, value, time })
                            .collect(),
                    }
                }),
                path_strategy().prop_map(|path| Request::Observe { path }),
                paths().prop_map(|paths| Request::ObserveComposite { paths }),
            ]
        }

        prop_compose! {
            fn queued()(
                id in any::<u64>(), endpoint in ".{0,12}", reg in any::<u64>(), request in request(),
                format in prop::option::of(prop::sample::select(ContentFormat::ALL.to_vec())),
                times in any::<(u64, u64)>(),
            ) -> QueuedRequest {
                QueuedRequest {
                    id, endpoint, registration_id: RegistrationId(reg), request, format,
                    queued_at_ms: times.0, deadline_ms: times.1,
                }
            }
        }

        proptest! {
            #[test]
            fn registration_round_trips(r in registration()) {
                prop_assert_eq!(decode_registration(&encode_registration(&r)), Ok(r));
            }

            #[test]
            fn decoding_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
                let _ = decode_registration(&bytes);
                let _ = decode_security(&bytes);
                let _ = decode_observation(&bytes);
                let _ = decode_queued_request(&bytes);
            }

            #[test]
            fn queued_requests_round_trip(q in queued()) {
                let bytes = encode_queued_request(&q);
                prop_assert_eq!(decode_queued_request(&bytes), Ok(q));
            }

            /// Flipping any byte of a valid held-request record gives an error or another valid record, never a
            /// panic; so does cutting it short.
            #[test]
            fn corrupted_queued_requests_never_panic(q in queued(), at in any::<prop::sample::Index>(), x in 1u8..) {
                let mut bytes = encode_queued_request(&q);
                let i = at.index(bytes.len());
                prop_assert!(decode_queued_request(&bytes[..i]).is_err());
                bytes[i] ^= x;
                let _ = decode_queued_request(&bytes);
            }

            /// Observation records round-trip, and a corrupted one is an error or another valid record.
            #[test]
            fn observation_records_round_trip_and_corruption_never_panics(
                composite in any::<bool>(),
                ids in prop::collection::vec((0u16..100, 0u16..10, 0u16..20), 1..4),
                token in prop::collection::vec(any::<u8>(), 0..=8),
                at in any::<prop::sample::Index>(),
                x in 1u8..,
            ) {
                let paths: Vec<lwm2m_core::Path> =
                    ids.iter().map(|(o, i, r)| lwm2m_core::Path::parse(&format!("/{o}/{i}/{r}")).unwrap()).collect();
                let request = if composite {
                    Request::ObserveComposite { paths }
                } else {
                    Request::Observe { path: paths[0] }
                };
                let o = ObservationInfo { token, request, ..sample_observation() };
                let mut bytes = encode_observation(&o).unwrap();
                prop_assert_eq!(decode_observation(&bytes), Ok(o));
                let i = at.index(bytes.len());
                bytes[i] ^= x;
                let _ = decode_observation(&bytes);
            }

            /// Flipping any byte of a valid record gives an error or another valid registration, never a panic.
            #[test]
            fn corrupted_records_never_panic(r in registration(), at in any::<prop::sample::Index>(), x in 1u8..) {
                let mut bytes = encode_registration(&r);
                let i = at.index(bytes.len());
                bytes[i] ^= x;
                let _ = decode_registration(&bytes);
            }
        }
    }
}
