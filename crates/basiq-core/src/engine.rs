//! What runs an operation, with no IO of its own: the [`Operation`](operation::Operation) trait,
//! the transport seams the HTTP crates implement, and the executors' sans-IO run loop
//! (single-flight token, retry steps, one re-authentication) with its request span.

pub mod auth;
pub mod executor;
pub mod operation;
pub mod telemetry;
pub mod transport;
