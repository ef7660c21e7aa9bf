//! Stateless HelloVerifyRequest cookies: HMAC-SHA256 over a server secret, the peer's address and the
//! ClientHello parameters that must not change between the two ClientHellos (RFC 6347 §4.2.1). The secret
//! rotates; a cookie made with the previous secret is still accepted.

use std::net::SocketAddr;

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;

use crate::error::Result;
use crate::record::ClientHello;

/// Length of the cookies produced (full HMAC-SHA256 output).
pub const COOKIE_LEN: usize = 32;

/// The rotating cookie secrets.
pub struct CookieKey {
    current: [u8; 32],
    previous: Option<[u8; 32]>,
    rotation_ms: u64,
    next_rotation: Option<u64>,
}

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieKey")
            .field("rotation_ms", &self.rotation_ms)
            .finish_non_exhaustive()
    }
}

fn random_secret() -> Result<[u8; 32]> {
    let mut s = [0u8; 32];
    openssl::rand::rand_bytes(&mut s)?;
    Ok(s)
}

fn push_addr(out: &mut Vec<u8>, peer: &SocketAddr) {
    match peer {
        SocketAddr::V4(a) => {
            out.push(4);
            out.extend_from_slice(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            out.push(6);
            out.extend_from_slice(&a.ip().octets());
        }
    }
    out.extend_from_slice(&peer.port().to_be_bytes());
}

fn hmac(secret: &[u8; 32], peer: &SocketAddr, hello: &ClientHello<'_>) -> Result<[u8; COOKIE_LEN]> {
    let key = PKey::hmac(secret)?;
    let mut signer = Signer::new(MessageDigest::sha256(), &key)?;
    let mut msg = Vec::with_capacity(64 + hello.session_id.len() + hello.cipher_suites.len());
    push_addr(&mut msg, peer);
    msg.extend_from_slice(&hello.client_version.to_be_bytes());
    msg.extend_from_slice(hello.random);
    msg.push(hello.session_id.len() as u8);
    msg.extend_from_slice(hello.session_id);
    msg.extend_from_slice(&(hello.cipher_suites.len() as u16).to_be_bytes());
    msg.extend_from_slice(hello.cipher_suites);
    msg.push(hello.compression_methods.len() as u8);
    msg.extend_from_slice(hello.compression_methods);
    signer.update(&msg)?;
    let mut out = [0u8; COOKIE_LEN];
    let n = signer.sign(&mut out)?;
    if n != COOKIE_LEN {
        return Err(crate::error::DtlsError::Tls(format!("HMAC-SHA256 returned {n} bytes")));
    }
    Ok(out)
}

impl CookieKey {
    /// A key with the given secret (or a random one) rotating every `rotation_ms` (0 = never).
    pub fn new(secret: Option<[u8; 32]>, rotation_ms: u64) -> Result<Self> {
        let current = match secret {
            Some(s) => s,
            None => random_secret()?,
        };
        Ok(CookieKey {
            current,
            previous: None,
            rotation_ms,
            next_rotation: None,
        })
    }

    /// Rotates the secret if its time has come (the first call only arms the timer).
    pub fn maybe_rotate(&mut self, now_ms: u64) -> Result<()> {
        if self.rotation_ms == 0 {
            return Ok(());
        }
        match self.next_rotation {
            None => self.next_rotation = Some(now_ms.saturating_add(self.rotation_ms)),
            Some(t) if now_ms >= t => {
                self.previous = Some(self.current);
                self.current = random_secret()?;
                self.next_rotation = Some(now_ms.saturating_add(self.rotation_ms));
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// The cookie for this peer and ClientHello under the current secret.
    pub fn generate(&self, peer: &SocketAddr, hello: &ClientHello<'_>) -> Result<[u8; COOKIE_LEN]> {
        hmac(&self.current, peer, hello)
    }

    /// Whether `hello.cookie` is valid for this peer (current or previous secret), compared in constant time.
    pub fn verify(&self, peer: &SocketAddr, hello: &ClientHello<'_>) -> bool {
        if hello.cookie.len() != COOKIE_LEN {
            return false;
        }
        let ok = |secret: &[u8; 32]| {
            hmac(secret, peer, hello)
                .map(|c| openssl::memcmp::eq(&c, hello.cookie))
                .unwrap_or(false)
        };
        ok(&self.current) || self.previous.as_ref().is_some_and(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::DTLS1_2;

    fn hello<'a>(random: &'a [u8; 32], cookie: &'a [u8]) -> ClientHello<'a> {
        ClientHello {
            record_version: DTLS1_2,
            record_seq: 1,
            message_seq: 1,
            client_version: DTLS1_2,
            random,
            session_id: &[],
            cookie,
            cipher_suites: &[0xC0, 0xA8],
            compression_methods: &[0],
            extensions: None,
            rest: &[],
        }
    }

    #[test]
    fn cookie_binds_address_random_and_secret() {
        let mut k = CookieKey::new(Some([1; 32]), 1000).unwrap();
        let a: SocketAddr = "127.0.0.1:5684".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:5685".parse().unwrap();
        let r = [9u8; 32];
        let c = k.generate(&a, &hello(&r, &[])).unwrap();
        assert!(k.verify(&a, &hello(&r, &c)));
        assert!(!k.verify(&b, &hello(&r, &c)), "other port");
        assert!(!k.verify(&a, &hello(&[8; 32], &c)), "other random");
        assert!(!k.verify(&a, &hello(&r, &c[..31])), "short cookie");
        let mut bad = c;
        bad[0] ^= 1;
        assert!(!k.verify(&a, &hello(&r, &bad)), "flipped bit");
        // rotation: previous secret still accepted once, then not
        k.maybe_rotate(0).unwrap();
        k.maybe_rotate(1000).unwrap();
        assert!(k.verify(&a, &hello(&r, &c)));
        k.maybe_rotate(2000).unwrap();
        assert!(!k.verify(&a, &hello(&r, &c)));
    }
}
