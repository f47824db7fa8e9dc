//! The endpoints beyond the best practices (consents, auth links, events, statements,
//! identities, summaries, reports, enrich, webhooks) against the emulator over real loopback
//! HTTP, for both clients: every scenario is written once in `surface_scenarios!` and stamped out
//! as `async_client::<scenario>` and `blocking_client::<scenario>`, like `flows.rs`. Jobs are
//! followed on the shared virtual clock (the injected sleep advances it; nothing really sleeps).

mod common;

use basiq::id::{InstitutionId, UserId};
use basiq::jobs::{JobKind, PollConfig};
use basiq::models::{
    AuthLinkRequest, ConsentStatus, NewReport, ReportFilter, SummaryRequest, TestMessageRequest,
    WebhookRequest,
};
use basiq::statements::StatementFile;
use basiq::{ConsentAction, ConsentOutcome, ErrorKind, WaitOutcome};
use basiq_mock::MockServer;
use common::{new_user, route_count, SubmitConsent};

use basiq::clock::ManualClock;
use common::virtual_time_server as server;

const HOOLI: &str = "AU00000";
/// A real-bank connector: statements cannot be uploaded for the test bank AU00000.
const STATEMENT_BANK: &str = "AU00001";
const GOOD_LOGIN: (&str, &str) = ("gavinBelson", "hooli2016");
const STATEMENT_ROUTE: &str = "POST /users/{user_id}/statements";

