//! The async client against the emulator over real loopback HTTP.

mod common;

use std::time::Duration;

use basiq::clock::{Clock, ManualClock};
use basiq::models::UserUpdate;
use basiq::{Client, Error, ErrorKind};
use basiq_mock::MockServer;
use common::{async_builder, async_client as client, new_user, token_requests, total_requests};
use common::{UNSAFE_IDS, WRONG_KEY};

/// (a) 200 concurrent `users().get` on a fresh client cause exactly one `POST /token`.
#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_concurrent_gets_one_token() {
    let server = MockServer::start();
    let user = client(&server)
        .users()
        .create(new_user("a@example.com"))
        .await
        .unwrap();
    let before = token_requests(&server);

    let fresh = client(&server);
    let calls: Vec<_> = (0..200)
        .map(|_| {
            let client = fresh.clone();
            let id = user.id.clone();
            tokio::spawn(async move { client.users().get(&id).await })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().id, user.id);
    }
    assert_eq!(token_requests(&server) - before, 1);
}

/// (c) Over several token lifetimes of virtual time, at most `elapsed / ttl + 1` token requests.
#[tokio::test(flavor = "multi_thread")]
async fn one_token_per_lifetime_over_virtual_time() {
    let ttl = Duration::from_secs(60);
    let clock = ManualClock::starting_now();
    let server = MockServer::builder()
        .token_ttl(ttl)
        .clock(clock.clone())
        .start();
    let client = async_builder(&server).clock(clock.clone()).build().unwrap();
    let user = client
        .users()
        .create(new_user("t@example.com"))
        .await
        .unwrap();

    let lifetimes = 10;
    let step = Duration::from_secs(1);
    let elapsed = ttl * lifetimes;
    let mut t = Duration::ZERO;
    while t < elapsed {
        clock.advance(step);
        t += step;
        // A few concurrent calls per step, so refreshes also race.
        let (a, b) = tokio::join!(
            client.users().get(&user.id),
            client.jobs().list_for_user(&user.id)
        );
        a.unwrap();
        b.unwrap();
    }
    let tokens = token_requests(&server);
    let bound = u64::from(lifetimes) + 1; // elapsed / ttl + 1
    assert!(
        tokens <= bound,
        "{tokens} token requests over {lifetimes} lifetimes"
    );
    assert!(
        tokens >= u64::from(lifetimes),
        "the token must have been renewed: {tokens}"
    );
}

/// (d) The emulator's clock is past the token's expiry but the client's is not: the emulator
/// answers 403 `access-denied`, the client re-authenticates once and the call succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn expired_token_mid_flight_reauthenticates_once() {
    let server_clock = ManualClock::starting_now();
    let client_clock = ManualClock::new(Clock::now(&server_clock));
    let server = MockServer::builder().clock(server_clock.clone()).start();
    let client = async_builder(&server).clock(client_clock).build().unwrap();
    let user = client
        .users()
        .create(new_user("d@example.com"))
        .await
        .unwrap();
    assert_eq!(token_requests(&server), 1);

    server.advance(Duration::from_secs(3601));
    let again = client.users().get(&user.id).await.unwrap();
    assert_eq!(again.id, user.id);
    assert_eq!(token_requests(&server), 2);
}

