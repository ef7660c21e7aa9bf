//! The sans-IO observation and notification engine of the LwM2M client (digest §2.3, §6, §6.1).
//!
//! [`ObserveEngine`] decides *when* each observation must notify, and how (CON or NON, now or stored). It
//! never does IO, never reads a clock and never reads the data model: `now` ([`Timestamp`], milliseconds on
//! the caller's clock) comes with every input, and the caller reads the values when the engine asks. A `now`
//! earlier than one already seen counts as the latest one seen, so no timer is ever in the past.
//!
//! # Inputs and outputs
//!
//! | Input | When |
//! |---|---|
//! | [`ObserveEngine::observe`] | Observe / Observe-Composite accepted (after the ACL check); with the effective attributes of each target and the values of the 2.05 response |
//! | [`ObserveEngine::cancel`], [`ObserveEngine::cancel_server`] | Cancel Observation, RST to a Notify, CON Notify timed out; De-register or registration lost |
//! | [`ObserveEngine::value_changed`] | leaf values changed anywhere in the data model |
//! | [`ObserveEngine::paths_changed`] | instances created/deleted, or a change without values |
//! | [`ObserveEngine::attributes_changed`] | Write-Attributes, or `/1/x/2` / `/1/x/3` written |
//! | [`ObserveEngine::set_online`], [`ObserveEngine::set_storing`] | server offline / disabled / back; `/1/x/6` |
//! | [`ObserveEngine::handle_timeout`] | at [`ObserveEngine::poll_timeout`] |
//! | [`ObserveEngine::notified`], [`ObserveEngine::not_sent`], [`ObserveEngine::sampled`] | answers to the outputs |
//!
//! Outputs: [`ObserveEngine::poll_notification`] → [`Notify`] (read the targets, check the server's Read
//! access, send with the observation's token; then [`ObserveEngine::notified`] with the records sent, or
//! [`ObserveEngine::not_sent`]); [`ObserveEngine::poll_evaluation`] → [`Evaluate`] (read the paths, report with
//! [`ObserveEngine::sampled`]). A driver loop:
//!
//! ```
//! use lwm2m_client::observe::*;
//! use lwm2m_core::{attributes::Attributes, Path, Record, Value};
//!
//! let mut engine = ObserveEngine::default();
//! let path: Path = "/3/0/9".parse().unwrap();
//! let attrs = Attributes { pmin: Some(10), pmax: Some(60), ..Default::default() };
//! let now = Timestamp::ZERO;
//! let id = engine
//!     .observe(now, 1, &[0xAB], vec![path], vec![attrs], &[Record::new(path, Value::Integer(90))])
//!     .unwrap();
//! // The battery level changes 2 s later: held back by pmin = 10 s.
//! engine.value_changed(Timestamp::from_secs(2), &[Record::new(path, Value::Integer(89))]);
//! assert_eq!(engine.poll_notification(), None);
//! assert_eq!(engine.poll_timeout(), Some(Timestamp::from_secs(10)));
//! engine.handle_timeout(Timestamp::from_secs(10));
//! let n = engine.poll_notification().unwrap();
//! assert_eq!((n.id, n.reason, n.confirmable), (id, Reason::Changed, false));
//! // ... read /3/0/9, send the Notify, then:
//! engine.notified(Timestamp::from_secs(10), id, &[Record::new(path, Value::Integer(89))]).unwrap();
//! // Nothing changes: pmax forces the next one 60 s after the last.
//! assert_eq!(engine.poll_timeout(), Some(Timestamp::from_secs(70)));
//! ```
//!
//! # Rules
//!
//! **Observations.** Keyed by (SSID, token); an Observe with a token the server already uses replaces that
//! observation (RFC 7641 re-registration). Each has one target path (Observe) or several (Observe-Composite),
//! each target with its own effective [`Attributes`](lwm2m_core::attributes::Attributes) (the caller computes them with
//! `lwm2m_core::attributes::effective`: `/1/x/2`, `/1/x/3` defaults first, then object, instance, resource,
//! resource instance). A notification always carries all targets. The 2.05 response of the Observe counts as
//! the first notification: pmin, pmax and the CON clock start there.
//!
//! **What the engine remembers.** Per observation, the last notified value of every leaf under its targets,
//! in 24 bytes a leaf: numbers and booleans exactly, strings, opaque and links as a 64-bit fingerprint. That
//! is enough for change detection and gt/lt/st; values themselves are read by the caller when a notification
//! goes out and reported back with [`ObserveEngine::notified`], so the caller must report exactly what it
//! sent. Stored notifications (offline) are the only values the engine keeps in full.
//!
//! **Reporting criteria (§2.3).** Per target:
//! - *Change.* A reported value equal to the last notified one is no change. Without gt/lt/st any change
//!   triggers. With them (resource and resource-instance targets only; on object and instance targets only
//!   the timing attributes apply), a change triggers when it meets at least one: gt crossed in either
//!   direction (`old > gt` ≠ `new > gt`), lt crossed in either direction (`old < lt` ≠ `new < lt`), or
//!   `|new − old| ≥ st`, where `old` is always the *last notified* value. A change that cannot be compared (a
//!   leaf never notified, a non-numeric value) triggers. On an object or instance target, a change of any
//!   leaf under it triggers. A trigger is sticky until the next notification: a crossing inside the pmin
//!   window is delivered when pmin ends even if the value went back meanwhile.
//! - *pmin.* A triggered target is due `pmin` after the last notification (at once when that has passed).
//! - *pmax.* Effective only when `pmax > 0` and `pmax > pmin` ([`Attributes::effective_pmax`](lwm2m_core::attributes::Attributes::effective_pmax); `pmax <= pmin`
//!   ignores pmax). Due `pmax` after the last notification, change or not.
//! - Absent pmin means 0; absent pmax means none (only `/1/x/2`, `/1/x/3` defaults, applied by the caller).
//! - For a composite observation the earliest due target wins and the notification restarts every target's
//!   clock. [`Reason::Changed`] when some triggered target's pmin has passed, else [`Reason::PmaxExpired`].
//!
//! **Evaluation periods (epmin / epmax, §2.3 item 5): the engine asks the caller to sample.** An evaluation of
//! a target is a change report evaluated ([`ObserveEngine::value_changed`]) or a sample requested. Changes
//! reported less than `epmin` after the target's last evaluation are not evaluated: the target is marked, and
//! at `last evaluation + epmin` the engine emits an [`Evaluate`] for it; the caller reads the current values and
//! reports them with [`ObserveEngine::sampled`], where they are compared with the last notified values. So
//! the criteria are evaluated at most once per epmin, with the value current at that time. With epmax
//! (effective only when `epmax > epmin`, [`Attributes::effective_epmax`](lwm2m_core::attributes::Attributes::effective_epmax)) an [`Evaluate`] is emitted whenever
//! `epmax` passes without an evaluation, for values the application does not push (polled sensors). Without
//! epmin and epmax no sample is ever requested: change reports drive everything. Samples never bypass pmin.
//!
//! **In flight.** From [`ObserveEngine::poll_notification`] until [`ObserveEngine::notified`] /
//! [`ObserveEngine::not_sent`] the observation's notification timers are stopped (changes are still
//! evaluated, and a trigger seen then leads to one more notification after the next pmin). pmin and pmax
//! restart at the `now` of `notified`. Report a notification before feeding further changes when possible.
//!
//! **Access control (§6.1).** The caller checks Read access before each Notify; when it is missing it sends
//! nothing and calls [`ObserveEngine::not_sent`] (the clocks restart, the last notified values stay).
//!
//! **Offline and queue mode (§2.3 item 7, `/1/x/6`).** [`ObserveEngine::set_online`] with `false` (server
//! disabled, client offline, or a queue-mode client that prefers to batch while asleep). Timers keep running.
//! A notification that falls due then is:
//! - with Notification Storing `/1/x/6` true ([`ObserveEngine::set_storing`], default true): handed out with
//!   [`Delivery::Store`]; the caller reads the values, sends nothing and reports them with
//!   [`ObserveEngine::notified`]; the engine keeps them with their time, at most
//!   [`ObserveConfig::max_stored_per_server`] per server (the oldest dropped first). They count as
//!   notifications for pmin/pmax/gt/lt/st.
//! - with storing false: held, no more timers for that observation; only the latest state is sent later.
//!
//! Back online, each such observation gets a [`Reason::BackOnline`] notification whose [`Notify::stored`]
//! holds its stored snapshots, oldest first: send them as timestamped SenML records followed by the current
//! values. Notifications are never re-ordered within one observation.
//!
//! **24 h CON (RFC 7641 §4.5).** A sent notification is confirmable when no notification of that observation
//! was confirmable for [`ObserveConfig::con_interval_ms`] (24 h, counted from the Observe). The lwm2m-coap
//! endpoint has the same rule (`notify_con_interval_ms`); switch one of them off (`con_interval_ms: None`).
//! A CON notification that times out ends the observation: call [`ObserveEngine::cancel`].
//!
//! **Not done here.** Content formats, the Observe sequence number and token matching are the CoAP layer's;
//! persistence of observations across reboots is the caller's (the engine is `Clone`, its state plain data).

mod engine;
mod eval;
#[cfg(test)]
mod tests;

pub use crate::registration::Timestamp;
pub use engine::{
    Delivery, Evaluate, Notify, ObservationId, ObserveConfig, ObserveEngine, ObserveError, Reason, StoredNotification,
    Token, DEFAULT_CON_INTERVAL_MS, DEFAULT_MAX_OBSERVATIONS_PER_SERVER, DEFAULT_MAX_STORED_PER_SERVER,
};
