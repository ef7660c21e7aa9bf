//! Shared SenML logic for SenML JSON (110) and SenML CBOR (112), digest §8.6.
//!
//! The wire modules ([`super::senml_json`], [`super::senml_cbor`], and [`super::lwm2m_json`] for its
//! entries) only map bytes to and from [`SenmlRecord`]s. Everything format-independent lives here:
//!
//! * **Name resolution** (decoding): `bn` carries forward to later records until a new `bn`; the
//!   resolved name `bn + n` is a plain string concatenation (RFC 8428) and must be an absolute
//!   LwM2M path (it must start with `/`). A record holding a value must name a resource or a
//!   resource instance.
//! * **Time resolution** (decoding): `bt` carries forward like `bn`; a record's time is `bt + t`.
//!   A record with neither a `bt` in effect nor a `t` has no time (`None`). A `bt` of 0 counts as
//!   "no base time", so `"bt":0` ends a run of timestamped records.
//! * **Typing** (decoding): with a model, `v` goes through [`Value::convert`] (Integer, Unsigned
//!   Integer, Float, Time; range-checked), `vs` becomes String, Corelnk or Objlnk (`"oid:iid"`),
//!   `vlo` Objlnk, `vb` Boolean, `vd` Opaque; any other pairing is a type mismatch. Without a model:
//!   an integer `v` is Integer (Unsigned Integer above `i64::MAX`), a float `v` (a JSON number with a
//!   fraction or an exponent, or a CBOR float) is Float, `vs` String, `vlo` Objlnk, `vd` Opaque,
//!   `vb` Boolean.
//! * **Checks** (decoding): exactly one of `v`, `vs`, `vb`, `vd`, `vlo` per record; none is
//!   [`FormatError::MissingValue`], several is [`FormatError::Malformed`].
//! * **Base name** (encoding), from the request path `base`:
//!   1. every record is at `base` itself (a single resource, or a time series of one resource):
//!      the first record gets `bn` = `base` (e.g. `"/3/0/9"`) and no record has an `n`;
//!   2. every record lies strictly below `base` (and `base` is not the root): the first record gets
//!      `bn` = `base` + `/` (e.g. `"/3/0/"`) and each record the relative rest as `n` (`"6/0"`);
//!   3. otherwise (root, composite content): no `bn`, each `n` is the full path (`"/3/0/9"`).
//! * **Base time** (encoding): the first timestamped record gets `bt` = its time; later timestamped
//!   records get `t` = their time − `bt` (left out when 0) when that difference is exact, else a new
//!   `bt`. An untimed record after a `bt` gets `"bt":0`. Decoding gives back the same times.
//!
//! Read-Composite / Observe-Composite requests ([`to_paths`]) carry names only; values in such
//! records are checked for their wire type by the format module but otherwise ignored (lenient).

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use crate::error::FormatError;
use crate::format::ContentFormat;
use crate::model::Models;
use crate::node::Record;
use crate::path::Path;
use crate::value::{DataType, Value};

/// A SenML number, kept exact: integers are never turned into floats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// A signed integer.
    Int(i64),
    /// An unsigned integer (decoders use it only above `i64::MAX`).
    UInt(u64),
    /// A floating-point number.
    Float(f64),
}

impl Number {
    /// An unsigned integer, as [`Number::Int`] when it fits.
    pub fn from_u64(u: u64) -> Number {
        match i64::try_from(u) {
            Ok(i) => Number::Int(i),
            Err(_) => Number::UInt(u),
        }
    }

    /// A time in seconds: integral times in the `i64` range become [`Number::Int`] (so JSON shows
    /// `1700000000`, not `1700000000.0`), others stay [`Number::Float`]. Exact both ways.
    pub fn from_time(t: f64) -> Number {
        if t.is_finite() && t.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&t) {
            Number::Int(t as i64)
        } else {
            Number::Float(t)
        }
    }

    /// The number as an `f64` (times; large integers round).
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::UInt(u) => u as f64,
            Number::Float(f) => f,
        }
    }

    /// The value of this number before typing: Integer, Unsigned Integer or Float as written.
    fn raw(self) -> Value {
        match self {
            Number::Int(i) => Value::Integer(i),
            Number::UInt(u) => Value::UnsignedInteger(u),
            Number::Float(f) => Value::Float(f),
        }
    }

    /// The untyped value (no model): Integer, Unsigned Integer above `i64::MAX`, or Float.
    pub fn untyped(self) -> Value {
        match self {
            Number::UInt(u) => match i64::try_from(u) {
                Ok(i) => Value::Integer(i),
                Err(_) => Value::UnsignedInteger(u),
            },
            n => n.raw(),
        }
    }
}

