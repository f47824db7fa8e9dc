//! Sharing the server token beyond one process: the [`TokenStore`] seam.
//!
//! Basiq asks for the server token to be cached "for global use". Inside one process the
//! executors already do that (one token per lifetime, single-flight fetches). A *fleet* of
//! processes shares one token through a [`TokenStore`]: before fetching, an executor asks the
//! store for a token another process saved; after fetching, it saves its own.
//!
//! The trait is synchronous on purpose. It is called only inside the executor's single-flight
//! fetch gate — that is, about once per token lifetime per process (plus once after a rejection)
//! — never on the request path of a cached token. Stores that fit the job (Redis, memcached, a
//! local file) answer in well under a millisecond, so a blocking call is cheaper than boxing a
//! future, and one trait serves the async and the blocking executor alike with no runtime in
//! `basiq-core`. An async host whose store can be slow should bound it (a short client timeout
//! inside `load`/`save`, returning [`StoreError`] on timeout): a store error never fails a
//! request, the executor just fetches a token itself.

use std::fmt;
use std::sync::{Mutex, MutexGuard};

use time::OffsetDateTime;

use crate::secret::AccessToken;

/// A server token as a [`TokenStore`] keeps it: the token and when it expires. `Debug` hides the
/// token.
#[derive(Clone)]
#[non_exhaustive]
pub struct StoredToken {
    /// The bearer token (a secret: store it where only the fleet can read it).
    pub token: AccessToken,
    /// When it expires (the fetching process's view: the `/token` request's send time plus
    /// `expires_in`).
    pub expires_at: OffsetDateTime,
    /// Its whole lifetime (`expires_in`), when the store kept it: the refresh-ahead margin is
    /// taken for this lifetime instead of Basiq's usual 3600 s.
    pub lifetime: Option<std::time::Duration>,
}

impl StoredToken {
    /// A stored token.
    pub fn new(token: AccessToken, expires_at: OffsetDateTime) -> Self {
        Self {
            token,
            expires_at,
            lifetime: None,
        }
    }

    /// The same token with its lifetime known.
    pub fn with_lifetime(mut self, lifetime: std::time::Duration) -> Self {
        self.lifetime = Some(lifetime);
        self
    }
}

impl fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredToken")
            .field("token", &self.token)
            .field("expires_at", &self.expires_at)
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// A [`TokenStore`] could not load or save. Executors log it (the message only) and carry on
/// without the store, so the message must never contain the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    message: String,
}

impl StoreError {
    /// An error with a message (no secrets: it is logged).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token store: {}", self.message)
    }
}

impl std::error::Error for StoreError {}

/// Where a fleet keeps its shared server token (Redis, memcached, a file, …).
///
/// Executors call [`load`](Self::load) inside their single-flight fetch gate, when their own
/// cache has no usable token, and use the stored one if it is still valid beyond the
/// refresh-ahead margin and is not a token Basiq just rejected; otherwise they fetch and
/// [`save`](Self::save) the new token. Errors are logged and never fail a request. Both calls
/// should be quick (see the [module docs](self) for why the trait is synchronous); last writer
/// wins is fine — any valid token will do. The client's `Debug` shows the store's `Debug`, which
/// must not print the token ([`StoredToken`]'s own `Debug` is redacted, so a derived one is fine).
pub trait TokenStore: Send + Sync + fmt::Debug {
    /// The token saved last, if any (expired or not: the executor checks).
    fn load(&self) -> Result<Option<StoredToken>, StoreError>;
    /// Saves a freshly fetched token for the other processes.
    fn save(&self, token: &StoredToken) -> Result<(), StoreError>;
}

/// The default store: process-local memory (what the executor's own cache already gives; a
/// fleet needs a shared store instead). Clone an `Arc` of one to share it between clients of one
/// process.
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    token: Mutex<Option<StoredToken>>,
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Option<StoredToken>> {
        // Poisoning means a panic while holding plain data that is always consistent.
        self.token
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl TokenStore for MemoryTokenStore {
    fn load(&self) -> Result<Option<StoredToken>, StoreError> {
        Ok(self.lock().clone())
    }

    fn save(&self, token: &StoredToken) -> Result<(), StoreError> {
        *self.lock() = Some(token.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_round_trips_and_debug_is_redacted() {
        let store = MemoryTokenStore::new();
        assert!(store.load().unwrap().is_none());
        let token = StoredToken::new(
            AccessToken::new("secret-stored-token"),
            OffsetDateTime::UNIX_EPOCH,
        );
        store.save(&token).unwrap();
        let loaded = store.load().unwrap().unwrap();
        assert_eq!(loaded.token.expose_secret(), "secret-stored-token");
        assert!(!format!("{loaded:?}").contains("secret-stored-token"));
        assert!(!format!("{store:?}").contains("secret-stored-token"));
        assert_eq!(StoreError::new("down").to_string(), "token store: down");
    }
}
