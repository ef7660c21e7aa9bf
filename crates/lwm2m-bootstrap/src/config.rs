//! The per-endpoint bootstrap configuration: what the Bootstrap-Server writes into a device (digest §3, §7, §9).
//!
//! A [`BootstrapConfig`] holds the LwM2M Server accounts ([`ServerAccount`]: Security (0) + Server (1)
//! instance pairs, with the 1.1 registration-procedure resources 13–20), an optional rewrite of the
//! Bootstrap-Server account itself ([`BootstrapAccount`]), Access Control instances ([`AclEntry`]), writes to
//! any other object ([`ExtraWrite`]), deletes, the content-format preference and the BsR-7 repair policy
//! ([`RepairPolicy`]). It also names the credentials the device uses with *this* Bootstrap-Server
//! ([`BootstrapCredential`]), which feed the DTLS handshake and the endpoint ↔ identity check.
//!
//! Every type (de)serializes with serde (TOML or JSON files, see [`crate::store`]); binary values (keys,
//! certificates) are hex strings ([`Bytes`]). [`BootstrapConfig::validate`] checks a configuration before it
//! is stored.

use std::collections::BTreeMap;
use std::fmt;

use lwm2m_core::path::MAX_ID;
use lwm2m_core::{
    ContentFormat, DataType, InstanceNode, Models, Node, ObjLink, ObjectNode, Path, ResourceNode, ResourceValue, Value,
};
use lwm2m_server::security::Credential;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// The configuration is inconsistent; the text names the field and the problem.
    #[error("invalid bootstrap configuration: {0}")]
    Invalid(String),
    /// The endpoint name is empty.
    #[error("the endpoint name must not be empty")]
    EmptyEndpoint,
    /// Reading or writing the configuration file failed.
    #[error("configuration file {file}: {reason}")]
    Io {
        /// The file.
        file: String,
        /// What failed.
        reason: String,
    },
    /// The configuration file could not be parsed or written.
    #[error("configuration file {file}: {reason}")]
    Format {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// The Bootstrap-Server's security store refused the credentials (e.g. a PSK identity used by another
    /// endpoint).
    #[error("bootstrap credentials refused: {0}")]
    Credentials(String),
}

fn invalid(msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(msg.into())
}

// ---------------------------------------------------------------------------------------------
// Bytes (hex in files)
// ---------------------------------------------------------------------------------------------

/// Binary data (keys, certificates, raw public keys), written as a hex string in configuration files.
/// `Debug` shows only the length so that keys do not end up in logs.
#[derive(Clone, PartialEq, Eq, Default, Hash)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(self.0.len() * 2);
        for b in &self.0 {
            s.push(char::from(DIGITS[usize::from(b >> 4)]));
            s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
        }
        s
    }

    /// Parses hex (upper or lower case; an optional `hex:` prefix; ASCII whitespace and `:` between bytes
    /// are ignored).
    pub fn from_hex(text: &str) -> Result<Bytes, String> {
        let t = text.strip_prefix("hex:").unwrap_or(text);
        let digits: Vec<u8> = t.bytes().filter(|b| !b.is_ascii_whitespace() && *b != b':').collect();
        if !digits.chunks_exact(2).remainder().is_empty() {
            return Err(format!("hex string of odd length {}", digits.len()));
        }
        let nibble = |c: u8, at: usize| -> Result<u8, String> {
            match c {
                b'0'..=b'9' => Ok(c - b'0'),
                b'a'..=b'f' => Ok(c - b'a' + 10),
                b'A'..=b'F' => Ok(c - b'A' + 10),
                _ => Err(format!("{:?} at hex digit {at} is not a hex digit", char::from(c))),
            }
        };
        let mut out = Vec::with_capacity(digits.len() / 2);
        for (i, pair) in digits.chunks_exact(2).enumerate() {
            if let [hi, lo] = *pair {
                out.push(nibble(hi, 2 * i)? << 4 | nibble(lo, 2 * i + 1)?);
            }
        }
        Ok(Bytes(out))
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(v)
    }
}

impl From<&[u8]> for Bytes {
    fn from(v: &[u8]) -> Self {
        Bytes(v.to_vec())
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Bytes::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------------

/// The credentials the device uses with **this** Bootstrap-Server (its own DTLS session, digest §10.5). They
/// go into the Bootstrap-Server's security store: the DTLS handshake looks the PSK key up there, and the
/// Bootstrap-Request's `ep` is checked against the authenticated identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum BootstrapCredential {
    /// Pre-shared key: identity (UTF-8, 1–128 bytes) and key (1–64 bytes).
    Psk {
        /// PSK identity.
        identity: String,
        /// The key.
        key: Bytes,
    },
    /// Raw public key: the device's SubjectPublicKeyInfo (DER).
    Rpk {
        /// SubjectPublicKeyInfo, DER.
        public_key: Bytes,
    },
    /// X.509: a certificate chaining to the Bootstrap-Server's trust store whose subject CN is the endpoint
    /// name.
    X509,
}

impl BootstrapCredential {
    /// The security store's form.
    pub fn to_credential(&self) -> Credential {
        match self {
            BootstrapCredential::Psk { identity, key } => Credential::Psk {
                identity: identity.clone(),
                key: key.0.clone(),
            },
            BootstrapCredential::Rpk { public_key } => Credential::Rpk {
                public_key_der: public_key.0.clone(),
            },
            BootstrapCredential::X509 => Credential::X509,
        }
    }
}

/// The Security Mode and keys written into a Security instance (`/0/x/2`–`/0/x/5`, `/0/x/13`, `/0/x/15`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum SecurityConfig {
    /// Mode 3: plain CoAP.
    #[default]
    NoSec,
    /// Mode 0: PSK identity (`/0/x/3`, UTF-8) and key (`/0/x/5`).
    Psk {
        /// PSK identity.
        identity: String,
        /// The key.
        key: Bytes,
    },
    /// Mode 1: the client's SubjectPublicKeyInfo (`/0/x/3`) and private key (`/0/x/5`), the server's public
    /// key (`/0/x/4`).
    Rpk {
        /// `/0/x/3`
        public_key: Bytes,
        /// `/0/x/5`
        private_key: Bytes,
        /// `/0/x/4`
        server_public_key: Bytes,
    },
    /// Mode 2: the client's certificate (`/0/x/3`) and private key (`/0/x/5`), the server's certificate or
    /// trust anchor (`/0/x/4`), with the Certificate Usage (`/0/x/15`: 0 CA constraint, 1 service certificate
    /// constraint, 2 trust anchor assertion, 3 domain-issued certificate) and Matching Type (`/0/x/13`).
    X509 {
        /// `/0/x/3`, DER.
        certificate: Bytes,
        /// `/0/x/5`, DER.
        private_key: Bytes,
        /// `/0/x/4`, DER.
        server_certificate: Bytes,
        /// `/0/x/15` Certificate Usage (0..=3).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        certificate_usage: Option<u8>,
        /// `/0/x/13` Matching Type (0..=3).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        matching_type: Option<u8>,
    },
}

