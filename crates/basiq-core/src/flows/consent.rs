//! Sending a user to the Consent UI behind the duplicate-pause guard, as a sans-IO state
//! machine: [`ConsentFlow`] says "read the user's jobs", "claim the attempt on the fleet",
//! "mint the user's client token", "settle the claim" or "done", and is fed each answer. The
//! facade's `consent_url` drives it and builds the link from the token; nothing here does IO,
//! reads a clock or holds a token.
//!
//! Basiq pauses a second attempt with the same credentials for **6 minutes** while one is in
//! progress (so the user's bank account is not locked). So before a `CLIENT_ACCESS` token is
//! minted, the user's jobs are checked with [`DuplicatePauseGuard`] — the same institution for a
//! connect, the same connection for an update or reauthorise, conservative when neither is
//! known — and in fleet mode the fleet's claim makes sure two instances do not both hand out a
//! link.
//!
//! ```
//! use basiq_core::flows::consent::{ConsentFlow, ConsentStep, ConsentVerdict};
//! use basiq_core::id::{InstitutionId, UserId};
//!
//! let now = time::macros::datetime!(2026-01-01 12:00 UTC);
//! let institution = Some(InstitutionId::new("AU00000").unwrap());
//! let mut flow = ConsentFlow::new(UserId::new("u1").unwrap(), institution, None, None);
//! let ConsentStep::ReadJobs(_user) = flow.start() else { unreachable!() };
//! let ConsentStep::MintToken(_user) = flow.on_jobs(Ok(Vec::new()), now) else {
//!     unreachable!("nothing runs: mint the token")
//! };
//! let ConsentStep::Done(Ok(ConsentVerdict::Proceed)) = flow.on_token(Ok(())) else {
//!     unreachable!()
//! };
//! ```

use time::OffsetDateTime;

use crate::api::models::Job;
use crate::error::{Error, ErrorContext};
use crate::id::{ConnectionId, InstitutionId, JobId, UserId};
use crate::policy::fleet::{AttemptRefusal, AttemptResult, FleetAttempt, FleetConfig};
use crate::policy::pause::{DuplicatePauseGuard, PauseDecision};

/// How a consent attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub enum ConsentVerdict {
    /// The client token was minted: send the user to the Consent UI with it.
    Proceed,
    /// An attempt with these credentials is running: follow its job instead.
    FollowExisting {
        /// The running job.
        job_id: JobId,
    },
    /// A duplicate attempt is already paused by Basiq: send nothing before `until`.
    Paused {
        /// When the pause ends.
        until: OffsetDateTime,
        /// The paused job.
        job_id: JobId,
    },
    /// Another instance (fleet mode) has just sent this user for the same institution or
    /// connection and no job shows yet.
    InProgressElsewhere {
        /// When the other instance's claim lapses at the latest.
        until: Option<OffsetDateTime>,
    },
}

/// What the driver does next for a [`ConsentFlow`].
#[derive(Debug)]
#[must_use]
pub enum ConsentStep {
    /// Read every job of this user (all pages) and report with [`ConsentFlow::on_jobs`].
    ReadJobs(UserId),
    /// Run this fleet attempt on the fleet's store and report with [`ConsentFlow::on_claim`].
    Claim(FleetAttempt),
    /// Mint a `CLIENT_ACCESS` token for this user (the driver keeps it) and report whether it
    /// worked with [`ConsentFlow::on_token`].
    MintToken(UserId),
    /// Tell the fleet's store how the attempt ended, then call [`ConsentFlow::on_settled`].
    Settle(FleetAttempt, AttemptResult),
    /// The attempt is over.
    Done(Result<ConsentVerdict, Error>),
}

enum State {
    Start,
    Jobs,
    Claiming,
    Minting(Option<FleetAttempt>),
    Settling(Result<(), Error>),
    Done,
}

/// One attempt to send a user to the Consent UI (see the module docs).
pub struct ConsentFlow {
    user_id: UserId,
    institution: Option<InstitutionId>,
    connection: Option<ConnectionId>,
    fleet: Option<FleetConfig>,
    state: State,
}

impl std::fmt::Debug for ConsentFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsentFlow")
            .field("user_id", &self.user_id)
            .field("institution", &self.institution)
            .field("connection", &self.connection)
            .field("fleet", &self.fleet.is_some())
            .finish_non_exhaustive()
    }
}

impl ConsentFlow {
    /// An attempt for `user_id`: to connect (`institution` when known) or to update /
    /// reauthorise `connection`; in fleet mode when `fleet` is given.
    pub fn new(
        user_id: UserId,
        institution: Option<InstitutionId>,
        connection: Option<ConnectionId>,
        fleet: Option<FleetConfig>,
    ) -> Self {
        Self {
            user_id,
            institution,
            connection,
            fleet,
            state: State::Start,
        }
    }

    fn context(&self) -> ErrorContext {
        let context = ErrorContext::new().with_user(&self.user_id);
        match &self.connection {
            Some(conn) => context.with_connection(conn),
            None => context,
        }
    }

    fn done(&mut self, result: Result<ConsentVerdict, Error>) -> ConsentStep {
        self.state = State::Done;
        ConsentStep::Done(result)
    }

