//! Server tokens: the `POST /token` operation and the [`TokenCache`] policy.
//!
//! Basiq's first best practice: a server token lives 3600 s and must be cached for global use —
//! never fetched per user, per connection or per request. The cache below decides, purely from
//! `now`, whether the cached token can be used or a fetch is needed; executors make the fetch
//! single-flight so N concurrent callers cause one `POST /token`.

use std::time::Duration;

use http::{header, HeaderValue, Method};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::engine::operation::{self, ApiBase, Authentication, Operation};
use crate::engine::transport::{HttpRequest, HttpResponse};
use crate::error::{ApiError, Error, ErrorContext};
use crate::id::UserId;
use crate::secret::{AccessToken, ApiKey};

pub mod store;
pub use store::{MemoryTokenStore, StoreError, StoredToken, TokenStore};

/// The lifetime of Basiq's server tokens (3600 s). A token loaded from a [`TokenStore`] carries
/// only its expiry, so its refresh-ahead margin is the one for this lifetime
/// ([`TokenPolicy::stored_margin`]).
pub const BASIQ_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The API version this SDK speaks. Sent on `/token` only: Basiq binds the version to the token.
pub const BASIQ_VERSION: &str = "3.0";

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenScope {
    /// Full access; never hand it to a browser or app.
    ServerAccess,
    /// Restricted to one user, for the Consent UI (`consent.basiq.io/home?token=…`).
    ClientAccess {
        /// The user the token is bound to.
        user_id: UserId,
    },
}

#[derive(Serialize)]
struct TokenForm<'a> {
    scope: &'a str,
    #[serde(rename = "userId", skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
}

/// `POST /token`: exchanges the API key for a bearer token.
#[derive(Debug, Clone)]
pub struct PostToken {
    api_key: ApiKey,
    scope: TokenScope,
}

impl PostToken {
    /// A token request for `scope`.
    pub fn new(api_key: ApiKey, scope: TokenScope) -> Self {
        Self { api_key, scope }
    }

    /// A `SERVER_ACCESS` token request.
    pub fn server(api_key: ApiKey) -> Self {
        Self::new(api_key, TokenScope::ServerAccess)
    }
}

/// A token as Basiq returns it: `{access_token, token_type, expires_in}`.
#[derive(Clone, Deserialize)]
#[non_exhaustive]
pub struct TokenResponse {
    /// The bearer token.
    #[serde(deserialize_with = "de_token")]
    pub access_token: AccessToken,
    /// Always `Bearer`.
    #[serde(default)]
    pub token_type: Option<String>,
    /// Lifetime in seconds (3600). Zero is refused: caching a token that is already expired
    /// would make every request fetch a new one.
    #[serde(deserialize_with = "de_lifetime")]
    pub expires_in: u64,
}

fn de_token<'de, D: serde::Deserializer<'de>>(d: D) -> Result<AccessToken, D::Error> {
    let raw = String::deserialize(d)?;
    if raw.is_empty() {
        return Err(serde::de::Error::custom("access_token is empty"));
    }
    // It is sent back as `Authorization: Bearer <token>`. A value with CR/LF, spaces, controls or
    // non-ASCII cannot be a header value for every transport (ureq refuses non-ASCII, nobody may
    // send CR/LF), so caching it would fail every request locally for its whole lifetime. Refused
    // here it is a decode error — never cached, never quoted — and the next call fetches again.
    if !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(serde::de::Error::custom(
            "access_token is not a valid header value (only visible ASCII is allowed)",
        ));
    }
    Ok(AccessToken::new(raw))
}

fn de_lifetime<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match u64::deserialize(d)? {
        0 => Err(serde::de::Error::custom("expires_in must be positive")),
        secs => Ok(secs),
    }
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &self.access_token)
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// A `/token` answer with an unexpected status may still carry a token (a proxy turning 200 into
/// 203, a gateway echoing the upstream answer): such a body is not kept in the error, whose text
/// ends up in logs. Basiq's own error format is kept — it has codes, never tokens.
fn withhold_token_bodies(error: Error) -> Error {
    match error {
        Error::Api { mut error, context } => {
            withhold_raw_body(&mut error);
            Error::Api { error, context }
        }
        other => other,
    }
}

/// Replaces the start of a `/token` answer that is not in Basiq's error format (it may hold a
/// token) with a note; Basiq's own error list is kept.
fn withhold_raw_body(error: &mut ApiError) {
    if error.raw_body.take().is_some() {
        error.raw_body =
            Some("[a /token answer that is not Basiq's error format is not shown]".into());
    }
}

