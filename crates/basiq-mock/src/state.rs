//! The emulator's in-memory database and configuration.
//!
//! [`AppState`] is an `Arc` around one `Mutex<Db>`: handlers lock, read or change, and unlock
//! before returning (the lock is never held across an `.await`). Nothing time-dependent is
//! *stored*: job step status, connection status, `lastUsed` and the purged flag are all derived
//! from the clock at read time (see `jobs.rs`), so advancing the virtual clock needs no
//! background task and can never race with a request.
//!
//! For other modules of the crate (accounts/transactions generation, faults, rate limits):
//! read what you need through [`AppState::connection_snapshot`] /
//! [`AppState::connections_of_user`] rather than poking at `Db`, so the derivation rules stay in
//! one place.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;

use crate::clock::MockClock;
use crate::connectors::Connector;
use crate::ids::{uuid_like, IdKind};
use crate::logins::Failure;
use crate::rendered::Rendered;
use crate::stats::Stats;

/// A general request-rate limit (applied by the rate-limiting middleware, when configured).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// Window length.
    pub per: Duration,
}

impl RateLimit {
    /// `requests` per `per`.
    pub fn new(requests: u32, per: Duration) -> Self {
        Self { requests, per }
    }
}

/// Fixed configuration, decided by the builder.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The key `/token` accepts, compared byte for byte with the `Basic` credentials.
    pub(crate) api_key: String,
    pub(crate) token_ttl: Duration,
    /// Where the Consent UI stand-in redirects; `None` = our own `/consent/done` page.
    pub(crate) redirect_url: Option<String>,
    /// General rate limit, handed to the rate-limiting middleware (`None` = unlimited).
    pub(crate) rate_limit: Option<RateLimit>,
    /// `/token` limit: Basiq allows 1,500 requests per 5 minutes.
    pub(crate) token_limit: RateLimit,
    /// `http://127.0.0.1:PORT`, used in absolute `links`.
    pub(crate) base_url: String,
    /// How long a request body may take to arrive.
    pub(crate) body_timeout: Duration,
    /// Every connection's transaction count, unless set per user or connection.
    pub(crate) transactions_per_connection: Option<u64>,
}

/// Shared, cheaply clonable handle on the emulator's state.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) clock: MockClock,
    /// Fault rules and the request rate limit (own state: the fault middleware needs no `Db`).
    pub(crate) faults: Arc<crate::faults::Faults>,
    /// `GET /users/{id}` answers, kept with the view each was rendered from (outside `db`: a
    /// hit takes only the lock needed to derive the view).
    pub(crate) rendered_users: Rendered<crate::users::UserView>,
    /// Connection JSON (`GET /users/{id}/connections[/{id}]`), kept with its `ConnectionInfo`.
    pub(crate) rendered_connections: Rendered<ConnectionInfo>,
    db: Mutex<Db>,
}

/// Token scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Server,
    Client,
}

#[derive(Debug, Clone)]
pub(crate) struct TokenGrant {
    pub(crate) scope: Scope,
    pub(crate) user_id: Option<String>,
    pub(crate) expires_at: OffsetDateTime,
}

/// The fields a user was created or updated with (Basiq's names, camelCase on the wire).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) email: Option<String>,
    pub(crate) mobile: Option<String>,
    pub(crate) first_name: Option<String>,
    pub(crate) middle_name: Option<String>,
    pub(crate) last_name: Option<String>,
    pub(crate) business_name: Option<String>,
    pub(crate) business_id_no: Option<String>,
    pub(crate) business_id_no_type: Option<String>,
    pub(crate) business_address: Option<serde_json::Value>,
    pub(crate) verification_status: Option<bool>,
    pub(crate) verification_date: Option<String>,
}

/// How a connection reaches its institution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Web,
    OpenBanking,
}

impl Method {
    /// The connection's `method` field (Basiq's getConnection example spells it `open-banking`).
    pub(crate) fn connection_str(self) -> &'static str {
        match self {
            Method::Web => "web",
            Method::OpenBanking => "open-banking",
        }
    }

    /// The connector's `method` (the connectors enum spells it `openbanking`).
    pub(crate) fn connector_str(self) -> &'static str {
        match self {
            Method::Web => "web",
            Method::OpenBanking => "openbanking",
        }
    }
}

