//! application/octet-stream (42): one Opaque value, raw bytes (digest §8.3).
//!
//! Only resources of type Opaque travel in this format; a request for any other type is an
//! error, which a client answers with 4.06 Not Acceptable (read) or 4.15 (write).
use crate::error::FormatError;
use crate::format::ContentFormat;
use crate::path::Path;
use crate::value::{DataType, Value};
const F: ContentFormat = ContentFormat::Opaque;

/// Encodes an Opaque value (other types are an error).
pub fn encode(path: &Path, value: &Value) -> Result<Vec<u8>, FormatError> {
    match value {
        Value::Opaque(b) => Ok(b.clone()),
        other => Err(FormatError::Unsupported {
            format: F,
            reason: format!(
                "{path} holds a value of type {}; the opaque format carries only Opaque values",
                other.data_type()
            ),
        }),
    }
}

/// Decodes raw bytes; `ty` must be Opaque or unknown.
pub fn decode(path: &Path, payload: &[u8], ty: Option<DataType>) -> Result<Value, FormatError> {
    match ty {
        None | Some(DataType::Opaque) => Ok(Value::Opaque(payload.to_vec())),
        Some(DataType::None) => Err(FormatError::Unsupported {
            format: F,
            reason: format!("{path} is an executable resource and has no value"),
        }),
        Some(t) => Err(FormatError::Unsupported {
            format: F,
            reason: format!("{path} has type {t}; the opaque format carries only Opaque values"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p() -> Path {
        Path::resource(5, 0, 0)
    }

    #[test]
    fn opaque_only() {
        assert_eq!(encode(&p(), &Value::Opaque(vec![0, 0xff, 7])), Ok(vec![0, 0xff, 7]));
        assert_eq!(encode(&p(), &Value::Opaque(vec![])), Ok(vec![]));
        let e = encode(&Path::resource(3, 0, 0), &Value::String("x".into())).unwrap_err();
        assert!(matches!(e, FormatError::Unsupported { format: F, .. }));
        assert!(e.to_string().contains("/3/0/0 holds a value of type String"), "{e}");
        let e = encode(&p(), &Value::UnsignedInteger(1)).unwrap_err();
        assert!(e.to_string().contains("Unsigned Integer"), "{e}");

        assert_eq!(
            decode(&p(), b"\x01\x02", Some(DataType::Opaque)),
            Ok(Value::Opaque(vec![1, 2]))
        );
        assert_eq!(decode(&p(), b"", None), Ok(Value::Opaque(vec![])));
        let e = decode(&Path::resource(3, 0, 9), b"1", Some(DataType::Integer)).unwrap_err();
        assert!(e.to_string().contains("/3/0/9 has type Integer"), "{e}");
        let e = decode(&Path::resource(3, 0, 4), b"", Some(DataType::None)).unwrap_err();
        assert!(e.to_string().contains("executable"), "{e}");
    }

    proptest! {
        #[test]
        fn round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let v = Value::Opaque(bytes);
            let enc = encode(&p(), &v).unwrap();
            prop_assert_eq!(decode(&p(), &enc, Some(DataType::Opaque)).unwrap(), v);
        }
    }
}
