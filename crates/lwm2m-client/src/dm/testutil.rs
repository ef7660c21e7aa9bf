//! Test fixtures for the dispatcher tests.

use lwm2m_core::{InstanceNode, ModelRegistry, Models, ResourceNode, Value};

use super::DataModel;
use crate::object::{Effects, SimpleObject};
use crate::objects::access_control::{access_control_object, AccessRights, AclInstance};
use crate::objects::connectivity::{connectivity_monitoring_object, ConnectivityInfo};
use crate::objects::device::{device_object, DeviceInfo, PowerSource};
use crate::objects::firmware::{firmware_object, FirmwareConfig};
use crate::objects::location::{location_object, Location};
use crate::objects::security::{security_object, SecurityInstance};
use crate::objects::server::{server_object, ServerInstance};
use crate::objects::statistics::connectivity_statistics_object;
use crate::objects::temperature::temperature_object;

pub const DM_URI: &str = "coap://dm.example.com";
pub const DM2_URI: &str = "coap://dm2.example.com";
pub const BS_URI: &str = "coap://bs.example.com";

/// The Leshan test object 3442 with instance 0: String 110 = "hello", Integer 120 = 42, multiple Integer
/// 1120 = {0: 10, 1: 11, 2: 12}, multiple String 1110 = {0: "a"}, plus executables 0 and 3.
pub fn test_object() -> SimpleObject<crate::object::ExecHook> {
    let model = ModelRegistry::builtin().object(3442).expect("3442").clone();
    SimpleObject::new(model)
        .with_executables(&[0, 3])
        .with_instance(InstanceNode::new(
            0,
            [
                ResourceNode::single(110, Value::String("hello".into())),
                ResourceNode::single(120, Value::Integer(42)),
                ResourceNode::multiple(
                    1120,
                    [
                        (0, Value::Integer(10)),
                        (1, Value::Integer(11)),
                        (2, Value::Integer(12)),
                    ],
                ),
                ResourceNode::multiple(1110, [(0, Value::String("a".into()))]),
            ],
        ))
        .with_exec(|store, iid, rid, args, fx| {
            // 3: store the argument list as "id=value" strings in 4 (Arguments List).
            if rid == 3 {
                let list = args
                    .iter()
                    .zip(0u16..)
                    .map(|(a, i)| {
                        (
                            i,
                            Value::String(format!("{}={}", a.id, a.value.clone().unwrap_or_default())),
                        )
                    })
                    .collect();
                store.set_multiple(iid, 4, list, fx)?;
            }
            Ok(())
        })
}

fn device_info() -> DeviceInfo {
    DeviceInfo {
        manufacturer: Some("Open Mobile Alliance".into()),
        model_number: Some("Lightweight M2M Client".into()),
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
                current_ma: Some(900),
            },
        ],
        battery_level: Some(100),
        ..DeviceInfo::default()
    }
}

/// Objects 0-7, 3303 and 3442 without any server account.
pub fn base() -> DataModel {
    DataModel::new()
        .with(security_object())
        .with(server_object())
        .with(access_control_object())
        .with(device_object(&device_info()))
        .with(connectivity_monitoring_object(&ConnectivityInfo::default()))
        .with(firmware_object(&FirmwareConfig::default()))
        .with(location_object(&Location::default()))
        .with(connectivity_statistics_object())
        .with(temperature_object(&[(0, 20.0)]))
        .with(test_object())
}

/// Creates an instance directly (no checks), like a factory configuration.
pub fn put(dm: &mut DataModel, oid: u16, node: InstanceNode) {
    let h = dm.objects.get_mut(&oid).expect("object present");
    let mut fx = Effects::new();
    if h.has_instance(node.id) {
        h.delete(node.id, &mut fx).expect("delete");
    }
    h.create(node, &mut fx).expect("create");
}

/// One server (SSID 101, /0/0 and /1/0) plus a Bootstrap-Server account (/0/1); no ACL instances.
pub fn single_server() -> DataModel {
    let mut dm = base();
    put(&mut dm, 0, SecurityInstance::nosec(DM_URI, 101).to_node(0));
    put(
        &mut dm,
        0,
        SecurityInstance::nosec(BS_URI, 0).into_bootstrap().to_node(1),
    );
    put(&mut dm, 1, ServerInstance::new(101, 300).to_node(0));
    dm
}

/// Two servers (101 at /0/0 + /1/0, 102 at /0/2 + /1/1), a Bootstrap-Server account (/0/1) and ACLs:
///
/// | /2/x | target | owner | entries |
/// |---|---|---|---|
/// | 0 | /3/0 | 101 | 102: R, default: R+E |
/// | 1 | /3303/0 | 102 | 102: R |
/// | 2 | /3303 (object) | bootstrap | 101: C, 102: R, default: C |
/// | 3 | /1/0 | 101 | — |
/// | 4 | /1/1 | 102 | — |
/// | 5 | /3442/0 | 101 | 102: R+W |
pub fn two_servers() -> DataModel {
    let mut dm = single_server();
    put(&mut dm, 0, SecurityInstance::nosec(DM2_URI, 102).to_node(2));
    put(&mut dm, 1, ServerInstance::new(102, 600).to_node(1));
    let acls = [
        AclInstance::new(3, 0, 101)
            .with(102, AccessRights::READ)
            .with(0, AccessRights(5)),
        AclInstance::new(3303, 0, 102).with(102, AccessRights::READ),
        AclInstance::object_level(3303)
            .with(101, AccessRights::CREATE)
            .with(102, AccessRights::READ)
            .with(0, AccessRights::CREATE),
        AclInstance::new(1, 0, 101),
        AclInstance::new(1, 1, 102),
        AclInstance::new(3442, 0, 101).with(102, AccessRights(3)),
    ];
    for (i, a) in (0u16..).zip(acls) {
        put(&mut dm, 2, a.to_node(i));
    }
    dm
}

/// The decoded SenML JSON text of a payload, for readable assertions.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}
