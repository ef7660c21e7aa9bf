//! DTLS benchmarks, in memory (no sockets), real OpenSSL on both sides:
//! - full PSK CCM_8 handshakes per second (cookie exchange included), client and server work together;
//! - abbreviated (resumed) handshakes per second;
//! - encrypted round trips per second (64-byte request, 64-byte response over an established session).
//!
//! Before the criterion groups it prints the memory per established *server* session, measured as the RSS
//! delta (/proc/self/statm) over 1000 sessions whose clients were dropped after the handshake (so only the
//! server side stays alive). OpenSSL allocates with malloc directly, so a counting Rust global allocator would
//! not see it; RSS does.

use std::net::SocketAddr;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lwm2m_dtls::{
    ClientConfig, DtlsClient, DtlsServer, DtlsSession, MemoryCredentialStore, ServerConfig, ServerEvent, SessionState,
};

const ID: &[u8] = b"urn:imei:490154203237511";
const KEY: &[u8] = b"0123456789abcdef";

fn server() -> DtlsServer {
    let store = Arc::new(MemoryCredentialStore::new());
    store.add_psk(ID, KEY);
    let cfg = ServerConfig {
        max_sessions: 1_000_000,
        max_handshakes: 1_000_000,
        ..Default::default()
    };
    DtlsServer::new(cfg, store).unwrap()
}

fn addr(n: u32) -> SocketAddr {
    let [a, b, c, d] = n.to_be_bytes();
    SocketAddr::from(([10, a, b, c], 1000 + u16::from(d)))
}

/// Moves datagrams between one client and the server until nothing moves.
fn pump(server: &mut DtlsServer, client: &mut DtlsClient, at: SocketAddr, rx: &mut Vec<Vec<u8>>) {
    loop {
        let mut moved = false;
        while let Some(d) = client.poll_transmit() {
            moved = true;
            server.handle_datagram(0, at, &d);
        }
        while let Some((_, d)) = server.poll_transmit() {
            moved = true;
            client.handle_datagram(0, &d);
        }
        while let Some(ev) = server.poll_event() {
            if let ServerEvent::AppData { data, .. } = ev {
                rx.push(data);
            }
        }
        if !moved {
            return;
        }
    }
}

fn handshake(server: &mut DtlsServer, client: &mut DtlsClient, at: SocketAddr) {
    let mut rx = Vec::new();
    pump(server, client, at, &mut rx);
    assert_eq!(client.state(), &SessionState::Established);
}

fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn report_memory() {
    const N: u32 = 1000;
    let mut srv = server();
    // warm up allocator and OpenSSL tables
    for i in 0..50 {
        let mut c = DtlsClient::new(ClientConfig::psk(ID, KEY)).unwrap();
        c.connect(0).unwrap();
        handshake(&mut srv, &mut c, addr(1_000_000 + i));
    }
    let before = rss_bytes();
    for i in 0..N {
        let mut c = DtlsClient::new(ClientConfig::psk(ID, KEY)).unwrap();
        c.connect(0).unwrap();
        handshake(&mut srv, &mut c, addr(i));
    }
    let after = rss_bytes();
    assert_eq!(srv.session_count(), (N + 50) as usize);
    if let (Some(b), Some(a)) = (before, after) {
        println!(
            "memory per established server session (RSS delta over {N} PSK sessions, clients dropped): {} bytes",
            a.saturating_sub(b) / u64::from(N)
        );
    }
    // client side: keep 1000 established clients alive (their server sessions too) and subtract
    let mut srv2 = server();
    let before = rss_bytes();
    let mut clients = Vec::new();
    for i in 0..N {
        let mut c = DtlsClient::new(ClientConfig::psk(ID, KEY)).unwrap();
        c.connect(0).unwrap();
        handshake(&mut srv2, &mut c, addr(i));
        clients.push(c);
    }
    let after = rss_bytes();
    if let (Some(b), Some(a)) = (before, after) {
        println!(
            "memory per established client+server session pair (RSS delta over {N}): {} bytes",
            a.saturating_sub(b) / u64::from(N)
        );
    }
}

fn benches(c: &mut Criterion) {
    report_memory();

    let mut g = c.benchmark_group("dtls");
    g.sample_size(20);
    g.throughput(Throughput::Elements(1));

    let mut srv = server();
    let mut n = 0u32;
    g.bench_function("psk_ccm8_full_handshake", |b| {
        b.iter(|| {
            n += 1;
            let at = addr(n);
            let mut c = DtlsClient::new(ClientConfig::psk(ID, KEY)).unwrap();
            c.connect(0).unwrap();
            handshake(&mut srv, &mut c, at);
            srv.close(at);
        })
    });

    let mut client = DtlsClient::new(ClientConfig::psk(ID, KEY)).unwrap();
    client.connect(0).unwrap();
    n += 1;
    handshake(&mut srv, &mut client, addr(n));
    g.bench_function("psk_ccm8_resumed_handshake", |b| {
        b.iter(|| {
            n += 1;
            let at = addr(n);
            client.reconnect(0).unwrap();
            handshake(&mut srv, &mut client, at);
            assert!(client.session_reused());
            srv.close(at);
        })
    });

    let at = addr(u32::MAX);
    client.reconnect(0).unwrap();
    handshake(&mut srv, &mut client, at);
    let request = [0x42u8; 64];
    let mut rx = Vec::new();
    g.bench_function("psk_ccm8_round_trip_64B", |b| {
        b.iter(|| {
            client.send(&request).unwrap();
            pump(&mut srv, &mut client, at, &mut rx);
            let req = rx.pop().unwrap();
            srv.send(0, at, &req).unwrap();
            pump(&mut srv, &mut client, at, &mut rx);
            client.poll_app_data().unwrap()
        })
    });
    g.finish();
}

criterion_group!(handshake_benches, benches);
criterion_main!(handshake_benches);
