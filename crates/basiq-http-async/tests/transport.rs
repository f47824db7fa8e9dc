//! ReqwestTransport against tiny hand-rolled servers on 127.0.0.1: statuses are responses, and
//! failures below HTTP map to the right `TransportErrorKind` (stamped by `transport_scenarios!`
//! from `basiq-core/tests/support/loopback.rs`, shared with `basiq-http-blocking`).

#[path = "../../basiq-core/tests/support/loopback.rs"]
#[macro_use]
mod support;

use std::time::Duration;

use basiq_core::engine::transport::AsyncTransport;
use basiq_core::error::TransportErrorKind;
use basiq_http_async::ReqwestTransport;
use support::*;

transport_scenarios!(
    #[tokio::test(flavor = "multi_thread")],
    [async],
    [.await],
    new = ReqwestTransport::new(),
    slow = ReqwestTransport::with_timeouts(Duration::from_secs(2), Duration::from_millis(200))
        .unwrap(),
);

#[tokio::test(flavor = "multi_thread")]
async fn error_statuses_are_responses_and_user_agent_is_sent() {
    let (url, rx) = serve_once_capturing(b"HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}");
    let response = ReqwestTransport::new().send(get(&url)).await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(response.body(), b"{}");
    assert_user_agent(&rx.recv().unwrap());
}

/// glibc serves allocations up to about 1 KiB from a per-thread cache; a larger boxed future
/// takes an arena lock on every request, which concurrent requests then queue on
/// (docs/performance.md). This fails when a change to the transport (or a reqwest upgrade) makes
/// the future outgrow that.
#[test]
fn the_boxed_send_future_stays_small_enough_for_the_allocators_thread_cache() {
    let transport = ReqwestTransport::new();
    let future = transport.send(get("http://127.0.0.1:9/users/u1"));
    let size = std::mem::size_of_val(&*future);
    assert!(size <= 1024, "the boxed send future is {size} bytes");
}
