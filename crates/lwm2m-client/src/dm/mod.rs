//! The DM&SE and Bootstrap operation dispatcher: [`DataModel`].
//!
//! [`DataModel`] holds the client's objects ([`ObjectHandler`]s) by id and implements every operation of the
//! Device Management & Service Enablement interface (digest §5) and of the Bootstrap interface (§3.3–3.7) on
//! top of them, sans-IO: each entry point takes the requesting server's Short Server ID, the path, the content
//! format and the payload as the CoAP layer parsed them, and returns the response content or a [`DmError`]
//! whose [`DmError::code`] is the CoAP response code.
//!
//! | operation | entry point | success |
//! |---|---|---|
//! | Read | [`DataModel::read`] | 2.05 + (format, payload) |
//! | Discover | [`DataModel::discover`] | 2.05 + link format |
//! | Write (Replace / Partial Update) | [`DataModel::write`] | 2.04 |
//! | Write-Attributes | [`DataModel::write_attributes`] | 2.04 |
//! | Execute | [`DataModel::execute`] | 2.04 |
//! | Create | [`DataModel::create`] | 2.01 + Location path |
//! | Delete | [`DataModel::delete`] | 2.02 |
//! | Read-Composite | [`DataModel::read_composite`] | 2.05 |
//! | Write-Composite | [`DataModel::write_composite`] | 2.04 |
//! | Bootstrap-Write / Read / Discover / Delete / Finish | [`DataModel::bootstrap_write`], [`DataModel::bootstrap_read`], [`DataModel::bootstrap_discover`], [`DataModel::bootstrap_delete`], [`DataModel::bootstrap_finish`] | 2.04 / 2.05 / 2.05 / 2.02 / 2.04 |
//!
//! **Checks, in order** (digest §7.4): the path's shape for the operation (4.00 / 4.05), Security (0) and
//! OSCORE (21) are invisible to DM&SE (4.04), the object and instance exist (4.04), the server has the access
//! right (4.01, see [`acl`](self::DataModel::access_rights)), the resource exists in the model (4.04) and
//! supports the operation (4.05), then formats and values (4.15, 4.00, 4.06). Nothing is changed unless every
//! check of the request passed (see the atomicity notes in [`crate::object`]).
//!
//! **Access Control** (§7) applies when Object 2 is present and there is more than one LwM2M Server account, or
//! when Object 2 has instances at all (the TS says the rules then apply even with one server). Without
//! Object 2 every server has full access. The Bootstrap-Server is never subject to it.
//!
//! **Formats.** Read answers in the Accept format (4.06 when it cannot carry the content); without Accept, a
//! single value goes out as text/plain (opaque for Opaque resources) and anything larger in the configured
//! multi-value format ([`DataModel::set_multi_value_format`], SenML CBOR by default). Request payloads are
//! decoded with `lwm2m_core::format` typed by the objects' own models; a format that cannot carry the target
//! is 4.15, a malformed payload 4.00.
//!
//! **Side effects** of operations are drained with [`DataModel::take_changes`] (for the observe and
//! registration engines) and [`DataModel::take_actions`] (for the driver).
//!
//! ```
//! use lwm2m_client::dm::{FactoryConfig, ServerConfig};
//! use lwm2m_client::object::{ClientAction, WriteMode};
//! use lwm2m_core::{ContentFormat, Path};
//!
//! let mut dm = FactoryConfig {
//!     servers: vec![ServerConfig::new(1, "coap://localhost:5683", 300)],
//!     ..FactoryConfig::default()
//! }
//! .build()?;
//! assert_eq!(dm.registration_payload(), "</1/0>,</2>,</3/0>");
//! let (format, body) = dm.read(1, &"/3/0/0".parse()?, None)?;
//! assert_eq!((format, body.as_slice()), (ContentFormat::Text, &b"lwm2m-rs"[..]));
//! dm.write(1, &"/1/0/1".parse()?, WriteMode::Replace, ContentFormat::Text, b"600")?;
//! assert_eq!(dm.take_changes()[0].path, "/1/0/1".parse::<Path>()?);
//! dm.execute(1, &"/3/0/4".parse()?, b"")?;
//! assert_eq!(dm.take_actions(), vec![ClientAction::Reboot]);
//! let err = dm.write(1, &"/3/0/0".parse()?, WriteMode::Replace, ContentFormat::Text, b"x").unwrap_err();
//! assert_eq!(err.code(), (4, 5));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod accounts;
mod acl;
mod bootstrap;
mod factory;
mod instances;
mod read;
mod write;

