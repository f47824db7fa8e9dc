//! The run loop both executors share, without IO (in the spirit of rustls and quinn-proto).
//!
//! An executor sends requests and waits; everything it *decides* lives here: whether to retry
//! and after how long ([`Retrying`]), whether an answer means "re-authenticate once"
//! ([`ExecutorCore::answered`]), whether the cached token can be used or who fetches a new one
//! ([`ExecutorCore::lease`], [`ExecutorCore::while_gate_busy`], and
//! [`ExecutorCore::lease_in_gate`] with the fleet's shared [`TokenStore`]), and what to store
//! afterwards ([`ExecutorCore::token_fetched`]). The async and the blocking executor drive these steps with
//! their own sleep, fetch gate and transport, so the two cannot drift apart.
//!
//! A driver's loop, in outline (the blocking flavour; the async one adds `.await`):
//!
//! ```text
//! let mut retrying = core.retrying(op.is_idempotent()); // reads the clock: the call's start
//! loop {
//!     let now = retrying.attempt_time();                 // the start, later the clock again
//!     match retrying.step(attempt(now)) {                // attempt -> Result<T, Failure>
//!         RetryStep::Done(result) => return result,
//!         RetryStep::Sleep(delay) => sleep(delay),
//!     }
//! }
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use url::Url;

use crate::clock::Clock;
use crate::engine::auth::{ExecutorConfig, RetryState, TokenState};
use crate::engine::operation::{ApiBase, Authentication, Operation};
use crate::engine::transport::{HttpRequest, HttpResponse, RequestLimits, UrlForm};
use crate::error::Error;
use crate::error::{TransportError, TransportErrorKind};
use crate::id::UserId;
use crate::policy::fleet::{FleetConfig, FleetTokenFetch};
use crate::policy::token::{
    authorize_bearer, FetchReason, PostToken, StoredToken, TokenDecision, TokenLease,
    TokenResponse, TokenScope, TokenStore,
};
use crate::secret::{AccessToken, ApiKey};

/// How one attempt failed, as an executor reports it to [`Retrying::step`].
#[derive(Debug)]
pub enum Failure {
    /// The retry policy may repeat the attempt.
    Retryable(Error),
    /// Return as is (e.g. the request could not be built, or getting a token failed after its own
    /// retries).
    Final(Error),
}

/// What an executor does next after an attempt (see [`Retrying::step`]).
#[derive(Debug)]
pub enum RetryStep<T> {
    /// Wait this long, then run the attempt again.
    Sleep(Duration),
    /// Stop and return this.
    Done(Result<T, Error>),
}

/// What an executor does after an authenticated request was answered (see
/// [`ExecutorCore::answered`]).
#[derive(Debug)]
pub enum AuthStep<T> {
    /// The attempt is over with this result.
    Done(Result<T, Failure>),
    /// Basiq rejected the token as expired: get a lease again, rebuild the request and send it
    /// once more; that second answer is final for this attempt ([`Failure::Retryable`] on error).
    Reauthenticate,
}

/// How an executor authenticates one attempt at an operation (see [`ExecutorCore::auth_plan`]).
#[derive(Debug)]
pub enum AuthPlan {
    /// Send as built: the request carries its own credentials (`POST /token`).
    Unauthenticated,
    /// Lease the cached server token ([`ExecutorCore::lease`]), send, and re-authenticate once
    /// if Basiq says it expired ([`ExecutorCore::answered`]).
    ServerToken,
    /// Fetch a fresh `CLIENT_ACCESS` token with this `POST /token` (retried like any idempotent
    /// request), authorize with it ([`ExecutorCore::client_authorized`]) and send once per
    /// attempt. The server token is never sent, and the client token is never cached.
    ClientToken(PostToken),
}

/// The server token is not usable as cached: someone has to fetch one (see
/// [`ExecutorCore::lease`]).
#[derive(Debug, Clone, Copy)]
pub struct PendingFetch {
    reason: FetchReason,
    decided_at: OffsetDateTime,
}

impl PendingFetch {
    /// Why a fetch is needed.
    pub fn reason(&self) -> FetchReason {
        self.reason
    }
}

