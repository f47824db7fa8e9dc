//! `GET /events`, `/events/{id}`, `/events/types`, `/events/types/{id}`.
//!
//! Events are what happened in the last 7 days. Most are *derived* from the state at read time
//! (a connection's creation, the success of a job's `retrieve-accounts` / `retrieve-transactions`
//! step, a consent's creation or expiry), so they appear exactly when the virtual clock passes
//! them; the rest are *recorded* when they happen (user created / updated / deleted, connection
//! deleted, consent revoked, test messages). Ids are stable across reads.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::stable_id;
use crate::auth::ServerAuth;
use crate::clock::rfc3339;
use crate::error::ApiError;
use crate::logins::{ACCOUNTS, TRANSACTIONS};
use crate::query;
use std::collections::HashMap;

use crate::state::{AppState, ConnectionInfo, Db, Job};

/// Basiq keeps events for 7 days.
const EVENT_WINDOW: time::Duration = time::Duration::days(7);

/// The event types Basiq documents (basiq-api.md §7), with what they mean.
pub(crate) const EVENT_TYPES: &[(&str, &str)] = &[
    ("user.created", "A user was created."),
    ("user.updated", "A user's details changed."),
    ("user.deleted", "A user was deleted."),
    ("connection.created", "A connection was created."),
    ("connection.activated", "A connection became active."),
    ("connection.invalidated", "A connection became invalid."),
    ("connection.deleted", "A connection was deleted."),
    ("consent.created", "A consent was given."),
    ("consent.updated", "A consent changed."),
    ("consent.revoked", "A consent was revoked."),
    ("consent.expired", "A consent expired."),
    ("consent.warning", "A consent expires soon."),
    ("account.updated", "Accounts were retrieved or refreshed."),
    (
        "transactions.updated",
        "Transactions were retrieved or refreshed.",
    ),
];

#[derive(Debug, Clone)]
pub(crate) struct RecordedEvent {
    pub(crate) id: String,
    pub(crate) at: OffsetDateTime,
    pub(crate) entity: String,
    pub(crate) event_type: String,
    pub(crate) user_id: Option<String>,
    pub(crate) data_ref: String,
    pub(crate) data: Value,
}

/// An event, recorded or derived.
#[derive(Debug, Clone)]
pub(crate) struct EventView {
    pub(crate) id: String,
    pub(crate) at: OffsetDateTime,
    /// Order among events at the same instant (recording order, then derivation order).
    pub(crate) order: u64,
    pub(crate) entity: String,
    pub(crate) event_type: String,
    pub(crate) user_id: Option<String>,
    pub(crate) data_ref: String,
    pub(crate) data: Value,
}

impl EventView {
    /// `connection.created`: the id of its event type.
    pub(crate) fn type_id(&self) -> String {
        format!("{}.{}", self.entity, self.event_type)
    }
}

/// Records an event that cannot be derived from the state (call it under the `Db` lock).
pub(crate) fn record(
    db: &mut Db,
    at: OffsetDateTime,
    entity: &str,
    event_type: &str,
    user_id: Option<&str>,
    data_ref: String,
    data: Value,
) {
    let id = super::fresh_id(db, "event");
    db.surface.events.push(RecordedEvent {
        id,
        at,
        entity: entity.to_owned(),
        event_type: event_type.to_owned(),
        user_id: user_id.map(str::to_owned),
        data_ref,
        data,
    });
}

/// Every event up to `now` younger than 7 days, newest first.
pub(crate) fn all_events(db: &Db, base: &str, now: OffsetDateTime) -> Vec<EventView> {
    events_in(db, base, now - EVENT_WINDOW, now, None, None)
}

