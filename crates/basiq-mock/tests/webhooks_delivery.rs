//! The smart cache and webhook delivery on virtual time: signed like Basiq, retried on Basiq's
//! schedule, the subscription disabled after the last failure, attempts listed.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use basiq_core::clock::ManualClock;
use basiq_core::webhooks::{self, WebhookSecret};
use basiq_mock::{DeliveryState, MockServer, RETRY_DELAYS};
use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use time::macros::datetime;

#[derive(Debug, Default)]
struct Inbox {
    /// Statuses to answer, in order; 204 once empty.
    answers: VecDeque<u16>,
    /// `(headers, body)` of every request.
    received: Vec<(HeaderMap, Vec<u8>)>,
}

/// A receiver on 127.0.0.1 (in the test's runtime) that records what it gets.
async fn receiver(answers: &[u16]) -> (String, Arc<Mutex<Inbox>>) {
    let inbox = Arc::new(Mutex::new(Inbox {
        answers: answers.iter().copied().collect(),
        received: Vec::new(),
    }));
    let shared = inbox.clone();
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let inbox = shared.clone();
            async move {
                let mut inbox = inbox.lock().unwrap();
                inbox.received.push((headers, body.to_vec()));
                let status = inbox.answers.pop_front().unwrap_or(204);
                AxumStatus::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, inbox)
}

