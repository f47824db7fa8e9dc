//! Typed webhook events: what a verified [`WebhookMessage`] is about, with the ids read from its
//! `links.eventEntity`.
//!
//! Basiq's messages are *thin*: `{eventTypeId, eventId, links: {event, eventEntity}}`. The type
//! says what happened, the entity link which user, connection, consent or account it happened
//! to (`…/users/{userId}/connections/{connectionId}`; a data link may carry a filter such as
//! `…/transactions?filter=connection.id.eq('…')`). [`WebhookEvent::from`] reads both, so an app
//! matches on a variant instead of parsing URLs; a type this SDK does not know yet is kept whole
//! as [`WebhookEvent::Unknown`], never dropped. The full event (`GET /events/{id}`) is one call
//! away through `links.event` when the app needs more than the ids.
//!
//! ```
//! use basiq_core::webhooks::{WebhookEvent, WebhookMessage};
//!
//! let message: WebhookMessage = serde_json::from_str(r#"{"eventTypeId": "transactions.updated",
//!     "eventId": "e1", "links": {"event": "https://au-api.basiq.io/events/e1",
//!     "eventEntity": "https://au-api.basiq.io/users/u1/transactions?filter=connection.id.eq('c1')"}}"#)?;
//! let event = WebhookEvent::from(message);
//! assert!(matches!(event, WebhookEvent::TransactionsUpdated(_)));
//! assert_eq!(event.user_id().map(|u| u.as_str()), Some("u1"));
//! // Basiq refreshed connection c1: the refresh guard need not.
//! assert_eq!(event.refreshed_connection().map(|c| c.as_str()), Some("c1"));
//! # Ok::<(), serde_json::Error>(())
//! ```

use url::Url;

use super::{EventType, WebhookMessage};
use crate::id::{AccountId, ConnectionId, UserId};

/// The ids a message's `links.eventEntity` names. Each is `None` when the link does not carry
/// it (or carries something that is not a valid id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventSubject {
    /// `/users/{id}`.
    pub user_id: Option<UserId>,
    /// `/connections/{id}`, or a `connection.id.eq('…')` filter.
    pub connection_id: Option<ConnectionId>,
    /// `/consents/{id}`.
    pub consent_id: Option<String>,
    /// `/accounts/{id}`, or an `account.id.eq('…')` filter.
    pub account_id: Option<AccountId>,
}

impl EventSubject {
    /// Reads the ids from an entity link. Never fails: a link of another shape names nothing.
    pub fn from_link(link: &str) -> Self {
        let mut subject = Self::default();
        let Ok(url) = Url::parse(link) else {
            return subject;
        };
        let segments: Vec<String> = url
            .path_segments()
            .map(|s| {
                s.map(|seg| {
                    percent_encoding::percent_decode_str(seg)
                        .decode_utf8_lossy()
                        .into_owned()
                })
                .collect()
            })
            .unwrap_or_default();
        for pair in segments.windows(2) {
            let (collection, id) = (pair[0].as_str(), pair[1].clone());
            match collection {
                "users" => subject.user_id = UserId::new(id).ok(),
                "connections" => subject.connection_id = ConnectionId::new(id).ok(),
                "consents" => subject.consent_id = (!id.is_empty()).then_some(id),
                "accounts" => subject.account_id = AccountId::new(id).ok(),
                _ => {}
            }
        }
        for (name, value) in url.query_pairs() {
            if name != "filter" {
                continue;
            }
            for condition in value.split(',') {
                if let Some(id) = eq_value(condition, "connection.id") {
                    subject.connection_id = subject.connection_id.or(ConnectionId::new(id).ok());
                }
                if let Some(id) = eq_value(condition, "account.id") {
                    subject.account_id = subject.account_id.or(AccountId::new(id).ok());
                }
            }
        }
        subject
    }
}

/// `field.eq('value')` → `value`.
fn eq_value<'a>(condition: &'a str, field: &str) -> Option<&'a str> {
    condition
        .trim()
        .strip_prefix(field)?
        .strip_prefix(".eq(")?
        .strip_suffix(')')
        .map(|v| v.trim_matches(|c| c == '\'' || c == '"'))
}

/// A verified message with the ids it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventDetails {
    /// The message as Basiq sent it.
    pub message: WebhookMessage,
    /// The ids from its entity link.
    pub subject: EventSubject,
}

