use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::clock::ManualClock;
use crate::id::ConnectionId;
use crate::policy::fleet::{FleetKeys, FleetStore, MemoryFleetStore};

fn at(secs: i64) -> OffsetDateTime {
    time::macros::datetime!(2026-01-05 10:00 UTC) + time::Duration::seconds(secs)
}

fn job(id: &str, created: i64, done: bool) -> Job {
    let status = if done { "success" } else { "in-progress" };
    serde_json::from_value(serde_json::json!({
        "type": "job", "id": id, "created": at(created).format(&time::format_description::well_known::Rfc3339).unwrap(),
        "updated": at(created).format(&time::format_description::well_known::Rfc3339).unwrap(),
        "steps": [{"title": "verify-credentials", "status": status}],
        "links": {"source": "https://au-api.basiq.io/users/u1/connections/c1"}
    }))
    .unwrap()
}

/// Runs an attempt to its verdict on `store`.
fn drive(attempt: &mut FleetAttempt, store: &dyn FleetStore) -> Result<(), AttemptRefusal> {
    let mut step = attempt.start();
    loop {
        step = match step {
            AttemptStep::Store(op) => attempt.on_store(store.execute(&op)),
            AttemptStep::Proceed => return Ok(()),
            AttemptStep::Refused(r) => return Err(r),
        };
    }
}

fn settle(attempt: &FleetAttempt, result: &AttemptResult, store: &dyn FleetStore) {
    for op in attempt.settle(result) {
        store.execute(&op).unwrap();
    }
}

fn setup() -> (MemoryFleetStore, FleetKeys, ConnectionId) {
    let clock = ManualClock::new(at(0));
    (
        MemoryFleetStore::new(Arc::new(clock)),
        FleetKeys::new("t").unwrap(),
        ConnectionId::new("c1").unwrap(),
    )
}

#[test]
fn a_second_instance_is_refused_while_the_first_attempt_runs_then_takes_over() {
    let (store, keys, conn) = setup();
    let mut a = FleetAttempt::new(keys.refresh_attempt(&conn), "a", at(0), vec![]);
    assert_eq!(drive(&mut a, &store), Ok(()));
    // b looks before Basiq shows a job: refused, no job to follow yet.
    let mut b = FleetAttempt::new(keys.refresh_attempt(&conn), "b", at(1), vec![]);
    assert!(matches!(
        drive(&mut b, &store),
        Err(AttemptRefusal::HeldElsewhere { job_id: None, .. })
    ));
    settle(
        &a,
        &AttemptResult::Started(JobId::new("j1").unwrap()),
        &store,
    );
    // The claim names the job: b is told to follow it while it runs…
    let mut b = FleetAttempt::new(
        keys.refresh_attempt(&conn),
        "b",
        at(5),
        vec![job("j1", 0, false)],
    );
    assert_eq!(
        drive(&mut b, &store),
        Err(AttemptRefusal::HeldElsewhere {
            job_id: Some(JobId::new("j1").unwrap()),
            until: Some(at(5) + time::Duration::minutes(6)),
        })
    );
    // …and takes the claim over once it finished.
    let mut b = FleetAttempt::new(
        keys.refresh_attempt(&conn),
        "b",
        at(20),
        vec![job("j1", 0, true)],
    );
    assert_eq!(drive(&mut b, &store), Ok(()));
}