#[cfg(test)]
mod testutil;

use std::collections::BTreeMap;

use lwm2m_core::attributes::{self, Attributes};
use lwm2m_core::format::link::{self, ObjectLink, RegistrationLinks};
use lwm2m_core::model::Version;
use lwm2m_core::{
    ContentFormat, InstanceNode, Models, Node, ObjectModel, ObjectNode, Path, ResourceModel, ResourceNode,
    ResourceValue, Value,
};

pub use accounts::ServerAccountInfo;
pub use factory::{BootstrapConfig, Credentials, FactoryConfig, ServerConfig};

use crate::object::{Change, ClientAction, DmError, Effects, ObjectHandler};
use crate::objects::{OSCORE, SECURITY};

/// The LwM2M enabler version this client implements.
pub const LWM2M_VERSION: Version = Version::V1_1;

/// The client's data model: its objects, the attributes servers assigned, and the operation dispatcher.
pub struct DataModel {
    objects: BTreeMap<u16, Box<dyn ObjectHandler>>,
    /// Write-Attributes values: server SSID → path → the attributes assigned at that level.
    attributes: BTreeMap<u16, BTreeMap<Path, Attributes>>,
    fx: Effects,
    multi_format: ContentFormat,
    /// The Bootstrap-Server account when the bootstrap session began (restored by `bootstrap_abort`).
    bs_snapshot: Option<Option<InstanceNode>>,
    /// The configuration this data model was built from ([`FactoryConfig::build`]), for a factory reset.
    factory: Option<Box<FactoryConfig>>,
    /// A Bootstrap-Finish was accepted since the data model was built (the accounts come from a bootstrap).
    bootstrapped: bool,
}

impl std::fmt::Debug for DataModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataModel")
            .field("objects", &self.objects.keys().collect::<Vec<_>>())
            .field("attributes", &self.attributes)
            .field("pending", &self.fx)
            .field("multi_format", &self.multi_format)
            .field("factory_config", &self.factory.is_some())
            .field("bootstrapped", &self.bootstrapped)
            .finish()
    }
}

impl Default for DataModel {
    fn default() -> DataModel {
        DataModel::new()
    }
}

impl Models for DataModel {
    fn object(&self, id: u16) -> Option<&ObjectModel> {
        self.objects.get(&id).map(|h| h.model())
    }
}

/// Whether DM&SE, Registration and Information Reporting may see this object (not Security, not OSCORE).
pub fn is_dm_visible(object_id: u16) -> bool {
    object_id != SECURITY && object_id != OSCORE
}

impl DataModel {
    /// An empty data model (no objects).
    pub fn new() -> DataModel {
        DataModel {
            objects: BTreeMap::new(),
            attributes: BTreeMap::new(),
            fx: Effects::new(),
            multi_format: ContentFormat::SenmlCbor,
            bs_snapshot: None,
            factory: None,
            bootstrapped: false,
        }
    }

    /// Adds an object (replacing and returning one with the same id).
    pub fn add_object(&mut self, handler: impl ObjectHandler) -> Option<Box<dyn ObjectHandler>> {
        let id = handler.model().id;
        self.objects.insert(id, Box::new(handler))
    }

    /// Builder form of [`DataModel::add_object`].
    pub fn with(mut self, handler: impl ObjectHandler) -> DataModel {
        self.add_object(handler);
        self
    }

    /// Removes an object type altogether.
    pub fn remove_object(&mut self, object_id: u16) -> Option<Box<dyn ObjectHandler>> {
        self.objects.remove(&object_id)
    }

    /// The ids of all objects, ascending (Security and OSCORE included).
    pub fn object_ids(&self) -> Vec<u16> {
        self.objects.keys().copied().collect()
    }

