//! Walking every transaction of a user with 10k, 100k and 1M transactions (one connection),
//! page by page (500 a page), through the SDK's pager — async and blocking — and through raw
//! reqwest / ureq decoding each page into the same model and following `links.next` (the
//! baseline for throughput). Each walk runs in a child process of its own (`suite stream-child`)
//! so its peak RSS (`VmHWM`) is that walk's alone; flat memory means the 1M walk peaks within
//! 1.1× of the 10k one.
//!
//! The SDK walks are the owned `transactions().items(user, query)`: a `Stream` on the async
//! client, an `Iterator` on the blocking one. The async walk polls the stream from the thread
//! that calls `block_on` on a 2-worker runtime, as `#[tokio::main]` does; it is walked once more
//! on a current-thread runtime (10k and 1M, RSS only), where hyper's connection task runs on the
//! polling thread, to tell the SDK's own memory from the growth of glibc's heaps under hyper's
//! cross-thread read buffers (docs/performance.md).

use std::process::Command;
use std::time::Instant;

use basiq::models::TransactionList;
use basiq::TransactionQuery;

use crate::{peak_rss_kib, report, Env, Target};

const SIZES: [(u64, &str); 3] = [(10_000, "10k"), (100_000, "100k"), (1_000_000, "1M")];

/// One walk's outcome, as a child prints it.
#[derive(Debug, Clone, Copy)]
struct Walk {
    transactions: u64,
    seconds: f64,
    peak_rss_kib: u64,
}

fn spawn_walk(flavor: &str, user: &str, expected: u64) -> Result<Walk, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Command::new(exe)
        .args(["stream-child", flavor, user])
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "stream-child {flavor} failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("CHILD\t"))
        .ok_or_else(|| format!("stream-child {flavor} printed no result: {stdout}"))?;
    let fields: Vec<&str> = line.split('\t').collect();
    let walk = match fields.as_slice() {
        [n, secs, rss] => Walk {
            transactions: n.parse().map_err(|_| line.to_owned())?,
            seconds: secs.parse().map_err(|_| line.to_owned())?,
            peak_rss_kib: rss.parse().map_err(|_| line.to_owned())?,
        },
        _ => return Err(format!("bad child line {line}")),
    };
    if walk.transactions != expected {
        return Err(format!(
            "{flavor} walked {} transactions, expected {expected}",
            walk.transactions
        ));
    }
    Ok(walk)
}

/// Sets up the three users, runs the walks, reports.
pub fn run(env: &Env) -> Result<(), String> {
    let admin = env.admin();
    admin.reset()?;
    let token = admin.token()?;
    let mut users = Vec::new();
    for (n, _) in SIZES {
        let user = admin.user_with_connections(&token, 1)?;
        admin.set_user_transactions(&user, n)?;
        // Generate the data now, not during the timed walk.
        admin.get(&format!("/users/{user}/transactions?limit=1"), &token)?;
        users.push(user);
    }
    for (sdk, raw, label) in [
        ("sdk-async", "raw-async", "async stream"),
        ("sdk-blocking", "raw-blocking", "blocking iterator"),
    ] {
        let mut sdk_walks = Vec::new();
        for ((n, size), user) in SIZES.iter().zip(&users) {
            let walk = spawn_walk(sdk, user, *n)?;
            // Raw 1M walks double the time of the bench; `--quick` skips them.
            if !(env.quick && *n == 1_000_000) {
                let baseline = spawn_walk(raw, user, *n)?;
                report(
                    &format!("{label}, {size} transactions: throughput vs raw"),
                    walk.transactions as f64 / walk.seconds,
                    baseline.transactions as f64 / baseline.seconds,
                    "tx/s",
                    Target::None,
                );
            }
            sdk_walks.push((*size, walk));
        }
        report_rss(label, &sdk_walks, Target::RatioAtMost(1.1));
    }
    // `--quick` skips these walks, as it does the raw 1M ones.
    if !env.quick {
        let mut walks = Vec::new();
        for (i, (n, size)) in SIZES.iter().enumerate() {
            if *n != 100_000 {
                walks.push((
                    *size,
                    spawn_walk("sdk-async-current-thread", &users[i], *n)?,
                ));
            }
        }
        report_rss(
            "async stream on a current-thread runtime",
            &walks,
            Target::None,
        );
    }
    Ok(())
}

