//! `triage`: the daily check for many users, spread over a window at a rate.
//!
//! The plan is the SDK's (`basiq::plan::TriageScheduler`), so an app server running the same
//! daily check gets the same cadence without the CLI; each check is the facade's
//! `users().triage` (the user's jobs, `/connectors` only when something failed).

use std::num::NonZeroU32;
use std::path::PathBuf;

use basiq::id::UserId;
use basiq::jobs::UnresolvedFailure;
use basiq::plan::TriageScheduler;
use serde_json::{json, Value};

use super::paced::{self, Slot};
use super::resources::{header, or_dash};
use crate::cli::TriageArgs;
use crate::output::{
    class_label, error_json, rfc3339, table, whose_move, CliError, EXIT_ATTENTION, EXIT_ERROR,
    EXIT_INTERRUPTED, EXIT_OK,
};
use crate::plan_state::{self, PlanState};
use crate::session::Session;

/// Checks a minute when `--max-per-minute` is not given: each check is one or two requests.
const DEFAULT_CHECKS_PER_MINUTE: u32 = 30;

pub(crate) fn run(s: &Session, args: &TriageArgs) -> Result<i32, CliError> {
    let users = users(args)?;
    let rate = args
        .pacing
        .max_per_minute
        .unwrap_or(DEFAULT_CHECKS_PER_MINUTE);
    let rate_nz = NonZeroU32::new(rate)
        .ok_or_else(|| CliError::usage("--max-per-minute must be at least 1"))?;
    let scheduler = match args.pacing.window {
        Some(window) => TriageScheduler::new(window, rate),
        None => TriageScheduler::tightest(users.len(), rate),
    };
    if scheduler.capacity() < users.len() as u64 {
        return Err(CliError::usage(format!(
            "{} users do not fit in {} at {rate} a minute (room for {}): widen --window or raise \
             --max-per-minute",
            users.len(),
            humantime::format_duration(scheduler.window()),
            scheduler.capacity()
        )));
    }
    let state_path: Option<PathBuf> = args
        .pacing
        .state
        .clone()
        .or_else(|| args.users_from.as_deref().map(plan_state::default_path));
    let expected = plan_state::header(
        "triage",
        s.now(),
        scheduler.window(),
        rate,
        users.len(),
        plan_state::digest(users.iter().map(UserId::as_str)),
    );
    let (mut state, resumed) = match &state_path {
        Some(path) => {
            let (st, resumed) = PlanState::open(path, expected.clone())?;
            (Some(st), resumed)
        }
        None => (None, false),
    };
    let (start, jitter) = state
        .as_ref()
        .map_or((expected.start, expected.jitter), |st| {
            (st.header.start, st.header.jitter)
        });
    let plan = scheduler.schedule(start, &users, jitter);
    if resumed {
        if let Some(st) = &state {
            s.out.note(format!(
                "Resuming: {} of {} users already checked ({})",
                st.done_count(),
                users.len(),
                st.path().display()
            ));
        }
    }
    s.out.note(format!(
        "Checking {} user(s) over {} at most {rate} a minute",
        users.len(),
        humantime::format_duration(scheduler.window())
    ));

    let slots: Vec<Slot> = plan
        .planned
        .iter()
        .map(|p| Slot {
            id: p.user_id.to_string(),
            at: p.at,
        })
        .collect();
    let bar = s.out.bar(slots.len() as u64, "triage");
    let mut findings: Vec<Value> = Vec::new();
    let mut errors = 0usize;
    let ran = paced::run(
        s,
        &slots,
        rate_nz,
        state.as_mut(),
        &bar,
        |user, _at| match s.client.users().triage(user) {
            Ok(failures) => {
                for f in &failures {
                    let finding = finding_json(user, f);
                    if s.out.json {
                        s.out.json(&finding);
                    }
                    findings.push(finding);
                }
                Ok(json!({ "findings": failures.len() }))
            }
            Err(e) if paced::stops_the_plan(&e) => Err(CliError::Api(e)),
            Err(e) => {
                errors += 1;
                let mut v = json!({ "type": "error", "userId": user });
                if let (Some(v), Value::Object(extra)) = (v.as_object_mut(), error_json(&e)) {
                    v.extend(extra);
                }
                if s.out.json {
                    s.out.json(&v);
                } else {
                    bar.suspend(|| {
                        s.out
                            .note(format!("{} user {user}: {e}", s.out.bad("error:")))
                    });
                }
                Ok(json!({ "error": e.to_string() }))
            }
        },
    )?;
    let earlier_findings: u64 = state
        .as_ref()
        .map(|st| {
            st.results()
                .filter(|(id, _)| !findings.iter().any(|f| f["userId"] == id.as_str()))
                .filter_map(|(_, r)| r["findings"].as_u64())
                .sum()
        })
        .unwrap_or(0);

    if s.out.json {
        s.out.json(&json!({
            "type": "summary",
            "users": users.len(),
            "checked": ran.now,
            "checkedEarlier": ran.earlier,
            "findings": findings.len(),
            "errors": errors,
            "interrupted": ran.interrupted,
        }));
    } else {
        print_table(s, &findings);
        s.out.line(format!(
            "Checked {} of {} user(s){}: {} unresolved failure(s), {} error(s)",
            ran.now + ran.earlier,
            users.len(),
            if ran.earlier > 0 {
                format!(
                    " ({} in an earlier run, {earlier_findings} failure(s) reported then)",
                    ran.earlier
                )
            } else {
                String::new()
            },
            findings.len(),
            errors
        ));
    }
    if ran.interrupted {
        s.out.note(format!(
            "Interrupted: {} checked now, {} left. Run the same command again to resume{}.",
            ran.now,
            users.len() - ran.now - ran.earlier,
            state
                .as_ref()
                .map(|st| format!(" (state in {})", st.path().display()))
                .unwrap_or_default()
        ));
        return Ok(EXIT_INTERRUPTED);
    }
    if let Some(st) = state {
        st.complete()?;
    }
    Ok(if errors > 0 {
        EXIT_ERROR
    } else if !findings.is_empty() || earlier_findings > 0 {
        EXIT_ATTENTION
    } else {
        EXIT_OK
    })
}

