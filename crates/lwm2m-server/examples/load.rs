//! Load generator: registers N simulated devices with an in-process server and reports registrations per
//! second and the server's memory per registered device.
//!
//! ```text
//! cargo run --release -p lwm2m-server --example load -- [--devices 10000] [--sockets 0] [--window 256]
//! ```
//!
//! The devices run in a child process (this same binary with `--generate`), so the server process's RSS grows
//! only by what the server keeps. Each device is a CoAP `POST /rd?ep=load-N&lt=86400&lwm2m=1.1&b=U` with a
//! four-object payload, retransmitted after 250 ms without answer (loopback) and retried after a 5.03. `--sockets 0` (the
//! default) gives every device its own UDP socket (so its own transport address, as real devices have);
//! `--sockets S` spreads the devices over S sockets. `--window` bounds the requests in flight.
//!
//! Reported:
//! - registrations/s: from the first to the last `Registered` event;
//! - RSS delta per device right after the run (registrations, indexes, expiry heap, plus the CoAP layer's
//!   per-peer state and its deduplication cache of each Register's response, kept for EXCHANGE_LIFETIME);
//! - the store alone: the RSS growth of a fresh `MemoryRegistrationStore` filled with N equivalent
//!   registrations.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lwm2m_coap::{Code, EndpointConfig, Message, MessageType, Token, UdpEndpoint};
use lwm2m_core::format::link::parse_registration;
use lwm2m_core::model::Version;
use lwm2m_server::registration::Binding;
use lwm2m_server::{
    Event, MemoryRegistrationStore, Registration, RegistrationId, RegistrationStore, Server, ServerConfig,
};
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;

const PAYLOAD: &str = "</1/0>,</3/0>,</4/0>,</3303/0>";

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if let Some(i) = args.iter().position(|a| a == "--generate") {
        let addr: SocketAddr = args.get(i + 1).and_then(|a| a.parse().ok()).expect("--generate ADDR");
        let n = arg(&args, "--devices", 10_000);
        let sockets = arg(&args, "--sockets", 0);
        let window = arg(&args, "--window", 256);
        let (ok, retries, elapsed) = rt.block_on(generate(addr, n, sockets, window));
        println!(
            "generated {ok} registrations in {:.3} s ({retries} retransmissions/retries)",
            elapsed.as_secs_f64()
        );
        return;
    }
    rt.block_on(run(args));
}

