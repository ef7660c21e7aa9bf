//! Location (Object 6, v1.0): a position the application sets.

use lwm2m_core::{InstanceNode, ResourceNode, Value};

use super::{builtin_model, LOCATION};
use crate::object::{DmError, Effects, SimpleObject};

/// The values of `/6/0`.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    /// `/6/0/0` decimal degrees.
    pub latitude: f64,
    /// `/6/0/1` decimal degrees.
    pub longitude: f64,
    /// `/6/0/2` metres.
    pub altitude: Option<f64>,
    /// `/6/0/3` metres.
    pub radius: Option<f64>,
    /// `/6/0/5` Unix time of the measurement.
    pub timestamp: i64,
    /// `/6/0/6` m/s.
    pub speed: Option<f64>,
}

impl Default for Location {
    fn default() -> Location {
        Location {
            latitude: 0.0,
            longitude: 0.0,
            altitude: None,
            radius: None,
            timestamp: 0,
            speed: None,
        }
    }
}

impl Location {
    /// The `/6/0` instance.
    pub fn to_node(&self) -> InstanceNode {
        let mut r = vec![
            ResourceNode::single(0, Value::Float(self.latitude)),
            ResourceNode::single(1, Value::Float(self.longitude)),
            ResourceNode::single(5, Value::Time(self.timestamp)),
        ];
        for (rid, v) in [(2, self.altitude), (3, self.radius), (6, self.speed)] {
            if let Some(v) = v {
                r.push(ResourceNode::single(rid, Value::Float(v)));
            }
        }
        InstanceNode::new(0, r)
    }
}

/// The Location object type.
pub type LocationObject = SimpleObject;

/// The Location object with its single instance.
pub fn location_object(location: &Location) -> LocationObject {
    SimpleObject::new(builtin_model(LOCATION, None))
        .with_instance(location.to_node())
        .with_fixed_instances()
}

/// Stores a new position (recording the changed resources). Range: latitude -90..90, longitude -180..180.
pub fn set_location(obj: &mut LocationObject, location: &Location, fx: &mut Effects) -> Result<(), DmError> {
    if !(-90.0..=90.0).contains(&location.latitude) || !(-180.0..=180.0).contains(&location.longitude) {
        return Err(DmError::bad_request(format!(
            "position {}, {} is out of range",
            location.latitude, location.longitude
        )));
    }
    let store = obj.store_mut();
    store.set(0, 0, Value::Float(location.latitude), fx)?;
    store.set(0, 1, Value::Float(location.longitude), fx)?;
    store.set(0, 5, Value::Time(location.timestamp), fx)?;
    for (rid, v) in [(2, location.altitude), (3, location.radius), (6, location.speed)] {
        match v {
            Some(v) => store.set(0, rid, Value::Float(v), fx)?,
            None => {
                if store.unset(0, rid).is_some() {
                    fx.changed(lwm2m_core::Path::resource(LOCATION, 0, rid));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::test_util::assert_node_matches_model;
    use lwm2m_core::Path;

    #[test]
    fn set_and_model() {
        let l = Location {
            latitude: -43.5723,
            longitude: 153.2176,
            altitude: Some(12.0),
            radius: Some(5.0),
            timestamp: 1_700_000_000,
            speed: Some(1.5),
        };
        assert_node_matches_model(&builtin_model(LOCATION, None), &l.to_node());
        let mut obj = location_object(&Location::default());
        let mut fx = Effects::new();
        set_location(&mut obj, &l, &mut fx).unwrap();
        assert_eq!(obj.store().float(0, 0), Some(-43.5723));
        assert_eq!(fx.changes().len(), 6);
        let moved = Location {
            altitude: None,
            ..l.clone()
        };
        set_location(&mut obj, &moved, &mut fx).unwrap();
        assert!(obj.store().get(0, 2).is_none());
        assert!(fx.changes().iter().any(|c| c.path == Path::resource(6, 0, 2)));
        let bad = Location { latitude: 91.0, ..l };
        assert_eq!(set_location(&mut obj, &bad, &mut fx).unwrap_err().code(), (4, 0));
    }
}
