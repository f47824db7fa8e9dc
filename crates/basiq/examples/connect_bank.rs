//! Connect a bank and follow the job: the v3 flow, where connections are made by the user in
//! Basiq's Consent UI, and the application follows the job Basiq starts.
//!
//! ```text
//! cargo run -p basiq --example connect_bank   # offline, on the embedded emulator
//! ```
//!
//! Steps: create a user; get a Consent UI link (a CLIENT_ACCESS token bound to the user) — or,
//! if an attempt with the same credentials is running, the job to follow instead (a second
//! attempt would be paused 6 minutes by Basiq); the user connects (on the emulator: the sandbox
//! login `gavinBelson`/`hooli2016` at Hooli, `AU00000`); follow the job by its steps with
//! `jobs().wait`; read what the connection brought: accounts, and every transaction page by
//! page.

mod support;

use basiq::id::InstitutionId;
use basiq::jobs::PollConfig;
use basiq::models::NewUser;
use basiq::{ConsentAction, ConsentOutcome, TransactionQuery, WaitOutcome};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = support::Target::from_env();
    let client = target.async_builder().build()?;

    // 1. A user.
    let user = client
        .users()
        .create(NewUser {
            email: Some("gavin@hooli.com".into()),
            ..NewUser::default()
        })
        .await?
        .id;
    println!("1. created user {user}");

    // 2. A Consent UI link for Hooli — or the running job to follow.
    let action = ConsentAction::connect_to(InstitutionId::new("AU00000")?);
    let link = match client.consent_url(&user, action).await? {
        ConsentOutcome::Link(link) => link,
        other => {
            println!("2. an attempt is already running; follow it instead: {other:?}");
            return Ok(());
        }
    };
    // `Debug` redacts the client token; `redacted_url` is what may be logged.
    println!("2. consent link: {}", link.redacted_url());

    // 3. The user connects their bank; Basiq redirects back with `?jobIds=…`.
    let Some(job_ids) = target.user_connects(&link, ("gavinBelson", "hooli2016"))? else {
        return Ok(()); // real API: a person has to open the link
    };
    println!("3. the user connected; Basiq started job(s) {job_ids:?}");

    // 4. Follow each job by its steps (verify-credentials, retrieve-accounts, …).
    for job in &job_ids {
        let report = client
            .jobs()
            .wait(job.as_str(), PollConfig::default())
            .await?;
        match &report.outcome {
            WaitOutcome::Succeeded => println!(
                "4. job {job} succeeded after {} polls: connection {:?}",
                report.polls,
                report.connection_id().map(|c| c.as_str())
            ),
            WaitOutcome::Failed(diagnosis) => {
                println!(
                    "4. job {job} failed: {} -> {}",
                    diagnosis.failure.code.as_str(),
                    diagnosis.action
                );
            }
            WaitOutcome::MfaRequired(challenge) => {
                println!(
                    "4. job {job} waits for the user's MFA answer ({} prompts)",
                    challenge.prompts.len()
                );
            }
            other => println!("4. job {job}: {other:?}"),
        }
    }

    // 5. What the connection brought.
    let accounts = client.accounts().list(&user).await?;
    println!("5. {} account(s)", accounts.data.len());
    for account in &accounts.data {
        println!(
            "   {} {:?}: balance {:?} {}",
            account.id,
            account.name.as_deref().unwrap_or("-"),
            account.balance,
            account.currency.as_deref().unwrap_or("")
        );
    }
    let transactions = client
        .transactions()
        .all(&user, TransactionQuery::new())
        .await?;
    println!(
        "   {} transaction(s), every page read once",
        transactions.len()
    );

    client.users().delete(&user).await?;
    println!("6. deleted user {user}");
    Ok(())
}
