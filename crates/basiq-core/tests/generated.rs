//! Behaviour of the code `cargo xtask codegen` generates from fixtures/openapi/basiq.yaml: the
//! requests each operation builds, the statuses it accepts, the up-front checks, and the
//! leniency of the models towards Basiq's inconsistent payloads (facts §10).

use basiq_core::error::ErrorKind;
use basiq_core::id::{JobId, UserId};
use basiq_core::models::{self, JobType, NewUser, StepStatus, StepTitle, UserUpdate};
use basiq_core::operation::Operation;
use basiq_core::operations::{CreateUser, DeleteUser, GetJob, GetUser, ListUserJobs, UpdateUser};
use url::Url;

fn base() -> Url {
    Url::parse("https://au-api.basiq.io").expect("valid base")
}

fn user() -> UserId {
    UserId::new("ea3a81").expect("valid id")
}

fn response(status: u16, body: &str) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .body(body.as_bytes().to_vec())
        .expect("valid response")
}

const USER_JSON: &str = r#"{"type":"user","id":"ea3a81","email":"a@b.c","connections":{"type":"list","count":0,"data":null},"links":{"self":"https://au-api.basiq.io/users/ea3a81"}}"#;

#[test]
fn create_user_needs_email_or_mobile_before_any_request() {
    for body in [
        NewUser::default(),
        NewUser {
            email: Some("  ".into()),
            first_name: Some("Ann".into()),
            ..Default::default()
        },
    ] {
        let err = CreateUser::new(body)
            .request(&base())
            .expect_err("rejected");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("`email` or `mobile`"), "{err}");
    }
    let request = CreateUser::new(NewUser {
        mobile: Some("+61400000000".into()),
        ..Default::default()
    })
    .request(&base())
    .expect("valid");
    assert_eq!(request.method(), http::Method::POST);
    assert_eq!(request.uri(), "https://au-api.basiq.io/users");
    assert_eq!(request.headers()["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_slice(request.body()).expect("json");
    assert_eq!(body, serde_json::json!({"mobile": "+61400000000"}));
}

#[test]
fn create_user_accepts_201_and_200_and_is_not_idempotent() {
    let op = CreateUser::new(NewUser {
        email: Some("a@b.c".into()),
        ..Default::default()
    });
    assert!(!op.is_idempotent());
    for status in [200, 201] {
        let user = op.parse(response(status, USER_JSON)).expect("user");
        assert_eq!(user.id.as_str(), "ea3a81");
        assert_eq!(user.connections.expect("list").data.len(), 0);
    }
    assert!(op.parse(response(202, USER_JSON)).is_err());
}

#[test]
fn user_operations_build_the_documented_requests() {
    let get = GetUser::new(user());
    let request = get.request(&base()).expect("request");
    assert_eq!(request.method(), http::Method::GET);
    assert_eq!(request.uri(), "https://au-api.basiq.io/users/ea3a81");
    assert!(request.body().is_empty());
    assert!(get.is_idempotent());
    assert_eq!(get.context().user_id, Some(user()));

    let update = UpdateUser::new(
        user(),
        UserUpdate {
            last_name: Some("Lee".into()),
            ..Default::default()
        },
    );
    let request = update.request(&base()).expect("request");
    assert_eq!(
        request.method(),
        http::Method::POST,
        "Basiq updates with POST"
    );
    assert_eq!(request.body(), br#"{"lastName":"Lee"}"#);
    assert!(update.is_idempotent());

    let delete = DeleteUser::new(user());
    let request = delete.request(&base()).expect("request");
    assert_eq!(request.method(), http::Method::DELETE);
    for status in [200, 202, 204] {
        delete.parse(response(status, "")).expect("deleted");
    }
    let err = delete
        .parse(response(
            404,
            r#"{"type":"list","correlationId":"c1","data":[{"type":"error","code":"resource-not-found","title":"Not found","detail":"no user"}]}"#,
        ))
        .expect_err("404 is an error");
    assert!(err.to_string().contains("resource-not-found"), "{err}");
}

#[test]
fn list_user_jobs_encodes_the_filter() {
    let op = ListUserJobs::new(user());
    assert_eq!(
        op.request(&base()).expect("request").uri(),
        "https://au-api.basiq.io/users/ea3a81/jobs"
    );
    let op = op.filter("connection.id.eq('ab 63&cd')");
    let uri = op.request(&base()).expect("request").uri().to_string();
    assert_eq!(
        uri,
        "https://au-api.basiq.io/users/ea3a81/jobs?filter=connection.id.eq%28%27ab+63%26cd%27%29"
    );
    assert_eq!(op.context().user_id, Some(user()));
}

#[test]
fn job_parsing_is_lenient() {
    let op = GetJob::new(JobId::new("j1").expect("valid id"));
    assert_eq!(
        op.request(&base()).expect("request").uri(),
        "https://au-api.basiq.io/jobs/j1"
    );
    assert_eq!(op.context().job_id.as_ref().map(JobId::as_str), Some("j1"));
    // Statement-job spellings, `details`, an unknown step title and status, a new field.
    let job = op
        .parse(response(
            200,
            r#"{"type":"job","id":"j1","createdDate":"2024-01-02T03:04:05Z","updatedDate":"",
                "jobType":"statement","brandNewField":1,"links":null,
                "steps":[
                  {"title":"verify-credentials","status":"failed","result":{"code":"invalid-credentials","title":"t","details":"Account is locked"}},
                  {"title":"retrieve-everything","status":"queued","result":null}
                ]}"#,
        ))
        .expect("job");
    assert_eq!(job.created.map(|t| t.unix_timestamp()), Some(1_704_164_645));
    assert_eq!(job.updated, None, "an empty date is absent, not an error");
    assert_eq!(job.job_type, Some(JobType::Statement));
    assert_eq!(job.steps[0].title, StepTitle::VerifyCredentials);
    assert_eq!(job.steps[0].status, StepStatus::Failed);
    let result = job.steps[0].result.as_ref().expect("result");
    assert_eq!(result.detail.as_deref(), Some("Account is locked"));
    assert_eq!(
        job.steps[1].title,
        StepTitle::Other("retrieve-everything".into())
    );
    assert_eq!(job.steps[1].status.as_str(), "queued");

    // `steps: null` and a missing list read as empty.
    let list: models::JobList =
        serde_json::from_str(r#"{"type":"list","data":[{"id":"j2","steps":null}]}"#).expect("list");
    assert!(list.data[0].steps.is_empty());
    let list: models::JobList = serde_json::from_str(r#"{"type":"list"}"#).expect("list");
    assert!(list.data.is_empty());
}

#[test]
fn models_round_trip_with_wire_names() {
    let job: models::Job = serde_json::from_str(
        r#"{"id":"j1","created":"2024-01-02T03:04:05Z","jobType":"connection","steps":[],
            "links":{"self":"/jobs/j1","source":"/users/u/connections/c1"}}"#,
    )
    .expect("job");
    let text = serde_json::to_value(&job).expect("json");
    assert_eq!(text["created"], "2024-01-02T03:04:05Z");
    assert_eq!(text["jobType"], "connection");
    assert_eq!(text["links"]["self"], "/jobs/j1");
    assert!(text.get("updated").is_none(), "absent stays absent");
    assert_eq!(String::from(JobType::Other("x".into())), "x");
    assert_eq!(models::BusinessIdNoType::from("ABN").to_string(), "ABN");
}

#[test]
fn bad_ids_never_reach_a_url() {
    assert!(UserId::new("../admin").is_err());
    assert!(UserId::new("a/b").is_err());
}
