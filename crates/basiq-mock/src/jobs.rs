//! Jobs: their lazily computed progress, their JSON, and `GET /jobs/{id}`,
//! `GET /users/{id}/jobs`.
//!
//! A job stores only its *plan* (start time, step durations, which step fails and how). Its
//! visible state is computed from the clock on every read: steps go pending → in-progress →
//! success|failed at planned instants, a failed step stops the job (later steps stay pending).
//! A paused duplicate attempt simply has `start_at = created + 6 min`.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::auth::{AnyAuth, ServerUserQuery};
use crate::clock::rfc3339;
use crate::error::ApiError;
use crate::ids::IdKind;
use crate::logins::{self, ACCOUNTS, TRANSACTIONS, VERIFY};
use crate::query;
use crate::state::{AppState, Db, Job, JobKind, Scope};
use crate::users::require_user;

/// How long a duplicate attempt is held back (basiq-api.md §8).
pub(crate) const DUPLICATE_PAUSE: time::Duration = time::Duration::minutes(6);
/// `GET /users/{id}/jobs` only lists jobs younger than this (basiq-api.md §4.1).
const LIST_WINDOW: time::Duration = time::Duration::days(7);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepStatus {
    Pending,
    InProgress,
    Success,
    Failed,
}

impl StepStatus {
    fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::InProgress => "in-progress",
            StepStatus::Success => "success",
            StepStatus::Failed => "failed",
        }
    }
}

impl Job {
    /// Planned `(start, end)` of each step.
    pub(crate) fn windows(&self) -> Vec<(OffsetDateTime, OffsetDateTime)> {
        let mut t = self.start_at;
        self.steps
            .iter()
            .map(|s| {
                let w = (t, t + s.duration);
                t = w.1;
                w
            })
            .collect()
    }

    /// Status of every step at `now`.
    pub(crate) fn step_statuses(&self, now: OffsetDateTime) -> Vec<StepStatus> {
        let mut failed = false;
        self.steps
            .iter()
            .zip(self.windows())
            .map(|(step, (start, end))| {
                if failed || now < start {
                    StepStatus::Pending
                } else if now < end {
                    StepStatus::InProgress
                } else if step.failure.is_some() {
                    failed = true;
                    StepStatus::Failed
                } else {
                    StepStatus::Success
                }
            })
            .collect()
    }

    /// When the job ends (the failing step's end, or the last step's).
    pub(crate) fn finished_at(&self) -> OffsetDateTime {
        // Without building the windows: the webhook pump asks this of every job at each step.
        let mut end = self.start_at;
        for step in &self.steps {
            end += step.duration;
            if step.failure.is_some() {
                break;
            }
        }
        end
    }

    pub(crate) fn is_finished(&self, now: OffsetDateTime) -> bool {
        now >= self.finished_at()
    }

    /// A connect job of user `u` on connection `c` at `AU00000` (web), for unit tests.
    #[cfg(test)]
    pub(crate) fn test_connect(
        seq: u64,
        login: &str,
        created: OffsetDateTime,
        start_at: OffsetDateTime,
        steps: Vec<crate::state::StepPlan>,
    ) -> Self {
        Self {
            id: format!("j{seq}"),
            seq,
            kind: JobKind::Connect,
            user_id: "u".into(),
            connection_id: "c".into(),
            institution_id: "AU00000".into(),
            method: crate::state::Method::Web,
            login_id: login.into(),
            created,
            start_at,
            steps,
        }
    }

    /// `Some(true)` finished successfully, `Some(false)` failed, `None` still running (the plain
    /// definition, kept as the oracle of [`progress`](Self::progress)).
    #[cfg(test)]
    pub(crate) fn succeeded(&self, now: OffsetDateTime) -> Option<bool> {
        self.is_finished(now)
            .then(|| self.steps.iter().all(|s| s.failure.is_none()))
    }

