//! Work over many users, spread over a window at a rate: never a burst.
//!
//! Basiq asks integrators to check every user's jobs about once a day (basiq-api.md §4.3 C) and warns
//! against bursts of traffic. An app with many users should not check them all at midnight:
//!
//! * [`TriageScheduler`] spreads the daily [`triage_user`](crate::policy::jobs::triage_user) check of
//!   many users over a window, at most `max_per_minute` in any 60 seconds, each user at a stable
//!   slot — the same grid as [`RefreshScheduler`], so an app server gets the same daily cadence
//!   for its users as for its refreshes;
//! * [`Pacer`] keeps the *actual* sends of any such plan at least one grid step apart, so a late
//!   send (a slow answer, a process that was stopped and resumed) never bunches up with the next
//!   ones: whatever the lateness, no 60 seconds hold more than the cap.
//!
//! Pure: the start time, the jitter and the send times are passed in.
//!
//! ```
//! use std::num::NonZeroU32;
//! use std::time::Duration;
//! use basiq_core::id::UserId;
//! use basiq_core::policy::plan::{Pacer, TriageScheduler};
//!
//! let users: Vec<UserId> = ["u1", "u2", "u3"].iter().map(|u| UserId::new(*u)).collect::<Result<_, _>>()?;
//! let start = time::macros::datetime!(2026-01-06 00:00 UTC);
//! // A day's window, at most 2 checks a minute.
//! let plan = TriageScheduler::new(Duration::from_secs(24 * 3600), 2).schedule(start, &users, 0.5);
//! assert_eq!(plan.planned.len(), 3);
//! assert!(plan.overflow.is_empty());
//!
//! let mut pacer = Pacer::new(NonZeroU32::new(2).unwrap());
//! for check in &plan.planned {
//!     let at = pacer.send_at(check.at); // wait until then, then check the user
//!     pacer.sent(at);
//! }
//! # Ok::<(), basiq_core::id::InvalidId>(())
//! ```

use std::num::NonZeroU32;
use std::time::Duration;

use time::OffsetDateTime;

use crate::id::UserId;
use crate::policy::refresh::RefreshScheduler;
use crate::time_util;

/// Spreads the daily check of many users over a window under a per-minute cap.
///
/// The grid is [`RefreshScheduler`]'s: slots `ceil(60 s / max_per_minute)` apart, each user at a
/// stable slot from an FNV-1a hash of its id (the same user is checked at the same time of day
/// every day), collisions moved to the next free slot, and the injected `jitter` shifting the
/// whole grid by a fraction of one slot — so no 60-second span holds more than `max_per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TriageScheduler {
    grid: RefreshScheduler,
}

/// One planned check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledTriage {
    /// The user to check.
    pub user_id: UserId,
    /// When to check them.
    pub at: OffsetDateTime,
}

/// A triage plan: checks in time order, and the users that did not fit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TriagePlan {
    /// Planned checks, sorted by time.
    pub planned: Vec<ScheduledTriage>,
    /// Users beyond the window's capacity at the cap (the last ones given): widen the window or
    /// raise the rate.
    pub overflow: Vec<UserId>,
}

impl TriageScheduler {
    /// A scheduler for `window` at no more than `max_per_minute` checks.
    pub fn new(window: Duration, max_per_minute: u32) -> Self {
        Self {
            grid: RefreshScheduler::new(window, max_per_minute),
        }
    }

    /// The shortest window that holds `users` checks at `max_per_minute` (every slot taken):
    /// for "check these users now, as fast as the rate allows".
    pub fn tightest(users: usize, max_per_minute: u32) -> Self {
        let spacing = RefreshScheduler::new(Duration::ZERO, max_per_minute)
            .spacing()
            .unwrap_or(Duration::ZERO);
        let slots = u32::try_from(users).unwrap_or(u32::MAX);
        Self::new(spacing.saturating_mul(slots), max_per_minute)
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.grid.window
    }

    /// The most checks in any 60 seconds.
    pub fn max_per_minute(&self) -> u32 {
        self.grid.max_per_minute
    }

    /// How many checks the window holds at the cap.
    pub fn capacity(&self) -> u64 {
        self.grid.capacity()
    }

