//! JSON calls to an HTTP API (the REST API of `lwm2m server` and `lwm2m bootstrap`) with hyper's client.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value as Json;

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
