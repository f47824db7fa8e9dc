//! [`BlockingExecutor`]: runs any [`Operation`] with a shared, single-flight server token.

use std::fmt;
use std::sync::{Arc, Mutex, TryLockError};
use std::time::Duration;

use basiq_core::clock::Clock;
use basiq_core::engine::auth::ExecutorConfig;
use basiq_core::engine::executor::{
    AuthPlan, AuthStep, ExecutorCore, Failure, PendingFetch, RetryStep, Retrying,
};
use basiq_core::engine::operation::Operation;
use basiq_core::engine::telemetry::{self, SendCount};
use basiq_core::engine::transport::{BlockingTransport, HttpRequest, HttpResponse};
use basiq_core::error::Error;
use basiq_core::id::UserId;
use basiq_core::policy::fleet::{BlockingFleet, FleetStep};
use basiq_core::policy::token::{TokenLease, TokenResponse};
use basiq_core::secret::AccessToken;
use time::OffsetDateTime;
use url::Url;

/// How the executor waits between retries: `std::thread::sleep` by default; tests can make it
/// advance a virtual clock instead (see [`BlockingExecutor::with_sleep`]).
pub type Sleep = Arc<dyn Fn(Duration) + Send + Sync>;

/// Runs operations against Basiq from ordinary threads: token from the shared cache, bearer, send,
/// parse, ids on errors, one re-authentication when Basiq says the token expired, and retries of
/// idempotent requests.
///
/// Cheap to clone; clones share the token cache and the retry budget, so all threads of a process
/// authenticate once per token lifetime (Basiq: "cache one token for global use").
///
/// **Single flight.** When the cache needs a token, threads queue on a `std::sync::Mutex<()>`
/// *fetch gate*; the first fetches, the others re-check the cache after acquiring the gate and
/// find the fresh token. No async runtime is involved, so this client is safe to call from any
/// thread — including a thread owned by an async host, unlike `block_on`-based clients.
///
/// **Retries.** An expired-token answer is re-authenticated and repeated once (Basiq refused the
/// request before acting on it, so this is safe even for a non-idempotent operation). Beyond
/// that, the configuration's [`RetryPolicy`](basiq_core::policy::retry::RetryPolicy) repeats
/// *idempotent* operations after transport errors, 429 and 5xx, with jittered backoff and a
/// client-wide budget. A non-idempotent operation is never repeated.
#[derive(Clone)]
pub struct BlockingExecutor {
    inner: Arc<Inner>,
    sleep: Sleep,
}

/// The shared, IO-free part ([`ExecutorCore`]: token state, retry budget, decisions) plus what
/// only this executor has: its transport and a `std` fetch gate.
struct Inner {
    core: ExecutorCore,
    transport: Arc<dyn BlockingTransport>,
    fetch_gate: Mutex<()>,
    /// Shares the server token with the app's other instances (fleet mode), if configured.
    fleet: Option<BlockingFleet>,
}

impl BlockingExecutor {
    /// An executor over `transport`. The configuration is validated (non-empty key, usable base
    /// URL) so mistakes surface as [`Error::Config`] here rather than on the first call.
    pub fn new(
        config: ExecutorConfig,
        transport: Arc<dyn BlockingTransport>,
    ) -> Result<Self, Error> {
        Self::in_fleet(config, transport, None)
    }

    /// An executor that shares its server token with the app's other instances through
    /// `fleet` (one `/token` per lifetime for the whole fleet; see
    /// [`basiq_core::policy::fleet`]). Consulted only inside the fetch gate: a request with a cached
    /// token costs no round trip to the fleet's store.
    pub fn in_fleet(
        config: ExecutorConfig,
        transport: Arc<dyn BlockingTransport>,
        fleet: Option<BlockingFleet>,
    ) -> Result<Self, Error> {
        Ok(Self {
            inner: Arc::new(Inner {
                core: ExecutorCore::new(config, fastrand::f64)?.with_url_form(transport.url_form()),
                transport,
                fetch_gate: Mutex::new(()),
                fleet,
            }),
            sleep: Arc::new(std::thread::sleep),
        })
    }

