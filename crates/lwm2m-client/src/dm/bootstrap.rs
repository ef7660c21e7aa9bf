//! The Bootstrap interface (digest §3.3–3.7): Bootstrap-Write, -Read, -Discover, -Delete and -Finish with its
//! consistency checks. The Bootstrap-Server is not subject to Access Control and ignores R/W flags.

use std::collections::{BTreeMap, BTreeSet};

use lwm2m_core::format;
use lwm2m_core::format::link::{self, BootstrapDiscover, BootstrapDiscoverEntry};
use lwm2m_core::path::MAX_ID;
use lwm2m_core::{ContentFormat, InstanceNode, Node, ObjLink, ObjectNode, Path, ResourceNode, ResourceValue};

use super::write::{typed_resource, PlannedWrite};
use super::{DataModel, LWM2M_VERSION};
use crate::object::{ClientAction, DmError};
use crate::objects::access_control::AccessRights;
use crate::objects::security::SecurityMode;
use crate::objects::{ACCESS_CONTROL, DEVICE, OSCORE, SECURITY, SERVER};

impl DataModel {
    /// Bootstrap-Write of `/o`, `/o/i`, `/o/i/r` or `/o/i/r/ri` (digest §3.5). Written regardless of R/W
    /// flags and access rights; missing instances are created; existing instances are merged into
    /// (resources not in the payload are kept, a multiple resource in the payload replaces the old array);
    /// resources the model does not define are ignored in object and instance writes. Errors: 4.00 (root,
    /// malformed payload, wrong types, a value the object refuses), 4.04 (unknown object or resource),
    /// 4.15.
    pub fn bootstrap_write(
        &mut self,
        path: &Path,
        content_format: ContentFormat,
        payload: &[u8],
    ) -> Result<(), DmError> {
        let ids = path.ids();
        let Some(&oid) = ids.first() else {
            return Err(DmError::bad_request(
                "Bootstrap-Write needs an object, instance or resource path",
            ));
        };
        let h = self.existing(oid)?;
        if let (Some(&iid), Some(&rid)) = (ids.get(1), ids.get(2)) {
            if Self::resource_model(h, oid, iid, rid)?.operations.execute {
                return Err(DmError::bad_request(format!("{path} is executable and holds no value")));
            }
        }
        if content_format == ContentFormat::Link {
            return Err(DmError::unsupported_format("link format carries no values"));
        }
        let node = format::decode(content_format, path, payload, self).map_err(DmError::from_decode)?;
        let model = h.model();
        // instance id -> (resource id -> complete typed value)
        let mut by_instance: BTreeMap<u16, BTreeMap<u16, ResourceValue>> = BTreeMap::new();
        let add_instance = |inst: InstanceNode, out: &mut BTreeMap<u16, BTreeMap<u16, ResourceValue>>| {
            let entry = out.entry(inst.id).or_default();
            for r in inst.resources.into_values() {
                let Some(m) = model.resource(r.id) else { continue };
                if m.operations.execute {
                    continue;
                }
                entry.insert(r.id, typed_resource(&Path::resource(oid, inst.id, r.id), m, r.value)?);
            }
            Ok::<(), DmError>(())
        };
        match node {
            Node::Object(obj) => {
                for inst in obj.instances.into_values() {
                    add_instance(inst, &mut by_instance)?;
                }
            }
            Node::Instance(inst) => add_instance(inst, &mut by_instance)?,
            Node::Resource(r) => {
                let iid = ids.get(1).copied().unwrap_or_default();
                let m = Self::resource_model(h, oid, iid, r.id)?;
                by_instance
                    .entry(iid)
                    .or_default()
                    .insert(r.id, typed_resource(path, m, r.value)?);
            }
            Node::ResourceInstance { id, value } => {
                let (iid, rid) = (
                    ids.get(1).copied().unwrap_or_default(),
                    ids.get(2).copied().unwrap_or_default(),
                );
                let m = Self::resource_model(h, oid, iid, rid)?;
                if !m.multiple {
                    return Err(DmError::bad_request(format!("{path}: resource {rid} is not multiple")));
                }
                let v = value
                    .convert(m.data_type)
                    .map_err(|e| DmError::bad_request(format!("{path}: {e}")))?;
                let mut cur = if h.has_instance(iid) {
                    self.current_instances(oid, iid, rid)
                } else {
                    BTreeMap::new()
                };
                cur.insert(id, v);
                by_instance
                    .entry(iid)
                    .or_default()
                    .insert(rid, ResourceValue::Multiple(cur));
            }
        }
        // Check everything, then apply.
        let mut plan = Vec::new();
        let mut creations = Vec::new();
        for (iid, resources) in by_instance {
            if h.has_instance(iid) {
                for (rid, value) in resources {
                    plan.push(PlannedWrite {
                        oid,
                        iid,
                        rid,
                        value,
                        changed: Path::resource(oid, iid, rid),
                    });
                }
            } else {
                for (rid, value) in &resources {
                    h.check_write(iid, *rid, value)?;
                }
                creations.push(InstanceNode {
                    id: iid,
                    resources: resources
                        .into_iter()
                        .map(|(id, value)| (id, ResourceNode { id, value }))
                        .collect(),
                });
            }
        }
        for w in &plan {
            h.check_write(w.iid, w.rid, &w.value)?;
        }
        for inst in creations {
            let fx = &mut self.fx;
            let h = self
                .objects
                .get_mut(&oid)
                .ok_or_else(|| DmError::internal("object vanished"))?;
            let p = Path::instance(oid, inst.id);
            h.create(inst, fx).map_err(|e| match e {
                DmError::MethodNotAllowed(r) => DmError::BadRequest(r),
                other => other,
            })?;
            fx.created(p);
        }
        self.apply_writes(plan, &[])
    }

