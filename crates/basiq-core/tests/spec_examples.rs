//! Every 2xx response example Basiq publishes in its OpenAPI files decodes through the operation
//! that receives that answer, by the same `parse` the clients call.
//!
//! Basiq's examples are the closest thing to real payloads its documentation offers, and they
//! disagree with its schemas in places; a model that rejects one would fail on a live answer of
//! that shape. The examples are checked-in copies under `fixtures/json/spec-examples/` (its
//! README says where each comes from). Each row of [`EXAMPLES`] also checks a few decoded fields
//! against the example itself, so a model that skipped everything could not pass, and every file
//! in that folder must have a row, so a new example cannot be skipped silently.

use std::collections::BTreeSet;
use std::path::PathBuf;

use basiq_core::api::models::{NewReport, Webhook, WebhookRequest};
use basiq_core::api::operations::{
    CreateReport, CreateWebhook, Enrich, GetEvent, GetEventType, GetJob, GetReport, GetUser,
    GetWebhook, GetWebhookMessage, ListAffordability, ListAffordabilityTransactions, ListConsents,
    ListEventTypes, ListEvents, ListIdentities, ListReportTypes, ListReports, ListWebhookMessages,
    ListWebhooks, UpdateWebhook,
};
use basiq_core::engine::operation::Operation;
use basiq_core::engine::transport::HttpResponse;
use basiq_core::error::Error;
use basiq_core::id::{JobId, UserId};
use serde_json::Value;

/// Parses the response with the operation that receives it and checks a few fields against the
/// example (`Value`); an `Err` is a decode failure.
type Check = fn(HttpResponse, &Value) -> Result<(), Error>;

/// Fixture file, the status the spec gives it, the check.
const EXAMPLES: &[(&str, u16, Check)] = &[
    ("get-users-userid-consents-example.json", 200, |r, v| {
        let list = ListConsents::new(user()).parse(r)?;
        assert_eq!(list.data.len(), count(v));
        assert_eq!(list.data[0].id, v["data"][0]["id"]);
        Ok(())
    }),
    ("get-events-id-success.json", 200, |r, v| {
        let event = GetEvent::new("e".into()).parse(r)?;
        assert_eq!(event.id, v["id"]);
        assert_eq!(event.event_type.as_deref(), v["eventType"].as_str());
        Ok(())
    }),
    ("get-events-types-success.json", 200, |r, v| {
        let list = ListEventTypes::new().parse(r)?;
        assert_eq!(list.data.len(), count(v));
        assert_eq!(list.data[0].id, v["data"][0]["id"]);
        Ok(())
    }),
    ("get-events-types-id-success.json", 200, |r, v| {
        assert_eq!(GetEventType::new("t".into()).parse(r)?.id, v["id"]);
        Ok(())
    }),
    ("get-jobs-jobid-data-in-progress.json", 200, job),
    ("get-jobs-jobid-data-failed.json", 200, job),
    ("get-jobs-jobid-data-success.json", 200, job),
    ("get-jobs-jobid-statement-in-progress.json", 200, job),
    ("get-jobs-jobid-statement-failed.json", 200, job),
    ("get-jobs-jobid-statement-success.json", 200, job),
    ("get-jobs-jobid-mygov-in-progress.json", 200, job),
    ("get-jobs-jobid-mygov-failed.json", 200, job),
    ("get-jobs-jobid-mygov-success.json", 200, job),
    ("get-jobs-jobid-report-in-progress.json", 200, job),
    ("get-jobs-jobid-report-failed.json", 200, job),
    ("get-jobs-jobid-report-success.json", 200, job),
    ("get-enrich-example.json", 200, |r, v| {
        let enrichment = Enrich::new("q", "AU00000", "AU").parse(r)?;
        assert_eq!(enrichment.class.as_deref(), v["class"].as_str());
        let data = enrichment.data.expect("data");
        assert_eq!(data.merchant.as_ref(), Some(&v["data"]["merchant"]));
        Ok(())
    }),
    ("get-users-userid-identities-person.json", 200, identities),
    (
        "get-users-userid-identities-organisation.json",
        200,
        identities,
    ),
    ("post-reports-example.json", 202, |r, v| {
        let op = CreateReport::new(NewReport::default());
        assert_eq!(op.parse(r)?.id.as_str(), v["id"]);
        Ok(())
    }),
    ("get-reports-example.json", 200, |r, v| {
        let list = ListReports::new().parse(r)?;
        assert_eq!(list.data.len(), count(v));
        assert_eq!(list.data[0].id, v["data"][0]["id"]);
        Ok(())
    }),
    ("get-reports-id-example.json", 200, |r, v| {
        let report = GetReport::new("r".into()).parse(r)?;
        assert_eq!(report.id, v["id"]);
        assert_eq!(
            report.filters.len(),
            v["filters"].as_array().map_or(0, Vec::len)
        );
        assert_eq!(report.data.as_ref(), Some(&v["data"]));
        Ok(())
    }),
    ("get-reports-types-example.json", 200, |r, v| {
        let list = ListReportTypes::new().parse(r)?;
        assert_eq!(list.data.len(), count(v));
        assert_eq!(list.data[0].id, v["data"][0]["id"]);
        Ok(())
    }),
    // The four webhook examples send `subscribedEvents` as one string, a type Basiq's response
    // schema leaves undefined (its request schema says an array): read as a list of one.
    ("post-notifications-webhooks-success.json", 201, |r, v| {
        let op = CreateWebhook::new(WebhookRequest::default());
        check_webhook(&op.parse(r)?, v);
        Ok(())
    }),
    // `data` is the one subscription, not a list of it (Basiq's schema gives `items` but no
    // `type`): read as a list of one.
    ("get-notifications-webhooks-success.json", 200, |r, v| {
        let list = ListWebhooks::new().parse(r)?;
        assert_eq!(list.data.len(), 1);
        check_webhook(&list.data[0], &v["data"]);
        Ok(())
    }),
    (
        "post-notifications-webhooks-webhookid-success.json",
        200,
        |r, v| {
            let op = UpdateWebhook::new("w".into(), WebhookRequest::default());
            check_webhook(&op.parse(r)?, v);
            Ok(())
        },
    ),
    (
        "get-notifications-webhooks-webhookid-success.json",
        200,
        |r, v| {
            check_webhook(&GetWebhook::new("w".into()).parse(r)?, v);
            Ok(())
        },
    ),
    (
        "get-notifications-webhooks-webhookid-messages-success.json",
        200,
        |r, v| {
            let list = ListWebhookMessages::new("w".into()).parse(r)?;
            assert_eq!(list.data.len(), count(v));
            assert_eq!(list.data[0].id, v["data"][0]["id"]);
            Ok(())
        },
    ),
    (
        "get-notifications-webhooks-webhookid-messages-messageid-success.json",
        200,
        |r, v| {
            let message = GetWebhookMessage::new("w".into(), "m".into()).parse(r)?;
            assert_eq!(message.id, v["id"]);
            assert_eq!(
                message.attempts.len(),
                v["attempts"].as_array().map_or(0, Vec::len)
            );
            Ok(())
        },
    ),
];

