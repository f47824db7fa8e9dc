//! The types the high-level helpers return, and the pure pieces of those helpers, shared by both
//! clients (the resource macros only drive the flows and add the `.await`s).
//!
//! Every rule lives in `basiq-core` ([`RefreshPolicy`], the duplicate-pause guard,
//! [`JobPoller`](crate::jobs::JobPoller), [`triage_user`](crate::jobs::triage_user)) and every multi-step helper is a
//! sans-IO flow there (`basiq_core::flows::{refresh, consent, follow, pagination}`); this module
//! holds what the clients return, so the right thing is what a single call does.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use basiq_core::error::ErrorContext;
use basiq_core::flows::consent::ConsentVerdict;
use basiq_core::flows::refresh::RefreshVerdict;
use basiq_core::id::{ConnectionId, InstitutionId, JobId, UserId};
use basiq_core::policy::fleet::AttemptRefusal;
use basiq_core::policy::refresh::{
    MemoryLedger, RefreshLedger, RefreshPolicy, RefreshResponse, RefreshSchedule, RefreshScheduler,
    SkipReason,
};
use basiq_core::secret::AccessToken;
use basiq_core::Error;
use time::OffsetDateTime;
use url::Url;

/// Where Basiq's hosted Consent UI lives.
pub const DEFAULT_CONSENT_URL: &str = "https://consent.basiq.io/home";

/// The default cap of [`plan_refreshes`](crate::Connections::plan_refreshes): at most this many
/// refreshes in any 60 seconds. Basiq publishes no number; banks block bursts, so the default is
/// deliberately low — a thousand connections still fit in under two hours.
pub const DEFAULT_MAX_REFRESHES_PER_MINUTE: u32 = 10;

/// A refresh ledger several clients (or clones) share. `RefreshLedger::record` takes `&mut self`,
/// so it sits behind a mutex; implement [`RefreshLedger`] over a shared store (Redis, SQL) to make
/// the open-banking daily limit hold across a fleet.
pub type SharedRefreshLedger = Arc<Mutex<dyn RefreshLedger + Send>>;

/// What the facade's best-practice helpers need besides the executor. Shared by clones.
pub(crate) struct Policies {
    pub(crate) refresh_policy: RefreshPolicy,
    pub(crate) ledger: SharedRefreshLedger,
    /// `None` = [`DEFAULT_CONSENT_URL`].
    pub(crate) consent_base: Option<Url>,
    pub(crate) max_refreshes_per_minute: u32,
    /// How far the pagers follow `links.next`.
    pub(crate) page_limits: basiq_core::policy::pagination::PageLimits,
    /// When Basiq last refreshed each connection (webhooks); `None` = not consulted.
    pub(crate) freshness: Option<Arc<dyn basiq_core::policy::freshness::FreshnessLedger>>,
}

impl Default for Policies {
    fn default() -> Self {
        Self {
            refresh_policy: RefreshPolicy::default(),
            ledger: Arc::new(Mutex::new(MemoryLedger::new())),
            consent_base: None,
            max_refreshes_per_minute: DEFAULT_MAX_REFRESHES_PER_MINUTE,
            page_limits: basiq_core::policy::pagination::PageLimits::default(),
            freshness: None,
        }
    }
}

impl fmt::Debug for Policies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policies")
            .field("refresh_policy", &self.refresh_policy)
            .field("consent_base", &self.consent_base.as_ref().map(Url::as_str))
            .field("max_refreshes_per_minute", &self.max_refreshes_per_minute)
            .field("page_limits", &self.page_limits)
            .finish_non_exhaustive()
    }
}

fn lock(ledger: &SharedRefreshLedger) -> MutexGuard<'_, dyn RefreshLedger + Send + 'static> {
    // A poisoned lock means another thread panicked mid-record; the counts are still usable
    // (at worst one refresh short), and refusing all refreshes forever would be worse.
    ledger.lock().unwrap_or_else(|p| p.into_inner())
}

impl Policies {
    /// Runs `f` on the refresh ledger under its lock (never held across an `.await`): the
    /// guarded refresh decides and records in one call, so two concurrent calls cannot both
    /// take the last quota slot.
    pub(crate) fn with_ledger<R>(&self, f: impl FnOnce(&mut dyn RefreshLedger) -> R) -> R {
        f(&mut *lock(&self.ledger))
    }

