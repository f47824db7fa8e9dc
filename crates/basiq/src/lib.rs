//! # basiq
//!
//! A Rust SDK for the [Basiq](https://basiq.io) open-banking API (v3.0) that makes Basiq's
//! best practices the default:
//!
//! - **one server token for the whole process**, cached for its lifetime, refreshed shortly
//!   before it expires, fetched by exactly one caller however many are waiting (single flight),
//!   and kept in use if a refresh fails while it is still valid;
//! - **one re-authentication** when Basiq answers 401 `invalid-authorization-token` or 403
//!   `access-denied` (expired), and none for `/token`'s 404 (a wrong API key:
//!   [`Error::InvalidApiKey`]);
//! - **validated ids**: `"../x"`, `"a/b"`, `"a?b"` or `""` are an [`Error::InvalidId`] before
//!   any request exists;
//! - **errors with the ids support asks for** (`userId`, `jobId`, `correlationId`, …) and
//!   Basiq's code, title, detail and HTTP status in their `Display`;
//! - **secrets that do not leak**: the API key and tokens print as `[REDACTED]`;
//! - **jobs followed by their steps** and failures turned into actions:
//!   [`jobs().wait`](Jobs::wait) → [`JobReport`] (a failed job is [`WaitOutcome::Failed`] with
//!   Basiq's code classified and the action to take, and the userId/connectionId/jobId to log);
//! - **multi-factor challenges surfaced, answered once**: a job waiting on the bank's challenge
//!   stops the wait with [`WaitOutcome::MfaRequired`] (method, prompts, expiry) instead of
//!   polling to the deadline; [`jobs().answer_mfa`](Jobs::answer_mfa) sends the answers with a
//!   fresh client token bound to the user (never the server token), never retries them, and
//!   never logs them;
//! - **refreshes only when Basiq's rules allow**: [`connections().refresh`](Connections::refresh)
//!   reads the connection and the user's jobs and sends nothing when the connection is inactive,
//!   a job runs, it was refreshed recently, its last attempt failed, or the open-banking 20/day
//!   quota is used ([`RefreshOutcome::Skipped`]); many connections are spread with
//!   [`plan_refreshes`](Connections::plan_refreshes) — there is no "refresh all";
//! - **no 6-minute duplicate pause**: [`Client::consent_url`] answers "follow the running job"
//!   instead of a second Consent UI link while an attempt runs;
//! - **the daily / at-login check**: [`users().triage`](Users::triage) lists the user's
//!   unresolved failures with their actions, consulting `/connectors` for outages;
//!   for many users, [`plan::TriageScheduler`] spreads that check over a window at a rate on the
//!   refresh grid (never a burst) and [`plan::Pacer`] keeps the sends one step apart, also after
//!   a resume — what `basiq triage` (the `basiq-cli` crate) runs;
//! - **every page, once, owned**: every list is an owned stream ([`Items`], [`Pages`]; a
//!   blocking [`Iterator`](blocking::Items) on the blocking client) — `Send + 'static`, one page
//!   in memory — following `links.next` on Basiq's origin only
//!   ([`transactions().items`](Transactions::items), [`Client::items`] for any list).
//! - **webhooks you can trust**: [`webhooks::verify`] checks Basiq's signature (`whsec_`
//!   secret, HMAC-SHA256 over `id.timestamp.body`) and the 5-minute tolerance before it parses a
//!   [`webhooks::WebhookMessage`] (pure, no client needed; example in [`webhooks`]);
//!   [`webhooks::WebhookReceiver`] also de-duplicates Basiq's retries by `webhook-id`, types
//!   every event ([`webhooks::WebhookEvent`]) and records what Basiq refreshed in a
//!   [`freshness`] ledger that the guarded refresh consults first (`.freshness_ledger(..)`), so
//!   the smart cache makes ad-hoc refreshes unnecessary; feature `axum` has the endpoint ready.
//! - **the consent lifecycle**: `client.consent_lifecycle(user, &policy)` — a re-consent link
//!   before expiry or after a policy change, one purge per active connection after a
//!   revocation ([`consent_lifecycle`], `docs/webhooks.md`).
//!
//! ## Features (additive)
//!
//! | feature | gives | built on |
//! |---|---|---|
//! | `async` (default) | [`Client`] | reqwest + rustls, tokio |
//! | `blocking` | [`blocking::Client`] | ureq + rustls, no async runtime |
//! | `native-roots` | TLS trust from the operating system for whichever clients are on | rustls (no OpenSSL): reqwest adds the platform's store to the bundled Mozilla roots, ureq uses the platform verifier |
//!
//! Both can be enabled together; no feature changes a signature. On docs.rs every item shows the
//! feature it needs. A host with its own HTTP stack (a newer reqwest, a proxy) implements
//! [`transport::AsyncTransport`] and passes it to `ClientBuilder::transport` (example
//! `own_http_client` in the repository).
//!
//! ## Example
//!
//! ```
//! use basiq::models::NewUser;
//!
//! # #[cfg(feature = "async")]
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! # let server = basiq_mock::MockServer::start();
//! let client = basiq::Client::builder()
//!     .api_key(std::env::var("BASIQ_API_KEY").unwrap_or_default())
//! #   .api_key(server.api_key()).base_url(server.url())
//!     .build()?;
//!
//! let user = client
//!     .users()
//!     .create(NewUser {
//!         email: Some("gavin@hooli.com".into()),
//!         ..NewUser::default()
//!     })
//!     .await?;
//! let again = client.users().get(&user.id).await?;
//! let jobs = client.jobs().list_for_user(&again.id).await?;
//! println!("{} has {} job(s)", again.id, jobs.data.len());
//!
//! // For the Consent UI: a CLIENT_ACCESS token bound to this user (never log it).
//! let token = client.client_token(&user.id).await?;
//! let _consent_url = format!("https://consent.basiq.io/home?token={}", token.expose_secret());
//! # Ok::<(), basiq::Error>(())
//! # }).unwrap();
//! ```
//!
//! Tests run the same code against the embedded emulator on 127.0.0.1 (the `basiq-mock` crate,
//! a dev-dependency: here `server` is `basiq_mock::MockServer::start()`); unsafe ids never reach
//! it:
//!
//! ```
//! # #[cfg(feature = "async")]
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! # let server = basiq_mock::MockServer::start();
//! let client = basiq::Client::builder()
//!     .api_key(server.api_key())
//!     .base_url(server.url())
//!     .build()?;
//!
//! let err = client.users().get("../admin").await.unwrap_err();
//! assert_eq!(err.kind(), basiq::ErrorKind::InvalidId);
//! assert_eq!(server.stats().token_requests, 0); // nothing was sent
//!
//! let user = client
//!     .users()
//!     .create(basiq::models::NewUser {
//!         mobile: Some("+61410888666".into()),
//!         ..Default::default()
//!     })
//!     .await?;
//! client.users().get(&user.id).await?;
//! client.jobs().list_for_user(&user.id).await?;
//! assert_eq!(server.stats().token_requests, 1); // one token for every call
//! # Ok::<(), basiq::Error>(())
//! # }).unwrap();
//! ```
//!
//! ## The rest of the API
//!
//! Every other operation of Basiq's v3 reference has a plain method on both clients, generated
//! from our OpenAPI document (`client.consents()`, `auth_links()`, `events()`, `statements()`,
//! `identities()`, `affordability()`, `expenses()`, `income()`, `reports()`, `enrich()`,
//! `webhooks()`): ids validated, one request, the model back; [`Client::items`] /
//! [`Client::pages`] walk any of their lists. For
//! example, fetching the event a verified webhook message points at, uploading a statement and
//! building a report, each followed as a job:
//!
//! ```
//! use basiq::jobs::PollConfig;
//! use basiq::models::{NewReport, ReportFilter};
//! use basiq::statements::StatementFile;
//!
//! # #[cfg(feature = "async")]
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! # let clock = basiq::clock::ManualClock::starting_now();
//! # let server = basiq_mock::MockServer::builder().clock(clock.clone()).start();
//! # let tick = clock.clone();
//! # let client = basiq::Client::builder().api_key(server.api_key()).base_url(server.url())
//! #     .consent_base_url(format!("{}/consent/home", server.url())).clock(clock.clone())
//! #     .sleep(move |d| { tick.advance(d); Box::pin(async {}) }).build()?;
//! # let user = client.users().create(basiq::models::NewUser {
//! #     email: Some("gavin@hooli.com".into()), ..Default::default() }).await?.id;
//! # let user_id = user.as_str();
//! # let connect = |institution: &'static str, login: (&'static str, &'static str)| {
//! #     let (client, server) = (client.clone(), &server);
//! #     async move {
//! #         let action = basiq::ConsentAction::connect_to(basiq::id::InstitutionId::new(institution)?);
//! #         let basiq::ConsentOutcome::Link(link) = client.consent_url(user_id, action).await? else { panic!("a link") };
//! #         let jobs = server.complete_consent(link.expose_url().as_str(), Some(login)).unwrap();
//! #         Ok::<String, basiq::Error>(jobs[0].clone())
//! #     }
//! # };
//! # let job = connect("AU00000", ("gavinBelson", "hooli2016")).await?;
//! # let done = client.jobs().wait(job.as_str(), basiq::jobs::PollConfig::default()).await?;
//! # let connection = done.connection_id().unwrap().clone();
//! # let connection_id = connection.as_str();
//! # let event_id = client.events().list().await?.data[0].id.clone();
//! // A webhook message only carries the event's id (`message.event_id`): read the event.
//! let event = client.events().get(event_id.as_str()).await?;
//! println!("{:?} {:?}", event.entity, event.event_type);
//!
//! // A PDF or CSV statement (an empty file or another type is refused before sending).
//! let csv = std::fs::read("march.csv").unwrap_or_default();
//! # let csv = b"date,description,amount\n2026-03-01,COFFEE,-4.50\n".to_vec();
//! let file = StatementFile::new("march.csv", csv);
//! let job = client.statements().upload(user_id, "AU00001", file).await?;
//! client.jobs().wait(&job.id, PollConfig::default()).await?;
//!
//! // A report is a job too; its last step links the report.
//! let report = NewReport {
//!     report_type: "CON_AFFOR_01".into(),
//!     title: "Affordability".into(),
//!     filters: vec![ReportFilter { name: "users".into(), value: Some(vec![user_id].into()) }],
//! };
//! let job = client.reports().create(report).await?;
//! let done = client.jobs().wait(&job.id, PollConfig::default()).await?;
//! if let Some(id) = done.report_id() {
//!     let report = client.reports().get(id).await?;
//!     println!("{:?}", report.data);
//! }
//! # Ok::<(), basiq::Error>(())
//! # }).unwrap();
//! ```
//!
//! ## Best practices, one call each
//!
//! ```
//! use basiq::jobs::{JobKind, PollConfig};
//! use basiq::{ConsentAction, ConsentOutcome, RefreshOutcome, TransactionQuery, WaitOutcome};
//!
//! # #[cfg(feature = "async")]
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! # let clock = basiq::clock::ManualClock::starting_now();
//! # let server = basiq_mock::MockServer::builder().clock(clock.clone()).start();
//! # let tick = clock.clone();
//! # let client = basiq::Client::builder().api_key(server.api_key()).base_url(server.url())
//! #     .consent_base_url(format!("{}/consent/home", server.url())).clock(clock.clone())
//! #     .sleep(move |d| { tick.advance(d); Box::pin(async {}) }).build()?;
//! # let user = client.users().create(basiq::models::NewUser {
//! #     email: Some("gavin@hooli.com".into()), ..Default::default() }).await?.id;
//! # let user_id = user.as_str();
//! # let connect = |institution: &'static str, login: (&'static str, &'static str)| {
//! #     let (client, server) = (client.clone(), &server);
//! #     async move {
//! #         let action = basiq::ConsentAction::connect_to(basiq::id::InstitutionId::new(institution)?);
//! #         let basiq::ConsentOutcome::Link(link) = client.consent_url(user_id, action).await? else { panic!("a link") };
//! #         let jobs = server.complete_consent(link.expose_url().as_str(), Some(login)).unwrap();
//! #         Ok::<String, basiq::Error>(jobs[0].clone())
//! #     }
//! # };
//! # let job = connect("AU00000", ("gavinBelson", "hooli2016")).await?;
//! # let done = client.jobs().wait(job.as_str(), basiq::jobs::PollConfig::default()).await?;
//! # let connection = done.connection_id().unwrap().clone();
//! # let connection_id = connection.as_str();
//! // At every login (and daily): failures nobody has fixed, each with what to do about it.
//! for failure in client.users().triage(user_id).await? {
//!     eprintln!("job {} on {:?}: {}", failure.job_id, failure.connection_id, failure.action);
//! }
//!
//! // Connecting a bank: a Consent UI link, unless an attempt is already running.
//! match client.consent_url(user_id, ConsentAction::connect()).await? {
//!     ConsentOutcome::Link(link) => {
//!         // Redirect the user's browser to link.expose_url(); log only `link` (token redacted).
//!         println!("{link:?}");
//!     }
//!     ConsentOutcome::FollowExisting { job_id } | ConsentOutcome::Paused { job_id, .. } => {
//!         let report = client.jobs().wait_as(&job_id, JobKind::Create, PollConfig::default()).await?;
//!         if let WaitOutcome::Failed(diagnosis) = &report.outcome {
//!             eprintln!("{} [{}]", diagnosis.action, report.context);
//!         }
//!     }
//!     _ => {}
//! }
//!
//! // A bank's multi-factor challenge: show the prompts, answer once, follow the job on.
//! # fn ask_user(_prompt: &str) -> String { "1234".to_owned() } // the emulator's OTP
//! # let job_id = &connect("AU00002", ("jared", "django")).await?; // an MFA bank
//! let report = client.jobs().wait(job_id, PollConfig::default()).await?;
//! if let WaitOutcome::MfaRequired(challenge) = &report.outcome {
//!     let answers: Vec<String> = challenge.prompts.iter().map(|p| ask_user(p)).collect();
//!     client.jobs().answer_mfa(job_id, user_id, answers).await?;
//!     let report = client.jobs().wait(job_id, PollConfig::default()).await?;
//!     println!("{report}");
//! }
//!
//! // Refreshing: the SDK decides whether Basiq's rules allow it, before sending anything.
//! match client.connections().refresh(user_id, connection_id).await? {
//!     RefreshOutcome::Started(job) | RefreshOutcome::AlreadyRunning(job) => {
//!         client.jobs().wait_as(&job, JobKind::Refresh, PollConfig::default()).await?;
//!     }
//!     other => println!("not refreshed: {other:?}"),
//! }
//!
//! // Every transaction, every page exactly once.
//! let all = client.transactions().all(user_id, TransactionQuery::new()).await?;
//! println!("{} transactions", all.len());
//! # Ok::<(), basiq::Error>(())
//! # }).unwrap();
//! ```
//!
//! Against the emulator, on a virtual clock it shares with the client (the injected sleep
//! advances it, so following a job takes no real time):
//!
//! ```
//! # #[cfg(feature = "async")]
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use basiq::clock::ManualClock;
//! use basiq::{ConsentAction, ConsentOutcome};
//!
//! let clock = ManualClock::starting_now();
//! // The emulator on the same clock: `basiq_mock::MockServer::builder().clock(clock.clone()).start()`.
//! # let server = basiq_mock::MockServer::builder().clock(clock.clone()).start();
//! let tick = clock.clone();
//! let client = basiq::Client::builder()
//!     .api_key(server.api_key())
//!     .base_url(server.url())
//!     .consent_base_url(format!("{}/consent/home", server.url()))
//!     .clock(clock)
//!     .sleep(move |d| {
//!         tick.advance(d);
//!         Box::pin(async {})
//!     })
//!     .build()?;
//! let user = client
//!     .users()
//!     .create(basiq::models::NewUser {
//!         email: Some("gilfoyle@piedpiper.com".into()),
//!         ..Default::default()
//!     })
//!     .await?;
//!
//! // The at-login check: nothing has failed.
//! assert!(client.users().triage(&user.id).await?.is_empty());
//!
//! // Nothing runs, so the user may go to the Consent UI; the link's Debug hides the token.
//! let ConsentOutcome::Link(link) = client.consent_url(&user.id, ConsentAction::connect()).await? else {
//!     unreachable!("no job runs yet");
//! };
//! assert!(format!("{link:?}").contains("token=[REDACTED]&action=connect"));
//!
//! // Errors carry the ids support asks for.
//! let err = client.connections().refresh(&user.id, "no-such-connection").await.unwrap_err();
//! assert_eq!(err.kind(), basiq::ErrorKind::NotFound);
//! assert!(err.to_string().contains("connectionId=no-such-connection"));
//! # Ok::<(), basiq::Error>(())
//! # }).unwrap();
//! ```
//!
//! ## Streams, plans, webhooks, traces
//!
//! ```
//! use std::time::Duration;
//!
//! use basiq::id::ConnectionId;
//! use basiq::{StreamExt as _, TransactionQuery};
//!
//! # #[cfg(feature = "async")]
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! # let clock = basiq::clock::ManualClock::starting_now();
//! # let server = basiq_mock::MockServer::builder().clock(clock.clone()).start();
//! # let tick = clock.clone();
//! # let client = basiq::Client::builder().api_key(server.api_key()).base_url(server.url())
//! #     .consent_base_url(format!("{}/consent/home", server.url())).clock(clock.clone())
//! #     .sleep(move |d| { tick.advance(d); Box::pin(async {}) }).build()?;
//! # let user = client.users().create(basiq::models::NewUser {
//! #     email: Some("gavin@hooli.com".into()), ..Default::default() }).await?.id;
//! # let user_id = user.as_str();
//! # let connect = |institution: &'static str, login: (&'static str, &'static str)| {
//! #     let (client, server) = (client.clone(), &server);
//! #     async move {
//! #         let action = basiq::ConsentAction::connect_to(basiq::id::InstitutionId::new(institution)?);
//! #         let basiq::ConsentOutcome::Link(link) = client.consent_url(user_id, action).await? else { panic!("a link") };
//! #         let jobs = server.complete_consent(link.expose_url().as_str(), Some(login)).unwrap();
//! #         Ok::<String, basiq::Error>(jobs[0].clone())
//! #     }
//! # };
//! # let job = connect("AU00000", ("gavinBelson", "hooli2016")).await?;
//! # let done = client.jobs().wait(job.as_str(), basiq::jobs::PollConfig::default()).await?;
//! # let connection = done.connection_id().unwrap().clone();
//! # let connection_id = connection.as_str();
//! # let fleet = vec![connection.clone(), ConnectionId::new("another")?];
//! // A stream of transactions, one page (`links.next`) fetched at a time: constant memory
//! // however long the history is. It owns a clone of the client: spawn it, return it, combine
//! // it (`StreamExt` from `futures` / `futures-util`).
//! let mut transactions = client.transactions().items(user_id, TransactionQuery::new().limit(500))?;
//! while let Some(transaction) = transactions.next().await {
//!     let transaction = transaction?;
//!     println!("{} {:?}", transaction.id, transaction.amount);
//! }
//!
//! // Many connections to refresh: a plan over an hour, never a burst, each connection at a
//! // stable slot; at each slot `connections().refresh` still applies Basiq's rules.
//! let now = client.now();
//! let plan = client.connections().plan_refreshes(&fleet, Duration::from_secs(3600), now);
//! for slot in &plan.planned {
//!     println!("refresh {} at {}", slot.connection_id, slot.at);
//! }
//! # Ok::<(), basiq::Error>(())
//! # }).unwrap();
//! ```
//!
//! A webhook endpoint trusts a message only when Basiq signed it within the last 5 minutes
//! ([`webhooks::verify`]; the raw body bytes, exactly as received):
//!
//! ```
//! use basiq::webhooks::{self, WebhookSecret};
//! use basiq::OffsetDateTime;
//!
//! fn on_webhook(secret: &WebhookSecret, headers: &basiq::HeaderMap, body: &[u8]) -> u16 {
//!     match webhooks::verify(secret, headers, body, OffsetDateTime::now_utc()) {
//!         Ok(message) => {
//!             println!("{:?} about {}", message.event_type_id, message.links.event_entity);
//!             204
//!         }
//!         Err(_) => 401, // not from Basiq, tampered with or replayed
//!     }
//! }
//! # let secret = WebhookSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
//! # assert_eq!(on_webhook(&secret, &basiq::HeaderMap::new(), b"{}"), 401);
//! ```
//!
//! Every HTTP request is a `basiq.http` span with OpenTelemetry's HTTP client fields (method,
//! `url.template` such as `/users/{userId}` — never the URL —, server, status, resend count),
//! Basiq's `correlation_id` and the user/connection/job ids; retries and re-authentications are
//! INFO events. Any `tracing` subscriber shows them, e.g. `tracing_subscriber::fmt().init()`, or
//! `tracing-opentelemetry` to export them. No span or event holds a key, token or MFA answer.
//!
//! The blocking client has the same methods without `.await`:
//!
//! ```
//! # #[cfg(feature = "blocking")]
//! # {
//! # let server = basiq_mock::MockServer::start();
//! # let run = || {
//! let api_key = std::env::var("BASIQ_API_KEY").unwrap_or_default();
//! # let api_key = server.api_key();
//! let client = basiq::blocking::Client::new(api_key)?;
//! # let client = basiq::blocking::Client::builder().api_key(server.api_key()).base_url(server.url()).build()?;
//! # let user_id = client.users().create(basiq::models::NewUser {
//! #     email: Some("jared@piedpiper.com".into()), ..Default::default() })?.id;
//! let jobs = client.jobs().list_for_user(&user_id)?;
//! assert!(jobs.data.is_empty());
//! # Ok::<(), basiq::Error>(())
//! # };
//! # run().unwrap();
//! # }
//! ```
//!
//! Any [`Operation`](operation::Operation) can be run with `execute`, including endpoints that
//! have no resource method yet. For tests, point `base_url` at the embedded emulator
//! (`basiq-mock`) and share a [`ManualClock`](clock::ManualClock) with it via `.clock(..)`.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// The crate docs link both clients' methods; with only one client feature some targets do not
// exist. The docs are built with all features (docs.rs metadata), where every link is checked.
#![cfg_attr(
    not(all(feature = "async", feature = "blocking")),
    allow(rustdoc::broken_intra_doc_links)
)]
// `basiq_core::Error` carries the ids support needs (`ErrorContext`) inline, which puts it over
// clippy's 128-byte threshold. Its layout is basiq-core's decision; boxing it here would only
// add an allocation per error and an API different from the core's.
#![allow(clippy::result_large_err)]

