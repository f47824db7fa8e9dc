//! Fleet mode: several instances of one app (pods, workers, a cron box) keep Basiq's rules
//! *together* — one server token for all of them, one attempt at a time per connection, one
//! daily quota — because they share state.
//!
//! ```text
//! cargo run -p basiq --example fleet_instances   # offline, on the embedded emulator
//! ```
//!
//! Here three clients in one process stand in for three instances, sharing one in-memory store.
//! In production every instance builds its client on the same Redis (crate `basiq-redis`):
//!
//! ```text
//! let fleet = basiq_redis::RedisFleet::new("redis://10.0.0.5:6379/")?.prefix("myapp:prod")?;
//! let client = basiq::Client::builder().api_key(key).fleet(fleet.async_fleet()).build()?;
//! ```

mod support;

use std::sync::Arc;
use std::time::Duration;

use basiq::clock::Clock;
use basiq::fleet::{AsyncFleet, FleetConfig, FleetKeys, MemoryFleetStore};
use basiq::{Client, RefreshOutcome};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = support::Target::from_env();
    let first = target.async_builder().build()?; // no fleet: only follows a job below
    let clock: Arc<dyn Clock> = first.executor().clock().clone();
    // The state the instances share (Redis in production), under one prefix per app and
    // environment.
    let store = Arc::new(MemoryFleetStore::new(clock));
    let fleet = |instance: &str| AsyncFleet {
        store: store.clone(),
        config: FleetConfig::new(FleetKeys::new("example:dev").expect("a valid prefix"))
            .with_instance(instance),
    };
    // Instances waiting for another's token fetch poll the store in real time (the emulator's
    // virtual-time sleep would make them give up at once).
    let mut instances: Vec<Client> = Vec::new();
    for name in ["web-1", "web-2", "worker"] {
        let builder = target
            .async_builder()
            .sleep(|d| Box::pin(tokio::time::sleep(d)));
        instances.push(builder.fleet(fleet(name)).build()?);
    }

    // 1. Everyone starts at once: 30 concurrent calls over three instances, one /token request.
    let calls = instances
        .iter()
        .cycle()
        .take(30)
        .map(|c| c.connectors().list());
    for answer in futures_util::future::join_all(calls).await {
        answer?;
    }
    if let Some((server, _)) = &target.emulator {
        println!(
            "1. 30 calls on 3 instances cost {} token request(s)",
            server.stats().token_requests
        );
    }

    // A user with one connection (see the connect_bank example).
    let (web, worker) = (&instances[0], &instances[2]);
    // Followed on the emulator's virtual time by the first client (its waits move the clock).
    let Some((user, report)) = target
        .connected_user(
            web,
            &first,
            "dinesh@piedpiper.com",
            ("Gilfoyle", "PiedPiper"),
        )
        .await?
    else {
        return Ok(()); // real API: a person has to open the link
    };
    let connection = report
        .connection_id()
        .ok_or("the job names no connection")?
        .clone();
    println!("2. user {user} connected {connection}");

    // 3. A day later two instances decide to refresh the same connection at the same moment:
    //    one sends it, the other is told another instance is on it (no duplicate, no pause).
    target.advance(Duration::from_secs(25 * 60 * 60));
    let (a, b) = tokio::join!(
        web.connections().refresh(&user, &connection),
        worker.connections().refresh(&user, &connection),
    );
    for (name, outcome) in [("web-1", a?), ("worker", b?)] {
        match outcome {
            RefreshOutcome::Started(job) => println!("3. {name}: refresh sent, job {job}"),
            other => println!("3. {name}: {other}"),
        }
    }
    if let Some((server, _)) = &target.emulator {
        let sent = server.stats().refreshes.get(connection.as_str()).copied();
        println!("   Basiq created {} refresh job(s)", sent.unwrap_or(0));
    }

    web.users().delete(&user).await?;
    Ok(())
}
