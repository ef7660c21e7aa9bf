//! `lwm2m server`: the LwM2M Server with its REST API, zero-config.
//!
//! CoAP on 0.0.0.0:5683 and [::]:5683, CoAPS (DTLS 1.2 PSK, keys from the security store) on 0.0.0.0:5684 and
//! [::]:5684, the HTTP API on 127.0.0.1:8080, data in ./lwm2m-data. Every option has a flag, an environment
//! variable and a key of the `--config` TOML file (in that order of precedence).

use std::io;
use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use lwm2m_coap::{DriverConfig, Endpoint, EndpointConfig, UdpEndpoint};
use lwm2m_core::model::ModelRegistry;
use lwm2m_dtls::coap_layer::DtlsServerLayer;
use lwm2m_dtls::DtlsServer;
use lwm2m_server::security::{Credential, MemorySecurityStore, SecurityInfo, StoreCredentials};
use lwm2m_server::store::ServerDb;
use lwm2m_server::{RegistrationStore, Server, ServerConfig, Socket};
use lwm2m_web::WebApi;
use serde::Deserialize;

const DEFAULT_COAP: &str = "0.0.0.0:5683,[::]:5683";
const DEFAULT_COAPS: &str = "0.0.0.0:5684,[::]:5684";
const DEFAULT_HTTP: &str = "127.0.0.1:8080";
const DEFAULT_DATA: &str = "./lwm2m-data";
/// The database file in the data directory.
const DB_FILE: &str = "server.redb";

/// The config-file example of `--help`.
macro_rules! config_example {
    () => {
        "  coap_addr = \"0.0.0.0:5683\"          # comma-separated list, or \"off\"
  coaps_addr = \"0.0.0.0:5684\"         # DTLS 1.2 PSK; \"off\" disables
  http_addr = \"127.0.0.1:8080\"        # \"off\" disables the REST API
  data_dir = \"./lwm2m-data\"
  log = \"info\"
  request_timeout = 120               # seconds
  awake_time = 93                     # queue mode, seconds
  lifetime_grace = 0                  # seconds
  model_dir = \"./models\"              # extra OMA DDF XML files
  [[psk]]                             # repeat for more devices
  endpoint = \"dev1\"
  identity = \"dev1\"
  key = \"000102030405060708090a0b0c0d0e0f\"
"
    };
}

/// Arguments of `lwm2m server`.
#[derive(Args, Debug, Default)]
#[command(after_help = concat!(
    "\
Every option can also be set with its environment variable (shown with each option) or a key of the
--config file; flags win over environment variables, which win over the file.

PERSISTENCE: registrations and security credentials are kept in DATA_DIR/server.redb (an embedded ACID
database) and survive a restart or crash: devices go on sending Updates to their old location. Every change
is committed before it is answered. One server per data directory.

SECURITY: the HTTP API has no authentication; it listens on 127.0.0.1 unless --http-addr says otherwise.
Add device credentials with PUT /api/security/{endpoint} or --psk; CoAPS looks PSK keys up there.

CONFIG FILE (TOML, all keys optional), e.g.:
",
    config_example!(),
    "
EXAMPLES:
  lwm2m server
  lwm2m server --coap-addr 127.0.0.1:5783 --coaps-addr off --http-addr 127.0.0.1:8081
  lwm2m server --psk dev1:dev1:000102030405060708090a0b0c0d0e0f
  LWM2M_HTTP_ADDR=0.0.0.0:8080 lwm2m server --config server.toml
  curl -s localhost:8080/api/clients"
))]
pub struct ServerArgs {
    /// CoAP (UDP) addresses, comma-separated, or `off` [default: 0.0.0.0:5683,[::]:5683; IPv6 only where
    /// available].
    #[arg(long, env = "LWM2M_COAP_ADDR", value_name = "ADDRS")]
    coap_addr: Option<String>,
    /// CoAPS (DTLS 1.2 PSK) addresses, comma-separated, or `off` [default: 0.0.0.0:5684,[::]:5684].
    #[arg(long, env = "LWM2M_COAPS_ADDR", value_name = "ADDRS")]
    coaps_addr: Option<String>,
    /// HTTP address of the REST API, SSE events and /metrics, or `off` [default: 127.0.0.1:8080].
    #[arg(long, env = "LWM2M_HTTP_ADDR", value_name = "ADDR")]
    http_addr: Option<String>,
    /// Data directory, created if missing [default: ./lwm2m-data]. Registrations and credentials persist in
    /// DIR/server.redb.
    #[arg(long, env = "LWM2M_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A TOML configuration file (keys below).
    #[arg(long, env = "LWM2M_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log filter for stderr: error, warn, info, debug, trace, or e.g. lwm2m_server=debug [default: info].
    #[arg(long, env = "LWM2M_LOG", value_name = "FILTER")]
    log: Option<String>,
    /// Seconds to wait for a device's answer, including time held for a sleeping device [default: 120].
    #[arg(long, env = "LWM2M_REQUEST_TIMEOUT", value_name = "S")]
    request_timeout: Option<u64>,
    /// Queue mode: seconds a device stays reachable after its last message [default: 93].
    #[arg(long, env = "LWM2M_AWAKE_TIME", value_name = "S")]
    awake_time: Option<u64>,
    /// Seconds after a registration's lifetime before it expires [default: 0].
    #[arg(long, env = "LWM2M_LIFETIME_GRACE", value_name = "S")]
    lifetime_grace: Option<u64>,
    /// A directory of extra OMA DDF XML object models, loaded on top of the built-in ones.
    #[arg(long, env = "LWM2M_MODEL_DIR", value_name = "DIR")]
    model_dir: Option<PathBuf>,
    /// Pre-load PSK credentials: ENDPOINT:IDENTITY:HEXKEY (repeatable; comma-separated in the variable).
    #[arg(long, env = "LWM2M_PSK", value_name = "EP:ID:HEX", value_delimiter = ',')]
    psk: Vec<String>,
}

