//! Sandbox logins and what each one does to a job.
//!
//! Basiq's sandbox (basiq-api.md §4.4) has happy-path users and three users that always fail at the same
//! step. We add a few of our own so the SDK's failure taxonomy (basiq-api.md §4.3) meets every class of
//! code: user action, transient, institution outage, unknown. The table is documented in
//! `docs/emulator.md`; keep the two in sync.

use time::Duration;

use crate::state::StepPlan;

/// A step failure, as it appears in the step's `result`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) code: &'static str,
    pub(crate) title: &'static str,
    pub(crate) detail: String,
}

impl Failure {
    pub(crate) fn new(code: &'static str, title: &'static str, detail: &str) -> Self {
        Self {
            code,
            title,
            detail: detail.to_owned(),
        }
    }

    pub(crate) fn invalid_credentials(detail: &str) -> Self {
        Self::new(
            "invalid-credentials",
            "Cannot login to target institution, check credentials.",
            detail,
        )
    }

    pub(crate) fn service_unavailable() -> Self {
        Self::new(
            "service-unavailable",
            "Service unavailable",
            "Service is currently unavailable. Please try again later.",
        )
    }
}

pub(crate) const VERIFY: &str = "verify-credentials";
pub(crate) const ACCOUNTS: &str = "retrieve-accounts";
pub(crate) const TRANSACTIONS: &str = "retrieve-transactions";

/// Normal step durations (virtual seconds): a whole connection job takes 13 s, inside Basiq's
/// documented 3–30 s.
const NORMAL: [i64; 3] = [3, 4, 6];
/// The `slow` login: one minute per step, for poller deadline tests.
const SLOW: [i64; 3] = [60, 60, 60];

/// Basiq's documented happy-path sandbox users (basiq-api.md §4.4).
const HAPPY: &[(&str, &str)] = &[
    ("Wentworth-Smith", "whislter"),
    ("Whistler", "ShowBox"),
    ("Gilfoyle", "PiedPiper"),
    ("gavinBelson", "hooli2016"),
    ("jared", "django"),
    ("richard", "tabsnotspaces"),
    ("laurieBream", "business2024"),
    ("ashMann", "hooli2024"),
];

/// Where a job fails, if it does.
fn failure_for(
    login: &str,
    password: &str,
    prior_attempts: u32,
) -> (Option<(usize, Failure)>, [i64; 3]) {
    let at = |step: usize, f: Failure| (Some((step, f)), NORMAL);
    // An OpenBanking consent carries no credentials: the bank authorised the user itself.
    if HAPPY.iter().any(|(l, p)| *l == login && *p == password)
        || (login.is_empty() && password.is_empty())
    {
        return (None, NORMAL);
    }
    // Our own test logins use the login id as password.
    let ours = login == password;
    match (login, password) {
        // Basiq's failure users.
        ("bighead", "password") => at(0, Failure::invalid_credentials("Account is locked")),
        ("erlich", "aviato") => at(
            0,
            Failure::new(
                "account-not-accessible-requires-user-action",
                "Account not accessible, requires user action.",
                "The institution requires you to log in to your internet banking and complete an action (e.g. accept new terms), then try again.",
            ),
        ),
        ("jianYang", "nothotdog") => at(0, Failure::service_unavailable()),
        // basiq-mock's own.
        ("maintenance", _) if ours => at(
            0,
            Failure::new(
                "maintenance",
                "Institution under maintenance",
                "The institution is undergoing scheduled maintenance. Please try again later.",
            ),
        ),
        ("authfail", _) if ours => at(
            0,
            Failure::new("authorization-failed", "Authorization failed", "access_denied"),
        ),
        ("useraction", _) if ours => at(
            0,
            Failure::new(
                "user-action-required",
                "User action required",
                "The user must take action at their institution before the connection can proceed.",
            ),
        ),
        ("sysdown", _) if ours => at(
            1,
            Failure::new(
                "system-unavailable",
                "System unavailable",
                "The institution's system is unavailable. Please try again later.",
            ),
        ),
        ("connectorerr", _) if ours => at(
            1,
            Failure::new(
                "connector-error",
                "Connector error",
                "An error occurred in the connector for this institution.",
            ),
        ),
        ("timeout", _) if ours => at(
            2,
            Failure::new(
                "job-timed-out",
                "Job timed out",
                "The job took too long to complete and was stopped. Please try again.",
            ),
        ),
        ("unknownerr", _) if ours => at(
            2,
            Failure::new("unknown-error", "Unknown error", "An unknown error occurred."),
        ),
        ("flaky", _) if ours => {
            if prior_attempts == 0 {
                at(0, Failure::service_unavailable())
            } else {
                (None, NORMAL)
            }
        }
        ("slow", _) if ours => (None, SLOW),
        _ => at(
            0,
            Failure::invalid_credentials(
                "Cannot login to target institution using supplied credentials. Please check credentials and try again.",
            ),
        ),
    }
}

/// The steps a job for this login will go through.
///
/// `prior_attempts` is how many jobs the connection had before this one; `outage` is set when
/// the institution's connector is in `major-outage`, which fails verification regardless of the
/// login (what Basiq's status page would explain).
pub(crate) fn plan(
    login: &str,
    password: &str,
    prior_attempts: u32,
    outage: bool,
    mfa: bool,
) -> Vec<StepPlan> {
    let (failure, secs) = if outage {
        (Some((0, Failure::service_unavailable())), NORMAL)
    } else {
        failure_for(login, password, prior_attempts)
    };
    let mut steps = [VERIFY, ACCOUNTS, TRANSACTIONS]
        .iter()
        .enumerate()
        .map(|(i, title)| StepPlan {
            title,
            duration: Duration::seconds(secs[i]),
            failure: failure
                .as_ref()
                .filter(|(step, _)| *step == i)
                .map(|(_, f)| f.clone()),
            mfa: None,
        })
        .collect::<Vec<_>>();
    // An MFA institution challenges once the credentials are verified.
    if mfa && steps.first().is_some_and(|s| s.failure.is_none()) {
        steps.insert(1, crate::mfa::step(login));
    }
    steps
}
