use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::clock::ManualClock;
use crate::policy::fleet::{AttemptStep, FleetKeys, FleetStore, MemoryFleetStore};
use crate::test_support::{any_status, at, job, three};

fn user() -> UserId {
    UserId::new("u1").unwrap()
}

fn hooli() -> Option<InstitutionId> {
    Some(InstitutionId::new("AU00000").unwrap())
}

/// What a driver saw: the verdict, how many tokens it minted, what it settled.
#[derive(Debug)]
struct Run {
    result: Result<ConsentVerdict, Error>,
    minted: u32,
    settled: Vec<AttemptResult>,
}

/// Drives `flow` on canned answers: the user's `jobs`, whether minting works, and (fleet
/// mode) a fleet store.
fn drive(
    mut flow: ConsentFlow,
    jobs: Vec<Job>,
    now: OffsetDateTime,
    mint: Result<(), Error>,
    store: Option<&MemoryFleetStore>,
) -> Run {
    let (mut jobs, mut mint) = (Some(jobs), Some(mint));
    let (mut minted, mut settled) = (0, Vec::new());
    let mut step = flow.start();
    loop {
        step = match step {
            ConsentStep::ReadJobs(u) => {
                assert_eq!(u, user());
                flow.on_jobs(Ok(jobs.take().expect("read once")), now)
            }
            ConsentStep::Claim(mut attempt) => {
                let store = store.expect("a claim only in fleet mode");
                let mut s = attempt.start();
                let verdict = loop {
                    s = match s {
                        AttemptStep::Store(op) => attempt.on_store(store.execute(&op)),
                        AttemptStep::Proceed => break Ok(()),
                        AttemptStep::Refused(r) => break Err(r),
                    };
                };
                flow.on_claim(attempt, verdict)
            }
            ConsentStep::MintToken(u) => {
                assert_eq!(u, user());
                minted += 1;
                flow.on_token(mint.take().expect("minted once"))
            }
            ConsentStep::Settle(attempt, result) => {
                for op in attempt.settle(&result) {
                    store.expect("fleet").execute(&op).unwrap();
                }
                settled.push(result);
                flow.on_settled()
            }
            ConsentStep::Done(result) => {
                return Run {
                    result,
                    minted,
                    settled,
                }
            }
        }
    }
}

#[test]
fn nothing_running_mints_one_token() {
    let run = drive(
        ConsentFlow::new(user(), hooli(), None, None),
        Vec::new(),
        at(0),
        Ok(()),
        None,
    );
    assert_eq!(run.result.unwrap(), ConsentVerdict::Proceed);
    assert_eq!(run.minted, 1);
}

#[test]
fn a_running_attempt_is_followed_and_a_second_one_reports_the_pause() {
    let one = vec![job(
        "j1",
        Some("c1"),
        Some("AU00000"),
        0,
        0,
        &three("in-progress", None),
    )];
    let run = drive(
        ConsentFlow::new(user(), hooli(), None, None),
        one.clone(),
        at(300),
        Ok(()),
        None,
    );
    assert!(matches!(
        run.result.unwrap(),
        ConsentVerdict::FollowExisting { job_id } if job_id.as_str() == "j1"
    ));
    assert_eq!(run.minted, 0, "no token while one attempt runs");
    // Another institution is a different attempt.
    let other = Some(InstitutionId::new("AU00002").unwrap());
    let run = drive(
        ConsentFlow::new(user(), other, None, None),
        one.clone(),
        at(300),
        Ok(()),
        None,
    );
    assert_eq!(run.result.unwrap(), ConsentVerdict::Proceed);
    // Two within 6 minutes on the connection: the second is paused until 6 minutes after it.
    let mut two = one;
    two.push(job(
        "j2",
        Some("c1"),
        Some("AU00000"),
        120,
        120,
        &three("in-progress", None),
    ));
    let conn = Some(ConnectionId::new("c1").unwrap());
    let run = drive(
        ConsentFlow::new(user(), None, conn, None),
        two,
        at(300),
        Ok(()),
        None,
    );
    assert_eq!(
        run.result.unwrap(),
        ConsentVerdict::Paused {
            until: at(480),
            job_id: JobId::new("j2").unwrap()
        }
    );
    assert_eq!(run.minted, 0);
}

#[test]
fn a_token_failure_ends_with_the_ids_and_gives_the_fleet_claim_back() {
    let store = MemoryFleetStore::new(Arc::new(ManualClock::new(at(0))));
    let fleet = FleetConfig::new(FleetKeys::new("test").unwrap());
    let conn = Some(ConnectionId::new("c1").unwrap());
    let failed = drive(
        ConsentFlow::new(user(), None, conn.clone(), Some(fleet.clone())),
        Vec::new(),
        at(0),
        Err(Error::from_response(
            http::StatusCode::SERVICE_UNAVAILABLE,
            b"{}",
            None,
        )),
        Some(&store),
    );
    let e = failed.result.unwrap_err();
    assert_eq!(e.context().and_then(|c| c.connection_id.clone()), conn);
    assert_eq!(failed.settled, vec![AttemptResult::NotActed]);
    // The claim was given back: the next attempt (another instance) goes through, and holds it.
    let next = drive(
        ConsentFlow::new(user(), None, conn.clone(), Some(fleet.clone())),
        Vec::new(),
        at(1),
        Ok(()),
        Some(&store),
    );
    assert_eq!(next.result.unwrap(), ConsentVerdict::Proceed);
    assert_eq!(next.settled, vec![AttemptResult::HandedOut]);
    let third = drive(
        ConsentFlow::new(user(), None, conn, Some(fleet)),
        Vec::new(),
        at(2),
        Ok(()),
        Some(&store),
    );
    assert!(
        matches!(
            third.result.unwrap(),
            ConsentVerdict::InProgressElsewhere { .. }
        ),
        "a handed-out link holds the claim"
    );
    assert_eq!(third.minted, 0);
}

#[test]
fn steps_out_of_order_are_an_error_not_a_panic() {
    let mut flow = ConsentFlow::new(user(), None, None, None);
    assert!(matches!(flow.on_token(Ok(())), ConsentStep::Done(Err(_))));
    let mut flow = ConsentFlow::new(user(), None, None, None);
    let _ = flow.start();
    assert!(matches!(flow.on_settled(), ConsentStep::Done(Err(_))));
}

proptest! {
    /// Whatever the user's jobs for the institution, a token is minted exactly when the pause
    /// guard says no attempt is running or paused — never alongside a running attempt.
    #[test]
    fn a_token_only_when_no_attempt_runs(
        statuses in proptest::collection::vec(any_status(), 0..4),
        created in proptest::collection::vec(-900i64..0, 4),
    ) {
        let jobs: Vec<Job> = statuses
            .iter()
            .zip(&created)
            .enumerate()
            .map(|(i, (status, c))| {
                job(&format!("j{i}"), Some("c1"), Some("AU00000"), *c, *c, &three(status, None))
            })
            .collect();
        let now = at(0);
        let expected = DuplicatePauseGuard::check(&jobs, Some("AU00000"), None, now);
        let run = drive(ConsentFlow::new(user(), hooli(), None, None), jobs, now, Ok(()), None);
        let result = run.result.unwrap();
        prop_assert_eq!(run.minted == 1, expected == PauseDecision::Proceed);
        prop_assert_eq!(result == ConsentVerdict::Proceed, expected == PauseDecision::Proceed);
    }
}
