//! The duplicate-credentials pause.
//!
//! Basiq (best-practice guide, data-connections guide; basiq-api.md §8): a second attempt with the *same
//! credentials* while a connection job for them is in progress is **paused for 6 minutes**, to
//! avoid locking the user's bank account. A second click on "connect", an update or reauthorise
//! racing a refresh, or a refresh racing a connect all trigger it. [`DuplicatePauseGuard`] looks at
//! the user's jobs *before* sending the user to the Consent UI (connect / update / reauthorise) or
//! refreshing, and says to follow the running job instead.

use std::time::Duration;

use time::OffsetDateTime;

use crate::api::models::{Job, JobType};
use crate::id::{ConnectionId, JobId};
use crate::time_util;

/// How long Basiq pauses a duplicate attempt.
pub const PAUSE: Duration = Duration::from_secs(6 * 60);

/// What to do instead of (or before) a new attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum PauseDecision {
    /// No matching job is running: go ahead.
    Proceed,
    /// A matching job is running: follow it (poll it) instead of starting another.
    FollowExisting {
        /// The running job.
        job_id: JobId,
    },
    /// A duplicate was already sent and Basiq has paused it: send nothing before `until`, and
    /// follow the jobs.
    Paused {
        /// When Basiq's pause of the duplicate ends.
        until: OffsetDateTime,
        /// The paused duplicate.
        job_id: JobId,
    },
}

impl PauseDecision {
    /// Whether a new attempt may be sent.
    pub fn may_proceed(&self) -> bool {
        matches!(self, Self::Proceed)
    }
}

/// Checks a user's jobs for an in-progress attempt on the same credentials.
#[derive(Debug, Clone, Copy, Default)]
pub struct DuplicatePauseGuard;

impl DuplicatePauseGuard {
    /// Whether `job` may use the same credentials as an attempt on `institution` / `connection`.
    ///
    /// Only connection jobs count (report and statement jobs use no bank credentials). A job
    /// matches when its connection is `connection` or its institution is `institution`. When the
    /// caller knows neither (e.g. a plain "connect" where the user picks the bank in the Consent
    /// UI), or the job says neither (in-progress jobs sometimes lack `links.source`), it matches:
    /// waiting a few seconds for a running job costs far less than a 6-minute pause.
    pub fn matches(
        job: &Job,
        institution: Option<&str>,
        connection: Option<&ConnectionId>,
    ) -> bool {
        if matches!(job.job_type, Some(JobType::Report | JobType::Statement)) {
            return false;
        }
        let job_connection = job.connection_id();
        let job_institution = job.institution_id();
        if institution.is_none() && connection.is_none() {
            return true;
        }
        if job_connection.is_none() && job_institution.is_none() {
            return true;
        }
        let same_connection = connection.is_some()
            && job_connection.is_some()
            && job_connection.as_ref() == connection;
        let same_institution =
            institution.is_some() && job_institution.is_some() && job_institution == institution;
        same_connection || same_institution
    }

