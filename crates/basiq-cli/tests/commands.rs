//! Every command, run as the built binary against the emulator: human output (colours off) and
//! `--json` snapshotted, exit codes asserted.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn quickstart_runs_on_the_embedded_emulator() {
    let human = run(
        {
            let mut c = std::process::Command::new(BIN);
            c.arg("quickstart")
                .env("NO_COLOR", "1")
                .env_remove("BASIQ_API_KEY");
            c
        },
        None,
    );
    assert_eq!(human.code, 0, "{human:?}");
    assert!(
        human.stdout.contains("Token requests: 3"),
        "{}",
        human.stdout
    );
    snap("http://127.0.0.1:0", "quickstart", &human);

    let json = run(
        {
            let mut c = std::process::Command::new(BIN);
            c.args(["quickstart", "--json"]).env_remove("BASIQ_API_KEY");
            c
        },
        None,
    );
    assert_eq!(json.code, 0, "{json:?}");
    let lines = json.json_lines();
    assert_eq!(lines.last().unwrap()["tokenRequests"], 3);
    snap("http://127.0.0.1:0", "quickstart_json", &json);
}

#[test]
fn users_create_get_delete() {
    let emu = Emu::start();
    let created = emu.run(&[
        "users",
        "create",
        "--email",
        "gavin@hooli.com",
        "--first-name",
        "Gavin",
    ]);
    assert_eq!(created.code, 0, "{created:?}");
    snap(&emu.server.url(), "users_create", &created);
    let json = emu.run(&["--json", "users", "create", "--mobile", "+61410888666"]);
    assert_eq!(json.code, 0, "{json:?}");
    let user = json.json()["id"].as_str().unwrap().to_owned();
    snap(&emu.server.url(), "users_create_json", &json);

    let got = emu.run(&["users", "get", &user]);
    assert_eq!(got.code, 0);
    snap(&emu.server.url(), "users_get", &got);
    let got = emu.run(&["users", "get", &user, "--json"]);
    assert_eq!(got.json()["mobile"], "+61410888666");

    let deleted = emu.run(&["users", "delete", &user]);
    assert_eq!(deleted.code, 0);
    snap(&emu.server.url(), "users_delete", &deleted);

    // Errors carry Basiq's code, title, detail and the ids; exit 1.
    let missing = emu.run(&["users", "get", &user]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("resource-not-found"),
        "{}",
        missing.stderr
    );
    assert!(
        missing.stderr.contains(&format!("userId={user}")),
        "{}",
        missing.stderr
    );
    snap(&emu.server.url(), "users_get_missing", &missing);
    let missing = emu.run(&["users", "get", &user, "--json"]);
    assert_eq!(missing.code, 1);
    snap(&emu.server.url(), "users_get_missing_json", &missing);

    // An unsafe id never reaches the emulator.
    let before = emu.server.stats().requests.values().sum::<u64>();
    let bad = emu.run(&["users", "get", "../admin"]);
    assert_eq!(bad.code, 1);
    assert_eq!(emu.server.stats().requests.values().sum::<u64>(), before);
}

#[test]
fn connections_list_get_purge() {
    let emu = Emu::start();
    let user = emu.user("richard@piedpiper.com");
    let empty = emu.run(&["connections", "list", &user]);
    assert_eq!(empty.code, 0);
    snap(&emu.server.url(), "connections_list_empty", &empty);

    let job = emu.connect(&user, "AU00000", "richard", "tabsnotspaces");
    emu.advance(Duration::from_secs(13));
    let conn = emu.connection_of(&job);
    let list = emu.run(&["connections", "list", &user]);
    assert_eq!(list.code, 0);
    snap(&emu.server.url(), "connections_list", &list);
    let list = emu.run(&["--json", "connections", "list", &user]);
    assert_eq!(list.json()["data"][0]["id"], conn.as_str());

    let got = emu.run(&["connections", "get", &user, &conn, "--json"]);
    assert_eq!(got.code, 0);
    assert_eq!(got.json()["status"], "active");
    let purged = emu.run(&["connections", "purge", &user, &conn]);
    assert_eq!(purged.code, 0, "{purged:?}");
    snap(&emu.server.url(), "connections_purge", &purged);
    assert_eq!(
        emu.server.stats().requests["POST /users/{user_id}/connections/{connection_id}/purge"],
        1
    );
}

