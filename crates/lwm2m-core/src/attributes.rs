//! LwM2M attributes (digest §2).
//!
//! * [`Attributes`]: the attribute values assigned at one level (or an effective, merged set).
//! * [`parse_query`]: Write-Attributes Uri-Query parsing (`pmin=10`, `gt=-5.5`, `pmax` to unset) into
//!   [`AttributeChanges`], which are then applied to the stored [`Attributes`] of the target level.
//! * [`effective`]: inheritance across levels (server defaults -> object -> instance -> resource ->
//!   resource instance; the most specific level wins, digest §2.2).
//! * [`Attributes::validate`] (the §2.1 combination rules) and [`Attributes::check_target`] (level and
//!   resource-type rules).
//! * [`Attributes::to_link_params`] / [`Attributes::from_link_params`]: the link-format rendering used by
//!   Discover (digest §5.2, §8.8), in the stable order `ver, dim, pmin, pmax, gt, lt, st, epmin, epmax`.
//!
//! Every [`AttributeError`] maps to CoAP **4.00 Bad Request**.

use std::fmt;

use thiserror::Error;

use crate::format::link::LinkParam;
use crate::model::{ResourceModel, Version};
use crate::path::Level;
use crate::value::DataType;

/// A rejected attribute query or attribute set. Every variant maps to CoAP 4.00 Bad Request.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum AttributeError {
    /// The name is not an LwM2M attribute.
    #[error("unknown attribute {0:?}")]
    Unknown(String),
    /// A PROPERTIES attribute (`dim`, `ver`, `ssid`, `uri`, `lwm2m`): it cannot be written.
    #[error("attribute {0} is read-only (a PROPERTIES attribute) and cannot be written")]
    ReadOnly(&'static str),
    /// The same attribute appears twice in one request or link.
    #[error("attribute {0} appears more than once")]
    Duplicate(&'static str),
    /// The value does not have the required syntax.
    #[error("attribute {name}: {value:?} is not {expected}")]
    InvalidValue {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    /// A negative value for an attribute that must be >= 0 (pmin, pmax, epmin, epmax, st).
    #[error("attribute {name}: {value:?} is negative; it must be >= 0")]
    Negative { name: &'static str, value: String },
    /// A number too large for the attribute.
    #[error("attribute {name}: {value:?} is out of range")]
    OutOfRange { name: &'static str, value: String },
    /// `lt` must be smaller than `gt`.
    #[error("lt ({lt}) must be smaller than gt ({gt})")]
    LtNotBelowGt { lt: f64, gt: f64 },
    /// `lt + 2*st` must be smaller than `gt`.
    #[error("lt + 2*st ({lt} + 2*{st}) must be smaller than gt ({gt})")]
    StepTooLarge { lt: f64, st: f64, gt: f64 },
    /// The attribute cannot be assigned at this level (e.g. `gt` on an object instance).
    #[error("attribute {name} cannot be assigned at {level:?} level")]
    WrongLevel { name: &'static str, level: Level },
    /// `gt`, `lt` and `st` need an Integer, Unsigned Integer or Float resource.
    #[error("attribute {name} needs a numeric resource (Integer, Unsigned Integer or Float), not {data_type}")]
    NotNumeric { name: &'static str, data_type: DataType },
    /// `dim` applies only to multiple-instance resources.
    #[error("attribute dim applies only to multiple-instance resources")]
    NotMultiple,
    /// NOTIFICATION attributes need a readable target.
    #[error("attribute {name} needs a readable resource")]
    NotReadable { name: &'static str },
}

/// The attribute values assigned at one level, or an effective (merged) set.
///
/// `dim` and `ver` are read-only properties: they appear in Discover output but can never be
/// written with Write-Attributes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Attributes {
    /// Minimum Period, seconds.
    pub pmin: Option<u32>,
    /// Maximum Period, seconds (0 or <= pmin: ignored, see [`Attributes::effective_pmax`]).
    pub pmax: Option<u32>,
    /// Greater Than threshold.
    pub gt: Option<f64>,
    /// Less Than threshold.
    pub lt: Option<f64>,
    /// Step (>= 0).
    pub st: Option<f64>,
    /// Minimum Evaluation Period, seconds.
    pub epmin: Option<u32>,
    /// Maximum Evaluation Period, seconds (<= epmin: ignored).
    pub epmax: Option<u32>,
    /// Dimension of a multiple-instance resource (read-only).
    pub dim: Option<u16>,
    /// Object version (read-only, object level).
    pub ver: Option<Version>,
}

/// One change requested by Write-Attributes: set a value, or unset it (`?pmin` without `=`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change<T> {
    /// `name=value`
    Set(T),
    /// `name` alone: remove the value at this level so the next level up applies.
    Unset,
}

impl<T: Copy> Change<T> {
    fn apply(self, slot: &mut Option<T>) {
        *slot = match self {
            Change::Set(v) => Some(v),
            Change::Unset => None,
        };
    }

    fn set_value(self) -> Option<T> {
        match self {
            Change::Set(v) => Some(v),
            Change::Unset => None,
        }
    }
}

/// The changes of one Write-Attributes request. `None` fields are left unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AttributeChanges {
    pub pmin: Option<Change<u32>>,
    pub pmax: Option<Change<u32>>,
    pub gt: Option<Change<f64>>,
    pub lt: Option<Change<f64>>,
    pub st: Option<Change<f64>>,
    pub epmin: Option<Change<u32>>,
    pub epmax: Option<Change<u32>>,
}

/// Attribute names, in rendering order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    Ver,
    Dim,
    Pmin,
    Pmax,
    Gt,
    Lt,
    St,
    Epmin,
    Epmax,
}

impl Name {
    fn lookup(s: &str) -> Option<Name> {
        const ALL: [Name; 9] = [
            Name::Ver,
            Name::Dim,
            Name::Pmin,
            Name::Pmax,
            Name::Gt,
            Name::Lt,
            Name::St,
            Name::Epmin,
            Name::Epmax,
        ];
        ALL.into_iter().find(|n| n.as_str().eq_ignore_ascii_case(s))
    }

    fn as_str(self) -> &'static str {
        match self {
            Name::Ver => "ver",
            Name::Dim => "dim",
            Name::Pmin => "pmin",
            Name::Pmax => "pmax",
            Name::Gt => "gt",
            Name::Lt => "lt",
            Name::St => "st",
            Name::Epmin => "epmin",
            Name::Epmax => "epmax",
        }
    }
}

/// PROPERTIES attributes that exist but can never be written (digest §2.1).
fn read_only_name(s: &str) -> Option<&'static str> {
    ["dim", "ver", "ssid", "uri", "lwm2m"]
        .into_iter()
        .find(|n| n.eq_ignore_ascii_case(s))
}

/// Parses a non-negative integer attribute value (`1*DIGIT`).
fn parse_uint<T: TryFrom<u64>>(name: &'static str, s: &str) -> Result<T, AttributeError> {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = s.strip_prefix('-') {
        if digits(rest) {
            return Err(AttributeError::Negative {
                name,
                value: s.to_string(),
            });
        }
    }
    if !digits(s) {
        return Err(AttributeError::InvalidValue {
            name,
            value: s.to_string(),
            expected: "a non-negative integer",
        });
    }
    let out_of_range = || AttributeError::OutOfRange {
        name,
        value: s.to_string(),
    };
    let wide: u64 = s.parse().map_err(|_| out_of_range())?;
    T::try_from(wide).map_err(|_| out_of_range())
}

