//! [`BlockingExecutor`]: runs any [`Operation`] with a shared, single-flight server token.

use std::fmt;
use std::sync::{Arc, Mutex};

use basiq_core::auth::{ExecutorConfig, TokenState};
use basiq_core::clock::Clock;
use basiq_core::error::Error;
use basiq_core::id::UserId;
use basiq_core::operation::{Authentication, Operation};
use basiq_core::secret::{AccessToken, ApiKey};
use basiq_core::token::{PostToken, TokenDecision, TokenLease, TokenScope};
use basiq_core::transport::{BlockingTransport, HttpRequest, HttpResponse};
use url::Url;

/// Runs operations against Basiq from ordinary threads: token from the shared cache, bearer, send,
/// parse, ids on errors, and one re-authentication when Basiq says the token expired.
///
/// Cheap to clone; clones share the token cache, so all threads of a process authenticate once
/// per token lifetime (Basiq: "cache one token for global use").
///
/// **Single flight.** When the cache needs a token, threads queue on a `std::sync::Mutex<()>`
/// *fetch gate*; the first fetches, the others re-check the cache after acquiring the gate and
/// find the fresh token. No async runtime is involved, so this client is safe to call from any
/// thread — including a thread owned by an async host, unlike `block_on`-based clients.
///
/// **Retries.** Only the re-authentication retry is built in (an expired-token answer means
/// Basiq refused the request before acting on it, so repeating is safe even for a non-idempotent
/// operation). This executor never repeats a request whose outcome is unknown.
#[derive(Clone)]
pub struct BlockingExecutor {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Arc<dyn BlockingTransport>,
    base_url: Url,
    api_key: ApiKey,
    clock: Arc<dyn Clock>,
    tokens: TokenState,
    fetch_gate: Mutex<()>,
}

impl BlockingExecutor {
    /// An executor over `transport`. The configuration is validated (non-empty key, usable base
    /// URL) so mistakes surface as [`Error::Config`] here rather than on the first call.
    pub fn new(
        config: ExecutorConfig,
        transport: Arc<dyn BlockingTransport>,
    ) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            inner: Arc::new(Inner {
                transport,
                tokens: TokenState::new(config.token_policy),
                base_url: config.base_url,
                api_key: config.api_key,
                clock: config.clock,
                fetch_gate: Mutex::new(()),
            }),
        })
    }

    /// The API root requests are built against.
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
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
        if op.authentication() == Authentication::None {
            return self.run_unauthenticated(op);
        }
        // Build first: invalid input fails before any token is fetched.
        let request = op.request(&self.inner.base_url)?;
        let lease = self.lease()?;
        match self.send_with(request, &lease, op) {
            Err(e) if e.is_expired_token() => {
                let was_cached = self.inner.tokens.reject(&lease);
                tracing::debug!(
                    refetch = was_cached,
                    "Basiq rejected the server token as expired; re-authenticating once"
                );
                let lease = self.lease()?;
                let request = op.request(&self.inner.base_url)?;
                self.send_with(request, &lease, op)
            }
            other => other,
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
        if let TokenDecision::Use(lease) = tokens.decide(self.inner.clock.now()) {
            return Ok(lease);
        }
        // A poisoned gate only means a fetching thread panicked; the gate guards no data.
        let _gate = self
            .inner
            .fetch_gate
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Re-check: whoever held the gate before us may have stored a token.
        let requested_at = self.inner.clock.now();
        if let TokenDecision::Use(lease) = tokens.decide(requested_at) {
            return Ok(lease);
        }
        let op = PostToken::server(self.inner.api_key.clone());
        match self.run_unauthenticated(&op) {
            Ok(token) => Ok(tokens.fetched(&token, requested_at, fastrand::f64())),
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
            .finish()
    }
}
