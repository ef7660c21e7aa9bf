//! `lwm2m bootstrap`: the LwM2M Bootstrap-Server (`lwm2m-bootstrap`) on its own sockets.
//!
//! CoAP on 0.0.0.0:5783 and CoAPS (DTLS, credentials from the configurations file) on 0.0.0.0:5784, so that
//! it can run next to `lwm2m server` (5683/5684) on one machine. The endpoint configurations live in one
//! TOML (or JSON) file, ./lwm2m-bootstrap.toml by default, created empty when missing; its format is
//! described in docs/bootstrap.md. The REST API and the Bootstrap UI (`lwm2m_web::bootstrap::BootstrapApi`)
//! listen on HTTP 0.0.0.0:8081 (`/ui/`, `/api/...`). Every option has a flag and an environment variable (the
//! flag wins).

use std::io;
use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use lwm2m_bootstrap::session::SessionEvent;
use lwm2m_bootstrap::{
    dtls_layer, BootstrapServer, BootstrapServerConfig, ConfigStore, Event, EventKind, FileConfigStore, FileFormat,
    Socket, StartError,
};
use lwm2m_coap::{DriverConfig, Endpoint, EndpointConfig, UdpEndpoint};
use lwm2m_web::bootstrap::BootstrapApi;
use tracing::info;

use crate::serve::{api_token, auth_line, say, HttpTask, Secret};

const DEFAULT_CONFIG: &str = "./lwm2m-bootstrap.toml";
const DEFAULT_COAP: &str = "0.0.0.0:5783";
const DEFAULT_COAPS: &str = "0.0.0.0:5784";
const DEFAULT_HTTP: &str = "0.0.0.0:8081";
/// The library logs session start and end itself; this command logs every event, so its own lines win.
const DEFAULT_LOG: &str = "info,lwm2m_bootstrap=warn";

/// Arguments of `lwm2m bootstrap`.
#[derive(Args, Debug, Default)]
#[command(after_help = "\
Every option can also be set with its environment variable (shown with each option); flags win.