/// True for `-? 1*DIGIT [ "." 1*DIGIT ] [ ("e"/"E") [+-] 1*DIGIT ]`.
fn is_decimal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(|c| c.is_ascii_digit()) {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// Parses a float attribute value (gt, lt, st). A leading `-` is accepted (digest §2.1, S3 #563).
fn parse_float(name: &'static str, s: &str) -> Result<f64, AttributeError> {
    if !is_decimal(s) {
        return Err(AttributeError::InvalidValue {
            name,
            value: s.to_string(),
            expected: "a decimal number",
        });
    }
    let v: f64 = s.parse().map_err(|_| AttributeError::InvalidValue {
        name,
        value: s.to_string(),
        expected: "a decimal number",
    })?;
    if !v.is_finite() {
        return Err(AttributeError::OutOfRange {
            name,
            value: s.to_string(),
        });
    }
    Ok(v)
}

fn parse_step(s: &str) -> Result<f64, AttributeError> {
    let v = parse_float("st", s)?;
    if v < 0.0 {
        return Err(AttributeError::Negative {
            name: "st",
            value: s.to_string(),
        });
    }
    Ok(v)
}

fn parse_version(s: &str) -> Result<Version, AttributeError> {
    s.parse().map_err(|_| AttributeError::InvalidValue {
        name: "ver",
        value: s.to_string(),
        expected: "a version MAJOR.MINOR",
    })
}

/// Formats a float without trailing garbage: `50`, `42.2`, `-5.5` (never an exponent).
pub fn format_number(v: f64) -> String {
    format!("{v}")
}

/// Parses the Uri-Query options of a Write-Attributes request, one option per element
/// (`pmin=10`, `gt=-5.5`, `pmax` to unset).
///
/// Rejects unknown names, read-only PROPERTIES attributes (`dim`, `ver`, `ssid`, `uri`, `lwm2m`),
/// non-numeric values, negative pmin/pmax/epmin/epmax/st, and repeated names. Names are matched
/// case-insensitively. The combination rules (§2.1) are checked later, on the effective set, with
/// [`Attributes::validate`].
pub fn parse_query(queries: &[&str]) -> Result<AttributeChanges, AttributeError> {
    let mut ch = AttributeChanges::default();
    for q in queries {
        let (name, value) = match q.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (*q, None),
        };
        if let Some(ro) = read_only_name(name) {
            return Err(AttributeError::ReadOnly(ro));
        }
        let Some(n) = Name::lookup(name) else {
            return Err(AttributeError::Unknown(name.to_string()));
        };
        fn put<T>(slot: &mut Option<Change<T>>, name: Name, value: Change<T>) -> Result<(), AttributeError> {
            if slot.is_some() {
                return Err(AttributeError::Duplicate(name.as_str()));
            }
            *slot = Some(value);
            Ok(())
        }
        fn uint(n: Name, v: Option<&str>) -> Result<Change<u32>, AttributeError> {
            v.map_or(Ok(Change::Unset), |v| parse_uint(n.as_str(), v).map(Change::Set))
        }
        fn float(n: Name, v: Option<&str>) -> Result<Change<f64>, AttributeError> {
            v.map_or(Ok(Change::Unset), |v| {
                if n == Name::St {
                    parse_step(v).map(Change::Set)
                } else {
                    parse_float(n.as_str(), v).map(Change::Set)
                }
            })
        }
        match n {
            Name::Pmin => put(&mut ch.pmin, n, uint(n, value)?)?,
            Name::Pmax => put(&mut ch.pmax, n, uint(n, value)?)?,
            Name::Epmin => put(&mut ch.epmin, n, uint(n, value)?)?,
            Name::Epmax => put(&mut ch.epmax, n, uint(n, value)?)?,
            Name::Gt => put(&mut ch.gt, n, float(n, value)?)?,
            Name::Lt => put(&mut ch.lt, n, float(n, value)?)?,
            Name::St => put(&mut ch.st, n, float(n, value)?)?,
            // Unreachable in practice: dim and ver are caught as read-only above.
            Name::Dim | Name::Ver => return Err(AttributeError::ReadOnly(n.as_str())),
        }
    }
    Ok(ch)
}

