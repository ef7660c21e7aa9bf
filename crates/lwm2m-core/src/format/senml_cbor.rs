//! SenML CBOR (112), digest §8.6: a CBOR array of maps with integer labels.
//!
//! This module only maps bytes to and from [`SenmlRecord`]s; names, times, types and the choice of
//! `bn`/`bt` are done in [`super::senml`].
//!
//! * Labels: `bn` −2, `bt` −3, `n` 0, `v` 2, `vs` 3, `vb` 4, `t` 6, `vd` 8 and the text key
//!   `"vlo"`. Maps are written with definite lengths in the order `bn`, `bt`, `n`, `t`, value;
//!   integers in their shortest form, floats as binary32 when that is exact, else binary64.
//! * Reading accepts labels in any order, definite and indefinite lengths (arrays, maps, strings),
//!   and half, single and double floats. Unknown labels are skipped (the other SenML labels such as
//!   `bver`, `bu`, `u`, `s`, `ut` are not used by LwM2M); text labels ending in `_` are rejected
//!   (mandatory to understand, RFC 8428 §4.4). Rejected: a pack that is not an array, a record that
//!   is not a map, a label that is neither an integer nor text, a known label with a value of the
//!   wrong CBOR type (tags included), a label repeated in one record, and bytes after the pack.
//!   Integers below `i64::MIN` read as floats.
//! * [`decode_paths`] ignores value fields (after checking their CBOR type).
use minicbor::data::Type;
use minicbor::{Decoder, Encoder};

use crate::error::FormatError;
use crate::format::senml::{self, Number, SenmlRecord};
use crate::format::ContentFormat;
use crate::model::Models;
use crate::node::Record;
use crate::path::Path;
const F: ContentFormat = ContentFormat::SenmlCbor;

/// Encodes records; `base` is the request path (used as base name where it fits).
pub fn encode(base: &Path, records: &[Record]) -> Result<Vec<u8>, FormatError> {
    write_pack(&senml::from_records(base, records))
}

/// Decodes a pack into records with absolute paths, typed by the models.
pub fn decode(payload: &[u8], models: &dyn Models) -> Result<Vec<Record>, FormatError> {
    senml::to_records(F, read_pack(payload)?, models)
}

/// Encodes a composite request (names only).
pub fn encode_paths(paths: &[Path]) -> Result<Vec<u8>, FormatError> {
    write_pack(&senml::from_paths(paths))
}

/// Decodes a composite request (names only). Value fields, if any, are ignored.
pub fn decode_paths(payload: &[u8]) -> Result<Vec<Path>, FormatError> {
    senml::to_paths(F, &read_pack(payload)?)
}

type EncResult = Result<(), minicbor::encode::Error<std::convert::Infallible>>;

fn write_number(e: &mut Encoder<Vec<u8>>, n: Number) -> EncResult {
    match n {
        Number::Int(i) => e.i64(i)?,
        Number::UInt(u) => e.u64(u)?,
        Number::Float(f) => {
            let narrow = f as f32;
            if f64::from(narrow) == f || f.is_nan() {
                e.f32(narrow)?
            } else {
                e.f64(f)?
            }
        }
    };
    Ok(())
}

fn write_record(e: &mut Encoder<Vec<u8>>, r: &SenmlRecord) -> EncResult {
    let fields = [
        r.bn.is_some(),
        r.bt.is_some(),
        r.n.is_some(),
        r.t.is_some(),
        r.v.is_some(),
        r.vs.is_some(),
        r.vb.is_some(),
        r.vd.is_some(),
        r.vlo.is_some(),
    ];
    e.map(fields.iter().filter(|f| **f).count() as u64)?;
    if let Some(bn) = &r.bn {
        e.i8(-2)?.str(bn)?;
    }
    if let Some(bt) = r.bt {
        e.i8(-3)?;
        write_number(e, bt)?;
    }
    if let Some(n) = &r.n {
        e.u8(0)?.str(n)?;
    }
    if let Some(t) = r.t {
        e.u8(6)?;
        write_number(e, t)?;
    }
    if let Some(v) = r.v {
        e.u8(2)?;
        write_number(e, v)?;
    }
    if let Some(vs) = &r.vs {
        e.u8(3)?.str(vs)?;
    }
    if let Some(vb) = r.vb {
        e.u8(4)?.bool(vb)?;
    }
    if let Some(vd) = &r.vd {
        e.u8(8)?.bytes(vd)?;
    }
    if let Some(vlo) = &r.vlo {
        e.str("vlo")?.str(vlo)?;
    }
    Ok(())
}