    /// When the step titled `title` succeeded, if it has by `now`.
    pub(crate) fn step_succeeded_at(
        &self,
        title: &str,
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        // What `step_statuses` says of that step, without building the lists: every read of a
        // connection asks this of each of its jobs.
        let mut start = self.start_at;
        for step in &self.steps {
            let end = start + step.duration;
            if step.title == title {
                let success = now >= start && now >= end && step.failure.is_none();
                return success.then_some(end);
            }
            if step.failure.is_some() {
                // Every step after a failing one stays pending.
                return None;
            }
            start = end;
        }
        None
    }

    /// What deriving a connection needs of this job at `now`, in one pass over its steps (the
    /// same answers as [`succeeded`](Self::succeeded), [`finished_at`](Self::finished_at) and
    /// [`step_succeeded_at`](Self::step_succeeded_at) for the three data steps).
    pub(crate) fn progress(&self, now: OffsetDateTime) -> Progress {
        let mut progress = Progress {
            finished_at: self.start_at,
            succeeded: None,
            verified_at: None,
            accounts_at: None,
            transactions_at: None,
        };
        let mut seen = [false; 3];
        let mut start = self.start_at;
        let mut failed = false;
        for step in &self.steps {
            let end = start + step.duration;
            let slot = match step.title {
                VERIFY => Some((0, &mut progress.verified_at)),
                ACCOUNTS => Some((1, &mut progress.accounts_at)),
                TRANSACTIONS => Some((2, &mut progress.transactions_at)),
                _ => None,
            };
            if let Some((i, at)) = slot {
                // The first step of that title, as `step_succeeded_at` finds it.
                if !seen[i] {
                    seen[i] = true;
                    let success = now >= start && now >= end && step.failure.is_none();
                    *at = success.then_some(end);
                }
            }
            progress.finished_at = end;
            if step.failure.is_some() {
                failed = true;
                break;
            }
            start = end;
        }
        if now >= progress.finished_at {
            progress.succeeded = Some(!failed);
        }
        progress
    }

    /// The latest state change at or before `now`.
    fn updated(&self, now: OffsetDateTime) -> OffsetDateTime {
        let mut last = self.created;
        if now < self.start_at {
            return last;
        }
        last = last.max(self.start_at);
        let finished = self.finished_at();
        for (start, end) in self.windows() {
            for t in [start, end] {
                if t <= now && t <= finished {
                    last = last.max(t);
                }
            }
        }
        last
    }
}

/// A job's course at one instant, as [`Job::progress`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Progress {
    /// When the job ends (the failing step's end, or the last step's).
    pub(crate) finished_at: OffsetDateTime,
    /// `Some(true)` finished successfully, `Some(false)` failed, `None` still running.
    pub(crate) succeeded: Option<bool>,
    /// When `verify-credentials` succeeded, if it has.
    pub(crate) verified_at: Option<OffsetDateTime>,
    /// When `retrieve-accounts` succeeded, if it has.
    pub(crate) accounts_at: Option<OffsetDateTime>,
    /// When `retrieve-transactions` succeeded, if it has.
    pub(crate) transactions_at: Option<OffsetDateTime>,
}

/// `{type:"job", id, links{self}}`: what refresh endpoints return.
pub(crate) fn job_ref(base: &str, id: &str) -> Value {
    json!({ "type": "job", "id": id, "links": { "self": format!("{base}/jobs/{id}") } })
}

