//! No API key, token or webhook secret in any output or log line, at any verbosity, for every
//! command — including the failures (a wrong key, an expired token).

mod common;

use std::time::Duration;

use common::*;

/// Every token the emulator issues starts with this JWT header (`{"alg":"HS256","typ":"JWT"}`).
const TOKEN_HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

fn assert_clean(what: &str, run: &Run, key: &str) {
    for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(
            !text.contains(key),
            "{what}: the API key is on {stream}:\n{text}"
        );
        assert!(
            !text.contains(TOKEN_HEADER),
            "{what}: a token is on {stream}:\n{text}"
        );
        assert!(
            !text.contains("Bearer "),
            "{what}: a bearer header is on {stream}:\n{text}"
        );
        assert!(
            !text.contains("Basic "),
            "{what}: a basic header is on {stream}:\n{text}"
        );
    }
}

#[test]
fn no_key_or_token_in_any_output_at_any_verbosity() {
    let emu = Emu::start();
    let key = emu.server.api_key();
    let user = emu.user("gavin@hooli.com");
    let ok = emu.connect(&user, "AU00000", "gavinBelson", "hooli2016");
    let failed = emu.connect(&user, "AU00001", "bighead", "password");
    emu.advance(Duration::from_secs(13));
    let conn = emu.connection_of(&ok);
    let dir = scratch_dir();
    let from = dir.path().join("conns.txt");
    std::fs::write(&from, format!("{user} {conn}\n")).unwrap();
    let from = from.to_str().unwrap().to_owned();

    let commands: Vec<Vec<&str>> = vec![
        vec!["users", "create", "--email", "jared@piedpiper.com"],
        vec!["users", "get", &user],
        vec!["connections", "list", &user],
        vec!["connections", "get", &user, &conn],
        vec!["connectors", "list"],
        vec!["jobs", "wait", &ok],
        vec!["jobs", "wait", &failed],
        vec!["triage", &user],
        vec!["refresh", &user, &conn],
        vec!["refresh", "plan", "--from", &from],
        vec!["users", "get", "no-such-user"],
    ];
    for verbosity in [None, Some("-v"), Some("-vv"), Some("-vvv")] {
        for json in [false, true] {
            for command in &commands {
                let mut args: Vec<&str> = verbosity.into_iter().collect();
                if json {
                    args.push("--json");
                }
                args.extend(command.iter().copied());
                let run = emu.run(&args);
                assert!(run.code != 101, "{args:?} panicked: {run:?}");
                assert_clean(&format!("{args:?}"), &run, &key);
            }
        }
    }
    // The trace level really logs (so the check above looked at something).
    let traced = emu.run(&["-vvv", "triage", &user]);
    assert!(
        traced.stderr.contains("unresolved job failure"),
        "{}",
        traced.stderr
    );

    // An executed plan, with its state file.
    let plan = emu.run(&["-vvv", "refresh", "plan", "--from", &from, "--execute"]);
    assert_clean("refresh plan --execute", &plan, &key);

    // Expired tokens are renewed without printing either one.
    emu.advance(Duration::from_secs(2 * 3600));
    let renewed = emu.run(&["-vvv", "--json", "triage", &user]);
    assert_clean("after expiry", &renewed, &key);

    // A wrong key is refused without being echoed.
    let wrong = "d3Jvbmc6a2V5LW5vdC10aGlzLW9uZQ==";
    let refused = emu.run_with(
        &["-vvv", "users", "get", &user],
        &[("BASIQ_API_KEY", wrong)],
        None,
    );
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("invalid API key"),
        "{}",
        refused.stderr
    );
    assert_clean("wrong key", &refused, wrong);
}

#[test]
fn the_quickstart_prints_no_token_at_any_verbosity() {
    // The embedded emulator's key is its fixed default: the same one a fresh emulator reports.
    let key = basiq_mock::MockServer::start().api_key();
    for verbosity in ["-v", "-vvv"] {
        for json in [false, true] {
            let mut cmd = std::process::Command::new(BIN);
            cmd.arg(verbosity).arg("quickstart").env("NO_COLOR", "1");
            if json {
                cmd.arg("--json");
            }
            let run = run(cmd, None);
            assert_eq!(run.code, 0, "{run:?}");
            assert_clean("quickstart", &run, &key);
        }
    }
}
