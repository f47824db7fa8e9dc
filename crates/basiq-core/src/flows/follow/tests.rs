use super::*;
use crate::policy::jobs::RecommendedAction;
use proptest::prelude::*;

fn t0() -> OffsetDateTime {
    time::macros::datetime!(2026-01-05 10:00 UTC)
}

fn job(steps: &[(&str, &str)], code: Option<&str>) -> Job {
    let steps: Vec<serde_json::Value> = steps
        .iter()
        .map(|(title, status)| {
            let result = match (*status, code) {
                ("failed", Some(code)) => serde_json::json!({"type": "error", "code": code}),
                _ => serde_json::Value::Null,
            };
            serde_json::json!({"title": title, "status": status, "result": result})
        })
        .collect();
    serde_json::from_value(serde_json::json!({
        "type": "job", "id": "j1", "institution": {"id": "AU00000"},
        "steps": steps,
        "links": {"source": "https://au-api.basiq.io/users/u1/connections/c1"},
    }))
    .unwrap()
}

fn follow() -> JobFollow {
    JobFollow::new(
        JobId::new("j1").unwrap(),
        JobKind::Create,
        PollConfig::new(),
        t0(),
    )
}

/// Drives `follow` over canned snapshots (the last one repeats), a virtual clock and
/// `connectors`; returns every event and the number of fetches.
fn drive(
    mut follow: JobFollow,
    snapshots: &[Job],
    connectors: Result<ConnectorList, Error>,
) -> (Vec<JobProgress>, usize) {
    let mut now = t0();
    let mut fetches = 0;
    let mut events = Vec::new();
    let mut connectors = Some(connectors);
    loop {
        match follow.next_step() {
            FollowStep::Fetch(op) => {
                assert_eq!(op.job_id.as_str(), "j1");
                let snapshot = snapshots[fetches.min(snapshots.len() - 1)].clone();
                fetches += 1;
                follow.on_job(Ok(snapshot), now).unwrap();
            }
            FollowStep::Sleep(d) => {
                now += d;
                follow.slept(d);
            }
            FollowStep::Connectors(_) => follow.on_connectors(connectors.take().unwrap()),
            FollowStep::Progress(event) => events.push(event),
            FollowStep::Done => return (events, fetches),
        }
        assert!(fetches < 10_000, "runaway follow");
    }
}

fn connectors(status: &str) -> ConnectorList {
    serde_json::from_value(serde_json::json!({"data": [
        {"id": "AU00000", "method": "web", "status": status}
    ]}))
    .unwrap()
}

