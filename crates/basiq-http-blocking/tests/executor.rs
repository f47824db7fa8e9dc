//! Unit tests of the blocking executor over fake transports (no sockets).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use basiq_core::auth::ExecutorConfig;
use basiq_core::clock::ManualClock;
use basiq_core::error::{Error, ErrorKind, TransportError, TransportErrorKind};
use basiq_core::id::UserId;
use basiq_core::operations::{CreateUser, GetUser};
use basiq_core::secret::ApiKey;
use basiq_core::transport::{BlockingTransport, HttpRequest, HttpResponse};
use basiq_http_blocking::BlockingExecutor;

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

impl BlockingTransport for Fake {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        if is_token(&request) {
            self.token_calls.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(self.token_delay);
        } else {
            self.api_calls.fetch_add(1, Ordering::SeqCst);
            self.seen_auth.lock().unwrap().push(bearer(&request));
        }
        (self.handler)(self, &request)
    }
}

fn happy(fake: &Fake, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
    if is_token(request) {
        Ok(token_response(fake.tokens()))
    } else {
        Ok(user("u1"))
    }
}

fn executor(fake: &Arc<Fake>, clock: &ManualClock) -> BlockingExecutor {
    let config = ExecutorConfig::new("http://127.0.0.1:9".parse().unwrap(), ApiKey::new(KEY))
        .with_clock(Arc::new(clock.clone()));
    // Retries wait on the virtual clock instead of real time.
    let waited = clock.clone();
    BlockingExecutor::new(config, fake.clone())
        .unwrap()
        .with_sleep(move |d| waited.advance(d))
}

fn get_user() -> GetUser {
    GetUser::new(UserId::new("u1").unwrap())
}

#[test]
fn threads_share_one_slow_token_fetch() {
    let fake = Fake::new(Duration::from_millis(100), happy);
    let exec = executor(&fake, &ManualClock::starting_now());
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..25 {
                    exec.execute(get_user()).unwrap();
                }
            });
        }
    });
    assert_eq!(fake.tokens(), 1);
    assert_eq!(fake.api(), 200);
}

#[test]
fn expired_token_reauthenticates_once_and_retries() {
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
    exec.execute(get_user()).unwrap();
    assert_eq!(fake.tokens(), 2);
    assert_eq!(
        *fake.seen_auth.lock().unwrap(),
        vec!["Bearer tok-1", "Bearer tok-2"]
    );
}

#[test]
fn stale_rejections_reuse_the_newer_token() {
    let revoked = Arc::new(AtomicBool::new(false));
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
    exec.execute(get_user()).unwrap();
    revoked.store(true, Ordering::SeqCst);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| exec.execute(get_user()).unwrap());
        }
    });
    assert_eq!(fake.tokens(), 2, "exactly one re-authentication");
}

