//! Fleet mode inside one process (the multi-process tests on a real Redis are in basiq-redis):
//! clients sharing a store share one token; a store that fails never fails a request (a mockall
//! store); a `/token` outage costs one caller's requests, however many callers wait.

mod common;

use std::sync::Arc;
use std::time::Duration;

use basiq::clock::{Clock as _, ManualClock};
use basiq::fleet::{
    AsyncFleet, AsyncFleetStore, BlockingFleet, FleetAnswer, FleetConfig, FleetKeys, FleetOp,
    FleetStore, MemoryFleetStore,
};
use basiq::retry::RetryPolicy;
use basiq::token::StoreError;
use basiq::ErrorKind;
use basiq_mock::{Fault, FaultRule, MockServer};
use common::{async_builder, blocking_builder, new_user, start_time};

fn config() -> FleetConfig {
    FleetConfig::new(FleetKeys::new("inproc").unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn async_and_blocking_clients_sharing_a_store_fetch_one_token() {
    let server = MockServer::start();
    let store = Arc::new(MemoryFleetStore::new(Arc::new(basiq::clock::SystemClock)));
    let shared = config();
    let a = async_builder(&server)
        .fleet(AsyncFleet {
            store: store.clone(),
            config: shared.clone().with_instance("a"),
        })
        .build()
        .unwrap();
    let b = blocking_builder(&server)
        .fleet(BlockingFleet {
            store: store.clone(),
            config: shared.with_instance("b"),
        })
        .build()
        .unwrap();
    a.users().create(new_user("a@example.com")).await.unwrap();
    tokio::task::spawn_blocking(move || b.users().create(new_user("b@example.com")).unwrap())
        .await
        .unwrap();
    assert_eq!(server.stats().token_requests, 1);
    assert!(!format!("{a:?}").contains("access_token"));
}

mockall::mock! {
    Store {}
    impl FleetStore for Store {
        fn execute(&self, op: &FleetOp) -> Result<FleetAnswer, StoreError>;
    }
}

mockall::mock! {
    AsyncStore {}
    #[async_trait::async_trait]
    impl AsyncFleetStore for AsyncStore {
        async fn execute(&self, op: &FleetOp) -> Result<FleetAnswer, StoreError>;
    }
}

impl std::fmt::Debug for MockStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MockStore")
    }
}

impl std::fmt::Debug for MockAsyncStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MockAsyncStore")
    }
}

/// A store that answers every operation with an error (Redis down): requests, the guarded
/// refresh and the consent link all still work on the process's own state.
#[test]
fn a_store_that_always_fails_never_fails_a_request() {
    let server = MockServer::start();
    let mut store = MockStore::new();
    store
        .expect_execute()
        .returning(|_| Err(StoreError::new("connection refused")));
    let client = blocking_builder(&server)
        .fleet(BlockingFleet {
            store: Arc::new(store),
            config: config(),
        })
        .build()
        .unwrap();
    for i in 0..5 {
        client
            .users()
            .create(new_user(&format!("u{i}@example.com")))
            .unwrap();
    }
    assert_eq!(
        server.stats().token_requests,
        1,
        "one local fetch, then cached"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_async_store_is_consulted_only_inside_the_fetch_gate() {
    let server = MockServer::start();
    let mut store = MockAsyncStore::new();
    // A cold start: read the token (none), take the lock, re-read, store, release — and then
    // nothing more, however many requests follow.
    store.expect_execute().times(5).returning(|op| {
        Ok(match op {
            FleetOp::Get { .. } => FleetAnswer::Value(None),
            FleetOp::SetIfAbsent { .. } | FleetOp::DeleteIfEquals { .. } => {
                FleetAnswer::Applied(true)
            }
            _ => FleetAnswer::Done,
        })
    });
    let client = async_builder(&server)
        .fleet(AsyncFleet {
            store: Arc::new(store),
            config: config(),
        })
        .build()
        .unwrap();
    for i in 0..20 {
        client
            .users()
            .create(new_user(&format!("u{i}@example.com")))
            .await
            .unwrap();
    }
    assert_eq!(server.stats().token_requests, 1);
}

/// Issue: 50 callers on a fresh client while `/token` answers 503 made ~100 token requests.
/// Now the fetch that fails is shared with everyone who waited behind it, and its backoff keeps
/// new callers from asking again at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_outage_costs_one_callers_requests_however_many_wait_async() {
    let clock = ManualClock::new(start_time());
    let server = MockServer::builder().clock(clock.clone()).start();
    server
        .faults()
        .add(
            FaultRule::new(
                "/token",
                Fault::Status {
                    code: 503,
                    retry_after: None,
                },
            )
            .times(10_000),
        )
        .unwrap();
    let tick = clock.clone();
    let client = async_builder(&server)
        .clock(clock.clone())
        .sleep(move |d| {
            tick.advance(d);
            Box::pin(tokio::time::sleep(Duration::from_millis(1)))
        })
        .build()
        .unwrap();
    let calls: Vec<_> = (0..50)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .users()
                    .create(new_user(&format!("o{i}@example.com")))
                    .await
            })
        })
        .collect();
    for call in calls {
        let err = call.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Server, "{err}");
    }
    let one_caller = u64::from(RetryPolicy::default().max_attempts);
    assert!(
        server.stats().token_requests <= one_caller,
        "{} token requests for 50 callers",
        server.stats().token_requests
    );
    // During the backoff a new caller gets the shared failure without asking /token.
    let before = server.stats().token_requests;
    let err = client
        .users()
        .create(new_user("late@example.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, basiq::Error::TokenUnavailable { .. }),
        "{err}"
    );
    assert_eq!(server.stats().token_requests, before);
    // The outage ends and the backoff passes: the next caller fetches and succeeds.
    server.faults().clear();
    clock.advance(Duration::from_secs(31));
    client
        .users()
        .create(new_user("back@example.com"))
        .await
        .unwrap();
}