/// The retry loop of one operation (or one `/token` fetch) as a state machine: feed it each
/// attempt's result, and it says [`RetryStep::Sleep`] or [`RetryStep::Done`].
///
/// Non-idempotent operations are never repeated; idempotent ones follow the executor's
/// [`RetryPolicy`](crate::policy::retry::RetryPolicy) and client-wide budget.
pub struct Retrying<'a> {
    /// The retry budget, clock and jitter are the executor's (one reference: every call's
    /// future holds its loop).
    core: &'a ExecutorCore,
    idempotent: bool,
    /// Tried once, without consulting the policy (a refresh ahead of expiry).
    once: bool,
    number: u32,
    /// When the call started: the time of its first attempt ([`attempt_time`](Self::attempt_time)),
    /// from which its deadline is reckoned ([`deadline`](Self::deadline)).
    started: OffsetDateTime,
}

impl Retrying<'_> {
    /// After an attempt returned `result`: stop, or wait and repeat. The clock is read (and
    /// jitter drawn) only when a retryable failure is considered for a retry.
    pub fn step<T>(&mut self, result: Result<T, Failure>) -> RetryStep<T> {
        let error = match result {
            Ok(value) => return RetryStep::Done(Ok(value)),
            Err(Failure::Final(e)) => return RetryStep::Done(Err(e)),
            Err(Failure::Retryable(e)) if self.once => return RetryStep::Done(Err(e)),
            Err(Failure::Retryable(e)) => e,
        };
        let now = self.core.clock.now();
        match self.core.retry.next_delay(
            self.number,
            &error,
            self.idempotent,
            (self.core.jitter)(),
            now,
        ) {
            Some(delay) if self.ends_past_deadline(now, delay) => {
                tracing::debug!(
                    attempt = self.number,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "not retrying the Basiq request: the wait would end past the call's deadline"
                );
                RetryStep::Done(Err(error))
            }
            Some(delay) => {
                self.number += 1;
                RetryStep::Sleep(delay)
            }
            None => RetryStep::Done(Err(error)),
        }
    }

    /// When the call must be over, if it has a deadline ([`ExecutorConfig::call_deadline`] after
    /// it started): no retry is made whose wait would end past it.
    pub fn deadline(&self) -> Option<OffsetDateTime> {
        self.core.call_deadline.map(|d| {
            self.started
                .saturating_add(time::Duration::try_from(d).unwrap_or(time::Duration::MAX))
        })
    }

    /// The time an attempt starting now starts at: for the first, the time the call started
    /// (read once when this loop was made, for the deadline); for a repeat, after its wait, the
    /// clock's. A driver asks right before each attempt and hands the time to the attempt's
    /// token decision ([`ExecutorCore::lease_at`]) and request limits
    /// ([`ExecutorCore::limits_at`]), so a call whose token is cached reads the clock once.
    pub fn attempt_time(&self) -> OffsetDateTime {
        if self.number == 1 {
            self.started
        } else {
            self.core.clock.now()
        }
    }

    fn ends_past_deadline(&self, now: OffsetDateTime, delay: Duration) -> bool {
        self.deadline().is_some_and(|deadline| {
            let delay = time::Duration::try_from(delay).unwrap_or(time::Duration::MAX);
            now.saturating_add(delay) >= deadline
        })
    }
}

impl fmt::Debug for Retrying<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retrying")
            .field("idempotent", &self.idempotent)
            .field("once", &self.once)
            .field("attempt", &self.number)
            .field("deadline", &self.deadline())
            .finish_non_exhaustive()
    }
}

/// Everything an executor holds except its transport, sleep and fetch gate: where and as whom it
/// talks to Basiq, its clock, the shared server-token state and the retry budget. Built from an
/// [`ExecutorConfig`]; the executors keep one behind an `Arc` so clones share it.
pub struct ExecutorCore {
    base: ApiBase,
    api_key: ApiKey,
    clock: Arc<dyn Clock>,
    tokens: TokenState,
    store: Arc<dyn TokenStore>,
    retry: RetryState,
    jitter: fn() -> f64,
    max_response_bytes: u64,
    call_deadline: Option<Duration>,
    /// The fleet's stored form of the token this process last adopted or stored, so a token
    /// Basiq rejects is removed from the fleet's store only if it is still the stored one.
    fleet_value: Mutex<Option<(AccessToken, Vec<u8>)>>,
}

