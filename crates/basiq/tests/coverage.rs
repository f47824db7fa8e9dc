//! The whole surface, enumerated: each of the 56 operations of Basiq's v3 reference is in our
//! spec with an operation type, has a method on `basiq::Client` and on
//! `basiq::blocking::Client` (the bulk refresh excepted: it is reachable through `execute`, on
//! purpose), and an emulator route that answers it (counted by the emulator's per-route stats,
//! never its 404 fallback or a 405).
//!
//! One table, `surface_calls!`, names every operation with its type and the facade call; it is
//! stamped for both clients like `flows.rs`. The test fails if the table, our spec and Basiq's
//! list disagree in any direction.

mod common;

use std::collections::BTreeSet;

use basiq::connectors::ConnectionMethod;
use basiq::models::{
    AuthLinkRequest, NewReport, NewUser, SummaryRequest, TestMessageRequest, UserUpdate,
    WebhookRequest,
};
use basiq::statements::StatementFile;
use basiq::TransactionQuery;
use basiq_mock::MockServer;

/// Basiq's reference (`shared/basiq-spec/*.json`, snapshot of 2024-12-18): 56 operations, path
/// parameters written `{}`.
const BASIQ_REFERENCE: [&str; 56] = [
    "POST /token",
    "POST /users",
    "GET /users/{}",
    "POST /users/{}",
    "DELETE /users/{}",
    "GET /users/{}/consents",
    "DELETE /users/{}/consents/{}",
    "POST /users/{}/auth_link",
    "GET /users/{}/auth_link",
    "DELETE /users/{}/auth_link",
    "GET /events",
    "GET /events/{}",
    "GET /events/types",
    "GET /events/types/{}",
    "GET /users/{}/jobs",
    "GET /jobs/{}",
    "POST /jobs/{}/mfa",
    "GET /users/{}/accounts",
    "GET /users/{}/accounts/{}",
    "GET /users/{}/transactions",
    "GET /users/{}/transactions/{}",
    "GET /users/{}/connections",
    "POST /users/{}/connections/refresh",
    "GET /users/{}/connections/{}",
    "DELETE /users/{}/connections/{}",
    "POST /users/{}/connections/{}/refresh",
    "POST /users/{}/connections/{}/purge",
    "POST /users/{}/statements",
    "GET /connectors",
    "GET /connectors/{}/{}",
    "GET /users/{}/affordability",
    "POST /users/{}/affordability",
    "GET /users/{}/affordability/{}",
    "GET /users/{}/affordability/{}/transactions",
    "POST /users/{}/expenses",
    "GET /users/{}/expenses/{}",
    "POST /users/{}/income",
    "GET /users/{}/income/{}",
    "POST /reports",
    "GET /reports",
    "GET /reports/{}",
    "DELETE /reports/{}",
    "GET /reports/{}/transactions",
    "GET /reports/types",
    "GET /reports/types/{}",
    "POST /notifications/webhooks",
    "GET /notifications/webhooks",
    "POST /notifications/webhooks/{}",
    "DELETE /notifications/webhooks/{}",
    "GET /notifications/webhooks/{}",
    "GET /notifications/webhooks/{}/messages",
    "GET /notifications/webhooks/{}/messages/{}",
    "POST /notifications/messages/test",
    "GET /users/{}/identities",
    "GET /users/{}/identities/{}",
    "GET /enrich",
];

/// `GET /users/{userId}` → `GET /users/{}`.
fn normalize(route: &str) -> String {
    let (method, path) = route.split_once(' ').unwrap_or(("", route));
    let path: Vec<String> = path
        .split('/')
        .map(|s| {
            if s.starts_with('{') {
                "{}".to_owned()
            } else {
                s.to_owned()
            }
        })
        .collect();
    format!("{method} {}", path.join("/"))
}

