//! [`SimpleObject`]: a data-backed [`ObjectHandler`] built on an [`InstanceStore`] plus a [`Behavior`].

use std::collections::{BTreeMap, BTreeSet};

use lwm2m_core::{DataType, InstanceNode, ObjectModel, Path, ResourceNode, ResourceValue, Value};

use super::{DmError, Effects, ExecArg, ObjectHandler};

/// The data of one object type: its model and one [`InstanceNode`] per instance, plus the executable
/// resources the object supports and default values for new instances.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceStore {
    model: ObjectModel,
    instances: BTreeMap<u16, InstanceNode>,
    executables: BTreeSet<u16>,
    defaults: BTreeMap<u16, ResourceValue>,
    fixed: bool,
}

impl InstanceStore {
    /// An empty store. The mandatory executable resources of the model are supported; add optional ones
    /// with [`InstanceStore::with_executables`].
    pub fn new(model: ObjectModel) -> InstanceStore {
        let executables = model
            .resources
            .values()
            .filter(|r| r.operations.execute && r.mandatory)
            .map(|r| r.id)
            .collect();
        InstanceStore {
            model,
            instances: BTreeMap::new(),
            executables,
            defaults: BTreeMap::new(),
            fixed: false,
        }
    }

    /// Makes the set of instances fixed: Create and Delete (DM&SE and bootstrap) are refused with 4.05.
    /// For objects describing the device itself (Device, Firmware Update, Location, ...).
    pub fn with_fixed_instances(mut self) -> InstanceStore {
        self.fixed = true;
        self
    }

    /// Whether the set of instances is fixed.
    pub fn is_fixed(&self) -> bool {
        self.fixed
    }

    /// Declares optional executable resources as supported (ids that are not executable in the model are
    /// ignored).
    pub fn with_executables(mut self, rids: &[u16]) -> InstanceStore {
        for &rid in rids {
            if self.model.resource(rid).is_some_and(|r| r.operations.execute) {
                self.executables.insert(rid);
            }
        }
        self
    }

    /// A value every new instance gets when its creation payload does not carry the (single) resource.
    pub fn with_default(mut self, rid: u16, value: Value) -> InstanceStore {
        self.defaults.insert(rid, ResourceValue::Single(value));
        self
    }

    /// Adds (or replaces) an instance.
    pub fn with_instance(mut self, instance: InstanceNode) -> InstanceStore {
        self.insert(instance);
        self
    }

    /// The object model.
    pub fn model(&self) -> &ObjectModel {
        &self.model
    }

    /// The object id.
    pub fn object_id(&self) -> u16 {
        self.model.id
    }

    /// The instance ids, ascending.
    pub fn ids(&self) -> Vec<u16> {
        self.instances.keys().copied().collect()
    }

    /// Whether instance `iid` exists.
    pub fn contains(&self, iid: u16) -> bool {
        self.instances.contains_key(&iid)
    }

    /// One instance.
    pub fn instance(&self, iid: u16) -> Option<&InstanceNode> {
        self.instances.get(&iid)
    }

    /// One instance, mutable. Changes made here are not recorded; record them in an [`Effects`].
    pub fn instance_mut(&mut self, iid: u16) -> Option<&mut InstanceNode> {
        self.instances.get_mut(&iid)
    }

    /// All instances, by id.
    pub fn instances(&self) -> impl Iterator<Item = &InstanceNode> {
        self.instances.values()
    }

    /// Adds or replaces an instance; returns the previous one.
    pub fn insert(&mut self, instance: InstanceNode) -> Option<InstanceNode> {
        self.instances.insert(instance.id, instance)
    }

    /// Removes an instance.
    pub fn remove(&mut self, iid: u16) -> Option<InstanceNode> {
        self.instances.remove(&iid)
    }

    /// Whether executable resource `rid` is supported.
    pub fn is_executable(&self, rid: u16) -> bool {
        self.executables.contains(&rid)
    }

    /// `instance` completed with the default values for the resources it lacks.
    pub fn with_defaults_applied(&self, mut instance: InstanceNode) -> InstanceNode {
        for (rid, v) in &self.defaults {
            instance.resources.entry(*rid).or_insert_with(|| ResourceNode {
                id: *rid,
                value: v.clone(),
            });
        }
        instance
    }

    /// The resource content, if present.
    pub fn get(&self, iid: u16, rid: u16) -> Option<&ResourceValue> {
        self.instances.get(&iid)?.resources.get(&rid).map(|r| &r.value)
    }