fn user() -> UserId {
    UserId::new("u").expect("valid id")
}

/// The number of items in the example's `data` list.
fn count(v: &Value) -> usize {
    v["data"].as_array().expect("`data` is a list").len()
}

fn job(r: HttpResponse, v: &Value) -> Result<(), Error> {
    let job = GetJob::new(JobId::new("j").expect("valid id")).parse(r)?;
    assert_eq!(job.id.as_str(), v["id"]);
    assert_eq!(job.steps.len(), v["steps"].as_array().expect("steps").len());
    Ok(())
}

fn identities(r: HttpResponse, v: &Value) -> Result<(), Error> {
    let list = ListIdentities::new(user()).parse(r)?;
    assert_eq!(list.data.len(), count(v));
    assert_eq!(list.data[0].id, v["data"][0]["id"]);
    Ok(())
}

fn check_webhook(webhook: &Webhook, v: &Value) {
    assert_eq!(webhook.id, v["id"]);
    assert_eq!(webhook.url.as_deref(), v["url"].as_str());
    let one = v["subscribedEvents"].as_str().expect("one string");
    assert_eq!(webhook.subscribed_events, [one]);
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/json/spec-examples")
}

#[test]
fn every_published_example_decodes() {
    let mut failures = Vec::new();
    for &(name, status, check) in EXAMPLES {
        let body = std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let example: Value = serde_json::from_slice(&body).expect("fixture is JSON");
        let response = http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(body)
            .expect("valid response");
        if let Err(e) = check(response, &example) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_fixture_has_a_row() {
    let files: BTreeSet<String> = std::fs::read_dir(dir())
        .expect("fixture folder")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .into_string()
                .expect("utf-8")
        })
        .filter(|name| name.ends_with(".json"))
        .collect();
    let rows: BTreeSet<String> = EXAMPLES.iter().map(|row| row.0.to_owned()).collect();
    assert_eq!(rows.len(), EXAMPLES.len(), "a fixture is listed twice");
    assert_eq!(files, rows, "fixture files and rows of `EXAMPLES` differ");
}

fn ok_json(body: &Value) -> HttpResponse {
    http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).expect("JSON"))
        .expect("valid response")
}

/// Field-level examples in Basiq's schemas of another shape than the field's declared type: a
/// user's `mobile` given as a number (`"example": 61410888999` in `core.json`, every user and
/// auth-link answer); an affordability snapshot's transactions, whose sub-class Basiq's schema
/// requires as `Code` (an integer), not `code`; an event's `links` in the events list, shown as
/// a list of one; and an affordability snapshot's `institutions`, shown as one id. Read as what they say, not an error or a silently empty field.
#[test]
fn field_examples_of_another_shape_decode() {
    let answer = GetUser::new(user())
        .parse(ok_json(&serde_json::json!({
            "type": "user", "id": "u", "mobile": 61_410_888_999_u64
        })))
        .expect("a numeric mobile decodes");
    assert_eq!(answer.mobile.as_deref(), Some("61410888999"));

    let page = ListAffordabilityTransactions::new(user(), "s".into())
        .parse(ok_json(&serde_json::json!({
            "type": "list",
            "data": [{
                "type": "transaction", "id": "t",
                "subClass": {"title": "Supermarket and Grocery Stores", "Code": 411}
            }]
        })))
        .expect("a page whose sub-class says `Code` decodes");
    let sub_class = page.data[0].sub_class.as_ref().expect("sub-class kept");
    assert_eq!(sub_class.code.as_deref(), Some("411"));

    let snapshots = ListAffordability::new(user())
        .parse(ok_json(&serde_json::json!({
            "type": "list",
            "data": [{"type": "affordability", "id": "a", "institutions": "AU00000"}]
        })))
        .expect("a snapshot naming one institution as a string decodes");
    assert_eq!(snapshots.data[0].institutions, ["AU00000"]);

    let self_link = "https://au-api.basiq.io/events/545ae104";
    let events = ListEvents::new()
        .parse(ok_json(&serde_json::json!({
            "type": "list",
            "data": [{"type": "event", "id": "61723", "links": [{"self": self_link}]}]
        })))
        .expect("an events page whose links are a list of one decodes");
    let links = events.data[0].links.as_ref().expect("links kept");
    assert_eq!(links.self_.as_deref(), Some(self_link));
}
