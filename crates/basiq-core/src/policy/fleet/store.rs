//! The seven key-value primitives a fleet shares, as values ([`FleetOp`]), and the two seams that
//! run them: [`FleetStore`] (blocking) and [`AsyncFleetStore`] (async).
//!
//! Every fleet rule is built from these: a lock is [`FleetOp::SetIfAbsent`] with a lease and a
//! release by [`FleetOp::DeleteIfEquals`] (compare-and-delete, so a holder whose lease expired
//! cannot release its successor's lock); the shared token is [`FleetOp::Get`] / [`FleetOp::Set`]
//! with a TTL; the daily quota is [`FleetOp::IncrementBelow`] (atomic check-and-reserve) and
//! [`FleetOp::Decrement`] (give a reservation back). Redis does each in one command or one Lua
//! script (`basiq-redis`); [`MemoryFleetStore`] does them under a mutex for tests and
//! single-process hosts.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;

use crate::clock::Clock;
use crate::policy::token::StoreError;
use crate::time_util;

/// A key in the fleet's store, built by [`FleetKeys`](super::FleetKeys) (prefixed and
/// hash-tagged). Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FleetKey(String);

impl FleetKey {
    pub(crate) fn new(key: String) -> Self {
        Self(key)
    }

    /// The key as sent to the store.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FleetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One operation on the fleet's store. Values are opaque bytes (the token is sealed before it
/// gets here when the app supplies a key); `Debug` prints their length only, never their bytes.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FleetOp {
    /// The value, or `None` when absent or expired. Answer: [`FleetAnswer::Value`].
    Get {
        /// Which key.
        key: FleetKey,
    },
    /// Store `value`, expiring after `ttl`. Answer: [`FleetAnswer::Done`].
    Set {
        /// Which key.
        key: FleetKey,
        /// The value.
        value: Vec<u8>,
        /// Time to live (at least 1 ms).
        ttl: Duration,
    },
    /// Store `value` only if the key is absent (`SET NX PX`). Answer: [`FleetAnswer::Applied`].
    SetIfAbsent {
        /// Which key.
        key: FleetKey,
        /// The value.
        value: Vec<u8>,
        /// Time to live (at least 1 ms).
        ttl: Duration,
    },
    /// Delete the key only if it holds exactly `value` (compare-and-delete). Answer:
    /// [`FleetAnswer::Applied`].
    DeleteIfEquals {
        /// Which key.
        key: FleetKey,
        /// The value it must hold.
        value: Vec<u8>,
    },
    /// Replace the value only if it is exactly `expected` (compare-and-set), with a new TTL.
    /// Answer: [`FleetAnswer::Applied`].
    ReplaceIfEquals {
        /// Which key.
        key: FleetKey,
        /// The value it must hold.
        expected: Vec<u8>,
        /// The new value.
        value: Vec<u8>,
        /// Time to live of the new value.
        ttl: Duration,
    },
    /// Atomically: if the counter (absent = 0) is below `limit`, add one and answer the new
    /// count; otherwise change nothing and answer `None`. A new counter expires after `ttl`.
    /// Answer: [`FleetAnswer::Count`].
    IncrementBelow {
        /// Which counter.
        key: FleetKey,
        /// The ceiling.
        limit: u32,
        /// Time to live of a counter this creates.
        ttl: Duration,
    },
    /// Subtract one from a counter, never below 0 (an absent counter stays absent). Answer:
    /// [`FleetAnswer::Done`].
    Decrement {
        /// Which counter.
        key: FleetKey,
    },
}

impl FleetOp {
    /// The key the operation touches.
    pub fn key(&self) -> &FleetKey {
        match self {
            Self::Get { key }
            | Self::Set { key, .. }
            | Self::SetIfAbsent { key, .. }
            | Self::DeleteIfEquals { key, .. }
            | Self::ReplaceIfEquals { key, .. }
            | Self::IncrementBelow { key, .. }
            | Self::Decrement { key } => key,
        }
    }