impl AttributeChanges {
    /// True when the request changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == AttributeChanges::default()
    }

    /// Applies the changes (set or unset) to the attributes stored at the target level.
    pub fn apply(&self, attrs: &mut Attributes) {
        if let Some(c) = self.pmin {
            c.apply(&mut attrs.pmin);
        }
        if let Some(c) = self.pmax {
            c.apply(&mut attrs.pmax);
        }
        if let Some(c) = self.gt {
            c.apply(&mut attrs.gt);
        }
        if let Some(c) = self.lt {
            c.apply(&mut attrs.lt);
        }
        if let Some(c) = self.st {
            c.apply(&mut attrs.st);
        }
        if let Some(c) = self.epmin {
            c.apply(&mut attrs.epmin);
        }
        if let Some(c) = self.epmax {
            c.apply(&mut attrs.epmax);
        }
    }

    /// A copy of `attrs` with the changes applied.
    pub fn applied_to(&self, attrs: &Attributes) -> Attributes {
        let mut out = *attrs;
        self.apply(&mut out);
        out
    }

    /// The values being set (unset fields are `None`).
    pub fn set_values(&self) -> Attributes {
        Attributes {
            pmin: self.pmin.and_then(Change::set_value),
            pmax: self.pmax.and_then(Change::set_value),
            gt: self.gt.and_then(Change::set_value),
            lt: self.lt.and_then(Change::set_value),
            st: self.st.and_then(Change::set_value),
            epmin: self.epmin.and_then(Change::set_value),
            epmax: self.epmax.and_then(Change::set_value),
            dim: None,
            ver: None,
        }
    }

    /// Checks that every value being set may be assigned at `level` on this resource
    /// (see [`Attributes::check_target`]). Unsetting is always allowed.
    pub fn check_target(&self, level: Level, resource: Option<&ResourceModel>) -> Result<(), AttributeError> {
        self.set_values().check_target(level, resource)
    }

    /// The Uri-Query options of a Write-Attributes request carrying these changes, in the stable
    /// order pmin, pmax, gt, lt, st, epmin, epmax (`pmin=10`, `pmax` for unset).
    /// [`parse_query`] of the result gives back `self`.
    pub fn to_queries(&self) -> Vec<String> {
        fn q<T>(out: &mut Vec<String>, name: &str, c: Option<Change<T>>, f: impl Fn(T) -> String) {
            match c {
                Some(Change::Set(v)) => out.push(format!("{name}={}", f(v))),
                Some(Change::Unset) => out.push(name.to_string()),
                None => {}
            }
        }
        let mut out = Vec::new();
        q(&mut out, "pmin", self.pmin, |v| v.to_string());
        q(&mut out, "pmax", self.pmax, |v| v.to_string());
        q(&mut out, "gt", self.gt, format_number);
        q(&mut out, "lt", self.lt, format_number);
        q(&mut out, "st", self.st, format_number);
        q(&mut out, "epmin", self.epmin, |v| v.to_string());
        q(&mut out, "epmax", self.epmax, |v| v.to_string());
        out
    }
}

impl Attributes {
    /// The server-default layer: `/1/x/2` Default Minimum Period and `/1/x/3` Default Maximum
    /// Period of the requesting server's account. Pass it first to [`effective`].
    pub fn server_defaults(default_pmin: Option<u32>, default_pmax: Option<u32>) -> Attributes {
        Attributes {
            pmin: default_pmin,
            pmax: default_pmax,
            ..Attributes::default()
        }
    }

