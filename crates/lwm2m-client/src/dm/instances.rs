//! Execute, Create and Delete (digest §5.2, §7.4).

use std::collections::BTreeMap;

use lwm2m_core::format;
use lwm2m_core::{ContentFormat, InstanceNode, Node, Path, ResourceNode};

use super::write::typed_resource;
use super::DataModel;
use crate::object::{parse_exec_args, DmError};
use crate::objects::access_control::{AccessRights, AclInstance};
use crate::objects::{ACCESS_CONTROL, DEVICE, SERVER};

impl DataModel {
    /// DM&SE Execute of `/o/i/r` by server `ssid`; `payload` is the text/plain argument list (§5.2).
    /// Errors: 4.00 (root, resource-instance path, invalid arguments), 4.01, 4.04, 4.05 (an object or instance,
    /// a resource that is not executable, Bootstrap-Request Trigger without a Bootstrap-Server account).
    /// Actions for the driver (Reboot, Disable, ...) come out of [`DataModel::take_actions`].
    pub fn execute(&mut self, ssid: u16, path: &Path, payload: &[u8]) -> Result<(), DmError> {
        let ids = path.ids();
        let Some(&oid) = ids.first() else {
            return Err(DmError::bad_request("Execute needs a resource path"));
        };
        let h = self.visible(oid)?;
        let Some(&iid) = ids.get(1) else {
            return Err(DmError::method_not_allowed(format!("Execute on the object {path}")));
        };
        self.require_instance(h, oid, iid)?;
        self.check_access(ssid, oid, iid, AccessRights::EXECUTE, "execute")?;
        let Some(&rid) = ids.get(2) else {
            return Err(DmError::method_not_allowed(format!("Execute on the instance {path}")));
        };
        if ids.len() > 3 {
            return Err(DmError::bad_request(format!("Execute on the resource instance {path}")));
        }
        let m = Self::resource_model(h, oid, iid, rid)?;
        if !m.operations.execute {
            return Err(DmError::method_not_allowed(format!("{path} is not executable")));
        }
        Self::require_resource(h, oid, iid, rid)?;
        let args = parse_exec_args(payload)?;
        if oid == SERVER && rid == 9 && self.bootstrap_account().is_none() {
            return Err(DmError::method_not_allowed(
                "Bootstrap-Request Trigger: the client has no Bootstrap-Server account",
            ));
        }
        let fx = &mut self.fx;
        let h = self
            .objects
            .get_mut(&oid)
            .ok_or_else(|| DmError::internal("object vanished"))?;
        h.execute(iid, rid, &args, fx)
    }

    /// Decodes a Create payload: one instance, with its id when the payload carries one.
    fn decode_create(
        &self,
        oid: u16,
        content_format: ContentFormat,
        payload: &[u8],
    ) -> Result<(Option<u16>, InstanceNode), DmError> {
        match format::decode(content_format, &Path::object(oid), payload, self) {
            Ok(Node::Object(mut obj)) => {
                if obj.instances.len() > 1 {
                    return Err(DmError::bad_request("Create carries more than one instance"));
                }
                match obj.instances.pop_first() {
                    Some((iid, inst)) => Ok((Some(iid), inst)),
                    None => Err(DmError::bad_request("Create carries no instance")),
                }
            }
            Ok(_) => Err(DmError::internal(
                "decoder returned a non-object node for an object path",
            )),
            Err(e) if content_format == ContentFormat::Tlv => {
                // TLV without an Object Instance TLV: resource TLVs for an instance the client names.
                let probe = Path::instance(oid, 0);
                match format::decode(content_format, &probe, payload, self) {
                    Ok(Node::Instance(inst)) => Ok((None, inst)),
                    _ => Err(DmError::from_decode(e)),
                }
            }
            Err(e) => Err(DmError::from_decode(e)),
        }
    }

