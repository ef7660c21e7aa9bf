//! The client's object framework: how objects are implemented and plugged into the data model.
//!
//! # Design
//!
//! Everything here is **sans-IO and synchronous**. Objects never see CoAP, sockets or clocks; the dispatcher
//! ([`crate::dm::DataModel`]) is called with an already-parsed request (requesting server's SSID, path, content
//! format, payload) and returns an LwM2M-level result ([`DmError`] carries the CoAP code as `(class, detail)`).
//!
//! **Layers.**
//! 1. [`ObjectHandler`] — the trait one object type (all its instances) implements. It works on *typed,
//!    already-checked* data: resource values whose type matches the model, resource ids the model knows. It
//!    never checks access rights, R/W/E flags or formats; the dispatcher did that. Handlers only enforce their
//!    own semantics (value ranges, state machines) in [`ObjectHandler::check_write`] and the mutating calls.
//! 2. [`SimpleObject`] — a ready implementation backed by an [`InstanceStore`] (the model plus one
//!    [`InstanceNode`] per instance). Object-specific behaviour is added with a [`Behavior`] (validation,
//!    write side effects, Execute, creation defaults), or just an execute closure ([`SimpleObject::with_exec`]).
//!    Most standard objects ([`crate::objects`]) are a `SimpleObject<SomeBehavior>`.
//! 3. [`crate::dm::DataModel`] — holds the objects by id, derives the server accounts from Objects 0 and 1,
//!    stores Write-Attributes values per server and path, applies Access Control (Object 2), decodes and
//!    encodes payloads with `lwm2m_core::format`, and exposes one entry point per DM&SE and Bootstrap
//!    operation.
//!
//! **Whole-resource writes.** A handler receives every write as the complete new value of one resource
//! ([`ObjectHandler::write`]): a Write of one resource instance (`/o/i/r/ri`, DSE-001) or a Partial Update of a
//! multiple resource is merged by the dispatcher with the current instances first. So a handler has a single
//! write path, and [`ObjectHandler::check_write`] sees the final value.
//!
//! **Atomicity.** Before changing anything, the dispatcher checks every target of a request (existence,
//! access, flags, types) and calls [`ObjectHandler::check_write`] for every value; only then does it write.
//! A handler must therefore reject in `check_write` whatever it can; a failure inside `write` after a
//! successful `check_write` can leave a multi-resource write partly applied (reported as 5.00).
//!
//! **Effects.** Mutating calls get an [`Effects`] sink. The dispatcher records the paths a request wrote,
//! created or deleted; a handler adds the *side effects* (e.g. Firmware Update State `/5/0/3` changing on a
//! Package URI write) and the [`ClientAction`]s the driver must carry out (Reboot, Disable, a firmware
//! download...). [`crate::dm::DataModel::take_changes`] and [`crate::dm::DataModel::take_actions`] drain them:
//! the observe engine uses the changed paths, the registration engine sends an Update when instances were
//! created or deleted, the driver performs the actions (after sending the response).
//!
//! **Application access.** The application changes values through the data model too
//! ([`crate::dm::DataModel::set_value`], [`crate::dm::DataModel::with_object`]) so that observers see the
//! changes; handlers are reachable as their concrete type through [`AsAny`].

mod args;
mod error;
mod simple;

use std::any::Any;

use lwm2m_core::{InstanceNode, ObjectModel, Path, ResourceValue};

pub use args::{parse_exec_args, write_exec_args, ExecArg};
pub use error::DmError;
pub use simple::{Behavior, ExecFn, ExecHook, InstanceStore, SimpleObject};

/// Which Write a request is (digest §5.2): PUT replaces, POST updates only what the payload carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteMode {
    /// Write-Replace (PUT).
    Replace,
    /// Write-Partial-Update (POST on an instance, or on a multiple resource).
    PartialUpdate,
}

/// What changed in the data model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeKind {
    /// The value at the path (a resource, resource instance, or anything below an instance) changed.
    Value,
    /// An object instance was created (the registration's object list changed).
    Created,
    /// An object instance was deleted (the registration's object list changed).
    Deleted,
}

