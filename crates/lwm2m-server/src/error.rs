//! The errors of the server's request API.

use lwm2m_coap::RequestError;
use lwm2m_core::format::ContentFormat;
use lwm2m_core::FormatError;
use thiserror::Error;

use crate::observation::ObservationId;
use crate::registry::StoreError;

/// Why a request to a client produced no [`Response`](crate::request::Response).
///
/// A CoAP error response (4.xx, 5.xx) from the client is *not* an error: it is a `Response` with that code.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ServerError {
    /// No client with this endpoint name is registered.
    #[error("no registration for endpoint {0:?}")]
    UnknownEndpoint(String),
    /// The client did not answer within the request's timeout (or every CoAP retransmission went
    /// unanswered).
    #[error("no response from {endpoint:?} within the timeout")]
    Timeout { endpoint: String },
    /// The client uses queue mode and did not wake up before the request's timeout: the request was queued
    /// and never sent.
    #[error("{endpoint:?} is sleeping (queue mode): the request stayed queued until its timeout")]
    ClientSleeping { endpoint: String },
    /// The registration ended (De-register, expiry, replacement by a new Register) while the request waited.
    #[error("the registration of {endpoint:?} ended before the request could be sent")]
    RegistrationEnded { endpoint: String },
    /// The client's payload could not be decoded.
    #[error("cannot decode the {format} payload: {source}")]
    Decode {
        /// The payload's content format.
        format: ContentFormat,
        /// What was wrong.
        source: FormatError,
    },
    /// The client's payload is in a content format this server does not know (or has none where one is
    /// needed).
    #[error("the response has content format {0}, which this server cannot decode")]
    UnknownContentFormat(u16),
    /// The request content cannot be encoded in the chosen format.
    #[error("cannot encode the request: {0}")]
    Encode(FormatError),
    /// The request is not valid (wrong path level for the operation, bad Execute arguments, a format that
    /// cannot carry it, ...). Nothing was sent.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The client answered with a CoAP RST.
    #[error("the client rejected the request with RST")]
    Reset,
    /// Any other failure of the CoAP layer (block-wise, DTLS, ...).
    #[error("CoAP: {0}")]
    Coap(RequestError),
    /// No such observation.
    #[error("no observation {0}")]
    UnknownObservation(ObservationId),
    /// The registration store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server is shut down.
    #[error("the server is shut down")]
    Shutdown,
}