// What a user of `basiq` needs, re-exported by name (never a glob: the core's executor
// internals — `ExecutorCore`, `TokenState`, `Retrying`, the telemetry helpers — are not public
// API of this crate). Whole modules where every item is for users; curated ones otherwise.
pub use basiq_core::api::{mfa, models, operations, statements};
pub use basiq_core::engine::{operation, transport};
pub use basiq_core::policy::{
    connectors, freshness, jobs, pagination, pause, plan, refresh, retry,
};
pub use basiq_core::{clock, error, id, secret, vocabulary};
pub use basiq_core::{Error, ErrorContext, ErrorKind};

pub use basiq_core::secret::{AccessToken, ApiKey};

// Types of other crates that this crate's API mentions, so an app needs no extra dependency
// (or version match) to name them.
pub use ::http::{HeaderMap, HeaderName, HeaderValue};
pub use ::time::OffsetDateTime;
pub use ::url::Url;

/// The executor's settings, for [`AsyncExecutor`] / `BlockingExecutor` built by hand.
pub mod auth {
    pub use basiq_core::engine::auth::{
        ExecutorConfig, DEFAULT_BASE_URL, DEFAULT_CALL_DEADLINE, DEFAULT_MAX_RESPONSE_BYTES,
    };
}

/// The server token: its lifetime policy, and the store a fleet shares it through.
pub mod token {
    pub use basiq_core::policy::token::{
        MemoryTokenStore, PostToken, StoreError, StoredToken, TokenPolicy, TokenScope, TokenStore,
        BASIQ_TOKEN_LIFETIME, BASIQ_VERSION,
    };
}