fn write_pack(pack: &[SenmlRecord]) -> Result<Vec<u8>, FormatError> {
    let mut e = Encoder::new(Vec::new());
    let mut write = || -> EncResult {
        e.array(pack.len() as u64)?;
        for r in pack {
            write_record(&mut e, r)?;
        }
        Ok(())
    };
    write().map_err(|err| FormatError::Unsupported {
        format: F,
        reason: format!("CBOR encoding failed: {err}"),
    })?;
    Ok(e.into_writer())
}

/// Maps a minicbor error: end of input is [`FormatError::Truncated`], anything else malformed.
fn cbor_error(payload: &[u8], err: minicbor::decode::Error) -> FormatError {
    if err.is_end_of_input() {
        FormatError::Truncated {
            format: F,
            offset: payload.len(),
        }
    } else {
        FormatError::malformed(F, err.position(), format!("invalid CBOR: {err}"))
    }
}

/// Reads the pack and its records, carrying the payload for error mapping.
struct Reader<'b> {
    payload: &'b [u8],
    d: Decoder<'b>,
}

/// A map key.
enum Label {
    Int(i128),
    Text(String),
}

impl<'b> Reader<'b> {
    fn err(&self, e: minicbor::decode::Error) -> FormatError {
        cbor_error(self.payload, e)
    }

    fn datatype(&self) -> Result<Type, FormatError> {
        self.d.datatype().map_err(|e| self.err(e))
    }

    /// Consumes a break byte if one is next (end of an indefinite-length item).
    fn at_break(&mut self) -> Result<bool, FormatError> {
        if self.datatype()? == Type::Break {
            let next = self.d.position().saturating_add(1);
            self.d.set_position(next);
            return Ok(true);
        }
        Ok(false)
    }

    fn wrong_type(&self, index: usize, label: &str, expected: &str, found: Type) -> FormatError {
        FormatError::malformed(
            F,
            Some(self.d.position()),
            format!("record {index}: {label} must be {expected}, found {found}"),
        )
    }

    fn text(&mut self, index: usize, label: &str) -> Result<String, FormatError> {
        match self.datatype()? {
            Type::String => self.d.str().map(str::to_string).map_err(|e| self.err(e)),
            Type::StringIndef => {
                let mut out = String::new();
                let chunks = self.d.str_iter().map_err(|e| cbor_error(self.payload, e))?;
                for chunk in chunks {
                    out.push_str(chunk.map_err(|e| cbor_error(self.payload, e))?);
                }
                Ok(out)
            }
            t => Err(self.wrong_type(index, label, "a text string", t)),
        }
    }

    fn bytes(&mut self, index: usize, label: &str) -> Result<Vec<u8>, FormatError> {
        match self.datatype()? {
            Type::Bytes => self.d.bytes().map(<[u8]>::to_vec).map_err(|e| self.err(e)),
            Type::BytesIndef => {
                let mut out = Vec::new();
                let chunks = self.d.bytes_iter().map_err(|e| cbor_error(self.payload, e))?;
                for chunk in chunks {
                    out.extend_from_slice(chunk.map_err(|e| cbor_error(self.payload, e))?);
                }
                Ok(out)
            }
            t => Err(self.wrong_type(index, label, "a byte string", t)),
        }
    }

    fn boolean(&mut self, index: usize, label: &str) -> Result<bool, FormatError> {
        match self.datatype()? {
            Type::Bool => self.d.bool().map_err(|e| self.err(e)),
            t => Err(self.wrong_type(index, label, "a boolean", t)),
        }
    }

