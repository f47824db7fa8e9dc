//! The error taxonomy.
//!
//! One [`Error`] type for the whole SDK. Every variant that comes from talking to Basiq carries an
//! [`ErrorContext`] with the ids Basiq support asks for (`userId`, `connectionId`, `jobId`) and the
//! `correlationId` of the response, and its `Display` shows Basiq's code, title, detail and the
//! HTTP status — never an API key or token.

use std::fmt;
use std::time::Duration;

use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::id::{ConnectionId, InvalidId, JobId, UserId};

/// The ids that locate an error, as Basiq's best-practice guide asks every log line to carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorContext {
    /// The user the call was about.
    pub user_id: Option<UserId>,
    /// The connection the call was about.
    pub connection_id: Option<ConnectionId>,
    /// The job the call was about.
    pub job_id: Option<JobId>,
    /// Basiq's `correlationId` from the error body, for support tickets.
    pub correlation_id: Option<String>,
}

impl ErrorContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the user id.
    pub fn with_user(mut self, id: &UserId) -> Self {
        self.user_id = Some(id.clone());
        self
    }

    /// Sets the connection id.
    pub fn with_connection(mut self, id: &ConnectionId) -> Self {
        self.connection_id = Some(id.clone());
        self
    }

    /// Sets the job id.
    pub fn with_job(mut self, id: &JobId) -> Self {
        self.job_id = Some(id.clone());
        self
    }

    /// Sets the correlation id.
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Whether no id is known.
    pub fn is_empty(&self) -> bool {
        self.user_id.is_none()
            && self.connection_id.is_none()
            && self.job_id.is_none()
            && self.correlation_id.is_none()
    }

    /// Fills the ids this context lacks from `other`; ids already present win.
    pub fn merge(mut self, other: &ErrorContext) -> Self {
        if self.user_id.is_none() {
            self.user_id.clone_from(&other.user_id);
        }
        if self.connection_id.is_none() {
            self.connection_id.clone_from(&other.connection_id);
        }
        if self.job_id.is_none() {
            self.job_id.clone_from(&other.job_id);
        }
        if self.correlation_id.is_none() {
            self.correlation_id.clone_from(&other.correlation_id);
        }
        self
    }
}

impl fmt::Display for ErrorContext {
    /// `userId=…, connectionId=…, jobId=…, correlationId=…`, listing only the known ids.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut field = |f: &mut fmt::Formatter<'_>, name: &str, value: Option<&str>| {
            if let Some(value) = value {
                if !first {
                    f.write_str(", ")?;
                }
                first = false;
                write!(f, "{name}={value}")?;
            }
            Ok::<(), fmt::Error>(())
        };
        field(f, "userId", self.user_id.as_ref().map(UserId::as_str))?;
        field(
            f,
            "connectionId",
            self.connection_id.as_ref().map(ConnectionId::as_str),
        )?;
        field(f, "jobId", self.job_id.as_ref().map(JobId::as_str))?;
        field(f, "correlationId", self.correlation_id.as_deref())?;
        Ok(())
    }
}

/// Where in the request Basiq found the problem.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApiErrorSource {
    /// A JSON pointer into the request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// The offending parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
}

/// One entry of Basiq's error list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApiErrorItem {
    /// Machine-readable code, e.g. `access-denied`, `parameter-not-valid`.
    #[serde(default)]
    pub code: Option<String>,
    /// Short human-readable summary.
    #[serde(default)]
    pub title: Option<String>,
    /// Longer explanation.
    #[serde(default, alias = "details")]
    pub detail: Option<String>,
    /// Where the problem is.
    #[serde(default)]
    pub source: Option<ApiErrorSource>,
}

/// Basiq's error body: `{type:"list", correlationId, data:[{code,title,detail,source}]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ApiErrorList {
    /// Basiq's id for this failure.
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// The errors (usually one).
    #[serde(default)]
    pub data: Vec<ApiErrorItem>,
}

