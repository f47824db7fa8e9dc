//! The rest of Basiq's v3 surface: consents and auth links, events, statements, identities,
//! affordability / expense / income summaries, reports, enrich and webhook subscriptions.
//!
//! Same rules as the core routes: virtual time (job progress, expiries and event windows are
//! derived from the clock at read time, never by a background task), deterministic ids and
//! results, Basiq-format errors, a SERVER_ACCESS token on every route. The state lives in
//! [`SurfaceDb`], one field of the emulator's `Db`, so a reset clears it too.

mod consents;
mod events;
mod insights;
pub(crate) mod notify;
mod reports;
mod statements;
mod webhooks;

use std::collections::HashMap;

use axum::http::{header, HeaderMap, StatusCode};
use axum::Router;
use serde_json::Value;
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::ids::mix;
use crate::state::AppState;

pub(crate) use events::record;

/// What the surface routes remember.
#[derive(Debug, Default)]
pub(crate) struct SurfaceDb {
    /// Events that are not derived from other state (user changes, revocations, deletions,
    /// test messages), oldest first.
    pub(crate) events: Vec<events::RecordedEvent>,
    /// When each user's consent was revoked.
    pub(crate) consent_revoked: HashMap<String, OffsetDateTime>,
    /// Each user's current auth link.
    pub(crate) auth_links: HashMap<String, consents::AuthLinkRecord>,
    /// Statement and report jobs (connection jobs live in `Db::jobs`).
    pub(crate) jobs: HashMap<String, SurfaceJob>,
    pub(crate) reports: HashMap<String, reports::ReportRecord>,
    /// Affordability, expense and income snapshots.
    pub(crate) snapshots: HashMap<String, insights::Snapshot>,
    /// Webhook subscriptions in creation order (deleted ones removed).
    pub(crate) webhooks: Vec<webhooks::WebhookRecord>,
    /// The smart cache and webhook deliveries (the pump's state).
    pub(crate) notify: notify::NotifyState,
    /// Feeds [`fresh_id`].
    pub(crate) next_seq: u64,
}

/// The routes, to merge into the main router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .merge(consents::routes())
        .merge(events::routes())
        .merge(statements::routes())
        .merge(insights::routes())
        .merge(reports::routes())
        .merge(webhooks::routes())
}

/// A statement or report job: steps that run one after another from `created`.
#[derive(Debug, Clone)]
pub(crate) struct SurfaceJob {
    pub(crate) id: String,
    pub(crate) user_id: Option<String>,
    pub(crate) kind: SurfaceJobKind,
    pub(crate) created: OffsetDateTime,
    /// Title, duration, and the link its result shows on success.
    pub(crate) steps: Vec<(&'static str, time::Duration, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SurfaceJobKind {
    Statement,
    Report,
}

impl SurfaceJob {
    fn step_end(&self, index: usize) -> OffsetDateTime {
        self.created
            + self.steps[..=index]
                .iter()
                .map(|s| s.1)
                .sum::<time::Duration>()
    }

    /// When the last step ends.
    pub(crate) fn finished_at(&self) -> OffsetDateTime {
        self.created + self.steps.iter().map(|s| s.1).sum::<time::Duration>()
    }

    pub(crate) fn is_finished(&self, now: OffsetDateTime) -> bool {
        now >= self.finished_at()
    }

