//! The consent lifecycle: per user, what the app must do about their consents at `now`.
//!
//! Basiq's rules (consent guide, consent events): a consent lasts until its `expiryDate`, and
//! Basiq warns 7 days before (`consent.warning`) — ask the user to re-consent (extend) before it
//! runs out. Once it is revoked or expired no more data is read, and the app must delete or
//! de-identify its copy: purge the user's connections at Basiq and delete local data. A change
//! of the app's consent policy (scopes, purpose) applies only to *new* consents: users whose
//! consent predates it must consent again.
//!
//! [`ConsentPolicy::review`] turns a user's consents (`GET /users/{id}/consents`) into one
//! [`ConsentVerdict`]; the facade's `consent_lifecycle` acts on it (a re-consent link through the
//! duplicate-pause guard, or one purge per active connection).
//!
//! ```
//! use basiq_core::consent_lifecycle::{ConsentPolicy, ConsentVerdict};
//! use basiq_core::models::Consent;
//! use time::macros::datetime;
//!
//! let consent: Consent = serde_json::from_str(r#"{"id": "k1", "status": "active",
//!     "created": "2025-01-10T00:00:00Z", "expiryDate": "2026-01-10T00:00:00Z"}"#)?;
//! let verdict = ConsentPolicy::new().review(&[consent], datetime!(2026-01-05 10:00 UTC));
//! assert!(matches!(verdict, ConsentVerdict::ExpiringSoon { .. }));
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::collections::BTreeSet;
use std::time::Duration;

use time::OffsetDateTime;

use crate::models::{Consent, ConsentStatus};
use crate::time_util;

/// Basiq's warning horizon: `consent.warning` comes 7 days before expiry.
pub const DEFAULT_WARN_BEFORE: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// What the app's *current* consent policy asks of a consent. Empty (the default) accepts any
/// consent; each requirement added makes older consents ask for a re-consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentPolicy {
    /// How long before expiry to ask for a re-consent.
    pub warn_before: Duration,
    /// Scopes (`data.permissions[].scope`) the app needs consented.
    pub required_scopes: BTreeSet<String>,
    /// The primary purpose title the app's policy states, if it checks it.
    pub purpose: Option<String>,
    /// When the current policy took effect: consents given before it predate it.
    pub effective_from: Option<OffsetDateTime>,
}

impl Default for ConsentPolicy {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a consent does not match the app's current policy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyGap {
    /// Basiq says a newer consent policy exists (`links.latestConsentPolicy` differs from
    /// `links.consentPolicy`).
    NewerPolicyAtBasiq,
    /// Given before the app's policy took effect.
    GivenBefore(OffsetDateTime),
    /// Scopes the policy needs that were not consented.
    MissingScopes(BTreeSet<String>),
    /// Another primary purpose than the policy's.
    OtherPurpose(Option<String>),
}

/// Why a consent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentEnd {
    /// The user (or the app) revoked it.
    Revoked,
    /// It ran out.
    Expired,
}

/// What to do about one user's consents.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsentVerdict {
    /// An active consent matches the policy and is not close to expiry: nothing to do.
    Current {
        /// The consent.
        consent_id: String,
        /// When it expires, if Basiq says.
        expires_at: Option<OffsetDateTime>,
    },
    /// The active consent expires within the warning horizon: send the user a re-consent
    /// (extend) link.
    ExpiringSoon {
        /// The consent.
        consent_id: String,
        /// When it expires.
        expires_at: OffsetDateTime,
    },
    /// The active consent predates the app's current policy: ask the user to consent again.
    PredatesPolicy {
        /// The consent.
        consent_id: String,
        /// What differs.
        gaps: Vec<PolicyGap>,
    },
    /// No active consent, and the latest one ended: purge the user's data at Basiq and delete
    /// or de-identify the local copy.
    Ended {
        /// The consent that ended last.
        consent_id: String,
        /// Revoked or expired.
        end: ConsentEnd,
        /// When, if known.
        at: Option<OffsetDateTime>,
    },
    /// The user never consented (no consent at all).
    NoConsent,
}

