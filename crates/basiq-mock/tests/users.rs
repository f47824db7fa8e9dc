//! Users CRUD.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn create_get_update_delete() {
    let (server, _clock, t) = with_token().await;
    let (s, user) = post(
        &server,
        "/users",
        &t,
        json!({"email": "gavin@hooli.com", "firstName": "Gavin", "lastName": "Belson"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(user["type"], "user");
    assert_eq!(user["name"], "Gavin Belson");
    assert_eq!(
        user["connections"],
        json!({"type": "list", "count": 0, "data": []})
    );
    let id = user["id"].as_str().expect("id").to_owned();
    assert_eq!(
        user["links"]["self"],
        format!("{}/users/{id}", server.url())
    );
    assert_eq!(
        user["links"]["transactions"],
        format!("{}/users/{id}/transactions", server.url())
    );

    let (s, got) = get(&server, &format!("/users/{id}"), &t).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got, user);

    let (s, updated) = post(
        &server,
        &format!("/users/{id}"),
        &t,
        json!({"mobile": "+61410888999"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(updated["mobile"], "+61410888999");
    assert_eq!(
        updated["email"], "gavin@hooli.com",
        "partial update keeps other fields"
    );

    let (s, body) = delete(&server, &format!("/users/{id}"), &t).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(body.is_null());
    let (s, body) = get(&server, &format!("/users/{id}"), &t).await;
    assert_error(s, &body, StatusCode::NOT_FOUND, "resource-not-found");
    let (s, _) = delete(&server, &format!("/users/{id}"), &t).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn create_validates_contact_details() {
    let (server, _clock, t) = with_token().await;
    let (s, b) = post(&server, "/users", &t, json!({"firstName": "Nobody"})).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "parameter-not-supplied");
    assert_eq!(
        basiq_error(&b)["detail"],
        "One of 'email' or 'mobile' is required."
    );

    let (s, b) = post(&server, "/users", &t, json!({"email": "not-an-email"})).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "parameter-not-valid");

    let (s, b) = post(&server, "/users", &t, json!({"mobile": "0410 888 999"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "mobile must be international");
    assert_eq!(basiq_error(&b)["code"], "parameter-not-valid");

    let (s, _) = post(&server, "/users", &t, json!({"mobile": "+61410888999"})).await;
    assert_eq!(s, StatusCode::CREATED, "mobile alone is enough");

    let (s, b) = post(
        &server,
        "/users",
        &t,
        json!({"email": "a@b.co", "businessIdNo": "123"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        basiq_error(&b)["detail"],
        "Business name is required when business number is provided."
    );
}

#[tokio::test]
async fn unknown_user_is_404_on_every_user_route() {
    let (server, _clock, t) = with_token().await;
    for path in ["/users/nope", "/users/nope/connections", "/users/nope/jobs"] {
        let (s, b) = get(&server, path, &t).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(basiq_error(&b)["code"], "resource-not-found");
    }
    let (s, _) = post(&server, "/users/nope", &t, json!({"email": "a@b.co"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deleting_a_user_deletes_their_jobs() {
    let (server, _clock, t) = with_token().await;
    let user = create_user(&server, &t).await;
    let job = connect(&server, &t, &user, "AU00000", "gavinBelson", "hooli2016").await;
    let (s, _) = delete(&server, &format!("/users/{user}"), &t).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = get(&server, &format!("/jobs/{job}"), &t).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn user_lists_the_accounts_of_its_connections() {
    let (server, clock, t, user) = setup().await;
    connect(&server, &t, &user, "AU00000", "gavinBelson", "hooli2016").await;
    let (_, u) = get(&server, &format!("/users/{user}"), &t).await;
    assert_eq!(u["accounts"]["count"], 0, "nothing retrieved yet");
    clock.advance(std::time::Duration::from_secs(13));
    let (_, u) = get(&server, &format!("/users/{user}"), &t).await;
    let (s, accounts) = get(&server, &format!("/users/{user}/accounts"), &t).await;
    assert_eq!(s, StatusCode::OK);
    let n = accounts["data"].as_array().map_or(0, Vec::len);
    assert!(n > 0);
    assert_eq!(u["accounts"]["count"], n);
    assert_eq!(u["accounts"]["data"][0]["id"], accounts["data"][0]["id"]);
}

#[tokio::test]
async fn accounts_of_a_deleted_connection_stay_on_the_user_until_the_user_goes() {
    let (server, clock, t, user) = setup().await;
    let job_id = connect(&server, &t, &user, "AU00000", "gavinBelson", "hooli2016").await;
    let cid = connection_of(&job(&server, &t, &job_id).await);
    clock.advance(std::time::Duration::from_secs(13));
    let (_, before) = get(&server, &format!("/users/{user}"), &t).await;
    let (s, _) = delete(&server, &format!("/users/{user}/connections/{cid}"), &t).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, after) = get(&server, &format!("/users/{user}"), &t).await;
    assert_eq!(after["connections"]["count"], 0);
    assert_eq!(after["accounts"], before["accounts"]);

    let (s, _) = delete(&server, &format!("/users/{user}"), &t).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = get(&server, &format!("/users/{user}/accounts"), &t).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// The ids of a list's `data`.
fn ids(list: &serde_json::Value) -> Vec<String> {
    list["data"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `GET /users/{id}` (read twice: the second is served from what the first rendered), checked
/// against the user's own lists, which are built afresh on every request.
async fn current_user(server: &basiq_mock::MockServer, t: &str, user: &str) -> serde_json::Value {
    let (s, first) = get(server, &format!("/users/{user}"), t).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    let (_, again) = get(server, &format!("/users/{user}"), t).await;
    assert_eq!(again, first);
    let (_, accounts) = get(server, &format!("/users/{user}/accounts"), t).await;
    assert_eq!(ids(&first["accounts"]), ids(&accounts));
    assert_eq!(first["accounts"]["count"], accounts["count"]);
    let (_, connections) = get(server, &format!("/users/{user}/connections"), t).await;
    assert_eq!(ids(&first["connections"]), ids(&connections));
    first
}

#[tokio::test]
async fn every_change_after_a_read_is_in_the_next_read() {
    let (server, clock, t, user) = setup().await;
    let u = current_user(&server, &t, &user).await;
    assert_eq!(u["connections"]["count"], 0);
    assert!(u["links"]["auth_link"].is_null());

    // A new connection, its job still running: listed, no accounts yet.
    let job_id = connect(&server, &t, &user, "AU00000", "gavinBelson", "hooli2016").await;
    let cid = connection_of(&job(&server, &t, &job_id).await);
    let u = current_user(&server, &t, &user).await;
    assert_eq!(ids(&u["connections"]), std::slice::from_ref(&cid));
    assert_eq!(u["accounts"]["count"], 0);
    let c = connection(&server, &t, &user, &cid).await;
    assert_eq!(c["status"], "pending");
    assert_eq!(c["accounts"]["count"], 0);

    // Only virtual time passes: the job retrieves the accounts.
    clock.advance(std::time::Duration::from_secs(13));
    let u = current_user(&server, &t, &user).await;
    let accounts = ids(&u["accounts"]);
    assert!(!accounts.is_empty());
    let c = connection(&server, &t, &user, &cid).await;
    assert_eq!(c["status"], "active");
    assert_eq!(ids(&c["accounts"]), accounts);
    let last_used = c["lastUsed"].clone();
    assert!(last_used.is_string(), "{c}");

    // The user's own fields.
    let (s, _) = post(
        &server,
        &format!("/users/{user}"),
        &t,
        json!({ "firstName": "Hoover" }),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let u = current_user(&server, &t, &user).await;
    assert_eq!(u["firstName"], "Hoover");
    assert_eq!(u["name"], "Hoover Belson");

    // An auth link, until it expires.
    let (s, _) = post(&server, &format!("/users/{user}/auth_link"), &t, json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    let u = current_user(&server, &t, &user).await;
    assert!(u["links"]["auth_link"].is_string(), "{u}");
    clock.advance(std::time::Duration::from_secs(8 * 24 * 3600));
    let t = server_token(&server).await; // the first one has expired too
    let u = current_user(&server, &t, &user).await;
    assert!(u["links"]["auth_link"].is_null(), "{u}");

    // A purge empties the accounts; a refresh brings them back once its job has run.
    let purge = format!("/users/{user}/connections/{cid}/purge");
    let (s, _) = post(&server, &purge, &t, json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let u = current_user(&server, &t, &user).await;
    assert_eq!(u["accounts"]["count"], 0);
    assert_eq!(
        connection(&server, &t, &user, &cid).await["accounts"]["count"],
        0
    );
    let refresh = format!("/users/{user}/connections/{cid}/refresh");
    let (s, _) = post(&server, &refresh, &t, json!({})).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    clock.advance(std::time::Duration::from_secs(13));
    let u = current_user(&server, &t, &user).await;
    assert!(u["accounts"]["count"].as_u64() > Some(0), "{u}");
    let c = connection(&server, &t, &user, &cid).await;
    assert_ne!(c["lastUsed"], last_used, "the refresh is the last use");

    // A second connection adds its accounts; deleting the first keeps the first's on the user.
    let second = connect(
        &server,
        &t,
        &user,
        "AU00000",
        "richardHendricks",
        "piedpiper",
    )
    .await;
    let second = connection_of(&job(&server, &t, &second).await);
    clock.advance(std::time::Duration::from_secs(13));
    let both = current_user(&server, &t, &user).await;
    assert_eq!(ids(&both["connections"]), [cid.clone(), second.clone()]);
    let (s, _) = delete(&server, &format!("/users/{user}/connections/{cid}"), &t).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let u = current_user(&server, &t, &user).await;
    assert_eq!(ids(&u["connections"]), [second]);
    assert_eq!(u["accounts"], both["accounts"]);
    let (s, _) = get(&server, &format!("/users/{user}/connections/{cid}"), &t).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The user goes.
    let (s, _) = delete(&server, &format!("/users/{user}"), &t).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = get(&server, &format!("/users/{user}"), &t).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
