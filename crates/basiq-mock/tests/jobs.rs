//! Jobs: step progress over virtual time, failure users, listing, the duplicate pause.

mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const SECS: fn(u64) -> Duration = Duration::from_secs;

#[tokio::test]
async fn steps_progress_over_virtual_time() {
    let (server, clock, t, user) = setup().await;
    let id = connect(&server, &t, &user, "AU00000", "gavinBelson", "hooli2016").await;

    let j = job(&server, &t, &id).await;
    assert_eq!(step_statuses(&j), ["in-progress", "pending", "pending"]);
    assert!(j["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .all(|s| s["result"].is_null()));
    assert_eq!(j["created"], j["updated"]);

    clock.advance(SECS(3));
    let j = job(&server, &t, &id).await;
    assert_eq!(step_statuses(&j), ["success", "in-progress", "pending"]);
    let cid = connection_of(&j);
    assert_eq!(
        j["steps"][0]["result"],
        json!({"type": "link", "url": format!("/users/{user}/connections/{cid}")})
    );
    assert_eq!(j["updated"], "2024-05-01T00:00:03Z");

    clock.advance(SECS(4));
    assert_eq!(
        job_steps(&server, &t, &id).await,
        ["success", "success", "in-progress"]
    );

    clock.advance(SECS(5));
    assert_eq!(
        job_steps(&server, &t, &id).await,
        ["success", "success", "in-progress"]
    );

    clock.advance(SECS(1));
    let j = job(&server, &t, &id).await;
    assert_eq!(step_statuses(&j), ["success", "success", "success"]);
    assert_eq!(j["updated"], "2024-05-01T00:00:13Z");
    assert_eq!(
        j["steps"][2]["result"]["url"],
        format!("/users/{user}/transactions?filter=institution.id.eq('AU00000')")
    );

    clock.advance(SECS(1800));
    assert_eq!(
        job(&server, &t, &id).await["updated"],
        "2024-05-01T00:00:13Z",
        "no change after the end"
    );

    insta::assert_json_snapshot!(
        "job_success",
        scrub(&server, &j, &[(&user, "[user-id]"), (&cid, "[connection-id]"), (&id, "[job-id]")]),
        { ".created" => "[date]", ".updated" => "[date]" }
    );
}

/// Runs a job for `login` to its end and returns it.
async fn finished_job(
    login: &str,
    password: &str,
) -> (Value, basiq_mock::MockServer, String, String) {
    let (server, clock, t, user) = setup().await;
    let id = connect(&server, &t, &user, "AU00000", login, password).await;
    clock.advance(SECS(600));
    let j = job(&server, &t, &id).await;
    let scrubbed = scrub(
        &server,
        &j,
        &[
            (&user, "[user-id]"),
            (&connection_of(&j), "[connection-id]"),
            (&id, "[job-id]"),
        ],
    );
    (scrubbed, server, t, user)
}

#[tokio::test]
async fn bighead_fails_verify_with_invalid_credentials() {
    let (j, ..) = finished_job("bighead", "password").await;
    assert_eq!(step_statuses(&j), ["failed", "pending", "pending"]);
    assert_eq!(j["steps"][0]["result"]["code"], "invalid-credentials");
    assert_eq!(j["steps"][0]["result"]["detail"], "Account is locked");
    assert!(j["steps"][1]["result"].is_null());
    insta::assert_json_snapshot!("job_failed_invalid_credentials", j, { ".created" => "[date]", ".updated" => "[date]" });
}

#[tokio::test]
async fn erlich_fails_with_account_not_accessible() {
    let (j, ..) = finished_job("erlich", "aviato").await;
    assert_eq!(step_statuses(&j), ["failed", "pending", "pending"]);
    assert_eq!(
        j["steps"][0]["result"]["code"],
        "account-not-accessible-requires-user-action"
    );
    insta::assert_json_snapshot!("job_failed_account_not_accessible", j, { ".created" => "[date]", ".updated" => "[date]" });
}

#[tokio::test]
async fn jian_yang_fails_with_service_unavailable() {
    let (j, ..) = finished_job("jianYang", "nothotdog").await;
    assert_eq!(step_statuses(&j), ["failed", "pending", "pending"]);
    assert_eq!(j["steps"][0]["result"]["code"], "service-unavailable");
    assert_eq!(
        j["steps"][0]["result"]["detail"],
        "Service is currently unavailable. Please try again later."
    );
    insta::assert_json_snapshot!("job_failed_service_unavailable", j, { ".created" => "[date]", ".updated" => "[date]" });
}

#[tokio::test]
async fn every_test_login_fails_where_documented() {
    let cases: &[(&str, &str, usize, &str)] = &[
        ("maintenance", "maintenance", 0, "maintenance"),
        ("authfail", "authfail", 0, "authorization-failed"),
        ("useraction", "useraction", 0, "user-action-required"),
        ("sysdown", "sysdown", 1, "system-unavailable"),
        ("connectorerr", "connectorerr", 1, "connector-error"),
        ("timeout", "timeout", 2, "job-timed-out"),
        ("unknownerr", "unknownerr", 2, "unknown-error"),
        ("gavinBelson", "wrong-password", 0, "invalid-credentials"),
        ("nobody", "nothing", 0, "invalid-credentials"),
    ];
    for (login, password, step, code) in cases {
        let (j, ..) = finished_job(login, password).await;
        let statuses = step_statuses(&j);
        assert_eq!(statuses[*step], "failed", "{login}: {statuses:?}");
        assert!(statuses[..*step].iter().all(|s| s == "success"), "{login}");
        assert!(
            statuses[step + 1..].iter().all(|s| s == "pending"),
            "{login}"
        );
        assert_eq!(j["steps"][*step]["result"]["code"], *code, "{login}");
    }
    for (login, password) in [
        ("Wentworth-Smith", "whislter"),
        ("Whistler", "ShowBox"),
        ("Gilfoyle", "PiedPiper"),
        ("jared", "django"),
        ("richard", "tabsnotspaces"),
        ("laurieBream", "business2024"),
        ("ashMann", "hooli2024"),
    ] {
        let (j, ..) = finished_job(login, password).await;
        assert_eq!(
            step_statuses(&j),
            ["success", "success", "success"],
            "{login}"
        );
    }
}

#[tokio::test]
async fn slow_login_takes_a_minute_per_step() {
    let (server, clock, t, user) = setup().await;
    let id = connect(&server, &t, &user, "AU00000", "slow", "slow").await;
    clock.advance(SECS(119));
    assert_eq!(
        job_steps(&server, &t, &id).await,
        ["success", "in-progress", "pending"]
    );
    clock.advance(SECS(61));
    assert_eq!(
        job_steps(&server, &t, &id).await,
        ["success", "success", "success"]
    );
}

#[tokio::test]
async fn flaky_login_fails_once_then_succeeds() {
    let (server, clock, t, user) = setup().await;
    let first = connect(&server, &t, &user, "AU00000", "flaky", "flaky").await;
    clock.advance(SECS(60));
    let j = job(&server, &t, &first).await;
    assert_eq!(j["steps"][0]["result"]["code"], "service-unavailable");
    let again = connect(&server, &t, &user, "AU00000", "flaky", "flaky").await;
    assert_eq!(
        connection_of(&job(&server, &t, &again).await),
        connection_of(&j),
        "same login, same connection"
    );
    clock.advance(SECS(60));
    assert_eq!(
        job_steps(&server, &t, &again).await,
        ["success", "success", "success"]
    );
}

#[tokio::test]
async fn major_outage_fails_new_jobs_with_service_unavailable() {
    let (server, clock, t, user) = setup().await;
    server
        .set_connector_status("AU00000", "major-outage")
        .expect("status");
    let id = connect(&server, &t, &user, "AU00000", "gavinBelson", "hooli2016").await;
    clock.advance(SECS(60));
    let j = job(&server, &t, &id).await;
    assert_eq!(step_statuses(&j), ["failed", "pending", "pending"]);
    assert_eq!(j["steps"][0]["result"]["code"], "service-unavailable");
    server
        .set_connector_status("AU00000", "operational")
        .expect("status");
    let id = connect(&server, &t, &user, "AU00000", "gavinBelson", "hooli2016").await;
    clock.advance(SECS(60));
    assert_eq!(
        job_steps(&server, &t, &id).await,
        ["success", "success", "success"]
    );
}

#[tokio::test]
async fn list_user_jobs_filters_and_keeps_seven_days() {
    let (server, clock, t, user) = setup().await;
    let old = connect(&server, &t, &user, "AU00000", "gavinBelson", "hooli2016").await;
    clock.advance(Duration::from_secs(6 * 24 * 3600));
    let t = server_token(&server).await;
    let recent = connect(&server, &t, &user, "AU00002", "richard", "tabsnotspaces").await;
    let recent_cid = connection_of(&job(&server, &t, &recent).await);

    let (s, list) = get(&server, &format!("/users/{user}/jobs"), &t).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["type"], "list");
    assert_eq!(list["size"], 2);
    assert_eq!(
        list["links"]["self"],
        format!("{}/users/{user}/jobs", server.url())
    );
    assert_eq!(list["data"][0]["id"], recent.as_str(), "newest first");
    assert_eq!(list["data"][0]["institution"]["id"], "AU00002");

    let (_, filtered) = get(
        &server,
        &format!("/users/{user}/jobs?filter=connection.id.eq('{recent_cid}')"),
        &t,
    )
    .await;
    assert_eq!(filtered["size"], 1);
    assert_eq!(filtered["data"][0]["id"], recent.as_str());

    clock.advance(Duration::from_secs(24 * 3600));
    let t = server_token(&server).await;
    let (_, list) = get(&server, &format!("/users/{user}/jobs"), &t).await;
    assert_eq!(
        list["size"], 1,
        "jobs older than 7 days drop out of the list"
    );
    let (s, _) = get(&server, &format!("/jobs/{old}"), &t).await;
    assert_eq!(s, StatusCode::OK, "but stay readable by id");

    let (s, b) = get(
        &server,
        &format!("/users/{user}/jobs?filter=connection.id.gt('x')"),
        &t,
    )
    .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "parameter-not-valid");
}

