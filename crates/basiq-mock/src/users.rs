//! Users: `POST /users`, `GET|POST|DELETE /users/{id}` (basiq-api.md §2).
//!
//! Update is a partial `POST` (Basiq has no PATCH/PUT): fields absent from the body are kept.
//! Deleting a user deletes their connections and jobs.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::auth::ServerAuth;
use crate::error::{no_content, parse_json, ApiError};
use crate::ids::IdKind;
use crate::state::{AppState, ConnectionInfo, Db, User};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/users", post(create)).route(
        "/users/{user_id}",
        post(update).get(get_user).delete(delete_user),
    )
}

/// Create/update body. Unknown fields are ignored, as Basiq does.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserBody {
    email: Option<String>,
    mobile: Option<String>,
    first_name: Option<String>,
    middle_name: Option<String>,
    last_name: Option<String>,
    business_name: Option<String>,
    business_id_no: Option<String>,
    business_id_no_type: Option<String>,
    business_address: Option<Value>,
    verification_status: Option<bool>,
    verification_date: Option<String>,
}

/// A plausible email: one `@`, a non-empty local part, a dotted domain, no whitespace.
fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

/// International format: `+` then 8–15 digits (spaces tolerated).
fn valid_mobile(s: &str) -> bool {
    let compact: String = s.chars().filter(|c| *c != ' ').collect();
    compact
        .strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()))
}

fn validate(body: &UserBody) -> Result<(), ApiError> {
    if let Some(email) = body.email.as_deref().filter(|e| !e.is_empty()) {
        if !valid_email(email) {
            return Err(ApiError::invalid("email", "Email has invalid format."));
        }
    }
    if let Some(mobile) = body.mobile.as_deref().filter(|m| !m.is_empty()) {
        if !valid_mobile(mobile) {
            return Err(ApiError::invalid(
                "mobile",
                "Mobile has invalid format. Use international format, e.g. +61410888999.",
            ));
        }
    }
    // Basiq's schema: an object of strings (addressLine1, suburb, …); anything else is a 400,
    // never stored and echoed back.
    if let Some(address) = &body.business_address {
        let strings = address
            .as_object()
            .is_some_and(|fields| fields.values().all(|v| v.is_string() || v.is_null()));
        if !address.is_null() && !strings {
            return Err(ApiError::invalid(
                "businessAddress",
                "businessAddress must be an object of strings (addressLine1, suburb, state, \
                 postcode, countryCode).",
            ));
        }
    }
    if let Some(kind) = body.business_id_no_type.as_deref() {
        if kind != "ABN" && kind != "ACN" {
            return Err(ApiError::invalid(
                "businessIdNoType",
                "businessIdNoType must be one of: ABN, ACN",
            ));
        }
    }
    Ok(())
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_ref().filter(|s| !s.trim().is_empty()).cloned()
}

fn apply(user: &mut User, body: UserBody) {
    let set = |field: &mut Option<String>, v: Option<String>| {
        if let Some(v) = v {
            *field = (!v.is_empty()).then_some(v);
        }
    };
    set(&mut user.email, body.email);
    set(&mut user.mobile, body.mobile);
    set(&mut user.first_name, body.first_name);
    set(&mut user.middle_name, body.middle_name);
    set(&mut user.last_name, body.last_name);
    set(&mut user.business_name, body.business_name);
    set(&mut user.business_id_no, body.business_id_no);
    set(&mut user.business_id_no_type, body.business_id_no_type);
    set(&mut user.verification_date, body.verification_date);
    if body.business_address.is_some() {
        user.business_address = body.business_address;
    }
    if body.verification_status.is_some() {
        user.verification_status = body.verification_status;
    }
}

fn require_business_name(user: &User) -> Result<(), ApiError> {
    if user.business_id_no.is_some() && user.business_name.is_none() {
        return Err(ApiError::missing(
            "businessName",
            "Business name is required when business number is provided.",
        ));
    }
    Ok(())
}

/// The user JSON (basiq-api.md §2).
pub(crate) fn user_json(base: &str, db: &Db, user: &User, now: OffsetDateTime) -> Value {
    UserView::capture(db, user, now).json(base)
}

