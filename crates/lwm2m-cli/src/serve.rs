//! What `lwm2m server` and `lwm2m bootstrap` share around their HTTP API: the API token options, the spawned
//! HTTP server task with the wait for Ctrl-C (or its failure) and its graceful stop, and stdout lines.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A secret string: its `Debug` form does not show it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The API token from `--api-token TOKEN` or `--api-token-file FILE` (not both); `None` without either. A file
/// holds the token on its first line (surrounding whitespace ignored). `source` names where they come from
/// in messages (e.g. "the command line", "the config file").
pub(crate) fn api_token(token: Option<&str>, file: Option<&Path>, source: &str) -> Result<Option<Secret>> {
    let token = match (token, file) {
        (Some(_), Some(_)) => bail!(
            "--api-token and --api-token-file are both given in {source}: pass one (the file keeps the token out of \
             `ps` and shell history)"
        ),
        (Some(t), None) => t.trim().to_string(),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                anyhow!(
                    "--api-token-file {}: cannot read it ({e}); check the path and that this user may read it",
                    path.display()
                )
            })?;
            text.lines().next().unwrap_or("").trim().to_string()
        }
        (None, None) => return Ok(None),
    };
    if token.is_empty() {
        bail!(
            "the API token from {source} is empty: give a long random string, e.g. from `openssl rand -hex 32`, or \
             leave --api-token out to run without authentication"
        );
    }
    Ok(Some(Secret(token)))
}

/// `path` taken relative to `base` (the config file's directory) unless absolute.
pub(crate) fn relative_to(base: &Path, path: &Option<PathBuf>) -> Option<PathBuf> {
    path.as_ref().map(|p| base.join(p))
}

/// The startup line about authentication: `guarded` names the routes a token guards, `env` the variable of
/// --api-token-file.
pub(crate) fn auth_line(token: bool, guarded: &str, env: &str) -> String {
    if token {
        format!("auth   bearer token required on {guarded} (the UI asks for it; /api/health stays open)")
    } else {
        format!(
            "auth   none: the API is unauthenticated, anyone who reaches it can read and change device keys \
             (set --api-token-file or {env})"
        )
    }
}

/// Prints one line on stdout at once (scripts and tests wait for them).
pub(crate) fn say(line: impl AsRef<str>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.as_ref());
    let _ = out.flush();
}

/// Completes on Ctrl-C or (on Unix) SIGTERM.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Completes when the command stops its HTTP server.
pub(crate) type Stopped = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The HTTP server of a command, running in its own task (or off).
pub(crate) struct HttpTask {
    task: Option<JoinHandle<io::Result<()>>>,
    stop: Option<oneshot::Sender<()>>,
}

impl HttpTask {
    /// No HTTP server (`--http-addr off`).
    pub(crate) fn off() -> HttpTask {
        HttpTask { task: None, stop: None }
    }

    /// Spawns `serve`, which serves until the [`Stopped`] future it is given completes.
    pub(crate) fn spawn<F, Fut>(serve: F) -> HttpTask
    where
        F: FnOnce(Stopped) -> Fut,
        Fut: Future<Output = io::Result<()>> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(Box::pin(async move {
            let _ = stopped.await;
        })));
        HttpTask {
            task: Some(task),
            stop: Some(stop),
        }
    }

    /// Waits for Ctrl-C or SIGTERM (`Ok`), or for the HTTP server to end by itself, which is an error.
    pub(crate) async fn until_shutdown(&mut self) -> Result<()> {
        let ended = tokio::select! {
            () = shutdown_signal() => return Ok(()),
            r = async {
                match self.task.as_mut() {
                    Some(h) => h.await,
                    None => std::future::pending().await,
                }
            } => r,
        };
        self.task = None;
        Err(match ended {
            Ok(Ok(())) => anyhow!("the HTTP server stopped unexpectedly"),
            Ok(Err(e)) => anyhow!("the HTTP server failed: {e}"),
            Err(e) => anyhow!("the HTTP server task failed: {e}"),
        })
    }

    /// Stops the HTTP server: its event streams end, requests in flight get up to 5 s to finish.
    pub(crate) async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.task.take() {
            match tokio::time::timeout(Duration::from_secs(5), h).await {
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP server error while stopping"),
                Err(_) => tracing::warn!("HTTP requests still running after 5 s; stopping anyway"),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_from_flags_and_files() {
        assert_eq!(api_token(None, None, "x").unwrap(), None);
        assert_eq!(api_token(Some(" abc "), None, "x").unwrap(), Some(Secret("abc".into())));
        let dir = std::env::temp_dir().join(format!("lwm2m-cli-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("token");
        std::fs::write(&f, "  s3cret \nsecond line\n").unwrap();
        assert_eq!(api_token(None, Some(&f), "x").unwrap(), Some(Secret("s3cret".into())));
        let e = format!("{:#}", api_token(Some("a"), Some(&f), "the command line").unwrap_err());
        assert!(e.contains("both given in the command line"), "{e}");
        std::fs::write(&f, "\n").unwrap();
        let e = format!("{:#}", api_token(None, Some(&f), "the config file").unwrap_err());
        assert!(
            e.contains("from the config file is empty") && e.contains("openssl rand"),
            "{e}"
        );
        let e = format!("{:#}", api_token(None, Some(&dir.join("missing")), "x").unwrap_err());
        assert!(e.contains("--api-token-file") && e.contains("missing"), "{e}");
        assert_eq!(format!("{:?}", Secret("s3cret".into())), "Secret(***)");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_stopped_http_task_ends_and_a_failed_one_is_an_error() {
        let t = HttpTask::spawn(|stopped| async move {
            stopped.await;
            Ok(())
        });
        t.stop().await;
        HttpTask::off().stop().await;
        let mut failed = HttpTask::spawn(|_| async { Err(io::Error::other("boom")) });
        let e = failed.until_shutdown().await.unwrap_err().to_string();
        assert_eq!(e, "the HTTP server failed: boom");
        let mut ended = HttpTask::spawn(|_| async { Ok(()) });
        let e = ended.until_shutdown().await.unwrap_err().to_string();
        assert_eq!(e, "the HTTP server stopped unexpectedly");
    }
}
