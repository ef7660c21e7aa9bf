//! Configuration of the registration engine: server accounts (Object 1 resources 1, 4, 5, 7, 13–20), the
//! bootstrap account (Object 0 resources 11 and 12) and engine-wide policy. Defaults follow Table 4.3-1 of the digest.

/// `/1/x/17` default: attempts per communication sequence.
pub const DEFAULT_RETRY_COUNT: u64 = 5;
/// `/1/x/18` default: base retry delay in seconds.
pub const DEFAULT_RETRY_TIMER_S: u64 = 60;
/// `/1/x/19` default: delay between communication sequences in seconds (24 h).
pub const DEFAULT_SEQ_DELAY_S: u64 = 86_400;
/// `/1/x/20` default: number of communication sequences.
pub const DEFAULT_SEQ_RETRY_COUNT: u64 = 1;
/// `/1/x/14` default: Initial Registration Delay Timer in seconds.
pub const DEFAULT_INITIAL_DELAY_S: u64 = 0;
/// `/1/x/15` default: Registration Failure Block.
pub const DEFAULT_FAILURE_BLOCK: bool = false;
/// `/1/x/16` default: Bootstrap on Registration Failure.
pub const DEFAULT_BOOTSTRAP_ON_FAILURE: bool = true;
/// `/1/x/5` default: Disable Timeout in seconds.
pub const DEFAULT_DISABLE_TIMEOUT_S: u64 = 86_400;
/// `/1/x/1` default when absent (the `lt` default of the Register interface).
pub const DEFAULT_LIFETIME_S: u64 = 86_400;
/// `/0/x/11` default: Client Hold Off Time in seconds.
pub const DEFAULT_HOLD_OFF_S: u64 = 0;
/// Default margin for sending an Update before the lifetime expires: MAX_TRANSMIT_WAIT (93 s).
pub const DEFAULT_UPDATE_MARGIN_S: u64 = 93;
/// A Communication Sequence Delay Timer (`/1/x/19`) at or above this value ("MAX_VALUE") means that no further
/// sequence is ever started. Both `u32::MAX` and `u64::MAX` are therefore "never".
pub const SEQ_DELAY_NEVER: u64 = u32::MAX as u64;

/// Retry and back-off rules of one communication target (Object 1 resources 17–20; also used for bootstrap).
///
/// A *sequence* is up to [`retry_count`](Self::retry_count) attempts; after failed attempt *n* the engine waits
/// `retry_timer_s × 2^(n−1)` before attempt *n+1*. After a failed sequence it waits
/// [`seq_delay_s`](Self::seq_delay_s) and starts another, up to [`seq_retry_count`](Self::seq_retry_count)
/// sequences. A count of 0 is treated as 1 (there is always at least one attempt and one sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetryPolicy {
    /// `/1/x/17` Communication Retry Count (default 5).
    pub retry_count: u64,
    /// `/1/x/18` Communication Retry Timer, seconds (default 60).
    pub retry_timer_s: u64,
    /// `/1/x/19` Communication Sequence Delay Timer, seconds (default 86400; ≥ [`SEQ_DELAY_NEVER`] = never).
    pub seq_delay_s: u64,
    /// `/1/x/20` Communication Sequence Retry Count (default 1).
    pub seq_retry_count: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retry_count: DEFAULT_RETRY_COUNT,
            retry_timer_s: DEFAULT_RETRY_TIMER_S,
            seq_delay_s: DEFAULT_SEQ_DELAY_S,
            seq_retry_count: DEFAULT_SEQ_RETRY_COUNT,
        }
    }
}

impl RetryPolicy {
    /// Builds a policy from the optional resource values 17–20, using Table 4.3-1 defaults for absent ones.
    pub fn from_resources(
        retry_count: Option<u64>,
        retry_timer_s: Option<u64>,
        seq_delay_s: Option<u64>,
        seq_retry_count: Option<u64>,
    ) -> Self {
        RetryPolicy {
            retry_count: retry_count.unwrap_or(DEFAULT_RETRY_COUNT),
            retry_timer_s: retry_timer_s.unwrap_or(DEFAULT_RETRY_TIMER_S),
            seq_delay_s: seq_delay_s.unwrap_or(DEFAULT_SEQ_DELAY_S),
            seq_retry_count: seq_retry_count.unwrap_or(DEFAULT_SEQ_RETRY_COUNT),
        }
    }

