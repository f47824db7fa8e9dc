//! A stand-in for Basiq's hosted Consent UI (`consent.basiq.io/home?token=…`, basiq-api.md §3.1).
//!
//! In v3.0 connections can only be created through the Consent UI, so the emulator serves a tiny
//! HTML form with the same query parameters, and a form `POST` that creates (or, with
//! `connectionId`, updates the credentials of) a connection, starts its job and redirects to the
//! configured redirect URL with `?jobIds=…&state=…` — exactly what a real integration receives.
//! `POST /consent/connect.json` does the same without a browser (tests, the CLI).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::auth::{bearer, check_token, Caller};
use crate::error::{parse_form, parse_json, ApiError};
use crate::ids::IdKind;
use crate::jobs::create_job;
use crate::query;
use crate::state::{AppState, Connection, Db, JobKind, Method, Scope};
use crate::users::require_user;

/// Basiq's sandbox stops at 500 connections (basiq-api.md §8).
const SANDBOX_CONNECTION_LIMIT: usize = 500;

/// Consent UI actions Basiq documents (basiq-api.md §3.1).
const ACTIONS: &[&str] = &[
    "connect",
    "manage",
    "extend",
    "update",
    "reauthorise",
    "payment",
];

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/consent/home", get(home))
        .route("/consent/connect", post(connect_form))
        .route("/consent/connect.json", post(connect_json))
        .route("/consent/done", get(done))
}

/// The consent fields, shared by the form and the JSON variant.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConsentForm {
    pub(crate) token: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) action: Option<String>,
    pub(crate) institution_id: Option<String>,
    pub(crate) connection_id: Option<String>,
    pub(crate) login_id: Option<String>,
    pub(crate) password: Option<String>,
}

fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// A CLIENT_ACCESS token's user (server tokens are refused, as on the real Consent UI).
pub(crate) fn client_user(state: &AppState, token: Option<&str>) -> Result<String, ApiError> {
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::missing("token", "token parameter is required"))?;
    let caller = check_token(state, token)?;
    match caller {
        Caller {
            scope: Scope::Client,
            user_id: Some(uid),
        } => Ok(uid),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden-access",
            "Forbidden access",
            "The Consent UI needs a CLIENT_ACCESS token bound to a user",
        )),
    }
}

/// `GET /consent/home?token=&action=&state=&institutionId=&connectionId=`.
async fn home(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = query::pairs(raw.as_deref())?;
    let get = |name: &str| {
        q.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let token = get("token");
    client_user(&state, Some(&token))?;
    let chosen = get("institutionId");
    let options: String = state
        .db()
        .connectors
        .iter()
        .map(|c| {
            let sel = if c.id == chosen { " selected" } else { "" };
            format!(
                "<option value=\"{}\"{sel}>{} ({})</option>",
                escape(&c.id),
                escape(c.name),
                c.method.connector_str()
            )
        })
        .collect();
    let hidden = |name: &str| {
        format!(
            "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
            escape(&get(name))
        )
    };
    let page = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>basiq-mock consent</title></head>\n<body>\n<h1>Connect your bank (basiq-mock)</h1>\n<form method=\"post\" action=\"/consent/connect\">\n{}{}{}{}\n<label>Institution <select name=\"institutionId\">{options}</select></label><br>\n<label>Login ID <input name=\"loginId\" autocomplete=\"off\"></label><br>\n<label>Password <input name=\"password\" type=\"password\"></label><br>\n<button type=\"submit\">Connect</button>\n</form>\n</body></html>\n",
        hidden("token"),
        hidden("state"),
        hidden("action"),
        hidden("connectionId"),
    );
    Ok(Html(page).into_response())
}

