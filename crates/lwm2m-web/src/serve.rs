//! The HTTP plumbing both APIs share: the end of their routers (login/logout, JSON fallbacks for unknown
//! routes and methods, the authentication layer) and serving with a graceful shutdown that also ends the
//! SSE streams.

use std::future::Future;
use std::sync::Arc;

use axum::http::{header, Method, Uri};
use axum::middleware;
use axum::response::IntoResponse;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::{self, Auth};
use crate::error::{self, ApiError};

async fn no_route(uri: Uri) -> ApiError {
    error::no_route(uri.path())
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    error::method_not_allowed(method.as_str(), uri.path())
}

/// `routes` plus `POST /api/login` / `POST /api/logout`, the JSON 404 and 405 fallbacks and the
/// authentication middleware of `auth` (which sees the fallbacks too).
pub(crate) fn finish<S: Clone + Send + Sync + 'static>(routes: Router<S>, auth: &Arc<Auth>) -> Router<S> {
    routes
        .merge(auth::routes(auth.clone()))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(auth.clone(), auth::require))
}

/// A YAML document answer (`GET /api/openapi.yaml`).
pub(crate) fn yaml(doc: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/yaml; charset=utf-8")], doc)
}

/// The public methods both APIs share, written once: `with_token`, `auth_enabled`, `serve` and
/// `close_streams`. `$api` has the fields `auth: Arc<Auth>` and `shared.closing: watch::Sender<bool>` and a
/// `router()`; `$role` is its [`crate::auth::Role`].
macro_rules! http_api_methods {
    ($api:ident, $role:expr) => {
        impl $api {
            /// Requires `token` (`Authorization: Bearer <token>`, or the cookie of `POST /api/login`) on every
            /// route but `/api/health`, `/api/openapi.yaml`, login/logout and the UI's assets; `None` leaves
            /// the API open. An empty token matches nothing. Sessions started before are forgotten.
            pub fn with_token(mut self, token: Option<String>) -> $api {
                self.auth = std::sync::Arc::new($crate::auth::Auth::new(token, $role));
                self
            }

            /// Whether a token is required.
            pub fn auth_enabled(&self) -> bool {
                self.auth.enabled()
            }

            /// Serves [`Self::router`] on `listener` until `shutdown` completes, then ends the SSE streams and
            /// finishes the requests in flight.
            pub async fn serve(
                &self,
                listener: tokio::net::TcpListener,
                shutdown: impl std::future::Future<Output = ()> + Send + 'static,
            ) -> std::io::Result<()> {
                $crate::serve::serve_with_shutdown(listener, self.router(), self.shared.closing.clone(), shutdown).await
            }

            /// Ends every open SSE stream (also done by [`Self::serve`] on shutdown).
            pub fn close_streams(&self) {
                let _ = self.shared.closing.send(true);
            }
        }
    };
}
pub(crate) use http_api_methods;

/// Serves `router` on `listener` until `shutdown` completes; then sets `closing` (SSE streams end) and
/// finishes the requests in flight.
pub(crate) async fn serve_with_shutdown(
    listener: TcpListener,
    router: Router,
    closing: watch::Sender<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = closing.send(true);
        })
        .await
}