The --config file holds one configuration per endpoint (the LwM2M Server accounts to write, credentials,
ACLs, other writes) and an optional [default] for unknown endpoints. It is created empty when missing and
rewritten atomically on every change. Format: docs/bootstrap.md. A minimal file:

  [[endpoints.\"dev1\".servers]]
  ssid = 1
  uri = \"coap://127.0.0.1:5683\"
  lifetime = 300

Devices without credentials in the file may bootstrap over plain CoAP; devices with credentials must use
CoAPS (DTLS with the PSK, RPK or certificate of their entry).

The Bootstrap UI is at http://127.0.0.1:8081/ui/ and the REST API under http://127.0.0.1:8081/api/
(configurations, session logs, events as SSE; docs/bootstrap.md \"REST API\", GET /api/openapi.yaml). Changes
made there are written to the --config file at once. The HTTP API can read and change every device's keys:
run it with --api-token-file (clients send `Authorization: Bearer TOKEN`, the UI asks for the token once), or
without a token bind it to 127.0.0.1 (--http-addr 127.0.0.1:8081), firewall it, or turn it off.

EXAMPLES:
  lwm2m bootstrap
  lwm2m bootstrap --config /etc/lwm2m/bootstrap.toml --coaps-addr off
  LWM2M_BS_COAP_ADDR=127.0.0.1:5783 lwm2m bootstrap
  lwm2m bootstrap --http-addr 127.0.0.1:8081      # UI and REST API on this machine only
  curl http://127.0.0.1:8081/api/configs
  openssl rand -hex 32 > bs-token; lwm2m bootstrap --api-token-file bs-token
  curl -H \"Authorization: Bearer $(cat bs-token)\" http://127.0.0.1:8081/api/configs
  lwm2m client --bootstrap --server coap://127.0.0.1:5783 --endpoint dev1")]
pub struct BootstrapArgs {
    /// The endpoint configurations file (TOML, or JSON when it ends in .json), created empty if missing
    /// [default: ./lwm2m-bootstrap.toml].
    #[arg(long, env = "LWM2M_BS_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// CoAP (UDP) address, or `off` [default: 0.0.0.0:5783].
    #[arg(long, env = "LWM2M_BS_COAP_ADDR", value_name = "ADDR")]
    coap_addr: Option<String>,
    /// CoAPS (DTLS) address, or `off` [default: 0.0.0.0:5784].
    #[arg(long, env = "LWM2M_BS_COAPS_ADDR", value_name = "ADDR")]
    coaps_addr: Option<String>,
    /// HTTP address of the REST API and the Bootstrap UI (/ui/), or `off` [default: 0.0.0.0:8081].
    #[arg(long, env = "LWM2M_BS_HTTP_ADDR", value_name = "ADDR")]
    http_addr: Option<String>,
    /// Log filter for stderr: error, warn, info, debug, trace, or e.g. lwm2m_bootstrap=debug
    /// [default: info,lwm2m_bootstrap=warn].
    #[arg(long, env = "LWM2M_BS_LOG", value_name = "FILTER")]
    log: Option<String>,
    /// A shared secret the HTTP API requires (`Authorization: Bearer TOKEN`, or a login in the UI). Without it
    /// (or --api-token-file) the API is open to anyone who reaches it: bind it to 127.0.0.1. Prefer
    /// --api-token-file: a flag shows in `ps`.
    #[arg(long, env = "LWM2M_BS_API_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// A file whose first line is the API token (see --api-token), e.g. made with `openssl rand -hex 32`.
    #[arg(long, env = "LWM2M_BS_API_TOKEN_FILE", value_name = "FILE")]
    api_token_file: Option<PathBuf>,
}

/// The settings after merging flags, environment and defaults.
#[derive(Debug, PartialEq)]
struct Settings {
    config: PathBuf,
    coap: Option<SocketAddr>,
    coaps: Option<SocketAddr>,
    http: Option<SocketAddr>,
    /// The token the HTTP API requires, if any.
    api_token: Option<Secret>,
    log: String,
}

fn parse_addr(option: &str, text: &str) -> Result<Option<SocketAddr>> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    t.parse::<SocketAddr>()
        .map(Some)
        .map_err(|_| anyhow!("{option} {t:?} is not a socket address; write IP:PORT, e.g. 0.0.0.0:5783, or off"))
}

fn settings(args: &BootstrapArgs) -> Result<Settings> {
    let coap = parse_addr("--coap-addr", args.coap_addr.as_deref().unwrap_or(DEFAULT_COAP))?;
    let coaps = parse_addr("--coaps-addr", args.coaps_addr.as_deref().unwrap_or(DEFAULT_COAPS))?;
    if coap.is_none() && coaps.is_none() {
        bail!("both --coap-addr and --coaps-addr are off: the Bootstrap-Server needs at least one socket");
    }
    let http = parse_addr("--http-addr", args.http_addr.as_deref().unwrap_or(DEFAULT_HTTP))?;
    Ok(Settings {
        config: args.config.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG)),
        coap,
        coaps,
        http,
        api_token: api_token(
            args.api_token.as_deref(),
            args.api_token_file.as_deref(),
            "the command line or environment",
        )?,
        log: args.log.clone().unwrap_or_else(|| DEFAULT_LOG.to_string()),
    })
}

/// Creates `path` with an empty configuration when it does not exist.
fn create_if_missing(path: &FsPath) -> Result<bool> {
    let empty = match FileFormat::of(path) {
        FileFormat::Json => "{}\n",
        FileFormat::Toml => "# lwm2m bootstrap: endpoint configurations (format: docs/bootstrap.md)\n",
    };
    match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(mut f) => {
            use std::io::Write;
            f.write_all(empty.as_bytes())
                .with_context(|| format!("cannot write the new config file {}", path.display()))?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(anyhow!(
            "cannot create the config file {} ({e}): pass --config FILE (or LWM2M_BS_CONFIG) with a writable path",
            path.display()
        )),
    }
}

/// Opens the configurations file (created empty if missing).
fn open_store(path: &FsPath) -> Result<(FileConfigStore, bool)> {
    let created = create_if_missing(path)?;
    let store = FileConfigStore::open(path).map_err(|e| {
        anyhow!(
            "{e}\nfix the file (its format is in docs/bootstrap.md) or pass --config FILE (or LWM2M_BS_CONFIG) \
             with another file"
        )
    })?;
    Ok((store, created))
}

/// What to tell the user when binding `addr` failed.
fn bind_error(option: &str, proto: &str, addr: SocketAddr, e: &io::Error) -> anyhow::Error {
    let mut other = addr;
    other.set_port(addr.port().saturating_add(100));
    match e.kind() {
        io::ErrorKind::AddrInUse => anyhow!(
            "{proto} port {} is in use (another Bootstrap-Server or LwM2M server?): stop it, or pass {option} {other} \
             (or {option} off)",
            addr.port()
        ),
        io::ErrorKind::PermissionDenied => {
            anyhow!("not allowed to bind {proto} on {addr} (ports below 1024 need privileges): pass {option} {other}")
        }
        io::ErrorKind::AddrNotAvailable => anyhow!(
            "{addr} is not an address of this machine: pass {option} with a local address, e.g. {option} 0.0.0.0:{}",
            addr.port()
        ),
        _ => anyhow!("cannot bind {proto} on {addr}: {e}; pass {option} with another address"),
    }
}

