//! Interop with the `openssl` command-line tool over real UDP on 127.0.0.1:
//! - `openssl s_client -dtls1_2 -psk ... -cipher PSK-AES128-CCM8` against our `DtlsServer` (echo loop);
//! - our `DtlsClient` against `openssl s_server -dtls1_2 -psk ... -nocert`.
//!
//! Skipped (with a message) only if the `openssl` binary is missing. Every loop is bounded in time, and the
//! spawned processes are killed on drop.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lwm2m_dtls::{
    ClientConfig, DtlsClient, DtlsServer, DtlsSession, MemoryCredentialStore, ServerConfig, ServerEvent, SessionState,
};

const ID: &str = "urn:imei:490154203237511";
const KEY: &[u8] = b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10";

struct Spawned {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Spawned {
    fn spawn(args: &[&str]) -> Spawned {
        let mut child = Command::new("openssl")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn openssl");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Spawned { child, lines }
    }

    fn write_line(&mut self, s: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin.write_all(s.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    fn saw(&self, needle: &str, seen: &mut Vec<String>) -> bool {
        while let Ok(l) = self.lines.try_recv() {
            seen.push(l);
        }
        seen.iter().any(|l| l.contains(needle))
    }
}

fn have_openssl() -> bool {
    match Command::new("openssl").arg("version").output() {
        Ok(o) if o.status.success() => true,
        _ => {
            eprintln!("SKIPPED: the openssl binary is not installed");
            false
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn ms(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

#[test]
fn openssl_s_client_against_our_server() {
    if !have_openssl() {
        return;
    }
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    let port = sock.local_addr().unwrap().port();
    let store = Arc::new(MemoryCredentialStore::new());
    store.add_psk(ID, KEY);
    let mut server = DtlsServer::new(ServerConfig::default(), store).unwrap();

    let connect = format!("127.0.0.1:{port}");
    let key = hex(KEY);
    let mut peer = Spawned::spawn(&[
        "s_client",
        "-dtls1_2",
        "-connect",
        &connect,
        "-psk",
        &key,
        "-psk_identity",
        ID,
        "-cipher",
        "PSK-AES128-CCM8",
        "-quiet",
    ]);
    peer.write_line("hello from s_client");

    let start = Instant::now();
    let mut buf = [0u8; 2048];
    let mut established = None;
    let mut got = Vec::new();
    let mut seen = Vec::new();
    let mut ok = false;
    while start.elapsed() < Duration::from_secs(15) {
        let now = ms(start);
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => server.handle_datagram(now, from, &buf[..n]),
            Err(_) => server.handle_timeout(now),
        }
        if server.poll_timeout().is_some_and(|t| t <= now) {
            server.handle_timeout(now);
        }
        while let Some(ev) = server.poll_event() {
            match ev {
                ServerEvent::Established { peer, identity, .. } => established = Some((peer, identity)),
                ServerEvent::AppData { peer, data } => {
                    got.push(data.clone());
                    server.send(now, peer, &data).unwrap(); // echo
                }
                ServerEvent::Closed { reason, .. } => panic!("closed: {reason:?}"),
            }
        }
        while let Some((to, d)) = server.poll_transmit() {
            sock.send_to(&d, to).unwrap();
        }
        if peer.saw("hello from s_client", &mut seen) {
            ok = true;
            break;
        }
    }
    assert!(ok, "no echo seen by s_client; output {seen:?}, server {server:?}");
    let (addr, identity) = established.expect("established");
    assert_eq!(identity, lwm2m_dtls::PeerIdentity::Psk(ID.as_bytes().to_vec()));
    assert_eq!(got, vec![b"hello from s_client\n".to_vec()]);
    assert_eq!(server.session(&addr).unwrap().cipher_name(), Some("PSK-AES128-CCM8"));
}

#[test]
fn our_client_against_openssl_s_server() {
    if !have_openssl() {
        return;
    }
    let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let accept = format!("127.0.0.1:{port}");
    let key = hex(KEY);
    let mut peer = Spawned::spawn(&[
        "s_server",
        "-dtls1_2",
        "-accept",
        &accept,
        "-psk",
        &key,
        "-psk_identity",
        ID,
        "-nocert",
        "-cipher",
        "PSK-AES128-CCM8",
        "-quiet",
    ]);
    let server: SocketAddr = accept.parse().unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    let mut client = DtlsClient::new(ClientConfig::psk(ID, KEY)).unwrap();
    let start = Instant::now();
    client.connect(ms(start)).unwrap();

    let mut buf = [0u8; 2048];
    let mut seen = Vec::new();
    let mut sent = false;
    let mut replied = false;
    let mut received = Vec::new();
    while start.elapsed() < Duration::from_secs(15) {
        let now = ms(start);
        while let Some(d) = client.poll_transmit() {
            sock.send_to(&d, server).unwrap();
        }
        match sock.recv_from(&mut buf) {
            Ok((n, from)) if from == server => client.handle_datagram(now, &buf[..n]),
            _ => {}
        }
        if client.poll_timeout().is_some_and(|t| t <= now) {
            client.handle_timeout(now);
        }
        match client.state() {
            SessionState::Established if !sent => {
                client.send(b"hello from lwm2m-dtls\n").unwrap();
                sent = true;
            }
            SessionState::Closed(r) => panic!("closed: {r:?}"),
            _ => {}
        }
        if sent && !replied && peer.saw("hello from lwm2m-dtls", &mut seen) {
            peer.write_line("pong");
            replied = true;
        }
        while let Some(d) = client.poll_app_data() {
            received.push(d);
        }
        if received.iter().any(|d| d.starts_with(b"pong")) {
            break;
        }
    }
    assert!(
        sent,
        "handshake with s_server did not complete; state {:?}",
        client.state()
    );
    assert!(replied, "s_server did not print our data: {seen:?}");
    assert!(
        received.iter().any(|d| d.starts_with(b"pong")),
        "no reply: {received:?}"
    );
    assert_eq!(client.session().unwrap().cipher_name(), Some("PSK-AES128-CCM8"));
    client.close();
    while let Some(d) = client.poll_transmit() {
        sock.send_to(&d, server).unwrap();
    }
}

/// Drives `server` on `sock` until `stop` returns true for an event (`Some`) or between datagrams (`None`), or
/// `secs` pass. App data is echoed.
fn serve(
    sock: &UdpSocket,
    server: &mut DtlsServer,
    start: Instant,
    secs: u64,
    mut stop: impl FnMut(Option<&ServerEvent>) -> bool,
) -> bool {
    let until = Instant::now() + Duration::from_secs(secs);
    let mut buf = [0u8; 2048];
    while Instant::now() < until {
        let now = ms(start);
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            server.handle_datagram(now, from, &buf[..n]);
        }
        if server.poll_timeout().is_some_and(|t| t <= now) {
            server.handle_timeout(now);
        }
        let mut done = stop(None);
        while let Some(ev) = server.poll_event() {
            if let ServerEvent::AppData { peer, data } = &ev {
                let _ = server.send(now, *peer, data);
            }
            done |= stop(Some(&ev));
        }
        while let Some((to, d)) = server.poll_transmit() {
            sock.send_to(&d, to).unwrap();
        }
        if done {
            return true;
        }
    }
    false
}

#[test]
fn openssl_s_client_resumes_a_session_with_our_server() {
    if !have_openssl() {
        return;
    }
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    let port = sock.local_addr().unwrap().port();
    let store = Arc::new(MemoryCredentialStore::new());
    store.add_psk(ID, KEY);
    let mut server = DtlsServer::new(ServerConfig::default(), store).unwrap();
    let sess = std::env::temp_dir().join(format!("lwm2m-dtls-interop-{}-{port}.pem", std::process::id()));
    let sess_path = sess.to_str().unwrap().to_string();
    let connect = format!("127.0.0.1:{port}");
    let key = hex(KEY);
    let args = |extra: [&'static str; 1], file: &str| -> Vec<String> {
        let mut v: Vec<String> = [
            "s_client",
            "-dtls1_2",
            "-connect",
            &connect,
            "-psk",
            &key,
            "-psk_identity",
            ID,
            "-cipher",
            "PSK-AES128-CCM8",
            "-quiet",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push(extra[0].to_string());
        v.push(file.to_string());
        v
    };
    let start = Instant::now();

    let first = args(["-sess_out"], &sess_path);
    let mut peer = Spawned::spawn(&first.iter().map(String::as_str).collect::<Vec<_>>());
    let mut first_resumed = None;
    assert!(serve(&sock, &mut server, start, 15, |ev| match ev {
        Some(ServerEvent::Established { resumed, .. }) => {
            first_resumed = Some(*resumed);
            true
        }
        _ => false,
    }));
    assert_eq!(first_resumed, Some(false));
    // make sure s_client finished writing the session: one echo round trip
    peer.write_line("one");
    let mut seen = Vec::new();
    assert!(
        serve(&sock, &mut server, start, 10, |_| peer.saw("one", &mut seen)),
        "no echo: {seen:?}"
    );
    drop(peer);
    assert!(
        std::fs::read_to_string(&sess)
            .unwrap_or_default()
            .contains("SSL SESSION"),
        "no session saved"
    );

    let second = args(["-sess_in"], &sess_path);
    let _peer = Spawned::spawn(&second.iter().map(String::as_str).collect::<Vec<_>>());
    let mut second_resumed = None;
    assert!(serve(&sock, &mut server, start, 15, |ev| match ev {
        Some(ServerEvent::Established { resumed, .. }) => {
            second_resumed = Some(*resumed);
            true
        }
        _ => false,
    }));
    let _ = std::fs::remove_file(&sess);
    assert_eq!(
        second_resumed,
        Some(true),
        "s_client's second connection was a full handshake"
    );
    assert_eq!(server.stats().resumed, 1);
}

// ---------------------------------------------------------------- X.509 (ECDHE-ECDSA-AES128-CCM8)

#[test]
fn x509_our_client_against_s_server_and_s_client_against_our_server() {
    use lwm2m_dtls::{CertificateUsage, CertifiedKey, ClientSecurity, ServerTrust, ServerX509};
    use lwm2m_testkit::pki::{self, San};
    if !have_openssl() {
        return;
    }
    let ca_key = pki::key();
    let ca = pki::cert("interop CA", &ca_key, None, None);
    let srv_key = pki::key();
    let srv = pki::cert("localhost", &srv_key, Some((&ca, &ca_key)), Some(San::Dns("localhost")));
    let cli_key = pki::key();
    let cli = pki::cert("urn:imei:77", &cli_key, Some((&ca, &ca_key)), None);
    let files = lwm2m_testkit::scratch::Scratch::new("dtls-interop");
    let ca_pem = files.write("ca.pem", &ca.to_pem().unwrap());
    let srv_pem = files.write("srv.pem", &srv.to_pem().unwrap());
    let srv_key_pem = files.write("srv.key", &srv_key.private_key_to_pem_pkcs8().unwrap());
    let cli_pem = files.write("cli.pem", &cli.to_pem().unwrap());
    let cli_key_pem = files.write("cli.key", &cli_key.private_key_to_pem_pkcs8().unwrap());

    // 1. our client (usage 0: CA + name check) against s_server requiring a client certificate
    let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let accept = format!("127.0.0.1:{port}");
    let peer = Spawned::spawn(&[
        "s_server",
        "-dtls1_2",
        "-accept",
        &accept,
        "-cert",
        &srv_pem,
        "-key",
        &srv_key_pem,
        "-CAfile",
        &ca_pem,
        "-Verify",
        "2",
        "-cipher",
        "ECDHE-ECDSA-AES128-CCM8",
        "-quiet",
    ]);
    let server_addr: SocketAddr = accept.parse().unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    let cfg = ClientConfig {
        security: ClientSecurity::X509 {
            own: CertifiedKey {
                chain_der: vec![cli.to_der().unwrap()],
                private_key_der: cli_key.private_key_to_der().unwrap(),
            },
            trust: ServerTrust {
                usage: CertificateUsage::CaConstraint,
                certificate_der: ca.to_der().unwrap(),
                server_name: Some("localhost".into()),
                extra_trust_anchors: Vec::new(),
            },
        },
        ..ClientConfig::psk(ID, KEY)
    };
    let mut client = DtlsClient::new(cfg).unwrap();
    let start = Instant::now();
    client.connect(ms(start)).unwrap();
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    let mut sent = false;
    let mut ok = false;
    while start.elapsed() < Duration::from_secs(15) {
        let now = ms(start);
        while let Some(d) = client.poll_transmit() {
            sock.send_to(&d, server_addr).unwrap();
        }
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            client.handle_datagram(now, &buf[..n]);
        }
        if client.poll_timeout().is_some_and(|t| t <= now) {
            client.handle_timeout(now);
        }
        if let SessionState::Closed(r) = client.state() {
            panic!("closed: {r:?}");
        }
        if client.state() == &SessionState::Established && !sent {
            client.send(b"x509 hello\n").unwrap();
            sent = true;
        }
        if sent && peer.saw("x509 hello", &mut seen) {
            ok = true;
            break;
        }
    }
    assert!(
        ok,
        "s_server did not get our data; state {:?}, output {seen:?}",
        client.state()
    );
    assert_eq!(client.session().unwrap().cipher_name(), Some("ECDHE-ECDSA-AES128-CCM8"));
    assert!(matches!(client.peer_identity(),
        Some(lwm2m_dtls::PeerIdentity::X509 { common_name: Some(cn), .. }) if cn == "localhost"));
    client.close();
    drop(peer);

    // 2. s_client with a client certificate against our server (PSK and X.509 enabled)
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    let port = sock.local_addr().unwrap().port();
    let store = Arc::new(MemoryCredentialStore::new());
    let mut server = DtlsServer::new(
        ServerConfig {
            x509: Some(ServerX509 {
                certified_key: CertifiedKey {
                    chain_der: vec![srv.to_der().unwrap()],
                    private_key_der: srv_key.private_key_to_der().unwrap(),
                },
                client_trust_anchors_der: vec![ca.to_der().unwrap()],
                require_client_cert: true,
            }),
            ..ServerConfig::default()
        },
        store,
    )
    .unwrap();
    let connect = format!("127.0.0.1:{port}");
    let _peer = Spawned::spawn(&[
        "s_client",
        "-dtls1_2",
        "-connect",
        &connect,
        "-cert",
        &cli_pem,
        "-key",
        &cli_key_pem,
        "-CAfile",
        &ca_pem,
        "-verify_return_error",
        "-cipher",
        "ECDHE-ECDSA-AES128-CCM8",
        "-quiet",
    ]);
    let mut identity = None;
    let start = Instant::now();
    assert!(serve(&sock, &mut server, start, 15, |ev| match ev {
        Some(ServerEvent::Established { identity: id, .. }) => {
            identity = Some(id.clone());
            true
        }
        Some(ServerEvent::Closed { reason, .. }) => panic!("closed: {reason:?}"),
        _ => false,
    }));
    assert!(matches!(identity,
        Some(lwm2m_dtls::PeerIdentity::X509 { common_name: Some(cn), .. }) if cn == "urn:imei:77"));
}
