//! # basiq-http-blocking
//!
//! The blocking half of the Basiq SDK's IO edge: [`UreqTransport`] (ureq + rustls, one agent)
//! and [`BlockingExecutor`], which runs any [`basiq_core::engine::operation::Operation`] with a shared
//! server token fetched at most once at a time (single flight). No tokio in the dependency tree:
//! it never panics inside an async host the way `block_on`-based blocking clients do.
//!
//! Most users want the `basiq` facade (`basiq::blocking::Client`) rather than this crate directly.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(missing_docs)]
// `basiq_core::Error` carries the ids support needs (`ErrorContext`) inline, which puts it over
// clippy's 128-byte threshold. Its layout is basiq-core's decision; boxing it here would only
// add an allocation per error and an API different from the core's.
#![allow(clippy::result_large_err)]

mod executor;
mod transport;

pub use executor::{BlockingExecutor, Sleep};
pub use transport::{
    UreqTransport, DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_CONNECTIONS, DEFAULT_REQUEST_TIMEOUT,
    MAX_BODY_BYTES,
};
