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

use axum::middleware::{from_fn, from_fn_with_state};
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
        .with_state(state);
    // Outermost, so injected bodies are not "repaired" by `normalize` (admin paths are exempt).
    faults::layer(app, faults)
}
