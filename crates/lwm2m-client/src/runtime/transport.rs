//! Server URIs and the CoAP endpoints the runtime opens for them: one UDP socket (an ephemeral local port) per
//! server account, plain CoAP for `coap://`, CoAP over DTLS for `coaps://` through `lwm2m-dtls` (PSK, X.509, and
//! raw public keys when `lwm2m-dtls` is built with its `vendored` feature).
//!
//! **Cipher suites (`/0/x/16`).** Without the resource the handshake offers the mode's mandatory suite
//! (TLS_PSK_WITH_AES_128_CCM_8 for PSK, TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 for X.509 and RPK). With it, the
//! handshake offers exactly the listed suites, in the listed order ([`offered_suites`]): values this client does
//! not implement (see `lwm2m_dtls::CipherSuite`) and suites of the other key exchange (an ECDHE_ECDSA suite on a
//! PSK account, a PSK suite on a certificate or RPK account) are skipped with a warning; when none is left the
//! endpoint is not opened ([`ConnectError::Security`], naming `/0/x/16`), which the runtime counts as a failed
//! attempt (a handshake failure).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use lwm2m_coap::transport::udp::{Incoming, UdpEndpoint, UdpHandle};
use lwm2m_coap::EndpointConfig;
use tokio::sync::mpsc;

use crate::objects::security::{SecurityInstance, SecurityMode};

/// Default port of `coap://`.
pub const COAP_PORT: u16 = 5683;
/// Default port of `coaps://`.
pub const COAPS_PORT: u16 = 5684;

/// A parsed `coap://` or `coaps://` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoapUri {
    /// `coaps://`.
    pub secure: bool,
    /// Host name or IP literal (without brackets).
    pub host: String,
    /// Port (the scheme's default when absent).
    pub port: u16,
    /// Path and query after the authority (`/fw.bin?x=1`), empty when none.
    pub path_and_query: String,
}

impl CoapUri {
    /// Parses `coap://host[:port][/path][?query]` or `coaps://...`; IPv6 literals go in brackets.
    pub fn parse(uri: &str) -> Result<CoapUri, ConnectError> {
        let invalid = |why: &str| ConnectError::InvalidUri {
            uri: uri.to_owned(),
            reason: why.to_owned(),
        };
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| invalid("expected coap://host:port or coaps://host:port"))?;
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "coap" => false,
            "coaps" => true,
            other => {
                return Err(ConnectError::UnsupportedScheme {
                    uri: uri.to_owned(),
                    scheme: other.to_owned(),
                })
            }
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path_and_query) = rest.split_at(split);
        if authority.is_empty() {
            return Err(invalid("the host is missing"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| invalid("an IPv6 literal needs a closing ]"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| invalid("junk after the IPv6 literal"))?,
                ),
            };
            (h, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(invalid("the host is missing"));
        }
        let port = match port {
            None => {
                if secure {
                    COAPS_PORT
                } else {
                    COAP_PORT
                }
            }
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| invalid("the port is not a number in 1..=65535"))?,
        };
        Ok(CoapUri {
            secure,
            host: host.to_owned(),
            port,
            path_and_query: path_and_query.to_owned(),
        })
    }

    /// Resolves the host (IP literals without a lookup) to its first address.
    pub async fn resolve(&self) -> Result<SocketAddr, ConnectError> {
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, self.port));
        }
        let mut addrs = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| ConnectError::Resolve {
                host: self.host.clone(),
                reason: e.to_string(),
            })?;
        addrs.next().ok_or_else(|| ConnectError::Resolve {
            host: self.host.clone(),
            reason: "no address found".into(),
        })
    }
}

