//! `/__admin/…`: test-only controls that Basiq does not have. No authentication: the emulator
//! only ever binds 127.0.0.1.
//!
//! | route | body | effect |
//! |---|---|---|
//! | `POST /__admin/clock/advance` | `{"seconds": N}` | moves virtual time; returns `{"now", "nowExact"}` |
//! | `GET /__admin/clock` | | `{"now", "nowExact"}` (whole seconds; with sub-seconds) |
//! | `GET /__admin/stats` | | counters ([`crate::Stats`]) |
//! | `GET /__admin/requests` | | `{"requests": [{at, method, route, path}], "dropped"}`: the request log, oldest first |
//! | `POST /__admin/reset` | | forgets users, connections, jobs, counters, connector statuses, fault rules |
//! | `POST /__admin/connectors/{id}` | `{"status": "major-outage"}` | sets a connector's status |
//! | `POST /__admin/smart-cache` | `{"enabled": true}` | turns the smart cache (daily background refresh) on or off |
//! | `GET /__admin/webhooks/deliveries` | | `{"deliveries": [{messageId, webhookId, eventType, url, attempts, state, nextAttemptAt}]}` |
//!
//! `clock/advance` runs the smart cache and webhook deliveries due on the way, each at its time.
//! | `PUT /__admin/users/{id}/transactions` | `{"count": 1000000}` | each of the user's connections (present and future) has exactly that many transactions |
//! | `PUT /__admin/connections/{id}/transactions` | `{"count": 100000}` | that connection has exactly that many (wins over the user's) |

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::clock::rfc3339;
use crate::connectors::{connector_json, STATUSES};
use crate::data::MAX_TRANSACTIONS_PER_CONNECTION;
use crate::error::{no_content, parse_json, ApiError};
use crate::state::AppState;
use crate::stats::Stats;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/__admin/clock", get(clock))
        .route("/__admin/clock/advance", post(advance))
        .route("/__admin/stats", get(stats))
        .route("/__admin/requests", get(requests))
        .route("/__admin/reset", post(reset))
        .route("/__admin/connectors/{connector_id}", post(set_connector))
        .route("/__admin/smart-cache", post(smart_cache))
        .route("/__admin/webhooks/deliveries", get(deliveries))
        .route(
            "/__admin/users/{user_id}/transactions",
            put(set_user_volume),
        )
        .route(
            "/__admin/connections/{connection_id}/transactions",
            put(set_connection_volume),
        )
}

#[derive(Debug, Deserialize)]
struct SetVolume {
    count: u64,
}

async fn set_user_volume(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let SetVolume { count } = parse_json(&body)?;
    set_transactions(&state, VolumeTarget::User(&id), count)?;
    Ok(Json(json!({ "user": id, "count": count })))
}

async fn set_connection_volume(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let SetVolume { count } = parse_json(&body)?;
    set_transactions(&state, VolumeTarget::Connection(&id), count)?;
    Ok(Json(json!({ "connection": id, "count": count })))
}

/// Whose transaction count [`set_transactions`] sets.
#[derive(Debug, Clone, Copy)]
pub(crate) enum VolumeTarget<'a> {
    User(&'a str),
    Connection(&'a str),
}

/// Shared by the admin routes and `MockServer::set_{user,connection}_transactions`: 404 for an
/// unknown user or connection, 400 above [`MAX_TRANSACTIONS_PER_CONNECTION`].
pub(crate) fn set_transactions(
    state: &AppState,
    target: VolumeTarget<'_>,
    count: u64,
) -> Result<(), ApiError> {
    if count > MAX_TRANSACTIONS_PER_CONNECTION {
        return Err(ApiError::invalid(
            "count",
            format!("count must be at most {MAX_TRANSACTIONS_PER_CONNECTION}"),
        ));
    }
    let mut db = state.db();
    match target {
        VolumeTarget::User(id) => {
            if !db.users.contains_key(id) {
                return Err(crate::users::user_not_found(id));
            }
            db.volume.per_user.insert(id.to_owned(), count);
        }
        VolumeTarget::Connection(id) => {
            if !db.connections.contains_key(id) {
                return Err(ApiError::not_found(format!(
                    "Connection with id '{id}' not found."
                )));
            }
            db.volume.per_connection.insert(id.to_owned(), count);
        }
    }
    Ok(())
}

/// The furthest `/__admin/clock/advance` may move virtual time.
const LATEST: time::OffsetDateTime = time::macros::datetime!(9000-01-01 00:00 UTC);

async fn clock(State(state): State<AppState>) -> Json<Value> {
    Json(now_json(state.now()))
}

/// `{"now"}` in whole seconds as Basiq prints times, and `nowExact` with the sub-seconds a client
/// that follows the virtual clock needs (pacing at "one every 6 s" must not lose a second).
fn now_json(now: time::OffsetDateTime) -> Value {
    let exact = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json!({ "now": rfc3339(now), "nowExact": exact })
}

#[derive(Debug, Deserialize)]
struct Advance {
    seconds: f64,
}

async fn advance(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let Advance { seconds } = parse_json(&body)?;
    let by = Duration::try_from_secs_f64(seconds)
        .map_err(|_| ApiError::invalid("seconds", "seconds must be a non-negative number"))?;
    // Keep virtual time far from the end of the representable range, so that date arithmetic
    // in request handlers (token expiry, step windows) can never overflow.
    let target = time::Duration::try_from(by)
        .ok()
        .and_then(|d| state.now().checked_add(d))
        .filter(|t| *t < LATEST);
    if target.is_none() {
        return Err(ApiError::invalid(
            "seconds",
            "that would move the clock past the year 9000",
        ));
    }
    if let Some(target) = target {
        crate::surface::notify::run_until(&state, target).await;
    }
    Ok(Json(now_json(state.now())))
}

#[derive(Debug, Deserialize)]
struct SmartCache {
    enabled: bool,
}

async fn smart_cache(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let SmartCache { enabled } = parse_json(&body)?;
    crate::surface::notify::set_smart_cache(&state, enabled);
    Ok(no_content())
}

async fn deliveries(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "deliveries": crate::surface::notify::deliveries(&state) }))
}

async fn stats(State(state): State<AppState>) -> Json<Stats> {
    Json(state.db().stats.clone())
}

async fn requests(State(state): State<AppState>) -> Json<Value> {
    let db = state.db();
    Json(json!({ "requests": db.request_log.entries, "dropped": db.request_log.dropped }))
}

async fn reset(State(state): State<AppState>) -> Response {
    state.reset();
    no_content()
}

#[derive(Debug, Deserialize)]
struct SetStatus {
    status: String,
}

/// Sets the status of every connector with this id (one per method).
async fn set_connector(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let SetStatus { status } = parse_json(&body)?;
    set_connector_status(&state, &id, &status).map(Json)
}

/// Shared by the admin route and `MockServer::set_connector_status`.
pub(crate) fn set_connector_status(
    state: &AppState,
    id: &str,
    status: &str,
) -> Result<Value, ApiError> {
    if !STATUSES.contains(&status) {
        return Err(ApiError::invalid(
            "status",
            format!("status must be one of: {}", STATUSES.join(", ")),
        ));
    }
    let mut db = state.db();
    let mut data = Vec::new();
    for c in db.connectors.iter_mut().filter(|c| c.id == id) {
        c.status = status.to_owned();
        data.push(connector_json(state.base(), c));
    }
    if data.is_empty() {
        return Err(ApiError::not_found(format!("Connector '{id}' not found.")));
    }
    Ok(json!({ "type": "list", "data": data }))
}