impl SecurityConfig {
    /// The Security Mode number (`/0/x/2`).
    pub fn mode(&self) -> i64 {
        match self {
            SecurityConfig::Psk { .. } => 0,
            SecurityConfig::Rpk { .. } => 1,
            SecurityConfig::X509 { .. } => 2,
            SecurityConfig::NoSec => 3,
        }
    }

    /// `(/0/x/3, /0/x/4, /0/x/5)`.
    fn keys(&self) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        match self {
            SecurityConfig::NoSec => (Vec::new(), Vec::new(), Vec::new()),
            SecurityConfig::Psk { identity, key } => (identity.as_bytes().to_vec(), Vec::new(), key.0.clone()),
            SecurityConfig::Rpk {
                public_key,
                private_key,
                server_public_key,
            } => (public_key.0.clone(), server_public_key.0.clone(), private_key.0.clone()),
            SecurityConfig::X509 {
                certificate,
                private_key,
                server_certificate,
                ..
            } => (
                certificate.0.clone(),
                server_certificate.0.clone(),
                private_key.0.clone(),
            ),
        }
    }

    fn validate(&self, what: &str) -> Result<(), ConfigError> {
        match self {
            SecurityConfig::NoSec => Ok(()),
            SecurityConfig::Psk { identity, key } => {
                if identity.is_empty() || identity.len() > 128 {
                    return Err(invalid(format!("{what}: a PSK identity has 1 to 128 bytes")));
                }
                if key.0.is_empty() || key.0.len() > 64 {
                    return Err(invalid(format!("{what}: a PSK key has 1 to 64 bytes")));
                }
                Ok(())
            }
            SecurityConfig::Rpk {
                public_key,
                private_key,
                server_public_key,
            } => {
                if public_key.0.is_empty() || private_key.0.is_empty() || server_public_key.0.is_empty() {
                    return Err(invalid(format!(
                        "{what}: RPK mode needs public_key, private_key and server_public_key"
                    )));
                }
                Ok(())
            }
            SecurityConfig::X509 {
                certificate,
                private_key,
                server_certificate,
                certificate_usage,
                matching_type,
            } => {
                if certificate.0.is_empty() || private_key.0.is_empty() || server_certificate.0.is_empty() {
                    return Err(invalid(format!(
                        "{what}: X.509 mode needs certificate, private_key and server_certificate"
                    )));
                }
                if certificate_usage.is_some_and(|u| u > 3) {
                    return Err(invalid(format!("{what}: certificate_usage is 0..=3")));
                }
                if matching_type.is_some_and(|u| u > 3) {
                    return Err(invalid(format!("{what}: matching_type is 0..=3")));
                }
                Ok(())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Accounts
// ---------------------------------------------------------------------------------------------

fn default_lifetime() -> u64 {
    86_400
}

fn default_binding() -> String {
    "U".into()
}

fn yes() -> bool {
    true
}

/// One LwM2M Server account: a Security instance and a Server instance linked by the Short Server ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerAccount {
    /// Short Server ID (`/0/x/10`, `/1/x/0`), 1..=65534.
    pub ssid: u16,
    /// `/0/x/0` LwM2M Server URI, e.g. `coaps://dm.example.com:5684`.
    pub uri: String,
    /// Security Mode and keys.
    #[serde(default)]
    pub security: SecurityConfig,
    /// `/0/x/14` SNI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// `/0/x/16` DTLS/TLS cipher suites to propose (IANA values, e.g. 49320 = TLS_PSK_WITH_AES_128_CCM_8).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ciphersuites: Vec<u16>,
    /// `/1/x/1` Lifetime, seconds (86400).
    #[serde(default = "default_lifetime")]
    pub lifetime: u64,
    /// `/1/x/7` Binding ("U").
    #[serde(default = "default_binding")]
    pub binding: String,
    /// `/1/x/2` Default Minimum Period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_pmin: Option<u64>,
    /// `/1/x/3` Default Maximum Period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_pmax: Option<u64>,
    /// `/1/x/5` Disable Timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_timeout: Option<u64>,
    /// `/1/x/6` Notification Storing When Disabled or Offline (true).
    #[serde(default = "yes")]
    pub notification_storing: bool,
    /// `/1/x/13` Registration Priority Order (BsR-5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_priority_order: Option<u64>,
    /// `/1/x/14` Initial Registration Delay Timer, seconds (BsR-6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_registration_delay: Option<u64>,
    /// `/1/x/15` Registration Failure Block (BsR-6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_failure_block: Option<bool>,
    /// `/1/x/16` Bootstrap on Registration Failure (BsR-3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_on_registration_failure: Option<bool>,
    /// `/1/x/17` Communication Retry Count (BsR-4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communication_retry_count: Option<u64>,
    /// `/1/x/18` Communication Retry Timer, seconds (BsR-4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communication_retry_timer: Option<u64>,
    /// `/1/x/19` Communication Sequence Delay Timer, seconds (BsR-4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communication_sequence_delay_timer: Option<u64>,
    /// `/1/x/20` Communication Sequence Retry Count (BsR-4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communication_sequence_retry_count: Option<u64>,
    /// `/1/x/21` Trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<bool>,
    /// `/1/x/22` Preferred Transport.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_transport: Option<String>,
    /// `/1/x/23` Mute Send (absent means muted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mute_send: Option<bool>,
    /// The Security instance id to use when the account is created (default: the lowest free one). An
    /// existing account with the same SSID keeps its instance ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_instance: Option<u16>,
    /// The Server instance id to use when the account is created (default: the lowest free one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_instance: Option<u16>,
}

impl ServerAccount {
    /// A NoSec account with lifetime `lifetime`, binding "U", everything else default.
    pub fn new(ssid: u16, uri: impl Into<String>, lifetime: u64) -> ServerAccount {
        ServerAccount {
            ssid,
            uri: uri.into(),
            security: SecurityConfig::NoSec,
            sni: None,
            ciphersuites: Vec::new(),
            lifetime,
            binding: default_binding(),
            default_pmin: None,
            default_pmax: None,
            disable_timeout: None,
            notification_storing: true,
            registration_priority_order: None,
            initial_registration_delay: None,
            registration_failure_block: None,
            bootstrap_on_registration_failure: None,
            communication_retry_count: None,
            communication_retry_timer: None,
            communication_sequence_delay_timer: None,
            communication_sequence_retry_count: None,
            trigger: None,
            preferred_transport: None,
            mute_send: None,
            security_instance: None,
            server_instance: None,
        }
    }

    /// The Security instance (`/0/{iid}`) of this account.
    pub fn security_node(&self, iid: u16) -> InstanceNode {
        let (a, b, c) = self.security.keys();
        let mut r = vec![
            ResourceNode::single(0, Value::String(self.uri.clone())),
            ResourceNode::single(1, Value::Boolean(false)),
            ResourceNode::single(2, Value::Integer(self.security.mode())),
            ResourceNode::single(3, Value::Opaque(a)),
            ResourceNode::single(4, Value::Opaque(b)),
            ResourceNode::single(5, Value::Opaque(c)),
            ResourceNode::single(10, Value::Integer(i64::from(self.ssid))),
        ];
        push_security_options(&mut r, &self.security, self.sni.as_deref(), &self.ciphersuites);
        InstanceNode::new(iid, r)
    }

    /// The Server instance (`/1/{iid}`) of this account. `last_bootstrapped` sets `/1/x/12`; `reset_alert`
    /// writes 0 into `/1/x/11` (clearing the TLS-DTLS alert code that made the account stale).
    pub fn server_node(&self, iid: u16, last_bootstrapped: Option<i64>, reset_alert: bool) -> InstanceNode {
        let int = |v: u64| Value::Integer(i64::try_from(v).unwrap_or(i64::MAX));
        let mut r = vec![
            ResourceNode::single(0, Value::Integer(i64::from(self.ssid))),
            ResourceNode::single(1, int(self.lifetime)),
            ResourceNode::single(6, Value::Boolean(self.notification_storing)),
            ResourceNode::single(7, Value::String(self.binding.clone())),
        ];
        let mut opt = |rid: u16, v: Option<Value>| {
            if let Some(v) = v {
                r.push(ResourceNode::single(rid, v));
            }
        };
        opt(2, self.default_pmin.map(int));
        opt(3, self.default_pmax.map(int));
        opt(5, self.disable_timeout.map(int));
        opt(11, reset_alert.then_some(Value::UnsignedInteger(0)));
        opt(12, last_bootstrapped.map(Value::Time));
        opt(13, self.registration_priority_order.map(Value::UnsignedInteger));
        opt(14, self.initial_registration_delay.map(Value::UnsignedInteger));
        opt(15, self.registration_failure_block.map(Value::Boolean));
        opt(16, self.bootstrap_on_registration_failure.map(Value::Boolean));
        opt(17, self.communication_retry_count.map(Value::UnsignedInteger));
        opt(18, self.communication_retry_timer.map(Value::UnsignedInteger));
        opt(19, self.communication_sequence_delay_timer.map(Value::UnsignedInteger));
        opt(20, self.communication_sequence_retry_count.map(Value::UnsignedInteger));
        opt(21, self.trigger.map(Value::Boolean));
        opt(22, self.preferred_transport.clone().map(Value::String));
        opt(23, self.mute_send.map(Value::Boolean));
        InstanceNode::new(iid, r)
    }

    /// The Server resources this account configures (rid → value), for comparing with what Bootstrap-Read
    /// returned (BsR-7: an account whose values differ is out of date). Excludes 11 and 12, which the
    /// client maintains.
    pub fn configured_server_values(&self) -> BTreeMap<u16, Value> {
        self.server_node(0, None, false)
            .resources
            .into_iter()
            .filter_map(|(rid, r)| match r.value {
                ResourceValue::Single(v) => Some((rid, v)),
                ResourceValue::Multiple(_) => None,
            })
            .collect()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let what = format!("server account ssid {}", self.ssid);
        if !(1..=65534).contains(&self.ssid) {
            return Err(invalid(format!(
                "{what}: the Short Server ID must be 1..=65534 (0 and 65535 are reserved)"
            )));
        }
        validate_uri(&self.uri, &what)?;
        self.security.validate(&what)?;
        if self.binding.is_empty() || !self.binding.chars().all(|c| "UTSNQ".contains(c)) {
            return Err(invalid(format!(
                "{what}: binding {:?} must be made of the letters U, T, S, N (Q in 1.0)",
                self.binding
            )));
        }
        if let Some(t) = &self.preferred_transport {
            if t.len() != 1 || !"UTSN".contains(t.as_str()) {
                return Err(invalid(format!("{what}: preferred_transport is one of U, T, S, N")));
            }
        }
        for iid in [self.security_instance, self.server_instance].into_iter().flatten() {
            if iid == MAX_ID {
                return Err(invalid(format!("{what}: instance id 65535 is reserved")));
            }
        }
        Ok(())
    }
}

fn push_security_options(r: &mut Vec<ResourceNode>, security: &SecurityConfig, sni: Option<&str>, suites: &[u16]) {
    if let SecurityConfig::X509 {
        certificate_usage,
        matching_type,
        ..
    } = security
    {
        if let Some(m) = matching_type {
            r.push(ResourceNode::single(13, Value::UnsignedInteger(u64::from(*m))));
        }
        if let Some(u) = certificate_usage {
            r.push(ResourceNode::single(15, Value::UnsignedInteger(u64::from(*u))));
        }
    }
    if let Some(s) = sni {
        r.push(ResourceNode::single(14, Value::String(s.to_string())));
    }
    if !suites.is_empty() {
        r.push(ResourceNode::multiple(
            16,
            (0u16..)
                .zip(suites)
                .map(|(i, s)| (i, Value::UnsignedInteger(u64::from(*s)))),
        ));
    }
}

fn validate_uri(uri: &str, what: &str) -> Result<(), ConfigError> {
    let scheme = uri.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("coap" | "coaps" | "coap+tcp" | "coaps+tcp") if uri.len() <= 255 => Ok(()),
        Some("coap" | "coaps" | "coap+tcp" | "coaps+tcp") => {
            Err(invalid(format!("{what}: the URI has over 255 bytes")))
        }
        _ if uri.starts_with("sms:") || uri.starts_with("lwm2m+sms:") => Ok(()),
        _ => Err(invalid(format!(
            "{what}: URI {uri:?} must start with coap://, coaps://, coap+tcp:// or coaps+tcp://"
        ))),
    }
}

/// A rewrite of the Bootstrap-Server account itself (the Security instance with `/0/x/1` = true).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapAccount {
    /// `/0/x/0` the Bootstrap-Server URI.
    pub uri: String,
    /// Security Mode and keys the device uses with the Bootstrap-Server.
    #[serde(default)]
    pub security: SecurityConfig,
    /// `/0/x/11` Client Hold Off Time, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_hold_off: Option<u64>,
    /// `/0/x/12` Bootstrap-Server Account Timeout, seconds (0 = keep forever).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_timeout: Option<u64>,
    /// `/0/x/14` SNI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// `/0/x/16` cipher suites (IANA values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ciphersuites: Vec<u16>,
}