/// Why an endpoint for a server could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// The URI does not parse.
    #[error("invalid server URI {uri:?}: {reason}")]
    InvalidUri {
        /// The URI.
        uri: String,
        /// What is wrong.
        reason: String,
    },
    /// A scheme other than `coap` and `coaps` (TCP, SMS and Non-IP bindings are not supported).
    #[error("server URI {uri:?}: scheme {scheme:?} is not supported (use coap:// or coaps://)")]
    UnsupportedScheme {
        /// The URI.
        uri: String,
        /// Its scheme.
        scheme: String,
    },
    /// The host name did not resolve.
    #[error("cannot resolve {host:?}: {reason}")]
    Resolve {
        /// The host.
        host: String,
        /// The resolver's answer.
        reason: String,
    },
    /// The local socket could not be bound.
    #[error("cannot bind a local UDP socket: {0}")]
    Bind(String),
    /// The account's security mode cannot be used with the URI or is not supported.
    #[error("{0}")]
    Security(String),
}

/// What a secure endpoint needs from the account (`/0/x/2`..`/0/x/5`, `/0/x/14`, `/0/x/15`), comparable so that a
/// changed account gets a new endpoint (digest §3.3: close the session when security data changes).
#[derive(Clone, PartialEq, Eq)]
pub struct AccountSecurity {
    /// The server URI (`/0/x/0`).
    pub uri: String,
    /// Security mode.
    pub mode: SecurityMode,
    /// `/0/x/3`: PSK identity, own certificate (DER) or own public key (SubjectPublicKeyInfo, DER).
    pub identity: Vec<u8>,
    /// `/0/x/5`: PSK key or private key (DER).
    pub secret: Vec<u8>,
    /// `/0/x/4`: the server's certificate or CA (X.509) or public key (RPK), DER.
    pub server_key: Vec<u8>,
    /// `/0/x/15` Certificate Usage (absent: 3, domain-issued certificate).
    pub certificate_usage: Option<u64>,
    /// `/0/x/14` SNI (absent: the URI host).
    pub sni: Option<String>,
    /// `/0/x/16` DTLS/TLS Ciphersuite: IANA values of the suites to offer (empty: the mode's default).
    pub ciphersuites: Vec<u64>,
}

impl std::fmt::Debug for AccountSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountSecurity")
            .field("uri", &self.uri)
            .field("mode", &self.mode)
            .field("identity", &String::from_utf8_lossy(&self.identity))
            .field("certificate_usage", &self.certificate_usage)
            .field("sni", &self.sni)
            .field("ciphersuites", &self.ciphersuites)
            .finish_non_exhaustive()
    }
}

impl AccountSecurity {
    /// The security data of a Security instance.
    pub fn of(s: &SecurityInstance) -> AccountSecurity {
        AccountSecurity {
            uri: s.uri.clone(),
            mode: s.mode,
            identity: s.public_key_or_identity.clone(),
            secret: s.secret_key.clone(),
            server_key: s.server_public_key.clone(),
            certificate_usage: s.certificate_usage,
            sni: s.sni.clone(),
            ciphersuites: s.ciphersuites.clone(),
        }
    }

    /// A plain account (mode NoSec, no keys) for `uri`.
    pub fn nosec(uri: impl Into<String>) -> AccountSecurity {
        AccountSecurity {
            uri: uri.into(),
            mode: SecurityMode::NoSec,
            identity: Vec::new(),
            secret: Vec::new(),
            server_key: Vec::new(),
            certificate_usage: None,
            sni: None,
            ciphersuites: Vec::new(),
        }
    }
}

/// An open endpoint: the handle, its inbound channel and the server's address.
pub struct Opened {
    /// The driver handle.
    pub handle: UdpHandle,
    /// Inbound requests and events.
    pub incoming: mpsc::Receiver<Incoming>,
    /// The server's resolved address.
    pub peer: SocketAddr,
}

