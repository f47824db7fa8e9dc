//! Snapshots of every operation's built request (secrets redacted), of the parsed fixtures under
//! `fixtures/json/`, and of error `Display` strings.
//!
//! Update with `INSTA_UPDATE=always cargo test -p basiq-core --test requests`, then read every
//! changed `.snap` before committing it.

use std::path::PathBuf;

use basiq_core::api::mfa::{AnswerJobMfa, MfaAnswers};
use basiq_core::api::models::{Address, BusinessIdNoType, Job, NewUser, UserUpdate};
use basiq_core::api::operations::{
    CreateUser, DeleteConnection, DeleteUser, GetAccount, GetConnection, GetConnector, GetJob,
    GetTransaction, GetUser, ListAccounts, ListConnections, ListConnectors, ListTransactions,
    ListUserJobs, PurgeConnection, RefreshAllConnections, RefreshConnection, UpdateUser,
};
use basiq_core::engine::operation::{ApiBase, Authentication, Operation};
use basiq_core::engine::transport::{HttpRequest, HttpResponse, UrlForm};
use basiq_core::error::{Error, ErrorContext, TransportError, TransportErrorKind};
use basiq_core::id::{AccountId, ConnectionId, InstitutionId, JobId, TransactionId, UserId};
use basiq_core::policy::connectors::ConnectionMethod;
use basiq_core::policy::jobs::{JobKind, JobState};
use basiq_core::policy::pagination::{NextPage, Page};
use basiq_core::policy::refresh::ConnectionView;
use basiq_core::policy::token::{PostToken, TokenScope};
use basiq_core::secret::ApiKey;
use http::header::AUTHORIZATION;
use url::Url;

/// A dashboard-style key: base64 of `uuid:uuid`, sent as given.
const API_KEY: &str = "MDhmNjVhYjgtYzQ1NS00ZmQ1LWE0MzMtYjQ5ZWFlZDBiZjE0OjU3OWRmNDEzLTI1NjctNDBiZC1hOGY0LTQ3MjFkNmEyNzYwYQ==";

fn base() -> Url {
    Url::parse("https://au-api.basiq.io").unwrap()
}

/// The base as the async executor builds against (URLs parsed)…
fn parsed_base() -> ApiBase {
    base().into()
}

/// …and as the blocking one does (URLs as text, for ureq).
fn text_base() -> ApiBase {
    ApiBase::new(base(), UrlForm::Text)
}

fn user() -> UserId {
    UserId::new("ea3a81").unwrap()
}

/// Method, URI, sorted headers (credentials redacted) and the body as text.
fn render(request: &HttpRequest) -> String {
    let mut out = format!("{} {}\n", request.method(), request.url().as_str());
    let mut headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(name, value)| {
            let value = value.to_str().unwrap_or("<non-ascii>");
            let value = if name == AUTHORIZATION {
                let scheme = value.split(' ').next().unwrap_or("");
                format!("{scheme} [REDACTED]")
            } else {
                value.to_owned()
            };
            (name.as_str().to_owned(), value)
        })
        .collect();
    headers.sort();
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\n"));
    }
    out.push('\n');
    out.push_str(&String::from_utf8_lossy(request.body()));
    out
}

/// The rendered request, which must not depend on the form its URL was built in.
fn request(op: &impl Operation) -> String {
    let parsed = render(&op.request(&parsed_base()).expect("request builds"));
    let text = render(&op.request(&text_base()).expect("request builds"));
    assert_eq!(parsed, text, "the URL forms disagree");
    parsed
}

#[test]
fn post_token_server_scope() {
    let op = PostToken::server(ApiKey::new(API_KEY));
    let built = op.request(&parsed_base()).unwrap();
    // The key goes out exactly as given: already base64(uuid:uuid), never re-encoded.
    let auth = built.headers().get(AUTHORIZATION).unwrap();
    assert_eq!(auth.to_str().unwrap(), format!("Basic {API_KEY}"));
    assert!(auth.is_sensitive(), "http's Debug must hide it");
    assert!(!format!("{op:?}").contains(API_KEY));
    insta::assert_snapshot!(render(&built));
}

