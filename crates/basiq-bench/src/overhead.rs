//! What the SDK costs per request on top of a raw HTTP client, both against the emulator:
//! `GET /users/{id}` decoded into `basiq::models::User`, by raw reqwest / raw ureq with a token
//! fetched once by hand (the floor), and by the SDK (token cache, id validation, operation,
//! span, limits, error mapping).
//!
//! The raw clients are configured as the SDK's are (connect and overall timeouts, no
//! redirects) and send the same request head (`User-Agent`, `Accept: application/json` — Basiq
//! answers a wrong `Accept` with `unsupported-accept` — and the bearer token): what a careful
//! integrator without the SDK would run, so a ratio is what the SDK adds to the same exchange.
//!
//! Four scenarios — async sequential, async 64 tasks (2 runtime workers), blocking sequential,
//! blocking 8 threads — each in latency, CPU (this process, all threads) and allocations per
//! request. Rounds alternate raw and SDK; each figure is the median round. Also the size of one
//! async call's future (what every call in flight holds), SDK against raw reqwest.

use std::sync::Arc;
use std::time::{Duration, Instant};

use basiq::models::User;

use crate::{allocations, cpu_time, median, report, Env, Target};

/// The `Accept` value the SDK sends.
const JSON: reqwest::header::HeaderValue =
    reqwest::header::HeaderValue::from_static("application/json");

/// One round's cost per call.
#[derive(Debug, Clone, Copy)]
struct Cost {
    wall: Duration,
    cpu: Duration,
    allocs: u64,
    calls: u64,
}

fn measure(calls: u64, f: impl FnOnce()) -> Cost {
    let (a0, c0, t0) = (allocations(), cpu_time(), Instant::now());
    f();
    Cost {
        wall: t0.elapsed(),
        cpu: cpu_time().saturating_sub(c0),
        allocs: allocations().saturating_sub(a0),
        calls,
    }
}

#[derive(Debug, Default)]
struct Samples {
    raw: Vec<Cost>,
    sdk: Vec<Cost>,
}

impl Samples {
    /// One round: both sides measured back to back, which goes first alternating from round to
    /// round, so neither always runs right after the other (on a connection the server has just
    /// served, with the other side's data in the caches).
    fn round(&mut self, round: usize, calls: u64, raw: impl FnOnce(), sdk: impl FnOnce()) {
        if round.is_multiple_of(2) {
            self.raw.push(measure(calls, raw));
            self.sdk.push(measure(calls, sdk));
        } else {
            self.sdk.push(measure(calls, sdk));
            self.raw.push(measure(calls, raw));
        }
    }

    fn report(&self, name: &str, concurrent: bool) {
        let per = |costs: &[Cost], f: fn(&Cost) -> f64| {
            median(costs.iter().map(|c| f(c) / c.calls as f64).collect())
        };
        let wall = |c: &Cost| c.wall.as_secs_f64() * 1e6;
        let cpu = |c: &Cost| c.cpu.as_secs_f64() * 1e6;
        let allocs = |c: &Cost| c.allocs as f64;
        let cpu_target = if concurrent { 1.08 } else { 1.03 };
        report(
            &format!("{name}: latency per request"),
            per(&self.sdk, wall),
            per(&self.raw, wall),
            "us",
            Target::None,
        );
        report(
            &format!("{name}: CPU per request"),
            per(&self.sdk, cpu),
            per(&self.raw, cpu),
            "us",
            Target::RatioAtMost(cpu_target),
        );
        report(
            &format!("{name}: allocations per request"),
            per(&self.sdk, allocs),
            per(&self.raw, allocs),
            "allocs",
            Target::DiffAtMost(5.0),
        );
    }
}

/// Runs the four scenarios.
pub fn run(env: &Env) -> Result<(), String> {
    let admin = env.admin();
    admin.reset()?;
    let token = admin.token()?;
    let user = admin.create_user(&token)?;
    let rounds = if env.quick { 7 } else { 15 };
    asynchronous(env, &user, &token, rounds)?;
    blocking(env, &user, &token, rounds)?;
    Ok(())
}

