//! The emulator under load: `GET /users/{id}` throughput for a user with 0 and with 16
//! connections against the bare axum server, and the time of a 500-transaction page for a user
//! with 1 and with 16 connections. The load is raw reqwest, 8 requests in flight.
//!
//! Rounds alternate the three servers' loads (and the two pages' samples), so a machine that
//! gets busier halfway through slows every series alike; each figure is the median round.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{median, report, Env, Target};

/// Requests per second answered with 200 over `duration`, `in_flight` at a time, on `client`
/// (whose pooled connections stay open from one round to the next).
async fn throughput(
    client: &reqwest::Client,
    url: &str,
    auth: &str,
    duration: Duration,
    in_flight: usize,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + duration;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (client, url, auth, done) = (
            client.clone(),
            url.to_owned(),
            auth.to_owned(),
            done.clone(),
        );
        set.spawn(async move {
            while Instant::now() < until {
                let ok = match client.get(&url).header("Authorization", &auth).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let start = Instant::now();
    while set.join_next().await.is_some() {}
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// The time of one `GET url` (body read), in milliseconds.
async fn latency(client: &reqwest::Client, url: &str, auth: &str) -> f64 {
    let t = Instant::now();
    let response = client
        .get(url)
        .header("Authorization", auth)
        .send()
        .await
        .expect("get");
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.bytes().await.expect("body");
    t.elapsed().as_secs_f64() * 1e3
}

/// Runs the load and the page timings.
pub fn run(env: &Env) -> Result<(), String> {
    let admin = env.admin();
    admin.reset()?;
    let token = admin.token()?;
    let none = admin.create_user(&token)?;
    let one = admin.user_with_connections(&token, 1)?;
    let sixteen = admin.user_with_connections(&token, 16)?;
    let auth = format!("Bearer {token}");
    let (rounds, round) = if env.quick {
        (5, Duration::from_millis(200))
    } else {
        (10, Duration::from_millis(250))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let user_url = |id: &str| format!("{}/users/{id}", env.emulator);
        let bare_url = format!("{}/users/{none}", env.bare);
        let (empty_url, full_url) = (user_url(&none), user_url(&sixteen));
        // One client per server, so each keeps its own warm connections.
        let (bare_client, emulator_client) = (reqwest::Client::new(), reqwest::Client::new());
        // Warm: the first read of the 16-connection user generates their data.
        latency(&emulator_client, &full_url, &auth).await;
        let (mut bare, mut empty, mut full) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            bare.push(throughput(&bare_client, &bare_url, &auth, round, 8).await);
            empty.push(throughput(&emulator_client, &empty_url, &auth, round, 8).await);
            full.push(throughput(&emulator_client, &full_url, &auth, round, 8).await);
        }
        let (bare, empty, full) = (median(bare), median(empty), median(full));
        report(
            "emulator GET /users/{id}, 0 connections vs bare axum",
            empty,
            bare,
            "req/s",
            Target::None,
        );
        report(
            "emulator GET /users/{id}, 16 connections vs 0 connections",
            full,
            empty,
            "req/s",
            Target::RatioAtLeast(0.5),
        );

        let samples = if env.quick { 10 } else { 30 };
        let page = |id: &str| format!("{}/users/{id}/transactions?limit=500", env.emulator);
        let (one_page, sixteen_page) = (page(&one), page(&sixteen));
        // Warm the connection and both users' data.
        latency(&emulator_client, &one_page, &auth).await;
        latency(&emulator_client, &sixteen_page, &auth).await;
        let (mut one_ms, mut sixteen_ms) = (Vec::new(), Vec::new());
        for _ in 0..samples {
            one_ms.push(latency(&emulator_client, &one_page, &auth).await);
            sixteen_ms.push(latency(&emulator_client, &sixteen_page, &auth).await);
        }
        report(
            "emulator transaction page (500), 16 connections vs 1 connection",
            median(sixteen_ms),
            median(one_ms),
            "ms",
            Target::RatioAtMost(2.0),
        );
    });
    Ok(())
}
