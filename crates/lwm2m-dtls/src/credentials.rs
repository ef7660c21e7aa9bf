//! Server-side credential lookup during the handshake.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

/// Where the server looks up credentials while a handshake runs. The LwM2M server role implements this over
/// its security store; [`MemoryCredentialStore`] serves tests and simple setups.
pub trait CredentialStore: Send + Sync {
    /// The pre-shared key for a PSK identity, or `None` if the identity is unknown.
    fn psk_for_identity(&self, identity: &[u8]) -> Option<Vec<u8>>;
    /// Whether a raw public key (SubjectPublicKeyInfo, DER) may connect.
    fn rpk_allowed(&self, _spki_der: &[u8]) -> bool {
        false
    }
    /// Whether a client certificate that already chained to a trusted CA may connect (e.g. revocation or CN
    /// policy). Defaults to accepting it.
    fn x509_allowed(&self, _cert_der: &[u8], _common_name: Option<&str>) -> bool {
        true
    }
}

/// An in-memory credential store (thread-safe, can be changed while the server runs).
#[derive(Debug, Default)]
pub struct MemoryCredentialStore {
    psk: RwLock<HashMap<Vec<u8>, Vec<u8>>>,
    rpk: RwLock<HashSet<Vec<u8>>>,
    denied_cn: RwLock<HashSet<String>>,
}

impl MemoryCredentialStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds or replaces a PSK identity and its key.
    pub fn add_psk(&self, identity: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) {
        if let Ok(mut m) = self.psk.write() {
            m.insert(identity.into(), key.into());
        }
    }
    /// Removes a PSK identity.
    pub fn remove_psk(&self, identity: &[u8]) {
        if let Ok(mut m) = self.psk.write() {
            m.remove(identity);
        }
    }
    /// Allows a raw public key.
    pub fn add_rpk(&self, spki_der: impl Into<Vec<u8>>) {
        if let Ok(mut m) = self.rpk.write() {
            m.insert(spki_der.into());
        }
    }
    /// Refuses certificates with this subject CN.
    pub fn deny_common_name(&self, cn: impl Into<String>) {
        if let Ok(mut m) = self.denied_cn.write() {
            m.insert(cn.into());
        }
    }
}

impl CredentialStore for MemoryCredentialStore {
    fn psk_for_identity(&self, identity: &[u8]) -> Option<Vec<u8>> {
        self.psk.read().ok()?.get(identity).cloned()
    }
    fn rpk_allowed(&self, spki_der: &[u8]) -> bool {
        self.rpk.read().map(|m| m.contains(spki_der)).unwrap_or(false)
    }
    fn x509_allowed(&self, _cert_der: &[u8], common_name: Option<&str>) -> bool {
        match (self.denied_cn.read(), common_name) {
            (Ok(m), Some(cn)) => !m.contains(cn),
            (Ok(_), None) => true,
            (Err(_), _) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store() {
        let s = MemoryCredentialStore::new();
        assert_eq!(s.psk_for_identity(b"a"), None);
        s.add_psk("a", vec![1, 2]);
        assert_eq!(s.psk_for_identity(b"a"), Some(vec![1, 2]));
        s.remove_psk(b"a");
        assert_eq!(s.psk_for_identity(b"a"), None);
        assert!(!s.rpk_allowed(b"k"));
        s.add_rpk(b"k".to_vec());
        assert!(s.rpk_allowed(b"k"));
        assert!(s.x509_allowed(b"", Some("x")));
        s.deny_common_name("x");
        assert!(!s.x509_allowed(b"", Some("x")));
    }
}
