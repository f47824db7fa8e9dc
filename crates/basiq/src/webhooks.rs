//! Receiving Basiq's webhooks: verify, de-duplicate, record freshness, hand typed events over.
//!
//! Everything of [`basiq_core::policy::webhooks`] is here (the pure [`verify`], [`WebhookSecret`],
//! [`WebhookEvent`], [`SeenStore`]), plus a [`WebhookReceiver`] that does in one call what every
//! endpoint must:
//!
//! 1. **verify** the signature and the timestamp (5 minutes) with the endpoint's secret(s) —
//!    a refusal carries the HTTP status to answer ([`ReceiveError::status`]: 400 malformed,
//!    401 not signed by Basiq or stale);
//! 2. **de-duplicate** by `webhook-id` through a [`SeenStore`] (memory by default, shared over
//!    Redis in a fleet): a retry of a handled message is a [`Receipt::Duplicate`], answered
//!    2xx and not handed over again;
//! 3. **record freshness**: a `transactions.updated` / `account.updated` naming a connection
//!    goes into the freshness ledger ([`crate::freshness::FreshnessLedger`]) that the client's
//!    guarded `refresh` consults, so the app never refreshes what Basiq just refreshed;
//! 4. hand the typed [`WebhookEvent`] to the app as a [`Delivery`]: [`Delivery::ack`] once
//!    handled (remembered as seen), [`Delivery::nack`] when handling failed (Basiq's retry is
//!    handled again).
//!
//! Answer fast: Basiq waits for the answer, so do the slow work (fetching the event or the
//! data) after acknowledging, or queue the [`VerifiedWebhook`] ([`WebhookReceiver::verify`])
//! and [`accept`](WebhookReceiver::accept) it from the queue. With the `axum` feature,
//! [`axum::endpoint`] is all of this as a ready axum handler (a tower `Service`).
//!
//! ```
//! use std::sync::Arc;
//! use basiq::freshness::MemoryFreshnessLedger;
//! use basiq::webhooks::{self, Receipt, WebhookEvent, WebhookReceiver, WebhookSecret};
//! use http::{HeaderMap, StatusCode};
//!
//! let secret = WebhookSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
//! let ledger = Arc::new(MemoryFreshnessLedger::new()); // also given to the client's builder
//! let receiver = WebhookReceiver::new(secret.clone()).freshness_ledger(ledger.clone());
//!
//! /// The endpoint: any web framework hands over the headers and the raw body.
//! fn endpoint(receiver: &WebhookReceiver, headers: &HeaderMap, body: &[u8]) -> StatusCode {
//!     match receiver.receive(headers, body) {
//!         Ok(Receipt::New(delivery)) => {
//!             if let WebhookEvent::ConsentRevoked(details) = delivery.event() {
//!                 // queue: purge the user's data (client.consent_lifecycle(..))
//!                 let _ = &details.subject.user_id;
//!             }
//!             match delivery.ack() {
//!                 Ok(()) => StatusCode::NO_CONTENT,
//!                 Err(_) => StatusCode::SERVICE_UNAVAILABLE,
//!             }
//!         }
//!         Ok(Receipt::Duplicate { .. }) => StatusCode::NO_CONTENT,
//!         Err(refused) => refused.status(),
//!     }
//! }
//!
//! let body = br#"{"eventTypeId":"transactions.updated","eventId":"e1","links":{
//!     "event":"https://au-api.basiq.io/events/e1",
//!     "eventEntity":"https://au-api.basiq.io/users/u1/connections/c1"}}"#;
//! let now = time::OffsetDateTime::now_utc().unix_timestamp();
//! let mut headers = HeaderMap::new();
//! headers.insert("webhook-id", "msg_1".parse()?);
//! headers.insert("webhook-timestamp", now.to_string().parse()?);
//! headers.insert("webhook-signature", webhooks::sign(&secret, "msg_1", now, body).parse()?);
//! assert_eq!(endpoint(&receiver, &headers, body), StatusCode::NO_CONTENT);
//! // Basiq retries (the answer was lost): acknowledged, not handled again.
//! assert_eq!(endpoint(&receiver, &headers, body), StatusCode::NO_CONTENT);
//! // Tampered: refused.
//! assert_eq!(endpoint(&receiver, &headers, &body[1..]), StatusCode::UNAUTHORIZED);
//! // Basiq refreshed c1: the guarded refresh will skip it.
//! use basiq::freshness::FreshnessLedger;
//! assert!(ledger.last_refreshed(&"c1".parse()?)?.is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::Arc;

