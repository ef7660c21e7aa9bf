//! `lwm2m bench`: a load generator for a live LwM2M server (ours, Leshan or any other).
//!
//! It simulates `--devices` LwM2M devices over plain CoAP, each with its own UDP socket (so its own transport
//! address, as real devices have) or spread over `--sockets S` sockets. The devices run on lwm2m-coap's UDP
//! driver, so every request is a CON message retransmitted as RFC 7252 says (ACK_TIMEOUT `--ack-timeout-ms`,
//! random factor 1.5, MAX_RETRANSMIT `--max-retransmit`), and a 5.03 Service Unavailable is retried after its
//! Max-Age. The run goes in phases, each with at most `--concurrency` operations in flight:
//!
//! 1. Register (`POST /rd?ep=PREFIXi&lt=..&lwm2m=1.1&b=U`, payload `</1/0>,</3/0>,</3303/0>`);
//! 2. `--updates N` rounds of an empty Registration Update (`POST /rd/..`) by every registered device;
//! 3. `--duration-s D`: the devices stay registered and answer the server's requests (Read, Discover of their
//!    small data model: `/1/0`, `/3/0/0`, `/3/0/1`, `/3303/0/5700`, `/3303/0/5701`) while the operator loads
//!    the server's REST API; they send an Update before their lifetime runs out; Ctrl-C ends the hold early;
//! 4. De-register (`DELETE /rd/..`), unless `--deregister false`.
//!
//! Progress goes to stderr (one line updated every 500 ms on a terminal, a line every 2 s otherwise); the
//! summary (counts by outcome, rates from the first send to the last success, latency percentiles) to stdout,
//! as text or `--json`. The exit code is non-zero when any operation failed or was skipped, with the reason.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args};
use lwm2m_coap::message::opt;
use lwm2m_coap::{Code, DriverConfig, EndpointConfig, Incoming, Message, RequestError, UdpEndpoint, UdpHandle};
use lwm2m_core::format::{self, ContentFormat};
use lwm2m_core::model::NoModels;
use lwm2m_core::{Node, Path, Record, Value};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The objects every simulated device registers.
const REGISTER_PAYLOAD: &str = "</1/0>,</3/0>,</3303/0>";
/// A 5.03 Service Unavailable is retried this many times (after its Max-Age) before it counts as a failure.
const MAX_503_RETRIES: u32 = 3;
/// The longest wait honoured from a 5.03's Max-Age.
const MAX_503_WAIT: Duration = Duration::from_secs(5);
/// MAX_TRANSMIT_WAIT with the default parameters: a device updates this long before its lifetime ends.
const UPDATE_MARGIN_S: u64 = 93;

/// Arguments of `lwm2m bench`.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Every option can also be set with its environment variable (shown with each option); flags win.

PHASES: every device Registers; then sends --updates Registration Updates (rounds over all devices); then,
with --duration-s, stays registered and answers the server's Read and Discover requests (/3/0/0 and
/3303/0/5700 among others: load the server's REST API meanwhile, e.g. GET /api/clients/bench-0/3/0/0), sending
an Update before its lifetime ends; then De-registers. Ctrl-C ends the hold early (or skips the remaining work)
and still de-registers; Ctrl-C again exits at once.

OUTPUT: progress on stderr (a line updated every 500 ms on a terminal, a line every 2 s otherwise, nothing with
--quiet); the summary on stdout (text, or JSON with --json): operations ok and failed by response code or
timeout, operations per second from the first send to the last success, latency p50/p90/p99/max. The exit code
is 1 when any operation failed or was skipped, with the reason on stderr.

TUNING: --ack-timeout-ms is RFC 7252's ACK_TIMEOUT (2000 ms): on loopback or a LAN use 250 so that a lost
datagram costs 250-375 ms instead of 2-3 s. One socket per device (--sockets 0) is what real devices look like
to the server; --sockets S spreads the devices over S sockets (addresses), which is lighter for the generator
and tells the server's per-peer costs apart from its per-registration costs. Each socket is a file descriptor:
10 000 devices need `ulimit -n` above 10 000. The generator shares the machine's cores with the server when
both run on one host: the numbers then measure both.

EXAMPLES:
  lwm2m bench --server coap://127.0.0.1:5683 --devices 10000 --ack-timeout-ms 250
  lwm2m bench --server coap://127.0.0.1:5683 --devices 10000 --sockets 4 --updates 2 --json
  lwm2m bench --server coap://leshan.example:5683 --devices 1000 --duration-s 300 --endpoint-prefix load-
  LWM2M_BENCH_SERVER=coap://10.0.0.5:5683 LWM2M_BENCH_DEVICES=5000 lwm2m bench")]
pub struct BenchArgs {
    /// The LwM2M server to load: coap://HOST[:PORT] (plain CoAP; the port defaults to 5683).
    #[arg(long, env = "LWM2M_BENCH_SERVER", value_name = "URI")]
    server: String,
    /// Number of simulated devices.
    #[arg(long, env = "LWM2M_BENCH_DEVICES", value_name = "N", default_value_t = 1000)]
    devices: usize,
    /// Operations (Register, Update, De-register) in flight at once.
    #[arg(long, env = "LWM2M_BENCH_CONCURRENCY", value_name = "N", default_value_t = 256)]
    concurrency: usize,
    /// UDP sockets the devices use: 0 gives every device its own socket (its own address); S spreads them over
    /// S sockets.
    #[arg(long, env = "LWM2M_BENCH_SOCKETS", value_name = "S", default_value_t = 0)]
    sockets: usize,
    /// Endpoint Client Names are PREFIX0, PREFIX1, ...
    #[arg(
        long,
        env = "LWM2M_BENCH_ENDPOINT_PREFIX",
        value_name = "PREFIX",
        default_value = "bench-"
    )]
    endpoint_prefix: String,
    /// Registration lifetime in seconds (`lt`).
    #[arg(long, env = "LWM2M_BENCH_LIFETIME", value_name = "S", default_value_t = 300)]
    lifetime: u32,
    /// Registration Updates per device after registering (rounds over all devices).
    #[arg(long, env = "LWM2M_BENCH_UPDATES", value_name = "N", default_value_t = 0)]
    updates: u32,
    /// Keep the devices registered for this many seconds, answering the server's requests, before
    /// de-registering.
    #[arg(long, env = "LWM2M_BENCH_DURATION_S", value_name = "S", default_value_t = 0)]
    duration_s: u64,
    /// De-register every device at the end (`--deregister false` leaves them registered until their lifetime
    /// ends).
    #[arg(
        long,
        env = "LWM2M_BENCH_DEREGISTER",
        value_name = "BOOL",
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        action = ArgAction::Set,
        value_parser = BoolishValueParser::new()
    )]
    deregister: bool,
    /// CoAP ACK_TIMEOUT in milliseconds (RFC 7252: 2000); use 250 on loopback or a LAN.
    #[arg(long, env = "LWM2M_BENCH_ACK_TIMEOUT_MS", value_name = "MS", default_value_t = 2000)]
    ack_timeout_ms: u64,
    /// CoAP MAX_RETRANSMIT (RFC 7252: 4): retransmissions before a request times out.
    #[arg(long, env = "LWM2M_BENCH_MAX_RETRANSMIT", value_name = "N", default_value_t = 4)]
    max_retransmit: u32,
    /// Print the summary as JSON on stdout.
    #[arg(long, env = "LWM2M_BENCH_JSON")]
    json: bool,
    /// No progress on stderr.
    #[arg(long, env = "LWM2M_BENCH_QUIET")]
    quiet: bool,
}