/// The events with `after < at <= now`, newest first. Work is proportional to what can fall in
/// the range (a connection's JSON is built only for its own `connection.created`), so the
/// webhook pump can ask for a few seconds at a time.
pub(crate) fn events_in(
    db: &Db,
    base: &str,
    after: OffsetDateTime,
    now: OffsetDateTime,
    candidate_jobs: Option<&[String]>,
    first_connections: Option<&HashMap<String, OffsetDateTime>>,
) -> Vec<EventView> {
    let in_range = |at: OffsetDateTime| at > after && at <= now;
    let mut out: Vec<EventView> = db
        .surface
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| in_range(e.at))
        .map(|(i, e)| EventView {
            id: e.id.clone(),
            at: e.at,
            order: i as u64,
            entity: e.entity.clone(),
            event_type: e.event_type.clone(),
            user_id: e.user_id.clone(),
            data_ref: e.data_ref.clone(),
            data: e.data.clone(),
        })
        .collect();
    let mut derived = |at: OffsetDateTime,
                       entity: &str,
                       kind: &str,
                       user: &str,
                       key: &str,
                       data_ref: String,
                       data: &dyn Fn() -> Value| {
        if !in_range(at) {
            return;
        }
        let order = 1_000_000 + out.len() as u64;
        out.push(EventView {
            id: derived_id(entity, kind, key),
            at,
            order,
            entity: entity.to_owned(),
            event_type: kind.to_owned(),
            user_id: Some(user.to_owned()),
            data_ref,
            data: data(),
        });
    };
    // Jobs grouped by connection once (oldest first), not searched per connection.
    let mut jobs_by_connection: HashMap<&str, Vec<&Job>> = HashMap::new();
    let jobs: Box<dyn Iterator<Item = &Job>> = match candidate_jobs {
        // The caller knows which jobs can still emit (the webhook pump's live jobs).
        Some(ids) => Box::new(ids.iter().filter_map(|id| db.jobs.get(id))),
        None => Box::new(db.jobs.values()),
    };
    for job in jobs.filter(|j| j.start_at <= now && j.finished_at() > after) {
        jobs_by_connection
            .entry(job.connection_id.as_str())
            .or_default()
            .push(job);
    }
    for jobs in jobs_by_connection.values_mut() {
        jobs.sort_by_key(|j| j.seq);
    }
    // Live connections as of now, and deleted ones as they were (their events stay 7 days).
    // Only those with something in the range: created in it, or a job emitting in it.
    let mut connections: Vec<_> = db.connections.values().collect();
    connections.sort_by_key(|c| c.seq);
    let live = connections.into_iter().map(|c| {
        let info: Option<&ConnectionInfo> = None;
        (c.id.as_str(), c.user_id.as_str(), c.created, Some(c), info)
    });
    let retained = db.retained.iter().map(|info| {
        (
            info.id.as_str(),
            info.user_id.as_str(),
            info.created,
            None,
            Some(info),
        )
    });
    let no_jobs = Vec::new();
    for (cid, uid, created, conn, info) in live.chain(retained) {
        let jobs = jobs_by_connection.get(cid).unwrap_or(&no_jobs);
        if jobs.is_empty() && !in_range(created) {
            continue;
        }
        if in_range(created) {
            let conn_url = format!("{base}/users/{uid}/connections/{cid}");
            derived(
                created,
                "connection",
                "created",
                uid,
                cid,
                conn_url,
                &|| {
                    let info = match (conn, info) {
                        (Some(c), _) => db.connection_info(c, now),
                        (None, Some(info)) => info.clone(),
                        (None, None) => return Value::Null,
                    };
                    crate::connections::connection_json(base, &info)
                },
            );
        }
        for job in jobs {
            let data = || json!({ "connection": cid, "job": job.id });
            // The data links name the connection (as a filter), so an app knows which
            // connection Basiq refreshed without fetching the event.
            let filter = format!("?filter=connection.id.eq('{cid}')");
            if let Some(at) = job
                .step_succeeded_at(ACCOUNTS, now)
                .filter(|at| in_range(*at))
            {
                let url = format!("{base}/users/{uid}/accounts{filter}");
                derived(at, "account", "updated", uid, &job.id, url, &data);
            }
            if let Some(at) = job
                .step_succeeded_at(TRANSACTIONS, now)
                .filter(|at| in_range(*at))
            {
                let url = format!("{base}/users/{uid}/transactions{filter}");
                derived(at, "transactions", "updated", uid, &job.id, url, &data);
            }
        }
    }
    // Only users one of whose consent instants falls in the range.
    let computed;
    let first = match first_connections {
        Some(first) => first,
        None => {
            computed = super::consents::first_connections(db);
            &computed
        }
    };
    let mut users: Vec<&String> = db
        .users
        .keys()
        .filter(|uid| {
            db.surface.consent_revoked.contains_key(uid.as_str())
                || first.get(uid.as_str()).is_some_and(|created| {
                    let expires = *created + super::consents::CONSENT_TTL;
                    [
                        *created,
                        expires - super::consents::CONSENT_WARNING,
                        expires,
                    ]
                    .into_iter()
                    .any(in_range)
                })
        })
        .collect();
    users.sort();
    for uid in users {
        if let Some(consent) = super::consents::consent_of(db, uid, now) {
            let url = format!("{base}/users/{uid}/consents/{}", consent.id);
            let data = || json!({ "id": consent.id, "status": consent.status });
            derived(
                consent.created,
                "consent",
                "created",
                uid,
                &consent.id,
                url.clone(),
                &data,
            );
            // Basiq warns 7 days before a consent expires, unless it ended before.
            let warning = consent.expires - super::consents::CONSENT_WARNING;
            if consent.revoked.is_none_or(|r| r > warning) {
                derived(
                    warning,
                    "consent",
                    "warning",
                    uid,
                    &consent.id,
                    url.clone(),
                    &data,
                );
            }
            if consent.status == "expired" {
                derived(
                    consent.expires,
                    "consent",
                    "expired",
                    uid,
                    &consent.id,
                    url,
                    &data,
                );
            }
        }
    }
    out.sort_by(|a, b| b.at.cmp(&a.at).then(b.order.cmp(&a.order)));
    out
}

