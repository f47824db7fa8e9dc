//! What the two executors share about authentication: their configuration and the token state.
//!
//! The async and the blocking executor differ only in *how they wait* (a `tokio` mutex versus a
//! `std` mutex around the `/token` fetch). Everything they decide — use the cached token or fetch,
//! what to store, whether a failed refresh can be survived, what a rejection means — lives here,
//! once, with `now` passed in, so it is unit-tested without any IO and cannot drift between the
//! two clients.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;
use url::Url;

use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::policy::retry::{AttemptFailure, RetryBudget, RetryDecision, RetryPolicy};
use crate::policy::token::{
    FetchReason, MemoryTokenStore, StoredToken, TokenCache, TokenDecision, TokenLease, TokenPolicy,
    TokenResponse, TokenStore,
};
use crate::secret::{AccessToken, ApiKey};

/// Basiq's production API.
pub const DEFAULT_BASE_URL: &str = "https://au-api.basiq.io";

/// After a refresh-ahead fetch failed while the cached token is still valid, how long callers keep
/// using that token before one of them tries `/token` again. Without this pause every request in
/// the refresh-ahead window would retry `/token` while Basiq is down or throttling us.
pub const REFRESH_RETRY_PAUSE: Duration = Duration::from_secs(5);

/// The default cap on a response body: Basiq's biggest pages are a few MB; the cap only stops a
/// broken or hostile server from exhausting memory.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

/// The default overall deadline of one call: every attempt, backoff and `Retry-After` wait and
/// the reading of slow bodies together. Room for a few attempts at the default 60 s request
/// timeout; a call never hangs longer than this however the server behaves.
pub const DEFAULT_CALL_DEADLINE: Duration = Duration::from_secs(150);

/// What an executor needs to talk to Basiq: where, with which key, on which clock, under which
/// token policy. Shared by both executors so the facade builds it once.
#[derive(Clone)]
pub struct ExecutorConfig {
    /// The API root, e.g. `https://au-api.basiq.io` or an emulator's `http://127.0.0.1:port`.
    pub base_url: Url,
    /// The API key, as the dashboard shows it.
    pub api_key: ApiKey,
    /// Where `now` comes from (a manual clock in tests).
    pub clock: Arc<dyn Clock>,
    /// When to refresh the server token.
    pub token_policy: TokenPolicy,
    /// When to repeat a failed request ([`RetryPolicy::never`] turns retries off). Executors
    /// only ever repeat *idempotent* operations (and `/token`).
    pub retry_policy: RetryPolicy,
    /// Where the server token is shared with other processes ([`MemoryTokenStore`] by default:
    /// process-local).
    pub token_store: Arc<dyn TokenStore>,
    /// The largest response body accepted ([`DEFAULT_MAX_RESPONSE_BYTES`]); a larger one is a
    /// [`TransportErrorKind::TooLarge`](crate::error::TransportErrorKind::TooLarge) error,
    /// never retried.
    pub max_response_bytes: u64,
    /// How long one call may take in all, retries and waits included ([`DEFAULT_CALL_DEADLINE`];
    /// `None`: bounded only by the retry policy and the transport's timeouts). A retry whose
    /// backoff or `Retry-After` would end past it is not made, and each request is given only
    /// what is left of it (a slowly dripping body is cut off).
    pub call_deadline: Option<Duration>,
    /// Whether an `http://` base URL may name a host other than a loopback address. Off by
    /// default: a typo (`http://au-api.basiq.io`) would send the API key in clear.
    pub allow_insecure_http: bool,
}

impl ExecutorConfig {
    /// A configuration with the system clock and the default token policy.
    pub fn new(base_url: Url, api_key: ApiKey) -> Self {
        Self {
            base_url,
            api_key,
            clock: Arc::new(SystemClock),
            token_policy: TokenPolicy::default(),
            retry_policy: RetryPolicy::default(),
            token_store: Arc::new(MemoryTokenStore::new()),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            call_deadline: Some(DEFAULT_CALL_DEADLINE),
            allow_insecure_http: false,
        }
    }

    /// Replaces the response body cap (see [`max_response_bytes`](Self::max_response_bytes)).
    pub fn with_max_response_bytes(mut self, max: u64) -> Self {
        self.max_response_bytes = max;
        self
    }

