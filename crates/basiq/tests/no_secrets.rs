//! (g) Neither the API key nor any token appears in a `Debug` of clients, builders or tokens, or
//! in the `Display`/`Debug` of any error.

mod common;

use std::sync::{Arc, Mutex};

use basiq::error::TransportError;
use basiq::models::UserUpdate;
use basiq::transport::{AsyncTransport, BoxFuture, HttpRequest, HttpResponse};
use basiq::{Client, ReqwestTransport};
use basiq_mock::MockServer;
use common::new_user;

/// Wraps the real transport and remembers every token `/token` handed out, so the test knows
/// the server token's value without the SDK exposing it.
#[derive(Clone, Default)]
struct Recorder {
    inner: ReqwestTransport,
    tokens: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for Recorder {
    // The test's own spy must not be what leaks the tokens into the client's Debug.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("inner", &self.inner)
            .finish()
    }
}

impl AsyncTransport for Recorder {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            let is_token = request.url().path() == "/token";
            let response = self.inner.send(request).await?;
            if is_token {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(response.body()) {
                    if let Some(t) = v["access_token"].as_str() {
                        self.tokens.lock().unwrap().push(t.to_string());
                    }
                }
            }
            Ok(response)
        })
    }
}

fn assert_clean(what: &str, text: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(
            !text.contains(secret.as_str()),
            "{what} leaks a secret: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_prints_a_key_or_a_token() {
    let server = MockServer::start();
    let key = server.api_key();
    let recorder = Recorder::default();
    let builder = Client::builder()
        .api_key(key.clone())
        .base_url(server.url())
        .transport(recorder.clone());
    let builder_debug = format!("{builder:?}");
    let client = builder.build().unwrap();

    let user = client
        .users()
        .create(new_user("g@example.com"))
        .await
        .unwrap();
    let client_token = client.client_token(&user.id).await.unwrap();
    let mut errors = vec![
        client.users().get("missing-user").await.unwrap_err(),
        client.users().get("../x").await.unwrap_err(),
        client.users().create(Default::default()).await.unwrap_err(),
        client
            .users()
            .update("nobody", UserUpdate::default())
            .await
            .unwrap_err(),
        Client::builder().api_key("").build().unwrap_err(),
        Client::builder()
            .api_key(key.clone())
            .base_url("::")
            .build()
            .unwrap_err(),
    ];
    // A wrong key, and a transport failure.
    let wrong = Client::builder()
        .api_key(format!("{key}x"))
        .base_url(server.url())
        .build()
        .unwrap();
    errors.push(wrong.users().get(&user.id).await.unwrap_err());
    let dead = Client::builder()
        .api_key(key.clone())
        .base_url("http://127.0.0.1:1")
        .retry_policy(basiq::retry::RetryPolicy::never())
        .build()
        .unwrap();
    errors.push(dead.users().get(&user.id).await.unwrap_err());

    let mut secrets = recorder.tokens.lock().unwrap().clone();
    assert!(
        secrets.len() >= 2,
        "a server and a client token: {}",
        secrets.len()
    );
    assert!(secrets.iter().any(|t| t == client_token.expose_secret()));
    secrets.push(key.clone());
    secrets.push(format!("{key}x"));

    assert_clean("builder Debug", &builder_debug, &secrets);
    assert_clean("client Debug", &format!("{client:?}"), &secrets);
    assert_clean(
        "client Debug (alternate)",
        &format!("{client:#?}"),
        &secrets,
    );
    assert_clean(
        "executor Debug",
        &format!("{:?}", client.executor()),
        &secrets,
    );
    assert_clean("token Debug", &format!("{client_token:?}"), &secrets);
    assert_clean("wrong-key client Debug", &format!("{wrong:?}"), &secrets);
    for err in &errors {
        assert_clean("error Display", &err.to_string(), &secrets);
        assert_clean("error Debug", &format!("{err:?}"), &secrets);
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            assert_clean("error source", &s.to_string(), &secrets);
            source = s.source();
        }
    }
}

#[test]
fn blocking_client_prints_no_secrets() {
    let server = MockServer::start();
    let key = server.api_key();
    let builder = basiq::blocking::Client::builder()
        .api_key(key.clone())
        .base_url(server.url());
    let builder_debug = format!("{builder:?}");
    let client = builder.build().unwrap();
    let user = client.users().create(new_user("gb@example.com")).unwrap();
    let token = client.client_token(&user.id).unwrap();
    let secrets = vec![key, token.expose_secret().to_string()];
    let err = client.users().get("missing-user").unwrap_err();
    for (what, text) in [
        ("builder", builder_debug),
        ("client", format!("{client:#?}")),
        ("token", format!("{token:?}")),
        ("error", format!("{err} {err:?}")),
    ] {
        assert_clean(what, &text, &secrets);
    }
}
