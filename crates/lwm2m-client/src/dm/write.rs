//! Write (Replace and Partial Update), Write-Composite and Write-Attributes (digest §5.2, §2).

use std::collections::BTreeMap;

use lwm2m_core::attributes::{self, Attributes};
use lwm2m_core::format;
use lwm2m_core::{ContentFormat, Node, Path, ResourceModel, ResourceValue, Value};

use super::DataModel;
use crate::object::{DmError, WriteMode};
use crate::objects::access_control::AccessRights;

/// One resource write the dispatcher has checked and will apply: the complete new value of `/oid/iid/rid`,
/// and the path to record as changed.
pub(super) struct PlannedWrite {
    pub oid: u16,
    pub iid: u16,
    pub rid: u16,
    pub value: ResourceValue,
    pub changed: Path,
}

/// Converts a decoded resource value to the model's type and multiplicity (4.00 when impossible).
pub(super) fn typed_resource(path: &Path, m: &ResourceModel, value: ResourceValue) -> Result<ResourceValue, DmError> {
    let conv = |v: Value| {
        v.convert(m.data_type)
            .map_err(|e| DmError::bad_request(format!("{path}: {e}")))
    };
    match (m.multiple, value) {
        (false, ResourceValue::Single(v)) => Ok(ResourceValue::Single(conv(v)?)),
        (true, ResourceValue::Multiple(map)) => Ok(ResourceValue::Multiple(
            map.into_iter()
                .map(|(ri, v)| conv(v).map(|v| (ri, v)))
                .collect::<Result<_, _>>()?,
        )),
        (false, ResourceValue::Multiple(_)) => Err(DmError::bad_request(format!(
            "{path} is a single resource, the payload holds instances"
        ))),
        (true, ResourceValue::Single(_)) => Err(DmError::bad_request(format!(
            "{path} is a multiple resource, the payload holds one value"
        ))),
    }
}

impl DataModel {
    /// The current instances of a multiple resource (empty when absent).
    pub(super) fn current_instances(&self, oid: u16, iid: u16, rid: u16) -> BTreeMap<u16, Value> {
        match self.handler(oid).map(|h| h.read(iid, rid)) {
            Some(Ok(ResourceValue::Multiple(m))) => m,
            _ => BTreeMap::new(),
        }
    }

    /// A Partial Update of a multi-instance resource adds or replaces the given instances and keeps the others;
    /// every other write takes `value` as it is.
    fn merge_partial(&self, mode: WriteMode, oid: u16, iid: u16, rid: u16, value: ResourceValue) -> ResourceValue {
        match (mode, value) {
            (WriteMode::PartialUpdate, ResourceValue::Multiple(new)) => {
                let mut cur = self.current_instances(oid, iid, rid);
                cur.extend(new);
                ResourceValue::Multiple(cur)
            }
            (_, v) => v,
        }
    }

    /// Calls `check_write` for every planned write, then applies them all and the removals, recording the
    /// changes. Nothing is applied unless every check passed.
    pub(super) fn apply_writes(
        &mut self,
        plan: Vec<PlannedWrite>,
        removals: &[(u16, u16, u16)],
    ) -> Result<(), DmError> {
        for w in &plan {
            self.existing(w.oid)?.check_write(w.iid, w.rid, &w.value)?;
        }
        for w in plan {
            let fx = &mut self.fx;
            let h = self
                .objects
                .get_mut(&w.oid)
                .ok_or_else(|| DmError::internal(format!("object {} vanished", w.oid)))?;
            h.write(w.iid, w.rid, w.value, fx)?;
            fx.changed(w.changed);
        }
        for &(oid, iid, rid) in removals {
            let fx = &mut self.fx;
            if let Some(h) = self.objects.get_mut(&oid) {
                h.remove_resource(iid, rid, fx)?;
                fx.changed(Path::resource(oid, iid, rid));
            }
        }
        Ok(())
    }

