//! Printing: human text (colours only on a terminal, never with `NO_COLOR`) or JSON, errors with
//! Basiq's code, title, detail and the ids, and the exit codes.

use std::io::{IsTerminal, Write};

use basiq::jobs::FailureClass;
use basiq::refresh::SkipReason;
use basiq::RefreshOutcome;
use indicatif::style::ProgressStyle;
use serde_json::{json, Value};

/// Success, or nothing to report.
pub(crate) const EXIT_OK: i32 = 0;
/// A call failed (Basiq's error, transport, configuration).
pub(crate) const EXIT_ERROR: i32 = 1;
/// Bad usage (clap's code, also for a missing `BASIQ_API_KEY`).
pub(crate) const EXIT_USAGE: i32 = 2;
/// The command ran, and the verdict needs someone's attention: a job failed, triage found
/// unresolved failures, a refresh was not sent, a webhook did not verify.
pub(crate) const EXIT_ATTENTION: i32 = 3;
/// `jobs wait`: the job was still running at the deadline.
pub(crate) const EXIT_TIMED_OUT: i32 = 4;
/// `jobs wait`: the job waits for the user's answer to an MFA challenge.
pub(crate) const EXIT_MFA: i32 = 5;
/// Stopped by Ctrl-C (128 + SIGINT, as shells report it).
pub(crate) const EXIT_INTERRUPTED: i32 = 130;

/// How to print.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub(crate) json: bool,
    color: bool,
}

impl Output {
    pub(crate) fn new(json: bool) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = !json && !no_color && std::io::stdout().is_terminal();
        console_colors(color);
        Self { json, color }
    }

    /// One JSON document (or JSON line) on stdout.
    pub(crate) fn json(&self, value: &Value) {
        let mut out = std::io::stdout().lock();
        let _ = serde_json::to_writer(&mut out, value);
        let _ = writeln!(out);
        let _ = out.flush();
    }

    /// A human line on stdout.
    pub(crate) fn line(&self, text: impl AsRef<str>) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", text.as_ref());
        let _ = out.flush();
    }

    /// A human line on stderr (progress, notes), kept off stdout so it can be piped.
    pub(crate) fn note(&self, text: impl AsRef<str>) {
        if !self.json {
            eprintln!("{}", text.as_ref());
        }
    }

    pub(crate) fn good(&self, text: &str) -> String {
        self.paint(text, console::Style::new().green())
    }

    pub(crate) fn bad(&self, text: &str) -> String {
        self.paint(text, console::Style::new().red().bold())
    }

    pub(crate) fn warn(&self, text: &str) -> String {
        self.paint(text, console::Style::new().yellow())
    }

    pub(crate) fn dim(&self, text: &str) -> String {
        self.paint(text, console::Style::new().dim())
    }

    fn paint(&self, text: &str, style: console::Style) -> String {
        if self.color {
            style.apply_to(text).to_string()
        } else {
            text.to_owned()
        }
    }

    /// A bar for `total` items (drawn only on a terminal, never with `--json`).
    pub(crate) fn bar(&self, total: u64, what: &str) -> indicatif::ProgressBar {
        if !crate::session::progress_allowed(self.json) {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::new(total);
        let template = format!("{{spinner}} {what} [{{bar:30}}] {{pos}}/{{len}} {{msg}}");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    }
}

fn console_colors(on: bool) {
    console::set_colors_enabled(on);
    console::set_colors_enabled_stderr(on);
}

/// A command's failure, with its exit code.
#[derive(Debug)]
pub(crate) enum CliError {
    /// Used wrongly (exit 2).
    Usage(String),
    /// The SDK said no (exit 1).
    Api(basiq::Error),
    /// Anything else that stops the command (exit 1): a file, the emulator.
    Other(String),
}

impl CliError {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::Usage(message.into())
    }

    pub(crate) fn other(message: impl Into<String>) -> Self {
        Self::Other(message.into())
    }

    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Self::Usage(_) => EXIT_USAGE,
            Self::Api(_) | Self::Other(_) => EXIT_ERROR,
        }
    }

    /// Prints it on stderr: `error: …` (the SDK's `Display` already carries Basiq's code,
    /// title, detail and the ids), or one JSON object with the same fields apart.
    pub(crate) fn print(&self, out: &Output) {
        if out.json {
            eprintln!("{}", json!({ "error": self.to_json() }));
        } else {
            eprintln!("{} {}", out.bad("error:"), self.message());
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Usage(m) | Self::Other(m) => m.clone(),
            Self::Api(e) => e.to_string(),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Self::Usage(m) => json!({ "kind": "usage", "message": m }),
            Self::Other(m) => json!({ "kind": "other", "message": m }),
            Self::Api(e) => error_json(e),
        }
    }
}

impl From<basiq::Error> for CliError {
    fn from(e: basiq::Error) -> Self {
        Self::Api(e)
    }
}

impl From<basiq::id::InvalidId> for CliError {
    fn from(e: basiq::id::InvalidId) -> Self {
        Self::Api(basiq::Error::from(e))
    }
}

