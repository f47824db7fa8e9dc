//! Refreshing connections: when it is allowed, and how to spread many refreshes out.
//!
//! Basiq's best-practice guide (basiq-api.md §8): refresh *rarely* — banks lock users out or block Basiq
//! when refreshed too often —, only *active* connections, check `lastUsed` and the jobs before an
//! ad-hoc refresh, never bulk-refresh everything at once, at most **20 refreshes per day** for an
//! open-banking connection, and prefer Basiq's daily background refresh ("smart cache").
//! A refresh while a job runs gets **200 with the existing job**: follow it, do not start another.
//!
//! * [`RefreshPolicy::decide`] says `Allowed` or why to skip;
//! * [`RefreshLedger`] counts refreshes per connection per UTC day ([`MemoryLedger`] in memory);
//! * [`RefreshScheduler`] spreads N refreshes over a window under a per-minute cap: never a burst;
//! * [`RefreshResponse`] tells a new job (202) from the running one Basiq handed back (200).
//!
//! ```
//! use basiq_core::policy::refresh::{ConnectionView, MemoryLedger, RefreshDecision, RefreshPolicy, SkipReason};
//!
//! let conn: ConnectionView = serde_json::from_str(
//!     r#"{"id": "aaaf2c3b", "status": "active", "method": "open-banking",
//!         "lastUsed": "2026-01-06T03:15:02Z"}"#,
//! )?;
//! let policy = RefreshPolicy::default(); // at most once per 24 h, 20/day for open banking
//! let mut ledger = MemoryLedger::new();
//! let now = time::macros::datetime!(2026-01-06 12:00 UTC);
//! assert!(matches!(
//!     policy.decide_and_record(&conn, &[], &mut ledger, now),
//!     RefreshDecision::Skip(SkipReason::RecentlyRefreshed { .. })
//! ));
//! let tomorrow = time::macros::datetime!(2026-01-07 04:00 UTC);
//! assert_eq!(policy.decide_and_record(&conn, &[], &mut ledger, tomorrow), RefreshDecision::Allowed);
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime, UtcOffset};

use crate::api::models::{self, Job};
use crate::engine::operation;
use crate::engine::transport::HttpResponse;
use crate::error::Error;
use crate::id::{ConnectionId, JobId};
pub use crate::policy::connectors::ConnectionMethod;
use crate::policy::jobs::{classify, FailureClass, JobKind, JobState, TRANSIENT_RETRY_AFTER};
use crate::time_util;

pub use crate::vocabulary::ConnectionStatus;

/// What the refresh policy needs to know about a connection.
///
/// Kept separate from the generated [`models::Connection`] so the policy depends on four fields
/// only: get it with `ConnectionView::from(&connection)`, or deserialize it straight from Basiq's
/// connection JSON (the other fields are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionView {
    /// The connection.
    pub id: ConnectionId,
    /// Its status.
    pub status: ConnectionStatus,
    /// Web, open banking (`open-banking` or `openbanking`), csv or pdf. A connection that does
    /// not say reads as `Other("")`: unknown methods are refreshable and count against the
    /// open-banking daily quota ([`ConnectionMethod::has_daily_refresh_quota`]).
    #[serde(default = "unstated_method")]
    pub method: ConnectionMethod,
    /// When Basiq last used (refreshed) it; SERVER scope only.
    #[serde(
        default,
        deserialize_with = "crate::serde_util::timestamp_or_empty",
        serialize_with = "crate::serde_util::serialize_timestamp"
    )]
    pub last_used: Option<OffsetDateTime>,
    /// When the connection was created: the job that created it is not a refresh, so it does
    /// not count against the daily refresh quota.
    #[serde(
        default,
        deserialize_with = "crate::serde_util::timestamp_or_empty",
        serialize_with = "crate::serde_util::serialize_timestamp"
    )]
    pub created_date: Option<OffsetDateTime>,
}

impl From<&models::Connection> for ConnectionView {
    fn from(connection: &models::Connection) -> Self {
        Self {
            id: connection.id.clone(),
            status: connection.status.clone(),
            method: connection.method.clone().unwrap_or_else(unstated_method),
            last_used: connection.last_used,
            created_date: connection.created_date,
        }
    }
}

/// The method of a connection that does not state one.
fn unstated_method() -> ConnectionMethod {
    ConnectionMethod::Other(String::new())
}

/// How close to a connection's `createdDate` the job that created it starts (Basiq creates the
/// connection while that job verifies the credentials).
const CONNECT_JOB_SLACK: time::Duration = time::Duration::minutes(1);

/// Why a refresh should not be sent now.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub enum SkipReason {
    /// Only `active` connections may be refreshed; an `invalid` web connection needs the user to
    /// re-enter credentials first.
    Inactive(ConnectionStatus),
    /// Uploaded statements (csv, pdf) cannot be refreshed.
    NotRefreshable(ConnectionMethod),
    /// A job for this connection is running: follow it (Basiq would answer 200 with it anyway).
    InProgress(JobId),
    /// The connection's latest job failed and nothing has fixed it since. Refreshing again with
    /// bad credentials risks locking the user's bank account, and a transient failure should be
    /// retried after Basiq's 10 minutes, not immediately.
    LastAttemptFailed {
        /// The failed job.
        job_id: JobId,
        /// Its classification (as a refresh).
        class: FailureClass,
        /// When a refresh may be tried again; `None` until someone acts (the user re-enters
        /// credentials, support fixes it), which also makes the connection `active` again.
        retry_at: Option<OffsetDateTime>,
    },
    /// Refreshed recently; Basiq asks to refresh rarely.
    RecentlyRefreshed {
        /// The last refresh (max of `lastUsed` and the latest successful job).
        last: OffsetDateTime,
        /// The earliest time the policy allows the next one.
        next_allowed: OffsetDateTime,
    },
    /// The open-banking limit of refreshes per day is used up.
    DailyQuotaExhausted {
        /// When the day (UTC) ends.
        resets_at: OffsetDateTime,
    },
    /// Basiq itself refreshed the connection recently (its smart cache, or a refresh it
    /// announced by webhook), as the client's [`FreshnessLedger`](crate::policy::freshness::FreshnessLedger)
    /// recorded: nothing to do, and nothing was even read from Basiq to decide it.
    RefreshedByBasiq {
        /// When Basiq refreshed it (a time in the future is taken as now).
        at: OffsetDateTime,
        /// The earliest time the policy allows a refresh by hand.
        next_allowed: OffsetDateTime,
    },
    /// Another instance of this app (fleet mode) is refreshing the connection, or holds its
    /// planned slot, and Basiq has not shown a job for it yet: follow the user's jobs instead of
    /// sending a duplicate that Basiq would pause for 6 minutes.
    InProgressElsewhere {
        /// When the other instance's claim lapses at the latest.
        until: Option<OffsetDateTime>,
    },
}