fn asynchronous(env: &Env, user: &str, token: &str, rounds: usize) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let client = env.async_client()?;
    let raw = crate::raw_reqwest();
    let url = format!("{}/users/{user}", env.emulator);
    let auth = format!("Bearer {token}");

    async fn raw_get(raw: &reqwest::Client, url: &str, auth: &str) {
        let response = raw
            .get(url)
            .header(reqwest::header::ACCEPT, JSON)
            .header(reqwest::header::AUTHORIZATION, auth)
            .send()
            .await
            .expect("raw get");
        let bytes = response.bytes().await.expect("raw body");
        let user: User = serde_json::from_slice(&bytes).expect("raw decode");
        std::hint::black_box(user);
    }
    async fn sdk_get(client: &basiq::Client, user: &str) {
        let user = client.users().get(user).await.expect("sdk get");
        std::hint::black_box(user);
    }

    // Warm both the same way: the SDK's token cache, then four requests at once on each client,
    // so both pools start with spare connections. With one request each, a race in hyper-util's
    // pool decided which client kept a second connection, and the one left with a single
    // connection empties and rebuilds its idle list on every request (about 4k instructions).
    runtime.block_on(async {
        sdk_get(&client, user).await;
        tokio::join!(
            sdk_get(&client, user),
            sdk_get(&client, user),
            sdk_get(&client, user),
            sdk_get(&client, user),
        );
        tokio::join!(
            raw_get(&raw, &url, &auth),
            raw_get(&raw, &url, &auth),
            raw_get(&raw, &url, &auth),
            raw_get(&raw, &url, &auth),
        );
    });

    let calls = 300;
    let mut sequential = Samples::default();
    for round in 0..rounds {
        sequential.round(
            round,
            calls,
            || {
                runtime.block_on(async {
                    for _ in 0..calls {
                        raw_get(&raw, &url, &auth).await;
                    }
                });
            },
            || {
                runtime.block_on(async {
                    for _ in 0..calls {
                        sdk_get(&client, user).await;
                    }
                });
            },
        );
    }
    sequential.report("async, sequential", false);
    // What one call in flight holds (in its task): the future, before it is first polled.
    report(
        "async: bytes one call in flight holds (its future)",
        std::mem::size_of_val(&sdk_get(&client, user)) as f64,
        std::mem::size_of_val(&raw_get(&raw, &url, &auth)) as f64,
        "bytes",
        Target::None,
    );

    let tasks = 64;
    let per_task = 20;
    let shared = Arc::new((client, raw, url, auth, user.to_owned()));
    let mut concurrent = Samples::default();
    for round in 0..rounds {
        concurrent.round(
            round,
            tasks * per_task,
            || {
                runtime.block_on(async {
                    let mut set = tokio::task::JoinSet::new();
                    for _ in 0..tasks {
                        let shared = shared.clone();
                        set.spawn(async move {
                            for _ in 0..per_task {
                                raw_get(&shared.1, &shared.2, &shared.3).await;
                            }
                        });
                    }
                    while set.join_next().await.is_some() {}
                });
            },
            || {
                runtime.block_on(async {
                    let mut set = tokio::task::JoinSet::new();
                    for _ in 0..tasks {
                        let shared = shared.clone();
                        set.spawn(async move {
                            for _ in 0..per_task {
                                sdk_get(&shared.0, &shared.4).await;
                            }
                        });
                    }
                    while set.join_next().await.is_some() {}
                });
            },
        );
    }
    concurrent.report("async, 64 tasks", true);
    Ok(())
}

fn blocking(env: &Env, user: &str, token: &str, rounds: usize) -> Result<(), String> {
    let client = env.blocking_client()?;
    let agent = crate::raw_ureq();
    let url = format!("{}/users/{user}", env.emulator);
    let auth = format!("Bearer {token}");

    fn raw_get(agent: &ureq::Agent, url: &str, auth: &str) {
        let response = agent
            .get(url)
            .set("Accept", "application/json")
            .set("Authorization", auth)
            .call()
            .expect("raw get");
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut response.into_reader(), &mut body).expect("raw body");
        let user: User = serde_json::from_slice(&body).expect("raw decode");
        std::hint::black_box(user);
    }
    fn sdk_get(client: &basiq::blocking::Client, user: &str) {
        let user = client.users().get(user).expect("sdk get");
        std::hint::black_box(user);
    }

    sdk_get(&client, user);
    raw_get(&agent, &url, &auth);

    let calls = 300;
    let mut sequential = Samples::default();
    for round in 0..rounds {
        sequential.round(
            round,
            calls,
            || {
                for _ in 0..calls {
                    raw_get(&agent, &url, &auth);
                }
            },
            || {
                for _ in 0..calls {
                    sdk_get(&client, user);
                }
            },
        );
    }
    sequential.report("blocking, sequential", false);

    let threads = 8;
    let per_thread = 60;
    let mut concurrent = Samples::default();
    for round in 0..rounds {
        concurrent.round(
            round,
            threads * per_thread,
            || {
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        s.spawn(|| {
                            for _ in 0..per_thread {
                                raw_get(&agent, &url, &auth);
                            }
                        });
                    }
                });
            },
            || {
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        s.spawn(|| {
                            for _ in 0..per_thread {
                                sdk_get(&client, user);
                            }
                        });
                    }
                });
            },
        );
    }
    concurrent.report("blocking, 8 threads", true);
    Ok(())
}
