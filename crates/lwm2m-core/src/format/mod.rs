//! Encoders and decoders for every LwM2M 1.1 content format (digest §8).
//!
//! | format | module | carries |
//! |---|---|---|
//! | text/plain (0) | [`text`] | one value |
//! | opaque (42) | [`opaque`] | one Opaque value |
//! | CBOR (60) | [`cbor`] | one value |
//! | TLV (11542) | [`tlv`] | any node |
//! | LwM2M JSON (11543) | [`lwm2m_json`] | records (any node, timestamps) |
//! | SenML JSON (110), SenML CBOR (112) | [`senml_json`], [`senml_cbor`] | records (any node, composite, timestamps) |
//! | CoRE link format (40) | [`link`] | links (registration, Discover, Bootstrap-Discover) |
//!
//! [`encode`] and [`decode`] work on the [`Node`] at one path for every value format;
//! [`encode_records`] and [`decode_records`] work on flat, possibly timestamped records (SenML and
//! LwM2M JSON only, used for composite operations, Send and timestamped notifications).

pub mod cbor;
pub mod link;
pub mod lwm2m_json;
pub mod opaque;
pub mod senml;
pub mod senml_cbor;
pub mod senml_json;
pub mod text;
pub mod tlv;

use std::fmt;
use std::str::FromStr;

use crate::error::FormatError;
use crate::model::Models;
use crate::node::{Node, Record, ResourceValue};
use crate::path::Path;
use crate::value::DataType;

/// An LwM2M content format, identified by its CoAP Content-Format number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContentFormat {
    Text,
    Link,
    Opaque,
    Cbor,
    SenmlJson,
    SenmlCbor,
    Tlv,
    Lwm2mJson,
}

impl ContentFormat {
    pub const ALL: [ContentFormat; 8] = [
        ContentFormat::Text,
        ContentFormat::Link,
        ContentFormat::Opaque,
        ContentFormat::Cbor,
        ContentFormat::SenmlJson,
        ContentFormat::SenmlCbor,
        ContentFormat::Tlv,
        ContentFormat::Lwm2mJson,
    ];

    /// The CoAP Content-Format number.
    pub fn code(self) -> u16 {
        match self {
            ContentFormat::Text => 0,
            ContentFormat::Link => 40,
            ContentFormat::Opaque => 42,
            ContentFormat::Cbor => 60,
            ContentFormat::SenmlJson => 110,
            ContentFormat::SenmlCbor => 112,
            ContentFormat::Tlv => 11542,
            ContentFormat::Lwm2mJson => 11543,
        }
    }

    /// From a CoAP Content-Format number; accepts the pre-registration TLV/JSON numbers 1542/1543.
    pub fn from_code(code: u16) -> Option<ContentFormat> {
        Some(match code {
            0 => ContentFormat::Text,
            40 => ContentFormat::Link,
            42 => ContentFormat::Opaque,
            60 => ContentFormat::Cbor,
            110 => ContentFormat::SenmlJson,
            112 => ContentFormat::SenmlCbor,
            11542 | 1542 => ContentFormat::Tlv,
            11543 | 1543 => ContentFormat::Lwm2mJson,
            _ => return None,
        })
    }

