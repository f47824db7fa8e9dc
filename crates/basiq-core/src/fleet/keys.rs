//! Where each piece of fleet state lives: one prefix per app or environment, hash-tagged.

use std::fmt::Write as _;

use time::{Date, OffsetDateTime};

use super::store::FleetKey;
use crate::error::Error;
use crate::id::{ConnectionId, InstitutionId, UserId};

/// The keys of one fleet. Every key starts with the prefix in braces, `{basiq:prod}:token`, so on
/// Redis Cluster they all hash to one slot (the braces are Redis's hash tag) and each Lua script
/// touches keys of one slot only. Id parts are escaped (`:` → `%3A`), so two different ids can
/// never produce the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetKeys {
    tag: String,
}

impl FleetKeys {
    /// Keys under `prefix` — one per app *and* environment (sandbox and production apps must not
    /// share a token). 1 to 64 printable ASCII characters without spaces or braces.
    pub fn new(prefix: &str) -> Result<Self, Error> {
        let ok = !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'{' && b != b'}');
        if !ok {
            return Err(Error::config(format!(
                "fleet key prefix {prefix:?}: use 1 to 64 printable ASCII characters without spaces or braces"
            )));
        }
        Ok(Self {
            tag: format!("{{{prefix}}}"),
        })
    }

    /// The prefix as given.
    pub fn prefix(&self) -> &str {
        &self.tag[1..self.tag.len() - 1]
    }

    fn key(&self, parts: &[&str]) -> FleetKey {
        let mut key = self.tag.clone();
        for part in parts {
            key.push(':');
            for c in part.chars() {
                match c {
                    ':' => key.push_str("%3A"),
                    '%' => key.push_str("%25"),
                    c => key.push(c),
                }
            }
        }
        FleetKey::new(key)
    }

    /// The shared server token (sealed if the app gave a key).
    pub fn token(&self) -> FleetKey {
        self.key(&["token"])
    }

    /// The lock whose holder fetches the next server token.
    pub fn token_lock(&self) -> FleetKey {
        self.key(&["token", "lock"])
    }

    /// Set after a failed `/token` fetch: until it expires the fleet does not ask `/token` again.
    pub fn token_backoff(&self) -> FleetKey {
        self.key(&["token", "backoff"])
    }

    /// Refreshes reserved for `connection` on the UTC `day`.
    pub fn quota(&self, connection: &ConnectionId, day: Date) -> FleetKey {
        let mut d = String::new();
        let _ = write!(
            d,
            "{:04}-{:02}-{:02}",
            day.year(),
            u8::from(day.month()),
            day.day()
        );
        self.key(&["quota", connection.as_str(), &d])
    }

    /// The claim on a running refresh attempt of `connection`.
    pub fn refresh_attempt(&self, connection: &ConnectionId) -> FleetKey {
        self.key(&["attempt", "refresh", connection.as_str()])
    }

    /// The claim on a running consent attempt of `user` at `institution` (`*` when the
    /// institution is not known: the user picks one in the Consent UI).
    pub fn consent_attempt(&self, user: &UserId, institution: Option<&InstitutionId>) -> FleetKey {
        let institution = institution.map_or("*", InstitutionId::as_str);
        self.key(&["attempt", "consent", user.as_str(), institution])
    }

    /// A handled (or claimed) webhook message, by its `webhook-id`.
    pub fn webhook_seen(&self, webhook_id: &str) -> FleetKey {
        self.key(&["webhook", "seen", webhook_id])
    }

    /// When Basiq last refreshed `connection`, as its webhooks said (the freshness ledger).
    pub fn freshness(&self, connection: &ConnectionId) -> FleetKey {
        self.key(&["fresh", connection.as_str()])
    }

    /// The claim on a planned refresh slot of `connection` at `at`.
    pub fn planned_slot(&self, connection: &ConnectionId, at: OffsetDateTime) -> FleetKey {
        let slot = at.unix_timestamp().to_string();
        self.key(&["plan", connection.as_str(), &slot])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_hash_tagged_and_unambiguous() {
        let keys = FleetKeys::new("basiq:prod").unwrap();
        assert_eq!(keys.prefix(), "basiq:prod");
        assert_eq!(keys.token().as_str(), "{basiq:prod}:token");
        assert_eq!(keys.token_lock().as_str(), "{basiq:prod}:token:lock");
        let day = time::macros::date!(2026 - 01 - 05);
        let conn = ConnectionId::new("c:1").unwrap();
        assert_eq!(
            keys.quota(&conn, day).as_str(),
            "{basiq:prod}:quota:c%3A1:2026-01-05"
        );
        let a = keys.consent_attempt(
            &UserId::new("u:1").unwrap(),
            Some(&InstitutionId::new("AU1").unwrap()),
        );
        let b = keys.consent_attempt(
            &UserId::new("u").unwrap(),
            Some(&InstitutionId::new("1:AU1").unwrap()),
        );
        assert_ne!(a, b);
        for bad in ["", "a b", "{x}", "é"] {
            assert!(FleetKeys::new(bad).is_err(), "{bad:?}");
        }
    }
}
