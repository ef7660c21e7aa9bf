//! lwm2m-bootstrap: skeleton until its issue lands (see ARCHITECTURE.md).
#![forbid(unsafe_code)]
