//! text/plain (0): one value as text (digest §8.2, §8.3).
use crate::error::FormatError;
use crate::format::ContentFormat;
use crate::path::Path;
use crate::value::{DataType, Value};
const F: ContentFormat = ContentFormat::Text;

/// Encodes one value as text/plain.
pub fn encode(value: &Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

/// Decodes one text/plain value of type `ty` (the value at `path`).
pub fn decode(path: &Path, payload: &[u8], ty: DataType) -> Result<Value, FormatError> {
    let _ = (path, payload, ty);
    Err(FormatError::Unsupported {
        format: F,
        reason: "not implemented yet".into(),
    })
}
