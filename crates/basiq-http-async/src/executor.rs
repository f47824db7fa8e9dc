//! [`AsyncExecutor`]: runs any [`Operation`] with a shared, single-flight server token.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use basiq_core::clock::Clock;
use basiq_core::engine::auth::ExecutorConfig;
use basiq_core::engine::executor::{
    AuthPlan, AuthStep, ExecutorCore, Failure, PendingFetch, RetryStep, Retrying,
};
use basiq_core::engine::operation::Operation;
use basiq_core::engine::telemetry::{self, SendCount};
use basiq_core::engine::transport::{AsyncTransport, BoxFuture, HttpRequest, HttpResponse};
use basiq_core::error::Error;
use basiq_core::id::UserId;
use basiq_core::policy::fleet::{AsyncFleet, FleetStep};
use basiq_core::policy::token::{TokenLease, TokenResponse};
use basiq_core::secret::AccessToken;
use futures_util::future::Either;
use futures_util::FutureExt as _;
use time::OffsetDateTime;
use tracing::Instrument;
use url::Url;

/// How the executor waits between retries. The default is `tokio::time::sleep`; a host on
/// another runtime supplies its own with [`AsyncExecutor::with_sleep`], and tests can make it
/// advance a virtual clock instead of waiting.
pub type Sleep = Arc<dyn Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync>;

/// Runs operations against Basiq: token from the shared cache, bearer, send, parse, ids on errors,
/// one re-authentication when Basiq says the token expired, and retries of idempotent requests.
///
/// Cheap to clone; clones share the token cache and the retry budget, so a whole process
/// authenticates once per token lifetime however many tasks call it (Basiq: "cache one token for
/// global use").
///
/// **Single flight.** When the cache needs a token, callers queue on a `tokio::sync::Mutex<()>`
/// *fetch gate*; the first one fetches, the others re-check the cache after acquiring the gate and
/// find the fresh token. The gate is released when its guard drops, so a caller cancelled
/// mid-fetch (its future dropped by a `select!` or a timeout) simply lets the next waiter fetch —
/// nobody waits on a fetch that no longer exists. Only the `tokio` *sync* primitives are used, so
/// the executor runs on any async runtime (the reqwest transport and the default [`Sleep`] need
/// tokio).
///
/// **Retries.** An expired-token answer is re-authenticated and repeated once: Basiq refused the
/// request before acting on it, so this is safe even for a non-idempotent operation. Beyond that,
/// the [`RetryPolicy`](basiq_core::policy::retry::RetryPolicy) of the configuration repeats *idempotent*
/// operations (GET, DELETE, `/token`) after transport errors, 429 and 5xx, with jittered backoff
/// and a client-wide budget. A non-idempotent operation (creating a user, a refresh) is never
/// repeated: after an ambiguous failure the caller reconciles instead.
#[derive(Clone)]
pub struct AsyncExecutor {
    inner: Arc<Inner>,
    sleep: Sleep,
}

/// The shared, IO-free part ([`ExecutorCore`]: token state, retry budget, decisions) plus what
/// only this executor has: its transport and a `tokio` fetch gate.
struct Inner {
    core: ExecutorCore,
    transport: Arc<dyn AsyncTransport>,
    fetch_gate: tokio::sync::Mutex<()>,
    /// Shares the server token with the app's other instances (fleet mode), if configured.
    fleet: Option<AsyncFleet>,
}

fn tokio_sleep() -> Sleep {
    Arc::new(|d| Box::pin(tokio::time::sleep(d)))
}

impl AsyncExecutor {
    /// An executor over `transport`. The configuration is validated (non-empty key, usable base
    /// URL) so mistakes surface as [`Error::Config`] here rather than on the first call.
    pub fn new(config: ExecutorConfig, transport: Arc<dyn AsyncTransport>) -> Result<Self, Error> {
        Self::in_fleet(config, transport, None)
    }

    /// An executor that shares its server token with the app's other instances through
    /// `fleet` (one `/token` per lifetime for the whole fleet; see [`basiq_core::policy::fleet`]). The
    /// store is consulted only inside the fetch gate, with `.await` (never blocking a runtime
    /// worker): a request with a cached token costs no round trip to it.
    pub fn in_fleet(
        config: ExecutorConfig,
        transport: Arc<dyn AsyncTransport>,
        fleet: Option<AsyncFleet>,
    ) -> Result<Self, Error> {
        Ok(Self {
            inner: Arc::new(Inner {
                core: ExecutorCore::new(config, fastrand::f64)?.with_url_form(transport.url_form()),
                transport,
                fetch_gate: tokio::sync::Mutex::new(()),
                fleet,
            }),
            sleep: tokio_sleep(),
        })
    }

