//! Accounts and transactions over HTTP: pagination, limit validation, filters, purge/refresh.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use basiq_mock::MockServer;
use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A server with one user whose Gilfoyle connection to Hooli (AU00000) has finished its job.
struct Fixture {
    server: MockServer,
    token: String,
    user: String,
    connection: String,
}

async fn fixture() -> Fixture {
    let (server, _clock, token) = with_token().await;
    let user = create_user(&server, &token).await;
    let job = connect(&server, &token, &user, "AU00000", "Gilfoyle", "PiedPiper").await;
    server.advance(Duration::from_secs(60));
    let (status, job) = get(&server, &format!("/jobs/{job}"), &token).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert!(step_statuses(&job).iter().all(|s| s == "success"), "{job}");
    let connection = connection_of(&job);
    Fixture {
        server,
        token,
        user,
        connection,
    }
}

impl Fixture {
    async fn get(&self, path_and_query: &str) -> (StatusCode, Value) {
        get(&self.server, path_and_query, &self.token).await
    }

    async fn get_url(&self, url: &str) -> (StatusCode, Value) {
        call(reqwest::Method::GET, url, &self.token, None).await
    }

    fn tx_path(&self, query: &str) -> String {
        let q = serde_urlencoded::to_string([("filter", query)]).unwrap_or_default();
        format!("/users/{}/transactions?{q}", self.user)
    }

    /// Follows `links.next` from `first` (a path or an absolute URL) to the end; returns every item and the page count.
    async fn walk(&self, first: &str) -> (Vec<Value>, usize) {
        let (status, mut page) = if first.starts_with("http") {
            self.get_url(first).await
        } else {
            self.get(first).await
        };
        assert_eq!(status, StatusCode::OK, "{page}");
        let mut items = Vec::new();
        let mut pages = 1;
        loop {
            let data = page["data"].as_array().expect("data").clone();
            assert_eq!(page["count"], data.len(), "count is the page's item count");
            items.extend(data);
            let Some(next) = page["links"]["next"].as_str().map(str::to_owned) else {
                break;
            };
            assert!(
                next.starts_with(&self.server.url()),
                "absolute next: {next}"
            );
            let (status, p) = self.get_url(&next).await;
            assert_eq!(status, StatusCode::OK, "{p}");
            page = p;
            pages += 1;
        }
        (items, pages)
    }
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_owned())
        .collect()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_default()
}

