//! `cargo xtask ci`: every check CI runs, in order, stopping at the first failure.
//!
//! The same command runs locally and in `.github/workflows/ci.yml`, so "green here" means
//! "green there". Only `std::process::Command`: nothing to install beyond the toolchain
//! (cargo-nextest is used when present, because it is faster and isolates tests per process).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{citations, codegen, readme, unused_deps};

/// Crates that must never be normal dependencies of the sans-IO core: it does no IO and picks
/// no runtime, so hosts can bring their own (docs/architecture.md, "Crates").
const CORE_FORBIDDEN: &[&str] = &["tokio", "reqwest", "ureq", "hyper", "axum", "mio"];

/// The blocking client is built on ureq precisely so that it works without (and inside) any
/// async runtime; tokio sneaking in would bring back async-stripe's block_on panics.
const BLOCKING_FORBIDDEN: &[&str] = &["tokio"];

/// The programs in `crates/basiq/examples`, run by the "examples" step (a test checks that
/// the list matches the directory).
const EXAMPLES: &[&str] = &[
    "quickstart",
    "connect_bank",
    "guarded_refresh",
    "daily_triage",
    "webhook_receiver",
    "blocking_app",
    "own_http_client",
    "fleet_instances",
];

/// Cargo subcommands that resolve dependencies: CI passes them `--locked`, so a stale or
/// edited `Cargo.lock` fails instead of being silently rewritten.
const LOCKED: &[&str] = &[
    "build", "check", "clippy", "test", "doc", "tree", "run", "publish", "package",
];

/// One CI step.
enum Step {
    /// A cargo invocation that must succeed.
    Cargo {
        args: &'static [&'static str],
        env: &'static [(&'static str, &'static str)],
    },
    /// `cargo clippy -p basiq --no-default-features`, plus `--features <these>` when given, with
    /// warnings denied: the facade builds cleanly with each combination of its additive client
    /// features.
    BasiqFeatures(Option<&'static str>),
    /// `codegen --check`, called directly rather than through a nested `cargo run`.
    CodegenCheck,
    /// No tracked file cites a document that is not in the repository ([`citations`]).
    Citations,
    /// Every declared dependency is used ([`unused_deps`]).
    UnusedDeps,
    /// Builds the basiq examples, then runs each one (all run offline on the emulator).
    Examples,
    /// The README's Use section in a scratch crate outside the workspace ([`readme`]).
    Readme,
    /// `cargo publish --dry-run --workspace`, after dropping stale unpacked copies of our own
    /// packages (see [`forget_unpacked_packages`]).
    PublishDryRun,
    /// Tests: nextest when installed (then doctests separately, which nextest skips), else
    /// `cargo test`.
    Tests,
    /// `cargo tree -p <package> -e normal` must not mention any of `forbidden`.
    TreeExcludes {
        package: &'static str,
        forbidden: &'static [&'static str],
        /// Extra `cargo tree` arguments (feature selection).
        extra: &'static [&'static str],
    },
}

/// The steps, in order: cheap and likely-to-fail first.
fn steps() -> Vec<(&'static str, Step)> {
    vec![
        (
            "fmt",
            Step::Cargo {
                args: &["fmt", "--all", "--", "--check"],
                env: &[],
            },
        ),
        (
            "clippy",
            Step::Cargo {
                args: &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--all-features",
                    "--",
                    "-D",
                    "warnings",
                ],
                env: &[],
            },
        ),
        ("codegen --check", Step::CodegenCheck),
        (
            "docs: every cited document is in the repository",
            Step::Citations,
        ),
        ("deps: no unused dependency", Step::UnusedDeps),
        ("tests", Step::Tests),
        (
            "fault matrix",
            Step::Cargo {
                // Already run among the tests; again here with its table printed. The same
                // `--workspace --all-features` as the test step, so nothing is rebuilt.
                args: &[
                    "test",
                    "--workspace",
                    "--all-features",
                    "--test",
                    "fault_matrix",
                    "--",
                    "--nocapture",
                ],
                env: &[],
            },
        ),
        (
            "benches: build (cargo xtask bench runs them)",
            Step::Cargo {
                // Built, not run: CI never times anything. Same profile and features as the
                // test step, so only the bench targets themselves compile.
                args: &["build", "--workspace", "--all-features", "--benches"],
                env: &[],
            },
        ),
        ("features: basiq (no transport)", Step::BasiqFeatures(None)),
        ("features: basiq async", Step::BasiqFeatures(Some("async"))),
        (
            "features: basiq blocking",
            Step::BasiqFeatures(Some("blocking")),
        ),
        (
            "features: basiq async,blocking",
            Step::BasiqFeatures(Some("async,blocking")),
        ),
        (
            "deps: basiq-core has no IO crates",
            Step::TreeExcludes {
                package: "basiq-core",
                forbidden: CORE_FORBIDDEN,
                extra: &[],
            },
        ),
        (
            "deps: basiq-http-blocking has no tokio",
            Step::TreeExcludes {
                package: "basiq-http-blocking",
                forbidden: BLOCKING_FORBIDDEN,
                extra: &[],
            },
        ),
        (
            "deps: basiq-redis for the blocking client has no tokio",
            Step::TreeExcludes {
                package: "basiq-redis",
                forbidden: BLOCKING_FORBIDDEN,
                extra: &["--no-default-features", "--features", "blocking"],
            },
        ),
        (
            "rustdoc",
            Step::Cargo {
                args: &["doc", "--workspace", "--no-deps", "--all-features"],
                env: &[("RUSTDOCFLAGS", "-D warnings")],
            },
        ),
        ("examples: each runs against the emulator", Step::Examples),
        ("readme: the Use section in a scratch crate", Step::Readme),
        (
            "package: cargo publish --dry-run --workspace",
            Step::PublishDryRun,
        ),
    ]
}

