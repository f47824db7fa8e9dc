//! One server token for the whole fleet: a sans-IO fetch flow across processes.
//!
//! An executor whose cache needs a token takes its own (in-process) fetch gate, then runs a
//! [`FleetTokenFetch`]: read the shared token; if none is usable, take the fleet's lock
//! (`SET NX PX` with a lease longer than a `/token` call may take), read again (the previous
//! holder may just have stored one), fetch, store the token with a TTL of its remaining lifetime
//! less the refresh-ahead margin, and release the lock by compare-and-delete. The others poll with
//! bounded backoff for the shared token; a holder that dies lets the next one in when its lease
//! ends. A failed fetch is published under a backoff key so the fleet does not hammer `/token`
//! during an outage or Basiq's throttle. Any store error makes the flow fall back to fetching
//! locally: the store never fails a request.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::store::{FleetAnswer, FleetOp};
use super::FleetConfig;
use crate::engine::executor::{ExecutorCore, PendingFetch};
use crate::error::{Error, ErrorKind};
use crate::policy::token::{FetchReason, StoreError, StoredToken, TokenLease, TokenResponse};
use crate::secret::AccessToken;
use crate::time_util;

/// Seals the shared token before it is stored, and opens it after it is read: encryption at rest
/// with a key only the app holds (`basiq-redis` has a ChaCha20-Poly1305 sealer). A value that does
/// not open (another key, tampering) is treated as no token at all.
pub trait TokenSealer: Send + Sync + fmt::Debug {
    /// Encrypts `plaintext`.
    fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, StoreError>;
    /// Decrypts what [`seal`](Self::seal) produced.
    fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, StoreError>;
}

/// How the fleet shares its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetTokenPolicy {
    /// How long the fetch lock is held at most: longer than a `/token` call with its retries may
    /// take. A holder that dies releases the fleet after this.
    pub lock_lease: Duration,
    /// How long an instance waits for another one's fetch before fetching itself.
    pub max_wait: Duration,
    /// The first pause between two looks at the shared token while waiting (doubles each time).
    pub first_poll: Duration,
    /// The longest pause between two looks.
    pub max_poll: Duration,
}

impl Default for FleetTokenPolicy {
    /// A 30 s lease, 40 s of waiting, polls from 25 ms doubling to 500 ms.
    fn default() -> Self {
        Self {
            lock_lease: Duration::from_secs(30),
            max_wait: Duration::from_secs(40),
            first_poll: Duration::from_millis(25),
            max_poll: Duration::from_millis(500),
        }
    }
}

impl FleetTokenPolicy {
    /// This policy with another lock lease (and `max_wait` = lease + 10 s).
    pub fn with_lock_lease(mut self, lease: Duration) -> Self {
        self.lock_lease = lease;
        self.max_wait = lease.saturating_add(Duration::from_secs(10));
        self
    }

    /// This policy with other poll pauses.
    pub fn with_polls(mut self, first: Duration, max: Duration) -> Self {
        self.first_poll = first;
        self.max_poll = max.max(first);
        self
    }
}

/// The token as the fleet stores it (before sealing).
#[derive(Serialize, Deserialize)]
struct Wire {
    v: u8,
    token: String,
    /// Unix seconds.
    expires_at: i64,
    /// Seconds.
    lifetime: Option<u64>,
}

/// A published fetch failure (the backoff key's value). No secrets: kind, status and text of
/// the error, which never quote the key or a token.
#[derive(Serialize, Deserialize)]
struct FailureWire {
    kind: String,
    status: Option<u16>,
    cause: String,
    /// Unix seconds.
    retry_at: i64,
}

fn kind_from_name(name: &str) -> ErrorKind {
    match name {
        "InvalidApiKey" => ErrorKind::InvalidApiKey,
        "RateLimited" => ErrorKind::RateLimited,
        "Server" => ErrorKind::Server,
        "Decode" => ErrorKind::Decode,
        "Unauthorized" => ErrorKind::Unauthorized,
        "Forbidden" => ErrorKind::Forbidden,
        "BadRequest" => ErrorKind::BadRequest,
        _ => ErrorKind::Transport,
    }
}

