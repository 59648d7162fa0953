//! HMAC signatures of messages, and the replay guard ipykernel keeps.

use std::collections::{HashSet, VecDeque};

use hmac::{Hmac, Mac};

/// Why a signature or scheme was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SigningError {
    #[error("unsupported signature_scheme `{0}`: use hmac-sha256 (or hmac-sha224/384/512)")]
    UnsupportedScheme(String),
    #[error("the message carries no valid signature")]
    BadSignature,
    #[error("the signature was already seen: a replayed message")]
    Replayed,
}

#[derive(Clone)]
enum Key {
    Sha224(Hmac<sha2::Sha224>),
    Sha256(Hmac<sha2::Sha256>),
    Sha384(Hmac<sha2::Sha384>),
    Sha512(Hmac<sha2::Sha512>),
}

/// Signs and verifies the four JSON frames of a message with the connection file's key.
/// An empty key means messages are not signed (Jupyter's rule).
#[derive(Clone)]
pub struct Signer {
    key: Option<Key>,
}

impl Signer {
    pub fn new(scheme: &str, key: &str) -> Result<Signer, SigningError> {
        if key.is_empty() {
            return Ok(Signer { key: None });
        }
        let k = key.as_bytes();
        let key = match scheme {
            "hmac-sha224" => Key::Sha224(Hmac::new_from_slice(k).expect("HMAC takes any key")),
            "hmac-sha256" | "" => Key::Sha256(Hmac::new_from_slice(k).expect("HMAC takes any key")),
            "hmac-sha384" => Key::Sha384(Hmac::new_from_slice(k).expect("HMAC takes any key")),
            "hmac-sha512" => Key::Sha512(Hmac::new_from_slice(k).expect("HMAC takes any key")),
            other => return Err(SigningError::UnsupportedScheme(other.to_owned())),
        };
        Ok(Signer { key: Some(key) })
    }

    pub fn is_signing(&self) -> bool {
        self.key.is_some()
    }

    /// The hex signature of `parts` (empty when unsigned).
    pub fn sign(&self, parts: &[&[u8]]) -> String {
        fn run<M: Mac + Clone>(mac: &M, parts: &[&[u8]]) -> String {
            let mut mac = mac.clone();
            for p in parts {
                mac.update(p);
            }
            hex::encode(mac.finalize().into_bytes())
        }
        match &self.key {
            None => String::new(),
            Some(Key::Sha224(m)) => run(m, parts),
            Some(Key::Sha256(m)) => run(m, parts),
            Some(Key::Sha384(m)) => run(m, parts),
            Some(Key::Sha512(m)) => run(m, parts),
        }
    }

    /// Checks `signature` (hex) over `parts` in constant time.
    pub fn verify(&self, signature: &[u8], parts: &[&[u8]]) -> Result<(), SigningError> {
        fn run<M: Mac + Clone>(mac: &M, sig: &[u8], parts: &[&[u8]]) -> bool {
            let mut mac = mac.clone();
            for p in parts {
                mac.update(p);
            }
            mac.verify_slice(sig).is_ok()
        }
        let Some(key) = &self.key else {
            return Ok(());
        };
        let sig = hex::decode(signature).map_err(|_| SigningError::BadSignature)?;
        let ok = match key {
            Key::Sha224(m) => run(m, &sig, parts),
            Key::Sha256(m) => run(m, &sig, parts),
            Key::Sha384(m) => run(m, &sig, parts),
            Key::Sha512(m) => run(m, &sig, parts),
        };
        ok.then_some(()).ok_or(SigningError::BadSignature)
    }
}

/// Remembers recent signatures so that a captured message cannot be replayed. Like ipykernel's
/// `digest_history`, it is bounded; the oldest signatures are forgotten first.
pub struct ReplayGuard {
    seen: HashSet<Vec<u8>>,
    order: VecDeque<Vec<u8>>,
    capacity: usize,
}

impl ReplayGuard {
    pub fn new(capacity: usize) -> Self {
        ReplayGuard {
            seen: HashSet::with_capacity(capacity.min(4096)),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// Records a verified signature; a second sighting is an error.
    pub fn check(&mut self, signature: &[u8]) -> Result<(), SigningError> {
        if !self.seen.insert(signature.to_vec()) {
            return Err(SigningError::Replayed);
        }
        self.order.push_back(signature.to_vec());
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_python_hmac() {
        // hmac.new(b"key", b"abcdef", hashlib.sha256).hexdigest()
        let signer = Signer::new("hmac-sha256", "key").unwrap();
        let sig = signer.sign(&[b"abc", b"def"]);
        assert_eq!(
            sig,
            "4c5277d3e85316d1762c7e219862a9440546171f5ae5f1b29499ff9fbdd4c56a"
        );
        assert!(signer.verify(sig.as_bytes(), &[b"abcdef"]).is_ok());
        assert_eq!(
            signer.verify(sig.as_bytes(), &[b"abcdeg"]),
            Err(SigningError::BadSignature)
        );
        assert_eq!(
            signer.verify(b"zz", &[b"abcdef"]),
            Err(SigningError::BadSignature)
        );
        assert_eq!(
            signer.verify(b"", &[b"abcdef"]),
            Err(SigningError::BadSignature)
        );
    }

    #[test]
    fn schemes_and_empty_key() {
        assert_eq!(
            Signer::new("hmac-sha512", "k").unwrap().sign(&[b"x"]).len(),
            128
        );
        assert!(matches!(
            Signer::new("hmac-md5", "k"),
            Err(SigningError::UnsupportedScheme(_))
        ));
        let unsigned = Signer::new("hmac-sha256", "").unwrap();
        assert!(!unsigned.is_signing());
        assert_eq!(unsigned.sign(&[b"x"]), "");
        assert!(unsigned.verify(b"anything", &[b"x"]).is_ok());
    }

    #[test]
    fn replay_guard_rejects_repeats_and_forgets_the_oldest() {
        let mut guard = ReplayGuard::new(2);
        guard.check(b"a").unwrap();
        assert_eq!(guard.check(b"a"), Err(SigningError::Replayed));
        guard.check(b"b").unwrap();
        guard.check(b"c").unwrap();
        guard.check(b"a").unwrap();
    }
}