/// Fleet mode: Basiq's per-application state shared by an app's instances through a key-value
/// store (see `docs/fleet.md`); implement [`FleetStore`](fleet::FleetStore) /
/// [`AsyncFleetStore`](fleet::AsyncFleetStore) over your store, or use `basiq-redis`.
pub mod fleet {
    pub use basiq_core::policy::fleet::{
        AsyncFleet, AsyncFleetStore, BlockingFleet, FleetAnswer, FleetConfig, FleetKey, FleetKeys,
        FleetOp, FleetStore, FleetTokenPolicy, MemoryFleetStore, TokenSealer,
    };
}

#[cfg(any(feature = "async", feature = "blocking"))]
pub mod consent_lifecycle;
pub mod webhooks;

#[cfg(any(feature = "async", feature = "blocking"))]
mod flows;
#[cfg(any(feature = "async", feature = "blocking"))]
mod lazy_page;
pub use basiq_core::flows::follow::{JobProgress, JobReport, WaitOutcome};
#[cfg(any(feature = "async", feature = "blocking"))]
pub use flows::{
    ConsentAction, ConsentLink, ConsentOutcome, ConsentRequest, RefreshOutcome,
    SharedRefreshLedger, TransactionQuery, DEFAULT_CONSENT_URL, DEFAULT_MAX_REFRESHES_PER_MINUTE,
};
#[cfg(any(feature = "async", feature = "blocking"))]
#[rustfmt::skip]
mod endpoints;
#[cfg(any(feature = "async", feature = "blocking"))]
mod resources;
#[cfg(any(feature = "async", feature = "blocking"))]
mod settings;
#[cfg(any(feature = "async", feature = "blocking"))]
mod statement_upload;
#[cfg(any(feature = "async", feature = "blocking"))]
pub use settings::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT};