    /// True when no attribute is set.
    pub fn is_empty(&self) -> bool {
        *self == Attributes::default()
    }

    /// True when a change-value condition (gt, lt or st) is set.
    pub fn has_value_conditions(&self) -> bool {
        self.gt.is_some() || self.lt.is_some() || self.st.is_some()
    }

    /// The minimum period to apply: pmin, or 0 when absent.
    pub fn effective_pmin(&self) -> u32 {
        self.pmin.unwrap_or(0)
    }

    /// The maximum period to apply: `None` when pmax is absent, 0, or not greater than pmin
    /// (digest §2.1: such a pmax is ignored, not invalid).
    pub fn effective_pmax(&self) -> Option<u32> {
        self.pmax.filter(|&p| p > 0 && p > self.effective_pmin())
    }

    /// The minimum evaluation period: epmin, or 0 when absent.
    pub fn effective_epmin(&self) -> u32 {
        self.epmin.unwrap_or(0)
    }

    /// The maximum evaluation period: `None` when epmax is absent, 0, or not greater than epmin.
    pub fn effective_epmax(&self) -> Option<u32> {
        self.epmax.filter(|&p| p > 0 && p > self.effective_epmin())
    }

    /// Checks the combination rules of digest §2.1 on an *effective* set: `lt < gt`, and
    /// `lt + 2*st < gt` when all three are present. pmax <= pmin and epmax <= epmin are accepted
    /// (the maximum is then ignored). Values that are not numbers (NaN) fail.
    pub fn validate(&self) -> Result<(), AttributeError> {
        if let Some(st) = self.st {
            if st.is_nan() || st < 0.0 {
                return Err(AttributeError::Negative {
                    name: "st",
                    value: format_number(st),
                });
            }
        }
        if let (Some(lt), Some(gt)) = (self.lt, self.gt) {
            #[allow(clippy::neg_cmp_op_on_partial_ord)]
            if !(lt < gt) {
                return Err(AttributeError::LtNotBelowGt { lt, gt });
            }
            if let Some(st) = self.st {
                #[allow(clippy::neg_cmp_op_on_partial_ord)]
                if !(lt + 2.0 * st < gt) {
                    return Err(AttributeError::StepTooLarge { lt, st, gt });
                }
            }
        }
        Ok(())
    }

    /// Checks that every attribute set here may be assigned at `level`, given the model of the
    /// resource (for resource and resource-instance levels, when known):
    ///
    /// * nothing at the root;
    /// * `ver` only at object level; `dim` only at resource level, on multiple-instance resources;
    /// * `gt`, `lt`, `st` only at resource or resource-instance level, on readable numeric resources;
    /// * pmin, pmax, epmin, epmax at any level from object down, on readable resources.
    pub fn check_target(&self, level: Level, resource: Option<&ResourceModel>) -> Result<(), AttributeError> {
        let set: [(Name, bool); 9] = [
            (Name::Ver, self.ver.is_some()),
            (Name::Dim, self.dim.is_some()),
            (Name::Pmin, self.pmin.is_some()),
            (Name::Pmax, self.pmax.is_some()),
            (Name::Gt, self.gt.is_some()),
            (Name::Lt, self.lt.is_some()),
            (Name::St, self.st.is_some()),
            (Name::Epmin, self.epmin.is_some()),
            (Name::Epmax, self.epmax.is_some()),
        ];
        let on_resource = matches!(level, Level::Resource | Level::ResourceInstance);
        let resource = resource.filter(|_| on_resource);
        for (name, present) in set {
            if !present {
                continue;
            }
            let wrong_level = || AttributeError::WrongLevel {
                name: name.as_str(),
                level,
            };
            match name {
                Name::Ver => {
                    if level != Level::Object {
                        return Err(wrong_level());
                    }
                }
                Name::Dim => {
                    if level != Level::Resource {
                        return Err(wrong_level());
                    }
                    if resource.is_some_and(|r| !r.multiple) {
                        return Err(AttributeError::NotMultiple);
                    }
                }
                Name::Gt | Name::Lt | Name::St => {
                    if !on_resource {
                        return Err(wrong_level());
                    }
                    if let Some(r) = resource {
                        if !r.data_type.is_numeric() {
                            return Err(AttributeError::NotNumeric {
                                name: name.as_str(),
                                data_type: r.data_type,
                            });
                        }
                        if !r.operations.read {
                            return Err(AttributeError::NotReadable { name: name.as_str() });
                        }
                    }
                }
                Name::Pmin | Name::Pmax | Name::Epmin | Name::Epmax => {
                    if level == Level::Root {
                        return Err(wrong_level());
                    }
                    if resource.is_some_and(|r| !r.operations.read) {
                        return Err(AttributeError::NotReadable { name: name.as_str() });
                    }
                }
            }
        }
        Ok(())
    }

