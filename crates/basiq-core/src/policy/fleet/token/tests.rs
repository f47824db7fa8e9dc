use std::sync::Arc;

use super::*;
use crate::clock::{Clock, ManualClock};
use crate::engine::auth::{parse_base_url, ExecutorConfig};
use crate::policy::fleet::{FleetKeys, FleetStore, MemoryFleetStore};
use crate::policy::token::FetchReason;
use crate::secret::ApiKey;

fn start() -> OffsetDateTime {
    time::macros::datetime!(2026-01-05 10:00 UTC)
}

fn core(clock: &ManualClock) -> ExecutorCore {
    let config = ExecutorConfig::new(
        parse_base_url("http://127.0.0.1:1").unwrap(),
        ApiKey::new("k"),
    )
    .with_clock(Arc::new(clock.clone()));
    ExecutorCore::new(config, || 0.5).unwrap()
}

fn response(token: &str) -> TokenResponse {
    serde_json::from_value(serde_json::json!({
        "access_token": token, "token_type": "Bearer", "expires_in": 3600
    }))
    .unwrap()
}

/// What one run of the flow did.
#[derive(Debug, Default)]
struct Run {
    fetches: u32,
    slept: Duration,
}

/// Drives a flow: store ops on `store`, sleeps advance `clock` (and run `on_sleep`), fetches
/// answer `fetch`.
fn drive(
    core: &ExecutorCore,
    config: &FleetConfig,
    store: &dyn FleetStore,
    clock: &ManualClock,
    mut fetch: impl FnMut() -> Result<(TokenResponse, OffsetDateTime), Error>,
    mut on_sleep: impl FnMut(),
) -> (Result<TokenLease, Error>, Run) {
    let pending = core.lease().unwrap_err();
    let mut flow = core.fleet_fetch(config, pending);
    let mut run = Run::default();
    let mut step = flow.start();
    loop {
        step = match step {
            FleetStep::Store(op) => flow.on_store(store.execute(&op)),
            FleetStep::Sleep(d) => {
                clock.advance(d);
                run.slept += d;
                on_sleep();
                flow.on_slept()
            }
            FleetStep::FetchToken => {
                run.fetches += 1;
                flow.on_fetched(fetch())
            }
            FleetStep::Done(result) => return (result, run),
        };
    }
}

fn setup() -> (ManualClock, Arc<MemoryFleetStore>, FleetConfig) {
    let clock = ManualClock::new(start());
    let store = Arc::new(MemoryFleetStore::new(Arc::new(clock.clone())));
    let config = FleetConfig::new(FleetKeys::new("t").unwrap()).with_instance("test");
    (clock, store, config)
}

/// Another instance takes the fetch lock (with the usual 30 s lease).
fn hold_lock(store: &MemoryFleetStore, config: &FleetConfig, holder: &[u8]) {
    let taken = store
        .execute(&FleetOp::SetIfAbsent {
            key: config.keys().token_lock(),
            value: holder.to_vec(),
            ttl: Duration::from_secs(30),
        })
        .unwrap();
    assert!(taken.applied().unwrap());
}

#[test]
fn the_first_instance_fetches_and_stores_the_next_one_adopts_without_fetching() {
    let (clock, store, config) = setup();
    let a = core(&clock);
    let (lease, run) = drive(
        &a,
        &config,
        &*store,
        &clock,
        || Ok((response("shared"), start())),
        || {},
    );
    assert_eq!(lease.unwrap().token.expose_secret(), "shared");
    assert_eq!(run.fetches, 1);
    // Stored with a TTL below the remaining lifetime, and the lock released.
    let stored = store
        .execute(&FleetOp::Get {
            key: config.keys().token(),
        })
        .unwrap();
    assert!(stored.into_value().unwrap().is_some());
    let lock = store
        .execute(&FleetOp::Get {
            key: config.keys().token_lock(),
        })
        .unwrap();
    assert_eq!(lock.into_value().unwrap(), None);
    clock.advance(Duration::from_secs(600));
    let b = core(&clock);
    let (lease, run) = drive(&b, &config, &*store, &clock, || panic!("no fetch"), || {});
    assert_eq!(lease.unwrap().token.expose_secret(), "shared");
    assert_eq!(run.fetches, 0);
    // The stored copy expires before the token does (margin), so nobody adopts a dying token.
    clock.advance(Duration::from_secs(3000 - 30));
    assert_eq!(
        store
            .execute(&FleetOp::Get {
                key: config.keys().token()
            })
            .unwrap()
            .into_value()
            .unwrap(),
        None
    );
}

#[test]
fn a_waiter_adopts_the_token_the_lock_holder_stores() {
    let (clock, store, config) = setup();
    // Another instance holds the lock and is fetching.
    hold_lock(&store, &config, b"other:1");
    let holder = core(&clock);
    let holder_config = config.clone().with_instance("holder");
    let mut stored_once = false;
    let (lease, run) = drive(
        &core(&clock),
        &config,
        &*store,
        &clock,
        || panic!("the waiter must not fetch"),
        || {
            if !stored_once {
                stored_once = true;
                store.clear();
                let (l, _) = drive(
                    &holder,
                    &holder_config,
                    &*store,
                    &clock,
                    || Ok((response("from-holder"), clock.now())),
                    || {},
                );
                l.unwrap();
            }
        },
    );
    assert_eq!(lease.unwrap().token.expose_secret(), "from-holder");
    assert_eq!(run.fetches, 0);
}

