//! Plans over many users and connections: never above their rate in any 60 s (by the emulator's
//! request log, in virtual time), each item at most once, resumable after Ctrl-C without
//! repeating a refresh. `--virtual-time` makes hours of plan take a moment: nothing sleeps.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;

#[test]
fn triage_of_200_users_never_exceeds_its_rate_in_any_minute() {
    let emu = Emu::start();
    let users: Vec<String> = (0..200)
        .map(|i| emu.user(&format!("u{i}@hooli.com")))
        .collect();
    let failing = &users[17];
    emu.connect(failing, "AU00000", "bighead", "password");
    emu.advance(Duration::from_secs(13));
    let dir = scratch_dir();
    let file = dir.path().join("users.txt");
    std::fs::write(&file, format!("# the fleet\n{}\n", users.join("\n"))).unwrap();

    let run = emu.run(&[
        "triage",
        "--users-from",
        file.to_str().unwrap(),
        "--window",
        "2h",
        "--max-per-minute",
        "12",
        "--json",
    ]);
    assert_eq!(run.code, 3, "one user has a finding: {run:?}");
    let lines = run.json_lines();
    let findings: Vec<_> = lines.iter().filter(|l| l["type"] == "finding").collect();
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0]["userId"], failing.as_str());
    assert_eq!(lines.last().unwrap()["checked"], 200);

    let checks = emu.arrivals("GET", "/users/{user_id}/jobs");
    let checked: Vec<&str> = checks.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(checked.len(), 200, "each user once");
    assert_eq!(checked.iter().collect::<HashSet<_>>().len(), 200);
    let times: Vec<_> = checks.iter().map(|(t, _)| *t).collect();
    assert!(
        most_in_any_minute(&times) <= 12,
        "{} in a minute",
        most_in_any_minute(&times)
    );
    // Spread over the window, not bunched at its start.
    let span = *times.iter().max().unwrap() - *times.iter().min().unwrap();
    assert!(span > time::Duration::minutes(60), "{span}");
    assert!(span < time::Duration::hours(2));
    assert!(
        !dir.path().join("users.txt.state").exists(),
        "a completed plan leaves no state"
    );
}

/// 50 users with 10 active connections each, last refreshed more than a day ago.
fn fleet(emu: &Emu, users: usize) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut jobs = Vec::new();
    for u in 0..users {
        let user = emu.user(&format!("fleet{u}@hooli.com"));
        for (login, password) in HAPPY {
            for institution in ["AU00000", "AU00001"] {
                jobs.push((
                    user.clone(),
                    emu.connect(&user, institution, login, password),
                ));
            }
        }
    }
    emu.advance(Duration::from_secs(13));
    for (user, job) in jobs {
        pairs.push((user, emu.connection_of(&job)));
    }
    emu.advance(Duration::from_secs(25 * 3600));
    pairs
}

fn write_pairs(path: &std::path::Path, pairs: &[(String, String)]) {
    let text: Vec<String> = pairs.iter().map(|(u, c)| format!("{u} {c}")).collect();
    std::fs::write(path, text.join("\n")).unwrap();
}

