//! lwm2m-dtls: DTLS 1.2 sessions (skeleton).
#![forbid(unsafe_code)]
