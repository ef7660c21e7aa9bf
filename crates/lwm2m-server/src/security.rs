//! Security store and endpoint ↔ credential binding (digest §10.5).
//!
//! The endpoint name in Register or Bootstrap-Request is not authenticated by itself: the server checks it
//! against the identity the DTLS handshake authenticated. [`authorize`] applies the rules:
//!
//! | peer | stored for the endpoint | result |
//! |---|---|---|
//! | plain CoAP | nothing | accepted (NoSec) |
//! | plain CoAP | credentials | 4.03 Forbidden: this endpoint must use DTLS |
//! | PSK identity / RPK key / X.509 cert | nothing matches the identity | 4.03 Forbidden: unknown credentials |
//! | PSK identity / RPK key | an entry for another endpoint | 4.00 Bad Request (the TS code; Leshan sends 4.03) |
//! | X.509 | the certificate's subject CN differs from `ep` | 4.00 Bad Request |
//! | any identity, `ep` omitted (1.1) | an entry | the endpoint name is taken from the entry (or the CN) |
//!
//! [`SecurityStore`] is what the DTLS handshake consults too: [`StoreCredentials`] adapts any store to the
//! DTLS layer's [`lwm2m_dtls::CredentialStore`], so a key is only ever looked up in one place.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use lwm2m_coap::transport::security::PeerIdentity;
use lwm2m_coap::Code;
use thiserror::Error;

/// The credential a device must present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Pre-shared key: the identity the client sends and the key (binary, at most 64 bytes).
    Psk { identity: String, key: Vec<u8> },
    /// Raw public key: the client's SubjectPublicKeyInfo, DER.
    Rpk { public_key_der: Vec<u8> },
    /// X.509: a certificate chaining to the server's trust store whose subject CN equals the endpoint name.
    X509,
}

/// What the server knows about one endpoint's security.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityInfo {
    pub endpoint: String,
    pub credential: Credential,
}

/// Why a security store refused a change.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    #[error("PSK identity {identity:?} is already used by endpoint {endpoint:?}; identities must be unique")]
    PskIdentityInUse { identity: String, endpoint: String },
    #[error("this raw public key is already used by endpoint {0:?}; keys must be unique")]
    RpkInUse(String),
    #[error("invalid security info: {0}")]
    Invalid(&'static str),
}

/// Lookups the server needs, by endpoint and by authenticated identity.
pub trait SecurityStore: Send + Sync {
    fn by_endpoint(&self, endpoint: &str) -> Option<SecurityInfo>;
    fn by_psk_identity(&self, identity: &[u8]) -> Option<SecurityInfo>;
    fn by_rpk(&self, public_key_der: &[u8]) -> Option<SecurityInfo>;
}

/// A change made to a [`MemorySecurityStore`], as its listener sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityChange<'a> {
    /// An endpoint's security info was added or replaced.
    Put(&'a SecurityInfo),
    /// An endpoint's security info was removed.
    Removed(&'a str),
}

/// Called with every change of a [`MemorySecurityStore`] (see [`MemorySecurityStore::set_listener`]).
pub type SecurityListener = Box<dyn Fn(SecurityChange<'_>) + Send + Sync>;

#[derive(Default)]
struct Listener(Option<SecurityListener>);

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Some(listener)" } else { "None" })
    }
}

/// An in-memory security store, safe to change while the server runs.
#[derive(Debug, Default)]
pub struct MemorySecurityStore {
    inner: RwLock<Indexes>,
    listener: RwLock<Listener>,
}

#[derive(Debug, Default)]
struct Indexes {
    by_endpoint: BTreeMap<String, SecurityInfo>,
    psk: HashMap<Vec<u8>, String>,
    rpk: HashMap<Vec<u8>, String>,
}

impl Indexes {
    fn unindex(&mut self, info: &SecurityInfo) {
        match &info.credential {
            Credential::Psk { identity, .. } => {
                self.psk.remove(identity.as_bytes());
            }
            Credential::Rpk { public_key_der } => {
                self.rpk.remove(public_key_der);
            }
            Credential::X509 => {}
        }
    }
}