    /// DM&SE Write by server `ssid` (digest §5.2) of `/o/i`, `/o/i/r` or `/o/i/r/ri`:
    ///
    /// * [`WriteMode::Replace`] on an instance replaces its content: writable resources missing from the
    ///   payload are removed (4.00 when one of them is mandatory); on a resource it sets the value (the whole
    ///   array for a multiple resource).
    /// * [`WriteMode::PartialUpdate`] changes only what the payload holds; on a multiple resource it adds or
    ///   replaces the given instances and keeps the others.
    /// * `/o/i/r/ri` sets one resource instance (DSE-001), creating it when missing.
    ///
    /// Resources the object's model does not define are ignored in instance writes. Errors: 4.00 (malformed
    /// payload, wrong types), 4.01, 4.04 (missing target), 4.05 (`/`, `/o`, a non-writable resource; nothing is
    /// written), 4.15 (a format that cannot carry the target, or link format).
    pub fn write(
        &mut self,
        ssid: u16,
        path: &Path,
        mode: WriteMode,
        content_format: ContentFormat,
        payload: &[u8],
    ) -> Result<(), DmError> {
        let ids = path.ids();
        let Some(&oid) = ids.first() else {
            return Err(DmError::method_not_allowed("Write on / is not allowed"));
        };
        let h = self.visible(oid)?;
        let Some(&iid) = ids.get(1) else {
            return Err(DmError::method_not_allowed(format!(
                "Write on the object {path} is allowed only through bootstrap"
            )));
        };
        self.require_instance(h, oid, iid)?;
        self.check_access(ssid, oid, iid, AccessRights::WRITE, "write")?;
        if let Some(&rid) = ids.get(2) {
            let m = Self::resource_model(h, oid, iid, rid)?;
            if !m.operations.write {
                return Err(DmError::method_not_allowed(format!(
                    "{} is not writable",
                    Path::resource(oid, iid, rid)
                )));
            }
            if ids.len() == 4 && !m.multiple {
                return Err(DmError::bad_request(format!(
                    "{path}: resource {rid} is not a multiple resource"
                )));
            }
        }
        if content_format == ContentFormat::Link {
            return Err(DmError::unsupported_format("link format carries no values"));
        }
        let node = format::decode(content_format, path, payload, self).map_err(DmError::from_decode)?;
        let mut plan = Vec::new();
        let mut removals = Vec::new();
        match node {
            Node::Instance(inst) => {
                let model = h.model();
                for r in inst.resources.into_values() {
                    let Some(m) = model.resource(r.id) else {
                        continue; // unsupported optional resource: ignored
                    };
                    let rp = Path::resource(oid, iid, r.id);
                    if !m.operations.write {
                        return Err(DmError::method_not_allowed(format!("{rp} is not writable")));
                    }
                    let value = typed_resource(&rp, m, r.value)?;
                    let value = self.merge_partial(mode, oid, iid, r.id, value);
                    plan.push(PlannedWrite {
                        oid,
                        iid,
                        rid: r.id,
                        value,
                        changed: rp,
                    });
                }
                if mode == WriteMode::Replace {
                    let present = h.resources(iid);
                    for m in model.resources.values().filter(|m| m.operations.write) {
                        if plan.iter().any(|w| w.rid == m.id) {
                            continue;
                        }
                        if m.mandatory {
                            return Err(DmError::bad_request(format!(
                                "Write-Replace of {path} lacks mandatory resource {}",
                                m.id
                            )));
                        }
                        if present.contains(&m.id) {
                            removals.push((oid, iid, m.id));
                        }
                    }
                }
            }
            Node::Resource(r) => {
                let m = Self::resource_model(h, oid, iid, r.id)?;
                let value = typed_resource(path, m, r.value)?;
                let value = self.merge_partial(mode, oid, iid, r.id, value);
                plan.push(PlannedWrite {
                    oid,
                    iid,
                    rid: r.id,
                    value,
                    changed: *path,
                });
            }
            Node::ResourceInstance { id, value } => {
                let rid = ids.get(2).copied().unwrap_or_default();
                let m = Self::resource_model(h, oid, iid, rid)?;
                let v = value
                    .convert(m.data_type)
                    .map_err(|e| DmError::bad_request(format!("{path}: {e}")))?;
                let mut cur = self.current_instances(oid, iid, rid);
                cur.insert(id, v);
                plan.push(PlannedWrite {
                    oid,
                    iid,
                    rid,
                    value: ResourceValue::Multiple(cur),
                    changed: *path,
                });
            }
            Node::Object(_) => return Err(DmError::internal("decoder returned an object for an instance path")),
        }
        self.apply_writes(plan, &removals)
    }

