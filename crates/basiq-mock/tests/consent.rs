//! The Consent UI stand-in: HTML page, form POST with 302 redirect, JSON variant.

mod common;

use std::time::Duration;

use basiq_core::clock::ManualClock;
use basiq_mock::MockServer;
use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use time::macros::datetime;

/// The Consent UI form for Hooli with the `jared` / `django` login, as the browser posts it.
fn jared_form(client_token: &str) -> [(&str, &str); 4] {
    [
        ("token", client_token),
        ("institutionId", "AU00000"),
        ("loginId", "jared"),
        ("password", "django"),
    ]
}

#[tokio::test]
async fn home_page_needs_a_client_token() {
    let (server, _clock, t, user) = setup().await;
    let client = client_token(&server, &user).await;
    let resp = http()
        .get(format!("{}/consent/home", server.url()))
        .query(&[
            ("token", client.as_str()),
            ("state", "<xyz>"),
            ("institutionId", "AU00000"),
            ("action", "connect"),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/html"));
    let html = resp.text().await.expect("text");
    assert!(html.contains("action=\"/consent/connect\""));
    assert!(html.contains("name=\"loginId\""));
    assert!(
        html.contains("value=\"&lt;xyz&gt;\""),
        "state is escaped: {html}"
    );
    assert!(html.contains("value=\"AU00000\" selected"));

    let resp = http()
        .get(format!("{}/consent/home?token={t}", server.url()))
        .send()
        .await
        .expect("send");
    assert_eq!(
        resp.status(),
        StatusCode::FORBIDDEN,
        "server tokens never go to a browser"
    );
    let resp = http()
        .get(format!("{}/consent/home", server.url()))
        .send()
        .await
        .expect("send");
    assert_error_response(resp, StatusCode::BAD_REQUEST, "parameter-not-supplied").await;
}

#[tokio::test]
async fn form_post_redirects_with_job_ids_and_state() {
    let clock = ManualClock::new(datetime!(2024-05-01 00:00:00 UTC));
    let server = MockServer::builder()
        .clock(clock.clone())
        .redirect_url("https://app.example.com/basiq/callback")
        .start();
    let t = server_token(&server).await;
    let user = create_user(&server, &t).await;
    let client = client_token(&server, &user).await;
    let resp = consent_form(
        &http_no_redirect(),
        &server,
        &[
            ("token", client.as_str()),
            ("state", "a b&c"),
            ("institutionId", "AU00000"),
            ("loginId", "gavinBelson"),
            ("password", "hooli2016"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = resp.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let prefix = "https://app.example.com/basiq/callback?jobIds=";
    assert!(location.starts_with(prefix), "{location}");
    assert!(location.ends_with("&state=a+b%26c"), "{location}");
    let job_id = location[prefix.len()..]
        .split('&')
        .next()
        .expect("id")
        .to_owned();
    clock.advance(Duration::from_secs(13));
    let j = job(&server, &t, &job_id).await;
    assert_eq!(step_statuses(&j), ["success", "success", "success"]);
    let (_, conns) = get(&server, &format!("/users/{user}/connections"), &t).await;
    assert_eq!(conns["data"][0]["status"], "active");
}

#[tokio::test]
async fn default_redirect_lands_on_the_done_page() {
    let (server, _clock, t, user) = setup().await;
    let client = client_token(&server, &user).await;
    let resp = consent_form(&http(), &server, &jared_form(&client)).await;
    assert_eq!(resp.status(), StatusCode::OK, "followed to /consent/done");
    assert!(resp.url().path().ends_with("/consent/done"));
    let job_id = resp
        .url()
        .query_pairs()
        .find(|(k, _)| k == "jobIds")
        .map(|(_, v)| v.into_owned())
        .expect("jobIds");
    let html = resp.text().await.expect("html");
    assert!(html.contains(&job_id));
    let (s, _) = get(&server, &format!("/jobs/{job_id}"), &t).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn json_variant_accepts_client_bearer_token_field_or_server_token() {
    let (server, _clock, t, user) = setup().await;
    let client = client_token(&server, &user).await;
    let body = json!({"institutionId": "AU00000", "loginId": "richard", "password": "tabsnotspaces", "state": "s1"});

    let (s, b) = consent_json(&server, &client, body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["jobIds"].as_array().expect("ids").len(), 1);
    assert!(b["redirect"]
        .as_str()
        .expect("redirect")
        .contains("state=s1"));

    let mut with_field = body.clone();
    with_field["token"] = json!(client);
    let resp = http()
        .post(format!("{}/consent/connect.json", server.url()))
        .json(&with_field)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::OK);

    let (s, b) = consent_json(&server, &t, body.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a server token needs userId");
    assert_eq!(basiq_error(&b)["source"]["parameter"], "userId");
}

#[tokio::test]
async fn consent_validates_its_input() {
    let (server, _clock, t, user) = setup().await;
    let cases: &[(Value, StatusCode, &str)] = &[
        (
            json!({"userId": user, "loginId": "a", "password": "b"}),
            StatusCode::BAD_REQUEST,
            "parameter-not-supplied",
        ),
        (
            json!({"userId": user, "institutionId": "AU99999", "loginId": "a", "password": "b"}),
            StatusCode::BAD_REQUEST,
            "institution-not-supported",
        ),
        (
            json!({"userId": user, "institutionId": "AU00000", "password": "b"}),
            StatusCode::BAD_REQUEST,
            "parameter-not-supplied",
        ),
        (
            json!({"userId": user, "institutionId": "AU00000", "loginId": "a"}),
            StatusCode::BAD_REQUEST,
            "parameter-not-supplied",
        ),
        (
            json!({"userId": user, "institutionId": "AU00000", "loginId": "a", "password": "b", "action": "dance"}),
            StatusCode::BAD_REQUEST,
            "parameter-not-valid",
        ),
        (
            json!({"userId": user, "connectionId": "nope", "loginId": "a", "password": "b"}),
            StatusCode::NOT_FOUND,
            "resource-not-found",
        ),
        (
            json!({"userId": "nobody", "institutionId": "AU00000", "loginId": "a", "password": "b"}),
            StatusCode::NOT_FOUND,
            "resource-not-found",
        ),
        (
            json!({"userId": user, "institutionId": 7}),
            StatusCode::BAD_REQUEST,
            "parameter-not-valid",
        ),
    ];
    for (body, status, code) in cases {
        let (s, b) = consent_json(&server, &t, body.clone()).await;
        assert_eq!(s, *status, "{body} → {b}");
        assert_eq!(basiq_error(&b)["code"], *code, "{body}");
    }
    let resp = consent_form(&http(), &server, &[("institutionId", "AU00000")]).await;
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "the form needs a token"
    );
}

#[tokio::test]
async fn expired_client_token_is_refused() {
    let (server, clock, _t, user) = setup().await;
    let client = client_token(&server, &user).await;
    clock.advance(Duration::from_secs(3600));
    let resp = consent_form(&http_no_redirect(), &server, &jared_form(&client)).await;
    assert_error_response(resp, StatusCode::FORBIDDEN, "access-denied").await;
}

#[tokio::test]
async fn sandbox_stops_at_500_connections() {
    let (server, _clock, t, user) = setup().await;
    for i in 0..500 {
        let (s, b) = consent_json(&server, &t,
            json!({"userId": user, "institutionId": "AU00000", "loginId": format!("user{i}"), "password": "x"}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{i}: {b}");
    }
    let (s, b) = consent_json(&server, &t,
        json!({"userId": user, "institutionId": "AU00000", "loginId": "one-too-many", "password": "x"}),
    )
    .await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "too-many-sandbox-connections");
    // Reconnecting an existing login is not a new connection.
    let (s, _) = consent_json(
        &server,
        &t,
        json!({"userId": user, "institutionId": "AU00000", "loginId": "user7", "password": "x"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
}