use basiq_core::clock::{Clock, SystemClock};
use basiq_core::policy::freshness::FreshnessLedger;
use basiq_core::policy::token::StoreError;
use http::StatusCode;

pub use basiq_core::policy::webhooks::*;
// The submodules by their paths too (`basiq::webhooks::event::EventSubject`).
pub use basiq_core::policy::webhooks::{event, seen};
pub use event::{EventDetails, EventSubject};
pub use seen::FleetSeenStore;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;

/// Verifies, de-duplicates and types webhook deliveries; see the [module docs](self).
#[derive(Clone)]
pub struct WebhookReceiver {
    secrets: Vec<WebhookSecret>,
    verifier: Verifier,
    seen: Arc<dyn SeenStore>,
    freshness: Option<Arc<dyn FreshnessLedger>>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for WebhookReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookReceiver")
            .field("secrets", &self.secrets.len())
            .field("verifier", &self.verifier)
            .field("seen", &self.seen)
            .field("freshness", &self.freshness)
            .finish_non_exhaustive()
    }
}

/// What [`WebhookReceiver::receive`] let through.
#[derive(Debug)]
#[must_use = "acknowledge (or nack) a new delivery"]
pub enum Receipt {
    /// First delivery of this message: handle it, then [`Delivery::ack`].
    New(Box<Delivery>),
    /// Handled already (a retry, or another instance got it): answer 2xx, do nothing.
    Duplicate {
        /// The `webhook-id`.
        webhook_id: String,
    },
}

/// A verified, first-seen message and its typed event.
#[derive(Debug)]
#[must_use = "acknowledge (or nack) the delivery"]
pub struct Delivery {
    verified: VerifiedWebhook,
    event: WebhookEvent,
    seen: Arc<dyn SeenStore>,
    clock: Arc<dyn Clock>,
}

impl Delivery {
    /// The typed event.
    pub fn event(&self) -> &WebhookEvent {
        &self.event
    }

    /// The event, taking it out (then acknowledge with [`Delivery::ack_id`]).
    pub fn into_parts(self) -> (WebhookEvent, DeliveryTicket) {
        let ticket = DeliveryTicket {
            webhook_id: self.verified.id.clone(),
            seen: self.seen,
            clock: self.clock,
        };
        (self.event, ticket)
    }

    /// The verified raw message (id, timestamp, body).
    pub fn raw(&self) -> &VerifiedWebhook {
        &self.verified
    }

    /// `webhook-id`.
    pub fn webhook_id(&self) -> &str {
        &self.verified.id
    }

    /// Handled: remember it, so a retry is a [`Receipt::Duplicate`].
    ///
    /// # Errors
    ///
    /// The seen-store could not be written: answer non-2xx (Basiq retries; the claim lapses
    /// and the retry is handled again, so make handling idempotent where you can).
    pub fn ack(self) -> Result<(), StoreError> {
        self.seen.complete(&self.verified.id, self.clock.now())
    }

    /// Not handled: give the claim up so Basiq's retry is handled again. Answer non-2xx.
    pub fn nack(self) {
        if let Err(e) = self.seen.release(&self.verified.id) {
            tracing::warn!(error = e.message(), "webhook seen-store release failed");
        }
    }