impl Operation for PostToken {
    type Output = TokenResponse;

    fn request(&self, base: &ApiBase) -> Result<HttpRequest, Error> {
        if self.api_key.is_empty() {
            return Err(Error::config("the API key is empty"));
        }
        let url = operation::endpoint(base, &["token"])?;
        let form = match &self.scope {
            TokenScope::ServerAccess => TokenForm {
                scope: "SERVER_ACCESS",
                user_id: None,
            },
            TokenScope::ClientAccess { user_id } => TokenForm {
                scope: "CLIENT_ACCESS",
                user_id: Some(user_id.as_str()),
            },
        };
        let body = serde_urlencoded::to_string(&form)
            .map_err(|e| Error::invalid_input(format!("cannot encode token form: {e}")))?;
        let mut request = operation::empty_request(Method::POST, url);
        // The dashboard key is already base64(`uuid:uuid`): it is sent as given, not re-encoded.
        let mut auth = HeaderValue::try_from(format!("Basic {}", self.api_key.expose_secret()))
            .map_err(|_| {
                Error::config("the API key contains characters not allowed in a header")
            })?;
        auth.set_sensitive(true);
        let headers = request.headers_mut();
        headers.insert(header::AUTHORIZATION, auth);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(
            http::HeaderName::from_static("basiq-version"),
            HeaderValue::from_static(BASIQ_VERSION),
        );
        *request.body_mut() = body.into_bytes();
        Ok(request)
    }

    fn parse(&self, response: HttpResponse) -> Result<TokenResponse, Error> {
        if response.status().as_u16() == 404 {
            // Basiq answers a wrong, deleted or other-environment key with 404, not 401.
            let Error::Api { mut error, context } =
                Error::from_response(response.status(), response.body(), None)
            else {
                return Err(Error::decode(response.status(), "unexpected error shape"));
            };
            withhold_raw_body(&mut error);
            return Err(Error::InvalidApiKey { error, context });
        }
        operation::parse_json(&response, &[200]).map_err(withhold_token_bodies)
    }

    fn is_idempotent(&self) -> bool {
        // Asking for another token is harmless (within the 1,500 per 5 minutes limit).
        true
    }

    fn context(&self) -> ErrorContext {
        match &self.scope {
            TokenScope::ClientAccess { user_id } => ErrorContext::new().with_user(user_id),
            TokenScope::ServerAccess => ErrorContext::new(),
        }
    }

    fn authentication(&self) -> Authentication {
        Authentication::None
    }
}

/// Tuning of the [`TokenCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenPolicy {
    /// How long before expiry a new token is fetched, so no request leaves with a token about to
    /// expire in flight. Capped at 1/20 of the token's lifetime so a short-lived token is not
    /// refetched constantly: re-authentication stays close to once per lifetime.
    pub refresh_ahead: Duration,
}

impl TokenPolicy {
    /// A policy with the given refresh-ahead margin.
    pub fn new(refresh_ahead: Duration) -> Self {
        Self { refresh_ahead }
    }

    /// The margin actually used for a token of `lifetime`.
    pub fn margin_for(&self, lifetime: Duration) -> Duration {
        self.refresh_ahead.min(lifetime / 20)
    }

    /// The margin for a token loaded from a [`TokenStore`] (whose lifetime is not known): the
    /// one for Basiq's [`BASIQ_TOKEN_LIFETIME`]. A stored token with less than this left is
    /// ignored, exactly as a cached one would be refreshed.
    pub fn stored_margin(&self) -> Duration {
        self.margin_for(BASIQ_TOKEN_LIFETIME)
    }

    /// The margin for `stored`: for its lifetime when the store kept it, else
    /// [`stored_margin`](Self::stored_margin).
    pub fn margin_for_stored(&self, stored: &StoredToken) -> Duration {
        stored.lifetime.map_or_else(
            || self.stored_margin(),
            |lifetime| self.margin_for(lifetime),
        )
    }
}

impl Default for TokenPolicy {
    /// Refresh up to 60 s before expiry; [`TokenPolicy::margin_for`] caps it at `lifetime / 20`,
    /// so Basiq's 3600 s tokens are refreshed 30–60 s (jittered) before they expire.
    fn default() -> Self {
        Self {
            refresh_ahead: Duration::from_secs(60),
        }
    }
}

/// A token handed out by the cache, remembering which cached token it was.
#[derive(Debug, Clone)]
pub struct TokenLease {
    /// The token.
    pub token: AccessToken,
    /// When the cache considers it expired.
    pub expires_at: OffsetDateTime,
    generation: u64,
    /// `Bearer <token>`, built once when the token is cached (marked sensitive): clones share
    /// its bytes, so authorizing a request copies nothing.
    bearer: Option<HeaderValue>,
}