/// What the executor does next for a [`FleetTokenFetch`].
#[derive(Debug)]
pub enum FleetStep {
    /// Run this on the fleet's store and report with [`FleetTokenFetch::on_store`].
    Store(FleetOp),
    /// Wait this long, then call [`FleetTokenFetch::on_slept`].
    Sleep(Duration),
    /// Fetch the server token (`POST /token` with the usual retries) and report with
    /// [`FleetTokenFetch::on_fetched`].
    FetchToken,
    /// Over.
    Done(Result<TokenLease, Error>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    RemovingRejected,
    Loading,
    Locking,
    Rechecking,
    Waiting,
    Polling,
    CheckingBackoff,
    FetchingLocked,
    FetchingUnlocked,
    Saving,
    PublishingFailure,
    Unlocking,
    Done,
}

/// The cross-process fetch of the server token as a state machine (see the [fleet module docs](crate::policy::fleet)).
/// Built by [`ExecutorCore::fleet_fetch`] inside the executor's own fetch gate.
pub struct FleetTokenFetch<'a> {
    core: &'a ExecutorCore,
    config: &'a FleetConfig,
    pending: PendingFetch,
    phase: Phase,
    lock_value: Vec<u8>,
    waited: Duration,
    poll: Duration,
    /// The answer, kept while the lock is released.
    result: Option<Result<TokenLease, Error>>,
}

impl fmt::Debug for FleetTokenFetch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetTokenFetch")
            .field("phase", &self.phase)
            .field("waited", &self.waited)
            .finish_non_exhaustive()
    }
}

impl<'a> FleetTokenFetch<'a> {
    pub(crate) fn new(
        core: &'a ExecutorCore,
        config: &'a FleetConfig,
        pending: PendingFetch,
    ) -> Self {
        let lock_value = format!("{}:{}", config.instance(), fetch_number()).into_bytes();
        Self {
            core,
            config,
            pending,
            phase: Phase::Loading,
            lock_value,
            waited: Duration::ZERO,
            poll: config.token_policy().first_poll,
            result: None,
        }
    }

    /// The first step: drop the token Basiq just rejected if the fleet still stores it (compare
    /// and delete, so a newer one another instance saved stays), then read the shared token.
    pub fn start(&mut self) -> FleetStep {
        if self.pending.reason() == FetchReason::Rejected {
            if let Some(raw) = self.core.fleet_value_of_rejected() {
                self.phase = Phase::RemovingRejected;
                return FleetStep::Store(FleetOp::DeleteIfEquals {
                    key: self.config.keys().token(),
                    value: raw,
                });
            }
        }
        self.load()
    }

    fn load(&mut self) -> FleetStep {
        self.phase = Phase::Loading;
        FleetStep::Store(FleetOp::Get {
            key: self.config.keys().token(),
        })
    }

    fn lock(&mut self) -> FleetStep {
        self.phase = Phase::Locking;
        FleetStep::Store(FleetOp::SetIfAbsent {
            key: self.config.keys().token_lock(),
            value: self.lock_value.clone(),
            ttl: self.config.token_policy().lock_lease,
        })
    }

    fn unlock_then(&mut self, result: Result<TokenLease, Error>) -> FleetStep {
        self.result = Some(result);
        self.phase = Phase::Unlocking;
        FleetStep::Store(FleetOp::DeleteIfEquals {
            key: self.config.keys().token_lock(),
            value: self.lock_value.clone(),
        })
    }

    fn done(&mut self, result: Result<TokenLease, Error>) -> FleetStep {
        self.phase = Phase::Done;
        FleetStep::Done(result)
    }

    fn finish(&mut self) -> FleetStep {
        let result = self.result.take().unwrap_or_else(|| {
            Err(Error::config(
                "fleet token flow finished without a result (a bug in basiq-core)",
            ))
        });
        self.done(result)
    }

    /// The store could not be used: fetch in this process (its own gate still makes it one
    /// fetch per process), or finish with what we have.
    fn fall_back(&mut self, error: &StoreError) -> FleetStep {
        tracing::warn!(
            error = %error,
            "the fleet store failed while sharing the Basiq server token; using this process's own token"
        );
        match self.phase {
            Phase::FetchingLocked | Phase::FetchingUnlocked | Phase::Done => self.done(Err(
                Error::config("fleet token flow: unexpected store report"),
            )),
            Phase::Saving | Phase::PublishingFailure => {
                // The token (or failure) is known; the lock expires by itself.
                self.finish()
            }
            Phase::Unlocking => self.finish(),
            _ => {
                self.phase = Phase::FetchingUnlocked;
                FleetStep::FetchToken
            }
        }
    }

