//! Configuration shared by the client and the server: cipher suites, timers, MTU, X.509 trust.

use crate::error::{DtlsError, Result};

/// A DTLS 1.2 cipher suite this crate can negotiate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherSuite {
    /// TLS_PSK_WITH_AES_128_CCM_8 (0xC0A8), mandatory for LwM2M PSK.
    PskAes128Ccm8,
    /// TLS_PSK_WITH_AES_128_CBC_SHA256 (0x00AE), mandatory for an LwM2M server.
    PskAes128CbcSha256,
    /// TLS_PSK_WITH_AES_128_GCM_SHA256 (0x00A8).
    PskAes128GcmSha256,
    /// TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 (0xC0AE), mandatory for LwM2M certificates.
    EcdheEcdsaAes128Ccm8,
    /// TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 (0xC023).
    EcdheEcdsaAes128CbcSha256,
    /// TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (0xC02B).
    EcdheEcdsaAes128GcmSha256,
}

impl CipherSuite {
    /// IANA value.
    pub fn iana(self) -> u16 {
        match self {
            CipherSuite::PskAes128Ccm8 => 0xC0A8,
            CipherSuite::PskAes128CbcSha256 => 0x00AE,
            CipherSuite::PskAes128GcmSha256 => 0x00A8,
            CipherSuite::EcdheEcdsaAes128Ccm8 => 0xC0AE,
            CipherSuite::EcdheEcdsaAes128CbcSha256 => 0xC023,
            CipherSuite::EcdheEcdsaAes128GcmSha256 => 0xC02B,
        }
    }

    /// The suite with this IANA value, if supported.
    pub fn from_iana(v: u16) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.iana() == v)
    }

    /// OpenSSL's name of the suite.
    pub fn openssl_name(self) -> &'static str {
        match self {
            CipherSuite::PskAes128Ccm8 => "PSK-AES128-CCM8",
            CipherSuite::PskAes128CbcSha256 => "PSK-AES128-CBC-SHA256",
            CipherSuite::PskAes128GcmSha256 => "PSK-AES128-GCM-SHA256",
            CipherSuite::EcdheEcdsaAes128Ccm8 => "ECDHE-ECDSA-AES128-CCM8",
            CipherSuite::EcdheEcdsaAes128CbcSha256 => "ECDHE-ECDSA-AES128-SHA256",
            CipherSuite::EcdheEcdsaAes128GcmSha256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        }
    }

    /// Whether this is a PSK suite (otherwise certificate-based ECDHE_ECDSA).
    pub fn is_psk(self) -> bool {
        matches!(
            self,
            CipherSuite::PskAes128Ccm8 | CipherSuite::PskAes128CbcSha256 | CipherSuite::PskAes128GcmSha256
        )
    }

    /// Whether this suite uses the 8-byte CCM tag (OpenSSL >= 3.2 puts these at security level 0).
    pub fn is_ccm8(self) -> bool {
        matches!(self, CipherSuite::PskAes128Ccm8 | CipherSuite::EcdheEcdsaAes128Ccm8)
    }

    /// Every supported suite.
    pub const ALL: [CipherSuite; 6] = [
        CipherSuite::PskAes128Ccm8,
        CipherSuite::PskAes128CbcSha256,
        CipherSuite::PskAes128GcmSha256,
        CipherSuite::EcdheEcdsaAes128Ccm8,
        CipherSuite::EcdheEcdsaAes128CbcSha256,
        CipherSuite::EcdheEcdsaAes128GcmSha256,
    ];
}

/// Which optional suites to offer or accept besides the CCM_8 ones (always enabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CipherOptions {
    /// Enable the AES_128_CBC_SHA256 variants.
    pub cbc_sha256: bool,
    /// Enable the AES_128_GCM_SHA256 variants.
    pub gcm: bool,
}

impl CipherOptions {
    /// Only the CCM_8 suites.
    pub const CCM8_ONLY: CipherOptions = CipherOptions {
        cbc_sha256: false,
        gcm: false,
    };
    /// CCM_8 plus CBC_SHA256 (what an LwM2M server must accept for PSK).
    pub const SERVER_DEFAULT: CipherOptions = CipherOptions {
        cbc_sha256: true,
        gcm: false,
    };

    /// The suites enabled for PSK (`psk`) and/or certificates (`certs`), in preference order.
    pub fn suites(self, psk: bool, certs: bool) -> Vec<CipherSuite> {
        let mut v = Vec::new();
        if psk {
            v.push(CipherSuite::PskAes128Ccm8);
        }
        if certs {
            v.push(CipherSuite::EcdheEcdsaAes128Ccm8);
        }
        if self.gcm {
            if psk {
                v.push(CipherSuite::PskAes128GcmSha256);
            }
            if certs {
                v.push(CipherSuite::EcdheEcdsaAes128GcmSha256);
            }
        }
        if self.cbc_sha256 {
            if psk {
                v.push(CipherSuite::PskAes128CbcSha256);
            }
            if certs {
                v.push(CipherSuite::EcdheEcdsaAes128CbcSha256);
            }
        }
        v
    }
}

