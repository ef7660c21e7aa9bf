//! Runs the real `lwm2m bootstrap` binary on 127.0.0.1 and bootstraps the real `lwm2m client` against it: the
//! client then registers with a scripted LwM2M server. Every wait is for a line or a message (bounded by a
//! guard), never a sleep.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use lwm2m_coap::Code;
use lwm2m_testkit::peer::registrar;
use lwm2m_testkit::proc::Proc;
use lwm2m_testkit::scratch::Scratch;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

const GUARD: Duration = Duration::from_secs(30);

/// A running `lwm2m ARGS` process with its stdout and stderr as lines.
fn lwm2m(args: &[&str]) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lwm2m"));
    cmd.args(args).stdin(Stdio::piped()).stderr(Stdio::piped());
    Proc::spawn(cmd, GUARD)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstraps_the_demo_client_which_then_registers() {
    let dir = Scratch::new("bs-cli-ok");
    // A scripted LwM2M server: Register → 2.01 rd/1, anything else under rd → 2.04; every request is logged.
    let (dm, mut dm_log) = registrar("1").await;
    let config = dir.path("bs.toml");
    std::fs::write(
        &config,
        format!(
            "[[endpoints.\"dev-bs\".servers]]\nssid = 7\nuri = \"coap://{}\"\nlifetime = 300\n",
            dm.local_addr()
        ),
    )
    .unwrap();

    let mut bs = lwm2m(&[
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
    let lines = bs.lines_through("ready").await;
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

    let mut client = lwm2m(&[
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
        let (_, m) = tokio::time::timeout(GUARD, dm_log.recv())
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
    let dir = Scratch::new("bs-cli-bad");
    let base = ["--coap-addr", "127.0.0.1:0", "--coaps-addr", "off"];

    // Not TOML: the file and the line.
    let broken = dir.path("broken.toml");
    std::fs::write(&broken, "[endpoints.\"d\"\nservers = 1\n").unwrap();
    let (ok, err) = run_bootstrap(&[&base[..], &["--config", broken.to_str().unwrap()]].concat());
    assert!(!ok, "{err}");
    assert!(err.contains(broken.to_str().unwrap()), "{err}");
    assert!(err.contains("line 1"), "{err}");
    assert!(err.contains("docs/bootstrap.md"), "{err}");

    // Valid TOML, invalid configuration: the file, the endpoint and the field.
    let invalid = dir.path("invalid.toml");
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
    let fresh = dir.path("fresh.toml");
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
}
