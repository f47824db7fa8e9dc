//! `jobs wait`: follow a job live, then its verdict.
//!
//! The facade's `jobs().wait` returns only once the job ends; an operator wants to see each step
//! move while it runs. So this drives basiq-core's `JobPoller` itself with `jobs().get`
//! snapshots — the same pure poller (steps by title, backoff, MFA stop, deadline) the facade
//! uses — and shows each step change as it happens: a progress bar per step on a terminal, a
//! line per change on stderr otherwise, a JSON line per change with `--json`.

use std::time::Duration;

use basiq::connectors::ConnectorStatusView;
use basiq::id::JobId;
use basiq::jobs::{FailureClass, JobKind, JobPoller, PollConfig, PollStep, RecommendedAction};
use basiq::models::{Job, StepStatus};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

use crate::cli::{JobKindArg, JobsCommand};
use crate::output::{
    class_label, whose_move, CliError, Output, EXIT_ATTENTION, EXIT_MFA, EXIT_OK, EXIT_TIMED_OUT,
};
use crate::session::Session;

pub(crate) fn run(s: &Session, cmd: &JobsCommand) -> Result<i32, CliError> {
    let JobsCommand::Wait {
        job,
        kind,
        deadline,
    } = cmd;
    let kind = match kind {
        JobKindArg::Create => JobKind::Create,
        JobKindArg::Refresh => JobKind::Refresh,
        JobKindArg::Unknown => JobKind::Unknown,
    };
    let verdict = follow(s, JobId::new(job.as_str())?, kind, *deadline)?;
    verdict.print(&s.out);
    Ok(verdict.exit_code())
}

/// How a followed job ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    Succeeded,
    Failed {
        step: String,
        code: String,
        failure: String,
        class: FailureClass,
        action: RecommendedAction,
    },
    TimedOut,
    MfaRequired {
        method: String,
        prompts: usize,
    },
    /// Ctrl-C while following.
    Interrupted,
}

/// The verdict on a followed job, with its ids.
#[derive(Debug)]
pub(crate) struct Verdict {
    pub(crate) job: Job,
    pub(crate) outcome: Outcome,
    pub(crate) polls: u64,
}

impl Verdict {
    pub(crate) fn exit_code(&self) -> i32 {
        match self.outcome {
            Outcome::Succeeded => EXIT_OK,
            Outcome::Failed { .. } => EXIT_ATTENTION,
            Outcome::TimedOut => EXIT_TIMED_OUT,
            Outcome::MfaRequired { .. } => EXIT_MFA,
            Outcome::Interrupted => crate::output::EXIT_INTERRUPTED,
        }
    }

    fn ids(&self) -> String {
        let mut ids = Vec::new();
        if let Some(u) = self.job.user_id() {
            ids.push(format!("userId={u}"));
        }
        if let Some(c) = self.job.connection_id() {
            ids.push(format!("connectionId={c}"));
        }
        ids.push(format!("jobId={}", self.job.id));
        format!("[{}]", ids.join(", "))
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut v = json!({
            "event": "verdict",
            "jobId": self.job.id.as_str(),
            "userId": self.job.user_id().map(|u| u.to_string()),
            "connectionId": self.job.connection_id().map(|c| c.to_string()),
            "polls": self.polls,
        });
        let extra = match &self.outcome {
            Outcome::Succeeded => json!({ "outcome": "succeeded" }),
            Outcome::Failed {
                step,
                code,
                failure,
                class,
                action,
            } => json!({
                "outcome": "failed",
                "step": step,
                "code": code,
                "failure": failure,
                "class": class_label(class),
                "whose": whose_move(class),
                "action": action.to_string(),
            }),
            Outcome::TimedOut => json!({ "outcome": "timed-out" }),
            Outcome::MfaRequired { method, prompts } => {
                json!({ "outcome": "mfa-required", "method": method, "prompts": prompts })
            }
            Outcome::Interrupted => json!({ "outcome": "interrupted" }),
        };
        if let (Some(v), Value::Object(extra)) = (v.as_object_mut(), extra) {
            v.extend(extra);
        }
        v
    }

    pub(crate) fn print(&self, out: &Output) {
        if out.json {
            out.json(&self.to_json());
            return;
        }
        let id = &self.job.id;
        match &self.outcome {
            Outcome::Succeeded => out.line(format!(
                "{} job {id} succeeded {}",
                out.good("✔"),
                self.ids()
            )),
            Outcome::Failed {
                step,
                failure,
                class,
                action,
                ..
            } => {
                out.line(format!(
                    "{} job {id} failed at {step}: {failure}",
                    out.bad("✘")
                ));
                let whose = whose_move(class);
                let whose = if matches!(class, FailureClass::InstitutionOutage) {
                    out.warn(whose)
                } else {
                    whose.to_owned()
                };
                out.line(format!("  who acts: {whose}"));
                out.line(format!("  what to do: {action}"));
                out.line(format!("  {}", self.ids()));
            }
            Outcome::TimedOut => out.line(format!(
                "{} job {id} is still running after {} polls; it may still finish at Basiq: \
                 check it later, never start a second attempt now {}",
                out.warn("…"),
                self.polls,
                self.ids()
            )),
            Outcome::MfaRequired { method, prompts } => out.line(format!(
                "{} job {id} waits for the user to answer a {method} challenge ({prompts} \
                 prompt{}): they answer it once, then follow the job again {}",
                out.warn("?"),
                if *prompts == 1 { "" } else { "s" },
                self.ids()
            )),
            Outcome::Interrupted => out.line(format!(
                "stopped following job {id} (it keeps running at Basiq) {}",
                self.ids()
            )),
        }
    }
}

