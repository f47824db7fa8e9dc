//! Jobs: reading them, following them, and turning their failures into actions.
//!
//! Basiq runs every connection and refresh as a *job* whose *steps* (`verify-credentials`,
//! `retrieve-accounts`, …) progress asynchronously (basiq-api.md §4). Its guides ask integrators to
//! follow progress through the steps, to treat a failed job as something to act on, and to check
//! each user's jobs daily and at login. This module holds the pure parts:
//!
//! * helpers on [`Job`]: [`Job::step`] (by *title*, never by index — the official SDKs' hard-coded
//!   `steps[0]`/`steps[2]` break when `mfa-challenge` is inserted), [`Job::state`],
//!   [`Job::connection_id`], [`Job::user_id`];
//! * the failure taxonomy: [`JobFailureCode`], [`classify`] → [`FailureClass`],
//!   [`recommend`] → [`RecommendedAction`];
//! * [`JobPoller`], a state machine that says how long to wait before the next `GET /jobs/{id}`,
//!   and stops with [`PollStep::MfaRequired`] when the job waits for the user's answer to a
//!   multi-factor challenge ([`Job::mfa_challenge`] → [`MfaChallenge`]);
//! * [`triage_user`], the daily / at-login check that lists failures not fixed since.
//!
//! ```
//! use basiq_core::policy::jobs::{JobKind, JobState, RecommendedAction};
//! use basiq_core::api::models::{Job, StepTitle};
//!
//! let job: Job = serde_json::from_str(r#"{
//!   "type": "job", "id": "f1a2b3c4",
//!   "steps": [
//!     {"title": "verify-credentials", "status": "failed",
//!      "result": {"code": "invalid-credentials", "title": "Cannot login to target institution, check credentials."}},
//!     {"title": "retrieve-accounts", "status": "pending", "result": null}
//!   ],
//!   "links": {"source": "https://au-api.basiq.io/users/ea3a81/connections/aaaf2c3b"}
//! }"#)?;
//! assert!(job.state().is_done());
//! assert_eq!(job.step(StepTitle::RetrieveAccounts).map(|s| s.status.as_str()), Some("pending"));
//! let diagnosis = job.diagnose(JobKind::Refresh).expect("the job failed");
//! assert!(matches!(diagnosis.action, RecommendedAction::ReenterCredentials { .. }));
//! assert!(diagnosis.action.to_string().contains("connectionId=aaaf2c3b"));
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

use crate::api::models::{Job, JobStep, JobType, StepResult, StepStatus, StepTitle};
use crate::id::{ConnectionId, JobId, UserId};
use crate::open_enum::open_enum;
use crate::policy::connectors::{status_of, ConnectorStatus, ConnectorStatusView};
use crate::time_util;

// ---------------------------------------------------------------------------------------------
// Reading a job
// ---------------------------------------------------------------------------------------------

/// Where a job is, derived from its steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// No step has started (or Basiq sent no steps yet).
    Pending,
    /// Some step has started; none has failed; not all have succeeded.
    Running,
    /// Every step succeeded.
    Succeeded,
    /// A step failed; Basiq stops there (later steps stay `pending`).
    Failed {
        /// The step that failed.
        step: StepTitle,
        /// What Basiq said about it.
        failure: StepFailure,
    },
}

impl JobState {
    /// Whether the job is finished: all steps succeeded, or one failed (basiq-api.md §4.2).
    pub fn is_done(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed { .. })
    }
}

/// A failed step's `{code, title, detail}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    /// The failure code; `Other("")` when Basiq sent none.
    pub code: JobFailureCode,
    /// Short summary, e.g. "Cannot login to target institution, check credentials."
    pub title: Option<String>,
    /// Details (Basiq's `detail` or `details`).
    pub detail: Option<String>,
}

impl StepFailure {
    /// Reads a failed step's result (a missing result gives an empty code).
    pub fn from_result(result: Option<&StepResult>) -> Self {
        Self {
            code: result.and_then(|r| r.code.as_deref()).map_or_else(
                || JobFailureCode::Other(String::new()),
                JobFailureCode::from,
            ),
            title: result.and_then(|r| r.title.clone()),
            detail: result.and_then(|r| r.detail.clone()),
        }
    }
}

impl fmt::Display for StepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.code.as_str();
        f.write_str(if code.is_empty() { "(no code)" } else { code })?;
        if let Some(title) = &self.title {
            write!(f, " — {title}")?;
        }
        if let Some(detail) = self
            .detail
            .as_deref()
            .filter(|d| Some(*d) != self.title.as_deref())
        {
            write!(f, " — {detail}")?;
        }
        Ok(())
    }
}

/// The path segment following `name` in `url` (query and fragment ignored).
fn segment_after<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    while let Some(seg) = segments.next() {
        if seg == name {
            return segments.next();
        }
    }
    None
}

impl Job {
    /// The step with this title, wherever Basiq put it. Never index steps: `mfa-challenge`
    /// appears between verify and retrieve on MFA institutions.
    pub fn step(&self, title: StepTitle) -> Option<&JobStep> {
        self.steps.iter().find(|s| s.title == title)
    }

    /// Where the job is: done when all steps succeeded or any failed (basiq-api.md §4.2).
    pub fn state(&self) -> JobState {
        if let Some(failed) = self.steps.iter().find(|s| s.status == StepStatus::Failed) {
            return JobState::Failed {
                step: failed.title.clone(),
                failure: StepFailure::from_result(failed.result.as_ref()),
            };
        }
        if !self.steps.is_empty() && self.steps.iter().all(|s| s.status == StepStatus::Success) {
            return JobState::Succeeded;
        }
        if self.steps.iter().any(|s| s.status != StepStatus::Pending) {
            JobState::Running
        } else {
            JobState::Pending
        }
    }

