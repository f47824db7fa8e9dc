//! De-duplication of webhook deliveries by `webhook-id`.
//!
//! Basiq retries a message until the endpoint answers 2xx (immediately, then after 5 s, 5 min,
//! 30 min, 2 h, 5 h, 10 h and 10 h), and every retry carries the same `webhook-id`. An answer
//! lost on the way back, or two instances behind a load balancer, therefore deliver one message
//! more than once. A [`SeenStore`] makes handling at-most-once per id *without* losing a
//! message:
//!
//! 1. [`claim`](SeenStore::claim) before handling: [`Claim::First`] → handle it;
//!    [`Claim::Done`] → already handled, answer 2xx and do nothing; [`Claim::InProgress`] →
//!    another worker is on it right now, answer non-2xx so Basiq retries later;
//! 2. [`complete`](SeenStore::complete) once handled (remembered for [`SEEN_TTL`], longer
//!    than Basiq's whole retry schedule), or [`release`](SeenStore::release) when handling
//!    failed, so the next retry is handled again.
//!
//! A claim nobody completes or releases (a crashed worker) lapses after [`CLAIM_TTL`].
//! [`MemorySeenStore`] is process-local; [`FleetSeenStore`] shares the ids through any
//! [`FleetStore`] (Redis: `basiq_redis::RedisFleet::seen_store`), so a fleet handles each
//! message once.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;

use crate::fleet::{FleetKeys, FleetOp, FleetStore};
use crate::token::StoreError;

/// How long a handled id is remembered: Basiq's retries span about 28 hours; three days also
/// cover a message resent by hand from the dashboard the next day.
pub const SEEN_TTL: Duration = Duration::from_secs(3 * 24 * 60 * 60);
/// How long a claim holds when nobody completes or releases it.
pub const CLAIM_TTL: Duration = Duration::from_secs(60);

/// What [`SeenStore::claim`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Not seen before: this caller handles it.
    First,
    /// Handled already: acknowledge, do nothing.
    Done,
    /// Someone else is handling it now: do not acknowledge (Basiq will retry).
    InProgress,
}

/// Remembers which webhook ids were handled. Synchronous, like the token store: one call per
/// delivery, answered in well under a millisecond by memory or Redis.
pub trait SeenStore: Send + Sync + fmt::Debug {
    /// Claims `id` for handling at `now`.
    ///
    /// # Errors
    ///
    /// The store could not be asked. The caller should then refuse the delivery (non-2xx) so
    /// Basiq retries it, rather than risk handling it twice.
    fn claim(&self, id: &str, now: OffsetDateTime) -> Result<Claim, StoreError>;
    /// Marks `id` handled.
    ///
    /// # Errors
    ///
    /// The store could not be asked.
    fn complete(&self, id: &str, now: OffsetDateTime) -> Result<(), StoreError>;
    /// Gives a claim up, so a retry of `id` is handled again.
    ///
    /// # Errors
    ///
    /// The store could not be asked (the claim then lapses after [`CLAIM_TTL`]).
    fn release(&self, id: &str) -> Result<(), StoreError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Claimed,
    Done,
}

/// A process-local [`SeenStore`]. Expired ids are dropped as new ones arrive, so it stays
/// bounded by the deliveries of the last [`SEEN_TTL`].
#[derive(Debug, Default)]
pub struct MemorySeenStore {
    ids: Mutex<HashMap<String, (State, OffsetDateTime)>>,
}

impl MemorySeenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many ids it holds (handled or claimed, not yet expired as of the last call).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (State, OffsetDateTime)>> {
        self.ids.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn after(now: OffsetDateTime, ttl: Duration) -> OffsetDateTime {
    now.saturating_add(time::Duration::try_from(ttl).unwrap_or(time::Duration::MAX))
}

impl SeenStore for MemorySeenStore {
    fn claim(&self, id: &str, now: OffsetDateTime) -> Result<Claim, StoreError> {
        let mut ids = self.lock();
        // Amortised pruning: only when the map has grown, so a claim is O(1) on average.
        if ids.len() >= 1024 && ids.len().is_power_of_two() {
            ids.retain(|_, (_, until)| *until > now);
        }
        match ids.get(id) {
            Some((State::Done, until)) if *until > now => Ok(Claim::Done),
            Some((State::Claimed, until)) if *until > now => Ok(Claim::InProgress),
            _ => {
                ids.insert(id.to_owned(), (State::Claimed, after(now, CLAIM_TTL)));
                Ok(Claim::First)
            }
        }
    }

    fn complete(&self, id: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        self.lock()
            .insert(id.to_owned(), (State::Done, after(now, SEEN_TTL)));
        Ok(())
    }

