//! LwM2M JSON (11543, legacy), digest §8.7.
use crate::error::FormatError;
use crate::format::ContentFormat;
use crate::model::Models;
use crate::node::Record;
use crate::path::Path;
const F: ContentFormat = ContentFormat::Lwm2mJson;

/// Encodes records; names are relative to `base` (the request path).
pub fn encode(base: &Path, records: &[Record]) -> Result<Vec<u8>, FormatError> {
    let _ = (base, records);
    Err(FormatError::Unsupported {
        format: F,
        reason: "not implemented yet".into(),
    })
}

/// Decodes a payload into records with absolute paths, typed by the models.
pub fn decode(base: &Path, payload: &[u8], models: &dyn Models) -> Result<Vec<Record>, FormatError> {
    let _ = (base, payload, models);
    Err(FormatError::Unsupported {
        format: F,
        reason: "not implemented yet".into(),
    })
}
