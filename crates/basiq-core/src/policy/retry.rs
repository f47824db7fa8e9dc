//! The retry oracle: after a failed attempt, wait how long — or give up, and why.
//!
//! Pure: executors pass the attempt number, what went wrong, whether the operation is safe to
//! repeat, a jitter value and (for the budget) the time. Rules:
//!
//! * idempotent requests are retried on transport errors, 429, 500, 502, 503 and 504 (and the
//!   `/token` throttling 403), with *full-jitter* exponential backoff capped at `cap`
//!   (Basiq: 5xx mean "try again later"; rate limits answer 429 or 403 — basiq-api.md §6);
//! * a `Retry-After` header is honoured (Basiq does not document one; we respect it if sent) up
//!   to `retry_after_cap`; a longer one gives up instead of retrying early, so the caller can
//!   reschedule;
//! * a **non-idempotent** request (creating a user, `POST …/refresh`) is repeated only when it
//!   provably never left ([`TransportErrorKind::Connect`]). After a timeout, a broken connection
//!   or a 5xx it may have been processed: the answer is [`GiveUpReason::ReconcileFirst`] — re-read
//!   the state (list the user's jobs, re-read the connection) instead of repeating it;
//! * a [`RetryBudget`] (token bucket counted in retries) stops a failing Basiq from being hit
//!   with every request's full retry series at once.

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

use crate::error::{Error, ErrorKind, TransportErrorKind};
use crate::time_util;

/// What went wrong with one attempt, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptFailure {
    /// Below HTTP: no answer.
    Transport(TransportErrorKind),
    /// Basiq answered with an error status.
    Status {
        /// The HTTP status.
        status: u16,
        /// Whether the answer means "rate limited" even if the status is not 429 (`/token`'s
        /// 403 "Invalid request").
        rate_limited: bool,
        /// The `Retry-After` header, if any.
        retry_after: Option<Duration>,
    },
    /// An answer arrived but could not be read (a complete body that does not decode). Not
    /// retried: the same request gets the same answer, and each repeat downloads it again.
    Malformed,
    /// Not a failure of the exchange (bad input, bad configuration): repeating cannot help.
    Fatal,
}

impl AttemptFailure {
    /// Describes an SDK error.
    pub fn from_error(error: &Error) -> Self {
        match error {
            Error::Transport { source, .. } => Self::Transport(source.kind),
            Error::Api { error: api, .. } => Self::Status {
                status: api.status.as_u16(),
                rate_limited: error.kind() == ErrorKind::RateLimited,
                retry_after: api.retry_after,
            },
            Error::Decode { .. } => Self::Malformed,
            _ => Self::Fatal,
        }
    }

    /// A status failure without `Retry-After`.
    pub fn status(status: u16) -> Self {
        Self::Status {
            status,
            rate_limited: status == 429,
            retry_after: None,
        }
    }

    fn is_retryable(&self) -> bool {
        match self {
            // An over-size body would be downloaded again just to be refused again.
            Self::Transport(TransportErrorKind::TooLarge) | Self::Malformed => false,
            Self::Transport(_) => true,
            Self::Status {
                status,
                rate_limited,
                ..
            } => *rate_limited || matches!(status, 429 | 500 | 502 | 503 | 504),
            Self::Fatal => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Why not to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// Repeating the same request cannot succeed (4xx, configuration, input).
    NotRetryable,
    /// The attempt limit is reached.
    AttemptsExhausted {
        /// Attempts made.
        attempts: u32,
    },
    /// A non-idempotent request failed ambiguously (timeout, broken connection, 5xx): it may have
    /// been processed. Reconcile — list the user's jobs, re-read the resource — instead.
    ReconcileFirst,
    /// A non-idempotent request was refused (e.g. 429); repeating it automatically is not safe
    /// enough to do blindly — reschedule it.
    NotIdempotent,
    /// The server asked to wait longer than the policy allows.
    RetryAfterTooLong(Duration),
    /// The retry budget is spent: Basiq is struggling, stop adding load.
    BudgetExhausted,
}

impl fmt::Display for GiveUpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotRetryable => f.write_str("the failure is not retryable"),
            Self::AttemptsExhausted { attempts } => write!(f, "gave up after {attempts} attempts"),
            Self::ReconcileFirst => f.write_str(
                "the request may have been processed; re-read the state instead of repeating it",
            ),
            Self::NotIdempotent => f.write_str("the request is not safe to repeat automatically"),
            Self::RetryAfterTooLong(d) => {
                write!(
                    f,
                    "the server asked to wait {} s, longer than allowed",
                    d.as_secs()
                )
            }
            Self::BudgetExhausted => f.write_str("the retry budget is exhausted"),
        }
    }
}

