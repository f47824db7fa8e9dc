//! Test support shared by the executor tests of `basiq-http-async` and `basiq-http-blocking`,
//! included by both with `#[path = "../../basiq-core/tests/support/fake_transport.rs"]` (not a
//! test target of basiq-core: Cargo only builds `tests/*.rs`).
//!
//! It holds the scripted transport [`Fake`] (each crate implements its own transport trait for
//! it in a few lines, with [`Fake::record`] and [`Fake::respond`]), Basiq's answers, and
//! `executor_scenarios!`, which stamps the scenarios that read the same on both executors — the
//! way `basiq/src/resources.rs` stamps the resource wrappers — given `#[$test]` and the
//! `[async]` / `[.await]` token groups (empty for the blocking executor). At the call site,
//! `executor(&fake, &clock)` must build the crate's executor over the fake.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use basiq_core::api::models::NewUser;
use basiq_core::api::operations::GetUser;
use basiq_core::clock::ManualClock;
use basiq_core::engine::auth::ExecutorConfig;
use basiq_core::engine::transport::{HttpRequest, HttpResponse};
use basiq_core::error::TransportError;
use basiq_core::id::UserId;
use basiq_core::secret::ApiKey;

pub const KEY: &str = "a2V5OnNlY3JldA==";

pub fn json(status: u16, body: serde_json::Value) -> HttpResponse {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap()
}

pub fn api_error(status: u16, code: &str, title: &str) -> HttpResponse {
    json(
        status,
        serde_json::json!({"type": "list", "correlationId": "corr-1",
            "data": [{"type": "error", "code": code, "title": title, "detail": title}]}),
    )
}

/// 403 `access-denied`: Basiq's answer to an expired token.
pub fn access_denied() -> HttpResponse {
    api_error(403, "access-denied", "Token has expired")
}

/// 401 `invalid-authorization-token`: Basiq's answer to a revoked or unknown token.
pub fn invalid_token() -> HttpResponse {
    api_error(
        401,
        "invalid-authorization-token",
        "Invalid authorization token.",
    )
}

/// `/token` 404: Basiq's answer to a wrong API key.
pub fn bad_key() -> HttpResponse {
    api_error(
        404,
        "resource-not-found",
        "Unable to authenticate. Please, check your API key",
    )
}

/// 503 `service-unavailable`.
pub fn unavailable() -> HttpResponse {
    api_error(
        503,
        "service-unavailable",
        "Service is currently unavailable",
    )
}

/// 500 `internal-server-error`.
pub fn boom() -> HttpResponse {
    api_error(500, "internal-server-error", "boom")
}

pub fn user(id: &str) -> HttpResponse {
    json(
        200,
        serde_json::json!({"type": "user", "id": id, "email": "a@b.c"}),
    )
}

pub fn token_response(n: usize) -> HttpResponse {
    json(
        200,
        serde_json::json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": 3600}),
    )
}

pub type Answer = Result<HttpResponse, TransportError>;
pub type Handler = dyn Fn(&Fake, &HttpRequest) -> Answer + Send + Sync;

/// A scriptable transport: counts `/token` and API calls, optionally slows `/token` down.
pub struct Fake {
    token_calls: AtomicUsize,
    api_calls: AtomicUsize,
    pub token_delay: Duration,
    handler: Box<Handler>,
    pub seen_auth: Mutex<Vec<String>>,
}

impl std::fmt::Debug for Fake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fake")
    }
}

