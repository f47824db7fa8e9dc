//! The fault matrix: every fault the emulator can stage × {async, blocking} × {a GET, a POST that
//! creates state, a guarded refresh}, each cell on a fresh client (so its `/token` fetch is part
//! of the cell) and the emulator's virtual clock (backoffs and `Retry-After` cost no real time).
//!
//! Every cell must hold:
//! - no panic;
//! - a GET recovers, or fails with a typed error carrying its ids;
//! - a POST is never duplicated — the emulator's counters (`users_created`, refreshes per
//!   connection) grow by at most one, whatever the client saw;
//! - the call ends within the deadline derived from the configuration: virtual time ≤ the call
//!   deadline per request the helper makes, real time ≤ the request timeout per attempt.
//!
//! The table is printed (`cargo xtask ci` runs this with `--nocapture`), then every violation is
//! reported at once.

// `basiq::Error` is large (it carries the ids inline); results here are the SDK's own.
#![allow(clippy::result_large_err)]

mod common;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use basiq::clock::{Clock, ManualClock};
use basiq::id::{ConnectionId, InstitutionId, JobId, UserId};
use basiq::jobs::PollConfig;
use basiq::{ConsentAction, ConsentOutcome, Error};
use basiq_mock::{Fault, FaultRule, MockServer};
use common::{new_user, SubmitConsent};

/// The client's per-request timeout: delays and withheld answers last longer.
const TIMEOUT: Duration = Duration::from_millis(100);
/// How long the emulator holds a delayed or withheld answer.
const HOLD_MS: u64 = 300;
/// The client's overall deadline per call (virtual time for waits).
const DEADLINE: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy)]
enum Op {
    Get,
    Create,
    Refresh,
}

impl Op {
    const ALL: [Op; 3] = [Op::Get, Op::Create, Op::Refresh];

    fn name(self) -> &'static str {
        match self {
            Op::Get => "GET user",
            Op::Create => "POST /users",
            Op::Refresh => "guarded refresh",
        }
    }

    /// Requests the helper makes at most (the refresh guard reads the connection and the jobs).
    fn calls(self) -> u32 {
        match self {
            Op::Refresh => 3,
            _ => 1,
        }
    }
}

fn faults() -> Vec<(&'static str, Option<&'static str>, Fault)> {
    // (name, path override: None = the op's own request, fault)
    vec![
        ("delay past timeout", None, Fault::Delay { ms: HOLD_MS }),
        ("acted, then timeout", None, Fault::Withhold { ms: HOLD_MS }),
        (
            "reset before handler",
            None,
            Fault::Reset {
                after_handler: false,
            },
        ),
        (
            "reset after handler",
            None,
            Fault::Reset {
                after_handler: true,
            },
        ),
        (
            "500",
            None,
            Fault::Status {
                code: 500,
                retry_after: None,
            },
        ),
        (
            "502",
            None,
            Fault::Status {
                code: 502,
                retry_after: None,
            },
        ),
        (
            "503",
            None,
            Fault::Status {
                code: 503,
                retry_after: None,
            },
        ),
        (
            "429 + Retry-After 2",
            None,
            Fault::Status {
                code: 429,
                retry_after: Some(2),
            },
        ),
        (
            "429, no Retry-After",
            None,
            Fault::Status {
                code: 429,
                retry_after: None,
            },
        ),
        ("truncated body", None, Fault::TruncatedBody),
        ("malformed JSON", None, Fault::MalformedJson),
        (
            "token expired mid-flight",
            None,
            Fault::Status {
                code: 401,
                retry_after: None,
            },
        ),
        // One caller here; many callers sharing one failed fetch is the token path's own test.
        (
            "/token throttled",
            Some("/token"),
            Fault::Status {
                code: 429,
                retry_after: None,
            },
        ),
    ]
}

/// A user with an active connection whose last refresh is more than a day old.
struct Fixture {
    user: UserId,
    connection: ConnectionId,
}

/// One cell's result.
struct Cell {
    fault: &'static str,
    client: &'static str,
    op: Op,
    outcome: String,
    /// Requests of the operation's route that reached the emulator's handler.
    sent: u64,
    created: u64,
    virtual_ms: i128,
    real_ms: u128,
    violations: Vec<String>,
}

fn route(op: Op, fixture: &Fixture) -> (String, String) {
    match op {
        Op::Get => ("GET".into(), format!("/users/{}", fixture.user)),
        Op::Create => ("POST".into(), "/users".into()),
        Op::Refresh => (
            "POST".into(),
            format!(
                "/users/{}/connections/{}/refresh",
                fixture.user, fixture.connection
            ),
        ),
    }
}

