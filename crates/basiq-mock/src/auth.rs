//! `POST /token` and Bearer authentication for every other endpoint.
//!
//! Choices where Basiq's docs give a message but no code (documented in `docs/emulator.md`):
//! - wrong API key → 404 `resource-not-found` (Basiq really answers 404, basiq-api.md §1);
//! - more than 1,500 `/token` requests in 5 minutes → 403 `too-many-requests`, title
//!   "Invalid request";
//! - an unsupported `basiq-version` → 400 `parameter-not-valid`.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{parse_form, ApiError};
use crate::ids::{jwt, uuid_like, IdKind};
use crate::state::{AppState, Scope, TokenGrant};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/token", post(token))
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    scope: Option<String>,
    #[serde(rename = "userId")]
    user_id: Option<String>,
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap_or(""))
}

/// `POST /token`.
async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let now = state.now();
    let limit = state.config().token_limit;
    {
        let mut db = state.db();
        db.stats.token_requests += 1;
        let window = time::Duration::try_from(limit.per).unwrap_or(time::Duration::MAX);
        let cutoff = now.checked_sub(window);
        while db
            .token_log
            .front()
            .is_some_and(|t| cutoff.is_some_and(|c| *t <= c))
        {
            db.token_log.pop_front();
        }
        db.token_log.push_back(now);
        if db.token_log.len() > limit.requests as usize {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "too-many-requests",
                "Invalid request",
                "Invalid request",
            ));
        }
    }

    let Some(auth) = header_str(&headers, header::AUTHORIZATION.as_str()) else {
        return Err(ApiError::missing(
            "Authorization",
            "Authorization header parameter is required",
        ));
    };
    let key = match auth.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("basic") => key.trim(),
        _ => "",
    };
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(ApiError::invalid(
            "Authorization",
            "Invalid authorization header",
        ));
    }
    match header_str(&headers, "basiq-version").map(str::trim) {
        None | Some("") => {
            return Err(ApiError::missing(
                "basiq-version",
                "Basiq-version must be specified in HTTP request header",
            ))
        }
        Some("3.0") => {}
        Some(v @ ("0.9" | "1.0")) => {
            return Err(ApiError::invalid(
                "basiq-version",
                format!("Version {v} is no longer supported"),
            ))
        }
        Some(v) => {
            return Err(ApiError::invalid(
                "basiq-version",
                format!("Version {v} is not supported by this emulator; use 3.0"),
            ))
        }
    }
    if key != state.config().api_key {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "resource-not-found",
            "Requested resource is not found.",
            "Unable to authenticate. Please, check your API key",
        ));
    }

    let form: TokenForm = parse_form(&body)?;
    let (scope, user_id) = match form.scope.as_deref().map(str::trim) {
        None | Some("") => return Err(ApiError::missing("scope", "Scope parameter is required")),
        Some("SERVER_ACCESS") => (Scope::Server, None),
        Some("CLIENT_ACCESS") => {
            let Some(uid) = form.user_id.filter(|u| !u.trim().is_empty()) else {
                return Err(ApiError::missing(
                    "userId",
                    "userId is required for CLIENT_ACCESS scope",
                ));
            };
            if !state.user_exists(&uid) {
                return Err(ApiError::invalid(
                    "userId",
                    format!("User with id '{uid}' does not exist"),
                ));
            }
            (Scope::Client, Some(uid))
        }
        Some(other) => {
            return Err(ApiError::invalid(
                "scope",
                format!("Scope '{other}' is not valid; use SERVER_ACCESS or CLIENT_ACCESS"),
            ))
        }
    };

    let ttl = state.config().token_ttl;
    let ttl_t = time::Duration::try_from(ttl).unwrap_or(time::Duration::days(365));
    // Saturating: an absurd configured TTL must not panic the handler at the end of time.
    let expires_at = now.saturating_add(ttl_t);
    let mut db = state.db();
    let n = db.seq();
    let scope_str = match scope {
        Scope::Server => "SERVER_ACCESS",
        Scope::Client => "CLIENT_ACCESS",
    };
    let mut claims = json!({
        "partnerid": uuid_like(IdKind::Key, 10),
        "applicationid": uuid_like(IdKind::Key, 11),
        "scope": scope_str,
        "server_version": "3.0",
        "jti": uuid_like(IdKind::Token, n),
        "iat": now.unix_timestamp(),
        "exp": expires_at.unix_timestamp(),
    });
    if let (Some(uid), Some(obj)) = (&user_id, claims.as_object_mut()) {
        obj.insert("userId".into(), json!(uid));
    }
    let token = jwt(&claims, n);
    db.tokens.insert(
        token.clone(),
        TokenGrant {
            scope,
            user_id,
            expires_at,
        },
    );
    db.stats.tokens_issued += 1;
    Ok(Json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
    })))
}

/// Who is calling, according to their Bearer token.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) scope: Scope,
    /// The user a CLIENT_ACCESS token is bound to.
    pub(crate) user_id: Option<String>,
}

/// Validates a raw token string (from a header or a form field).
pub(crate) fn check_token(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    let now = state.now();
    let db = state.db();
    let grant = db.tokens.get(token).ok_or_else(invalid_token)?;
    if now >= grant.expires_at {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "access-denied",
            "Forbidden",
            "Token has expired",
        ));
    }
    Ok(Caller {
        scope: grant.scope,
        user_id: grant.user_id.clone(),
    })
}

fn invalid_token() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid-authorization-token",
        "Invalid authorization token",
        "Invalid authorization token.",
    )
}

fn forbidden() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden-access",
        "Forbidden access",
        "Access to this resource is forbidden",
    )
}

/// The Bearer token of a request, if it has one.
pub(crate) fn bearer(parts_headers: &HeaderMap) -> Option<&str> {
    let value = parts_headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Any valid token (SERVER or CLIENT scope).
#[derive(Debug)]
pub(crate) struct AnyAuth(pub(crate) Caller);

/// A valid SERVER_ACCESS token; a CLIENT token gets 403 `forbidden-access`.
#[derive(Debug)]
pub(crate) struct ServerAuth;

/// A server-scoped request on one user's collection (`GET /users/{user_id}/…` lists): the token
/// checked as [`ServerAuth`], then the user id from the path and the raw query string (`filter`,
/// `limit`, `next`) — the order, and the rejections, of listing the three extractors one by one.
#[derive(Debug)]
pub(crate) struct ServerUserQuery {
    pub(crate) user_id: String,
    pub(crate) raw: Option<String>,
}

impl FromRequestParts<AppState> for AnyAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(&parts.headers).ok_or_else(invalid_token)?;
        check_token(state, token).map(AnyAuth)
    }
}

impl FromRequestParts<AppState> for ServerAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AnyAuth(caller) = AnyAuth::from_request_parts(parts, state).await?;
        if caller.scope == Scope::Server {
            Ok(ServerAuth)
        } else {
            Err(forbidden())
        }
    }
}

impl FromRequestParts<AppState> for ServerUserQuery {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        ServerAuth::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Path(user_id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Ok(RawQuery(raw)) = RawQuery::from_request_parts(parts, state).await;
        Ok(Self { user_id, raw })
    }
}
