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

/// A head with repeated names (interleaved), a custom name, mixed case, and a value longer than
/// the shared buffer's first allocation.
fn many_headers_reply() -> (&'static [u8], String) {
    let long = "x".repeat(2_000);
    let reply = format!(
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nSet-Cookie: a=1\r\nX-Request-Id: r-42\r\n\
         set-cookie: b=2\r\nX-Long: {long}\r\nSet-Cookie: c=3\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
    );
    (Box::leak(reply.into_bytes().into_boxed_slice()), long)
}

fn send_to(
    reply: &'static [u8],
    transport: &UreqTransport,
) -> basiq_core::engine::transport::HttpResponse {
    let (url, _rx) = serve_once_capturing(reply);
    let request = HttpRequest::new(
        http::Method::GET,
        url::Url::parse(&format!("{url}/users")).unwrap(),
    );
    transport.send(request).unwrap()
}

#[test]
fn with_all_response_headers_every_line_reaches_the_header_map() {
    // Each value must be exactly its own line's, repeated names in order.
    let (reply, long) = many_headers_reply();
    let response = send_to(reply, &UreqTransport::new().with_all_response_headers());
    assert_eq!(response.status(), 429);
    let headers = response.headers();
    let cookies: Vec<_> = headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2", "c=3"]);
    assert_eq!(headers["retry-after"], "7");
    assert_eq!(headers["x-request-id"], "r-42");
    assert_eq!(headers["x-long"], long.as_str());
    assert_eq!(headers["content-length"], "2");
    assert_eq!(response.body(), b"{}");
}

#[test]
fn by_default_only_the_headers_the_sdk_reads_are_copied() {
    let (reply, _) = many_headers_reply();
    let response = send_to(reply, &UreqTransport::new());
    assert_eq!(response.status(), 429);
    let names: Vec<_> = response.headers().keys().map(|n| n.as_str()).collect();
    assert_eq!(names, ["retry-after"]);
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(response.body(), b"{}");
}

#[test]
fn a_success_carries_no_retry_after() {
    // Looked for only where it means something (3xx, 429, 503): not on a success.
    let reply: &'static [u8] =
        b"HTTP/1.1 200 OK\r\nRetry-After: 7\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
    let response = send_to(reply, &UreqTransport::new());
    assert_eq!(response.status(), 200);
    assert!(response.headers().is_empty(), "{:?}", response.headers());
    // With every line asked for, it is there.
    let response = send_to(reply, &UreqTransport::new().with_all_response_headers());
    assert_eq!(response.headers()["retry-after"], "7");
}

#[test]
fn a_header_value_ureq_would_refuse_is_refused_without_quoting_it() {
    // ureq 2 refuses a value outside visible ASCII and quotes the whole line in its error; the
    // transport refuses it first, naming only the header.
    let (url, _rx) = serve_once_capturing(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    let mut request = HttpRequest::new(
        http::Method::GET,
        url::Url::parse(&format!("{url}/users")).unwrap(),
    );
    let mut secret = http::HeaderValue::from_bytes("Bearer s\u{e9}cret-token".as_bytes()).unwrap();
    secret.set_sensitive(true);
    request
        .headers_mut()
        .insert(http::header::AUTHORIZATION, secret);
    let err = UreqTransport::new().send(request).unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Other);
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("authorization"), "{shown}");
    assert!(!shown.contains("cret-token"), "{shown}");
}

#[test]
fn a_declared_length_over_the_limit_is_refused_without_copying_headers() {
    // The body cap reads `Content-Length` straight from ureq now that it is not copied.
    let reply: &'static [u8] =
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\nconnection: close\r\n\r\n";
    let (url, _rx) = serve_once_capturing(reply);
    let mut request = HttpRequest::new(
        http::Method::GET,
        url::Url::parse(&format!("{url}/users")).unwrap(),
    );
    request.set_limits(basiq_core::engine::transport::RequestLimits::new(10, None));
    let err = UreqTransport::new().send(request).unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::TooLarge);
}

#[test]
fn threads_sharing_the_transport_reuse_their_connections() {
    // A keep-alive server that holds every answer until `THREADS` requests are in, so each
    // round really has `THREADS` connections open at once. With ureq's default of one idle
    // connection per host, the second round would have to open `THREADS - 1` new ones.
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};
    const THREADS: usize = 4;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/users", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(Barrier::new(THREADS));
    {
        let accepted = accepted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                accepted.fetch_add(1, Ordering::SeqCst);
                let in_flight = in_flight.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    loop {
                        let mut line = String::new();
                        // A request head ends with an empty line; EOF ends the connection.
                        loop {
                            line.clear();
                            match reader.read_line(&mut line) {
                                Ok(0) | Err(_) => return,
                                Ok(_) if line == "\r\n" => break,
                                Ok(_) => {}
                            }
                        }
                        in_flight.wait();
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
                        if stream.write_all(reply).is_err() {
                            return;
                        }
                    }
                });
            }
        });
    }
    let transport = UreqTransport::new();
    for _round in 0..3 {
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    let request =
                        HttpRequest::new(http::Method::GET, url::Url::parse(&url).unwrap());
                    assert_eq!(transport.send(request).unwrap().body(), b"{}");
                });
            }
        });
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        THREADS,
        "one connection per thread, reused"
    );
}
