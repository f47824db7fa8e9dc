//! What the SDK costs on top of a raw HTTP client, measured in the same run against the same
//! emulator on loopback. Run with `cargo bench -p basiq --bench overhead`.
//!
//! Each scenario times `GET /users/{id}` + JSON decoding into `basiq::models::User`:
//! - raw reqwest / raw ureq with a bearer token fetched once by hand (the floor);
//! - the SDK clients (token cache lookup, id validation, operation build, error mapping).
//!
//! Rounds alternate raw and SDK so drift on a busy machine hits both alike; the report prints
//! the median per call and the SDK/raw ratio. No assertion: numbers are for reading.

use std::time::{Duration, Instant};

use basiq::models::{NewUser, User};
use basiq_mock::MockServer;

const ROUNDS: usize = 15;
const CALLS_PER_ROUND: usize = 200;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn fetch_token(base: &str, key: &str) -> String {
    let agent = ureq::Agent::new();
    let response = agent
        .post(&format!("{base}/token"))
        .set("Authorization", &format!("Basic {key}"))
        .set("basiq-version", "3.0")
        .set("Content-Type", "application/x-www-form-urlencoded")
        .send_string("scope=SERVER_ACCESS")
        .expect("token request");
    let body: serde_json::Value = response.into_json().expect("token json");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

fn report(name: &str, raw: Duration, sdk: Duration) {
    let per = |d: Duration| d / CALLS_PER_ROUND as u32;
    println!(
        "{name:<28} raw {:>10.1?}/call   sdk {:>10.1?}/call   sdk/raw {:.3}",
        per(raw),
        per(sdk),
        sdk.as_secs_f64() / raw.as_secs_f64()
    );
}

fn bench_async(server: &MockServer, user_id: &str, token: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = basiq::Client::builder()
            .api_key(server.api_key())
            .base_url(server.url())
            .build()
            .expect("client");
        let raw = reqwest::Client::new();
        let url = format!("{}/users/{user_id}", server.url());
        // Warm both paths (connection pools, the SDK's token cache).
        client.users().get(user_id).await.expect("warm sdk");
        raw.get(&url)
            .bearer_auth(token)
            .send()
            .await
            .expect("warm raw");

        let (mut raw_samples, mut sdk_samples) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let start = Instant::now();
            for _ in 0..CALLS_PER_ROUND {
                let bytes = raw
                    .get(&url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .expect("raw get")
                    .bytes()
                    .await
                    .expect("raw body");
                let user: User = serde_json::from_slice(&bytes).expect("raw decode");
                std::hint::black_box(user);
            }
            raw_samples.push(start.elapsed());

            let start = Instant::now();
            for _ in 0..CALLS_PER_ROUND {
                let user = client.users().get(user_id).await.expect("sdk get");
                std::hint::black_box(user);
            }
            sdk_samples.push(start.elapsed());
        }
        report(
            "async get user (sequential)",
            median(raw_samples),
            median(sdk_samples),
        );
    });
}

fn bench_blocking(server: &MockServer, user_id: &str, token: &str) {
    let client = basiq::blocking::Client::builder()
        .api_key(server.api_key())
        .base_url(server.url())
        .build()
        .expect("client");
    let agent = ureq::Agent::new();
    let url = format!("{}/users/{user_id}", server.url());
    let auth = format!("Bearer {token}");
    client.users().get(user_id).expect("warm sdk");

    let (mut raw_samples, mut sdk_samples) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..CALLS_PER_ROUND {
            let response = agent
                .get(&url)
                .set("Authorization", &auth)
                .call()
                .expect("raw get");
            let user: User = response.into_json().expect("raw decode");
            std::hint::black_box(user);
        }
        raw_samples.push(start.elapsed());

        let start = Instant::now();
        for _ in 0..CALLS_PER_ROUND {
            let user = client.users().get(user_id).expect("sdk get");
            std::hint::black_box(user);
        }
        sdk_samples.push(start.elapsed());
    }
    report(
        "blocking get user (seq.)",
        median(raw_samples),
        median(sdk_samples),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful either: both
    // just run the measurement, which takes a few seconds.
    let server = MockServer::start();
    let setup = basiq::blocking::Client::builder()
        .api_key(server.api_key())
        .base_url(server.url())
        .build()
        .expect("client");
    let user = setup
        .users()
        .create(NewUser {
            email: Some("bench@example.com".into()),
            ..NewUser::default()
        })
        .expect("create user");
    let token = fetch_token(&server.url(), &server.api_key());
    println!(
        "basiq-rs overhead vs raw clients, {ROUNDS} rounds x {CALLS_PER_ROUND} calls, median round"
    );
    bench_async(&server, user.id.as_str(), &token);
    bench_blocking(&server, user.id.as_str(), &token);
}
