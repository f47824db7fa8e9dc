//! Answering a multi-factor challenge: `POST /jobs/{jobId}/mfa` (basiq-api.md §4.1).
//!
//! Some institutions (Basiq's sandbox: Pied Piper Bank always, Nucleus Bank sometimes) insert an
//! `mfa-challenge` step between `verify-credentials` and `retrieve-accounts`. While it is
//! `in-progress` the job waits for the user: [`Job::mfa_challenge`](crate::api::models::Job) reads the
//! challenge ([`MfaChallenge`](crate::policy::jobs::MfaChallenge): method, prompts, expiry) and
//! [`JobPoller`](crate::policy::jobs::JobPoller) stops with
//! [`PollStep::MfaRequired`](crate::policy::jobs::PollStep::MfaRequired) instead of polling to its
//! deadline. [`AnswerJobMfa`] sends the user's answers.
//!
//! Written by hand rather than generated (`x-basiq-handwritten` in `fixtures/openapi/basiq.yaml`),
//! for three reasons the generator cannot express:
//!
//! * the answers are secrets (one-time codes, security answers): [`MfaAnswers`] keeps them in
//!   [`secrecy::SecretString`]s — zeroized on drop, `[REDACTED]` in `Debug` — where a generated
//!   model would derive a `Debug` that prints them;
//! * Basiq requires a `CLIENT_ACCESS` token bound to the job's user, which is not part of the
//!   path: the operation carries the [`UserId`] and asks the executor for
//!   [`Authentication::ClientToken`], so a fresh client token is fetched for the call and the
//!   server token is never sent on it;
//! * it is **not idempotent**: answering twice (after a timeout, say) could count as a second
//!   wrong attempt and lock the user's bank account, so executors never repeat it. After an
//!   ambiguous failure, read the job again ([`GetJob`](crate::api::operations::GetJob)) and answer only
//!   if the challenge is still waiting.
//!
//! ```
//! use basiq_core::id::{JobId, UserId};
//! use basiq_core::api::mfa::{AnswerJobMfa, MfaAnswers};
//! use basiq_core::engine::operation::{Authentication, Operation};
//!
//! let op = AnswerJobMfa::new(
//!     JobId::new("61723")?,
//!     UserId::new("ea3a81")?,
//!     MfaAnswers::new(vec!["1234".to_owned()]),
//! );
//! assert!(!op.is_idempotent());
//! assert_eq!(op.authentication(), Authentication::ClientToken(UserId::new("ea3a81")?));
//! assert!(!format!("{op:?}").contains("1234"), "answers never reach a log");
//! # Ok::<(), basiq_core::id::InvalidId>(())
//! ```

use std::fmt;

use http::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::ser::{Serialize, SerializeSeq, Serializer};

use crate::api::models::JobRef;
use crate::engine::operation::{self, ApiBase, Authentication, Operation};
use crate::engine::transport::{HttpRequest, HttpResponse};
use crate::error::{Error, ErrorContext};
use crate::id::{JobId, UserId};

/// The user's answers to a challenge, one per prompt and in the prompts' order. Secrets: kept in
/// [`SecretString`]s, printed as `MfaAnswers([REDACTED; n])`, with no `Display` and no
/// `Serialize`; only building the request reads them.
#[derive(Clone)]
pub struct MfaAnswers(Vec<SecretString>);

impl MfaAnswers {
    /// Wraps the answers (as typed: no trimming, a code may be case- or space-sensitive).
    pub fn new(answers: Vec<String>) -> Self {
        Self(answers.into_iter().map(SecretString::from).collect())
    }

    /// How many answers there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<String>> for MfaAnswers {
    fn from(answers: Vec<String>) -> Self {
        Self::new(answers)
    }
}

impl fmt::Debug for MfaAnswers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MfaAnswers([REDACTED; {}])", self.0.len())
    }
}

/// `{"mfa-response": [...]}`: serialized only into the request body.
struct Body<'a>(&'a MfaAnswers);

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct Answers<'a>(&'a [SecretString]);
        impl Serialize for Answers<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
                for answer in self.0 {
                    seq.serialize_element(answer.expose_secret())?;
                }
                seq.end()
            }
        }
        let mut map = serializer.serialize_map(Some(1))?;
        // Basiq's key is hyphenated (basiq-api.md §4.1).
        map.serialize_entry("mfa-response", &Answers(&(self.0).0))?;
        map.end()
    }
}

