use super::*;
use crate::policy::connectors::ConnectionMethod;
use crate::test_support::{any_status, at, job, t0, three};
use proptest::prelude::*;

fn mfa_job() -> Job {
    job(
        "j1",
        Some("c1"),
        Some("AU00000"),
        0,
        5,
        &[
            ("verify-credentials", "success", None),
            ("mfa-challenge", "in-progress", None),
            ("retrieve-accounts", "pending", None),
            ("retrieve-transactions", "pending", None),
        ],
    )
}

#[test]
fn steps_are_found_by_title_not_index() {
    let job = mfa_job();
    // Index 1 is the MFA step: an SDK reading steps[1] as "accounts" would be wrong.
    let accounts = job.step(StepTitle::RetrieveAccounts).unwrap();
    assert_eq!(accounts.status, StepStatus::Pending);
    assert_eq!(
        job.step(StepTitle::MfaChallenge).unwrap().status,
        StepStatus::InProgress
    );
    assert!(job.step(StepTitle::CreateReport).is_none());
}

#[test]
fn ids_come_from_links_source() {
    let job = mfa_job();
    assert_eq!(job.connection_id().unwrap().as_str(), "c1");
    assert_eq!(job.user_id().unwrap().as_str(), "u1");
    assert_eq!(job.institution_id(), Some("AU00000"));
    let no_source = crate::test_support::job("j2", None, None, 0, 0, &three("pending", None));
    assert_eq!(no_source.connection_id(), None);
    assert_eq!(no_source.user_id(), None);
}

#[test]
fn connection_id_ignores_query_and_refuses_junk() {
    let mut job = mfa_job();
    job.links.as_mut().unwrap().source =
        Some("https://au-api.basiq.io/users/u1/connections/c9/?x=1#f".into());
    assert_eq!(job.connection_id().unwrap().as_str(), "c9");
    job.links.as_mut().unwrap().source =
        Some("https://au-api.basiq.io/users/u1/connections/..".into());
    assert_eq!(job.connection_id(), None);
    job.links.as_mut().unwrap().source = Some("/statements/abc".into());
    assert_eq!(job.connection_id(), None);
}

#[test]
fn state_follows_steps() {
    let j = |v, c| job("j", None, None, 0, 0, &three(v, c)).state();
    assert_eq!(j("pending", None), JobState::Pending);
    assert_eq!(j("in-progress", None), JobState::Running);
    assert_eq!(j("success", None), JobState::Succeeded);
    let JobState::Failed { step, failure } = j("failed", Some("invalid-credentials")) else {
        panic!("should fail")
    };
    assert_eq!(step, StepTitle::VerifyCredentials);
    assert_eq!(failure.code, JobFailureCode::InvalidCredentials);
    assert_eq!(failure.detail.as_deref(), Some("details"));
    assert_eq!(
        job("j", None, None, 0, 0, &[]).state(),
        JobState::Pending,
        "no steps yet"
    );
    assert_eq!(mfa_job().state(), JobState::Running);
}

#[test]
fn every_documented_code_is_known_and_classified() {
    for code in JobFailureCode::DOCUMENTED {
        let parsed = JobFailureCode::from(code);
        assert!(
            !matches!(parsed, JobFailureCode::Other(_)),
            "{code} is documented"
        );
        assert_eq!(parsed.as_str(), code);
        for kind in [JobKind::Create, JobKind::Refresh, JobKind::Unknown] {
            let class = classify(&StepTitle::VerifyCredentials, &parsed, kind);
            // Only codes that say nothing (`unknown-error`, a "failed" `success`) are Unknown.
            if class == FailureClass::Unknown {
                assert!(matches!(code, "unknown-error" | "success"), "{code}");
            }
        }
    }
}