    /// The value of a single resource, if present.
    pub fn value(&self, iid: u16, rid: u16) -> Option<&Value> {
        match self.get(iid, rid)? {
            ResourceValue::Single(v) => Some(v),
            ResourceValue::Multiple(_) => None,
        }
    }

    /// A single Integer, Unsigned Integer or Time resource as `i64` (when it fits).
    pub fn int(&self, iid: u16, rid: u16) -> Option<i64> {
        match self.value(iid, rid)? {
            Value::Integer(v) | Value::Time(v) => Some(*v),
            Value::UnsignedInteger(v) => i64::try_from(*v).ok(),
            _ => None,
        }
    }

    /// A single Integer, Unsigned Integer or Time resource as `u64` (when not negative).
    pub fn uint(&self, iid: u16, rid: u16) -> Option<u64> {
        match self.value(iid, rid)? {
            Value::Integer(v) | Value::Time(v) => u64::try_from(*v).ok(),
            Value::UnsignedInteger(v) => Some(*v),
            _ => None,
        }
    }

    /// A single numeric resource as `f64`.
    pub fn float(&self, iid: u16, rid: u16) -> Option<f64> {
        self.value(iid, rid)?.as_f64()
    }

    /// A single Boolean resource.
    pub fn boolean(&self, iid: u16, rid: u16) -> Option<bool> {
        match self.value(iid, rid)? {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// A single String or Corelnk resource.
    pub fn string(&self, iid: u16, rid: u16) -> Option<&str> {
        match self.value(iid, rid)? {
            Value::String(s) | Value::Corelnk(s) => Some(s),
            _ => None,
        }
    }

    /// A single Opaque resource.
    pub fn opaque(&self, iid: u16, rid: u16) -> Option<&[u8]> {
        match self.value(iid, rid)? {
            Value::Opaque(b) => Some(b),
            _ => None,
        }
    }

    /// The resource, or [`DmError::NotFound`].
    pub fn read(&self, iid: u16, rid: u16) -> Result<ResourceValue, DmError> {
        let inst = self
            .instances
            .get(&iid)
            .ok_or_else(|| DmError::not_found(format!("{} does not exist", Path::instance(self.model.id, iid))))?;
        inst.resources
            .get(&rid)
            .map(|r| r.value.clone())
            .ok_or_else(|| DmError::not_found(format!("{} is not present", Path::resource(self.model.id, iid, rid))))
    }

    /// Stores a resource as given (no type conversion, no change record). Fails when the instance is missing.
    pub fn put(&mut self, iid: u16, rid: u16, value: ResourceValue) -> Result<(), DmError> {
        let oid = self.model.id;
        let inst = self
            .instances
            .get_mut(&iid)
            .ok_or_else(|| DmError::not_found(format!("{} does not exist", Path::instance(oid, iid))))?;
        inst.resources.insert(rid, ResourceNode { id: rid, value });
        Ok(())
    }

    /// Removes a resource (no change record); returns it.
    pub fn unset(&mut self, iid: u16, rid: u16) -> Option<ResourceNode> {
        self.instances.get_mut(&iid)?.resources.remove(&rid)
    }

    /// Sets a single resource to `value` converted to the model's type, recording a change in `fx` when the
    /// value differs. Used by behaviours and the application (no access or R/W checks).
    pub fn set(&mut self, iid: u16, rid: u16, value: Value, fx: &mut Effects) -> Result<(), DmError> {
        let value = self.typed(rid, value)?;
        self.set_resource(iid, rid, ResourceValue::Single(value), fx)
    }

    /// Sets a multiple resource to `values` (converted to the model's type), recording a change when it differs.
    pub fn set_multiple(
        &mut self,
        iid: u16,
        rid: u16,
        values: BTreeMap<u16, Value>,
        fx: &mut Effects,
    ) -> Result<(), DmError> {
        let mut typed = BTreeMap::new();
        for (ri, v) in values {
            typed.insert(ri, self.typed(rid, v)?);
        }
        self.set_resource(iid, rid, ResourceValue::Multiple(typed), fx)
    }

    fn typed(&self, rid: u16, value: Value) -> Result<Value, DmError> {
        match self.model.resource(rid) {
            Some(m) if m.data_type != DataType::None => value
                .convert(m.data_type)
                .map_err(|e| DmError::bad_request(format!("{}: {e}", Path::resource(self.model.id, 0, rid)))),
            Some(_) => Err(DmError::method_not_allowed(format!(
                "resource {rid} of object {} has no value (executable)",
                self.model.id
            ))),
            None => Ok(value),
        }
    }

    fn set_resource(&mut self, iid: u16, rid: u16, value: ResourceValue, fx: &mut Effects) -> Result<(), DmError> {
        if self.get(iid, rid) == Some(&value) {
            return Ok(());
        }
        self.put(iid, rid, value)?;
        fx.changed(Path::resource(self.model.id, iid, rid));
        Ok(())
    }
}

/// Object-specific behaviour of a [`SimpleObject`]. Every method has a data-only default working on the
/// store, so an implementation overrides only what it needs.
pub trait Behavior: Send + 'static {
    /// Reads a resource. Default: the stored value.
    fn read(&self, store: &InstanceStore, iid: u16, rid: u16) -> Result<ResourceValue, DmError> {
        store.read(iid, rid)
    }

    /// Validates a value before any write of the request is applied. Default: accept.
    fn check_write(&self, store: &InstanceStore, iid: u16, rid: u16, value: &ResourceValue) -> Result<(), DmError> {
        let _ = (store, iid, rid, value);
        Ok(())
    }

    /// Applies a write. Default: store the value.
    fn write(
        &mut self,
        store: &mut InstanceStore,
        iid: u16,
        rid: u16,
        value: ResourceValue,
        fx: &mut Effects,
    ) -> Result<(), DmError> {
        let _ = fx;
        store.put(iid, rid, value)
    }

    /// Removes an optional resource (Write-Replace of an instance). Default: mandatory resources are kept
    /// (4.05), optional ones removed.
    fn remove_resource(
        &mut self,
        store: &mut InstanceStore,
        iid: u16,
        rid: u16,
        fx: &mut Effects,
    ) -> Result<(), DmError> {
        let _ = fx;
        if store.model().resource(rid).is_some_and(|m| m.mandatory) {
            return Err(DmError::method_not_allowed(format!(
                "mandatory resource {} cannot be removed",
                Path::resource(store.object_id(), iid, rid)
            )));
        }
        store.unset(iid, rid);
        Ok(())
    }

    /// Executes a resource. Default: 4.05.
    fn execute(
        &mut self,
        store: &mut InstanceStore,
        iid: u16,
        rid: u16,
        args: &[ExecArg],
        fx: &mut Effects,
    ) -> Result<(), DmError> {
        let _ = (args, fx);
        Err(DmError::method_not_allowed(format!(
            "{} has no Execute implementation",
            Path::resource(store.object_id(), iid, rid)
        )))
    }

    /// Creates an instance. Default: the payload completed with the store's defaults.
    fn create(&mut self, store: &mut InstanceStore, instance: InstanceNode, fx: &mut Effects) -> Result<(), DmError> {
        let _ = fx;
        let instance = store.with_defaults_applied(instance);
        store.insert(instance);
        Ok(())
    }

    /// Deletes an instance. Default: remove it.
    fn delete(&mut self, store: &mut InstanceStore, iid: u16, fx: &mut Effects) -> Result<(), DmError> {
        let _ = fx;
        store.remove(iid);
        Ok(())
    }
}

/// No behaviour: a purely data-backed object.
impl Behavior for () {}

/// The closure type of an [`ExecHook`]: `(store, instance id, resource id, arguments, effects)`.
pub type ExecFn = Box<dyn FnMut(&mut InstanceStore, u16, u16, &[ExecArg], &mut Effects) -> Result<(), DmError> + Send>;

/// A [`Behavior`] that only adds Execute, through a closure.
pub struct ExecHook(pub ExecFn);

impl std::fmt::Debug for ExecHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExecHook(..)")
    }
}

