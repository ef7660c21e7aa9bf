//! The per-value part of the reporting criteria (digest §2.3 item 2): what the engine remembers of a notified
//! value ([`Leaf`]) and the gt / lt / st tests.

use std::hash::{DefaultHasher, Hash, Hasher};

use lwm2m_core::attributes::Attributes;
use lwm2m_core::node::Record;
use lwm2m_core::path::{Level, Path};
use lwm2m_core::value::Value;

/// How [`Leaf::bits`] is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `bits` is an `i64` (Integer, Time).
    Int,
    /// `bits` is a `u64` (Unsigned Integer).
    Uint,
    /// `bits` is an `f64` (Float).
    Float,
    /// `bits` is 0 or 1 (Boolean).
    Bool,
    /// `bits` is a 64-bit hash of the value (String, Opaque, Objlnk, Corelnk).
    Hashed,
}

/// The last notified value of one leaf (resource or resource instance), in 24 bytes: numbers and booleans
/// exactly, everything else as a 64-bit fingerprint. Enough to tell "changed" and to evaluate gt/lt/st,
/// without keeping strings or opaque blobs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Leaf {
    pub(crate) path: Path,
    kind: Kind,
    bits: u64,
}

impl Leaf {
    pub(crate) fn new(path: Path, value: &Value) -> Leaf {
        let (kind, bits) = match value {
            Value::Integer(v) | Value::Time(v) => (Kind::Int, *v as u64),
            Value::UnsignedInteger(v) => (Kind::Uint, *v),
            Value::Float(v) => (Kind::Float, v.to_bits()),
            Value::Boolean(b) => (Kind::Bool, u64::from(*b)),
            other => (Kind::Hashed, fingerprint(other)),
        };
        Leaf { path, kind, bits }
    }

    /// The notified value as a number, for gt/lt/st (Integer, Unsigned Integer, Time, Float).
    pub(crate) fn number(&self) -> Option<f64> {
        match self.kind {
            Kind::Int => Some(self.bits as i64 as f64),
            Kind::Uint => Some(self.bits as f64),
            Kind::Float => Some(f64::from_bits(self.bits)),
            Kind::Bool | Kind::Hashed => None,
        }
    }

    /// True when `value` is the value this leaf remembers (same type and content; a fingerprint collision of
    /// two different strings would count as "same", with probability 2^-64).
    pub(crate) fn same(&self, value: &Value) -> bool {
        let other = Leaf::new(self.path, value);
        self.kind == other.kind && self.bits == other.bits
    }
}

fn fingerprint(value: &Value) -> u64 {
    let mut h = DefaultHasher::new();
    match value {
        Value::String(s) => (0u8, s.as_bytes()).hash(&mut h),
        Value::Opaque(b) => (1u8, b.as_slice()).hash(&mut h),
        Value::Objlnk(l) => (2u8, l.object_id, l.instance_id).hash(&mut h),
        Value::Corelnk(s) => (3u8, s.as_bytes()).hash(&mut h),
        // Numbers and booleans are kept exactly (see Leaf::new); hash them anyway for totality.
        other => (4u8, format!("{other:?}")).hash(&mut h),
    }
    h.finish()
}

/// The last notified values of one observation, sorted by path, one per leaf.
#[derive(Debug, Clone, Default)]
pub(crate) struct Leaves(Vec<Leaf>);

impl Leaves {
    /// The leaves of `records` that fall under one of `targets` (later records for the same path win: stored
    /// snapshots come oldest first and the current values last).
    pub(crate) fn from_records<'a>(targets: impl Iterator<Item = &'a Path> + Clone, records: &[Record]) -> Leaves {
        let mut v: Vec<Leaf> = Vec::with_capacity(records.len());
        for r in records {
            if targets.clone().any(|t| t.starts(&r.path)) {
                v.push(Leaf::new(r.path, &r.value));
            }
        }
        // Stable sort keeps the record order among equal paths; keep the last of each run.
        v.sort_by_key(|l| l.path);
        let mut out: Vec<Leaf> = Vec::with_capacity(v.len());
        for leaf in v {
            match out.last_mut() {
                Some(last) if last.path == leaf.path => *last = leaf,
                _ => out.push(leaf),
            }
        }
        out.shrink_to_fit();
        Leaves(out)
    }

    pub(crate) fn get(&self, path: &Path) -> Option<&Leaf> {
        self.0
            .binary_search_by(|l| l.path.cmp(path))
            .ok()
            .and_then(|i| self.0.get(i))
    }

    /// The remembered leaves under `target`.
    pub(crate) fn under<'a>(&'a self, target: &'a Path) -> impl Iterator<Item = &'a Leaf> + 'a {
        self.0.iter().filter(move |l| target.starts(&l.path))
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// True when value conditions (gt, lt, st) apply to a target at this level: they attach to resources and
/// resource instances only; for object and instance observations only the timing attributes count (digest
/// §2.3 item 6).
pub(crate) fn conditions_apply(target: &Path, attrs: &Attributes) -> bool {
    matches!(target.level(), Level::Resource | Level::ResourceInstance) && attrs.has_value_conditions()
}