/// What the user JSON is made of, copied out of the database so that the JSON (the accounts of
/// every connection, generated on first use) can be built after the lock is released. The JSON
/// is a function of the view alone (with the server's base URL), which is what lets
/// `GET /users/{id}` serve the bytes rendered for an equal view (see [`crate::rendered`]).
#[derive(Debug, PartialEq)]
pub(crate) struct UserView {
    user: User,
    /// Live connections then the retained snapshots of deleted ones: their accounts count
    /// (basiq-api.md §3.2).
    infos: Vec<ConnectionInfo>,
    /// How many of `infos` are live connections (the user's `connections` list).
    live: usize,
    has_auth_link: bool,
}

impl UserView {
    pub(crate) fn capture(db: &Db, user: &User, now: OffsetDateTime) -> Self {
        let uid = &user.id;
        let mut infos = db.connection_infos_of(uid, now);
        let live = infos.len();
        infos.extend(db.retained.iter().filter(|c| &c.user_id == uid).cloned());
        Self {
            user: user.clone(),
            infos,
            live,
            has_auth_link: db
                .surface
                .auth_links
                .get(uid)
                .is_some_and(|l| !l.deleted && now < l.expires_at),
        }
    }

    pub(crate) fn json(&self, base: &str) -> Value {
        let accounts: Vec<Value> = self
            .infos
            .iter()
            .flat_map(|info| {
                let list = crate::data_routes::connection_accounts(base, info);
                list["data"].as_array().cloned().unwrap_or_default()
            })
            .collect();
        self.json_with(
            base,
            json!({ "type": "list", "count": accounts.len(), "data": accounts }),
        )
    }

    /// The user JSON serialized, its accounts copied in as each connection's cached summaries
    /// (the same JSON as [`json`](Self::json), keys in another order).
    pub(crate) fn body(&self, base: &str) -> Result<String, serde_json::Error> {
        let data: Vec<_> = self
            .infos
            .iter()
            .filter_map(|info| crate::data_routes::connection_data(base, info))
            .collect();
        let summaries: Vec<&serde_json::value::RawValue> = data
            .iter()
            .flat_map(|d| d.summaries().iter().map(AsRef::as_ref))
            .collect();
        #[derive(serde::Serialize)]
        struct Accounts<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            count: usize,
            data: &'a [&'a serde_json::value::RawValue],
        }
        #[derive(serde::Serialize)]
        struct Body<'a> {
            #[serde(flatten)]
            user: Value,
            accounts: Accounts<'a>,
        }
        let mut user = self.json_with(base, Value::Null);
        if let Some(fields) = user.as_object_mut() {
            fields.remove("accounts");
        }
        serde_json::to_string(&Body {
            user,
            accounts: Accounts {
                kind: "list",
                count: summaries.len(),
                data: &summaries,
            },
        })
    }

    fn json_with(&self, base: &str, accounts: Value) -> Value {
        let user = &self.user;
        let uid = &user.id;
        let conns: Vec<Value> = self
            .infos
            .iter()
            .take(self.live)
            .map(|ConnectionInfo { id, .. }| {
                json!({
                    "type": "connection",
                    "id": id,
                    "links": { "self": format!("{base}/users/{uid}/connections/{id}") },
                })
            })
            .collect();
        let name = [&user.first_name, &user.middle_name, &user.last_name]
            .iter()
            .filter_map(|p| p.as_deref())
            .collect::<Vec<_>>()
            .join(" ");
        json!({
            "type": "user",
            "id": uid,
            "email": user.email.clone().unwrap_or_default(),
            "mobile": user.mobile.clone().unwrap_or_default(),
            "name": name,
            "firstName": user.first_name.clone().unwrap_or_default(),
            "middleName": user.middle_name.clone().unwrap_or_default(),
            "lastName": user.last_name.clone().unwrap_or_default(),
            "businessName": user.business_name,
            "businessIdNo": user.business_id_no,
            "businessIdNoType": user.business_id_no_type,
            "businessAddress": user.business_address,
            "verificationStatus": user.verification_status.unwrap_or(false),
            "verificationDate": user.verification_date,
            "connections": { "type": "list", "count": conns.len(), "data": conns },
            "accounts": accounts,
            "links": {
                "self": format!("{base}/users/{uid}"),
                "accounts": format!("{base}/users/{uid}/accounts"),
                "connections": format!("{base}/users/{uid}/connections"),
                "transactions": format!("{base}/users/{uid}/transactions"),
                // Basiq's schema requires the key: the current auth link, `null` when there is
                // none.
                "auth_link": self.has_auth_link.then(|| format!("{base}/users/{uid}/auth_link")),
            },
        })
    }
}