async fn subscribe(
    server: &MockServer,
    token: &str,
    url: &str,
    events: &[&str],
) -> (String, WebhookSecret) {
    let (status, body) = post(
        server,
        "/notifications/webhooks",
        token,
        json!({ "name": "app", "url": url, "subscribedEvents": events }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let secret = WebhookSecret::new(body["secret"].as_str().unwrap()).unwrap();
    (body["id"].as_str().unwrap().to_owned(), secret)
}

fn start(smart_cache: bool) -> (MockServer, ManualClock) {
    let clock = ManualClock::new(datetime!(2026-01-05 10:00 UTC));
    let server = MockServer::builder()
        .clock(clock.clone())
        .smart_cache(smart_cache)
        .start();
    (server, clock)
}

#[tokio::test]
async fn events_are_delivered_signed_at_their_virtual_time() {
    let (server, _clock) = start(false);
    let token = server_token(&server).await;
    let (url, inbox) = receiver(&[]).await;
    let (_, secret) = subscribe(&server, &token, &url, &[]).await;
    let user = create_user(&server, &token).await;
    connect(
        &server,
        &token,
        &user,
        "AU00000",
        "gavinBelson",
        "hooli2016",
    )
    .await;
    server.advance_async(Duration::from_secs(60)).await;

    let inbox = inbox.lock().unwrap();
    let mut types = Vec::new();
    for (headers, body) in &inbox.received {
        let sent = headers[webhooks::HEADER_TIMESTAMP]
            .to_str()
            .unwrap()
            .parse::<i64>()
            .unwrap();
        let at = time::OffsetDateTime::from_unix_timestamp(sent).unwrap();
        // Verified at the virtual instant it was sent: signed with the subscription's secret.
        let message = webhooks::verify(&secret, headers, body, at).unwrap();
        assert_eq!(headers["content-type"], "application/json");
        types.push(message.event_type_id.as_str().to_owned());
    }
    for expected in [
        "user.created",
        "connection.created",
        "consent.created",
        "account.updated",
        "transactions.updated",
    ] {
        assert!(
            types.iter().any(|t| t == expected),
            "{expected} in {types:?}"
        );
    }
    // Each message once: every attempt answered 204.
    let ids: std::collections::HashSet<_> = inbox
        .received
        .iter()
        .map(|(h, _)| h[webhooks::HEADER_ID].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), inbox.received.len());
    assert_eq!(server.stats().webhooks_delivered, ids.len() as u64);
}

#[tokio::test]
async fn failed_deliveries_follow_basiqs_schedule_then_disable_the_subscription() {
    let (server, _clock) = start(false);
    let token = server_token(&server).await;
    // Every attempt fails.
    let (url, inbox) = receiver(&[500; 100]).await;
    let (webhook_id, _) = subscribe(&server, &token, &url, &["user.created"]).await;
    let t0 = server.now();
    create_user(&server, &token).await;
    server
        .advance_async(Duration::from_secs(2 * 24 * 3600))
        .await;

    let deliveries = server.webhook_deliveries();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    let d = &deliveries[0];
    assert_eq!(d.state, DeliveryState::Failed);
    assert_eq!(d.attempts.len(), 1 + RETRY_DELAYS.len());
    assert!(
        d.attempts[0].at - t0 < time::Duration::seconds(1),
        "first attempt immediately"
    );
    for (pair, wait) in d.attempts.windows(2).zip(RETRY_DELAYS) {
        assert_eq!(
            pair[1].at - pair[0].at,
            time::Duration::try_from(wait).unwrap()
        );
        assert_eq!(pair[0].status, Some(500));
    }
    assert_eq!(inbox.lock().unwrap().received.len(), d.attempts.len());
    let token = server_token(&server).await; // two virtual days later
    let (_, webhook) = get(
        &server,
        &format!("/notifications/webhooks/{webhook_id}"),
        &token,
    )
    .await;
    assert_eq!(webhook["status"], "disabled");
    // The messages API shows the attempts too.
    let (_, messages) = get(
        &server,
        &format!("/notifications/webhooks/{webhook_id}/messages"),
        &token,
    )
    .await;
    assert_eq!(messages["data"][0]["attempts"].as_array().unwrap().len(), 8);
    assert_eq!(messages["data"][0]["attempts"][0]["status"], "Failed");
    // Disabled: nothing more is sent.
    create_user(&server, &token).await;
    server.advance_async(Duration::from_secs(3600)).await;
    assert_eq!(inbox.lock().unwrap().received.len(), 8);
}

#[tokio::test]
async fn a_retry_after_a_failure_delivers_with_the_same_id() {
    let (server, _clock) = start(false);
    let token = server_token(&server).await;
    let (url, inbox) = receiver(&[503]).await;
    subscribe(&server, &token, &url, &["user.created"]).await;
    create_user(&server, &token).await;
    server.advance_async(Duration::from_secs(10)).await;
    let inbox = inbox.lock().unwrap();
    assert_eq!(inbox.received.len(), 2);
    let id = |i: usize| inbox.received[i].0[webhooks::HEADER_ID].clone();
    assert_eq!(id(0), id(1), "a retry carries the same webhook-id");
    let d = &server.webhook_deliveries()[0];
    assert_eq!(d.state, DeliveryState::Delivered);
    assert_eq!(
        d.attempts[1].at - d.attempts[0].at,
        time::Duration::seconds(5)
    );
}

#[tokio::test]
async fn the_smart_cache_refreshes_each_active_connection_daily_at_a_stable_time() {
    let (server, _clock) = start(true);
    let token = server_token(&server).await;
    let user = create_user(&server, &token).await;
    let job = connect(
        &server,
        &token,
        &user,
        "AU00000",
        "gavinBelson",
        "hooli2016",
    )
    .await;
    let cid = connection_of(&common::job(&server, &token, &job).await);
    server
        .advance_async(Duration::from_secs(5 * 24 * 3600))
        .await;
    let stats = server.stats();
    let background = stats.background_refreshes.get(&cid).copied().unwrap_or(0);
    assert!((4..=5).contains(&background), "daily: {background}");
    assert!(
        stats.refreshes.is_empty(),
        "no ad-hoc refresh: {:?}",
        stats.refreshes
    );
    let token = server_token(&server).await;
    let (_, jobs) = get(&server, &format!("/users/{user}/jobs"), &token).await;
    let mut times: Vec<time::OffsetDateTime> = jobs["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["id"] != job.as_str())
        .map(|j| {
            time::OffsetDateTime::parse(
                j["created"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
        })
        .collect();
    times.sort();
    assert_eq!(times.len() as u64, background);
    for pair in times.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            time::Duration::DAY,
            "same time every day"
        );
    }
    let (_, connection) = connection_json(&server, &token, &user, &cid).await;
    assert!(connection["lastUsed"].as_str().is_some());
}

async fn connection_json(
    server: &MockServer,
    token: &str,
    user: &str,
    cid: &str,
) -> (StatusCode, Value) {
    get(server, &format!("/users/{user}/connections/{cid}"), token).await
}
