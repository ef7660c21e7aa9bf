#![no_main]
use libfuzzer_sys::fuzz_target;
use lwm2m_core::format::link;

fuzz_target!(|data: &[u8]| {
    if let Ok(links) = link::parse(data) {
        // What parses must serialise and parse back to the same links.
        let text = link::write(&links);
        assert_eq!(link::parse(text.as_bytes()).ok(), Some(links));
    }
    let _ = link::parse_registration(data);
    let _ = link::parse_bootstrap_discover(data);
});
