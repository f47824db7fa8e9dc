//! `GET /users/{id}/consents`, `DELETE /users/{id}/consents/{consentId}` and
//! `POST|GET|DELETE /users/{id}/auth_link`.
//!
//! A user's consent exists from their first connection on (the Consent UI creates both), lasts
//! 365 days, and is `active`, `revoked` (after a DELETE) or `expired`, derived at read time.
//! An auth link lasts [`AUTH_LINK_TTL`]; once expired or deleted, `GET` answers 410.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{fresh_id, require_json, stable_id};
use crate::auth::{ServerAuth, ServerUserQuery};
use crate::clock::rfc3339;
use crate::error::{no_content, parse_json, ApiError};
use crate::state::{AppState, Db};
use crate::users::require_user;

/// How long a consent lasts (Basiq's default consent duration: 12 months).
pub(crate) const CONSENT_TTL: time::Duration = time::Duration::days(365);
/// How long before expiry Basiq sends `consent.warning` (consent events guide: 7 days).
pub(crate) const CONSENT_WARNING: time::Duration = time::Duration::days(7);
/// How long an auth link works.
pub(crate) const AUTH_LINK_TTL: time::Duration = time::Duration::days(7);

#[derive(Debug, Clone)]
pub(crate) struct AuthLinkRecord {
    pub(crate) id: String,
    pub(crate) mobile: String,
    pub(crate) expires_at: OffsetDateTime,
    pub(crate) deleted: bool,
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/users/{user_id}/consents", get(list))
        .route(
            "/users/{user_id}/consents/{consent_id}",
            axum::routing::delete(revoke),
        )
        .route(
            "/users/{user_id}/auth_link",
            get(get_link).post(create_link).delete(delete_link),
        )
}

/// The consent of a user as of `now`: `(id, created, status)`, or `None` before their first
/// connection.
pub(crate) struct ConsentView {
    pub(crate) id: String,
    pub(crate) created: OffsetDateTime,
    pub(crate) expires: OffsetDateTime,
    pub(crate) revoked: Option<OffsetDateTime>,
    pub(crate) status: &'static str,
}

/// When each user's first connection (live or deleted) was made: their consent's start. One
/// pass over the connections, for callers that look at every user.
pub(crate) fn first_connections(db: &Db) -> std::collections::HashMap<String, OffsetDateTime> {
    let mut first = std::collections::HashMap::new();
    let all = db
        .connections
        .values()
        .map(|c| (c.user_id.as_str(), c.created))
        .chain(db.retained.iter().map(|c| (c.user_id.as_str(), c.created)));
    for (user, created) in all {
        first
            .entry(user.to_owned())
            .and_modify(|t: &mut OffsetDateTime| *t = (*t).min(created))
            .or_insert(created);
    }
    first
}

pub(crate) fn consent_of(db: &Db, user_id: &str, now: OffsetDateTime) -> Option<ConsentView> {
    let created = db
        .connections_of(user_id)
        .iter()
        .map(|c| c.created)
        .chain(
            db.retained
                .iter()
                .filter(|c| c.user_id == user_id)
                .map(|c| c.created),
        )
        .min()?;
    let expires = created + CONSENT_TTL;
    let revoked = db.surface.consent_revoked.get(user_id).copied();
    let status = match revoked {
        Some(at) if at < expires => "revoked",
        _ if now >= expires => "expired",
        _ => "active",
    };
    Some(ConsentView {
        id: stable_id(&format!("consent:{user_id}")),
        created,
        expires,
        revoked,
        status,
    })
}

fn consent_json(base: &str, user_id: &str, c: &ConsentView) -> Value {
    let updated = c.revoked.unwrap_or(c.created);
    json!({
        "type": "consent",
        "id": c.id,
        "created": rfc3339(c.created),
        "updated": rfc3339(updated),
        "expiryDate": rfc3339(c.expires),
        "origin": "partner",
        "status": c.status,
        "revoked": c.revoked.map(rfc3339),
        "purpose": {
            "primary": { "title": "Lending", "description": "Assess your loan application." },
            "other": { "title": "Financial insights", "description": "Show your spending." },
        },
        "data": {
            "retainData": false,
            "initialRetrievalDays": 365,
            "organisation": false,
            "permissions": [
                { "scope": "ACCOUNT_NAME_BALANCE", "required": true, "consented": true },
                { "scope": "TRANSACTION_DETAILS", "required": true, "consented": true },
            ],
        },
        "links": {
            "self": format!("{base}/users/{user_id}/consents/{}", c.id),
            "consentPolicy": format!("{base}/consent/policy/1"),
            "latestConsentPolicy": format!("{base}/consent/policy/1"),
        },
    })
}