    /// Replaces the overall deadline of one call (see [`call_deadline`](Self::call_deadline)).
    pub fn with_call_deadline(mut self, deadline: Option<Duration>) -> Self {
        self.call_deadline = deadline;
        self
    }

    /// Allows `http://` to a host that is not a loopback address (see
    /// [`allow_insecure_http`](Self::allow_insecure_http)).
    pub fn with_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Replaces the token store (share one between processes so a fleet authenticates once per
    /// token lifetime).
    pub fn with_token_store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.token_store = store;
        self
    }

    /// Replaces the retry policy.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry_policy = policy;
        self
    }

    /// Replaces the clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces the token policy.
    pub fn with_token_policy(mut self, policy: TokenPolicy) -> Self {
        self.token_policy = policy;
        self
    }

    /// Checks what can be checked without a request: a non-empty key and a base URL that can
    /// carry a path. Both mistakes would otherwise only show up on the first call.
    pub fn validate(&self) -> Result<(), Error> {
        if self.api_key.is_empty() {
            return Err(Error::config("the API key is missing or empty"));
        }
        if self.base_url.cannot_be_a_base() {
            return Err(Error::config(format!(
                "base URL {} cannot carry a path",
                self.base_url
            )));
        }
        if !matches!(self.base_url.scheme(), "http" | "https") {
            return Err(Error::config(format!(
                "base URL {} must use http or https",
                self.base_url
            )));
        }
        if self.base_url.scheme() == "http"
            && !self.allow_insecure_http
            && !is_loopback(&self.base_url)
        {
            return Err(Error::config(format!(
                "base URL {} uses http:// for a host that is not a loopback address: the API key \
                 and tokens would travel in clear (use https://, or opt in with allow_insecure_http)",
                self.base_url
            )));
        }
        if self.max_response_bytes == 0 {
            return Err(Error::config("max_response_bytes must be at least 1"));
        }
        if self.call_deadline.is_some_and(|d| d.is_zero()) {
            return Err(Error::config("the call deadline must be longer than zero"));
        }
        Ok(())
    }
}

impl fmt::Debug for ExecutorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutorConfig")
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &self.api_key)
            .field("clock", &self.clock)
            .field("token_policy", &self.token_policy)
            .field("retry_policy", &self.retry_policy)
            .field("token_store", &self.token_store)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("call_deadline", &self.call_deadline)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .finish()
    }
}

/// Whether `url` names a loopback host: `localhost` (and `*.localhost`, RFC 6761), `127.0.0.0/8`
/// or `[::1]` — where plain `http://` never leaves the machine.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        None => false,
    }
}

/// Parses a base URL for [`ExecutorConfig`], turning mistakes into [`Error::Config`].
pub fn parse_base_url(raw: &str) -> Result<Url, Error> {
    let url = Url::parse(raw.trim())
        .map_err(|e| Error::config(format!("base URL {raw:?} is not a URL: {e}")))?;
    if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") {
        return Err(Error::config(format!(
            "base URL {raw:?} must be an http(s) URL"
        )));
    }
    Ok(url)
}

#[derive(Debug)]
struct State {
    cache: TokenCache,
    /// Set when a refresh-ahead fetch failed: until then the still-valid token is served.
    refresh_paused_until: Option<OffsetDateTime>,
    /// The token Basiq rejected last: never taken back from a [`TokenStore`].
    rejected_token: Option<AccessToken>,
    /// The last `/token` fetch that failed with no valid token left, shared with every caller
    /// that waited behind it and with callers arriving before its backoff ends.
    failed_fetch: Option<FailedFetch>,
    /// Failed fetches in a row (the backoff doubles with each).
    failures_in_a_row: u32,
}

/// A failed `/token` fetch as callers other than the fetcher see it.
#[derive(Debug)]
struct FailedFetch {
    at: OffsetDateTime,
    until: OffsetDateTime,
    /// The fetch's error, as [`Error::TokenUnavailable`] (its `retry_at` is `until`).
    error: Error,
}

impl FailedFetch {
    fn new(cause: &Error, at: OffsetDateTime, until: OffsetDateTime) -> Self {
        Self {
            at,
            until,
            error: Error::token_unavailable(cause, until),
        }
    }

