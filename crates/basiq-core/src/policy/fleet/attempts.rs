//! One attempt at a time across the fleet, and one shared daily quota.
//!
//! Basiq pauses a second attempt with the same credentials for 6 minutes while one runs, and
//! allows 20 refreshes a day per open-banking connection — per *application*. Before the facade
//! sends a refresh (or hands out a consent link) it runs a [`FleetAttempt`]: claim the attempt
//! (`SET NX PX`, Basiq's 6-minute pause as horizon), take over a claim whose job has finished,
//! reserve one refresh of the day atomically ([`FleetOp::IncrementBelow`]), and afterwards
//! [`settle`](FleetAttempt::settle): the claim names the job Basiq started, a reservation for a
//! refresh Basiq did not start is given back. Store errors let the attempt proceed on the
//! process's own checks (which always run first): the store never fails a request.

use std::time::Duration;

use time::OffsetDateTime;

use super::store::{FleetAnswer, FleetKey, FleetOp};
use crate::api::models::Job;
use crate::id::JobId;
use crate::policy::token::StoreError;

/// Basiq's pause of a duplicate attempt: the horizon of an attempt claim.
pub const ATTEMPT_HORIZON: Duration = Duration::from_secs(6 * 60);

/// What a claim's value says.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ClaimValue {
    /// An instance is about to act (no job known yet), since this time.
    Pending { since: OffsetDateTime },
    /// Basiq started (or returned) this job.
    Job(JobId),
}

impl ClaimValue {
    fn encode(&self, instance: &str) -> Vec<u8> {
        match self {
            Self::Pending { since } => {
                format!("pending|{instance}|{}", since.unix_timestamp()).into_bytes()
            }
            Self::Job(id) => format!("job|{instance}|{}", id.as_str()).into_bytes(),
        }
    }

    fn decode(raw: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(raw).ok()?;
        let mut parts = text.splitn(3, '|');
        let (kind, _instance, rest) = (parts.next()?, parts.next()?, parts.next()?);
        match kind {
            "pending" => Some(Self::Pending {
                since: OffsetDateTime::from_unix_timestamp(rest.parse().ok()?).ok()?,
            }),
            "job" => JobId::new(rest).ok().map(Self::Job),
            _ => None,
        }
    }
}

/// Why the fleet said no.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptRefusal {
    /// Another instance holds the attempt: follow its job when known.
    HeldElsewhere {
        /// The job it started, when its claim names one.
        job_id: Option<JobId>,
        /// When its claim lapses at the latest.
        until: Option<OffsetDateTime>,
    },
    /// The fleet has used the day's refreshes of this connection.
    QuotaExhausted,
}

/// What the facade does next for a [`FleetAttempt`].
#[derive(Debug)]
pub enum AttemptStep {
    /// Run this on the fleet's store and report with [`FleetAttempt::on_store`].
    Store(FleetOp),
    /// The attempt is this instance's: send it, then [`settle`](FleetAttempt::settle).
    Proceed,
    /// Do not send it.
    Refused(AttemptRefusal),
}

/// How the attempt ended at Basiq, for [`FleetAttempt::settle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    /// Basiq started this job: the claim names it until the horizon.
    Started(JobId),
    /// Basiq returned a job that was already running: no new refresh; the claim names it.
    Existing(JobId),
    /// Nothing reached Basiq's side or Basiq refused before acting: claim and reservation back.
    NotActed,
    /// The outcome is not known (timeout mid-request): keep claim and reservation — the fleet
    /// reconciles through the jobs list, as Basiq asks.
    Unknown,
    /// Handed to the user (a consent link): the claim stays until the horizon or a job shows up.
    HandedOut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Claiming { retried: bool },
    ReadingClaim { retried: bool },
    TakingOver,
    Reserving,
    Releasing,
    Done,
}

/// One fleet-wide attempt (see the [fleet module docs](crate::policy::fleet)).
#[derive(Debug)]
pub struct FleetAttempt {
    claim: FleetKey,
    instance: String,
    mine: Vec<u8>,
    horizon: Duration,
    takeover: bool,
    quota: Option<(FleetKey, u32, Duration)>,
    reserved: bool,
    claimed: bool,
    /// The jobs the claim is judged against (of the connection, or the institution).
    jobs: Vec<Job>,
    phase: Phase,
    now: OffsetDateTime,
    refusal: Option<AttemptRefusal>,
}

