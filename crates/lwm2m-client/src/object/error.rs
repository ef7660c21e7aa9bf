//! The LwM2M-level error of every data-model operation.

use lwm2m_core::FormatError;

/// Why a data-model operation failed. Each variant maps to one CoAP response code ([`DmError::code`]) and
/// carries a reason for logs (never sent to the peer by this crate).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DmError {
    /// 4.00: malformed payload, invalid path for the operation, missing mandatory resources, invalid arguments.
    #[error("4.00 Bad Request: {0}")]
    BadRequest(String),
    /// 4.01: the server has no access right for the operation (Access Control, digest §7).
    #[error("4.01 Unauthorized: {0}")]
    Unauthorized(String),
    /// 4.04: the object, instance or resource does not exist (or is invisible: Security, OSCORE).
    #[error("4.04 Not Found: {0}")]
    NotFound(String),
    /// 4.05: the target does not support the operation (Write to an R resource, Delete of /3/0, ...).
    #[error("4.05 Method Not Allowed: {0}")]
    MethodNotAllowed(String),
    /// 4.06: the requested (Accept) format cannot be produced, or an inconsistent bootstrap configuration.
    #[error("4.06 Not Acceptable: {0}")]
    NotAcceptable(String),
    /// 4.15: the request payload's content format is not supported (for this target).
    #[error("4.15 Unsupported Content-Format: {0}")]
    UnsupportedContentFormat(String),
    /// 5.00: anything else (an object implementation failed).
    #[error("5.00 Internal Server Error: {0}")]
    Internal(String),
}

impl DmError {
    /// The CoAP response code as (class, detail): `(4, 4)` for 4.04.
    pub fn code(&self) -> (u8, u8) {
        match self {
            DmError::BadRequest(_) => (4, 0),
            DmError::Unauthorized(_) => (4, 1),
            DmError::NotFound(_) => (4, 4),
            DmError::MethodNotAllowed(_) => (4, 5),
            DmError::NotAcceptable(_) => (4, 6),
            DmError::UnsupportedContentFormat(_) => (4, 15),
            DmError::Internal(_) => (5, 0),
        }
    }

    /// The reason text (for logs).
    pub fn reason(&self) -> &str {
        match self {
            DmError::BadRequest(r)
            | DmError::Unauthorized(r)
            | DmError::NotFound(r)
            | DmError::MethodNotAllowed(r)
            | DmError::NotAcceptable(r)
            | DmError::UnsupportedContentFormat(r)
            | DmError::Internal(r) => r,
        }
    }

    /// Shorthand for [`DmError::BadRequest`].
    pub fn bad_request(reason: impl Into<String>) -> DmError {
        DmError::BadRequest(reason.into())
    }
    /// Shorthand for [`DmError::Unauthorized`].
    pub fn unauthorized(reason: impl Into<String>) -> DmError {
        DmError::Unauthorized(reason.into())
    }
    /// Shorthand for [`DmError::NotFound`].
    pub fn not_found(reason: impl Into<String>) -> DmError {
        DmError::NotFound(reason.into())
    }
    /// Shorthand for [`DmError::MethodNotAllowed`].
    pub fn method_not_allowed(reason: impl Into<String>) -> DmError {
        DmError::MethodNotAllowed(reason.into())
    }
    /// Shorthand for [`DmError::NotAcceptable`].
    pub fn not_acceptable(reason: impl Into<String>) -> DmError {
        DmError::NotAcceptable(reason.into())
    }
    /// Shorthand for [`DmError::UnsupportedContentFormat`].
    pub fn unsupported_format(reason: impl Into<String>) -> DmError {
        DmError::UnsupportedContentFormat(reason.into())
    }
    /// Shorthand for [`DmError::Internal`].
    pub fn internal(reason: impl Into<String>) -> DmError {
        DmError::Internal(reason.into())
    }

    /// Maps a payload decoding error of a request: 4.15 when the format cannot carry this target (a single-value
    /// format for several values, link format for values), 4.00 for anything malformed.
    pub fn from_decode(e: FormatError) -> DmError {
        match e {
            FormatError::NotSingleValue { .. } | FormatError::Unsupported { .. } => {
                DmError::UnsupportedContentFormat(e.to_string())
            }
            other => DmError::BadRequest(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lwm2m_core::{ContentFormat, Path};

    #[test]
    fn codes() {
        assert_eq!(DmError::bad_request("x").code(), (4, 0));
        assert_eq!(DmError::unauthorized("x").code(), (4, 1));
        assert_eq!(DmError::not_found("x").code(), (4, 4));
        assert_eq!(DmError::method_not_allowed("x").code(), (4, 5));
        assert_eq!(DmError::not_acceptable("x").code(), (4, 6));
        assert_eq!(DmError::unsupported_format("x").code(), (4, 15));
        assert_eq!(DmError::internal("x").code(), (5, 0));
        assert_eq!(DmError::not_found("no /9").reason(), "no /9");
        assert_eq!(DmError::not_found("no /9").to_string(), "4.04 Not Found: no /9");
    }

    #[test]
    fn decode_error_mapping() {
        let p = Path::instance(3, 0);
        let single = FormatError::NotSingleValue {
            format: ContentFormat::Text,
            path: p,
        };
        assert_eq!(DmError::from_decode(single).code(), (4, 15));
        let bad = FormatError::Truncated {
            format: ContentFormat::Tlv,
            offset: 3,
        };
        assert_eq!(DmError::from_decode(bad).code(), (4, 0));
    }
}
