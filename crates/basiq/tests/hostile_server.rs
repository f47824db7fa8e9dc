//! Both clients against a scripted, hostile server on 127.0.0.1 (`common::hostile`): redirects are
//! never followed, echoed credentials never reach an error's text, a token that is not a header
//! value is never cached, decode errors and over-size bodies are not retried, and one call's
//! deadline bounds `Retry-After` waits and a dripping body. Plain `http://` is for loopback only.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use basiq::clock::{Clock, ManualClock};
use basiq::error::{Error, ErrorKind, TransportErrorKind};
use common::hostile::{Hostile, Received, Reply};
use common::new_user;

const KEY: &str = "a2V5OnNlY3JldC9rZXk+Zm9vPQ==";
const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.c2VydmVyLXRva2Vu.c2ln";

fn user_json(id: &str) -> serde_json::Value {
    serde_json::json!({"type": "user", "id": id, "email": "g@example.com"})
}

/// `/token` answers [`TOKEN`]; everything else goes to `rest`.
fn server(rest: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Hostile {
    Hostile::start(move |r| {
        if r.path == "/token" {
            Reply::token(TOKEN)
        } else {
            rest(r)
        }
    })
}

fn transport_kind(err: &Error) -> Option<TransportErrorKind> {
    match err {
        Error::Transport { source, .. } => Some(source.kind),
        _ => None,
    }
}

fn assert_no_secrets(err: &Error) {
    let mut shown = format!("{err} {err:?}");
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        shown.push_str(&s.to_string());
        source = s.source();
    }
    for secret in [KEY, TOKEN, "c2VydmVyLXRva2Vu", "a2V5OnNlY3JldC9rZXk"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}

/// Stamps every scenario for one client; `client_for(url, clock, configure)` builds it on virtual
/// time (its sleep advances `clock`).
macro_rules! scenarios {
    (#[$test:meta], [$($async:tt)*], [$($await:tt)*]) => {
        /// The owned item walk decodes a page's items as they are taken: every item before a
        /// bad one arrives once, in order, across pages; the bad one (item 2 of page 2) is a
        /// typed `Decode` error with the user's id in its place, naming no value from the
        /// body; then the walk ends. A page that is not a list fails as a whole, as before.
        #[$test]
        $($async)* fn a_bad_item_mid_page_is_a_decode_error_in_its_place() {
            let api = server(|r| {
                let tx = |i: u32| serde_json::json!({"type": "transaction", "id": format!("t{i}"), "extra": {"kept": i}});
                if r.path.contains("next=2") {
                    let data = vec![tx(3), serde_json::json!({"type": "transaction", "id": {"secret": "s3cr3t-value"}}), tx(5)];
                    Reply::json(200, serde_json::json!({"type": "list", "data": data, "links": {"next": "/users/u1/transactions?next=3"}}))
                } else if r.path.contains("next=3") {
                    Reply::json(200, serde_json::json!({"type": "list", "data": [tx(6)], "links": {}}))
                } else if r.path.starts_with("/users/u2/") {
                    Reply::json(200, serde_json::json!({"type": "list", "data": {"not": "a list"}}))
                } else {
                    Reply::json(200, serde_json::json!({"type": "list", "size": 7, "data": [tx(0), tx(1), tx(2)], "links": {"next": "/users/u1/transactions?next=2"}}))
                }
            });
            let clock = ManualClock::new(common::start_time());
            let client = client_for(&api.url, &clock, |b| b);
            let mut items = client.transactions().items("u1", basiq::TransactionQuery::new()).unwrap();
            let mut seen = Vec::new();
            let err = loop {
                match items.next()$($await)* {
                    Some(Ok(t)) => seen.push(t.id.into_string()),
                    Some(Err(e)) => break e,
                    None => panic!("no error after {seen:?}"),
                }
            };
            assert_eq!(seen, ["t0", "t1", "t2", "t3"], "each item once, in order, up to the bad one");
            assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
            assert!(err.to_string().contains("item 2 of page 2"), "{err}");
            assert!(!err.to_string().contains("s3cr3t"), "{err}");
            assert_eq!(err.context().unwrap().user_id.as_ref().unwrap().as_str(), "u1");
            assert!(items.next()$($await)*.is_none(), "the walk ends after its error");
            let fetched = api.received().iter().filter(|r| r.path.starts_with("/users/u1/")).count();
            assert_eq!(fetched, 2, "page 3 is never fetched");

            let mut items = client.transactions().items("u2", basiq::TransactionQuery::new()).unwrap();
            let err = items.next()$($await)*.unwrap().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
            assert_eq!(err.context().unwrap().user_id.as_ref().unwrap().as_str(), "u2");
            assert!(items.next()$($await)*.is_none());
        }

        /// A 302 on a GET and a 307 on `POST /users` (to an origin with `user:pw@`) are typed
        /// `Redirect` errors with the ids; the other origin is never contacted.
        #[$test]
        $($async)* fn redirects_are_never_followed() {
            let elsewhere = Hostile::start(|_| Reply::json(200, user_json("elsewhere")));
            let target = elsewhere.url.replace("http://", "http://user:pw@");
            let api = server(move |r| {
                Reply::new(if r.method == "GET" { 302 } else { 307 }, "")
                    .header("Location", &format!("{target}{}", r.path))
            });
            let clock = ManualClock::new(common::start_time());
            let client = client_for(&api.url, &clock, |b| b);
            let err = client.users().get("u1")$($await)*.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Redirect, "{err}");
            assert_eq!(err.context().unwrap().user_id.as_ref().unwrap().as_str(), "u1");
            let err = client.users().create(new_user("r@example.com"))$($await)*.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Redirect, "{err}");
            assert!(elsewhere.received().is_empty(), "followed: {:?}", elsewhere.received());
            assert_eq!(api.count("GET /users/u1"), 1, "a redirect is not retried");
            assert_eq!(api.count("POST /users"), 1);
        }

        /// A server that echoes the request — the `Authorization` header in Basiq's `detail`, in
        /// a non-Basiq body, on `/token` and on a call — puts neither the key nor the token in
        /// the error's Display, Debug or sources.
        #[$test]
        $($async)* fn echoed_credentials_are_scrubbed_from_errors() {
            let api = server(|r| {
                let auth = r.header("authorization");
                if r.path.ends_with("/basiq") {
                    Reply::json(400, serde_json::json!({
                        "type": "list", "correlationId": "c1",
                        "data": [{"code": "parameter-not-valid", "title": auth, "detail": format!("you sent {auth}")}]
                    }))
                } else {
                    Reply::new(502, format!("<html>upstream said: {auth}</html>"))
                }
            });
            let clock = ManualClock::new(common::start_time());
            let client = client_for(&api.url, &clock, |b| b.retry_policy(basiq::retry::RetryPolicy::never()));
            for id in ["basiq", "proxy"] {
                let err = client.users().get(id)$($await)*.unwrap_err();
                assert!(err.to_string().contains("[REDACTED]"), "{err}");
                assert_no_secrets(&err);
            }
            // `/token` itself echoing the Basic header.
            let echo_token = Hostile::start(|r| Reply::new(500, format!("bad {}", r.header("authorization"))));
            let client = client_for(&echo_token.url, &clock, |b| b.retry_policy(basiq::retry::RetryPolicy::never()));
            let err = client.users().get("u1")$($await)*.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Server, "{err}");
            assert_no_secrets(&err);
        }

        /// A `/token` answer whose token has CR/LF (or is not ASCII) is a decode error and is
        /// not cached: the next call fetches again and works.
        #[$test]
        $($async)* fn a_token_that_is_not_a_header_value_is_never_cached() {
            for bad in ["tok\r\nX-Injected: 1", "t\u{f6}ken-\u{e9}"] {
                let fetched = Arc::new(Mutex::new(0));
                let count = fetched.clone();
                let bad = bad.to_owned();
                let api = Hostile::start(move |r| {
                    if r.path == "/token" {
                        let mut n = count.lock().unwrap();
                        *n += 1;
                        Reply::token(if *n == 1 { &bad } else { TOKEN })
                    } else {
                        assert_eq!(r.header("authorization"), format!("Bearer {TOKEN}"));
                        Reply::json(200, user_json("u1"))
                    }
                });
                let clock = ManualClock::new(common::start_time());
                let client = client_for(&api.url, &clock, |b| b);
                let err = client.users().get("u1")$($await)*.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
                assert!(!err.to_string().contains("Injected"), "{err}");
                assert_eq!(api.count("POST /token"), 1, "a decode error is not retried");
                // A failed fetch is shared for a short backoff (so an outage costs one caller's
                // requests); after it the next call fetches again.
                clock.advance(Duration::from_secs(60));
                let user = client.users().get("u1")$($await)*.unwrap();
                assert_eq!(user.id.as_str(), "u1");
                assert_eq!(api.count("POST /token"), 2, "the bad token was not cached");
                assert_eq!(api.count("GET /users/u1"), 1);
            }
        }

        /// A body that does not decode, and one over the size cap (announced, or not), are
        /// downloaded once: neither is retried.
        #[$test]
        $($async)* fn decode_errors_and_oversize_bodies_are_not_retried() {
            let api = server(|r| match r.path.as_str() {
                "/users/malformed" => Reply::new(200, "{\"type\":\"user\",\"id\":"),
                "/users/huge" => Reply::json(200, serde_json::json!({
                    "type": "user", "id": "huge", "padding": "x".repeat(4096)
                })),
                _ => Reply::json(200, user_json("ok")),
            });
            let clock = ManualClock::new(common::start_time());
            let client = client_for(&api.url, &clock, |b| b.max_response_bytes(1024));
            let err = client.users().get("malformed")$($await)*.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
            assert_eq!(err.context().unwrap().user_id.as_ref().unwrap().as_str(), "malformed");
            assert_eq!(api.count("GET /users/malformed"), 1);
            let err = client.users().get("huge")$($await)*.unwrap_err();
            assert_eq!(transport_kind(&err), Some(TransportErrorKind::TooLarge), "{err}");
            assert!(!err.is_retryable());
            assert_eq!(api.count("GET /users/huge"), 1);
            assert!(client.users().get("ok")$($await)*.is_ok(), "small bodies still pass");
        }

        /// A 429 asking for 30 s within a 10 s call deadline ends the call at once (no wait,
        /// no second request); one asking for 2 s is honoured.
        #[$test]
        $($async)* fn the_call_deadline_bounds_retry_after() {
            let api = server(|r| match r.path.as_str() {
                "/users/slow" => Reply::new(429, "").header("Retry-After", "30"),
                _ => Reply::new(429, "").header("Retry-After", "2"),
            });
            let clock = ManualClock::new(common::start_time());
            let client = client_for(&api.url, &clock, |b| b.call_deadline(Some(Duration::from_secs(10))));
            let before = clock.now();
            let err = client.users().get("slow")$($await)*.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::RateLimited);
            assert_eq!(api.count("GET /users/slow"), 1);
            assert_eq!(clock.now(), before, "no wait that would end past the deadline");
            let err = client.users().get("fast")$($await)*.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::RateLimited);
            let waited = clock.now() - before;
            assert!(api.count("GET /users/fast") >= 2, "a 2 s Retry-After is honoured");
            assert!(waited < time::Duration::seconds(10), "{waited}");
        }

        /// A body dripping a byte every 20 ms (3 s in all) is cut off by a 300 ms call
        /// deadline although the request timeout is 30 s: the server sees the client hang up,
        /// and no retry follows. On the system clock: the deadline spans the transport's real
        /// time, which a virtual clock does not see.
        #[$test]
        $($async)* fn the_call_deadline_cuts_a_dripping_body() {
            let body = serde_json::to_vec(&serde_json::json!({
                "type": "user", "id": "drip", "padding": "x".repeat(120)
            }))
            .unwrap();
            let api = server(move |_| Reply::new(200, body.clone()).drip(Duration::from_millis(20)));
            let client = ClientBuilder::default()
                .api_key(KEY)
                .base_url(&api.url)
                .timeout(Duration::from_secs(30))
                .call_deadline(Some(Duration::from_millis(300)))
                .build()
                .unwrap();
            let err = client.users().get("drip")$($await)*.unwrap_err();
            assert!(
                matches!(transport_kind(&err), Some(TransportErrorKind::Timeout | TransportErrorKind::Io)),
                "{err}"
            );
            // The server notices when its next write fails.
            for _ in 0..200 {
                if api.cut_short() > 0 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            assert_eq!(api.cut_short(), 1, "the client hung up before the body ended");
            assert_eq!(api.count("GET /users/drip"), 1, "the deadline left no time to retry");
        }

        /// A same-origin `links.next` with a new cursor on every page never ends by itself: the
        /// walk stops with a typed `PageLimit` (ids attached) derived from the first page's
        /// `size`, or at the configured cap; an empty page that still links on ends it cleanly.
        #[$test]
        $($async)* fn endless_pagination_is_bounded() {
            let base = Arc::new(Mutex::new(String::new()));
            let url = base.clone();
            let api = server(move |r| {
                let cursor: u64 = r.path.rsplit('=').next().and_then(|n| n.parse().ok()).unwrap_or(0);
                let empty = r.path.starts_with("/users/empty") && cursor >= 2;
                let data: Vec<_> = if empty { vec![] } else {
                    (0..2).map(|i| serde_json::json!({"type": "transaction", "id": format!("t{cursor}-{i}")})).collect()
                };
                let user = r.path.split('/').nth(2).unwrap_or_default().to_owned();
                let next = format!("{}/users/{user}/transactions?next={}", url.lock().unwrap(), cursor + 1);
                Reply::json(200, serde_json::json!({
                    "type": "list", "size": 4, "data": data, "links": {"next": next}
                }))
            });
            *base.lock().unwrap() = api.url.clone();
            let clock = ManualClock::new(common::start_time());
            let client = client_for(&api.url, &clock, |b| b);
            let err = client.transactions().all("endless", basiq::TransactionQuery::new())$($await)*.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::PageLimit, "{err}");
            assert_eq!(err.context().unwrap().user_id.as_ref().unwrap().as_str(), "endless");
            let fetched = api.received().iter().filter(|r| r.path.starts_with("/users/endless")).count();
            assert!(fetched <= 4, "size 4 at 2 a page: {fetched} pages fetched");

            let all = client.transactions().all("empty", basiq::TransactionQuery::new())$($await)*.unwrap();
            assert_eq!(all.len(), 4, "two full pages, then an empty one ends the walk");

            let capped = client_for(&api.url, &clock, |b| {
                b.page_limits(basiq::pagination::PageLimits::new().max_pages(2))
            });
            let mut pager = capped.transactions().items("capped", basiq::TransactionQuery::new()).unwrap();
            let mut items = 0;
            let err = loop {
                match pager.next()$($await)* {
                    Some(Ok(_)) => items += 1,
                    Some(Err(e)) => break e,
                    None => panic!("the cap must end the walk with an error"),
                }
            };
            assert_eq!(err.kind(), ErrorKind::PageLimit, "{err}");
            assert_eq!(items, 4, "the items of the pages fetched are yielded first");
        }

        /// `http://` to anything but a loopback address is refused at build time unless opted
        /// in; loopback (emulators) is fine.
        #[$test]
        $($async)* fn plain_http_is_for_loopback_only() {
            let clock = ManualClock::new(common::start_time());
            for url in ["http://au-api.basiq.io", "http://10.1.2.3:8080"] {
                let err = builder_for(url, &clock).build().unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Config, "{url}");
                assert!(builder_for(url, &clock).allow_insecure_http(true).build().is_ok());
            }
            for url in ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9", "https://au-api.basiq.io"] {
                assert!(builder_for(url, &clock).build().is_ok(), "{url}");
            }
        }
    };
}

