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