macro_rules! surface_scenarios {
    (#[$test:meta], [$($async:tt)*], [$($await:tt)*]) => {
        fn client(server: &MockServer, clock: &ManualClock) -> Client {
            builder(server, clock).build().unwrap()
        }

        /// The emulator, a client, and a user with one active Hooli connection whose job was
        /// followed to success.
        $($async)* fn connected(email: &str) -> (MockServer, ManualClock, Client, UserId) {
            let (server, clock) = server();
            let client = client(&server, &clock);
            let user = client.users().create(new_user(email))$($await)*.unwrap().id;
            let action = ConsentAction::connect_to(InstitutionId::new(HOOLI).unwrap());
            let ConsentOutcome::Link(link) = client.consent_url(&user, action)$($await)*.unwrap() else {
                panic!("expected a consent link");
            };
            let job = client.execute(SubmitConsent::new(&link, Some(GOOD_LOGIN)))$($await)*.unwrap();
            let report = client
                .jobs()
                .wait_as(job.as_str(), JobKind::Create, PollConfig::default())$($await)*
                .unwrap();
            assert!(report.is_success(), "{report:?}");
            (server, clock, client, user)
        }

        /// After a connection was made, `GET /events` lists what happened to the user, newest
        /// first; the filter narrows it; each event can be fetched by id; event types too.
        #[$test]
        $($async)* fn events_are_listed_after_a_connection() {
            let (_server, _clock, client, user) = connected("events@example.com")$($await)*;
            let events = client.events().list()$($await)*.unwrap();
            let types: Vec<String> = events
                .data
                .iter()
                .map(|e| format!("{}.{}", e.entity.as_deref().unwrap_or(""), e.event_type.as_deref().unwrap_or("")))
                .collect();
            for expected in ["user.created", "connection.created", "consent.created", "account.updated", "transactions.updated"] {
                assert!(types.iter().any(|t| t == expected), "{expected} missing from {types:?}");
            }
            assert_eq!(types.first().map(String::as_str), Some("transactions.updated"), "newest first: {types:?}");
            assert!(events.data.iter().all(|e| e.user_id.as_deref() == Some(user.as_str())));

            let only = client
                .events()
                .list_filtered(format!("event.type.eq('connection.created'),user.id.eq('{user}')"))$($await)*
                .unwrap();
            assert_eq!(only.data.len(), 1);
            let event = client.events().get(only.data[0].id.clone())$($await)*.unwrap();
            assert_eq!(event.entity.as_deref(), Some("connection"));
            assert_eq!(event.data.as_ref().unwrap()["type"], "connection");

            let kinds = client.events().list_types()$($await)*.unwrap();
            assert!(kinds.data.iter().any(|t| t.id == "consent.revoked"));
            let kind = client.events().get_type("transactions.updated")$($await)*.unwrap();
            assert!(kind.description.is_some());
            let missing = client.events().get("no-such-event")$($await)*.unwrap_err();
            assert_eq!(missing.kind(), ErrorKind::NotFound);
        }

        /// The connection's consent is active with an expiry; revoking it makes it `revoked`
        /// (twice is harmless) and records a `consent.revoked` event.
        #[$test]
        $($async)* fn a_consent_is_revoked() {
            let (_server, _clock, client, user) = connected("consent@example.com")$($await)*;
            let consents = client.consents().list(&user)$($await)*.unwrap();
            assert_eq!(consents.data.len(), 1);
            let consent = &consents.data[0];
            assert_eq!(consent.status, Some(ConsentStatus::Active));
            assert!(consent.expiry_date.unwrap() > consent.created.unwrap());

            client.consents().revoke(&user, consent.id.clone())$($await)*.unwrap();
            client.consents().revoke(&user, consent.id.clone())$($await)*.unwrap();
            let after = client.consents().list(&user)$($await)*.unwrap();
            assert_eq!(after.data[0].status, Some(ConsentStatus::Revoked));
            assert!(after.data[0].revoked.is_some());
            let revoked = client.events().list_filtered("event.type.eq('consent.revoked')")$($await)*.unwrap();
            assert_eq!(revoked.data.len(), 1, "one event for two revocations");
            let unknown = client.consents().revoke(&user, "no-such-consent")$($await)*.unwrap_err();
            assert_eq!(unknown.kind(), ErrorKind::NotFound);
        }

        /// An auth link works until deleted (then 410), and a new one expires after its TTL
        /// (410 again) on the virtual clock.
        #[$test]
        $($async)* fn auth_links_expire_and_are_deleted() {
            let (server, clock) = server();
            let client = client(&server, &clock);
            let user = client.users().create(new_user("link@example.com"))$($await)*.unwrap().id;
            let body = AuthLinkRequest { mobile: Some("+61410888999".into()) };
            let link = client.auth_links().create(&user, body)$($await)*.unwrap();
            assert_eq!(link.mobile.as_deref(), Some("+61410888999"));
            assert!(link.links.as_ref().unwrap().public.as_deref().unwrap().starts_with("http"));
            let read = client.auth_links().get(&user)$($await)*.unwrap();
            assert_eq!(read.id, link.id);
            client.auth_links().delete(&user)$($await)*.unwrap();
            let gone = client.auth_links().get(&user)$($await)*.unwrap_err();
            assert_eq!(gone.status().map(|s| s.as_u16()), Some(410), "{gone}");

            client.auth_links().create(&user, AuthLinkRequest::default())$($await)*.unwrap();
            clock.advance(std::time::Duration::from_secs(7 * 24 * 3600));
            let expired = client.auth_links().get(&user)$($await)*.unwrap_err();
            assert_eq!(expired.status().map(|s| s.as_u16()), Some(410), "{expired}");
        }

        /// A CSV the emulator really parses becomes a statement job that `wait` follows to
        /// success; an empty file or another type is refused before anything is sent; a file
        /// over the limit is a typed 413.
        #[$test]
        $($async)* fn a_statement_upload_becomes_a_job() {
            let (server, clock) = server();
            let client = client(&server, &clock);
            let user = client.users().create(new_user("statement@example.com"))$($await)*.unwrap().id;
            let csv = StatementFile::new("march.csv", b"date,description,amount\n2026-03-01,COFFEE,-4.50\n".to_vec());
            let job = client.statements().upload(&user, STATEMENT_BANK, csv)$($await)*.unwrap();
            let report = client.jobs().wait(&job.id, PollConfig::default())$($await)*.unwrap();
            assert_eq!(report.outcome, WaitOutcome::Succeeded, "{report:?}");
            assert_eq!(report.job.steps.len(), 3);
            assert!(report.job.created.is_some(), "createdDate is read as created");
            assert_eq!(route_count(&server, STATEMENT_ROUTE), 1);
            let jobs = client.jobs().list_for_user(&user)$($await)*.unwrap();
            assert!(jobs.data.iter().any(|j| j.id == job.id), "the user's jobs list it");

            for file in [
                StatementFile::new("march.csv", Vec::new()),
                StatementFile::new("march.xlsx", b"PK\x03\x04".to_vec()),
            ] {
                let err = client.statements().upload(&user, STATEMENT_BANK, file)$($await)*.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            }
            assert_eq!(route_count(&server, STATEMENT_ROUTE), 1, "refused before sending");

            let big = StatementFile::new("big.csv", vec![b'1'; basiq_mock::STATEMENT_MAX_BYTES + 1]);
            let err = client.statements().upload(&user, STATEMENT_BANK, big)$($await)*.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::PayloadTooLarge, "{err}");
            let test_bank = StatementFile::new("a.csv", b"1".to_vec());
            let err = client.statements().upload(&user, HOOLI, test_bank)$($await)*.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::BadRequest, "{err}");
        }

        /// A report is a job: `wait` follows it, `report_id` names the report, whose metrics come
        /// from the user's transactions; its transactions page; delete removes it.
        #[$test]
        $($async)* fn a_report_is_followed_to_its_result() {
            let (_server, _clock, client, user) = connected("report@example.com")$($await)*;
            let types = client.reports().list_types()$($await)*.unwrap();
            let report_type = types.data[0].id.clone();
            assert_eq!(client.reports().get_type(report_type.clone())$($await)*.unwrap().id, report_type);
            let body = NewReport {
                report_type,
                title: "Affordability".into(),
                filters: vec![ReportFilter { name: "users".into(), value: Some(serde_json::json!([user.as_str()])) }],
            };
            let job = client.reports().create(body)$($await)*.unwrap();
            let done = client.jobs().wait(&job.id, PollConfig::default())$($await)*.unwrap();
            assert!(done.is_success(), "{done:?}");
            assert_eq!(done.job.status.as_deref(), Some("success"));
            let id = done.report_id().expect("the create-report step links the report").to_owned();
            let report = client.reports().get(id.clone())$($await)*.unwrap();
            let metrics = &report.data.as_ref().unwrap()["metrics"];
            let count = metrics.as_array().unwrap().iter().find(|m| m["id"] == "TRANSACTION_COUNT").unwrap();
            let page = client.reports().transactions(id.clone())$($await)*.unwrap();
            assert_eq!(count["value"], page.size.unwrap().to_string());
            assert!(!page.data.is_empty());
            assert_eq!(client.reports().list()$($await)*.unwrap().data.len(), 1);
            client.reports().delete(id.clone())$($await)*.unwrap();
            assert_eq!(client.reports().get(id)$($await)*.unwrap_err().kind(), ErrorKind::NotFound);
        }

        /// Identities come from the connection; the summaries are computed from the
        /// transactions and read back by id.
        #[$test]
        $($async)* fn identities_and_summaries() {
            let (_server, _clock, client, user) = connected("summary@example.com")$($await)*;
            let identities = client.identities().list(&user)$($await)*.unwrap();
            assert_eq!(identities.data.len(), 1);
            let identity = client.identities().get(&user, identities.data[0].id.clone())$($await)*.unwrap();
            assert_eq!(identity.first_name.as_deref(), Some("Gavin"));
            assert!(identity.date_of_birth.is_some());

            let snapshot = client.affordability().create(&user, SummaryRequest::default())$($await)*.unwrap().expect("a snapshot");
            assert!(snapshot.coverage_days.unwrap() > 0);
            assert_eq!(snapshot.institutions, [HOOLI], "the connection's institution");
            let again = client.affordability().get(&user, snapshot.id.clone())$($await)*.unwrap();
            assert_eq!(again.summary, snapshot.summary);
            assert_eq!(client.affordability().list(&user)$($await)*.unwrap().data.len(), 1);
            let page = client.affordability().transactions(&user, snapshot.id.clone())$($await)*.unwrap();
            assert!(!page.data.is_empty());

            let expenses = client.expenses().create(&user, SummaryRequest::default())$($await)*.unwrap().expect("expenses");
            assert_eq!(client.expenses().get(&user, expenses.id.clone())$($await)*.unwrap().bank_fees, expenses.bank_fees);
            let income = client.income().create(&user, SummaryRequest::default())$($await)*.unwrap().expect("income");
            assert_eq!(client.income().get(&user, income.id.clone())$($await)*.unwrap().summary, income.summary);
            let bad_month = SummaryRequest { from_month: Some("2026-13".into()), ..SummaryRequest::default() };
            let err = client.income().create(&user, bad_month)$($await)*.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::BadRequest);
            assert_eq!(client.income().get(&user, "nope")$($await)*.unwrap_err().kind(), ErrorKind::NotFound);

            // Nothing to summarise (no transactions in the period): Basiq answers 204, the
            // SDK `None`, and no snapshot is stored.
            let empty = SummaryRequest { from_month: Some("1999-01".into()), to_month: Some("1999-02".into()), ..SummaryRequest::default() };
            assert!(client.affordability().create(&user, empty.clone())$($await)*.unwrap().is_none());
            assert!(client.expenses().create(&user, empty.clone())$($await)*.unwrap().is_none());
            assert!(client.income().create(&user, empty)$($await)*.unwrap().is_none());
            assert_eq!(client.affordability().list(&user)$($await)*.unwrap().data.len(), 1);
        }

        /// Enrich names the merchant; a blank required parameter is refused before sending.
        #[$test]
        $($async)* fn enrich_identifies_a_merchant() {
            let (server, clock) = server();
            let client = client(&server, &clock);
            let found = client.enrich().merchant("WOOLWORTHS 1234 SYDNEY", HOOLI, "AU")$($await)*.unwrap();
            let merchant = &found.data.as_ref().unwrap().merchant.as_ref().unwrap()["businessName"];
            assert_eq!(merchant, "Woolworths");
            let err = client.enrich().merchant("  ", HOOLI, "AU")$($await)*.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert_eq!(route_count(&server, "GET /enrich"), 1);
        }

        /// Subscriptions: create (with the signing secret), list, update, a test message listed
        /// as a message of the subscription, delete.
        #[$test]
        $($async)* fn webhook_subscriptions_and_messages() {
            let (server, clock) = server();
            let client = client(&server, &clock);
            let body = WebhookRequest {
                name: Some("main".into()),
                url: "https://example.com/hooks".into(),
                subscribed_events: vec!["connection.created".into()],
                ..WebhookRequest::default()
            };
            let hook = client.webhooks().create(body.clone())$($await)*.unwrap();
            assert!(hook.secret.as_deref().unwrap().starts_with("whsec_"));
            let dup = client.webhooks().create(body.clone())$($await)*.unwrap_err();
            assert_eq!(dup.status().map(|s| s.as_u16()), Some(409));
            assert_eq!(client.webhooks().list()$($await)*.unwrap().data.len(), 1);
            let changed = WebhookRequest { name: Some("renamed".into()), ..body };
            let updated = client.webhooks().update(hook.id.clone(), changed)$($await)*.unwrap();
            assert_eq!(updated.name.as_deref(), Some("renamed"));
            assert_eq!(client.webhooks().get(hook.id.clone())$($await)*.unwrap().name.as_deref(), Some("renamed"));

            let test = TestMessageRequest { event_type_id: "connection.created".into(), text: None };
            client.webhooks().send_test(test)$($await)*.unwrap();
            let other = TestMessageRequest { event_type_id: "user.created".into(), text: None };
            client.webhooks().send_test(other)$($await)*.unwrap();
            let messages = client.webhooks().list_messages(hook.id.clone())$($await)*.unwrap();
            assert_eq!(messages.data.len(), 1, "only the subscribed type");
            let message = &messages.data[0];
            assert_eq!(message.event_type_id.as_deref(), Some("connection.created"));
            let event_id = message.event_id.clone().unwrap();
            assert_eq!(client.events().get(event_id)$($await)*.unwrap().entity.as_deref(), Some("connection"));
            let read = client.webhooks().get_message(hook.id.clone(), message.id.clone())$($await)*.unwrap();
            assert_eq!(read.id, message.id);

            client.webhooks().delete(hook.id.clone())$($await)*.unwrap();
            assert_eq!(client.webhooks().get(hook.id)$($await)*.unwrap_err().kind(), ErrorKind::NotFound);
        }

        /// Ids are validated before any request: a path trick never reaches the emulator.
        #[$test]
        $($async)* fn path_tricks_are_refused_locally() {
            let (server, clock) = server();
            let client = client(&server, &clock);
            for bad in common::UNSAFE_IDS {
                assert_eq!(client.reports().get(bad)$($await)*.unwrap_err().kind(), ErrorKind::InvalidId);
                assert_eq!(client.webhooks().get(bad)$($await)*.unwrap_err().kind(), ErrorKind::InvalidId);
                assert_eq!(client.consents().list(bad)$($await)*.unwrap_err().kind(), ErrorKind::InvalidId);
            }
            assert_eq!(common::total_requests(&server.stats()), 0);
        }
    };
}

mod async_client {
    use super::*;
    use basiq::Client;
    use common::async_on_virtual_time as builder;

    surface_scenarios!(#[tokio::test(flavor = "multi_thread")], [async], [.await]);
}

mod blocking_client {
    use super::*;
    use basiq::blocking::Client;
    use common::blocking_on_virtual_time as builder;

    surface_scenarios!(#[test], [], []);
}
