//! application/cbor (60): one value as one CBOR data item.
use crate::error::FormatError;
use crate::format::ContentFormat;
use crate::path::Path;
use crate::value::{DataType, Value};
#[allow(dead_code)]
const F: ContentFormat = ContentFormat::Cbor;

/// Encodes one value as a CBOR data item.
pub fn encode(value: &Value) -> Vec<u8> {
    let _ = value;
    Vec::new()
}

/// Decodes one CBOR data item; `ty` from the model, or inferred from the CBOR major type when unknown.
pub fn decode(path: &Path, payload: &[u8], ty: Option<DataType>) -> Result<Value, FormatError> {
    let _ = (path, payload, ty);
    Err(FormatError::Unsupported {
        format: F,
        reason: "not implemented yet".into(),
    })
}
