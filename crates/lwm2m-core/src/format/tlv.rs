//! LwM2M TLV (11542), digest §8.5, with the value encodings of §8.2.
//!
//! Each entry is `Type (1) | Identifier (1 or 2) | Length (0-3) | Value`. The two top bits of the
//! type byte say what the entry is: Object Instance (`00`), Resource Instance (`01`), Multiple
//! Resource (`10`) or Resource with a value (`11`).
//!
//! What [`encode`] emits for the node at a path:
//!
//! | path | payload |
//! |---|---|
//! | `/o` | one Object Instance TLV per instance (even for a single instance) |
//! | `/o/i` | the resource TLVs directly |
//! | `/o/i/r` | one Resource TLV (single) or one Multiple-Resource TLV (multiple, even with 0 or 1 instances) |
//! | `/o/i/r/ri` | one Resource-Instance TLV |
//!
//! Encoding choices (deterministic, so encode -> decode -> encode is stable):
//! * Identifiers use 8 bits unless the id is above 255; the length sits in the type byte when it
//!   is at most 7, else in the smallest 8/16/24-bit field. Values above 2^24-1 bytes are an error.
//! * Integer and Time: the smallest of 1, 2, 4, 8 bytes that holds the value in two's complement.
//! * Unsigned Integer: the smallest of 1, 2, 4, 8 bytes that holds the value as an *unsigned*
//!   number (200 is `C8`, 2^63 is `80 00 00 00 00 00 00 00` as in digest example 9). An unsigned
//!   value is never widened to keep its top bit clear: digest example 9 shows that TLV unsigned
//!   integers are read as unsigned, and 2^63 could not be widened beyond 8 bytes anyway.
//! * Float: 4 bytes (binary32) when the `f64` converts to `f32` and back unchanged (so values that
//!   came from a binary32 encoding, like 3.14159f32 in digest example 7, stay 4 bytes); otherwise,
//!   and always for NaN (to keep its payload bits), 8 bytes (binary64).
//! * Boolean 1 byte, Objlnk 4 bytes, String and Corelnk as UTF-8, Opaque raw.
//!
//! Decoding ([`decode`]) types each value by the model of its resource (`models.resource(o, r)`);
//! without a model (or for an executable resource, type none) the value is kept as raw Opaque bytes
//! and single/multiple follows the TLV type. It accepts, beyond what the encoder emits:
//! * non-minimal identifier and length encodings, and any bits 2-0 of the type byte when a length
//!   field is present (the TS says to ignore them);
//! * at `/o/i` and `/o/i/r`, a payload wrapped in one Object Instance TLV whose id is the path's
//!   instance id (Create and Write payloads are often wrapped like that).
//!
//! An empty payload decodes to an empty object at `/o` and an empty instance at `/o/i`; at
//! `/o/i/r` and `/o/i/r/ri` it is [`FormatError::Empty`] (a multiple resource is always carried by
//! a Multiple-Resource TLV, even without instances).
//!
//! Errors: every length is checked against its enclosing entry ([`FormatError::Truncated`] when
//! the payload itself ends early, [`FormatError::Malformed`] with the entry's offset when an entry
//! overruns its enclosing TLV); integer widths other than 1/2/4/8, floats other than 4/8, booleans
//! other than 1 byte and objlnks other than 4 bytes are [`FormatError::InvalidLength`]; a boolean
//! byte other than 0 or 1 is [`FormatError::Value`]; wrong nesting is [`FormatError::Malformed`]
//! with the offset of the misplaced entry; ids that do not match the path are
//! [`FormatError::UnexpectedPath`]; repeated ids are [`FormatError::Duplicate`]; single/multiple
//! conflicts with the model are [`FormatError::Multiplicity`]; bytes after the one entry a
//! resource or resource-instance payload holds are [`FormatError::TrailingData`]. The nesting is at
//! most three levels and is walked without recursion.

use std::collections::BTreeMap;

use crate::error::{FormatError, PathError, ValueError};
use crate::format::ContentFormat;
use crate::model::Models;
use crate::node::{InstanceNode, Node, ObjectNode, ResourceNode, ResourceValue};
use crate::path::{Path, MAX_ID};
use crate::value::{DataType, ObjLink, Value};

const F: ContentFormat = ContentFormat::Tlv;

/// The largest value (or nested content) one TLV entry can carry: 2^24-1 bytes (24-bit length).
pub const MAX_VALUE_LEN: usize = 0xFF_FFFF;

/// The identifier type (bits 7-6 of the type byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ObjectInstance,
    ResourceInstance,
    MultipleResource,
    Resource,
}

impl Kind {
    fn from_type_byte(t: u8) -> Kind {
        match t >> 6 {
            0 => Kind::ObjectInstance,
            1 => Kind::ResourceInstance,
            2 => Kind::MultipleResource,
            _ => Kind::Resource,
        }
    }

    fn bits(self) -> u8 {
        match self {
            Kind::ObjectInstance => 0x00,
            Kind::ResourceInstance => 0x40,
            Kind::MultipleResource => 0x80,
            Kind::Resource => 0xC0,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::ObjectInstance => "object-instance",
            Kind::ResourceInstance => "resource-instance",
            Kind::MultipleResource => "multiple-resource",
            Kind::Resource => "resource",
        }
    }

    /// The path depth an entry of this kind describes (Resource and Multiple Resource share one).
    fn depth(self) -> usize {
        match self {
            Kind::ObjectInstance => 2,
            Kind::Resource | Kind::MultipleResource => 3,
            Kind::ResourceInstance => 4,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/// The TLV bytes of one value: borrowed for strings and opaque, inline for fixed-size types.
enum ValueBytes<'a> {
    Borrowed(&'a [u8]),
    /// Big-endian bytes; the value is `bytes[start..]`.
    Inline {
        bytes: [u8; 8],
        start: usize,
    },
}

impl ValueBytes<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            ValueBytes::Borrowed(b) => b,
            ValueBytes::Inline { bytes, start } => bytes.get(*start..).unwrap_or_default(),
        }
    }
}

/// The smallest of 1, 2, 4, 8 bytes holding `v` in two's complement.
fn signed_width(v: i64) -> usize {
    if i8::try_from(v).is_ok() {
        1
    } else if i16::try_from(v).is_ok() {
        2
    } else if i32::try_from(v).is_ok() {
        4
    } else {
        8
    }
}

/// The smallest of 1, 2, 4, 8 bytes holding `v` as an unsigned number.
fn unsigned_width(v: u64) -> usize {
    if v <= 0xFF {
        1
    } else if v <= 0xFFFF {
        2
    } else if v <= 0xFFFF_FFFF {
        4
    } else {
        8
    }
}

fn value_bytes(v: &Value) -> ValueBytes<'_> {
    let inline = |bytes: [u8; 8], width: usize| ValueBytes::Inline {
        bytes,
        start: 8 - width,
    };
    match v {
        Value::String(s) | Value::Corelnk(s) => ValueBytes::Borrowed(s.as_bytes()),
        Value::Opaque(b) => ValueBytes::Borrowed(b),
        Value::Integer(i) | Value::Time(i) => inline(i.to_be_bytes(), signed_width(*i)),
        Value::UnsignedInteger(u) => inline(u.to_be_bytes(), unsigned_width(*u)),
        Value::Float(f) => {
            let narrow = *f as f32;
            if !f.is_nan() && f64::from(narrow) == *f {
                let mut b = [0u8; 8];
                b[4..].copy_from_slice(&narrow.to_be_bytes());
                inline(b, 4)
            } else {
                inline(f.to_be_bytes(), 8)
            }
        }
        Value::Boolean(b) => inline([0, 0, 0, 0, 0, 0, 0, u8::from(*b)], 1),
        Value::Objlnk(l) => {
            let mut b = [0u8; 8];
            b[4..6].copy_from_slice(&l.object_id.to_be_bytes());
            b[6..].copy_from_slice(&l.instance_id.to_be_bytes());
            inline(b, 4)
        }
    }
}

