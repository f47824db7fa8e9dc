//! The state file that makes a plan resumable.
//!
//! JSON lines: a header (which plan: kind, start, jitter, window, rate, a digest of the items),
//! then one line per item that ran, appended and synced *before* the next item starts. Running
//! the same command again reads it back: the same start and jitter give the same slots, items
//! already there are skipped, and the pacer continues from the last send — so a resumed plan
//! repeats nothing and still never exceeds its rate. The file is removed when the plan
//! completes.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::output::CliError;

/// Which plan a state file belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Header {
    pub(crate) plan: String,
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) start: OffsetDateTime,
    pub(crate) jitter: f64,
    pub(crate) window_ms: u128,
    pub(crate) max_per_minute: u32,
    pub(crate) items: usize,
    pub(crate) digest: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Done {
    id: String,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    result: Value,
}

/// An open state file.
#[derive(Debug)]
pub(crate) struct PlanState {
    path: PathBuf,
    file: File,
    pub(crate) header: Header,
    done: HashMap<String, Value>,
    last_sent: Option<OffsetDateTime>,
}

/// A digest of the plan's items, so a state file is never applied to another list.
pub(crate) fn digest<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    let mut ids: Vec<&str> = ids.into_iter().collect();
    ids.sort_unstable();
    format!(
        "{:016x}",
        basiq::refresh::fnv1a64(ids.join("\n").as_bytes())
    )
}

impl PlanState {
    /// Resumes the plan in `path`, or starts one with `fresh` (start time, jitter) when there is
    /// no file. A file for another plan (other kind, window, rate or items) is refused.
    pub(crate) fn open(path: &Path, expected: Header) -> Result<(Self, bool), CliError> {
        let io = |e: std::io::Error| CliError::other(format!("state file {}: {e}", path.display()));
        if path.exists() {
            let reader = BufReader::new(File::open(path).map_err(io)?);
            let mut lines = reader.lines();
            let header: Header = match lines.next() {
                Some(line) => serde_json::from_str(&line.map_err(io)?).map_err(|e| {
                    CliError::other(format!(
                        "state file {} is not a plan's state ({e}); remove it to start over",
                        path.display()
                    ))
                })?,
                None => expected.clone(),
            };
            let same = header.plan == expected.plan
                && header.window_ms == expected.window_ms
                && header.max_per_minute == expected.max_per_minute
                && header.items == expected.items
                && header.digest == expected.digest;
            if !same {
                return Err(CliError::usage(format!(
                    "state file {} belongs to another plan (other list, window or rate); remove \
                     it to start over, or pass another --state",
                    path.display()
                )));
            }
            let mut done = HashMap::new();
            let mut last_sent: Option<OffsetDateTime> = None;
            for line in lines {
                let line = line.map_err(io)?;
                // A line cut short by a crash mid-write is the item that did not finish.
                let Ok(entry) = serde_json::from_str::<Done>(&line) else {
                    continue;
                };
                last_sent = Some(last_sent.map_or(entry.at, |l| l.max(entry.at)));
                done.insert(entry.id, entry.result);
            }
            let file = OpenOptions::new().append(true).open(path).map_err(io)?;
            let state = Self {
                path: path.to_owned(),
                file,
                header,
                done,
                last_sent,
            };
            let resumed = !state.done.is_empty();
            return Ok((state, resumed));
        }
        let mut file = File::create(path).map_err(io)?;
        let line = serde_json::to_string(&expected).map_err(|e| CliError::other(e.to_string()))?;
        writeln!(file, "{line}").map_err(io)?;
        file.sync_data().map_err(io)?;
        Ok((
            Self {
                path: path.to_owned(),
                file,
                header: expected,
                done: HashMap::new(),
                last_sent: None,
            },
            false,
        ))
    }

    /// Whether `id` already ran.
    pub(crate) fn is_done(&self, id: &str) -> bool {
        self.done.contains_key(id)
    }

    /// How many items already ran.
    pub(crate) fn done_count(&self) -> usize {
        self.done.len()
    }

    /// The results recorded so far.
    pub(crate) fn results(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.done.iter()
    }

    /// The last send recorded (for the pacer).
    pub(crate) fn last_sent(&self) -> Option<OffsetDateTime> {
        self.last_sent
    }

    /// Records that `id` ran at `at`, durably, before the next item starts.
    pub(crate) fn record(
        &mut self,
        id: &str,
        at: OffsetDateTime,
        result: Value,
    ) -> Result<(), CliError> {
        let entry = Done {
            id: id.to_owned(),
            at,
            result,
        };
        let line = serde_json::to_string(&entry).map_err(|e| CliError::other(e.to_string()))?;
        let io =
            |e: std::io::Error| CliError::other(format!("state file {}: {e}", self.path.display()));
        writeln!(self.file, "{line}").map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.last_sent = Some(self.last_sent.map_or(at, |l| l.max(at)));
        self.done.insert(entry.id, entry.result);
        Ok(())
    }

    /// The plan completed: the state is no longer needed.
    pub(crate) fn complete(self) -> Result<(), CliError> {
        std::fs::remove_file(&self.path)
            .map_err(|e| CliError::other(format!("state file {}: {e}", self.path.display())))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// A new plan's header.
pub(crate) fn header(
    plan: &str,
    start: OffsetDateTime,
    window: Duration,
    max_per_minute: u32,
    items: usize,
    digest: String,
) -> Header {
    Header {
        plan: plan.to_owned(),
        start,
        jitter: fastrand::f64(),
        window_ms: window.as_millis(),
        max_per_minute,
        items,
        digest,
    }
}

/// `FILE.state` beside `file`.
pub(crate) fn default_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".state");
    PathBuf::from(name)
}

/// Reads the non-empty, non-comment lines of a list file, with their line numbers.
pub(crate) fn read_list(path: &Path) -> Result<Vec<(usize, String)>, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::other(format!("cannot read {}: {e}", path.display())))?;
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim().to_owned()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect())
}