    /// DM&SE Write-Composite (digest §5.2): a SenML pack (JSON or CBOR, else 4.15) of resource and
    /// resource-instance values across objects, written with partial-update semantics. **Atomic**: every
    /// target is checked first — 4.00 malformed pack or a record not on a resource, 4.04 missing target, 4.01
    /// no Write right, 4.05 not writable — and nothing is written unless all pass.
    pub fn write_composite(&mut self, ssid: u16, content_format: ContentFormat, payload: &[u8]) -> Result<(), DmError> {
        if !matches!(content_format, ContentFormat::SenmlJson | ContentFormat::SenmlCbor) {
            return Err(DmError::unsupported_format(format!(
                "Write-Composite uses SenML JSON or SenML CBOR, not {content_format}"
            )));
        }
        let records =
            format::decode_records(content_format, &Path::ROOT, payload, self).map_err(DmError::from_decode)?;
        if records.is_empty() {
            return Err(DmError::bad_request("Write-Composite with no values"));
        }
        // (oid, iid, rid) -> the new single value, or the resource instances to set.
        let mut singles: BTreeMap<(u16, u16, u16), Value> = BTreeMap::new();
        let mut multis: BTreeMap<(u16, u16, u16), BTreeMap<u16, Value>> = BTreeMap::new();
        for rec in &records {
            let p = rec.path;
            let (oid, iid, rid) = match *p.ids() {
                [o, i, r] | [o, i, r, _] => (o, i, r),
                _ => {
                    return Err(DmError::bad_request(format!(
                        "{p}: Write-Composite needs resource paths"
                    )))
                }
            };
            let h = self.visible(oid)?;
            self.require_instance(h, oid, iid)?;
            let m = Self::resource_model(h, oid, iid, rid)?;
            self.check_access(ssid, oid, iid, AccessRights::WRITE, "write")?;
            if !m.operations.write {
                return Err(DmError::method_not_allowed(format!("{p} is not writable")));
            }
            let v = rec
                .value
                .clone()
                .convert(m.data_type)
                .map_err(|e| DmError::bad_request(format!("{p}: {e}")))?;
            let dup = || DmError::bad_request(format!("{p} appears twice"));
            match (p.resource_instance_id(), m.multiple) {
                (None, false) => {
                    if singles.insert((oid, iid, rid), v).is_some() {
                        return Err(dup());
                    }
                }
                (Some(ri), true) => {
                    if multis.entry((oid, iid, rid)).or_default().insert(ri, v).is_some() {
                        return Err(dup());
                    }
                }
                (None, true) => return Err(DmError::bad_request(format!("{p} is a multiple resource"))),
                (Some(_), false) => return Err(DmError::bad_request(format!("{p}: resource {rid} is single"))),
            }
        }
        let mut plan = Vec::new();
        for ((oid, iid, rid), v) in singles {
            plan.push(PlannedWrite {
                oid,
                iid,
                rid,
                value: ResourceValue::Single(v),
                changed: Path::resource(oid, iid, rid),
            });
        }
        for ((oid, iid, rid), new) in multis {
            let mut cur = self.current_instances(oid, iid, rid);
            cur.extend(new);
            plan.push(PlannedWrite {
                oid,
                iid,
                rid,
                value: ResourceValue::Multiple(cur),
                changed: Path::resource(oid, iid, rid),
            });
        }
        self.apply_writes(plan, &[])
    }

