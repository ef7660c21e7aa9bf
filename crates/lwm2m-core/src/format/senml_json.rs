//! SenML JSON (110), digest §8.6: a JSON array of records.
//!
//! This module only maps bytes to and from [`SenmlRecord`]s; names, times, types and the choice of
//! `bn`/`bt` are done in [`super::senml`].
//!
//! * Labels: `bn`, `bt`, `n`, `v`, `vs`, `vb`, `vd`, `vlo`, `t`. Other labels are ignored, except
//!   labels ending in `_`, which RFC 8428 §4.4 makes mandatory to understand: they are rejected.
//!   A repeated label in one record is not detected (the last one wins).
//! * Numbers keep integers exact (`i64` and `u64` ranges); a number written with a fraction or an
//!   exponent is a float. Floats are written in their shortest form that reads back exactly;
//!   NaN and infinities cannot be encoded.
//! * `vd` is written base64url without padding; both alphabets, with or without padding, are read.
//! * Records are written with their labels in the order `bn`, `bt`, `n`, `t`, value.
//! * [`decode_paths`] ignores value fields (after checking their JSON type).
use base64::Engine;
use serde_json::{Map, Value as Json};

use crate::error::FormatError;
use crate::format::senml::{self, Number, SenmlRecord};
use crate::format::ContentFormat;
use crate::model::Models;
use crate::node::Record;
use crate::path::Path;
const F: ContentFormat = ContentFormat::SenmlJson;

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

/// A SenML number as a JSON number; `None` for NaN and infinities.
pub(crate) fn json_number(n: Number) -> Option<Json> {
    Some(Json::Number(match n {
        Number::Int(i) => i.into(),
        Number::UInt(u) => u.into(),
        Number::Float(f) => serde_json::Number::from_f64(f)?,
    }))
}

