//! Connections: status from jobs, listing and filters, refresh rules, purge, delete.

mod common;

use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const SECS: fn(u64) -> Duration = Duration::from_secs;

async fn connected(
    login: &str,
    password: &str,
    institution: &str,
) -> (
    basiq_mock::MockServer,
    basiq_core::clock::ManualClock,
    String,
    String,
    String,
    String,
) {
    let (server, clock, t, user) = setup().await;
    let job_id = connect(&server, &t, &user, institution, login, password).await;
    let cid = connection_of(&job(&server, &t, &job_id).await);
    (server, clock, t, user, cid, job_id)
}

async fn refresh(
    server: &basiq_mock::MockServer,
    t: &str,
    user: &str,
    cid: &str,
) -> (StatusCode, Value) {
    post(
        server,
        &format!("/users/{user}/connections/{cid}/refresh"),
        t,
        json!({}),
    )
    .await
}

#[tokio::test]
async fn status_follows_the_latest_job() {
    let (server, clock, t, user, cid, _) = connected("gavinBelson", "hooli2016", "AU00000").await;
    let c = connection(&server, &t, &user, &cid).await;
    assert_eq!(c["status"], "pending");
    assert!(c["lastUsed"].is_null());
    clock.advance(SECS(3));
    assert_eq!(
        connection(&server, &t, &user, &cid).await["status"],
        "active",
        "active once verified"
    );
    clock.advance(SECS(10));
    let c = connection(&server, &t, &user, &cid).await;
    assert_eq!(c["status"], "active");
    assert_eq!(c["lastUsed"], "2024-05-01T00:00:13Z");
    assert_eq!(c["method"], "web");
    assert_eq!(
        c["expiryDate"], "",
        "empty on web connections (basiq-api.md §3.3)"
    );
    assert_eq!(
        c["institution"]["links"]["self"],
        format!("{}/connectors/AU00000/web", server.url())
    );
    insta::assert_json_snapshot!(
        "connection",
        scrub(&server, &c, &[(&user, "[user-id]"), (&cid, "[connection-id]")]),
        { ".createdDate" => "[date]", ".lastUsed" => "[date]" }
    );

    let (s, user_json) = get(&server, &format!("/users/{user}"), &t).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(user_json["connections"]["count"], 1);
    assert_eq!(user_json["connections"]["data"][0]["id"], cid.as_str());
}

#[tokio::test]
async fn failed_job_makes_the_connection_invalid_and_update_fixes_it() {
    let (server, clock, t, user, cid, _) = connected("gavinBelson", "wrong", "AU00000").await;
    clock.advance(SECS(60));
    assert_eq!(
        connection(&server, &t, &user, &cid).await["status"],
        "invalid"
    );

    let (s, b) = refresh(&server, &t, &user, &cid).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "invalid connections cannot be refreshed"
    );
    assert_eq!(
        basiq_error(&b)["detail"],
        "Cannot login to target institution using supplied credentials"
    );

    // Update credentials through the consent stand-in (connectionId).
    let (s, b) = consent_json(&server, &t, json!({"userId": user, "connectionId": cid, "loginId": "gavinBelson", "password": "hooli2016"})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let job_id = b["jobIds"][0].as_str().expect("job").to_owned();
    assert_eq!(connection_of(&job(&server, &t, &job_id).await), cid);
    assert_eq!(
        connection(&server, &t, &user, &cid).await["status"],
        "invalid",
        "until verified"
    );
    clock.advance(SECS(13));
    assert_eq!(
        connection(&server, &t, &user, &cid).await["status"],
        "active"
    );
}

