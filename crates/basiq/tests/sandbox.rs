//! The same checks against Basiq's real sandbox, or the emulator.
//!
//! By default every test here runs against the embedded emulator, like the rest of the suite.
//! With `BASIQ_SANDBOX_API_KEY` set to a sandbox application's key, the same tests run against
//! Basiq itself (`BASIQ_SANDBOX_BASE_URL`, default `https://au-api.basiq.io`):
//!
//! ```text
//! BASIQ_SANDBOX_API_KEY=… cargo test -p basiq --test sandbox -- --test-threads 1
//! ```
//!
//! What only the emulator can stage — virtual time, injected faults, the Consent UI without a
//! browser — is skipped there, with a note on stderr. CI never sets the variable (`.ci/run` and
//! `cargo xtask ci` remove it), so CI never talks to Basiq. Each test deletes the users it
//! created. See docs/releasing.md.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use basiq::error::TransportError;
use basiq::id::InstitutionId;
use basiq::transport::{AsyncTransport, BoxFuture, HttpRequest, HttpResponse};
use basiq::{ConsentAction, ConsentOutcome, ErrorKind, ReqwestTransport};
use basiq_mock::MockServer;

/// Where these tests run.
enum Target {
    Emulator(MockServer),
    Sandbox { api_key: String, base_url: String },
}

impl Target {
    fn from_env() -> Self {
        match std::env::var("BASIQ_SANDBOX_API_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty())
        {
            Some(api_key) => Self::Sandbox {
                api_key,
                base_url: std::env::var("BASIQ_SANDBOX_BASE_URL")
                    .unwrap_or_else(|_| basiq::DEFAULT_BASE_URL.to_owned()),
            },
            None => Self::Emulator(MockServer::start()),
        }
    }

    fn is_sandbox(&self) -> bool {
        matches!(self, Self::Sandbox { .. })
    }

    fn api_key(&self) -> String {
        match self {
            Self::Emulator(server) => server.api_key(),
            Self::Sandbox { api_key, .. } => api_key.clone(),
        }
    }

    fn base_url(&self) -> String {
        match self {
            Self::Emulator(server) => server.url(),
            Self::Sandbox { base_url, .. } => base_url.clone(),
        }
    }

    /// A client counting the `/token` requests it sends.
    fn client(&self) -> (basiq::Client, Arc<AtomicU64>) {
        let transport = CountingTransport::default();
        let tokens = transport.tokens.clone();
        let client = basiq::Client::builder()
            .api_key(self.api_key())
            .base_url(self.base_url())
            .transport(transport)
            .build()
            .unwrap();
        (client, tokens)
    }

    /// `false` (and a note) when `what` can only be staged on the emulator.
    fn emulator_only(&self, what: &str) -> bool {
        if self.is_sandbox() {
            eprintln!("skipped on Basiq's sandbox (emulator only): {what}");
            false
        } else {
            true
        }
    }
}

#[derive(Debug, Clone, Default)]
struct CountingTransport {
    inner: ReqwestTransport,
    tokens: Arc<AtomicU64>,
}

impl AsyncTransport for CountingTransport {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        if request.url().path().ends_with("/token") {
            self.tokens.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.send(request)
    }
}

#[tokio::test]
async fn one_server_token_for_a_users_lifecycle() {
    let target = Target::from_env();
    let (client, tokens) = target.client();
    let user = client
        .users()
        .create(common::new_user("sandbox-lifecycle@example.com"))
        .await
        .unwrap();
    let read = client.users().get(&user.id).await.unwrap();
    assert_eq!(read.id, user.id);
    assert_eq!(read.email.as_deref(), Some("sandbox-lifecycle@example.com"));
    let jobs = client.jobs().list_for_user(&user.id).await.unwrap();
    assert!(jobs.data.is_empty(), "a new user has no jobs");
    assert!(client.users().triage(&user.id).await.unwrap().is_empty());
    client.users().delete(&user.id).await.unwrap();
    assert_eq!(
        tokens.load(Ordering::SeqCst),
        1,
        "one server token for every call"
    );

    let gone = client.users().get(&user.id).await.unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::NotFound, "{gone}");
    let context = gone.context().expect("ids on the error");
    assert!(
        context.correlation_id.is_some(),
        "Basiq's correlationId: {gone}"
    );
}

