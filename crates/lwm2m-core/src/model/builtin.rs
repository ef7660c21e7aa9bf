//! Built-in object models: every DDF file in `crates/lwm2m-core/models/`, embedded at build time.
//!
//! The core objects 0-7 and 21 (the LwM2M 1.1.1 default version and the later versions listed in the
//! models' README), the IPSO objects 3303 and 3311, and the Leshan/Eclipse test object 3442.
//! The files are parsed once, on first use.

use std::sync::OnceLock;

use super::{ddf, ModelRegistry, ObjectModel};

/// The embedded DDF files: (file name, XML text).
pub const FILES: &[(&str, &str)] = &[
    ("0-1_1.xml", include_str!("../../models/0-1_1.xml")),
    ("0-1_2.xml", include_str!("../../models/0-1_2.xml")),
    ("1-1_1.xml", include_str!("../../models/1-1_1.xml")),
    ("2-1_0.xml", include_str!("../../models/2-1_0.xml")),
    ("2-1_1.xml", include_str!("../../models/2-1_1.xml")),
    ("21-1_0.xml", include_str!("../../models/21-1_0.xml")),
    ("3-1_1.xml", include_str!("../../models/3-1_1.xml")),
    ("3-1_2.xml", include_str!("../../models/3-1_2.xml")),
    ("3303-1_0.xml", include_str!("../../models/3303-1_0.xml")),
    ("3303-1_1.xml", include_str!("../../models/3303-1_1.xml")),
    ("3311-1_0.xml", include_str!("../../models/3311-1_0.xml")),
    ("3442-1_0.xml", include_str!("../../models/3442-1_0.xml")),
    ("4-1_2.xml", include_str!("../../models/4-1_2.xml")),
    ("4-1_3.xml", include_str!("../../models/4-1_3.xml")),
    ("5-1_0.xml", include_str!("../../models/5-1_0.xml")),
    ("5-1_1.xml", include_str!("../../models/5-1_1.xml")),
    ("5-1_2.xml", include_str!("../../models/5-1_2.xml")),
    ("6-1_0.xml", include_str!("../../models/6-1_0.xml")),
    ("7-1_0.xml", include_str!("../../models/7-1_0.xml")),
];

fn parsed() -> &'static [ObjectModel] {
    static MODELS: OnceLock<Vec<ObjectModel>> = OnceLock::new();
    MODELS.get_or_init(|| {
        let mut out = Vec::new();
        for (name, xml) in FILES {
            // The embedded files are checked by the tests below; a broken one is skipped, not a panic.
            match ddf::parse(xml, name) {
                Ok(models) => out.extend(models),
                Err(e) => debug_assert!(false, "built-in model {name}: {e}"),
            }
        }
        out
    })
}

/// Every built-in model (all versions of every object), in file-name order.
pub fn builtin_models() -> Vec<ObjectModel> {
    parsed().to_vec()
}

