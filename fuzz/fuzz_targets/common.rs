// Shared by the value-format fuzz targets: the first input byte picks the target path,
// the rest is the payload. Decoding must never panic; whatever decodes must re-encode
// without panicking, and encoding is stable from then on.
use std::sync::OnceLock;

use lwm2m_core::format::{self, ContentFormat};
use lwm2m_core::model::ModelRegistry;
use lwm2m_core::path::Path;

const PATHS: &[&str] = &[
    "/3", "/3/0", "/3/0/0", "/3/0/6", "/3/0/6/1", "/3/0/13", "/1/0", "/1/0/1", "/2/0/2", "/5/0/0", "/3303/0/5700",
    "/3442/0", "/3442/0/1110", "/4/0/4/0", "/1", "/65000/1/2",
];

fn models() -> &'static ModelRegistry {
    static M: OnceLock<ModelRegistry> = OnceLock::new();
    M.get_or_init(ModelRegistry::builtin)
}

pub fn run(format: ContentFormat, data: &[u8]) {
    let Some((&sel, payload)) = data.split_first() else { return };
    let path: Path = PATHS[sel as usize % PATHS.len()].parse().expect("fixed paths are valid");
    let models = models();
    if let Ok(node) = format::decode(format, &path, payload, models) {
        if let Ok(bytes) = format::encode(format, &path, &node) {
            // Compare bytes, not nodes, so NaN floats compare equal to themselves.
            let again = format::decode(format, &path, &bytes, models).expect("re-encoded content decodes");
            let bytes2 = format::encode(format, &path, &again).expect("decoded content re-encodes");
            assert_eq!(bytes, bytes2, "encode(decode(encode(x))) must equal encode(x)");
        }
    }
    if format.is_record_based() {
        let _ = format::decode_records(format, &path, payload, models);
    }
}
