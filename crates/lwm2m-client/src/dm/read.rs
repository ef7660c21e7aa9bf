//! Read, Discover and Read-Composite (digest §5.2), and the response format choice.

use std::collections::BTreeSet;

use lwm2m_core::attributes::{self, Attributes};
use lwm2m_core::format::{self, link};
use lwm2m_core::{ContentFormat, DataType, Node, ObjectNode, Path, Record, ResourceNode, ResourceValue};

use super::{is_dm_visible, DataModel};
use crate::object::DmError;
use crate::objects::access_control::AccessRights;

impl DataModel {
    /// DM&SE Read of `/o`, `/o/i`, `/o/i/r` or `/o/i/r/ri` by server `ssid`, encoded in `accept` (or the
    /// default format). Errors: 4.00 (root, resource instance of a single resource), 4.01, 4.04, 4.05 (not
    /// readable), 4.06 (the Accept format cannot carry the content).
    pub fn read(
        &self,
        ssid: u16,
        path: &Path,
        accept: Option<ContentFormat>,
    ) -> Result<(ContentFormat, Vec<u8>), DmError> {
        let node = self.read_node(ssid, path)?;
        self.encode_node(path, &node, accept)
    }

    /// The content a Read (or Observe) of `path` by server `ssid` returns, before encoding: objects hold only
    /// the instances the server may read, instances only readable resources.
    pub fn read_node(&self, ssid: u16, path: &Path) -> Result<Node, DmError> {
        let ids = path.ids();
        let Some(&oid) = ids.first() else {
            return Err(DmError::bad_request(
                "Read needs an object, instance, resource or resource-instance path (use Read-Composite for /)",
            ));
        };
        let h = self.visible(oid)?;
        let Some(&iid) = ids.get(1) else {
            let instances = h
                .instances()
                .into_iter()
                .filter(|iid| self.access_rights(ssid, oid, *iid).contains(AccessRights::READ))
                .map(|iid| (iid, self.instance_node(h, iid, |m| m.operations.read)))
                .collect();
            return Ok(Node::Object(ObjectNode { id: oid, instances }));
        };
        self.require_instance(h, oid, iid)?;
        self.check_access(ssid, oid, iid, AccessRights::READ, "read")?;
        let Some(&rid) = ids.get(2) else {
            return Ok(Node::Instance(self.instance_node(h, iid, |m| m.operations.read)));
        };
        let m = Self::resource_model(h, oid, iid, rid)?;
        if !m.operations.read {
            return Err(DmError::method_not_allowed(format!(
                "{} is not readable",
                Path::resource(oid, iid, rid)
            )));
        }
        if ids.len() == 4 && !m.multiple {
            return Err(DmError::bad_request(format!(
                "{path}: resource {rid} is not a multiple resource"
            )));
        }
        Self::require_resource(h, oid, iid, rid)?;
        let value = h.read(iid, rid)?;
        match ids.get(3) {
            None => Ok(Node::Resource(ResourceNode { id: rid, value })),
            Some(&ri) => match value {
                ResourceValue::Multiple(mut map) => map
                    .remove(&ri)
                    .map(|value| Node::ResourceInstance { id: ri, value })
                    .ok_or_else(|| DmError::not_found(format!("{path} is not present"))),
                ResourceValue::Single(_) => Err(DmError::bad_request(format!("{path}: the resource holds one value"))),
            },
        }
    }

