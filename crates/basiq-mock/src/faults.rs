//! Fault injection and request rate limiting, as one axum middleware with its own state.
//!
//! The SDK's retry, re-authentication and reconciliation policies only mean something if the
//! server misbehaves the way networks and Basiq do. Tests register *rules* (over HTTP at
//! `/__admin/faults` or in-process with [`Faults::add`]); each rule matches a method and a path
//! glob and fires for the next `count` matching requests, then disappears.
//!
//! Fault kinds and what the client observes:
//! - `delay {ms}`: the request is held for `ms` real milliseconds (`tokio::time::sleep`), then
//!   handled normally — for client timeouts. A client that gives up first drops the request:
//!   nothing happened.
//! - `withhold {ms}`: the request is handled at once (state changes happen, even if the client
//!   disconnects meanwhile), then the answer is held for `ms` real milliseconds — the client
//!   times out although the server *acted*: the most dangerous case for a non-idempotent POST,
//!   which must be reconciled, never repeated.
//! - `reset`: the connection is closed without any response bytes. With `afterHandler: true` the
//!   request is handled first (state changes happen) and the response is dropped: the ambiguous
//!   failure after which a non-idempotent POST must be reconciled, never blindly repeated.
//! - `status {code, retryAfter?}`: a Basiq-format error body (`{type:"list", correlationId,
//!   data:[{type:"error", code, title, detail}]}`) with that status and, if given, `Retry-After`
//!   in seconds. The request never reaches the handler.
//! - `truncatedBody`: the real response, cut in half mid-JSON, with the full `Content-Length`;
//!   the connection is then aborted, so the client sees a body error.
//! - `malformedJson`: `200` with `Content-Type: application/json` and the body
//!   `{"type":"list", "data": [` — a parser must fail cleanly, not hang or panic.
//!
//! The rate limit is a fixed-window counter on tokio's monotonic clock (real time, or paused
//! time in a `start_paused` test), *not* the emulator's virtual clock: it models a request-rate
//! guard, which depends on how fast the client sends, not on business time. It is off by default.
//! Over the limit the answer is 429 `too-many-requests` in Basiq's format, with `Retry-After`
//! (seconds to the end of the window) unless disabled — Basiq does not document the header, so
//! clients must cope with both.
//!
//! `/__admin/…` requests are never faulted, counted or rate limited: the test harness must always
//! be able to reach the emulator's controls.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::error::ApiError;

/// Prefix of the emulator's control routes, which faults and rate limits never touch.
pub const ADMIN_PREFIX: &str = "/__admin/";

/// What to do to a matching request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum Fault {
    /// Sleep `ms` real milliseconds, then handle the request normally.
    Delay {
        /// Milliseconds to wait (capped at 60 000).
        ms: u64,
    },
    /// Handle the request first (side effects happen, even if the client disconnects), then
    /// hold the answer `ms` real milliseconds: the client times out after the server acted.
    Withhold {
        /// Milliseconds to hold the answer (capped at 60 000).
        ms: u64,
    },
    /// Close the connection without a response.
    Reset {
        /// Handle the request first (side effects happen), then drop the response.
        #[serde(default, rename = "afterHandler", alias = "after_handler")]
        after_handler: bool,
    },
    /// Answer with this status and a Basiq error body; optional `Retry-After` seconds.
    Status {
        /// HTTP status, 400–599 (typically 500, 502, 503 or 429).
        code: u16,
        /// `Retry-After` header value in seconds; absent → no header.
        #[serde(
            default,
            rename = "retryAfter",
            alias = "retry_after",
            skip_serializing_if = "Option::is_none"
        )]
        retry_after: Option<u64>,
    },
    /// The real response cut mid-body, with the full Content-Length, then the connection aborts.
    TruncatedBody,
    /// `200` with an unterminated JSON body.
    MalformedJson,
}

fn default_path() -> String {
    "*".to_string()
}

fn default_count() -> u32 {
    1
}

/// One registered fault: fires for the next `count` requests matching `method` and `path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRule {
    /// HTTP method to match (case-insensitive); absent matches any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Path glob; `*` matches any run of characters, including `/`. Default `*`.
    #[serde(default = "default_path")]
    pub path: String,
    /// How many matching requests to fault before the rule is removed (≥ 1, default 1). In
    /// `GET /__admin/faults` this is the remaining count.
    #[serde(default = "default_count")]
    pub count: u32,
    /// The fault.
    pub fault: Fault,
}

