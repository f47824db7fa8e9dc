//! `/token` and Bearer authentication.

mod common;

use std::time::Duration;

use basiq_mock::MockServer;
use common::*;
use reqwest::StatusCode;
use serde_json::Value;

async fn raw_token(
    server: &MockServer,
    auth: Option<&str>,
    version: Option<&str>,
    form: &str,
) -> (StatusCode, Value) {
    let mut req = http()
        .post(format!("{}/token", server.url()))
        .body(form.to_owned());
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    if let Some(v) = version {
        req = req.header("basiq-version", v);
    }
    let resp = req.send().await.expect("send");
    (resp.status(), resp.json().await.expect("json"))
}

#[tokio::test]
async fn token_is_issued_for_the_key_as_given() {
    let (server, _clock) = server();
    let (status, body) = token_request(&server, "scope=SERVER_ACCESS").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().expect("token");
    assert_eq!(token.split('.').count(), 3, "JWT-looking");
    assert_eq!(server.stats().token_requests, 1);
    assert_eq!(server.stats().tokens_issued, 1);
}

#[tokio::test]
async fn api_key_looks_like_a_dashboard_key() {
    let (server, _clock) = server();
    let key = server.api_key();
    assert!(key.ends_with('=') || key.len() % 4 == 0);
    assert!(key.len() > 60);
}

#[tokio::test]
async fn token_errors_follow_basiq() {
    let (server, _clock) = server();
    let key = format!("Basic {}", server.api_key());

    let (s, b) = raw_token(&server, None, Some("3.0"), "scope=SERVER_ACCESS").await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "parameter-not-supplied");
    assert_eq!(
        basiq_error(&b)["detail"],
        "Authorization header parameter is required"
    );

    let (s, b) = raw_token(&server, Some("Bearer"), Some("3.0"), "scope=SERVER_ACCESS").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(basiq_error(&b)["detail"], "Invalid authorization header");

    let (s, b) = raw_token(&server, Some(&key), None, "scope=SERVER_ACCESS").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        basiq_error(&b)["detail"],
        "Basiq-version must be specified in HTTP request header"
    );

    let (s, b) = raw_token(&server, Some(&key), Some("2.0"), "scope=SERVER_ACCESS").await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "parameter-not-valid");

    let (s, b) = raw_token(
        &server,
        Some("Basic d3Jvbmc6a2V5"),
        Some("3.0"),
        "scope=SERVER_ACCESS",
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a wrong key is a 404 at Basiq");
    assert_eq!(basiq_error(&b)["code"], "resource-not-found");
    assert_eq!(
        basiq_error(&b)["detail"],
        "Unable to authenticate. Please, check your API key"
    );

    let (s, b) = raw_token(&server, Some(&key), Some("3.0"), "").await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "parameter-not-supplied");

    let (s, b) = raw_token(&server, Some(&key), Some("3.0"), "scope=CLIENT_ACCESS").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "client scope needs a userId");
    assert_eq!(basiq_error(&b)["source"]["parameter"], "userId");

    let (s, _) = raw_token(
        &server,
        Some(&key),
        Some("3.0"),
        "scope=CLIENT_ACCESS&userId=nobody",
    )
    .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "client scope needs an existing user"
    );

    assert_eq!(server.stats().token_requests, 8);
    assert_eq!(server.stats().tokens_issued, 0);
}