/// A JSON number as a SenML number: `i64`, else `u64`, else `f64`.
pub(crate) fn number_of(n: &serde_json::Number) -> Number {
    if let Some(i) = n.as_i64() {
        Number::Int(i)
    } else if let Some(u) = n.as_u64() {
        Number::UInt(u)
    } else {
        Number::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// The error for a number JSON cannot carry.
pub(crate) fn non_finite(format: ContentFormat, index: usize, label: &str, n: Number) -> FormatError {
    FormatError::Unsupported {
        format,
        reason: format!(
            "record {index}: JSON cannot carry the number {:?} in {label:?}",
            n.as_f64()
        ),
    }
}

/// Serializes a JSON document (cannot fail for a `serde_json::Value`; mapped anyway).
pub(crate) fn to_bytes(format: ContentFormat, doc: &Json) -> Result<Vec<u8>, FormatError> {
    serde_json::to_vec(doc).map_err(|e| FormatError::Unsupported {
        format,
        reason: format!("JSON serialization failed: {e}"),
    })
}

fn write_pack(pack: &[SenmlRecord]) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::with_capacity(pack.len());
    for (i, r) in pack.iter().enumerate() {
        let mut m = Map::new();
        let num = |label: &str, n: Number| json_number(n).ok_or_else(|| non_finite(F, i, label, n));
        if let Some(bn) = &r.bn {
            m.insert("bn".into(), Json::String(bn.clone()));
        }
        if let Some(bt) = r.bt {
            m.insert("bt".into(), num("bt", bt)?);
        }
        if let Some(n) = &r.n {
            m.insert("n".into(), Json::String(n.clone()));
        }
        if let Some(t) = r.t {
            m.insert("t".into(), num("t", t)?);
        }
        if let Some(v) = r.v {
            m.insert("v".into(), num("v", v)?);
        }
        if let Some(vs) = &r.vs {
            m.insert("vs".into(), Json::String(vs.clone()));
        }
        if let Some(vb) = r.vb {
            m.insert("vb".into(), Json::Bool(vb));
        }
        if let Some(vd) = &r.vd {
            let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(vd);
            m.insert("vd".into(), Json::String(text));
        }
        if let Some(vlo) = &r.vlo {
            m.insert("vlo".into(), Json::String(vlo.clone()));
        }
        out.push(Json::Object(m));
    }
    to_bytes(F, &Json::Array(out))
}

/// The byte offset of a 1-based (line, column) position in `payload`, clamped to its length.
fn byte_offset(payload: &[u8], line: usize, column: usize) -> usize {
    let mut offset = 0usize;
    for (i, l) in payload.split(|b| *b == b'\n').enumerate() {
        if i + 1 >= line {
            break;
        }
        offset = offset.saturating_add(l.len()).saturating_add(1);
    }
    offset.saturating_add(column.saturating_sub(1)).min(payload.len())
}

/// Parses one JSON document; anything but whitespace after it is [`FormatError::TrailingData`].
pub(crate) fn parse_document(format: ContentFormat, payload: &[u8]) -> Result<Json, FormatError> {
    let mut stream = serde_json::Deserializer::from_slice(payload).into_iter::<Json>();
    let doc = match stream.next() {
        None => {
            return Err(FormatError::Truncated {
                format,
                offset: payload.len(),
            })
        }
        Some(Err(e)) => {
            return Err(match e.classify() {
                serde_json::error::Category::Eof => FormatError::Truncated {
                    format,
                    offset: payload.len(),
                },
                _ => FormatError::malformed(
                    format,
                    Some(byte_offset(payload, e.line(), e.column())),
                    format!("invalid JSON: {e}"),
                ),
            })
        }
        Some(Ok(doc)) => doc,
    };
    let end = stream.byte_offset();
    let rest = payload.get(end..).unwrap_or_default();
    if let Some(extra) = rest.iter().position(|b| !b.is_ascii_whitespace()) {
        return Err(FormatError::TrailingData {
            format,
            offset: end.saturating_add(extra),
        });
    }
    Ok(doc)
}

/// The name of a JSON value's type, for error texts.
pub(crate) fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// The error for a label whose value has the wrong JSON type.
pub(crate) fn wrong_type(
    format: ContentFormat,
    index: usize,
    label: &str,
    expected: &str,
    found: &Json,
) -> FormatError {
    FormatError::malformed(
        format,
        None,
        format!("record {index}: {label:?} must be {expected}, found {}", kind(found)),
    )
}

fn read_pack(payload: &[u8]) -> Result<Vec<SenmlRecord>, FormatError> {
    let doc = parse_document(F, payload)?;
    let Json::Array(items) = doc else {
        return Err(FormatError::malformed(
            F,
            None,
            format!("a SenML pack must be a JSON array, found {}", kind(&doc)),
        ));
    };
    let mut pack = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Json::Object(fields) = item else {
            return Err(FormatError::malformed(
                F,
                None,
                format!("record {i} must be a JSON object, found {}", kind(&item)),
            ));
        };
        let mut r = SenmlRecord::default();
        for (label, value) in fields {
            let text = |v: Json| match v {
                Json::String(s) => Ok(s),
                other => Err(wrong_type(F, i, &label, "a string", &other)),
            };
            let number = |v: &Json| match v {
                Json::Number(n) => Ok(number_of(n)),
                other => Err(wrong_type(F, i, &label, "a number", other)),
            };
            match label.as_str() {
                "bn" => r.bn = Some(text(value)?),
                "bt" => r.bt = Some(number(&value)?),
                "n" => r.n = Some(text(value)?),
                "t" => r.t = Some(number(&value)?),
                "v" => r.v = Some(number(&value)?),
                "vs" => r.vs = Some(text(value)?),
                "vlo" => r.vlo = Some(text(value)?),
                "vb" => match value {
                    Json::Bool(b) => r.vb = Some(b),
                    other => return Err(wrong_type(F, i, "vb", "a boolean", &other)),
                },
                "vd" => {
                    let s = text(value)?;
                    let data = senml::decode_base64_lenient(&s).ok_or_else(|| {
                        FormatError::malformed(
                            F,
                            None,
                            format!("record {i}: \"vd\" is not valid base64: {:?}", senml::excerpt(&s)),
                        )
                    })?;
                    r.vd = Some(data);
                }
                l if l.ends_with('_') => {
                    return Err(FormatError::malformed(
                        F,
                        None,
                        format!("record {i}: unsupported mandatory label {:?}", senml::excerpt(l)),
                    ))
                }
                _ => {}
            }
        }
        pack.push(r);
    }
    Ok(pack)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::senml::test_models::models;
    use crate::model::NoModels;
    use crate::value::{ObjLink, Value};
    use proptest::prelude::*;

    fn json(bytes: &[u8]) -> Json {
        serde_json::from_slice(bytes).unwrap()
    }

    fn rec(p: &str, value: Value) -> Record {
        Record::new(p.parse().unwrap(), value)
    }

    const READ_3_0: &str = r#"[{"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},{"n":"1","vs":"Lightweight M2M Client"},{"n":"6/0","v":1},{"n":"6/1","v":5},{"n":"9","v":100},{"n":"13","v":1367491215},{"n":"16","vs":"U"}]"#;

    fn read_3_0_records() -> Vec<Record> {
        vec![
            rec("/3/0/0", Value::String("Open Mobile Alliance".into())),
            rec("/3/0/1", Value::String("Lightweight M2M Client".into())),
            rec("/3/0/6/0", Value::Integer(1)),
            rec("/3/0/6/1", Value::Integer(5)),
            rec("/3/0/9", Value::Integer(100)),
            rec("/3/0/13", Value::Time(1367491215)),
            rec("/3/0/16", Value::String("U".into())),
        ]
    }

    #[test]
    fn read_instance_example() {
        let recs = read_3_0_records();
        let out = encode(&Path::instance(3, 0), &recs).unwrap();
        assert_eq!(std::str::from_utf8(&out).unwrap(), READ_3_0);
        assert_eq!(decode(READ_3_0.as_bytes(), &models()).unwrap(), recs);
        // without models: Time is an Integer
        let untyped = decode(READ_3_0.as_bytes(), &NoModels).unwrap();
        assert_eq!(untyped[5].value, Value::Integer(1367491215));
    }

    #[test]
    fn through_the_node_dispatch() {
        let p = Path::instance(3, 0);
        let node = crate::format::decode(F, &p, READ_3_0.as_bytes(), &models()).unwrap();
        assert_eq!(node.to_records(&p), read_3_0_records());
        assert_eq!(crate::format::encode(F, &p, &node).unwrap(), READ_3_0.as_bytes());
    }

    #[test]
    fn objlnk_example() {
        let text = r#"[{"n":"/65/0/0/0","vlo":"66:0"}]"#;
        let recs = vec![rec("/65/0/0/0", Value::Objlnk(ObjLink::new(66, 0)))];
        assert_eq!(encode(&Path::ROOT, &recs).unwrap(), text.as_bytes());
        assert_eq!(decode(text.as_bytes(), &models()).unwrap(), recs);
        assert_eq!(decode(text.as_bytes(), &NoModels).unwrap(), recs);
        // Leshan style: vs for an Objlnk resource
        let vs = r#"[{"n":"/65/0/0/0","vs":"66:0"}]"#;
        assert_eq!(decode(vs.as_bytes(), &models()).unwrap(), recs);
    }

    #[test]
    fn opaque_and_boolean_example() {
        let text = r#"[{"n":"/3442/0/150","vd":"ASNFZ4mrze8"},{"n":"/3442/0/140","vb":true}]"#;
        let recs = vec![
            rec(
                "/3442/0/150",
                Value::Opaque(vec![0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF]),
            ),
            rec("/3442/0/140", Value::Boolean(true)),
        ];
        assert_eq!(encode(&Path::ROOT, &recs).unwrap(), text.as_bytes());
        assert_eq!(decode(text.as_bytes(), &models()).unwrap(), recs);
        // padded and standard alphabet accepted
        let padded = r#"[{"n":"/3442/0/150","vd":"ASNFZ4mrze8="},{"n":"/3442/0/140","vb":true}]"#;
        assert_eq!(decode(padded.as_bytes(), &models()).unwrap(), recs);
        let std = r#"[{"n":"/3442/0/150","vd":"+/8"}]"#;
        assert_eq!(
            decode(std.as_bytes(), &models()).unwrap()[0].value,
            Value::Opaque(vec![0xfb, 0xff])
        );
        let out = encode(&Path::ROOT, &[rec("/3442/0/150", Value::Opaque(vec![0xfb, 0xff]))]).unwrap();
        assert_eq!(out, br#"[{"n":"/3442/0/150","vd":"-_8"}]"#);
    }

    #[test]
    fn composite_request_example() {
        let text = r#"[{"n":"/3/0/9"},{"n":"/1/0/1"}]"#;
        let paths = vec![Path::resource(3, 0, 9), Path::resource(1, 0, 1)];
        assert_eq!(encode_paths(&paths).unwrap(), text.as_bytes());
        assert_eq!(decode_paths(text.as_bytes()).unwrap(), paths);
        assert_eq!(encode_paths(&[Path::ROOT]).unwrap(), br#"[{"n":"/"}]"#);
        assert_eq!(decode_paths(br#"[{"n":"/"}]"#).unwrap(), [Path::ROOT]);
        // bn + n, bn carried forward, values ignored
        assert_eq!(
            decode_paths(br#"[{"bn":"/3/0/","n":"9"},{"n":"6/1","v":3},{"bn":"/4"}]"#).unwrap(),
            [
                Path::resource(3, 0, 9),
                Path::resource_instance(3, 0, 6, 1),
                Path::object(4)
            ]
        );
        assert!(matches!(
            decode_paths(br#"[{"n":"3/0"}]"#),
            Err(FormatError::Malformed { .. })
        ));
        assert!(matches!(
            decode_paths(br#"[{"n":"/3/x"}]"#),
            Err(FormatError::InvalidPath { .. })
        ));
        assert!(matches!(
            decode_paths(br#"[{"n":"/3/0","v":"x"}]"#),
            Err(FormatError::Malformed { .. })
        ));
    }

    #[test]
    fn write_composite_example() {
        let text =
            r#"[{"n":"/3/0/14","vs":"+02:00"},{"n":"/1/0/2","v":100},{"n":"/5/0/1","vs":"coap://fw.example.com/img"}]"#;
        let recs = vec![
            rec("/3/0/14", Value::String("+02:00".into())),
            rec("/1/0/2", Value::Integer(100)),
            rec("/5/0/1", Value::String("coap://fw.example.com/img".into())),
        ];
        assert_eq!(decode(text.as_bytes(), &models()).unwrap(), recs);
        assert_eq!(encode(&Path::ROOT, &recs).unwrap(), text.as_bytes());
    }

    #[test]
    fn send_example_with_base_time() {
        let text = r#"[{"bn":"/3303/0/5700","bt":1700000000,"v":21.5},{"t":60,"v":21.7}]"#;
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
        assert_eq!(decode(text.as_bytes(), &models()).unwrap(), recs);
        assert_eq!(std::str::from_utf8(&encode(&p, &recs).unwrap()).unwrap(), text);
    }

    #[test]
    fn create_example() {
        let text = r#"[{"bn":"/3311/1/","n":"5850","vb":true},{"n":"5851","v":70}]"#;
        let recs = vec![
            rec("/3311/1/5850", Value::Boolean(true)),
            rec("/3311/1/5851", Value::Integer(70)),
        ];
        assert_eq!(decode(text.as_bytes(), &models()).unwrap(), recs);
        assert_eq!(encode(&Path::instance(3311, 1), &recs).unwrap(), text.as_bytes());
    }

    #[test]
    fn single_resource_naming() {
        let recs = vec![rec("/3/0/9", Value::Integer(100))];
        let out = encode(&Path::resource(3, 0, 9), &recs).unwrap();
        assert_eq!(out, br#"[{"bn":"/3/0/9","v":100}]"#);
        assert_eq!(decode(&out, &models()).unwrap(), recs);
        let multi = vec![rec("/3/0/6/0", Value::Integer(1)), rec("/3/0/6/1", Value::Integer(5))];
        let out = encode(&Path::resource(3, 0, 6), &multi).unwrap();
        assert_eq!(out, br#"[{"bn":"/3/0/6/","n":"0","v":1},{"n":"1","v":5}]"#);
        // records outside the base: full names
        let out = encode(&Path::instance(4, 0), &recs).unwrap();
        assert_eq!(out, br#"[{"n":"/3/0/9","v":100}]"#);
        assert_eq!(encode(&Path::instance(4, 0), &[]).unwrap(), b"[]");
        assert_eq!(decode(b"[]", &models()).unwrap(), []);
    }

    #[test]
    fn integers_stay_exact() {
        let recs = vec![
            rec("/1/0/1", Value::UnsignedInteger(u64::MAX)),
            rec("/3/0/9", Value::Integer(i64::MIN)),
            rec("/3/0/13", Value::Time(i64::MAX)),
        ];
        let out = encode(&Path::ROOT, &recs).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"[{"n":"/1/0/1","v":18446744073709551615},{"n":"/3/0/9","v":-9223372036854775808},{"n":"/3/0/13","v":9223372036854775807}]"#
        );
        assert_eq!(decode(&out, &models()).unwrap(), recs);
        // unknown resources: an integer above i64::MAX is Unsigned, one with a fraction is Float
        let got = decode(
            br#"[{"n":"/77/0/1","v":9223372036854775808},{"n":"/77/0/2","v":2.0}]"#,
            &NoModels,
        )
        .unwrap();
        assert_eq!(got[0].value, Value::UnsignedInteger(1 << 63));
        assert_eq!(got[1].value, Value::Float(2.0));
        // floats round-trip through their shortest text
        let f = vec![rec("/3303/0/5700", Value::Float(0.1 + 0.2))];
        assert_eq!(decode(&encode(&Path::ROOT, &f).unwrap(), &models()).unwrap(), f);
        let nan = vec![rec("/3303/0/5700", Value::Float(f64::NAN))];
        assert!(matches!(
            encode(&Path::ROOT, &nan),
            Err(FormatError::Unsupported { .. })
        ));
    }

    #[test]
    fn ignored_and_mandatory_labels() {
        let got = decode(
            br#"[{"bver":10,"bu":"Cel","n":"/3/0/9","u":"%","v":1,"s":2,"ut":3}]"#,
            &models(),
        )
        .unwrap();
        assert_eq!(got, [rec("/3/0/9", Value::Integer(1))]);
        let err = decode(br#"[{"n":"/3/0/9","v":1,"foo_":1}]"#, &models()).unwrap_err();
        assert!(err.to_string().contains("mandatory label"), "{err}");
    }

    #[test]
    fn errors() {
        let m = models();
        let d = |s: &str| decode(s.as_bytes(), &m);
        // invalid JSON
        assert!(matches!(
            d(r#"[{"n":"/3/0/9","v":1}"#),
            Err(FormatError::Truncated { .. })
        ));
        assert!(matches!(d(""), Err(FormatError::Truncated { offset: 0, .. })));
        assert!(matches!(
            d(r#"[{"n":"/3/0/9" "v":1}]"#),
            Err(FormatError::Malformed { offset: Some(15), .. })
        ));
        assert!(matches!(d(r#"[] x"#), Err(FormatError::TrailingData { offset: 3, .. })));
        assert!(d("[]  \n").is_ok());
        assert!(matches!(d(r#"{"n":"/3/0/9"}"#), Err(FormatError::Malformed { .. })));
        assert!(matches!(d(r#"[1]"#), Err(FormatError::Malformed { .. })));
        // wrong JSON types for labels
        assert!(matches!(
            d(r#"[{"n":"/3/0/9","v":"1"}]"#),
            Err(FormatError::Malformed { .. })
        ));
        assert!(matches!(d(r#"[{"n":3,"v":1}]"#), Err(FormatError::Malformed { .. })));
        assert!(matches!(
            d(r#"[{"n":"/3/0/9","vb":1}]"#),
            Err(FormatError::Malformed { .. })
        ));
        assert!(matches!(
            d(r#"[{"n":"/3442/0/150","vd":"A"}]"#),
            Err(FormatError::Malformed { .. })
        ));
        // value of the wrong type for the model
        assert!(matches!(
            d(r#"[{"n":"/3/0/9","vs":"1"}]"#),
            Err(FormatError::Value { .. })
        ));
        assert!(matches!(d(r#"[{"n":"/3/0/0","v":1}]"#), Err(FormatError::Value { .. })));
        assert!(matches!(
            d(r#"[{"n":"/3/0/9","v":1.5}]"#),
            Err(FormatError::Value { .. })
        ));
        assert!(matches!(
            d(r#"[{"n":"/1/0/1","v":-1}]"#),
            Err(FormatError::Value { .. })
        ));
        assert!(matches!(
            d(r#"[{"n":"/65/0/0/0","vlo":"66"}]"#),
            Err(FormatError::Value { .. })
        ));
        // two value fields, no value
        let err = d(r#"[{"n":"/3/0/9","v":1,"vs":"1"}]"#).unwrap_err();
        assert!(err.to_string().contains("several values"), "{err}");
        assert_eq!(
            d(r#"[{"n":"/3/0/9"}]"#),
            Err(FormatError::MissingValue {
                format: F,
                path: Path::resource(3, 0, 9)
            })
        );
        // names that are not paths, relative names without bn
        assert!(matches!(
            d(r#"[{"n":"/3/0/x","v":1}]"#),
            Err(FormatError::InvalidPath { .. })
        ));
        assert!(matches!(
            d(r#"[{"n":"/3/0/9/1/2","v":1}]"#),
            Err(FormatError::InvalidPath { .. })
        ));
        assert!(matches!(d(r#"[{"n":"9","v":1}]"#), Err(FormatError::Malformed { .. })));
        assert!(matches!(d(r#"[{"v":1}]"#), Err(FormatError::Malformed { .. })));
        assert!(matches!(
            d(r#"[{"n":"/3/0","v":1}]"#),
            Err(FormatError::Malformed { .. })
        ));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!(
            "[{{\"n\":\"/3/0/9\",\"v\":1,\"u\":{}{}}}]",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(matches!(
            decode(deep.as_bytes(), &models()),
            Err(FormatError::Malformed { .. })
        ));
    }

    #[test]
    fn examples_parse_as_the_digest_writes_them() {
        // compare parsed JSON (whitespace as in the digest)
        let digest = "[{\"bn\":\"/3/0/\",\"n\":\"0\",\"vs\":\"Open Mobile Alliance\"},{\"n\":\"1\",\"vs\":\"Lightweight M2M Client\"},\n {\"n\":\"6/0\",\"v\":1},{\"n\":\"6/1\",\"v\":5},{\"n\":\"9\",\"v\":100},{\"n\":\"13\",\"v\":1367491215},{\"n\":\"16\",\"vs\":\"U\"}]";
        let out = encode(&Path::instance(3, 0), &read_3_0_records()).unwrap();
        assert_eq!(json(&out), json(digest.as_bytes()));
        assert_eq!(decode(digest.as_bytes(), &models()).unwrap(), read_3_0_records());
    }

    proptest! {
        #[test]
        fn round_trip((base, recs) in senml::strategies::records()) {
            let out = encode(&base, &recs).unwrap();
            prop_assert_eq!(decode(&out, &models()).unwrap(), recs);
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
        fn truncation_is_an_error(cut in 0usize..READ_3_0.len()) {
            prop_assert!(decode(&READ_3_0.as_bytes()[..cut], &models()).is_err());
        }
    }
}