    /// The connection the job works on: the segment after `connections/` in `links.source`
    /// (`…/users/{userId}/connections/{connectionId}`), validated. `None` when absent (statement
    /// jobs, some in-progress jobs) or not a valid id.
    pub fn connection_id(&self) -> Option<ConnectionId> {
        let source = self.links.as_ref()?.source.as_deref()?;
        ConnectionId::new(segment_after(source, "connections")?).ok()
    }

    /// The user the job belongs to, from `links.source` (`/users/{userId}/…`) or `links.user`.
    pub fn user_id(&self) -> Option<UserId> {
        let links = self.links.as_ref()?;
        [links.source.as_deref(), links.user.as_deref()]
            .into_iter()
            .flatten()
            .find_map(|url| UserId::new(segment_after(url, "users")?).ok())
    }

    /// The institution id, e.g. `AU00000`, when Basiq included it.
    pub fn institution_id(&self) -> Option<&str> {
        self.institution
            .as_ref()
            .map(|i| i.id.as_str())
            .filter(|id| !id.is_empty())
    }

    /// The latest time Basiq reports for the job (`updated`, else `created`).
    pub fn last_change(&self) -> Option<OffsetDateTime> {
        self.updated.or(self.created)
    }

    /// The multi-factor challenge the job is waiting on: its `mfa-challenge` step is
    /// `in-progress` and carries a challenge result (`{type:"mfa", method, description,
    /// input, expiryMs}`, basiq-api.md §4.2). `None` otherwise — no such step, not yet started,
    /// already answered, failed, or no challenge attached yet. Answer it with
    /// [`AnswerJobMfa`](crate::api::mfa::AnswerJobMfa) (`client.jobs().answer_mfa(..)`).
    pub fn mfa_challenge(&self) -> Option<MfaChallenge> {
        let step = self.step(StepTitle::MfaChallenge)?;
        if step.status != StepStatus::InProgress {
            return None;
        }
        let result = step.result.as_ref()?;
        let is_challenge = match result.kind.as_deref() {
            Some(kind) => kind == "mfa",
            None => result.method.is_some() || !result.input.is_empty(),
        };
        if !is_challenge || result.code.is_some() {
            return None;
        }
        let expires_at = match (result.expiry_ms, self.updated) {
            (Some(ms), Some(updated)) => Some(time_util::add(updated, Duration::from_millis(ms))),
            _ => None,
        };
        Some(MfaChallenge {
            job_id: self.id.clone(),
            method: result
                .method
                .as_deref()
                .map_or_else(|| MfaMethod::Other(String::new()), MfaMethod::from),
            description: result.description.clone().filter(|d| !d.is_empty()),
            prompts: result.input.clone(),
            expires_at,
        })
    }

    /// The failure, classified, with the action to take — `None` unless the job failed.
    ///
    /// Classified by Basiq's code only; [`diagnose_with`](Self::diagnose_with) also weighs the
    /// connector's health, as `jobs().wait` and the daily triage do.
    pub fn diagnose(&self, kind: JobKind) -> Option<Diagnosis> {
        self.diagnose_with(kind, &[])
    }

    /// [`diagnose`](Self::diagnose) against `/connectors`: a retryable or unknown failure at an
    /// institution whose connector is in `partial-outage`/`major-outage` is
    /// [`FailureClass::InstitutionOutage`] (their end: wait for the connector), the same verdict
    /// [`triage_user`] gives for the same job.
    pub fn diagnose_with(
        &self,
        kind: JobKind,
        connectors: &[ConnectorStatusView],
    ) -> Option<Diagnosis> {
        let JobState::Failed { step, failure } = self.state() else {
            return None;
        };
        let class = weigh_connector_health(
            classify(&step, &failure.code, kind),
            self.institution_id(),
            connectors,
        );
        let action = recommend(&class, &failure.code, &ActionContext::from_job(self));
        Some(Diagnosis {
            job_id: self.id.clone(),
            step,
            failure,
            class,
            action,
        })
    }
}

open_enum!(
    /// How the bank challenges the user (`result.method` of an `mfa-challenge` step).
    MfaMethod {
        /// A one-time code sent to the user's device (one prompt, e.g. `OTP Password`).
        Token => "token",
        /// One or more security questions (one prompt per question).
        SecurityQuestions => "security-questions",
    }
);

/// A multi-factor challenge a job is waiting on ([`Job::mfa_challenge`]): show the prompts to
/// the user, then send one answer per prompt, in order, with
/// [`AnswerJobMfa`](crate::api::mfa::AnswerJobMfa). Answer each challenge **once**: a wrong answer
/// fails the job (`invalid-credentials`) and repeated attempts can lock the user's bank account.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MfaChallenge {
    /// The job waiting for the answer.
    pub job_id: JobId,
    /// One-time code or security questions; `Other("")` when Basiq sent none.
    pub method: MfaMethod,
    /// What the bank asks, to show to the user (e.g. "Please enter the one-time password sent
    /// to your device").
    pub description: Option<String>,
    /// The prompts (`input`), one answer expected per prompt, in this order.
    pub prompts: Vec<String>,
    /// When the challenge stops accepting an answer: the job's `updated` time plus `expiryMs`.
    /// Basiq's `expiryMs` counts down (as the emulator's does) while `updated` is when the
    /// challenge was raised, so this is never later than the real expiry. `None` when either is
    /// missing. An unanswered challenge fails the job (the emulator says `user-action-required`).
    pub expires_at: Option<OffsetDateTime>,
}

