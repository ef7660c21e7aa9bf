//! Object models: what objects and resources exist, their types and operations.
//!
//! Models are loaded from OMA DDF XML files ([`ddf`]); the core objects 0-7, 21 and the IPSO
//! objects shipped in `crates/lwm2m-core/models/` are built in ([`builtin`]).

pub mod builtin;
pub mod ddf;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

pub use crate::value::DataType;

/// An object or enabler version `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version {
    pub major: u16,
    pub minor: u16,
}

impl Version {
    pub const V1_0: Version = Version { major: 1, minor: 0 };
    pub const V1_1: Version = Version { major: 1, minor: 1 };
    pub const V1_2: Version = Version { major: 1, minor: 2 };

    pub const fn new(major: u16, minor: u16) -> Version {
        Version { major, minor }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for Version {
    type Err = ModelError;
    /// Parses `1*DIGIT "." 1*DIGIT`; surrounding double quotes are accepted (1.0 clients wrote `ver="1.1"`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let t = t.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(t);
        let bad = || ModelError::InvalidVersion(s.to_string());
        let (a, b) = t.split_once('.').ok_or_else(bad)?;
        let num = |p: &str| -> Result<u16, ModelError> {
            if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse().map_err(|_| bad())
        };
        Ok(Version {
            major: num(a)?,
            minor: num(b)?,
        })
    }
}

/// Which DM operations a resource allows (DDF `Operations`: R, W, RW, E or empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Operations {
    pub read: bool,
    pub write: bool,
    pub execute: bool,
}

impl Operations {
    pub const NONE: Operations = Operations {
        read: false,
        write: false,
        execute: false,
    };
    pub const R: Operations = Operations {
        read: true,
        write: false,
        execute: false,
    };
    pub const W: Operations = Operations {
        read: false,
        write: true,
        execute: false,
    };
    pub const RW: Operations = Operations {
        read: true,
        write: true,
        execute: false,
    };
    pub const E: Operations = Operations {
        read: false,
        write: false,
        execute: true,
    };

    /// Parses the DDF spelling (`R`, `W`, `RW`, `E`, empty). Unknown letters are an error.
    pub fn from_ddf(s: &str) -> Option<Operations> {
        let mut ops = Operations::NONE;
        for c in s.trim().chars() {
            match c.to_ascii_uppercase() {
                'R' => ops.read = true,
                'W' => ops.write = true,
                'E' => ops.execute = true,
                _ => return None,
            }
        }
        Some(ops)
    }

    /// True for an empty `Operations`: reachable only through bootstrap (all of object 0, /1/x/13-20).
    pub fn is_none(&self) -> bool {
        !self.read && !self.write && !self.execute
    }
}

impl fmt::Display for Operations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.read {
            f.write_str("R")?;
        }
        if self.write {
            f.write_str("W")?;
        }
        if self.execute {
            f.write_str("E")?;
        }
        Ok(())
    }
}

/// One resource definition (a DDF `Item`).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceModel {
    pub id: u16,
    pub name: String,
    pub operations: Operations,
    pub multiple: bool,
    pub mandatory: bool,
    pub data_type: DataType,
    /// `RangeEnumeration`, verbatim (empty when absent).
    pub range: String,
    /// `Units`, verbatim (empty when absent).
    pub units: String,
    pub description: String,
}

/// One object definition (a DDF `Object`).
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectModel {
    pub id: u16,
    pub name: String,
    pub description: String,
    /// `ObjectVersion` (1.0 when absent).
    pub version: Version,
    /// `LWM2MVersion` (1.0 when absent).
    pub lwm2m_version: Version,
    /// `ObjectURN`, verbatim.
    pub urn: String,
    pub multiple: bool,
    pub mandatory: bool,
    pub resources: BTreeMap<u16, ResourceModel>,
}

impl ResourceModel {
    /// A resource definition built in code (for objects defined without a DDF file).
    pub fn new(
        id: u16,
        name: impl Into<String>,
        operations: Operations,
        multiple: bool,
        mandatory: bool,
        data_type: DataType,
    ) -> ResourceModel {
        ResourceModel {
            id,
            name: name.into(),
            operations,
            multiple,
            mandatory,
            data_type,
            range: String::new(),
            units: String::new(),
            description: String::new(),
        }
    }
}

