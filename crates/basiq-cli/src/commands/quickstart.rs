//! `quickstart`: the SDK's best practices end to end, on the embedded emulator (no key needed,
//! virtual time, so the jobs' 13 seconds take none).

use std::time::Duration;

use basiq::jobs::JobKind;
use basiq::models::NewUser;
use basiq::{ConsentAction, ConsentLink, ConsentOutcome};
use serde_json::{json, Value};

use super::jobs::{follow, Outcome};
use crate::output::{refresh_json, refresh_summary, CliError, EXIT_OK};
use crate::session::Session;

pub(crate) fn run(s: &Session) -> Result<i32, CliError> {
    let server = s
        .emulator
        .as_ref()
        .ok_or_else(|| CliError::other("the quickstart runs on the embedded emulator"))?;
    let say = |n: u32, text: String, data: Value| {
        if s.out.json {
            let mut v = json!({ "step": n, "message": text });
            if let (Some(v), Value::Object(extra)) = (v.as_object_mut(), data) {
                v.extend(extra);
            }
            s.out.json(&v);
        } else {
            s.out.line(format!("{n}. {text}"));
        }
    };

    say(
        1,
        format!(
            "Started the embedded Basiq emulator at {} (virtual time; no key needed)",
            s.base_url
        ),
        json!({ "url": s.base_url }),
    );

    let user = s.client.users().create(NewUser {
        email: Some("gavin@hooli.com".into()),
        mobile: Some("+61410888666".into()),
        first_name: Some("Gavin".into()),
        last_name: Some("Belson".into()),
        ..NewUser::default()
    })?;
    say(
        2,
        format!(
            "Created user {} <gavin@hooli.com>: the first call fetched the one server token",
            user.id
        ),
        json!({ "userId": user.id.as_str() }),
    );

    let link = consent_link(s, &user.id)?;
    say(
        3,
        format!(
            "Nothing runs for the user, so they may go to the Consent UI: {}",
            link.redacted_url()
        ),
        json!({ "consentUrl": link.redacted_url() }),
    );

    let job = connect(s, &link, "gavinBelson", "hooli2016")?;
    say(
        4,
        format!("The user connected Hooli (AU00000) as gavinBelson: job {job}; following it:"),
        json!({ "jobId": job }),
    );
    let verdict = follow(
        s,
        basiq::id::JobId::new(job.as_str())?,
        JobKind::Create,
        Duration::from_secs(300),
    )?;
    verdict.print(&s.out);
    let connection = verdict
        .job
        .connection_id()
        .ok_or_else(|| CliError::other("the job names no connection"))?;

    let outcome = s.client.connections().refresh(&user.id, &connection)?;
    let (_, text) = refresh_summary(&outcome);
    say(
        5,
        format!("Refresh {connection} at once? The guard says: {text}"),
        json!({ "refresh": refresh_json(&outcome) }),
    );

    let link = consent_link(s, &user.id)?;
    let failing = connect(s, &link, "bighead", "password")?;
    say(
        6,
        format!("A second connection with Basiq's locked sandbox login bighead: job {failing}:"),
        json!({ "jobId": failing }),
    );
    let verdict = follow(
        s,
        basiq::id::JobId::new(failing.as_str())?,
        JobKind::Create,
        Duration::from_secs(300),
    )?;
    verdict.print(&s.out);
    if !matches!(verdict.outcome, Outcome::Failed { .. }) {
        return Err(CliError::other("the bighead login was expected to fail"));
    }

    let failures = s.client.users().triage(&user.id)?;
    say(
        7,
        format!(
            "The daily / at-login triage finds {} unresolved failure(s):",
            failures.len()
        ),
        json!({ "findings": failures.iter().map(|f| json!({
            "jobId": f.job_id.as_str(),
            "connectionId": f.connection_id.as_ref().map(|c| c.as_str()),
            "code": f.failure.code.to_string(),
            "action": f.action.to_string(),
        })).collect::<Vec<_>>() }),
    );
    if !s.out.json {
        for f in &failures {
            s.out.line(format!("   job {}: {}", f.job_id, f.action));
        }
    }

    s.client.users().delete(&user.id)?;
    say(
        8,
        format!("Deleted user {} and all their data", user.id),
        json!({ "deleted": user.id.as_str() }),
    );

    let stats = server.stats();
    let requests: u64 = stats.requests.values().sum();
    say(
        9,
        format!(
            "Token requests: {} for {requests} requests in all — one server token for every call, \
             plus one client token per Consent UI link",
            stats.token_requests
        ),
        json!({ "tokenRequests": stats.token_requests, "requests": requests }),
    );
    Ok(EXIT_OK)
}

fn consent_link(s: &Session, user: &basiq::id::UserId) -> Result<ConsentLink, CliError> {
    match s.client.consent_url(user, ConsentAction::connect())? {
        ConsentOutcome::Link(link) => Ok(link),
        other => Err(CliError::other(format!(
            "an attempt is already running for the user: {other:?}"
        ))),
    }
}

/// What the user does in the Consent UI, done through the emulator's consent stand-in with the
/// link's client token (which stays in this process: it is never printed).
fn connect(
    s: &Session,
    link: &ConsentLink,
    login: &str,
    password: &str,
) -> Result<String, CliError> {
    let token = link
        .expose_url()
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| CliError::other("the consent link carries no token"))?;
    let answer: Value = ureq::post(&format!("{}/consent/connect.json", s.base_url))
        .send_json(json!({
            "token": token,
            "institutionId": "AU00000",
            "loginId": login,
            "password": password,
        }))
        .map_err(|e| CliError::other(format!("the consent stand-in refused: {e}")))?
        .into_json()
        .map_err(|e| CliError::other(format!("the consent stand-in's answer: {e}")))?;
    answer["jobIds"][0]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| CliError::other("the consent stand-in started no job"))
}
