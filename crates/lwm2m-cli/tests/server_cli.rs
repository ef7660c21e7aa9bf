//! Runs the real `lwm2m server` binary on ephemeral ports of 127.0.0.1, registers a simulated device (the client
//! runtime in this process) and drives it through the REST API. Every wait is for a line, an event or an HTTP
//! answer (bounded by a guard), never a sleep.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use lwm2m_client::dm::{FactoryConfig, ServerConfig};
use lwm2m_client::runtime::{Client, ClientConfig, ClientEvent};
use serde_json::Value as Json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const GUARD: Duration = Duration::from_secs(30);

struct Running {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Running {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Running {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lwm2m"));
        cmd.arg("server")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the lwm2m binary starts");
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Running { child, stdout }
    }

    async fn line(&mut self) -> String {
        tokio::time::timeout(GUARD, self.stdout.next_line())
            .await
            .expect("no output in time")
            .unwrap()
            .expect("stdout closed")
    }

    /// Lines up to `ready`; returns them.
    async fn until_ready(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let l = self.line().await;
            if l.starts_with("ready") {
                return lines;
            }
            lines.push(l);
        }
    }
}

fn http() -> HttpClient<HttpConnector, Full<Bytes>> {
    HttpClient::builder(TokioExecutor::new()).build_http()
}

async fn get(client: &HttpClient<HttpConnector, Full<Bytes>>, url: &str) -> Result<(u16, Json), String> {
    get_as(client, url, None).await
}