    /// Attempts per sequence actually used: `max(retry_count, 1)`.
    pub fn attempts_per_sequence(&self) -> u64 {
        self.retry_count.max(1)
    }

    /// Sequences actually used: `max(seq_retry_count, 1)`, or 1 when the sequence delay means "never".
    pub fn sequences(&self) -> u64 {
        if self.seq_delay_s >= SEQ_DELAY_NEVER {
            1
        } else {
            self.seq_retry_count.max(1)
        }
    }

    /// The wait in milliseconds after failed attempt number `failed` (1-based) of a sequence:
    /// `retry_timer_s × 2^(failed−1)` seconds, saturating.
    pub fn retry_delay_ms(&self, failed: u64) -> u64 {
        let base = self.retry_timer_s.saturating_mul(1000);
        let shift = failed.saturating_sub(1);
        if base == 0 {
            return 0;
        }
        if shift >= 64 {
            return u64::MAX;
        }
        let factor = 1u64 << shift;
        base.saturating_mul(factor)
    }

    /// The wait in milliseconds between two sequences (saturating).
    pub fn seq_delay_ms(&self) -> u64 {
        self.seq_delay_s.saturating_mul(1000)
    }
}

/// One LwM2M Server account as the registration engine sees it (a Server object instance with its Security
/// instance). Build it with [`ServerAccount::new`] or [`ServerAccount::from_resources`]; the fields are public so
/// that callers can adjust single values with struct-update syntax.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerAccount {
    /// `/1/x/0` Short Server ID (1..=65534).
    pub ssid: u16,
    /// `/1/x/1` Lifetime in seconds (0 is treated as 1 s when scheduling).
    pub lifetime_s: u64,
    /// `/1/x/7` Binding (e.g. "U"); passed through to the driver, not interpreted by the engine.
    pub binding: String,
    /// Whether the client uses queue mode with this server (the `Q` Register parameter).
    pub queue_mode: bool,
    /// `/1/x/13` Registration Priority Order; `None` = unordered.
    pub priority_order: Option<u64>,
    /// `/1/x/14` Initial Registration Delay Timer, seconds (default 0).
    pub initial_delay_s: u64,
    /// `/1/x/15` Registration Failure Block (default false).
    pub failure_block: bool,
    /// `/1/x/16` Bootstrap on Registration Failure (default true).
    pub bootstrap_on_failure: bool,
    /// `/1/x/17`–`/1/x/20` retry and sequence rules.
    pub retry: RetryPolicy,
    /// `/1/x/5` Disable Timeout, seconds (default 86400).
    pub disable_timeout_s: u64,
}

impl ServerAccount {
    /// An account with the given SSID and lifetime, binding "U", no queue mode and every other value at its
    /// Table 4.3-1 default (unordered).
    pub fn new(ssid: u16, lifetime_s: u64) -> Self {
        ServerAccount {
            ssid,
            lifetime_s,
            binding: "U".to_owned(),
            queue_mode: false,
            priority_order: None,
            initial_delay_s: DEFAULT_INITIAL_DELAY_S,
            failure_block: DEFAULT_FAILURE_BLOCK,
            bootstrap_on_failure: DEFAULT_BOOTSTRAP_ON_FAILURE,
            retry: RetryPolicy::default(),
            disable_timeout_s: DEFAULT_DISABLE_TIMEOUT_S,
        }
    }