/// The `--config` file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    coap_addr: Option<Addrs>,
    coaps_addr: Option<Addrs>,
    http_addr: Option<String>,
    data_dir: Option<PathBuf>,
    log: Option<String>,
    request_timeout: Option<u64>,
    awake_time: Option<u64>,
    lifetime_grace: Option<u64>,
    model_dir: Option<PathBuf>,
    #[serde(default)]
    psk: Vec<FilePsk>,
}

/// An address list in the file: `"a,b"` or `["a", "b"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Addrs {
    One(String),
    Many(Vec<String>),
}

impl Addrs {
    fn joined(&self) -> String {
        match self {
            Addrs::One(s) => s.clone(),
            Addrs::Many(v) => v.join(","),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePsk {
    endpoint: String,
    identity: String,
    key: String,
}

/// Where to listen: the addresses and whether they are the defaults (an IPv6 default that cannot be bound is
/// skipped with a warning; anything given explicitly must bind).
#[derive(Debug, Clone, PartialEq)]
struct Listen {
    addrs: Vec<SocketAddr>,
    default: bool,
}

/// The settings after merging flags, environment, file and defaults.
#[derive(Debug)]
struct Settings {
    coap: Listen,
    coaps: Listen,
    http: Option<SocketAddr>,
    data_dir: PathBuf,
    log: String,
    request_timeout: Duration,
    awake_time: Duration,
    lifetime_grace: Duration,
    model_dir: Option<PathBuf>,
    psk: Vec<SecurityInfo>,
}

fn parse_addrs(option: &str, text: &str, default: bool) -> Result<Listen> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("off") || t.is_empty() {
        return Ok(Listen {
            addrs: Vec::new(),
            default,
        });
    }
    let addrs = t
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|a| {
            a.parse::<SocketAddr>().map_err(|_| {
                anyhow!("{option} {a:?} is not a socket address; write IP:PORT, e.g. 0.0.0.0:5683 or [::]:5683, or off")
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Listen { addrs, default })
}

fn parse_psk(text: &str) -> Result<SecurityInfo> {
    let mut parts = text.splitn(3, ':');
    let (Some(ep), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        bail!("--psk {text:?}: write ENDPOINT:IDENTITY:HEXKEY, e.g. dev1:dev1:000102030405060708090a0b0c0d0e0f");
    };
    psk_info(ep, id, key).with_context(|| format!("--psk {text:?}"))
}

fn psk_info(endpoint: &str, identity: &str, key: &str) -> Result<SecurityInfo> {
    let key = hex::decode(key.trim()).map_err(|e| {
        anyhow!("the PSK key is not hexadecimal ({e}); write it as e.g. 000102030405060708090a0b0c0d0e0f")
    })?;
    if endpoint.is_empty() || identity.is_empty() || key.is_empty() {
        bail!("the endpoint, identity and key of a PSK must not be empty");
    }
    Ok(SecurityInfo {
        endpoint: endpoint.to_string(),
        credential: Credential::Psk {
            identity: identity.to_string(),
            key,
        },
    })
}

fn read_file(path: &FsPath) -> Result<FileConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read the config file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow!("config file {}: {e}", path.display()))
}

/// Merges `args` (flags and environment, as clap resolved them) over `file` over the defaults.
fn settings(args: &ServerArgs, file: &FileConfig) -> Result<Settings> {
    let listen = |option: &str, flag: &Option<String>, file: &Option<Addrs>, default: &str| -> Result<Listen> {
        match (flag, file) {
            (Some(f), _) => parse_addrs(option, f, false),
            (None, Some(a)) => parse_addrs(option, &a.joined(), false),
            (None, None) => parse_addrs(option, default, true),
        }
    };
    let coap = listen("--coap-addr", &args.coap_addr, &file.coap_addr, DEFAULT_COAP)?;
    let coaps = listen("--coaps-addr", &args.coaps_addr, &file.coaps_addr, DEFAULT_COAPS)?;
    let http_text = args
        .http_addr
        .clone()
        .or_else(|| file.http_addr.clone())
        .unwrap_or_else(|| DEFAULT_HTTP.to_string());
    let http = if http_text.trim().eq_ignore_ascii_case("off") {
        None
    } else {
        Some(http_text.trim().parse::<SocketAddr>().map_err(|_| {
            anyhow!("--http-addr {http_text:?} is not a socket address; write IP:PORT, e.g. 127.0.0.1:8080, or off")
        })?)
    };
    if coap.addrs.is_empty() && coaps.addrs.is_empty() {
        bail!("both --coap-addr and --coaps-addr are off: the server needs at least one CoAP socket");
    }
    let mut psk = Vec::new();
    for p in &args.psk {
        psk.push(parse_psk(p)?);
    }
    for p in &file.psk {
        psk.push(psk_info(&p.endpoint, &p.identity, &p.key).with_context(|| format!("[[psk]] {}", p.endpoint))?);
    }
    let secs =
        |flag: Option<u64>, file: Option<u64>, default: u64| Duration::from_secs(flag.or(file).unwrap_or(default));
    Ok(Settings {
        coap,
        coaps,
        http,
        data_dir: args
            .data_dir
            .clone()
            .or_else(|| file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA)),
        log: args
            .log
            .clone()
            .or_else(|| file.log.clone())
            .unwrap_or_else(|| "info".to_string()),
        request_timeout: secs(args.request_timeout, file.request_timeout, 120),
        awake_time: secs(args.awake_time, file.awake_time, 93),
        lifetime_grace: secs(args.lifetime_grace, file.lifetime_grace, 0),
        model_dir: args.model_dir.clone().or_else(|| file.model_dir.clone()),
        psk,
    })
}

/// What to tell the user when binding `addr` failed.
fn bind_error(option: &str, proto: &str, addr: SocketAddr, e: &io::Error) -> anyhow::Error {
    let mut other = addr;
    other.set_port(addr.port().saturating_add(100));
    let suggestion = if addr.ip().is_unspecified() {
        let mut local = other;
        local.set_ip(if addr.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
        local
    } else {
        other
    };
    match e.kind() {
        io::ErrorKind::AddrInUse => anyhow!(
            "{proto} port {} is in use (another LwM2M server?): stop it, or pass {option} {suggestion}",
            addr.port()
        ),
        io::ErrorKind::PermissionDenied => anyhow!(
            "not allowed to bind {proto} on {addr} (ports below 1024 need privileges): pass {option} {suggestion}"
        ),
        io::ErrorKind::AddrNotAvailable => anyhow!(
            "{addr} is not an address of this machine: pass {option} with a local address, e.g. {option} {}",
            if addr.is_ipv4() { "0.0.0.0:5683" } else { "[::]:5683" }
        ),
        _ => anyhow!("cannot bind {proto} on {addr}: {e}; pass {option} with another address"),
    }
}

/// A UDP socket on `addr`; IPv6 sockets are IPv6-only so they can sit next to an IPv4 socket on the same port.
fn udp_socket(addr: SocketAddr) -> io::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket as RawSocket, Type};
    let s = RawSocket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    tokio::net::UdpSocket::from_std(s.into())
}