#[test]
fn a_token_outage_costs_one_callers_requests_however_many_wait_blocking() {
    let clock = ManualClock::new(start_time());
    let server = MockServer::builder().clock(clock.clone()).start();
    server
        .faults()
        .add(
            FaultRule::new(
                "/token",
                Fault::Status {
                    code: 503,
                    retry_after: None,
                },
            )
            .times(10_000),
        )
        .unwrap();
    let tick = clock.clone();
    let client = blocking_builder(&server)
        .clock(clock.clone())
        .sleep(move |d| {
            tick.advance(d);
            std::thread::sleep(Duration::from_millis(1));
        })
        .build()
        .unwrap();
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let client = client.clone();
            std::thread::spawn(move || {
                client
                    .users()
                    .create(new_user(&format!("t{i}@example.com")))
                    .unwrap_err()
            })
        })
        .collect();
    for t in threads {
        let err = t.join().unwrap();
        assert_eq!(err.kind(), ErrorKind::Server, "{err}");
    }
    let one_caller = u64::from(RetryPolicy::default().max_attempts);
    assert!(server.stats().token_requests <= one_caller);
}

/// Two instances executing the same plan: the slot is claimed once, the other is told another
/// instance has it, and the emulator saw one refresh.
#[test]
fn instances_executing_one_plan_refresh_each_connection_once() {
    use basiq::id::{InstitutionId, JobId};
    use basiq::jobs::PollConfig;
    use basiq::refresh::{RefreshPolicy, SkipReason};
    use basiq::{ConsentAction, ConsentOutcome, RefreshOutcome};
    use common::{blocking_on_virtual_time, virtual_time_server, SubmitConsent};

    let (server, clock) = virtual_time_server();
    let store = Arc::new(MemoryFleetStore::new(Arc::new(clock.clone())));
    let instance = |name: &str| {
        blocking_on_virtual_time(&server, &clock)
            .refresh_policy(RefreshPolicy::default().with_min_interval(Duration::ZERO))
            .fleet(BlockingFleet {
                store: store.clone(),
                config: config().with_instance(name),
            })
            .build()
            .unwrap()
    };
    let (a, b) = (instance("a"), instance("b"));
    let user = a.users().create(new_user("plan@example.com")).unwrap().id;
    let hooli = ConsentAction::connect_to(InstitutionId::new("AU00000").unwrap());
    let ConsentOutcome::Link(link) = a.consent_url(&user, hooli).unwrap() else {
        panic!("expected a link");
    };
    let job = a
        .execute(SubmitConsent::new(
            &link,
            Some(("gavinBelson", "hooli2016")),
        ))
        .unwrap();
    let report = a
        .jobs()
        .wait(JobId::new(job).unwrap(), PollConfig::default())
        .unwrap();
    assert!(report.is_success(), "{report:?}");
    let connection = a.connections().list(&user).unwrap().data[0].id.clone();
    clock.advance(Duration::from_secs(3600));
    let plan = a.connections().plan_refreshes(
        std::slice::from_ref(&connection),
        Duration::from_secs(600),
        clock.now(),
    );
    let slot = &plan.planned[0];
    let first = a.connections().refresh_planned(&user, slot).unwrap();
    assert!(matches!(first, RefreshOutcome::Started(_)), "{first:?}");
    let second = b.connections().refresh_planned(&user, slot).unwrap();
    assert!(
        matches!(
            second,
            RefreshOutcome::Skipped(SkipReason::InProgressElsewhere { .. })
        ),
        "{second:?}"
    );
    assert_eq!(server.stats().refreshes.get(connection.as_str()), Some(&1));
}