impl Diagnosis {
    /// A diagnosis of `job_id`'s failed `step` (usually from [`Job::diagnose_with`]; this is for
    /// an app's own tests and tables).
    pub fn new(
        job_id: JobId,
        step: StepTitle,
        failure: StepFailure,
        class: FailureClass,
        action: RecommendedAction,
    ) -> Self {
        Self {
            job_id,
            step,
            failure,
            class,
            action,
        }
    }
}

impl MfaChallenge {
    /// Time left at `now` to answer, `None` when unknown; zero once expired.
    pub fn time_left(&self, now: OffsetDateTime) -> Option<Duration> {
        self.expires_at.map(|at| time_util::since(at, now))
    }
}

/// A failed job, explained. `Display` is the end user's text; [`Diagnosis::operator_text`] the
/// log line with the ids.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct Diagnosis {
    /// The job.
    pub job_id: JobId,
    /// The failed step.
    pub step: StepTitle,
    /// Basiq's failure.
    pub failure: StepFailure,
    /// What kind of failure it is.
    pub class: FailureClass,
    /// What to do about it.
    pub action: RecommendedAction,
}

// ---------------------------------------------------------------------------------------------
// Failure taxonomy
// ---------------------------------------------------------------------------------------------

open_enum!(
    /// A failed step's `result.code`: every code of Basiq's `JobsResult.code` enum and the codes
    /// seen in its examples and guides but missing from the enum (basiq-api.md §4.3 A and B). The enum
    /// is not closed, so unknown codes are kept as `Other`.
    JobFailureCode {
        /// Not a failure (listed in the enum; a failed step should never carry it).
        Success => "success",
        /// The user must do something at their bank.
        UserActionRequired => "user-action-required",
        /// Basiq or the institution is temporarily unavailable.
        SystemUnavailable => "system-unavailable",
        /// Maintenance.
        Maintenance => "maintenance",
        /// The connector failed.
        ConnectorError => "connector-error",
        /// The institution does not exist.
        InstitutionNotFound => "institution-not-found",
        /// The institution cannot be reached right now.
        InstitutionNotAvailable => "institution-not-available",
        /// The institution is disabled (temporarily).
        InstitutionDisabled => "institution-disabled",
        /// Uploaded file: a required column is missing.
        MissingRequiredField => "missing-required-field",
        /// Uploaded file: a required value is missing.
        MissingRequiredFieldValue => "missing-required-field-value",
        /// Uploaded file: a value is invalid.
        InvalidFieldValue => "invalid-field-value",
        /// Uploaded file: a CSV row is invalid.
        InvalidCsvRow => "invalid-csv-row",
        /// Uploaded file: too many rows.
        RowCountExceeded => "row-count-exceeded",
        /// Uploaded file: the account data differs from what Basiq has.
        AccountDataDiffers => "account-data-differs",
        /// Uploaded file: empty.
        EmptyFile => "empty-file",
        /// Uploaded statement: invalid.
        BankStatementInvalid => "bank-statement-invalid",
        /// Uploaded statement: a product Basiq does not know yet.
        BankStatementNewProduct => "bank-statement-new-product",
        /// Uploaded statement: could not be parsed.
        BankStatementParsingError => "bank-statement-parsing-error",
        /// Uploaded statement: not supported.
        BankStatementNotSupported => "bank-statement-not-supported",
        /// A transaction is dated after the data's last-updated date.
        TxnAfterLastUpdatedDate => "txn-after-last-updated-date",
        /// The connection is invalid.
        InvalidConnection => "invalid-connection",
        /// Basiq does not know what went wrong.
        UnknownError => "unknown-error",
        /// The job took too long.
        JobTimedOut => "job-timed-out",
        /// Consent UI / open banking: the bank refused the authorisation (`access_denied`).
        AuthorizationFailed => "authorization-failed",
        /// Cannot log in with these credentials (wrong, locked account, MFA).
        InvalidCredentials => "invalid-credentials",
        /// The bank shows a popup or new terms the user must accept in internet banking.
        AccountNotAccessibleRequiresUserAction => "account-not-accessible-requires-user-action",
        /// Basiq's service is unavailable.
        ServiceUnavailable => "service-unavailable",
        /// Maintenance (v2 error table).
        MaintenanceError => "maintenance-error",
    }
);

impl JobFailureCode {
    /// Every documented code, for exhaustive tests and tables.
    pub const DOCUMENTED: [&'static str; 28] = [
        "success",
        "user-action-required",
        "system-unavailable",
        "maintenance",
        "connector-error",
        "institution-not-found",
        "institution-not-available",
        "institution-disabled",
        "missing-required-field",
        "missing-required-field-value",
        "invalid-field-value",
        "invalid-csv-row",
        "row-count-exceeded",
        "account-data-differs",
        "empty-file",
        "bank-statement-invalid",
        "bank-statement-new-product",
        "bank-statement-parsing-error",
        "bank-statement-not-supported",
        "txn-after-last-updated-date",
        "invalid-connection",
        "unknown-error",
        "job-timed-out",
        "authorization-failed",
        "invalid-credentials",
        "account-not-accessible-requires-user-action",
        "service-unavailable",
        "maintenance-error",
    ];
}

/// What started the job. Basiq's advice for the same code differs between the two (basiq-api.md §4.3 C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// A new connection, a credential update or a reauthorisation (all go through the Consent UI).
    Create,
    /// A refresh of an existing connection.
    Refresh,
    /// Not known (e.g. a job read from the user's job list).
    Unknown,
}

