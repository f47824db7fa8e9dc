//! # basiq-redis
//!
//! Fleet mode for the Basiq SDK on Redis: every instance of an app shares **one server token**
//! (cross-process single flight of `/token`), **one daily refresh quota** per open-banking
//! connection (atomic check-and-reserve) and **one running attempt** per connection or user and
//! institution (claims with Basiq's 6-minute pause as horizon). The rules live in
//! [`basiq_core::fleet`]; this crate runs its [`FleetOp`]s on Redis with one command or one Lua
//! script each, under a per-operation timeout.
//!
//! * async client: [`RedisFleet::async_fleet`] — redis-rs's `ConnectionManager` (multiplexed,
//!   reconnects by itself), every call `.await`ed, never blocking a runtime worker;
//! * blocking client: [`RedisFleet::blocking_fleet`] — a plain connection with read/write
//!   timeouts, reconnected after an error; no tokio.
//!
//! Keys live under a prefix in braces (`{basiq:prod}:token`), so on Redis Cluster all of a
//! fleet's keys hash to one slot. The stored token can be sealed with a key only the app holds
//! ([`RedisFleet::encryption_key`], ChaCha20-Poly1305). Redis down, slow, restarted or flushed:
//! the operation answers an error after its timeout, the SDK logs it and falls back to the
//! process's own state — no request fails because of Redis — and uses Redis again when it
//! answers.
//!
//! ```no_run
//! # async fn run() -> Result<(), basiq::Error> {
//! let fleet = basiq_redis::RedisFleet::new("redis://127.0.0.1:6379/")?.prefix("basiq:prod")?;
//! let client = basiq::Client::builder()
//!     .api_key(std::env::var("BASIQ_API_KEY").unwrap_or_default())
//!     .fleet(fleet.async_fleet())
//!     .build()?;
//! # let _ = client;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]
// `basiq_core::Error` carries the ids Basiq support asks for; boxing it would cost every caller.
#![allow(clippy::result_large_err)]

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use basiq_core::error::Error;
use basiq_core::fleet::{
    FleetAnswer, FleetConfig, FleetKeys, FleetOp, FleetTokenPolicy, TokenSealer,
};
use basiq_core::token::StoreError;

mod sealer;
pub use sealer::ChaChaSealer;

#[cfg(feature = "async")]
mod async_store;
#[cfg(feature = "async")]
pub use async_store::AsyncRedisStore;

#[cfg(feature = "blocking")]
mod blocking_store;
#[cfg(feature = "blocking")]
pub use blocking_store::BlockingRedisStore;

/// The default per-operation timeout: Redis answers in well under a millisecond; a store that
/// takes longer than this is treated as down for that operation.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "basiq";

/// How to reach Redis and what the fleet agrees on. Build one per process; every instance of
/// the app uses the same URL, prefix and (if any) encryption key.
#[derive(Clone)]
pub struct RedisFleet {
    client: redis::Client,
    config: FleetConfig,
    sealer: Option<Arc<dyn TokenSealer>>,
    timeout: Duration,
    round_trips: Arc<AtomicU64>,
}