impl Behavior for ExecHook {
    fn execute(
        &mut self,
        store: &mut InstanceStore,
        iid: u16,
        rid: u16,
        args: &[ExecArg],
        fx: &mut Effects,
    ) -> Result<(), DmError> {
        (self.0)(store, iid, rid, args, fx)
    }
}

/// A generic object: an [`InstanceStore`] plus a [`Behavior`] (`()` for plain data).
///
/// ```
/// use lwm2m_client::object::{ObjectHandler, SimpleObject};
/// use lwm2m_core::{InstanceNode, ModelRegistry, Models, ResourceNode, Value};
///
/// let model = ModelRegistry::builtin().object(3442).unwrap().clone();
/// let obj = SimpleObject::new(model)
///     .with_instance(InstanceNode::new(0, [ResourceNode::single(110, Value::String("hi".into()))]));
/// assert_eq!(obj.instances(), vec![0]);
/// ```
#[derive(Debug)]
pub struct SimpleObject<B: Behavior = ()> {
    store: InstanceStore,
    behavior: B,
}

impl SimpleObject<()> {
    /// A data-only object following `model`, without instances.
    pub fn new(model: ObjectModel) -> SimpleObject<()> {
        SimpleObject {
            store: InstanceStore::new(model),
            behavior: (),
        }
    }