/// The policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum RefreshDecision {
    /// Send the refresh (and [`RefreshLedger::record`] it).
    Allowed,
    /// Do not send it.
    Skip(SkipReason),
}

/// Counts refreshes per connection per UTC day. Implement it over a shared store when several
/// processes refresh the same connections, so the daily limit holds fleet-wide.
pub trait RefreshLedger {
    /// Refreshes recorded for `connection` on the UTC `day`.
    fn count(&self, connection: &ConnectionId, day: Date) -> u32;
    /// Records a refresh sent at `at`. Record it when it is *sent*: a request that may have
    /// reached Basiq counts, whatever its answer.
    fn record(&mut self, connection: &ConnectionId, at: OffsetDateTime);
}

/// An in-memory [`RefreshLedger`].
#[derive(Debug, Clone, Default)]
pub struct MemoryLedger {
    counts: HashMap<(ConnectionId, Date), u32>,
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets days before `day`, so the ledger stays small in a long-running process.
    pub fn prune_before(&mut self, day: Date) {
        self.counts.retain(|(_, d), _| *d >= day);
    }
}

impl RefreshLedger for MemoryLedger {
    fn count(&self, connection: &ConnectionId, day: Date) -> u32 {
        self.counts
            .get(&(connection.clone(), day))
            .copied()
            .unwrap_or(0)
    }

    fn record(&mut self, connection: &ConnectionId, at: OffsetDateTime) {
        let day = utc_day(at);
        let n = self.counts.entry((connection.clone(), day)).or_insert(0);
        *n = n.saturating_add(1);
    }
}

fn utc_day(t: OffsetDateTime) -> Date {
    t.to_offset(UtcOffset::UTC).date()
}

/// When a connection may be refreshed.
///
/// Fields may be added: start from [`RefreshPolicy::default`] and use the `with_` setters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct RefreshPolicy {
    /// The minimum time between two refreshes of one connection.
    pub min_interval: Duration,
    /// Refreshes per UTC day for an open-banking connection (Basiq: 20).
    pub open_banking_daily_limit: u32,
}

impl Default for RefreshPolicy {
    /// `min_interval` = 24 h, `open_banking_daily_limit` = 20.
    ///
    /// Why 24 h: Basiq asks to refresh rarely and recommends its daily background refresh (smart
    /// cache) over cron-style refreshes; banks post transactions about daily, so a second refresh
    /// within a day rarely brings data, while each one raises the lock-out risk. The 20/day
    /// open-banking limit is a hard ceiling, not a target. Apps that truly need fresher data
    /// (e.g. a user-initiated "refresh now") can lower it with [`RefreshPolicy::with_min_interval`].
    fn default() -> Self {
        Self {
            min_interval: Duration::from_secs(24 * 60 * 60),
            open_banking_daily_limit: 20,
        }
    }
}

impl RefreshPolicy {
    /// The default policy with another minimum interval.
    pub fn with_min_interval(mut self, min_interval: Duration) -> Self {
        self.min_interval = min_interval;
        self
    }

    /// Another open-banking daily limit (Basiq's is 20: a lower one leaves headroom for
    /// refreshes made elsewhere; a higher one only gets Basiq's refusals).
    pub fn with_open_banking_daily_limit(mut self, limit: u32) -> Self {
        self.open_banking_daily_limit = limit;
        self
    }

    /// The last refresh of `conn`: the later of `lastUsed` and the latest successful job.
    pub fn last_refresh(conn: &ConnectionView, recent_jobs: &[Job]) -> Option<OffsetDateTime> {
        let last_job = recent_jobs
            .iter()
            .filter(|j| j.connection_id().as_ref() == Some(&conn.id))
            .filter(|j| j.state() == JobState::Succeeded)
            .filter_map(Job::last_change)
            .max();
        conn.last_used.max(last_job)
    }

    /// Whether `conn` may be refreshed at `now`. Checks, in order: active, refreshable method,
    /// no job running for it, its latest job did not fail in a way that still blocks (see
    /// [`SkipReason::LastAttemptFailed`]), `min_interval` since the last refresh, and for open banking the
    /// daily limit (the larger of the ledger's count and today's jobs for the connection, so
    /// refreshes made by another process still count).
    pub fn decide(
        &self,
        conn: &ConnectionView,
        recent_jobs: &[Job],
        ledger: &dyn RefreshLedger,
        now: OffsetDateTime,
    ) -> RefreshDecision {
        use RefreshDecision::Skip;
        if conn.status != ConnectionStatus::Active {
            return Skip(SkipReason::Inactive(conn.status.clone()));
        }
        if !conn.method.is_refreshable() {
            return Skip(SkipReason::NotRefreshable(conn.method.clone()));
        }
        let mine: Vec<&Job> = recent_jobs
            .iter()
            .filter(|j| j.connection_id().as_ref() == Some(&conn.id))
            .collect();
        if let Some(running) = mine
            .iter()
            .filter(|j| !j.state().is_done())
            .max_by_key(|j| j.created)
        {
            return Skip(SkipReason::InProgress(running.id.clone()));
        }
        if let Some(skip) = Self::last_attempt_failed(&mine, now) {
            return Skip(skip);
        }
        if let Some(last) = Self::last_refresh(conn, recent_jobs) {
            let next_allowed = time_util::add(last, self.min_interval);
            if now < next_allowed {
                return Skip(SkipReason::RecentlyRefreshed { last, next_allowed });
            }
        }
        if conn.method.has_daily_refresh_quota() {
            let today = utc_day(now);
            // Today's refresh jobs: the job that created the connection is not one (Basiq
            // allows 20 refreshes a day, whatever else happened to the connection).
            let connect_job_until = conn.created_date.map(|c| c + CONNECT_JOB_SLACK);
            let jobs_today = mine
                .iter()
                .filter(|j| j.created.map(utc_day) == Some(today))
                .filter(|j| match (j.created, connect_job_until) {
                    (Some(created), Some(until)) => created > until,
                    _ => true,
                })
                .count();
            let used = ledger
                .count(&conn.id, today)
                .max(u32::try_from(jobs_today).unwrap_or(u32::MAX));
            if used >= self.open_banking_daily_limit {
                return Skip(SkipReason::DailyQuotaExhausted {
                    resets_at: time_util::next_utc_midnight(now),
                });
            }
        }
        RefreshDecision::Allowed
    }

