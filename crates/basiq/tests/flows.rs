//! The best-practice helpers against the emulator over real loopback HTTP, on a virtual clock
//! shared by the emulator and the client: the injected sleep advances it, so nothing here really
//! sleeps.
//!
//! Every scenario is written once, in `flow_scenarios!`, and stamped out for both clients — the
//! way `src/resources.rs` stamps the resource wrappers: `mod async_client` (`async fn`, `.await`,
//! `#[tokio::test]`) and `mod blocking_client` (plain `fn`, `#[test]`). So the two clients run the
//! same scenarios with the same assertions and cannot drift: `async_client::<scenario>` and
//! `blocking_client::<scenario>`. What only one client has (the futures are `Send`; the blocking
//! pager is an `Iterator`) is tested in its own module.

#![allow(clippy::result_large_err)]

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use basiq::clock::{Clock, ManualClock};
use basiq::connectors::ConnectionMethod;
use basiq::id::{ConnectionId, InstitutionId, JobId, UserId};
use basiq::jobs::{FailureClass, JobKind, MfaMethod, PollConfig, RecommendedAction, UserAction};
use basiq::models::{StepStatus, StepTitle, TransactionList};
use basiq::refresh::{ConnectionStatus, MemoryLedger, RefreshLedger, RefreshPolicy, SkipReason};
use basiq::{
    ConsentAction, ConsentOutcome, ConsentRequest, ErrorKind, JobProgress, RefreshOutcome,
    TransactionQuery, WaitOutcome,
};
use basiq_mock::{Fault, FaultRule, MockServer};
use common::{new_user, route_count, token_requests, SubmitConsent, REFRESH_ROUTE, UNSAFE_IDS};

const HOOLI: &str = "AU00000";
const HOOLI_OPEN_BANKING: &str = "AU00001";
/// Always raises an `mfa-challenge` step (basiq-api.md §4.4).
const PIED_PIPER: &str = "AU00002";
const MFA_ROUTE: &str = "POST /jobs/{job_id}/mfa";

use common::virtual_time_server as server;

fn hooli() -> ConsentAction {
    ConsentAction::connect_to(InstitutionId::new(HOOLI).unwrap())
}

fn pied_piper() -> ConsentAction {
    ConsentAction::connect_to(InstitutionId::new(PIED_PIPER).unwrap())
}

fn connection_of(report: &basiq::JobReport) -> ConnectionId {
    report
        .connection_id()
        .cloned()
        .expect("links.source names the connection")
}

/// `assert!(matches!(value, pattern), "{value:?}")`.
macro_rules! assert_matches {
    ($value:ident, $pattern:pat) => {
        assert!(matches!($value, $pattern), "{:?}", $value)
    };
}

