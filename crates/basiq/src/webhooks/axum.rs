//! A ready webhook endpoint for axum (feature `axum`): verify, de-duplicate, answer, hand the
//! typed event to the app.
//!
//! [`endpoint`] is an axum `MethodRouter` — mount it on any route; it is also a tower
//! `Service`. For each POST it reads the body (at most [`MAX_BODY_BYTES`], else 413), runs the
//! [`WebhookReceiver`] and answers with [`ReceiveError::status`](super::ReceiveError::status) when the message is refused
//! (never calling the app), 204 for a duplicate, and for a new message calls `on_event`: `Ok`
//! → acknowledged and 204, `Err` → released and 500, so Basiq retries. Basiq waits for the
//! answer: keep `on_event` short (push to a queue or a channel) and do the slow work after.
//!
//! ```no_run
//! use basiq::webhooks::{axum::endpoint, WebhookEvent, WebhookReceiver, WebhookSecret};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let secret = WebhookSecret::new(&std::env::var("BASIQ_WEBHOOK_SECRET")?)?;
//! let (tx, mut rx) = tokio::sync::mpsc::channel::<WebhookEvent>(1024);
//! let app = axum::Router::new().route(
//!     "/basiq/webhooks",
//!     endpoint(WebhookReceiver::new(secret), move |event| {
//!         let tx = tx.clone();
//!         async move { tx.send(event).await.map_err(|_| "queue closed") }
//!     }),
//! );
//! tokio::spawn(async move {
//!     while let Some(event) = rx.recv().await {
//!         // e.g. WebhookEvent::ConsentWarning(_) => client.consent_lifecycle(..)
//!         let _ = event;
//!     }
//! });
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{post, MethodRouter};

use super::{Receipt, WebhookEvent, WebhookReceiver};

/// The largest body accepted (Basiq's messages are a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The endpoint: `POST` only, body capped at [`MAX_BODY_BYTES`]. `on_event` gets each new
/// message's typed event once; its error is logged (with `Display`, so keep secrets out of it).
pub fn endpoint<S, F, Fut, E>(receiver: WebhookReceiver, on_event: F) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
    F: Fn(WebhookEvent) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Display + Send + 'static,
{
    let receiver = Arc::new(receiver);
    let on_event = Arc::new(on_event);
    post(move |headers: HeaderMap, body: Bytes| {
        let receiver = Arc::clone(&receiver);
        let on_event = Arc::clone(&on_event);
        async move { handle(&receiver, &*on_event, &headers, &body).await }
    })
    .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

async fn handle<F, Fut, E>(
    receiver: &WebhookReceiver,
    on_event: &F,
    headers: &HeaderMap,
    body: &[u8],
) -> StatusCode
where
    F: Fn(WebhookEvent) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    match receiver.receive(headers, body) {
        Ok(Receipt::New(delivery)) => {
            let (event, ticket) = (*delivery).into_parts();
            match on_event(event).await {
                Ok(()) => match ticket.ack() {
                    Ok(()) => StatusCode::NO_CONTENT,
                    Err(e) => {
                        tracing::warn!(error = e.message(), "webhook seen-store write failed");
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "webhook handler failed; Basiq will retry");
                    ticket.nack();
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            }
        }
        Ok(Receipt::Duplicate { webhook_id }) => {
            tracing::debug!(%webhook_id, "duplicate webhook acknowledged");
            StatusCode::NO_CONTENT
        }
        Err(refused) => {
            tracing::info!(error = %refused, "webhook refused");
            refused.status()
        }
    }
}