/// An SDK error as JSON: kind, HTTP status, Basiq's code/title/detail, the ids and the message.
pub(crate) fn error_json(e: &basiq::Error) -> Value {
    let item = e.api_error().and_then(|a| a.errors.first());
    let ctx = e.context();
    json!({
        "kind": format!("{:?}", e.kind()),
        "status": e.status().map(|s| s.as_u16()),
        "code": e.code(),
        "title": item.and_then(|i| i.title.as_deref()),
        "detail": item.and_then(|i| i.detail.as_deref()),
        "userId": ctx.and_then(|c| c.user_id.as_ref()).map(|i| i.as_str()),
        "connectionId": ctx.and_then(|c| c.connection_id.as_ref()).map(|i| i.as_str()),
        "jobId": ctx.and_then(|c| c.job_id.as_ref()).map(|i| i.as_str()),
        "correlationId": ctx.and_then(|c| c.correlation_id.as_deref()),
        "message": e.to_string(),
    })
}

/// A short, stable label for a failure class (JSON `class`).
pub(crate) fn class_label(class: &FailureClass) -> &'static str {
    match class {
        FailureClass::UserActionRequired(_) => "user-action-required",
        FailureClass::Transient { .. } => "transient",
        FailureClass::ServerManagedRetry { .. } => "server-managed-retry",
        FailureClass::InstitutionOutage => "institution-outage",
        FailureClass::FileProblem => "file-problem",
        FailureClass::Permanent => "permanent",
        _ => "unknown",
    }
}

/// Whose move it is: the user's, or "their end" (the institution / Basiq).
pub(crate) fn whose_move(class: &FailureClass) -> &'static str {
    match class {
        FailureClass::UserActionRequired(_) | FailureClass::FileProblem => "the user",
        FailureClass::InstitutionOutage => "their end",
        FailureClass::Transient { .. } | FailureClass::ServerManagedRetry { .. } => "nobody: wait",
        _ => "support",
    }
}

/// Why a refresh was not sent, for an operator.
pub(crate) fn skip_text(reason: &SkipReason) -> String {
    match reason {
        SkipReason::Inactive(status) => format!(
            "the connection is {status}, only active connections may be refreshed{}",
            if status.as_str() == "invalid" {
                " (the user must re-enter their credentials first)"
            } else {
                ""
            }
        ),
        SkipReason::NotRefreshable(method) => {
            format!("{method} connections (uploaded statements) cannot be refreshed")
        }
        SkipReason::InProgress(job) => {
            format!("job {job} is already running for it: follow it (basiq jobs wait {job})")
        }
        SkipReason::LastAttemptFailed {
            job_id, retry_at, ..
        } => match retry_at {
            Some(at) => format!("its last job {job_id} failed; retry after {}", rfc3339(*at)),
            None => {
                format!("its last job {job_id} failed and nothing has fixed it (see basiq triage)")
            }
        },
        SkipReason::RecentlyRefreshed { last, next_allowed } => format!(
            "refreshed at {}; Basiq asks to refresh rarely: next allowed at {}",
            rfc3339(*last),
            rfc3339(*next_allowed)
        ),
        SkipReason::DailyQuotaExhausted { resets_at } => format!(
            "the open-banking quota of 20 refreshes a day is used; it resets at {}",
            rfc3339(*resets_at)
        ),
        SkipReason::RefreshedByBasiq { at, next_allowed } => format!(
            "Basiq refreshed it at {} (smart cache); next refresh by hand allowed at {}",
            rfc3339(*at),
            rfc3339(*next_allowed)
        ),
        other => format!("{other:?}"),
    }
}

/// A stable name for a skip reason (JSON `reason`).
pub(crate) fn skip_label(reason: &SkipReason) -> &'static str {
    match reason {
        SkipReason::Inactive(_) => "inactive",
        SkipReason::NotRefreshable(_) => "not-refreshable",
        SkipReason::InProgress(_) => "in-progress",
        SkipReason::LastAttemptFailed { .. } => "last-attempt-failed",
        SkipReason::RecentlyRefreshed { .. } => "recently-refreshed",
        SkipReason::DailyQuotaExhausted { .. } => "daily-quota-exhausted",
        SkipReason::RefreshedByBasiq { .. } => "refreshed-by-basiq",
        _ => "other",
    }
}

/// A refresh outcome as `(label, human text, job)`.
pub(crate) fn refresh_summary(outcome: &RefreshOutcome) -> (&'static str, String) {
    match outcome {
        RefreshOutcome::Started(job) => ("started", format!("refresh started: job {job}")),
        RefreshOutcome::AlreadyRunning(job) => (
            "already-running",
            format!("Basiq is already refreshing it: job {job} (follow it, none started)"),
        ),
        RefreshOutcome::Skipped(reason) => ("skipped", format!("not sent: {}", skip_text(reason))),
        RefreshOutcome::Paused { until, job_id } => (
            "paused",
            format!(
                "not sent: Basiq pauses a duplicate attempt (job {job_id}) until {}",
                rfc3339(*until)
            ),
        ),
        _ => ("other", format!("{outcome:?}")),
    }
}

/// A refresh outcome as JSON.
pub(crate) fn refresh_json(outcome: &RefreshOutcome) -> Value {
    let (label, text) = refresh_summary(outcome);
    json!({
        "outcome": label,
        "sent": outcome.was_sent(),
        "jobId": outcome.job_id().map(|j| j.as_str()),
        "reason": match outcome {
            RefreshOutcome::Skipped(r) => Some(skip_label(r)),
            _ => None,
        },
        "message": text,
    })
}

/// RFC 3339, whole seconds.
pub(crate) fn rfc3339(t: time::OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Pads the columns of `rows` (the first row is the header).
pub(crate) fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.trim_end().to_owned()
}