    fn number(&mut self, index: usize, label: &str) -> Result<Number, FormatError> {
        let r = match self.datatype()? {
            Type::U8 | Type::U16 | Type::U32 | Type::U64 => self.d.u64().map(Number::from_u64),
            Type::I8 | Type::I16 | Type::I32 | Type::I64 => self.d.i64().map(Number::Int),
            Type::Int => self.d.int().map(|i| Number::Float(i128::from(i) as f64)),
            Type::F16 => return self.half(),
            Type::F32 => self.d.f32().map(|f| Number::Float(f64::from(f))),
            Type::F64 => self.d.f64().map(Number::Float),
            t => return Err(self.wrong_type(index, label, "a number", t)),
        };
        r.map_err(|e| self.err(e))
    }

    /// A half-precision float (minicbor decodes those only with its `half` feature).
    fn half(&mut self) -> Result<Number, FormatError> {
        let p = self.d.position();
        let bits = match (
            self.payload.get(p.saturating_add(1)),
            self.payload.get(p.saturating_add(2)),
        ) {
            (Some(a), Some(b)) => u16::from_be_bytes([*a, *b]),
            _ => {
                return Err(FormatError::Truncated {
                    format: F,
                    offset: self.payload.len(),
                })
            }
        };
        self.d.set_position(p.saturating_add(3));
        Ok(Number::Float(f16_to_f64(bits)))
    }

    fn label(&mut self, index: usize) -> Result<Label, FormatError> {
        match self.datatype()? {
            Type::U8 | Type::U16 | Type::U32 | Type::U64 | Type::I8 | Type::I16 | Type::I32 | Type::I64 | Type::Int => {
                self.d.int().map(|i| Label::Int(i128::from(i))).map_err(|e| self.err(e))
            }
            Type::String | Type::StringIndef => self.text(index, "a label").map(Label::Text),
            t => Err(FormatError::malformed(
                F,
                Some(self.d.position()),
                format!("record {index}: a label must be an integer or a text string, found {t}"),
            )),
        }
    }

    fn record(&mut self, index: usize) -> Result<SenmlRecord, FormatError> {
        let len = match self.datatype()? {
            Type::Map | Type::MapIndef => self.d.map().map_err(|e| self.err(e))?,
            t => {
                return Err(FormatError::malformed(
                    F,
                    Some(self.d.position()),
                    format!("record {index} must be a map, found {t}"),
                ))
            }
        };
        let mut r = SenmlRecord::default();
        let mut k = 0u64;
        loop {
            match len {
                Some(n) if k >= n => break,
                None if self.at_break()? => break,
                _ => {}
            }
            let at = self.d.position();
            let dup =
                |name: &str| FormatError::malformed(F, Some(at), format!("record {index}: label {name} appears twice"));
            match self.label(index)? {
                Label::Int(-2) => {
                    let v = self.text(index, "bn")?;
                    put(&mut r.bn, v).map_err(|_| dup("bn"))?
                }
                Label::Int(-3) => {
                    let v = self.number(index, "bt")?;
                    put(&mut r.bt, v).map_err(|_| dup("bt"))?
                }
                Label::Int(0) => {
                    let v = self.text(index, "n")?;
                    put(&mut r.n, v).map_err(|_| dup("n"))?
                }
                Label::Int(2) => {
                    let v = self.number(index, "v")?;
                    put(&mut r.v, v).map_err(|_| dup("v"))?
                }
                Label::Int(3) => {
                    let v = self.text(index, "vs")?;
                    put(&mut r.vs, v).map_err(|_| dup("vs"))?
                }
                Label::Int(4) => {
                    let v = self.boolean(index, "vb")?;
                    put(&mut r.vb, v).map_err(|_| dup("vb"))?
                }
                Label::Int(6) => {
                    let v = self.number(index, "t")?;
                    put(&mut r.t, v).map_err(|_| dup("t"))?
                }
                Label::Int(8) => {
                    let v = self.bytes(index, "vd")?;
                    put(&mut r.vd, v).map_err(|_| dup("vd"))?
                }
                Label::Text(t) if t == "vlo" => {
                    let v = self.text(index, "vlo")?;
                    put(&mut r.vlo, v).map_err(|_| dup("vlo"))?
                }
                Label::Text(t) if t.ends_with('_') => {
                    return Err(FormatError::malformed(
                        F,
                        Some(at),
                        format!("record {index}: unsupported mandatory label {:?}", senml::excerpt(&t)),
                    ))
                }
                _ => self.d.skip().map_err(|e| self.err(e))?,
            }
            k = k.saturating_add(1);
        }
        Ok(r)
    }