#[test]
fn connectors_list_and_outages() {
    let emu = Emu::start();
    let all = emu.run(&["connectors", "list"]);
    assert_eq!(all.code, 0);
    snap(&emu.server.url(), "connectors_list", &all);
    let none = emu.run(&["connectors", "list", "--outages"]);
    assert_eq!(none.code, 0);
    assert!(none.stdout.contains("No connector reports an outage"));

    emu.server
        .set_connector_status("AU00000", "major-outage")
        .unwrap();
    let outages = emu.run(&["connectors", "list", "--outages"]);
    assert_eq!(outages.code, 0);
    snap(&emu.server.url(), "connectors_outages", &outages);
    let outages = emu.run(&["connectors", "list", "--outages", "--json"]);
    snap(&emu.server.url(), "connectors_outages_json", &outages);
    let data = outages.json()["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["id"], "AU00000");
}

#[test]
fn jobs_wait_follows_steps_to_success() {
    let emu = Emu::start();
    let user = emu.user("jared@piedpiper.com");
    let job = emu.connect(&user, "AU00000", "jared", "django");
    let waited = emu.run(&["jobs", "wait", &job, "--kind", "create"]);
    assert_eq!(waited.code, 0, "{waited:?}");
    // Each step's changes were shown while the job ran (stderr, off a terminal).
    assert!(waited.stderr.contains("verify-credentials: in-progress"));
    assert!(waited.stderr.contains("retrieve-transactions: success"));
    snap(&emu.server.url(), "jobs_wait_success", &waited);

    let job = emu.connect(&user, "AU00001", "jared", "django");
    let json = emu.run(&["jobs", "wait", &job, "--json"]);
    assert_eq!(json.code, 0);
    let lines = json.json_lines();
    assert!(lines
        .iter()
        .any(|l| l["event"] == "step" && l["to"] == "in-progress"));
    assert_eq!(lines.last().unwrap()["outcome"], "succeeded");
    snap(&emu.server.url(), "jobs_wait_success_json", &json);
}

#[test]
fn jobs_wait_on_a_failing_sandbox_login_shows_the_action() {
    let emu = Emu::start();
    let user = emu.user("bighead@hooli.com");
    let job = emu.connect(&user, "AU00000", "bighead", "password");
    let waited = emu.run(&["jobs", "wait", &job, "--kind", "create"]);
    assert_eq!(waited.code, 3, "{waited:?}");
    assert!(waited.stdout.contains("invalid-credentials"));
    assert!(waited.stdout.contains("re-enter their bank credentials"));
    snap(&emu.server.url(), "jobs_wait_failed", &waited);
    let json = emu.run(&["jobs", "wait", &job, "--json"]);
    assert_eq!(json.code, 3);
    let verdict = json.json_lines().pop().unwrap();
    assert_eq!(verdict["class"], "user-action-required");
    assert_eq!(verdict["whose"], "the user");
    snap(&emu.server.url(), "jobs_wait_failed_json", &json);
}

#[test]
fn jobs_wait_during_an_outage_says_their_end() {
    let emu = Emu::start();
    emu.server
        .set_connector_status("AU00000", "major-outage")
        .unwrap();
    let user = emu.user("gilfoyle@piedpiper.com");
    let job = emu.connect(&user, "AU00000", "Gilfoyle", "PiedPiper");
    let waited = emu.run(&["jobs", "wait", &job]);
    assert_eq!(waited.code, 3, "{waited:?}");
    assert!(
        waited.stdout.contains("who acts: their end"),
        "{}",
        waited.stdout
    );
    snap(&emu.server.url(), "jobs_wait_outage", &waited);
}

#[test]
fn jobs_wait_stops_at_an_mfa_challenge_and_at_the_deadline() {
    let emu = Emu::start();
    let user = emu.user("richard@piedpiper.com");
    let job = emu.connect(&user, "AU00002", "richard", "tabsnotspaces");
    let mfa = emu.run(&["jobs", "wait", &job]);
    assert_eq!(mfa.code, 5, "{mfa:?}");
    snap(&emu.server.url(), "jobs_wait_mfa", &mfa);

    let slow = emu.connect(&user, "AU00000", "slow", "slow");
    let timed_out = emu.run(&["jobs", "wait", &slow, "--deadline", "30s", "--json"]);
    assert_eq!(timed_out.code, 4, "{timed_out:?}");
    assert_eq!(
        timed_out.json_lines().pop().unwrap()["outcome"],
        "timed-out"
    );
}

#[test]
fn triage_lists_unresolved_failures_with_actions() {
    let emu = Emu::start();
    let fine = emu.user("fine@hooli.com");
    emu.connect(&fine, "AU00000", "gavinBelson", "hooli2016");
    let locked = emu.user("locked@hooli.com");
    emu.connect(&locked, "AU00000", "bighead", "password");
    emu.advance(Duration::from_secs(13));

    let clean = emu.run(&["triage", &fine]);
    assert_eq!(clean.code, 0, "{clean:?}");
    snap(&emu.server.url(), "triage_clean", &clean);

    let found = emu.run(&["triage", &fine, &locked]);
    assert_eq!(found.code, 3, "{found:?}");
    snap(&emu.server.url(), "triage_found", &found);
    let json = emu.run(&["triage", &fine, &locked, "--json"]);
    assert_eq!(json.code, 3);
    let lines = json.json_lines();
    let findings: Vec<_> = lines.iter().filter(|l| l["type"] == "finding").collect();
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0]["userId"], locked.as_str());
    assert_eq!(findings[0]["code"], "invalid-credentials");
    snap(&emu.server.url(), "triage_found_json", &json);
}