    /// Replaces how the executor waits between retries (see [`Sleep`]).
    pub fn with_sleep(
        mut self,
        sleep: impl Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync + 'static,
    ) -> Self {
        self.sleep = Arc::new(sleep);
        self
    }

    /// The API root requests are built against.
    pub fn base_url(&self) -> &Url {
        self.inner.core.base_url()
    }

    /// Waits `duration` with the executor's [`Sleep`] (`tokio::time::sleep` unless replaced with
    /// [`with_sleep`](Self::with_sleep)). Higher layers that pace themselves — following a job —
    /// wait through this, so one injected sleep makes a whole client run on virtual time.
    pub fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        (self.sleep)(duration)
    }

    /// The clock the executor reads `now` from (token lifetimes, retry budget); higher layers use
    /// the same one so the whole client agrees on the time.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        self.inner.core.clock()
    }

    /// Runs one operation. Every error carries the operation's ids ([`Operation::context`]).
    pub async fn execute<O: Operation>(&self, op: O) -> Result<O::Output, Error> {
        // The ids are copied into the error only when there is one; the output is returned
        // as it is (not moved through a `map_err`).
        match self.run(&op).await {
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
    /// session, which needs the token's full lifetime ahead of it; such calls are rare (once per
    /// consent flow) so they cost nothing against the `/token` rate limit; and a per-user cache
    /// would grow with the user base. Basiq's "cache one token globally" rule is about the
    /// *server* token, which this call never touches.
    pub async fn client_token(&self, user_id: UserId) -> Result<AccessToken, Error> {
        let op = self.inner.core.client_token_request(user_id);
        self.execute(op).await.map(|t| t.access_token)
    }

    async fn run<O: Operation>(&self, op: &O) -> Result<O::Output, Error> {
        let retrying = self.inner.core.retrying(op.is_idempotent());
        let deadline = retrying.deadline();
        let sends = &SendCount::new();
        self.retrying(retrying, |now| async move {
            // The rare plans (`POST /token` itself, an MFA answer) are boxed: every request's
            // future is as large as its largest branch, and the common one is small.
            match self.inner.core.auth_plan(op) {
                AuthPlan::Unauthenticated => {
                    Box::pin(self.run_unauthenticated_within(op, deadline, Some(now), sends))
                        .await
                        .map_err(Failure::Retryable)
                }
                AuthPlan::ServerToken => self.attempt(op, now, deadline, sends).await,
                AuthPlan::ClientToken(fetch) => {
                    Box::pin(self.attempt_as_client(op, fetch, deadline, sends)).await
                }
            }
        })
        .await
    }

    /// One attempt with a fresh `CLIENT_ACCESS` token (`POST /jobs/{id}/mfa`): the token is
    /// fetched for this attempt (its own retries apply to the fetch), used once, and dropped.
    async fn attempt_as_client<O: Operation>(
        &self,
        op: &O,
        fetch: basiq_core::policy::token::PostToken,
        deadline: Option<OffsetDateTime>,
        sends: &SendCount,
    ) -> Result<O::Output, Failure> {
        let core = &self.inner.core;
        // Build first: invalid input fails before any token is fetched.
        let request = core.request(op).map_err(Failure::Final)?;
        // Not through `execute`: that would make this async fn (indirectly) recursive.
        let (fetch, fetch_sends) = (&fetch, &SendCount::new());
        let token = self
            .retrying(core.retrying(fetch.is_idempotent()), |now| async move {
                self.run_unauthenticated_within(fetch, deadline, Some(now), fetch_sends)
                    .await
                    .map_err(Failure::Retryable)
            })
            .await
            .map_err(|e| Failure::Final(e.with_context(&fetch.context())))?;
        let request = core
            .client_authorized(request, &token.access_token)
            .map_err(Failure::Final)?;
        let answer = match self
            .send_within(request, deadline, None, || op.context(), sends)
            .await
        {
            Ok(response) => op.parse(response),
            Err(e) => Err(e),
        };
        answer.map_err(|e| Failure::Retryable(core.scrubbed(e, Some(&token.access_token))))
    }

    /// Repeats `attempt`, sleeping in between, for as long as `retrying` says so. Each
    /// attempt is handed the time it starts at ([`Retrying::attempt_time`]).
    async fn retrying<T, F, Fut>(
        &self,
        mut retrying: Retrying<'_>,
        mut attempt: F,
    ) -> Result<T, Error>
    where
        F: FnMut(OffsetDateTime) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        loop {
            // A success is returned as it is: the output (a whole model) is not moved through
            // the retry decision.
            let failed = match attempt(retrying.attempt_time()).await {
                Ok(output) => return Ok(output),
                Err(failure) => Err(failure),
            };
            // The step is taken apart before the wait, so the decision (which can hold a whole
            // output) is not kept in this future while it sleeps.
            let delay = match retrying.step(failed) {
                RetryStep::Done(result) => return result,
                RetryStep::Sleep(delay) => delay,
            };
            (self.sleep)(delay).await;
        }
    }

    /// One authenticated attempt starting at `now`, including the single re-authentication.
    async fn attempt<O: Operation>(
        &self,
        op: &O,
        now: OffsetDateTime,
        deadline: Option<OffsetDateTime>,
        sends: &SendCount,
    ) -> Result<O::Output, Failure> {
        let core = &self.inner.core;
        // Build first: invalid input fails before any token is fetched.
        let request = core.request(op).map_err(Failure::Final)?;
        // Every request's future is as large as what it holds across its waits. The request is
        // handed to the transport before the first one, and the rare waits (a token fetch, the
        // re-authentication) are boxed with what they need moved in: a request that finds the
        // token cached holds only the lease and the transport's boxed future.
        // A cached token is decided at the attempt's time, and the request goes at once; after
        // waiting for a token, the request's limits read the clock again.
        let (request, lease, sent_at) = match core.lease_at(now) {
            Ok(lease) => (request, lease, Some(now)),
            Err(pending) => Box::pin(async move {
                self.fetch_lease(pending)
                    .await
                    .map(|lease| (request, lease, None))
            })
            .await
            .map_err(Failure::Final)?,
        };
        let answer = match self
            .send_with(request, &lease, op, deadline, sent_at, sends)
            .await
        {
            Ok(output) => return Ok(output),
            Err(error) => Err(error),
        };
        if let AuthStep::Done(result) = core.answered(&lease, answer) {
            return result;
        }
        Box::pin(self.reauthenticated(op, deadline, sends)).await
    }

    /// The single repeat after Basiq said the token expired: a fresh lease, the request again.
    async fn reauthenticated<O: Operation>(
        &self,
        op: &O,
        deadline: Option<OffsetDateTime>,
        sends: &SendCount,
    ) -> Result<O::Output, Failure> {
        let lease = self.lease().await.map_err(Failure::Final)?;
        let request = self.inner.core.request(op).map_err(Failure::Final)?;
        self.send_with(request, &lease, op, deadline, None, sends)
            .await
            .map_err(Failure::Retryable)
    }

    /// Operations that carry their own credentials (`POST /token`), within what is left of
    /// `deadline`, sent at `now` if known. Kept apart from `attempt` so fetching a token never
    /// recurses into the token logic.
    async fn run_unauthenticated_within<O: Operation>(
        &self,
        op: &O,
        deadline: Option<OffsetDateTime>,
        now: Option<OffsetDateTime>,
        sends: &SendCount,
    ) -> Result<O::Output, Error> {
        let request = self.inner.core.request(op)?;
        op.parse(
            self.send_within(request, deadline, now, || op.context(), sends)
                .await?,
        )
    }

    /// Authorizes `request` with `lease`, sends it and parses the answer.
    ///
    /// Not an `async fn`: the request is authorized and handed to the transport when this is
    /// called, and the answer is parsed in a [`map`](futures_util::FutureExt::map) over the transport's
    /// future, so the future returned holds that (boxed) future and three references. An
    /// `async` block awaiting it would hold it twice (rustc keeps a captured future and the
    /// one being awaited apart), and an `async fn` would hold the request too.
    fn send_with<'a, O: Operation>(
        &'a self,
        mut request: HttpRequest,
        lease: &'a TokenLease,
        op: &'a O,
        deadline: Option<OffsetDateTime>,
        now: Option<OffsetDateTime>,
        sends: &SendCount,
    ) -> impl Future<Output = Result<O::Output, Error>> + 'a {
        if let Err(e) = lease.authorize(&mut request) {
            // Boxed, so this rare branch does not make every request's future error-sized.
            return Either::Right(std::future::ready(Box::new(e)).map(|e| Err(*e)));
        }
        Either::Left(
            self.send_within(request, deadline, now, || op.context(), sends)
                .map(move |answer| {
                    // Scrubbed here, where the token that was sent is known. The expired-token
                    // check after this only reads the status and code, which scrubbing leaves
                    // alone unless they echo it.
                    answer
                        .and_then(|response| op.parse(response))
                        .map_err(|e| self.inner.core.scrubbed(e, Some(&lease.token)))
                }),
        )
    }

    /// Sends `request` inside its `basiq.http` span ([`telemetry::request_span`]) with the body
    /// cap and what is left of `deadline` attached
    /// ([`RequestLimits`](basiq_core::engine::transport::RequestLimits)), and checks the answer's
    /// size. `now`: the time it is sent at, when the caller just read it (else the clock's).
    ///
    /// Not an `async fn`, for the reason [`send_with`](Self::send_with) gives: the span is opened
    /// and the request handed to the transport when this is called.
    fn send_within<'a>(
        &'a self,
        mut request: HttpRequest,
        deadline: Option<OffsetDateTime>,
        now: Option<OffsetDateTime>,
        context: impl FnOnce() -> basiq_core::ErrorContext,
        sends: &SendCount,
    ) -> impl Future<Output = Result<HttpResponse, Error>> + 'a {
        let core = &self.inner.core;
        let span = telemetry::request_span_with(&request, self.base_url(), context, sends.next());
        request.set_limits(core.limits_at(deadline, now));
        let sending = self.inner.transport.send(request).instrument(span.clone());
        sending.map(move |answer| {
            let answer = answer
                .map_err(Error::transport)
                .and_then(|response| core.received(response));
            match &answer {
                Ok(response) => {
                    telemetry::record_response(&span, response.status(), response.body());
                }
                Err(error) => telemetry::record_failure(&span, error),
            }
            answer
        })
    }

    /// The server token to use now, fetching it (single flight) when the cache says so.
    async fn lease(&self) -> Result<TokenLease, Error> {
        match self.inner.core.lease() {
            Ok(lease) => Ok(lease),
            // Cold (about once an hour): the gate, the fetch, the fleet store. Boxed, so the
            // future of every request that finds the token cached stays small.
            Err(pending) => Box::pin(self.fetch_lease(pending)).await,
        }
    }

    /// [`lease`](Self::lease) when the cache wants a token: the fetch gate, then the fetch.
    async fn fetch_lease(&self, pending: PendingFetch) -> Result<TokenLease, Error> {
        let core = &self.inner.core;
        let _gate = match self.inner.fetch_gate.try_lock() {
            Ok(gate) => gate,
            Err(_) => match core.while_gate_busy(&pending) {
                Some(lease) => return Ok(lease),
                None => self.inner.fetch_gate.lock().await,
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
            Some(fleet) => self.fleet_lease(fleet, pending).await,
            None => core.token_fetched(self.fetch_token(&pending).await),
        }
    }

    /// `POST /token` with the token retry loop.
    async fn fetch_token(
        &self,
        pending: &PendingFetch,
    ) -> Result<(TokenResponse, OffsetDateTime), Error> {
        let core = &self.inner.core;
        let op = core.server_token_request();
        let op = &op;
        self.retrying(core.token_retrying(pending), |requested_at| async move {
            self.run_unauthenticated_within(op, None, Some(requested_at), &SendCount::new())
                .await
                .map(|token| (token, requested_at))
                .map_err(Failure::Retryable)
        })
        .await
    }

    /// Runs basiq-core's cross-process fetch flow against the fleet's store.
    async fn fleet_lease(
        &self,
        fleet: &AsyncFleet,
        pending: PendingFetch,
    ) -> Result<TokenLease, Error> {
        let mut flow = self.inner.core.fleet_fetch(&fleet.config, pending);
        let mut step = flow.start();
        loop {
            step = match step {
                FleetStep::Store(op) => flow.on_store(fleet.store.execute(&op).await),
                FleetStep::Sleep(pause) => {
                    (self.sleep)(pause).await;
                    flow.on_slept()
                }
                FleetStep::FetchToken => flow.on_fetched(self.fetch_token(&pending).await),
                FleetStep::Done(result) => return result,
            };
        }
    }

    /// The fleet this executor shares its token with, if any.
    pub fn fleet(&self) -> Option<&AsyncFleet> {
        self.inner.fleet.as_ref()
    }
}

impl fmt::Debug for AsyncExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner
            .core
            .fmt_executor(f, "AsyncExecutor", &self.inner.transport)
    }
}