    fn pack(&mut self) -> Result<Vec<SenmlRecord>, FormatError> {
        let len = match self.datatype()? {
            Type::Array | Type::ArrayIndef => self.d.array().map_err(|e| self.err(e))?,
            t => {
                return Err(FormatError::malformed(
                    F,
                    Some(0),
                    format!("a SenML pack must be a CBOR array, found {t}"),
                ))
            }
        };
        // no capacity from the declared length: it is not trusted
        let mut out = Vec::new();
        let mut i = 0usize;
        loop {
            match len {
                Some(n) if i as u64 >= n => break,
                None if self.at_break()? => break,
                _ => {}
            }
            out.push(self.record(i)?);
            i = i.saturating_add(1);
        }
        let end = self.d.position();
        if end < self.payload.len() {
            return Err(FormatError::TrailingData { format: F, offset: end });
        }
        Ok(out)
    }
}

/// Stores `v` in an empty slot; `Err(())` if the slot was already filled.
fn put<T>(slot: &mut Option<T>, v: T) -> Result<(), ()> {
    if slot.is_some() {
        return Err(());
    }
    *slot = Some(v);
    Ok(())
}

/// IEEE 754 binary16 to f64 (RFC 8949 Appendix D).
fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let mant = f64::from(h & 0x3ff);
    let mag = match exp {
        0 => mant * 2f64.powi(-24),
        31 if mant == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + mant / 1024.0) * 2f64.powi(e - 15),
    };
    sign * mag
}