impl FaultRule {
    /// A rule for any method on `path`, firing once.
    pub fn new(path: impl Into<String>, fault: Fault) -> Self {
        Self {
            method: None,
            path: path.into(),
            count: 1,
            fault,
        }
    }

    /// Restricts the rule to one method.
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = Some(method.into());
        self
    }

    /// Fires `count` times.
    pub fn times(mut self, count: u32) -> Self {
        self.count = count;
        self
    }

    fn validate(&self) -> Result<(), String> {
        if self.count == 0 {
            return Err("count must be at least 1".into());
        }
        if !self.path.starts_with('/') && !self.path.starts_with('*') {
            return Err(format!(
                "path glob must start with '/' or '*': {}",
                self.path
            ));
        }
        if let Some(m) = &self.method {
            if Method::from_bytes(m.to_ascii_uppercase().as_bytes()).is_err() {
                return Err(format!("not an HTTP method: {m}"));
            }
        }
        match self.fault {
            Fault::Status { code, .. } if !(400..=599).contains(&code) => {
                Err(format!("status code must be 400-599, got {code}"))
            }
            Fault::Delay { ms } | Fault::Withhold { ms } if ms > 60_000 => {
                Err("delay is capped at 60000 ms".into())
            }
            _ if self.path.len() > MAX_GLOB_LEN => Err(format!(
                "path glob is longer than {MAX_GLOB_LEN} characters"
            )),
            _ => Ok(()),
        }
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method.as_str()))
            && glob(&self.path, path)
    }
}

/// The longest path glob a rule may have: matching runs under the registry lock.
pub const MAX_GLOB_LEN: usize = 1024;

/// Glob match where `*` matches any (possibly empty) run of characters, in time linear in
/// `pattern.len() + text.len()` (it runs under the registry lock for every request).
///
/// The literal pieces between stars are matched left to right, each at its *leftmost*
/// occurrence after the previous one (`str::find`, a two-way search: linear); the first piece
/// must be a prefix and the last a suffix. Leftmost is always right for `*`-only globs: an
/// earlier match leaves more text for the pieces after it. (The backtracking matcher this
/// replaces was quadratic on patterns like `*a*a*a*…b`.)
pub fn glob(pattern: &str, text: &str) -> bool {
    glob_work(pattern, text).0
}

/// [`glob`], and how many bytes of text and pattern it examined (for the linearity test).
fn glob_work(pattern: &str, text: &str) -> (bool, usize) {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return (false, first.len());
    };
    let mut work = first.len();
    if !pattern.contains('*') {
        return (rest.is_empty(), work);
    }
    let middle: Vec<&str> = pieces.collect();
    let (last, middle) = match middle.split_last() {
        Some((last, middle)) => (*last, middle),
        None => ("", &[][..]),
    };
    for piece in middle.iter().filter(|p| !p.is_empty()) {
        match rest.find(piece) {
            Some(at) => {
                work += at + 2 * piece.len();
                rest = &rest[at + piece.len()..];
            }
            None => return (false, work + rest.len() + piece.len()),
        }
    }
    (rest.ends_with(last), work + 2 * last.len())
}

/// Fixed-window rate limit settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitRule {
    /// Requests allowed per window (≥ 1).
    pub requests: u32,
    /// Window length in milliseconds (≥ 1).
    pub window_ms: u64,
    /// Only requests whose path matches this glob count and are limited. Default `*`.
    #[serde(default = "default_path")]
    pub path: String,
    /// Send `Retry-After` (seconds to the window's end) on 429. Default true.
    #[serde(default = "default_true")]
    pub retry_after: bool,
}

fn default_true() -> bool {
    true
}

impl RateLimitRule {
    /// `requests` per `window` on every non-admin path, with `Retry-After`.
    pub fn new(requests: u32, window: Duration) -> Self {
        Self {
            requests,
            window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1),
            path: default_path(),
            retry_after: true,
        }
    }
}

#[derive(Debug)]
struct Window {
    started: Instant,
    used: u32,
}

#[derive(Debug, Default)]
struct Inner {
    rules: Vec<FaultRule>,
    rate_limit: Option<RateLimitRule>,
    window: Option<Window>,
}

