//! Quickstart: authenticate once, create a user, read it back, check their jobs, get a Consent
//! UI link.
//!
//! ```text
//! cargo run -p basiq --example quickstart                 # offline, on the embedded emulator
//! BASIQ_API_KEY=… cargo run -p basiq --example quickstart # against Basiq's real API
//! ```
//!
//! Offline it starts `basiq-mock` on 127.0.0.1; with `BASIQ_API_KEY` set it talks to
//! `https://au-api.basiq.io` (or `BASIQ_BASE_URL`). Either way it counts the `/token` requests the
//! SDK makes — one, however many calls follow — and deletes the user it created at the end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use basiq::error::TransportError;
use basiq::models::NewUser;
use basiq::transport::{AsyncTransport, BoxFuture, HttpRequest, HttpResponse};
use basiq::{Client, ConsentAction, ConsentOutcome, ReqwestTransport};

/// The SDK's own transport, with a counter of `POST /token` requests.
#[derive(Debug, Clone, Default)]
struct CountingTransport {
    inner: ReqwestTransport,
    token_requests: Arc<AtomicU64>,
}

impl AsyncTransport for CountingTransport {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        if request.url().path().ends_with("/token") {
            self.token_requests.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.send(request)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. Where to talk to.
    let real_key = std::env::var("BASIQ_API_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty());
    let (emulator, api_key, base_url) = match real_key {
        Some(key) => {
            let url = std::env::var("BASIQ_BASE_URL")
                .unwrap_or_else(|_| basiq::DEFAULT_BASE_URL.to_string());
            println!("1. Using Basiq at {url} (BASIQ_API_KEY is set)");
            (None, key, url)
        }
        None => {
            let server = basiq_mock::MockServer::start();
            println!(
                "1. Started the embedded Basiq emulator at {} (set BASIQ_API_KEY to use the real API)",
                server.url()
            );
            let (key, url) = (server.api_key(), server.url());
            (Some(server), key, url)
        }
    };

    // 2. One client for the whole process: it caches one server token for everyone.
    let transport = CountingTransport::default();
    let mut builder = Client::builder()
        .api_key(api_key)
        .base_url(base_url.clone())
        .transport(transport.clone());
    if emulator.is_some() {
        builder = builder.consent_base_url(format!("{base_url}/consent/home"));
    }
    let client = builder.build()?;
    println!(
        "2. Built one client for the whole process, against {}",
        client.executor().base_url()
    );

    // 3. Create a user: the first call authenticates (POST /token), then POST /users.
    let user = client
        .users()
        .create(NewUser {
            email: Some("gavin@hooli.com".into()),
            mobile: Some("+61410888666".into()),
            first_name: Some("Gavin".into()),
            last_name: Some("Belson".into()),
            ..NewUser::default()
        })
        .await?;
    println!(
        "3. Created user {} <{}>",
        user.id,
        user.email.as_deref().unwrap_or("-")
    );

    // 4. Read it back, with the cached token.
    let again = client.users().get(&user.id).await?;
    println!(
        "4. Read it back: {} {} (mobile {})",
        again.first_name.as_deref().unwrap_or("-"),
        again.last_name.as_deref().unwrap_or("-"),
        again.mobile.as_deref().unwrap_or("-"),
    );

    // 5. The at-login / daily check Basiq asks for: failed jobs nobody fixed, each with what to
    //    do about it (connections are made by the user in the Consent UI, so none yet).
    let jobs = client.jobs().list_for_user(&user.id).await?;
    let failures = client.users().triage(&user.id).await?;
    println!(
        "5. {} job(s) in the last 7 days, {} unresolved failure(s)",
        jobs.data.len(),
        failures.len()
    );
    for failure in &failures {
        println!("   job {}: {}", failure.job_id, failure.action);
    }

    // 6. A Consent UI link (CLIENT_ACCESS token bound to the user) — unless an attempt with the
    //    same credentials is running, which Basiq would pause for 6 minutes. Never log the URL;
    //    the link's Debug redacts the token.
    match client
        .consent_url(&user.id, ConsentAction::connect())
        .await?
    {
        ConsentOutcome::Link(link) => println!("6. Send the user to the Consent UI: {link:?}"),
        other => println!("6. An attempt is running, follow it instead: {other:?}"),
    }

    // 7. An unsafe id is refused before any request exists.
    match client.users().get("../admin").await {
        Err(e) => println!("7. users().get(\"../admin\") was refused locally: {e}"),
        Ok(_) => println!("7. unexpected: an unsafe id was accepted"),
    }

    // 8. Clean up.
    client.users().delete(&user.id).await?;
    println!("8. Deleted user {}", user.id);

    let sent = transport.token_requests.load(Ordering::SeqCst);
    println!(
        "Token requests: {sent} (1 server token for every call above + 1 client token for the Consent UI)"
    );
    if let Some(server) = &emulator {
        println!(
            "The emulator counted {} token request(s) and {} request(s) in all.",
            server.stats().token_requests,
            server.stats().requests.values().sum::<u64>()
        );
    }
    Ok(())
}