/// One SenML record as found on the wire, before name, time and type resolution.
///
/// Only the labels LwM2M uses are kept; the wire decoders ignore the others.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SenmlRecord {
    /// Base name (`bn`, CBOR −2).
    pub bn: Option<String>,
    /// Base time (`bt`, CBOR −3).
    pub bt: Option<Number>,
    /// Name (`n`, CBOR 0).
    pub n: Option<String>,
    /// Numeric value (`v`, CBOR 2).
    pub v: Option<Number>,
    /// String value (`vs`, CBOR 3).
    pub vs: Option<String>,
    /// Boolean value (`vb`, CBOR 4).
    pub vb: Option<bool>,
    /// Data value (`vd`, CBOR 8; base64url in JSON).
    pub vd: Option<Vec<u8>>,
    /// Object link value (`vlo`, text key in CBOR too).
    pub vlo: Option<String>,
    /// Time (`t`, CBOR 6).
    pub t: Option<Number>,
}

/// The one value of a record, as written (before typing against the models).
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    /// `v`
    Number(Number),
    /// `vs` (SenML) or `sv` (LwM2M JSON)
    String(String),
    /// `vb` / `bv`
    Bool(bool),
    /// `vd`
    Data(Vec<u8>),
    /// `vlo` / `ov`
    ObjLink(String),
}

impl SenmlRecord {
    /// The labels of the value fields present (`v`, `vs`, `vb`, `vd`, `vlo`).
    pub fn value_labels(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.v.is_some() {
            out.push("v");
        }
        if self.vs.is_some() {
            out.push("vs");
        }
        if self.vb.is_some() {
            out.push("vb");
        }
        if self.vd.is_some() {
            out.push("vd");
        }
        if self.vlo.is_some() {
            out.push("vlo");
        }
        out
    }

    /// Takes the first value field present, if any.
    pub fn take_value(&mut self) -> Option<RawValue> {
        if let Some(n) = self.v.take() {
            return Some(RawValue::Number(n));
        }
        if let Some(s) = self.vs.take() {
            return Some(RawValue::String(s));
        }
        if let Some(b) = self.vb.take() {
            return Some(RawValue::Bool(b));
        }
        if let Some(d) = self.vd.take() {
            return Some(RawValue::Data(d));
        }
        self.vlo.take().map(RawValue::ObjLink)
    }

    /// Sets the value field that carries `value` (digest §8.2 table; Objlnk as `vlo`).
    pub fn set_value(&mut self, value: &Value) {
        match raw_of(value) {
            RawValue::Number(n) => self.v = Some(n),
            RawValue::String(s) => self.vs = Some(s),
            RawValue::Bool(b) => self.vb = Some(b),
            RawValue::Data(d) => self.vd = Some(d),
            RawValue::ObjLink(s) => self.vlo = Some(s),
        }
    }
}

/// The wire form of a typed value: numbers (Integer, Unsigned, Float, Time) as `v`, String and
/// Corelnk as `vs`, Boolean as `vb`, Opaque as `vd`, Objlnk as `vlo` (`"oid:iid"`).
pub fn raw_of(value: &Value) -> RawValue {
    match value {
        Value::String(s) | Value::Corelnk(s) => RawValue::String(s.clone()),
        Value::Integer(i) | Value::Time(i) => RawValue::Number(Number::Int(*i)),
        Value::UnsignedInteger(u) => RawValue::Number(Number::UInt(*u)),
        Value::Float(f) => RawValue::Number(Number::Float(*f)),
        Value::Boolean(b) => RawValue::Bool(*b),
        Value::Opaque(d) => RawValue::Data(d.clone()),
        Value::Objlnk(l) => RawValue::ObjLink(l.to_string()),
    }
}

