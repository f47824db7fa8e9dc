//! Unit tests of the blocking executor over fake transports (no sockets). The fakes, Basiq's
//! answers and the scenarios that read the same on the async executor are shared with
//! `basiq-http-async/tests/executor.rs` through `basiq-core/tests/support/fake_transport.rs`.

#[path = "../../basiq-core/tests/support/fake_transport.rs"]
#[macro_use]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use basiq_core::api::operations::CreateUser;
use basiq_core::clock::ManualClock;
use basiq_core::engine::transport::{BlockingTransport, HttpRequest, HttpResponse};
use basiq_core::error::{Error, ErrorKind, TransportError, TransportErrorKind};
use basiq_core::id::UserId;
use basiq_http_blocking::BlockingExecutor;
use support::*;

impl BlockingTransport for Fake {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        if self.record(&request) {
            std::thread::sleep(self.token_delay);
        }
        self.respond(&request)
    }
}

fn executor(fake: &Arc<Fake>, clock: &ManualClock) -> BlockingExecutor {
    // Retries wait on the virtual clock instead of real time.
    let waited = clock.clone();
    BlockingExecutor::new(config(clock), fake.clone())
        .unwrap()
        .with_sleep(move |d| waited.advance(d))
}

executor_scenarios!(#[test], [], []);

/// 8 threads, each calling `GET /users/u1` `calls` times on `exec`; all must succeed.
fn from_eight_threads(exec: &BlockingExecutor, calls: usize) {
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..calls {
                    exec.execute(get_user()).unwrap();
                }
            });
        }
    });
}

#[test]
fn threads_share_one_slow_token_fetch() {
    let fake = Fake::new(Duration::from_millis(100), happy);
    let exec = executor(&fake, &ManualClock::starting_now());
    from_eight_threads(&exec, 25);
    assert_eq!(fake.tokens(), 1);
    assert_eq!(fake.api(), 200);
}

#[test]
fn stale_rejections_reuse_the_newer_token() {
    let (fake, revoked) = Fake::revoking_tok1(Duration::from_millis(50));
    let exec = executor(&fake, &ManualClock::starting_now());
    exec.execute(get_user()).unwrap();
    revoked.store(true, Ordering::SeqCst);
    from_eight_threads(&exec, 1);
    assert_eq!(fake.tokens(), 2, "exactly one re-authentication");
}

#[test]
fn token_fetch_is_retried_on_5xx_under_the_gate() {
    let fake = Fake::with_token(Duration::from_millis(20), |fake, _| {
        if fake.tokens() == 1 {
            Ok(unavailable())
        } else {
            Ok(token_response(fake.tokens()))
        }
    });
    let exec = executor(&fake, &ManualClock::starting_now());
    from_eight_threads(&exec, 1);
    assert_eq!(fake.tokens(), 2);
}

#[test]
fn failed_refresh_ahead_keeps_serving_the_valid_token() {
    let fail_tokens = Arc::new(AtomicBool::new(false));
    let flag = fail_tokens.clone();
    let fake = Fake::with_token(Duration::ZERO, move |fake, _| {
        if flag.load(Ordering::SeqCst) {
            Err(TransportError::new(TransportErrorKind::Connect, "refused"))
        } else {
            Ok(token_response(fake.tokens()))
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