/// The full job JSON at `now`.
pub(crate) fn job_json(base: &str, job: &Job, now: OffsetDateTime) -> Value {
    let uid = &job.user_id;
    let cid = &job.connection_id;
    let inst = &job.institution_id;
    let steps: Vec<Value> = job
        .steps
        .iter()
        .zip(job.step_statuses(now))
        .zip(job.windows())
        .map(|((step, status), (_, end))| {
            let result = match status {
                // An MFA step waiting for its answer shows the challenge.
                StepStatus::InProgress if step.mfa.is_some() => match &step.mfa {
                    Some(c) => crate::mfa::challenge_json(
                        base,
                        &job.id,
                        c,
                        (end - now).whole_milliseconds(),
                    ),
                    None => Value::Null,
                },
                StepStatus::Pending | StepStatus::InProgress => Value::Null,
                StepStatus::Failed => match &step.failure {
                    Some(f) => json!({ "code": f.code, "title": f.title, "detail": f.detail }),
                    None => Value::Null,
                },
                StepStatus::Success => {
                    let url = match step.title {
                        VERIFY => format!("/users/{uid}/connections/{cid}"),
                        ACCOUNTS => {
                            format!("/users/{uid}/accounts?filter=institution.id.eq('{inst}')")
                        }
                        TRANSACTIONS => {
                            format!("/users/{uid}/transactions?filter=institution.id.eq('{inst}')")
                        }
                        _ => format!("/users/{uid}/connections/{cid}"),
                    };
                    json!({ "type": "link", "url": url })
                }
            };
            json!({ "title": step.title, "status": status.as_str(), "result": result })
        })
        .collect();
    json!({
        "type": "job",
        "id": job.id,
        "created": rfc3339(job.created),
        "updated": rfc3339(job.updated(now)),
        "jobType": "connection",
        "institution": {
            "type": "institution",
            "id": inst,
            "links": { "self": format!("{base}/connectors/{inst}/{}", job.method.connector_str()) },
        },
        "steps": steps,
        "links": {
            "self": format!("{base}/jobs/{}", job.id),
            "source": format!("{base}/users/{uid}/connections/{cid}"),
        },
    })
}

/// Creates a job for an existing connection and returns its id.
///
/// Implements the duplicate pause: if another job with the same user, institution and login id
/// is still unfinished, this one is held (all steps pending) until 6 minutes after creation.
pub(crate) fn create_job(
    db: &mut Db,
    now: OffsetDateTime,
    connection_id: &str,
    kind: JobKind,
) -> Option<String> {
    let conn = db.connections.get(connection_id)?.clone();
    let paused = db.jobs.values().any(|j| {
        j.user_id == conn.user_id
            && j.institution_id == conn.institution_id
            && j.login_id == conn.login_id
            && !j.is_finished(now)
    });
    let outage = db
        .connectors
        .iter()
        .any(|c| c.id == conn.institution_id && c.status == "major-outage");
    // Always-MFA banks challenge every job; intermittent ones every other job (the first, the
    // third, …) of a connection.
    let mfa = db.connectors.iter().any(|c| {
        c.id == conn.institution_id
            && (c.authorization == "user-mfa"
                || (c.authorization == "user-mfa-intermittent" && conn.attempts % 2 == 0))
    });
    let steps = logins::plan(&conn.login_id, &conn.password, conn.attempts, outage, mfa);
    let (id, seq) = db.new_id(IdKind::Job);
    let job = Job {
        id: id.clone(),
        seq,
        kind,
        user_id: conn.user_id.clone(),
        connection_id: conn.id.clone(),
        institution_id: conn.institution_id.clone(),
        method: conn.method,
        login_id: conn.login_id.clone(),
        created: now,
        start_at: if paused { now + DUPLICATE_PAUSE } else { now },
        steps,
    };
    db.jobs.insert(id.clone(), job);
    if let Some(c) = db.connections.get_mut(connection_id) {
        c.attempts += 1;
        if kind == JobKind::Refresh {
            c.refreshes.push(now);
        }
    }
    db.stats.jobs_created += 1;
    if paused {
        db.stats.paused_attempts += 1;
    }
    if kind == JobKind::Refresh {
        *db.stats
            .refreshes
            .entry(connection_id.to_owned())
            .or_default() += 1;
    }
    Some(id)
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/jobs/{job_id}", get(get_job))
        .route("/users/{user_id}/jobs", get(list_jobs))
}

/// `GET /jobs/{id}`: server tokens see every job; a client token only its own user's.
async fn get_job(
    AnyAuth(caller): AnyAuth,
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let now = state.now();
    let db = state.db();
    // Statement and report jobs live with the rest of the surface.
    if let Some(job) = db.surface.jobs.get(&job_id).filter(|j| {
        caller.scope == Scope::Server
            || (j.user_id.is_some() && caller.user_id.as_deref() == j.user_id.as_deref())
    }) {
        return Ok(Json(job.json(state.base(), now)));
    }
    let job = db
        .jobs
        .get(&job_id)
        .filter(|j| caller.scope == Scope::Server || caller.user_id.as_deref() == Some(&j.user_id))
        .ok_or_else(|| ApiError::not_found(format!("Job with id '{job_id}' not found.")))?;
    Ok(Json(job_json(state.base(), job, now)))
}