    /// `self` with every field that is set in `over` replaced by that value.
    pub fn overlay(&self, over: &Attributes) -> Attributes {
        Attributes {
            pmin: over.pmin.or(self.pmin),
            pmax: over.pmax.or(self.pmax),
            gt: over.gt.or(self.gt),
            lt: over.lt.or(self.lt),
            st: over.st.or(self.st),
            epmin: over.epmin.or(self.epmin),
            epmax: over.epmax.or(self.epmax),
            dim: over.dim.or(self.dim),
            ver: over.ver.or(self.ver),
        }
    }

    /// The attributes as link parameters, in the stable order
    /// `ver, dim, pmin, pmax, gt, lt, st, epmin, epmax` (`</3/0/7>;dim=8;pmin=10;pmax=60;gt=50;lt=42.2`).
    pub fn to_link_params(&self) -> Vec<LinkParam> {
        let mut out = Vec::new();
        let mut push = |name: &str, v: Option<String>| {
            if let Some(v) = v {
                out.push(LinkParam {
                    name: name.to_string(),
                    value: Some(v),
                });
            }
        };
        push("ver", self.ver.map(|v| v.to_string()));
        push("dim", self.dim.map(|v| v.to_string()));
        push("pmin", self.pmin.map(|v| v.to_string()));
        push("pmax", self.pmax.map(|v| v.to_string()));
        push("gt", self.gt.map(format_number));
        push("lt", self.lt.map(format_number));
        push("st", self.st.map(format_number));
        push("epmin", self.epmin.map(|v| v.to_string()));
        push("epmax", self.epmax.map(|v| v.to_string()));
        out
    }

    /// Reads the attributes from link parameters (Discover output). Unknown parameters (`ssid`,
    /// `uri`, `rt`, ...) are ignored; a known one without a value, with a bad value, or given twice
    /// is an error. Names are matched case-insensitively.
    pub fn from_link_params(params: &[LinkParam]) -> Result<Attributes, AttributeError> {
        let mut a = Attributes::default();
        for p in params {
            a.apply_link_param(p)?;
        }
        Ok(a)
    }

    /// Applies one link parameter; `Ok(false)` when it is not an attribute (ignored).
    pub(crate) fn apply_link_param(&mut self, p: &LinkParam) -> Result<bool, AttributeError> {
        let Some(n) = Name::lookup(&p.name) else {
            return Ok(false);
        };
        let name = n.as_str();
        let Some(v) = p.value.as_deref() else {
            return Err(AttributeError::InvalidValue {
                name,
                value: String::new(),
                expected: "a value (name=value)",
            });
        };
        fn put<T>(slot: &mut Option<T>, name: &'static str, v: T) -> Result<(), AttributeError> {
            if slot.is_some() {
                return Err(AttributeError::Duplicate(name));
            }
            *slot = Some(v);
            Ok(())
        }
        let a = self;
        match n {
            Name::Ver => put(&mut a.ver, name, parse_version(v)?)?,
            Name::Dim => put(&mut a.dim, name, parse_uint(name, v)?)?,
            Name::Pmin => put(&mut a.pmin, name, parse_uint(name, v)?)?,
            Name::Pmax => put(&mut a.pmax, name, parse_uint(name, v)?)?,
            Name::Epmin => put(&mut a.epmin, name, parse_uint(name, v)?)?,
            Name::Epmax => put(&mut a.epmax, name, parse_uint(name, v)?)?,
            Name::Gt => put(&mut a.gt, name, parse_float(name, v)?)?,
            Name::Lt => put(&mut a.lt, name, parse_float(name, v)?)?,
            Name::St => put(&mut a.st, name, parse_step(v)?)?,
        }
        Ok(true)
    }
}

impl fmt::Display for Attributes {
    /// `pmin=10;pmax=60;gt=50` (the link-parameter form without the leading `;`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.to_link_params().iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, "{}={}", p.name, p.value.as_deref().unwrap_or(""))?;
        }
        Ok(())
    }
}

