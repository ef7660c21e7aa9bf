//! A simulated IPSO Temperature sensor (Object 3303, v1.1). The application sets the value
//! ([`TemperatureSensor::set_value`]); Min/Max Measured Value (5601/5602) follow it; Reset Min and Max
//! Measured Values (5605) sets both to the current value.

use lwm2m_core::model::Version;
use lwm2m_core::{InstanceNode, ResourceNode, Value};

use super::{builtin_model, TEMPERATURE};
use crate::object::{Behavior, DmError, Effects, ExecArg, InstanceStore, SimpleObject};

/// Sensor Value.
pub const SENSOR_VALUE: u16 = 5700;
/// Min Measured Value.
pub const MIN_MEASURED: u16 = 5601;
/// Max Measured Value.
pub const MAX_MEASURED: u16 = 5602;
/// Min Range Value.
pub const MIN_RANGE: u16 = 5603;
/// Max Range Value.
pub const MAX_RANGE: u16 = 5604;
/// Reset Min and Max Measured Values.
pub const RESET_MIN_MAX: u16 = 5605;
/// Sensor Units.
pub const UNITS: u16 = 5701;
/// Timestamp (v1.1).
pub const TIMESTAMP: u16 = 5518;

/// Reset Min and Max.
#[derive(Debug, Clone, Copy, Default)]
pub struct TemperatureBehavior;

impl Behavior for TemperatureBehavior {
    fn execute(
        &mut self,
        store: &mut InstanceStore,
        iid: u16,
        rid: u16,
        _args: &[ExecArg],
        fx: &mut Effects,
    ) -> Result<(), DmError> {
        if rid != RESET_MIN_MAX {
            return Err(DmError::method_not_allowed(format!(
                "/3303/{iid}/{rid} is not executable"
            )));
        }
        let v = store.float(iid, SENSOR_VALUE).unwrap_or(0.0);
        store.set(iid, MIN_MEASURED, Value::Float(v), fx)?;
        store.set(iid, MAX_MEASURED, Value::Float(v), fx)
    }
}

/// The Temperature object type.
pub type TemperatureSensor = SimpleObject<TemperatureBehavior>;

/// A sensor instance: initial value, units ("Cel") and the measurable range −40..85.
pub fn temperature_instance(iid: u16, value: f64) -> InstanceNode {
    InstanceNode::new(
        iid,
        [
            ResourceNode::single(SENSOR_VALUE, Value::Float(value)),
            ResourceNode::single(MIN_MEASURED, Value::Float(value)),
            ResourceNode::single(MAX_MEASURED, Value::Float(value)),
            ResourceNode::single(MIN_RANGE, Value::Float(-40.0)),
            ResourceNode::single(MAX_RANGE, Value::Float(85.0)),
            ResourceNode::single(UNITS, Value::String("Cel".into())),
        ],
    )
}

/// A Temperature object (v1.1) with sensors `(instance id, initial value)`. Servers may Create more
/// instances; they start at 0.0 °C.
pub fn temperature_object(sensors: &[(u16, f64)]) -> TemperatureSensor {
    let mut store = InstanceStore::new(builtin_model(TEMPERATURE, Some(Version::V1_1)))
        .with_executables(&[RESET_MIN_MAX])
        .with_default(SENSOR_VALUE, Value::Float(0.0))
        .with_default(UNITS, Value::String("Cel".into()));
    for &(iid, v) in sensors {
        store.insert(temperature_instance(iid, v));
    }
    SimpleObject::with_behavior(store, TemperatureBehavior)
}

impl TemperatureSensor {
    /// A new measurement: sets Sensor Value and extends Min/Max Measured Value; `timestamp` (Unix seconds)
    /// goes to 5518 when given.
    pub fn set_value(&mut self, iid: u16, value: f64, timestamp: Option<i64>, fx: &mut Effects) -> Result<(), DmError> {
        if !value.is_finite() {
            return Err(DmError::bad_request(format!(
                "temperature {value} is not a finite number"
            )));
        }
        let store = self.store_mut();
        store.set(iid, SENSOR_VALUE, Value::Float(value), fx)?;
        if !store.float(iid, MIN_MEASURED).is_some_and(|m| m <= value) {
            store.set(iid, MIN_MEASURED, Value::Float(value), fx)?;
        }
        if !store.float(iid, MAX_MEASURED).is_some_and(|m| m >= value) {
            store.set(iid, MAX_MEASURED, Value::Float(value), fx)?;
        }
        if let Some(t) = timestamp {
            store.set(iid, TIMESTAMP, Value::Time(t), fx)?;
        }
        Ok(())
    }

    /// The current Sensor Value.
    pub fn value(&self, iid: u16) -> Option<f64> {
        self.store().float(iid, SENSOR_VALUE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::ObjectHandler;
    use crate::objects::test_util::assert_node_matches_model;
    use lwm2m_core::Path;

    #[test]
    fn min_max_and_reset() {
        let mut t = temperature_object(&[(0, 20.0)]);
        assert_eq!(t.model().version, Version::V1_1);
        assert_node_matches_model(t.model(), &temperature_instance(0, 1.0));
        let mut fx = Effects::new();
        t.set_value(0, 25.5, Some(1_700_000_000), &mut fx).unwrap();
        t.set_value(0, 18.0, None, &mut fx).unwrap();
        let s = t.store();
        assert_eq!(
            (s.float(0, 5700), s.float(0, 5601), s.float(0, 5602)),
            (Some(18.0), Some(18.0), Some(25.5))
        );
        assert!(fx.changes().iter().any(|c| c.path == Path::resource(3303, 0, 5518)));
        t.execute(0, RESET_MIN_MAX, &[], &mut fx).unwrap();
        let s = t.store();
        assert_eq!((s.float(0, 5601), s.float(0, 5602)), (Some(18.0), Some(18.0)));
        assert_eq!(t.set_value(0, f64::NAN, None, &mut fx).unwrap_err().code(), (4, 0));
        assert_eq!(t.set_value(7, 1.0, None, &mut fx).unwrap_err().code(), (4, 4));
        assert_eq!(t.value(0), Some(18.0));
    }
}
