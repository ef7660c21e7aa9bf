//! LwM2M Server (Object 1, v1.1): all resources 0–23. Executes 4 (Disable), 8 (Registration Update Trigger)
//! and 9 (Bootstrap-Request Trigger) become [`ClientAction`]s for the driver.

use lwm2m_core::{InstanceNode, ObjLink, ResourceNode, ResourceValue, Value};

use super::{builtin_model, node_bool, node_int, node_str, node_u16, node_uint, node_value, SERVER};
use crate::object::{Behavior, ClientAction, DmError, Effects, ExecArg, InstanceStore, SimpleObject};

/// One Server instance, typed. `None` means the resource is absent (its default applies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInstance {
    /// `/1/x/0` Short Server ID.
    pub ssid: u16,
    /// `/1/x/1` Lifetime, seconds.
    pub lifetime_s: u64,
    /// `/1/x/2` Default Minimum Period.
    pub default_pmin_s: Option<u64>,
    /// `/1/x/3` Default Maximum Period.
    pub default_pmax_s: Option<u64>,
    /// `/1/x/5` Disable Timeout (default 86400).
    pub disable_timeout_s: Option<u64>,
    /// `/1/x/6` Notification Storing When Disabled or Offline.
    pub notification_storing: bool,
    /// `/1/x/7` Binding.
    pub binding: String,
    /// `/1/x/10` APN Link.
    pub apn_link: Option<ObjLink>,
    /// `/1/x/11` TLS-DTLS Alert Code.
    pub tls_alert_code: Option<u64>,
    /// `/1/x/12` Last Bootstrapped (Unix time).
    pub last_bootstrapped: Option<i64>,
    /// `/1/x/13` Registration Priority Order.
    pub priority_order: Option<u64>,
    /// `/1/x/14` Initial Registration Delay Timer.
    pub initial_delay_s: Option<u64>,
    /// `/1/x/15` Registration Failure Block.
    pub failure_block: Option<bool>,
    /// `/1/x/16` Bootstrap on Registration Failure.
    pub bootstrap_on_failure: Option<bool>,
    /// `/1/x/17` Communication Retry Count.
    pub retry_count: Option<u64>,
    /// `/1/x/18` Communication Retry Timer.
    pub retry_timer_s: Option<u64>,
    /// `/1/x/19` Communication Sequence Delay Timer.
    pub seq_delay_s: Option<u64>,
    /// `/1/x/20` Communication Sequence Retry Count.
    pub seq_retry_count: Option<u64>,
    /// `/1/x/21` Trigger.
    pub trigger: Option<bool>,
    /// `/1/x/22` Preferred Transport.
    pub preferred_transport: Option<String>,
    /// `/1/x/23` Mute Send.
    pub mute_send: Option<bool>,
}

impl ServerInstance {
    /// An instance with the given SSID and lifetime, binding "U", notification storing on, everything else
    /// absent.
    pub fn new(ssid: u16, lifetime_s: u64) -> ServerInstance {
        ServerInstance {
            ssid,
            lifetime_s,
            default_pmin_s: None,
            default_pmax_s: None,
            disable_timeout_s: None,
            notification_storing: true,
            binding: "U".into(),
            apn_link: None,
            tls_alert_code: None,
            last_bootstrapped: None,
            priority_order: None,
            initial_delay_s: None,
            failure_block: None,
            bootstrap_on_failure: None,
            retry_count: None,
            retry_timer_s: None,
            seq_delay_s: None,
            seq_retry_count: None,
            trigger: None,
            preferred_transport: None,
            mute_send: None,
        }
    }

    /// The resources of this instance (executables are not values).
    pub fn to_node(&self, iid: u16) -> InstanceNode {
        let int = |v: u64| Value::Integer(i64::try_from(v).unwrap_or(i64::MAX));
        let mut r = vec![
            ResourceNode::single(0, Value::Integer(i64::from(self.ssid))),
            ResourceNode::single(1, int(self.lifetime_s)),
            ResourceNode::single(6, Value::Boolean(self.notification_storing)),
            ResourceNode::single(7, Value::String(self.binding.clone())),
        ];
        let mut opt = |rid: u16, v: Option<Value>| {
            if let Some(v) = v {
                r.push(ResourceNode::single(rid, v));
            }
        };
        opt(2, self.default_pmin_s.map(int));
        opt(3, self.default_pmax_s.map(int));
        opt(5, self.disable_timeout_s.map(int));
        opt(10, self.apn_link.map(Value::Objlnk));
        opt(11, self.tls_alert_code.map(Value::UnsignedInteger));
        opt(12, self.last_bootstrapped.map(Value::Time));
        opt(13, self.priority_order.map(Value::UnsignedInteger));
        opt(14, self.initial_delay_s.map(Value::UnsignedInteger));
        opt(15, self.failure_block.map(Value::Boolean));
        opt(16, self.bootstrap_on_failure.map(Value::Boolean));
        opt(17, self.retry_count.map(Value::UnsignedInteger));
        opt(18, self.retry_timer_s.map(Value::UnsignedInteger));
        opt(19, self.seq_delay_s.map(Value::UnsignedInteger));
        opt(20, self.seq_retry_count.map(Value::UnsignedInteger));
        opt(21, self.trigger.map(Value::Boolean));
        opt(22, self.preferred_transport.clone().map(Value::String));
        opt(23, self.mute_send.map(Value::Boolean));
        InstanceNode::new(iid, r)
    }

