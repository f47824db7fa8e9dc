//! What every command runs with: the client, its time, the output mode and Ctrl-C.

use std::fmt;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use basiq::clock::{Clock, ManualClock};
use basiq_mock::MockServer;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::cli::Cli;
use crate::output::{CliError, Output};

/// Where the CLI's "now" comes from and how it waits.
#[derive(Debug, Clone)]
pub(crate) struct Timekeeper(Arc<Time>);

#[derive(Debug)]
enum Time {
    /// Real time: waits sleep (and wake on Ctrl-C).
    Wall,
    /// The embedded emulator's virtual clock, shared in-process: waits advance it.
    Manual(ManualClock),
    /// A loopback emulator's virtual clock through its admin API (`--virtual-time`).
    Emulator(Admin),
}

/// The emulator's `/__admin` API (no authentication: it only ever listens on 127.0.0.1).
pub(crate) struct Admin {
    agent: ureq::Agent,
    base: String,
    /// The last time read, for a failed read: time that stands still only makes a plan wait
    /// longer, where a jump to the wall clock could release every overdue send at once.
    last: Mutex<Option<OffsetDateTime>>,
    /// The emulator's clock stands still unless advanced (`basiq mock --virtual-clock`, a test's
    /// `ManualClock`): then the time the last read or advance returned *is* its time until the
    /// next advance, and `now` needs no request. If something else advances it meanwhile, this
    /// copy is behind: waits come out longer and each advance resynchronises, so pacing only
    /// gets more conservative.
    frozen: bool,
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin").field("base", &self.base).finish()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClockAnswer {
    now_exact: String,
}

impl Admin {
    fn new(base: &str) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(10))
            .build();
        Self {
            agent,
            base: base.trim_end_matches('/').to_owned(),
            last: Mutex::new(None),
            frozen: false,
        }
    }

    /// Whether the emulator's clock stands still between advances: two reads a moment apart
    /// return the same instant, to the nanosecond (a running clock never does).
    fn detect_frozen(mut self) -> Result<Self, String> {
        let first = self.now()?;
        std::thread::sleep(Duration::from_millis(2));
        self.frozen = self.now()? == first;
        Ok(self)
    }

    fn remember(&self, now: OffsetDateTime) -> OffsetDateTime {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
        now
    }

    fn last_known(&self) -> Option<OffsetDateTime> {
        *self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn parse(answer: ClockAnswer) -> Result<OffsetDateTime, String> {
        OffsetDateTime::parse(
            &answer.now_exact,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|e| format!("the emulator's clock answer is not RFC 3339: {e}"))
    }

    fn now(&self) -> Result<OffsetDateTime, String> {
        if self.frozen {
            if let Some(now) = self.last_known() {
                return Ok(now);
            }
        }
        let answer: ClockAnswer = self
            .agent
            .get(&format!("{}/__admin/clock", self.base))
            .call()
            .map_err(|e| format!("cannot read the emulator's clock: {e}"))?
            .into_json()
            .map_err(|e| format!("cannot read the emulator's clock: {e}"))?;
        Self::parse(answer).map(|now| self.remember(now))
    }

    fn advance(&self, by: Duration) -> Result<OffsetDateTime, String> {
        let answer: ClockAnswer = self
            .agent
            .post(&format!("{}/__admin/clock/advance", self.base))
            .send_json(serde_json::json!({ "seconds": by.as_secs_f64() }))
            .map_err(|e| format!("cannot advance the emulator's clock: {e}"))?
            .into_json()
            .map_err(|e| format!("cannot advance the emulator's clock: {e}"))?;
        Self::parse(answer).map(|now| self.remember(now))
    }
}

impl Clock for Timekeeper {
    fn now(&self) -> OffsetDateTime {
        match &*self.0 {
            Time::Wall => OffsetDateTime::now_utc(),
            Time::Manual(clock) => clock.now(),
            // Read at start-up, so a failed read later falls back to the last time read.
            Time::Emulator(admin) => admin.now().unwrap_or_else(|e| {
                tracing::warn!("{e}");
                admin.last_known().unwrap_or_else(OffsetDateTime::now_utc)
            }),
        }
    }
}

impl Timekeeper {
    /// Waits `by`; returns `false` when Ctrl-C cut the wait short.
    pub(crate) fn sleep(&self, by: Duration, interrupt: &Interrupt) -> bool {
        if interrupt.is_set() {
            return false;
        }
        match &*self.0 {
            Time::Wall => interrupt.wait(by),
            Time::Manual(clock) => {
                clock.advance(by);
                true
            }
            Time::Emulator(admin) => {
                if let Err(e) = admin.advance(by) {
                    tracing::warn!("{e}");
                }
                !interrupt.is_set()
            }
        }
    }
}

/// Ctrl-C: the first one asks the running command to stop at the next safe point (between two
/// sends, or during a wait); a second one ends the process at once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Interrupt(Arc<(Mutex<bool>, Condvar, AtomicBool)>);