    /// Bootstrap-Read (new in 1.1, digest §3.4, BsR-1): only `/1`, `/1/i`, `/2`, `/2/i`; every value resource
    /// is included, whatever its R flag (resources 13–20 of Object 1 too), so the Bootstrap-Server sees the
    /// complete accounts and the complete ACL state. Errors: 4.05 (any other object, or `/`), 4.00 (a
    /// resource path), 4.04 (unknown instance), 4.06 (Accept).
    pub fn bootstrap_read(
        &self,
        path: &Path,
        accept: Option<ContentFormat>,
    ) -> Result<(ContentFormat, Vec<u8>), DmError> {
        let ids = path.ids();
        let oid = match ids.first() {
            Some(&o) if o == SERVER || o == ACCESS_CONTROL => o,
            _ => {
                return Err(DmError::method_not_allowed(format!(
                    "Bootstrap-Read of {path}: only the Server (1) and Access Control (2) objects may be read"
                )))
            }
        };
        if ids.len() > 2 {
            return Err(DmError::bad_request(format!(
                "Bootstrap-Read of {path}: only objects and instances may be read"
            )));
        }
        let h = self.existing(oid)?;
        let node = match ids.get(1) {
            Some(&iid) => {
                self.require_instance(h, oid, iid)?;
                Node::Instance(self.instance_node(h, iid, |_| true))
            }
            None => Node::Object(ObjectNode {
                id: oid,
                instances: h
                    .instances()
                    .into_iter()
                    .map(|iid| (iid, self.instance_node(h, iid, |_| true)))
                    .collect(),
            }),
        };
        self.encode_node(path, &node, accept)
    }

    /// Bootstrap-Discover of `/` or `/o` (digest §3.7, BsR-7): `</>;lwm2m=1.1` first, then per object its
    /// link (when it has no instances or a non-default version, with `ver`) and its instance links; Security
    /// instances carry `ssid` (LwM2M Server accounts) and `uri`, Server instances `ssid`, OSCORE instances the
    /// `ssid`/`uri` of the Security instance that links to them. Errors: 4.00 (instance or deeper path), 4.04
    /// (unknown object).
    pub fn bootstrap_discover(&self, path: &Path) -> Result<String, DmError> {
        let ids = path.ids();
        if ids.len() > 1 {
            return Err(DmError::bad_request(format!(
                "Bootstrap-Discover of {path}: use / or /{{object}}"
            )));
        }
        let objects: Vec<u16> = match ids.first() {
            Some(&oid) => {
                self.existing(oid)?;
                vec![oid]
            }
            None => self.object_ids(),
        };
        let security = self.security_instances();
        let mut d = BootstrapDiscover {
            lwm2m_version: Some(LWM2M_VERSION),
            entries: Vec::new(),
        };
        for oid in objects {
            let Some(h) = self.handler(oid) else { continue };
            let version = h.model().version;
            let instances = h.instances();
            if instances.is_empty() || version != lwm2m_core::model::default_version(oid) {
                let mut e = BootstrapDiscoverEntry::new(Path::object(oid));
                e.version = Some(version);
                d.entries.push(e);
            }
            for iid in instances {
                let mut e = BootstrapDiscoverEntry::new(Path::instance(oid, iid));
                match oid {
                    SECURITY => {
                        if let Some((_, s)) = security.iter().find(|(i, _)| *i == iid) {
                            e.ssid = if s.bootstrap { None } else { s.ssid };
                            e.uri = Some(s.uri.clone()).filter(|u| !u.is_empty());
                        }
                    }
                    SERVER => {
                        e.ssid = self
                            .server_instances()
                            .into_iter()
                            .find(|(i, _)| *i == iid)
                            .map(|(_, s)| s.ssid);
                    }
                    OSCORE => {
                        if let Some((_, s)) = security
                            .iter()
                            .find(|(_, s)| s.oscore == Some(ObjLink::new(OSCORE, iid)))
                        {
                            e.ssid = if s.bootstrap { None } else { s.ssid };
                            e.uri = Some(s.uri.clone()).filter(|u| !u.is_empty());
                        }
                    }
                    _ => {}
                }
                d.entries.push(e);
            }
        }
        Ok(link::write_bootstrap_discover(&d))
    }

    /// Instances Bootstrap-Delete never removes: the Bootstrap-Server account (its Security instance and the
    /// OSCORE instance it links to) and `/3/0`.
    fn protected_instances(&self) -> BTreeSet<(u16, u16)> {
        let mut out = BTreeSet::from([(DEVICE, 0)]);
        for (iid, s) in self.security_instances() {
            if s.bootstrap {
                out.insert((SECURITY, iid));
                if let Some(l) = s.oscore.filter(|l| l.object_id == OSCORE) {
                    out.insert((OSCORE, l.instance_id));
                }
            }
        }
        out
    }

