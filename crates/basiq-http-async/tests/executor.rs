//! Unit tests of the async executor over fake transports (no sockets).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use basiq_core::auth::ExecutorConfig;
use basiq_core::clock::ManualClock;
use basiq_core::error::{Error, ErrorKind, TransportError, TransportErrorKind};
use basiq_core::id::UserId;
use basiq_core::operations::GetUser;
use basiq_core::secret::ApiKey;
use basiq_core::transport::{AsyncTransport, BoxFuture, HttpRequest, HttpResponse};
use basiq_http_async::AsyncExecutor;

const KEY: &str = "a2V5OnNlY3JldA==";

fn json(status: u16, body: serde_json::Value) -> HttpResponse {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap()
}

fn api_error(status: u16, code: &str, title: &str) -> HttpResponse {
    json(
        status,
        serde_json::json!({"type": "list", "correlationId": "corr-1",
            "data": [{"type": "error", "code": code, "title": title, "detail": title}]}),
    )
}

fn user(id: &str) -> HttpResponse {
    json(
        200,
        serde_json::json!({"type": "user", "id": id, "email": "a@b.c"}),
    )
}

fn token_response(n: usize) -> HttpResponse {
    json(
        200,
        serde_json::json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": 3600}),
    )
}

type Handler = dyn Fn(&Fake, &HttpRequest) -> Result<HttpResponse, TransportError> + Send + Sync;

/// A scriptable transport: counts `/token` and API calls, optionally slows `/token` down.
struct Fake {
    token_calls: AtomicUsize,
    api_calls: AtomicUsize,
    token_delay: Duration,
    handler: Box<Handler>,
    seen_auth: Mutex<Vec<String>>,
}

impl std::fmt::Debug for Fake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fake")
    }
}

impl Fake {
    fn new(
        token_delay: Duration,
        handler: impl Fn(&Fake, &HttpRequest) -> Result<HttpResponse, TransportError>
            + Send
            + Sync
            + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            token_calls: AtomicUsize::new(0),
            api_calls: AtomicUsize::new(0),
            token_delay,
            handler: Box::new(handler),
            seen_auth: Mutex::new(Vec::new()),
        })
    }

    fn tokens(&self) -> usize {
        self.token_calls.load(Ordering::SeqCst)
    }

    fn api(&self) -> usize {
        self.api_calls.load(Ordering::SeqCst)
    }
}

fn is_token(request: &HttpRequest) -> bool {
    request.uri().path() == "/token"
}

fn bearer(request: &HttpRequest) -> String {
    request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

impl AsyncTransport for Fake {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            if is_token(&request) {
                self.token_calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(self.token_delay).await;
            } else {
                self.api_calls.fetch_add(1, Ordering::SeqCst);
                self.seen_auth.lock().unwrap().push(bearer(&request));
            }
            (self.handler)(self, &request)
        })
    }
}

/// Tokens `tok-1`, `tok-2`, … ; users answered for any bearer.
fn happy(fake: &Fake, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
    if is_token(request) {
        Ok(token_response(fake.tokens()))
    } else {
        Ok(user("u1"))
    }
}

fn executor(fake: &Arc<Fake>, clock: &ManualClock) -> AsyncExecutor {
    let config = ExecutorConfig::new("http://127.0.0.1:9".parse().unwrap(), ApiKey::new(KEY))
        .with_clock(Arc::new(clock.clone()));
    // Retries wait on the virtual clock instead of real time.
    let waited = clock.clone();
    AsyncExecutor::new(config, fake.clone())
        .unwrap()
        .with_sleep(move |d| {
            waited.advance(d);
            Box::pin(async {})
        })
}

