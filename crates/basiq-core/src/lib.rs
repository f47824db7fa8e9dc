//! # basiq-core
//!
//! The pure heart of the Basiq SDK: models, operations and the policies that encode Basiq's
//! best-practice guide. No IO, no async runtime, no clock reads — time is passed in — so every
//! rule here is unit- and property-tested, and both the async and the blocking clients share it.
//!
//! The folders are the layers, each using only the ones above it in this list:
//!
//! | layer | modules | what it holds |
//! |---|---|---|
//! | foundations (the crate root) | [`id`], [`secret`], [`error`], [`clock`], [`vocabulary`] | validated ids, redacted secrets, errors with ids, time, the open enums models and policies share (connection method and status, connector status) |
//! | [`api`] — Basiq's API surface | [`api::models`], [`api::operations`] (generated from `fixtures/openapi/basiq.yaml` by `cargo xtask codegen`); [`api::statements`], [`api::mfa`] (hand-written operations: multipart upload; MFA answers redacted, never retried) | one type per payload, one [`Operation`](engine::operation::Operation) per endpoint |
//! | [`policy`] — Basiq's rules, pure | [`policy::token`], [`policy::refresh`], [`policy::plan`], [`policy::jobs`], [`policy::pause`], [`policy::retry`], [`policy::connectors`], [`policy::pagination`], [`policy::webhooks`], [`policy::freshness`], [`policy::consent_lifecycle`], [`policy::fleet`] | token lifetime, refresh rarely (20/day open banking), spread plans, job steps and failure → action, the 6-minute duplicate pause, backoff, outages, same-origin `links.next`, signed webhooks, freshness from events, consent verdicts, fleet-wide state |
//! | [`flows`] — multi-step helpers as state machines | [`flows::pagination`], [`flows::follow`], [`flows::triage`] | values that say "execute this", "wait this long" or "done", fed the responses; both clients drive them |
//! | [`engine`] — what runs an operation | [`engine::operation`], [`engine::transport`], [`engine::auth`], [`engine::executor`], [`engine::telemetry`] | the `Operation` trait, the async / blocking transport seams, the executors' sans-IO run loop (single-flight token, retry steps, re-authenticate once), one `basiq.http` span per request |
//!
//! ```
//! use basiq_core::id::UserId;
//!
//! // Ids are validated before any request exists: a path trick is a typed error.
//! assert!(UserId::new("../admin").is_err());
//! let user = UserId::new("ea3a81")?;
//! assert_eq!(user.as_str(), "ea3a81");
//! # Ok::<(), basiq_core::id::InvalidId>(())
//! ```
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(missing_docs)]

// Foundations: below every layer.
pub mod clock;
pub mod error;
pub mod id;
mod open_enum;
pub mod secret;
mod serde_util;
#[cfg(test)]
mod test_support;
mod time_util;
pub mod vocabulary;

pub mod api;
pub mod engine;
pub mod flows;
pub mod policy;

pub use error::{Error, ErrorContext, ErrorKind};