/// One recorded change: a path and what happened to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Change {
    /// The resource path for value changes, the instance path for creations and deletions.
    pub path: Path,
    /// What happened.
    pub kind: ChangeKind,
}

impl Change {
    /// A value change at `path`.
    pub fn value(path: Path) -> Change {
        Change {
            path,
            kind: ChangeKind::Value,
        }
    }

    /// True for creations and deletions of instances (the registration engine then sends an Update).
    pub fn is_structural(&self) -> bool {
        self.kind != ChangeKind::Value
    }
}

/// Something the driver (the IO side) must do because of an operation. The driver performs it after sending
/// the response (digest §5.2: respond before Reboot or Update).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientAction {
    /// `/1/x/4` Disable was executed: De-register from server `ssid` and stay away for its Disable Timeout.
    Disable {
        /// The server that executed it.
        ssid: u16,
    },
    /// `/1/x/8` Registration Update Trigger: send an Update to server `ssid`.
    RegistrationUpdateTrigger {
        /// The server to update.
        ssid: u16,
    },
    /// `/1/x/9` Bootstrap-Request Trigger, executed by server `ssid`: start a Client Initiated Bootstrap.
    BootstrapRequestTrigger {
        /// The server that executed it.
        ssid: u16,
    },
    /// `/3/0/4` Reboot.
    Reboot,
    /// `/3/0/5` Factory Reset.
    FactoryReset,
    /// `/5/0/1` Package URI was written: download the firmware from `uri` (pull), then report the outcome with
    /// [`crate::objects::firmware::FirmwareUpdate::download_finished`].
    FirmwareDownload {
        /// The Package URI.
        uri: String,
    },
    /// A firmware package was written to `/5/0/0` (push) and waits for verification (only when automatic
    /// verification is off); report with [`crate::objects::firmware::FirmwareUpdate::download_finished`].
    FirmwareVerify {
        /// The package size in bytes.
        size: usize,
    },
    /// `/5/0/2` Update: install the downloaded firmware, then report with
    /// [`crate::objects::firmware::FirmwareUpdate::update_finished`].
    FirmwareUpdate,
    /// The LwM2M Server account `ssid` was removed (Bootstrap-Delete of its Security instance, "unbootstrapping"):
    /// drop its observations; the driver MAY De-register from it.
    ServerRemoved {
        /// The removed server.
        ssid: u16,
    },
}

/// The sink for what an operation changed and which actions it asks the driver for.
///
/// A change or action equal to one already pending is not recorded twice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    changes: Vec<Change>,
    actions: Vec<ClientAction>,
}

impl Effects {
    /// An empty sink.
    pub fn new() -> Effects {
        Effects::default()
    }

    /// Records a change.
    pub fn record(&mut self, change: Change) {
        if !self.changes.contains(&change) {
            self.changes.push(change);
        }
    }

    /// Records a value change at `path`.
    pub fn changed(&mut self, path: Path) {
        self.record(Change::value(path));
    }

    /// Records the creation of the instance at `path`.
    pub fn created(&mut self, path: Path) {
        self.record(Change {
            path,
            kind: ChangeKind::Created,
        });
    }

    /// Records the deletion of the instance at `path`.
    pub fn deleted(&mut self, path: Path) {
        self.record(Change {
            path,
            kind: ChangeKind::Deleted,
        });
    }

    /// Asks the driver for an action.
    pub fn action(&mut self, action: ClientAction) {
        if !self.actions.contains(&action) {
            self.actions.push(action);
        }
    }

    /// The pending changes, oldest first.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// The pending actions, oldest first.
    pub fn actions(&self) -> &[ClientAction] {
        &self.actions
    }

    /// Drains the pending changes.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// Drains the pending actions.
    pub fn take_actions(&mut self) -> Vec<ClientAction> {
        std::mem::take(&mut self.actions)
    }

    /// Moves everything pending in `other` into `self`.
    pub fn absorb(&mut self, other: Effects) {
        for c in other.changes {
            self.record(c);
        }
        for a in other.actions {
            self.action(a);
        }
    }
}

