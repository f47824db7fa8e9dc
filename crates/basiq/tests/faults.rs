//! Retries against the emulator's fault injection: idempotent calls recover, a create is never
//! repeated after an ambiguous failure.

mod common;

use basiq::ErrorKind;
use basiq_mock::{Fault, FaultRule, MockServer};
use common::{async_client as client, blocking_client, new_user, route_count};

#[tokio::test(flavor = "multi_thread")]
async fn gets_recover_from_5xx_resets_and_truncated_bodies() {
    let server = MockServer::start();
    let client = client(&server);
    let user = client
        .users()
        .create(new_user("f@example.com"))
        .await
        .unwrap();
    for fault in [
        Fault::Status {
            code: 503,
            retry_after: None,
        },
        Fault::Reset {
            after_handler: true,
        },
        Fault::TruncatedBody,
    ] {
        server
            .faults()
            .add(FaultRule::new("/users/*", fault.clone()).method("GET"))
            .unwrap();
        let got = client.users().get(&user.id).await;
        assert_eq!(got.unwrap().id, user.id, "{fault:?}");
    }
    let faults = server.faults().stats();
    assert_eq!(
        (faults.status, faults.reset, faults.truncated_body),
        (1, 1, 1)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_is_not_repeated_after_an_ambiguous_failure() {
    let server = MockServer::start();
    let client = client(&server);
    // The user is created, then the connection drops before the answer.
    server
        .faults()
        .add(
            FaultRule::new(
                "/users",
                Fault::Reset {
                    after_handler: true,
                },
            )
            .method("POST"),
        )
        .unwrap();
    let err = client
        .users()
        .create(new_user("once@example.com"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert_eq!(
        route_count(&server, "POST /users"),
        1,
        "{:?}",
        server.stats().requests
    );
}

#[test]
fn blocking_client_retries_idempotent_calls_only() {
    let server = MockServer::start();
    let client = blocking_client(&server);
    let user = client.users().create(new_user("fb@example.com")).unwrap();
    server
        .faults()
        .add(
            FaultRule::new(
                "/users/*",
                Fault::Status {
                    code: 502,
                    retry_after: None,
                },
            )
            .method("GET"),
        )
        .unwrap();
    assert_eq!(client.users().get(&user.id).unwrap().id, user.id);

    server
        .faults()
        .add(
            FaultRule::new(
                "/users",
                Fault::Status {
                    code: 503,
                    retry_after: None,
                },
            )
            .method("POST"),
        )
        .unwrap();
    let err = client
        .users()
        .create(new_user("fb2@example.com"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(server.faults().stats().status, 2, "the 503 was not retried");
}
