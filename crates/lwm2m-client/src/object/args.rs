//! Execute arguments (digest §5.2):
//!
//! ```text
//! arglist = arg *( "," arg )
//! arg     = DIGIT / DIGIT "=" "'" *CHAR "'"
//! CHAR    = "!" / %x23-26 / %x28-5B / %x5D-7E      ; printable ASCII except DQUOTE, ' and \
//! ```
//!
//! Leniencies, both because the spec's own examples need them: spaces and tabs are allowed after a `,`
//! (`7, 0=' '`), and a space is allowed inside a value (`0=' '`). Everything else is strict: an argument
//! name is exactly one digit, a value is single-quoted, and the same digit may not appear twice.

use super::DmError;

/// One Execute argument: its digit (0-9) and its value, if it had one (`2='10.3'`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecArg {
    /// The argument name, 0..=9.
    pub id: u8,
    /// The value between the single quotes; `None` for a bare digit.
    pub value: Option<String>,
}

impl ExecArg {
    /// An argument without a value.
    pub fn flag(id: u8) -> ExecArg {
        ExecArg { id, value: None }
    }
    /// An argument with a value.
    pub fn with_value(id: u8, value: impl Into<String>) -> ExecArg {
        ExecArg {
            id,
            value: Some(value.into()),
        }
    }
}

fn is_value_char(b: u8) -> bool {
    b == b' ' || b == b'!' || (0x23..=0x26).contains(&b) || (0x28..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
}

fn bad(at: usize, what: &str) -> DmError {
    DmError::bad_request(format!("invalid Execute arguments at byte {at}: {what}"))
}

/// Parses an Execute payload (text/plain). An empty payload means no arguments. Any syntax error is
/// [`DmError::BadRequest`] naming the byte offset.
pub fn parse_exec_args(payload: &[u8]) -> Result<Vec<ExecArg>, DmError> {
    let mut out: Vec<ExecArg> = Vec::new();
    if payload.is_empty() {
        return Ok(out);
    }
    let mut pos = 0usize;
    loop {
        let Some(&d) = payload.get(pos) else {
            return Err(bad(pos, "expected an argument digit, found the end"));
        };
        if !d.is_ascii_digit() {
            return Err(bad(pos, "expected an argument digit 0-9"));
        }
        let id = d - b'0';
        if out.iter().any(|a| a.id == id) {
            return Err(bad(pos, &format!("argument {id} appears more than once")));
        }
        pos += 1;
        let mut value = None;
        if payload.get(pos) == Some(&b'=') {
            pos += 1;
            if payload.get(pos) != Some(&b'\'') {
                return Err(bad(pos, "expected ' to open the value"));
            }
            pos += 1;
            let start = pos;
            loop {
                match payload.get(pos) {
                    None => return Err(bad(pos, "unterminated value (missing closing ')")),
                    Some(b'\'') => break,
                    Some(&c) if is_value_char(c) => pos += 1,
                    Some(_) => return Err(bad(pos, "character not allowed in a value")),
                }
            }
            // The range holds only checked printable ASCII, so this never fails.
            let text = payload
                .get(start..pos)
                .and_then(|s| std::str::from_utf8(s).ok())
                .unwrap_or_default();
            value = Some(text.to_string());
            pos += 1;
        }
        out.push(ExecArg { id, value });
        match payload.get(pos) {
            None => return Ok(out),
            Some(b',') => {
                pos += 1;
                while matches!(payload.get(pos), Some(b' ' | b'\t')) {
                    pos += 1;
                }
            }
            Some(_) => return Err(bad(pos, "expected ',' or the end after an argument")),
        }
    }
}

/// Writes arguments in the canonical form (`0,2='10.3'`); [`parse_exec_args`] reads it back.
pub fn write_exec_args(args: &[ExecArg]) -> String {
    let parts: Vec<String> = args
        .iter()
        .map(|a| match &a.value {
            Some(v) => format!("{}='{}'", a.id, v),
            None => a.id.to_string(),
        })
        .collect();
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn valid_examples_from_the_digest() {
        assert_eq!(parse_exec_args(b"").unwrap(), vec![]);
        assert_eq!(parse_exec_args(b"5").unwrap(), vec![ExecArg::flag(5)]);
        assert_eq!(
            parse_exec_args(b"2='10.3'").unwrap(),
            vec![ExecArg::with_value(2, "10.3")]
        );
        assert_eq!(
            parse_exec_args(b"7,0=' '").unwrap(),
            vec![ExecArg::flag(7), ExecArg::with_value(0, " ")]
        );
        assert_eq!(
            parse_exec_args(b"7, 0=' '").unwrap(),
            vec![ExecArg::flag(7), ExecArg::with_value(0, " ")]
        );
        let all = parse_exec_args(b"0,1,2,3,4").unwrap();
        assert_eq!(all.iter().map(|a| a.id).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
        assert_eq!(parse_exec_args(b"3=''").unwrap(), vec![ExecArg::with_value(3, "")]);
        assert_eq!(
            parse_exec_args(b"1='coap://h:5683/a?b=c&d#!'").unwrap(),
            vec![ExecArg::with_value(1, "coap://h:5683/a?b=c&d#!")]
        );
    }

    #[test]
    fn invalid_syntax_is_bad_request() {
        for (bad, why) in [
            (&b"a"[..], "not a digit"),
            (b"10", "two digits"),
            (b"1=", "missing quote"),
            (b"1=abc", "unquoted value"),
            (b"1='abc", "unterminated"),
            (b"1='a\"b'", "double quote inside"),
            (b"1='a\\b'", "backslash inside"),
            (b"1,", "trailing comma"),
            (b",1", "leading comma"),
            (b"1 ,2", "space before comma"),
            (b"1,1", "duplicate"),
            (b" 1", "leading space"),
            (b"1='x'y", "garbage after value"),
            (b"1='\xff'", "non-ASCII"),
            (b"1='a\nb'", "control char"),
        ] {
            let e = parse_exec_args(bad).expect_err(why);
            assert_eq!(e.code(), (4, 0), "{why}");
        }
    }

    #[test]
    fn write_round_trip() {
        let args = vec![ExecArg::flag(0), ExecArg::with_value(2, "10.3")];
        assert_eq!(write_exec_args(&args), "0,2='10.3'");
        assert_eq!(parse_exec_args(write_exec_args(&args).as_bytes()).unwrap(), args);
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = parse_exec_args(&bytes);
        }

        #[test]
        fn round_trip(args in proptest::collection::btree_map(0u8..10, proptest::option::of("[ !#-&(-\\[\\]-~]{0,8}"), 0..6)) {
            let list: Vec<ExecArg> = args.into_iter().map(|(id, value)| ExecArg { id, value }).collect();
            let text = write_exec_args(&list);
            prop_assert_eq!(parse_exec_args(text.as_bytes()).unwrap(), list);
        }
    }
}
