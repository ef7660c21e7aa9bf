//! `GET /api/events`: the server's events as Server-Sent Events. Each SSE event is named by its kind
//! (`event: notification`) and carries one JSON object (`data: {"kind": "notification", ...}`).

use std::convert::Infallible;

use axum::extract::{RawQuery, State};
use axum::response::sse::{Event as SseEvent, Sse};
use futures_util::stream::Stream;
use lwm2m_server::{CancelMode, Event, ObservationEndReason};
use serde_json::{json, Map, Value as Json};

use crate::clients::{response_json, summary};
use crate::error::ApiError;
use crate::json::records_to_list;
use crate::metrics::EVENT_KINDS;
use crate::sse::{event_stream, EventFilter};
use crate::WebApi;

/// The JSON of one event: `kind`, `endpoint`, `time_ms` (server clock) and the kind's own members.
pub(crate) fn event_json(api: &WebApi, ev: &Event) -> Json {
    let mut m = Map::new();
    m.insert("kind".into(), Json::String(ev.kind().into()));
    m.insert("endpoint".into(), Json::String(ev.endpoint().into()));
    m.insert("time_ms".into(), json!(api.server().now_ms()));
    match ev {
        Event::Registered { registration, replaced } => {
            m.insert("registration".into(), summary(api, registration));
            m.insert("replaced".into(), Json::Bool(replaced.is_some()));
        }
        Event::Updated { registration, .. } => {
            m.insert("registration".into(), summary(api, registration));
        }
        Event::Deregistered { registration } | Event::Expired { registration } => {
            m.insert("registration_id".into(), Json::String(registration.id.to_string()));
        }
        Event::Sleeping { .. } | Event::Awake { .. } => {}
        Event::Notification {
            observation,
            paths,
            result,
            ..
        } => {
            m.insert("observation".into(), json!(observation.0));
            let p: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
            m.insert("paths".into(), json!(p));
            match result {
                Ok(r) => m.extend(response_json(r).into_iter().filter(|(k, _)| k != "observation")),
                Err(e) => {
                    m.insert("error".into(), Json::String(e.to_string()));
                }
            }
        }
        Event::ObservationEnded {
            observation, reason, ..
        } => {
            m.insert("observation".into(), json!(observation.0));
            let why = match reason {
                ObservationEndReason::Cancelled(CancelMode::Active) => "cancelled (active)".to_string(),
                ObservationEndReason::Cancelled(CancelMode::Passive) => "cancelled (passive)".to_string(),
                ObservationEndReason::RegistrationEnded => "registration ended".to_string(),
                ObservationEndReason::ClientEnded(code) => format!("the client ended it with {code}"),
                ObservationEndReason::Closed => "the server closed".to_string(),
            };
            m.insert("reason".into(), Json::String(why));
        }
        Event::Send { records, .. } => {
            m.insert("records".into(), Json::Array(records_to_list(records)));
        }
        Event::OnRegistrationResult { request, result, .. } => {
            m.insert("operation".into(), Json::String(request.name().into()));
            let p: Vec<String> = request.paths().iter().map(|p| p.to_string()).collect();
            m.insert("paths".into(), json!(p));
            match result {
                Ok(r) => m.extend(response_json(r)),
                Err(e) => {
                    m.insert("error".into(), Json::String(e.to_string()));
                }
            }
        }
        Event::QueuedRequestDone {
            id,
            operation,
            paths,
            result,
            ..
        } => {
            m.insert("id".into(), json!(id));
            m.insert("operation".into(), Json::String((*operation).into()));
            let p: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
            m.insert("paths".into(), json!(p));
            match result {
                Ok(r) => m.extend(response_json(r)),
                Err(e) => {
                    m.insert("error".into(), Json::String(e.to_string()));
                }
            }
        }
    }
    Json::Object(m)
}

/// Decrements the subscriber gauge when a stream ends.
struct Subscribed(WebApi);

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.0.metrics().sse(false);
    }
}

/// `GET /api/events[?ep=A,B][&kind=notification,registered]`.
pub(crate) async fn stream(
    State(api): State<WebApi>,
    RawQuery(raw): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let filter = EventFilter::parse(raw.as_deref(), &EVENT_KINDS)?;
    // Subscribe before answering: every event after the response head reaches this stream.
    let rx = api.server().subscribe();
    let closing = api.shared.closing.subscribe();
    api.metrics().sse(true);
    let sub = Subscribed(api);
    Ok(event_stream("lwm2m-rs event stream", rx, closing, move |ev: &Event| {
        filter
            .matches(ev.endpoint(), ev.kind())
            .then(|| (ev.kind(), event_json(&sub.0, ev)))
    }))
}
