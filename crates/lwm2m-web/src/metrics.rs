//! Counters for `GET /metrics` (Prometheus text exposition format 0.0.4), kept in atomics: no registry, no
//! allocation on the hot path.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// The event kinds counted, in output order (the names of `lwm2m_server::Event::kind`).
pub const EVENT_KINDS: [&str; 11] = [
    "registered",
    "updated",
    "deregistered",
    "expired",
    "sleeping",
    "awake",
    "notification",
    "observation-ended",
    "send",
    "on-registration-result",
    "queued-request-done",
];

/// Outcomes of device requests made through the API.
pub const OUTCOMES: [&str; 4] = ["success", "device_error", "timeout", "failed"];

/// The API's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    events: [AtomicU64; EVENT_KINDS.len()],
    events_lagged: AtomicU64,
    http: [AtomicU64; 5],
    device: [AtomicU64; OUTCOMES.len()],
    sse_subscribers: AtomicU64,
}

/// Gauges read at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Registered clients.
    pub registrations: u64,
    /// Live observations.
    pub observations: u64,
    /// Requests held for sleeping clients.
    pub queued_requests: u64,
    /// Security store entries.
    pub security_entries: u64,
    /// Seconds since the API started.
    pub uptime_s: u64,
}

impl Metrics {
    /// Counts one server event of `kind`.
    pub fn event(&self, kind: &str) {
        if let Some(i) = EVENT_KINDS.iter().position(|k| *k == kind) {
            self.events[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts `n` events the API's subscriber missed (it lagged behind).
    pub fn lagged(&self, n: u64) {
        self.events_lagged.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one HTTP response with `status`.
    pub fn http(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.http[class].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one device request with `outcome` (one of [`OUTCOMES`]).
    pub fn device(&self, outcome: &str) {
        if let Some(i) = OUTCOMES.iter().position(|k| *k == outcome) {
            self.device[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An SSE stream opened (`true`) or closed.
    pub fn sse(&self, opened: bool) {
        if opened {
            self.sse_subscribers.fetch_add(1, Ordering::Relaxed);
        } else {
            self.sse_subscribers.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The number of open SSE streams.
    pub fn sse_subscribers(&self) -> u64 {
        self.sse_subscribers.load(Ordering::Relaxed)
    }

    /// The exposition text.
    pub fn render(&self, g: Gauges) -> String {
        let mut out = String::with_capacity(2048);
        let gauge = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n");
        };
        gauge(
            &mut out,
            "lwm2m_registrations",
            "Registered LwM2M clients.",
            g.registrations,
        );
        gauge(&mut out, "lwm2m_observations", "Live observations.", g.observations);
        gauge(
            &mut out,
            "lwm2m_queued_requests",
            "Requests held for sleeping queue-mode clients.",
            g.queued_requests,
        );
        gauge(
            &mut out,
            "lwm2m_security_entries",
            "Endpoints with credentials in the security store.",
            g.security_entries,
        );
        gauge(
            &mut out,
            "lwm2m_sse_subscribers",
            "Open /api/events streams.",
            self.sse_subscribers(),
        );
        gauge(
            &mut out,
            "lwm2m_uptime_seconds",
            "Seconds since the server started.",
            g.uptime_s,
        );
        out.push_str("# HELP lwm2m_events_total Server events by kind.\n# TYPE lwm2m_events_total counter\n");
        for (k, c) in EVENT_KINDS.iter().zip(&self.events) {
            let _ = writeln!(out, "lwm2m_events_total{{kind=\"{k}\"}} {}", c.load(Ordering::Relaxed));
        }
        let _ = write!(
            out,
            "# HELP lwm2m_events_lagged_total Events the metrics subscriber missed.\n\
             # TYPE lwm2m_events_lagged_total counter\nlwm2m_events_lagged_total {}\n",
            self.events_lagged.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP lwm2m_http_responses_total HTTP responses by status class.\n\
             # TYPE lwm2m_http_responses_total counter\n",
        );
        for (i, c) in self.http.iter().enumerate() {
            let _ = writeln!(
                out,
                "lwm2m_http_responses_total{{class=\"{}xx\"}} {}",
                i + 1,
                c.load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP lwm2m_device_requests_total Requests to devices made through the API, by outcome.\n\
             # TYPE lwm2m_device_requests_total counter\n",
        );
        for (k, c) in OUTCOMES.iter().zip(&self.device) {
            let _ = writeln!(
                out,
                "lwm2m_device_requests_total{{outcome=\"{k}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_gauges() {
        let m = Metrics::default();
        m.event("registered");
        m.event("registered");
        m.event("no-such-kind");
        m.http(200);
        m.http(404);
        m.http(999);
        m.device("timeout");
        m.sse(true);
        let text = m.render(Gauges {
            registrations: 3,
            ..Gauges::default()
        });
        assert!(text.contains("\nlwm2m_registrations 3\n"), "{text}");
        assert!(text.contains("lwm2m_events_total{kind=\"registered\"} 2\n"), "{text}");
        assert!(text.contains("lwm2m_http_responses_total{class=\"2xx\"} 1\n"));
        assert!(text.contains("lwm2m_http_responses_total{class=\"4xx\"} 1\n"));
        assert!(text.contains("lwm2m_http_responses_total{class=\"5xx\"} 1\n"));
        assert!(text.contains("lwm2m_device_requests_total{outcome=\"timeout\"} 1\n"));
        assert!(text.contains("\nlwm2m_sse_subscribers 1\n"));
        // Every sample line is "name{labels} value" or "name value".
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = line.rsplit_once(' ').unwrap();
            v.parse::<u64>().unwrap();
        }
    }
}