/// Runs every step; the error names the step that failed.
pub fn run(root: &Path) -> Result<(), String> {
    let started = Instant::now();
    let steps = steps();
    let total = steps.len();
    for (i, (name, step)) in steps.into_iter().enumerate() {
        println!("\n==> [{}/{total}] {name}", i + 1);
        let step_started = Instant::now();
        let result = run_step(root, &step);
        let elapsed = step_started.elapsed().as_secs_f64();
        match result {
            Ok(()) => println!("==> [{}/{total}] {name}: ok ({elapsed:.1}s)", i + 1),
            Err(e) => {
                println!("==> [{}/{total}] {name}: FAILED ({elapsed:.1}s)", i + 1);
                return Err(format!("ci step `{name}` failed: {e}"));
            }
        }
    }
    println!(
        "\nci: all {total} steps passed in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn run_step(root: &Path, step: &Step) -> Result<(), String> {
    match step {
        Step::Cargo { args, env } => cargo(root, args, env),
        Step::BasiqFeatures(features) => {
            // clippy rather than check, with warnings denied: an import or helper that is only
            // used under one feature is a warning in the other combinations, and this is the
            // only step that builds them.
            let mut args = vec!["clippy", "-p", "basiq", "--no-default-features"];
            if let Some(features) = features {
                args.extend(["--features", features]);
            }
            args.extend(["--", "-D", "warnings"]);
            cargo(root, &args, &[])
        }
        Step::CodegenCheck => codegen::check(root).map_err(|e| e.to_string()),
        Step::Citations => citations::check(root),
        Step::UnusedDeps => unused_deps::check(root),
        Step::Examples => {
            cargo(
                root,
                &["build", "-p", "basiq", "--all-features", "--examples"],
                &[],
            )?;
            for example in EXAMPLES {
                cargo(
                    root,
                    &[
                        "run",
                        "--quiet",
                        "-p",
                        "basiq",
                        "--all-features",
                        "--example",
                        example,
                    ],
                    &[("BASIQ_API_KEY", "")],
                )?;
            }
            Ok(())
        }
        Step::Readme => readme::check(root),
        Step::PublishDryRun => {
            forget_unpacked_packages(&cargo_home().join("registry/src"));
            // Its own build directory, where every `basiq*` artifact comes from the packages
            // under test: forgetting their fingerprints rebuilds exactly those (cargo trusts a
            // registry package's version, not its files) and keeps the dependencies built.
            let target = root.join("target/publish-verify");
            if let Ok(entries) = std::fs::read_dir(target.join("debug/.fingerprint")) {
                for entry in entries.flatten() {
                    if entry.file_name().to_string_lossy().starts_with("basiq") {
                        let _ = std::fs::remove_dir_all(entry.path());
                    }
                }
            }
            let target = target.to_string_lossy().into_owned();
            // `--allow-dirty`: what is verified is the package as it would be uploaded; whether
            // the tree is committed only matters for a real upload.
            cargo(
                root,
                &["publish", "--dry-run", "--workspace", "--allow-dirty"],
                &[("CARGO_TARGET_DIR", target.as_str())],
            )
        }
        Step::Tests => {
            if nextest_available(root) {
                cargo(
                    root,
                    &["nextest", "run", "--workspace", "--all-features"],
                    &[],
                )?;
                cargo(
                    root,
                    &["test", "--doc", "--workspace", "--all-features"],
                    &[],
                )
            } else {
                println!("    (cargo-nextest not installed: using cargo test)");
                cargo(root, &["test", "--workspace", "--all-features"], &[])
            }
        }
        Step::TreeExcludes {
            package,
            forbidden,
            extra,
        } => {
            let mut args = vec!["tree", "-p", package, "-e", "normal"];
            args.extend_from_slice(extra);
            let tree = cargo_output(root, &args)?;
            let found = forbidden_in_tree(&tree, forbidden);
            if found.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "`cargo tree -p {package} -e normal` contains {}, which {package} must \
                     never depend on",
                    found.join(", ")
                ))
            }
        }
    }
}