    /// The same object with an Execute closure `(store, iid, rid, args, effects)`.
    pub fn with_exec<F>(self, f: F) -> SimpleObject<ExecHook>
    where
        F: FnMut(&mut InstanceStore, u16, u16, &[ExecArg], &mut Effects) -> Result<(), DmError> + Send + 'static,
    {
        SimpleObject {
            store: self.store,
            behavior: ExecHook(Box::new(f)),
        }
    }
}

impl<B: Behavior> SimpleObject<B> {
    /// An object from a store and a behaviour.
    pub fn with_behavior(store: InstanceStore, behavior: B) -> SimpleObject<B> {
        SimpleObject { store, behavior }
    }

    /// Adds (or replaces) an instance.
    pub fn with_instance(mut self, instance: InstanceNode) -> SimpleObject<B> {
        self.store.insert(instance);
        self
    }

    /// Declares optional executable resources as supported.
    pub fn with_executables(mut self, rids: &[u16]) -> SimpleObject<B> {
        self.store = self.store.with_executables(rids);
        self
    }

    /// Makes the set of instances fixed (see [`InstanceStore::with_fixed_instances`]).
    pub fn with_fixed_instances(mut self) -> SimpleObject<B> {
        self.store = self.store.with_fixed_instances();
        self
    }

    /// A default value for new instances.
    pub fn with_default(mut self, rid: u16, value: Value) -> SimpleObject<B> {
        self.store = self.store.with_default(rid, value);
        self
    }

    /// The data.
    pub fn store(&self) -> &InstanceStore {
        &self.store
    }

    /// The data, mutable (record changes yourself, or use [`InstanceStore::set`]).
    pub fn store_mut(&mut self) -> &mut InstanceStore {
        &mut self.store
    }

    /// The behaviour.
    pub fn behavior(&self) -> &B {
        &self.behavior
    }

    /// The data and the behaviour, both mutable.
    pub fn parts_mut(&mut self) -> (&mut InstanceStore, &mut B) {
        (&mut self.store, &mut self.behavior)
    }
}

impl<B: Behavior> ObjectHandler for SimpleObject<B> {
    fn model(&self) -> &ObjectModel {
        self.store.model()
    }

    fn instances(&self) -> Vec<u16> {
        self.store.ids()
    }

    fn has_instance(&self, iid: u16) -> bool {
        self.store.contains(iid)
    }

    fn resources(&self, iid: u16) -> Vec<u16> {
        let Some(inst) = self.store.instance(iid) else {
            return Vec::new();
        };
        let mut ids: BTreeSet<u16> = inst.resources.keys().copied().collect();
        ids.extend(self.store.executables.iter().copied());
        ids.into_iter().collect()
    }

    fn read(&self, iid: u16, rid: u16) -> Result<ResourceValue, DmError> {
        self.behavior.read(&self.store, iid, rid)
    }

    fn check_write(&self, iid: u16, rid: u16, value: &ResourceValue) -> Result<(), DmError> {
        self.behavior.check_write(&self.store, iid, rid, value)
    }

    fn write(&mut self, iid: u16, rid: u16, value: ResourceValue, fx: &mut Effects) -> Result<(), DmError> {
        self.behavior.write(&mut self.store, iid, rid, value, fx)
    }

    fn remove_resource(&mut self, iid: u16, rid: u16, fx: &mut Effects) -> Result<(), DmError> {
        self.behavior.remove_resource(&mut self.store, iid, rid, fx)
    }

    fn execute(&mut self, iid: u16, rid: u16, args: &[ExecArg], fx: &mut Effects) -> Result<(), DmError> {
        if !self.store.is_executable(rid) {
            return Err(DmError::method_not_allowed(format!(
                "{} is not supported for Execute",
                Path::resource(self.store.object_id(), iid, rid)
            )));
        }
        self.behavior.execute(&mut self.store, iid, rid, args, fx)
    }

    fn create(&mut self, instance: InstanceNode, fx: &mut Effects) -> Result<(), DmError> {
        if self.store.is_fixed() {
            return Err(DmError::method_not_allowed(format!(
                "instances of /{} are fixed",
                self.store.object_id()
            )));
        }
        if self.store.contains(instance.id) {
            return Err(DmError::bad_request(format!(
                "{} already exists",
                Path::instance(self.store.object_id(), instance.id)
            )));
        }
        self.behavior.create(&mut self.store, instance, fx)
    }

