//! The engine's notion of time: a millisecond count on a clock the caller owns.

/// A point in time, in milliseconds since an epoch chosen by the caller (boot, `Instant` at start-up, a virtual
/// clock in tests). The engine only compares and adds; it never reads a clock. All arithmetic saturates, so a
/// delay too large to represent becomes "never" ([`Timestamp::MAX`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The epoch (0 ms).
    pub const ZERO: Timestamp = Timestamp(0);
    /// The largest representable time; used as "never".
    pub const MAX: Timestamp = Timestamp(u64::MAX);

    /// A timestamp `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }

    /// A timestamp `s` seconds after the epoch (saturating).
    pub const fn from_secs(s: u64) -> Self {
        Timestamp(s.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + ms` milliseconds, saturating at [`Timestamp::MAX`].
    pub const fn saturating_add_millis(self, ms: u64) -> Self {
        Timestamp(self.0.saturating_add(ms))
    }

    /// `self + s` seconds, saturating at [`Timestamp::MAX`].
    pub const fn saturating_add_secs(self, s: u64) -> Self {
        self.saturating_add_millis(s.saturating_mul(1000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_and_saturation() {
        assert_eq!(Timestamp::from_secs(60).as_millis(), 60_000);
        assert_eq!(Timestamp::from_millis(5).saturating_add_secs(1), Timestamp(1005));
        assert_eq!(Timestamp::from_secs(u64::MAX), Timestamp::MAX);
        assert_eq!(Timestamp(u64::MAX - 1).saturating_add_millis(10), Timestamp::MAX);
        assert_eq!(Timestamp(1).saturating_add_secs(u64::MAX), Timestamp::MAX);
        assert!(Timestamp(1) < Timestamp(2));
    }
}
