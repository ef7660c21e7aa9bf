//! Factory Bootstrap: building the data model from a typed configuration (the CLI loads it from TOML).

use lwm2m_core::path::MAX_ID;

use super::DataModel;
use crate::object::{DmError, Effects, ObjectHandler};
use crate::objects::access_control::{access_control_object, AccessRights, AclInstance};
use crate::objects::connectivity::{connectivity_monitoring_object, ConnectivityInfo};
use crate::objects::device::{device_object, DeviceInfo};
use crate::objects::firmware::{firmware_object, FirmwareConfig};
use crate::objects::location::{location_object, Location};
use crate::objects::security::{security_object, SecurityInstance, SecurityMode};
use crate::objects::server::{server_object, ServerInstance};
use crate::objects::statistics::connectivity_statistics_object;
use crate::objects::temperature::temperature_object;
use crate::objects::{ACCESS_CONTROL, OSCORE, SECURITY, SERVER};

/// The credentials of one account (Security object resources 2–5).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Credentials {
    /// Security Mode 3.
    #[default]
    NoSec,
    /// Security Mode 0: PSK identity (UTF-8 bytes) and key.
    Psk {
        /// `/0/x/3`
        identity: Vec<u8>,
        /// `/0/x/5`
        key: Vec<u8>,
    },
    /// Security Mode 1: the client's SubjectPublicKeyInfo and private key (DER), the server's public key.
    Rpk {
        /// `/0/x/3`
        public_key: Vec<u8>,
        /// `/0/x/5`
        private_key: Vec<u8>,
        /// `/0/x/4`
        server_public_key: Vec<u8>,
    },
    /// Security Mode 2: the client's certificate and private key (DER), the server's certificate or trust
    /// anchor.
    Certificate {
        /// `/0/x/3`
        certificate: Vec<u8>,
        /// `/0/x/5`
        private_key: Vec<u8>,
        /// `/0/x/4`
        server_certificate: Vec<u8>,
        /// `/0/x/15` Certificate Usage 0..=3 (`None`: absent, which means 3, domain-issued certificate).
        certificate_usage: Option<u8>,
    },
}

impl Credentials {
    fn apply(&self, s: &mut SecurityInstance) {
        if let Credentials::Certificate {
            certificate_usage: Some(u),
            ..
        } = self
        {
            s.certificate_usage = Some(u64::from(*u));
        }
        let (mode, a, b, c): (SecurityMode, &[u8], &[u8], &[u8]) = match self {
            Credentials::NoSec => (SecurityMode::NoSec, &[], &[], &[]),
            Credentials::Psk { identity, key } => (SecurityMode::Psk, identity, key, &[]),
            Credentials::Rpk {
                public_key,
                private_key,
                server_public_key,
            } => (SecurityMode::Rpk, public_key, private_key, server_public_key),
            Credentials::Certificate {
                certificate,
                private_key,
                server_certificate,
                ..
            } => (SecurityMode::Certificate, certificate, private_key, server_certificate),
        };
        s.mode = mode;
        s.public_key_or_identity = a.to_vec();
        s.secret_key = b.to_vec();
        s.server_public_key = c.to_vec();
    }
}

/// One LwM2M Server account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// `/0/x/0` e.g. `coaps://dm.example.com:5684`.
    pub uri: String,
    /// Security mode and keys.
    pub credentials: Credentials,
    /// `/0/x/16` DTLS/TLS Ciphersuite: the IANA values of the only cipher suites the client offers to this
    /// server (e.g. 49320 = 0xC0A8, TLS_PSK_WITH_AES_128_CCM_8). Empty (the default) = resource absent, the
    /// DTLS layer's default (the CCM_8 suite of the security mode).
    pub ciphersuites: Vec<u64>,
    /// The Server object values; its `ssid` is the account's Short Server ID.
    pub server: ServerInstance,
}

impl ServerConfig {
    /// An account with no security, lifetime `lifetime_s`, everything else default.
    pub fn new(ssid: u16, uri: impl Into<String>, lifetime_s: u64) -> ServerConfig {
        ServerConfig {
            uri: uri.into(),
            credentials: Credentials::NoSec,
            ciphersuites: Vec::new(),
            server: ServerInstance::new(ssid, lifetime_s),
        }
    }
}

/// The Bootstrap-Server account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapConfig {
    /// `/0/x/0`
    pub uri: String,
    /// Security mode and keys.
    pub credentials: Credentials,
    /// `/0/x/11` Client Hold Off Time.
    pub hold_off_s: Option<u64>,
    /// `/0/x/12` Bootstrap-Server Account Timeout.
    pub account_timeout_s: Option<u64>,
}

