//! Held requests of sleeping queue-mode clients are persisted (redb) and survive a restart of the server.
//!
//! - `held_requests_have_a_record_and_report_their_outcome`: the record lives exactly as long as the request
//!   is held or being sent; every finished one is reported as `QueuedRequestDone` (answered, expired); one
//!   whose caller gave up leaves quietly.
//! - `held_requests_survive_a_shutdown_and_restart`: a graceful shutdown keeps the records; the next server on
//!   the same store drops the expired ones (deadline passed, registration expired while it was down) with the
//!   event and sends the others when the client wakes.
//! - `a_held_request_survives_sigkill`: the server runs in a child process (this test binary, re-executed),
//!   holds an Execute for a sleeping client and is killed with SIGKILL; a server started on the same database
//!   file sends it when the client's Update arrives and reports the answer.
//!
//! Every wait is for an event, an answer or a line of output (bounded by a guard), never a sleep; the first two
//! tests run on tokio's paused clock.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use lwm2m_coap::Code;
use lwm2m_core::format::ContentFormat;
use lwm2m_core::{Path, Value};
use lwm2m_server::clock::TokioClock;
use lwm2m_server::store::RedbRegistrationStore;
use lwm2m_server::{
    Event, QueuedRequest, RegistrationStore, Request, RequestOptions, Response, ServerConfig, ServerError,
};
use lwm2m_testkit::scratch::Scratch;
use tokio::sync::broadcast;

fn p(s: &str) -> Path {
    s.parse().unwrap()
}

fn within(s: u64) -> RequestOptions {
    RequestOptions::default().with_timeout(Duration::from_secs(s))
}

/// The database file's name in the test's scratch directory.
const DB: &str = "server.redb";

fn held(store: &RedbRegistrationStore) -> Vec<QueuedRequest> {
    let mut v = store.queued_requests().unwrap();
    v.sort_by_key(|q| q.id);
    v
}

