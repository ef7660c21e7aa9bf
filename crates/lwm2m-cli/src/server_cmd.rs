//! `lwm2m server`: the LwM2M Server with its REST API, zero-config.
//!
//! CoAP on 0.0.0.0:5683 and [::]:5683, CoAPS (DTLS 1.2 PSK, keys from the security store) on 0.0.0.0:5684 and
//! [::]:5684, the HTTP API on 127.0.0.1:8080, data in ./lwm2m-data. Every option has a flag, an environment
//! variable and a key of the `--config` TOML file (in that order of precedence).
//!
//! With the server's own certificate (`--cert`, `--key`, `--client-ca`) CoAPS also accepts X.509 devices, with its
//! own raw public key (`--rpk-key`, `vendored` OpenSSL build) RPK devices; either way the device's credential
//! must be in the security store (an `x509` entry for the certificate's CN, an `rpk` entry with its key).

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
use lwm2m_dtls::{CertifiedKey, DtlsError, DtlsServer, MemoryCredentialStore, RawPublicKey, ServerX509};
use lwm2m_server::security::{Credential, MemorySecurityStore, SecurityInfo, StoreCredentials};
use lwm2m_server::store::ServerDb;
use lwm2m_server::{RegistrationStore, Server, ServerConfig, Socket};
use lwm2m_web::WebApi;
use serde::Deserialize;

