//! application/octet-stream (42): one Opaque value, raw bytes.
use crate::error::FormatError;
use crate::format::ContentFormat;
use crate::path::Path;
use crate::value::{DataType, Value};
const F: ContentFormat = ContentFormat::Opaque;

/// Encodes an Opaque value (other types are an error).
pub fn encode(path: &Path, value: &Value) -> Result<Vec<u8>, FormatError> {
    let _ = (path, value);
    Err(FormatError::Unsupported {
        format: F,
        reason: "not implemented yet".into(),
    })
}

/// Decodes raw bytes; `ty` must be Opaque or unknown.
pub fn decode(path: &Path, payload: &[u8], ty: Option<DataType>) -> Result<Value, FormatError> {
    let _ = (path, payload, ty);
    Err(FormatError::Unsupported {
        format: F,
        reason: "not implemented yet".into(),
    })
}