impl MemorySecurityStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Installs (replacing any previous one) the function told of every successful [`put`](Self::put) and
    /// [`remove`](Self::remove), e.g. to persist the change. It runs while the store is locked, so listeners
    /// see the changes in the order they were made; it must be quick and must not call back into the store.
    pub fn set_listener(&self, listener: SecurityListener) {
        self.listener.write().unwrap_or_else(|p| p.into_inner()).0 = Some(listener);
    }

    fn notify(&self, change: SecurityChange<'_>) {
        if let Some(l) = &self.listener.read().unwrap_or_else(|p| p.into_inner()).0 {
            l(change);
        }
    }

    /// Adds or replaces the security info of an endpoint. Returns the previous one.
    pub fn put(&self, info: SecurityInfo) -> Result<Option<SecurityInfo>, StoreError> {
        if info.endpoint.is_empty() {
            return Err(StoreError::Invalid("the endpoint name must not be empty"));
        }
        let mut ix = self.inner.write().unwrap_or_else(|p| p.into_inner());
        match &info.credential {
            Credential::Psk { identity, key } => {
                if identity.is_empty() || identity.len() > 128 {
                    return Err(StoreError::Invalid("a PSK identity has 1 to 128 bytes"));
                }
                if key.is_empty() || key.len() > 64 {
                    return Err(StoreError::Invalid("a PSK key has 1 to 64 bytes"));
                }
                if let Some(owner) = ix.psk.get(identity.as_bytes()).filter(|o| **o != info.endpoint) {
                    return Err(StoreError::PskIdentityInUse {
                        identity: identity.clone(),
                        endpoint: owner.clone(),
                    });
                }
            }
            Credential::Rpk { public_key_der } => {
                if public_key_der.is_empty() {
                    return Err(StoreError::Invalid("the raw public key must not be empty"));
                }
                if let Some(owner) = ix.rpk.get(public_key_der).filter(|o| **o != info.endpoint) {
                    return Err(StoreError::RpkInUse(owner.clone()));
                }
            }
            Credential::X509 => {}
        }
        let old = ix.by_endpoint.remove(&info.endpoint);
        if let Some(old) = &old {
            ix.unindex(old);
        }
        match &info.credential {
            Credential::Psk { identity, .. } => {
                ix.psk.insert(identity.as_bytes().to_vec(), info.endpoint.clone());
            }
            Credential::Rpk { public_key_der } => {
                ix.rpk.insert(public_key_der.clone(), info.endpoint.clone());
            }
            Credential::X509 => {}
        }
        self.notify(SecurityChange::Put(&info));
        ix.by_endpoint.insert(info.endpoint.clone(), info);
        Ok(old)
    }

    /// Removes an endpoint's security info.
    pub fn remove(&self, endpoint: &str) -> Option<SecurityInfo> {
        let mut ix = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let old = ix.by_endpoint.remove(endpoint)?;
        ix.unindex(&old);
        self.notify(SecurityChange::Removed(endpoint));
        Some(old)
    }

    /// Every entry, ordered by endpoint name.
    pub fn list(&self) -> Vec<SecurityInfo> {
        let ix = self.inner.read().unwrap_or_else(|p| p.into_inner());
        ix.by_endpoint.values().cloned().collect()
    }
}

impl SecurityStore for MemorySecurityStore {
    fn by_endpoint(&self, endpoint: &str) -> Option<SecurityInfo> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_endpoint
            .get(endpoint)
            .cloned()
    }
    fn by_psk_identity(&self, identity: &[u8]) -> Option<SecurityInfo> {
        let ix = self.inner.read().unwrap_or_else(|p| p.into_inner());
        ix.psk.get(identity).and_then(|ep| ix.by_endpoint.get(ep)).cloned()
    }
    fn by_rpk(&self, public_key_der: &[u8]) -> Option<SecurityInfo> {
        let ix = self.inner.read().unwrap_or_else(|p| p.into_inner());
        ix.rpk
            .get(public_key_der)
            .and_then(|ep| ix.by_endpoint.get(ep))
            .cloned()
    }
}

/// Why a Register or Bootstrap-Request was refused on security grounds.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SecurityError {
    #[error("endpoint {0:?} has credentials stored and must connect over DTLS")]
    SecureRequired(String),
    #[error("the peer's credentials are not known to this server")]
    UnknownCredentials,
    #[error("endpoint name {claimed:?} does not match the authenticated identity of endpoint {authenticated:?}")]
    EndpointMismatch { claimed: String, authenticated: String },
    #[error("no endpoint name: send ep, or authenticate with credentials that name the endpoint")]
    MissingEndpoint,
}

