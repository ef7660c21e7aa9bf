//! `Message::decode` must never panic; whatever decodes re-encodes to bytes that decode to an equal message,
//! and encoding is stable from then on. The same input is also tried as an RFC 8323 TCP frame.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lwm2m_coap::{decode_frame, encode_frame, Message};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::decode(data) {
        let bytes = m.encode();
        let again = Message::decode(&bytes).expect("an encoded message decodes");
        assert_eq!(again, m, "decode(encode(m)) must equal m");
        assert_eq!(again.encode(), bytes, "encoding is stable");
    }
    if let Ok(Some((frame, used))) = decode_frame(data) {
        assert!(used <= data.len());
        let bytes = encode_frame(&frame);
        match decode_frame(&bytes) {
            Ok(Some((again, n))) => {
                assert_eq!(n, bytes.len());
                assert_eq!(again, frame, "TCP frame round trip");
            }
            other => panic!("an encoded TCP frame must decode: {other:?}"),
        }
    }
});