impl ExecutorCore {
    /// A core from `config`, validated (non-empty key, usable base URL) so mistakes surface as
    /// [`Error::Config`] here rather than on the first call. `jitter` returns values in `[0, 1]`
    /// (the executor's random source: token refresh spread, retry backoff).
    pub fn new(config: ExecutorConfig, jitter: fn() -> f64) -> Result<Self, Error> {
        config.validate()?;
        let now = config.clock.now();
        Ok(Self {
            tokens: TokenState::new(config.token_policy),
            store: config.token_store,
            retry: RetryState::new(config.retry_policy, now),
            base: ApiBase::new(config.base_url, UrlForm::Parsed),
            api_key: config.api_key,
            clock: config.clock,
            jitter,
            max_response_bytes: config.max_response_bytes,
            call_deadline: config.call_deadline,
            fleet_value: Mutex::new(None),
        })
    }

    /// The core, with requests' URLs built in `form`: the executors pass their transport's
    /// [`url_form`](crate::engine::transport::BlockingTransport::url_form).
    pub fn with_url_form(mut self, form: UrlForm) -> Self {
        self.base = ApiBase::new(self.base.url().clone(), form);
        self
    }

    /// What a request sent now may use: the response body cap, and what is left of the call's
    /// `deadline` (see [`Retrying::deadline`]). Executors attach it to every request
    /// ([`HttpRequest::set_limits`]) for the transport to honour.
    pub fn limits(&self, deadline: Option<OffsetDateTime>) -> RequestLimits {
        self.limits_at(deadline, None)
    }

    /// [`limits`](Self::limits) for a request sent at `now` when the caller just read it (an
    /// attempt's time, when nothing waited since: see [`Retrying::attempt_time`]); with `None`
    /// the clock is read, and only for a call that has a deadline.
    pub fn limits_at(
        &self,
        deadline: Option<OffsetDateTime>,
        now: Option<OffsetDateTime>,
    ) -> RequestLimits {
        let timeout = deadline.map(|deadline| {
            let left = deadline - now.unwrap_or_else(|| self.clock.now());
            // A request always gets a moment: a zero timeout would fail before connecting.
            Duration::try_from(left)
                .unwrap_or(Duration::ZERO)
                .max(Duration::from_millis(1))
        });
        RequestLimits::new(self.max_response_bytes, timeout)
    }

    /// A transport's answer, checked against what the executor allows whatever the transport
    /// did: a body over the cap is [`TransportErrorKind::TooLarge`] (a custom transport may not
    /// honour [`RequestLimits`]).
    pub fn received(&self, response: HttpResponse) -> Result<HttpResponse, Error> {
        let len = u64::try_from(response.body().len()).unwrap_or(u64::MAX);
        if len > self.max_response_bytes {
            return Err(Error::transport(TransportError::new(
                TransportErrorKind::TooLarge,
                format!("response body exceeds {} bytes", self.max_response_bytes),
            )));
        }
        Ok(response)
    }

    /// `error` without the API key or `token` in any text a server may have echoed (see
    /// [`Error::scrub_secrets`]).
    pub fn scrubbed(&self, error: Error, token: Option<&AccessToken>) -> Error {
        let mut secrets = vec![self.api_key.expose_secret()];
        if let Some(token) = token {
            secrets.push(token.expose_secret());
        }
        error.scrub_secrets(&secrets)
    }

    /// The API root requests are built against.
    pub fn base_url(&self) -> &Url {
        self.base.url()
    }

    /// The API root with the form its URLs are built in (what operations build against).
    pub fn api_base(&self) -> &ApiBase {
        &self.base
    }

    /// The clock `now` is read from.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Builds `op`'s request against the base URL.
    pub fn request<O: Operation>(&self, op: &O) -> Result<HttpRequest, Error> {
        op.request(&self.base)
    }

    /// The `POST /token` operation for the server token.
    pub fn server_token_request(&self) -> PostToken {
        PostToken::server(self.api_key.clone())
    }