impl Interrupt {
    /// Installs the handler (once per process).
    pub(crate) fn install() -> Self {
        let interrupt = Self::default();
        let handle = interrupt.clone();
        let installed = ctrlc::set_handler(move || {
            if handle.is_set() {
                std::process::exit(crate::output::EXIT_INTERRUPTED);
            }
            handle.set();
        });
        if let Err(e) = installed {
            tracing::warn!("cannot handle Ctrl-C: {e}");
        }
        interrupt
    }

    fn set(&self) {
        let (flag, wake, fast) = &*self.0;
        fast.store(true, Ordering::SeqCst);
        *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.notify_all();
    }

    /// Whether Ctrl-C was pressed.
    pub(crate) fn is_set(&self) -> bool {
        self.0 .2.load(Ordering::SeqCst)
    }

    /// Sleeps `by` unless interrupted first; `false` when interrupted.
    pub(crate) fn wait_for(&self, by: Duration) -> bool {
        self.wait(by)
    }

    fn wait(&self, by: Duration) -> bool {
        let (flag, wake, _) = &*self.0;
        let guard = flag.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = wake
            .wait_timeout_while(guard, by, |stopped| !*stopped)
            .unwrap_or_else(|p| p.into_inner());
        !*guard
    }
}

/// The environment of one command.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) client: basiq::blocking::Client,
    pub(crate) time: Timekeeper,
    pub(crate) out: Output,
    pub(crate) interrupt: Interrupt,
    /// Where requests go (for messages; never holds a secret).
    pub(crate) base_url: String,
    /// The embedded emulator of `--mock`, kept alive for the command.
    pub(crate) emulator: Option<MockServer>,
}

impl Session {
    /// Builds the client from `BASIQ_API_KEY` / `BASIQ_URL`, or on a fresh embedded emulator.
    pub(crate) fn open(cli: &Cli, out: Output, interrupt: Interrupt) -> Result<Self, CliError> {
        if cli.mock {
            return Ok(Self::embedded(out, interrupt));
        }
        let key = std::env::var("BASIQ_API_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| {
                CliError::usage(
                    "BASIQ_API_KEY is not set: export it (it is never taken as an argument, \
                     which would show in the process list), or use --mock for the embedded \
                     emulator",
                )
            })?;
        let base_url = std::env::var("BASIQ_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| basiq::DEFAULT_BASE_URL.to_owned());
        let time = if cli.virtual_time {
            Timekeeper(Arc::new(Time::Emulator(emulator_admin(&base_url)?)))
        } else {
            Timekeeper(Arc::new(Time::Wall))
        };
        let client = build_client(key, &base_url, &time, &interrupt, false)?;
        Ok(Self {
            client,
            time,
            out,
            interrupt,
            base_url,
            emulator: None,
        })
    }

    /// A session on a fresh emulator in this process, on a virtual clock it shares.
    pub(crate) fn embedded(out: Output, interrupt: Interrupt) -> Self {
        let clock = ManualClock::starting_now();
        let server = MockServer::builder().clock(clock.clone()).start();
        let time = Timekeeper(Arc::new(Time::Manual(clock)));
        let base_url = server.url();
        #[allow(clippy::expect_used)] // the emulator's own URL and key always build a client
        let client = build_client(server.api_key(), &base_url, &time, &interrupt, true)
            .expect("a client for the embedded emulator");
        Self {
            client,
            time,
            out,
            interrupt,
            base_url,
            emulator: Some(server),
        }
    }

    /// `now` on the session's clock.
    pub(crate) fn now(&self) -> OffsetDateTime {
        self.time.now()
    }

    /// Waits on the session's clock; `false` when interrupted.
    pub(crate) fn sleep(&self, by: Duration) -> bool {
        self.time.sleep(by, &self.interrupt)
    }
}

/// `--virtual-time` is for emulators only: a loopback `BASIQ_URL` that answers `/__admin/clock`.
fn emulator_admin(base_url: &str) -> Result<Admin, CliError> {
    let url = url::Url::parse(base_url)
        .map_err(|e| CliError::usage(format!("BASIQ_URL is not a URL: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    if !loopback {
        return Err(CliError::usage(
            "--virtual-time drives an emulator's clock; BASIQ_URL must be a loopback address \
             (127.0.0.1, ::1, localhost), never Basiq's API",
        ));
    }
    Admin::new(base_url).detect_frozen().map_err(|e| {
        CliError::usage(format!(
            "--virtual-time needs an emulator at BASIQ_URL ({e})"
        ))
    })
}

fn build_client(
    key: String,
    base_url: &str,
    time: &Timekeeper,
    interrupt: &Interrupt,
    embedded: bool,
) -> Result<basiq::blocking::Client, CliError> {
    let mut builder = basiq::blocking::Client::builder()
        .api_key(key)
        .base_url(base_url);
    if embedded {
        builder = builder.consent_base_url(format!("{base_url}/consent/home"));
    }
    let sleeper = time.clone();
    let interrupt = interrupt.clone();
    builder = builder.clock(time.clone()).sleep(move |d| {
        sleeper.sleep(d, &interrupt);
    });
    builder.build().map_err(CliError::from)
}

/// Whether progress bars may be drawn: stderr is a terminal and the output is for humans.
pub(crate) fn progress_allowed(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}
