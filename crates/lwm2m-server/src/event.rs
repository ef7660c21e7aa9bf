//! What the server reports: registrations coming and going, queue-mode presence, notifications, Send data,
//! the results of on-registration actions and of requests that were held for a sleeping client. Delivered on a `tokio::sync::broadcast` channel
//! (`ServerHandle::subscribe`); a slow subscriber loses the oldest events (`RecvError::Lagged`), never
//! blocks the server.

use lwm2m_core::{Path, Record};

use crate::error::ServerError;
use crate::observation::{ObservationEndReason, ObservationId};
use crate::registry::{Registration, RegistrationId};
use crate::request::{Request, Response};

/// A server event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A client registered (2.01 sent). `replaced` is the previous registration of the same endpoint, whose
    /// observations were dropped.
    Registered {
        registration: Registration,
        replaced: Option<Registration>,
    },
    /// A client updated its registration (2.04 sent).
    Updated {
        registration: Registration,
        previous: Registration,
    },
    /// A client de-registered (2.02 sent), or the server application removed it.
    Deregistered { registration: Registration },
    /// A registration's lifetime passed without an Update; it was removed.
    Expired { registration: Registration },
    /// A queue-mode client is considered asleep: requests to it are held.
    Sleeping { endpoint: String },
    /// A queue-mode client sent something while asleep: held requests go out.
    Awake { endpoint: String },
    /// A notification of an observation (the first response is the answer to `observe`, not an event).
    Notification {
        endpoint: String,
        registration_id: RegistrationId,
        observation: ObservationId,
        /// The observed paths.
        paths: Vec<Path>,
        /// The decoded notification, or why it could not be decoded.
        result: Result<Response, ServerError>,
    },
    /// An observation ended.
    ObservationEnded {
        endpoint: String,
        registration_id: RegistrationId,
        observation: ObservationId,
        reason: ObservationEndReason,
    },
    /// Data the client sent with the Send operation (`POST /dp`, answered 2.04).
    Send {
        endpoint: String,
        registration_id: RegistrationId,
        records: Vec<Record>,
    },
    /// The result of one on-registration action (BsR-8: read or observe right after Register).
    OnRegistrationResult {
        endpoint: String,
        registration_id: RegistrationId,
        request: Request,
        result: Result<Response, ServerError>,
    },
    /// A request held for a sleeping queue-mode client finished: it was sent and answered (or the exchange
    /// failed), or its deadline passed first (`ClientSleeping`, or `RegistrationEnded` when the client has no
    /// registration any more). Emitted for every held request, whether its caller still waits for the answer
    /// or it was restored from the store by a restarted server (then nobody else learns the outcome). A
    /// request whose caller gave up before it was sent, or that was still held at shutdown (a persistent
    /// store keeps it for the next start), has no such event.
    QueuedRequestDone {
        endpoint: String,
        /// Its id in the queue ([`crate::QueuedRequestInfo::id`]).
        id: u64,
        /// The operation name (`Write-Replace`, `Execute`, ...).
        operation: &'static str,
        /// The target paths.
        paths: Vec<Path>,
        result: Result<Response, ServerError>,
    },
}

impl Event {
    /// The endpoint the event is about.
    pub fn endpoint(&self) -> &str {
        match self {
            Event::Registered { registration, .. }
            | Event::Updated { registration, .. }
            | Event::Deregistered { registration }
            | Event::Expired { registration } => &registration.endpoint,
            Event::Sleeping { endpoint }
            | Event::Awake { endpoint }
            | Event::Notification { endpoint, .. }
            | Event::ObservationEnded { endpoint, .. }
            | Event::Send { endpoint, .. }
            | Event::OnRegistrationResult { endpoint, .. }
            | Event::QueuedRequestDone { endpoint, .. } => endpoint,
        }
    }

    /// A short name of the event kind (`registered`, `notification`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Registered { .. } => "registered",
            Event::Updated { .. } => "updated",
            Event::Deregistered { .. } => "deregistered",
            Event::Expired { .. } => "expired",
            Event::Sleeping { .. } => "sleeping",
            Event::Awake { .. } => "awake",
            Event::Notification { .. } => "notification",
            Event::ObservationEnded { .. } => "observation-ended",
            Event::Send { .. } => "send",
            Event::OnRegistrationResult { .. } => "on-registration-result",
            Event::QueuedRequestDone { .. } => "queued-request-done",
        }
    }
}
