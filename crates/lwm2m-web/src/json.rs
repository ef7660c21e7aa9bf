//! The JSON form of LwM2M values, shared by the REST API and `lwm2m codec`.
//!
//! Content is an object mapping each resource (`/o/i/r`) or resource-instance (`/o/i/r/ri`) path to its value:
//! numbers, booleans and strings as such; Opaque as `{"base64": "..."}`; Objlnk as `"O:I"`; Time as integer
//! seconds since the Unix epoch; Corelnk as its string.
//!
//! ```
//! use lwm2m_web::json::{json_to_value, value_to_json};
//! use lwm2m_core::{DataType, Path, Value};
//!
//! let p: Path = "/3/0/13".parse().unwrap();
//! let v = json_to_value(&p, &serde_json::json!(1700000000), Some(DataType::Time)).unwrap();
//! assert_eq!(v, Value::Time(1_700_000_000));
//! assert_eq!(value_to_json(&v), serde_json::json!(1700000000));
//! ```

use base64::Engine;
use lwm2m_core::format;
use lwm2m_core::model::Models;
use lwm2m_core::node::Record;
use lwm2m_core::path::Path;
use lwm2m_core::value::{DataType, Value};
use serde_json::{Map, Number, Value as Json};
use thiserror::Error;

/// A JSON value or document that is not valid LwM2M content; the message names the path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct JsonValueError(pub String);

fn err<T>(msg: String) -> Result<T, JsonValueError> {
    Err(JsonValueError(msg))
}

/// A float as JSON (`null` for NaN and infinities, which JSON cannot carry).
pub fn float_json(f: f64) -> Json {
    Number::from_f64(f).map(Json::Number).unwrap_or(Json::Null)
}

/// One value in the JSON form.
pub fn value_to_json(v: &Value) -> Json {
    match v {
        Value::String(s) | Value::Corelnk(s) => Json::String(s.clone()),
        Value::Integer(i) | Value::Time(i) => Json::Number((*i).into()),
        Value::UnsignedInteger(u) => Json::Number((*u).into()),
        Value::Float(f) => float_json(*f),
        Value::Boolean(b) => Json::Bool(*b),
        Value::Opaque(b) => {
            let mut m = Map::new();
            m.insert(
                "base64".into(),
                Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
            );
            Json::Object(m)
        }
        Value::Objlnk(l) => Json::String(l.to_string()),
    }
}

/// One JSON value to a typed value at `path`; `ty` comes from the object model when known (without it the
/// value keeps the JSON type: integer, float, boolean, string or opaque).
pub fn json_to_value(path: &Path, j: &Json, ty: Option<DataType>) -> Result<Value, JsonValueError> {
    let untyped = match j {
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Integer(i)
            } else if let Some(u) = n.as_u64() {
                Value::UnsignedInteger(u)
            } else {
                match n.as_f64() {
                    Some(f) => Value::Float(f),
                    None => return err(format!("{path}: number {n} is out of range")),
                }
            }
        }
        Json::String(s) => Value::String(s.clone()),
        Json::Object(m) if m.len() == 1 && m.contains_key("base64") => {
            let Some(s) = m.get("base64").and_then(Json::as_str) else {
                return err(format!("{path}: \"base64\" must be a string"));
            };
            match base64::engine::general_purpose::STANDARD.decode(s) {
                Ok(bytes) => Value::Opaque(bytes),
                Err(e) => return err(format!("{path}: invalid base64 ({e})")),
            }
        }
        other => {
            return err(format!(
            "{path}: unsupported JSON value {other}; use a number, boolean, string, \"O:I\" or {{\"base64\": \"...\"}}"
        ))
        }
    };
    match ty {
        None | Some(DataType::None) => Ok(untyped),
        Some(t) => untyped.convert(t).map_err(|e| JsonValueError(format!("{path}: {e}"))),
    }
}

/// Records as a path → value object. Fails when one path has several values (timestamped records): use
/// [`records_to_list`] for those.
pub fn records_to_map(records: &[Record]) -> Result<Map<String, Json>, JsonValueError> {
    let mut map = Map::new();
    for r in records {
        if map.insert(r.path.to_string(), value_to_json(&r.value)).is_some() {
            return err(format!("{} has several (timestamped) values", r.path));
        }
    }
    Ok(map)
}

/// Records as a list of `{"path", "value"[, "time"]}` objects (times in seconds, as SenML carries them).
pub fn records_to_list(records: &[Record]) -> Vec<Json> {
    records
        .iter()
        .map(|r| {
            let mut m = Map::new();
            m.insert("path".into(), Json::String(r.path.to_string()));
            m.insert("value".into(), value_to_json(&r.value));
            if let Some(t) = r.time {
                m.insert("time".into(), float_json(t));
            }
            Json::Object(m)
        })
        .collect()
}

