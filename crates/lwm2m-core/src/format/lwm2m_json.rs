//! LwM2M JSON (11543, legacy), digest §8.7.
//!
//! `{"bn":"/3/0/","bt":1700000000,"e":[{"n":"0","sv":"Open Mobile Alliance"},{"n":"6/0","v":1,"t":60}]}`
//!
//! * Entry fields: `n` (name relative to `bn`), `t` (time relative to `bt`) and exactly one of
//!   `v` (number), `bv` (boolean), `ov` (Objlnk `"oid:iid"`), `sv` (string: String, Corelnk, an
//!   Objlnk for an Objlnk resource, or base64 for an Opaque resource). Unknown fields are ignored.
//! * Decoding: the name of an entry is `bn` + `n`, with a `/` put between them when neither side
//!   has one; without `bn`, names are relative to the request path `base`. The resolved name must
//!   be an absolute path of a resource or resource instance. An entry's time is `bt + t`; without
//!   either it has none. Values are typed like SenML values ([`super::senml::typed_value`]).
//! * Encoding: `bn` = `base` + `/` (`/` for the root, and when a record lies outside `base`), then
//!   `bt`, then `e`. Each entry is written `n`, value, `t`; a record at `base` itself gets
//!   `"n":""`. Opaque values are written as `sv` in standard base64 with padding. When every record
//!   has a time and the differences are exact, `bt` = the first time and `t` = the difference
//!   (left out when 0); otherwise each timed entry carries its absolute time in `t`.
use base64::Engine;
use serde_json::{Map, Value as Json};

use crate::error::FormatError;
use crate::format::senml::{self, Number, RawValue, SenmlRecord};
use crate::format::senml_json::{json_number, kind, non_finite, number_of, parse_document, to_bytes, wrong_type};
use crate::format::ContentFormat;
use crate::model::Models;
use crate::node::Record;
use crate::path::Path;
const F: ContentFormat = ContentFormat::Lwm2mJson;

/// Encodes records; names are relative to `base` (the request path).
pub fn encode(base: &Path, records: &[Record]) -> Result<Vec<u8>, FormatError> {
    let under = records.iter().all(|r| base.starts(&r.path));
    let prefix = if under { *base } else { Path::ROOT };
    let bn = if prefix.is_root() {
        "/".to_string()
    } else {
        format!("{prefix}/")
    };
    let bt = base_time(records);
    let mut entries = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let mut m = Map::new();
        m.insert("n".into(), Json::String(senml::relative_name(&prefix, &r.path)));
        let (label, value) = match senml::raw_of(&r.value) {
            RawValue::Number(n) => ("v", json_number(n).ok_or_else(|| non_finite(F, i, "v", n))?),
            RawValue::String(s) => ("sv", Json::String(s)),
            RawValue::Bool(b) => ("bv", Json::Bool(b)),
            RawValue::Data(d) => ("sv", Json::String(base64::engine::general_purpose::STANDARD.encode(d))),
            RawValue::ObjLink(s) => ("ov", Json::String(s)),
        };
        m.insert(label.into(), value);
        let t = match (bt, r.time) {
            (Some(bt), Some(x)) if x != bt => Some(x - bt),
            (None, Some(x)) => Some(x),
            _ => None,
        };
        if let Some(t) = t {
            let n = Number::from_time(t);
            m.insert("t".into(), json_number(n).ok_or_else(|| non_finite(F, i, "t", n))?);
        }
        entries.push(Json::Object(m));
    }
    let mut doc = Map::new();
    doc.insert("bn".into(), Json::String(bn));
    if let Some(bt) = bt {
        let n = Number::from_time(bt);
        doc.insert("bt".into(), json_number(n).ok_or_else(|| non_finite(F, 0, "bt", n))?);
    }
    doc.insert("e".into(), Json::Array(entries));
    to_bytes(F, &Json::Object(doc))
}

/// The `bt` to write: the first time, when every record has a time and `bt + (x − bt) == x`.
fn base_time(records: &[Record]) -> Option<f64> {
    let first = records.first()?.time?;
    records
        .iter()
        .all(|r| r.time.is_some_and(|x| first + (x - first) == x))
        .then_some(first)
}

