//! lwm2m-server: the LwM2M 1.1 server role.
//!
//! - [`registration`]: parsing and validation of Register, Update and De-register requests (digest §4.1, §4.2)
//!   with the CoAP error code each failure maps to.
//! - [`security`]: the security store (PSK, RPK, X.509 per endpoint) and the endpoint ↔ credential binding
//!   checks, shared with the DTLS handshake.
#![forbid(unsafe_code)]

pub mod registration;
pub mod security;
