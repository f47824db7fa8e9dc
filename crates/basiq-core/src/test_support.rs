//! Builders shared by the policy modules' unit tests. Jobs are built from JSON, as Basiq sends
//! them, so the tests do not depend on the (generated) model's field list.

use proptest::prelude::*;
use serde_json::json;
use time::OffsetDateTime;

use crate::api::models::Job;

/// 2026-01-01T00:00:00Z.
pub(crate) fn t0() -> OffsetDateTime {
    time::macros::datetime!(2026-01-01 00:00 UTC)
}

/// `t0 + secs`.
pub(crate) fn at(secs: i64) -> OffsetDateTime {
    t0() + time::Duration::seconds(secs)
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A step as `(title, status, failure code)`.
pub(crate) type StepSpec<'a> = (&'a str, &'a str, Option<&'a str>);

/// A connection job for user `u1`.
pub(crate) fn job(
    id: &str,
    connection: Option<&str>,
    institution: Option<&str>,
    created: i64,
    updated: i64,
    steps: &[StepSpec<'_>],
) -> Job {
    let steps: Vec<_> = steps
        .iter()
        .map(|(title, status, code)| match code {
            Some(code) => json!({"title": title, "status": status,
                "result": {"code": code, "title": "failed", "detail": "details"}}),
            None if *status == "success" => json!({"title": title, "status": status,
                "result": {"type": "link", "url": "/users/u1/accounts"}}),
            None => json!({"title": title, "status": status, "result": null}),
        })
        .collect();
    let mut value = json!({
        "type": "job",
        "id": id,
        "jobType": "connection",
        "created": rfc3339(at(created)),
        "updated": rfc3339(at(updated)),
        "steps": steps,
        "links": {"self": format!("https://au-api.basiq.io/jobs/{id}")},
    });
    if let Some(c) = connection {
        value["links"]["source"] =
            json!(format!("https://au-api.basiq.io/users/u1/connections/{c}"));
    }
    if let Some(i) = institution {
        value["institution"] = json!({"type": "institution", "id": i});
    }
    serde_json::from_value(value).expect("test job is valid")
}

/// The usual three steps, with `verify-credentials` in `status` and a failure code if any.
pub(crate) fn three(verify: &'static str, code: Option<&'static str>) -> Vec<StepSpec<'static>> {
    let after = match verify {
        "success" => "success",
        _ => "pending",
    };
    vec![
        ("verify-credentials", verify, code),
        ("retrieve-accounts", after, None),
        ("retrieve-transactions", after, None),
    ]
}

/// Any step status Basiq sends (and an unknown one).
pub(crate) fn any_status() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("pending"),
        Just("in-progress"),
        Just("success"),
        Just("failed"),
        Just("weird"),
    ]
}