pub(crate) fn user_not_found(user_id: &str) -> ApiError {
    ApiError::not_found(format!("User with id '{user_id}' not found."))
}

/// `Ok` when the user exists, else the 404 `user_not_found`.
pub(crate) fn require_user(db: &Db, user_id: &str) -> Result<(), ApiError> {
    if db.users.contains_key(user_id) {
        Ok(())
    } else {
        Err(user_not_found(user_id))
    }
}

/// `POST /users` → 201.
async fn create(
    _auth: ServerAuth,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: UserBody = parse_json(&body)?;
    if non_empty(&body.email).is_none() && non_empty(&body.mobile).is_none() {
        return Err(ApiError::missing(
            "email",
            "One of 'email' or 'mobile' is required.",
        ));
    }
    validate(&body)?;
    let mut db = state.db();
    let (id, _) = db.new_id(IdKind::User);
    let mut user = User {
        id: id.clone(),
        ..User::default()
    };
    apply(&mut user, body);
    require_business_name(&user)?;
    let json = user_json(state.base(), &db, &user, state.now());
    db.users.insert(id.clone(), user);
    db.stats.users_created += 1;
    let url = format!("{}/users/{id}", state.base());
    crate::surface::record(
        &mut db,
        state.now(),
        "user",
        "created",
        Some(&id),
        url,
        json.clone(),
    );
    Ok((StatusCode::CREATED, Json(json)).into_response())
}

/// `GET /users/{id}`.
async fn get_user(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Response, ApiError> {
    let now = state.now();
    let view = {
        let db = state.db();
        let user = db
            .users
            .get(&user_id)
            .ok_or_else(|| user_not_found(&user_id))?;
        UserView::capture(&db, user, now)
    };
    // Rendered after the lock is released (the accounts of every connection are generated on
    // first use), and only when the view differs from the one last rendered for this user.
    let body = state
        .inner
        .rendered_users
        .get_or_render(&user_id, view, |view| {
            view.body(state.base()).map(String::into_bytes)
        })
        .map_err(|e| ApiError::internal(format!("cannot encode the user: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `POST /users/{id}`: partial update → 200 with the user.
async fn update(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: UserBody = parse_json(&body)?;
    validate(&body)?;
    let mut db = state.db();
    let mut user = db
        .users
        .get(&user_id)
        .cloned()
        .ok_or_else(|| user_not_found(&user_id))?;
    apply(&mut user, body);
    if user.email.is_none() && user.mobile.is_none() {
        return Err(ApiError::missing(
            "email",
            "One of 'email' or 'mobile' is required.",
        ));
    }
    require_business_name(&user)?;
    let json = user_json(state.base(), &db, &user, state.now());
    db.users.insert(user_id.clone(), user);
    let url = format!("{}/users/{user_id}", state.base());
    crate::surface::record(
        &mut db,
        state.now(),
        "user",
        "updated",
        Some(&user_id),
        url,
        json.clone(),
    );
    Ok(Json(json))
}

/// `DELETE /users/{id}` → 204; the user's connections, jobs and retained data go with them.
async fn delete_user(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Response, ApiError> {
    let mut db = state.db();
    if db.users.remove(&user_id).is_none() {
        return Err(user_not_found(&user_id));
    }
    db.connections.retain(|_, c| c.user_id != user_id);
    db.jobs.retain(|_, j| j.user_id != user_id);
    db.retained.retain(|c| c.user_id != user_id);
    let url = format!("{}/users/{user_id}", state.base());
    let data = serde_json::json!({ "id": user_id });
    crate::surface::record(
        &mut db,
        state.now(),
        "user",
        "deleted",
        Some(&user_id),
        url,
        data,
    );
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_contact_details() {
        assert!(valid_email("a@b.co"));
        assert!(!valid_email("a@b"));
        assert!(!valid_email("@b.co"));
        assert!(!valid_email("a b@c.co"));
        assert!(valid_mobile("+61410888999"));
        assert!(valid_mobile("+61 410 888 999"));
        assert!(!valid_mobile("0410888999"));
        assert!(!valid_mobile("+61abc"));
    }
}