    /// Whether the object is present.
    pub fn has_object(&self, object_id: u16) -> bool {
        self.objects.contains_key(&object_id)
    }

    /// The handler of an object.
    pub fn handler(&self, object_id: u16) -> Option<&dyn ObjectHandler> {
        self.objects.get(&object_id).map(|b| b.as_ref())
    }

    /// An object as its concrete type (e.g. `dm.object::<FirmwareUpdate>(5)`).
    pub fn object<T: ObjectHandler>(&self, object_id: u16) -> Option<&T> {
        self.objects.get(&object_id)?.as_ref().as_any().downcast_ref::<T>()
    }

    /// Runs `f` on an object as its concrete type with the data model's effect sink, so that what it changes
    /// reaches [`DataModel::take_changes`] and [`DataModel::take_actions`]. `None` when the object is missing or
    /// of another type.
    pub fn with_object<T: ObjectHandler, R>(
        &mut self,
        object_id: u16,
        f: impl FnOnce(&mut T, &mut Effects) -> R,
    ) -> Option<R> {
        let obj = self
            .objects
            .get_mut(&object_id)?
            .as_mut()
            .as_any_mut()
            .downcast_mut::<T>()?;
        Some(f(obj, &mut self.fx))
    }

    /// The format of multi-value Read responses without Accept (and of Bootstrap-Read).
    pub fn multi_value_format(&self) -> ContentFormat {
        self.multi_format
    }

    /// Sets the format of multi-value Read responses without Accept: SenML CBOR (default) or SenML JSON for
    /// 1.1 servers, TLV for 1.0 servers. Single-value formats (text, opaque, CBOR) and link format are refused.
    pub fn set_multi_value_format(&mut self, format: ContentFormat) -> Result<(), DmError> {
        if format.is_single_value() || format == ContentFormat::Link {
            return Err(DmError::bad_request(format!("{format} cannot carry several values")));
        }
        self.multi_format = format;
        Ok(())
    }

    /// Drains the recorded changes (oldest first, without duplicates).
    pub fn take_changes(&mut self) -> Vec<Change> {
        self.fx.take_changes()
    }

    /// Drains the actions for the driver (oldest first).
    pub fn take_actions(&mut self) -> Vec<ClientAction> {
        self.fx.take_actions()
    }

    /// The pending changes and actions, without draining them.
    pub fn pending(&self) -> &Effects {
        &self.fx
    }

    // ---- internal lookups ------------------------------------------------------------------------------

    /// The handler of a DM&SE-visible object, else 4.04.
    fn visible(&self, oid: u16) -> Result<&dyn ObjectHandler, DmError> {
        if !is_dm_visible(oid) {
            return Err(DmError::not_found(format!("/{oid} is not accessible")));
        }
        self.existing(oid)
    }

    /// The handler of an object, else 4.04.
    fn existing(&self, oid: u16) -> Result<&dyn ObjectHandler, DmError> {
        self.objects
            .get(&oid)
            .map(|b| b.as_ref())
            .ok_or_else(|| DmError::not_found(format!("object {oid} is not supported")))
    }

    /// The instance exists, else 4.04.
    fn require_instance(&self, h: &dyn ObjectHandler, oid: u16, iid: u16) -> Result<(), DmError> {
        if h.has_instance(iid) {
            Ok(())
        } else {
            Err(DmError::not_found(format!(
                "{} does not exist",
                Path::instance(oid, iid)
            )))
        }
    }

    /// The model of resource `rid`, else 4.04.
    fn resource_model(h: &dyn ObjectHandler, oid: u16, iid: u16, rid: u16) -> Result<&ResourceModel, DmError> {
        h.model()
            .resource(rid)
            .ok_or_else(|| DmError::not_found(format!("{} is not defined", Path::resource(oid, iid, rid))))
    }

    /// The resource is present in the instance, else 4.04.
    fn require_resource(h: &dyn ObjectHandler, oid: u16, iid: u16, rid: u16) -> Result<(), DmError> {
        if h.resources(iid).contains(&rid) {
            Ok(())
        } else {
            Err(DmError::not_found(format!(
                "{} is not present",
                Path::resource(oid, iid, rid)
            )))
        }
    }