impl TokenLease {
    /// A number that changes every time the cache stores a new token.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Adds `Authorization: Bearer <token>` to a request, marked sensitive so `http`'s Debug hides it.
    pub fn authorize(&self, request: &mut HttpRequest) -> Result<(), Error> {
        match &self.bearer {
            Some(value) => {
                request
                    .headers_mut()
                    .insert(header::AUTHORIZATION, value.clone());
                Ok(())
            }
            None => authorize_bearer(request, &self.token),
        }
    }
}

/// `Bearer <token>` as a sensitive header value (`Err` when the token cannot be one).
fn bearer_value(token: &AccessToken) -> Result<HeaderValue, Error> {
    let mut value =
        HeaderValue::try_from(format!("Bearer {}", token.expose_secret())).map_err(|_| {
            Error::decode(
                http::StatusCode::OK,
                "access_token is not a valid header value",
            )
        })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Sets `Authorization: Bearer <token>` on `request`, the header value marked sensitive (so
/// `http`'s `Debug` hides it).
pub fn authorize_bearer(request: &mut HttpRequest, token: &AccessToken) -> Result<(), Error> {
    let value = bearer_value(token)?;
    request.headers_mut().insert(header::AUTHORIZATION, value);
    Ok(())
}

/// Why the cache wants a new token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchReason {
    /// No token yet.
    Missing,
    /// The cached token has expired.
    Expired,
    /// The cached token is still valid but within the refresh-ahead margin.
    RefreshAhead,
    /// Basiq rejected the cached token.
    Rejected,
}

/// What to do for the next request.
#[derive(Debug, Clone)]
pub enum TokenDecision {
    /// Use this cached token.
    Use(TokenLease),
    /// Fetch a new token first.
    Fetch(FetchReason),
}

#[derive(Debug, Clone)]
struct Cached {
    lease: TokenLease,
    refresh_at: OffsetDateTime,
}

/// The token-lifetime policy: pure state, time passed in.
#[derive(Debug, Clone, Default)]
pub struct TokenCache {
    policy: TokenPolicy,
    cached: Option<Cached>,
    rejected: bool,
    generation: u64,
}

impl TokenCache {
    /// An empty cache.
    pub fn new(policy: TokenPolicy) -> Self {
        Self {
            policy,
            ..Self::default()
        }
    }

    /// Whether the cached token can be used at `now`, or why a fetch is needed.
    pub fn decide(&self, now: OffsetDateTime) -> TokenDecision {
        match &self.cached {
            None if self.rejected => TokenDecision::Fetch(FetchReason::Rejected),
            None => TokenDecision::Fetch(FetchReason::Missing),
            Some(c) if now >= c.lease.expires_at => TokenDecision::Fetch(FetchReason::Expired),
            Some(c) if now >= c.refresh_at => TokenDecision::Fetch(FetchReason::RefreshAhead),
            Some(c) => TokenDecision::Use(c.lease.clone()),
        }
    }

    /// The cached token if it has not expired at `now`, even inside the refresh-ahead margin.
    /// Used to keep serving when a refresh fails.
    pub fn still_valid(&self, now: OffsetDateTime) -> Option<TokenLease> {
        self.cached
            .as_ref()
            .filter(|c| now < c.lease.expires_at)
            .map(|c| c.lease.clone())
    }

    /// Stores a fresh token. `requested_at` is when the `/token` request was *sent*, so network
    /// latency shortens, never lengthens, the lifetime we assume. `jitter` in `[0, 1]` spreads the
    /// refresh point inside the margin so a fleet does not refresh in lock-step.
    pub fn store(
        &mut self,
        response: &TokenResponse,
        requested_at: OffsetDateTime,
        jitter: f64,
    ) -> TokenLease {
        let lifetime = Duration::from_secs(response.expires_in);
        let margin = self.policy.margin_for(lifetime);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let ahead = margin.mul_f64(0.5 + 0.5 * jitter);
        let expires_at = requested_at.saturating_add(to_time(lifetime));
        let refresh_at = expires_at.saturating_sub(to_time(ahead));
        self.generation = self.generation.wrapping_add(1);
        let lease = TokenLease {
            token: response.access_token.clone(),
            expires_at,
            generation: self.generation,
            bearer: bearer_value(&response.access_token).ok(),
        };
        self.cached = Some(Cached {
            lease: lease.clone(),
            refresh_at,
        });
        self.rejected = false;
        lease
    }

    /// Caches a token loaded from a [`TokenStore`] (saved by another process). Its refresh point
    /// is spread inside [`TokenPolicy::stored_margin`] by `jitter` like a fetched token's. The
    /// caller has checked it is valid beyond that margin.
    pub fn adopt(&mut self, stored: &StoredToken, jitter: f64) -> TokenLease {
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let ahead = self
            .policy
            .margin_for_stored(stored)
            .mul_f64(0.5 + 0.5 * jitter);
        let refresh_at = stored.expires_at.saturating_sub(to_time(ahead));
        self.generation = self.generation.wrapping_add(1);
        let lease = TokenLease {
            bearer: bearer_value(&stored.token).ok(),
            token: stored.token.clone(),
            expires_at: stored.expires_at,
            generation: self.generation,
        };
        self.cached = Some(Cached {
            lease: lease.clone(),
            refresh_at,
        });
        self.rejected = false;
        lease
    }

    /// Basiq rejected `lease` as expired or invalid. The cache drops it only if it is still the
    /// cached token — a rejection of an older token must not discard a newer one. Returns whether
    /// the caller should re-authenticate (true) or simply retry with the newer cached token (false).
    pub fn reject(&mut self, lease: &TokenLease) -> bool {
        match &self.cached {
            Some(c) if c.lease.generation == lease.generation => {
                self.cached = None;
                self.rejected = true;
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> TokenPolicy {
        self.policy
    }
}

fn to_time(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_authorizes_with_its_cached_sensitive_bearer() {
        let mut cache = TokenCache::new(TokenPolicy::default());
        let token =
            parse(r#"{"access_token":"tok-1","token_type":"Bearer","expires_in":3600}"#).unwrap();
        let lease = cache.store(&token, OffsetDateTime::UNIX_EPOCH, 0.5);
        for lease in [lease.clone(), lease] {
            let mut request = HttpRequest::new(
                http::Method::GET,
                url::Url::parse("https://h/users").unwrap(),
            );
            lease.authorize(&mut request).unwrap();
            let value = request.headers().get(header::AUTHORIZATION).unwrap();
            assert_eq!(value.to_str().unwrap(), "Bearer tok-1");
            assert!(value.is_sensitive());
            assert!(!format!("{lease:?}").contains("tok-1"));
        }
    }

    fn parse(body: &str) -> Result<TokenResponse, Error> {
        let response = http::Response::builder()
            .status(200)
            .body(body.as_bytes().to_vec())
            .unwrap();
        PostToken::server(ApiKey::new("k")).parse(response)
    }

    #[test]
    fn zero_or_missing_lifetime_is_a_decode_error() {
        for body in [
            r#"{"access_token":"t","token_type":"Bearer","expires_in":0}"#,
            r#"{"access_token":"t","token_type":"Bearer"}"#,
            r#"{"access_token":"","token_type":"Bearer","expires_in":3600}"#,
        ] {
            let err = parse(body).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Decode, "{body}");
            assert!(!err.to_string().contains("\"t\""));
        }
        assert_eq!(
            parse(r#"{"access_token":"t","expires_in":3600}"#)
                .unwrap()
                .expires_in,
            3600
        );
    }

    #[test]
    fn token_404_is_an_invalid_api_key() {
        let response = http::Response::builder()
            .status(404)
            .body(br#"{"type":"list","correlationId":"c1","data":[{"type":"error","code":"resource-not-found","title":"Unable to authenticate. Please, check your API key"}]}"#.to_vec())
            .unwrap();
        let err = PostToken::server(ApiKey::new("k"))
            .parse(response)
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidApiKey);
        assert!(!err.is_retryable());
        // Basiq's own error list is still shown.
        assert!(err.to_string().contains("check your API key"), "{err}");
    }

    /// A 404 from `/token` whose body is not Basiq's error list (a proxy, a misrouted base URL,
    /// an echo) may hold a token: it is withheld like any other status's.
    #[test]
    fn a_token_404_that_is_not_basiqs_error_format_is_not_quoted() {
        for body in [
            r#""eyJsecretTOKEN""#,
            r#"{"access_token":"eyJsecretTOKEN"}"#,
            "eyJsecretTOKEN",
        ] {
            let response = http::Response::builder()
                .status(404)
                .body(body.as_bytes().to_vec())
                .unwrap();
            let err = PostToken::server(ApiKey::new("k"))
                .parse(response)
                .unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidApiKey);
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("eyJsecretTOKEN"), "{shown}");
        }
    }
}