    fn delete(&mut self, iid: u16, fx: &mut Effects) -> Result<(), DmError> {
        if self.store.is_fixed() {
            return Err(DmError::method_not_allowed(format!(
                "{} cannot be deleted: the instances of this object are fixed",
                Path::instance(self.store.object_id(), iid)
            )));
        }
        self.behavior.delete(&mut self.store, iid, fx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lwm2m_core::{ModelRegistry, Models};

    fn test_model() -> ObjectModel {
        ModelRegistry::builtin().object(3442).expect("3442 built in").clone()
    }

    #[test]
    fn store_typed_access_and_set_records_changes() {
        let mut s = InstanceStore::new(test_model()).with_instance(InstanceNode::new(
            0,
            [
                ResourceNode::single(120, Value::Integer(-5)),
                ResourceNode::single(125, Value::UnsignedInteger(7)),
                ResourceNode::single(140, Value::Boolean(true)),
                ResourceNode::single(110, Value::String("x".into())),
                ResourceNode::single(150, Value::Opaque(vec![1])),
            ],
        ));
        assert_eq!(s.int(0, 120), Some(-5));
        assert_eq!(s.uint(0, 120), None);
        assert_eq!(s.uint(0, 125), Some(7));
        assert_eq!(s.boolean(0, 140), Some(true));
        assert_eq!(s.string(0, 110), Some("x"));
        assert_eq!(s.opaque(0, 150), Some(&[1u8][..]));
        assert_eq!(s.float(0, 120), Some(-5.0));
        let mut fx = Effects::new();
        // Integer 3 converted to the Float type of 130.
        s.set(0, 130, Value::Integer(3), &mut fx).unwrap();
        assert_eq!(s.value(0, 130), Some(&Value::Float(3.0)));
        assert_eq!(
            fx.take_changes(),
            vec![crate::object::Change::value(Path::resource(3442, 0, 130))]
        );
        // Same value again: no change recorded.
        s.set(0, 130, Value::Float(3.0), &mut fx).unwrap();
        assert!(fx.changes().is_empty());
        // Wrong type.
        assert_eq!(
            s.set(0, 140, Value::String("no".into()), &mut fx).unwrap_err().code(),
            (4, 0)
        );
        // Missing instance.
        assert_eq!(
            s.set(9, 140, Value::Boolean(false), &mut fx).unwrap_err().code(),
            (4, 4)
        );
        assert_eq!(s.read(0, 999).unwrap_err().code(), (4, 4));
    }

    #[test]
    fn simple_object_exec_and_resources() {
        let mut obj = SimpleObject::new(test_model())
            .with_executables(&[0, 110])
            .with_instance(InstanceNode::new(0, [ResourceNode::single(120, Value::Integer(1))]))
            .with_exec(|store, iid, rid, args, fx| {
                assert_eq!(rid, 0);
                store.set(iid, 120, Value::Integer(args.len() as i64), fx)
            });
        // 110 is not executable in the model, so it is not listed.
        assert_eq!(obj.resources(0), vec![0, 120]);
        let mut fx = Effects::new();
        obj.execute(0, 0, &[ExecArg::flag(1), ExecArg::flag(2)], &mut fx)
            .unwrap();
        assert_eq!(obj.read(0, 120).unwrap(), ResourceValue::Single(Value::Integer(2)));
        assert_eq!(obj.execute(0, 1, &[], &mut fx).unwrap_err().code(), (4, 5));
        assert_eq!(
            obj.create(InstanceNode::new(0, []), &mut fx).unwrap_err().code(),
            (4, 0),
            "an existing id"
        );
        obj.create(InstanceNode::new(3, []), &mut fx).unwrap();
        assert_eq!(obj.instances(), vec![0, 3]);
        obj.delete(3, &mut fx).unwrap();
        assert_eq!(obj.instances(), vec![0]);
    }

    #[test]
    fn defaults_and_removal() {
        let model = ModelRegistry::builtin().object(1).unwrap().clone();
        let mut obj = SimpleObject::new(model).with_default(6, Value::Boolean(true));
        let mut fx = Effects::new();
        obj.create(
            InstanceNode::new(0, [ResourceNode::single(0, Value::Integer(1))]),
            &mut fx,
        )
        .unwrap();
        assert_eq!(obj.store().boolean(0, 6), Some(true));
        // 6 is mandatory: cannot be removed; 2 is optional.
        assert_eq!(obj.remove_resource(0, 6, &mut fx).unwrap_err().code(), (4, 5));
        obj.write(0, 2, ResourceValue::Single(Value::Integer(5)), &mut fx)
            .unwrap();
        obj.remove_resource(0, 2, &mut fx).unwrap();
        assert!(obj.store().get(0, 2).is_none());
    }
}
