//! lwm2m-server: skeleton until its issue lands (see ARCHITECTURE.md).
#![forbid(unsafe_code)]