use crate::serve::{api_token, auth_line, relative_to, say, HttpTask, Secret};

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
  coaps_addr = \"0.0.0.0:5684\"         # DTLS 1.2; \"off\" disables
  http_addr = \"127.0.0.1:8080\"        # \"off\" disables the REST API
  data_dir = \"./lwm2m-data\"
  log = \"info\"
  request_timeout = 120               # seconds
  awake_time = 93                     # queue mode, seconds
  lifetime_grace = 0                  # seconds
  model_dir = \"./models\"              # extra OMA DDF XML files
  # api_token_file = \"api-token\"      # the HTTP API needs this token (or api_token = \"...\")
  cert = \"server.pem\"                 # X.509 (paths relative to this file): our chain,
  key = \"server.key\"                  # its key,
  client_ca = [\"ca.pem\"]              # the CAs device certificates chain to
  # rpk_key = \"server.key\"            # RPK (vendored build); with cert: the same key
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

SECURITY: without --api-token (or --api-token-file) the HTTP API and UI are open to anyone who reaches
them: keep them on 127.0.0.1 (the default --http-addr). With a token every /api/* route (but /api/health
and /api/openapi.yaml) and /metrics need `Authorization: Bearer TOKEN`; the web UI asks for the token once
and keeps a session cookie. Add device credentials with PUT /api/security/{endpoint} or --psk; CoAPS looks them up
there. CoAPS takes PSK devices always; X.509 devices with --cert, --key and --client-ca (a device is
admitted when its certificate chains to a --client-ca and its subject CN is an endpoint with
{\"mode\": \"x509\"} in the store); RPK devices with --rpk-key (their public keys in the store,
{\"mode\": \"rpk\", \"public_key\": HEX}). RPK needs a build with
  cargo build --release -p lwm2m-cli --features lwm2m-dtls/vendored

CONFIG FILE (TOML, all keys optional), e.g.:
",
    config_example!(),
    "
EXAMPLES:
  lwm2m server
  lwm2m server --coap-addr 127.0.0.1:5783 --coaps-addr off --http-addr 127.0.0.1:8081
  lwm2m server --psk dev1:dev1:000102030405060708090a0b0c0d0e0f
  lwm2m server --cert server.pem --key server.key --client-ca ca.pem
  curl -X PUT localhost:8080/api/security/dev1 -d '{\"mode\": \"x509\"}'   # admit the cert with CN dev1
  lwm2m server --rpk-key server.key
  openssl rand -hex 32 > api-token; LWM2M_HTTP_ADDR=0.0.0.0:8080 lwm2m server --api-token-file api-token
  curl -s -H \"Authorization: Bearer $(cat api-token)\" localhost:8080/api/clients
  LWM2M_HTTP_ADDR=0.0.0.0:8080 lwm2m server --config server.toml
  curl -s localhost:8080/api/clients"
))]
pub struct ServerArgs {
    /// CoAP (UDP) addresses, comma-separated, or `off` [default: 0.0.0.0:5683,[::]:5683; IPv6 only where
    /// available].
    #[arg(long, env = "LWM2M_COAP_ADDR", value_name = "ADDRS")]
    coap_addr: Option<String>,
    /// CoAPS (DTLS 1.2: PSK, and X.509/RPK with the options below) addresses, comma-separated, or `off`
    /// [default: 0.0.0.0:5684,[::]:5684].
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
    /// X.509 mode: the server's certificate chain, PEM (leaf first, then intermediates) or DER. Its key must be
    /// EC (P-256) for the ECDHE_ECDSA suites. Needs --key and --client-ca.
    #[arg(long, env = "LWM2M_CERT", value_name = "FILE")]
    cert: Option<PathBuf>,
    /// X.509 mode: the private key of --cert, PEM or DER (unencrypted PKCS#8 or SEC1).
    #[arg(long, env = "LWM2M_KEY", value_name = "FILE")]
    key: Option<PathBuf>,
    /// X.509 mode: CA certificates that device certificates must chain to, PEM (bundles allowed) or DER
    /// (repeatable; comma-separated in the variable).
    #[arg(long, env = "LWM2M_CLIENT_CA", value_name = "FILE", value_delimiter = ',')]
    client_ca: Vec<PathBuf>,
    /// RPK mode (RFC 7250): the server's EC P-256 private key, PEM or DER; device keys come from the security
    /// store. With --cert too it must be --key's key. Needs a build with `--features lwm2m-dtls/vendored`.
    #[arg(long, env = "LWM2M_RPK_KEY", value_name = "FILE")]
    rpk_key: Option<PathBuf>,
    /// A shared secret the HTTP API requires (`Authorization: Bearer TOKEN`, or a login in the web UI). Without
    /// it (or --api-token-file) the API is open to anyone who reaches it: keep it on 127.0.0.1. Prefer
    /// --api-token-file: a flag shows in `ps`.
    #[arg(long, env = "LWM2M_API_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// A file whose first line is the API token (see --api-token), e.g. made with `openssl rand -hex 32`.
    #[arg(long, env = "LWM2M_API_TOKEN_FILE", value_name = "FILE")]
    api_token_file: Option<PathBuf>,
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
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<Files>,
    rpk_key: Option<PathBuf>,
    api_token: Option<String>,
    api_token_file: Option<PathBuf>,
    /// The directory of the file: relative paths in it are taken from there.
    #[serde(skip)]
    base: PathBuf,
}

/// A file list in the file: `"a.pem"` or `["a.pem", "b.pem"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Files {
    One(PathBuf),
    Many(Vec<PathBuf>),
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
    /// The token the HTTP API requires, if any.
    api_token: Option<Secret>,
    data_dir: PathBuf,
    log: String,
    request_timeout: Duration,
    awake_time: Duration,
    lifetime_grace: Duration,
    model_dir: Option<PathBuf>,
    psk: Vec<SecurityInfo>,
    /// The server's own certificate and raw public key files.
    tls: TlsFiles,
    /// The DTLS configuration of every CoAPS socket: PSK, plus X.509 and RPK once [`dtls_config`] has loaded
    /// `tls`.
    dtls: lwm2m_dtls::ServerConfig,
}

/// The server's certificate and key files (X.509 and RPK modes of its CoAPS sockets), as merged.
#[derive(Debug, Default, Clone, PartialEq)]
struct TlsFiles {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Vec<PathBuf>,
    rpk_key: Option<PathBuf>,
}

impl TlsFiles {
    fn is_empty(&self) -> bool {
        self == &TlsFiles::default()
    }
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
    let mut file: FileConfig = toml::from_str(&text).map_err(|e| anyhow!("config file {}: {e}", path.display()))?;
    file.base = path.parent().map(FsPath::to_path_buf).unwrap_or_default();
    Ok(file)
}

/// Merges the certificate and key options: flags and environment over the file (its paths relative to it).
fn tls_files(args: &ServerArgs, file: &FileConfig) -> Result<TlsFiles> {
    let at = |p: &Option<PathBuf>| p.as_ref().map(|p| file.base.join(p));
    let client_ca = if args.client_ca.is_empty() {
        match &file.client_ca {
            Some(Files::One(p)) => vec![file.base.join(p)],
            Some(Files::Many(v)) => v.iter().map(|p| file.base.join(p)).collect(),
            None => Vec::new(),
        }
    } else {
        args.client_ca.clone()
    };
    let tls = TlsFiles {
        cert: args.cert.clone().or_else(|| at(&file.cert)),
        key: args.key.clone().or_else(|| at(&file.key)),
        client_ca,
        rpk_key: args.rpk_key.clone().or_else(|| at(&file.rpk_key)),
    };
    match (&tls.cert, &tls.key) {
        (Some(_), None) => bail!(
            "--cert is given without --key: X.509 needs the certificate's private key too; pass --key FILE \
             (LWM2M_KEY, or key = \"...\" in the config file)"
        ),
        (None, Some(_)) => bail!(
            "--key is given without --cert: pass the server certificate with --cert FILE (LWM2M_CERT, or \
             cert = \"...\" in the config file); for raw public keys use --rpk-key instead"
        ),
        (Some(_), Some(_)) if tls.client_ca.is_empty() => bail!(
            "--cert needs --client-ca FILE: the CA certificates that device certificates must chain to \
             (LWM2M_CLIENT_CA, or client_ca = [\"...\"] in the config file)"
        ),
        (None, None) if !tls.client_ca.is_empty() => {
            bail!("--client-ca is given without --cert and --key: X.509 needs the server's own certificate and key too")
        }
        _ => {}
    }
    Ok(tls)
}

/// The name of a key type for messages.
fn key_type(key: &openssl::pkey::PKeyRef<openssl::pkey::Private>) -> &'static str {
    use openssl::pkey::Id;
    match key.id() {
        Id::EC => "EC",
        Id::RSA => "RSA",
        Id::DSA => "DSA",
        Id::ED25519 => "Ed25519",
        Id::ED448 => "Ed448",
        _ => "non-EC",
    }
}

/// How to make a fitting key, for messages.
const EC_KEYGEN: &str = "openssl ecparam -name prime256v1 -genkey -noout -out server.key";

/// The DTLS configuration of the CoAPS sockets: PSK always, X.509 and RPK from `tls`. Reads and checks every file
/// and builds a DTLS server once, so a bad file or a build without RPK support fails here, naming the option.
fn dtls_config(tls: &TlsFiles) -> Result<lwm2m_dtls::ServerConfig> {
    let mut config = lwm2m_dtls::ServerConfig::default();
    let mut x509_key = None;
    if let (Some(cert_path), Some(key_path)) = (&tls.cert, &tls.key) {
        let chain = crate::pem::load_certs("--cert", cert_path)?;
        let key = crate::pem::load_private_key("--key", key_path)?;
        let leaf = chain.first().context("--cert: empty certificate chain")?;
        let leaf_key = leaf
            .public_key()
            .map_err(|e| anyhow!("--cert {}: cannot read the certificate's key: {e}", cert_path.display()))?;
        if !leaf_key.public_eq(&key) {
            bail!(
                "--key {} is not the private key of --cert {} (the certificate holds another public key); pass the \
                 key the certificate was issued for (the first certificate of --cert is the server's own)",
                key_path.display(),
                cert_path.display()
            );
        }
        if key.id() != openssl::pkey::Id::EC {
            bail!(
                "--cert {}: the certificate's key is {}, but the LwM2M certificate suites (ECDHE_ECDSA) need an EC \
                 P-256 key; make one with `{EC_KEYGEN}` and have the certificate issued for it",
                cert_path.display(),
                key_type(&key)
            );
        }
        let now = openssl::asn1::Asn1Time::days_from_now(0)?;
        if leaf.not_after() < now {
            bail!(
                "--cert {}: the certificate expired on {}; renew it",
                cert_path.display(),
                leaf.not_after()
            );
        }
        let mut anchors = Vec::new();
        for p in &tls.client_ca {
            for ca in crate::pem::load_certs("--client-ca", p)? {
                anchors.push(ca.to_der()?);
            }
        }
        config.x509 = Some(ServerX509 {
            certified_key: CertifiedKey {
                chain_der: chain.iter().map(|c| c.to_der()).collect::<Result<_, _>>()?,
                private_key_der: key.private_key_to_der()?,
            },
            client_trust_anchors_der: anchors,
            require_client_cert: true,
        });
        x509_key = Some((key, key_path));
    }
    if let Some(path) = &tls.rpk_key {
        let key = crate::pem::load_private_key("--rpk-key", path)?;
        let p256 = key
            .ec_key()
            .ok()
            .and_then(|k| k.group().curve_name())
            .is_some_and(|n| n == openssl::nid::Nid::X9_62_PRIME256V1);
        if !p256 {
            let kind = match key_type(&key) {
                "EC" => "it is an EC key on another curve",
                "RSA" => "it is an RSA key",
                other => &format!("it is a {other} key"),
            };
            bail!(
                "--rpk-key {} is not an EC P-256 key ({kind}); raw public keys need an EC P-256 (secp256r1) key: \
                 make one with `{EC_KEYGEN}`",
                path.display()
            );
        }
        if let Some((cert_key, key_path)) = &x509_key {
            if !cert_key.public_eq(&key) {
                bail!(
                    "--rpk-key {} differs from --key {}: with X.509 and RPK both on, the server presents one key \
                     pair; pass --rpk-key {}",
                    path.display(),
                    key_path.display(),
                    key_path.display()
                );
            }
        }
        config.rpk = Some(RawPublicKey::new(key.private_key_to_der()?, None));
    }
    if config.x509.is_some() || config.rpk.is_some() {
        DtlsServer::new(config.clone(), Arc::new(MemoryCredentialStore::new())).map_err(|e| match e {
            DtlsError::Unsupported(_) if config.rpk.is_some() => anyhow!(
                "--rpk-key: this lwm2m binary was built without raw public key support (RFC 7250 needs OpenSSL \
                 >= 3.2, which lwm2m-dtls's `vendored` feature builds from source); rebuild it with \
                 `cargo build --release -p lwm2m-cli --features lwm2m-dtls/vendored`, or drop --rpk-key \
                 (LWM2M_RPK_KEY, rpk_key in the config file)"
            ),
            e => anyhow!("cannot set up DTLS with --cert/--key/--client-ca/--rpk-key: {e}"),
        })?;
    }
    Ok(config)
}

/// The security modes a CoAPS socket with `config` accepts, for the startup line.
fn modes(config: &lwm2m_dtls::ServerConfig) -> String {
    let mut m = vec!["PSK"];
    if config.x509.is_some() {
        m.push("X.509");
    }
    if config.rpk.is_some() {
        m.push("RPK");
    }
    m.join(" + ")
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
    let tls = tls_files(args, file)?;
    let api_token = match api_token(
        args.api_token.as_deref(),
        args.api_token_file.as_deref(),
        "the command line or environment",
    )? {
        Some(t) => Some(t),
        None => api_token(
            file.api_token.as_deref(),
            relative_to(&file.base, &file.api_token_file).as_deref(),
            "the config file",
        )?,
    };
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
        api_token,
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
        tls,
        dtls: lwm2m_dtls::ServerConfig::default(),
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
                let dtls = DtlsServer::new(settings.dtls.clone(), credentials)
                    .map_err(|e| anyhow!("cannot set up DTLS for {addr}: {e}; pass --coaps-addr off to run without"))?;
                UdpEndpoint::spawn_secure(socket, endpoint, DtlsServerLayer::new(dtls), DriverConfig::default())
            } else {
                UdpEndpoint::spawn(socket, endpoint, DriverConfig::default())
            }
            .map_err(|e| bind_error(option, proto, addr, &e))?;
            let local = pair.0.local_addr();
            lines.push(if secure {
                format!(
                    "CoAPS  coaps://{local}  (DTLS 1.2 {}; device credentials from /api/security)",
                    modes(&settings.dtls)
                )
            } else {
                format!("CoAP   coap://{local}")
            });
            sockets.push(pair);
        }
    }
    Ok((sockets, lines))
}

/// Runs `lwm2m server`.
pub fn run(args: ServerArgs) -> Result<()> {
    let file = match &args.config {
        Some(p) => read_file(p)?,
        None => FileConfig::default(),
    };
    let mut settings = settings(&args, &file)?;
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log)
        .map_err(|e| anyhow!("--log {:?}: {e} (use error, warn, info, debug or trace)", settings.log))?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    if settings.coaps.addrs.is_empty() {
        if !settings.tls.is_empty() {
            tracing::warn!("--coaps-addr is off: --cert, --key, --client-ca and --rpk-key are not used");
        }
    } else {
        settings.dtls = dtls_config(&settings.tls)?;
    }
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
    let api = WebApi::new(server.clone(), security).with_token(settings.api_token.map(|t| t.0));
    let mut web = match settings.http {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| bind_error("--http-addr", "HTTP", addr, &e))?;
            let local = listener.local_addr().context("reading the HTTP address")?;
            lines.push(format!(
                "HTTP   http://{local}/api  (REST API, /api/events SSE, /metrics, /api/openapi.yaml)"
            ));
            lines.push(format!("UI     http://{local}/ui/  (web UI in a browser)"));
            lines.push(auth_line(
                api.auth_enabled(),
                "/api/* and /metrics",
                "LWM2M_API_TOKEN_FILE",
            ));
            let api = api.clone();
            HttpTask::spawn(move |stopped| async move { api.serve(listener, stopped).await })
        }
        None => {
            lines.push("HTTP   off".into());
            HttpTask::off()
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

    if let Err(e) = web.until_shutdown().await {
        server.shutdown().await;
        return Err(e);
    }
    say("stopping");
    web.stop().await;
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
        let s = settings(&args(), &file).unwrap();
        assert_eq!(s.tls.cert, Some(PathBuf::from("server.pem")));
        assert_eq!(s.tls.client_ca, vec![PathBuf::from("ca.pem")]);
    }

    #[test]
    fn api_token_merges_flags_env_and_file() {
        let dir = scratch("api-token");
        std::fs::write(dir.join("file-token"), "from-file\n").unwrap();
        std::fs::write(dir.join("flag-token"), "from-flag-file\n").unwrap();
        let token = |a: &ServerArgs, f: &FileConfig| settings(a, f).map(|s| s.api_token.map(|t| t.0));
        // None anywhere: open, and the startup line says so.
        assert_eq!(token(&args(), &FileConfig::default()).unwrap(), None);
        assert!(crate::serve::auth_line(false, "/api/*", "LWM2M_API_TOKEN_FILE").contains("unauthenticated"));
        // The file: api_token, or api_token_file relative to the file's directory.
        let file = read_file(&{
            let f = dir.join("server.toml");
            std::fs::write(&f, "api_token_file = \"file-token\"\n").unwrap();
            f
        })
        .unwrap();
        assert_eq!(token(&args(), &file).unwrap().as_deref(), Some("from-file"));
        let inline: FileConfig = toml::from_str("api_token = \"inline\"").unwrap();
        assert_eq!(token(&args(), &inline).unwrap().as_deref(), Some("inline"));
        // Flags (and the environment) win over the file.
        let a = ServerArgs {
            api_token_file: Some(dir.join("flag-token")),
            ..args()
        };
        assert_eq!(token(&a, &file).unwrap().as_deref(), Some("from-flag-file"));
        let a = ServerArgs {
            api_token: Some("flag".into()),
            ..args()
        };
        assert_eq!(token(&a, &file).unwrap().as_deref(), Some("flag"));
        // Both at one level, or an empty token, are refused.
        let both: FileConfig = toml::from_str("api_token = \"a\"\napi_token_file = \"b\"").unwrap();
        let e = format!("{:#}", token(&args(), &both).unwrap_err());
        assert!(e.contains("both given in the config file"), "{e}");
        let e = format!(
            "{:#}",
            token(
                &ServerArgs {
                    api_token: Some(" ".into()),
                    ..args()
                },
                &file
            )
            .unwrap_err()
        );
        assert!(e.contains("is empty"), "{e}");
        // The environment variable, and a help that says what no token means.
        #[derive(clap::Parser)]
        struct T {
            #[command(flatten)]
            a: ServerArgs,
        }
        use clap::{CommandFactory, Parser};
        let cmd = T::command();
        let arg = cmd.get_arguments().find(|a| a.get_id() == "api_token").unwrap();
        assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some("LWM2M_API_TOKEN"));
        let help = T::command().render_long_help().to_string();
        assert!(
            help.contains("--api-token-file") && help.contains("127.0.0.1"),
            "{help}"
        );
        let t = T::try_parse_from(["t", "--api-token", "x", "--api-token-file", "f"]).unwrap();
        let e = crate::serve::api_token(t.a.api_token.as_deref(), t.a.api_token_file.as_deref(), "flags");
        assert!(format!("{:#}", e.unwrap_err()).contains("both given in flags"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A scratch directory of this test process.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lwm2m-server-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn certificate_options_merge_flags_env_and_file() {
        let dir = scratch("tls-merge");
        let f = dir.join("server.toml");
        std::fs::write(
            &f,
            "cert = \"pki/server.pem\"\nkey = \"/abs/server.key\"\nclient_ca = [\"ca1.pem\", \"ca2.pem\"]\n\
             rpk_key = \"rpk.key\"\n",
        )
        .unwrap();
        let file = read_file(&f).unwrap();
        // The file alone: its relative paths are taken from its directory, absolute ones stay.
        let s = settings(&args(), &file).unwrap();
        assert_eq!(
            s.tls,
            TlsFiles {
                cert: Some(dir.join("pki/server.pem")),
                key: Some(PathBuf::from("/abs/server.key")),
                client_ca: vec![dir.join("ca1.pem"), dir.join("ca2.pem")],
                rpk_key: Some(dir.join("rpk.key")),
            }
        );
        // One file name instead of a list.
        let one: FileConfig = toml::from_str("cert = \"c.pem\"\nkey = \"k.pem\"\nclient_ca = \"ca.pem\"\n").unwrap();
        assert_eq!(
            settings(&args(), &one).unwrap().tls.client_ca,
            vec![PathBuf::from("ca.pem")]
        );
        // Flags win over the file, each option on its own (paths as given, relative to the working directory).
        let a = ServerArgs {
            cert: Some("my.pem".into()),
            client_ca: vec!["a.pem".into()],
            ..args()
        };
        let s = settings(&a, &file).unwrap();
        assert_eq!(s.tls.cert, Some(PathBuf::from("my.pem")));
        assert_eq!(s.tls.key, Some(PathBuf::from("/abs/server.key")));
        assert_eq!(s.tls.client_ca, vec![PathBuf::from("a.pem")]);
        assert_eq!(s.tls.rpk_key, Some(dir.join("rpk.key")));
        // Defaults: no certificate, PSK only.
        let s = settings(&args(), &FileConfig::default()).unwrap();
        assert!(s.tls.is_empty());
        assert_eq!(modes(&s.dtls), "PSK");
        assert!(s.dtls.psk);

        // The environment as clap reads it: below the flags, above the file; LWM2M_CLIENT_CA is a comma list.
        #[derive(clap::Parser)]
        struct T {
            #[command(flatten)]
            a: ServerArgs,
        }
        use clap::Parser;
        std::env::set_var("LWM2M_CLIENT_CA", "env1.pem,env2.pem");
        std::env::set_var("LWM2M_RPK_KEY", "env-rpk.key");
        let from_env = T::try_parse_from(["t"]).map(|t| t.a);
        let flags = T::try_parse_from([
            "t",
            "--rpk-key",
            "flag.key",
            "--client-ca",
            "f1.pem",
            "--client-ca",
            "f2.pem",
        ])
        .map(|t| t.a);
        std::env::remove_var("LWM2M_CLIENT_CA");
        std::env::remove_var("LWM2M_RPK_KEY");
        let s = settings(&from_env.unwrap(), &file).unwrap();
        assert_eq!(
            s.tls.client_ca,
            vec![PathBuf::from("env1.pem"), PathBuf::from("env2.pem")]
        );
        assert_eq!(s.tls.rpk_key, Some(PathBuf::from("env-rpk.key")));
        assert_eq!(
            s.tls.cert,
            Some(dir.join("pki/server.pem")),
            "the file fills in the rest"
        );
        let s = settings(&flags.unwrap(), &file).unwrap();
        assert_eq!(s.tls.client_ca, vec![PathBuf::from("f1.pem"), PathBuf::from("f2.pem")]);
        assert_eq!(s.tls.rpk_key, Some(PathBuf::from("flag.key")));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn incomplete_certificate_options_say_what_is_missing() {
        let err = |a: ServerArgs| format!("{:#}", settings(&a, &FileConfig::default()).unwrap_err());
        let e = err(ServerArgs {
            cert: Some("c.pem".into()),
            client_ca: vec!["ca.pem".into()],
            ..args()
        });
        assert!(e.contains("without --key") && e.contains("pass --key FILE"), "{e}");
        let e = err(ServerArgs {
            key: Some("k.pem".into()),
            ..args()
        });
        assert!(e.contains("without --cert") && e.contains("--rpk-key"), "{e}");
        let e = err(ServerArgs {
            cert: Some("c.pem".into()),
            key: Some("k.pem".into()),
            ..args()
        });
        assert!(e.contains("--cert needs --client-ca FILE"), "{e}");
        let e = err(ServerArgs {
            client_ca: vec!["ca.pem".into()],
            ..args()
        });
        assert!(e.contains("--client-ca is given without --cert and --key"), "{e}");
        // RPK alone is complete.
        let a = ServerArgs {
            rpk_key: Some("r.key".into()),
            ..args()
        };
        assert!(settings(&a, &FileConfig::default()).is_ok());
        assert!(
            toml::from_str::<FileConfig>("certificate = \"x\"").is_err(),
            "unknown keys are refused"
        );
    }

    use openssl::pkey::{PKey, Private};
    use openssl::x509::X509;

    fn ec_key() -> PKey<Private> {
        use openssl::ec::{EcGroup, EcKey};
        let group = EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
    }

    /// A certificate for `cn`: self-signed CA without `issuer`, else issued by it; valid from `from` to `to`
    /// (Unix seconds), or for a day from now.
    fn cert(
        cn: &str,
        key: &PKey<Private>,
        issuer: Option<(&X509, &PKey<Private>)>,
        validity: Option<(i64, i64)>,
    ) -> X509 {
        use openssl::asn1::Asn1Time;
        use openssl::x509::extension::BasicConstraints;
        let mut name = openssl::x509::X509Name::builder().unwrap();
        name.append_entry_by_nid(openssl::nid::Nid::COMMONNAME, cn).unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_pubkey(key).unwrap();
        let (from, to) = match validity {
            Some((f, t)) => (Asn1Time::from_unix(f).unwrap(), Asn1Time::from_unix(t).unwrap()),
            None => (Asn1Time::days_from_now(0).unwrap(), Asn1Time::days_from_now(1).unwrap()),
        };
        b.set_not_before(&from).unwrap();
        b.set_not_after(&to).unwrap();
        match issuer {
            None => {
                b.set_issuer_name(&name).unwrap();
                b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                    .unwrap();
                b.sign(key, openssl::hash::MessageDigest::sha256()).unwrap();
            }
            Some((ca, ca_key)) => {
                b.set_issuer_name(ca.subject_name()).unwrap();
                b.sign(ca_key, openssl::hash::MessageDigest::sha256()).unwrap();
            }
        }
        b.build()
    }

    #[test]
    fn certificate_files_load_into_the_dtls_configuration() {
        let dir = scratch("tls-load");
        let w = |name: &str, data: &[u8]| {
            let p = dir.join(name);
            std::fs::write(&p, data).unwrap();
            p
        };
        let (ca_key, other_key, server_key) = (ec_key(), ec_key(), ec_key());
        let ca = cert("CA", &ca_key, None, None);
        let other_ca = cert("other CA", &other_key, None, None);
        let server = cert("localhost", &server_key, Some((&ca, &ca_key)), None);
        // A PEM chain with the key in the same file (skipped), a SEC1 key, a two-CA PEM bundle and a DER CA.
        let mut chain = server.to_pem().unwrap();
        chain.extend(server_key.private_key_to_pem_pkcs8().unwrap());
        chain.extend(ca.to_pem().unwrap());
        let chain_pem = w("chain.pem", &chain);
        let sec1 = w(
            "server.key",
            &server_key.ec_key().unwrap().private_key_to_pem().unwrap(),
        );
        let mut bundle = ca.to_pem().unwrap();
        bundle.extend(other_ca.to_pem().unwrap());
        let bundle = w("bundle.pem", &bundle);
        let ca_der = w("ca.der", &ca.to_der().unwrap());
        let key_der = w("server.der", &server_key.private_key_to_der().unwrap());
        let tls = TlsFiles {
            cert: Some(chain_pem.clone()),
            key: Some(sec1.clone()),
            client_ca: vec![bundle.clone(), ca_der.clone()],
            rpk_key: None,
        };
        let c = dtls_config(&tls).unwrap();
        let x = c.x509.as_ref().unwrap();
        assert_eq!(
            x.certified_key.chain_der,
            vec![server.to_der().unwrap(), ca.to_der().unwrap()]
        );
        assert!(PKey::private_key_from_der(&x.certified_key.private_key_der)
            .unwrap()
            .public_eq(&server_key));
        assert_eq!(
            x.client_trust_anchors_der,
            vec![ca.to_der().unwrap(), other_ca.to_der().unwrap(), ca.to_der().unwrap()]
        );
        assert!(x.require_client_cert && c.psk && c.rpk.is_none());
        assert_eq!(modes(&c), "PSK + X.509");
        // A DER key works the same.
        let der = TlsFiles {
            key: Some(key_der.clone()),
            ..tls.clone()
        };
        assert!(dtls_config(&der).unwrap().x509.is_some());

        let fails = |t: &TlsFiles| format!("{:#}", dtls_config(t).unwrap_err());
        // The key of another certificate.
        let wrong = w("other.key", &other_key.private_key_to_pem_pkcs8().unwrap());
        let e = fails(&TlsFiles {
            key: Some(wrong.clone()),
            ..tls.clone()
        });
        assert!(
            e.contains("is not the private key of --cert") && e.contains("other.key"),
            "{e}"
        );
        // Unreadable and wrong files name the option and the file.
        let e = fails(&TlsFiles {
            cert: Some(dir.join("missing.pem")),
            ..tls.clone()
        });
        assert!(
            e.contains("--cert: cannot read") && e.contains("missing.pem") && e.contains("check the path"),
            "{e}"
        );
        let e = fails(&TlsFiles {
            cert: Some(sec1.clone()),
            ..tls.clone()
        });
        assert!(e.contains("holds no certificate"), "{e}");
        let e = fails(&TlsFiles {
            key: Some(bundle.clone()),
            ..tls.clone()
        });
        assert!(
            e.starts_with("--key:") && e.contains("not a PEM or DER private key"),
            "{e}"
        );
        let e = fails(&TlsFiles {
            client_ca: vec![sec1.clone()],
            ..tls.clone()
        });
        assert!(e.starts_with("--client-ca:") && e.contains("server.key"), "{e}");
        // An expired server certificate.
        let old = cert(
            "localhost",
            &server_key,
            Some((&ca, &ca_key)),
            Some((1_000_000_000, 1_000_086_400)),
        );
        let old = w("old.pem", &old.to_pem().unwrap());
        let e = fails(&TlsFiles {
            cert: Some(old),
            ..tls.clone()
        });
        assert!(e.contains("expired") && e.contains("renew"), "{e}");
        // An RSA server key: the ECDHE_ECDSA suites cannot use it.
        let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(1024).unwrap()).unwrap();
        let rsa_cert = cert("localhost", &rsa, Some((&ca, &ca_key)), None);
        let e = fails(&TlsFiles {
            cert: Some(w("rsa.pem", &rsa_cert.to_pem().unwrap())),
            key: Some(w("rsa.key", &rsa.private_key_to_pem_pkcs8().unwrap())),
            ..tls.clone()
        });
        assert!(e.contains("is RSA") && e.contains("prime256v1"), "{e}");

        // RPK: a non-EC or non-P-256 key is refused whatever the build; so is a key that is not --key's.
        let e = fails(&TlsFiles {
            rpk_key: Some(dir.join("rsa.key")),
            ..TlsFiles::default()
        });
        assert!(
            e.contains("not an EC P-256 key (it is an RSA key)") && e.contains("prime256v1"),
            "{e}"
        );
        let p384 = {
            use openssl::ec::{EcGroup, EcKey};
            let g = EcGroup::from_curve_name(openssl::nid::Nid::SECP384R1).unwrap();
            PKey::from_ec_key(EcKey::generate(&g).unwrap()).unwrap()
        };
        let e = fails(&TlsFiles {
            rpk_key: Some(w("p384.key", &p384.private_key_to_pem_pkcs8().unwrap())),
            ..TlsFiles::default()
        });
        assert!(e.contains("another curve"), "{e}");
        let e = fails(&TlsFiles {
            rpk_key: Some(wrong),
            ..tls.clone()
        });
        assert!(e.contains("--rpk-key") && e.contains("differs from --key"), "{e}");
        // A fitting RPK key: accepted with the vendored OpenSSL, else refused with the rebuild command.
        for t in [
            TlsFiles {
                rpk_key: Some(sec1.clone()),
                ..TlsFiles::default()
            },
            TlsFiles {
                rpk_key: Some(key_der.clone()),
                ..tls.clone()
            },
        ] {
            match dtls_config(&t) {
                Ok(c) => {
                    assert!(c.rpk.is_some());
                    assert!(modes(&c).ends_with("RPK"), "{}", modes(&c));
                }
                Err(e) => {
                    let e = format!("{e:#}");
                    assert!(
                        e.contains("without raw public key support")
                            && e.contains("cargo build --release -p lwm2m-cli --features lwm2m-dtls/vendored"),
                        "{e}"
                    );
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