    /// The instance with every present resource `keep` accepts (executables have no value and are skipped).
    fn instance_node(&self, h: &dyn ObjectHandler, iid: u16, keep: impl Fn(&ResourceModel) -> bool) -> InstanceNode {
        let model = h.model();
        let mut node = InstanceNode {
            id: iid,
            resources: BTreeMap::new(),
        };
        for rid in h.resources(iid) {
            let Some(m) = model.resource(rid) else { continue };
            if m.operations.execute || !keep(m) {
                continue;
            }
            if let Ok(value) = h.read(iid, rid) {
                node.resources.insert(rid, ResourceNode { id: rid, value });
            }
        }
        node
    }

    /// An instance with all its value resources, ignoring R flags and access rights (local use, bootstrap).
    pub fn instance_values(&self, object_id: u16, instance_id: u16) -> Option<InstanceNode> {
        let h = self.handler(object_id)?;
        h.has_instance(instance_id)
            .then(|| self.instance_node(h, instance_id, |_| true))
    }

    // ---- application access -------------------------------------------------------------------------

    /// Reads the node at `path` locally: no access control, all value resources whatever their R flag, and
    /// Security/OSCORE included. For the application and the driver (e.g. the Send operation).
    pub fn local_read(&self, path: &Path) -> Result<Node, DmError> {
        let ids = path.ids();
        let (Some(&oid), rest) = (ids.first(), ids.get(1..).unwrap_or_default()) else {
            return Err(DmError::bad_request("a local read needs at least an object id"));
        };
        let h = self.existing(oid)?;
        match *rest {
            [] => Ok(Node::Object(ObjectNode {
                id: oid,
                instances: h
                    .instances()
                    .into_iter()
                    .map(|iid| (iid, self.instance_node(h, iid, |_| true)))
                    .collect(),
            })),
            [iid] => {
                self.require_instance(h, oid, iid)?;
                Ok(Node::Instance(self.instance_node(h, iid, |_| true)))
            }
            [iid, rid] => {
                self.require_instance(h, oid, iid)?;
                Ok(Node::Resource(ResourceNode {
                    id: rid,
                    value: h.read(iid, rid)?,
                }))
            }
            [iid, rid, riid] => {
                self.require_instance(h, oid, iid)?;
                match h.read(iid, rid)? {
                    ResourceValue::Multiple(mut m) => m
                        .remove(&riid)
                        .map(|value| Node::ResourceInstance { id: riid, value })
                        .ok_or_else(|| DmError::not_found(format!("{path} is not present"))),
                    ResourceValue::Single(_) => Err(DmError::bad_request(format!("{path}: the resource is single"))),
                }
            }
            _ => Err(DmError::bad_request(format!("{path} is too long"))),
        }
    }

    /// Sets a resource or resource-instance value locally (the application's own update, e.g. a new sensor
    /// reading): no access control and no R/W check, but the value is converted to the model's type, the
    /// object's own checks apply, and the change is recorded for observers.
    pub fn set_value(&mut self, path: &Path, value: Value) -> Result<(), DmError> {
        let (oid, iid, rid) = match *path.ids() {
            [o, i, r] | [o, i, r, _] => (o, i, r),
            _ => {
                return Err(DmError::bad_request(format!(
                    "{path} is not a resource or resource-instance path"
                )))
            }
        };
        let h = self.existing(oid)?;
        self.require_instance(h, oid, iid)?;
        let m = Self::resource_model(h, oid, iid, rid)?;
        let typed = value
            .convert(m.data_type)
            .map_err(|e| DmError::bad_request(format!("{path}: {e}")))?;
        let full = match (path.resource_instance_id(), m.multiple) {
            (None, false) => ResourceValue::Single(typed),
            (Some(ri), true) => {
                let mut cur = match h.read(iid, rid) {
                    Ok(ResourceValue::Multiple(m)) => m,
                    _ => BTreeMap::new(),
                };
                cur.insert(ri, typed);
                ResourceValue::Multiple(cur)
            }
            (None, true) => return Err(DmError::bad_request(format!("{path} is a multiple resource"))),
            (Some(_), false) => return Err(DmError::bad_request(format!("{path}: the resource is single"))),
        };
        h.check_write(iid, rid, &full)?;
        let fx = &mut self.fx;
        let h = self
            .objects
            .get_mut(&oid)
            .ok_or_else(|| DmError::internal("object vanished"))?;
        h.write(iid, rid, full, fx)?;
        fx.changed(*path);
        Ok(())
    }