    /// [`ack`](Self::ack) by id, for a delivery split with [`into_parts`](Self::into_parts).
    pub fn ack_id(ticket: DeliveryTicket) -> Result<(), StoreError> {
        ticket.ack()
    }
}

/// What acknowledges a delivery whose event was taken out with [`Delivery::into_parts`].
#[derive(Debug)]
#[must_use = "acknowledge (or nack) the delivery"]
pub struct DeliveryTicket {
    webhook_id: String,
    seen: Arc<dyn SeenStore>,
    clock: Arc<dyn Clock>,
}

impl DeliveryTicket {
    /// Handled: remember it.
    ///
    /// # Errors
    ///
    /// As [`Delivery::ack`].
    pub fn ack(self) -> Result<(), StoreError> {
        self.seen.complete(&self.webhook_id, self.clock.now())
    }

    /// Not handled: Basiq's retry is handled again.
    pub fn nack(self) {
        if let Err(e) = self.seen.release(&self.webhook_id) {
            tracing::warn!(error = e.message(), "webhook seen-store release failed");
        }
    }
}

/// Why a delivery was not handed over; [`status`](Self::status) is the HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
    /// Not a message Basiq signed just now, or not a message at all.
    #[error(transparent)]
    Refused(#[from] WebhookError),
    /// Another worker is handling this `webhook-id` right now.
    #[error("webhook message is being handled by another worker")]
    InProgress,
    /// The seen-store could not be asked; Basiq will retry.
    #[error("webhook seen-store: {}", .0.message())]
    Store(StoreError),
}

