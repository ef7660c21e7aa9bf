//! text/plain (0): one value as text (digest §8.2, §8.3).
//!
//! Encoding:
//! * Integer, Unsigned Integer, Time: ASCII decimal (`-750`, `1476186613`).
//! * Float: the shortest decimal that reads back to the same `f64`. Plain notation
//!   (`0.00000000006667`, `21.5`, `3`) when `1e-15 <= |v| < 1e21` or `v == 0`, exponent notation
//!   (`1e300`, `5e-324`) outside, so no value turns into hundreds of digits. Non-finite values
//!   (which LwM2M cannot carry) are written `NaN`, `Infinity`, `-Infinity`; the decoder rejects them.
//! * Boolean: `0` / `1`. Opaque: base64, standard alphabet with padding. Objlnk: `oid:iid`.
//! * String and Corelnk: the text itself.
//!
//! Decoding is strict; no surrounding whitespace is accepted for non-text types:
//! * Integer and Time: optional `+` or `-`, then ASCII digits, within `i64`.
//! * Unsigned Integer: optional `+`, then ASCII digits, within `u64`.
//! * Float: optional sign, digits with an optional `.` (`1.`, `.5` allowed), optional exponent
//!   (`6.667e-11`, `1E5`); `NaN`, `inf` and values that overflow to infinity are rejected.
//! * Boolean: only `0` and `1`, as the specification says (`true`/`false` are rejected).
//! * Opaque: base64, standard alphabet; padding may be present or absent.
//! * Objlnk: `oid:iid`, both decimal 0..65535.
//! * String and Corelnk: any UTF-8 text, kept verbatim (the empty payload is the empty string).
//! * The type `none` (executable resources) has no value and is an error.
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use crate::error::FormatError;
use crate::format::ContentFormat;
use crate::path::Path;
use crate::value::{DataType, Value};
const F: ContentFormat = ContentFormat::Text;

/// Base64 with the standard alphabet, padding optional when decoding.
const B64_DECODE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Encodes one value as text/plain.
pub fn encode(value: &Value) -> Vec<u8> {
    match value {
        Value::String(s) | Value::Corelnk(s) => s.as_bytes().to_vec(),
        Value::Integer(v) | Value::Time(v) => v.to_string().into_bytes(),
        Value::UnsignedInteger(v) => v.to_string().into_bytes(),
        Value::Float(v) => float_to_text(*v).into_bytes(),
        Value::Boolean(b) => vec![if *b { b'1' } else { b'0' }],
        Value::Opaque(b) => STANDARD.encode(b).into_bytes(),
        Value::Objlnk(l) => l.to_string().into_bytes(),
    }
}

