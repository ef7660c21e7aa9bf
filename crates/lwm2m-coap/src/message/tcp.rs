//! RFC 8323 framing for CoAP over TCP/TLS: `Len|TKL [ExtLen] Code Token Options [0xFF Payload]`, no type and no
//! Message ID, plus the 7.xx signalling codes.

use super::codec::{decode_options_and_payload, encode_options_and_payload, MessageError};
use super::{Code, Message, MessageType, Options, Token};

/// Signalling option numbers (RFC 8323 §5). Their meaning depends on the signal code.
pub mod signal_opt {
    /// CSM: Max-Message-Size (uint).
    pub const MAX_MESSAGE_SIZE: u16 = 2;
    /// CSM: Block-Wise-Transfer (empty).
    pub const BLOCK_WISE_TRANSFER: u16 = 4;
    /// Ping/Pong: Custody (empty).
    pub const CUSTODY: u16 = 2;
    /// Release: Alternative-Address (string).
    pub const ALTERNATIVE_ADDRESS: u16 = 2;
    /// Release: Hold-Off (uint seconds).
    pub const HOLD_OFF: u16 = 4;
    /// Abort: Bad-CSM-Option (uint).
    pub const BAD_CSM_OPTION: u16 = 2;
}

/// Default Max-Message-Size before a CSM is received (RFC 8323 §5.3.1).
pub const DEFAULT_MAX_MESSAGE_SIZE: u32 = 1152;

/// A CoAP message in RFC 8323 framing (no type, no Message ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpMessage {
    /// Request, response, 0.00 or 7.01–7.05 signal code.
    pub code: Code,
    /// Token (0–8 bytes).
    pub token: Token,
    /// Options.
    pub options: Options,
    /// Payload.
    pub payload: Vec<u8>,
}

impl TcpMessage {
    /// A bare message.
    pub fn new(code: Code) -> Self {
        TcpMessage {
            code,
            token: Token::EMPTY,
            options: Options::new(),
            payload: Vec::new(),
        }
    }

    /// A 7.01 CSM with Max-Message-Size and, optionally, Block-Wise-Transfer.
    pub fn csm(max_message_size: u32, block_wise: bool) -> Self {
        let mut m = TcpMessage::new(Code::CSM);
        m.options.set_uint(signal_opt::MAX_MESSAGE_SIZE, max_message_size);
        if block_wise {
            m.options.push(signal_opt::BLOCK_WISE_TRANSFER, Vec::new());
        }
        m
    }

    /// A 7.02 Ping.
    pub fn ping() -> Self {
        TcpMessage::new(Code::PING)
    }

    /// The 7.03 Pong answering `ping` (same token).
    pub fn pong_to(ping: &TcpMessage) -> Self {
        let mut m = TcpMessage::new(Code::PONG);
        m.token = ping.token;
        m
    }

    /// The same content as a UDP [`Message`] with the given type and Message ID.
    pub fn to_message(&self, mtype: MessageType, message_id: u16) -> Message {
        Message {
            mtype,
            code: self.code,
            message_id,
            token: self.token,
            options: self.options.clone(),
            payload: self.payload.clone(),
        }
    }

    /// Take code, token, options and payload of a UDP [`Message`] (type and Message ID are dropped).
    pub fn from_message(m: &Message) -> Self {
        TcpMessage {
            code: m.code,
            token: m.token,
            options: m.options.clone(),
            payload: m.payload.clone(),
        }
    }

    /// Encode one frame.
    pub fn encode(&self) -> Vec<u8> {
        encode_frame(self)
    }
}

/// True if `code` may appear in RFC 8323 framing: 0.00, requests, responses (classes 2–5), signals 7.01–7.05.
pub fn is_valid_tcp_code(code: Code) -> bool {
    match code.class() {
        0 | 2..=5 => true,
        7 => (1..=5).contains(&code.detail()),
        _ => false,
    }
}

/// Decode one frame from the start of `buf` with no size limit. See [`decode_frame_with_limit`].
pub fn decode_frame(buf: &[u8]) -> Result<Option<(TcpMessage, usize)>, MessageError> {
    decode_frame_with_limit(buf, u64::MAX)
}

