//! The freshness ledger: when Basiq itself last refreshed each connection, as its webhooks said.
//!
//! Basiq's guide: let the smart cache (Basiq's daily background refresh) keep data fresh, and
//! refresh by hand only after confirming Basiq has not recently refreshed. Basiq announces each
//! refresh with `transactions.updated` / `account.updated` events naming the connection; a
//! webhook receiver records them here ([`FreshnessLedger::record`], fed by
//! [`WebhookEvent::refreshed_connection`](crate::webhooks::WebhookEvent::refreshed_connection)),
//! and the guarded refresh asks [`RefreshPolicy::refreshed_by_basiq`](crate::refresh::RefreshPolicy::refreshed_by_basiq)
//! *before* reading the connection, so a connection the smart cache keeps fresh costs no request
//! at all: `Skipped(RefreshedByBasiq { at, next_allowed })`.
//!
//! [`MemoryFreshnessLedger`] is process-local; [`FleetFreshnessLedger`] shares it through any
//! [`FleetStore`] (Redis: `basiq_redis::RedisFleet::freshness_ledger`), so the instance that
//! received the webhook and the one asked to refresh agree.
//!
//! ```
//! use basiq_core::freshness::{FreshnessLedger, MemoryFreshnessLedger};
//! use basiq_core::id::ConnectionId;
//! use basiq_core::refresh::{RefreshPolicy, SkipReason};
//! use time::macros::datetime;
//!
//! let ledger = MemoryFreshnessLedger::new();
//! let conn = ConnectionId::new("c1")?;
//! ledger.record(&conn, datetime!(2026-01-05 03:10 UTC))?;
//! let policy = RefreshPolicy::default(); // at most once per 24 h
//! let skip = policy.refreshed_by_basiq(ledger.last_refreshed(&conn)?, datetime!(2026-01-05 12:00 UTC));
//! assert!(matches!(skip, Some(SkipReason::RefreshedByBasiq { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;

use crate::fleet::{FleetKeys, FleetOp, FleetStore};
use crate::id::ConnectionId;
use crate::token::StoreError;

/// How long a shared ledger keeps an entry: longer than any sensible `min_interval`, short
/// enough that deleted connections do not pile up.
pub const FRESHNESS_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// When Basiq last refreshed each connection. Synchronous (memory or a sub-millisecond store);
/// the guarded refresh treats an error as "unknown" and falls back to its own checks.
pub trait FreshnessLedger: Send + Sync + fmt::Debug {
    /// Basiq refreshed `connection` at `at`. An older time than the one recorded is ignored.
    ///
    /// # Errors
    ///
    /// The store could not be asked.
    fn record(&self, connection: &ConnectionId, at: OffsetDateTime) -> Result<(), StoreError>;
    /// When Basiq last refreshed `connection`, if known.
    ///
    /// # Errors
    ///
    /// The store could not be asked.
    fn last_refreshed(
        &self,
        connection: &ConnectionId,
    ) -> Result<Option<OffsetDateTime>, StoreError>;
}

/// A process-local [`FreshnessLedger`]: one time per connection.
#[derive(Debug, Default)]
pub struct MemoryFreshnessLedger {
    times: Mutex<HashMap<ConnectionId, OffsetDateTime>>,
}