/// `POST /jobs/{jobId}/mfa`: answers the multi-factor challenge job `job_id` waits on, with a
/// `CLIENT_ACCESS` token bound to `user_id` (the job's user; Basiq answers another user's job
/// with 404). Returns the job reference (202); follow the job again to see it continue.
///
/// Refused locally, before any token is fetched, when there are no answers or one is blank
/// ([`Error::InvalidInput`]). Never retried (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct AnswerJobMfa {
    job_id: JobId,
    user_id: UserId,
    answers: MfaAnswers,
}

impl AnswerJobMfa {
    /// An answer to job `job_id`'s challenge on behalf of its user `user_id`.
    pub fn new(job_id: JobId, user_id: UserId, answers: MfaAnswers) -> Self {
        Self {
            job_id,
            user_id,
            answers,
        }
    }

    /// The job answered.
    pub fn job_id(&self) -> &JobId {
        &self.job_id
    }

    /// The user the client token is bound to.
    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }
}

impl Operation for AnswerJobMfa {
    type Output = JobRef;

    fn request(&self, base: &ApiBase) -> Result<HttpRequest, Error> {
        if self.answers.is_empty() {
            return Err(Error::invalid_input(
                "an MFA answer needs at least one response (one per prompt)",
            ));
        }
        if self
            .answers
            .0
            .iter()
            .any(|a| a.expose_secret().trim().is_empty())
        {
            return Err(Error::invalid_input("an MFA response is blank"));
        }
        let url = operation::endpoint(base, &["jobs", self.job_id.as_str(), "mfa"])?;
        operation::json_request(Method::POST, url, &Body(&self.answers))
    }

    fn parse(&self, response: HttpResponse) -> Result<JobRef, Error> {
        // Basiq documents 202; 200 is accepted too, like the refresh endpoints' answers.
        operation::parse_json(&response, &[200, 202])
    }

    fn is_idempotent(&self) -> bool {
        // A second answer may count as another (wrong) attempt and lock the bank account.
        false
    }

    fn context(&self) -> ErrorContext {
        ErrorContext::new()
            .with_user(&self.user_id)
            .with_job(&self.job_id)
    }

    fn authentication(&self) -> Authentication {
        Authentication::ClientToken(self.user_id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(answers: &[&str]) -> AnswerJobMfa {
        AnswerJobMfa::new(
            JobId::new("j1").unwrap(),
            UserId::new("u1").unwrap(),
            MfaAnswers::new(answers.iter().map(|a| (*a).to_owned()).collect()),
        )
    }

    fn base() -> ApiBase {
        url::Url::parse("https://au-api.basiq.io").unwrap().into()
    }

    #[test]
    fn answers_are_redacted_everywhere_but_the_body() {
        let op = op(&["Basiq", "AU00000"]);
        let debug = format!("{op:?}");
        assert!(
            !debug.contains("Basiq") && !debug.contains("AU00000"),
            "{debug}"
        );
        assert!(debug.contains("MfaAnswers([REDACTED; 2])"), "{debug}");
        let request = op.request(&base()).unwrap();
        assert_eq!(request.body(), br#"{"mfa-response":["Basiq","AU00000"]}"#);
        assert!(!format!("{request:?}").contains("AU00000"));
    }

    #[test]
    fn blank_or_missing_answers_are_refused_locally() {
        for answers in [&[][..], &[""], &["1234", "  "]] {
            assert!(
                matches!(
                    op(answers).request(&base()),
                    Err(Error::InvalidInput { .. })
                ),
                "{answers:?}"
            );
        }
    }

    #[test]
    fn never_retried_and_carries_both_ids() {
        let op = op(&["1234"]);
        assert!(!op.is_idempotent());
        let ctx = op.context();
        assert_eq!(ctx.user_id.as_ref().map(UserId::as_str), Some("u1"));
        assert_eq!(ctx.job_id.as_ref().map(JobId::as_str), Some("j1"));
        assert_eq!(
            op.authentication(),
            Authentication::ClientToken(UserId::new("u1").unwrap())
        );
    }
}