    /// The `POST /token` operation for a `CLIENT_ACCESS` token bound to `user_id` (never cached).
    pub fn client_token_request(&self, user_id: UserId) -> PostToken {
        PostToken::new(self.api_key.clone(), TokenScope::ClientAccess { user_id })
    }

    /// How an attempt at `op` is authenticated (see [`AuthPlan`]).
    pub fn auth_plan<O: Operation>(&self, op: &O) -> AuthPlan {
        match op.authentication() {
            Authentication::None => AuthPlan::Unauthenticated,
            Authentication::ClientToken(user_id) => {
                AuthPlan::ClientToken(self.client_token_request(user_id))
            }
            // `Authentication` is non-exhaustive; anything new defaults to the server token.
            _ => AuthPlan::ServerToken,
        }
    }

    /// `request` with `Authorization: Bearer <client token>` (marked sensitive), for an
    /// operation whose plan is [`AuthPlan::ClientToken`]. The token was fetched for this attempt
    /// and is dropped with it: client tokens never enter the server-token cache.
    pub fn client_authorized(
        &self,
        mut request: HttpRequest,
        token: &AccessToken,
    ) -> Result<HttpRequest, Error> {
        authorize_bearer(&mut request, token)?;
        Ok(request)
    }

    /// A retry loop for an operation starting now; a non-idempotent one is never repeated, and
    /// no retry is made past the call's deadline ([`ExecutorConfig::call_deadline`]).
    pub fn retrying(&self, idempotent: bool) -> Retrying<'_> {
        let started = self.clock.now();
        Retrying {
            core: self,
            idempotent,
            once: false,
            number: 1,
            started,
        }
    }

    /// The retry loop for fetching the server token: a refresh ahead of expiry is tried once (if
    /// it fails, the still-valid token is served at once rather than after a series of backoffs);
    /// any other fetch is retried like an idempotent request.
    pub fn token_retrying(&self, pending: &PendingFetch) -> Retrying<'_> {
        Retrying {
            once: pending.reason == FetchReason::RefreshAhead,
            ..self.retrying(true)
        }
    }

    /// The server token to use now, or a [`PendingFetch`]. A driver that gets `Err` takes its
    /// fetch gate (consulting [`while_gate_busy`](Self::while_gate_busy) if it is held), then
    /// asks `lease` *again* — whoever held the gate may have stored a token — and only then
    /// fetches.
    pub fn lease(&self) -> Result<TokenLease, PendingFetch> {
        self.lease_at(self.clock.now())
    }

    /// [`lease`](Self::lease) at `now`: an attempt's time (see [`Retrying::attempt_time`]).
    pub fn lease_at(&self, now: OffsetDateTime) -> Result<TokenLease, PendingFetch> {
        match self.tokens.decide(now) {
            TokenDecision::Use(lease) => Ok(lease),
            TokenDecision::Fetch(reason) => Err(PendingFetch {
                reason,
                decided_at: now,
            }),
        }
    }

    /// What a driver asks once it holds the fetch gate, before fetching: the cached token if
    /// another caller stored one meanwhile, else a token from the [`TokenStore`] (saved by
    /// another process) if it is valid beyond the refresh-ahead margin and is not the token Basiq
    /// rejected last, else a [`PendingFetch`]. A store error is logged (no secrets) and treated
    /// as an empty store: it never fails a request.
    pub fn lease_in_gate(&self) -> Result<TokenLease, PendingFetch> {
        let pending = match self.lease() {
            Ok(lease) => return Ok(lease),
            Err(pending) => pending,
        };
        match self.store.load() {
            Ok(Some(stored)) => self
                .tokens
                .adopt_stored(&stored, self.clock.now(), (self.jitter)())
                .inspect(|lease| {
                    tracing::debug!(
                        expires_at = %lease.expires_at,
                        "using the Basiq server token from the token store"
                    );
                })
                .ok_or(pending),
            Ok(None) => Err(pending),
            Err(e) => {
                tracing::warn!(error = %e, "loading the Basiq server token from the token store failed; fetching one");
                Err(pending)
            }
        }
    }

    /// The failure a caller must share instead of fetching (see [`TokenState::shared_failure`]):
    /// a fetch that failed while it waited for the gate, or whose backoff is still running. An
    /// outage then costs the process (and, with a fleet, the app) one caller's `/token` requests.
    pub fn shared_failure(&self, pending: &PendingFetch) -> Option<Error> {
        self.tokens
            .shared_failure(pending.decided_at, self.clock.now())
    }

    /// The cross-process fetch of the server token for a fleet, run inside the executor's own
    /// fetch gate after [`lease_in_gate`](Self::lease_in_gate) found nothing.
    pub fn fleet_fetch<'a>(
        &'a self,
        config: &'a FleetConfig,
        pending: PendingFetch,
    ) -> FleetTokenFetch<'a> {
        FleetTokenFetch::new(self, config, pending)
    }

    pub(crate) fn adopt_stored(&self, stored: &StoredToken) -> Option<TokenLease> {
        self.tokens
            .adopt_stored(stored, self.clock.now(), (self.jitter)())
    }

    pub(crate) fn stored_margin(&self, stored: &StoredToken) -> Duration {
        self.tokens.margin_for_stored(stored)
    }

    pub(crate) fn remember_fleet_value(&self, token: &AccessToken, raw: Vec<u8>) {
        *self
            .fleet_value
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((token.clone(), raw));
    }

    /// The stored form of the token Basiq rejected, if this process knows it.
    pub(crate) fn fleet_value_of_rejected(&self) -> Option<Vec<u8>> {
        let value = self
            .fleet_value
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        value
            .as_ref()
            .filter(|(token, _)| self.tokens.is_rejected(token))
            .map(|(_, raw)| raw.clone())
    }

    pub(crate) fn record_fleet_failure(&self, error: &Error, until: OffsetDateTime) {
        self.tokens.fleet_failure(error, self.clock.now(), until);
    }

    pub(crate) fn failure_backoff_until(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.tokens.failure_backoff_until(now)
    }

    /// Someone else holds the fetch gate. Ahead of expiry the current token is still good: use
    /// it rather than wait for the refresh, so a refresh never stalls traffic. `None`: wait for
    /// the gate.
    pub fn while_gate_busy(&self, pending: &PendingFetch) -> Option<TokenLease> {
        if pending.reason == FetchReason::RefreshAhead {
            self.tokens.still_valid(pending.decided_at)
        } else {
            None
        }
    }

    /// Reports a `/token` fetch: the response and when its request was sent, or the error. A
    /// fetched token is cached and saved to the [`TokenStore`] (a store error is logged). A
    /// failed refresh ahead of expiry still yields the valid cached token (see
    /// [`TokenState::fetch_failed`]).
    pub fn token_fetched(
        &self,
        fetched: Result<(TokenResponse, OffsetDateTime), Error>,
    ) -> Result<TokenLease, Error> {
        match fetched {
            Ok((token, requested_at)) => {
                let lease = self.tokens.fetched(&token, requested_at, (self.jitter)());
                let stored = StoredToken::new(lease.token.clone(), lease.expires_at)
                    .with_lifetime(Duration::from_secs(token.expires_in));
                if let Err(e) = self.store.save(&stored) {
                    tracing::warn!(error = %e, "saving the Basiq server token to the token store failed");
                }
                Ok(lease)
            }
            Err(e) => self.tokens.fetch_failed(e, self.clock.now()),
        }
    }

    /// An authenticated request sent with `lease` was answered with `result` (the first time in
    /// this attempt). An expired-token answer rejects that lease — the cache drops it only if it
    /// is still the cached token — and asks for one re-authentication; Basiq refused the request
    /// before acting on it, so this is safe even for a non-idempotent operation.
    pub fn answered<T>(&self, lease: &TokenLease, result: Result<T, Error>) -> AuthStep<T> {
        match result {
            Err(e) if e.is_expired_token() => {
                let was_cached = self.tokens.reject(lease);
                tracing::info!(
                    refetch = was_cached,
                    "Basiq rejected the server token as expired; re-authenticating once"
                );
                AuthStep::Reauthenticate
            }
            other => AuthStep::Done(other.map_err(Failure::Retryable)),
        }
    }

    /// Formats an executor named `name` over `transport`: base URL, key and token state
    /// (redacted), transport, clock and retry policy.
    pub fn fmt_executor(
        &self,
        f: &mut fmt::Formatter<'_>,
        name: &str,
        transport: &dyn fmt::Debug,
    ) -> fmt::Result {
        self.fmt_fields(f, name, Some(transport))
    }

    fn fmt_fields(
        &self,
        f: &mut fmt::Formatter<'_>,
        name: &str,
        transport: Option<&dyn fmt::Debug>,
    ) -> fmt::Result {
        let mut out = f.debug_struct(name);
        out.field("base_url", &self.base.url().as_str())
            .field("api_key", &self.api_key)
            .field("tokens", &self.tokens)
            .field("token_store", &self.store);
        if let Some(transport) = transport {
            out.field("transport", transport);
        }
        out.field("clock", &self.clock)
            .field("retry", &self.retry)
            .finish()
    }
}

