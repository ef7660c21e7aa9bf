//! `lwm2m bench` against the real `lwm2m server` binary on 127.0.0.1 ephemeral ports: 200 simulated devices
//! register, update once and de-register (counted in the JSON summary, checked through the REST API); during
//! a `--duration-s` hold the devices are listed by `GET /api/clients` and answer reads made through the REST
//! API, and Ctrl-C ends the hold with every device de-registered. Against a port where nothing listens the
//! bench exits non-zero and says why. Every wait is for a line, an answer or the end of a process (bounded by
//! a guard), never a sleep.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use hyper::Method;
use lwm2m_testkit::http::{call, client, Http};
use lwm2m_testkit::proc::{http_base, run, startup_word, Proc};
use lwm2m_testkit::scratch::Scratch;
use serde_json::{json, Value as Json};
use tokio::process::Command;

const GUARD: Duration = Duration::from_secs(60);

/// Starts `lwm2m server` on ephemeral ports; returns it with its CoAP URI and HTTP base URL.
async fn start_server(data: &Path) -> (Proc, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lwm2m"));
    cmd.arg("server")
        .args(["--coap-addr", "127.0.0.1:0", "--coaps-addr", "off"])
        .args(["--http-addr", "127.0.0.1:0", "--log", "warn"])
        .arg("--data-dir")
        .arg(data)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    let mut srv = Proc::spawn(cmd, GUARD);
    let lines = srv.lines_before("ready").await;
    let coap = startup_word(&lines, "CoAP");
    assert!(coap.starts_with("coap://127.0.0.1:"), "{lines:?}");
    (srv, coap, http_base(&lines))
}

fn bench(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lwm2m"));
    cmd.arg("bench").args(args).stdin(Stdio::null()).kill_on_drop(true);
    cmd
}

async fn get(http: &Http, url: &str) -> Json {
    let (status, body) = call(http, Method::GET, url, "", GUARD).await;
    assert_eq!(status, 200, "GET {url}: {body}");
    body
}

/// The endpoints the server lists under `prefix`.
async fn listed(http: &Http, base: &str, prefix: &str) -> BTreeSet<String> {
    let list = get(http, &format!("{base}/api/clients?q={prefix}")).await;
    let names: BTreeSet<String> = list["clients"]
        .as_array()
        .expect("a client list")
        .iter()
        .map(|c| c["endpoint"].as_str().expect("an endpoint").to_string())
        .collect();
    assert_eq!(list["total"], json!(names.len()), "{list}");
    names
}

