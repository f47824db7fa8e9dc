//! # `basiq`, the operator CLI
//!
//! The people who run a Basiq integration act with it without writing code: see why a user's
//! bank connection fails, check connector outages, follow a job live, run the daily triage over
//! all users and execute a refresh plan that respects Basiq's rules. It is built on the `basiq`
//! facade, so every rule the SDK enforces holds here too: one cached server token, ids validated
//! before any request, refreshes only through the guard, plans paced under a per-minute cap,
//! errors with Basiq's code, title, detail and the ids.
//!
//! ```text
//! cargo run -p basiq-cli -- quickstart                 # the SDK's quickstart, embedded emulator
//! export BASIQ_API_KEY=…                               # never an argument, never printed
//! basiq connectors list --outages
//! basiq jobs wait 61723 --kind create                  # live steps, then the verdict
//! basiq events list --user USER --type consent.revoked # the last 7 days' events
//! basiq triage --users-from users.txt --window 24h --max-per-minute 30 --json
//! basiq refresh USER CONNECTION                        # guarded: prints why not, if not
//! basiq refresh plan --from conns.txt --window 24h --max-per-minute 10 --execute
//! basiq webhooks verify --secret-env BASIQ_WEBHOOK_SECRET --id … --timestamp … --signature … < body.json
//! basiq mock --port 0                                  # serve the emulator, print BASIQ_URL/BASIQ_API_KEY
//! ```
//!
//! ## The blocking client, and why
//!
//! The CLI uses `basiq::blocking::Client` (ureq, no async runtime). A command is one sequence of
//! calls — a plan sends one request at a time on purpose — so an async runtime would buy no
//! concurrency, only a larger binary and a harder Ctrl-C story. Blocking, a Ctrl-C handler just
//! sets a flag that the plan checks between two sends and that wakes any wait, so an interrupted
//! plan always stops at a clean point and reports what ran.
//!
//! ## Configuration
//!
//! `BASIQ_API_KEY` (required unless `--mock`) and `BASIQ_URL` (default Basiq's API). `--mock`
//! runs the command against a fresh embedded emulator on virtual time. `--json` on every command
//! prints JSON on stdout (streams — findings, step events, refreshes — as one object per line);
//! an error is then one `{"error": {kind, status, code, title, detail, userId, connectionId,
//! jobId, correlationId, message}}` object on stderr.
//! Progress bars are drawn only on a terminal and never with `--json`; colours only on a
//! terminal and never with `NO_COLOR`. `-v`/`-vv`/`-vvv` log to stderr (ids, never a key or a
//! token).
//!
//! `--virtual-time` (emulators only) takes the time from the emulator at `BASIQ_URL` and waits
//! by advancing its virtual clock through `/__admin/clock/advance`: a 24-hour plan runs in
//! seconds against `basiq mock --virtual-clock`, which is how the CLI's own tests check pacing
//! without sleeping. It is refused unless `BASIQ_URL` is a loopback emulator.
//!
//! ## Plans: never a burst, resumable
//!
//! `triage` and `refresh plan --execute` place each user or connection on the SDK's grid
//! (`basiq::plan::TriageScheduler`, `basiq::refresh::RefreshScheduler`: slots `60 s / N` apart,
//! stable per id) and send through `basiq::plan::Pacer`, so no 60 seconds ever hold more than
//! `--max-per-minute`, even after a slow answer or a resume. What ran is appended to a state
//! file (`--state`, default `FILE.state` beside `--users-from` / `--from`) before the next item
//! starts; running the same command again resumes the same plan (same start, same slots) and
//! skips what ran, and the file is removed when the plan completes. Ctrl-C stops between two
//! items (a second Ctrl-C exits at once) and reports what ran.
//!
//! ## Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done, nothing needs attention |
//! | 1 | a call failed (Basiq's error, transport), or a file could not be read |
//! | 2 | usage (including a missing `BASIQ_API_KEY`) |
//! | 3 | done, and the verdict needs attention: a job failed, triage found failures, a refresh was not sent, a webhook did not verify |
//! | 4 | `jobs wait`: still running at the deadline |
//! | 5 | `jobs wait`: waiting for the user's MFA answer |
//! | 130 | interrupted (Ctrl-C); the state file resumes it |
//!
//! `basiq events list` is not there yet: the SDK has no events endpoint.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]
// `basiq::Error` carries the ids support needs inline; see the facade's note.
#![allow(clippy::result_large_err)]

mod cli;
mod commands;
mod output;
mod plan_state;
mod session;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::output::{CliError, Output};
use crate::session::{Interrupt, Session};

fn main() {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let out = Output::new(cli.json);
    let code = match run(&cli, out) {
        Ok(code) => code,
        Err(e) => {
            e.print(&out);
            e.exit_code()
        }
    };
    std::process::exit(code);
}

fn run(cli: &Cli, out: Output) -> Result<i32, CliError> {
    let interrupt = Interrupt::install();
    let open = || Session::open(cli, out, interrupt.clone());
    match &cli.command {
        Command::Quickstart => commands::quickstart::run(&Session::embedded(out, interrupt)),
        Command::Mock(args) => commands::mock::run(args, out, &interrupt),
        Command::Webhooks(cmd) => commands::webhooks::run(cmd, out),
        Command::Users(cmd) => commands::resources::users(&open()?, cmd),
        Command::Connections(cmd) => commands::resources::connections(&open()?, cmd),
        Command::Connectors(cmd) => commands::resources::connectors(&open()?, cmd),
        Command::Jobs(cmd) => commands::jobs::run(&open()?, cmd),
        Command::Events(cmd) => commands::resources::events(&open()?, cmd),
        Command::Triage(args) => commands::triage::run(&open()?, args),
        Command::Refresh(args) => commands::refresh::run(&open()?, args),
    }
}

/// `-v` info, `-vv` debug, `-vvv` trace, to stderr. The SDK never logs a key or a token, at any
/// level (the CLI's tests check the output at `-vvv`).
fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let ansi = std::env::var_os("NO_COLOR").is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}