#[tokio::test]
async fn accounts_list_and_get() {
    let f = fixture().await;
    let (status, body) = f.get(&format!("/users/{}/accounts", f.user)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["type"], "list");
    let accounts = body["data"].as_array().expect("data");
    assert!((2..=3).contains(&accounts.len()), "{body}");
    for a in accounts {
        assert_eq!(a["type"], "account");
        assert_eq!(a["connection"], f.connection.as_str());
        assert_eq!(a["institution"], "AU00000");
        for k in ["balance", "availableFunds", "creditLimit"] {
            let v = s(a, k);
            assert!(
                v.contains('.') && v.parse::<f64>().is_ok(),
                "{k} string decimal: {a}"
            );
        }
        let (status, one) = f.get_url(s(&a["links"], "self")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&one, a);
        // `links.transactions` carries an unencoded filter, as Basiq's do; it must work as is.
        let (items, _) = f.walk(s(&a["links"], "transactions")).await;
        assert!(!items.is_empty());
        assert!(items.iter().all(|t| t["account"] == a["id"]));
    }
    // Filter eq / ne on account.id.
    let first = s(&accounts[0], "id");
    let q = serde_urlencoded::to_string([("filter", format!("account.id.eq('{first}')"))])
        .unwrap_or_default();
    let (_, only) = f.get(&format!("/users/{}/accounts?{q}", f.user)).await;
    assert_eq!(only["data"].as_array().map(Vec::len), Some(1));
    let q = serde_urlencoded::to_string([("filter", format!("account.id.ne('{first}')"))])
        .unwrap_or_default();
    let (_, rest) = f.get(&format!("/users/{}/accounts?{q}", f.user)).await;
    assert_eq!(
        rest["data"].as_array().map(Vec::len),
        Some(accounts.len() - 1)
    );
    // Accounts accept only eq/ne and their three fields.
    let q = serde_urlencoded::to_string([("filter", "account.id.gt('a')")]).unwrap_or_default();
    let (status, body) = f.get(&format!("/users/{}/accounts?{q}", f.user)).await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "parameter-not-valid",
    );

    let (status, body) = f
        .get(&format!("/users/{}/accounts/no-such-account", f.user))
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "resource-not-found");
    let (status, _) = f.get("/users/no-such-user/accounts").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn data_routes_need_a_server_token() {
    let f = fixture().await;
    for path in [
        format!("/users/{}/accounts", f.user),
        format!("/users/{}/transactions", f.user),
    ] {
        let (status, body) = get(&f.server, &path, "not-a-token").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(basiq_error(&body)["code"], "invalid-authorization-token");
        let client = client_token(&f.server, &f.user).await;
        let (status, body) = get(&f.server, &path, &client).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
}

#[tokio::test]
async fn pagination_walks_every_transaction_once() {
    let f = fixture().await;
    let (first_status, first) = f.get(&format!("/users/{}/transactions", f.user)).await;
    assert_eq!(first_status, StatusCode::OK);
    let size = first["size"].as_u64().expect("size") as usize;
    assert!(size > 500, "more than one default page: {size}");
    assert_eq!(first["data"].as_array().map(Vec::len), Some(500));
    assert!(s(&first["links"], "next").contains("next="));

    let (all, pages) = f.walk(&format!("/users/{}/transactions", f.user)).await;
    assert_eq!(all.len(), size);
    assert_eq!(pages, size.div_ceil(500));
    let all_ids = ids(&all);
    assert_eq!(
        all_ids.iter().collect::<HashSet<_>>().len(),
        size,
        "no duplicates"
    );
    // Newest first.
    let dates: Vec<&str> = all.iter().map(|t| s(t, "transactionDate")).collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]));
    // Some account on its own exceeds one page.
    let mut per_account = std::collections::HashMap::<&str, usize>::new();
    for t in &all {
        *per_account.entry(s(t, "account")).or_default() += 1;
    }
    assert!(per_account.values().any(|n| *n > 500), "{per_account:?}");

    // A small limit yields the same sequence.
    let (small, small_pages) = f
        .walk(&format!("/users/{}/transactions?limit=137", f.user))
        .await;
    assert_eq!(ids(&small), all_ids);
    assert_eq!(small_pages, size.div_ceil(137));

    // Each transaction is retrievable on its own.
    let one = &all[all.len() / 2];
    let (status, got) = f.get_url(s(&one["links"], "self")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&got, one);
    let (status, body) = f.get(&format!("/users/{}/transactions/nope", f.user)).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "resource-not-found");
}