/// Size of the header (type, id, length field) of an entry with this id and value length.
fn header_len(id: u16, len: usize) -> usize {
    let id_len = if id > 0xFF { 2 } else { 1 };
    let len_len = match len {
        0..=7 => 0,
        8..=0xFF => 1,
        0x100..=0xFFFF => 2,
        _ => 3,
    };
    1 + id_len + len_len
}

fn entry_len(id: u16, len: usize) -> usize {
    header_len(id, len).saturating_add(len)
}

fn resource_content_len(r: &ResourceNode) -> usize {
    match &r.value {
        ResourceValue::Single(v) => value_bytes(v).as_slice().len(),
        ResourceValue::Multiple(m) => m.iter().fold(0usize, |acc, (ri, v)| {
            acc.saturating_add(entry_len(*ri, value_bytes(v).as_slice().len()))
        }),
    }
}

fn instance_content_len(inst: &InstanceNode) -> usize {
    inst.resources.values().fold(0usize, |acc, r| {
        acc.saturating_add(entry_len(r.id, resource_content_len(r)))
    })
}

fn put_header(out: &mut Vec<u8>, kind: Kind, id: u16, len: usize, path: &Path) -> Result<(), FormatError> {
    if len > MAX_VALUE_LEN {
        return Err(FormatError::Unsupported {
            format: F,
            reason: format!("the TLV entry for {path} would hold {len} bytes; TLV carries at most {MAX_VALUE_LEN}"),
        });
    }
    let mut t = kind.bits();
    if id > 0xFF {
        t |= 0x20;
    }
    // `len` fits in 24 bits here.
    let lb = (len as u32).to_be_bytes();
    let len_field: &[u8] = match len {
        0..=7 => {
            t |= lb[3];
            &[]
        }
        8..=0xFF => {
            t |= 0x08;
            &lb[3..]
        }
        0x100..=0xFFFF => {
            t |= 0x10;
            &lb[2..]
        }
        _ => {
            t |= 0x18;
            &lb[1..]
        }
    };
    out.push(t);
    if id > 0xFF {
        out.extend_from_slice(&id.to_be_bytes());
    } else {
        out.push(id as u8);
    }
    out.extend_from_slice(len_field);
    Ok(())
}

fn put_value(out: &mut Vec<u8>, kind: Kind, id: u16, v: &Value, path: &Path) -> Result<(), FormatError> {
    let bytes = value_bytes(v);
    let b = bytes.as_slice();
    put_header(out, kind, id, b.len(), path)?;
    out.extend_from_slice(b);
    Ok(())
}

fn put_resource(out: &mut Vec<u8>, o: u16, i: u16, r: &ResourceNode) -> Result<(), FormatError> {
    let path = Path::resource(o, i, r.id);
    match &r.value {
        ResourceValue::Single(v) => put_value(out, Kind::Resource, r.id, v, &path),
        ResourceValue::Multiple(m) => {
            put_header(out, Kind::MultipleResource, r.id, resource_content_len(r), &path)?;
            for (ri, v) in m {
                put_value(
                    out,
                    Kind::ResourceInstance,
                    *ri,
                    v,
                    &Path::resource_instance(o, i, r.id, *ri),
                )?;
            }
            Ok(())
        }
    }
}

fn put_instance_content(out: &mut Vec<u8>, o: u16, inst: &InstanceNode) -> Result<(), FormatError> {
    for r in inst.resources.values() {
        put_resource(out, o, inst.id, r)?;
    }
    Ok(())
}

/// Encodes the node at `path`: Object Instance TLVs for an object, resource TLVs for an instance,
/// one Resource or Multiple-Resource TLV for a resource, one Resource-Instance TLV for a resource
/// instance. Fails when the node does not sit at `path`, when an entry would exceed
/// [`MAX_VALUE_LEN`] bytes, or for an object instance id 65535 (reserved).
pub fn encode(path: &Path, node: &Node) -> Result<Vec<u8>, FormatError> {
    if !node.fits(path) {
        return Err(FormatError::Unsupported {
            format: F,
            reason: format!(
                "the content does not fit the path {path} (a node of depth {} with id {})",
                node.depth(),
                node.id()
            ),
        });
    }
    let o = path.object_id().unwrap_or(0);
    let i = path.instance_id().unwrap_or(0);
    let mut out = Vec::new();
    match node {
        Node::Object(obj) => {
            let total = obj.instances.values().fold(0usize, |acc, inst| {
                acc.saturating_add(entry_len(inst.id, instance_content_len(inst)))
            });
            out.reserve(total);
            for inst in obj.instances.values() {
                if inst.id == MAX_ID {
                    return Err(reserved_instance(obj.id));
                }
                let ipath = Path::instance(obj.id, inst.id);
                put_header(
                    &mut out,
                    Kind::ObjectInstance,
                    inst.id,
                    instance_content_len(inst),
                    &ipath,
                )?;
                put_instance_content(&mut out, obj.id, inst)?;
            }
        }
        Node::Instance(inst) => {
            if inst.id == MAX_ID {
                return Err(reserved_instance(o));
            }
            out.reserve(instance_content_len(inst));
            put_instance_content(&mut out, o, inst)?;
        }
        Node::Resource(r) => put_resource(&mut out, o, i, r)?,
        Node::ResourceInstance { id, value } => put_value(&mut out, Kind::ResourceInstance, *id, value, path)?,
    }
    Ok(out)
}

