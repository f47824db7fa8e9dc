//! MFA challenges at Pied Piper Bank (AU00002) and `POST /jobs/{id}/mfa`.

mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::json;

const SECS: fn(u64) -> Duration = Duration::from_secs;

#[tokio::test]
async fn token_challenge_answered_correctly() {
    let (server, clock, t, user) = setup().await;
    let client = client_token(&server, &user).await;
    let id = connect(&server, &t, &user, "AU00002", "jared", "django").await;
    clock.advance(SECS(3));
    let j = job(&server, &t, &id).await;
    assert_eq!(
        step_statuses(&j),
        ["success", "in-progress", "pending", "pending"]
    );
    let step = &j["steps"][1];
    assert_eq!(step["title"], "mfa-challenge");
    assert_eq!(
        step["result"],
        json!({
            "type": "mfa",
            "method": "token",
            "description": "Please enter the one-time password sent to your device",
            "input": ["OTP Password"],
            "expiryMs": 300000,
            "links": {"response": format!("{}/jobs/{id}/mfa", server.url())},
        })
    );
    clock.advance(SECS(60));
    assert_eq!(
        job(&server, &t, &id).await["steps"][1]["result"]["expiryMs"],
        240000
    );

    let (s, b) = answer_mfa(&server, &client, &id, &["1234"]).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    assert_eq!(b["id"], id.as_str());
    let j = job(&server, &t, &id).await;
    assert_eq!(
        step_statuses(&j),
        ["success", "success", "in-progress", "pending"]
    );
    clock.advance(SECS(10));
    let j = job(&server, &t, &id).await;
    assert_eq!(
        step_statuses(&j),
        ["success", "success", "success", "success"]
    );
    let cid = connection_of(&j);
    assert_eq!(
        connection(&server, &t, &user, &cid).await["status"],
        "active"
    );
}

#[tokio::test]
async fn two_security_questions() {
    let (server, clock, t, user) = setup().await;
    let client = client_token(&server, &user).await;
    let id = connect(&server, &t, &user, "AU00002", "Whistler", "ShowBox").await;
    clock.advance(SECS(3));
    let j = job(&server, &t, &id).await;
    assert_eq!(j["steps"][1]["result"]["method"], "security-questions");
    assert_eq!(
        j["steps"][1]["result"]["input"].as_array().map(Vec::len),
        Some(2)
    );
    let (s, _) = answer_mfa(&server, &client, &id, &["Basiq", "AU00000"]).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    clock.advance(SECS(10));
    assert_eq!(job_steps(&server, &t, &id).await, ["success"; 4]);
}

#[tokio::test]
async fn wrong_answer_fails_the_job() {
    let (server, clock, t, user) = setup().await;
    let client = client_token(&server, &user).await;
    let id = connect(&server, &t, &user, "AU00002", "gavinBelson", "hooli2016").await;
    clock.advance(SECS(3));
    let (s, _) = answer_mfa(&server, &client, &id, &["Pied Piper"]).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let j = job(&server, &t, &id).await;
    assert_eq!(
        step_statuses(&j),
        ["success", "failed", "pending", "pending"]
    );
    assert_eq!(j["steps"][1]["result"]["code"], "invalid-credentials");
    let (s, b) = answer_mfa(&server, &client, &id, &["Hooli"]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "nothing to answer any more");
    assert_eq!(basiq_error(&b)["code"], "parameter-not-valid");
    assert_eq!(
        connection(&server, &t, &user, &connection_of(&j)).await["status"],
        "invalid"
    );
}

#[tokio::test]
async fn unanswered_challenge_expires_after_five_minutes() {
    let (server, clock, t, user) = setup().await;
    let id = connect(&server, &t, &user, "AU00002", "richard", "tabsnotspaces").await;
    clock.advance(SECS(3 + 299));
    assert_eq!(job_steps(&server, &t, &id).await[1], "in-progress");
    clock.advance(SECS(1));
    let j = job(&server, &t, &id).await;
    assert_eq!(
        step_statuses(&j),
        ["success", "failed", "pending", "pending"]
    );
    assert_eq!(j["steps"][1]["result"]["code"], "user-action-required");
}

#[tokio::test]
async fn mfa_response_rules() {
    let (server, clock, t, user) = setup().await;
    let client = client_token(&server, &user).await;
    let id = connect(&server, &t, &user, "AU00002", "jared", "django").await;
    let path = format!("/jobs/{id}/mfa");

    let (s, b) = post(&server, &path, &client, json!({"mfa-response": ["1234"]})).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "verification still running: no challenge yet"
    );
    basiq_error(&b);
    clock.advance(SECS(3));
    let (s, b) = post(&server, &path, &t, json!({"mfa-response": ["1234"]})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "needs a CLIENT token");
    assert_eq!(basiq_error(&b)["code"], "forbidden-access");
    let (s, b) = post(&server, &path, &client, json!({})).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "parameter-not-supplied");
    let other = create_user(&server, &t).await;
    let other_client = client_token(&server, &other).await;
    let (s, _) = post(
        &server,
        &path,
        &other_client,
        json!({"mfa-response": ["1234"]}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another user's job");

    // Hooli (AU00000) never challenges.
    let id = connect(&server, &t, &user, "AU00000", "jared", "django").await;
    clock.advance(SECS(13));
    assert_eq!(job_steps(&server, &t, &id).await.len(), 3);
}

#[tokio::test]
async fn nucleus_bank_challenges_every_other_job() {
    let (server, clock, t, user) = setup().await;
    let client = client_token(&server, &user).await;
    let id = connect(&server, &t, &user, "AU00003", "jared", "django").await;
    let cid = connection_of(&job(&server, &t, &id).await);
    clock.advance(SECS(3));
    assert_eq!(
        job(&server, &t, &id).await["steps"][1]["title"],
        "mfa-challenge"
    );
    let (s, _) = answer_mfa(&server, &client, &id, &["1234"]).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    clock.advance(SECS(10));

    let refresh = format!("/users/{user}/connections/{cid}/refresh");
    let (s, b) = post(&server, &refresh, &t, json!({})).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let second = b["id"].as_str().expect("id").to_owned();
    clock.advance(SECS(13));
    let j = job(&server, &t, &second).await;
    assert_eq!(
        step_statuses(&j),
        ["success", "success", "success"],
        "no challenge this time"
    );

    let (_, b) = post(&server, &refresh, &t, json!({})).await;
    let third = b["id"].as_str().expect("id").to_owned();
    clock.advance(SECS(3));
    assert_eq!(
        job(&server, &t, &third).await["steps"][1]["title"],
        "mfa-challenge"
    );
}
