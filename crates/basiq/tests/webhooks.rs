//! Webhooks drive freshness and the consent lifecycle, end to end over real HTTP: the emulator's
//! smart cache refreshes connections and delivers signed events to the app's receiver on
//! 127.0.0.1 (the `basiq::webhooks::axum` endpoint), on a virtual clock shared by the emulator,
//! the client and the receiver. Each scenario runs for both clients.

mod common;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use basiq::clock::ManualClock;
use basiq::consent_lifecycle::{ConsentFollowUp, ConsentPolicy, ConsentVerdict, PolicyGap};
use basiq::freshness::MemoryFreshnessLedger;
use basiq::id::{ConnectionId, InstitutionId, JobId, UserId};
use basiq::models::WebhookRequest;
use basiq::refresh::SkipReason;
use basiq::webhooks::{self, WebhookEvent, WebhookReceiver, WebhookSecret};
use basiq::{ConsentAction, ConsentOutcome, RefreshOutcome};
use basiq_mock::{DeliveryState, MockServer};
use common::{new_user, route_count, start_time, SubmitConsent, REFRESH_ROUTE};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const GET_CONNECTION: &str = "GET /users/{user_id}/connections/{connection_id}";

fn server(smart_cache: bool) -> (MockServer, ManualClock) {
    let clock = ManualClock::new(start_time());
    let server = MockServer::builder()
        .clock(clock.clone())
        .smart_cache(smart_cache)
        .start();
    (server, clock)
}

/// The app's receiver: the SDK's axum endpoint on its own thread and runtime (so the emulator
/// can deliver while a test thread blocks), collecting the typed events it is handed.
struct App {
    url: String,
    listener: Option<TcpListener>,
    events: Arc<Mutex<Vec<WebhookEvent>>>,
}

impl App {
    fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/basiq/webhooks", listener.local_addr().unwrap());
        Self {
            url,
            listener: Some(listener),
            events: Arc::default(),
        }
    }

    /// Serves `receiver`. With `lose_first_answer`, the first answer is replaced by a 500 after
    /// the app handled the message (an answer lost on the way back), so Basiq retries it.
    fn serve(&mut self, receiver: WebhookReceiver, lose_first_answer: bool) {
        let listener = self.listener.take().unwrap();
        listener.set_nonblocking(true).unwrap();
        let sink = self.events.clone();
        let lost = Arc::new(AtomicBool::new(!lose_first_answer));
        let endpoint = webhooks::axum::endpoint(receiver, move |event| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(event);
                Ok::<(), std::convert::Infallible>(())
            }
        });
        let app = axum::Router::new()
            .route("/basiq/webhooks", endpoint)
            .layer(axum::middleware::map_response(
                move |mut response: axum::response::Response| {
                    let lost = lost.clone();
                    async move {
                        if !lost.swap(true, Ordering::SeqCst) {
                            *response.status_mut() = axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                        }
                        response
                    }
                },
            ));
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
    }

    fn events(&self) -> Vec<WebhookEvent> {
        self.events.lock().unwrap().clone()
    }
}

fn subscription(url: &str, events: &[&str]) -> WebhookRequest {
    WebhookRequest {
        name: Some("app".into()),
        url: url.to_owned(),
        subscribed_events: events.iter().map(|e| (*e).to_owned()).collect(),
        ..WebhookRequest::default()
    }
}

/// The receiver for a subscription's secret, on the virtual clock.
fn receiver_for(secret: Option<String>, clock: &ManualClock) -> WebhookReceiver {
    let secret =
        WebhookSecret::new(&secret.expect("the create answer carries the secret")).unwrap();
    WebhookReceiver::new(secret).clock(Arc::new(clock.clone()))
}