/// The unspecified address of the peer's family, port 0.
fn local_for(peer: SocketAddr) -> SocketAddr {
    match peer {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
}

/// Opens an endpoint for `account` on an ephemeral local port: plain CoAP for `coap://` (any credentials are
/// ignored), DTLS with the account's PSK, certificate or raw public key for `coaps://`.
pub async fn open(account: &AccountSecurity, coap: &EndpointConfig) -> Result<Opened, ConnectError> {
    let uri = CoapUri::parse(&account.uri)?;
    let peer = uri.resolve().await?;
    let local = local_for(peer);
    let (handle, incoming) = if uri.secure {
        open_secure(account, &uri.host, local, coap).await?
    } else {
        if account.mode != SecurityMode::NoSec {
            tracing::warn!(uri = %account.uri, mode = ?account.mode, "coap:// URI: security mode ignored, using plain CoAP");
        }
        UdpEndpoint::bind(local, coap.clone())
            .await
            .map_err(|e| ConnectError::Bind(e.to_string()))?
    };
    Ok(Opened { handle, incoming, peer })
}

/// A `/0/x/16` value that [`offered_suites`] left out.
#[cfg(feature = "dtls")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkippedSuite {
    /// No cipher suite this client implements has this IANA value (or it is not a 16-bit value).
    Unsupported(u64),
    /// A suite of the other key exchange: ECDHE_ECDSA on a PSK account, PSK on a certificate or RPK account.
    WrongMode(lwm2m_dtls::CipherSuite),
}

#[cfg(feature = "dtls")]
impl std::fmt::Display for SkippedSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkippedSuite::Unsupported(v) => write!(f, "{v} (0x{v:04X}) is not a supported cipher suite"),
            SkippedSuite::WrongMode(s) => write!(
                f,
                "{} (0x{:04X}) does not fit the security mode",
                s.openssl_name(),
                s.iana()
            ),
        }
    }
}

/// Maps `/0/x/16` DTLS/TLS Ciphersuite (IANA values, in the resource's order) to the suites a handshake with a
/// PSK (`psk`) or certificate/RPK account offers, and the values left out (duplicates are dropped silently).
#[cfg(feature = "dtls")]
pub fn offered_suites(ids: &[u64], psk: bool) -> (Vec<lwm2m_dtls::CipherSuite>, Vec<SkippedSuite>) {
    let mut offered = Vec::new();
    let mut skipped = Vec::new();
    for &id in ids {
        match u16::try_from(id).ok().and_then(lwm2m_dtls::CipherSuite::from_iana) {
            None => skipped.push(SkippedSuite::Unsupported(id)),
            Some(s) if s.is_psk() != psk => skipped.push(SkippedSuite::WrongMode(s)),
            Some(s) if offered.contains(&s) => {}
            Some(s) => offered.push(s),
        }
    }
    (offered, skipped)
}