/// Waits (yielding to the other futures of a `join!`) until `n` held requests are persisted.
async fn persisted(store: &RedbRegistrationStore, n: usize) -> Vec<QueuedRequest> {
    let fut = async {
        loop {
            let v = held(store);
            if v.len() >= n {
                return v;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(WAIT, fut)
        .await
        .expect("held requests persisted in time")
}

/// The next `QueuedRequestDone` event: `(endpoint, id, operation, paths, result)`.
async fn done(
    events: &mut broadcast::Receiver<Event>,
) -> (String, u64, &'static str, Vec<Path>, Result<Response, ServerError>) {
    match next_event(events, |e| matches!(e, Event::QueuedRequestDone { .. })).await {
        Event::QueuedRequestDone {
            endpoint,
            id,
            operation,
            paths,
            result,
        } => (endpoint, id, operation, paths, result),
        _ => unreachable!(),
    }
}

#[tokio::test(start_paused = true)]
async fn held_requests_have_a_record_and_report_their_outcome() {
    let dir = Scratch::new("queue-persist-live");
    let store = Arc::new(RedbRegistrationStore::open(dir.path(DB)).unwrap());
    let config = ServerConfig {
        store: store.clone(),
        awake_time: Duration::from_secs(10),
        ..ServerConfig::default()
    };
    let (server, mut events, addr) = start_server(config).await;
    let mut dev = Device::start(addr).await;
    assert_eq!(
        dev.register(&["ep=q", "lwm2m=1.1", "Q", "lt=3600"]).await.code,
        Code::CREATED
    );
    next_event(&mut events, |e| matches!(e, Event::Sleeping { .. })).await;

    // A Write held until the client wakes: its record has the request, format override and wall-clock times.
    let opts = within(600).with_format(ContentFormat::SenmlJson);
    let write = server.write_value("q", p("/3442/0/120"), Value::Integer(7), opts);
    let wake = async {
        let records = persisted(&store, 1).await;
        let q = &records[0];
        assert_eq!(q.endpoint, "q");
        assert_eq!(Some(q.registration_id), server.registration("q").unwrap().map(|r| r.id));
        assert!(matches!(q.request, Request::Write { path, .. } if path == p("/3442/0/120")));
        assert_eq!(q.format, Some(ContentFormat::SenmlJson));
        assert_eq!(q.deadline_ms - q.queued_at_ms, 600_000);
        assert!(q.queued_at_ms <= server.now_ms());
        assert_eq!(server.queued_requests("q")[0].id, q.id);
        assert_eq!(dev.update(&[], None).await.code, Code::CHANGED);
        q.id
    };
    let (w, id) = tokio::join!(write, wake);
    assert_eq!(w.unwrap().code, Code::CHANGED);
    let r = dev.next_received().await;
    assert_eq!(
        (r.op(), r.content_format),
        ((Code::PUT, "/3442/0/120".into()), Some(110))
    );
    let (endpoint, done_id, operation, paths, result) = done(&mut events).await;
    assert_eq!(
        (endpoint.as_str(), done_id, operation, paths),
        ("q", id, "Write-Replace", vec![p("/3442/0/120")])
    );
    assert_eq!(result.unwrap().code, Code::CHANGED);
    assert!(held(&store).is_empty(), "sent: the record is gone");

    // One that is never sent fails at its deadline, reported too.
    next_event(&mut events, |e| matches!(e, Event::Sleeping { .. })).await;
    let e = server.read("q", p("/3442/0/110"), within(5)).await.unwrap_err();
    assert_eq!(e, ServerError::ClientSleeping { endpoint: "q".into() });
    let (_, _, operation, _, result) = done(&mut events).await;
    assert_eq!((operation, result), ("Read", Err(e)));
    assert!(held(&store).is_empty());

    // A caller that gives up takes its request out of the queue and the store; no event.
    let mut execute = Box::pin(server.execute("q", p("/3442/0/0"), None, within(600)));
    tokio::select! {
        biased;
        r = &mut execute => panic!("held, not answered: {r:?}"),
        records = persisted(&store, 1) => assert_eq!(records[0].request.name(), "Execute"),
    }
    assert_eq!(server.queued_requests("q").len(), 1);
    drop(execute);
    assert!(held(&store).is_empty());
    assert!(server.queued_requests("q").is_empty());
    assert_eq!(dev.update(&[], None).await.code, Code::CHANGED);
    next_event(&mut events, |e| matches!(e, Event::Awake { .. })).await;
    assert!(dev.received.try_recv().is_err(), "nothing was sent");
    while let Ok(e) = events.try_recv() {
        assert!(!matches!(e, Event::QueuedRequestDone { .. }), "{e:?}");
    }
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn held_requests_survive_a_shutdown_and_restart() {
    let dir = Scratch::new("queue-persist-restart");
    let store = Arc::new(RedbRegistrationStore::open(dir.path(DB)).unwrap());
    // One clock for both runs, so the wall-clock times of the records stay meaningful on the paused clock.
    let clock = Arc::new(TokioClock::new());
    let config = || ServerConfig {
        store: store.clone(),
        clock: Some(clock.clone()),
        awake_time: Duration::from_secs(10),
        ..ServerConfig::default()
    };
    let (server, mut events, addr) = start_server(config()).await;
    let mut dev = Device::start(addr).await;
    let mut short_lived = Device::start(addr).await;
    assert_eq!(
        dev.register(&["ep=q", "lwm2m=1.1", "Q", "lt=3600"]).await.code,
        Code::CREATED
    );
    assert_eq!(
        short_lived.register(&["ep=e", "lwm2m=1.1", "Q", "lt=60"]).await.code,
        Code::CREATED
    );
    let mut asleep = [
        next_event(&mut events, |e| matches!(e, Event::Sleeping { .. })).await,
        next_event(&mut events, |e| matches!(e, Event::Sleeping { .. })).await,
    ];
    asleep.sort_by(|a, b| a.endpoint().cmp(b.endpoint()));
    assert_eq!(asleep.iter().map(Event::endpoint).collect::<Vec<_>>(), ["e", "q"]);

    let execute = server.execute("q", p("/3442/0/0"), Some("7"), within(3600));
    let read = server.read("q", p("/3442/0/110"), within(30));
    let read_e = server.read("e", p("/3442/0/120"), within(3600));
    let stop = async {
        let records = persisted(&store, 3).await;
        server.shutdown().await;
        records
    };
    let (x, r, re, records) = tokio::join!(execute, read, read_e, stop);
    for result in [x, r, re] {
        assert_eq!(result.unwrap_err(), ServerError::Shutdown);
    }
    assert_eq!(held(&store), records, "a shutdown keeps the records");
    let ops: Vec<(&str, &str)> = records
        .iter()
        .map(|q| (q.endpoint.as_str(), q.request.name()))
        .collect();
    assert_eq!(ops, vec![("q", "Execute"), ("q", "Read"), ("e", "Read")]);
    let (exec_id, read_id, read_e_id) = (records[0].id, records[1].id, records[2].id);
    drop(server);

    // Down for 61 s: the 30 s Read is past its deadline, the registration of `e` (lifetime 60 s) expired.
    tokio::time::advance(Duration::from_secs(61)).await;
    let (server, mut events, addr) = start_server(config()).await;
    let mut dropped = [done(&mut events).await, done(&mut events).await];
    dropped.sort_by_key(|d| d.1);
    assert_eq!(
        dropped,
        [
            (
                "q".to_string(),
                read_id,
                "Read",
                vec![p("/3442/0/110")],
                Err(ServerError::ClientSleeping { endpoint: "q".into() })
            ),
            (
                "e".to_string(),
                read_e_id,
                "Read",
                vec![p("/3442/0/120")],
                Err(ServerError::RegistrationEnded { endpoint: "e".into() })
            ),
        ]
    );
    let restored = server.queued_requests("q");
    assert_eq!(restored.iter().map(|i| i.id).collect::<Vec<_>>(), vec![exec_id]);
    assert_eq!(restored[0].deadline_ms, records[0].deadline_ms);
    assert!(!server.presence("q").unwrap().awake, "asleep until it speaks");
    assert_eq!(held(&store), vec![records[0].clone()]);

    // New requests queue behind the restored one, with later ids.
    let later = server.read("q", p("/3442/0/120"), within(600));
    let wake = async {
        let records = persisted(&store, 2).await;
        assert!(records[1].id > exec_id);
        // The client wakes up: an Update to the restarted server.
        dev.server = addr;
        assert_eq!(dev.update(&[], None).await.code, Code::CHANGED);
    };
    let (later, ()) = tokio::join!(later, wake);
    assert_eq!(later.unwrap().code, Code::CONTENT);
    let first = dev.next_received().await;
    assert_eq!(
        (first.op(), first.payload),
        ((Code::POST, "/3442/0/0".into()), b"7".to_vec())
    );
    assert_eq!(dev.next_received().await.op(), (Code::GET, "/3442/0/120".into()));
    let (endpoint, id, operation, paths, result) = done(&mut events).await;
    assert_eq!(
        (endpoint.as_str(), id, operation, paths),
        ("q", exec_id, "Execute", vec![p("/3442/0/0")])
    );
    assert_eq!(result.unwrap().code, Code::CHANGED);
    assert_eq!(done(&mut events).await.4.unwrap().code, Code::CONTENT);
    assert!(held(&store).is_empty());
    server.shutdown().await;
}

/// The database file the child server of `a_held_request_survives_sigkill` uses.
const CHILD_DB: &str = "LWM2M_QUEUE_PERSIST_CHILD_DB";

/// Not a test on its own: `a_held_request_survives_sigkill` runs it in a child process (this test binary with
/// `--ignored --exact sigkill_child_server`). A server on the database prints its address, waits for `q` to
/// register and fall asleep, holds an Execute for it, prints `queued ID` once it is persisted, then waits to
/// be killed.
#[tokio::test]
#[ignore = "the child process of a_held_request_survives_sigkill"]
async fn sigkill_child_server() {
    let Ok(db) = std::env::var(CHILD_DB) else { return };
    let store = Arc::new(RedbRegistrationStore::open(&db).unwrap());
    let config = ServerConfig {
        store: store.clone(),
        awake_time: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let (server, mut events, addr) = start_server(config).await;
    println!("addr={addr}");
    next_event(&mut events, |e| matches!(e, Event::Registered { .. })).await;
    next_event(&mut events, |e| matches!(e, Event::Sleeping { .. })).await;
    let execute = server.execute("q", p("/3442/0/0"), Some("5"), within(3600));
    let report = async {
        let records = persisted(&store, 1).await;
        println!("queued {}", records[0].id);
        std::future::pending::<()>().await
    };
    let _ = tokio::join!(execute, report);
}

/// The child process, killed when dropped (also when the test fails); its stdout lines arrive on a channel.
struct Child {
    process: std::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Child {
    fn spawn(db: &std::path::Path) -> Child {
        use std::io::BufRead;
        let mut process = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sigkill_child_server",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB, db)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the test binary runs again");
        let stdout = process.stdout.take().unwrap();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Child { process, lines }
    }

    /// What follows `prefix` on the next output line that has it.
    async fn line_starting(&mut self, prefix: &str) -> String {
        loop {
            let l = tokio::time::timeout(WAIT, self.lines.recv())
                .await
                .expect("child output in time")
                .unwrap_or_else(|| panic!("the child ended before printing {prefix:?}"));
            // libtest prints `test NAME ... ` in front of the first line of the child's output.
            if let Some(at) = l.find(prefix) {
                return l[at + prefix.len()..].to_string();
            }
        }
    }

    /// SIGKILL: no shutdown, nothing flushed on the way out.
    fn kill(&mut self) -> std::process::ExitStatus {
        self.process.kill().expect("SIGKILL");
        self.process.wait().expect("the child is reaped")
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[tokio::test]
async fn a_held_request_survives_sigkill() {
    let dir = Scratch::new("queue-persist-sigkill");
    let mut child = Child::spawn(&dir.path(DB));
    let child_addr = child.line_starting("addr=").await.parse().unwrap();
    let mut dev = Device::start(child_addr).await;
    assert_eq!(
        dev.register(&["ep=q", "lwm2m=1.1", "Q", "lt=3600"]).await.code,
        Code::CREATED
    );
    let id: u64 = child.line_starting("queued ").await.parse().unwrap();
    let status = child.kill();
    assert!(!status.success(), "killed: {status:?}");
    assert!(dev.received.try_recv().is_err(), "nothing reached the sleeping client");

    // A new server on the same file: the request is back in the queue, sent when the client wakes.
    let store = Arc::new(RedbRegistrationStore::open(dir.path(DB)).unwrap());
    let records = held(&store);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].id, id);
    assert_eq!(
        records[0].request,
        Request::Execute {
            path: p("/3442/0/0"),
            arguments: Some("5".into())
        }
    );
    let config = ServerConfig {
        store: store.clone(),
        ..ServerConfig::default()
    };
    let (server, mut events, addr) = start_server(config).await;
    assert_eq!(server.queued_requests("q").len(), 1);
    dev.server = addr;
    assert_eq!(dev.update(&[], None).await.code, Code::CHANGED);
    let r = dev.next_received().await;
    assert_eq!((r.op(), r.payload), ((Code::POST, "/3442/0/0".into()), b"5".to_vec()));
    let (endpoint, done_id, operation, _, result) = done(&mut events).await;
    assert_eq!((endpoint.as_str(), done_id, operation), ("q", id, "Execute"));
    assert_eq!(result.unwrap().code, Code::CHANGED);
    assert!(held(&store).is_empty());
    assert!(server.queued_requests("q").is_empty());
    server.shutdown().await;
}