impl MemoryFreshnessLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets connections last refreshed before `before` (a long-running process calls it
    /// now and then; entries older than the refresh policy's interval decide nothing).
    pub fn prune_before(&self, before: OffsetDateTime) {
        self.lock().retain(|_, at| *at >= before);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ConnectionId, OffsetDateTime>> {
        self.times.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl FreshnessLedger for MemoryFreshnessLedger {
    fn record(&self, connection: &ConnectionId, at: OffsetDateTime) -> Result<(), StoreError> {
        let mut times = self.lock();
        let entry = times.entry(connection.clone()).or_insert(at);
        *entry = (*entry).max(at);
        Ok(())
    }

    fn last_refreshed(
        &self,
        connection: &ConnectionId,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(self.lock().get(connection).copied())
    }
}

/// A [`FreshnessLedger`] on a fleet's shared store: `{prefix}:fresh:{connectionId}` holds the
/// Unix seconds of the latest refresh, for [`FRESHNESS_TTL`]. Read-then-write keeps the later
/// time; two racing writers can at worst keep the earlier of two close times, which only makes
/// the guard allow a refresh a little sooner — never skip one it should not.
#[derive(Debug, Clone)]
pub struct FleetFreshnessLedger {
    store: Arc<dyn FleetStore>,
    keys: FleetKeys,
}

impl FleetFreshnessLedger {
    /// A ledger in `store` under `keys`' prefix.
    pub fn new(store: Arc<dyn FleetStore>, keys: FleetKeys) -> Self {
        Self { store, keys }
    }
}

fn decode(bytes: &[u8]) -> Option<OffsetDateTime> {
    let secs: i64 = std::str::from_utf8(bytes).ok()?.parse().ok()?;
    OffsetDateTime::from_unix_timestamp(secs).ok()
}

impl FreshnessLedger for FleetFreshnessLedger {
    fn record(&self, connection: &ConnectionId, at: OffsetDateTime) -> Result<(), StoreError> {
        if self
            .last_refreshed(connection)?
            .is_some_and(|known| known >= at)
        {
            return Ok(());
        }
        self.store.execute(&FleetOp::Set {
            key: self.keys.freshness(connection),
            value: at.unix_timestamp().to_string().into_bytes(),
            ttl: FRESHNESS_TTL,
        })?;
        Ok(())
    }

    fn last_refreshed(
        &self,
        connection: &ConnectionId,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        let value = self
            .store
            .execute(&FleetOp::Get {
                key: self.keys.freshness(connection),
            })?
            .into_value()?;
        Ok(value.as_deref().and_then(decode))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::fleet::MemoryFleetStore;
    use crate::refresh::{RefreshPolicy, SkipReason};
    use proptest::prelude::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-01-05 10:00 UTC);

    fn ledgers() -> Vec<Box<dyn FreshnessLedger>> {
        let clock = ManualClock::new(T0);
        let fleet = Arc::new(MemoryFleetStore::new(Arc::new(clock)));
        vec![
            Box::new(MemoryFreshnessLedger::new()),
            Box::new(FleetFreshnessLedger::new(
                fleet,
                FleetKeys::new("test").unwrap(),
            )),
        ]
    }

    #[test]
    fn keeps_the_latest_time_per_connection() {
        let c1 = ConnectionId::new("c1").unwrap();
        let c2 = ConnectionId::new("c2").unwrap();
        for ledger in ledgers() {
            assert_eq!(ledger.last_refreshed(&c1).unwrap(), None);
            ledger.record(&c1, T0).unwrap();
            ledger.record(&c1, T0 - time::Duration::hours(3)).unwrap();
            assert_eq!(ledger.last_refreshed(&c1).unwrap(), Some(T0), "{ledger:?}");
            ledger.record(&c1, T0 + time::Duration::hours(1)).unwrap();
            assert_eq!(
                ledger.last_refreshed(&c1).unwrap(),
                Some(T0 + time::Duration::hours(1))
            );
            assert_eq!(ledger.last_refreshed(&c2).unwrap(), None);
        }
    }

    proptest! {
        /// The guard skips exactly while the last Basiq refresh is younger than the policy's
        /// interval, and reports the time it relied on.
        #[test]
        fn skips_only_within_the_interval(ago_s in -600i64..200_000, interval_h in 1u64..48) {
            let policy = RefreshPolicy::default()
                .with_min_interval(Duration::from_secs(interval_h * 3600));
            let at = T0 - time::Duration::seconds(ago_s);
            let skip = policy.refreshed_by_basiq(Some(at), T0);
            let within = ago_s < i64::try_from(interval_h * 3600).unwrap();
            prop_assert_eq!(skip.is_some(), within);
            if let Some(SkipReason::RefreshedByBasiq { at: seen, next_allowed }) = skip {
                prop_assert!(seen <= T0, "a time in the future counts as now");
                prop_assert!(next_allowed > T0);
            }
            prop_assert_eq!(policy.refreshed_by_basiq(None, T0), None);
        }
    }
}