#[tokio::test]
async fn re_encoding_the_key_is_rejected() {
    let (server, _clock) = server();
    // A classic SDK bug: base64-encoding the already-encoded dashboard key.
    let doubled = format!("Basic {}", base64_of(&server.api_key()));
    let (s, _) = raw_token(&server, Some(&doubled), Some("3.0"), "scope=SERVER_ACCESS").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

fn base64_of(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in s.as_bytes().chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn bearer_errors_missing_unknown_expired_and_wrong_scope() {
    let (server, clock, token) = with_token().await;

    let resp = http()
        .get(format!("{}/connectors", server.url()))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(basiq_error(&body)["code"], "invalid-authorization-token");
    assert_eq!(basiq_error(&body)["detail"], "Invalid authorization token.");

    let (s, b) = get(&server, "/connectors", "not-a-token").await;
    assert_error(
        s,
        &b,
        StatusCode::UNAUTHORIZED,
        "invalid-authorization-token",
    );

    let (s, _) = get(&server, "/connectors", &token).await;
    assert_eq!(s, StatusCode::OK);

    clock.advance(Duration::from_secs(3599));
    let (s, _) = get(&server, "/connectors", &token).await;
    assert_eq!(s, StatusCode::OK, "still valid one second before expiry");

    clock.advance(Duration::from_secs(1));
    let (s, b) = get(&server, "/connectors", &token).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let err = basiq_error(&b);
    assert_eq!(err["code"], "access-denied");
    assert_eq!(err["title"], "Forbidden");
    assert_eq!(err["detail"], "Token has expired");

    let fresh = server_token(&server).await;
    let user = create_user(&server, &fresh).await;
    let client = client_token(&server, &user).await;
    let (s, b) = get(&server, &format!("/users/{user}"), &client).await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "forbidden-access");
    assert_eq!(
        basiq_error(&b)["detail"],
        "Access to this resource is forbidden"
    );
}

#[tokio::test]
async fn token_ttl_is_configurable() {
    let clock = basiq_core::clock::ManualClock::starting_now();
    let server = MockServer::builder()
        .clock(clock.clone())
        .token_ttl(Duration::from_secs(60))
        .start();
    let (_, body) = token_request(&server, "scope=SERVER_ACCESS").await;
    assert_eq!(body["expires_in"], 60);
    let token = body["access_token"].as_str().expect("token").to_owned();
    clock.advance(Duration::from_secs(61));
    let (s, _) = get(&server, "/connectors", &token).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_absurd_token_ttl_saturates_instead_of_panicking() {
    // `now + ttl` used to overflow past the end of representable time and panic the handler.
    for ttl in [i64::MAX as u64, u64::MAX, 400_000 * 365 * 24 * 3600] {
        let server = MockServer::builder()
            .token_ttl(Duration::from_secs(ttl))
            .start();
        let (s, body) = token_request(&server, "scope=SERVER_ACCESS").await;
        assert_eq!(s, StatusCode::OK, "ttl {ttl}: {body}");
        let token = body["access_token"].as_str().expect("token").to_owned();
        let (s, _) = get(&server, "/connectors", &token).await;
        assert_eq!(s, StatusCode::OK, "ttl {ttl}");
    }
}

#[tokio::test]
async fn token_flood_is_refused_with_invalid_request() {
    let clock = basiq_core::clock::ManualClock::starting_now();
    let server = MockServer::builder()
        .clock(clock.clone())
        .token_rate_limit(5, Duration::from_secs(300))
        .start();
    for _ in 0..5 {
        let (s, _) = token_request(&server, "scope=SERVER_ACCESS").await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, b) = token_request(&server, "scope=SERVER_ACCESS").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(basiq_error(&b)["title"], "Invalid request");
    clock.advance(Duration::from_secs(301));
    let (s, _) = token_request(&server, "scope=SERVER_ACCESS").await;
    assert_eq!(s, StatusCode::OK, "the window slides");
}

#[tokio::test]
async fn default_token_limit_is_1500_per_5_minutes() {
    let (server, _clock) = server();
    let client = http();
    let mut last = StatusCode::OK;
    for i in 0..1501 {
        let resp = client
            .post(format!("{}/token", server.url()))
            .header("Authorization", format!("Basic {}", server.api_key()))
            .header("basiq-version", "3.0")
            .body("scope=SERVER_ACCESS")
            .send()
            .await
            .expect("send");
        last = resp.status();
        if i < 1500 {
            assert_eq!(last, StatusCode::OK, "request {i}");
        }
    }
    assert_eq!(last, StatusCode::FORBIDDEN);
}
