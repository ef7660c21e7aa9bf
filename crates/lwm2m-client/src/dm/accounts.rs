//! The server accounts as typed structs (from Objects 0 and 1), for the registration driver.

use std::collections::BTreeSet;

use super::DataModel;
use crate::objects::security::SecurityInstance;
use crate::objects::server::ServerInstance;
use crate::objects::{SECURITY, SERVER};
use crate::registration::{Accounts, BootstrapAccount, ServerAccount, ServerResources};

/// One LwM2M Server account: a Server instance and the Security instance with the same SSID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAccountInfo {
    /// The Server instance id.
    pub server_iid: u16,
    /// `/1/x`.
    pub server: ServerInstance,
    /// The Security instance id, when one matches.
    pub security_iid: Option<u16>,
    /// `/0/y` with `/0/y/10` = the SSID.
    pub security: Option<SecurityInstance>,
}

impl ServerAccountInfo {
    /// The Short Server ID.
    pub fn ssid(&self) -> u16 {
        self.server.ssid
    }

    /// The server URI (`/0/y/0`), when the Security instance exists.
    pub fn uri(&self) -> Option<&str> {
        self.security.as_ref().map(|s| s.uri.as_str())
    }

    /// The Object 1 values the registration engine needs. Queue mode is taken from a legacy `Q` in the
    /// binding (1.0 style); a 1.1 client configures it separately.
    pub fn to_server_resources(&self) -> ServerResources {
        let s = &self.server;
        ServerResources {
            ssid: s.ssid,
            lifetime_s: Some(s.lifetime_s),
            binding: Some(s.binding.replace('Q', "")).filter(|b| !b.is_empty()),
            queue_mode: s.binding.contains('Q'),
            priority_order: s.priority_order,
            initial_delay_s: s.initial_delay_s,
            failure_block: s.failure_block,
            bootstrap_on_failure: s.bootstrap_on_failure,
            retry_count: s.retry_count,
            retry_timer_s: s.retry_timer_s,
            seq_delay_s: s.seq_delay_s,
            seq_retry_count: s.seq_retry_count,
            disable_timeout_s: s.disable_timeout_s,
        }
    }
}

impl DataModel {
    /// Every Security instance, typed, by instance id.
    pub fn security_instances(&self) -> Vec<(u16, SecurityInstance)> {
        self.typed_instances(SECURITY, SecurityInstance::from_node)
    }

    /// Every Server instance, typed, by instance id.
    pub fn server_instances(&self) -> Vec<(u16, ServerInstance)> {
        self.typed_instances(SERVER, ServerInstance::from_node)
    }

    fn typed_instances<T>(&self, oid: u16, f: impl Fn(&lwm2m_core::InstanceNode) -> T) -> Vec<(u16, T)> {
        let Some(h) = self.handler(oid) else {
            return Vec::new();
        };
        h.instances()
            .into_iter()
            .map(|iid| (iid, f(&self.instance_node(h, iid, |_| true))))
            .collect()
    }

    /// The Bootstrap-Server account (the first Security instance with Bootstrap-Server = true).
    pub fn bootstrap_account(&self) -> Option<(u16, SecurityInstance)> {
        self.security_instances().into_iter().find(|(_, s)| s.bootstrap)
    }

    /// The SSIDs of the LwM2M Server accounts: of Server instances and of non-bootstrap Security instances.
    pub fn server_ssids(&self) -> BTreeSet<u16> {
        let mut out: BTreeSet<u16> = self.server_instances().into_iter().map(|(_, s)| s.ssid).collect();
        out.extend(
            self.security_instances()
                .into_iter()
                .filter(|(_, s)| !s.bootstrap)
                .filter_map(|(_, s)| s.ssid),
        );
        out
    }

    /// Every LwM2M Server account (a Server instance with its Security instance, if any), by SSID.
    pub fn server_accounts(&self) -> Vec<ServerAccountInfo> {
        let security = self.security_instances();
        let mut out: Vec<ServerAccountInfo> = self
            .server_instances()
            .into_iter()
            .map(|(server_iid, server)| {
                let sec = security
                    .iter()
                    .find(|(_, s)| !s.bootstrap && s.ssid == Some(server.ssid))
                    .cloned();
                ServerAccountInfo {
                    server_iid,
                    security_iid: sec.as_ref().map(|(i, _)| *i),
                    security: sec.map(|(_, s)| s),
                    server,
                }
            })
            .collect();
        out.sort_by_key(|a| a.server.ssid);
        out
    }

    /// The accounts as the registration engine takes them (complete accounts only: a Server instance
    /// without its Security instance cannot be contacted and is left out).
    pub fn registration_accounts(&self) -> Accounts {
        Accounts {
            servers: self
                .server_accounts()
                .iter()
                .filter(|a| a.security.is_some())
                .map(|a| ServerAccount::from_resources(&a.to_server_resources()))
                .collect(),
            bootstrap: self.bootstrap_account().map(|(_, s)| {
                BootstrapAccount::new(s.client_hold_off_s).with_account_timeout(s.bootstrap_account_timeout_s)
            }),
        }
    }

