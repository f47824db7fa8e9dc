//! `cargo bench -p basiq-redis --bench fleet`: what fleet mode costs, measured against the same
//! client without a fleet in the same run.
//!
//! Starts the emulator and a `redis-server` on 127.0.0.1, then prints, for the async and the
//! blocking client: Redis round trips per request in steady state (a cached token needs none),
//! token fetches of 8 clients sharing the fleet vs 8 without it, and the latency ratio of a request
//! with and without the fleet.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use basiq::models::NewUser;
use basiq_mock::MockServer;
use basiq_redis::RedisFleet;

const REQUESTS: u32 = 300;
const CLIENTS: usize = 8;

fn user() -> NewUser {
    NewUser {
        email: Some("bench@example.com".into()),
        ..NewUser::default()
    }
}

fn main() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut redis = match Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .stdout(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("redis-server not found ({e}); install it to run this bench");
            return;
        }
    };
    let url = format!("redis://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection())
        .is_err()
    {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }

    println!("| figure | with fleet | without | ratio |");
    println!("|---|---|---|---|");
    blocking(&url);
    asynchronous(&url);
    let _ = redis.kill();
    let _ = redis.wait();
}

fn blocking(url: &str) {
    let server = MockServer::start();
    let fleet = RedisFleet::new(url)
        .unwrap()
        .prefix("bench:blocking")
        .unwrap();
    let build = |with_fleet: bool| {
        let b = basiq::blocking::Client::builder()
            .api_key(server.api_key())
            .base_url(server.url());
        let b = if with_fleet {
            b.fleet(fleet.blocking_fleet())
        } else {
            b
        };
        b.build().unwrap()
    };
    // Token fetches: CLIENTS clients (standing in for processes) each making one request.
    let fleet_clients: Vec<_> = (0..CLIENTS).map(|_| build(true)).collect();
    for c in &fleet_clients {
        c.users().create(user()).unwrap();
    }
    let with_fleet_tokens = server.stats().token_requests;
    let before = server.stats().token_requests;
    let plain: Vec<_> = (0..CLIENTS).map(|_| build(false)).collect();
    for c in &plain {
        c.users().create(user()).unwrap();
    }
    let without_tokens = server.stats().token_requests - before;
    row(
        &format!("blocking: token fetches, {CLIENTS} clients"),
        with_fleet_tokens as f64,
        without_tokens as f64,
    );
    // Steady state: round trips per request and latency.
    let (fleet_client, plain_client) = (&fleet_clients[0], &plain[0]);
    let trips = fleet.round_trips();
    let t = Instant::now();
    for _ in 0..REQUESTS {
        fleet_client.users().create(user()).unwrap();
    }
    let with = t.elapsed();
    let per_request = (fleet.round_trips() - trips) as f64 / f64::from(REQUESTS);
    let t = Instant::now();
    for _ in 0..REQUESTS {
        plain_client.users().create(user()).unwrap();
    }
    let without = t.elapsed();
    row(
        "blocking: Redis round trips per request (steady)",
        per_request,
        0.0,
    );
    row(
        "blocking: µs per request",
        with.as_secs_f64() * 1e6 / f64::from(REQUESTS),
        without.as_secs_f64() * 1e6 / f64::from(REQUESTS),
    );
}

fn asynchronous(url: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = MockServer::start();
    let fleet = RedisFleet::new(url).unwrap().prefix("bench:async").unwrap();
    runtime.block_on(async {
        let build = |with_fleet: bool| {
            let b = basiq::Client::builder()
                .api_key(server.api_key())
                .base_url(server.url());
            let b = if with_fleet {
                b.fleet(fleet.async_fleet())
            } else {
                b
            };
            b.build().unwrap()
        };
        let fleet_clients: Vec<_> = (0..CLIENTS).map(|_| build(true)).collect();
        let mut calls = tokio::task::JoinSet::new();
        for c in fleet_clients.clone() {
            calls.spawn(async move { c.users().create(user()).await });
        }
        while let Some(answer) = calls.join_next().await {
            answer.unwrap().unwrap();
        }
        let with_fleet_tokens = server.stats().token_requests;
        let plain: Vec<_> = (0..CLIENTS).map(|_| build(false)).collect();
        let before = server.stats().token_requests;
        for c in &plain {
            c.users().create(user()).await.unwrap();
        }
        let without_tokens = server.stats().token_requests - before;
        row(
            &format!("async: token fetches, {CLIENTS} clients at once"),
            with_fleet_tokens as f64,
            without_tokens as f64,
        );
        let trips = fleet.round_trips();
        let t = Instant::now();
        for _ in 0..REQUESTS {
            fleet_clients[0].users().create(user()).await.unwrap();
        }
        let with = t.elapsed();
        let per_request = (fleet.round_trips() - trips) as f64 / f64::from(REQUESTS);
        let t = Instant::now();
        for _ in 0..REQUESTS {
            plain[0].users().create(user()).await.unwrap();
        }
        let without = t.elapsed();
        row(
            "async: Redis round trips per request (steady)",
            per_request,
            0.0,
        );
        row(
            "async: µs per request",
            with.as_secs_f64() * 1e6 / f64::from(REQUESTS),
            without.as_secs_f64() * 1e6 / f64::from(REQUESTS),
        );
    });
}

fn row(figure: &str, with: f64, without: f64) {
    let ratio = if without == 0.0 {
        "—".to_owned()
    } else {
        format!("{:.2}", with / without)
    };
    println!("| {figure} | {with:.2} | {without:.2} | {ratio} |");
}