    /// Whether server `ssid` may currently read `path` (existence aside): always for object paths (a Read of
    /// an object aggregates what the server may read), else the Read right on the instance. The observe
    /// driver checks this before each Notify (digest §6.1, §7.4).
    pub fn may_read(&self, ssid: u16, path: &Path) -> bool {
        match (path.object_id(), path.instance_id()) {
            (Some(oid), _) if !is_dm_visible(oid) => false,
            (Some(oid), Some(iid)) => self.access_rights(ssid, oid, iid).contains(AccessRights::READ),
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// The leaf values at `path` read locally (no access control), as records; empty when the path does not
    /// exist. Turns [`DataModel::take_changes`] output into the values the observe engine wants.
    pub fn records_at(&self, path: &Path) -> Vec<Record> {
        self.local_read(path).map(|n| n.to_records(path)).unwrap_or_default()
    }

    /// The format a response carrying `node` uses without Accept: opaque for one Opaque value, text/plain for
    /// any other single value, the multi-value format otherwise.
    pub fn default_format(&self, node: &Node) -> ContentFormat {
        let single = match node {
            Node::Resource(ResourceNode {
                value: ResourceValue::Single(v),
                ..
            }) => Some(v),
            Node::ResourceInstance { value, .. } => Some(value),
            _ => None,
        };
        match single {
            Some(v) if v.data_type() == DataType::Opaque => ContentFormat::Opaque,
            Some(_) => ContentFormat::Text,
            None => self.multi_format,
        }
    }

    /// Encodes read content in `accept` or the default format. A format that cannot carry the node is
    /// 4.06 when asked for, 5.00 otherwise.
    pub fn encode_node(
        &self,
        path: &Path,
        node: &Node,
        accept: Option<ContentFormat>,
    ) -> Result<(ContentFormat, Vec<u8>), DmError> {
        let format = accept.unwrap_or_else(|| self.default_format(node));
        match format::encode(format, path, node) {
            Ok(bytes) => Ok((format, bytes)),
            Err(e) if accept.is_some() => Err(DmError::not_acceptable(format!("{path} in {format}: {e}"))),
            Err(e) => Err(DmError::internal(format!("{path} in {format}: {e}"))),
        }
    }

    /// The `dim` of a present multiple resource.
    fn dimension(h: &dyn crate::object::ObjectHandler, iid: u16, rid: u16) -> Option<u16> {
        match h.read(iid, rid) {
            Ok(ResourceValue::Multiple(m)) => u16::try_from(m.len()).ok(),
            _ => None,
        }
    }

    /// DM&SE Discover (digest §5.2): link format with the requesting server's attributes; no access right
    /// needed. `/o` lists the object (with `ver` when not the default), its instances and their resources;
    /// `/o/i` the instance and its resources; `/o/i/r` the resource with its effective attributes and, for a
    /// multiple resource, its resource instances; `/o/i/r/ri` that resource instance with its effective
    /// attributes. Errors: 4.00 (root), 4.04.
    pub fn discover(&self, ssid: u16, path: &Path) -> Result<String, DmError> {
        let ids = path.ids();
        let Some(&oid) = ids.first() else {
            return Err(DmError::bad_request(
                "Discover needs an object, instance or resource path",
            ));
        };
        let h = self.visible(oid)?;
        let mut entries: Vec<(Path, Attributes)> = Vec::new();
        let resource_entries = |iid: u16, entries: &mut Vec<(Path, Attributes)>| {
            for rid in h.resources(iid) {
                let p = Path::resource(oid, iid, rid);
                let mut a = self.attributes(ssid, &p);
                a.dim = h
                    .model()
                    .resource(rid)
                    .filter(|m| m.multiple)
                    .and_then(|_| Self::dimension(h, iid, rid));
                entries.push((p, a));
            }
        };
        match *ids {
            [_] => {
                let obj = Path::object(oid);
                let mut a = self.attributes(ssid, &obj);
                a.ver = Some(h.model().version);
                entries.push((obj, a));
                for iid in h.instances() {
                    let p = Path::instance(oid, iid);
                    entries.push((p, self.attributes(ssid, &p)));
                    resource_entries(iid, &mut entries);
                }
            }
            [_, iid] => {
                self.require_instance(h, oid, iid)?;
                entries.push((*path, self.attributes(ssid, path)));
                resource_entries(iid, &mut entries);
            }
            [_, iid, rid] => {
                self.require_instance(h, oid, iid)?;
                Self::resource_model(h, oid, iid, rid)?;
                Self::require_resource(h, oid, iid, rid)?;
                let levels = self.assigned_levels(ssid, path);
                let refs: Vec<&Attributes> = levels.iter().collect();
                let mut a = attributes::effective(&refs);
                let multiple = h.model().resource(rid).is_some_and(|m| m.multiple);
                a.dim = if multiple { Self::dimension(h, iid, rid) } else { None };
                entries.push((*path, a));
                if let (true, Ok(ResourceValue::Multiple(m))) = (multiple, h.read(iid, rid)) {
                    for ri in m.keys() {
                        let p = Path::resource_instance(oid, iid, rid, *ri);
                        entries.push((p, self.attributes(ssid, &p)));
                    }
                }
            }
            [_, iid, rid, ri] => {
                self.require_instance(h, oid, iid)?;
                let m = Self::resource_model(h, oid, iid, rid)?;
                if !m.multiple {
                    return Err(DmError::bad_request(format!(
                        "{path}: resource {rid} is not a multiple resource"
                    )));
                }
                match h.read(iid, rid) {
                    Ok(ResourceValue::Multiple(map)) if map.contains_key(&ri) => {}
                    _ => return Err(DmError::not_found(format!("{path} is not present"))),
                }
                let levels = self.assigned_levels(ssid, path);
                let refs: Vec<&Attributes> = levels.iter().collect();
                entries.push((*path, attributes::effective(&refs)));
            }
            _ => return Err(DmError::bad_request(format!("{path} is not a valid Discover target"))),
        }
        Ok(link::write_discover(None, &entries))
    }

    /// DM&SE Read-Composite (digest §5.2): `request_format` (SenML JSON or CBOR, else 4.15) names the paths;
    /// the answer is one SenML pack in `accept` (default: the request format; anything but SenML is 4.06).
    /// Best effort: paths that cannot be read (missing, no access, Security) are left out.
    pub fn read_composite(
        &self,
        ssid: u16,
        request_format: ContentFormat,
        payload: &[u8],
        accept: Option<ContentFormat>,
    ) -> Result<(ContentFormat, Vec<u8>), DmError> {
        let senml = |f: ContentFormat| matches!(f, ContentFormat::SenmlJson | ContentFormat::SenmlCbor);
        if !senml(request_format) {
            return Err(DmError::unsupported_format(format!(
                "Read-Composite requests use SenML JSON or SenML CBOR, not {request_format}"
            )));
        }
        let out = accept.unwrap_or(request_format);
        if !senml(out) {
            return Err(DmError::not_acceptable(format!(
                "Read-Composite answers in SenML, not {out}"
            )));
        }
        let paths = format::decode_paths(request_format, payload).map_err(|e| DmError::bad_request(e.to_string()))?;
        let records = self.composite_records(ssid, &paths);
        let bytes = format::encode_records(out, &Path::ROOT, &records).map_err(|e| DmError::internal(e.to_string()))?;
        Ok((out, bytes))
    }

    /// The values of a composite read of `paths` by server `ssid` (best effort, no duplicates, in request
    /// order). `/` stands for every readable object. Also used by Observe-Composite.
    pub fn composite_records(&self, ssid: u16, paths: &[Path]) -> Vec<Record> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        let mut add = |p: &Path, out: &mut Vec<Record>| {
            if let Ok(node) = self.read_node(ssid, p) {
                for r in node.to_records(p) {
                    if seen.insert(r.path) {
                        out.push(r);
                    }
                }
            }
        };
        for p in paths {
            if p.is_root() {
                for oid in self.objects.keys().filter(|o| is_dm_visible(**o)) {
                    add(&Path::object(*oid), &mut out);
                }
            } else {
                add(p, &mut out);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use crate::object::WriteMode;
    use lwm2m_core::Value;

    fn p(s: &str) -> Path {
        s.parse().unwrap()
    }

    #[test]
    fn read_single_resource_in_every_single_value_format() {
        let dm = single_server();
        assert_eq!(
            dm.read(101, &p("/3/0/0"), None).unwrap(),
            (ContentFormat::Text, b"Open Mobile Alliance".to_vec())
        );
        assert_eq!(
            dm.read(101, &p("/3/0/9"), Some(ContentFormat::Tlv)).unwrap(),
            (ContentFormat::Tlv, vec![0xC1, 0x09, 0x64])
        );
        let (f, cbor) = dm.read(101, &p("/3/0/9"), Some(ContentFormat::Cbor)).unwrap();
        assert_eq!((f, cbor), (ContentFormat::Cbor, vec![0x18, 0x64]));
        assert_eq!(
            dm.read(101, &p("/3/0/9"), Some(ContentFormat::SenmlJson)).unwrap().1,
            br#"[{"bn":"/3/0/9","v":100}]"#
        );
        // Opaque resources default to opaque.
        let mut dm = dm;
        dm.set_value(&p("/3442/0/150"), Value::Opaque(vec![1, 2, 3])).unwrap();
        assert_eq!(
            dm.read(101, &p("/3442/0/150"), None).unwrap(),
            (ContentFormat::Opaque, vec![1, 2, 3])
        );
        assert_eq!(
            dm.read(101, &p("/3442/0/150"), Some(ContentFormat::Text)).unwrap().1,
            b"AQID"
        );
    }

    #[test]
    fn dse_001_read_one_resource_instance_in_tlv_senml_and_text() {
        let dm = single_server();
        // /3/0/7 = {0: 3800, 1: 5000}
        assert_eq!(
            dm.read(101, &p("/3/0/7/1"), None).unwrap(),
            (ContentFormat::Text, b"5000".to_vec())
        );
        assert_eq!(
            dm.read(101, &p("/3/0/7/1"), Some(ContentFormat::Tlv)).unwrap().1,
            vec![0x42, 0x01, 0x13, 0x88]
        );
        assert_eq!(
            text(&dm.read(101, &p("/3/0/7/1"), Some(ContentFormat::SenmlJson)).unwrap().1),
            r#"[{"bn":"/3/0/7/1","v":5000}]"#
        );
        assert_eq!(dm.read(101, &p("/3/0/7/9"), None).unwrap_err().code(), (4, 4));
        assert_eq!(
            dm.read(101, &p("/3/0/9/0"), None).unwrap_err().code(),
            (4, 0),
            "single resource"
        );
    }

    #[test]
    fn read_instance_and_object_skip_non_readable() {
        let mut dm = single_server();
        dm.set_multi_value_format(ContentFormat::SenmlJson).unwrap();
        let (f, body) = dm.read(101, &p("/5/0"), None).unwrap();
        assert_eq!(f, ContentFormat::SenmlJson);
        let body = text(&body);
        assert!(!body.contains(r#""n":"0""#), "Package (W) is not read: {body}");
        assert!(body.contains(r#""n":"3","v":0"#), "{body}");
        // Object read: TLV uses object-instance TLVs.
        let (_, tlv) = dm.read(101, &p("/3303"), Some(ContentFormat::Tlv)).unwrap();
        assert_eq!(tlv.first(), Some(&0x08), "object instance TLV, 8-bit id, 8-bit length");
        let node = dm.read_node(101, &p("/3")).unwrap();
        assert!(matches!(node, Node::Object(ref o) if o.instances.len() == 1));
    }

    #[test]
    fn read_errors() {
        let dm = single_server();
        let code = |path: &str, accept| dm.read(101, &p(path), accept).unwrap_err().code();
        assert_eq!(code("/", None), (4, 0));
        assert_eq!(code("/0", None), (4, 4), "Security is invisible");
        assert_eq!(code("/0/0/0", None), (4, 4));
        assert_eq!(code("/21", None), (4, 4));
        assert_eq!(code("/99", None), (4, 4));
        assert_eq!(code("/3/1", None), (4, 4));
        assert_eq!(code("/3/0/4", None), (4, 5), "Reboot is executable");
        assert_eq!(code("/5/0/0", None), (4, 5), "Package is write-only");
        assert_eq!(code("/3/0/99", None), (4, 4), "not in the model");
        assert_eq!(code("/3/0/17", None), (4, 4), "optional, not instantiated");
        assert_eq!(code("/3/0", Some(ContentFormat::Text)), (4, 6));
        assert_eq!(code("/3/0/0", Some(ContentFormat::Opaque)), (4, 6));
        assert_eq!(code("/3/0/0", Some(ContentFormat::Link)), (4, 6));
        assert_eq!(
            code("/3/0/7", Some(ContentFormat::Text)),
            (4, 6),
            "multiple resource in text"
        );
    }

    #[test]
    fn read_with_acl() {
        let dm = two_servers();
        assert!(dm.read(102, &p("/3/0/0"), None).is_ok());
        assert_eq!(dm.read(101, &p("/3303/0"), None).unwrap_err().code(), (4, 1));
        assert_eq!(dm.read(101, &p("/3303/0/5700"), None).unwrap_err().code(), (4, 1));
        // Access is checked before the resource: 4.01 beats 4.05 and 4.04.
        assert_eq!(dm.read(101, &p("/6/0/4"), None).unwrap_err().code(), (4, 1));
        assert_eq!(dm.read(101, &p("/6/0/99"), None).unwrap_err().code(), (4, 1));
        // The object read aggregates only readable instances.
        match dm.read_node(101, &p("/3303")).unwrap() {
            Node::Object(o) => assert!(o.instances.is_empty()),
            other => panic!("{other:?}"),
        }
        match dm.read_node(102, &p("/3303")).unwrap() {
            Node::Object(o) => assert_eq!(o.instances.len(), 1),
            other => panic!("{other:?}"),
        }
        // Any server reads ACL instances.
        assert!(dm.read(102, &p("/2/0"), None).is_ok());
    }

    #[test]
    fn discover_object_instance_resource() {
        let mut dm = single_server();
        dm.write_attributes(101, &p("/3"), &["pmin=10"]).unwrap();
        dm.write_attributes(101, &p("/3/0"), &["pmax=60"]).unwrap();
        dm.write_attributes(101, &p("/3/0/7"), &["gt=50", "lt=42.2"]).unwrap();
        dm.write_attributes(101, &p("/3/0/7/1"), &["st=1"]).unwrap();
        let d = dm.discover(101, &p("/3")).unwrap();
        assert!(
            d.starts_with("</3>;pmin=10,</3/0>;pmax=60,</3/0/0>,</3/0/1>,</3/0/2>,</3/0/3>,</3/0/4>,</3/0/5>,"),
            "{d}"
        );
        assert!(d.contains("</3/0/6>;dim=2,</3/0/7>;dim=2;gt=50;lt=42.2,"), "{d}");
        assert!(
            !d.contains("</3/0/7/0>"),
            "resource instances only under a resource discover: {d}"
        );
        assert_eq!(
            dm.discover(101, &p("/3/0/7")).unwrap(),
            "</3/0/7>;dim=2;pmin=10;pmax=60;gt=50;lt=42.2,</3/0/7/0>,</3/0/7/1>;st=1"
        );
        assert_eq!(
            dm.discover(101, &p("/3/0/7/1")).unwrap(),
            "</3/0/7/1>;pmin=10;pmax=60;gt=50;lt=42.2;st=1"
        );
        let inst = dm.discover(101, &p("/3/0")).unwrap();
        assert!(inst.starts_with("</3/0>;pmax=60,</3/0/0>,"), "{inst}");
        // Another server sees its own (no) attributes.
        assert!(dm.discover(7, &p("/3")).unwrap().starts_with("</3>,</3/0>,"));
        // Object version.
        assert!(dm
            .discover(101, &p("/3303"))
            .unwrap()
            .starts_with("</3303>;ver=1.1,</3303/0>,"));
        assert!(
            dm.discover(101, &p("/4")).unwrap().starts_with("</4>,</4/0>,"),
            "1.2 is the default of 4"
        );
    }

    #[test]
    fn discover_errors_and_no_acl_needed() {
        let dm = two_servers();
        assert!(dm.discover(101, &p("/3303/0")).is_ok(), "no access right needed");
        let code = |s: &str| dm.discover(101, &p(s)).unwrap_err().code();
        assert_eq!(code("/"), (4, 0));
        assert_eq!(code("/0"), (4, 4));
        assert_eq!(code("/99"), (4, 4));
        assert_eq!(code("/3/7"), (4, 4));
        assert_eq!(code("/3/0/17"), (4, 4), "not instantiated");
        assert_eq!(code("/3/0/9/0"), (4, 0));
        assert_eq!(code("/3/0/7/5"), (4, 4));
    }

    #[test]
    fn read_composite_best_effort() {
        let dm = two_servers();
        let req =
            br#"[{"n":"/3/0/9"},{"n":"/3303/0/5700"},{"n":"/0/0/0"},{"n":"/99"},{"n":"/3/0/7/1"},{"n":"/3/0/9"}]"#;
        let (f, body) = dm.read_composite(101, ContentFormat::SenmlJson, req, None).unwrap();
        assert_eq!(f, ContentFormat::SenmlJson);
        assert_eq!(text(&body), r#"[{"n":"/3/0/9","v":100},{"n":"/3/0/7/1","v":5000}]"#);
        let (f, cbor) = dm
            .read_composite(
                102,
                ContentFormat::SenmlJson,
                br#"[{"n":"/3303/0/5700"}]"#,
                Some(ContentFormat::SenmlCbor),
            )
            .unwrap();
        assert_eq!(f, ContentFormat::SenmlCbor);
        assert!(!cbor.is_empty());
        // The root reads everything readable, never Security.
        let (_, all) = dm
            .read_composite(102, ContentFormat::SenmlJson, br#"[{"n":"/"}]"#, None)
            .unwrap();
        let all = text(&all);
        assert!(
            all.contains(r#""/3303/0/5700""#) && all.contains(r#""/1/1/0""#),
            "{all}"
        );
        assert!(!all.contains(r#""/0/"#), "{all}");
        assert!(!all.contains(r#""/1/0/"#), "server 102 may not read /1/0: {all}");
    }

    #[test]
    fn read_composite_errors() {
        let dm = single_server();
        let req = br#"[{"n":"/3/0/9"}]"#;
        assert_eq!(
            dm.read_composite(101, ContentFormat::Tlv, req, None)
                .unwrap_err()
                .code(),
            (4, 15)
        );
        assert_eq!(
            dm.read_composite(101, ContentFormat::SenmlJson, req, Some(ContentFormat::Tlv))
                .unwrap_err()
                .code(),
            (4, 6)
        );
        assert_eq!(
            dm.read_composite(101, ContentFormat::SenmlJson, b"[{", None)
                .unwrap_err()
                .code(),
            (4, 0)
        );
        assert_eq!(
            dm.read_composite(101, ContentFormat::SenmlJson, br#"[{"n":"/3/65535"}]"#, None)
                .unwrap_err()
                .code(),
            (4, 0)
        );
    }

    #[test]
    fn may_read_and_records_at() {
        let dm = two_servers();
        assert!(dm.may_read(102, &p("/3303/0/5700")));
        assert!(!dm.may_read(101, &p("/3303/0/5700")));
        assert!(dm.may_read(101, &p("/3303")));
        assert!(!dm.may_read(101, &p("/0/0")));
        assert!(!dm.may_read(101, &Path::ROOT));
        assert_eq!(
            dm.records_at(&p("/3/0/7")),
            vec![
                Record::new(p("/3/0/7/0"), Value::Integer(3800)),
                Record::new(p("/3/0/7/1"), Value::Integer(5000))
            ]
        );
        assert!(dm.records_at(&p("/3/9")).is_empty());
    }

    #[test]
    fn data_model_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<DataModel>();
    }

    #[test]
    fn dse_001_read_after_resource_instance_write() {
        let mut dm = single_server();
        dm.write(
            101,
            &p("/3442/0/1120/1"),
            WriteMode::Replace,
            ContentFormat::Text,
            b"77",
        )
        .unwrap();
        assert_eq!(dm.read(101, &p("/3442/0/1120/1"), None).unwrap().1, b"77");
        assert_eq!(
            dm.read(101, &p("/3442/0/1120/0"), None).unwrap().1,
            b"10",
            "siblings untouched"
        );
    }
}
