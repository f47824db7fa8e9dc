//! The blocking client against the emulator over real loopback HTTP.

mod common;

use std::time::Duration;

use basiq::blocking::Client;
use basiq::clock::{Clock, ManualClock};
use basiq::models::UserUpdate;
use basiq::{Error, ErrorKind};
use basiq_mock::MockServer;
use common::{blocking_builder, blocking_client as client, new_user, token_requests};
use common::{total_requests, UNSAFE_IDS, WRONG_KEY};

/// (b) 8 threads × 25 calls on a fresh client cause exactly one `POST /token`.
#[test]
fn eight_threads_times_25_calls_one_token() {
    let server = MockServer::start();
    let user = client(&server)
        .users()
        .create(new_user("b@example.com"))
        .unwrap();
    let before = token_requests(&server);
    let fresh = client(&server);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..25 {
                    assert_eq!(fresh.users().get(&user.id).unwrap().id, user.id);
                }
            });
        }
    });
    assert_eq!(token_requests(&server) - before, 1);
}

/// (c) Over several token lifetimes of virtual time, at most `elapsed / ttl + 1` token requests.
#[test]
fn one_token_per_lifetime_over_virtual_time() {
    let ttl = Duration::from_secs(60);
    let clock = ManualClock::starting_now();
    let server = MockServer::builder()
        .token_ttl(ttl)
        .clock(clock.clone())
        .start();
    let client = blocking_builder(&server)
        .clock(clock.clone())
        .build()
        .unwrap();
    let user = client.users().create(new_user("c@example.com")).unwrap();
    let lifetimes = 8;
    let step = Duration::from_secs(2);
    let elapsed = ttl * lifetimes;
    let mut t = Duration::ZERO;
    while t < elapsed {
        clock.advance(step);
        t += step;
        client.users().get(&user.id).unwrap();
    }
    let tokens = token_requests(&server);
    assert!(tokens <= u64::from(lifetimes) + 1, "{tokens}");
    assert!(tokens >= u64::from(lifetimes), "{tokens}");
}

/// (d) Expired on the server, still valid for the client: one re-authentication, success.
#[test]
fn expired_token_mid_flight_reauthenticates_once() {
    let server_clock = ManualClock::starting_now();
    let client_clock = ManualClock::new(Clock::now(&server_clock));
    let server = MockServer::builder().clock(server_clock).start();
    let client = blocking_builder(&server)
        .clock(client_clock)
        .build()
        .unwrap();
    let user = client.users().create(new_user("d@example.com")).unwrap();
    server.advance(Duration::from_secs(3601));
    assert_eq!(client.users().get(&user.id).unwrap().id, user.id);
    assert_eq!(token_requests(&server), 2);
}

/// (e) A wrong key is `Error::InvalidApiKey` after exactly one token request.
#[test]
fn invalid_key_is_reported_and_not_retried() {
    let server = MockServer::start();
    let client = blocking_builder(&server)
        .api_key(WRONG_KEY)
        .build()
        .unwrap();
    let err = client.jobs().get("j1").unwrap_err();
    assert!(matches!(err, Error::InvalidApiKey { .. }), "{err:?}");
    assert_eq!(token_requests(&server), 1);
    assert_eq!(total_requests(&server.stats()), 1);
}

/// (f) Unsafe ids are refused before any request: the emulator sees nothing at all.
#[test]
fn unsafe_ids_never_reach_the_server() {
    let server = MockServer::start();
    let client = client(&server);
    for id in UNSAFE_IDS {
        let results = [
            client.users().get(id).map(drop),
            client.users().update(id, UserUpdate::default()).map(drop),
            client.users().delete(id).map(drop),
            client.jobs().get(id).map(drop),
            client.jobs().list_for_user(id).map(drop),
            client.client_token(id).map(drop),
        ];
        for result in results {
            let err = result.unwrap_err();
            assert!(matches!(err, Error::InvalidId(_)), "{id:?}: {err:?}");
        }
    }
    let stats = server.stats();
    assert_eq!(stats.token_requests, 0);
    assert_eq!(total_requests(&stats), 0, "{:?}", stats.requests);
}

#[test]
fn user_lifecycle() {
    let server = MockServer::start();
    let client = client(&server);
    let user = client.users().create(new_user("life@example.com")).unwrap();
    let got = client.users().get(user.id.as_str()).unwrap();
    assert_eq!(got.id, user.id);
    assert!(client
        .jobs()
        .list_for_user(&user.id)
        .unwrap()
        .data
        .is_empty());
    client.users().delete(&user.id).unwrap();
    assert_eq!(
        client.users().get(&user.id).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        Client::builder().api_key("").build().unwrap_err().kind(),
        ErrorKind::Config
    );
}

/// The blocking client is safe to call from inside an async runtime (no nested `block_on`).
#[tokio::test(flavor = "multi_thread")]
async fn blocking_client_inside_an_async_host_does_not_panic() {
    let server = MockServer::start();
    let client = client(&server);
    // `.ok()`: only whether it worked matters here (and clippy dislikes large `Err` in closures).
    let email = tokio::task::block_in_place(|| {
        client
            .users()
            .create(new_user("rt@example.com"))
            .ok()
            .and_then(|u| u.email)
    });
    assert_eq!(email.as_deref(), Some("rt@example.com"));
}