/// Decode one frame from the start of `buf`.
///
/// Returns `Ok(None)` while the buffer holds less than a whole frame, `Ok(Some((message, consumed)))` once it
/// does. `limit` caps the whole frame size (use the peer-advertised or our Max-Message-Size); a larger length
/// field is an error as soon as it has been read, so a stream driver never buffers an oversized frame.
pub fn decode_frame_with_limit(buf: &[u8], limit: u64) -> Result<Option<(TcpMessage, usize)>, MessageError> {
    let Some(&b0) = buf.first() else {
        return Ok(None);
    };
    let len_nibble = b0 >> 4;
    let tkl = b0 & 0x0F;
    if tkl > 8 {
        return Err(MessageError::InvalidTokenLength { offset: 0, tkl });
    }
    let ext_len = match len_nibble {
        0..=12 => 0usize,
        13 => 1,
        14 => 2,
        _ => 4,
    };
    let Some(ext) = buf.get(1..1 + ext_len) else {
        return Ok(None);
    };
    let body_len: u64 = match (len_nibble, ext) {
        (0..=12, _) => u64::from(len_nibble),
        (13, [a]) => u64::from(*a) + 13,
        (14, [a, b]) => u64::from(u16::from_be_bytes([*a, *b])) + 269,
        (_, [a, b, c, d]) => u64::from(u32::from_be_bytes([*a, *b, *c, *d])) + 65805,
        _ => {
            return Err(MessageError::Truncated {
                offset: 1,
                what: "the extended length",
            })
        }
    };
    let header_len = 1 + ext_len + 1 + usize::from(tkl);
    let total = body_len + header_len as u64;
    if total > limit {
        return Err(MessageError::FrameTooLarge { len: total, limit });
    }
    let total = usize::try_from(total).map_err(|_| MessageError::FrameTooLarge { len: total, limit })?;
    let Some(frame) = buf.get(..total) else {
        return Ok(None);
    };
    let code_offset = 1 + ext_len;
    let code = Code(*frame.get(code_offset).ok_or(MessageError::Truncated {
        offset: code_offset,
        what: "the code",
    })?);
    if !is_valid_tcp_code(code) {
        return Err(MessageError::ReservedCode {
            offset: code_offset,
            code,
        });
    }
    let token_bytes = frame.get(code_offset + 1..header_len).ok_or(MessageError::Truncated {
        offset: code_offset + 1,
        what: "the token",
    })?;
    let token = Token::try_from_slice(token_bytes).ok_or(MessageError::InvalidTokenLength { offset: 0, tkl })?;
    let (options, payload) = decode_options_and_payload(frame, header_len)?;
    Ok(Some((
        TcpMessage {
            code,
            token,
            options,
            payload,
        },
        total,
    )))
}