mod async_client {
    use super::*;
    use basiq::{Client, ClientBuilder};
    use futures_util::StreamExt as _;

    fn builder_for(url: &str, clock: &ManualClock) -> ClientBuilder {
        let tick = clock.clone();
        Client::builder()
            .api_key(KEY)
            .base_url(url)
            .clock(clock.clone())
            .sleep(move |d| {
                tick.advance(d);
                Box::pin(async {})
            })
    }

    fn client_for(
        url: &str,
        clock: &ManualClock,
        configure: impl FnOnce(ClientBuilder) -> ClientBuilder,
    ) -> Client {
        configure(builder_for(url, clock)).build().unwrap()
    }

    scenarios!(#[tokio::test(flavor = "multi_thread")], [async], [.await]);
}

mod blocking_client {
    use super::*;
    use basiq::blocking::{Client, ClientBuilder};

    fn builder_for(url: &str, clock: &ManualClock) -> ClientBuilder {
        let tick = clock.clone();
        Client::builder()
            .api_key(KEY)
            .base_url(url)
            .clock(clock.clone())
            .sleep(move |d| tick.advance(d))
    }

    fn client_for(
        url: &str,
        clock: &ManualClock,
        configure: impl FnOnce(ClientBuilder) -> ClientBuilder,
    ) -> Client {
        configure(builder_for(url, clock)).build().unwrap()
    }

    scenarios!(#[test], [], []);
}