impl SecurityError {
    /// The CoAP response for this refusal (digest §10.5 and §12 #14: 4.00 for a mismatch, 4.03 otherwise).
    pub fn code(&self) -> Code {
        match self {
            SecurityError::EndpointMismatch { .. } | SecurityError::MissingEndpoint => Code::BAD_REQUEST,
            SecurityError::SecureRequired(_) | SecurityError::UnknownCredentials => Code::FORBIDDEN,
        }
    }
}

/// Checks a claimed endpoint name (`ep`, absent in 1.1 when the identity names it) against the peer's
/// authenticated identity and returns the endpoint name to use.
pub fn authorize(
    store: &dyn SecurityStore,
    identity: Option<&PeerIdentity>,
    claimed: Option<&str>,
) -> Result<String, SecurityError> {
    let from_store = match identity {
        None => {
            let ep = claimed.ok_or(SecurityError::MissingEndpoint)?;
            if store.by_endpoint(ep).is_some() {
                return Err(SecurityError::SecureRequired(ep.to_string()));
            }
            return Ok(ep.to_string());
        }
        Some(PeerIdentity::Psk(id)) => store.by_psk_identity(id).ok_or(SecurityError::UnknownCredentials)?,
        Some(PeerIdentity::Rpk(key)) => store.by_rpk(key).ok_or(SecurityError::UnknownCredentials)?,
        Some(PeerIdentity::X509 { common_name, .. }) => {
            let cn = common_name.as_deref().ok_or(SecurityError::UnknownCredentials)?;
            let ep = claimed.unwrap_or(cn);
            if ep != cn {
                return Err(SecurityError::EndpointMismatch {
                    claimed: ep.to_string(),
                    authenticated: cn.to_string(),
                });
            }
            match store.by_endpoint(ep) {
                Some(info) if info.credential == Credential::X509 => info,
                _ => return Err(SecurityError::UnknownCredentials),
            }
        }
    };
    match claimed {
        Some(ep) if ep != from_store.endpoint => Err(SecurityError::EndpointMismatch {
            claimed: ep.to_string(),
            authenticated: from_store.endpoint,
        }),
        _ => Ok(from_store.endpoint),
    }
}

/// Adapts a [`SecurityStore`] to the DTLS handshake's credential lookups.
pub struct StoreCredentials<S: ?Sized>(pub Arc<S>);