    /// `LastAttemptFailed` when the latest finished job of the connection failed and its failure
    /// still blocks at `now`: user action, permanent and file problems until something changes;
    /// retryable and unknown failures for their retry delay (at least Basiq's 10 minutes).
    fn last_attempt_failed(jobs: &[&Job], now: OffsetDateTime) -> Option<SkipReason> {
        let latest = jobs
            .iter()
            .filter(|j| j.state().is_done())
            .max_by_key(|j| (j.last_change(), j.state() == JobState::Succeeded))?;
        let JobState::Failed { step, failure } = latest.state() else {
            return None;
        };
        let class = classify(&step, &failure.code, JobKind::Refresh);
        let wait = match &class {
            FailureClass::UserActionRequired(_)
            | FailureClass::Permanent
            | FailureClass::FileProblem => None,
            FailureClass::Transient { retry_after } => {
                Some((*retry_after).max(TRANSIENT_RETRY_AFTER))
            }
            FailureClass::ServerManagedRetry { every, .. } => Some(*every),
            FailureClass::InstitutionOutage | FailureClass::Unknown => Some(TRANSIENT_RETRY_AFTER),
        };
        let retry_at = match (wait, latest.last_change()) {
            (None, _) => None,
            (Some(wait), Some(failed_at)) => {
                let at = time_util::add(failed_at, wait);
                if now >= at {
                    return None;
                }
                Some(at)
            }
            // A failure without a time cannot be aged: do not block on it.
            (Some(_), None) => return None,
        };
        Some(SkipReason::LastAttemptFailed {
            job_id: latest.id.clone(),
            class,
            retry_at,
        })
    }

    /// The freshness check that runs before anything is read: `Some(RefreshedByBasiq)` when
    /// Basiq refreshed the connection (`last_by_basiq`, from the
    /// [`FreshnessLedger`](crate::policy::freshness::FreshnessLedger)) less than `min_interval` before
    /// `now`. A refresh "in the future" (clock skew between Basiq and the app) counts as now.
    pub fn refreshed_by_basiq(
        &self,
        last_by_basiq: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Option<SkipReason> {
        let at = last_by_basiq?.min(now);
        let next_allowed = time_util::add(at, self.min_interval);
        (now < next_allowed).then_some(SkipReason::RefreshedByBasiq { at, next_allowed })
    }

    /// [`decide`](Self::decide), and when allowed, records the refresh in `ledger` at `now`.
    pub fn decide_and_record(
        &self,
        conn: &ConnectionView,
        recent_jobs: &[Job],
        ledger: &mut dyn RefreshLedger,
        now: OffsetDateTime,
    ) -> RefreshDecision {
        let decision = self.decide(conn, recent_jobs, &*ledger, now);
        if decision == RefreshDecision::Allowed {
            ledger.record(&conn.id, now);
        }
        decision
    }
}

// ---------------------------------------------------------------------------------------------
// Scheduling
// ---------------------------------------------------------------------------------------------

/// Spreads refreshes over a window so they never arrive as a burst (Basiq: no bulk refreshes).
///
/// Each connection gets a *stable* preferred slot from an FNV-1a hash of its id (the same
/// connection lands at the same time of the window every run, so its refresh interval stays
/// regular), slots sit on a grid `60 s / max_per_minute` apart so that **any** 60-second span
/// holds at most `max_per_minute` refreshes, and a collision moves to the next free slot. The
/// injected `jitter` shifts the whole grid by a fraction of one slot: per-refresh jitter would
/// let two neighbours drift into the same minute and break the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshScheduler {
    /// How long the refreshes may be spread over.
    pub window: Duration,
    /// The most refreshes sent in any 60 seconds.
    pub max_per_minute: u32,
}

/// One planned refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledRefresh {
    /// The connection.
    pub connection_id: ConnectionId,
    /// When to send the refresh.
    pub at: OffsetDateTime,
}

/// A plan: refreshes in time order, and the candidates that did not fit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshSchedule {
    /// Planned refreshes, sorted by time.
    pub planned: Vec<ScheduledRefresh>,
    /// Candidates beyond the window's capacity at the cap (the last ones given), to plan later.
    pub overflow: Vec<ConnectionId>,
}