/// Something only the end user can do.
///
/// Like [`FailureClass`], [`RecommendedAction`], [`SkipReason`](crate::policy::refresh::SkipReason) and
/// [`GiveUpReason`](crate::policy::retry::GiveUpReason), this grows as Basiq documents more cases, so it
/// is `#[non_exhaustive]`: a `match` needs a fallback arm.
///
/// ```
/// use basiq_core::policy::jobs::UserAction;
/// fn show(action: UserAction) -> &'static str {
///     match action {
///         UserAction::ReenterCredentials { .. } | UserAction::Reauthorise => "log in again",
///         UserAction::CompleteMfa => "answer the bank's challenge",
///         UserAction::ClearBankPopupOrTerms | UserAction::ResolveAtInstitution => "visit the bank",
///         UserAction::Reconnect => "connect again",
///         _ => "see the details",
///     }
/// }
/// assert_eq!(show(UserAction::CompleteMfa), "answer the bank's challenge");
/// ```
///
/// ```compile_fail,E0004
/// use basiq_core::policy::jobs::UserAction;
/// fn show(action: UserAction) -> &'static str {
///     match action {
///         UserAction::ReenterCredentials { .. } | UserAction::Reauthorise => "log in again",
///         UserAction::CompleteMfa => "answer the bank's challenge",
///         UserAction::ClearBankPopupOrTerms | UserAction::ResolveAtInstitution => "visit the bank",
///         UserAction::Reconnect => "connect again",
///     }
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UserAction {
    /// Log in again through the Consent UI. On refresh, Basiq says the user probably changed
    /// their password.
    ReenterCredentials {
        /// Whether the failure came from a refresh (so the password probably changed).
        password_probably_changed: bool,
    },
    /// Answer the bank's multi-factor challenge (again).
    CompleteMfa,
    /// Log in to internet banking and clear a popup or accept new terms, then refresh.
    ClearBankPopupOrTerms,
    /// Log in to internet banking and resolve whatever the bank asks.
    ResolveAtInstitution,
    /// Re-authorise the open-banking consent through the Consent UI.
    Reauthorise,
    /// Connect the institution again through the Consent UI.
    Reconnect,
}

/// What kind of failure a failed step is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureClass {
    /// Only the end user can fix it.
    UserActionRequired(UserAction),
    /// Retry later; nothing is wrong with the request or the user.
    Transient {
        /// How long to wait first (Basiq: 10 minutes for `service-unavailable`).
        retry_after: Duration,
    },
    /// Basiq retries this job itself (`service-unavailable` on create/update: every 2 h for up
    /// to 7 days); poll the job at long intervals, do not start another.
    ServerManagedRetry {
        /// How often Basiq retries.
        every: Duration,
        /// For how long.
        for_up_to: Duration,
    },
    /// The institution is down at its end: retry when its connector is operational.
    InstitutionOutage,
    /// An uploaded statement / CSV is wrong: fix the file and upload again.
    FileProblem,
    /// Trying again will not help and the user cannot fix it (e.g. `institution-not-found`).
    Permanent,
    /// A code we cannot classify: log it with the ids and contact support.
    Unknown,
}

impl FailureClass {
    /// Whether retrying later (without anyone changing anything) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Transient { .. } | Self::ServerManagedRetry { .. } | Self::InstitutionOutage
        )
    }
}

/// A failure's class seen against the connectors' health: a retryable or unknown failure at an
/// institution `/connectors` reports in `partial-outage`/`major-outage` is
/// [`FailureClass::InstitutionOutage`] — their end, not the user's. Any other class (a wrong
/// password stays a wrong password) and any failure without an institution is kept. The one rule
/// [`Job::diagnose_with`] (following a job) and [`triage_user`] (the daily check) share, so both
/// give one verdict per failure.
pub fn weigh_connector_health(
    class: FailureClass,
    institution: Option<&str>,
    connectors: &[ConnectorStatusView],
) -> FailureClass {
    let outage = institution
        .and_then(|i| status_of(connectors, i, None))
        .is_some_and(ConnectorStatus::is_outage);
    if outage && (class.is_retryable() || class == FailureClass::Unknown) {
        FailureClass::InstitutionOutage
    } else {
        class
    }
}

/// Basiq's advice: wait 10 minutes before retrying after `service-unavailable` (basiq-api.md §4.3 C).
pub const TRANSIENT_RETRY_AFTER: Duration = Duration::from_secs(10 * 60);
/// Basiq's own retry queue for `service-unavailable` on create/update: every 2 hours …
pub const SERVER_RETRY_EVERY: Duration = Duration::from_secs(2 * 60 * 60);
/// … for up to 7 days.
pub const SERVER_RETRY_FOR_UP_TO: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// After this many consecutive transient failures of one connection, escalate to Basiq support
/// (Basiq: "after a couple of failures, report the connectionId to support").
pub const ESCALATE_AFTER_FAILURES: u32 = 3;

