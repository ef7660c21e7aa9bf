#![no_main]
use libfuzzer_sys::fuzz_target;
use lwm2m_core::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(p) = s.parse::<Path>() {
            assert_eq!(p.to_string().parse::<Path>().ok(), Some(p));
        }
    }
});