/// The text/plain spelling of a float (see the module documentation).
pub fn float_to_text(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let a = v.abs();
    if a == 0.0 || (1e-15..1e21).contains(&a) {
        // Rust's Display prints the shortest round-tripping digits, never an exponent.
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// Decodes one text/plain value of type `ty` (the value at `path`).
pub fn decode(path: &Path, payload: &[u8], ty: DataType) -> Result<Value, FormatError> {
    if ty == DataType::None {
        return Err(FormatError::Unsupported {
            format: F,
            reason: format!("{path} is an executable resource and has no value"),
        });
    }
    if ty == DataType::Opaque {
        return B64_DECODE
            .decode(payload)
            .map(Value::Opaque)
            .map_err(|_| FormatError::InvalidBase64 { format: F, path: *path });
    }
    let text = std::str::from_utf8(payload).map_err(|_| FormatError::InvalidUtf8 { format: F, path: *path })?;
    if text.is_empty() && !matches!(ty, DataType::String | DataType::Corelnk) {
        return Err(FormatError::Empty { format: F, path: *path });
    }
    let invalid = || FormatError::InvalidText {
        format: F,
        path: *path,
        expected: ty,
        text: text.chars().take(64).collect(),
    };
    match ty {
        DataType::String => Ok(Value::String(text.to_string())),
        DataType::Corelnk => Ok(Value::Corelnk(text.to_string())),
        DataType::Integer => parse_i64(text).map(Value::Integer).ok_or_else(invalid),
        DataType::Time => parse_i64(text).map(Value::Time).ok_or_else(invalid),
        DataType::UnsignedInteger => parse_u64(text).map(Value::UnsignedInteger).ok_or_else(invalid),
        DataType::Float => parse_f64(text).map(Value::Float).ok_or_else(invalid),
        DataType::Boolean => match text {
            "0" => Ok(Value::Boolean(false)),
            "1" => Ok(Value::Boolean(true)),
            _ => Err(invalid()),
        },
        DataType::Objlnk => text.parse().map(Value::Objlnk).map_err(|_| invalid()),
        // Handled above.
        DataType::Opaque | DataType::None => Err(invalid()),
    }
}

/// `[+-]?[0-9]+` within `i64`.
fn parse_i64(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `[+]?[0-9]+` within `u64`.
fn parse_u64(s: &str) -> Option<u64> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `[+-]?(digits[.digits?]|.digits)([eE][+-]?digits)?`, finite.
fn parse_f64(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (body.get(..i)?, Some(body.get(i + 1..)?)),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    if let Some(e) = exponent {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        if e.is_empty() || !all_digits(e) {
            return None;
        }
    }
    let v: f64 = s.parse().ok()?;
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::ObjLink;
    use proptest::prelude::*;

    fn p() -> Path {
        "/3/0/13".parse().unwrap()
    }

    fn dec(payload: &str, ty: DataType) -> Result<Value, FormatError> {
        decode(&p(), payload.as_bytes(), ty)
    }

    fn enc(v: Value) -> String {
        String::from_utf8(encode(&v)).unwrap()
    }

    #[test]
    fn digest_examples() {
        assert_eq!(enc(Value::Integer(-750)), "-750");
        assert_eq!(enc(Value::Time(1476186613)), "1476186613");
        assert_eq!(enc(Value::Opaque(vec![1, 2, 3, 4, 5])), "AQIDBAU=");
        assert_eq!(enc(Value::Objlnk(ObjLink::new(66, 0))), "66:0");
        assert_eq!(enc(Value::Float(6.667e-11)), "0.00000000006667");
        assert_eq!(
            enc(Value::String("Open Mobile Alliance".into())),
            "Open Mobile Alliance"
        );
        assert_eq!(dec("-750", DataType::Integer), Ok(Value::Integer(-750)));
        assert_eq!(
            dec("AQIDBAU=", DataType::Opaque),
            Ok(Value::Opaque(vec![1, 2, 3, 4, 5]))
        );
        assert_eq!(dec("0.00000000006667", DataType::Float), Ok(Value::Float(6.667e-11)));
        assert_eq!(dec("6.667e-11", DataType::Float), Ok(Value::Float(6.667e-11)));
        assert_eq!(dec("66:0", DataType::Objlnk), Ok(Value::Objlnk(ObjLink::new(66, 0))));
    }

    #[test]
    fn encode_each_type() {
        assert_eq!(enc(Value::Boolean(true)), "1");
        assert_eq!(enc(Value::Boolean(false)), "0");
        assert_eq!(enc(Value::UnsignedInteger(u64::MAX)), "18446744073709551615");
        assert_eq!(enc(Value::Integer(i64::MIN)), "-9223372036854775808");
        assert_eq!(enc(Value::Corelnk("</3/0>".into())), "</3/0>");
        assert_eq!(enc(Value::Opaque(vec![])), "");
        assert_eq!(enc(Value::Objlnk(ObjLink::NULL)), "65535:65535");
    }

    #[test]
    fn floats() {
        for (v, t) in [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (21.5, "21.5"),
            (-3.25, "-3.25"),
            (0.1, "0.1"),
            (1e20, "100000000000000000000"),
            (1e21, "1e21"),
            (1e-15, "0.000000000000001"),
            (1.5e-16, "1.5e-16"),
            (1e300, "1e300"),
            (f64::MIN_POSITIVE * f64::EPSILON, "5e-324"),
            (f64::MAX, "1.7976931348623157e308"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(float_to_text(v), t, "{v:?}");
        }
        for (t, v) in [
            ("1", 1.0),
            ("+1.5", 1.5),
            ("-1.5", -1.5),
            ("1.", 1.0),
            (".5", 0.5),
            ("1E5", 1e5),
            ("1e+5", 1e5),
            ("-2.5e-3", -2.5e-3),
            ("007", 7.0),
        ] {
            assert_eq!(dec(t, DataType::Float), Ok(Value::Float(v)), "{t}");
        }
        for bad in [
            "NaN", "nan", "inf", "-inf", "Infinity", "1e400", "", ".", "e5", "1e", "1e+", "1.2.3", "1,5", " 1", "1 ",
            "0x10", "--1", "+-1", "1_0", "١",
        ] {
            let e = dec(bad, DataType::Float).unwrap_err();
            if bad.is_empty() {
                assert!(matches!(e, FormatError::Empty { .. }));
            } else {
                assert!(
                    matches!(&e, FormatError::InvalidText { expected: DataType::Float, text, .. } if text == bad),
                    "{bad}: {e}"
                );
            }
        }
    }

    #[test]
    fn integers() {
        assert_eq!(dec("+5", DataType::Integer), Ok(Value::Integer(5)));
        assert_eq!(dec("-0", DataType::Integer), Ok(Value::Integer(0)));
        assert_eq!(
            dec("-9223372036854775808", DataType::Integer),
            Ok(Value::Integer(i64::MIN))
        );
        assert_eq!(dec("-5", DataType::Time), Ok(Value::Time(-5)));
        assert_eq!(
            dec("18446744073709551615", DataType::UnsignedInteger),
            Ok(Value::UnsignedInteger(u64::MAX))
        );
        assert_eq!(dec("+7", DataType::UnsignedInteger), Ok(Value::UnsignedInteger(7)));
        for bad in [
            "9223372036854775808",
            "1.0",
            "1e3",
            " 1",
            "1\n",
            "-",
            "+",
            "0x1",
            "++1",
            "1-",
        ] {
            assert!(
                matches!(
                    dec(bad, DataType::Integer),
                    Err(FormatError::InvalidText {
                        expected: DataType::Integer,
                        ..
                    })
                ),
                "{bad:?}"
            );
            assert!(dec(bad, DataType::Time).is_err(), "{bad:?}");
        }
        for bad in ["-1", "-0", "18446744073709551616", "1.0", "+"] {
            assert!(
                matches!(
                    dec(bad, DataType::UnsignedInteger),
                    Err(FormatError::InvalidText {
                        expected: DataType::UnsignedInteger,
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn booleans_only_0_and_1() {
        assert_eq!(dec("0", DataType::Boolean), Ok(Value::Boolean(false)));
        assert_eq!(dec("1", DataType::Boolean), Ok(Value::Boolean(true)));
        for bad in ["true", "false", "2", "01", "1 ", "yes"] {
            assert!(
                matches!(
                    dec(bad, DataType::Boolean),
                    Err(FormatError::InvalidText {
                        expected: DataType::Boolean,
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn opaque_base64() {
        assert_eq!(dec("AQIDBAU", DataType::Opaque), Ok(Value::Opaque(vec![1, 2, 3, 4, 5])));
        assert_eq!(dec("", DataType::Opaque), Ok(Value::Opaque(vec![])));
        assert_eq!(dec("+/8=", DataType::Opaque), Ok(Value::Opaque(vec![0xfb, 0xff])));
        for bad in ["AQID BAU=", "-_8=", "A", "AQIDBAU==", "%%%%"] {
            assert_eq!(
                dec(bad, DataType::Opaque),
                Err(FormatError::InvalidBase64 { format: F, path: p() }),
                "{bad}"
            );
        }
        // Opaque does not need UTF-8 checks, but invalid bytes are still bad base64.
        assert!(matches!(
            decode(&p(), &[0xff], DataType::Opaque),
            Err(FormatError::InvalidBase64 { .. })
        ));
    }

    #[test]
    fn strings_objlnk_and_errors() {
        assert_eq!(dec("", DataType::String), Ok(Value::String(String::new())));
        assert_eq!(dec(" a b ", DataType::String), Ok(Value::String(" a b ".into())));
        assert_eq!(
            dec("</1/0>;ver=1.1", DataType::Corelnk),
            Ok(Value::Corelnk("</1/0>;ver=1.1".into()))
        );
        assert_eq!(
            decode(&p(), &[b'a', 0xff], DataType::String),
            Err(FormatError::InvalidUtf8 { format: F, path: p() })
        );
        assert!(matches!(
            decode(&p(), &[0xc3], DataType::Integer),
            Err(FormatError::InvalidUtf8 { .. })
        ));
        for bad in ["66", "66:", "66:0:1", "65536:0", "a:b", " 66:0"] {
            assert!(
                matches!(
                    dec(bad, DataType::Objlnk),
                    Err(FormatError::InvalidText {
                        expected: DataType::Objlnk,
                        ..
                    })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            dec("", DataType::Integer),
            Err(FormatError::Empty { format: F, path: p() })
        );
        let e = dec("", DataType::None).unwrap_err();
        assert!(matches!(e, FormatError::Unsupported { .. }));
        assert!(e.to_string().contains("/3/0/13 is an executable resource"), "{e}");
        // The error text names path, type and (clipped) input.
        let long = "x".repeat(500);
        let e = dec(&long, DataType::Integer).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("/3/0/13") && msg.contains("Integer") && msg.len() < 200,
            "{msg}"
        );
    }

    fn value_of(ty: DataType) -> BoxedStrategy<Value> {
        match ty {
            DataType::String => any::<String>().prop_map(Value::String).boxed(),
            DataType::Corelnk => "[ -~]*".prop_map(Value::Corelnk).boxed(),
            DataType::Integer => any::<i64>().prop_map(Value::Integer).boxed(),
            DataType::Time => any::<i64>().prop_map(Value::Time).boxed(),
            DataType::UnsignedInteger => any::<u64>().prop_map(Value::UnsignedInteger).boxed(),
            DataType::Float => prop_oneof![
                any::<f64>().prop_filter("finite", |f| f.is_finite()),
                -1e6f64..1e6,
                any::<f32>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(f64::from),
            ]
            .prop_map(Value::Float)
            .boxed(),
            DataType::Boolean => any::<bool>().prop_map(Value::Boolean).boxed(),
            DataType::Opaque => proptest::collection::vec(any::<u8>(), 0..64)
                .prop_map(Value::Opaque)
                .boxed(),
            DataType::Objlnk => (any::<u16>(), any::<u16>())
                .prop_map(|(o, i)| Value::Objlnk(ObjLink::new(o, i)))
                .boxed(),
            DataType::None => Just(Value::Boolean(false)).boxed(),
        }
    }

    fn typed_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            value_of(DataType::String),
            value_of(DataType::Corelnk),
            value_of(DataType::Integer),
            value_of(DataType::Time),
            value_of(DataType::UnsignedInteger),
            value_of(DataType::Float),
            value_of(DataType::Boolean),
            value_of(DataType::Opaque),
            value_of(DataType::Objlnk),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(v in typed_value()) {
            let bytes = encode(&v);
            let back = decode(&p(), &bytes, v.data_type()).unwrap();
            match (&v, &back) {
                // -0.0 == 0.0, so compare the bits too.
                (Value::Float(a), Value::Float(b)) => prop_assert_eq!(a.to_bits(), b.to_bits()),
                _ => prop_assert_eq!(&back, &v),
            }
        }

        #[test]
        fn float_text_is_short_and_plain_in_range(f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
            let t = float_to_text(f);
            prop_assert!(t.len() <= 40, "{}", t);
            let a = f.abs();
            prop_assert_eq!(t.contains('e'), a != 0.0 && !(1e-15..1e21).contains(&a));
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40), ty in 0usize..10) {
            let types = [
                DataType::String, DataType::Integer, DataType::UnsignedInteger, DataType::Float, DataType::Boolean,
                DataType::Opaque, DataType::Time, DataType::Objlnk, DataType::Corelnk, DataType::None,
            ];
            let _ = decode(&p(), &bytes, types[ty]);
        }

        #[test]
        fn agrees_with_std_on_numeric_text(s in "[+-]?[0-9]{0,25}(\\.[0-9]{0,5})?([eE][+-]?[0-9]{0,4})?") {
            // Anything we accept, std parses to the same value.
            if let Ok(Value::Float(f)) = dec(&s, DataType::Float) {
                prop_assert_eq!(s.parse::<f64>().unwrap(), f);
            }
            if let Ok(Value::Integer(i)) = dec(&s, DataType::Integer) {
                prop_assert_eq!(s.parse::<i64>().unwrap(), i);
            }
        }
    }
}