/// The verification of `cargo publish --dry-run --workspace` builds each package against the
/// others from a temporary local registry, which cargo unpacks under
/// `$CARGO_HOME/registry/src/-<hash>/<name>-<version>` and never unpacks again while that
/// directory exists: a second dry run with the same version, from this checkout or another one
/// on a machine whose `CARGO_HOME` outlives the checkout, would verify an *earlier* run's
/// sources. So before each run every unpacked copy of our packages is removed from every local
/// registry (a directory named `-<hash>`: a registry without a host); crates.io's
/// `index.crates.io-<hash>` and every other package are left alone.
fn forget_unpacked_packages(registry_src: &Path) {
    for package in unpacked_packages(registry_src) {
        let _ = std::fs::remove_dir_all(package);
    }
}

/// Our packages (`basiq*`) as unpacked from local registries under `registry_src`.
fn unpacked_packages(registry_src: &Path) -> Vec<std::path::PathBuf> {
    let entries = |dir: &Path| std::fs::read_dir(dir).into_iter().flatten().flatten();
    entries(registry_src)
        .filter(|registry| registry.file_name().to_string_lossy().starts_with('-'))
        .flat_map(|registry| entries(&registry.path()))
        .filter(|package| package.file_name().to_string_lossy().starts_with("basiq"))
        .map(|package| package.path())
        .collect()
}

/// `$CARGO_HOME`, else `$HOME/.cargo`, as cargo itself resolves it.
fn cargo_home() -> std::path::PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| std::path::PathBuf::from(".cargo"))
}

/// The cargo that runs us (`CARGO` is set by `cargo run`), else `cargo` from `PATH`.
fn cargo_command(root: &Path) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    // CI never talks to Basiq: the sandbox tests (crates/basiq/tests/sandbox.rs) run against
    // the emulator unless this is set.
    command
        .current_dir(root)
        .env_remove("BASIQ_SANDBOX_API_KEY");
    command
}

fn describe(args: &[&str]) -> String {
    format!("cargo {}", args.join(" "))
}