impl FleetAttempt {
    /// An attempt on `claim` by `instance` at `now`, judged against `jobs` (those that belong to
    /// the same connection or institution), with Basiq's 6-minute horizon and take-over of a
    /// claim whose job has finished.
    pub fn new(claim: FleetKey, instance: &str, now: OffsetDateTime, jobs: Vec<Job>) -> Self {
        let mine = ClaimValue::Pending { since: now }.encode(instance);
        Self {
            claim,
            instance: instance.to_owned(),
            mine,
            horizon: ATTEMPT_HORIZON,
            takeover: true,
            quota: None,
            reserved: false,
            claimed: false,
            jobs,
            phase: Phase::Claiming { retried: false },
            now,
            refusal: None,
        }
    }

    /// Also reserves one of `limit` on the counter `key` (expiring after `ttl`, e.g. the end of
    /// the UTC day plus an hour).
    pub fn with_quota(mut self, key: FleetKey, limit: u32, ttl: Duration) -> Self {
        self.quota = Some((key, limit, ttl));
        self
    }

    /// A claim that is never taken over and lasts `horizon` (a planned refresh slot).
    pub fn exclusive(mut self, horizon: Duration) -> Self {
        self.takeover = false;
        self.horizon = horizon;
        self
    }

    /// The first step.
    pub fn start(&mut self) -> AttemptStep {
        self.claim_step(false)
    }

    fn claim_step(&mut self, retried: bool) -> AttemptStep {
        self.phase = Phase::Claiming { retried };
        AttemptStep::Store(FleetOp::SetIfAbsent {
            key: self.claim.clone(),
            value: self.mine.clone(),
            ttl: self.horizon,
        })
    }

    fn claimed_step(&mut self) -> AttemptStep {
        self.claimed = true;
        match &self.quota {
            Some((key, limit, ttl)) => {
                self.phase = Phase::Reserving;
                AttemptStep::Store(FleetOp::IncrementBelow {
                    key: key.clone(),
                    limit: *limit,
                    ttl: *ttl,
                })
            }
            None => self.proceed(),
        }
    }

    fn proceed(&mut self) -> AttemptStep {
        self.phase = Phase::Done;
        AttemptStep::Proceed
    }

    fn refuse(&mut self, refusal: AttemptRefusal) -> AttemptStep {
        self.phase = Phase::Done;
        AttemptStep::Refused(refusal)
    }

    /// Whether a held claim may be taken over, or who holds it.
    fn judge(&self, value: &ClaimValue) -> Result<(), AttemptRefusal> {
        let until = Some(crate::time_util::add(self.now, self.horizon));
        if !self.takeover {
            return Err(AttemptRefusal::HeldElsewhere {
                job_id: None,
                until,
            });
        }
        match value {
            ClaimValue::Job(id) => match self.jobs.iter().find(|j| &j.id == id) {
                Some(job) if job.state().is_done() => Ok(()),
                _ => Err(AttemptRefusal::HeldElsewhere {
                    job_id: Some(id.clone()),
                    until,
                }),
            },
            ClaimValue::Pending { since } => {
                let later: Vec<&Job> = self
                    .jobs
                    .iter()
                    .filter(|j| j.created.is_some_and(|c| c >= *since))
                    .collect();
                if let Some(running) = later.iter().find(|j| !j.state().is_done()) {
                    return Err(AttemptRefusal::HeldElsewhere {
                        job_id: Some(running.id.clone()),
                        until,
                    });
                }
                if later.is_empty() {
                    Err(AttemptRefusal::HeldElsewhere {
                        job_id: None,
                        until,
                    })
                } else {
                    Ok(())
                }
            }
        }
    }

    fn fall_back(&mut self, error: &StoreError) -> AttemptStep {
        tracing::warn!(
            error = %error,
            key = %self.claim,
            "the fleet store failed while claiming an attempt; going ahead on this process's own checks"
        );
        self.proceed()
    }

