//! Typed errors of `lwm2m-core`. Every decoder returns one of these; none panics on input.

use thiserror::Error;

use crate::format::ContentFormat;
use crate::path::Path;
use crate::value::DataType;

/// A path string or id list that is not a valid LwM2M path.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PathError {
    #[error("empty path segment (two '/' in a row)")]
    EmptySegment,
    #[error("path segment {0:?} is not a decimal number")]
    NotANumber(String),
    #[error("path segment {0} is out of range 0..65535")]
    OutOfRange(String),
    #[error("path has {0} segments; at most 4 (/object/instance/resource/resource-instance) are allowed")]
    TooManySegments(usize),
    #[error("object instance id 65535 is reserved (MAX_ID) and never valid")]
    ReservedInstanceId,
}

/// A value that does not fit the type it must have.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValueError {
    #[error("invalid object link {0:?}: expected \"objectId:instanceId\" with both in 0..65535")]
    InvalidObjlnk(String),
    #[error("expected a value of type {expected}, found {found}")]
    TypeMismatch { expected: DataType, found: DataType },
    #[error("value out of range for type {target}")]
    OutOfRange { target: DataType },
}

/// An error while encoding or decoding a payload in one content format.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FormatError {
    #[error("{format}: payload ends early at byte {offset}")]
    Truncated { format: ContentFormat, offset: usize },
    #[error("{format}: unexpected trailing data at byte {offset}")]
    TrailingData { format: ContentFormat, offset: usize },
    #[error("{format}: malformed payload{}: {reason}", at(.offset))]
    Malformed {
        format: ContentFormat,
        offset: Option<usize>,
        reason: String,
    },
    #[error("{format}: value of {path} has invalid length {len} (expected {expected})")]
    InvalidLength {
        format: ContentFormat,
        path: Path,
        len: usize,
        expected: &'static str,
    },
    #[error("{format}: value of {path}: {source}")]
    Value {
        format: ContentFormat,
        path: Path,
        source: ValueError,
    },
    #[error("{format}: value of {path} is not valid UTF-8")]
    InvalidUtf8 { format: ContentFormat, path: Path },
    #[error("{format}: value of {path} is not a valid {expected}: {text:?}")]
    InvalidText {
        format: ContentFormat,
        path: Path,
        expected: DataType,
        text: String,
    },
    #[error("{format}: value of {path} is not valid base64")]
    InvalidBase64 { format: ContentFormat, path: Path },
    #[error("{format}: invalid path {text:?} in payload: {source}")]
    InvalidPath {
        format: ContentFormat,
        text: String,
        source: PathError,
    },
    #[error("{format}: {found} is not under the target path {target}")]
    UnexpectedPath {
        format: ContentFormat,
        target: Path,
        found: Path,
    },
    #[error("{format}: {path} appears more than once")]
    Duplicate { format: ContentFormat, path: Path },
    #[error("{format}: record for {path} has no value")]
    MissingValue { format: ContentFormat, path: Path },
    #[error(
        "{format}: {path} is not a single value (this format carries exactly one resource or resource-instance value)"
    )]
    NotSingleValue { format: ContentFormat, path: Path },
    #[error("{format}: {path} is a {expected} resource in the object model but the payload holds a {found} resource")]
    Multiplicity {
        format: ContentFormat,
        path: Path,
        expected: &'static str,
        found: &'static str,
    },
    #[error("{format}: the payload holds no value for {path}")]
    Empty { format: ContentFormat, path: Path },
    #[error("{format}: {reason}")]
    Unsupported { format: ContentFormat, reason: String },
}

fn at(offset: &Option<usize>) -> String {
    match offset {
        Some(o) => format!(" at byte {o}"),
        None => String::new(),
    }
}

impl FormatError {
    /// The content format the error belongs to.
    pub fn format(&self) -> ContentFormat {
        match self {
            FormatError::Truncated { format, .. }
            | FormatError::TrailingData { format, .. }
            | FormatError::Malformed { format, .. }
            | FormatError::InvalidLength { format, .. }
            | FormatError::Value { format, .. }
            | FormatError::InvalidUtf8 { format, .. }
            | FormatError::InvalidText { format, .. }
            | FormatError::InvalidBase64 { format, .. }
            | FormatError::InvalidPath { format, .. }
            | FormatError::UnexpectedPath { format, .. }
            | FormatError::Duplicate { format, .. }
            | FormatError::MissingValue { format, .. }
            | FormatError::NotSingleValue { format, .. }
            | FormatError::Multiplicity { format, .. }
            | FormatError::Empty { format, .. }
            | FormatError::Unsupported { format, .. } => *format,
        }
    }

    /// Shorthand for [`FormatError::Malformed`].
    pub fn malformed(format: ContentFormat, offset: Option<usize>, reason: impl Into<String>) -> FormatError {
        FormatError::Malformed {
            format,
            offset,
            reason: reason.into(),
        }
    }
}
