//! The server's clock: milliseconds since the Unix epoch, injectable for tests.
//!
//! Registration timestamps (`registered_at`, `last_update`, `expires`), queue-mode awake windows and queued
//! request bookkeeping all read one [`Clock`]. The default, [`TokioClock`], is anchored to the wall clock once
//! and then advances with `tokio::time::Instant`, so tokio's paused test clock (`start_paused`,
//! `tokio::time::advance`) drives lifetime expiry and awake windows without sleeping. [`ManualClock`] is set
//! by hand; after moving it, call `ServerHandle::run_timers` so the server re-checks its deadlines.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of "now" in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    /// The current time in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// Wall-clock anchored, monotonic, follows tokio's (possibly paused) clock.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    epoch_ms: u64,
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// Anchors the clock at the current wall-clock time. Must be called inside a tokio runtime when the
    /// runtime's clock is paused (it works anywhere otherwise).
    pub fn new() -> TokioClock {
        let epoch_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        TokioClock {
            epoch_ms,
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock::new()
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        let elapsed = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.epoch_ms.saturating_add(elapsed)
    }
}

/// A clock moved by hand (tests).
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock reading `ms`.
    pub fn new(ms: u64) -> ManualClock {
        ManualClock(Arc::new(AtomicU64::new(ms)))
    }

    /// Sets the time.
    pub fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }

    /// Moves the time forward by `ms`.
    pub fn advance(&self, ms: u64) {
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| Some(v.saturating_add(ms)));
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn manual_clock_moves_by_hand() {
        let c = ManualClock::new(1000);
        assert_eq!(c.now_ms(), 1000);
        c.advance(500);
        assert_eq!(c.now_ms(), 1500);
        c.set(10);
        assert_eq!(c.now_ms(), 10);
        c.set(u64::MAX);
        c.advance(1);
        assert_eq!(c.now_ms(), u64::MAX, "saturates");
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_the_paused_clock() {
        let c = TokioClock::new();
        let t0 = c.now_ms();
        assert!(t0 > 1_600_000_000_000, "anchored to the wall clock: {t0}");
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(c.now_ms() - t0, 90_000);
    }
}
