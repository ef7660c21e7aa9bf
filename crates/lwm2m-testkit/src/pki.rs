//! A test PKI on EC P-256 (prime256v1) made with the openssl crate: keys, self-signed CAs and the leaf
//! certificates they issue, valid from today for 30 days. Write them with `to_pem`/`to_der` and
//! [`crate::scratch::Scratch::write`].

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::X509Name;
/// The openssl types of this module's functions, for tests without their own openssl dependency.
pub use openssl::{
    pkey::{PKey, Private},
    x509::X509,
};

/// A fresh EC P-256 key pair.
pub fn key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("the P-256 group");
    PKey::from_ec_key(EcKey::generate(&group).expect("an EC key")).expect("a PKey")
}

/// The X.509 name `CN=cn`.
pub fn name(cn: &str) -> X509Name {
    let mut n = X509Name::builder().expect("a name builder");
    n.append_entry_by_nid(Nid::COMMONNAME, cn).expect("a common name");
    n.build()
}

/// A subjectAltName entry of a leaf certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum San<'a> {
    /// `IP:addr`, e.g. `127.0.0.1`.
    Ip(&'a str),
    /// `DNS:name`, e.g. `localhost`.
    Dns(&'a str),
}

/// A certificate for `cn` with `key` (SHA-256 signature, random 64-bit serial): without `issuer` a self-signed
/// CA (basicConstraints critical CA:TRUE; `san` is ignored), else a leaf issued by the `(certificate, key)` of
/// `issuer`, with `san` as its subjectAltName when given.
pub fn cert(cn: &str, key: &PKey<Private>, issuer: Option<(&X509, &PKey<Private>)>, san: Option<San<'_>>) -> X509 {
    let mut b = X509::builder().expect("a certificate builder");
    b.set_version(2).expect("X.509 v3");
    let mut serial = BigNum::new().expect("a big number");
    serial.rand(64, MsbOption::MAYBE_ZERO, false).expect("a random serial");
    b.set_serial_number(&serial.to_asn1_integer().expect("an ASN.1 integer"))
        .expect("the serial");
    b.set_subject_name(&name(cn)).expect("the subject");
    b.set_pubkey(key).expect("the public key");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("now"))
        .expect("notBefore");
    b.set_not_after(&Asn1Time::days_from_now(30).expect("in 30 days"))
        .expect("notAfter");
    match issuer {
        None => {
            b.set_issuer_name(&name(cn)).expect("the issuer");
            b.append_extension(BasicConstraints::new().critical().ca().build().expect("CA:TRUE"))
                .expect("basicConstraints");
            b.sign(key, MessageDigest::sha256()).expect("self-signed");
        }
        Some((ca, ca_key)) => {
            b.set_issuer_name(ca.subject_name()).expect("the issuer");
            if let Some(san) = san {
                let mut ext = SubjectAlternativeName::new();
                match san {
                    San::Ip(ip) => ext.ip(ip),
                    San::Dns(dns) => ext.dns(dns),
                };
                let ext = ext.build(&b.x509v3_context(Some(ca), None)).expect("subjectAltName");
                b.append_extension(ext).expect("subjectAltName");
            }
            b.sign(ca_key, MessageDigest::sha256()).expect("signed by the CA");
        }
    }
    b.build()
}

/// The usual PKI of a device test: a CA (`CN=test CA`), the server's certificate (`CN=localhost`,
/// subjectAltName `IP:127.0.0.1`) and the client's (`CN` = the endpoint name), both issued by the CA.
#[derive(Debug)]
pub struct Pki {
    /// The CA certificate.
    pub ca: X509,
    /// The CA's key.
    pub ca_key: PKey<Private>,
    /// The server's certificate.
    pub server: X509,
    /// The server's key.
    pub server_key: PKey<Private>,
    /// The client's certificate.
    pub client: X509,
    /// The client's key.
    pub client_key: PKey<Private>,
}

impl Pki {
    /// A fresh PKI whose client certificate names `client_cn`.
    pub fn new(client_cn: &str) -> Pki {
        let ca_key = key();
        let ca = cert("test CA", &ca_key, None, None);
        let server_key = key();
        let server = cert(
            "localhost",
            &server_key,
            Some((&ca, &ca_key)),
            Some(San::Ip("127.0.0.1")),
        );
        let client_key = key();
        let client = cert(client_cn, &client_key, Some((&ca, &ca_key)), None);
        Pki {
            ca,
            ca_key,
            server,
            server_key,
            client,
            client_key,
        }
    }

    /// Another leaf certificate issued by the CA, for `cn` with `key`.
    pub fn issue(&self, cn: &str, key: &PKey<Private>) -> X509 {
        cert(cn, key, Some((&self.ca, &self.ca_key)), None)
    }
}
