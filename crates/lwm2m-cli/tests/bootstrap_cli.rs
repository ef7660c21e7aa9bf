//! Runs the real `lwm2m bootstrap` binary on 127.0.0.1 and bootstraps the real `lwm2m client` against it: the
//! client then registers with a scripted LwM2M server. Every wait is for a line or a message (bounded by a
//! guard), never a sleep.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use lwm2m_coap::transport::udp::{Incoming, UdpEndpoint, UdpHandle};
use lwm2m_coap::{Code, EndpointConfig, Message};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use tokio::sync::mpsc;

const GUARD: Duration = Duration::from_secs(30);

/// A scripted LwM2M server: Register → 2.01 rd/1, anything else under rd → 2.04; every request is logged.
async fn lwm2m_server() -> (UdpHandle, mpsc::UnboundedReceiver<Message>) {
    let (handle, mut incoming) = UdpEndpoint::bind("127.0.0.1:0".parse().unwrap(), EndpointConfig::default())
        .await
        .unwrap();
    let (tx, log) = mpsc::unbounded_channel();
    let h = handle.clone();
    tokio::spawn(async move {
        while let Some(item) = incoming.recv().await {
            let Incoming::Request(r) = item else { continue };
            let path = r.request.uri_path();
            let p: Vec<&str> = path.iter().map(String::as_str).collect();
            let resp = match (r.request.code, p.as_slice()) {
                (Code::POST, ["rd"]) => {
                    let mut m = Message::response_to(&r.request, Code::CREATED);
                    m.set_location_path("rd/1");
                    m
                }
                (Code::POST, ["rd", "1"] | ["dp"]) => Message::response_to(&r.request, Code::CHANGED),
                (Code::DELETE, ["rd", "1"]) => Message::response_to(&r.request, Code::DELETED),
                _ => Message::response_to(&r.request, Code::NOT_FOUND),
            };
            let _ = h.respond(r.responder, resp);
            let _ = tx.send(r.request);
        }
    });
    (handle, log)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lwm2m-bs-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running `lwm2m` process with its stdout and stderr as lines.
struct Proc {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Lines<BufReader<ChildStderr>>,
}

impl Proc {
    fn start(args: &[&str]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lwm2m"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the lwm2m binary starts");
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        Proc { child, stdout, stderr }
    }

    /// Stdout lines up to and including the one starting with `prefix`.
    async fn stdout_until(&mut self, prefix: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let l = tokio::time::timeout(GUARD, self.stdout.next_line())
                .await
                .expect("no output in time")
                .unwrap()
                .unwrap_or_else(|| panic!("stdout closed before {prefix:?}: {lines:?}"));
            let done = l.starts_with(prefix);
            lines.push(l);
            if done {
                return lines;
            }
        }
    }

    /// Reads stderr until a line contains every one of `parts`; returns it.
    async fn stderr_until(&mut self, parts: &[&str]) -> String {
        loop {
            let l = tokio::time::timeout(GUARD, self.stderr.next_line())
                .await
                .expect("no log line in time")
                .unwrap()
                .unwrap_or_else(|| panic!("stderr closed before a line with {parts:?}"));
            if parts.iter().all(|p| l.contains(p)) {
                return l;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstraps_the_demo_client_which_then_registers() {
    let dir = temp_dir("ok");
    let (dm, mut dm_log) = lwm2m_server().await;
    let config = dir.join("bs.toml");
    std::fs::write(
        &config,
        format!(
            "[[endpoints.\"dev-bs\".servers]]\nssid = 7\nuri = \"coap://{}\"\nlifetime = 300\n",
            dm.local_addr()
        ),
    )
    .unwrap();

    let mut bs = Proc::start(&[
        "bootstrap",
        "--config",
        config.to_str().unwrap(),
        "--coap-addr",
        "127.0.0.1:0",
        "--coaps-addr",
        "off",
        "--http-addr",
        "127.0.0.1:0",
    ]);
    let lines = bs.stdout_until("ready").await;
    let bs_addr: SocketAddr = lines
        .iter()
        .find_map(|l| l.trim_start().strip_prefix("CoAP "))
        .and_then(|rest| rest.trim().strip_prefix("coap://"))
        .expect("a CoAP line")
        .parse()
        .expect("CoAP address");
    assert!(lines.iter().any(|l| l.contains("CoAPS  off")), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("(1 endpoint configuration)")),
        "{lines:?}"
    );

    let mut client = Proc::start(&[
        "client",
        "--server",
        &format!("coap://{bs_addr}"),
        "--endpoint",
        "dev-bs",
        "--bootstrap",
        "--sensor-interval",
        "0",
        "--log",
        "warn",
    ]);

    // The Bootstrap-Server logs the session at info level.
    bs.stderr_until(&["bootstrap session started", "dev-bs"]).await;
    bs.stderr_until(&["bootstrap operation", "Bootstrap-Write", "code=2.04"])
        .await;
    bs.stderr_until(&["bootstrap session finished", "dev-bs"]).await;

    // The client registers with the account it was given.
    let reg = loop {
        let m = tokio::time::timeout(GUARD, dm_log.recv())
            .await
            .expect("no Register in time")
            .unwrap();
        if m.code == Code::POST && m.uri_path_string() == "/rd" {
            break m;
        }
    };
    let q = reg.uri_query();
    assert!(q.contains(&"ep=dev-bs".to_string()), "{q:?}");
    assert!(q.contains(&"lt=300".to_string()), "{q:?}");

    // Both stop: the client is killed, the Bootstrap-Server gets Ctrl-C (SIGINT) and stops cleanly.
    client.child.kill().await.unwrap();
    let pid = bs.child.id().expect("running").to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let mut rest = String::new();
    tokio::time::timeout(GUARD, bs.stdout.into_inner().read_to_string(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(rest.contains("stopped"), "{rest}");
    let status = tokio::time::timeout(GUARD, bs.child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn run_bootstrap(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lwm2m"))
        .arg("bootstrap")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_config_files_and_busy_ports_name_the_cause() {
    let dir = temp_dir("bad");
    let base = ["--coap-addr", "127.0.0.1:0", "--coaps-addr", "off"];

    // Not TOML: the file and the line.
    let broken = dir.join("broken.toml");
    std::fs::write(&broken, "[endpoints.\"d\"\nservers = 1\n").unwrap();
    let (ok, err) = run_bootstrap(&[&base[..], &["--config", broken.to_str().unwrap()]].concat());
    assert!(!ok, "{err}");
    assert!(err.contains(broken.to_str().unwrap()), "{err}");
    assert!(err.contains("line 1"), "{err}");
    assert!(err.contains("docs/bootstrap.md"), "{err}");

    // Valid TOML, invalid configuration: the file, the endpoint and the field.
    let invalid = dir.join("invalid.toml");
    std::fs::write(
        &invalid,
        "[[endpoints.\"dev-x\".servers]]\nssid = 1\nuri = \"coap://h\"\ncolour = 3\n",
    )
    .unwrap();
    let (ok, err) = run_bootstrap(&[&base[..], &["--config", invalid.to_str().unwrap()]].concat());
    assert!(!ok, "{err}");
    assert!(
        err.contains(invalid.to_str().unwrap()) && err.contains("colour"),
        "{err}"
    );

    // A busy port names the flag to change; the missing config file is created empty first.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let busy = udp.local_addr().unwrap().to_string();
    let fresh = dir.join("fresh.toml");
    let (ok, err) = run_bootstrap(&[
        "--config",
        fresh.to_str().unwrap(),
        "--coap-addr",
        &busy,
        "--coaps-addr",
        "off",
    ]);
    assert!(!ok, "{err}");
    assert!(err.contains("in use") && err.contains("--coap-addr"), "{err}");
    assert!(fresh.is_file(), "the config file is created");
    let _ = std::fs::remove_dir_all(&dir);
}
