//! Connections: list/get/delete, refresh (one and all), purge (basiq-api.md §3, §8).
//!
//! A connection's status is *derived* from its jobs at read time ([`derive`]): pending until a
//! job verifies the credentials, active once one does, invalid when the latest finished job
//! failed (any step, any code), active again after a later job verifies. Refresh rules:
//! - a job still queued/paused/running → **200 with that job** (Basiq's documented behaviour);
//! - `invalid` → 400 `invalid-credentials` "Cannot login to target institution using supplied
//!   credentials" (the user must re-enter credentials via the Consent UI);
//! - not `active` otherwise → 400 `parameter-not-valid`;
//! - OpenBanking: more than 20 refresh jobs in one (virtual) UTC day → **429 `too-many-requests`**;
//! - else 202 with a new job.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::auth::{ServerAuth, ServerUserQuery};
use crate::clock::rfc3339;
use crate::error::{no_content, ApiError};
use crate::jobs::{create_job, job_ref};
use crate::query;
use crate::state::{
    AppState, Connection, ConnectionInfo, ConnectionStatus, Db, Job, JobKind, Method,
};
use crate::users::require_user;

/// OpenBanking refreshes allowed per connection per UTC day (basiq-api.md §8).
pub(crate) const OPEN_BANKING_DAILY_REFRESHES: usize = 20;

/// Derives the point-in-time view of a connection from its jobs (oldest first).
pub(crate) fn derive(c: &Connection, jobs: &[&Job], now: OffsetDateTime) -> ConnectionInfo {
    let mut status = ConnectionStatus::Pending;
    let mut last_used = None;
    let mut successful_jobs = 0;
    let mut job_in_progress = None;
    let mut accounts_at = None::<OffsetDateTime>;
    let mut transactions_at = None::<OffsetDateTime>;
    let mut success_ends = Vec::new();
    for job in jobs {
        let progress = job.progress(now);
        match progress.succeeded {
            Some(false) => status = ConnectionStatus::Invalid,
            Some(true) => {
                status = ConnectionStatus::Active;
                let end = progress.finished_at;
                last_used = Some(end);
                successful_jobs += 1;
                success_ends.push(end);
            }
            None => {
                if progress.verified_at.is_some() {
                    status = ConnectionStatus::Active;
                }
                job_in_progress = Some(&job.id);
            }
        }
        accounts_at = accounts_at.max(progress.accounts_at);
        transactions_at = transactions_at.max(progress.transactions_at);
    }
    let after_purge = |t: Option<OffsetDateTime>| match (t, c.purged_at) {
        (Some(t), Some(p)) => t > p,
        (Some(_), None) => true,
        (None, _) => false,
    };
    let purged = c
        .purged_at
        .is_some_and(|p| !success_ends.iter().any(|end| *end > p));
    ConnectionInfo {
        id: c.id.clone(),
        user_id: c.user_id.clone(),
        institution_id: c.institution_id.clone(),
        method: c.method,
        status,
        created: c.created,
        last_used,
        purged,
        data_generation: c.data_generation,
        accounts_retrieved: !purged && after_purge(accounts_at),
        transactions_retrieved: !purged && after_purge(transactions_at),
        successful_jobs,
        job_in_progress: job_in_progress.cloned(),
        transaction_count: None,
    }
}