impl fmt::Debug for RedisFleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection info may carry a Redis password: show the address only.
        let info = self.client.get_connection_info();
        f.debug_struct("RedisFleet")
            .field("addr", &info.addr().to_string())
            .field("sealed", &self.sealer.is_some())
            .field("config", &self.config)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisFleet {
    /// A fleet on the Redis at `url` (`redis://[:password@]host:port/db`), prefix
    /// [`DEFAULT_PREFIX`]. Nothing is connected yet: a Redis that is down at start-up only means
    /// the fleet degrades to local state until it comes up.
    pub fn new(url: &str) -> Result<Self, Error> {
        let client = redis::Client::open(url)
            .map_err(|e| Error::config(format!("Redis URL: {}", e.category())))?;
        Ok(Self {
            client,
            config: FleetConfig::new(FleetKeys::new(DEFAULT_PREFIX)?),
            sealer: None,
            timeout: DEFAULT_TIMEOUT,
            round_trips: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Keys under `prefix` (one per app and environment).
    pub fn prefix(mut self, prefix: &str) -> Result<Self, Error> {
        let keys = FleetKeys::new(prefix)?;
        let mut config = FleetConfig::new(keys)
            .with_token_policy(self.config.token_policy())
            .with_instance(self.config.instance());
        if let Some(sealer) = &self.sealer {
            config = config.with_sealer(Arc::clone(sealer));
        }
        self.config = config;
        Ok(self)
    }

    /// Seals the stored server token with ChaCha20-Poly1305 under `key` (32 bytes; every
    /// instance needs the same one). Whoever reads Redis then cannot use the token.
    pub fn encryption_key(mut self, key: [u8; 32]) -> Self {
        let sealer: Arc<dyn TokenSealer> = Arc::new(ChaChaSealer::new(key));
        self.config = self.config.clone().with_sealer(Arc::clone(&sealer));
        self.sealer = Some(sealer);
        self
    }

    /// The per-operation timeout (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How the token is shared (lock lease, waiting).
    pub fn token_policy(mut self, policy: FleetTokenPolicy) -> Self {
        self.config = self.config.clone().with_token_policy(policy);
        self
    }

    /// This instance's id in lock and claim values (default: process id and a random suffix).
    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.config = self.config.clone().with_instance(instance);
        self
    }

    /// What the instances agree on.
    pub fn config(&self) -> &FleetConfig {
        &self.config
    }

    /// Commands sent to Redis so far by the stores made from this value (for benches and
    /// dashboards: in steady state a request costs none).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// The fleet for the async client (`basiq::ClientBuilder::fleet`).
    #[cfg(feature = "async")]
    pub fn async_fleet(&self) -> basiq_core::fleet::AsyncFleet {
        basiq_core::fleet::AsyncFleet {
            store: Arc::new(AsyncRedisStore::new(
                self.client.clone(),
                self.timeout,
                Arc::clone(&self.round_trips),
            )),
            config: self.config.clone(),
        }
    }

    /// The fleet for the blocking client (`basiq::blocking::ClientBuilder::fleet`).
    #[cfg(feature = "blocking")]
    pub fn blocking_fleet(&self) -> basiq_core::fleet::BlockingFleet {
        basiq_core::fleet::BlockingFleet {
            store: Arc::new(BlockingRedisStore::new(
                self.client.clone(),
                self.timeout,
                Arc::clone(&self.round_trips),
            )),
            config: self.config.clone(),
        }
    }
}

#[cfg(feature = "blocking")]
impl RedisFleet {
    /// The webhook seen-store on this Redis (`{prefix}:webhook:seen:{id}`), for
    /// `basiq::webhooks::WebhookReceiver::seen_store`: instances behind one load balancer handle
    /// each `webhook-id` once. Synchronous like every seen-store (one round trip per delivery,
    /// under this fleet's timeout); it works in async hosts too.
    pub fn seen_store(&self) -> Arc<dyn basiq_core::webhooks::SeenStore> {
        Arc::new(basiq_core::webhooks::seen::FleetSeenStore::new(
            self.blocking_fleet().store,
            self.config.keys().clone(),
        ))
    }

    /// The freshness ledger on this Redis (`{prefix}:fresh:{connectionId}`): give it to the
    /// webhook receiver and to every client's builder (`.freshness_ledger(..)`), so the instance
    /// asked to refresh knows what another instance's receiver heard from Basiq.
    pub fn freshness_ledger(&self) -> Arc<dyn basiq_core::freshness::FreshnessLedger> {
        Arc::new(basiq_core::freshness::FleetFreshnessLedger::new(
            self.blocking_fleet().store,
            self.config.keys().clone(),
        ))
    }
}

/// `GET`, then delete if equal (compare-and-delete).
const DELETE_IF_EQUALS: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// Compare-and-set with a new TTL in milliseconds.
const REPLACE_IF_EQUALS: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0";

/// Bounded increment: -1 at the limit, else the new count (a new counter gets the TTL).
const INCREMENT_BELOW: &str = r"
local n = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if n >= tonumber(ARGV[1]) then
  return -1
end
n = redis.call('INCR', KEYS[1])
if n == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return n";

/// Decrement, never below zero; an absent counter stays absent.
const DECREMENT: &str = r"
local n = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if n > 0 then
  return redis.call('DECR', KEYS[1])
end
return 0";

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// One [`FleetOp`] as Redis sees it.
pub(crate) enum Prepared {
    /// A plain command.
    Cmd(redis::Cmd),
    /// A script invocation with its key and arguments (EVALSHA, EVAL after a flush).
    Script(redis::ScriptInvocation<'static>),
}

pub(crate) fn scripts() -> &'static [redis::Script; 4] {
    static SCRIPTS: std::sync::OnceLock<[redis::Script; 4]> = std::sync::OnceLock::new();
    SCRIPTS.get_or_init(|| {
        [
            redis::Script::new(DELETE_IF_EQUALS),
            redis::Script::new(REPLACE_IF_EQUALS),
            redis::Script::new(INCREMENT_BELOW),
            redis::Script::new(DECREMENT),
        ]
    })
}

pub(crate) fn prepare(op: &FleetOp) -> Prepared {
    let [delete_if_equals, replace_if_equals, increment_below, decrement] = scripts();
    let script = |script: &'static redis::Script, key: &str| {
        let mut invocation = script.prepare_invoke();
        invocation.key(key);
        invocation
    };
    match op {
        FleetOp::Get { key } => {
            let mut cmd = redis::cmd("GET");
            cmd.arg(key.as_str());
            Prepared::Cmd(cmd)
        }
        FleetOp::Set { key, value, ttl } => {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key.as_str())
                .arg(value.as_slice())
                .arg("PX")
                .arg(millis(*ttl));
            Prepared::Cmd(cmd)
        }
        FleetOp::SetIfAbsent { key, value, ttl } => {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key.as_str())
                .arg(value.as_slice())
                .arg("NX")
                .arg("PX")
                .arg(millis(*ttl));
            Prepared::Cmd(cmd)
        }
        FleetOp::DeleteIfEquals { key, value } => {
            let mut inv = script(delete_if_equals, key.as_str());
            inv.arg(value.as_slice());
            Prepared::Script(inv)
        }
        FleetOp::ReplaceIfEquals {
            key,
            expected,
            value,
            ttl,
        } => {
            let mut inv = script(replace_if_equals, key.as_str());
            inv.arg(expected.as_slice())
                .arg(value.as_slice())
                .arg(millis(*ttl));
            Prepared::Script(inv)
        }
        FleetOp::IncrementBelow { key, limit, ttl } => {
            let mut inv = script(increment_below, key.as_str());
            inv.arg(*limit).arg(millis(*ttl));
            Prepared::Script(inv)
        }
        FleetOp::Decrement { key } => {
            let inv = script(decrement, key.as_str());
            Prepared::Script(inv)
        }
        // `FleetOp` is non-exhaustive: an operation this crate does not know yet.
        #[allow(unreachable_patterns)]
        _ => {
            let mut cmd = redis::cmd("PING");
            cmd.arg("unsupported");
            Prepared::Cmd(cmd)
        }
    }
}

