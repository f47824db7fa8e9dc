//! A blocking application: `basiq::blocking::Client` on ureq — no tokio, no async runtime,
//! usable from plain threads, CLIs, or inside someone else's runtime.
//!
//! ```text
//! cargo run -p basiq --no-default-features --features blocking --example blocking_app
//! ```
//!
//! The same capabilities as the async client, with the same rules: one cached server token for
//! the whole process (clones share it — here, four threads), guarded refreshes, jobs followed by
//! their steps, the daily triage.

mod support;

use std::thread;

use basiq::id::InstitutionId;
use basiq::jobs::PollConfig;
use basiq::models::NewUser;
use basiq::{ConsentAction, ConsentOutcome};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = support::Target::from_env();
    let client = target.blocking_builder().build()?;

    // Four threads, one client: they share one server token.
    let users: Vec<String> = thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let client = client.clone();
                scope.spawn(move || {
                    client
                        .users()
                        .create(NewUser {
                            email: Some(format!("user{i}@hooli.com")),
                            ..NewUser::default()
                        })
                        .map(|u| u.id.as_str().to_owned())
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| "a thread panicked".to_owned())?)
            .collect::<Result<_, String>>()
    })?;
    println!("1. four threads created users {users:?}");
    if let Some((server, _)) = &target.emulator {
        println!(
            "   ... with {} token request(s) in all",
            server.stats().token_requests
        );
    }

    // Connect the first one and follow the job.
    let user = users.first().ok_or("no user")?.as_str();
    let action = ConsentAction::connect_to(InstitutionId::new("AU00000")?);
    let ConsentOutcome::Link(link) = client.consent_url(user, action)? else {
        return Err("expected a consent link for a new user".into());
    };
    let Some(jobs) = target.user_connects(&link, ("jared", "django"))? else {
        return Ok(());
    };
    for job in &jobs {
        let report = client.jobs().wait(job.as_str(), PollConfig::default())?;
        println!("2. job {job}: {:?}", report.outcome);
    }
    let accounts = client.accounts().list(user)?;
    println!(
        "3. {} account(s); triage: {} failure(s)",
        accounts.data.len(),
        client.users().triage(user)?.len()
    );

    for user in &users {
        client.users().delete(user.as_str())?;
    }
    println!("4. deleted the users");
    Ok(())
}
