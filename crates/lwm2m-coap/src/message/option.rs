//! CoAP options: the sorted option list, option numbers, uint values and the Block1/Block2 value (RFC 7959).

use super::MessageError;

/// Option numbers (RFC 7252 §5.10, RFC 7641, RFC 7959, RFC 8613, RFC 7967).
pub mod number {
    /// If-Match (opaque, 0–8 bytes, repeatable).
    pub const IF_MATCH: u16 = 1;
    /// Uri-Host (string, 1–255 bytes).
    pub const URI_HOST: u16 = 3;
    /// ETag (opaque, 1–8 bytes; repeatable in requests).
    pub const ETAG: u16 = 4;
    /// If-None-Match (empty).
    pub const IF_NONE_MATCH: u16 = 5;
    /// Observe (uint, 0–3 bytes; RFC 7641).
    pub const OBSERVE: u16 = 6;
    /// Uri-Port (uint, 0–2 bytes).
    pub const URI_PORT: u16 = 7;
    /// Location-Path (string, 0–255 bytes, repeatable).
    pub const LOCATION_PATH: u16 = 8;
    /// OSCORE (opaque, 0–255 bytes; RFC 8613).
    pub const OSCORE: u16 = 9;
    /// Uri-Path (string, 0–255 bytes, repeatable).
    pub const URI_PATH: u16 = 11;
    /// Content-Format (uint, 0–2 bytes).
    pub const CONTENT_FORMAT: u16 = 12;
    /// Max-Age (uint, 0–4 bytes).
    pub const MAX_AGE: u16 = 14;
    /// Uri-Query (string, 0–255 bytes, repeatable).
    pub const URI_QUERY: u16 = 15;
    /// Accept (uint, 0–2 bytes).
    pub const ACCEPT: u16 = 17;
    /// Location-Query (string, 0–255 bytes, repeatable).
    pub const LOCATION_QUERY: u16 = 20;
    /// Block2 (uint, 0–3 bytes; RFC 7959).
    pub const BLOCK2: u16 = 23;
    /// Block1 (uint, 0–3 bytes; RFC 7959).
    pub const BLOCK1: u16 = 27;
    /// Size2 (uint, 0–4 bytes; RFC 7959).
    pub const SIZE2: u16 = 28;
    /// Proxy-Uri (string, 1–1034 bytes).
    pub const PROXY_URI: u16 = 35;
    /// Proxy-Scheme (string, 1–255 bytes).
    pub const PROXY_SCHEME: u16 = 39;
    /// Size1 (uint, 0–4 bytes).
    pub const SIZE1: u16 = 60;
    /// No-Response (uint, 0–1 bytes; RFC 7967).
    pub const NO_RESPONSE: u16 = 258;
}

/// The largest option value the wire format can carry (extended length 14: 65535 + 269).
pub const MAX_OPTION_VALUE_LEN: usize = 65535 + 269;

/// The value format of a known option (RFC 7252 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionFormat {
    /// Zero-length value.
    Empty,
    /// Opaque bytes.
    Opaque,
    /// Non-negative integer, big-endian, leading zeros allowed on receive.
    Uint,
    /// UTF-8 string.
    String,
}

/// Format and permitted length range of a known option, or `None` for an unknown number.
pub fn option_format(number: u16) -> Option<(OptionFormat, usize, usize)> {
    use number::*;
    use OptionFormat::*;
    Some(match number {
        IF_MATCH => (Opaque, 0, 8),
        URI_HOST => (String, 1, 255),
        ETAG => (Opaque, 1, 8),
        IF_NONE_MATCH => (Empty, 0, 0),
        OBSERVE => (Uint, 0, 3),
        URI_PORT => (Uint, 0, 2),
        LOCATION_PATH => (String, 0, 255),
        OSCORE => (Opaque, 0, 255),
        URI_PATH => (String, 0, 255),
        CONTENT_FORMAT => (Uint, 0, 2),
        MAX_AGE => (Uint, 0, 4),
        URI_QUERY => (String, 0, 255),
        ACCEPT => (Uint, 0, 2),
        LOCATION_QUERY => (String, 0, 255),
        BLOCK2 => (Uint, 0, 3),
        BLOCK1 => (Uint, 0, 3),
        SIZE2 => (Uint, 0, 4),
        PROXY_URI => (String, 1, 1034),
        PROXY_SCHEME => (String, 1, 255),
        SIZE1 => (Uint, 0, 4),
        NO_RESPONSE => (Uint, 0, 1),
        _ => return None,
    })
}

/// True if the option number is critical (odd; RFC 7252 §5.4.1).
pub fn is_critical(number: u16) -> bool {
    number & 1 == 1
}