/// A connection's status, derived from its jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectionStatus {
    Pending,
    Active,
    Invalid,
}

impl ConnectionStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Pending => "pending",
            ConnectionStatus::Active => "active",
            ConnectionStatus::Invalid => "invalid",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Connection {
    pub(crate) id: String,
    pub(crate) seq: u64,
    pub(crate) user_id: String,
    pub(crate) institution_id: String,
    pub(crate) method: Method,
    pub(crate) login_id: String,
    pub(crate) password: String,
    pub(crate) created: OffsetDateTime,
    /// When the last purge happened; data stays purged until a job succeeds after it.
    pub(crate) purged_at: Option<OffsetDateTime>,
    /// Bumped on every purge so generated data can be keyed on it.
    pub(crate) data_generation: u64,
    /// Creation times of refresh jobs (for the OpenBanking 20-per-day quota).
    pub(crate) refreshes: Vec<OffsetDateTime>,
    /// Jobs ever created for this connection (drives the `flaky` test login).
    pub(crate) attempts: u32,
}

/// Why a job exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobKind {
    Connect,
    Update,
    Refresh,
    /// The smart cache's daily background refresh (not one of the app's refreshes).
    BackgroundRefresh,
}

/// The planned course of one step: how long it runs and how it ends.
#[derive(Debug, Clone)]
pub(crate) struct StepPlan {
    pub(crate) title: &'static str,
    pub(crate) duration: time::Duration,
    pub(crate) failure: Option<Failure>,
    /// For an `mfa-challenge` step: the challenge shown while it waits. Until answered, the
    /// step is planned to run until the challenge expires and then fail; answering rewrites
    /// `duration` and `failure` (see `mfa.rs`).
    pub(crate) mfa: Option<crate::mfa::Challenge>,
}

#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) id: String,
    pub(crate) seq: u64,
    /// Not on the wire (Basiq's jobType is "connection" for all three), but shown in Debug.
    #[allow(dead_code)]
    pub(crate) kind: JobKind,
    pub(crate) user_id: String,
    pub(crate) connection_id: String,
    pub(crate) institution_id: String,
    pub(crate) method: Method,
    pub(crate) login_id: String,
    pub(crate) created: OffsetDateTime,
    /// `created`, or `created + 6 min` for a paused duplicate attempt.
    pub(crate) start_at: OffsetDateTime,
    pub(crate) steps: Vec<StepPlan>,
}

/// Everything the emulator remembers.
#[derive(Debug)]
pub(crate) struct Db {
    pub(crate) users: HashMap<String, User>,
    pub(crate) connections: HashMap<String, Connection>,
    pub(crate) jobs: HashMap<String, Job>,
    pub(crate) tokens: HashMap<String, TokenGrant>,
    /// Times of recent `/token` requests (sliding window for the 1,500 / 5 min limit).
    pub(crate) token_log: VecDeque<OffsetDateTime>,
    pub(crate) connectors: Vec<Connector>,
    pub(crate) stats: Stats,
    /// Every counted request with its time (`GET /__admin/requests`).
    pub(crate) request_log: crate::stats::RequestLog,
    /// Snapshots of deleted connections whose data stays on the user: Basiq's DELETE removes
    /// the connection but "accounts and transactions remain on the user" (basiq-api.md §3.2).
    pub(crate) retained: Vec<ConnectionInfo>,
    /// Consents, auth links, events, statements, reports, summaries and webhooks.
    pub(crate) surface: crate::surface::SurfaceDb,
    /// Set transaction counts.
    pub(crate) volume: DataVolume,
    next_seq: u64,
}

impl Db {
    fn new() -> Self {
        Self {
            users: HashMap::new(),
            connections: HashMap::new(),
            jobs: HashMap::new(),
            tokens: HashMap::new(),
            token_log: VecDeque::new(),
            connectors: crate::connectors::catalogue(),
            stats: Stats::default(),
            request_log: crate::stats::RequestLog::default(),
            retained: Vec::new(),
            surface: crate::surface::SurfaceDb::default(),
            volume: DataVolume::default(),
            next_seq: 1,
        }
    }