/// The settings after merging flags, environment and defaults, checked.
#[derive(Debug, Clone, PartialEq)]
struct Settings {
    /// `--server` as given.
    uri: String,
    host: String,
    port: u16,
    devices: usize,
    concurrency: usize,
    /// Sockets actually opened (`devices` for one per device).
    sockets: usize,
    prefix: String,
    lifetime: u32,
    updates: u32,
    duration: Duration,
    deregister: bool,
    ack_timeout_ms: u64,
    max_retransmit: u32,
    json: bool,
    quiet: bool,
}

impl Settings {
    fn per_device_sockets(&self) -> bool {
        self.sockets == self.devices
    }
}

/// Checks and merges the arguments (clap has already applied the environment).
fn settings(args: &BenchArgs) -> Result<Settings> {
    let (host, port) = parse_server(&args.server)?;
    if args.devices == 0 {
        bail!("--devices 0: give at least 1 device");
    }
    if args.concurrency == 0 {
        bail!("--concurrency 0: give at least 1 operation in flight");
    }
    if args.ack_timeout_ms == 0 {
        bail!("--ack-timeout-ms 0: give a timeout in milliseconds, e.g. 2000 (RFC 7252) or 250 on loopback");
    }
    if args.lifetime == 0 {
        bail!("--lifetime 0: give the registration lifetime in seconds, e.g. 300");
    }
    if args.max_retransmit > 20 {
        bail!("--max-retransmit {}: at most 20 (RFC 7252 uses 4)", args.max_retransmit);
    }
    let sockets = if args.sockets == 0 {
        args.devices
    } else {
        args.sockets.min(args.devices)
    };
    Ok(Settings {
        uri: args.server.trim().to_string(),
        host,
        port,
        devices: args.devices,
        concurrency: args.concurrency.min(args.devices),
        sockets,
        prefix: args.endpoint_prefix.clone(),
        lifetime: args.lifetime,
        updates: args.updates,
        duration: Duration::from_secs(args.duration_s),
        deregister: args.deregister,
        ack_timeout_ms: args.ack_timeout_ms,
        max_retransmit: args.max_retransmit,
        json: args.json,
        quiet: args.quiet,
    })
}

/// Host and port of a `coap://HOST[:PORT][/]` URI (IPv6 literals in brackets).
fn parse_server(uri: &str) -> Result<(String, u16)> {
    let t = uri.trim();
    let lower = t.to_ascii_lowercase();
    let rest = if lower.starts_with("coap://") {
        &t["coap://".len()..]
    } else if lower.starts_with("coaps://") {
        bail!(
            "--server {t}: lwm2m bench speaks plain CoAP only (no DTLS); give the server's coap:// port, e.g. \
             coap://HOST:5683"
        );
    } else {
        bail!("--server {t:?} is not a coap:// URI; write coap://HOST:PORT, e.g. coap://127.0.0.1:5683");
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| anyhow!("--server {t}: an IPv6 address needs its closing ']', e.g. coap://[::1]:5683"))?;
        match after {
            "" => (h, None),
            p => (
                h,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| anyhow!("--server {t}: write the port after ']:', e.g. coap://[::1]:5683"))?,
                ),
            ),
        }
    } else {
        match authority.split_once(':') {
            Some((_, p)) if p.contains(':') => {
                bail!("--server {t}: put an IPv6 address in brackets, e.g. coap://[::1]:5683")
            }
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        bail!("--server {t}: no host; write coap://HOST:PORT, e.g. coap://127.0.0.1:5683");
    }
    let port = match port {
        None => 5683,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n != 0 => n,
            _ => bail!("--server {t}: the port {p:?} is not a number from 1 to 65535"),
        },
    };
    Ok((host.to_string(), port))
}

/// Runs `lwm2m bench`.
pub fn run(args: BenchArgs) -> Result<()> {
    let settings = settings(&args)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let summary = rt.block_on(bench(&settings));
    // The devices' driver tasks go with the runtime; nothing waits for them.
    rt.shutdown_background();
    let summary = summary?;
    let mut out = std::io::stdout().lock();
    if settings.json {
        let text = serde_json::to_string_pretty(&summary).context("encoding the summary")?;
        writeln!(out, "{text}").context("writing the summary")?;
    } else {
        write!(out, "{}", render_text(&summary)).context("writing the summary")?;
    }
    out.flush().context("writing the summary")?;
    if summary.problems.is_empty() {
        Ok(())
    } else {
        bail!("{}", summary.problems.join("; "))
    }
}

// ---------------------------------------------------------------------------------------------------------
// Summary

/// Latency percentiles of one operation, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Latency {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

/// The nearest-rank percentile `p` (0..=100) of `sorted` (ascending); `None` when empty.
fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl Latency {
    /// The percentiles of `samples` (sorted here); `None` when there are none.
    fn of(samples: &mut [Duration]) -> Option<Latency> {
        samples.sort_unstable();
        let total: Duration = samples.iter().sum();
        Some(Latency {
            p50: ms(percentile(samples, 50.0)?),
            p90: ms(percentile(samples, 90.0)?),
            p99: ms(percentile(samples, 99.0)?),
            max: ms(*samples.last()?),
            mean: ms(total / u32::try_from(samples.len()).unwrap_or(u32::MAX)),
        })
    }
}

/// The outcome of one kind of operation over the whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct PhaseSummary {
    /// Operations sent.
    attempted: u64,
    ok: u64,
    failed: u64,
    /// Failures by cause: `timeout`, `reset`, or a response code such as `4.03 Forbidden`.
    failures: BTreeMap<String, u64>,
    /// Operations not sent because of Ctrl-C.
    skipped: u64,
    /// 5.03 Service Unavailable answers that were retried.
    retries_503: u64,
    /// From the first send to the last success (summed over rounds).
    seconds: f64,
    /// `ok / seconds`.
    per_second: f64,
    /// Latency of the successful operations (first send to final answer, 5.03 retries included).
    latency_ms: Option<Latency>,
}

/// The hold phase (`--duration-s`).
#[derive(Debug, Clone, PartialEq, Serialize)]
struct HoldSummary {
    requested_s: u64,
    seconds: f64,
    /// Ended by Ctrl-C before `requested_s`.
    ended_early: bool,
    /// Devices registered during the hold.
    devices: u64,
    /// Requests from the server the devices answered during the hold.
    requests_answered: u64,
}

/// Everything `lwm2m bench` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Summary {
    version: &'static str,
    server: String,
    server_addr: String,
    /// Cores of the machine running the generator.
    cores: usize,
    devices: usize,
    sockets: usize,
    concurrency: usize,
    ack_timeout_ms: u64,
    max_retransmit: u32,
    lifetime_s: u32,
    updates_per_device: u32,
    register: PhaseSummary,
    update: Option<PhaseSummary>,
    /// Updates sent during the hold to keep the registrations alive.
    refresh: Option<PhaseSummary>,
    hold: Option<HoldSummary>,
    deregister: Option<PhaseSummary>,
    /// Requests from the server the devices answered during the whole run.
    requests_answered: u64,
    /// CON retransmissions of all devices.
    retransmissions: u64,
    /// Responses that matched no request of the devices (e.g. a reply the server replayed from its
    /// deduplication cache for an older exchange with the same address and Message ID).
    unmatched_responses: u64,
    /// Ctrl-C skipped work.
    interrupted: bool,
    elapsed_s: f64,
    /// Why the run failed (the exit code is non-zero when this is not empty).
    problems: Vec<String>,
}

/// Why one operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    Timeout,
    Reset,
    Code(Code),
    /// 2.01 Created without a Location-Path.
    NoLocation,
    Other(String),
}

impl Failure {
    fn key(&self) -> String {
        match self {
            Failure::Timeout => "timeout".into(),
            Failure::Reset => "reset".into(),
            Failure::Code(c) => match c.reason_phrase() {
                Some(n) => format!("{c} {n}"),
                None => c.to_string(),
            },
            Failure::NoLocation => "2.01 without Location-Path".into(),
            Failure::Other(e) => format!("error: {e}"),
        }
    }
}

