//! What happens *between* requests, on virtual time: Basiq's smart cache (the daily background
//! refresh) and webhook delivery.
//!
//! Everything else in the emulator is derived lazily when a request reads it; these two must
//! act — create jobs, POST to the app — so they run in a **pump**: [`run_until`] moves the
//! clock from one due instant to the next (a smart-cache slot, the end of a job step that emits
//! an event, a consent warning, a delivery retry) and does what is due there. It is driven by
//! `MockServer::advance` / `advance_async` and `POST /__admin/clock/advance`; time moved any
//! other way (a shared `ManualClock` advanced directly) is caught up on at the next pump, late.
//!
//! - **Smart cache** (off by default; `MockServerBuilder::smart_cache`, `POST
//!   /__admin/smart-cache`): every active connection whose user's consent is active is
//!   refreshed once a day at a stable, spread time of day (FNV-1a of its id → a second of the
//!   day), as a background job: it shows in the user's jobs and emits `account.updated` /
//!   `transactions.updated`, but is counted in `Stats::background_refreshes`, never in
//!   `Stats::refreshes` (the app's ad-hoc refreshes).
//! - **Delivery**: each event a subscription covers (created since it, of a subscribed type) is
//!   POSTed to its URL — only `http://127.0.0.1` / `localhost` URLs; others are listed as
//!   messages but never sent — with Basiq's headers (`webhook-id` = the message id, the same on
//!   every retry; `webhook-timestamp`; `webhook-signature` `v1,` HMAC-SHA256 with the
//!   subscription's `whsec_` secret) and body `{eventTypeId, eventId, links: {event,
//!   eventEntity}}`. A 2xx answer delivers it; otherwise it is retried on Basiq's schedule
//!   ([`RETRY_DELAYS`]: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) and when the
//!   last attempt fails the subscription is **disabled** (`status: "disabled"`, nothing more
//!   sent). Attempts show in the messages API and `GET /__admin/webhooks/deliveries`.

use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::Duration;

use basiq_core::webhooks::{self, WebhookSecret};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use super::events::events_in;
use super::stable_id;
use crate::logins::{ACCOUNTS, TRANSACTIONS};
use crate::state::{AppState, ConnectionStatus, Db, JobKind};

/// Basiq's waits before each retry (delivery-schedule-and-retries): 8 attempts in all.
pub const RETRY_DELAYS: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// How long one delivery attempt may take (real time) before it counts as failed.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// One attempt to deliver a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DeliveryAttempt {
    /// When it was sent (virtual time).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The receiver's HTTP status; `None` when nothing came back (refused, timed out).
    pub status: Option<u16>,
    /// Whether it counted as delivered (2xx).
    pub delivered: bool,
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// A 2xx answer came back.
    Delivered,
    /// Every attempt failed (the subscription was disabled), or the subscription was deleted
    /// or disabled before it got through.
    Failed,
}

/// A webhook message the emulator sends (`GET /__admin/webhooks/deliveries`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WebhookDelivery {
    /// The message id, sent as `webhook-id` on every attempt.
    pub message_id: String,
    /// The subscription.
    pub webhook_id: String,
    /// The event.
    pub event_id: String,
    /// `eventTypeId`.
    pub event_type: String,
    /// Where it goes.
    pub url: String,
    /// The attempts so far, oldest first.
    pub attempts: Vec<DeliveryAttempt>,
    /// Where it stands.
    pub state: DeliveryState,
    /// When the next attempt is due.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    #[serde(skip)]
    pub(crate) body: Vec<u8>,
}