    /// Plans the check of each distinct user in `users` (in priority order; duplicates are
    /// planned once) in `[start, start + window)`. `jitter` in `[0, 1]` shifts the grid by that
    /// fraction of a slot.
    pub fn schedule(&self, start: OffsetDateTime, users: &[UserId], jitter: f64) -> TriagePlan {
        let (planned, overflow) = self.grid.spread(start, users, UserId::as_str, jitter);
        TriagePlan {
            planned: planned
                .into_iter()
                .map(|(user_id, at)| ScheduledTriage { user_id, at })
                .collect(),
            overflow,
        }
    }
}

/// Keeps the sends of a plan at least one grid step (`ceil(60 s / max_per_minute)`) apart.
///
/// A plan's slots respect the cap, but sends happen when the sender gets to them: after a slow
/// answer, or after a stopped process resumes, several slots may be overdue at once. Sending them
/// all at once would be the burst the plan exists to avoid, so each send waits for
/// [`send_at`](Self::send_at): its slot, and at least one step after the previous send. As long
/// as every send happens at or after `send_at` (and is reported with [`sent`](Self::sent)), no
/// 60-second span holds more than `max_per_minute` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacer {
    spacing: Duration,
    last: Option<OffsetDateTime>,
}

impl Pacer {
    /// A pacer at most `max_per_minute` sends in any 60 seconds.
    pub fn new(max_per_minute: NonZeroU32) -> Self {
        Self {
            spacing: Duration::from_nanos(
                60_000_000_000_u64.div_ceil(u64::from(max_per_minute.get())),
            ),
            last: None,
        }
    }

    /// A pacer that continues after a send at `last` (e.g. read back from a resumed plan's
    /// state file).
    pub fn resume(max_per_minute: NonZeroU32, last: Option<OffsetDateTime>) -> Self {
        Self {
            last,
            ..Self::new(max_per_minute)
        }
    }

    /// The step between two sends.
    pub fn spacing(&self) -> Duration {
        self.spacing
    }

    /// The last send reported.
    pub fn last_sent(&self) -> Option<OffsetDateTime> {
        self.last
    }

    /// The earliest time the send planned at `planned` may go: `planned`, or one step after the
    /// previous send if that is later.
    pub fn send_at(&self, planned: OffsetDateTime) -> OffsetDateTime {
        match self.last {
            Some(last) => planned.max(time_util::add(last, self.spacing)),
            None => planned,
        }
    }

    /// How long to wait at `now` before the send planned at `planned` (zero when it may go).
    pub fn wait(&self, planned: OffsetDateTime, now: OffsetDateTime) -> Duration {
        time_util::since(self.send_at(planned), now)
    }