#[test]
fn refresh_goes_through_the_guard() {
    let emu = Emu::start();
    let user = emu.user("jared@piedpiper.com");
    let job = emu.connect(&user, "AU00000", "jared", "django");
    emu.advance(Duration::from_secs(13));
    let conn = emu.connection_of(&job);

    let skipped = emu.run(&["refresh", &user, &conn]);
    assert_eq!(skipped.code, 3, "{skipped:?}");
    assert!(
        skipped.stdout.contains("refresh rarely"),
        "{}",
        skipped.stdout
    );
    snap(&emu.server.url(), "refresh_skipped", &skipped);
    let json = emu.run(&["refresh", &user, &conn, "--json"]);
    assert_eq!(json.json()["reason"], "recently-refreshed");
    snap(&emu.server.url(), "refresh_skipped_json", &json);
    assert!(emu.server.stats().refreshes.is_empty(), "nothing was sent");

    emu.advance(Duration::from_secs(25 * 3600));
    let started = emu.run(&["refresh", &user, &conn]);
    assert_eq!(started.code, 0, "{started:?}");
    snap(&emu.server.url(), "refresh_started", &started);
    assert_eq!(emu.server.stats().refreshes[&conn], 1);
    // At once again: Basiq's refresh job runs, so the guard sends nothing.
    let again = emu.run(&["refresh", &user, &conn, "--json"]);
    assert_eq!(again.code, 3);
    assert_eq!(again.json()["reason"], "in-progress");
    assert_eq!(emu.server.stats().refreshes[&conn], 1);
}

