//! Device (Object 3, v1.1). Reboot (4) and Factory Reset (5) become [`ClientAction`]s; Reset Error Code (12)
//! clears the error list; Current Time (13), UTC Offset (14) and Timezone (15) are writable.
//!
//! The client has no clock here (sans-IO): Current Time holds what was last set, by a server Write or by the
//! application ([`DeviceObject::set_current_time`]); the driver may refresh it before reads.

use std::collections::BTreeMap;

use lwm2m_core::{InstanceNode, ResourceNode, ResourceValue, Value};

use super::{builtin_model, DEVICE};
use crate::object::{Behavior, ClientAction, DmError, Effects, ExecArg, InstanceStore, SimpleObject};

/// `/3/0/11` error codes.
pub mod error_code {
    /// No error.
    pub const NO_ERROR: i64 = 0;
    /// Low battery power.
    pub const LOW_BATTERY: i64 = 1;
    /// External power supply off.
    pub const EXTERNAL_POWER_OFF: i64 = 2;
    /// GPS module failure.
    pub const GPS_FAILURE: i64 = 3;
    /// Low received signal strength.
    pub const LOW_SIGNAL: i64 = 4;
    /// Out of memory.
    pub const OUT_OF_MEMORY: i64 = 5;
    /// SMS failure.
    pub const SMS_FAILURE: i64 = 6;
    /// IP connectivity failure.
    pub const IP_CONNECTIVITY_FAILURE: i64 = 7;
    /// Peripheral malfunction.
    pub const PERIPHERAL_MALFUNCTION: i64 = 8;
}

/// One power source of `/3/0/6`–`/3/0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerSource {
    /// 0 DC, 1 internal battery, 2 external battery, 3 fuel cell, 4 PoE, 5 USB, 6 AC mains, 7 solar.
    pub kind: i64,
    /// Voltage, mV.
    pub voltage_mv: Option<i64>,
    /// Current, mA.
    pub current_ma: Option<i64>,
}

/// Factory information of the device. `None`/empty fields are not instantiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// `/3/0/0`
    pub manufacturer: Option<String>,
    /// `/3/0/1`
    pub model_number: Option<String>,
    /// `/3/0/2`
    pub serial_number: Option<String>,
    /// `/3/0/3`
    pub firmware_version: Option<String>,
    /// `/3/0/6`–`/3/0/8`
    pub power_sources: Vec<PowerSource>,
    /// `/3/0/9` percent.
    pub battery_level: Option<i64>,
    /// `/3/0/10` KB.
    pub memory_free: Option<i64>,
    /// `/3/0/13` Unix time.
    pub current_time: Option<i64>,
    /// `/3/0/14`
    pub utc_offset: Option<String>,
    /// `/3/0/15`
    pub timezone: Option<String>,
    /// `/3/0/16` (mandatory), e.g. "U".
    pub supported_bindings: String,
    /// `/3/0/17`
    pub device_type: Option<String>,
    /// `/3/0/18`
    pub hardware_version: Option<String>,
    /// `/3/0/19`
    pub software_version: Option<String>,
    /// `/3/0/20`
    pub battery_status: Option<i64>,
    /// `/3/0/21` KB.
    pub memory_total: Option<i64>,
}

impl Default for DeviceInfo {
    fn default() -> DeviceInfo {
        DeviceInfo {
            manufacturer: Some("lwm2m-rs".into()),
            model_number: Some("simulated".into()),
            serial_number: None,
            firmware_version: Some(env!("CARGO_PKG_VERSION").into()),
            power_sources: Vec::new(),
            battery_level: None,
            memory_free: None,
            current_time: None,
            utc_offset: None,
            timezone: None,
            supported_bindings: "U".into(),
            device_type: None,
            hardware_version: None,
            software_version: None,
            battery_status: None,
            memory_total: None,
        }
    }
}