async fn run(args: Vec<String>) {
    let n = arg(&args, "--devices", 10_000);
    let sockets = arg(&args, "--sockets", 0);
    let window = arg(&args, "--window", 256);

    let base = rss_bytes();
    let coap = EndpointConfig::default();
    let socket = UdpEndpoint::bind("127.0.0.1:0".parse().unwrap(), coap)
        .await
        .expect("bind");
    let addr = socket.0.local_addr();
    let (server, mut events) = Server::start(ServerConfig::default(), vec![socket]).expect("server");
    let counter = Arc::new(AtomicU64::new(0));
    let (first, last, p99) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let n99 = (n as u64 * 99).div_ceil(100).max(1);
    let t0 = Instant::now();
    {
        let (counter, first, last, p99) = (counter.clone(), first.clone(), last.clone(), p99.clone());
        tokio::spawn(async move {
            while let Ok(ev) = events.recv().await {
                if let Event::Registered { .. } = ev {
                    let at = t0.elapsed().as_micros() as u64;
                    let c = counter.fetch_add(1, Ordering::Relaxed) + 1;
                    if c == 1 {
                        first.store(at, Ordering::Relaxed);
                    }
                    if c == n99 {
                        p99.store(at, Ordering::Relaxed);
                    }
                    last.store(at, Ordering::Relaxed);
                }
            }
        });
    }
    let started = rss_bytes();
    println!(
        "server on {addr}; RSS {:.1} MiB before, {:.1} MiB with the server running",
        mib(base),
        mib(started)
    );

    let exe = std::env::current_exe().expect("current exe");
    let child = tokio::process::Command::new(exe)
        .args(["--generate", &addr.to_string()])
        .args([
            "--devices",
            &n.to_string(),
            "--sockets",
            &sockets.to_string(),
            "--window",
            &window.to_string(),
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .expect("generator ran");
    print!("{}", String::from_utf8_lossy(&child.stdout));
    // Let the event counter catch up.
    for _ in 0..200 {
        if counter.load(Ordering::Relaxed) as usize >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let registered = server.store().len();
    let secs = (last
        .load(Ordering::Relaxed)
        .saturating_sub(first.load(Ordering::Relaxed))) as f64
        / 1e6;
    let after = rss_bytes();
    let per = (after.saturating_sub(started)) as f64 / registered.max(1) as f64;
    let secs99 = (p99
        .load(Ordering::Relaxed)
        .saturating_sub(first.load(Ordering::Relaxed))) as f64
        / 1e6;
    println!(
        "registered {registered} devices ({} events) in {secs:.3} s: {:.0} registrations/s (the first 99 % in \
         {secs99:.3} s: {:.0}/s)",
        counter.load(Ordering::Relaxed),
        registered as f64 / secs.max(1e-9),
        n99 as f64 / secs99.max(1e-9)
    );
    println!(
        "server RSS {:.1} MiB -> {:.1} MiB: {per:.0} bytes per device (store, indexes, expiry heap, CoAP per-peer \
         state and response cache)",
        mib(started),
        mib(after)
    );

    // The store alone.
    let before_store = rss_bytes();
    let store = MemoryRegistrationStore::new();
    let links = parse_registration(PAYLOAD.as_bytes()).expect("payload");
    for i in 0..n {
        let now = 1_700_000_000_000u64;
        let mut objects = links.clone();
        for o in &mut objects.objects {
            o.instances.shrink_to_fit();
        }
        objects.objects.shrink_to_fit();
        let mut endpoint = format!("load-{i}");
        endpoint.shrink_to_fit();
        store
            .add(Registration {
                id: RegistrationId::generate(),
                endpoint,
                peer: SocketAddr::from(([127, 0, 0, 1], 10_000 + (i % 50_000) as u16)),
                socket: (i / 50_000) as u8,
                identity: None,
                lifetime_s: 86_400,
                binding: Binding::UDP,
                queue_mode: false,
                version: Version::V1_1,
                sms: None,
                objects,
                registered_at_ms: now,
                last_update_ms: now,
                expires_ms: now + 86_400_000,
                additional: BTreeMap::new(),
            })
            .expect("stored");
    }
    let store_per = (rss_bytes().saturating_sub(before_store)) as f64 / n.max(1) as f64;
    println!(
        "MemoryRegistrationStore alone: {store_per:.0} bytes per registration (size_of::<Registration>() = {} bytes)",
        std::mem::size_of::<Registration>()
    );
    drop(store);
    server.shutdown().await;
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

struct Pending {
    device: usize,
    bytes: Vec<u8>,
    sent: Instant,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// Registers `n` devices over `sockets` sockets (0: one per device) with at most `window` requests in flight.
async fn generate(addr: SocketAddr, n: usize, sockets: usize, window: usize) -> (usize, u64, Duration) {
    let sockets = if sockets == 0 { n } else { sockets.min(n) }.max(1);
    let sem = Arc::new(Semaphore::new(window.max(1)));
    let retries = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..sockets {
        let devices: VecDeque<usize> = (k..n).step_by(sockets).collect();
        let (sem, retries) = (sem.clone(), retries.clone());
        tasks.push(tokio::spawn(async move { worker(addr, devices, sem, retries).await }));
    }
    let mut ok = 0;
    let mut keep = Vec::new();
    for t in tasks {
        let (count, sock) = t.await.expect("worker");
        ok += count;
        keep.push(sock); // keep every port bound until the end: no address is reused
    }
    (ok, retries.load(Ordering::Relaxed), start.elapsed())
}

async fn worker(
    addr: SocketAddr,
    mut todo: VecDeque<usize>,
    sem: Arc<Semaphore>,
    retries: Arc<AtomicU64>,
) -> (usize, UdpSocket) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mut pending: HashMap<u64, Pending> = HashMap::new();
    let mut mid: u16 = 1;
    let mut ok = 0;
    let mut buf = vec![0u8; 2048];
    loop {
        while let Some(&device) = todo.front() {
            let permit = match sem.clone().try_acquire_owned() {
                Ok(p) => p,
                // Nothing in flight here: wait for room.
                Err(_) if pending.is_empty() => sem.clone().acquire_owned().await.expect("semaphore"),
                // Answers are due here: read them first.
                Err(_) => break,
            };
            todo.pop_front();
            mid = mid.wrapping_add(1);
            let token = device as u64 + 1;
            let mut m = Message::request(Code::POST, "/rd")
                .with_token(Token::from_u64(token))
                .with_content_format(40)
                .with_payload(PAYLOAD);
            m.message_id = mid;
            m.mtype = MessageType::Con;
            for q in [
                format!("ep=load-{device}"),
                "lt=86400".into(),
                "lwm2m=1.1".into(),
                "b=U".into(),
            ] {
                m.add_uri_query(&q);
            }
            let bytes = m.encode();
            let _ = sock.send_to(&bytes, addr).await;
            pending.insert(
                token,
                Pending {
                    device,
                    bytes,
                    sent: Instant::now(),
                    _permit: permit,
                },
            );
        }
        if pending.is_empty() && todo.is_empty() {
            return (ok, sock);
        }
        match tokio::time::timeout(Duration::from_millis(50), sock.recv_from(&mut buf)).await {
            Ok(Ok((len, _))) => {
                let Ok(resp) = Message::decode(&buf[..len]) else {
                    continue;
                };
                let token = u64::from_be_bytes({
                    let mut b = [0u8; 8];
                    let t = resp.token.as_slice();
                    b[8 - t.len()..].copy_from_slice(t);
                    b
                });
                match pending.remove(&token) {
                    Some(_) if resp.code == Code::CREATED => ok += 1,
                    Some(p) if resp.code == Code::SERVICE_UNAVAILABLE => {
                        retries.fetch_add(1, Ordering::Relaxed);
                        todo.push_back(p.device);
                    }
                    Some(p) => eprintln!("device {}: {}", p.device, resp.code),
                    None => {}
                }
            }
            _ => {
                for p in pending.values_mut() {
                    if p.sent.elapsed() > Duration::from_millis(250) {
                        retries.fetch_add(1, Ordering::Relaxed);
                        let _ = sock.send_to(&p.bytes, addr).await;
                        p.sent = Instant::now();
                    }
                }
            }
        }
    }
}
