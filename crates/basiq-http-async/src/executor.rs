//! [`AsyncExecutor`]: runs any [`Operation`] with a shared, single-flight server token.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use basiq_core::auth::{ExecutorConfig, RetryState, TokenState};
use basiq_core::clock::Clock;
use basiq_core::error::Error;
use basiq_core::id::UserId;
use basiq_core::operation::{Authentication, Operation};
use basiq_core::secret::{AccessToken, ApiKey};
use basiq_core::token::{FetchReason, PostToken, TokenDecision, TokenLease, TokenScope};
use basiq_core::transport::{AsyncTransport, BoxFuture, HttpRequest, HttpResponse};
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
/// the [`RetryPolicy`](basiq_core::retry::RetryPolicy) of the configuration repeats *idempotent*
/// operations (GET, DELETE, `/token`) after transport errors, 429 and 5xx, with jittered backoff
/// and a client-wide budget. A non-idempotent operation (creating a user, a refresh) is never
/// repeated: after an ambiguous failure the caller reconciles instead.
#[derive(Clone)]
pub struct AsyncExecutor {
    inner: Arc<Inner>,
    sleep: Sleep,
}

struct Inner {
    transport: Arc<dyn AsyncTransport>,
    base_url: Url,
    api_key: ApiKey,
    clock: Arc<dyn Clock>,
    tokens: TokenState,
    retry: RetryState,
    fetch_gate: tokio::sync::Mutex<()>,
}

/// How one attempt failed.
enum Failure {
    /// The retry policy may repeat the attempt.
    Retryable(Error),
    /// Return as is (e.g. getting a token failed, after its own retries).
    Final(Error),
}

fn tokio_sleep() -> Sleep {
    Arc::new(|d| Box::pin(tokio::time::sleep(d)))
}

impl AsyncExecutor {
    /// An executor over `transport`. The configuration is validated (non-empty key, usable base
    /// URL) so mistakes surface as [`Error::Config`] here rather than on the first call.
    pub fn new(config: ExecutorConfig, transport: Arc<dyn AsyncTransport>) -> Result<Self, Error> {
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
                fetch_gate: tokio::sync::Mutex::new(()),
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
        &self.inner.base_url
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
        &self.inner.clock
    }

    /// Runs one operation. Every error carries the operation's ids ([`Operation::context`]).
    pub async fn execute<O: Operation>(&self, op: O) -> Result<O::Output, Error> {
        let context = op.context();
        self.run(&op).await.map_err(|e| e.with_context(&context))
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
        let op = PostToken::new(
            self.inner.api_key.clone(),
            TokenScope::ClientAccess { user_id },
        );
        self.execute(op).await.map(|t| t.access_token)
    }

    async fn run<O: Operation>(&self, op: &O) -> Result<O::Output, Error> {
        self.retrying(op.is_idempotent(), || async {
            if op.authentication() == Authentication::None {
                self.run_unauthenticated(op)
                    .await
                    .map_err(Failure::Retryable)
            } else {
                self.attempt(op).await
            }
        })
        .await
    }

    /// Repeats `attempt` while the retry policy says so (never when `idempotent` is false).
    async fn retrying<T, F, Fut>(&self, idempotent: bool, mut attempt: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut number = 1;
        loop {
            let error = match attempt().await {
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
                    (self.sleep)(delay).await;
                    number += 1;
                }
                None => return Err(error),
            }
        }
    }

    /// One authenticated attempt, including the single re-authentication.
    async fn attempt<O: Operation>(&self, op: &O) -> Result<O::Output, Failure> {
        // Build first: invalid input fails before any token is fetched.
        let request = op.request(&self.inner.base_url).map_err(Failure::Final)?;
        let lease = self.lease().await.map_err(Failure::Final)?;
        match self.send_with(request, &lease, op).await {
            Err(e) if e.is_expired_token() => {
                let was_cached = self.inner.tokens.reject(&lease);
                tracing::debug!(
                    refetch = was_cached,
                    "Basiq rejected the server token as expired; re-authenticating once"
                );
                let lease = self.lease().await.map_err(Failure::Final)?;
                let request = op.request(&self.inner.base_url).map_err(Failure::Final)?;
                self.send_with(request, &lease, op)
                    .await
                    .map_err(Failure::Retryable)
            }
            other => other.map_err(Failure::Retryable),
        }
    }

    /// Operations that carry their own credentials (`POST /token`). Kept apart from `attempt` so
    /// fetching a token never recurses into the token logic.
    async fn run_unauthenticated<O: Operation>(&self, op: &O) -> Result<O::Output, Error> {
        let request = op.request(&self.inner.base_url)?;
        op.parse(self.send(request).await?)
    }

    async fn send_with<O: Operation>(
        &self,
        mut request: HttpRequest,
        lease: &TokenLease,
        op: &O,
    ) -> Result<O::Output, Error> {
        lease.authorize(&mut request)?;
        op.parse(self.send(request).await?)
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        self.inner
            .transport
            .send(request)
            .await
            .map_err(Error::transport)
    }

    /// The server token to use now, fetching it (single flight) when the cache says so.
    async fn lease(&self) -> Result<TokenLease, Error> {
        let tokens = &self.inner.tokens;
        let now = self.inner.clock.now();
        let reason = match tokens.decide(now) {
            TokenDecision::Use(lease) => return Ok(lease),
            TokenDecision::Fetch(reason) => reason,
        };
        let _gate = match self.inner.fetch_gate.try_lock() {
            Ok(gate) => gate,
            Err(_) => {
                // Someone is fetching. Ahead of expiry the current token is still good: use it
                // rather than wait for the refresh, so a refresh never stalls traffic.
                if reason == FetchReason::RefreshAhead {
                    if let Some(lease) = tokens.still_valid(now) {
                        return Ok(lease);
                    }
                }
                self.inner.fetch_gate.lock().await
            }
        };
        // Re-check: whoever held the gate before us may have stored a token.
        let reason = match tokens.decide(self.inner.clock.now()) {
            TokenDecision::Use(lease) => return Ok(lease),
            TokenDecision::Fetch(reason) => reason,
        };
        let op = PostToken::server(self.inner.api_key.clone());
        let fetch = || async {
            let requested_at = self.inner.clock.now();
            match self.run_unauthenticated(&op).await {
                Ok(token) => Ok((token, requested_at)),
                Err(e) => Err(Failure::Retryable(e)),
            }
        };
        // A refresh ahead of expiry is tried once: if it fails, the still-valid token is served
        // at once rather than after a series of backoffs.
        let fetched = if reason == FetchReason::RefreshAhead {
            fetch().await.map_err(|f| match f {
                Failure::Retryable(e) | Failure::Final(e) => e,
            })
        } else {
            self.retrying(true, fetch).await
        };
        match fetched {
            Ok((token, requested_at)) => Ok(tokens.fetched(&token, requested_at, fastrand::f64())),
            Err(e) => tokens.fetch_failed(e, self.inner.clock.now()),
        }
    }
}

impl fmt::Debug for AsyncExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncExecutor")
            .field("base_url", &self.inner.base_url.as_str())
            .field("api_key", &self.inner.api_key)
            .field("tokens", &self.inner.tokens)
            .field("transport", &self.inner.transport)
            .field("clock", &self.inner.clock)
            .field("retry", &self.inner.retry)
            .finish()
    }
}