#[tokio::test]
async fn list_and_filter_connections() {
    let (server, clock, t, user) = setup().await;
    connect(&server, &t, &user, "AU00000", "gavinBelson", "hooli2016").await;
    connect(&server, &t, &user, "AU00002", "bighead", "password").await;
    clock.advance(SECS(60));
    let (s, list) = get(&server, &format!("/users/{user}/connections"), &t).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["type"], "list");
    assert_eq!(list["data"].as_array().expect("data").len(), 2);
    assert_eq!(
        list["links"]["self"],
        format!("{}/users/{user}/connections", server.url())
    );

    let q = |f: &str| format!("/users/{user}/connections?filter={f}");
    let (_, l) = get(&server, &q("status.eq('active')"), &t).await;
    assert_eq!(l["data"].as_array().expect("data").len(), 1);
    assert_eq!(l["data"][0]["institution"]["id"], "AU00000");
    let (_, l) = get(&server, &q("institution.id.eq('AU00002')"), &t).await;
    assert_eq!(l["data"][0]["status"], "invalid");
    let id = l["data"][0]["id"].as_str().expect("id").to_owned();
    let (_, l) = get(&server, &q(&format!("connection.id.eq('{id}')")), &t).await;
    assert_eq!(l["data"].as_array().expect("data").len(), 1);
    let (s, b) = get(&server, &q("colour.eq('red')"), &t).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    basiq_error(&b);
}

#[tokio::test]
async fn refresh_returns_the_running_job_with_200() {
    let (server, clock, t, user, cid, first) =
        connected("gavinBelson", "hooli2016", "AU00000").await;
    let (s, b) = refresh(&server, &t, &user, &cid).await;
    assert_eq!(s, StatusCode::OK, "the connect job is still running");
    assert_eq!(b["id"], first.as_str());
    assert_eq!(b["type"], "job");
    assert_eq!(b["links"]["self"], format!("{}/jobs/{first}", server.url()));

    clock.advance(SECS(13));
    let (s, b) = refresh(&server, &t, &user, &cid).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let refresh_job = b["id"].as_str().expect("id").to_owned();
    assert_ne!(refresh_job, first);
    let (s, b) = refresh(&server, &t, &user, &cid).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["id"], refresh_job.as_str());

    let stats = server.stats();
    assert_eq!(stats.refreshes.get(&cid), Some(&1));
    assert_eq!(stats.duplicate_refreshes, 2);
    assert_eq!(
        stats
            .requests
            .get("POST /users/{user_id}/connections/{connection_id}/refresh"),
        Some(&3)
    );
}

#[tokio::test]
async fn last_used_moves_when_a_refresh_completes() {
    let (server, clock, t, user, cid, _) = connected("gavinBelson", "hooli2016", "AU00000").await;
    clock.advance(SECS(1800));
    let (s, _) = refresh(&server, &t, &user, &cid).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    clock.advance(SECS(12));
    assert_eq!(
        connection(&server, &t, &user, &cid).await["lastUsed"],
        "2024-05-01T00:00:13Z"
    );
    clock.advance(SECS(1));
    assert_eq!(
        connection(&server, &t, &user, &cid).await["lastUsed"],
        "2024-05-01T00:30:13Z"
    );
}

#[tokio::test]
async fn a_failed_refresh_invalidates_the_connection() {
    let (server, clock, t, user, cid, _) = connected("gavinBelson", "hooli2016", "AU00000").await;
    clock.advance(SECS(13));
    server
        .set_connector_status("AU00000", "major-outage")
        .expect("status");
    let (s, b) = refresh(&server, &t, &user, &cid).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    clock.advance(SECS(13));
    let j = job(&server, &t, b["id"].as_str().expect("id")).await;
    assert_eq!(j["steps"][0]["result"]["code"], "service-unavailable");
    assert_eq!(
        connection(&server, &t, &user, &cid).await["status"],
        "invalid"
    );
}

