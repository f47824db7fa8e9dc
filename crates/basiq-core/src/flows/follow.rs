//! Following a job to its end, as a sans-IO state machine: [`JobFollow`] says "fetch the job",
//! "wait this long", "ask `/connectors`" or "here is a progress event", and is fed the answers.
//! The facade's `jobs().follow` (a stream / iterator of [`JobProgress`]) and `jobs().wait`
//! (the last event's [`JobReport`]) drive it; nothing here does IO or reads a clock.
//!
//! Basiq asks integrators to follow a job by its *steps* (found by title, never by index), to
//! back off between polls, and to consult `/connectors` when a job fails: a failure during an
//! outage is their end. A job waiting on the user's multi-factor answer stops the follow at once
//! ([`WaitOutcome::MfaRequired`]): it cannot progress on its own.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

use crate::api::models::{ConnectorList, Job, StepStatus, StepTitle};
use crate::api::operations::{GetJob, ListConnectors};
use crate::error::{Error, ErrorContext};
use crate::id::{ConnectionId, JobId, UserId};
use crate::policy::connectors::ConnectorStatusView;
use crate::policy::jobs::{
    Diagnosis, FailureClass, JobKind, JobOutcome, JobPoller, MfaChallenge, PollConfig, PollStep,
    StepEvent, StepFailure,
};

use super::triage::connectors_for_failures;

/// How a followed job ended (see [`JobReport`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub enum WaitOutcome {
    /// Every step succeeded.
    Succeeded,
    /// A step failed: what it means and what to do ([`Diagnosis::action`]; its `Display` reads
    /// well in an operator's log or a support ticket).
    Failed(Box<Diagnosis>),
    /// The deadline passed while the job was still running. It may still finish at Basiq: look
    /// at it again later (e.g. in the daily the daily triage), never start a
    /// second attempt with the same credentials now.
    TimedOut,
    /// The job waits for the user to answer a multi-factor challenge (its `mfa-challenge` step
    /// is in progress): it cannot go on without them, so following stops here rather than at the
    /// deadline. Show [`MfaChallenge::prompts`] (and `description`) to the user, send their
    /// answers **once** with `jobs().answer_mfa` before
    /// [`MfaChallenge::expires_at`], then `wait` again.
    MfaRequired(MfaChallenge),
}

/// The result of `jobs().wait`: how the job ended, its last snapshot, the
/// step changes seen, and the ids to log with it (Basiq support asks for userId, connectionId and
/// jobId).
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use]
pub struct JobReport {
    /// How it ended.
    pub outcome: WaitOutcome,
    /// The last snapshot fetched.
    pub job: Job,
    /// `userId`, `connectionId` (from `links.source`) and `jobId`.
    pub context: ErrorContext,
    /// Every step change observed, in order.
    pub events: Vec<StepEvent>,
    /// How many times the job was fetched.
    pub polls: u64,
    /// How long was spent waiting between fetches.
    pub waited: Duration,
}

impl JobReport {
    /// `stopped`: the poller's last step ([`PollStep::Wait`] means "stopped at the deadline");
    /// `connectors`: their health, for a failure ([`Job::diagnose_with`]).
    pub(crate) fn new(
        job: Job,
        stopped: PollStep,
        kind: JobKind,
        connectors: &[ConnectorStatusView],
        events: Vec<StepEvent>,
        polls: u64,
        waited: Duration,
    ) -> Self {
        let outcome = match stopped {
            PollStep::TimedOut | PollStep::Wait(_) => WaitOutcome::TimedOut,
            PollStep::MfaRequired(challenge) => WaitOutcome::MfaRequired(challenge),
            PollStep::Done(JobOutcome::Succeeded) => WaitOutcome::Succeeded,
            PollStep::Done(JobOutcome::Failed { .. }) => {
                match job.diagnose_with(kind, connectors) {
                    Some(diagnosis) => WaitOutcome::Failed(Box::new(diagnosis)),
                    // `observe` and `diagnose` read the same steps; this cannot disagree, but a
                    // timed-out answer is the safe one if it ever did.
                    None => WaitOutcome::TimedOut,
                }
            }
        };
        let context = job_context(&job);
        Self {
            outcome,
            job,
            context,
            events,
            polls,
            waited,
        }
    }

    /// Whether every step succeeded.
    pub fn is_success(&self) -> bool {
        self.outcome == WaitOutcome::Succeeded
    }

    /// The failure, classified with its recommended action, when a step failed.
    pub fn diagnosis(&self) -> Option<&Diagnosis> {
        match &self.outcome {
            WaitOutcome::Failed(d) => Some(d),
            _ => None,
        }
    }

