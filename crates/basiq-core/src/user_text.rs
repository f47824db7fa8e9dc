//! `Display` for the outcomes an app shows: text fit for an **end user** — no ids, no codes,
//! nothing only Basiq support understands. The operator's text, with the ids support asks for,
//! is separate: [`Diagnosis::operator_text`], [`UnresolvedFailure::operator_text`],
//! [`RecommendedAction`](crate::jobs::RecommendedAction)'s `Display`, and `Debug`.

use std::fmt;

use time::OffsetDateTime;

use crate::error::ErrorKind;
use crate::jobs::{Diagnosis, FailureClass, UnresolvedFailure, UserAction};
use crate::refresh::SkipReason;

/// A time for an end user: `2026-01-07 00:00 UTC`.
pub(crate) struct When(pub(crate) OffsetDateTime);

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0.to_offset(time::UtcOffset::UTC);
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        )
    }
}

impl fmt::Display for UserAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ReenterCredentials { .. } => {
                "your bank did not accept the login details; please enter them again"
            }
            Self::CompleteMfa => {
                "the bank's security check was not completed; please go through it again"
            }
            Self::ClearBankPopupOrTerms => {
                "your bank needs your attention: log in to your internet banking, clear any \
                 message or accept the new terms, then try again"
            }
            Self::ResolveAtInstitution => {
                "your bank needs your attention: log in to your internet banking and follow its \
                 instructions, then try again"
            }
            Self::Reauthorise => "access to your bank needs to be authorised again",
            Self::Reconnect => "please connect your bank again",
        })
    }
}

impl fmt::Display for FailureClass {
    /// What happened, for the end user (the operator's action is
    /// [`RecommendedAction`](crate::jobs::RecommendedAction)).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UserActionRequired(action) => action.fmt(f),
            Self::Transient { .. } => {
                f.write_str("your bank could not be reached just now; it will be tried again shortly")
            }
            Self::ServerManagedRetry { .. } => f.write_str(
                "your bank could not be reached; the connection is retried automatically",
            ),
            Self::InstitutionOutage => f.write_str(
                "your bank is currently unavailable; it will be tried again once it is back",
            ),
            Self::FileProblem => f.write_str(
                "the uploaded statement could not be read; please check the file and upload it again",
            ),
            Self::Permanent => f.write_str("this bank cannot be connected; please contact support"),
            Self::Unknown => {
                f.write_str("something went wrong with your bank connection; please contact support")
            }
        }
    }
}

impl fmt::Display for Diagnosis {
    /// The end user's text ([`FailureClass`]'s); see [`operator_text`](Self::operator_text) for
    /// the log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.class.fmt(f)
    }
}

impl Diagnosis {
    /// For an operator's log or a support ticket: the job, the step, Basiq's code and detail,
    /// and the action with its ids — `job 61723 failed at verify-credentials: invalid-credentials
    /// …; ask the user to re-enter …`.
    #[must_use]
    pub fn operator_text(&self) -> String {
        format!(
            "job {} failed at {}: {}; {}",
            self.job_id, self.step, self.failure, self.action
        )
    }
}

impl fmt::Display for UnresolvedFailure {
    /// The end user's text ([`FailureClass`]'s); see [`operator_text`](Self::operator_text).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.class.fmt(f)
    }
}

impl UnresolvedFailure {
    /// For an operator: the job, the step, Basiq's code, the action, the ids and how often it
    /// failed in a row.
    #[must_use]
    pub fn operator_text(&self) -> String {
        let mut text = format!(
            "job {} failed at {}: {}; {}",
            self.job_id, self.step, self.failure, self.action
        );
        if let Some(user) = &self.user_id {
            text.push_str(&format!(" [userId={user}"));
            if let Some(conn) = &self.connection_id {
                text.push_str(&format!(", connectionId={conn}"));
            }
            text.push(']');
        } else if let Some(conn) = &self.connection_id {
            text.push_str(&format!(" [connectionId={conn}]"));
        }
        if self.consecutive_failures > 1 {
            text.push_str(&format!(
                " ({} failures in a row)",
                self.consecutive_failures
            ));
        }
        text
    }
}