    // ---- attributes -----------------------------------------------------------------------------------

    /// The attributes server `ssid` assigned exactly at `path` (empty when none).
    pub fn attributes(&self, ssid: u16, path: &Path) -> Attributes {
        self.attributes
            .get(&ssid)
            .and_then(|m| m.get(path))
            .copied()
            .unwrap_or_default()
    }

    /// The attributes in effect for server `ssid` at `path` (digest §2.2): the server's Default Minimum and
    /// Maximum Period (`/1/x/2`, `/1/x/3`), overridden by what is assigned at object, instance, resource and
    /// resource-instance level. The observe engine evaluates notifications with this.
    pub fn effective_attributes(&self, ssid: u16, path: &Path) -> Attributes {
        let defaults = self
            .server_instances()
            .into_iter()
            .find(|(_, s)| s.ssid == ssid)
            .map(|(_, s)| {
                Attributes::server_defaults(
                    s.default_pmin_s.and_then(|v| u32::try_from(v).ok()),
                    s.default_pmax_s.and_then(|v| u32::try_from(v).ok()),
                )
            })
            .unwrap_or_default();
        let mut levels = vec![defaults];
        levels.extend(self.assigned_levels(ssid, path));
        let refs: Vec<&Attributes> = levels.iter().collect();
        attributes::effective(&refs)
    }

    /// The assigned attributes at each level from the object down to `path` (object first).
    fn assigned_levels(&self, ssid: u16, path: &Path) -> Vec<Attributes> {
        (1..=path.len())
            .filter_map(|n| Path::from_ids(path.ids().get(..n)?).ok())
            .map(|p| self.attributes(ssid, &p))
            .collect()
    }

    /// Forgets the attributes at and below `path`, for every server.
    fn purge_attributes(&mut self, path: &Path) {
        for m in self.attributes.values_mut() {
            m.retain(|p, _| !path.starts(p));
        }
        self.attributes.retain(|_, m| !m.is_empty());
    }

    // ---- registration ---------------------------------------------------------------------------------

    /// The object list of a Register or Update (digest §4.1): every object except Security (0) and OSCORE (21),
    /// ascending, with its instances and its version (written as `ver` only when not the default).
    pub fn registration_links(&self) -> RegistrationLinks {
        RegistrationLinks {
            alternate_path: None,
            content_formats: Vec::new(),
            objects: self
                .objects
                .iter()
                .filter(|(oid, _)| is_dm_visible(**oid))
                .map(|(oid, h)| ObjectLink {
                    object_id: *oid,
                    version: Some(h.model().version),
                    instances: h.instances(),
                })
                .collect(),
        }
    }