impl ModelRegistry {
    /// A registry holding every built-in model. [`crate::Models::object`] then gives the LwM2M 1.1.1
    /// default version of each object (digest §1.4; 1.0 for non-core objects such as 3303).
    /// The registry is built once; each call returns a cheap clone (the models are shared).
    pub fn builtin() -> ModelRegistry {
        static REGISTRY: OnceLock<ModelRegistry> = OnceLock::new();
        REGISTRY
            .get_or_init(|| {
                let mut r = ModelRegistry::new();
                for m in parsed() {
                    r.add(m.clone());
                }
                r
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DataType, Models, Operations, Version};

    #[test]
    fn every_embedded_file_parses() {
        for (name, xml) in FILES {
            let models = ddf::parse(xml, name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(models.len(), 1, "{name}");
            let m = &models[0];
            // File names are `<id>-<major>_<minor>.xml`.
            assert_eq!(*name, format!("{}-{}_{}.xml", m.id, m.version.major, m.version.minor));
            assert!(!m.resources.is_empty(), "{name}");
        }
        assert_eq!(builtin_models().len(), FILES.len());
    }

    #[test]
    fn every_models_dir_file_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".xml"))
            .collect();
        on_disk.sort();
        let embedded: Vec<String> = FILES.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn every_shared_registry_file_parses() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/lwm2m-registry");
        if !dir.is_dir() {
            eprintln!("skipping: {} not present", dir.display());
            return;
        }
        let models = ddf::load_dir(&dir).unwrap();
        let xml_files = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "xml"))
            .count();
        assert!(xml_files >= 19);
        assert_eq!(models.len(), xml_files);
        let mut reg = ModelRegistry::new();
        assert_eq!(reg.load_dir(&dir).unwrap(), xml_files);
        assert_eq!(reg.len(), ModelRegistry::builtin().len());
    }

    #[test]
    fn server_1_1() {
        let reg = ModelRegistry::builtin();
        let server = reg.object(1).unwrap();
        assert_eq!(server.version, Version::V1_1);
        assert_eq!(server.lwm2m_version, Version::V1_1);
        assert_eq!(server.urn, "urn:oma:lwm2m:oma:1:1.1");
        assert_eq!(server.name, "LwM2M Server");
        assert!(server.multiple && server.mandatory);
        assert_eq!(
            server.resources.keys().copied().collect::<Vec<_>>(),
            (0..=23).collect::<Vec<u16>>()
        );
        for rid in 13..=20 {
            assert!(server.resource(rid).unwrap().operations.is_none(), "/1/x/{rid}");
        }
        let ssid = server.resource(0).unwrap();
        assert_eq!(ssid.name, "Short Server ID");
        assert_eq!(ssid.operations, Operations::R);
        assert_eq!(ssid.data_type, DataType::Integer);
        assert_eq!(ssid.range, "1..65534");
        assert!(ssid.mandatory && !ssid.multiple);
        assert_eq!(ssid.description, "Used as link to associate server Object Instance.");
        assert_eq!(server.resource(4).unwrap().operations, Operations::E);
        assert_eq!(server.resource(4).unwrap().data_type, DataType::None);
        assert_eq!(server.resource(1).unwrap().units, "s");
        assert_eq!(server.resource(11).unwrap().data_type, DataType::UnsignedInteger);
        assert_eq!(server.resource(13).unwrap().data_type, DataType::UnsignedInteger);
        assert_eq!(server.resource(15).unwrap().data_type, DataType::Boolean);
        assert_eq!(server.resource(21).unwrap().operations, Operations::RW);
    }

    #[test]
    fn device_and_security() {
        let reg = ModelRegistry::builtin();
        let r6 = reg.resource(3, 6).unwrap();
        assert!(r6.multiple);
        assert_eq!(r6.data_type, DataType::Integer);
        assert_eq!(r6.operations, Operations::R);
        assert!(reg.resource(3, 4).unwrap().operations.execute);
        for v in reg.versions(0) {
            let sec = reg.object_version(0, v).unwrap();
            assert!(sec.resources.values().all(|r| r.operations.is_none()), "0 v{v}");
        }
        assert_eq!(reg.resource(0, 0).unwrap().data_type, DataType::String);
        assert_eq!(reg.resource(0, 13).unwrap().data_type, DataType::UnsignedInteger);
    }

    #[test]
    fn versions_and_defaults() {
        let reg = ModelRegistry::builtin();
        assert_eq!(reg.versions(3303), vec![Version::V1_0, Version::V1_1]);
        assert_eq!(reg.versions(0), vec![Version::V1_1, Version::V1_2]);
        assert_eq!(reg.versions(5), vec![Version::V1_0, Version::V1_1, Version::V1_2]);
        assert_eq!(reg.versions(4), vec![Version::V1_2, Version::new(1, 3)]);
        let expect = [
            (0, Version::V1_1),
            (1, Version::V1_1),
            (2, Version::V1_0),
            (3, Version::V1_1),
            (4, Version::V1_2),
            (5, Version::V1_0),
            (6, Version::V1_0),
            (7, Version::V1_0),
            (21, Version::V1_0),
            (3303, Version::V1_0),
            (3311, Version::V1_0),
            (3442, Version::V1_0),
        ];
        for (oid, v) in expect {
            assert_eq!(reg.object(oid).unwrap().version, v, "object {oid}");
        }
        assert_eq!(
            reg.object_ids().collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4, 5, 6, 7, 21, 3303, 3311, 3442]
        );
        assert_eq!(reg.len(), 19);
        assert_eq!(
            reg.object_version(3303, Version::V1_0).unwrap().urn,
            "urn:oma:lwm2m:ext:3303"
        );
        assert_eq!(
            reg.object_version(3303, Version::V1_1).unwrap().urn,
            "urn:oma:lwm2m:ext:3303:1.1"
        );
        // 3303 1.1 still declares LWM2MVersion 1.0; Device 1.2 declares 1.1.
        assert_eq!(
            reg.object_version(3303, Version::V1_1).unwrap().lwm2m_version,
            Version::V1_0
        );
        assert_eq!(
            reg.object_version(3, Version::V1_2).unwrap().lwm2m_version,
            Version::V1_1
        );
        assert_ne!(
            reg.object_version(3, Version::V1_1),
            reg.object_version(3, Version::V1_2)
        );
        assert!(reg.object_version(5, Version::V1_1).unwrap().resource(10).is_some());
        assert!(reg.object_version(5, Version::V1_0).unwrap().resource(10).is_none());
    }

    #[test]
    fn typed_resources_where_the_xml_says() {
        let reg = ModelRegistry::builtin();
        let t = reg.object(3442).unwrap();
        assert_eq!(t.resource(125).unwrap().data_type, DataType::UnsignedInteger);
        assert_eq!(t.resource(1125).unwrap().data_type, DataType::UnsignedInteger);
        assert!(t.resource(1125).unwrap().multiple);
        assert_eq!(t.resource(180).unwrap().data_type, DataType::Corelnk);
        assert_eq!(t.resource(1180).unwrap().data_type, DataType::Corelnk);
        let fw11 = reg.object_version(5, Version::V1_1).unwrap();
        assert_eq!(fw11.resource(13).unwrap().data_type, DataType::UnsignedInteger);
        // Every type appears in the built-in models, and only the 24 Unsigned Integer / 2 Corelnk items.
        let count = |ty| {
            builtin_models()
                .iter()
                .flat_map(|m| m.resources.values())
                .filter(|r| r.data_type == ty)
                .count()
        };
        assert_eq!(count(DataType::UnsignedInteger), 24);
        assert_eq!(count(DataType::Corelnk), 2);
        assert_eq!(count(DataType::Objlnk), 9);
        assert_eq!(count(DataType::None), 23);
    }

    #[test]
    fn cheap_repeated_calls() {
        let a = ModelRegistry::builtin();
        let b = ModelRegistry::builtin();
        // The models themselves are shared, not re-parsed.
        assert!(std::ptr::eq(a.object(3).unwrap(), b.object(3).unwrap()));
        assert_eq!(builtin_models(), builtin_models());
    }
}