/// FNV-1a, 64 bit: a tiny, stable hash (unlike `DefaultHasher`, it never changes between Rust
/// versions, so slots stay put across deployments).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl RefreshScheduler {
    /// A scheduler for `window` at no more than `max_per_minute`.
    pub fn new(window: Duration, max_per_minute: u32) -> Self {
        Self {
            window,
            max_per_minute,
        }
    }

    /// The grid step: `ceil(60 s / max_per_minute)` in nanoseconds (rounded up, so `cap` steps
    /// always span at least a minute).
    fn spacing_ns(&self) -> Option<u64> {
        (self.max_per_minute > 0)
            .then(|| 60_000_000_000_u64.div_ceil(u64::from(self.max_per_minute)))
    }

    /// How many refreshes the window holds at the cap.
    pub fn capacity(&self) -> u64 {
        let Some(spacing) = self.spacing_ns() else {
            return 0;
        };
        let window = u64::try_from(self.window.as_nanos()).unwrap_or(u64::MAX);
        window / spacing
    }

    /// Plans refreshes for `candidates` (in priority order; duplicates are planned once) in
    /// `[start, start + window)`. `jitter` in `[0, 1]` shifts the grid by that fraction of a slot.
    ///
    /// Clones each planned (and overflowing) id out of the slice; a caller that owns its list
    /// can hand it over with [`schedule_owned`](Self::schedule_owned), which moves them instead.
    pub fn schedule(
        &self,
        start: OffsetDateTime,
        candidates: &[ConnectionId],
        jitter: f64,
    ) -> RefreshSchedule {
        let at = self.slot_clock(start, jitter);
        let (planned, overflow) = self.place(candidates, ConnectionId::as_str).arrange(
            candidates,
            ConnectionId::clone,
            |connection_id, slot| ScheduledRefresh {
                connection_id,
                at: at(slot),
            },
        );
        RefreshSchedule { planned, overflow }
    }

    /// [`schedule`](Self::schedule) for an owned list: the same plan, with every id moved into
    /// it rather than cloned (no reference count touched).
    pub fn schedule_owned(
        &self,
        start: OffsetDateTime,
        candidates: Vec<ConnectionId>,
        jitter: f64,
    ) -> RefreshSchedule {
        let at = self.slot_clock(start, jitter);
        let placed = self.place(&candidates, ConnectionId::as_str);
        let (planned, overflow) = placed.arrange(
            candidates,
            |id| id,
            |connection_id, slot| ScheduledRefresh {
                connection_id,
                at: at(slot),
            },
        );
        RefreshSchedule { planned, overflow }
    }

    /// The grid itself, for any kind of id (refreshes here, the daily triage in
    /// [`crate::policy::plan`]): each distinct candidate at a stable slot, sorted by time, and the
    /// candidates beyond the window's capacity.
    pub(crate) fn spread<K: Clone + Eq + std::hash::Hash>(
        &self,
        start: OffsetDateTime,
        candidates: &[K],
        key: impl Fn(&K) -> &str,
        jitter: f64,
    ) -> (Vec<(K, OffsetDateTime)>, Vec<K>) {
        let at = self.slot_clock(start, jitter);
        self.place(candidates, &key)
            .arrange(candidates, K::clone, |id, slot| (id, at(slot)))
    }

    /// The time of each grid slot, from `start` and the grid's shift by `jitter`.
    fn slot_clock(&self, start: OffsetDateTime, jitter: f64) -> impl Fn(u64) -> OffsetDateTime {
        let (spacing, phase) = (self.spacing_ns().unwrap_or(0), self.phase_ns(jitter));
        move |slot| slot_time(start, slot, spacing, phase)
    }

    /// Where the candidates go: each distinct one at its slot (FNV-1a of the id, then the next
    /// free one), in slot (so time) order; and those past the capacity, in input order. Slots
    /// are distinct, so their times are too.
    fn place<K: Eq + std::hash::Hash>(&self, candidates: &[K], key: impl Fn(&K) -> &str) -> Placed {
        let capacity = self.capacity();
        let dense_limit = (candidates.len() as u64)
            .saturating_mul(4)
            .saturating_add(4096);
        match (u32::try_from(capacity), u32::try_from(candidates.len())) {
            (Ok(cap), Ok(_)) if cap > 0 && capacity <= dense_limit && cap < u32::MAX => {
                place_dense(cap, candidates, key)
            }
            _ => place_sparse(capacity, candidates, key),
        }
    }

    /// The grid's shift: `jitter` of one slot, in nanoseconds.
    fn phase_ns(&self, jitter: f64) -> u64 {
        let spacing = self.spacing_ns().unwrap_or(0);
        if spacing == 0 {
            return 0;
        }
        // Truncation is intended: a fraction of one slot.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let p = (time_util::unit(jitter) * spacing as f64) as u64;
        p.min(spacing - 1)
    }

    /// The shortest time between two sends on this grid (`ceil(60 s / max_per_minute)`);
    /// `None` when `max_per_minute` is 0. A [`Pacer`](crate::policy::plan::Pacer) keeps real sends at
    /// least this far apart, so a late send cannot bunch up with the next ones.
    pub fn spacing(&self) -> Option<Duration> {
        self.spacing_ns().map(Duration::from_nanos)
    }
}

/// The time of grid slot `slot`.
fn slot_time(start: OffsetDateTime, slot: u64, spacing: u64, phase: u64) -> OffsetDateTime {
    let offset = slot.saturating_mul(spacing).saturating_add(phase);
    time_util::add(start, Duration::from_nanos(offset))
}

/// The outcome of [`RefreshScheduler::place`], as indices into the candidates.
#[derive(Debug)]
struct Placed {
    /// The planned candidates and their slots.
    planned: PlannedSlots,
    /// Candidates past the capacity, in input order.
    overflow: Vec<u32>,
}

/// The planned candidates and their slots, by slot.
#[derive(Debug)]
enum PlannedSlots {
    /// From the dense grid's sweep: `slot << 32 | candidate`, by slot from `entries[first]` on,
    /// wrapping around the end (the sweep writes its places over the entries it has read).
    Dense { entries: Vec<u64>, first: usize },
    /// From the sparse grid, whose slots may not fit 32 bits: `(slot, candidate)`.
    Sparse(Vec<(u64, u32)>),
}