    /// DM&SE Write-Attributes (digest §2, §5.2): `queries` are the Uri-Query options (`pmin=10`, `gt=-5.5`,
    /// `pmax` to unset). The values are stored for server `ssid` at exactly `path`. Needs the Read right on
    /// instances and below (none at object level). Errors: 4.00 (unknown or read-only attribute, bad value,
    /// wrong level or resource type, an invalid effective combination such as `lt >= gt`), 4.01, 4.04.
    pub fn write_attributes(&mut self, ssid: u16, path: &Path, queries: &[&str]) -> Result<(), DmError> {
        let ids = path.ids();
        let Some(&oid) = ids.first() else {
            return Err(DmError::bad_request("attributes cannot be assigned at the root"));
        };
        let h = self.visible(oid)?;
        let mut resource = None;
        if let Some(&iid) = ids.get(1) {
            self.require_instance(h, oid, iid)?;
            self.check_access(ssid, oid, iid, AccessRights::READ, "write attributes of")?;
            if let Some(&rid) = ids.get(2) {
                let m = Self::resource_model(h, oid, iid, rid)?;
                Self::require_resource(h, oid, iid, rid)?;
                if let Some(&ri) = ids.get(3) {
                    if !m.multiple {
                        return Err(DmError::bad_request(format!("{path}: resource {rid} is not multiple")));
                    }
                    if !self.current_instances(oid, iid, rid).contains_key(&ri) {
                        return Err(DmError::not_found(format!("{path} is not present")));
                    }
                }
                resource = Some(m.clone());
            }
        }
        let changes = attributes::parse_query(queries).map_err(|e| DmError::bad_request(e.to_string()))?;
        changes
            .check_target(path.level(), resource.as_ref())
            .map_err(|e| DmError::bad_request(format!("{path}: {e}")))?;
        let new = changes.applied_to(&self.attributes(ssid, path));
        // Validate the effective sets at the target and at every level below it that has attributes.
        let mut trial = self.attributes.get(&ssid).cloned().unwrap_or_default();
        trial.insert(*path, new);
        let effective_at = |p: &Path| -> Attributes {
            let levels: Vec<Attributes> = (1..=p.len())
                .filter_map(|n| Path::from_ids(p.ids().get(..n)?).ok())
                .map(|lp| trial.get(&lp).copied().unwrap_or_default())
                .collect();
            let refs: Vec<&Attributes> = levels.iter().collect();
            attributes::effective(&refs)
        };
        for p in trial.keys().filter(|p| path.starts(p)) {
            effective_at(p)
                .validate()
                .map_err(|e| DmError::bad_request(format!("{p}: {e}")))?;
        }
        let store = self.attributes.entry(ssid).or_default();
        if new.is_empty() {
            store.remove(path);
        } else {
            store.insert(*path, new);
        }
        self.attributes.retain(|_, m| !m.is_empty());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use crate::object::Change;
    use lwm2m_core::format::tlv;
    use lwm2m_core::ResourceNode;

    fn p(s: &str) -> Path {
        s.parse().unwrap()
    }

    fn read_text(dm: &DataModel, path: &str) -> String {
        text(&dm.read(101, &p(path), Some(ContentFormat::Text)).unwrap().1)
    }

    #[test]
    fn write_single_resource_in_text_and_records_change() {
        let mut dm = single_server();
        dm.write(101, &p("/1/0/1"), WriteMode::Replace, ContentFormat::Text, b"600")
            .unwrap();
        assert_eq!(read_text(&dm, "/1/0/1"), "600");
        assert_eq!(dm.take_changes(), vec![Change::value(p("/1/0/1"))]);
        dm.write(101, &p("/3442/0/130"), WriteMode::Replace, ContentFormat::Text, b"2.5")
            .unwrap();
        assert_eq!(read_text(&dm, "/3442/0/130"), "2.5");
        dm.write(
            101,
            &p("/3/0/13"),
            WriteMode::Replace,
            ContentFormat::Cbor,
            &[0x1A, 0x65, 0x53, 0xF1, 0x00],
        )
        .unwrap();
        assert_eq!(read_text(&dm, "/3/0/13"), "1700000000", "current time is settable");
    }

    #[test]
    fn dse_001_write_one_resource_instance_in_tlv_senml_and_text() {
        let mut dm = single_server();
        dm.write(
            101,
            &p("/3442/0/1120/1"),
            WriteMode::Replace,
            ContentFormat::Text,
            b"-7",
        )
        .unwrap();
        // TLV resource-instance entry: type 01 000 001, id 2, value 0x2A.
        dm.write(
            101,
            &p("/3442/0/1120/2"),
            WriteMode::Replace,
            ContentFormat::Tlv,
            &[0x41, 0x02, 0x2A],
        )
        .unwrap();
        dm.write(
            101,
            &p("/3442/0/1120/5"),
            WriteMode::Replace,
            ContentFormat::SenmlJson,
            br#"[{"bn":"/3442/0/1120/5","v":5}]"#,
        )
        .unwrap();
        assert_eq!(
            dm.local_read(&p("/3442/0/1120")).unwrap(),
            Node::Resource(ResourceNode::multiple(
                1120,
                [
                    (0, Value::Integer(10)),
                    (1, Value::Integer(-7)),
                    (2, Value::Integer(42)),
                    (5, Value::Integer(5))
                ]
            ))
        );
        assert_eq!(
            dm.take_changes(),
            vec![
                Change::value(p("/3442/0/1120/1")),
                Change::value(p("/3442/0/1120/2")),
                Change::value(p("/3442/0/1120/5"))
            ]
        );
        // A resource-instance path on a single resource, and a payload for another instance.
        let e = dm.write(101, &p("/3442/0/120/0"), WriteMode::Replace, ContentFormat::Text, b"1");
        assert_eq!(e.unwrap_err().code(), (4, 0));
        let e = dm.write(
            101,
            &p("/3442/0/1120/1"),
            WriteMode::Replace,
            ContentFormat::Tlv,
            &[0x41, 0x02, 0x2A],
        );
        assert_eq!(e.unwrap_err().code(), (4, 0));
    }

    #[test]
    fn replace_vs_partial_on_multiple_resource() {
        let mut dm = single_server();
        let tlv_one = tlv::encode(
            &p("/3442/0/1120"),
            &Node::Resource(ResourceNode::multiple(1120, [(7, Value::Integer(70))])),
        )
        .unwrap();
        dm.write(
            101,
            &p("/3442/0/1120"),
            WriteMode::PartialUpdate,
            ContentFormat::Tlv,
            &tlv_one,
        )
        .unwrap();
        assert_eq!(
            dm.local_read(&p("/3442/0/1120")).unwrap(),
            Node::Resource(ResourceNode::multiple(
                1120,
                [
                    (0, Value::Integer(10)),
                    (1, Value::Integer(11)),
                    (2, Value::Integer(12)),
                    (7, Value::Integer(70))
                ]
            ))
        );
        dm.write(
            101,
            &p("/3442/0/1120"),
            WriteMode::Replace,
            ContentFormat::Tlv,
            &tlv_one,
        )
        .unwrap();
        assert_eq!(
            dm.local_read(&p("/3442/0/1120")).unwrap(),
            Node::Resource(ResourceNode::multiple(1120, [(7, Value::Integer(70))]))
        );
    }

    #[test]
    fn replace_vs_partial_on_instance() {
        let mut dm = single_server();
        let payload = br#"[{"bn":"/3442/0/","n":"120","v":7}]"#;
        dm.write(
            101,
            &p("/3442/0"),
            WriteMode::PartialUpdate,
            ContentFormat::SenmlJson,
            payload,
        )
        .unwrap();
        assert_eq!(read_text(&dm, "/3442/0/120"), "7");
        assert_eq!(read_text(&dm, "/3442/0/110"), "hello", "partial keeps the rest");
        dm.write(
            101,
            &p("/3442/0"),
            WriteMode::Replace,
            ContentFormat::SenmlJson,
            payload,
        )
        .unwrap();
        assert_eq!(read_text(&dm, "/3442/0/120"), "7");
        assert_eq!(
            dm.read(101, &p("/3442/0/110"), None).unwrap_err().code(),
            (4, 4),
            "replace removes 110"
        );
        assert_eq!(dm.read(101, &p("/3442/0/1120"), None).unwrap_err().code(), (4, 4));
        // Write-Replace lacking a mandatory writable resource (/1/x/1 Lifetime, 6, 7).
        let e = dm.write(
            101,
            &p("/1/0"),
            WriteMode::Replace,
            ContentFormat::SenmlJson,
            br#"[{"n":"/1/0/1","v":9}]"#,
        );
        assert_eq!(e.unwrap_err().code(), (4, 0));
        let full = br#"[{"bn":"/1/0/","n":"1","v":9},{"n":"6","vb":false},{"n":"7","vs":"U"}]"#;
        dm.write(101, &p("/1/0"), WriteMode::Replace, ContentFormat::SenmlJson, full)
            .unwrap();
        assert_eq!(read_text(&dm, "/1/0/1"), "9");
    }

    #[test]
    fn instance_write_with_read_only_resource_writes_nothing() {
        let mut dm = single_server();
        let payload = br#"[{"bn":"/1/0/","n":"1","v":1000},{"n":"0","v":5}]"#;
        let e = dm.write(
            101,
            &p("/1/0"),
            WriteMode::PartialUpdate,
            ContentFormat::SenmlJson,
            payload,
        );
        assert_eq!(e.unwrap_err().code(), (4, 5));
        assert_eq!(read_text(&dm, "/1/0/1"), "300", "nothing written");
        assert!(dm.take_changes().is_empty());
        // Unknown resources are ignored.
        let payload = br#"[{"bn":"/1/0/","n":"1","v":1000},{"n":"99","v":5}]"#;
        dm.write(
            101,
            &p("/1/0"),
            WriteMode::PartialUpdate,
            ContentFormat::SenmlJson,
            payload,
        )
        .unwrap();
        assert_eq!(read_text(&dm, "/1/0/1"), "1000");
    }

    #[test]
    fn write_errors() {
        let mut dm = single_server();
        let mut code = |path: &str, f: ContentFormat, body: &[u8]| {
            dm.write(101, &p(path), WriteMode::Replace, f, body).unwrap_err().code()
        };
        assert_eq!(code("/", ContentFormat::Text, b"1"), (4, 5));
        assert_eq!(
            code("/3", ContentFormat::Tlv, b""),
            (4, 5),
            "object write outside bootstrap"
        );
        assert_eq!(
            code("/0/0/0", ContentFormat::Text, b"coap://x"),
            (4, 4),
            "Security invisible"
        );
        assert_eq!(code("/0", ContentFormat::Tlv, b""), (4, 4));
        assert_eq!(code("/3/5/13", ContentFormat::Text, b"1"), (4, 4));
        assert_eq!(code("/3/0/999", ContentFormat::Text, b"1"), (4, 4));
        assert_eq!(code("/3/0/0", ContentFormat::Text, b"x"), (4, 5), "read-only");
        assert_eq!(code("/3/0/4", ContentFormat::Text, b"x"), (4, 5), "executable");
        assert_eq!(code("/1/0/1", ContentFormat::Text, b"abc"), (4, 0), "not an integer");
        assert_eq!(code("/1/0/1", ContentFormat::Link, b"</1>"), (4, 15));
        assert_eq!(
            code("/1/0", ContentFormat::Text, b"1"),
            (4, 15),
            "text cannot carry an instance"
        );
        assert_eq!(
            code("/3442/0/1120", ContentFormat::Text, b"1"),
            (4, 15),
            "text for a multiple resource"
        );
        assert_eq!(code("/1/0/1", ContentFormat::Tlv, &[0xC1]), (4, 0), "truncated TLV");
        assert_eq!(
            code("/1/0/7", ContentFormat::Text, b"X"),
            (4, 0),
            "object-level check (binding)"
        );
        assert_eq!(code("/1/0/1", ContentFormat::Text, b"-1"), (4, 0));
    }

    #[test]
    fn write_with_acl() {
        let mut dm = two_servers();
        // 102 has R+W on /3442/0; 101 owns it.
        dm.write(102, &p("/3442/0/120"), WriteMode::Replace, ContentFormat::Text, b"1")
            .unwrap();
        dm.write(101, &p("/3442/0/120"), WriteMode::Replace, ContentFormat::Text, b"2")
            .unwrap();
        // 102 has only R on /3/0: 4.01 before anything else, even for a read-only resource.
        let e = dm.write(102, &p("/3/0/13"), WriteMode::Replace, ContentFormat::Text, b"1");
        assert_eq!(e.unwrap_err().code(), (4, 1));
        let e = dm.write(102, &p("/3/0/0"), WriteMode::Replace, ContentFormat::Text, b"x");
        assert_eq!(e.unwrap_err().code(), (4, 1));
        // 101 owns /3/0: right present, resource read-only → 4.05.
        let e = dm.write(101, &p("/3/0/0"), WriteMode::Replace, ContentFormat::Text, b"x");
        assert_eq!(e.unwrap_err().code(), (4, 5));
        // Object 2: only the owner writes.
        let (iid, _) = dm.acl_for(3, 0).unwrap();
        let acl_path = Path::resource_instance(2, iid, 2, 103);
        let e = dm.write(102, &acl_path, WriteMode::Replace, ContentFormat::Text, b"1");
        assert_eq!(e.unwrap_err().code(), (4, 1));
        dm.write(101, &acl_path, WriteMode::Replace, ContentFormat::Text, b"1")
            .unwrap();
        assert_eq!(
            dm.access_rights(103, 3, 0),
            AccessRights::READ,
            "the owner granted R to 103"
        );
    }

    #[test]
    fn write_composite_atomic() {
        let mut dm = single_server();
        let ok = br#"[{"n":"/1/0/1","v":120},{"n":"/3442/0/110","vs":"x"},{"n":"/3442/0/1120/9","v":9}]"#;
        dm.write_composite(101, ContentFormat::SenmlJson, ok).unwrap();
        assert_eq!(read_text(&dm, "/1/0/1"), "120");
        assert_eq!(read_text(&dm, "/3442/0/110"), "x");
        assert_eq!(read_text(&dm, "/3442/0/1120/9"), "9");
        assert_eq!(read_text(&dm, "/3442/0/1120/0"), "10", "partial update of the array");
        dm.take_changes();
        for (bad, code) in [
            (&br#"[{"n":"/1/0/1","v":1},{"n":"/3/0/0","vs":"x"}]"#[..], (4, 5)),
            (br#"[{"n":"/1/0/1","v":1},{"n":"/3442/7/110","vs":"x"}]"#, (4, 4)),
            (br#"[{"n":"/1/0/1","v":1},{"n":"/0/0/0","vs":"x"}]"#, (4, 4)),
            (br#"[{"n":"/1/0/1","v":1},{"n":"/3442/0/140","vs":"x"}]"#, (4, 0)),
            (br#"[{"n":"/1/0/1","v":1},{"n":"/1/0/1","v":2}]"#, (4, 0)),
            (br#"[{"n":"/1/0/1","v":1},{"n":"/3442/0/1120","v":2}]"#, (4, 0)),
            (br#"[{"n":"/1/0/1","v":1},{"n":"/1/0/7","vs":"bad"}]"#, (4, 0)),
            (br#"[]"#, (4, 0)),
        ] {
            let e = dm.write_composite(101, ContentFormat::SenmlJson, bad).unwrap_err();
            assert_eq!(e.code(), code, "{}", text(bad));
            assert_eq!(read_text(&dm, "/1/0/1"), "120", "nothing written: {}", text(bad));
        }
        assert!(dm.take_changes().is_empty());
        assert_eq!(
            dm.write_composite(101, ContentFormat::Tlv, b"").unwrap_err().code(),
            (4, 15)
        );
    }

    #[test]
    fn write_composite_acl() {
        let mut dm = two_servers();
        let body = br#"[{"n":"/3442/0/120","v":5},{"n":"/3/0/13","v":5}]"#;
        assert_eq!(
            dm.write_composite(102, ContentFormat::SenmlJson, body)
                .unwrap_err()
                .code(),
            (4, 1)
        );
        assert_eq!(read_text(&dm, "/3442/0/120"), "42");
        dm.write_composite(101, ContentFormat::SenmlJson, body).unwrap();
    }

    #[test]
    fn write_attributes_store_per_server_and_validate() {
        let mut dm = single_server();
        dm.write_attributes(101, &p("/3/0/9"), &["pmin=10", "pmax=60", "gt=50"])
            .unwrap();
        let a = dm.attributes(101, &p("/3/0/9"));
        assert_eq!((a.pmin, a.pmax, a.gt), (Some(10), Some(60), Some(50.0)));
        assert!(dm.attributes(102, &p("/3/0/9")).is_empty(), "per server");
        // Unset pmax.
        dm.write_attributes(101, &p("/3/0/9"), &["pmax"]).unwrap();
        assert_eq!(dm.attributes(101, &p("/3/0/9")).pmax, None);
        // lt >= gt on the effective set.
        assert_eq!(
            dm.write_attributes(101, &p("/3/0/9"), &["lt=60"]).unwrap_err().code(),
            (4, 0)
        );
        dm.write_attributes(101, &p("/3/0/9"), &["lt=20", "st=5"]).unwrap();
        assert_eq!(
            dm.write_attributes(101, &p("/3/0/9"), &["st=20"]).unwrap_err().code(),
            (4, 0)
        );
        // Effective attributes include /1/x/2 and /1/x/3 server defaults and higher levels.
        dm.write(101, &p("/1/0/3"), WriteMode::Replace, ContentFormat::Text, b"300")
            .unwrap();
        dm.write_attributes(101, &p("/3"), &["epmin=2"]).unwrap();
        let e = dm.effective_attributes(101, &p("/3/0/9"));
        assert_eq!(
            (e.pmin, e.pmax, e.epmin, e.gt),
            (Some(10), Some(300), Some(2), Some(50.0))
        );
        // Everything unset: nothing stored.
        dm.write_attributes(101, &p("/3"), &["epmin"]).unwrap();
        assert!(dm.attributes(101, &p("/3")).is_empty());
    }

    #[test]
    fn write_attributes_errors() {
        let mut dm = two_servers();
        let mut code = |ssid: u16, path: &str, q: &[&str]| dm.write_attributes(ssid, &p(path), q).unwrap_err().code();
        assert_eq!(code(101, "/", &["pmin=1"]), (4, 0));
        assert_eq!(code(101, "/0/0", &["pmin=1"]), (4, 4));
        assert_eq!(code(101, "/3/9", &["pmin=1"]), (4, 4));
        assert_eq!(code(101, "/3/0/17", &["pmin=1"]), (4, 4), "not instantiated");
        assert_eq!(code(101, "/3/0/7/9", &["pmin=1"]), (4, 4));
        assert_eq!(code(101, "/3/0/9", &["foo=1"]), (4, 0));
        assert_eq!(code(101, "/3/0/9", &["dim=1"]), (4, 0), "read-only attribute");
        assert_eq!(code(101, "/3/0", &["gt=1"]), (4, 0), "gt at instance level");
        assert_eq!(code(101, "/3/0/0", &["gt=1"]), (4, 0), "gt on a string");
        assert_eq!(code(101, "/3/0/4", &["pmin=1"]), (4, 0), "pmin on an executable");
        assert_eq!(code(101, "/3303/0", &["pmin=1"]), (4, 1), "needs R");
        // Object level needs no right; Object 2 instances are readable by everyone.
        dm.write_attributes(101, &p("/3303"), &["pmin=1"]).unwrap();
        dm.write_attributes(102, &p("/2/0"), &["pmin=1"]).unwrap();
    }

    #[test]
    fn attribute_change_invalidating_a_lower_level_is_refused() {
        let mut dm = single_server();
        dm.write_attributes(101, &p("/3442/0/1120/0"), &["lt=10"]).unwrap();
        assert_eq!(
            dm.write_attributes(101, &p("/3442/0/1120"), &["gt=5"])
                .unwrap_err()
                .code(),
            (4, 0)
        );
        dm.write_attributes(101, &p("/3442/0/1120"), &["gt=50"]).unwrap();
    }

    proptest::proptest! {
        #[test]
        fn write_then_read_round_trips_in_every_format(v in proptest::prelude::any::<i64>(), f in 0usize..5) {
            let formats = [
                ContentFormat::Text,
                ContentFormat::Tlv,
                ContentFormat::Cbor,
                ContentFormat::SenmlJson,
                ContentFormat::SenmlCbor,
            ];
            let format = formats[f];
            let path = p("/3442/0/120");
            let mut dm = single_server();
            let body = format::encode(format, &path, &Node::Resource(ResourceNode::single(120, Value::Integer(v)))).unwrap();
            dm.write(101, &path, WriteMode::Replace, format, &body).unwrap();
            let (_, back) = dm.read(101, &path, Some(format)).unwrap();
            proptest::prop_assert_eq!(back, body);
            let ri = p("/3442/0/1120/7");
            let body = format::encode(format, &ri, &Node::ResourceInstance { id: 7, value: Value::Integer(v) }).unwrap();
            dm.write(101, &ri, WriteMode::Replace, format, &body).unwrap();
            proptest::prop_assert_eq!(dm.read(101, &ri, Some(format)).unwrap().1, body);
        }

        #[test]
        fn arbitrary_payloads_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..48), f in 0usize..7) {
            let format = [
                ContentFormat::Text,
                ContentFormat::Opaque,
                ContentFormat::Cbor,
                ContentFormat::Tlv,
                ContentFormat::SenmlJson,
                ContentFormat::SenmlCbor,
                ContentFormat::Lwm2mJson,
            ][f];
            let mut dm = two_servers();
            let _ = dm.write(101, &p("/3442/0"), WriteMode::Replace, format, &bytes);
            let _ = dm.write(102, &p("/3442/0/1120"), WriteMode::PartialUpdate, format, &bytes);
            let _ = dm.write_composite(101, format, &bytes);
            let _ = dm.create(101, &p("/3303"), format, &bytes);
            let _ = dm.bootstrap_write(&p("/1"), format, &bytes);
            let _ = dm.read_composite(101, format, &bytes, None);
            let _ = dm.execute(101, &p("/3442/0/3"), &bytes);
        }
    }

    #[test]
    fn typed_resource_checks_multiplicity() {
        let dm = single_server();
        let m = dm.handler(3442).unwrap().model().resource(1120).unwrap().clone();
        let e = typed_resource(&p("/3442/0/1120"), &m, ResourceValue::Single(Value::Integer(1)));
        assert_eq!(e.unwrap_err().code(), (4, 0));
    }
}
