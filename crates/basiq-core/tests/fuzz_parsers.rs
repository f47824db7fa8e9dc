//! A bounded fuzz run of every public parser: whatever a server (or a webhook sender, or a
//! caller) hands them — random bytes, truncated or mutated real payloads, any status — they
//! return a value or a typed error; they never panic, and a decode error never quotes a token.
//!
//! Bounded (`FUZZ_CASES`, default 256 cases per parser) so it runs in CI on every build; set
//! `PROPTEST_CASES` higher for a longer local run.

use http::{HeaderMap, HeaderValue, StatusCode};
use proptest::prelude::*;
use time::OffsetDateTime;
use url::Url;

use basiq_core::api::mfa::{AnswerJobMfa, MfaAnswers};
use basiq_core::api::models::{AccountList, ConnectionList, JobList, TransactionList};
use basiq_core::api::operations::*;
use basiq_core::engine::operation::{retry_after, Operation};
use basiq_core::error::{ApiError, Error};
use basiq_core::id::{AccountId, ConnectionId, InstitutionId, JobId, TransactionId, UserId};
use basiq_core::policy::pagination::{NextPage, Page};
use basiq_core::policy::token::PostToken;
use basiq_core::policy::webhooks::{self, WebhookSecret};
use basiq_core::secret::ApiKey;

/// Real payloads to mutate: every fixture the project keeps.
const FIXTURES: &[&str] = &[
    include_str!("../../../fixtures/json/account-list.json"),
    include_str!("../../../fixtures/json/account.json"),
    include_str!("../../../fixtures/json/connection-list.json"),
    include_str!("../../../fixtures/json/connection.json"),
    include_str!("../../../fixtures/json/connector-list.json"),
    include_str!("../../../fixtures/json/connector.json"),
    include_str!("../../../fixtures/json/error-invalid-api-key.json"),
    include_str!("../../../fixtures/json/error-list.json"),
    include_str!("../../../fixtures/json/error-token-expired.json"),
    include_str!("../../../fixtures/json/job-failed-account-not-accessible.json"),
    include_str!("../../../fixtures/json/job-failed-invalid-credentials.json"),
    include_str!("../../../fixtures/json/job-failed-service-unavailable.json"),
    include_str!("../../../fixtures/json/job-list.json"),
    include_str!("../../../fixtures/json/job-mfa-in-progress.json"),
    include_str!("../../../fixtures/json/job-success.json"),
    include_str!("../../../fixtures/json/refresh-all-jobs.json"),
    include_str!("../../../fixtures/json/refresh-job.json"),
    include_str!("../../../fixtures/json/token.json"),
    include_str!("../../../fixtures/json/transaction-page.json"),
    include_str!("../../../fixtures/json/user.json"),
];

const TOKEN_MARK: &str = "eyJfuzzTOKEN";

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256)
}

