//! `GET /users/{id}/accounts[/{accountId}]` and `GET /users/{id}/transactions[/{transactionId}]`.
//!
//! Data is generated on the fly by [`crate::data`] from each of the user's connections, as the
//! connection stands *now* (virtual clock), read through [`AppState::connections_of_user`]:
//! - a connection contributes accounts once a `retrieve-accounts` step has succeeded, and
//!   transactions once a `retrieve-transactions` step has, and nothing while purged (until the
//!   next fully successful job after the purge);
//! - a deleted connection's data stays on the user, frozen as it was at deletion (basiq-api.md §3.2:
//!   DELETE removes the connection, purge removes the data);
//! - the data's own "now" is the connection's `lastUsed` (its last successful job), so a page
//!   walk sees the same list however much virtual time passes between pages, and a refresh
//!   brings newer days;
//! - the generation mixes the purge counter and the number of successful jobs, so pending
//!   transactions get new ids on every refresh, as Basiq's do.
//!
//! All routes need a SERVER_ACCESS token (same extractor as every other user route).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::auth::{ServerAuth, ServerUserQuery};
use crate::data::{self, DataContext};
use crate::error::ApiError;
use crate::filter::{self, Filter, Op};
use crate::page::{self, ListQuery, PageError};
use crate::state::{AppState, ConnectionInfo};
use crate::users::user_not_found;

/// The data routes, to merge into the main router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/users/{user_id}/accounts", get(list_accounts))
        .route("/users/{user_id}/accounts/{account_id}", get(get_account))
        .route("/users/{user_id}/transactions", get(list_transactions))
        .route(
            "/users/{user_id}/transactions/{transaction_id}",
            get(get_transaction),
        )
}

impl From<PageError> for ApiError {
    fn from(e: PageError) -> Self {
        ApiError::invalid(e.parameter, e.detail)
    }
}

fn filter_error(e: &filter::FilterError) -> ApiError {
    ApiError::invalid("filter", format!("Invalid filter: {}", e.message()))
}

/// Parses the query string; broken percent-encoding is a Basiq 400, not axum's plain text.
pub(crate) fn list_query(raw: Option<&str>) -> Result<ListQuery, ApiError> {
    serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| ApiError::invalid("query", format!("Query string is not valid: {e}")))
}

/// Parses and validates `filter`; an empty or blank filter means no filter.
pub(crate) fn parse_filter(
    raw: Option<&str>,
    fields: &[&str],
    ops: &[Op],
) -> Result<Option<Filter>, ApiError> {
    let Some(raw) = raw.filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    let f = filter::parse(raw).map_err(|e| filter_error(&e))?;
    f.validate(fields, ops).map_err(|e| filter_error(&e))?;
    Ok(Some(f))
}

fn context(base: &str, info: &ConnectionInfo) -> DataContext {
    DataContext {
        base_url: base.to_string(),
        user_id: info.user_id.clone(),
        connection_id: info.id.clone(),
        institution_id: info.institution_id.clone(),
        generation: (info.data_generation << 32) ^ u64::from(info.successful_jobs),
        now: info.last_used.unwrap_or(info.created),
        transaction_count: info.transaction_count,
    }
}

/// The `accounts` list embedded in a connection (basiq-api.md §3.3): its accounts in summary form,
/// empty until a job has retrieved them and while the connection is purged.
pub(crate) fn connection_accounts(base: &str, info: &ConnectionInfo) -> Value {
    let data: Vec<Value> = match connection_data(base, info) {
        Some(d) => d.accounts().iter().map(data::account_summary).collect(),
        None => Vec::new(),
    };
    json!({ "type": "list", "count": data.len(), "data": data })
}

/// The connection's generated data, if it has accounts (a job retrieved them, no purge since).
pub(crate) fn connection_data(
    base: &str,
    info: &ConnectionInfo,
) -> Option<Arc<data::ConnectionData>> {
    (info.accounts_retrieved && !info.purged).then(|| data::of(&context(base, info)))
}

/// The user's connections plus the frozen snapshots of deleted ones (whose data Basiq keeps on
/// the user), or 404 when the user does not exist.
fn connections(state: &AppState, user_id: &str) -> Result<Vec<ConnectionInfo>, ApiError> {
    if !state.user_exists(user_id) {
        return Err(user_not_found(user_id));
    }
    let mut all = state.connections_of_user(user_id);
    all.extend(state.retained_of_user(user_id));
    Ok(all)
}

fn all_accounts(state: &AppState, user_id: &str) -> Result<Vec<Value>, ApiError> {
    Ok(connections(state, user_id)?
        .iter()
        .filter(|c| c.accounts_retrieved && !c.purged)
        .flat_map(|c| data::accounts(&context(state.base(), c)))
        .collect())
}

/// Every transaction of the user, newest first, shared with the generator's memo (`Arc`s keep
/// the lists alive while this request borrows from them).
pub(crate) fn all_transactions(
    state: &AppState,
    user_id: &str,
) -> Result<Vec<Arc<Vec<Value>>>, ApiError> {
    Ok(connections(state, user_id)?
        .iter()
        .filter(|c| c.transactions_retrieved && !c.purged)
        .map(|c| data::transactions_shared(&context(state.base(), c)))
        .collect())
}

