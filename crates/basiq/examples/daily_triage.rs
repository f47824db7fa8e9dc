//! Daily triage: the check Basiq asks integrators to run once a day and at every login — the
//! user's failed jobs that nothing fixed since, each classified with the action to take, and
//! `/connectors` consulted so an outage at the bank is not blamed on the user.
//!
//! ```text
//! cargo run -p basiq --example daily_triage   # offline, on the embedded emulator
//! ```
//!
//! On the emulator the user connects with two of Basiq's sandbox logins that always fail:
//! `bighead` (locked account: `invalid-credentials`) and `jianYang` (`service-unavailable`),
//! while Hooli's connector reports an outage.

mod support;

use basiq::id::InstitutionId;
use basiq::jobs::PollConfig;
use basiq::models::NewUser;
use basiq::{ConsentAction, ConsentOutcome};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = support::Target::from_env();
    let client = target.async_builder().build()?;

    let user = client
        .users()
        .create(NewUser {
            email: Some("bighead@hooli.com".into()),
            ..NewUser::default()
        })
        .await?
        .id;
    // Two failed attempts (each one a different bank login in the Consent UI).
    for (institution, login) in [
        ("AU00000", ("bighead", "password")),
        ("AU00000", ("jianYang", "nothotdog")),
    ] {
        let action = ConsentAction::connect_to(InstitutionId::new(institution)?);
        let ConsentOutcome::Link(link) = client.consent_url(&user, action).await? else {
            continue; // an attempt is running: nothing to start
        };
        let Some(jobs) = target.user_connects(&link, login)? else {
            return Ok(()); // real API: a person has to open the link
        };
        for job in jobs {
            let report = client.jobs().wait(job, PollConfig::default()).await?;
            println!("{report}");
        }
    }

    // Meanwhile Hooli reports a major outage on /connectors (staged on the emulator): the
    // `service-unavailable` failure becomes "their end, retry when operational" instead of
    // something to bother the user or support with.
    if let Some((server, _)) = &target.emulator {
        server.set_connector_status("AU00000", "major-outage")?;
    }

    // The daily / at-login check.
    let failures = client.users().triage(&user).await?;
    println!("{} unresolved failure(s) for user {user}:", failures.len());
    for failure in &failures {
        println!(
            "- job {} ({}), connection {:?}: {} -> {}{}",
            failure.job_id,
            failure.institution.as_deref().unwrap_or("?"),
            failure.connection_id.as_ref().map(|c| c.as_str()),
            failure.failure.code.as_str(),
            failure.action,
            if failure.class.is_retryable() {
                " (retryable)"
            } else {
                ""
            },
        );
    }

    client.users().delete(&user).await?;
    Ok(())
}
