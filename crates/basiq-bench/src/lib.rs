//! The benchmark suite behind `cargo xtask bench` (see `docs/performance.md`).
//!
//! `cargo xtask bench` builds `benches/suite.rs`, starts it once as `suite serve` (the emulator
//! and a bare axum server, in their own process so their CPU and allocations are not counted
//! against the client), then runs each bench as `suite <bench>` with the servers' addresses in
//! the environment ([`Env`]). A bench prints its figures as `RESULT` lines ([`report`]); xtask
//! collects them into one table of figure | SDK | baseline | ratio | target.
//!
//! Every SDK figure is measured next to its baseline in the same run, in alternating rounds, so
//! a busy machine slows both alike. Nothing here asserts a time: the numbers are for reading.

#![allow(unsafe_code)] // the counting allocator and the CPU clock; nowhere else
#![allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub mod emulator;
pub mod overhead;
pub mod parse;
pub mod plan;
pub mod serve;
pub mod stream;
pub mod tokens;

/// Counts allocations made through it (any thread), then defers to the system allocator.
/// `benches/suite.rs` installs it as the global allocator.
#[derive(Debug)]
pub struct CountingAlloc;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s contract;
// the counter is a relaxed atomic add with no effect on the memory handed out.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is `System::alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as `dealloc` and `alloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations (and reallocations) so far, all threads.
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// CPU time this process has used so far, all threads (user + system).
pub fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes to it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// This process's peak resident set size in KiB (`VmHWM` in `/proc/self/status`).
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("VmHWM:")?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

/// What a figure's ratio (SDK / baseline) should be.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// Only reported.
    None,
    /// SDK / baseline at most this.
    RatioAtMost(f64),
    /// SDK / baseline at least this (throughputs).
    RatioAtLeast(f64),
    /// SDK − baseline at most this (allocations per request).
    DiffAtMost(f64),
}

impl Target {
    fn spec(self) -> String {
        match self {
            Target::None => String::new(),
            Target::RatioAtMost(r) => format!("ratio<={r}"),
            Target::RatioAtLeast(r) => format!("ratio>={r}"),
            Target::DiffAtMost(d) => format!("diff<={d}"),
        }
    }
}

/// Prints one figure for `cargo xtask bench` to collect:
/// `RESULT\t<figure>\t<sdk>\t<baseline>\t<unit>\t<target>`.
pub fn report(figure: &str, sdk: f64, baseline: f64, unit: &str, target: Target) {
    println!(
        "RESULT\t{figure}\t{sdk}\t{baseline}\t{unit}\t{}",
        target.spec()
    );
}

/// Where the servers are, from the environment `cargo xtask bench` sets.
#[derive(Debug, Clone)]
pub struct Env {
    /// The emulator's base URL.
    pub emulator: String,
    /// The key its `/token` accepts.
    pub key: String,
    /// The bare axum server's base URL.
    pub bare: String,
    /// Fewer rounds (`--quick`).
    pub quick: bool,
}

impl Env {
    /// Reads `BASIQ_BENCH_EMULATOR`, `BASIQ_BENCH_KEY`, `BASIQ_BENCH_BARE`, `BASIQ_BENCH_QUICK`.
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| {
            std::env::var(name).map_err(|_| {
                format!("{name} is not set: run the suite through `cargo xtask bench`")
            })
        };
        Ok(Self {
            emulator: var("BASIQ_BENCH_EMULATOR")?,
            key: var("BASIQ_BENCH_KEY")?,
            bare: var("BASIQ_BENCH_BARE")?,
            quick: std::env::var("BASIQ_BENCH_QUICK").is_ok_and(|v| v == "1"),
        })
    }

    /// An async SDK client on the emulator.
    pub fn async_client(&self) -> Result<basiq::Client, String> {
        basiq::Client::builder()
            .api_key(self.key.as_str())
            .base_url(self.emulator.as_str())
            .build()
            .map_err(|e| e.to_string())
    }

    /// A blocking SDK client on the emulator.
    pub fn blocking_client(&self) -> Result<basiq::blocking::Client, String> {
        basiq::blocking::Client::builder()
            .api_key(self.key.as_str())
            .base_url(self.emulator.as_str())
            .build()
            .map_err(|e| e.to_string())
    }

    /// The emulator's admin and setup calls.
    pub fn admin(&self) -> Admin {
        Admin {
            agent: ureq::AgentBuilder::new().build(),
            base: self.emulator.clone(),
            key: self.key.clone(),
        }
    }
}

/// Setting the emulator up over plain HTTP (ureq), outside any measurement.
#[derive(Debug)]
pub struct Admin {
    agent: ureq::Agent,
    base: String,
    key: String,
}

fn http_error(e: ureq::Error) -> String {
    match e {
        ureq::Error::Status(code, response) => {
            format!(
                "status {code}: {}",
                response.into_string().unwrap_or_default()
            )
        }
        other => other.to_string(),
    }
}