/// Access to a handler as its concrete type (blanket-implemented for every `'static` type).
pub trait AsAny: Any {
    /// `self` as `&dyn Any`, for downcasting.
    fn as_any(&self) -> &dyn Any;
    /// `self` as `&mut dyn Any`, for downcasting.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// One object type with all its instances. See the [module documentation](self) for the contract: the
/// dispatcher has already checked paths, access rights, operation flags and value types before calling.
pub trait ObjectHandler: AsAny + Send {
    /// The object model this implementation follows (id, version, resources). Reads, writes and Discover
    /// output follow it; the registration payload announces its version.
    fn model(&self) -> &ObjectModel;

    /// The existing instance ids, ascending.
    fn instances(&self) -> Vec<u16>;

    /// Whether instance `iid` exists.
    fn has_instance(&self, iid: u16) -> bool {
        self.instances().contains(&iid)
    }

    /// The resources present in instance `iid`, ascending: resources that have a value and the executable
    /// resources this implementation supports. Discover lists them; Read reads the readable ones.
    fn resources(&self, iid: u16) -> Vec<u16>;

    /// The current value of a resource (for a multiple resource all its instances).
    /// [`DmError::NotFound`] when the instance or the resource is absent.
    fn read(&self, iid: u16, rid: u16) -> Result<ResourceValue, DmError>;

    /// Validates a value before any write of the request is applied. The default accepts everything.
    fn check_write(&self, iid: u16, rid: u16, value: &ResourceValue) -> Result<(), DmError> {
        let _ = (iid, rid, value);
        Ok(())
    }

    /// Sets the complete value of a resource (creating it when absent). The instance exists.
    fn write(&mut self, iid: u16, rid: u16, value: ResourceValue, fx: &mut Effects) -> Result<(), DmError>;

    /// Removes an optional resource (Write-Replace of an instance without it). The default refuses.
    fn remove_resource(&mut self, iid: u16, rid: u16, fx: &mut Effects) -> Result<(), DmError> {
        let _ = fx;
        Err(DmError::method_not_allowed(format!(
            "resource {rid} of /{}/{iid} cannot be removed",
            self.model().id
        )))
    }

    /// Executes a resource. The default refuses (4.05).
    fn execute(&mut self, iid: u16, rid: u16, args: &[ExecArg], fx: &mut Effects) -> Result<(), DmError> {
        let _ = (args, fx);
        Err(DmError::method_not_allowed(format!(
            "/{}/{iid}/{rid} cannot be executed",
            self.model().id
        )))
    }

    /// Creates instance `instance.id` with the given (typed, model-checked) resources. The id is free. The
    /// default refuses (4.05).
    fn create(&mut self, instance: InstanceNode, fx: &mut Effects) -> Result<(), DmError> {
        let _ = fx;
        Err(DmError::method_not_allowed(format!(
            "instances of object {} cannot be created (asked for {})",
            self.model().id,
            instance.id
        )))
    }

    /// Deletes instance `iid` (it exists). The default refuses (4.05).
    fn delete(&mut self, iid: u16, fx: &mut Effects) -> Result<(), DmError> {
        let _ = fx;
        Err(DmError::method_not_allowed(format!(
            "/{}/{iid} cannot be deleted",
            self.model().id
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effects_deduplicate_and_drain() {
        let mut fx = Effects::new();
        fx.changed(Path::resource(3, 0, 9));
        fx.changed(Path::resource(3, 0, 9));
        fx.created(Path::instance(3303, 1));
        fx.action(ClientAction::Reboot);
        fx.action(ClientAction::Reboot);
        assert_eq!(fx.changes().len(), 2);
        assert!(!fx.changes()[0].is_structural());
        assert!(fx.changes()[1].is_structural());
        assert_eq!(fx.take_actions(), vec![ClientAction::Reboot]);
        assert!(fx.actions().is_empty());
        let mut other = Effects::new();
        other.deleted(Path::instance(3303, 1));
        other.changed(Path::resource(3, 0, 9));
        fx.absorb(other);
        assert_eq!(fx.take_changes().len(), 3);
        assert!(fx.changes().is_empty());
    }
}
