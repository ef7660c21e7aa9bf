//! The real `lwm2m server` binary with its own certificate (X.509 mode) and raw public key (RPK mode), and real
//! `lwm2m client` devices connecting to it over CoAPS on 127.0.0.1. The PKI (EC P-256) is made here with the
//! openssl crate (through `lwm2m_testkit::pki`) and written as PEM files. Every wait is for an output line or an
//! HTTP answer (bounded by a guard), never a sleep.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use hyper::Method;
use lwm2m_testkit::http::Http;
use lwm2m_testkit::pki::{cert, key, San};
use lwm2m_testkit::proc::{http_base, startup_line, Proc};
use lwm2m_testkit::scratch::Scratch;
use serde_json::Value as Json;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

const GUARD: Duration = Duration::from_secs(30);
/// The subjectAltName of the server's certificate.
const LOOPBACK: Option<San> = Some(San::Ip("127.0.0.1"));

// ---------------------------------------------------------------------------------------------- processes

/// `lwm2m ARGS` in `cwd`, with stdin piped; stderr is piped when `capture_stderr`, else inherited.
fn lwm2m(args: &[&str], cwd: &Path, capture_stderr: bool) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lwm2m"));
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stderr(if capture_stderr {
            Stdio::piped()
        } else {
            Stdio::inherit()
        });
    Proc::spawn(cmd, GUARD)
}

/// `lwm2m client --server URI --endpoint ENDPOINT CREDENTIALS... --sensor-interval 0 --log warn` in `cwd` (stdin
/// piped, stderr inherited).
fn device(cwd: &Path, uri: &str, endpoint: &str, credentials: &[&str]) -> Proc {
    let mut args = vec!["client", "--server", uri, "--endpoint", endpoint];
    args.extend_from_slice(credentials);
    args.extend(["--sensor-interval", "0", "--log", "warn"]);
    lwm2m(&args, cwd, false)
}

/// The server's startup lines up to `ready`, or `Err(stderr)` if it exited first.
async fn until_ready(p: &mut Proc) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    loop {
        match p.next_line().await {
            Some(l) if l.starts_with("ready") => return Ok(lines),
            Some(l) => lines.push(l),
            None => {
                let mut err = String::new();
                if let Some(e) = p.stderr.take() {
                    let _ = tokio::time::timeout(GUARD, e.into_inner().read_to_string(&mut err)).await;
                }
                let status = tokio::time::timeout(GUARD, p.child.wait()).await.unwrap().unwrap();
                assert!(!status.success(), "stdout closed but the server exited successfully");
                return Err(err);
            }
        }
    }
}

/// The addresses of the startup lines: the CoAPS socket (`host:port`), the HTTP base URL and the CoAPS line.
fn addresses(lines: &[String]) -> (String, String, String) {
    let coaps_line = startup_line(lines, "CoAPS");
    let coaps = coaps_line
        .split_whitespace()
        .nth(1)
        .and_then(|u| u.strip_prefix("coaps://"))
        .expect("coaps://ADDR")
        .to_string();
    (coaps, http_base(lines), coaps_line)
}

fn http() -> Http {
    lwm2m_testkit::http::client()
}

async fn call(client: &Http, method: Method, url: &str, body: &str) -> (u16, Json) {
    lwm2m_testkit::http::call(client, method, url, body, GUARD).await
}