#[test]
fn refresh_plan_prints_the_plan() {
    let emu = Emu::start();
    let dir = scratch_dir();
    let from = dir.path().join("conns.txt");
    std::fs::write(&from, "# user connection\nu1 c1\nu1, c2\n\nu2 c3\n").unwrap();
    let printed = emu.run(&[
        "refresh",
        "plan",
        "--from",
        from.to_str().unwrap(),
        "--max-per-minute",
        "2",
    ]);
    assert_eq!(printed.code, 0, "{printed:?}");
    snap(&emu.server.url(), "refresh_plan_print", &printed);
    let json = emu.run(&[
        "refresh",
        "plan",
        "--from",
        from.to_str().unwrap(),
        "--window",
        "1m",
        "--max-per-minute",
        "2",
        "--json",
    ]);
    assert_eq!(json.code, 0);
    let plan = json.json();
    assert_eq!(plan["planned"].as_array().unwrap().len(), 2);
    assert_eq!(plan["overflow"].as_array().unwrap().len(), 1);
    // Printing sends nothing and leaves no state behind.
    assert_eq!(emu.server.stats().requests.values().sum::<u64>(), 0);
    assert!(!dir.path().join("conns.txt.state").exists());

    std::fs::write(&from, "u1 c1 extra\n").unwrap();
    let bad = emu.run(&["refresh", "plan", "--from", from.to_str().unwrap()]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .contains("conns.txt:1: expected `USER CONNECTION`"),
        "{}",
        bad.stderr
    );
}

#[test]
fn webhooks_verify_checks_the_signature() {
    use basiq::webhooks::{sign, WebhookSecret};
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let body = br#"{"eventTypeId":"connection.invalidated","eventId":"e1","links":{"event":"https://au-api.basiq.io/events/e1","eventEntity":"https://au-api.basiq.io/users/u1/connections/c1"}}"#;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let signature = sign(&WebhookSecret::new(secret).unwrap(), "msg_1", now, body);
    let now = now.to_string();
    let args = |sig: &str| {
        vec![
            "webhooks".to_owned(),
            "verify".into(),
            "--secret-env".into(),
            "HOOK_SECRET".into(),
            "--id".into(),
            "msg_1".into(),
            "--timestamp".into(),
            now.clone(),
            "--signature".into(),
            sig.to_owned(),
        ]
    };
    let emu = Emu::start();
    let ok_args = args(&signature);
    let ok_args: Vec<&str> = ok_args.iter().map(String::as_str).collect();
    let ok = emu.run_with(&ok_args, &[("HOOK_SECRET", secret)], Some(body));
    assert_eq!(ok.code, 0, "{ok:?}");
    snap(&emu.server.url(), "webhooks_verify_ok", &ok);

    let mut json_args = ok_args.clone();
    json_args.push("--json");
    let json = emu.run_with(&json_args, &[("HOOK_SECRET", secret)], Some(body));
    assert_eq!(json.json()["valid"], true);
    assert_eq!(
        json.json()["message"]["eventTypeId"],
        "connection.invalidated"
    );

    let tampered = emu.run_with(&ok_args, &[("HOOK_SECRET", secret)], Some(&body[1..]));
    assert_eq!(tampered.code, 3);
    snap(&emu.server.url(), "webhooks_verify_tampered", &tampered);
    assert!(!tampered.stdout.contains(secret) && !tampered.stderr.contains(secret));

    let unset = emu.run_with(&ok_args, &[], Some(body));
    assert_eq!(unset.code, 2);
}

