//! Fleet mode end to end: separate OS processes (this test binary re-run as workers), one
//! emulator, one real `redis-server`. The emulator's counters say what reached "Basiq".

mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use basiq::clock::Clock as _;
use basiq::fleet::{AsyncFleetStore, FleetOp, FleetStore};
use basiq::id::InstitutionId;
use basiq::jobs::PollConfig;
use basiq::models::NewUser;
use basiq::refresh::RefreshPolicy;
use basiq::{ConsentAction, ConsentOutcome, RefreshOutcome};
use basiq_mock::MockServer;
use basiq_redis::RedisFleet;
use serde_json::{json, Value};
use support::{EmulatorClock, RedisServer};

const WORKER_ENV: &str = "BASIQ_FLEET_WORKER";
/// Basiq's sandbox Hooli over open banking in the emulator.
const HOOLI_OPEN_BANKING: &str = "AU00001";

fn new_user(email: &str) -> NewUser {
    NewUser {
        email: Some(email.into()),
        ..NewUser::default()
    }
}

fn unix_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Starts `n` workers with `spec` (plus `client`: async for even, blocking for odd indexes),
/// all released at the same instant, and returns their JSON reports.
fn run_workers(n: usize, spec: &Value) -> Vec<Value> {
    let start_at = unix_ms() + 1500;
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..n)
        .map(|i| {
            let mut spec = spec.clone();
            spec["client"] = json!(if i % 2 == 0 { "async" } else { "blocking" });
            spec["start_at"] = json!(start_at);
            spec["instance"] = json!(format!("worker-{i}"));
            Command::new(&exe)
                .args([
                    "fleet_worker",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(WORKER_ENV, spec.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "worker failed: {out:?}");
            let text = String::from_utf8_lossy(&out.stdout);
            let line = text
                .lines()
                .find_map(|l| l.split_once("REPORT ").map(|(_, report)| report))
                .unwrap_or_else(|| panic!("no report in {text}"));
            serde_json::from_str(line).unwrap()
        })
        .collect()
}

/// The worker side: not a test of its own; the tests above run it in child processes.
#[test]
#[ignore = "entry point of the worker processes the fleet tests start"]
fn fleet_worker() {
    let Ok(spec) = std::env::var(WORKER_ENV) else {
        return;
    };
    let spec: Value = serde_json::from_str(&spec).unwrap();
    let start_at = spec["start_at"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(start_at.saturating_sub(unix_ms())));
    let report = worker(&spec);
    println!("REPORT {report}");
}

fn fleet_of(spec: &Value) -> RedisFleet {
    RedisFleet::new(spec["redis"].as_str().unwrap())
        .unwrap()
        .prefix(spec["prefix"].as_str().unwrap())
        .unwrap()
        .instance(spec["instance"].as_str().unwrap())
}

/// A worker's calls, written once for both clients: `$pause(d)` waits, `$advance(secs)` moves
/// the emulator's clock, and `[$($await)*]` is `[.await]` for the async client, `[]` otherwise.
macro_rules! run_role {
    ($client:expr, $spec:expr, $pause:ident, $advance:ident, [$($await:tt)*]) => {{
        let (client, spec) = (&$client, $spec);
        let user = spec["user"].as_str().unwrap_or_default();
        let connection = spec["connection"].as_str().unwrap_or_default();
        let interval = Duration::from_millis(spec["interval_ms"].as_u64().unwrap_or(0));
        let mut outcomes = Vec::new();
        for _ in 0..spec["calls"].as_u64().unwrap_or(1) {
            let outcome = match spec["role"].as_str().unwrap() {
                "token" => client
                    .users()
                    .create(new_user("w@example.com"))
                    $($await)*
                    .map(|_| "ok".to_owned())
                    .unwrap_or_else(|e| format!("error: {e}")),
                "refresh" => {
                    // Another instance's job is running: look again shortly (not an attempt of
                    // its own); a started job is completed by moving virtual time on.
                    let mut kind = String::new();
                    for _ in 0..400 {
                        let o = client.connections().refresh(user, connection)$($await)*.unwrap();
                        kind = refresh_kind(&o);
                        if !busy(&kind) {
                            break;
                        }
                        $pause(Duration::from_millis(10))$($await)*;
                    }
                    if kind == "started" {
                        $advance(15.0)$($await)*;
                    }
                    kind
                }
                "consent" => consent_kind(&client.consent_url(user, hooli())$($await)*.unwrap()),
                other => panic!("unknown role {other}"),
            };
            outcomes.push(outcome);
            $pause(interval)$($await)*;
        }
        json!({ "outcomes": outcomes })
    }};
}

fn worker(spec: &Value) -> Value {
    let url = spec["url"].as_str().unwrap().to_owned();
    let key = spec["key"].as_str().unwrap().to_owned();
    let fleet = fleet_of(spec);
    let policy = RefreshPolicy::default().with_min_interval(Duration::ZERO);
    let clock = EmulatorClock { url: url.clone() };
    let consent = format!("{url}/consent/home");
    if spec["client"] == "blocking" {
        let client = basiq::blocking::Client::builder()
            .api_key(key)
            .base_url(&url)
            .consent_base_url(consent)
            .refresh_policy(policy)
            .clock(clock)
            .fleet(fleet.blocking_fleet())
            .build()
            .unwrap();
        let pause = std::thread::sleep;
        let advance = |seconds| support::advance(&url, seconds);
        run_role!(client, spec, pause, advance, [])
    } else {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let client = basiq::Client::builder()
                .api_key(key)
                .base_url(&url)
                .consent_base_url(consent)
                .refresh_policy(policy)
                .clock(clock)
                .fleet(fleet.async_fleet())
                .build()
                .unwrap();
            let pause = tokio::time::sleep;
            let advance = |seconds| {
                let url = url.clone();
                async move {
                    tokio::task::spawn_blocking(move || support::advance(&url, seconds))
                        .await
                        .unwrap()
                }
            };
            run_role!(client, spec, pause, advance, [.await])
        })
    }
}

