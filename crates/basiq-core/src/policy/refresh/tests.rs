use super::*;
use crate::test_support::{any_status, at, job, t0, three};
use proptest::prelude::*;

fn conn(status: &str, method: &str, last_used: Option<i64>) -> ConnectionView {
    ConnectionView {
        id: ConnectionId::new("c1").unwrap(),
        status: ConnectionStatus::from(status),
        method: ConnectionMethod::from(method),
        last_used: last_used.map(at),
        created_date: None,
    }
}

#[test]
fn the_job_that_created_the_connection_is_not_a_refresh() {
    // Connected today at t0: the connect job must not take one of the day's 20 refreshes.
    let created = at(0);
    let mut view = conn("active", "open-banking", None);
    view.created_date = Some(created);
    let done = three("success", None);
    let mk = |id: &str, t: i64| job(id, Some("c1"), None, t, t + 13, &done);
    let mut jobs = vec![mk("connect", 0)];
    for i in 1..20 {
        jobs.push(mk(&format!("r{i}"), i * 120));
    }
    let policy = RefreshPolicy::default().with_min_interval(Duration::ZERO);
    let now = at(20 * 120 + 30);
    let ledger = MemoryLedger::new();
    // 19 refreshes so far today: the 20th is allowed.
    assert_eq!(
        policy.decide(&view, &jobs, &ledger, now),
        RefreshDecision::Allowed
    );
    jobs.push(mk("r20", 20 * 120));
    assert!(matches!(
        policy.decide(&view, &jobs, &ledger, at(21 * 120)),
        RefreshDecision::Skip(SkipReason::DailyQuotaExhausted { .. })
    ));
    // Without a createdDate every job counts (the conservative reading).
    view.created_date = None;
    jobs.pop();
    assert!(matches!(
        policy.decide(&view, &jobs, &ledger, now),
        RefreshDecision::Skip(SkipReason::DailyQuotaExhausted { .. })
    ));
}

const DAY: i64 = 86_400;

#[test]
fn view_from_the_generated_connection_model() {
    let connection: models::Connection = serde_json::from_str(
        r#"{"type":"connection","id":"c1","status":"invalid","method":"openbanking",
            "createdDate":"2025-12-01T00:00:00Z","lastUsed":"2026-01-01T10:00:00Z",
            "expiryDate":"","institution":{"type":"institution","id":"AU00000"}}"#,
    )
    .unwrap();
    let view = ConnectionView::from(&connection);
    assert_eq!(view.id.as_str(), "c1");
    assert_eq!(view.status, ConnectionStatus::Invalid);
    assert_eq!(view.method, ConnectionMethod::OpenBanking);
    assert_eq!(view.last_used, Some(at(10 * 3600)));
    // The same JSON read straight into the view agrees with the conversion.
    let direct: ConnectionView =
        serde_json::from_str(&serde_json::to_string(&connection).unwrap()).unwrap();
    assert_eq!(direct, view);
    // And the policy refuses it for the same reason either way.
    let ledger = MemoryLedger::new();
    let decision = RefreshPolicy::default().decide(&view, &[], &ledger, at(30 * DAY));
    assert!(
        matches!(decision, RefreshDecision::Skip(SkipReason::Inactive(_))),
        "{decision:?}"
    );
    assert_eq!(
        decision,
        RefreshPolicy::default().decide(&direct, &[], &ledger, at(30 * DAY))
    );
}

#[test]
fn view_deserializes_basiq_connection_json() {
    let view: ConnectionView = serde_json::from_str(
        r#"{"type":"connection","id":"c1","status":"active","method":"open-banking",
            "lastUsed":"2026-01-01T10:00:00Z","expiryDate":"","institution":{"id":"AU00000"}}"#,
    )
    .unwrap();
    assert_eq!(view.method, ConnectionMethod::OpenBanking);
    assert_eq!(view.status, ConnectionStatus::Active);
    assert_eq!(view.last_used, Some(at(10 * 3600)));
    let init: ConnectionView =
        serde_json::from_str(r#"{"id":"c1","status":"init","method":"openbanking"}"#).unwrap();
    assert_eq!(init.status, ConnectionStatus::Init);
    assert_eq!(init.last_used, None);
}

