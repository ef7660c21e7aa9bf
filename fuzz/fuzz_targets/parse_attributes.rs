#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let queries: Vec<&str> = s.split('&').collect();
        let _ = lwm2m_core::attributes::parse_query(&queries);
    }
});