    /// Reports what the store answered to the last [`AttemptStep::Store`].
    pub fn on_store(&mut self, answer: Result<FleetAnswer, StoreError>) -> AttemptStep {
        let answer = match answer {
            Ok(a) => a,
            Err(e) => return self.fall_back(&e),
        };
        let step = match self.phase {
            Phase::Claiming { retried } => answer.applied().map(|claimed| {
                if claimed {
                    self.claimed_step()
                } else {
                    self.phase = Phase::ReadingClaim { retried };
                    AttemptStep::Store(FleetOp::Get {
                        key: self.claim.clone(),
                    })
                }
            }),
            Phase::ReadingClaim { retried } => answer.into_value().map(|raw| match raw {
                // Lapsed between our two looks: claim again, once.
                None if !retried => self.claim_step(true),
                None => self.refuse(AttemptRefusal::HeldElsewhere {
                    job_id: None,
                    until: None,
                }),
                Some(raw) => {
                    let value =
                        ClaimValue::decode(&raw).unwrap_or(ClaimValue::Pending { since: self.now });
                    match self.judge(&value) {
                        Ok(()) => {
                            self.phase = Phase::TakingOver;
                            AttemptStep::Store(FleetOp::ReplaceIfEquals {
                                key: self.claim.clone(),
                                expected: raw,
                                value: self.mine.clone(),
                                ttl: self.horizon,
                            })
                        }
                        Err(refusal) => self.refuse(refusal),
                    }
                }
            }),
            Phase::TakingOver => answer.applied().map(|taken| {
                if taken {
                    self.claimed_step()
                } else {
                    self.refuse(AttemptRefusal::HeldElsewhere {
                        job_id: None,
                        until: None,
                    })
                }
            }),
            Phase::Reserving => answer.count().map(|count| match count {
                Some(_) => {
                    self.reserved = true;
                    self.proceed()
                }
                None => {
                    self.refusal = Some(AttemptRefusal::QuotaExhausted);
                    self.phase = Phase::Releasing;
                    self.claimed = false;
                    AttemptStep::Store(FleetOp::DeleteIfEquals {
                        key: self.claim.clone(),
                        value: self.mine.clone(),
                    })
                }
            }),
            Phase::Releasing => Ok(self.refuse(
                self.refusal
                    .clone()
                    .unwrap_or(AttemptRefusal::QuotaExhausted),
            )),
            Phase::Done => Err(StoreError::new("fleet attempt: store answer out of turn")),
        };
        match step {
            Ok(step) => step,
            // The store answered nonsense: go ahead on the local checks, unless we were giving
            // the claim back after the quota said no.
            Err(e) if self.phase == Phase::Releasing => {
                tracing::warn!(error = %e, "releasing a fleet claim failed; it lapses by itself");
                self.refuse(AttemptRefusal::QuotaExhausted)
            }
            Err(e) => self.fall_back(&e),
        }
    }

    /// Whether this attempt reserved one of the day's refreshes.
    pub fn reserved(&self) -> bool {
        self.reserved
    }

    /// What to tell the store once the attempt's result at Basiq is known (errors are logged
    /// and ignored: claims lapse and counters expire by themselves).
    pub fn settle(&self, result: &AttemptResult) -> Vec<FleetOp> {
        let mut ops = Vec::new();
        let give_back = matches!(result, AttemptResult::Existing(_) | AttemptResult::NotActed);
        if give_back && self.reserved {
            if let Some((key, _, _)) = &self.quota {
                ops.push(FleetOp::Decrement { key: key.clone() });
            }
        }
        if !self.claimed {
            return ops;
        }
        match result {
            AttemptResult::Started(job) | AttemptResult::Existing(job) => {
                ops.push(FleetOp::ReplaceIfEquals {
                    key: self.claim.clone(),
                    expected: self.mine.clone(),
                    value: ClaimValue::Job(job.clone()).encode(&self.instance),
                    ttl: self.horizon,
                });
            }
            AttemptResult::NotActed => ops.push(FleetOp::DeleteIfEquals {
                key: self.claim.clone(),
                value: self.mine.clone(),
            }),
            AttemptResult::Unknown | AttemptResult::HandedOut => {}
        }
        ops
    }
}

#[cfg(test)]
mod tests;