fn get_user() -> GetUser {
    GetUser::new(UserId::new("u1").unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_callers_share_one_slow_token_fetch() {
    let fake = Fake::new(Duration::from_millis(100), happy);
    let exec = executor(&fake, &ManualClock::starting_now());
    let calls = (0..64).map(|_| {
        let exec = exec.clone();
        tokio::spawn(async move { exec.execute(get_user()).await })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await.unwrap().unwrap();
    }
    assert_eq!(fake.tokens(), 1);
    assert_eq!(fake.api(), 64);
    assert!(fake
        .seen_auth
        .lock()
        .unwrap()
        .iter()
        .all(|a| a == "Bearer tok-1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_fetch_does_not_strand_the_waiters() {
    let fake = Fake::new(Duration::from_millis(200), happy);
    let exec = executor(&fake, &ManualClock::starting_now());
    // The first caller takes the fetch gate, then is cancelled mid-fetch.
    let first = tokio::time::timeout(Duration::from_millis(50), exec.execute(get_user())).await;
    assert!(first.is_err(), "the first call should have been cancelled");
    // A caller that was waiting (or comes later) fetches itself and succeeds.
    exec.execute(get_user()).await.unwrap();
    assert_eq!(fake.tokens(), 2);
    // And the token is cached from now on.
    exec.execute(get_user()).await.unwrap();
    assert_eq!(fake.tokens(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn waiters_survive_the_fetcher_being_cancelled() {
    let fake = Fake::new(Duration::from_millis(200), happy);
    let exec = executor(&fake, &ManualClock::starting_now());
    let waiter = {
        let exec = exec.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            exec.execute(get_user()).await
        })
    };
    let first = tokio::time::timeout(Duration::from_millis(60), exec.execute(get_user())).await;
    assert!(first.is_err());
    waiter.await.unwrap().unwrap();
    assert_eq!(fake.tokens(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_token_reauthenticates_once_and_retries() {
    // `tok-1` is refused as expired; `tok-2` works.
    let fake = Fake::new(Duration::ZERO, |fake, request| {
        if is_token(request) {
            Ok(token_response(fake.tokens()))
        } else if bearer(request) == "Bearer tok-1" {
            Ok(api_error(403, "access-denied", "Token has expired"))
        } else {
            Ok(user("u1"))
        }
    });
    let exec = executor(&fake, &ManualClock::starting_now());
    let user = exec.execute(get_user()).await.unwrap();
    assert_eq!(user.id.as_str(), "u1");
    assert_eq!(fake.tokens(), 2);
    assert_eq!(
        *fake.seen_auth.lock().unwrap(),
        vec!["Bearer tok-1", "Bearer tok-2"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_rejections_reuse_the_newer_token() {
    // Many callers hold `tok-1` when Basiq starts refusing it: only the first rejection discards
    // the cached token; the others find `tok-2` already cached (or being fetched) and do not
    // fetch again.
    let revoked = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = revoked.clone();
    let fake = Fake::new(Duration::from_millis(50), move |fake, request| {
        if is_token(request) {
            Ok(token_response(fake.tokens()))
        } else if flag.load(Ordering::SeqCst) && bearer(request) == "Bearer tok-1" {
            Ok(api_error(
                401,
                "invalid-authorization-token",
                "Invalid authorization token.",
            ))
        } else {
            Ok(user("u1"))
        }
    });
    let exec = executor(&fake, &ManualClock::starting_now());
    exec.execute(get_user()).await.unwrap();
    assert_eq!(fake.tokens(), 1);
    revoked.store(true, Ordering::SeqCst);
    let calls: Vec<_> = (0..32)
        .map(|_| {
            let exec = exec.clone();
            tokio::spawn(async move { exec.execute(get_user()).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(fake.tokens(), 2, "exactly one re-authentication");
    let seen = fake.seen_auth.lock().unwrap();
    assert!(seen.iter().filter(|a| *a == "Bearer tok-1").count() > 1);
    assert!(seen
        .iter()
        .all(|a| a == "Bearer tok-1" || a == "Bearer tok-2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_rejection_is_an_error_not_a_loop() {
    let fake = Fake::new(Duration::ZERO, |fake, request| {
        if is_token(request) {
            Ok(token_response(fake.tokens()))
        } else {
            Ok(api_error(403, "access-denied", "Token has expired"))
        }
    });
    let exec = executor(&fake, &ManualClock::starting_now());
    let err = exec.execute(get_user()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert_eq!(fake.tokens(), 2);
    assert_eq!(fake.api(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn forbidden_access_does_not_reauthenticate() {
    let fake = Fake::new(Duration::ZERO, |fake, request| {
        if is_token(request) {
            Ok(token_response(fake.tokens()))
        } else {
            Ok(api_error(
                403,
                "forbidden-access",
                "Access to this resource is forbidden",
            ))
        }
    });
    let exec = executor(&fake, &ManualClock::starting_now());
    let err = exec.execute(get_user()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    assert_eq!((fake.tokens(), fake.api()), (1, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_api_key_is_not_retried() {
    let fake = Fake::new(Duration::ZERO, |_, request| {
        if is_token(request) {
            Ok(api_error(
                404,
                "resource-not-found",
                "Unable to authenticate. Please, check your API key",
            ))
        } else {
            Ok(user("u1"))
        }
    });
    let exec = executor(&fake, &ManualClock::starting_now());
    let err = exec.execute(get_user()).await.unwrap_err();
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

#[tokio::test(flavor = "multi_thread")]
async fn errors_carry_the_operation_ids_and_correlation_id() {
    let fake = Fake::new(Duration::ZERO, |fake, request| {
        if is_token(request) {
            Ok(token_response(fake.tokens()))
        } else {
            Ok(api_error(404, "resource-not-found", "Resource not found"))
        }
    });
    let exec = executor(&fake, &ManualClock::starting_now());
    let err = exec.execute(get_user()).await.unwrap_err();
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

#[tokio::test(flavor = "multi_thread")]
async fn idempotent_calls_are_retried_per_policy_and_keep_their_ids() {
    let fake = Fake::new(Duration::ZERO, |fake, request| {
        if is_token(request) {
            Ok(token_response(fake.tokens()))
        } else {
            Err(TransportError::new(
                TransportErrorKind::Io,
                "connection reset",
            ))
        }
    });
    let exec = executor(&fake, &ManualClock::starting_now());
    let err = exec.execute(get_user()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert_eq!(
        err.context().unwrap().user_id.as_ref().unwrap().as_str(),
        "u1"
    );
    let attempts = basiq_core::retry::RetryPolicy::default().max_attempts as usize;
    assert_eq!(fake.api(), attempts, "a GET is retried up to max_attempts");
    assert_eq!(fake.tokens(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transient_5xx_on_a_get_is_retried_then_succeeds() {
    let fake = Fake::new(Duration::ZERO, |fake, request| {
        if is_token(request) {
            Ok(token_response(fake.tokens()))
        } else if fake.api() == 1 {
            Ok(api_error(
                503,
                "service-unavailable",
                "Service is currently unavailable",
            ))
        } else {
            Ok(user("u1"))
        }
    });
    let clock = ManualClock::starting_now();
    let exec = executor(&fake, &clock);
    exec.execute(get_user()).await.unwrap();
    assert_eq!((fake.tokens(), fake.api()), (1, 2));
}

#[tokio::test(flavor = "multi_thread")]
async fn non_idempotent_calls_are_never_retried() {
    use basiq_core::models::NewUser;
    use basiq_core::operations::CreateUser;
    for failure in [
        TransportErrorKind::Io,
        TransportErrorKind::Timeout,
        TransportErrorKind::Connect,
    ] {
        let fake = Fake::new(Duration::ZERO, move |fake, request| {
            if is_token(request) {
                Ok(token_response(fake.tokens()))
            } else {
                Err(TransportError::new(failure, "failed"))
            }
        });
        let exec = executor(&fake, &ManualClock::starting_now());
        let new_user = NewUser {
            email: Some("a@b.c".into()),
            ..NewUser::default()
        };
        let err = exec.execute(CreateUser::new(new_user)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transport);
        assert_eq!(
            fake.api(),
            1,
            "{failure:?}: POST /users must not be repeated"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn token_fetch_is_retried_on_5xx_under_the_gate() {
    let fake = Fake::new(Duration::ZERO, |fake, request| {
        if is_token(request) {
            if fake.tokens() == 1 {
                Ok(api_error(500, "internal-server-error", "boom"))
            } else {
                Ok(token_response(fake.tokens()))
            }
        } else {
            Ok(user("u1"))
        }
    });
    let exec = executor(&fake, &ManualClock::starting_now());
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let exec = exec.clone();
            tokio::spawn(async move { exec.execute(get_user()).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(
        fake.tokens(),
        2,
        "one failed fetch, one retry, nobody else fetched"
    );
    assert!(fake
        .seen_auth
        .lock()
        .unwrap()
        .iter()
        .all(|a| a == "Bearer tok-2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_refresh_ahead_keeps_serving_the_valid_token() {
    let fail_tokens = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = fail_tokens.clone();
    let fake = Fake::new(Duration::ZERO, move |fake, request| {
        if is_token(request) {
            if flag.load(Ordering::SeqCst) {
                Ok(api_error(500, "internal-server-error", "boom"))
            } else {
                Ok(token_response(fake.tokens()))
            }
        } else {
            Ok(user("u1"))
        }
    });
    let clock = ManualClock::starting_now();
    let exec = executor(&fake, &clock);
    exec.execute(get_user()).await.unwrap();
    // Inside the refresh-ahead window (at most 60 s before expiry) with /token failing.
    fail_tokens.store(true, Ordering::SeqCst);
    clock.advance(Duration::from_secs(3599));
    exec.execute(get_user()).await.unwrap();
    assert_eq!(fake.tokens(), 2, "one refresh attempt");
    // The failed refresh is not retried on every call.
    exec.execute(get_user()).await.unwrap();
    assert_eq!(fake.tokens(), 2);
    // Once the token has expired, the failure surfaces.
    clock.advance(Duration::from_secs(2));
    let err = exec.execute(get_user()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(
        *fake.seen_auth.lock().unwrap(),
        vec!["Bearer tok-1", "Bearer tok-1", "Bearer tok-1"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_ahead_does_not_stall_other_callers() {
    let fake = Fake::new(Duration::from_millis(1000), happy);
    let clock = ManualClock::starting_now();
    let exec = executor(&fake, &clock);
    exec.execute(get_user()).await.unwrap();
    clock.advance(Duration::from_secs(3599)); // inside the refresh-ahead window
    let refresher = {
        let exec = exec.clone();
        tokio::spawn(async move { exec.execute(get_user()).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    // While the refresh is in flight, another caller is served the still-valid token at once.
    let quick = tokio::time::timeout(Duration::from_millis(500), exec.execute(get_user())).await;
    quick.expect("must not wait for the refresh").unwrap();
    refresher.await.unwrap().unwrap();
    assert_eq!(fake.tokens(), 2);
    let seen = fake.seen_auth.lock().unwrap().clone();
    assert_eq!(seen, vec!["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn client_tokens_are_bound_to_the_user_and_not_cached() {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    let fake = Fake::new(Duration::ZERO, move |fake, request| {
        if is_token(request) {
            seen.lock()
                .unwrap()
                .push(String::from_utf8(request.body().clone()).unwrap());
            Ok(token_response(fake.tokens()))
        } else {
            Ok(user("u1"))
        }
    });
    let exec = executor(&fake, &ManualClock::starting_now());
    let uid = UserId::new("u1").unwrap();
    let a = exec.client_token(uid.clone()).await.unwrap();
    let b = exec.client_token(uid).await.unwrap();
    assert!(!a.same_as(&b));
    assert!(!format!("{a:?} {exec:?}").contains("tok-"));
    assert_eq!(
        *bodies.lock().unwrap(),
        vec![
            "scope=CLIENT_ACCESS&userId=u1",
            "scope=CLIENT_ACCESS&userId=u1"
        ]
    );
    // The server token cache is untouched: the next API call fetches a server token.
    exec.execute(get_user()).await.unwrap();
    assert_eq!(fake.tokens(), 3);
}

mod with_mockall {
    use super::*;

    mockall::mock! {
        Transport {}
        impl AsyncTransport for Transport {
            fn send<'a>(&'a self, request: HttpRequest) -> BoxFuture<'a, Result<HttpResponse, TransportError>>;
        }
    }

    impl std::fmt::Debug for MockTransport {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("MockTransport")
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn invalid_key_sends_exactly_one_request() {
        let mut mock = MockTransport::new();
        mock.expect_send()
            .withf(|r| r.uri().path() == "/token")
            .times(1)
            .returning(|_| {
                Box::pin(async {
                    Ok(api_error(
                        404,
                        "resource-not-found",
                        "Unable to authenticate. Please, check your API key",
                    ))
                })
            });
        let config = ExecutorConfig::new("http://127.0.0.1:9".parse().unwrap(), ApiKey::new(KEY));
        let exec = AsyncExecutor::new(config, Arc::new(mock)).unwrap();
        let err = exec.execute(get_user()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidApiKey);
    }
}
