//! `POST|GET /reports`, `GET|DELETE /reports/{id}`, `GET /reports/{id}/transactions`,
//! `GET /reports/types[/{id}]`.
//!
//! Creating a report answers a job (`jobType: report`, one `create-report` step of
//! [`REPORT_DURATION`] virtual seconds) whose result links the report; the report is readable
//! once the job succeeded. Its metrics are computed when it is requested, from the users'
//! transactions as they are then, so the same data always gives the same report.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{cents, fresh_id, require_json, SurfaceJob, SurfaceJobKind};
use crate::auth::ServerAuth;
use crate::clock::rfc3339;
use crate::data::money;
use crate::data_routes::{all_transactions, list_query, merged, parse_filter};
use crate::error::{no_content, parse_json, ApiError};
use crate::filter::{self, Op};
use crate::jobs::job_ref;
use crate::page;
use crate::state::AppState;

/// How long building a report takes (virtual time).
pub(crate) const REPORT_DURATION: time::Duration = time::Duration::seconds(5);
/// How long Basiq keeps a report.
const REPORT_TTL: time::Duration = time::Duration::days(30);

/// The report types the emulator builds.
const REPORT_TYPES: &[(&str, &str, &str)] = &[
    (
        "CON_AFFOR_01",
        "Consumer affordability",
        "Income, expenses and balances of a consumer.",
    ),
    (
        "CON_TRANS_01",
        "Consumer transactions",
        "The transactions of a consumer, with totals per class.",
    ),
];

#[derive(Debug, Clone)]
pub(crate) struct ReportRecord {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) report_type: String,
    pub(crate) filters: Vec<Value>,
    pub(crate) users: Vec<String>,
    pub(crate) created: OffsetDateTime,
    pub(crate) data: Value,
}

impl ReportRecord {
    fn ready_at(&self) -> OffsetDateTime {
        self.created + REPORT_DURATION
    }
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/reports", get(list).post(create))
        .route("/reports/types", get(list_types))
        .route("/reports/types/{type_id}", get(get_type))
        .route("/reports/{report_id}", get(get_one).delete(delete_one))
        .route("/reports/{report_id}/transactions", get(transactions))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewReport {
    report_type: Option<String>,
    title: Option<String>,
    #[serde(default)]
    filters: Vec<Filter>,
}

#[derive(Debug, Deserialize)]
struct Filter {
    name: String,
    #[serde(default)]
    value: Value,
}

fn summary(txs: &[&Value]) -> Value {
    let mut by_class = std::collections::BTreeMap::<String, (i64, u64)>::new();
    let (mut credits, mut debits) = (0i64, 0i64);
    for t in txs {
        let c = cents(t["amount"].as_str().unwrap_or("0"));
        if c >= 0 {
            credits += c;
        } else {
            debits += c;
        }
        let e = by_class
            .entry(t["class"].as_str().unwrap_or("other").to_owned())
            .or_default();
        e.0 += c;
        e.1 += 1;
    }
    let groups: Vec<Value> = by_class
        .iter()
        .map(|(class, (total, n))| json!({ "id": class, "title": class, "total": money(*total), "count": n }))
        .collect();
    json!({
        "metrics": [
            { "id": "TOTAL_CREDITS", "title": "Total credits", "value": money(credits) },
            { "id": "TOTAL_DEBITS", "title": "Total debits", "value": money(debits) },
            { "id": "NET", "title": "Net position", "value": money(credits + debits) },
            { "id": "TRANSACTION_COUNT", "title": "Transactions", "value": txs.len().to_string() },
        ],
        "groups": groups,
        "accounts": [],
    })
}

async fn create(
    _auth: ServerAuth,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    require_json(&headers)?;
    let body: NewReport = parse_json(&body)?;
    let report_type = body
        .report_type
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::missing("reportType", "'reportType' is required."))?;
    if !REPORT_TYPES.iter().any(|(id, _, _)| *id == report_type) {
        return Err(ApiError::invalid(
            "reportType",
            format!("Report type '{report_type}' is not known."),
        ));
    }
    let title = body
        .title
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::missing("title", "'title' is required."))?;
    let mut users = Vec::new();
    for f in &body.filters {
        if f.name == "users" {
            match &f.value {
                Value::String(s) => users.push(s.clone()),
                Value::Array(list) => {
                    users.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
                }
                _ => {
                    return Err(ApiError::invalid(
                        "filters",
                        "The 'users' filter takes a user id or a list of them.",
                    ))
                }
            }
        }
    }
    if users.is_empty() {
        return Err(ApiError::missing(
            "filters",
            "A 'users' filter naming at least one user is required.",
        ));
    }
    {
        let db = state.db();
        for u in &users {
            crate::users::require_user(&db, u)?;
        }
    }
    let mut lists = Vec::new();
    for u in &users {
        lists.extend(all_transactions(&state, u)?);
    }
    let data = summary(&merged(&lists));
    let now = state.now();
    let mut db = state.db();
    let id = fresh_id(&mut db, "report");
    let job_id = fresh_id(&mut db, "report-job");
    let filters = body
        .filters
        .iter()
        .map(|f| json!({ "name": f.name, "value": f.value }))
        .collect();
    db.surface.reports.insert(
        id.clone(),
        ReportRecord {
            id: id.clone(),
            title,
            report_type,
            filters,
            users,
            created: now,
            data,
        },
    );
    db.surface.jobs.insert(
        job_id.clone(),
        SurfaceJob {
            id: job_id.clone(),
            user_id: None,
            kind: SurfaceJobKind::Report,
            created: now,
            steps: vec![("create-report", REPORT_DURATION, format!("/reports/{id}"))],
        },
    );
    db.stats.jobs_created += 1;
    Ok((StatusCode::ACCEPTED, Json(job_ref(state.base(), &job_id))).into_response())
}

