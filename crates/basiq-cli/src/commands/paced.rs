//! Running a plan on time: each item at its slot, through the SDK's `Pacer`, recorded in the
//! state file before the next one, stopping cleanly on Ctrl-C.

use std::num::NonZeroU32;

use basiq::plan::Pacer;
use serde_json::Value;
use time::OffsetDateTime;

use crate::output::CliError;
use crate::plan_state::PlanState;
use crate::session::Session;

/// One item of a plan: its id (user or connection) and its slot.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub(crate) id: String,
    pub(crate) at: OffsetDateTime,
}

/// What a run did.
#[derive(Debug, Default)]
pub(crate) struct Ran {
    /// Items run now.
    pub(crate) now: usize,
    /// Items skipped because an earlier run did them (from the state file).
    pub(crate) earlier: usize,
    /// Stopped by Ctrl-C before the end.
    pub(crate) interrupted: bool,
}

/// Whether a per-item error should stop the whole plan: the key or the configuration is wrong,
/// or Basiq throttles us — every later item would fail the same way.
pub(crate) fn stops_the_plan(e: &basiq::Error) -> bool {
    use basiq::ErrorKind as K;
    matches!(
        e.kind(),
        K::InvalidApiKey | K::Config | K::Unauthorized | K::RateLimited
    )
}

/// Runs `slots` in order: waits for each slot (never closer than one grid step to the previous
/// send), calls `item` with the id and the send time, records its result in `state`, advances
/// `bar`. Stops between two items on Ctrl-C.
pub(crate) fn run(
    s: &Session,
    slots: &[Slot],
    max_per_minute: NonZeroU32,
    mut state: Option<&mut PlanState>,
    bar: &indicatif::ProgressBar,
    mut item: impl FnMut(&str, OffsetDateTime) -> Result<Value, CliError>,
) -> Result<Ran, CliError> {
    let mut ran = Ran::default();
    let mut pacer = Pacer::resume(max_per_minute, state.as_ref().and_then(|st| st.last_sent()));
    for slot in slots {
        if state.as_ref().is_some_and(|st| st.is_done(&slot.id)) {
            ran.earlier += 1;
            bar.inc(1);
            continue;
        }
        if s.interrupt.is_set() {
            ran.interrupted = true;
            break;
        }
        let wait = pacer.wait(slot.at, s.now());
        if !wait.is_zero() && !s.sleep(wait) {
            ran.interrupted = true;
            break;
        }
        let at = s.now();
        pacer.sent(at);
        let result = item(&slot.id, at)?;
        if let Some(st) = state.as_deref_mut() {
            st.record(&slot.id, at, result)?;
        }
        ran.now += 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(ran)
}
