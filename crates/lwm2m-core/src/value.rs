//! Typed values for every LwM2M data type (digest §8.2).

use std::fmt;
use std::str::FromStr;

use crate::error::ValueError;

/// The LwM2M data types, as named by the DDF `Type` element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataType {
    String,
    Integer,
    UnsignedInteger,
    Float,
    Boolean,
    Opaque,
    Time,
    Objlnk,
    Corelnk,
    /// No value: executable resources (an empty `Type` in the DDF).
    None,
}

impl DataType {
    /// The DDF spelling (`"Unsigned Integer"`, `"Objlnk"`, ...; `""` for none).
    pub fn ddf_name(self) -> &'static str {
        match self {
            DataType::String => "String",
            DataType::Integer => "Integer",
            DataType::UnsignedInteger => "Unsigned Integer",
            DataType::Float => "Float",
            DataType::Boolean => "Boolean",
            DataType::Opaque => "Opaque",
            DataType::Time => "Time",
            DataType::Objlnk => "Objlnk",
            DataType::Corelnk => "Corelnk",
            DataType::None => "",
        }
    }

    /// Parses a DDF `Type` value. Case-insensitive; accepts `Unsigned Integer` and `UnsignedInteger`.
    pub fn from_ddf(s: &str) -> Option<DataType> {
        let norm: String = s
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        Some(match norm.as_str() {
            "string" => DataType::String,
            "integer" => DataType::Integer,
            "unsignedinteger" => DataType::UnsignedInteger,
            "float" => DataType::Float,
            "boolean" => DataType::Boolean,
            "opaque" => DataType::Opaque,
            "time" => DataType::Time,
            "objlnk" => DataType::Objlnk,
            "corelnk" => DataType::Corelnk,
            "" | "none" => DataType::None,
            _ => return None,
        })
    }

    /// Integer, Unsigned Integer and Float (the types `gt`, `lt` and `st` apply to).
    pub fn is_numeric(self) -> bool {
        matches!(self, DataType::Integer | DataType::UnsignedInteger | DataType::Float)
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if *self == DataType::None {
            "none"
        } else {
            self.ddf_name()
        })
    }
}

/// A reference to an Object Instance (`oid:iid`). The null link is `65535:65535`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjLink {
    pub object_id: u16,
    pub instance_id: u16,
}

impl ObjLink {
    pub const NULL: ObjLink = ObjLink {
        object_id: 65535,
        instance_id: 65535,
    };

    pub fn new(object_id: u16, instance_id: u16) -> ObjLink {
        ObjLink { object_id, instance_id }
    }
    pub fn is_null(&self) -> bool {
        *self == ObjLink::NULL
    }
}

impl fmt::Display for ObjLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.object_id, self.instance_id)
    }
}

impl FromStr for ObjLink {
    type Err = ValueError;
    /// Parses `"oid:iid"`, both parts decimal 0..65535.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ValueError::InvalidObjlnk(s.chars().take(64).collect());
        let (o, i) = s.split_once(':').ok_or_else(bad)?;
        let num = |p: &str| -> Result<u16, ValueError> {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse::<u16>().map_err(|_| bad())
        };
        Ok(ObjLink {
            object_id: num(o)?,
            instance_id: num(i)?,
        })
    }
}

/// One typed LwM2M value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(String),
    Integer(i64),
    UnsignedInteger(u64),
    Float(f64),
    Boolean(bool),
    Opaque(Vec<u8>),
    /// Unix time, signed seconds since 1970-01-01 UTC.
    Time(i64),
    Objlnk(ObjLink),
    /// A CoRE link-format string.
    Corelnk(String),
}

impl Value {
    pub fn data_type(&self) -> DataType {
        match self {
            Value::String(_) => DataType::String,
            Value::Integer(_) => DataType::Integer,
            Value::UnsignedInteger(_) => DataType::UnsignedInteger,
            Value::Float(_) => DataType::Float,
            Value::Boolean(_) => DataType::Boolean,
            Value::Opaque(_) => DataType::Opaque,
            Value::Time(_) => DataType::Time,
            Value::Objlnk(_) => DataType::Objlnk,
            Value::Corelnk(_) => DataType::Corelnk,
        }
    }

