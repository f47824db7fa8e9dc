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
