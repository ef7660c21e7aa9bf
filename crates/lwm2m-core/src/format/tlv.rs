//! LwM2M TLV (11542), digest §8.5.
use crate::error::FormatError;
use crate::format::ContentFormat;
use crate::model::Models;
use crate::node::Node;
use crate::path::Path;
const F: ContentFormat = ContentFormat::Tlv;

/// Encodes the node at `path`.
pub fn encode(path: &Path, node: &Node) -> Result<Vec<u8>, FormatError> {
    let _ = (path, node);
    Err(FormatError::Unsupported {
        format: F,
        reason: "not implemented yet".into(),
    })
}

/// Decodes a TLV payload into the node at `path`, typing values by the models (Opaque when unknown).
pub fn decode(path: &Path, payload: &[u8], models: &dyn Models) -> Result<Node, FormatError> {
    let _ = (path, payload, models);
    Err(FormatError::Unsupported {
        format: F,
        reason: "not implemented yet".into(),
    })
}