    /// The next sequence number (orders records; feeds id generation).
    pub(crate) fn seq(&mut self) -> u64 {
        let n = self.next_seq;
        self.next_seq += 1;
        n
    }

    /// A fresh id of the given kind and the sequence number it was made from.
    pub(crate) fn new_id(&mut self, kind: IdKind) -> (String, u64) {
        let n = self.seq();
        (uuid_like(kind, n), n)
    }

    /// Clears users, connections, jobs, counters and connector statuses. Issued tokens and the
    /// id counter survive: a reset must not hand out an id that a test still holds.
    pub(crate) fn reset(&mut self) {
        let next_seq = self.next_seq;
        let surface_seq = self.surface.next_seq;
        let tokens = std::mem::take(&mut self.tokens);
        let default_volume = self.volume.default;
        *self = Db::new();
        self.volume.default = default_volume;
        self.next_seq = next_seq;
        self.surface.next_seq = surface_seq;
        self.tokens = tokens;
    }

    /// The jobs `keep` selects, oldest first.
    fn jobs_where(&self, keep: impl Fn(&Job) -> bool) -> Vec<&Job> {
        let mut jobs: Vec<&Job> = self.jobs.values().filter(|j| keep(j)).collect();
        jobs.sort_by_key(|j| j.seq);
        jobs
    }

    /// Jobs of one connection, oldest first.
    pub(crate) fn jobs_of_connection(&self, connection_id: &str) -> Vec<&Job> {
        self.jobs_where(|j| j.connection_id == connection_id)
    }

    /// Connections of one user, oldest first.
    pub(crate) fn connections_of(&self, user_id: &str) -> Vec<&Connection> {
        let mut out: Vec<&Connection> = self
            .connections
            .values()
            .filter(|c| c.user_id == user_id)
            .collect();
        out.sort_by_key(|c| c.seq);
        out
    }

    /// The derived, point-in-time view of a connection.
    pub(crate) fn connection_info(&self, c: &Connection, now: OffsetDateTime) -> ConnectionInfo {
        self.info_with_jobs(c, &self.jobs_of_connection(&c.id), now)
    }

    /// The derived views of a user's connections, oldest first: [`connection_info`] of each,
    /// with the jobs found in one pass over all jobs rather than one pass per connection.
    ///
    /// [`connection_info`]: Self::connection_info
    pub(crate) fn connection_infos_of(
        &self,
        user_id: &str,
        now: OffsetDateTime,
    ) -> Vec<ConnectionInfo> {
        let connections = self.connections_of(user_id);
        if connections.is_empty() {
            return Vec::new();
        }
        // A job belongs to its connection's user (`jobs::create_job`), so this holds every job
        // of these connections.
        let jobs = self.jobs_where(|j| j.user_id == user_id);
        let mut own = Vec::with_capacity(jobs.len());
        connections
            .into_iter()
            .map(|c| {
                own.clear();
                own.extend(jobs.iter().copied().filter(|j| j.connection_id == c.id));
                self.info_with_jobs(c, &own, now)
            })
            .collect()
    }

    fn info_with_jobs(&self, c: &Connection, jobs: &[&Job], now: OffsetDateTime) -> ConnectionInfo {
        let mut info = crate::connections::derive(c, jobs, now);
        info.transaction_count = self.volume.of(c);
        info
    }
}

/// A point-in-time view of a connection with everything derived from its jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectionInfo {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) institution_id: String,
    pub(crate) method: Method,
    pub(crate) status: ConnectionStatus,
    pub(crate) created: OffsetDateTime,
    /// Completion time of the latest fully successful job.
    pub(crate) last_used: Option<OffsetDateTime>,
    /// True between a purge and the next fully successful job: generate no data.
    pub(crate) purged: bool,
    /// Bumped by every purge; key generated data on `(id, data_generation)`.
    pub(crate) data_generation: u64,
    /// A `retrieve-accounts` step has succeeded (and no purge since): accounts exist.
    pub(crate) accounts_retrieved: bool,
    /// A `retrieve-transactions` step has succeeded (and no purge since): transactions exist.
    pub(crate) transactions_retrieved: bool,
    /// Fully successful jobs so far (grows with every successful refresh; useful to vary
    /// pending transactions, which get new ids on every refresh).
    pub(crate) successful_jobs: u32,
    /// The running (or paused) job, if any.
    pub(crate) job_in_progress: Option<String>,
    /// How many transactions the connection's data has, when set (see [`DataVolume`]);
    /// `None`: its natural history.
    pub(crate) transaction_count: Option<u64>,
}