    /// Reads an instance back (absent mandatory values: SSID 0, lifetime 86400, storing true, binding "U").
    pub fn from_node(node: &InstanceNode) -> ServerInstance {
        ServerInstance {
            ssid: node_u16(node, 0).unwrap_or(0),
            lifetime_s: node_uint(node, 1).unwrap_or(86_400),
            default_pmin_s: node_uint(node, 2),
            default_pmax_s: node_uint(node, 3),
            disable_timeout_s: node_uint(node, 5),
            notification_storing: node_bool(node, 6).unwrap_or(true),
            binding: node_str(node, 7).unwrap_or("U").to_string(),
            apn_link: match node_value(node, 10) {
                Some(Value::Objlnk(l)) => Some(*l),
                _ => None,
            },
            tls_alert_code: node_uint(node, 11),
            last_bootstrapped: node_int(node, 12),
            priority_order: node_uint(node, 13),
            initial_delay_s: node_uint(node, 14),
            failure_block: node_bool(node, 15),
            bootstrap_on_failure: node_bool(node, 16),
            retry_count: node_uint(node, 17),
            retry_timer_s: node_uint(node, 18),
            seq_delay_s: node_uint(node, 19),
            seq_retry_count: node_uint(node, 20),
            trigger: node_bool(node, 21),
            preferred_transport: node_str(node, 22).map(str::to_string),
            mute_send: node_bool(node, 23),
        }
    }
}

/// Checks a Binding value (`/1/x/7`): letters U, T, S, N (and the legacy Q), each at most once.
pub fn validate_binding(binding: &str) -> Result<(), String> {
    if binding.is_empty() {
        return Err("the binding is empty".into());
    }
    let mut seen = Vec::new();
    for c in binding.chars() {
        if !matches!(c, 'U' | 'T' | 'S' | 'N' | 'Q') {
            return Err(format!("binding {binding:?}: {c:?} is not one of U, T, S, N, Q"));
        }
        if seen.contains(&c) {
            return Err(format!("binding {binding:?}: {c:?} appears twice"));
        }
        seen.push(c);
    }
    Ok(())
}

/// Server object semantics: value checks and the three executes.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerBehavior;

