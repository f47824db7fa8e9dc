//! Running the built `basiq` binary against an emulator the test controls.
//!
//! The emulator runs in the test process on a `ManualClock`; the binary gets `BASIQ_URL`,
//! `BASIQ_API_KEY`, `NO_COLOR` and `--virtual-time`, so it reads the emulator's clock and waits
//! by advancing it: plans over hours run in a moment, and the emulator's request log says when
//! (in virtual time) each request arrived.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use basiq_mock::MockServer;
use serde_json::{json, Value};
use time::OffsetDateTime;

pub const BIN: &str = env!("CARGO_BIN_EXE_basiq");

/// An emulator on a virtual clock, plus a server token to seed it.
pub struct Emu {
    pub server: MockServer,
    pub clock: basiq::clock::ManualClock,
    token: String,
}

/// What a run printed, and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
        }
    }

    /// stdout as JSON lines.
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// stdout as one JSON document.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

impl Emu {
    pub fn start() -> Self {
        // A fixed start keeps snapshot times stable after redaction, and far from midnight so
        // a test's hours never cross a UTC day unless it means to.
        let clock = basiq::clock::ManualClock::new(time::macros::datetime!(2026-03-02 09:00 UTC));
        let server = MockServer::builder().clock(clock.clone()).start();
        let token: Value = ureq::post(&format!("{}/token", server.url()))
            .set("Authorization", &format!("Basic {}", server.api_key()))
            .set("basiq-version", "3.0")
            .send_form(&[("scope", "SERVER_ACCESS")])
            .expect("token")
            .into_json()
            .expect("token json");
        let token = token["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
        let emu = Self {
            server,
            clock,
            token,
        };
        // Seeding is not the CLI's traffic.
        emu.server.reset();
        emu
    }

    fn post(&self, path: &str, body: Value) -> Value {
        ureq::post(&format!("{}{path}", self.server.url()))
            .set("Authorization", &format!("Bearer {}", self.token))
            .set("basiq-version", "3.0")
            .send_json(body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
            .into_json()
            .expect("json")
    }

    pub fn user(&self, email: &str) -> String {
        let user = self.post("/users", json!({ "email": email }));
        user["id"].as_str().expect("user id").to_owned()
    }

    /// Connects `user` through the consent stand-in; returns the job id.
    pub fn connect(&self, user: &str, institution: &str, login: &str, password: &str) -> String {
        let answer = self.post(
            "/consent/connect.json",
            json!({ "userId": user, "institutionId": institution, "loginId": login, "password": password }),
        );
        answer["jobIds"][0].as_str().expect("job id").to_owned()
    }

    /// The connection a job works on.
    pub fn connection_of(&self, job: &str) -> String {
        let job: Value = ureq::get(&format!("{}/jobs/{job}", self.server.url()))
            .set("Authorization", &format!("Bearer {}", self.token))
            .set("basiq-version", "3.0")
            .call()
            .expect("job")
            .into_json()
            .expect("json");
        job["links"]["source"]
            .as_str()
            .and_then(|s| s.rsplit('/').next())
            .expect("source")
            .to_owned()
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// Runs `basiq --virtual-time ARGS` against this emulator.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[], None)
    }

    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(cmd, stdin)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--virtual-time")
            .args(args)
            .env("BASIQ_URL", self.server.url())
            .env("BASIQ_API_KEY", self.server.api_key())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG");
        cmd
    }

    /// Arrival times (virtual) of the requests to `method route`.
    pub fn arrivals(&self, method: &str, route: &str) -> Vec<(OffsetDateTime, String)> {
        self.server
            .request_log()
            .into_iter()
            .filter(|r| r.method == method && r.route == route)
            .map(|r| (r.at, r.path))
            .collect()
    }

    /// Filters that make a snapshot stable: ids, times, the port.
    pub fn filters(&self) -> Vec<(String, String)> {
        filters(&self.server.url())
    }
}

pub fn filters(url: &str) -> Vec<(String, String)> {
    vec![
        (regex_escape(url), "[BASIQ_URL]".into()),
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}".into(),
            "[id]".into(),
        ),
        (
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z".into(),
            "[time]".into(),
        ),
        (r"http://127\.0\.0\.1:\d+".into(), "[BASIQ_URL]".into()),
        (
            r"correlationId=[a-z0-9]+".into(),
            "correlationId=[cid]".into(),
        ),
        (
            r#""correlationId":"[a-z0-9]+""#.into(),
            r#""correlationId":"[cid]""#.into(),
        ),
    ]
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

/// Runs a prepared command to its end.
pub fn run(mut cmd: Command, stdin: Option<&[u8]>) -> Run {
    use std::io::Write;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("spawn basiq");
    if let Some(bytes) = stdin {
        // A command refused before it reads stdin (e.g. a missing secret) closes the pipe early.
        let written = child.stdin.take().expect("stdin").write_all(bytes);
        if let Err(e) = written {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
        }
    }
    Run::from(child.wait_with_output().expect("wait"))
}

/// The most timestamps in any 60-second span `[t, t + 60 s)`.
pub fn most_in_any_minute(times: &[OffsetDateTime]) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort();
    (0..sorted.len())
        .map(|i| {
            sorted[i..]
                .iter()
                .take_while(|t| **t < sorted[i] + time::Duration::seconds(60))
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// How often each item occurs.
pub fn counts<T: std::hash::Hash + Eq>(items: impl IntoIterator<Item = T>) -> HashMap<T, usize> {
    let mut m = HashMap::new();
    for i in items {
        *m.entry(i).or_default() += 1;
    }
    m
}

/// Basiq's happy sandbox logins.
pub const HAPPY: [(&str, &str); 5] = [
    ("gavinBelson", "hooli2016"),
    ("jared", "django"),
    ("richard", "tabsnotspaces"),
    ("Gilfoyle", "PiedPiper"),
    ("Whistler", "ShowBox"),
];

/// Snapshots a run (exit code, stdout, stderr) with ids, times and the port redacted.
pub fn snap(url: &str, name: &str, run: &Run) {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_snapshot_path("../snapshots");
    for (re, rep) in filters(url) {
        settings.add_filter(&re, rep);
    }
    let text = format!(
        "exit: {}\n--- stdout\n{}\n--- stderr\n{}",
        run.code,
        run.stdout.trim_end(),
        run.stderr.trim_end()
    );
    settings.bind(|| insta::assert_snapshot!(name, text));
}

/// A scratch directory for a test's files, removed when dropped (also when the test fails).
pub fn scratch_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("basiq-cli-")
        .tempdir()
        .expect("a scratch directory")
}
