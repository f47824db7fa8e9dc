//! One `tracing` span per HTTP request, shared by both executors so they cannot drift apart.
//!
//! The span is named `basiq.http` and follows OpenTelemetry's HTTP client conventions
//! (<https://opentelemetry.io/docs/specs/semconv/http/http-spans/>), so `tracing-opentelemetry`
//! exports it as a proper client span:
//!
//! | field | value |
//! |---|---|
//! | `otel.name` | `{method} {url.template}`, e.g. `GET /users/{userId}` |
//! | `otel.kind` | `client` |
//! | `http.request.method` | `GET`, `POST`, … |
//! | `url.template` | the path with ids replaced by placeholders: never the full URL, whose path holds user ids and whose query may hold filters or a pagination cursor |
//! | `server.address`, `server.port` | Basiq's host and port |
//! | `http.request.resend_count` | how often this operation's request was sent before (retries and the re-authentication); absent on the first send |
//! | `http.response.status_code` | the status Basiq answered |
//! | `error.type` | the status code for 4xx/5xx, the transport error kind when there was no answer |
//! | `correlation_id` | Basiq's `correlationId` from an error body (what Basiq support asks for) |
//! | `user_id`, `connection_id`, `job_id` | the ids the operation is about |
//!
//! No header and no body is recorded, so no API key, token or MFA answer can reach a log.

use std::sync::atomic::{AtomicU32, Ordering};

use serde::Deserialize;
use tracing::field::Empty;
use url::Url;

use crate::engine::transport::HttpRequest;
use crate::error::{Error, ErrorContext};

/// Counts the requests one operation sends (across retries and the re-authentication), for
/// `http.request.resend_count`. One per [`Operation`](crate::engine::operation::Operation) run.
#[derive(Debug, Default)]
pub struct SendCount(AtomicU32);

