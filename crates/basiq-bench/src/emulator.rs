//! The emulator under load: `GET /users/{id}` throughput for a user with 0 and with 16
//! connections against the bare axum server, and the time of a 500-transaction page for a user
//! with 1 and with 16 connections. The load is raw reqwest, 8 requests in flight.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{median, report, Env, Target};

/// Requests per second answered with 200 over `duration`, `in_flight` at a time.
async fn throughput(url: String, auth: String, duration: Duration, in_flight: usize) -> f64 {
    let client = reqwest::Client::new();
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + duration;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (client, url, auth, done) = (client.clone(), url.clone(), auth.clone(), done.clone());
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

/// Median time of `GET url` (body read), sequentially.
async fn latency(url: &str, auth: &str, samples: usize) -> f64 {
    let client = reqwest::Client::new();
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples + 2 {
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
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    // The first two warm the connection (and the emulator's data cache).
    median(times.split_off(2))
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
    let duration = Duration::from_millis(if env.quick { 1_000 } else { 2_500 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let user_url = |id: &str| format!("{}/users/{id}", env.emulator);
        // Warm: the first read of the 16-connection user generates their data.
        latency(&user_url(&sixteen), &auth, 1).await;
        let bare = throughput(
            format!("{}/users/{none}", env.bare),
            auth.clone(),
            duration,
            8,
        )
        .await;
        let empty = throughput(user_url(&none), auth.clone(), duration, 8).await;
        let full = throughput(user_url(&sixteen), auth.clone(), duration, 8).await;
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
        let one_ms = latency(&page(&one), &auth, samples).await;
        let sixteen_ms = latency(&page(&sixteen), &auth, samples).await;
        report(
            "emulator transaction page (500), 16 connections vs 1 connection",
            sixteen_ms,
            one_ms,
            "ms",
            Target::RatioAtMost(2.0),
        );
    });
    Ok(())
}
