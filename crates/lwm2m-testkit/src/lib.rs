//! lwm2m-testkit: what the integration tests of the lwm2m-rs crates share. A dev-dependency only, never a
//! dependency of a library: every helper panics (with a message naming what was waited for) instead of
//! returning errors, and every wait is bounded by a duration the test passes in.
//!
//! - [`events`]: waits for the next matching item of a tokio broadcast or mpsc receiver.
//! - [`proc`]: child processes read line by line ([`proc::Proc`]), peer programs found on `PATH` and run to
//!   completion, startup lines parsed.
//! - [`scratch`]: a fresh temporary directory removed on drop ([`scratch::Scratch`]).
//! - [`pki`] (feature `pki`): EC P-256 keys, CA and leaf certificates (openssl crate).
//! - [`peer`] (feature `peer`): CoAP test peers on lwm2m-coap's UDP driver: the `/hello`, `/large`, `/obs`,
//!   `/upload`, `/store` application of the interop tests ([`peer::TestPeer`]) and a scripted LwM2M
//!   registration server ([`peer::Registrar`]).
//! - [`server`] (feature `server`): waits for lwm2m-server events, a PSK DTLS server backed by its security
//!   store.
//! - [`client`] (feature `client`): the test object 3442 and factory configurations of lwm2m-client devices.
//! - [`http`] (feature `http`): JSON calls to an HTTP API, HTTP servers under test on an ephemeral port.
//!
//! Only integration tests (under `tests/`) may use it: a crate's own unit tests would see two copies of the
//! crate when the testkit depends on it.
#![forbid(unsafe_code)]

#[cfg(feature = "client")]
pub mod client;
pub mod events;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "peer")]
pub mod peer;
#[cfg(feature = "pki")]
pub mod pki;
pub mod proc;
pub mod scratch;
#[cfg(feature = "server")]
pub mod server;
