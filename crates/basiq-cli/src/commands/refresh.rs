//! `refresh USER CONNECTION` (through the guard) and `refresh plan` (many, paced).
//!
//! There is no "refresh all" here either: a plan places each connection on the SDK's grid
//! (`connections().plan_refreshes`, at most `--max-per-minute` in any 60 s), and executing it
//! sends each one at its slot through `connections().refresh` — the guard that reads the
//! connection and its jobs and sends nothing when Basiq's rules say no.

use std::collections::HashMap;
use std::num::NonZeroU32;

use basiq::id::{ConnectionId, UserId};
use basiq::RefreshOutcome;
use serde_json::{json, Value};

use super::paced::{self, Slot};
use super::resources::header;
use crate::cli::{RefreshArgs, RefreshCommand};
use crate::output::{
    error_json, refresh_json, refresh_summary, rfc3339, table, CliError, EXIT_ATTENTION,
    EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK,
};
use crate::plan_state::{self, PlanState};
use crate::session::Session;

pub(crate) fn run(s: &Session, args: &RefreshArgs) -> Result<i32, CliError> {
    match (&args.plan, &args.user, &args.connection) {
        (
            Some(RefreshCommand::Plan {
                from,
                execute,
                pacing,
            }),
            _,
            _,
        ) => plan(s, from, *execute, pacing),
        (None, Some(user), Some(connection)) => one(s, user, connection),
        _ => Err(CliError::usage(
            "refresh needs USER CONNECTION, or `refresh plan`",
        )),
    }
}

fn one(s: &Session, user: &str, connection: &str) -> Result<i32, CliError> {
    let outcome = s.client.connections().refresh(user, connection)?;
    if s.out.json {
        let mut v = refresh_json(&outcome);
        v["userId"] = json!(user);
        v["connectionId"] = json!(connection);
        s.out.json(&v);
    } else {
        let (_, text) = refresh_summary(&outcome);
        s.out.line(format!("{connection}: {text}"));
    }
    Ok(if outcome.was_sent() {
        EXIT_OK
    } else {
        EXIT_ATTENTION
    })
}