/// Everything a factory-bootstrapped client starts with.
///
/// [`FactoryConfig::build`] creates Security (0), Server (1), Access Control (2), Device (3) and the optional
/// objects, and records the configuration in the data model ([`DataModel::factory_config`]) so that a
/// Factory Reset can restore it ([`DataModel::factory_reset`]). With more than one server and no explicit `access_control`, ACL instances are generated: each
/// server owns its own Server instance (nobody else may access it); every other instance is owned by the first
/// server and gives every server full rights through the default entry; every multiple-instance object except
/// Security, Server, Access Control and OSCORE gets an object-level instance granting Create to every server.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FactoryConfig {
    /// LwM2M Server accounts (instance ids follow the list order; the Bootstrap-Server account comes last in
    /// Object 0).
    pub servers: Vec<ServerConfig>,
    /// The Bootstrap-Server account.
    pub bootstrap: Option<BootstrapConfig>,
    /// Device information (`/3/0`).
    pub device: DeviceInfo,
    /// Connectivity Monitoring (`/4/0`) when set.
    pub connectivity: Option<ConnectivityInfo>,
    /// Firmware Update (`/5/0`) when set.
    pub firmware: Option<FirmwareConfig>,
    /// Location (`/6/0`) when set.
    pub location: Option<Location>,
    /// Connectivity Statistics (`/7/0`).
    pub connectivity_statistics: bool,
    /// Temperature sensors `(instance id, initial °C)`; `Some(vec![])` supports 3303 without instances.
    pub temperature: Option<Vec<(u16, f64)>>,
    /// Explicit ACL instances; `None` generates them for multi-server configurations.
    pub access_control: Option<Vec<AclInstance>>,
}

impl FactoryConfig {
    /// Builds the data model. Fails (4.00) when the configuration is inconsistent in the ways
    /// Bootstrap-Finish would refuse (duplicate or invalid SSIDs, missing credentials, ...); a configuration
    /// with only a Bootstrap-Server account is fine.
    pub fn build(&self) -> Result<DataModel, DmError> {
        let mut security = security_object();
        let mut server = server_object();
        let mut fx = Effects::new();
        for (iid, s) in (0u16..).zip(&self.servers) {
            let mut sec = SecurityInstance::nosec(s.uri.clone(), s.server.ssid);
            s.credentials.apply(&mut sec);
            sec.ciphersuites = s.ciphersuites.clone();
            security.create(sec.to_node(iid), &mut fx)?;
            server.create(s.server.to_node(iid), &mut fx)?;
        }
        if let Some(bs) = &self.bootstrap {
            let mut sec = SecurityInstance::nosec(bs.uri.clone(), 0).into_bootstrap();
            bs.credentials.apply(&mut sec);
            sec.client_hold_off_s = bs.hold_off_s;
            sec.bootstrap_account_timeout_s = bs.account_timeout_s;
            let iid = u16::try_from(self.servers.len()).map_err(|_| DmError::bad_request("too many servers"))?;
            security.create(sec.to_node(iid), &mut fx)?;
        }
        let mut dm = DataModel::new()
            .with(security)
            .with(server)
            .with(access_control_object())
            .with(device_object(&self.device));
        if let Some(c) = &self.connectivity {
            dm.add_object(connectivity_monitoring_object(c));
        }
        if let Some(f) = &self.firmware {
            dm.add_object(firmware_object(f));
        }
        if let Some(l) = &self.location {
            dm.add_object(location_object(l));
        }
        if self.connectivity_statistics {
            dm.add_object(connectivity_statistics_object());
        }
        if let Some(t) = &self.temperature {
            dm.add_object(temperature_object(t));
        }
        let acls = match &self.access_control {
            Some(list) => list.clone(),
            None if self.servers.len() > 1 => self.generated_acls(&dm),
            None => Vec::new(),
        };
        for acl in acls {
            dm.add_acl_instance(acl)?;
        }
        let problems = dm.consistency_problems(false);
        if !problems.is_empty() {
            return Err(DmError::bad_request(format!(
                "inconsistent factory configuration: {}",
                problems.join("; ")
            )));
        }
        dm.take_changes();
        dm.factory = Some(Box::new(self.clone()));
        Ok(dm)
    }

    fn generated_acls(&self, dm: &DataModel) -> Vec<AclInstance> {
        let ssids: Vec<u16> = self.servers.iter().map(|s| s.server.ssid).collect();
        let first = ssids.first().copied().unwrap_or(MAX_ID);
        let mut out = Vec::new();
        for oid in dm.object_ids() {
            if matches!(oid, SECURITY | ACCESS_CONTROL | OSCORE) {
                continue;
            }
            let Some(h) = dm.handler(oid) else { continue };
            for iid in h.instances() {
                if oid == SERVER {
                    let owner = dm
                        .server_instances()
                        .into_iter()
                        .find(|(i, _)| *i == iid)
                        .map(|(_, s)| s.ssid)
                        .unwrap_or(first);
                    out.push(AclInstance::new(oid, iid, owner));
                } else {
                    out.push(AclInstance::new(oid, iid, first).with(0, AccessRights::FULL_INSTANCE));
                }
            }
            if h.model().multiple && oid != SERVER {
                out.push(AclInstance::object_level(oid).with(0, AccessRights::CREATE));
            }
        }
        out
    }
}