    /// DM&SE Create on `/o` by server `ssid` (§5.2): one instance, with or without its id. Returns the new
    /// instance's path (the Location-Path of the 2.01 response). Mandatory writable resources must be
    /// present; read-only values and resources the model does not define are ignored. When Access Control
    /// applies, the server needs the Create right of the object-level ACL instance, and the client creates an
    /// ACL instance for the new instance owned by the creator (with full R/W/E/D rights for it).
    /// Errors: 4.00 (existing id, instance id other than 0 for a single-instance object, missing mandatory
    /// resource, malformed payload, a path other than `/o`), 4.01, 4.04, 4.05 (Object 2, objects whose
    /// instances are fixed), 4.15.
    pub fn create(
        &mut self,
        ssid: u16,
        path: &Path,
        content_format: ContentFormat,
        payload: &[u8],
    ) -> Result<Path, DmError> {
        let ids = path.ids();
        let Some(&oid) = ids.first() else {
            return Err(DmError::method_not_allowed("Create on / is not allowed"));
        };
        let h = self.visible(oid)?;
        if ids.len() > 1 {
            return Err(DmError::bad_request(format!("Create targets an object, not {path}")));
        }
        if oid == ACCESS_CONTROL {
            return Err(DmError::method_not_allowed(
                "Access Control instances are managed by the client",
            ));
        }
        if !self.may_create(ssid, oid) {
            return Err(DmError::unauthorized(format!(
                "server {ssid} may not create instances of /{oid}"
            )));
        }
        if content_format == ContentFormat::Link || content_format.is_single_value() {
            return Err(DmError::unsupported_format(format!(
                "{content_format} cannot carry an object instance"
            )));
        }
        let (given, inst) = self.decode_create(oid, content_format, payload)?;
        let multiple = h.model().multiple;
        let existing = h.instances();
        let iid = match given {
            Some(i) if !multiple && i != 0 => {
                return Err(DmError::bad_request(format!(
                    "/{oid} is a single-instance object: the id must be 0"
                )))
            }
            Some(i) => i,
            None if !multiple => 0,
            None => (0..u16::MAX)
                .find(|i| !existing.contains(i))
                .ok_or_else(|| DmError::bad_request(format!("/{oid} has no free instance id")))?,
        };
        if existing.contains(&iid) {
            return Err(DmError::bad_request(format!(
                "{} already exists",
                Path::instance(oid, iid)
            )));
        }
        let model = h.model();
        let mut resources = BTreeMap::new();
        for r in inst.resources.into_values() {
            let Some(m) = model.resource(r.id) else { continue };
            if !m.operations.write {
                continue; // read-only values in a Create are ignored
            }
            let rp = Path::resource(oid, iid, r.id);
            let value = typed_resource(&rp, m, r.value)?;
            h.check_write(iid, r.id, &value)?;
            resources.insert(r.id, ResourceNode { id: r.id, value });
        }
        if let Some(m) = model
            .resources
            .values()
            .find(|m| m.mandatory && m.operations.write && !resources.contains_key(&m.id))
        {
            return Err(DmError::bad_request(format!(
                "Create of {} lacks mandatory resource {} ({})",
                Path::instance(oid, iid),
                m.id,
                m.name
            )));
        }
        let acl = self.acl_enforced();
        let new_path = Path::instance(oid, iid);
        let fx = &mut self.fx;
        let h = self
            .objects
            .get_mut(&oid)
            .ok_or_else(|| DmError::internal("object vanished"))?;
        h.create(InstanceNode { id: iid, resources }, fx)?;
        fx.created(new_path);
        if acl {
            let entry = AclInstance::new(oid, iid, ssid).with(ssid, AccessRights::FULL_INSTANCE);
            if let Err(e) = self.add_acl_instance(entry) {
                // Roll back: the instance must not exist without its ACL.
                let fx = &mut self.fx;
                if let Some(h) = self.objects.get_mut(&oid) {
                    let _ = h.delete(iid, fx);
                }
                return Err(DmError::internal(format!("cannot create the ACL instance: {e}")));
            }
        }
        Ok(new_path)
    }

