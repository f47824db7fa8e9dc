//! Fault injection and rate limiting, observed by a real HTTP client.

mod common;

use std::time::{Duration, Instant};

use basiq_mock::{Fault, FaultRule, MockServer, RateLimit};
use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn add_fault(server: &MockServer, rule: Value) {
    let (status, body) = admin(server, reqwest::Method::POST, "/__admin/faults", Some(rule)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// A server, a token and a user whose `GET /users/{id}` is the faulted request.
async fn setup() -> (MockServer, String, String) {
    let (server, _clock, token) = with_token().await;
    let user = create_user(&server, &token).await;
    (server, token, user)
}

async fn get_user(
    server: &MockServer,
    token: &str,
    user: &str,
) -> reqwest::Result<reqwest::Response> {
    http()
        .get(format!("{}/users/{user}", server.url()))
        .bearer_auth(token)
        .send()
        .await
}

#[tokio::test]
async fn status_faults_with_and_without_retry_after() {
    let (server, token, user) = setup().await;
    add_fault(
        &server,
        json!([
            {"method": "GET", "path": "/users/*", "fault": {"kind": "status", "code": 503, "retryAfter": 7}},
            {"path": "/users/*", "fault": {"kind": "status", "code": 429}},
            {"path": "/users/*", "count": 2, "fault": {"kind": "status", "code": 500}},
            {"path": "/users/*", "fault": {"kind": "status", "code": 502}},
        ]),
    )
    .await;

    let resp = get_user(&server, &token, &user).await.expect("response");
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "7");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(basiq_error(&body)["code"], "service-unavailable");

    let resp = get_user(&server, &token, &user).await.expect("response");
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().get("retry-after").is_none());
    let body: Value = resp.json().await.expect("json");
    assert_eq!(basiq_error(&body)["code"], "too-many-requests");

    for _ in 0..2 {
        let resp = get_user(&server, &token, &user).await.expect("response");
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body: Value = resp.json().await.expect("json");
        assert_eq!(basiq_error(&body)["code"], "internal-server-error");
    }
    let resp = get_user(&server, &token, &user).await.expect("response");
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);

    // Rules are used up: the next request is served normally.
    let resp = get_user(&server, &token, &user).await.expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(server.faults().stats().status, 5);
}

#[tokio::test]
async fn delay_holds_the_request_then_serves_it() {
    let (server, token, user) = setup().await;
    add_fault(
        &server,
        json!({"path": "/users/*", "fault": {"kind": "delay", "ms": 80}}),
    )
    .await;
    let started = Instant::now();
    let resp = get_user(&server, &token, &user).await.expect("response");
    assert!(started.elapsed() >= Duration::from_millis(80));
    assert_eq!(resp.status(), StatusCode::OK);

    // A client timeout shorter than the delay sees a timeout error.
    add_fault(
        &server,
        json!({"path": "/users/*", "fault": {"kind": "delay", "ms": 300}}),
    )
    .await;
    let err = http()
        .get(format!("{}/users/{user}", server.url()))
        .bearer_auth(&token)
        .timeout(Duration::from_millis(50))
        .send()
        .await
        .expect_err("timeout");
    assert!(err.is_timeout(), "{err}");
}

