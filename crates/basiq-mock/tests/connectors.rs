//! Connectors: listing, filters, one connector, settable status.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn list_connectors() {
    let (server, _clock, t) = with_token().await;
    let (s, list) = get(&server, "/connectors", &t).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["type"], "list");
    assert_eq!(list["totalCount"], 4);
    assert_eq!(
        list["links"]["self"],
        format!("{}/connectors", server.url())
    );
    let ids: Vec<&str> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids, ["AU00000", "AU00001", "AU00002", "AU00003"]);
    assert_eq!(list["data"][1]["method"], "openbanking");

    let (_, one) = get(&server, "/connectors/AU00000/web", &t).await;
    assert_eq!(one, list["data"][0]);
    insta::assert_json_snapshot!("connector", scrub(&server, &one, &[]));

    let (s, _) = get(&server, "/connectors/AU00001/open-banking", &t).await;
    assert_eq!(s, StatusCode::OK, "both spellings of the method");
    let (s, b) = get(&server, "/connectors/AU00000/openbanking", &t).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "resource-not-found");
}

#[tokio::test]
async fn filters_and_admin_status() {
    let (server, _clock, t) = with_token().await;
    let (_, resp) = admin_post(
        &server,
        "/__admin/connectors/AU00002",
        json!({"status": "major-outage"}),
    )
    .await;
    assert_eq!(resp["data"][0]["status"], "major-outage");

    let (_, l) = get(
        &server,
        "/connectors?filter=connector.status.eq('major-outage')",
        &t,
    )
    .await;
    assert_eq!(l["totalCount"], 1);
    assert_eq!(l["data"][0]["id"], "AU00002");
    let (_, l) = get(
        &server,
        "/connectors?filter=connector.id.in('AU00000','AU00001')",
        &t,
    )
    .await;
    assert_eq!(l["totalCount"], 2);
    let (_, l) = get(
        &server,
        "/connectors?filter=connector.method.eq('web'),connector.status.eq('operational')",
        &t,
    )
    .await;
    assert_eq!(l["totalCount"], 2, "{l}");
    let (s, b) = get(&server, "/connectors?filter=connector.colour.eq('red')", &t).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    basiq_error(&b);

    let (s, _) = admin_post(
        &server,
        "/__admin/connectors/AU00000",
        json!({"status": "on-fire"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = admin_post(
        &server,
        "/__admin/connectors/AU12345",
        json!({"status": "operational"}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(server.set_connector_status("AU00000", "nonsense").is_err());
}