/// A body: random bytes, or a fixture truncated and with a few bytes replaced (mutations keep
/// most of the structure, so the parsers get deep into the document before it breaks).
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        (
            0..FIXTURES.len(),
            any::<prop::sample::Index>(),
            proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        )
            .prop_map(|(i, cut, edits)| {
                let mut bytes = FIXTURES[i].as_bytes().to_vec();
                for (at, b) in edits {
                    let at = at.index(bytes.len());
                    bytes[at] = b;
                }
                bytes.truncate(cut.index(bytes.len() + 1));
                bytes
            }),
        // Type confusion: values where objects are expected, with a token-like string.
        prop_oneof![
            Just(format!(r#""{TOKEN_MARK}""#)),
            Just(format!(
                r#"{{"access_token":"{TOKEN_MARK}","expires_in":"x"}}"#
            )),
            Just(format!(r#"{{"type":"list","data":"{TOKEN_MARK}"}}"#)),
            Just(format!(r#"{{"id":{{"id":"{TOKEN_MARK}"}}}}"#)),
            Just("null".to_owned()),
            Just("[]".to_owned()),
            Just("1e999999".to_owned()),
            Just("[".repeat(300)),
        ]
        .prop_map(String::into_bytes),
    ]
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![Just(200u16), Just(201), Just(202), Just(204), 100u16..600]
}

fn response(status: u16, body: Vec<u8>, retry: Option<String>) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(body);
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    if let Some(value) = retry.and_then(|v| HeaderValue::from_str(&v).ok()) {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, value);
    }
    response
}

/// Runs `op.parse` and checks what can always be checked of the result: a decode error never
/// quotes a string from the body (an answer of the wrong shape may carry a token), and is not
/// retryable. (A non-2xx body is kept, 256 characters at most, for support; the executors scrub
/// the secrets they sent from it.)
fn check<O: Operation>(op: &O, status: u16, body: &[u8]) -> Result<(), TestCaseError> {
    if let Err(e) = op.parse(response(status, body.to_vec(), None)) {
        let shown = format!("{e} {e:?}");
        if let Error::Decode { .. } = e {
            prop_assert!(!shown.contains(TOKEN_MARK), "{shown}");
            prop_assert!(!e.is_retryable());
        }
    }
    Ok(())
}

fn ids() -> (UserId, ConnectionId, JobId) {
    (
        UserId::new("u1").unwrap(),
        ConnectionId::new("c1").unwrap(),
        JobId::new("j1").unwrap(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn every_operation_parses_any_answer(status in status(), body in body()) {
        let (u, c, j) = ids();
        check(&CreateUser::new(Default::default()), status, &body)?;
        check(&GetUser::new(u.clone()), status, &body)?;
        check(&UpdateUser::new(u.clone(), Default::default()), status, &body)?;
        check(&DeleteUser::new(u.clone()), status, &body)?;
        check(&GetJob::new(j.clone()), status, &body)?;
        check(&ListUserJobs::new(u.clone()), status, &body)?;
        check(&ListConnections::new(u.clone()), status, &body)?;
        check(&RefreshAllConnections::new(u.clone()), status, &body)?;
        check(&GetConnection::new(u.clone(), c.clone()), status, &body)?;
        check(&DeleteConnection::new(u.clone(), c.clone()), status, &body)?;
        check(&RefreshConnection::new(u.clone(), c.clone()), status, &body)?;
        check(&PurgeConnection::new(u.clone(), c.clone()), status, &body)?;
        check(&ListAccounts::new(u.clone()), status, &body)?;
        check(&GetAccount::new(u.clone(), AccountId::new("a1").unwrap()), status, &body)?;
        check(&ListTransactions::new(u.clone()), status, &body)?;
        check(&GetTransaction::new(u.clone(), TransactionId::new("t1").unwrap()), status, &body)?;
        check(&ListConnectors::new(), status, &body)?;
        check(&GetConnector::new(InstitutionId::new("AU00000").unwrap(), "web".into()), status, &body)?;
        check(&PostToken::server(ApiKey::new("k")), status, &body)?;
        // `/token` answers carry tokens: no error of any kind may quote one.
        if let Err(e) = PostToken::server(ApiKey::new("k")).parse(response(status, body.clone(), None)) {
            let shown = format!("{e} {e:?}");
            prop_assert!(!shown.contains(TOKEN_MARK), "{shown}");
        }
        check(&AnswerJobMfa::new(j, u, MfaAnswers::new(vec!["1".into()])), status, &body)?;
    }

    #[test]
    fn error_bodies_and_retry_after_never_panic(
        status in 100u16..600,
        body in body(),
        retry in proptest::option::of("[ -~]{0,24}"),
    ) {
        let code = StatusCode::from_u16(status).unwrap();
        let (error, _) = ApiError::from_body(code, &body, None);
        prop_assert!(error.raw_body.as_ref().is_none_or(|raw| raw.chars().count() <= 256));
        let _ = error.to_string();
        let _ = retry_after(&response(status, body, retry));
    }

    #[test]
    fn pages_and_next_links_never_panic(body in body(), link in "[ -~]{0,80}") {
        let base = Url::parse("https://au-api.basiq.io").unwrap();
        if let Ok(page) = serde_json::from_slice::<TransactionList>(&body) {
            let _ = page.next_page(&base);
        }
        for list in [
            serde_json::from_slice::<AccountList>(&body).ok().map(|p| p.next_page(&base).is_ok()),
            serde_json::from_slice::<ConnectionList>(&body).ok().map(|p| p.next_page(&base).is_ok()),
            serde_json::from_slice::<JobList>(&body).ok().map(|p| p.next_page(&base).is_ok()),
        ] {
            let _ = list;
        }
        if let Ok(next) = NextPage::<TransactionList>::new(&base, &link) {
            // Whatever was accepted stays on Basiq's origin, without credentials.
            prop_assert_eq!(next.url().origin(), base.origin());
            prop_assert!(next.url().username().is_empty() && next.url().password().is_none());
        }
    }

    #[test]
    fn ids_and_base_urls_never_panic(raw in "\\PC{0,40}") {
        if let Ok(id) = UserId::new(raw.clone()) {
            prop_assert!(!id.as_str().contains('/') && !id.as_str().is_empty());
        }
        let _ = ConnectionId::new(raw.clone());
        let _ = JobId::new(raw.clone());
        let _ = InstitutionId::new(raw.clone());
        let _ = basiq_core::engine::auth::parse_base_url(&raw);
    }

    #[test]
    fn webhook_verification_never_panics(
        id in "[ -~]{0,20}",
        timestamp in "[ -~]{0,14}",
        signature in "[ -~]{0,120}",
        body in body(),
        sign_it in any::<bool>(),
    ) {
        let secret = WebhookSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let signature = if sign_it {
            webhooks::sign(&secret, &id, 1_700_000_000, &body)
        } else {
            signature
        };
        let timestamp = if sign_it { "1700000000".to_owned() } else { timestamp };
        let mut headers = HeaderMap::new();
        for (name, value) in [("webhook-id", &id), ("webhook-timestamp", &timestamp), ("webhook-signature", &signature)] {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(name, v);
            }
        }
        let _ = webhooks::verify(&secret, &headers, &body, now);
    }
}
