//! The guarded refresh as a sans-IO state machine: [`GuardedRefresh`] says "read the
//! connection", "read the user's jobs", "claim the attempt on the fleet", "send the refresh",
//! "settle the claim" or "done", and is fed each answer. The facade's
//! `connections().refresh` drives it for both clients; nothing here does IO or reads a clock.
//!
//! With [`GuardedRefresh::consult_freshness`] the first question is when Basiq itself last
//! refreshed the connection (its webhooks, recorded in a
//! [`FreshnessLedger`](crate::policy::freshness::FreshnessLedger)): within `min_interval`, nothing is
//! read or sent.
//!
//! Basiq asks to refresh *rarely*, only *active* connections, after checking `lastUsed` and the
//! jobs, at most 20 a day for open banking, and never a second attempt while one runs (Basiq
//! pauses it 6 minutes). The order is fixed here: the duplicate pause first, then
//! [`RefreshPolicy::decide`] (under the caller's ledger lock, so two calls cannot both take the
//! last quota slot), then a running job the pause guard matched; in fleet mode the fleet's claim
//! and quota reservation come after the local checks, and the ledger records the refresh only
//! once the fleet let it through.
//!
//! ```
//! use basiq_core::flows::refresh::{GuardedRefresh, RefreshStep, RefreshVerdict};
//! use basiq_core::id::{ConnectionId, UserId};
//! use basiq_core::policy::refresh::{MemoryLedger, RefreshPolicy, SkipReason};
//!
//! let now = time::macros::datetime!(2026-01-01 12:00 UTC);
//! let mut flow = GuardedRefresh::new(
//!     UserId::new("u1").unwrap(),
//!     ConnectionId::new("c1").unwrap(),
//!     RefreshPolicy::default(),
//!     None,
//! );
//! let RefreshStep::ReadConnection(_op) = flow.start() else { unreachable!() };
//! let connection = serde_json::from_value(serde_json::json!({
//!     "type": "connection", "id": "c1", "status": "invalid", "method": "web",
//! }))
//! .unwrap();
//! let RefreshStep::ReadJobs(_user) = flow.on_connection(Ok(connection)) else { unreachable!() };
//! let mut ledger = MemoryLedger::new();
//! let RefreshStep::Done(Ok(RefreshVerdict::Skipped(SkipReason::Inactive(_)))) =
//!     flow.on_jobs(Ok(Vec::new()), &mut ledger, now)
//! else {
//!     unreachable!("an invalid connection is never refreshed")
//! };
//! ```

use std::time::Duration;

use time::OffsetDateTime;

use crate::api::models::{Connection, Job};
use crate::api::operations::{GetConnection, RefreshConnection};
use crate::error::{Error, ErrorContext};
use crate::id::{ConnectionId, JobId, UserId};
use crate::policy::fleet::{AttemptRefusal, AttemptResult, FleetAttempt, FleetConfig};
use crate::policy::pause::{DuplicatePauseGuard, PauseDecision};
use crate::policy::refresh::{
    ConnectionView, RefreshDecision, RefreshLedger, RefreshPolicy, RefreshResponse, SkipReason,
};

/// How a guarded refresh ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub enum RefreshVerdict {
    /// Sent; Basiq's answer (a new job, or the one already running).
    Sent(RefreshResponse),
    /// Nothing sent: Basiq's rules say not now.
    Skipped(SkipReason),
    /// Nothing sent: Basiq is pausing a duplicate attempt until `until`.
    Paused {
        /// When Basiq's pause ends.
        until: OffsetDateTime,
        /// The paused job.
        job_id: JobId,
    },
}

/// What the driver does next for a [`GuardedRefresh`].
#[derive(Debug)]
#[must_use]
pub enum RefreshStep {
    /// Ask the [`FreshnessLedger`](crate::policy::freshness::FreshnessLedger) when Basiq last refreshed
    /// this connection (its webhooks said) and report with [`GuardedRefresh::on_freshness`]
    /// (`None` when unknown or the ledger failed). Only with
    /// [`consult_freshness`](GuardedRefresh::consult_freshness).
    LastRefreshedByBasiq(ConnectionId),
    /// Execute this and report with [`GuardedRefresh::on_connection`].
    ReadConnection(GetConnection),
    /// Read every job of this user (all pages: the guards must see every running job) and
    /// report with [`GuardedRefresh::on_jobs`].
    ReadJobs(UserId),
    /// Run this fleet attempt on the fleet's store and report with
    /// [`GuardedRefresh::on_claim`].
    Claim(FleetAttempt),
    /// Execute this (never retried: not idempotent) and report with
    /// [`GuardedRefresh::on_sent`].
    Send(RefreshConnection),
    /// Tell the fleet's store how the attempt ended, then call [`GuardedRefresh::on_settled`].
    Settle(FleetAttempt, AttemptResult),
    /// The refresh is over.
    Done(Result<RefreshVerdict, Error>),
}