/// The server's sockets: plain first, then DTLS. Returns them with a description line each.
fn bind_sockets(settings: &Settings, security: &Arc<MemorySecurityStore>) -> Result<(Vec<Socket>, Vec<String>)> {
    let mut sockets = Vec::new();
    let mut lines = Vec::new();
    for (secure, listen) in [(false, &settings.coap), (true, &settings.coaps)] {
        let (option, proto) = if secure {
            ("--coaps-addr", "CoAPS")
        } else {
            ("--coap-addr", "CoAP")
        };
        for &addr in &listen.addrs {
            let socket = match udp_socket(addr) {
                Ok(s) => s,
                Err(e) if listen.default && addr.is_ipv6() => {
                    tracing::warn!(%addr, error = %e, "{proto} on IPv6 is not available; IPv4 only");
                    continue;
                }
                Err(e) => return Err(bind_error(option, proto, addr, &e)),
            };
            let endpoint = Endpoint::new(EndpointConfig::default());
            let pair = if secure {
                let credentials = Arc::new(StoreCredentials(security.clone()));
                let dtls = DtlsServer::new(lwm2m_dtls::ServerConfig::default(), credentials)
                    .map_err(|e| anyhow!("cannot set up DTLS for {addr}: {e}; pass --coaps-addr off to run without"))?;
                UdpEndpoint::spawn_secure(socket, endpoint, DtlsServerLayer::new(dtls), DriverConfig::default())
            } else {
                UdpEndpoint::spawn(socket, endpoint, DriverConfig::default())
            }
            .map_err(|e| bind_error(option, proto, addr, &e))?;
            let local = pair.0.local_addr();
            lines.push(if secure {
                format!("CoAPS  coaps://{local}  (DTLS 1.2 PSK; credentials from /api/security)")
            } else {
                format!("CoAP   coap://{local}")
            });
            sockets.push(pair);
        }
    }
    Ok((sockets, lines))
}