/// The oracle's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Wait this long, then repeat the request.
    RetryAfter(Duration),
    /// Do not repeat it.
    GiveUp(GiveUpReason),
}

/// Sizing of a [`RetryBudget`].
///
/// Fields may be added: build one with [`BudgetConfig::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct BudgetConfig {
    /// Retries available at once.
    pub capacity: u32,
    /// One retry is earned back per this much time.
    pub refill_every: Duration,
}

impl Default for BudgetConfig {
    /// 20 retries, one more per second: a burst of failures is retried, a sustained outage is not
    /// multiplied.
    fn default() -> Self {
        Self {
            capacity: 20,
            refill_every: Duration::from_secs(1),
        }
    }
}

/// When and how often to repeat a failed request.
///
/// Fields may be added: start from [`RetryPolicy::default`] or [`RetryPolicy::never`] and use
/// the setters.
///
/// ```
/// use std::time::Duration;
/// let policy = basiq_core::policy::retry::RetryPolicy::default()
///     .max_attempts(2)
///     .base(Duration::from_millis(200));
/// assert_eq!(policy.max_attempts, 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = never retry).
    pub max_attempts: u32,
    /// The backoff before the first retry (before jitter).
    pub base: Duration,
    /// The longest backoff.
    pub cap: Duration,
    /// The longest `Retry-After` honoured; longer ones give up.
    pub retry_after_cap: Duration,
    /// Sizing of the shared retry budget.
    pub budget: BudgetConfig,
}

impl Default for RetryPolicy {
    /// 4 attempts, 0.5 s base, 20 s cap, `Retry-After` up to 60 s.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(20),
            retry_after_cap: Duration::from_secs(60),
            budget: BudgetConfig::default(),
        }
    }
}

impl BudgetConfig {
    /// `capacity` retries at once, one earned back per `refill_every`.
    pub fn new(capacity: u32, refill_every: Duration) -> Self {
        Self {
            capacity,
            refill_every,
        }
    }
}

impl RetryPolicy {
    /// Sets the attempts in total, the first included (1 = never retry).
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Sets the backoff before the first retry (before jitter).
    pub fn base(mut self, base: Duration) -> Self {
        self.base = base;
        self
    }

    /// Sets the longest backoff.
    pub fn cap(mut self, cap: Duration) -> Self {
        self.cap = cap;
        self
    }

    /// Sets the longest `Retry-After` honoured.
    pub fn retry_after_cap(mut self, retry_after_cap: Duration) -> Self {
        self.retry_after_cap = retry_after_cap;
        self
    }

    /// Sets the sizing of the shared retry budget.
    pub fn budget(mut self, budget: BudgetConfig) -> Self {
        self.budget = budget;
        self
    }

    /// A policy that never retries.
    pub fn never() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The capped exponential backoff before jitter: `min(cap, base · 2^(attempt−1))`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.max(1) - 1;
        let factor = 1_u32.checked_shl(exp).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// After attempt number `attempt` (1 = the first) failed with `failure`: retry after how long,
    /// or give up. `jitter` in `[0, 1]` (anything else is clamped) scales the backoff (full jitter).
    pub fn decide(
        &self,
        attempt: u32,
        failure: &AttemptFailure,
        idempotent: bool,
        jitter: f64,
    ) -> RetryDecision {
        use RetryDecision::GiveUp;
        if !failure.is_retryable() {
            return GiveUp(GiveUpReason::NotRetryable);
        }
        if !idempotent {
            match failure {
                AttemptFailure::Transport(TransportErrorKind::Connect) => {}
                AttemptFailure::Status { status, .. } if *status < 500 => {
                    return GiveUp(GiveUpReason::NotIdempotent)
                }
                _ => return GiveUp(GiveUpReason::ReconcileFirst),
            }
        }
        let attempt = attempt.max(1);
        if attempt >= self.max_attempts {
            return GiveUp(GiveUpReason::AttemptsExhausted { attempts: attempt });
        }
        let backoff = self.backoff(attempt);
        let delay = time_util::scale(backoff, time_util::unit(jitter), backoff);
        match failure.retry_after() {
            Some(wanted) if wanted > self.retry_after_cap => {
                GiveUp(GiveUpReason::RetryAfterTooLong(wanted))
            }
            Some(wanted) => RetryDecision::RetryAfter(delay.max(wanted).min(self.retry_after_cap)),
            None => RetryDecision::RetryAfter(delay),
        }
    }

