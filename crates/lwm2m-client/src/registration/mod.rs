//! The sans-IO registration engine of the LwM2M client (digest §3.2, §4.1–4.4; requirements BsR-2..BsR-6).
//!
//! The engine never does IO and never reads a clock (the quinn-proto model). Its inputs are a [`Timestamp`]
//! (`now`, milliseconds on the caller's clock), the accounts ([`EngineConfig`]), the outcomes of the requests it
//! asked for and the triggers executed by servers. Its outputs are [`Action`]s (requests to send, events for the
//! application), fetched with [`RegistrationEngine::poll_action`], and the next wake-up time
//! ([`RegistrationEngine::poll_timeout`], then [`RegistrationEngine::handle_timeout`]). A driver loop:
//!
//! ```
//! use lwm2m_client::registration::*;
//! let cfg = EngineConfig::new(vec![ServerAccount::new(1, 300)], Some(BootstrapAccount::default()));
//! let mut engine = RegistrationEngine::new(cfg, Timestamp::ZERO).unwrap();
//! assert_eq!(engine.poll_action(), Some(Action::Register { ssid: 1 }));
//! // ... send the Register; when the 2.01 arrives:
//! engine.register_result(Timestamp::from_millis(40), 1, Ok(vec!["rd".into(), "5a3f".into()])).unwrap();
//! assert!(matches!(engine.poll_action(), Some(Action::Registered { ssid: 1, .. })));
//! // The Update is due 93 s before the 300 s lifetime ends, counted from when the Register was sent.
//! assert_eq!(engine.poll_timeout(), Some(Timestamp::from_secs(207)));
//! ```
//!
//! # Procedures
//!
//! **Start-up (§3.2).** With server accounts, the registration procedures below run. Without any but with a
//! Bootstrap-Server account, a Client Initiated Bootstrap ([`Action::Bootstrap`]) is produced after the Client
//! Hold Off Time `/0/x/11`. With neither, nothing happens.
//!
//! **Ordered and unordered servers (§4.3, BsR-5).** Servers without Registration Priority Order `/1/x/13` are
//! *unordered*: each starts its own procedure at once and is not affected by the others. Servers with it are
//! registered one after another in increasing order (equal values: lower SSID first); the next one starts when
//! the previous one has *completed*, i.e. registered successfully or failed.
//!
//! **Initial Registration Delay `/1/x/14` (BsR-6).** A server's first Register waits this long after its
//! procedure starts (for ordered servers: after the previous server completed). It applies to unordered servers
//! too (§12 #2). It applies at engine start and again after every successful bootstrap, until the server's first
//! successful registration; later re-registrations (after 4.04, Update failures, lifetime expiry, Disable, a
//! trigger on a failed server) do not wait for it. New sequences never wait for it.
//!
//! **Attempts and sequences `/1/x/17`–`/1/x/20` (BsR-4).** An attempt is one Register, reported by the driver as
//! success or [`Failure`] (timeout after CoAP retransmissions, handshake failure, network error, explicit
//! rejection). After failed attempt *n* the engine waits `retry_timer × 2^(n−1)` before attempt *n+1*, at most
//! `retry_count` attempts per sequence. After a failed sequence it waits `seq_delay` and starts the next, at
//! most `seq_retry_count` sequences; `seq_delay ≥ u32::MAX` ("MAX_VALUE") means no further sequence. Counts of 0
//! are taken as 1. With the defaults, and failures reported at once, attempts start at 0, 60, 180, 420 and 900 s.
//! **Every wait is counted from the moment the failure is reported** (the `now` of
//! [`RegistrationEngine::register_result`]), not from the start of the failed attempt: a Register that times out
//! after 93 s is followed by the next one 60 s later, at 153 s.
//!
//! **Failure of a server.** When all sequences failed, the engine emits [`Action::RegistrationFailed`] and then:
//! - if `/1/x/16` Bootstrap on Registration Failure is true and a Bootstrap-Server account exists, it schedules a
//!   Client Initiated Bootstrap after the Client Hold Off Time (this is the BsR-3 fall-back; with the default
//!   `/1/x/16` = true it also covers "registration failed for all servers" of §3.2);
//! - with `/1/x/16` = false it gives up on that server until a trigger (`/1/x/8`), a bootstrap or a new engine
//!   (reboot). The engine does not bootstrap merely because all servers failed if none of them asks for it.
//! - for an ordered server: Registration Failure Block `/1/x/15` = true blocks the remaining ordered servers
//!   ([`Action::RegistrationBlocked`] for each); false continues with the next one. **Choice:** the next server
//!   starts only when the failing server has failed for good, i.e. after *all* its sequences, as the §4.3
//!   pseudo-code says (Wakaama moves on after the first failed sequence; with the default of one sequence the two
//!   agree).
//!
//! A server failing does not stop the others: registered servers keep their registrations and Updates while a
//! bootstrap is scheduled or running, and the ordered procedure goes on (unless blocked).
//!
//! **Explicit rejection (§12 #1).** [`RejectHandling::CountAsFailedAttempt`] (default): a 4.xx/5.xx counts as one
//! failed attempt; but 4.03 and 4.12 end the registration to that server at once (then bootstrap) when the server
//! has `/1/x/16` = true and a Bootstrap-Server account exists. [`RejectHandling::BootstrapImmediately`]: any
//! rejection does that. Without a Bootstrap-Server account a rejection always counts as a failed attempt (there is
//! no fall-back to short-cut to, and the server's operator may still provision the client).
//!
//! **Bootstrap.** A bootstrap decided by the engine waits the Client Hold Off Time; one requested by `/1/x/9`
//! ([`RegistrationEngine::execute_bootstrap_trigger`], BsR-2) starts at once (it *is* the server-initiated
//! bootstrap the hold-off waits for); without a Bootstrap-Server account it fails with
//! [`EngineError::NoBootstrapAccount`] (answer 4.05). Requests while one is planned or running are coalesced.
//! Failed bootstrap attempts are retried with the §4.3 rules using [`BootstrapAccount::retry`] (Table 4.3-1
//! defaults, as §3.2 recommends); when exhausted, [`Action::BootstrapFailed`] and no further attempt. After a
//! success ([`Action::Bootstrapped`]) the engine restarts with the new accounts: every server registers afresh
//! (Initial Registration Delays apply again), servers that disappeared and were registered get a
//! [`Action::Deregister`]. A success that leaves no server account counts as a failed bootstrap attempt.
//!
//! **Bootstrap-Server Account Timeout `/0/x/12` (§3.3).** After a successful bootstrap that leaves at least one
//! server account, the engine purges the Bootstrap-Server account [`BootstrapAccount::account_timeout_s`] seconds
//! later (0 or absent = never): it emits [`Action::PurgeBootstrapAccount`] (the driver deletes the Security
//! instance), forgets the account and drops a bootstrap it had planned; from then on `/1/x/9` fails with
//! [`EngineError::NoBootstrapAccount`] and failed registrations no longer fall back to bootstrap. The timer
//! starts at the `now` of the successful [`RegistrationEngine::bootstrap_result`] and is visible as
//! [`RegistrationEngine::bootstrap_purge_at`]. A later successful bootstrap restarts it with the new account's
//! timeout. It never fires while a bootstrap is in flight (the account is in use): a purge falling due then waits
//! for the bootstrap's end, and happens at once if that bootstrap fails. A factory-provisioned account is not
//! purged until the client has bootstrapped; an engine started for accounts that came from an earlier bootstrap
//! ([`EngineConfig::bootstrapped`], e.g. after a reboot) counts the timeout from its start.
//!
//! **Updates (§4.2).** An Update goes out at `lifetime − margin` after the Register/Update that set the lifetime
//! was *sent* (the server's lifetime cannot have started earlier), with margin [`EngineConfig::update_margin_s`]
//! = 93 s (MAX_TRANSMIT_WAIT) by default; when `lifetime < 2 × margin` it goes out at `lifetime / 2` (Anjay's
//! rule). Updates carry `lt` only when the lifetime differs from the one the server knows, and the object list
//! only when objects changed ([`RegistrationEngine::objects_changed`]). Causes that arrive while an Update is in
//! flight are sent in one more Update after it. On a 4.xx answer (4.04 Not Found, but also 4.00: the same Update
//! would fail again) the engine Registers at once. On a timeout, handshake or network error or a 5.xx it retries
//! the Update with the server's retry timer (`T`, `2T`, ...) while the registration is alive; when the attempts of
//! one sequence are used up, or the next retry would fall at or after the expiry, it Registers instead (at that
//! retry time, or at the expiry if earlier), with a fresh procedure. If the lifetime passes without a successful
//! Update the next request is a Register.
//!
//! **Triggers (§4.4).** `/1/x/8` ([`RegistrationEngine::execute_update_trigger`]): an Update to that server
//! (after the one in flight, or with the pending retry). A server whose registration failed starts over. Its
//! argument (§12 #3) is the caller's to ignore. Queue-mode wake-ups use the same call. `/1/x/4`
//! ([`RegistrationEngine::execute_disable`]): De-register, [`Action::Disabled`], silence for Disable Timeout
//! `/1/x/5` counted from the Execute, then a Register. [`RegistrationEngine::lifetime_changed`]: an Update with
//! the new lifetime.
//!
//! **Time.** `now` may be passed late; timers due by then fire in order, each acting at the given `now`. A `now`
//! earlier than one already seen is treated as the latest one seen, so no timer is ever scheduled in the past.
//! Results for requests the engine did not ask for (stale after a restart, duplicates) are rejected with
//! [`EngineError::Unexpected`] and change nothing.

mod config;
mod engine;
mod retry;
mod time;

pub use config::{
    Accounts, BootstrapAccount, EngineConfig, RejectHandling, RetryPolicy, ServerAccount, ServerResources,
    DEFAULT_BOOTSTRAP_ON_FAILURE, DEFAULT_DISABLE_TIMEOUT_S, DEFAULT_FAILURE_BLOCK, DEFAULT_HOLD_OFF_S,
    DEFAULT_INITIAL_DELAY_S, DEFAULT_LIFETIME_S, DEFAULT_RETRY_COUNT, DEFAULT_RETRY_TIMER_S, DEFAULT_SEQ_DELAY_S,
    DEFAULT_SEQ_RETRY_COUNT, DEFAULT_UPDATE_MARGIN_S, SEQ_DELAY_NEVER,
};
pub use engine::{Action, BootstrapStatus, EngineError, Failure, RegistrationEngine, ServerStatus};
pub use time::Timestamp;