/// Base64 decoding that accepts both alphabets (standard and URL-safe), with or without padding.
pub fn decode_base64_lenient(text: &str) -> Option<Vec<u8>> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let normalized: String = text
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    LENIENT.decode(normalized.as_bytes()).ok()
}

/// Keeps error texts short when they quote the payload.
pub(crate) fn excerpt(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

/// Parses a resolved name: it must be an absolute LwM2M path (starting with `/`).
/// `index` is the record number, for the error text.
pub fn parse_name(format: ContentFormat, index: usize, name: &str) -> Result<Path, FormatError> {
    if !name.starts_with('/') {
        return Err(FormatError::malformed(
            format,
            None,
            format!(
                "record {index}: name {:?} is not an absolute LwM2M path (a relative name needs a base name)",
                excerpt(name)
            ),
        ));
    }
    Path::parse(name).map_err(|source| FormatError::InvalidPath {
        format,
        text: excerpt(name),
        source,
    })
}

/// Types a raw value for the resource at `path` (a resource or resource-instance path).
///
/// LwM2M JSON (`format` = [`ContentFormat::Lwm2mJson`]) also carries Opaque values as base64
/// text in `sv` (standard or URL-safe alphabet, padding optional).
pub fn typed_value(
    format: ContentFormat,
    path: &Path,
    raw: RawValue,
    models: &dyn Models,
) -> Result<Value, FormatError> {
    let ty = match (path.object_id(), path.resource_id()) {
        (Some(o), Some(r)) => models.resource(o, r).map(|m| m.data_type),
        _ => None,
    };
    let err = |source| FormatError::Value {
        format,
        path: *path,
        source,
    };
    let Some(ty) = ty else {
        return match raw {
            RawValue::Number(n) => Ok(n.untyped()),
            RawValue::String(s) => Ok(Value::String(s)),
            RawValue::Bool(b) => Ok(Value::Boolean(b)),
            RawValue::Data(d) => Ok(Value::Opaque(d)),
            RawValue::ObjLink(s) => s.parse().map(Value::Objlnk).map_err(err),
        };
    };
    match raw {
        RawValue::Number(n) => n.raw().convert(ty).map_err(err),
        RawValue::String(s) if format == ContentFormat::Lwm2mJson && ty == DataType::Opaque => {
            decode_base64_lenient(&s)
                .map(Value::Opaque)
                .ok_or(FormatError::InvalidBase64 { format, path: *path })
        }
        RawValue::String(s) => Value::String(s).convert(ty).map_err(err),
        RawValue::Bool(b) => Value::Boolean(b).convert(ty).map_err(err),
        RawValue::Data(d) => Value::Opaque(d).convert(ty).map_err(err),
        RawValue::ObjLink(s) => {
            if ty != DataType::Objlnk {
                return Err(err(crate::error::ValueError::TypeMismatch {
                    expected: ty,
                    found: DataType::Objlnk,
                }));
            }
            s.parse().map(Value::Objlnk).map_err(err)
        }
    }
}

/// Carries `bn` and `bt` from record to record while decoding.
#[derive(Debug, Default)]
struct Resolver {
    bn: String,
    bt: Option<f64>,
}

impl Resolver {
    /// Applies this record's `bn`/`bt` and returns its resolved name and time.
    fn resolve(&mut self, rec: &SenmlRecord) -> (String, Option<f64>) {
        if let Some(bn) = &rec.bn {
            self.bn.clone_from(bn);
        }
        if let Some(bt) = rec.bt {
            let bt = bt.as_f64();
            self.bt = if bt == 0.0 { None } else { Some(bt) };
        }
        let mut name = self.bn.clone();
        if let Some(n) = &rec.n {
            name.push_str(n);
        }
        let time = match (self.bt, rec.t) {
            (None, None) => None,
            (bt, t) => Some(bt.unwrap_or(0.0) + t.map_or(0.0, Number::as_f64)),
        };
        (name, time)
    }
}

/// Resolves and types a decoded pack into records with absolute paths (see the module docs).
pub fn to_records(
    format: ContentFormat,
    pack: Vec<SenmlRecord>,
    models: &dyn Models,
) -> Result<Vec<Record>, FormatError> {
    let mut resolver = Resolver::default();
    let mut out = Vec::with_capacity(pack.len());
    for (index, mut rec) in pack.into_iter().enumerate() {
        let (name, time) = resolver.resolve(&rec);
        let path = parse_name(format, index, &name)?;
        let labels = rec.value_labels();
        if labels.len() > 1 {
            return Err(FormatError::malformed(
                format,
                None,
                format!(
                    "record {index} ({path}): several values ({}); a record carries exactly one",
                    labels.join(", ")
                ),
            ));
        }
        let Some(raw) = rec.take_value() else {
            return Err(FormatError::MissingValue { format, path });
        };
        if path.len() < 3 {
            return Err(FormatError::malformed(
                format,
                None,
                format!("record {index}: a value needs a resource or resource-instance path, found {path}"),
            ));
        }
        let value = typed_value(format, &path, raw, models)?;
        out.push(Record { path, value, time });
    }
    Ok(out)
}

/// Resolves the names of a Read-Composite / Observe-Composite request. Values are ignored.
pub fn to_paths(format: ContentFormat, pack: &[SenmlRecord]) -> Result<Vec<Path>, FormatError> {
    let mut resolver = Resolver::default();
    pack.iter()
        .enumerate()
        .map(|(index, rec)| {
            let (name, _) = resolver.resolve(rec);
            parse_name(format, index, &name)
        })
        .collect()
}

/// How the encoder names records (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Naming {
    /// `bn` = base, no `n`.
    AtBase,
    /// `bn` = base + `/`, `n` relative.
    BelowBase,
    /// No `bn`, `n` = full path.
    Full,
}

