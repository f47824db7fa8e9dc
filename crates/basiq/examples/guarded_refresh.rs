//! Guarded refresh and refresh plans: refresh *rarely*, only active connections, never while a
//! job runs, never twice in a row, at most 20 a day for open banking — and many connections
//! spread over time, never "refresh all".
//!
//! ```text
//! cargo run -p basiq --example guarded_refresh   # offline, on the embedded emulator
//! ```
//!
//! `connections().refresh` reads the connection and the user's jobs first and sends nothing
//! when Basiq's rules say no (`RefreshOutcome::Skipped(reason)`); `plan_refreshes` gives each
//! of many connections a stable slot in a window, at most `max_refreshes_per_minute` a minute.

mod support;

use std::time::Duration;

use basiq::id::ConnectionId;
use basiq::jobs::PollConfig;
use basiq::RefreshOutcome;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = support::Target::from_env();
    let client = target.async_builder().max_refreshes_per_minute(2).build()?;

    // A user with one Hooli connection (see the connect_bank example).
    let Some((user, report)) = target
        .connected_user(
            &client,
            &client,
            "richard@piedpiper.com",
            ("richard", "tabsnotspaces"),
        )
        .await?
    else {
        return Ok(()); // real API: a person has to open the link
    };
    let connection = report
        .connection_id()
        .ok_or("the job names no connection")?
        .clone();
    println!(
        "1. user {user} connected {connection} ({:?})",
        report.outcome
    );

    // 2. Refreshing right after the connection's job: the guard sends nothing.
    match client.connections().refresh(&user, &connection).await? {
        RefreshOutcome::Skipped(reason) => println!("2. refresh skipped, nothing sent: {reason:?}"),
        other => println!("2. {other:?}"),
    }

    // 3. A day later the connection is due: the refresh is sent; follow its job.
    target.advance(Duration::from_secs(25 * 60 * 60));
    match client.connections().refresh(&user, &connection).await? {
        RefreshOutcome::Started(job) | RefreshOutcome::AlreadyRunning(job) => {
            let report = client.jobs().wait(&job, PollConfig::default()).await?;
            println!("3. refresh sent, job {job}: {:?}", report.outcome);
        }
        other => println!("3. {other:?}"),
    }

    // 4. And again at once: skipped, the connection was just refreshed.
    if let RefreshOutcome::Skipped(reason) =
        client.connections().refresh(&user, &connection).await?
    {
        println!("4. second refresh skipped: {reason:?}");
    }

    // 5. Many connections: a plan, not a burst. Each connection keeps its slot from day to day;
    //    at each slot call `refresh` (which still applies the guard).
    let fleet: Vec<ConnectionId> = (1..=5)
        .map(|i| ConnectionId::new(format!("conn-{i}")))
        .collect::<Result<_, _>>()?;
    let now = client.now();
    let plan = client
        .connections()
        .plan_refreshes(&fleet, Duration::from_secs(2 * 60), now);
    println!(
        "5. plan for {} connections over 2 minutes, at most 2 a minute:",
        fleet.len()
    );
    for slot in &plan.planned {
        println!(
            "   {} at +{}s",
            slot.connection_id,
            (slot.at - now).whole_seconds()
        );
    }
    println!(
        "   {} did not fit: plan them in the next window",
        plan.overflow.len()
    );

    client.users().delete(&user).await?;
    Ok(())
}