enum State {
    Start,
    Freshness,
    Connection,
    Jobs(ConnectionView),
    Claiming(ConnectionView),
    Sending(Option<FleetAttempt>),
    Settling(Result<RefreshResponse, Error>),
    Done,
}

/// One guarded refresh of a connection (see the module docs).
pub struct GuardedRefresh {
    user_id: UserId,
    connection_id: ConnectionId,
    policy: RefreshPolicy,
    fleet: Option<FleetConfig>,
    freshness: bool,
    state: State,
}

impl std::fmt::Debug for GuardedRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedRefresh")
            .field("user_id", &self.user_id)
            .field("connection_id", &self.connection_id)
            .field("fleet", &self.fleet.is_some())
            .finish_non_exhaustive()
    }
}

impl GuardedRefresh {
    /// A refresh of `connection_id` of `user_id`, in fleet mode when `fleet` is given. The time
    /// is given with each answer that is judged (the reads take time; a decision uses the
    /// clock after them).
    pub fn new(
        user_id: UserId,
        connection_id: ConnectionId,
        policy: RefreshPolicy,
        fleet: Option<FleetConfig>,
    ) -> Self {
        Self {
            user_id,
            connection_id,
            policy,
            fleet,
            freshness: false,
            state: State::Start,
        }
    }

    /// Consult the freshness ledger first: a connection Basiq refreshed within the policy's
    /// `min_interval` is skipped ([`SkipReason::RefreshedByBasiq`]) before anything is read.
    pub fn consult_freshness(mut self) -> Self {
        self.freshness = true;
        self
    }

    fn context(&self) -> ErrorContext {
        ErrorContext::new()
            .with_user(&self.user_id)
            .with_connection(&self.connection_id)
    }

    fn done(&mut self, result: Result<RefreshVerdict, Error>) -> RefreshStep {
        self.state = State::Done;
        RefreshStep::Done(result)
    }

    fn misuse(&mut self, what: &str) -> RefreshStep {
        self.done(Err(Error::invalid_input(format!(
            "guarded refresh: {what} out of order"
        ))))
    }

    /// The first step: the freshness ledger when consulted, else read the connection
    /// (`status`, `method`, `lastUsed`).
    pub fn start(&mut self) -> RefreshStep {
        if !matches!(self.state, State::Start) {
            return self.misuse("start");
        }
        if self.freshness {
            self.state = State::Freshness;
            return RefreshStep::LastRefreshedByBasiq(self.connection_id.clone());
        }
        self.read_connection()
    }

    fn read_connection(&mut self) -> RefreshStep {
        self.state = State::Connection;
        RefreshStep::ReadConnection(GetConnection::new(
            self.user_id.clone(),
            self.connection_id.clone(),
        ))
    }

    /// When Basiq last refreshed the connection, if known, judged at `now`.
    pub fn on_freshness(
        &mut self,
        last_by_basiq: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> RefreshStep {
        if !matches!(self.state, State::Freshness) {
            return self.misuse("on_freshness");
        }
        match self.policy.refreshed_by_basiq(last_by_basiq, now) {
            Some(reason) => self.done(Ok(RefreshVerdict::Skipped(reason))),
            None => self.read_connection(),
        }
    }

    /// The connection was read (or not).
    pub fn on_connection(&mut self, connection: Result<Connection, Error>) -> RefreshStep {
        if !matches!(self.state, State::Connection) {
            return self.misuse("on_connection");
        }
        match connection {
            Err(e) => self.done(Err(e)),
            Ok(connection) => {
                self.state = State::Jobs(ConnectionView::from(&connection));
                RefreshStep::ReadJobs(self.user_id.clone())
            }
        }
    }

    /// The user's jobs were read (or not), judged at `now`. `ledger` is the client's refresh
    /// ledger, locked by the caller for this call: deciding and (without a fleet) recording
    /// happen under it.
    pub fn on_jobs(
        &mut self,
        jobs: Result<Vec<Job>, Error>,
        ledger: &mut dyn RefreshLedger,
        now: OffsetDateTime,
    ) -> RefreshStep {
        let State::Jobs(view) = std::mem::replace(&mut self.state, State::Done) else {
            return self.misuse("on_jobs");
        };
        let jobs = match jobs {
            Ok(jobs) => jobs,
            Err(e) => {
                let context = self.context();
                return self.done(Err(e.with_context(&context)));
            }
        };
        let pause = DuplicatePauseGuard::check(&jobs, None, Some(&view.id), now);
        if let PauseDecision::Paused { until, job_id } = pause {
            return self.done(Ok(RefreshVerdict::Paused { until, job_id }));
        }
        match self.policy.decide(&view, &jobs, &*ledger, now) {
            RefreshDecision::Skip(reason) => return self.done(Ok(RefreshVerdict::Skipped(reason))),
            RefreshDecision::Allowed => {}
        }
        if let PauseDecision::FollowExisting { job_id } = pause {
            return self.done(Ok(RefreshVerdict::Skipped(SkipReason::InProgress(job_id))));
        }
        match &self.fleet {
            None => {
                ledger.record(&view.id, now);
                self.state = State::Sending(None);
                self.send()
            }
            Some(fleet) => {
                let attempt = refresh_attempt(fleet, &self.policy, &view, &jobs, now);
                self.state = State::Claiming(view);
                RefreshStep::Claim(attempt)
            }
        }
    }

    /// The fleet's verdict on the attempt of [`RefreshStep::Claim`]; `ledger` as in
    /// [`on_jobs`](Self::on_jobs): the refresh is recorded (at `now`) only when the fleet let it
    /// through.
    pub fn on_claim(
        &mut self,
        attempt: FleetAttempt,
        verdict: Result<(), AttemptRefusal>,
        ledger: &mut dyn RefreshLedger,
        now: OffsetDateTime,
    ) -> RefreshStep {
        let State::Claiming(view) = std::mem::replace(&mut self.state, State::Done) else {
            return self.misuse("on_claim");
        };
        match verdict {
            Err(refusal) => {
                let reason = refused_skip(refusal, now);
                self.done(Ok(RefreshVerdict::Skipped(reason)))
            }
            Ok(()) => {
                ledger.record(&view.id, now);
                self.state = State::Sending(Some(attempt));
                self.send()
            }
        }
    }

    fn send(&self) -> RefreshStep {
        RefreshStep::Send(RefreshConnection::new(
            self.user_id.clone(),
            self.connection_id.clone(),
        ))
    }

    /// Basiq's answer to the refresh (or the failure to send it).
    pub fn on_sent(&mut self, result: Result<RefreshResponse, Error>) -> RefreshStep {
        let State::Sending(attempt) = std::mem::replace(&mut self.state, State::Done) else {
            return self.misuse("on_sent");
        };
        match attempt {
            None => self.done(result.map(RefreshVerdict::Sent)),
            Some(attempt) => {
                let settled = attempt_result(&result);
                self.state = State::Settling(result);
                RefreshStep::Settle(attempt, settled)
            }
        }
    }

    /// The fleet's store was told how the attempt ended.
    pub fn on_settled(&mut self) -> RefreshStep {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Settling(result) => self.done(result.map(RefreshVerdict::Sent)),
            _ => self.misuse("on_settled"),
        }
    }
}