#[tokio::test]
async fn client_tokens_read_only_their_users_jobs() {
    let (server, _clock, t, user) = setup().await;
    let other = create_user(&server, &t).await;
    let mine = connect(&server, &t, &user, "AU00000", "jared", "django").await;
    let theirs = connect(&server, &t, &other, "AU00000", "jared", "django").await;
    let client = client_token(&server, &user).await;
    let (s, _) = get(&server, &format!("/jobs/{mine}"), &client).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = get(&server, &format!("/jobs/{theirs}"), &client).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = get(&server, "/jobs/nope", &t).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "resource-not-found");
}

#[tokio::test]
async fn duplicate_attempt_is_paused_six_minutes() {
    let (server, clock, t, user) = setup().await;
    let first = connect(&server, &t, &user, "AU00000", "gavinBelson", "hooli2016").await;
    clock.advance(SECS(2));
    let second = connect(&server, &t, &user, "AU00000", "gavinBelson", "hooli2016").await;
    assert_ne!(first, second);
    assert_eq!(server.stats().paused_attempts, 1);

    assert_eq!(
        job_steps(&server, &t, &second).await,
        ["pending", "pending", "pending"]
    );
    clock.advance(SECS(60));
    assert_eq!(
        job_steps(&server, &t, &first).await,
        ["success", "success", "success"]
    );
    assert_eq!(
        job_steps(&server, &t, &second).await,
        ["pending", "pending", "pending"],
        "still paused after the first finished"
    );

    clock.advance(SECS(360 - 60 - 1));
    assert_eq!(
        job_steps(&server, &t, &second).await,
        ["pending", "pending", "pending"]
    );
    clock.advance(SECS(1));
    let j = job(&server, &t, &second).await;
    assert_eq!(
        step_statuses(&j),
        ["in-progress", "pending", "pending"],
        "runs 6 minutes after it was created"
    );
    assert_eq!(j["updated"], "2024-05-01T00:06:02Z");
    clock.advance(SECS(13));
    assert_eq!(
        job_steps(&server, &t, &second).await,
        ["success", "success", "success"]
    );

    // Once nothing is in progress, a new attempt is not paused.
    let third = connect(&server, &t, &user, "AU00000", "gavinBelson", "hooli2016").await;
    assert_eq!(job_steps(&server, &t, &third).await[0], "in-progress");
    assert_eq!(server.stats().paused_attempts, 1);

    // A different login at the same institution is not a duplicate.
    let other = connect(&server, &t, &user, "AU00000", "jared", "django").await;
    assert_eq!(job_steps(&server, &t, &other).await[0], "in-progress");
}