impl Behavior for ServerBehavior {
    fn check_write(&self, _store: &InstanceStore, iid: u16, rid: u16, value: &ResourceValue) -> Result<(), DmError> {
        let ResourceValue::Single(v) = value else {
            return Ok(());
        };
        let bad = |what: String| Err(DmError::bad_request(format!("/1/{iid}/{rid}: {what}")));
        match (rid, v) {
            (0, Value::Integer(s)) if !(1..=65534).contains(s) => {
                bad(format!("Short Server ID {s} is outside 1..65534"))
            }
            (1 | 2 | 3 | 5, Value::Integer(n)) if *n < 0 => bad(format!("{n} is negative")),
            (7, Value::String(b)) => validate_binding(b).or_else(bad),
            (22, Value::String(t)) if !matches!(t.as_str(), "U" | "T" | "S" | "N") => {
                bad(format!("preferred transport {t:?} is not one of U, T, S, N"))
            }
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
        let ssid = store
            .int(iid, 0)
            .and_then(|v| u16::try_from(v).ok())
            .ok_or_else(|| DmError::internal(format!("/1/{iid} has no valid Short Server ID")))?;
        let action = match rid {
            4 => ClientAction::Disable { ssid },
            8 => ClientAction::RegistrationUpdateTrigger { ssid },
            9 => ClientAction::BootstrapRequestTrigger { ssid },
            _ => return Err(DmError::method_not_allowed(format!("/1/{iid}/{rid} is not executable"))),
        };
        fx.action(action);
        Ok(())
    }
}

/// The Server object type.
pub type ServerObject = SimpleObject<ServerBehavior>;

/// An empty Server object supporting Disable (4), Registration Update Trigger (8) and Bootstrap-Request
/// Trigger (9). New instances get Lifetime 86400, Notification Storing true and Binding "U" when the creating
/// payload lacks them.
pub fn server_object() -> ServerObject {
    let store = InstanceStore::new(builtin_model(SERVER, None))
        .with_executables(&[4, 8, 9])
        .with_default(1, Value::Integer(86_400))
        .with_default(6, Value::Boolean(true))
        .with_default(7, Value::String("U".into()));
    SimpleObject::with_behavior(store, ServerBehavior)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::ObjectHandler;
    use crate::objects::test_util::assert_node_matches_model;

    fn full() -> ServerInstance {
        ServerInstance {
            default_pmin_s: Some(1),
            default_pmax_s: Some(60),
            disable_timeout_s: Some(300),
            notification_storing: false,
            binding: "UT".into(),
            apn_link: Some(ObjLink::new(11, 0)),
            tls_alert_code: Some(40),
            last_bootstrapped: Some(1_700_000_000),
            priority_order: Some(2),
            initial_delay_s: Some(5),
            failure_block: Some(true),
            bootstrap_on_failure: Some(false),
            retry_count: Some(3),
            retry_timer_s: Some(10),
            seq_delay_s: Some(100),
            seq_retry_count: Some(2),
            trigger: Some(false),
            preferred_transport: Some("U".into()),
            mute_send: Some(false),
            ..ServerInstance::new(101, 300)
        }
    }

    #[test]
    fn every_resource_round_trips_with_model_types() {
        let s = full();
        let node = s.to_node(0);
        assert_eq!(node.resources.len(), 21, "0-23 without the three executables");
        assert_node_matches_model(&builtin_model(SERVER, None), &node);
        assert_eq!(ServerInstance::from_node(&node), s);
        let min = ServerInstance::new(5, 60);
        assert_eq!(ServerInstance::from_node(&min.to_node(1)), min);
    }

    #[test]
    fn executes_produce_actions() {
        let mut obj = server_object().with_instance(ServerInstance::new(101, 300).to_node(0));
        let mut fx = Effects::new();
        for rid in [4, 8, 9] {
            obj.execute(0, rid, &[], &mut fx).unwrap();
        }
        assert_eq!(
            fx.take_actions(),
            vec![
                ClientAction::Disable { ssid: 101 },
                ClientAction::RegistrationUpdateTrigger { ssid: 101 },
                ClientAction::BootstrapRequestTrigger { ssid: 101 },
            ]
        );
        assert_eq!(obj.execute(0, 1, &[], &mut fx).unwrap_err().code(), (4, 5));
        assert_eq!(obj.resources(0), vec![0, 1, 4, 6, 7, 8, 9]);
    }

    #[test]
    fn value_checks() {
        let obj = server_object().with_instance(ServerInstance::new(101, 300).to_node(0));
        let s = |v: &str| ResourceValue::Single(Value::String(v.into()));
        let i = |v: i64| ResourceValue::Single(Value::Integer(v));
        assert!(obj.check_write(0, 7, &s("UQ")).is_ok());
        assert!(obj.check_write(0, 7, &s("UTSN")).is_ok());
        for bad in ["", "X", "UU", "u"] {
            assert_eq!(obj.check_write(0, 7, &s(bad)).unwrap_err().code(), (4, 0), "{bad}");
        }
        assert_eq!(obj.check_write(0, 1, &i(-1)).unwrap_err().code(), (4, 0));
        assert_eq!(obj.check_write(0, 0, &i(0)).unwrap_err().code(), (4, 0));
        assert_eq!(obj.check_write(0, 22, &s("UT")).unwrap_err().code(), (4, 0));
        assert!(obj.check_write(0, 22, &s("T")).is_ok());
    }

    #[test]
    fn create_fills_mandatory_defaults() {
        let mut obj = server_object();
        let mut fx = Effects::new();
        obj.create(
            InstanceNode::new(2, [ResourceNode::single(0, Value::Integer(7))]),
            &mut fx,
        )
        .unwrap();
        let back = ServerInstance::from_node(obj.store().instance(2).unwrap());
        assert_eq!(back, ServerInstance::new(7, 86_400));
        assert!(obj.store().get(2, 2).is_none(), "optional resources are not created");
    }
}
