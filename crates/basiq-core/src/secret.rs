//! Secrets: the API key and access tokens.
//!
//! Both wrap [`secrecy::SecretString`], so they are zeroized on drop and print as
//! `[REDACTED]` in `Debug`; they have no `Display` at all. Reading the value takes an explicit
//! `expose_secret()`, which makes every place that could leak one easy to audit.

use std::fmt;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

/// A Basiq API key, exactly as the dashboard shows it (already base64 of `uuid:uuid`).
#[derive(Clone)]
pub struct ApiKey(SecretString);

impl ApiKey {
    /// Wraps an API key. Surrounding whitespace (a frequent copy-paste artefact) is trimmed.
    pub fn new(key: impl Into<String>) -> Self {
        let key: String = key.into();
        Self(SecretString::from(key.trim().to_owned()))
    }

    /// The key itself. Only the `/token` request needs it.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// Whether the key is empty (an empty key can never authenticate).
    pub fn is_empty(&self) -> bool {
        self.0.expose_secret().is_empty()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([REDACTED])")
    }
}

impl From<String> for ApiKey {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for ApiKey {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

/// A bearer token returned by `POST /token`.
///
/// Shared, not copied, by clones (every request's lease holds one): the secret is zeroized when
/// the last clone drops.
#[derive(Clone)]
pub struct AccessToken(Arc<SecretString>);

impl AccessToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(Arc::new(SecretString::from(token.into())))
    }

    /// The token itself, for an `Authorization: Bearer` header or the Consent UI URL.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// Constant-time-ish equality, used to tell whether a rejected token is the cached one.
    pub fn same_as(&self, other: &AccessToken) -> bool {
        let (a, b) = (
            self.expose_secret().as_bytes(),
            other.expose_secret().as_bytes(),
        );
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let key = ApiKey::new("  c2VjcmV0OnNlY3JldA==\n");
        assert_eq!(format!("{key:?}"), "ApiKey([REDACTED])");
        assert_eq!(key.expose_secret(), "c2VjcmV0OnNlY3JldA==");
        let token = AccessToken::new("eyJhbGciOi.secret.sig");
        assert!(!format!("{token:?}").contains("eyJ"));
    }

    #[test]
    fn same_as_compares_values() {
        assert!(AccessToken::new("a").same_as(&AccessToken::new("a")));
        assert!(!AccessToken::new("a").same_as(&AccessToken::new("b")));
        assert!(!AccessToken::new("a").same_as(&AccessToken::new("ab")));
    }
}