#[test]
fn only_active_refreshable_connections() {
    let policy = RefreshPolicy::default();
    let ledger = MemoryLedger::new();
    for status in [
        "pending",
        "invalid",
        "pre-init",
        "init",
        "deleted",
        "new-thing",
    ] {
        assert_eq!(
            policy.decide(&conn(status, "web", None), &[], &ledger, t0()),
            RefreshDecision::Skip(SkipReason::Inactive(ConnectionStatus::from(status)))
        );
    }
    assert_eq!(
        policy.decide(&conn("active", "pdf", None), &[], &ledger, t0()),
        RefreshDecision::Skip(SkipReason::NotRefreshable(ConnectionMethod::Pdf))
    );
    assert_eq!(
        policy.decide(&conn("active", "web", None), &[], &ledger, t0()),
        RefreshDecision::Allowed
    );
}

#[test]
fn running_job_means_follow_it() {
    let jobs = [
        job("other", Some("c2"), None, 0, 0, &three("in-progress", None)),
        job("mine", Some("c1"), None, 0, 0, &three("in-progress", None)),
    ];
    assert_eq!(
        RefreshPolicy::default().decide(
            &conn("active", "web", None),
            &jobs,
            &MemoryLedger::new(),
            at(5)
        ),
        RefreshDecision::Skip(SkipReason::InProgress(JobId::new("mine").unwrap()))
    );
}

#[test]
fn last_refresh_is_max_of_last_used_and_latest_successful_job() {
    let policy = RefreshPolicy::default();
    let jobs = [
        job("ok", Some("c1"), None, 0, 3600, &three("success", None)),
        job(
            "bad",
            Some("c1"),
            None,
            7200,
            7300,
            &three("failed", Some("service-unavailable")),
        ),
    ];
    let c = conn("active", "web", Some(60));
    assert_eq!(RefreshPolicy::last_refresh(&c, &jobs), Some(at(3600)));
    // The failed job (10 min ago at most) blocks first, then the interval.
    assert!(matches!(
        policy.decide(&c, &jobs, &MemoryLedger::new(), at(7400)),
        RefreshDecision::Skip(SkipReason::LastAttemptFailed { .. })
    ));
    assert_eq!(
        policy.decide(&c, &jobs, &MemoryLedger::new(), at(8000)),
        RefreshDecision::Skip(SkipReason::RecentlyRefreshed {
            last: at(3600),
            next_allowed: at(3600 + DAY),
        })
    );
    assert_eq!(
        policy.decide(&c, &jobs, &MemoryLedger::new(), at(3600 + DAY)),
        RefreshDecision::Allowed
    );
    // lastUsed later than the job wins.
    let c = conn("active", "web", Some(5000));
    assert_eq!(RefreshPolicy::last_refresh(&c, &jobs), Some(at(5000)));
}

#[test]
fn a_failed_last_attempt_blocks_until_fixed_or_aged() {
    use crate::policy::jobs::{FailureClass, UserAction};
    let policy = RefreshPolicy::default().with_min_interval(Duration::ZERO);
    let c = conn("active", "web", None);
    let ledger = MemoryLedger::new();
    // Wrong credentials: never refresh again until the user re-enters them.
    let locked = [
        job("ok", Some("c1"), None, 0, 10, &three("success", None)),
        job(
            "bad",
            Some("c1"),
            None,
            100,
            110,
            &three("failed", Some("invalid-credentials")),
        ),
    ];
    assert_eq!(
        policy.decide(&c, &locked, &ledger, at(30 * DAY)),
        RefreshDecision::Skip(SkipReason::LastAttemptFailed {
            job_id: JobId::new("bad").unwrap(),
            class: FailureClass::UserActionRequired(UserAction::ReenterCredentials {
                password_probably_changed: true
            }),
            retry_at: None,
        })
    );
    // Fixed by a later success (the user went through the Consent UI).
    let fixed = [
        locked[1].clone(),
        job("fixed", Some("c1"), None, 200, 210, &three("success", None)),
    ];
    assert_eq!(
        policy.decide(&c, &fixed, &ledger, at(300)),
        RefreshDecision::Allowed
    );
    // Transient: Basiq's 10 minutes, then allowed.
    let flaky = [job(
        "f",
        Some("c1"),
        None,
        0,
        100,
        &three("failed", Some("service-unavailable")),
    )];
    assert!(matches!(
        policy.decide(&c, &flaky, &ledger, at(699)),
        RefreshDecision::Skip(SkipReason::LastAttemptFailed { retry_at: Some(t), .. }) if t == at(700)
    ));
    assert_eq!(
        policy.decide(&c, &flaky, &ledger, at(700)),
        RefreshDecision::Allowed
    );
}

