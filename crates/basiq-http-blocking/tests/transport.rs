//! UreqTransport against tiny hand-rolled servers on 127.0.0.1: statuses are responses, and
//! failures below HTTP map to the right `TransportErrorKind`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use basiq_core::error::TransportErrorKind;
use basiq_core::transport::{BlockingTransport, USER_AGENT};
use basiq_http_blocking::UreqTransport;

fn serve_once(reply: impl FnOnce(String) -> Vec<u8> + Send + 'static) -> String {
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

fn get(url: &str) -> basiq_core::transport::HttpRequest {
    http::Request::get(format!("{url}/users/x"))
        .body(Vec::new())
        .unwrap()
}

#[test]
fn error_statuses_are_responses_and_get_has_no_body() {
    let (tx, rx) = std::sync::mpsc::channel();
    let url = serve_once(move |req| {
        tx.send(req).unwrap();
        b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}".to_vec()
    });
    let response = UreqTransport::new().send(get(&url)).unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.body(), b"{}");
    let seen = rx.recv().unwrap().to_ascii_lowercase();
    assert!(seen.contains(&format!("user-agent: {}", USER_AGENT.to_ascii_lowercase())));
    assert!(!seen.contains("content-length"), "{seen}");
}

#[test]
fn post_bodies_are_sent() {
    let (tx, rx) = std::sync::mpsc::channel();
    let url = serve_once(move |req| {
        tx.send(req).unwrap();
        b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec()
    });
    let request = http::Request::post(format!("{url}/users"))
        .header("content-type", "application/json")
        .body(b"{\"email\":\"a@b.c\"}".to_vec())
        .unwrap();
    let response = UreqTransport::new().send(request).unwrap();
    assert_eq!(response.status(), 201);
    assert!(rx.recv().unwrap().ends_with("{\"email\":\"a@b.c\"}"));
}

#[test]
fn refused_connection_is_connect() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = UreqTransport::new()
        .send(get(&format!("http://127.0.0.1:{port}")))
        .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Connect, "{err}");
}

#[test]
fn truncated_body_is_io() {
    let url =
        serve_once(|_| b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"partial\":".to_vec());
    let err = UreqTransport::new().send(get(&url)).unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Io, "{err}");
}

#[test]
fn closed_without_answer_is_io() {
    let url = serve_once(|_| Vec::new());
    let err = UreqTransport::new().send(get(&url)).unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Io, "{err}");
}

#[test]
fn slow_answer_is_timeout() {
    let url = serve_once(|_| {
        std::thread::sleep(Duration::from_millis(800));
        Vec::new()
    });
    let transport =
        UreqTransport::with_timeouts(Duration::from_secs(2), Duration::from_millis(200));
    let err = transport.send(get(&url)).unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Timeout, "{err}");
}
