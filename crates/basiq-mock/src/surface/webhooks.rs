//! `POST|GET /notifications/webhooks`, `POST|GET|DELETE /notifications/webhooks/{id}`,
//! `GET …/{id}/messages[/{messageId}]`, `POST /notifications/messages/test`.
//!
//! A subscription's messages are the events (see `events.rs`) since it was created whose type
//! it subscribes to (all, when `subscribedEvents` is empty), derived at read time, so they
//! appear as the virtual clock passes the events. Delivery (POSTing them to a `127.0.0.1` URL,
//! with Basiq's retries, then disabling the subscription) is the pump's (`notify.rs`); each
//! message shows its `attempts`, and a disabled subscription `status: "disabled"`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::events::{all_events, EventView, EVENT_TYPES};
use super::{fresh_id, require_json, stable_id};
use crate::auth::ServerAuth;
use crate::data_routes::list_query;
use crate::error::{no_content, parse_json, ApiError};
use crate::page;
use crate::state::AppState;

#[derive(Debug, Clone)]
pub(crate) struct WebhookRecord {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) url: String,
    pub(crate) subscribed_events: Vec<String>,
    pub(crate) secret: String,
    pub(crate) created: OffsetDateTime,
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/notifications/webhooks", get(list).post(create))
        .route(
            "/notifications/webhooks/{webhook_id}",
            get(get_one).post(update).delete(delete_one),
        )
        .route(
            "/notifications/webhooks/{webhook_id}/messages",
            get(list_messages),
        )
        .route(
            "/notifications/webhooks/{webhook_id}/messages/{message_id}",
            get(get_message),
        )
        .route("/notifications/messages/test", post(send_test))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookBody {
    name: Option<String>,
    description: Option<String>,
    url: Option<String>,
    #[serde(default)]
    subscribed_events: Vec<String>,
}

/// Checks a body and returns `(url, events)`.
fn validate(body: &WebhookBody) -> Result<(String, Vec<String>), ApiError> {
    let url = body
        .url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::missing("url", "'url' is required."))?;
    let parsed = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    if parsed.is_none_or(|rest| rest.is_empty() || rest.starts_with('/')) {
        return Err(ApiError::invalid(
            "url",
            "'url' must be an absolute http(s) URL.",
        ));
    }
    for e in &body.subscribed_events {
        if !EVENT_TYPES.iter().any(|(id, _)| id == e) {
            return Err(ApiError::invalid(
                "subscribedEvents",
                format!("Event type '{e}' is not known."),
            ));
        }
    }
    Ok((url.to_owned(), body.subscribed_events.clone()))
}

fn conflict(url: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "conflict",
        "Conflict",
        format!("A webhook for '{url}' already exists."),
    )
}

fn webhook_json(base: &str, w: &WebhookRecord, with_secret: bool, disabled: bool) -> Value {
    let mut v = json!({
        "type": "webhook",
        "id": w.id,
        "name": w.name,
        "description": w.description,
        "url": w.url,
        "status": if disabled { "disabled" } else { "active" },
        "subscribedEvents": w.subscribed_events,
        "links": { "self": format!("{base}/notifications/webhooks/{}", w.id) },
    });
    if with_secret {
        if let Some(obj) = v.as_object_mut() {
            obj.insert("secret".into(), json!(w.secret));
        }
    }
    v
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Webhook with id '{id}' not found."))
}

async fn create(
    _auth: ServerAuth,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    require_json(&headers)?;
    let body: WebhookBody = parse_json(&body)?;
    let (url, events) = validate(&body)?;
    let now = state.now();
    let mut db = state.db();
    if db.surface.webhooks.iter().any(|w| w.url == url) {
        return Err(conflict(&url));
    }
    let id = fresh_id(&mut db, "webhook");
    // A Svix-style secret (`whsec_` + base64 of 24 bytes), as `webhooks::WebhookVerifier` takes.
    let seed = stable_id(&format!("secret:{id}"));
    let secret = format!("whsec_{}", crate::ids::base64(&seed.as_bytes()[..24]));
    let record = WebhookRecord {
        id,
        name: body.name.unwrap_or_default(),
        description: body.description.unwrap_or_default(),
        url,
        subscribed_events: events,
        secret,
        created: now,
    };
    let json = webhook_json(state.base(), &record, true, false);
    db.surface.webhooks.push(record);
    Ok((StatusCode::CREATED, Json(json)).into_response())
}

async fn list(_auth: ServerAuth, State(state): State<AppState>) -> Json<Value> {
    let base = state.base();
    let db = state.db();
    let data: Vec<Value> = db
        .surface
        .webhooks
        .iter()
        .map(|w| webhook_json(base, w, false, db.surface.notify.disabled.contains(&w.id)))
        .collect();
    Json(super::whole_list(
        format!("{base}/notifications/webhooks"),
        data,
    ))
}

