//! The plumbing both `GET /api/events` streams share (the server's and the Bootstrap-Server's): the
//! `?ep=&kind=` filter, a stream over a broadcast receiver that maps each event to a named JSON SSE event,
//! reports lagging as a `lagged` event, keeps the connection alive and ends when the HTTP server closes.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde_json::{json, Value as Json};
use tokio::sync::{broadcast, watch};

use crate::error::ApiError;
use crate::query::Query;

/// How often an idle stream sends a keep-alive comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The `?ep=A,B&kind=x,y` filter of an event stream (empty lists let everything through).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct EventFilter {
    endpoints: Vec<String>,
    kinds: Vec<String>,
}

fn list(q: &Query, name: &str) -> Vec<String> {
    q.0.iter()
        .filter(|(n, _)| n == name)
        .flat_map(|(_, v)| v.as_deref().unwrap_or("").split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

impl EventFilter {
    /// Parses the raw query; `kind=` values must be among `known`.
    pub(crate) fn parse(raw: Option<&str>, known: &[&str]) -> Result<EventFilter, ApiError> {
        let q = Query::parse(raw)?;
        q.only(&["ep", "kind"])?;
        let kinds = list(&q, "kind");
        if let Some(k) = kinds.iter().find(|k| !known.contains(&k.as_str())) {
            return Err(ApiError::bad_request(
                "bad_query",
                format!("kind={k} is not an event kind; use {}", known.join(", ")),
            ));
        }
        Ok(EventFilter {
            endpoints: list(&q, "ep"),
            kinds,
        })
    }

    /// Whether an event of `kind` about `endpoint` passes.
    pub(crate) fn matches(&self, endpoint: &str, kind: &str) -> bool {
        (self.endpoints.is_empty() || self.endpoints.iter().any(|e| e == endpoint))
            && (self.kinds.is_empty() || self.kinds.iter().any(|k| k == kind))
    }
}

struct State<E, F> {
    rx: broadcast::Receiver<E>,
    closing: watch::Receiver<bool>,
    map: F,
    hello: Option<&'static str>,
}

/// An SSE response over `rx`: first the comment `hello`, then one event per item that `map` turns into
/// `(name, data)` (items it maps to `None` are skipped), `lagged` events (`{"kind": "lagged", "missed": n}`)
/// when the receiver fell behind, a keep-alive comment every 15 s; it ends when the channel closes or
/// `closing` turns true. Whatever `map` owns (e.g. a subscriber-count guard) lives as long as the stream.
pub(crate) fn event_stream<E, F>(
    hello: &'static str,
    rx: broadcast::Receiver<E>,
    closing: watch::Receiver<bool>,
    map: F,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>>
where
    E: Clone + Send + 'static,
    F: FnMut(&E) -> Option<(&'static str, Json)> + Send + 'static,
{
    let state = State {
        rx,
        closing,
        map,
        hello: Some(hello),
    };
    let s = stream::unfold(state, |mut s| async move {
        if let Some(hello) = s.hello.take() {
            return Some((Ok(SseEvent::default().comment(hello)), s));
        }
        if *s.closing.borrow() {
            return None;
        }
        loop {
            tokio::select! {
                r = s.rx.recv() => match r {
                    Ok(ev) => {
                        let Some((name, data)) = (s.map)(&ev) else { continue };
                        return Some((Ok(SseEvent::default().event(name).data(data.to_string())), s));
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let data = json!({"kind": "lagged", "missed": n}).to_string();
                        return Some((Ok(SseEvent::default().event("lagged").data(data)), s));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = s.closing.changed() => return None,
            }
        }
    });
    Sse::new(s).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_parses_lists_and_refuses_unknown_kinds() {
        let f = EventFilter::parse(Some("ep=a,%20b&kind=x&kind=y"), &["x", "y"]).unwrap();
        assert!(f.matches("a", "x") && f.matches("b", "y"));
        assert!(!f.matches("c", "x") && !f.matches("a", "z"));
        assert!(EventFilter::parse(None, &["x"]).unwrap().matches("any", "thing"));
        let e = EventFilter::parse(Some("kind=nope"), &["x", "y"]).unwrap_err();
        assert_eq!((e.status.as_u16(), e.error), (400, "bad_query"));
        assert!(e.reason.contains("use x, y"), "{}", e.reason);
        assert_eq!(
            EventFilter::parse(Some("other=1"), &[]).unwrap_err().status.as_u16(),
            400
        );
    }
}
