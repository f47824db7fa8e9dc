//! UreqTransport against tiny hand-rolled servers on 127.0.0.1: statuses are responses, and
//! failures below HTTP map to the right `TransportErrorKind` (stamped by `transport_scenarios!`
//! from `basiq-core/tests/support/loopback.rs`, shared with `basiq-http-async`).

#[path = "../../basiq-core/tests/support/loopback.rs"]
#[macro_use]
mod support;

use std::time::Duration;

use basiq_core::engine::transport::{BlockingTransport, HttpRequest};
use basiq_core::error::TransportErrorKind;
use basiq_http_blocking::UreqTransport;
use support::*;

transport_scenarios!(
    #[test],
    [],
    [],
    new = UreqTransport::new(),
    slow = UreqTransport::with_timeouts(Duration::from_secs(2), Duration::from_millis(200)),
);

#[test]
fn error_statuses_are_responses_and_get_has_no_body() {
    let (url, rx) = serve_once_capturing(b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}");
    let response = UreqTransport::new().send(get(&url)).unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.body(), b"{}");
    let seen = rx.recv().unwrap().to_ascii_lowercase();
    assert_user_agent(&seen);
    assert!(!seen.contains("content-length"), "{seen}");
}

#[test]
fn post_bodies_are_sent() {
    let (url, rx) = serve_once_capturing(
        b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    );
    let request = http::Request::post(format!("{url}/users"))
        .header("content-type", "application/json")
        .body(b"{\"email\":\"a@b.c\"}".to_vec())
        .unwrap();
    let request = HttpRequest::try_from(request).unwrap();
    let response = UreqTransport::new().send(request).unwrap();
    assert_eq!(response.status(), 201);
    assert!(rx.recv().unwrap().ends_with("{\"email\":\"a@b.c\"}"));
}
