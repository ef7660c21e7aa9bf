//! lwm2m-coap: skeleton until its issue lands (see ARCHITECTURE.md).
#![forbid(unsafe_code)]