/// One operation done by a worker.
#[derive(Debug)]
struct Sample {
    device: usize,
    result: Result<Vec<String>, Failure>,
    latency: Duration,
    /// When the answer came, from the start of the round.
    at: Duration,
    retries_503: u32,
}

/// One pass of an operation over a list of devices.
#[derive(Debug, Default)]
struct Round {
    samples: Vec<Sample>,
    /// Items not run because of Ctrl-C.
    skipped: u64,
}

/// Collects the rounds of one kind of operation.
#[derive(Debug, Default)]
struct PhaseAcc {
    attempted: u64,
    ok: u64,
    failures: BTreeMap<String, u64>,
    skipped: u64,
    retries_503: u64,
    active: Duration,
    latencies: Vec<Duration>,
}

impl PhaseAcc {
    fn add(&mut self, round: &Round) {
        let mut last_ok = None;
        for s in &round.samples {
            self.attempted += 1;
            self.retries_503 += u64::from(s.retries_503);
            match &s.result {
                Ok(_) => {
                    self.ok += 1;
                    self.latencies.push(s.latency);
                    last_ok = last_ok.max(Some(s.at));
                }
                Err(f) => *self.failures.entry(f.key()).or_default() += 1,
            }
        }
        self.skipped += round.skipped;
        self.active += last_ok.unwrap_or_default();
    }

    fn summary(mut self) -> PhaseSummary {
        let seconds = self.active.as_secs_f64();
        PhaseSummary {
            attempted: self.attempted,
            ok: self.ok,
            failed: self.attempted - self.ok,
            failures: self.failures,
            skipped: self.skipped,
            retries_503: self.retries_503,
            seconds: (seconds * 1e6).round() / 1e6,
            per_second: if seconds > 0.0 {
                (self.ok as f64 / seconds).round()
            } else {
                0.0
            },
            latency_ms: Latency::of(&mut self.latencies),
        }
    }
}

