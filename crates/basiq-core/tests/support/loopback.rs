//! Test support shared by the transport tests of `basiq-http-async` and `basiq-http-blocking`,
//! included by both with `#[path = "../../basiq-core/tests/support/loopback.rs"]` (not a test
//! target of basiq-core: Cargo only builds `tests/*.rs`): tiny hand-rolled servers on 127.0.0.1,
//! and `transport_scenarios!`, which stamps the failures below HTTP that both transports must map
//! to the same `TransportErrorKind`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpListener;

/// Serves one connection with `reply(request_text) -> raw bytes`, then closes it.
pub fn serve_once(reply: impl FnOnce(String) -> Vec<u8> + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let request = read_request(&mut stream);
        let out = reply(request);
        let _ = stream.write_all(&out);
        let _ = stream.flush();
    });
    format!("http://{addr}")
}

/// Serves one connection, hands the request text to the returned receiver and answers `reply`.
pub fn serve_once_capturing(reply: &'static [u8]) -> (String, std::sync::mpsc::Receiver<String>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let url = serve_once(move |req| {
        tx.send(req).unwrap();
        reply.to_vec()
    });
    (url, rx)
}

/// Reads one request: the head, then `content-length` bytes of body (it may arrive separately).
fn read_request(stream: &mut std::net::TcpStream) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&data).to_ascii_lowercase();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                break;
            }
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&data).into_owned()
}

/// A URL on 127.0.0.1 where nothing listens (a port just bound and released).
pub fn refusing_url() -> String {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    format!("http://127.0.0.1:{port}")
}

pub fn get(url: &str) -> basiq_core::engine::transport::HttpRequest {
    basiq_core::engine::transport::HttpRequest::new(
        http::Method::GET,
        url::Url::parse(&format!("{url}/users/x")).unwrap(),
    )
}

/// `GET {url}/users/ea3a81/a b?filter=x y`, its URL built in `form` (both transports must take
/// either: a host's layer may hand over the one they did not ask for).
pub fn get_in_form(
    url: &str,
    form: basiq_core::engine::transport::UrlForm,
) -> basiq_core::engine::transport::HttpRequest {
    use basiq_core::engine::operation::{endpoint, with_query, ApiBase};
    let base = ApiBase::new(url::Url::parse(url).unwrap(), form);
    let target = endpoint(&base, &["users", "ea3a81", "a b"]).unwrap();
    let target = with_query(target, &[("filter", Some("x y")), ("limit", None)]);
    assert_eq!(target.form(), form);
    basiq_core::engine::transport::HttpRequest::new(http::Method::GET, target)
}

/// The request line [`get_in_form`] must put on the wire in either form.
pub const FORM_REQUEST_LINE: &str = "GET /users/ea3a81/a%20b?filter=x+y HTTP/1.1";

/// Asserts the request text carries the SDK's `User-Agent`.
pub fn assert_user_agent(seen: &str) {
    let seen = seen.to_ascii_lowercase();
    let expected = format!("user-agent: {}", basiq_core::engine::transport::USER_AGENT);
    assert!(seen.contains(&expected.to_ascii_lowercase()), "{seen}");
}

/// Stamps the failures below HTTP for one transport: `new` builds it with the default timeouts,
/// `slow` with a 2 s connect and a 200 ms request timeout; `#[$test]` is the test attribute and
/// `[$await]` is `[.await]` or empty.
macro_rules! transport_scenarios {
    (#[$test:meta], [$($async:tt)*], [$($await:tt)*], new = $new:expr, slow = $slow:expr $(,)?) => {
        #[$test]
        $($async)* fn refused_connection_is_connect() {
            let err = $new.send(get(&refusing_url()))$($await)*.unwrap_err();
            assert_eq!(err.kind, TransportErrorKind::Connect, "{err}");
        }

        #[$test]
        $($async)* fn truncated_body_is_io() {
            let url = serve_once(|_| {
                b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"partial\":".to_vec()
            });
            let err = $new.send(get(&url))$($await)*.unwrap_err();
            assert_eq!(err.kind, TransportErrorKind::Io, "{err}");
        }

        #[$test]
        $($async)* fn closed_without_answer_is_io() {
            let url = serve_once(|_| Vec::new());
            let err = $new.send(get(&url))$($await)*.unwrap_err();
            assert_eq!(err.kind, TransportErrorKind::Io, "{err}");
        }

        #[$test]
        $($async)* fn either_url_form_sends_the_same_request_line() {
            use basiq_core::engine::transport::UrlForm;
            for form in [UrlForm::Parsed, UrlForm::Text] {
                let (url, rx) = serve_once_capturing(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
                let response = $new.send(get_in_form(&url, form))$($await)*.unwrap();
                assert_eq!(response.status(), 200);
                let seen = rx.recv().unwrap();
                assert!(seen.starts_with(FORM_REQUEST_LINE), "{form:?}: {seen}");
            }
        }

        #[$test]
        $($async)* fn slow_answer_is_timeout() {
            let url = serve_once(|_| {
                std::thread::sleep(Duration::from_millis(800));
                Vec::new()
            });
            let transport = $slow;
            let err = transport.send(get(&url))$($await)*.unwrap_err();
            assert_eq!(err.kind, TransportErrorKind::Timeout, "{err}");
        }
    };
}