/// Our spec's operations: normalized route → `x-operation-name`.
fn our_spec() -> Vec<(String, String)> {
    let text = include_str!("../../../fixtures/openapi/basiq.yaml");
    let doc: serde_json::Value = serde_norway::from_str(text).unwrap();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if let Some(op) = item.get(method) {
                let name = op["x-operation-name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                out.push((
                    normalize(&format!("{} {path}", method.to_uppercase())),
                    name,
                ));
            }
        }
    }
    out
}

/// The Rust type's last path segment, as `x-operation-name` spells it.
fn short(type_name: &str) -> String {
    type_name.rsplit("::").next().unwrap_or_default().to_owned()
}

/// Stamps `calls(client) -> Vec<(route, operation type, outcome)>` for one client flavour.
macro_rules! surface_calls {
    ([$($async:tt)*], [$($await:tt)*]) => {
        /// Every operation through the facade: `(route, operation type, the error if any)`.
        $($async)* fn calls(client: &Client, user: &str) -> Vec<(&'static str, String, Option<basiq::Error>)> {
            macro_rules! call {
                ($route:literal, $op:ty, $e:expr) => {
                    ($route, short(std::any::type_name::<$op>()), $e.err())
                };
            }
            use basiq::operations as ops;
            vec![
                call!("POST /token", basiq::token::PostToken, client.client_token(user)$($await)*),
                call!("POST /users", ops::CreateUser, client.users().create(NewUser { email: Some("a@b.co".into()), ..NewUser::default() })$($await)*),
                call!("GET /users/{}", ops::GetUser, client.users().get(user)$($await)*),
                call!("POST /users/{}", ops::UpdateUser, client.users().update(user, UserUpdate { middle_name: Some("G".into()), ..UserUpdate::default() })$($await)*),
                call!("GET /users/{}/consents", ops::ListConsents, client.consents().list(user)$($await)*),
                call!("DELETE /users/{}/consents/{}", ops::RevokeConsent, client.consents().revoke(user, "c1")$($await)*),
                call!("POST /users/{}/auth_link", ops::CreateAuthLink, client.auth_links().create(user, AuthLinkRequest::default())$($await)*),
                call!("GET /users/{}/auth_link", ops::GetAuthLink, client.auth_links().get(user)$($await)*),
                call!("DELETE /users/{}/auth_link", ops::DeleteAuthLink, client.auth_links().delete(user)$($await)*),
                call!("GET /events", ops::ListEvents, client.events().list()$($await)*),
                call!("GET /events/{}", ops::GetEvent, client.events().get("e1")$($await)*),
                call!("GET /events/types", ops::ListEventTypes, client.events().list_types()$($await)*),
                call!("GET /events/types/{}", ops::GetEventType, client.events().get_type("user.created")$($await)*),
                call!("GET /users/{}/jobs", ops::ListUserJobs, client.jobs().list_for_user(user)$($await)*),
                call!("GET /jobs/{}", ops::GetJob, client.jobs().get("j1")$($await)*),
                call!("POST /jobs/{}/mfa", basiq::mfa::AnswerJobMfa, client.jobs().answer_mfa("j1", user, vec!["1234".into()])$($await)*),
                call!("GET /users/{}/accounts", ops::ListAccounts, client.accounts().list(user)$($await)*),
                call!("GET /users/{}/accounts/{}", ops::GetAccount, client.accounts().get(user, "a1")$($await)*),
                call!("GET /users/{}/transactions", ops::ListTransactions, client.transactions().list(user, TransactionQuery::new())$($await)*),
                call!("GET /users/{}/transactions/{}", ops::GetTransaction, client.transactions().get(user, "t1")$($await)*),
                call!("GET /users/{}/connections", ops::ListConnections, client.connections().list(user)$($await)*),
                // No convenience method on purpose (Basiq warns against bulk refreshes).
                call!("POST /users/{}/connections/refresh", ops::RefreshAllConnections, client.execute(ops::RefreshAllConnections::new(user.try_into().unwrap()))$($await)*),
                call!("GET /users/{}/connections/{}", ops::GetConnection, client.connections().get(user, "c1")$($await)*),
                call!("POST /users/{}/connections/{}/refresh", ops::RefreshConnection, client.connections().refresh_unchecked(user, "c1")$($await)*),
                call!("POST /users/{}/connections/{}/purge", ops::PurgeConnection, client.connections().purge(user, "c1")$($await)*),
                call!("DELETE /users/{}/connections/{}", ops::DeleteConnection, client.connections().delete(user, "c1")$($await)*),
                call!("POST /users/{}/statements", basiq::statements::UploadStatement, client.statements().upload(user, "AU00001", StatementFile::new("a.csv", b"1".to_vec()))$($await)*),
                call!("GET /connectors", ops::ListConnectors, client.connectors().list()$($await)*),
                call!("GET /connectors/{}/{}", ops::GetConnector, client.connectors().get("AU00000", ConnectionMethod::Web)$($await)*),
                call!("GET /users/{}/affordability", ops::ListAffordability, client.affordability().list(user)$($await)*),
                call!("POST /users/{}/affordability", ops::CreateAffordability, client.affordability().create(user, SummaryRequest::default())$($await)*),
                call!("GET /users/{}/affordability/{}", ops::GetAffordability, client.affordability().get(user, "s1")$($await)*),
                call!("GET /users/{}/affordability/{}/transactions", ops::ListAffordabilityTransactions, client.affordability().transactions(user, "s1")$($await)*),
                call!("POST /users/{}/expenses", ops::CreateExpenses, client.expenses().create(user, SummaryRequest::default())$($await)*),
                call!("GET /users/{}/expenses/{}", ops::GetExpenses, client.expenses().get(user, "s1")$($await)*),
                call!("POST /users/{}/income", ops::CreateIncome, client.income().create(user, SummaryRequest::default())$($await)*),
                call!("GET /users/{}/income/{}", ops::GetIncome, client.income().get(user, "s1")$($await)*),
                call!("POST /reports", ops::CreateReport, client.reports().create(NewReport { report_type: "CON_AFFOR_01".into(), title: "t".into(), filters: vec![] })$($await)*),
                call!("GET /reports", ops::ListReports, client.reports().list()$($await)*),
                call!("GET /reports/{}", ops::GetReport, client.reports().get("r1")$($await)*),
                call!("DELETE /reports/{}", ops::DeleteReport, client.reports().delete("r1")$($await)*),
                call!("GET /reports/{}/transactions", ops::ListReportTransactions, client.reports().transactions("r1")$($await)*),
                call!("GET /reports/types", ops::ListReportTypes, client.reports().list_types()$($await)*),
                call!("GET /reports/types/{}", ops::GetReportType, client.reports().get_type("CON_AFFOR_01")$($await)*),
                call!("POST /notifications/webhooks", ops::CreateWebhook, client.webhooks().create(WebhookRequest { url: "https://example.com/h".into(), ..WebhookRequest::default() })$($await)*),
                call!("GET /notifications/webhooks", ops::ListWebhooks, client.webhooks().list()$($await)*),
                call!("POST /notifications/webhooks/{}", ops::UpdateWebhook, client.webhooks().update("w1", WebhookRequest { url: "https://example.com/h".into(), ..WebhookRequest::default() })$($await)*),
                call!("GET /notifications/webhooks/{}", ops::GetWebhook, client.webhooks().get("w1")$($await)*),
                call!("GET /notifications/webhooks/{}/messages", ops::ListWebhookMessages, client.webhooks().list_messages("w1")$($await)*),
                call!("GET /notifications/webhooks/{}/messages/{}", ops::GetWebhookMessage, client.webhooks().get_message("w1", "m1")$($await)*),
                call!("DELETE /notifications/webhooks/{}", ops::DeleteWebhook, client.webhooks().delete("w1")$($await)*),
                call!("POST /notifications/messages/test", ops::SendTestMessage, client.webhooks().send_test(TestMessageRequest { event_type_id: "user.created".into(), text: None })$($await)*),
                call!("GET /users/{}/identities", ops::ListIdentities, client.identities().list(user)$($await)*),
                call!("GET /users/{}/identities/{}", ops::GetIdentity, client.identities().get(user, "i1")$($await)*),
                call!("GET /enrich", ops::Enrich, client.enrich().merchant("WOOLWORTHS", "AU00000", "AU")$($await)*),
                call!("DELETE /users/{}", ops::DeleteUser, client.users().delete(user)$($await)*),
            ]
        }
    };
}