fn naming(base: &Path, records: &[Record]) -> Naming {
    if records.is_empty() || base.is_root() {
        Naming::Full
    } else if records.iter().all(|r| r.path == *base) {
        Naming::AtBase
    } else if records
        .iter()
        .all(|r| base.starts(&r.path) && r.path.len() > base.len())
    {
        Naming::BelowBase
    } else {
        Naming::Full
    }
}

/// The path of `path` below `base`, without a leading `/` (`/3/0/6/1` below `/3/0` is `6/1`).
pub(crate) fn relative_name(base: &Path, path: &Path) -> String {
    path.ids()
        .iter()
        .skip(base.len())
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// Builds the pack for `records`; `base` is the request path (see the module docs for `bn`/`bt`).
pub fn from_records(base: &Path, records: &[Record]) -> Vec<SenmlRecord> {
    let naming = naming(base, records);
    let mut bt = 0.0f64;
    let mut out = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let mut s = SenmlRecord::default();
        match naming {
            Naming::AtBase => {
                if i == 0 {
                    s.bn = Some(base.to_string());
                }
            }
            Naming::BelowBase => {
                if i == 0 {
                    s.bn = Some(format!("{base}/"));
                }
                s.n = Some(relative_name(base, &r.path));
            }
            Naming::Full => s.n = Some(r.path.to_string()),
        }
        match r.time {
            None => {
                if bt != 0.0 {
                    s.bt = Some(Number::Int(0));
                    bt = 0.0;
                }
            }
            Some(x) => {
                let d = x - bt;
                if bt != 0.0 && bt + d == x {
                    if d != 0.0 {
                        s.t = Some(Number::from_time(d));
                    }
                } else if x != 0.0 {
                    s.bt = Some(Number::from_time(x));
                    bt = x;
                } else {
                    s.t = Some(Number::Int(0));
                }
            }
        }
        s.set_value(&r.value);
        out.push(s);
    }
    out
}

/// Builds a composite request pack: one record per path, `n` = the full path (`/` for the root).
pub fn from_paths(paths: &[Path]) -> Vec<SenmlRecord> {
    paths
        .iter()
        .map(|p| SenmlRecord {
            n: Some(p.to_string()),
            ..SenmlRecord::default()
        })
        .collect()
}