/// Set transaction counts (`MockServerBuilder::transactions_per_connection`, `PUT
/// /__admin/users/{id}/transactions`, `PUT /__admin/connections/{id}/transactions`): a
/// connection's own count wins over its user's, which wins over the builder's.
#[derive(Debug, Clone, Default)]
pub(crate) struct DataVolume {
    pub(crate) default: Option<u64>,
    pub(crate) per_user: HashMap<String, u64>,
    pub(crate) per_connection: HashMap<String, u64>,
}

impl DataVolume {
    fn of(&self, c: &Connection) -> Option<u64> {
        self.per_connection
            .get(&c.id)
            .or_else(|| self.per_user.get(&c.user_id))
            .copied()
            .or(self.default)
    }
}

impl AppState {
    pub(crate) fn new(config: Config, clock: MockClock) -> Self {
        let mut db = Db::new();
        db.volume.default = config.transactions_per_connection;
        let faults = crate::faults::Faults::new();
        if let Some(l) = config.rate_limit {
            // Only fails for a zero limit or window, which means "no limit".
            let _ =
                faults.set_rate_limit(Some(crate::faults::RateLimitRule::new(l.requests, l.per)));
        }
        Self {
            inner: Arc::new(Inner {
                config,
                clock,
                faults,
                rendered_users: Rendered::default(),
                rendered_connections: Rendered::default(),
                db: Mutex::new(db),
            }),
        }
    }

    pub(crate) fn config(&self) -> &Config {
        &self.inner.config
    }

    pub(crate) fn base(&self) -> &str {
        &self.inner.config.base_url
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    /// Locks the database. A poisoned lock (a panicking handler) still holds consistent data
    /// for our purposes, so recover rather than cascade the panic into every later request.
    pub(crate) fn db(&self) -> MutexGuard<'_, Db> {
        self.inner.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection as of now, if it exists and belongs to `user_id`.
    #[allow(dead_code)] // the accounts/transactions module's entry point
    pub(crate) fn connection_snapshot(
        &self,
        user_id: &str,
        connection_id: &str,
    ) -> Option<ConnectionInfo> {
        let now = self.now();
        let db = self.db();
        let c = db.connections.get(connection_id)?;
        (c.user_id == user_id).then(|| db.connection_info(c, now))
    }

    /// All connections of a user as of now (empty if the user does not exist).
    #[allow(dead_code)] // the accounts/transactions module's entry point
    pub(crate) fn connections_of_user(&self, user_id: &str) -> Vec<ConnectionInfo> {
        let now = self.now();
        self.db().connection_infos_of(user_id, now)
    }

    /// Frozen snapshots of the user's deleted connections (their data remains, basiq-api.md §3.2).
    pub(crate) fn retained_of_user(&self, user_id: &str) -> Vec<ConnectionInfo> {
        self.db()
            .retained
            .iter()
            .filter(|c| c.user_id == user_id)
            .cloned()
            .collect()
    }

    /// Back to a fresh emulator: forgets users, connections, jobs, counters, connector
    /// statuses and armed fault rules. Kept: issued tokens (credentials, not data), the clock,
    /// and the configured rate limit (builder configuration).
    pub(crate) fn reset(&self) {
        self.db().reset();
        self.inner.faults.clear();
        self.inner.rendered_users.clear();
        self.inner.rendered_connections.clear();
    }

    /// Whether a user exists.
    pub(crate) fn user_exists(&self, user_id: &str) -> bool {
        self.db().users.contains_key(user_id)
    }
}