    /// The job as Basiq renders it at `now`. Statement jobs use `createdDate` / `updatedDate`
    /// and have no `links.source`; report jobs carry a top-level `status` (basiq-api.md §4.2).
    pub(crate) fn json(&self, base: &str, now: OffsetDateTime) -> Value {
        let mut updated = self.created;
        let steps: Vec<Value> = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, (title, duration, url))| {
                let end = self.step_end(i);
                let start = end - *duration;
                let (status, result) = if now >= end {
                    updated = end;
                    ("success", serde_json::json!({ "type": "link", "url": url }))
                } else if now >= start {
                    updated = updated.max(start);
                    ("in-progress", Value::Null)
                } else {
                    ("pending", Value::Null)
                };
                serde_json::json!({ "title": title, "status": status, "result": result })
            })
            .collect();
        let created = crate::clock::rfc3339(self.created);
        let updated = crate::clock::rfc3339(updated);
        let links = serde_json::json!({ "self": format!("{base}/jobs/{}", self.id) });
        match self.kind {
            SurfaceJobKind::Statement => serde_json::json!({
                "type": "job",
                "id": self.id,
                "createdDate": created,
                "updatedDate": updated,
                "jobType": "statement",
                "steps": steps,
                "links": links,
            }),
            SurfaceJobKind::Report => {
                let status = if self.is_finished(now) {
                    "success"
                } else if now > self.created {
                    "in-progress"
                } else {
                    "pending"
                };
                serde_json::json!({
                    "type": "job",
                    "id": self.id,
                    "created": created,
                    "updated": updated,
                    "status": status,
                    "jobType": "report",
                    "steps": steps,
                    "links": links,
                })
            }
        }
    }
}

/// A deterministic uuid-looking id for a name (e.g. `consent:{userId}`): the same input always
/// gives the same id, so derived resources keep their ids across reads.
/// A list answered in one page (no `links.next`): Basiq's list envelope around `data`.
pub(crate) fn whole_list(self_url: String, data: Vec<Value>) -> Value {
    serde_json::json!({
        "type": "list",
        "count": data.len(),
        "size": data.len(),
        "data": data,
        "links": { "self": self_url },
    })
}

pub(crate) fn stable_id(name: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    crate::ids::uuid_like(crate::ids::IdKind::Key, mix(hash))
}

/// A fresh id from the surface's own counter (unique within a run, deterministic across
/// runs). Its own, so recording events never shifts the ids of users, connections and jobs.
pub(crate) fn fresh_id(db: &mut crate::state::Db, what: &str) -> String {
    db.surface.next_seq += 1;
    stable_id(&format!("{what}:{}", db.surface.next_seq))
}

/// Basiq's 415 for a body that is not JSON (`Content-Type` other than `application/json`).
pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if ok {
        Ok(())
    } else {
        Err(unsupported_content_type("application/json"))
    }
}

pub(crate) fn unsupported_content_type(expected: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-content-type",
        "Unsupported content type",
        format!("The request body must be sent as {expected}."),
    )
}

/// Route-layer middleware: a request body on a JSON route must be sent as `application/json`
/// (Basiq answers 415 `unsupported-content-type` otherwise, e.g. for JSON sent as
/// `text/plain`). Exempt: `/token` (a form), the Consent UI stand-in (forms), the multipart
/// statement upload (checked by its handler) and the admin API.
pub(crate) async fn json_content_type(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = req.uri().path();
    let exempt = path == "/token"
        || path.starts_with("/consent/")
        || path.starts_with("/__admin")
        || path.ends_with("/statements");
    if exempt
        || req.headers().contains_key(header::CONTENT_TYPE) && require_json(req.headers()).is_ok()
    {
        return next.run(req).await;
    }
    // No or another content type: only an actually empty body is fine (a POST without a body,
    // as refresh and purge are sent; some clients send those chunked, so read it to know).
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, 2 * 1024 * 1024).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
                "The request body is too large.",
            )
            .into_response()
        }
    };
    if !bytes.is_empty() {
        if let Err(e) = require_json(&parts.headers) {
            return e.into_response();
        }
    }
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

/// Cents from a Basiq decimal string (`"-12.30"`); `0` when it does not parse.
pub(crate) fn cents(amount: &str) -> i64 {
    let (sign, digits) = match amount.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, amount),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    let frac = format!("{frac:0<2}");
    let whole: i64 = whole.parse().unwrap_or(0);
    let frac: i64 = frac[..2].parse().unwrap_or(0);
    sign * (whole * 100 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_reads_decimal_strings() {
        assert_eq!(cents("-12.3"), -1230);
        assert_eq!(cents("4.05"), 405);
        assert_eq!(cents("7"), 700);
        assert_eq!(cents("x"), 0);
    }

    #[test]
    fn stable_ids_are_stable_and_distinct() {
        assert_eq!(stable_id("a"), stable_id("a"));
        assert_ne!(stable_id("a"), stable_id("b"));
    }
}