/// Hand-built object models shared by the SenML and LwM2M JSON tests (the built-in registry may
/// not exist yet, and tests should not depend on the DDF files anyway).
#[cfg(test)]
pub(crate) mod test_models {

    use crate::model::{ModelRegistry, ObjectModel, Operations, ResourceModel, Version};
    use crate::value::DataType;

    fn res(id: u16, multiple: bool, data_type: DataType) -> ResourceModel {
        ResourceModel::new(id, format!("R{id}"), Operations::RW, multiple, false, data_type)
    }

    fn obj(id: u16, resources: Vec<ResourceModel>) -> ObjectModel {
        ObjectModel::new(id, format!("O{id}"), Version::V1_0, true, resources)
    }

    /// The test object: resource `t` (0..=8) is single of type `TYPES[t]`, resource `10 + t` is
    /// multiple of the same type.
    pub const TEST_OBJECT: u16 = 9000;
    pub const TYPES: [DataType; 9] = [
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

    /// Objects 1, 3, 5, 65, 72, 3303, 3311, 3442 (the subsets the digest examples use) and 9000.
    pub fn models() -> ModelRegistry {
        use DataType::*;
        let mut m = ModelRegistry::new();
        m.add(obj(
            1,
            vec![
                res(0, false, Integer),
                res(1, false, UnsignedInteger),
                res(2, false, Integer),
            ],
        ));
        m.add(obj(
            3,
            vec![
                res(0, false, String),
                res(1, false, String),
                res(4, false, None),
                res(6, true, Integer),
                res(7, true, Integer),
                res(9, false, Integer),
                res(13, false, Time),
                res(14, false, String),
                res(16, false, String),
            ],
        ));
        m.add(obj(5, vec![res(1, false, String)]));
        m.add(obj(65, vec![res(0, true, Objlnk)]));
        m.add(obj(72, vec![res(2, false, Float)]));
        m.add(obj(3303, vec![res(5700, false, Float)]));
        m.add(obj(3311, vec![res(5850, false, Boolean), res(5851, false, Integer)]));
        m.add(obj(3442, vec![res(140, false, Boolean), res(150, false, Opaque)]));
        let mut test = Vec::new();
        for (t, ty) in TYPES.iter().enumerate() {
            test.push(res(t as u16, false, *ty));
            test.push(res(10 + t as u16, true, *ty));
        }
        m.add(obj(TEST_OBJECT, test));
        m
    }
}

/// Proptest strategies for records under one instance of the test object.
#[cfg(test)]
pub(crate) mod strategies {
    use proptest::prelude::*;

    use super::test_models::{TEST_OBJECT, TYPES};
    use crate::node::Record;
    use crate::path::Path;
    use crate::value::{DataType, ObjLink, Value};

    /// A value of type `ty`; floats are finite (JSON cannot carry the others).
    pub fn value(ty: DataType) -> BoxedStrategy<Value> {
        match ty {
            DataType::String => "\\PC{0,12}".prop_map(Value::String).boxed(),
            DataType::Corelnk => "\\PC{0,12}".prop_map(Value::Corelnk).boxed(),
            DataType::Integer => prop_oneof![Just(i64::MIN), Just(i64::MAX), any::<i64>()]
                .prop_map(Value::Integer)
                .boxed(),
            DataType::UnsignedInteger => prop_oneof![Just(u64::MAX), Just(i64::MAX as u64 + 1), any::<u64>()]
                .prop_map(Value::UnsignedInteger)
                .boxed(),
            DataType::Time => any::<i64>().prop_map(Value::Time).boxed(),
            DataType::Float => prop_oneof![
                any::<f64>().prop_filter("finite", |f| f.is_finite()),
                (-1000i32..1000).prop_map(|i| f64::from(i) / 4.0),
            ]
            .prop_map(Value::Float)
            .boxed(),
            DataType::Boolean => any::<bool>().prop_map(Value::Boolean).boxed(),
            DataType::Opaque => proptest::collection::vec(any::<u8>(), 0..24)
                .prop_map(Value::Opaque)
                .boxed(),
            DataType::Objlnk => (any::<u16>(), any::<u16>())
                .prop_map(|(o, i)| Value::Objlnk(ObjLink::new(o, i)))
                .boxed(),
            DataType::None => Just(Value::Boolean(false)).boxed(),
        }
    }

