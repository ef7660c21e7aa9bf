//! application/cbor (60): one value as one CBOR data item (digest §8.2, §8.4, §12 #7).
//!
//! Encoding (RFC 8949 preferred serialization where it applies):
//! * String, Corelnk: text string (major 3). Objlnk: text string `"oid:iid"`.
//! * Integer: major 0 or 1, smallest width. Unsigned Integer: major 0, smallest width.
//! * Time: an untagged integer (digest §12 #7).
//! * Float: the smallest of binary32 / binary64 that holds the value exactly (`1.5` is `FA 3F C0 00 00`,
//!   `0.1` is `FB ...`). Half precision is never emitted.
//! * Boolean: `F4` / `F5`. Opaque: byte string (major 2).
//!
//! Decoding with a type from the model converts what the item holds to that type
//! ([`Value::convert`]): integers are range-checked, an integer is accepted for a Float, an integral
//! float for an integer type, a text `"oid:iid"` for an Objlnk. Tag 1 (epoch time) is accepted around
//! a number, and the self-describe tag 55799 is skipped; any other tag is an error. Floats of every width
//! (half, single, double) and indefinite-length strings are accepted.
//!
//! Decoding without a type infers it from the item: unsigned integers up to `i64::MAX` and negative
//! integers are Integer, larger unsigned ones Unsigned Integer, a tag-1 integer is Time, floats Float,
//! text String, bytes Opaque, `F4`/`F5` Boolean.
//!
//! Exactly one item: bytes after it are [`FormatError::TrailingData`]. Arrays, maps, null, undefined
//! and other simple values are not LwM2M values and are rejected.
use minicbor::data::Type;
use minicbor::{Decoder, Encoder};

use crate::error::{FormatError, ValueError};
use crate::format::ContentFormat;
use crate::path::Path;
use crate::value::{DataType, Value};
const F: ContentFormat = ContentFormat::Cbor;

/// CBOR tag 1: epoch-based date/time.
const TAG_EPOCH: u64 = 1;
/// CBOR tag 55799: self-described CBOR (carries no meaning).
const TAG_SELF_DESCRIBE: u64 = 55799;

/// Encodes one value as a CBOR data item.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut e = Encoder::new(Vec::new());
    // Writing into a Vec cannot fail, so the results carry no information.
    let written = match value {
        Value::String(s) | Value::Corelnk(s) => e.str(s),
        Value::Integer(v) | Value::Time(v) => e.i64(*v),
        Value::UnsignedInteger(v) => e.u64(*v),
        Value::Float(f) => {
            let narrow = *f as f32;
            if f64::from(narrow) == *f || f.is_nan() {
                e.f32(narrow)
            } else {
                e.f64(*f)
            }
        }
        Value::Boolean(b) => e.bool(*b),
        Value::Opaque(b) => e.bytes(b),
        Value::Objlnk(l) => e.str(&l.to_string()),
    };
    written.map(|_| ()).unwrap_or_default();
    e.into_writer()
}

/// Decodes one CBOR data item; `ty` from the model, or inferred from the CBOR major type when unknown.
pub fn decode(path: &Path, payload: &[u8], ty: Option<DataType>) -> Result<Value, FormatError> {
    if ty == Some(DataType::None) {
        return Err(FormatError::Unsupported {
            format: F,
            reason: format!("{path} is an executable resource and has no value"),
        });
    }
    if payload.is_empty() {
        return Err(FormatError::Empty { format: F, path: *path });
    }
    let mut d = Decoder::new(payload);
    let value = read_item(&mut d, path)?;
    let end = d.position();
    if end < payload.len() {
        return Err(FormatError::TrailingData { format: F, offset: end });
    }
    match ty {
        None => Ok(value),
        Some(t) => value.convert(t).map_err(|source| FormatError::Value {
            format: F,
            path: *path,
            source,
        }),
    }
}

/// Maps a minicbor error; `at` is where the item being read starts.
fn cbor_err(e: minicbor::decode::Error, payload_len: usize, at: usize) -> FormatError {
    if e.is_end_of_input() {
        FormatError::Truncated {
            format: F,
            offset: payload_len,
        }
    } else {
        FormatError::malformed(F, Some(e.position().unwrap_or(at)), e.to_string())
    }
}

