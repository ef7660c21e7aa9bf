//! `lwm2m client`: a demo LwM2M 1.1 device on the client runtime, driven from stdin.
//!
//! Objects 0, 1, 2, 3, 4, 5, 6, 7 and a Temperature sensor `/3303/0` whose value takes a slow random walk.
//! Events are printed on stdout one per line (`registered ssid=1 location=/rd/xyz`), logs go to stderr.

use std::path::{Path as FsPath, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use lwm2m_client::dm::{BootstrapConfig, Credentials, DataModel, FactoryConfig, ServerConfig};
use lwm2m_client::objects::connectivity::ConnectivityInfo;
use lwm2m_client::objects::device::DeviceInfo;
use lwm2m_client::objects::firmware::{FirmwareConfig, FirmwareUpdate};
use lwm2m_client::objects::location::Location;
use lwm2m_client::objects::temperature::TemperatureSensor;
use lwm2m_client::runtime::{Client, ClientConfig, ClientEvent, ClientHandle, CoapUri, RebootPolicy, ResetKind};
use lwm2m_core::format::{self, ContentFormat};
use lwm2m_core::{Node, Path, ResourceNode, ResourceValue};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::pem::{load_cert, load_private_key, load_public_key};

const SENSOR: u16 = 3303;

/// The config-file example of `--help` (a test parses it).
macro_rules! config_example {
    () => {
        "  endpoint = \"urn:dev:demo\"
  lifetime = 300                # every server's lifetime, seconds
  queue = false
  awake_time = 93               # queue mode
  sensor_interval = 5           # 0: the temperature stays still
  send_on_register = [\"/3303/0/5700\"]
  [[servers]]                   # repeat for more servers
  uri = \"coap://127.0.0.1:5683\"
  ssid = 1
  binding = \"U\"
  mute_send = false
  notification_storing = true
  disable_timeout = 86400
  default_pmin = 1
  default_pmax = 60
  psk_identity = \"dev1\"         # with a coaps:// uri: a PSK,
  psk_key = \"000102030405060708090a0b0c0d0e0f\"
  # or X.509: cert = \"dev.pem\", key = \"dev.key\", server_cert = \"server.pem\", cert_usage = 3
  # or RPK: rpk_key = \"dev.key\", server_rpk = \"server.pub\"  (files: PEM or DER, relative to this file)
  ciphersuites = [49320]        # /0/x/16: IANA ids to offer (49320 = TLS_PSK_WITH_AES_128_CCM_8)
  [bootstrap]
  uri = \"coap://127.0.0.1:5783\"
  hold_off = 0                  # also psk_identity, psk_key, cert, key, ...
  account_timeout = 0           # /0/x/12: delete this account N s after a bootstrap (0 = keep)
  [device]
  manufacturer = \"ACME\"         # also model, serial, firmware_version, hardware_version,
                                # software_version, device_type
  [sensor]
  initial = 21.0
  interval = 5
"
    };
}

/// Arguments of `lwm2m client`.
#[derive(Args, Debug)]
#[command(after_help = concat!(
    "\
STDIN COMMANDS (one per line):
  set PATH VALUE   set a resource as the device: set /3303/0/5700 21.5 (observers are notified)
  get PATH         print the local values under PATH: get /3303/0
  update [SSID]    send a Registration Update (to every registered server without SSID)
  send PATH...     Send the values to every registered server (POST /dp)
  bootstrap        start a Client Initiated Bootstrap now
  status           print where every server stands
  help             print this list
  quit             de-register and exit (Ctrl-C does the same)
When stdin closes, the device keeps running until Ctrl-C.

CONFIG FILE (TOML; all optional but uri and ssid of a server; command-line options win), e.g.:
",
    config_example!(),
    "\nSend is allowed (Mute Send /1/x/23 = false) unless a [[servers]] entry sets mute_send = true.

EXAMPLES:
  lwm2m client --server coap://127.0.0.1:5683 --endpoint urn:dev:demo
  lwm2m client --server coaps://127.0.0.1:5684 --endpoint dev1 \\
      --psk-identity dev1 --psk-key 000102030405060708090a0b0c0d0e0f
  lwm2m client --server coaps://127.0.0.1:5684 --endpoint dev1 \\
      --cert dev1.pem --key dev1.key --server-cert server.pem
  lwm2m client --server coaps://127.0.0.1:5684 --endpoint dev1 \\
      --cert dev1.pem --key dev1.key --server-cert ca.pem --cert-usage 0
  lwm2m client --server coaps://127.0.0.1:5684 --endpoint dev1 --rpk-key dev1.key --server-rpk server.pub
  lwm2m client --bootstrap --server coap://127.0.0.1:5783 --endpoint dev1
  lwm2m client --config device.toml"
))]
pub struct ClientArgs {
    /// The LwM2M Server URI (coap://host:port or coaps://host:port); with --bootstrap, the Bootstrap-Server's.
    #[arg(long, value_name = "URI")]
    server: Option<String>,
    /// The Endpoint Client Name (`ep`), e.g. urn:dev:demo.
    #[arg(long, value_name = "NAME")]
    endpoint: Option<String>,
    /// The Short Server ID of the --server account.
    #[arg(long, value_name = "N", default_value_t = 1)]
    ssid: u16,
    /// PSK identity for a coaps:// --server (DTLS 1.2, TLS_PSK_WITH_AES_128_CCM_8).
    #[arg(long, value_name = "ID", requires = "psk_key")]
    psk_identity: Option<String>,
    /// PSK key for a coaps:// --server, in hexadecimal (e.g. 000102030405060708090a0b0c0d0e0f).
    #[arg(long, value_name = "HEX", requires = "psk_identity")]
    psk_key: Option<String>,
    /// Client certificate for a coaps:// --server (X.509 mode, /0/x/3), PEM or DER. The key must be EC (P-256)
    /// for the ECDHE_ECDSA suites; the server usually takes the CN as the endpoint name.
    #[arg(long, value_name = "FILE", requires_all = ["key", "server_cert"])]
    cert: Option<PathBuf>,
    /// X.509 mode: the private key of --cert (/0/x/5), PEM or DER (unencrypted PKCS#8 or SEC1).
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// X.509 mode: the server's certificate (usage 1, 3) or CA (usage 0, 2) (/0/x/4), PEM or DER.
    #[arg(long, value_name = "FILE", requires = "cert")]
    server_cert: Option<PathBuf>,
    /// X.509 mode: Certificate Usage (/0/x/15): 0 CA constraint, 1 service certificate constraint, 2 trust
    /// anchor assertion, 3 domain-issued certificate (exact match, no name check; the default). 0..2 check the
    /// server's name (the URI host, an IP literal against an IP subjectAltName) against its certificate.
    #[arg(long, value_name = "0..3", requires = "cert", value_parser = clap::value_parser!(u8).range(0..=3))]
    cert_usage: Option<u8>,
    /// Raw public key mode (RFC 7250) for a coaps:// --server: our EC (P-256) private key, PEM or DER; the public
    /// key (/0/x/3) is derived from it. Needs a build with lwm2m-dtls's `vendored` feature (OpenSSL >= 3.2).
    #[arg(long, value_name = "FILE", requires = "server_rpk")]
    rpk_key: Option<PathBuf>,
    /// RPK mode: the server's public key (SubjectPublicKeyInfo, /0/x/4), PEM (`PUBLIC KEY`) or DER.
    #[arg(long, value_name = "FILE", requires = "rpk_key")]
    server_rpk: Option<PathBuf>,
    /// --server is a Bootstrap-Server: start with a Client Initiated Bootstrap.
    #[arg(long)]
    bootstrap: bool,
    /// A TOML configuration file (servers, bootstrap server, device info, Send-on-register paths; see below).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Registration lifetime in seconds of every server account (default 300).
    #[arg(long, value_name = "S")]
    lifetime: Option<u64>,
    /// Use queue mode (`Q`): sleep after --awake-time without traffic, wake with an Update.
    #[arg(long)]
    queue: bool,
    /// Queue mode: seconds to stay awake after the last exchange (default 93).
    #[arg(long, value_name = "S")]
    awake_time: Option<u64>,
    /// Send these paths right after every successful Register (BsR-8); repeatable.
    #[arg(long = "send-on-register", value_name = "PATH")]
    send_on_register: Vec<String>,
    /// Seconds between temperature random-walk steps; 0 keeps the value still (default 5).
    #[arg(long, value_name = "S")]
    sensor_interval: Option<u64>,
    /// Log filter for stderr (error, warn, info, debug, trace, or a tracing filter like lwm2m_client=debug).
    #[arg(long, value_name = "FILTER", default_value = "info")]
    log: String,
}