#[tokio::test]
async fn reset_closes_the_connection_without_a_response() {
    let (server, token, user) = setup().await;
    add_fault(
        &server,
        json!({"path": "/users/*", "fault": {"kind": "reset"}}),
    )
    .await;
    let err = get_user(&server, &token, &user)
        .await
        .expect_err("no response");
    assert!(err.status().is_none(), "{err}");
    assert!(!err.is_timeout());
    assert_eq!(server.faults().stats().reset, 1);
    // The server is fine afterwards.
    let resp = get_user(&server, &token, &user).await.expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn reset_after_handler_is_an_ambiguous_failure() {
    let (server, token, user) = setup().await;
    add_fault(
        &server,
        json!({"method": "POST", "path": "/consent/connect.json", "fault": {"kind": "reset", "afterHandler": true}}),
    )
    .await;
    let err = http()
        .post(format!("{}/consent/connect.json", server.url()))
        .bearer_auth(&token)
        .json(&json!({"userId": user, "institutionId": "AU00000", "loginId": "Gilfoyle", "password": "PiedPiper"}))
        .send()
        .await
        .expect_err("no response");
    assert!(err.status().is_none());
    // …but the connection was created: a client must reconcile, not repeat the POST.
    let (status, conns) = get(&server, &format!("/users/{user}/connections"), &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(conns["data"].as_array().map(Vec::len), Some(1), "{conns}");
}

#[tokio::test]
async fn truncated_body_is_a_body_error() {
    let (server, token, user) = setup().await;
    add_fault(
        &server,
        json!({"path": "/users/*", "fault": {"kind": "truncatedBody"}}),
    )
    .await;
    let resp = get_user(&server, &token, &user)
        .await
        .expect("head arrives");
    assert_eq!(resp.status(), StatusCode::OK);
    let declared = resp.content_length().expect("content-length");
    let err = resp.bytes().await.expect_err("body cut short");
    assert!(err.is_body() || err.is_decode(), "{err}");
    assert!(declared > 2);
    assert_eq!(server.faults().stats().truncated_body, 1);
}

#[tokio::test]
async fn malformed_json_is_a_parse_error() {
    let (server, token, user) = setup().await;
    add_fault(
        &server,
        json!({"path": "/users/*", "fault": {"kind": "malformedJson"}}),
    )
    .await;
    let resp = get_user(&server, &token, &user).await.expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let text = resp.text().await.expect("text");
    assert_eq!(text, r#"{"type":"list", "data": ["#);
    assert!(serde_json::from_str::<Value>(&text).is_err());
}

#[tokio::test]
async fn method_and_path_must_match() {
    let (server, token, user) = setup().await;
    add_fault(
        &server,
        json!({"method": "DELETE", "path": "/users/*", "fault": {"kind": "status", "code": 500}}),
    )
    .await;
    add_fault(
        &server,
        json!({"path": "/jobs/*", "fault": {"kind": "status", "code": 500}}),
    )
    .await;
    let resp = get_user(&server, &token, &user).await.expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, listed) = admin(&server, reqwest::Method::GET, "/__admin/faults", None).await;
    assert_eq!(
        listed["rules"].as_array().map(Vec::len),
        Some(2),
        "{listed}"
    );
    assert_eq!(listed["rules"][0]["method"], "DELETE");
}

#[tokio::test]
async fn admin_routes_are_never_faulted_and_can_clear() {
    let (server, token, user) = setup().await;
    add_fault(&server, json!({"count": 100, "fault": {"kind": "reset"}})).await;
    // Every admin call still works while a catch-all reset rule is armed.
    let (status, listed) = admin(&server, reqwest::Method::GET, "/__admin/faults", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["rules"][0]["count"], 100);
    let (status, _) = admin(&server, reqwest::Method::GET, "/__admin/stats", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(get_user(&server, &token, &user).await.is_err());
    let (status, _) = admin(&server, reqwest::Method::DELETE, "/__admin/faults", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, listed) = admin(&server, reqwest::Method::GET, "/__admin/faults", None).await;
    assert_eq!(listed["rules"], json!([]));
    assert_eq!(listed["stats"]["reset"], 1);
    assert_eq!(
        get_user(&server, &token, &user)
            .await
            .expect("response")
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn bad_rules_are_rejected_in_basiq_format() {
    let (server, _token, _user) = setup().await;
    for bad in [
        json!({"fault": {"kind": "explode"}}),
        json!({"fault": {"kind": "status", "code": 200}}),
        json!({"count": 0, "fault": {"kind": "reset"}}),
        json!({"path": "users", "fault": {"kind": "reset"}}),
        json!("reset"),
    ] {
        let (status, body) = admin(
            &server,
            reqwest::Method::POST,
            "/__admin/faults",
            Some(bad.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(basiq_error(&body)["code"], "parameter-not-valid");
    }
    assert!(server.faults().rules().is_empty());
}

#[tokio::test]
async fn in_process_control() {
    let (server, token, user) = setup().await;
    let faults = server.faults();
    faults
        .add(
            FaultRule::new(
                "/users/*",
                Fault::Status {
                    code: 503,
                    retry_after: None,
                },
            )
            .method("GET")
            .times(2),
        )
        .expect("valid rule");
    assert_eq!(
        get_user(&server, &token, &user).await.expect("r").status(),
        503
    );
    faults.clear();
    assert_eq!(
        get_user(&server, &token, &user).await.expect("r").status(),
        200
    );
}

#[tokio::test]
async fn rate_limit_over_http() {
    let (server, token, user) = setup().await;
    let (status, body) = admin(
        &server,
        reqwest::Method::POST,
        "/__admin/rate-limit",
        Some(json!({"requests": 3, "windowMs": 60000, "path": "/users/*"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for _ in 0..3 {
        assert_eq!(
            get_user(&server, &token, &user).await.expect("r").status(),
            StatusCode::OK
        );
    }
    let resp = get_user(&server, &token, &user).await.expect("r");
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("secs");
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(basiq_error(&body)["code"], "too-many-requests");
    // Other paths and admin routes are not limited.
    let (status, _) = get(&server, "/connectors", &token).await;
    assert_eq!(status, StatusCode::OK);
    let (_, listed) = admin(&server, reqwest::Method::GET, "/__admin/faults", None).await;
    assert_eq!(listed["stats"]["rateLimited"], 1);

    // Without Retry-After.
    admin(
        &server,
        reqwest::Method::POST,
        "/__admin/rate-limit",
        Some(json!({"requests": 1, "windowMs": 60000, "retryAfter": false})),
    )
    .await;
    assert_eq!(
        get_user(&server, &token, &user).await.expect("r").status(),
        StatusCode::OK
    );
    let resp = get_user(&server, &token, &user).await.expect("r");
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().get("retry-after").is_none());

    // Off again.
    let (status, _) = admin(
        &server,
        reqwest::Method::DELETE,
        "/__admin/rate-limit",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        get_user(&server, &token, &user).await.expect("r").status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn rate_limit_from_the_builder() {
    let server = MockServer::builder()
        .rate_limit(RateLimit::new(2, Duration::from_secs(60)))
        .start();
    let token = server_token(&server).await;
    let user = create_user(&server, &token).await;
    // /token and POST /users used the two requests of this window.
    let resp = get_user(&server, &token, &user).await.expect("r");
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().get("retry-after").is_some());
    assert_eq!(server.faults().stats().rate_limited, 1);
}

/// `withhold`: the server acts (the user exists afterwards) although the client gave up waiting
/// for the answer — the case a `delay` cannot stage, because a client that hangs up during a
/// delay drops the request before it is handled.
#[tokio::test]
async fn withhold_acts_then_keeps_the_answer_past_the_client_timeout() {
    let (server, _clock, token) = with_token().await;
    add_fault(
        &server,
        json!({"method": "POST", "path": "/users", "fault": {"kind": "withhold", "ms": 2000}}),
    )
    .await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = impatient
        .post(format!("{}/users", server.url()))
        .bearer_auth(&token)
        .json(&json!({"email": "withheld@example.com"}))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(server.faults().stats().withheld, 1);
    assert_eq!(
        server.stats().requests.get("POST /users").copied(),
        Some(1),
        "the POST was handled once"
    );
    // The state changed although the client saw only a timeout.
    assert_eq!(server.stats().users_created, 1);
}

/// A request that declares a `Content-Length` and sends nothing gets `408` after the body
/// timeout and its connection closed, instead of holding it forever.
#[test]
fn a_request_body_that_never_arrives_times_out() {
    use std::io::{Read, Write};
    let server = MockServer::builder()
        .request_body_timeout(Duration::from_millis(200))
        .start();
    let addr = server.url().trim_start_matches("http://").to_owned();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Authenticated, so nothing refuses it before its body is read (`/token` reads its form).
    let head = format!(
        "POST /token HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nscope=",
        server.api_key()
    );
    conn.write_all(head.as_bytes()).unwrap();
    let mut answer = String::new();
    // The server closes the connection after answering: read_to_string ends.
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request-timeout"), "{answer}");
}