    /// The short name used on the command line (`text`, `senml-cbor`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ContentFormat::Text => "text",
            ContentFormat::Link => "link",
            ContentFormat::Opaque => "opaque",
            ContentFormat::Cbor => "cbor",
            ContentFormat::SenmlJson => "senml-json",
            ContentFormat::SenmlCbor => "senml-cbor",
            ContentFormat::Tlv => "tlv",
            ContentFormat::Lwm2mJson => "lwm2m-json",
        }
    }

    /// The media type (`application/senml+cbor`, ...).
    pub fn media_type(self) -> &'static str {
        match self {
            ContentFormat::Text => "text/plain",
            ContentFormat::Link => "application/link-format",
            ContentFormat::Opaque => "application/octet-stream",
            ContentFormat::Cbor => "application/cbor",
            ContentFormat::SenmlJson => "application/senml+json",
            ContentFormat::SenmlCbor => "application/senml+cbor",
            ContentFormat::Tlv => "application/vnd.oma.lwm2m+tlv",
            ContentFormat::Lwm2mJson => "application/vnd.oma.lwm2m+json",
        }
    }

    /// Formats that carry exactly one value (text, opaque, CBOR).
    pub fn is_single_value(self) -> bool {
        matches!(self, ContentFormat::Text | ContentFormat::Opaque | ContentFormat::Cbor)
    }

    /// Formats that carry records with full paths and timestamps (SenML JSON/CBOR, LwM2M JSON).
    pub fn is_record_based(self) -> bool {
        matches!(
            self,
            ContentFormat::SenmlJson | ContentFormat::SenmlCbor | ContentFormat::Lwm2mJson
        )
    }
}

impl fmt::Display for ContentFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

/// An unknown content-format name or number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown content format {0:?}: use text, opaque, cbor, tlv, lwm2m-json, senml-json, senml-cbor, link or a CoAP number (0, 42, 60, 11542, 11543, 110, 112, 40)")]
pub struct UnknownFormat(pub String);

impl FromStr for ContentFormat {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let l = s.trim().to_ascii_lowercase();
        if let Ok(n) = l.parse::<u16>() {
            return ContentFormat::from_code(n).ok_or_else(|| UnknownFormat(s.to_string()));
        }
        ContentFormat::ALL
            .into_iter()
            .find(|f| f.name() == l || f.media_type() == l)
            .or(match l.as_str() {
                "plain" | "text/plain" => Some(ContentFormat::Text),
                "json" => Some(ContentFormat::Lwm2mJson),
                "link-format" => Some(ContentFormat::Link),
                _ => None,
            })
            .ok_or_else(|| UnknownFormat(s.to_string()))
    }
}

/// The data type of the value at `path` (a resource or resource-instance path) from the models.
pub fn value_type(models: &dyn Models, path: &Path) -> Option<DataType> {
    let (o, r) = (path.object_id()?, path.resource_id()?);
    models.resource(o, r).map(|m| m.data_type)
}

/// Encodes the node at `path` in `format`.
pub fn encode(format: ContentFormat, path: &Path, node: &Node) -> Result<Vec<u8>, FormatError> {
    if !node.fits(path) {
        return Err(FormatError::Unsupported {
            format,
            reason: format!(
                "the content does not fit the path {path} (a node of depth {} with id {})",
                node.depth(),
                node.id()
            ),
        });
    }
    match format {
        ContentFormat::Text | ContentFormat::Opaque | ContentFormat::Cbor => {
            let value = match node {
                Node::Resource(r) => match &r.value {
                    ResourceValue::Single(v) => v,
                    ResourceValue::Multiple(_) => return Err(FormatError::NotSingleValue { format, path: *path }),
                },
                Node::ResourceInstance { value, .. } => value,
                _ => return Err(FormatError::NotSingleValue { format, path: *path }),
            };
            match format {
                ContentFormat::Text => Ok(text::encode(value)),
                ContentFormat::Opaque => opaque::encode(path, value),
                _ => Ok(cbor::encode(value)),
            }
        }
        ContentFormat::Tlv => tlv::encode(path, node),
        ContentFormat::SenmlJson | ContentFormat::SenmlCbor | ContentFormat::Lwm2mJson => {
            encode_records(format, path, &node.to_records(path))
        }
        ContentFormat::Link => Err(FormatError::Unsupported {
            format,
            reason: "link format carries links, not values; use format::link".into(),
        }),
    }
}