    /// [`decide`](Self::decide) for an SDK [`Error`] (described with [`AttemptFailure::from_error`]).
    pub fn decide_error(
        &self,
        attempt: u32,
        error: &Error,
        idempotent: bool,
        jitter: f64,
    ) -> RetryDecision {
        self.decide(
            attempt,
            &AttemptFailure::from_error(error),
            idempotent,
            jitter,
        )
    }

    /// [`decide`](Self::decide), then takes a retry from `budget` (a `RetryAfter` becomes
    /// `GiveUp(BudgetExhausted)` when it is empty).
    #[allow(clippy::too_many_arguments)]
    pub fn decide_with_budget(
        &self,
        budget: &mut RetryBudget,
        attempt: u32,
        failure: &AttemptFailure,
        idempotent: bool,
        jitter: f64,
        now: OffsetDateTime,
    ) -> RetryDecision {
        match self.decide(attempt, failure, idempotent, jitter) {
            RetryDecision::RetryAfter(d) if budget.try_acquire(now) => RetryDecision::RetryAfter(d),
            RetryDecision::RetryAfter(_) => RetryDecision::GiveUp(GiveUpReason::BudgetExhausted),
            give_up => give_up,
        }
    }

    /// A full budget sized by this policy.
    pub fn new_budget(&self, now: OffsetDateTime) -> RetryBudget {
        RetryBudget::new(self.budget, now)
    }
}

/// A token bucket of retries, shared by a client's requests. Pure: time is passed in.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    config: BudgetConfig,
    tokens: u32,
    refilled_at: OffsetDateTime,
}

impl RetryBudget {
    /// A full bucket at `now`.
    pub fn new(config: BudgetConfig, now: OffsetDateTime) -> Self {
        Self {
            config,
            tokens: config.capacity,
            refilled_at: now,
        }
    }

    fn refill(&mut self, now: OffsetDateTime) {
        if now <= self.refilled_at {
            return;
        }
        if self.tokens >= self.config.capacity {
            self.refilled_at = now;
            return;
        }
        let every = self.config.refill_every.as_nanos();
        if every == 0 {
            self.tokens = self.config.capacity;
            self.refilled_at = now;
            return;
        }
        let elapsed = time_util::since(now, self.refilled_at).as_nanos();
        let earned = elapsed / every;
        if earned == 0 {
            return;
        }
        let room = u128::from(self.config.capacity - self.tokens);
        if earned >= room {
            self.tokens = self.config.capacity;
            self.refilled_at = now;
        } else {
            // earned < room ≤ u32::MAX, so both conversions are exact.
            self.tokens += u32::try_from(earned).unwrap_or(0);
            let used = u64::try_from(earned * every).unwrap_or(u64::MAX);
            self.refilled_at = time_util::add(self.refilled_at, Duration::from_nanos(used));
        }
    }