#[test]
fn a_second_rejection_is_an_error_not_a_loop() {
    let fake = Fake::new(Duration::ZERO, |fake, request| {
        if is_token(request) {
            Ok(token_response(fake.tokens()))
        } else {
            Ok(api_error(
                401,
                "invalid-authorization-token",
                "Invalid authorization token.",
            ))
        }
    });
    let exec = executor(&fake, &ManualClock::starting_now());
    let err = exec.execute(get_user()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert_eq!((fake.tokens(), fake.api()), (2, 2));
}

#[test]
fn invalid_api_key_is_not_retried() {
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
    let err = exec.execute(get_user()).unwrap_err();
    assert!(matches!(err, Error::InvalidApiKey { .. }), "{err:?}");
    assert_eq!((fake.tokens(), fake.api()), (1, 0));
    assert!(!err.to_string().contains(KEY));
}

#[test]
fn invalid_input_fails_before_any_request() {
    let fake = Fake::new(Duration::ZERO, happy);
    let exec = executor(&fake, &ManualClock::starting_now());
    let err = exec
        .execute(CreateUser::new(Default::default()))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!((fake.tokens(), fake.api()), (0, 0));
}

#[test]
fn errors_carry_the_operation_ids_after_retries() {
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
    let err = exec.execute(get_user()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert_eq!(
        err.context().unwrap().user_id.as_ref().unwrap().as_str(),
        "u1"
    );
    assert!(err.to_string().contains("userId=u1"));
    let attempts = basiq_core::retry::RetryPolicy::default().max_attempts as usize;
    assert_eq!(fake.api(), attempts, "a GET is retried up to max_attempts");
}

#[test]
fn non_idempotent_calls_are_never_retried() {
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
        let new_user = basiq_core::models::NewUser {
            email: Some("a@b.c".into()),
            ..Default::default()
        };
        let err = exec.execute(CreateUser::new(new_user)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transport);
        assert_eq!(
            fake.api(),
            1,
            "{failure:?}: POST /users must not be repeated"
        );
    }
}

#[test]
fn token_fetch_is_retried_on_5xx_under_the_gate() {
    let fake = Fake::new(Duration::from_millis(20), |fake, request| {
        if is_token(request) {
            if fake.tokens() == 1 {
                Ok(api_error(
                    503,
                    "service-unavailable",
                    "Service is currently unavailable",
                ))
            } else {
                Ok(token_response(fake.tokens()))
            }
        } else {
            Ok(user("u1"))
        }
    });
    let exec = executor(&fake, &ManualClock::starting_now());
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| exec.execute(get_user()).unwrap());
        }
    });
    assert_eq!(fake.tokens(), 2);
}

#[test]
fn failed_refresh_ahead_keeps_serving_the_valid_token() {
    let fail_tokens = Arc::new(AtomicBool::new(false));
    let flag = fail_tokens.clone();
    let fake = Fake::new(Duration::ZERO, move |fake, request| {
        if is_token(request) {
            if flag.load(Ordering::SeqCst) {
                Err(TransportError::new(TransportErrorKind::Connect, "refused"))
            } else {
                Ok(token_response(fake.tokens()))
            }
        } else {
            Ok(user("u1"))
        }
    });
    let clock = ManualClock::starting_now();
    let exec = executor(&fake, &clock);
    exec.execute(get_user()).unwrap();
    fail_tokens.store(true, Ordering::SeqCst);
    clock.advance(Duration::from_secs(3599));
    exec.execute(get_user()).unwrap();
    exec.execute(get_user()).unwrap();
    assert_eq!(fake.tokens(), 2);
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        exec.execute(get_user()).unwrap_err().kind(),
        ErrorKind::Transport
    );
}

#[test]
fn a_refresh_ahead_does_not_stall_other_threads() {
    let fake = Fake::new(Duration::from_millis(1000), happy);
    let clock = ManualClock::starting_now();
    let exec = executor(&fake, &clock);
    exec.execute(get_user()).unwrap();
    clock.advance(Duration::from_secs(3599)); // inside the refresh-ahead window
    std::thread::scope(|s| {
        let refresher = s.spawn(|| exec.execute(get_user()).unwrap());
        std::thread::sleep(Duration::from_millis(50));
        let started = std::time::Instant::now();
        exec.execute(get_user()).unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "waited for the refresh"
        );
        refresher.join().unwrap();
    });
    assert_eq!(fake.tokens(), 2);
}

#[test]
fn client_tokens_are_not_cached_and_debug_hides_them() {
    let fake = Fake::new(Duration::ZERO, happy);
    let exec = executor(&fake, &ManualClock::starting_now());
    let uid = UserId::new("u1").unwrap();
    let a = exec.client_token(uid.clone()).unwrap();
    let b = exec.client_token(uid).unwrap();
    assert!(!a.same_as(&b));
    let shown = format!("{a:?} {b:?} {exec:?}");
    assert!(!shown.contains("tok-") && !shown.contains(KEY), "{shown}");
}