    /// Bootstrap-Delete of `/`, `/o` or `/o/i` (digest §3.6). `/` and `/o` delete every instance except the
    /// Bootstrap-Server account and `/3/0`, skipping instances the object refuses to delete (fixed ones such
    /// as `/5/0`); deleting a missing instance is not an error. Deleting the Security instance of a LwM2M
    /// Server "unbootstraps" it: its Server instance, its observations and attributes go, instances only it
    /// could access are deleted, and Access Control ownership passes to the remaining server with the most
    /// Write/Delete rights. Errors: 4.00 (a resource path, an unknown object, `/3/0`, the Bootstrap-Server
    /// account, an instance the object refuses to delete).
    pub fn bootstrap_delete(&mut self, path: &Path) -> Result<(), DmError> {
        let ids = path.ids();
        if ids.len() > 2 {
            return Err(DmError::bad_request(format!(
                "Bootstrap-Delete of {path}: only objects and instances"
            )));
        }
        let protected = self.protected_instances();
        let servers_before: BTreeSet<u16> = self.server_ssids();
        let targets: Vec<(u16, u16)> = match *ids {
            [] => self
                .objects
                .iter()
                .flat_map(|(oid, h)| h.instances().into_iter().map(move |i| (*oid, i)))
                .filter(|t| !protected.contains(t))
                .collect(),
            [oid] => {
                let h = self
                    .handler(oid)
                    .ok_or_else(|| DmError::bad_request(format!("Bootstrap-Delete of unknown object /{oid}")))?;
                h.instances()
                    .into_iter()
                    .map(|i| (oid, i))
                    .filter(|t| !protected.contains(t))
                    .collect()
            }
            [oid, iid] => {
                let h = self
                    .handler(oid)
                    .ok_or_else(|| DmError::bad_request(format!("Bootstrap-Delete of unknown object /{oid}")))?;
                if protected.contains(&(oid, iid)) {
                    return Err(DmError::bad_request(format!(
                        "{path} cannot be deleted (the Device instance or the Bootstrap-Server account)"
                    )));
                }
                if !h.has_instance(iid) {
                    return Ok(());
                }
                let fx = &mut self.fx;
                let h = self
                    .objects
                    .get_mut(&oid)
                    .ok_or_else(|| DmError::internal("object vanished"))?;
                h.delete(iid, fx)
                    .map_err(|e| DmError::bad_request(e.reason().to_string()))?;
                fx.deleted(*path);
                self.purge_attributes(path);
                self.unbootstrap_removed(&servers_before);
                return Ok(());
            }
            _ => Vec::new(),
        };
        for (oid, iid) in targets {
            let fx = &mut self.fx;
            if let Some(h) = self.objects.get_mut(&oid) {
                if h.delete(iid, fx).is_ok() {
                    fx.deleted(Path::instance(oid, iid));
                    self.purge_attributes(&Path::instance(oid, iid));
                }
            }
        }
        self.unbootstrap_removed(&servers_before);
        Ok(())
    }

    /// Unbootstraps every server of `before` that no longer has a Security instance.
    fn unbootstrap_removed(&mut self, before: &BTreeSet<u16>) {
        let remaining: BTreeSet<u16> = self
            .security_instances()
            .into_iter()
            .filter(|(_, s)| !s.bootstrap)
            .filter_map(|(_, s)| s.ssid)
            .collect();
        for &ssid in before.difference(&remaining) {
            self.unbootstrap(ssid);
        }
    }

    /// Removes server `ssid` from the data model (digest §3.6, App. E.1.3).
    fn unbootstrap(&mut self, ssid: u16) {
        // Its Server instance(s).
        let servers: Vec<u16> = self
            .server_instances()
            .into_iter()
            .filter(|(_, s)| s.ssid == ssid)
            .map(|(i, _)| i)
            .collect();
        for iid in servers {
            let fx = &mut self.fx;
            if let Some(h) = self.objects.get_mut(&SERVER) {
                if h.delete(iid, fx).is_ok() {
                    fx.deleted(Path::instance(SERVER, iid));
                }
            }
            self.remove_acls_of(SERVER, iid);
            self.purge_attributes(&Path::instance(SERVER, iid));
        }
        // Its ACL entries and ownerships.
        for (acl_iid, mut acl) in self.acl_instances() {
            if acl.is_object_level() {
                if acl.acl.remove(&ssid).is_some() {
                    self.store_acl(acl_iid, &acl);
                }
                continue;
            }
            let others: Vec<(u16, AccessRights)> = acl
                .acl
                .iter()
                .filter(|(s, _)| **s != 0 && **s != ssid)
                .map(|(s, r)| (*s, *r))
                .collect();
            if acl.owner == ssid {
                if others.is_empty() && !acl.acl.contains_key(&0) {
                    // Only this server could access the instance: delete it and its ACL instance.
                    let target = (acl.object_id, acl.instance_id);
                    if target != (DEVICE, 0) {
                        let fx = &mut self.fx;
                        if let Some(h) = self.objects.get_mut(&target.0) {
                            if h.has_instance(target.1) && h.delete(target.1, fx).is_ok() {
                                fx.deleted(Path::instance(target.0, target.1));
                            }
                        }
                        self.purge_attributes(&Path::instance(target.0, target.1));
                    }
                    let fx = &mut self.fx;
                    if let Some(h) = self.objects.get_mut(&ACCESS_CONTROL) {
                        if h.delete(acl_iid, fx).is_ok() {
                            fx.deleted(Path::instance(ACCESS_CONTROL, acl_iid));
                        }
                    }
                    continue;
                }
                let score = |r: &AccessRights| {
                    u8::from(r.contains(AccessRights::WRITE)) + u8::from(r.contains(AccessRights::DELETE))
                };
                // Highest score; ties go to the lowest SSID (deterministic).
                acl.owner = others
                    .iter()
                    .max_by(|a, b| score(&a.1).cmp(&score(&b.1)).then(b.0.cmp(&a.0)))
                    .map(|(s, _)| *s)
                    .unwrap_or(MAX_ID);
            }
            acl.acl.remove(&ssid);
            self.store_acl(acl_iid, &acl);
        }
        if let Some(m) = self.attributes.remove(&ssid) {
            drop(m);
        }
        self.fx.action(ClientAction::ServerRemoved { ssid });
    }