#[test]
fn classification_follows_basiqs_handling_jobs_guide() {
    let v = StepTitle::VerifyCredentials;
    let c = |code: &str, kind| classify(&v, &JobFailureCode::from(code), kind);
    assert_eq!(
        c("invalid-credentials", JobKind::Refresh),
        FailureClass::UserActionRequired(UserAction::ReenterCredentials {
            password_probably_changed: true
        })
    );
    assert_eq!(
        c("invalid-credentials", JobKind::Create),
        FailureClass::UserActionRequired(UserAction::ReenterCredentials {
            password_probably_changed: false
        })
    );
    assert_eq!(
        c(
            "account-not-accessible-requires-user-action",
            JobKind::Refresh
        ),
        FailureClass::UserActionRequired(UserAction::ClearBankPopupOrTerms)
    );
    assert_eq!(
        c("service-unavailable", JobKind::Create),
        FailureClass::ServerManagedRetry {
            every: Duration::from_secs(7200),
            for_up_to: Duration::from_secs(7 * 86400)
        }
    );
    assert_eq!(
        c("service-unavailable", JobKind::Refresh),
        FailureClass::Transient {
            retry_after: Duration::from_secs(600)
        }
    );
    assert_eq!(
        c("bank-statement-invalid", JobKind::Unknown),
        FailureClass::FileProblem
    );
    assert_eq!(
        c("institution-not-found", JobKind::Unknown),
        FailureClass::Permanent
    );
    assert_eq!(
        c("institution-not-available", JobKind::Unknown),
        FailureClass::InstitutionOutage
    );
    assert_eq!(c("brand-new-code", JobKind::Unknown), FailureClass::Unknown);
    assert_eq!(
        classify(
            &StepTitle::MfaChallenge,
            &JobFailureCode::from("mfa-expired"),
            JobKind::Create
        ),
        FailureClass::UserActionRequired(UserAction::CompleteMfa)
    );
}

#[test]
fn actions_read_well() {
    let ctx = ActionContext {
        user_id: Some(UserId::new("u1").unwrap()),
        connection_id: Some(ConnectionId::new("c1").unwrap()),
        job_id: Some(JobId::new("j1").unwrap()),
        institution: Some("AU00000".into()),
    };
    let text = |code: &str, kind| {
        let code = JobFailureCode::from(code);
        let class = classify(&StepTitle::VerifyCredentials, &code, kind);
        recommend(&class, &code, &ctx).to_string()
    };
    assert_eq!(
        text("invalid-credentials", JobKind::Refresh),
        "ask the user to re-enter their bank credentials in the Consent UI (action=update for \
         web, reauthorise for open banking) (connectionId=c1); they have probably changed their \
         password"
    );
    assert_eq!(
        text("service-unavailable", JobKind::Refresh),
        "retry in 10 min"
    );
    assert_eq!(
        text("service-unavailable", JobKind::Create),
        "Basiq retries this job every 2 h for up to 7 d; poll it at long intervals, do not start \
         another"
    );
    assert_eq!(
        text("unknown-error", JobKind::Unknown),
        "contact Basiq support with userId=u1, connectionId=c1, jobId=j1"
    );
    assert_eq!(
        text("institution-disabled", JobKind::Unknown),
        "their end: the institution AU00000 is unavailable; retry when its connector is operational"
    );
    assert!(text("empty-file", JobKind::Unknown).contains("empty-file"));
}

#[test]
fn diagnose_explains_a_failed_job() {
    let failed = job(
        "j1",
        Some("c1"),
        Some("AU00000"),
        0,
        9,
        &three(
            "failed",
            Some("account-not-accessible-requires-user-action"),
        ),
    );
    let d = failed.diagnose(JobKind::Refresh).unwrap();
    assert_eq!(d.step, StepTitle::VerifyCredentials);
    assert_eq!(
        d.action,
        RecommendedAction::ClearBankPopupOrTerms {
            connection_id: Some(ConnectionId::new("c1").unwrap())
        }
    );
    assert!(mfa_job().diagnose(JobKind::Refresh).is_none());
}

// --- poller ----------------------------------------------------------------------------------

#[test]
fn poller_backs_off_and_reports_step_events() {
    let mut p = JobPoller::new(t0(), PollConfig::default());
    let running = job("j", None, None, 0, 0, &three("in-progress", None));
    assert_eq!(
        p.observe(&running, at(0)),
        PollStep::Wait(Duration::from_secs(1))
    );
    assert_eq!(p.events().len(), 3, "every step is reported the first time");
    assert_eq!(
        p.observe(&running, at(1)),
        PollStep::Wait(Duration::from_millis(1500))
    );
    assert!(p.events().is_empty());
    assert_eq!(
        p.observe(&running, at(3)),
        PollStep::Wait(Duration::from_millis(2250))
    );
    let failed = job(
        "j",
        None,
        None,
        0,
        0,
        &three("failed", Some("invalid-credentials")),
    );
    let PollStep::Done(JobOutcome::Failed { step, .. }) = p.observe(&failed, at(5)) else {
        panic!("done")
    };
    assert_eq!(step, StepTitle::VerifyCredentials);
    assert_eq!(
        p.events(),
        &[StepEvent {
            title: StepTitle::VerifyCredentials,
            from: Some(StepStatus::InProgress),
            to: StepStatus::Failed
        }]
    );
}