    /// Records a send made at `at`.
    pub fn sent(&mut self, at: OffsetDateTime) {
        self.last = Some(self.last.map_or(at, |last| last.max(at)));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    fn t0() -> OffsetDateTime {
        time::macros::datetime!(2026-01-06 00:00 UTC)
    }

    fn most_in_any_minute(times: &[OffsetDateTime]) -> usize {
        let mut sorted = times.to_vec();
        sorted.sort();
        (0..sorted.len())
            .map(|i| {
                sorted[i..]
                    .iter()
                    .take_while(|t| **t < sorted[i] + time::Duration::seconds(60))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn tightest_window_holds_every_user_one_step_apart() {
        let users: Vec<UserId> = (0..7)
            .map(|i| UserId::new(format!("u{i}")).unwrap())
            .collect();
        let s = TriageScheduler::tightest(users.len(), 3);
        assert_eq!(s.window(), Duration::from_secs(7 * 20));
        let plan = s.schedule(t0(), &users, 0.0);
        assert!(plan.overflow.is_empty());
        let times: Vec<_> = plan.planned.iter().map(|p| p.at).collect();
        let expected: Vec<_> = (0..7)
            .map(|i| t0() + time::Duration::seconds(i * 20))
            .collect();
        assert_eq!(times, expected);
    }

    #[test]
    fn the_same_user_keeps_its_slot_from_day_to_day() {
        let users: Vec<UserId> = (0..50)
            .map(|i| UserId::new(format!("u{i}")).unwrap())
            .collect();
        let s = TriageScheduler::new(Duration::from_secs(24 * 3600), 5);
        let today = s.schedule(t0(), &users, 0.3);
        let tomorrow = s.schedule(t0() + time::Duration::days(1), &users, 0.3);
        for (a, b) in today.planned.iter().zip(&tomorrow.planned) {
            assert_eq!(a.user_id, b.user_id);
            assert_eq!(b.at - a.at, time::Duration::days(1));
        }
    }

    #[test]
    fn a_pacer_holds_overdue_sends_one_step_apart() {
        let mut pacer = Pacer::new(NonZeroU32::new(10).unwrap());
        // Three slots all overdue at t0 + 100 s.
        let now = t0() + time::Duration::seconds(100);
        assert_eq!(pacer.wait(t0(), now), Duration::ZERO);
        pacer.sent(now);
        assert_eq!(pacer.wait(t0(), now), Duration::from_secs(6));
        assert_eq!(pacer.send_at(t0()), now + time::Duration::seconds(6));
        // A slot later than the step is kept.
        assert_eq!(
            pacer.send_at(now + time::Duration::seconds(30)),
            now + time::Duration::seconds(30)
        );
    }

    proptest! {
        #[test]
        fn triage_plan_checks_each_user_once_never_above_the_rate(
            ids in proptest::collection::vec("[a-z0-9]{1,8}", 0..300),
            window_s in 0u64..7200,
            cap in 1u32..40,
            jitter in proptest::num::f64::ANY,
        ) {
            let s = TriageScheduler::new(Duration::from_secs(window_s), cap);
            let users: Vec<_> = ids.iter().map(|i| UserId::new(i.as_str()).unwrap()).collect();
            let plan = s.schedule(t0(), &users, jitter);
            let unique: HashSet<_> = users.iter().collect();
            // Each user exactly once: planned ∪ overflow = the distinct users, disjoint.
            let mut all: Vec<_> = plan.planned.iter().map(|p| &p.user_id).chain(&plan.overflow).collect();
            prop_assert_eq!(all.len(), unique.len());
            all.sort();
            all.dedup();
            prop_assert_eq!(all.len(), unique.len());
            if !plan.overflow.is_empty() {
                prop_assert_eq!(plan.planned.len() as u64, s.capacity());
            }
            let end = t0() + time::Duration::seconds(window_s as i64);
            prop_assert!(plan.planned.iter().all(|p| p.at >= t0() && p.at < end));
            prop_assert!(plan.planned.windows(2).all(|w| w[0].at <= w[1].at));
            let times: Vec<_> = plan.planned.iter().map(|p| p.at).collect();
            prop_assert!(most_in_any_minute(&times) <= cap as usize);
        }

        #[test]
        fn tightest_plan_fits_everyone(n in 0usize..400, cap in 1u32..60) {
            let users: Vec<_> = (0..n).map(|i| UserId::new(format!("u{i}")).unwrap()).collect();
            let s = TriageScheduler::tightest(n, cap);
            let plan = s.schedule(t0(), &users, 0.9);
            prop_assert!(plan.overflow.is_empty());
            prop_assert_eq!(plan.planned.len(), n);
        }

        /// Whatever the plan and however late each send is, the paced sends never exceed the
        /// cap in any 60 seconds (including across a resume from the last send).
        #[test]
        fn paced_sends_never_exceed_the_rate(
            planned in proptest::collection::vec(0i64..3_600_000, 0..200),
            lateness in proptest::collection::vec(0i64..200_000, 200),
            cap in 1u32..40,
            resume_at in 0usize..200,
        ) {
            let cap_nz = NonZeroU32::new(cap).unwrap();
            let mut planned: Vec<_> = planned.iter().map(|ms| t0() + time::Duration::milliseconds(*ms)).collect();
            planned.sort();
            let mut pacer = Pacer::new(cap_nz);
            let mut sends = Vec::new();
            for (i, at) in planned.iter().enumerate() {
                if i == resume_at {
                    pacer = Pacer::resume(cap_nz, pacer.last_sent());
                }
                let send = pacer.send_at(*at) + time::Duration::milliseconds(lateness[i] % 7_000);
                pacer.sent(send);
                sends.push(send);
            }
            prop_assert!(most_in_any_minute(&sends) <= cap as usize);
        }
    }
}