/// Decodes a payload in `format` into the node at `path`.
pub fn decode(format: ContentFormat, path: &Path, payload: &[u8], models: &dyn Models) -> Result<Node, FormatError> {
    match format {
        ContentFormat::Text | ContentFormat::Opaque | ContentFormat::Cbor => {
            if path.len() < 3 {
                return Err(FormatError::NotSingleValue { format, path: *path });
            }
            let ty = value_type(models, path);
            if path.is_resource()
                && models
                    .resource(path.ids()[0], path.ids()[2])
                    .is_some_and(|m| m.multiple)
            {
                return Err(FormatError::NotSingleValue { format, path: *path });
            }
            let value = match format {
                ContentFormat::Text => text::decode(path, payload, ty.unwrap_or(DataType::String))?,
                ContentFormat::Opaque => opaque::decode(path, payload, ty)?,
                _ => cbor::decode(path, payload, ty)?,
            };
            let id = *path.ids().last().unwrap_or(&0);
            Ok(if path.is_resource() {
                Node::Resource(crate::node::ResourceNode::single(id, value))
            } else {
                Node::ResourceInstance { id, value }
            })
        }
        ContentFormat::Tlv => tlv::decode(path, payload, models),
        ContentFormat::SenmlJson | ContentFormat::SenmlCbor | ContentFormat::Lwm2mJson => {
            let records = decode_records(format, path, payload, models)?;
            Node::from_records(format, path, &records, models)
        }
        ContentFormat::Link => Err(FormatError::Unsupported {
            format,
            reason: "link format carries links, not values; use format::link".into(),
        }),
    }
}

/// Encodes records (SenML JSON/CBOR or LwM2M JSON). `base` is the request path: LwM2M JSON
/// names are relative to it; SenML uses it as the base name where every record lies under it.
pub fn encode_records(format: ContentFormat, base: &Path, records: &[Record]) -> Result<Vec<u8>, FormatError> {
    match format {
        ContentFormat::SenmlJson => senml_json::encode(base, records),
        ContentFormat::SenmlCbor => senml_cbor::encode(base, records),
        ContentFormat::Lwm2mJson => lwm2m_json::encode(base, records),
        _ => Err(FormatError::Unsupported {
            format,
            reason: "only SenML JSON, SenML CBOR and LwM2M JSON carry records".into(),
        }),
    }
}

/// Decodes records (SenML JSON/CBOR or LwM2M JSON), typed by the models where known.
/// `base` is the request path (LwM2M JSON names may be relative to it when `bn` is absent).
pub fn decode_records(
    format: ContentFormat,
    base: &Path,
    payload: &[u8],
    models: &dyn Models,
) -> Result<Vec<Record>, FormatError> {
    match format {
        ContentFormat::SenmlJson => senml_json::decode(payload, models),
        ContentFormat::SenmlCbor => senml_cbor::decode(payload, models),
        ContentFormat::Lwm2mJson => lwm2m_json::decode(base, payload, models),
        _ => Err(FormatError::Unsupported {
            format,
            reason: "only SenML JSON, SenML CBOR and LwM2M JSON carry records".into(),
        }),
    }
}

/// Encodes a Read-Composite / Observe-Composite request body (names only).
pub fn encode_paths(format: ContentFormat, paths: &[Path]) -> Result<Vec<u8>, FormatError> {
    match format {
        ContentFormat::SenmlJson => senml_json::encode_paths(paths),
        ContentFormat::SenmlCbor => senml_cbor::encode_paths(paths),
        _ => Err(FormatError::Unsupported {
            format,
            reason: "composite requests use SenML JSON or SenML CBOR".into(),
        }),
    }
}

/// Decodes a Read-Composite / Observe-Composite request body (names only).
pub fn decode_paths(format: ContentFormat, payload: &[u8]) -> Result<Vec<Path>, FormatError> {
    match format {
        ContentFormat::SenmlJson => senml_json::decode_paths(payload),
        ContentFormat::SenmlCbor => senml_cbor::decode_paths(payload),
        _ => Err(FormatError::Unsupported {
            format,
            reason: "composite requests use SenML JSON or SenML CBOR".into(),
        }),
    }
}