#[test]
fn mock_serves_until_interrupted() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(BIN)
        .args([
            "mock",
            "--port",
            "0",
            "--api-key",
            "a2V5OnZhbHVl",
            "--virtual-clock",
        ])
        .env("BASIQ_API_KEY", "must-not-be-used")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines.next().unwrap().unwrap();
    let key = lines.next().unwrap().unwrap();
    assert_eq!(key, "BASIQ_API_KEY=a2V5OnZhbHVl");
    let url = url.strip_prefix("BASIQ_URL=").unwrap().to_owned();
    let token = ureq::post(&format!("{url}/token"))
        .set("Authorization", "Basic a2V5OnZhbHVl")
        .set("basiq-version", "3.0")
        .send_form(&[("scope", "SERVER_ACCESS")])
        .unwrap();
    assert_eq!(token.status(), 200);
    // The clock is frozen: it moves only when advanced.
    let now = |path: &str| -> serde_json::Value {
        ureq::get(&format!("{url}{path}"))
            .call()
            .unwrap()
            .into_json()
            .unwrap()
    };
    let a = now("/__admin/clock");
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(now("/__admin/clock")["nowExact"], a["nowExact"]);
    interrupt(child.id());
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn configuration_errors_exit_2() {
    let no_key = run(
        {
            let mut c = std::process::Command::new(BIN);
            c.args(["users", "get", "u1"])
                .env_remove("BASIQ_API_KEY")
                .env("NO_COLOR", "1");
            c
        },
        None,
    );
    assert_eq!(no_key.code, 2);
    snap("http://127.0.0.1:0", "no_api_key", &no_key);

    let remote = run(
        {
            let mut c = std::process::Command::new(BIN);
            c.args(["--virtual-time", "users", "get", "u1"])
                .env("BASIQ_API_KEY", "a2V5OnZhbHVl")
                .env("BASIQ_URL", "https://au-api.basiq.io")
                .env("NO_COLOR", "1");
            c
        },
        None,
    );
    assert_eq!(remote.code, 2);
    assert!(
        remote.stderr.contains("must be a loopback address"),
        "{}",
        remote.stderr
    );

    // The key is never an argument.
    let arg = run(
        {
            let mut c = std::process::Command::new(BIN);
            c.args(["--api-key", "x", "users", "get", "u1"]);
            c
        },
        None,
    );
    assert_eq!(arg.code, 2);
}

/// Sends SIGINT, as Ctrl-C does.
pub fn interrupt(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn events_list_filters_by_type_and_user() {
    let emu = Emu::start();
    let gavin = emu.user("gavin@hooli.com");
    let jared = emu.user("jared@piedpiper.com");
    let job = emu.connect(&jared, "AU00000", "jared", "django");
    emu.advance(Duration::from_secs(60));
    let connection = emu.connection_of(&job);

    let all = emu.run(&["--json", "events", "list"]);
    assert_eq!(all.code, 0, "{all:?}");
    let data = all.json()["data"].as_array().unwrap().clone();
    assert!(data.iter().any(|e| e["userId"] == gavin.as_str()));
    assert!(data.iter().any(|e| e["userId"] == jared.as_str()));

    let jareds = emu.run(&[
        "events",
        "list",
        "--user",
        &jared,
        "--type",
        "connection.created",
    ]);
    assert_eq!(jareds.code, 0, "{jareds:?}");
    assert!(
        jareds.stdout.contains("connection.created"),
        "{}",
        jareds.stdout
    );
    assert!(!jareds.stdout.contains(&gavin), "{}", jareds.stdout);
    snap(&emu.server.url(), "events_list_filtered", &jareds);
    let json = emu.run(&[
        "--json",
        "events",
        "list",
        "--user",
        &jared,
        "--type",
        "connection.created",
    ]);
    let data = json.json()["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 1, "{data:?}");
    assert!(
        data[0]["dataRef"]
            .as_str()
            .unwrap_or_default()
            .contains(&connection)
            || data[0]["links"].to_string().contains(&connection),
        "{}",
        data[0]
    );

    let none = emu.run(&["events", "list", "--type", "consent.revoked"]);
    assert_eq!(none.code, 0);
    assert!(none.stdout.contains("No events in the last 7 days match"));
    let bad = emu.run(&["events", "list", "--user", "x'),event.type.eq('y"]);
    assert_eq!(bad.code, 2, "{bad:?}");
}
