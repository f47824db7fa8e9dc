//! No secret in any log line, at any level, of any crate the SDK brings in — seen the way a host
//! sees it: a `tracing-subscriber` at TRACE with the `log` bridge installed, so what ureq,
//! rustls, hyper and reqwest log through the `log` crate is captured too.
//!
//! The scan does not stop at a plain `contains`: HTTP libraries hex-dump wire bytes 16 to a line
//! (`4175 7468 6f72 ... Author...`), which splits a token across lines where no grep finds it.
//! Every run of such lines is decoded back into bytes and searched as well.
//!
//! The emulator runs in-process on threads named `basiq-mock…`; its (server-side) log lines are
//! not the SDK's and are left out.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use basiq::error::TransportError;
use basiq::id::{InstitutionId, JobId};
use basiq::jobs::PollConfig;
use basiq::transport::{AsyncTransport, BlockingTransport, BoxFuture, HttpRequest, HttpResponse};
use basiq::{ConsentAction, ConsentOutcome};
use common::{new_user, SubmitConsent};

/// Pied Piper Bank challenges every login with two security questions.
const PIED_PIPER: &str = "AU00002";
/// MFA answers distinctive enough to search for (wrong ones: the job fails, but they are sent).
const MFA_ANSWERS: [&str; 2] = ["mfa-answer-q7Zk31", "mfa-answer-w9Xp55"];

/// Everything logged, except by the emulator's threads.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

struct Sink(Option<Arc<Mutex<Vec<u8>>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(out) = &self.0 {
            out.lock().unwrap().extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Sink;
    fn make_writer(&'a self) -> Sink {
        let emulator = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("basiq-mock"));
        Sink((!emulator).then(|| Arc::clone(&self.0)))
    }
}

/// One global subscriber for the whole binary (TRACE, `log` bridged by `init`).
fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(captured.clone())
            .init();
        captured
    })
}

/// The bytes of a hex-dump row (`4745 5420 2f75 ...` with `--` for padding), if `line` has one.
fn hex_row(line: &str) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut groups = 0;
    for word in line.split(' ').filter(|w| !w.is_empty()) {
        if word.len() == 4 && word.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            for pair in [&word[..2], &word[2..]] {
                if pair != "--" {
                    bytes.push(u8::from_str_radix(pair, 16).ok()?);
                }
            }
            groups += 1;
        } else if groups > 0 {
            break;
        }
    }
    (groups == 8).then_some(bytes)
}

/// The log text, plus every run of consecutive hex-dump rows decoded back into its bytes.
fn reassembled(log: &str) -> String {
    let mut out = log.to_owned();
    let mut run = Vec::new();
    for line in log.lines() {
        match hex_row(line) {
            Some(bytes) => run.extend(bytes),
            None if !run.is_empty() => {
                out.push('\n');
                out.push_str(&String::from_utf8_lossy(&run));
                run.clear();
            }
            None => {}
        }
    }
    out.push('\n');
    out.push_str(&String::from_utf8_lossy(&run));
    out
}

fn assert_no_secret(log: &str, secrets: &[String], what: &str) {
    assert!(
        log.lines().count() > 20,
        "{what}: TRACE logging is on, so the run must have logged something"
    );
    let text = reassembled(log);
    for secret in secrets {
        assert!(
            secret.len() >= 8,
            "{what}: a secret too short to search for"
        );
        if let Some(at) = text.find(secret.as_str()) {
            let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            panic!(
                "{what}: a secret is in the logs (line shown with the secret cut): {}…",
                &text[start..at]
            );
        }
    }
}

/// Remembers every token `/token` hands out, so the test knows their values.
#[derive(Debug, Clone, Default)]
struct Tokens(Arc<Mutex<Vec<String>>>);

impl Tokens {
    fn record(&self, request_path: &str, response: &HttpResponse) {
        if request_path == "/token" {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(response.body()) {
                if let Some(t) = v["access_token"].as_str() {
                    self.0.lock().unwrap().push(t.to_owned());
                }
            }
        }
    }
}

#[derive(Debug)]
struct RecordingBlocking(basiq::blocking::UreqTransport, Tokens);

impl BlockingTransport for RecordingBlocking {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let path = request.url().path().to_owned();
        let response = self.0.send(request)?;
        self.1.record(&path, &response);
        Ok(response)
    }
}

#[derive(Debug)]
struct RecordingAsync(basiq::ReqwestTransport, Tokens);