    /// Creates an ACL instance with the lowest free id; returns that id.
    pub(super) fn add_acl_instance(&mut self, acl: AclInstance) -> Result<u16, DmError> {
        let fx = &mut self.fx;
        let h = self
            .objects
            .get_mut(&ACCESS_CONTROL)
            .ok_or_else(|| DmError::not_found("Access Control is not supported"))?;
        let used = h.instances();
        let id = (0..u16::MAX)
            .find(|i| !used.contains(i))
            .ok_or_else(|| DmError::internal("no free Access Control instance id"))?;
        h.create(acl.to_node(id), fx)?;
        fx.created(Path::instance(ACCESS_CONTROL, id));
        Ok(id)
    }

    /// Deletes every ACL instance governing `oid`/`iid`.
    pub(super) fn remove_acls_of(&mut self, oid: u16, iid: u16) {
        let doomed: Vec<u16> = self
            .acl_instances()
            .into_iter()
            .filter(|(_, a)| a.object_id == oid && a.instance_id == iid)
            .map(|(i, _)| i)
            .collect();
        let fx = &mut self.fx;
        if let Some(h) = self.objects.get_mut(&ACCESS_CONTROL) {
            for i in doomed {
                if h.delete(i, fx).is_ok() {
                    fx.deleted(Path::instance(ACCESS_CONTROL, i));
                }
            }
        }
    }

