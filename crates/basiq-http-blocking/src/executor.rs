//! [`BlockingExecutor`]: runs any [`Operation`] with a shared, single-flight server token.

use std::fmt;
use std::sync::{Arc, Mutex, TryLockError};
use std::time::Duration;

use basiq_core::auth::{ExecutorConfig, RetryState, TokenState};
use basiq_core::clock::Clock;
use basiq_core::error::Error;
use basiq_core::id::UserId;
use basiq_core::operation::{Authentication, Operation};
use basiq_core::secret::{AccessToken, ApiKey};
use basiq_core::token::{FetchReason, PostToken, TokenDecision, TokenLease, TokenScope};
use basiq_core::transport::{BlockingTransport, HttpRequest, HttpResponse};
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
/// that, the configuration's [`RetryPolicy`](basiq_core::retry::RetryPolicy) repeats
/// *idempotent* operations after transport errors, 429 and 5xx, with jittered backoff and a
/// client-wide budget. A non-idempotent operation is never repeated.
#[derive(Clone)]
pub struct BlockingExecutor {
    inner: Arc<Inner>,
    sleep: Sleep,
}

struct Inner {
    transport: Arc<dyn BlockingTransport>,
    base_url: Url,
    api_key: ApiKey,
    clock: Arc<dyn Clock>,
    tokens: TokenState,
    retry: RetryState,
    fetch_gate: Mutex<()>,
}

/// How one attempt failed.
enum Failure {
    /// The retry policy may repeat the attempt.
    Retryable(Error),
    /// Return as is (e.g. getting a token failed, after its own retries).
    Final(Error),
}