/// A non-success answer from Basiq.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Basiq's errors; empty when the body was not in Basiq's format.
    pub errors: Vec<ApiErrorItem>,
    /// `Retry-After`, when the server sent one (Basiq does not document it; we honour it anyway).
    pub retry_after: Option<Duration>,
    /// The start of a body that was not in Basiq's format (at most 256 characters).
    pub raw_body: Option<String>,
}

impl ApiError {
    /// Builds an error from a status and a response body, accepting bodies in any format.
    pub fn from_body(
        status: StatusCode,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> (Self, Option<String>) {
        match serde_json::from_slice::<ApiErrorList>(body) {
            Ok(list) if !list.data.is_empty() || list.correlation_id.is_some() => (
                Self {
                    status,
                    errors: list.data,
                    retry_after,
                    raw_body: None,
                },
                list.correlation_id,
            ),
            _ => {
                let text = String::from_utf8_lossy(body);
                let raw: String = text.chars().take(256).collect();
                (
                    Self {
                        status,
                        errors: Vec::new(),
                        retry_after,
                        raw_body: (!raw.trim().is_empty()).then_some(raw),
                    },
                    None,
                )
            }
        }
    }

    /// The first error code, if any.
    pub fn code(&self) -> Option<&str> {
        self.errors.iter().find_map(|e| e.code.as_deref())
    }

    /// Whether any error in the list has this code.
    pub fn has_code(&self, code: &str) -> bool {
        self.errors.iter().any(|e| e.code.as_deref() == Some(code))
    }

    /// Whether any error's title or detail contains `text` (Basiq sometimes only says it there).
    pub fn mentions(&self, text: &str) -> bool {
        self.errors.iter().any(|e| {
            e.title.as_deref().is_some_and(|t| t.contains(text))
                || e.detail.as_deref().is_some_and(|d| d.contains(text))
        })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        for (i, e) in self.errors.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            let mut parts = Vec::new();
            if let Some(code) = &e.code {
                parts.push(code.as_str());
            }
            if let Some(title) = &e.title {
                parts.push(title.as_str());
            }
            if let Some(detail) = e
                .detail
                .as_deref()
                .filter(|d| Some(*d) != e.title.as_deref())
            {
                parts.push(detail);
            }
            f.write_str(&parts.join(" — "))?;
            if let Some(src) = &e.source {
                if let Some(p) = src.pointer.as_deref().or(src.parameter.as_deref()) {
                    write!(f, " (at {p})")?;
                }
            }
        }
        if self.errors.is_empty() {
            if let Some(raw) = &self.raw_body {
                write!(f, ": {raw}")?;
            }
        }
        Ok(())
    }
}

/// How a transport failed. Decides whether a request may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The connection could not be established: the request was never sent, so repeating is safe.
    Connect,
    /// No answer in time: the request may or may not have been processed.
    Timeout,
    /// The connection failed mid-exchange (reset, truncated body): outcome unknown.
    Io,
    /// The response body is larger than the configured cap
    /// ([`ExecutorConfig::max_response_bytes`](crate::engine::auth::ExecutorConfig::max_response_bytes)).
    /// Never retried: it would be downloaded again only to be refused again.
    TooLarge,
    /// Anything else.
    Other,
}

/// A failure below HTTP, with the transport's own error boxed so no reqwest/ureq type leaks.
#[derive(Debug, thiserror::Error)]
#[error("{kind:?} error: {source}")]
pub struct TransportError {
    /// What kind of failure it was.
    pub kind: TransportErrorKind,
    /// The transport's error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl TransportError {
    /// Wraps a transport's error.
    pub fn new(
        kind: TransportErrorKind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind,
            source: source.into(),
        }
    }
}

