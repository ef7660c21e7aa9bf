//! LwM2M paths: `/`, `/o`, `/o/i`, `/o/i/r` and `/o/i/r/ri`.
//!
//! Every segment is a decimal 16-bit identifier. `65535` (MAX_ID) is reserved and is never a
//! valid Object Instance ID (digest §1.2); it is accepted for the other levels.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::error::PathError;

/// The reserved identifier (MAX_ID). Never a valid Object Instance ID.
pub const MAX_ID: u16 = 65535;

/// An LwM2M path. Ordering is depth-first: `/3 < /3/0 < /3/0/0 < /3/0/0/0 < /3/0/1 < /4`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Path {
    ids: [u16; 4],
    len: u8,
}

/// The level a path addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Root,
    Object,
    ObjectInstance,
    Resource,
    ResourceInstance,
}

impl Path {
    /// The root path `/`.
    pub const ROOT: Path = Path { ids: [0; 4], len: 0 };

    /// Build a path from up to four segments, validating them.
    pub fn from_ids(ids: &[u16]) -> Result<Path, PathError> {
        if ids.len() > 4 {
            return Err(PathError::TooManySegments(ids.len()));
        }
        if ids.len() >= 2 && ids[1] == MAX_ID {
            return Err(PathError::ReservedInstanceId);
        }
        let mut p = Path::ROOT;
        p.ids[..ids.len()].copy_from_slice(ids);
        p.len = ids.len() as u8;
        Ok(p)
    }

    /// `/o`
    pub fn object(o: u16) -> Path {
        Path {
            ids: [o, 0, 0, 0],
            len: 1,
        }
    }
    /// `/o/i`. Panics never; an `i` of 65535 is reported by [`Path::validate`].
    pub fn instance(o: u16, i: u16) -> Path {
        Path {
            ids: [o, i, 0, 0],
            len: 2,
        }
    }
    /// `/o/i/r`
    pub fn resource(o: u16, i: u16, r: u16) -> Path {
        Path {
            ids: [o, i, r, 0],
            len: 3,
        }
    }
    /// `/o/i/r/ri`
    pub fn resource_instance(o: u16, i: u16, r: u16, ri: u16) -> Path {
        Path {
            ids: [o, i, r, ri],
            len: 4,
        }
    }

    /// Checks the reserved-ID rule (instance 65535 is invalid).
    pub fn validate(&self) -> Result<(), PathError> {
        if self.len >= 2 && self.ids[1] == MAX_ID {
            return Err(PathError::ReservedInstanceId);
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }
    pub fn is_root(&self) -> bool {
        self.len == 0
    }
    /// Same as [`Path::is_root`]; provided for symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn ids(&self) -> &[u16] {
        &self.ids[..self.len as usize]
    }
    pub fn level(&self) -> Level {
        match self.len {
            0 => Level::Root,
            1 => Level::Object,
            2 => Level::ObjectInstance,
            3 => Level::Resource,
            _ => Level::ResourceInstance,
        }
    }
    pub fn object_id(&self) -> Option<u16> {
        self.ids().first().copied()
    }
    pub fn instance_id(&self) -> Option<u16> {
        self.ids().get(1).copied()
    }
    pub fn resource_id(&self) -> Option<u16> {
        self.ids().get(2).copied()
    }
    pub fn resource_instance_id(&self) -> Option<u16> {
        self.ids().get(3).copied()
    }
    pub fn is_object(&self) -> bool {
        self.len == 1
    }
    pub fn is_instance(&self) -> bool {
        self.len == 2
    }
    pub fn is_resource(&self) -> bool {
        self.len == 3
    }
    pub fn is_resource_instance(&self) -> bool {
        self.len == 4
    }

    /// The path one level up (`/3/0/7/1` -> `/3/0/7`); the root's parent is `None`.
    pub fn parent(&self) -> Option<Path> {
        if self.len == 0 {
            return None;
        }
        let mut p = *self;
        p.len -= 1;
        p.ids[p.len as usize] = 0;
        Some(p)
    }

    /// Appends one segment (`/3/0` + 7 -> `/3/0/7`).
    pub fn child(&self, id: u16) -> Result<Path, PathError> {
        if self.len >= 4 {
            return Err(PathError::TooManySegments(5));
        }
        let mut p = *self;
        p.ids[p.len as usize] = id;
        p.len += 1;
        p.validate()?;
        Ok(p)
    }