impl DeviceInfo {
    /// The `/3/0` instance: the values set here, Error Code `{0: 0}` and Supported Binding and Modes.
    pub fn to_node(&self) -> InstanceNode {
        let mut r = Vec::new();
        let mut s = |rid: u16, v: &Option<String>| {
            if let Some(v) = v {
                r.push(ResourceNode::single(rid, Value::String(v.clone())));
            }
        };
        s(0, &self.manufacturer);
        s(1, &self.model_number);
        s(2, &self.serial_number);
        s(3, &self.firmware_version);
        s(14, &self.utc_offset);
        s(15, &self.timezone);
        s(17, &self.device_type);
        s(18, &self.hardware_version);
        s(19, &self.software_version);
        let mut i = |rid: u16, v: Option<i64>| {
            if let Some(v) = v {
                r.push(ResourceNode::single(rid, Value::Integer(v)));
            }
        };
        i(9, self.battery_level);
        i(10, self.memory_free);
        i(20, self.battery_status);
        i(21, self.memory_total);
        if let Some(t) = self.current_time {
            r.push(ResourceNode::single(13, Value::Time(t)));
        }
        if !self.power_sources.is_empty() {
            let ids = 0u16..;
            r.push(ResourceNode::multiple(
                6,
                self.power_sources
                    .iter()
                    .zip(ids.clone())
                    .map(|(p, i)| (i, Value::Integer(p.kind))),
            ));
            let volts: Vec<(u16, Value)> = self
                .power_sources
                .iter()
                .zip(ids.clone())
                .filter_map(|(p, i)| p.voltage_mv.map(|v| (i, Value::Integer(v))))
                .collect();
            if !volts.is_empty() {
                r.push(ResourceNode::multiple(7, volts));
            }
            let amps: Vec<(u16, Value)> = self
                .power_sources
                .iter()
                .zip(ids)
                .filter_map(|(p, i)| p.current_ma.map(|v| (i, Value::Integer(v))))
                .collect();
            if !amps.is_empty() {
                r.push(ResourceNode::multiple(8, amps));
            }
        }
        r.push(ResourceNode::multiple(11, [(0, Value::Integer(error_code::NO_ERROR))]));
        r.push(ResourceNode::single(16, Value::String(self.supported_bindings.clone())));
        InstanceNode::new(0, r)
    }
}

/// Device semantics: the executes, and Battery Level / UTC Offset checks.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeviceBehavior;

fn reset_errors(store: &mut InstanceStore, fx: &mut Effects) -> Result<(), DmError> {
    store.set_multiple(0, 11, BTreeMap::from([(0, Value::Integer(error_code::NO_ERROR))]), fx)
}

impl Behavior for DeviceBehavior {
    fn check_write(&self, _store: &InstanceStore, iid: u16, rid: u16, value: &ResourceValue) -> Result<(), DmError> {
        match (rid, value) {
            (14, ResourceValue::Single(Value::String(s))) if !valid_utc_offset(s) => Err(DmError::bad_request(
                format!("/3/{iid}/14: {s:?} is not an ISO 8601 UTC offset such as +02:00"),
            )),
            _ => Ok(()),
        }
    }

    fn execute(
        &mut self,
        store: &mut InstanceStore,
        iid: u16,
        rid: u16,
        _args: &[ExecArg],
        fx: &mut Effects,
    ) -> Result<(), DmError> {
        match rid {
            4 => fx.action(ClientAction::Reboot),
            5 => fx.action(ClientAction::FactoryReset),
            12 => reset_errors(store, fx)?,
            _ => return Err(DmError::method_not_allowed(format!("/3/{iid}/{rid} is not executable"))),
        }
        Ok(())
    }
}