fn hooli() -> ConsentAction {
    ConsentAction::connect_to(InstitutionId::new(HOOLI_OPEN_BANKING).unwrap())
}

/// A skip because another instance's attempt is running right now.
fn busy(kind: &str) -> bool {
    kind.contains("InProgress") || kind == "already-running"
}

fn refresh_kind(outcome: &RefreshOutcome) -> String {
    match outcome {
        RefreshOutcome::Started(_) => "started".into(),
        RefreshOutcome::AlreadyRunning(_) => "already-running".into(),
        RefreshOutcome::Skipped(reason) => format!("skipped: {reason:?}"),
        other => format!("{other:?}"),
    }
}

fn consent_kind(outcome: &ConsentOutcome) -> String {
    match outcome {
        ConsentOutcome::Link(_) => "link".into(),
        ConsentOutcome::FollowExisting { .. } => "follow".into(),
        ConsentOutcome::InProgressElsewhere { .. } => "elsewhere".into(),
        other => format!("{other:?}"),
    }
}

fn outcomes(reports: &[Value]) -> Vec<String> {
    reports
        .iter()
        .flat_map(|r| r["outcomes"].as_array().unwrap().clone())
        .map(|o| o.as_str().unwrap().to_owned())
        .collect()
}

fn spec(server: &MockServer, redis: &RedisServer, role: &str, prefix: &str) -> Value {
    json!({
        "url": server.url(), "key": server.api_key(), "redis": redis.url(),
        "prefix": format!("test:{prefix}"), "role": role,
    })
}

#[test]
fn four_processes_started_together_fetch_one_token() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let server = MockServer::start();
    let mut spec = spec(&server, &redis, "token", "token");
    spec["calls"] = json!(3);
    let reports = run_workers(4, &spec);
    let all = outcomes(&reports);
    assert_eq!(all.len(), 12);
    assert!(all.iter().all(|o| o == "ok"), "{all:?}");
    assert_eq!(
        server.stats().token_requests,
        1,
        "one token for the whole fleet"
    );
}