    /// The challenge the job waits on, when following stopped for one
    /// ([`WaitOutcome::MfaRequired`]).
    pub fn mfa_challenge(&self) -> Option<&MfaChallenge> {
        match &self.outcome {
            WaitOutcome::MfaRequired(challenge) => Some(challenge),
            _ => None,
        }
    }

    /// The job id.
    pub fn job_id(&self) -> &JobId {
        &self.job.id
    }

    /// The connection the job worked on (from `links.source`).
    pub fn connection_id(&self) -> Option<&ConnectionId> {
        self.context.connection_id.as_ref()
    }

    /// For a report job (`reports().create`): the id of the report it built, the last segment of
    /// its successful `create-report` step's result URL (`/reports/{id}`); `None` until then.
    pub fn report_id(&self) -> Option<&str> {
        self.job
            .steps
            .iter()
            .find(|s| s.title == StepTitle::CreateReport && s.status == StepStatus::Success)
            .and_then(|s| s.result.as_ref()?.url.as_deref())
            .and_then(|url| {
                url.split(['?', '#'])
                    .next()?
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
            })
            .filter(|id| !id.is_empty())
    }
}

impl fmt::Display for JobReport {
    /// One log line: how the job ended, the action for a failure, and the ids —
    /// `job 5e1f… failed at verify-credentials: invalid-credentials — … ; ask the user to … [userId=…, connectionId=…, jobId=…]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            WaitOutcome::Succeeded => write!(f, "job {} succeeded", self.job.id)?,
            WaitOutcome::Failed(d) => write!(
                f,
                "job {} failed at {}: {}; {}",
                self.job.id, d.step, d.failure, d.action
            )?,
            WaitOutcome::TimedOut => write!(
                f,
                "job {} still running after {} polls; check it again later",
                self.job.id, self.polls
            )?,
            WaitOutcome::MfaRequired(c) => write!(
                f,
                "job {} waits for the user to answer a {} challenge ({} prompt{}); answer it once, \
                 then follow the job again",
                self.job.id,
                c.method,
                c.prompts.len(),
                if c.prompts.len() == 1 { "" } else { "s" }
            )?,
        }
        write!(f, " [{}]", self.context)
    }
}

/// The ids a job snapshot carries (`userId`, `connectionId` from `links.source`, `jobId`).
pub fn job_context(job: &Job) -> ErrorContext {
    let mut ctx = ErrorContext::new().with_job(&job.id);
    if let Some(user) = job.user_id() {
        ctx = ctx.with_user(&user);
    }
    if let Some(conn) = job.connection_id() {
        ctx = ctx.with_connection(&conn);
    }
    ctx
}

/// Whether a job failure of this class needs the operator (contact Basiq support, fix the
/// integration) rather than the end user or a later retry.
pub(crate) fn operator_must_act(class: &FailureClass) -> bool {
    // Permanent, Unknown, and any class added later.
    !matches!(
        class,
        FailureClass::UserActionRequired(_)
            | FailureClass::Transient { .. }
            | FailureClass::ServerManagedRetry { .. }
            | FailureClass::InstitutionOutage
            | FailureClass::FileProblem
    )
}

