//! LwM2M Access Control (Object 2, v1.0). The rules that use it are in [`crate::dm`] (digest §7).

use std::collections::BTreeMap;
use std::fmt;

use lwm2m_core::path::MAX_ID;
use lwm2m_core::{InstanceNode, ResourceNode, ResourceValue, Value};

use super::{builtin_model, node_u16, ACCESS_CONTROL};
use crate::object::{Behavior, DmError, InstanceStore, SimpleObject};

/// An ACL bit mask (`/2/x/2/ssid`): 1 Read, 2 Write, 4 Execute, 8 Delete, 16 Create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AccessRights(pub u16);

impl AccessRights {
    /// No right.
    pub const NONE: AccessRights = AccessRights(0);
    /// Read, Observe, Write-Attributes.
    pub const READ: AccessRights = AccessRights(1);
    /// Write.
    pub const WRITE: AccessRights = AccessRights(2);
    /// Execute.
    pub const EXECUTE: AccessRights = AccessRights(4);
    /// Delete.
    pub const DELETE: AccessRights = AccessRights(8);
    /// Create (object-level ACL instances only).
    pub const CREATE: AccessRights = AccessRights(16);
    /// R, W, E and D: what an instance's owner gets.
    pub const FULL_INSTANCE: AccessRights = AccessRights(15);

    /// Whether every bit of `other` is set here.
    pub fn contains(self, other: AccessRights) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of two masks.
    pub fn union(self, other: AccessRights) -> AccessRights {
        AccessRights(self.0 | other.0)
    }
}

impl fmt::Display for AccessRights {
    /// `RWED-` style: one letter per right (R, W, E, D, C), `-` when absent.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, c) in [(1, 'R'), (2, 'W'), (4, 'E'), (8, 'D'), (16, 'C')] {
            write!(f, "{}", if self.0 & bit != 0 { c } else { '-' })?;
        }
        Ok(())
    }
}

/// One Access Control instance, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclInstance {
    /// `/2/x/0` the governed Object ID.
    pub object_id: u16,
    /// `/2/x/1` the governed Object Instance ID; 65535 = the object itself (Create right).
    pub instance_id: u16,
    /// `/2/x/2` ACL: SSID (0 = default for servers without an entry) → rights.
    pub acl: BTreeMap<u16, AccessRights>,
    /// `/2/x/3` Access Control Owner; 65535 = managed by bootstrap only.
    pub owner: u16,
}

impl AclInstance {
    /// An instance-level ACL owned by `owner` with no entries.
    pub fn new(object_id: u16, instance_id: u16, owner: u16) -> AclInstance {
        AclInstance {
            object_id,
            instance_id,
            acl: BTreeMap::new(),
            owner,
        }
    }

    /// The object-level ACL instance of `object_id` (instance 65535, owner 65535).
    pub fn object_level(object_id: u16) -> AclInstance {
        AclInstance::new(object_id, MAX_ID, MAX_ID)
    }

    /// Adds an entry.
    pub fn with(mut self, ssid: u16, rights: AccessRights) -> AclInstance {
        self.acl.insert(ssid, rights);
        self
    }

    /// Whether this is the object-level instance (instance id 65535).
    pub fn is_object_level(&self) -> bool {
        self.instance_id == MAX_ID
    }

    /// The resources of this instance.
    pub fn to_node(&self, iid: u16) -> InstanceNode {
        InstanceNode::new(
            iid,
            [
                ResourceNode::single(0, Value::Integer(i64::from(self.object_id))),
                ResourceNode::single(1, Value::Integer(i64::from(self.instance_id))),
                ResourceNode::multiple(2, self.acl.iter().map(|(s, r)| (*s, Value::Integer(i64::from(r.0))))),
                ResourceNode::single(3, Value::Integer(i64::from(self.owner))),
            ],
        )
    }