    /// True if `self` is `other` or one of its ancestors (`/3` starts `/3/0/1`).
    pub fn starts(&self, other: &Path) -> bool {
        self.len <= other.len && self.ids() == &other.ids()[..self.len as usize]
    }

    /// Parses a path, with or without the leading `/`. A trailing `/` is accepted (`/3/0/`).
    pub fn parse(s: &str) -> Result<Path, PathError> {
        let body = s.strip_prefix('/').unwrap_or(s);
        let body = body.strip_suffix('/').unwrap_or(body);
        if body.is_empty() {
            return Ok(Path::ROOT);
        }
        let mut ids = [0u16; 4];
        let mut len = 0usize;
        for seg in body.split('/') {
            if len == 4 {
                return Err(PathError::TooManySegments(body.split('/').count()));
            }
            ids[len] = parse_segment(seg)?;
            len += 1;
        }
        Path::from_ids(&ids[..len])
    }
}

fn parse_segment(seg: &str) -> Result<u16, PathError> {
    if seg.is_empty() {
        return Err(PathError::EmptySegment);
    }
    if !seg.bytes().all(|b| b.is_ascii_digit()) || (seg.len() > 1 && seg.starts_with('0')) {
        return Err(PathError::NotANumber(seg.to_string()));
    }
    seg.parse::<u32>()
        .ok()
        .and_then(|v| u16::try_from(v).ok())
        .ok_or_else(|| PathError::OutOfRange(seg.to_string()))
}

impl FromStr for Path {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Path::parse(s)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.len == 0 {
            return f.write_str("/");
        }
        for id in self.ids() {
            write!(f, "/{id}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Path({self})")
    }
}

impl Ord for Path {
    fn cmp(&self, other: &Self) -> Ordering {
        self.ids().cmp(other.ids())
    }
}

impl PartialOrd for Path {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_and_display() {
        for s in ["/", "/3", "/3/0", "/3/0/7", "/3/0/7/1", "/65535/0/65535/65535"] {
            assert_eq!(Path::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(Path::parse("3/0/").unwrap(), Path::instance(3, 0));
        assert_eq!(Path::parse("").unwrap(), Path::ROOT);
    }

    #[test]
    fn rejects_bad_paths() {
        assert_eq!(Path::parse("/3//0"), Err(PathError::EmptySegment));
        assert_eq!(Path::parse("/3/x"), Err(PathError::NotANumber("x".into())));
        assert_eq!(Path::parse("/3/-1"), Err(PathError::NotANumber("-1".into())));
        assert_eq!(Path::parse("/03"), Err(PathError::NotANumber("03".into())));
        assert_eq!(Path::parse("/65536"), Err(PathError::OutOfRange("65536".into())));
        assert_eq!(Path::parse("/3/0/1/2/3"), Err(PathError::TooManySegments(5)));
        assert_eq!(Path::parse("/3/65535"), Err(PathError::ReservedInstanceId));
        assert_eq!(Path::from_ids(&[1, 2, 3, 4, 5]), Err(PathError::TooManySegments(5)));
    }

    #[test]
    fn ordering_is_depth_first() {
        let mut v: Vec<Path> = ["/4", "/3/0/1", "/3/0/0/0", "/3", "/3/0/0", "/", "/3/0", "/10"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        v.sort();
        let s: Vec<String> = v.iter().map(|p| p.to_string()).collect();
        assert_eq!(s, ["/", "/3", "/3/0", "/3/0/0", "/3/0/0/0", "/3/0/1", "/4", "/10"]);
    }

    #[test]
    fn parent_child_starts() {
        let p = Path::resource_instance(3, 0, 7, 1);
        assert_eq!(p.parent(), Some(Path::resource(3, 0, 7)));
        assert_eq!(Path::resource(3, 0, 7).child(1).unwrap(), p);
        assert!(Path::object(3).starts(&p));
        assert!(!Path::object(4).starts(&p));
        assert!(Path::ROOT.starts(&p));
        assert!(!p.starts(&Path::object(3)));
        assert_eq!(Path::ROOT.parent(), None);
        assert!(p.child(0).is_err());
        assert_eq!(Path::object(3).child(65535), Err(PathError::ReservedInstanceId));
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(ids in proptest::collection::vec(0u16..=65535, 0..=4)) {
            match Path::from_ids(&ids) {
                Ok(p) => prop_assert_eq!(Path::parse(&p.to_string()).unwrap(), p),
                Err(e) => prop_assert_eq!(e, PathError::ReservedInstanceId),
            }
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = Path::parse(&s);
        }
    }
}
