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
        client.connections().refresh(&user, &conn).unwrap();
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