/// (e) A wrong key is `Error::InvalidApiKey` after exactly one token request.
#[tokio::test(flavor = "multi_thread")]
async fn invalid_key_is_reported_and_not_retried() {
    let server = MockServer::start();
    let client = async_builder(&server).api_key(WRONG_KEY).build().unwrap();
    let err = client.users().get("ea3a81").await.unwrap_err();
    assert!(matches!(err, Error::InvalidApiKey { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::InvalidApiKey);
    assert_eq!(token_requests(&server), 1);
    assert_eq!(total_requests(&server.stats()), 1, "only /token was called");
}

/// (f) Unsafe ids are refused before any request: the emulator sees nothing at all.
#[tokio::test(flavor = "multi_thread")]
async fn unsafe_ids_never_reach_the_server() {
    let server = MockServer::start();
    let client = client(&server);
    for id in UNSAFE_IDS {
        let results = [
            client.users().get(id).await.map(drop),
            client
                .users()
                .update(id, UserUpdate::default())
                .await
                .map(drop),
            client.users().delete(id).await.map(drop),
            client.jobs().get(id).await.map(drop),
            client.jobs().list_for_user(id).await.map(drop),
            client
                .jobs()
                .list_for_user_filtered(id, "x")
                .await
                .map(drop),
            client.client_token(id).await.map(drop),
        ];
        for result in results {
            let err = result.unwrap_err();
            assert!(matches!(err, Error::InvalidId(_)), "{id:?}: {err:?}");
            assert_eq!(err.kind(), ErrorKind::InvalidId);
        }
    }
    let stats = server.stats();
    assert_eq!(stats.token_requests, 0);
    assert_eq!(total_requests(&stats), 0, "{:?}", stats.requests);
}

/// The resources work end to end: create, get, update, list jobs, delete, then 404 with ids.
#[tokio::test(flavor = "multi_thread")]
async fn user_lifecycle() {
    let server = MockServer::start();
    let client = client(&server);
    let user = client
        .users()
        .create(new_user("life@example.com"))
        .await
        .unwrap();
    assert_eq!(user.email.as_deref(), Some("life@example.com"));
    let updated = client
        .users()
        .update(
            user.id.as_str(),
            UserUpdate {
                last_name: Some("Belson".into()),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.last_name.as_deref(), Some("Belson"));
    let jobs = client
        .jobs()
        .list_for_user(user.id.to_string())
        .await
        .unwrap();
    assert!(jobs.data.is_empty());
    client.users().delete(&user.id).await.unwrap();
    let err = client.users().get(&user.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let ctx = err.context().unwrap();
    assert_eq!(ctx.user_id.as_ref(), Some(&user.id));
    assert!(err.to_string().contains(user.id.as_str()));
    // A user without email or mobile is refused locally.
    let err = client.users().create(Default::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(token_requests(&server), 1);
}

#[test]
fn build_errors_are_config_errors() {
    for builder in [
        Client::builder(),
        Client::builder().api_key(""),
        Client::builder().api_key("   "),
        Client::builder().api_key("k").base_url("not a url"),
        Client::builder().api_key("k").base_url("ftp://example.com"),
    ] {
        let err = builder.build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    }
    assert!(Client::new("k").is_ok());
    assert!(Client::builder()
        .api_key("k")
        .base_url("http://127.0.0.1:1/prefix/")
        .build()
        .is_ok());
}

/// The builders take trait objects as well as concrete types, and an executor built by hand.
#[tokio::test(flavor = "multi_thread")]
async fn builder_accepts_trait_objects_and_executors() {
    use std::sync::Arc;

    use basiq::clock::Clock;
    use basiq::transport::AsyncTransport;

    let server = MockServer::start();
    let transport: Arc<dyn AsyncTransport> = Arc::new(basiq::ReqwestTransport::new());
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::starting_now());
    let client = async_builder(&server)
        .transport(transport.clone())
        .clock(clock.clone())
        .token_policy(basiq::token::TokenPolicy::new(Duration::from_secs(30)))
        .retry_policy(basiq::retry::RetryPolicy::never())
        .build()
        .unwrap();
    client
        .users()
        .create(new_user("arc@example.com"))
        .await
        .unwrap();

    let config = basiq::auth::ExecutorConfig::new(
        server.url().parse().unwrap(),
        basiq::ApiKey::new(server.api_key()),
    )
    .with_clock(clock);
    let executor = basiq::AsyncExecutor::new(config, transport).unwrap();
    let client = Client::from_executor(executor);
    let user = client
        .users()
        .create(new_user("exec@example.com"))
        .await
        .unwrap();
    let op = basiq::operations::GetUser::new(user.id.clone());
    assert_eq!(client.execute(op).await.unwrap().id, user.id);
}

/// Every call in flight holds its future: in the caller's task, or as the task when spawned
/// (64 concurrent calls, 64 of them). The request is handed to the transport before the first
/// wait and the rare waits (a token fetch, the re-authentication, a retry's backoff) are
/// boxed or hold nothing large, so a call is well under 1 KiB (3.2 KiB before, with the
/// request, the decoded model and the transport's future each held at several levels). This
/// fails when a change to the executor makes every call carry its rare paths again.
#[test]
fn a_calls_future_stays_under_one_kib() {
    let client = Client::builder()
        .api_key("a-key")
        .base_url("http://127.0.0.1:9")
        .build()
        .unwrap();
    let users = client.users();
    let get = users.get("u1");
    let size = std::mem::size_of_val(&get);
    assert!(size <= 1024, "users().get's future is {size} bytes");
    let connections = client.connections();
    let list = connections.list("u1");
    let size = std::mem::size_of_val(&list);
    assert!(size <= 1024, "connections().list's future is {size} bytes");
}