    /// Builds an account from resource values as read from Object 1, applying the defaults for absent ones.
    pub fn from_resources(r: &ServerResources) -> Self {
        ServerAccount {
            ssid: r.ssid,
            lifetime_s: r.lifetime_s.unwrap_or(DEFAULT_LIFETIME_S),
            binding: r.binding.clone().unwrap_or_else(|| "U".to_owned()),
            queue_mode: r.queue_mode,
            priority_order: r.priority_order,
            initial_delay_s: r.initial_delay_s.unwrap_or(DEFAULT_INITIAL_DELAY_S),
            failure_block: r.failure_block.unwrap_or(DEFAULT_FAILURE_BLOCK),
            bootstrap_on_failure: r.bootstrap_on_failure.unwrap_or(DEFAULT_BOOTSTRAP_ON_FAILURE),
            retry: RetryPolicy::from_resources(r.retry_count, r.retry_timer_s, r.seq_delay_s, r.seq_retry_count),
            disable_timeout_s: r.disable_timeout_s.unwrap_or(DEFAULT_DISABLE_TIMEOUT_S),
        }
    }

    /// Whether this server takes part in the ordered procedure (has `/1/x/13`).
    pub fn is_ordered(&self) -> bool {
        self.priority_order.is_some()
    }
}

/// Raw Object 1 resource values of one server account; `None` = resource absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ServerResources {
    /// `/1/x/0` Short Server ID.
    pub ssid: u16,
    /// `/1/x/1` Lifetime.
    pub lifetime_s: Option<u64>,
    /// `/1/x/7` Binding.
    pub binding: Option<String>,
    /// Queue mode (derived from the binding or client configuration).
    pub queue_mode: bool,
    /// `/1/x/13` Registration Priority Order.
    pub priority_order: Option<u64>,
    /// `/1/x/14` Initial Registration Delay Timer.
    pub initial_delay_s: Option<u64>,
    /// `/1/x/15` Registration Failure Block.
    pub failure_block: Option<bool>,
    /// `/1/x/16` Bootstrap on Registration Failure.
    pub bootstrap_on_failure: Option<bool>,
    /// `/1/x/17` Communication Retry Count.
    pub retry_count: Option<u64>,
    /// `/1/x/18` Communication Retry Timer.
    pub retry_timer_s: Option<u64>,
    /// `/1/x/19` Communication Sequence Delay Timer.
    pub seq_delay_s: Option<u64>,
    /// `/1/x/20` Communication Sequence Retry Count.
    pub seq_retry_count: Option<u64>,
    /// `/1/x/5` Disable Timeout.
    pub disable_timeout_s: Option<u64>,
}

/// The Bootstrap-Server account (a Security instance with Bootstrap-Server = true).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BootstrapAccount {
    /// `/0/x/11` Client Hold Off Time, seconds (default 0): the wait between deciding to bootstrap and sending
    /// the Bootstrap-Request.
    pub hold_off_s: u64,
    /// Retry rules for bootstrap attempts. The digest (§3.2) recommends the Table 4.3-1 defaults.
    pub retry: RetryPolicy,
    /// `/0/x/12` Bootstrap-Server Account Timeout, seconds: the account is purged this long after a successful
    /// bootstrap ([`Action::PurgeBootstrapAccount`](super::Action::PurgeBootstrapAccount)). 0 (also what an
    /// absent resource gives) = never.
    pub account_timeout_s: u64,
}

impl Default for BootstrapAccount {
    fn default() -> Self {
        BootstrapAccount {
            hold_off_s: DEFAULT_HOLD_OFF_S,
            retry: RetryPolicy::default(),
            account_timeout_s: 0,
        }
    }
}

impl BootstrapAccount {
    /// A bootstrap account with the given Client Hold Off Time (`None` = absent = 0 s), default retry rules and
    /// no account timeout.
    pub fn new(hold_off_s: Option<u64>) -> Self {
        BootstrapAccount {
            hold_off_s: hold_off_s.unwrap_or(DEFAULT_HOLD_OFF_S),
            ..BootstrapAccount::default()
        }
    }

    /// The same account with `/0/x/12` Bootstrap-Server Account Timeout `timeout_s` (`None` = absent = never).
    pub fn with_account_timeout(mut self, timeout_s: Option<u64>) -> Self {
        self.account_timeout_s = timeout_s.unwrap_or(0);
        self
    }

    /// The purge delay in milliseconds, `None` when the account is kept forever (timeout 0).
    pub fn purge_delay_ms(&self) -> Option<u64> {
        (self.account_timeout_s > 0).then(|| self.account_timeout_s.saturating_mul(1000))
    }
}