/// Reads one item (after any tags) into an untyped value.
fn read_item(d: &mut Decoder<'_>, path: &Path) -> Result<Value, FormatError> {
    let len = d.input().len();
    let mut epoch = false;
    // Every tag consumes at least one byte, so this loop ends with the input.
    loop {
        let at = d.position();
        let ty = d.datatype().map_err(|e| cbor_err(e, len, at))?;
        if ty != Type::Tag {
            break;
        }
        let tag = d.tag().map_err(|e| cbor_err(e, len, at))?.as_u64();
        match tag {
            TAG_EPOCH => epoch = true,
            TAG_SELF_DESCRIBE => {}
            other => {
                return Err(FormatError::malformed(
                    F,
                    Some(at),
                    format!("unsupported CBOR tag {other} (only tag 1, epoch time, is understood)"),
                ))
            }
        }
    }
    let at = d.position();
    let err = |e: minicbor::decode::Error| cbor_err(e, len, at);
    let ty = d.datatype().map_err(err)?;
    let value = match ty {
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => {
            let n = d.u64().map_err(err)?;
            match i64::try_from(n) {
                Ok(i) => Value::Integer(i),
                Err(_) => Value::UnsignedInteger(n),
            }
        }
        Type::I8 | Type::I16 | Type::I32 | Type::I64 | Type::Int => {
            let n = d.int().map_err(err)?;
            let v = i64::try_from(n).map_err(|_| FormatError::Value {
                format: F,
                path: *path,
                source: ValueError::OutOfRange {
                    target: DataType::Integer,
                },
            })?;
            Value::Integer(v)
        }
        Type::F16 => {
            let bytes: [u8; 2] = d
                .input()
                .get(at + 1..at + 3)
                .and_then(|b| b.try_into().ok())
                .ok_or(FormatError::Truncated { format: F, offset: len })?;
            let bits = u16::from_be_bytes(bytes);
            d.set_position(at + 3);
            Value::Float(f16_to_f64(bits))
        }
        Type::F32 | Type::F64 => Value::Float(d.f64().map_err(err)?),
        Type::Bool => Value::Boolean(d.bool().map_err(err)?),
        Type::String | Type::StringIndef => {
            let mut s = String::new();
            let utf8 = |e: minicbor::decode::Error| {
                if e.is_end_of_input() || e.is_type_mismatch() {
                    cbor_err(e, len, at)
                } else {
                    FormatError::InvalidUtf8 { format: F, path: *path }
                }
            };
            for chunk in d.str_iter().map_err(utf8)? {
                s.push_str(chunk.map_err(utf8)?);
            }
            Value::String(s)
        }
        Type::Bytes | Type::BytesIndef => {
            let mut b = Vec::new();
            for chunk in d.bytes_iter().map_err(err)? {
                b.extend_from_slice(chunk.map_err(err)?);
            }
            Value::Opaque(b)
        }
        other => {
            let what = match other {
                Type::Array | Type::ArrayIndef => "an array".to_string(),
                Type::Map | Type::MapIndef => "a map".to_string(),
                Type::Null => "null".to_string(),
                Type::Undefined => "undefined".to_string(),
                Type::Break => "a stray break (0xFF)".to_string(),
                Type::Unknown(b) => format!("the reserved initial byte 0x{b:02X}"),
                t => format!("a {t}"),
            };
            return Err(FormatError::malformed(
                F,
                Some(at),
                format!("{what} is not an LwM2M value (expected one number, string, byte string or boolean)"),
            ));
        }
    };
    if !epoch {
        return Ok(value);
    }
    match value {
        Value::Integer(_) | Value::UnsignedInteger(_) | Value::Float(_) => {
            value.convert(DataType::Time).map_err(|source| FormatError::Value {
                format: F,
                path: *path,
                source,
            })
        }
        other => Err(FormatError::malformed(
            F,
            Some(at),
            format!("tag 1 (epoch time) wraps a {} instead of a number", other.data_type()),
        )),
    }
}