    /// Before connecting, updating, reauthorising or refreshing: is an attempt with the same
    /// credentials in progress among `user_jobs` (the user's jobs, e.g. `GET /users/{id}/jobs`)?
    ///
    /// Several matching jobs running at once mean Basiq already paused the later ones for
    /// [`PAUSE`] from their creation: the answer is `Paused` until the newest one's pause ends.
    /// A single one (or an expired pause) is `FollowExisting` with the oldest running job, the one
    /// doing the work.
    pub fn check(
        user_jobs: &[Job],
        institution: Option<&str>,
        connection: Option<&ConnectionId>,
        now: OffsetDateTime,
    ) -> PauseDecision {
        let mut running: Vec<&Job> = user_jobs
            .iter()
            .filter(|j| !j.state().is_done())
            .filter(|j| Self::matches(j, institution, connection))
            .collect();
        // Oldest first; a missing creation time counts as "just now" (the conservative end).
        running.sort_by_key(|j| (j.created.unwrap_or(now), j.id.as_str().to_owned()));
        let Some(oldest) = running.first() else {
            return PauseDecision::Proceed;
        };
        if let Some(newest) = running.get(1..).and_then(<[&Job]>::last) {
            let until = time_util::add(newest.created.unwrap_or(now), PAUSE);
            if until > now {
                return PauseDecision::Paused {
                    until,
                    job_id: newest.id.clone(),
                };
            }
        }
        PauseDecision::FollowExisting {
            job_id: oldest.id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{any_status, at, job, three};
    use proptest::prelude::*;

    fn c(id: &str) -> ConnectionId {
        ConnectionId::new(id).unwrap()
    }

    #[test]
    fn nothing_running_proceeds() {
        let jobs = [
            job(
                "done",
                Some("c1"),
                Some("AU1"),
                0,
                5,
                &three("success", None),
            ),
            job(
                "failed",
                Some("c1"),
                Some("AU1"),
                0,
                5,
                &three("failed", Some("x")),
            ),
        ];
        assert_eq!(
            DuplicatePauseGuard::check(&jobs, Some("AU1"), Some(&c("c1")), at(10)),
            PauseDecision::Proceed
        );
    }

    #[test]
    fn running_job_on_same_connection_or_institution_is_followed() {
        let jobs = [job(
            "j1",
            Some("c1"),
            Some("AU1"),
            0,
            5,
            &three("in-progress", None),
        )];
        let follow = PauseDecision::FollowExisting {
            job_id: JobId::new("j1").unwrap(),
        };
        assert_eq!(
            DuplicatePauseGuard::check(&jobs, None, Some(&c("c1")), at(10)),
            follow
        );
        assert_eq!(
            DuplicatePauseGuard::check(&jobs, Some("AU1"), None, at(10)),
            follow
        );
        assert_eq!(
            DuplicatePauseGuard::check(&jobs, None, None, at(10)),
            follow
        );
        assert_eq!(
            DuplicatePauseGuard::check(&jobs, Some("AU2"), Some(&c("c2")), at(10)),
            PauseDecision::Proceed
        );
    }

    #[test]
    fn a_paused_duplicate_is_reported_until_its_pause_ends() {
        let jobs = [
            job(
                "first",
                Some("c1"),
                Some("AU1"),
                0,
                5,
                &three("in-progress", None),
            ),
            job(
                "dup",
                Some("c1"),
                Some("AU1"),
                60,
                60,
                &three("pending", None),
            ),
        ];
        assert_eq!(
            DuplicatePauseGuard::check(&jobs, Some("AU1"), None, at(100)),
            PauseDecision::Paused {
                until: at(60 + 360),
                job_id: JobId::new("dup").unwrap()
            }
        );
        assert_eq!(
            DuplicatePauseGuard::check(&jobs, Some("AU1"), None, at(420)),
            PauseDecision::FollowExisting {
                job_id: JobId::new("first").unwrap()
            }
        );
    }

    #[test]
    fn report_jobs_do_not_block() {
        let mut report = job(
            "r",
            None,
            None,
            0,
            0,
            &[("create-report", "in-progress", None)],
        );
        report.job_type = Some(JobType::Report);
        assert!(DuplicatePauseGuard::check(&[report], None, None, at(1)).may_proceed());
    }

    proptest! {
        #[test]
        fn never_proceed_while_a_matching_job_runs(
            jobs in proptest::collection::vec(
                (proptest::option::of(0u8..3), proptest::option::of(0u8..3), any_status(), -1000i64..1000),
                0..8),
            inst in proptest::option::of(0u8..3),
            conn in proptest::option::of(0u8..3),
            now in -1000i64..2000,
        ) {
            let jobs: Vec<Job> = jobs.iter().enumerate().map(|(i, (jc, ji, s, t))| {
                let jc = jc.map(|n| format!("c{n}"));
                let ji = ji.map(|n| format!("AU{n}"));
                job(&format!("j{i}"), jc.as_deref(), ji.as_deref(), *t, *t,
                    &three(s, (*s == "failed").then_some("x")))
            }).collect();
            let inst = inst.map(|n| format!("AU{n}"));
            let conn = conn.map(|n| c(&format!("c{n}")));
            let decision = DuplicatePauseGuard::check(&jobs, inst.as_deref(), conn.as_ref(), at(now));
            let blocked = jobs.iter().any(|j| {
                !j.state().is_done() && (
                    (inst.is_none() && conn.is_none())
                    || (j.connection_id().is_none() && j.institution_id().is_none())
                    || (conn.is_some() && j.connection_id() == conn)
                    || (inst.is_some() && j.institution_id() == inst.as_deref()))
            });
            prop_assert_eq!(decision.may_proceed(), !blocked);
            if let PauseDecision::Paused { until, .. } = decision {
                prop_assert!(until > at(now));
                prop_assert!(until <= at(now) + time::Duration::minutes(6) || jobs.iter().any(|j| j.created > Some(at(now))));
            }
        }
    }
}