impl Placed {
    /// The plan and the overflow, built from the candidates (see [`arrange`]).
    fn arrange<I: IntoIterator, K, T>(
        &self,
        candidates: I,
        take: impl Fn(I::Item) -> K,
        entry: impl Fn(K, u64) -> T,
    ) -> (Vec<T>, Vec<K>) {
        match &self.planned {
            PlannedSlots::Dense { entries, first } => {
                let (wrapped, from_first) = entries.split_at(*first);
                let by_slot = from_first
                    .iter()
                    .chain(wrapped)
                    .map(|&e| (e >> 32, (e & u64::from(u32::MAX)) as u32));
                arrange(
                    by_slot,
                    entries.len(),
                    &self.overflow,
                    candidates,
                    take,
                    entry,
                )
            }
            PlannedSlots::Sparse(planned) => arrange(
                planned.iter().copied(),
                planned.len(),
                &self.overflow,
                candidates,
                take,
                entry,
            ),
        }
    }
}

/// Ranks in [`arrange`] of the candidates it leaves out (duplicates) and of those overflowing.
const LEFT_OUT: u32 = u32::MAX;
const OVERFLOWING: u32 = u32::MAX - 1;

/// Plan entries moved at once in [`arrange`]: 4096 ids and their places stay in the L2 cache.
const BATCH_BITS: u32 = 12;
const PLACE_MASK: u32 = (1 << BATCH_BITS) - 1;

/// The ids bound for one batch of plan places, in list order, and each one's place in the
/// batch. Two vectors rather than one of pairs: 18 bytes an id instead of 24 (the place would be
/// padded to the id's alignment), which keeps a million-id plan's buffers small enough for the
/// allocator to reuse them from one call to the next (see docs/performance.md).
struct Batch<K> {
    ids: Vec<K>,
    places: Vec<u16>,
}

impl<K> Batch<K> {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            ids: Vec::with_capacity(capacity),
            places: Vec::with_capacity(capacity),
        }
    }
}

/// Moves the candidates (taken with `take`, in list order) into the plan's time order
/// (`by_slot`: `planned` pairs of slot and candidate index; `entry` builds a planned entry from
/// an id and its slot) and the `overflowing` ones into the overflow, in list order.
///
/// Putting a million ids in slot order one by one would read or write a random place each (a
/// cache and TLB miss every time). Instead the list is read in order once, each id appended to
/// the batch of 4096 plan places it falls in (a few hundred sequential streams), and each batch
/// is then put in order within the cache.
fn arrange<I: IntoIterator, K, T>(
    by_slot: impl Iterator<Item = (u64, u32)> + Clone,
    planned: usize,
    overflowing: &[u32],
    candidates: I,
    take: impl Fn(I::Item) -> K,
    entry: impl Fn(K, u64) -> T,
) -> (Vec<T>, Vec<K>) {
    let candidates = candidates.into_iter();
    let mut rank = vec![LEFT_OUT; candidates.size_hint().0];
    for (r, (_, i)) in (0u32..).zip(by_slot.clone()) {
        rank[i as usize] = r;
    }
    for &i in overflowing {
        rank[i as usize] = OVERFLOWING;
    }
    let batch = 1usize << BATCH_BITS;
    let mut batches: Vec<Batch<K>> = (0..planned.div_ceil(batch))
        .map(|b| Batch::with_capacity(batch.min(planned - b * batch)))
        .collect();
    let mut overflow = Vec::with_capacity(overflowing.len());
    for (candidate, &r) in candidates.zip(&rank) {
        match r {
            LEFT_OUT => {}
            OVERFLOWING => overflow.push(take(candidate)),
            r => {
                let batch = &mut batches[(r >> BATCH_BITS) as usize];
                batch.ids.push(take(candidate));
                // Below 2^12.
                batch.places.push((r & PLACE_MASK) as u16);
            }
        }
    }
    drop(rank);
    let mut plan = Vec::with_capacity(planned);
    let mut in_order: Vec<Option<K>> = std::iter::repeat_with(|| None)
        .take(batch.min(planned))
        .collect();
    let mut slots = by_slot;
    for Batch { ids, places } in batches {
        for (id, place) in ids.into_iter().zip(places) {
            in_order[usize::from(place)] = Some(id);
        }
        // `zip` asks `in_order` first: `slots` advances by at most one batch.
        for (id, (slot, _)) in in_order.iter_mut().zip(slots.by_ref()) {
            if let Some(id) = id.take() {
                plan.push(entry(id, slot));
            }
        }
    }
    (plan, overflow)
}

/// How a candidate on its way to a slot of the dense grid is packed into one `u64`, from the
/// high bits down: its preferred slot (FNV-1a of the id, modulo the capacity), its index in the
/// list, and as many of the hash's high bits as are left (a tag: equal ids have equal hashes, so
/// a differing tag tells two ids apart without reading them). Keys order as their slots, then
/// as the list; 8 bytes a candidate, so sorting them moves little memory.
#[derive(Debug, Clone, Copy)]
struct KeyLayout {
    /// Bits of the slot (0 for a window of one slot).
    slot_bits: u32,
    /// Where the slot starts: above the index and the tag.
    slot_shift: u32,
    /// Bits of the tag, the lowest ones.
    tag_bits: u32,
    /// The index's bits, once shifted down by `tag_bits`.
    index_mask: u64,
}

impl KeyLayout {
    fn new(capacity: u32, candidates: u32) -> Self {
        let slot_bits = u32::BITS - capacity.saturating_sub(1).leading_zeros();
        let index_bits = u32::BITS - candidates.saturating_sub(1).leading_zeros();
        let tag_bits = u64::BITS - slot_bits - index_bits;
        Self {
            slot_bits,
            slot_shift: index_bits + tag_bits,
            tag_bits,
            index_mask: (1u64 << index_bits) - 1,
        }
    }

    fn key(self, slot: u32, index: u32, hash: u64) -> u64 {
        let tag = hash.checked_shr(u64::BITS - self.tag_bits).unwrap_or(0);
        u64::from(slot).checked_shl(self.slot_shift).unwrap_or(0)
            | u64::from(index).checked_shl(self.tag_bits).unwrap_or(0)
            | tag
    }

