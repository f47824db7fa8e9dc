//! The router: every route the emulator serves, in one place.
//!
//! Structure (outermost last):
//! 1. domain routers, each a `fn routes() -> Router<AppState>` in its module;
//! 2. `route_layer(stats::count)`: per-route counters (needs the matched route, hence a route
//!    layer);
//! 3. the fallback (404 in Basiq format);
//! 4. `layer(error::normalize)`: any non-JSON error (405, extractor rejections) becomes a Basiq
//!    error body.
//!
//! Accounts/transactions routes belong with the domain routers (1). Fault injection and rate
//! limiting must sit *outside* `normalize` (added after it) so that deliberately malformed or
//! truncated bodies are not "repaired".

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::state::AppState;
use crate::{
    admin, auth, connections, connectors, consent, data_routes, error, faults, jobs, mfa, stats,
    surface, users,
};

/// Builds the emulator's router over `state`.
pub(crate) fn router(state: AppState) -> Router {
    let faults = state.inner.faults.clone();
    let app = Router::new()
        .merge(auth::routes())
        .merge(users::routes())
        .merge(jobs::routes())
        .merge(mfa::routes())
        .merge(connections::routes())
        .merge(connectors::routes())
        .merge(consent::routes())
        .merge(data_routes::routes())
        .merge(surface::routes())
        .merge(admin::routes())
        .merge(faults::admin_routes(faults.clone()))
        .route_layer(from_fn_with_state(state.clone(), stats::count))
        .route_layer(from_fn(surface::json_content_type))
        .fallback(error::not_found)
        .layer(from_fn(error::normalize))
        .layer(from_fn_with_state(state.clone(), read_body))
        .with_state(state);
    // Outermost, so injected bodies are not "repaired" by `normalize` (admin paths are exempt).
    faults::layer(app, faults)
}

/// The largest request body the emulator reads (Basiq's requests are small JSON documents).
const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// Reads the whole request body within the configured timeout before any handler runs. A client
/// that declares a `Content-Length` and then sends less (or nothing) gets `408` and the connection
/// is closed, rather than holding a connection and a task forever; a body over 1 MiB gets `413`.
async fn read_body(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let timeout = state.config().body_timeout;
    // Statement uploads are files: up to `STATEMENT_MAX_BYTES` plus the form around it, read
    // whole so that an oversized one still gets its handler's 413 `payload-too-large`.
    let limit = if req.uri().path().ends_with("/statements") {
        crate::STATEMENT_MAX_BYTES + 256 * 1024
    } else {
        MAX_REQUEST_BODY
    };
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await;
    let (status, code, detail) = match read {
        Ok(Ok(bytes)) => {
            return next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(_)) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "parameter-not-valid",
            "The request body is too large or could not be read.",
        ),
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            "request-timeout",
            "The request body did not arrive in time.",
        ),
    };
    let mut response =
        error::ApiError::new(status, code, "Bad request body", detail).into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