#[tokio::test]
async fn limit_and_cursor_validation() {
    let f = fixture().await;
    for bad in ["0", "501", "-1", "abc", "1.5", ""] {
        let (status, body) = f
            .get(&format!("/users/{}/transactions?limit={bad}", f.user))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "limit={bad}: {body}");
        let err = basiq_error(&body);
        assert_eq!(err["code"], "parameter-not-valid");
        assert_eq!(err["source"]["parameter"], "limit");
    }
    let (status, _) = f
        .get(&format!("/users/{}/transactions?limit=1", f.user))
        .await;
    assert_eq!(status, StatusCode::OK);

    let (_, first) = f
        .get(&format!("/users/{}/transactions?limit=10", f.user))
        .await;
    let next = s(&first["links"], "next").to_owned();
    let cursor = next
        .split_once("next=")
        .and_then(|(_, rest)| rest.split('&').next())
        .expect("cursor")
        .to_owned();
    let flipped = if cursor.starts_with('A') { "B" } else { "A" };
    let tampered = next.replacen(&cursor, &format!("{flipped}{}", &cursor[1..]), 1);
    let (status, body) = f.get_url(&tampered).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(basiq_error(&body)["source"]["parameter"], "next");
    // The same cursor with a different filter is refused too.
    let q = serde_urlencoded::to_string([("filter", "transaction.status.eq('posted')")])
        .unwrap_or_default();
    let (status, _) = f.get_url(&format!("{next}&{q}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn filters() {
    let f = fixture().await;
    let (all, _) = f.walk(&format!("/users/{}/transactions", f.user)).await;

    // postDate between (inclusive), compared on the date.
    let (items, _) = f
        .walk(&f.tx_path("transaction.postDate.bt('2024-03-01','2024-03-31')"))
        .await;
    assert!(!items.is_empty());
    for t in &items {
        let d = &s(t, "postDate")[..10];
        assert!(("2024-03-01"..="2024-03-31").contains(&d), "{d}");
    }
    let expected = all
        .iter()
        .filter(|t| {
            t["postDate"]
                .as_str()
                .is_some_and(|d| ("2024-03-01"..="2024-03-31").contains(&&d[..10]))
        })
        .count();
    assert_eq!(items.len(), expected);

    // direction eq, combined (AND) with account.id eq.
    let account = s(&all[0], "account").to_owned();
    let (items, _) = f
        .walk(&f.tx_path(&format!(
            "transaction.direction.eq('credit'),account.id.eq('{account}')"
        )))
        .await;
    assert!(!items.is_empty());
    assert!(items
        .iter()
        .all(|t| s(t, "direction") == "credit" && s(t, "account") == account));
    assert!(items.iter().all(|t| !s(t, "amount").starts_with('-')));

    // status: pending transactions have a null postDate.
    let (pending, _) = f.walk(&f.tx_path("transaction.status.eq('pending')")).await;
    assert!(!pending.is_empty());
    assert!(pending.iter().all(|t| t["postDate"].is_null()));

    // class in (…) and connection.id.
    let (items, _) = f
        .walk(&f.tx_path(&format!(
            "transaction.class.in('bank-fee','interest'),connection.id.eq('{}')",
            f.connection
        )))
        .await;
    assert!(items
        .iter()
        .all(|t| ["bank-fee", "interest"].contains(&s(t, "class"))));

    // A filtered walk keeps the filter on every page.
    let (debits, pages) = f
        .walk(&format!(
            "{}&limit=50",
            f.tx_path("transaction.direction.eq('debit')")
        ))
        .await;
    assert!(pages > 1);
    assert!(debits.iter().all(|t| s(t, "direction") == "debit"));

    // Unsupported fields and malformed filters: 400 parameter-not-valid on `filter`.
    for bad in [
        "transaction.amount.gt('10')",
        "transaction.status.eq('posted'",
        "transaction.status.like('posted')",
        "transaction.status.eq(posted)",
    ] {
        let (status, body) = f.get(&f.tx_path(bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        let err = basiq_error(&body);
        assert_eq!(err["code"], "parameter-not-valid");
        assert_eq!(err["source"]["parameter"], "filter");
    }
}

#[tokio::test]
async fn purge_empties_until_refresh() {
    let f = fixture().await;
    let (before, _) = f.walk(&format!("/users/{}/transactions", f.user)).await;
    let pending_before: HashSet<String> = before
        .iter()
        .filter(|t| s(t, "status") == "pending")
        .map(|t| s(t, "id").to_owned())
        .collect();

    let purge = format!("/users/{}/connections/{}/purge", f.user, f.connection);
    let (status, body) = post(&f.server, &purge, &f.token, json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let (_, accounts) = f.get(&format!("/users/{}/accounts", f.user)).await;
    assert_eq!(accounts["data"], json!([]));
    let (_, txs) = f.get(&format!("/users/{}/transactions", f.user)).await;
    assert_eq!(txs["data"], json!([]));
    assert!(txs["links"].get("next").is_none());

    let refresh = format!("/users/{}/connections/{}/refresh", f.user, f.connection);
    let (status, body) = post(&f.server, &refresh, &f.token, json!({})).await;
    assert!(status.is_success(), "{body}");
    f.server.advance(Duration::from_secs(60));

    let (_, accounts) = f.get(&format!("/users/{}/accounts", f.user)).await;
    assert!(!accounts["data"].as_array().expect("data").is_empty());
    let (after, _) = f.walk(&format!("/users/{}/transactions", f.user)).await;
    assert!(!after.is_empty());
    // Posted history is stable; pending transactions got new ids (basiq-api.md §7).
    let posted = |v: &[Value]| -> HashSet<String> {
        v.iter()
            .filter(|t| s(t, "status") == "posted")
            .map(|t| s(t, "id").to_owned())
            .collect()
    };
    assert_eq!(posted(&before), posted(&after));
    let pending_after: HashSet<String> = after
        .iter()
        .filter(|t| s(t, "status") == "pending")
        .map(|t| s(t, "id").to_owned())
        .collect();
    assert!(pending_after.is_disjoint(&pending_before));
}

#[tokio::test]
async fn deleting_a_connection_keeps_its_data_purging_first_does_not() {
    let f = fixture().await;
    let (before, _) = f.walk(&format!("/users/{}/transactions", f.user)).await;
    let conn_path = format!("/users/{}/connections/{}", f.user, f.connection);
    let (status, _) = call(
        reqwest::Method::DELETE,
        &format!("{}{conn_path}", f.server.url()),
        &f.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = f.get(&conn_path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (after, _) = f.walk(&format!("/users/{}/transactions", f.user)).await;
    assert_eq!(
        ids(&after),
        ids(&before),
        "data remains on the user (basiq-api.md §3.2)"
    );
    let (_, accounts) = f.get(&format!("/users/{}/accounts", f.user)).await;
    assert!(!accounts["data"].as_array().expect("data").is_empty());

    // Purge, then delete: nothing remains.
    let g = fixture().await;
    let purge = format!("/users/{}/connections/{}/purge", g.user, g.connection);
    let (status, _) = post(&g.server, &purge, &g.token, json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let url = format!(
        "{}/users/{}/connections/{}",
        g.server.url(),
        g.user,
        g.connection
    );
    call(reqwest::Method::DELETE, &url, &g.token, None).await;
    let (_, txs) = g.get(&format!("/users/{}/transactions", g.user)).await;
    assert_eq!(txs["data"], json!([]));
}

#[tokio::test]
async fn no_data_before_the_job_retrieves_it() {
    let (server, _clock, token) = with_token().await;
    let user = create_user(&server, &token).await;
    let (_, body) = get(&server, &format!("/users/{user}/transactions"), &token).await;
    assert_eq!(body["data"], json!([]));
    connect(&server, &token, &user, "AU00000", "Gilfoyle", "PiedPiper").await;
    let (_, body) = get(&server, &format!("/users/{user}/transactions"), &token).await;
    assert_eq!(body["data"], json!([]), "job still running");
    server.advance(Duration::from_secs(60));
    let (_, body) = get(&server, &format!("/users/{user}/transactions"), &token).await;
    assert_eq!(body["data"].as_array().map(Vec::len), Some(500));
}

/// Replaces ids, references, URLs and `lastUpdated` (the job's finish time) with placeholders,
/// so the snapshot shows the shape and the generated values, not the server's id counters.
fn redact(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                let replacement = match &*val {
                    Value::String(s) if s.starts_with("http") => Some(format!("[{k} url]")),
                    Value::String(_)
                        if matches!(
                            k.as_str(),
                            "id" | "account" | "connection" | "reference" | "lastUpdated"
                        ) =>
                    {
                        Some(format!("[{k}]"))
                    }
                    _ => None,
                };
                match replacement {
                    Some(r) => *val = Value::String(r),
                    None => redact(val),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[tokio::test]
async fn snapshots() {
    let f = fixture().await;
    let (_, mut page) = f
        .get(&format!("/users/{}/transactions?limit=3", f.user))
        .await;
    redact(&mut page);
    insta::assert_json_snapshot!("transactions_page", page);
    let (_, accounts) = f.get(&format!("/users/{}/accounts", f.user)).await;
    let mut account = accounts["data"][0].clone();
    redact(&mut account);
    insta::assert_json_snapshot!("account", account);
}

/// A transaction count set through the admin API: exactly that many, every id once across the
/// walk, `size` the total; the connection's own count wins over the user's; bad targets and
/// counts are Basiq-format errors.
#[tokio::test]
async fn the_admin_api_sets_a_users_and_a_connections_transaction_count() {
    let f = fixture().await;
    let put = |path: String, body: Value| {
        let url = format!("{}{path}", f.server.url());
        async move { call(reqwest::Method::PUT, &url, "", Some(body)).await }
    };
    let (status, body) = put(
        format!("/__admin/users/{}/transactions", f.user),
        json!({ "count": 1_234 }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first = format!("/users/{}/transactions?limit=500", f.user);
    let (items, pages) = f.walk(&first).await;
    assert_eq!((items.len(), pages), (1_234, 3));
    assert_eq!(ids(&items).into_iter().collect::<HashSet<_>>().len(), 1_234);
    let (_, page) = f.get(&first).await;
    assert_eq!(page["size"], 1_234);

    let (status, _) = put(
        format!("/__admin/connections/{}/transactions", f.connection),
        json!({ "count": 10 }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, page) = f.get(&first).await;
    assert_eq!(
        (page["size"].as_u64(), page["count"].as_u64()),
        (Some(10), Some(10))
    );

    let (status, body) = put(
        "/__admin/users/nobody/transactions".into(),
        json!({ "count": 1 }),
    )
    .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "resource-not-found");
    let (status, body) = put(
        format!("/__admin/users/{}/transactions", f.user),
        json!({ "count": basiq_mock::MAX_TRANSACTIONS_PER_CONNECTION + 1 }),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "parameter-not-valid",
    );
}

/// The builder's count applies to every connection, and a page deep in a large history is the
/// same page a walk reaches (the binary-searched start agrees with the walk).
#[tokio::test]
async fn the_builder_sets_every_connections_count_and_deep_pages_agree() {
    let server = MockServer::builder()
        .clock(basiq_core::clock::ManualClock::starting_now())
        .transactions_per_connection(2_600)
        .start();
    let token = server_token(&server).await;
    let user = create_user(&server, &token).await;
    for (login, password) in [("Gilfoyle", "PiedPiper"), ("gavinBelson", "hooli2016")] {
        connect(&server, &token, &user, "AU00000", login, password).await;
    }
    server.advance(Duration::from_secs(60));
    let f = Fixture {
        server,
        token,
        user,
        connection: String::new(),
    };
    let (items, pages) = f
        .walk(&format!("/users/{}/transactions?limit=500", f.user))
        .await;
    assert_eq!((items.len(), pages), (5_200, 11));
    let dates: Vec<&str> = items.iter().map(|t| s(t, "transactionDate")).collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "newest first");
    assert_eq!(ids(&items).into_iter().collect::<HashSet<_>>().len(), 5_200);
}

/// The user JSON embeds each account in summary form (copied from the connection's cached
/// summaries): the same accounts `/accounts` lists, with the summary fields only, and the same
/// objects the connection JSON embeds.
#[tokio::test]
async fn the_user_embeds_the_same_account_summaries_as_its_connections() {
    let f = fixture().await;
    let (status, user) = f.get(&format!("/users/{}", f.user)).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    let (_, accounts) = f.get(&format!("/users/{}/accounts", f.user)).await;
    let (_, connection) = f
        .get(&format!("/users/{}/connections/{}", f.user, f.connection))
        .await;
    let embedded = user["accounts"]["data"]
        .as_array()
        .expect("accounts")
        .clone();
    assert_eq!(user["accounts"]["count"], embedded.len());
    assert_eq!(
        ids(&embedded),
        ids(accounts["data"].as_array().expect("list"))
    );
    assert_eq!(
        Value::Array(embedded.clone()),
        connection["accounts"]["data"]
    );
    for a in &embedded {
        assert!(
            a.get("bsb").is_none() && a["links"]["self"].is_string(),
            "{a}"
        );
    }
}