/// The DTLS client configuration of a `coaps://` account (`host`: the URI host, the default server name).
#[cfg(feature = "dtls")]
pub fn dtls_config(account: &AccountSecurity, host: &str) -> Result<lwm2m_dtls::ClientConfig, ConnectError> {
    use lwm2m_dtls::{CertificateUsage, CertifiedKey, ClientConfig, ClientSecurity, RawPublicKey, ServerTrust};
    let uri = &account.uri;
    let refuse = |why: String| ConnectError::Security(format!("{uri}: {why}"));
    let suites = if account.ciphersuites.is_empty() {
        None
    } else {
        let psk = account.mode == SecurityMode::Psk;
        let (offered, skipped) = offered_suites(&account.ciphersuites, psk);
        for s in &skipped {
            tracing::warn!(%uri, "/0/x/16 DTLS/TLS Ciphersuite: {s}; skipped");
        }
        if offered.is_empty() {
            return Err(refuse(format!(
                "/0/x/16 DTLS/TLS Ciphersuite {:?} leaves no cipher suite to offer in {:?} mode (supported: {})",
                account.ciphersuites,
                account.mode,
                lwm2m_dtls::CipherSuite::ALL
                    .iter()
                    .filter(|s| s.is_psk() == psk)
                    .map(|s| format!("{} = {}", s.openssl_name(), s.iana()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Some(offered)
    };
    let security = match account.mode {
        SecurityMode::Psk => {
            if account.identity.is_empty() || account.secret.is_empty() {
                return Err(refuse("PSK mode needs an identity (/0/x/3) and a key (/0/x/5)".into()));
            }
            return Ok(ClientConfig {
                suites,
                ..ClientConfig::psk(account.identity.clone(), account.secret.clone())
            });
        }
        SecurityMode::Certificate => {
            if account.identity.is_empty() || account.secret.is_empty() || account.server_key.is_empty() {
                return Err(refuse(
                    "certificate mode needs the client certificate (/0/x/3), its private key (/0/x/5) and the \
                     server certificate or CA (/0/x/4)"
                        .into(),
                ));
            }
            let usage = match account.certificate_usage {
                None => CertificateUsage::DomainIssuedCertificate,
                Some(u) => u8::try_from(u)
                    .ok()
                    .and_then(CertificateUsage::from_u8)
                    .ok_or_else(|| refuse(format!("Certificate Usage (/0/x/15) {u} is outside 0..3")))?,
            };
            let server_name = account
                .sni
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| host.to_owned());
            ClientSecurity::X509 {
                own: CertifiedKey {
                    chain_der: vec![account.identity.clone()],
                    private_key_der: account.secret.clone(),
                },
                trust: ServerTrust {
                    usage,
                    certificate_der: account.server_key.clone(),
                    server_name: Some(server_name),
                    extra_trust_anchors: Vec::new(),
                },
            }
        }
        SecurityMode::Rpk => {
            if account.secret.is_empty() || account.server_key.is_empty() {
                return Err(refuse(
                    "raw public key mode needs the private key (/0/x/5) and the server's public key (/0/x/4)".into(),
                ));
            }
            let rpk = RawPublicKey::new(account.secret.clone(), Some(account.server_key.clone()));
            if !account.identity.is_empty() && rpk.public_key_der().ok().as_ref() != Some(&account.identity) {
                tracing::warn!(%uri, "/0/x/3 is not the public key of /0/x/5; the server sees the key of /0/x/5");
            }
            ClientSecurity::Rpk(rpk)
        }
        SecurityMode::NoSec => {
            return Err(refuse(
                "a coaps:// server needs credentials (security mode is NoSec); use coap:// or configure a PSK, a \
                 certificate or a raw public key"
                    .into(),
            ))
        }
        other => {
            return Err(refuse(format!(
                "security mode {other:?} is not supported by the client runtime (PSK, RPK and X.509 are)"
            )))
        }
    };
    Ok(ClientConfig {
        security,
        timing: lwm2m_dtls::Timing::default(),
        ciphers: lwm2m_dtls::CipherOptions::CCM8_ONLY,
        resumption: true,
        suites,
    })
}

#[cfg(feature = "dtls")]
async fn open_secure(
    account: &AccountSecurity,
    host: &str,
    local: SocketAddr,
    coap: &EndpointConfig,
) -> Result<(UdpHandle, mpsc::Receiver<Incoming>), ConnectError> {
    use lwm2m_dtls::coap_layer::DtlsClientLayer;
    let cfg = dtls_config(account, host)?;
    let layer = DtlsClientLayer::with_default(cfg).map_err(|e| {
        let hint = match (&e, account.mode) {
            (lwm2m_dtls::DtlsError::Unsupported(_), SecurityMode::Rpk) => {
                " (raw public keys need lwm2m-dtls built with its `vendored` feature)"
            }
            _ => "",
        };
        ConnectError::Security(format!(
            "{}: DTLS client setup ({:?} mode) failed: {e}{hint}",
            account.uri, account.mode
        ))
    })?;
    UdpEndpoint::bind_secure(local, coap.clone(), layer)
        .await
        .map_err(|e| ConnectError::Bind(e.to_string()))
}

#[cfg(not(feature = "dtls"))]
async fn open_secure(
    account: &AccountSecurity,
    _host: &str,
    _local: SocketAddr,
    _coap: &EndpointConfig,
) -> Result<(UdpHandle, mpsc::Receiver<Incoming>), ConnectError> {
    Err(ConnectError::Security(format!(
        "{}: coaps:// needs lwm2m-client's `dtls` feature",
        account.uri
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_coap_uris() {
        let u = CoapUri::parse("coap://127.0.0.1:5683").unwrap();
        assert_eq!((u.secure, u.host.as_str(), u.port), (false, "127.0.0.1", 5683));
        let u = CoapUri::parse("coaps://dm.example.com").unwrap();
        assert_eq!((u.secure, u.host.as_str(), u.port), (true, "dm.example.com", 5684));
        let u = CoapUri::parse("coap://[::1]:7000/fw/image.bin?v=2").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path_and_query.as_str()),
            ("::1", 7000, "/fw/image.bin?v=2")
        );
        let u = CoapUri::parse("COAP://h/x").unwrap();
        assert_eq!((u.port, u.path_and_query.as_str()), (5683, "/x"));
        let u = CoapUri::parse("coap://[fe80::1]").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("fe80::1", 5683));
    }

    #[test]
    fn rejects_bad_uris_with_the_reason() {
        let e = CoapUri::parse("127.0.0.1:5683").unwrap_err();
        assert!(e.to_string().contains("expected coap://"), "{e}");
        let e = CoapUri::parse("coap+tcp://h:1").unwrap_err();
        assert!(matches!(e, ConnectError::UnsupportedScheme { .. }), "{e}");
        assert!(e.to_string().contains("use coap:// or coaps://"));
        for bad in [
            "coap://",
            "coap://:5683",
            "coap://h:x",
            "coap://h:0",
            "coap://h:70000",
            "coap://[::1",
            "coap://[::1]x",
        ] {
            assert!(
                matches!(CoapUri::parse(bad), Err(ConnectError::InvalidUri { .. })),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn resolves_literals_without_lookup() {
        let u = CoapUri::parse("coap://127.0.0.1:9").unwrap();
        assert_eq!(u.resolve().await.unwrap(), "127.0.0.1:9".parse().unwrap());
        let u = CoapUri::parse("coap://localhost:9").unwrap();
        assert!(u.resolve().await.unwrap().ip().is_loopback());
    }

    #[cfg(feature = "dtls")]
    #[test]
    fn dtls_config_maps_the_security_modes() {
        use lwm2m_dtls::{CertificateUsage, ClientSecurity};
        let x509 = AccountSecurity {
            mode: SecurityMode::Certificate,
            identity: vec![1],
            secret: vec![2],
            server_key: vec![3],
            ..AccountSecurity::nosec("coaps://dm.example.com")
        };
        let c = dtls_config(&x509, "dm.example.com").unwrap();
        let ClientSecurity::X509 { own, trust } = &c.security else {
            panic!("{c:?}")
        };
        assert_eq!(
            (own.chain_der.as_slice(), own.private_key_der.as_slice()),
            (&[vec![1]][..], &[2][..])
        );
        assert_eq!(
            trust.usage,
            CertificateUsage::DomainIssuedCertificate,
            "absent /0/x/15 means 3"
        );
        assert_eq!(
            (trust.certificate_der.as_slice(), trust.server_name.as_deref()),
            (&[3][..], Some("dm.example.com"))
        );
        let sni = AccountSecurity {
            certificate_usage: Some(0),
            sni: Some("other.example".into()),
            ..x509.clone()
        };
        let c = dtls_config(&sni, "dm.example.com").unwrap();
        let ClientSecurity::X509 { trust, .. } = &c.security else {
            panic!("{c:?}")
        };
        assert_eq!(
            (trust.usage, trust.server_name.as_deref()),
            (CertificateUsage::CaConstraint, Some("other.example"))
        );
        let bad = AccountSecurity {
            certificate_usage: Some(4),
            ..x509.clone()
        };
        let e = dtls_config(&bad, "h").unwrap_err();
        assert!(e.to_string().contains("/0/x/15) 4 is outside 0..3"), "{e}");
        let missing = AccountSecurity {
            server_key: Vec::new(),
            ..x509.clone()
        };
        assert!(dtls_config(&missing, "h").unwrap_err().to_string().contains("(/0/x/4)"));
        let rpk = AccountSecurity {
            mode: SecurityMode::Rpk,
            ..x509.clone()
        };
        let c = dtls_config(&rpk, "h").unwrap();
        assert!(
            matches!(&c.security, ClientSecurity::Rpk(k) if k.private_key_der == [2] && k.peer_spki_der == Some(vec![3]))
        );
        let est = AccountSecurity {
            mode: SecurityMode::CertificateEst,
            ..x509
        };
        assert!(dtls_config(&est, "h")
            .unwrap_err()
            .to_string()
            .contains("CertificateEst"));
    }

    #[cfg(feature = "dtls")]
    #[test]
    fn ciphersuite_resource_maps_to_the_offered_suites() {
        use lwm2m_dtls::CipherSuite as C;
        // PSK: CCM_8 (49320), CBC_SHA256 (0x00AE), GCM (0x00A8) in the listed order; unknown values, a duplicate
        // and an ECDHE_ECDSA suite are left out.
        let (offered, skipped) = offered_suites(&[0x00AE, 49320, 0x1301, 0xC0AE, 49320, 0x00A8, 70_000], true);
        assert_eq!(
            offered,
            [C::PskAes128CbcSha256, C::PskAes128Ccm8, C::PskAes128GcmSha256]
        );
        assert_eq!(
            skipped,
            [
                SkippedSuite::Unsupported(0x1301),
                SkippedSuite::WrongMode(C::EcdheEcdsaAes128Ccm8),
                SkippedSuite::Unsupported(70_000),
            ]
        );
        assert_eq!(skipped[0].to_string(), "4865 (0x1301) is not a supported cipher suite");
        assert!(skipped[1]
            .to_string()
            .contains("ECDHE-ECDSA-AES128-CCM8 (0xC0AE) does not fit"));
        // Certificates and RPK: the ECDHE_ECDSA suites only.
        let (offered, skipped) = offered_suites(&[0xC02B, 0xC023, 0xC0AE, 0xC0A8], false);
        assert_eq!(
            offered,
            [
                C::EcdheEcdsaAes128GcmSha256,
                C::EcdheEcdsaAes128CbcSha256,
                C::EcdheEcdsaAes128Ccm8
            ]
        );
        assert_eq!(skipped, [SkippedSuite::WrongMode(C::PskAes128Ccm8)]);
        assert_eq!(offered_suites(&[], true), (vec![], vec![]));
    }

    #[cfg(feature = "dtls")]
    #[test]
    fn dtls_config_offers_the_ciphersuite_resource() {
        use lwm2m_dtls::CipherSuite as C;
        let psk = AccountSecurity {
            mode: SecurityMode::Psk,
            identity: b"id".to_vec(),
            secret: vec![7; 16],
            ..AccountSecurity::nosec("coaps://127.0.0.1")
        };
        assert_eq!(
            dtls_config(&psk, "h").unwrap().suites,
            None,
            "absent: the default suites"
        );
        let listed = AccountSecurity {
            ciphersuites: vec![0xBEEF, 0x00AE],
            ..psk.clone()
        };
        assert_eq!(
            dtls_config(&listed, "h").unwrap().suites,
            Some(vec![C::PskAes128CbcSha256])
        );
        let none_left = AccountSecurity {
            ciphersuites: vec![0xBEEF, 0xC0AE],
            ..psk.clone()
        };
        let e = dtls_config(&none_left, "h").unwrap_err();
        assert!(matches!(e, ConnectError::Security(_)), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("/0/x/16") && msg.contains("PSK-AES128-CCM8 = 49320"),
            "{msg}"
        );
        let x509 = AccountSecurity {
            mode: SecurityMode::Certificate,
            identity: vec![1],
            secret: vec![2],
            server_key: vec![3],
            ciphersuites: vec![0xC0A8, 0xC02B],
            ..AccountSecurity::nosec("coaps://dm.example.com")
        };
        assert_eq!(
            dtls_config(&x509, "dm.example.com").unwrap().suites,
            Some(vec![C::EcdheEcdsaAes128GcmSha256])
        );
        // A changed list is a changed account: the runtime opens a new endpoint.
        assert_ne!(listed, psk);
    }

    #[tokio::test]
    async fn coaps_without_credentials_is_refused() {
        let acc = AccountSecurity::nosec("coaps://127.0.0.1:5684");
        let e = open(&acc, &EndpointConfig::default()).await.err().unwrap();
        assert!(matches!(e, ConnectError::Security(_)), "{e}");
    }
}