#[tokio::test]
async fn a_wrong_api_key_is_a_typed_error_not_a_retry() {
    let target = Target::from_env();
    let client = basiq::Client::builder()
        .api_key(common::WRONG_KEY)
        .base_url(target.base_url())
        .build()
        .unwrap();
    let err = client.users().get("some-user").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidApiKey, "{err}");
    assert!(!format!("{err} {err:?}").contains(common::WRONG_KEY));
    if target.emulator_only("counting the /token attempts server-side") {
        if let Target::Emulator(server) = &target {
            assert_eq!(server.stats().token_requests, 1, "never retried");
        }
    }
}

#[tokio::test]
async fn unsafe_ids_never_reach_the_network() {
    let target = Target::from_env();
    let (client, tokens) = target.client();
    for id in common::UNSAFE_IDS {
        let err = client.users().get(id).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidId, "{id:?}: {err}");
    }
    assert_eq!(
        tokens.load(Ordering::SeqCst),
        0,
        "nothing was sent, not even /token"
    );
}

#[tokio::test]
async fn a_consent_link_carries_a_client_token_bound_to_the_user() {
    let target = Target::from_env();
    let (client, tokens) = target.client();
    let user = client
        .users()
        .create(common::new_user("sandbox-consent@example.com"))
        .await
        .unwrap();
    let action = ConsentAction::connect_to(InstitutionId::new("AU00000").unwrap());
    let outcome = client.consent_url(&user.id, action).await.unwrap();
    let ConsentOutcome::Link(link) = outcome else {
        panic!("a new user gets a link: {outcome:?}");
    };
    let url = link.expose_url();
    assert!(url
        .query_pairs()
        .any(|(k, v)| k == "token" && !v.is_empty()));
    assert!(url
        .query_pairs()
        .any(|(k, v)| k == "institutionId" && v == "AU00000"));
    assert!(!link.redacted_url().contains(
        url.query_pairs()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
            .as_str()
    ));
    // The server token plus one client token for the link.
    assert_eq!(tokens.load(Ordering::SeqCst), 2);
    client.users().delete(&user.id).await.unwrap();
}

#[tokio::test]
async fn the_sandbox_bank_is_listed_among_the_connectors() {
    let target = Target::from_env();
    let (client, _) = target.client();
    let connectors = client
        .connectors()
        .list_filtered("connector.id.eq('AU00000')")
        .await
        .unwrap();
    assert!(
        connectors.data.iter().any(|c| c.id.as_str() == "AU00000"),
        "Hooli (AU00000) is Basiq's sandbox bank"
    );
}

#[tokio::test]
async fn a_failing_sandbox_login_becomes_a_user_action() {
    let target = Target::from_env();
    // Basiq's sandbox has no way to submit the Consent UI without a browser.
    if !target.emulator_only("connecting through the Consent UI without a browser") {
        return;
    }
    // On the emulator's virtual time: the job's steps take no real time.
    let (server, clock) = common::virtual_time_server();
    let client = common::async_on_virtual_time(&server, &clock)
        .build()
        .unwrap();
    let user = client
        .users()
        .create(common::new_user("sandbox-bighead@example.com"))
        .await
        .unwrap();
    let action = ConsentAction::connect_to(InstitutionId::new("AU00000").unwrap());
    let ConsentOutcome::Link(link) = client.consent_url(&user.id, action).await.unwrap() else {
        panic!("a link");
    };
    let job = client
        .execute(common::SubmitConsent::new(
            &link,
            Some(("bighead", "password")),
        ))
        .await
        .unwrap();
    let report = client
        .jobs()
        .wait(job.as_str(), basiq::jobs::PollConfig::default())
        .await
        .unwrap();
    let diagnosis = report.diagnosis().expect("the job failed");
    assert_eq!(diagnosis.failure.code.as_str(), "invalid-credentials");
    assert!(matches!(
        diagnosis.class,
        basiq::jobs::FailureClass::UserActionRequired(_)
    ));
}
