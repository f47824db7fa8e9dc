use std::sync::Arc;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::clock::ManualClock;
use crate::policy::fleet::{AttemptStep, FleetKeys, FleetStore, MemoryFleetStore};
use crate::policy::refresh::MemoryLedger;
use crate::test_support::{at, job, three};

fn user() -> UserId {
    UserId::new("u1").unwrap()
}

fn conn_id() -> ConnectionId {
    ConnectionId::new("c1").unwrap()
}

fn connection(status: &str, method: &str) -> Connection {
    serde_json::from_value(json!({
        "type": "connection", "id": "c1", "status": status, "method": method,
    }))
    .unwrap()
}

fn started(id: &str) -> RefreshResponse {
    RefreshResponse::Started(JobId::new(id).unwrap())
}

/// What a driver saw: the verdict and how many refreshes it sent.
struct Run {
    result: Result<RefreshVerdict, Error>,
    sent: u32,
    settled: Vec<AttemptResult>,
}

/// Drives `flow` on canned answers: `connection`, `jobs`, Basiq's answer to the refresh, and
/// (fleet mode) a fleet store.
fn drive(
    (mut flow, now): (GuardedRefresh, OffsetDateTime),
    connection: Result<Connection, Error>,
    jobs: Vec<Job>,
    answer: impl Fn() -> Result<RefreshResponse, Error>,
    ledger: &mut MemoryLedger,
    store: Option<&MemoryFleetStore>,
) -> Run {
    let mut connection = Some(connection);
    let mut jobs = Some(jobs);
    let mut sent = 0;
    let mut settled = Vec::new();
    let mut step = flow.start();
    loop {
        step = match step {
            RefreshStep::LastRefreshedByBasiq(_) => flow.on_freshness(None, now),
            RefreshStep::ReadConnection(op) => {
                assert_eq!(op.connection_id, conn_id());
                flow.on_connection(connection.take().expect("read once"))
            }
            RefreshStep::ReadJobs(u) => {
                assert_eq!(u, user());
                flow.on_jobs(Ok(jobs.take().expect("read once")), ledger, now)
            }
            RefreshStep::Claim(mut attempt) => {
                let store = store.expect("a claim only in fleet mode");
                let mut s = attempt.start();
                let verdict = loop {
                    s = match s {
                        AttemptStep::Store(op) => attempt.on_store(store.execute(&op)),
                        AttemptStep::Proceed => break Ok(()),
                        AttemptStep::Refused(r) => break Err(r),
                    };
                };
                flow.on_claim(attempt, verdict, ledger, now)
            }
            RefreshStep::Send(_) => {
                sent += 1;
                flow.on_sent(answer())
            }
            RefreshStep::Settle(attempt, result) => {
                let store = store.expect("settled only in fleet mode");
                for op in attempt.settle(&result) {
                    store.execute(&op).unwrap();
                }
                settled.push(result);
                flow.on_settled()
            }
            RefreshStep::Done(result) => {
                return Run {
                    result,
                    sent,
                    settled,
                }
            }
        }
    }
}

fn flow(fleet: Option<FleetConfig>, now: OffsetDateTime) -> (GuardedRefresh, OffsetDateTime) {
    (
        GuardedRefresh::new(user(), conn_id(), RefreshPolicy::default(), fleet),
        now,
    )
}

#[test]
fn an_active_connection_is_sent_once_and_recorded() {
    let mut ledger = MemoryLedger::new();
    let run = drive(
        flow(None, at(0)),
        Ok(connection("active", "web")),
        Vec::new(),
        || Ok(started("j9")),
        &mut ledger,
        None,
    );
    assert_eq!(run.result.unwrap(), RefreshVerdict::Sent(started("j9")));
    assert_eq!(run.sent, 1);
    assert_eq!(ledger.count(&conn_id(), at(0).date()), 1);
}

#[test]
fn an_inactive_connection_sends_nothing_and_records_nothing() {
    let mut ledger = MemoryLedger::new();
    let run = drive(
        flow(None, at(0)),
        Ok(connection("invalid", "web")),
        Vec::new(),
        || panic!("never sent"),
        &mut ledger,
        None,
    );
    assert!(matches!(
        run.result.unwrap(),
        RefreshVerdict::Skipped(SkipReason::Inactive(_))
    ));
    assert_eq!((run.sent, ledger.count(&conn_id(), at(0).date())), (0, 0));
}