impl Fake {
    pub fn new(
        token_delay: Duration,
        handler: impl Fn(&Fake, &HttpRequest) -> Answer + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            token_calls: AtomicUsize::new(0),
            api_calls: AtomicUsize::new(0),
            token_delay,
            handler: Box::new(handler),
            seen_auth: Mutex::new(Vec::new()),
        })
    }

    /// Issues `tok-1`, `tok-2`, … on `/token` and answers every API call with `api`.
    pub fn with_api(
        token_delay: Duration,
        api: impl Fn(&Fake, &HttpRequest) -> Answer + Send + Sync + 'static,
    ) -> Arc<Self> {
        Self::new(token_delay, move |fake, request| {
            if is_token(request) {
                Ok(token_response(fake.tokens()))
            } else {
                api(fake, request)
            }
        })
    }

    /// Answers every API call with `user("u1")` and `/token` with `token`.
    pub fn with_token(
        token_delay: Duration,
        token: impl Fn(&Fake, &HttpRequest) -> Answer + Send + Sync + 'static,
    ) -> Arc<Self> {
        Self::new(token_delay, move |fake, request| {
            if is_token(request) {
                token(fake, request)
            } else {
                Ok(user("u1"))
            }
        })
    }

    /// Serves users for any bearer until the returned flag is set; from then on Basiq refuses
    /// `tok-1` (401 `invalid-authorization-token`), as when a token is revoked.
    pub fn revoking_tok1(token_delay: Duration) -> (Arc<Self>, Arc<AtomicBool>) {
        let revoked = Arc::new(AtomicBool::new(false));
        let flag = revoked.clone();
        let fake = Self::with_api(token_delay, move |_, request| {
            if flag.load(Ordering::SeqCst) && bearer(request) == "Bearer tok-1" {
                Ok(invalid_token())
            } else {
                Ok(user("u1"))
            }
        });
        (fake, revoked)
    }

    pub fn tokens(&self) -> usize {
        self.token_calls.load(Ordering::SeqCst)
    }

    pub fn api(&self) -> usize {
        self.api_calls.load(Ordering::SeqCst)
    }

    /// The bearer of every API call so far, in order.
    pub fn seen(&self) -> Vec<String> {
        self.seen_auth.lock().unwrap().clone()
    }

    /// Counts `request` (an API call also notes its bearer); true when it is a `/token` call,
    /// which the transport then delays by `token_delay`.
    pub fn record(&self, request: &HttpRequest) -> bool {
        if is_token(request) {
            self.token_calls.fetch_add(1, Ordering::SeqCst);
            true
        } else {
            self.api_calls.fetch_add(1, Ordering::SeqCst);
            self.seen_auth.lock().unwrap().push(bearer(request));
            false
        }
    }

    /// The scripted answer to `request`.
    pub fn respond(&self, request: &HttpRequest) -> Answer {
        (self.handler)(self, request)
    }
}

pub fn is_token(request: &HttpRequest) -> bool {
    request.url().path() == "/token"
}