/// Turns Redis's reply into the answer `op` expects.
pub(crate) fn answer(op: &FleetOp, reply: redis::Value) -> Result<FleetAnswer, StoreError> {
    use redis::FromRedisValue;
    let bad = |e: redis::ParsingError| StoreError::new(format!("redis {}: {e}", op.name()));
    match op {
        FleetOp::Get { .. } => Option::<Vec<u8>>::from_redis_value(reply)
            .map(FleetAnswer::Value)
            .map_err(bad),
        FleetOp::Set { .. } | FleetOp::Decrement { .. } => Ok(FleetAnswer::Done),
        FleetOp::SetIfAbsent { .. } => {
            Ok(FleetAnswer::Applied(!matches!(reply, redis::Value::Nil)))
        }
        FleetOp::DeleteIfEquals { .. } | FleetOp::ReplaceIfEquals { .. } => {
            i64::from_redis_value(reply)
                .map(|n| FleetAnswer::Applied(n > 0))
                .map_err(bad)
        }
        FleetOp::IncrementBelow { .. } => i64::from_redis_value(reply)
            .map(|n| FleetAnswer::Count(u32::try_from(n).ok()))
            .map_err(bad),
        #[allow(unreachable_patterns)]
        _ => Err(StoreError::new(format!(
            "redis: unsupported operation {}",
            op.name()
        ))),
    }
}

/// A Redis error as a [`StoreError`]: its kind and category, never the command's values.
pub(crate) fn store_error(op: &FleetOp, e: &redis::RedisError) -> StoreError {
    StoreError::new(format!(
        "redis {} on {}: {}{}",
        op.name(),
        op.key(),
        e.category(),
        if e.is_timeout() { " (timed out)" } else { "" }
    ))
}