async fn list(
    State(state): State<AppState>,
    ServerUserQuery { user_id, .. }: ServerUserQuery,
) -> Result<Json<Value>, ApiError> {
    let now = state.now();
    let db = state.db();
    require_user(&db, &user_id)?;
    let base = state.base();
    let data: Vec<Value> = consent_of(&db, &user_id, now)
        .iter()
        .map(|c| consent_json(base, &user_id, c))
        .collect();
    Ok(Json(json!({
        "type": "list",
        "size": data.len(),
        "data": data,
        "links": { "self": format!("{base}/users/{user_id}/consents") },
    })))
}

/// Revokes the user's consent (idempotent: a second revocation changes nothing) and records a
/// `consent.revoked` event.
async fn revoke(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path((user_id, consent_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let now = state.now();
    let mut db = state.db();
    require_user(&db, &user_id)?;
    let consent = consent_of(&db, &user_id, now)
        .filter(|c| c.id == consent_id)
        .ok_or_else(|| ApiError::not_found(format!("Consent with id '{consent_id}' not found.")))?;
    if consent.revoked.is_none() {
        db.surface.consent_revoked.insert(user_id.clone(), now);
        let base = state.base().to_owned();
        let view = consent_of(&db, &user_id, now);
        let data = view.map_or(Value::Null, |c| consent_json(&base, &user_id, &c));
        super::record(
            &mut db,
            now,
            "consent",
            "revoked",
            Some(&user_id),
            format!("{base}/users/{user_id}/consents/{consent_id}"),
            data,
        );
    }
    Ok(no_content())
}

#[derive(Debug, Deserialize)]
struct AuthLinkBody {
    mobile: Option<String>,
}

fn link_json(base: &str, user_id: &str, link: &AuthLinkRecord, with_id: bool) -> Value {
    let mut v = json!({
        "type": "auth_link",
        "userId": user_id,
        "mobile": link.mobile,
        "expiresAt": rfc3339(link.expires_at),
        "links": {
            "self": format!("{base}/users/{user_id}/auth_link"),
            "public": format!("{base}/consent/home?auth_link={}", link.id),
        },
    });
    if with_id {
        if let Some(obj) = v.as_object_mut() {
            obj.insert("id".into(), json!(link.id));
        }
    }
    v
}

/// `POST /users/{id}/auth_link` → 201; replaces any previous link. The body is optional (an
/// empty one uses the user's mobile), but a body that is there must be JSON.
async fn create_link(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let requested = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        require_json(&headers)?;
        parse_json::<AuthLinkBody>(&body)?.mobile
    };
    let now = state.now();
    let mut db = state.db();
    require_user(&db, &user_id)?;
    let mobile = requested
        .filter(|m| !m.trim().is_empty())
        .or_else(|| db.users.get(&user_id).and_then(|u| u.mobile.clone()))
        .unwrap_or_default();
    let link = AuthLinkRecord {
        id: fresh_id(&mut db, "auth_link"),
        mobile,
        expires_at: now + AUTH_LINK_TTL,
        deleted: false,
    };
    let json = link_json(state.base(), &user_id, &link, true);
    db.surface.auth_links.insert(user_id, link);
    Ok((StatusCode::CREATED, Json(json)).into_response())
}

fn gone() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "resource-no-longer-available",
        "Requested resource is no longer available.",
        "The auth link has expired or was deleted.",
    )
}

async fn get_link(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let now = state.now();
    let db = state.db();
    require_user(&db, &user_id)?;
    let link = db
        .surface
        .auth_links
        .get(&user_id)
        .ok_or_else(|| ApiError::not_found(format!("No auth link for user '{user_id}'.")))?;
    if link.deleted || now >= link.expires_at {
        return Err(gone());
    }
    Ok(Json(link_json(state.base(), &user_id, link, true)))
}

async fn delete_link(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Response, ApiError> {
    let mut db = state.db();
    require_user(&db, &user_id)?;
    let link = db
        .surface
        .auth_links
        .get_mut(&user_id)
        .ok_or_else(|| ApiError::not_found(format!("No auth link for user '{user_id}'.")))?;
    link.deleted = true;
    Ok(no_content())
}