fn report_json(base: &str, r: &ReportRecord, with_data: bool) -> Value {
    let mut v = json!({
        "type": "report",
        "id": r.id,
        "title": r.title,
        "reportType": r.report_type,
        "createdDate": rfc3339(r.ready_at()),
        "expiresAt": rfc3339(r.created + REPORT_TTL),
        "createdBy": "server",
        "filters": r.filters,
        "links": {
            "self": format!("{base}/reports/{}", r.id),
            "transactions": format!("{base}/reports/{}/transactions", r.id),
        },
    });
    if with_data {
        if let Some(obj) = v.as_object_mut() {
            obj.insert("data".into(), r.data.clone());
        }
    }
    v
}

fn ready<'a>(
    db: &'a crate::state::Db,
    id: &str,
    now: OffsetDateTime,
) -> Result<&'a ReportRecord, ApiError> {
    db.surface
        .reports
        .get(id)
        .filter(|r| now >= r.ready_at() && now < r.created + REPORT_TTL)
        .ok_or_else(|| ApiError::not_found(format!("Report with id '{id}' not found.")))
}

async fn list(_auth: ServerAuth, State(state): State<AppState>) -> Json<Value> {
    let now = state.now();
    let base = state.base();
    let db = state.db();
    let mut reports: Vec<&ReportRecord> = db
        .surface
        .reports
        .values()
        .filter(|r| now >= r.ready_at() && now < r.created + REPORT_TTL)
        .collect();
    reports.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
    let data: Vec<Value> = reports
        .iter()
        .map(|r| report_json(base, r, false))
        .collect();
    Json(super::whole_list(format!("{base}/reports"), data))
}

async fn get_one(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path(report_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let now = state.now();
    let db = state.db();
    ready(&db, &report_id, now).map(|r| Json(report_json(state.base(), r, true)))
}

async fn delete_one(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path(report_id): Path<String>,
) -> Result<Response, ApiError> {
    let now = state.now();
    let mut db = state.db();
    ready(&db, &report_id, now)?;
    db.surface.reports.remove(&report_id);
    Ok(no_content())
}

async fn transactions(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path(report_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = list_query(raw.as_deref())?;
    page::parse_limit(q.limit.as_deref())?;
    let f = parse_filter(q.filter.as_deref(), filter::TRANSACTION_FIELDS, Op::ALL)?;
    let users = {
        let now = state.now();
        let db = state.db();
        ready(&db, &report_id, now)?.users.clone()
    };
    let mut lists = Vec::new();
    for u in &users {
        lists.extend(all_transactions(&state, u)?);
    }
    let items: Vec<&Value> = merged(&lists)
        .into_iter()
        .filter(|t| {
            f.as_ref()
                .is_none_or(|f| f.matches(|p| filter::field_of_transaction(t, p)))
        })
        .collect();
    let path = format!("/reports/{report_id}/transactions");
    let url = format!("{}{path}", state.base());
    Ok(Json(page::page(items, &q, &url, &path)?))
}

fn type_json(base: &str, id: &str, name: &str, description: &str) -> Value {
    json!({
        "type": "report-type",
        "id": id,
        "name": name,
        "description": description,
        "filters": [
            { "name": "users", "required": true, "description": "The users the report covers." },
            { "name": "fromDate", "required": false, "description": "First day, YYYY-MM-DD." },
            { "name": "toDate", "required": false, "description": "Last day, YYYY-MM-DD." },
        ],
        "links": { "self": format!("{base}/reports/types/{id}") },
    })
}

async fn list_types(_auth: ServerAuth, State(state): State<AppState>) -> Json<Value> {
    let base = state.base();
    let data: Vec<Value> = REPORT_TYPES
        .iter()
        .map(|(id, n, d)| type_json(base, id, n, d))
        .collect();
    Json(json!({
        "type": "list",
        "count": data.len(),
        "data": data,
        "links": { "self": format!("{base}/reports/types") },
    }))
}

async fn get_type(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path(type_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    REPORT_TYPES
        .iter()
        .find(|(id, _, _)| *id == type_id)
        .map(|(id, n, d)| Json(type_json(state.base(), id, n, d)))
        .ok_or_else(|| ApiError::not_found(format!("Report type '{type_id}' not found.")))
}
