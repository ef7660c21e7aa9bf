//! `lwm2m-core`: the base every LwM2M role stands on.
//!
//! * [`path`]: LwM2M paths (`/o`, `/o/i`, `/o/i/r`, `/o/i/r/ri`).
//! * [`value`]: typed values for every LwM2M data type.
//! * [`node`]: the node tree (object, instance, resource, resource instance) and flat records.
//! * [`model`]: object models, loaded from OMA DDF XML, with built-in core objects.
//! * [`format`]: encoders and decoders for every LwM2M 1.1 content format.
//! * [`attributes`]: notification and property attributes (`pmin`, `gt`, `dim`, ...).
//!
//! ```
//! use lwm2m_core::format::{self, ContentFormat};
//! use lwm2m_core::model::ModelRegistry;
//! use lwm2m_core::path::Path;
//!
//! let models = ModelRegistry::builtin();
//! let path: Path = "/3/0/9".parse()?;
//! let node = format::decode(ContentFormat::Tlv, &path, &[0xC1, 0x09, 0x64], &models)?;
//! let senml = format::encode(ContentFormat::SenmlJson, &path, &node)?;
//! assert_eq!(senml, br#"[{"bn":"/3/0/9","v":100}]"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! No IO and no async here: every function is a pure transformation, so the crate can be
//! fuzzed and property-tested exhaustively.
#![forbid(unsafe_code)]

pub mod attributes;
pub mod error;
pub mod format;
pub mod model;
pub mod node;
pub mod path;
pub mod value;

pub use error::{FormatError, PathError};
pub use format::ContentFormat;
pub use model::{DataType, ModelRegistry, Models, ObjectModel, ResourceModel};
pub use node::{InstanceNode, Node, ObjectNode, Record, ResourceNode, ResourceValue};
pub use path::Path;
pub use value::{ObjLink, Value};