    fn misuse(&mut self, what: &str) -> ConsentStep {
        self.done(Err(Error::invalid_input(format!(
            "consent flow: {what} out of order"
        ))))
    }

    /// The first step: read the user's jobs.
    pub fn start(&mut self) -> ConsentStep {
        if !matches!(self.state, State::Start) {
            return self.misuse("start");
        }
        self.state = State::Jobs;
        ConsentStep::ReadJobs(self.user_id.clone())
    }

    /// The user's jobs were read (or not), judged at `now`.
    pub fn on_jobs(&mut self, jobs: Result<Vec<Job>, Error>, now: OffsetDateTime) -> ConsentStep {
        if !matches!(self.state, State::Jobs) {
            return self.misuse("on_jobs");
        }
        let jobs = match jobs {
            Ok(jobs) => jobs,
            Err(e) => {
                let context = self.context();
                return self.done(Err(e.with_context(&context)));
            }
        };
        let institution = self.institution.as_ref().map(InstitutionId::as_str);
        match DuplicatePauseGuard::check(&jobs, institution, self.connection.as_ref(), now) {
            PauseDecision::Proceed => {}
            PauseDecision::FollowExisting { job_id } => {
                return self.done(Ok(ConsentVerdict::FollowExisting { job_id }))
            }
            PauseDecision::Paused { until, job_id } => {
                return self.done(Ok(ConsentVerdict::Paused { until, job_id }))
            }
        }
        match &self.fleet {
            None => {
                self.state = State::Minting(None);
                ConsentStep::MintToken(self.user_id.clone())
            }
            Some(fleet) => {
                let attempt = consent_attempt(
                    fleet,
                    &self.user_id,
                    self.institution.as_ref(),
                    self.connection.as_ref(),
                    &jobs,
                    now,
                );
                self.state = State::Claiming;
                ConsentStep::Claim(attempt)
            }
        }
    }

    /// The fleet's verdict on the attempt of [`ConsentStep::Claim`].
    pub fn on_claim(
        &mut self,
        attempt: FleetAttempt,
        verdict: Result<(), AttemptRefusal>,
    ) -> ConsentStep {
        if !matches!(self.state, State::Claiming) {
            return self.misuse("on_claim");
        }
        match verdict {
            Err(refusal) => self.done(Ok(refused(refusal))),
            Ok(()) => {
                self.state = State::Minting(Some(attempt));
                ConsentStep::MintToken(self.user_id.clone())
            }
        }
    }

    /// Whether the client token was minted (the driver keeps the token itself).
    pub fn on_token(&mut self, minted: Result<(), Error>) -> ConsentStep {
        let State::Minting(attempt) = std::mem::replace(&mut self.state, State::Done) else {
            return self.misuse("on_token");
        };
        let context = self.context();
        let minted = minted.map_err(|e| e.with_context(&context));
        match attempt {
            None => self.done(minted.map(|()| ConsentVerdict::Proceed)),
            Some(attempt) => {
                let settled = match &minted {
                    Ok(()) => AttemptResult::HandedOut,
                    Err(_) => AttemptResult::NotActed,
                };
                self.state = State::Settling(minted);
                ConsentStep::Settle(attempt, settled)
            }
        }
    }

    /// The fleet's store was told how the attempt ended.
    pub fn on_settled(&mut self) -> ConsentStep {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Settling(minted) => self.done(minted.map(|()| ConsentVerdict::Proceed)),
            _ => self.misuse("on_settled"),
        }
    }
}

/// The fleet attempt for sending `user` to the Consent UI: keyed by the connection (update,
/// reauthorise; shared with its refreshes) or by user and institution (connect), and judged
/// against the user's jobs for that connection or institution.
pub fn consent_attempt(
    fleet: &FleetConfig,
    user: &UserId,
    institution: Option<&InstitutionId>,
    connection: Option<&ConnectionId>,
    user_jobs: &[Job],
    now: OffsetDateTime,
) -> FleetAttempt {
    let (key, jobs) = match connection {
        Some(conn) => (
            fleet.keys().refresh_attempt(conn),
            user_jobs
                .iter()
                .filter(|j| j.connection_id().as_ref() == Some(conn))
                .cloned()
                .collect(),
        ),
        None => (
            fleet.keys().consent_attempt(user, institution),
            user_jobs
                .iter()
                .filter(|j| institution.is_none_or(|i| j.institution_id() == Some(i.as_str())))
                .cloned()
                .collect(),
        ),
    };
    FleetAttempt::new(key, fleet.instance(), now, jobs)
}

/// What a consent attempt the fleet refused turns into: follow the other instance's job when
/// its claim names one.
pub fn refused(refusal: AttemptRefusal) -> ConsentVerdict {
    match refusal {
        AttemptRefusal::HeldElsewhere {
            job_id: Some(job_id),
            ..
        } => ConsentVerdict::FollowExisting { job_id },
        AttemptRefusal::HeldElsewhere { until, .. } => {
            ConsentVerdict::InProgressElsewhere { until }
        }
        AttemptRefusal::QuotaExhausted => ConsentVerdict::InProgressElsewhere { until: None },
    }
}

#[cfg(test)]
mod tests;