#[test]
fn the_quota_is_reserved_atomically_and_given_back_when_basiq_did_not_act() {
    let (store, keys, conn) = setup();
    let day = at(0).date();
    let quota =
        |a: FleetAttempt| a.with_quota(keys.quota(&conn, day), 2, Duration::from_secs(86_400));
    let mut first = quota(FleetAttempt::new(
        keys.refresh_attempt(&conn),
        "a",
        at(0),
        vec![],
    ));
    drive(&mut first, &store).unwrap();
    assert!(first.reserved());
    // Refused by Basiq before acting: the claim and the reservation come back.
    settle(&first, &AttemptResult::NotActed, &store);
    for (i, t) in [(1, 10), (2, 20)] {
        let mut a = quota(FleetAttempt::new(
            keys.refresh_attempt(&conn),
            "a",
            at(t),
            vec![],
        ));
        assert_eq!(drive(&mut a, &store), Ok(()), "refresh {i}");
        settle(&a, &AttemptResult::NotActed, &store);
        // Count it for real this time.
        store
            .execute(&FleetOp::IncrementBelow {
                key: keys.quota(&conn, day),
                limit: 2,
                ttl: Duration::from_secs(60),
            })
            .unwrap();
    }
    let mut over = quota(FleetAttempt::new(
        keys.refresh_attempt(&conn),
        "a",
        at(30),
        vec![],
    ));
    assert_eq!(
        drive(&mut over, &store),
        Err(AttemptRefusal::QuotaExhausted)
    );
    // The refused attempt released its claim: another connection-level attempt may claim.
    let mut plain = FleetAttempt::new(keys.refresh_attempt(&conn), "b", at(31), vec![]);
    assert_eq!(drive(&mut plain, &store), Ok(()));
}

#[derive(Debug)]
struct Down;

impl FleetStore for Down {
    fn execute(&self, _: &FleetOp) -> Result<FleetAnswer, StoreError> {
        Err(StoreError::new("connection refused"))
    }
}

#[test]
fn a_store_that_is_down_lets_the_attempt_proceed_on_local_checks() {
    let (_, keys, conn) = setup();
    let mut a = FleetAttempt::new(keys.refresh_attempt(&conn), "a", at(0), vec![]).with_quota(
        keys.quota(&conn, at(0).date()),
        20,
        Duration::from_secs(60),
    );
    assert_eq!(drive(&mut a, &Down), Ok(()));
    assert!(!a.reserved());
    // Nothing was claimed or reserved: settling asks for nothing.
    assert!(a.settle(&AttemptResult::NotActed).is_empty());
}

#[test]
fn an_exclusive_claim_is_never_taken_over() {
    let (store, keys, conn) = setup();
    let slot = keys.planned_slot(&conn, at(0));
    let mut a =
        FleetAttempt::new(slot.clone(), "a", at(0), vec![]).exclusive(Duration::from_secs(3600));
    drive(&mut a, &store).unwrap();
    settle(
        &a,
        &AttemptResult::Started(JobId::new("j1").unwrap()),
        &store,
    );
    let mut b = FleetAttempt::new(slot, "b", at(60), vec![job("j1", 0, true)])
        .exclusive(Duration::from_secs(3600));
    assert!(matches!(
        drive(&mut b, &store),
        Err(AttemptRefusal::HeldElsewhere { .. })
    ));
}

proptest! {
    /// Any interleaving of instances racing for one connection's refreshes on one day: never
    /// more reservations than the limit, and never two instances proceeding while a claim is
    /// held (each proceeding instance settles before the next step).
    #[test]
    fn racing_instances_never_exceed_the_daily_quota(
        picks in proptest::collection::vec((0usize..4, any::<bool>()), 1..80),
        limit in 1u32..25,
    ) {
        let (store, keys, conn) = setup();
        let day = at(0).date();
        let mut started = 0u32;
        for (i, (instance, acted)) in picks.into_iter().enumerate() {
            let now = at(i64::try_from(i).unwrap() * 30);
            let jobs: Vec<Job> = (0..started).map(|n| job(&format!("j{n}"), 0, true)).collect();
            let mut attempt = FleetAttempt::new(keys.refresh_attempt(&conn), &format!("i{instance}"), now, jobs)
                .with_quota(keys.quota(&conn, day), limit, Duration::from_secs(86_400));
            if drive(&mut attempt, &store).is_ok() {
                prop_assert!(attempt.reserved());
                let result = if acted {
                    started += 1;
                    AttemptResult::Started(JobId::new(format!("j{}", started - 1)).unwrap())
                } else {
                    AttemptResult::NotActed
                };
                settle(&attempt, &result, &store);
            }
            prop_assert!(started <= limit);
        }
    }
}