#[test]
fn a_running_job_is_followed_not_duplicated() {
    let mut ledger = MemoryLedger::new();
    let running = job(
        "j1",
        Some("c1"),
        Some("AU00000"),
        -30,
        -10,
        &three("in-progress", None),
    );
    let run = drive(
        flow(None, at(0)),
        Ok(connection("active", "web")),
        vec![running],
        || panic!("never sent"),
        &mut ledger,
        None,
    );
    let verdict = run.result.unwrap();
    assert!(
        matches!(&verdict, RefreshVerdict::Skipped(SkipReason::InProgress(j)) if j.as_str() == "j1")
            || matches!(&verdict, RefreshVerdict::Paused { .. }),
        "{verdict:?}"
    );
    assert_eq!(run.sent, 0);
}

#[test]
fn a_failed_read_ends_the_flow_with_the_ids() {
    let mut ledger = MemoryLedger::new();
    let (mut f, now) = flow(None, at(0));
    let _ = f.start();
    let RefreshStep::ReadJobs(_) = f.on_connection(Ok(connection("active", "web"))) else {
        panic!("jobs next")
    };
    let RefreshStep::Done(Err(e)) = f.on_jobs(
        Err(Error::from_response(
            http::StatusCode::SERVICE_UNAVAILABLE,
            b"{}",
            None,
        )),
        &mut ledger,
        now,
    ) else {
        panic!("an error ends it")
    };
    let context = e.context().expect("ids attached");
    assert_eq!(context.user_id, Some(user()));
    assert_eq!(context.connection_id, Some(conn_id()));
    assert_eq!(ledger.count(&conn_id(), at(0).date()), 0);
}

#[test]
fn steps_out_of_order_are_an_error_not_a_panic() {
    let (mut f, _) = flow(None, at(0));
    assert!(matches!(
        f.on_sent(Ok(started("j"))),
        RefreshStep::Done(Err(_))
    ));
    let (mut f, _) = flow(None, at(0));
    let _ = f.start();
    assert!(matches!(f.start(), RefreshStep::Done(Err(_))));
}

#[test]
fn a_paused_duplicate_is_reported_before_anything_else() {
    // Two attempts on c1 within 6 minutes: Basiq pauses the second, even though the connection
    // is `invalid` (which alone would skip it): the pause is what the user must wait out.
    let mut ledger = MemoryLedger::new();
    let jobs = vec![
        job(
            "j1",
            Some("c1"),
            Some("AU00000"),
            0,
            0,
            &three("in-progress", None),
        ),
        job(
            "j2",
            Some("c1"),
            Some("AU00000"),
            120,
            120,
            &three("in-progress", None),
        ),
    ];
    let run = drive(
        flow(None, at(300)),
        Ok(connection("invalid", "web")),
        jobs,
        || panic!("never sent"),
        &mut ledger,
        None,
    );
    assert_eq!(
        run.result.unwrap(),
        RefreshVerdict::Paused {
            until: at(120 + 360),
            job_id: JobId::new("j2").unwrap()
        }
    );
    assert_eq!(
        ledger.count(&conn_id(), at(0).date()),
        0,
        "nothing recorded"
    );
}

#[test]
fn a_job_running_on_another_connection_does_not_block_this_one() {
    let mut ledger = MemoryLedger::new();
    let busy = job(
        "j1",
        Some("c2"),
        Some("AU00001"),
        -30,
        -10,
        &three("in-progress", None),
    );
    let run = drive(
        flow(None, at(0)),
        Ok(connection("active", "web")),
        vec![busy],
        || Ok(started("j3")),
        &mut ledger,
        None,
    );
    assert_eq!(run.result.unwrap(), RefreshVerdict::Sent(started("j3")));
}

fn fleet() -> FleetConfig {
    FleetConfig::new(FleetKeys::new("test").unwrap())
}

#[test]
fn in_fleet_mode_a_second_instance_is_refused_and_sends_nothing() {
    let clock = ManualClock::new(at(0));
    let store = MemoryFleetStore::new(Arc::new(clock));
    let (mut l1, mut l2) = (MemoryLedger::new(), MemoryLedger::new());
    // The first instance's answer is unknown (a 503): its claim is kept.
    let first = drive(
        flow(Some(fleet()), at(0)),
        Ok(connection("active", "openbanking")),
        Vec::new(),
        || {
            Err(Error::from_response(
                http::StatusCode::SERVICE_UNAVAILABLE,
                b"{}",
                None,
            ))
        },
        &mut l1,
        Some(&store),
    );
    assert!(first.result.is_err());
    assert_eq!(
        (first.sent, first.settled.clone()),
        (1, vec![AttemptResult::Unknown])
    );
    let second = drive(
        flow(Some(fleet()), at(1)),
        Ok(connection("active", "openbanking")),
        Vec::new(),
        || panic!("the claim is held elsewhere"),
        &mut l2,
        Some(&store),
    );
    assert!(matches!(
        second.result.unwrap(),
        RefreshVerdict::Skipped(SkipReason::InProgressElsewhere { .. })
    ),);
    assert_eq!((second.sent, l2.count(&conn_id(), at(1).date())), (0, 0));
    assert_eq!(l1.count(&conn_id(), at(0).date()), 1);
}