/// Whether a new value of one leaf is a reason to notify, given the last notified value (`None`: never
/// notified, e.g. a new resource instance) and whether gt/lt/st apply.
///
/// * An unchanged value never triggers.
/// * Without conditions any change triggers.
/// * With conditions (logical OR): gt or lt *crossed* in either direction (`old > gt` differs from
///   `new > gt`; `old < lt` differs from `new < lt`), or `|new − old| ≥ st`. A value that cannot be compared
///   (no previous number, or a non-numeric value) triggers: the conditions cannot hold it back.
pub(crate) fn triggers(attrs: &Attributes, with_conditions: bool, last: Option<&Leaf>, new: &Value) -> bool {
    let Some(last) = last else { return true };
    if last.same(new) {
        return false;
    }
    if !with_conditions {
        return true;
    }
    let (Some(old), Some(new)) = (last.number(), new.as_f64()) else {
        return true;
    };
    if let Some(gt) = attrs.gt {
        if (old > gt) != (new > gt) {
            return true;
        }
    }
    if let Some(lt) = attrs.lt {
        if (old < lt) != (new < lt) {
            return true;
        }
    }
    if let Some(st) = attrs.st {
        if (new - old).abs() >= st {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use lwm2m_core::value::ObjLink;

    fn p(s: &str) -> Path {
        Path::parse(s).unwrap()
    }

    fn leaf(v: f64) -> Leaf {
        Leaf::new(p("/3/0/9"), &Value::Float(v))
    }

    fn attrs(gt: Option<f64>, lt: Option<f64>, st: Option<f64>) -> Attributes {
        Attributes {
            gt,
            lt,
            st,
            ..Default::default()
        }
    }

    #[test]
    fn leaf_keeps_numbers_exactly_and_detects_changes() {
        let big = Leaf::new(p("/1/0/1"), &Value::Integer(i64::MAX));
        assert!(big.same(&Value::Integer(i64::MAX)));
        assert!(!big.same(&Value::Integer(i64::MAX - 1)), "exact, not via f64");
        assert!(!big.same(&Value::Time(i64::MAX - 1)));
        let u = Leaf::new(p("/1/0/1"), &Value::UnsignedInteger(u64::MAX));
        assert_eq!(u.number(), Some(u64::MAX as f64));
        assert!(!u.same(&Value::Integer(-1)), "same bits, other type");
        let s = Leaf::new(p("/3/0/0"), &Value::String("Acme".into()));
        assert!(s.same(&Value::String("Acme".into())));
        assert!(!s.same(&Value::String("Acm".into())));
        assert!(
            !s.same(&Value::Corelnk("Acme".into())),
            "type is part of the fingerprint"
        );
        assert_eq!(s.number(), None);
        let o = Leaf::new(p("/3/0/0"), &Value::Objlnk(ObjLink::new(1, 2)));
        assert!(!o.same(&Value::Objlnk(ObjLink::new(2, 1))));
        let b = Leaf::new(p("/3/0/0"), &Value::Boolean(true));
        assert!(!b.same(&Value::Boolean(false)));
        assert_eq!(b.number(), None);
        assert_eq!(Leaf::new(p("/3/0/13"), &Value::Time(-5)).number(), Some(-5.0));
    }

    #[test]
    fn no_conditions_any_change() {
        let a = Attributes::default();
        assert!(triggers(&a, false, Some(&leaf(1.0)), &Value::Float(1.5)));
        assert!(!triggers(&a, false, Some(&leaf(1.0)), &Value::Float(1.0)));
        assert!(triggers(&a, false, None, &Value::Float(1.0)), "never notified");
    }

    /// The digest's worked example: lt=20, gt=85, st=10.
    #[test]
    fn worked_example() {
        let a = attrs(Some(85.0), Some(20.0), Some(10.0));
        for (old, new) in [(17.0, 24.0), (75.0, 90.0), (50.0, 10.0), (87.0, 99.0)] {
            assert!(
                triggers(&a, true, Some(&leaf(old)), &Value::Float(new)),
                "{old} -> {new}"
            );
        }
        for (old, new) in [(30.0, 39.0), (86.0, 95.0), (21.0, 29.0), (19.0, 11.0)] {
            assert!(
                !triggers(&a, true, Some(&leaf(old)), &Value::Float(new)),
                "{old} -> {new}"
            );
        }
    }

    #[test]
    fn crossings_both_directions() {
        let gt = attrs(Some(45.0), None, None);
        assert!(triggers(&gt, true, Some(&leaf(40.0)), &Value::Float(50.0)));
        assert!(triggers(&gt, true, Some(&leaf(50.0)), &Value::Float(40.0)));
        assert!(
            triggers(&gt, true, Some(&leaf(46.0)), &Value::Float(45.0)),
            "45 is <= gt"
        );
        assert!(!triggers(&gt, true, Some(&leaf(44.0)), &Value::Float(45.0)));
        assert!(!triggers(&gt, true, Some(&leaf(50.0)), &Value::Float(60.0)));
        let lt = attrs(None, Some(10.0), None);
        assert!(triggers(&lt, true, Some(&leaf(12.0)), &Value::Float(9.0)));
        assert!(
            triggers(&lt, true, Some(&leaf(9.0)), &Value::Float(10.0)),
            "10 is >= lt"
        );
        assert!(!triggers(&lt, true, Some(&leaf(5.0)), &Value::Float(9.9)));
        // integers compare as numbers
        assert!(triggers(
            &gt,
            true,
            Some(&Leaf::new(p("/1/0/1"), &Value::Integer(40))),
            &Value::Integer(46)
        ));
    }

    #[test]
    fn step_relative_to_last_notified() {
        let st = attrs(None, None, Some(5.0));
        assert!(triggers(&st, true, Some(&leaf(10.0)), &Value::Float(15.0)));
        assert!(triggers(&st, true, Some(&leaf(10.0)), &Value::Float(5.0)));
        assert!(!triggers(&st, true, Some(&leaf(10.0)), &Value::Float(14.9)));
        let zero = attrs(None, None, Some(0.0));
        assert!(triggers(&zero, true, Some(&leaf(10.0)), &Value::Float(10.1)));
        assert!(
            !triggers(&zero, true, Some(&leaf(10.0)), &Value::Float(10.0)),
            "unchanged"
        );
    }

    #[test]
    fn non_numeric_or_nan_does_not_panic_and_triggers_on_change() {
        let a = attrs(Some(1.0), None, Some(1.0));
        let s = Leaf::new(p("/3/0/0"), &Value::String("a".into()));
        assert!(triggers(&a, true, Some(&s), &Value::String("b".into())));
        assert!(!triggers(&a, true, Some(&leaf(f64::NAN)), &Value::Float(f64::NAN)));
        // NaN is on neither side of anything: 0.5 -> NaN does not cross gt=1, and |NaN - 0.5| >= 1 is false.
        assert!(!triggers(&a, true, Some(&leaf(0.5)), &Value::Float(f64::NAN)));
    }

    #[test]
    fn leaves_from_records_filters_sorts_and_keeps_last() {
        let targets = [p("/3/0/9"), p("/3303/0")];
        let recs = vec![
            Record::new(p("/3303/0/5700"), Value::Float(1.0)),
            Record::new(p("/3/0/9"), Value::Integer(50)),
            Record::new(p("/3/0/10"), Value::Integer(7)),
            Record::new(p("/3/0/9"), Value::Integer(51)),
        ];
        let l = Leaves::from_records(targets.iter(), &recs);
        assert_eq!(l.len(), 2);
        assert!(l.get(&p("/3/0/9")).unwrap().same(&Value::Integer(51)));
        assert!(l.get(&p("/3/0/10")).is_none());
        assert_eq!(l.under(&p("/3303/0")).count(), 1);
    }

    #[test]
    fn conditions_only_on_resources() {
        let a = attrs(Some(1.0), None, None);
        assert!(conditions_apply(&p("/3/0/9"), &a));
        assert!(conditions_apply(&p("/3/0/7/1"), &a));
        assert!(!conditions_apply(&p("/3/0"), &a));
        assert!(!conditions_apply(&p("/3"), &a));
        assert!(!conditions_apply(&p("/3/0/9"), &Attributes::default()));
    }
}
