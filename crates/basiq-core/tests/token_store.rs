//! Property tests of a fleet sharing one server token: two executor cores (two "processes") on
//! one clock and one `MemoryTokenStore`, driven by arbitrary sequences of clock advances,
//! requests, rejections (Basiq revoking every token issued so far) and store outages, against a
//! simulated `/token`.
//!
//! Invariants: no token is ever sent past its expiry; after a rejection the re-authenticated
//! request never carries the rejected token again; and while the store works, the fleet fetches
//! at most one token per lifetime (minus the refresh-ahead margin) plus one per revocation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use basiq_core::clock::{Clock, ManualClock};
use basiq_core::engine::auth::{parse_base_url, ExecutorConfig};
use basiq_core::engine::executor::{AuthStep, ExecutorCore};
use basiq_core::error::Error;
use basiq_core::policy::token::{
    MemoryTokenStore, StoreError, StoredToken, TokenLease, TokenPolicy, TokenResponse, TokenStore,
};
use basiq_core::secret::ApiKey;
use proptest::prelude::*;
use time::OffsetDateTime;

const LIFETIME_S: u64 = 3600;

/// A shared memory store that can be switched off.
#[derive(Debug, Default)]
struct Flaky {
    inner: MemoryTokenStore,
    down: AtomicBool,
}

impl TokenStore for Flaky {
    fn load(&self) -> Result<Option<StoredToken>, StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::new("down"));
        }
        self.inner.load()
    }

    fn save(&self, token: &StoredToken) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::new("down"));
        }
        self.inner.save(token)
    }
}

/// What Basiq knows about the tokens it issued.
#[derive(Debug, Default)]
struct Server {
    issued: Vec<(String, OffsetDateTime, bool)>,
}

impl Server {
    fn issue(&mut self, now: OffsetDateTime) -> TokenResponse {
        let value = format!("token-{}", self.issued.len());
        self.issued.push((
            value.clone(),
            now + time::Duration::seconds(LIFETIME_S as i64),
            false,
        ));
        serde_json::from_value(serde_json::json!({
            "access_token": value, "token_type": "Bearer", "expires_in": LIFETIME_S
        }))
        .expect("valid token response")
    }

    /// (expires_at, revoked) of a token this server issued.
    fn lookup(&self, lease: &TokenLease) -> Option<(OffsetDateTime, bool)> {
        self.issued
            .iter()
            .find(|(v, _, _)| v == lease.token.expose_secret())
            .map(|(_, at, revoked)| (*at, *revoked))
    }

    fn revoke_all(&mut self) {
        for token in &mut self.issued {
            token.2 = true;
        }
    }
}

fn rejected() -> Error {
    Error::from_response(
        http::StatusCode::UNAUTHORIZED,
        br#"{"type":"list","data":[{"type":"error","code":"invalid-authorization-token","title":"Invalid token"}]}"#,
        None,
    )
}

#[derive(Debug, Clone)]
enum Event {
    /// Move the shared clock forward by this many seconds.
    Advance(u64),
    /// Process 0 or 1 sends a request.
    Request(usize),
    /// Basiq revokes every token issued so far.
    Revoke,
    /// The store goes down / comes back.
    StoreDown(bool),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (0u64..2 * LIFETIME_S).prop_map(Event::Advance),
        2 => (0u64..120).prop_map(Event::Advance),
        8 => (0usize..2).prop_map(Event::Request),
        1 => Just(Event::Revoke),
        1 => any::<bool>().prop_map(Event::StoreDown),
    ]
}

fn core(clock: &ManualClock, store: Arc<dyn TokenStore>, jitter: fn() -> f64) -> ExecutorCore {
    let config = ExecutorConfig::new(
        parse_base_url("http://127.0.0.1:1").expect("url"),
        ApiKey::new("k"),
    )
    .with_clock(Arc::new(clock.clone()))
    .with_token_store(store);
    ExecutorCore::new(config, jitter).expect("valid config")
}

/// What a driver does for a lease: cache, then (inside the gate) cache again and the store, then
/// fetch.
fn lease(
    core: &ExecutorCore,
    server: &mut Server,
    clock: &ManualClock,
    fetches: &mut u64,
) -> TokenLease {
    if let Ok(lease) = core.lease() {
        return lease;
    }
    if let Ok(lease) = core.lease_in_gate() {
        return lease;
    }
    let now = clock.now();
    *fetches += 1;
    let response = server.issue(now);
    core.token_fetched(Ok((response, now)))
        .expect("a successful fetch yields a lease")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_fleet_never_uses_an_expired_or_rejected_token(
        events in proptest::collection::vec(event(), 1..120)
    ) {
        let start = time::macros::datetime!(2026-01-01 00:00 UTC);
        let clock = ManualClock::new(start);
        let store = Arc::new(Flaky::default());
        let fleet = [
            core(&clock, store.clone(), || 0.0),
            core(&clock, store.clone(), || 1.0),
        ];
        let mut server = Server::default();
        let mut fetches = 0u64;
        let mut revokes = 0u64;
        let mut store_ever_down = false;

        for event in events {
            match event {
                Event::Advance(secs) => clock.advance(Duration::from_secs(secs)),
                Event::Revoke => {
                    server.revoke_all();
                    revokes += 1;
                }
                Event::StoreDown(down) => {
                    store.down.store(down, Ordering::SeqCst);
                    store_ever_down |= down;
                }
                Event::Request(i) => {
                    let core = &fleet[i];
                    let now = clock.now();
                    let first = lease(core, &mut server, &clock, &mut fetches);
                    let (expires_at, revoked) = server.lookup(&first).expect("issued by the server");
                    prop_assert!(now < first.expires_at, "client sent a token past its expiry");
                    prop_assert!(now < expires_at, "server saw a token past its expiry");
                    if revoked {
                        prop_assert!(matches!(
                            core.answered::<()>(&first, Err(rejected())),
                            AuthStep::Reauthenticate
                        ));
                        let second = lease(core, &mut server, &clock, &mut fetches);
                        let (expires_at, _) = server.lookup(&second).expect("issued by the server");
                        prop_assert!(now < second.expires_at);
                        prop_assert!(now < expires_at);
                        prop_assert_ne!(
                            second.token.expose_secret(),
                            first.token.expose_secret(),
                            "the rejected token was used again"
                        );
                    }
                }
            }
        }

        if !store_ever_down {
            let elapsed = (clock.now() - start).whole_seconds().max(0) as u64;
            let margin = TokenPolicy::default().stored_margin().as_secs();
            let bound = 1 + elapsed / (LIFETIME_S - margin) + revokes;
            prop_assert!(
                fetches <= bound,
                "{fetches} fetches over {elapsed} s with {revokes} revocations (bound {bound})"
            );
        }
    }
}