/// Counters of injected faults, for `GET /__admin/faults` and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultStats {
    /// Delays injected.
    pub delay: u64,
    /// Answers withheld after the request was handled.
    pub withheld: u64,
    /// Connections reset.
    pub reset: u64,
    /// Error statuses injected.
    pub status: u64,
    /// Bodies truncated.
    pub truncated_body: u64,
    /// Malformed bodies sent.
    pub malformed_json: u64,
    /// Requests refused by the rate limit.
    pub rate_limited: u64,
}

/// The fault registry and rate limiter. Cheap to share: wrap it in an `Arc`.
#[derive(Debug, Default)]
pub struct Faults {
    inner: Mutex<Inner>,
    stats: Mutex<FaultStats>,
}

/// Locks a mutex, recovering from poisoning: a panicked test thread must not wedge the server.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Faults {
    /// An empty registry with no rate limit.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Registers a rule (after any existing ones: the first matching rule fires).
    pub fn add(&self, rule: FaultRule) -> Result<(), String> {
        rule.validate()?;
        lock(&self.inner).rules.push(rule);
        Ok(())
    }

    /// Removes every rule (the rate limit stays).
    pub fn clear(&self) {
        lock(&self.inner).rules.clear();
    }

    /// The rules still armed, with their remaining counts.
    pub fn rules(&self) -> Vec<FaultRule> {
        lock(&self.inner).rules.clone()
    }

    /// Turns the rate limit on (`Some`) or off (`None`); starts a fresh window.
    pub fn set_rate_limit(&self, limit: Option<RateLimitRule>) -> Result<(), String> {
        if let Some(l) = &limit {
            if l.requests == 0 || l.window_ms == 0 {
                return Err("requests and windowMs must be at least 1".into());
            }
        }
        let mut inner = lock(&self.inner);
        inner.rate_limit = limit;
        inner.window = None;
        Ok(())
    }

    /// The current rate limit.
    pub fn rate_limit(&self) -> Option<RateLimitRule> {
        lock(&self.inner).rate_limit.clone()
    }

    /// Counters of what was injected so far.
    pub fn stats(&self) -> FaultStats {
        *lock(&self.stats)
    }

    /// Takes one shot of the first rule matching the request, removing exhausted rules.
    fn take(&self, method: &Method, path: &str) -> Option<Fault> {
        let mut inner = lock(&self.inner);
        let idx = inner.rules.iter().position(|r| r.matches(method, path))?;
        let rule = inner.rules.get_mut(idx)?;
        let fault = rule.fault.clone();
        rule.count = rule.count.saturating_sub(1);
        if rule.count == 0 {
            inner.rules.remove(idx);
        }
        Some(fault)
    }

    /// Counts the request against the window; `Err(retry_after_secs)` when over the limit.
    fn admit(&self, path: &str, now: Instant) -> Result<(), Option<u64>> {
        let mut inner = lock(&self.inner);
        let Some(limit) = inner.rate_limit.clone() else {
            return Ok(());
        };
        if !glob(&limit.path, path) {
            return Ok(());
        }
        let window = Duration::from_millis(limit.window_ms);
        let w = inner.window.get_or_insert(Window {
            started: now,
            used: 0,
        });
        if now.saturating_duration_since(w.started) >= window {
            *w = Window {
                started: now,
                used: 0,
            };
        }
        if w.used < limit.requests {
            w.used += 1;
            return Ok(());
        }
        let left = window.saturating_sub(now.saturating_duration_since(w.started));
        let secs = left.as_millis().div_ceil(1000).max(1);
        Err(limit
            .retry_after
            .then(|| u64::try_from(secs).unwrap_or(u64::MAX)))
    }

    fn count(&self, f: impl FnOnce(&mut FaultStats)) {
        f(&mut lock(&self.stats));
    }
}

/// A Basiq-format error response (shared [`ApiError`] shape, fresh correlation id).
fn error_response(status: StatusCode, code: &str, title: &str, detail: &str) -> Response {
    ApiError::new(status, code, title, detail).into_response()
}

/// Basiq's code and title for an injected status.
fn code_for(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("parameter-not-valid", "Parameter not valid."),
        401 => ("unauthorized-access", "Unauthorized Access"),
        403 => ("forbidden-access", "Forbidden Access"),
        404 => ("resource-not-found", "Requested resource is not found."),
        429 => ("too-many-requests", "Too many requests."),
        503 => ("service-unavailable", "Service Unavailable"),
        s if s >= 500 => ("internal-server-error", "Internal Server Error"),
        _ => ("parameter-not-valid", "Bad Request"),
    }
}