/// Logs how a followed job ended, with the ids (never a token).
pub(crate) fn log_report(report: &JobReport) {
    let ctx = &report.context;
    let user_id = ctx.user_id.as_ref().map(UserId::as_str);
    let connection_id = ctx.connection_id.as_ref().map(ConnectionId::as_str);
    match &report.outcome {
        WaitOutcome::Succeeded => tracing::info!(
            job_id = %report.job.id, user_id, connection_id, polls = report.polls,
            "job succeeded"
        ),
        // The level says who must act: the operator (WARN) only for failures nobody else fixes;
        // a wrong password, a bank outage or a bad upload is the user's or time's (INFO).
        WaitOutcome::Failed(d) if operator_must_act(&d.class) => tracing::warn!(
            job_id = %report.job.id, user_id, connection_id, step = %d.step,
            code = d.failure.code.as_str(), action = %d.action,
            "job failed"
        ),
        WaitOutcome::Failed(d) => tracing::info!(
            job_id = %report.job.id, user_id, connection_id, step = %d.step,
            code = d.failure.code.as_str(), action = %d.action,
            "job failed"
        ),
        WaitOutcome::TimedOut => tracing::warn!(
            job_id = %report.job.id, user_id, connection_id, polls = report.polls,
            "stopped following a job that is still running"
        ),
        // The prompts are the bank's questions, not secrets, but only their number is logged.
        WaitOutcome::MfaRequired(c) => tracing::info!(
            job_id = %report.job.id, user_id, connection_id, method = c.method.as_str(),
            prompts = c.prompts.len(), expires_at = c.expires_at.map(tracing::field::display),
            "job waits for the user's answer to a multi-factor challenge"
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Progress events and the state machine
// ---------------------------------------------------------------------------------------------

/// Something that happened to a followed job, as it happened.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum JobProgress {
    /// A step started (`in-progress`), e.g. `retrieve-accounts` after the login was verified.
    StepStarted {
        /// The step.
        title: StepTitle,
    },
    /// A step succeeded.
    StepSucceeded {
        /// The step.
        title: StepTitle,
    },
    /// A step failed: the job has failed ([`Finished`](Self::Finished) follows with the
    /// diagnosis).
    StepFailed {
        /// The step.
        title: StepTitle,
        /// Basiq's code, title and detail.
        failure: StepFailure,
    },
    /// The job waits for the user's answer to a multi-factor challenge; following stops here
    /// ([`Finished`](Self::Finished) follows with [`WaitOutcome::MfaRequired`]).
    MfaRequired(MfaChallenge),
    /// Following ended: how, with the last snapshot and the ids. Always the last event.
    Finished(Box<JobReport>),
}

impl JobProgress {
    /// The report, when this is the last event.
    pub fn report(&self) -> Option<&JobReport> {
        match self {
            Self::Finished(report) => Some(report),
            _ => None,
        }
    }

    fn from_step(event: &StepEvent, job: &Job) -> Option<Self> {
        let title = event.title.clone();
        match event.to {
            StepStatus::InProgress => Some(Self::StepStarted { title }),
            StepStatus::Success => Some(Self::StepSucceeded { title }),
            StepStatus::Failed => {
                let result = job.step(title.clone()).and_then(|s| s.result.as_ref());
                Some(Self::StepFailed {
                    title,
                    failure: StepFailure::from_result(result),
                })
            }
            StepStatus::Pending | StepStatus::Other(_) => None,
        }
    }
}

/// What [`JobFollow::next_step`] asks its driver to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum FollowStep {
    /// Execute `GET /jobs/{id}` and feed the answer to [`JobFollow::on_job`].
    Fetch(GetJob),
    /// The job failed: execute this `/connectors` request and feed the answer to
    /// [`JobFollow::on_connectors`].
    Connectors(ListConnectors),
    /// Wait this long (the client's sleep), then call [`JobFollow::slept`].
    Sleep(Duration),
    /// Hand this event to the caller.
    Progress(JobProgress),
    /// Nothing more to do.
    Done,
}

#[derive(Debug)]
enum State {
    Fetch,
    Sleep(Duration),
    Connectors {
        job: Box<Job>,
        stopped: PollStep,
        op: ListConnectors,
    },
    /// Waiting for the answer to the step handed out.
    Awaiting(Awaiting),
    Done,
}

#[derive(Debug)]
enum Awaiting {
    Job,
    Sleep,
    Connectors { job: Box<Job>, stopped: PollStep },
}

/// Following one job (see the [module docs](self)).
///
/// ```
/// use basiq_core::flows::follow::{FollowStep, JobFollow, JobProgress};
/// use basiq_core::policy::jobs::{JobKind, PollConfig};
///
/// let now = time::macros::datetime!(2026-01-05 10:00 UTC);
/// let job_id = basiq_core::id::JobId::new("j1").unwrap();
/// let mut follow = JobFollow::new(job_id, JobKind::Unknown, PollConfig::new(), now);
/// assert!(matches!(follow.next_step(), FollowStep::Fetch(_)));
/// let job = serde_json::from_str(r#"{"id": "j1", "steps": [
///     {"title": "verify-credentials", "status": "success"},
///     {"title": "retrieve-accounts", "status": "success"}]}"#).unwrap();
/// follow.on_job(Ok(job), now).unwrap();
/// let mut events = Vec::new();
/// while let FollowStep::Progress(event) = follow.next_step() {
///     events.push(event);
/// }
/// assert!(matches!(events[0], JobProgress::StepSucceeded { .. }));
/// assert!(events.last().unwrap().report().unwrap().is_success());
/// ```
#[derive(Debug)]
pub struct JobFollow {
    job_id: JobId,
    kind: JobKind,
    deadline: Duration,
    poller: JobPoller,
    waited: Duration,
    context: ErrorContext,
    events: Vec<StepEvent>,
    pending: VecDeque<JobProgress>,
    state: State,
}

impl JobFollow {
    /// Follows `job_id` from `now`, pacing polls by `config`; a failure is classified as a job of
    /// `kind`.
    pub fn new(job_id: JobId, kind: JobKind, config: PollConfig, now: OffsetDateTime) -> Self {
        Self {
            context: ErrorContext::new().with_job(&job_id),
            job_id,
            kind,
            deadline: config.deadline,
            poller: JobPoller::new(now, config),
            waited: Duration::ZERO,
            events: Vec::new(),
            pending: VecDeque::new(),
            state: State::Fetch,
        }
    }

    /// What to do next: progress events first, in order, then the next request or wait.
    pub fn next_step(&mut self) -> FollowStep {
        if let Some(event) = self.pending.pop_front() {
            return FollowStep::Progress(event);
        }
        match std::mem::replace(&mut self.state, State::Done) {
            State::Fetch => {
                self.state = State::Awaiting(Awaiting::Job);
                FollowStep::Fetch(GetJob::new(self.job_id.clone()))
            }
            State::Sleep(d) => {
                self.state = State::Awaiting(Awaiting::Sleep);
                FollowStep::Sleep(d)
            }
            State::Connectors { job, stopped, op } => {
                self.state = State::Awaiting(Awaiting::Connectors { job, stopped });
                FollowStep::Connectors(op)
            }
            // Asked again without an answer: nothing sensible to hand out.
            State::Awaiting(_) | State::Done => FollowStep::Done,
        }
    }

    /// Feeds the job snapshot fetched at `now`. An error ends the follow and comes back with
    /// the ids known so far.
    pub fn on_job(&mut self, job: Result<Job, Error>, now: OffsetDateTime) -> Result<(), Error> {
        let job = match job {
            Ok(job) => job,
            Err(error) => {
                self.state = State::Done;
                return Err(error.with_context(&self.context));
            }
        };
        if self.context.user_id.is_none() || self.context.connection_id.is_none() {
            self.context = job_context(&job).merge(&self.context);
        }
        let step = self.poller.observe(&job, now);
        for event in self.poller.events() {
            tracing::debug!(
                job_id = %job.id,
                step = %event.title,
                from = event.from.as_ref().map(|s| s.as_str()),
                to = %event.to,
                "job step changed"
            );
            self.events.push(event.clone());
            if let Some(progress) = JobProgress::from_step(event, &job) {
                self.pending.push_back(progress);
            }
        }
        match step {
            // Also bounded by the time actually waited, so a clock that does not move (a manual
            // clock nobody advances) cannot keep the follow going forever.
            PollStep::Wait(d) if self.waited < self.deadline => self.state = State::Sleep(d),
            PollStep::Done(JobOutcome::Failed { .. }) => {
                match connectors_for_failures(std::slice::from_ref(&job)) {
                    Some(op) => {
                        self.state = State::Connectors {
                            job: Box::new(job),
                            stopped: step,
                            op,
                        }
                    }
                    None => self.finish(job, step, &[]),
                }
            }
            stopped => {
                if let PollStep::MfaRequired(challenge) = &stopped {
                    self.pending
                        .push_back(JobProgress::MfaRequired(challenge.clone()));
                }
                self.finish(job, stopped, &[]);
            }
        }
        Ok(())
    }

    /// Feeds `/connectors`' answer for a failed job. If it could not be read, the failure is
    /// classified by its code only (a warning is logged).
    pub fn on_connectors(&mut self, connectors: Result<ConnectorList, Error>) {
        let State::Awaiting(Awaiting::Connectors { job, stopped }) =
            std::mem::replace(&mut self.state, State::Done)
        else {
            return;
        };
        let views: Vec<ConnectorStatusView> = match connectors {
            Ok(list) => list.data.iter().map(ConnectorStatusView::from).collect(),
            Err(error) => {
                tracing::warn!(
                    job_id = %self.job_id,
                    %error,
                    "could not read /connectors; classifying the failure by its code only"
                );
                Vec::new()
            }
        };
        self.finish(*job, stopped, &views);
    }

    /// The wait of [`FollowStep::Sleep`] is over.
    pub fn slept(&mut self, waited: Duration) {
        if matches!(self.state, State::Awaiting(Awaiting::Sleep)) {
            self.waited = self.waited.saturating_add(waited);
            self.state = State::Fetch;
        }
    }

    /// The ids learned so far (the user and connection once a snapshot named them).
    pub fn context(&self) -> &ErrorContext {
        &self.context
    }

    /// Whether the follow is over (every event handed out).
    pub fn is_done(&self) -> bool {
        self.pending.is_empty() && matches!(self.state, State::Done)
    }

    fn finish(&mut self, job: Job, stopped: PollStep, connectors: &[ConnectorStatusView]) {
        let report = JobReport::new(
            job,
            stopped,
            self.kind,
            connectors,
            std::mem::take(&mut self.events),
            self.poller.observations(),
            self.waited,
        );
        log_report(&report);
        self.pending
            .push_back(JobProgress::Finished(Box::new(report)));
        self.state = State::Done;
    }
}

#[cfg(test)]
mod tests;
