//! The best-practice helpers log the ids Basiq support asks for (userId, connectionId, jobId) as
//! span and event fields — and never a token. A tiny recording subscriber (no extra crates)
//! captures everything the SDK emits on this thread; the emulator runs on its own thread.

mod common;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use basiq::id::{InstitutionId, JobId};
use basiq::jobs::PollConfig;
use basiq::{ConsentAction, ConsentOutcome, TransactionQuery};
use common::{blocking_on_virtual_time, new_user, virtual_time_server, SubmitConsent};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Clone, Default)]
struct Recording {
    log: Arc<Mutex<String>>,
    next_id: Arc<AtomicU64>,
}

struct Line<'a>(&'a mut String);

impl Visit for Line<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={}", field.name(), value);
    }
}

impl Subscriber for Recording {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut line = format!("\nspan {}", span.metadata().name());
        span.record(&mut Line(&mut line));
        self.log.lock().unwrap().push_str(&line);
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut line = String::from("\nrecord");
        values.record(&mut Line(&mut line));
        self.log.lock().unwrap().push_str(&line);
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = format!("\nevent {}", event.metadata().level());
        event.record(&mut Line(&mut line));
        self.log.lock().unwrap().push_str(&line);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn helpers_log_the_ids_and_never_a_token() {
    let (server, clock) = virtual_time_server();
    let client = blocking_on_virtual_time(&server, &clock).build().unwrap();
    let recording = Recording::default();

    let (user, token, job, conn) = tracing::subscriber::with_default(recording.clone(), || {
        let user = client
            .users()
            .create(new_user("trace@example.com"))
            .unwrap()
            .id;
        let action = ConsentAction::connect_to(InstitutionId::new("AU00000").unwrap());
        let ConsentOutcome::Link(link) = client.consent_url(&user, action).unwrap() else {
            panic!("a link");
        };
        let token = link
            .expose_url()
            .query_pairs()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        let job = client
            .execute(SubmitConsent::new(&link, Some(("bighead", "password"))))
            .unwrap();
        let job = JobId::new(job).unwrap();
        let report = client.jobs().wait(&job, PollConfig::default()).unwrap();
        let conn = report.connection_id().unwrap().clone();
        let outcome = client.connections().refresh(&user, &conn).unwrap();
        assert!(!outcome.was_sent(), "refreshed moments ago: {outcome:?}");
        client.users().triage(&user).unwrap();
        client
            .transactions()
            .all(&user, TransactionQuery::new())
            .unwrap();
        (user, token, job, conn)
    });

    let log = recording.log.lock().unwrap().clone();
    assert!(!log.contains(&token), "a client token was logged:{log}");
    assert!(!log.contains("Bearer"), "{log}");
    let has = |needle: &str| {
        assert!(log.contains(needle), "missing {needle:?} in:{log}");
    };
    has(&format!("span basiq.jobs.wait job_id={job}"));
    has(&format!("record user_id={user}"));
    has(&format!("record connection_id={conn}"));
    has(&format!(
        "span basiq.connections.refresh user_id={user} connection_id={conn}"
    ));
    has(&format!("span basiq.users.triage user_id={user}"));
    has(&format!(
        "span basiq.consent_url user_id={user} action=connect"
    ));
    has(&format!("span basiq.transactions.all user_id={user}"));
    // The failure is logged with its code and the action to take.
    has("code=invalid-credentials");
    has("job failed");
}

/// MFA answers are secrets: the `basiq.jobs.answer_mfa` span carries the job, the user and the
/// number of answers, never an answer — neither in the logs nor in the error that a second
/// answer gets.
#[test]
fn mfa_answers_are_never_logged() {
    let (server, clock) = virtual_time_server();
    let client = blocking_on_virtual_time(&server, &clock).build().unwrap();
    let recording = Recording::default();
    const WRONG: &str = "wrong-otp-5e1f93";
    const LATE: &str = "late-otp-77ab21";

    let (user, job, err) = tracing::subscriber::with_default(recording.clone(), || {
        let user = client
            .users()
            .create(new_user("mfa@example.com"))
            .unwrap()
            .id;
        let action = ConsentAction::connect_to(InstitutionId::new("AU00002").unwrap());
        let ConsentOutcome::Link(link) = client.consent_url(&user, action).unwrap() else {
            panic!("a link");
        };
        let job = client
            .execute(SubmitConsent::new(&link, Some(("jared", "django"))))
            .unwrap();
        let job = JobId::new(job).unwrap();
        let report = client.jobs().wait(&job, PollConfig::default()).unwrap();
        assert!(report.mfa_challenge().is_some(), "{report}");
        client
            .jobs()
            .answer_mfa(&job, &user, vec![WRONG.to_owned()])
            .unwrap();
        // Nothing to answer any more: Basiq's 400, sent once.
        let err = client
            .jobs()
            .answer_mfa(&job, &user, vec![LATE.to_owned()])
            .unwrap_err();
        (user, job, err)
    });

    let log = recording.log.lock().unwrap().clone();
    for secret in [WRONG, LATE] {
        assert!(!log.contains(secret), "an MFA answer was logged:{log}");
        assert!(!format!("{err} {err:?}").contains(secret), "{err:?}");
    }
    assert!(!log.contains("Bearer"), "{log}");
    let has = |needle: &str| {
        assert!(log.contains(needle), "missing {needle:?} in:{log}");
    };
    has(&format!(
        "span basiq.jobs.answer_mfa job_id={job} user_id={user} answers=1"
    ));
    has("job waits for the user's answer to a multi-factor challenge");
    has("method=token");
    has("MFA answer sent");
    has("answering the MFA challenge failed");
}

// ---------------------------------------------------------------------------------------------
// One `basiq.http` span per HTTP request (OpenTelemetry HTTP client conventions)
// ---------------------------------------------------------------------------------------------

type SpanFields = std::collections::BTreeMap<String, String>;

/// Every span with its fields (as recorded, including later `record` calls), in creation order.
#[derive(Clone, Default)]
struct Spans {
    spans: Arc<Mutex<Vec<(String, SpanFields)>>>,
    /// Each event's level and message.
    events: Arc<Mutex<Vec<(tracing::Level, String)>>>,
}

struct Fields<'a>(&'a mut SpanFields);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Subscriber for Spans {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = SpanFields::new();
        span.record(&mut Fields(&mut fields));
        let mut spans = self.spans.lock().unwrap();
        spans.push((span.metadata().name().to_owned(), fields));
        Id::from_u64(spans.len() as u64)
    }
    fn record(&self, id: &Id, values: &Record<'_>) {
        let mut spans = self.spans.lock().unwrap();
        if let Some((_, fields)) = spans.get_mut(id.into_u64() as usize - 1) {
            values.record(&mut Fields(fields));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = SpanFields::new();
        event.record(&mut Fields(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        let level = *event.metadata().level();
        self.events.lock().unwrap().push((level, message));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Spans {
    fn http(&self) -> Vec<SpanFields> {
        let spans = self.spans.lock().unwrap();
        spans
            .iter()
            .filter(|(name, _)| name == "basiq.http")
            .map(|(_, fields)| fields.clone())
            .collect()
    }
}

/// The fields a `basiq.http` span may ever carry: nothing from headers or bodies, so no key,
/// token or MFA answer can be among them.
const HTTP_SPAN_FIELDS: [&str; 13] = [
    "otel.name",
    "otel.kind",
    "http.request.method",
    "url.template",
    "server.address",
    "server.port",
    "http.request.resend_count",
    "http.response.status_code",
    "error.type",
    "correlation_id",
    "user_id",
    "connection_id",
    "job_id",
];

/// Tracing caches per call site whether anyone listens. A site first reached with no subscriber
/// on this thread (the setup calls before capturing) may stay "never" for a moment after a
/// thread-local subscriber is set, while other test threads register theirs: rebuilding the
/// cache makes the capture see the very first span.
fn interested() {
    tracing::callsite::rebuild_interest_cache();
}

fn field<'a>(span: &'a SpanFields, name: &str) -> &'a str {
    span.get(name)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no {name} in {span:?}"))
}

/// Checks the spans of one `users().get` on a fresh client (which first fetches the server
/// token) and of one for a user that does not exist (Basiq's 404 with a `correlationId`).
fn check_users_get_spans(
    server: &basiq_mock::MockServer,
    user: &str,
    spans: &Spans,
    not_found: &basiq::Error,
) {
    let http = spans.http();
    assert_eq!(
        http.len(),
        3,
        "POST /token, GET (200), GET (404): {http:#?}"
    );
    let port = url::Url::parse(&server.url()).unwrap().port().unwrap();
    for span in &http {
        for name in span.keys() {
            assert!(
                HTTP_SPAN_FIELDS.contains(&name.as_str()),
                "{name} in {span:?}"
            );
        }
        let all = format!("{span:?}");
        assert!(
            !all.contains(&server.api_key()) && !all.contains("Bearer"),
            "{all}"
        );
        assert_eq!(field(span, "server.address"), "127.0.0.1");
        assert_eq!(field(span, "server.port"), port.to_string());
        assert_eq!(field(span, "otel.kind"), "client");
        assert!(!span.contains_key("http.request.resend_count"), "{span:?}");
    }

    let token = &http[0];
    assert_eq!(field(token, "http.request.method"), "POST");
    assert_eq!(field(token, "url.template"), "/token");
    assert_eq!(field(token, "http.response.status_code"), "200");

    let get = &http[1];
    assert_eq!(field(get, "otel.name"), "GET /users/{userId}");
    assert_eq!(field(get, "http.request.method"), "GET");
    assert_eq!(field(get, "url.template"), "/users/{userId}");
    assert_eq!(field(get, "http.response.status_code"), "200");
    assert_eq!(field(get, "user_id"), user);
    assert!(!get.contains_key("error.type") && !get.contains_key("correlation_id"));

    let missing = &http[2];
    assert_eq!(field(missing, "url.template"), "/users/{userId}");
    assert_eq!(field(missing, "http.response.status_code"), "404");
    assert_eq!(field(missing, "error.type"), "404");
    let correlation_id = not_found
        .context()
        .and_then(|c| c.correlation_id.clone())
        .expect("Basiq's 404 carries a correlationId");
    assert_eq!(field(missing, "correlation_id"), correlation_id);
    assert!(!field(missing, "url.template").contains("no-such-user"));
}

#[test]
fn blocking_users_get_has_one_http_span_with_otel_fields() {
    let server = basiq_mock::MockServer::start();
    let user = common::blocking_client(&server)
        .users()
        .create(new_user("span@example.com"))
        .unwrap()
        .id;
    let client = common::blocking_client(&server);
    let spans = Spans::default();
    let not_found = tracing::subscriber::with_default(spans.clone(), || {
        interested();
        client.users().get(&user).unwrap();
        client.users().get("no-such-user").unwrap_err()
    });
    check_users_get_spans(&server, user.as_str(), &spans, &not_found);
}

#[test]
fn async_users_get_has_one_http_span_with_otel_fields() {
    let server = basiq_mock::MockServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let spans = Spans::default();
    let (user, not_found) = runtime.block_on(async {
        let user = common::async_client(&server)
            .users()
            .create(new_user("span@example.com"))
            .await
            .unwrap()
            .id;
        let client = common::async_client(&server);
        let _guard = tracing::subscriber::set_default(spans.clone());
        interested();
        client.users().get(&user).await.unwrap();
        let not_found = client.users().get("no-such-user").await.unwrap_err();
        (user, not_found)
    });
    check_users_get_spans(&server, user.as_str(), &spans, &not_found);
}

/// A retried request is a new span with `http.request.resend_count`, and the retry is an INFO
/// event (here: Basiq's 503 on a GET, then a success).
#[test]
fn a_retry_is_a_second_span_with_its_resend_count() {
    let (server, clock) = virtual_time_server();
    let client = blocking_on_virtual_time(&server, &clock).build().unwrap();
    let user = client
        .users()
        .create(new_user("retry@example.com"))
        .unwrap()
        .id;
    server
        .faults()
        .add(
            basiq_mock::FaultRule::new(
                "/users/*",
                basiq_mock::Fault::Status {
                    code: 503,
                    retry_after: None,
                },
            )
            .method("GET"),
        )
        .unwrap();
    let spans = Spans::default();
    tracing::subscriber::with_default(spans.clone(), || {
        interested();
        client.users().get(&user).unwrap()
    });
    let http = spans.http();
    assert_eq!(http.len(), 2, "{http:#?}");
    assert_eq!(field(&http[0], "http.response.status_code"), "503");
    assert_eq!(field(&http[0], "error.type"), "503");
    assert!(!http[0].contains_key("http.request.resend_count"));
    assert_eq!(field(&http[1], "http.response.status_code"), "200");
    assert_eq!(field(&http[1], "http.request.resend_count"), "1");
    let events = spans.events.lock().unwrap();
    assert!(
        events
            .iter()
            .any(|(level, m)| *level == tracing::Level::INFO && m.contains("retrying")),
        "{events:?}"
    );
}
