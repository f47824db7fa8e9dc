//! Counters that let tests assert on *how* the SDK talks to Basiq (one token per lifetime, no
//! refresh bursts, …), not just on what it ends up with.

use std::collections::{BTreeMap, VecDeque};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::state::AppState;

/// A snapshot of the emulator's counters (also served as JSON by `GET /__admin/stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Stats {
    /// Every request that reached `POST /token`, whatever its outcome.
    pub token_requests: u64,
    /// Tokens actually issued.
    pub tokens_issued: u64,
    /// Requests per route template, keyed `"METHOD /path/{param}"` (`/__admin` routes excluded).
    pub requests: BTreeMap<String, u64>,
    /// Refresh jobs created per connection id (a refresh answered with the existing job does not
    /// count here, see `duplicate_refreshes`).
    pub refreshes: BTreeMap<String, u64>,
    /// Refresh requests answered "200 + existing job" because one was already running.
    pub duplicate_refreshes: u64,
    /// Connection attempts paused 6 minutes because the same login was already in progress.
    pub paused_attempts: u64,
    /// Jobs created (connect, update and refresh).
    pub jobs_created: u64,
    /// Background refresh jobs the smart cache created per connection (not the app's refreshes,
    /// which are `refreshes`).
    pub background_refreshes: BTreeMap<String, u64>,
    /// Purges (`POST …/purge` answered 204) per connection.
    pub purges: BTreeMap<String, u64>,
    /// Webhook delivery attempts made (every retry counts).
    pub webhook_attempts: u64,
    /// Webhook messages delivered (answered 2xx).
    pub webhooks_delivered: u64,
    /// Users created by `POST /users` (a duplicated POST shows here even when its answer was
    /// lost).
    pub users_created: u64,
}

/// One request as the emulator received it: *when* (on the emulator's clock, virtual time
/// included) and what. Tests use it to check pacing — e.g. that no 60 seconds hold more refreshes
/// than a plan's cap — which counters cannot show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LoggedRequest {
    /// When it arrived (RFC 3339, sub-second precision kept).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The HTTP method.
    pub method: String,
    /// The route template, e.g. `/users/{user_id}/jobs`.
    pub route: String,
    /// The path as sent (ids filled in; no query string, which may carry a token).
    pub path: String,
}

/// The most requests the log keeps; older ones are dropped (and counted) so a long-running
/// emulator does not grow without bound.
pub(crate) const REQUEST_LOG_CAPACITY: usize = 100_000;

/// The request log (`GET /__admin/requests`, `MockServer::request_log`).
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    pub(crate) entries: VecDeque<LoggedRequest>,
    pub(crate) dropped: u64,
}

impl RequestLog {
    fn push(&mut self, entry: LoggedRequest) {
        if self.entries.len() >= REQUEST_LOG_CAPACITY {
            self.entries.pop_front();
            self.dropped = self.dropped.saturating_add(1);
        }
        self.entries.push_back(entry);
    }
}

/// Route-layer middleware: counts requests by matched route template and logs them with the
/// emulator's time.
pub(crate) async fn count(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // The test harness's own `/__admin` calls are not traffic from the client under test.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .filter(|p| !p.as_str().starts_with("/__admin"))
        .map(|p| p.as_str().to_owned());
    if let Some(route) = route {
        let at = state.now();
        let method = req.method().to_string();
        let mut db = state.db();
        *db.stats
            .requests
            .entry(format!("{method} {route}"))
            .or_default() += 1;
        db.request_log.push(LoggedRequest {
            at,
            method,
            route,
            path: req.uri().path().to_owned(),
        });
    }
    next.run(req).await
}