#[tokio::test]
async fn open_banking_allows_twenty_refreshes_per_utc_day() {
    let (server, clock, t, user) = setup().await;
    let (s, b) = consent_json(
        &server,
        &t,
        json!({"userId": user, "institutionId": "AU00001"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let cid = connection_of(&job(&server, &t, b["jobIds"][0].as_str().expect("job")).await);
    clock.advance(SECS(13));
    let c = connection(&server, &t, &user, &cid).await;
    assert_eq!(c["method"], "open-banking");
    assert_eq!(c["status"], "active");
    let expiry = c["expiryDate"].as_str().unwrap_or_default();
    assert!(
        time::OffsetDateTime::parse(expiry, &time::format_description::well_known::Rfc3339).is_ok(),
        "open banking carries the consent's expiry: {c}"
    );
    for i in 0..20 {
        let (s, _) = refresh(&server, &t, &user, &cid).await;
        assert_eq!(s, StatusCode::ACCEPTED, "refresh {i}");
        clock.advance(SECS(13));
    }
    let (s, b) = refresh(&server, &t, &user, &cid).await;
    assert_error(s, &b, StatusCode::TOO_MANY_REQUESTS, "too-many-requests");
    assert_eq!(server.stats().refreshes.get(&cid), Some(&20));

    // The quota resets at the next UTC midnight.
    clock.advance(SECS(24 * 3600 - 273 - 1));
    let t = server_token(&server).await;
    let (s, _) = refresh(&server, &t, &user, &cid).await;
    assert_eq!(
        s,
        StatusCode::TOO_MANY_REQUESTS,
        "23:59:59 is still the same day"
    );
    clock.advance(SECS(1));
    let (s, _) = refresh(&server, &t, &user, &cid).await;
    assert_eq!(s, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn web_connections_have_no_daily_quota() {
    let (server, clock, t, user, cid, _) = connected("gavinBelson", "hooli2016", "AU00000").await;
    clock.advance(SECS(13));
    for _ in 0..25 {
        let (s, _) = refresh(&server, &t, &user, &cid).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        clock.advance(SECS(13));
    }
}

#[tokio::test]
async fn refresh_all_refreshes_active_connections() {
    let (server, clock, t, user) = setup().await;
    connect(&server, &t, &user, "AU00000", "gavinBelson", "hooli2016").await;
    connect(&server, &t, &user, "AU00002", "bighead", "password").await;
    clock.advance(SECS(60));
    let (s, b) = post(
        &server,
        &format!("/users/{user}/connections/refresh"),
        &t,
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(b["type"], "list");
    let data = b["data"].as_array().expect("data");
    assert_eq!(data.len(), 1, "the invalid connection is skipped");
    assert_eq!(data[0]["type"], "job");
}

#[tokio::test]
async fn purge_only_active_connections() {
    let (server, clock, t, user, cid, _) = connected("gavinBelson", "hooli2016", "AU00000").await;
    let purge = format!("/users/{user}/connections/{cid}/purge");
    let (s, b) = post(&server, &purge, &t, json!({})).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "pending connections cannot be purged"
    );
    assert_eq!(basiq_error(&b)["code"], "parameter-not-valid");
    clock.advance(SECS(13));
    let (s, b) = post(&server, &purge, &t, json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let c = connection(&server, &t, &user, &cid).await;
    assert_eq!(c["id"], cid.as_str(), "the connection id remains");
    assert_eq!(c["status"], "active");
    let (s, _) = refresh(&server, &t, &user, &cid).await;
    assert_eq!(s, StatusCode::ACCEPTED, "and can be refreshed again");
    let (s, _) = post(
        &server,
        &format!("/users/{user}/connections/nope/purge"),
        &t,
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn delete_connection() {
    let (server, _clock, t, user, cid, _) = connected("gavinBelson", "hooli2016", "AU00000").await;
    let url = format!("{}/users/{user}/connections/{cid}", server.url());
    let (s, b) = call(Method::DELETE, &url, &t, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(b.is_null());
    let (s, _) = get(&server, &format!("/users/{user}/connections/{cid}"), &t).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(Method::DELETE, &url, &t, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, u) = get(&server, &format!("/users/{user}"), &t).await;
    assert_eq!(u["connections"]["count"], 0);
}

#[tokio::test]
async fn other_users_connections_are_not_found() {
    let (server, _clock, t, _user, cid, _) = connected("gavinBelson", "hooli2016", "AU00000").await;
    let other = create_user(&server, &t).await;
    let (s, _) = get(&server, &format!("/users/{other}/connections/{cid}"), &t).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = refresh(&server, &t, &other, &cid).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
