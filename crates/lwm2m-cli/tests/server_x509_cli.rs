//! The real `lwm2m server` binary with its own certificate (X.509 mode) and raw public key (RPK mode), and real
//! `lwm2m client` devices connecting to it over CoAPS on 127.0.0.1. The PKI (EC P-256) is made here with the
//! openssl crate and written as PEM files. Every wait is for an output line or an HTTP answer (bounded by a
//! guard), never a sleep.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509Name, X509};
use serde_json::Value as Json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const GUARD: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------- the PKI

fn key() -> PKey<Private> {
    PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap()).unwrap()
}

fn name(cn: &str) -> X509Name {
    let mut n = X509Name::builder().unwrap();
    n.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    n.build()
}

/// A certificate for `cn` with `key`: a self-signed CA without `issuer`, else issued by it (with subjectAltName
/// IP:127.0.0.1 when `ip_san`).
fn cert(cn: &str, key: &PKey<Private>, issuer: Option<(&X509, &PKey<Private>)>, ip_san: bool) -> X509 {
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap()).unwrap();
    b.set_subject_name(&name(cn)).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap()).unwrap();
    match issuer {
        None => {
            b.set_issuer_name(&name(cn)).unwrap();
            b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
            b.sign(key, MessageDigest::sha256()).unwrap();
        }
        Some((ca, ca_key)) => {
            b.set_issuer_name(ca.subject_name()).unwrap();
            if ip_san {
                let san = SubjectAlternativeName::new()
                    .ip("127.0.0.1")
                    .build(&b.x509v3_context(Some(ca), None))
                    .unwrap();
                b.append_extension(san).unwrap();
            }
            b.sign(ca_key, MessageDigest::sha256()).unwrap();
        }
    }
    b.build()
}

/// A scratch directory of this test (removed when dropped).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("lwm2m-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Writes `data` to `name` in the directory; returns the path as a string.
    fn write(&self, name: &str, data: &[u8]) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, data).unwrap();
        p.to_str().unwrap().to_string()
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------- processes

/// A running `lwm2m` process with its stdout read line by line.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Proc {
    /// `lwm2m ARGS` in `cwd`; stderr is piped when `capture_stderr`, else inherited.
    fn start(args: &[&str], cwd: &Path, capture_stderr: bool) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lwm2m"))
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if capture_stderr {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .kill_on_drop(true)
            .spawn()
            .expect("the lwm2m binary starts");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Proc { child, stdin, stdout }
    }

    /// The next stdout line, or `None` at the end of the output.
    async fn line(&mut self) -> Option<String> {
        tokio::time::timeout(GUARD, self.stdout.next_line())
            .await
            .expect("no output in time")
            .unwrap()
    }

    /// Reads lines until one starts with `prefix`; returns it.
    async fn until(&mut self, prefix: &str) -> String {
        loop {
            match self.line().await {
                Some(l) if l.starts_with(prefix) => return l,
                Some(_) => {}
                None => panic!("the output ended before a line starting with {prefix:?}"),
            }
        }
    }

    /// The server's startup lines up to `ready`, or `Err(stderr)` if it exited first.
    async fn until_ready(&mut self) -> Result<Vec<String>, String> {
        let mut lines = Vec::new();
        loop {
            match self.line().await {
                Some(l) if l.starts_with("ready") => return Ok(lines),
                Some(l) => lines.push(l),
                None => {
                    let mut err = String::new();
                    if let Some(mut e) = self.child.stderr.take() {
                        let _ = tokio::time::timeout(GUARD, e.read_to_string(&mut err)).await;
                    }
                    let status = tokio::time::timeout(GUARD, self.child.wait()).await.unwrap().unwrap();
                    assert!(!status.success(), "stdout closed but the server exited successfully");
                    return Err(err);
                }
            }
        }
    }
}

/// The addresses of the startup lines: the CoAPS socket (`host:port`), the HTTP base URL and the CoAPS line.
fn addresses(lines: &[String]) -> (String, String, String) {
    let find = |kind: &str| {
        lines
            .iter()
            .find(|l| l.trim_start().starts_with(kind))
            .unwrap_or_else(|| panic!("no {kind} line in {lines:?}"))
            .clone()
    };
    let coaps_line = find("CoAPS");
    let coaps = coaps_line
        .split_whitespace()
        .nth(1)
        .and_then(|u| u.strip_prefix("coaps://"))
        .expect("coaps://ADDR")
        .to_string();
    let base = find("HTTP")
        .split_whitespace()
        .nth(1)
        .and_then(|u| u.strip_suffix("/api"))
        .expect("http://ADDR/api")
        .to_string();
    (coaps, base, coaps_line)
}