#[test]
fn refresh_plan_over_500_connections_sends_each_once_never_more_than_n_a_minute() {
    let emu = Emu::start();
    let pairs = fleet(&emu, 50);
    assert_eq!(pairs.len(), 500);
    let dir = scratch_dir();
    let from = dir.path().join("conns.txt");
    write_pairs(&from, &pairs);

    let run = emu.run(&[
        "refresh",
        "plan",
        "--from",
        from.to_str().unwrap(),
        "--window",
        "1h",
        "--max-per-minute",
        "10",
        "--execute",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("Ran 500 of 500 refresh(es): 500 started"),
        "{}",
        run.stdout
    );

    let stats = emu.server.stats();
    assert_eq!(stats.refreshes.len(), 500);
    assert!(
        stats.refreshes.values().all(|n| *n == 1),
        "each at most once"
    );
    let sent = emu.arrivals(
        "POST",
        "/users/{user_id}/connections/{connection_id}/refresh",
    );
    assert_eq!(sent.len(), 500);
    let times: Vec<_> = sent.iter().map(|(t, _)| *t).collect();
    assert!(
        most_in_any_minute(&times) <= 10,
        "{} in a minute",
        most_in_any_minute(&times)
    );
    assert!(!dir.path().join("conns.txt.state").exists());
}

#[test]
fn an_interrupted_plan_resumes_without_repeating_a_refresh() {
    let emu = Emu::start();
    let pairs = fleet(&emu, 6);
    // Each refresh takes 20 real ms, so Ctrl-C lands mid-plan.
    emu.server
        .faults()
        .add(
            basiq_mock::FaultRule::new("/users/*/refresh", basiq_mock::Fault::Delay { ms: 20 })
                .method("POST")
                .times(10_000),
        )
        .unwrap();
    let dir = scratch_dir();
    let from = dir.path().join("conns.txt");
    let state = dir.path().join("conns.txt.state");
    write_pairs(&from, &pairs);
    let args = [
        "refresh",
        "plan",
        "--from",
        from.to_str().unwrap(),
        "--window",
        "1h",
        "--max-per-minute",
        "6",
        "--execute",
    ];

    let mut cmd = emu.command(&args);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    // Wait until ten refreshes are recorded (header + 10 lines), then press Ctrl-C.
    while std::fs::read_to_string(&state).map_or(0, |s| s.lines().count()) < 11 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = child.id();
    std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(stderr.contains("Interrupted:"), "{stderr}");
    assert!(state.exists(), "the state file stays for the resume");
    let first = emu.server.stats().refreshes.len();
    assert!(first >= 10 && first < pairs.len(), "{first}");

    // Printing the plan now shows the interrupted run's slots and sends nothing.
    let printed = emu.run(&args[..args.len() - 1]);
    assert_eq!(printed.code, 0);
    assert!(
        printed
            .stderr
            .contains(&format!("{first} of {} already ran", pairs.len())),
        "{}",
        printed.stderr
    );
    assert_eq!(emu.server.stats().refreshes.len(), first);

    let resumed = emu.run(&args);
    assert_eq!(resumed.code, 0, "{resumed:?}");
    assert!(
        resumed
            .stderr
            .contains(&format!("Resuming: {first} of {}", pairs.len())),
        "{}",
        resumed.stderr
    );
    let stats = emu.server.stats();
    assert_eq!(stats.refreshes.len(), pairs.len());
    assert!(
        stats.refreshes.values().all(|n| *n == 1),
        "no refresh repeated: {:?}",
        stats.refreshes
    );
    // Across the interruption the rate still holds.
    let sent = emu.arrivals(
        "POST",
        "/users/{user_id}/connections/{connection_id}/refresh",
    );
    let times: Vec<_> = sent.iter().map(|(t, _)| *t).collect();
    assert!(most_in_any_minute(&times) <= 6);
    assert!(!state.exists());
}

#[test]
fn a_state_file_of_another_plan_is_refused_before_anything_is_sent() {
    let emu = Emu::start();
    let user = emu.user("solo@hooli.com");
    let dir = scratch_dir();
    let file = dir.path().join("users.txt");
    std::fs::write(&file, format!("{user}\n")).unwrap();
    let state = dir.path().join("users.txt.state");
    std::fs::write(
        &state,
        r#"{"plan":"triage","start":"2026-03-02T09:00:00Z","jitter":0.5,"windowMs":2000,"maxPerMinute":30,"items":1,"digest":"0000000000000000"}
"#,
    )
    .unwrap();
    let run = emu.run(&["triage", "--users-from", file.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("belongs to another plan"),
        "{}",
        run.stderr
    );
    assert!(emu.arrivals("GET", "/users/{user_id}/jobs").is_empty());
    assert!(state.exists(), "never removed on a mismatch");

    // Too many users for the window at the rate: refused up front too.
    std::fs::remove_file(&state).unwrap();
    let run = emu.run(&[
        "triage",
        &user,
        "u2",
        "u3",
        "--window",
        "1m",
        "--max-per-minute",
        "2",
    ]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("do not fit"), "{}", run.stderr);
    assert!(emu.arrivals("GET", "/users/{user_id}/jobs").is_empty());
}
