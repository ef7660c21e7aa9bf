//! LwM2M Security (Object 0, v1.1). Never visible through DM&SE (the dispatcher answers 4.04); only the
//! Bootstrap interface and the factory configuration write it.

use std::collections::BTreeMap;

use lwm2m_core::{InstanceNode, ObjLink, ResourceNode, ResourceValue, Value};

use super::{builtin_model, node_bool, node_bytes, node_int, node_str, node_u16, node_uint, SECURITY};
use crate::object::{Behavior, DmError, InstanceStore, SimpleObject};

/// `/0/x/2` Security Mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityMode {
    /// 0: Pre-Shared Key.
    Psk,
    /// 1: Raw Public Key.
    Rpk,
    /// 2: X.509 certificate.
    Certificate,
    /// 3: no security.
    NoSec,
    /// 4: certificate mode with EST.
    CertificateEst,
    /// Any other value.
    Other(i64),
}

impl SecurityMode {
    /// The resource value.
    pub fn code(self) -> i64 {
        match self {
            SecurityMode::Psk => 0,
            SecurityMode::Rpk => 1,
            SecurityMode::Certificate => 2,
            SecurityMode::NoSec => 3,
            SecurityMode::CertificateEst => 4,
            SecurityMode::Other(v) => v,
        }
    }

    /// From the resource value.
    pub fn from_code(v: i64) -> SecurityMode {
        match v {
            0 => SecurityMode::Psk,
            1 => SecurityMode::Rpk,
            2 => SecurityMode::Certificate,
            3 => SecurityMode::NoSec,
            4 => SecurityMode::CertificateEst,
            other => SecurityMode::Other(other),
        }
    }
}

/// One Security instance, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityInstance {
    /// `/0/x/0` LwM2M Server URI.
    pub uri: String,
    /// `/0/x/1` Bootstrap-Server.
    pub bootstrap: bool,
    /// `/0/x/2` Security Mode.
    pub mode: SecurityMode,
    /// `/0/x/3` Public Key or Identity (PSK identity, certificate or RPK).
    pub public_key_or_identity: Vec<u8>,
    /// `/0/x/4` Server Public Key.
    pub server_public_key: Vec<u8>,
    /// `/0/x/5` Secret Key (PSK key or private key).
    pub secret_key: Vec<u8>,
    /// `/0/x/10` Short Server ID (LwM2M Server accounts only).
    pub ssid: Option<u16>,
    /// `/0/x/11` Client Hold Off Time, seconds.
    pub client_hold_off_s: Option<u64>,
    /// `/0/x/12` Bootstrap-Server Account Timeout, seconds.
    pub bootstrap_account_timeout_s: Option<u64>,
    /// `/0/x/13` Matching Type.
    pub matching_type: Option<u64>,
    /// `/0/x/14` SNI.
    pub sni: Option<String>,
    /// `/0/x/15` Certificate Usage.
    pub certificate_usage: Option<u64>,
    /// `/0/x/16` DTLS/TLS Ciphersuites (IANA values).
    pub ciphersuites: Vec<u64>,
    /// `/0/x/17` OSCORE Security Mode (link to an Object 21 instance).
    pub oscore: Option<ObjLink>,
}

impl SecurityInstance {
    /// A LwM2M Server account's Security instance with no security (mode 3).
    pub fn nosec(uri: impl Into<String>, ssid: u16) -> SecurityInstance {
        SecurityInstance {
            uri: uri.into(),
            bootstrap: false,
            mode: SecurityMode::NoSec,
            public_key_or_identity: Vec::new(),
            server_public_key: Vec::new(),
            secret_key: Vec::new(),
            ssid: Some(ssid),
            client_hold_off_s: None,
            bootstrap_account_timeout_s: None,
            matching_type: None,
            sni: None,
            certificate_usage: None,
            ciphersuites: Vec::new(),
            oscore: None,
        }
    }

    /// A LwM2M Server account's Security instance in PSK mode.
    pub fn psk(uri: impl Into<String>, ssid: u16, identity: &[u8], key: &[u8]) -> SecurityInstance {
        SecurityInstance {
            mode: SecurityMode::Psk,
            public_key_or_identity: identity.to_vec(),
            secret_key: key.to_vec(),
            ..SecurityInstance::nosec(uri, ssid)
        }
    }

    /// This instance as the Bootstrap-Server account (no SSID).
    pub fn into_bootstrap(mut self) -> SecurityInstance {
        self.bootstrap = true;
        self.ssid = None;
        self
    }

    /// The resources of this instance (mandatory ones always, optional ones when set).
    pub fn to_node(&self, iid: u16) -> InstanceNode {
        let mut r = vec![
            ResourceNode::single(0, Value::String(self.uri.clone())),
            ResourceNode::single(1, Value::Boolean(self.bootstrap)),
            ResourceNode::single(2, Value::Integer(self.mode.code())),
            ResourceNode::single(3, Value::Opaque(self.public_key_or_identity.clone())),
            ResourceNode::single(4, Value::Opaque(self.server_public_key.clone())),
            ResourceNode::single(5, Value::Opaque(self.secret_key.clone())),
        ];
        let int = |v: u64| Value::Integer(i64::try_from(v).unwrap_or(i64::MAX));
        if let Some(s) = self.ssid {
            r.push(ResourceNode::single(10, Value::Integer(i64::from(s))));
        }
        if let Some(v) = self.client_hold_off_s {
            r.push(ResourceNode::single(11, int(v)));
        }
        if let Some(v) = self.bootstrap_account_timeout_s {
            r.push(ResourceNode::single(12, int(v)));
        }
        if let Some(v) = self.matching_type {
            r.push(ResourceNode::single(13, Value::UnsignedInteger(v)));
        }
        if let Some(v) = &self.sni {
            r.push(ResourceNode::single(14, Value::String(v.clone())));
        }
        if let Some(v) = self.certificate_usage {
            r.push(ResourceNode::single(15, Value::UnsignedInteger(v)));
        }
        if !self.ciphersuites.is_empty() {
            r.push(ResourceNode {
                id: 16,
                value: ResourceValue::Multiple(
                    self.ciphersuites
                        .iter()
                        .zip(0u16..)
                        .map(|(c, i)| (i, Value::UnsignedInteger(*c)))
                        .collect::<BTreeMap<_, _>>(),
                ),
            });
        }
        if let Some(l) = self.oscore {
            r.push(ResourceNode::single(17, Value::Objlnk(l)));
        }
        InstanceNode::new(iid, r)
    }

