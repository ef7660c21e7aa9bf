//! `decode_queued_request` (the server's persisted record of a request held for a sleeping queue-mode
//! client) must never panic on any bytes; whatever decodes re-encodes to a record that decodes again, and
//! encoding is stable from then on (bytes are compared, so NaN floats compare equal to themselves).
#![no_main]
use libfuzzer_sys::fuzz_target;
use lwm2m_server::store::{decode_queued_request, encode_queued_request};

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = decode_queued_request(data) {
        let bytes = encode_queued_request(&q);
        let again = decode_queued_request(&bytes).expect("an encoded record decodes");
        assert_eq!(encode_queued_request(&again), bytes, "encoding is stable");
    }
});