impl BootstrapAccount {
    /// The Security instance (`/0/{iid}`) of the Bootstrap-Server account.
    pub fn security_node(&self, iid: u16) -> InstanceNode {
        let (a, b, c) = self.security.keys();
        let int = |v: u64| Value::Integer(i64::try_from(v).unwrap_or(i64::MAX));
        let mut r = vec![
            ResourceNode::single(0, Value::String(self.uri.clone())),
            ResourceNode::single(1, Value::Boolean(true)),
            ResourceNode::single(2, Value::Integer(self.security.mode())),
            ResourceNode::single(3, Value::Opaque(a)),
            ResourceNode::single(4, Value::Opaque(b)),
            ResourceNode::single(5, Value::Opaque(c)),
        ];
        if let Some(v) = self.client_hold_off {
            r.push(ResourceNode::single(11, int(v)));
        }
        if let Some(v) = self.account_timeout {
            r.push(ResourceNode::single(12, int(v)));
        }
        push_security_options(&mut r, &self.security, self.sni.as_deref(), &self.ciphersuites);
        InstanceNode::new(iid, r)
    }
}

// ---------------------------------------------------------------------------------------------
// Access Control
// ---------------------------------------------------------------------------------------------

/// Access rights (Object 2 resource 2 values): 1 Read, 2 Write, 4 Execute, 8 Delete, 16 Create. In files
/// either a number or letters (`"RWE"`, `"RWEDC"`, `""` for none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, PartialOrd, Ord)]
pub struct Rights(pub u16);