/// Creates or updates a connection and starts its job; returns the job id.
pub(crate) fn connect(
    db: &mut Db,
    now: OffsetDateTime,
    user_id: &str,
    form: &ConsentForm,
) -> Result<String, ApiError> {
    require_user(db, user_id)?;
    if let Some(action) = form
        .action
        .as_deref()
        .filter(|a| !a.is_empty() && *a != "null")
    {
        if !ACTIONS.contains(&action) {
            return Err(ApiError::invalid(
                "action",
                format!("action must be one of: {}", ACTIONS.join(", ")),
            ));
        }
    }
    let non_empty = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let existing = match non_empty(&form.connection_id) {
        Some(cid) => Some(
            db.connections
                .get(&cid)
                .filter(|c| c.user_id == user_id)
                .cloned()
                .ok_or_else(|| {
                    ApiError::not_found(format!("Connection with id '{cid}' not found."))
                })?,
        ),
        None => None,
    };
    let institution_id = non_empty(&form.institution_id)
        .or_else(|| existing.as_ref().map(|c| c.institution_id.clone()))
        .ok_or_else(|| ApiError::missing("institutionId", "institutionId is required"))?;
    let method = db
        .connectors
        .iter()
        .find(|c| c.id == institution_id)
        .map(|c| c.method)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "institution-not-supported",
                "Institution not supported",
                format!("Institution '{institution_id}' is not supported"),
            )
            .at("institutionId")
        })?;
    if let Some(c) = &existing {
        if c.institution_id != institution_id {
            return Err(ApiError::invalid(
                "institutionId",
                "institutionId does not match the connection's institution",
            ));
        }
    }
    let login_id = non_empty(&form.login_id);
    let password = form.password.clone().filter(|p| !p.is_empty());
    let (login_id, password) = match (method, login_id, password) {
        (_, Some(l), Some(p)) => (l, p),
        (Method::OpenBanking, None, None) => (String::new(), String::new()),
        (_, None, _) => return Err(ApiError::missing("loginId", "loginId is required")),
        (_, Some(_), None) => return Err(ApiError::missing("password", "password is required")),
    };

    let (cid, kind) = if let Some(c) = existing {
        if let Some(conn) = db.connections.get_mut(&c.id) {
            conn.login_id = login_id;
            conn.password = password;
        }
        (c.id, JobKind::Update)
    } else if let Some(c) = db.connections.values().find(|c| {
        c.user_id == user_id && c.institution_id == institution_id && c.login_id == login_id
    }) {
        // Same user, institution and login: the same connection, connected again.
        let id = c.id.clone();
        if let Some(conn) = db.connections.get_mut(&id) {
            conn.password = password;
        }
        (id, JobKind::Connect)
    } else {
        if db.connections.len() >= SANDBOX_CONNECTION_LIMIT {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "too-many-sandbox-connections",
                "Too many sandbox connections",
                "Limit reached for sandbox connections.",
            ));
        }
        let (id, seq) = db.new_id(IdKind::Connection);
        db.connections.insert(
            id.clone(),
            Connection {
                id: id.clone(),
                seq,
                user_id: user_id.to_owned(),
                institution_id,
                method,
                login_id,
                password,
                created: now,
                purged_at: None,
                data_generation: 0,
                refreshes: Vec::new(),
                attempts: 0,
            },
        );
        (id, JobKind::Connect)
    };
    create_job(db, now, &cid, kind).ok_or_else(|| ApiError::not_found("Connection disappeared"))
}

/// The redirect target: the configured URL (or our `/consent/done`) plus `jobIds` and `state`.
fn redirect_to(state: &AppState, job_ids: &[String], st: Option<&str>) -> String {
    let base = state
        .config()
        .redirect_url
        .clone()
        .unwrap_or_else(|| format!("{}/consent/done", state.base()));
    let sep = if base.contains('?') { '&' } else { '?' };
    let mut url = format!("{base}{sep}jobIds={}", job_ids.join(","));
    if let Some(s) = st.filter(|s| !s.is_empty()) {
        if let Ok(enc) = serde_urlencoded::to_string([("state", s)]) {
            url.push('&');
            url.push_str(&enc);
        }
    }
    url
}

/// `POST /consent/connect` (form) → 302 to the redirect URL.
async fn connect_form(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let form: ConsentForm = parse_form(&body)?;
    let user_id = client_user(&state, form.token.as_deref())?;
    let now = state.now();
    let job = connect(&mut state.db(), now, &user_id, &form)?;
    let url = redirect_to(&state, std::slice::from_ref(&job), form.state.as_deref());
    Ok((StatusCode::FOUND, [(header::LOCATION, url)]).into_response())
}

/// `POST /consent/connect.json` → `{"jobIds":[…],"redirect":"…"}`.
///
/// Authorised by a CLIENT token (Bearer header or `token` field), or by a SERVER token plus a
/// `userId` field — convenient for tests that never hold a client token.
async fn connect_json(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form: ConsentForm = parse_json(&body)?;
    let user_id = match bearer(&headers) {
        Some(token) => match check_token(&state, token)? {
            Caller {
                scope: Scope::Client,
                user_id: Some(uid),
            } => uid,
            _ => form.user_id.clone().ok_or_else(|| {
                ApiError::missing("userId", "userId is required with a SERVER_ACCESS token")
            })?,
        },
        None => client_user(&state, form.token.as_deref())?,
    };
    let now = state.now();
    let job = connect(&mut state.db(), now, &user_id, &form)?;
    let ids = vec![job];
    let redirect = redirect_to(&state, &ids, form.state.as_deref());
    Ok(Json(json!({ "jobIds": ids, "redirect": redirect })).into_response())
}

/// `GET /consent/done`: the default redirect target, showing what a real app would receive.
async fn done(RawQuery(raw): RawQuery) -> Result<Html<String>, ApiError> {
    let job_ids = query::param(raw.as_deref(), "jobIds")?.unwrap_or_default();
    let st = query::param(raw.as_deref(), "state")?.unwrap_or_default();
    Ok(Html(format!(
        "<!doctype html>\n<html><body><h1>Connected</h1><p>jobIds: <code id=\"jobIds\">{}</code></p><p>state: <code id=\"state\">{}</code></p></body></html>\n",
        escape(&job_ids),
        escape(&st)
    )))
}