macro_rules! webhook_scenarios {
    (#[$test:meta], [$($async:tt)*], [$($await:tt)*]) => {
        /// A new user connected to Hooli through the Consent UI stand-in: (user, connection).
        $($async)* fn connected_user(client: &Client, email: &str, institution: &str) -> (UserId, ConnectionId) {
            let user = client.users().create(new_user(email))$($await)*.unwrap().id;
            let action = ConsentAction::connect_to(InstitutionId::new(institution).unwrap());
            let ConsentOutcome::Link(link) = client.consent_url(&user, action)$($await)*.unwrap() else {
                panic!("expected a consent link");
            };
            let job = JobId::new(
                client.execute(SubmitConsent::new(&link, Some(("jared", "django"))))$($await)*.unwrap(),
            )
            .unwrap();
            let job = client.jobs().get(&job)$($await)*.unwrap();
            (user, job.connection_id().expect("the job names its connection"))
        }

        #[$test]
        $($async)* fn the_smart_cache_keeps_100_connections_fresh_for_30_days_without_ad_hoc_refreshes() {
            let (server, clock) = server(true);
            let ledger = Arc::new(MemoryFreshnessLedger::new());
            let client = builder(&server, &clock).freshness_ledger(ledger.clone()).build().unwrap();
            let mut app = App::bind();
            let webhook = client
                .webhooks()
                .create(subscription(&app.url, &["transactions.updated"]))
                $($await)*
                .unwrap();
            app.serve(receiver_for(webhook.secret, &clock).freshness_ledger(ledger.clone()), false);

            let mut connections = Vec::new();
            for i in 0..100 {
                connections.push(connected_user(&client, &format!("u{i}@example.com"), "AU00000")$($await)*);
            }
            server.advance(Duration::from_secs(60)); // the connect jobs finish
            for day in 1..=30 {
                server.advance(DAY);
                for (user, connection) in &connections {
                    let outcome = client.connections().refresh(user, connection)$($await)*.unwrap();
                    assert!(
                        matches!(outcome, RefreshOutcome::Skipped(SkipReason::RefreshedByBasiq { .. })),
                        "day {day}, {connection}: {outcome:?}"
                    );
                }
            }

            let stats = server.stats();
            assert!(stats.refreshes.is_empty(), "ad-hoc refreshes: {:?}", stats.refreshes);
            assert_eq!(route_count(&server, REFRESH_ROUTE), 0);
            assert_eq!(route_count(&server, GET_CONNECTION), 0, "the skip read nothing from Basiq");
            let background: u64 = stats.background_refreshes.values().sum();
            assert_eq!(background, 30 * 100, "the smart cache refreshed each connection daily");
            let refreshed_events = app
                .events()
                .iter()
                .filter(|e| matches!(e, WebhookEvent::TransactionsUpdated(_)))
                .count();
            // One per connect job and one per background refresh, each signed and verified.
            assert_eq!(refreshed_events, 100 + 3000);
            assert!(server
                .webhook_deliveries()
                .iter()
                .all(|d| d.state == DeliveryState::Delivered && d.attempts.len() == 1));
        }

        #[$test]
        $($async)* fn a_delivery_retried_after_a_lost_answer_reaches_the_app_once() {
            let (server, clock) = server(false);
            let client = builder(&server, &clock).build().unwrap();
            let mut app = App::bind();
            let webhook = client.webhooks().create(subscription(&app.url, &["user.created"]))$($await)*.unwrap();
            app.serve(receiver_for(webhook.secret, &clock), true);
            let user = client.users().create(new_user("once@example.com"))$($await)*.unwrap().id;
            server.advance(Duration::from_secs(60));

            let deliveries = server.webhook_deliveries();
            assert_eq!(deliveries.len(), 1);
            let attempts: Vec<_> = deliveries[0].attempts.iter().map(|a| a.status).collect();
            assert_eq!(attempts, [Some(500), Some(204)], "retried 5 s later, then acknowledged");
            let events = app.events();
            assert_eq!(events.len(), 1, "handled once: {events:?}");
            assert!(matches!(&events[0], WebhookEvent::UserCreated(_)));
            assert_eq!(events[0].user_id(), Some(&user));
            // The linked event, fetched with the client.
            let event = client.webhook_event(&events[0])$($await)*.unwrap();
            assert_eq!(event.user_id.as_deref(), Some(user.as_str()));
        }

        #[$test]
        $($async)* fn a_consent_warned_seven_days_before_expiry_yields_a_reconsent_link() {
            let (server, clock) = server(false);
            let client = builder(&server, &clock).build().unwrap();
            let mut app = App::bind();
            let webhook = client.webhooks().create(subscription(&app.url, &["consent.warning"]))$($await)*.unwrap();
            app.serve(receiver_for(webhook.secret, &clock), false);
            let (user, _) = connected_user(&client, "warned@example.com", "AU00000")$($await)*;
            server.advance(Duration::from_secs(357 * 24 * 3600));
            assert!(app.events().is_empty(), "no warning 8 days before expiry");
            server.advance(DAY);

            let events = app.events();
            assert_eq!(events.len(), 1, "{events:?}");
            assert!(matches!(&events[0], WebhookEvent::ConsentWarning(_)));
            assert_eq!(events[0].user_id(), Some(&user));
            let review = client.consent_lifecycle(&user, &ConsentPolicy::new())$($await)*.unwrap();
            assert!(matches!(review.verdict, ConsentVerdict::ExpiringSoon { .. }), "{review:?}");
            let link = review.reconsent_link().expect("a re-consent link");
            assert!(link.expose_url().query_pairs().any(|(k, v)| k == "action" && v == "extend"));
        }

        #[$test]
        $($async)* fn a_revoked_consent_purges_each_active_connection_once() {
            let (server, clock) = server(false);
            let client = builder(&server, &clock).build().unwrap();
            let mut app = App::bind();
            let webhook = client.webhooks().create(subscription(&app.url, &["consent.revoked"]))$($await)*.unwrap();
            app.serve(receiver_for(webhook.secret, &clock), false);
            let (user, first) = connected_user(&client, "revoked@example.com", "AU00000")$($await)*;
            server.advance(Duration::from_secs(60));
            let second = {
                // Hooli's open-banking connector: a second connection of the same user.
                let action = ConsentAction::connect_to(InstitutionId::new("AU00001").unwrap());
                let ConsentOutcome::Link(link) = client.consent_url(&user, action)$($await)*.unwrap() else {
                    panic!("expected a consent link");
                };
                let job = JobId::new(client.execute(SubmitConsent::new(&link, Some(("jared", "django"))))$($await)*.unwrap()).unwrap();
                client.jobs().get(&job)$($await)*.unwrap().connection_id().unwrap()
            };
            server.advance(Duration::from_secs(600));
            let consent = client.consents().list(&user)$($await)*.unwrap().data.remove(0);
            client.consents().revoke(&user, consent.id)$($await)*.unwrap();
            server.advance(Duration::from_secs(60));

            // The app handles each consent.revoked it is handed (once per message).
            for event in app.events() {
                assert!(event.ends_consent(), "{event:?}");
                let review = client
                    .consent_lifecycle(event.user_id().unwrap(), &ConsentPolicy::new())
                    $($await)*
                    .unwrap();
                let ConsentFollowUp::Purged(report) = review.follow_up else {
                    panic!("expected purges: {review:?}");
                };
                let mut purged = report.purged.clone();
                purged.sort();
                let mut expected = vec![first.clone(), second.clone()];
                expected.sort();
                assert_eq!(purged, expected);
                assert_eq!(report.delete_locally.len(), 2);
            }
            let purges = server.stats().purges;
            assert_eq!(purges.get(first.as_str()), Some(&1), "{purges:?}");
            assert_eq!(purges.get(second.as_str()), Some(&1), "{purges:?}");
            assert_eq!(purges.len(), 2);
        }

        #[$test]
        $($async)* fn consents_predating_the_apps_policy_ask_for_a_reconsent() {
            let (server, clock) = server(false);
            let client = builder(&server, &clock).build().unwrap();
            let (user, _) = connected_user(&client, "policy@example.com", "AU00000")$($await)*;
            server.advance(Duration::from_secs(60));
            let unchanged = ConsentPolicy::new().require_scopes(["TRANSACTION_DETAILS"]);
            let review = client.consent_lifecycle(&user, &unchanged)$($await)*.unwrap();
            assert!(matches!(review.verdict, ConsentVerdict::Current { .. }), "{review:?}");
            assert!(matches!(review.follow_up, ConsentFollowUp::Nothing));

            let wider = unchanged.clone().require_scopes(["CUSTOMER_DETAILS"]);
            let review = client.consent_lifecycle(&user, &wider)$($await)*.unwrap();
            let ConsentVerdict::PredatesPolicy { gaps, .. } = &review.verdict else {
                panic!("{review:?}");
            };
            assert!(matches!(&gaps[..], [PolicyGap::MissingScopes(_)]), "{gaps:?}");
            assert!(review.reconsent_link().is_some());

            let newer = ConsentPolicy::new().effective_from(clock_now(&server));
            let review = client.consent_lifecycle(&user, &newer)$($await)*.unwrap();
            assert!(matches!(review.verdict, ConsentVerdict::PredatesPolicy { .. }), "{review:?}");
        }
    };
}

