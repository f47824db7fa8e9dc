//! The command line, as clap derives it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `basiq`: operate a Basiq integration without writing code. Every rule the SDK enforces
/// (one token, guarded refreshes, paced plans, ids on every error) holds here too.
///
/// Configuration: `BASIQ_API_KEY` (never an argument: it would show in the process list; never
/// printed) and `BASIQ_URL` (default Basiq's production API), or `--mock` for the embedded
/// emulator (no key needed).
#[derive(Debug, Parser)]
#[command(
    name = "basiq",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    /// Machine-readable output: JSON on stdout (one object, or one per line for streams such
    /// as findings, step events and refreshes); no progress bars, no colours.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Run against a fresh embedded emulator (basiq-mock) on virtual time instead of
    /// `BASIQ_URL`; no key needed. Everything it holds is gone when the command ends.
    #[arg(long, global = true)]
    pub(crate) mock: bool,
    /// Emulator only: take the time from the emulator at `BASIQ_URL` and wait by advancing its
    /// virtual clock (`POST /__admin/clock/advance`) instead of sleeping, so a 24 h plan runs in
    /// seconds. Refused unless `BASIQ_URL` is a loopback address that answers `/__admin/clock`:
    /// it can never change how the CLI paces real Basiq traffic.
    #[arg(long, global = true)]
    pub(crate) virtual_time: bool,
    /// Log to stderr: -v info, -vv debug, -vvv trace (ids only: keys and tokens never appear).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// The SDK's quickstart on the embedded emulator: create a user, connect a bank, follow the
    /// job, triage, a guarded refresh, clean up — and how many tokens all that took.
    Quickstart,
    /// Serve the emulator on 127.0.0.1 and print `BASIQ_URL=` / `BASIQ_API_KEY=` lines for it
    /// (its own test key, not a Basiq key); runs until interrupted.
    Mock(MockArgs),
    /// Users: create, get, delete.
    #[command(subcommand)]
    Users(UsersCommand),
    /// A user's bank connections: list, get, purge their data.
    #[command(subcommand)]
    Connections(ConnectionsCommand),
    /// Institutions per method and their health.
    #[command(subcommand)]
    Connectors(ConnectorsCommand),
    /// Jobs: follow one live to its verdict.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// What happened in the last 7 days (Basiq keeps events that long): users, connections,
    /// consents, transactions.
    #[command(subcommand)]
    Events(EventsCommand),
    /// The daily check for many users: their unresolved failures and what to do about each,
    /// spread over a window at a rate (never a burst); resumable.
    Triage(TriageArgs),
    /// Refresh one connection through the guard, or many on a paced plan.
    Refresh(RefreshArgs),
    /// Webhooks: verify a message's signature.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
}