/// Classifies a failed step. Total: every documented code has a class, anything else is
/// [`FailureClass::Unknown`]; never panics.
///
/// The mapping follows Basiq's handling-jobs guide where it speaks (invalid-credentials,
/// account-not-accessible-requires-user-action, service-unavailable) and the code names
/// elsewhere (basiq-api.md §4.3 — Basiq publishes no official mapping for the rest).
pub fn classify(step: &StepTitle, code: &JobFailureCode, kind: JobKind) -> FailureClass {
    use JobFailureCode as C;
    let transient = FailureClass::Transient {
        retry_after: TRANSIENT_RETRY_AFTER,
    };
    match code {
        C::InvalidCredentials => FailureClass::UserActionRequired(UserAction::ReenterCredentials {
            password_probably_changed: kind == JobKind::Refresh,
        }),
        C::AccountNotAccessibleRequiresUserAction => {
            FailureClass::UserActionRequired(UserAction::ClearBankPopupOrTerms)
        }
        C::UserActionRequired => FailureClass::UserActionRequired(UserAction::ResolveAtInstitution),
        C::AuthorizationFailed => FailureClass::UserActionRequired(UserAction::Reauthorise),
        C::InvalidConnection => FailureClass::UserActionRequired(UserAction::Reconnect),
        C::ServiceUnavailable if kind == JobKind::Create => FailureClass::ServerManagedRetry {
            every: SERVER_RETRY_EVERY,
            for_up_to: SERVER_RETRY_FOR_UP_TO,
        },
        C::ServiceUnavailable
        | C::SystemUnavailable
        | C::Maintenance
        | C::MaintenanceError
        | C::ConnectorError
        | C::JobTimedOut => transient,
        C::InstitutionNotAvailable | C::InstitutionDisabled => FailureClass::InstitutionOutage,
        C::InstitutionNotFound => FailureClass::Permanent,
        C::MissingRequiredField
        | C::MissingRequiredFieldValue
        | C::InvalidFieldValue
        | C::InvalidCsvRow
        | C::RowCountExceeded
        | C::AccountDataDiffers
        | C::EmptyFile
        | C::BankStatementInvalid
        | C::BankStatementNewProduct
        | C::BankStatementParsingError
        | C::BankStatementNotSupported
        | C::TxnAfterLastUpdatedDate => FailureClass::FileProblem,
        // An undocumented failure of the MFA step: the challenge was not answered in time or
        // wrongly; the user has to go through it again.
        C::Other(_) | C::UnknownError if *step == StepTitle::MfaChallenge => {
            FailureClass::UserActionRequired(UserAction::CompleteMfa)
        }
        C::UnknownError | C::Success | C::Other(_) => FailureClass::Unknown,
    }
}

/// The ids an action needs (the Consent UI takes a `connectionId`; support asks for all three).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionContext {
    /// The user.
    pub user_id: Option<UserId>,
    /// The connection.
    pub connection_id: Option<ConnectionId>,
    /// The job.
    pub job_id: Option<JobId>,
    /// The institution, e.g. `AU00000`.
    pub institution: Option<String>,
}

impl ActionContext {
    /// The ids a job carries.
    pub fn from_job(job: &Job) -> Self {
        Self {
            user_id: job.user_id(),
            connection_id: job.connection_id(),
            job_id: Some(job.id.clone()),
            institution: job.institution_id().map(str::to_owned),
        }
    }
}

/// What to do about a failed job, concretely enough to act on or show to an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecommendedAction {
    /// Send the user to the Consent UI for this connection (`action=update` for web,
    /// `reauthorise` for open banking, with `connectionId`) to re-enter credentials.
    ReenterCredentials {
        /// The connection to update.
        connection_id: Option<ConnectionId>,
        /// The failure came from a refresh: the user probably changed their password.
        password_probably_changed: bool,
    },
    /// Send the user to the Consent UI to reauthorise this open-banking connection.
    Reauthorise {
        /// The connection.
        connection_id: Option<ConnectionId>,
    },
    /// Send the user to the Consent UI to connect this institution again.
    Reconnect {
        /// The institution.
        institution: Option<String>,
    },
    /// Ask the user to log in to internet banking, clear the popup or accept new terms, then refresh.
    ClearBankPopupOrTerms {
        /// The connection to refresh afterwards.
        connection_id: Option<ConnectionId>,
    },
    /// Ask the user to log in to internet banking and resolve what the bank asks, then refresh.
    ResolveAtInstitution {
        /// The connection to refresh afterwards.
        connection_id: Option<ConnectionId>,
    },
    /// Ask the user to go through the bank's multi-factor challenge again.
    CompleteMfa {
        /// The connection.
        connection_id: Option<ConnectionId>,
    },
    /// The institution is down at its end: retry when `/connectors` says it is operational.
    WaitForConnector {
        /// The institution.
        institution: Option<String>,
    },
    /// Retry (refresh) after this long.
    RetryAfter(Duration),
    /// Basiq retries the job itself; poll it at long intervals and do not start another.
    AwaitServerRetry {
        /// How often Basiq retries.
        every: Duration,
        /// For how long.
        for_up_to: Duration,
    },
    /// The uploaded file is wrong: fix it and upload again.
    FixUploadedFile {
        /// Basiq's code, naming the problem.
        code: JobFailureCode,
    },
    /// Report to Basiq support with these ids.
    ContactSupport {
        /// The user.
        user_id: Option<UserId>,
        /// The connection.
        connection_id: Option<ConnectionId>,
        /// The job.
        job_id: Option<JobId>,
    },
}