pub fn bearer(request: &HttpRequest) -> String {
    request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Tokens `tok-1`, `tok-2`, … ; users answered for any bearer.
pub fn happy(fake: &Fake, request: &HttpRequest) -> Answer {
    if is_token(request) {
        Ok(token_response(fake.tokens()))
    } else {
        Ok(user("u1"))
    }
}

/// The executor configuration of every test: a dead base URL (the fake answers), [`KEY`], and
/// the virtual clock.
pub fn config(clock: &ManualClock) -> ExecutorConfig {
    ExecutorConfig::new("http://127.0.0.1:9".parse().unwrap(), ApiKey::new(KEY))
        .with_clock(Arc::new(clock.clone()))
}

pub fn get_user() -> GetUser {
    GetUser::new(UserId::new("u1").unwrap())
}

pub fn new_user() -> NewUser {
    NewUser {
        email: Some("a@b.c".into()),
        ..NewUser::default()
    }
}

/// `POST /jobs/{job}/mfa` for user `u1`, answering `1234`.
pub fn answer_mfa(job: &str) -> basiq_core::api::mfa::AnswerJobMfa {
    basiq_core::api::mfa::AnswerJobMfa::new(
        basiq_core::id::JobId::new(job).unwrap(),
        UserId::new("u1").unwrap(),
        basiq_core::api::mfa::MfaAnswers::new(vec!["1234".into()]),
    )
}

/// `/token` issues `client-N` for a `CLIENT_ACCESS` form (bound to `u1`) and `tok-N` otherwise;
/// `POST /jobs/ok/mfa` is 202 with the job, `/jobs/down/mfa` 503, anything else a user.
pub fn mfa_api(fake: &Fake, request: &HttpRequest) -> Answer {
    if is_token(request) {
        let form = String::from_utf8_lossy(request.body()).into_owned();
        let n = fake.tokens();
        if form.contains("scope=CLIENT_ACCESS") {
            assert!(form.contains("userId=u1"), "{form}");
            return Ok(json(
                200,
                serde_json::json!({"access_token": format!("client-{n}"), "token_type": "Bearer", "expires_in": 3600}),
            ));
        }
        return Ok(token_response(n));
    }
    match request.url().path() {
        "/jobs/ok/mfa" => Ok(json(
            202,
            serde_json::json!({"type": "job", "id": "ok", "links": {"self": "/jobs/ok"}}),
        )),
        "/jobs/down/mfa" => Ok(unavailable()),
        _ => Ok(user("u1")),
    }
}

/// The scenarios that read the same on both executors (see the module docs).
macro_rules! executor_scenarios {
    (#[$test:meta], [$($async:tt)*], [$($await:tt)*]) => {
        /// An `Authentication::ClientToken` operation (`POST /jobs/{id}/mfa`) is sent with a
        /// fresh `CLIENT_ACCESS` token bound to its user — never the cached server token, which
        /// it leaves in place — and, not being idempotent, is never repeated after a 503.
        #[$test]
        $($async)* fn client_token_operations_get_a_fresh_client_token_and_no_retry() {
            let fake = Fake::new(Duration::ZERO, mfa_api);
            let exec = executor(&fake, &ManualClock::starting_now());
            exec.execute(get_user())$($await)*.unwrap();
            let job = exec.execute(answer_mfa("ok"))$($await)*.unwrap();
            assert_eq!(job.id.as_str(), "ok");
            exec.execute(get_user())$($await)*.unwrap();
            assert_eq!(
                fake.seen(),
                vec!["Bearer tok-1", "Bearer client-2", "Bearer tok-1"],
                "the server token is still cached and never sent on the MFA answer"
            );
            let err = exec.execute(answer_mfa("down"))$($await)*.unwrap_err();
            assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
            let ctx = err.context().unwrap();
            assert_eq!(ctx.user_id.as_ref().map(|u| u.as_str()), Some("u1"));
            assert_eq!(ctx.job_id.as_ref().map(|j| j.as_str()), Some("down"));
            assert_eq!(fake.api(), 4, "the failed answer was sent once");
            assert_eq!(fake.tokens(), 3, "one fresh client token per answer, none cached");
            assert_eq!(fake.seen().last().map(String::as_str), Some("Bearer client-3"));
        }

        /// Each request may take what is left of the call's deadline (150 s by default): all of
        /// it when the token is cached and nothing waited, less what a token fetch or a
        /// retry's wait took.
        #[$test]
        $($async)* fn each_request_gets_what_is_left_of_the_call_deadline() {
            use basiq_core::clock::Clock;
            use std::sync::atomic::{AtomicUsize, Ordering};
            use std::sync::{Arc, Mutex};
            let clock = ManualClock::starting_now();
            let timeouts = Arc::new(Mutex::new(Vec::new()));
            let api_calls = AtomicUsize::new(0);
            let (seen, fetch_clock) = (timeouts.clone(), clock.clone());
            let fake = Fake::new(Duration::ZERO, move |fake, request| {
                if is_token(request) {
                    // The fetch takes 10 s.
                    fetch_clock.advance(Duration::from_secs(10));
                    return Ok(token_response(fake.tokens()));
                }
                seen.lock().unwrap().push(request.limits().and_then(|l| l.timeout));
                // The second API request is refused once (503), and retried after a backoff.
                if api_calls.fetch_add(1, Ordering::SeqCst) == 1 {
                    Ok(unavailable())
                } else {
                    Ok(user("u1"))
                }
            });
            let exec = executor(&fake, &clock);
            exec.execute(get_user())$($await)*.unwrap();
            let before = clock.now();
            exec.execute(get_user())$($await)*.unwrap();
            let waited = Duration::try_from(clock.now() - before).unwrap();
            assert!(waited > Duration::ZERO, "the retry waited on the virtual clock");
            let whole = Duration::from_secs(150);
            assert_eq!(
                *timeouts.lock().unwrap(),
                vec![
                    Some(whole - Duration::from_secs(10)),
                    Some(whole),
                    Some(whole - waited),
                ]
            );
            assert_eq!(fake.tokens(), 1);
        }

        #[$test]
        $($async)* fn expired_token_reauthenticates_once_and_retries() {
            // `tok-1` is refused as expired; `tok-2` works.
            let fake = Fake::with_api(Duration::ZERO, |_, request| {
                if bearer(request) == "Bearer tok-1" {
                    Ok(access_denied())
                } else {
                    Ok(user("u1"))
                }
            });
            let exec = executor(&fake, &ManualClock::starting_now());
            let user = exec.execute(get_user())$($await)*.unwrap();
            assert_eq!(user.id.as_str(), "u1");
            assert_eq!(fake.tokens(), 2);
            assert_eq!(fake.seen(), vec!["Bearer tok-1", "Bearer tok-2"]);
        }

        /// A rejection of the fresh token too (403 `access-denied`, 401
        /// `invalid-authorization-token`) is an error: one re-authentication only.
        #[$test]
        $($async)* fn a_second_rejection_is_an_error_not_a_loop() {
            for rejection in [access_denied, invalid_token] {
                let fake = Fake::with_api(Duration::ZERO, move |_, _| Ok(rejection()));
                let exec = executor(&fake, &ManualClock::starting_now());
                let err = exec.execute(get_user())$($await)*.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Unauthorized);
                assert_eq!((fake.tokens(), fake.api()), (2, 2));
            }
        }

        #[$test]
        $($async)* fn invalid_api_key_is_not_retried() {
            let fake = Fake::with_token(Duration::ZERO, |_, _| Ok(bad_key()));
            let exec = executor(&fake, &ManualClock::starting_now());
            let err = exec.execute(get_user())$($await)*.unwrap_err();
            assert!(matches!(err, Error::InvalidApiKey { .. }), "{err:?}");
            assert_eq!(err.kind(), ErrorKind::InvalidApiKey);
            assert_eq!((fake.tokens(), fake.api()), (1, 0));
            // The error names the user the call was about.
            assert_eq!(
                err.context()
                    .and_then(|c| c.user_id.as_ref())
                    .map(|u| u.as_str()),
                Some("u1")
            );
            assert!(!err.to_string().contains(KEY));
        }

        #[$test]
        $($async)* fn invalid_input_fails_before_any_request() {
            let fake = Fake::new(Duration::ZERO, happy);
            let exec = executor(&fake, &ManualClock::starting_now());
            let err = exec
                .execute(CreateUser::new(Default::default()))
                $($await)*
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert_eq!((fake.tokens(), fake.api()), (0, 0));
        }

        #[$test]
        $($async)* fn errors_carry_the_operation_ids_and_correlation_id() {
            let fake = Fake::with_api(Duration::ZERO, |_, _| {
                Ok(api_error(404, "resource-not-found", "Resource not found"))
            });
            let exec = executor(&fake, &ManualClock::starting_now());
            let err = exec.execute(get_user())$($await)*.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound);
            let ctx = err.context().unwrap();
            assert_eq!(ctx.user_id.as_ref().unwrap().as_str(), "u1");
            assert_eq!(ctx.correlation_id.as_deref(), Some("corr-1"));
            let text = err.to_string();
            assert!(
                text.contains("userId=u1") && text.contains("resource-not-found"),
                "{text}"
            );
        }

        /// A GET failing below HTTP is retried up to `max_attempts` on one token, and the final
        /// error still names the user.
        #[$test]
        $($async)* fn idempotent_calls_are_retried_per_policy_and_keep_their_ids() {
            let fake = Fake::with_api(Duration::ZERO, |_, _| {
                Err(TransportError::new(
                    TransportErrorKind::Io,
                    "connection reset",
                ))
            });
            let exec = executor(&fake, &ManualClock::starting_now());
            let err = exec.execute(get_user())$($await)*.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Transport);
            assert_eq!(
                err.context().unwrap().user_id.as_ref().unwrap().as_str(),
                "u1"
            );
            assert!(err.to_string().contains("userId=u1"));
            let attempts = basiq_core::policy::retry::RetryPolicy::default().max_attempts as usize;
            assert_eq!(fake.api(), attempts, "a GET is retried up to max_attempts");
            assert_eq!(fake.tokens(), 1);
        }

        #[$test]
        $($async)* fn non_idempotent_calls_are_never_retried() {
            for failure in [
                TransportErrorKind::Io,
                TransportErrorKind::Timeout,
                TransportErrorKind::Connect,
            ] {
                let fake = Fake::with_api(Duration::ZERO, move |_, _| {
                    Err(TransportError::new(failure, "failed"))
                });
                let exec = executor(&fake, &ManualClock::starting_now());
                let err = exec
                    .execute(CreateUser::new(new_user()))
                    $($await)*
                    .unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Transport);
                assert_eq!(
                    fake.api(),
                    1,
                    "{failure:?}: POST /users must not be repeated"
                );
            }
        }
    };
}
