//! The consent lifecycle, acted on: `client.consent_lifecycle(user, &policy)`.
//!
//! The pure rules are [`basiq_core::consent_lifecycle`] (re-exported here): a user's consents
//! and the app's [`ConsentPolicy`] give one [`ConsentVerdict`]. The client method reads the
//! consents (`GET /users/{id}/consents`) and does what the verdict asks:
//!
//! | verdict | follow-up |
//! |---|---|
//! | `ExpiringSoon` (within 7 days; Basiq's `consent.warning`) | [`consent_url`](crate::Client::consent_url) with `action=extend`, through the duplicate-pause guard → [`ConsentFollowUp::Reconsent`] |
//! | `PredatesPolicy` (scopes, purpose or date of the app's current policy) | `consent_url` with `action=connect` → [`ConsentFollowUp::Reconsent`] |
//! | `Ended` (revoked or expired) | one `POST …/purge` per **active** connection of the user (Basiq purges only active ones) → [`ConsentFollowUp::Purged`], naming what to delete locally |
//! | `Current`, `NoConsent` | nothing, no further request |
//!
//! Call it when a `consent.*` webhook arrives (de-duplicated by the receiver, so a revocation
//! purges once) and in the app's daily check.

use basiq_core::id::{ConnectionId, UserId};

pub use basiq_core::consent_lifecycle::*;

use crate::ConsentOutcome;

/// What [`consent_lifecycle`](crate::Client::consent_lifecycle) found and did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsentReview {
    /// The verdict on the user's consents.
    pub verdict: ConsentVerdict,
    /// What was done about it.
    pub follow_up: ConsentFollowUp,
}

/// What was done about a verdict.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ConsentFollowUp {
    /// Nothing to do.
    Nothing,
    /// Send the user to the Consent UI (a link), or follow the attempt already running.
    Reconsent(ConsentOutcome),
    /// The consent ended: the user's data was purged at Basiq; delete the local copy.
    Purged(PurgeReport),
}

/// The purges made after a consent ended, and what the app must delete or de-identify.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PurgeReport {
    /// The user.
    pub user_id: UserId,
    /// Connections purged at Basiq (the active ones).
    pub purged: Vec<ConnectionId>,
    /// Every connection of the user: delete (or de-identify) the local accounts and
    /// transactions of each, purged or not.
    pub delete_locally: Vec<ConnectionId>,
}

impl ConsentReview {
    /// The re-consent link, when the user may go to the Consent UI now.
    pub fn reconsent_link(&self) -> Option<&crate::ConsentLink> {
        match &self.follow_up {
            ConsentFollowUp::Reconsent(outcome) => outcome.link(),
            _ => None,
        }
    }
}

macro_rules! consent_lifecycle_method {
    (client = $client:ty, [$($async:ident)?], [$($await:tt)*]) => {
        impl $client {
            /// Reviews `user_id`'s consents against `policy` at the client's `now` and acts on
            /// the verdict (see the [module docs](crate::consent_lifecycle)): a re-consent link
            /// through the pause guard, or one purge per active connection after a revocation
            /// or expiry.
            ///
            /// # Errors
            ///
            /// As the requests it makes. Purges stop at the first failure (purging is
            /// harmless to repeat, so call it again).
            pub $($async)* fn consent_lifecycle(
                &self,
                user_id: impl TryInto<UserId, Error = basiq_core::id::InvalidId>,
                policy: &ConsentPolicy,
            ) -> Result<ConsentReview, crate::Error> {
                let user_id = user_id.try_into()?;
                let consents = self.consents().list(user_id.as_str())$($await)*?.data;
                let verdict = policy.review(&consents, self.now());
                tracing::info!(user_id = %user_id, ?verdict, "consent reviewed");
                let follow_up = match &verdict {
                    ConsentVerdict::ExpiringSoon { .. } => ConsentFollowUp::Reconsent(
                        self.consent_url(user_id.as_str(), crate::ConsentAction::extend())$($await)*?,
                    ),
                    ConsentVerdict::PredatesPolicy { .. } => ConsentFollowUp::Reconsent(
                        self.consent_url(user_id.as_str(), crate::ConsentAction::connect())$($await)*?,
                    ),
                    ConsentVerdict::Ended { .. } => {
                        let connections = self.connections().list(user_id.as_str())$($await)*?.data;
                        let mut purged = Vec::new();
                        for c in connections.iter().filter(|c| {
                            c.status == basiq_core::refresh::ConnectionStatus::Active
                        }) {
                            self.connections()
                                .purge(user_id.as_str(), c.id.as_str())
                                $($await)*?;
                            purged.push(c.id.clone());
                        }
                        ConsentFollowUp::Purged(PurgeReport {
                            user_id: user_id.clone(),
                            purged,
                            delete_locally: connections.into_iter().map(|c| c.id).collect(),
                        })
                    }
                    _ => ConsentFollowUp::Nothing,
                };
                Ok(ConsentReview { verdict, follow_up })
            }
        }
    };
}

#[cfg(feature = "async")]
consent_lifecycle_method!(client = crate::Client, [async], [.await]);
#[cfg(feature = "blocking")]
consent_lifecycle_method!(client = crate::blocking::Client, [], []);