    /// Decodes (and opens) a stored token and offers it to the cache.
    fn adopt(&self, raw: Option<Vec<u8>>) -> Option<TokenLease> {
        let raw = raw?;
        let plain = match self.config.sealer() {
            Some(sealer) => match sealer.open(&raw) {
                Ok(plain) => plain,
                Err(e) => {
                    tracing::warn!(error = %e, "the fleet's stored token does not open with this key; ignoring it");
                    return None;
                }
            },
            None => raw.clone(),
        };
        let wire: Wire = serde_json::from_slice(&plain)
            .ok()
            .filter(|w: &Wire| w.v == 1)?;
        let expires_at = OffsetDateTime::from_unix_timestamp(wire.expires_at).ok()?;
        let mut stored = StoredToken::new(AccessToken::new(wire.token), expires_at);
        if let Some(secs) = wire.lifetime {
            stored = stored.with_lifetime(Duration::from_secs(secs));
        }
        let lease = self.core.adopt_stored(&stored)?;
        self.core.remember_fleet_value(&lease.token, raw);
        Some(lease)
    }

    fn next_poll(&mut self) -> FleetStep {
        let policy = self.config.token_policy();
        if self.waited >= policy.max_wait {
            tracing::warn!(
                waited_ms = u64::try_from(self.waited.as_millis()).unwrap_or(u64::MAX),
                "no Basiq server token from the fleet in time; fetching one in this process"
            );
            self.phase = Phase::FetchingUnlocked;
            return FleetStep::FetchToken;
        }
        let pause = self.poll.min(policy.max_poll);
        self.poll = self.poll.saturating_mul(2).min(policy.max_poll);
        self.waited = self.waited.saturating_add(pause);
        self.phase = Phase::Waiting;
        FleetStep::Sleep(pause)
    }

