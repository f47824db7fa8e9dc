//! [`ChaChaSealer`]: the stored token encrypted at rest.

use std::fmt;

use basiq_core::policy::fleet::TokenSealer;
use basiq_core::policy::token::StoreError;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

/// Seals the fleet's stored server token with ChaCha20-Poly1305 (RustCrypto, audited): a fresh
/// random 96-bit nonce per seal, prepended to the ciphertext. A value sealed under another key,
/// or altered in Redis, does not open and is treated as no token. `Debug` never shows the key.
#[derive(Clone)]
pub struct ChaChaSealer {
    cipher: ChaCha20Poly1305,
}

impl fmt::Debug for ChaChaSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChaChaSealer([REDACTED])")
    }
}

const NONCE_LEN: usize = 12;

impl ChaChaSealer {
    /// A sealer with a 32-byte key (from the app's secret store; the same on every instance).
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        }
    }
}

impl TokenSealer for ChaChaSealer {
    fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, plaintext)
            .map_err(|_| StoreError::new("sealing the token failed"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        if sealed.len() < NONCE_LEN {
            return Err(StoreError::new("sealed token too short"));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| StoreError::new("the stored token does not open with this key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_open_only_with_the_same_key_and_never_show_the_plaintext() {
        let sealer = ChaChaSealer::new([7; 32]);
        let sealed = sealer.seal(b"the-token").unwrap();
        assert!(!sealed.windows(9).any(|w| w == b"the-token"));
        assert_ne!(
            sealer.seal(b"the-token").unwrap(),
            sealed,
            "fresh nonce per seal"
        );
        assert_eq!(sealer.open(&sealed).unwrap(), b"the-token");
        assert!(ChaChaSealer::new([8; 32]).open(&sealed).is_err());
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(sealer.open(&tampered).is_err());
        assert!(sealer.open(b"short").is_err());
        assert!(!format!("{sealer:?}").contains('7'));
    }
}