    /// Writes resources 2 and 3 of an ACL instance back.
    fn store_acl(&mut self, acl_iid: u16, acl: &crate::objects::access_control::AclInstance) {
        let node = acl.to_node(acl_iid);
        let fx = &mut self.fx;
        if let Some(h) = self.objects.get_mut(&ACCESS_CONTROL) {
            for rid in [2u16, 3] {
                if let Some(r) = node.resources.get(&rid) {
                    if h.write(acl_iid, rid, r.value.clone(), fx).is_ok() {
                        fx.changed(Path::resource(ACCESS_CONTROL, acl_iid, rid));
                    }
                }
            }
        }
    }

    /// The configuration problems Bootstrap-Finish reports (digest §3.3); empty when consistent.
    /// `require_server` demands at least one LwM2M Server account.
    pub fn consistency_problems(&self, require_server: bool) -> Vec<String> {
        let mut out = Vec::new();
        let security = self.security_instances();
        let servers = self.server_instances();
        let bs: Vec<u16> = security.iter().filter(|(_, s)| s.bootstrap).map(|(i, _)| *i).collect();
        if bs.len() > 1 {
            out.push(format!(
                "{} Bootstrap-Server accounts (/0/{bs:?}); at most one is allowed",
                bs.len()
            ));
        }
        let mut sec_ssids = BTreeSet::new();
        for (iid, s) in &security {
            if s.uri.is_empty() {
                out.push(format!("/0/{iid} has no Server URI"));
            }
            match s.mode {
                SecurityMode::NoSec => {}
                SecurityMode::Psk | SecurityMode::Rpk | SecurityMode::Certificate | SecurityMode::CertificateEst => {
                    if s.public_key_or_identity.is_empty() || s.secret_key.is_empty() {
                        out.push(format!("/0/{iid}: {:?} mode needs /0/{iid}/3 and /0/{iid}/5", s.mode));
                    }
                }
                SecurityMode::Other(m) => out.push(format!("/0/{iid}: unknown Security Mode {m}")),
            }
            if s.bootstrap {
                continue;
            }
            match s.ssid {
                Some(ssid) if (1..=65534).contains(&ssid) => {
                    if !sec_ssids.insert(ssid) {
                        out.push(format!("Short Server ID {ssid} is used by two Security instances"));
                    }
                    if !servers.iter().any(|(_, srv)| srv.ssid == ssid) {
                        out.push(format!("/0/{iid} (SSID {ssid}) has no Server instance"));
                    }
                }
                other => out.push(format!(
                    "/0/{iid} is a LwM2M Server account without a valid SSID ({other:?})"
                )),
            }
        }
        let mut srv_ssids = BTreeSet::new();
        for (iid, s) in &servers {
            if !(1..=65534).contains(&s.ssid) {
                out.push(format!("/1/{iid} has an invalid SSID {}", s.ssid));
                continue;
            }
            if !srv_ssids.insert(s.ssid) {
                out.push(format!("Short Server ID {} is used by two Server instances", s.ssid));
            }
            if !sec_ssids.contains(&s.ssid) {
                out.push(format!("/1/{iid} (SSID {}) has no Security instance", s.ssid));
            }
        }
        if require_server && srv_ssids.is_empty() {
            out.push("no LwM2M Server account".into());
        }
        if srv_ssids.len() > 1 && !self.has_object(ACCESS_CONTROL) {
            out.push("several LwM2M Servers but the Access Control object is not supported".into());
        }
        match self.handler(DEVICE).map(|h| h.instances()) {
            Some(v) if v == [0] => {}
            Some(v) => out.push(format!("the Device object must have exactly instance 0, has {v:?}")),
            None => out.push("the Device object is missing".into()),
        }
        out
    }

    /// Starts a bootstrap session: remembers the Bootstrap-Server account so that
    /// [`DataModel::bootstrap_abort`] can restore it if the bootstrap fails (digest §3.3).
    pub fn bootstrap_begin(&mut self) {
        let snapshot = self
            .bootstrap_account()
            .and_then(|(iid, _)| self.instance_values(SECURITY, iid));
        self.bs_snapshot = Some(snapshot);
    }