/// `GET /users/{id}/jobs`: jobs younger than 7 days, newest first; `filter=connection.id.eq(..)`.
async fn list_jobs(
    State(state): State<AppState>,
    ServerUserQuery { user_id, raw }: ServerUserQuery,
) -> Result<Json<Value>, ApiError> {
    let conds = query::filter(
        raw.as_deref(),
        &["connection.id", "job.id", "institution.id"],
    )?;
    let now = state.now();
    let db = state.db();
    require_user(&db, &user_id)?;
    let mut jobs: Vec<&Job> = db
        .jobs
        .values()
        .filter(|j| j.user_id == user_id && now - j.created < LIST_WINDOW)
        .filter(|j| {
            conds.iter().all(|c| match c.field.as_str() {
                "connection.id" => c.matches(&j.connection_id),
                "institution.id" => c.matches(&j.institution_id),
                _ => c.matches(&j.id),
            })
        })
        .collect();
    jobs.sort_by_key(|j| std::cmp::Reverse(j.seq));
    let base = state.base();
    let mut data: Vec<Value> = jobs.iter().map(|j| job_json(base, j, now)).collect();
    // The user's statement jobs too (they have no connection, so a connection filter drops them).
    if conds.iter().all(|c| c.field == "job.id") {
        let mut statements: Vec<_> = db
            .surface
            .jobs
            .values()
            .filter(|j| j.user_id.as_deref() == Some(user_id.as_str()))
            .filter(|j| now - j.created < LIST_WINDOW && conds.iter().all(|c| c.matches(&j.id)))
            .collect();
        statements.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
        data.extend(statements.iter().map(|j| j.json(base, now)));
    }
    Ok(Json(json!({
        "type": "list",
        "size": data.len(),
        "data": data,
        "links": { "self": format!("{base}/users/{user_id}/jobs") },
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn step_succeeded_at_and_progress_agree_with_the_step_statuses() {
        let t0 = datetime!(2024-05-01 00:00 UTC);
        let logins = [
            ("gavinBelson", "hooli2016"),
            ("bighead", "password"),
            ("erlich", "aviato"),
            ("jianYang", "nothotdog"),
            ("slow", "x"),
            ("flaky", "x"),
            ("timeout", "x"),
        ];
        for (login, password) in logins {
            for (outage, mfa) in [(false, false), (true, false), (false, true)] {
                let job = Job::test_connect(
                    1,
                    login,
                    t0,
                    t0 + time::Duration::seconds(2),
                    logins::plan(login, password, 0, outage, mfa),
                );
                let end = job.finished_at() + time::Duration::seconds(2);
                let mut now = t0;
                while now <= end {
                    let statuses = job.step_statuses(now);
                    for title in [VERIFY, ACCOUNTS, TRANSACTIONS] {
                        let expected = job
                            .steps
                            .iter()
                            .zip(job.windows())
                            .zip(&statuses)
                            .find(|((s, _), _)| s.title == title)
                            .and_then(|((_, (_, end)), st)| {
                                (*st == StepStatus::Success).then_some(end)
                            });
                        assert_eq!(
                            job.step_succeeded_at(title, now),
                            expected,
                            "{login} {title} at {now}"
                        );
                    }
                    let progress = job.progress(now);
                    assert_eq!(progress.finished_at, job.finished_at(), "{login} at {now}");
                    assert_eq!(progress.succeeded, job.succeeded(now), "{login} at {now}");
                    assert_eq!(progress.verified_at, job.step_succeeded_at(VERIFY, now));
                    assert_eq!(progress.accounts_at, job.step_succeeded_at(ACCOUNTS, now));
                    assert_eq!(
                        progress.transactions_at,
                        job.step_succeeded_at(TRANSACTIONS, now)
                    );
                    now += time::Duration::milliseconds(250);
                }
            }
        }
    }
}
