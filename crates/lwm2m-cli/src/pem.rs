//! Certificate and key files for `lwm2m client` and `lwm2m server`: PEM or DER, read into what lwm2m-dtls takes.
//!
//! Every error names the option (`what`), the file and what the file should hold.

use std::path::Path as FsPath;

use anyhow::{anyhow, bail, Result};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

/// The bytes of a file; the error names `what` it is for.
pub fn read_file(what: &str, path: &FsPath) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        anyhow!(
            "{what}: cannot read {} ({e}); check the path and the file's permissions",
            path.display()
        )
    })
}

/// Whether `data` looks like PEM (holds a `-----BEGIN ` line) rather than DER.
pub fn is_pem(data: &[u8]) -> bool {
    data.windows(11).any(|w| w == b"-----BEGIN ")
}

/// A certificate file (PEM or DER) as DER; of a PEM file with several certificates, the first.
pub fn load_cert(what: &str, path: &FsPath) -> Result<Vec<u8>> {
    let data = read_file(what, path)?;
    let cert = if is_pem(&data) {
        X509::from_pem(&data)
    } else {
        X509::from_der(&data)
    };
    let cert = cert.map_err(|e| anyhow!("{what}: {} is not a PEM or DER certificate: {e}", path.display()))?;
    Ok(cert.to_der()?)
}

/// Every certificate of a file: all `CERTIFICATE` blocks of a PEM file (other blocks, e.g. a key, are skipped),
/// or the one certificate of a DER file. A file without any certificate is an error.
pub fn load_certs(what: &str, path: &FsPath) -> Result<Vec<X509>> {
    let data = read_file(what, path)?;
    let certs = if is_pem(&data) {
        X509::stack_from_pem(&data)
    } else {
        X509::from_der(&data).map(|c| vec![c])
    };
    let certs = certs.map_err(|e| anyhow!("{what}: {} is not a PEM or DER certificate: {e}", path.display()))?;
    if certs.is_empty() {
        bail!(
            "{what}: {} holds no certificate (no -----BEGIN CERTIFICATE----- block)",
            path.display()
        );
    }
    Ok(certs)
}

/// A private key file (PEM or DER, PKCS#8 or SEC1/traditional) as the key.
pub fn load_private_key(what: &str, path: &FsPath) -> Result<PKey<Private>> {
    let data = read_file(what, path)?;
    let key = if is_pem(&data) {
        PKey::private_key_from_pem(&data)
    } else {
        PKey::private_key_from_der(&data)
    };
    key.map_err(|e| {
        anyhow!(
            "{what}: {} is not a PEM or DER private key (unencrypted PKCS#8 or SEC1): {e}",
            path.display()
        )
    })
}

/// A public key file (PEM `PUBLIC KEY` or SubjectPublicKeyInfo DER) as SubjectPublicKeyInfo DER.
pub fn load_public_key(what: &str, path: &FsPath) -> Result<Vec<u8>> {
    let data = read_file(what, path)?;
    let key = if is_pem(&data) {
        PKey::public_key_from_pem(&data)
    } else {
        PKey::public_key_from_der(&data)
    };
    let key = key.map_err(|e| {
        anyhow!(
            "{what}: {} is not a PEM or DER public key (SubjectPublicKeyInfo): {e}",
            path.display()
        )
    })?;
    Ok(key.public_key_to_der()?)
}
