//! # basiq-mock
//!
//! A stateful, behaviour-faithful emulator of the Basiq v3.0 API on a real HTTP stack (axum),
//! bound to `127.0.0.1`. It exists so the SDK's policies meet something that pushes back: real
//! token expiry and auth errors, jobs whose steps progress over (virtual) time, Basiq's sandbox
//! failure users, the 6-minute duplicate pause, refresh rules, purge, connector outages, and
//! Basiq-format errors — see `docs/emulator.md` for the full behaviour and the test logins.
//!
//! It deliberately does not depend on the SDK's models: if the SDK and the emulator shared a
//! misreading of Basiq's JSON, the tests would pass and production would not.
//!
//! ```
//! use std::time::Duration;
//! use basiq_core::clock::ManualClock;
//!
//! // Works from plain threads and from inside a tokio runtime alike.
//! let clock = ManualClock::starting_now();
//! let server = basiq_mock::MockServer::builder().clock(clock.clone()).start();
//! println!("{} {}", server.url(), server.api_key());
//! server.advance(Duration::from_secs(13)); // jobs started now have finished
//! assert_eq!(server.stats().token_requests, 0);
//! ```
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

mod admin;
mod auth;
mod clock;
mod connections;
mod connectors;
mod consent;
mod data;
mod data_routes;
mod error;
pub mod faults;
mod filter;
mod front;
mod ids;
mod jobs;
mod logins;
mod mfa;
mod page;
mod query;
mod rendered;
mod server;
mod state;
mod stats;
mod surface;
#[cfg(feature = "test-support")]
mod test_support;

/// The largest statement file `POST /users/{id}/statements` takes; a larger one is a 413
/// `payload-too-large`. Basiq documents no number; 5 MiB keeps tests of the 413 cheap.
pub const STATEMENT_MAX_BYTES: usize = 5 * 1024 * 1024;
mod users;

use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use basiq_core::clock::ManualClock;
use time::OffsetDateTime;

pub use clock::MockClock;
pub use data::MAX_TRANSACTIONS_PER_CONNECTION;
pub use faults::{Fault, FaultRule, FaultStats, Faults, RateLimitRule};
pub use state::RateLimit;
pub use stats::{LoggedRequest, Stats};
pub use surface::notify::{DeliveryAttempt, DeliveryState, WebhookDelivery, RETRY_DELAYS};

use state::{AppState, Config};

/// An error from an in-process control call (mirrors the Basiq error the HTTP API would give).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockError {
    /// HTTP status the equivalent request would get.
    pub status: u16,
    /// Basiq error code.
    pub code: String,
    /// Human-readable detail.
    pub detail: String,
}

impl fmt::Display for MockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.detail)
    }
}

impl std::error::Error for MockError {}

impl From<error::ApiError> for MockError {
    fn from(e: error::ApiError) -> Self {
        Self {
            status: e.status.as_u16(),
            code: e.code,
            detail: e.detail,
        }
    }
}

/// Configures a [`MockServer`].
#[derive(Debug, Clone)]
pub struct MockServerBuilder {
    port: u16,
    token_ttl: Duration,
    clock: Option<ManualClock>,
    api_key: Option<String>,
    redirect_url: Option<String>,
    rate_limit: Option<RateLimit>,
    token_limit: RateLimit,
    body_timeout: Duration,
    smart_cache: bool,
    transactions_per_connection: Option<u64>,
}

/// How long the emulator waits for a request body by default (see
/// [`MockServerBuilder::request_body_timeout`]).
pub const DEFAULT_REQUEST_BODY_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for MockServerBuilder {
    fn default() -> Self {
        Self {
            port: 0,
            token_ttl: Duration::from_secs(3600),
            clock: None,
            api_key: None,
            redirect_url: None,
            rate_limit: None,
            token_limit: RateLimit::new(1500, Duration::from_secs(300)),
            body_timeout: DEFAULT_REQUEST_BODY_TIMEOUT,
            smart_cache: false,
            transactions_per_connection: None,
        }
    }
}