fn route_template(op: Op) -> &'static str {
    match op {
        Op::Get => "GET /users/{user_id}",
        Op::Create => "POST /users",
        Op::Refresh => common::REFRESH_ROUTE,
    }
}

fn created(server: &MockServer, op: Op, fixture: &Fixture) -> u64 {
    let stats = server.stats();
    match op {
        Op::Create => stats.users_created,
        Op::Refresh => stats
            .refreshes
            .get(fixture.connection.as_str())
            .copied()
            .unwrap_or(0),
        Op::Get => 0,
    }
}

/// Checks one cell's invariants.
#[allow(clippy::too_many_arguments)]
fn judge(
    fault: &'static str,
    client: &'static str,
    op: Op,
    fixture: &Fixture,
    result: Result<Result<String, Error>, String>,
    sent: u64,
    created: u64,
    virtual_elapsed: time::Duration,
    real: Duration,
) -> Cell {
    let mut violations = Vec::new();
    let outcome = match &result {
        Err(panic) => {
            violations.push(format!("panicked: {panic}"));
            "PANIC".to_owned()
        }
        Ok(Ok(done)) => done.clone(),
        Ok(Err(e)) => {
            let ctx = e.context().cloned().unwrap_or_default();
            let wants_user = matches!(op, Op::Get | Op::Refresh);
            if wants_user && ctx.user_id.as_ref() != Some(&fixture.user) {
                violations.push(format!("error without the user id: {e}"));
            }
            if matches!(op, Op::Refresh) && ctx.connection_id.as_ref() != Some(&fixture.connection)
            {
                violations.push(format!("error without the connection id: {e}"));
            }
            format!("{:?}", e.kind())
        }
    };
    if created > 1 {
        violations.push(format!("duplicated: the server created {created}"));
    }
    let budget = DEADLINE * op.calls();
    if virtual_elapsed > time::Duration::try_from(budget).unwrap() {
        violations.push(format!(
            "took {virtual_elapsed} of virtual time (deadline {budget:?})"
        ));
    }
    // Real time: at most one request timeout per attempt (4 attempts, plus the token fetch).
    let real_budget =
        (TIMEOUT + Duration::from_millis(HOLD_MS)) * 5 * op.calls() + Duration::from_secs(2);
    if real > real_budget {
        violations.push(format!(
            "took {real:?} of real time (budget {real_budget:?})"
        ));
    }
    Cell {
        fault,
        client,
        op,
        outcome,
        sent,
        created,
        virtual_ms: virtual_elapsed.whole_milliseconds(),
        real_ms: real.as_millis(),
        violations,
    }
}

fn arm(server: &MockServer, op: Op, fixture: &Fixture, path: Option<&str>, fault: &Fault) {
    server.faults().clear();
    let (method, own) = route(op, fixture);
    let rule = match path {
        Some(path) => FaultRule::new(path, fault.clone()).method("POST"),
        None => FaultRule::new(own, fault.clone()).method(method),
    };
    server.faults().add(rule).unwrap();
}

fn panic_text(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panic".into())
}

fn pied_piper_free() -> ConsentAction {
    // Hooli: no MFA, connects in a few polls.
    ConsentAction::connect_to(InstitutionId::new("AU00000").unwrap())
}

macro_rules! client_matrix {
    ($name:literal, $builder:path, [$($async:tt)*], [$($await:tt)*], $run:expr) => {
        /// An active connection, connected through the Consent UI stand-in, a day old.
        $($async)* fn fixture(server: &MockServer, clock: &ManualClock, n: usize) -> Fixture {
            let client = $builder(server, clock).build().unwrap();
            let user = client
                .users()
                .create(new_user(&format!("matrix-{n}@example.com")))$($await)*
                .unwrap()
                .id;
            let ConsentOutcome::Link(link) =
                client.consent_url(&user, pied_piper_free())$($await)*.unwrap()
            else {
                panic!("a consent link");
            };
            let job = client
                .execute(SubmitConsent::new(&link, Some(("jared", "django"))))$($await)*
                .unwrap();
            let report = client
                .jobs()
                .wait(&JobId::new(job).unwrap(), PollConfig::default())$($await)*
                .unwrap();
            assert!(report.is_success(), "{report}");
            let connection = report.connection_id().cloned().expect("a connection");
            clock.advance(Duration::from_secs(25 * 3600));
            Fixture { user, connection }
        }

        pub $($async)* fn matrix() -> Vec<Cell> {
            let (server, clock) = common::virtual_time_server();
            let mut cells = Vec::new();
            for (i, (fault_name, path, fault)) in faults().into_iter().enumerate() {
                for op in Op::ALL {
                    let fixture = fixture(&server, &clock, i * 10 + op as usize)$($await)*;
                    arm(&server, op, &fixture, path, &fault);
                    let before_sent = server.stats().requests.get(route_template(op)).copied().unwrap_or(0);
                    let before_created = created(&server, op, &fixture);
                    let client = $builder(&server, &clock)
                        .timeout(TIMEOUT)
                        .call_deadline(Some(DEADLINE))
                        .build()
                        .unwrap();
                    let (started_virtual, started) = (clock.now(), Instant::now());
                    let result = $run(client, op, fixture.user.clone(), fixture.connection.clone())$($await)*;
                    let (virtual_elapsed, real) = (clock.now() - started_virtual, started.elapsed());
                    server.faults().clear();
                    let sent = server.stats().requests.get(route_template(op)).copied().unwrap_or(0) - before_sent;
                    let made = created(&server, op, &fixture) - before_created;
                    cells.push(judge(fault_name, $name, op, &fixture, result, sent, made, virtual_elapsed, real));
                }
            }
            cells
        }
    };
}

