//! Helpers shared by the HTTP tests of lwm2m-web: an API served on an ephemeral port, a hyper client on its base
//! URL with bounded waits, and a reader of Server-Sent Events. Every wait is bounded by [`WAIT`].
#![allow(dead_code)] // each test crate uses a part

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{HeaderMap, Method, Request, Response};
use lwm2m_testkit::http::{Served, Stopped};
use serde_json::Value as Json;

/// The bound of every wait.
pub const WAIT: Duration = Duration::from_secs(30);

/// An HTTP client of one API.
#[derive(Clone)]
pub struct Http {
    /// The hyper client.
    pub client: lwm2m_testkit::http::Http,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Http {
    /// A client of the API at `base`.
    pub fn new(base: String) -> Http {
        Http {
            client: lwm2m_testkit::http::client(),
            base,
        }
    }

    /// Sends `body` (as `application/json`) with extra `headers`.
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Response<Incoming> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::from(body.to_string()))).unwrap();
        tokio::time::timeout(WAIT, self.client.request(req))
            .await
            .expect("no HTTP answer in time")
            .expect("HTTP request")
    }

    /// Sends `body` (as `application/json`).
    pub async fn send(&self, method: Method, path: &str, body: &str) -> Response<Incoming> {
        self.send_with(method, path, body, &[]).await
    }

    /// The status, body text and headers.
    pub async fn text(&self, method: Method, path: &str, body: &str) -> (u16, String, HeaderMap) {
        read(self.send(method, path, body).await).await
    }

    /// The status, body text and headers of a request with extra `headers`.
    pub async fn text_with(
        &self,
        method: Method,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (u16, String, HeaderMap) {
        read(self.send_with(method, path, body, headers).await).await
    }

    /// The status and JSON body of a request with extra `headers`; the answer must be `application/json`.
    pub async fn json_with(&self, method: Method, path: &str, body: &str, headers: &[(&str, &str)]) -> (u16, Json) {
        let (status, text, headers) = self.text_with(method, path, body, headers).await;
        (status, json_body(path, &text, &headers))
    }
}

/// `text` (the answer to `path`) parsed as JSON; panics naming the path and the text if it is not JSON.
pub fn parse_json(path: &str, text: &str) -> Json {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
}

/// The JSON body of the answer to `path`, which must be `application/json`.
pub fn json_body(path: &str, text: &str, headers: &HeaderMap) -> Json {
    assert_eq!(content_type(headers), "application/json", "{path}: {text}");
    parse_json(path, text)
}

/// Serves an API (`serve` gets the listener and the stop signal, e.g.
/// `move |l, stopped| async move { api.serve(l, stopped).await }`) on an ephemeral 127.0.0.1 port: a client of
/// it, and the server, which stops when that is dropped.
pub async fn serve<F, Fut>(serve: F) -> (Http, Served)
where
    F: FnOnce(tokio::net::TcpListener, Stopped) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    let served = lwm2m_testkit::http::serve(serve).await;
    (Http::new(served.base.clone()), served)
}

/// The status, body text and headers of `resp`.
pub async fn read(resp: Response<Incoming>) -> (u16, String, HeaderMap) {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = tokio::time::timeout(WAIT, resp.into_body().collect())
        .await
        .expect("no HTTP body in time")
        .unwrap()
        .to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap(), headers)
}

/// The content type of an answer ("" when absent).
pub fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get("content-type")
        .map(|v| v.to_str().unwrap())
        .unwrap_or_default()
}

/// An SSE stream being read.
pub struct Sse {
    body: Incoming,
    buf: String,
}

impl Sse {
    /// Opens `GET /api/events{query}`.
    pub async fn open(http: &Http, query: &str) -> Sse {
        Sse::from_response(http.send(Method::GET, &format!("/api/events{query}"), "").await)
    }

    /// Reads the answer of an `/api/events` request (which must be a 200 event stream).
    pub fn from_response(resp: Response<Incoming>) -> Sse {
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Sse {
            body: resp.into_body(),
            buf: String::new(),
        }
    }

    /// The next named event: `(name, data)`; `None` when the stream ended.
    pub async fn next(&mut self) -> Option<(String, Json)> {
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                let mut name = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(n) = line.strip_prefix("event:") {
                        name = Some(n.trim().to_string());
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim_start());
                    }
                }
                if let Some(name) = name {
                    return Some((name, serde_json::from_str(&data).unwrap()));
                }
                continue;
            }
            let frame = tokio::time::timeout(WAIT, self.body.frame())
                .await
                .expect("no SSE data in time")?
                .unwrap();
            if let Ok(data) = frame.into_data() {
                self.buf.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
    }

    /// The next named event of a stream that must stay open.
    pub async fn next_open(&mut self) -> (String, Json) {
        self.next().await.expect("the SSE stream ended")
    }
}