/// Stamps the helpers and every scenario for one client. At the call site: `Client` and
/// `ClientBuilder` name that client's types and `builder(server, clock)` aims its builder at the
/// emulator on the virtual clock; `#[$test]` is the test attribute, `[$async]` / `[$await]` are
/// `[async]` / `[.await]` or empty.
macro_rules! flow_scenarios {
    (#[$test:meta], [$($async:tt)*], [$($await:tt)*]) => {
        fn client_with(
            server: &MockServer,
            clock: &ManualClock,
            configure: impl FnOnce(ClientBuilder) -> ClientBuilder,
        ) -> Client {
            configure(builder(server, clock)).build().unwrap()
        }

        fn client(server: &MockServer, clock: &ManualClock) -> Client {
            client_with(server, clock, |b| b)
        }

        /// The emulator, its clock, a client of it and a new user with `email`.
        $($async)* fn with_user(email: &str) -> (MockServer, ManualClock, Client, UserId) {
            let (server, clock) = server();
            let client = client(&server, &clock);
            let user = user(&client, email)$($await)*;
            (server, clock, client, user)
        }

        $($async)* fn user(client: &Client, email: &str) -> UserId {
            client.users().create(new_user(email))$($await)*.unwrap().id
        }

        /// Sends the user through the Consent UI stand-in (consent_url → the link's token → POST
        /// /consent/connect.json) and returns the job it started.
        $($async)* fn connect(
            client: &Client,
            user: &UserId,
            action: ConsentAction,
            login: Option<(&str, &str)>,
        ) -> JobId {
            let outcome = client.consent_url(user, action)$($await)*.unwrap();
            let ConsentOutcome::Link(link) = outcome else {
                panic!("expected a link, got {outcome:?}");
            };
            JobId::new(client.execute(SubmitConsent::new(&link, login))$($await)*.unwrap()).unwrap()
        }

        /// Connects Hooli with `login` and follows the job to its end.
        $($async)* fn connect_and_wait(
            client: &Client,
            user: &UserId,
            login: (&str, &str),
        ) -> basiq::JobReport {
            let job = connect(client, user, hooli(), Some(login))$($await)*;
            client
                .jobs()
                .wait_as(&job, JobKind::Create, PollConfig::default())$($await)*
                .unwrap()
        }

        /// Consent link → connect → `jobs().wait` to success in 13 s of virtual time, no real
        /// sleeping; the report carries the ids and the step changes; the link's Debug hides the
        /// token.
        #[$test]
        $($async)* fn consent_connect_then_wait_succeeds_on_virtual_time() {
            let (server, clock, client, user) = with_user("wait@example.com")$($await)*;

            let request = ConsentRequest::new(hooli()).state("s t&ate");
            let ConsentOutcome::Link(link) =
                client.consent_url(&user, request)$($await)*.unwrap()
            else {
                panic!("nothing runs yet: a link");
            };
            let url = link.expose_url().clone();
            assert!(url
                .as_str()
                .starts_with(&format!("{}/consent/home?", server.url())));
            let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
            let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            assert_eq!(get("action"), Some("connect"));
            assert_eq!(get("institutionId"), Some(HOOLI));
            assert_eq!(
                get("state"),
                Some("s t&ate"),
                "state is URL-encoded and round-trips"
            );
            let token = get("token").expect("a client token").to_owned();
            assert!(token.len() > 20);
            let debug = format!("{link:?}");
            assert!(!debug.contains(&token), "Debug leaks the token: {debug}");
            assert!(debug.contains("REDACTED"));

            let job = JobId::new(
                client
                    .execute(SubmitConsent::new(&link, Some(("jared", "django"))))$($await)*
                    .unwrap(),
            )
            .unwrap();
            let before = clock.now();
            let real = Instant::now();
            let report = client.jobs().wait(&job, PollConfig::default())$($await)*.unwrap();
            assert_eq!(report.outcome, WaitOutcome::Succeeded);
            assert!(report.is_success());
            assert_eq!(report.context.user_id.as_ref(), Some(&user));
            assert_eq!(report.context.job_id.as_ref(), Some(&job));
            assert!(report.context.connection_id.is_some());
            assert!(
                report.polls >= 3,
                "followed through several polls: {}",
                report.polls
            );
            let virtual_elapsed = clock.now() - before;
            assert!(
                virtual_elapsed >= time::Duration::seconds(13),
                "{virtual_elapsed}"
            );
            assert!(
                virtual_elapsed < time::Duration::seconds(60),
                "{virtual_elapsed}"
            );
            assert!(real.elapsed() < Duration::from_secs(20), "no real sleeping");
            assert!(report
                .events
                .iter()
                .any(|e| e.title == StepTitle::RetrieveTransactions
                    && e.to == StepStatus::Success));
        }

        /// `basiq-mock`'s test support completes the Consent UI for the user in one call: the
        /// job it returns is followed to success; a link with a wrong token is refused.
        #[$test]
        $($async)* fn the_emulator_completes_the_consent_ui_for_a_test() {
            let (server, _clock, client, user) = with_user("helper@example.com")$($await)*;
            let outcome = client.consent_url(&user, hooli())$($await)*.unwrap();
            let link = outcome.link().expect("nothing runs yet");
            let jobs = server
                .complete_consent(link.expose_url().as_str(), Some(("jared", "django")))
                .unwrap();
            assert_eq!(jobs.len(), 1);
            let report = client.jobs().wait(jobs[0].as_str(), PollConfig::new())$($await)*.unwrap();
            assert!(report.is_success(), "{report}");
            assert_eq!(report.context.user_id.as_ref(), Some(&user));
            let forged = format!("{}/consent/home?token=forged&action=connect", server.url());
            let err = server.complete_consent(&forged, Some(("jared", "django"))).unwrap_err();
            assert_eq!(err.status, 401, "{err}");
        }

        /// `follow` hands out step events while the job still runs at the emulator (virtual
        /// time: nothing moves between the event and the direct read), and ends with the
        /// report `wait` would give.
        #[$test]
        $($async)* fn follow_yields_steps_before_the_job_finishes() {
            let (_server, _clock, client, user) = with_user("follow@example.com")$($await)*;
            let job = connect(&client, &user, hooli(), Some(("jared", "django")))$($await)*;
            let mut follow = client.jobs().follow(&job, PollConfig::new()).unwrap();
            let mut seen_while_running = Vec::new();
            let mut last = None;
            while let Some(event) = follow.next()$($await)* {
                let event = event.unwrap();
                if let JobProgress::StepSucceeded { title } | JobProgress::StepStarted { title } = &event {
                    let now = client.jobs().get(&job)$($await)*.unwrap();
                    if !now.state().is_done() {
                        seen_while_running.push(title.clone());
                    }
                }
                last = Some(event);
            }
            assert!(
                seen_while_running.contains(&StepTitle::VerifyCredentials),
                "a step event arrived before the job finished: {seen_while_running:?}"
            );
            let report = last.expect("events").report().cloned().expect("the last event is the report");
            assert!(report.is_success(), "{report}");
            assert_eq!(report.context.user_id.as_ref(), Some(&user));
            // Owned: the follow of a finished job, returned and driven after the client is gone.
            let again = client.jobs().follow(job.clone(), PollConfig::new()).unwrap();
            drop(client);
            let mut again = again;
            let first = again.next()$($await)*.unwrap().unwrap();
            assert!(!matches!(first, JobProgress::Finished(_)), "steps first: {first:?}");
        }

        /// Pied Piper Bank challenges every login: `wait` stops at once with `MfaRequired` (the
        /// method, both security questions, the expiry) instead of polling to the deadline;
        /// `answer_mfa` sends the right answers with a fresh client token (the server token
        /// would be refused with 403) and returns the job; `wait` again ends in success.
        #[$test]
        $($async)* fn mfa_challenge_stops_the_wait_then_answering_lets_the_job_succeed() {
            let (server, clock, client, user) = with_user("mfa@example.com")$($await)*;
            let job = connect(&client, &user, pied_piper(), Some(("Whistler", "ShowBox")))$($await)*;

            let before = clock.now();
            let report = client.jobs().wait(&job, PollConfig::default())$($await)*.unwrap();
            let WaitOutcome::MfaRequired(challenge) = &report.outcome else {
                panic!("expected MfaRequired, got {report}");
            };
            assert!(
                clock.now() - before < time::Duration::seconds(30),
                "stopped as soon as the challenge was up, not at the 5-minute deadline"
            );
            assert_eq!(report.mfa_challenge(), Some(challenge));
            assert_eq!(&challenge.job_id, &job);
            assert_eq!(challenge.method, MfaMethod::SecurityQuestions);
            assert_eq!(challenge.prompts.len(), 2, "{challenge:?}");
            assert!(challenge.description.is_some());
            let expires_at = challenge.expires_at.expect("expiryMs and updated are sent");
            assert!(expires_at > clock.now());
            assert!(expires_at <= clock.now() + time::Duration::minutes(5));
            assert_eq!(report.context.user_id.as_ref(), Some(&user));
            assert!(report
                .events
                .iter()
                .any(|e| e.title == StepTitle::MfaChallenge && e.to == StepStatus::InProgress));
            let line = report.to_string();
            assert!(line.contains("security-questions challenge (2 prompts)"), "{line}");
            assert!(line.contains(&format!("jobId={job}")), "{line}");

            let tokens = server.stats().tokens_issued;
            let answered = client
                .jobs()
                .answer_mfa(&job, &user, vec!["Basiq".into(), "AU00000".into()])$($await)*
                .unwrap();
            assert_eq!(answered.id, job);
            assert_eq!(answered.mfa_challenge(), None, "nothing left to answer");
            assert_eq!(
                answered.step(StepTitle::MfaChallenge).map(|s| s.status.clone()),
                Some(StepStatus::Success)
            );
            assert_eq!(route_count(&server, MFA_ROUTE), 1);
            assert_eq!(
                server.stats().tokens_issued,
                tokens + 1,
                "one fresh client token for the answer; the cached server token kept"
            );

            let report = client.jobs().wait(&job, PollConfig::default())$($await)*.unwrap();
            assert_eq!(report.outcome, WaitOutcome::Succeeded, "{report}");
            let conn = client
                .connections()
                .get(&user, &connection_of(&report))$($await)*
                .unwrap();
            assert_eq!(conn.status, ConnectionStatus::Active);
        }

        /// A wrong one-time code fails the job `invalid-credentials` at the MFA step, explained
        /// as a user action (log in again through the Consent UI). Answering again is Basiq's
        /// 400 with both ids, sent once (never retried); no or blank answers and bad ids are
        /// refused before any request.
        #[$test]
        $($async)* fn wrong_mfa_answer_fails_the_job_with_a_user_action() {
            let (server, _clock, client, user) = with_user("mfa-wrong@example.com")$($await)*;
            let job = connect(&client, &user, pied_piper(), Some(("jared", "django")))$($await)*;
            let report = client.jobs().wait(&job, PollConfig::default())$($await)*.unwrap();
            let challenge = report.mfa_challenge().expect("challenged").clone();
            assert_eq!(challenge.method, MfaMethod::Token);
            assert_eq!(challenge.prompts, ["OTP Password"]);

            let tokens = token_requests(&server);
            for answers in [vec![], vec![" ".to_owned()]] {
                let err = client.jobs().answer_mfa(&job, &user, answers)$($await)*.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            }
            for bad in UNSAFE_IDS {
                let err = client
                    .jobs()
                    .answer_mfa(bad, &user, vec!["1234".into()])$($await)*
                    .unwrap_err();
                assert_eq!(err.kind(), ErrorKind::InvalidId, "{err}");
                let err = client
                    .jobs()
                    .answer_mfa(&job, bad, vec!["1234".into()])$($await)*
                    .unwrap_err();
                assert_eq!(err.kind(), ErrorKind::InvalidId, "{err}");
            }
            assert_eq!(route_count(&server, MFA_ROUTE), 0, "refused locally");
            assert_eq!(token_requests(&server), tokens, "not even a token fetched");

            let answered = client
                .jobs()
                .answer_mfa(&job, &user, vec!["0000".into()])$($await)*
                .unwrap();
            assert_eq!(answered.mfa_challenge(), None);
            let report = client.jobs().wait_as(&job, JobKind::Create, PollConfig::default())$($await)*.unwrap();
            let d = report.diagnosis().expect("failed");
            assert_eq!(d.step, StepTitle::MfaChallenge);
            assert_eq!(d.failure.code.as_str(), "invalid-credentials");
            assert!(matches!(
                d.class,
                FailureClass::UserActionRequired(UserAction::ReenterCredentials { .. })
            ));
            assert!(matches!(d.action, RecommendedAction::ReenterCredentials { .. }));

            let err = client
                .jobs()
                .answer_mfa(&job, &user, vec!["1234".into()])$($await)*
                .unwrap_err();
            assert_eq!(err.status().map(|s| s.as_u16()), Some(400), "{err}");
            let ctx = err.context().unwrap();
            assert_eq!(ctx.user_id.as_ref(), Some(&user));
            assert_eq!(ctx.job_id.as_ref(), Some(&job));
            assert_eq!(route_count(&server, MFA_ROUTE), 2, "each answer sent exactly once");
        }

        /// The connection drops after Basiq took the answer: the error carries both ids and the
        /// answer is **not** sent again (a second one could lock the account). Reading the job
        /// shows the challenge is gone, so the caller does not answer again and just follows it.
        #[$test]
        $($async)* fn mfa_answer_is_never_repeated_after_an_ambiguous_failure() {
            let (server, _clock, client, user) = with_user("mfa-reset@example.com")$($await)*;
            let job = connect(&client, &user, pied_piper(), Some(("gavinBelson", "hooli2016")))$($await)*;
            let report = client.jobs().wait(&job, PollConfig::default())$($await)*.unwrap();
            assert_eq!(report.mfa_challenge().map(|c| c.prompts.len()), Some(1));
            server
                .faults()
                .add(
                    FaultRule::new("/jobs/*/mfa", Fault::Reset { after_handler: true })
                        .method("POST"),
                )
                .unwrap();
            let err = client
                .jobs()
                .answer_mfa(&job, &user, vec!["Hooli".into()])$($await)*
                .unwrap_err();
            let ctx = err.context().unwrap();
            assert_eq!(ctx.user_id.as_ref(), Some(&user));
            assert_eq!(ctx.job_id.as_ref(), Some(&job));
            assert_eq!(route_count(&server, MFA_ROUTE), 1, "never retried");
            let now = client.jobs().get(&job)$($await)*.unwrap();
            assert_eq!(now.mfa_challenge(), None, "the answer arrived: do not answer again");
            let report = client.jobs().wait(&job, PollConfig::default())$($await)*.unwrap();
            assert_eq!(report.outcome, WaitOutcome::Succeeded, "{report}");
        }

        /// A job still running at the deadline is `TimedOut` (not an error), and the waits never
        /// add up past the deadline.
        #[$test]
        $($async)* fn wait_times_out_without_an_error() {
            let (_server, _clock, client, user) = with_user("slow@example.com")$($await)*;
            let job = connect(&client, &user, hooli(), Some(("slow", "slow")))$($await)*;
            let config = PollConfig::new().deadline(Duration::from_secs(30));
            let report = client.jobs().wait(&job, config)$($await)*.unwrap();
            assert_eq!(report.outcome, WaitOutcome::TimedOut);
            assert!(report.waited <= Duration::from_secs(30));
        }

        /// Basiq's failure users come back as typed outcomes with the action to take and the ids.
        #[$test]
        $($async)* fn failure_logins_become_actions() {
            let (_server, _clock, client, user) = with_user("fail@example.com")$($await)*;

            let report = connect_and_wait(&client, &user, ("bighead", "password"))$($await)*;
            let d = report.diagnosis().expect("failed");
            assert_eq!(d.failure.code.as_str(), "invalid-credentials");
            assert_eq!(d.step, StepTitle::VerifyCredentials);
            assert!(matches!(
                d.class,
                FailureClass::UserActionRequired(UserAction::ReenterCredentials { .. })
            ));
            assert!(matches!(
                &d.action,
                RecommendedAction::ReenterCredentials { connection_id: Some(c), .. }
                    if Some(c) == report.connection_id()
            ));
            assert_eq!(report.context.user_id.as_ref(), Some(&user));
            assert_eq!(report.context.job_id.as_ref(), Some(&d.job_id));
            let line = report.to_string();
            for needle in [
                "failed at verify-credentials",
                "invalid-credentials",
                "re-enter",
                &format!("userId={user}"),
                &format!("jobId={}", d.job_id),
                &format!("connectionId={}", connection_of(&report)),
            ] {
                assert!(line.contains(needle), "{needle:?} not in {line}");
            }

            let report = connect_and_wait(&client, &user, ("erlich", "aviato"))$($await)*;
            let d = report.diagnosis().expect("failed");
            assert_eq!(
                d.failure.code.as_str(),
                "account-not-accessible-requires-user-action"
            );
            assert!(matches!(
                d.action,
                RecommendedAction::ClearBankPopupOrTerms { .. }
            ));

            let report = connect_and_wait(&client, &user, ("jianYang", "nothotdog"))$($await)*;
            let d = report.diagnosis().expect("failed");
            assert_eq!(d.failure.code.as_str(), "service-unavailable");
            // On a new connection Basiq retries it itself (every 2 h for 7 days).
            assert!(matches!(d.class, FailureClass::ServerManagedRetry { .. }));
            assert!(matches!(
                d.action,
                RecommendedAction::AwaitServerRetry { .. }
            ));
        }

        /// The loop Basiq asks for: a failed login → the recommended action (re-enter credentials)
        /// → a Consent UI link to update *that* connection → the job succeeds → the connection is
        /// active, and the triage has nothing left to report.
        #[$test]
        $($async)* fn failure_action_update_via_consent_fixes_the_connection() {
            let (_server, _clock, client, user) = with_user("fix@example.com")$($await)*;
            let report = connect_and_wait(&client, &user, ("richard", "wrong-password"))$($await)*;
            let RecommendedAction::ReenterCredentials {
                connection_id: Some(conn),
                ..
            } = report.diagnosis().unwrap().action.clone()
            else {
                panic!("re-enter credentials: {report}");
            };
            assert_eq!(client.users().triage(&user)$($await)*.unwrap().len(), 1);

            let request = ConsentRequest::new(ConsentAction::update(conn.clone())).state("fix-1");
            let ConsentOutcome::Link(link) =
                client.consent_url(&user, request)$($await)*.unwrap()
            else {
                panic!("nothing runs: a link");
            };
            assert!(link
                .expose_url()
                .query_pairs()
                .any(|(k, v)| k == "connectionId" && v == conn.as_str()));
            let job = client
                .execute(SubmitConsent::new(
                    &link,
                    Some(("richard", "tabsnotspaces")),
                ))$($await)*
                .unwrap();
            let report = client
                .jobs()
                .wait_as(&job, JobKind::Create, PollConfig::default())$($await)*
                .unwrap();
            assert!(report.is_success(), "{report}");
            assert_eq!(
                report.connection_id(),
                Some(&conn),
                "the same connection was updated"
            );
            let connection = client.connections().get(&user, &conn)$($await)*.unwrap();
            assert_eq!(connection.status, ConnectionStatus::Active);
            assert!(client.users().triage(&user)$($await)*.unwrap().is_empty());
        }

        /// The refresh guard: a refresh while one runs is skipped locally (the unchecked call gets
        /// Basiq's 200 + the running job, no second job); right after one finished it is
        /// `RecentlyRefreshed`; the emulator counted exactly the refreshes that were sent.
        #[$test]
        $($async)* fn refresh_guard_skips_running_and_recent_refreshes() {
            let (server, clock, client, user) = with_user("refresh@example.com")$($await)*;
            let conn = connection_of(
                &connect_and_wait(&client, &user, ("jared", "django"))$($await)*,
            );

            // Just connected: lastUsed is now, so the default policy (24 h) says not yet.
            let outcome = client.connections().refresh(&user, &conn)$($await)*.unwrap();
            assert_matches!(outcome, RefreshOutcome::Skipped(SkipReason::RecentlyRefreshed { .. }));
            assert_eq!(route_count(&server, REFRESH_ROUTE), 0);

            clock.advance(Duration::from_secs(25 * 3600));
            let RefreshOutcome::Started(job) =
                client.connections().refresh(&user, &conn)$($await)*.unwrap()
            else {
                panic!("a day later the refresh is allowed");
            };
            // While it runs: skipped locally, the running job to follow, nothing sent.
            let outcome = client.connections().refresh(&user, &conn)$($await)*.unwrap();
            assert_eq!(
                outcome,
                RefreshOutcome::Skipped(SkipReason::InProgress(job.clone()))
            );
            assert_eq!(outcome.job_id(), Some(&job));
            assert_eq!(route_count(&server, REFRESH_ROUTE), 1);
            // Bypassing the guard, Basiq answers 200 with the running job: no duplicate job.
            let outcome = client
                .connections()
                .refresh_unchecked(&user, &conn)$($await)*
                .unwrap();
            assert_eq!(outcome, RefreshOutcome::AlreadyRunning(job.clone()));
            let stats = server.stats();
            assert_eq!(stats.refreshes.get(conn.as_str()), Some(&1));
            assert_eq!(stats.duplicate_refreshes, 1);

            let report = client
                .jobs()
                .wait_as(&job, JobKind::Refresh, PollConfig::default())$($await)*
                .unwrap();
            assert!(report.is_success());
            let outcome = client.connections().refresh(&user, &conn)$($await)*.unwrap();
            assert_matches!(outcome, RefreshOutcome::Skipped(SkipReason::RecentlyRefreshed { .. }));
            assert!(!outcome.was_sent());
            assert_eq!(
                route_count(&server, REFRESH_ROUTE),
                2,
                "the guarded one and the unchecked one"
            );
            assert_eq!(server.stats().refreshes.get(conn.as_str()), Some(&1));
        }

        /// An invalid connection (bad credentials) is never refreshed: skipped as inactive, zero
        /// POSTs.
        #[$test]
        $($async)* fn invalid_connection_is_skipped_without_a_post() {
            let (server, clock, client, user) = with_user("invalid@example.com")$($await)*;
            let conn = connection_of(
                &connect_and_wait(&client, &user, ("bighead", "password"))$($await)*,
            );
            clock.advance(Duration::from_secs(25 * 3600));

            let outcome = client.connections().refresh(&user, &conn)$($await)*.unwrap();
            assert_eq!(
                outcome,
                RefreshOutcome::Skipped(SkipReason::Inactive(ConnectionStatus::Invalid))
            );
            assert_eq!(route_count(&server, REFRESH_ROUTE), 0);
            assert!(server.stats().refreshes.is_empty());
        }

        /// Open banking: 20 refreshes a UTC day. With a permissive min_interval the 21st is refused
        /// locally; the emulator saw exactly 20 refresh POSTs; the refreshes were counted in the
        /// ledger given to the builder, which another client sharing it sees too.
        #[$test]
        $($async)* fn open_banking_twenty_first_refresh_is_refused_locally() {
            let (server, clock) = server();
            let policy = RefreshPolicy::default().with_min_interval(Duration::ZERO);
            let ledger = Arc::new(Mutex::new(MemoryLedger::new()));
            let shared: basiq::SharedRefreshLedger = ledger.clone();
            let client = client_with(&server, &clock, |b| {
                b.refresh_policy(policy).refresh_ledger(shared.clone())
            });
            let user = user(&client, "ob@example.com")$($await)*;
            let action = ConsentAction::connect_to(InstitutionId::new(HOOLI_OPEN_BANKING).unwrap());
            let job = connect(&client, &user, action, None)$($await)*;
            let report = client.jobs().wait(&job, PollConfig::default())$($await)*.unwrap();
            assert!(report.is_success());
            let conn = connection_of(&report);
            // The connect job was yesterday: start a fresh UTC day.
            clock.set(time::macros::datetime!(2026-01-06 00:01 UTC));

            for i in 0..20 {
                let outcome = client.connections().refresh(&user, &conn)$($await)*.unwrap();
                let RefreshOutcome::Started(job) = outcome else {
                    panic!("refresh {} should start: {outcome:?}", i + 1);
                };
                let report = client
                    .jobs()
                    .wait_as(&job, JobKind::Refresh, PollConfig::default())$($await)*
                    .unwrap();
                assert!(report.is_success());
            }
            let outcome = client.connections().refresh(&user, &conn)$($await)*.unwrap();
            assert_eq!(
                outcome,
                RefreshOutcome::Skipped(SkipReason::DailyQuotaExhausted {
                    resets_at: time::macros::datetime!(2026-01-07 00:00 UTC)
                })
            );
            assert_eq!(route_count(&server, REFRESH_ROUTE), 20);
            assert_eq!(server.stats().refreshes.get(conn.as_str()), Some(&20));
            let today = time::macros::date!(2026 - 01 - 06);
            assert_eq!(ledger.lock().unwrap().count(&conn, today), 20);
            // Another client (another process, say) sharing the ledger refuses it too, and so does
            // a clone of the first.
            let other = client_with(&server, &clock, |b| {
                b.refresh_policy(policy).refresh_ledger(shared)
            });
            for c in [&other, &client.clone()] {
                let outcome = c.connections().refresh(&user, &conn)$($await)*.unwrap();
                assert_matches!(
                    outcome,
                    RefreshOutcome::Skipped(SkipReason::DailyQuotaExhausted { .. })
                );
            }
            assert_eq!(route_count(&server, REFRESH_ROUTE), 20);
        }

        /// A connection made today (no day boundary crossed): the job that created it is not a
        /// refresh, so exactly 20 guarded refreshes are sent, the 21st is skipped locally, and
        /// the emulator counted 20.
        #[$test]
        $($async)* fn open_banking_connection_made_today_gets_twenty_refreshes() {
            let (server, clock) = server();
            let policy = RefreshPolicy::default().with_min_interval(Duration::ZERO);
            let client = client_with(&server, &clock, |b| b.refresh_policy(policy));
            let user = user(&client, "today@example.com")$($await)*;
            let action = ConsentAction::connect_to(InstitutionId::new(HOOLI_OPEN_BANKING).unwrap());
            let job = connect(&client, &user, action, None)$($await)*;
            let report = client.jobs().wait(job, PollConfig::default())$($await)*.unwrap();
            assert!(report.is_success());
            let conn = connection_of(&report);
            let connected_on = clock.now().date();

            let mut sent = 0;
            for i in 0..20 {
                let outcome = client.connections().refresh(&user, &conn)$($await)*.unwrap();
                let RefreshOutcome::Started(job) = outcome else {
                    panic!("refresh {} should start: {outcome:?}", i + 1);
                };
                sent += 1;
                // The `JobId` from the outcome, by value.
                let report = client
                    .jobs()
                    .wait_as(job, JobKind::Refresh, PollConfig::default())$($await)*
                    .unwrap();
                assert!(report.is_success());
            }
            assert_eq!(clock.now().date(), connected_on, "still the day it was connected");
            let outcome = client.connections().refresh(&user, &conn)$($await)*.unwrap();
            assert_matches!(
                outcome,
                RefreshOutcome::Skipped(SkipReason::DailyQuotaExhausted { .. })
            );
            assert_eq!(sent, 20);
            assert_eq!(route_count(&server, REFRESH_ROUTE), 20);
            assert_eq!(server.stats().refreshes.get(conn.as_str()), Some(&20));
        }

        /// A second consent attempt while the first job runs is not sent (follow the job); once a
        /// duplicate has been sent anyway (another tab), Basiq pauses it 6 minutes and the SDK says
        /// so.
        #[$test]
        $($async)* fn duplicate_consent_attempt_is_followed_or_paused() {
            let (server, _clock, client, user) = with_user("dup@example.com")$($await)*;
            let ConsentOutcome::Link(link) =
                client.consent_url(&user, hooli())$($await)*.unwrap()
            else {
                panic!("a link");
            };
            let first = JobId::new(
                client
                    .execute(SubmitConsent::new(&link, Some(("jared", "django"))))$($await)*
                    .unwrap(),
            )
            .unwrap();

            let tokens = server.stats().tokens_issued;
            match client.consent_url(&user, hooli())$($await)*.unwrap() {
                ConsentOutcome::FollowExisting { job_id } => assert_eq!(job_id, first),
                other => panic!("expected FollowExisting, got {other:?}"),
            }
            assert_eq!(
                server.stats().tokens_issued,
                tokens,
                "no client token minted for nothing"
            );

            // Another browser tab submits the same login anyway: Basiq pauses it for 6 minutes.
            let dup = JobId::new(
                client
                    .execute(SubmitConsent::new(&link, Some(("jared", "django"))))$($await)*
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(server.stats().paused_attempts, 1);
            let dup_created = client.jobs().get(&dup)$($await)*.unwrap().created.unwrap();
            match client.consent_url(&user, hooli())$($await)*.unwrap() {
                ConsentOutcome::Paused { until, job_id } => {
                    assert_eq!(job_id, dup);
                    assert_eq!(until, dup_created + time::Duration::minutes(6));
                }
                other => panic!("expected Paused, got {other:?}"),
            }
            // An update of that connection is held back too.
            let conn = client.jobs().get(&first)$($await)*.unwrap().connection_id().unwrap();
            let outcome = client
                .consent_url(&user, ConsentAction::update(conn))$($await)*
                .unwrap();
            assert_matches!(outcome, ConsentOutcome::Paused { .. });
            // Another institution is not blocked.
            let other = ConsentAction::connect_to(InstitutionId::new("AU00002").unwrap());
            assert!(client.consent_url(&user, other)$($await)*.unwrap().link().is_some());
            assert_eq!(server.stats().paused_attempts, 1);
        }

        /// Purge removes the data (the user asked), a refresh brings it back.
        #[$test]
        $($async)* fn purge_then_refresh_brings_the_data_back() {
            let (_server, clock, client, user) = with_user("purge@example.com")$($await)*;
            let conn = connection_of(
                &connect_and_wait(&client, &user, ("jared", "django"))$($await)*,
            );
            let page = client
                .transactions()
                .list(&user, TransactionQuery::new())$($await)*
                .unwrap();
            assert!(!page.data.is_empty());
            assert!(!client.accounts().list(&user)$($await)*.unwrap().data.is_empty());

            client.connections().purge(&user, &conn)$($await)*.unwrap();
            let page = client
                .transactions()
                .list(&user, TransactionQuery::new())$($await)*
                .unwrap();
            assert!(page.data.is_empty(), "purged: {} left", page.data.len());
            assert!(client
                .transactions()
                .all(&user, TransactionQuery::new())$($await)*
                .unwrap()
                .is_empty());

            clock.advance(Duration::from_secs(25 * 3600));
            let outcome = client.connections().refresh(&user, &conn)$($await)*.unwrap();
            let job = outcome.job_id().cloned().expect("refresh started");
            assert!(client
                .jobs()
                .wait(&job, PollConfig::default())$($await)*
                .unwrap()
                .is_success());
            let page = client
                .transactions()
                .list(&user, TransactionQuery::new())$($await)*
                .unwrap();
            assert!(!page.data.is_empty());
        }

        /// `all()` and the pager walk every page (> 500 transactions): no duplicate ids, exactly
        /// the emulator's total, the same with a smaller page size.
        #[$test]
        $($async)* fn transactions_walk_every_page_once() {
            let (_server, _clock, client, user) = with_user("pages@example.com")$($await)*;
            assert!(connect_and_wait(&client, &user, ("jared", "django"))$($await)*.is_success());

            let first = client
                .transactions()
                .list(&user, TransactionQuery::new())$($await)*
                .unwrap();
            let total = first.size.expect("size") as usize;
            assert!(total > 500, "{total}");
            assert_eq!(first.data.len(), 500);
            let second = client
                .transactions()
                .next_page(&first)$($await)*
                .unwrap()
                .expect("a second page");
            assert!(!second.data.is_empty());

            let all = client
                .transactions()
                .all(&user, TransactionQuery::new())$($await)*
                .unwrap();
            let ids: HashSet<_> = all.iter().map(|t| t.id.clone()).collect();
            assert_eq!(all.len(), total);
            assert_eq!(ids.len(), total, "no duplicates");

            let mut items = client
                .transactions()
                .items(&user, TransactionQuery::new().limit(200))
                .unwrap();
            let mut seen = HashSet::new();
            while let Some(t) = items.next()$($await)* {
                assert!(seen.insert(t.unwrap().id), "duplicate");
            }
            assert_eq!(seen, ids);
            assert!(items.next()$($await)*.is_none(), "fused");
            let mut pages = client
                .transactions()
                .pages(&user, TransactionQuery::new().limit(200))
                .unwrap();
            let mut count = 0;
            while let Some(page) = pages.next()$($await)* {
                assert!(page.unwrap().data.len() <= 200);
                count += 1;
            }
            assert_eq!(count, total.div_ceil(200));
        }

        /// Every list has an owned walk: accounts, connections, jobs, connectors, and any list
        /// operation through `client.items(op)` (here the generated `ListConsents`).
        #[$test]
        $($async)* fn every_list_walks_as_owned_items() {
            let (_server, _clock, client, user) = with_user("lists@example.com")$($await)*;
            assert!(connect_and_wait(&client, &user, ("jared", "django"))$($await)*.is_success());

            let mut n = 0;
            let mut accounts = client.accounts().items(&user).unwrap();
            while let Some(account) = accounts.next()$($await)* {
                account.unwrap();
                n += 1;
            }
            assert_eq!(n, client.accounts().list(&user)$($await)*.unwrap().data.len());
            assert!(n > 0);

            let mut connections = client.connections().items(user.clone()).unwrap();
            let first = connections.next()$($await)*.expect("one connection").unwrap();
            assert_eq!(first.status, ConnectionStatus::Active);
            assert!(connections.next()$($await)*.is_none());

            let mut jobs = client.jobs().items_for_user(user.as_str()).unwrap();
            assert!(jobs.next()$($await)*.expect("the connect job").is_ok());

            let mut connectors = client.connectors().items();
            let mut institutions = HashSet::new();
            while let Some(c) = connectors.next()$($await)* {
                institutions.insert(c.unwrap().id.as_str().to_owned());
            }
            assert!(institutions.contains(HOOLI), "{institutions:?}");

            let mut consents = client.items(basiq::operations::ListConsents::new(user.clone()));
            while let Some(consent) = consents.next()$($await)* {
                consent.unwrap();
            }
            // An unsafe id never becomes a walk.
            assert_eq!(
                client.accounts().items("../x").unwrap_err().kind(),
                ErrorKind::InvalidId
            );
        }

        /// A `links.next` to another origin is refused before any request: the token stays home.
        #[$test]
        $($async)* fn cross_origin_next_link_is_refused() {
            let (server, clock) = server();
            let client = client(&server, &clock);
            let page: TransactionList = serde_json::from_value(serde_json::json!({
                "type": "list",
                "data": [],
                "links": {"next": "https://evil.example/users/u1/transactions?next=abc"}
            }))
            .unwrap();
            let before = server.stats();
            let err = client.transactions().next_page(&page)$($await)*.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(err.to_string().contains("another origin"), "{err}");
            assert_eq!(server.stats().requests, before.requests, "nothing was sent");
        }

        /// A connector in major outage: the job fails, and both `wait` and the daily triage say
        /// "their end" — `InstitutionOutage`, wait for the connector, the same class and action —
        /// instead of bothering the user or waiting on Basiq's retry queue.
        #[$test]
        $($async)* fn connector_outage_wait_and_triage_give_one_verdict() {
            let (server, _clock, client, user) = with_user("outage@example.com")$($await)*;
            assert!(client.users().triage(&user)$($await)*.unwrap().is_empty());
            assert_eq!(
                route_count(&server, "GET /connectors"),
                0,
                "nothing failed: /connectors not asked"
            );

            server.set_connector_status(HOOLI, "major-outage").unwrap();
            let connector = client
                .connectors()
                .get(HOOLI, ConnectionMethod::Web)$($await)*
                .unwrap();
            assert!(connector.status.is_outage());
            let report = connect_and_wait(&client, &user, ("jared", "django"))$($await)*;
            let diagnosis = report.diagnosis().unwrap();
            assert_eq!(diagnosis.failure.code.as_str(), "service-unavailable");
            // `wait` consulted /connectors too: their end, not Basiq's 2-hourly retry queue.
            assert_eq!(diagnosis.class, FailureClass::InstitutionOutage);
            assert_eq!(
                diagnosis.action,
                RecommendedAction::WaitForConnector { institution: Some(HOOLI.to_owned()) }
            );
            // Followed as a job of unknown kind, the same failure gets the same verdict.
            let again = client.jobs().wait(report.job_id(), PollConfig::default())$($await)*.unwrap();
            assert_eq!(again.diagnosis(), Some(diagnosis));

            let failures = client.users().triage(&user)$($await)*.unwrap();
            assert_eq!(failures.len(), 1, "{failures:?}");
            let f = &failures[0];
            assert_eq!(f.class, FailureClass::InstitutionOutage);
            // One verdict per failure: triage and wait agree on the class and the action.
            assert_eq!((&f.class, &f.action), (&diagnosis.class, &diagnosis.action));
            assert_eq!(f.user_id.as_ref(), Some(&user));
            assert_eq!(f.job_id, *report.job_id());
            assert!(route_count(&server, "GET /connectors") >= 1);
            assert!(client
                .connectors()
                .list()$($await)*
                .unwrap()
                .data
                .iter()
                .any(|c| c.id.as_str() == HOOLI));
        }

        /// Connections, accounts and connectors read through the resources; unsafe ids never leave.
        #[$test]
        $($async)* fn resources_read_and_refuse_unsafe_ids() {
            let (server, _clock, client, user) = with_user("res@example.com")$($await)*;
            let conn = connection_of(
                &connect_and_wait(&client, &user, ("jared", "django"))$($await)*,
            );

            let list = client.connections().list(&user)$($await)*.unwrap();
            assert_eq!(list.data.len(), 1);
            let got = client.connections().get(&user, &conn)$($await)*.unwrap();
            assert_eq!(got.status, ConnectionStatus::Active);
            let accounts = client.accounts().list(&user)$($await)*.unwrap();
            let account = &accounts.data[0];
            assert_eq!(
                client.accounts().get(&user, &account.id)$($await)*.unwrap().id,
                account.id
            );
            let filtered = client
                .accounts()
                .list_filtered(&user, format!("account.id.eq('{}')", account.id))$($await)*
                .unwrap();
            assert_eq!(filtered.data.len(), 1);
            let tx = &client
                .transactions()
                .list(&user, TransactionQuery::new().limit(1))$($await)*
                .unwrap()
                .data[0];
            assert_eq!(client.transactions().get(&user, &tx.id)$($await)*.unwrap().id, tx.id);

            let before = server.stats().requests;
            for bad in UNSAFE_IDS {
                let kinds = [
                    client.connections().get(&user, bad)$($await)*.unwrap_err().kind(),
                    client.connections().refresh(&user, bad)$($await)*.unwrap_err().kind(),
                    client.connections().purge(bad, &conn)$($await)*.unwrap_err().kind(),
                    client.accounts().get(&user, bad)$($await)*.unwrap_err().kind(),
                    client
                        .transactions()
                        .all(bad, TransactionQuery::new())$($await)*
                        .unwrap_err()
                        .kind(),
                    client
                        .jobs()
                        .wait(bad, PollConfig::default())$($await)*
                        .unwrap_err()
                        .kind(),
                    client.users().triage(bad)$($await)*.unwrap_err().kind(),
                    client.consent_url(bad, hooli())$($await)*.unwrap_err().kind(),
                ];
                assert!(
                    kinds.iter().all(|k| *k == ErrorKind::InvalidId),
                    "{bad:?}: {kinds:?}"
                );
            }
            assert_eq!(server.stats().requests, before);

            client.connections().delete(&user, &conn)$($await)*.unwrap();
            let err = client.connections().get(&user, &conn)$($await)*.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound);
            let ctx = err.context().unwrap();
            assert_eq!(ctx.user_id.as_ref(), Some(&user));
            assert_eq!(ctx.connection_id.as_ref(), Some(&conn));
        }

        /// plan_refreshes spreads many connections under the per-minute cap; no burst helper
        /// exists.
        #[$test]
        $($async)* fn plan_refreshes_spreads_under_the_cap() {
            let (server, clock) = server();
            let client = client(&server, &clock);
            let ids: Vec<ConnectionId> = (0..50)
                .map(|i| ConnectionId::new(format!("c{i}")).unwrap())
                .collect();
            let plan = client
                .connections()
                .plan_refreshes(&ids, Duration::from_secs(3600), clock.now());
            assert_eq!(plan.planned.len(), 50);
            assert!(plan.overflow.is_empty());
            for w in plan
                .planned
                .windows(basiq::DEFAULT_MAX_REFRESHES_PER_MINUTE as usize + 1)
            {
                let span = w[w.len() - 1].at - w[0].at;
                assert!(
                    span >= time::Duration::seconds(60),
                    "more than the cap within a minute"
                );
            }
            assert_eq!(server.stats().requests.len(), 0, "planning sends nothing");
        }
    };
}