#[test]
fn poller_caps_waits_and_stops_at_the_deadline() {
    let config = PollConfig {
        deadline: Duration::from_secs(60),
        ..PollConfig::default()
    };
    let mut p = JobPoller::new(t0(), config);
    let running = job("j", None, None, 0, 0, &three("in-progress", None));
    let mut now = t0();
    let mut waits = Vec::new();
    loop {
        match p.observe(&running, now) {
            PollStep::Wait(d) => {
                waits.push(d);
                now += d;
            }
            PollStep::TimedOut => break,
            PollStep::Done(_) | PollStep::MfaRequired(_) => panic!("never done"),
        }
    }
    assert_eq!(now, at(60), "the last wait ends exactly at the deadline");
    assert!(waits.iter().all(|d| *d <= Duration::from_secs(10)));
    assert!(waits.contains(&Duration::from_secs(10)));
}

#[test]
fn poller_reports_success_even_late() {
    let mut p = JobPoller::new(t0(), PollConfig::default());
    let done = job("j", None, None, 0, 0, &three("success", None));
    assert_eq!(
        p.observe(&done, at(3600)),
        PollStep::Done(JobOutcome::Succeeded)
    );
}

// --- MFA -------------------------------------------------------------------------------------

/// `mfa_job` with the challenge Basiq attaches to the in-progress `mfa-challenge` step.
fn challenged(result: serde_json::Value) -> Job {
    let mut value = serde_json::to_value(mfa_job()).unwrap();
    value["steps"][1]["result"] = result;
    serde_json::from_value(value).unwrap()
}

fn two_questions() -> serde_json::Value {
    serde_json::json!({
        "type": "mfa", "method": "security-questions",
        "description": "Answer your security questions",
        "input": ["Company?", "Institution id?"], "expiryMs": 300000,
        "links": {"response": "https://au-api.basiq.io/jobs/j1/mfa"}
    })
}

#[test]
fn mfa_challenge_is_read_from_the_in_progress_step() {
    let job = challenged(two_questions());
    let challenge = job.mfa_challenge().expect("a challenge is waiting");
    assert_eq!(challenge.job_id.as_str(), "j1");
    assert_eq!(challenge.method, MfaMethod::SecurityQuestions);
    assert_eq!(
        challenge.description.as_deref(),
        Some("Answer your security questions")
    );
    assert_eq!(challenge.prompts, ["Company?", "Institution id?"]);
    // `updated` (t0 + 5 s) + expiryMs (300 s).
    assert_eq!(challenge.expires_at, Some(at(305)));
    assert_eq!(challenge.time_left(at(5)), Some(Duration::from_secs(300)));
    assert_eq!(challenge.time_left(at(400)), Some(Duration::ZERO));
    // An unknown method is kept, not an error.
    let mut odd = two_questions();
    odd["method"] = serde_json::json!("push-notification");
    odd.as_object_mut().unwrap().remove("expiryMs");
    let challenge = challenged(odd).mfa_challenge().unwrap();
    assert_eq!(
        challenge.method,
        MfaMethod::Other("push-notification".into())
    );
    assert_eq!(challenge.expires_at, None);
}

#[test]
fn no_challenge_unless_the_step_waits_with_one() {
    // In progress but nothing attached yet.
    assert_eq!(mfa_job().mfa_challenge(), None);
    // Answered (success) or failed (wrong answer): nothing to answer any more.
    for status in ["success", "failed", "pending"] {
        let mut value = serde_json::to_value(challenged(two_questions())).unwrap();
        value["steps"][1]["status"] = serde_json::json!(status);
        let job: Job = serde_json::from_value(value).unwrap();
        assert_eq!(job.mfa_challenge(), None, "{status}");
    }
    // A failure result on the step is not a challenge.
    let failure = serde_json::json!({"code": "invalid-credentials", "title": "wrong"});
    assert_eq!(challenged(failure).mfa_challenge(), None);
    // No MFA step at all.
    assert_eq!(
        job("j", None, None, 0, 0, &three("in-progress", None)).mfa_challenge(),
        None
    );
}

