//! Garbage in, Basiq errors out: no panic, no dropped connection, no 5xx, no non-Basiq error body.

mod common;

use common::*;
use reqwest::Method;
use serde_json::Value;

#[tokio::test]
async fn garbage_never_crashes_a_handler() {
    let (server, _clock, t, user) = setup().await;
    let job_id = connect(&server, &t, &user, "AU00000", "jared", "django").await;
    let cid = connection_of(&job(&server, &t, &job_id).await);
    let client = client_token(&server, &user).await;

    let ids = ["x", "%FF", "%00", "..", &user, &cid, &job_id, "AU00000"];
    let templates = [
        "/token",
        "/users",
        "/users/{a}",
        "/users/{a}/jobs",
        "/users/{a}/connections",
        "/users/{a}/connections/refresh",
        "/users/{a}/connections/{b}",
        "/users/{a}/connections/{b}/refresh",
        "/users/{a}/connections/{b}/purge",
        "/jobs/{a}",
        "/jobs/{a}/mfa",
        "/connectors",
        "/connectors/{a}/{b}",
        "/consent/home",
        "/consent/connect",
        "/consent/connect.json",
        "/consent/done",
        "/__admin/clock/advance",
        "/__admin/connectors/{a}",
    ];
    let queries = [
        "",
        "?filter=",
        "?filter=%FF",
        "?filter=a.eq(",
        "?token=%FF&state=%ZZ",
    ];
    let bodies: [&[u8]; 6] = [
        b"",
        b"{",
        b"null",
        b"[]",
        b"{\"seconds\":\"x\",\"email\":[]}",
        &[0xff, 0xfe, 0x00],
    ];
    let tokens = [t.as_str(), client.as_str(), "garbage"];

    let http = http();
    let mut n = 0;
    for template in templates {
        for (i, a) in ids.iter().enumerate() {
            let b = ids[(i + 3) % ids.len()];
            let path = template.replace("{a}", a).replace("{b}", b);
            for method in [Method::GET, Method::POST, Method::DELETE] {
                let query = queries[n % queries.len()];
                let body = bodies[n % bodies.len()];
                let token = tokens[n % tokens.len()];
                n += 1;
                let resp = http
                    .request(method.clone(), format!("{}{path}{query}", server.url()))
                    .bearer_auth(token)
                    .header(
                        "Content-Type",
                        if n % 2 == 0 {
                            "application/json"
                        } else {
                            "application/x-www-form-urlencoded"
                        },
                    )
                    .body(body.to_vec())
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{method} {path}{query}: connection failed: {e}"));
                let status = resp.status();
                assert!(status.as_u16() < 500, "{method} {path}{query} → {status}");
                if status.is_client_error() {
                    let bytes = resp.bytes().await.expect("body");
                    let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                        panic!("{method} {path}{query} → {status} non-JSON {bytes:?}")
                    });
                    basiq_error(&v);
                }
            }
        }
    }
    assert!(n > 400);
    // And the server is still fine.
    let (s, _) = token_request(&server, "scope=SERVER_ACCESS").await;
    assert!(s.is_success());
}

/// Requests hyper refuses before routing (a 64 KiB path, oversized headers, a malformed request
/// line) still get Basiq's error list, not a bare head; a good request earlier on the same
/// kept-alive connection is answered untouched. Raw sockets: HTTP clients refuse to send these.
#[tokio::test]
async fn requests_refused_before_routing_get_basiq_errors() {
    let (server, _clock, t, user) = setup().await;
    let addr = server.url().trim_start_matches("http://").to_owned();
    let exchange = |request: String| {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
            tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .expect("timeout");
            tcp.write_all(request.as_bytes()).expect("write");
            let mut out = Vec::new();
            // hyper closes the connection after an error it answers itself.
            tcp.read_to_end(&mut out).expect("read");
            String::from_utf8_lossy(&out).into_owned()
        })
    };
    let good =
        format!("GET /users/{user} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {t}\r\n\r\n");
    let cases = [
        (
            format!(
                "GET /users/{} HTTP/1.1\r\nhost: x\r\n\r\n",
                "a".repeat(64 * 1024)
            ),
            "HTTP/1.1 414 URI Too Long\r\n",
            "uri-too-long",
        ),
        (
            format!(
                "GET /users/{user} HTTP/1.1\r\nhost: x\r\nx-padding: {}\r\n\r\n",
                "p".repeat(512 * 1024)
            ),
            "HTTP/1.1 431 Request Header Fields Too Large\r\n",
            "request-header-fields-too-large",
        ),
        (
            "NOT HTTP AT ALL\r\n\r\n".to_owned(),
            "HTTP/1.1 400 Bad Request\r\n",
            "invalid-content",
        ),
    ];
    for (bad, status_line, code) in cases {
        let raw = exchange(format!("{good}{bad}")).await.expect("exchange");
        assert!(
            raw.starts_with("HTTP/1.1 200 OK\r\n"),
            "{}",
            &raw[..raw.len().min(300)]
        );
        let at = raw
            .find(status_line)
            .unwrap_or_else(|| panic!("no {status_line:?} in {}", &raw[..raw.len().min(600)]));
        let (head, body) = raw[at..].split_once("\r\n\r\n").expect("a head");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let body: Value = serde_json::from_str(body).expect("a JSON body");
        assert_eq!(body["type"], "list", "{body}");
        assert_eq!(body["data"][0]["code"], code, "{body}");
        assert!(body["data"][0]
            .as_object()
            .expect("an item")
            .contains_key("source"));
    }
}