/// The connection JSON (basiq-api.md §3.3).
pub(crate) fn connection_json(base: &str, info: &ConnectionInfo) -> Value {
    let uid = &info.user_id;
    let cid = &info.id;
    let inst = &info.institution_id;
    let mut v = json!({
        "type": "connection",
        "id": cid,
        "status": info.status.as_str(),
        "method": info.method.connection_str(),
        "createdDate": rfc3339(info.created),
        "lastUsed": info.last_used.map(rfc3339),
        "institution": {
            "type": "institution",
            "id": inst,
            "links": { "self": format!("{base}/connectors/{inst}/{}", info.method.connector_str()) },
        },
        "accounts": crate::data_routes::connection_accounts(base, info),
        "links": {
            "self": format!("{base}/users/{uid}/connections/{cid}"),
            "user": format!("{base}/users/{uid}"),
            "institution": format!("{base}/institutions/{inst}"),
            "accounts": format!("{base}/users/{uid}/accounts?filter=institution.id.eq('{inst}')"),
            "transactions": format!("{base}/users/{uid}/transactions?filter=institution.id.eq('{inst}')"),
        },
    });
    // `expiryDate` is the consent's end on open banking and empty (`""`, not absent) on web
    // (basiq-api.md §3.3), which clients must read as "none".
    let expiry = if info.method == Method::OpenBanking {
        rfc3339(info.created + time::Duration::days(365))
    } else {
        String::new()
    };
    if let Some(obj) = v.as_object_mut() {
        obj.insert("expiryDate".into(), json!(expiry));
    }
    v
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/users/{user_id}/connections", get(list))
        .route("/users/{user_id}/connections/refresh", post(refresh_all))
        .route(
            "/users/{user_id}/connections/{connection_id}",
            get(get_one).delete(delete_one),
        )
        .route(
            "/users/{user_id}/connections/{connection_id}/refresh",
            post(refresh_one),
        )
        .route(
            "/users/{user_id}/connections/{connection_id}/purge",
            post(purge),
        )
}

fn connection_not_found(cid: &str) -> ApiError {
    ApiError::not_found(format!("Connection with id '{cid}' not found."))
}

/// Looks up a connection owned by the user, with 404s for either missing.
fn owned<'a>(db: &'a Db, user_id: &str, cid: &str) -> Result<&'a Connection, ApiError> {
    require_user(db, user_id)?;
    db.connections
        .get(cid)
        .filter(|c| c.user_id == user_id)
        .ok_or_else(|| connection_not_found(cid))
}

/// The point-in-time view of a connection owned by the user (404s as [`owned`]).
fn owned_info(
    db: &Db,
    user_id: &str,
    cid: &str,
    now: OffsetDateTime,
) -> Result<ConnectionInfo, ApiError> {
    Ok(db.connection_info(owned(db, user_id, cid)?, now))
}

