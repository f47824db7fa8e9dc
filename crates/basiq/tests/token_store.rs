//! A fleet sharing one server token through a `TokenStore`: separately built clients (async and
//! blocking, standing in for separate processes) against the emulator.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use basiq::token::{StoreError, StoredToken, TokenStore};
use common::{
    async_builder, async_on_virtual_time, blocking_builder, blocking_on_virtual_time, new_user,
    token_requests, virtual_time_server,
};

/// A store over one slot, like a Redis key shared by the fleet.
#[derive(Debug, Default)]
struct SharedSlot {
    slot: Mutex<Option<StoredToken>>,
    loads: Mutex<u32>,
}

impl TokenStore for SharedSlot {
    fn load(&self) -> Result<Option<StoredToken>, StoreError> {
        *self.loads.lock().map_err(|_| StoreError::new("poisoned"))? += 1;
        Ok(self
            .slot
            .lock()
            .map_err(|_| StoreError::new("poisoned"))?
            .clone())
    }

    fn save(&self, token: &StoredToken) -> Result<(), StoreError> {
        *self.slot.lock().map_err(|_| StoreError::new("poisoned"))? = Some(token.clone());
        Ok(())
    }
}

/// A store that is down.
#[derive(Debug)]
struct Down;

impl TokenStore for Down {
    fn load(&self) -> Result<Option<StoredToken>, StoreError> {
        Err(StoreError::new("connection refused"))
    }

    fn save(&self, _: &StoredToken) -> Result<(), StoreError> {
        Err(StoreError::new("connection refused"))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn an_async_and_a_blocking_client_sharing_a_store_fetch_one_token() {
    let server = basiq_mock::MockServer::start();
    let store = Arc::new(SharedSlot::default());
    let shared: Arc<dyn TokenStore> = store.clone();
    let rt = runtime();
    let fleet_async = async_builder(&server)
        .token_store(shared.clone())
        .build()
        .unwrap();
    let fleet_blocking = blocking_builder(&server)
        .token_store(shared)
        .build()
        .unwrap();

    let user = rt
        .block_on(fleet_async.users().create(new_user("fleet@example.com")))
        .unwrap();
    assert_eq!(fleet_blocking.users().get(&user.id).unwrap().id, user.id);
    rt.block_on(fleet_async.users().get(&user.id)).unwrap();
    fleet_blocking.jobs().list_for_user(&user.id).unwrap();
    assert_eq!(token_requests(&server), 1);
    // Each client consulted the store once, when its own cache was empty.
    assert_eq!(*store.loads.lock().unwrap(), 2);
    let stored = store.slot.lock().unwrap().clone().unwrap();
    assert!(!format!("{stored:?}").contains(stored.token.expose_secret()));

    // Without a shared store, each client authenticates on its own.
    let alone = blocking_builder(&server).build().unwrap();
    alone.users().get(&user.id).unwrap();
    assert_eq!(token_requests(&server), 2);
}

#[test]
fn a_store_that_is_down_never_fails_a_request() {
    let server = basiq_mock::MockServer::start();
    let client = blocking_builder(&server)
        .token_store(Arc::new(Down))
        .build()
        .unwrap();
    let user = client.users().create(new_user("down@example.com")).unwrap();
    client.users().get(&user.id).unwrap();
    assert_eq!(token_requests(&server), 1);
}

/// Over several token lifetimes of virtual time, a fleet of two clients (one async, one
/// blocking) on a shared clock and store asks for at most `lifetimes + 1` tokens — one client
/// alone would need that many, two without a store twice as many.
#[test]
fn a_fleet_authenticates_once_per_lifetime_over_virtual_time() {
    let (server, clock) = virtual_time_server();
    let store: Arc<dyn TokenStore> = Arc::new(SharedSlot::default());
    let rt = runtime();
    let a = async_on_virtual_time(&server, &clock)
        .token_store(store.clone())
        .build()
        .unwrap();
    let b = blocking_on_virtual_time(&server, &clock)
        .token_store(store)
        .build()
        .unwrap();
    let user = b.users().create(new_user("virtual@example.com")).unwrap();

    let lifetimes = 5u32;
    let ttl = Duration::from_secs(3600);
    // A step that lands inside the refresh-ahead window now and then, so both clients also
    // refresh ahead of expiry, not only after it.
    let step = Duration::from_secs(47);
    let mut t = Duration::ZERO;
    while t < ttl * lifetimes {
        clock.advance(step);
        t += step;
        rt.block_on(a.users().get(&user.id)).unwrap();
        b.users().get(&user.id).unwrap();
    }
    let tokens = token_requests(&server);
    assert!(
        tokens <= u64::from(lifetimes) + 1,
        "{tokens} token requests over {lifetimes} lifetimes"
    );
    assert!(
        tokens >= u64::from(lifetimes),
        "the token must have been renewed: {tokens}"
    );
}

/// A token Basiq rejects (the emulator's clock ran past its expiry while the clients' did not)
/// is not taken back from the store: the first client to be refused fetches a new one and saves
/// it; the second is refused too and picks up the new one from the store.
#[test]
fn a_rejected_stored_token_is_replaced_once_for_the_fleet() {
    let server_clock = basiq::clock::ManualClock::starting_now();
    let client_clock = basiq::clock::ManualClock::new(basiq::clock::Clock::now(&server_clock));
    let server = basiq_mock::MockServer::builder()
        .clock(server_clock)
        .start();
    let store: Arc<dyn TokenStore> = Arc::new(SharedSlot::default());
    let a = blocking_builder(&server)
        .clock(client_clock.clone())
        .token_store(store.clone())
        .build()
        .unwrap();
    let b = blocking_builder(&server)
        .clock(client_clock)
        .token_store(store)
        .build()
        .unwrap();
    let user = a.users().create(new_user("rejected@example.com")).unwrap();
    b.users().get(&user.id).unwrap();
    assert_eq!(token_requests(&server), 1);

    server.advance(Duration::from_secs(3601));
    a.users().get(&user.id).unwrap();
    assert_eq!(token_requests(&server), 2);
    b.users().get(&user.id).unwrap();
    assert_eq!(
        token_requests(&server),
        2,
        "b took a's new token from the store"
    );
}