fn reserved_instance(o: u16) -> FormatError {
    FormatError::InvalidPath {
        format: F,
        text: format!("/{o}/{MAX_ID}"),
        source: PathError::ReservedInstanceId,
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/// One parsed entry header. `offset` is where the entry starts; the value is `buf[start..end]`.
#[derive(Debug, Clone, Copy)]
struct Tlv {
    kind: Kind,
    id: u16,
    offset: usize,
    start: usize,
    end: usize,
}

/// Reads the entry starting at `pos`, which must lie entirely before `end` (the end of the
/// enclosing entry, or of the payload). Requires `pos < end <= buf.len()`.
fn read_tlv(buf: &[u8], pos: usize, end: usize) -> Result<Tlv, FormatError> {
    let overrun = || {
        if end >= buf.len() {
            FormatError::Truncated {
                format: F,
                offset: buf.len(),
            }
        } else {
            FormatError::malformed(
                F,
                Some(pos),
                format!("the TLV entry at byte {pos} runs past the end of its enclosing entry at byte {end}"),
            )
        }
    };
    let byte = |at: usize| -> Result<u8, FormatError> {
        if at < end {
            buf.get(at).copied().ok_or_else(overrun)
        } else {
            Err(overrun())
        }
    };
    let t = byte(pos)?;
    let mut p = pos.checked_add(1).ok_or_else(overrun)?;
    let id = if t & 0x20 != 0 {
        let hi = byte(p)?;
        let lo = byte(p + 1)?;
        p += 2;
        u16::from_be_bytes([hi, lo])
    } else {
        let b = byte(p)?;
        p += 1;
        u16::from(b)
    };
    let len_type = (t >> 3) & 0x03;
    let len = if len_type == 0 {
        usize::from(t & 0x07)
    } else {
        let mut l = 0usize;
        for _ in 0..len_type {
            l = (l << 8) | usize::from(byte(p)?);
            p += 1;
        }
        l
    };
    let value_end = p.checked_add(len).filter(|e| *e <= end).ok_or_else(overrun)?;
    Ok(Tlv {
        kind: Kind::from_type_byte(t),
        id,
        offset: pos,
        start: p,
        end: value_end,
    })
}

fn bad_nesting(t: &Tlv, place: &str) -> FormatError {
    FormatError::malformed(
        F,
        Some(t.offset),
        format!("a {} TLV (id {}) cannot appear {place}", t.kind.name(), t.id),
    )
}

/// Sign-extends a 1, 2, 4 or 8 byte two's complement number.
fn read_signed(b: &[u8]) -> Option<i64> {
    if !matches!(b.len(), 1 | 2 | 4 | 8) {
        return None;
    }
    let negative = b.first().is_some_and(|x| x & 0x80 != 0);
    let init: i64 = if negative { -1 } else { 0 };
    Some(b.iter().fold(init, |acc, x| (acc << 8) | i64::from(*x)))
}

/// Reads a 1, 2, 4 or 8 byte unsigned number.
fn read_unsigned(b: &[u8]) -> Option<u64> {
    if !matches!(b.len(), 1 | 2 | 4 | 8) {
        return None;
    }
    Some(b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
}

/// Decodes the value of `t` as `ty` (Opaque when unknown or none).
fn decode_value(buf: &[u8], t: &Tlv, ty: Option<DataType>, path: Path) -> Result<Value, FormatError> {
    let b = buf.get(t.start..t.end).ok_or(FormatError::Truncated {
        format: F,
        offset: buf.len(),
    })?;
    let bad_len = |expected: &'static str| FormatError::InvalidLength {
        format: F,
        path,
        len: b.len(),
        expected,
    };
    let utf8 = || {
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| FormatError::InvalidUtf8 { format: F, path })
    };
    const INT_LENGTHS: &str = "1, 2, 4 or 8 bytes";
    Ok(match ty {
        None | Some(DataType::None) | Some(DataType::Opaque) => Value::Opaque(b.to_vec()),
        Some(DataType::String) => Value::String(utf8()?),
        Some(DataType::Corelnk) => Value::Corelnk(utf8()?),
        Some(DataType::Integer) => Value::Integer(read_signed(b).ok_or_else(|| bad_len(INT_LENGTHS))?),
        Some(DataType::Time) => Value::Time(read_signed(b).ok_or_else(|| bad_len(INT_LENGTHS))?),
        Some(DataType::UnsignedInteger) => {
            Value::UnsignedInteger(read_unsigned(b).ok_or_else(|| bad_len(INT_LENGTHS))?)
        }
        Some(DataType::Float) => match *b {
            [a, b1, c, d] => Value::Float(f64::from(f32::from_be_bytes([a, b1, c, d]))),
            [a, b1, c, d, e, f, g, h] => Value::Float(f64::from_be_bytes([a, b1, c, d, e, f, g, h])),
            _ => return Err(bad_len("4 or 8 bytes")),
        },
        Some(DataType::Boolean) => match *b {
            [0] => Value::Boolean(false),
            [1] => Value::Boolean(true),
            [_] => {
                return Err(FormatError::Value {
                    format: F,
                    path,
                    source: ValueError::OutOfRange {
                        target: DataType::Boolean,
                    },
                })
            }
            _ => return Err(bad_len("1 byte")),
        },
        Some(DataType::Objlnk) => match *b {
            [a, b1, c, d] => Value::Objlnk(ObjLink::new(u16::from_be_bytes([a, b1]), u16::from_be_bytes([c, d]))),
            _ => return Err(bad_len("4 bytes")),
        },
    })
}

/// Decodes a Resource or Multiple-Resource entry of instance `/o/i`.
fn decode_resource(buf: &[u8], t: &Tlv, o: u16, i: u16, models: &dyn Models) -> Result<ResourceNode, FormatError> {
    let r = t.id;
    let rpath = Path::resource(o, i, r);
    let model = models.resource(o, r);
    let ty = model.map(|m| m.data_type);
    match t.kind {
        Kind::Resource => {
            if model.is_some_and(|m| m.multiple) {
                return Err(FormatError::Multiplicity {
                    format: F,
                    path: rpath,
                    expected: "multiple",
                    found: "single",
                });
            }
            Ok(ResourceNode::single(r, decode_value(buf, t, ty, rpath)?))
        }
        Kind::MultipleResource => {
            if model.is_some_and(|m| !m.multiple) {
                return Err(FormatError::Multiplicity {
                    format: F,
                    path: rpath,
                    expected: "single",
                    found: "multiple",
                });
            }
            let mut values = BTreeMap::new();
            let mut pos = t.start;
            while pos < t.end {
                let ri = read_tlv(buf, pos, t.end)?;
                if ri.kind != Kind::ResourceInstance {
                    return Err(bad_nesting(
                        &ri,
                        &format!("inside the multiple-resource TLV of {rpath}"),
                    ));
                }
                let ripath = Path::resource_instance(o, i, r, ri.id);
                if values.contains_key(&ri.id) {
                    return Err(FormatError::Duplicate {
                        format: F,
                        path: ripath,
                    });
                }
                values.insert(ri.id, decode_value(buf, &ri, ty, ripath)?);
                pos = ri.end;
            }
            Ok(ResourceNode {
                id: r,
                value: ResourceValue::Multiple(values),
            })
        }
        Kind::ObjectInstance | Kind::ResourceInstance => Err(bad_nesting(t, &format!("in place of resource {rpath}"))),
    }
}

/// Decodes the resource entries in `buf[start..end]`, the content of instance `/o/i`.
fn decode_resources(
    buf: &[u8],
    start: usize,
    end: usize,
    o: u16,
    i: u16,
    models: &dyn Models,
) -> Result<BTreeMap<u16, ResourceNode>, FormatError> {
    let mut resources = BTreeMap::new();
    let mut pos = start;
    while pos < end {
        let t = read_tlv(buf, pos, end)?;
        match t.kind {
            Kind::Resource | Kind::MultipleResource => {
                if resources.contains_key(&t.id) {
                    return Err(FormatError::Duplicate {
                        format: F,
                        path: Path::resource(o, i, t.id),
                    });
                }
                resources.insert(t.id, decode_resource(buf, &t, o, i, models)?);
            }
            Kind::ObjectInstance => {
                return Err(bad_nesting(&t, &format!("among the resources of /{o}/{i}")));
            }
            Kind::ResourceInstance => {
                return Err(bad_nesting(
                    &t,
                    &format!("among the resources of /{o}/{i} (only inside a multiple-resource TLV)"),
                ));
            }
        }
        pos = t.end;
    }
    Ok(resources)
}

/// Checks that nothing follows `t`, the one entry allowed before `end`. A following entry of the
/// same level is reported as a duplicate (same id) or unexpected path (other id); anything else as
/// trailing data.
fn expect_alone(
    buf: &[u8],
    t: &Tlv,
    end: usize,
    target: &Path,
    path_of: impl Fn(u16) -> Path,
) -> Result<(), FormatError> {
    if t.end >= end {
        return Ok(());
    }
    match read_tlv(buf, t.end, end) {
        Ok(next) if next.kind.depth() == t.kind.depth() => {
            if next.id == t.id {
                Err(FormatError::Duplicate {
                    format: F,
                    path: path_of(t.id),
                })
            } else {
                Err(FormatError::UnexpectedPath {
                    format: F,
                    target: *target,
                    found: path_of(next.id),
                })
            }
        }
        _ => Err(FormatError::TrailingData {
            format: F,
            offset: t.end,
        }),
    }
}

/// Decodes a TLV payload into the node at `path`, typing values by the models (Opaque when unknown).
///
/// `/o` takes Object Instance TLVs; `/o/i` takes resource TLVs, or one Object Instance TLV with
/// id `i` wrapping them; `/o/i/r` takes one Resource or Multiple-Resource TLV with id `r`
/// (optionally wrapped in one Object Instance TLV with id `i`); `/o/i/r/ri` takes one
/// Resource-Instance TLV with id `ri`. See the module documentation for the errors.
pub fn decode(path: &Path, payload: &[u8], models: &dyn Models) -> Result<Node, FormatError> {
    let buf = payload;
    let end = buf.len();
    match *path.ids() {
        [o] => {
            let mut obj = ObjectNode {
                id: o,
                instances: BTreeMap::new(),
            };
            let mut pos = 0;
            while pos < end {
                let t = read_tlv(buf, pos, end)?;
                if t.kind != Kind::ObjectInstance {
                    return Err(bad_nesting(
                        &t,
                        &format!("at the top of a payload for object {path} (object instance TLVs only)"),
                    ));
                }
                if t.id == MAX_ID {
                    return Err(reserved_instance(o));
                }
                if obj.instances.contains_key(&t.id) {
                    return Err(FormatError::Duplicate {
                        format: F,
                        path: Path::instance(o, t.id),
                    });
                }
                let resources = decode_resources(buf, t.start, t.end, o, t.id, models)?;
                obj.instances.insert(t.id, InstanceNode { id: t.id, resources });
                pos = t.end;
            }
            Ok(Node::Object(obj))
        }
        [o, i] => {
            let (start, stop) = match end {
                0 => (0, 0),
                _ => {
                    let first = read_tlv(buf, 0, end)?;
                    if first.kind == Kind::ObjectInstance {
                        if first.id != i {
                            return Err(FormatError::UnexpectedPath {
                                format: F,
                                target: *path,
                                found: Path::instance(o, first.id),
                            });
                        }
                        expect_alone(buf, &first, end, path, |id| Path::instance(o, id))?;
                        (first.start, first.end)
                    } else {
                        (0, end)
                    }
                }
            };
            let resources = decode_resources(buf, start, stop, o, i, models)?;
            Ok(Node::Instance(InstanceNode { id: i, resources }))
        }
        [o, i, r] => {
            let empty = || FormatError::Empty { format: F, path: *path };
            if end == 0 {
                return Err(empty());
            }
            let mut t = read_tlv(buf, 0, end)?;
            let mut scope_end = end;
            if t.kind == Kind::ObjectInstance {
                if t.id != i {
                    return Err(FormatError::UnexpectedPath {
                        format: F,
                        target: *path,
                        found: Path::instance(o, t.id),
                    });
                }
                expect_alone(buf, &t, end, path, |id| Path::instance(o, id))?;
                if t.start == t.end {
                    return Err(empty());
                }
                scope_end = t.end;
                t = read_tlv(buf, t.start, t.end)?;
            }
            if !matches!(t.kind, Kind::Resource | Kind::MultipleResource) {
                return Err(bad_nesting(&t, &format!("in place of resource {path}")));
            }
            if t.id != r {
                return Err(FormatError::UnexpectedPath {
                    format: F,
                    target: *path,
                    found: Path::resource(o, i, t.id),
                });
            }
            expect_alone(buf, &t, scope_end, path, |id| Path::resource(o, i, id))?;
            Ok(Node::Resource(decode_resource(buf, &t, o, i, models)?))
        }
        [o, i, r, ri] => {
            if end == 0 {
                return Err(FormatError::Empty { format: F, path: *path });
            }
            let t = read_tlv(buf, 0, end)?;
            if t.kind != Kind::ResourceInstance {
                return Err(bad_nesting(&t, &format!("in place of resource instance {path}")));
            }
            if t.id != ri {
                return Err(FormatError::UnexpectedPath {
                    format: F,
                    target: *path,
                    found: Path::resource_instance(o, i, r, t.id),
                });
            }
            expect_alone(buf, &t, end, path, |id| Path::resource_instance(o, i, r, id))?;
            let model = models.resource(o, r);
            if model.is_some_and(|m| !m.multiple) {
                return Err(FormatError::Multiplicity {
                    format: F,
                    path: Path::resource(o, i, r),
                    expected: "single",
                    found: "multiple",
                });
            }
            let value = decode_value(buf, &t, model.map(|m| m.data_type), *path)?;
            Ok(Node::ResourceInstance { id: ri, value })
        }
        _ => Err(FormatError::Unsupported {
            format: F,
            reason:
                "a TLV payload is decoded at an object, instance, resource or resource-instance path, not at the root"
                    .into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelRegistry, NoModels, ObjectModel, Operations, ResourceModel, Version};
    use proptest::prelude::*;

    fn res(id: u16, data_type: DataType, multiple: bool) -> ResourceModel {
        ResourceModel::new(id, format!("r{id}"), Operations::RW, multiple, false, data_type)
    }

    fn object(id: u16, resources: Vec<ResourceModel>) -> ObjectModel {
        ObjectModel::new(id, format!("o{id}"), Version::V1_0, true, resources)
    }

    /// Hand-built models for the digest examples: Device (3), Server (1), Access Control (2)
    /// and a test object 10000 holding the single-value examples 6-10.
    fn models() -> ModelRegistry {
        use DataType::*;
        let mut m = ModelRegistry::new();
        m.add(object(
            3,
            vec![
                res(0, String, false),
                res(1, String, false),
                res(2, String, false),
                res(3, String, false),
                res(4, None, false),
                res(6, Integer, true),
                res(7, Integer, true),
                res(8, Integer, true),
                res(9, Integer, false),
                res(10, Integer, false),
                res(11, Integer, true),
                res(13, Time, false),
                res(14, String, false),
                res(16, String, false),
            ],
        ));
        m.add(object(
            1,
            vec![
                res(0, Integer, false),
                res(1, Integer, false),
                res(6, Boolean, false),
                res(7, String, false),
            ],
        ));
        m.add(object(
            2,
            vec![
                res(0, Integer, false),
                res(1, Integer, false),
                res(2, Integer, true),
                res(3, Integer, false),
            ],
        ));
        m.add(object(
            10000,
            vec![
                res(0, Opaque, false),
                res(5, Integer, false),
                res(13, Time, false),
                res(130, Float, false),
                res(140, Boolean, false),
                res(170, Objlnk, false),
                res(171, Objlnk, true),
                res(1125, UnsignedInteger, false),
                res(200, Corelnk, false),
            ],
        ));
        m
    }

    fn hex(s: &str) -> Vec<u8> {
        let clean: std::string::String = s.chars().filter(|c| !c.is_whitespace()).collect();
        ::hex::decode(clean).unwrap()
    }

    const EX1: &str = "C8 00 14 4F 70 65 6E 20 4D 6F 62 69 6C 65 20 41 6C 6C 69 61 6E 63 65
        C8 01 16 4C 69 67 68 74 77 65 69 67 68 74 20 4D 32 4D 20 43 6C 69 65 6E 74
        C8 02 09 33 34 35 30 30 30 31 32 33
        C3 03 31 2E 30
        86 06 41 00 01 41 01 05
        88 07 08 42 00 0E D8 42 01 13 88
        87 08 41 00 7D 42 01 03 84
        C1 09 64
        C1 0A 0F
        83 0B 41 00 00
        C4 0D 51 82 42 8F
        C6 0E 2B 30 32 3A 30 30
        C1 10 55";

    fn device() -> InstanceNode {
        let s = |x: &str| Value::String(x.into());
        InstanceNode::new(
            0,
            [
                ResourceNode::single(0, s("Open Mobile Alliance")),
                ResourceNode::single(1, s("Lightweight M2M Client")),
                ResourceNode::single(2, s("345000123")),
                ResourceNode::single(3, s("1.0")),
                ResourceNode::multiple(6, [(0, Value::Integer(1)), (1, Value::Integer(5))]),
                ResourceNode::multiple(7, [(0, Value::Integer(3800)), (1, Value::Integer(5000))]),
                ResourceNode::multiple(8, [(0, Value::Integer(125)), (1, Value::Integer(900))]),
                ResourceNode::single(9, Value::Integer(100)),
                ResourceNode::single(10, Value::Integer(15)),
                ResourceNode::multiple(11, [(0, Value::Integer(0))]),
                ResourceNode::single(13, Value::Time(1367491215)),
                ResourceNode::single(14, s("+02:00")),
                ResourceNode::single(16, s("U")),
            ],
        )
    }

    /// Encodes `node` at `path`, checks the bytes, decodes them back and checks the node.
    fn both_ways(path: &str, node: Node, bytes: &[u8]) {
        let p: Path = path.parse().unwrap();
        assert_eq!(encode(&p, &node).unwrap(), bytes, "encode {path}");
        assert_eq!(decode(&p, bytes, &models()).unwrap(), node, "decode {path}");
    }

    fn single(path: &str, v: Value) -> (Node, Path) {
        let p: Path = path.parse().unwrap();
        (Node::Resource(ResourceNode::single(p.resource_id().unwrap(), v)), p)
    }

    #[test]
    fn example_1_device_instance() {
        let bytes = hex(EX1);
        assert_eq!(bytes.len(), 121);
        both_ways("/3/0", Node::Instance(device()), &bytes);
    }

    #[test]
    fn example_2_device_object() {
        let mut bytes = hex("08 00 79");
        bytes.extend(hex(EX1));
        assert_eq!(bytes.len(), 124);
        both_ways("/3", Node::Object(ObjectNode::new(3, [device()])), &bytes);
        // The wrapped form is also accepted at the instance path.
        assert_eq!(
            decode(&Path::instance(3, 0), &bytes, &models()).unwrap(),
            Node::Instance(device())
        );
    }

    #[test]
    fn example_3_server_instance() {
        let bytes = hex("08 00 0F C1 00 01 C4 01 00 01 51 80 C1 06 01 C1 07 55");
        let inst = InstanceNode::new(
            0,
            [
                ResourceNode::single(0, Value::Integer(1)),
                ResourceNode::single(1, Value::Integer(86400)),
                ResourceNode::single(6, Value::Boolean(true)),
                ResourceNode::single(7, Value::String("U".into())),
            ],
        );
        both_ways("/1", Node::Object(ObjectNode::new(1, [inst.clone()])), &bytes);
        assert_eq!(
            decode(&Path::instance(1, 0), &bytes, &models()).unwrap(),
            Node::Instance(inst.clone())
        );
        // At the instance path the encoder emits the resources without the wrapper.
        assert_eq!(
            encode(&Path::instance(1, 0), &Node::Instance(inst)).unwrap(),
            bytes[3..]
        );
    }

    #[test]
    fn example_4_sixteen_bit_resource_instance_id() {
        both_ways(
            "/2/0/2/310",
            Node::ResourceInstance {
                id: 310,
                value: Value::Integer(1),
            },
            &hex("61 01 36 01"),
        );
    }

    #[test]
    fn example_5_access_control_object() {
        let bytes = hex("08 00 0E C1 00 01 C1 01 00 83 02 41 7F 07 C1 03 7F
             08 02 12 C1 00 03 C1 01 00 87 02 41 7F 07 61 01 36 01 C1 03 7F");
        assert_eq!(bytes.len(), 38);
        let acl = |o, acl: &[(u16, i64)]| {
            [
                ResourceNode::single(0, Value::Integer(o)),
                ResourceNode::single(1, Value::Integer(0)),
                ResourceNode::multiple(2, acl.iter().map(|(k, v)| (*k, Value::Integer(*v)))),
                ResourceNode::single(3, Value::Integer(127)),
            ]
        };
        let node = Node::Object(ObjectNode::new(
            2,
            [
                InstanceNode::new(0, acl(1, &[(127, 7)])),
                InstanceNode::new(2, acl(3, &[(127, 7), (310, 1)])),
            ],
        ));
        both_ways("/2", node, &bytes);
    }

    #[test]
    fn example_6_objlnk() {
        let (n, _) = single("/10000/0/170", Value::Objlnk(ObjLink::new(3, 0)));
        both_ways("/10000/0/170", n, &hex("C4 AA 00 03 00 00"));
        let (n, _) = single("/10000/0/170", Value::Objlnk(ObjLink::NULL));
        both_ways("/10000/0/170", n, &hex("C4 AA FF FF FF FF"));
    }

    #[test]
    #[allow(clippy::approx_constant)] // 3.14159 is the digest's example value, not an approximation of PI
    fn example_7_float_both_widths() {
        // binary32: the f64 that 3.14159f32 stands for stays 4 bytes.
        let (n, _) = single("/10000/0/130", Value::Float(f64::from(3.14159f32)));
        both_ways("/10000/0/130", n, &hex("C4 82 40 49 0F D0"));
        // binary64: 3.14159 is not exactly a binary32, so 8 bytes.
        let (n, _) = single("/10000/0/130", Value::Float(3.14159));
        both_ways("/10000/0/130", n, &hex("C8 82 08 40 09 21 F9 F0 1B 86 6E"));
        // Whole and special values fit binary32.
        for (v, b) in [(1.0, "C4 82 3F 80 00 00"), (f64::INFINITY, "C4 82 7F 80 00 00")] {
            let (n, p) = single("/10000/0/130", Value::Float(v));
            assert_eq!(encode(&p, &n).unwrap(), hex(b));
        }
        // NaN always takes 8 bytes, keeping its bits.
        let (n, p) = single("/10000/0/130", Value::Float(f64::NAN));
        let bytes = encode(&p, &n).unwrap();
        assert_eq!(bytes.len(), 11);
        match decode(&p, &bytes, &models()).unwrap() {
            Node::Resource(ResourceNode {
                value: ResourceValue::Single(Value::Float(f)),
                ..
            }) => assert_eq!(f.to_bits(), f64::NAN.to_bits()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn example_8_boolean_integer_time() {
        let (n, _) = single("/10000/0/140", Value::Boolean(true));
        both_ways("/10000/0/140", n, &hex("C1 8C 01"));
        let (n, _) = single("/10000/0/140", Value::Boolean(false));
        both_ways("/10000/0/140", n, &hex("C1 8C 00"));
        let (n, _) = single("/10000/0/5", Value::Integer(-750));
        both_ways("/10000/0/5", n, &hex("C2 05 FD 12"));
        let (n, _) = single("/10000/0/13", Value::Time(-1));
        both_ways("/10000/0/13", n, &hex("C1 0D FF"));
    }

    #[test]
    fn example_9_unsigned_two_to_the_63() {
        let (n, _) = single("/10000/0/1125", Value::UnsignedInteger(1 << 63));
        both_ways("/10000/0/1125", n, &hex("E8 04 65 08 80 00 00 00 00 00 00 00"));
    }

    #[test]
    fn example_10_length_fields() {
        let p = Path::resource(10000, 0, 0);
        for (len, prefix) in [(300usize, "D0 00 01 2C"), (70000, "D8 00 01 11 70")] {
            let data: Vec<u8> = (0..len).map(|x| x as u8).collect();
            let node = Node::Resource(ResourceNode::single(0, Value::Opaque(data)));
            let bytes = encode(&p, &node).unwrap();
            let prefix = hex(prefix);
            assert_eq!(bytes[..prefix.len()], prefix[..]);
            assert_eq!(bytes.len(), prefix.len() + len);
            assert_eq!(decode(&p, &bytes, &models()).unwrap(), node);
        }
    }

    #[test]
    fn smallest_widths() {
        let enc = |path: &str, v: Value| {
            let (n, p) = single(path, v);
            encode(&p, &n).unwrap()
        };
        for (v, b) in [
            (0i64, "C1 05 00"),
            (127, "C1 05 7F"),
            (128, "C2 05 00 80"),
            (-128, "C1 05 80"),
            (-129, "C2 05 FF 7F"),
            (32768, "C4 05 00 00 80 00"),
            (1 << 31, "C8 05 08 00 00 00 00 80 00 00 00"),
            (i64::MIN, "C8 05 08 80 00 00 00 00 00 00 00"),
        ] {
            assert_eq!(enc("/10000/0/5", Value::Integer(v)), hex(b), "{v}");
        }
        for (v, b) in [
            (200u64, "E1 04 65 C8"),
            (256, "E2 04 65 01 00"),
            (65536, "E4 04 65 00 01 00 00"),
            (u64::MAX, "E8 04 65 08 FF FF FF FF FF FF FF FF"),
        ] {
            assert_eq!(enc("/10000/0/1125", Value::UnsignedInteger(v)), hex(b), "{v}");
        }
        // Length-in-type limit: 7 bytes inline, 8 bytes take an 8-bit length field; 255/256 and
        // 65535/65536 switch to 16- and 24-bit fields.
        for (len, head) in [
            (7usize, "C7 00"),
            (8, "C8 00 08"),
            (255, "C8 00 FF"),
            (256, "D0 00 01 00"),
            (65535, "D0 00 FF FF"),
            (65536, "D8 00 01 00 00"),
        ] {
            let b = enc("/10000/0/0", Value::Opaque(vec![0xAB; len]));
            let head = hex(head);
            assert_eq!(b[..head.len()], head[..], "{len}");
            assert_eq!(b.len(), head.len() + len);
        }
    }

    #[test]
    fn multiple_resource_with_zero_or_one_instance() {
        let p = Path::resource(3, 0, 11);
        both_ways("/3/0/11", Node::Resource(ResourceNode::multiple(11, [])), &hex("80 0B"));
        both_ways(
            "/3/0/11",
            Node::Resource(ResourceNode::multiple(11, [(0, Value::Integer(0))])),
            &hex("83 0B 41 00 00"),
        );
        // A single resource TLV for a resource the model calls multiple.
        assert!(matches!(
            decode(&p, &hex("C1 0B 00"), &models()),
            Err(FormatError::Multiplicity {
                expected: "multiple",
                found: "single",
                ..
            })
        ));
    }

    #[test]
    fn unknown_models_decode_as_opaque() {
        let bytes = hex(EX1);
        let node = decode(&Path::instance(3, 0), &bytes, &NoModels).unwrap();
        let Node::Instance(inst) = &node else {
            panic!("{node:?}")
        };
        assert_eq!(inst.resources.len(), 13);
        assert_eq!(
            inst.resources[&9].value,
            ResourceValue::Single(Value::Opaque(vec![0x64]))
        );
        assert_eq!(
            inst.resources[&7].value,
            ResourceValue::Multiple(
                [
                    (0, Value::Opaque(vec![0x0E, 0xD8])),
                    (1, Value::Opaque(vec![0x13, 0x88]))
                ]
                .into()
            )
        );
        // Executable resources (type none) are kept as opaque bytes too.
        assert_eq!(
            decode(&Path::resource(3, 0, 4), &hex("C0 04"), &models()).unwrap(),
            Node::Resource(ResourceNode::single(4, Value::Opaque(vec![])))
        );
    }

    #[test]
    fn lenient_header_forms() {
        let m = models();
        let p = Path::resource(3, 0, 9);
        let want = Node::Resource(ResourceNode::single(9, Value::Integer(100)));
        // 8-bit length field for a 1-byte value, with junk in bits 2-0; 16-bit id; 24-bit length.
        for b in [
            "C8 09 01 64",
            "CF 09 01 64",
            "E1 00 09 64",
            "D8 09 00 00 01 64",
            "F8 00 09 00 00 01 64",
        ] {
            assert_eq!(decode(&p, &hex(b), &m).unwrap(), want, "{b}");
        }
        // The resource wrapped in its object instance.
        assert_eq!(decode(&p, &hex("08 00 03 C1 09 64"), &m).unwrap(), want);
        // Shorter integer widths for a 64-bit resource.
        assert_eq!(
            decode(&Path::resource(10000, 0, 1125), &hex("E2 04 65 FF FF"), &m).unwrap(),
            Node::Resource(ResourceNode::single(1125, Value::UnsignedInteger(65535)))
        );
        // Empty payloads.
        assert_eq!(
            decode(&Path::object(3), &[], &m).unwrap(),
            Node::Object(ObjectNode::new(3, []))
        );
        assert_eq!(
            decode(&Path::instance(3, 0), &[], &m).unwrap(),
            Node::Instance(InstanceNode::new(0, []))
        );
    }

    fn err(path: &str, bytes: &str) -> FormatError {
        decode(&path.parse().unwrap(), &hex(bytes), &models()).unwrap_err()
    }

    #[test]
    fn truncated_at_every_byte() {
        let m = models();
        let inner = hex(EX1);
        let mut wrapped = hex("08 00 79");
        wrapped.extend(&inner);
        // Object level: every proper non-empty prefix ends inside the 121-byte instance.
        for n in 1..wrapped.len() {
            for p in [Path::object(3), Path::instance(3, 0)] {
                assert_eq!(
                    decode(&p, &wrapped[..n], &m),
                    Err(FormatError::Truncated { format: F, offset: n }),
                    "{p} prefix {n}"
                );
            }
        }
        // Instance level: cuts between resource TLVs are complete payloads with fewer
        // resources; every other cut is Truncated at the cut.
        let Node::Instance(full) = decode(&Path::instance(3, 0), &inner, &m).unwrap() else {
            panic!()
        };
        let mut boundaries = vec![0usize];
        let mut pos = 0;
        while pos < inner.len() {
            pos = read_tlv(&inner, pos, inner.len()).unwrap().end;
            boundaries.push(pos);
        }
        assert_eq!(boundaries.len(), 14);
        for n in 0..inner.len() {
            let got = decode(&Path::instance(3, 0), &inner[..n], &m);
            match boundaries.iter().position(|b| *b == n) {
                Some(k) => {
                    let want: Vec<ResourceNode> = full.resources.values().take(k).cloned().collect();
                    assert_eq!(got, Ok(Node::Instance(InstanceNode::new(0, want))), "prefix {n}");
                }
                None => assert_eq!(got, Err(FormatError::Truncated { format: F, offset: n }), "prefix {n}"),
            }
        }
    }

    #[test]
    fn every_single_byte_mutation_of_example_5() {
        let m = models();
        let good = hex("08 00 0E C1 00 01 C1 01 00 83 02 41 7F 07 C1 03 7F
             08 02 12 C1 00 03 C1 01 00 87 02 41 7F 07 61 01 36 01 C1 03 7F");
        let p = Path::object(2);
        for at in 0..good.len() {
            for b in 0..=255u8 {
                let mut bytes = good.clone();
                bytes[at] = b;
                for models in [&m as &dyn Models, &NoModels] {
                    // No panic; whatever decodes re-encodes to a payload that decodes the same.
                    if let Ok(node) = decode(&p, &bytes, models) {
                        let again = encode(&p, &node).unwrap();
                        assert_eq!(decode(&p, &again, models).unwrap(), node, "byte {at} = {b:#04x}");
                    }
                }
            }
        }
    }

    #[test]
    fn nested_overrun_is_malformed() {
        // The multiple resource claims 3 bytes; its instance claims 2 of them after a 2-byte header.
        let e = err("/3/0", "83 06 42 00 01 C1 09 64");
        assert!(matches!(e, FormatError::Malformed { offset: Some(2), .. }), "{e:?}");
        // The same at the end of the payload is plain truncation.
        assert_eq!(
            err("/3/0", "83 06 42 00 01"),
            FormatError::Truncated { format: F, offset: 5 }
        );
        // Instance of 3 bytes holding a resource that says 2 value bytes.
        let e = err("/3", "08 00 03 C2 09 64 00");
        assert!(matches!(e, FormatError::Malformed { offset: Some(3), .. }), "{e:?}");
    }

    #[test]
    fn wrong_value_lengths() {
        let len_err = |path: &str, bytes: &str, want_len: usize| match err(path, bytes) {
            FormatError::InvalidLength { path: p, len, .. } => {
                assert_eq!(p, path.parse().unwrap());
                assert_eq!(len, want_len);
            }
            other => panic!("{path} {bytes}: {other:?}"),
        };
        len_err("/10000/0/5", "C3 05 00 00 01", 3); // integer of 3 bytes
        len_err("/10000/0/5", "C0 05", 0); // empty integer
        len_err("/10000/0/13", "C5 0D 00 00 00 00 01", 5); // time of 5 bytes
        len_err("/10000/0/1125", "E8 04 65 09 00 00 00 00 00 00 00 00 01", 9);
        len_err("/10000/0/130", "C2 82 3F 80", 2); // float of 2 bytes
        len_err("/10000/0/140", "C2 8C 00 01", 2); // boolean of 2 bytes
        len_err("/10000/0/140", "C0 8C", 0);
        len_err("/10000/0/170", "C3 AA 00 03 00", 3); // objlnk of 3 bytes
        len_err("/10000/0/171/0", "43 00 00 03 00", 3);
        assert!(matches!(
            err("/10000/0/140", "C1 8C 02"),
            FormatError::Value {
                source: ValueError::OutOfRange {
                    target: DataType::Boolean
                },
                ..
            }
        ));
        assert!(matches!(err("/3/0/0", "C2 00 C3 28"), FormatError::InvalidUtf8 { .. }));
        assert!(matches!(
            err("/10000/0/200", "C1 C8 FF"),
            FormatError::InvalidUtf8 { .. }
        ));
    }

    #[test]
    fn bad_nesting() {
        let malformed_at = |path: &str, bytes: &str, at: usize| match err(path, bytes) {
            FormatError::Malformed { offset, .. } => assert_eq!(offset, Some(at), "{path} {bytes}"),
            other => panic!("{path} {bytes}: {other:?}"),
        };
        malformed_at("/3/0", "C1 09 64 41 00 01", 3); // resource instance among resources
        malformed_at("/3/0", "C1 09 64 08 01 00", 3); // object instance after resources
        malformed_at("/3", "08 00 03 08 01 00", 3); // object instance inside an object instance
        malformed_at("/3", "C1 09 64", 0); // resource at the object level
        malformed_at("/3/0", "83 06 C1 00 01", 2); // resource inside a multiple resource
        malformed_at("/3/0", "84 06 80 00 80 01", 2); // multiple resource inside a multiple resource
        malformed_at("/3/0/9", "41 09 64", 0); // resource instance at a resource path
        malformed_at("/3/0/6/0", "C1 00 01", 0); // resource at a resource-instance path
        malformed_at("/3/0/6/0", "83 06 41 00 01", 0); // multiple resource at a resource-instance path
        malformed_at("/3/0/9", "08 00 03 08 00 00", 3); // object instance inside the wrapper
    }

    #[test]
    fn ids_must_match_the_path() {
        let unexpected = |path: &str, bytes: &str, found: &str| match err(path, bytes) {
            FormatError::UnexpectedPath { target, found: f, .. } => {
                assert_eq!(target, path.parse().unwrap());
                assert_eq!(f, found.parse().unwrap());
            }
            other => panic!("{path} {bytes}: {other:?}"),
        };
        unexpected("/3/0", "08 01 03 C1 09 64", "/3/1");
        unexpected("/3/0/9", "C1 0A 64", "/3/0/10");
        unexpected("/3/0/9", "08 01 03 C1 09 64", "/3/1");
        unexpected("/3/0/9", "C1 09 64 C1 0A 0F", "/3/0/10");
        unexpected("/3/0/6/1", "41 00 01", "/3/0/6/0");
        unexpected("/3/0/6/1", "41 01 01 41 02 05", "/3/0/6/2");
        unexpected("/3/0", "08 00 03 C1 09 64 08 01 00", "/3/1");
    }

    #[test]
    fn duplicates_and_trailing_data() {
        let dup = |path: &str, bytes: &str, at: &str| match err(path, bytes) {
            FormatError::Duplicate { path: p, .. } => assert_eq!(p, at.parse().unwrap()),
            other => panic!("{path} {bytes}: {other:?}"),
        };
        dup("/3/0", "C1 09 64 C1 09 65", "/3/0/9");
        dup("/3/0", "C1 09 64 83 09 41 00 01", "/3/0/9");
        dup("/3/0", "86 06 41 00 01 41 00 05", "/3/0/6/0");
        dup("/3/0", "86 06 41 00 01 41 01 05 80 06", "/3/0/6");
        dup("/3", "08 00 00 08 00 00", "/3/0");
        dup("/3/0", "08 00 00 08 00 00", "/3/0");
        dup("/3/0/9", "C1 09 64 C1 09 64", "/3/0/9");
        dup("/3/0/6/0", "41 00 01 41 00 01", "/3/0/6/0");
        assert_eq!(
            err("/3/0/9", "C1 09 64 00"),
            FormatError::TrailingData { format: F, offset: 3 }
        );
        assert_eq!(
            err("/3/0/9", "08 00 03 C1 09 64 FF"),
            FormatError::TrailingData { format: F, offset: 6 }
        );
        assert_eq!(
            err("/3/0/9", "08 00 04 C1 09 64 00"),
            FormatError::TrailingData { format: F, offset: 6 }
        );
        assert_eq!(
            err("/3/0/6/0", "41 00 01 C1 09 64"),
            FormatError::TrailingData { format: F, offset: 3 }
        );
    }

    #[test]
    fn multiplicity_against_the_model() {
        assert!(matches!(
            err("/3/0", "83 09 41 00 64"),
            FormatError::Multiplicity {
                expected: "single",
                found: "multiple",
                ..
            }
        ));
        assert!(matches!(
            err("/3/0", "C1 06 01"),
            FormatError::Multiplicity {
                expected: "multiple",
                found: "single",
                ..
            }
        ));
        assert!(matches!(
            err("/3/0/9/0", "41 00 64"),
            FormatError::Multiplicity { expected: "single", .. }
        ));
    }

    #[test]
    fn empty_and_other_paths() {
        assert!(matches!(err("/3/0/9", ""), FormatError::Empty { .. }));
        assert!(matches!(err("/3/0/9", "08 00 00"), FormatError::Empty { .. }));
        assert!(matches!(err("/3/0/6/0", ""), FormatError::Empty { .. }));
        assert!(matches!(err("/", "C1 09 64"), FormatError::Unsupported { .. }));
        assert!(matches!(
            err("/3", "08 FF FF 00"),
            FormatError::Malformed { .. } | FormatError::Truncated { .. }
        ));
        // 16-bit object instance id 65535 is reserved.
        assert!(matches!(
            err("/3", "28 FF FF 00"),
            FormatError::InvalidPath {
                source: PathError::ReservedInstanceId,
                ..
            }
        ));
    }

    #[test]
    fn encode_errors() {
        // Node does not sit at the path.
        let n = Node::Resource(ResourceNode::single(9, Value::Integer(1)));
        assert!(matches!(
            encode(&Path::resource(3, 0, 10), &n),
            Err(FormatError::Unsupported { .. })
        ));
        assert!(matches!(
            encode(&Path::instance(3, 0), &n),
            Err(FormatError::Unsupported { .. })
        ));
        // Reserved instance id.
        let o = Node::Object(ObjectNode::new(3, [InstanceNode::new(MAX_ID, [])]));
        assert!(matches!(
            encode(&Path::object(3), &o),
            Err(FormatError::InvalidPath { .. })
        ));
        // A value of 2^24 bytes does not fit a 24-bit length; 2^24-1 does.
        let p = Path::resource(10000, 0, 0);
        let big = Node::Resource(ResourceNode::single(0, Value::Opaque(vec![0; MAX_VALUE_LEN + 1])));
        assert!(matches!(encode(&p, &big), Err(FormatError::Unsupported { .. })));
        let max = Node::Resource(ResourceNode::single(0, Value::Opaque(vec![0; MAX_VALUE_LEN])));
        let bytes = encode(&p, &max).unwrap();
        assert_eq!(bytes[..5], [0xD8, 0x00, 0xFF, 0xFF, 0xFF]);
        // Content adding up beyond 2^24-1 inside one instance TLV.
        let inst = InstanceNode::new(
            0,
            [
                ResourceNode::single(0, Value::Opaque(vec![0; MAX_VALUE_LEN / 2])),
                ResourceNode::single(1, Value::Opaque(vec![0; MAX_VALUE_LEN / 2])),
            ],
        );
        assert!(matches!(
            encode(&Path::object(10000), &Node::Object(ObjectNode::new(10000, [inst]))),
            Err(FormatError::Unsupported { .. })
        ));
    }

    // ------------------------------------------------------------------------------------------
    // Property tests
    // ------------------------------------------------------------------------------------------

    const TYPES: [DataType; 9] = [
        DataType::String,
        DataType::Integer,
        DataType::UnsignedInteger,
        DataType::Float,
        DataType::Boolean,
        DataType::Opaque,
        DataType::Time,
        DataType::Objlnk,
        DataType::Corelnk,
    ];
    const PROP_OBJECT: u16 = 20000;

    /// The generated model: resource `r` has type `TYPES[r % 9]` and is multiple when `r / 9` is odd.
    fn prop_type(r: u16) -> (DataType, bool) {
        (TYPES[usize::from(r % 9)], (r / 9) % 2 == 1)
    }

    fn prop_models() -> ModelRegistry {
        let mut m = ModelRegistry::new();
        let ids = (0u16..40).chain(250..270).chain([1000, 1009, 65534, 65535]);
        m.add(object(
            PROP_OBJECT,
            ids.map(|r| {
                let (t, multi) = prop_type(r);
                res(r, t, multi)
            })
            .collect(),
        ));
        m
    }

    fn resource_id() -> impl Strategy<Value = u16> {
        prop_oneof![0u16..40, 250u16..270, Just(1000), Just(1009), Just(65534), Just(65535)]
    }

    fn value_of(t: DataType) -> BoxedStrategy<Value> {
        match t {
            DataType::String => ".{0,12}".prop_map(Value::String).boxed(),
            DataType::Corelnk => "[ -~]{0,12}".prop_map(Value::Corelnk).boxed(),
            DataType::Integer => any::<i64>().prop_map(Value::Integer).boxed(),
            DataType::Time => prop_oneof![any::<i64>(), -200i64..200].prop_map(Value::Time).boxed(),
            DataType::UnsignedInteger => prop_oneof![any::<u64>(), 0u64..300]
                .prop_map(Value::UnsignedInteger)
                .boxed(),
            DataType::Float => prop_oneof![
                any::<f64>().prop_filter("no NaN", |f| !f.is_nan()),
                any::<f32>().prop_filter("no NaN", |f| !f.is_nan()).prop_map(f64::from),
            ]
            .prop_map(Value::Float)
            .boxed(),
            DataType::Boolean => any::<bool>().prop_map(Value::Boolean).boxed(),
            DataType::Opaque => proptest::collection::vec(any::<u8>(), 0..300)
                .prop_map(Value::Opaque)
                .boxed(),
            DataType::Objlnk => (any::<u16>(), any::<u16>())
                .prop_map(|(o, i)| Value::Objlnk(ObjLink::new(o, i)))
                .boxed(),
            DataType::None => Just(Value::Opaque(vec![])).boxed(),
        }
    }

    fn typed_resource(r: u16) -> BoxedStrategy<ResourceNode> {
        let (t, multi) = prop_type(r);
        if multi {
            proptest::collection::btree_map(any::<u16>(), value_of(t), 0..4)
                .prop_map(move |m| ResourceNode {
                    id: r,
                    value: ResourceValue::Multiple(m),
                })
                .boxed()
        } else {
            value_of(t).prop_map(move |v| ResourceNode::single(r, v)).boxed()
        }
    }

    fn typed_instance() -> impl Strategy<Value = InstanceNode> {
        (0u16..65535, proptest::collection::btree_set(resource_id(), 0..8)).prop_flat_map(|(id, rids)| {
            let res: Vec<_> = rids.into_iter().map(typed_resource).collect();
            res.prop_map(move |rs| InstanceNode::new(id, rs))
        })
    }

    fn opaque_resource() -> impl Strategy<Value = ResourceNode> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..20).prop_map(Value::Opaque);
        (
            any::<u16>(),
            prop_oneof![
                bytes().prop_map(ResourceValue::Single),
                proptest::collection::btree_map(any::<u16>(), bytes(), 0..4).prop_map(ResourceValue::Multiple),
            ],
        )
            .prop_map(|(id, value)| ResourceNode { id, value })
    }

    proptest! {
        #[test]
        fn typed_instance_round_trip(inst in typed_instance()) {
            let m = prop_models();
            let p = Path::instance(PROP_OBJECT, inst.id);
            let node = Node::Instance(inst);
            let bytes = encode(&p, &node).unwrap();
            prop_assert_eq!(decode(&p, &bytes, &m).unwrap(), node.clone());
            // Every resource and resource instance also round-trips on its own path.
            let Node::Instance(inst) = &node else { unreachable!() };
            for r in inst.resources.values() {
                let rp = Path::resource(PROP_OBJECT, inst.id, r.id);
                let rn = Node::Resource(r.clone());
                prop_assert_eq!(decode(&rp, &encode(&rp, &rn).unwrap(), &m).unwrap(), rn);
                if let ResourceValue::Multiple(vals) = &r.value {
                    for (ri, v) in vals {
                        let rip = Path::resource_instance(PROP_OBJECT, inst.id, r.id, *ri);
                        let rin = Node::ResourceInstance { id: *ri, value: v.clone() };
                        prop_assert_eq!(decode(&rip, &encode(&rip, &rin).unwrap(), &m).unwrap(), rin);
                    }
                }
            }
        }

        #[test]
        fn typed_object_round_trip(insts in proptest::collection::vec(typed_instance(), 0..4)) {
            let m = prop_models();
            let p = Path::object(PROP_OBJECT);
            let node = Node::Object(ObjectNode::new(PROP_OBJECT, insts));
            let bytes = encode(&p, &node).unwrap();
            prop_assert_eq!(decode(&p, &bytes, &m).unwrap(), node);
        }

        #[test]
        fn opaque_round_trip_without_models(
            o in any::<u16>(),
            i in 0u16..65535,
            rs in proptest::collection::vec(opaque_resource(), 0..6),
        ) {
            let inst = InstanceNode::new(i, rs);
            let node = Node::Object(ObjectNode::new(o, [inst.clone()]));
            let bytes = encode(&Path::object(o), &node).unwrap();
            prop_assert_eq!(decode(&Path::object(o), &bytes, &NoModels).unwrap(), node);
            // The same bytes, wrapped, decode at the instance path too.
            prop_assert_eq!(decode(&Path::instance(o, i), &bytes, &NoModels).unwrap(), Node::Instance(inst));
        }

        #[test]
        fn decode_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            depth in 0usize..5,
            typed in any::<bool>(),
        ) {
            let ids = [3u16, 0, 6, 0];
            let p = Path::from_ids(&ids[..depth]).unwrap();
            let m = models();
            let models: &dyn Models = if typed { &m } else { &NoModels };
            if let Ok(node) = decode(&p, &bytes, models) {
                // Whatever decodes, re-encodes and decodes to the same node.
                if depth > 0 {
                    let again = encode(&p, &node).unwrap();
                    prop_assert_eq!(decode(&p, &again, models).unwrap(), node);
                }
            }
        }
    }
}