impl AsyncTransport for RecordingAsync {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            let path = request.url().path().to_owned();
            let response = self.0.send(request).await?;
            self.1.record(&path, &response);
            Ok(response)
        })
    }
}

fn pied_piper() -> ConsentAction {
    ConsentAction::connect_to(InstitutionId::new(PIED_PIPER).unwrap())
}

fn secrets(key: String, tokens: &Tokens) -> Vec<String> {
    let mut secrets = tokens.0.lock().unwrap().clone();
    assert!(
        secrets.len() >= 3,
        "a server token and client tokens (consent, MFA): {}",
        secrets.len()
    );
    secrets.push(key);
    secrets.extend(MFA_ANSWERS.map(String::from));
    secrets
}

/// Both clients in one test: the subscriber is global, and one log must be clean of both runs.
#[test]
fn trace_logs_with_the_log_bridge_carry_no_key_token_or_mfa_answer() {
    let captured = captured();
    let (server, clock) = common::virtual_time_server();
    let key = server.api_key();

    // Blocking client: user, consent link (client token), connect, MFA answer (client token).
    let tokens = Tokens::default();
    let client = common::blocking_on_virtual_time(&server, &clock)
        .transport(RecordingBlocking(
            basiq::blocking::UreqTransport::new(),
            tokens.clone(),
        ))
        .build()
        .unwrap();
    let user = client
        .users()
        .create(new_user("log-b@example.com"))
        .unwrap()
        .id;
    let ConsentOutcome::Link(link) = client.consent_url(&user, pied_piper()).unwrap() else {
        panic!("a consent link");
    };
    let job = client
        .execute(SubmitConsent::new(&link, Some(("Whistler", "ShowBox"))))
        .unwrap();
    let job = JobId::new(job).unwrap();
    let report = client.jobs().wait(&job, PollConfig::default()).unwrap();
    assert!(report.mfa_challenge().is_some(), "{report}");
    client
        .jobs()
        .answer_mfa(&job, &user, MFA_ANSWERS.map(String::from).to_vec())
        .unwrap();
    let _ = client.users().get("missing-user").unwrap_err();
    let blocking_secrets = secrets(key.clone(), &tokens);

    // Async client, the same flow.
    let tokens = Tokens::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = common::async_on_virtual_time(&server, &clock)
            .transport(RecordingAsync(
                basiq::ReqwestTransport::new(),
                tokens.clone(),
            ))
            .build()
            .unwrap();
        let user = client
            .users()
            .create(new_user("log-a@example.com"))
            .await
            .unwrap()
            .id;
        let ConsentOutcome::Link(link) = client.consent_url(&user, pied_piper()).await.unwrap()
        else {
            panic!("a consent link");
        };
        let job = client
            .execute(SubmitConsent::new(&link, Some(("Whistler", "ShowBox"))))
            .await
            .unwrap();
        let job = JobId::new(job).unwrap();
        let report = client
            .jobs()
            .wait(&job, PollConfig::default())
            .await
            .unwrap();
        assert!(report.mfa_challenge().is_some(), "{report}");
        client
            .jobs()
            .answer_mfa(&job, &user, MFA_ANSWERS.map(String::from).to_vec())
            .await
            .unwrap();
        let _ = client.users().get("missing-user").await.unwrap_err();
    });
    let async_secrets = secrets(key, &tokens);

    let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    if std::env::var("DUMP_LOG").is_ok() {
        std::fs::write("/tmp/trace_log.txt", &log).unwrap();
    }
    assert_no_secret(&log, &async_secrets, "async client");
    assert_no_secret(&log, &blocking_secrets, "blocking client");
}

#[test]
fn the_scan_finds_a_secret_split_across_hex_dump_rows() {
    // The check itself must be able to fail: a bearer token dumped 16 bytes a line.
    let wire =
        b"GET /users HTTP/1.1\r\nauthorization: Bearer eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.sig\r\n\r\n";
    let mut log = String::new();
    for row in wire.chunks(16) {
        let mut hex = String::new();
        for i in 0..16 {
            match row.get(i) {
                Some(b) => hex.push_str(&format!("{b:02x}")),
                None => hex.push_str("--"),
            }
            if i % 2 == 1 {
                hex.push(' ');
            }
        }
        let ascii: String = row
            .iter()
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
            .collect();
        log.push_str(&format!(
            "2026-01-05T10:00:00Z TRACE ureq_proto::util: {hex} {ascii}\n"
        ));
    }
    let secret = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.sig".to_string();
    assert!(!log.contains(&secret), "split across rows");
    assert!(reassembled(&log).contains(&secret));
}