    /// Reads an instance back; `None` when Object ID or Object Instance ID is missing or out of range.
    /// A missing owner reads as 65535 (bootstrap-managed); ACL entries out of range are dropped.
    pub fn from_node(node: &InstanceNode) -> Option<AclInstance> {
        let acl = match node.resources.get(&2).map(|r| &r.value) {
            Some(ResourceValue::Multiple(m)) => m
                .iter()
                .filter_map(|(s, v)| match v {
                    Value::Integer(i) => u16::try_from(*i).ok().map(|r| (*s, AccessRights(r))),
                    Value::UnsignedInteger(u) => u16::try_from(*u).ok().map(|r| (*s, AccessRights(r))),
                    _ => None,
                })
                .collect(),
            _ => BTreeMap::new(),
        };
        Some(AclInstance {
            object_id: node_u16(node, 0)?,
            instance_id: node_u16(node, 1)?,
            acl,
            owner: node_u16(node, 3).unwrap_or(MAX_ID),
        })
    }
}

/// Value checks: Object ID 1..65534... (0 and 65535 refused), Instance ID 0..65535, ACL values 16-bit,
/// owner 0..65535.
#[derive(Debug, Clone, Copy, Default)]
pub struct AclBehavior;

impl Behavior for AclBehavior {
    fn check_write(&self, _store: &InstanceStore, iid: u16, rid: u16, value: &ResourceValue) -> Result<(), DmError> {
        let bad = |what: String| Err(DmError::bad_request(format!("/2/{iid}/{rid}: {what}")));
        let in_range = |v: &Value, lo: i64, hi: i64| matches!(v, Value::Integer(i) if (lo..=hi).contains(i));
        match (rid, value) {
            (0, ResourceValue::Single(v)) if !in_range(v, 1, 65534) => bad(format!("Object ID {v:?} out of 1..65534")),
            (1 | 3, ResourceValue::Single(v)) if !in_range(v, 0, 65535) => bad(format!("{v:?} out of 0..65535")),
            (2, ResourceValue::Multiple(m)) => match m.values().find(|v| !in_range(v, 0, 65535)) {
                Some(v) => bad(format!("ACL value {v:?} is not a 16-bit mask")),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

/// The Access Control object type.
pub type AccessControlObject = SimpleObject<AclBehavior>;

/// An empty Access Control object.
pub fn access_control_object() -> AccessControlObject {
    SimpleObject::with_behavior(InstanceStore::new(builtin_model(ACCESS_CONTROL, None)), AclBehavior)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::ObjectHandler;
    use crate::objects::test_util::assert_node_matches_model;

    #[test]
    fn round_trip() {
        let a = AclInstance::new(3, 0, 101)
            .with(0, AccessRights::READ)
            .with(102, AccessRights(3));
        let node = a.to_node(7);
        assert_node_matches_model(&builtin_model(ACCESS_CONTROL, None), &node);
        assert_eq!(AclInstance::from_node(&node), Some(a));
        let o = AclInstance::object_level(3303).with(101, AccessRights::CREATE);
        assert!(o.is_object_level());
        assert_eq!(o.owner, 65535);
        assert_eq!(AclInstance::from_node(&InstanceNode::new(0, [])), None);
    }

    #[test]
    fn rights() {
        let r = AccessRights::READ.union(AccessRights::WRITE);
        assert!(r.contains(AccessRights::READ));
        assert!(!r.contains(AccessRights::EXECUTE));
        assert!(AccessRights::FULL_INSTANCE.contains(AccessRights::DELETE));
        assert!(!AccessRights::FULL_INSTANCE.contains(AccessRights::CREATE));
        assert_eq!(AccessRights(0b10101).to_string(), "R-E-C");
    }

    #[test]
    fn checks() {
        let obj = access_control_object().with_instance(AclInstance::new(3, 0, 1).to_node(0));
        let acl = |v: i64| ResourceValue::Multiple([(1u16, Value::Integer(v))].into_iter().collect());
        assert!(obj.check_write(0, 2, &acl(31)).is_ok());
        assert_eq!(obj.check_write(0, 2, &acl(70000)).unwrap_err().code(), (4, 0));
        assert_eq!(obj.check_write(0, 2, &acl(-1)).unwrap_err().code(), (4, 0));
        let single = |v: i64| ResourceValue::Single(Value::Integer(v));
        assert_eq!(obj.check_write(0, 0, &single(0)).unwrap_err().code(), (4, 0));
        assert_eq!(obj.check_write(0, 3, &single(65536)).unwrap_err().code(), (4, 0));
        assert!(obj.check_write(0, 3, &single(65535)).is_ok());
    }
}