fn plan(
    s: &Session,
    from: &std::path::Path,
    execute: bool,
    pacing: &crate::cli::PacingArgs,
) -> Result<i32, CliError> {
    let pairs = read_pairs(from)?;
    let owner: HashMap<ConnectionId, UserId> =
        pairs.iter().map(|(u, c)| (c.clone(), u.clone())).collect();
    let candidates: Vec<ConnectionId> = pairs.iter().map(|(_, c)| c.clone()).collect();
    let rate = pacing
        .max_per_minute
        .unwrap_or(basiq::DEFAULT_MAX_REFRESHES_PER_MINUTE);
    let rate_nz = NonZeroU32::new(rate)
        .ok_or_else(|| CliError::usage("--max-per-minute must be at least 1"))?;
    let window = pacing
        .window
        .unwrap_or_else(|| basiq::plan::TriageScheduler::tightest(owner.len(), rate).window());
    let scheduler = basiq::refresh::RefreshScheduler::new(window, rate);

    let state_path = pacing
        .state
        .clone()
        .unwrap_or_else(|| plan_state::default_path(from));
    let expected = plan_state::header(
        "refresh",
        s.now(),
        window,
        rate,
        owner.len(),
        plan_state::digest(owner.keys().map(ConnectionId::as_str)),
    );
    // Printing a plan never writes a state file; executing one always does. Printing the plan
    // of an interrupted run shows the slots the resume will use.
    let mut state = None;
    let (mut start, mut jitter) = (expected.start, expected.jitter);
    if execute || state_path.exists() {
        let (st, resumed) = PlanState::open(&state_path, expected)?;
        (start, jitter) = (st.header.start, st.header.jitter);
        if resumed {
            s.out.note(format!(
                "Resuming: {} of {} refreshes already ran ({})",
                st.done_count(),
                owner.len(),
                st.path().display()
            ));
        }
        state = Some(st);
    }
    let schedule = scheduler.schedule(start, &candidates, jitter);

    if !execute {
        let done = state.as_ref().map_or(0, PlanState::done_count);
        if done > 0 {
            s.out.note(format!(
                "{done} of {} already ran in an interrupted run ({}); --execute resumes it",
                owner.len(),
                state_path.display()
            ));
        }
        if s.out.json {
            s.out.json(&json!({
                "window": humantime::format_duration(window).to_string(),
                "maxPerMinute": rate,
                "planned": schedule.planned.iter().map(|p| json!({
                    "at": rfc3339(p.at),
                    "userId": owner.get(&p.connection_id).map(|u| u.as_str()),
                    "connectionId": p.connection_id.as_str(),
                })).collect::<Vec<_>>(),
                "overflow": schedule.overflow.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            }));
        } else {
            let mut rows = vec![header(&["at", "user", "connection"])];
            for p in &schedule.planned {
                rows.push(vec![
                    rfc3339(p.at),
                    owner
                        .get(&p.connection_id)
                        .map(|u| u.to_string())
                        .unwrap_or_default(),
                    p.connection_id.to_string(),
                ]);
            }
            s.out.line(table(&rows));
            s.out.line(format!(
                "{} refresh(es) over {} at most {rate} a minute; each goes through the guard \
                 when run (add --execute){}",
                schedule.planned.len(),
                humantime::format_duration(window),
                overflow_note(&schedule.overflow)
            ));
        }
        return Ok(EXIT_OK);
    }

    s.out.note(format!(
        "Running {} refresh(es) over {} at most {rate} a minute{}",
        schedule.planned.len(),
        humantime::format_duration(window),
        overflow_note(&schedule.overflow)
    ));
    let slots: Vec<Slot> = schedule
        .planned
        .iter()
        .map(|p| Slot {
            id: p.connection_id.to_string(),
            at: p.at,
        })
        .collect();
    let bar = s.out.bar(slots.len() as u64, "refresh");
    let mut tally: HashMap<&'static str, usize> = HashMap::new();
    let mut errors = 0usize;
    let ran = paced::run(
        s,
        &slots,
        rate_nz,
        state.as_mut(),
        &bar,
        |connection, at| {
            let user = ConnectionId::new(connection)
                .ok()
                .and_then(|c| owner.get(&c).cloned())
                .ok_or_else(|| CliError::other(format!("no user for connection {connection}")))?;
            let mut line =
                json!({ "userId": user.as_str(), "connectionId": connection, "at": rfc3339(at) });
            match s.client.connections().refresh(&user, connection) {
                Ok(outcome) => {
                    let (label, text) = refresh_summary(&outcome);
                    *tally.entry(label).or_default() += 1;
                    if let (Some(l), Value::Object(extra)) =
                        (line.as_object_mut(), refresh_json(&outcome))
                    {
                        l.extend(extra);
                    }
                    if s.out.json {
                        s.out.json(&line);
                    } else if !matches!(outcome, RefreshOutcome::Started(_)) {
                        bar.suspend(|| s.out.note(format!("  {connection}: {text}")));
                    }
                }
                Err(e) if paced::stops_the_plan(&e) => return Err(CliError::Api(e)),
                Err(e) => {
                    errors += 1;
                    *tally.entry("error").or_default() += 1;
                    line["outcome"] = json!("error");
                    line["error"] = error_json(&e);
                    if s.out.json {
                        s.out.json(&line);
                    } else {
                        bar.suspend(|| {
                            s.out
                                .note(format!("  {connection}: {} {e}", s.out.bad("error:")))
                        });
                    }
                }
            }
            Ok(line)
        },
    )?;

    let mut counts: Vec<_> = tally.into_iter().collect();
    counts.sort();
    if s.out.json {
        s.out.json(&json!({
            "type": "summary",
            "planned": schedule.planned.len(),
            "ran": ran.now,
            "ranEarlier": ran.earlier,
            "overflow": schedule.overflow.len(),
            "outcomes": counts.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "interrupted": ran.interrupted,
        }));
    } else {
        let counts = counts
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ");
        s.out.line(format!(
            "Ran {} of {} refresh(es){}{}",
            ran.now,
            schedule.planned.len(),
            if ran.earlier > 0 {
                format!(" ({} in an earlier run)", ran.earlier)
            } else {
                String::new()
            },
            if counts.is_empty() {
                String::new()
            } else {
                format!(": {counts}")
            }
        ));
    }
    if ran.interrupted {
        s.out.note(format!(
            "Interrupted: {} refresh(es) ran now, {} left. Run the same command again to resume \
             (state in {}).",
            ran.now,
            schedule.planned.len() - ran.now - ran.earlier,
            state_path.display()
        ));
        return Ok(EXIT_INTERRUPTED);
    }
    if let Some(st) = state {
        st.complete()?;
    }
    Ok(if errors > 0 { EXIT_ERROR } else { EXIT_OK })
}

fn overflow_note(overflow: &[ConnectionId]) -> String {
    if overflow.is_empty() {
        String::new()
    } else {
        format!(
            "; {} connection(s) do not fit (widen --window or raise --max-per-minute): {}",
            overflow.len(),
            overflow
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// `USER CONNECTION` per line, space or comma separated.
fn read_pairs(path: &std::path::Path) -> Result<Vec<(UserId, ConnectionId)>, CliError> {
    let mut pairs = Vec::new();
    for (line, text) in plan_state::read_list(path)? {
        let at = |msg: String| CliError::usage(format!("{}:{line}: {msg}", path.display()));
        let fields: Vec<&str> = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|f| !f.is_empty())
            .collect();
        let [user, connection] = fields[..] else {
            return Err(at("expected `USER CONNECTION`".into()));
        };
        pairs.push((
            UserId::new(user).map_err(|e| at(e.to_string()))?,
            ConnectionId::new(connection).map_err(|e| at(e.to_string()))?,
        ));
    }
    Ok(pairs)
}