/// Binds one socket and spawns its CoAP driver (with the DTLS layer for `secure`).
fn bind_socket(config: &BootstrapServerConfig, addr: SocketAddr, secure: bool) -> Result<Socket> {
    let (option, proto) = if secure {
        ("--coaps-addr", "CoAPS")
    } else {
        ("--coap-addr", "CoAP")
    };
    let std_socket = std::net::UdpSocket::bind(addr).map_err(|e| bind_error(option, proto, addr, &e))?;
    std_socket
        .set_nonblocking(true)
        .map_err(|e| bind_error(option, proto, addr, &e))?;
    let socket = tokio::net::UdpSocket::from_std(std_socket).map_err(|e| bind_error(option, proto, addr, &e))?;
    let endpoint = Endpoint::new(EndpointConfig::default());
    if secure {
        let layer = dtls_layer(config.security.clone(), lwm2m_dtls::ServerConfig::default())
            .map_err(|e| anyhow!("cannot set up DTLS for {addr}: {e}; pass --coaps-addr off to run without"))?;
        UdpEndpoint::spawn_secure(socket, endpoint, layer, DriverConfig::default())
    } else {
        UdpEndpoint::spawn(socket, endpoint, DriverConfig::default())
    }
    .map_err(|e| bind_error(option, proto, addr, &e))
}

/// The URL a browser on this machine opens for a listener on `local` (the loopback address for a wildcard
/// bind).
fn browser_url(local: SocketAddr) -> String {
    let mut a = local;
    if a.ip().is_unspecified() {
        a.set_ip(if a.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    format!("http://{a}")
}

/// Runs `lwm2m bootstrap`.
pub fn run(args: BootstrapArgs) -> Result<()> {
    let settings = settings(&args)?;
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log)
        .map_err(|e| anyhow!("--log {:?}: {e} (use error, warn, info, debug or trace)", settings.log))?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let (store, created) = open_store(&settings.config)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(settings, store, created))
}

fn code_text(code: Option<lwm2m_coap::Code>) -> String {
    code.map_or_else(|| "no answer".to_string(), |c| c.to_string())
}

/// Logs one event of the service at info level.
fn log_event(ev: &Event) {
    let (endpoint, session) = (ev.endpoint.as_str(), ev.session);
    match &ev.kind {
        EventKind::SessionStarted {
            peer,
            secure,
            pct,
            default_config,
        } => info!(
            endpoint, session, %peer, secure, pct = ?pct, default_config, "bootstrap session started"
        ),
        EventKind::Refused { peer, code, reason } => {
            info!(endpoint, %peer, %code, %reason, "Bootstrap-Request refused")
        }
        EventKind::Session(SessionEvent::Operation { op, path, code, detail }) => info!(
            endpoint,
            session,
            %op,
            %path,
            code = %code_text(*code),
            detail = detail.as_deref().unwrap_or(""),
            "bootstrap operation"
        ),
        EventKind::Session(SessionEvent::AccountsFound {
            lwm2m_version,
            accounts,
            bootstrap_instance,
            ..
        }) => {
            let ssids: Vec<u16> = accounts.iter().map(|a| a.ssid).collect();
            info!(endpoint, session, lwm2m_version = ?lwm2m_version, accounts = ?ssids,
                bootstrap_instance = ?bootstrap_instance, "accounts on the device")
        }
        EventKind::Session(SessionEvent::AclState { supported, acls }) => {
            info!(
                endpoint,
                session,
                supported,
                acl_instances = acls.len(),
                "access control state"
            )
        }
        EventKind::Session(SessionEvent::Repaired {
            deleted,
            rewritten,
            kept,
            created,
        }) => {
            let deleted: Vec<u16> = deleted.iter().map(|a| a.ssid).collect();
            let rewritten: Vec<u16> = rewritten.iter().map(|a| a.ssid).collect();
            info!(
                endpoint,
                session,
                ?deleted,
                ?rewritten,
                ?kept,
                ?created,
                "accounts decided"
            )
        }
        EventKind::Session(SessionEvent::Finished { accounts }) => {
            let ssids: Vec<u16> = accounts.iter().map(|a| a.ssid).collect();
            info!(endpoint, session, accounts = ?ssids, "bootstrap session finished")
        }
        EventKind::Session(SessionEvent::Failed { reason }) => {
            info!(endpoint, session, %reason, "bootstrap session failed")
        }
    }
}