#[test]
fn post_token_client_scope() {
    let op = PostToken::new(
        ApiKey::new(API_KEY),
        TokenScope::ClientAccess { user_id: user() },
    );
    let built = op.request(&text_base()).unwrap();
    assert_eq!(
        built
            .headers()
            .get(AUTHORIZATION)
            .unwrap()
            .to_str()
            .unwrap(),
        format!("Basic {API_KEY}")
    );
    insta::assert_snapshot!(render(&built));
}

#[test]
fn create_user() {
    let body = NewUser {
        email: Some("gavin@hooli.com".into()),
        mobile: Some("+61410888999".into()),
        first_name: Some("Gavin".into()),
        last_name: Some("Belson".into()),
        business_name: Some("Hooli".into()),
        business_id_no: Some("16 009 661 901".into()),
        business_id_no_type: Some(BusinessIdNoType::Abn),
        business_address: Some(Address {
            address_line1: Some("21 Sydney Rd".into()),
            suburb: Some("Manly".into()),
            state: Some("NSW".into()),
            postcode: Some("2095".into()),
            country_code: Some("AUS".into()),
            ..Address::default()
        }),
        ..NewUser::default()
    };
    insta::assert_snapshot!(request(&CreateUser::new(body)));
}

#[test]
fn get_user() {
    insta::assert_snapshot!(request(&GetUser::new(user())));
}

#[test]
fn update_user() {
    let body = UserUpdate {
        mobile: Some("+61410000111".into()),
        ..UserUpdate::default()
    };
    insta::assert_snapshot!(request(&UpdateUser::new(user(), body)));
}

#[test]
fn delete_user() {
    insta::assert_snapshot!(request(&DeleteUser::new(user())));
}

#[test]
fn get_job() {
    insta::assert_snapshot!(request(&GetJob::new(JobId::new("e9132638").unwrap())));
}

#[test]
fn answer_job_mfa() {
    // Basiq's public sandbox answers (basiq-api.md §4.4), shown so the body's shape is reviewable; real
    // answers never appear in Debug.
    let op = AnswerJobMfa::new(
        JobId::new("61723").unwrap(),
        user(),
        MfaAnswers::new(vec!["Basiq".into(), "AU00000".into()]),
    );
    assert!(!format!("{op:?}").contains("AU00000"));
    assert!(!op.is_idempotent());
    assert_eq!(op.authentication(), Authentication::ClientToken(user()));
    insta::assert_snapshot!(request(&op));
}

#[test]
fn list_user_jobs_with_filter() {
    let op = ListUserJobs::new(user()).filter("connection.id.eq('aaaf2c3b')");
    insta::assert_snapshot!(request(&op));
}

fn connection() -> ConnectionId {
    ConnectionId::new("aaaf2c3b").unwrap()
}

#[test]
fn list_connections_with_filter() {
    let op = ListConnections::new(user()).filter("institution.id.eq('AU00000')");
    insta::assert_snapshot!(request(&op));
}

#[test]
fn get_connection() {
    insta::assert_snapshot!(request(&GetConnection::new(user(), connection())));
}

#[test]
fn refresh_connection() {
    insta::assert_snapshot!(request(&RefreshConnection::new(user(), connection())));
}

#[test]
fn refresh_all_connections() {
    insta::assert_snapshot!(request(&RefreshAllConnections::new(user())));
}

#[test]
fn delete_connection() {
    insta::assert_snapshot!(request(&DeleteConnection::new(user(), connection())));
}

#[test]
fn purge_connection() {
    insta::assert_snapshot!(request(&PurgeConnection::new(user(), connection())));
}

#[test]
fn list_accounts_with_filter() {
    let op = ListAccounts::new(user()).filter("connection.id.eq('aaaf2c3b')");
    insta::assert_snapshot!(request(&op));
}

#[test]
fn get_account() {
    insta::assert_snapshot!(request(&GetAccount::new(
        user(),
        AccountId::new("c0ffee").unwrap()
    )));
}

#[test]
fn list_transactions_with_filter_and_limit() {
    let op = ListTransactions::new(user())
        .filter("transaction.postDate.bt('2026-01-01','2026-01-31'),account.id.eq('s55bf3')")
        .limit(500);
    insta::assert_snapshot!(request(&op));
}

#[test]
fn get_transaction() {
    insta::assert_snapshot!(request(&GetTransaction::new(
        user(),
        TransactionId::new("a41c9e07").unwrap()
    )));
}