/// Encode an unsigned integer option value in the minimal number of bytes (0 encodes as no bytes).
pub fn encode_uint(value: u32) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    bytes.get(skip..).unwrap_or_default().to_vec()
}

/// Decode an unsigned integer option value of at most 4 bytes (leading zero bytes accepted).
pub fn decode_uint(value: &[u8]) -> Option<u32> {
    if value.len() > 4 {
        return None;
    }
    Some(value.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
}

/// The sorted, repeatable list of options of a message. Values of one number keep their insertion order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Options {
    entries: Vec<(u16, Vec<u8>)>,
}

impl Options {
    /// An empty option list.
    pub fn new() -> Self {
        Options { entries: Vec::new() }
    }

    /// Number of option instances.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if there are no options.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All options in wire order: `(number, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (u16, &[u8])> + '_ {
        self.entries.iter().map(|(n, v)| (*n, v.as_slice()))
    }

    /// Append a value for `number`, after any existing values of that number.
    ///
    /// Fails if the value is longer than [`MAX_OPTION_VALUE_LEN`] (it could not be encoded).
    pub fn try_push(&mut self, number: u16, value: impl Into<Vec<u8>>) -> Result<(), MessageError> {
        let value = value.into();
        if value.len() > MAX_OPTION_VALUE_LEN {
            return Err(MessageError::OptionValueTooLong {
                number,
                len: value.len(),
            });
        }
        let pos = self.entries.partition_point(|(n, _)| *n <= number);
        self.entries.insert(pos, (number, value));
        Ok(())
    }

    /// Append a value for `number`, after any existing values of that number.
    ///
    /// # Panics
    /// If the value is longer than [`MAX_OPTION_VALUE_LEN`] bytes; use [`Options::try_push`] for untrusted sizes.
    pub fn push(&mut self, number: u16, value: impl Into<Vec<u8>>) {
        if let Err(e) = self.try_push(number, value) {
            panic!("{e}");
        }
    }

    /// Replace all values of `number` by the single `value`.
    pub fn set(&mut self, number: u16, value: impl Into<Vec<u8>>) {
        self.remove(number);
        self.push(number, value);
    }

    /// Replace all values of `number` by an unsigned integer value.
    pub fn set_uint(&mut self, number: u16, value: u32) {
        self.set(number, encode_uint(value));
    }

    /// Remove every value of `number`.
    pub fn remove(&mut self, number: u16) {
        self.entries.retain(|(n, _)| *n != number);
    }

    /// True if at least one value of `number` is present.
    pub fn contains(&self, number: u16) -> bool {
        self.get_all(number).next().is_some()
    }

    /// The first value of `number`.
    pub fn get(&self, number: u16) -> Option<&[u8]> {
        self.get_all(number).next()
    }

    /// All values of `number`, in order.
    pub fn get_all(&self, number: u16) -> impl Iterator<Item = &[u8]> + '_ {
        let start = self.entries.partition_point(|(n, _)| *n < number);
        self.entries
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take_while(move |(n, _)| *n == number)
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of `number` decoded as uint; `None` if absent or longer than 4 bytes.
    pub fn get_uint(&self, number: u16) -> Option<u32> {
        self.get(number).and_then(decode_uint)
    }

    /// All values of `number` as (lossy) UTF-8 strings.
    pub fn get_strings(&self, number: u16) -> Vec<String> {
        self.get_all(number)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// Check known options against their format and length (RFC 7252 §5.4.3, §5.10) and reject unknown
    /// critical options. Returns the first offending option number with the reason.
    ///
    /// RFC 7252 treats a malformed or unrecognised *critical* option in a CON request as 4.02 Bad Option; a
    /// malformed elective option is ignored, which is what the typed accessors do (they return `None`). Use
    /// [`Options::validate_critical`] for the 4.02 decision.
    pub fn validate(&self) -> Result<(), MessageError> {
        for (number, value) in self.iter() {
            check_option(number, value).map_err(|reason| MessageError::BadOption { number, reason })?;
        }
        Ok(())
    }

    /// Like [`Options::validate`], but only critical (odd-numbered) options are checked: the first one that is
    /// unrecognised or malformed is returned. This is the RFC 7252 §5.4.1 condition for 4.02 Bad Option.
    pub fn validate_critical(&self) -> Result<(), MessageError> {
        for (number, value) in self.iter().filter(|(n, _)| is_critical(*n)) {
            check_option(number, value).map_err(|reason| MessageError::BadOption { number, reason })?;
        }
        Ok(())
    }
}

