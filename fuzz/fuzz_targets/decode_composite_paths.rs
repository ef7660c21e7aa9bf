#![no_main]
use libfuzzer_sys::fuzz_target;
use lwm2m_core::format::{self, ContentFormat};

fuzz_target!(|data: &[u8]| {
    for f in [ContentFormat::SenmlJson, ContentFormat::SenmlCbor] {
        let _ = format::decode_paths(f, data);
    }
});