    /// Where the Consent UI lives.
    pub(crate) fn consent_base(&self) -> Result<Url, Error> {
        match &self.consent_base {
            Some(url) => Ok(url.clone()),
            None => Url::parse(DEFAULT_CONSENT_URL)
                .map_err(|e| Error::config(format!("consent URL: {e}"))),
        }
    }

    /// Records a refresh sent without the guard (it counts against the daily quota all the same).
    pub(crate) fn record_refresh(&self, connection: &ConnectionId, now: OffsetDateTime) {
        lock(&self.ledger).record(connection, now);
    }

    pub(crate) fn plan_refreshes(
        &self,
        candidates: &[ConnectionId],
        window: Duration,
        now: OffsetDateTime,
    ) -> RefreshSchedule {
        // The grid phase only has to differ between processes and runs, not be unpredictable.
        let jitter = f64::from(now.nanosecond()) / 1e9;
        RefreshScheduler::new(window, self.max_refreshes_per_minute)
            .schedule(now, candidates, jitter)
    }
}

/// How long a planned refresh slot stays claimed: a plan spans at most a day, plus margin.
pub(crate) const PLANNED_SLOT_HORIZON: Duration = Duration::from_secs(26 * 60 * 60);

/// What a refresh the fleet refused turns into.
pub(crate) fn refresh_refused(refusal: AttemptRefusal, now: OffsetDateTime) -> RefreshOutcome {
    RefreshOutcome::Skipped(basiq_core::flows::refresh::refused_skip(refusal, now))
}

/// What a consent attempt that hands out no link answers (the flow's other verdicts).
pub(crate) fn consent_held(verdict: ConsentVerdict) -> ConsentOutcome {
    match verdict {
        ConsentVerdict::FollowExisting { job_id } => ConsentOutcome::FollowExisting { job_id },
        ConsentVerdict::Paused { until, job_id } => ConsentOutcome::Paused { until, job_id },
        ConsentVerdict::InProgressElsewhere { until } => {
            ConsentOutcome::InProgressElsewhere { until }
        }
        // `Proceed` is handled by the driver (it holds the token); a verdict this version does
        // not know hands out nothing.
        _ => ConsentOutcome::InProgressElsewhere { until: None },
    }
}

/// Records the ids a followed job's snapshots named on its span (never a token).
pub(crate) fn record_ids(span: &tracing::Span, context: &ErrorContext) {
    if let Some(user) = &context.user_id {
        span.record("user_id", user.as_str());
    }
    if let Some(conn) = &context.connection_id {
        span.record("connection_id", conn.as_str());
    }
}

// ---------------------------------------------------------------------------------------------
// Refresh
// ---------------------------------------------------------------------------------------------

/// What [`connections().refresh`](crate::Connections::refresh) did. `Display` is text for the
/// end user; the ids are in the variants.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub enum RefreshOutcome {
    /// Basiq started a refresh job (202): follow it with `jobs().wait_as(id, JobKind::Refresh, ..)`.
    Started(JobId),
    /// Basiq answered 200 with a job already queued or running for the connection: follow that
    /// job; no second one was started.
    AlreadyRunning(JobId),
    /// Nothing was sent: Basiq's rules say not now ([`SkipReason`] says why and until when).
    Skipped(SkipReason),
    /// Nothing was sent: a duplicate attempt on these credentials is already paused by Basiq for
    /// 6 minutes. Send nothing before `until`; follow the jobs.
    Paused {
        /// When Basiq's pause of the duplicate ends.
        until: OffsetDateTime,
        /// The paused job.
        job_id: JobId,
    },
}

impl RefreshOutcome {
    /// The job to follow: the new one, the running one, or the paused one; `None` when skipped
    /// for another reason than a running job.
    pub fn job_id(&self) -> Option<&JobId> {
        match self {
            Self::Started(id)
            | Self::AlreadyRunning(id)
            | Self::Paused { job_id: id, .. }
            | Self::Skipped(SkipReason::InProgress(id)) => Some(id),
            Self::Skipped(_) => None,
        }
    }