/// What the pump remembers.
#[derive(Debug, Default)]
pub(crate) struct NotifyState {
    /// Whether the smart cache runs.
    pub(crate) smart_cache: bool,
    /// The smart cache has done everything due up to here.
    pub(crate) refreshed_until: Option<OffsetDateTime>,
    /// The smart cache's next slot, and how many connections it was computed for.
    next_slot: Option<(usize, OffsetDateTime)>,
    /// Events up to here have been turned into deliveries.
    pub(crate) scanned_until: Option<OffsetDateTime>,
    /// Every message to send, in creation order.
    pub(crate) deliveries: Vec<WebhookDelivery>,
    /// `(webhook, event)` pairs already queued.
    queued: HashSet<(String, String)>,
    /// Jobs that may still emit events (unfinished at the last look), and the job counter they
    /// were taken at: rescanned only when jobs were created, not at every step.
    live_jobs: Vec<String>,
    live_jobs_at: Option<u64>,
    /// The newest job's creation at the last look: later looks only check jobs from then on.
    live_jobs_since: Option<OffsetDateTime>,
    /// Each user's first connection (consent start), and the connection counts it was taken at.
    first_connections: Option<(
        (usize, usize),
        std::collections::HashMap<String, OffsetDateTime>,
    )>,
    /// Indexes of the deliveries still pending (so a long run does not rescan them all).
    pending: Vec<usize>,
    /// Subscriptions disabled after a message exhausted its retries.
    pub(crate) disabled: HashSet<String>,
}

impl NotifyState {
    /// Whether the pump has anything to do at all (else `advance` just moves the clock).
    fn idle(db: &Db) -> bool {
        !db.surface.notify.smart_cache
            && db.surface.webhooks.is_empty()
            && db.surface.notify.pending.is_empty()
    }
}

/// The second of the day at which the smart cache refreshes `connection_id`: stable across
/// runs, spread over the day.
pub(crate) fn daily_slot(connection_id: &str) -> time::Duration {
    let hash = connection_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    time::Duration::seconds(i64::try_from(hash % 86_400).unwrap_or(0))
}

/// The latest slot of `connection_id` at or before `now`.
fn slot_at_or_before(connection_id: &str, now: OffsetDateTime) -> OffsetDateTime {
    let midnight = now.replace_time(time::Time::MIDNIGHT);
    let slot = midnight + daily_slot(connection_id);
    if slot <= now {
        slot
    } else {
        slot - time::Duration::DAY
    }
}

