//! Connectivity Monitoring (Object 4, v1.2): read-only network information the application keeps current.

use lwm2m_core::{InstanceNode, ResourceNode, Value};

use super::{builtin_model, CONNECTIVITY_MONITORING};
use crate::object::SimpleObject;

/// The values of `/4/0`. Optional values left `None`/empty are not instantiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectivityInfo {
    /// `/4/0/0` Network Bearer (41 = Ethernet, 21 = WLAN, 6 = LTE-FDD, ...).
    pub network_bearer: i64,
    /// `/4/0/1` Available Network Bearers.
    pub available_bearers: Vec<i64>,
    /// `/4/0/2` Radio Signal Strength, dBm.
    pub radio_signal_strength: i64,
    /// `/4/0/3` Link Quality.
    pub link_quality: Option<i64>,
    /// `/4/0/4` IP Addresses.
    pub ip_addresses: Vec<String>,
    /// `/4/0/5` Router IP Addresses.
    pub router_ip_addresses: Vec<String>,
    /// `/4/0/6` Link Utilization, percent.
    pub link_utilization: Option<i64>,
    /// `/4/0/7` APN.
    pub apn: Vec<String>,
    /// `/4/0/8` Cell ID.
    pub cell_id: Option<i64>,
    /// `/4/0/9` SMNC.
    pub smnc: Option<i64>,
    /// `/4/0/10` SMCC.
    pub smcc: Option<i64>,
}

impl Default for ConnectivityInfo {
    /// Ethernet, signal strength 0, address 127.0.0.1.
    fn default() -> ConnectivityInfo {
        ConnectivityInfo {
            network_bearer: 41,
            available_bearers: vec![41],
            radio_signal_strength: 0,
            link_quality: None,
            ip_addresses: vec!["127.0.0.1".into()],
            router_ip_addresses: Vec::new(),
            link_utilization: None,
            apn: Vec::new(),
            cell_id: None,
            smnc: None,
            smcc: None,
        }
    }
}

impl ConnectivityInfo {
    /// The `/4/0` instance.
    pub fn to_node(&self) -> InstanceNode {
        let mut r = vec![
            ResourceNode::single(0, Value::Integer(self.network_bearer)),
            ResourceNode::multiple(
                1,
                (0u16..).zip(self.available_bearers.iter().map(|b| Value::Integer(*b))),
            ),
            ResourceNode::single(2, Value::Integer(self.radio_signal_strength)),
            ResourceNode::multiple(
                4,
                (0u16..).zip(self.ip_addresses.iter().map(|s| Value::String(s.clone()))),
            ),
        ];
        let strings = |rid: u16, v: &[String]| {
            (!v.is_empty())
                .then(|| ResourceNode::multiple(rid, (0u16..).zip(v.iter().map(|s| Value::String(s.clone())))))
        };
        r.extend(strings(5, &self.router_ip_addresses));
        r.extend(strings(7, &self.apn));
        for (rid, v) in [
            (3, self.link_quality),
            (6, self.link_utilization),
            (8, self.cell_id),
            (9, self.smnc),
            (10, self.smcc),
        ] {
            if let Some(v) = v {
                r.push(ResourceNode::single(rid, Value::Integer(v)));
            }
        }
        InstanceNode::new(0, r)
    }
}

/// The Connectivity Monitoring object with its single instance. The application updates values with
/// [`crate::dm::DataModel::set_value`].
pub fn connectivity_monitoring_object(info: &ConnectivityInfo) -> SimpleObject {
    SimpleObject::new(builtin_model(CONNECTIVITY_MONITORING, None))
        .with_instance(info.to_node())
        .with_fixed_instances()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::ObjectHandler;
    use crate::objects::test_util::assert_node_matches_model;

    #[test]
    fn instance_matches_model() {
        let info = ConnectivityInfo {
            router_ip_addresses: vec!["10.0.0.1".into()],
            apn: vec!["internet".into()],
            link_quality: Some(3),
            link_utilization: Some(10),
            cell_id: Some(1234),
            smnc: Some(1),
            smcc: Some(262),
            ..ConnectivityInfo::default()
        };
        let node = info.to_node();
        assert_node_matches_model(&builtin_model(CONNECTIVITY_MONITORING, None), &node);
        assert_eq!(node.resources.len(), 11);
        let obj = connectivity_monitoring_object(&ConnectivityInfo::default());
        assert_eq!(obj.resources(0), vec![0, 1, 2, 4]);
    }
}