fn with_retry_after(mut resp: Response, secs: Option<u64>) -> Response {
    if let Some(s) = secs {
        if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

/// A response whose body fails on its first poll. hyper then aborts the connection before
/// flushing the buffered head, so the client sees a closed connection and no response.
fn reset_response() -> Response {
    let stream = futures_util::stream::iter([Err::<Vec<u8>, std::io::Error>(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "injected reset",
    ))]);
    Response::new(Body::from_stream(stream))
}

/// The real response, with its full Content-Length but only the first half of its bytes,
/// followed by a body error so hyper aborts the connection.
async fn truncated(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(b) => b.to_vec(),
        Err(_) => return reset_response(),
    };
    let full = bytes.len().max(2);
    let cut = bytes.get(..bytes.len() / 2).unwrap_or_default().to_vec();
    // Yield the half body, then return Pending once (hyper flushes the head and the half body
    // to the socket while the body is pending), then fail so hyper aborts the connection.
    // Without the pause hyper would see the error before flushing and send nothing at all.
    let stream = futures_util::stream::unfold(0u8, move |step| {
        let cut = cut.clone();
        async move {
            match step {
                0 => Some((Ok::<Vec<u8>, std::io::Error>(cut), 1)),
                1 => {
                    tokio::task::yield_now().await;
                    Some((
                        Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "injected truncation",
                        )),
                        2,
                    ))
                }
                _ => None,
            }
        }
    });
    if let Ok(v) = HeaderValue::from_str(&full.to_string()) {
        parts.headers.insert(header::CONTENT_LENGTH, v);
    }
    Response::from_parts(parts, Body::from_stream(stream))
}

/// The middleware: admin routes pass untouched; otherwise the first matching fault fires, and
/// requests that get through are subject to the rate limit.
pub async fn middleware(faults: Arc<Faults>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with(ADMIN_PREFIX) || path == "/__admin" {
        return next.run(req).await;
    }
    let fault = faults.take(req.method(), &path);
    if let Some(Fault::Delay { ms }) = &fault {
        faults.count(|s| s.delay += 1);
        tokio::time::sleep(Duration::from_millis(*ms)).await;
    }
    if let Some(Fault::Withhold { ms }) = &fault {
        faults.count(|s| s.withheld += 1);
        // On its own task: hyper drops this future when the client hangs up, but the request
        // must still be handled to the end — the server acted, only the answer is lost.
        let handled = tokio::spawn(next.run(req));
        tokio::time::sleep(Duration::from_millis(*ms)).await;
        return handled.await.unwrap_or_else(|_| reset_response());
    }
    match fault {
        Some(Fault::Reset {
            after_handler: false,
        }) => {
            faults.count(|s| s.reset += 1);
            return reset_response();
        }
        Some(Fault::Status { code, retry_after }) => {
            faults.count(|s| s.status += 1);
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let (c, title) = code_for(status);
            let detail = format!("Injected fault: HTTP {code}.");
            return with_retry_after(error_response(status, c, title, &detail), retry_after);
        }
        Some(Fault::MalformedJson) => {
            faults.count(|s| s.malformed_json += 1);
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"type":"list", "data": ["#,
            )
                .into_response();
        }
        _ => {}
    }
    if let Err(retry_after) = faults.admit(&path, Instant::now()) {
        faults.count(|s| s.rate_limited += 1);
        let resp = error_response(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-requests",
            "Too many requests.",
            "Request rate limit reached; retry later.",
        );
        return with_retry_after(resp, retry_after);
    }
    let resp = next.run(req).await;
    match fault {
        Some(Fault::Reset {
            after_handler: true,
        }) => {
            faults.count(|s| s.reset += 1);
            reset_response()
        }
        Some(Fault::TruncatedBody) => {
            faults.count(|s| s.truncated_body += 1);
            truncated(resp).await
        }
        _ => resp,
    }
}

/// Wraps every route of `router` (present at the time of the call) in the fault and rate-limit
/// middleware. Call it after adding the API routes; admin routes are exempt by path anyway.
pub fn layer<S>(router: Router<S>, faults: Arc<Faults>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| middleware(faults.clone(), req, next),
    ))
}

/// Body of `POST /__admin/faults`: one rule or a list of rules.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RulesIn {
    One(FaultRule),
    Many(Vec<FaultRule>),
}

