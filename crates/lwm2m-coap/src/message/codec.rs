//! RFC 7252 §3 message format: strict decoder and encoder, plus the option/payload section shared with
//! RFC 8323 framing.

use thiserror::Error;

use super::option::{Options, MAX_OPTION_VALUE_LEN};
use super::{Code, Message, MessageType, Token};

/// Why a message (or option value) could not be decoded or encoded. Decoder variants name the byte offset.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MessageError {
    /// Fewer bytes than the fixed header.
    #[error("message is {len} bytes, shorter than the {needed}-byte header")]
    TooShort { len: usize, needed: usize },
    /// Version field is not 1. RFC 7252 §3: such messages MUST be silently ignored.
    #[error("byte 0: unsupported CoAP version {version}")]
    UnsupportedVersion { version: u8 },
    /// TKL 9–15 (reserved).
    #[error("byte {offset}: token length {tkl} is reserved (must be 0..8)")]
    InvalidTokenLength { offset: usize, tkl: u8 },
    /// Code in a reserved class (1, 6, 7 over UDP; unknown signals over TCP).
    #[error("byte {offset}: code {code} is in a reserved class")]
    ReservedCode { offset: usize, code: Code },
    /// Empty message (code 0.00) carrying a token, options or payload.
    #[error("byte {offset}: empty message (0.00) must not carry {reason}")]
    EmptyNotEmpty { offset: usize, reason: &'static str },
    /// Payload marker 0xFF followed by no payload.
    #[error("byte {offset}: payload marker followed by an empty payload")]
    EmptyPayload { offset: usize },
    /// Option delta or length nibble 15 without being the payload marker.
    #[error("byte {offset}: option {field} nibble 15 is reserved")]
    ReservedOptionNibble { offset: usize, field: &'static str },
    /// Data ends before a token, extended delta/length, option value or frame body.
    #[error("byte {offset}: message ends inside {what}")]
    Truncated { offset: usize, what: &'static str },
    /// Option number exceeds 65535.
    #[error("byte {offset}: option number overflows 65535")]
    OptionNumberOverflow { offset: usize },
    /// An option value too long to encode.
    #[error("option {number}: value of {len} bytes exceeds the encodable maximum of 65804")]
    OptionValueTooLong { number: u16, len: usize },
    /// An option value that does not fit its number's format, or an unknown critical option.
    #[error("option {number}: {reason}")]
    BadOption { number: u16, reason: &'static str },
    /// A Block1/Block2 value that is not valid.
    #[error("invalid block option: {reason}")]
    InvalidBlock { reason: &'static str },
    /// A TCP frame longer than the accepted maximum.
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge { len: u64, limit: u64 },
}

/// Size of the fixed UDP header.
pub const HEADER_LEN: usize = 4;
/// The payload marker byte.
pub const PAYLOAD_MARKER: u8 = 0xFF;

impl Message {
    /// Decode one UDP/DTLS datagram strictly per RFC 7252 §3.
    pub fn decode(buf: &[u8]) -> Result<Message, MessageError> {
        let (b0, code, mid_hi, mid_lo) = match buf {
            [b0, code, hi, lo, ..] => (*b0, *code, *hi, *lo),
            _ => {
                return Err(MessageError::TooShort {
                    len: buf.len(),
                    needed: HEADER_LEN,
                })
            }
        };
        let version = b0 >> 6;
        if version != 1 {
            return Err(MessageError::UnsupportedVersion { version });
        }
        let mtype = MessageType::from_bits(b0 >> 4);
        let tkl = b0 & 0x0F;
        if tkl > 8 {
            return Err(MessageError::InvalidTokenLength { offset: 0, tkl });
        }
        let code = Code(code);
        if matches!(code.class(), 1 | 6 | 7) {
            return Err(MessageError::ReservedCode { offset: 1, code });
        }
        let message_id = u16::from_be_bytes([mid_hi, mid_lo]);
        if code == Code::EMPTY {
            if tkl != 0 {
                return Err(MessageError::EmptyNotEmpty {
                    offset: 0,
                    reason: "a token",
                });
            }
            if buf.len() > HEADER_LEN {
                return Err(MessageError::EmptyNotEmpty {
                    offset: HEADER_LEN,
                    reason: "options or payload",
                });
            }
        }
        let token_end = HEADER_LEN + usize::from(tkl);
        let token_bytes = buf.get(HEADER_LEN..token_end).ok_or(MessageError::Truncated {
            offset: buf.len(),
            what: "the token",
        })?;
        let token = Token::try_from_slice(token_bytes).ok_or(MessageError::InvalidTokenLength { offset: 0, tkl })?;
        let (options, payload) = decode_options_and_payload(buf, token_end)?;
        Ok(Message {
            mtype,
            code,
            message_id,
            token,
            options,
            payload,
        })
    }

    /// Encode to a new buffer.
    ///
    /// Encoding never fails: [`Options`] refuses unencodable values on insertion and [`Token`] holds at most
    /// 8 bytes. The encoder does not check message-layer rules (e.g. an Empty message with a token is written
    /// as given, and [`Message::decode`] will reject it).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len_hint());
        self.encode_into(&mut out);
        out
    }

    /// Append the encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let token = self.token.as_slice();
        out.push(0x40 | (self.mtype.bits() << 4) | token.len() as u8);
        out.push(self.code.0);
        out.extend_from_slice(&self.message_id.to_be_bytes());
        out.extend_from_slice(token);
        encode_options_and_payload(&self.options, &self.payload, out);
    }

    fn encoded_len_hint(&self) -> usize {
        let opts: usize = self.options.iter().map(|(_, v)| v.len() + 5).sum();
        HEADER_LEN + self.token.len() + opts + 1 + self.payload.len()
    }
}

/// Decode the options and payload that start at `start` and run to the end of `buf`. Offsets in errors are
/// absolute positions in `buf`.
pub(crate) fn decode_options_and_payload(buf: &[u8], start: usize) -> Result<(Options, Vec<u8>), MessageError> {
    let mut options = Options::new();
    let mut pos = start;
    let mut number: u16 = 0;
    while let Some(&byte) = buf.get(pos) {
        if byte == PAYLOAD_MARKER {
            let payload = buf.get(pos + 1..).unwrap_or_default();
            if payload.is_empty() {
                return Err(MessageError::EmptyPayload { offset: pos });
            }
            return Ok((options, payload.to_vec()));
        }
        let header_offset = pos;
        pos += 1;
        let delta = read_extended(buf, &mut pos, byte >> 4, header_offset, "delta")?;
        let len = read_extended(buf, &mut pos, byte & 0x0F, header_offset, "length")?;
        let new_number = u32::from(number) + delta;
        number = u16::try_from(new_number).map_err(|_| MessageError::OptionNumberOverflow { offset: header_offset })?;
        let len = len as usize;
        let end = pos.checked_add(len).ok_or(MessageError::Truncated {
            offset: pos,
            what: "an option value",
        })?;
        let value = buf.get(pos..end).ok_or(MessageError::Truncated {
            offset: pos,
            what: "an option value",
        })?;
        options.try_push(number, value)?;
        pos = end;
    }
    Ok((options, Vec::new()))
}

/// Read an option delta or length: nibble 0–12 direct, 13 → +1 byte + 13, 14 → +2 bytes + 269, 15 reserved.
fn read_extended(
    buf: &[u8],
    pos: &mut usize,
    nibble: u8,
    header_offset: usize,
    field: &'static str,
) -> Result<u32, MessageError> {
    let what = if field == "delta" {
        "an extended option delta"
    } else {
        "an extended option length"
    };
    match nibble {
        0..=12 => Ok(u32::from(nibble)),
        13 => {
            let b = *buf.get(*pos).ok_or(MessageError::Truncated { offset: *pos, what })?;
            *pos += 1;
            Ok(u32::from(b) + 13)
        }
        14 => {
            let Some(&[hi, lo]) = buf.get(*pos..*pos + 2) else {
                return Err(MessageError::Truncated { offset: *pos, what });
            };
            *pos += 2;
            Ok(u32::from(u16::from_be_bytes([hi, lo])) + 269)
        }
        _ => Err(MessageError::ReservedOptionNibble {
            offset: header_offset,
            field,
        }),
    }
}

/// Append options (delta-encoded) and, if non-empty, the payload marker and payload.
pub(crate) fn encode_options_and_payload(options: &Options, payload: &[u8], out: &mut Vec<u8>) {
    let mut prev: u16 = 0;
    for (number, value) in options.iter() {
        let delta = u32::from(number - prev);
        debug_assert!(value.len() <= MAX_OPTION_VALUE_LEN);
        let len = value.len() as u32;
        let (dn, dext) = nibble_for(delta);
        let (ln, lext) = nibble_for(len);
        out.push((dn << 4) | ln);
        dext.write(out);
        lext.write(out);
        out.extend_from_slice(value);
        prev = number;
    }
    if !payload.is_empty() {
        out.push(PAYLOAD_MARKER);
        out.extend_from_slice(payload);
    }
}

enum Ext {
    None,
    One(u8),
    Two(u16),
}

impl Ext {
    fn write(self, out: &mut Vec<u8>) {
        match self {
            Ext::None => {}
            Ext::One(b) => out.push(b),
            Ext::Two(v) => out.extend_from_slice(&v.to_be_bytes()),
        }
    }
}

fn nibble_for(v: u32) -> (u8, Ext) {
    if v < 13 {
        (v as u8, Ext::None)
    } else if v < 269 {
        (13, Ext::One((v - 13) as u8))
    } else {
        // Callers guarantee v <= 65535 + 269.
        (14, Ext::Two((v - 269) as u16))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::option::Block;
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // ---- byte-exact vectors, built by hand from the RFC 7252 §3 layout ----

    #[test]
    fn vector_get_with_uri_path() {
        // CON GET, MID 0x7d34, no token, Uri-Path "temperature" (RFC 7252 Appendix A style).
        // 0x40 = ver 1, CON, TKL 0; 0x01 = GET; option delta 11, len 11 -> 0xBB.
        let bytes = hex("40 01 7d 34 bb 74 65 6d 70 65 72 61 74 75 72 65");
        let m = Message::decode(&bytes).unwrap();
        assert_eq!(m.mtype, MessageType::Con);
        assert_eq!(m.code, Code::GET);
        assert_eq!(m.message_id, 0x7d34);
        assert!(m.token.is_empty());
        assert_eq!(m.uri_path(), vec!["temperature"]);
        assert!(m.payload.is_empty());
        assert_eq!(m.encode(), bytes);
        let mut built = Message::request(Code::GET, "/temperature");
        built.message_id = 0x7d34;
        assert_eq!(built.encode(), bytes);
    }

    #[test]
    fn vector_piggybacked_content() {
        // ACK 2.05, MID 0x7d34, token 0x71, Content-Format 0 (empty value), payload "22.3 C".
        // 0x61 = ver 1, ACK(2), TKL 1; 0x45 = 2.05; option delta 12 len 0 -> 0xC0.
        let bytes = hex("61 45 7d 34 71 c0 ff 32 32 2e 33 20 43");
        let m = Message::decode(&bytes).unwrap();
        assert_eq!(m.mtype, MessageType::Ack);
        assert_eq!(m.code, Code::CONTENT);
        assert_eq!(m.token.as_slice(), &[0x71]);
        assert_eq!(m.content_format(), Some(0));
        assert_eq!(m.payload, b"22.3 C");
        assert_eq!(m.encode(), bytes);
    }

    #[test]
    fn vector_register_with_queries_and_extended_delta() {
        // CON POST /rd?ep=a&lt=60, token 0x0102, Content-Format 40, Size1 (60, delta 45 -> extended 13)
        // Options: 11 "rd" (0xB2), 12 cf 40 (delta 1, len 1 -> 0x11 0x28), 15 "ep=a" (delta 3 -> 0x34),
        // 15 "lt=60" (delta 0 -> 0x05), 60 size1 5 (delta 45 -> 0xD1, ext 45-13=32=0x20, value 05).
        let bytes = hex("42 02 00 01 01 02 b2 72 64 11 28 34 65 70 3d 61 05 6c 74 3d 36 30 d1 20 05 ff 3c 2f 31 3e");
        let m = Message::decode(&bytes).unwrap();
        assert_eq!(m.code, Code::POST);
        assert_eq!(m.uri_path(), vec!["rd"]);
        assert_eq!(m.uri_query(), vec!["ep=a", "lt=60"]);
        assert_eq!(m.content_format(), Some(40));
        assert_eq!(m.size1(), Some(5));
        assert_eq!(m.payload, b"</1>");
        assert_eq!(m.encode(), bytes);
    }

    #[test]
    fn vector_two_byte_extended_delta_and_length() {
        // Option 300 (delta 300 -> nibble 14, ext 300-269=31) with a 300-byte value (nibble 14, ext 31).
        let mut bytes = hex("50 45 00 09 ee 00 1f 00 1f");
        bytes.extend([0xAAu8; 300]);
        let m = Message::decode(&bytes).unwrap();
        assert_eq!(m.mtype, MessageType::Non);
        let (n, v) = m.options.iter().next().unwrap();
        assert_eq!((n, v.len()), (300, 300));
        assert_eq!(m.encode(), bytes);
    }

    #[test]
    fn vector_empty_ack_rst_and_ping() {
        for (b0, t) in [
            (0x60, MessageType::Ack),
            (0x70, MessageType::Rst),
            (0x40, MessageType::Con),
        ] {
            let bytes = [b0, 0x00, 0x12, 0x34];
            let m = Message::decode(&bytes).unwrap();
            assert_eq!((m.mtype, m.code, m.message_id), (t, Code::EMPTY, 0x1234));
            assert_eq!(m.encode(), bytes);
        }
        assert_eq!(Message::empty_ack(0x1234).encode(), [0x60, 0, 0x12, 0x34]);
        assert_eq!(Message::reset(0x1234).encode(), [0x70, 0, 0x12, 0x34]);
    }

    #[test]
    fn vector_block2_response() {
        // ACK 2.05 token aa, Block2 NUM=1 M=1 SZX=2 (value 0x1a; option 23, delta 23 -> 0xD1 0x0a)
        let bytes = hex("61 45 00 02 aa d1 0a 1a ff 01");
        let m = Message::decode(&bytes).unwrap();
        assert_eq!(
            m.block2(),
            Some(Block {
                num: 1,
                more: true,
                szx: 2
            })
        );
        assert_eq!(m.encode(), bytes);
    }

    // ---- every format error ----

    #[test]
    fn error_too_short() {
        assert_eq!(
            Message::decode(&[0x40, 0x01, 0x00]),
            Err(MessageError::TooShort { len: 3, needed: 4 })
        );
        assert_eq!(Message::decode(&[]), Err(MessageError::TooShort { len: 0, needed: 4 }));
    }

    #[test]
    fn error_version() {
        for b0 in [0x00u8, 0x80, 0xC0] {
            assert_eq!(
                Message::decode(&[b0, 0x01, 0, 1]),
                Err(MessageError::UnsupportedVersion { version: b0 >> 6 })
            );
        }
    }

    #[test]
    fn error_tkl_reserved() {
        for tkl in 9u8..=15 {
            let mut bytes = vec![0x40 | tkl, 0x01, 0, 1];
            bytes.extend([0u8; 15]);
            assert_eq!(
                Message::decode(&bytes),
                Err(MessageError::InvalidTokenLength { offset: 0, tkl })
            );
        }
    }

    #[test]
    fn error_token_truncated() {
        assert_eq!(
            Message::decode(&[0x44, 0x01, 0, 1, 1, 2]),
            Err(MessageError::Truncated {
                offset: 6,
                what: "the token"
            })
        );
    }

    #[test]
    fn error_reserved_code_classes() {
        for class in [1u8, 6, 7] {
            let code = Code::new(class, 1);
            assert_eq!(
                Message::decode(&[0x40, code.0, 0, 1]),
                Err(MessageError::ReservedCode { offset: 1, code })
            );
        }
    }

    #[test]
    fn error_empty_message_with_content() {
        assert_eq!(
            Message::decode(&[0x41, 0x00, 0, 1, 0xAB]),
            Err(MessageError::EmptyNotEmpty {
                offset: 0,
                reason: "a token"
            })
        );
        assert_eq!(
            Message::decode(&[0x60, 0x00, 0, 1, 0xB1, b'a']),
            Err(MessageError::EmptyNotEmpty {
                offset: 4,
                reason: "options or payload"
            })
        );
        assert_eq!(
            Message::decode(&[0x60, 0x00, 0, 1, 0xFF, b'a']),
            Err(MessageError::EmptyNotEmpty {
                offset: 4,
                reason: "options or payload"
            })
        );
    }

    #[test]
    fn error_payload_marker_without_payload() {
        assert_eq!(
            Message::decode(&[0x40, 0x01, 0, 1, 0xFF]),
            Err(MessageError::EmptyPayload { offset: 4 })
        );
        assert_eq!(
            Message::decode(&[0x40, 0x01, 0, 1, 0xB1, b'a', 0xFF]),
            Err(MessageError::EmptyPayload { offset: 6 })
        );
    }

    #[test]
    fn error_reserved_nibbles() {
        // delta 15 with length != 15
        assert_eq!(
            Message::decode(&[0x40, 0x01, 0, 1, 0xF0]),
            Err(MessageError::ReservedOptionNibble {
                offset: 4,
                field: "delta"
            })
        );
        // length 15 with delta != 15
        assert_eq!(
            Message::decode(&[0x40, 0x01, 0, 1, 0xB1, b'a', 0x0F]),
            Err(MessageError::ReservedOptionNibble {
                offset: 6,
                field: "length"
            })
        );
    }

    #[test]
    fn error_extended_fields_truncated() {
        assert_eq!(
            Message::decode(&[0x40, 0x01, 0, 1, 0xD0]),
            Err(MessageError::Truncated {
                offset: 5,
                what: "an extended option delta"
            })
        );
        assert_eq!(
            Message::decode(&[0x40, 0x01, 0, 1, 0xE0, 0x01]),
            Err(MessageError::Truncated {
                offset: 5,
                what: "an extended option delta"
            })
        );
        assert_eq!(
            Message::decode(&[0x40, 0x01, 0, 1, 0x1D]),
            Err(MessageError::Truncated {
                offset: 5,
                what: "an extended option length"
            })
        );
        assert_eq!(
            Message::decode(&[0x40, 0x01, 0, 1, 0x1E, 0x00]),
            Err(MessageError::Truncated {
                offset: 5,
                what: "an extended option length"
            })
        );
    }

    #[test]
    fn error_option_value_beyond_buffer() {
        assert_eq!(
            Message::decode(&[0x40, 0x01, 0, 1, 0xB3, b'a', b'b']),
            Err(MessageError::Truncated {
                offset: 5,
                what: "an option value"
            })
        );
        // 2-byte extended length claiming 269 + 0x0100 bytes
        assert_eq!(
            Message::decode(&[0x40, 0x01, 0, 1, 0x1E, 0x01, 0x00, 1, 2, 3]),
            Err(MessageError::Truncated {
                offset: 7,
                what: "an option value"
            })
        );
    }

    #[test]
    fn error_option_number_overflow() {
        // delta 14: 0xFFFF + 269 > 65535 on its own
        assert_eq!(
            Message::decode(&[0x40, 0x01, 0, 1, 0xE0, 0xFF, 0xFF]),
            Err(MessageError::OptionNumberOverflow { offset: 4 })
        );
        // 65000 then +1000
        let d1 = 65000u16 - 269;
        let d2 = 1000u16 - 269;
        let mut b = vec![0x40, 0x01, 0, 1, 0xE0];
        b.extend(d1.to_be_bytes());
        b.push(0xE0);
        b.extend(d2.to_be_bytes());
        assert_eq!(
            Message::decode(&b),
            Err(MessageError::OptionNumberOverflow { offset: 7 })
        );
    }

    // ---- properties ----

    pub(crate) fn arb_code() -> impl Strategy<Value = Code> {
        prop_oneof![
            (0u8..32).prop_map(|d| Code::new(0, d)),
            (2u8..=5, 0u8..32).prop_map(|(c, d)| Code::new(c, d)),
        ]
    }

    pub(crate) fn arb_options() -> impl Strategy<Value = Options> {
        prop::collection::vec(
            (
                prop_oneof![0u16..70, 250u16..300, 60000u16..=65535, any::<u16>()],
                prop_oneof![
                    prop::collection::vec(any::<u8>(), 0..14),
                    prop::collection::vec(any::<u8>(), 12..300),
                ],
            ),
            0..8,
        )
        .prop_map(|v| {
            let mut o = Options::new();
            for (n, val) in v {
                o.push(n, val);
            }
            o
        })
    }

    pub(crate) fn arb_message() -> impl Strategy<Value = Message> {
        (
            0u8..4,
            arb_code(),
            any::<u16>(),
            prop::collection::vec(any::<u8>(), 0..=8),
            arb_options(),
            prop::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(t, code, mid, token, options, payload)| {
                let mut m = Message {
                    mtype: MessageType::from_bits(t),
                    code,
                    message_id: mid,
                    token: Token::try_from_slice(&token).unwrap(),
                    options,
                    payload,
                };
                if code == Code::EMPTY {
                    m.token = Token::EMPTY;
                    m.options = Options::new();
                    m.payload.clear();
                }
                m
            })
    }

    proptest! {
        #[test]
        fn round_trip(m in arb_message()) {
            let bytes = m.encode();
            let back = Message::decode(&bytes).unwrap();
            prop_assert_eq!(&back, &m);
            prop_assert_eq!(back.encode(), bytes);
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = Message::decode(&bytes);
        }

        #[test]
        fn decode_never_panics_with_valid_header(
            b0 in 0x40u8..0x80, code: u8, rest in prop::collection::vec(any::<u8>(), 0..80)
        ) {
            let mut bytes = vec![b0, code, 0, 1];
            bytes.extend(rest);
            if let Ok(m) = Message::decode(&bytes) {
                // Whatever we accept re-encodes to exactly the input (the encoding is canonical).
                prop_assert_eq!(m.encode(), bytes);
            }
        }
    }
}