type Http = HttpClient<HttpConnector, Full<Bytes>>;

fn http() -> Http {
    HttpClient::builder(TokioExecutor::new()).build_http()
}

async fn call(client: &Http, method: Method, url: &str, body: &str) -> (u16, Json) {
    let req = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = tokio::time::timeout(GUARD, client.request(req))
        .await
        .expect("no answer in time")
        .expect("the HTTP API answers");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Json::Null))
}

// ---------------------------------------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x509_devices_register_and_foreign_certificates_are_refused() {
    let dir = Scratch::new("server-x509");
    let (ca_key, other_key, rogue_key) = (key(), key(), key());
    let ca = cert("lwm2m test CA", &ca_key, None, false);
    let other_ca = cert("another trusted CA", &other_key, None, false);
    let rogue_ca = cert("rogue CA", &rogue_key, None, false);
    let server_key = key();
    let server = cert("localhost", &server_key, Some((&ca, &ca_key)), true);
    let dev_key = key();
    let dev = cert("dev-x509", &dev_key, Some((&ca, &ca_key)), false);
    let bad_key = key();
    let bad = cert("dev-rogue", &bad_key, Some((&rogue_ca, &rogue_key)), false);

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
    let data = dir.path("data");

    let mut srv = Proc::start(
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
        &dir.0,
        false,
    );
    let lines = srv.until_ready().await.expect("the server starts");
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
    let mut good = Proc::start(
        &[
            "client",
            "--server",
            &uri,
            "--endpoint",
            "dev-x509",
            "--cert",
            &dev_pem,
            "--key",
            &dev_key_pem,
            "--server-cert",
            &server_pem,
            "--sensor-interval",
            "0",
            "--log",
            "warn",
        ],
        &dir.0,
        false,
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
    let dev2 = cert("dev-x509-ca", &dev2_key, Some((&ca, &ca_key)), false);
    let dev2_der = dir.write("dev2.der", &dev2.to_der().unwrap());
    let dev2_key_der = dir.write("dev2-key.der", &dev2_key.private_key_to_der().unwrap());
    let mut good2 = Proc::start(
        &[
            "client",
            "--server",
            &uri,
            "--endpoint",
            "dev-x509-ca",
            "--cert",
            &dev2_der,
            "--key",
            &dev2_key_der,
            "--server-cert",
            &ca_pem,
            "--cert-usage",
            "0",
            "--sensor-interval",
            "0",
            "--log",
            "warn",
        ],
        &dir.0,
        false,
    );
    good2.until("registered ssid=1").await;

    // A device whose certificate another CA signed: the handshake is refused, nothing registers.
    let mut rogue = Proc::start(
        &[
            "client",
            "--server",
            &uri,
            "--endpoint",
            "dev-rogue",
            "--cert",
            &bad_pem,
            "--key",
            &bad_key_pem,
            "--server-cert",
            &server_pem,
            "--sensor-interval",
            "0",
            "--log",
            "warn",
        ],
        &dir.0,
        false,
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
    use tokio::io::AsyncWriteExt;
    let mut stdin = good.stdin.take().unwrap();
    stdin.write_all(b"quit\n").await.unwrap();
    stdin.flush().await.unwrap();
    good.until("stopped").await;
    let (s, r) = call(&api, Method::GET, &format!("{base}/api/clients/dev-x509"), "").await;
    assert_eq!(s, 404, "de-registered: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpk_key_from_the_config_file() {
    let dir = Scratch::new("server-rpk");
    let server_key = key();
    std::fs::create_dir_all(dir.0.join("keys")).unwrap();
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
    let data = dir.path("data");
    let mut srv = Proc::start(
        &["server", "--config", &config, "--data-dir", &data],
        &std::env::temp_dir(),
        true,
    );
    let lines = match srv.until_ready().await {
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
    let mut dev = Proc::start(
        &[
            "client",
            "--server",
            &format!("coaps://{coaps}"),
            "--endpoint",
            "dev-rpk",
            "--rpk-key",
            &dev_key_pem,
            "--server-rpk",
            &server_pub,
            "--sensor-interval",
            "0",
            "--log",
            "warn",
        ],
        &dir.0,
        false,
    );
    dev.until("registered ssid=1").await;
    let (s, r) = call(&api, Method::GET, &format!("{base}/api/clients/dev-rpk"), "").await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["identity"]["mode"], "rpk", "{r}");
}
