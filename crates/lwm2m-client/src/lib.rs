//! lwm2m-client: the LwM2M 1.1 client library.
//!
//! - [`registration`]: the sans-IO registration engine (LwM2M 1.1 registration procedures: priority order,
//!   initial delay, failure block, retry/sequence timers with back-off, bootstrap fall-back, lifetime updates,
//!   triggers and Disable).
//! - [`observe`]: the sans-IO observation and notification engine (pmin/pmax, gt/lt/st, epmin/epmax sampling,
//!   Observe-Composite, offline notification storing, the 24 h CON rule).
#![forbid(unsafe_code)]

pub mod observe;
pub mod registration;
