//! Unit tests of the async executor over fake transports (no sockets). The fakes, Basiq's
//! answers and the scenarios that read the same on the blocking executor are shared with
//! `basiq-http-blocking/tests/executor.rs` through `basiq-core/tests/support/fake_transport.rs`.

#[path = "../../basiq-core/tests/support/fake_transport.rs"]
#[macro_use]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use basiq_core::api::operations::CreateUser;
use basiq_core::clock::ManualClock;
use basiq_core::engine::auth::ExecutorConfig;
use basiq_core::engine::transport::{AsyncTransport, BoxFuture, HttpRequest, HttpResponse};
use basiq_core::error::{Error, ErrorKind, TransportError, TransportErrorKind};
use basiq_core::id::UserId;
use basiq_core::secret::ApiKey;
use basiq_http_async::AsyncExecutor;
use support::*;

impl AsyncTransport for Fake {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            if self.record(&request) {
                tokio::time::sleep(self.token_delay).await;
            }
            self.respond(&request)
        })
    }
}

fn executor(fake: &Arc<Fake>, clock: &ManualClock) -> AsyncExecutor {
    // Retries wait on the virtual clock instead of real time.
    let waited = clock.clone();
    AsyncExecutor::new(config(clock), fake.clone())
        .unwrap()
        .with_sleep(move |d| {
            waited.advance(d);
            Box::pin(async {})
        })
}

executor_scenarios!(#[tokio::test(flavor = "multi_thread")], [async], [.await]);

/// `n` concurrent `GET /users/u1` on `exec`, each on its own task; all must succeed.
async fn concurrent_gets(exec: &AsyncExecutor, n: usize) {
    let calls: Vec<_> = (0..n)
        .map(|_| {
            let exec = exec.clone();
            tokio::spawn(async move { exec.execute(get_user()).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_callers_share_one_slow_token_fetch() {
    let fake = Fake::new(Duration::from_millis(100), happy);
    let exec = executor(&fake, &ManualClock::starting_now());
    concurrent_gets(&exec, 64).await;
    assert_eq!(fake.tokens(), 1);
    assert_eq!(fake.api(), 64);
    assert!(fake.seen().iter().all(|a| a == "Bearer tok-1"));
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
async fn stale_rejections_reuse_the_newer_token() {
    // Many callers hold `tok-1` when Basiq starts refusing it: only the first rejection discards
    // the cached token; the others find `tok-2` already cached (or being fetched) and do not
    // fetch again.
    let (fake, revoked) = Fake::revoking_tok1(Duration::from_millis(50));
    let exec = executor(&fake, &ManualClock::starting_now());
    exec.execute(get_user()).await.unwrap();
    assert_eq!(fake.tokens(), 1);
    revoked.store(true, Ordering::SeqCst);
    concurrent_gets(&exec, 32).await;
    assert_eq!(fake.tokens(), 2, "exactly one re-authentication");
    let seen = fake.seen();
    assert!(seen.iter().filter(|a| *a == "Bearer tok-1").count() > 1);
    assert!(seen
        .iter()
        .all(|a| a == "Bearer tok-1" || a == "Bearer tok-2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn forbidden_access_does_not_reauthenticate() {
    let fake = Fake::with_api(Duration::ZERO, |_, _| {
        Ok(api_error(
            403,
            "forbidden-access",
            "Access to this resource is forbidden",
        ))
    });
    let exec = executor(&fake, &ManualClock::starting_now());
    let err = exec.execute(get_user()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    assert_eq!((fake.tokens(), fake.api()), (1, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transient_5xx_on_a_get_is_retried_then_succeeds() {
    let fake = Fake::with_api(Duration::ZERO, |fake, _| {
        if fake.api() == 1 {
            Ok(unavailable())
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
async fn token_fetch_is_retried_on_5xx_under_the_gate() {
    let fake = Fake::with_token(Duration::ZERO, |fake, _| {
        if fake.tokens() == 1 {
            Ok(boom())
        } else {
            Ok(token_response(fake.tokens()))
        }
    });
    let exec = executor(&fake, &ManualClock::starting_now());
    concurrent_gets(&exec, 16).await;
    assert_eq!(
        fake.tokens(),
        2,
        "one failed fetch, one retry, nobody else fetched"
    );
    assert!(fake.seen().iter().all(|a| a == "Bearer tok-2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_refresh_ahead_keeps_serving_the_valid_token() {
    let fail_tokens = Arc::new(AtomicBool::new(false));
    let flag = fail_tokens.clone();
    let fake = Fake::with_token(Duration::ZERO, move |fake, _| {
        if flag.load(Ordering::SeqCst) {
            Ok(boom())
        } else {
            Ok(token_response(fake.tokens()))
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
        fake.seen(),
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
    assert_eq!(
        fake.seen(),
        vec!["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn client_tokens_are_bound_to_the_user_and_not_cached() {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    let fake = Fake::with_token(Duration::ZERO, move |fake, request| {
        seen.lock()
            .unwrap()
            .push(String::from_utf8(request.body().to_vec()).unwrap());
        Ok(token_response(fake.tokens()))
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
            .withf(|r| r.url().path() == "/token")
            .times(1)
            .returning(|_| Box::pin(async { Ok(bad_key()) }));
        let config = ExecutorConfig::new("http://127.0.0.1:9".parse().unwrap(), ApiKey::new(KEY));
        let exec = AsyncExecutor::new(config, Arc::new(mock)).unwrap();
        let err = exec.execute(get_user()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidApiKey);
    }
}