    /// DM&SE Delete of `/o/i` by server `ssid` (§5.2). The instance's ACL instances and every server's
    /// attributes below it go too. Errors: 4.01, 4.04, 4.05 (`/`, `/o`, a resource, `/3/0`, Object 2 instances,
    /// objects whose instances are fixed).
    pub fn delete(&mut self, ssid: u16, path: &Path) -> Result<(), DmError> {
        let ids = path.ids();
        let Some(&oid) = ids.first() else {
            return Err(DmError::method_not_allowed(
                "Delete on / is allowed only through bootstrap",
            ));
        };
        let h = self.visible(oid)?;
        let Some(&iid) = ids.get(1) else {
            return Err(DmError::method_not_allowed(format!("Delete on the object {path}")));
        };
        if ids.len() > 2 {
            return Err(DmError::method_not_allowed(format!(
                "Delete on {path}: only instances can be deleted"
            )));
        }
        self.require_instance(h, oid, iid)?;
        if oid == DEVICE && iid == 0 {
            return Err(DmError::method_not_allowed("/3/0 cannot be deleted"));
        }
        if oid == ACCESS_CONTROL {
            return Err(DmError::method_not_allowed(
                "Access Control instances are managed by the client",
            ));
        }
        self.check_access(ssid, oid, iid, AccessRights::DELETE, "delete")?;
        let fx = &mut self.fx;
        let h = self
            .objects
            .get_mut(&oid)
            .ok_or_else(|| DmError::internal("object vanished"))?;
        h.delete(iid, fx)?;
        fx.deleted(*path);
        self.remove_acls_of(oid, iid);
        self.purge_attributes(path);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use crate::object::{Change, ChangeKind, ClientAction, WriteMode};
    use lwm2m_core::format::tlv;
    use lwm2m_core::Value;

    fn p(s: &str) -> Path {
        s.parse().unwrap()
    }

    #[test]
    fn execute_actions_and_arguments() {
        let mut dm = single_server();
        dm.execute(101, &p("/3/0/4"), b"").unwrap();
        dm.execute(101, &p("/1/0/8"), b"").unwrap();
        dm.execute(101, &p("/1/0/4"), b"").unwrap();
        dm.execute(101, &p("/1/0/9"), b"").unwrap();
        assert_eq!(
            dm.take_actions(),
            vec![
                ClientAction::Reboot,
                ClientAction::RegistrationUpdateTrigger { ssid: 101 },
                ClientAction::Disable { ssid: 101 },
                ClientAction::BootstrapRequestTrigger { ssid: 101 },
            ]
        );
        dm.execute(101, &p("/3442/0/3"), b"0,2='10.3'").unwrap();
        assert_eq!(
            dm.local_read(&p("/3442/0/4")).unwrap(),
            Node::Resource(ResourceNode::multiple(
                4,
                [(0, Value::String("0=".into())), (1, Value::String("2=10.3".into()))]
            ))
        );
        assert_eq!(
            dm.execute(101, &p("/3442/0/3"), b"0,2=10.3").unwrap_err().code(),
            (4, 0)
        );
        assert_eq!(dm.execute(101, &p("/3442/0/3"), b"a").unwrap_err().code(), (4, 0));
    }

    #[test]
    fn execute_errors() {
        let mut dm = single_server();
        let mut code = |path: &str| dm.execute(101, &p(path), b"").unwrap_err().code();
        assert_eq!(code("/"), (4, 0));
        assert_eq!(code("/3"), (4, 5), "object");
        assert_eq!(code("/3/0"), (4, 5), "instance");
        assert_eq!(code("/3/0/4/0"), (4, 0), "resource instance");
        assert_eq!(code("/3/0/0"), (4, 5), "not executable");
        assert_eq!(code("/3/1/4"), (4, 4));
        assert_eq!(code("/3/0/999"), (4, 4));
        assert_eq!(code("/3442/0/1"), (4, 4), "optional executable not supported");
        assert_eq!(code("/0/0/0"), (4, 4));
        assert_eq!(code("/5/0/2"), (4, 5), "firmware Update in Idle");
        // No Bootstrap-Server account: the trigger is refused.
        let mut nobs = base();
        put(
            &mut nobs,
            0,
            crate::objects::security::SecurityInstance::nosec(DM_URI, 101).to_node(0),
        );
        put(
            &mut nobs,
            1,
            crate::objects::server::ServerInstance::new(101, 300).to_node(0),
        );
        assert_eq!(nobs.execute(101, &p("/1/0/9"), b"").unwrap_err().code(), (4, 5));
        assert!(nobs.take_actions().is_empty());
    }

    #[test]
    fn execute_with_acl() {
        let mut dm = two_servers();
        // /3/0 default entry R+E applies to 103; 102 has its own entry R only.
        dm.execute(103, &p("/3/0/4"), b"").unwrap();
        assert_eq!(dm.execute(102, &p("/3/0/4"), b"").unwrap_err().code(), (4, 1));
        assert_eq!(
            dm.execute(102, &p("/3/0/0"), b"").unwrap_err().code(),
            (4, 1),
            "4.01 before 4.05"
        );
        assert_eq!(dm.execute(101, &p("/3/0/0"), b"").unwrap_err().code(), (4, 5));
        // Each server triggers its own account only if its ACL allows: 102 owns /1/1.
        dm.execute(102, &p("/1/1/8"), b"").unwrap();
        assert_eq!(dm.execute(102, &p("/1/0/8"), b"").unwrap_err().code(), (4, 1));
    }

    fn senml_instance(oid: u16, iid: Option<u16>, body: &str) -> Vec<u8> {
        let bn = match iid {
            Some(i) => format!("/{oid}/{i}/"),
            None => format!("/{oid}/"),
        };
        format!(r#"[{{"bn":"{bn}",{body}]"#).into_bytes()
    }

    #[test]
    fn create_with_and_without_id() {
        let mut dm = single_server();
        let body = senml_instance(3442, Some(5), r#""n":"110","vs":"five"},{"n":"120","v":5}"#);
        assert_eq!(
            dm.create(101, &p("/3442"), ContentFormat::SenmlJson, &body).unwrap(),
            p("/3442/5")
        );
        assert_eq!(
            dm.take_changes(),
            vec![Change {
                path: p("/3442/5"),
                kind: ChangeKind::Created
            }]
        );
        // Same id again.
        assert_eq!(
            dm.create(101, &p("/3442"), ContentFormat::SenmlJson, &body)
                .unwrap_err()
                .code(),
            (4, 0)
        );
        // TLV without an instance TLV: the client picks the lowest free id (1).
        let res = tlv::encode(
            &p("/3442/0/110"),
            &Node::Resource(ResourceNode::single(110, Value::String("x".into()))),
        )
        .unwrap();
        assert_eq!(
            dm.create(101, &p("/3442"), ContentFormat::Tlv, &res).unwrap(),
            p("/3442/1")
        );
        // TLV with an instance TLV.
        let inst = tlv::encode(
            &p("/3442"),
            &Node::Object(lwm2m_core::ObjectNode::new(3442, [InstanceNode::new(9, [])])),
        )
        .unwrap();
        assert_eq!(
            dm.create(101, &p("/3442"), ContentFormat::Tlv, &inst).unwrap(),
            p("/3442/9")
        );
        assert_eq!(
            dm.registration_links().object(3442).unwrap().instances,
            vec![0, 1, 5, 9]
        );
        assert!(dm.acl_instances().is_empty(), "single server: no ACL instances");
    }

    #[test]
    fn create_ignores_read_only_and_fills_defaults() {
        let mut dm = single_server();
        let body = senml_instance(3303, Some(4), r#""n":"5700","v":99.5},{"n":"5750","vs":"room"}"#);
        dm.create(101, &p("/3303"), ContentFormat::SenmlJson, &body).unwrap();
        assert_eq!(
            dm.local_read(&p("/3303/4/5700")).unwrap(),
            Node::Resource(ResourceNode::single(5700, Value::Float(0.0))),
            "read-only value ignored, default applies"
        );
        assert_eq!(
            dm.local_read(&p("/3303/4/5750")).unwrap(),
            Node::Resource(ResourceNode::single(5750, Value::String("room".into())))
        );
    }

    #[test]
    fn create_errors() {
        let mut dm = single_server();
        let mut code =
            |path: &str, f: ContentFormat, body: &[u8]| dm.create(101, &p(path), f, body).unwrap_err().code();
        let server = br#"[{"bn":"/1/3/","n":"0","v":5},{"n":"1","v":60}]"#;
        assert_eq!(
            code("/1", ContentFormat::SenmlJson, server),
            (4, 0),
            "missing mandatory 6 and 7"
        );
        assert_eq!(code("/", ContentFormat::SenmlJson, b"[]"), (4, 5));
        assert_eq!(code("/3442/0", ContentFormat::SenmlJson, b"[]"), (4, 0));
        assert_eq!(
            code("/0", ContentFormat::SenmlJson, b"[]"),
            (4, 4),
            "Security invisible"
        );
        assert_eq!(code("/99", ContentFormat::SenmlJson, b"[]"), (4, 4));
        assert_eq!(code("/2", ContentFormat::SenmlJson, b"[]"), (4, 5));
        assert_eq!(code("/3442", ContentFormat::Text, b"1"), (4, 15));
        assert_eq!(code("/3442", ContentFormat::Link, b"</1>"), (4, 15));
        assert_eq!(code("/3442", ContentFormat::SenmlJson, b"[]"), (4, 0), "no instance");
        assert_eq!(code("/3442", ContentFormat::SenmlJson, b"[{]"), (4, 0));
        let two = br#"[{"n":"/3442/1/110","vs":"a"},{"n":"/3442/2/110","vs":"b"}]"#;
        assert_eq!(code("/3442", ContentFormat::SenmlJson, two), (4, 0));
        let wrong_type = br#"[{"n":"/3442/1/140","vs":"a"}]"#;
        assert_eq!(code("/3442", ContentFormat::SenmlJson, wrong_type), (4, 0));
        // Single-instance object: /3/0 exists, and an id other than 0 is refused.
        let dev = br#"[{"n":"/3/0/13","v":1}]"#;
        assert_eq!(code("/3", ContentFormat::SenmlJson, dev), (4, 0));
        let dev1 = br#"[{"n":"/3/1/13","v":1}]"#;
        assert_eq!(code("/3", ContentFormat::SenmlJson, dev1), (4, 0));
        // Nothing was created.
        assert_eq!(dm.registration_links().object(3442).unwrap().instances, vec![0]);
        // A complete Server instance works.
        let full = br#"[{"bn":"/1/3/","n":"0","v":5},{"n":"1","v":60},{"n":"6","vb":true},{"n":"7","vs":"U"}]"#;
        assert_eq!(
            dm.create(101, &p("/1"), ContentFormat::SenmlJson, full).unwrap(),
            p("/1/3")
        );
    }

    #[test]
    fn create_with_acl_creates_owned_acl_instance() {
        let mut dm = two_servers();
        let body = senml_instance(3303, Some(7), r#""n":"5750","vs":"kitchen"}"#);
        // 102 has no Create right (its own entry lacks C).
        assert_eq!(
            dm.create(102, &p("/3303"), ContentFormat::SenmlJson, &body)
                .unwrap_err()
                .code(),
            (4, 1)
        );
        // No object-level ACL for 3442 at all.
        let t = senml_instance(3442, Some(3), r#""n":"110","vs":"x"}"#);
        assert_eq!(
            dm.create(101, &p("/3442"), ContentFormat::SenmlJson, &t)
                .unwrap_err()
                .code(),
            (4, 1)
        );
        dm.take_changes();
        assert_eq!(
            dm.create(101, &p("/3303"), ContentFormat::SenmlJson, &body).unwrap(),
            p("/3303/7")
        );
        let (acl_iid, acl) = dm.acl_for(3303, 7).expect("ACL instance created");
        assert_eq!(acl.owner, 101);
        assert_eq!(acl.acl.get(&101), Some(&AccessRights::FULL_INSTANCE));
        let ch = dm.take_changes();
        assert!(ch.contains(&Change {
            path: Path::instance(2, acl_iid),
            kind: ChangeKind::Created
        }));
        assert_eq!(dm.access_rights(101, 3303, 7), AccessRights::FULL_INSTANCE);
        assert_eq!(dm.access_rights(102, 3303, 7), AccessRights::NONE);
        // The owner now lets 102 read it.
        dm.write(
            101,
            &Path::resource_instance(2, acl_iid, 2, 102),
            WriteMode::Replace,
            ContentFormat::Text,
            b"1",
        )
        .unwrap();
        assert!(dm.read(102, &p("/3303/7/5700"), None).is_ok());
        // Deleting the instance removes its ACL instance.
        dm.delete(101, &p("/3303/7")).unwrap();
        assert!(dm.acl_for(3303, 7).is_none());
    }

    #[test]
    fn delete_rules() {
        let mut dm = single_server();
        dm.write_attributes(101, &p("/3303/0/5700"), &["pmin=5"]).unwrap();
        dm.delete(101, &p("/3303/0")).unwrap();
        assert_eq!(
            dm.take_changes(),
            vec![Change {
                path: p("/3303/0"),
                kind: ChangeKind::Deleted
            }]
        );
        assert!(dm.attributes(101, &p("/3303/0/5700")).is_empty(), "attributes purged");
        let mut code = |path: &str| dm.delete(101, &p(path)).unwrap_err().code();
        assert_eq!(code("/3/0"), (4, 5));
        assert_eq!(code("/3303/0"), (4, 4), "already gone");
        assert_eq!(code("/3303"), (4, 5));
        assert_eq!(code("/3442/0/110"), (4, 5));
        assert_eq!(code("/"), (4, 5));
        assert_eq!(code("/0/0"), (4, 4));
        assert_eq!(code("/2/0"), (4, 4), "no ACL instance 0 here");
        assert_eq!(code("/5/0"), (4, 5), "firmware update is fixed");
    }

    #[test]
    fn firmware_update_through_the_dispatcher() {
        use crate::objects::firmware::{FirmwareState, FirmwareUpdate, UpdateResult};
        let mut dm = single_server();
        assert_eq!(
            dm.execute(101, &p("/5/0/2"), b"").unwrap_err().code(),
            (4, 5),
            "Update in Idle"
        );
        dm.write(
            101,
            &p("/5/0/1"),
            WriteMode::Replace,
            ContentFormat::Text,
            b"coap://fw.example.com/fw.bin",
        )
        .unwrap();
        assert_eq!(
            dm.take_actions(),
            vec![ClientAction::FirmwareDownload {
                uri: "coap://fw.example.com/fw.bin".into()
            }]
        );
        let changes = dm.take_changes();
        assert!(changes.contains(&Change::value(p("/5/0/1"))));
        assert!(
            changes.contains(&Change::value(p("/5/0/3"))),
            "State change is observable"
        );
        assert_eq!(dm.read(101, &p("/5/0/3"), None).unwrap().1, b"1");
        // The driver reports the download; then the server executes Update.
        dm.with_object::<FirmwareUpdate, _>(5, |fw, fx| fw.download_finished(Ok(()), fx))
            .unwrap()
            .unwrap();
        dm.execute(101, &p("/5/0/2"), b"").unwrap();
        assert_eq!(dm.take_actions(), vec![ClientAction::FirmwareUpdate]);
        dm.with_object::<FirmwareUpdate, _>(5, |fw, fx| fw.update_finished(Err(UpdateResult::UpdateFailed), fx))
            .unwrap()
            .unwrap();
        assert_eq!(dm.read(101, &p("/5/0/5"), None).unwrap().1, b"8");
        assert_eq!(
            dm.object::<FirmwareUpdate>(5).unwrap().state(),
            FirmwareState::Downloaded
        );
        // Push while not Idle: 4.05, nothing changes. An empty Package resets.
        let e = dm.write(101, &p("/5/0/0"), WriteMode::Replace, ContentFormat::Opaque, b"img");
        assert_eq!(e.unwrap_err().code(), (4, 5));
        dm.write(101, &p("/5/0/0"), WriteMode::Replace, ContentFormat::Opaque, b"")
            .unwrap();
        assert_eq!(dm.object::<FirmwareUpdate>(5).unwrap().state(), FirmwareState::Idle);
        dm.write(101, &p("/5/0/0"), WriteMode::Replace, ContentFormat::Opaque, b"img")
            .unwrap();
        assert_eq!(dm.object::<FirmwareUpdate>(5).unwrap().package(), b"img");
        assert_eq!(dm.read(101, &p("/5/0/3"), None).unwrap().1, b"2", "verified at once");
    }

    #[test]
    fn temperature_reset_min_max_through_the_dispatcher() {
        use crate::objects::temperature::TemperatureSensor;
        let mut dm = single_server();
        dm.with_object::<TemperatureSensor, _>(3303, |t, fx| t.set_value(0, 35.5, None, fx))
            .unwrap()
            .unwrap();
        dm.set_value(&p("/3303/0/5700"), Value::Float(22.0)).unwrap();
        assert_eq!(dm.read(101, &p("/3303/0/5602"), None).unwrap().1, b"35.5");
        dm.execute(101, &p("/3303/0/5605"), b"").unwrap();
        assert_eq!(dm.read(101, &p("/3303/0/5602"), None).unwrap().1, b"22");
        assert_eq!(dm.read(101, &p("/3303/0/5601"), None).unwrap().1, b"22");
    }

    #[test]
    fn device_reset_error_code_and_statistics_through_the_dispatcher() {
        use crate::objects::device::DeviceObject;
        use crate::objects::statistics::ConnectivityStatistics;
        let mut dm = single_server();
        dm.with_object::<DeviceObject, _>(3, |d, fx| d.add_error_code(7, fx))
            .unwrap()
            .unwrap();
        assert_eq!(dm.read(101, &p("/3/0/11/0"), None).unwrap().1, b"7");
        dm.execute(101, &p("/3/0/12"), b"").unwrap();
        assert_eq!(dm.read(101, &p("/3/0/11/0"), None).unwrap().1, b"0");
        dm.execute(101, &p("/7/0/6"), b"").unwrap();
        dm.with_object::<ConnectivityStatistics, _>(7, |s, fx| s.record_sent(2048, fx))
            .unwrap()
            .unwrap();
        assert_eq!(dm.read(101, &p("/7/0/2"), None).unwrap().1, b"2");
        dm.execute(101, &p("/7/0/7"), b"").unwrap();
        assert!(!dm.object::<ConnectivityStatistics>(7).unwrap().collecting());
    }

    #[test]
    fn delete_with_acl() {
        let mut dm = two_servers();
        // 102 has R+W on /3442/0 but not D; 101 owns it.
        assert_eq!(dm.delete(102, &p("/3442/0")).unwrap_err().code(), (4, 1));
        assert_eq!(
            dm.delete(101, &p("/2/0")).unwrap_err().code(),
            (4, 5),
            "ACL instances are client-managed"
        );
        dm.delete(101, &p("/3442/0")).unwrap();
        assert!(dm.acl_for(3442, 0).is_none());
    }
}