fn users(args: &TriageArgs) -> Result<Vec<UserId>, CliError> {
    let raw: Vec<(usize, String)> = match &args.users_from {
        Some(path) => plan_state::read_list(path)?,
        None => args
            .users
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, u)| (i + 1, u))
            .collect(),
    };
    raw.into_iter()
        .map(|(line, id)| {
            UserId::new(id.as_str()).map_err(|e| match &args.users_from {
                Some(path) => CliError::usage(format!("{}:{line}: {e}", path.display())),
                None => CliError::Api(e.into()),
            })
        })
        .collect()
}

fn finding_json(user: &str, f: &UnresolvedFailure) -> Value {
    json!({
        "type": "finding",
        "userId": user,
        "jobId": f.job_id.as_str(),
        "connectionId": f.connection_id.as_ref().map(|c| c.as_str()),
        "institution": f.institution,
        "step": f.step.to_string(),
        "code": f.failure.code.to_string(),
        "failure": f.failure.to_string(),
        "failedAt": f.failed_at.map(rfc3339),
        "consecutiveFailures": f.consecutive_failures,
        "retryInProgress": f.retry_in_progress.as_ref().map(|j| j.as_str()),
        "class": class_label(&f.class),
        "whose": whose_move(&f.class),
        "action": f.action.to_string(),
        "retryAt": f.retry_at.map(rfc3339),
    })
}

fn print_table(s: &Session, findings: &[Value]) {
    if findings.is_empty() {
        return;
    }
    let mut rows = vec![header(&[
        "user",
        "connection",
        "institution",
        "step",
        "code",
        "who acts",
        "what to do",
    ])];
    for f in findings {
        let text = |k: &str| or_dash(f[k].as_str());
        rows.push(vec![
            text("userId"),
            text("connectionId"),
            text("institution"),
            text("step"),
            text("code"),
            text("whose"),
            text("action"),
        ]);
    }
    s.out.line(table(&rows));
}