/// Merges attribute levels, least specific first: `[server defaults, object, instance, resource,
/// resource instance]` (any prefix of that list). For every attribute the value at the most specific
/// level that sets it wins (digest §2.2). Fields are merged uniformly, so pass `dim` and `ver` only
/// at the level they belong to.
pub fn effective(levels: &[&Attributes]) -> Attributes {
    levels
        .iter()
        .fold(Attributes::default(), |acc, level| acc.overlay(level))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Operations;
    use proptest::prelude::*;

    fn q(queries: &[&str]) -> Result<AttributeChanges, AttributeError> {
        parse_query(queries)
    }

    fn resource(data_type: DataType, operations: Operations, multiple: bool) -> ResourceModel {
        ResourceModel::new(7, "test", operations, multiple, false, data_type)
    }

    #[test]
    fn parses_write_attributes_queries() {
        let c = q(&[
            "pmin=10", "pmax=60", "gt=-5.5", "lt=-10", "st=0.5", "epmin=1", "epmax=30",
        ])
        .unwrap();
        assert_eq!(
            c,
            AttributeChanges {
                pmin: Some(Change::Set(10)),
                pmax: Some(Change::Set(60)),
                gt: Some(Change::Set(-5.5)),
                lt: Some(Change::Set(-10.0)),
                st: Some(Change::Set(0.5)),
                epmin: Some(Change::Set(1)),
                epmax: Some(Change::Set(30)),
            }
        );
        assert_eq!(q(&["gt=1e3"]).unwrap().gt, Some(Change::Set(1000.0)));
        assert_eq!(q(&["GT=2"]).unwrap().gt, Some(Change::Set(2.0)));
        assert!(q(&[]).unwrap().is_empty());
    }

    #[test]
    fn name_without_value_unsets() {
        let c = q(&["pmin", "gt", "pmax=5"]).unwrap();
        assert_eq!(c.pmin, Some(Change::Unset));
        assert_eq!(c.gt, Some(Change::Unset));
        assert_eq!(c.pmax, Some(Change::Set(5)));
        assert_eq!(c.lt, None);
        let before = Attributes {
            pmin: Some(30),
            gt: Some(3.0),
            lt: Some(1.0),
            ..Default::default()
        };
        let after = c.applied_to(&before);
        assert_eq!(
            after,
            Attributes {
                pmax: Some(5),
                lt: Some(1.0),
                ..Default::default()
            }
        );
    }

    #[test]
    fn rejects_bad_queries() {
        assert_eq!(q(&["foo=1"]), Err(AttributeError::Unknown("foo".into())));
        assert_eq!(q(&[""]), Err(AttributeError::Unknown("".into())));
        assert_eq!(q(&["=5"]), Err(AttributeError::Unknown("".into())));
        for (query, name) in [
            ("dim=3", "dim"),
            ("ver=1.1", "ver"),
            ("ssid=1", "ssid"),
            ("uri=x", "uri"),
        ] {
            assert_eq!(q(&[query]), Err(AttributeError::ReadOnly(name)), "{query}");
        }
        assert_eq!(q(&["lwm2m=1.1"]), Err(AttributeError::ReadOnly("lwm2m")));
        assert_eq!(q(&["dim"]), Err(AttributeError::ReadOnly("dim")));
        let invalid = |name, value: &str, expected| AttributeError::InvalidValue {
            name,
            value: value.into(),
            expected,
        };
        assert_eq!(q(&["pmin=abc"]), Err(invalid("pmin", "abc", "a non-negative integer")));
        assert_eq!(q(&["pmin=1.5"]), Err(invalid("pmin", "1.5", "a non-negative integer")));
        assert_eq!(q(&["pmin="]), Err(invalid("pmin", "", "a non-negative integer")));
        assert_eq!(q(&["pmax=+5"]), Err(invalid("pmax", "+5", "a non-negative integer")));
        assert_eq!(q(&["gt=abc"]), Err(invalid("gt", "abc", "a decimal number")));
        assert_eq!(q(&["gt="]), Err(invalid("gt", "", "a decimal number")));
        assert_eq!(q(&["lt=inf"]), Err(invalid("lt", "inf", "a decimal number")));
        assert_eq!(q(&["lt=NaN"]), Err(invalid("lt", "NaN", "a decimal number")));
        assert_eq!(q(&["gt=1."]), Err(invalid("gt", "1.", "a decimal number")));
        assert_eq!(q(&["gt=.5"]), Err(invalid("gt", ".5", "a decimal number")));
        assert_eq!(q(&["gt=1e"]), Err(invalid("gt", "1e", "a decimal number")));
        let negative = |name, value: &str| AttributeError::Negative {
            name,
            value: value.into(),
        };
        assert_eq!(q(&["pmin=-1"]), Err(negative("pmin", "-1")));
        assert_eq!(q(&["pmax=-60"]), Err(negative("pmax", "-60")));
        assert_eq!(q(&["epmin=-1"]), Err(negative("epmin", "-1")));
        assert_eq!(q(&["epmax=-1"]), Err(negative("epmax", "-1")));
        assert_eq!(q(&["st=-0.5"]), Err(negative("st", "-0.5")));
        assert_eq!(
            q(&["pmin=4294967296"]),
            Err(AttributeError::OutOfRange {
                name: "pmin",
                value: "4294967296".into()
            })
        );
        assert_eq!(
            q(&["gt=1e999"]),
            Err(AttributeError::OutOfRange {
                name: "gt",
                value: "1e999".into()
            })
        );
        assert_eq!(q(&["pmin=1", "pmin=2"]), Err(AttributeError::Duplicate("pmin")));
        assert_eq!(q(&["gt", "gt=2"]), Err(AttributeError::Duplicate("gt")));
        // every error renders a message naming what was wrong
        assert!(q(&["pmin=-1"]).unwrap_err().to_string().contains("pmin"));
    }

    #[test]
    fn validity_rules() {
        let a = |gt: Option<f64>, lt: Option<f64>, st: Option<f64>| Attributes {
            gt,
            lt,
            st,
            ..Default::default()
        };
        // worked example of digest §2.3: lt=20, gt=85, st=10 -> 20 + 20 < 85
        assert_eq!(a(Some(85.0), Some(20.0), Some(10.0)).validate(), Ok(()));
        assert_eq!(a(Some(-5.5), Some(-10.0), None).validate(), Ok(()));
        assert_eq!(a(Some(50.0), None, Some(100.0)).validate(), Ok(()));
        assert_eq!(
            a(Some(50.0), Some(50.0), None).validate(),
            Err(AttributeError::LtNotBelowGt { lt: 50.0, gt: 50.0 })
        );
        assert_eq!(
            a(Some(10.0), Some(20.0), None).validate(),
            Err(AttributeError::LtNotBelowGt { lt: 20.0, gt: 10.0 })
        );
        // lt + 2*st < gt violated: 10 + 2*20 = 50 >= 45
        assert_eq!(
            a(Some(45.0), Some(10.0), Some(20.0)).validate(),
            Err(AttributeError::StepTooLarge {
                lt: 10.0,
                st: 20.0,
                gt: 45.0
            })
        );
        // boundary: 10 + 2*17.5 = 45 is not < 45
        assert!(a(Some(45.0), Some(10.0), Some(17.5)).validate().is_err());
        assert_eq!(a(Some(45.0), Some(10.0), Some(17.0)).validate(), Ok(()));
        assert!(a(Some(f64::NAN), Some(1.0), None).validate().is_err());
        assert!(a(None, None, Some(-1.0)).validate().is_err());
    }

    #[test]
    fn pmax_not_above_pmin_is_valid_but_ignored() {
        let a = Attributes {
            pmin: Some(60),
            pmax: Some(30),
            epmin: Some(10),
            epmax: Some(10),
            ..Default::default()
        };
        assert_eq!(a.validate(), Ok(()));
        assert_eq!(a.effective_pmin(), 60);
        assert_eq!(a.effective_pmax(), None);
        assert_eq!(a.effective_epmin(), 10);
        assert_eq!(a.effective_epmax(), None);
        let eq = Attributes {
            pmin: Some(10),
            pmax: Some(10),
            ..Default::default()
        };
        assert_eq!(eq.effective_pmax(), None);
        let zero = Attributes {
            pmax: Some(0),
            ..Default::default()
        };
        assert_eq!(zero.effective_pmax(), None);
        let only_pmax = Attributes {
            pmax: Some(60),
            epmax: Some(5),
            ..Default::default()
        };
        assert_eq!(only_pmax.effective_pmin(), 0);
        assert_eq!(only_pmax.effective_pmax(), Some(60));
        assert_eq!(only_pmax.effective_epmax(), Some(5));
    }

    #[test]
    fn target_checks() {
        use Level::*;
        let float = resource(DataType::Float, Operations::R, false);
        let string = resource(DataType::String, Operations::RW, false);
        let exec = resource(DataType::None, Operations::E, false);
        let multi = resource(DataType::Integer, Operations::R, true);
        let gt = Attributes {
            gt: Some(1.0),
            ..Default::default()
        };
        let pmin = Attributes {
            pmin: Some(1),
            ..Default::default()
        };
        let dim = Attributes {
            dim: Some(2),
            ..Default::default()
        };
        let ver = Attributes {
            ver: Some(Version::V1_1),
            ..Default::default()
        };
        assert_eq!(gt.check_target(Resource, Some(&float)), Ok(()));
        assert_eq!(gt.check_target(ResourceInstance, Some(&multi)), Ok(()));
        assert_eq!(gt.check_target(Resource, None), Ok(()));
        assert_eq!(
            gt.check_target(ObjectInstance, None),
            Err(AttributeError::WrongLevel {
                name: "gt",
                level: ObjectInstance
            })
        );
        assert_eq!(
            gt.check_target(Resource, Some(&string)),
            Err(AttributeError::NotNumeric {
                name: "gt",
                data_type: DataType::String
            })
        );
        assert_eq!(
            gt.check_target(Resource, Some(&resource(DataType::Integer, Operations::W, false))),
            Err(AttributeError::NotReadable { name: "gt" })
        );
        for level in [Object, ObjectInstance] {
            assert_eq!(pmin.check_target(level, None), Ok(()));
        }
        assert_eq!(pmin.check_target(Resource, Some(&string)), Ok(()));
        assert_eq!(
            pmin.check_target(Resource, Some(&exec)),
            Err(AttributeError::NotReadable { name: "pmin" })
        );
        assert_eq!(
            pmin.check_target(Root, None),
            Err(AttributeError::WrongLevel {
                name: "pmin",
                level: Root
            })
        );
        assert_eq!(dim.check_target(Resource, Some(&multi)), Ok(()));
        assert_eq!(
            dim.check_target(Resource, Some(&float)),
            Err(AttributeError::NotMultiple)
        );
        assert!(dim.check_target(ObjectInstance, None).is_err());
        assert_eq!(ver.check_target(Object, None), Ok(()));
        assert!(ver.check_target(ObjectInstance, None).is_err());
        // through the request path: only values being set are checked
        let c = q(&["gt=5", "pmin=1"]).unwrap();
        assert!(c.check_target(ObjectInstance, None).is_err());
        assert_eq!(q(&["gt"]).unwrap().check_target(ObjectInstance, None), Ok(()));
    }

    #[test]
    fn inheritance_most_specific_wins() {
        let defaults = Attributes::server_defaults(Some(1), Some(300));
        let object = Attributes {
            pmin: Some(10),
            ..Default::default()
        };
        let instance = Attributes {
            pmax: Some(60),
            ..Default::default()
        };
        let mut res = Attributes {
            dim: Some(8),
            gt: Some(50.0),
            lt: Some(42.2),
            pmin: Some(20),
            ..Default::default()
        };
        let eff = effective(&[&defaults, &object, &instance, &res]);
        assert_eq!(eff.pmin, Some(20));
        assert_eq!(eff.pmax, Some(60));
        // `?pmin` at resource level: the object's value applies again
        q(&["pmin"]).unwrap().apply(&mut res);
        let eff = effective(&[&defaults, &object, &instance, &res]);
        assert_eq!(eff.to_string(), "dim=8;pmin=10;pmax=60;gt=50;lt=42.2");
        assert_eq!(eff.validate(), Ok(()));
        // nothing set anywhere but the server defaults
        let eff = effective(&[&defaults, &Attributes::default()]);
        assert_eq!((eff.pmin, eff.pmax), (Some(1), Some(300)));
        assert_eq!(effective(&[]), Attributes::default());
        // resource-instance level overrides the resource
        let ri = Attributes {
            gt: Some(55.0),
            ..Default::default()
        };
        assert_eq!(effective(&[&object, &res, &ri]).gt, Some(55.0));
    }

    #[test]
    fn link_param_rendering() {
        let a = Attributes {
            pmin: Some(10),
            pmax: Some(60),
            gt: Some(50.0),
            lt: Some(42.2),
            st: Some(0.5),
            epmin: Some(1),
            epmax: Some(2),
            dim: Some(8),
            ver: Some(Version::V1_2),
        };
        assert_eq!(
            a.to_string(),
            "ver=1.2;dim=8;pmin=10;pmax=60;gt=50;lt=42.2;st=0.5;epmin=1;epmax=2"
        );
        assert_eq!(Attributes::from_link_params(&a.to_link_params()), Ok(a));
        assert_eq!(format_number(50.0), "50");
        assert_eq!(format_number(42.2), "42.2");
        assert_eq!(format_number(-5.5), "-5.5");
        assert_eq!(format_number(1e21), "1000000000000000000000");
        let ignored = [
            LinkParam::new("ssid", "1"),
            LinkParam::new("uri", "x"),
            LinkParam::flag("obs"),
        ];
        assert_eq!(Attributes::from_link_params(&ignored), Ok(Attributes::default()));
        assert_eq!(
            Attributes::from_link_params(&[LinkParam::new("dim", "8"), LinkParam::new("dim", "9")]),
            Err(AttributeError::Duplicate("dim"))
        );
        assert!(Attributes::from_link_params(&[LinkParam::new("ver", "x")]).is_err());
        assert!(Attributes::from_link_params(&[LinkParam::new("dim", "70000")]).is_err());
    }

    #[test]
    fn queries_for_requests() {
        let c = q(&["gt=-5.5", "pmax", "pmin=10"]).unwrap();
        assert_eq!(c.to_queries(), ["pmin=10", "pmax", "gt=-5.5"]);
    }

    fn arb_change_u32() -> impl Strategy<Value = Option<Change<u32>>> {
        proptest::option::of(prop_oneof![Just(Change::Unset), any::<u32>().prop_map(Change::Set)])
    }

    fn arb_change_f64(min: f64) -> impl Strategy<Value = Option<Change<f64>>> {
        proptest::option::of(prop_oneof![
            Just(Change::Unset),
            any::<f64>()
                .prop_filter("finite", move |f| f.is_finite() && *f >= min)
                .prop_map(Change::Set),
        ])
    }

    proptest! {
        #[test]
        fn query_round_trip(
            pmin in arb_change_u32(),
            pmax in arb_change_u32(),
            gt in arb_change_f64(f64::MIN),
            lt in arb_change_f64(f64::MIN),
            st in arb_change_f64(0.0),
            epmin in arb_change_u32(),
            epmax in arb_change_u32(),
        ) {
            let c = AttributeChanges { pmin, pmax, gt, lt, st, epmin, epmax };
            let queries = c.to_queries();
            let refs: Vec<&str> = queries.iter().map(String::as_str).collect();
            prop_assert_eq!(parse_query(&refs).unwrap(), c);
        }

        #[test]
        fn parse_query_never_panics(s in "\\PC{0,40}") {
            let parts: Vec<&str> = s.split('&').collect();
            let _ = parse_query(&parts);
        }

        #[test]
        fn parse_query_never_panics_attribute_like(s in "(pmin|pmax|gt|lt|st|epmin|epmax|dim)(=[-+.e0-9a-z]{0,25})?") {
            let _ = parse_query(&[&s]);
        }
    }
}