impl Rights {
    /// No right.
    pub const NONE: Rights = Rights(0);
    /// Read, Observe, Write-Attributes.
    pub const READ: Rights = Rights(1);
    /// Write.
    pub const WRITE: Rights = Rights(2);
    /// Execute.
    pub const EXECUTE: Rights = Rights(4);
    /// Delete.
    pub const DELETE: Rights = Rights(8);
    /// Create (object-level ACL instances).
    pub const CREATE: Rights = Rights(16);
    /// Read, Write, Execute, Delete.
    pub const FULL_INSTANCE: Rights = Rights(15);

    /// The letters (`RWEDC` order), or the number when reserved bits are set.
    pub fn letters(self) -> Option<String> {
        if self.0 & !31 != 0 {
            return None;
        }
        Some(
            [(1, 'R'), (2, 'W'), (4, 'E'), (8, 'D'), (16, 'C')]
                .iter()
                .filter(|(b, _)| self.0 & b != 0)
                .map(|(_, c)| *c)
                .collect(),
        )
    }

    /// Parses letters (any order, case-insensitive).
    pub fn from_letters(s: &str) -> Result<Rights, String> {
        let mut v = 0u16;
        for c in s.chars() {
            v |= match c.to_ascii_uppercase() {
                'R' => 1,
                'W' => 2,
                'E' => 4,
                'D' => 8,
                'C' => 16,
                other => return Err(format!("{other:?} is not an access right (use R, W, E, D, C)")),
            };
        }
        Ok(Rights(v))
    }
}

impl Serialize for Rights {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.letters() {
            Some(l) => s.serialize_str(&l),
            None => s.serialize_u16(self.0),
        }
    }
}

impl<'de> Deserialize<'de> for Rights {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(u16),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => Ok(Rights(n)),
            Raw::Text(t) => Rights::from_letters(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// One ACL entry: the rights of server `ssid` (0 = the default for servers without an entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclRight {
    /// The server (0 = default entry).
    pub ssid: u16,
    /// Its rights.
    pub rights: Rights,
}

fn max_id() -> u16 {
    MAX_ID
}

/// One Access Control (Object 2) instance (digest §7.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclEntry {
    /// `/2/x/0` the governed Object ID.
    pub object_id: u16,
    /// `/2/x/1` the governed instance; 65535 = the object itself (Create right).
    pub instance_id: u16,
    /// `/2/x/2` the entries, by SSID.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rights: Vec<AclRight>,
    /// `/2/x/3` Access Control Owner (65535 = managed by bootstrap only).
    #[serde(default = "max_id")]
    pub owner: u16,
    /// The ACL instance id (`/2/{id}`). In a configuration: the id to use when the instance is created
    /// (default: an existing instance for the same target, else the lowest free id). In an
    /// [`AclState`](crate::session::SessionEvent::AclState) report: the id on the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl_instance: Option<u16>,
}

impl AclEntry {
    /// An ACL instance for `/object_id/instance_id` owned by `owner`, without entries.
    pub fn new(object_id: u16, instance_id: u16, owner: u16) -> AclEntry {
        AclEntry {
            object_id,
            instance_id,
            rights: Vec::new(),
            owner,
            acl_instance: None,
        }
    }

    /// Adds (or replaces) the entry of `ssid`.
    pub fn with(mut self, ssid: u16, rights: Rights) -> AclEntry {
        self.rights.retain(|r| r.ssid != ssid);
        self.rights.push(AclRight { ssid, rights });
        self.rights.sort_by_key(|r| r.ssid);
        self
    }

    /// The entries as a map (SSID → rights).
    pub fn rights_map(&self) -> BTreeMap<u16, Rights> {
        self.rights.iter().map(|r| (r.ssid, r.rights)).collect()
    }

    /// Same target, entries and owner (the instance id is not compared).
    pub fn same_acl(&self, other: &AclEntry) -> bool {
        self.object_id == other.object_id
            && self.instance_id == other.instance_id
            && self.owner == other.owner
            && self.rights_map() == other.rights_map()
    }

    /// The Access Control instance (`/2/{iid}`).
    pub fn to_node(&self, iid: u16) -> InstanceNode {
        let mut r = vec![
            ResourceNode::single(0, Value::Integer(i64::from(self.object_id))),
            ResourceNode::single(1, Value::Integer(i64::from(self.instance_id))),
            ResourceNode::single(3, Value::Integer(i64::from(self.owner))),
        ];
        let map = self.rights_map();
        if !map.is_empty() {
            r.push(ResourceNode::multiple(
                2,
                map.into_iter().map(|(s, v)| (s, Value::Integer(i64::from(v.0)))),
            ));
        }
        InstanceNode::new(iid, r)
    }