impl ReceiveError {
    /// The status to answer: **400** for a malformed message (a header missing, a timestamp
    /// that is not Unix seconds, a body that is not a webhook message), **401** for one not
    /// signed with the endpoint's secret or outside the 5-minute window (tampered, replayed,
    /// another secret), **409** while another worker handles the same id and **503** when the
    /// seen-store is down — Basiq retries every non-2xx answer.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Refused(
                WebhookError::MissingHeader(_)
                | WebhookError::InvalidTimestamp
                | WebhookError::InvalidBody(_),
            ) => StatusCode::BAD_REQUEST,
            Self::Refused(_) => StatusCode::UNAUTHORIZED,
            Self::InProgress => StatusCode::CONFLICT,
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl WebhookReceiver {
    /// A receiver for an endpoint's secret, Basiq's 5-minute tolerance, an in-memory
    /// seen-store, no freshness ledger, the system clock.
    pub fn new(secret: WebhookSecret) -> Self {
        Self {
            secrets: vec![secret],
            verifier: Verifier::new(),
            seen: Arc::new(MemorySeenStore::new()),
            freshness: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// Also accepts messages signed with `secret` (while rotating the endpoint's secret).
    pub fn also_accept(mut self, secret: WebhookSecret) -> Self {
        self.secrets.push(secret);
        self
    }

    /// Another tolerance (default Basiq's 5 minutes).
    pub fn verifier(mut self, verifier: Verifier) -> Self {
        self.verifier = verifier;
        self
    }

    /// Where handled `webhook-id`s are remembered; share one across a fleet
    /// ([`FleetSeenStore`], `basiq_redis::RedisFleet::seen_store`).
    pub fn seen_store(mut self, store: Arc<dyn SeenStore>) -> Self {
        self.seen = store;
        self
    }

    /// Records "Basiq refreshed this connection" here; give the same ledger to the client's
    /// builder (`.freshness_ledger(..)`).
    pub fn freshness_ledger(mut self, ledger: Arc<dyn FreshnessLedger>) -> Self {
        self.freshness = Some(ledger);
        self
    }

    /// The clock for the timestamp check and the seen-store (default the system clock; tests
    /// pass the emulator's virtual clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Step 1 alone: the signature and the timestamp, body not parsed — what an app queues.
    ///
    /// # Errors
    ///
    /// The message is not one Basiq signed within the tolerance.
    pub fn verify(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<VerifiedWebhook, WebhookError> {
        let secrets: Vec<&WebhookSecret> = self.secrets.iter().collect();
        self.verifier
            .verify_signature(&secrets, headers, body, self.clock.now())
    }

    /// Steps 2 to 4 for a message [`verify`](Self::verify) let through (now or earlier, from a
    /// queue): parse it, claim its id, record freshness.
    ///
    /// # Errors
    ///
    /// An unparsable body ([`WebhookError::InvalidBody`]), an id being handled elsewhere, a
    /// seen-store error.
    pub fn accept(&self, verified: VerifiedWebhook) -> Result<Receipt, ReceiveError> {
        let event = verified.event()?;
        let now = self.clock.now();
        match self
            .seen
            .claim(&verified.id, now)
            .map_err(ReceiveError::Store)?
        {
            Claim::Done => {
                return Ok(Receipt::Duplicate {
                    webhook_id: verified.id,
                })
            }
            Claim::InProgress => return Err(ReceiveError::InProgress),
            Claim::First => {}
        }
        if let (Some(ledger), Some(connection)) = (&self.freshness, event.refreshed_connection()) {
            // The attempt's send time, never later than now: a retry's later timestamp only
            // makes the ledger more cautious by the retry delay.
            let at = verified.sent_at().min(now);
            if let Err(e) = ledger.record(connection, at) {
                tracing::warn!(error = e.message(), "freshness ledger write failed");
            }
        }
        tracing::debug!(
            webhook_id = %verified.id,
            event_type = event.event_type().as_str(),
            "webhook accepted"
        );
        Ok(Receipt::New(Box::new(Delivery {
            verified,
            event,
            seen: Arc::clone(&self.seen),
            clock: Arc::clone(&self.clock),
        })))
    }

    /// [`verify`](Self::verify) then [`accept`](Self::accept).
    ///
    /// # Errors
    ///
    /// See [`ReceiveError`]; its [`status`](ReceiveError::status) is the answer to give.
    pub fn receive(&self, headers: &http::HeaderMap, body: &[u8]) -> Result<Receipt, ReceiveError> {
        let verified = self.verify(headers, body)?;
        self.accept(verified)
    }
}

#[cfg(any(feature = "async", feature = "blocking"))]
impl crate::flows::Policies {
    /// When Basiq last refreshed `connection`, from the freshness ledger the guarded refresh
    /// consults first (`None`: no ledger, unknown, or the read failed — logged, and then the
    /// usual checks decide).
    pub(crate) fn last_refreshed_by_basiq(
        &self,
        connection: &basiq_core::id::ConnectionId,
    ) -> Option<time::OffsetDateTime> {
        self.freshness
            .as_ref()?
            .last_refreshed(connection)
            .map_err(|e| tracing::warn!(error = e.message(), "freshness ledger read failed"))
            .ok()?
    }
}

/// Fetching what a message links to: the event (`GET /events/{id}`), for its `data` and time.
#[cfg(any(feature = "async", feature = "blocking"))]
macro_rules! webhook_fetch {
    (client = $client:ty, [$($async:ident)?], [$($await:tt)*]) => {
        impl $client {
            /// The event a webhook message announces (`GET /events/{eventId}`): its time
            /// (`createdDate`), user and `data` (e.g. the connection as it was). Basiq keeps
            /// events for 7 days.
            ///
            /// # Errors
            ///
            /// As any request; an id that is not a plain path segment is
            /// [`Error::InvalidId`](crate::Error::InvalidId) before any request.
            pub $($async)* fn webhook_event(
                &self,
                event: &WebhookEvent,
            ) -> Result<crate::models::Event, crate::Error> {
                self.events().get(event.event_id())$($await)*
            }
        }
    };
}

#[cfg(feature = "async")]
webhook_fetch!(client = crate::Client, [async], [.await]);
#[cfg(feature = "blocking")]
webhook_fetch!(client = crate::blocking::Client, [], []);