    /// Whether a refresh request was sent to Basiq.
    pub fn was_sent(&self) -> bool {
        matches!(self, Self::Started(_) | Self::AlreadyRunning(_))
    }
}

impl fmt::Display for RefreshOutcome {
    /// For the end user (no ids; the job to follow is [`job_id`](Self::job_id)).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Started(_) => f.write_str("updating your bank data"),
            Self::AlreadyRunning(_) => {
                f.write_str("an update of your bank data is already running")
            }
            Self::Skipped(reason) => write!(f, "not updated now: {reason}"),
            Self::Paused { until, .. } => write!(
                f,
                "a repeated attempt is paused by the bank data service until {}",
                UserTime(*until)
            ),
        }
    }
}

/// A time for an end user: `2026-01-07 00:00 UTC`.
struct UserTime(OffsetDateTime);

impl fmt::Display for UserTime {
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

impl From<RefreshVerdict> for RefreshOutcome {
    fn from(verdict: RefreshVerdict) -> Self {
        match verdict {
            RefreshVerdict::Sent(response) => response.into(),
            RefreshVerdict::Skipped(reason) => Self::Skipped(reason),
            RefreshVerdict::Paused { until, job_id } => Self::Paused { until, job_id },
            // A verdict this version does not know: nothing is known to have been sent.
            _ => Self::Skipped(SkipReason::InProgressElsewhere { until: None }),
        }
    }
}

impl From<RefreshResponse> for RefreshOutcome {
    fn from(response: RefreshResponse) -> Self {
        match response {
            RefreshResponse::Started(id) => Self::Started(id),
            RefreshResponse::AlreadyRunning(id) => Self::AlreadyRunning(id),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Transactions
// ---------------------------------------------------------------------------------------------

/// Which transactions to list: a Basiq filter and a page size.
///
/// ```
/// let query = basiq::TransactionQuery::new()
///     .filter("transaction.postDate.bt('2026-01-01','2026-01-31')")
///     .limit(500);
/// assert_eq!(query.limit, Some(500));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct TransactionQuery {
    /// A Basiq filter (`transaction.postDate`, `transaction.status`, `account.id`, …); encoded
    /// by the SDK.
    pub filter: Option<String>,
    /// Page size, 1..=500 (Basiq's default and maximum is 500).
    pub limit: Option<u32>,
}

impl TransactionQuery {
    /// Every transaction, Basiq's default page size.
    pub fn new() -> Self {
        Self::default()
    }

    /// Restricts to a Basiq filter.
    pub fn filter(mut self, filter: impl Into<String>) -> Self {
        self.filter = Some(filter.into());
        self
    }

    /// Sets the page size (1..=500; other values are refused before any request).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The generated operation with this query's parameters; it validates `limit` itself.
    pub(crate) fn operation(
        &self,
        user_id: UserId,
    ) -> basiq_core::api::operations::ListTransactions {
        let mut op = basiq_core::api::operations::ListTransactions::new(user_id);
        op.filter.clone_from(&self.filter);
        op.limit = self.limit;
        op
    }
}

/// How many items to reserve for collecting a whole list, from its first page: Basiq's `size`
/// (the list's total) when it sends one, capped so a hostile `size` cannot make the client
/// allocate gigabytes before the first item; the `Vec` still grows past the cap if it must.
pub(crate) fn reserve_for<P: basiq_core::policy::pagination::Page>(first: &P) -> usize {
    const RESERVE_CAP: u64 = 1 << 20;
    let len = u64::try_from(first.items().len()).unwrap_or(u64::MAX);
    let total = first.total().unwrap_or(len).min(RESERVE_CAP);
    usize::try_from(total).unwrap_or(0)
}

/// A walk over `links.next`: loops, empty pages and the client's page limits.
pub(crate) use basiq_core::policy::pagination::PageWalk;

// ---------------------------------------------------------------------------------------------
// Consent UI
// ---------------------------------------------------------------------------------------------

/// Why the user goes to Basiq's Consent UI.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsentAction {
    /// Connect a bank (`action=connect`); with an institution the UI opens on it, and the
    /// duplicate check only looks at jobs for that institution.
    Connect {
        /// The institution, e.g. `AU00000`; `None` lets the user choose.
        institution: Option<InstitutionId>,
    },
    /// Re-enter the credentials of a web connection (`action=update`), e.g. after a failed job
    /// recommended [`ReenterCredentials`](crate::jobs::RecommendedAction::ReenterCredentials).
    Update {
        /// The connection.
        connection_id: ConnectionId,
    },
    /// Reauthorise an open-banking connection (`action=reauthorise`).
    Reauthorise {
        /// The connection.
        connection_id: ConnectionId,
    },
    /// Extend the user's consent before it expires (`action=extend`), e.g. after a
    /// `consent.warning`.
    Extend,
}

impl ConsentAction {
    /// `action=connect`, the user picks the bank.
    pub fn connect() -> Self {
        Self::Connect { institution: None }
    }