    /// Deletes the Bootstrap-Server account (every Security instance with Bootstrap-Server = true), as the
    /// `/0/x/12` Bootstrap-Server Account Timeout asks. Returns the deleted instance ids (empty when there was
    /// none). The deletions are recorded as changes; Security is invisible to servers, so no Update follows.
    pub fn purge_bootstrap_account(&mut self) -> Vec<u16> {
        self.delete_bootstrap_security()
    }

    /// Deletes every Security instance with Bootstrap-Server = true, recording each deletion; returns their ids.
    pub(crate) fn delete_bootstrap_security(&mut self) -> Vec<u16> {
        let targets: Vec<u16> = self
            .security_instances()
            .into_iter()
            .filter(|(_, s)| s.bootstrap)
            .map(|(i, _)| i)
            .collect();
        let fx = &mut self.fx;
        let Some(h) = self.objects.get_mut(&SECURITY) else {
            return Vec::new();
        };
        let mut deleted = Vec::new();
        for iid in targets {
            if h.delete(iid, fx).is_ok() {
                fx.deleted(lwm2m_core::Path::instance(SECURITY, iid));
                deleted.push(iid);
            }
        }
        deleted
    }

    /// Whether a Bootstrap-Finish was accepted since this data model was built (its accounts come from a
    /// bootstrap, not only from the factory). A restarted runtime then counts the Bootstrap-Server Account
    /// Timeout from its start ([`EngineConfig::bootstrapped`](crate::registration::EngineConfig::bootstrapped)).
    pub fn bootstrapped(&self) -> bool {
        self.bootstrapped
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use crate::object::WriteMode;
    use lwm2m_core::{ContentFormat, Path};

    #[test]
    fn accounts_from_objects_0_and_1() {
        let mut dm = two_servers();
        assert_eq!(dm.server_ssids().into_iter().collect::<Vec<_>>(), vec![101, 102]);
        let accounts = dm.server_accounts();
        assert_eq!(accounts.len(), 2);
        assert_eq!((accounts[0].ssid(), accounts[0].uri()), (101, Some(DM_URI)));
        assert_eq!((accounts[1].server_iid, accounts[1].security_iid), (1, Some(2)));
        let (bs_iid, bs) = dm.bootstrap_account().unwrap();
        assert_eq!((bs_iid, bs.uri.as_str()), (1, BS_URI));
        dm.write(
            102,
            &"/1/1/7".parse::<Path>().unwrap(),
            WriteMode::Replace,
            ContentFormat::Text,
            b"UQ",
        )
        .unwrap();
        let reg = dm.registration_accounts();
        assert_eq!(reg.servers.len(), 2);
        assert_eq!((reg.servers[0].ssid, reg.servers[0].lifetime_s), (101, 300));
        assert!(reg.servers[1].queue_mode);
        assert_eq!(reg.servers[1].binding, "U");
        assert!(reg.bootstrap.is_some());
    }

    #[test]
    fn bootstrap_account_timeout_reaches_the_engine_and_purge_deletes_the_account() {
        let mut dm = two_servers();
        assert_eq!(dm.registration_accounts().bootstrap.unwrap().account_timeout_s, 0);
        let (bs_iid, mut bs) = dm.bootstrap_account().unwrap();
        bs.bootstrap_account_timeout_s = Some(120);
        put(&mut dm, 0, bs.to_node(bs_iid));
        assert_eq!(
            dm.registration_accounts().bootstrap.unwrap().purge_delay_ms(),
            Some(120_000)
        );
        dm.take_changes();
        assert_eq!(dm.purge_bootstrap_account(), vec![bs_iid]);
        assert!(dm.bootstrap_account().is_none());
        assert!(dm.registration_accounts().bootstrap.is_none());
        assert_eq!(dm.server_accounts().len(), 2, "the server accounts stay");
        assert_eq!(dm.take_changes()[0].path, Path::instance(0, bs_iid));
        assert_eq!(dm.purge_bootstrap_account(), Vec::<u16>::new());
    }

    #[test]
    fn resources_13_to_20_reach_the_engine() {
        let mut dm = single_server();
        let mut s = ServerInstance::new(101, 300);
        s.priority_order = Some(1);
        s.initial_delay_s = Some(7);
        s.failure_block = Some(true);
        s.bootstrap_on_failure = Some(false);
        s.retry_count = Some(2);
        s.retry_timer_s = Some(30);
        s.seq_delay_s = Some(600);
        s.seq_retry_count = Some(3);
        s.disable_timeout_s = Some(99);
        put(&mut dm, 1, s.to_node(0));
        let r = dm.server_accounts()[0].to_server_resources();
        assert_eq!(
            (
                r.priority_order,
                r.initial_delay_s,
                r.failure_block,
                r.bootstrap_on_failure
            ),
            (Some(1), Some(7), Some(true), Some(false))
        );
        assert_eq!(
            (
                r.retry_count,
                r.retry_timer_s,
                r.seq_delay_s,
                r.seq_retry_count,
                r.disable_timeout_s
            ),
            (Some(2), Some(30), Some(600), Some(3), Some(99))
        );
        let acc = &dm.registration_accounts().servers[0];
        assert_eq!((acc.initial_delay_s, acc.disable_timeout_s), (7, 99));
    }
}