fn admin_bad_request(detail: &str) -> Response {
    ApiError::invalid("body", detail).into_response()
}

fn snapshot(faults: &Faults) -> Value {
    json!({
        "rules": faults.rules(),
        "rateLimit": faults.rate_limit(),
        "stats": faults.stats(),
    })
}

/// `/__admin/faults` (GET list + stats, POST add, DELETE clear) and `/__admin/rate-limit`
/// (GET, POST `{requests, windowMs, path?, retryAfter?}`, DELETE = off). Generic over the
/// router state so it merges into any router.
pub fn admin_routes<S>(faults: Arc<Faults>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let (f1, f2, f3) = (faults.clone(), faults.clone(), faults.clone());
    let (f4, f5, f6) = (faults.clone(), faults.clone(), faults);
    Router::new()
        .route(
            "/__admin/faults",
            get(move || async move { Json(snapshot(&f1)) })
                .post(move |body: axum::body::Bytes| async move {
                    let rules = match serde_json::from_slice::<RulesIn>(&body) {
                        Ok(RulesIn::One(r)) => vec![r],
                        Ok(RulesIn::Many(rs)) => rs,
                        Err(e) => {
                            return admin_bad_request(&format!("not a fault rule (or list): {e}"))
                        }
                    };
                    if let Some(err) = rules.iter().find_map(|r| r.validate().err()) {
                        return admin_bad_request(&err);
                    }
                    for r in rules {
                        if let Err(e) = f2.add(r) {
                            return admin_bad_request(&e);
                        }
                    }
                    (StatusCode::CREATED, Json(snapshot(&f2))).into_response()
                })
                .delete(move || async move {
                    f3.clear();
                    StatusCode::NO_CONTENT
                }),
        )
        .route(
            "/__admin/rate-limit",
            get(move || async move { Json(json!({ "rateLimit": f4.rate_limit() })) })
                .post(move |body: axum::body::Bytes| async move {
                    let limit = match serde_json::from_slice::<RateLimitRule>(&body) {
                        Ok(l) => l,
                        Err(e) => return admin_bad_request(&format!("not a rate limit: {e}")),
                    };
                    match f5.set_rate_limit(Some(limit)) {
                        Ok(()) => Json(json!({ "rateLimit": f5.rate_limit() })).into_response(),
                        Err(e) => admin_bad_request(&e),
                    }
                })
                .delete(move || async move {
                    // Turning the limit off cannot fail.
                    let _ = f6.set_rate_limit(None);
                    StatusCode::NO_CONTENT
                }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matching() {
        assert!(glob("*", ""));
        assert!(glob("*", "/users/1"));
        assert!(glob("/users/*", "/users/1/transactions"));
        assert!(glob("/users/*/transactions", "/users/abc/transactions"));
        assert!(!glob("/users/*/transactions", "/users/abc/accounts"));
        assert!(glob("/token", "/token"));
        assert!(!glob("/token", "/tokens"));
        assert!(glob("/a*b*c", "/aXbYc"));
        assert!(glob("**", "x"));
        assert!(!glob("", "x"));
        assert!(glob("", ""));
    }

    /// The reference: the textbook dynamic program (quadratic, obviously right).
    fn glob_reference(pattern: &[u8], text: &[u8]) -> bool {
        let mut row = vec![false; text.len() + 1];
        row[0] = true;
        for &p in pattern {
            let mut next = vec![false; text.len() + 1];
            if p == b'*' {
                let mut any = false;
                for (i, cell) in next.iter_mut().enumerate() {
                    any |= row[i];
                    *cell = any;
                }
            } else {
                for i in 0..text.len() {
                    next[i + 1] = row[i] && text[i] == p;
                }
            }
            row = next;
        }
        row[text.len()]
    }

    proptest::proptest! {
        #[test]
        fn glob_agrees_with_the_reference(
            pattern in "[ab*/]{0,12}",
            text in "[ab/]{0,16}",
        ) {
            proptest::prop_assert_eq!(
                glob(&pattern, &text),
                glob_reference(pattern.as_bytes(), text.as_bytes()),
                "{:?} vs {:?}", pattern, text
            );
        }
    }

    #[test]
    fn glob_work_is_linear_on_the_backtracking_worst_case() {
        // `*a*a*…*a*b` against `aaa…a`: the old matcher retried every star at every position.
        for n in [100usize, 1_000, 4_000] {
            let pattern = format!("{}*b", "*a".repeat(n / 4));
            let text = "a".repeat(n);
            let (matched, work) = glob_work(&pattern, &text);
            assert!(!matched);
            assert!(
                work <= 3 * (pattern.len() + text.len()),
                "n={n}: {work} steps for {} + {} bytes",
                pattern.len(),
                text.len()
            );
        }
        let too_long = FaultRule::new(
            format!("/{}", "*a".repeat(MAX_GLOB_LEN)),
            Fault::MalformedJson,
        );
        assert!(Faults::new().add(too_long).is_err());
    }

    #[test]
    fn rules_are_consumed_in_order() {
        let f = Faults::new();
        f.add(FaultRule::new("/users/*", Fault::MalformedJson).times(2))
            .unwrap();
        f.add(FaultRule::new("*", Fault::TruncatedBody).method("post"))
            .unwrap();
        let get = Method::GET;
        assert_eq!(f.take(&get, "/token"), None);
        assert_eq!(f.take(&get, "/users/1"), Some(Fault::MalformedJson));
        assert_eq!(f.rules()[0].count, 1);
        assert_eq!(f.take(&get, "/users/1"), Some(Fault::MalformedJson));
        assert_eq!(f.take(&get, "/users/1"), None);
        assert_eq!(f.take(&Method::POST, "/token"), Some(Fault::TruncatedBody));
        assert!(f.rules().is_empty());
    }

    #[test]
    fn rule_validation() {
        let f = Faults::new();
        assert!(f
            .add(FaultRule::new("*", Fault::MalformedJson).times(0))
            .is_err());
        assert!(f
            .add(FaultRule::new(
                "*",
                Fault::Status {
                    code: 200,
                    retry_after: None
                }
            ))
            .is_err());
        assert!(f
            .add(FaultRule::new("users", Fault::MalformedJson))
            .is_err());
        assert!(f
            .add(FaultRule::new("*", Fault::MalformedJson).method("GE T"))
            .is_err());
        assert!(f
            .add(FaultRule::new("*", Fault::Delay { ms: 60_001 }))
            .is_err());
    }

    #[test]
    fn json_shapes() {
        let r: FaultRule = serde_json::from_value(json!({
            "method": "GET", "path": "/users/*", "count": 2,
            "fault": {"kind": "status", "code": 503, "retryAfter": 7}
        }))
        .unwrap();
        assert_eq!(
            r.fault,
            Fault::Status {
                code: 503,
                retry_after: Some(7)
            }
        );
        let r: FaultRule = serde_json::from_value(json!({"fault": {"kind": "reset"}})).unwrap();
        assert_eq!(r.path, "*");
        assert_eq!(r.count, 1);
        assert_eq!(
            r.fault,
            Fault::Reset {
                after_handler: false
            }
        );
        for kind in ["truncatedBody", "malformedJson"] {
            let r: Result<FaultRule, _> = serde_json::from_value(json!({"fault": {"kind": kind}}));
            assert!(r.is_ok(), "{kind}");
        }
        let bad: Result<FaultRule, _> =
            serde_json::from_value(json!({"fault": {"kind": "explode"}}));
        assert!(bad.is_err());
        let bad: Result<FaultRule, _> =
            serde_json::from_value(json!({"fault": {"kind": "reset"}, "oops": 1}));
        assert!(bad.is_err());
    }

    #[test]
    fn fixed_window() {
        let f = Faults::new();
        let t0 = Instant::now();
        assert_eq!(f.admit("/x", t0), Ok(()));
        f.set_rate_limit(Some(RateLimitRule {
            requests: 2,
            window_ms: 1_500,
            path: "/users/*".into(),
            retry_after: true,
        }))
        .unwrap();
        assert_eq!(f.admit("/token", t0), Ok(()));
        assert_eq!(f.admit("/users/1", t0), Ok(()));
        assert_eq!(f.admit("/users/1", t0), Ok(()));
        assert_eq!(f.admit("/users/1", t0), Err(Some(2)));
        let later = t0 + Duration::from_millis(1_000);
        assert_eq!(f.admit("/users/1", later), Err(Some(1)));
        let next = t0 + Duration::from_millis(1_500);
        assert_eq!(f.admit("/users/1", next), Ok(()));
        assert!(f
            .set_rate_limit(Some(RateLimitRule {
                requests: 0,
                window_ms: 1,
                path: "*".into(),
                retry_after: false
            }))
            .is_err());
    }
}
