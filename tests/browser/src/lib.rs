//! Harness of the browser tests: Debian's headless chromium driven through chromedriver (W3C WebDriver, via
//! `fantoccini`), against the real server / Bootstrap-Server and their web UIs on 127.0.0.1.
//!
//! The tests skip (pass with a `SKIPPED` line) only when chromium or chromedriver is not installed and
//! `LWM2M_REQUIRE_BROWSER` is unset; `.ci/run` installs both (`apt-get install chromium chromium-driver`) and
//! sets it, so in CI a missing browser fails. `CHROMIUM` and `CHROMEDRIVER` override the binaries' paths.
//! When `LWM2M_SCREENSHOTS` names a directory, [`Browser::screenshot`] writes PNGs there (how the pictures in
//! docs/screenshots/ are made).
#![forbid(unsafe_code)]

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path as FsPath, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use lwm2m_server::security::MemorySecurityStore;
use lwm2m_server::{Event, Server, ServerConfig, ServerHandle};
use lwm2m_testkit::http::{serve, Served};
use lwm2m_testkit::scratch::Scratch;
use lwm2m_web::WebApi;
use serde_json::json;
use tokio::process::{Child, Command};
use tokio::sync::broadcast;

pub use fantoccini;

/// How long a UI condition may take before the test fails.
pub const UI_WAIT: Duration = Duration::from_secs(20);

/// A failure of the harness or of an expectation on the page.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

