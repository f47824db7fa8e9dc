//! Shared helpers for the emulator's HTTP tests.
#![allow(dead_code)]

use basiq_core::clock::ManualClock;
use basiq_mock::MockServer;
use reqwest::StatusCode;
use serde_json::{json, Value};
use time::macros::datetime;

/// A server on a virtual clock standing at a fixed instant (stable snapshots).
pub fn server() -> (MockServer, ManualClock) {
    let clock = ManualClock::new(datetime!(2024-05-01 00:00:00 UTC));
    let server = MockServer::builder().clock(clock.clone()).start();
    (server, clock)
}

pub fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// `POST /token` with the given form; returns status and JSON body.
pub async fn token_request(server: &MockServer, form: &str) -> (StatusCode, Value) {
    let resp = http()
        .post(format!("{}/token", server.url()))
        .header("Authorization", format!("Basic {}", server.api_key()))
        .header("basiq-version", "3.0")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await
        .expect("send");
    let status = resp.status();
    (status, resp.json().await.expect("json"))
}

pub async fn server_token(server: &MockServer) -> String {
    let (status, body) = token_request(server, "scope=SERVER_ACCESS").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().expect("token").to_owned()
}

pub async fn client_token(server: &MockServer, user_id: &str) -> String {
    let (status, body) =
        token_request(server, &format!("scope=CLIENT_ACCESS&userId={user_id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().expect("token").to_owned()
}

/// Sends a request with a Bearer token; returns status and JSON (Null when there is no body).
pub async fn call(
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = http().request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status();
    let bytes = resp.bytes().await.expect("body");
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {bytes:?}"))
    };
    (status, value)
}

pub async fn get(server: &MockServer, path: &str, token: &str) -> (StatusCode, Value) {
    call(
        reqwest::Method::GET,
        &format!("{}{path}", server.url()),
        token,
        None,
    )
    .await
}

pub async fn post(
    server: &MockServer,
    path: &str,
    token: &str,
    body: Value,
) -> (StatusCode, Value) {
    call(
        reqwest::Method::POST,
        &format!("{}{path}", server.url()),
        token,
        Some(body),
    )
    .await
}

pub async fn create_user(server: &MockServer, token: &str) -> String {
    let (status, body) = post(server, "/users", token, json!({"email": "gavin@hooli.com", "mobile": "+61410888999", "firstName": "Gavin", "lastName": "Belson"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

/// Connects through `/consent/connect.json` with a server token; returns the job id.
pub async fn connect(
    server: &MockServer,
    token: &str,
    user: &str,
    institution: &str,
    login: &str,
    password: &str,
) -> String {
    let (status, body) = post(
        server,
        "/consent/connect.json",
        token,
        json!({"userId": user, "institutionId": institution, "loginId": login, "password": password}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["jobIds"][0].as_str().expect("job id").to_owned()
}

/// The connection id from a job's `links.source`.
pub fn connection_of(job: &Value) -> String {
    job["links"]["source"]
        .as_str()
        .and_then(|s| s.rsplit('/').next())
        .expect("source")
        .to_owned()
}

pub fn step_statuses(job: &Value) -> Vec<String> {
    job["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Asserts a Basiq error body and returns its single error.
pub fn basiq_error(body: &Value) -> &Value {
    assert_eq!(body["type"], "list", "{body}");
    assert!(
        body["correlationId"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "{body}"
    );
    let err = &body["data"][0];
    assert_eq!(err["type"], "error", "{body}");
    err
}

/// Replaces the server URL and the given ids with stable placeholders, for snapshots.
pub fn scrub(server: &MockServer, value: &Value, ids: &[(&str, &str)]) -> Value {
    let mut text = value
        .to_string()
        .replace(&server.url(), "http://127.0.0.1:[port]");
    for (id, placeholder) in ids {
        text = text.replace(id, placeholder);
    }
    serde_json::from_str(&text).expect("scrubbed JSON")
}

/// A client that does not follow redirects (to see the Consent UI's 302).
pub fn http_no_redirect() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Fetches a job.
pub async fn job(server: &MockServer, token: &str, id: &str) -> Value {
    let (status, body) = get(server, &format!("/jobs/{id}"), token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Fetches a connection.
pub async fn connection(server: &MockServer, token: &str, user: &str, cid: &str) -> Value {
    let (status, body) = get(server, &format!("/users/{user}/connections/{cid}"), token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// A server, a server token, a user.
pub async fn setup() -> (MockServer, ManualClock, String, String) {
    let (server, clock) = server();
    let token = server_token(&server).await;
    let user = create_user(&server, &token).await;
    (server, clock, token, user)
}

/// A server on the virtual clock and a server token.
pub async fn with_token() -> (MockServer, ManualClock, String) {
    let (server, clock) = server();
    let token = server_token(&server).await;
    (server, clock, token)
}

/// `DELETE {path}` with a Bearer token; returns status and JSON (Null when there is no body).
pub async fn delete(server: &MockServer, path: &str, token: &str) -> (StatusCode, Value) {
    call(
        reqwest::Method::DELETE,
        &format!("{}{path}", server.url()),
        token,
        None,
    )
    .await
}

/// `POST /consent/connect.json` (the Consent UI's JSON variant) with `token`.
pub async fn consent_json(server: &MockServer, token: &str, body: Value) -> (StatusCode, Value) {
    post(server, "/consent/connect.json", token, body).await
}

/// `POST /consent/connect` (the Consent UI's HTML form) through `http` (which may or may not
/// follow the redirect).
pub async fn consent_form(
    http: &reqwest::Client,
    server: &MockServer,
    form: &[(&str, &str)],
) -> reqwest::Response {
    http.post(format!("{}/consent/connect", server.url()))
        .form(form)
        .send()
        .await
        .expect("send")
}

/// `POST /jobs/{id}/mfa` with the answers, as the user's browser does (client token).
pub async fn answer_mfa(
    server: &MockServer,
    client_token: &str,
    job_id: &str,
    answers: &[&str],
) -> (StatusCode, Value) {
    post(
        server,
        &format!("/jobs/{job_id}/mfa"),
        client_token,
        json!({ "mfa-response": answers }),
    )
    .await
}

/// The step statuses of a job, fetched now.
pub async fn job_steps(server: &MockServer, token: &str, id: &str) -> Vec<String> {
    step_statuses(&job(server, token, id).await)
}

/// Asserts `status` and a Basiq error body with `code`.
pub fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(basiq_error(body)["code"], code, "{body}");
}

/// An `/__admin` call (no token); returns status and JSON (Null when the body is not JSON).
pub async fn admin(
    server: &MockServer,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = http().request(method, format!("{}{path}", server.url()));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("admin request");
    let status = resp.status();
    let bytes = resp.bytes().await.expect("admin body");
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, value)
}

/// `POST /__admin/{path}` with a JSON body.
pub async fn admin_post(server: &MockServer, path: &str, body: Value) -> (StatusCode, Value) {
    admin(server, reqwest::Method::POST, path, Some(body)).await
}

/// Asserts a raw response's status and that its body is a Basiq error with `code`.
pub async fn assert_error_response(resp: reqwest::Response, expected: StatusCode, code: &str) {
    assert_eq!(resp.status(), expected);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(basiq_error(&body)["code"], code, "{body}");
}