/// Joins `bn` and `n`, putting a `/` between them when neither side has one.
fn join(bn: &str, n: &str) -> String {
    if n.is_empty() || bn.ends_with('/') || n.starts_with('/') {
        format!("{bn}{n}")
    } else {
        format!("{bn}/{n}")
    }
}

/// Decodes a payload into records with absolute paths, typed by the models.
pub fn decode(base: &Path, payload: &[u8], models: &dyn Models) -> Result<Vec<Record>, FormatError> {
    let doc = parse_document(F, payload)?;
    let Json::Object(top) = doc else {
        return Err(FormatError::malformed(
            F,
            None,
            format!("an LwM2M JSON payload must be a JSON object, found {}", kind(&doc)),
        ));
    };
    let top_err = |label: &str, expected: &str, found: &Json| {
        FormatError::malformed(F, None, format!("{label:?} must be {expected}, found {}", kind(found)))
    };
    let bn = match top.get("bn") {
        None => {
            if base.is_root() {
                "/".to_string()
            } else {
                format!("{base}/")
            }
        }
        Some(Json::String(s)) => s.clone(),
        Some(other) => return Err(top_err("bn", "a string", other)),
    };
    let bt = match top.get("bt") {
        None => None,
        Some(Json::Number(n)) => Some(number_of(n).as_f64()),
        Some(other) => return Err(top_err("bt", "a number", other)),
    };
    let entries = match top.get("e") {
        Some(Json::Array(e)) => e,
        Some(other) => return Err(top_err("e", "an array", other)),
        None => return Err(FormatError::malformed(F, None, "no \"e\" array of entries")),
    };
    let mut pack = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let Json::Object(fields) = entry else {
            return Err(FormatError::malformed(
                F,
                None,
                format!("entry {i} must be a JSON object, found {}", kind(entry)),
            ));
        };
        let mut r = SenmlRecord::default();
        let mut name = "";
        let mut t = None;
        for (label, value) in fields {
            let text = |v: &Json| match v {
                Json::String(s) => Ok(s.clone()),
                other => Err(wrong_type(F, i, label, "a string", other)),
            };
            let number = |v: &Json| match v {
                Json::Number(n) => Ok(number_of(n)),
                other => Err(wrong_type(F, i, label, "a number", other)),
            };
            match label.as_str() {
                "n" => match value {
                    Json::String(s) => name = s,
                    other => return Err(wrong_type(F, i, "n", "a string", other)),
                },
                "t" => t = Some(number(value)?.as_f64()),
                "v" => r.v = Some(number(value)?),
                "sv" => r.vs = Some(text(value)?),
                "ov" => r.vlo = Some(text(value)?),
                "bv" => match value {
                    Json::Bool(b) => r.vb = Some(*b),
                    other => return Err(wrong_type(F, i, "bv", "a boolean", other)),
                },
                _ => {}
            }
        }
        // names and times are resolved here; senml::to_records then sees absolute names and times
        r.n = Some(join(&bn, name));
        r.t = match (bt, t) {
            (None, None) => None,
            (bt, t) => Some(Number::from_time(bt.unwrap_or(0.0) + t.unwrap_or(0.0))),
        };
        pack.push(r);
    }
    senml::to_records(F, pack, models)
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

    const READ_3_0: &str =
        r#"{"bn":"/3/0/","e":[{"n":"0","sv":"Open Mobile Alliance"},{"n":"9","v":100},{"n":"6/0","v":1}]}"#;

    #[test]
    fn read_instance_example() {
        let recs = vec![
            rec("/3/0/0", Value::String("Open Mobile Alliance".into())),
            rec("/3/0/9", Value::Integer(100)),
            rec("/3/0/6/0", Value::Integer(1)),
        ];
        let p = Path::instance(3, 0);
        assert_eq!(decode(&p, READ_3_0.as_bytes(), &models()).unwrap(), recs);
        assert_eq!(std::str::from_utf8(&encode(&p, &recs).unwrap()).unwrap(), READ_3_0);
        // bn absent: relative to the request path
        let no_bn = r#"{"e":[{"n":"0","sv":"Open Mobile Alliance"},{"n":"9","v":100},{"n":"6/0","v":1}]}"#;
        assert_eq!(decode(&p, no_bn.as_bytes(), &models()).unwrap(), recs);
    }

    #[test]
    fn historical_notification_example() {
        let text = r#"{"bn":"/72/","e":[{"n":"1/2","v":22.4,"t":-5},{"n":"1/2","v":22.9,"t":-30}],"bt":25462634}"#;
        let p = Path::resource(72, 1, 2);
        let recs = vec![
            Record {
                path: p,
                value: Value::Float(22.4),
                time: Some(25_462_629.0),
            },
            Record {
                path: p,
                value: Value::Float(22.9),
                time: Some(25_462_604.0),
            },
        ];
        let got = decode(&Path::object(72), text.as_bytes(), &models()).unwrap();
        assert_eq!(got, recs);
        // without models the numbers are Floats anyway (written with a fraction)
        assert_eq!(decode(&Path::object(72), text.as_bytes(), &NoModels).unwrap(), recs);
        let out = encode(&Path::object(72), &recs).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"bn":"/72/","bt":25462629,"e":[{"n":"1/2","v":22.4},{"n":"1/2","v":22.9,"t":-25}]}"#
        );
        assert_eq!(decode(&Path::object(72), &out, &models()).unwrap(), recs);
    }

    #[test]
    fn every_value_kind() {
        let recs = vec![
            rec("/3442/0/150", Value::Opaque(vec![1, 2, 3, 4, 5])),
            rec("/3442/0/140", Value::Boolean(false)),
            rec("/65/0/0/1", Value::Objlnk(ObjLink::new(66, 0))),
            rec("/1/0/1", Value::UnsignedInteger(u64::MAX)),
        ];
        let out = encode(&Path::ROOT, &recs).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"bn":"/","e":[{"n":"3442/0/150","sv":"AQIDBAU="},{"n":"3442/0/140","bv":false},{"n":"65/0/0/1","ov":"66:0"},{"n":"1/0/1","v":18446744073709551615}]}"#
        );
        assert_eq!(decode(&Path::ROOT, &out, &models()).unwrap(), recs);
        // base64 url-safe / unpadded accepted for Opaque; sv "66:0" for an Objlnk resource
        let alt = r#"{"bn":"/","e":[{"n":"3442/0/150","sv":"AQIDBAU"},{"n":"65/0/0/1","sv":"66:0"}]}"#;
        let got = decode(&Path::ROOT, alt.as_bytes(), &models()).unwrap();
        assert_eq!(got[0].value, Value::Opaque(vec![1, 2, 3, 4, 5]));
        assert_eq!(got[1].value, Value::Objlnk(ObjLink::new(66, 0)));
        // without a model, sv is a String
        let got = decode(&Path::ROOT, alt.as_bytes(), &NoModels).unwrap();
        assert_eq!(got[0].value, Value::String("AQIDBAU".into()));
    }

    #[test]
    fn naming() {
        // single resource: bn = path + "/", n = ""
        let recs = vec![rec("/3/0/9", Value::Integer(100))];
        let p = Path::resource(3, 0, 9);
        let out = encode(&p, &recs).unwrap();
        assert_eq!(out, br#"{"bn":"/3/0/9/","e":[{"n":"","v":100}]}"#);
        assert_eq!(decode(&p, &out, &models()).unwrap(), recs);
        // lenient join, absent n
        assert_eq!(
            decode(&p, br#"{"bn":"/3/0/9","e":[{"v":100}]}"#, &models()).unwrap(),
            recs
        );
        assert_eq!(
            decode(&p, br#"{"bn":"/3/0","e":[{"n":"9","v":100}]}"#, &models()).unwrap(),
            recs
        );
        assert_eq!(decode(&p, br#"{"e":[{"v":100}]}"#, &models()).unwrap(), recs);
        // records outside base: bn "/" and full relative names
        let out = encode(&Path::instance(4, 0), &recs).unwrap();
        assert_eq!(out, br#"{"bn":"/","e":[{"n":"3/0/9","v":100}]}"#);
        assert_eq!(encode(&Path::ROOT, &[]).unwrap(), br#"{"bn":"/","e":[]}"#);
        assert_eq!(decode(&Path::ROOT, br#"{"bn":"/","e":[]}"#, &models()).unwrap(), []);
        // mixed timed and untimed: absolute t on the timed ones, no bt
        let mut mixed = vec![rec("/3/0/9", Value::Integer(1)), rec("/3/0/9", Value::Integer(2))];
        mixed[1].time = Some(5.5);
        let out = encode(&p, &mixed).unwrap();
        assert_eq!(
            json(&out),
            json(br#"{"bn":"/3/0/9/","e":[{"n":"","v":1},{"n":"","v":2,"t":5.5}]}"#)
        );
        assert_eq!(decode(&p, &out, &models()).unwrap(), mixed);
    }

    #[test]
    fn errors() {
        let m = models();
        let p = Path::instance(3, 0);
        let d = |s: &str| decode(&p, s.as_bytes(), &m);
        assert!(matches!(
            d(r#"{"bn":"/3/0/","e":["#),
            Err(FormatError::Truncated { .. })
        ));
        assert!(matches!(
            d(r#"{"e":[]} []"#),
            Err(FormatError::TrailingData { offset: 9, .. })
        ));
        assert!(matches!(d(r#"[]"#), Err(FormatError::Malformed { .. })));
        assert!(matches!(d(r#"{"bn":"/3/0/"}"#), Err(FormatError::Malformed { .. })));
        assert!(matches!(d(r#"{"bn":3,"e":[]}"#), Err(FormatError::Malformed { .. })));
        assert!(matches!(d(r#"{"bt":"x","e":[]}"#), Err(FormatError::Malformed { .. })));
        assert!(matches!(d(r#"{"e":{}}"#), Err(FormatError::Malformed { .. })));
        assert!(matches!(d(r#"{"e":[1]}"#), Err(FormatError::Malformed { .. })));
        assert!(matches!(
            d(r#"{"e":[{"n":9,"v":1}]}"#),
            Err(FormatError::Malformed { .. })
        ));
        assert!(matches!(
            d(r#"{"e":[{"n":"9","v":"1"}]}"#),
            Err(FormatError::Malformed { .. })
        ));
        assert!(matches!(
            d(r#"{"e":[{"n":"9","bv":1}]}"#),
            Err(FormatError::Malformed { .. })
        ));
        assert!(matches!(
            d(r#"{"e":[{"n":"9","t":"1","v":1}]}"#),
            Err(FormatError::Malformed { .. })
        ));
        // wrong type for the model
        assert!(matches!(
            d(r#"{"e":[{"n":"9","sv":"100"}]}"#),
            Err(FormatError::Value { .. })
        ));
        assert!(matches!(
            d(r#"{"e":[{"n":"0","bv":true}]}"#),
            Err(FormatError::Value { .. })
        ));
        assert!(matches!(
            d(r#"{"e":[{"n":"9","ov":"1:2"}]}"#),
            Err(FormatError::Value { .. })
        ));
        assert!(matches!(
            decode(&Path::ROOT, br#"{"e":[{"n":"3442/0/150","sv":"!"}]}"#, &m),
            Err(FormatError::InvalidBase64 { .. })
        ));
        // two values, no value
        let err = d(r#"{"e":[{"n":"9","v":1,"sv":"1"}]}"#).unwrap_err();
        assert!(err.to_string().contains("several values"), "{err}");
        assert!(matches!(
            d(r#"{"e":[{"n":"9"}]}"#),
            Err(FormatError::MissingValue { .. })
        ));
        // names
        assert!(matches!(
            d(r#"{"e":[{"n":"x","v":1}]}"#),
            Err(FormatError::InvalidPath { .. })
        ));
        assert!(matches!(
            d(r#"{"bn":"3/0/","e":[{"n":"9","v":1}]}"#),
            Err(FormatError::Malformed { .. })
        ));
        assert!(matches!(d(r#"{"e":[{"v":1}]}"#), Err(FormatError::Malformed { .. })));
        // NaN cannot be encoded
        assert!(matches!(
            encode(&Path::ROOT, &[rec("/3303/0/5700", Value::Float(f64::INFINITY))]),
            Err(FormatError::Unsupported { .. })
        ));
    }

    #[test]
    fn truncation_at_every_byte_is_an_error() {
        let p = Path::instance(3, 0);
        for cut in 0..READ_3_0.len() {
            assert!(
                decode(&p, &READ_3_0.as_bytes()[..cut], &models()).is_err(),
                "cut at {cut}"
            );
        }
    }

    proptest! {
        #[test]
        fn round_trip((base, recs) in senml::strategies::records()) {
            let out = encode(&base, &recs).unwrap();
            prop_assert_eq!(decode(&base, &out, &models()).unwrap(), recs);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&Path::instance(3, 0), &bytes, &models());
        }
    }
}