/// A typed Basiq event: one variant per event type Basiq lists (`GET /events/types` and the
/// consent events guide), [`Unknown`](Self::Unknown) for any other.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebhookEvent {
    /// `user.created`
    UserCreated(EventDetails),
    /// `user.updated`
    UserUpdated(EventDetails),
    /// `user.deleted`: delete the user's local data.
    UserDeleted(EventDetails),
    /// `connection.created`
    ConnectionCreated(EventDetails),
    /// `connection.activated`
    ConnectionActivated(EventDetails),
    /// `connection.invalidated`: the user must act (re-enter credentials, reauthorise).
    ConnectionInvalidated(EventDetails),
    /// `connection.deleted`
    ConnectionDeleted(EventDetails),
    /// `consent.created`
    ConsentCreated(EventDetails),
    /// `consent.updated`
    ConsentUpdated(EventDetails),
    /// `consent.revoked`: purge the user's data at Basiq and delete the local copy.
    ConsentRevoked(EventDetails),
    /// `consent.expired`: as revoked.
    ConsentExpired(EventDetails),
    /// `consent.warning`: the consent expires soon (7 days): ask the user to re-consent.
    ConsentWarning(EventDetails),
    /// `consent.reminder`: active for 90 days since the last update.
    ConsentReminder(EventDetails),
    /// `consent.archived`
    ConsentArchived(EventDetails),
    /// `account.updated`: Basiq read the accounts (a connection, a refresh, the smart cache).
    AccountUpdated(EventDetails),
    /// `transactions.updated`: Basiq read the transactions.
    TransactionsUpdated(EventDetails),
    /// A type this SDK does not know (yet), kept whole.
    Unknown(EventDetails),
}

impl From<WebhookMessage> for WebhookEvent {
    fn from(message: WebhookMessage) -> Self {
        let subject = EventSubject::from_link(&message.links.event_entity);
        let kind = message.event_type_id.clone();
        let details = EventDetails { message, subject };
        match kind {
            EventType::UserCreated => Self::UserCreated(details),
            EventType::UserUpdated => Self::UserUpdated(details),
            EventType::UserDeleted => Self::UserDeleted(details),
            EventType::ConnectionCreated => Self::ConnectionCreated(details),
            EventType::ConnectionActivated => Self::ConnectionActivated(details),
            EventType::ConnectionInvalidated => Self::ConnectionInvalidated(details),
            EventType::ConnectionDeleted => Self::ConnectionDeleted(details),
            EventType::ConsentCreated => Self::ConsentCreated(details),
            EventType::ConsentUpdated => Self::ConsentUpdated(details),
            EventType::ConsentRevoked => Self::ConsentRevoked(details),
            EventType::ConsentExpired => Self::ConsentExpired(details),
            EventType::ConsentWarning => Self::ConsentWarning(details),
            EventType::ConsentReminder => Self::ConsentReminder(details),
            EventType::ConsentArchived => Self::ConsentArchived(details),
            EventType::AccountUpdated => Self::AccountUpdated(details),
            EventType::TransactionsUpdated => Self::TransactionsUpdated(details),
            EventType::Other(_) => Self::Unknown(details),
        }
    }
}

impl WebhookEvent {
    /// The message and ids, whatever the variant.
    pub fn details(&self) -> &EventDetails {
        match self {
            Self::UserCreated(d)
            | Self::UserUpdated(d)
            | Self::UserDeleted(d)
            | Self::ConnectionCreated(d)
            | Self::ConnectionActivated(d)
            | Self::ConnectionInvalidated(d)
            | Self::ConnectionDeleted(d)
            | Self::ConsentCreated(d)
            | Self::ConsentUpdated(d)
            | Self::ConsentRevoked(d)
            | Self::ConsentExpired(d)
            | Self::ConsentWarning(d)
            | Self::ConsentReminder(d)
            | Self::ConsentArchived(d)
            | Self::AccountUpdated(d)
            | Self::TransactionsUpdated(d)
            | Self::Unknown(d) => d,
        }
    }

    /// The message as Basiq sent it.
    pub fn message(&self) -> &WebhookMessage {
        &self.details().message
    }

    /// `eventTypeId`.
    pub fn event_type(&self) -> &EventType {
        &self.message().event_type_id
    }

    /// `eventId` (for `GET /events/{id}`).
    pub fn event_id(&self) -> &str {
        &self.message().event_id
    }

    /// The user it is about, when the entity link names one.
    pub fn user_id(&self) -> Option<&UserId> {
        self.details().subject.user_id.as_ref()
    }

    /// The connection it is about, when the entity link names one.
    pub fn connection_id(&self) -> Option<&ConnectionId> {
        self.details().subject.connection_id.as_ref()
    }

