//! lwm2m-web: skeleton until its issue lands (see ARCHITECTURE.md).
#![forbid(unsafe_code)]