/// Builds an OpenSSL cipher string for `suites`, lowering the security level when OpenSSL >= 3.2 would
/// otherwise refuse the CCM_8 suites.
pub(crate) fn cipher_string(suites: &[CipherSuite]) -> String {
    let mut s = suites.iter().map(|c| c.openssl_name()).collect::<Vec<_>>().join(":");
    if suites.iter().any(|c| c.is_ccm8()) && openssl::version::number() >= 0x3020_0000 {
        s.push_str(":@SECLEVEL=0");
    }
    s
}

/// Timers and sizes of a session (RFC 6347 §4.2.4 retransmission: initial 1 s, doubling, at most 60 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Initial handshake retransmission timeout (ms).
    pub initial_rto_ms: u64,
    /// Largest handshake retransmission timeout (ms).
    pub max_rto_ms: u64,
    /// The handshake fails if not complete this long after it started (ms).
    pub handshake_timeout_ms: u64,
    /// How long the side that sent the last flight keeps it to answer a retransmitted peer flight (ms).
    pub final_flight_linger_ms: u64,
    /// Path MTU for handshake fragmentation (bytes of UDP payload).
    pub mtu: u16,
    /// Largest number of application datagrams queued while the handshake runs.
    pub max_queued: usize,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            initial_rto_ms: 1_000,
            max_rto_ms: 60_000,
            handshake_timeout_ms: 120_000,
            final_flight_linger_ms: 120_000,
            mtu: 1200,
            max_queued: 64,
        }
    }
}

/// LwM2M Certificate Usage (`/0/x/15`, RFC 6698 semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateUsage {
    /// 0: PKIX validation against the given CA, plus a name check.
    CaConstraint,
    /// 1: the server certificate must equal the given one and pass PKIX validation (extra trust anchors),
    /// plus a name check.
    ServiceCertificateConstraint,
    /// 2: the given certificate is the trust anchor for path validation, plus a name check.
    TrustAnchorAssertion,
    /// 3 (default): the given certificate is the server's certificate; exact match, no PKIX, no name check.
    DomainIssuedCertificate,
}

impl CertificateUsage {
    /// From the `/0/x/15` value.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(CertificateUsage::CaConstraint),
            1 => Some(CertificateUsage::ServiceCertificateConstraint),
            2 => Some(CertificateUsage::TrustAnchorAssertion),
            3 => Some(CertificateUsage::DomainIssuedCertificate),
            _ => None,
        }
    }
}

/// How a client authenticates the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTrust {
    /// Certificate usage.
    pub usage: CertificateUsage,
    /// `/0/x/4`: the CA (usage 0, 2) or the server's own certificate (usage 1, 3), DER.
    pub certificate_der: Vec<u8>,
    /// Reference identifier for the name check (host of the server URI or SNI); also sent as SNI.
    pub server_name: Option<String>,
    /// Further trust anchors (DER) for PKIX validation (usage 0 and 1).
    pub extra_trust_anchors: Vec<Vec<u8>>,
}

/// A certificate chain and its private key.
#[derive(Clone, PartialEq, Eq)]
pub struct CertifiedKey {
    /// End-entity certificate first, then intermediates (DER). No trust anchor.
    pub chain_der: Vec<Vec<u8>>,
    /// Private key, DER (PKCS#8 or SEC1/traditional).
    pub private_key_der: Vec<u8>,
}

impl std::fmt::Debug for CertifiedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertifiedKey")
            .field("chain_len", &self.chain_der.len())
            .finish_non_exhaustive()
    }
}

/// Raw public key credentials (RFC 7250, LwM2M Security Mode 1). Needs the `vendored` feature (OpenSSL >= 3.2);
/// without it every RPK configuration fails with [`DtlsError::Unsupported`].
///
/// The key must suit the ECDHE_ECDSA suites: an EC key (LwM2M and RFC 7925: secp256r1).
#[derive(Clone, PartialEq, Eq)]
pub struct RawPublicKey {
    /// Our private key, DER (PKCS#8 or SEC1/traditional). The client sends its public key (`/0/x/3`); the server
    /// its own.
    pub private_key_der: Vec<u8>,
    /// The peer's expected SubjectPublicKeyInfo, DER: on the client the server's key (`/0/x/4`), which the
    /// server's key must match exactly or the handshake fails. Required on the client, unused on the server
    /// (client keys come from [`crate::CredentialStore::rpk_allowed`]).
    pub peer_spki_der: Option<Vec<u8>>,
}