    /// Reads an Access Control instance (as Bootstrap-Read returns it); `None` without Object ID or
    /// Object Instance ID. A missing owner reads as 65535.
    pub fn from_node(node: &InstanceNode) -> Option<AclEntry> {
        let u16_of = |rid: u16| match node.resources.get(&rid).map(|r| &r.value) {
            Some(ResourceValue::Single(v)) => value_u64(v).and_then(|v| u16::try_from(v).ok()),
            _ => None,
        };
        let rights = match node.resources.get(&2).map(|r| &r.value) {
            Some(ResourceValue::Multiple(m)) => m
                .iter()
                .filter_map(|(s, v)| {
                    let v = value_u64(v).and_then(|v| u16::try_from(v).ok())?;
                    Some(AclRight {
                        ssid: *s,
                        rights: Rights(v),
                    })
                })
                .collect(),
            Some(ResourceValue::Single(v)) => value_u64(v)
                .and_then(|v| u16::try_from(v).ok())
                .map(|v| {
                    vec![AclRight {
                        ssid: 0,
                        rights: Rights(v),
                    }]
                })
                .unwrap_or_default(),
            None => Vec::new(),
        };
        Some(AclEntry {
            object_id: u16_of(0)?,
            instance_id: u16_of(1)?,
            rights,
            owner: u16_of(3).unwrap_or(MAX_ID),
            acl_instance: Some(node.id),
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let what = format!("ACL for /{}/{}", self.object_id, self.instance_id);
        if self.object_id == 0 || self.object_id == MAX_ID {
            return Err(invalid(format!("{what}: object_id must be 1..=65534")));
        }
        if self.acl_instance == Some(MAX_ID) {
            return Err(invalid(format!("{what}: ACL instance id 65535 is reserved")));
        }
        let mut seen = std::collections::BTreeSet::new();
        for r in &self.rights {
            if !seen.insert(r.ssid) {
                return Err(invalid(format!("{what}: two entries for ssid {}", r.ssid)));
            }
            if r.ssid == MAX_ID {
                return Err(invalid(format!("{what}: ssid 65535 is reserved")));
            }
        }
        Ok(())
    }
}

/// A numeric value as `u64` (Integer, Unsigned Integer, Time, integral Float).
pub(crate) fn value_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Integer(i) | Value::Time(i) => u64::try_from(*i).ok(),
        Value::UnsignedInteger(u) => Some(*u),
        Value::Float(f) if f.fract() == 0.0 && *f >= 0.0 && *f < 1.8e19 => Some(*f as u64),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Other writes
// ---------------------------------------------------------------------------------------------

/// A Bootstrap-Write of any object, instance, resource or resource instance, given as JSON-ish data:
///
/// - `/o/i/r/ri` or a single `/o/i/r`: a scalar (string, number, boolean);
/// - a multiple `/o/i/r`: an object `{"riid": scalar}` or an array (instance ids 0, 1, ...);
/// - `/o/i`: an object `{"rid": resource}`;
/// - `/o`: an object `{"iid": instance}`.
///
/// Scalars are typed by the object models: Opaque takes `{"base64": "AQID"}`, `{"hex": "010203"}`,
/// `"hex:010203"` or any other string (its UTF-8 bytes), Objlnk `"3:0"`, Time a number of seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraWrite {
    /// The target path.
    pub path: String,
    /// The content.
    pub value: serde_json::Value,
}

impl ExtraWrite {
    /// The path and the node to write, typed with `models`.
    pub fn to_node(&self, models: &dyn Models) -> Result<(Path, Node), ConfigError> {
        let path: Path = self
            .path
            .parse()
            .map_err(|e| invalid(format!("write {}: {e}", self.path)))?;
        json_to_node(&path, &self.value, models)
            .map(|n| (path, n))
            .map_err(|e| invalid(format!("write {}: {e}", self.path)))
    }
}

fn key_id(k: &str, what: &str) -> Result<u16, String> {
    k.parse::<u16>()
        .map_err(|_| format!("{what} id {k:?} is not a number 0..65535"))
}

/// Converts JSON-ish data into the node at `path` (see [`ExtraWrite`]).
pub fn json_to_node(path: &Path, v: &serde_json::Value, models: &dyn Models) -> Result<Node, String> {
    let ids = path.ids();
    match *ids {
        [] => Err("the root path cannot be written".into()),
        [oid] => {
            let map = v
                .as_object()
                .ok_or("an object write needs a JSON object {\"instance id\": {...}}")?;
            let mut instances = Vec::new();
            for (k, iv) in map {
                let iid = key_id(k, "instance")?;
                if iid == MAX_ID {
                    return Err("instance id 65535 is reserved".into());
                }
                instances.push(json_instance(oid, iid, iv, models)?);
            }
            Ok(Node::Object(ObjectNode::new(oid, instances)))
        }
        [oid, iid] => Ok(Node::Instance(json_instance(oid, iid, v, models)?)),
        [oid, _, rid] => Ok(Node::Resource(json_resource(oid, rid, v, models)?)),
        [oid, _, rid, riid] => Ok(Node::ResourceInstance {
            id: riid,
            value: json_scalar(oid, rid, v, models)?,
        }),
        _ => Err("invalid path".into()),
    }
}

fn json_instance(oid: u16, iid: u16, v: &serde_json::Value, models: &dyn Models) -> Result<InstanceNode, String> {
    let map = v
        .as_object()
        .ok_or("an instance needs a JSON object {\"resource id\": value}")?;
    let mut resources = Vec::new();
    for (k, rv) in map {
        let rid = key_id(k, "resource")?;
        resources.push(json_resource(oid, rid, rv, models)?);
    }
    Ok(InstanceNode::new(iid, resources))
}

fn json_resource(oid: u16, rid: u16, v: &serde_json::Value, models: &dyn Models) -> Result<ResourceNode, String> {
    let multiple = models.resource(oid, rid).map(|m| m.multiple);
    match v {
        serde_json::Value::Object(map) if multiple != Some(false) && opaque_form(map).is_none() => {
            let mut out = BTreeMap::new();
            for (k, iv) in map {
                out.insert(key_id(k, "resource instance")?, json_scalar(oid, rid, iv, models)?);
            }
            Ok(ResourceNode::multiple(rid, out))
        }
        serde_json::Value::Array(items) if multiple != Some(false) => {
            let mut out = BTreeMap::new();
            for (i, iv) in (0u16..).zip(items) {
                out.insert(i, json_scalar(oid, rid, iv, models)?);
            }
            Ok(ResourceNode::multiple(rid, out))
        }
        _ if multiple == Some(true) => Err(format!(
            "resource {rid} is multiple: give an object {{\"instance id\": value}} or an array"
        )),
        scalar => Ok(ResourceNode::single(rid, json_scalar(oid, rid, scalar, models)?)),
    }
}

/// `{"base64": ".."}` or `{"hex": ".."}`: an Opaque value.
fn opaque_form(map: &serde_json::Map<String, serde_json::Value>) -> Option<Result<Vec<u8>, String>> {
    use base64::Engine;
    if map.len() != 1 {
        return None;
    }
    let (k, v) = map.iter().next()?;
    let text = v.as_str()?;
    match k.as_str() {
        "base64" => Some(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| format!("invalid base64: {e}")),
        ),
        "hex" => Some(Bytes::from_hex(text).map(|b| b.0)),
        _ => None,
    }
}