    fn slot(self, key: u64) -> u32 {
        // The slot is below 2^32: it was shifted up from a u32.
        key.checked_shr(self.slot_shift).unwrap_or(0) as u32
    }

    fn index(self, key: u64) -> u32 {
        // Masked to at most 32 bits.
        (key.checked_shr(self.tag_bits).unwrap_or(0) & self.index_mask) as u32
    }

    fn tag(self, key: u64) -> u64 {
        key & u64::MAX.checked_shr(u64::BITS - self.tag_bits).unwrap_or(0)
    }
}

/// Above this many distinct candidates preferring one slot, duplicates are found with a hash
/// set rather than by comparing with each of them.
const SCAN_LIMIT: usize = 8;

/// The usual case, a window sized for the list (`capacity` > 0): linear in the candidates, and
/// walking memory in order.
///
/// The plan is the one of inserting the candidates in list order, each at the first free slot
/// from its preferred one (wrapping at the end of the window). Doing that on a grid touches a
/// random slot per candidate, a cache miss each once the grid outgrows the cache (a million
/// candidates). Instead the candidates are sorted by preferred slot (a stable radix sort: list
/// order within a slot) and the grid is swept once, slot after slot: each slot goes to the
/// earliest listed of the candidates that prefer it or an earlier slot and are still waiting.
/// That is the same plan: an earlier-listed candidate never waits behind a later one, and a
/// later one only takes slots no earlier one wanted at that point. The sweep starts after a slot
/// where nobody is waiting, so it never has to wrap around.
///
/// Duplicates are equal ids, so they share a preferred slot: after the sort they sit next to
/// each other, and each candidate is compared only with the others preferring its slot. One
/// buffer of 8-byte keys carries the candidates through all of it: hashed into it in list order,
/// sorted, thinned of duplicates and swept in place.
fn place_dense<K: Eq + std::hash::Hash>(
    capacity: u32,
    candidates: &[K],
    key: impl Fn(&K) -> &str,
) -> Placed {
    // `place` sends only lists of fewer than 2^32 candidates here.
    let layout = KeyLayout::new(capacity, candidates.len() as u32);
    let mut keys: Vec<u64> = (0u32..)
        .zip(candidates)
        .map(|(index, id)| {
            let hash = fnv1a64(key(id).as_bytes());
            // Below 2^32: the capacity is a u32.
            layout.key((hash % u64::from(capacity)) as u32, index, hash)
        })
        .collect();
    let duplicates = sort_without_duplicates(&mut keys, layout, candidates);
    let mut overflow = Vec::new();
    if keys.len() > capacity as usize {
        // The first `capacity` distinct candidates in list order fit; the rest overflow.
        let mut duplicate = vec![false; candidates.len()];
        for &i in &duplicates {
            duplicate[i as usize] = true;
        }
        let mut distinct = (0u32..)
            .zip(&duplicate)
            .filter(|(_, d)| !**d)
            .map(|(i, _)| i);
        if let Some(cutoff) = distinct.nth(capacity as usize) {
            overflow.reserve(keys.len() - capacity as usize);
            overflow.push(cutoff);
            overflow.extend(distinct);
            keys.retain(|&k| layout.index(k) < cutoff);
        }
    }
    let first = sweep(&mut keys, layout, capacity);
    Placed {
        planned: PlannedSlots::Dense {
            entries: keys,
            first,
        },
        overflow,
    }
}

/// Sorts the keys by preferred slot, keeping list order within a slot, and removes the later
/// copies of each id, returning their indices: a radix sort that walks memory in order. One
/// pass splits the keys by the top (at most 8) bits of their slot into at most 256 runs (as many
/// sequential streams); each run, a few thousand keys at most sizes, is then sorted on the
/// remaining bits within the cache (LSD, digits of at most 13 bits) and thinned of duplicates
/// while it is there.
fn sort_without_duplicates<K: Eq + std::hash::Hash>(
    keys: &mut Vec<u64>,
    layout: KeyLayout,
    candidates: &[K],
) -> Vec<u32> {
    let mut duplicates = Vec::new();
    let bits = layout.slot_bits;
    if bits == 0 || keys.len() < 256 {
        keys.sort_unstable(); // by slot, then index: the list order
        let all = 0..keys.len();
        let kept = drop_duplicates(keys, 0, all, layout, candidates, &mut duplicates);
        keys.truncate(kept);
        return duplicates;
    }
    let high = bits.min(8);
    let low = bits - high;
    let mut scratch = vec![0; keys.len()];
    let mut offsets = Vec::new();
    scatter_by_digit(
        keys,
        &mut scratch,
        layout.slot_shift + low,
        high,
        &mut offsets,
    );
    let run_ends = offsets.clone();
    let passes = low.div_ceil(13);
    let width = low.div_ceil(passes.max(1));
    let (mut run_start, mut kept) = (0, 0);
    for run_end in run_ends {
        let run_end = run_end as usize;
        let run = &mut scratch[run_start..run_end];
        let spare = &mut keys[run_start..run_end];
        if run.len() > 1 {
            for pass in 0..passes {
                let shift = layout.slot_shift + pass * width;
                if pass.is_multiple_of(2) {
                    scatter_by_digit(run, spare, shift, width, &mut offsets);
                } else {
                    scatter_by_digit(spare, run, shift, width, &mut offsets);
                }
            }
        }
        // The sorted run, back where `keys` has it.
        if passes.is_multiple_of(2) || run.len() < 2 {
            spare.copy_from_slice(run);
        }
        kept = drop_duplicates(
            keys,
            kept,
            run_start..run_end,
            layout,
            candidates,
            &mut duplicates,
        );
        run_start = run_end;
    }
    keys.truncate(kept);
    duplicates
}