/// The `--config` file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    endpoint: Option<String>,
    lifetime: Option<u64>,
    queue: Option<bool>,
    awake_time: Option<u64>,
    sensor_interval: Option<u64>,
    #[serde(default)]
    send_on_register: Vec<String>,
    #[serde(default)]
    servers: Vec<FileServer>,
    bootstrap: Option<FileBootstrap>,
    #[serde(default)]
    device: FileDevice,
    #[serde(default)]
    sensor: FileSensor,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileServer {
    uri: String,
    ssid: u16,
    lifetime: Option<u64>,
    binding: Option<String>,
    mute_send: Option<bool>,
    notification_storing: Option<bool>,
    disable_timeout: Option<u64>,
    default_pmin: Option<u64>,
    default_pmax: Option<u64>,
    psk_identity: Option<String>,
    psk_key: Option<String>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    server_cert: Option<PathBuf>,
    cert_usage: Option<u8>,
    rpk_key: Option<PathBuf>,
    server_rpk: Option<PathBuf>,
    /// `/0/x/16` DTLS/TLS Ciphersuite: IANA ids the handshake may offer.
    ciphersuites: Option<Vec<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBootstrap {
    uri: String,
    hold_off: Option<u64>,
    /// `/0/x/12` Bootstrap-Server Account Timeout (s).
    account_timeout: Option<u64>,
    psk_identity: Option<String>,
    psk_key: Option<String>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    server_cert: Option<PathBuf>,
    cert_usage: Option<u8>,
    rpk_key: Option<PathBuf>,
    server_rpk: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDevice {
    manufacturer: Option<String>,
    model: Option<String>,
    serial: Option<String>,
    firmware_version: Option<String>,
    hardware_version: Option<String>,
    software_version: Option<String>,
    device_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSensor {
    initial: Option<f64>,
    interval: Option<u64>,
}

/// The credentials of one account as given: a PSK, certificate files or RPK files.
#[derive(Debug, Default)]
struct CredArgs<'a> {
    psk_identity: Option<&'a str>,
    psk_key: Option<&'a str>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    server_cert: Option<PathBuf>,
    cert_usage: Option<u8>,
    rpk_key: Option<PathBuf>,
    server_rpk: Option<PathBuf>,
}

/// The credentials of a config-file account (`[[servers]]` or `[bootstrap]`), relative paths taken from `base`
/// (the config file's directory).
macro_rules! file_creds {
    ($s:expr, $base:expr) => {{
        let (s, base): (_, &FsPath) = (&$s, $base);
        let at = |p: &Option<PathBuf>| p.as_ref().map(|p| base.join(p));
        CredArgs {
            psk_identity: s.psk_identity.as_deref(),
            psk_key: s.psk_key.as_deref(),
            cert: at(&s.cert),
            key: at(&s.key),
            server_cert: at(&s.server_cert),
            cert_usage: s.cert_usage,
            rpk_key: at(&s.rpk_key),
            server_rpk: at(&s.server_rpk),
        }
    }};
}

/// The credentials of an account: at most one of a PSK (both parts, the key in hex), certificate files (all
/// three) or RPK files (both); none only for coap://.
fn credentials(what: &str, uri: &str, c: &CredArgs<'_>) -> Result<Credentials> {
    let secure = CoapUri::parse(uri).map_err(|e| anyhow!("{what}: {e}"))?.secure;
    let psk = c.psk_identity.is_some() || c.psk_key.is_some();
    let x509 = c.cert.is_some() || c.key.is_some() || c.server_cert.is_some() || c.cert_usage.is_some();
    let rpk = c.rpk_key.is_some() || c.server_rpk.is_some();
    if [psk, x509, rpk].iter().filter(|b| **b).count() > 1 {
        bail!(
            "{what}: give one kind of credentials: a PSK, a certificate (cert, key, server cert) or a raw public key"
        );
    }
    if (psk || x509 || rpk) && !secure {
        tracing::warn!("{what}: {uri} is coap://, the credentials are not used (use coaps:// for DTLS)");
    }
    if x509 {
        let (Some(cert), Some(key), Some(server)) = (&c.cert, &c.key, &c.server_cert) else {
            bail!("{what}: X.509 mode needs the client certificate, its key and the server certificate or CA (--cert, --key, --server-cert or cert, key, server_cert in the config file)");
        };
        if c.cert_usage.is_some_and(|u| u > 3) {
            bail!("{what}: the certificate usage must be 0..3");
        }
        return Ok(Credentials::Certificate {
            certificate: load_cert(what, cert)?,
            private_key: load_private_key(what, key)?.private_key_to_der()?,
            server_certificate: load_cert(what, server)?,
            certificate_usage: c.cert_usage,
        });
    }
    if rpk {
        let (Some(key), Some(server)) = (&c.rpk_key, &c.server_rpk) else {
            bail!("{what}: RPK mode needs our private key and the server's public key (--rpk-key and --server-rpk, or rpk_key and server_rpk in the config file)");
        };
        let key = load_private_key(what, key)?;
        return Ok(Credentials::Rpk {
            public_key: key.public_key_to_der()?,
            private_key: key.private_key_to_der()?,
            server_public_key: load_public_key(what, server)?,
        });
    }
    match (c.psk_identity, c.psk_key) {
        (Some(id), Some(k)) => {
            let key = hex::decode(k.trim()).map_err(|e| {
                anyhow!(
                    "{what}: the PSK key is not hexadecimal ({e}); write it as e.g. 000102030405060708090a0b0c0d0e0f"
                )
            })?;
            if id.is_empty() || key.is_empty() {
                bail!("{what}: the PSK identity and key must not be empty");
            }
            Ok(Credentials::Psk {
                identity: id.as_bytes().to_vec(),
                key,
            })
        }
        (None, None) if secure => bail!(
            "{what}: {uri} is coaps:// but no credentials are given; add --psk-identity and --psk-key (or \
             --cert/--key/--server-cert, or --rpk-key/--server-rpk; or the same in the config file), or use coap://"
        ),
        (None, None) => Ok(Credentials::NoSec),
        _ => bail!("{what}: give both the PSK identity and the PSK key, or neither"),
    }
}

fn parse_path(s: &str) -> Result<Path> {
    s.parse::<Path>()
        .map_err(|e| anyhow!("{s:?} is not an LwM2M path ({e}); write it like /3303/0/5700"))
}

/// What the command line and the config file add up to.
struct Setup {
    factory: FactoryConfig,
    client: ClientConfig,
    sensor_interval: Duration,
}

fn setup(args: &ClientArgs) -> Result<Setup> {
    let base = args
        .config
        .as_ref()
        .and_then(|p| p.parent())
        .map(FsPath::to_path_buf)
        .unwrap_or_default();
    let file: FileConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the config file {}", path.display()))?;
            toml::from_str(&text).map_err(|e| anyhow!("config file {}: {e}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let endpoint =
        args.endpoint.clone().or(file.endpoint.clone()).ok_or_else(|| {
            anyhow!("no endpoint name: give --endpoint NAME (or endpoint = \"...\" in the config file)")
        })?;
    let lifetime = args.lifetime.or(file.lifetime);
    let mut servers = Vec::new();
    for s in &file.servers {
        let what = format!("server {}", s.ssid);
        let mut sc = ServerConfig::new(s.ssid, s.uri.clone(), lifetime.or(s.lifetime).unwrap_or(300));
        let c = file_creds!(s, &base);
        sc.credentials = credentials(&what, &s.uri, &c)?;
        if let Some(b) = &s.binding {
            sc.server.binding = b.clone();
        }
        sc.server.mute_send = Some(s.mute_send.unwrap_or(false));
        sc.server.notification_storing = s.notification_storing.unwrap_or(true);
        sc.server.disable_timeout_s = s.disable_timeout;
        sc.server.default_pmin_s = s.default_pmin;
        sc.server.default_pmax_s = s.default_pmax;
        sc.ciphersuites = s.ciphersuites.clone().unwrap_or_default();
        servers.push(sc);
    }
    let mut bootstrap = match &file.bootstrap {
        Some(b) => Some(BootstrapConfig {
            uri: b.uri.clone(),
            credentials: credentials("bootstrap server", &b.uri, &file_creds!(b, &base))?,
            hold_off_s: b.hold_off,
            account_timeout_s: b.account_timeout,
        }),
        None => None,
    };
    if let Some(uri) = &args.server {
        let c = CredArgs {
            psk_identity: args.psk_identity.as_deref(),
            psk_key: args.psk_key.as_deref(),
            cert: args.cert.clone(),
            key: args.key.clone(),
            server_cert: args.server_cert.clone(),
            cert_usage: args.cert_usage,
            rpk_key: args.rpk_key.clone(),
            server_rpk: args.server_rpk.clone(),
        };
        let creds = credentials("--server", uri, &c)?;
        if args.bootstrap {
            bootstrap = Some(BootstrapConfig {
                uri: uri.clone(),
                credentials: creds,
                hold_off_s: Some(0),
                account_timeout_s: None,
            });
            servers.clear();
        } else {
            let mut sc = ServerConfig::new(args.ssid, uri.clone(), lifetime.unwrap_or(300));
            sc.credentials = creds;
            sc.server.mute_send = Some(false);
            servers.retain(|s| s.server.ssid != args.ssid);
            servers.insert(0, sc);
        }
    } else if args.bootstrap {
        bail!("--bootstrap needs --server URI (the Bootstrap-Server)");
    } else if args.psk_identity.is_some() || args.cert.is_some() || args.rpk_key.is_some() {
        bail!("--psk-identity/--psk-key, --cert/--key/--server-cert and --rpk-key/--server-rpk apply to --server URI; give --server too");
    }
    if servers.is_empty() && bootstrap.is_none() {
        bail!("no server: give --server URI (or [[servers]] / [bootstrap] sections in --config FILE)");
    }
    let d = &file.device;
    let defaults = DeviceInfo::default();
    let device = DeviceInfo {
        manufacturer: d.manufacturer.clone().or(defaults.manufacturer.clone()),
        model_number: d.model.clone().or(Some("lwm2m-rs demo".into())),
        serial_number: d.serial.clone().or(Some(endpoint.clone())),
        firmware_version: d.firmware_version.clone().or(defaults.firmware_version.clone()),
        hardware_version: d.hardware_version.clone(),
        software_version: d.software_version.clone(),
        device_type: d.device_type.clone().or(Some("demo sensor".into())),
        battery_level: Some(100),
        memory_free: Some(512),
        ..defaults
    };
    let factory = FactoryConfig {
        servers,
        bootstrap,
        device,
        connectivity: Some(ConnectivityInfo::default()),
        firmware: Some(FirmwareConfig::default()),
        location: Some(Location::default()),
        connectivity_statistics: true,
        temperature: Some(vec![(0, file.sensor.initial.unwrap_or(21.0))]),
        access_control: None,
    };
    let mut client = ClientConfig::new(endpoint);
    // The demo device acts on /3/0/4 Reboot and /3/0/5 Factory Reset: it restarts its client runtime.
    client.reboot_policy = RebootPolicy::Restart;
    client.queue_mode = args.queue || file.queue.unwrap_or(false);
    if let Some(s) = args.awake_time.or(file.awake_time) {
        client.awake_time = Duration::from_secs(s);
    }
    let paths = if args.send_on_register.is_empty() {
        &file.send_on_register
    } else {
        &args.send_on_register
    };
    client.send_on_register = paths.iter().map(|p| parse_path(p)).collect::<Result<_>>()?;
    let interval = args
        .sensor_interval
        .or(file.sensor_interval)
        .or(file.sensor.interval)
        .unwrap_or(5);
    Ok(Setup {
        factory,
        client,
        sensor_interval: Duration::from_secs(interval),
    })
}

/// Runs `lwm2m client`.
pub fn run(args: ClientArgs) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .map_err(|e| anyhow!("--log {:?}: {e} (use error, warn, info, debug or trace)", args.log))?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let setup = setup(&args)?;
    let dm = setup
        .factory
        .build()
        .map_err(|e| anyhow!("the configuration is inconsistent: {}", e.reason()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(device(dm, setup.client, setup.sensor_interval))
}

/// A tiny xorshift generator for the random walk (no need for cryptographic quality).
struct Walk(u64);

impl Walk {
    fn step(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        // A step in [-0.5, 0.5].
        (self.0 % 1001) as f64 / 1000.0 - 0.5
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn say(line: impl AsRef<str>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.as_ref());
    let _ = out.flush();
}

async fn device(dm: DataModel, config: ClientConfig, sensor_interval: Duration) -> Result<()> {
    let endpoint = config.endpoint.clone();
    let (client, mut events) = Client::start(dm, config).map_err(|e| anyhow!("cannot start the client: {e}"))?;
    tracing::info!(%endpoint, "demo device running; type `help` for commands");
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let mut walk = Walk(unix_now().unsigned_abs() | 1);
    let mut ticker = tokio::time::interval(if sensor_interval.is_zero() {
        Duration::from_secs(86_400)
    } else {
        sensor_interval
    });
    ticker.tick().await;
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => on_event(&client, ev).await,
                None => break,
            },
            line = lines.next_line(), if stdin_open => match line {
                Ok(Some(line)) => {
                    if !command(&client, line.trim()).await {
                        break;
                    }
                }
                Ok(None) | Err(_) => {
                    tracing::info!("stdin closed; running until Ctrl-C");
                    stdin_open = false;
                }
            },
            _ = ticker.tick(), if !sensor_interval.is_zero() => {
                let step = walk.step();
                let r = client
                    .with_data_model(move |dm| {
                        dm.with_object::<TemperatureSensor, _>(SENSOR, |t, fx| {
                            let v = t.value(0).unwrap_or(21.0) + step;
                            let v = (v.clamp(-40.0, 85.0) * 10.0).round() / 10.0;
                            t.set_value(0, v, Some(unix_now()), fx)
                        })
                    })
                    .await;
                if let Ok(Some(Err(e))) = r {
                    tracing::debug!(%e, "sensor update refused");
                }
            }
            _ = tokio::signal::ctrl_c() => {
                say("interrupted: de-registering");
                break;
            }
        }
    }
    client.shutdown().await;
    say("stopped");
    Ok(())
}

async fn on_event(client: &ClientHandle, ev: ClientEvent) {
    let line = match ev {
        ClientEvent::Registered { ssid, location } => {
            format!("registered ssid={ssid} location=/{}", location.join("/"))
        }
        ClientEvent::Updated { ssid } => format!("updated ssid={ssid}"),
        ClientEvent::RequestFailed { ssid, request, reason } => {
            format!("{} failed ssid={ssid}: {reason}", request.to_lowercase())
        }
        ClientEvent::RegistrationFailed { ssid } => format!("registration failed ssid={ssid}"),
        ClientEvent::Deregistered { ssid } => format!("deregistered ssid={ssid}"),
        ClientEvent::Disabled { ssid, duration } => format!("disabled ssid={ssid} for {}s", duration.as_secs()),
        ClientEvent::BootstrapStarted => "bootstrap started".into(),
        ClientEvent::Bootstrapped => "bootstrapped".into(),
        ClientEvent::BootstrapAttemptFailed { reason } => format!("bootstrap attempt failed: {reason}"),
        ClientEvent::BootstrapFailed => "bootstrap failed".into(),
        ClientEvent::Request {
            ssid,
            operation,
            path,
            code,
        } => {
            let who = ssid.map_or_else(|| "bootstrap".to_string(), |s| format!("ssid={s}"));
            format!("request {who} {operation} {path} -> {code}")
        }
        ClientEvent::Notified { ssid, paths } => {
            let p: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
            format!("notified ssid={ssid} {}", p.join(" "))
        }
        ClientEvent::ObservationCancelled { ssid } => format!("observation cancelled ssid={ssid}"),
        ClientEvent::Sent { ssid, result, .. } => match result {
            Ok(()) => format!("sent ssid={ssid}"),
            Err(e) => format!("send failed ssid={ssid}: {e}"),
        },
        ClientEvent::Sleeping { ssid } => format!("sleeping ssid={ssid}"),
        ClientEvent::Awake { ssid } => format!("awake ssid={ssid}"),
        ClientEvent::Reboot => "reboot requested: restarting".into(),
        ClientEvent::FactoryReset => "factory reset requested: de-registering, then restoring the configuration".into(),
        ClientEvent::Restarted {
            kind: ResetKind::Reboot,
        } => "rebooted: registering again".into(),
        ClientEvent::Restarted {
            kind: ResetKind::FactoryReset,
        } => "factory reset done: starting over from the configuration".into(),
        ClientEvent::BootstrapAccountPurged => "bootstrap-server account purged (its /0/x/12 timeout passed)".into(),
        ClientEvent::FirmwareDownloaded { uri, package } => {
            format!("firmware downloaded from {uri}: {} bytes", package.len())
        }
        ClientEvent::FirmwareDownloadFailed { uri, result } => {
            format!("firmware download from {uri} failed: update result {result}")
        }
        ClientEvent::FirmwareUpdateRequested => {
            // The demo "installs" at once.
            let r = client
                .with_data_model(|dm| dm.with_object::<FirmwareUpdate, _>(5, |f, fx| f.update_finished(Ok(()), fx)))
                .await;
            match r {
                Ok(Some(Ok(()))) => "firmware updated (simulated)".into(),
                other => format!("firmware update not recorded: {other:?}"),
            }
        }
        ClientEvent::Stopped => "client stopped".into(),
        other => format!("{other:?}"),
    };
    say(line);
}

const HELP: &str =
    "commands: set PATH VALUE | get PATH | update [SSID] | send PATH... | bootstrap | status | help | quit";

/// Runs one stdin command; false to quit.
async fn command(client: &ClientHandle, line: &str) -> bool {
    let mut words = line.split_whitespace();
    let Some(cmd) = words.next() else { return true };
    let args: Vec<&str> = words.collect();
    let r: Result<()> = match cmd {
        "quit" | "exit" => return false,
        "help" | "?" => {
            say(HELP);
            Ok(())
        }
        "set" => cmd_set(client, &args).await,
        "get" => cmd_get(client, &args).await,
        "update" => cmd_update(client, &args).await,
        "send" => cmd_send(client, &args).await,
        "bootstrap" => client.bootstrap().await.map_err(|e| anyhow!("{e}")),
        "status" => cmd_status(client).await,
        other => Err(anyhow!("unknown command {other:?}; {HELP}")),
    };
    match r {
        Ok(()) => say(format!("ok {cmd}")),
        Err(e) => say(format!("error: {e:#}")),
    }
    true
}

async fn cmd_set(client: &ClientHandle, args: &[&str]) -> Result<()> {
    let [path, value @ ..] = args else {
        bail!("usage: set PATH VALUE, e.g. set /3303/0/5700 21.5");
    };
    if value.is_empty() {
        bail!("usage: set PATH VALUE, e.g. set /3303/0/5700 21.5");
    }
    let path = parse_path(path)?;
    let text = value.join(" ");
    client
        .with_data_model(move |dm| -> Result<()> {
            let node =
                format::decode(ContentFormat::Text, &path, text.as_bytes(), dm).map_err(|e| anyhow!("{path}: {e}"))?;
            let value = match node {
                Node::Resource(ResourceNode {
                    value: ResourceValue::Single(v),
                    ..
                }) => v,
                Node::ResourceInstance { value, .. } => value,
                _ => bail!("{path} is not a single resource or resource instance"),
            };
            dm.set_value(&path, value)
                .map_err(|e| anyhow!("{path}: {}", e.reason()))
        })
        .await
        .map_err(|e| anyhow!("{e}"))?
}

async fn cmd_get(client: &ClientHandle, args: &[&str]) -> Result<()> {
    let [path] = args else {
        bail!("usage: get PATH, e.g. get /3303/0/5700");
    };
    let path = parse_path(path)?;
    let node = client.read(path).await.map_err(|e| anyhow!("{e}"))?;
    for r in node.to_records(&path) {
        say(format!("{} = {}", r.path, r.value));
    }
    Ok(())
}

async fn cmd_update(client: &ClientHandle, args: &[&str]) -> Result<()> {
    let ssid = match args {
        [] => None,
        [s] => Some(
            s.parse::<u16>()
                .map_err(|_| anyhow!("usage: update [SSID], e.g. update 1"))?,
        ),
        _ => bail!("usage: update [SSID]"),
    };
    client.update(ssid).await.map_err(|e| anyhow!("{e}"))
}

async fn cmd_send(client: &ClientHandle, args: &[&str]) -> Result<()> {
    if args.is_empty() {
        bail!("usage: send PATH..., e.g. send /3303/0/5700");
    }
    let paths = args.iter().map(|p| parse_path(p)).collect::<Result<Vec<_>>>()?;
    let status = client.status().await.map_err(|e| anyhow!("{e}"))?;
    let registered: Vec<u16> = status
        .servers
        .iter()
        .filter(|s| {
            matches!(
                s.status,
                lwm2m_client::registration::ServerStatus::Registered { .. }
                    | lwm2m_client::registration::ServerStatus::Updating { .. }
            )
        })
        .map(|s| s.ssid)
        .collect();
    if registered.is_empty() {
        bail!("not registered to any server yet");
    }
    for ssid in registered {
        client
            .send(ssid, paths.clone())
            .await
            .map_err(|e| anyhow!("server {ssid}: {e}"))?;
    }
    Ok(())
}

async fn cmd_status(client: &ClientHandle) -> Result<()> {
    let s = client.status().await.map_err(|e| anyhow!("{e}"))?;
    for srv in &s.servers {
        say(format!(
            "server ssid={} uri={} status={:?} queue={} asleep={} observations={}",
            srv.ssid,
            srv.uri.as_deref().unwrap_or("-"),
            srv.status,
            srv.queue_mode,
            srv.asleep,
            srv.observations
        ));
    }
    say(format!("bootstrap {:?}", s.bootstrap));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: ClientArgs,
    }

    fn args(a: &[&str]) -> ClientArgs {
        T::try_parse_from(std::iter::once("t").chain(a.iter().copied()))
            .unwrap()
            .a
    }

    fn err(a: &[&str]) -> String {
        match setup(&args(a)) {
            Ok(_) => panic!("accepted {a:?}"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn command_line_setups() {
        let s = setup(&args(&[
            "--server",
            "coap://127.0.0.1:5683",
            "--endpoint",
            "d1",
            "--lifetime",
            "60",
        ]))
        .unwrap();
        assert_eq!(s.factory.servers.len(), 1);
        assert_eq!(s.factory.servers[0].server.lifetime_s, 60);
        assert_eq!(s.factory.servers[0].server.mute_send, Some(false));
        assert_eq!(s.client.endpoint, "d1");
        assert!(
            s.client.reboot_policy.restarts(),
            "the demo device acts on Reboot and Factory Reset"
        );
        assert!(s.factory.build().is_ok());
        let s = setup(&args(&[
            "--server",
            "coaps://h:5684",
            "--endpoint",
            "d1",
            "--psk-identity",
            "d1",
            "--psk-key",
            "0a0b",
            "--queue",
        ]))
        .unwrap();
        assert_eq!(
            s.factory.servers[0].credentials,
            Credentials::Psk {
                identity: b"d1".to_vec(),
                key: vec![10, 11]
            }
        );
        assert!(s.client.queue_mode);
        let s = setup(&args(&["--bootstrap", "--server", "coap://h", "--endpoint", "d"])).unwrap();
        assert!(s.factory.servers.is_empty());
        assert_eq!(s.factory.bootstrap.as_ref().unwrap().uri, "coap://h");
        assert!(s.factory.build().is_ok());
    }

    #[test]
    fn errors_name_the_cause_and_the_fix() {
        assert!(err(&["--server", "coap://h"]).contains("--endpoint NAME"));
        assert!(err(&["--endpoint", "d"]).contains("give --server URI"));
        assert!(err(&["--server", "coaps://h", "--endpoint", "d"]).contains("add --psk-identity and --psk-key"));
        assert!(err(&[
            "--server",
            "coaps://h",
            "--endpoint",
            "d",
            "--psk-identity",
            "x",
            "--psk-key",
            "zz"
        ])
        .contains("not hexadecimal"));
        assert!(err(&["--server", "http://h", "--endpoint", "d"]).contains("use coap:// or coaps://"));
        assert!(err(&["--bootstrap", "--endpoint", "d"]).contains("--bootstrap needs --server"));
        assert!(err(&["--server", "coap://h", "--endpoint", "d", "--send-on-register", "/x"]).contains("/3303/0/5700"));
        assert!(
            T::try_parse_from(["t", "--psk-identity", "x"]).is_err(),
            "the key is required too"
        );
    }

    #[test]
    fn config_file() {
        let dir = std::env::temp_dir().join(format!("lwm2m-client-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.toml");
        std::fs::write(
            &f,
            r#"
endpoint = "file-dev"
send_on_register = ["/3303/0/5700"]
[[servers]]
uri = "coap://127.0.0.1:5683"
ssid = 3
lifetime = 120
mute_send = true
ciphersuites = [49320, 49326]
[bootstrap]
uri = "coap://127.0.0.1:5783"
hold_off = 5
account_timeout = 3600
[device]
manufacturer = "ACME"
[sensor]
initial = 18.5
"#,
        )
        .unwrap();
        let s = setup(&args(&["--config", f.to_str().unwrap()])).unwrap();
        assert_eq!(s.client.endpoint, "file-dev");
        assert_eq!(s.client.send_on_register, vec![parse_path("/3303/0/5700").unwrap()]);
        assert_eq!(s.factory.servers[0].server.ssid, 3);
        assert_eq!(s.factory.servers[0].server.lifetime_s, 120);
        assert_eq!(s.factory.servers[0].server.mute_send, Some(true));
        assert_eq!(s.factory.bootstrap.as_ref().unwrap().hold_off_s, Some(5));
        assert_eq!(s.factory.bootstrap.as_ref().unwrap().account_timeout_s, Some(3600));
        assert_eq!(s.factory.servers[0].ciphersuites, vec![49320, 49326]);
        assert_eq!(s.factory.device.manufacturer.as_deref(), Some("ACME"));
        assert_eq!(s.factory.temperature, Some(vec![(0, 18.5)]));
        let dm = s.factory.build().unwrap();
        assert!(dm.registration_payload().contains("</3303/0>"));
        // Unknown keys name themselves.
        std::fs::write(&f, "endpoint = \"x\"\nlifetyme = 3\n").unwrap();
        let e = err(&["--config", f.to_str().unwrap()]);
        assert!(e.contains("lifetyme"), "{e}");
        let e = err(&["--config", "/nonexistent/x.toml"]);
        assert!(e.contains("cannot read the config file"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// An EC P-256 key and a self-signed certificate for `cn`.
    fn key_and_cert(cn: &str) -> (openssl::pkey::PKey<openssl::pkey::Private>, openssl::x509::X509) {
        use openssl::ec::{EcGroup, EcKey};
        use openssl::nid::Nid;
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = openssl::pkey::PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let mut name = openssl::x509::X509Name::builder().unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
        let name = name.build();
        let mut b = openssl::x509::X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha256()).unwrap();
        (key, b.build())
    }

    #[test]
    fn certificate_and_rpk_credentials_from_pem_and_der_files() {
        let dir = std::env::temp_dir().join(format!("lwm2m-client-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (key, cert) = key_and_cert("d1");
        let (skey, scert) = key_and_cert("server");
        let w = |name: &str, data: &[u8]| {
            let p = dir.join(name);
            std::fs::write(&p, data).unwrap();
            p.to_str().unwrap().to_string()
        };
        let cert_pem = w("d1.pem", &cert.to_pem().unwrap());
        let key_pem = w("d1.key", &key.private_key_to_pem_pkcs8().unwrap());
        let server_der = w("server.der", &scert.to_der().unwrap());
        let server_pub = w("server.pub", &skey.public_key_to_pem().unwrap());
        let x509 = |extra: &[&str]| {
            let mut a = vec![
                "--server",
                "coaps://127.0.0.1:5684",
                "--endpoint",
                "d1",
                "--cert",
                &cert_pem,
                "--key",
                &key_pem,
                "--server-cert",
                &server_der,
            ];
            a.extend_from_slice(extra);
            a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
        };
        let a = x509(&[]);
        let s = setup(&args(&a.iter().map(String::as_str).collect::<Vec<_>>())).unwrap();
        let Credentials::Certificate {
            certificate,
            private_key,
            server_certificate,
            certificate_usage,
        } = &s.factory.servers[0].credentials
        else {
            panic!("{:?}", s.factory.servers[0].credentials);
        };
        assert_eq!(certificate, &cert.to_der().unwrap());
        assert!(openssl::pkey::PKey::private_key_from_der(private_key)
            .unwrap()
            .public_eq(&key));
        assert_eq!(server_certificate, &scert.to_der().unwrap());
        assert_eq!(*certificate_usage, None);
        assert!(s.factory.build().is_ok());
        let a = x509(&["--cert-usage", "0"]);
        let s = setup(&args(&a.iter().map(String::as_str).collect::<Vec<_>>())).unwrap();
        assert!(matches!(
            s.factory.servers[0].credentials,
            Credentials::Certificate {
                certificate_usage: Some(0),
                ..
            }
        ));
        let a = x509(&["--cert-usage", "4"]);
        assert!(T::try_parse_from(std::iter::once("t").chain(a.iter().map(String::as_str))).is_err());
        let a = x509(&["--psk-identity", "x", "--psk-key", "00"]);
        let e = err(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(e.contains("one kind of credentials"), "{e}");
        // A key file that is not a key names the file.
        let e = err(&[
            "--server",
            "coaps://h",
            "--endpoint",
            "d",
            "--cert",
            &cert_pem,
            "--key",
            &cert_pem,
            "--server-cert",
            &server_der,
        ]);
        assert!(
            e.contains("not a PEM or DER private key") && e.contains("d1.pem"),
            "{e}"
        );
        let e = err(&[
            "--server",
            "coaps://h",
            "--endpoint",
            "d",
            "--cert",
            "/nonexistent/c.pem",
            "--key",
            &key_pem,
            "--server-cert",
            &server_der,
        ]);
        assert!(e.contains("cannot read /nonexistent/c.pem"), "{e}");
        assert!(
            T::try_parse_from(["t", "--cert", "c.pem", "--key", "k.pem"]).is_err(),
            "--server-cert is required too"
        );
        // RPK: the public key is derived from the private key.
        let s = setup(&args(&[
            "--server",
            "coaps://h",
            "--endpoint",
            "d",
            "--rpk-key",
            &key_pem,
            "--server-rpk",
            &server_pub,
        ]))
        .unwrap();
        assert_eq!(
            s.factory.servers[0].credentials,
            Credentials::Rpk {
                public_key: key.public_key_to_der().unwrap(),
                private_key: key.private_key_to_der().unwrap(),
                server_public_key: skey.public_key_to_der().unwrap(),
            }
        );
        // The config file: paths relative to it.
        let f = dir.join("c.toml");
        std::fs::write(
            &f,
            "endpoint = \"d1\"\n[[servers]]\nuri = \"coaps://127.0.0.1:5684\"\nssid = 1\ncert = \"d1.pem\"\n\
             key = \"d1.key\"\nserver_cert = \"server.der\"\ncert_usage = 3\n[bootstrap]\n\
             uri = \"coaps://127.0.0.1:5784\"\nrpk_key = \"d1.key\"\nserver_rpk = \"server.pub\"\n",
        )
        .unwrap();
        let s = setup(&args(&["--config", f.to_str().unwrap()])).unwrap();
        assert!(matches!(
            &s.factory.servers[0].credentials,
            Credentials::Certificate { certificate, certificate_usage: Some(3), .. } if *certificate == cert.to_der().unwrap()
        ));
        assert!(matches!(
            s.factory.bootstrap.as_ref().unwrap().credentials,
            Credentials::Rpk { .. }
        ));
        let dm = s.factory.build().unwrap();
        assert_eq!(
            dm.server_accounts()[0].security.as_ref().unwrap().certificate_usage,
            Some(3)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_help_config_example_is_valid() {
        let text: String = config_example!()
            .lines()
            .map(|l| format!("{}\n", l.trim_start()))
            .collect();
        let f: FileConfig = toml::from_str(&text).unwrap();
        assert_eq!(f.servers.len(), 1);
        assert_eq!(f.bootstrap.map(|b| b.hold_off), Some(Some(0)));
        assert_eq!(f.sensor.initial, Some(21.0));
    }

    #[test]
    fn random_walk_steps_are_small() {
        let mut w = Walk(12345);
        for _ in 0..1000 {
            let s = w.step();
            assert!((-0.5..=0.5).contains(&s), "{s}");
        }
    }
}