fn json_scalar(oid: u16, rid: u16, v: &serde_json::Value, models: &dyn Models) -> Result<Value, String> {
    use serde_json::Value as J;
    let ty = models.resource(oid, rid).map(|m| m.data_type);
    let wrong = |want: &str| format!("resource /{oid}/x/{rid}: expected {want}, found {v}");
    if let J::Object(map) = v {
        if let Some(bytes) = opaque_form(map) {
            return match ty {
                None | Some(DataType::Opaque) => Ok(Value::Opaque(
                    bytes.map_err(|e| format!("resource /{oid}/x/{rid}: {e}"))?,
                )),
                Some(t) => Err(wrong(&format!("a {t} value"))),
            };
        }
    }
    Ok(match (ty, v) {
        (_, J::Null | J::Array(_) | J::Object(_)) => return Err(wrong("a string, number or boolean")),
        (Some(DataType::String), J::String(s)) => Value::String(s.clone()),
        (Some(DataType::Corelnk), J::String(s)) => Value::Corelnk(s.clone()),
        (Some(DataType::Opaque), J::String(s)) => match s.strip_prefix("hex:") {
            Some(h) => Value::Opaque(Bytes::from_hex(h)?.0),
            None => Value::Opaque(s.as_bytes().to_vec()),
        },
        (Some(DataType::Objlnk), J::String(s)) => Value::Objlnk(
            s.parse::<ObjLink>()
                .map_err(|e| format!("resource /{oid}/x/{rid}: {e}"))?,
        ),
        (Some(DataType::Boolean), J::Bool(b)) => Value::Boolean(*b),
        (Some(DataType::Integer), J::Number(n)) => Value::Integer(n.as_i64().ok_or_else(|| wrong("an integer"))?),
        (Some(DataType::Time), J::Number(n)) => Value::Time(n.as_i64().ok_or_else(|| wrong("an integer time"))?),
        (Some(DataType::UnsignedInteger), J::Number(n)) => {
            Value::UnsignedInteger(n.as_u64().ok_or_else(|| wrong("an unsigned integer"))?)
        }
        (Some(DataType::Float), J::Number(n)) => Value::Float(n.as_f64().ok_or_else(|| wrong("a number"))?),
        (Some(t), _) => return Err(wrong(&format!("a {t} value"))),
        (None, J::String(s)) => Value::String(s.clone()),
        (None, J::Bool(b)) => Value::Boolean(*b),
        (None, J::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Value::Integer(i)
            } else if let Some(u) = n.as_u64() {
                Value::UnsignedInteger(u)
            } else {
                Value::Float(n.as_f64().ok_or_else(|| wrong("a number"))?)
            }
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Policies
// ---------------------------------------------------------------------------------------------

fn default_ttl() -> Option<u64> {
    None
}

/// BsR-7: how existing server accounts found on the device (Bootstrap-Discover + Bootstrap-Read of `/1`)
/// are judged and repaired. Only used when [`BootstrapConfig::delete_before_write`] is false.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RepairPolicy {
    /// Stale accounts whose SSID is configured are rewritten in place (same instance ids, so ACLs and
    /// instances the server owns survive; `/1/x/11` is reset to 0). When false they are deleted and written
    /// anew (the client then "unbootstraps" the server: its observations and owned instances go).
    pub rewrite_stale_accounts: bool,
    /// Accounts whose SSID is not configured are deleted.
    pub delete_unknown_ssids: bool,
    /// Accounts whose SSID is not configured but whose URI is not any configured server URI are deleted
    /// (even when `delete_unknown_ssids` is false).
    pub delete_unconfigured_uris: bool,
    /// A non-zero `/1/x/11` TLS-DTLS Alert Code makes a configured account stale.
    pub alert_code_is_stale: bool,
    /// A `/1/x/12` Last Bootstrapped older than this many seconds makes a configured account stale.
    #[serde(default = "default_ttl", skip_serializing_if = "Option::is_none")]
    pub last_bootstrapped_older_than_s: Option<u64>,
    /// A configured account whose Server resources (read back with Bootstrap-Read) differ from the
    /// configuration is rewritten.
    pub rewrite_differing: bool,
}

impl Default for RepairPolicy {
    fn default() -> Self {
        RepairPolicy {
            rewrite_stale_accounts: true,
            delete_unknown_ssids: true,
            delete_unconfigured_uris: true,
            alert_code_is_stale: true,
            last_bootstrapped_older_than_s: None,
            rewrite_differing: true,
        }
    }
}

/// What the session does when Bootstrap-Finish is answered 4.06 Not Acceptable (the client found the
/// configuration inconsistent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFinishRejected {
    /// End the session as failed (the client restores its Bootstrap-Server account and retries later).
    #[default]
    Fail,
    /// Fix by starting over once: `DELETE /`, write the whole configuration again, Finish again; fail if
    /// that is refused too.
    RewriteAll,
}

mod format_name {
    use lwm2m_core::ContentFormat;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<ContentFormat>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(f) => s.serialize_str(f.name()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ContentFormat>, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map(Some).map_err(serde::de::Error::custom)
    }
}

/// Everything the Bootstrap-Server does for one endpoint (or for unknown endpoints, as the default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapConfig {
    /// The device's credentials with this Bootstrap-Server (DTLS); `None` = NoSec (plain CoAP only).
    /// Ignored in the default configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<BootstrapCredential>,
    /// LwM2M Server accounts to provision.
    pub servers: Vec<ServerAccount>,
    /// Rewrites the Bootstrap-Server account itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap_account: Option<BootstrapAccount>,
    /// Access Control instances to write.
    pub acls: Vec<AclEntry>,
    /// With several servers and no `acls`, generate ACLs: each server owns its own Server instance; every
    /// other instance the device has (Bootstrap-Discover) is owned by the first server (lowest priority
    /// order, then first listed) with full rights for every server through the default entry; every
    /// object gets an object-level instance granting Create to every server.
    pub generate_acls: bool,
    /// Writes to any object, after the accounts and ACLs.
    pub writes: Vec<ExtraWrite>,
    /// Explicit Bootstrap-Deletes (`/`, `/o`, `/o/i`), sent before the writes.
    pub deletes: Vec<String>,
    /// Start with `DELETE /` and write the whole configuration (no BsR-7 analysis).
    pub delete_before_write: bool,
    /// The content format of the writes, overriding the client's `pct` (e.g. `"tlv"`, `"senml-cbor"`).
    #[serde(with = "format_name", skip_serializing_if = "Option::is_none")]
    pub content_format: Option<ContentFormat>,
    /// BsR-1: read `/2` (the complete Access Control state) with Bootstrap-Read.
    pub read_acls: bool,
    /// Set `/1/x/12` Last Bootstrapped to the current time in every Server instance written.
    pub set_last_bootstrapped: bool,
    /// BsR-7 policy.
    pub repair: RepairPolicy,
    /// What to do on 4.06 at Bootstrap-Finish.
    pub on_finish_rejected: OnFinishRejected,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig {
            credentials: None,
            servers: Vec::new(),
            bootstrap_account: None,
            acls: Vec::new(),
            generate_acls: true,
            writes: Vec::new(),
            deletes: Vec::new(),
            delete_before_write: false,
            content_format: None,
            read_acls: true,
            set_last_bootstrapped: true,
            repair: RepairPolicy::default(),
            on_finish_rejected: OnFinishRejected::Fail,
        }
    }
}

impl BootstrapConfig {
    /// A configuration provisioning `servers`, everything else default.
    pub fn with_servers(servers: Vec<ServerAccount>) -> BootstrapConfig {
        BootstrapConfig {
            servers,
            ..BootstrapConfig::default()
        }
    }

    /// Checks the configuration: SSIDs valid and unique, URIs and keys well-formed, pinned instance ids
    /// distinct, ACLs valid, writes convertible with `models`, delete paths at most instance level, the
    /// content format able to carry instances.
    pub fn validate_with(&self, models: &dyn Models) -> Result<(), ConfigError> {
        if let Some(BootstrapCredential::Psk { identity, key }) = &self.credentials {
            if identity.is_empty() || identity.len() > 128 || key.0.is_empty() || key.0.len() > 64 {
                return Err(invalid(
                    "credentials: a PSK identity has 1 to 128 bytes and a key 1 to 64 bytes",
                ));
            }
        }
        if let Some(BootstrapCredential::Rpk { public_key }) = &self.credentials {
            if public_key.0.is_empty() {
                return Err(invalid("credentials: the raw public key must not be empty"));
            }
        }
        let mut ssids = std::collections::BTreeSet::new();
        let mut sec_iids = std::collections::BTreeSet::new();
        let mut srv_iids = std::collections::BTreeSet::new();
        for s in &self.servers {
            s.validate()?;
            if !ssids.insert(s.ssid) {
                return Err(invalid(format!("two server accounts use ssid {}", s.ssid)));
            }
            if let Some(i) = s.security_instance {
                if !sec_iids.insert(i) {
                    return Err(invalid(format!("two accounts pin Security instance /0/{i}")));
                }
            }
            if let Some(i) = s.server_instance {
                if !srv_iids.insert(i) {
                    return Err(invalid(format!("two accounts pin Server instance /1/{i}")));
                }
            }
        }
        if let Some(bs) = &self.bootstrap_account {
            validate_uri(&bs.uri, "bootstrap account")?;
            bs.security.validate("bootstrap account")?;
        }
        let mut acl_iids = std::collections::BTreeSet::new();
        for a in &self.acls {
            a.validate()?;
            if let Some(i) = a.acl_instance {
                if !acl_iids.insert(i) {
                    return Err(invalid(format!("two ACL entries pin /2/{i}")));
                }
            }
        }
        for w in &self.writes {
            w.to_node(models)?;
        }
        for d in &self.deletes {
            let p: Path = d.parse().map_err(|e| invalid(format!("delete {d}: {e}")))?;
            if p.len() > 2 {
                return Err(invalid(format!("delete {d}: Bootstrap-Delete takes /, /o or /o/i")));
            }
        }
        if let Some(f) = self.content_format {
            if !can_carry_instances(f) {
                return Err(invalid(format!(
                    "content_format {f} cannot carry instances: use tlv, senml-cbor, senml-json or lwm2m-json"
                )));
            }
        }
        Ok(())
    }