/// One counting-sort pass: `from` into `to` by the `width` bits of the key from `shift`,
/// stably. Leaves in `offsets` the end of each digit's run in `to`.
fn scatter_by_digit(from: &[u64], to: &mut [u64], shift: u32, width: u32, offsets: &mut Vec<u32>) {
    let mask = (1u64 << width) - 1;
    let digit = |k: u64| ((k >> shift) & mask) as usize;
    offsets.clear();
    offsets.resize(1 << width, 0);
    // At most 2^32 keys (`place` checks), so every count fits.
    for &k in from {
        offsets[digit(k)] += 1;
    }
    let mut sum = 0;
    for offset in offsets.iter_mut() {
        let count = *offset;
        *offset = sum;
        sum += count;
    }
    for &k in from {
        let at = &mut offsets[digit(k)];
        to[*at as usize] = k;
        *at += 1;
    }
}

/// Keeps the first copy of each id among `keys[run]` (sorted by slot, list order within one),
/// moving the kept keys down to `keys[kept..]` (`kept` is at most `run.start`), and records the
/// later copies' indices in `duplicates`. Returns the end of the kept keys.
fn drop_duplicates<K: Eq + std::hash::Hash>(
    keys: &mut [u64],
    mut kept: usize,
    run: std::ops::Range<usize>,
    layout: KeyLayout,
    candidates: &[K],
    duplicates: &mut Vec<u32>,
) -> usize {
    let id = |k: u64| &candidates[layout.index(k) as usize];
    let mut read = run.start;
    while read < run.end {
        let slot_start = kept;
        let slot = layout.slot(keys[read]);
        let mut seen: Option<HashSet<&K, foldhash::fast::RandomState>> = None;
        while read < run.end && layout.slot(keys[read]) == slot {
            let k = keys[read];
            read += 1;
            let duplicate = match &mut seen {
                Some(seen) => !seen.insert(id(k)),
                None => keys[slot_start..kept]
                    .iter()
                    .any(|&q| layout.tag(q) == layout.tag(k) && id(q) == id(k)),
            };
            if duplicate {
                duplicates.push(layout.index(k));
                continue;
            }
            keys[kept] = k;
            kept += 1;
            if seen.is_none() && kept - slot_start > SCAN_LIMIT {
                seen = Some(keys[slot_start..kept].iter().map(|&q| id(q)).collect());
            }
        }
    }
    kept
}

/// The sweep, in place: `keys` (sorted by preferred slot, list order within one, no more of
/// them than `capacity`) become `slot << 32 | candidate` by slot, from the returned position on
/// (wrapping around the end). Each place is written over the key it comes from or one already
/// read.
///
/// Most candidates take the slot the one before them left them: in sweep order, each goes to the
/// first free slot from its own (`max(preferred, next)`, no branch on the data). The order only
/// differs where three or more queue for consecutive slots: there a later-preferring candidate
/// listed earlier overtakes one still waiting. Such queues (with a window twice the list, about 7
/// for every 100 candidates, holding a third of them) are found first and placed by a min-heap
/// of list indices. A single pass with the heap everywhere branches on the data at every
/// candidate, and took twice as long on a list the processor had not just seen as on one it had
/// (see docs/performance.md).
fn sweep(keys: &mut [u64], layout: KeyLayout, capacity: u32) -> usize {
    let len = keys.len();
    if len == 0 {
        return 0;
    }
    let capacity = u64::from(capacity);
    let start = quiet_start(keys, layout, capacity);
    // The window unrolled from `start`, so that the sweep ends at its last slot: the keys are
    // read from the first one preferring `start` or later, wrapping around (from the first key
    // when all prefer earlier slots).
    let order = SweepOrder {
        layout,
        start,
        capacity,
        split: keys.partition_point(|&k| u64::from(layout.slot(k)) < start) % len,
        len,
    };
    let queues = long_queues(keys, order);
    let mut waiting = BinaryHeap::new();
    let (mut before_wrap, mut from) = (0, 0);
    for queue in queues.into_iter().chain(std::iter::once(len..len)) {
        before_wrap += place_in_order(keys, order, from..queue.start);
        before_wrap += place_queue(keys, order, queue.clone(), &mut waiting);
        from = queue.end;
    }
    // In sweep order the slots from `start` come first; the window's first slots follow them.
    (order.split + before_wrap) % len
}

/// The sweep's order: key positions and slots counted from the sweep's start.
#[derive(Debug, Clone, Copy)]
struct SweepOrder {
    layout: KeyLayout,
    /// The slot the sweep starts at.
    start: u64,
    capacity: u64,
    /// The position of the first key the sweep reads.
    split: usize,
    len: usize,
}

impl SweepOrder {
    /// The position in the keys of the `n`-th key the sweep reads.
    fn position(self, n: usize) -> usize {
        let at = self.split + n;
        if at >= self.len {
            at - self.len
        } else {
            at
        }
    }

    /// A key's preferred slot, counted from `start`.
    fn preferred(self, key: u64) -> u64 {
        let slot = u64::from(self.layout.slot(key));
        if slot >= self.start {
            slot - self.start
        } else {
            slot + self.capacity - self.start
        }
    }

    /// Writes candidate `index`'s place at `at` (a slot counted from `start`) over the `n`-th
    /// key read. Returns 1 if the slot is before the window's end (not wrapped around to its
    /// first slots), else 0.
    fn put(self, keys: &mut [u64], n: usize, at: u64, index: u32) -> usize {
        let slot = self.start + at;
        let wrapped = slot >= self.capacity;
        let slot = if wrapped { slot - self.capacity } else { slot };
        keys[self.position(n)] = slot << 32 | u64::from(index);
        usize::from(!wrapped)
    }
}

/// The stretches of the sweep (as counts of keys read) where three or more candidates queue for
/// consecutive slots, each from a candidate that finds nobody waiting to the last one before the
/// next such candidate. Elsewhere each candidate takes the first free slot from its own, in
/// sweep order: with one or two in a queue, the second prefers the first's slot and is listed
/// after it.
fn long_queues(keys: &[u64], order: SweepOrder) -> Vec<std::ops::Range<usize>> {
    let mut queues = Vec::new();
    let (mut next, mut from) = (0u64, 0usize);
    for n in 0..order.len {
        let preferred = order.preferred(keys[order.position(n)]);
        // Nobody is waiting for this candidate's slot: a new queue starts with it.
        let alone = preferred >= next;
        if alone & (n - from >= 3) {
            queues.push(from..n);
        }
        from = if alone { n } else { from };
        next = next.max(preferred) + 1;
    }
    if order.len - from >= 3 {
        queues.push(from..order.len);
    }
    queues
}