#[test]
fn a_dead_lock_holder_lets_the_next_instance_fetch_after_the_lease() {
    let (clock, store, config) = setup();
    hold_lock(&store, &config, b"dead:1");
    let (lease, run) = drive(
        &core(&clock),
        &config,
        &*store,
        &clock,
        || Ok((response("mine"), clock.now())),
        || {},
    );
    assert_eq!(lease.unwrap().token.expose_secret(), "mine");
    assert_eq!(run.fetches, 1);
    assert!(
        run.slept >= Duration::from_secs(30),
        "waited out the lease: {:?}",
        run.slept
    );
    assert!(
        run.slept < Duration::from_secs(32),
        "but not much longer: {:?}",
        run.slept
    );
}

#[test]
fn a_failed_fetch_is_published_and_the_fleet_waits_out_the_backoff() {
    let (clock, store, config) = setup();
    let failing = core(&clock);
    let outage = || {
        Err(Error::from_response(
            http::StatusCode::SERVICE_UNAVAILABLE,
            b"{\"type\":\"list\",\"data\":[{\"code\":\"service-unavailable\",\"title\":\"down\"}]}",
            None,
        ))
    };
    let (err, run) = drive(&failing, &config, &*store, &clock, outage, || {});
    assert_eq!(err.unwrap_err().kind(), ErrorKind::Server);
    assert_eq!(run.fetches, 1);
    // Another instance that finds no token and the lock free still sees the published failure
    // once it has waited for a holder... here the lock is free, so it reads the backoff only
    // while polling: hold the lock to make it poll.
    hold_lock(&store, &config, b"other:1");
    let other = core(&clock);
    let (err, run) = drive(
        &other,
        &config,
        &*store,
        &clock,
        || panic!("must not fetch"),
        || {},
    );
    match err.unwrap_err() {
        Error::TokenUnavailable { failure, .. } => {
            assert_eq!(failure.kind, ErrorKind::Server);
            assert!(
                failure.cause.contains("another instance"),
                "{}",
                failure.cause
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(run.fetches, 0);
    // The same process then shares it without asking the store.
    let pending = other.lease().unwrap_err();
    assert!(other.shared_failure(&pending).is_some());
}

#[derive(Debug)]
struct Xor;

impl TokenSealer for Xor {
    fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        Ok(plaintext.iter().map(|b| b ^ 0x5a).collect())
    }
    fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        Ok(sealed.iter().map(|b| b ^ 0x5a).collect())
    }
}

#[test]
fn a_sealed_token_is_stored_sealed_and_a_rejected_one_removed_only_if_still_stored() {
    let (clock, store, config) = setup();
    let config = config.with_sealer(Arc::new(Xor));
    let a = core(&clock);
    let (lease, _) = drive(
        &a,
        &config,
        &*store,
        &clock,
        || Ok((response("secret-token"), start())),
        || {},
    );
    let lease = lease.unwrap();
    let raw = store
        .execute(&FleetOp::Get {
            key: config.keys().token(),
        })
        .unwrap()
        .into_value()
        .unwrap()
        .unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains("secret-token"));
    // Basiq rejects it: the next fetch first removes it from the store (it is still the stored one).
    let expired = Error::from_response(
        http::StatusCode::UNAUTHORIZED,
        b"{\"type\":\"list\",\"data\":[{\"code\":\"invalid-authorization-token\",\"title\":\"expired\"}]}",
        None,
    );
    assert!(matches!(
        a.answered::<()>(&lease, Err(expired)),
        crate::engine::executor::AuthStep::Reauthenticate
    ));
    assert_eq!(a.lease().unwrap_err().reason(), FetchReason::Rejected);
    let (lease, run) = drive(
        &a,
        &config,
        &*store,
        &clock,
        || Ok((response("fresh"), clock.now())),
        || {},
    );
    assert_eq!(lease.unwrap().token.expose_secret(), "fresh");
    assert_eq!(run.fetches, 1);
    // A newer token another instance stored is left alone by a late rejection of the old one.
    let b = core(&clock);
    let (lease_b, _) = drive(&b, &config, &*store, &clock, || panic!("adopts"), || {});
    let lease_b = lease_b.unwrap();
    assert_eq!(lease_b.token.expose_secret(), "fresh");
    store
        .execute(&FleetOp::Set {
            key: config.keys().token(),
            value: Xor
                .seal(b"{\"v\":1,\"token\":\"newest\",\"expires_at\":9999999999,\"lifetime\":3600}")
                .unwrap(),
            ttl: Duration::from_secs(600),
        })
        .unwrap();
    let expired = Error::from_response(http::StatusCode::UNAUTHORIZED, b"{}", None);
    let _ = b.answered::<()>(&lease_b, Err(expired));
    let (lease, run) = drive(
        &b,
        &config,
        &*store,
        &clock,
        || panic!("adopts the newest"),
        || {},
    );
    assert_eq!(lease.unwrap().token.expose_secret(), "newest");
    assert_eq!(run.fetches, 0);
}

#[test]
fn a_store_that_fails_falls_back_to_one_local_fetch() {
    #[derive(Debug)]
    struct Down;
    impl FleetStore for Down {
        fn execute(&self, _: &FleetOp) -> Result<FleetAnswer, StoreError> {
            Err(StoreError::new("connection refused"))
        }
    }
    let (clock, _, config) = setup();
    let c = core(&clock);
    let (lease, run) = drive(
        &c,
        &config,
        &Down,
        &clock,
        || Ok((response("local"), start())),
        || {},
    );
    assert_eq!(lease.unwrap().token.expose_secret(), "local");
    assert_eq!(run.fetches, 1);
    assert_eq!(run.slept, Duration::ZERO);
}