fn say(line: impl AsRef<str>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.as_ref());
    let _ = out.flush();
}

/// Runs `lwm2m server`.
pub fn run(args: ServerArgs) -> Result<()> {
    let file = match &args.config {
        Some(p) => read_file(p)?,
        None => FileConfig::default(),
    };
    let settings = settings(&args, &file)?;
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log)
        .map_err(|e| anyhow!("--log {:?}: {e} (use error, warn, info, debug or trace)", settings.log))?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}: pass --data-dir DIR (or LWM2M_DATA_DIR) with a writable path",
            settings.data_dir.display()
        )
    })?;
    let mut models = ModelRegistry::builtin();
    if let Some(dir) = &settings.model_dir {
        models
            .load_dir(dir)
            .with_context(|| format!("loading object models from --model-dir {}", dir.display()))?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(settings, models))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn serve(settings: Settings, models: ModelRegistry) -> Result<()> {
    let db_path = settings.data_dir.join(DB_FILE);
    let db = ServerDb::open(&db_path).context("pass --data-dir DIR (or LWM2M_DATA_DIR) with another directory")?;
    let registrations = db
        .registrations()
        .with_context(|| format!("loading registrations from {}", db_path.display()))?;
    let persistent = db
        .security()
        .with_context(|| format!("loading security credentials from {}", db_path.display()))?;
    let security = persistent.store().clone();
    let (n_reg, n_sec) = (registrations.len(), security.list().len());
    for info in &settings.psk {
        security
            .put(info.clone())
            .map_err(|e| anyhow!("PSK for {}: {e}", info.endpoint))?;
    }
    let (sockets, mut lines) = bind_sockets(&settings, &security)?;
    if sockets.is_empty() {
        bail!("no CoAP socket could be bound: pass --coap-addr 0.0.0.0:5683 (or another address)");
    }
    let config = ServerConfig {
        models: Arc::new(models),
        store: Arc::new(registrations),
        security: security.clone(),
        request_timeout: settings.request_timeout,
        awake_time: settings.awake_time,
        lifetime_grace: settings.lifetime_grace,
        ..ServerConfig::default()
    };
    let (server, _events) = Server::start(config, sockets).map_err(|e| anyhow!("cannot start the server: {e}"))?;
    let api = WebApi::new(server.clone(), security);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let web = match settings.http {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| bind_error("--http-addr", "HTTP", addr, &e))?;
            let local = listener.local_addr().context("reading the HTTP address")?;
            lines.push(format!(
                "HTTP   http://{local}/api  (REST API, /api/events SSE, /metrics, /api/openapi.yaml)"
            ));
            let api = api.clone();
            Some(tokio::spawn(async move {
                api.serve(listener, async {
                    let _ = stop_rx.await;
                })
                .await
            }))
        }
        None => {
            lines.push("HTTP   off".into());
            None
        }
    };
    lines.push(format!(
        "data   {}  ({n_reg} registrations and {n_sec} credentials loaded; persistent)",
        db_path.display()
    ));
    say(format!("lwm2m server {}", env!("CARGO_PKG_VERSION")));
    for l in &lines {
        say(format!("  {l}"));
    }
    say("ready (Ctrl-C stops)");

    let mut web = web;
    let failure = tokio::select! {
        () = shutdown_signal() => None,
        r = async {
            match web.as_mut() {
                Some(h) => h.await,
                None => std::future::pending().await,
            }
        } => Some(r),
    };
    if let Some(r) = failure {
        server.shutdown().await;
        return match r {
            Ok(Ok(())) => Err(anyhow!("the HTTP server stopped unexpectedly")),
            Ok(Err(e)) => Err(anyhow!("the HTTP server failed: {e}")),
            Err(e) => Err(anyhow!("the HTTP server task failed: {e}")),
        };
    }
    say("stopping");
    let _ = stop_tx.send(());
    api.close_streams();
    if let Some(h) = web {
        match tokio::time::timeout(Duration::from_secs(5), h).await {
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP server error while stopping"),
            Err(_) => tracing::warn!("HTTP requests still running after 5 s; stopping anyway"),
            _ => {}
        }
    }
    server.shutdown().await;
    say("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ServerArgs {
        ServerArgs::default()
    }

    #[test]
    fn defaults() {
        let s = settings(&args(), &FileConfig::default()).unwrap();
        assert_eq!(
            s.coap,
            Listen {
                addrs: vec!["0.0.0.0:5683".parse().unwrap(), "[::]:5683".parse().unwrap()],
                default: true
            }
        );
        assert_eq!(s.coaps.addrs.len(), 2);
        assert_eq!(s.http, Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(s.data_dir, PathBuf::from("./lwm2m-data"));
        assert_eq!(s.request_timeout, Duration::from_secs(120));
        assert_eq!(s.awake_time, Duration::from_secs(93));
        assert_eq!(s.log, "info");
    }

    #[test]
    fn flags_win_over_the_file() {
        let file: FileConfig = toml::from_str(
            r#"
            coap_addr = ["127.0.0.1:1", "127.0.0.1:2"]
            coaps_addr = "off"
            http_addr = "127.0.0.1:9"
            request_timeout = 5
            log = "debug"
            [[psk]]
            endpoint = "d"
            identity = "i"
            key = "0102"
            "#,
        )
        .unwrap();
        let s = settings(&args(), &file).unwrap();
        assert_eq!(s.coap.addrs.len(), 2);
        assert!(!s.coap.default);
        assert!(s.coaps.addrs.is_empty());
        assert_eq!(s.http, Some("127.0.0.1:9".parse().unwrap()));
        assert_eq!((s.request_timeout.as_secs(), s.log.as_str()), (5, "debug"));
        assert_eq!(s.psk.len(), 1);

        let a = ServerArgs {
            coap_addr: Some("127.0.0.1:7".into()),
            http_addr: Some("off".into()),
            request_timeout: Some(9),
            psk: vec!["e:id:00ff".into()],
            ..args()
        };
        let s = settings(&a, &file).unwrap();
        assert_eq!(s.coap.addrs, vec!["127.0.0.1:7".parse::<SocketAddr>().unwrap()]);
        assert_eq!(s.http, None);
        assert_eq!(s.request_timeout.as_secs(), 9);
        assert_eq!(s.psk.len(), 2);
        assert_eq!(
            s.psk[0].credential,
            Credential::Psk {
                identity: "id".into(),
                key: vec![0, 255]
            }
        );
    }

    #[test]
    fn errors_say_what_to_do() {
        let e = settings(
            &ServerArgs {
                coap_addr: Some("localhost".into()),
                ..args()
            },
            &FileConfig::default(),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("write IP:PORT"), "{e:#}");
        let e = settings(
            &ServerArgs {
                coap_addr: Some("off".into()),
                coaps_addr: Some("off".into()),
                ..args()
            },
            &FileConfig::default(),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("at least one CoAP socket"), "{e:#}");
        for bad in ["nocolons", "e:i:zz", "e:i:", ":i:00"] {
            assert!(parse_psk(bad).is_err(), "{bad}");
        }
        assert!(toml::from_str::<FileConfig>("colour = 1").is_err());

        let in_use = io::Error::from(io::ErrorKind::AddrInUse);
        let msg = bind_error("--coap-addr", "CoAP", "0.0.0.0:5683".parse().unwrap(), &in_use).to_string();
        assert_eq!(
            msg,
            "CoAP port 5683 is in use (another LwM2M server?): stop it, or pass --coap-addr 127.0.0.1:5783"
        );
    }

    #[test]
    fn the_help_example_parses() {
        let file: FileConfig = toml::from_str(config_example!()).unwrap();
        assert!(settings(&args(), &file).is_ok());
    }
}