#[test]
fn open_banking_has_20_refreshes_per_utc_day() {
    let policy = RefreshPolicy::default().with_min_interval(Duration::ZERO);
    let c = conn("active", "openbanking", None);
    let mut ledger = MemoryLedger::new();
    for i in 0..20 {
        assert_eq!(
            policy.decide_and_record(&c, &[], &mut ledger, at(i * 60)),
            RefreshDecision::Allowed
        );
    }
    assert_eq!(
        policy.decide(&c, &[], &ledger, at(3600)),
        RefreshDecision::Skip(SkipReason::DailyQuotaExhausted { resets_at: at(DAY) })
    );
    assert_eq!(
        policy.decide(&c, &[], &ledger, at(DAY)),
        RefreshDecision::Allowed
    );
    // Web connections have no documented daily limit.
    let web = conn("active", "web", None);
    assert_eq!(
        policy.decide(&web, &[], &ledger, at(3600)),
        RefreshDecision::Allowed
    );
    ledger.prune_before(at(DAY).date());
    assert_eq!(ledger.count(&c.id, t0().date()), 0);
}

#[test]
fn todays_jobs_count_against_the_quota_even_without_the_ledger() {
    let policy = RefreshPolicy {
        min_interval: Duration::ZERO,
        open_banking_daily_limit: 2,
    };
    let jobs = [
        job("a", Some("c1"), None, 10, 20, &three("success", None)),
        job("b", Some("c1"), None, 30, 40, &three("success", None)),
    ];
    assert!(matches!(
        policy.decide(
            &conn("active", "open-banking", None),
            &jobs,
            &MemoryLedger::new(),
            at(50)
        ),
        RefreshDecision::Skip(SkipReason::DailyQuotaExhausted { .. })
    ));
}

