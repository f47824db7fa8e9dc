//! One module per command group.

pub(crate) mod jobs;
pub(crate) mod mock;
mod paced;
pub(crate) mod quickstart;
pub(crate) mod refresh;
pub(crate) mod resources;
pub(crate) mod triage;
pub(crate) mod webhooks;

/// Serializes a model for `--json` (models always serialize; `Null` is never expected).
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}