#[cfg(feature = "async")]
mod async_client;
#[cfg(feature = "async")]
pub use async_client::{
    Accounts, Client, ClientBuilder, Connections, Connectors, Jobs, Transactions, Users,
};
#[cfg(feature = "async")]
mod streams;
/// The trait of the async client's owned streams ([`Pages`], [`Items`]): `futures`' `Stream`.
#[cfg(feature = "async")]
pub use futures_core::Stream;
/// `futures`' combinators for [`Stream`]s (`next`, `map`, `take`, `collect`, …), so an app
/// needs no `futures` dependency to consume the owned streams.
#[cfg(feature = "async")]
pub use futures_util::StreamExt;
#[cfg(feature = "async")]
pub use streams::{Follow, Items, Pages};
// The resources generated from the spec (`endpoints.rs`) and the statement upload.
#[cfg(feature = "async")]
pub use async_client::{
    Affordability, AuthLinks, Consents, Enrich, Events, Expenses, Identities, Income, Reports,
    Statements, Webhooks,
};
#[cfg(feature = "async")]
pub use basiq_http_async::{AsyncExecutor, ReqwestTransport};

#[cfg(feature = "blocking")]
pub mod blocking;
#[cfg(feature = "blocking")]
mod blocking_pages;

/// Basiq's production API root.
pub use basiq_core::engine::auth::DEFAULT_BASE_URL;