fn read_pack(payload: &[u8]) -> Result<Vec<SenmlRecord>, FormatError> {
    Reader {
        payload,
        d: Decoder::new(payload),
    }
    .pack()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::senml::test_models::models;
    use crate::model::NoModels;
    use crate::value::{ObjLink, Value};
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s.replace([' ', '\n'], "")).unwrap()
    }

    fn rec(p: &str, value: Value) -> Record {
        Record::new(p.parse().unwrap(), value)
    }

    const READ_3_0: &str =
        "84 A3 21 65 2F 33 2F 30 2F 00 61 30 03 74 4F 70 65 6E 20 4D 6F 62 69 6C 65 20 41 6C 6C 69 61 6E 63 65
        A2 00 61 39 02 18 64  A2 00 62 31 33 02 1A 51 82 42 8F  A2 00 62 31 36 03 61 55";
    const OBJLNK: &str = "81 A2 00 69 2F 36 35 2F 30 2F 30 2F 30 63 76 6C 6F 64 36 36 3A 30";
    const OPAQUE_BOOL: &str = "82 A2 00 6B 2F 33 34 34 32 2F 30 2F 31 35 30 08 48 01 23 45 67 89 AB CD EF A2 00 6B 2F 33 34 34 32 2F 30 2F 31 34 30 04 F5";
    const COMPOSITE: &str = "82 A1 00 66 2F 33 2F 30 2F 39 A1 00 66 2F 31 2F 30 2F 31";

    fn read_3_0_records() -> Vec<Record> {
        vec![
            rec("/3/0/0", Value::String("Open Mobile Alliance".into())),
            rec("/3/0/9", Value::Integer(100)),
            rec("/3/0/13", Value::Time(1367491215)),
            rec("/3/0/16", Value::String("U".into())),
        ]
    }

    fn opaque_bool_records() -> Vec<Record> {
        vec![
            rec(
                "/3442/0/150",
                Value::Opaque(vec![0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF]),
            ),
            rec("/3442/0/140", Value::Boolean(true)),
        ]
    }

    #[test]
    fn read_instance_example() {
        let recs = read_3_0_records();
        assert_eq!(encode(&Path::instance(3, 0), &recs).unwrap(), hex(READ_3_0));
        assert_eq!(decode(&hex(READ_3_0), &models()).unwrap(), recs);
    }

    #[test]
    fn objlnk_example() {
        let recs = vec![rec("/65/0/0/0", Value::Objlnk(ObjLink::new(66, 0)))];
        assert_eq!(encode(&Path::ROOT, &recs).unwrap(), hex(OBJLNK));
        assert_eq!(decode(&hex(OBJLNK), &models()).unwrap(), recs);
        assert_eq!(decode(&hex(OBJLNK), &NoModels).unwrap(), recs);
        // vs "66:0" for an Objlnk resource: {0:"/65/0/0/0",3:"66:0"}
        let vs = hex("81 A2 00 69 2F 36 35 2F 30 2F 30 2F 30 03 64 36 36 3A 30");
        assert_eq!(decode(&vs, &models()).unwrap(), recs);
    }

    #[test]
    fn opaque_and_boolean_example() {
        assert_eq!(encode(&Path::ROOT, &opaque_bool_records()).unwrap(), hex(OPAQUE_BOOL));
        assert_eq!(decode(&hex(OPAQUE_BOOL), &models()).unwrap(), opaque_bool_records());
        assert_eq!(decode(&hex(OPAQUE_BOOL), &NoModels).unwrap(), opaque_bool_records());
    }

    #[test]
    fn composite_request_example() {
        let paths = vec![Path::resource(3, 0, 9), Path::resource(1, 0, 1)];
        assert_eq!(encode_paths(&paths).unwrap(), hex(COMPOSITE));
        assert_eq!(decode_paths(&hex(COMPOSITE)).unwrap(), paths);
        // [{0:"/"}]
        assert_eq!(encode_paths(&[Path::ROOT]).unwrap(), hex("81 A1 00 61 2F"));
        assert_eq!(decode_paths(&hex("81 A1 00 61 2F")).unwrap(), [Path::ROOT]);
        // [{-2:"/3/0/",0:"9",2:1}]: bn + n, value ignored
        assert_eq!(
            decode_paths(&hex("81 A3 21 65 2F 33 2F 30 2F 00 61 39 02 01")).unwrap(),
            [Path::resource(3, 0, 9)]
        );
    }

    #[test]
    fn send_example_with_base_time() {
        let p = Path::resource(3303, 0, 5700);
        let recs = vec![
            Record {
                path: p,
                value: Value::Float(21.5),
                time: Some(1_700_000_000.0),
            },
            Record {
                path: p,
                value: Value::Float(21.7),
                time: Some(1_700_000_060.0),
            },
        ];
        // [{-2:"/3303/0/5700",-3:1700000000,2:21.5(f32)},{6:60,2:21.7(f64)}]
        let bytes = hex(
            "82 A3 21 6C 2F 33 33 30 33 2F 30 2F 35 37 30 30 22 1A 65 53 F1 00 02 FA 41 AC 00 00
             A2 06 18 3C 02 FB 40 35 B3 33 33 33 33 33",
        );
        assert_eq!(encode(&p, &recs).unwrap(), bytes);
        assert_eq!(decode(&bytes, &models()).unwrap(), recs);
    }

    #[test]
    fn flexible_decoding() {
        // indefinite array, indefinite map, labels out of order, indefinite text, f16 value,
        // unknown labels (bver -1, u 1, "foo") skipped
        let bytes = hex(
            "9F BF 02 F9 3E 00 20 0A 00 7F 62 2F 33 63 2F 30 2F 62 39 39 FF 01 63 25 25 25 63 66 6F 6F 80 FF
                A2 00 69 2F 33 33 30 33 2F 30 2F 31 04 F4 FF",
        );
        // 0x3E00 = 1.5; name "/3" "/0/" "99" = "/3/0/99"
        let got = decode(&bytes, &NoModels).unwrap();
        assert_eq!(
            got,
            [
                rec("/3/0/99", Value::Float(1.5)),
                rec("/3303/0/1", Value::Boolean(false))
            ]
        );
        // f16/f32/f64 all accepted for a Float resource; integers for Float too
        for v in ["F9 4D 60", "FA 41 AC 00 00", "FB 40 35 80 00 00 00 00 00", "15"] {
            let b = hex(&format!("81 A2 00 6C 2F 33 33 30 33 2F 30 2F 35 37 30 30 02 {v}"));
            let got = decode(&b, &models()).unwrap();
            assert!(matches!(got[0].value, Value::Float(f) if f == 21.5 || f == 21.0), "{v}");
        }
        // integers at the extremes
        let b = hex("82 A2 00 66 2F 31 2F 30 2F 31 02 1B FF FF FF FF FF FF FF FF A2 00 66 2F 33 2F 30 2F 39 02 3B 7F FF FF FF FF FF FF FF");
        let got = decode(&b, &models()).unwrap();
        assert_eq!(got[0].value, Value::UnsignedInteger(u64::MAX));
        assert_eq!(got[1].value, Value::Integer(i64::MIN));
        assert_eq!(encode(&Path::ROOT, &got).unwrap(), b);
        // below i64::MIN: read as a float, so not an Integer
        let b = hex("81 A2 00 66 2F 33 2F 30 2F 39 02 3B FF FF FF FF FF FF FF FF");
        assert!(matches!(decode(&b, &models()), Err(FormatError::Value { .. })));
        assert_eq!(
            decode(&b, &NoModels).unwrap()[0].value,
            Value::Float(-18446744073709551616.0)
        );
        // indefinite byte string for vd
        let b = hex("81 A2 00 6B 2F 33 34 34 32 2F 30 2F 31 35 30 08 5F 41 01 42 02 03 FF");
        assert_eq!(decode(&b, &models()).unwrap()[0].value, Value::Opaque(vec![1, 2, 3]));
    }

    #[test]
    fn half_floats() {
        assert_eq!(f16_to_f64(0x3C00), 1.0);
        assert_eq!(f16_to_f64(0xC000), -2.0);
        assert_eq!(f16_to_f64(0x7BFF), 65504.0);
        assert_eq!(f16_to_f64(0x0001), 5.960_464_477_539_063e-8);
        assert_eq!(f16_to_f64(0x7C00), f64::INFINITY);
        assert!(f16_to_f64(0x7E00).is_nan());
        assert_eq!(f16_to_f64(0x8000), 0.0);
    }

    #[test]
    fn errors() {
        let m = models();
        let d = |s: &str| decode(&hex(s), &m);
        // trailing bytes
        let mut b = hex(OBJLNK);
        b.push(0x00);
        assert_eq!(
            decode(&b, &m),
            Err(FormatError::TrailingData {
                format: F,
                offset: b.len() - 1
            })
        );
        // empty payload, not an array, record not a map
        assert!(matches!(d(""), Err(FormatError::Truncated { offset: 0, .. })));
        assert!(matches!(d("A0"), Err(FormatError::Malformed { .. })));
        assert!(matches!(d("81 01"), Err(FormatError::Malformed { .. })));
        assert!(matches!(d("81 80"), Err(FormatError::Malformed { .. })));
        // label neither int nor text
        assert!(matches!(d("81 A1 40 01"), Err(FormatError::Malformed { .. })));
        // known labels with the wrong CBOR type: n as int, v as text, vb as int, vd as text, tagged v
        assert!(matches!(d("81 A2 00 01 02 01"), Err(FormatError::Malformed { .. })));
        assert!(matches!(
            d("81 A2 00 66 2F 33 2F 30 2F 39 02 61 31"),
            Err(FormatError::Malformed { .. })
        ));
        assert!(matches!(
            d("81 A2 00 66 2F 33 2F 30 2F 39 04 01"),
            Err(FormatError::Malformed { .. })
        ));
        assert!(matches!(
            d("81 A2 00 66 2F 33 2F 30 2F 39 08 61 31"),
            Err(FormatError::Malformed { .. })
        ));
        assert!(matches!(
            d("81 A2 00 66 2F 33 2F 30 2F 39 02 C1 01"),
            Err(FormatError::Malformed { .. })
        ));
        // repeated label
        let err = d("81 A3 00 66 2F 33 2F 30 2F 39 02 01 02 02").unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
        // two value fields; no value
        let err = d("81 A3 00 66 2F 33 2F 30 2F 39 02 01 03 61 31").unwrap_err();
        assert!(err.to_string().contains("several values"), "{err}");
        assert!(matches!(
            d("81 A1 00 66 2F 33 2F 30 2F 39"),
            Err(FormatError::MissingValue { .. })
        ));
        // wrong type for the model: vs for an Integer resource
        assert!(matches!(
            d("81 A2 00 66 2F 33 2F 30 2F 39 03 61 31"),
            Err(FormatError::Value { .. })
        ));
        // name not a path; relative name without bn
        assert!(matches!(
            d("81 A2 00 66 2F 33 2F 30 2F 78 02 01"),
            Err(FormatError::InvalidPath { .. })
        ));
        assert!(matches!(d("81 A2 00 61 39 02 01"), Err(FormatError::Malformed { .. })));
        // mandatory-to-understand label
        assert!(matches!(
            d("81 A3 00 66 2F 33 2F 30 2F 39 02 01 62 78 5F 01"),
            Err(FormatError::Malformed { .. })
        ));
        // invalid UTF-8 in a name; reserved additional info; a break where a label belongs
        assert!(matches!(d("81 A2 00 61 FF 02 01"), Err(FormatError::Malformed { .. })));
        assert!(matches!(d("81 A2 00 7C 02 01"), Err(FormatError::Malformed { .. })));
        assert!(matches!(d("81 A1 FF"), Err(FormatError::Malformed { .. })));
        // a huge declared length does not allocate or panic
        assert!(matches!(
            d("9B FF FF FF FF FF FF FF FF"),
            Err(FormatError::Truncated { .. })
        ));
        assert!(matches!(
            d("81 BB FF FF FF FF FF FF FF FF"),
            Err(FormatError::Truncated { .. })
        ));
        assert!(matches!(
            d("81 A1 00 7B FF FF FF FF FF FF FF FF"),
            Err(FormatError::Truncated { .. } | FormatError::Malformed { .. })
        ));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        // an unknown label (u = 1) whose value is 100000 nested indefinite arrays
        let mut b = hex("81 A1 01");
        b.extend_from_slice(&[0x9F; 100_000]);
        assert!(matches!(decode(&b, &models()), Err(FormatError::Truncated { .. })));
        b.extend_from_slice(&[0xFF; 100_000]);
        // fully closed: the record is read to its end and fails for its missing name
        let err = decode(&b, &models()).unwrap_err();
        assert!(err.to_string().contains("not an absolute"), "{err}");
    }

    #[test]
    fn truncation_at_every_byte_is_an_error() {
        for example in [READ_3_0, OBJLNK, OPAQUE_BOOL, COMPOSITE] {
            let b = hex(example);
            for cut in 0..b.len() {
                assert!(decode(&b[..cut], &models()).is_err(), "{example} cut at {cut}");
                assert!(decode_paths(&b[..cut]).is_err(), "{example} cut at {cut}");
            }
        }
    }

    proptest! {
        #[test]
        fn round_trip((base, recs) in senml::strategies::records()) {
            let out = encode(&base, &recs).unwrap();
            prop_assert_eq!(decode(&out, &models()).unwrap(), recs);
        }

        #[test]
        fn non_finite_floats_round_trip(f in prop_oneof![Just(f64::INFINITY), Just(f64::NEG_INFINITY)], t in any::<f64>()) {
            let recs = vec![Record { path: Path::resource(3303, 0, 5700), value: Value::Float(f), time: Some(t) }];
            let got = decode(&encode(&Path::ROOT, &recs).unwrap(), &models()).unwrap();
            prop_assert_eq!(&got[0].value, &recs[0].value);
            prop_assert!(got[0].time == Some(t) || t.is_nan());
        }

        #[test]
        fn paths_round_trip(ids in proptest::collection::vec(proptest::collection::vec(0u16..65535, 0..=4), 0..6)) {
            let paths: Vec<Path> = ids.iter().map(|i| Path::from_ids(i).unwrap()).collect();
            prop_assert_eq!(decode_paths(&encode_paths(&paths).unwrap()).unwrap(), paths);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes, &models());
            let _ = decode_paths(&bytes);
        }

        #[test]
        fn mutated_examples_never_panic(i in 0usize..4, pos in 0usize..64, byte in any::<u8>()) {
            let mut b = hex([READ_3_0, OBJLNK, OPAQUE_BOOL, COMPOSITE][i]);
            let p = pos % b.len();
            b[p] = byte;
            let _ = decode(&b, &models());
            let _ = decode_paths(&b);
        }
    }
}