    /// A short name for logs (`get`, `set`, `set-if-absent`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Get { .. } => "get",
            Self::Set { .. } => "set",
            Self::SetIfAbsent { .. } => "set-if-absent",
            Self::DeleteIfEquals { .. } => "delete-if-equals",
            Self::ReplaceIfEquals { .. } => "replace-if-equals",
            Self::IncrementBelow { .. } => "increment-below",
            Self::Decrement { .. } => "decrement",
        }
    }
}

impl fmt::Debug for FleetOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("FleetOp");
        out.field("op", &self.name()).field("key", &self.key().0);
        match self {
            Self::Set { value, ttl, .. } | Self::SetIfAbsent { value, ttl, .. } => {
                out.field("value_len", &value.len()).field("ttl", ttl)
            }
            Self::DeleteIfEquals { value, .. } => out.field("value_len", &value.len()),
            Self::ReplaceIfEquals { value, ttl, .. } => {
                out.field("value_len", &value.len()).field("ttl", ttl)
            }
            Self::IncrementBelow { limit, ttl, .. } => out.field("limit", limit).field("ttl", ttl),
            Self::Get { .. } | Self::Decrement { .. } => &mut out,
        };
        out.finish()
    }
}

/// What a store answered to a [`FleetOp`].
#[derive(Clone, PartialEq, Eq)]
pub enum FleetAnswer {
    /// To [`FleetOp::Get`].
    Value(Option<Vec<u8>>),
    /// To the conditional operations: whether the condition held and the change was made.
    Applied(bool),
    /// To [`FleetOp::IncrementBelow`]: the new count, or `None` at the limit.
    Count(Option<u32>),
    /// To [`FleetOp::Set`] and [`FleetOp::Decrement`].
    Done,
}

impl fmt::Debug for FleetAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(v) => write!(f, "Value(len {:?})", v.as_ref().map(Vec::len)),
            Self::Applied(b) => write!(f, "Applied({b})"),
            Self::Count(c) => write!(f, "Count({c:?})"),
            Self::Done => f.write_str("Done"),
        }
    }
}

impl FleetAnswer {
    fn mismatch(&self, wanted: &str) -> StoreError {
        StoreError::new(format!(
            "the store answered {self:?} where {wanted} was expected"
        ))
    }

    /// The value of a [`FleetOp::Get`].
    pub fn into_value(self) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Self::Value(v) => Ok(v),
            other => Err(other.mismatch("a value")),
        }
    }

    /// Whether a conditional operation applied.
    pub fn applied(&self) -> Result<bool, StoreError> {
        match self {
            Self::Applied(b) => Ok(*b),
            other => Err(other.mismatch("applied or not")),
        }
    }

    /// The count of a [`FleetOp::IncrementBelow`].
    pub fn count(&self) -> Result<Option<u32>, StoreError> {
        match self {
            Self::Count(c) => Ok(*c),
            other => Err(other.mismatch("a count")),
        }
    }
}

/// Runs [`FleetOp`]s for the blocking client (and any host without a runtime).
///
/// Implementations must make each operation atomic and bound it in time (a store that hangs
/// must answer [`StoreError`] after its timeout): the SDK falls back to process-local state on
/// an error and never fails a request because of the store. `Debug` must not print values.
pub trait FleetStore: Send + Sync + fmt::Debug {
    /// Runs one operation.
    fn execute(&self, op: &FleetOp) -> Result<FleetAnswer, StoreError>;
}

/// Runs [`FleetOp`]s for the async client without blocking a runtime worker. Same contract as
/// [`FleetStore`].
#[async_trait::async_trait]
pub trait AsyncFleetStore: Send + Sync + fmt::Debug {
    /// Runs one operation.
    async fn execute(&self, op: &FleetOp) -> Result<FleetAnswer, StoreError>;
}

#[derive(Debug, Clone)]
enum Entry {
    Bytes(Vec<u8>),
    Counter(u32),
}

#[derive(Debug, Clone)]
struct Slot {
    entry: Entry,
    expires_at: OffsetDateTime,
}

