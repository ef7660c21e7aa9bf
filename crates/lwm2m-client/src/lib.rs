//! lwm2m-client: skeleton until its issue lands (see ARCHITECTURE.md).
#![forbid(unsafe_code)]