/// A coarse classification of [`Error`], stable to match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An id failed validation; no request was made.
    InvalidId,
    /// The input was refused locally (e.g. a user without email and mobile); no request was made.
    InvalidInput,
    /// The client was misconfigured (bad base URL, missing API key).
    Config,
    /// `/token` answered 404: the API key is wrong, deleted or for another environment.
    InvalidApiKey,
    /// Authentication failed even after re-authenticating once (401, 403 `access-denied`).
    Unauthorized,
    /// The token lacks the rights (403 `forbidden-access`, `no-production-access`, …).
    Forbidden,
    /// 404 on anything but `/token`.
    NotFound,
    /// 413: the request body (an uploaded statement) is too large for Basiq.
    PayloadTooLarge,
    /// Other 4xx: the request was wrong.
    BadRequest,
    /// 429, or `/token`'s 403 "Invalid request" (too many token requests).
    RateLimited,
    /// 5xx from Basiq.
    Server,
    /// A 3xx: Basiq's API never redirects, so the SDK never follows one (it would send the
    /// request, its body and the bearer token elsewhere and return another origin's answer as
    /// Basiq's). Usually a proxy or a wrong base URL.
    Redirect,
    /// The request could not be sent or the answer not received.
    Transport,
    /// The answer could not be understood.
    Decode,
    /// A walk over `links.next` reached its [`PageLimits`](crate::policy::pagination::PageLimits).
    PageLimit,
}

/// Any failure of the SDK.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An id failed validation before any request was built.
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    /// Input refused before any request was built.
    #[error("invalid input: {message}")]
    InvalidInput {
        /// What is wrong.
        message: String,
    },
    /// The client configuration is unusable.
    #[error("configuration error: {message}")]
    Config {
        /// What is wrong.
        message: String,
    },
    /// `/token` answered 404 "Unable to authenticate": the API key is wrong.
    #[error(
        "invalid API key: Basiq refused it on /token ({error}){}",
        fmt_ctx(context)
    )]
    InvalidApiKey {
        /// Basiq's answer.
        error: Box<ApiError>,
        /// Ids.
        context: ErrorContext,
    },
    /// Basiq answered with an error status.
    #[error("Basiq API error {error}{}", fmt_ctx(context))]
    Api {
        /// Basiq's answer.
        error: Box<ApiError>,
        /// Ids.
        context: ErrorContext,
    },
    /// The request could not be sent or the answer not received.
    #[error("transport error: {source}{}", fmt_ctx(context))]
    Transport {
        /// The transport's error.
        #[source]
        source: TransportError,
        /// Ids.
        context: ErrorContext,
    },
    /// A walk over `links.next` reached its [`PageLimits`](crate::policy::pagination::PageLimits):
    /// the server kept handing out next pages beyond what the list said it holds (or the cap).
    #[error(
        "stopped following links.next after {pages} pages and {items} items (the page limit){}",
        fmt_ctx(context)
    )]
    PageLimit {
        /// Pages fetched.
        pages: u64,
        /// Items collected.
        items: u64,
        /// Ids.
        context: ErrorContext,
    },
    /// The answer was not what Basiq documents.
    #[error(
        "could not decode Basiq's answer (HTTP {status}): {message}{}",
        fmt_ctx(context)
    )]
    Decode {
        /// The status of the answer.
        status: StatusCode,
        /// What did not fit.
        message: String,
        /// Ids.
        context: ErrorContext,
    },
    /// No server token: a `/token` fetch failed moments ago (in this process, or in another
    /// instance of the fleet) and the SDK does not ask `/token` again before its `retry_at`, so
    /// an outage or Basiq's throttle costs one caller's requests, not one per caller.
    #[error("no Basiq server token: {failure}{}", fmt_ctx(context))]
    TokenUnavailable {
        /// The shared failure.
        failure: Box<TokenFailure>,
        /// Ids.
        context: ErrorContext,
    },
}

/// A failed `/token` fetch that callers share (see [`Error::TokenUnavailable`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFailure {
    /// The kind of the failure the fetch met.
    pub kind: ErrorKind,
    /// Its HTTP status, when there was an answer.
    pub status: Option<StatusCode>,
    /// What went wrong (the failed fetch's error text; never a secret).
    pub cause: String,
    /// When a caller may fetch again.
    pub retry_at: time::OffsetDateTime,
}

impl fmt::Display for TokenFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the last /token fetch failed ({}); not asking again before {}",
            self.cause, self.retry_at
        )
    }
}