#[test]
fn list_connectors_with_filter() {
    let op = ListConnectors::new()
        .filter("connector.stage.eq('live'),connector.institution.tier.in('1','2')");
    insta::assert_snapshot!(request(&op));
}

#[test]
fn get_connector() {
    let op = GetConnector::new(
        InstitutionId::new("AU00000").unwrap(),
        ConnectionMethod::OpenBanking.as_str().to_owned(),
    );
    insta::assert_snapshot!(request(&op));
}

#[test]
fn next_page_of_transactions() {
    let page = ListTransactions::new(user())
        .parse(response(200, "transaction-page.json"))
        .unwrap();
    let next = page
        .next_page(&base())
        .unwrap()
        .expect("the fixture has a next page");
    insta::assert_snapshot!(request(&next));
    // The same link on another host would take the token with it: refused.
    let evil = page
        .next_link()
        .unwrap()
        .replace("au-api.basiq.io", "au-api.basiq.io.evil.example");
    assert!(NextPage::<basiq_core::api::models::TransactionList>::new(&base(), &evil).is_err());
}

// --- fixtures ---------------------------------------------------------------------------------

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/json")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn response(status: u16, name: &str) -> HttpResponse {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(fixture(name))
        .unwrap()
}

fn job(name: &str) -> Job {
    GetJob::new(JobId::new("any").unwrap())
        .parse(response(200, name))
        .expect("fixture parses")
}

#[test]
fn parsed_user() {
    let user = GetUser::new(user())
        .parse(response(200, "user.json"))
        .unwrap();
    insta::assert_json_snapshot!(user);
}

#[test]
fn parsed_job_list() {
    let list = ListUserJobs::new(user())
        .parse(response(200, "job-list.json"))
        .unwrap();
    insta::assert_json_snapshot!(list);
}

#[test]
fn parsed_connection_view() {
    let view: ConnectionView = serde_json::from_slice(&fixture("connection.json")).unwrap();
    insta::assert_debug_snapshot!(view);
}

#[test]
fn parsed_connection() {
    let connection = GetConnection::new(user(), connection())
        .parse(response(200, "connection.json"))
        .unwrap();
    insta::assert_json_snapshot!(connection);
}

#[test]
fn parsed_connection_list() {
    let list = ListConnections::new(user())
        .parse(response(200, "connection-list.json"))
        .unwrap();
    insta::assert_debug_snapshot!(list);
}

#[test]
fn parsed_account() {
    let account = GetAccount::new(user(), AccountId::new("c0ffee").unwrap())
        .parse(response(200, "account.json"))
        .unwrap();
    insta::assert_json_snapshot!(account);
}

#[test]
fn parsed_account_list() {
    let list = ListAccounts::new(user())
        .parse(response(200, "account-list.json"))
        .unwrap();
    insta::assert_json_snapshot!(list);
}

#[test]
fn parsed_transaction_page() {
    let page = ListTransactions::new(user())
        .parse(response(200, "transaction-page.json"))
        .unwrap();
    insta::assert_debug_snapshot!(page);
}

#[test]
fn parsed_connector() {
    let connector = GetConnector::new(InstitutionId::new("AU00000").unwrap(), "openbanking".into())
        .parse(response(200, "connector.json"))
        .unwrap();
    insta::assert_json_snapshot!(connector);
}

#[test]
fn parsed_connector_list() {
    let list = ListConnectors::new()
        .parse(response(200, "connector-list.json"))
        .unwrap();
    insta::assert_json_snapshot!(list);
}

#[test]
fn parsed_refresh_answers() {
    let op = RefreshConnection::new(user(), connection());
    let all = RefreshAllConnections::new(user())
        .parse(response(202, "refresh-all-jobs.json"))
        .unwrap();
    insta::assert_debug_snapshot!((
        op.parse(response(202, "refresh-job.json")).unwrap(),
        op.parse(response(200, "refresh-job.json")).unwrap(),
        all,
    ));
}

