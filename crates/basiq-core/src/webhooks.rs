//! Webhook verification: trust a message only when Basiq signed it, recently.
//!
//! Basiq signs every webhook message the Svix way (basiq-api.md §7, Basiq docs `webhooks/webhooks-security`):
//!
//! - headers `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`
//!   (one or more space-separated `v1,<base64>` entries — several while a secret is rotated);
//! - each signature is HMAC-SHA256 over `{id}.{timestamp}.{body}`, keyed with the base64-decoded
//!   part of the endpoint secret after `whsec_`;
//! - a message whose timestamp is more than 5 minutes away from now is refused (replay defence).
//!
//! [`verify`] (or a [`Verifier`] with another tolerance) checks all of that and only then parses
//! the body into a [`WebhookMessage`]. Like the rest of `basiq-core` it does no IO and reads no
//! clock: the host passes the raw body bytes exactly as received (never a re-serialised JSON
//! value) and `now`.
//!
//! The crypto comes from the audited RustCrypto crates (`hmac`, `sha2`) rather than a
//! hand-written HMAC, and signatures are compared with `hmac`'s `verify_slice`, which is
//! constant-time (`subtle`), so the comparison leaks nothing about the expected signature.
//!
//! ```
//! use basiq_core::webhooks::{self, EventType, WebhookError, WebhookSecret};
//! use http::{HeaderMap, StatusCode};
//! use time::OffsetDateTime;
//!
//! /// A webhook endpoint: 2xx only for a message Basiq really sent.
//! fn handle(secret: &WebhookSecret, headers: &HeaderMap, body: &[u8]) -> StatusCode {
//!     match webhooks::verify(secret, headers, body, OffsetDateTime::now_utc()) {
//!         Ok(message) => {
//!             if message.event_type_id == EventType::ConnectionInvalidated {
//!                 // e.g. ask the user to re-enter credentials (message.links.event_entity)
//!             }
//!             StatusCode::NO_CONTENT
//!         }
//!         // Not from Basiq, replayed or malformed: log the error (it never holds the secret).
//!         Err(WebhookError::InvalidBody(_)) => StatusCode::UNPROCESSABLE_ENTITY,
//!         Err(_) => StatusCode::UNAUTHORIZED,
//!     }
//! }
//!
//! let secret = WebhookSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
//! let body = br#"{"eventTypeId":"connection.invalidated","eventId":"e1",
//!     "links":{"event":"https://au-api.basiq.io/events/e1",
//!              "eventEntity":"https://au-api.basiq.io/users/u1/connections/c1"}}"#;
//! let now = OffsetDateTime::now_utc().unix_timestamp();
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("webhook-id", "msg_1".parse()?);
//! headers.insert("webhook-timestamp", now.to_string().parse()?);
//! headers.insert("webhook-signature", webhooks::sign(&secret, "msg_1", now, body).parse()?);
//! assert_eq!(handle(&secret, &headers, body), StatusCode::NO_CONTENT);
//!
//! // One changed byte and the message is refused.
//! assert_eq!(handle(&secret, &headers, &body[1..]), StatusCode::UNAUTHORIZED);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::zeroize::Zeroizing;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use time::OffsetDateTime;

use crate::open_enum::open_enum;

/// The header holding the message id (`msg_…`).
pub const HEADER_ID: &str = "webhook-id";
/// The header holding the send time, in Unix seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// The header holding the space-separated `v1,<base64>` signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// The prefix of a webhook secret as Basiq's dashboard shows it.
pub const SECRET_PREFIX: &str = "whsec_";
/// Basiq's tolerance between the message's timestamp and now: 5 minutes either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

type HmacSha256 = Hmac<Sha256>;

/// Standard base64, padding optional on input (secrets are sometimes pasted without it).
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The length of an HMAC-SHA256 tag in bytes.
const TAG_LEN: usize = 32;

/// A webhook endpoint's signing secret (`whsec_<base64>`).
///
/// Like [`ApiKey`](crate::secret::ApiKey) it prints as `[REDACTED]` in `Debug` and has no
/// `Display`. It holds the HMAC key schedule, ready to use; the decoded key bytes are zeroized
/// as soon as that is built.
#[derive(Clone)]
pub struct WebhookSecret {
    mac: HmacSha256,
}

