//! basiq-core's generated operations against the emulator over real HTTP: each request is built
//! by the operation, sent as is, and the answer read by the operation's own `parse`. Proves that
//! the models read what the emulator (which follows Basiq's documented shapes) sends, that
//! `links.next` is followed with `pagination::NextPage` (same origin), and refresh's 200/202.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use basiq_core::api::operations::{
    DeleteConnection, GetAccount, GetConnection, GetConnector, GetTransaction, ListAccounts,
    ListConnections, ListConnectors, ListTransactions, PurgeConnection, RefreshAllConnections,
    RefreshConnection,
};
use basiq_core::engine::operation::{ApiBase, Operation};
use basiq_core::engine::transport::UrlForm;
use basiq_core::id::{ConnectionId, InstitutionId, UserId};
use basiq_core::policy::connectors::{ConnectionMethod, ConnectorStatusView};
use basiq_core::policy::pagination::Page;
use basiq_core::policy::refresh::{ConnectionStatus, ConnectionView, RefreshResponse};
use basiq_mock::MockServer;
use common::*;
use url::Url;

/// Builds the request with the operation (its URL as text, as ureq takes it), sends it with the
/// token, parses with the operation.
async fn run<O: Operation>(server: &MockServer, token: &str, op: &O) -> O::Output {
    let base = Url::parse(&server.url()).expect("base url");
    let request = op
        .request(&ApiBase::new(base, UrlForm::Text))
        .expect("request builds");
    let (method, url, headers, body) = request.into_parts();
    let response = http()
        .request(method, url.as_str())
        .headers(headers.into())
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .expect("send");
    let mut builder = http::Response::builder().status(response.status().as_u16());
    for (name, value) in response.headers() {
        builder = builder.header(name.as_str(), value.as_bytes());
    }
    let bytes = response.bytes().await.expect("body").to_vec();
    let response = builder.body(bytes).expect("response");
    match op.parse(response) {
        Ok(output) => output,
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn generated_operations_read_the_emulator() {
    let (server, _clock, token) = with_token().await;
    let user_raw = create_user(&server, &token).await;
    let job = connect(
        &server,
        &token,
        &user_raw,
        "AU00000",
        "Gilfoyle",
        "PiedPiper",
    )
    .await;
    server.advance(Duration::from_secs(60));
    let job = common::job(&server, &token, &job).await;
    let user = UserId::new(user_raw).expect("user id");
    let cid = ConnectionId::new(connection_of(&job)).expect("connection id");
    let base = Url::parse(&server.url()).expect("base url");

    // Connections.
    let list = run(&server, &token, &ListConnections::new(user.clone())).await;
    assert!(list.data.iter().any(|c| c.id == cid));
    let connection = run(
        &server,
        &token,
        &GetConnection::new(user.clone(), cid.clone()),
    )
    .await;
    assert_eq!(connection.status, ConnectionStatus::Active);
    assert!(matches!(
        connection.method,
        Some(ConnectionMethod::Web | ConnectionMethod::OpenBanking)
    ));
    let embedded = connection.accounts.as_ref().expect("accounts");
    assert!(!embedded.data.is_empty());
    assert!(embedded.data.iter().all(|a| a.balance.is_some()));
    let view = ConnectionView::from(&connection);
    assert_eq!(view.id, cid);

    // Accounts: money as exact decimals.
    let accounts = run(&server, &token, &ListAccounts::new(user.clone())).await;
    assert!(!accounts.data.is_empty());
    for account in &accounts.data {
        assert!(account.balance.is_some(), "{account:?}");
        assert_eq!(account.balance.map(|b| b.scale()), Some(2));
    }
    let first = accounts.data[0].id.clone();
    let account = run(
        &server,
        &token,
        &GetAccount::new(user.clone(), first.clone()),
    )
    .await;
    assert_eq!(account.id, first);

    // Transactions, walked page by page with NextPage (same origin as the base).
    let mut page = run(
        &server,
        &token,
        &ListTransactions::new(user.clone()).limit(40),
    )
    .await;
    let size = page.size.expect("size");
    let mut ids = HashSet::new();
    let mut pages = 1;
    loop {
        for tx in page.items() {
            assert!(
                tx.amount.is_some() && tx.transaction_date.is_some(),
                "{tx:?}"
            );
            assert!(ids.insert(tx.id.clone()), "duplicate {}", tx.id);
        }
        match page.next_page(&base).expect("same-origin next") {
            Some(next) => {
                page = run(&server, &token, &next).await;
                pages += 1;
            }
            None => break,
        }
    }
    assert_eq!(ids.len() as u64, size);
    assert!(pages > 1, "the fixture user has more than one page of 40");
    let any = ids.iter().next().expect("a transaction").clone();
    let tx = run(
        &server,
        &token,
        &GetTransaction::new(user.clone(), any.clone()),
    )
    .await;
    assert_eq!(tx.id, any);

    // Connectors.
    let connectors = run(&server, &token, &ListConnectors::new()).await;
    assert!(!connectors.data.is_empty());
    let hooli = run(
        &server,
        &token,
        &GetConnector::new(InstitutionId::new("AU00000").expect("id"), "web".into()),
    )
    .await;
    assert_eq!(hooli.method, ConnectionMethod::Web);
    let status = ConnectorStatusView::from(&hooli);
    assert!(status.applies_to("AU00000", Some(&ConnectionMethod::Web)));

    // Refresh: a new job (202), then the same one again (200).
    let refresh = RefreshConnection::new(user.clone(), cid.clone());
    let started = run(&server, &token, &refresh).await;
    assert!(
        matches!(started, RefreshResponse::Started(_)),
        "{started:?}"
    );
    let again = run(&server, &token, &refresh).await;
    assert_eq!(
        again,
        RefreshResponse::AlreadyRunning(started.job_id().clone())
    );
    let all = run(&server, &token, &RefreshAllConnections::new(user.clone())).await;
    assert!(all.data.iter().any(|j| &j.id == started.job_id()));

    // Purge (active only) and delete.
    server.advance(Duration::from_secs(60));
    run(
        &server,
        &token,
        &PurgeConnection::new(user.clone(), cid.clone()),
    )
    .await;
    run(
        &server,
        &token,
        &DeleteConnection::new(user.clone(), cid.clone()),
    )
    .await;
}