/// Encode one frame.
pub fn encode_frame(m: &TcpMessage) -> Vec<u8> {
    let mut body = Vec::new();
    encode_options_and_payload(&m.options, &m.payload, &mut body);
    let token = m.token.as_slice();
    let mut out = Vec::with_capacity(body.len() + token.len() + 6);
    let len = body.len() as u64;
    let tkl = token.len() as u8;
    if len < 13 {
        out.push(((len as u8) << 4) | tkl);
    } else if len < 269 {
        out.push((13 << 4) | tkl);
        out.push((len - 13) as u8);
    } else if len < 65805 {
        out.push((14 << 4) | tkl);
        out.extend_from_slice(&((len - 269) as u16).to_be_bytes());
    } else {
        out.push((15 << 4) | tkl);
        // Frames above 4 GiB cannot be represented; such a body cannot exist in memory here in practice.
        out.extend_from_slice(&(u32::try_from(len - 65805).unwrap_or(u32::MAX)).to_be_bytes());
    }
    out.push(m.code.0);
    out.extend_from_slice(token);
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::super::opt;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn vector_small_get() {
        // Len 3 ("\xB2rd" = 3 bytes of options), TKL 1; code GET; token 0x42.
        let bytes = [0x31, 0x01, 0x42, 0xB2, b'r', b'd'];
        let (m, used) = decode_frame(&bytes).unwrap().unwrap();
        assert_eq!(used, 6);
        assert_eq!(m.code, Code::GET);
        assert_eq!(m.token.as_slice(), &[0x42]);
        assert_eq!(m.options.get(opt::URI_PATH), Some(&b"rd"[..]));
        assert_eq!(encode_frame(&m), bytes);
    }

    #[test]
    fn vector_csm_and_ping_pong() {
        // CSM: Max-Message-Size 1152 (0x0480): option 2, len 2 -> 0x22 04 80; Block-Wise option 4 delta 2 -> 0x20.
        let csm = TcpMessage::csm(1152, true);
        assert_eq!(csm.encode(), [0x40, 0xE1, 0x22, 0x04, 0x80, 0x20]);
        let (back, _) = decode_frame(&csm.encode()).unwrap().unwrap();
        assert_eq!(back, csm);
        assert_eq!(TcpMessage::ping().encode(), [0x00, 0xE2]);
        let mut ping = TcpMessage::ping();
        ping.token = Token::try_from_slice(&[7]).unwrap();
        assert_eq!(TcpMessage::pong_to(&ping).encode(), [0x01, 0xE3, 7]);
        for code in [Code::RELEASE, Code::ABORT] {
            assert!(decode_frame(&[0x00, code.0]).unwrap().is_some());
        }
    }

    #[test]
    fn extended_lengths_13_269_65805() {
        for (body, nibble, ext) in [
            (13usize, 13u8, vec![0u8]),
            (268, 13, vec![255]),
            (269, 14, vec![0, 0]),
            (65804, 14, vec![0xFF, 0xFF]),
            (65805, 15, vec![0, 0, 0, 0]),
        ] {
            let mut m = TcpMessage::new(Code::CONTENT);
            m.payload = vec![0xAB; body - 1]; // + the payload marker
            let enc = m.encode();
            assert_eq!(enc[0] >> 4, nibble, "body {body}");
            assert_eq!(&enc[1..1 + ext.len()], &ext[..], "body {body}");
            assert_eq!(enc.len(), 1 + ext.len() + 1 + body);
            let (back, used) = decode_frame(&enc).unwrap().unwrap();
            assert_eq!(used, enc.len());
            assert_eq!(back, m);
        }
    }

    #[test]
    fn partial_frames_need_more() {
        let mut m = TcpMessage::new(Code::POST);
        m.token = Token::try_from_slice(&[1, 2, 3]).unwrap();
        m.payload = vec![5; 400];
        let enc = m.encode();
        for cut in 0..enc.len() {
            assert_eq!(decode_frame(&enc[..cut]), Ok(None), "cut at {cut}");
        }
        // Two frames back to back: the first is consumed alone.
        let mut two = enc.clone();
        two.extend(TcpMessage::ping().encode());
        let (first, used) = decode_frame(&two).unwrap().unwrap();
        assert_eq!((first, used), (m, enc.len()));
        let (second, _) = decode_frame(&two[used..]).unwrap().unwrap();
        assert_eq!(second.code, Code::PING);
    }

    #[test]
    fn frame_errors() {
        assert_eq!(
            decode_frame(&[0x09, 0x01]),
            Err(MessageError::InvalidTokenLength { offset: 0, tkl: 9 })
        );
        for code in [Code::new(1, 0), Code::new(6, 1), Code::new(7, 0), Code::new(7, 6)] {
            assert_eq!(
                decode_frame(&[0x00, code.0]),
                Err(MessageError::ReservedCode { offset: 1, code })
            );
        }
        assert_eq!(
            decode_frame(&[0x10, 0x01, 0xFF]),
            Err(MessageError::EmptyPayload { offset: 2 })
        );
        assert_eq!(
            decode_frame(&[0x10, 0x01, 0xF0]),
            Err(MessageError::ReservedOptionNibble {
                offset: 2,
                field: "delta"
            })
        );
        // Option value runs past the frame end (but not past the buffer): still an error.
        assert_eq!(
            decode_frame(&[0x10, 0x01, 0xB3, b'a', b'b', b'c']),
            Err(MessageError::Truncated {
                offset: 3,
                what: "an option value"
            })
        );
        assert_eq!(
            decode_frame_with_limit(&[0xF0, 0, 1, 0, 0], 1152),
            Err(MessageError::FrameTooLarge {
                len: 65805 + 65536 + 6,
                limit: 1152
            })
        );
    }

    fn arb_tcp() -> impl Strategy<Value = TcpMessage> {
        (
            prop_oneof![
                (0u8..32).prop_map(|d| Code::new(0, d)),
                (2u8..=5, 0u8..32).prop_map(|(c, d)| Code::new(c, d)),
                (1u8..=5).prop_map(|d| Code::new(7, d)),
            ],
            prop::collection::vec(any::<u8>(), 0..=8),
            crate::message::codec::tests::arb_options(),
            prop::collection::vec(any::<u8>(), 0..400),
        )
            .prop_map(|(code, token, options, payload)| TcpMessage {
                code,
                token: Token::try_from_slice(&token).unwrap(),
                options,
                payload,
            })
    }

    proptest! {
        #[test]
        fn round_trip(m in arb_tcp()) {
            let enc = m.encode();
            let (back, used) = decode_frame(&enc).unwrap().unwrap();
            prop_assert_eq!(used, enc.len());
            prop_assert_eq!(back, m);
        }

        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(Some((m, used))) = decode_frame(&bytes) {
                prop_assert!(used <= bytes.len());
                prop_assert_eq!(m.encode(), &bytes[..used]);
            }
        }
    }
}