async fn serve(settings: Settings, store: FileConfigStore, created: bool) -> Result<()> {
    let store = Arc::new(store);
    let endpoints = store.list().len();
    let has_default = store.default_config().is_some();
    let config = BootstrapServerConfig::new(store.clone());
    let coap = settings.coap.map(|a| bind_socket(&config, a, false)).transpose()?;
    let coaps = settings.coaps.map(|a| bind_socket(&config, a, true)).transpose()?;
    let mut lines = Vec::new();
    for (socket, name) in [(&coap, "CoAP "), (&coaps, "CoAPS")] {
        lines.push(match socket {
            Some((h, _)) if h.is_secure() => format!(
                "{name}  coaps://{}  (DTLS; credentials from the config file)",
                h.local_addr()
            ),
            Some((h, _)) => format!("{name}  coap://{}", h.local_addr()),
            None => format!("{name}  off"),
        });
    }
    let http = match settings.http {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| bind_error("--http-addr", "HTTP", addr, &e))?,
        ),
        None => None,
    };
    let (handle, mut events) = BootstrapServer::start(config, coap, coaps).map_err(|e| match e {
        StartError::Credentials { .. } => anyhow!(
            "{}: {e}; give every endpoint its own credentials (PSK identity, key) in the file",
            settings.config.display()
        ),
        other => anyhow!("cannot start the Bootstrap-Server: {other}"),
    })?;
    lines.push(format!(
        "config {}  ({endpoints} endpoint configuration{}{}{})",
        settings.config.display(),
        if endpoints == 1 { "" } else { "s" },
        if has_default { ", plus a default" } else { "" },
        if created { "; created empty" } else { "" },
    ));
    let api = BootstrapApi::new(handle.clone()).with_token(settings.api_token.map(|t| t.0));
    let mut web = match http {
        Some(listener) => {
            let local = listener.local_addr().context("reading the HTTP address")?;
            let url = browser_url(local);
            let bound = if url == format!("http://{local}") {
                String::new()
            } else {
                format!("; listening on {local}")
            };
            lines.push(format!(
                "HTTP   {url}/ui/  (Bootstrap UI; REST API under /api/, /api/events SSE{bound})"
            ));
            lines.push(auth_line(api.auth_enabled(), "/api/*", "LWM2M_BS_API_TOKEN_FILE"));
            let api = api.clone();
            HttpTask::spawn(move |stopped| async move { api.serve(listener, stopped).await })
        }
        None => {
            lines.push("HTTP   off".into());
            HttpTask::off()
        }
    };
    say(format!("lwm2m bootstrap {}", env!("CARGO_PKG_VERSION")));
    for l in &lines {
        say(format!("  {l}"));
    }
    say("ready (Ctrl-C stops)");

    let logger = tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            log_event(&ev);
        }
    });
    if let Err(e) = web.until_shutdown().await {
        handle.shutdown().await;
        logger.abort();
        return Err(e);
    }
    say("stopping");
    web.stop().await;
    handle.shutdown().await;
    logger.abort();
    say("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let s = settings(&BootstrapArgs::default()).unwrap();
        assert_eq!(
            s,
            Settings {
                config: PathBuf::from("./lwm2m-bootstrap.toml"),
                coap: Some("0.0.0.0:5783".parse().unwrap()),
                coaps: Some("0.0.0.0:5784".parse().unwrap()),
                http: Some("0.0.0.0:8081".parse().unwrap()),
                api_token: None,
                log: DEFAULT_LOG.into(),
            }
        );
    }

    #[test]
    fn flags_and_off() {
        let s = settings(&BootstrapArgs {
            coap_addr: Some("127.0.0.1:0".into()),
            coaps_addr: Some("OFF".into()),
            config: Some("x.json".into()),
            http_addr: Some("127.0.0.1:9".into()),
            log: Some("debug".into()),
            api_token: Some("t0ken".into()),
            api_token_file: None,
        })
        .unwrap();
        assert_eq!(s.coap, Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!((s.coaps, s.log.as_str()), (None, "debug"));
        assert_eq!(s.http, Some("127.0.0.1:9".parse().unwrap()));
        assert_eq!(s.api_token, Some(Secret("t0ken".into())));
    }

    #[test]
    fn http_addr_off_and_errors() {
        let s = settings(&BootstrapArgs {
            http_addr: Some(" off ".into()),
            ..BootstrapArgs::default()
        })
        .unwrap();
        assert_eq!((s.http, s.coap.is_some()), (None, true));
        let e = settings(&BootstrapArgs {
            http_addr: Some("8081".into()),
            ..BootstrapArgs::default()
        })
        .unwrap_err();
        assert!(format!("{e:#}").contains("--http-addr \"8081\""), "{e:#}");
        assert_eq!(browser_url("0.0.0.0:8081".parse().unwrap()), "http://127.0.0.1:8081");
        assert_eq!(browser_url("[::]:8081".parse().unwrap()), "http://[::1]:8081");
        assert_eq!(browser_url("192.0.2.1:80".parse().unwrap()), "http://192.0.2.1:80");
    }

    /// `--http-addr` reads LWM2M_BS_HTTP_ADDR (clap), takes `off`, and the help names the UI.
    #[test]
    fn http_addr_has_an_environment_variable_and_help() {
        use clap::{FromArgMatches, Parser};
        #[derive(Parser, Debug)]
        struct Cli {
            #[command(flatten)]
            args: BootstrapArgs,
        }
        let cmd = <Cli as clap::CommandFactory>::command();
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_id() == "http_addr")
            .expect("--http-addr exists");
        assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some("LWM2M_BS_HTTP_ADDR"));
        let m = cmd.try_get_matches_from(["x", "--http-addr", "off"]).unwrap();
        let cli = Cli::from_arg_matches(&m).unwrap();
        assert_eq!(settings(&cli.args).unwrap().http, None);
        let help = <Cli as clap::CommandFactory>::command().render_long_help().to_string();
        assert!(help.contains("LWM2M_BS_HTTP_ADDR") && help.contains("/ui/"), "{help}");
    }

    /// `--api-token` / `--api-token-file` read LWM2M_BS_API_TOKEN(_FILE); the help says what no token means.
    #[test]
    fn api_token_options() {
        use clap::{CommandFactory, FromArgMatches, Parser};
        #[derive(Parser, Debug)]
        struct Cli {
            #[command(flatten)]
            args: BootstrapArgs,
        }
        let cmd = Cli::command();
        for (id, env) in [
            ("api_token", "LWM2M_BS_API_TOKEN"),
            ("api_token_file", "LWM2M_BS_API_TOKEN_FILE"),
        ] {
            let arg = cmd
                .get_arguments()
                .find(|a| a.get_id() == id)
                .expect("the option exists");
            assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some(env));
        }
        let m = cmd.try_get_matches_from(["x", "--api-token", "s3cret"]).unwrap();
        let s = settings(&Cli::from_arg_matches(&m).unwrap().args).unwrap();
        assert_eq!(s.api_token, Some(Secret("s3cret".into())));
        assert!(
            !format!("{s:?}").contains("s3cret"),
            "the token stays out of debug output"
        );
        let e = settings(&BootstrapArgs {
            api_token: Some("a".into()),
            api_token_file: Some("f".into()),
            ..BootstrapArgs::default()
        })
        .unwrap_err();
        assert!(format!("{e:#}").contains("both given"), "{e:#}");
        let help = Cli::command().render_long_help().to_string();
        assert!(
            help.contains("--api-token-file") && help.contains("open to anyone"),
            "{help}"
        );
    }

    #[test]
    fn errors_say_what_to_do() {
        let e = settings(&BootstrapArgs {
            coap_addr: Some("localhost".into()),
            ..BootstrapArgs::default()
        })
        .unwrap_err();
        assert!(format!("{e:#}").contains("--coap-addr \"localhost\""), "{e:#}");
        let e = settings(&BootstrapArgs {
            coap_addr: Some("off".into()),
            coaps_addr: Some("off".into()),
            ..BootstrapArgs::default()
        })
        .unwrap_err();
        assert!(format!("{e:#}").contains("at least one socket"), "{e:#}");
        let in_use = io::Error::from(io::ErrorKind::AddrInUse);
        let msg = bind_error("--coaps-addr", "CoAPS", "0.0.0.0:5784".parse().unwrap(), &in_use).to_string();
        assert!(msg.contains("pass --coaps-addr 0.0.0.0:5884"), "{msg}");
    }
}
