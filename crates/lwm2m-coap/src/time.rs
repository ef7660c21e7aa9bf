//! Time for the sans-IO endpoint: a millisecond timestamp supplied by the caller (a driver maps
//! `std::time::Instant` onto it, tests use [`crate::sim::VirtualClock`]). The endpoint never reads a clock.

use std::ops::{Add, Sub};
use std::time::Duration;

/// Milliseconds since an arbitrary origin chosen by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The origin.
    pub const ZERO: Timestamp = Timestamp(0);

    /// From milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }

    /// From seconds.
    pub const fn from_secs(s: u64) -> Self {
        Timestamp(s.saturating_mul(1000))
    }

    /// As milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + ms`, saturating.
    pub const fn plus_millis(self, ms: u64) -> Self {
        Timestamp(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self` (0 if `earlier` is later).
    pub const fn millis_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// Map a `std::time::Instant` onto a timestamp relative to `origin` (for real-time drivers).
    pub fn from_instant(origin: std::time::Instant, now: std::time::Instant) -> Self {
        Timestamp(u64::try_from(now.saturating_duration_since(origin).as_millis()).unwrap_or(u64::MAX))
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        self.plus_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

impl Sub for Timestamp {
    type Output = Duration;
    fn sub(self, rhs: Timestamp) -> Duration {
        Duration::from_millis(self.millis_since(rhs))
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:03}s", self.0 / 1000, self.0 % 1000)
    }
}