impl ObjectModel {
    /// An optional object definition built in code, for LwM2M 1.1, with the URN `urn:oma:lwm2m:x:ID[:VER]`.
    pub fn new(
        id: u16,
        name: impl Into<String>,
        version: Version,
        multiple: bool,
        resources: impl IntoIterator<Item = ResourceModel>,
    ) -> ObjectModel {
        let urn = if version == Version::V1_0 {
            format!("urn:oma:lwm2m:x:{id}")
        } else {
            format!("urn:oma:lwm2m:x:{id}:{version}")
        };
        ObjectModel {
            id,
            name: name.into(),
            description: String::new(),
            version,
            lwm2m_version: Version::V1_1,
            urn,
            multiple,
            mandatory: false,
            resources: resources.into_iter().map(|r| (r.id, r)).collect(),
        }
    }

    pub fn resource(&self, id: u16) -> Option<&ResourceModel> {
        self.resources.get(&id)
    }
}

/// Looks up object models. The codecs take `&dyn Models`, so a server can pass a per-client
/// view that honours the object versions the client registered with.
pub trait Models {
    /// The model to use for object `id`, if known.
    fn object(&self, id: u16) -> Option<&ObjectModel>;

    /// Shorthand: the model of resource `rid` of object `oid`.
    fn resource(&self, oid: u16, rid: u16) -> Option<&ResourceModel> {
        self.object(oid).and_then(|o| o.resource(rid))
    }
}

/// No models at all: the codecs then fall back to untyped decoding.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoModels;

impl Models for NoModels {
    fn object(&self, _id: u16) -> Option<&ObjectModel> {
        None
    }
}

/// Errors while loading or registering models.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("invalid version {0:?}: expected MAJOR.MINOR, e.g. 1.1")]
    InvalidVersion(String),
    #[error("{file}: not well-formed XML: {reason}")]
    Xml { file: String, reason: String },
    #[error("{file}: {reason}")]
    Ddf { file: String, reason: String },
    #[error("cannot read {file}: {reason}")]
    Io { file: String, reason: String },
}

/// A set of object models, several versions per object allowed.
///
/// [`ModelRegistry::object`] returns the *preferred* version of each object: the one set with
/// [`ModelRegistry::prefer`], else the LwM2M 1.1.1 default version (digest §1.4) when loaded,
/// else the highest loaded version.
#[derive(Debug, Clone, Default)]
pub struct ModelRegistry {
    objects: BTreeMap<u16, BTreeMap<Version, Arc<ObjectModel>>>,
    preferred: BTreeMap<u16, Version>,
}

/// The default object version for LwM2M 1.1.1 (digest §1.4); 1.0 for every other object.
pub fn default_version(object_id: u16) -> Version {
    match object_id {
        0 | 1 | 3 => Version::V1_1,
        4 => Version::V1_2,
        _ => Version::V1_0,
    }
}

impl ModelRegistry {
    /// An empty registry.
    pub fn new() -> ModelRegistry {
        ModelRegistry::default()
    }

    /// Adds (or replaces) a model, keyed by its id and version.
    pub fn add(&mut self, model: ObjectModel) {
        self.objects
            .entry(model.id)
            .or_default()
            .insert(model.version, Arc::new(model));
    }

    /// Makes `version` the one [`ModelRegistry::object`] returns for `object_id`.
    /// Returns false (and changes nothing) when that version is not loaded.
    pub fn prefer(&mut self, object_id: u16, version: Version) -> bool {
        let known = self.objects.get(&object_id).is_some_and(|v| v.contains_key(&version));
        if known {
            self.preferred.insert(object_id, version);
        }
        known
    }

    /// A specific version of an object.
    pub fn object_version(&self, object_id: u16, version: Version) -> Option<&ObjectModel> {
        self.objects.get(&object_id)?.get(&version).map(|m| m.as_ref())
    }

    /// All loaded versions of an object, lowest first.
    pub fn versions(&self, object_id: u16) -> Vec<Version> {
        self.objects
            .get(&object_id)
            .map(|v| v.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Every object id that has at least one model.
    pub fn object_ids(&self) -> impl Iterator<Item = u16> + '_ {
        self.objects.keys().copied()
    }

    /// Number of (object, version) models loaded.
    pub fn len(&self) -> usize {
        self.objects.values().map(|v| v.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

impl Models for ModelRegistry {
    fn object(&self, id: u16) -> Option<&ObjectModel> {
        let versions = self.objects.get(&id)?;
        let want = self.preferred.get(&id).copied().unwrap_or_else(|| default_version(id));
        versions
            .get(&want)
            .or_else(|| versions.values().next_back())
            .map(|m| m.as_ref())
    }
}

impl<M: Models + ?Sized> Models for &M {
    fn object(&self, id: u16) -> Option<&ObjectModel> {
        (**self).object(id)
    }
}

impl<M: Models + ?Sized> Models for Arc<M> {
    fn object(&self, id: u16) -> Option<&ObjectModel> {
        (**self).object(id)
    }
}