impl MockServerBuilder {
    /// Port to bind on 127.0.0.1 (default 0 = any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Lifetime of issued tokens (default 3600 s, as Basiq).
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl;
        self
    }

    /// Drive time with a virtual clock shared with the test (and possibly the SDK). Without it
    /// the server uses wall-clock time, which [`MockServer::advance`] can still move forward.
    pub fn clock(mut self, clock: ManualClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The API key `/token` accepts, as sent after `Basic ` (default: a fixed, realistic
    /// base64 `uuid:uuid`).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Where the Consent UI stand-in redirects (default: the emulator's own `/consent/done`).
    pub fn redirect_url(mut self, url: impl Into<String>) -> Self {
        self.redirect_url = Some(url.into());
        self
    }

    /// A general request-rate limit (429 beyond it). Default: none.
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// The `/token` limit (default Basiq's 1,500 per 5 minutes; lower it to test throttling
    /// without sending 1,500 requests).
    pub fn token_rate_limit(mut self, requests: u32, per: Duration) -> Self {
        self.token_limit = RateLimit::new(requests, per);
        self
    }

    /// How long a request body may take to arrive (default [`DEFAULT_REQUEST_BODY_TIMEOUT`]).
    /// A client that declares a `Content-Length` and sends less gets `408` and the connection
    /// is closed, instead of holding it forever.
    pub fn request_body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// Runs Basiq's smart cache: every active connection (with an active consent) is refreshed
    /// in the background once a day at a stable, spread time, on virtual time, emitting
    /// `account.updated` / `transactions.updated` (delivered to subscribed webhooks). Default
    /// off, as at Basiq, where an application asks for it. Counted in
    /// [`Stats::background_refreshes`], never in [`Stats::refreshes`]. Time must move through
    /// [`MockServer::advance`] (or `/__admin/clock/advance`) for it to run.
    pub fn smart_cache(mut self, on: bool) -> Self {
        self.smart_cache = on;
        self
    }

    /// Gives every connection exactly `count` transactions (at most
    /// [`MAX_TRANSACTIONS_PER_CONNECTION`]; more is capped) instead of its natural ~1,400 over
    /// 548 days: the same accounts, with denser days, newest first as always. For tests and
    /// benches at volume (a million-transaction walk); `PUT /__admin/users/{id}/transactions`
    /// and `PUT /__admin/connections/{id}/transactions` set it for one user or connection.
    /// Each connection's data is generated once, on first use, and cached.
    pub fn transactions_per_connection(mut self, count: u64) -> Self {
        self.transactions_per_connection = Some(count.min(MAX_TRANSACTIONS_PER_CONNECTION));
        self
    }

    /// Starts the server; panics if the port cannot be bound (use [`Self::try_start`] to
    /// handle that).
    #[allow(clippy::expect_used)]
    pub fn start(self) -> MockServer {
        self.try_start().expect("basiq-mock: failed to start")
    }

    /// Starts the server on its own thread and tokio runtime, so it works the same from plain
    /// threads and from inside any async runtime (nothing here blocks on a future).
    pub fn try_start(self) -> std::io::Result<MockServer> {
        // Binding here (not on the server thread) means the port is listening — and the URL
        // known — before `start` returns; connections queue until the runtime accepts them.
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], self.port)))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let url = format!("http://{addr}");
        let api_key = self.api_key.unwrap_or_else(ids::default_api_key);
        let clock = match self.clock {
            Some(c) => MockClock::manual(c),
            None => MockClock::system(),
        };
        let config = Config {
            api_key: api_key.clone(),
            token_ttl: self.token_ttl,
            redirect_url: self.redirect_url,
            rate_limit: self.rate_limit,
            token_limit: self.token_limit,
            base_url: url.clone(),
            body_timeout: self.body_timeout,
            transactions_per_connection: self.transactions_per_connection,
        };
        let state = AppState::new(config, clock);
        if self.smart_cache {
            surface::notify::set_smart_cache(&state, true);
        }
        let app = server::router(state.clone());

        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel::<std::io::Result<tokio::runtime::Handle>>();
        let thread = std::thread::Builder::new()
            .name(format!("basiq-mock-{}", addr.port()))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("basiq-mock-worker")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let handle = rt.handle().clone();
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(handle));
                    tokio::select! {
                        result = axum::serve(front::FrontListener(listener), app) => {
                            if let Err(e) = result {
                                tracing::error!("basiq-mock server stopped: {e}");
                            }
                        }
                        _ = shutdown_rx => {}
                    }
                });
                // Open keep-alive connections are simply dropped: a test's server must not
                // outlive it waiting for idle clients.
                rt.shutdown_background();
            })?;
        let runtime = match ready_rx.recv() {
            Ok(Ok(handle)) => handle,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(std::io::Error::other("basiq-mock server thread died")),
        };
        Ok(MockServer {
            url,
            api_key,
            state,
            runtime,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }
}