impl Admin {
    /// A fresh server token (one `POST /token`).
    pub fn token(&self) -> Result<String, String> {
        let body: serde_json::Value = self
            .agent
            .post(&format!("{}/token", self.base))
            .set("Authorization", &format!("Basic {}", self.key))
            .set("basiq-version", "3.0")
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_string("scope=SERVER_ACCESS")
            .map_err(http_error)?
            .into_json()
            .map_err(|e| e.to_string())?;
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no access_token in {body}"))
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, String> {
        let request = self
            .agent
            .request(method, &format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {token}"));
        let response = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        }
        .map_err(http_error)?;
        let text = response.into_string().map_err(|e| e.to_string())?;
        if text.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }

    /// Forgets every user, connection and job (`POST /__admin/reset`).
    pub fn reset(&self) -> Result<(), String> {
        self.send("POST", "/__admin/reset", "", None).map(drop)
    }

    /// Moves the emulator's clock (jobs finish in 13 virtual seconds).
    pub fn advance(&self, seconds: u64) -> Result<(), String> {
        self.send(
            "POST",
            "/__admin/clock/advance",
            "",
            Some(serde_json::json!({ "seconds": seconds })),
        )
        .map(drop)
    }

    /// `POST /token` calls the emulator has answered so far.
    pub fn token_requests(&self) -> Result<u64, String> {
        let stats = self.send("GET", "/__admin/stats", "", None)?;
        stats["token_requests"]
            .as_u64()
            .or_else(|| stats["tokenRequests"].as_u64())
            .ok_or_else(|| format!("no token counter in {stats}"))
    }

    /// A new user; returns its id.
    pub fn create_user(&self, token: &str) -> Result<String, String> {
        let user = self.send(
            "POST",
            "/users",
            token,
            Some(serde_json::json!({ "email": "bench@example.com", "firstName": "Bench" })),
        )?;
        user["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no id in {user}"))
    }

    /// Starts a connection job for `user` with one of the emulator's happy-path logins.
    pub fn connect(
        &self,
        token: &str,
        user: &str,
        institution: &str,
        login: (&str, &str),
    ) -> Result<(), String> {
        self.send(
            "POST",
            "/consent/connect.json",
            token,
            Some(serde_json::json!({
                "userId": user, "institutionId": institution,
                "loginId": login.0, "password": login.1,
            })),
        )
        .map(drop)
    }

    /// A user with `connections` finished connections (the clock is advanced past their jobs).
    pub fn user_with_connections(&self, token: &str, connections: usize) -> Result<String, String> {
        let user = self.create_user(token)?;
        for n in 0..connections {
            let login = HAPPY_LOGINS[n % HAPPY_LOGINS.len()];
            let institution = ["AU00000", "AU00001"][(n / HAPPY_LOGINS.len()) % 2];
            self.connect(token, &user, institution, login)?;
            self.advance(30)?;
        }
        // Past any 6-minute duplicate pause and every job (tokens live an hour: fetch a new one
        // after setting up).
        self.advance(600)?;
        let list = self.send("GET", &format!("/users/{user}/connections"), token, None)?;
        let active = list["data"]
            .as_array()
            .map_or(0, |d| d.iter().filter(|c| c["status"] == "active").count());
        if active != connections {
            return Err(format!(
                "expected {connections} active connections, got {active}: {list}"
            ));
        }
        Ok(user)
    }

    /// Gives each of `user`'s connections exactly `count` transactions.
    pub fn set_user_transactions(&self, user: &str, count: u64) -> Result<(), String> {
        self.send(
            "PUT",
            &format!("/__admin/users/{user}/transactions"),
            "",
            Some(serde_json::json!({ "count": count })),
        )
        .map(drop)
    }

    /// `GET {path}` with a bearer token: the status and the body, unparsed.
    pub fn get_bytes(&self, path: &str, token: &str) -> Result<(u16, Vec<u8>), String> {
        let response = self
            .agent
            .get(&format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {token}"))
            .call()
            .map_err(http_error)?;
        let status = response.status();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut response.into_reader(), &mut body)
            .map_err(|e| e.to_string())?;
        Ok((status, body))
    }

    /// `GET {path}` with a bearer token.
    pub fn get(&self, path: &str, token: &str) -> Result<serde_json::Value, String> {
        self.send("GET", path, token, None)
    }
}

/// The emulator's happy-path sandbox logins (docs/emulator.md).
const HAPPY_LOGINS: &[(&str, &str)] = &[
    ("Wentworth-Smith", "whislter"),
    ("Whistler", "ShowBox"),
    ("Gilfoyle", "PiedPiper"),
    ("gavinBelson", "hooli2016"),
    ("jared", "django"),
    ("richard", "tabsnotspaces"),
    ("laurieBream", "business2024"),
    ("ashMann", "hooli2024"),
];

/// A raw reqwest client set up as the SDK's transport is (10 s connect, 60 s overall, no
/// redirects): the baseline.
pub fn raw_reqwest() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(basiq::transport::USER_AGENT)
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// A raw ureq agent set up as the SDK's transport is: the baseline.
pub fn raw_ureq() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .user_agent(basiq::transport::USER_AGENT)
        .timeout_connect(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .redirects(0)
        .max_idle_connections(basiq::blocking::DEFAULT_IDLE_CONNECTIONS)
        .max_idle_connections_per_host(basiq::blocking::DEFAULT_IDLE_CONNECTIONS)
        .build()
}

/// The median of `samples` (0 for none).
pub fn median(mut samples: Vec<f64>) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Runs the bench named by `args[0]` (see `cargo xtask bench --help`).
pub fn run(args: &[String]) -> Result<(), String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["serve"] => serve::run(),
        ["stream-child", rest @ ..] => stream::child(rest),
        [bench] => {
            let env = Env::from_env()?;
            match *bench {
                "overhead" => overhead::run(&env),
                "tokens" => tokens::run(&env),
                "parse" => parse::run(&env),
                "plan" => plan::run(&env),
                "emulator" => emulator::run(&env),
                "stream" => stream::run(&env),
                other => Err(format!("unknown bench `{other}`")),
            }
        }
        // `cargo bench` without xtask passes `--bench`: say how to run it instead of failing.
        _ => {
            eprintln!(
                "basiq-bench: run the suite with `cargo xtask bench` (it starts the servers)"
            );
            Ok(())
        }
    }
}