impl WebhookSecret {
    /// Parses a secret as Basiq shows it: `whsec_` followed by standard base64 (padding
    /// optional). Surrounding whitespace is trimmed.
    ///
    /// # Errors
    ///
    /// [`WebhookError::BadSecret`] when the prefix is missing, the rest is not base64 or it
    /// decodes to nothing. The error never contains the secret.
    pub fn new(secret: &str) -> Result<Self, WebhookError> {
        let encoded = secret
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(WebhookError::BadSecret(SecretProblem::MissingPrefix))?;
        let key = Zeroizing::new(
            LENIENT_BASE64
                .decode(encoded)
                .map_err(|_| WebhookError::BadSecret(SecretProblem::NotBase64))?,
        );
        if key.is_empty() {
            return Err(WebhookError::BadSecret(SecretProblem::Empty));
        }
        let mac = HmacSha256::new_from_slice(&key)
            .map_err(|_| WebhookError::BadSecret(SecretProblem::Empty))?;
        Ok(Self { mac })
    }

    /// The MAC over `{id}.{timestamp}.{body}`, not finalised yet.
    fn mac_for(&self, id: &[u8], timestamp: &[u8], body: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(id);
        mac.update(b".");
        mac.update(timestamp);
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

impl FromStr for WebhookSecret {
    type Err = WebhookError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// Why a webhook secret was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretProblem {
    /// It does not start with `whsec_`.
    MissingPrefix,
    /// The part after `whsec_` is not standard base64.
    NotBase64,
    /// The part after `whsec_` is empty.
    Empty,
}

impl fmt::Display for SecretProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MissingPrefix => "it does not start with `whsec_`",
            Self::NotBase64 => "the part after `whsec_` is not base64",
            Self::Empty => "the part after `whsec_` is empty",
        })
    }
}

/// Why a webhook message was refused. No variant holds the secret or the expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// A required header is absent (or empty).
    #[error("webhook header `{0}` is missing")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not a Unix time in seconds.
    #[error("webhook-timestamp is not a Unix time in seconds")]
    InvalidTimestamp,
    /// The timestamp is further in the past than the tolerance (a replay or a stuck queue).
    #[error("webhook message is too old: sent {}s ago", skew.as_secs())]
    TooOld {
        /// How long ago the message says it was sent.
        skew: Duration,
    },
    /// The timestamp is further in the future than the tolerance (clock skew or forgery).
    #[error("webhook message is from the future: {}s ahead", skew.as_secs())]
    TooNew {
        /// How far ahead of `now` the message's timestamp is.
        skew: Duration,
    },
    /// No `v1` signature matches the message.
    #[error("no valid webhook signature")]
    NoValidSignature,
    /// The webhook secret is unusable.
    #[error("invalid webhook secret: {0}")]
    BadSecret(SecretProblem),
    /// The signature is valid but the body is not a Basiq webhook message.
    #[error("webhook body is not a Basiq message: {0}")]
    InvalidBody(String),
}

open_enum! {
    /// A Basiq event type (`eventTypeId`). Open: a new type arrives as `Other`.
    EventType {
        /// `user.created`
        UserCreated => "user.created",
        /// `user.updated`
        UserUpdated => "user.updated",
        /// `user.deleted`
        UserDeleted => "user.deleted",
        /// `connection.created`
        ConnectionCreated => "connection.created",
        /// `connection.activated`
        ConnectionActivated => "connection.activated",
        /// `connection.invalidated`: the user must act (e.g. re-enter credentials).
        ConnectionInvalidated => "connection.invalidated",
        /// `connection.deleted`
        ConnectionDeleted => "connection.deleted",
        /// `consent.created`
        ConsentCreated => "consent.created",
        /// `consent.updated`
        ConsentUpdated => "consent.updated",
        /// `consent.revoked`
        ConsentRevoked => "consent.revoked",
        /// `consent.expired`
        ConsentExpired => "consent.expired",
        /// `consent.warning`
        ConsentWarning => "consent.warning",
        /// `consent.reminder`
        ConsentReminder => "consent.reminder",
        /// `consent.archived`
        ConsentArchived => "consent.archived",
        /// `account.updated`
        AccountUpdated => "account.updated",
        /// `transactions.updated`
        TransactionsUpdated => "transactions.updated",
    }
}

/// The links of a webhook message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WebhookLinks {
    /// The event (`GET /events/{id}`).
    pub event: String,
    /// The entity the event is about (a user, connection, consent, account, …).
    pub event_entity: String,
}

/// A verified webhook message: `{eventTypeId, eventId, links: {event, eventEntity}}`.
/// Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WebhookMessage {
    /// What happened.
    pub event_type_id: EventType,
    /// The event's id (for `GET /events/{id}`).
    pub event_id: String,
    /// Where to read the event and its entity.
    pub links: WebhookLinks,
}