/// Each walk's peak RSS against the first (10k) one's; `one_million` is the 1M walk's target.
fn report_rss(label: &str, walks: &[(&str, Walk)], one_million: Target) {
    let base = walks.first().map_or(0.0, |(_, w)| w.peak_rss_kib as f64);
    for (size, walk) in walks.iter().skip(1) {
        report(
            &format!("{label}, {size} transactions: peak RSS vs 10k"),
            walk.peak_rss_kib as f64 / 1024.0,
            base / 1024.0,
            "MiB",
            if *size == "1M" {
                one_million
            } else {
                Target::None
            },
        );
    }
}

/// `suite stream-child <flavor> <user>`: one walk; prints `CHILD\t<n>\t<seconds>\t<VmHWM KiB>`.
pub fn child(args: &[&str]) -> Result<(), String> {
    let [flavor, user] = args else {
        return Err("usage: stream-child <flavor> <user>".into());
    };
    let env = Env::from_env()?;
    let start = Instant::now();
    let transactions = match *flavor {
        "sdk-async" => sdk_async(&env, user, runtime()?)?,
        "sdk-async-current-thread" => sdk_async(&env, user, current_thread_runtime()?)?,
        "sdk-blocking" => sdk_blocking(&env, user)?,
        "raw-async" => raw_async(&env, user)?,
        "raw-blocking" => raw_blocking(&env, user)?,
        other => return Err(format!("unknown flavor {other}")),
    };
    let seconds = start.elapsed().as_secs_f64();
    println!("CHILD\t{transactions}\t{seconds}\t{}", peak_rss_kib());
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

fn current_thread_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

/// Every transaction through the async SDK, one at a time, none kept, polled by `block_on`.
pub fn sdk_async(env: &Env, user: &str, runtime: tokio::runtime::Runtime) -> Result<u64, String> {
    let client = env.async_client()?;
    runtime.block_on(async {
        use basiq::StreamExt as _;
        let mut items = client
            .transactions()
            .items(user, TransactionQuery::new())
            .map_err(|e| e.to_string())?;
        let mut n = 0;
        while let Some(transaction) = items.next().await {
            std::hint::black_box(transaction.map_err(|e| e.to_string())?);
            n += 1;
        }
        Ok(n)
    })
}

/// Every transaction through the blocking SDK, one at a time, none kept.
pub fn sdk_blocking(env: &Env, user: &str) -> Result<u64, String> {
    let client = env.blocking_client()?;
    let items = client
        .transactions()
        .items(user, TransactionQuery::new())
        .map_err(|e| e.to_string())?;
    let mut n = 0;
    for transaction in items {
        std::hint::black_box(transaction.map_err(|e| e.to_string())?);
        n += 1;
    }
    Ok(n)
}

fn next_link(list: &TransactionList) -> Option<String> {
    list.links.as_ref().and_then(|l| l.next.clone())
}

fn raw_async(env: &Env, user: &str) -> Result<u64, String> {
    let auth = format!("Bearer {}", env.admin().token()?);
    let client = crate::raw_reqwest();
    runtime()?.block_on(async {
        let mut url = Some(format!(
            "{}/users/{user}/transactions?limit=500",
            env.emulator
        ));
        let mut n = 0;
        while let Some(next) = url.take() {
            let body = client
                .get(&next)
                .header("Authorization", &auth)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| e.to_string())?
                .bytes()
                .await
                .map_err(|e| e.to_string())?;
            let list: TransactionList = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            url = next_link(&list);
            for transaction in list.data {
                std::hint::black_box(transaction);
                n += 1;
            }
        }
        Ok(n)
    })
}

fn raw_blocking(env: &Env, user: &str) -> Result<u64, String> {
    let auth = format!("Bearer {}", env.admin().token()?);
    let agent = crate::raw_ureq();
    let mut url = Some(format!(
        "{}/users/{user}/transactions?limit=500",
        env.emulator
    ));
    let mut n = 0;
    while let Some(next) = url.take() {
        let response = agent
            .get(&next)
            .set("Authorization", &auth)
            .call()
            .map_err(|e| e.to_string())?;
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut response.into_reader(), &mut body)
            .map_err(|e| e.to_string())?;
        let list: TransactionList = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        url = next_link(&list);
        for transaction in list.data {
            std::hint::black_box(transaction);
            n += 1;
        }
    }
    Ok(n)
}