/// The action for a classified failure.
pub fn recommend(
    class: &FailureClass,
    code: &JobFailureCode,
    ctx: &ActionContext,
) -> RecommendedAction {
    let connection_id = ctx.connection_id.clone();
    match class {
        FailureClass::UserActionRequired(action) => match action {
            UserAction::ReenterCredentials {
                password_probably_changed,
            } => RecommendedAction::ReenterCredentials {
                connection_id,
                password_probably_changed: *password_probably_changed,
            },
            UserAction::CompleteMfa => RecommendedAction::CompleteMfa { connection_id },
            UserAction::ClearBankPopupOrTerms => {
                RecommendedAction::ClearBankPopupOrTerms { connection_id }
            }
            UserAction::ResolveAtInstitution => {
                RecommendedAction::ResolveAtInstitution { connection_id }
            }
            UserAction::Reauthorise => RecommendedAction::Reauthorise { connection_id },
            UserAction::Reconnect => RecommendedAction::Reconnect {
                institution: ctx.institution.clone(),
            },
        },
        FailureClass::Transient { retry_after } => RecommendedAction::RetryAfter(*retry_after),
        FailureClass::ServerManagedRetry { every, for_up_to } => {
            RecommendedAction::AwaitServerRetry {
                every: *every,
                for_up_to: *for_up_to,
            }
        }
        FailureClass::InstitutionOutage => RecommendedAction::WaitForConnector {
            institution: ctx.institution.clone(),
        },
        FailureClass::FileProblem => RecommendedAction::FixUploadedFile { code: code.clone() },
        FailureClass::Permanent | FailureClass::Unknown => RecommendedAction::ContactSupport {
            user_id: ctx.user_id.clone(),
            connection_id,
            job_id: ctx.job_id.clone(),
        },
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 86_400 && s.is_multiple_of(86_400) {
        format!("{} d", s / 86_400)
    } else if s >= 3_600 && s.is_multiple_of(3_600) {
        format!("{} h", s / 3_600)
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{} s", s)
    }
}

fn conn(f: &mut fmt::Formatter<'_>, id: &Option<ConnectionId>) -> fmt::Result {
    match id {
        Some(id) => write!(f, " (connectionId={id})"),
        None => Ok(()),
    }
}

impl fmt::Display for RecommendedAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReenterCredentials {
                connection_id,
                password_probably_changed,
            } => {
                f.write_str(
                    "ask the user to re-enter their bank credentials in the Consent UI \
                     (action=update for web, reauthorise for open banking)",
                )?;
                conn(f, connection_id)?;
                if *password_probably_changed {
                    f.write_str("; they have probably changed their password")?;
                }
                Ok(())
            }
            Self::Reauthorise { connection_id } => {
                f.write_str("ask the user to reauthorise the connection in the Consent UI")?;
                conn(f, connection_id)
            }
            Self::Reconnect { institution } => {
                f.write_str("ask the user to connect the institution again in the Consent UI")?;
                match institution {
                    Some(i) => write!(f, " (institutionId={i})"),
                    None => Ok(()),
                }
            }
            Self::ClearBankPopupOrTerms { connection_id } => {
                f.write_str(
                    "ask the user to log in to their internet banking and clear the popup or \
                     accept the new terms, then refresh",
                )?;
                conn(f, connection_id)
            }
            Self::ResolveAtInstitution { connection_id } => {
                f.write_str(
                    "ask the user to log in to their internet banking and resolve what the bank \
                     asks, then refresh",
                )?;
                conn(f, connection_id)
            }
            Self::CompleteMfa { connection_id } => {
                f.write_str("ask the user to complete the bank's multi-factor challenge again")?;
                conn(f, connection_id)
            }
            Self::WaitForConnector { institution } => {
                f.write_str("their end: the institution")?;
                if let Some(i) = institution {
                    write!(f, " {i}")?;
                }
                f.write_str(" is unavailable; retry when its connector is operational")
            }
            Self::RetryAfter(d) => write!(f, "retry in {}", human(*d)),
            Self::AwaitServerRetry { every, for_up_to } => write!(
                f,
                "Basiq retries this job every {} for up to {}; poll it at long intervals, do not \
                 start another",
                human(*every),
                human(*for_up_to)
            ),
            Self::FixUploadedFile { code } => write!(
                f,
                "the uploaded statement is not usable ({code}); fix the file and upload it again"
            ),
            Self::ContactSupport {
                user_id,
                connection_id,
                job_id,
            } => {
                f.write_str("contact Basiq support with")?;
                let mut any = false;
                for (name, value) in [
                    ("userId", user_id.as_ref().map(UserId::as_str)),
                    (
                        "connectionId",
                        connection_id.as_ref().map(ConnectionId::as_str),
                    ),
                    ("jobId", job_id.as_ref().map(JobId::as_str)),
                ] {
                    if let Some(value) = value {
                        write!(f, "{} {name}={value}", if any { "," } else { "" })?;
                        any = true;
                    }
                }
                if !any {
                    f.write_str(" the job details")?;
                }
                Ok(())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Following a job
// ---------------------------------------------------------------------------------------------

/// The shortest wait a [`JobPoller`] asks for (except right before its deadline): a zero `first`
/// or `cap` must not turn following a job into a tight loop of `GET /jobs/{id}`.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How a [`JobPoller`] paces its `GET /jobs/{id}` calls. `first` and `cap` are raised to
/// [`MIN_POLL_INTERVAL`] when below it.
///
/// Fields may be added: build one from [`PollConfig::new`] (the default) and its setters.
///
/// ```
/// use std::time::Duration;
/// let config = basiq_core::policy::jobs::PollConfig::new().deadline(Duration::from_secs(30));
/// assert_eq!(config.deadline, Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
#[must_use]
pub struct PollConfig {
    /// The first wait. Connection jobs take 3–30 s, so 1 s catches fast ones quickly.
    pub first: Duration,
    /// Each wait is the previous one times this (values below 1 or not finite count as 1).
    pub factor: f64,
    /// The longest wait.
    pub cap: Duration,
    /// Give up following after this long (the job keeps running at Basiq).
    pub deadline: Duration,
}

impl Default for PollConfig {
    /// 1 s, ×1.5, capped at 10 s, for at most 5 minutes.
    fn default() -> Self {
        Self {
            first: Duration::from_secs(1),
            factor: 1.5,
            cap: Duration::from_secs(10),
            deadline: Duration::from_secs(5 * 60),
        }
    }
}

impl PollConfig {
    /// The default: 1 s, ×1.5, capped at 10 s, for at most 5 minutes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the first wait.
    pub fn first(mut self, first: Duration) -> Self {
        self.first = first;
        self
    }

    /// Sets the growth factor of the waits.
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }

    /// Sets the longest wait.
    pub fn cap(mut self, cap: Duration) -> Self {
        self.cap = cap;
        self
    }

    /// Sets how long to follow before giving up (the job keeps running at Basiq).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }
}

/// A step whose status changed between two observations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepEvent {
    /// The step.
    pub title: StepTitle,
    /// Its previous status; `None` the first time the step is seen.
    pub from: Option<StepStatus>,
    /// Its new status.
    pub to: StepStatus,
}