mod async_client {
    use super::*;
    use basiq::{Client, ClientBuilder};
    use common::async_on_virtual_time as builder;
    use futures_util::StreamExt as _;

    flow_scenarios!(#[tokio::test(flavor = "multi_thread")], [async], [.await]);

    /// The helpers' futures are `Send`, so they can be spawned on a multi-threaded runtime.
    #[test]
    fn helper_futures_are_send() {
        fn assert_send<T: Send>(_: T) {}
        let client = Client::builder()
            .api_key("key")
            .base_url("http://127.0.0.1:9")
            .build()
            .unwrap();
        assert_send(client.jobs().wait("j", PollConfig::default()));
        assert_send(client.jobs().answer_mfa("j", "u", vec!["1234".into()]));
        assert_send(client.connections().refresh("u", "c"));
        assert_send(client.connections().refresh_unchecked("u", "c"));
        assert_send(client.consent_url("u", ConsentAction::connect()));
        assert_send(client.users().triage("u"));
        assert_send(client.transactions().all("u", TransactionQuery::new()));
        let mut items = client
            .transactions()
            .items("u", TransactionQuery::new())
            .unwrap();
        assert_send(items.next());
    }

    /// An owned stream, as an app uses one: returned from a function (no borrow of the client).
    fn transactions_of(
        client: &Client,
        user: &UserId,
    ) -> impl basiq::Stream<Item = Result<basiq::models::Transaction, basiq::Error>> + Send + 'static
    {
        client
            .transactions()
            .items(user, TransactionQuery::new().limit(100))
            .unwrap()
    }

    /// The stream outlives the client handle it came from, runs on another task, and takes
    /// `StreamExt` / `TryStreamExt` combinators.
    #[tokio::test(flavor = "multi_thread")]
    async fn streams_are_owned_spawnable_and_combinable() {
        use futures_util::{StreamExt as _, TryStreamExt as _};
        let (_server, _clock, client, user) = with_user("stream@example.com").await;
        assert!(connect_and_wait(&client, &user, ("jared", "django"))
            .await
            .is_success());
        let total = client
            .transactions()
            .list(&user, TransactionQuery::new())
            .await
            .unwrap()
            .size
            .unwrap() as usize;
        assert!(total > 100, "several pages: {total}");

        let stream = transactions_of(&client, &user);
        let other = client.clone();
        drop(client);
        let ids: Vec<String> =
            tokio::spawn(async move { stream.map_ok(|t| t.id.into_string()).try_collect().await })
                .await
                .unwrap()
                .unwrap();
        assert_eq!(ids.len(), total);
        assert_eq!(
            ids.iter().collect::<HashSet<_>>().len(),
            total,
            "no duplicates"
        );

        let first_five: Vec<_> = transactions_of(&other, &user)
            .take(5)
            .map(|t| t.unwrap().id)
            .collect()
            .await;
        assert_eq!(first_five.len(), 5);
        let pages: Vec<usize> = other
            .transactions()
            .pages(&user, TransactionQuery::new().limit(100))
            .unwrap()
            .map(|page| page.unwrap().data.len())
            .collect()
            .await;
        assert_eq!(pages.iter().sum::<usize>(), total);
        assert_eq!(pages.len(), total.div_ceil(100));
    }
}

mod blocking_client {
    use super::*;
    use basiq::blocking::{Client, ClientBuilder};
    use common::blocking_on_virtual_time as builder;

    flow_scenarios!(#[test], [], []);

    /// The blocking pager is an `Iterator` (and fused): `collect` walks every page.
    #[test]
    fn pager_is_an_iterator() {
        let (_server, _clock, client, user) = with_user("iter@example.com");
        assert!(connect_and_wait(&client, &user, ("jared", "django")).is_success());
        let total = client
            .transactions()
            .list(&user, TransactionQuery::new())
            .unwrap()
            .size
            .unwrap() as usize;
        let ids: HashSet<_> = client
            .transactions()
            .items(&user, TransactionQuery::new())
            .unwrap()
            .map(|t| t.unwrap().id)
            .collect();
        assert_eq!(ids.len(), total);
        // Owned: moved to another thread, the client handle dropped first.
        let items = client
            .transactions()
            .items(&user, TransactionQuery::new())
            .unwrap();
        drop(client);
        let moved = std::thread::spawn(move || {
            items
                .map(|t| t.map(|t| t.id))
                .collect::<Result<HashSet<_>, _>>()
                .unwrap()
                .len()
        });
        assert_eq!(moved.join().unwrap(), total);
    }
}