fn breakdown(p: &PhaseSummary) -> String {
    p.failures
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why the run counts as failed, each with what to do; empty when everything went well.
fn problems(s: &Summary) -> Vec<String> {
    let mut out = Vec::new();
    let r = &s.register;
    if r.attempted > 0 && r.ok == 0 && r.failures.get("timeout") == Some(&r.failed) {
        out.push(format!(
            "no answer from {} ({}): is the server running? check --server (every Register timed out; \
             --max-retransmit {}, --ack-timeout-ms {})",
            s.server, s.server_addr, s.max_retransmit, s.ack_timeout_ms
        ));
    } else {
        let phases = [
            ("registrations", Some(r)),
            ("updates", s.update.as_ref()),
            ("lifetime refresh updates", s.refresh.as_ref()),
            ("de-registrations", s.deregister.as_ref()),
        ];
        for (name, p) in phases {
            let Some(p) = p else { continue };
            if p.failed == 0 {
                continue;
            }
            let mut m = format!("{} of {} {name} failed ({})", p.failed, p.attempted, breakdown(p));
            // Late answers to retransmissions match nothing too, but there is at most one per retransmission;
            // more unmatched answers than that are replays of another exchange's answer.
            if p.failures.contains_key("timeout") && s.unmatched_responses > s.retransmissions {
                m.push_str(&format!(
                    ": {} answers matched no request (more than the {} retransmissions): the server replayed \
                     answers from its deduplication cache, as it does when a port of this run was used by an \
                     earlier run within EXCHANGE_LIFETIME (247 s) with the same Message ID; wait 4 minutes between \
                     runs against one server (or restart it), or use --sockets",
                    s.unmatched_responses, s.retransmissions
                ));
            } else if p.failures.contains_key("timeout") {
                m.push_str(
                    ": timeouts mean the server is overloaded or datagrams were lost; lower --concurrency or raise \
                     --ack-timeout-ms",
                );
            } else if p.failures.keys().any(|k| k.starts_with("4.")) {
                m.push_str(": the server refused them; its log says why");
            }
            out.push(m);
        }
    }
    if s.interrupted {
        let skipped: u64 = [Some(&s.register), s.update.as_ref()]
            .into_iter()
            .flatten()
            .map(|p| p.skipped)
            .sum();
        out.push(format!("interrupted by Ctrl-C: {skipped} operations were not sent"));
    }
    out
}

fn render_text(s: &Summary) -> String {
    let mut o = String::new();
    let cores = format!("{} core{}", s.cores, if s.cores == 1 { "" } else { "s" });
    o.push_str(&format!(
        "lwm2m bench {} against {} ({}) on {cores}\n",
        s.version, s.server, s.server_addr
    ));
    let sockets = if s.sockets == s.devices {
        "one socket per device".to_string()
    } else {
        format!("{} sockets", s.sockets)
    };
    o.push_str(&format!(
        "  {} devices, {sockets}, concurrency {}, ACK timeout {} ms, MAX_RETRANSMIT {}, lifetime {} s\n\n",
        s.devices, s.concurrency, s.ack_timeout_ms, s.max_retransmit, s.lifetime_s
    ));
    o.push_str(&format!(
        "{:<11}{:>8}{:>8}{:>10}{:>9}{:>9}{:>9}{:>9}{:>9}\n",
        "operation", "ok", "failed", "seconds", "ops/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    ));
    let phases = [
        ("register", Some(&s.register)),
        ("update", s.update.as_ref()),
        ("refresh", s.refresh.as_ref()),
        ("deregister", s.deregister.as_ref()),
    ];
    for (name, p) in phases {
        let Some(p) = p else { continue };
        let lat = match &p.latency_ms {
            Some(l) => format!("{:>9.1}{:>9.1}{:>9.1}{:>9.1}", l.p50, l.p90, l.p99, l.max),
            None => format!("{:>9}{:>9}{:>9}{:>9}", "-", "-", "-", "-"),
        };
        o.push_str(&format!(
            "{name:<11}{:>8}{:>8}{:>10.3}{:>9.0}{lat}\n",
            p.ok, p.failed, p.seconds, p.per_second
        ));
    }
    for (name, p) in phases {
        let Some(p) = p else { continue };
        if p.failed > 0 {
            o.push_str(&format!("  {name} failures: {}\n", breakdown(p)));
        }
        if p.skipped > 0 {
            o.push_str(&format!("  {name}: {} skipped (Ctrl-C)\n", p.skipped));
        }
    }
    if let Some(h) = &s.hold {
        o.push_str(&format!(
            "hold: {:.1} s of {} s with {} devices registered, {} requests from the server answered{}\n",
            h.seconds,
            h.requested_s,
            h.devices,
            h.requests_answered,
            if h.ended_early { " (ended by Ctrl-C)" } else { "" }
        ));
    }
    let retries_503: u64 = phases.iter().filter_map(|(_, p)| p.map(|p| p.retries_503)).sum();
    o.push_str(&format!(
        "CoAP retransmissions: {}; unmatched answers: {}; 5.03 retries: {retries_503}; requests from the server \
         answered: {}; total {:.3} s\n",
        s.retransmissions, s.unmatched_responses, s.requests_answered, s.elapsed_s
    ));
    if s.problems.is_empty() {
        o.push_str("result: ok\n");
    } else {
        o.push_str(&format!("result: FAILED: {}\n", s.problems.join("; ")));
    }
    o
}

// ---------------------------------------------------------------------------------------------------------
// Progress

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProgressMode {
    Off,
    /// A line rewritten in place every 500 ms.
    Terminal,
    /// A new line every 2 s.
    Log,
}

#[derive(Debug)]
enum View {
    Idle,
    Work {
        name: &'static str,
        started: Instant,
        total: u64,
    },
    Hold {
        started: Instant,
        requested: Duration,
        devices: u64,
        answered_before: u64,
    },
}

/// Counters of the running phase and the progress line on stderr.
#[derive(Debug)]
struct Progress {
    mode: ProgressMode,
    ok: AtomicU64,
    failed: AtomicU64,
    /// Requests from the server answered (the whole run).
    answered: AtomicU64,
    /// The phase, and whether a terminal line is open (not ended by a newline).
    view: Mutex<(View, bool)>,
}

impl Progress {
    fn new(mode: ProgressMode) -> Progress {
        Progress {
            mode,
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            view: Mutex::new((View::Idle, false)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (View, bool)> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, view: View) {
        self.ok.store(0, Ordering::Relaxed);
        self.failed.store(0, Ordering::Relaxed);
        self.lock().0 = view;
    }

    /// Prints `line` on its own line (after closing an open progress line).
    fn note(&self, line: &str) {
        if self.mode == ProgressMode::Off {
            return;
        }
        let mut v = self.lock();
        let mut err = std::io::stderr().lock();
        if v.1 {
            let _ = write!(err, "\r\x1b[2K");
            v.1 = false;
        }
        let _ = writeln!(err, "{line}");
    }

    /// Ends the current phase with a final line.
    fn finish(&self, line: &str) {
        self.lock().0 = View::Idle;
        self.note(line);
    }

    /// The current progress line, if a phase runs.
    fn line(&self, view: &View) -> Option<String> {
        let (ok, failed) = (self.ok.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed));
        match view {
            View::Idle => None,
            View::Work { name, started, total } => {
                let secs = started.elapsed().as_secs_f64();
                let rate = if secs > 0.0 { ok as f64 / secs } else { 0.0 };
                Some(format!("{name}: {ok}/{total} ok, {failed} failed, {rate:.0}/s"))
            }
            View::Hold {
                started,
                requested,
                devices,
                answered_before,
            } => Some(format!(
                "hold: {} s of {} s, {devices} devices registered, {} requests answered",
                started.elapsed().as_secs(),
                requested.as_secs(),
                self.answered.load(Ordering::Relaxed).saturating_sub(*answered_before)
            )),
        }
    }

    /// Shows the progress line until the runtime stops.
    async fn report(self: Arc<Progress>) {
        let period = match self.mode {
            ProgressMode::Off => return,
            ProgressMode::Terminal => Duration::from_millis(500),
            ProgressMode::Log => Duration::from_secs(2),
        };
        let mut tick = tokio::time::interval_at(Instant::now() + period, period);
        loop {
            tick.tick().await;
            let mut v = self.lock();
            let Some(line) = self.line(&v.0) else { continue };
            let mut err = std::io::stderr().lock();
            if self.mode == ProgressMode::Terminal {
                let _ = write!(err, "\r\x1b[2K{line}");
                let _ = err.flush();
                v.1 = true;
            } else {
                let _ = writeln!(err, "{line}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// The simulated devices

/// What a device knows: a few resources of the Server, Device and Temperature objects.
fn device_records(lifetime: u32) -> Vec<Record> {
    let r = |o, i, r, v| Record::new(Path::resource(o, i, r), v);
    vec![
        r(1, 0, 0, Value::Integer(1)),
        r(1, 0, 1, Value::Integer(i64::from(lifetime))),
        r(1, 0, 7, Value::String("U".into())),
        r(3, 0, 0, Value::String("lwm2m-rs".into())),
        r(3, 0, 1, Value::String("bench".into())),
        r(3303, 0, 5700, Value::Float(21.5)),
        r(3303, 0, 5701, Value::String("Cel".into())),
    ]
}

/// A device's answer to a request from the server: Read (text for a resource, TLV otherwise, or the Accept
/// format) and Discover of `records`; 4.05 for anything else.
fn answer(req: &Message, records: &[Record]) -> Message {
    let reply = |code| Message::response_to(req, code);
    if req.code != Code::GET {
        return reply(Code::METHOD_NOT_ALLOWED);
    }
    let Ok(path) = req.uri_path_string().parse::<Path>() else {
        return reply(Code::NOT_FOUND);
    };
    if path.is_root() {
        return reply(Code::METHOD_NOT_ALLOWED);
    }
    let under: Vec<&Record> = records.iter().filter(|r| path.starts(&r.path)).collect();
    if under.is_empty() {
        return reply(Code::NOT_FOUND);
    }
    let link = ContentFormat::Link.code();
    if req.accept() == Some(link) {
        // Discover: the path itself and every instance and resource under it.
        let mut paths = BTreeSet::new();
        paths.insert(path);
        for r in &under {
            for len in path.len() + 1..=r.path.len() {
                if let Ok(p) = Path::from_ids(&r.path.ids()[..len]) {
                    paths.insert(p);
                }
            }
        }
        let body: Vec<String> = paths.iter().map(|p| format!("<{p}>")).collect();
        return reply(Code::CONTENT)
            .with_content_format(link)
            .with_payload(body.join(","));
    }
    let format = match req.accept() {
        Some(c) => match ContentFormat::from_code(c) {
            Some(f) => f,
            None => return reply(Code::NOT_ACCEPTABLE),
        },
        None if path.is_resource() => ContentFormat::Text,
        None => ContentFormat::Tlv,
    };
    let encoded = Node::from_records(format, &path, under.iter().copied(), &NoModels)
        .and_then(|node| format::encode(format, &path, &node));
    match encoded {
        Ok(bytes) => reply(Code::CONTENT)
            .with_content_format(format.code())
            .with_payload(bytes),
        Err(_) => reply(Code::NOT_ACCEPTABLE),
    }
}

/// Answers the server's requests arriving on one socket.
async fn serve_device(
    handle: UdpHandle,
    mut incoming: mpsc::Receiver<Incoming>,
    records: Arc<Vec<Record>>,
    progress: Arc<Progress>,
) {
    while let Some(ev) = incoming.recv().await {
        if let Incoming::Request(r) = ev {
            if handle.respond(r.responder, answer(&r.request, &records)).is_err() {
                return;
            }
            progress.answered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One kind of operation of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Register,
    Update,
    Refresh,
    Deregister,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Register => "register",
            Op::Update => "update",
            Op::Refresh => "refresh",
            Op::Deregister => "deregister",
        }
    }
}

/// The generator's shared state.
struct Bench {
    settings: Settings,
    server: SocketAddr,
    handles: Vec<UdpHandle>,
    /// The registration's location of each device (`None`: not registered).
    locations: Mutex<Vec<Option<Vec<String>>>>,
    progress: Arc<Progress>,
    stop: watch::Receiver<bool>,
}

impl Bench {
    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    fn locations(&self) -> std::sync::MutexGuard<'_, Vec<Option<Vec<String>>>> {
        self.locations.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn registered(&self) -> Vec<usize> {
        self.locations()
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.as_ref().map(|_| i))
            .collect()
    }

    fn request_for(&self, op: Op, device: usize) -> Option<Message> {
        match op {
            Op::Register => {
                let mut m = Message::request(Code::POST, "/rd")
                    .with_content_format(ContentFormat::Link.code())
                    .with_payload(REGISTER_PAYLOAD);
                m.add_uri_query(&format!("ep={}{device}", self.settings.prefix));
                m.add_uri_query(&format!("lt={}", self.settings.lifetime));
                m.add_uri_query("lwm2m=1.1");
                m.add_uri_query("b=U");
                Some(m)
            }
            Op::Update | Op::Refresh | Op::Deregister => {
                let location = self.locations().get(device)?.clone()?;
                let code = if op == Op::Deregister { Code::DELETE } else { Code::POST };
                let mut m = Message::request(code, "/");
                for seg in location {
                    m.options.push(opt::URI_PATH, seg.into_bytes());
                }
                Some(m)
            }
        }
    }

    /// Runs `op` for `device`: the location path on success (Register), with the 5.03 retries made.
    async fn operate(&self, op: Op, device: usize) -> (Result<Vec<String>, Failure>, u32) {
        let Some(request) = self.request_for(op, device) else {
            return (Err(Failure::Other("not registered".into())), 0);
        };
        let expected = match op {
            Op::Register => Code::CREATED,
            Op::Update | Op::Refresh => Code::CHANGED,
            Op::Deregister => Code::DELETED,
        };
        let handle = &self.handles[device % self.handles.len()];
        let mut retries = 0;
        loop {
            let result = match handle.request(self.server, request.clone()).await {
                Ok(resp) if resp.code == expected => {
                    let location = resp.location_path();
                    if op == Op::Register && location.is_empty() {
                        Err(Failure::NoLocation)
                    } else {
                        Ok(location)
                    }
                }
                Ok(resp) if resp.code == Code::SERVICE_UNAVAILABLE && retries < MAX_503_RETRIES => {
                    retries += 1;
                    let wait = Duration::from_secs(u64::from(resp.max_age().unwrap_or(1).max(1)));
                    tokio::time::sleep(wait.min(MAX_503_WAIT)).await;
                    continue;
                }
                Ok(resp) => Err(Failure::Code(resp.code)),
                Err(RequestError::Timeout) => Err(Failure::Timeout),
                Err(RequestError::Reset) => Err(Failure::Reset),
                Err(e) => Err(Failure::Other(e.to_string())),
            };
            return (result, retries);
        }
    }

    /// Runs `op` over `items` (device indexes) with `--concurrency` workers. With `stoppable`, Ctrl-C ends the
    /// round early.
    async fn round(self: &Arc<Self>, op: Op, items: Vec<usize>, stoppable: bool) -> Result<Round> {
        let total = items.len();
        let started = Instant::now();
        self.progress.set(View::Work {
            name: op.name(),
            started,
            total: total as u64,
        });
        let items = Arc::new(items);
        let next = Arc::new(AtomicUsize::new(0));
        let mut workers = JoinSet::new();
        for _ in 0..self.settings.concurrency.min(total) {
            let (bench, items, next) = (self.clone(), items.clone(), next.clone());
            workers.spawn(async move {
                let mut out = Vec::new();
                loop {
                    if stoppable && bench.stopped() {
                        break;
                    }
                    let Some(&device) = items.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    let t0 = Instant::now();
                    let (result, retries_503) = bench.operate(op, device).await;
                    let counter = if result.is_ok() {
                        &bench.progress.ok
                    } else {
                        &bench.progress.failed
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    out.push(Sample {
                        device,
                        result,
                        latency: t0.elapsed(),
                        at: started.elapsed(),
                        retries_503,
                    });
                }
                out
            });
        }
        let mut samples = Vec::with_capacity(total);
        while let Some(done) = workers.join_next().await {
            samples.extend(done.map_err(|e| anyhow!("a {} worker failed: {e}", op.name()))?);
        }
        let ok = samples.iter().filter(|s| s.result.is_ok()).count();
        let last = samples.iter().filter(|s| s.result.is_ok()).map(|s| s.at).max();
        let rate = match last {
            Some(t) if !t.is_zero() => format!(", {:.0}/s", ok as f64 / t.as_secs_f64()),
            _ => String::new(),
        };
        self.progress.finish(&format!(
            "{}: {ok}/{total} ok, {} failed in {:.3} s{rate}",
            op.name(),
            samples.len() - ok,
            started.elapsed().as_secs_f64()
        ));
        // The devices' registrations as the server now sees them.
        {
            let mut locations = self.locations();
            for s in &samples {
                let Some(slot) = locations.get_mut(s.device) else {
                    continue;
                };
                match (op, &s.result) {
                    (Op::Register, Ok(l)) => *slot = Some(l.clone()),
                    (Op::Deregister, Ok(_)) => *slot = None,
                    // The server no longer knows the registration.
                    (_, Err(Failure::Code(Code::NOT_FOUND))) => *slot = None,
                    _ => {}
                }
            }
        }
        Ok(Round {
            skipped: (total - samples.len()) as u64,
            samples,
        })
    }
}

/// When a device refreshes its registration during the hold: MAX_TRANSMIT_WAIT (93 s) before the lifetime
/// ends, or at half of a lifetime shorter than twice that.
fn refresh_interval(lifetime: u32) -> Duration {
    let lt = u64::from(lifetime);
    let s = if lt >= 2 * UPDATE_MARGIN_S {
        lt - UPDATE_MARGIN_S
    } else {
        lt / 2
    };
    Duration::from_secs(s.max(1))
}

/// Opens the devices' sockets and starts answering the server on each.
async fn open_sockets(settings: &Settings, server: SocketAddr, progress: &Arc<Progress>) -> Result<Vec<UdpHandle>> {
    let per_device = settings.per_device_sockets();
    let config = EndpointConfig {
        ack_timeout_ms: settings.ack_timeout_ms,
        max_retransmit: settings.max_retransmit,
        // A shared socket carries many devices: one exchange per device, not one per socket.
        nstart: if per_device { 1 } else { settings.concurrency },
        ..EndpointConfig::default()
    };
    let driver = if per_device {
        // Thousands of these: small buffers (the server's requests to a device are small).
        DriverConfig {
            incoming_capacity: 16,
            observation_capacity: 1,
            max_datagram: 4096,
            batch: 16,
        }
    } else {
        DriverConfig::default()
    };
    let bind: SocketAddr = match server.ip() {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let records = Arc::new(device_records(settings.lifetime));
    let mut handles = Vec::with_capacity(settings.sockets);
    for i in 0..settings.sockets {
        let (handle, incoming) = UdpEndpoint::bind_with(bind, config.clone(), driver.clone())
            .await
            .map_err(|e| {
                let hint = if e.raw_os_error() == Some(24) {
                    "too many open files: raise the limit (`ulimit -n 65536`) or share sockets with --sockets 4"
                } else {
                    "use fewer sockets (--sockets 4) or check the local network configuration"
                };
                anyhow!(
                    "cannot open UDP socket {} of {} on {bind}: {e}: {hint}",
                    i + 1,
                    settings.sockets
                )
            })?;
        tokio::spawn(serve_device(
            handle.clone(),
            incoming,
            records.clone(),
            progress.clone(),
        ));
        handles.push(handle);
    }
    Ok(handles)
}

async fn resolve(settings: &Settings) -> Result<SocketAddr> {
    let mut addrs = tokio::net::lookup_host((settings.host.as_str(), settings.port))
        .await
        .with_context(|| format!("cannot resolve the host of --server {}: check the name", settings.uri))?;
    addrs
        .next()
        .ok_or_else(|| anyhow!("--server {}: the host has no address; check the name", settings.uri))
}

/// Ctrl-C, caught from the moment this is created (so no interrupt is missed once the run has started).
struct Interrupts(#[cfg(unix)] tokio::signal::unix::Signal);

impl Interrupts {
    fn new() -> std::io::Result<Interrupts> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Interrupts(signal(SignalKind::interrupt())?))
        }
        #[cfg(not(unix))]
        {
            Ok(Interrupts())
        }
    }

    /// Waits for the next Ctrl-C; false if no more can come.
    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        {
            self.0.recv().await.is_some()
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.is_ok()
        }
    }
}

/// Runs the phases; the summary with its problems.
async fn bench(settings: &Settings) -> Result<Summary> {
    let server = resolve(settings).await?;
    let mode = if settings.quiet {
        ProgressMode::Off
    } else if std::io::stderr().is_terminal() {
        ProgressMode::Terminal
    } else {
        ProgressMode::Log
    };
    let progress = Arc::new(Progress::new(mode));
    tokio::spawn(progress.clone().report());
    let (stop_tx, stop) = watch::channel(false);
    {
        let progress = progress.clone();
        let mut interrupts = Interrupts::new().context("cannot listen for Ctrl-C")?;
        tokio::spawn(async move {
            if !interrupts.next().await {
                return;
            }
            progress.note("Ctrl-C: stopping; the registered devices de-register (Ctrl-C again exits at once)");
            let _ = stop_tx.send(true);
            if interrupts.next().await {
                eprintln!("Ctrl-C again: exiting without de-registering");
                std::process::exit(130);
            }
        });
    }

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sockets = if settings.per_device_sockets() {
        "one socket per device".to_string()
    } else {
        format!("{} sockets", settings.sockets)
    };
    progress.note(&format!(
        "lwm2m bench: {} devices ({sockets}) against {} ({server}), concurrency {}, ACK timeout {} ms, {cores} cores",
        settings.devices, settings.uri, settings.concurrency, settings.ack_timeout_ms
    ));
    let t0 = Instant::now();
    let handles = open_sockets(settings, server, &progress).await?;
    let bench = Arc::new(Bench {
        settings: settings.clone(),
        server,
        handles,
        locations: Mutex::new(vec![None; settings.devices]),
        progress: progress.clone(),
        stop,
    });

    let mut register = PhaseAcc::default();
    register.add(&bench.round(Op::Register, (0..settings.devices).collect(), true).await?);
    let mut interrupted = register.skipped > 0;

    let mut update = (settings.updates > 0).then(PhaseAcc::default);
    if let Some(acc) = update.as_mut() {
        let registered = bench.registered();
        for _ in 0..settings.updates {
            if bench.stopped() || registered.is_empty() {
                acc.skipped += registered.len() as u64;
                continue;
            }
            // The devices whose registration is still known.
            let live: BTreeSet<usize> = bench.registered().into_iter().collect();
            let items: Vec<usize> = registered.iter().copied().filter(|d| live.contains(d)).collect();
            acc.add(&bench.round(Op::Update, items, true).await?);
        }
        interrupted |= acc.skipped > 0;
    }

    let mut refresh = None;
    let mut hold = None;
    if !settings.duration.is_zero() && !bench.stopped() && !bench.registered().is_empty() {
        let started = Instant::now();
        let deadline = started + settings.duration;
        let answered_before = progress.answered.load(Ordering::Relaxed);
        let interval = refresh_interval(settings.lifetime);
        let mut next_refresh = started + interval;
        let mut stop = bench.stop.clone();
        let mut ended_early = false;
        let devices = bench.registered().len() as u64;
        progress.note(&format!(
            "holding {devices} registered devices for {} s: they answer the server's reads (/3/0/0, /3303/0/5700, \
             ...); Ctrl-C ends the hold",
            settings.duration.as_secs()
        ));
        loop {
            progress.set(View::Hold {
                started,
                requested: settings.duration,
                devices: bench.registered().len() as u64,
                answered_before,
            });
            let wake = deadline.min(next_refresh);
            let stopped = async {
                if stop.wait_for(|s| *s).await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = stopped => {
                    ended_early = true;
                    break;
                }
            }
            if wake >= deadline {
                break;
            }
            let acc = refresh.get_or_insert_with(PhaseAcc::default);
            acc.add(&bench.round(Op::Refresh, bench.registered(), true).await?);
            next_refresh = Instant::now() + interval;
        }
        let answered = progress
            .answered
            .load(Ordering::Relaxed)
            .saturating_sub(answered_before);
        progress.finish(&format!(
            "hold: {:.1} s, {answered} requests from the server answered",
            started.elapsed().as_secs_f64()
        ));
        hold = Some(HoldSummary {
            requested_s: settings.duration.as_secs(),
            seconds: (started.elapsed().as_secs_f64() * 1e3).round() / 1e3,
            ended_early,
            devices,
            requests_answered: answered,
        });
    }
    let mut deregister = None;
    if settings.deregister {
        let registered = bench.registered();
        if !registered.is_empty() {
            let mut acc = PhaseAcc::default();
            acc.add(&bench.round(Op::Deregister, registered, false).await?);
            deregister = Some(acc);
        }
    }

    let (mut retransmissions, mut unmatched_responses) = (0, 0);
    for h in &bench.handles {
        if let Ok(stats) = h.endpoint_stats().await {
            retransmissions += stats.retransmissions;
            unmatched_responses += stats.unmatched;
        }
    }
    let mut summary = Summary {
        version: env!("CARGO_PKG_VERSION"),
        server: settings.uri.clone(),
        server_addr: server.to_string(),
        cores,
        devices: settings.devices,
        sockets: settings.sockets,
        concurrency: settings.concurrency,
        ack_timeout_ms: settings.ack_timeout_ms,
        max_retransmit: settings.max_retransmit,
        lifetime_s: settings.lifetime,
        updates_per_device: settings.updates,
        register: register.summary(),
        update: update.map(PhaseAcc::summary),
        refresh: refresh.map(PhaseAcc::summary),
        hold,
        deregister: deregister.map(PhaseAcc::summary),
        requests_answered: progress.answered.load(Ordering::Relaxed),
        retransmissions,
        unmatched_responses,
        interrupted,
        elapsed_s: (t0.elapsed().as_secs_f64() * 1e3).round() / 1e3,
        problems: Vec::new(),
    };
    summary.problems = problems(&summary);
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(argv: &[&str]) -> Result<Settings> {
        let m = Cli::command()
            .try_get_matches_from(std::iter::once("bench").chain(argv.iter().copied()))
            .map_err(|e| anyhow!("{e}"))?;
        settings(&Cli::from_arg_matches(&m).map_err(|e| anyhow!("{e}"))?.args)
    }

    fn ms_list(v: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        v.into_iter().map(Duration::from_millis).collect()
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let sorted = ms_list(1..=100);
        assert_eq!(percentile(&sorted, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&sorted, 90.0), Some(Duration::from_millis(90)));
        assert_eq!(percentile(&sorted, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&sorted, 100.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&sorted, 0.0), Some(Duration::from_millis(1)));
        // Ten samples: p99 is the largest, p50 the fifth.
        let ten = ms_list([10, 20, 30, 40, 50, 60, 70, 80, 90, 1000]);
        assert_eq!(percentile(&ten, 99.0), Some(Duration::from_millis(1000)));
        assert_eq!(percentile(&ten, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&ten, 90.0), Some(Duration::from_millis(90)));
        assert_eq!(percentile(&ms_list([7]), 50.0), Some(Duration::from_millis(7)));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn latency_sorts_and_summarises() {
        let mut samples = ms_list([5, 1, 4, 2, 3]);
        let l = Latency::of(&mut samples).unwrap();
        assert_eq!((l.p50, l.p90, l.p99, l.max, l.mean), (3.0, 5.0, 5.0, 5.0, 3.0));
        assert_eq!(Latency::of(&mut []), None);
        let mut fine = vec![Duration::from_micros(1_234_567)];
        assert_eq!(Latency::of(&mut fine).unwrap().max, 1234.567);
    }

    fn sample(device: usize, result: Result<Vec<String>, Failure>, latency_ms: u64, at_ms: u64) -> Sample {
        Sample {
            device,
            result,
            latency: Duration::from_millis(latency_ms),
            at: Duration::from_millis(at_ms),
            retries_503: 0,
        }
    }

    #[test]
    fn a_phase_counts_outcomes_and_rates_from_first_send_to_last_success() {
        let mut acc = PhaseAcc::default();
        let mut first = Round {
            samples: vec![
                sample(0, Ok(vec!["rd".into(), "a".into()]), 10, 100),
                sample(1, Ok(vec![]), 30, 500),
                sample(2, Err(Failure::Timeout), 900, 900),
                sample(3, Err(Failure::Code(Code::FORBIDDEN)), 5, 50),
            ],
            skipped: 0,
        };
        first.samples[1].retries_503 = 2;
        acc.add(&first);
        // A second round (e.g. another Update round): its time adds up.
        acc.add(&Round {
            samples: vec![sample(0, Ok(vec![]), 20, 500), sample(1, Err(Failure::Timeout), 1, 1)],
            skipped: 3,
        });
        let p = acc.summary();
        assert_eq!((p.attempted, p.ok, p.failed, p.skipped, p.retries_503), (6, 3, 3, 3, 2));
        assert_eq!(p.failures.get("timeout"), Some(&2));
        assert_eq!(p.failures.get("4.03 Forbidden"), Some(&1));
        // 3 successes over 0.5 s + 0.5 s: the failure at 0.9 s does not stretch the time.
        assert_eq!((p.seconds, p.per_second), (1.0, 3.0));
        let l = p.latency_ms.unwrap();
        assert_eq!((l.p50, l.max), (20.0, 30.0));
        let empty = PhaseAcc::default().summary();
        assert_eq!((empty.per_second, empty.latency_ms), (0.0, None));
    }

    #[test]
    fn failure_keys_name_the_cause() {
        assert_eq!(Failure::Timeout.key(), "timeout");
        assert_eq!(Failure::Reset.key(), "reset");
        assert_eq!(Failure::Code(Code::BAD_REQUEST).key(), "4.00 Bad Request");
        assert_eq!(Failure::Code(Code::new(4, 29)).key(), "4.29");
        assert_eq!(Failure::NoLocation.key(), "2.01 without Location-Path");
    }

    fn phase(ok: u64, failures: &[(&str, u64)]) -> PhaseSummary {
        let failures: BTreeMap<String, u64> = failures.iter().map(|(k, n)| (k.to_string(), *n)).collect();
        let failed = failures.values().sum();
        PhaseSummary {
            attempted: ok + failed,
            ok,
            failed,
            failures,
            skipped: 0,
            retries_503: 0,
            seconds: 1.0,
            per_second: ok as f64,
            latency_ms: Latency::of(&mut ms_list([1, 2, 3])),
        }
    }

    fn summary(register: PhaseSummary) -> Summary {
        Summary {
            version: "0.0.0",
            server: "coap://127.0.0.1:5683".into(),
            server_addr: "127.0.0.1:5683".into(),
            cores: 2,
            devices: 3,
            sockets: 3,
            concurrency: 3,
            ack_timeout_ms: 250,
            max_retransmit: 4,
            lifetime_s: 300,
            updates_per_device: 0,
            register,
            update: None,
            refresh: None,
            hold: None,
            deregister: None,
            requests_answered: 0,
            retransmissions: 0,
            unmatched_responses: 0,
            interrupted: false,
            elapsed_s: 1.0,
            problems: Vec::new(),
        }
    }

    #[test]
    fn problems_name_the_cause_and_the_fix() {
        let s = summary(phase(3, &[]));
        assert!(problems(&s).is_empty());

        let s = summary(phase(0, &[("timeout", 3)]));
        let p = problems(&s);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with(
                "no answer from coap://127.0.0.1:5683 (127.0.0.1:5683): is the server running? check --server"
            ),
            "{p:?}"
        );

        let mut s = summary(phase(1, &[("timeout", 1), ("4.03 Forbidden", 1)]));
        s.deregister = Some(phase(0, &[("4.04 Not Found", 1)]));
        let p = problems(&s);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].starts_with("2 of 3 registrations failed (1 4.03 Forbidden, 1 timeout)"),
            "{p:?}"
        );
        assert!(p[0].contains("lower --concurrency or raise --ack-timeout-ms"), "{p:?}");
        assert!(
            p[1].starts_with("1 of 1 de-registrations failed (1 4.04 Not Found)"),
            "{p:?}"
        );
        assert!(p[1].contains("refused"), "{p:?}");

        // Timeouts with answers that matched nothing: the server's deduplication cache, not overload.
        let mut s = summary(phase(2, &[("timeout", 1)]));
        (s.unmatched_responses, s.retransmissions) = (5, 4);
        let p = problems(&s);
        assert!(p[0].contains("5 answers matched no request"), "{p:?}");
        assert!(p[0].contains("EXCHANGE_LIFETIME"), "{p:?}");
        // As many as the retransmissions: late duplicates of an overloaded server.
        s.unmatched_responses = 4;
        let p = problems(&s);
        assert!(p[0].contains("lower --concurrency"), "{p:?}");

        // Every Register refused: not "no answer".
        let p = problems(&summary(phase(0, &[("4.00 Bad Request", 3)])));
        assert!(p[0].starts_with("3 of 3 registrations failed"), "{p:?}");

        let mut s = summary(phase(2, &[]));
        s.register.skipped = 1;
        s.interrupted = true;
        assert_eq!(problems(&s), ["interrupted by Ctrl-C: 1 operations were not sent"]);
    }

    #[test]
    fn the_text_summary_shows_cores_rates_and_latencies() {
        let mut s = summary(phase(3, &[]));
        s.update = Some(phase(2, &[("timeout", 1)]));
        s.hold = Some(HoldSummary {
            requested_s: 60,
            seconds: 12.5,
            ended_early: true,
            devices: 3,
            requests_answered: 7,
        });
        s.problems = problems(&s);
        let t = render_text(&s);
        assert!(
            t.starts_with("lwm2m bench 0.0.0 against coap://127.0.0.1:5683 (127.0.0.1:5683) on 2 cores\n"),
            "{t}"
        );
        assert!(
            t.contains("3 devices, one socket per device, concurrency 3, ACK timeout 250 ms"),
            "{t}"
        );
        assert!(t.contains("p50 ms"), "{t}");
        let register = t.lines().find(|l| l.starts_with("register ")).unwrap();
        assert_eq!(
            register.split_whitespace().collect::<Vec<_>>(),
            ["register", "3", "0", "1.000", "3", "2.0", "3.0", "3.0", "3.0"]
        );
        assert!(t.contains("  update failures: 1 timeout\n"), "{t}");
        assert!(
            t.contains("hold: 12.5 s of 60 s with 3 devices registered, 7 requests"),
            "{t}"
        );
        assert!(t.contains("(ended by Ctrl-C)"), "{t}");
        assert!(t.contains("result: FAILED: 1 of 3 updates failed (1 timeout)"), "{t}");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["cores"], 2);
        assert_eq!(json["register"]["ok"], 3);
        assert_eq!(json["update"]["failures"]["timeout"], 1);
        assert_eq!(json["register"]["latency_ms"]["p99"], 3.0);
        assert_eq!(json["deregister"], serde_json::Value::Null);
    }

    #[test]
    fn server_uris() {
        let ok = |u: &str| parse_server(u).unwrap();
        assert_eq!(ok("coap://127.0.0.1:5683"), ("127.0.0.1".into(), 5683));
        assert_eq!(ok("coap://example.com"), ("example.com".into(), 5683));
        assert_eq!(ok(" COAP://host:1/ "), ("host".into(), 1));
        assert_eq!(ok("coap://[::1]:5684"), ("::1".into(), 5684));
        assert_eq!(ok("coap://[::1]"), ("::1".into(), 5683));
        let err = |u: &str| format!("{:#}", parse_server(u).unwrap_err());
        assert!(
            err("coaps://h:5684").contains("plain CoAP only"),
            "{}",
            err("coaps://h")
        );
        assert!(err("127.0.0.1:5683").contains("not a coap:// URI"));
        assert!(err("http://h").contains("not a coap:// URI"));
        assert!(err("coap://::1").contains("brackets"));
        assert!(err("coap://[::1").contains("closing ']'"));
        assert!(err("coap://[::1]5683").contains("after ']:'"));
        assert!(err("coap://:5683").contains("no host"));
        assert!(err("coap://h:0").contains("1 to 65535"));
        assert!(err("coap://h:x").contains("1 to 65535"));
    }

    #[test]
    fn defaults_and_merge() {
        let s = parse(&["--server", "coap://127.0.0.1:5683"]).unwrap();
        assert_eq!(
            s,
            Settings {
                uri: "coap://127.0.0.1:5683".into(),
                host: "127.0.0.1".into(),
                port: 5683,
                devices: 1000,
                concurrency: 256,
                sockets: 1000,
                prefix: "bench-".into(),
                lifetime: 300,
                updates: 0,
                duration: Duration::ZERO,
                deregister: true,
                ack_timeout_ms: 2000,
                max_retransmit: 4,
                json: false,
                quiet: false,
            }
        );
        assert!(s.per_device_sockets());
        let s = parse(&[
            "--server",
            "coap://h",
            "--devices",
            "10",
            "--concurrency",
            "64",
            "--sockets",
            "4",
            "--endpoint-prefix",
            "x-",
            "--lifetime",
            "60",
            "--updates",
            "2",
            "--duration-s",
            "5",
            "--deregister",
            "false",
            "--ack-timeout-ms",
            "250",
            "--max-retransmit",
            "2",
            "--json",
            "--quiet",
        ])
        .unwrap();
        assert_eq!(
            (
                s.devices,
                s.concurrency,
                s.sockets,
                s.prefix.as_str(),
                s.lifetime,
                s.updates
            ),
            (10, 10, 4, "x-", 60, 2)
        );
        assert_eq!(
            (
                s.duration,
                s.deregister,
                s.ack_timeout_ms,
                s.max_retransmit,
                s.json,
                s.quiet
            ),
            (Duration::from_secs(5), false, 250, 2, true, true)
        );
        assert!(!s.per_device_sockets());
        // More sockets than devices: one per device.
        assert!(parse(&["--server", "coap://h", "--devices", "3", "--sockets", "8"])
            .unwrap()
            .per_device_sockets());
        // `--deregister` alone, and boolish values.
        assert!(parse(&["--server", "coap://h", "--deregister"]).unwrap().deregister);
        assert!(
            !parse(&["--server", "coap://h", "--deregister", "no"])
                .unwrap()
                .deregister
        );
    }

    #[test]
    fn bad_arguments_say_what_to_do() {
        let err = |argv: &[&str]| format!("{:#}", parse(argv).unwrap_err());
        assert!(err(&[]).contains("--server"), "{}", err(&[]));
        assert!(err(&["--server", "coap://h", "--devices", "0"]).contains("at least 1 device"));
        assert!(err(&["--server", "coap://h", "--concurrency", "0"]).contains("at least 1 operation"));
        assert!(err(&["--server", "coap://h", "--ack-timeout-ms", "0"]).contains("250 on loopback"));
        assert!(err(&["--server", "coap://h", "--lifetime", "0"]).contains("--lifetime 0"));
        assert!(err(&["--server", "coap://h", "--max-retransmit", "21"]).contains("at most 20"));
        assert!(err(&["--server", "coap://h", "--devices", "many"]).contains("many"));
    }

    /// Every option has its LWM2M_BENCH_* variable, shown in the help.
    #[test]
    fn every_option_has_an_environment_variable() {
        let cmd = Cli::command();
        let mut n = 0;
        for arg in cmd.get_arguments().filter(|a| a.get_long().is_some()) {
            let long = arg.get_long().unwrap_or_default();
            let want = format!("LWM2M_BENCH_{}", long.to_uppercase().replace('-', "_"));
            assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some(want.as_str()), "--{long}");
            n += 1;
        }
        assert_eq!(n, 13);
        let help = Cli::command().render_long_help().to_string();
        for s in [
            "LWM2M_BENCH_SERVER",
            "LWM2M_BENCH_ACK_TIMEOUT_MS",
            "250",
            "ulimit -n",
            "--sockets",
        ] {
            assert!(help.contains(s), "{s}: {help}");
        }
    }

    fn get(path: &str, accept: Option<u16>) -> Message {
        let mut m = Message::request(Code::GET, path);
        m.message_id = 7;
        if let Some(a) = accept {
            m.set_accept(a);
        }
        m
    }

    #[test]
    fn devices_answer_reads_and_discover() {
        let records = device_records(300);
        let r = answer(&get("/3/0/0", None), &records);
        assert_eq!(
            (r.code, r.content_format(), r.payload.as_slice()),
            (Code::CONTENT, Some(0), &b"lwm2m-rs"[..])
        );
        assert_eq!(r.message_id, 7, "piggybacked on the request's ACK");
        let r = answer(&get("/3303/0/5700", None), &records);
        assert_eq!((r.code, r.payload.as_slice()), (Code::CONTENT, &b"21.5"[..]));
        let r = answer(&get("/3/0/0", Some(11542)), &records);
        assert_eq!((r.code, r.content_format()), (Code::CONTENT, Some(11542)));
        assert_eq!(
            r.payload,
            [0xC8, 0x00, 0x08, b'l', b'w', b'm', b'2', b'm', b'-', b'r', b's']
        );
        // An instance: TLV with both resources, decodable.
        let r = answer(&get("/3303/0", None), &records);
        assert_eq!((r.code, r.content_format()), (Code::CONTENT, Some(11542)));
        let path = Path::instance(3303, 0);
        let node = format::decode(
            ContentFormat::Tlv,
            &path,
            &r.payload,
            &lwm2m_core::ModelRegistry::builtin(),
        )
        .unwrap();
        assert_eq!(node.to_records(&path).len(), 2);
        let r = answer(&get("/1/0/1", Some(110)), &records);
        assert_eq!((r.code, r.content_format()), (Code::CONTENT, Some(110)));
        assert!(String::from_utf8_lossy(&r.payload).contains("300"));
        let r = answer(&get("/3/0", Some(40)), &records);
        assert_eq!((r.code, r.content_format()), (Code::CONTENT, Some(40)));
        assert_eq!(r.payload, b"</3/0>,</3/0/0>,</3/0/1>");
        let r = answer(&get("/3303", Some(40)), &records);
        assert_eq!(r.payload, b"</3303>,</3303/0>,</3303/0/5700>,</3303/0/5701>");

        assert_eq!(answer(&get("/5/0/3", None), &records).code, Code::NOT_FOUND);
        assert_eq!(answer(&get("/3/1", None), &records).code, Code::NOT_FOUND);
        assert_eq!(answer(&get("/x", None), &records).code, Code::NOT_FOUND);
        assert_eq!(answer(&get("/", None), &records).code, Code::METHOD_NOT_ALLOWED);
        assert_eq!(answer(&get("/3/0", Some(0)), &records).code, Code::NOT_ACCEPTABLE);
        assert_eq!(answer(&get("/3/0/0", Some(9999)), &records).code, Code::NOT_ACCEPTABLE);
        let write = Message::request(Code::PUT, "/3/0/0").with_payload("x");
        assert_eq!(answer(&write, &records).code, Code::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn refresh_before_the_lifetime_ends() {
        assert_eq!(refresh_interval(300), Duration::from_secs(207));
        assert_eq!(refresh_interval(186), Duration::from_secs(93));
        assert_eq!(refresh_interval(60), Duration::from_secs(30));
        assert_eq!(refresh_interval(1), Duration::from_secs(1));
    }
}
