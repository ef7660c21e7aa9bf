//! Bookkeeping of attempts and sequences for one target (a server's registration or the bootstrap).

use super::config::RetryPolicy;
use super::time::Timestamp;

/// Where a target stands within its communication sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryState {
    /// The current sequence, 1-based.
    pub(crate) sequence: u64,
    /// Attempts started in the current sequence.
    pub(crate) started: u64,
    /// Attempts that failed in the current sequence.
    pub(crate) failed: u64,
}

impl Default for RetryState {
    fn default() -> Self {
        RetryState {
            sequence: 1,
            started: 0,
            failed: 0,
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NextStep {
    /// Another attempt in the same sequence at this time.
    RetryAt(Timestamp),
    /// The sequence failed; the first attempt of the next sequence is at this time.
    NewSequenceAt(Timestamp),
    /// All sequences failed.
    Exhausted,
}

impl RetryState {
    /// Records that an attempt starts.
    pub(crate) fn on_attempt(&mut self) {
        self.started = self.started.saturating_add(1);
    }

    /// Records a failed attempt reported at `now` and says what comes next.
    pub(crate) fn on_failure(&mut self, policy: &RetryPolicy, now: Timestamp) -> NextStep {
        // The policy may have shrunk since the sequence started (a bootstrap replaced the account): attempts
        // already made count against the new limit, never beyond it.
        let limit = policy.attempts_per_sequence();
        self.started = self.started.min(limit);
        self.failed = self.failed.min(limit);
        self.failed = self.failed.saturating_add(1);
        if self.failed < policy.attempts_per_sequence() {
            return NextStep::RetryAt(now.saturating_add_millis(policy.retry_delay_ms(self.failed)));
        }
        if self.sequence < policy.sequences() {
            self.sequence += 1;
            self.started = 0;
            self.failed = 0;
            return NextStep::NewSequenceAt(now.saturating_add_millis(policy.seq_delay_ms()));
        }
        NextStep::Exhausted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(policy: RetryPolicy) -> Vec<NextStep> {
        let mut st = RetryState::default();
        let mut now = Timestamp::ZERO;
        let mut out = Vec::new();
        loop {
            st.on_attempt();
            assert!(st.started <= policy.attempts_per_sequence());
            let next = st.on_failure(&policy, now);
            out.push(next);
            match next {
                NextStep::RetryAt(t) | NextStep::NewSequenceAt(t) => now = t,
                NextStep::Exhausted => return out,
            }
        }
    }

    #[test]
    fn defaults_give_one_sequence_of_five() {
        let s = |x| Timestamp::from_secs(x);
        assert_eq!(
            run(RetryPolicy::default()),
            [
                NextStep::RetryAt(s(60)),
                NextStep::RetryAt(s(180)),
                NextStep::RetryAt(s(420)),
                NextStep::RetryAt(s(900)),
                NextStep::Exhausted
            ]
        );
    }

    #[test]
    fn several_sequences() {
        let p = RetryPolicy {
            retry_count: 2,
            retry_timer_s: 10,
            seq_delay_s: 100,
            seq_retry_count: 3,
        };
        let s = |x| Timestamp::from_secs(x);
        assert_eq!(
            run(p),
            [
                NextStep::RetryAt(s(10)),
                NextStep::NewSequenceAt(s(110)),
                NextStep::RetryAt(s(120)),
                NextStep::NewSequenceAt(s(220)),
                NextStep::RetryAt(s(230)),
                NextStep::Exhausted
            ]
        );
    }

    #[test]
    fn never_value_stops_after_first_sequence() {
        let p = RetryPolicy {
            retry_count: 1,
            retry_timer_s: 10,
            seq_delay_s: u64::MAX,
            seq_retry_count: 3,
        };
        assert_eq!(run(p), [NextStep::Exhausted]);
    }
}