/// How a followed job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Every step succeeded.
    Succeeded,
    /// A step failed.
    Failed {
        /// The failed step.
        step: StepTitle,
        /// Basiq's failure.
        failure: StepFailure,
    },
}

/// What to do after an observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollStep {
    /// Fetch the job again after this long (never past the deadline).
    Wait(Duration),
    /// The job is finished.
    Done(JobOutcome),
    /// The job waits for the user to answer a multi-factor challenge: stop polling (the job
    /// cannot progress without the answer), show the prompts, answer once, then follow it again.
    MfaRequired(MfaChallenge),
    /// The deadline passed and the job is still running; it may still finish at Basiq.
    TimedOut,
}

/// Follows a job: feed it each fetched snapshot, it says how long to wait, reports step changes,
/// and stops when the job is done or the deadline passes. Pure: time is passed in.
#[derive(Debug, Clone)]
pub struct JobPoller {
    next_delay: Duration,
    factor: f64,
    cap: Duration,
    deadline_at: OffsetDateTime,
    seen: Vec<(StepTitle, StepStatus)>,
    events: Vec<StepEvent>,
    observations: u64,
}

impl JobPoller {
    /// A poller for a job being followed from `start`.
    pub fn new(start: OffsetDateTime, config: PollConfig) -> Self {
        let cap = config.cap.max(MIN_POLL_INTERVAL);
        Self {
            next_delay: config.first.clamp(MIN_POLL_INTERVAL, cap),
            factor: if config.factor.is_finite() && config.factor >= 1.0 {
                config.factor
            } else {
                1.0
            },
            cap,
            deadline_at: time_util::add(start, config.deadline),
            seen: Vec::new(),
            events: Vec::new(),
            observations: 0,
        }
    }

    /// When the poller stops waiting.
    pub fn deadline(&self) -> OffsetDateTime {
        self.deadline_at
    }

    /// How many snapshots were observed.
    pub fn observations(&self) -> u64 {
        self.observations
    }

    /// The step changes found by the last [`observe`](Self::observe) (every step, the first time).
    pub fn events(&self) -> &[StepEvent] {
        &self.events
    }

    /// Takes a snapshot of the job fetched at `now` and says what to do next. A finished job is
    /// reported even past the deadline; a `Wait` never ends after the deadline.
    pub fn observe(&mut self, job: &Job, now: OffsetDateTime) -> PollStep {
        self.observations = self.observations.saturating_add(1);
        self.events.clear();
        for step in &job.steps {
            let previous = self.seen.iter_mut().find(|(title, _)| *title == step.title);
            match previous {
                Some((_, status)) if *status == step.status => {}
                Some((_, status)) => {
                    self.events.push(StepEvent {
                        title: step.title.clone(),
                        from: Some(status.clone()),
                        to: step.status.clone(),
                    });
                    *status = step.status.clone();
                }
                None => {
                    self.events.push(StepEvent {
                        title: step.title.clone(),
                        from: None,
                        to: step.status.clone(),
                    });
                    self.seen.push((step.title.clone(), step.status.clone()));
                }
            }
        }
        match job.state() {
            JobState::Succeeded => return PollStep::Done(JobOutcome::Succeeded),
            JobState::Failed { step, failure } => {
                return PollStep::Done(JobOutcome::Failed { step, failure })
            }
            JobState::Pending | JobState::Running => {}
        }
        if let Some(challenge) = job.mfa_challenge() {
            return PollStep::MfaRequired(challenge);
        }
        if now >= self.deadline_at {
            return PollStep::TimedOut;
        }
        let wait = self.next_delay.min(time_util::since(self.deadline_at, now));
        self.next_delay =
            time_util::scale(self.next_delay, self.factor, self.cap).max(MIN_POLL_INTERVAL);
        PollStep::Wait(wait)
    }
}

// ---------------------------------------------------------------------------------------------
// Daily / at-login triage
// ---------------------------------------------------------------------------------------------

/// A failure that no later success has fixed. `Display` is the end user's text;
/// [`UnresolvedFailure::operator_text`] the log line with the ids.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnresolvedFailure {
    /// The latest failed job.
    pub job_id: JobId,
    /// The user, when derivable from the job's links.
    pub user_id: Option<UserId>,
    /// The connection, when known.
    pub connection_id: Option<ConnectionId>,
    /// The institution, when known.
    pub institution: Option<String>,
    /// The failed step.
    pub step: StepTitle,
    /// Basiq's failure.
    pub failure: StepFailure,
    /// When it failed (`updated`, else `created`).
    pub failed_at: Option<OffsetDateTime>,
    /// Failures in a row since the last success for the same connection.
    pub consecutive_failures: u32,
    /// A job started after the failure that is still running (a retry under way).
    pub retry_in_progress: Option<JobId>,
    /// What kind of failure (an outage reported by `/connectors` overrides the code).
    pub class: FailureClass,
    /// What to do.
    pub action: RecommendedAction,
    /// For retryable failures: when the retry is due (`now` when already due).
    pub retry_at: Option<OffsetDateTime>,
}