    /// Bootstrap-Finish (digest §3.3): 2.04 when the configuration is consistent, else 4.06 with the problems
    /// (the Bootstrap-Server may fix them and send Finish again). Checks: at most one Bootstrap-Server
    /// account; every Security instance has a URI and the credentials its mode needs; every LwM2M Server
    /// account has a valid, unique SSID and both its Security and its Server instance; at least one LwM2M
    /// Server account; Access Control supported when there are several servers; `/3/0` and only it exists.
    pub fn bootstrap_finish(&mut self) -> Result<(), DmError> {
        let problems = self.consistency_problems(true);
        if !problems.is_empty() {
            return Err(DmError::not_acceptable(format!(
                "inconsistent configuration: {}",
                problems.join("; ")
            )));
        }
        self.bs_snapshot = None;
        self.bootstrapped = true;
        Ok(())
    }

    /// A bootstrap session failed (no Finish in time, or the client gives up): restores the
    /// Bootstrap-Server account remembered by [`DataModel::bootstrap_begin`], dropping any other
    /// Bootstrap-Server account written meanwhile. Other bootstrap writes stay.
    pub fn bootstrap_abort(&mut self) {
        let Some(snapshot) = self.bs_snapshot.take() else {
            return;
        };
        self.delete_bootstrap_security();
        let fx = &mut self.fx;
        let Some(h) = self.objects.get_mut(&SECURITY) else {
            return;
        };
        if let Some(node) = snapshot {
            let iid = node.id;
            if h.has_instance(iid) && h.delete(iid, fx).is_ok() {
                fx.deleted(Path::instance(SECURITY, iid));
            }
            if h.create(node, fx).is_ok() {
                fx.created(Path::instance(SECURITY, iid));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use crate::object::{Change, ChangeKind, WriteMode};
    use crate::objects::access_control::AclInstance;
    use crate::objects::security::SecurityInstance;
    use crate::objects::server::ServerInstance;
    use lwm2m_core::format::tlv;
    use lwm2m_core::Value;

    fn p(s: &str) -> Path {
        s.parse().unwrap()
    }

    fn tlv_instance(oid: u16, node: InstanceNode) -> Vec<u8> {
        tlv::encode(&Path::object(oid), &Node::Object(ObjectNode::new(oid, [node]))).unwrap()
    }

    #[test]
    fn bootstrap_write_creates_instances_and_sets_read_only_resources() {
        let mut dm = base();
        let mut srv = ServerInstance::new(101, 300);
        srv.priority_order = Some(1);
        srv.retry_count = Some(3);
        srv.seq_delay_s = Some(3600);
        srv.tls_alert_code = Some(0);
        // A whole Object write with a Server instance that does not exist yet.
        dm.bootstrap_write(&p("/1"), ContentFormat::Tlv, &tlv_instance(1, srv.to_node(0)))
            .unwrap();
        dm.bootstrap_write(&p("/0/0"), ContentFormat::SenmlJson, br#"[{"bn":"/0/0/","n":"0","vs":"coap://dm"},{"n":"1","vb":false},{"n":"2","v":3},{"n":"3","vd":""},{"n":"4","vd":""},{"n":"5","vd":""},{"n":"10","v":101}]"#).unwrap();
        assert_eq!(dm.server_instances(), vec![(0, srv.clone())]);
        // A single resource of an existing instance, read-only in DM (/1/x/0) and no-operation (/1/x/13..20).
        dm.bootstrap_write(&p("/1/0/13"), ContentFormat::Text, b"5").unwrap();
        dm.bootstrap_write(&p("/1/0/0"), ContentFormat::Text, b"102").unwrap();
        let s = &dm.server_instances()[0].1;
        assert_eq!(
            (s.ssid, s.priority_order, s.retry_count),
            (102, Some(5), Some(3)),
            "merge keeps 17"
        );
        // A resource of a missing instance creates it with only that resource.
        dm.bootstrap_write(&p("/3442/4/110"), ContentFormat::Text, b"new")
            .unwrap();
        assert_eq!(dm.instance_values(3442, 4).unwrap().resources.len(), 1);
        // A resource instance.
        dm.bootstrap_write(&p("/3442/4/1120/3"), ContentFormat::Text, b"33")
            .unwrap();
        assert_eq!(
            dm.local_read(&p("/3442/4/1120/3")).unwrap(),
            Node::ResourceInstance {
                id: 3,
                value: Value::Integer(33)
            }
        );
        let changes = dm.take_changes();
        assert!(changes.contains(&Change {
            path: p("/1/0"),
            kind: ChangeKind::Created
        }));
        assert!(changes.contains(&Change::value(p("/1/0/13"))));
        // Optional resources not in the payload are not created.
        assert!(!dm.instance_values(1, 0).unwrap().resources.contains_key(&2));
    }

    #[test]
    fn bootstrap_write_errors() {
        let mut dm = base();
        let mut code = |path: &str, f: ContentFormat, b: &[u8]| dm.bootstrap_write(&p(path), f, b).unwrap_err().code();
        assert_eq!(code("/", ContentFormat::Tlv, b""), (4, 0));
        assert_eq!(code("/99/0/0", ContentFormat::Text, b"1"), (4, 4));
        assert_eq!(code("/1/0/99", ContentFormat::Text, b"1"), (4, 4));
        assert_eq!(code("/1/0/0", ContentFormat::Text, b"x"), (4, 0));
        assert_eq!(
            code("/1/0/0", ContentFormat::Text, b"0"),
            (4, 0),
            "SSID 0 refused by the object"
        );
        assert_eq!(code("/1/0/4", ContentFormat::Text, b""), (4, 0), "executable");
        assert_eq!(code("/1/0", ContentFormat::Link, b""), (4, 15));
        assert_eq!(code("/1/0", ContentFormat::Text, b"1"), (4, 15));
        assert_eq!(code("/5/1/1", ContentFormat::Text, b"coap://x"), (4, 0), "fixed object");
        assert!(dm.server_instances().is_empty(), "nothing created");
    }

    #[test]
    fn bootstrap_read_only_server_and_acl_objects() {
        let dm = two_servers();
        let (f, body) = dm.bootstrap_read(&p("/2"), Some(ContentFormat::SenmlJson)).unwrap();
        assert_eq!(f, ContentFormat::SenmlJson);
        let body = text(&body);
        // The complete ACL state: object-level instance, owners, every entry.
        assert!(body.contains(r#"{"n":"2/1","v":65535},{"n":"2/2/0","v":16},{"n":"2/2/101","v":16},{"n":"2/2/102","v":1},{"n":"2/3","v":65535}"#), "{body}");
        assert!(body.contains(r#"{"n":"0/2/102","v":1}"#), "{body}");
        assert_eq!(dm.bootstrap_read(&p("/2/3"), None).unwrap().0, ContentFormat::SenmlCbor);
        // Object 1 including resources that are not readable through DM (13-20).
        let mut dm = dm;
        dm.bootstrap_write(&p("/1/0/13"), ContentFormat::Text, b"4").unwrap();
        let (_, s) = dm.bootstrap_read(&p("/1/0"), Some(ContentFormat::SenmlJson)).unwrap();
        assert!(text(&s).contains(r#"{"n":"13","v":4}"#), "{}", text(&s));
        assert_eq!(
            dm.read(101, &p("/1/0/13"), None).unwrap_err().code(),
            (4, 5),
            "DM cannot read 13"
        );
        // Errors.
        let code = |path: &str| dm.bootstrap_read(&p(path), None).unwrap_err().code();
        assert_eq!(code("/3"), (4, 5));
        assert_eq!(code("/0"), (4, 5));
        assert_eq!(code("/3/0"), (4, 5));
        assert_eq!(code("/"), (4, 5));
        assert_eq!(code("/1/0/1"), (4, 0));
        assert_eq!(code("/2/0/2/102"), (4, 0));
        assert_eq!(code("/1/9"), (4, 4));
        assert_eq!(
            dm.bootstrap_read(&p("/1/0"), Some(ContentFormat::Text))
                .unwrap_err()
                .code(),
            (4, 6)
        );
    }

    #[test]
    fn bootstrap_discover_output() {
        let mut dm = single_server();
        dm.bootstrap_write(&p("/0/2"), ContentFormat::SenmlJson, br#"[{"bn":"/0/2/","n":"0","vs":"coaps://server_2.example.com"},{"n":"1","vb":false},{"n":"2","v":3},{"n":"10","v":102}]"#).unwrap();
        assert_eq!(
            dm.bootstrap_discover(&p("/0")).unwrap(),
            r#"</>;lwm2m=1.1,</0/0>;ssid=101;uri="coap://dm.example.com",</0/1>;uri="coap://bs.example.com",</0/2>;ssid=102;uri="coaps://server_2.example.com""#
        );
        assert_eq!(
            dm.bootstrap_discover(&p("/1")).unwrap(),
            "</>;lwm2m=1.1,</1/0>;ssid=101"
        );
        assert_eq!(dm.bootstrap_discover(&p("/2")).unwrap(), "</>;lwm2m=1.1,</2>");
        let all = dm.bootstrap_discover(&Path::ROOT).unwrap();
        assert!(
            all.starts_with(
                r#"</>;lwm2m=1.1,</0/0>;ssid=101;uri="coap://dm.example.com",</0/1>;uri="coap://bs.example.com","#
            ),
            "{all}"
        );
        assert!(all.contains(",</1/0>;ssid=101,</2>,</3/0>,</4/0>,"), "{all}");
        assert!(all.ends_with(",</3303>;ver=1.1,</3303/0>,</3442/0>"), "{all}");
        assert_eq!(dm.bootstrap_discover(&p("/3/0")).unwrap_err().code(), (4, 0));
        assert_eq!(dm.bootstrap_discover(&p("/99")).unwrap_err().code(), (4, 4));
        // The output parses back with the BS server's parser.
        let parsed = link::parse_bootstrap_discover(all.as_bytes()).unwrap();
        assert_eq!(parsed.lwm2m_version, Some(LWM2M_VERSION));
        assert_eq!(parsed.entries[0].ssid, Some(101));
    }

    #[test]
    fn bootstrap_discover_of_the_digest_example() {
        // Digest §3.7, Discover on `/`.
        let mut dm = DataModel::new()
            .with(crate::objects::security::security_object())
            .with(crate::objects::server::server_object())
            .with(crate::objects::access_control::access_control_object())
            .with(crate::objects::device::device_object(&Default::default()))
            .with(crate::object::SimpleObject::new(crate::objects::builtin_model(4, None)))
            .with(crate::object::SimpleObject::new(crate::objects::builtin_model(5, None)))
            .with(crate::objects::temperature::temperature_object(&[(0, 20.0)]));
        put(
            &mut dm,
            0,
            SecurityInstance::nosec("coaps://dm.example.com:5684", 101).to_node(0),
        );
        put(
            &mut dm,
            0,
            SecurityInstance::nosec("coaps://bs.example.com:5684", 0)
                .into_bootstrap()
                .to_node(1),
        );
        put(&mut dm, 1, ServerInstance::new(101, 300).to_node(0));
        assert_eq!(
            dm.bootstrap_discover(&Path::ROOT).unwrap(),
            r#"</>;lwm2m=1.1,</0/0>;ssid=101;uri="coaps://dm.example.com:5684",</0/1>;uri="coaps://bs.example.com:5684",</1/0>;ssid=101,</2>,</3/0>,</4>,</5>,</3303>;ver=1.1,</3303/0>"#
        );
    }

    #[test]
    fn bootstrap_discover_oscore_instances_carry_their_account() {
        let mut dm = single_server();
        let model = crate::objects::builtin_model(OSCORE, None);
        dm.add_object(crate::object::SimpleObject::new(model).with_instance(InstanceNode::new(0, [])));
        let mut sec = SecurityInstance::nosec(DM_URI, 101);
        sec.oscore = Some(ObjLink::new(OSCORE, 0));
        put(&mut dm, 0, sec.to_node(0));
        assert_eq!(
            dm.bootstrap_discover(&p("/21")).unwrap(),
            r#"</>;lwm2m=1.1,</21/0>;ssid=101;uri="coap://dm.example.com""#
        );
        // OSCORE stays invisible to DM&SE and the registration.
        assert_eq!(dm.read(101, &p("/21/0"), None).unwrap_err().code(), (4, 4));
        assert!(!dm.registration_payload().contains("</21"));
    }

    #[test]
    fn bootstrap_delete_root_keeps_bs_account_and_device() {
        let mut dm = two_servers();
        dm.bootstrap_delete(&Path::ROOT).unwrap();
        assert_eq!(dm.security_instances().len(), 1);
        assert!(dm.security_instances()[0].1.bootstrap);
        assert!(dm.server_instances().is_empty());
        assert!(dm.acl_instances().is_empty());
        assert_eq!(dm.handler(3).unwrap().instances(), vec![0]);
        assert_eq!(
            dm.handler(5).unwrap().instances(),
            vec![0],
            "fixed instances are skipped"
        );
        assert!(dm.handler(3303).unwrap().instances().is_empty());
        assert!(dm.handler(3442).unwrap().instances().is_empty());
        let actions = dm.take_actions();
        assert!(actions.contains(&ClientAction::ServerRemoved { ssid: 101 }));
        assert!(actions.contains(&ClientAction::ServerRemoved { ssid: 102 }));
    }

    #[test]
    fn bootstrap_delete_object_and_instance_rules() {
        let mut dm = single_server();
        dm.bootstrap_delete(&p("/0")).unwrap();
        assert_eq!(dm.security_instances().len(), 1, "BS account kept");
        assert!(
            dm.server_instances().is_empty(),
            "unbootstrapped server 101 lost its /1 instance"
        );
        let mut dm = single_server();
        let code = |dm: &mut DataModel, s: &str| dm.bootstrap_delete(&p(s)).unwrap_err().code();
        assert_eq!(code(&mut dm, "/3/0"), (4, 0));
        assert_eq!(code(&mut dm, "/0/1"), (4, 0), "the Bootstrap-Server account");
        assert_eq!(code(&mut dm, "/1/0/1"), (4, 0));
        assert_eq!(code(&mut dm, "/99"), (4, 0));
        assert_eq!(code(&mut dm, "/5/0"), (4, 0), "fixed");
        dm.bootstrap_delete(&p("/3442/7")).unwrap();
        dm.bootstrap_delete(&p("/3442/0")).unwrap();
        assert!(dm.handler(3442).unwrap().instances().is_empty());
        dm.bootstrap_delete(&p("/3")).unwrap();
        assert_eq!(dm.handler(3).unwrap().instances(), vec![0]);
    }

    #[test]
    fn unbootstrapping_a_server_moves_acl_ownership() {
        let mut dm = two_servers();
        // /3442/0: owner 101, 102 has R+W → 102 becomes owner. /3/0: owner 101, 102 has R, default R+E →
        // 102 becomes owner. /1/0: owner 101 only → deleted with its ACL.
        // Add an instance only 101 can access.
        put(&mut dm, 3442, InstanceNode::new(8, []));
        put(&mut dm, 2, AclInstance::new(3442, 8, 101).to_node(9));
        dm.write_attributes(101, &p("/3/0/9"), &["pmin=3"]).unwrap();
        dm.bootstrap_delete(&p("/0/0")).unwrap();
        assert_eq!(dm.server_ssids().into_iter().collect::<Vec<_>>(), vec![102]);
        assert_eq!(dm.acl_for(3442, 0).unwrap().1.owner, 102);
        assert_eq!(dm.acl_for(3, 0).unwrap().1.owner, 102);
        assert!(dm.acl_for(3442, 8).is_none());
        assert!(!dm.handler(3442).unwrap().has_instance(8), "only 101 could access it");
        assert!(dm.handler(3442).unwrap().has_instance(0));
        assert!(dm.acl_for(1, 0).is_none());
        assert!(
            !dm.acl_for(3303, MAX_ID).unwrap().1.acl.contains_key(&101),
            "object-level entry removed"
        );
        assert!(dm.attributes(101, &p("/3/0/9")).is_empty());
        assert!(dm.take_actions().contains(&ClientAction::ServerRemoved { ssid: 101 }));
    }

    #[test]
    fn finish_consistency_checks() {
        let mut dm = base();
        let e = dm.bootstrap_finish().unwrap_err();
        assert_eq!(e.code(), (4, 6));
        assert!(e.reason().contains("no LwM2M Server account"), "{e}");
        // A Security instance without its Server instance.
        put(&mut dm, 0, SecurityInstance::nosec(DM_URI, 101).to_node(0));
        let e = dm.bootstrap_finish().unwrap_err();
        assert!(e.reason().contains("has no Server instance"), "{e}");
        put(&mut dm, 1, ServerInstance::new(101, 300).to_node(0));
        dm.bootstrap_finish().unwrap();
        // A Server instance without its Security instance.
        put(&mut dm, 1, ServerInstance::new(102, 300).to_node(1));
        assert!(dm
            .bootstrap_finish()
            .unwrap_err()
            .reason()
            .contains("/1/1 (SSID 102) has no Security instance"));
        put(&mut dm, 0, SecurityInstance::psk(DM2_URI, 102, b"", b"").to_node(1));
        assert!(dm
            .bootstrap_finish()
            .unwrap_err()
            .reason()
            .contains("needs /0/1/3 and /0/1/5"));
        put(
            &mut dm,
            0,
            SecurityInstance::psk(DM2_URI, 102, b"id", b"key").to_node(1),
        );
        dm.bootstrap_finish().unwrap();
        // Two Bootstrap-Server accounts.
        put(
            &mut dm,
            0,
            SecurityInstance::nosec(BS_URI, 0).into_bootstrap().to_node(5),
        );
        put(
            &mut dm,
            0,
            SecurityInstance::nosec(BS_URI, 0).into_bootstrap().to_node(6),
        );
        assert!(dm
            .bootstrap_finish()
            .unwrap_err()
            .reason()
            .contains("2 Bootstrap-Server accounts"));
        dm.bootstrap_delete(&p("/0")).unwrap();
        // Duplicate SSIDs.
        let mut dm = single_server();
        put(&mut dm, 0, SecurityInstance::nosec(DM2_URI, 101).to_node(4));
        assert!(dm
            .bootstrap_finish()
            .unwrap_err()
            .reason()
            .contains("used by two Security instances"));
        // Several servers without Access Control support.
        let mut dm = two_servers();
        dm.remove_object(2);
        assert!(dm.bootstrap_finish().unwrap_err().reason().contains("Access Control"));
        // Device instance missing.
        let mut dm = single_server();
        dm.remove_object(3);
        assert!(dm
            .bootstrap_finish()
            .unwrap_err()
            .reason()
            .contains("Device object is missing"));
    }

    #[test]
    fn abort_restores_the_bootstrap_account() {
        let mut dm = single_server();
        dm.bootstrap_begin();
        dm.bootstrap_write(&p("/0/1/0"), ContentFormat::Text, b"coap://other-bs")
            .unwrap();
        dm.bootstrap_write(
            &p("/0/7"),
            ContentFormat::SenmlJson,
            br#"[{"bn":"/0/7/","n":"0","vs":"coap://x"},{"n":"1","vb":true},{"n":"2","v":3}]"#,
        )
        .unwrap();
        dm.bootstrap_abort();
        let bs: Vec<_> = dm
            .security_instances()
            .into_iter()
            .filter(|(_, s)| s.bootstrap)
            .collect();
        assert_eq!(bs.len(), 1);
        assert_eq!((bs[0].0, bs[0].1.uri.as_str()), (1, BS_URI));
        // After a successful Finish there is nothing to restore.
        dm.bootstrap_begin();
        dm.bootstrap_write(&p("/0/1/0"), ContentFormat::Text, b"coap://new-bs")
            .unwrap();
        dm.bootstrap_finish().unwrap();
        dm.bootstrap_abort();
        assert_eq!(dm.bootstrap_account().unwrap().1.uri, "coap://new-bs");
    }

    #[test]
    fn bootstrap_ignores_acl_and_flags_while_dm_does_not() {
        let mut dm = two_servers();
        // DM: 102 cannot write /3/0/13; bootstrap can write read-only /3/0/0.
        assert_eq!(
            dm.write(102, &p("/3/0/13"), WriteMode::Replace, ContentFormat::Text, b"1")
                .unwrap_err()
                .code(),
            (4, 1)
        );
        dm.bootstrap_write(&p("/3/0/0"), ContentFormat::Text, b"ACME").unwrap();
        assert_eq!(dm.read(101, &p("/3/0/0"), None).unwrap().1, b"ACME");
        // Bootstrap writes an ACL instance for an object-level Create right.
        let acl = AclInstance::object_level(3442).with(102, AccessRights::CREATE);
        dm.bootstrap_write(
            &p("/2/20"),
            ContentFormat::Tlv,
            &tlv::encode(&p("/2/20"), &Node::Instance(acl.to_node(20))).unwrap(),
        )
        .unwrap();
        assert!(dm.may_create(102, 3442));
    }
}
