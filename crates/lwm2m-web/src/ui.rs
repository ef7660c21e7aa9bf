//! The web UIs: static assets embedded in the binary (no build step, no npm at install time) and served
//! under `/ui/`. The server's UI ([`server_ui`]) is mounted by [`crate::WebApi::router`], the
//! Bootstrap-Server's ([`bootstrap_ui`]) by [`crate::bootstrap::BootstrapApi::router`]; `/` redirects to
//! `/ui/`. Both share `style.css` and `login.js` (the login card shown when the API runs with a token). The
//! assets hold no secrets and stay open when the API needs a token.

use axum::extract::Path as AxPath;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// One embedded file: its name under `/ui/`, its content type and its bytes.
type Asset = (&'static str, &'static str, &'static str);

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

/// The files of the server UI.
const SERVER_ASSETS: &[Asset] = &[
    ("index.html", HTML, include_str!("../assets/server/index.html")),
    ("app.js", JS, include_str!("../assets/server/app.js")),
    ("util.js", JS, include_str!("../assets/server/util.js")),
    ("api.js", JS, include_str!("../assets/server/api.js")),
    ("events.js", JS, include_str!("../assets/server/events.js")),
    ("models.js", JS, include_str!("../assets/server/models.js")),
    ("clients.js", JS, include_str!("../assets/server/clients.js")),
    ("client.js", JS, include_str!("../assets/server/client.js")),
    ("security.js", JS, include_str!("../assets/server/security.js")),
    ("modelsview.js", JS, include_str!("../assets/server/modelsview.js")),
    ("login.js", JS, include_str!("../assets/login.js")),
    ("style.css", CSS, include_str!("../assets/style.css")),
];

/// The files of the Bootstrap-Server UI.
const BOOTSTRAP_ASSETS: &[Asset] = &[
    ("index.html", HTML, include_str!("../assets/bootstrap/index.html")),
    ("app.js", JS, include_str!("../assets/bootstrap/app.js")),
    ("editor.js", JS, include_str!("../assets/bootstrap/editor.js")),
    ("util.js", JS, include_str!("../assets/bootstrap/util.js")),
    ("login.js", JS, include_str!("../assets/login.js")),
    ("style.css", CSS, include_str!("../assets/style.css")),
];

fn serve(assets: &'static [Asset], name: &str) -> Response {
    let name = if name.is_empty() { "index.html" } else { name };
    match assets.iter().find(|(n, _, _)| *n == name) {
        Some((_, ctype, body)) => (
            [(header::CONTENT_TYPE, *ctype), (header::CACHE_CONTROL, "no-cache")],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, format!("no such UI file: /ui/{name}")).into_response(),
    }
}

fn router<S: Clone + Send + Sync + 'static>(assets: &'static [Asset]) -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(move || async move { serve(assets, "") }))
        .route(
            "/ui/{*file}",
            get(move |AxPath(file): AxPath<String>| async move { serve(assets, &file) }),
        )
}

/// The routes of the server UI (`/`, `/ui/…`).
pub(crate) fn server_ui<S: Clone + Send + Sync + 'static>() -> Router<S> {
    router(SERVER_ASSETS)
}

/// The routes of the Bootstrap-Server UI (`/`, `/ui/…`).
pub(crate) fn bootstrap_ui<S: Clone + Send + Sync + 'static>() -> Router<S> {
    router(BOOTSTRAP_ASSETS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_non_empty_and_index_links_its_script() {
        for set in [SERVER_ASSETS, BOOTSTRAP_ASSETS] {
            for (name, _, body) in set {
                assert!(!body.trim().is_empty(), "{name} is empty");
            }
            let index = set.iter().find(|a| a.0 == "index.html").map(|a| a.2).unwrap_or("");
            assert!(index.contains("app.js"), "index.html does not load app.js");
            assert!(index.contains("style.css"), "index.html does not load style.css");
        }
    }
}