impl UnresolvedFailure {
    /// A failure seen once, from its diagnosis (usually [`triage_user`] builds these; this is for
    /// an app's own tests and tables). The ids come from the diagnosis' action where it names
    /// them; set the other fields as needed.
    pub fn new(diagnosis: Diagnosis) -> Self {
        let (user_id, connection_id) = match &diagnosis.action {
            RecommendedAction::ContactSupport {
                user_id,
                connection_id,
                ..
            } => (user_id.clone(), connection_id.clone()),
            RecommendedAction::ReenterCredentials { connection_id, .. }
            | RecommendedAction::Reauthorise { connection_id }
            | RecommendedAction::ClearBankPopupOrTerms { connection_id }
            | RecommendedAction::ResolveAtInstitution { connection_id }
            | RecommendedAction::CompleteMfa { connection_id } => (None, connection_id.clone()),
            _ => (None, None),
        };
        let institution = match &diagnosis.action {
            RecommendedAction::Reconnect { institution }
            | RecommendedAction::WaitForConnector { institution } => institution.clone(),
            _ => None,
        };
        Self {
            job_id: diagnosis.job_id,
            user_id,
            connection_id,
            institution,
            step: diagnosis.step,
            failure: diagnosis.failure,
            failed_at: None,
            consecutive_failures: 1,
            retry_in_progress: None,
            class: diagnosis.class,
            action: diagnosis.action,
            retry_at: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum TriageKey {
    Connection(String),
    Institution(String, String),
    Job(String),
}

fn triage_key(job: &Job) -> TriageKey {
    if let Some(c) = job.connection_id() {
        TriageKey::Connection(c.into_string())
    } else if let Some(i) = job.institution_id() {
        let kind = job
            .job_type
            .as_ref()
            .map(JobType::as_str)
            .unwrap_or_default();
        TriageKey::Institution(kind.to_owned(), i.to_owned())
    } else {
        TriageKey::Job(job.id.as_str().to_owned())
    }
}

/// The user's failures that no later success fixed, each classified with its action. Basiq asks
/// integrators to check each user's jobs about once a day and at every login (basiq-api.md §4.3 C).
///
/// Jobs are grouped by connection (jobs without one: by institution and job type, else alone) and
/// ordered by `updated`/`created` (a missing time sorts first; at equal times a success wins).
/// A group's failure is unresolved when its latest finished job failed. A failure without a
/// connection id is also resolved by a later success at the same institution. When `/connectors`
/// reports the institution in `partial-outage`/`major-outage`, retryable and unknown failures
/// become [`FailureClass::InstitutionOutage`] ("their end: retry when operational"). After
/// [`ESCALATE_AFTER_FAILURES`] transient failures in a row the action becomes contacting support.
pub fn triage_user(
    jobs: &[Job],
    connectors: &[ConnectorStatusView],
    now: OffsetDateTime,
) -> Vec<UnresolvedFailure> {
    let mut groups: BTreeMap<TriageKey, Vec<(usize, &Job, JobState)>> = BTreeMap::new();
    for (i, job) in jobs.iter().enumerate() {
        groups
            .entry(triage_key(job))
            .or_default()
            .push((i, job, job.state()));
    }
    let order = |(i, job, state): &(usize, &Job, JobState)| {
        (job.last_change(), matches!(state, JobState::Succeeded), *i)
    };
    let successes_at: Vec<(&str, Option<OffsetDateTime>)> = jobs
        .iter()
        .filter(|j| j.state() == JobState::Succeeded)
        .filter_map(|j| Some((j.institution_id()?, j.last_change())))
        .collect();

    let mut out = Vec::new();
    for (key, mut group) in groups {
        group.sort_by_key(order);
        let Some(last_done) = group.iter().rposition(|(_, _, s)| s.is_done()) else {
            continue;
        };
        let (_, job, state) = &group[last_done];
        let JobState::Failed { step, failure } = state else {
            continue;
        };
        let failed_at = job.last_change();
        if matches!(key, TriageKey::Institution(..)) {
            let inst = job.institution_id();
            let superseded = successes_at
                .iter()
                .any(|(i, t)| Some(*i) == inst && *t >= failed_at);
            if superseded {
                continue;
            }
        }
        let since_success = group[..=last_done]
            .iter()
            .rev()
            .take_while(|(_, _, s)| !matches!(s, JobState::Succeeded))
            .filter(|(_, _, s)| matches!(s, JobState::Failed { .. }))
            .count();
        let had_success = group[..last_done]
            .iter()
            .any(|(_, _, s)| matches!(s, JobState::Succeeded));
        let retry_in_progress = group[last_done + 1..]
            .iter()
            .find(|(_, _, s)| !s.is_done())
            .map(|(_, j, _)| j.id.clone());

        let kind = if had_success {
            JobKind::Refresh
        } else {
            JobKind::Unknown
        };
        let ctx = ActionContext::from_job(job);
        let class = weigh_connector_health(
            classify(step, &failure.code, kind),
            ctx.institution.as_deref(),
            connectors,
        );
        let consecutive_failures = u32::try_from(since_success).unwrap_or(u32::MAX);
        let mut action = recommend(&class, &failure.code, &ctx);
        if matches!(class, FailureClass::Transient { .. })
            && consecutive_failures >= ESCALATE_AFTER_FAILURES
        {
            action = recommend(&FailureClass::Unknown, &failure.code, &ctx);
        }
        let retry_at = match &class {
            FailureClass::Transient { retry_after } => Some(
                failed_at
                    .map_or(now, |t| time_util::add(t, *retry_after))
                    .max(now),
            ),
            _ => None,
        };
        out.push(UnresolvedFailure {
            job_id: job.id.clone(),
            user_id: ctx.user_id.clone(),
            connection_id: ctx.connection_id.clone(),
            institution: ctx.institution.clone(),
            step: step.clone(),
            failure: failure.clone(),
            failed_at,
            consecutive_failures,
            retry_in_progress,
            class,
            action,
            retry_at,
        });
    }
    out.sort_by(|a, b| (a.failed_at, a.job_id.as_str()).cmp(&(b.failed_at, b.job_id.as_str())));
    out
}

#[cfg(test)]
mod tests;
