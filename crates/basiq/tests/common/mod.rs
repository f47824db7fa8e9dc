//! Helpers shared by the integration tests (each test binary uses a subset).
#![allow(dead_code)]

use basiq::models::NewUser;
use basiq_mock::{MockServer, Stats};

/// The ids no resource method may ever send.
pub const UNSAFE_IDS: [&str; 4] = ["../x", "a/b", "a?b", ""];

pub fn new_user(email: &str) -> NewUser {
    NewUser {
        email: Some(email.to_string()),
        first_name: Some("Gavin".to_string()),
        ..NewUser::default()
    }
}

/// Every request the emulator counted, `/token` included.
pub fn total_requests(stats: &Stats) -> u64 {
    stats.requests.values().sum::<u64>()
}

pub fn token_requests(server: &MockServer) -> u64 {
    server.stats().token_requests
}
