//! Connectors (institutions): `GET /connectors`, `GET /connectors/{id}/{method}` (basiq-api.md §5).
//!
//! The catalogue is small and fixed: the web test bank Hooli (AU00000), an OpenBanking variant
//! (AU00001) for the 20-refreshes-a-day rule, Pied Piper Bank (AU00002, always MFA) and Nucleus
//! Bank (AU00003, MFA on every other job of a connection — Basiq's is "about 50/50", ours is
//! deterministic so tests can rely on it). Statuses can be set
//! through `POST /__admin/connectors/{id}`; a connector in `major-outage` makes new jobs for it
//! fail `verify-credentials` with `service-unavailable`.

use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::auth::ServerAuth;
use crate::error::ApiError;
use crate::query;
use crate::state::{AppState, Method};

/// Statuses Basiq documents for connectors.
pub(crate) const STATUSES: &[&str] = &[
    "operational",
    "degraded-performance",
    "partial-outage",
    "major-outage",
    "under-maintenance",
];

#[derive(Debug, Clone)]
pub(crate) struct Connector {
    pub(crate) id: String,
    pub(crate) method: Method,
    pub(crate) name: &'static str,
    pub(crate) short_name: &'static str,
    pub(crate) stage: &'static str,
    pub(crate) institution_type: &'static str,
    pub(crate) tier: &'static str,
    pub(crate) authorization: &'static str,
    pub(crate) status: String,
}

/// The fixed catalogue, all `operational`.
pub(crate) fn catalogue() -> Vec<Connector> {
    let c = |id: &str, method, name, short_name, stage, authorization| Connector {
        id: id.to_owned(),
        method,
        name,
        short_name,
        stage,
        institution_type: "Test Bank",
        tier: "4",
        authorization,
        status: "operational".to_owned(),
    };
    vec![
        c("AU00000", Method::Web, "Hooli", "Hooli", "live", "user"),
        c(
            "AU00001",
            Method::OpenBanking,
            "Hooli Open Banking",
            "Hooli OB",
            "live",
            "other",
        ),
        c(
            "AU00002",
            Method::Web,
            "Pied Piper Bank",
            "Pied Piper",
            "beta",
            "user-mfa",
        ),
        c(
            "AU00003",
            Method::Web,
            "Nucleus Bank",
            "Nucleus",
            "beta",
            "user-mfa-intermittent",
        ),
    ]
}

pub(crate) fn connector_json(base: &str, c: &Connector) -> Value {
    let method = c.method.connector_str();
    let id = &c.id;
    json!({
        "type": "connector",
        "id": id,
        "method": method,
        "stage": c.stage,
        "status": c.status,
        "scopes": ["ACCOUNT_NO", "ACCOUNT_BALANCE", "TRANSACTIONS", "ACCOUNT_HOLDER"],
        "authorization": {
            "type": c.authorization,
            "meta": {
                "login_id_caption": "Login ID",
                "password_caption": "Password",
                "secondary_login_id_caption": null,
                "security_code_caption": null,
                "forgotten_password_url": format!("https://www.example.com/{}/forgot-password", id.to_lowercase()),
            },
        },
        "institution": {
            "type": c.institution_type,
            "name": c.name,
            "shortName": c.short_name,
            "tier": c.tier,
            "country": "Australia",
            "logo": {
                "type": "image",
                "colors": { "primary": "#4c75d9", "accent": null },
                "links": {
                    "square": format!("https://logos.basiq-mock.invalid/{id}-square.svg"),
                    "full": format!("https://logos.basiq-mock.invalid/{id}-full.svg"),
                },
            },
        },
        "stats": {
            "averageDurationMs": {
                "verifyCredentials": 3000,
                "retrieveAccounts": 4000,
                "retrieveTransactions": 6000,
                "retrieveMeta": 1000,
                "total": 13000,
            },
        },
        "links": { "self": format!("{base}/connectors/{id}/{method}") },
    })
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/connectors", get(list))
        .route("/connectors/{connector_id}/{method}", get(get_one))
}

/// `GET /connectors?filter=connector.status.eq('…')`.
async fn list(
    _auth: ServerAuth,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let conds = query::filter(
        raw.as_deref(),
        &[
            "connector.id",
            "connector.status",
            "connector.method",
            "connector.stage",
            "connector.institution.country",
            "connector.institution.tier",
            "connector.institution.type",
            "connector.authorization.type",
        ],
    )?;
    let db = state.db();
    let base = state.base();
    let data: Vec<Value> = db
        .connectors
        .iter()
        .filter(|c| {
            conds.iter().all(|cond| {
                let v = match cond.field.as_str() {
                    "connector.id" => c.id.as_str(),
                    "connector.status" => c.status.as_str(),
                    "connector.method" => c.method.connector_str(),
                    "connector.stage" => c.stage,
                    "connector.institution.country" => "Australia",
                    "connector.institution.tier" => c.tier,
                    "connector.institution.type" => c.institution_type,
                    _ => c.authorization,
                };
                cond.matches(v)
            })
        })
        .map(|c| connector_json(base, c))
        .collect();
    Ok(Json(json!({
        "type": "list",
        "totalCount": data.len(),
        "data": data,
        "links": { "self": format!("{base}/connectors") },
    })))
}

/// `GET /connectors/{id}/{method}`; `open-banking` is accepted as an alias of `openbanking`.
async fn get_one(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path((id, method)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let method = if method == "open-banking" {
        "openbanking".to_owned()
    } else {
        method
    };
    let db = state.db();
    db.connectors
        .iter()
        .find(|c| c.id == id && c.method.connector_str() == method)
        .map(|c| Json(connector_json(state.base(), c)))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Connector '{id}' with method '{method}' not found."
            ))
        })
}