/// A path → value object to records, each typed by `models` and checked to lie under `target`
/// (keys must be resource or resource-instance paths). The records come back sorted by path.
pub fn map_to_records(
    target: &Path,
    obj: &Map<String, Json>,
    models: &dyn Models,
) -> Result<Vec<Record>, JsonValueError> {
    let mut recs = Vec::with_capacity(obj.len());
    for (p, v) in obj {
        let rp: Path = p
            .parse()
            .map_err(|e| JsonValueError(format!("key {p:?} is not an LwM2M path: {e}")))?;
        if rp.len() < 3 {
            return err(format!(
                "key {p}: values belong to resource or resource-instance paths (/o/i/r or /o/i/r/ri)"
            ));
        }
        if !target.starts(&rp) {
            return err(format!("key {rp} is not under {target}"));
        }
        let value = json_to_value(&rp, v, format::value_type(models, &rp))?;
        recs.push(Record::new(rp, value));
    }
    recs.sort_by_key(|r| r.path);
    Ok(recs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lwm2m_core::model::ModelRegistry;
    use lwm2m_core::ObjLink;
    use serde_json::json;

    #[test]
    fn values_both_ways() {
        let p = Path::resource(3, 0, 9);
        assert_eq!(
            json_to_value(&p, &json!(5), Some(DataType::Float)).unwrap(),
            Value::Float(5.0)
        );
        assert_eq!(
            json_to_value(&p, &json!("3:1"), Some(DataType::Objlnk)).unwrap(),
            Value::Objlnk(ObjLink::new(3, 1))
        );
        assert_eq!(
            json_to_value(&p, &json!({"base64": "AQID"}), None).unwrap(),
            Value::Opaque(vec![1, 2, 3])
        );
        assert_eq!(
            json_to_value(&p, &json!(u64::MAX), None).unwrap(),
            Value::UnsignedInteger(u64::MAX)
        );
        assert_eq!(value_to_json(&Value::Opaque(vec![1, 2, 3])), json!({"base64": "AQID"}));
        assert_eq!(value_to_json(&Value::Objlnk(ObjLink::new(3, 1))), json!("3:1"));
        assert_eq!(value_to_json(&Value::Time(7)), json!(7));
        assert_eq!(value_to_json(&Value::Float(f64::NAN)), Json::Null);
    }

    #[test]
    fn value_errors_name_the_path_and_the_problem() {
        let p = Path::resource(3, 0, 9);
        let e = json_to_value(&p, &json!([1]), None).unwrap_err();
        assert!(e.0.starts_with("/3/0/9: unsupported JSON value"), "{e}");
        let e = json_to_value(&p, &json!(-1), Some(DataType::UnsignedInteger)).unwrap_err();
        assert!(e.0.starts_with("/3/0/9: "), "{e}");
        let e = json_to_value(&p, &json!({"base64": "!!"}), None).unwrap_err();
        assert!(e.0.contains("invalid base64"), "{e}");
        let e = json_to_value(&p, &json!({"base64": 1}), None).unwrap_err();
        assert!(e.0.contains("must be a string"), "{e}");
    }

    #[test]
    fn maps_and_records() {
        let models = ModelRegistry::builtin();
        let obj = json!({"/3/0/14": "+02", "/3/0/13": 100, "/3/0/6/1": 5});
        let recs = map_to_records(&Path::instance(3, 0), obj.as_object().unwrap(), &models).unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].path, "/3/0/6/1".parse().unwrap());
        assert_eq!(recs[1].value, Value::Time(100));
        assert_eq!(recs[2].value, Value::String("+02".into()));
        let back = records_to_map(&recs).unwrap();
        assert_eq!(
            Json::Object(back),
            json!({"/3/0/6/1": 5, "/3/0/13": 100, "/3/0/14": "+02"})
        );

        let bad = json!({"/3/0": 1});
        let e = map_to_records(&Path::object(3), bad.as_object().unwrap(), &models).unwrap_err();
        assert!(e.0.contains("resource or resource-instance"), "{e}");
        let bad = json!({"/4/0/1": 1});
        let e = map_to_records(&Path::object(3), bad.as_object().unwrap(), &models).unwrap_err();
        assert!(e.0.contains("not under /3"), "{e}");
        let bad = json!({"x": 1});
        assert!(map_to_records(&Path::ROOT, bad.as_object().unwrap(), &models).is_err());

        let mut timed = recs.clone();
        timed.push(Record {
            path: "/3/0/6/1".parse().unwrap(),
            value: Value::Integer(6),
            time: Some(1.5),
        });
        assert!(records_to_map(&timed).is_err());
        let list = records_to_list(&timed);
        assert_eq!(list[3], json!({"path": "/3/0/6/1", "value": 6, "time": 1.5}));
    }
}