impl RawPublicKey {
    /// Credentials from our private key and the peer's expected public key (SubjectPublicKeyInfo, DER).
    pub fn new(private_key_der: impl Into<Vec<u8>>, peer_spki_der: Option<Vec<u8>>) -> Self {
        RawPublicKey {
            private_key_der: private_key_der.into(),
            peer_spki_der,
        }
    }

    /// Our own public key as SubjectPublicKeyInfo, DER: what the peer must be given (`/0/x/3` of the client,
    /// `/0/x/4` for the server's key).
    pub fn public_key_der(&self) -> Result<Vec<u8>> {
        Ok(rpk_private_key(&self.private_key_der)?.public_key_to_der()?)
    }
}

impl std::fmt::Debug for RawPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawPublicKey")
            .field("has_peer_key", &self.peer_spki_der.is_some())
            .finish_non_exhaustive()
    }
}

/// The error every RPK configuration returns without the `vendored` feature.
#[cfg_attr(feature = "vendored", allow(dead_code))]
pub(crate) fn rpk_unsupported() -> DtlsError {
    if openssl::version::number() < 0x3020_0000 {
        DtlsError::Unsupported("RPK needs OpenSSL >= 3.2; build with --features vendored".into())
    } else {
        DtlsError::Unsupported(
            "RPK (RFC 7250) needs this crate's `vendored` feature: the openssl crate has no binding for the \
             OpenSSL >= 3.2 RPK API"
                .into(),
        )
    }
}

/// Parses an RPK private key and checks that it fits the ECDHE_ECDSA suites.
pub(crate) fn rpk_private_key(der: &[u8]) -> Result<openssl::pkey::PKey<openssl::pkey::Private>> {
    let key = private_key(der)?;
    if key.id() == openssl::pkey::Id::EC {
        Ok(key)
    } else {
        Err(DtlsError::Config(
            "RPK key must be an EC key (secp256r1) for the ECDHE_ECDSA suites".into(),
        ))
    }
}

/// Parses a SubjectPublicKeyInfo in DER.
#[cfg_attr(not(feature = "vendored"), allow(dead_code))]
pub(crate) fn public_key(der: &[u8]) -> Result<openssl::pkey::PKey<openssl::pkey::Public>> {
    openssl::pkey::PKey::public_key_from_der(der)
        .map_err(|e| DtlsError::Config(format!("public key is not a valid SubjectPublicKeyInfo DER: {e}")))
}

/// Parses a private key in DER.
pub(crate) fn private_key(der: &[u8]) -> Result<openssl::pkey::PKey<openssl::pkey::Private>> {
    openssl::pkey::PKey::private_key_from_der(der)
        .map_err(|e| DtlsError::Config(format!("private key is not valid DER: {e}")))
}

/// Parses a certificate in DER.
pub(crate) fn certificate(der: &[u8]) -> Result<openssl::x509::X509> {
    openssl::x509::X509::from_der(der).map_err(|e| DtlsError::Config(format!("certificate is not valid DER: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_and_names() {
        for s in CipherSuite::ALL {
            assert_eq!(CipherSuite::from_iana(s.iana()), Some(s));
        }
        assert_eq!(CipherSuite::from_iana(49320), Some(CipherSuite::PskAes128Ccm8));
        assert_eq!(
            CipherOptions::CCM8_ONLY.suites(true, false),
            vec![CipherSuite::PskAes128Ccm8]
        );
        assert_eq!(
            CipherOptions {
                cbc_sha256: true,
                gcm: true
            }
            .suites(true, true),
            vec![
                CipherSuite::PskAes128Ccm8,
                CipherSuite::EcdheEcdsaAes128Ccm8,
                CipherSuite::PskAes128GcmSha256,
                CipherSuite::EcdheEcdsaAes128GcmSha256,
                CipherSuite::PskAes128CbcSha256,
                CipherSuite::EcdheEcdsaAes128CbcSha256,
            ]
        );
        let s = cipher_string(&[CipherSuite::PskAes128Ccm8]);
        assert!(s.starts_with("PSK-AES128-CCM8"));
        // every name is known to the linked OpenSSL
        for c in CipherSuite::ALL {
            let mut b = openssl::ssl::SslContextBuilder::new(openssl::ssl::SslMethod::dtls()).unwrap();
            b.set_cipher_list(&cipher_string(&[c])).unwrap();
        }
        assert_eq!(
            CertificateUsage::from_u8(3),
            Some(CertificateUsage::DomainIssuedCertificate)
        );
        assert_eq!(CertificateUsage::from_u8(4), None);
    }

    #[test]
    fn rpk_reports_unsupported() {
        assert!(matches!(rpk_unsupported(), DtlsError::Unsupported(m) if m.contains("RPK")));
    }
}