#[test]
fn poller_stops_at_a_waiting_challenge_instead_of_polling_to_the_deadline() {
    let mut p = JobPoller::new(t0(), PollConfig::default());
    // Verification still running: keep waiting.
    let verifying = job("j1", None, None, 0, 0, &three("in-progress", None));
    assert!(matches!(p.observe(&verifying, at(0)), PollStep::Wait(_)));
    // The challenge is up: stop at once, long before the deadline.
    let PollStep::MfaRequired(challenge) = p.observe(&challenged(two_questions()), at(1)) else {
        panic!("expected MfaRequired")
    };
    assert_eq!(challenge.prompts.len(), 2);
    assert!(p
        .events()
        .iter()
        .any(|e| e.title == StepTitle::MfaChallenge && e.to == StepStatus::InProgress));
    // The same poller (or a new one, after answering) goes on once the step moved on.
    let mut answered = serde_json::to_value(challenged(two_questions())).unwrap();
    answered["steps"][1] = serde_json::json!({"title": "mfa-challenge", "status": "success"});
    answered["steps"][2]["status"] = serde_json::json!("in-progress");
    let answered: Job = serde_json::from_value(answered).unwrap();
    assert!(matches!(p.observe(&answered, at(2)), PollStep::Wait(_)));
}

// --- triage ----------------------------------------------------------------------------------

#[test]
fn triage_drops_failures_fixed_by_a_later_success() {
    let jobs = [
        job(
            "j1",
            Some("c1"),
            Some("AU1"),
            0,
            10,
            &three("failed", Some("service-unavailable")),
        ),
        job(
            "j2",
            Some("c1"),
            Some("AU1"),
            100,
            110,
            &three("success", None),
        ),
        job(
            "j3",
            Some("c2"),
            Some("AU2"),
            0,
            10,
            &three("success", None),
        ),
        job(
            "j4",
            Some("c2"),
            Some("AU2"),
            200,
            210,
            &three("failed", Some("invalid-credentials")),
        ),
    ];
    let out = triage_user(&jobs, &[], at(1000));
    assert_eq!(out.len(), 1);
    let f = &out[0];
    assert_eq!(f.job_id.as_str(), "j4");
    assert_eq!(f.connection_id.as_ref().unwrap().as_str(), "c2");
    assert_eq!(f.user_id.as_ref().unwrap().as_str(), "u1");
    // A failure after a success on the same connection is a refresh: password changed.
    assert_eq!(
        f.class,
        FailureClass::UserActionRequired(UserAction::ReenterCredentials {
            password_probably_changed: true
        })
    );
    assert_eq!(f.retry_at, None);
}

#[test]
fn triage_uses_times_not_list_order() {
    // Basiq lists newest first; the success (older) must not hide the newer failure.
    let jobs = [
        job(
            "new",
            Some("c1"),
            Some("AU1"),
            500,
            510,
            &three("failed", Some("system-unavailable")),
        ),
        job(
            "old",
            Some("c1"),
            Some("AU1"),
            0,
            10,
            &three("success", None),
        ),
    ];
    let out = triage_user(&jobs, &[], at(520));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].job_id.as_str(), "new");
    assert_eq!(out[0].retry_at, Some(at(510 + 600)));
    assert_eq!(
        out[0].action,
        RecommendedAction::RetryAfter(TRANSIENT_RETRY_AFTER)
    );
}

#[test]
fn triage_marks_outages_as_their_end() {
    let jobs = [job(
        "j1",
        Some("c1"),
        Some("AU1"),
        0,
        10,
        &three("failed", Some("service-unavailable")),
    )];
    let connectors = [
        ConnectorStatusView::new("AU1", ConnectorStatus::MajorOutage)
            .with_method(ConnectionMethod::Web),
    ];
    let out = triage_user(&jobs, &connectors, at(20));
    assert_eq!(out[0].class, FailureClass::InstitutionOutage);
    assert!(out[0].action.to_string().starts_with("their end"));
    // Under maintenance is not an outage: the normal advice stands.
    let connectors = [ConnectorStatusView::new(
        "AU1",
        ConnectorStatus::UnderMaintenance,
    )];
    let out = triage_user(&jobs, &connectors, at(20));
    assert!(matches!(out[0].class, FailureClass::Transient { .. }));
    // A user-action failure stays a user action even during an outage.
    let jobs = [job(
        "j1",
        Some("c1"),
        Some("AU1"),
        0,
        10,
        &three("failed", Some("invalid-credentials")),
    )];
    let connectors = [ConnectorStatusView::new(
        "AU1",
        ConnectorStatus::PartialOutage,
    )];
    let out = triage_user(&jobs, &connectors, at(20));
    assert!(matches!(out[0].class, FailureClass::UserActionRequired(_)));
}

