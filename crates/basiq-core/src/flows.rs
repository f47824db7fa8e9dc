//! Multi-request flows as sans-IO state machines: each says what to fetch next and is fed the
//! answer; the facade's async and blocking drivers only execute the operations (and wait).
//! No IO, no clock: tested here with canned responses.

pub mod consent;
pub mod follow;
pub mod pagination;
pub mod refresh;
pub mod triage;