fn find_bin(var: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(var) {
        return Some(PathBuf::from(p));
    }
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

fn free_port() -> std::io::Result<u16> {
    Ok(StdListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A headless chromium session. Dropping it ends chromedriver (and with it the browser).
pub struct Browser {
    /// The WebDriver client.
    pub client: Client,
    driver: Child,
    _profile: Scratch,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.start_kill();
    }
}

impl Browser {
    /// Starts chromedriver and a headless chromium session, or returns `None` (after printing `SKIPPED`) when
    /// they are not installed and `LWM2M_REQUIRE_BROWSER` is unset.
    pub async fn start() -> Option<Browser> {
        let chromium = find_bin("CHROMIUM", &["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
        let driver = find_bin("CHROMEDRIVER", &["/usr/bin/chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            let hint = "install them with `apt-get install chromium chromium-driver` (done by .ci/run)";
            if std::env::var_os("LWM2M_REQUIRE_BROWSER").is_some() {
                panic!("chromium or chromedriver is missing but LWM2M_REQUIRE_BROWSER is set: {hint}");
            }
            eprintln!("SKIPPED: chromium or chromedriver is not installed; {hint}");
            return None;
        };
        Some(
            Browser::launch(&chromium, &driver)
                .await
                .unwrap_or_else(|e| panic!("starting {} via {}: {e}", chromium.display(), driver.display())),
        )
    }

    async fn launch(chromium: &FsPath, driver: &FsPath) -> Result<Browser, Error> {
        let port = free_port()?;
        let mut child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let profile = Scratch::new("browser");
        let mut caps = Capabilities::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium.to_string_lossy(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,860",
                    format!("--user-data-dir={}", profile.dir().display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        // chromedriver needs a moment to listen; its port answering is the event awaited here (bounded).
        let deadline = tokio::time::Instant::now() + UI_WAIT;
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                break;
            }
            if let Some(status) = child.try_wait()? {
                return Err(format!("chromedriver exited with {status}").into());
            }
            if tokio::time::Instant::now() > deadline {
                return Err("chromedriver did not listen within 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector).capabilities(caps).connect(&url).await?;
        Ok(Browser {
            client,
            driver: child,
            _profile: profile,
        })
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) -> Result<(), Error> {
        self.client.goto(url).await?;
        Ok(())
    }

    /// Waits until an element matching `css` exists, and returns it.
    pub async fn find(&self, css: &str) -> Result<Element, Error> {
        Ok(self
            .client
            .wait()
            .at_most(UI_WAIT)
            .for_element(Locator::Css(css))
            .await
            .map_err(|e| format!("no element `{css}` within {UI_WAIT:?}: {e}"))?)
    }

    /// Waits until the text of the first element matching `css` contains `text`; returns the whole text.
    pub async fn wait_text(&self, css: &str, text: &str) -> Result<String, Error> {
        self.wait_text_where(css, |t| t.contains(text))
            .await
            .map_err(|e| format!("`{css}` never contained {text:?}: {e}").into())
    }

    /// Waits until the text of the first element matching `css` satisfies `pred`; returns the text.
    pub async fn wait_text_where(&self, css: &str, pred: impl Fn(&str) -> bool) -> Result<String, Error> {
        let deadline = tokio::time::Instant::now() + UI_WAIT;
        let mut last = String::new();
        loop {
            // WebDriver has no push notification of DOM changes: poll the page (bounded).
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                if let Ok(t) = el.text().await {
                    if pred(&t) {
                        return Ok(t);
                    }
                    last = t;
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("timed out after {UI_WAIT:?}; last text: {last:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the element matching `css` (waiting for it).
    pub async fn click(&self, css: &str) -> Result<(), Error> {
        self.find(css).await?.click().await?;
        Ok(())
    }

    /// Clicks the element matching `css` once it exists and accepts the click, retrying (within [`UI_WAIT`])
    /// when the page re-renders it between lookup and click (stale element) or it is not clickable yet.
    pub async fn press(&self, css: &str) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + UI_WAIT;
        loop {
            let attempt = async {
                let el = self.client.find(Locator::Css(css)).await?;
                el.click().await?;
                Ok::<(), fantoccini::error::CmdError>(())
            };
            let e = match attempt.await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if tokio::time::Instant::now() > deadline {
                return Err(format!("could not click `{css}` within {UI_WAIT:?}: {e}").into());
            }
            // The page re-renders asynchronously; poll again shortly (bounded by the deadline).
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until no element matches `css`.
    pub async fn wait_gone(&self, css: &str) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + UI_WAIT;
        loop {
            match self.client.find_all(Locator::Css(css)).await {
                Ok(v) if v.is_empty() => return Ok(()),
                _ => {}
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("`{css}` was still there after {UI_WAIT:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text of every element matching `css` (now, without waiting).
    pub async fn texts(&self, css: &str) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        for el in self.client.find_all(Locator::Css(css)).await? {
            out.push(el.text().await?);
        }
        Ok(out)
    }

    /// Replaces the value of the input matching `css` with `value`.
    pub async fn fill(&self, css: &str, value: &str) -> Result<(), Error> {
        let el = self.find(css).await?;
        el.clear().await?;
        el.send_keys(value).await?;
        Ok(())
    }

    /// Selects the option with `value` in the `<select>` matching `css`.
    pub async fn select(&self, css: &str, value: &str) -> Result<(), Error> {
        self.find(css).await?.select_by_value(value).await?;
        Ok(())
    }

    /// Writes a PNG of the page to `$LWM2M_SCREENSHOTS/{name}.png` when that variable is set (a relative directory
    /// is taken from the workspace root).
    pub async fn screenshot(&self, name: &str) -> Result<(), Error> {
        if let Some(dir) = std::env::var_os("LWM2M_SCREENSHOTS") {
            // Relative to the workspace root (cargo runs tests in the package directory).
            let dir = FsPath::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(dir);
            let png = self.client.screenshot().await?;
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join(format!("{name}.png")), png)?;
        }
        Ok(())
    }

    /// Ends the session (also done, less politely, on drop).
    pub async fn close(self) -> Result<(), Error> {
        self.client.clone().close().await?;
        Ok(())
    }
}

/// A running LwM2M server with its REST API and UI on 127.0.0.1 ephemeral ports.
pub struct TestServer {
    /// The server.
    pub server: ServerHandle,
    /// Its events.
    pub events: broadcast::Receiver<Event>,
    /// The CoAP address devices register at.
    pub coap: SocketAddr,
    /// `http://127.0.0.1:{port}`.
    pub http: String,
    /// The REST API.
    pub api: WebApi,
    /// The HTTP server; it stops when dropped.
    _web: Served,
}

impl TestServer {
    /// Starts the server (CoAP on 127.0.0.1:0) and its HTTP face.
    pub async fn start() -> Result<TestServer, Error> {
        TestServer::start_with(ServerConfig::default()).await
    }

    /// Like [`TestServer::start`] with `config` (its `security` store is replaced by a fresh
    /// `MemorySecurityStore` shared with the REST API), e.g. a short `awake_time` for queue-mode tests.
    pub async fn start_with(config: ServerConfig) -> Result<TestServer, Error> {
        TestServer::start_inner(config, None).await
    }

    /// Like [`TestServer::start`], its API requiring `token` (`WebApi::with_token`): the UI asks for it.
    pub async fn start_with_token(token: &str) -> Result<TestServer, Error> {
        TestServer::start_inner(ServerConfig::default(), Some(token.to_string())).await
    }

    async fn start_inner(config: ServerConfig, token: Option<String>) -> Result<TestServer, Error> {
        let security = Arc::new(MemorySecurityStore::new());
        let config = ServerConfig {
            security: security.clone(),
            ..config
        };
        let (server, events) = Server::bind(config, "127.0.0.1:0".parse()?).await?;
        let coap = server.local_addrs()[0];
        let api = WebApi::new(server.clone(), security).with_token(token);
        let serving = api.clone();
        let web = serve(move |l, stopped| async move { serving.serve(l, stopped).await }).await;
        Ok(TestServer {
            server,
            events,
            coap,
            http: web.base.clone(),
            api,
            _web: web,
        })
    }

    /// Waits until `endpoint` registers (fails after [`UI_WAIT`]).
    pub async fn registered(&mut self, endpoint: &str) {
        lwm2m_testkit::server::registered(&mut self.events, endpoint, UI_WAIT).await;
    }

    /// The UI's URL with `fragment` (e.g. `#/clients/dev1`).
    pub fn ui(&self, fragment: &str) -> String {
        format!("{}/ui/{fragment}", self.http)
    }
}

/// A running Bootstrap-Server (plain CoAP on 127.0.0.1:0, its configurations in a TOML file in a fresh
/// temporary directory) with its REST API and UI (`lwm2m_web::bootstrap::BootstrapApi`) on an ephemeral
/// 127.0.0.1 port.
pub struct TestBootstrap {
    /// The Bootstrap-Server.
    pub bs: lwm2m_bootstrap::BootstrapServerHandle,
    /// Its events (a `subscribe()` receiver, e.g. for `lwm2m_testkit::events::next_event`).
    pub events: broadcast::Receiver<lwm2m_bootstrap::Event>,
    /// The CoAP address devices send their Bootstrap-Request to.
    pub coap: SocketAddr,
    /// `http://127.0.0.1:{port}`.
    pub http: String,
    /// The configuration file the store rewrites after every change.
    pub file: PathBuf,
    /// The REST API.
    pub api: lwm2m_web::bootstrap::BootstrapApi,
    _primary: tokio::sync::mpsc::UnboundedReceiver<lwm2m_bootstrap::Event>,
    /// The HTTP server; it stops when dropped.
    web: Served,
    _dir: Scratch,
}

impl TestBootstrap {
    /// Starts the Bootstrap-Server on an empty configuration file and its HTTP face.
    pub async fn start() -> Result<TestBootstrap, Error> {
        TestBootstrap::start_inner(None).await
    }

    /// Like [`TestBootstrap::start`], its API requiring `token` (`BootstrapApi::with_token`).
    pub async fn start_with_token(token: &str) -> Result<TestBootstrap, Error> {
        TestBootstrap::start_inner(Some(token.to_string())).await
    }

    async fn start_inner(token: Option<String>) -> Result<TestBootstrap, Error> {
        let dir = Scratch::new("browser-bs");
        let file = dir.path("lwm2m-bootstrap.toml");
        let store = Arc::new(lwm2m_bootstrap::FileConfigStore::open(&file)?);
        let (bs, primary) = lwm2m_bootstrap::BootstrapServer::bind(
            lwm2m_bootstrap::BootstrapServerConfig::new(store),
            Some("127.0.0.1:0".parse()?),
            None,
        )
        .await?;
        let events = bs.subscribe();
        let coap = bs.local_addrs()[0];
        let api = lwm2m_web::bootstrap::BootstrapApi::new(bs.clone()).with_token(token);
        let serving = api.clone();
        let web = serve(move |l, stopped| async move { serving.serve(l, stopped).await }).await;
        Ok(TestBootstrap {
            bs,
            events,
            coap,
            http: web.base.clone(),
            file,
            api,
            _primary: primary,
            web,
            _dir: dir,
        })
    }

    /// The UI's URL with `fragment` (e.g. `#/configs/dev1`).
    pub fn ui(&self, fragment: &str) -> String {
        format!("{}/ui/{fragment}", self.http)
    }

    /// The configuration file's current text.
    pub fn file_text(&self) -> String {
        std::fs::read_to_string(&self.file).unwrap_or_default()
    }

    /// Stops the HTTP server (its SSE streams end) and the Bootstrap-Server.
    pub async fn shutdown(self) {
        let TestBootstrap { bs, web, .. } = self;
        drop(web);
        bs.shutdown().await;
    }
}
