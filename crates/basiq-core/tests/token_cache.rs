//! Property tests of the token lifetime policy (`TokenCache`), driven by arbitrary sequences of
//! clock advances, requests, rejections and failing fetches against a simulated `/token`.
//!
//! Basiq's rule: one server token per lifetime (3600 s), cached for global use, never one per
//! request or per user (basiq-api.md §1).

use std::time::Duration;

use basiq_core::policy::token::{
    FetchReason, TokenCache, TokenDecision, TokenLease, TokenPolicy, TokenResponse,
};
use proptest::prelude::*;
use time::OffsetDateTime;

fn t0() -> OffsetDateTime {
    time::macros::datetime!(2026-01-01 00:00 UTC)
}

fn response(n: u64, lifetime_s: u64) -> TokenResponse {
    serde_json::from_value(serde_json::json!({
        "access_token": format!("token-{n}"),
        "token_type": "Bearer",
        "expires_in": lifetime_s,
    }))
    .expect("valid token response")
}

#[derive(Debug, Clone)]
enum Event {
    /// Move the clock forward.
    Advance(u64),
    /// A request needs a token.
    Request,
    /// Basiq rejects the most recently handed-out token (401 / 403 access-denied).
    RejectLatest,
    /// Basiq rejects the i-th handed-out token (often an older one, from a slow request).
    RejectOld(usize),
    /// `/token` starts / stops failing.
    FetchFails(bool),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (0u64..400).prop_map(Event::Advance),
        6 => Just(Event::Request),
        1 => Just(Event::RejectLatest),
        1 => (0usize..64).prop_map(Event::RejectOld),
        1 => any::<bool>().prop_map(Event::FetchFails),
    ]
}

#[derive(Debug, Default)]
struct Sim {
    handed_out: Vec<TokenLease>,
    /// Successful fetches not caused by a rejection.
    scheduled_fetches: u64,
    /// Successful fetches caused by a rejection.
    rejection_fetches: u64,
    /// Rejections that hit the current token.
    effective_rejections: u64,
}

fn run(
    policy: TokenPolicy,
    lifetime_s: u64,
    jitter: f64,
    events: &[Event],
) -> Result<(Sim, OffsetDateTime), TestCaseError> {
    let mut cache = TokenCache::new(policy);
    let mut sim = Sim::default();
    let mut now = t0();
    let mut fetch_fails = false;
    let mut minted = 0;
    // Our model of the cache: the generation of the last stored token, and whether a
    // rejection has cleared it since.
    let mut latest_gen: Option<u64> = None;
    let mut cleared = false;
    for event in events {
        match event {
            Event::Advance(s) => now += time::Duration::seconds(*s as i64),
            Event::FetchFails(f) => fetch_fails = *f,
            Event::Request => match cache.decide(now) {
                TokenDecision::Use(lease) => {
                    prop_assert!(now < lease.expires_at, "handed out an expired token");
                    sim.handed_out.push(lease);
                }
                TokenDecision::Fetch(reason) => {
                    if fetch_fails {
                        // Keep serving a still-valid token when the refresh fails.
                        if let Some(lease) = cache.still_valid(now) {
                            prop_assert!(
                                now < lease.expires_at,
                                "still_valid returned an expired token"
                            );
                            sim.handed_out.push(lease);
                        }
                    } else {
                        minted += 1;
                        let lease = cache.store(&response(minted, lifetime_s), now, jitter);
                        prop_assert!(now < lease.expires_at);
                        latest_gen = Some(lease.generation());
                        cleared = false;
                        if reason == FetchReason::Rejected {
                            sim.rejection_fetches += 1;
                        } else {
                            sim.scheduled_fetches += 1;
                        }
                        sim.handed_out.push(lease);
                    }
                }
            },
            Event::RejectLatest | Event::RejectOld(_) => {
                let lease = match event {
                    Event::RejectOld(i) => sim.handed_out.get(*i).cloned(),
                    _ => sim.handed_out.last().cloned(),
                };
                let Some(lease) = lease else { continue };
                let before = cache.still_valid(now).map(|l| l.generation());
                let is_current = !cleared && latest_gen == Some(lease.generation());
                let refetch = cache.reject(&lease);
                if is_current {
                    prop_assert!(refetch, "rejecting the cached token must ask for a new one");
                    prop_assert!(cache.still_valid(now).is_none());
                    cleared = true;
                    sim.effective_rejections += 1;
                } else if !cleared && latest_gen.is_some() {
                    // A rejection of an older lease never discards a newer token.
                    prop_assert!(!refetch, "rejecting an old lease asked for a refetch");
                    prop_assert_eq!(cache.still_valid(now).map(|l| l.generation()), before);
                }
            }
        }
    }
    Ok((sim, now))
}

fn bound(policy: TokenPolicy, lifetime_s: u64, elapsed: Duration) -> u64 {
    let lifetime = Duration::from_secs(lifetime_s);
    let spacing = lifetime - policy.margin_for(lifetime);
    (elapsed.as_nanos() / spacing.as_nanos()) as u64 + 1
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_expired_and_at_most_one_fetch_per_lifetime(
        refresh_ahead_s in 0u64..120,
        lifetime_s in 1u64..1_000,
        jitter in proptest::num::f64::ANY,
        events in proptest::collection::vec(event(), 0..300),
    ) {
        let policy = TokenPolicy::new(Duration::from_secs(refresh_ahead_s));
        let (sim, now) = run(policy, lifetime_s, jitter, &events)?;
        let elapsed = (now - t0()).unsigned_abs();
        // Fetches caused by a rejection are extra; every other fetch is at least
        // (lifetime - max margin) after the previous one.
        prop_assert!(
            sim.scheduled_fetches <= bound(policy, lifetime_s, elapsed),
            "{} scheduled fetches in {:?} (lifetime {} s)", sim.scheduled_fetches, elapsed, lifetime_s
        );
        prop_assert!(sim.rejection_fetches <= sim.effective_rejections);
    }

    #[test]
    fn zero_margin_fetches_exactly_once_per_lifetime(
        lifetime_s in 1u64..200,
        last_request_s in 0u64..2_000,
        jitter in 0.0f64..=1.0,
    ) {
        // A request every second from t0 to t0 + last_request_s, /token always up.
        let policy = TokenPolicy::new(Duration::ZERO);
        let mut events = vec![Event::Request];
        for _ in 0..last_request_s {
            events.push(Event::Advance(1));
            events.push(Event::Request);
        }
        let (sim, _) = run(policy, lifetime_s, jitter, &events)?;
        prop_assert_eq!(sim.scheduled_fetches, last_request_s / lifetime_s + 1);
        prop_assert_eq!(sim.scheduled_fetches, bound(policy, lifetime_s, Duration::from_secs(last_request_s)));
    }
}

#[test]
fn basiq_lifetime_with_default_policy_refreshes_once_an_hour() {
    let policy = TokenPolicy::default();
    let mut events = vec![Event::Request];
    for _ in 0..(24 * 60) {
        events.push(Event::Advance(60));
        events.push(Event::Request);
    }
    let (sim, _) = run(policy, 3600, 0.5, &events).expect("invariants hold");
    // One day of one request per minute: 25 tokens at most (24 refreshes + the first).
    assert!(sim.scheduled_fetches <= 25, "{}", sim.scheduled_fetches);
    assert!(sim.scheduled_fetches >= 24);
}
