//! `cargo xtask minimal-versions`: do the declared dependency floors build?
//!
//! A manifest saying `tracing = "0.1"` promises the code builds with tracing 0.1.0; usually it
//! does not, and a user whose lock holds an older version gets a compile error from us. This
//! command copies the tracked files to a scratch directory, resolves every *direct* dependency
//! to the lowest version its requirement allows (`cargo update -Z direct-minimal-versions`;
//! transitive ones stay at their newest compatible version) and checks the whole workspace —
//! all targets, all features — there. Nothing in the checkout changes.
//!
//! `-Z` flags need a nightly cargo; `RUSTC_BOOTSTRAP=1` lets the stable one accept this flag for
//! the resolution only, so no nightly toolchain is needed. Not part of `cargo xtask ci`: a cold
//! run builds a second dependency tree (see docs/releasing.md for the measured time).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

pub fn run(root: &Path) -> Result<(), String> {
    let started = Instant::now();
    let copy = root.join("target/minimal-versions/workspace");
    let _ = std::fs::remove_dir_all(&copy);
    copy_tracked(root, &copy)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let step = |args: &[&str]| -> Result<(), String> {
        println!("    $ cargo {}", args.join(" "));
        let status = Command::new(&cargo)
            .args(args)
            .current_dir(&copy)
            .env("RUSTC_BOOTSTRAP", "1")
            .env(
                "CARGO_TARGET_DIR",
                root.join("target/minimal-versions/target"),
            )
            .status()
            .map_err(|e| format!("cannot start cargo: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("`cargo {}` exited with {status}", args.join(" ")))
        }
    };
    step(&["update", "-Z", "direct-minimal-versions"]).map_err(|e| {
        format!("{e}: a dependency's floor conflicts with what another dependency needs; raise it")
    })?;
    step(&["check", "--workspace", "--all-targets", "--all-features"]).map_err(|e| {
        format!("{e}: the code does not build with the declared floors; raise them")
    })?;
    println!(
        "minimal-versions: every direct dependency builds at its floor ({:.0}s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Copies the files `git ls-files` lists (the working tree's contents) from `root` to `to`.
fn copy_tracked(root: &Path, to: &Path) -> Result<(), String> {
    let output = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run git ls-files: {e}"))?;
    for file in output.stdout.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let file = String::from_utf8_lossy(file);
        let from = root.join(file.as_ref());
        let dest = to.join(file.as_ref());
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        // A tracked file deleted in the working tree is simply not copied.
        if from.is_file() {
            std::fs::copy(&from, &dest).map_err(|e| format!("{}: {e}", from.display()))?;
        }
    }
    Ok(())
}