/// `GET /users/{id}/connections` with `filter` on id, status, institution.id.
async fn list(
    State(state): State<AppState>,
    ServerUserQuery { user_id, raw }: ServerUserQuery,
) -> Result<Response, ApiError> {
    let conds = query::filter(
        raw.as_deref(),
        &[
            "id",
            "status",
            "institution.id",
            "connection.id",
            "connection.status",
            "connection.institution.id",
        ],
    )?;
    let now = state.now();
    let infos: Vec<ConnectionInfo> = {
        let db = state.db();
        require_user(&db, &user_id)?;
        db.connection_infos_of(&user_id, now)
    };
    let base = state.base();
    // The JSON (with each connection's accounts) is built after the lock is released.
    let data = infos
        .into_iter()
        .filter(|info| {
            conds.iter().all(|cond| {
                let field = cond.field.trim_start_matches("connection.");
                match field {
                    "id" => cond.matches(&info.id),
                    "status" => cond.matches(info.status.as_str()),
                    _ => cond.matches(&info.institution_id),
                }
            })
        })
        .map(|info| connection_body(&state, info))
        .collect::<Result<Vec<Bytes>, ApiError>>()?;
    // The list written around the connections' bytes (each a complete JSON object).
    let links = json!({ "self": format!("{base}/users/{user_id}/connections") });
    let mut body = format!(r#"{{"type":"list","count":{},"data":["#, data.len()).into_bytes();
    body.reserve(data.iter().map(|d| d.len() + 1).sum::<usize>() + 128);
    for (i, connection) in data.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(connection);
    }
    body.extend_from_slice(br#"],"links":"#);
    body.extend_from_slice(links.to_string().as_bytes());
    body.push(b'}');
    Ok(json_response(Bytes::from(body)))
}

/// The connection JSON as bytes, rendered only when `info` differs from the view it was last
/// rendered from (a function of `info` alone: see [`crate::rendered`]).
fn connection_body(state: &AppState, info: ConnectionInfo) -> Result<Bytes, ApiError> {
    let id = info.id.clone();
    state
        .inner
        .rendered_connections
        .get_or_render(&id, info, |info| {
            serde_json::to_vec(&connection_json(state.base(), info))
        })
        .map_err(|e| ApiError::internal(format!("cannot encode the connection: {e}")))
}

fn json_response(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn get_one(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path((user_id, cid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let now = state.now();
    let info = owned_info(&state.db(), &user_id, &cid, now)?;
    // Built after the lock is released (the accounts are generated on first use).
    Ok(json_response(connection_body(&state, info)?))
}

/// `DELETE` → 204. The connection's jobs stay readable by id (their `source` then 404s).
async fn delete_one(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path((user_id, cid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let now = state.now();
    let mut db = state.db();
    let info = owned_info(&db, &user_id, &cid, now)?;
    // The data fetched through it stays on the user (basiq-api.md §3.2); see `data_routes`.
    let url = format!("{}/users/{user_id}/connections/{cid}", state.base());
    let data = connection_json(state.base(), &info);
    crate::surface::record(
        &mut db,
        now,
        "connection",
        "deleted",
        Some(&user_id),
        url,
        data,
    );
    db.retained.push(info);
    db.connections.remove(&cid);
    Ok(no_content())
}

/// What a refresh request turned into.
enum Refreshed {
    /// A job was already queued or running: 200 with it.
    Existing(String),
    /// 202 with a new job.
    Created(String),
}

/// The refresh rules for one connection (see the module docs).
fn refresh(db: &mut Db, now: OffsetDateTime, cid: &str) -> Result<Refreshed, ApiError> {
    let c = db
        .connections
        .get(cid)
        .ok_or_else(|| connection_not_found(cid))?;
    let info = db.connection_info(c, now);
    if let Some(job) = info.job_in_progress {
        db.stats.duplicate_refreshes += 1;
        return Ok(Refreshed::Existing(job));
    }
    match info.status {
        ConnectionStatus::Active => {}
        ConnectionStatus::Invalid => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid-credentials",
                "Cannot login to target institution, check credentials.",
                "Cannot login to target institution using supplied credentials",
            ))
        }
        ConnectionStatus::Pending => {
            return Err(ApiError::invalid(
                "connectionId",
                "Connection is not active and cannot be refreshed",
            ))
        }
    }
    if c.method == Method::OpenBanking {
        let today = now.date();
        let used = c.refreshes.iter().filter(|t| t.date() == today).count();
        if used >= OPEN_BANKING_DAILY_REFRESHES {
            let resets = today.next_day().map(|d| rfc3339(d.midnight().assume_utc()));
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-requests",
                "Too many requests",
                format!(
                    "Open banking connections can be refreshed at most {OPEN_BANKING_DAILY_REFRESHES} times per day; the quota resets at {}",
                    resets.unwrap_or_default()
                ),
            ));
        }
    }
    create_job(db, now, cid, JobKind::Refresh)
        .map(Refreshed::Created)
        .ok_or_else(|| connection_not_found(cid))
}

/// `POST /users/{id}/connections/{cid}/refresh` → 202 new job, or 200 running job.
async fn refresh_one(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path((user_id, cid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let now = state.now();
    let mut db = state.db();
    owned(&db, &user_id, &cid)?;
    let base = state.base();
    Ok(match refresh(&mut db, now, &cid)? {
        Refreshed::Existing(id) => (StatusCode::OK, Json(job_ref(base, &id))).into_response(),
        Refreshed::Created(id) => (StatusCode::ACCEPTED, Json(job_ref(base, &id))).into_response(),
    })
}

/// `POST /users/{id}/connections/refresh` → 202 with a job per active connection (running jobs
/// are included as they are; connections that cannot be refreshed are skipped).
async fn refresh_all(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Response, ApiError> {
    let now = state.now();
    let mut db = state.db();
    require_user(&db, &user_id)?;
    let ids: Vec<String> = db
        .connections_of(&user_id)
        .iter()
        .map(|c| c.id.clone())
        .collect();
    let base = state.base();
    let mut data = Vec::new();
    for cid in ids {
        match refresh(&mut db, now, &cid) {
            Ok(Refreshed::Existing(id) | Refreshed::Created(id)) => data.push(job_ref(base, &id)),
            Err(_) => continue,
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "type": "list", "data": data })),
    )
        .into_response())
}

/// `POST …/{cid}/purge` → 204 for active connections; 400 `parameter-not-valid` otherwise.
async fn purge(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path((user_id, cid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let now = state.now();
    let mut db = state.db();
    let info = owned_info(&db, &user_id, &cid, now)?;
    if info.status != ConnectionStatus::Active {
        return Err(ApiError::invalid(
            "connectionId",
            format!(
                "Only active connections can be purged; this connection is {}",
                info.status.as_str()
            ),
        ));
    }
    if let Some(c) = db.connections.get_mut(&cid) {
        c.purged_at = Some(now);
        c.data_generation += 1;
    }
    *db.stats.purges.entry(cid).or_default() += 1;
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn conn(purged_at: Option<OffsetDateTime>) -> Connection {
        Connection {
            id: "c".into(),
            seq: 1,
            user_id: "u".into(),
            institution_id: "AU00000".into(),
            method: Method::Web,
            login_id: "jared".into(),
            password: "django".into(),
            created: datetime!(2024-05-01 00:00 UTC),
            purged_at,
            data_generation: u64::from(purged_at.is_some()),
            refreshes: Vec::new(),
            attempts: 0,
        }
    }

    fn job(seq: u64, start: OffsetDateTime, login: &str, password: &str) -> Job {
        let steps = crate::logins::plan(login, password, 0, false, false);
        Job::test_connect(seq, login, start, start, steps)
    }

    #[test]
    fn purge_lasts_until_a_job_succeeds_after_it() {
        let t0 = datetime!(2024-05-01 00:00 UTC);
        let first = job(1, t0, "jared", "django");
        let purge = t0 + time::Duration::minutes(1);
        let c = conn(Some(purge));
        let info = derive(&c, &[&first], purge);
        assert!(info.purged);
        assert!(!info.accounts_retrieved);
        assert_eq!(
            info.status,
            ConnectionStatus::Active,
            "purge keeps the connection active"
        );

        let refresh = job(2, purge + time::Duration::minutes(1), "jared", "django");
        let mid = purge + time::Duration::minutes(1) + time::Duration::seconds(8);
        let info = derive(&c, &[&first, &refresh], mid);
        assert!(
            info.purged,
            "accounts refetched but the job is not done yet"
        );
        assert_eq!(info.job_in_progress.as_deref(), Some("j2"));

        let done = mid + time::Duration::seconds(5);
        let info = derive(&c, &[&first, &refresh], done);
        assert!(!info.purged);
        assert!(info.accounts_retrieved && info.transactions_retrieved);
        assert_eq!(info.successful_jobs, 2);
        assert_eq!(info.last_used, Some(done));
        assert_eq!(info.data_generation, 1);
    }

    #[test]
    fn a_failed_job_after_success_invalidates() {
        let t0 = datetime!(2024-05-01 00:00 UTC);
        let ok = job(1, t0, "jared", "django");
        let bad = job(2, t0 + time::Duration::minutes(1), "jared", "changed");
        let late = t0 + time::Duration::minutes(2);
        let info = derive(&conn(None), &[&ok, &bad], late);
        assert_eq!(info.status, ConnectionStatus::Invalid);
        assert_eq!(
            info.last_used,
            Some(t0 + time::Duration::seconds(13)),
            "lastUsed keeps the last success"
        );
        assert!(
            info.accounts_retrieved,
            "data from the earlier success stays"
        );
    }
}