    /// `action=connect` for one institution.
    pub fn connect_to(institution: InstitutionId) -> Self {
        Self::Connect {
            institution: Some(institution),
        }
    }

    /// `action=update` for a connection.
    pub fn update(connection_id: ConnectionId) -> Self {
        Self::Update { connection_id }
    }

    /// `action=reauthorise` for a connection.
    pub fn reauthorise(connection_id: ConnectionId) -> Self {
        Self::Reauthorise { connection_id }
    }

    /// `action=extend`: re-consent before the consent expires.
    pub fn extend() -> Self {
        Self::Extend
    }

    /// The `action` parameter.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "connect",
            Self::Update { .. } => "update",
            Self::Reauthorise { .. } => "reauthorise",
            Self::Extend => "extend",
        }
    }

    /// The institution the attempt is for, when known.
    pub fn institution(&self) -> Option<&InstitutionId> {
        match self {
            Self::Connect { institution } => institution.as_ref(),
            _ => None,
        }
    }

    /// The connection the attempt is for, when known.
    pub fn connection_id(&self) -> Option<&ConnectionId> {
        match self {
            Self::Connect { .. } | Self::Extend => None,
            Self::Update { connection_id } | Self::Reauthorise { connection_id } => {
                Some(connection_id)
            }
        }
    }
}

/// A [`ConsentAction`] and the `state` to get back on the redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct ConsentRequest {
    /// Why the user goes to the Consent UI.
    pub action: ConsentAction,
    /// Echoed back on the redirect (`?jobIds=…&state=…`): tie the answer to your session.
    pub state: Option<String>,
}

impl ConsentRequest {
    /// A request without `state`.
    pub fn new(action: ConsentAction) -> Self {
        Self {
            action,
            state: None,
        }
    }

    /// Sets `state`.
    pub fn state(mut self, state: impl Into<String>) -> Self {
        self.state = Some(state.into());
        self
    }
}

impl From<ConsentAction> for ConsentRequest {
    fn from(action: ConsentAction) -> Self {
        Self::new(action)
    }
}

/// A Consent UI link for one user: hand it to *that user's* browser.
///
/// The URL carries a `CLIENT_ACCESS` token bound to the user, so it is a secret: `Debug` shows
/// `token=[REDACTED]`, and the URL is only reachable through [`expose_url`](Self::expose_url).
#[derive(Clone)]
#[non_exhaustive]
pub struct ConsentLink {
    url: Url,
    /// The user the token is bound to.
    pub user_id: UserId,
    /// Why.
    pub action: ConsentAction,
    /// The `state` echoed back on the redirect.
    pub state: Option<String>,
}

impl ConsentLink {
    pub(crate) fn build(
        base: &Url,
        token: &AccessToken,
        user_id: UserId,
        request: ConsentRequest,
    ) -> Self {
        let mut url = base.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("token", token.expose_secret());
            query.append_pair("action", request.action.as_str());
            if let Some(state) = &request.state {
                query.append_pair("state", state);
            }
            if let Some(institution) = request.action.institution() {
                query.append_pair("institutionId", institution.as_str());
            }
            if let Some(connection) = request.action.connection_id() {
                query.append_pair("connectionId", connection.as_str());
            }
        }
        Self {
            url,
            user_id,
            action: request.action,
            state: request.state,
        }
    }

    /// The URL, token included: send it to the user's browser (a redirect), never to a log.
    pub fn expose_url(&self) -> &Url {
        &self.url
    }

    /// The URL, token included (see [`expose_url`](Self::expose_url)).
    pub fn into_url(self) -> Url {
        self.url
    }

    /// The URL with the token replaced by `[REDACTED]`: safe to log.
    pub fn redacted_url(&self) -> String {
        let query: Vec<String> = self
            .url
            .query_pairs()
            .map(|(k, v)| {
                if k == "token" {
                    "token=[REDACTED]".to_owned()
                } else {
                    url::form_urlencoded::Serializer::new(String::new())
                        .append_pair(&k, &v)
                        .finish()
                }
            })
            .collect();
        let mut base = self.url.clone();
        base.set_query(None);
        format!("{base}?{}", query.join("&"))
    }
}