    /// Reads an instance back. Absent mandatory resources give empty/false/NoSec values.
    pub fn from_node(node: &InstanceNode) -> SecurityInstance {
        let ciphersuites = match node.resources.get(&16).map(|r| &r.value) {
            Some(ResourceValue::Multiple(m)) => m
                .values()
                .filter_map(|v| match v {
                    Value::UnsignedInteger(u) => Some(*u),
                    Value::Integer(i) => u64::try_from(*i).ok(),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        SecurityInstance {
            uri: node_str(node, 0).unwrap_or_default().to_string(),
            bootstrap: node_bool(node, 1).unwrap_or(false),
            mode: SecurityMode::from_code(node_int(node, 2).unwrap_or(3)),
            public_key_or_identity: node_bytes(node, 3).unwrap_or_default(),
            server_public_key: node_bytes(node, 4).unwrap_or_default(),
            secret_key: node_bytes(node, 5).unwrap_or_default(),
            ssid: node_u16(node, 10),
            client_hold_off_s: node_uint(node, 11),
            bootstrap_account_timeout_s: node_uint(node, 12),
            matching_type: node_uint(node, 13),
            sni: node_str(node, 14).map(str::to_string),
            certificate_usage: node_uint(node, 15),
            ciphersuites,
            oscore: match super::node_value(node, 17) {
                Some(Value::Objlnk(l)) => Some(*l),
                _ => None,
            },
        }
    }
}

/// Validation of Security values: Short Server ID 0..=65534 (0 only makes sense on the Bootstrap-Server
/// account), Security Mode 0..=4.
#[derive(Debug, Clone, Copy, Default)]
pub struct SecurityBehavior;

impl Behavior for SecurityBehavior {
    fn check_write(&self, _store: &InstanceStore, iid: u16, rid: u16, value: &ResourceValue) -> Result<(), DmError> {
        match (rid, value) {
            // 0 is tolerated here (some Bootstrap-Servers write it on their own account); Bootstrap-Finish
            // rejects a LwM2M Server account without a valid SSID.
            (10, ResourceValue::Single(Value::Integer(v))) if !(0..=65534).contains(v) => Err(DmError::bad_request(
                format!("/0/{iid}/10: Short Server ID {v} is outside 1..65534"),
            )),
            (2, ResourceValue::Single(Value::Integer(v))) if !(0..=4).contains(v) => Err(DmError::bad_request(
                format!("/0/{iid}/2: Security Mode {v} is outside 0..4"),
            )),
            _ => Ok(()),
        }
    }
}

/// The Security object type.
pub type SecurityObject = SimpleObject<SecurityBehavior>;

/// An empty Security object.
pub fn security_object() -> SecurityObject {
    SimpleObject::with_behavior(InstanceStore::new(builtin_model(SECURITY, None)), SecurityBehavior)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::{Effects, ObjectHandler};
    use crate::objects::test_util::assert_node_matches_model;

    #[test]
    fn round_trip_and_types() {
        let mut s = SecurityInstance::psk("coaps://dm.example.com", 101, b"id", b"key");
        s.client_hold_off_s = Some(5);
        s.bootstrap_account_timeout_s = Some(0);
        s.matching_type = Some(1);
        s.sni = Some("dm".into());
        s.certificate_usage = Some(3);
        s.ciphersuites = vec![49320, 49326];
        s.oscore = Some(ObjLink::new(21, 0));
        let node = s.to_node(4);
        assert_eq!(node.id, 4);
        assert_node_matches_model(&builtin_model(SECURITY, None), &node);
        assert_eq!(SecurityInstance::from_node(&node), s);
        let bs = SecurityInstance::nosec("coap://bs", 1).into_bootstrap();
        assert!(bs.bootstrap);
        assert_eq!(bs.ssid, None);
        assert_eq!(SecurityInstance::from_node(&bs.to_node(0)), bs);
        assert_eq!(SecurityMode::from_code(9), SecurityMode::Other(9));
    }

    #[test]
    fn ssid_and_mode_ranges() {
        let obj = security_object().with_instance(SecurityInstance::nosec("coap://a", 1).to_node(0));
        let bad_ssid = ResourceValue::Single(Value::Integer(65535));
        assert_eq!(obj.check_write(0, 10, &bad_ssid).unwrap_err().code(), (4, 0));
        assert!(obj
            .check_write(0, 10, &ResourceValue::Single(Value::Integer(1)))
            .is_ok());
        assert_eq!(
            obj.check_write(0, 2, &ResourceValue::Single(Value::Integer(5)))
                .unwrap_err()
                .code(),
            (4, 0)
        );
        let mut obj = obj;
        let mut fx = Effects::new();
        obj.write(0, 0, ResourceValue::Single(Value::String("coap://b".into())), &mut fx)
            .unwrap();
        assert_eq!(obj.store().string(0, 0), Some("coap://b"));
    }
}
