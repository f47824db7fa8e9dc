//! Basiq's best-practice rules as pure functions and state machines: `now` is an argument, the
//! inputs are models, the answers are decisions. Each module is one rule of the guide.

pub mod connectors;
pub mod consent_lifecycle;
pub mod fleet;
pub mod freshness;
pub mod jobs;
pub mod pagination;
pub mod pause;
pub mod plan;
pub mod refresh;
pub mod retry;
pub mod token;
pub mod webhooks;

mod user_text;