/// `Z`, `±HH`, `±HHMM` or `±HH:MM` (ISO 8601), also with a `UTC` prefix as some devices write it.
fn valid_utc_offset(s: &str) -> bool {
    let s = s.strip_prefix("UTC").unwrap_or(s);
    if s == "Z" || s.is_empty() {
        return true;
    }
    let Some(rest) = s.strip_prefix('+').or_else(|| s.strip_prefix('-')) else {
        return false;
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    let colon_ok = match rest.find(':') {
        None => true,
        Some(p) => p == 2 && rest.len() == 5,
    };
    colon_ok && matches!(digits.len(), 2 | 4) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The Device object type.
pub type DeviceObject = SimpleObject<DeviceBehavior>;

/// The Device object with its single instance `/3/0`, supporting Reboot, Factory Reset and Reset Error Code.
pub fn device_object(info: &DeviceInfo) -> DeviceObject {
    let store = InstanceStore::new(builtin_model(DEVICE, None))
        .with_executables(&[4, 5, 12])
        .with_instance(info.to_node())
        .with_fixed_instances();
    SimpleObject::with_behavior(store, DeviceBehavior)
}

impl DeviceObject {
    /// The current error codes (`/3/0/11`), `[0]` when there is no error.
    pub fn error_codes(&self) -> Vec<i64> {
        match self.store().get(0, 11) {
            Some(ResourceValue::Multiple(m)) => m
                .values()
                .filter_map(|v| match v {
                    Value::Integer(i) => Some(*i),
                    _ => None,
                })
                .collect(),
            _ => vec![error_code::NO_ERROR],
        }
    }

    /// Reports an error (1..=8): it replaces the "no error" entry or is appended when new.
    pub fn add_error_code(&mut self, code: i64, fx: &mut Effects) -> Result<(), DmError> {
        if !(1..=8).contains(&code) {
            return Err(DmError::bad_request(format!("error code {code} is outside 1..8")));
        }
        let mut codes: Vec<i64> = self.error_codes().into_iter().filter(|c| *c != 0).collect();
        if codes.contains(&code) {
            return Ok(());
        }
        codes.push(code);
        self.store_codes(codes, fx)
    }

    /// Clears one error; the list falls back to `[0]` when it becomes empty.
    pub fn clear_error_code(&mut self, code: i64, fx: &mut Effects) -> Result<(), DmError> {
        let codes: Vec<i64> = self
            .error_codes()
            .into_iter()
            .filter(|c| *c != 0 && *c != code)
            .collect();
        self.store_codes(codes, fx)
    }

    fn store_codes(&mut self, codes: Vec<i64>, fx: &mut Effects) -> Result<(), DmError> {
        if codes.is_empty() {
            return reset_errors(self.store_mut(), fx);
        }
        let map = codes
            .into_iter()
            .zip(0u16..)
            .map(|(c, i)| (i, Value::Integer(c)))
            .collect();
        self.store_mut().set_multiple(0, 11, map, fx)
    }

    /// Sets Current Time `/3/0/13` (Unix seconds).
    pub fn set_current_time(&mut self, unix_s: i64, fx: &mut Effects) -> Result<(), DmError> {
        self.store_mut().set(0, 13, Value::Time(unix_s), fx)
    }

    /// Sets Battery Level `/3/0/9` (0..=100 %).
    pub fn set_battery_level(&mut self, percent: i64, fx: &mut Effects) -> Result<(), DmError> {
        if !(0..=100).contains(&percent) {
            return Err(DmError::bad_request(format!(
                "battery level {percent} is outside 0..100"
            )));
        }
        self.store_mut().set(0, 9, Value::Integer(percent), fx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::ObjectHandler;
    use crate::objects::test_util::assert_node_matches_model;
    use lwm2m_core::Path;

    fn info() -> DeviceInfo {
        DeviceInfo {
            serial_number: Some("345000123".into()),
            power_sources: vec![
                PowerSource {
                    kind: 1,
                    voltage_mv: Some(3800),
                    current_ma: Some(125),
                },
                PowerSource {
                    kind: 5,
                    voltage_mv: Some(5000),
                    current_ma: None,
                },
            ],
            battery_level: Some(100),
            memory_free: Some(15),
            current_time: Some(1_367_491_215),
            utc_offset: Some("+02:00".into()),
            timezone: Some("Europe/Berlin".into()),
            device_type: Some("sensor".into()),
            hardware_version: Some("1.0".into()),
            software_version: Some("1.0.0".into()),
            battery_status: Some(0),
            memory_total: Some(128),
            ..DeviceInfo::default()
        }
    }

    #[test]
    fn instance_matches_model() {
        let node = info().to_node();
        assert_node_matches_model(&builtin_model(DEVICE, None), &node);
        assert_eq!(
            node.resources[&7].value,
            ResourceValue::Multiple(BTreeMap::from([(0, Value::Integer(3800)), (1, Value::Integer(5000))]))
        );
        assert_eq!(
            node.resources[&8].value,
            ResourceValue::Multiple(BTreeMap::from([(0, Value::Integer(125))]))
        );
        let obj = device_object(&info());
        assert_eq!(obj.error_codes(), vec![0]);
        assert!(obj.resources(0).contains(&4));
        assert!(obj.resources(0).contains(&12));
    }

    #[test]
    fn executes_and_error_list() {
        let mut obj = device_object(&DeviceInfo::default());
        let mut fx = Effects::new();
        obj.execute(0, 4, &[], &mut fx).unwrap();
        obj.execute(0, 5, &[], &mut fx).unwrap();
        assert_eq!(
            fx.take_actions(),
            vec![ClientAction::Reboot, ClientAction::FactoryReset]
        );
        obj.add_error_code(error_code::LOW_BATTERY, &mut fx).unwrap();
        obj.add_error_code(error_code::LOW_SIGNAL, &mut fx).unwrap();
        obj.add_error_code(error_code::LOW_SIGNAL, &mut fx).unwrap();
        assert_eq!(obj.error_codes(), vec![1, 4]);
        assert_eq!(
            fx.take_changes(),
            vec![crate::object::Change::value(Path::resource(3, 0, 11))]
        );
        obj.clear_error_code(1, &mut fx).unwrap();
        assert_eq!(obj.error_codes(), vec![4]);
        obj.execute(0, 12, &[], &mut fx).unwrap();
        assert_eq!(obj.error_codes(), vec![0]);
        assert_eq!(obj.add_error_code(9, &mut fx).unwrap_err().code(), (4, 0));
        obj.set_current_time(1_700_000_000, &mut fx).unwrap();
        assert_eq!(obj.store().value(0, 13), Some(&Value::Time(1_700_000_000)));
        assert_eq!(obj.set_battery_level(101, &mut fx).unwrap_err().code(), (4, 0));
    }

    #[test]
    fn utc_offsets() {
        for ok in ["+02:00", "-0530", "+01", "Z", "UTC+02:00"] {
            assert!(valid_utc_offset(ok), "{ok}");
        }
        for bad in ["02:00", "+2:00", "+02:0", "+0a:00", "+02:000", "x"] {
            assert!(!valid_utc_offset(bad), "{bad}");
        }
    }
}
