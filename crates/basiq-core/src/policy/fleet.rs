//! Fleet mode: Basiq's rules hold per *application*, so every instance of an app shares one
//! server token, one daily refresh quota per connection and one running attempt per credentials.
//!
//! Basiq asks to cache the server token "for global use", allows an open-banking connection 20
//! refreshes a day, and pauses a second attempt with the same credentials for 6 minutes while one
//! runs. An app with several instances (pods, workers, a cron box) keeps those rules only if the
//! instances share state. This module holds the fleet's rules without IO:
//!
//! * [`FleetOp`] — the seven key-value primitives everything is built from, run by a
//!   [`FleetStore`] (blocking) or an [`AsyncFleetStore`]; `basiq-redis` implements both on Redis,
//!   [`MemoryFleetStore`] in memory;
//! * [`FleetKeys`] — one prefix per app and environment, hash-tagged for Redis Cluster;
//! * [`FleetTokenFetch`] — the cross-process single flight of `/token` (lock, re-check, fetch,
//!   store with a TTL, compare-and-delete), with a shared failure backoff;
//! * [`FleetAttempt`] — attempt claims with Basiq's 6-minute horizon and the atomic
//!   check-and-reserve of the daily quota.
//!
//! The store is consulted only when the process's own state cannot answer: a request with a
//! cached token costs no store round trip. Store errors are logged and degrade to the process's
//! own state; they never fail a request.

mod attempts;
mod keys;
mod store;
mod token;

use std::fmt;
use std::sync::Arc;

pub use attempts::{AttemptRefusal, AttemptResult, AttemptStep, FleetAttempt, ATTEMPT_HORIZON};
pub use keys::FleetKeys;
pub use store::{AsyncFleetStore, FleetAnswer, FleetKey, FleetOp, FleetStore, MemoryFleetStore};
pub use token::{FleetStep, FleetTokenFetch, FleetTokenPolicy, TokenSealer};

/// What every instance of a fleet agrees on: the keys' prefix, how the token is shared and
/// (optionally) sealed. Each instance also has its own id, used in lock and claim values.
#[derive(Clone)]
pub struct FleetConfig {
    keys: FleetKeys,
    sealer: Option<Arc<dyn TokenSealer>>,
    token_policy: FleetTokenPolicy,
    instance: String,
}

impl fmt::Debug for FleetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetConfig")
            .field("prefix", &self.keys.prefix())
            .field("token", &token::fmt_sealer(&self.sealer))
            .field("token_policy", &self.token_policy)
            .field("instance", &self.instance)
            .finish()
    }
}

impl FleetConfig {
    /// A fleet under `keys`, with a random instance id, the token stored unsealed.
    pub fn new(keys: FleetKeys) -> Self {
        Self {
            keys,
            sealer: None,
            token_policy: FleetTokenPolicy::default(),
            instance: random_instance_id(),
        }
    }

    /// Seals the stored token with `sealer` (every instance needs the same key).
    pub fn with_sealer(mut self, sealer: Arc<dyn TokenSealer>) -> Self {
        self.sealer = Some(sealer);
        self
    }

    /// Another token-sharing policy (lock lease, waiting).
    pub fn with_token_policy(mut self, policy: FleetTokenPolicy) -> Self {
        self.token_policy = policy;
        self
    }

    /// Another instance id (printable, no `|`; e.g. the pod name). Shown in claim values.
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        let instance: String = instance.into();
        self.instance = instance.replace(['|', ' '], "_");
        self
    }

    /// The keys.
    pub fn keys(&self) -> &FleetKeys {
        &self.keys
    }

    /// The sealer, if any.
    pub fn sealer(&self) -> Option<&dyn TokenSealer> {
        self.sealer.as_deref()
    }

    /// How the token is shared.
    pub fn token_policy(&self) -> FleetTokenPolicy {
        self.token_policy
    }

    /// This instance's id.
    pub fn instance(&self) -> &str {
        &self.instance
    }
}

/// A fleet for the async client: its store and configuration.
#[derive(Clone, Debug)]
pub struct AsyncFleet {
    /// Where the fleet's state lives.
    pub store: Arc<dyn AsyncFleetStore>,
    /// What the instances agree on.
    pub config: FleetConfig,
}

/// A fleet for the blocking client: its store and configuration.
#[derive(Clone, Debug)]
pub struct BlockingFleet {
    /// Where the fleet's state lives.
    pub store: Arc<dyn FleetStore>,
    /// What the instances agree on.
    pub config: FleetConfig,
}

/// An id for this instance: process id and a time-derived suffix, unique enough to tell lock
/// holders apart (it is not a secret and needs no randomness guarantees).
fn random_instance_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!(
        "{}-{:012x}",
        std::process::id(),
        hasher.finish() & 0xffff_ffff_ffff
    )
}