    fn shared(&self) -> Error {
        Error::token_unavailable(&self.error, self.until)
    }
}

/// The first backoff after a failed `/token` fetch with no valid token left; it doubles with
/// each failure in a row up to [`MAX_TOKEN_FAILURE_BACKOFF`] and resets on success.
pub const FIRST_TOKEN_FAILURE_BACKOFF: Duration = Duration::from_secs(1);
/// The longest backoff between `/token` fetches during an outage or throttle.
pub const MAX_TOKEN_FAILURE_BACKOFF: Duration = Duration::from_secs(30);

/// The backoff after `failures_in_a_row` failed fetches (1, 2, 4, … seconds, at most 30).
pub fn token_failure_backoff(failures_in_a_row: u32) -> Duration {
    let doublings = failures_in_a_row.saturating_sub(1).min(16);
    FIRST_TOKEN_FAILURE_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_TOKEN_FAILURE_BACKOFF)
}

/// The shared server-token state of one client: a [`TokenCache`] behind a mutex, plus the rule
/// for surviving a failed refresh. The mutex is only ever held for a few instructions, never
/// across IO, so it is a plain `std` mutex in both executors.
///
/// Single flight is the executor's job: it takes its fetch gate, calls [`decide`](Self::decide)
/// *again* (another caller may have just stored a token), fetches only on
/// [`TokenDecision::Fetch`], and reports with [`fetched`](Self::fetched) or
/// [`fetch_failed`](Self::fetch_failed).
pub struct TokenState {
    state: Mutex<State>,
}

