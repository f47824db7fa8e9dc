//! Identities, the affordability / expense / income summaries, and Enrich.
//!
//! - `GET /users/{id}/identities[/{identityId}]`: one identity per connection whose accounts
//!   were retrieved, built from the user's own details.
//! - `POST /users/{id}/affordability|expenses|income` compute a snapshot from the user's
//!   transactions as they are now (deterministic: same data, same numbers) and store it, or
//!   answer 204 with no body when none fall in the period asked for, as Basiq documents;
//!   `GET …/{snapshotId}` reads it back; `GET /users/{id}/affordability` lists them and
//!   `…/{snapshotId}/transactions` pages through the transactions behind it.
//! - `GET /enrich?q=&institution=&country=`: a deterministic merchant guess from the text.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{cents, fresh_id, require_json, stable_id};
use crate::auth::{ServerAuth, ServerUserQuery};
use crate::clock::rfc3339;
use crate::data::money;
use crate::data_routes::{all_transactions, list_query, merged};
use crate::error::{parse_json, ApiError};
use crate::page;
use crate::state::AppState;
use crate::users::require_user;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SnapshotKind {
    Affordability,
    Expenses,
    Income,
}

impl SnapshotKind {
    fn path(self) -> &'static str {
        match self {
            Self::Affordability => "affordability",
            Self::Expenses => "expenses",
            Self::Income => "income",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub(crate) kind: SnapshotKind,
    pub(crate) user_id: String,
    pub(crate) json: Value,
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/users/{user_id}/identities", get(list_identities))
        .route(
            "/users/{user_id}/identities/{identity_id}",
            get(get_identity),
        )
        .route(
            "/users/{user_id}/affordability",
            get(list_affordability).post(create_affordability),
        )
        .route(
            "/users/{user_id}/affordability/{snapshot_id}",
            get(get_affordability),
        )
        .route(
            "/users/{user_id}/affordability/{snapshot_id}/transactions",
            get(affordability_transactions),
        )
        .route("/users/{user_id}/expenses", post(create_expenses))
        .route("/users/{user_id}/expenses/{snapshot_id}", get(get_expenses))
        .route("/users/{user_id}/income", post(create_income))
        .route("/users/{user_id}/income/{snapshot_id}", get(get_income))
        .route("/enrich", get(enrich))
}

fn identities(state: &AppState, user_id: &str) -> Result<Vec<Value>, ApiError> {
    let base = state.base();
    let db = state.db();
    require_user(&db, user_id)?;
    let user = db.users.get(user_id).cloned().unwrap_or_default();
    let mut connections: Vec<_> = state_connections(&db, user_id, state.now());
    connections.retain(|c| c.accounts_retrieved && !c.purged);
    let first = user.first_name.clone().unwrap_or_default();
    let last = user.last_name.clone().unwrap_or_default();
    let full = [first.as_str(), last.as_str()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    Ok(connections
        .iter()
        .map(|c| {
            let id = stable_id(&format!("identity:{}", c.id));
            let emails: Vec<Value> = user
                .email
                .iter()
                .map(|e| json!({ "email": e, "isPreferred": true, "type": "personal" }))
                .collect();
            let phones: Vec<Value> = user
                .mobile
                .iter()
                .map(|m| json!({ "number": m, "fullNumber": m, "isPreferred": true, "type": "mobile" }))
                .collect();
            json!({
                "type": "identity",
                "id": id,
                "created": rfc3339(c.last_used.unwrap_or(c.created)),
                "updated": rfc3339(c.last_used.unwrap_or(c.created)),
                "connectionID": c.id,
                "institutionID": c.institution_id,
                "source": c.method.connection_str(),
                "fullName": full,
                "firstName": first,
                "lastName": last,
                "middleName": user.middle_name.clone().unwrap_or_default(),
                "title": "",
                "DOB": "01/02/1990",
                "occupationCode": "",
                "occupationCodeVersion": "",
                "phoneNumbers": phones,
                "emailAddresses": emails,
                "physicalAddresses": [{
                    "type": "residential",
                    "addressLine1": "1 George Street",
                    "addressLine2": "",
                    "addressLine3": "",
                    "postcode": "2000",
                    "city": "Sydney",
                    "state": "NSW",
                    "country": "Australia",
                    "countryCode": "AU",
                    "formattedAddress": "1 George Street, Sydney NSW 2000",
                }],
                "links": {
                    "self": format!("{base}/users/{user_id}/identities/{id}"),
                    "job": format!("{base}/users/{user_id}/jobs"),
                },
            })
        })
        .collect())
}

fn state_connections(
    db: &crate::state::Db,
    user_id: &str,
    now: time::OffsetDateTime,
) -> Vec<crate::state::ConnectionInfo> {
    db.connection_infos_of(user_id, now)
}

async fn list_identities(
    State(state): State<AppState>,
    ServerUserQuery { user_id, .. }: ServerUserQuery,
) -> Result<Json<Value>, ApiError> {
    let data = identities(&state, &user_id)?;
    Ok(Json(json!({
        "type": "list",
        "count": data.len(),
        "data": data,
        "links": { "self": format!("{}/users/{user_id}/identities", state.base()) },
    })))
}

async fn get_identity(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path((user_id, identity_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    identities(&state, &user_id)?
        .into_iter()
        .find(|i| i["id"] == identity_id.as_str())
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("Identity with id '{identity_id}' not found.")))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SummaryBody {
    #[serde(default)]
    accounts: Vec<String>,
    from_month: Option<String>,
    to_month: Option<String>,
}

/// The transactions a summary covers: the user's, restricted to `accounts` and the months.
fn covered(state: &AppState, user_id: &str, body: &SummaryBody) -> Result<Vec<Value>, ApiError> {
    for (name, month) in [("fromMonth", &body.from_month), ("toMonth", &body.to_month)] {
        if let Some(m) = month {
            let ok = m.len() == 7
                && m.as_bytes()[4] == b'-'
                && m[..4].bytes().all(|b| b.is_ascii_digit())
                && m[5..].parse::<u8>().is_ok_and(|n| (1..=12).contains(&n));
            if !ok {
                return Err(ApiError::invalid(
                    name,
                    format!("'{name}' must be YYYY-MM."),
                ));
            }
        }
    }
    let lists = all_transactions(state, user_id)?;
    Ok(merged(&lists)
        .into_iter()
        .filter(|t| {
            let account = t["account"].as_str().unwrap_or("");
            let month = t["transactionDate"]
                .as_str()
                .unwrap_or("")
                .get(..7)
                .unwrap_or("");
            (body.accounts.is_empty() || body.accounts.iter().any(|a| a == account))
                && body.from_month.as_deref().is_none_or(|f| month >= f)
                && body.to_month.as_deref().is_none_or(|to| month <= to)
        })
        .cloned()
        .collect())
}

/// First and last month covered, and the coverage in days (30 per month with data).
fn months(txs: &[Value]) -> (String, String, i64) {
    let ms: std::collections::BTreeSet<&str> = txs
        .iter()
        .filter_map(|t| t["transactionDate"].as_str()?.get(..7))
        .collect();
    let from = ms.first().copied().unwrap_or("").to_owned();
    let to = ms.last().copied().unwrap_or("").to_owned();
    (from, to, 30 * ms.len() as i64)
}

fn by_class(txs: &[Value]) -> BTreeMap<String, (i64, usize)> {
    let mut out = BTreeMap::new();
    for t in txs {
        let class = t["class"].as_str().unwrap_or("other").to_owned();
        let e = out.entry(class).or_insert((0i64, 0usize));
        e.0 += cents(t["amount"].as_str().unwrap_or("0"));
        e.1 += 1;
    }
    out
}

fn section(total: i64, count: usize, month_count: i64) -> Value {
    let avg = if month_count > 0 {
        total / month_count
    } else {
        total
    };
    json!({ "summary": money(total), "avgMonthly": money(avg), "count": count, "changeHistory": [] })
}

async fn create(
    state: &AppState,
    user_id: &str,
    headers: &HeaderMap,
    body: &Bytes,
    kind: SnapshotKind,
) -> Result<Response, ApiError> {
    let body: SummaryBody = if body.iter().all(u8::is_ascii_whitespace) {
        SummaryBody::default()
    } else {
        require_json(headers)?;
        parse_json(body)?
    };
    {
        let db = state.db();
        require_user(&db, user_id)?;
    }
    let txs = covered(state, user_id, &body)?;
    if txs.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let (from, to, coverage) = months(&txs);
    let month_count = (coverage / 30).max(1);
    let classes = by_class(&txs);
    let sum = |c: &str| classes.get(c).map_or((0, 0), |v| *v);
    let base = state.base().to_owned();
    let now = state.now();
    let mut db = state.db();
    let id = fresh_id(&mut db, kind.path());
    let self_url = format!("{base}/users/{user_id}/{}/{id}", kind.path());
    let links = json!({
        "self": self_url,
        "income": format!("{base}/users/{user_id}/income"),
        "expenses": format!("{base}/users/{user_id}/expenses"),
        "accounts": body.accounts,
    });
    let credits: i64 = txs
        .iter()
        .map(|t| cents(t["amount"].as_str().unwrap_or("0")))
        .filter(|c| *c > 0)
        .sum();
    let debits: i64 = txs
        .iter()
        .map(|t| cents(t["amount"].as_str().unwrap_or("0")))
        .filter(|c| *c < 0)
        .sum();
    // The institutions whose transactions it covers, each once, in the order first seen.
    let mut institutions: Vec<&str> = Vec::new();
    for institution in txs.iter().filter_map(|t| t["institution"].as_str()) {
        if !institutions.contains(&institution) {
            institutions.push(institution);
        }
    }
    let json = match kind {
        SnapshotKind::Affordability => json!({
            "type": "affordability",
            "id": id,
            "coverageDays": coverage,
            "fromMonth": from,
            "toMonth": to,
            "institutions": institutions,
            "generatedDate": rfc3339(now),
            "summary": {
                "regularIncome": { "previous3Months": { "avgMonthly": money(sum("direct-credit").0 / month_count) } },
                "expenses": money(debits / month_count),
                "savings": money((credits + debits) / month_count),
                "netPosition": money(credits + debits),
            },
            "assets": [],
            "liabilities": { "credit": [], "loan": [] },
            "external": [],
            "links": links,
        }),
        SnapshotKind::Expenses => {
            let payments: Vec<Value> = classes
                .iter()
                .filter(|(c, (total, _))| *total < 0 && c.as_str() == "payment")
                .map(|(c, (total, n))| json!({ "division": c, "avgMonthly": money(total / month_count), "summary": money(*total), "count": n, "subCategory": [] }))
                .collect();
            json!({
                "type": "expenses",
                "id": id,
                "coverageDays": coverage,
                "fromMonth": from,
                "toMonth": to,
                "bankFees": section(sum("bank-fee").0, sum("bank-fee").1, month_count),
                "cashWithdrawals": section(sum("cash-withdrawal").0, sum("cash-withdrawal").1, month_count),
                "externalTransfers": section(sum("transfer").0.min(0), sum("transfer").1, month_count),
                "loanInterests": section(sum("loan-interest").0, sum("loan-interest").1, month_count),
                "loanRepayments": section(sum("loan-repayment").0, sum("loan-repayment").1, month_count),
                "payments": payments,
                "links": links,
            })
        }
        SnapshotKind::Income => {
            let (salary, n) = sum("direct-credit");
            let regular: Vec<Value> = (n > 0)
                .then(|| json!({ "source": "salary", "frequency": "monthly", "ageDays": coverage, "current": { "amount": money(salary / month_count) }, "changeHistory": [], "irregularity": {}, "previous3Months": { "amountAvg": money(salary / month_count) } }))
                .into_iter()
                .collect();
            let (interest, _) = sum("interest");
            json!({
                "type": "income",
                "id": id,
                "coverageDays": coverage,
                "fromMonth": from,
                "toMonth": to,
                "summary": {
                    "regularIncomeAvg": money(salary / month_count),
                    "irregularIncomeAvg": money(interest / month_count),
                    "regularIncomeYTD": money(salary),
                    "regularIncomeYear": money(salary),
                },
                "regular": regular,
                "irregular": [],
                "otherCredit": [],
                "links": links,
            })
        }
    };
    db.surface.snapshots.insert(
        id,
        Snapshot {
            kind,
            user_id: user_id.to_owned(),
            json: json.clone(),
        },
    );
    Ok(Json(json).into_response())
}

fn read(
    state: &AppState,
    user_id: &str,
    snapshot_id: &str,
    kind: SnapshotKind,
) -> Result<Value, ApiError> {
    let db = state.db();
    require_user(&db, user_id)?;
    db.surface
        .snapshots
        .get(snapshot_id)
        .filter(|s| s.kind == kind && s.user_id == user_id)
        .map(|s| s.json.clone())
        .ok_or_else(|| ApiError::not_found(format!("Snapshot with id '{snapshot_id}' not found.")))
}

async fn create_affordability(
    _a: ServerAuth,
    State(s): State<AppState>,
    Path(u): Path<String>,
    h: HeaderMap,
    b: Bytes,
) -> Result<Response, ApiError> {
    create(&s, &u, &h, &b, SnapshotKind::Affordability).await
}
async fn create_expenses(
    _a: ServerAuth,
    State(s): State<AppState>,
    Path(u): Path<String>,
    h: HeaderMap,
    b: Bytes,
) -> Result<Response, ApiError> {
    create(&s, &u, &h, &b, SnapshotKind::Expenses).await
}
async fn create_income(
    _a: ServerAuth,
    State(s): State<AppState>,
    Path(u): Path<String>,
    h: HeaderMap,
    b: Bytes,
) -> Result<Response, ApiError> {
    create(&s, &u, &h, &b, SnapshotKind::Income).await
}
async fn get_affordability(
    _a: ServerAuth,
    State(s): State<AppState>,
    Path((u, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    read(&s, &u, &id, SnapshotKind::Affordability).map(Json)
}
async fn get_expenses(
    _a: ServerAuth,
    State(s): State<AppState>,
    Path((u, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    read(&s, &u, &id, SnapshotKind::Expenses).map(Json)
}
async fn get_income(
    _a: ServerAuth,
    State(s): State<AppState>,
    Path((u, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    read(&s, &u, &id, SnapshotKind::Income).map(Json)
}

async fn list_affordability(
    State(state): State<AppState>,
    ServerUserQuery { user_id, .. }: ServerUserQuery,
) -> Result<Json<Value>, ApiError> {
    let db = state.db();
    require_user(&db, &user_id)?;
    let mut data: Vec<&Value> = db
        .surface
        .snapshots
        .values()
        .filter(|s| s.kind == SnapshotKind::Affordability && s.user_id == user_id)
        .map(|s| &s.json)
        .collect();
    data.sort_by(|a, b| {
        b["generatedDate"]
            .as_str()
            .cmp(&a["generatedDate"].as_str())
            .then(b["id"].as_str().cmp(&a["id"].as_str()))
    });
    Ok(Json(json!({
        "type": "list",
        "data": data,
        "links": { "self": format!("{}/users/{user_id}/affordability", state.base()) },
    })))
}

async fn affordability_transactions(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path((user_id, snapshot_id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    read(&state, &user_id, &snapshot_id, SnapshotKind::Affordability)?;
    let q = list_query(raw.as_deref())?;
    page::parse_limit(q.limit.as_deref())?;
    let lists = all_transactions(&state, &user_id)?;
    let items = merged(&lists);
    let path = format!("/users/{user_id}/affordability/{snapshot_id}/transactions");
    let url = format!("{}{path}", state.base());
    Ok(Json(page::page(items, &q, &url, &path)?))
}

/// Keyword → (ANZSIC title, code, merchant class) for the enrich guess.
const CATEGORIES: &[(&str, &str, &str)] = &[
    ("WOOLWORTHS", "Supermarket and Grocery Stores", "4110"),
    ("COLES", "Supermarket and Grocery Stores", "4110"),
    ("ALDI", "Supermarket and Grocery Stores", "4110"),
    ("UBER", "Taxi and Other Road Transport", "4623"),
    ("NETFLIX", "Motion Picture Exhibition", "5513"),
    ("MCDONALDS", "Takeaway Food Services", "4512"),
    ("SHELL", "Fuel Retailing", "4000"),
];

async fn enrich(
    _auth: ServerAuth,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let pairs = crate::query::pairs(raw.as_deref())?;
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let q = get("q").ok_or_else(|| ApiError::missing("q", "'q' is required."))?;
    let institution = get("institution")
        .ok_or_else(|| ApiError::missing("institution", "'institution' is required."))?;
    let country =
        get("country").ok_or_else(|| ApiError::missing("country", "'country' is required."))?;
    if country.len() != 2 {
        return Err(ApiError::invalid(
            "country",
            "'country' must be an ISO code such as AU.",
        ));
    }
    let upper = q.to_ascii_uppercase();
    let words: Vec<&str> = upper.split_whitespace().collect();
    let direction = match get("amount") {
        Some(a) if !a.starts_with('-') => "credit",
        _ => "debit",
    };
    let found = CATEGORIES
        .iter()
        .find(|(k, _, _)| words.iter().any(|w| w.starts_with(k)));
    let base = state.base();
    let id = stable_id(&format!(
        "merchant:{}",
        found.map_or(upper.as_str(), |f| f.0)
    ));
    let data = match found {
        Some((key, title, code)) => {
            let name = format!("{}{}", &key[..1], key[1..].to_ascii_lowercase());
            let suburb = words
                .last()
                .filter(|w| w.chars().all(char::is_alphabetic) && *w != key)
                .map(|w| w.to_string());
            json!({
                "merchant": { "id": id, "businessName": name, "website": format!("https://www.{}.com.au", key.to_ascii_lowercase()), "abn": "" },
                "category": { "matchType": "merchantFull", "matchScore": "99.0", "anzsic": { "class": { "code": code, "title": title } } },
                "location": { "suburb": suburb.unwrap_or_default(), "state": "", "country": if country == "AU" { "Australia" } else { country.as_str() }, "formattedAddress": "" },
                "tags": [],
            })
        }
        None => json!({ "tags": [] }),
    };
    let query = serde_urlencoded::to_string([
        ("q", q.as_str()),
        ("institution", institution.as_str()),
        ("country", country.as_str()),
    ])
    .unwrap_or_default();
    let self_url = format!("{base}/enrich?{query}");
    let class = if direction == "credit" {
        "transfer"
    } else {
        "payment"
    };
    Ok(Json(json!({
        "type": "enrich",
        "direction": direction,
        "class": class,
        "data": data,
        "links": {
            "self": self_url,
            "logo-master": format!("{base}/logos/{id}.png"),
            "logo-thumb": format!("{base}/logos/{id}-thumb.png"),
        },
    })))
}