impl fmt::Debug for ExecutorCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_fields(f, "ExecutorCore", None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::auth::parse_base_url;
    use crate::error::{TransportError, TransportErrorKind};
    use crate::policy::retry::RetryPolicy;

    fn core(policy: RetryPolicy) -> ExecutorCore {
        let config = ExecutorConfig::new(
            parse_base_url("http://127.0.0.1:1").unwrap(),
            ApiKey::new("k"),
        )
        .with_retry_policy(policy);
        ExecutorCore::new(config, || 0.5).unwrap()
    }

    fn connect_error() -> Error {
        Error::transport(TransportError::new(TransportErrorKind::Connect, "refused"))
    }

    #[test]
    fn retrying_sleeps_for_idempotent_and_stops_otherwise() {
        let core = core(RetryPolicy::default());
        let mut idempotent = core.retrying(true);
        assert!(matches!(
            idempotent.step::<()>(Err(Failure::Retryable(connect_error()))),
            RetryStep::Sleep(_)
        ));
        assert!(matches!(
            idempotent.step::<()>(Err(Failure::Final(connect_error()))),
            RetryStep::Done(Err(_))
        ));
        assert!(matches!(idempotent.step(Ok(1)), RetryStep::Done(Ok(1))));
        let mut not_idempotent = core.retrying(false);
        assert!(matches!(
            not_idempotent.step::<()>(Err(Failure::Retryable(connect_error()))),
            RetryStep::Done(Err(_))
        ));
    }

    #[test]
    fn no_retry_waits_past_the_call_deadline() {
        use crate::clock::ManualClock;
        let clock = ManualClock::new(OffsetDateTime::UNIX_EPOCH);
        let config = ExecutorConfig::new(
            parse_base_url("http://127.0.0.1:1").unwrap(),
            ApiKey::new("k"),
        )
        .with_clock(Arc::new(clock.clone()))
        .with_call_deadline(Some(Duration::from_secs(10)));
        let core = ExecutorCore::new(config, || 1.0).unwrap();
        let mut retrying = core.retrying(true);
        let deadline = retrying.deadline().unwrap();
        assert_eq!(
            deadline,
            OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(10)
        );
        assert_eq!(
            core.limits(Some(deadline)).timeout,
            Some(Duration::from_secs(10))
        );
        // A 429 asking for 30 s: within the policy's Retry-After cap, past the deadline.
        let throttled = Error::from_response(
            http::StatusCode::TOO_MANY_REQUESTS,
            b"",
            Some(Duration::from_secs(30)),
        );
        assert!(matches!(
            retrying.step::<()>(Err(Failure::Retryable(throttled))),
            RetryStep::Done(Err(_))
        ));
        // Backoffs are taken while they fit, and the request gets what is left.
        let mut retrying = core.retrying(true);
        let mut slept = Duration::ZERO;
        while let RetryStep::Sleep(d) =
            retrying.step::<()>(Err(Failure::Retryable(connect_error())))
        {
            slept += d;
            clock.advance(d);
        }
        assert!(slept < Duration::from_secs(10), "{slept:?}");
        assert!(core.limits(Some(deadline)).timeout.unwrap() <= Duration::from_secs(10) - slept);
    }

    #[test]
    fn oversize_bodies_and_echoed_secrets_are_refused() {
        let config = ExecutorConfig::new(
            parse_base_url("http://127.0.0.1:1").unwrap(),
            ApiKey::new("the-api-key"),
        )
        .with_max_response_bytes(4);
        let core = ExecutorCore::new(config, || 0.5).unwrap();
        let response = http::Response::new(b"12345".to_vec());
        let err = core.received(response).unwrap_err();
        assert!(!err.is_retryable());
        assert!(core.received(http::Response::new(b"1234".to_vec())).is_ok());
        let echoed = Error::from_response(
            http::StatusCode::BAD_REQUEST,
            b"you sent Basic the-api-key and Bearer the-token",
            None,
        );
        let shown = core
            .scrubbed(echoed, Some(&AccessToken::new("the-token")))
            .to_string();
        assert!(
            !shown.contains("the-api-key") && !shown.contains("the-token"),
            "{shown}"
        );
    }

    #[test]
    fn a_missing_token_is_fetched_with_retries() {
        let core = core(RetryPolicy::default());
        let pending = core.lease().unwrap_err();
        assert_eq!(pending.reason(), FetchReason::Missing);
        assert!(core.while_gate_busy(&pending).is_none());
        assert!(matches!(
            core.token_retrying(&pending)
                .step::<()>(Err(Failure::Retryable(connect_error()))),
            RetryStep::Sleep(_)
        ));
        assert!(core.token_fetched(Err(connect_error())).is_err());
    }

    struct NeedsClient(UserId);

    impl Operation for NeedsClient {
        type Output = ();
        fn request(&self, base: &ApiBase) -> Result<HttpRequest, Error> {
            Ok(crate::engine::operation::empty_request(
                http::Method::POST,
                base.url().clone(),
            ))
        }
        fn parse(&self, _: crate::engine::transport::HttpResponse) -> Result<(), Error> {
            Ok(())
        }
        fn is_idempotent(&self) -> bool {
            false
        }
        fn authentication(&self) -> Authentication {
            Authentication::ClientToken(self.0.clone())
        }
    }

    #[test]
    fn client_token_operations_fetch_a_token_bound_to_their_user() {
        let core = core(RetryPolicy::default());
        let user = UserId::new("ea3a81").unwrap();
        let AuthPlan::ClientToken(fetch) = core.auth_plan(&NeedsClient(user.clone())) else {
            panic!("expected a client-token plan");
        };
        let body = fetch.request(core.api_base()).unwrap().into_body();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "scope=CLIENT_ACCESS&userId=ea3a81"
        );
        assert_eq!(fetch.context().user_id, Some(user));
        let request = core
            .request(&NeedsClient(UserId::new("u1").unwrap()))
            .unwrap();
        let request = core
            .client_authorized(request, &AccessToken::new("client-tok"))
            .unwrap();
        let auth = request.headers().get(http::header::AUTHORIZATION).unwrap();
        assert_eq!(auth.to_str().unwrap(), "Bearer client-tok");
        assert!(auth.is_sensitive());
        // Nothing was cached: the server token is still missing.
        assert_eq!(core.lease().unwrap_err().reason(), FetchReason::Missing);
        assert!(matches!(
            core.auth_plan(&core.server_token_request()),
            AuthPlan::Unauthenticated
        ));
    }

    mod store {
        use super::*;
        use crate::clock::ManualClock;
        use crate::policy::token::{
            MemoryTokenStore, StoreError, StoredToken, TokenPolicy, TokenStore,
        };

        #[derive(Debug)]
        struct Broken;

        impl TokenStore for Broken {
            fn load(&self) -> Result<Option<StoredToken>, StoreError> {
                Err(StoreError::new("connection refused"))
            }
            fn save(&self, _: &StoredToken) -> Result<(), StoreError> {
                Err(StoreError::new("connection refused"))
            }
        }

        fn at(secs: i64) -> OffsetDateTime {
            OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(secs)
        }

        fn core_with(store: Arc<dyn TokenStore>, clock: &ManualClock) -> ExecutorCore {
            let config = ExecutorConfig::new(
                parse_base_url("http://127.0.0.1:1").unwrap(),
                ApiKey::new("k"),
            )
            .with_clock(Arc::new(clock.clone()))
            .with_token_store(store);
            ExecutorCore::new(config, || 0.5).unwrap()
        }

        fn fetched(core: &ExecutorCore, value: &str, at_: OffsetDateTime) -> TokenLease {
            let token: TokenResponse = serde_json::from_value(serde_json::json!({
                "access_token": value, "token_type": "Bearer", "expires_in": 3600
            }))
            .unwrap();
            core.token_fetched(Ok((token, at_))).unwrap()
        }

        fn expired() -> Error {
            Error::from_response(
                http::StatusCode::UNAUTHORIZED,
                br#"{"type":"list","data":[{"type":"error","code":"invalid-authorization-token","title":"expired"}]}"#,
                None,
            )
        }

        #[test]
        fn a_valid_stored_token_is_used_without_fetching() {
            let clock = ManualClock::new(at(0));
            let store = Arc::new(MemoryTokenStore::new());
            let a = core_with(store.clone(), &clock);
            let b = core_with(store.clone(), &clock);
            let pending = a.lease_in_gate().unwrap_err();
            assert_eq!(pending.reason(), FetchReason::Missing);
            fetched(&a, "shared", at(0));
            // Another "process" finds it in the store and caches it.
            clock.advance(Duration::from_secs(1000));
            assert!(b.lease().is_err());
            let lease = b.lease_in_gate().unwrap();
            assert_eq!(lease.token.expose_secret(), "shared");
            assert_eq!(lease.expires_at, at(3600));
            assert_eq!(b.lease().unwrap().token.expose_secret(), "shared");
        }

        #[test]
        fn a_stored_token_within_the_margin_or_expired_is_ignored() {
            let clock = ManualClock::new(at(0));
            let store = Arc::new(MemoryTokenStore::new());
            let margin = TokenPolicy::default().stored_margin().as_secs() as i64;
            store
                .save(&StoredToken::new(AccessToken::new("old"), at(margin)))
                .unwrap();
            let core = core_with(store.clone(), &clock);
            assert!(core.lease_in_gate().is_err(), "exactly at the margin");
            store
                .save(&StoredToken::new(AccessToken::new("old"), at(margin + 1)))
                .unwrap();
            assert!(core.lease_in_gate().is_ok(), "just beyond the margin");
            let clock = ManualClock::new(at(10_000));
            let core = core_with(store, &clock);
            assert!(core.lease_in_gate().is_err(), "expired");
        }

        #[test]
        fn store_errors_fall_back_to_fetching() {
            let clock = ManualClock::new(at(0));
            let core = core_with(Arc::new(Broken), &clock);
            assert_eq!(
                core.lease_in_gate().unwrap_err().reason(),
                FetchReason::Missing
            );
            let lease = fetched(&core, "t1", at(0));
            assert_eq!(lease.token.expose_secret(), "t1");
            assert_eq!(core.lease().unwrap().token.expose_secret(), "t1");
        }

        #[test]
        fn a_rejected_stored_token_is_not_reused() {
            let clock = ManualClock::new(at(0));
            let store = Arc::new(MemoryTokenStore::new());
            store
                .save(&StoredToken::new(AccessToken::new("revoked"), at(3600)))
                .unwrap();
            let core = core_with(store.clone(), &clock);
            let lease = core.lease_in_gate().unwrap();
            assert_eq!(lease.token.expose_secret(), "revoked");
            assert!(matches!(
                core.answered::<()>(&lease, Err(expired())),
                AuthStep::Reauthenticate
            ));
            // The store still holds the rejected token: it is not taken back.
            let pending = core.lease_in_gate().unwrap_err();
            assert_eq!(pending.reason(), FetchReason::Rejected);
            fetched(&core, "fresh", at(1));
            assert_eq!(
                store.load().unwrap().unwrap().token.expose_secret(),
                "fresh"
            );
            // Another process saving a different token later is fine.
            assert_eq!(core.lease().unwrap().token.expose_secret(), "fresh");
        }
    }

    #[test]
    fn debug_hides_the_key() {
        let config = ExecutorConfig::new(
            parse_base_url("http://127.0.0.1:1").unwrap(),
            ApiKey::new("super-secret-key"),
        );
        let core = ExecutorCore::new(config, || 0.5).unwrap();
        assert!(!format!("{core:?}").contains("super-secret-key"));
    }
}