/// Places the keys read `n`-th for `n` in `read`, none of them in a long queue, each at the first
/// free slot from its own. The first finds nobody waiting. Returns how many are placed before the
/// window's end.
fn place_in_order(keys: &mut [u64], order: SweepOrder, read: std::ops::Range<usize>) -> usize {
    let (mut next, mut before_wrap) = (0u64, 0usize);
    for n in read {
        let key = keys[order.position(n)];
        let slot = next.max(order.preferred(key));
        next = slot + 1;
        before_wrap += order.put(keys, n, slot, order.layout.index(key));
    }
    before_wrap
}

/// Places one long queue (the keys read `n`-th for `n` in `queue`): each slot from the first
/// one's preferred goes to the earliest listed of those waiting for it. The `n`-th place is
/// written over the `n`-th key, already read. Returns how many are placed before the window's
/// end.
fn place_queue(
    keys: &mut [u64],
    order: SweepOrder,
    queue: std::ops::Range<usize>,
    waiting: &mut BinaryHeap<Reverse<u32>>,
) -> usize {
    let mut write = queue.start;
    let mut before_wrap = 0;
    let mut put = |keys: &mut [u64], slot: u64, index: u32| {
        before_wrap += order.put(keys, write, slot, index);
        write += 1;
    };
    let mut next = 0;
    for n in queue {
        let key = keys[order.position(n)];
        let preferred = order.preferred(key);
        // Every candidate preferring a slot up to `next` is in `waiting`: fill the slots before
        // this candidate's own.
        while next < preferred {
            let Some(Reverse(first)) = waiting.pop() else {
                next = preferred;
                break;
            };
            put(keys, next, first);
            next += 1;
        }
        waiting.push(Reverse(order.layout.index(key)));
    }
    while let Some(Reverse(first)) = waiting.pop() {
        put(keys, next, first);
        next += 1;
    }
    before_wrap
}

/// A slot to start the sweep at: one where no candidate is left waiting, whichever order they
/// are placed in (the same slots end up taken). One always exists when the candidates fit:
/// after an empty slot, or in a full window after the slot the last candidate placed took.
///
/// The first lap places every candidate at the first free slot from its own as if nobody were
/// waiting at the window's start; that can only place them earlier than the wrapped-around
/// window would, and from the first candidate that finds nobody waiting in both, the two agree.
/// So on the second lap the slots are exact, and the first candidate of that lap to find its
/// slot free starts the sweep.
fn quiet_start(keys: &[u64], layout: KeyLayout, capacity: u64) -> u64 {
    let mut next: u64 = 0;
    for &k in keys {
        next = next.max(u64::from(layout.slot(k))) + 1;
    }
    for &k in keys {
        let slot = u64::from(layout.slot(k));
        if slot + capacity >= next {
            return slot;
        }
        next += 1;
    }
    debug_assert!(keys.is_empty(), "no quiet slot: more candidates than slots");
    0
}

/// A window far larger than the list: only the touched slots are kept (in maps), then sorted.
fn place_sparse<K: Eq + std::hash::Hash>(
    capacity: u64,
    candidates: &[K],
    key: impl Fn(&K) -> &str,
) -> Placed {
    let hasher = foldhash::fast::RandomState::default;
    let mut seen: HashSet<&K, _> = HashSet::with_capacity_and_hasher(candidates.len(), hasher());
    let mut links: HashMap<u64, u64, _> =
        HashMap::with_capacity_and_hasher(candidates.len().min(1 << 20), hasher());
    let (mut planned, mut overflow) = (Vec::new(), Vec::new());
    for (i, id) in (0u32..).zip(candidates) {
        if !seen.insert(id) {
            continue;
        }
        if planned.len() as u64 >= capacity {
            overflow.push(i);
            continue;
        }
        let mut slot = fnv1a64(key(id).as_bytes()) % capacity;
        while let Some(&next) = links.get(&slot) {
            if let Some(&after) = links.get(&next) {
                links.insert(slot, after);
            }
            slot = next;
        }
        links.insert(slot, (slot + 1) % capacity);
        planned.push((slot, i));
    }
    planned.sort_unstable_by_key(|&(slot, _)| slot);
    Placed {
        planned: PlannedSlots::Sparse(planned),
        overflow,
    }
}

// ---------------------------------------------------------------------------------------------
// The server's answer
// ---------------------------------------------------------------------------------------------

/// What `POST /users/{userId}/connections/{connectionId}/refresh` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshResponse {
    /// 202 (or 201): a new refresh job.
    Started(JobId),
    /// 200: a job was already queued or running and Basiq returned it; follow that job.
    AlreadyRunning(JobId),
}

impl RefreshResponse {
    /// Maps the status of a successful answer: 200 → already running, 201/202 → started.
    pub fn from_status(status: u16, job_id: JobId) -> Option<Self> {
        match status {
            200 => Some(Self::AlreadyRunning(job_id)),
            201 | 202 => Some(Self::Started(job_id)),
            _ => None,
        }
    }

    /// Reads the answer to a refresh: `{type:"job", id, links}` with 200 or 202; any other status
    /// is Basiq's error.
    pub fn parse(response: &HttpResponse) -> Result<Self, Error> {
        let status = response.status().as_u16();
        let job: models::JobRef = operation::parse_json(response, &[200, 201, 202])?;
        Self::from_status(status, job.id)
            .ok_or_else(|| Error::decode(response.status(), "unexpected refresh status"))
    }

    /// The job to follow, new or not.
    pub fn job_id(&self) -> &JobId {
        match self {
            Self::Started(id) | Self::AlreadyRunning(id) => id,
        }
    }
}

#[cfg(test)]
mod tests;
