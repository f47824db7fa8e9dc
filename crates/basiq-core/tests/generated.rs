//! Behaviour of the code `cargo xtask codegen` generates from fixtures/openapi/basiq.yaml: the
//! requests each operation builds, the statuses it accepts, the up-front checks, and the
//! leniency of the models towards Basiq's inconsistent payloads (basiq-api.md §10).

use basiq_core::api::models::{self, JobType, NewUser, StepStatus, StepTitle, UserUpdate};
use basiq_core::api::operations::{
    CreateUser, DeleteUser, GetJob, GetUser, ListUserJobs, UpdateUser,
};
use basiq_core::engine::operation::{ApiBase, Operation};
use basiq_core::error::ErrorKind;
use basiq_core::id::{JobId, UserId};
use url::Url;

fn base() -> ApiBase {
    Url::parse("https://au-api.basiq.io")
        .expect("valid base")
        .into()
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
    assert_eq!(request.url().as_str(), "https://au-api.basiq.io/users");
    assert_eq!(
        request.headers().get("content-type").unwrap(),
        "application/json"
    );
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
    assert_eq!(
        request.url().as_str(),
        "https://au-api.basiq.io/users/ea3a81"
    );
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
        op.request(&base()).expect("request").url().as_str(),
        "https://au-api.basiq.io/users/ea3a81/jobs"
    );
    let op = op.filter("connection.id.eq('ab 63&cd')");
    let uri = op.request(&base()).expect("request").url().to_string();
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
        op.request(&base()).expect("request").url().as_str(),
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

// --- connections, accounts, transactions, connectors ----------------------------------------

mod data_surface {
    use std::str::FromStr;

    use basiq_core::api::models::{
        Account, AccountClassType, AccountStatus, Connection, ConnectorStage, Transaction,
        TransactionClass, TransactionDirection, TransactionList, TransactionStatus,
    };
    use basiq_core::api::operations::{
        DeleteConnection, GetAccount, GetConnection, GetConnector, GetTransaction, ListAccounts,
        ListConnections, ListConnectors, ListTransactions, PurgeConnection, RefreshAllConnections,
        RefreshConnection,
    };
    use basiq_core::engine::operation::Operation;
    use basiq_core::error::ErrorKind;
    use basiq_core::id::{AccountId, ConnectionId, InstitutionId, JobId, TransactionId};
    use basiq_core::policy::connectors::{ConnectionMethod, ConnectorStatus};
    use basiq_core::policy::refresh::{ConnectionStatus, RefreshResponse};
    use rust_decimal::Decimal;

    use super::{base, response, user};

    fn fixture(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/json")
            .join(name);
        std::fs::read_to_string(&path).expect("fixture exists")
    }

    fn connection() -> ConnectionId {
        ConnectionId::new("aaaf2c3b").expect("valid id")
    }

    fn dec(s: &str) -> Option<Decimal> {
        Some(Decimal::from_str(s).expect("decimal"))
    }

    #[test]
    fn both_open_banking_spellings_read_as_one_method() {
        let single = GetConnection::new(user(), connection())
            .parse(response(200, &fixture("connection.json")))
            .expect("connection");
        assert_eq!(
            single.method,
            Some(ConnectionMethod::OpenBanking),
            "open-banking"
        );
        let list = ListConnections::new(user())
            .parse(response(200, &fixture("connection-list.json")))
            .expect("list");
        assert_eq!(
            list.data[0].method,
            Some(ConnectionMethod::OpenBanking),
            "openbanking"
        );
        assert_eq!(list.data[1].method, Some(ConnectionMethod::Web));
        // `expiryDate: ""` on web connections and `lastUsed: null` are absent, not errors.
        assert_eq!(list.data[1].expiry_date, None);
        assert_eq!(list.data[1].last_used, None);
        // `accounts.data: null` is an empty list; unknown values are kept.
        assert!(list.data[1]
            .accounts
            .as_ref()
            .expect("accounts")
            .data
            .is_empty());
        assert_eq!(
            list.data[2].status,
            ConnectionStatus::Other("suspended-by-bank".into())
        );
        // Embedded accounts carry decimal money too.
        let embedded = &single.accounts.as_ref().expect("accounts").data[1];
        assert_eq!(embedded.balance, dec("-1234.60"));
        assert_eq!(
            embedded.class.as_ref().map(|c| &c.kind),
            Some(&AccountClassType::CreditCard)
        );
    }