/// `text` with each secret (and its JSON-escaped and percent-encoded forms) replaced, and a
/// trailing prefix of one (at least 4 characters: a body cut at 256 characters) too.
fn scrub_text(text: &str, secrets: &[&str]) -> String {
    const MARK: &str = "[REDACTED]";
    let mut out = text.to_owned();
    for secret in secrets {
        let escaped = secret.replace('/', "\\/");
        let encoded =
            percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        for form in [*secret, escaped.as_str(), encoded.as_str()] {
            if out.contains(form) {
                out = out.replace(form, MARK);
            }
        }
        let cut = (4..secret.len())
            .rev()
            .filter(|&k| secret.is_char_boundary(k))
            .find(|&k| out.ends_with(&secret[..k]));
        if let Some(k) = cut {
            out.truncate(out.len() - k);
            out.push_str(MARK);
        }
    }
    out
}

fn fmt_ctx(ctx: &ErrorContext) -> String {
    if ctx.is_empty() {
        String::new()
    } else {
        format!(" [{ctx}]")
    }
}

impl Error {
    /// An [`Error::InvalidInput`].
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::InvalidInput {
            message: message.into(),
        }
    }

    /// An [`Error::Config`].
    pub fn config(message: impl Into<String>) -> Self {
        Self::Config {
            message: message.into(),
        }
    }

    /// An [`Error::Decode`].
    pub fn decode(status: StatusCode, message: impl Into<String>) -> Self {
        Self::Decode {
            status,
            message: message.into(),
            context: ErrorContext::default(),
        }
    }

    /// An [`Error::Transport`].
    pub fn transport(source: TransportError) -> Self {
        Self::Transport {
            source,
            context: ErrorContext::default(),
        }
    }

    /// Builds the error for a non-success response; Basiq's `correlationId` lands in the context.
    pub fn from_response(status: StatusCode, body: &[u8], retry_after: Option<Duration>) -> Self {
        let (error, correlation_id) = ApiError::from_body(status, body, retry_after);
        Self::Api {
            error: Box::new(error),
            context: ErrorContext {
                correlation_id,
                ..ErrorContext::default()
            },
        }
    }

    /// The coarse classification.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidId(_) => ErrorKind::InvalidId,
            Self::InvalidInput { .. } => ErrorKind::InvalidInput,
            Self::Config { .. } => ErrorKind::Config,
            Self::InvalidApiKey { .. } => ErrorKind::InvalidApiKey,
            Self::Transport { .. } => ErrorKind::Transport,
            Self::Decode { .. } => ErrorKind::Decode,
            Self::PageLimit { .. } => ErrorKind::PageLimit,
            Self::TokenUnavailable { failure, .. } => failure.kind,
            Self::Api { error, .. } => match error.status.as_u16() {
                401 => ErrorKind::Unauthorized,
                403 if error.has_code("access-denied") => ErrorKind::Unauthorized,
                403 if error.has_code("too-many-requests") || error.mentions("Invalid request") => {
                    ErrorKind::RateLimited
                }
                403 => ErrorKind::Forbidden,
                404 => ErrorKind::NotFound,
                413 => ErrorKind::PayloadTooLarge,
                429 => ErrorKind::RateLimited,
                300..=399 => ErrorKind::Redirect,
                500..=599 => ErrorKind::Server,
                _ => ErrorKind::BadRequest,
            },
        }
    }

    /// Whether repeating the same request later may succeed (rate limits, 5xx, network).
    /// Whether it is *safe* to repeat is the operation's business (see `Operation::is_idempotent`).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api { error, .. } => {
                matches!(error.status.as_u16(), 429 | 500 | 502 | 503 | 504)
            }
            Self::Transport { source, .. } => source.kind != TransportErrorKind::TooLarge,
            Self::TokenUnavailable { failure, .. } => {
                !matches!(failure.kind, ErrorKind::InvalidApiKey | ErrorKind::Config)
            }
            _ => false,
        }
    }

    /// This error with every occurrence of `secrets` (the exact API key and token values a
    /// request carried) replaced by `[REDACTED]` — in Basiq's code/title/detail, a non-Basiq
    /// body, a decode message and a transport error's text — so a server that echoes the request
    /// cannot put them into a log line. Also the JSON-escaped (`\/`) and percent-encoded forms,
    /// and a secret cut short by the 256-character limit of a raw body.
    pub fn scrub_secrets(mut self, secrets: &[&str]) -> Self {
        let secrets: Vec<&str> = secrets.iter().copied().filter(|s| s.len() >= 4).collect();
        if secrets.is_empty() {
            return self;
        }
        let scrub = |text: &mut String| *text = scrub_text(text, &secrets);
        let scrub_opt = |text: &mut Option<String>| {
            if let Some(text) = text {
                *text = scrub_text(text, &secrets);
            }
        };
        match &mut self {
            Self::Api { error, .. } | Self::InvalidApiKey { error, .. } => {
                scrub_opt(&mut error.raw_body);
                for item in &mut error.errors {
                    scrub_opt(&mut item.code);
                    scrub_opt(&mut item.title);
                    scrub_opt(&mut item.detail);
                    if let Some(src) = &mut item.source {
                        scrub_opt(&mut src.pointer);
                        scrub_opt(&mut src.parameter);
                    }
                }
            }
            Self::Decode { message, .. }
            | Self::InvalidInput { message }
            | Self::Config { message } => scrub(message),
            Self::Transport { source, .. } => {
                let mut chain = source.source.to_string();
                let mut next = source.source.source();
                while let Some(e) = next {
                    chain.push_str(": ");
                    chain.push_str(&e.to_string());
                    next = e.source();
                }
                let scrubbed = scrub_text(&chain, &secrets);
                if scrubbed != chain {
                    source.source = scrubbed.into();
                }
            }
            Self::TokenUnavailable { failure, .. } => scrub(&mut failure.cause),
            Self::InvalidId(_) | Self::PageLimit { .. } => {}
        }
        self
    }

    /// An [`Error::TokenUnavailable`] that repeats `cause` (kind, status, text) until `retry_at`.
    pub fn token_unavailable(cause: &Error, retry_at: time::OffsetDateTime) -> Self {
        let failure = match cause {
            // Already shared (another instance's failure): keep its cause, not a nested one.
            Self::TokenUnavailable { failure, .. } => TokenFailure {
                retry_at,
                ..(**failure).clone()
            },
            other => TokenFailure {
                kind: other.kind(),
                status: other.status(),
                cause: other.to_string(),
                retry_at,
            },
        };
        Self::TokenUnavailable {
            failure: Box::new(failure),
            context: ErrorContext::default(),
        }
    }

    /// Basiq's answer, when there was one.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Self::Api { error, .. } | Self::InvalidApiKey { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The first Basiq error code, when there was one.
    pub fn code(&self) -> Option<&str> {
        self.api_error().and_then(ApiError::code)
    }

    /// The HTTP status, when there was an answer.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api { error, .. } | Self::InvalidApiKey { error, .. } => Some(error.status),
            Self::Decode { status, .. } => Some(*status),
            Self::TokenUnavailable { failure, .. } => failure.status,
            _ => None,
        }
    }

    /// The ids attached to this error.
    pub fn context(&self) -> Option<&ErrorContext> {
        match self {
            Self::Api { context, .. }
            | Self::InvalidApiKey { context, .. }
            | Self::Transport { context, .. }
            | Self::PageLimit { context, .. }
            | Self::Decode { context, .. }
            | Self::TokenUnavailable { context, .. } => Some(context),
            _ => None,
        }
    }

    /// Adds ids the error does not carry yet (ids already present win).
    pub fn with_context(mut self, extra: &ErrorContext) -> Self {
        match &mut self {
            Self::Api { context, .. }
            | Self::InvalidApiKey { context, .. }
            | Self::Transport { context, .. }
            | Self::PageLimit { context, .. }
            | Self::Decode { context, .. }
            | Self::TokenUnavailable { context, .. } => {
                *context = std::mem::take(context).merge(extra);
            }
            _ => {}
        }
        self
    }

    /// Whether this answer means "your token is no longer valid": 401
    /// `invalid-authorization-token` (or any 401) and 403 `access-denied` ("Token has expired").
    /// Not `forbidden-access` or `no-production-access`, which a new token would not fix.
    pub fn is_expired_token(&self) -> bool {
        match self {
            Self::Api { error, .. } => match error.status.as_u16() {
                401 => true,
                403 => error.has_code("access-denied") || error.mentions("Token has expired"),
                _ => false,
            },
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, body: &str) -> Error {
        Error::from_response(StatusCode::from_u16(status).unwrap(), body.as_bytes(), None)
    }

    #[test]
    fn display_shows_code_title_detail_status_and_ids() {
        let err = api(
            403,
            r#"{"type":"list","correlationId":"ac5ah5i","data":[{"type":"error","code":"access-denied","title":"Forbidden","detail":"Token has expired"}]}"#,
        )
        .with_context(&ErrorContext::new().with_user(&UserId::new("u1").unwrap()));
        let text = err.to_string();
        for part in [
            "403",
            "access-denied",
            "Forbidden",
            "Token has expired",
            "userId=u1",
            "correlationId=ac5ah5i",
        ] {
            assert!(text.contains(part), "{text:?} lacks {part:?}");
        }
        assert!(err.is_expired_token());
        assert_eq!(err.kind(), ErrorKind::Unauthorized);
    }

    #[test]
    fn forbidden_access_is_not_an_expired_token() {
        let err = api(
            403,
            r#"{"type":"list","data":[{"code":"forbidden-access","title":"Access to this resource is forbidden"}]}"#,
        );
        assert!(!err.is_expired_token());
        assert_eq!(err.kind(), ErrorKind::Forbidden);
    }

    #[test]
    fn non_basiq_bodies_are_kept_short() {
        let err = api(502, &"<html>bad gateway</html>".repeat(100));
        assert_eq!(err.kind(), ErrorKind::Server);
        assert!(err.is_retryable());
        assert!(err.to_string().len() < 400);
    }

    #[test]
    fn secrets_echoed_by_a_server_are_scrubbed() {
        let key = "a2V5OnNlY3JldC9rZXk=";
        let token = "eyJhbGciOi.payload.sig";
        let body = format!(
            r#"{{"type":"list","correlationId":"c1","data":[{{"code":"bad","title":"Basic {key}","detail":"got Bearer {token} and {}"}}]}}"#,
            key.replace('/', "\\/")
        );
        let echoed = api(400, &body);
        // A non-Basiq body, cut at 256 characters in the middle of the token.
        let raw = api(502, &format!("{}Bearer {token}", "x".repeat(256 - 7 - 8)));
        let encoded = Error::decode(StatusCode::OK, "key=a2V5OnNlY3JldC9rZXk%3D");
        let transport = Error::transport(TransportError::new(
            TransportErrorKind::Io,
            format!("proxy said {token}"),
        ));
        for err in [echoed, raw, encoded, transport] {
            let before = format!("{err}");
            let err = err.scrub_secrets(&[key, token]);
            let shown = format!("{err} {err:?}");
            assert!(shown.contains("[REDACTED]"), "{before} -> {shown}");
            for part in ["a2V5OnNl", "eyJhbGci", "payload"] {
                assert!(!shown.contains(part), "{part} in {shown}");
            }
        }
        let plain = api(
            404,
            r#"{"data":[{"code":"resource-not-found","title":"Not found"}]}"#,
        );
        assert_eq!(
            plain.to_string(),
            api(
                404,
                r#"{"data":[{"code":"resource-not-found","title":"Not found"}]}"#
            )
            .scrub_secrets(&[key, token])
            .to_string()
        );
    }

    #[test]
    fn redirects_are_a_typed_error() {
        let err = api(302, "");
        assert_eq!(err.kind(), ErrorKind::Redirect);
        assert!(!err.is_retryable());
        assert_eq!(err.status(), Some(StatusCode::FOUND));
    }

    #[test]
    fn details_alias_is_accepted() {
        let err = api(
            400,
            r#"{"data":[{"code":"parameter-not-valid","details":"bad email"}]}"#,
        );
        assert!(err.to_string().contains("bad email"));
    }
}