fn expected(prefix: &str, n: usize) -> BTreeSet<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// Asserts `phase` of the summary: `n` ok, nothing failed or skipped, a rate and latencies.
fn assert_phase(summary: &Json, phase: &str, n: u64) {
    let p = &summary[phase];
    assert_eq!(
        (&p["attempted"], &p["ok"], &p["failed"], &p["skipped"]),
        (&json!(n), &json!(n), &json!(0), &json!(0)),
        "{phase}: {summary:#}"
    );
    assert!(p["per_second"].as_f64().unwrap_or(0.0) > 0.0, "{phase}: {summary:#}");
    let lat = &p["latency_ms"];
    let (p50, p99, max) = (lat["p50"].as_f64(), lat["p99"].as_f64(), lat["max"].as_f64());
    assert!(
        matches!((p50, p99, max), (Some(a), Some(b), Some(c)) if 0.0 < a && a <= b && b <= c),
        "{phase}: {summary:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_registers_updates_and_deregisters_200_devices() {
    let dir = Scratch::new("bench-cli");
    let (_srv, coap, base) = start_server(&dir.path("data")).await;
    let http = client();

    let out = run(
        bench(&[
            "--server",
            &coap,
            "--devices",
            "200",
            "--updates",
            "1",
            "--ack-timeout-ms",
            "250",
            "--json",
        ]),
        GUARD,
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    let summary: Json = serde_json::from_slice(&out.stdout).expect("the summary is JSON");
    assert_eq!((&summary["devices"], &summary["server"]), (&json!(200), &json!(coap)));
    assert!(summary["cores"].as_u64().unwrap_or(0) >= 1, "{summary:#}");
    assert_eq!(summary["sockets"], json!(200), "one socket per device");
    assert_phase(&summary, "register", 200);
    assert_phase(&summary, "update", 200);
    assert_phase(&summary, "deregister", 200);
    assert_eq!(
        (&summary["problems"], &summary["interrupted"]),
        (&json!([]), &json!(false))
    );
    // Progress went to stderr, one final line per phase (not a terminal: no carriage returns).
    for line in [
        "register: 200/200 ok, 0 failed",
        "update: 200/200 ok",
        "deregister: 200/200 ok",
    ] {
        assert!(stderr.contains(line), "{line}: {stderr}");
    }
    assert!(!stderr.contains('\r'), "{stderr}");
    // De-registered: the server lists none of them any more.
    assert_eq!(listed(&http, &base, "bench-").await, BTreeSet::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_devices_are_registered_and_answer_reads_during_the_hold() {
    let dir = Scratch::new("bench-cli-hold");
    let (_srv, coap, base) = start_server(&dir.path("data")).await;
    let http = client();

    let mut cmd = bench(&[
        "--server",
        &coap,
        "--devices",
        "200",
        "--sockets",
        "4",
        "--endpoint-prefix",
        "hold-",
        "--ack-timeout-ms",
        "250",
        "--duration-s",
        "600",
        "--json",
    ]);
    cmd.stderr(Stdio::piped());
    let mut b = Proc::spawn(cmd, GUARD);
    let holding = b.stderr_until(&["holding 200 registered devices"]).await;
    assert!(holding.contains("for 600 s"), "{holding}");

    // Really registered: the server lists all 200, and reads through its REST API reach the devices.
    assert_eq!(listed(&http, &base, "hold-").await, expected("hold-", 200));
    let r = get(&http, &format!("{base}/api/clients/hold-7/3/0/0")).await;
    assert_eq!(r["values"], json!({"/3/0/0": "lwm2m-rs"}), "{r}");
    let r = get(&http, &format!("{base}/api/clients/hold-199/3303/0/5700")).await;
    assert_eq!(r["values"], json!({"/3303/0/5700": 21.5}), "{r}");
    let r = get(&http, &format!("{base}/api/clients/hold-0/3303/0")).await;
    assert_eq!(r["format"], json!("tlv"), "{r}");

    // Ctrl-C ends the hold; the devices de-register and the run still succeeds.
    let pid = b.child.id().expect("the bench runs");
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let mut stdout = String::new();
    while let Some(line) = b.next_line().await {
        stdout.push_str(&line);
        stdout.push('\n');
    }
    let status = tokio::time::timeout(GUARD, b.child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status}: {stdout}");
    let summary: Json = serde_json::from_str(&stdout).expect("the summary is JSON");
    assert_eq!(summary["sockets"], json!(4));
    assert_phase(&summary, "register", 200);
    assert_phase(&summary, "deregister", 200);
    assert_eq!(summary["update"], Json::Null, "no --updates");
    let hold = &summary["hold"];
    assert_eq!(
        (&hold["ended_early"], &hold["devices"]),
        (&json!(true), &json!(200)),
        "{summary:#}"
    );
    assert!(hold["requests_answered"].as_u64().unwrap_or(0) >= 3, "{summary:#}");
    assert_eq!(summary["problems"], json!([]));
    assert_eq!(listed(&http, &base, "hold-").await, BTreeSet::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_without_a_server_fails_and_says_why() {
    // A port that was free a moment ago: nothing answers there.
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let server = format!("coap://127.0.0.1:{port}");
    let out = run(
        bench(&[
            "--server",
            &server,
            "--devices",
            "3",
            "--ack-timeout-ms",
            "100",
            "--max-retransmit",
            "1",
        ]),
        GUARD,
    )
    .await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    assert!(
        error.contains(&format!(
            "no answer from {server} ({addr}): is the server running? check --server"
        )),
        "{error}"
    );
    assert!(stdout.contains("register failures: 3 timeout"), "{stdout}");
    assert!(stdout.contains("result: FAILED: no answer from"), "{stdout}");
}