/// A running emulator. Dropping it shuts the server down.
#[derive(Debug)]
pub struct MockServer {
    url: String,
    api_key: String,
    state: AppState,
    /// The server's runtime: the webhook pump sends its deliveries from there.
    runtime: tokio::runtime::Handle,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Starts a server with default settings on a random port.
    pub fn start() -> MockServer {
        Self::builder().start()
    }

    /// A builder for non-default settings.
    pub fn builder() -> MockServerBuilder {
        MockServerBuilder::default()
    }

    /// The base URL, e.g. `http://127.0.0.1:40123` (no trailing slash).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The API key `/token` accepts (send it as `Authorization: Basic <key>`, unchanged).
    pub fn api_key(&self) -> String {
        self.api_key.clone()
    }

    /// The server's clock.
    pub fn clock(&self) -> MockClock {
        self.state.inner.clock.clone()
    }

    /// The server's current (possibly virtual) time.
    pub fn now(&self) -> OffsetDateTime {
        self.state.now()
    }

    /// Moves the server's time forward (and that of a shared [`ManualClock`]), doing on the
    /// way whatever falls due: the smart cache's refreshes and webhook deliveries and retries,
    /// each at its own instant (see `docs/webhooks.md`). Blocks until done, so a webhook
    /// receiver must not run on the calling thread's runtime; from async code use
    /// [`advance_async`](Self::advance_async).
    pub fn advance(&self, by: Duration) {
        let target = self.target(by);
        let state = self.state.clone();
        let (tx, rx) = mpsc::channel();
        self.runtime.spawn(async move {
            surface::notify::run_until(&state, target).await;
            let _ = tx.send(());
        });
        let _ = rx.recv();
    }

    /// [`advance`](Self::advance) for async callers: the deliveries run on the emulator's
    /// runtime while the caller's runtime keeps serving (e.g. the app's webhook receiver).
    pub async fn advance_async(&self, by: Duration) {
        let target = self.target(by);
        let state = self.state.clone();
        let _ = self
            .runtime
            .spawn(async move { surface::notify::run_until(&state, target).await })
            .await;
    }

    fn target(&self, by: Duration) -> OffsetDateTime {
        self.now()
            .saturating_add(time::Duration::try_from(by).unwrap_or(time::Duration::MAX))
    }

    /// Turns the smart cache on or off from now on (like `POST /__admin/smart-cache`).
    pub fn set_smart_cache(&self, on: bool) {
        surface::notify::set_smart_cache(&self.state, on);
    }

    /// Every webhook message the emulator has queued, with its attempts, oldest first (like
    /// `GET /__admin/webhooks/deliveries`).
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        surface::notify::deliveries(&self.state)
    }

    /// The fault-injection registry and rate limiter (same as `/__admin/faults` and
    /// `/__admin/rate-limit`), for tests that prefer in-process control.
    pub fn faults(&self) -> std::sync::Arc<Faults> {
        self.state.inner.faults.clone()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.state.db().stats.clone()
    }

    /// Every request counted in [`stats`](Self::stats), oldest first, with the emulator's time
    /// of arrival (the newest 100,000 are kept), like `GET /__admin/requests`.
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.state
            .db()
            .request_log
            .entries
            .iter()
            .cloned()
            .collect()
    }

    /// Forgets users, connections, jobs, counters, connector statuses and armed fault rules
    /// (issued tokens stay valid; the clock and the configured rate limit are not touched).
    pub fn reset(&self) {
        self.state.reset();
    }

    /// Gives each of the user's connections (present and future) exactly `count` transactions,
    /// like `PUT /__admin/users/{id}/transactions` (see
    /// [`MockServerBuilder::transactions_per_connection`]).
    pub fn set_user_transactions(&self, user_id: &str, count: u64) -> Result<(), MockError> {
        admin::set_transactions(&self.state, admin::VolumeTarget::User(user_id), count)
            .map_err(MockError::from)
    }

    /// Gives one connection exactly `count` transactions, like
    /// `PUT /__admin/connections/{id}/transactions`.
    pub fn set_connection_transactions(
        &self,
        connection_id: &str,
        count: u64,
    ) -> Result<(), MockError> {
        admin::set_transactions(
            &self.state,
            admin::VolumeTarget::Connection(connection_id),
            count,
        )
        .map_err(MockError::from)
    }

    /// Sets a connector's status (`operational`, `degraded-performance`, `partial-outage`,
    /// `major-outage`, `under-maintenance`), like `POST /__admin/connectors/{id}`.
    pub fn set_connector_status(&self, connector_id: &str, status: &str) -> Result<(), MockError> {
        admin::set_connector_status(&self.state, connector_id, status)
            .map(|_| ())
            .map_err(MockError::from)
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