/// GET with `Authorization: Bearer {token}` when a token is given.
async fn get_as(
    client: &HttpClient<HttpConnector, Full<Bytes>>,
    url: &str,
    token: Option<&str>,
) -> Result<(u16, Json), String> {
    let mut req = Request::builder().method(Method::GET).uri(url);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req.body(Full::new(Bytes::new())).unwrap();
    let resp = tokio::time::timeout(GUARD, client.request(req))
        .await
        .map_err(|_| "no answer in time".to_string())?
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, serde_json::from_slice(&body).map_err(|e| e.to_string())?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_binary_serves_the_api() {
    let dir = std::env::temp_dir().join(format!("lwm2m-server-cli-{}", std::process::id()));
    let data = dir.join("data");
    std::fs::create_dir_all(&dir).unwrap();
    // One option from each source: flags (CoAP), environment (data dir), config file (HTTP, CoAPS off).
    let config = dir.join("server.toml");
    std::fs::write(
        &config,
        "http_addr = \"127.0.0.1:0\"\ncoaps_addr = \"off\"\nlog = \"warn\"\n",
    )
    .unwrap();
    let mut srv = Running::start(
        &["--coap-addr", "127.0.0.1:0", "--config", config.to_str().unwrap()],
        &[("LWM2M_DATA_DIR", data.to_str().unwrap())],
    );
    let lines = srv.until_ready().await;
    let http_line = lines
        .iter()
        .find(|l| l.trim_start().starts_with("HTTP"))
        .expect("HTTP line");
    let base = http_line
        .split_whitespace()
        .nth(1)
        .and_then(|u| u.strip_suffix("/api"))
        .expect("http://ADDR/api")
        .to_string();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("registrations and 0 credentials loaded; persistent")),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("CoAPS")), "CoAPS is off: {lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("the API is unauthenticated")),
        "no token: {lines:?}"
    );
    assert!(data.is_dir(), "the data directory is created");

    // Bounded poll of /api/health (the listener is bound before "ready" is printed, so this is immediate).
    let client = http();
    let mut health = None;
    for _ in 0..100 {
        if let Ok((200, h)) = get(&client, &format!("{base}/api/health")).await {
            health = Some(h);
            break;
        }
        tokio::task::yield_now().await;
    }
    let health = health.expect("/api/health answers");
    let coap: SocketAddr = health["coap"][0].as_str().unwrap().parse().unwrap();

    // A device registers over CoAP.
    let dm = FactoryConfig {
        servers: vec![ServerConfig::new(1, format!("coap://{coap}"), 300)],
        temperature: Some(vec![(0, 19.5)]),
        ..FactoryConfig::default()
    }
    .build()
    .unwrap();
    let (device, mut events) = Client::start(dm, ClientConfig::new("cli-dev")).unwrap();
    tokio::time::timeout(GUARD, async {
        loop {
            match events.recv().await.expect("client events") {
                ClientEvent::Registered { .. } => break,
                ClientEvent::RegistrationFailed { .. } => panic!("registration failed"),
                _ => {}
            }
        }
    })
    .await
    .expect("the device registers in time");

    let (s, list) = get(&client, &format!("{base}/api/clients")).await.unwrap();
    assert_eq!((s, &list["clients"][0]["endpoint"]), (200, &Json::from("cli-dev")));
    let (s, r) = get(&client, &format!("{base}/api/clients/cli-dev/3303/0/5700"))
        .await
        .unwrap();
    assert_eq!((s, &r["values"]["/3303/0/5700"]), (200, &Json::from(19.5)), "{r}");
    let (s, r) = get(&client, &format!("{base}/api/clients/cli-dev/3/0")).await.unwrap();
    assert_eq!(s, 200, "{r}");
    assert!(r["values"]["/3/0/0"].is_string(), "{r}");
    device.shutdown().await;

    // Ctrl-C (SIGINT) stops it cleanly.
    let pid = srv.child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut rest = String::new();
    let mut out = srv.stdout.into_inner();
    tokio::time::timeout(GUARD, out.read_to_string(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(rest.contains("stopped"), "{rest}");
    let status = tokio::time::timeout(GUARD, srv.child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_ports_name_the_flag_to_change() {
    let dir = std::env::temp_dir().join(format!("lwm2m-server-busy-{}", std::process::id()));
    let data = dir.join("data");
    let data = data.to_str().unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let busy = udp.local_addr().unwrap().to_string();
    let out = tokio::time::timeout(
        GUARD,
        Command::new(env!("CARGO_BIN_EXE_lwm2m"))
            .args([
                "server",
                "--coap-addr",
                &busy,
                "--coaps-addr",
                "off",
                "--http-addr",
                "off",
            ])
            .args(["--data-dir", data])
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is in use") && err.contains("pass --coap-addr"), "{err}");

    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = tcp.local_addr().unwrap().to_string();
    let out = tokio::time::timeout(
        GUARD,
        Command::new(env!("CARGO_BIN_EXE_lwm2m"))
            .args(["server", "--coap-addr", "127.0.0.1:0", "--coaps-addr", "off"])
            .args(["--data-dir", data])
            .env("LWM2M_HTTP_ADDR", &busy)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HTTP port") && err.contains("pass --http-addr"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--api-token-file`: the API answers 401 without the token and 200 with it; health stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_token_file_protects_the_api() {
    let dir = std::env::temp_dir().join(format!("lwm2m-server-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("api-token");
    std::fs::write(&token_file, "0123456789abcdef-cli-token\n").unwrap();
    let data = dir.join("data");
    let mut srv = Running::start(
        &[
            "--coap-addr",
            "127.0.0.1:0",
            "--coaps-addr",
            "off",
            "--http-addr",
            "127.0.0.1:0",
            "--api-token-file",
            token_file.to_str().unwrap(),
        ],
        &[("LWM2M_DATA_DIR", data.to_str().unwrap()), ("LWM2M_LOG", "warn")],
    );
    let lines = srv.until_ready().await;
    assert!(lines.iter().any(|l| l.contains("bearer token required")), "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.contains("cli-token")),
        "the token is not printed: {lines:?}"
    );
    let base = lines
        .iter()
        .find_map(|l| l.trim_start().strip_prefix("HTTP"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|u| u.strip_suffix("/api"))
        .expect("http://ADDR/api")
        .to_string();
    let client = http();
    let (s, j) = get(&client, &format!("{base}/api/clients")).await.unwrap();
    assert_eq!((s, j["error"].as_str()), (401, Some("unauthorized")), "{j}");
    assert!(j["reason"].as_str().unwrap().contains("--api-token"), "{j}");
    let (s, _) = get_as(&client, &format!("{base}/api/clients"), Some("wrong"))
        .await
        .unwrap();
    assert_eq!(s, 401);
    let (s, j) = get_as(
        &client,
        &format!("{base}/api/clients"),
        Some("0123456789abcdef-cli-token"),
    )
    .await
    .unwrap();
    assert_eq!((s, j["total"].as_u64()), (200, Some(0)), "{j}");
    let (s, health) = get(&client, &format!("{base}/api/health")).await.unwrap();
    assert_eq!((s, health["auth"].as_bool()), (200, Some(true)));
    drop(srv);
    let _ = std::fs::remove_dir_all(&dir);
}
