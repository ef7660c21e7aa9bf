//! Access Control (digest §7): when it applies, the rights a server has on an instance (§7.3), the Create
//! right (object-level ACL instances), and the special cases of Object 2 itself.

use lwm2m_core::path::MAX_ID;
use lwm2m_core::Path;

use super::DataModel;
use crate::object::DmError;
use crate::objects::access_control::{AccessRights, AclInstance};
use crate::objects::ACCESS_CONTROL;

impl DataModel {
    /// Every Access Control instance that parses, with its instance id.
    pub fn acl_instances(&self) -> Vec<(u16, AclInstance)> {
        let Some(h) = self.handler(ACCESS_CONTROL) else {
            return Vec::new();
        };
        h.instances()
            .into_iter()
            .filter_map(|iid| {
                let node = self.instance_node(h, iid, |_| true);
                AclInstance::from_node(&node).map(|a| (iid, a))
            })
            .collect()
    }

    /// The ACL instance governing `oid`/`iid` (`iid` 65535: the object-level instance).
    pub fn acl_for(&self, oid: u16, iid: u16) -> Option<(u16, AclInstance)> {
        self.acl_instances()
            .into_iter()
            .find(|(_, a)| a.object_id == oid && a.instance_id == iid)
    }

    /// Whether Access Control applies (§7.1): Object 2 is supported, and there is more than one LwM2M Server
    /// account or Object 2 has instances. Otherwise every server has full access.
    pub fn acl_enforced(&self) -> bool {
        match self.handler(ACCESS_CONTROL) {
            None => false,
            Some(h) => self.server_ssids().len() > 1 || !h.instances().is_empty(),
        }
    }

    /// The rights server `ssid` has on instance `oid`/`iid` (§7.3):
    ///
    /// 1. Access Control does not apply → full rights;
    /// 2. Object 2 instances: Read for everyone, plus Write for the instance's Access Control Owner;
    /// 3. no ACL instance for the target → none;
    /// 4. the ACL has an entry for `ssid` → that entry;
    /// 5. `ssid` is the Access Control Owner → R, W, E, D;
    /// 6. the ACL has a default entry (id 0) → that entry;
    /// 7. otherwise none.
    pub fn access_rights(&self, ssid: u16, oid: u16, iid: u16) -> AccessRights {
        if !self.acl_enforced() {
            return AccessRights(0x1F);
        }
        if oid == ACCESS_CONTROL {
            let owner = self
                .handler(ACCESS_CONTROL)
                .and_then(|h| h.read(iid, 3).ok())
                .and_then(|v| match v {
                    lwm2m_core::ResourceValue::Single(lwm2m_core::Value::Integer(o)) => u16::try_from(o).ok(),
                    _ => None,
                });
            return if owner == Some(ssid) {
                AccessRights::READ.union(AccessRights::WRITE)
            } else {
                AccessRights::READ
            };
        }
        let Some((_, acl)) = self.acl_for(oid, iid) else {
            return AccessRights::NONE;
        };
        if let Some(r) = acl.acl.get(&ssid) {
            return *r;
        }
        if acl.owner == ssid {
            return AccessRights::FULL_INSTANCE;
        }
        acl.acl.get(&0).copied().unwrap_or(AccessRights::NONE)
    }

    /// Whether server `ssid` may create instances of `oid`: the Create bit of its entry (or the default entry)
    /// in the object-level ACL instance (`oid`, 65535). Always true when Access Control does not apply.
    pub fn may_create(&self, ssid: u16, oid: u16) -> bool {
        if !self.acl_enforced() {
            return true;
        }
        let Some((_, acl)) = self.acl_for(oid, MAX_ID) else {
            return false;
        };
        acl.acl
            .get(&ssid)
            .or_else(|| acl.acl.get(&0))
            .is_some_and(|r| r.contains(AccessRights::CREATE))
    }

    /// 4.01 unless server `ssid` holds `need` on `oid`/`iid`.
    pub(crate) fn check_access(
        &self,
        ssid: u16,
        oid: u16,
        iid: u16,
        need: AccessRights,
        op: &str,
    ) -> Result<(), DmError> {
        let have = self.access_rights(ssid, oid, iid);
        if have.contains(need) {
            Ok(())
        } else {
            Err(DmError::unauthorized(format!(
                "server {ssid} may not {op} {} (rights {have}, needs {need})",
                Path::instance(oid, iid)
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn single_server_without_acl_instances_has_full_access() {
        let dm = single_server();
        assert!(!dm.acl_enforced());
        assert_eq!(dm.access_rights(101, 3, 0), AccessRights(31));
        assert!(dm.may_create(101, 3303));
        // Even an unknown server: ACLs do not apply.
        assert!(dm.check_access(7, 3, 0, AccessRights::WRITE, "write").is_ok());
    }

    #[test]
    fn rule_order_of_section_7_3() {
        let dm = two_servers();
        assert!(dm.acl_enforced());
        // /3/0: owner 101, entry for 102 = R, default 0 = R|E.
        assert_eq!(
            dm.access_rights(101, 3, 0),
            AccessRights::FULL_INSTANCE,
            "owner without own entry"
        );
        assert_eq!(
            dm.access_rights(102, 3, 0),
            AccessRights::READ,
            "own entry wins over default"
        );
        assert_eq!(dm.access_rights(103, 3, 0), AccessRights(5), "default entry");
        // /3303/0: owner 102, explicit entry for 102 = R only, no default.
        assert_eq!(
            dm.access_rights(102, 3303, 0),
            AccessRights::READ,
            "own entry wins over ownership"
        );
        assert_eq!(
            dm.access_rights(101, 3303, 0),
            AccessRights::NONE,
            "no entry, not owner, no default"
        );
        // No ACL instance at all for /6/0.
        assert_eq!(dm.access_rights(101, 6, 0), AccessRights::NONE);
        let e = dm.check_access(101, 6, 0, AccessRights::READ, "read").unwrap_err();
        assert_eq!(e.code(), (4, 1));
    }

    #[test]
    fn create_right_from_object_level_instance() {
        let dm = two_servers();
        assert!(dm.may_create(101, 3303), "own entry with C");
        assert!(!dm.may_create(102, 3303), "own entry without C");
        assert!(dm.may_create(103, 3303), "default entry with C");
        assert!(!dm.may_create(101, 3442), "no object-level instance");
    }

    #[test]
    fn object_2_special_cases() {
        let dm = two_servers();
        let (iid, acl) = dm.acl_for(3, 0).unwrap();
        assert_eq!(acl.owner, 101);
        assert_eq!(dm.access_rights(101, 2, iid), AccessRights(3), "owner reads and writes");
        assert_eq!(dm.access_rights(102, 2, iid), AccessRights::READ, "others only read");
    }

    #[test]
    fn single_server_with_acl_instances_applies_the_rules() {
        let mut dm = single_server();
        put(&mut dm, 2, AclInstance::new(3, 0, 101).to_node(0));
        assert!(dm.acl_enforced());
        assert_eq!(dm.access_rights(101, 3, 0), AccessRights::FULL_INSTANCE);
        assert_eq!(dm.access_rights(101, 3303, 0), AccessRights::NONE);
    }
}