/// Runs cargo with inherited output, so its diagnostics appear as they happen.
fn cargo(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let args = &locked(args);
    let shown_env: String = env.iter().map(|(k, v)| format!("{k}={v:?} ")).collect();
    println!("    $ {shown_env}{}", describe(args));
    let status = cargo_command(root)
        .args(args)
        .envs(env.iter().copied())
        .status()
        .map_err(|e| format!("cannot start `{}`: {e}", describe(args)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` exited with {status}", describe(args)))
    }
}

/// Runs cargo and returns its stdout (stderr still shows).
fn cargo_output(root: &Path, args: &[&str]) -> Result<String, String> {
    let args = &locked(args);
    println!("    $ {}", describe(args));
    let output = cargo_command(root)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start `{}`: {e}", describe(args)))?;
    if !output.status.success() {
        return Err(format!(
            "`{}` exited with {}",
            describe(args),
            output.status
        ));
    }
    String::from_utf8(output.stdout)
        .map_err(|e| format!("`{}` printed non-UTF-8: {e}", describe(args)))
}

/// `args` with `--locked` after the subcommand when it resolves dependencies (`nextest run`
/// included).
fn locked<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut out = args.to_vec();
    let at = match args {
        ["nextest", "run", ..] => Some(2),
        [sub, ..] if LOCKED.contains(sub) => Some(1),
        _ => None,
    };
    if let Some(at) = at {
        if !args.contains(&"--locked") {
            out.insert(at, "--locked");
        }
    }
    out
}

fn nextest_available(root: &Path) -> bool {
    cargo_command(root)
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The forbidden crates that appear in `cargo tree` output. A line looks like
/// `│   ├── tokio v1.40.0 (*)`; the crate name is the first word after the tree drawing. A
/// crate matches by exact name or as a family prefix (`hyper` catches `hyper-util`).
fn forbidden_in_tree(tree: &str, forbidden: &[&str]) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for line in tree.lines() {
        let name = line
            .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
            .split_whitespace()
            .next()
            .unwrap_or_default();
        let hit = forbidden.iter().any(|f| {
            name == *f
                || name
                    .strip_prefix(f)
                    .is_some_and(|rest| rest.starts_with('-'))
        });
        if hit && !found.iter().any(|n| n == name) {
            found.push(name.to_owned());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stale copy of our package in any local registry is found, whichever checkout's
    /// registry it is; crates.io's packages and other packages in a local registry are not.
    #[test]
    fn only_our_packages_in_local_registries_are_forgotten() {
        let src = std::env::temp_dir().join(format!("xtask-registry-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&src);
        for dir in [
            "-4701d4e4b1ce009c/basiq-core-0.1.0",
            "-4701d4e4b1ce009c/basiq-http-async-0.1.0",
            "-ad9baaea77ddfe8d/basiq-core-0.1.0",
            "-ad9baaea77ddfe8d/serde-1.0.0",
            "index.crates.io-1949cf8c6b5b557f/basiq-0.0.1",
            "index.crates.io-1949cf8c6b5b557f/reqwest-0.12.28",
        ] {
            std::fs::create_dir_all(src.join(dir)).unwrap();
        }
        std::fs::write(src.join("-4701d4e4b1ce009c/basiq-core-0.1.0/lib.rs"), "").unwrap();

        let mut found = unpacked_packages(&src);
        found.sort();
        let expected: Vec<_> = [
            "-4701d4e4b1ce009c/basiq-core-0.1.0",
            "-4701d4e4b1ce009c/basiq-http-async-0.1.0",
            "-ad9baaea77ddfe8d/basiq-core-0.1.0",
        ]
        .iter()
        .map(|dir| src.join(dir))
        .collect();
        assert_eq!(found, expected);

        forget_unpacked_packages(&src);
        assert!(unpacked_packages(&src).is_empty());
        assert!(src.join("-ad9baaea77ddfe8d/serde-1.0.0").is_dir());
        assert!(src
            .join("index.crates.io-1949cf8c6b5b557f/basiq-0.0.1")
            .is_dir());
        std::fs::remove_dir_all(&src).unwrap();
    }

    #[test]
    fn tree_check_finds_crates_by_name_not_substring() {
        let tree = "\
basiq-core v0.1.0 (/work/main/crates/basiq-core)
├── http v1.1.0
│   └── bytes v1.7.1
├── time v0.3.36
│   └── time-macros v0.2.18 (proc-macro)
└── tokio-util v0.7.0
    └── tokio v1.40.0 (*)
";
        assert_eq!(
            forbidden_in_tree(tree, CORE_FORBIDDEN),
            vec!["tokio-util", "tokio"]
        );
        assert!(forbidden_in_tree("x v1\n└── minimio v1\n└── mios v1\n", &["mio"]).is_empty());
    }

    #[test]
    fn resolving_commands_run_locked() {
        assert_eq!(
            locked(&["clippy", "--workspace"]),
            ["clippy", "--locked", "--workspace"]
        );
        assert_eq!(
            locked(&["nextest", "run", "-p", "x"]),
            ["nextest", "run", "--locked", "-p", "x"]
        );
        assert_eq!(locked(&["fmt", "--all"]), ["fmt", "--all"]);
        assert_eq!(locked(&["test", "--locked"]), ["test", "--locked"]);
    }

    #[test]
    fn every_example_is_run() {
        let dir = crate::workspace_root().join("crates/basiq/examples");
        let mut found: Vec<String> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| {
                        let name = e.file_name().into_string().ok()?;
                        name.strip_suffix(".rs").map(String::from)
                    })
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        let mut listed: Vec<String> = EXAMPLES.iter().map(|e| (*e).to_owned()).collect();
        listed.sort();
        assert_eq!(
            found,
            listed,
            "EXAMPLES must list every file in {}",
            dir.display()
        );
    }

    #[test]
    fn steps_are_in_the_documented_order() {
        let names: Vec<_> = steps().into_iter().map(|(name, _)| name).collect();
        assert_eq!(names[..3], ["fmt", "clippy", "codegen --check"]);
        let tests = names
            .iter()
            .position(|n| *n == "tests")
            .unwrap_or(usize::MAX);
        let citations = names
            .iter()
            .position(|n| n.starts_with("docs: every cited"))
            .unwrap_or(usize::MAX);
        assert!(
            citations < tests,
            "cheap checks before the tests: {names:?}"
        );
        // The slow whole-package steps last: everything cheap has passed by then.
        assert!(names.contains(&"rustdoc"));
        assert_eq!(
            names.last(),
            Some(&"package: cargo publish --dry-run --workspace")
        );
    }
}