    /// The value as an `f64` if it is numeric (Integer, Unsigned Integer, Float, Time).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Integer(v) | Value::Time(v) => Some(v as f64),
            Value::UnsignedInteger(v) => Some(v as f64),
            Value::Float(v) => Some(v),
            _ => None,
        }
    }

    /// Converts this value to `target` where the conversion is lossless and meaningful:
    /// between the integer types (range-checked), Integer/Time, integral Float to integers,
    /// integers to Float, String/Corelnk, and String to Objlnk (`"oid:iid"`).
    /// Decoders of untyped formats (SenML `v`, JSON) use this once the model tells the type.
    pub fn convert(self, target: DataType) -> Result<Value, ValueError> {
        if self.data_type() == target {
            return Ok(self);
        }
        let from = self.data_type();
        let mismatch = || ValueError::TypeMismatch {
            expected: target,
            found: from,
        };
        match (self, target) {
            (Value::Integer(v) | Value::Time(v), DataType::Integer) => Ok(Value::Integer(v)),
            (Value::Integer(v) | Value::Time(v), DataType::Time) => Ok(Value::Time(v)),
            (Value::Integer(v) | Value::Time(v), DataType::UnsignedInteger) => u64::try_from(v)
                .map(Value::UnsignedInteger)
                .map_err(|_| ValueError::OutOfRange { target }),
            (Value::UnsignedInteger(v), DataType::Integer | DataType::Time) => {
                let v = i64::try_from(v).map_err(|_| ValueError::OutOfRange { target })?;
                Ok(if target == DataType::Time {
                    Value::Time(v)
                } else {
                    Value::Integer(v)
                })
            }
            (Value::Integer(v) | Value::Time(v), DataType::Float) => Ok(Value::Float(v as f64)),
            (Value::UnsignedInteger(v), DataType::Float) => Ok(Value::Float(v as f64)),
            (Value::Float(f), DataType::Integer | DataType::Time) => {
                if f.fract() != 0.0
                    || !f.is_finite()
                    || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f)
                {
                    return Err(ValueError::OutOfRange { target });
                }
                let v = f as i64;
                Ok(if target == DataType::Time {
                    Value::Time(v)
                } else {
                    Value::Integer(v)
                })
            }
            (Value::Float(f), DataType::UnsignedInteger) => {
                if f.fract() != 0.0 || !f.is_finite() || !(0.0..1.844_674_407_370_955_2e19).contains(&f) {
                    return Err(ValueError::OutOfRange { target });
                }
                Ok(Value::UnsignedInteger(f as u64))
            }
            (Value::String(s), DataType::Corelnk) => Ok(Value::Corelnk(s)),
            (Value::Corelnk(s), DataType::String) => Ok(Value::String(s)),
            (Value::String(s) | Value::Corelnk(s), DataType::Objlnk) => s.parse().map(Value::Objlnk),
            _ => Err(mismatch()),
        }
    }
}

impl fmt::Display for Value {
    /// The text/plain rendering (digest §8.2), except Opaque which is shown as base64 too.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use base64::Engine;
        match self {
            Value::String(s) | Value::Corelnk(s) => f.write_str(s),
            Value::Integer(v) | Value::Time(v) => write!(f, "{v}"),
            Value::UnsignedInteger(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Boolean(b) => f.write_str(if *b { "1" } else { "0" }),
            Value::Opaque(b) => f.write_str(&base64::engine::general_purpose::STANDARD.encode(b)),
            Value::Objlnk(l) => write!(f, "{l}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objlnk_parse() {
        assert_eq!("66:0".parse::<ObjLink>().unwrap(), ObjLink::new(66, 0));
        assert!("65535:65535".parse::<ObjLink>().unwrap().is_null());
        for bad in ["", "1", "1:", ":1", "1:2:3", "65536:0", "a:1", "-1:0", " 1:0"] {
            assert!(bad.parse::<ObjLink>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ddf_type_names() {
        for t in [
            DataType::String,
            DataType::Integer,
            DataType::UnsignedInteger,
            DataType::Float,
            DataType::Boolean,
            DataType::Opaque,
            DataType::Time,
            DataType::Objlnk,
            DataType::Corelnk,
            DataType::None,
        ] {
            assert_eq!(DataType::from_ddf(t.ddf_name()), Some(t));
        }
        assert_eq!(DataType::from_ddf("Bogus"), None);
    }

    #[test]
    fn conversions() {
        assert_eq!(Value::Float(3.0).convert(DataType::Integer), Ok(Value::Integer(3)));
        assert!(Value::Float(3.5).convert(DataType::Integer).is_err());
        assert_eq!(
            Value::Integer(-1).convert(DataType::UnsignedInteger),
            Err(ValueError::OutOfRange {
                target: DataType::UnsignedInteger
            })
        );
        assert_eq!(
            Value::UnsignedInteger(u64::MAX).convert(DataType::Float),
            Ok(Value::Float(u64::MAX as f64))
        );
        assert_eq!(
            Value::String("3:1".into()).convert(DataType::Objlnk),
            Ok(Value::Objlnk(ObjLink::new(3, 1)))
        );
        assert!(matches!(
            Value::Boolean(true).convert(DataType::Integer),
            Err(ValueError::TypeMismatch { .. })
        ));
        assert_eq!(Value::Integer(5).convert(DataType::Time), Ok(Value::Time(5)));
    }
}