impl BlockingExecutor {
    /// An executor over `transport`. The configuration is validated (non-empty key, usable base
    /// URL) so mistakes surface as [`Error::Config`] here rather than on the first call.
    pub fn new(
        config: ExecutorConfig,
        transport: Arc<dyn BlockingTransport>,
    ) -> Result<Self, Error> {
        config.validate()?;
        let now = config.clock.now();
        Ok(Self {
            inner: Arc::new(Inner {
                transport,
                tokens: TokenState::new(config.token_policy),
                retry: RetryState::new(config.retry_policy, now),
                base_url: config.base_url,
                api_key: config.api_key,
                clock: config.clock,
                fetch_gate: Mutex::new(()),
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
        &self.inner.base_url
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
        &self.inner.clock
    }

    /// Runs one operation. Every error carries the operation's ids ([`Operation::context`]).
    pub fn execute<O: Operation>(&self, op: O) -> Result<O::Output, Error> {
        let context = op.context();
        self.run(&op).map_err(|e| e.with_context(&context))
    }

    /// A `CLIENT_ACCESS` token bound to `user_id`, for the Consent UI
    /// (`https://consent.basiq.io/home?token=…`).
    ///
    /// Fetched fresh on every call and never cached: it is handed to a browser for one consent
    /// session, which needs the token's full lifetime ahead of it; such calls are rare, and a
    /// per-user cache would grow with the user base. The server token cache is not touched.
    pub fn client_token(&self, user_id: UserId) -> Result<AccessToken, Error> {
        let op = PostToken::new(
            self.inner.api_key.clone(),
            TokenScope::ClientAccess { user_id },
        );
        self.execute(op).map(|t| t.access_token)
    }

    fn run<O: Operation>(&self, op: &O) -> Result<O::Output, Error> {
        self.retrying(op.is_idempotent(), || {
            if op.authentication() == Authentication::None {
                self.run_unauthenticated(op).map_err(Failure::Retryable)
            } else {
                self.attempt(op)
            }
        })
    }

    /// Repeats `attempt` while the retry policy says so (never when `idempotent` is false).
    fn retrying<T>(
        &self,
        idempotent: bool,
        mut attempt: impl FnMut() -> Result<T, Failure>,
    ) -> Result<T, Error> {
        let mut number = 1;
        loop {
            let error = match attempt() {
                Ok(value) => return Ok(value),
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Retryable(e)) => e,
            };
            let now = self.inner.clock.now();
            match self
                .inner
                .retry
                .next_delay(number, &error, idempotent, fastrand::f64(), now)
            {
                Some(delay) => {
                    (self.sleep)(delay);
                    number += 1;
                }
                None => return Err(error),
            }
        }
    }

    /// One authenticated attempt, including the single re-authentication.
    fn attempt<O: Operation>(&self, op: &O) -> Result<O::Output, Failure> {
        // Build first: invalid input fails before any token is fetched.
        let request = op.request(&self.inner.base_url).map_err(Failure::Final)?;
        let lease = self.lease().map_err(Failure::Final)?;
        match self.send_with(request, &lease, op) {
            Err(e) if e.is_expired_token() => {
                let was_cached = self.inner.tokens.reject(&lease);
                tracing::debug!(
                    refetch = was_cached,
                    "Basiq rejected the server token as expired; re-authenticating once"
                );
                let lease = self.lease().map_err(Failure::Final)?;
                let request = op.request(&self.inner.base_url).map_err(Failure::Final)?;
                self.send_with(request, &lease, op)
                    .map_err(Failure::Retryable)
            }
            other => other.map_err(Failure::Retryable),
        }
    }

    /// Operations that carry their own credentials (`POST /token`).
    fn run_unauthenticated<O: Operation>(&self, op: &O) -> Result<O::Output, Error> {
        let request = op.request(&self.inner.base_url)?;
        op.parse(self.send(request)?)
    }

    fn send_with<O: Operation>(
        &self,
        mut request: HttpRequest,
        lease: &TokenLease,
        op: &O,
    ) -> Result<O::Output, Error> {
        lease.authorize(&mut request)?;
        op.parse(self.send(request)?)
    }

    fn send(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        self.inner.transport.send(request).map_err(Error::transport)
    }

    /// The server token to use now, fetching it (single flight) when the cache says so.
    fn lease(&self) -> Result<TokenLease, Error> {
        let tokens = &self.inner.tokens;
        let now = self.inner.clock.now();
        let reason = match tokens.decide(now) {
            TokenDecision::Use(lease) => return Ok(lease),
            TokenDecision::Fetch(reason) => reason,
        };
        // A poisoned gate only means a fetching thread panicked; the gate guards no data.
        let _gate = match self.inner.fetch_gate.try_lock() {
            Ok(gate) => gate,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => {
                // Someone is fetching. Ahead of expiry the current token is still good: use it
                // rather than wait for the refresh, so a refresh never stalls traffic.
                if reason == FetchReason::RefreshAhead {
                    if let Some(lease) = tokens.still_valid(now) {
                        return Ok(lease);
                    }
                }
                self.inner
                    .fetch_gate
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
            }
        };
        // Re-check: whoever held the gate before us may have stored a token.
        let reason = match tokens.decide(self.inner.clock.now()) {
            TokenDecision::Use(lease) => return Ok(lease),
            TokenDecision::Fetch(reason) => reason,
        };
        let op = PostToken::server(self.inner.api_key.clone());
        let fetch = || {
            let requested_at = self.inner.clock.now();
            self.run_unauthenticated(&op)
                .map(|token| (token, requested_at))
                .map_err(Failure::Retryable)
        };
        // A refresh ahead of expiry is tried once: if it fails, the still-valid token is served
        // at once rather than after a series of backoffs.
        let fetched = if reason == FetchReason::RefreshAhead {
            fetch().map_err(|f| match f {
                Failure::Retryable(e) | Failure::Final(e) => e,
            })
        } else {
            self.retrying(true, fetch)
        };
        match fetched {
            Ok((token, requested_at)) => Ok(tokens.fetched(&token, requested_at, fastrand::f64())),
            Err(e) => tokens.fetch_failed(e, self.inner.clock.now()),
        }
    }
}

impl fmt::Debug for BlockingExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingExecutor")
            .field("base_url", &self.inner.base_url.as_str())
            .field("api_key", &self.inner.api_key)
            .field("tokens", &self.inner.tokens)
            .field("transport", &self.inner.transport)
            .field("clock", &self.inner.clock)
            .field("retry", &self.inner.retry)
            .finish()
    }
}