    fn release(&self, id: &str) -> Result<(), StoreError> {
        let mut ids = self.lock();
        if matches!(ids.get(id), Some((State::Claimed, _))) {
            ids.remove(id);
        }
        Ok(())
    }
}

const CLAIMED: &[u8] = b"claimed";
const DONE: &[u8] = b"done";

/// A [`SeenStore`] on a fleet's shared store: `SET NX` with [`CLAIM_TTL`] to claim, a plain
/// set with [`SEEN_TTL`] to complete, compare-and-delete to release. Keys are
/// `{prefix}:webhook:seen:{id}`.
#[derive(Debug, Clone)]
pub struct FleetSeenStore {
    store: Arc<dyn FleetStore>,
    keys: FleetKeys,
}

impl FleetSeenStore {
    /// Ids kept in `store` under `keys`' prefix.
    pub fn new(store: Arc<dyn FleetStore>, keys: FleetKeys) -> Self {
        Self { store, keys }
    }
}

impl SeenStore for FleetSeenStore {
    fn claim(&self, id: &str, _now: OffsetDateTime) -> Result<Claim, StoreError> {
        let key = self.keys.webhook_seen(id);
        let claimed = self
            .store
            .execute(&FleetOp::SetIfAbsent {
                key: key.clone(),
                value: CLAIMED.to_vec(),
                ttl: CLAIM_TTL,
            })?
            .applied()?;
        if claimed {
            return Ok(Claim::First);
        }
        match self.store.execute(&FleetOp::Get { key })?.into_value()? {
            Some(v) if v == DONE => Ok(Claim::Done),
            Some(_) => Ok(Claim::InProgress),
            // Expired between the two calls: the caller retries later (Basiq will).
            None => Ok(Claim::InProgress),
        }
    }

    fn complete(&self, id: &str, _now: OffsetDateTime) -> Result<(), StoreError> {
        self.store.execute(&FleetOp::Set {
            key: self.keys.webhook_seen(id),
            value: DONE.to_vec(),
            ttl: SEEN_TTL,
        })?;
        Ok(())
    }

    fn release(&self, id: &str) -> Result<(), StoreError> {
        self.store.execute(&FleetOp::DeleteIfEquals {
            key: self.keys.webhook_seen(id),
            value: CLAIMED.to_vec(),
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::fleet::MemoryFleetStore;
    use proptest::prelude::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-01-05 10:00 UTC);

    fn stores(clock: &ManualClock) -> Vec<Box<dyn SeenStore>> {
        let fleet = Arc::new(MemoryFleetStore::new(Arc::new(clock.clone())));
        let keys = FleetKeys::new("test").unwrap();
        vec![
            Box::new(MemorySeenStore::new()),
            Box::new(FleetSeenStore::new(fleet, keys)),
        ]
    }

    #[test]
    fn claim_complete_release_lifecycle() {
        let clock = ManualClock::new(T0);
        for store in stores(&clock) {
            let now = clock.now();
            assert_eq!(store.claim("m1", now).unwrap(), Claim::First);
            assert_eq!(store.claim("m1", now).unwrap(), Claim::InProgress);
            store.release("m1").unwrap();
            assert_eq!(store.claim("m1", now).unwrap(), Claim::First, "{store:?}");
            store.complete("m1", now).unwrap();
            assert_eq!(store.claim("m1", now).unwrap(), Claim::Done);
            // Releasing a handled id does not forget it.
            store.release("m1").unwrap();
            assert_eq!(store.claim("m1", now).unwrap(), Claim::Done);
            assert_eq!(store.claim("m2", now).unwrap(), Claim::First);
        }
    }

    #[test]
    fn an_abandoned_claim_lapses_and_handled_ids_outlive_basiqs_retries() {
        let clock = ManualClock::new(T0);
        for store in stores(&clock) {
            assert_eq!(store.claim("m1", clock.now()).unwrap(), Claim::First);
            store.complete("m1", clock.now()).unwrap();
            assert_eq!(store.claim("m2", clock.now()).unwrap(), Claim::First);
            clock.advance(CLAIM_TTL + Duration::from_secs(1));
            assert_eq!(store.claim("m2", clock.now()).unwrap(), Claim::First);
            // Basiq's schedule: 5 s + 5 min + 30 min + 2 h + 5 h + 10 h + 10 h.
            clock.advance(Duration::from_secs(5 + 300 + 1800 + 7200 + 18_000 + 72_000));
            assert_eq!(store.claim("m1", clock.now()).unwrap(), Claim::Done);
            clock.advance(SEEN_TTL);
            assert_eq!(store.claim("m1", clock.now()).unwrap(), Claim::First);
        }
    }

    proptest! {
        /// Whatever the interleaving of deliveries, failures and completions, an id is handled
        /// (claimed `First` and then completed) at most once, and an id whose handling failed
        /// is handed out again.
        #[test]
        fn each_id_is_handled_once(ops in proptest::collection::vec((0u8..4, any::<bool>()), 1..60)) {
            let store = MemorySeenStore::new();
            let mut handled = std::collections::HashMap::<u8, u32>::new();
            for (id, succeeds) in ops {
                let key = format!("m{id}");
                match store.claim(&key, T0).unwrap() {
                    Claim::First if succeeds => {
                        store.complete(&key, T0).unwrap();
                        *handled.entry(id).or_default() += 1;
                    }
                    Claim::First => store.release(&key).unwrap(),
                    Claim::Done => prop_assert!(handled.get(&id).copied().unwrap_or(0) == 1),
                    Claim::InProgress => prop_assert!(false, "nothing is left claimed"),
                }
            }
            prop_assert!(handled.values().all(|n| *n == 1));
        }
    }
}
