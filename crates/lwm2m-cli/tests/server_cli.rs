//! Runs the real `lwm2m server` binary on ephemeral ports of 127.0.0.1, registers a simulated device (the client
//! runtime in this process) and drives it through the REST API. Every wait is for a line, an event or an HTTP
//! answer (bounded by a guard), never a sleep.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use hyper::Method;
use lwm2m_client::dm::{FactoryConfig, ServerConfig};
use lwm2m_client::runtime::{Client, ClientConfig, ClientEvent};
use lwm2m_testkit::events::next_map;
use lwm2m_testkit::http::{try_call, Http};
use lwm2m_testkit::proc::{command, http_base, run, Proc};
use lwm2m_testkit::scratch::Scratch;
use serde_json::Value as Json;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

const GUARD: Duration = Duration::from_secs(30);

/// `lwm2m server ARGS` with `env` added, running, its stdout read line by line (stderr inherited).
fn start(args: &[&str], env: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lwm2m"));
    cmd.arg("server")
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    cmd.envs(env.iter().copied());
    Proc::spawn(cmd, GUARD)
}

/// Runs `lwm2m server ARGS` with `env` added, which must fail (within [`GUARD`]); its stderr.
async fn fails(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = command(Path::new(env!("CARGO_BIN_EXE_lwm2m")));
    cmd.arg("server").args(args).envs(env.iter().copied());
    let out = run(cmd, GUARD).await;
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn get(client: &Http, url: &str) -> Result<(u16, Json), String> {
    get_as(client, url, None).await
}

/// GET with `Authorization: Bearer {token}` when a token is given.
async fn get_as(client: &Http, url: &str, token: Option<&str>) -> Result<(u16, Json), String> {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer.iter().map(|b| ("authorization", b.as_str())).collect();
    try_call(client, Method::GET, url, &headers, "", GUARD).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_binary_serves_the_api() {
    let dir = Scratch::new("server-cli");
    let data = dir.path("data");
    // One option from each source: flags (CoAP), environment (data dir), config file (HTTP, CoAPS off).
    let config = dir.path("server.toml");
    std::fs::write(
        &config,
        "http_addr = \"127.0.0.1:0\"\ncoaps_addr = \"off\"\nlog = \"warn\"\n",
    )
    .unwrap();
    let mut srv = start(
        &["--coap-addr", "127.0.0.1:0", "--config", config.to_str().unwrap()],
        &[("LWM2M_DATA_DIR", data.to_str().unwrap())],
    );
    let lines = srv.lines_before("ready").await;
    let base = http_base(&lines);
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
    let client = lwm2m_testkit::http::client();
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
    next_map(&mut events, GUARD, |e| match e {
        ClientEvent::Registered { .. } => Some(()),
        ClientEvent::RegistrationFailed { .. } => panic!("registration failed"),
        _ => None,
    })
    .await;

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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_ports_name_the_flag_to_change() {
    let dir = Scratch::new("server-busy");
    let data = dir.path("data");
    let data = data.to_str().unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let busy = udp.local_addr().unwrap().to_string();
    let args = [
        "--coap-addr",
        &busy,
        "--coaps-addr",
        "off",
        "--http-addr",
        "off",
        "--data-dir",
        data,
    ];
    let err = fails(&args, &[]).await;
    assert!(err.contains("is in use") && err.contains("pass --coap-addr"), "{err}");

    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = tcp.local_addr().unwrap().to_string();
    let args = ["--coap-addr", "127.0.0.1:0", "--coaps-addr", "off", "--data-dir", data];
    let err = fails(&args, &[("LWM2M_HTTP_ADDR", &busy)]).await;
    assert!(err.contains("HTTP port") && err.contains("pass --http-addr"), "{err}");
}

/// `--api-token-file`: the API answers 401 without the token and 200 with it; health stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_token_file_protects_the_api() {
    let dir = Scratch::new("server-token");
    let token_file = dir.write("api-token", b"0123456789abcdef-cli-token\n");
    let data = dir.path("data");
    let mut srv = start(
        &[
            "--coap-addr",
            "127.0.0.1:0",
            "--coaps-addr",
            "off",
            "--http-addr",
            "127.0.0.1:0",
            "--api-token-file",
            &token_file,
        ],
        &[("LWM2M_DATA_DIR", data.to_str().unwrap()), ("LWM2M_LOG", "warn")],
    );
    let lines = srv.lines_before("ready").await;
    assert!(lines.iter().any(|l| l.contains("bearer token required")), "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.contains("cli-token")),
        "the token is not printed: {lines:?}"
    );
    let base = http_base(&lines);
    let client = lwm2m_testkit::http::client();
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
}
