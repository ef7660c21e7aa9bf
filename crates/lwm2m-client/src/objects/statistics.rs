//! Connectivity Statistics (Object 7, v1.0). Start (6) resets the counters 0–5 and starts collecting; Stop (7)
//! stops (values are kept). The driver feeds traffic with [`ConnectivityStatistics::record_sent`] and
//! friends; they count only while collecting. Collection Period (8) is stored; stopping when it elapses needs a
//! clock and is the driver's job (it executes Stop through [`ConnectivityStatistics::stop`]).

use lwm2m_core::{InstanceNode, ResourceNode, Value};

use super::{builtin_model, CONNECTIVITY_STATISTICS};
use crate::object::{Behavior, DmError, Effects, ExecArg, InstanceStore, SimpleObject};

/// Counting state behind `/7/0`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsBehavior {
    collecting: bool,
    tx_bytes: u64,
    rx_bytes: u64,
    messages: u64,
    total_message_bytes: u64,
    max_message: u64,
    sms_tx: u64,
    sms_rx: u64,
}

fn int(v: u64) -> Value {
    Value::Integer(i64::try_from(v).unwrap_or(i64::MAX))
}

impl StatsBehavior {
    /// Whether statistics are being collected.
    pub fn collecting(&self) -> bool {
        self.collecting
    }

    fn publish(&self, store: &mut InstanceStore, fx: &mut Effects) -> Result<(), DmError> {
        let avg = self.total_message_bytes.checked_div(self.messages).unwrap_or(0);
        store.set(0, 0, int(self.sms_tx), fx)?;
        store.set(0, 1, int(self.sms_rx), fx)?;
        store.set(0, 2, int(self.tx_bytes / 1024), fx)?;
        store.set(0, 3, int(self.rx_bytes / 1024), fx)?;
        store.set(0, 4, int(self.max_message), fx)?;
        store.set(0, 5, int(avg), fx)
    }

    fn start(&mut self, store: &mut InstanceStore, fx: &mut Effects) -> Result<(), DmError> {
        *self = StatsBehavior {
            collecting: true,
            ..StatsBehavior::default()
        };
        self.publish(store, fx)
    }
}

impl Behavior for StatsBehavior {
    fn check_write(
        &self,
        _store: &InstanceStore,
        iid: u16,
        rid: u16,
        value: &lwm2m_core::ResourceValue,
    ) -> Result<(), DmError> {
        match (rid, value) {
            (8, lwm2m_core::ResourceValue::Single(Value::Integer(v))) if *v < 0 => Err(DmError::bad_request(format!(
                "/7/{iid}/8: collection period {v} is negative"
            ))),
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
            6 => self.start(store, fx),
            7 => {
                self.collecting = false;
                Ok(())
            }
            _ => Err(DmError::method_not_allowed(format!("/7/{iid}/{rid} is not executable"))),
        }
    }
}

/// The Connectivity Statistics object type.
pub type ConnectivityStatistics = SimpleObject<StatsBehavior>;

/// The object with its single instance: counters at 0, not collecting.
pub fn connectivity_statistics_object() -> ConnectivityStatistics {
    let node = InstanceNode::new(0, (0..=5).map(|rid| ResourceNode::single(rid, Value::Integer(0))));
    SimpleObject::with_behavior(
        InstanceStore::new(builtin_model(CONNECTIVITY_STATISTICS, None))
            .with_instance(node)
            .with_fixed_instances(),
        StatsBehavior::default(),
    )
}

impl ConnectivityStatistics {
    /// Whether statistics are being collected.
    pub fn collecting(&self) -> bool {
        self.behavior().collecting()
    }

    fn record(&mut self, f: impl FnOnce(&mut StatsBehavior), fx: &mut Effects) -> Result<(), DmError> {
        let (store, b) = self.parts_mut();
        if !b.collecting {
            return Ok(());
        }
        f(b);
        b.publish(store, fx)
    }

    /// Counts one sent IP message of `bytes`.
    pub fn record_sent(&mut self, bytes: u64, fx: &mut Effects) -> Result<(), DmError> {
        self.record(
            |b| {
                b.tx_bytes = b.tx_bytes.saturating_add(bytes);
                b.count_message(bytes);
            },
            fx,
        )
    }

    /// Counts one received IP message of `bytes`.
    pub fn record_received(&mut self, bytes: u64, fx: &mut Effects) -> Result<(), DmError> {
        self.record(
            |b| {
                b.rx_bytes = b.rx_bytes.saturating_add(bytes);
                b.count_message(bytes);
            },
            fx,
        )
    }

    /// Counts one sent (`true`) or received SMS.
    pub fn record_sms(&mut self, sent: bool, fx: &mut Effects) -> Result<(), DmError> {
        self.record(
            |b| {
                let c = if sent { &mut b.sms_tx } else { &mut b.sms_rx };
                *c = c.saturating_add(1);
            },
            fx,
        )
    }

    /// Stops collecting (what Stop `/7/0/7` does), e.g. when the Collection Period has elapsed.
    pub fn stop(&mut self) {
        self.parts_mut().1.collecting = false;
    }
}

impl StatsBehavior {
    fn count_message(&mut self, bytes: u64) {
        self.messages = self.messages.saturating_add(1);
        self.total_message_bytes = self.total_message_bytes.saturating_add(bytes);
        self.max_message = self.max_message.max(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::ObjectHandler;
    use crate::objects::test_util::assert_node_matches_model;

    #[test]
    fn start_count_stop() {
        let mut obj = connectivity_statistics_object();
        assert_node_matches_model(obj.model(), obj.store().instance(0).unwrap());
        assert_eq!(obj.resources(0), vec![0, 1, 2, 3, 4, 5, 6, 7]);
        let mut fx = Effects::new();
        obj.record_sent(5000, &mut fx).unwrap();
        assert_eq!(obj.store().int(0, 2), Some(0), "not collecting yet");
        obj.execute(0, 6, &[], &mut fx).unwrap();
        assert!(obj.collecting());
        obj.record_sent(3000, &mut fx).unwrap();
        obj.record_received(1000, &mut fx).unwrap();
        obj.record_sms(true, &mut fx).unwrap();
        let s = obj.store();
        assert_eq!(
            (s.int(0, 0), s.int(0, 2), s.int(0, 3), s.int(0, 4), s.int(0, 5)),
            (Some(1), Some(2), Some(0), Some(3000), Some(2000))
        );
        obj.execute(0, 7, &[], &mut fx).unwrap();
        obj.record_sent(9999, &mut fx).unwrap();
        assert_eq!(obj.store().int(0, 4), Some(3000), "values kept, no counting after Stop");
        obj.execute(0, 6, &[], &mut fx).unwrap();
        assert_eq!(obj.store().int(0, 4), Some(0), "Start resets");
        let neg = lwm2m_core::ResourceValue::Single(Value::Integer(-1));
        assert_eq!(obj.check_write(0, 8, &neg).unwrap_err().code(), (4, 0));
    }
}