    /// The Register/Update payload (link format): `</1/0>,</3/0>,</3303>;ver=1.1,</3303/0>,...`.
    pub fn registration_payload(&self) -> String {
        link::write_registration(&self.registration_links())
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;
    use crate::object::ChangeKind;
    use crate::objects::firmware::{FirmwareState, FirmwareUpdate};
    use crate::objects::temperature::TemperatureSensor;

    #[test]
    fn registration_payload_excludes_security_and_shows_versions() {
        let dm = single_server();
        // Security (0) is present but never listed; 3303 is v1.1 (default 1.0); 4 is v1.2 (its default).
        assert!(dm.has_object(0));
        assert_eq!(
            dm.registration_payload(),
            "</1/0>,</2>,</3/0>,</4/0>,</5/0>,</6/0>,</7/0>,</3303>;ver=1.1,</3303/0>,</3442/0>"
        );
        let links = dm.registration_links();
        assert!(links.object(0).is_none());
        assert_eq!(links.object(3303).map(|o| o.instances.clone()), Some(vec![0]));
    }

    #[test]
    fn registration_payload_of_the_digest_example() {
        // Digest §4.1: </1/0>,</3/0>,</4/0>,</5>,</3303>;ver=1.1,</3303/0>,</3303/1>
        let dm = DataModel::new()
            .with(
                crate::objects::server::server_object()
                    .with_instance(crate::objects::server::ServerInstance::new(1, 300).to_node(0)),
            )
            .with(crate::objects::security::security_object())
            .with(crate::objects::device::device_object(&Default::default()))
            .with(crate::objects::connectivity::connectivity_monitoring_object(
                &Default::default(),
            ))
            .with(crate::object::SimpleObject::new(crate::objects::builtin_model(5, None)))
            .with(crate::objects::temperature::temperature_object(&[(0, 1.0), (1, 2.0)]));
        assert_eq!(
            dm.registration_payload(),
            "</1/0>,</3/0>,</4/0>,</5>,</3303>;ver=1.1,</3303/0>,</3303/1>"
        );
    }

    #[test]
    fn set_value_records_changes_and_checks_types() {
        let mut dm = single_server();
        dm.set_value(&Path::resource(3303, 0, 5700), Value::Integer(21))
            .unwrap();
        assert_eq!(
            dm.local_read(&Path::resource(3303, 0, 5700)).unwrap(),
            Node::Resource(ResourceNode::single(5700, Value::Float(21.0)))
        );
        dm.set_value(&Path::resource_instance(3, 0, 7, 3), Value::Integer(4200))
            .unwrap();
        let changes = dm.take_changes();
        assert_eq!(
            changes,
            vec![
                Change::value(Path::resource(3303, 0, 5700)),
                Change::value(Path::resource_instance(3, 0, 7, 3))
            ]
        );
        assert_eq!(
            dm.set_value(&Path::resource(3303, 0, 5700), Value::String("x".into()))
                .unwrap_err()
                .code(),
            (4, 0)
        );
        assert_eq!(
            dm.set_value(&Path::resource(3303, 9, 5700), Value::Float(1.0))
                .unwrap_err()
                .code(),
            (4, 4)
        );
        assert_eq!(
            dm.set_value(&Path::instance(3303, 0), Value::Float(1.0))
                .unwrap_err()
                .code(),
            (4, 0)
        );
        assert_eq!(
            dm.set_value(&Path::resource(3, 0, 7), Value::Integer(1))
                .unwrap_err()
                .code(),
            (4, 0)
        );
        // Security is reachable locally.
        assert!(matches!(dm.local_read(&Path::instance(0, 0)), Ok(Node::Instance(_))));
        assert!(dm.take_changes().is_empty());
    }

    #[test]
    fn typed_object_access() {
        let mut dm = single_server();
        assert_eq!(
            dm.object::<FirmwareUpdate>(5).map(|f| f.state()),
            Some(FirmwareState::Idle)
        );
        assert!(dm.object::<FirmwareUpdate>(3).is_none(), "wrong type");
        dm.with_object::<TemperatureSensor, _>(3303, |t, fx| t.set_value(0, 30.0, None, fx))
            .unwrap()
            .unwrap();
        let ch = dm.take_changes();
        assert!(ch
            .iter()
            .any(|c| c.path == Path::resource(3303, 0, 5602) && c.kind == ChangeKind::Value));
    }

    #[test]
    fn multi_value_format_setting() {
        let mut dm = DataModel::new();
        assert_eq!(dm.multi_value_format(), ContentFormat::SenmlCbor);
        dm.set_multi_value_format(ContentFormat::Tlv).unwrap();
        assert_eq!(dm.multi_value_format(), ContentFormat::Tlv);
        assert_eq!(
            dm.set_multi_value_format(ContentFormat::Text).unwrap_err().code(),
            (4, 0)
        );
        assert_eq!(
            dm.set_multi_value_format(ContentFormat::Link).unwrap_err().code(),
            (4, 0)
        );
    }
}