/// The accounts the client holds: what the engine is (re)started with at boot and after a bootstrap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounts {
    /// LwM2M Server accounts.
    pub servers: Vec<ServerAccount>,
    /// The Bootstrap-Server account, if any.
    pub bootstrap: Option<BootstrapAccount>,
}

/// How an explicit rejection (4.xx/5.xx response to Register) is handled (digest §12 #1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RejectHandling {
    /// Count the rejection as one failed attempt (Wakaama/Anjay), except that 4.03 Forbidden and
    /// 4.12 Precondition Failed end the registration to that server at once and start a bootstrap when the
    /// server has `/1/x/16` = true and a Bootstrap-Server account exists.
    #[default]
    CountAsFailedAttempt,
    /// Any 4.xx/5.xx rejection ends the registration to that server at once and starts a bootstrap when the
    /// server has `/1/x/16` = true and a Bootstrap-Server account exists (the literal reading of `/1/x/16`).
    BootstrapImmediately,
}

/// Everything [`RegistrationEngine::new`](super::RegistrationEngine::new) needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// LwM2M Server accounts (any order; the engine sorts the ordered ones).
    pub servers: Vec<ServerAccount>,
    /// The Bootstrap-Server account, if any.
    pub bootstrap: Option<BootstrapAccount>,
    /// Handling of explicit rejections.
    pub reject_handling: RejectHandling,
    /// Margin in seconds for sending an Update before the lifetime expires (default 93 = MAX_TRANSMIT_WAIT).
    /// The Update goes out at `lifetime − margin` when `lifetime ≥ 2 × margin`, otherwise at `lifetime / 2`.
    pub update_margin_s: u64,
    /// The accounts come from an earlier successful bootstrap (not from the factory), e.g. when the engine is
    /// restarted after a reboot: the Bootstrap-Server Account Timeout of [`bootstrap`](Self::bootstrap) then
    /// runs from the engine start (the time already elapsed before the restart is not known, so the purge can
    /// only come later than planned, never not at all). Default false: a factory-provisioned Bootstrap-Server
    /// account is only purged after a bootstrap.
    pub bootstrapped: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            servers: Vec::new(),
            bootstrap: None,
            reject_handling: RejectHandling::default(),
            update_margin_s: DEFAULT_UPDATE_MARGIN_S,
            bootstrapped: false,
        }
    }
}

impl EngineConfig {
    /// A configuration with the given accounts and default policy.
    pub fn new(servers: Vec<ServerAccount>, bootstrap: Option<BootstrapAccount>) -> Self {
        EngineConfig {
            servers,
            bootstrap,
            ..EngineConfig::default()
        }
    }
}