#[derive(Debug, Args)]
pub(crate) struct MockArgs {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub(crate) port: u16,
    /// The key the emulator accepts (default: its fixed test key). An emulator key, not a
    /// Basiq one: `BASIQ_API_KEY` is never read here, so a real key is never printed.
    #[arg(long)]
    pub(crate) api_key: Option<String>,
    /// Token lifetime.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub(crate) token_ttl: Duration,
    /// Where the consent stand-in redirects after connecting.
    #[arg(long)]
    pub(crate) redirect_url: Option<String>,
    /// Freeze the emulator's clock: time moves only through `POST /__admin/clock/advance`
    /// (what `--virtual-time` clients do), so tests of pacing need no sleeps.
    #[arg(long)]
    pub(crate) virtual_clock: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum UsersCommand {
    /// Create a user (Basiq needs an email or a mobile).
    Create {
        /// Email address.
        #[arg(long)]
        email: Option<String>,
        /// Mobile in international format, e.g. +61410888666.
        #[arg(long)]
        mobile: Option<String>,
        /// First name.
        #[arg(long)]
        first_name: Option<String>,
        /// Last name.
        #[arg(long)]
        last_name: Option<String>,
    },
    /// Show a user.
    Get {
        /// The user id.
        user: String,
    },
    /// Delete a user and all their data.
    Delete {
        /// The user id.
        user: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConnectionsCommand {
    /// A user's connections.
    List {
        /// The user id.
        user: String,
    },
    /// One connection.
    Get {
        /// The user id.
        user: String,
        /// The connection id.
        connection: String,
    },
    /// Delete the data read through an active connection (the connection stays).
    Purge {
        /// The user id.
        user: String,
        /// The connection id.
        connection: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConnectorsCommand {
    /// Every connector, or with `--outages` only those partly or fully down at their end.
    List {
        /// Only connectors in `partial-outage` or `major-outage`.
        #[arg(long)]
        outages: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum EventsCommand {
    /// The events of the last 7 days, newest first, optionally only one type or one user's.
    List {
        /// Only this event type, e.g. `connection.created`, `consent.revoked`.
        #[arg(long = "type", value_name = "TYPE")]
        event_type: Option<String>,
        /// Only this user's events.
        #[arg(long)]
        user: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum JobKindArg {
    /// Creates or updates a connection.
    Create,
    /// Refreshes a connection.
    Refresh,
    /// Not known (the default).
    Unknown,
}

#[derive(Debug, Subcommand)]
pub(crate) enum JobsCommand {
    /// Follow a job live, a line (or a progress bar) per step, then its verdict: what the user
    /// must do, or "their end" during an outage. Exit 0 succeeded, 3 failed, 4 still running
    /// at the deadline, 5 waiting for the user's MFA answer.
    Wait {
        /// The job id.
        job: String,
        /// What the job does (Basiq's advice for some failures differs).
        #[arg(long, value_enum, default_value = "unknown")]
        kind: JobKindArg,
        /// Stop following after this long (the job keeps running at Basiq).
        #[arg(long, default_value = "5m", value_parser = parse_duration)]
        deadline: Duration,
    },
}

#[derive(Debug, Args)]
pub(crate) struct PacingArgs {
    /// Spread the work over this window (e.g. 24h). Default: as short as the rate allows.
    #[arg(long, value_parser = parse_duration)]
    pub(crate) window: Option<Duration>,
    /// At most this many in any 60 seconds (default: 30 checks for triage, the SDK's 10 for
    /// refreshes).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=600))]
    pub(crate) max_per_minute: Option<u32>,
    /// The state file that makes the run resumable: what ran is recorded there, and running the
    /// same command again skips it. Removed when the run completes.
    #[arg(long)]
    pub(crate) state: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct TriageArgs {
    /// Users to check.
    #[arg(required_unless_present = "users_from", conflicts_with = "users_from")]
    pub(crate) users: Vec<String>,
    /// A file of user ids, one per line (`#` comments and blank lines ignored). Its state file
    /// defaults to FILE.state.
    #[arg(long)]
    pub(crate) users_from: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) pacing: PacingArgs,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct RefreshArgs {
    /// The user.
    #[arg(required = true)]
    pub(crate) user: Option<String>,
    /// The connection.
    #[arg(required = true)]
    pub(crate) connection: Option<String>,
    #[command(subcommand)]
    pub(crate) plan: Option<RefreshCommand>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RefreshCommand {
    /// Plan refreshes of many connections over a window at a rate and print the plan; with
    /// `--execute`, run it on time, every refresh through the guard. Resumable (state file,
    /// default FILE.state); Ctrl-C stops cleanly and reports what ran.
    Plan {
        /// Connections, one `USER CONNECTION` pair per line (space or comma separated; `#`
        /// comments and blank lines ignored).
        #[arg(long)]
        from: PathBuf,
        /// Run the plan, not only print it.
        #[arg(long)]
        execute: bool,
        #[command(flatten)]
        pacing: PacingArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum WebhooksCommand {
    /// Verify a webhook message: its raw body on stdin, its headers as options. Exit 0 when
    /// Basiq signed it within the tolerance, 3 when not.
    Verify {
        /// The environment variable holding the endpoint's `whsec_…` secret (never an argument).
        #[arg(long)]
        secret_env: String,
        /// The `webhook-id` header.
        #[arg(long)]
        id: String,
        /// The `webhook-timestamp` header (Unix seconds).
        #[arg(long)]
        timestamp: String,
        /// The `webhook-signature` header (`v1,<base64>`, space separated).
        #[arg(long)]
        signature: String,
        /// Largest accepted skew between the timestamp and now.
        #[arg(long, default_value = "5m", value_parser = parse_duration)]
        tolerance: Duration,
    },
}

/// "24h", "90m", "1h 30m", "45s".
fn parse_duration(raw: &str) -> Result<Duration, String> {
    humantime::parse_duration(raw).map_err(|e| format!("{e} (e.g. 24h, 90m, 45s)"))
}