mod async_matrix {
    use super::*;

    async fn run(
        client: basiq::Client,
        op: Op,
        user: UserId,
        connection: ConnectionId,
    ) -> Result<Result<String, Error>, String> {
        // On its own task, so a panic is caught and reported in the table.
        let task = tokio::spawn(async move {
            match op {
                Op::Get => client.users().get(&user).await.map(|_| "ok".to_owned()),
                Op::Create => client
                    .users()
                    .create(new_user("created@example.com"))
                    .await
                    .map(|_| "ok".to_owned()),
                Op::Refresh => client
                    .connections()
                    .refresh(&user, &connection)
                    .await
                    .map(|o| if o.was_sent() { "sent" } else { "not sent" }.to_owned()),
            }
        });
        task.await.map_err(|e| {
            if e.is_panic() {
                panic_text(e.into_panic())
            } else {
                e.to_string()
            }
        })
    }

    client_matrix!("async", common::async_on_virtual_time, [async], [.await], run);
}

mod blocking_matrix {
    use super::*;

    fn run(
        client: basiq::blocking::Client,
        op: Op,
        user: UserId,
        connection: ConnectionId,
    ) -> Result<Result<String, Error>, String> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match op {
            Op::Get => client.users().get(&user).map(|_| "ok".to_owned()),
            Op::Create => client
                .users()
                .create(new_user("created@example.com"))
                .map(|_| "ok".to_owned()),
            Op::Refresh => client
                .connections()
                .refresh(&user, &connection)
                .map(|o| if o.was_sent() { "sent" } else { "not sent" }.to_owned()),
        }))
        .map_err(panic_text)
    }

    client_matrix!("blocking", common::blocking_on_virtual_time, [], [], run);
}

#[test]
fn fault_matrix_holds_for_both_clients() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut cells = runtime.block_on(async_matrix::matrix());
    cells.extend(blocking_matrix::matrix());

    let mut table = String::new();
    writeln!(
        table,
        "\nfault matrix (timeout {TIMEOUT:?}, call deadline {DEADLINE:?}, held answers {HOLD_MS} ms)"
    )
    .unwrap();
    writeln!(
        table,
        "{:<26} {:<9} {:<16} {:<12} {:>7} {:>8} {:>9} {:>7}  verdict",
        "fault", "client", "operation", "outcome", "handled", "created", "virtual", "real"
    )
    .unwrap();
    let mut failures = Vec::new();
    for cell in &cells {
        let verdict = if cell.violations.is_empty() {
            "ok"
        } else {
            "FAIL"
        };
        writeln!(
            table,
            "{:<26} {:<9} {:<16} {:<12} {:>7} {:>8} {:>7}ms {:>5}ms  {verdict}",
            cell.fault,
            cell.client,
            cell.op.name(),
            cell.outcome,
            cell.sent,
            if matches!(cell.op, Op::Get) {
                "-".to_owned()
            } else {
                cell.created.to_string()
            },
            cell.virtual_ms,
            cell.real_ms,
        )
        .unwrap();
        for v in &cell.violations {
            failures.push(format!(
                "{} / {} / {}: {v}",
                cell.fault,
                cell.client,
                cell.op.name()
            ));
        }
    }
    println!("{table}");
    assert_eq!(cells.len(), faults().len() * 2 * Op::ALL.len());
    assert!(
        failures.is_empty(),
        "fault matrix violations:\n{}",
        failures.join("\n")
    );
}