#[test]
fn step_events_arrive_in_order_while_the_job_runs_then_the_report() {
    let snapshots = [
        job(
            &[
                ("verify-credentials", "in-progress"),
                ("retrieve-accounts", "pending"),
            ],
            None,
        ),
        job(
            &[
                ("verify-credentials", "success"),
                ("retrieve-accounts", "in-progress"),
            ],
            None,
        ),
        job(
            &[
                ("verify-credentials", "success"),
                ("retrieve-accounts", "success"),
            ],
            None,
        ),
    ];
    let (events, fetches) = drive(follow(), &snapshots, Ok(connectors("operational")));
    assert_eq!(fetches, 3);
    let names: Vec<String> = events
        .iter()
        .map(|e| match e {
            JobProgress::StepStarted { title } => format!("started {title}"),
            JobProgress::StepSucceeded { title } => format!("succeeded {title}"),
            JobProgress::Finished(r) => format!("finished {:?}", r.outcome),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        [
            "started verify-credentials",
            "succeeded verify-credentials",
            "started retrieve-accounts",
            "succeeded retrieve-accounts",
            "finished Succeeded"
        ]
    );
    let report = events.last().unwrap().report().unwrap();
    assert_eq!(report.polls, 3);
    assert_eq!(
        report.context.user_id.as_ref().map(UserId::as_str),
        Some("u1")
    );
    assert_eq!(
        report.events.len(),
        5,
        "the first sight of the pending step too"
    );
}

#[test]
fn a_failure_during_an_outage_is_their_end_and_without_connectors_by_its_code() {
    let failed = [job(
        &[("verify-credentials", "failed")],
        Some("service-unavailable"),
    )];
    let (events, _) = drive(follow(), &failed, Ok(connectors("major-outage")));
    assert!(matches!(&events[0], JobProgress::StepFailed { failure, .. }
        if failure.code.as_str() == "service-unavailable"));
    let d = events
        .last()
        .unwrap()
        .report()
        .unwrap()
        .diagnosis()
        .unwrap()
        .clone();
    assert_eq!(d.class, FailureClass::InstitutionOutage);
    assert!(matches!(
        d.action,
        RecommendedAction::WaitForConnector { .. }
    ));

    let (events, _) = drive(follow(), &failed, Ok(connectors("operational")));
    let d = events
        .last()
        .unwrap()
        .report()
        .unwrap()
        .diagnosis()
        .unwrap()
        .clone();
    assert!(
        matches!(d.class, FailureClass::ServerManagedRetry { .. }),
        "{d:?}"
    );

    let unreadable = Err(Error::invalid_input("connectors down"));
    let (events, _) = drive(follow(), &failed, unreadable);
    let d = events
        .last()
        .unwrap()
        .report()
        .unwrap()
        .diagnosis()
        .unwrap()
        .clone();
    assert!(
        matches!(d.class, FailureClass::ServerManagedRetry { .. }),
        "{d:?}"
    );
}

#[test]
fn an_mfa_challenge_stops_the_follow_with_an_event() {
    let mfa = serde_json::from_value::<Job>(serde_json::json!({
        "id": "j1",
        "steps": [
            {"title": "verify-credentials", "status": "success"},
            {"title": "mfa-challenge", "status": "in-progress",
             "result": {"type": "mfa", "method": "token", "input": ["OTP"]}},
        ],
    }))
    .unwrap();
    let (events, fetches) = drive(follow(), &[mfa], Ok(connectors("operational")));
    assert_eq!(fetches, 1);
    let n = events.len();
    assert!(matches!(&events[n - 2], JobProgress::MfaRequired(c) if c.prompts == ["OTP"]));
    assert!(events[n - 1].report().unwrap().mfa_challenge().is_some());
}

#[test]
fn a_failed_fetch_ends_the_follow_with_the_job_id() {
    let mut follow = follow();
    assert!(matches!(follow.next_step(), FollowStep::Fetch(_)));
    let limit = Error::PageLimit {
        pages: 1,
        items: 1,
        context: ErrorContext::new(),
    };
    let err = follow.on_job(Err(limit), t0()).unwrap_err();
    assert!(err.to_string().contains("jobId=j1"), "{err}");
    assert!(matches!(follow.next_step(), FollowStep::Done));
    assert!(follow.is_done());
}

fn status() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("pending"),
        Just("in-progress"),
        Just("success"),
        Just("failed")
    ]
}

proptest! {
    /// Whatever the job does, the follow ends with exactly one `Finished`, as the last event,
    /// within the deadline's worth of fetches, and its waits stay between the poller's bounds.
    #[test]
    fn every_follow_ends_with_one_report(
        seq in proptest::collection::vec((status(), status()), 1..40),
    ) {
        let snapshots: Vec<Job> = seq
            .iter()
            .map(|(a, b)| job(&[("verify-credentials", a), ("retrieve-accounts", b)], Some("invalid-credentials")))
            .collect();
        let (events, fetches) = drive(follow(), &snapshots, Ok(connectors("operational")));
        let finished = events.iter().filter(|e| e.report().is_some()).count();
        prop_assert_eq!(finished, 1);
        prop_assert!(events.last().unwrap().report().is_some());
        // 5 minutes at ≥ 250 ms a poll, plus the first.
        prop_assert!(fetches <= 5 * 60 * 4 + 1, "{fetches}");
        let report = events.last().unwrap().report().unwrap();
        prop_assert!(report.waited <= PollConfig::new().deadline);
    }
}