#[test]
fn in_fleet_mode_a_refused_answer_gives_the_claim_back() {
    let store = MemoryFleetStore::new(Arc::new(ManualClock::new(at(0))));
    let mut ledger = MemoryLedger::new();
    let refused = drive(
        flow(Some(fleet()), at(0)),
        Ok(connection("active", "web")),
        Vec::new(),
        || {
            Err(Error::from_response(
                http::StatusCode::BAD_REQUEST,
                b"{}",
                None,
            ))
        },
        &mut ledger,
        Some(&store),
    );
    assert_eq!(refused.settled, vec![AttemptResult::NotActed]);
    let next = drive(
        flow(Some(fleet()), at(1)),
        Ok(connection("active", "web")),
        Vec::new(),
        || Ok(started("j2")),
        &mut ledger,
        Some(&store),
    );
    assert_eq!(next.result.unwrap(), RefreshVerdict::Sent(started("j2")));
    assert_eq!(
        next.settled,
        vec![AttemptResult::Started(JobId::new("j2").unwrap())]
    );
}

proptest! {
    /// However many refreshes the ledger already holds today, an active open-banking connection
    /// is sent exactly when fewer than Basiq's 20 were, and the ledger never passes 20.
    #[test]
    fn the_daily_quota_holds(before in 0u32..30, tries in 1u32..30) {
        let mut ledger = MemoryLedger::new();
        let policy = RefreshPolicy::default().with_min_interval(Duration::ZERO);
        for i in 0..before {
            ledger.record(&conn_id(), at(i64::from(i)));
        }
        let mut sent = 0;
        for i in 0..tries {
            let now = at(3600 + i64::from(i));
            let f = (GuardedRefresh::new(user(), conn_id(), policy, None), now);
            let run = drive(f, Ok(connection("active", "openbanking")), Vec::new(),
                || Ok(started("j")), &mut ledger, None);
            let expect_sent = before + sent < 20;
            prop_assert_eq!(run.sent == 1, expect_sent);
            sent += run.sent;
            if !expect_sent {
                let is_quota = matches!(run.result,
                    Ok(RefreshVerdict::Skipped(SkipReason::DailyQuotaExhausted { .. })));
                prop_assert!(is_quota);
            }
        }
        prop_assert_eq!(sent, 20u32.saturating_sub(before).min(tries));
        prop_assert_eq!(ledger.count(&conn_id(), at(0).date()), before + sent);
    }
}

#[test]
fn a_connection_basiq_just_refreshed_is_skipped_before_anything_is_read() {
    let policy = RefreshPolicy::default();
    let mut flow = GuardedRefresh::new(user(), conn_id(), policy, None).consult_freshness();
    let RefreshStep::LastRefreshedByBasiq(c) = flow.start() else {
        panic!("the freshness ledger first")
    };
    assert_eq!(c, conn_id());
    let RefreshStep::Done(Ok(RefreshVerdict::Skipped(SkipReason::RefreshedByBasiq {
        at: when,
        ..
    }))) = flow.on_freshness(Some(at(-60)), at(0))
    else {
        panic!("refreshed a minute ago by Basiq: skipped")
    };
    assert_eq!(when, at(-60));
    // Unknown (or long ago): the usual reads follow.
    let mut flow = GuardedRefresh::new(user(), conn_id(), policy, None).consult_freshness();
    let _ = flow.start();
    assert!(matches!(
        flow.on_freshness(None, at(0)),
        RefreshStep::ReadConnection(_)
    ));
    let mut flow = GuardedRefresh::new(user(), conn_id(), policy, None).consult_freshness();
    let _ = flow.start();
    let long_ago = at(0) - policy.min_interval - time::Duration::seconds(1);
    assert!(matches!(
        flow.on_freshness(Some(long_ago), at(0)),
        RefreshStep::ReadConnection(_)
    ));
}