    /// Takes one retry if available at `now`.
    pub fn try_acquire(&mut self, now: OffsetDateTime) -> bool {
        self.refill(now);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    /// Retries available at `now`.
    pub fn available(&mut self, now: OffsetDateTime) -> u32 {
        self.refill(now);
        self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::TransportError;
    use crate::test_support::{at, t0};
    use proptest::prelude::*;

    fn transport(kind: TransportErrorKind) -> AttemptFailure {
        AttemptFailure::Transport(kind)
    }

    #[test]
    fn idempotent_requests_retry_on_documented_failures() {
        let p = RetryPolicy::default();
        for f in [
            transport(TransportErrorKind::Connect),
            transport(TransportErrorKind::Timeout),
            transport(TransportErrorKind::Io),
            AttemptFailure::status(429),
            AttemptFailure::status(500),
            AttemptFailure::status(502),
            AttemptFailure::status(503),
            AttemptFailure::status(504),
        ] {
            assert_eq!(
                p.decide(1, &f, true, 1.0),
                RetryDecision::RetryAfter(Duration::from_millis(500)),
                "{f:?}"
            );
        }
        for status in [400, 401, 403, 404, 409, 501] {
            assert_eq!(
                p.decide(1, &AttemptFailure::status(status), true, 1.0),
                RetryDecision::GiveUp(GiveUpReason::NotRetryable)
            );
        }
    }

    #[test]
    fn decode_errors_and_oversize_bodies_are_never_retried() {
        // The same request gets the same answer: repeating only downloads it again.
        let p = RetryPolicy::default();
        for f in [
            AttemptFailure::Malformed,
            transport(TransportErrorKind::TooLarge),
            AttemptFailure::from_error(&Error::decode(http::StatusCode::OK, "eof")),
        ] {
            for idempotent in [true, false] {
                assert_eq!(
                    p.decide(1, &f, idempotent, 0.5),
                    RetryDecision::GiveUp(GiveUpReason::NotRetryable),
                    "{f:?}"
                );
            }
        }
    }

    #[test]
    fn non_idempotent_only_when_it_never_left() {
        let p = RetryPolicy::default();
        assert!(matches!(
            p.decide(1, &transport(TransportErrorKind::Connect), false, 0.5),
            RetryDecision::RetryAfter(_)
        ));
        for f in [
            transport(TransportErrorKind::Timeout),
            transport(TransportErrorKind::Io),
            transport(TransportErrorKind::Other),
            AttemptFailure::status(500),
            AttemptFailure::status(503),
        ] {
            assert_eq!(
                p.decide(1, &f, false, 0.5),
                RetryDecision::GiveUp(GiveUpReason::ReconcileFirst)
            );
        }
        assert_eq!(
            p.decide(1, &AttemptFailure::status(429), false, 0.5),
            RetryDecision::GiveUp(GiveUpReason::NotIdempotent)
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_attempts_are_bounded() {
        let p = RetryPolicy::default();
        let f = AttemptFailure::status(503);
        assert_eq!(p.backoff(1), Duration::from_millis(500));
        assert_eq!(p.backoff(3), Duration::from_secs(2));
        assert_eq!(p.backoff(100), Duration::from_secs(20));
        assert_eq!(
            p.decide(4, &f, true, 1.0),
            RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted { attempts: 4 })
        );
        assert_eq!(
            p.decide(2, &f, true, 0.0),
            RetryDecision::RetryAfter(Duration::ZERO)
        );
    }

    #[test]
    fn retry_after_is_honoured_up_to_its_cap() {
        let p = RetryPolicy::default();
        let with = |s| AttemptFailure::Status {
            status: 429,
            rate_limited: true,
            retry_after: Some(Duration::from_secs(s)),
        };
        assert_eq!(
            p.decide(1, &with(30), true, 0.1),
            RetryDecision::RetryAfter(Duration::from_secs(30))
        );
        assert_eq!(
            p.decide(1, &with(3600), true, 0.1),
            RetryDecision::GiveUp(GiveUpReason::RetryAfterTooLong(Duration::from_secs(3600)))
        );
    }

    #[test]
    fn errors_are_described() {
        let throttled = Error::from_response(
            http::StatusCode::FORBIDDEN,
            br#"{"data":[{"title":"Invalid request"}]}"#,
            None,
        );
        assert!(matches!(
            AttemptFailure::from_error(&throttled),
            AttemptFailure::Status {
                status: 403,
                rate_limited: true,
                ..
            }
        ));
        let reset = Error::transport(TransportError::new(TransportErrorKind::Io, "reset"));
        assert_eq!(
            AttemptFailure::from_error(&reset),
            transport(TransportErrorKind::Io)
        );
        assert_eq!(
            AttemptFailure::from_error(&Error::config("x")),
            AttemptFailure::Fatal
        );
        assert!(GiveUpReason::ReconcileFirst.to_string().contains("re-read"));
        let p = RetryPolicy::default();
        assert_eq!(
            p.decide_error(1, &reset, false, 0.5),
            RetryDecision::GiveUp(GiveUpReason::ReconcileFirst)
        );
        assert!(matches!(
            p.decide_error(1, &throttled, true, 0.5),
            RetryDecision::RetryAfter(_)
        ));
    }

    #[test]
    fn budget_runs_out_and_refills() {
        let config = BudgetConfig {
            capacity: 2,
            refill_every: Duration::from_secs(10),
        };
        let p = RetryPolicy {
            budget: config,
            ..RetryPolicy::default()
        };
        let mut b = p.new_budget(t0());
        let f = AttemptFailure::status(503);
        assert!(matches!(
            p.decide_with_budget(&mut b, 1, &f, true, 0.5, at(0)),
            RetryDecision::RetryAfter(_)
        ));
        assert!(matches!(
            p.decide_with_budget(&mut b, 1, &f, true, 0.5, at(1)),
            RetryDecision::RetryAfter(_)
        ));
        assert_eq!(
            p.decide_with_budget(&mut b, 1, &f, true, 0.5, at(2)),
            RetryDecision::GiveUp(GiveUpReason::BudgetExhausted)
        );
        assert_eq!(b.available(at(15)), 1);
        assert_eq!(b.available(at(1000)), 2);
    }

    fn any_failure() -> impl Strategy<Value = AttemptFailure> {
        prop_oneof![
            prop_oneof![
                Just(TransportErrorKind::Connect),
                Just(TransportErrorKind::Timeout),
                Just(TransportErrorKind::Io),
                Just(TransportErrorKind::Other),
                Just(TransportErrorKind::TooLarge),
            ]
            .prop_map(AttemptFailure::Transport),
            (
                100u16..600,
                any::<bool>(),
                proptest::option::of(0u64..10_000)
            )
                .prop_map(|(status, rate_limited, ra)| AttemptFailure::Status {
                    status,
                    rate_limited,
                    retry_after: ra.map(Duration::from_secs),
                }),
            Just(AttemptFailure::Malformed),
            Just(AttemptFailure::Fatal),
        ]
    }

    proptest! {
        #[test]
        fn delays_are_bounded_and_ambiguity_is_never_repeated(
            attempt in 0u32..100,
            failure in any_failure(),
            idempotent in any::<bool>(),
            jitter in proptest::num::f64::ANY,
            max_attempts in 0u32..10,
            base_ms in 0u64..100_000,
            cap_ms in 0u64..100_000,
            ra_cap_s in 0u64..600,
        ) {
            let p = RetryPolicy {
                max_attempts,
                base: Duration::from_millis(base_ms),
                cap: Duration::from_millis(cap_ms),
                retry_after_cap: Duration::from_secs(ra_cap_s),
                budget: BudgetConfig::default(),
            };
            match p.decide(attempt, &failure, idempotent, jitter) {
                RetryDecision::RetryAfter(d) => {
                    prop_assert!(attempt.max(1) < max_attempts, "attempts bounded");
                    if let Some(ra) = failure.retry_after() {
                        prop_assert!(d >= ra && d <= p.retry_after_cap);
                    } else {
                        prop_assert!(d <= p.cap);
                    }
                    if !idempotent {
                        prop_assert_eq!(failure, AttemptFailure::Transport(TransportErrorKind::Connect));
                    }
                }
                RetryDecision::GiveUp(_) => {}
            }
        }

        #[test]
        fn a_retry_loop_ends_within_max_attempts(max_attempts in 0u32..20, jitter in 0.0f64..=1.0) {
            let p = RetryPolicy { max_attempts, ..RetryPolicy::default() };
            let mut attempt = 1;
            while let RetryDecision::RetryAfter(_) = p.decide(attempt, &AttemptFailure::status(503), true, jitter) {
                attempt += 1;
                prop_assert!(attempt <= 20);
            }
            prop_assert!(attempt <= max_attempts.max(1));
        }

        #[test]
        fn budget_never_grants_more_than_capacity_plus_refills(
            capacity in 0u32..30,
            refill_s in 0u64..20,
            steps in proptest::collection::vec(0i64..15, 1..300),
        ) {
            let config = BudgetConfig { capacity, refill_every: Duration::from_secs(refill_s) };
            let mut b = RetryBudget::new(config, t0());
            let mut now = t0();
            let mut granted = 0u64;
            for step in steps {
                now += time::Duration::seconds(step);
                if b.try_acquire(now) {
                    granted += 1;
                }
                let elapsed = (now - t0()).whole_seconds() as u64;
                if let Some(refills) = elapsed.checked_div(refill_s) {
                    prop_assert!(granted <= u64::from(capacity) + refills);
                }
                prop_assert!(b.available(now) <= capacity);
            }
        }
    }
}