impl TokenState {
    /// An empty state.
    pub fn new(policy: TokenPolicy) -> Self {
        Self {
            state: Mutex::new(State {
                cache: TokenCache::new(policy),
                refresh_paused_until: None,
                rejected_token: None,
                failed_fetch: None,
                failures_in_a_row: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Poisoning only means a thread panicked while holding plain data that every method
        // leaves consistent; keep going rather than turning one panic into many.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the cached token can be used at `now`, or why a fetch is needed. While a failed
    /// refresh is paused, the still-valid token is served instead of asking for a fetch.
    pub fn decide(&self, now: OffsetDateTime) -> TokenDecision {
        let state = self.lock();
        match state.cache.decide(now) {
            TokenDecision::Fetch(FetchReason::RefreshAhead)
                if state.refresh_paused_until.is_some_and(|until| now < until) =>
            {
                match state.cache.still_valid(now) {
                    Some(lease) => TokenDecision::Use(lease),
                    None => TokenDecision::Fetch(FetchReason::Expired),
                }
            }
            decision => decision,
        }
    }

    /// The cached token if it has not expired at `now`, even inside the refresh-ahead margin.
    /// While one caller refreshes ahead of expiry, the others use this instead of waiting.
    pub fn still_valid(&self, now: OffsetDateTime) -> Option<TokenLease> {
        self.lock().cache.still_valid(now)
    }

    /// Stores a token fetched by a request sent at `requested_at`. `jitter` in `[0, 1]` (from the
    /// executor's random source) spreads the next refresh inside the margin.
    pub fn fetched(
        &self,
        response: &TokenResponse,
        requested_at: OffsetDateTime,
        jitter: f64,
    ) -> TokenLease {
        let mut state = self.lock();
        state.refresh_paused_until = None;
        state.failed_fetch = None;
        state.failures_in_a_row = 0;
        state.cache.store(response, requested_at, jitter)
    }

    /// The failure a caller that decided to fetch at `since` must share instead of fetching: a
    /// fetch that failed while it waited (at or after `since`), or one whose backoff has not
    /// ended at `now`. The answer is an [`Error::TokenUnavailable`] repeating the failure.
    pub fn shared_failure(&self, since: OffsetDateTime, now: OffsetDateTime) -> Option<Error> {
        let state = self.lock();
        let failed = state.failed_fetch.as_ref()?;
        (failed.at >= since || now < failed.until).then(|| failed.shared())
    }

    /// Whether `token` is the one Basiq rejected last.
    pub fn is_rejected(&self, token: &AccessToken) -> bool {
        self.lock()
            .rejected_token
            .as_ref()
            .is_some_and(|rejected| rejected.same_as(token))
    }

    /// The refresh-ahead margin for a stored token (see [`TokenPolicy::margin_for_stored`]).
    pub fn margin_for_stored(&self, stored: &StoredToken) -> Duration {
        self.lock().cache.policy().margin_for_stored(stored)
    }

    /// When the current failure backoff ends, if one is running at `now`.
    pub fn failure_backoff_until(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let state = self.lock();
        state
            .failed_fetch
            .as_ref()
            .map(|f| f.until)
            .filter(|until| now < *until)
    }

    /// A `/token` fetch failed at `now`. If the cached token is still valid (the fetch was a
    /// refresh ahead of expiry), it keeps being served — for [`REFRESH_RETRY_PAUSE`] before anyone
    /// tries again — and a warning is logged (kind and status only: no key, no token). Otherwise
    /// the error is returned.
    pub fn fetch_failed(&self, error: Error, now: OffsetDateTime) -> Result<TokenLease, Error> {
        let mut state = self.lock();
        match state.cache.still_valid(now) {
            Some(lease) => {
                tracing::warn!(
                    error.kind = ?error.kind(),
                    error.status = ?error.status(),
                    expires_at = %lease.expires_at,
                    "refreshing the Basiq server token failed; still using the current token until it expires"
                );
                state.refresh_paused_until = Some(now.saturating_add(
                    time::Duration::try_from(REFRESH_RETRY_PAUSE).unwrap_or(time::Duration::ZERO),
                ));
                Ok(lease)
            }
            None => {
                state.failures_in_a_row = state.failures_in_a_row.saturating_add(1);
                let backoff = token_failure_backoff(state.failures_in_a_row);
                let until = now.saturating_add(
                    time::Duration::try_from(backoff).unwrap_or(time::Duration::ZERO),
                );
                tracing::warn!(
                    error.kind = ?error.kind(),
                    error.status = ?error.status(),
                    retry_at = %until,
                    "fetching the Basiq server token failed; callers share this failure until the backoff ends"
                );
                // Keep a copy for the callers that share it (the fetcher gets the original).
                state.failed_fetch = Some(FailedFetch::new(&error, now, until));
                Err(error)
            }
        }
    }

    /// Records a failure another instance of the fleet reported (its backoff key), so this
    /// process shares it too until `until`.
    pub fn fleet_failure(&self, error: &Error, now: OffsetDateTime, until: OffsetDateTime) {
        self.lock().failed_fetch = Some(FailedFetch::new(error, now, until));
    }

    /// Offers a token loaded from a [`TokenStore`] at `now`, when [`decide`](Self::decide) asked
    /// for a fetch. It is taken (and cached, its refresh point spread by `jitter`) only if it is
    /// valid beyond [`TokenPolicy::stored_margin`] at `now` and is not the token Basiq rejected
    /// last; otherwise `None`, and the caller fetches.
    pub fn adopt_stored(
        &self,
        stored: &StoredToken,
        now: OffsetDateTime,
        jitter: f64,
    ) -> Option<TokenLease> {
        let mut state = self.lock();
        if state
            .rejected_token
            .as_ref()
            .is_some_and(|rejected| rejected.same_as(&stored.token))
        {
            tracing::debug!("the stored Basiq token is the one just rejected; fetching a new one");
            return None;
        }
        let margin = time::Duration::try_from(state.cache.policy().margin_for_stored(stored))
            .unwrap_or(time::Duration::MAX);
        if now >= stored.expires_at.saturating_sub(margin) {
            tracing::debug!(
                expires_at = %stored.expires_at,
                "the stored Basiq token expires within the refresh-ahead margin; fetching a new one"
            );
            return None;
        }
        state.refresh_paused_until = None;
        Some(state.cache.adopt(stored, jitter))
    }

    /// Basiq rejected `lease` as expired or invalid. Returns whether it was the cached token (the
    /// next [`decide`](Self::decide) asks for a fetch) or an older one (the next `decide` hands
    /// out the newer cached token, no fetch needed). Either way the token is remembered so it is
    /// never taken back from a [`TokenStore`].
    pub fn reject(&self, lease: &TokenLease) -> bool {
        let mut state = self.lock();
        state.rejected_token = Some(lease.token.clone());
        let was_cached = state.cache.reject(lease);
        if was_cached {
            state.refresh_paused_until = None;
        }
        was_cached
    }

    /// The policy in force.
    pub fn policy(&self) -> TokenPolicy {
        self.lock().cache.policy()
    }
}

impl Default for TokenState {
    fn default() -> Self {
        Self::new(TokenPolicy::default())
    }
}

impl fmt::Debug for TokenState {
    /// Shows whether a token is cached and until when, never the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        let cached = state
            .cache
            .still_valid(OffsetDateTime::UNIX_EPOCH)
            .map(|lease| lease.expires_at);
        f.debug_struct("TokenState")
            .field("policy", &state.cache.policy())
            .field("cached_until", &cached)
            .finish()
    }
}

/// The retry side of an executor: its [`RetryPolicy`] and the client-wide [`RetryBudget`], so a
/// struggling Basiq is not hit with every request's full retry series at once.
///
/// One rule is stricter than the policy: an operation that is not idempotent is **never**
/// repeated automatically, even after a connect error. Whether it reached Basiq is for the caller
/// to reconcile (list the user's jobs, re-read the resource), not for the SDK to guess.
pub struct RetryState {
    policy: RetryPolicy,
    budget: Mutex<RetryBudget>,
}

impl RetryState {
    /// A full budget at `now`.
    pub fn new(policy: RetryPolicy, now: OffsetDateTime) -> Self {
        Self {
            policy,
            budget: Mutex::new(policy.new_budget(now)),
        }
    }

    /// After attempt number `attempt` (1 = the first) failed with `error`: how long to wait
    /// before repeating it, or `None` to give up and return the error. `jitter` in `[0, 1]`.
    pub fn next_delay(
        &self,
        attempt: u32,
        error: &Error,
        idempotent: bool,
        jitter: f64,
        now: OffsetDateTime,
    ) -> Option<Duration> {
        if !idempotent {
            return None;
        }
        let failure = AttemptFailure::from_error(error);
        let mut budget = self
            .budget
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match self
            .policy
            .decide_with_budget(&mut budget, attempt, &failure, true, jitter, now)
        {
            RetryDecision::RetryAfter(delay) => {
                // INFO: a retry is worth an operator's eye (a flaky network, Basiq throttling).
                tracing::info!(
                    attempt,
                    error.kind = ?error.kind(),
                    error.status = ?error.status(),
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "retrying an idempotent Basiq request"
                );
                Some(delay)
            }
            RetryDecision::GiveUp(reason) => {
                if attempt > 1 {
                    tracing::debug!(attempt, %reason, "not retrying the Basiq request again");
                }
                None
            }
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }
}

impl fmt::Debug for RetryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryState")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::token::TokenResponse;

    fn token(value: &str, expires_in: u64) -> TokenResponse {
        serde_json::from_value(serde_json::json!({
            "access_token": value, "token_type": "Bearer", "expires_in": expires_in
        }))
        .unwrap()
    }

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(secs)
    }

    #[test]
    fn plain_http_only_for_loopback_unless_opted_in() {
        let config =
            |raw: &str| ExecutorConfig::new(parse_base_url(raw).unwrap(), ApiKey::new("k"));
        for ok in [
            "https://au-api.basiq.io",
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "http://[::1]:9",
            "http://localhost:1",
            "http://api.localhost",
        ] {
            assert!(config(ok).validate().is_ok(), "{ok}");
        }
        for clear in [
            "http://au-api.basiq.io",
            "http://10.0.0.1",
            "http://localhost.evil.com",
            "http://[::2]",
        ] {
            let err = config(clear).validate().unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Config, "{clear}");
            assert!(err.to_string().contains("allow_insecure_http"), "{err}");
            assert!(config(clear).with_insecure_http(true).validate().is_ok());
        }
    }

    #[test]
    fn a_token_that_is_not_a_header_value_is_a_decode_error() {
        for bad in [
            r"abc\r\nX-Evil: 1",
            "tok en",
            r"t\u00f6ken",
            r"tab\tbed",
            "café",
        ] {
            let body =
                format!(r#"{{"access_token":"{bad}","token_type":"Bearer","expires_in":3600}}"#);
            let err = crate::engine::operation::decode_json::<TokenResponse>(
                http::StatusCode::OK,
                body.as_bytes(),
            )
            .err()
            .unwrap_or_else(|| panic!("{bad} accepted"));
            assert_eq!(err.kind(), crate::ErrorKind::Decode);
            assert!(!err.to_string().contains("Evil"), "{err}");
        }
        let state = TokenState::default();
        assert!(matches!(
            state.decide(at(0)),
            TokenDecision::Fetch(FetchReason::Missing)
        ));
    }

    #[test]
    fn failed_refresh_keeps_serving_and_pauses_retries() {
        let state = TokenState::default();
        assert!(matches!(
            state.decide(at(0)),
            TokenDecision::Fetch(FetchReason::Missing)
        ));
        state.fetched(&token("t1", 3600), at(0), 0.0);
        // Inside the refresh-ahead window a fetch is wanted...
        assert!(matches!(
            state.decide(at(3590)),
            TokenDecision::Fetch(FetchReason::RefreshAhead)
        ));
        // ...it fails, the old token keeps being served, and nobody retries for a few seconds.
        let err = Error::config("boom");
        let lease = state.fetch_failed(err, at(3590)).unwrap();
        assert_eq!(lease.token.expose_secret(), "t1");
        assert!(matches!(state.decide(at(3592)), TokenDecision::Use(_)));
        assert!(matches!(
            state.decide(at(3596)),
            TokenDecision::Fetch(FetchReason::RefreshAhead)
        ));
        // Once expired, the failure surfaces.
        assert!(state.fetch_failed(Error::config("x"), at(3600)).is_err());
    }

    #[test]
    fn reject_only_discards_the_cached_token() {
        let state = TokenState::default();
        let old = state.fetched(&token("t1", 3600), at(0), 0.5);
        let new = state.fetched(&token("t2", 3600), at(10), 0.5);
        assert!(!state.reject(&old));
        match state.decide(at(11)) {
            TokenDecision::Use(l) => assert_eq!(l.generation(), new.generation()),
            other => panic!("expected the newer token, got {other:?}"),
        }
        assert!(state.reject(&new));
        assert!(matches!(
            state.decide(at(11)),
            TokenDecision::Fetch(FetchReason::Rejected)
        ));
    }

    #[test]
    fn debug_hides_the_token() {
        let state = TokenState::default();
        state.fetched(&token("secret-token-value", 3600), at(0), 0.5);
        assert!(!format!("{state:?}").contains("secret-token-value"));
    }

    #[test]
    fn non_idempotent_operations_are_never_retried() {
        use crate::error::{TransportError, TransportErrorKind};
        let retry = RetryState::new(RetryPolicy::default(), at(0));
        let connect = Error::transport(TransportError::new(TransportErrorKind::Connect, "refused"));
        assert!(retry.next_delay(1, &connect, false, 0.5, at(0)).is_none());
        assert!(retry.next_delay(1, &connect, true, 0.5, at(0)).is_some());
        let not_found = Error::from_response(http::StatusCode::NOT_FOUND, b"{}", None);
        assert!(retry.next_delay(1, &not_found, true, 0.5, at(0)).is_none());
        let never = RetryState::new(RetryPolicy::never(), at(0));
        assert!(never.next_delay(1, &connect, true, 0.5, at(0)).is_none());
    }

    #[test]
    fn config_validation() {
        let url = parse_base_url("http://127.0.0.1:1").unwrap();
        assert!(ExecutorConfig::new(url.clone(), ApiKey::new(" "))
            .validate()
            .is_err());
        assert!(ExecutorConfig::new(url, ApiKey::new("k"))
            .validate()
            .is_ok());
        assert!(matches!(
            parse_base_url("not a url"),
            Err(Error::Config { .. })
        ));
        assert!(parse_base_url("mailto:x@y").is_err());
        let cfg = ExecutorConfig::new(
            parse_base_url(DEFAULT_BASE_URL).unwrap(),
            ApiKey::new("super-secret-key"),
        );
        assert!(!format!("{cfg:?}").contains("super-secret-key"));
    }
}