impl DataModel {
    /// The configuration this data model was built from ([`FactoryConfig::build`] records it), `None` for a data
    /// model assembled by hand (unless [`DataModel::set_factory_config`] set one).
    pub fn factory_config(&self) -> Option<&FactoryConfig> {
        self.factory.as_deref()
    }

    /// Records (or clears) the configuration a Factory Reset restores.
    pub fn set_factory_config(&mut self, config: Option<FactoryConfig>) {
        self.factory = config.map(Box::new);
    }

    /// Factory Reset (`/3/0/5`): replaces the whole data model by a fresh [`FactoryConfig::build`] of the
    /// recorded factory configuration. Everything servers, the Bootstrap-Server and the application changed
    /// since then is gone: values, created and deleted instances, bootstrapped accounts, Access Control,
    /// Write-Attributes, pending changes and actions. Kept: object types the factory configuration does not
    /// build (added by the application with [`DataModel::add_object`]; unchanged, with their instances), the
    /// multi-value format and the factory configuration itself.
    ///
    /// Fails with [`DmError::Internal`] (5.00), leaving the data model untouched, when there is no factory
    /// configuration or it no longer builds.
    pub fn factory_reset(&mut self) -> Result<(), DmError> {
        let Some(config) = self.factory.as_deref() else {
            return Err(DmError::internal(
                "no factory configuration to restore (the data model was not built by FactoryConfig::build)",
            ));
        };
        let mut fresh = config
            .build()
            .map_err(|e| DmError::internal(format!("the factory configuration does not build: {}", e.reason())))?;
        for (oid, handler) in std::mem::take(&mut self.objects) {
            fresh.objects.entry(oid).or_insert(handler);
        }
        fresh.multi_format = self.multi_format;
        *self = fresh;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::WriteMode;
    use lwm2m_core::{ContentFormat, Path};

    fn p(s: &str) -> Path {
        s.parse().unwrap()
    }

    fn two() -> FactoryConfig {
        FactoryConfig {
            servers: vec![
                ServerConfig::new(101, "coap://a", 300),
                ServerConfig {
                    credentials: Credentials::Psk {
                        identity: b"dev".to_vec(),
                        key: vec![1; 16],
                    },
                    ..ServerConfig::new(102, "coaps://b", 600)
                },
            ],
            bootstrap: Some(BootstrapConfig {
                uri: "coap://bs".into(),
                credentials: Credentials::NoSec,
                hold_off_s: Some(10),
                account_timeout_s: None,
            }),
            firmware: Some(FirmwareConfig::default()),
            temperature: Some(vec![(0, 21.0)]),
            ..FactoryConfig::default()
        }
    }

    #[test]
    fn single_server_factory_config() {
        let dm = FactoryConfig {
            servers: vec![ServerConfig::new(1, "coap://localhost", 60)],
            ..FactoryConfig::default()
        }
        .build()
        .unwrap();
        assert_eq!(dm.registration_payload(), "</1/0>,</2>,</3/0>");
        assert!(!dm.acl_enforced());
        assert!(dm.bootstrap_account().is_none());
        assert_eq!(dm.registration_accounts().servers.len(), 1);
        assert!(dm.pending().changes().is_empty());
    }

    #[test]
    fn multi_server_factory_config_generates_acls() {
        let mut dm = two().build().unwrap();
        let accounts = dm.server_accounts();
        assert_eq!(accounts.len(), 2);
        let sec = accounts[1].security.as_ref().unwrap();
        assert_eq!(
            (sec.mode, sec.public_key_or_identity.as_slice()),
            (SecurityMode::Psk, &b"dev"[..])
        );
        assert_eq!(dm.bootstrap_account().unwrap().1.client_hold_off_s, Some(10));
        assert!(dm.acl_enforced());
        // Each server owns its Server instance.
        assert_eq!(dm.access_rights(101, 1, 0), AccessRights::FULL_INSTANCE);
        assert_eq!(dm.access_rights(102, 1, 0), AccessRights::NONE);
        assert_eq!(dm.access_rights(102, 1, 1), AccessRights::FULL_INSTANCE);
        // Everyone has full rights elsewhere and may create temperature sensors.
        assert_eq!(dm.access_rights(102, 3, 0), AccessRights::FULL_INSTANCE);
        assert!(dm.may_create(102, 3303));
        assert!(!dm.may_create(102, 3), "single-instance object: no Create right");
        dm.write(102, &p("/1/1/1"), WriteMode::Replace, ContentFormat::Text, b"900")
            .unwrap();
        assert_eq!(
            dm.write(102, &p("/1/0/1"), WriteMode::Replace, ContentFormat::Text, b"900")
                .unwrap_err()
                .code(),
            (4, 1)
        );
        let body = br#"[{"n":"/3303/5/5750","vs":"x"}]"#;
        assert_eq!(
            dm.create(102, &p("/3303"), ContentFormat::SenmlJson, body).unwrap(),
            p("/3303/5")
        );
        assert_eq!(dm.acl_for(3303, 5).unwrap().1.owner, 102);
    }

    #[test]
    fn inconsistent_factory_configs_are_refused() {
        let mut c = two();
        c.servers[1].server.ssid = 101;
        assert_eq!(c.build().unwrap_err().code(), (4, 0));
        let mut c = two();
        c.servers[1].credentials = Credentials::Psk {
            identity: Vec::new(),
            key: Vec::new(),
        };
        assert!(c.build().unwrap_err().reason().contains("needs /0/1/3"));
        let mut c = two();
        c.servers[0].server.ssid = 0;
        assert_eq!(c.build().unwrap_err().code(), (4, 0));
        // Bootstrap-only is fine.
        let c = FactoryConfig {
            bootstrap: two().bootstrap,
            ..FactoryConfig::default()
        };
        let dm = c.build().unwrap();
        assert!(dm.server_accounts().is_empty());
        assert!(dm.registration_accounts().bootstrap.is_some());
    }

    #[test]
    fn ciphersuites_reach_the_security_instance() {
        let mut c = two();
        c.servers[1].ciphersuites = vec![49320, 0xC0AE];
        let dm = c.build().unwrap();
        let accounts = dm.server_accounts();
        assert_eq!(accounts[1].security.as_ref().unwrap().ciphersuites, vec![49320, 0xC0AE]);
        assert!(accounts[0].security.as_ref().unwrap().ciphersuites.is_empty());
    }

    #[test]
    fn factory_reset_restores_the_factory_configuration() {
        let config = two();
        let mut dm = config.build().unwrap();
        assert_eq!(dm.factory_config(), Some(&config));
        dm.set_multi_value_format(ContentFormat::SenmlJson).unwrap();
        // Changes by servers: a lifetime, a new instance, Write-Attributes; an application object 3442.
        dm.write(101, &p("/1/0/1"), WriteMode::Replace, ContentFormat::Text, b"900")
            .unwrap();
        let body = br#"[{"n":"/3303/7/5750","vs":"x"}]"#;
        dm.create(101, &p("/3303"), ContentFormat::SenmlJson, body).unwrap();
        dm.write_attributes(101, &p("/3303/0/5700"), &["pmin=5"]).unwrap();
        dm.add_object(crate::dm::testutil::test_object());
        // Bootstrap: the Bootstrap-Server account is deleted by a purge.
        dm.purge_bootstrap_account();
        dm.execute(101, &p("/3/0/5"), b"").unwrap();

        dm.factory_reset().unwrap();
        assert_eq!(dm.server_instances()[0].1.lifetime_s, 300);
        assert_eq!(dm.handler(3303).unwrap().instances(), vec![0]);
        assert_eq!(dm.attributes(101, &p("/3303/0/5700")), Default::default());
        assert!(dm.bootstrap_account().is_some());
        assert!(dm.has_object(3442), "application objects are kept");
        assert_eq!(dm.multi_value_format(), ContentFormat::SenmlJson);
        assert!(dm.take_changes().is_empty() && dm.take_actions().is_empty());
        assert!(!dm.bootstrapped());
        assert_eq!(dm.factory_config(), Some(&config));
        // The temperature sensor is the factory's one again (a new handler).
        assert_eq!(dm.local_read(&p("/3303/0/5700")).unwrap(), {
            let fresh = config.build().unwrap();
            fresh.local_read(&p("/3303/0/5700")).unwrap()
        });

        // Without a factory configuration: an error, nothing changes.
        let mut bare = DataModel::new().with(crate::objects::device::device_object(&Default::default()));
        assert_eq!(bare.factory_reset().unwrap_err().code(), (5, 0));
        assert!(bare.has_object(3));
        bare.set_factory_config(Some(config.clone()));
        bare.factory_reset().unwrap();
        assert_eq!(bare.server_accounts().len(), 2);
    }

    #[test]
    fn explicit_acl_list_is_used() {
        let mut c = two();
        c.access_control = Some(vec![AclInstance::new(3, 0, 102)]);
        let dm = c.build().unwrap();
        assert_eq!(dm.acl_instances().len(), 1);
        assert_eq!(dm.access_rights(101, 3, 0), AccessRights::NONE);
    }
}