/// What the SDK reads out of each job fixture: state, ids, steps by title, the diagnosis.
#[test]
fn job_fixtures_explained() {
    let mut out = String::new();
    for name in [
        "job-success.json",
        "job-mfa-in-progress.json",
        "job-failed-invalid-credentials.json",
        "job-failed-account-not-accessible.json",
        "job-failed-service-unavailable.json",
    ] {
        let job = job(name);
        let state = match job.state() {
            JobState::Failed { step, failure } => format!("failed at {step}: {failure}"),
            other => format!("{other:?}"),
        };
        out.push_str(&format!(
            "{name}\n  id={} user={:?} connection={:?} institution={:?}\n  state: {state}\n",
            job.id,
            job.user_id().map(UserId::into_string),
            job.connection_id().map(ConnectionId::into_string),
            job.institution_id(),
        ));
        for step in &job.steps {
            out.push_str(&format!("  step {} = {}\n", step.title, step.status));
        }
        for kind in [JobKind::Create, JobKind::Refresh] {
            if let Some(d) = job.diagnose(kind) {
                out.push_str(&format!(
                    "  on {kind:?}: {:?}\n    -> {}\n",
                    d.class, d.action
                ));
            }
        }
    }
    insta::assert_snapshot!(out);
}

// --- errors -----------------------------------------------------------------------------------

#[test]
fn error_display() {
    let ctx = ErrorContext::new()
        .with_user(&user())
        .with_connection(&ConnectionId::new("aaaf2c3b").unwrap())
        .with_job(&JobId::new("e9132638").unwrap());
    let create = CreateUser::new(NewUser::default());
    let cases: Vec<(&str, Error)> = vec![
        (
            "400 error list",
            CreateUser::new(NewUser {
                email: Some("x@y.z".into()),
                ..NewUser::default()
            })
            .parse(response(400, "error-list.json"))
            .unwrap_err(),
        ),
        (
            "403 token expired, with ids",
            GetUser::new(user())
                .parse(response(403, "error-token-expired.json"))
                .unwrap_err()
                .with_context(&ctx),
        ),
        (
            "404 on /token",
            PostToken::server(ApiKey::new(API_KEY))
                .parse(response(404, "error-invalid-api-key.json"))
                .unwrap_err(),
        ),
        (
            "502 html",
            GetJob::new(JobId::new("e9132638").unwrap())
                .parse(
                    http::Response::builder()
                        .status(502)
                        .body(b"<html><body>Bad Gateway</body></html>".to_vec())
                        .unwrap(),
                )
                .unwrap_err()
                .with_context(&ctx),
        ),
        (
            "truncated body",
            GetJob::new(JobId::new("e9132638").unwrap())
                .parse(
                    http::Response::builder()
                        .status(200)
                        .body(br#"{"type":"job","id":"e91"#.to_vec())
                        .unwrap(),
                )
                .unwrap_err()
                .with_context(&ctx),
        ),
        (
            "transport",
            Error::transport(TransportError::new(
                TransportErrorKind::Connect,
                "connection refused",
            ))
            .with_context(&ctx),
        ),
        (
            "invalid id",
            Error::from(UserId::new("../admin").unwrap_err()),
        ),
        (
            "local validation",
            create.request(&parsed_base()).unwrap_err(),
        ),
    ];
    let mut out = String::new();
    for (name, err) in cases {
        out.push_str(&format!("{name} [{:?}]:\n  {err}\n", err.kind()));
        assert!(!err.to_string().contains(API_KEY));
    }
    insta::assert_snapshot!(out);
}

/// The daily / at-login check over the job-list fixture, with the institution in outage or not.
#[test]
fn job_list_fixture_triaged() {
    use basiq_core::policy::connectors::{ConnectorStatus, ConnectorStatusView};
    use basiq_core::policy::jobs::triage_user;
    let list = ListUserJobs::new(user())
        .parse(response(200, "job-list.json"))
        .unwrap();
    let now = time::macros::datetime!(2026-01-07 04:00 UTC);
    let mut out = String::new();
    for status in [ConnectorStatus::Operational, ConnectorStatus::MajorOutage] {
        let connectors = [ConnectorStatusView::new("AU00000", status.clone())];
        out.push_str(&format!("connector {status}:\n"));
        for f in triage_user(&list.data, &connectors, now) {
            out.push_str(&format!(
                "  job {} connection {:?} step {} code {} x{}\n  {:?}\n  -> {}\n  retry_at {:?}\n",
                f.job_id,
                f.connection_id.map(ConnectionId::into_string),
                f.step,
                f.failure.code,
                f.consecutive_failures,
                f.class,
                f.action,
                f.retry_at,
            ));
        }
    }
    insta::assert_snapshot!(out);
}