    /// [`BootstrapConfig::validate_with`] with the built-in object models.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_with(&lwm2m_core::ModelRegistry::builtin())
    }
}

/// Formats a Bootstrap-Write of an object or instance can use: TLV, SenML CBOR/JSON, LwM2M JSON.
pub fn can_carry_instances(f: ContentFormat) -> bool {
    matches!(
        f,
        ContentFormat::Tlv | ContentFormat::SenmlCbor | ContentFormat::SenmlJson | ContentFormat::Lwm2mJson
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use lwm2m_core::ModelRegistry;
    use proptest::prelude::*;

    fn models() -> ModelRegistry {
        ModelRegistry::builtin()
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let b = Bytes(vec![0x00, 0x0a, 0xff, 0x10]);
        assert_eq!(b.to_hex(), "000aff10");
        assert_eq!(Bytes::from_hex("000AFF10").unwrap(), b);
        assert_eq!(Bytes::from_hex("hex:00:0a ff10").unwrap(), b);
        assert!(Bytes::from_hex("abc").unwrap_err().contains("odd length"));
        assert!(Bytes::from_hex("zz").unwrap_err().contains("not a hex digit"));
        assert_eq!(format!("{b:?}"), "Bytes(4 bytes)");
    }

    proptest! {
        #[test]
        fn hex_round_trips(v in proptest::collection::vec(any::<u8>(), 0..64)) {
            let b = Bytes(v);
            prop_assert_eq!(Bytes::from_hex(&b.to_hex()).unwrap(), b);
        }

        #[test]
        fn hex_never_panics(s in ".{0,40}") {
            let _ = Bytes::from_hex(&s);
        }

        #[test]
        fn rights_letters_round_trip(v in 0u16..32) {
            let r = Rights(v);
            prop_assert_eq!(Rights::from_letters(&r.letters().unwrap()).unwrap(), r);
        }
    }

    #[test]
    fn rights_parse() {
        assert_eq!(Rights::from_letters("rwe").unwrap(), Rights(7));
        assert_eq!(Rights::from_letters("").unwrap(), Rights::NONE);
        assert!(Rights::from_letters("X").unwrap_err().contains("'X'"));
        assert_eq!(Rights(64).letters(), None);
        let json: Rights = serde_json::from_str("\"RWEDC\"").unwrap();
        assert_eq!(json, Rights(31));
        let json: Rights = serde_json::from_str("9").unwrap();
        assert_eq!(json, Rights(9));
        assert_eq!(serde_json::to_string(&Rights(64)).unwrap(), "64");
    }

    #[test]
    fn server_nodes_carry_all_configured_resources() {
        let mut a = ServerAccount::new(101, "coaps://dm.example.com", 300);
        a.security = SecurityConfig::Psk {
            identity: "dev".into(),
            key: Bytes(vec![1; 16]),
        };
        a.registration_priority_order = Some(1);
        a.initial_registration_delay = Some(5);
        a.communication_sequence_retry_count = Some(2);
        a.mute_send = Some(false);
        a.ciphersuites = vec![49320];
        let s = a.security_node(3);
        assert_eq!(s.id, 3);
        assert_eq!(
            s.resources[&3].value,
            ResourceValue::Single(Value::Opaque(b"dev".to_vec()))
        );
        assert_eq!(s.resources[&2].value, ResourceValue::Single(Value::Integer(0)));
        assert_eq!(s.resources[&10].value, ResourceValue::Single(Value::Integer(101)));
        assert!(s.resources[&16].is_multiple());
        let srv = a.server_node(4, Some(1_700_000_000), true);
        assert_eq!(
            srv.resources[&13].value,
            ResourceValue::Single(Value::UnsignedInteger(1))
        );
        assert_eq!(
            srv.resources[&11].value,
            ResourceValue::Single(Value::UnsignedInteger(0))
        );
        assert_eq!(
            srv.resources[&12].value,
            ResourceValue::Single(Value::Time(1_700_000_000))
        );
        assert_eq!(srv.resources[&23].value, ResourceValue::Single(Value::Boolean(false)));
        assert!(!srv.resources.contains_key(&15));
        let cfgd = a.configured_server_values();
        assert!(!cfgd.contains_key(&11) && !cfgd.contains_key(&12));
        assert_eq!(cfgd[&1], Value::Integer(300));
    }

    #[test]
    fn acl_node_round_trip() {
        let a = AclEntry::new(3, 0, 101).with(0, Rights::READ).with(102, Rights(7));
        let node = a.to_node(5);
        let back = AclEntry::from_node(&node).unwrap();
        assert_eq!(back.acl_instance, Some(5));
        assert!(back.same_acl(&a));
        assert!(!back.same_acl(&AclEntry::new(3, 0, 102)));
        // Missing target → None.
        assert!(AclEntry::from_node(&InstanceNode::new(1, [])).is_none());
    }

    #[test]
    fn json_writes_are_typed_by_the_models() {
        let m = models();
        let w = ExtraWrite {
            path: "/3/0".into(),
            value: serde_json::json!({"14": "+02:00", "13": 1700000000}),
        };
        let (p, n) = w.to_node(&m).unwrap();
        assert_eq!(p, Path::instance(3, 0));
        let Node::Instance(i) = n else { panic!() };
        assert_eq!(
            i.resources[&13].value,
            ResourceValue::Single(Value::Time(1_700_000_000))
        );
        // Multiple resources from arrays and objects; opaque from hex.
        let n = json_to_node(
            &Path::instance(0, 4),
            &serde_json::json!({"16": [49320, 49326], "5": "hex:0102"}),
            &m,
        )
        .unwrap();
        let Node::Instance(i) = n else { panic!() };
        assert_eq!(
            i.resources[&16].value,
            ResourceValue::Multiple(BTreeMap::from([
                (0, Value::UnsignedInteger(49320)),
                (1, Value::UnsignedInteger(49326))
            ]))
        );
        assert_eq!(i.resources[&5].value, ResourceValue::Single(Value::Opaque(vec![1, 2])));
        for form in [
            serde_json::json!({"base64": "AQI="}),
            serde_json::json!({"hex": "0102"}),
        ] {
            let n = json_to_node(&Path::resource(0, 4, 3), &form, &m).unwrap();
            assert_eq!(n, Node::Resource(ResourceNode::single(3, Value::Opaque(vec![1, 2]))));
        }
        let e = json_to_node(&Path::resource(0, 4, 3), &serde_json::json!({"base64": "!"}), &m).unwrap_err();
        assert!(e.contains("invalid base64"), "{e}");
        let e = json_to_node(&Path::resource(3, 0, 13), &serde_json::json!({"hex": "01"}), &m).unwrap_err();
        assert!(e.contains("expected a Time value"), "{e}");
        // An object write.
        let n = json_to_node(&Path::object(1), &serde_json::json!({"7": {"0": 9, "1": 60}}), &m).unwrap();
        let Node::Object(o) = n else { panic!() };
        assert_eq!(
            o.instances[&7].resources[&1].value,
            ResourceValue::Single(Value::Integer(60))
        );
        // Unknown objects: types from JSON.
        let n = json_to_node(&Path::resource(40000, 0, 1), &serde_json::json!(2.5), &m).unwrap();
        assert_eq!(n, Node::Resource(ResourceNode::single(1, Value::Float(2.5))));
        // Errors name what was wrong.
        let e = json_to_node(&Path::resource(3, 0, 13), &serde_json::json!("x"), &m).unwrap_err();
        assert!(e.contains("expected a Time value"), "{e}");
        let e = json_to_node(&Path::instance(3, 0), &serde_json::json!(1), &m).unwrap_err();
        assert!(e.contains("JSON object"), "{e}");
        let e = json_to_node(&Path::ROOT, &serde_json::json!({}), &m).unwrap_err();
        assert!(e.contains("root"), "{e}");
        let e = json_to_node(&Path::instance(3, 0), &serde_json::json!({"x": 1}), &m).unwrap_err();
        assert!(e.contains("resource id \"x\""), "{e}");
        let e = json_to_node(&Path::resource(0, 0, 16), &serde_json::json!(1), &m).unwrap_err();
        assert!(e.contains("multiple"), "{e}");
        let e = json_to_node(&Path::resource(3, 0, 0), &serde_json::Value::Null, &m).unwrap_err();
        assert!(e.contains("expected a string"), "{e}");
    }

    #[test]
    fn validation_names_the_problem() {
        let ok = BootstrapConfig::with_servers(vec![ServerAccount::new(1, "coap://a", 60)]);
        ok.validate().unwrap();
        let check = |f: &dyn Fn(&mut BootstrapConfig), needle: &str| {
            let mut c = ok.clone();
            f(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(needle), "{e} should mention {needle}");
        };
        check(&|c| c.servers[0].ssid = 0, "1..=65534");
        check(&|c| c.servers[0].ssid = 65535, "1..=65534");
        check(
            &|c| c.servers.push(ServerAccount::new(1, "coap://b", 60)),
            "two server accounts",
        );
        check(&|c| c.servers[0].uri = "http://x".into(), "must start with coap://");
        check(&|c| c.servers[0].binding = "X".into(), "binding");
        check(
            &|c| c.servers[0].preferred_transport = Some("UT".into()),
            "preferred_transport",
        );
        check(
            &|c| {
                c.servers[0].security = SecurityConfig::Psk {
                    identity: String::new(),
                    key: Bytes(vec![1]),
                }
            },
            "PSK identity",
        );
        check(
            &|c| {
                c.credentials = Some(BootstrapCredential::Psk {
                    identity: "id".into(),
                    key: Bytes(vec![0; 65]),
                })
            },
            "credentials",
        );
        check(&|c| c.acls.push(AclEntry::new(0, 0, 1)), "object_id");
        check(
            &|c| {
                let mut a = AclEntry::new(3, 0, 1).with(1, Rights::READ);
                a.rights.push(AclRight {
                    ssid: 1,
                    rights: Rights::WRITE,
                });
                c.acls.push(a)
            },
            "two entries for ssid 1",
        );
        check(
            &|c| {
                c.writes.push(ExtraWrite {
                    path: "/3/0/13".into(),
                    value: serde_json::json!(true),
                })
            },
            "write /3/0/13",
        );
        check(&|c| c.deletes.push("/1/0/1".into()), "Bootstrap-Delete takes");
        check(
            &|c| c.content_format = Some(ContentFormat::Text),
            "cannot carry instances",
        );
        check(
            &|c| {
                c.servers.push(ServerAccount::new(2, "coap://b", 60));
                c.servers[0].server_instance = Some(1);
                c.servers[1].server_instance = Some(1);
            },
            "pin Server instance /1/1",
        );
    }

    #[test]
    fn toml_and_json_round_trip() {
        let mut a = ServerAccount::new(101, "coaps://dm.example.com:5684", 300);
        a.security = SecurityConfig::X509 {
            certificate: Bytes(vec![0x30, 0x82]),
            private_key: Bytes(vec![0x30, 0x81]),
            server_certificate: Bytes(vec![0x30, 0x80]),
            certificate_usage: Some(3),
            matching_type: None,
        };
        a.registration_priority_order = Some(2);
        let c = BootstrapConfig {
            credentials: Some(BootstrapCredential::Psk {
                identity: "dev-1".into(),
                key: Bytes(b"0123456789abcdef".to_vec()),
            }),
            servers: vec![a, ServerAccount::new(102, "coap://b", 60)],
            bootstrap_account: Some(BootstrapAccount {
                uri: "coaps://bs.example.com".into(),
                security: SecurityConfig::NoSec,
                client_hold_off: Some(10),
                account_timeout: None,
                sni: None,
                ciphersuites: vec![],
            }),
            acls: vec![AclEntry::new(3, 0, 101).with(0, Rights::READ)],
            writes: vec![ExtraWrite {
                path: "/3/0/14".into(),
                value: serde_json::json!("+01:00"),
            }],
            content_format: Some(ContentFormat::Tlv),
            repair: RepairPolicy {
                last_bootstrapped_older_than_s: Some(3600),
                ..RepairPolicy::default()
            },
            on_finish_rejected: OnFinishRejected::RewriteAll,
            ..BootstrapConfig::default()
        };
        c.validate().unwrap();
        let t = toml::to_string(&c).unwrap();
        let back: BootstrapConfig = toml::from_str(&t).unwrap();
        assert_eq!(back, c, "{t}");
        let j = serde_json::to_string(&c).unwrap();
        let back: BootstrapConfig = serde_json::from_str(&j).unwrap();
        assert_eq!(back, c);
        // Minimal TOML with defaults.
        let min: BootstrapConfig = toml::from_str("[[servers]]\nssid = 1\nuri = \"coap://x\"\n").unwrap();
        assert_eq!(min.servers[0].lifetime, 86_400);
        assert!(min.generate_acls && min.read_acls && min.repair.delete_unknown_ssids);
        // Unknown keys are refused.
        let e = toml::from_str::<BootstrapConfig>("[[servers]]\nssid = 1\nuri = \"coap://x\"\nlifetim = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("lifetim"), "{e}");
        let e = toml::from_str::<BootstrapConfig>("content_format = \"nope\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown content format"), "{e}");
    }
}
