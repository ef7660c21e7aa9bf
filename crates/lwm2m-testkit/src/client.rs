//! Devices for tests that run lwm2m-client: the LwM2M v1.1 test object 3442 and factory configurations.

use lwm2m_client::dm::{BootstrapConfig, Credentials, FactoryConfig};
use lwm2m_client::object::SimpleObject;
use lwm2m_core::model::{ModelRegistry, Models};
use lwm2m_core::node::{InstanceNode, ResourceNode};
use lwm2m_core::Value;

/// The writable multiple Integer resource 1120 of object 3442 with the instances {0: 10, 1: 11, 2: 12}.
pub fn resource_1120() -> ResourceNode {
    ResourceNode::multiple(
        1120,
        [
            (0, Value::Integer(10)),
            (1, Value::Integer(11)),
            (2, Value::Integer(12)),
        ],
    )
}

/// The LwM2M v1.1 test object 3442 (the built-in model) with instance 0 holding `resources`, e.g.
/// `[resource_1120()]`.
pub fn object_3442(resources: impl IntoIterator<Item = ResourceNode>) -> SimpleObject<()> {
    let model = ModelRegistry::builtin().object(3442).expect("3442 is built in").clone();
    SimpleObject::new(model).with_instance(InstanceNode::new(0, resources))
}

/// A factory configuration with only a Bootstrap-Server account: `uri` with `credentials`, Client Hold Off
/// Time 0 s, no Bootstrap-Server Account Timeout.
pub fn bootstrap_only(uri: &str, credentials: Credentials) -> FactoryConfig {
    FactoryConfig {
        bootstrap: Some(BootstrapConfig {
            uri: uri.into(),
            credentials,
            hold_off_s: Some(0),
            account_timeout_s: None,
        }),
        ..FactoryConfig::default()
    }
}