/// An IEEE 754 binary16 value, widened (exactly) to `f64`.
fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let mant = f64::from(bits & 0x03ff);
    let magnitude = match exp {
        0 => mant * 2f64.powi(-24),
        31 if mant == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1024.0 + mant) * 2f64.powi(e - 25),
    };
    sign * magnitude
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::ObjLink;
    use proptest::prelude::*;

    fn p() -> Path {
        Path::resource(3442, 0, 110)
    }

    fn hexs(v: &Value) -> String {
        hex::encode(encode(v))
    }

    fn dec(h: &str, ty: Option<DataType>) -> Result<Value, FormatError> {
        decode(&p(), &hex::decode(h.replace(' ', "")).unwrap(), ty)
    }

    #[test]
    fn encode_byte_exact() {
        let cases: Vec<(Value, &str)> = vec![
            (Value::Integer(0), "00"),
            (Value::Integer(23), "17"),
            (Value::Integer(24), "1818"),
            (Value::Integer(100), "1864"),
            (Value::Integer(1000), "1903e8"),
            (Value::Integer(1_000_000), "1a000f4240"),
            (Value::Integer(1_000_000_000_000), "1b000000e8d4a51000"),
            (Value::Integer(-1), "20"),
            (Value::Integer(-100), "3863"),
            (Value::Integer(-1000), "3903e7"),
            (Value::Integer(i64::MIN), "3b7fffffffffffffff"),
            (Value::UnsignedInteger(u64::MAX), "1bffffffffffffffff"),
            (Value::UnsignedInteger(10), "0a"),
            (Value::Time(1476186613), "1a57fcd1f5"),
            (Value::Boolean(true), "f5"),
            (Value::Boolean(false), "f4"),
            (Value::Float(1.5), "fa3fc00000"),
            (Value::Float(100000.0), "fa47c35000"),
            (Value::Float(0.1), "fb3fb999999999999a"),
            (Value::Float(-4.1), "fbc010666666666666"),
            (Value::Float(1.0e300), "fb7e37e43c8800759c"),
            (Value::Float(f64::INFINITY), "fa7f800000"),
            (Value::Float(-0.0), "fa80000000"),
            (Value::String("IETF".into()), "6449455446"),
            (Value::String(String::new()), "60"),
            (Value::Corelnk("</3/0>".into()), "663c2f332f303e"),
            (Value::Opaque(vec![1, 2, 3, 4]), "4401020304"),
            (Value::Opaque(vec![]), "40"),
            (Value::Objlnk(ObjLink::new(66, 0)), "6436363a30"),
            (Value::Objlnk(ObjLink::NULL), "6b36353533353a3635353335"),
        ];
        for (v, h) in cases {
            assert_eq!(hexs(&v), h, "{v:?}");
        }
        assert!(matches!(dec("fa7fc00000", Some(DataType::Float)), Ok(Value::Float(f)) if f.is_nan()));
        assert_eq!(hexs(&Value::Float(f64::NAN)).len(), 10);
    }

    #[test]
    fn decode_typed() {
        use DataType as T;
        let cases: Vec<(&str, T, Value)> = vec![
            ("1864", T::Integer, Value::Integer(100)),
            ("3863", T::Integer, Value::Integer(-100)),
            ("1b7fffffffffffffff", T::Integer, Value::Integer(i64::MAX)),
            (
                "1bffffffffffffffff",
                T::UnsignedInteger,
                Value::UnsignedInteger(u64::MAX),
            ),
            ("0a", T::UnsignedInteger, Value::UnsignedInteger(10)),
            // Non-shortest widths are fine.
            ("1b0000000000000064", T::Integer, Value::Integer(100)),
            ("1a57fcd1f5", T::Time, Value::Time(1476186613)),
            ("c11a57fcd1f5", T::Time, Value::Time(1476186613)),
            ("c1fb41d5ff347d400000", T::Time, Value::Time(1476186613)),
            ("d9d9f71864", T::Integer, Value::Integer(100)),
            ("f5", T::Boolean, Value::Boolean(true)),
            ("f4", T::Boolean, Value::Boolean(false)),
            // Every float width, and integers for Float.
            ("f93e00", T::Float, Value::Float(1.5)),
            ("f97bff", T::Float, Value::Float(65504.0)),
            ("f90001", T::Float, Value::Float(5.960464477539063e-8)),
            ("f9c400", T::Float, Value::Float(-4.0)),
            ("f97c00", T::Float, Value::Float(f64::INFINITY)),
            ("fa3fc00000", T::Float, Value::Float(1.5)),
            ("fb3fb999999999999a", T::Float, Value::Float(0.1)),
            ("1864", T::Float, Value::Float(100.0)),
            ("3863", T::Float, Value::Float(-100.0)),
            // An integral float for an integer resource.
            ("f94900", T::Integer, Value::Integer(10)),
            ("6449455446", T::String, Value::String("IETF".into())),
            (
                "7f657374726561646d696e67ff",
                T::String,
                Value::String("streaming".into()),
            ),
            ("6449455446", T::Corelnk, Value::Corelnk("IETF".into())),
            ("4401020304", T::Opaque, Value::Opaque(vec![1, 2, 3, 4])),
            ("5f42010243030405ff", T::Opaque, Value::Opaque(vec![1, 2, 3, 4, 5])),
            ("6436363a30", T::Objlnk, Value::Objlnk(ObjLink::new(66, 0))),
        ];
        for (h, t, want) in cases {
            assert_eq!(dec(h, Some(t)), Ok(want), "{h} as {t}");
        }
        assert!(matches!(dec("f97e00", Some(T::Float)), Ok(Value::Float(f)) if f.is_nan()));
        assert!(matches!(dec("f98000", Some(T::Float)), Ok(Value::Float(f)) if f == 0.0 && f.is_sign_negative()));
    }

    #[test]
    fn decode_untyped_infers() {
        assert_eq!(dec("1864", None), Ok(Value::Integer(100)));
        assert_eq!(dec("3863", None), Ok(Value::Integer(-100)));
        assert_eq!(dec("1bffffffffffffffff", None), Ok(Value::UnsignedInteger(u64::MAX)));
        assert_eq!(dec("c11a57fcd1f5", None), Ok(Value::Time(1476186613)));
        assert_eq!(dec("fa3fc00000", None), Ok(Value::Float(1.5)));
        assert_eq!(dec("f5", None), Ok(Value::Boolean(true)));
        assert_eq!(dec("6436363a30", None), Ok(Value::String("66:0".into())));
        assert_eq!(dec("4401020304", None), Ok(Value::Opaque(vec![1, 2, 3, 4])));
    }

    #[test]
    fn decode_errors() {
        use DataType as T;
        let value_err = |h: &str, t: T| match dec(h, Some(t)) {
            Err(FormatError::Value { source, path, .. }) => {
                assert_eq!(path, p());
                source
            }
            other => panic!("{h} as {t}: {other:?}"),
        };
        assert_eq!(
            value_err("1864", T::Boolean),
            ValueError::TypeMismatch {
                expected: T::Boolean,
                found: T::Integer
            }
        );
        assert_eq!(
            value_err("6449455446", T::Integer),
            ValueError::TypeMismatch {
                expected: T::Integer,
                found: T::String
            }
        );
        assert_eq!(
            value_err("4401020304", T::String),
            ValueError::TypeMismatch {
                expected: T::String,
                found: T::Opaque
            }
        );
        assert_eq!(
            value_err("20", T::UnsignedInteger),
            ValueError::OutOfRange {
                target: T::UnsignedInteger
            }
        );
        assert_eq!(
            value_err("1bffffffffffffffff", T::Integer),
            ValueError::OutOfRange { target: T::Integer }
        );
        assert_eq!(
            value_err("3bffffffffffffffff", T::Integer),
            ValueError::OutOfRange { target: T::Integer }
        );
        assert_eq!(
            value_err("fa3fc00000", T::Integer),
            ValueError::OutOfRange { target: T::Integer }
        );
        assert!(matches!(value_err("6336363a", T::Objlnk), ValueError::InvalidObjlnk(_)));
        assert_eq!(
            value_err("c1fa3fc00000", T::Time),
            ValueError::OutOfRange { target: T::Time }
        );

        let f = F;
        assert_eq!(
            dec("", Some(T::Integer)),
            Err(FormatError::Empty { format: f, path: p() })
        );
        assert_eq!(
            dec("186400", Some(T::Integer)),
            Err(FormatError::TrailingData { format: f, offset: 2 })
        );
        assert_eq!(
            dec("f5f5", None),
            Err(FormatError::TrailingData { format: f, offset: 1 })
        );
        for trunc in [
            "18",
            "1903",
            "1b00000000",
            "3b0000",
            "f93e",
            "fa3fc0",
            "fb3fb9",
            "64494554",
            "c1",
            "5f4101",
            "7f",
        ] {
            assert_eq!(
                dec(trunc, None),
                Err(FormatError::Truncated {
                    format: f,
                    offset: trunc.len() / 2
                }),
                "{trunc}"
            );
        }
        assert_eq!(
            dec("62c328", Some(T::String)),
            Err(FormatError::InvalidUtf8 { format: f, path: p() })
        );
        assert_eq!(
            dec("7f62c328ff", Some(T::String)),
            Err(FormatError::InvalidUtf8 { format: f, path: p() })
        );
        for (h, want) in [
            ("80", "an array"),
            ("a0", "a map"),
            ("f6", "null"),
            ("f7", "undefined"),
            ("f0", "simple"),
            ("ff", "break"),
            ("1c", "reserved initial byte 0x1C"),
            ("c074323031332d30332d32315432303a30343a30305a", "unsupported CBOR tag 0"),
            ("c26100", "unsupported CBOR tag 2"),
            ("c1f5", "tag 1 (epoch time) wraps a Boolean"),
            ("7f4100ff", ""),
            ("5f6100ff", ""),
        ] {
            match dec(h, None) {
                Err(FormatError::Malformed { reason, offset, .. }) => {
                    assert!(reason.contains(want), "{h}: {reason}");
                    assert!(offset.is_some(), "{h}");
                }
                other => panic!("{h}: {other:?}"),
            }
        }
        let e = dec("f5", Some(T::None)).unwrap_err();
        assert!(e.to_string().contains("executable"), "{e}");
    }

    #[test]
    fn half_floats() {
        assert_eq!(f16_to_f64(0x0000), 0.0);
        assert_eq!(f16_to_f64(0x3c00), 1.0);
        assert_eq!(f16_to_f64(0x3555), 0.333_251_953_125);
        assert_eq!(f16_to_f64(0x0400), 6.103_515_625e-5);
        assert_eq!(f16_to_f64(0x03ff), 6.097_555_160_522_461e-5);
        assert_eq!(f16_to_f64(0xfc00), f64::NEG_INFINITY);
        assert!(f16_to_f64(0x7c01).is_nan());
    }

    fn value_strategy() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<String>().prop_map(Value::String),
            any::<String>().prop_map(Value::Corelnk),
            any::<i64>().prop_map(Value::Integer),
            any::<i64>().prop_map(Value::Time),
            any::<u64>().prop_map(Value::UnsignedInteger),
            any::<f64>()
                .prop_filter("not NaN", |f| !f.is_nan())
                .prop_map(Value::Float),
            any::<f32>()
                .prop_filter("not NaN", |f| !f.is_nan())
                .prop_map(|f| Value::Float(f.into())),
            any::<bool>().prop_map(Value::Boolean),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(Value::Opaque),
            (any::<u16>(), any::<u16>()).prop_map(|(o, i)| Value::Objlnk(ObjLink::new(o, i))),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(v in value_strategy()) {
            let bytes = encode(&v);
            let back = decode(&p(), &bytes, Some(v.data_type())).unwrap();
            match (&v, &back) {
                (Value::Float(a), Value::Float(b)) => prop_assert_eq!(a.to_bits(), b.to_bits()),
                _ => prop_assert_eq!(&back, &v),
            }
        }

        #[test]
        fn float_width_is_smallest_lossless(f in any::<f64>().prop_filter("not NaN", |f| !f.is_nan())) {
            let bytes = encode(&Value::Float(f));
            let exact32 = f64::from(f as f32) == f;
            prop_assert_eq!(bytes.len(), if exact32 { 5 } else { 9 });
        }

        #[test]
        fn untyped_integers(i in any::<i64>()) {
            prop_assert_eq!(decode(&p(), &encode(&Value::Integer(i)), None).unwrap(), Value::Integer(i));
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..32), ty in 0usize..11) {
            let types = [
                Some(DataType::String), Some(DataType::Integer), Some(DataType::UnsignedInteger),
                Some(DataType::Float), Some(DataType::Boolean), Some(DataType::Opaque), Some(DataType::Time),
                Some(DataType::Objlnk), Some(DataType::Corelnk), Some(DataType::None), None,
            ];
            let _ = decode(&p(), &bytes, types[ty]);
        }

        #[test]
        fn prefix_of_valid_item_is_truncated_or_value(v in value_strategy(), cut in 0usize..16) {
            let bytes = encode(&v);
            if cut > 0 && cut < bytes.len() {
                let r = decode(&p(), &bytes[..cut], Some(v.data_type()));
                prop_assert!(r.is_err());
            }
        }
    }
}