/// The stable id of a derived event.
pub(crate) fn derived_id(entity: &str, kind: &str, key: &str) -> String {
    stable_id(&format!("event:{entity}.{kind}:{key}"))
}

pub(crate) fn event_json(base: &str, e: &EventView) -> Value {
    let mut v = json!({
        "type": "event",
        "id": e.id,
        "createdDate": rfc3339(e.at),
        "entity": e.entity,
        "eventType": e.event_type,
        "dataRef": e.data_ref,
        "data": e.data,
        "links": { "self": format!("{base}/events/{}", e.id) },
    });
    if let (Some(user), Some(obj)) = (&e.user_id, v.as_object_mut()) {
        obj.insert("userId".into(), json!(user));
    }
    v
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/events", get(list))
        .route("/events/types", get(list_types))
        .route("/events/types/{type_id}", get(get_type))
        .route("/events/{event_id}", get(get_one))
}

/// `GET /events` with `filter` on `user.id`, `event.entity` and `event.type` (the type's id,
/// `connection.created`, or just its verb, `created`).
async fn list(
    _auth: ServerAuth,
    State(state): State<AppState>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Json<Value>, ApiError> {
    let conds = query::filter(raw.as_deref(), &["user.id", "event.entity", "event.type"])?;
    let now = state.now();
    let base = state.base();
    let db = state.db();
    let data: Vec<Value> = all_events(&db, base, now)
        .iter()
        .filter(|e| {
            conds.iter().all(|c| match c.field.as_str() {
                "user.id" => c.matches(e.user_id.as_deref().unwrap_or("")),
                "event.entity" => c.matches(&e.entity),
                _ => c.matches(&e.type_id()) || c.matches(&e.event_type),
            })
        })
        .map(|e| event_json(base, e))
        .collect();
    Ok(Json(json!({
        "type": "list",
        "data": data,
        "links": { "self": format!("{base}/events") },
    })))
}

async fn get_one(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path(event_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let now = state.now();
    let base = state.base();
    let db = state.db();
    all_events(&db, base, now)
        .iter()
        .find(|e| e.id == event_id)
        .map(|e| Json(event_json(base, e)))
        .ok_or_else(|| ApiError::not_found(format!("Event with id '{event_id}' not found.")))
}

fn type_json(base: &str, id: &str, description: &str) -> Value {
    json!({
        "type": "event-type",
        "id": id,
        "description": description,
        "links": { "self": format!("{base}/events/types/{id}") },
    })
}

async fn list_types(_auth: ServerAuth, State(state): State<AppState>) -> Json<Value> {
    let base = state.base();
    let data: Vec<Value> = EVENT_TYPES
        .iter()
        .map(|(id, d)| type_json(base, id, d))
        .collect();
    Json(super::whole_list(format!("{base}/events/types"), data))
}

async fn get_type(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path(type_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    EVENT_TYPES
        .iter()
        .find(|(id, _)| *id == type_id)
        .map(|(id, d)| Json(type_json(state.base(), id, d)))
        .ok_or_else(|| ApiError::not_found(format!("Event type '{type_id}' not found.")))
}
