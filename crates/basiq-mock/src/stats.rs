//! Counters that let tests assert on *how* the SDK talks to Basiq (one token per lifetime, no
//! refresh bursts, …), not just on what it ends up with.

use std::collections::BTreeMap;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};

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
    /// Users created by `POST /users` (a duplicated POST shows here even when its answer was
    /// lost).
    pub users_created: u64,
}

/// Route-layer middleware: counts requests by matched route template.
pub(crate) async fn count(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // The test harness's own `/__admin` calls are not traffic from the client under test.
    let key = req
        .extensions()
        .get::<MatchedPath>()
        .filter(|p| !p.as_str().starts_with("/__admin"))
        .map(|p| format!("{} {}", req.method(), p.as_str()));
    if let Some(key) = key {
        *state.db().stats.requests.entry(key).or_default() += 1;
    }
    next.run(req).await
}