/// Verification settings. [`Verifier::default`] is Basiq's: 5 minutes tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verifier {
    tolerance: Duration,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    /// Basiq's settings: [`DEFAULT_TOLERANCE`] (5 minutes).
    pub const fn new() -> Self {
        Self {
            tolerance: DEFAULT_TOLERANCE,
        }
    }

    /// Another tolerance between the message's timestamp and `now`, either way.
    pub const fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// The tolerance in use.
    pub const fn tolerance(&self) -> Duration {
        self.tolerance
    }

    /// Verifies a message from its HTTP headers (`webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`; the first value of each counts) and its raw body.
    ///
    /// # Errors
    ///
    /// See [`Verifier::verify_parts`]; a header that is absent or empty is
    /// [`WebhookError::MissingHeader`].
    pub fn verify(
        &self,
        secret: &WebhookSecret,
        headers: &http::HeaderMap,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<WebhookMessage, WebhookError> {
        let header = |name: &'static str| {
            headers
                .get(name)
                .map(http::HeaderValue::as_bytes)
                .filter(|v| !v.is_empty())
                .ok_or(WebhookError::MissingHeader(name))
        };
        let id = header(HEADER_ID)?;
        let timestamp = header(HEADER_TIMESTAMP)?;
        let signature = header(HEADER_SIGNATURE)?;
        self.verify_bytes(secret, id, timestamp, signature, body, now)
    }

    /// Verifies a message from the three header values and its raw body, in this order:
    ///
    /// 1. none of `id`, `timestamp`, `signature` is empty, else [`WebhookError::MissingHeader`];
    /// 2. `timestamp` is decimal Unix seconds, else [`WebhookError::InvalidTimestamp`];
    /// 3. it is within the tolerance of `now`, else [`WebhookError::TooOld`] /
    ///    [`WebhookError::TooNew`]. The skew is counted in whole seconds (`now`'s fraction of a
    ///    second is dropped, as the header has none), and a skew **equal** to the tolerance is
    ///    accepted: with the default, exactly ±300 s passes and ±301 s is refused;
    /// 4. at least one `v1,<base64>` entry of `signature` is the HMAC-SHA256 of
    ///    `{id}.{timestamp}.{body}` (constant-time comparison; other versions and malformed
    ///    entries are skipped), else [`WebhookError::NoValidSignature`];
    /// 5. the body is a webhook message, else [`WebhookError::InvalidBody`].
    ///
    /// # Errors
    ///
    /// As listed above. Never panics, whatever the input.
    pub fn verify_parts(
        &self,
        secret: &WebhookSecret,
        id: &str,
        timestamp: &str,
        signature: &str,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<WebhookMessage, WebhookError> {
        for (value, name) in [
            (id, HEADER_ID),
            (timestamp, HEADER_TIMESTAMP),
            (signature, HEADER_SIGNATURE),
        ] {
            if value.is_empty() {
                return Err(WebhookError::MissingHeader(name));
            }
        }
        self.verify_bytes(
            secret,
            id.as_bytes(),
            timestamp.as_bytes(),
            signature.as_bytes(),
            body,
            now,
        )
    }

    fn verify_bytes(
        &self,
        secret: &WebhookSecret,
        id: &[u8],
        timestamp: &[u8],
        signature: &[u8],
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<WebhookMessage, WebhookError> {
        self.verify_signature_bytes(secret, id, timestamp, signature, body, now)?;
        parse_message(body)
    }

    /// Steps 1 to 4 of [`verify_parts`](Self::verify_parts) — headers, timestamp, signature —
    /// **without** parsing the body: an app that queues deliveries stores the raw
    /// [`VerifiedWebhook`] and parses it later with [`VerifiedWebhook::message`].
    ///
    /// # Errors
    ///
    /// As [`verify`](Self::verify), except [`WebhookError::InvalidBody`].
    pub fn verify_signature(
        &self,
        secrets: &[&WebhookSecret],
        headers: &http::HeaderMap,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<VerifiedWebhook, WebhookError> {
        let header = |name: &'static str| {
            headers
                .get(name)
                .map(http::HeaderValue::as_bytes)
                .filter(|v| !v.is_empty())
                .ok_or(WebhookError::MissingHeader(name))
        };
        let id = header(HEADER_ID)?;
        let timestamp = header(HEADER_TIMESTAMP)?;
        let signature = header(HEADER_SIGNATURE)?;
        let sent = parse_timestamp(timestamp)?;
        self.check_skew(sent, now)?;
        let mut last = WebhookError::NoValidSignature;
        // Several secrets while one is rotated on the app's side: any of them may have signed.
        for secret in secrets {
            match self.verify_signature_bytes(secret, id, timestamp, signature, body, now) {
                Ok(()) => {
                    return Ok(VerifiedWebhook {
                        id: String::from_utf8_lossy(id).into_owned(),
                        timestamp: sent,
                        body: body.to_vec(),
                    })
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn verify_signature_bytes(
        &self,
        secret: &WebhookSecret,
        id: &[u8],
        timestamp: &[u8],
        signature: &[u8],
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), WebhookError> {
        let sent = parse_timestamp(timestamp)?;
        self.check_skew(sent, now)?;
        let expected = secret.mac_for(id, timestamp, body);
        let valid = signature
            .split(|b| *b == b' ')
            .filter_map(|entry| entry.strip_prefix(b"v1,"))
            .filter_map(|encoded| LENIENT_BASE64.decode(encoded).ok())
            .filter(|tag| tag.len() == TAG_LEN)
            // Every candidate is checked (no early exit), each in constant time.
            .fold(false, |found, tag| {
                expected.clone().verify_slice(&tag).is_ok() | found
            });
        if !valid {
            return Err(WebhookError::NoValidSignature);
        }
        Ok(())
    }

    fn check_skew(&self, sent: i64, now: OffsetDateTime) -> Result<(), WebhookError> {
        let now = i128::from(now.unix_timestamp());
        let sent = i128::from(sent);
        let skew = |d: i128| Duration::from_secs(u64::try_from(d).unwrap_or(u64::MAX));
        if now >= sent {
            let skew = skew(now - sent);
            if skew > self.tolerance {
                return Err(WebhookError::TooOld { skew });
            }
        } else {
            let skew = skew(sent - now);
            if skew > self.tolerance {
                return Err(WebhookError::TooNew { skew });
            }
        }
        Ok(())
    }
}

/// The body as a webhook message. Serde's message names a position and what was expected; it
/// never quotes the body.
fn parse_message(body: &[u8]) -> Result<WebhookMessage, WebhookError> {
    serde_json::from_slice(body).map_err(|e| {
        WebhookError::InvalidBody(format!(
            "{} at line {} column {}",
            match e.classify() {
                serde_json::error::Category::Io => "unreadable",
                serde_json::error::Category::Syntax => "not JSON",
                serde_json::error::Category::Data => "not a webhook message",
                serde_json::error::Category::Eof => "cut short",
            },
            e.line(),
            e.column()
        ))
    })
}

/// A message whose signature and timestamp checked out, not parsed yet: what an app may queue
/// (it is the raw body, byte for byte) before handling it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedWebhook {
    /// `webhook-id`: the same for every retry of one message, so it is the de-duplication key.
    pub id: String,
    /// `webhook-timestamp` in Unix seconds: when this attempt was sent.
    pub timestamp: i64,
    /// The raw body.
    pub body: Vec<u8>,
}

impl VerifiedWebhook {
    /// When this attempt was sent (`webhook-timestamp`).
    pub fn sent_at(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.timestamp).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// The body as a [`WebhookMessage`].
    ///
    /// # Errors
    ///
    /// [`WebhookError::InvalidBody`] when it is not one (the error does not quote the body).
    pub fn message(&self) -> Result<WebhookMessage, WebhookError> {
        parse_message(&self.body)
    }

    /// The body as a typed [`WebhookEvent`] (unknown types kept).
    ///
    /// # Errors
    ///
    /// [`WebhookError::InvalidBody`] when it is not a webhook message.
    pub fn event(&self) -> Result<event::WebhookEvent, WebhookError> {
        self.message().map(event::WebhookEvent::from)
    }
}

/// Decimal Unix seconds, ASCII digits only (no sign, no space), at most 19 digits.
fn parse_timestamp(raw: &[u8]) -> Result<i64, WebhookError> {
    if raw.is_empty() || raw.len() > 19 || !raw.iter().all(u8::is_ascii_digit) {
        return Err(WebhookError::InvalidTimestamp);
    }
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(WebhookError::InvalidTimestamp)
}

/// Verifies a webhook message with Basiq's settings ([`Verifier::default`]: 5 minutes).
///
/// # Errors
///
/// See [`Verifier::verify_parts`].
pub fn verify(
    secret: &WebhookSecret,
    headers: &http::HeaderMap,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<WebhookMessage, WebhookError> {
    Verifier::new().verify(secret, headers, body, now)
}

/// The `webhook-signature` value Basiq would send for this message: `v1,<base64>` of
/// HMAC-SHA256 over `{id}.{timestamp}.{body}`. For tests, and for an emulator sending webhooks.
/// `timestamp` is Unix seconds, as in the `webhook-timestamp` header ([`verify`] accepts only
/// non-negative ones, as Basiq sends).
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = secret
        .mac_for(id.as_bytes(), timestamp.to_string().as_bytes(), body)
        .finalize()
        .into_bytes();
    format!("v1,{}", STANDARD.encode(tag))
}

pub mod event;
pub mod seen;

pub use event::WebhookEvent;
pub use seen::{Claim, MemorySeenStore, SeenStore};

#[cfg(test)]
mod tests;
