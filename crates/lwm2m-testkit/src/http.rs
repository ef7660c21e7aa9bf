//! JSON calls to an HTTP API (the REST API of `lwm2m server` and `lwm2m bootstrap`) with hyper's client, and
//! HTTP servers under test on an ephemeral 127.0.0.1 port ([`serve`]).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value as Json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// An HTTP/1 client.
pub type Http = Client<HttpConnector, Full<Bytes>>;

/// A new HTTP/1 client.
pub fn client() -> Http {
    Client::builder(TokioExecutor::new()).build_http()
}

/// `method url` with `body` as `application/json` (also when empty); the answer (within `wait`) as its status
/// and its body parsed as JSON (`Null` when it is not JSON). Panics if no answer arrives in time.
pub async fn call(client: &Http, method: Method, url: &str, body: &str, wait: Duration) -> (u16, Json) {
    let req = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a request");
    let resp = tokio::time::timeout(wait, client.request(req))
        .await
        .expect("no HTTP answer in time")
        .expect("the HTTP API answers");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("the body").to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Json::Null))
}

/// `method url` with the extra `headers` and `body` (no content type unless `headers` has one); the answer
/// (within `wait`) as its status and its body parsed as JSON. What went wrong (no answer in time, a connection
/// error, a body that is not JSON) comes back as text instead of a panic: for polls of a server that may not
/// answer yet, and for tests that unwrap it.
pub async fn try_call(
    client: &Http,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
    wait: Duration,
) -> Result<(u16, Json), String> {
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(wait, client.request(req))
        .await
        .map_err(|_| "no answer in time".to_string())?
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, serde_json::from_slice(&body).map_err(|e| e.to_string())?))
}

/// Completes when the test stops a server started by [`serve`] (or drops its [`Served`]).
pub type Stopped = Pin<Box<dyn Future<Output = ()> + Send>>;

/// An HTTP server under test started by [`serve`]. It is told to stop by [`Served::stop`] or when dropped.
#[derive(Debug)]
pub struct Served {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

/// Binds an ephemeral 127.0.0.1 port and spawns `serve` on it, e.g.
/// `serve(move |listener, stopped| async move { api.serve(listener, stopped).await })`; `serve` gets the
/// listener and a future that completes when the test says stop. Panics if the port cannot be bound.
pub async fn serve<F, Fut>(serve: F) -> Served
where
    F: FnOnce(TcpListener, Stopped) -> Fut,
    Fut: Future<Output = std::io::Result<()>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind an ephemeral 127.0.0.1 port");
    let base = format!("http://{}", listener.local_addr().expect("the bound address"));
    let (stop, stopped) = oneshot::channel::<()>();
    let stopped: Stopped = Box::pin(async move {
        let _ = stopped.await;
    });
    let task = tokio::spawn(serve(listener, stopped));
    Served {
        base,
        stop: Some(stop),
        task,
    }
}

impl Served {
    /// Tells the server to stop and waits (within `wait`) until its task ends; what the server returned.
    /// Panics if it does not end in time or its task panicked.
    pub async fn stop(mut self, wait: Duration) -> std::io::Result<()> {
        self.signal_stop();
        tokio::time::timeout(wait, &mut self.task)
            .await
            .expect("the HTTP server stops in time")
            .expect("the HTTP server task")
    }

    fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.signal_stop();
    }
}