// ---------------------------------------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x509_devices_register_and_foreign_certificates_are_refused() {
    let dir = Scratch::new("server-x509");
    let (ca_key, other_key, rogue_key) = (key(), key(), key());
    let ca = cert("lwm2m test CA", &ca_key, None, None);
    let other_ca = cert("another trusted CA", &other_key, None, None);
    let rogue_ca = cert("rogue CA", &rogue_key, None, None);
    let server_key = key();
    let server = cert("localhost", &server_key, Some((&ca, &ca_key)), LOOPBACK);
    let dev_key = key();
    let dev = cert("dev-x509", &dev_key, Some((&ca, &ca_key)), None);
    let bad_key = key();
    let bad = cert("dev-rogue", &bad_key, Some((&rogue_ca, &rogue_key)), None);

    // The server: its certificate, its SEC1 key, a two-CA bundle of trusted device CAs.
    let server_pem = dir.write("server.pem", &server.to_pem().unwrap());
    let server_key_pem = dir.write(
        "server.key",
        &server_key.ec_key().unwrap().private_key_to_pem().unwrap(),
    );
    let mut bundle = ca.to_pem().unwrap();
    bundle.extend(other_ca.to_pem().unwrap());
    let cas = dir.write("cas.pem", &bundle);
    let ca_pem = dir.write("ca.pem", &ca.to_pem().unwrap());
    // The devices: PKCS#8 keys.
    let dev_pem = dir.write("dev.pem", &dev.to_pem().unwrap());
    let dev_key_pem = dir.write("dev.key", &dev_key.private_key_to_pem_pkcs8().unwrap());
    let bad_pem = dir.write("rogue.pem", &bad.to_pem().unwrap());
    let bad_key_pem = dir.write("rogue.key", &bad_key.private_key_to_pem_pkcs8().unwrap());
    let data = dir.path("data").to_str().unwrap().to_string();

    let mut srv = lwm2m(
        &[
            "server",
            "--coap-addr",
            "off",
            "--coaps-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
            &data,
            "--log",
            "warn",
            "--cert",
            &server_pem,
            "--key",
            &server_key_pem,
            "--client-ca",
            &cas,
        ],
        dir.dir(),
        false,
    );
    let lines = until_ready(&mut srv).await.expect("the server starts");
    let (coaps, base, coaps_line) = addresses(&lines);
    assert!(coaps_line.contains("DTLS 1.2 PSK + X.509;"), "{coaps_line}");
    let uri = format!("coaps://{coaps}");

    // Both device CNs get an X.509 entry: only the certificate's CA differs between them.
    let api = http();
    for ep in ["dev-x509", "dev-rogue", "dev-x509-ca"] {
        let (s, r) = call(
            &api,
            Method::PUT,
            &format!("{base}/api/security/{ep}"),
            r#"{"mode": "x509"}"#,
        )
        .await;
        assert!((200..300).contains(&s), "PUT /api/security/{ep}: {s} {r}");
    }

    // A device with a certificate of the trusted CA, pinning the server's certificate (usage 3).
    let mut good = device(
        dir.dir(),
        &uri,
        "dev-x509",
        &["--cert", &dev_pem, "--key", &dev_key_pem, "--server-cert", &server_pem],
    );
    let l = good.until("registered").await;
    assert!(l.starts_with("registered ssid=1 location=/rd/"), "{l}");
    let (s, r) = call(&api, Method::GET, &format!("{base}/api/clients/dev-x509"), "").await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["secure"], Json::Bool(true), "{r}");
    assert_eq!(r["identity"]["mode"], "x509", "{r}");
    assert_eq!(r["identity"]["common_name"], "dev-x509", "{r}");

    // The same PKI with PKIX validation of the server (usage 0: the CA, and the IP subjectAltName 127.0.0.1).
    let dev2_key = key();
    let dev2 = cert("dev-x509-ca", &dev2_key, Some((&ca, &ca_key)), None);
    let dev2_der = dir.write("dev2.der", &dev2.to_der().unwrap());
    let dev2_key_der = dir.write("dev2-key.der", &dev2_key.private_key_to_der().unwrap());
    let mut good2 = device(
        dir.dir(),
        &uri,
        "dev-x509-ca",
        &[
            "--cert",
            &dev2_der,
            "--key",
            &dev2_key_der,
            "--server-cert",
            &ca_pem,
            "--cert-usage",
            "0",
        ],
    );
    good2.until("registered ssid=1").await;

    // A device whose certificate another CA signed: the handshake is refused, nothing registers.
    let mut rogue = device(
        dir.dir(),
        &uri,
        "dev-rogue",
        &["--cert", &bad_pem, "--key", &bad_key_pem, "--server-cert", &server_pem],
    );
    let l = rogue.until("register failed").await;
    assert!(l.contains("handshake failed"), "{l}");
    let (s, r) = call(&api, Method::GET, &format!("{base}/api/clients/dev-rogue"), "").await;
    assert_eq!(s, 404, "the refused device is not registered: {r}");

    // The server keeps serving: the API answers, the registered devices are there, the process runs.
    let (s, h) = call(&api, Method::GET, &format!("{base}/api/health"), "").await;
    assert_eq!((s, &h["registrations"]), (200, &Json::from(2)), "{h}");
    let (s, r) = call(&api, Method::GET, &format!("{base}/api/clients/dev-x509"), "").await;
    assert_eq!(s, 200, "{r}");
    assert!(srv.child.try_wait().unwrap().is_none(), "the server is still running");

    // The good device leaves cleanly.
    good.type_line("quit").await;
    good.until("stopped").await;
    let (s, r) = call(&api, Method::GET, &format!("{base}/api/clients/dev-x509"), "").await;
    assert_eq!(s, 404, "de-registered: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpk_key_from_the_config_file() {
    let dir = Scratch::new("server-rpk");
    let server_key = key();
    std::fs::create_dir_all(dir.path("keys")).unwrap();
    dir.write(
        "keys/server.key",
        &server_key.ec_key().unwrap().private_key_to_pem().unwrap(),
    );
    let server_pub = dir.write("server.pub", &server_key.public_key_to_pem().unwrap());
    let dev_key = key();
    let dev_key_pem = dir.write("dev.key", &dev_key.private_key_to_pem_pkcs8().unwrap());
    // The key's path is relative to the config file, which is not the working directory of the server.
    let config = dir.write(
        "server.toml",
        b"rpk_key = \"keys/server.key\"\ncoap_addr = \"off\"\ncoaps_addr = \"127.0.0.1:0\"\n\
          http_addr = \"127.0.0.1:0\"\nlog = \"warn\"\n",
    );
    let data = dir.path("data").to_str().unwrap().to_string();
    let mut srv = lwm2m(
        &["server", "--config", &config, "--data-dir", &data],
        &std::env::temp_dir(),
        true,
    );
    let lines = match until_ready(&mut srv).await {
        Ok(lines) => lines,
        Err(stderr) => {
            // A build without lwm2m-dtls's `vendored` feature: the one error names the cause and the rebuild.
            assert!(
                stderr.contains("--rpk-key: this lwm2m binary was built without raw public key support")
                    && stderr.contains("cargo build --release -p lwm2m-cli --features lwm2m-dtls/vendored"),
                "{stderr}"
            );
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            return;
        }
    };
    let (coaps, base, coaps_line) = addresses(&lines);
    assert!(coaps_line.contains("DTLS 1.2 PSK + RPK;"), "{coaps_line}");
    let api = http();
    let body = format!(
        r#"{{"mode": "rpk", "public_key": "{}"}}"#,
        hex::encode(dev_key.public_key_to_der().unwrap())
    );
    let (s, r) = call(&api, Method::PUT, &format!("{base}/api/security/dev-rpk"), &body).await;
    assert!((200..300).contains(&s), "{s} {r}");
    let mut dev = device(
        dir.dir(),
        &format!("coaps://{coaps}"),
        "dev-rpk",
        &["--rpk-key", &dev_key_pem, "--server-rpk", &server_pub],
    );
    dev.until("registered ssid=1").await;
    let (s, r) = call(&api, Method::GET, &format!("{base}/api/clients/dev-rpk"), "").await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["identity"]["mode"], "rpk", "{r}");
}
