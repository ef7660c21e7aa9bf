//! lwm2m-client: the LwM2M 1.1 client library.
//!
//! - [`registration`]: the sans-IO registration engine (LwM2M 1.1 registration procedures: priority order,
//!   initial delay, failure block, retry/sequence timers with back-off, bootstrap fall-back, lifetime updates,
//!   triggers and Disable).
//! - [`observe`]: the sans-IO observation and notification engine (pmin/pmax, gt/lt/st, epmin/epmax sampling,
//!   Observe-Composite, offline notification storing, the 24 h CON rule).
//! - [`object`]: the object framework (the [`object::ObjectHandler`] trait, [`object::SimpleObject`], errors,
//!   change and action records).
//! - [`objects`]: the standard objects 0-7 and a simulated Temperature sensor (3303).
//! - [`dm`]: the DM&SE and Bootstrap operation dispatcher ([`dm::DataModel`]) with Access Control, attribute
//!   storage, server accounts and the factory configuration.
//! - [`runtime`]: the tokio runtime ([`runtime::Client::start`]): CoAP endpoints per server, registration,
//!   DM&SE and bootstrap requests, observe/notify, Send, queue mode, firmware pull download, coaps:// (PSK, X.509,
//!   RPK; `/0/x/16` cipher suites), the `/0/x/12` Bootstrap-Server account purge, and (opt-in,
//!   [`runtime::RebootPolicy`]) restarts on Reboot and Factory Reset.
#![forbid(unsafe_code)]

pub mod dm;
pub mod object;
pub mod objects;
pub mod observe;
pub mod registration;
pub mod runtime;