#[test]
fn short_lived_tokens_cost_the_fleet_at_most_one_fetch_per_lifetime_plus_one() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let ttl = Duration::from_secs(2);
    let server = MockServer::builder().token_ttl(ttl).start();
    let mut spec = spec(&server, &redis, "token", "lifetimes");
    spec["calls"] = json!(25);
    spec["interval_ms"] = json!(250);
    let started = Instant::now();
    let reports = run_workers(4, &spec);
    // The workers waited up to 1.5 s to start together; count lifetimes from then on.
    let elapsed = started
        .elapsed()
        .saturating_sub(Duration::from_millis(1500));
    let all = outcomes(&reports);
    assert!(all.iter().all(|o| o == "ok"), "{all:?}");
    let lifetimes = elapsed.as_secs_f64() / ttl.as_secs_f64();
    let fetched = server.stats().token_requests;
    assert!(
        fetched as f64 <= lifetimes.ceil() + 1.0,
        "{fetched} token requests over {lifetimes:.1} lifetimes"
    );
    assert!(fetched >= 2, "the run spans several lifetimes");
}

/// A user with an active open-banking connection made on the emulator's virtual clock.
fn connected_user(server: &MockServer, clock: &basiq::clock::ManualClock) -> (String, String) {
    let tick = clock.clone();
    let client = basiq::blocking::Client::builder()
        .api_key(server.api_key())
        .base_url(server.url())
        .consent_base_url(format!("{}/consent/home", server.url()))
        .clock(clock.clone())
        .sleep(move |d| tick.advance(d))
        .build()
        .unwrap();
    let user = client
        .users()
        .create(new_user("fleet@example.com"))
        .unwrap()
        .id;
    let ConsentOutcome::Link(link) = client.consent_url(&user, hooli()).unwrap() else {
        panic!("expected a consent link");
    };
    let mut body = serde_json::Map::new();
    for (k, v) in link.expose_url().query_pairs() {
        body.insert(k.into_owned(), Value::String(v.into_owned()));
    }
    let answer: Value = ureq::post(&format!("{}/consent/connect.json", server.url()))
        .send_json(Value::Object(body))
        .unwrap()
        .into_json()
        .unwrap();
    let job = answer["jobIds"][0].as_str().unwrap().to_owned();
    let report = client.jobs().wait(&job, PollConfig::default()).unwrap();
    assert!(report.is_success(), "{report:?}");
    let connection = client.connections().list(&user).unwrap().data[0].id.clone();
    (user.as_str().to_owned(), connection.as_str().to_owned())
}

#[test]
fn four_processes_share_the_twenty_open_banking_refreshes_of_one_day() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let clock = basiq::clock::ManualClock::new(time::macros::datetime!(2026-01-05 01:00 UTC));
    let server = MockServer::builder().clock(clock.clone()).start();
    let (user, connection) = connected_user(&server, &clock);
    let mut spec = spec(&server, &redis, "refresh", "quota");
    spec["calls"] = json!(10);
    spec["user"] = json!(user);
    spec["connection"] = json!(connection);
    let reports = run_workers(4, &spec);
    let all = outcomes(&reports);
    let started = all.iter().filter(|o| *o == "started").count();
    assert_eq!(started, 20, "{all:?}");
    assert_eq!(
        server.stats().refreshes.get(&connection),
        Some(&20),
        "{all:?}"
    );
    let refused = all
        .iter()
        .filter(|o| o.contains("DailyQuotaExhausted"))
        .count();
    assert_eq!(refused, 20, "the other 20 were refused locally: {all:?}");
    assert_eq!(clock.now().date(), time::macros::date!(2026 - 01 - 05));
}

#[test]
fn four_processes_asking_for_one_consent_link_get_exactly_one() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let server = MockServer::start();
    let client = basiq::blocking::Client::builder()
        .api_key(server.api_key())
        .base_url(server.url())
        .build()
        .unwrap();
    let user = client
        .users()
        .create(new_user("one@example.com"))
        .unwrap()
        .id;
    let mut spec = spec(&server, &redis, "consent", "consent");
    spec["user"] = json!(user.as_str());
    let reports = run_workers(4, &spec);
    let mut all = outcomes(&reports);
    all.sort();
    assert_eq!(all, ["elsewhere", "elsewhere", "elsewhere", "link"]);
    assert_eq!(server.stats().paused_attempts, 0);
}

