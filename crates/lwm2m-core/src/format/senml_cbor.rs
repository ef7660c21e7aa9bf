//! SenML (senml_cbor), digest §8.6.
use crate::error::FormatError;
use crate::format::ContentFormat;
use crate::model::Models;
use crate::node::Record;
use crate::path::Path;
const F: ContentFormat = ContentFormat::SenmlCbor;

/// Encodes records; `base` is the request path (used as base name where it fits).
pub fn encode(base: &Path, records: &[Record]) -> Result<Vec<u8>, FormatError> {
    let _ = (base, records);
    Err(FormatError::Unsupported {
        format: F,
        reason: "not implemented yet".into(),
    })
}

/// Decodes a pack into records with absolute paths, typed by the models.
pub fn decode(payload: &[u8], models: &dyn Models) -> Result<Vec<Record>, FormatError> {
    let _ = (payload, models);
    Err(FormatError::Unsupported {
        format: F,
        reason: "not implemented yet".into(),
    })
}

/// Encodes a composite request (names only).
pub fn encode_paths(paths: &[Path]) -> Result<Vec<u8>, FormatError> {
    let _ = paths;
    Err(FormatError::Unsupported {
        format: F,
        reason: "not implemented yet".into(),
    })
}

/// Decodes a composite request (names only).
pub fn decode_paths(payload: &[u8]) -> Result<Vec<Path>, FormatError> {
    let _ = payload;
    Err(FormatError::Unsupported {
        format: F,
        reason: "not implemented yet".into(),
    })
}