    /// The connection Basiq just refreshed, when this event says so: `transactions.updated`
    /// and `account.updated` (Basiq read the bank: a refresh, a new connection or the smart
    /// cache), and `connection.updated` (not in Basiq's type list, but in its event examples,
    /// with the connection's new `lastUsed`), each only when the entity link names the
    /// connection. This is what feeds the freshness ledger.
    pub fn refreshed_connection(&self) -> Option<&ConnectionId> {
        let refreshes = match self {
            Self::TransactionsUpdated(_) | Self::AccountUpdated(_) => true,
            Self::Unknown(d) => d.message.event_type_id.as_str() == "connection.updated",
            _ => false,
        };
        refreshes.then(|| self.connection_id()).flatten()
    }

    /// Whether the event ends the user's consent (revoked, expired): the app must purge the
    /// data at Basiq and delete or de-identify its own copy.
    pub fn ends_consent(&self) -> bool {
        matches!(self, Self::ConsentRevoked(_) | Self::ConsentExpired(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: &str, entity: &str) -> WebhookMessage {
        serde_json::from_value(serde_json::json!({
            "eventTypeId": kind,
            "eventId": "e1",
            "links": { "event": "https://au-api.basiq.io/events/e1", "eventEntity": entity },
        }))
        .unwrap()
    }

    /// Every type Basiq lists in `GET /events/types` (core.json) plus `consent.archived`
    /// (consent events guide).
    const BASIQ_TYPES: &[&str] = &[
        "account.updated",
        "connection.activated",
        "connection.created",
        "connection.deleted",
        "connection.invalidated",
        "consent.created",
        "consent.expired",
        "consent.reminder",
        "consent.revoked",
        "consent.updated",
        "consent.warning",
        "transactions.updated",
        "user.created",
        "user.deleted",
        "user.updated",
        "consent.archived",
    ];

    #[test]
    fn every_listed_type_has_its_own_variant_and_unknown_ones_are_kept() {
        let entity = "https://au-api.basiq.io/users/u1";
        let mut seen = std::collections::HashSet::new();
        for kind in BASIQ_TYPES {
            let event = WebhookEvent::from(message(kind, entity));
            assert!(
                !matches!(event, WebhookEvent::Unknown(_)),
                "{kind} is a listed type"
            );
            assert_eq!(event.event_type().as_str(), *kind);
            assert!(
                seen.insert(std::mem::discriminant(&event)),
                "{kind}: one variant per type"
            );
        }
        let unknown = WebhookEvent::from(message("payment.settled", entity));
        let WebhookEvent::Unknown(details) = &unknown else {
            panic!("an unknown type is Unknown: {unknown:?}");
        };
        assert_eq!(details.message.event_type_id.as_str(), "payment.settled");
        assert_eq!(unknown.user_id().map(UserId::as_str), Some("u1"));
    }

    #[test]
    fn entity_links_name_their_ids() {
        let s = EventSubject::from_link("https://au-api.basiq.io/users/u1/connections/c%2D1");
        assert_eq!(s.user_id.as_ref().map(UserId::as_str), Some("u1"));
        assert_eq!(
            s.connection_id.as_ref().map(ConnectionId::as_str),
            Some("c-1")
        );
        let s = EventSubject::from_link("https://x/users/u1/consents/k9");
        assert_eq!(s.consent_id.as_deref(), Some("k9"));
        let s = EventSubject::from_link(
            "https://x/users/u1/transactions?filter=account.id.eq('a1'),connection.id.eq('c2')",
        );
        assert_eq!(
            s.connection_id.as_ref().map(ConnectionId::as_str),
            Some("c2")
        );
        assert_eq!(s.account_id.as_ref().map(AccountId::as_str), Some("a1"));
        // A path trick is not an id.
        let s = EventSubject::from_link("https://x/users/..%2Fadmin");
        assert_eq!(s.user_id, None);
        assert_eq!(
            EventSubject::from_link("not a url"),
            EventSubject::default()
        );
    }

    #[test]
    fn only_data_updates_naming_a_connection_mean_refreshed() {
        let conn = "https://x/users/u1/connections/c1";
        let refreshed = |kind: &str, entity: &str| {
            WebhookEvent::from(message(kind, entity))
                .refreshed_connection()
                .map(|c| c.as_str().to_owned())
        };
        assert_eq!(
            refreshed("transactions.updated", conn).as_deref(),
            Some("c1")
        );
        assert_eq!(refreshed("account.updated", conn).as_deref(), Some("c1"));
        assert_eq!(refreshed("connection.updated", conn).as_deref(), Some("c1"));
        assert_eq!(
            refreshed("transactions.updated", "https://x/users/u1/transactions"),
            None
        );
        assert_eq!(refreshed("connection.created", conn), None);
        assert_eq!(refreshed("connection.invalidated", conn), None);
    }
}
