//! MFA challenges (basiq-api.md §4.2, §4.4): Pied Piper Bank (AU00002) always raises an
//! `mfa-challenge` step between `verify-credentials` and `retrieve-accounts`, and
//! `POST /jobs/{id}/mfa` answers it.
//!
//! While the step is `in-progress` its `result` is the challenge
//! (`{type:"mfa", method, description, input, expiryMs, links{response}}`). Answers per Basiq's
//! sandbox: `jared`/`richard` get a token challenge (`["1234"]`), `gavinBelson`/`Gilfoyle` one
//! security question (`["Hooli"]`), `Whistler`/`Wentworth-Smith` two (`["Basiq","AU00000"]`);
//! anyone else a token challenge. A right answer completes the step at once and the job goes on;
//! a wrong one fails it `invalid-credentials`; no answer within 5 minutes fails it
//! `user-action-required` (Basiq documents no code for this; see `docs/emulator.md`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::AnyAuth;
use crate::error::{parse_json, ApiError};
use crate::jobs::{job_ref, StepStatus};
use crate::logins::Failure;
use crate::state::{AppState, Scope, StepPlan};

/// The step's title.
pub(crate) const MFA: &str = "mfa-challenge";
/// How long a challenge waits for an answer.
pub(crate) const CHALLENGE_TTL: time::Duration = time::Duration::minutes(5);

/// A challenge and its expected answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub(crate) method: &'static str,
    pub(crate) description: &'static str,
    pub(crate) input: Vec<&'static str>,
    answers: Vec<&'static str>,
}

fn challenge_for(login: &str) -> Challenge {
    match login {
        "gavinBelson" | "Gilfoyle" => Challenge {
            method: "security-questions",
            description: "Please answer your security question",
            input: vec!["What is the name of your employer?"],
            answers: vec!["Hooli"],
        },
        "Whistler" | "Wentworth-Smith" => Challenge {
            method: "security-questions",
            description: "Please answer your security questions",
            input: vec![
                "What is the name of your aggregator?",
                "What is your institution's id?",
            ],
            answers: vec!["Basiq", "AU00000"],
        },
        _ => Challenge {
            method: "token",
            description: "Please enter the one-time password sent to your device",
            input: vec!["OTP Password"],
            answers: vec!["1234"],
        },
    }
}

/// The `mfa-challenge` step for a login, planned to expire unanswered.
pub(crate) fn step(login: &str) -> StepPlan {
    StepPlan {
        title: MFA,
        duration: CHALLENGE_TTL,
        failure: Some(Failure::new(
            "user-action-required",
            "MFA challenge expired",
            "The MFA challenge was not answered in time. Please try again.",
        )),
        mfa: Some(challenge_for(login)),
    }
}

/// The step's `result` while it waits for an answer.
pub(crate) fn challenge_json(base: &str, job_id: &str, c: &Challenge, expiry_ms: i128) -> Value {
    json!({
        "type": "mfa",
        "method": c.method,
        "description": c.description,
        "input": c.input,
        "expiryMs": expiry_ms.max(0),
        "links": { "response": format!("{base}/jobs/{job_id}/mfa") },
    })
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/jobs/{job_id}/mfa", post(respond))
}

#[derive(Debug, Deserialize)]
struct MfaBody {
    #[serde(rename = "mfa-response")]
    response: Option<Vec<String>>,
}

/// `POST /jobs/{id}/mfa` with `{"mfa-response": ["1234"]}` → 202 job. Needs the user's
/// CLIENT_ACCESS token, as at Basiq.
async fn respond(
    AnyAuth(caller): AnyAuth,
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if caller.scope != Scope::Client {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden-access",
            "Forbidden access",
            "Access to this resource is forbidden: MFA responses need a CLIENT_ACCESS token",
        ));
    }
    let body: MfaBody = parse_json(&body)?;
    let answers = body
        .response
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::missing("mfa-response", "mfa-response is required"))?;
    let now = state.now();
    let mut db = state.db();
    let job = db
        .jobs
        .get_mut(&job_id)
        .filter(|j| caller.user_id.as_deref() == Some(&j.user_id))
        .ok_or_else(|| ApiError::not_found(format!("Job with id '{job_id}' not found.")))?;
    let statuses = job.step_statuses(now);
    let windows = job.windows();
    let idx = job
        .steps
        .iter()
        .position(|s| s.mfa.is_some())
        .filter(|i| statuses.get(*i) == Some(&StepStatus::InProgress))
        .ok_or_else(|| {
            ApiError::invalid(
                "mfa-response",
                "This job has no MFA challenge awaiting a response",
            )
        })?;
    let start = windows.get(idx).map_or(now, |w| w.0);
    if let Some(step) = job.steps.get_mut(idx) {
        let correct = step.mfa.as_ref().is_some_and(|c| {
            c.answers.len() == answers.len()
                && c.answers.iter().zip(&answers).all(|(a, b)| *a == b.trim())
        });
        step.duration = now - start;
        step.failure =
            (!correct).then(|| Failure::invalid_credentials("The MFA response was incorrect."));
    }
    Ok((StatusCode::ACCEPTED, Json(job_ref(state.base(), &job_id))).into_response())
}