#[test]
fn triage_escalates_repeated_transient_failures_and_sees_retries() {
    let fail = |id, t| {
        job(
            id,
            Some("c1"),
            Some("AU1"),
            t,
            t + 5,
            &three("failed", Some("connector-error")),
        )
    };
    let jobs = [
        fail("a", 0),
        fail("b", 1000),
        fail("c", 2000),
        job(
            "d",
            Some("c1"),
            Some("AU1"),
            3000,
            3000,
            &three("in-progress", None),
        ),
    ];
    let out = triage_user(&jobs, &[], at(3001));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].job_id.as_str(), "c");
    assert_eq!(out[0].consecutive_failures, 3);
    assert_eq!(out[0].retry_in_progress.as_ref().unwrap().as_str(), "d");
    assert!(matches!(
        out[0].action,
        RecommendedAction::ContactSupport { .. }
    ));
}

#[test]
fn triage_without_connection_id_uses_the_institution() {
    let jobs = [
        job(
            "a",
            None,
            Some("AU1"),
            0,
            5,
            &three("failed", Some("invalid-credentials")),
        ),
        job(
            "b",
            Some("c7"),
            Some("AU1"),
            100,
            105,
            &three("success", None),
        ),
        job(
            "c",
            None,
            Some("AU2"),
            0,
            5,
            &three("failed", Some("empty-file")),
        ),
    ];
    let out = triage_user(&jobs, &[], at(200));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].job_id.as_str(), "c");
    assert_eq!(out[0].class, FailureClass::FileProblem);
}

// --- properties ------------------------------------------------------------------------------

proptest! {
    #[test]
    fn classify_never_panics(code in ".*", step in ".*") {
        for kind in [JobKind::Create, JobKind::Refresh, JobKind::Unknown] {
            let code = JobFailureCode::from(code.as_str());
            let class = classify(&StepTitle::from(step.as_str()), &code, kind);
            let action = recommend(&class, &code, &ActionContext::default());
            let _ = action.to_string();
        }
    }

    #[test]
    fn unknown_codes_are_unknown_outside_mfa(code in "[a-z-]{0,30}") {
        prop_assume!(!JobFailureCode::DOCUMENTED.contains(&code.as_str()));
        let class = classify(&StepTitle::RetrieveAccounts, &JobFailureCode::from(code.as_str()), JobKind::Unknown);
        prop_assert_eq!(class, FailureClass::Unknown);
    }

    #[test]
    fn source_parsing_never_panics(source in ".*") {
        let mut j = job("j", None, None, 0, 0, &[]);
        j.links.as_mut().unwrap().source = Some(source);
        let _ = (j.connection_id(), j.user_id());
    }

    #[test]
    fn state_is_done_iff_all_success_or_any_failed(
        statuses in proptest::collection::vec(any_status(), 0..6)
    ) {
        let titles = ["verify-credentials", "mfa-challenge", "retrieve-accounts",
            "retrieve-transactions", "retrieve-statements", "create-report"];
        let steps: Vec<_> = statuses.iter().zip(titles)
            .map(|(s, t)| (t, *s, (*s == "failed").then_some("x"))).collect();
        let state = job("j", None, None, 0, 0, &steps).state();
        let any_failed = statuses.contains(&"failed");
        let all_ok = !statuses.is_empty() && statuses.iter().all(|s| *s == "success");
        prop_assert_eq!(state.is_done(), any_failed || all_ok);
    }

    #[test]
    fn poller_never_waits_past_deadline_nor_above_cap(
        first_ms in 0u64..20_000,
        factor in -2.0f64..5.0,
        cap_ms in 1u64..30_000,
        deadline_s in 0u64..600,
        lags in proptest::collection::vec(0u64..20_000, 1..200),
    ) {
        let config = PollConfig {
            first: Duration::from_millis(first_ms),
            factor,
            cap: Duration::from_millis(cap_ms),
            deadline: Duration::from_secs(deadline_s),
        };
        let mut p = JobPoller::new(t0(), config);
        let running = job("j", None, None, 0, 0, &three("in-progress", None));
        let mut now = t0();
        for lag in lags {
            match p.observe(&running, now) {
                PollStep::Wait(d) => {
                    prop_assert!(d <= config.cap.max(MIN_POLL_INTERVAL));
                    prop_assert!(now + d <= p.deadline());
                    // Never a tight loop: at least the floor, unless the deadline is closer.
                    prop_assert!(d >= MIN_POLL_INTERVAL.min(time_util::since(p.deadline(), now)));
                    prop_assert!(d > Duration::ZERO);
                    // The host may observe late (lag), never early.
                    now = now + d + time::Duration::milliseconds(lag as i64);
                }
                PollStep::TimedOut => {
                    prop_assert!(now >= p.deadline());
                    break;
                }
                PollStep::Done(_) | PollStep::MfaRequired(_) => prop_assert!(false, "never done"),
            }
        }
    }

    #[test]
    fn triage_reports_a_connection_iff_its_latest_finished_job_failed(
        events in proptest::collection::vec((0u8..3, any_status(), 0i64..10_000), 0..30)
    ) {
        let jobs: Vec<Job> = events.iter().enumerate().map(|(i, (c, s, t))| {
            let conn = format!("c{c}");
            let steps = [("verify-credentials", *s, (*s == "failed").then_some("service-unavailable"))];
            job(&format!("j{i}"), Some(&conn), Some("AU1"), *t, *t, &steps)
        }).collect();
        let out = triage_user(&jobs, &[], at(20_000));
        for c in 0u8..3 {
            let conn = format!("c{c}");
            // The latest finished job, ties going to success.
            let latest = jobs.iter().filter(|j| j.connection_id().unwrap().as_str() == conn)
                .filter(|j| j.state().is_done())
                .max_by_key(|j| (j.last_change(), j.state() == JobState::Succeeded));
            let expected = latest.is_some_and(|j| j.state() != JobState::Succeeded);
            let reported = out.iter().any(|f| f.connection_id.as_ref().unwrap().as_str() == conn);
            prop_assert_eq!(reported, expected, "connection {}", conn);
        }
    }
}