async fn get_one(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path(webhook_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let db = state.db();
    db.surface
        .webhooks
        .iter()
        .find(|w| w.id == webhook_id)
        .map(|w| {
            let disabled = db.surface.notify.disabled.contains(&w.id);
            Json(webhook_json(state.base(), w, false, disabled))
        })
        .ok_or_else(|| not_found(&webhook_id))
}

async fn update(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path(webhook_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require_json(&headers)?;
    let body: WebhookBody = parse_json(&body)?;
    let (url, events) = validate(&body)?;
    let mut db = state.db();
    if db
        .surface
        .webhooks
        .iter()
        .any(|w| w.url == url && w.id != webhook_id)
    {
        return Err(conflict(&url));
    }
    let w = db
        .surface
        .webhooks
        .iter_mut()
        .find(|w| w.id == webhook_id)
        .ok_or_else(|| not_found(&webhook_id))?;
    w.url = url;
    w.subscribed_events = events;
    if let Some(name) = body.name {
        w.name = name;
    }
    if let Some(description) = body.description {
        w.description = description;
    }
    let w = w.clone();
    let disabled = db.surface.notify.disabled.contains(&w.id);
    Ok(Json(webhook_json(state.base(), &w, false, disabled)))
}

async fn delete_one(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path(webhook_id): Path<String>,
) -> Result<Response, ApiError> {
    let mut db = state.db();
    let before = db.surface.webhooks.len();
    db.surface.webhooks.retain(|w| w.id != webhook_id);
    if db.surface.webhooks.len() == before {
        return Err(not_found(&webhook_id));
    }
    Ok(no_content())
}

fn message_json(base: &str, w: &WebhookRecord, e: &EventView, attempts: Vec<Value>) -> Value {
    let id = super::notify::message_id(&w.id, &e.id);
    let event_url = format!("{base}/events/{}", e.id);
    json!({
        "type": "message",
        "id": id,
        "webhookId": w.id,
        "event": e.type_id(),
        "eventTypeId": e.type_id(),
        "eventId": e.id,
        "payload": {
            "eventTypeId": e.type_id(),
            "eventId": e.id,
            "links": { "event": event_url, "eventEntity": e.data_ref },
        },
        "attempts": attempts,
        "links": {
            "self": format!("{base}/notifications/webhooks/{}/messages/{id}", w.id),
            "event": event_url,
            "webhook": format!("{base}/notifications/webhooks/{}", w.id),
        },
    })
}

/// The subscription's messages, newest first.
fn messages(state: &AppState, webhook_id: &str) -> Result<Vec<Value>, ApiError> {
    let now = state.now();
    let base = state.base();
    let db = state.db();
    let w = db
        .surface
        .webhooks
        .iter()
        .find(|w| w.id == webhook_id)
        .ok_or_else(|| not_found(webhook_id))?;
    Ok(all_events(&db, base, now)
        .iter()
        .filter(|e| e.at >= w.created)
        .filter(|e| w.subscribed_events.is_empty() || w.subscribed_events.contains(&e.type_id()))
        .map(|e| {
            let id = super::notify::message_id(&w.id, &e.id);
            let attempts = db
                .surface
                .notify
                .deliveries
                .iter()
                .filter(|d| d.message_id == id)
                .flat_map(|d| {
                    d.attempts.iter().enumerate().map(|(i, a)| {
                        json!({
                            "id": stable_id(&format!("attempt:{id}:{i}")),
                            "url": d.url,
                            "response": if a.delivered { "OK" } else { "Failed" },
                            "responseStatusCode": a.status,
                            "timestamp": crate::clock::rfc3339(a.at),
                            "status": if a.delivered { "Success" } else { "Failed" },
                        })
                    })
                })
                .rev()
                .collect();
            message_json(base, w, e, attempts)
        })
        .collect())
}

async fn list_messages(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path(webhook_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = list_query(raw.as_deref())?;
    page::parse_limit(q.limit.as_deref())?;
    let conds = crate::query::filter(raw.as_deref(), &["event.type", "eventTypeId"])?;
    let items: Vec<Value> = messages(&state, &webhook_id)?
        .into_iter()
        .filter(|m| {
            conds
                .iter()
                .all(|c| c.matches(m["eventTypeId"].as_str().unwrap_or("")))
        })
        .collect();
    let path = format!("/notifications/webhooks/{webhook_id}/messages");
    let url = format!("{}{path}", state.base());
    Ok(Json(page::page(items, &q, &url, &path)?))
}

async fn get_message(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path((webhook_id, message_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    messages(&state, &webhook_id)?
        .into_iter()
        .find(|m| m["id"] == message_id.as_str())
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("Message with id '{message_id}' not found.")))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestBody {
    event_type_id: Option<String>,
}

/// Records an event of the given type (no user), which every matching subscription lists as a
/// message. 201, no body.
async fn send_test(
    _auth: ServerAuth,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    require_json(&headers)?;
    let body: TestBody = parse_json(&body)?;
    let type_id = body
        .event_type_id
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::missing("eventTypeId", "'eventTypeId' is required."))?;
    let (entity, kind) = EVENT_TYPES
        .iter()
        .find(|(id, _)| *id == type_id)
        .and_then(|(id, _)| id.split_once('.'))
        .ok_or_else(|| {
            ApiError::invalid(
                "eventTypeId",
                format!("Event type '{type_id}' is not known."),
            )
        })?;
    let now = state.now();
    let base = state.base().to_owned();
    let mut db = state.db();
    super::record(
        &mut db,
        now,
        entity,
        kind,
        None,
        format!("{base}/events/types/{type_id}"),
        json!({ "test": true }),
    );
    Ok(StatusCode::CREATED.into_response())
}
