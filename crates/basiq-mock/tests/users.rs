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