/// A [`FleetStore`] and [`AsyncFleetStore`] in process memory, with TTLs on the given clock.
///
/// Shared by `Arc` between clients it gives them the same semantics a Redis store gives a fleet
/// (tests use it with a virtual clock); it cannot share anything between processes.
pub struct MemoryFleetStore {
    clock: Arc<dyn Clock>,
    slots: Mutex<HashMap<FleetKey, Slot>>,
}

impl fmt::Debug for MemoryFleetStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryFleetStore")
            .field("keys", &self.lock().len())
            .finish_non_exhaustive()
    }
}

impl MemoryFleetStore {
    /// An empty store whose TTLs run on `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<FleetKey, Slot>> {
        // Poisoning means a panic while holding plain data that every operation leaves whole.
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Forgets everything (what `FLUSHALL` does to Redis).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The number of live keys.
    pub fn len(&self) -> usize {
        let now = self.clock.now();
        self.lock().values().filter(|s| s.expires_at > now).count()
    }

    /// Whether no key is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn run(&self, op: &FleetOp) -> FleetAnswer {
        let now = self.clock.now();
        let mut slots = self.lock();
        slots.retain(|_, slot| slot.expires_at > now);
        let expiry = |ttl: &Duration| time_util::add(now, (*ttl).max(Duration::from_millis(1)));
        let bytes = |slots: &HashMap<FleetKey, Slot>, key: &FleetKey| match slots.get(key) {
            Some(Slot {
                entry: Entry::Bytes(b),
                ..
            }) => Some(b.clone()),
            Some(Slot {
                entry: Entry::Counter(n),
                ..
            }) => Some(n.to_string().into_bytes()),
            None => None,
        };
        match op {
            FleetOp::Get { key } => FleetAnswer::Value(bytes(&slots, key)),
            FleetOp::Set { key, value, ttl } => {
                slots.insert(
                    key.clone(),
                    Slot {
                        entry: Entry::Bytes(value.clone()),
                        expires_at: expiry(ttl),
                    },
                );
                FleetAnswer::Done
            }
            FleetOp::SetIfAbsent { key, value, ttl } => {
                if slots.contains_key(key) {
                    return FleetAnswer::Applied(false);
                }
                slots.insert(
                    key.clone(),
                    Slot {
                        entry: Entry::Bytes(value.clone()),
                        expires_at: expiry(ttl),
                    },
                );
                FleetAnswer::Applied(true)
            }
            FleetOp::DeleteIfEquals { key, value } => {
                if bytes(&slots, key).as_ref() == Some(value) {
                    slots.remove(key);
                    FleetAnswer::Applied(true)
                } else {
                    FleetAnswer::Applied(false)
                }
            }
            FleetOp::ReplaceIfEquals {
                key,
                expected,
                value,
                ttl,
            } => {
                if bytes(&slots, key).as_ref() != Some(expected) {
                    return FleetAnswer::Applied(false);
                }
                slots.insert(
                    key.clone(),
                    Slot {
                        entry: Entry::Bytes(value.clone()),
                        expires_at: expiry(ttl),
                    },
                );
                FleetAnswer::Applied(true)
            }
            FleetOp::IncrementBelow { key, limit, ttl } => {
                let current = match slots.get(key) {
                    Some(Slot {
                        entry: Entry::Counter(n),
                        ..
                    }) => *n,
                    Some(_) | None => 0,
                };
                if current >= *limit {
                    return FleetAnswer::Count(None);
                }
                let expires_at = slots
                    .get(key)
                    .map_or_else(|| expiry(ttl), |slot| slot.expires_at);
                slots.insert(
                    key.clone(),
                    Slot {
                        entry: Entry::Counter(current + 1),
                        expires_at,
                    },
                );
                FleetAnswer::Count(Some(current + 1))
            }
            FleetOp::Decrement { key } => {
                if let Some(Slot {
                    entry: Entry::Counter(n),
                    ..
                }) = slots.get_mut(key)
                {
                    *n = n.saturating_sub(1);
                }
                FleetAnswer::Done
            }
        }
    }
}