fn is_loopback(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

/// Does what is due at `now`; returns the deliveries to attempt (index, url, headers, body).
fn process(db: &mut Db, base: &str, now: OffsetDateTime) -> Vec<(usize, Outgoing)> {
    run_smart_cache(db, now);
    queue_events(db, base, now);
    let mut due = Vec::new();
    let disabled = db.surface.notify.disabled.clone();
    let secrets: Vec<(String, String)> = db
        .surface
        .webhooks
        .iter()
        .map(|w| (w.id.clone(), w.secret.clone()))
        .collect();
    let notify = &mut db.surface.notify;
    notify
        .pending
        .retain(|i| notify.deliveries[*i].state == DeliveryState::Pending);
    for &i in &notify.pending {
        let d = &mut notify.deliveries[i];
        if d.next_attempt_at.is_none_or(|at| at > now) {
            continue;
        }
        let secret = secrets.iter().find(|(id, _)| *id == d.webhook_id);
        let (Some((_, secret)), false) = (secret, disabled.contains(&d.webhook_id)) else {
            // Deleted or disabled meanwhile.
            d.state = DeliveryState::Failed;
            d.next_attempt_at = None;
            continue;
        };
        let Ok(secret) = WebhookSecret::new(secret) else {
            continue;
        };
        let timestamp = now.unix_timestamp();
        let signature = webhooks::sign(&secret, &d.message_id, timestamp, &d.body);
        d.next_attempt_at = None;
        due.push((
            i,
            Outgoing {
                url: d.url.clone(),
                id: d.message_id.clone(),
                timestamp,
                signature,
                body: d.body.clone(),
            },
        ));
    }
    due
}

/// The smart cache's refreshes due in `(refreshed_until, now]`: at most one per connection
/// per pass (a clock that jumped days ahead refreshes once, now, not once per missed day).
fn run_smart_cache(db: &mut Db, now: OffsetDateTime) {
    if !db.surface.notify.smart_cache {
        return;
    }
    let since = db.surface.notify.refreshed_until.unwrap_or(now);
    db.surface.notify.refreshed_until = Some(now);
    // Nothing due before the cached next slot, unless connections came or went.
    let connections = db.connections.len();
    if let Some((count, next)) = db.surface.notify.next_slot {
        if count == connections && now < next {
            return;
        }
    }
    db.surface.notify.next_slot = db
        .connections
        .values()
        .map(|c| slot_at_or_before(&c.id, now) + time::Duration::DAY)
        .min()
        .map(|next| (connections, next));
    let mut due: Vec<(u64, String)> = db
        .connections
        .values()
        .filter(|c| {
            let slot = slot_at_or_before(&c.id, now);
            slot > since && slot > c.created
        })
        .map(|c| (c.seq, c.id.clone()))
        .collect();
    due.sort();
    for (_, cid) in due {
        let Some(c) = db.connections.get(&cid) else {
            continue;
        };
        let info = db.connection_info(c, now);
        let consent_active = super::consents::consent_of(db, &info.user_id, now)
            .is_some_and(|k| k.status == "active");
        if info.status == ConnectionStatus::Active
            && info.job_in_progress.is_none()
            && consent_active
            && crate::jobs::create_job(db, now, &cid, JobKind::BackgroundRefresh).is_some()
        {
            *db.stats.background_refreshes.entry(cid).or_default() += 1;
        }
    }
}

/// Turns the events of `(scanned_until, now]` into deliveries for the subscriptions covering
/// them.
fn queue_events(db: &mut Db, base: &str, now: OffsetDateTime) {
    if db.surface.webhooks.is_empty() {
        db.surface.notify.scanned_until = Some(now);
        return;
    }
    // A second of overlap: an event recorded at the very instant of the last scan (a request
    // between two pumps, with the clock standing still) is found now; `queued` drops repeats.
    let after = db
        .surface
        .notify
        .scanned_until
        .map(|t| t - time::Duration::SECOND)
        .unwrap_or_else(|| {
            db.surface
                .webhooks
                .iter()
                .map(|w| w.created)
                .min()
                .unwrap_or(now)
                - time::Duration::NANOSECOND
        });
    if after >= now {
        return;
    }
    refresh_live_jobs(db, after);
    refresh_first_connections(db);
    let live = std::mem::take(&mut db.surface.notify.live_jobs);
    let first = db.surface.notify.first_connections.take();
    let mut events = events_in(
        db,
        base,
        after,
        now,
        Some(&live),
        first.as_ref().map(|f| &f.1),
    );
    db.surface.notify.live_jobs = live;
    db.surface.notify.first_connections = first;
    events.reverse(); // oldest first
    let mut new = Vec::new();
    for e in &events {
        let type_id = e.type_id();
        for w in &db.surface.webhooks {
            let covered = e.at >= w.created
                && (w.subscribed_events.is_empty() || w.subscribed_events.contains(&type_id))
                && !db.surface.notify.disabled.contains(&w.id)
                && is_loopback(&w.url);
            if !covered
                || db
                    .surface
                    .notify
                    .queued
                    .contains(&(w.id.clone(), e.id.clone()))
            {
                continue;
            }
            let body = json!({
                "eventTypeId": type_id,
                "eventId": e.id,
                "links": { "event": format!("{base}/events/{}", e.id), "eventEntity": e.data_ref },
            });
            new.push(WebhookDelivery {
                message_id: message_id(&w.id, &e.id),
                webhook_id: w.id.clone(),
                event_id: e.id.clone(),
                event_type: type_id.clone(),
                url: w.url.clone(),
                attempts: Vec::new(),
                state: DeliveryState::Pending,
                next_attempt_at: Some(now),
                body: serde_json::to_vec(&body).unwrap_or_default(),
            });
        }
    }
    for d in new {
        db.surface
            .notify
            .queued
            .insert((d.webhook_id.clone(), d.event_id.clone()));
        db.surface
            .notify
            .pending
            .push(db.surface.notify.deliveries.len());
        db.surface.notify.deliveries.push(d);
    }
    db.surface.notify.scanned_until = Some(now);
}

/// Keeps `live_jobs` = the jobs that end after `after`: a full scan only when jobs were created
/// since the last one, else just dropping those that have ended.
fn refresh_live_jobs(db: &mut Db, after: OffsetDateTime) {
    let created = db.stats.jobs_created;
    if db.surface.notify.live_jobs_at != Some(created) {
        // New jobs were created at or after the last look (jobs are created at `now`).
        let since = db.surface.notify.live_jobs_since;
        let mut live: Vec<String> = std::mem::take(&mut db.surface.notify.live_jobs);
        let known: HashSet<&str> = live.iter().map(String::as_str).collect();
        let new: Vec<String> = db
            .jobs
            .values()
            .filter(|j| since.is_none_or(|s| j.created >= s))
            .filter(|j| !known.contains(j.id.as_str()) && j.finished_at() > after)
            .map(|j| j.id.clone())
            .collect();
        live.extend(new);
        let jobs = &db.jobs;
        live.retain(|id| jobs.get(id).is_some_and(|j| j.finished_at() > after));
        db.surface.notify.live_jobs = live;
        db.surface.notify.live_jobs_at = Some(created);
        db.surface.notify.live_jobs_since = db.jobs.values().map(|j| j.created).max();
    } else {
        let jobs = &db.jobs;
        db.surface
            .notify
            .live_jobs
            .retain(|id| jobs.get(id).is_some_and(|j| j.finished_at() > after));
    }
}

/// Keeps `first_connections` current (recomputed only when connections came or went).
fn refresh_first_connections(db: &mut Db) {
    let counts = (db.connections.len(), db.retained.len());
    if db
        .surface
        .notify
        .first_connections
        .as_ref()
        .is_none_or(|(at, _)| *at != counts)
    {
        db.surface.notify.first_connections =
            Some((counts, super::consents::first_connections(db)));
    }
}

/// The id of the message carrying `event_id` to `webhook_id` (the messages API uses it too).
pub(crate) fn message_id(webhook_id: &str, event_id: &str) -> String {
    stable_id(&format!("message:{webhook_id}:{event_id}"))
}

/// Records an attempt's answer and schedules the next one (or gives up and disables).
fn record_attempt(db: &mut Db, index: usize, now: OffsetDateTime, status: Option<u16>) {
    let delivered = status.is_some_and(|s| (200..300).contains(&s));
    db.stats.webhook_attempts += 1;
    if delivered {
        db.stats.webhooks_delivered += 1;
    }
    let Some(d) = db.surface.notify.deliveries.get_mut(index) else {
        return;
    };
    d.attempts.push(DeliveryAttempt {
        at: now,
        status,
        delivered,
    });
    if delivered {
        d.state = DeliveryState::Delivered;
        d.next_attempt_at = None;
        return;
    }
    match RETRY_DELAYS.get(d.attempts.len() - 1) {
        Some(wait) => {
            d.next_attempt_at =
                Some(now + time::Duration::try_from(*wait).unwrap_or(time::Duration::HOUR));
        }
        None => {
            d.state = DeliveryState::Failed;
            d.next_attempt_at = None;
            let webhook = d.webhook_id.clone();
            db.surface.notify.disabled.insert(webhook);
        }
    }
}

/// The next instant after `now` at which something is due, if any.
fn next_due(db: &Db, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let mut next: Option<OffsetDateTime> = None;
    let mut consider = |t: OffsetDateTime| {
        if t > now && next.is_none_or(|n| t < n) {
            next = Some(t);
        }
    };
    for &i in &db.surface.notify.pending {
        let d = &db.surface.notify.deliveries[i];
        if let Some(at) = d
            .next_attempt_at
            .filter(|_| d.state == DeliveryState::Pending)
        {
            consider(at);
        }
    }
    if db.surface.notify.smart_cache {
        match db.surface.notify.next_slot {
            Some((count, next)) if count == db.connections.len() => consider(next),
            _ => {
                for c in db.connections.values() {
                    consider(slot_at_or_before(&c.id, now) + time::Duration::DAY);
                }
            }
        }
    }
    if !db.surface.webhooks.is_empty() {
        // The end of each running job's data steps: where account / transaction events appear.
        let live = &db.surface.notify.live_jobs;
        let live_current = db.surface.notify.live_jobs_at == Some(db.stats.jobs_created);
        let jobs: Box<dyn Iterator<Item = &crate::state::Job>> = if live_current {
            Box::new(live.iter().filter_map(|id| db.jobs.get(id)))
        } else {
            Box::new(db.jobs.values())
        };
        for job in jobs.filter(|j| j.finished_at() > now) {
            for (step, (_, end)) in job.steps.iter().zip(job.windows()) {
                if step.title == ACCOUNTS || step.title == TRANSACTIONS {
                    consider(end);
                }
            }
        }
        let computed;
        let first = match &db.surface.notify.first_connections {
            Some(((live, retained), first))
                if *live == db.connections.len() && *retained == db.retained.len() =>
            {
                first
            }
            _ => {
                computed = super::consents::first_connections(db);
                &computed
            }
        };
        for created in first.values() {
            let expires = *created + super::consents::CONSENT_TTL;
            consider(expires - super::consents::CONSENT_WARNING);
            consider(expires);
        }
    }
    next
}

struct Outgoing {
    url: String,
    id: String,
    timestamp: i64,
    signature: String,
    body: Vec<u8>,
}

fn http_client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

async fn send(out: Outgoing) -> Option<u16> {
    let response = http_client()
        .post(&out.url)
        .header("content-type", "application/json")
        .header(webhooks::HEADER_ID, &out.id)
        .header(webhooks::HEADER_TIMESTAMP, out.timestamp.to_string())
        .header(webhooks::HEADER_SIGNATURE, &out.signature)
        .body(out.body)
        .send()
        .await
        .ok()?;
    Some(response.status().as_u16())
}

/// Runs everything due up to `target`, moving the clock from one due instant to the next, and
/// leaves the clock at `target` (or where it is, if that is later).
pub(crate) async fn run_until(state: &AppState, target: OffsetDateTime) {
    loop {
        let now = state.now();
        let outgoing = {
            let mut db = state.db();
            if NotifyState::idle(&db) {
                Vec::new()
            } else {
                process(&mut db, state.base(), now)
            }
        };
        for (index, out) in outgoing {
            let status = send(out).await;
            record_attempt(&mut state.db(), index, now, status);
        }
        if now >= target {
            return;
        }
        let next = {
            let db = state.db();
            if NotifyState::idle(&db) {
                None
            } else {
                next_due(&db, now)
            }
        };
        let step_to = next.map_or(target, |n| n.min(target));
        let by = step_to - now;
        state
            .inner
            .clock
            .advance(Duration::try_from(by).unwrap_or(Duration::ZERO));
    }
}

/// Turns the smart cache on or off (from now on).
pub(crate) fn set_smart_cache(state: &AppState, on: bool) {
    let now = state.now();
    let mut db = state.db();
    db.surface.notify.smart_cache = on;
    db.surface.notify.refreshed_until = Some(now);
}

/// Every delivery so far, oldest first.
pub(crate) fn deliveries(state: &AppState) -> Vec<WebhookDelivery> {
    state.db().surface.notify.deliveries.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_stable_spread_and_within_a_day() {
        let slots: HashSet<i64> = (0..200)
            .map(|i| daily_slot(&format!("conn-{i}")).whole_seconds())
            .collect();
        assert!(slots.len() > 190, "spread: {}", slots.len());
        assert!(slots.iter().all(|s| (0..86_400).contains(s)));
        assert_eq!(daily_slot("abc"), daily_slot("abc"));
        let now = time::macros::datetime!(2026-01-05 10:00 UTC);
        let slot = slot_at_or_before("abc", now);
        assert!(slot <= now && now - slot < time::Duration::DAY);
    }

    #[test]
    fn only_loopback_urls_are_delivered() {
        assert!(is_loopback("http://127.0.0.1:8080/hooks"));
        assert!(is_loopback("http://localhost/x"));
        assert!(!is_loopback("https://127.0.0.1/x"));
        assert!(!is_loopback("http://example.com/127.0.0.1"));
        assert!(!is_loopback("http://127.0.0.1.evil.com/"));
    }
}