impl ConsentVerdict {
    /// Whether the user should be sent to the Consent UI.
    pub fn needs_reconsent(&self) -> bool {
        matches!(
            self,
            Self::ExpiringSoon { .. } | Self::PredatesPolicy { .. }
        )
    }

    /// Whether the user's data must be purged and deleted.
    pub fn needs_purge(&self) -> bool {
        matches!(self, Self::Ended { .. })
    }
}

/// The scopes a consent granted: `data.permissions[]` entries with a `scope` and not
/// `consented: false`.
pub fn consented_scopes(consent: &Consent) -> BTreeSet<String> {
    consent
        .data
        .iter()
        .flat_map(|d| d.permissions.iter())
        .filter(|p| p.get("consented").and_then(serde_json::Value::as_bool) != Some(false))
        .filter_map(|p| p.get("scope").and_then(serde_json::Value::as_str))
        .map(str::to_owned)
        .collect()
}

fn purpose_title(consent: &Consent) -> Option<String> {
    let primary = consent.purpose.as_ref()?.primary.as_ref()?;
    primary
        .get("title")
        .and_then(serde_json::Value::as_str)
        .or_else(|| primary.as_str())
        .map(str::to_owned)
}

/// The consent's state at `now`: `None` = active. Basiq's `status` decides; an `active` one
/// past its `expiryDate` has expired (the status may lag), a `revoked` time ends it too.
fn ended(consent: &Consent, now: OffsetDateTime) -> Option<(ConsentEnd, Option<OffsetDateTime>)> {
    match &consent.status {
        Some(ConsentStatus::Revoked) => return Some((ConsentEnd::Revoked, consent.revoked)),
        Some(ConsentStatus::Expired) => return Some((ConsentEnd::Expired, consent.expiry_date)),
        _ => {}
    }
    if let Some(at) = consent.revoked.filter(|at| *at <= now) {
        return Some((ConsentEnd::Revoked, Some(at)));
    }
    if let Some(at) = consent.expiry_date.filter(|at| *at <= now) {
        return Some((ConsentEnd::Expired, Some(at)));
    }
    None
}

impl ConsentPolicy {
    /// Basiq's warning horizon (7 days), no scope, purpose or date requirement.
    pub fn new() -> Self {
        Self {
            warn_before: DEFAULT_WARN_BEFORE,
            required_scopes: BTreeSet::new(),
            purpose: None,
            effective_from: None,
        }
    }

    /// Another warning horizon.
    pub fn warn_before(mut self, horizon: Duration) -> Self {
        self.warn_before = horizon;
        self
    }