/// The crate README's examples, compiled as doctests so the crates.io page cannot drift from
/// the API (the repository README's Use example is built and run by `cargo xtask ci`).
#[cfg(all(doctest, feature = "async"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// Compile-time guards: the public handles can be shared across threads and tasks, cloned and
/// logged (an app keeps one client in its state; errors cross `tokio::spawn` and `?` into
/// `anyhow`/`Box<dyn Error + Send + Sync>`).
#[cfg(test)]
mod auto_traits {
    fn shareable<T: Send + Sync + Clone + std::fmt::Debug + 'static>() {}
    fn shared<T: Send + Sync + Clone + 'static>() {}
    fn error<T: std::error::Error + Send + Sync + 'static>() {}

    #[test]
    fn public_handles_are_send_sync_clone_debug() {
        shareable::<crate::ApiKey>();
        shareable::<crate::AccessToken>();
        error::<crate::Error>();
        #[cfg(any(feature = "async", feature = "blocking"))]
        {
            shareable::<crate::ConsentAction>();
            shareable::<crate::ConsentLink>();
            shareable::<crate::ConsentOutcome>();
            shareable::<crate::ConsentRequest>();
            shareable::<crate::RefreshOutcome>();
            // A type alias over `Arc<Mutex<dyn RefreshLedger + Send>>`: not `Debug`.
            shared::<crate::SharedRefreshLedger>();
            shareable::<crate::TransactionQuery>();
            shareable::<crate::WaitOutcome>();
        }
        #[cfg(feature = "async")]
        shareable::<crate::Client>();
        #[cfg(feature = "blocking")]
        shareable::<crate::blocking::Client>();
    }
}