fn clock_now(server: &MockServer) -> time::OffsetDateTime {
    server.now()
}

mod async_client {
    use super::*;
    use basiq::Client;
    use common::async_on_virtual_time as builder;

    webhook_scenarios!(#[tokio::test(flavor = "multi_thread")], [async], [.await]);
}

mod blocking_client {
    use super::*;
    use basiq::blocking::Client;
    use common::blocking_on_virtual_time as builder;

    webhook_scenarios!(#[test], [], []);
}

/// Whatever reaches the endpoint that Basiq did not sign, now, with this secret, is refused with
/// the right status and never handed to the app.
#[test]
fn tampered_stale_wrong_secret_and_malformed_messages_never_reach_the_app() {
    let clock = ManualClock::new(start_time());
    let secret = WebhookSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let other = WebhookSecret::new("whsec_c2VjcmV0LXR3by1mb3Itcm90YXRpb24=").unwrap();
    let mut app = App::bind();
    let url = app.url.clone();
    app.serve(
        WebhookReceiver::new(secret.clone()).clock(Arc::new(clock.clone())),
        false,
    );
    let body = br#"{"eventTypeId":"user.created","eventId":"e1","links":{"event":"https://au-api.basiq.io/events/e1","eventEntity":"https://au-api.basiq.io/users/u1"}}"#;
    let now = start_time().unix_timestamp();
    let post = |id: &str, timestamp: i64, signature: &str, body: &[u8]| -> u16 {
        match ureq::post(&url)
            .set("content-type", "application/json")
            .set("webhook-id", id)
            .set("webhook-timestamp", &timestamp.to_string())
            .set("webhook-signature", signature)
            .send_bytes(body)
        {
            Ok(response) => response.status(),
            Err(ureq::Error::Status(status, _)) => status,
            Err(e) => panic!("{e}"),
        }
    };
    let signed = |s: &WebhookSecret, id: &str, t: i64, b: &[u8]| webhooks::sign(s, id, t, b);

    let mut tampered = body.to_vec();
    tampered[20] ^= 1;
    assert_eq!(
        post("m1", now, &signed(&secret, "m1", now, body), &tampered),
        401,
        "tampered"
    );
    let stale = now - 301;
    assert_eq!(
        post("m2", stale, &signed(&secret, "m2", stale, body), body),
        401,
        "stale"
    );
    assert_eq!(
        post("m3", now, &signed(&other, "m3", now, body), body),
        401,
        "wrong secret"
    );
    assert_eq!(post("m4", now, "", body), 400, "no signature");
    let junk = b"{\"hello\":1}";
    assert_eq!(
        post("m5", now, &signed(&secret, "m5", now, junk), junk),
        400,
        "malformed"
    );
    assert!(app.events().is_empty(), "nothing reached the app");

    // The real one does, once, however often it is delivered.
    assert_eq!(
        post("m6", now, &signed(&secret, "m6", now, body), body),
        204
    );
    clock.advance(Duration::from_secs(5));
    let later = now + 5;
    assert_eq!(
        post("m6", later, &signed(&secret, "m6", later, body), body),
        204
    );
    assert_eq!(app.events().len(), 1);
}