/// Redis dies in the middle of a run and comes back: every request succeeds, and the fleet
/// state is used again once Redis answers.
#[test]
fn redis_killed_and_restarted_mid_run_fails_no_request_with_either_client() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let port = redis.port;
    // Short tokens, so the clients go back to the fleet's store during the run.
    let server = MockServer::builder()
        .token_ttl(Duration::from_secs(1))
        .start();
    let fleet = RedisFleet::new(&redis.url())
        .unwrap()
        .prefix("test:faults")
        .unwrap()
        .timeout(Duration::from_millis(100));
    let blocking = basiq::blocking::Client::builder()
        .api_key(server.api_key())
        .base_url(server.url())
        .fleet(fleet.blocking_fleet())
        .build()
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let asynchronous = runtime.block_on(async {
        basiq::Client::builder()
            .api_key(server.api_key())
            .base_url(server.url())
            .fleet(fleet.async_fleet())
            .build()
            .unwrap()
    });
    let round = |label: &str| {
        for _ in 0..6 {
            blocking
                .users()
                .create(new_user("b@example.com"))
                .unwrap_or_else(|e| panic!("{label}: blocking: {e}"));
            runtime
                .block_on(asynchronous.users().create(new_user("a@example.com")))
                .unwrap_or_else(|e| panic!("{label}: async: {e}"));
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    round("redis up");
    let before_kill = fleet.round_trips();
    assert!(before_kill > 0);
    redis.query::<()>(&redis::cmd("FLUSHALL"));
    round("redis flushed");
    redis.kill();
    round("redis down");
    let redis = RedisServer::start_on(port).expect("restart redis");
    let during = fleet.round_trips();
    round("redis back");
    assert!(
        fleet.round_trips() > during,
        "the clients use the fleet again"
    );
    // The restarted server (its counters start at zero) received the shared token again.
    let stats: String = redis.query(redis::cmd("INFO").arg("commandstats"));
    let sets = stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_set:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(sets > 0, "the shared token is stored again: {stats}");
}

/// The stores against the real server: each primitive, compare-and-delete, the bounded counter,
/// sealing, and a flush in the middle (Lua scripts reloaded, state simply gone).
#[test]
fn redis_stores_implement_every_fleet_primitive() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let fleet = RedisFleet::new(&redis.url())
        .unwrap()
        .prefix("test:ops")
        .unwrap();
    let keys = fleet.config().keys().clone();
    let blocking = fleet.blocking_fleet().store;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let asynchronous = fleet.async_fleet().store;
    let run = |op: FleetOp| {
        let a = blocking.execute(&op).unwrap();
        (a, op)
    };
    let lock = keys.token_lock();
    let (a, _) = run(FleetOp::SetIfAbsent {
        key: lock.clone(),
        value: b"me".to_vec(),
        ttl: Duration::from_secs(5),
    });
    assert!(a.applied().unwrap());
    let again = runtime
        .block_on(asynchronous.execute(&FleetOp::SetIfAbsent {
            key: lock.clone(),
            value: b"you".to_vec(),
            ttl: Duration::from_secs(5),
        }))
        .unwrap();
    assert!(!again.applied().unwrap());
    let (a, _) = run(FleetOp::DeleteIfEquals {
        key: lock.clone(),
        value: b"you".to_vec(),
    });
    assert!(!a.applied().unwrap(), "not the holder");
    let (a, _) = run(FleetOp::DeleteIfEquals {
        key: lock.clone(),
        value: b"me".to_vec(),
    });
    assert!(a.applied().unwrap());
    let counter = keys.quota(
        &basiq::id::ConnectionId::new("c1").unwrap(),
        time::macros::date!(2026 - 01 - 05),
    );
    let inc = || FleetOp::IncrementBelow {
        key: counter.clone(),
        limit: 2,
        ttl: Duration::from_secs(60),
    };
    assert_eq!(run(inc()).0.count().unwrap(), Some(1));
    redis.query::<()>(redis::cmd("SCRIPT").arg("FLUSH"));
    assert_eq!(
        runtime
            .block_on(asynchronous.execute(&inc()))
            .unwrap()
            .count()
            .unwrap(),
        Some(2),
        "scripts reload after SCRIPT FLUSH"
    );
    assert_eq!(run(inc()).0.count().unwrap(), None, "at the limit");
    let ttl: i64 = redis.query(redis::cmd("PTTL").arg(counter.as_str()));
    assert!(ttl > 0 && ttl <= 60_000, "the counter expires: {ttl}");
    run(FleetOp::Decrement {
        key: counter.clone(),
    });
    assert_eq!(run(inc()).0.count().unwrap(), Some(2));
    redis.query::<()>(&redis::cmd("FLUSHALL"));
    assert_eq!(
        run(FleetOp::Get { key: counter }).0.into_value().unwrap(),
        None
    );
    let _: Arc<dyn FleetStore> = blocking;
    let _: Arc<dyn AsyncFleetStore> = asynchronous;
}