/// The checks shared by both clients: the table covers Basiq's reference and our spec exactly,
/// with the spec's operation types, and every call reached its emulator route.
fn check(server: &MockServer, calls: &[(&'static str, String, Option<basiq::Error>)]) {
    let reference: BTreeSet<String> = BASIQ_REFERENCE.iter().map(|r| r.to_string()).collect();
    assert_eq!(reference.len(), 56);
    let table: BTreeSet<String> = calls.iter().map(|(r, _, _)| r.to_string()).collect();
    assert_eq!(
        table, reference,
        "the table is Basiq's reference, no more, no less"
    );
    let spec = our_spec();
    let spec_routes: BTreeSet<String> = spec.iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(
        spec_routes, reference,
        "our spec covers Basiq's reference exactly"
    );
    for (route, op_type, _) in calls {
        let (_, name) = spec.iter().find(|(r, _)| r == route).unwrap();
        assert_eq!(
            name, op_type,
            "{route}: our spec's x-operation-name is the Rust type"
        );
    }
    let stats = server.stats();
    let served: BTreeSet<String> = stats
        .requests
        .keys()
        .map(|k| normalize(k))
        .chain(std::iter::once("POST /token".to_owned()).filter(|_| stats.token_requests > 0))
        .collect();
    let unserved: Vec<&String> = reference.iter().filter(|r| !served.contains(*r)).collect();
    assert!(
        unserved.is_empty(),
        "no emulator route answered: {unserved:?}"
    );
    for (route, _, err) in calls {
        if let Some(e) = err {
            let status = e.status().map(|s| s.as_u16());
            assert!(
                e.status().is_some() && status != Some(405) && status != Some(415),
                "{route}: did not reach a route that takes it: {e}"
            );
        }
    }
}

mod async_client {
    use super::*;
    use basiq::Client;

    surface_calls!([async], [.await]);

    #[tokio::test(flavor = "multi_thread")]
    async fn every_operation_has_a_method_and_a_route() {
        let server = MockServer::start();
        let client = common::async_client(&server);
        let user = client
            .users()
            .create(common::new_user("cover@example.com"))
            .await
            .unwrap()
            .id;
        let calls = calls(&client, user.as_str()).await;
        check(&server, &calls);
    }
}

mod blocking_client {
    use super::*;
    use basiq::blocking::Client;

    surface_calls!([], []);

    #[test]
    fn every_operation_has_a_method_and_a_route() {
        let server = MockServer::start();
        let client = common::blocking_client(&server);
        let user = client
            .users()
            .create(common::new_user("cover@example.com"))
            .unwrap()
            .id;
        let calls = calls(&client, user.as_str());
        check(&server, &calls);
    }
}

/// `BASIQ_REFERENCE` is Basiq's files, read again: where the reference snapshot sits beside the
/// checkout (`../shared/basiq-spec`, as on the project's machines and CI), its paths and methods
/// must be exactly the list above.
#[test]
fn the_reference_list_matches_basiqs_files() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/basiq-spec");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("{} not found: the list above is the record", dir.display());
        return;
    };
    let mut found = BTreeSet::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "json") {
            let doc: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            for (p, item) in doc["paths"].as_object().into_iter().flatten() {
                for method in ["get", "post", "put", "patch", "delete"] {
                    if item.get(method).is_some() {
                        found.insert(normalize(&format!("{} {p}", method.to_uppercase())));
                    }
                }
            }
        }
    }
    let listed: BTreeSet<String> = BASIQ_REFERENCE.iter().map(|r| r.to_string()).collect();
    assert_eq!(found, listed);
}