/// The delay in milliseconds from sending a Register/Update with lifetime `lifetime_s` to sending the next Update.
pub(crate) fn update_delay_ms(lifetime_s: u64, margin_s: u64) -> u64 {
    let lt = lifetime_s.max(1).saturating_mul(1000);
    let margin = margin_s.saturating_mul(1000);
    if margin > 0 && lt >= margin.saturating_mul(2) {
        lt - margin
    } else {
        lt / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_4_3_1_defaults_for_absent_resources() {
        let a = ServerAccount::from_resources(&ServerResources {
            ssid: 7,
            ..Default::default()
        });
        assert_eq!(a.ssid, 7);
        assert_eq!(a.lifetime_s, 86_400);
        assert_eq!(a.binding, "U");
        assert_eq!(a.priority_order, None);
        assert!(!a.is_ordered());
        assert_eq!(a.initial_delay_s, 0);
        assert!(!a.failure_block);
        assert!(a.bootstrap_on_failure);
        assert_eq!(
            a.retry,
            RetryPolicy {
                retry_count: 5,
                retry_timer_s: 60,
                seq_delay_s: 86_400,
                seq_retry_count: 1
            }
        );
        assert_eq!(a.disable_timeout_s, 86_400);
        assert_eq!(
            a,
            ServerAccount {
                lifetime_s: 86_400,
                ..ServerAccount::new(7, 1)
            }
        );
    }

    #[test]
    fn present_resources_override_defaults() {
        let r = ServerResources {
            ssid: 3,
            lifetime_s: Some(300),
            binding: Some("UT".into()),
            queue_mode: true,
            priority_order: Some(2),
            initial_delay_s: Some(10),
            failure_block: Some(true),
            bootstrap_on_failure: Some(false),
            retry_count: Some(2),
            retry_timer_s: Some(5),
            seq_delay_s: Some(u64::MAX),
            seq_retry_count: Some(4),
            disable_timeout_s: Some(30),
        };
        let a = ServerAccount::from_resources(&r);
        assert_eq!(a.lifetime_s, 300);
        assert_eq!(a.binding, "UT");
        assert!(a.queue_mode && a.failure_block && !a.bootstrap_on_failure);
        assert_eq!(a.priority_order, Some(2));
        assert_eq!(a.initial_delay_s, 10);
        assert_eq!(a.retry.retry_count, 2);
        assert_eq!(a.retry.retry_timer_s, 5);
        assert_eq!(a.retry.seq_retry_count, 4);
        // MAX_VALUE sequence delay: never another sequence.
        assert_eq!(a.retry.sequences(), 1);
        assert_eq!(a.disable_timeout_s, 30);
    }

    #[test]
    fn retry_delays_double() {
        let p = RetryPolicy::default();
        let waits: Vec<u64> = (1..=4).map(|n| p.retry_delay_ms(n)).collect();
        assert_eq!(waits, [60_000, 120_000, 240_000, 480_000]);
        assert_eq!(p.retry_delay_ms(200), u64::MAX);
        assert_eq!(
            RetryPolicy {
                retry_timer_s: u64::MAX,
                ..p
            }
            .retry_delay_ms(1),
            u64::MAX
        );
        assert_eq!(RetryPolicy { retry_timer_s: 0, ..p }.retry_delay_ms(70), 0);
    }

    #[test]
    fn zero_counts_mean_one() {
        let p = RetryPolicy {
            retry_count: 0,
            seq_retry_count: 0,
            ..RetryPolicy::default()
        };
        assert_eq!(p.attempts_per_sequence(), 1);
        assert_eq!(p.sequences(), 1);
        let never = RetryPolicy {
            seq_retry_count: 9,
            seq_delay_s: u32::MAX as u64,
            ..p
        };
        assert_eq!(never.sequences(), 1);
        let almost = RetryPolicy {
            seq_retry_count: 9,
            seq_delay_s: u32::MAX as u64 - 1,
            ..p
        };
        assert_eq!(almost.sequences(), 9);
    }

    #[test]
    fn bootstrap_account_timeout() {
        let bs = BootstrapAccount::new(Some(5));
        assert_eq!((bs.hold_off_s, bs.account_timeout_s, bs.purge_delay_ms()), (5, 0, None));
        assert_eq!(bs.with_account_timeout(None).purge_delay_ms(), None, "absent = never");
        assert_eq!(bs.with_account_timeout(Some(0)).purge_delay_ms(), None, "0 = never");
        assert_eq!(bs.with_account_timeout(Some(30)).purge_delay_ms(), Some(30_000));
        assert_eq!(bs.with_account_timeout(Some(u64::MAX)).purge_delay_ms(), Some(u64::MAX));
    }

    #[test]
    fn update_delay_rule() {
        // lifetime >= 2 x 93 s: lifetime - 93 s.
        assert_eq!(update_delay_ms(300, 93), 207_000);
        assert_eq!(update_delay_ms(186, 93), 93_000);
        assert_eq!(update_delay_ms(86_400, 93), 86_307_000);
        // Shorter lifetimes: half of it.
        assert_eq!(update_delay_ms(185, 93), 92_500);
        assert_eq!(update_delay_ms(100, 93), 50_000);
        assert_eq!(update_delay_ms(1, 93), 500);
        assert_eq!(update_delay_ms(0, 93), 500);
        // Margin 0: half the lifetime, never at the expiry itself.
        assert_eq!(update_delay_ms(100, 0), 50_000);
        assert_eq!(update_delay_ms(u64::MAX, 93), u64::MAX - 93_000);
    }
}
