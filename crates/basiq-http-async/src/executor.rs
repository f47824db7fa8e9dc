//! [`AsyncExecutor`]: runs any [`Operation`] with a shared, single-flight server token.

use std::fmt;
use std::sync::Arc;

use basiq_core::auth::{ExecutorConfig, TokenState};
use basiq_core::clock::Clock;
use basiq_core::error::Error;
use basiq_core::id::UserId;
use basiq_core::operation::{Authentication, Operation};
use basiq_core::secret::{AccessToken, ApiKey};
use basiq_core::token::{PostToken, TokenDecision, TokenLease, TokenScope};
use basiq_core::transport::{AsyncTransport, HttpRequest, HttpResponse};
use url::Url;

/// Runs operations against Basiq: token from the shared cache, bearer, send, parse, ids on errors,
/// and one re-authentication when Basiq says the token expired.
///
/// Cheap to clone; clones share the token cache, so a whole process authenticates once per token
/// lifetime however many tasks call it (Basiq: "cache one token for global use").
///
/// **Single flight.** When the cache needs a token, callers queue on a `tokio::sync::Mutex<()>`
/// *fetch gate*; the first one fetches, the others re-check the cache after acquiring the gate and
/// find the fresh token. The gate is released when its guard drops, so a caller cancelled
/// mid-fetch (its future dropped by a `select!` or a timeout) simply lets the next waiter fetch —
/// nobody waits on a fetch that no longer exists. Only the `tokio` *sync* primitives are used, so
/// the executor itself runs on any async runtime (the reqwest transport needs tokio).
///
/// **Retries.** Only the re-authentication retry is built in: an expired-token answer means Basiq
/// refused the request before acting on it, so repeating it is safe even for a non-idempotent
/// operation. General retries (5xx, 429, connect errors) are left to a retry policy layered on
/// top; this executor never repeats a request whose outcome is unknown.
#[derive(Clone)]
pub struct AsyncExecutor {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Arc<dyn AsyncTransport>,
    base_url: Url,
    api_key: ApiKey,
    clock: Arc<dyn Clock>,
    tokens: TokenState,
    fetch_gate: tokio::sync::Mutex<()>,
}

impl AsyncExecutor {
    /// An executor over `transport`. The configuration is validated (non-empty key, usable base
    /// URL) so mistakes surface as [`Error::Config`] here rather than on the first call.
    pub fn new(config: ExecutorConfig, transport: Arc<dyn AsyncTransport>) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            inner: Arc::new(Inner {
                transport,
                tokens: TokenState::new(config.token_policy),
                base_url: config.base_url,
                api_key: config.api_key,
                clock: config.clock,
                fetch_gate: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The API root requests are built against.
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
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
        // Build first: invalid input fails before any token is fetched.
        if op.authentication() == Authentication::None {
            return self.run_unauthenticated(op).await;
        }
        let request = op.request(&self.inner.base_url)?;
        let lease = self.lease().await?;
        match self.send_with(request, &lease, op).await {
            Err(e) if e.is_expired_token() => {
                let was_cached = self.inner.tokens.reject(&lease);
                tracing::debug!(
                    refetch = was_cached,
                    "Basiq rejected the server token as expired; re-authenticating once"
                );
                let lease = self.lease().await?;
                let request = op.request(&self.inner.base_url)?;
                self.send_with(request, &lease, op).await
            }
            other => other,
        }
    }

    /// Operations that carry their own credentials (`POST /token`). Kept apart from `run` so
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
        if let TokenDecision::Use(lease) = tokens.decide(self.inner.clock.now()) {
            return Ok(lease);
        }
        let _gate = self.inner.fetch_gate.lock().await;
        // Re-check: whoever held the gate before us may have stored a token.
        let requested_at = self.inner.clock.now();
        if let TokenDecision::Use(lease) = tokens.decide(requested_at) {
            return Ok(lease);
        }
        let op = PostToken::server(self.inner.api_key.clone());
        match self.run_unauthenticated(&op).await {
            Ok(token) => Ok(tokens.fetched(&token, requested_at, fastrand::f64())),
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
            .finish()
    }
}