    /// Scopes the app needs (e.g. `TRANSACTION_DETAILS`).
    pub fn require_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required_scopes
            .extend(scopes.into_iter().map(Into::into));
        self
    }

    /// The primary purpose title the app's policy states.
    pub fn purpose(mut self, title: impl Into<String>) -> Self {
        self.purpose = Some(title.into());
        self
    }

    /// When the app's current policy took effect.
    pub fn effective_from(mut self, at: OffsetDateTime) -> Self {
        self.effective_from = Some(at);
        self
    }

    /// What differs between `consent` and this policy (empty = it matches).
    pub fn gaps(&self, consent: &Consent) -> Vec<PolicyGap> {
        let mut gaps = Vec::new();
        if let Some(links) = &consent.links {
            if let (Some(given), Some(latest)) =
                (&links.consent_policy, &links.latest_consent_policy)
            {
                if given != latest {
                    gaps.push(PolicyGap::NewerPolicyAtBasiq);
                }
            }
        }
        if let (Some(from), Some(created)) = (self.effective_from, consent.created) {
            if created < from {
                gaps.push(PolicyGap::GivenBefore(created));
            }
        }
        let granted = consented_scopes(consent);
        let missing: BTreeSet<String> =
            self.required_scopes.difference(&granted).cloned().collect();
        if !missing.is_empty() {
            gaps.push(PolicyGap::MissingScopes(missing));
        }
        if let Some(wanted) = &self.purpose {
            let title = purpose_title(consent);
            if title.as_deref() != Some(wanted.as_str()) {
                gaps.push(PolicyGap::OtherPurpose(title));
            }
        }
        gaps
    }

    /// The verdict for one user's `consents` at `now`. With several active consents the one
    /// expiring last decides (the user has already re-consented); with none, the one that
    /// ended last.
    pub fn review(&self, consents: &[Consent], now: OffsetDateTime) -> ConsentVerdict {
        let active = consents
            .iter()
            .filter(|c| ended(c, now).is_none())
            .max_by_key(|c| (c.expiry_date.is_none(), c.expiry_date, c.created));
        if let Some(consent) = active {
            let gaps = self.gaps(consent);
            if !gaps.is_empty() {
                return ConsentVerdict::PredatesPolicy {
                    consent_id: consent.id.clone(),
                    gaps,
                };
            }
            if let Some(expires_at) = consent.expiry_date {
                if time_util::add(now, self.warn_before) >= expires_at {
                    return ConsentVerdict::ExpiringSoon {
                        consent_id: consent.id.clone(),
                        expires_at,
                    };
                }
            }
            return ConsentVerdict::Current {
                consent_id: consent.id.clone(),
                expires_at: consent.expiry_date,
            };
        }
        consents
            .iter()
            .filter_map(|c| ended(c, now).map(|(end, at)| (c, end, at)))
            .max_by_key(|(c, _, at)| (*at, c.updated, c.created))
            .map_or(ConsentVerdict::NoConsent, |(c, end, at)| {
                ConsentVerdict::Ended {
                    consent_id: c.id.clone(),
                    end,
                    at,
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-01-05 10:00 UTC);

    fn consent(value: serde_json::Value) -> Consent {
        serde_json::from_value(value).unwrap()
    }

    fn active(id: &str, created: &str, expires: &str) -> Consent {
        consent(json!({
            "id": id, "status": "active", "created": created, "expiryDate": expires,
            "purpose": { "primary": { "title": "Lending" } },
            "data": { "permissions": [
                { "scope": "ACCOUNT_NAME_BALANCE", "consented": true },
                { "scope": "TRANSACTION_DETAILS", "consented": true },
                { "scope": "CUSTOMER_DETAILS", "consented": false },
            ] },
            "links": { "consentPolicy": "p/1", "latestConsentPolicy": "p/1" },
        }))
    }

    #[test]
    fn a_consent_expiring_within_seven_days_asks_for_a_reconsent() {
        let policy = ConsentPolicy::new();
        let soon = active("k1", "2025-01-10T00:00:00Z", "2026-01-12T09:59:59Z");
        assert_eq!(
            policy.review(std::slice::from_ref(&soon), NOW),
            ConsentVerdict::ExpiringSoon {
                consent_id: "k1".into(),
                expires_at: datetime!(2026-01-12 09:59:59 UTC)
            }
        );
        let later = active("k2", "2025-06-10T00:00:00Z", "2026-06-10T00:00:00Z");
        assert!(matches!(
            policy.review(std::slice::from_ref(&later), NOW),
            ConsentVerdict::Current { .. }
        ));
        // Re-consented: the newer consent decides.
        assert!(matches!(
            policy.review(&[soon, later], NOW),
            ConsentVerdict::Current { consent_id, .. } if consent_id == "k2"
        ));
    }

    #[test]
    fn revoked_or_expired_consents_end_in_a_purge() {
        let policy = ConsentPolicy::new();
        let revoked = consent(json!({"id": "k1", "status": "revoked",
            "revoked": "2026-01-04T00:00:00Z", "expiryDate": "2026-06-01T00:00:00Z"}));
        assert_eq!(
            policy.review(&[revoked], NOW),
            ConsentVerdict::Ended {
                consent_id: "k1".into(),
                end: ConsentEnd::Revoked,
                at: Some(datetime!(2026-01-04 0:00 UTC))
            }
        );
        // Status lagging behind the expiry date.
        let lapsed = active("k2", "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z");
        assert!(matches!(
            policy.review(&[lapsed], NOW),
            ConsentVerdict::Ended {
                end: ConsentEnd::Expired,
                ..
            }
        ));
        assert_eq!(policy.review(&[], NOW), ConsentVerdict::NoConsent);
    }

    #[test]
    fn consents_predating_the_policy_ask_for_a_reconsent() {
        let fine = active("k1", "2025-06-10T00:00:00Z", "2026-06-10T00:00:00Z");
        let base = ConsentPolicy::new().require_scopes(["TRANSACTION_DETAILS"]);
        assert!(base.gaps(&fine).is_empty());
        let cases = [
            (
                base.clone().require_scopes(["CUSTOMER_DETAILS"]),
                PolicyGap::MissingScopes(["CUSTOMER_DETAILS".to_owned()].into()),
            ),
            (
                base.clone().purpose("Budgeting"),
                PolicyGap::OtherPurpose(Some("Lending".into())),
            ),
            (
                base.clone().effective_from(datetime!(2025-09-01 0:00 UTC)),
                PolicyGap::GivenBefore(datetime!(2025-06-10 0:00 UTC)),
            ),
        ];
        for (policy, gap) in cases {
            assert_eq!(
                policy.review(std::slice::from_ref(&fine), NOW),
                ConsentVerdict::PredatesPolicy {
                    consent_id: "k1".into(),
                    gaps: vec![gap]
                }
            );
        }
        let mut outdated = fine.clone();
        if let Some(links) = outdated.links.as_mut() {
            links.latest_consent_policy = Some("p/2".into());
        }
        assert!(matches!(
            ConsentPolicy::new().review(&[outdated], NOW),
            ConsentVerdict::PredatesPolicy { gaps, .. } if gaps == vec![PolicyGap::NewerPolicyAtBasiq]
        ));
    }

    fn arb_consent() -> impl Strategy<Value = Consent> {
        (
            0u8..3,
            -400i64..400,
            proptest::option::of(-30i64..30),
            any::<bool>(),
        )
            .prop_map(|(status, expires_in_days, revoked_days, lagging)| {
                let status = ["active", "revoked", "expired"][usize::from(status)];
                let expiry = NOW + time::Duration::days(expires_in_days);
                let mut c =
                    consent(json!({ "id": format!("k{expires_in_days}"), "status": status }));
                c.expiry_date = Some(expiry);
                c.created = Some(expiry - time::Duration::days(365));
                if !lagging {
                    c.revoked = revoked_days.map(|d| NOW + time::Duration::days(d));
                }
                c
            })
    }

    proptest! {
        /// Ended iff no consent is active; a re-consent is asked only for an active consent
        /// that expires within the horizon (the default policy has no other requirement); never
        /// `NoConsent` when consents exist.
        #[test]
        fn verdicts_follow_the_consents(consents in proptest::collection::vec(arb_consent(), 0..5)) {
            let verdict = ConsentPolicy::new().review(&consents, NOW);
            let any_active = consents.iter().any(|c| ended(c, NOW).is_none());
            prop_assert_eq!(verdict.needs_purge(), !any_active && !consents.is_empty());
            prop_assert_eq!(verdict == ConsentVerdict::NoConsent, consents.is_empty());
            if let ConsentVerdict::ExpiringSoon { expires_at, .. } = &verdict {
                prop_assert!(*expires_at > NOW);
                prop_assert!(*expires_at - NOW <= time::Duration::days(7));
            }
            if let ConsentVerdict::Current { expires_at: Some(at), .. } = &verdict {
                prop_assert!(*at - NOW > time::Duration::days(7));
            }
        }
    }
}