proptest! {
    /// Whatever Basiq sends (any titles, statuses, codes, links), reading, diagnosing, triaging,
    /// pausing and refresh decisions never panic.
    #[test]
    fn arbitrary_jobs_never_panic(
        raw in proptest::collection::vec(
            (".{0,12}", ".{0,12}", proptest::option::of(".{0,20}"), proptest::option::of(".{0,40}"),
             proptest::option::of(".{0,8}"), -100_000i64..100_000),
            0..6),
        now in -100_000i64..100_000,
    ) {
        let jobs: Vec<Job> = raw.iter().enumerate().map(|(i, (title, status, code, source, inst, t))| {
            let mut value = serde_json::json!({
                "id": format!("j{i}"),
                "created": (time::macros::datetime!(2026-01-01 00:00 UTC) + time::Duration::seconds(*t))
                    .format(&time::format_description::well_known::Rfc3339).unwrap(),
                "steps": [{"title": title, "status": status,
                    "result": code.as_ref().map(|c| serde_json::json!({"code": c}))}],
                "links": {"source": source},
            });
            if let Some(inst) = inst {
                value["institution"] = serde_json::json!({"id": inst});
            }
            serde_json::from_value(value).unwrap()
        }).collect();
        let now = at(now);
        for job in &jobs {
            let _ = (job.state(), job.connection_id(), job.user_id(), job.diagnose(JobKind::Refresh));
            if let Some(d) = job.diagnose(JobKind::Unknown) {
                let _ = (d.action.to_string(), d.failure.to_string());
            }
        }
        let connectors = [ConnectorStatusView::new("AU1", ConnectorStatus::MajorOutage)];
        for f in triage_user(&jobs, &connectors, now) {
            let _ = f.action.to_string();
        }
        let _ = crate::policy::pause::DuplicatePauseGuard::check(&jobs, None, None, now);
        let view = crate::policy::refresh::ConnectionView {
            id: ConnectionId::new("c1").unwrap(),
            status: "active".into(),
            method: ConnectionMethod::OpenBanking,
            last_used: Some(now),
            created_date: None,
        };
        let _ = crate::policy::refresh::RefreshPolicy::default()
            .decide(&view, &jobs, &crate::policy::refresh::MemoryLedger::new(), now);
        let mut poller = JobPoller::new(now, PollConfig::default());
        for job in &jobs {
            let _ = poller.observe(job, now);
        }
    }
}