impl<S: SecurityStore + ?Sized> lwm2m_dtls::CredentialStore for StoreCredentials<S> {
    fn psk_for_identity(&self, identity: &[u8]) -> Option<Vec<u8>> {
        match self.0.by_psk_identity(identity)?.credential {
            Credential::Psk { key, .. } => Some(key),
            _ => None,
        }
    }
    fn rpk_allowed(&self, spki_der: &[u8]) -> bool {
        self.0.by_rpk(spki_der).is_some()
    }
    fn x509_allowed(&self, _cert_der: &[u8], common_name: Option<&str>) -> bool {
        common_name
            .and_then(|cn| self.0.by_endpoint(cn))
            .is_some_and(|info| info.credential == Credential::X509)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lwm2m_dtls::CredentialStore;

    fn psk(ep: &str, id: &str) -> SecurityInfo {
        SecurityInfo {
            endpoint: ep.into(),
            credential: Credential::Psk {
                identity: id.into(),
                key: b"secret".to_vec(),
            },
        }
    }

    fn store() -> MemorySecurityStore {
        let s = MemorySecurityStore::new();
        s.put(psk("dev-psk", "id-1")).unwrap();
        s.put(SecurityInfo {
            endpoint: "dev-rpk".into(),
            credential: Credential::Rpk {
                public_key_der: vec![1, 2, 3],
            },
        })
        .unwrap();
        s.put(SecurityInfo {
            endpoint: "dev-x509".into(),
            credential: Credential::X509,
        })
        .unwrap();
        s
    }

    fn x509(cn: &str) -> PeerIdentity {
        PeerIdentity::X509 {
            common_name: Some(cn.into()),
            cert_der: vec![],
        }
    }

    #[test]
    fn plain_coap() {
        let s = store();
        assert_eq!(authorize(&s, None, Some("nosec")), Ok("nosec".into()));
        let e = authorize(&s, None, Some("dev-psk")).unwrap_err();
        assert_eq!(
            (e.code(), e),
            (Code::FORBIDDEN, SecurityError::SecureRequired("dev-psk".into()))
        );
        assert_eq!(authorize(&s, None, None), Err(SecurityError::MissingEndpoint));
    }

    #[test]
    fn psk_binding() {
        let s = store();
        let id = PeerIdentity::Psk(b"id-1".to_vec());
        assert_eq!(authorize(&s, Some(&id), Some("dev-psk")), Ok("dev-psk".into()));
        // 1.1: ep omitted, the identity names the endpoint.
        assert_eq!(authorize(&s, Some(&id), None), Ok("dev-psk".into()));
        // Mismatched endpoint: a client with valid credentials claims another device's name.
        let e = authorize(&s, Some(&id), Some("dev-rpk")).unwrap_err();
        assert_eq!(e.code(), Code::BAD_REQUEST);
        assert!(matches!(e, SecurityError::EndpointMismatch { .. }));
        // Unknown identity.
        let e = authorize(&s, Some(&PeerIdentity::Psk(b"nobody".to_vec())), Some("dev-psk")).unwrap_err();
        assert_eq!((e.code(), e), (Code::FORBIDDEN, SecurityError::UnknownCredentials));
    }

    #[test]
    fn rpk_and_x509_binding() {
        let s = store();
        assert_eq!(
            authorize(&s, Some(&PeerIdentity::Rpk(vec![1, 2, 3])), None),
            Ok("dev-rpk".into())
        );
        assert!(authorize(&s, Some(&PeerIdentity::Rpk(vec![9])), None).is_err());
        assert_eq!(
            authorize(&s, Some(&x509("dev-x509")), Some("dev-x509")),
            Ok("dev-x509".into())
        );
        assert_eq!(authorize(&s, Some(&x509("dev-x509")), None), Ok("dev-x509".into()));
        assert_eq!(
            authorize(&s, Some(&x509("dev-x509")), Some("dev-psk"))
                .unwrap_err()
                .code(),
            Code::BAD_REQUEST
        );
        // A CA-signed certificate whose CN has no X.509 entry (or another kind of entry) is refused.
        assert_eq!(
            authorize(&s, Some(&x509("stranger")), None),
            Err(SecurityError::UnknownCredentials)
        );
        assert_eq!(
            authorize(&s, Some(&x509("dev-psk")), None),
            Err(SecurityError::UnknownCredentials)
        );
    }

    #[test]
    fn store_keeps_identities_unique_and_indexes_consistent() {
        let s = store();
        assert!(matches!(
            s.put(psk("other", "id-1")),
            Err(StoreError::PskIdentityInUse { .. })
        ));
        // Changing an endpoint's identity frees the old one.
        s.put(psk("dev-psk", "id-2")).unwrap();
        assert!(s.by_psk_identity(b"id-1").is_none());
        assert_eq!(s.by_psk_identity(b"id-2").unwrap().endpoint, "dev-psk");
        s.put(psk("other", "id-1")).unwrap();
        assert_eq!(s.remove("dev-psk").unwrap().endpoint, "dev-psk");
        assert!(s.by_psk_identity(b"id-2").is_none());
        assert_eq!(s.list().len(), 3);
        assert!(s.put(psk("", "x")).is_err());
        assert!(s.put(psk("e", "")).is_err());
    }

    #[test]
    fn listener_sees_successful_changes_in_order() {
        use std::sync::Mutex;
        let s = store();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        s.set_listener(Box::new(move |c| {
            log.lock().unwrap().push(match c {
                SecurityChange::Put(i) => format!("put {}", i.endpoint),
                SecurityChange::Removed(ep) => format!("removed {ep}"),
            })
        }));
        s.put(psk("a", "id-a")).unwrap();
        assert!(s.put(psk("b", "id-a")).is_err(), "refused: not reported");
        assert!(s.remove("nobody").is_none(), "nothing removed: not reported");
        s.remove("a");
        assert_eq!(*seen.lock().unwrap(), ["put a", "removed a"]);
        assert!(format!("{s:?}").contains("Some(listener)"));
    }

    #[test]
    fn dtls_adapter_reads_the_same_store() {
        let s = Arc::new(store());
        let c = StoreCredentials(s.clone());
        assert_eq!(c.psk_for_identity(b"id-1"), Some(b"secret".to_vec()));
        assert_eq!(c.psk_for_identity(b"nobody"), None);
        assert!(c.rpk_allowed(&[1, 2, 3]));
        assert!(!c.rpk_allowed(&[4]));
        assert!(c.x509_allowed(&[], Some("dev-x509")));
        assert!(!c.x509_allowed(&[], Some("dev-psk")));
        assert!(!c.x509_allowed(&[], None));
        s.remove("dev-psk");
        assert_eq!(c.psk_for_identity(b"id-1"), None);
    }
}
