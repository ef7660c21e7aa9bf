//! Differential tests of our strict RFC 7252 codec against `coap-lite` (dev-dependency, used only as an oracle).
//!
//! Properties:
//! 1. For arbitrary valid messages, coap-lite parses our encoding to the same version, type, code, Message ID,
//!    token, options (number + value, in order) and payload.
//! 2. For arbitrary bytes that our decoder accepts, coap-lite accepts them too and agrees on every field.
//!
//! The converse of (2) is deliberately not required: coap-lite is lenient. Known inputs it accepts and we
//! reject (each is a format error per RFC 7252 §3 or §4):
//! - version field other than 1 (we return `UnsupportedVersion` so the endpoint silently ignores it);
//! - codes in the reserved classes 1, 6 and 7 (coap-lite maps them to `MessageClass::Reserved`);
//! - an Empty message (0.00) carrying a token, options or a payload;
//! - a payload marker 0xFF followed by a zero-length payload (coap-lite yields an empty payload).
//!
//! One difference runs the other way and cannot be reached by these tests: an option with a 2-byte extended
//! length above 65535 - 269 (values of 65267..=65804 bytes). RFC 7252 permits it and we accept it, while
//! coap-lite overflows a u16 and rejects it. Such an option needs a datagram larger than 64 KiB.

use coap_lite::Packet;
use lwm2m_coap::message::{Code, Message, MessageType, Options, Token};
use proptest::prelude::*;

fn lite_type(t: coap_lite::MessageType) -> MessageType {
    match t {
        coap_lite::MessageType::Confirmable => MessageType::Con,
        coap_lite::MessageType::NonConfirmable => MessageType::Non,
        coap_lite::MessageType::Acknowledgement => MessageType::Ack,
        coap_lite::MessageType::Reset => MessageType::Rst,
    }
}

fn lite_options(p: &Packet) -> Vec<(u16, Vec<u8>)> {
    p.options()
        .flat_map(|(n, values)| values.iter().map(move |v| (*n, v.clone())))
        .collect()
}

fn assert_agree(ours: &Message, lite: &Packet) -> Result<(), TestCaseError> {
    prop_assert_eq!(lite.header.get_version(), 1);
    prop_assert_eq!(lite_type(lite.header.get_type()), ours.mtype);
    prop_assert_eq!(u8::from(lite.header.code), ours.code.0);
    prop_assert_eq!(lite.header.message_id, ours.message_id);
    prop_assert_eq!(lite.get_token(), ours.token.as_slice());
    let our_opts: Vec<(u16, Vec<u8>)> = ours.options.iter().map(|(n, v)| (n, v.to_vec())).collect();
    prop_assert_eq!(lite_options(lite), our_opts);
    prop_assert_eq!(&lite.payload, &ours.payload);
    Ok(())
}

fn arb_message() -> impl Strategy<Value = Message> {
    let code = prop_oneof![
        Just(Code::EMPTY),
        (1u8..32).prop_map(|d| Code::new(0, d)),
        (2u8..=5, 0u8..32).prop_map(|(c, d)| Code::new(c, d)),
    ];
    let options = prop::collection::vec(
        (
            prop_oneof![1u16..64, 250u16..300, any::<u16>()],
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..14),
                prop::collection::vec(any::<u8>(), 13..300)
            ],
        ),
        0..8,
    );
    (
        0u8..4,
        code,
        any::<u16>(),
        prop::collection::vec(any::<u8>(), 0..=8),
        options,
        prop::collection::vec(any::<u8>(), 0..100),
    )
        .prop_map(|(t, code, mid, token, opts, payload)| {
            let mut m = Message::new(MessageType::from_bits(t), code);
            m.message_id = mid;
            if code != Code::EMPTY {
                m.token = Token::try_from_slice(&token).unwrap();
                let mut o = Options::new();
                for (n, v) in opts {
                    o.push(n, v);
                }
                m.options = o;
                m.payload = payload;
            }
            m
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn coap_lite_parses_our_encoding_identically(m in arb_message()) {
        let bytes = m.encode();
        let lite = Packet::from_bytes(&bytes).map_err(|e| TestCaseError::fail(format!("coap-lite rejected: {e:?}")))?;
        assert_agree(&m, &lite)?;
        let ours = Message::decode(&bytes).unwrap();
        prop_assert_eq!(ours, m);
    }

    #[test]
    fn whatever_we_accept_coap_lite_accepts_alike(bytes in prop::collection::vec(any::<u8>(), 0..96)) {
        if let Ok(ours) = Message::decode(&bytes) {
            let lite = Packet::from_bytes(&bytes)
                .map_err(|e| TestCaseError::fail(format!("coap-lite rejected what we accepted: {e:?}")))?;
            assert_agree(&ours, &lite)?;
        }
    }

    #[test]
    fn whatever_we_accept_coap_lite_accepts_alike_structured(
        t in 0u8..4, tkl in 0u8..=8, code in prop_oneof![0u8..8, 0x40u8..0xC0],
        rest in prop::collection::vec(prop_oneof![any::<u8>(), Just(0xFFu8), 0xB0u8..0xBF, 0xD0u8..0xE2], 0..96)
    ) {
        let mut bytes = vec![0x40 | (t << 4) | tkl, code, 0x12, 0x34];
        bytes.extend(rest);
        if let Ok(ours) = Message::decode(&bytes) {
            let lite = Packet::from_bytes(&bytes)
                .map_err(|e| TestCaseError::fail(format!("coap-lite rejected what we accepted: {e:?}")))?;
            assert_agree(&ours, &lite)?;
        }
    }
}

/// The documented lenient cases: coap-lite accepts, we reject.
#[test]
fn documented_differences() {
    let cases: [&[u8]; 5] = [
        &[0x80, 0x01, 0, 1],          // version 2
        &[0x40, 0x21, 0, 1],          // code 1.01 (reserved class)
        &[0x41, 0x00, 0, 1, 0xAA],    // Empty with a token
        &[0x60, 0x00, 0, 1, 0xFF, 1], // Empty with a payload
        &[0x40, 0x01, 0, 1, 0xFF],    // payload marker, empty payload
    ];
    for bytes in cases {
        assert!(Message::decode(bytes).is_err(), "{bytes:02x?}");
        assert!(Packet::from_bytes(bytes).is_ok(), "{bytes:02x?}");
    }
}
