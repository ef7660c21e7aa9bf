//! The standard objects: Security (0), Server (1), Access Control (2), Device (3), Connectivity Monitoring (4),
//! Firmware Update (5), Location (6), Connectivity Statistics (7) and a simulated Temperature sensor (3303).
//!
//! Each is a [`SimpleObject`](crate::object::SimpleObject) with an object-specific
//! [`Behavior`](crate::object::Behavior) where the object has semantics beyond storing values, plus typed
//! structs for building instances ([`security::SecurityInstance`], [`server::ServerInstance`], ...) and reading
//! them back. Models come from `lwm2m_core::ModelRegistry::builtin()` in the LwM2M 1.1.1 default versions
//! (digest §1.4), except the Temperature sensor, which uses 3303 v1.1.

pub mod access_control;
pub mod connectivity;
pub mod device;
pub mod firmware;
pub mod location;
pub mod security;
pub mod server;
pub mod statistics;
pub mod temperature;

use lwm2m_core::model::Version;
use lwm2m_core::{InstanceNode, ModelRegistry, Models, ObjectModel, ResourceValue, Value};

/// Object id of LwM2M Security.
pub const SECURITY: u16 = 0;
/// Object id of LwM2M Server.
pub const SERVER: u16 = 1;
/// Object id of LwM2M Access Control.
pub const ACCESS_CONTROL: u16 = 2;
/// Object id of Device.
pub const DEVICE: u16 = 3;
/// Object id of Connectivity Monitoring.
pub const CONNECTIVITY_MONITORING: u16 = 4;
/// Object id of Firmware Update.
pub const FIRMWARE_UPDATE: u16 = 5;
/// Object id of Location.
pub const LOCATION: u16 = 6;
/// Object id of Connectivity Statistics.
pub const CONNECTIVITY_STATISTICS: u16 = 7;
/// Object id of OSCORE.
pub const OSCORE: u16 = 21;
/// Object id of the IPSO Temperature sensor.
pub const TEMPERATURE: u16 = 3303;

/// A built-in model: `version`, or the LwM2M 1.1.1 default version when `None`. If the model is missing
/// (never for the objects above), an empty optional model is returned rather than a panic.
pub fn builtin_model(object_id: u16, version: Option<Version>) -> ObjectModel {
    let reg = ModelRegistry::builtin();
    let found = match version {
        Some(v) => reg.object_version(object_id, v).cloned(),
        None => reg.object(object_id).cloned(),
    };
    found.unwrap_or_else(|| ObjectModel::new(object_id, "", version.unwrap_or(Version::V1_0), true, []))
}

/// The single value of a resource in an instance node.
pub(crate) fn node_value(node: &InstanceNode, rid: u16) -> Option<&Value> {
    match &node.resources.get(&rid)?.value {
        ResourceValue::Single(v) => Some(v),
        ResourceValue::Multiple(_) => None,
    }
}

/// An Integer/Unsigned Integer/Time resource as `i64`.
pub(crate) fn node_int(node: &InstanceNode, rid: u16) -> Option<i64> {
    match node_value(node, rid)? {
        Value::Integer(v) | Value::Time(v) => Some(*v),
        Value::UnsignedInteger(v) => i64::try_from(*v).ok(),
        Value::Float(f) if f.fract() == 0.0 && f.is_finite() && f.abs() < 9.0e18 => Some(*f as i64),
        _ => None,
    }
}

/// An Integer/Unsigned Integer/Time resource as `u64` (not negative).
pub(crate) fn node_uint(node: &InstanceNode, rid: u16) -> Option<u64> {
    match node_value(node, rid)? {
        Value::UnsignedInteger(v) => Some(*v),
        _ => node_int(node, rid).and_then(|v| u64::try_from(v).ok()),
    }
}

/// A resource as `u16`, when in range.
pub(crate) fn node_u16(node: &InstanceNode, rid: u16) -> Option<u16> {
    node_int(node, rid).and_then(|v| u16::try_from(v).ok())
}

/// A Boolean resource.
pub(crate) fn node_bool(node: &InstanceNode, rid: u16) -> Option<bool> {
    match node_value(node, rid)? {
        Value::Boolean(b) => Some(*b),
        _ => None,
    }
}

/// A String/Corelnk resource.
pub(crate) fn node_str(node: &InstanceNode, rid: u16) -> Option<&str> {
    match node_value(node, rid)? {
        Value::String(s) | Value::Corelnk(s) => Some(s),
        _ => None,
    }
}

/// An Opaque resource (a String is taken as its UTF-8 bytes).
pub(crate) fn node_bytes(node: &InstanceNode, rid: u16) -> Option<Vec<u8>> {
    match node_value(node, rid)? {
        Value::Opaque(b) => Some(b.clone()),
        Value::String(s) => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use lwm2m_core::{InstanceNode, ObjectModel, ResourceValue};

    /// Asserts that every value in `node` has the model's type and multiplicity.
    pub fn assert_node_matches_model(model: &ObjectModel, node: &InstanceNode) {
        for r in node.resources.values() {
            let m = model
                .resource(r.id)
                .unwrap_or_else(|| panic!("resource {} not in model {}", r.id, model.id));
            match &r.value {
                ResourceValue::Single(v) => {
                    assert!(!m.multiple, "/{}/x/{} is multiple", model.id, r.id);
                    assert_eq!(v.data_type(), m.data_type, "/{}/x/{}", model.id, r.id);
                }
                ResourceValue::Multiple(vs) => {
                    assert!(m.multiple, "/{}/x/{} is single", model.id, r.id);
                    for v in vs.values() {
                        assert_eq!(v.data_type(), m.data_type, "/{}/x/{}", model.id, r.id);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_models_are_the_default_versions() {
        assert_eq!(builtin_model(SERVER, None).version, Version::V1_1);
        assert_eq!(builtin_model(CONNECTIVITY_MONITORING, None).version, Version::V1_2);
        assert_eq!(builtin_model(TEMPERATURE, Some(Version::V1_1)).version, Version::V1_1);
        let missing = builtin_model(60000, None);
        assert_eq!(missing.id, 60000);
        assert!(missing.resources.is_empty());
    }
}
