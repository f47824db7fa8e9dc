//! Bring your own HTTP client: a host that already runs its own `reqwest::Client` (another
//! reqwest version, its proxy, its TLS roots, its middleware) or any other HTTP stack plugs it
//! into the SDK by implementing `basiq::transport::AsyncTransport` — one method, request in,
//! whole response out. Token caching, retries, tracing spans and error handling stay the SDK's.
//!
//! ```text
//! cargo run -p basiq --example own_http_client   # offline, on the embedded emulator
//! ```
//!
//! The transport below converts between the SDK's request (method, URL, `http` headers, body)
//! and `http::Response` and the host client's own types; with a different reqwest version only
//! these conversions change (a stack built on `http::Request` takes `request.into_http()`). The
//! same pattern gives the blocking client any synchronous stack via `BlockingTransport`.

mod support;

use basiq::error::{TransportError, TransportErrorKind};
use basiq::models::NewUser;
use basiq::transport::{AsyncTransport, BoxFuture, HttpRequest, HttpResponse, UrlForm};

/// The host's own client, configured its way (here: a proxy-free client with a custom
/// user agent and no redirects — an SDK must never follow one with a bearer token).
#[derive(Debug, Clone)]
struct HostTransport {
    client: reqwest::Client,
}

impl HostTransport {
    fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent("my-app/1.0 (basiq-rs)")
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        Ok(Self { client })
    }
}

impl AsyncTransport for HostTransport {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            let (method, url, headers, body) = request.into_parts();
            let response = self
                .client
                .request(method, url.as_str())
                .headers(headers.into())
                .body(body)
                .send()
                .await
                .map_err(|e| {
                    // Classify so the SDK's retry policy knows what happened. Never put the
                    // request (its Authorization header) into the message.
                    let kind = if e.is_timeout() {
                        TransportErrorKind::Timeout
                    } else if e.is_connect() {
                        TransportErrorKind::Connect
                    } else {
                        TransportErrorKind::Io
                    };
                    TransportError::new(kind, e.without_url().to_string())
                })?;
            let mut answer = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                answer = answer.header(name, value);
            }
            let body = response.bytes().await.map_err(|e| {
                TransportError::new(TransportErrorKind::Io, e.without_url().to_string())
            })?;
            answer
                .body(body.to_vec())
                .map_err(|e| TransportError::new(TransportErrorKind::Io, e.to_string()))
        })
    }

    /// This client is handed the URL as text (it parses it itself, whatever its `url` crate
    /// version), so the SDK writes it as text rather than building a `Url` to be printed.
    fn url_form(&self) -> UrlForm {
        UrlForm::Text
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = support::Target::from_env();
    let client = target
        .async_builder()
        .transport(HostTransport::new()?)
        .build()?;

    let user = client
        .users()
        .create(NewUser {
            email: Some("dinesh@piedpiper.com".into()),
            ..NewUser::default()
        })
        .await?;
    let again = client.users().get(&user.id).await?;
    println!(
        "created and read user {} through the host's own reqwest client",
        again.id
    );
    client.users().delete(&user.id).await?;
    Ok(())
}
