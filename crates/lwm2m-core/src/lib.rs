//! `lwm2m-core`: the base every LwM2M role stands on.
//!
//! * [`path`]: LwM2M paths (`/o`, `/o/i`, `/o/i/r`, `/o/i/r/ri`).
//! * [`value`]: typed values for every LwM2M data type.
//! * [`node`]: the node tree (object, instance, resource, resource instance) and flat records.
//! * [`model`]: object models, loaded from OMA DDF XML, with built-in core objects.
//! * [`format`]: encoders and decoders for every LwM2M 1.1 content format.
//! * [`attributes`]: notification and property attributes (`pmin`, `gt`, `dim`, ...).
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