    /// Replaces how the executor waits between retries (see [`Sleep`]).
    pub fn with_sleep(mut self, sleep: impl Fn(Duration) + Send + Sync + 'static) -> Self {
        self.sleep = Arc::new(sleep);
        self
    }

    /// The API root requests are built against.
    pub fn base_url(&self) -> &Url {
        self.inner.core.base_url()
    }

    /// Waits `duration` with the executor's [`Sleep`] (`std::thread::sleep` unless replaced with
    /// [`with_sleep`](Self::with_sleep)). Higher layers that pace themselves — following a job —
    /// wait through this, so one injected sleep makes a whole client run on virtual time.
    pub fn sleep(&self, duration: Duration) {
        (self.sleep)(duration);
    }

    /// The clock the executor reads `now` from (token lifetimes, retry budget); higher layers use
    /// the same one so the whole client agrees on the time.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        self.inner.core.clock()
    }

    /// Runs one operation. Every error carries the operation's ids ([`Operation::context`]).
    pub fn execute<O: Operation>(&self, op: O) -> Result<O::Output, Error> {
        // The ids are copied into the error only when there is one; the output is returned
        // as it is (not moved through a `map_err`).
        match self.run(&op) {
            Ok(output) => Ok(output),
            // Whatever a server echoed (the key it was sent) never reaches a log line.
            Err(e) => Err(self
                .inner
                .core
                .scrubbed(e, None)
                .with_context(&op.context())),
        }
    }

    /// A `CLIENT_ACCESS` token bound to `user_id`, for the Consent UI
    /// (`https://consent.basiq.io/home?token=…`).
    ///
    /// Fetched fresh on every call and never cached: it is handed to a browser for one consent
    /// session, which needs the token's full lifetime ahead of it; such calls are rare, and a
    /// per-user cache would grow with the user base. The server token cache is not touched.
    pub fn client_token(&self, user_id: UserId) -> Result<AccessToken, Error> {
        let op = self.inner.core.client_token_request(user_id);
        self.execute(op).map(|t| t.access_token)
    }

    fn run<O: Operation>(&self, op: &O) -> Result<O::Output, Error> {
        let retrying = self.inner.core.retrying(op.is_idempotent());
        let deadline = retrying.deadline();
        let sends = SendCount::new();
        self.retrying(retrying, |now| match self.inner.core.auth_plan(op) {
            AuthPlan::Unauthenticated => self
                .run_unauthenticated_within(op, deadline, Some(now), &sends)
                .map_err(Failure::Retryable),
            AuthPlan::ServerToken => self.attempt(op, now, deadline, &sends),
            AuthPlan::ClientToken(fetch) => self.attempt_as_client(op, fetch, deadline, &sends),
        })
    }

    /// One attempt with a fresh `CLIENT_ACCESS` token (`POST /jobs/{id}/mfa`): the token is
    /// fetched for this attempt (its own retries apply to the fetch), used once, and dropped.
    fn attempt_as_client<O: Operation>(
        &self,
        op: &O,
        fetch: basiq_core::policy::token::PostToken,
        deadline: Option<OffsetDateTime>,
        sends: &SendCount,
    ) -> Result<O::Output, Failure> {
        let core = &self.inner.core;
        // Build first: invalid input fails before any token is fetched.
        let request = core.request(op).map_err(Failure::Final)?;
        let fetch_sends = SendCount::new();
        let token = self
            .retrying(core.retrying(fetch.is_idempotent()), |now| {
                self.run_unauthenticated_within(&fetch, deadline, Some(now), &fetch_sends)
                    .map_err(Failure::Retryable)
            })
            .map_err(|e| Failure::Final(e.with_context(&fetch.context())))?;
        let request = core
            .client_authorized(request, &token.access_token)
            .map_err(Failure::Final)?;
        self.send_within(request, deadline, None, || op.context(), sends)
            .and_then(|response| op.parse(response))
            .map_err(|e| Failure::Retryable(core.scrubbed(e, Some(&token.access_token))))
    }

    /// Repeats `attempt`, sleeping in between, for as long as `retrying` says so. Each
    /// attempt is handed the time it starts at ([`Retrying::attempt_time`]).
    fn retrying<T>(
        &self,
        mut retrying: Retrying<'_>,
        mut attempt: impl FnMut(OffsetDateTime) -> Result<T, Failure>,
    ) -> Result<T, Error> {
        loop {
            // A success is returned as it is: the output (a whole model) is not moved through
            // the retry decision.
            let failed = match attempt(retrying.attempt_time()) {
                Ok(output) => return Ok(output),
                Err(failure) => Err(failure),
            };
            match retrying.step(failed) {
                RetryStep::Done(result) => return result,
                RetryStep::Sleep(delay) => (self.sleep)(delay),
            }
        }
    }

    /// One authenticated attempt starting at `now`, including the single re-authentication.
    fn attempt<O: Operation>(
        &self,
        op: &O,
        now: OffsetDateTime,
        deadline: Option<OffsetDateTime>,
        sends: &SendCount,
    ) -> Result<O::Output, Failure> {
        let core = &self.inner.core;
        // Build first: invalid input fails before any token is fetched.
        let request = core.request(op).map_err(Failure::Final)?;
        // A cached token is decided at the attempt's time, and the request goes at once; after
        // waiting for a token, the request's limits read the clock again.
        let (lease, sent_at) = match core.lease_at(now) {
            Ok(lease) => (lease, Some(now)),
            Err(pending) => (self.fetch_lease(pending).map_err(Failure::Final)?, None),
        };
        let answer = match self.send_with(request, &lease, op, deadline, sent_at, sends) {
            Ok(output) => return Ok(output),
            Err(error) => Err(error),
        };
        match core.answered(&lease, answer) {
            AuthStep::Done(result) => result,
            AuthStep::Reauthenticate => {
                let lease = self.lease().map_err(Failure::Final)?;
                let request = core.request(op).map_err(Failure::Final)?;
                self.send_with(request, &lease, op, deadline, None, sends)
                    .map_err(Failure::Retryable)
            }
        }
    }

    /// Operations that carry their own credentials (`POST /token`), within what is left of
    /// `deadline`, sent at `now` if known.
    fn run_unauthenticated_within<O: Operation>(
        &self,
        op: &O,
        deadline: Option<OffsetDateTime>,
        now: Option<OffsetDateTime>,
        sends: &SendCount,
    ) -> Result<O::Output, Error> {
        let request = self.inner.core.request(op)?;
        op.parse(self.send_within(request, deadline, now, || op.context(), sends)?)
    }

    fn send_with<O: Operation>(
        &self,
        mut request: HttpRequest,
        lease: &TokenLease,
        op: &O,
        deadline: Option<OffsetDateTime>,
        now: Option<OffsetDateTime>,
        sends: &SendCount,
    ) -> Result<O::Output, Error> {
        lease.authorize(&mut request)?;
        // Scrubbed here, where the token that was sent is known.
        let scrubbed = |e| self.inner.core.scrubbed(e, Some(&lease.token));
        let response = self
            .send_within(request, deadline, now, || op.context(), sends)
            .map_err(scrubbed)?;
        match op.parse(response) {
            Ok(output) => Ok(output),
            Err(e) => Err(scrubbed(e)),
        }
    }

    /// Sends `request` inside its `basiq.http` span ([`telemetry::request_span`]) with the body
    /// cap and what is left of `deadline` attached
    /// ([`RequestLimits`](basiq_core::engine::transport::RequestLimits)), and checks the answer's
    /// size. `now`: the time it is sent at, when the caller just read it (else the clock's).
    fn send_within(
        &self,
        mut request: HttpRequest,
        deadline: Option<OffsetDateTime>,
        now: Option<OffsetDateTime>,
        context: impl FnOnce() -> basiq_core::ErrorContext,
        sends: &SendCount,
    ) -> Result<HttpResponse, Error> {
        let core = &self.inner.core;
        let span = telemetry::request_span_with(&request, self.base_url(), context, sends.next());
        // Limited in place and sent from here, not moved into a closure: the request is
        // several hundred bytes, each move a copy.
        request.set_limits(core.limits_at(deadline, now));
        let answer = {
            let _in_span = span.enter();
            self.inner
                .transport
                .send(request)
                .map_err(Error::transport)
                .and_then(|response| core.received(response))
        };
        match &answer {
            Ok(response) => telemetry::record_response(&span, response.status(), response.body()),
            Err(error) => telemetry::record_failure(&span, error),
        }
        answer
    }

    /// The server token to use now, fetching it (single flight) when the cache says so.
    fn lease(&self) -> Result<TokenLease, Error> {
        match self.inner.core.lease() {
            Ok(lease) => Ok(lease),
            Err(pending) => self.fetch_lease(pending),
        }
    }

    /// [`lease`](Self::lease) when the cache wants a token: the fetch gate, then the fetch.
    fn fetch_lease(&self, pending: PendingFetch) -> Result<TokenLease, Error> {
        let core = &self.inner.core;
        // A poisoned gate only means a fetching thread panicked; the gate guards no data.
        let _gate = match self.inner.fetch_gate.try_lock() {
            Ok(gate) => gate,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => match core.while_gate_busy(&pending) {
                Some(lease) => return Ok(lease),
                None => self
                    .inner
                    .fetch_gate
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
            },
        };
        // Re-check: whoever held the gate before us may have stored a token, or another process
        // may have saved one to the shared token store.
        let pending = match core.lease_in_gate() {
            Ok(lease) => return Ok(lease),
            Err(pending) => pending,
        };
        // A fetch that failed while we waited (or whose backoff runs) is shared, not repeated.
        if let Some(failure) = core.shared_failure(&pending) {
            return Err(failure);
        }
        match &self.inner.fleet {
            Some(fleet) => self.fleet_lease(fleet, pending),
            None => core.token_fetched(self.fetch_token(&pending)),
        }
    }

    /// `POST /token` with the token retry loop.
    fn fetch_token(
        &self,
        pending: &PendingFetch,
    ) -> Result<(TokenResponse, OffsetDateTime), Error> {
        let core = &self.inner.core;
        let op = core.server_token_request();
        self.retrying(core.token_retrying(pending), |requested_at| {
            self.run_unauthenticated_within(&op, None, Some(requested_at), &SendCount::new())
                .map(|token| (token, requested_at))
                .map_err(Failure::Retryable)
        })
    }

    /// Runs basiq-core's cross-process fetch flow against the fleet's store.
    fn fleet_lease(
        &self,
        fleet: &BlockingFleet,
        pending: PendingFetch,
    ) -> Result<TokenLease, Error> {
        let mut flow = self.inner.core.fleet_fetch(&fleet.config, pending);
        let mut step = flow.start();
        loop {
            step = match step {
                FleetStep::Store(op) => flow.on_store(fleet.store.execute(&op)),
                FleetStep::Sleep(pause) => {
                    (self.sleep)(pause);
                    flow.on_slept()
                }
                FleetStep::FetchToken => flow.on_fetched(self.fetch_token(&pending)),
                FleetStep::Done(result) => return result,
            };
        }
    }

    /// The fleet this executor shares its token with, if any.
    pub fn fleet(&self) -> Option<&BlockingFleet> {
        self.inner.fleet.as_ref()
    }
}

impl fmt::Debug for BlockingExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner
            .core
            .fmt_executor(f, "BlockingExecutor", &self.inner.transport)
    }
}