    #[test]
    fn money_is_exact_decimal_never_float() {
        let account = GetAccount::new(user(), AccountId::new("c0ffee").expect("id"))
            .parse(response(200, &fixture("account.json")))
            .expect("account");
        assert_eq!(account.balance, dec("-1234.60"));
        assert_eq!(account.available_funds, dec("8765.40"));
        assert_eq!(account.credit_limit, dec("10000.00"));
        assert_eq!(account.status, Some(AccountStatus::Available));
        // The scale survives a round trip: "-1234.60" stays "-1234.60", as a string.
        let json = serde_json::to_value(&account).expect("json");
        assert_eq!(json["balance"], "-1234.60");
        assert_eq!(json["creditLimit"], "10000.00");

        let list = ListAccounts::new(user())
            .parse(response(200, &fixture("account-list.json")))
            .expect("accounts");
        let saver = &list.data[1];
        assert_eq!(saver.available_funds, None, "\"\" is absent");
        assert_eq!(saver.credit_limit, None, "null is absent");
        assert_eq!(
            saver.class.as_ref().map(|c| c.kind.as_str()),
            Some("crypto-wallet")
        );

        // 0.1 + 0.2 is exactly 0.3 here, which f64 cannot say.
        let a: Account = serde_json::from_str(r#"{"id":"a","status":"available","balance":"0.1"}"#)
            .expect("account");
        let b: Account = serde_json::from_str(r#"{"id":"b","status":"available","balance":"0.2"}"#)
            .expect("account");
        assert_eq!(a.balance.zip(b.balance).map(|(x, y)| x + y), dec("0.3"));

        // A JSON number is not silently read through f64: it is a decode error.
        assert!(serde_json::from_str::<Account>(
            r#"{"id":"a","status":"available","balance":12.3}"#
        )
        .is_err());
        assert!(serde_json::from_str::<Account>(
            r#"{"id":"a","status":"available","balance":"twelve"}"#
        )
        .is_err());
    }

    proptest::proptest! {
        /// Any decimal Basiq could send survives a read and a write exactly, as a string.
        #[test]
        fn decimal_strings_round_trip_exactly(mantissa in proptest::num::i64::ANY, scale in 0u32..=10) {
            let value = Decimal::new(mantissa, scale);
            let json = format!(r#"{{"id":"a","status":"available","balance":"{value}"}}"#);
            let account: Account = serde_json::from_str(&json).expect("account");
            proptest::prop_assert_eq!(account.balance, Some(value));
            let back = serde_json::to_value(&account).expect("json");
            let text = value.to_string();
            proptest::prop_assert_eq!(back["balance"].as_str(), Some(text.as_str()));
        }
    }

    #[test]
    fn transaction_page_reads_dates_amounts_and_next() {
        let page: TransactionList = ListTransactions::new(user())
            .parse(response(200, &fixture("transaction-page.json")))
            .expect("page");
        assert_eq!((page.count, page.size), (Some(3), Some(1203)));
        let pending = &page.data[0];
        assert_eq!(pending.status, Some(TransactionStatus::Pending));
        assert_eq!(pending.direction, Some(TransactionDirection::Debit));
        assert_eq!(pending.class, Some(TransactionClass::Payment));
        assert_eq!(pending.amount, dec("-56.78"));
        assert_eq!(pending.post_date, None, "null while pending");
        assert_eq!(
            pending.sub_class.as_ref().and_then(|s| s.code.as_deref()),
            Some("411")
        );
        let salary = &page.data[1];
        assert_eq!(salary.class, Some(TransactionClass::DirectCredit));
        // A bare date and an RFC 3339 timestamp with an offset both read.
        let date = salary.transaction_date.expect("date");
        assert_eq!(date.date().to_string(), "2026-01-05");
        let posted = salary.post_date.expect("post date");
        assert_eq!(posted.offset().whole_hours(), 10);
        assert_eq!(
            page.data[2].class,
            Some(TransactionClass::Other("crypto-purchase".into()))
        );
        assert_eq!(
            page.links.as_ref().and_then(|l| l.next.as_deref()),
            Some("https://au-api.basiq.io/users/ea3a81/transactions?next=bf1a7c9e2d&limit=3")
        );
        // Only the id is required: a transaction without `class` or `direction` (or with
        // `null`) still decodes, so one odd item never makes a page of 500 unreadable.
        let sparse: Transaction =
            serde_json::from_str(r#"{"id":"t","status":"posted","class":null}"#).expect("sparse");
        assert_eq!(sparse.class, None);
        assert_eq!(sparse.direction, None);
        assert!(serde_json::from_str::<Transaction>(r#"{"status":"posted"}"#).is_err());
    }

    #[test]
    fn transaction_limit_is_checked_before_sending() {
        for bad in [0, 501, u32::MAX] {
            let err = ListTransactions::new(user())
                .limit(bad)
                .request(&base())
                .expect_err("refused");
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(
                err.to_string().contains("`limit` must be within 1..=500"),
                "{err}"
            );
        }
        for ok in [1, 500] {
            let uri = ListTransactions::new(user())
                .limit(ok)
                .request(&base())
                .expect("valid")
                .url()
                .to_string();
            assert!(
                uri.ends_with(&format!("/users/ea3a81/transactions?limit={ok}")),
                "{uri}"
            );
        }
        let plain = ListTransactions::new(user())
            .request(&base())
            .expect("valid");
        assert_eq!(
            plain.url().as_str(),
            "https://au-api.basiq.io/users/ea3a81/transactions"
        );
    }

    #[test]
    fn refresh_tells_a_new_job_from_the_running_one() {
        let op = RefreshConnection::new(user(), connection());
        assert!(
            !op.is_idempotent(),
            "a repeated refresh is a second refresh"
        );
        let job = JobId::new("e9132638").expect("id");
        assert_eq!(
            op.parse(response(202, &fixture("refresh-job.json")))
                .expect("202"),
            RefreshResponse::Started(job.clone())
        );
        assert_eq!(
            op.parse(response(200, &fixture("refresh-job.json")))
                .expect("200"),
            RefreshResponse::AlreadyRunning(job)
        );
        // Only the documented statuses are success.
        assert!(op
            .parse(response(201, &fixture("refresh-job.json")))
            .is_err());
        let err = op
            .parse(response(
                400,
                r#"{"type":"list","correlationId":"k1","data":[{"type":"error","code":"parameter-not-valid","title":"Bad","detail":"Connection type is not Web"}]}"#,
            ))
            .expect_err("400")
            .with_context(&op.context());
        let text = err.to_string();
        assert!(
            text.contains("aaaf2c3b") && text.contains("ea3a81"),
            "{text}"
        );

        let all = RefreshAllConnections::new(user());
        assert!(!all.is_idempotent());
        let jobs = all
            .parse(response(202, &fixture("refresh-all-jobs.json")))
            .expect("jobs");
        assert_eq!(jobs.data.len(), 2);
        assert_eq!(jobs.data[1].id.as_str(), "f1a2b3c4");
    }

    #[test]
    fn delete_and_purge_are_idempotent_and_bodyless() {
        let delete = DeleteConnection::new(user(), connection());
        let purge = PurgeConnection::new(user(), connection());
        assert!(delete.is_idempotent() && purge.is_idempotent());
        delete.parse(response(204, "")).expect("deleted");
        purge.parse(response(204, "")).expect("purged");
        assert_eq!(
            purge.request(&base()).expect("request").method(),
            http::Method::POST
        );
        assert_eq!(delete.context().connection_id, Some(connection()));
    }

    #[test]
    fn reads_are_idempotent_with_context() {
        let get = GetConnection::new(user(), connection());
        assert!(get.is_idempotent());
        assert_eq!(get.context().connection_id, Some(connection()));
        assert!(ListConnections::new(user()).is_idempotent());
        assert!(ListAccounts::new(user()).is_idempotent());
        let tx = GetTransaction::new(user(), TransactionId::new("t1").expect("id"));
        assert!(tx.is_idempotent());
        assert_eq!(tx.context().user_id, Some(user()));
        assert!(ListConnectors::new().context().is_empty());
    }

    #[test]
    fn connectors_parse_and_the_method_segment_is_checked() {
        let au = InstitutionId::new("AU00000").expect("id");
        let op = GetConnector::new(au.clone(), "openbanking".into());
        let connector = op
            .parse(response(200, &fixture("connector.json")))
            .expect("connector");
        assert_eq!(connector.method, ConnectionMethod::OpenBanking);
        assert_eq!(connector.stage, Some(ConnectorStage::Live));
        assert_eq!(connector.status, ConnectorStatus::PartialOutage);
        assert!(connector.status.is_outage());
        assert_eq!(connector.scopes.len(), 4);
        let institution = connector.institution.as_ref().expect("institution");
        assert_eq!(institution.short_name.as_deref(), Some("Hooli"));
        assert!(institution.logo.is_some());
        assert!(connector.stats.is_some());

        for bad in ["", "..", "web/../../users", "web?x=1"] {
            let err = GetConnector::new(au.clone(), bad.into())
                .request(&base())
                .expect_err("refused");
            assert_eq!(err.kind(), ErrorKind::InvalidId, "{bad:?}: {err}");
        }

        let list = ListConnectors::new()
            .parse(response(200, &fixture("connector-list.json")))
            .expect("list");
        assert_eq!(list.total_count, Some(3));
        assert!(list.data[1].scopes.is_empty(), "null scopes read as empty");
        assert_eq!(
            list.data[2].stage,
            Some(ConnectorStage::Other("gamma".into()))
        );
        assert_eq!(list.data[2].status, ConnectorStatus::UnderImprovement);
    }

    #[test]
    fn connection_model_feeds_the_policies() {
        use basiq_core::policy::connectors::ConnectorStatusView;
        use basiq_core::policy::refresh::ConnectionView;
        let c: Connection = serde_json::from_str(&fixture("connection.json")).expect("connection");
        let view = ConnectionView::from(&c);
        assert_eq!(view.last_used, c.last_used);
        let connector = GetConnector::new(InstitutionId::new("AU00000").expect("id"), "x".into())
            .parse(response(200, &fixture("connector.json")))
            .expect("connector");
        let status = ConnectorStatusView::from(&connector);
        assert!(status.applies_to("AU00000", c.method.as_ref()));
    }
}
