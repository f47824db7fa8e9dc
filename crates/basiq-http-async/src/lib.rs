//! # basiq-http-async
//!
//! The async half of the Basiq SDK's IO edge: [`ReqwestTransport`] (reqwest + rustls, one pooled
//! client) and [`AsyncExecutor`], which runs any [`basiq_core::operation::Operation`] with a
//! shared server token fetched at most once at a time (single flight).
//!
//! Most users want the `basiq` facade (`basiq::Client`) rather than this crate directly.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(missing_docs)]

mod executor;
mod transport;

pub use executor::AsyncExecutor;
pub use transport::{
    ReqwestTransport, DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, MAX_BODY_BYTES,
};
