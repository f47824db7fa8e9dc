//! # basiq-core
//!
//! The pure heart of the Basiq SDK: models, operations and the policies that encode Basiq's
//! best-practice guide. No IO, no async runtime, no clock reads — time is passed in — so every
//! rule here is unit- and property-tested, and both the async and the blocking clients share it.
//!
//! | module | what it holds |
//! |---|---|
//! | [`operation`] | the [`Operation`](operation::Operation) trait: build a request, parse a response |
//! | [`transport`] | the [`AsyncTransport`](transport::AsyncTransport) / [`BlockingTransport`](transport::BlockingTransport) seams |
//! | [`token`] | `POST /token` and the [`TokenCache`](token::TokenCache) lifetime policy |
//! | [`auth`] | what both executors share: [`ExecutorConfig`](auth::ExecutorConfig), [`TokenState`](auth::TokenState) |
//! | [`models`], [`operations`] | generated from `fixtures/openapi/basiq.yaml` by `cargo xtask codegen` |
//! | [`id`], [`secret`], [`error`], [`clock`] | validated ids, redacted secrets, errors with ids, time |
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

pub mod auth;
pub mod clock;
pub mod error;
pub mod id;
pub mod operation;
pub mod secret;
pub mod token;
pub mod transport;
pub mod connectors;
pub mod jobs;
pub mod refresh;
mod open_enum;
#[cfg(test)]
mod test_support;
mod time_util;

pub mod models;
pub mod operations;
mod serde_util;

pub use error::{Error, ErrorContext, ErrorKind};