    /// Reports what the store answered to the last [`FleetStep::Store`].
    pub fn on_store(&mut self, answer: Result<FleetAnswer, StoreError>) -> FleetStep {
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => return self.fall_back(&e),
        };
        let outcome = match self.phase {
            Phase::RemovingRejected => answer.applied().map(|_| self.load()),
            Phase::Loading => answer.into_value().map(|raw| match self.adopt(raw) {
                Some(lease) => self.done(Ok(lease)),
                None => self.lock(),
            }),
            Phase::Locking => answer.applied().map(|locked| {
                if locked {
                    self.phase = Phase::Rechecking;
                    FleetStep::Store(FleetOp::Get {
                        key: self.config.keys().token(),
                    })
                } else {
                    self.next_poll()
                }
            }),
            Phase::Rechecking => answer.into_value().map(|raw| match self.adopt(raw) {
                Some(lease) => self.unlock_then(Ok(lease)),
                None => {
                    self.phase = Phase::FetchingLocked;
                    FleetStep::FetchToken
                }
            }),
            Phase::Polling => answer.into_value().map(|raw| match self.adopt(raw) {
                Some(lease) => self.done(Ok(lease)),
                None => {
                    self.phase = Phase::CheckingBackoff;
                    FleetStep::Store(FleetOp::Get {
                        key: self.config.keys().token_backoff(),
                    })
                }
            }),
            Phase::CheckingBackoff => {
                answer
                    .into_value()
                    .map(|raw| match raw.and_then(|raw| self.shared_failure(&raw)) {
                        Some(error) => self.done(Err(error)),
                        None => self.lock(),
                    })
            }
            Phase::Saving | Phase::PublishingFailure => {
                let result = self
                    .result
                    .take()
                    .unwrap_or_else(|| Err(Error::config("fleet token flow lost its result")));
                Ok(self.unlock_then(result))
            }
            Phase::Unlocking => Ok(self.finish()),
            Phase::Waiting | Phase::FetchingLocked | Phase::FetchingUnlocked | Phase::Done => Err(
                StoreError::new("fleet token flow: store answer out of turn"),
            ),
        };
        outcome.unwrap_or_else(|e| self.fall_back(&e))
    }

    fn shared_failure(&self, raw: &[u8]) -> Option<Error> {
        let wire: FailureWire = serde_json::from_slice(raw).ok()?;
        let retry_at = OffsetDateTime::from_unix_timestamp(wire.retry_at).ok()?;
        let now = self.core.clock().now();
        if now >= retry_at {
            return None;
        }
        let error = Error::TokenUnavailable {
            failure: Box::new(crate::error::TokenFailure {
                kind: kind_from_name(&wire.kind),
                status: wire.status.and_then(|s| http::StatusCode::from_u16(s).ok()),
                cause: format!("in another instance of this app: {}", wire.cause),
                retry_at,
            }),
            context: crate::error::ErrorContext::default(),
        };
        self.core.record_fleet_failure(&error, retry_at);
        Some(error)
    }

    /// Reports the end of a [`FleetStep::Sleep`].
    pub fn on_slept(&mut self) -> FleetStep {
        self.phase = Phase::Polling;
        FleetStep::Store(FleetOp::Get {
            key: self.config.keys().token(),
        })
    }

    /// Reports the `/token` fetch asked for by [`FleetStep::FetchToken`].
    pub fn on_fetched(
        &mut self,
        fetched: Result<(TokenResponse, OffsetDateTime), Error>,
    ) -> FleetStep {
        let locked = self.phase == Phase::FetchingLocked;
        let lifetime = fetched
            .as_ref()
            .ok()
            .map(|(t, _)| Duration::from_secs(t.expires_in));
        let result = self.core.token_fetched(fetched);
        if !locked {
            return self.done(result);
        }
        match &result {
            Ok(lease) => match self.encode(lease, lifetime) {
                Some((value, ttl)) => {
                    self.core.remember_fleet_value(&lease.token, value.clone());
                    self.result = Some(result);
                    self.phase = Phase::Saving;
                    FleetStep::Store(FleetOp::Set {
                        key: self.config.keys().token(),
                        value,
                        ttl,
                    })
                }
                None => self.unlock_then(result),
            },
            Err(error) => {
                let now = self.core.clock().now();
                let until = self.core.failure_backoff_until(now);
                match until {
                    Some(until) => {
                        let wire = FailureWire {
                            kind: format!("{:?}", error.kind()),
                            status: error.status().map(|s| s.as_u16()),
                            cause: error.to_string(),
                            retry_at: until.unix_timestamp(),
                        };
                        let ttl = time_util::since(until, now);
                        match serde_json::to_vec(&wire) {
                            Ok(value) if !ttl.is_zero() => {
                                self.result = Some(result);
                                self.phase = Phase::PublishingFailure;
                                FleetStep::Store(FleetOp::Set {
                                    key: self.config.keys().token_backoff(),
                                    value,
                                    ttl,
                                })
                            }
                            _ => self.unlock_then(result),
                        }
                    }
                    None => self.unlock_then(result),
                }
            }
        }
    }

    /// The stored form of `lease` and its TTL (remaining lifetime less the margin), or `None`
    /// when it would not be worth storing.
    fn encode(
        &self,
        lease: &TokenLease,
        lifetime: Option<Duration>,
    ) -> Option<(Vec<u8>, Duration)> {
        let now = self.core.clock().now();
        let stored = StoredToken::new(lease.token.clone(), lease.expires_at);
        let stored = match lifetime {
            Some(l) => stored.with_lifetime(l),
            None => stored,
        };
        let margin = self.core.stored_margin(&stored);
        let ttl = time_util::since(lease.expires_at, now).checked_sub(margin)?;
        if ttl < Duration::from_millis(1) {
            return None;
        }
        let wire = Wire {
            v: 1,
            token: lease.token.expose_secret().to_owned(),
            expires_at: lease.expires_at.unix_timestamp(),
            lifetime: lifetime.map(|l| l.as_secs()),
        };
        let plain = serde_json::to_vec(&wire).ok()?;
        let value = match self.config.sealer() {
            Some(sealer) => match sealer.seal(&plain) {
                Ok(sealed) => sealed,
                Err(e) => {
                    tracing::warn!(error = %e, "sealing the Basiq server token for the fleet failed; not sharing it");
                    return None;
                }
            },
            None => plain,
        };
        Some((value, ttl))
    }
}

/// A number unique per fetch in this process (with the instance id, unique in the fleet), so a
/// lock value names exactly one holder.
fn fetch_number() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Keeps `Arc<dyn TokenSealer>` printable without its key.
pub(crate) fn fmt_sealer(sealer: &Option<Arc<dyn TokenSealer>>) -> &'static str {
    if sealer.is_some() {
        "sealed"
    } else {
        "plain"
    }
}

#[cfg(test)]
mod tests;