impl FleetStore for MemoryFleetStore {
    fn execute(&self, op: &FleetOp) -> Result<FleetAnswer, StoreError> {
        Ok(self.run(op))
    }
}

#[async_trait::async_trait]
impl AsyncFleetStore for MemoryFleetStore {
    async fn execute(&self, op: &FleetOp) -> Result<FleetAnswer, StoreError> {
        Ok(self.run(op))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn key(s: &str) -> FleetKey {
        FleetKey::new(s.to_owned())
    }

    fn store() -> (MemoryFleetStore, ManualClock) {
        let clock = ManualClock::new(OffsetDateTime::UNIX_EPOCH);
        (MemoryFleetStore::new(Arc::new(clock.clone())), clock)
    }

    #[test]
    fn set_if_absent_is_a_lock_with_a_lease_and_compare_and_delete() {
        let (s, clock) = store();
        let lock = |holder: &[u8]| FleetOp::SetIfAbsent {
            key: key("l"),
            value: holder.to_vec(),
            ttl: Duration::from_secs(30),
        };
        assert_eq!(s.run(&lock(b"a")), FleetAnswer::Applied(true));
        assert_eq!(s.run(&lock(b"b")), FleetAnswer::Applied(false));
        // b cannot release a's lock.
        let release = |holder: &[u8]| FleetOp::DeleteIfEquals {
            key: key("l"),
            value: holder.to_vec(),
        };
        assert_eq!(s.run(&release(b"b")), FleetAnswer::Applied(false));
        // The lease runs out: b takes it, and a (late) cannot release b's.
        clock.advance(Duration::from_secs(31));
        assert_eq!(s.run(&lock(b"b")), FleetAnswer::Applied(true));
        assert_eq!(s.run(&release(b"a")), FleetAnswer::Applied(false));
        assert_eq!(s.run(&release(b"b")), FleetAnswer::Applied(true));
        assert!(s.is_empty());
    }

    #[test]
    fn increment_below_never_passes_the_limit_and_expires() {
        let (s, clock) = store();
        let inc = FleetOp::IncrementBelow {
            key: key("q"),
            limit: 2,
            ttl: Duration::from_secs(60),
        };
        assert_eq!(s.run(&inc), FleetAnswer::Count(Some(1)));
        assert_eq!(s.run(&inc), FleetAnswer::Count(Some(2)));
        assert_eq!(s.run(&inc), FleetAnswer::Count(None));
        s.run(&FleetOp::Decrement { key: key("q") });
        assert_eq!(s.run(&inc), FleetAnswer::Count(Some(2)));
        assert_eq!(
            s.run(&FleetOp::Get { key: key("q") }),
            FleetAnswer::Value(Some(b"2".to_vec()))
        );
        clock.advance(Duration::from_secs(61));
        assert_eq!(s.run(&inc), FleetAnswer::Count(Some(1)));
        // Decrementing an absent counter leaves it absent.
        s.run(&FleetOp::Decrement { key: key("other") });
        assert_eq!(
            s.run(&FleetOp::Get { key: key("other") }),
            FleetAnswer::Value(None)
        );
    }

    #[test]
    fn replace_if_equals_and_debug_hide_values() {
        let (s, _) = store();
        let set = FleetOp::Set {
            key: key("k"),
            value: b"secret-value".to_vec(),
            ttl: Duration::from_secs(5),
        };
        assert!(!format!("{set:?}").contains("secret"));
        s.run(&set);
        let replace = |expected: &[u8]| FleetOp::ReplaceIfEquals {
            key: key("k"),
            expected: expected.to_vec(),
            value: b"new".to_vec(),
            ttl: Duration::from_secs(5),
        };
        assert_eq!(s.run(&replace(b"other")), FleetAnswer::Applied(false));
        assert_eq!(s.run(&replace(b"secret-value")), FleetAnswer::Applied(true));
        let got = s.run(&FleetOp::Get { key: key("k") });
        assert!(!format!("{got:?}").contains("new"));
        assert_eq!(got.into_value().unwrap(), Some(b"new".to_vec()));
        assert!(FleetAnswer::Done.applied().is_err());
    }
}