pub(crate) fn merged(lists: &[Arc<Vec<Value>>]) -> Vec<&Value> {
    let mut out: Vec<&Value> = lists.iter().flat_map(|l| l.iter()).collect();
    data::sort_newest_first(&mut out);
    out
}

/// `GET /users/{id}/accounts` with `filter` on account.id, connection.id, institution.id
/// (eq/ne, basiq-api.md §7). Not paginated: a user has a handful of accounts.
async fn list_accounts(
    State(state): State<AppState>,
    ServerUserQuery { user_id, raw }: ServerUserQuery,
) -> Result<Json<Value>, ApiError> {
    let q = list_query(raw.as_deref())?;
    let f = parse_filter(
        q.filter.as_deref(),
        filter::ACCOUNT_FIELDS,
        filter::ACCOUNT_OPS,
    )?;
    let data: Vec<Value> = all_accounts(&state, &user_id)?
        .into_iter()
        .filter(|a| {
            f.as_ref()
                .is_none_or(|f| f.matches(|p| filter::field_of_account(a, p)))
        })
        .collect();
    let base = state.base();
    let mut self_url = format!("{base}/users/{user_id}/accounts");
    if let Some(r) = raw.as_deref().filter(|r| !r.is_empty()) {
        self_url = format!("{self_url}?{r}");
    }
    Ok(Json(json!({
        "type": "list",
        "count": data.len(),
        "size": data.len(),
        "data": data,
        "links": { "self": self_url },
    })))
}

/// `GET /users/{id}/accounts/{accountId}`.
async fn get_account(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path((user_id, account_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    all_accounts(&state, &user_id)?
        .into_iter()
        .find(|a| a.get("id").and_then(Value::as_str) == Some(account_id.as_str()))
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("Account with id '{account_id}' not found.")))
}

/// `GET /users/{id}/transactions` with `limit` (1..=500, default 500), `next` (opaque cursor
/// from `links.next`) and `filter` (fields in [`filter::TRANSACTION_FIELDS`], any operator).
///
/// Only the page is rendered: without a filter the page's start is found by binary search over
/// the connections' (cached, compact) data, so a page costs the same at offset 0 and at 999,500;
/// a filter is evaluated on the compact data, one pass.
async fn list_transactions(
    State(state): State<AppState>,
    ServerUserQuery { user_id, raw }: ServerUserQuery,
) -> Result<Json<Value>, ApiError> {
    let q = list_query(raw.as_deref())?;
    // Validate the cheap parameters before generating any data.
    page::parse_limit(q.limit.as_deref())?;
    let f = parse_filter(q.filter.as_deref(), filter::TRANSACTION_FIELDS, Op::ALL)?;
    let (contexts, lists) = transaction_data(&state, &user_id)?;
    let refs: Vec<&data::ConnectionData> = lists.iter().map(|d| &**d).collect();
    let render = |(l, i): (usize, usize)| refs[l].transaction_json(&contexts[l], i);
    let path = format!("/users/{user_id}/transactions");
    let url = format!("{}{path}", state.base());
    let body = match &f {
        None => {
            let size = refs.iter().map(|d| d.len()).sum();
            page::page_window(size, &q, &url, &path, |offset, limit| {
                data::merged_window(&refs, offset, limit)
                    .into_iter()
                    .filter_map(render)
                    .collect()
            })?
        }
        Some(f) => {
            let total: usize = refs.iter().map(|d| d.len()).sum();
            let matching: Vec<(usize, usize)> = data::merged_window(&refs, 0, total)
                .into_iter()
                .filter(|&(l, i)| f.matches(|p| refs[l].field(&contexts[l], i, p)))
                .collect();
            page::page_window(matching.len(), &q, &url, &path, |offset, limit| {
                matching
                    .iter()
                    .skip(offset)
                    .take(limit)
                    .filter_map(|&at| render(at))
                    .collect()
            })?
        }
    };
    Ok(Json(body))
}

/// The generated data of every connection of the user that has transactions, with the context
/// each was generated for (fetched outside the database lock).
fn transaction_data(
    state: &AppState,
    user_id: &str,
) -> Result<(Vec<DataContext>, Vec<Arc<data::ConnectionData>>), ApiError> {
    let contexts: Vec<DataContext> = connections(state, user_id)?
        .iter()
        .filter(|c| c.transactions_retrieved && !c.purged)
        .map(|c| context(state.base(), c))
        .collect();
    let lists = contexts.iter().map(data::of).collect();
    Ok((contexts, lists))
}

/// `GET /users/{id}/transactions/{transactionId}`.
async fn get_transaction(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path((user_id, transaction_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (contexts, lists) = transaction_data(&state, &user_id)?;
    contexts
        .iter()
        .zip(&lists)
        .find_map(|(ctx, data)| data.transaction_json(ctx, data.position_of(&transaction_id)?))
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(format!("Transaction with id '{transaction_id}' not found."))
        })
}