/// Follows `job_id` to its end (or the deadline, an MFA stop, Ctrl-C), showing each step change
/// while it runs.
pub(crate) fn follow(
    s: &Session,
    job_id: JobId,
    kind: JobKind,
    deadline: Duration,
) -> Result<Verdict, CliError> {
    let config = PollConfig::new().deadline(deadline);
    let mut poller = JobPoller::new(s.now(), config);
    let mut view = StepView::new(&s.out, &job_id);
    let mut waited = Duration::ZERO;
    loop {
        let job = s.client.jobs().get(job_id.as_str())?;
        let step = poller.observe(&job, s.now());
        view.show(&job, poller.events());
        let outcome = match step {
            PollStep::Wait(d) if waited < deadline => {
                if !s.sleep(d) {
                    view.finish();
                    return Ok(Verdict {
                        job,
                        outcome: Outcome::Interrupted,
                        polls: poller.observations(),
                    });
                }
                waited = waited.saturating_add(d);
                continue;
            }
            PollStep::Wait(_) | PollStep::TimedOut => Outcome::TimedOut,
            PollStep::MfaRequired(c) => Outcome::MfaRequired {
                method: c.method.to_string(),
                prompts: c.prompts.len(),
            },
            PollStep::Done(basiq::jobs::JobOutcome::Succeeded) => Outcome::Succeeded,
            PollStep::Done(_) => failed(s, &job, kind),
        };
        view.finish();
        return Ok(Verdict {
            job,
            outcome,
            polls: poller.observations(),
        });
    }
}

/// A failed job, classified — and "their end" when `/connectors` reports its institution down
/// (the same reading as the daily triage, `triage_user`).
fn failed(s: &Session, job: &Job, kind: JobKind) -> Outcome {
    let Some(d) = job.diagnose(kind) else {
        return Outcome::TimedOut;
    };
    let mut class = d.class.clone();
    let mut action = d.action.clone();
    if !matches!(class, FailureClass::UserActionRequired(_)) {
        if let Some(institution) = job.institution_id() {
            let filter = format!("connector.id.eq('{institution}')");
            match s.client.connectors().list_filtered(filter) {
                Ok(list) => {
                    let connectors: Vec<ConnectorStatusView> =
                        list.data.iter().map(ConnectorStatusView::from).collect();
                    let triaged =
                        basiq::jobs::triage_user(std::slice::from_ref(job), &connectors, s.now());
                    if let Some(f) = triaged.into_iter().next() {
                        class = f.class;
                        action = f.action;
                    }
                }
                Err(e) => tracing::warn!(%e, "could not read /connectors; classified by code only"),
            }
        }
    }
    Outcome::Failed {
        step: d.step.to_string(),
        code: d.failure.code.to_string(),
        failure: d.failure.to_string(),
        class,
        action,
    }
}

/// Shows step changes as they happen.
struct StepView<'a> {
    out: &'a Output,
    job_id: String,
    bars: Option<(MultiProgress, Vec<(String, ProgressBar)>)>,
}

impl<'a> StepView<'a> {
    fn new(out: &'a Output, job_id: &JobId) -> Self {
        let bars = crate::session::progress_allowed(out.json).then(|| {
            (
                MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                Vec::new(),
            )
        });
        Self {
            out,
            job_id: job_id.to_string(),
            bars,
        }
    }

    fn show(&mut self, job: &Job, events: &[basiq::jobs::StepEvent]) {
        for event in events {
            let title = event.title.to_string();
            let to = event.to.to_string();
            if self.out.json {
                self.out.json(&json!({
                    "event": "step",
                    "jobId": self.job_id,
                    "step": title,
                    "from": event.from.as_ref().map(|f| f.to_string()),
                    "to": to,
                }));
            } else if self.bars.is_none() {
                self.out.note(format!("  {title}: {to}"));
            }
        }
        if let Some((multi, bars)) = &mut self.bars {
            for step in &job.steps {
                let title = step.title.to_string();
                let bar = match bars.iter().find(|(t, _)| *t == title) {
                    Some((_, bar)) => bar.clone(),
                    None => {
                        let bar = multi.add(ProgressBar::new_spinner());
                        if let Ok(style) =
                            ProgressStyle::with_template("{spinner} {prefix:24} {msg}")
                        {
                            bar.set_style(style);
                        }
                        bar.set_prefix(title.clone());
                        bar.enable_steady_tick(Duration::from_millis(120));
                        bars.push((title, bar.clone()));
                        bar
                    }
                };
                match &step.status {
                    StepStatus::Success => bar.finish_with_message(self.out.good("success")),
                    StepStatus::Failed => bar.finish_with_message(self.out.bad("failed")),
                    other => bar.set_message(other.to_string()),
                }
            }
        }
    }

    fn finish(&mut self) {
        if let Some((_, bars)) = &self.bars {
            for (_, bar) in bars {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
        }
    }
}