impl SendCount {
    /// A counter for a new operation run.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many requests were sent before this one; counts this one.
    pub fn next(&self) -> u32 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// The `basiq.http` span for `request`, about to be sent for the operation with ids `context`;
/// `resends` requests of this operation were sent before it. `base` is the executor's API root:
/// its path prefix is not part of the template. Record the answer with [`record_response`] or
/// [`record_failure`].
pub fn request_span(
    request: &HttpRequest,
    base: &Url,
    context: &ErrorContext,
    resends: u32,
) -> tracing::Span {
    request_span_with(request, base, || context.clone(), resends)
}

/// [`request_span`] with the operation's ids asked for only when the span is enabled: with no
/// subscriber listening (or `basiq.http` filtered out), a request builds no template and copies
/// no id.
pub fn request_span_with(
    request: &HttpRequest,
    base: &Url,
    context: impl FnOnce() -> ErrorContext,
    resends: u32,
) -> tracing::Span {
    let method = request.method().as_str();
    let span = tracing::info_span!(
        "basiq.http",
        otel.name = Empty,
        otel.kind = "client",
        http.request.method = method,
        url.template = Empty,
        server.address = request.url().host_str().unwrap_or_default(),
        server.port = request.url().port_or_known_default(),
        http.request.resend_count = Empty,
        http.response.status_code = Empty,
        error.type = Empty,
        correlation_id = Empty,
        user_id = Empty,
        connection_id = Empty,
        job_id = Empty,
    );
    if span.is_disabled() {
        return span;
    }
    let context = context();
    let template = url_template(request.url().path(), base.path(), &context);
    span.record("otel.name", format_args!("{method} {template}"));
    span.record("url.template", template.as_str());
    for (field, id) in [
        ("user_id", context.user_id.as_ref().map(|id| id.as_str())),
        (
            "connection_id",
            context.connection_id.as_ref().map(|id| id.as_str()),
        ),
        ("job_id", context.job_id.as_ref().map(|id| id.as_str())),
    ] {
        if let Some(id) = id {
            span.record(field, id);
        }
    }
    // OpenTelemetry: only set on a resend.
    if resends > 0 {
        span.record("http.request.resend_count", resends);
    }
    span
}

/// Records Basiq's answer on a [`request_span`]: the status and, for an error status, the
/// status as `error.type` and the `correlationId` of the body.
pub fn record_response(span: &tracing::Span, status: http::StatusCode, body: &[u8]) {
    span.record("http.response.status_code", status.as_u16());
    if status.is_client_error() || status.is_server_error() {
        span.record("error.type", status.as_u16());
        #[derive(Deserialize)]
        struct Correlated {
            #[serde(rename = "correlationId")]
            correlation_id: Option<String>,
        }
        if let Ok(Correlated {
            correlation_id: Some(id),
        }) = serde_json::from_slice::<Correlated>(body)
        {
            span.record("correlation_id", id.as_str());
        }
    }
}

/// Records that a [`request_span`]'s request got no answer (`error.type` = the transport error
/// kind, e.g. `Timeout`).
pub fn record_failure(span: &tracing::Span, error: &Error) {
    span.record("error.type", tracing::field::debug(error.kind()));
    tracing::debug!(parent: span, error = %error, "no answer from Basiq");
}

/// `path` (of a request URL) as a low-cardinality template: the `base` path prefix removed, the
/// operation's known ids and every segment after a collection name replaced by a placeholder
/// (`/users/{userId}/connections/{connectionId}/refresh`). Action words (`refresh`, `purge`,
/// `mfa`, …) and the connector method stay as they are.
pub fn url_template(path: &str, base: &str, context: &ErrorContext) -> String {
    let path = path
        .strip_prefix(base.trim_end_matches('/'))
        .unwrap_or(path);
    let mut out = String::new();
    let mut previous: Option<&str> = None;
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        let known = [
            (context.user_id.as_ref().map(|id| id.as_str()), "{userId}"),
            (
                context.connection_id.as_ref().map(|id| id.as_str()),
                "{connectionId}",
            ),
            (context.job_id.as_ref().map(|id| id.as_str()), "{jobId}"),
        ]
        .into_iter()
        .find_map(|(id, name)| (id == Some(segment)).then_some(name));
        let placeholder = known.or_else(|| {
            let after = previous?;
            if is_word(after, ACTIONS) || is_word(segment, ACTIONS) || !is_word(after, COLLECTIONS)
            {
                return None;
            }
            Some(placeholder_after(after))
        });
        match placeholder {
            Some(name) => out.push_str(name),
            // A segment that is neither an id we know nor a word of Basiq's paths is written
            // as `{id}` rather than as is: it could be an id.
            None if is_word(segment, COLLECTIONS) || is_word(segment, ACTIONS) => {
                out.push_str(segment);
            }
            None => out.push_str("{id}"),
        }
        previous = Some(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Path words after which an id follows (`/users/{userId}`).
const COLLECTIONS: &[&str] = &[
    "users",
    "connections",
    "jobs",
    "accounts",
    "transactions",
    "connectors",
    "institutions",
    "consents",
    "identities",
    "affordability",
    "income",
    "expenses",
    "reports",
    "events",
    "webhooks",
    "messages",
    "types",
    "statements",
    "payrequests",
    "payouts",
];

/// Path words that are never ids: actions, fixed resources, connector methods.
const ACTIONS: &[&str] = &[
    "token",
    "refresh",
    "purge",
    "mfa",
    "auth_link",
    "notifications",
    "test",
    "enrich",
    "payments",
    "float-accounts",
    "types",
    "messages",
    "web",
    "openbanking",
    "open-banking",
    "csv",
    "pdf",
];

fn is_word(segment: &str, words: &[&str]) -> bool {
    words.contains(&segment)
}

fn placeholder_after(collection: &str) -> &'static str {
    match collection {
        "users" => "{userId}",
        "connections" => "{connectionId}",
        "jobs" => "{jobId}",
        "accounts" => "{accountId}",
        "transactions" => "{transactionId}",
        "connectors" => "{connectorId}",
        _ => "{id}",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{ConnectionId, JobId, UserId};

    fn template(path: &str, context: &ErrorContext) -> String {
        url_template(path, "/", context)
    }

    #[test]
    fn a_span_nobody_listens_to_asks_for_no_ids() {
        // No subscriber in this test: the span is disabled, so the ids are never asked for.
        let base = Url::parse("https://au-api.basiq.io").unwrap();
        let request = crate::engine::operation::empty_request(http::Method::GET, base.clone());
        let span = request_span_with(
            &request,
            &base,
            || panic!("the context of a disabled span is never built"),
            0,
        );
        assert!(span.is_disabled());
    }

    #[test]
    fn templates_hide_every_id() {
        let none = ErrorContext::new();
        let cases = [
            ("/token", "/token"),
            ("/users", "/users"),
            ("/users/ea3a81", "/users/{userId}"),
            (
                "/users/ea3a81/connections/refresh",
                "/users/{userId}/connections/refresh",
            ),
            (
                "/users/ea3a81/connections/c1/refresh",
                "/users/{userId}/connections/{connectionId}/refresh",
            ),
            ("/jobs/j-1/mfa", "/jobs/{jobId}/mfa"),
            (
                "/users/u/transactions/t9",
                "/users/{userId}/transactions/{transactionId}",
            ),
            ("/connectors/AU00000/web", "/connectors/{connectorId}/web"),
            ("/events/types/x", "/events/types/{id}"),
            (
                "/notifications/messages/test",
                "/notifications/messages/test",
            ),
            ("/users/u/auth_link", "/users/{userId}/auth_link"),
            // Not a word of Basiq's paths: could be an id.
            ("/secret-thing", "/{id}"),
            ("/", "/"),
        ];
        for (path, expected) in cases {
            assert_eq!(template(path, &none), expected, "{path}");
        }
    }

    #[test]
    fn known_ids_are_named_wherever_they_appear() {
        let context = ErrorContext::new()
            .with_user(&UserId::new("u1").unwrap())
            .with_connection(&ConnectionId::new("c1").unwrap())
            .with_job(&JobId::new("j1").unwrap());
        assert_eq!(
            template("/users/u1/connections/c1", &context),
            "/users/{userId}/connections/{connectionId}"
        );
        assert_eq!(template("/jobs/j1", &context), "/jobs/{jobId}");
    }

    #[test]
    fn the_base_path_is_not_part_of_the_template() {
        assert_eq!(
            url_template(
                "/proxy/basiq/users/u",
                "/proxy/basiq/",
                &ErrorContext::new()
            ),
            "/users/{userId}"
        );
    }

    #[test]
    fn send_count_counts_from_zero() {
        let count = SendCount::new();
        assert_eq!((count.next(), count.next(), count.next()), (0, 1, 2));
    }
}