/// The fleet attempt for refreshing `conn`: its claim, judged against the connection's jobs,
/// and for open banking one reservation of the day's quota (the counter outlives its UTC day by
/// an hour, then expires by itself).
pub fn refresh_attempt(
    fleet: &FleetConfig,
    policy: &RefreshPolicy,
    conn: &ConnectionView,
    user_jobs: &[Job],
    now: OffsetDateTime,
) -> FleetAttempt {
    let jobs = user_jobs
        .iter()
        .filter(|j| j.connection_id().as_ref() == Some(&conn.id))
        .cloned()
        .collect();
    let attempt = FleetAttempt::new(
        fleet.keys().refresh_attempt(&conn.id),
        fleet.instance(),
        now,
        jobs,
    );
    if !conn.method.has_daily_refresh_quota() {
        return attempt;
    }
    let day = now.to_offset(time::UtcOffset::UTC).date();
    let ttl = until_next_midnight(now) + Duration::from_secs(3600);
    attempt.with_quota(
        fleet.keys().quota(&conn.id, day),
        policy.open_banking_daily_limit,
        ttl,
    )
}

/// Time left in the UTC day of `now`.
pub fn until_next_midnight(now: OffsetDateTime) -> Duration {
    let day = now.to_offset(time::UtcOffset::UTC).date();
    let midnight = day.next_day().map_or(now, |d| d.midnight().assume_utc());
    (midnight - now).try_into().unwrap_or(Duration::ZERO)
}

/// Why a refresh the fleet refused is skipped: follow the other instance's job when known,
/// the day's quota when the fleet used it, otherwise "in progress elsewhere".
pub fn refused_skip(refusal: AttemptRefusal, now: OffsetDateTime) -> SkipReason {
    match refusal {
        AttemptRefusal::HeldElsewhere {
            job_id: Some(job), ..
        } => SkipReason::InProgress(job),
        AttemptRefusal::QuotaExhausted => SkipReason::DailyQuotaExhausted {
            resets_at: now + until_next_midnight(now),
        },
        AttemptRefusal::HeldElsewhere { until, .. } => SkipReason::InProgressElsewhere { until },
    }
}

/// How a sent refresh ended, for the fleet's claim and quota: Basiq's refusal (a 4xx answer)
/// means it did not act; a 5xx or a transport failure may have acted, so nothing is given back.
pub fn attempt_result(result: &Result<RefreshResponse, Error>) -> AttemptResult {
    match result {
        Ok(RefreshResponse::Started(job)) => AttemptResult::Started(job.clone()),
        Ok(RefreshResponse::AlreadyRunning(job)) => AttemptResult::Existing(job.clone()),
        Err(e) => match e.status() {
            Some(status) if status.is_client_error() => AttemptResult::NotActed,
            _ => AttemptResult::Unknown,
        },
    }
}

#[cfg(test)]
mod tests;