fn check_option(number: u16, value: &[u8]) -> Result<(), &'static str> {
    match option_format(number) {
        None if is_critical(number) => Err("unrecognised critical option"),
        None => Ok(()),
        Some((format, min, max)) => {
            if value.len() < min || value.len() > max {
                return Err("value length out of range");
            }
            if format == OptionFormat::String && std::str::from_utf8(value).is_err() {
                return Err("value is not UTF-8");
            }
            if (number == number::BLOCK1 || number == number::BLOCK2) && Block::decode(value).is_err() {
                return Err("reserved block size SZX 7");
            }
            Ok(())
        }
    }
}

impl<'a> IntoIterator for &'a Options {
    type Item = (u16, &'a [u8]);
    type IntoIter = Box<dyn Iterator<Item = (u16, &'a [u8])> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// A Block1 or Block2 option value (RFC 7959 §2.2): block number, more flag and size exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Block {
    /// Block number (20 bits).
    pub num: u32,
    /// More blocks follow.
    pub more: bool,
    /// Size exponent: size = 2^(szx + 4). 0..=6 (7 is reserved, BERT over TCP only).
    pub szx: u8,
}

/// Largest block number representable in the 3-byte option value.
pub const MAX_BLOCK_NUM: u32 = (1 << 20) - 1;

impl Block {
    /// A block value; fails if `num` exceeds 20 bits or `szx` is 7 or more.
    pub fn new(num: u32, more: bool, szx: u8) -> Result<Self, MessageError> {
        if num > MAX_BLOCK_NUM {
            return Err(MessageError::InvalidBlock {
                reason: "block number exceeds 20 bits",
            });
        }
        if szx >= 7 {
            return Err(MessageError::InvalidBlock {
                reason: "SZX 7 is reserved",
            });
        }
        Ok(Block { num, more, szx })
    }

    /// The SZX for a block size (16, 32, ..., 1024), or `None` if the size is not one of those.
    pub fn szx_for_size(size: usize) -> Option<u8> {
        (0u8..7).find(|szx| 1usize << (szx + 4) == size)
    }

    /// Block size in bytes: 2^(szx + 4). For SZX 7 (BERT) this returns 1024.
    pub fn size(&self) -> usize {
        1usize << (self.szx.min(6) + 4)
    }

    /// Byte offset of this block in the whole body.
    pub fn offset(&self) -> usize {
        (self.num as usize).saturating_mul(self.size())
    }

    /// Option value bytes, minimal length.
    pub fn encode(&self) -> Vec<u8> {
        let v = ((self.num & MAX_BLOCK_NUM) << 4) | (u32::from(self.more) << 3) | u32::from(self.szx & 7);
        encode_uint(v)
    }

    /// Decode a Block option value (0–3 bytes). SZX 7 is reserved over UDP and rejected here.
    pub fn decode(value: &[u8]) -> Result<Self, MessageError> {
        Self::decode_inner(value, false)
    }

    /// Decode a Block option value allowing SZX 7 (BERT, RFC 8323 §6), for CoAP over TCP.
    pub fn decode_bert(value: &[u8]) -> Result<Self, MessageError> {
        Self::decode_inner(value, true)
    }

    fn decode_inner(value: &[u8], allow_bert: bool) -> Result<Self, MessageError> {
        if value.len() > 3 {
            return Err(MessageError::InvalidBlock {
                reason: "block option value longer than 3 bytes",
            });
        }
        let v = decode_uint(value).ok_or(MessageError::InvalidBlock {
            reason: "block option value too long",
        })?;
        let szx = (v & 7) as u8;
        if szx == 7 && !allow_bert {
            return Err(MessageError::InvalidBlock {
                reason: "SZX 7 is reserved",
            });
        }
        Ok(Block {
            num: v >> 4,
            more: v & 8 != 0,
            szx,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn uint_minimal_encoding() {
        assert_eq!(encode_uint(0), Vec::<u8>::new());
        assert_eq!(encode_uint(1), vec![1]);
        assert_eq!(encode_uint(0x100), vec![1, 0]);
        assert_eq!(encode_uint(0x0102_0304), vec![1, 2, 3, 4]);
        assert_eq!(decode_uint(&[0, 0, 5]), Some(5));
        assert_eq!(decode_uint(&[]), Some(0));
        assert_eq!(decode_uint(&[1, 2, 3, 4, 5]), None);
    }

    #[test]
    fn options_stay_sorted_and_keep_repeat_order() {
        let mut o = Options::new();
        o.push(number::URI_QUERY, "b=2");
        o.push(number::URI_PATH, "rd");
        o.push(number::CONTENT_FORMAT, encode_uint(40));
        o.push(number::URI_QUERY, "a=1");
        o.push(number::URI_PATH, "x");
        let numbers: Vec<u16> = o.iter().map(|(n, _)| n).collect();
        assert_eq!(numbers, vec![11, 11, 12, 15, 15]);
        assert_eq!(o.get_strings(number::URI_PATH), vec!["rd", "x"]);
        assert_eq!(o.get_strings(number::URI_QUERY), vec!["b=2", "a=1"]);
        assert_eq!(o.get_uint(number::CONTENT_FORMAT), Some(40));
        o.set_uint(number::CONTENT_FORMAT, 60);
        assert_eq!(o.get_all(number::CONTENT_FORMAT).count(), 1);
        assert_eq!(o.get_uint(number::CONTENT_FORMAT), Some(60));
        o.remove(number::URI_PATH);
        assert!(!o.contains(number::URI_PATH));
    }

    #[test]
    fn oversized_option_value_is_refused() {
        let mut o = Options::new();
        let err = o
            .try_push(number::URI_QUERY, vec![b'a'; MAX_OPTION_VALUE_LEN + 1])
            .unwrap_err();
        assert!(matches!(err, MessageError::OptionValueTooLong { number: 15, .. }));
        assert!(o.try_push(number::URI_QUERY, vec![b'a'; MAX_OPTION_VALUE_LEN]).is_ok());
    }

    #[test]
    fn block_value_bytes() {
        // NUM=0 M=0 SZX=2 (64 bytes) -> 0x02
        assert_eq!(Block::new(0, false, 2).unwrap().encode(), vec![0x02]);
        // NUM=1 M=1 SZX=6 -> 0x1E
        assert_eq!(Block::new(1, true, 6).unwrap().encode(), vec![0x1E]);
        // NUM=0 M=0 SZX=0 -> empty value
        assert_eq!(Block::new(0, false, 0).unwrap().encode(), Vec::<u8>::new());
        // NUM=0x12345 M=1 SZX=5 -> 0x12 0x34 0x5D
        assert_eq!(Block::new(0x12345, true, 5).unwrap().encode(), vec![0x12, 0x34, 0x5D]);
        let b = Block::decode(&[0x12, 0x34, 0x5D]).unwrap();
        assert_eq!((b.num, b.more, b.szx, b.size()), (0x12345, true, 5, 512));
        assert_eq!(b.offset(), 0x12345 * 512);
        assert_eq!(Block::szx_for_size(1024), Some(6));
        assert_eq!(Block::szx_for_size(100), None);
    }

    #[test]
    fn block_errors() {
        assert_eq!(
            Block::decode(&[0x07]),
            Err(MessageError::InvalidBlock {
                reason: "SZX 7 is reserved"
            })
        );
        assert!(Block::decode_bert(&[0x07]).is_ok());
        assert!(matches!(
            Block::decode(&[1, 2, 3, 4]),
            Err(MessageError::InvalidBlock { .. })
        ));
        assert!(Block::new(1 << 20, false, 0).is_err());
        assert!(Block::new(0, false, 7).is_err());
    }

    #[test]
    fn validate_options() {
        let mut o = Options::new();
        o.push(number::URI_PATH, "3");
        o.push(number::CONTENT_FORMAT, vec![0, 0x2d, 0x16]);
        assert_eq!(
            o.validate(),
            Err(MessageError::BadOption {
                number: 12,
                reason: "value length out of range"
            })
        );
        let mut o = Options::new();
        o.push(9999, vec![1]);
        assert_eq!(
            o.validate(),
            Err(MessageError::BadOption {
                number: 9999,
                reason: "unrecognised critical option"
            })
        );
        let mut o = Options::new();
        o.push(10000, vec![1]); // unknown elective: fine
        o.push(number::URI_PATH, vec![0xff]);
        assert_eq!(
            o.validate(),
            Err(MessageError::BadOption {
                number: 11,
                reason: "value is not UTF-8"
            })
        );
        let mut o = Options::new();
        o.push(number::BLOCK2, vec![0x0f]);
        assert!(o.validate().is_err());
    }

    #[test]
    fn validate_critical_ignores_malformed_elective_options() {
        let mut o = Options::new();
        o.push(number::CONTENT_FORMAT, vec![1, 2, 3]); // elective (12), too long: ignored
        o.push(number::URI_PATH, "ok");
        assert_eq!(o.validate_critical(), Ok(()));
        assert!(o.validate().is_err());
        o.push(number::URI_HOST, Vec::new()); // critical (3), empty: bad
        assert_eq!(
            o.validate_critical(),
            Err(MessageError::BadOption {
                number: 3,
                reason: "value length out of range"
            })
        );
    }

    proptest! {
        #[test]
        fn block_round_trip(num in 0u32..=MAX_BLOCK_NUM, more: bool, szx in 0u8..7) {
            let b = Block::new(num, more, szx).unwrap();
            prop_assert_eq!(Block::decode(&b.encode()).unwrap(), b);
        }

        #[test]
        fn uint_round_trip(v: u32) {
            prop_assert_eq!(decode_uint(&encode_uint(v)), Some(v));
        }
    }
}
