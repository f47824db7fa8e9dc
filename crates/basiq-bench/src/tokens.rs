//! Single flight: how many `POST /token` a cold client makes when many callers need a token at
//! once. The baseline is the ideal, one; the emulator counts what it answered.

use std::sync::{Arc, Barrier};

use crate::{report, Env, Target};

/// 1,000 async tasks and 100 threads, each on a fresh client, all calling at once.
pub fn run(env: &Env) -> Result<(), String> {
    let admin = env.admin();
    admin.reset()?;
    let token = admin.token()?;
    let user = admin.create_user(&token)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let client = env.async_client()?;
    let before = admin.token_requests()?;
    let failures = runtime.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..1_000 {
            let client = client.clone();
            let user = user.clone();
            set.spawn(async move { client.users().get(user.as_str()).await.is_err() });
        }
        let mut failures = 0;
        while let Some(failed) = set.join_next().await {
            failures += usize::from(failed.unwrap_or(true));
        }
        failures
    });
    if failures > 0 {
        return Err(format!("{failures} of 1,000 async calls failed"));
    }
    let fetched = admin.token_requests()? - before;
    report(
        "token requests, 1,000 concurrent async callers",
        fetched as f64,
        1.0,
        "requests",
        Target::RatioAtMost(1.0),
    );

    let client = env.blocking_client()?;
    let before = admin.token_requests()?;
    let threads = 100;
    let barrier = Arc::new(Barrier::new(threads));
    let failures: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (client, barrier, user) = (&client, barrier.clone(), &user);
                s.spawn(move || {
                    barrier.wait();
                    client.users().get(user.as_str()).is_err()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| usize::from(h.join().unwrap_or(true)))
            .sum()
    });
    if failures > 0 {
        return Err(format!("{failures} of {threads} blocking calls failed"));
    }
    let fetched = admin.token_requests()? - before;
    report(
        "token requests, 100 concurrent blocking threads",
        fetched as f64,
        1.0,
        "requests",
        Target::RatioAtMost(1.0),
    );
    Ok(())
}