impl fmt::Display for SkipReason {
    /// Why the bank data was not updated now, for the end user.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inactive(_) => {
                f.write_str("the bank connection needs attention before it can be updated")
            }
            Self::NotRefreshable(_) => f.write_str("uploaded statements cannot be updated"),
            Self::InProgress(_) => f.write_str("an update is already running"),
            Self::LastAttemptFailed {
                class, retry_at, ..
            } => {
                write!(f, "the last update did not work: {class}")?;
                match retry_at {
                    Some(at) => write!(f, " (not before {})", When(*at)),
                    None => Ok(()),
                }
            }
            Self::RecentlyRefreshed { next_allowed, .. } => write!(
                f,
                "the data was updated recently; the next update is possible after {}",
                When(*next_allowed)
            ),
            Self::DailyQuotaExhausted { resets_at } => write!(
                f,
                "the bank's daily update limit is reached; updates resume after {}",
                When(*resets_at)
            ),
            Self::InProgressElsewhere { .. } => f.write_str("an update is already being started"),
            Self::RefreshedByBasiq { at, .. } => write!(
                f,
                "the bank data was updated automatically at {}",
                When(*at)
            ),
        }
    }
}

impl fmt::Display for ErrorKind {
    /// A short phrase for the kind of failure (the [`Error`](crate::Error)'s own `Display`
    /// carries Basiq's code, detail and the ids, for operators).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidId => "an id is not valid",
            Self::InvalidInput => "the request is not valid",
            Self::Config => "the client is not configured correctly",
            Self::InvalidApiKey => "the API key is not valid",
            Self::Unauthorized => "not authorised",
            Self::Forbidden => "not allowed",
            Self::NotFound => "not found",
            Self::PayloadTooLarge => "the file is too large",
            Self::BadRequest => "the request was refused",
            Self::RateLimited => "too many requests; try again later",
            Self::Server => "the service is having problems; try again later",
            Self::Redirect => "the service answered with an unexpected redirect",
            Self::Transport => "the service could not be reached",
            Self::Decode => "the service sent an answer that could not be read",
            Self::PageLimit => "too many pages",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{ConnectionId, JobId, UserId};
    use crate::jobs::{
        recommend, ActionContext, JobFailureCode, StepFailure, TRANSIENT_RETRY_AFTER,
    };
    use crate::models::StepTitle;

    fn diagnosis(code: &str, class: FailureClass) -> Diagnosis {
        let ctx = ActionContext {
            user_id: Some(UserId::new("u-91").unwrap()),
            connection_id: Some(ConnectionId::new("c-42").unwrap()),
            job_id: Some(JobId::new("j-17").unwrap()),
            institution: Some("AU00000".into()),
        };
        let code = JobFailureCode::from(code);
        Diagnosis {
            job_id: JobId::new("j-17").unwrap(),
            step: StepTitle::VerifyCredentials,
            failure: StepFailure {
                code: code.clone(),
                title: None,
                detail: None,
            },
            action: recommend(&class, &code, &ctx),
            class,
        }
    }

    #[test]
    fn user_text_has_no_ids_and_operator_text_has_them() {
        let cases = [
            (
                "invalid-credentials",
                FailureClass::UserActionRequired(UserAction::ReenterCredentials {
                    password_probably_changed: true,
                }),
            ),
            (
                "service-unavailable",
                FailureClass::Transient {
                    retry_after: TRANSIENT_RETRY_AFTER,
                },
            ),
            ("institution-not-available", FailureClass::InstitutionOutage),
            ("empty-file", FailureClass::FileProblem),
            ("institution-not-found", FailureClass::Permanent),
            ("who-knows", FailureClass::Unknown),
        ];
        let mut texts = std::collections::HashSet::new();
        for (code, class) in cases {
            let d = diagnosis(code, class);
            let user = d.to_string();
            for id in ["j-17", "c-42", "u-91", code] {
                assert!(!user.contains(id), "{user:?} shows {id}");
            }
            assert!(
                texts.insert(user.clone()),
                "each class has its own text: {user}"
            );
            let operator = d.operator_text();
            assert!(
                operator.contains("j-17") && operator.contains(code),
                "{operator}"
            );
        }
    }

    #[test]
    fn skip_reasons_read_as_sentences_with_times() {
        let at = time::macros::datetime!(2026-01-07 00:00 UTC);
        let text = SkipReason::DailyQuotaExhausted { resets_at: at }.to_string();
        assert_eq!(
            text,
            "the bank's daily update limit is reached; updates resume after 2026-01-07 00:00 UTC"
        );
        let running = SkipReason::InProgress(JobId::new("j-17").unwrap()).to_string();
        assert!(!running.contains("j-17"), "{running}");
        assert_eq!(
            ErrorKind::RateLimited.to_string(),
            "too many requests; try again later"
        );
    }
}