    /// An optional time: none, integral seconds, or any finite float.
    pub fn time() -> impl Strategy<Value = Option<f64>> {
        prop_oneof![
            Just(None),
            (-100_000i64..2_000_000_000).prop_map(|t| Some(t as f64)),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Some),
            Just(Some(0.0)),
        ]
    }

    /// One record under `/9000/instance`.
    pub fn record(instance: u16) -> impl Strategy<Value = Record> {
        (0usize..TYPES.len(), any::<bool>(), 0u16..4, time()).prop_flat_map(move |(t, multiple, ri, time)| {
            let ty = TYPES[t];
            let path = if multiple {
                Path::resource_instance(TEST_OBJECT, instance, 10 + t as u16, ri)
            } else {
                Path::resource(TEST_OBJECT, instance, t as u16)
            };
            value(ty).prop_map(move |value| Record { path, value, time })
        })
    }

    /// Up to 8 records under `/9000/i`, with the base path to encode them with.
    pub fn records() -> impl Strategy<Value = (Path, Vec<Record>)> {
        (0u16..3, 0u8..4).prop_flat_map(|(i, base_kind)| {
            proptest::collection::vec(record(i), 0..8).prop_map(move |recs| {
                let base = match base_kind {
                    0 => Path::ROOT,
                    1 => Path::object(TEST_OBJECT),
                    2 => Path::instance(TEST_OBJECT, i),
                    // the path of the first record: exercises "bn = path, no n" when all share it
                    _ => recs.first().map_or(Path::ROOT, |r| r.path),
                };
                (base, recs)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NoModels;
    use crate::value::ObjLink;

    fn rec(bn: Option<&str>, n: Option<&str>, v: Option<Number>) -> SenmlRecord {
        SenmlRecord {
            bn: bn.map(str::to_string),
            n: n.map(str::to_string),
            v,
            ..SenmlRecord::default()
        }
    }

    #[test]
    fn base_name_carries_forward() {
        let pack = vec![
            rec(Some("/3/0/"), Some("9"), Some(Number::Int(1))),
            rec(None, Some("6/0"), Some(Number::Int(2))),
            rec(Some("/4/0/"), Some("1"), Some(Number::Int(3))),
            rec(None, Some("/5/0/1"), Some(Number::Int(4))), // bn "/4/0/" + "/5/0/1" is not a path
        ];
        let err = to_records(ContentFormat::SenmlJson, pack.clone(), &NoModels).unwrap_err();
        assert!(matches!(err, FormatError::InvalidPath { .. }), "{err}");
        let got = to_records(ContentFormat::SenmlJson, pack[..3].to_vec(), &NoModels).unwrap();
        let paths: Vec<String> = got.iter().map(|r| r.path.to_string()).collect();
        assert_eq!(paths, ["/3/0/9", "/3/0/6/0", "/4/0/1"]);
    }

    #[test]
    fn time_resolution() {
        let mut a = rec(Some("/3303/0/5700"), None, Some(Number::Float(21.5)));
        a.bt = Some(Number::Int(1_700_000_000));
        let mut b = rec(None, None, Some(Number::Float(21.7)));
        b.t = Some(Number::Int(60));
        let mut c = rec(None, None, Some(Number::Float(21.9)));
        c.bt = Some(Number::Int(0));
        let mut d = rec(None, None, Some(Number::Float(22.0)));
        d.t = Some(Number::Int(-5));
        let got = to_records(ContentFormat::SenmlJson, vec![a, b, c, d], &NoModels).unwrap();
        let times: Vec<Option<f64>> = got.iter().map(|r| r.time).collect();
        assert_eq!(times, [Some(1.7e9), Some(1.7e9 + 60.0), None, Some(-5.0)]);
    }

    #[test]
    fn untyped_values() {
        assert_eq!(Number::Int(-3).untyped(), Value::Integer(-3));
        assert_eq!(Number::UInt(5).untyped(), Value::Integer(5));
        assert_eq!(Number::UInt(u64::MAX).untyped(), Value::UnsignedInteger(u64::MAX));
        assert_eq!(Number::Float(3.0).untyped(), Value::Float(3.0));
        let p = Path::resource(77, 0, 1);
        let t = |raw| typed_value(ContentFormat::SenmlCbor, &p, raw, &NoModels);
        assert_eq!(t(RawValue::String("x".into())), Ok(Value::String("x".into())));
        assert_eq!(
            t(RawValue::ObjLink("1:2".into())),
            Ok(Value::Objlnk(ObjLink::new(1, 2)))
        );
        assert!(matches!(
            t(RawValue::ObjLink("1-2".into())),
            Err(FormatError::Value { .. })
        ));
    }

    #[test]
    fn typed_values_follow_the_model() {
        let m = test_models::models();
        let f = ContentFormat::SenmlJson;
        let t = |p: &str, raw| typed_value(f, &p.parse().unwrap(), raw, &m);
        assert_eq!(
            t("/1/0/1", RawValue::Number(Number::Int(7))),
            Ok(Value::UnsignedInteger(7))
        );
        assert_eq!(t("/3/0/13", RawValue::Number(Number::Int(7))), Ok(Value::Time(7)));
        assert_eq!(
            t("/3303/0/5700", RawValue::Number(Number::Int(7))),
            Ok(Value::Float(7.0))
        );
        assert_eq!(t("/3/0/9", RawValue::Number(Number::Float(7.0))), Ok(Value::Integer(7)));
        assert!(t("/3/0/9", RawValue::Number(Number::Float(7.5))).is_err());
        assert!(t("/1/0/1", RawValue::Number(Number::Int(-1))).is_err());
        assert!(t("/3/0/9", RawValue::String("7".into())).is_err());
        assert!(t("/3/0/0", RawValue::Number(Number::Int(7))).is_err());
        assert!(t("/3/0/4", RawValue::Bool(true)).is_err());
        assert_eq!(
            t("/65/0/0/0", RawValue::String("66:0".into())),
            Ok(Value::Objlnk(ObjLink::new(66, 0)))
        );
        assert!(t("/3/0/0", RawValue::ObjLink("66:0".into())).is_err());
        assert!(t("/3442/0/150", RawValue::String("AQ==".into())).is_err());
        assert_eq!(
            typed_value(
                ContentFormat::Lwm2mJson,
                &"/3442/0/150".parse().unwrap(),
                RawValue::String("AQ==".into()),
                &m
            ),
            Ok(Value::Opaque(vec![1]))
        );
    }

    #[test]
    fn encoder_time_choice() {
        let p = Path::resource(3303, 0, 5700);
        let mk = |t: Option<f64>| Record {
            path: p,
            value: Value::Float(1.0),
            time: t,
        };
        let pack = from_records(&p, &[mk(Some(1.7e9)), mk(Some(1.7e9 + 60.0)), mk(None), mk(Some(0.0))]);
        assert_eq!(pack[0].bn.as_deref(), Some("/3303/0/5700"));
        assert_eq!(pack[0].bt, Some(Number::Int(1_700_000_000)));
        assert_eq!((pack[1].bt, pack[1].t), (None, Some(Number::Int(60))));
        assert_eq!((pack[2].bt, pack[2].t), (Some(Number::Int(0)), None));
        assert_eq!((pack[3].bt, pack[3].t), (None, Some(Number::Int(0))));
        assert!(pack.iter().all(|r| r.n.is_none()));
    }

    #[test]
    fn base64_lenient() {
        assert_eq!(
            decode_base64_lenient("ASNFZ4mrze8"),
            Some(vec![1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef])
        );
        assert_eq!(
            decode_base64_lenient("ASNFZ4mrze8="),
            decode_base64_lenient("ASNFZ4mrze8")
        );
        assert_eq!(decode_base64_lenient("+/8="), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_base64_lenient("-_8"), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_base64_lenient("a"), None);
        assert_eq!(decode_base64_lenient("!!!!"), None);
    }
}