/// A Redis that hangs (`DEBUG SLEEP`) costs a request at most the store's timeout per operation,
/// never a failure.
#[test]
fn a_slow_redis_is_bounded_by_the_timeout_and_fails_no_request() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let server = MockServer::start();
    let fleet = RedisFleet::new(&redis.url())
        .unwrap()
        .prefix("test:slow")
        .unwrap()
        .timeout(Duration::from_millis(100));
    let url = redis.url();
    let sleeper = std::thread::spawn(move || {
        let client = redis::Client::open(url).unwrap();
        let mut connection = client.get_connection().unwrap();
        let _: redis::RedisResult<()> = redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg("3")
            .query(&mut connection);
    });
    std::thread::sleep(Duration::from_millis(200));
    let blocking = basiq::blocking::Client::builder()
        .api_key(server.api_key())
        .base_url(server.url())
        .fleet(fleet.blocking_fleet())
        .build()
        .unwrap();
    let started = Instant::now();
    blocking
        .users()
        .create(new_user("slow@example.com"))
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = basiq::Client::builder()
            .api_key(server.api_key())
            .base_url(server.url())
            .fleet(fleet.async_fleet())
            .build()
            .unwrap();
        client
            .users()
            .create(new_user("slow2@example.com"))
            .await
            .unwrap();
    });
    // Both went on without Redis (each fell back after its timeout): Redis is still asleep.
    assert!(
        !sleeper.is_finished(),
        "the requests waited for Redis ({:?})",
        started.elapsed()
    );
    sleeper.join().unwrap();
}

/// Two instances behind one load balancer share the webhook seen-store and the freshness
/// ledger on Redis: a retried message is handled by one of them only, and what one instance's
/// receiver heard, the other's refresh guard knows.
#[test]
fn webhook_ids_and_freshness_are_shared_on_redis() {
    use basiq::webhooks::Claim;
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let one = RedisFleet::new(&redis.url())
        .unwrap()
        .prefix("basiq:hooks")
        .unwrap();
    let two = RedisFleet::new(&redis.url())
        .unwrap()
        .prefix("basiq:hooks")
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let (seen_one, seen_two) = (one.seen_store(), two.seen_store());
    assert_eq!(seen_one.claim("msg_1", now).unwrap(), Claim::First);
    assert_eq!(seen_two.claim("msg_1", now).unwrap(), Claim::InProgress);
    seen_one.complete("msg_1", now).unwrap();
    assert_eq!(seen_two.claim("msg_1", now).unwrap(), Claim::Done);
    assert_eq!(seen_two.claim("msg_2", now).unwrap(), Claim::First);
    seen_two.release("msg_2").unwrap();
    assert_eq!(seen_one.claim("msg_2", now).unwrap(), Claim::First);

    let connection: basiq::id::ConnectionId = "c1".parse().unwrap();
    let at = time::OffsetDateTime::from_unix_timestamp(now.unix_timestamp()).unwrap();
    one.freshness_ledger().record(&connection, at).unwrap();
    assert_eq!(
        two.freshness_ledger().last_refreshed(&connection).unwrap(),
        Some(at)
    );
}