#[test]
fn refresh_response_maps_200_and_202() {
    let resp = |status: u16, body: &str| {
        http::Response::builder()
            .status(status)
            .body(body.as_bytes().to_vec())
            .unwrap()
    };
    let body = r#"{"type":"job","id":"j1","links":{"self":"/jobs/j1"}}"#;
    assert_eq!(
        RefreshResponse::parse(&resp(200, body)).unwrap(),
        RefreshResponse::AlreadyRunning(JobId::new("j1").unwrap())
    );
    let started = RefreshResponse::parse(&resp(202, body)).unwrap();
    assert_eq!(started, RefreshResponse::Started(JobId::new("j1").unwrap()));
    assert_eq!(started.job_id().as_str(), "j1");
    let err = RefreshResponse::parse(&resp(
        400,
        r#"{"type":"list","data":[{"code":"parameter-not-valid","title":"Connection type is not Web"}]}"#,
    ))
    .unwrap_err();
    assert!(err.to_string().contains("Connection type is not Web"));
    assert!(RefreshResponse::parse(&resp(202, r#"{"id":"../x"}"#)).is_err());
}

#[test]
fn fnv_is_the_reference_fnv1a() {
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
}

#[test]
fn scheduler_spreads_and_overflows() {
    let s = RefreshScheduler::new(Duration::from_secs(60), 2);
    assert_eq!(s.capacity(), 2);
    let ids: Vec<_> = ["a", "b", "c", "a"]
        .iter()
        .map(|i| ConnectionId::new(*i).unwrap())
        .collect();
    let plan = s.schedule(t0(), &ids, 0.0);
    assert_eq!(plan.planned.len(), 2);
    assert_eq!(plan.overflow, vec![ConnectionId::new("c").unwrap()]);
    let times: Vec<_> = plan.planned.iter().map(|p| p.at).collect();
    assert_eq!(times, vec![at(0), at(30)]);
    // Stable: the same candidates get the same plan.
    assert_eq!(s.schedule(t0(), &ids, 0.0), plan);
    assert_eq!(
        RefreshScheduler::new(Duration::from_secs(3600), 0)
            .schedule(t0(), &ids, 0.5)
            .overflow
            .len(),
        3
    );
}

proptest! {
    #[test]
    fn scheduler_respects_cap_window_and_plans_each_once(
        ids in proptest::collection::vec("[a-z0-9]{1,8}", 0..300),
        window_s in 0u64..7200,
        cap in 1u32..40,
        jitter in proptest::num::f64::ANY,
    ) {
        let s = RefreshScheduler::new(Duration::from_secs(window_s), cap);
        let candidates: Vec<_> = ids.iter().map(|i| ConnectionId::new(i.as_str()).unwrap()).collect();
        let plan = s.schedule(t0(), &candidates, jitter);
        let unique: HashSet<_> = candidates.iter().collect();
        // Exactly once: planned ∪ overflow = unique candidates, disjoint.
        let mut all: Vec<_> = plan.planned.iter().map(|p| &p.connection_id).chain(plan.overflow.iter()).collect();
        prop_assert_eq!(all.len(), unique.len());
        all.sort();
        all.dedup();
        prop_assert_eq!(all.len(), unique.len());
        // Overflow only when the window is full at the cap.
        if !plan.overflow.is_empty() {
            prop_assert_eq!(plan.planned.len() as u64, s.capacity());
        }
        let end = t0() + time::Duration::seconds(window_s as i64);
        for (i, p) in plan.planned.iter().enumerate() {
            prop_assert!(p.at >= t0() && p.at < end);
            // Any 60-second span starting at a planned time holds at most `cap`.
            let in_minute = plan.planned[i..].iter()
                .take_while(|q| q.at < p.at + time::Duration::seconds(60)).count();
            prop_assert!(in_minute <= cap as usize, "{} in a minute, cap {}", in_minute, cap);
        }
    }

    #[test]
    fn never_refresh_inactive_never_above_quota_never_while_running(
        steps in proptest::collection::vec((0i64..4_000, any::<bool>()), 1..200),
        status in prop_oneof![Just("active"), Just("invalid"), Just("pending"), Just("pre-init")],
        running in any_status(),
        limit in 0u32..25,
    ) {
        let policy = RefreshPolicy { min_interval: Duration::ZERO, open_banking_daily_limit: limit };
        let c = conn(status, "openbanking", None);
        let jobs = [job("j", Some("c1"), None, -100, -100, &three(running, (running == "failed").then_some("x")))];
        let job_running = !jobs[0].state().is_done();
        let mut ledger = MemoryLedger::new();
        let mut per_day: HashMap<Date, u32> = HashMap::new();
        let mut now = t0();
        for (advance, use_jobs) in steps {
            now += time::Duration::seconds(advance);
            let recent: &[Job] = if use_jobs { &jobs } else { &[] };
            if policy.decide_and_record(&c, recent, &mut ledger, now) == RefreshDecision::Allowed {
                prop_assert_eq!(status, "active");
                prop_assert!(!(use_jobs && job_running));
                let n = per_day.entry(now.date()).or_insert(0);
                *n += 1;
                prop_assert!(*n <= limit);
            }
        }
    }

    #[test]
    fn never_refresh_after_a_credentials_failure(
        jobs in proptest::collection::vec((any_status(), 0i64..10_000, any::<bool>()), 1..8),
        now_s in 0i64..1_000_000,
    ) {
        let jobs: Vec<Job> = jobs.iter().enumerate().map(|(i, (s, t, creds))| {
            let code = (*s == "failed").then_some(if *creds { "invalid-credentials" } else { "system-unavailable" });
            job(&format!("j{i}"), Some("c1"), None, *t, *t, &three(s, code))
        }).collect();
        let latest_done = jobs.iter().filter(|j| j.state().is_done())
            .max_by_key(|j| (j.last_change(), j.state() == JobState::Succeeded));
        let locked = latest_done.is_some_and(|j| matches!(j.state(),
            JobState::Failed { failure, .. } if failure.code.as_str() == "invalid-credentials"));
        let policy = RefreshPolicy::default().with_min_interval(Duration::ZERO);
        let decision = policy.decide(&conn("active", "web", None), &jobs, &MemoryLedger::new(), at(now_s));
        if locked {
            prop_assert_ne!(decision, RefreshDecision::Allowed);
        }
    }

    #[test]
    fn never_within_min_interval_of_the_last_refresh(
        last_used in proptest::option::of(0i64..200_000),
        job_t in 0i64..200_000,
        job_status in any_status(),
        now_s in 0i64..300_000,
        interval_s in 0u64..100_000,
    ) {
        let policy = RefreshPolicy::default().with_min_interval(Duration::from_secs(interval_s));
        let c = conn("active", "web", last_used);
        let jobs = [job("j", Some("c1"), None, job_t, job_t, &three(job_status, (job_status == "failed").then_some("x")))];
        if policy.decide(&c, &jobs, &MemoryLedger::new(), at(now_s)) == RefreshDecision::Allowed {
            if let Some(last) = RefreshPolicy::last_refresh(&c, &jobs) {
                prop_assert!(at(now_s) >= last + time::Duration::seconds(interval_s as i64));
            }
        }
    }
}

/// The plan by definition: the distinct candidates in list order, each at the first free slot
/// from its FNV-1a slot (wrapping), until the window is full; the rest, in list order, overflow.
fn reference_plan(
    s: &RefreshScheduler,
    candidates: &[ConnectionId],
) -> (Vec<(u64, ConnectionId)>, Vec<ConnectionId>) {
    let capacity = s.capacity();
    let mut taken = std::collections::BTreeSet::new();
    let mut seen = HashSet::new();
    let (mut planned, mut overflow) = (Vec::new(), Vec::new());
    for id in candidates {
        if !seen.insert(id) {
            continue;
        }
        if taken.len() as u64 >= capacity {
            overflow.push(id.clone());
            continue;
        }
        let mut slot = fnv1a64(id.as_str().as_bytes()) % capacity;
        while taken.contains(&slot) {
            slot = (slot + 1) % capacity;
        }
        taken.insert(slot);
        planned.push((slot, id.clone()));
    }
    planned.sort();
    (planned, overflow)
}

/// Asserts that `plan` is [`reference_plan`]'s for `candidates`: the same ids at the same times
/// (`slot_time` turns a grid slot into its time), and the same overflow.
fn assert_is_reference_plan(
    s: &RefreshScheduler,
    candidates: &[ConnectionId],
    plan: &RefreshSchedule,
    slot_time: impl Fn(u64) -> OffsetDateTime,
    label: &str,
) {
    let (expected, overflow) = reference_plan(s, candidates);
    let want: Vec<_> = expected
        .into_iter()
        .map(|(slot, id)| (slot_time(slot), id))
        .collect();
    let got: Vec<_> = plan
        .planned
        .iter()
        .map(|p| (p.at, p.connection_id.clone()))
        .collect();
    assert_eq!(got, want, "{label}");
    assert_eq!(plan.overflow, overflow, "{label}");
}

proptest! {
    /// The owned plan is the borrowed plan, and both are the reference plan, whatever the grid
    /// (a window that overflows or is exactly full, one near the list's size, one far larger)
    /// and however many duplicates: the same slots, the same times, the same overflow.
    #[test]
    fn owned_and_borrowed_plans_are_the_reference_plan(
        ids in prop_oneof![
            proptest::collection::vec("[a-z0-9]{1,6}", 0..700),
            proptest::collection::vec("[a-c]{1,3}", 0..400),
        ],
        window_s in prop_oneof![0u64..120, 0u64..600, 600u64..3600, 1_000_000u64..2_000_000],
        cap in 1u32..60,
        jitter in 0.0..1.0f64,
    ) {
        let s = RefreshScheduler::new(Duration::from_secs(window_s), cap);
        let candidates: Vec<_> = ids.iter().map(|i| ConnectionId::new(i.as_str()).unwrap()).collect();
        let plan = s.schedule(t0(), &candidates, jitter);
        prop_assert_eq!(&s.schedule_owned(t0(), candidates.clone(), jitter), &plan);
        let (expected, overflow) = reference_plan(&s, &candidates);
        let spacing = s.spacing().unwrap().as_nanos() as u64;
        let phase = ((jitter * spacing as f64) as u64).min(spacing - 1);
        let got: Vec<_> = plan.planned.iter().map(|p| (p.at, p.connection_id.clone())).collect();
        let want: Vec<_> = expected
            .into_iter()
            .map(|(slot, id)| (t0() + Duration::from_nanos(slot * spacing + phase), id))
            .collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(plan.overflow, overflow);
    }

    /// A window exactly as long as the list at the cap: every slot taken, probes wrapping around
    /// the end of the window.
    #[test]
    fn a_full_window_is_the_reference_plan(
        ids in proptest::collection::vec("[a-z0-9]{1,4}", 1..600),
        cap in 1u32..60,
    ) {
        let candidates: Vec<_> = ids.iter().map(|i| ConnectionId::new(i.as_str()).unwrap()).collect();
        let distinct = candidates.iter().collect::<HashSet<_>>().len() as u32;
        let s = RefreshScheduler::new(Duration::from_nanos(60_000_000_000_u64.div_ceil(u64::from(cap)) * u64::from(distinct)), cap);
        prop_assert_eq!(s.capacity(), u64::from(distinct));
        let plan = s.schedule(t0(), &candidates, 0.0);
        let (expected, overflow) = reference_plan(&s, &candidates);
        prop_assert!(overflow.is_empty());
        let slots: Vec<_> = expected.into_iter().map(|(_, id)| id).collect();
        let got: Vec<_> = plan.planned.into_iter().map(|p| p.connection_id).collect();
        prop_assert_eq!(got, slots);
    }
}

/// The sweep starts just after a quiet slot; when every candidate prefers a slot before it, the
/// keys are read from the first one (a lone candidate in a small window, found by the proptest).
#[test]
fn every_candidate_before_the_sweep_start_is_the_reference_plan() {
    for (window_s, cap) in [(3, 40), (4, 30), (59, 7)] {
        let s = RefreshScheduler::new(Duration::from_secs(window_s), cap);
        for ids in [vec!["a"], vec!["a", "b"], vec!["zz", "a", "zz"]] {
            let candidates: Vec<_> = ids.iter().map(|i| ConnectionId::new(*i).unwrap()).collect();
            let plan = s.schedule(t0(), &candidates, 0.0);
            let spacing = s.spacing().unwrap().as_nanos() as u64;
            assert_is_reference_plan(
                &s,
                &candidates,
                &plan,
                |slot| t0() + Duration::from_nanos(slot * spacing),
                &format!("window {window_s}s, cap {cap}, ids {ids:?}"),
            );
        }
    }
}

/// Three candidates queue for consecutive slots: `a` and `b` prefer slot 5, `c` (listed first)
/// slot 6. Inserted in list order, `c` takes 6, `a` 5 and `b` the next free one, 7: slot 6 goes
/// to `c`, not to `b`, which prefers an earlier slot but is listed later. Placing the queue in
/// slot order (a, b, c at 5, 6, 7) would be wrong.
#[test]
fn an_earlier_listed_candidate_overtakes_a_later_one_in_a_queue() {
    let s = RefreshScheduler::new(Duration::from_secs(50 * 6), 10);
    assert_eq!(s.capacity(), 50);
    let preferring = |slot: u64| {
        (0..)
            .map(|i| format!("conn-{i}"))
            .filter(move |id| fnv1a64(id.as_bytes()) % 50 == slot)
            .map(|id| ConnectionId::new(id).unwrap())
    };
    let mut fives = preferring(5);
    let (a, b) = (fives.next().unwrap(), fives.next().unwrap());
    let c = preferring(6).next().unwrap();
    let plan = s.schedule(t0(), &[c.clone(), a.clone(), b.clone()], 0.0);
    let got: Vec<_> = plan
        .planned
        .iter()
        .map(|p| (p.connection_id.clone(), p.at))
        .collect();
    assert_eq!(got, vec![(a, at(30)), (c, at(36)), (b, at(42))]);
    assert!(plan.overflow.is_empty());
}

/// Thousands of candidates take the radix sort's split by the top bits of the slot, its runs
/// and the duplicate check within them: the plan is still the reference plan, with
/// duplicates, an overflowing window and an exactly full one.
#[test]
fn large_lists_are_the_reference_plan() {
    let ids: Vec<ConnectionId> = (0..6_000u32)
        .map(|i| ConnectionId::new(format!("c{}", i % 5_000)).unwrap())
        .collect();
    for slots in [10_000u64, 5_000, 4_999, 1_234] {
        let s = RefreshScheduler::new(Duration::from_secs(6 * slots), 10);
        assert_eq!(s.capacity(), slots);
        let plan = s.schedule(t0(), &ids, 0.25);
        assert_eq!(s.schedule_owned(t0(), ids.clone(), 0.25), plan);
        let phase = Duration::from_millis(1_500);
        assert_is_reference_plan(
            &s,
            &ids,
            &plan,
            |slot| t0() + Duration::from_secs(6 * slot) + phase,
            &format!("{slots} slots"),
        );
    }
}

#[test]
fn a_connection_without_a_known_method_decodes_and_counts_as_open_banking() {
    // No `method` at all: the generated model and the view both decode it.
    let json = r#"{"type":"connection","id":"c1","status":"active"}"#;
    let connection: models::Connection = serde_json::from_str(json).unwrap();
    assert_eq!(connection.method, None);
    let view = ConnectionView::from(&connection);
    assert_eq!(view.method, ConnectionMethod::Other(String::new()));
    let direct: ConnectionView = serde_json::from_str(json).unwrap();
    assert_eq!(direct, view);
    // A method this SDK does not know is kept verbatim.
    let smart: models::Connection =
        serde_json::from_str(r#"{"id":"c1","status":"active","method":"cdr-v2"}"#).unwrap();
    assert_eq!(
        smart.method,
        Some(ConnectionMethod::Other("cdr-v2".to_owned()))
    );
    // Both are refreshable and limited to 20 a UTC day, like open banking; web is not limited.
    let policy = RefreshPolicy::default().with_min_interval(Duration::ZERO);
    for view in [view, ConnectionView::from(&smart)] {
        let mut ledger = MemoryLedger::new();
        for _ in 0..20 {
            assert_eq!(
                policy.decide_and_record(&view, &[], &mut ledger, at(60)),
                RefreshDecision::Allowed
            );
        }
        assert!(matches!(
            policy.decide(&view, &[], &ledger, at(60)),
            RefreshDecision::Skip(SkipReason::DailyQuotaExhausted { .. })
        ));
    }
    let web = conn("active", "web", None);
    let mut ledger = MemoryLedger::new();
    for _ in 0..25 {
        assert_eq!(
            policy.decide_and_record(&web, &[], &mut ledger, at(60)),
            RefreshDecision::Allowed
        );
    }
}
