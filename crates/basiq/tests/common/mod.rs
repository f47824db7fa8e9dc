//! Helpers shared by the integration tests (each test binary uses a subset).
#![allow(dead_code)]

pub mod hostile;

use basiq::models::NewUser;
use basiq_mock::{MockServer, Stats};

/// A well-formed API key the emulator does not know.
pub const WRONG_KEY: &str = "d3Jvbmc6a2V5";

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

/// An async client builder aimed at the emulator (its URL and API key).
pub fn async_builder(server: &MockServer) -> basiq::ClientBuilder {
    basiq::Client::builder()
        .api_key(server.api_key())
        .base_url(server.url())
}

/// A blocking client builder aimed at the emulator (its URL and API key).
pub fn blocking_builder(server: &MockServer) -> basiq::blocking::ClientBuilder {
    basiq::blocking::Client::builder()
        .api_key(server.api_key())
        .base_url(server.url())
}

/// An async client of the emulator with the default settings.
pub fn async_client(server: &MockServer) -> basiq::Client {
    async_builder(server).build().unwrap()
}

/// A blocking client of the emulator with the default settings.
pub fn blocking_client(server: &MockServer) -> basiq::blocking::Client {
    blocking_builder(server).build().unwrap()
}

use basiq::clock::ManualClock;
use basiq::error::Error;
use basiq::operation::{self, Authentication, Operation};
use basiq::transport::{HttpRequest, HttpResponse};
use basiq::ConsentLink;

/// Monday 2026-01-05 10:00 UTC: every flow test starts here, on a virtual clock shared by the
/// emulator and the client.
pub fn start_time() -> time::OffsetDateTime {
    time::macros::datetime!(2026-01-05 10:00 UTC)
}

/// The emulator on a virtual clock starting at [`start_time`], and the clock.
pub fn virtual_time_server() -> (MockServer, ManualClock) {
    let clock = ManualClock::new(start_time());
    let server = MockServer::builder().clock(clock.clone()).start();
    (server, clock)
}

/// An async client builder aimed at the emulator, its Consent UI stand-in and `clock`, whose
/// sleep advances `clock` (nothing really sleeps).
pub fn async_on_virtual_time(server: &MockServer, clock: &ManualClock) -> basiq::ClientBuilder {
    let tick = clock.clone();
    async_builder(server)
        .consent_base_url(consent_home(server))
        .clock(clock.clone())
        .sleep(move |d| {
            tick.advance(d);
            Box::pin(async {})
        })
}

/// A blocking client builder aimed at the emulator, its Consent UI stand-in and `clock`, whose
/// sleep advances `clock` (nothing really sleeps).
pub fn blocking_on_virtual_time(
    server: &MockServer,
    clock: &ManualClock,
) -> basiq::blocking::ClientBuilder {
    let tick = clock.clone();
    blocking_builder(server)
        .consent_base_url(consent_home(server))
        .clock(clock.clone())
        .sleep(move |d| tick.advance(d))
}

/// The emulator's Consent UI stand-in.
pub fn consent_home(server: &MockServer) -> String {
    format!("{}/consent/home", server.url())
}

/// `POST /consent/connect.json` with what a ConsentLink carries (token, action, state,
/// institutionId, connectionId) plus the user's login: what the user's browser does in the
/// Consent UI. Authenticated by the link's CLIENT_ACCESS token only, as at Basiq.
#[derive(Debug, Clone)]
pub struct SubmitConsent {
    body: serde_json::Map<String, serde_json::Value>,
}

impl SubmitConsent {
    pub fn new(link: &ConsentLink, login: Option<(&str, &str)>) -> Self {
        let mut body = serde_json::Map::new();
        for (k, v) in link.expose_url().query_pairs() {
            body.insert(k.into_owned(), serde_json::Value::String(v.into_owned()));
        }
        if let Some((login_id, password)) = login {
            body.insert("loginId".into(), login_id.into());
            body.insert("password".into(), password.into());
        }
        Self { body }
    }
}

impl Operation for SubmitConsent {
    type Output = String;

    fn request(&self, base: &operation::ApiBase) -> Result<HttpRequest, Error> {
        let url = operation::endpoint(base, &["consent", "connect.json"])?;
        let method = "POST"
            .parse()
            .map_err(|_| Error::config("POST is a method"))?;
        operation::json_request(method, url, &self.body)
    }

    fn parse(&self, response: HttpResponse) -> Result<String, Error> {
        let value: serde_json::Value = operation::parse_json(&response, &[200, 201])?;
        Ok(value["jobIds"][0].as_str().unwrap_or_default().to_owned())
    }

    fn is_idempotent(&self) -> bool {
        false
    }

    fn authentication(&self) -> Authentication {
        Authentication::None
    }
}

/// The emulator's counter for a route template, e.g. `"POST /users/{user_id}/connections/{connection_id}/refresh"`.
pub fn route_count(server: &MockServer, route: &str) -> u64 {
    server.stats().requests.get(route).copied().unwrap_or(0)
}

pub const REFRESH_ROUTE: &str = "POST /users/{user_id}/connections/{connection_id}/refresh";