impl fmt::Debug for ConsentLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsentLink")
            .field("url", &self.redacted_url())
            .field("user_id", &self.user_id)
            .field("action", &self.action)
            .field("state", &self.state)
            .finish()
    }
}

/// What [`consent_url`](crate::Client::consent_url) answers. `Display` is text for the end user
/// (never the link).
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use]
pub enum ConsentOutcome {
    /// No attempt with these credentials is running: send the user to this link.
    Link(ConsentLink),
    /// An attempt is running: show its progress (follow the job) instead of starting another,
    /// which Basiq would pause for 6 minutes.
    FollowExisting {
        /// The running job.
        job_id: JobId,
    },
    /// A duplicate attempt is already paused by Basiq: send nothing before `until`.
    Paused {
        /// When the pause ends.
        until: OffsetDateTime,
        /// The paused job.
        job_id: JobId,
    },
    /// Another instance of this app (fleet mode) has just sent this user to the Consent UI for
    /// the same institution or connection, and no job shows yet: follow that attempt (its job
    /// will appear in the user's jobs) rather than start a second one Basiq would pause.
    InProgressElsewhere {
        /// When the other instance's claim lapses at the latest.
        until: Option<OffsetDateTime>,
    },
}

impl fmt::Display for ConsentOutcome {
    /// For the end user (no ids, never the link's token).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Link(_) => f.write_str("ready to connect your bank"),
            Self::FollowExisting { .. } => {
                f.write_str("connecting your bank is already in progress")
            }
            Self::Paused { until, .. } => write!(
                f,
                "a repeated attempt to connect your bank is paused until {}",
                UserTime(*until)
            ),
            Self::InProgressElsewhere { .. } => {
                f.write_str("connecting your bank has already been started")
            }
        }
    }
}

impl ConsentOutcome {
    /// The link, when the user may go to the Consent UI now.
    pub fn link(&self) -> Option<&ConsentLink> {
        match self {
            Self::Link(link) => Some(link),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_link_encodes_params_and_redacts_the_token() {
        let base = Url::parse("https://consent.basiq.io/home").unwrap();
        let token = AccessToken::new("eyJ.secret.sig");
        let request = ConsentRequest::new(ConsentAction::update(ConnectionId::new("c1").unwrap()))
            .state("a b&c=d");
        let link = ConsentLink::build(&base, &token, UserId::new("u1").unwrap(), request);
        let url = link.expose_url().as_str().to_owned();
        assert_eq!(
            url,
            "https://consent.basiq.io/home?token=eyJ.secret.sig&action=update&state=a+b%26c%3Dd&connectionId=c1"
        );
        let debug = format!("{link:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("token=[REDACTED]&action=update&state=a+b%26c%3Dd&connectionId=c1"));
        assert!(!link.redacted_url().contains("secret"));
        assert_eq!(link.into_url().as_str(), url);
    }

    #[test]
    fn refresh_outcome_names_the_job_to_follow() {
        let j = JobId::new("j").unwrap();
        assert_eq!(RefreshOutcome::Started(j.clone()).job_id(), Some(&j));
        assert!(RefreshOutcome::AlreadyRunning(j.clone()).was_sent());
        assert_eq!(
            RefreshOutcome::Skipped(SkipReason::InProgress(j.clone())).job_id(),
            Some(&j)
        );
        let recent = RefreshOutcome::Skipped(SkipReason::DailyQuotaExhausted {
            resets_at: OffsetDateTime::UNIX_EPOCH,
        });
        assert_eq!(recent.job_id(), None);
        assert!(!recent.was_sent());
    }
}
