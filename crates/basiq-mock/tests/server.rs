//! Starting and stopping the server from async and blocking code; routing errors.

mod common;

use std::time::Duration;

use basiq_mock::MockServer;
use common::*;
use reqwest::StatusCode;
use serde_json::Value;

#[test]
fn starts_from_a_plain_thread_without_a_runtime() {
    let server = MockServer::start();
    assert!(server.url().starts_with("http://127.0.0.1:"));
    // Talk to it with std only: no runtime anywhere in this test.
    use std::io::{Read, Write};
    let addr = server.url().trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    let body = "scope=SERVER_ACCESS";
    write!(
        stream,
        "POST /token HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {}\r\nbasiq-version: 3.0\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        server.api_key(),
        body.len()
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("access_token"));
    assert_eq!(server.stats().token_requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_inside_a_multi_thread_runtime_and_drops_cleanly() {
    let server = MockServer::start();
    let url = server.url();
    let _ = server_token(&server).await;
    drop(server);
    assert!(
        http()
            .get(format!("{url}/connectors"))
            .send()
            .await
            .is_err(),
        "stopped"
    );
}

#[tokio::test]
async fn fixed_port_and_virtual_time_without_a_manual_clock() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = probe.local_addr().expect("addr").port();
    drop(probe);
    let server = MockServer::builder().port(port).start();
    assert_eq!(server.url(), format!("http://127.0.0.1:{port}"));
    let before = server.now();
    server.advance(Duration::from_secs(3600));
    assert!(server.now() - before >= time::Duration::seconds(3600));
}

#[tokio::test]
async fn unknown_route_and_wrong_method_are_basiq_errors() {
    let (server, _clock, token) = with_token().await;
    let (s, b) = get(&server, "/no/such/thing", &token).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "resource-not-found");

    let resp = http()
        .put(format!("{}/users", server.url()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_error_response(resp, StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed").await;
}

#[tokio::test]
async fn malformed_bodies_are_400_basiq_errors() {
    let (server, _clock, token) = with_token().await;
    for body in ["{", "[1,2", "\"just a string\"", "{\"email\": 42}", ""] {
        let resp = http()
            .post(format!("{}/users", server.url()))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        let b: Value = resp.json().await.expect("json");
        basiq_error(&b);
    }
    let resp = http()
        .post(format!("{}/token", server.url()))
        .header("Authorization", format!("Basic {}", server.api_key()))
        .header("basiq-version", "3.0")
        .body("scope=%ZZ&&&=")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // Admin bodies too, including clock jumps that would overflow date arithmetic.
    for body in [
        serde_json::json!({"seconds": 1e300}),
        serde_json::json!({"seconds": 1e15}),
        serde_json::json!({"secs": 1}),
        serde_json::json!({"seconds": "ten"}),
    ] {
        let (s, _) = admin_post(&server, "/__admin/clock/advance", body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    }
    let (s, _) = token_request(&server, "scope=SERVER_ACCESS").await;
    assert_eq!(s, StatusCode::OK, "still serving");
}

#[tokio::test]
async fn error_bodies_carry_fresh_correlation_ids() {
    let (server, _clock) = server();
    let (_, a) = get(&server, "/users/x", "nope").await;
    let (_, b) = get(&server, "/users/x", "nope").await;
    assert_ne!(a["correlationId"], b["correlationId"]);
    insta::assert_json_snapshot!("error_body", a, { ".correlationId" => "[correlation-id]" });
}

#[tokio::test]
async fn admin_stats_count_requests_per_route() {
    let (server, _clock, token) = with_token().await;
    let user = create_user(&server, &token).await;
    let _ = get(&server, &format!("/users/{user}"), &token).await;
    let _ = get(&server, &format!("/users/{user}"), &token).await;
    let (_, stats) = admin(&server, reqwest::Method::GET, "/__admin/stats", None).await;
    assert_eq!(stats["token_requests"], 1);
    assert_eq!(stats["requests"]["GET /users/{user_id}"], 2);
    assert_eq!(stats["requests"]["POST /users"], 1);
    assert_eq!(server.stats().requests.get("POST /token"), Some(&1));
    assert!(
        !stats["requests"]
            .as_object()
            .expect("map")
            .keys()
            .any(|k| k.contains("__admin")),
        "the harness's own calls are not counted"
    );
}

#[tokio::test]
async fn admin_reset_forgets_users_but_keeps_tokens() {
    let (server, _clock, token) = with_token().await;
    let user = create_user(&server, &token).await;
    let (s, _) = admin(&server, reqwest::Method::POST, "/__admin/reset", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = get(&server, &format!("/users/{user}"), &token).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(server.stats().token_requests, 0, "counters reset");
    server.reset();
}

#[tokio::test]
async fn admin_clock_advance_moves_virtual_time() {
    let (server, _clock) = server();
    let before = server.now();
    let (_, resp) = admin_post(
        &server,
        "/__admin/clock/advance",
        serde_json::json!({"seconds": 90}),
    )
    .await;
    assert_eq!(resp["now"], "2024-05-01T00:01:30Z");
    assert_eq!(server.now() - before, time::Duration::seconds(90));
    let (s, _) = admin_post(
        &server,
        "/__admin/clock/advance",
        serde_json::json!({"seconds": -1}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn reset_also_disarms_fault_rules() {
    let (server, _clock) = server();
    let rule = serde_json::json!({"path": "/connectors", "fault": {"kind": "status", "code": 503}});
    let (s, b) = admin_post(&server, "/__admin/faults", rule).await;
    assert!(s.is_success(), "{s}: {b}");
    assert_eq!(server.faults().rules().len(), 1);
    server.reset();
    assert!(server.faults().rules().is_empty());
}

#[test]
fn server_handles_are_thread_safe() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MockServer>();
    assert_send_sync::<basiq_mock::MockClock>();
    assert_send_sync::<basiq_mock::Stats>();
}

/// The request log records what the client sent and when, on the emulator's (virtual) clock,
/// without `/__admin` calls, the query string or tokens; `reset` clears it.
#[tokio::test]
async fn request_log_has_each_request_with_its_virtual_time() {
    let (server, clock) = server();
    let token = server_token(&server).await;
    let t0 = server.now();
    let user = create_user(&server, &token).await;
    clock.advance(Duration::from_secs(90));
    let (s, _) = get(&server, &format!("/users/{user}/jobs?filter=x"), &token).await;
    assert!(s.is_client_error() || s.is_success(), "{s}");
    let (s, body) = admin(&server, reqwest::Method::GET, "/__admin/requests", None).await;
    assert_eq!(s, StatusCode::OK);
    let routes: Vec<(&str, &str)> = body["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .map(|r| (r["method"].as_str().unwrap(), r["route"].as_str().unwrap()))
        .collect();
    assert_eq!(
        routes,
        [
            ("POST", "/token"),
            ("POST", "/users"),
            ("GET", "/users/{user_id}/jobs")
        ]
    );
    let log = server.request_log();
    assert_eq!(log[1].at, t0);
    assert_eq!(log[2].at, t0 + time::Duration::seconds(90));
    assert_eq!(log[2].path, format!("/users/{user}/jobs"));
    assert!(!body.to_string().contains(&token));
    server.reset();
    assert!(server.request_log().is_empty());
}
