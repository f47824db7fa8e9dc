//! Project automation, run as `cargo xtask <command>` (the alias lives in .cargo/config.toml).
//!
//! A Rust program rather than shell scripts so it runs the same on every OS and in CI, with no
//! tool to install beyond the toolchain.

#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod bench;
mod ci;
mod citations;
mod codegen;
mod minimal_versions;
mod readme;
mod unused_deps;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const HELP: &str = "\
cargo xtask <command>

Commands:
  codegen           regenerate crates/basiq-core/src/api/{models,operations}.rs
                    from fixtures/openapi/basiq.yaml
  codegen --check   regenerate in memory; fail, naming the files, if those on disk are stale
  ci                everything CI runs, in order, stopping at the first failing step:
                    fmt, clippy, codegen --check, citations, unused-deps, tests (nextest
                    if installed) and doctests, the basiq feature matrix, the dependency-tree
                    rules, rustdoc, the examples, readme, cargo publish --dry-run; every
                    cargo command that resolves dependencies runs --locked
  minimal-versions  build the workspace with every direct dependency at its declared floor
                    (needs a nightly toolchain for the resolution; see docs/releasing.md)
  citations         fail when a tracked file cites a document that is not in the repository
  unused-deps       fail when a member declares a dependency its code never uses
  readme            build and run the README's Use section in a scratch crate, on the emulator
  bench [--quick] [bench...]
                    the bench suite (crates/basiq-bench) in one run: starts the emulator and a
                    bare axum server, runs every bench (or the ones named: plan, parse, tokens,
                    overhead, emulator, stream), prints figure | SDK | baseline | ratio | target
                    (docs/performance.md); --quick takes fewer rounds and skips the raw 1M walks
                    and the current-thread walk
  -h, --help        this text

See docs/codegen.md for the generator and its OpenAPI extensions.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let root = workspace_root();
    let result = match args.as_slice() {
        [] | ["-h" | "--help" | "help"] => {
            print!("{HELP}");
            Ok(())
        }
        ["codegen"] => codegen::write(&root)
            .map(|written| {
                if written.is_empty() {
                    println!("codegen: generated files are up to date");
                } else {
                    for path in written {
                        println!("codegen: wrote {path}");
                    }
                }
            })
            .map_err(|e| e.to_string()),
        ["codegen", "--check"] => codegen::check(&root)
            .map(|()| println!("codegen: generated files are up to date"))
            .map_err(|e| e.to_string()),
        ["ci"] => ci::run(&root),
        ["citations"] => citations::check(&root),
        ["unused-deps"] => unused_deps::check(&root),
        ["readme"] => readme::check(&root),
        ["minimal-versions"] => minimal_versions::run(&root),
        ["bench", rest @ ..] => bench::run(&root, rest),
        other => Err(format!("unknown arguments `{}`\n\n{HELP}", other.join(" "))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: xtask lives one level below it.
///
/// `cargo run` sets `CARGO_MANIFEST_DIR` at run time too; that one wins over the value baked in
/// at compile time, so a binary built from another checkout sharing the target directory (a
/// worktree with the same `CARGO_TARGET_DIR`) still works on this one.
fn workspace_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.clone(), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    #[test]
    fn workspace_root_is_this_checkouts_workspace() {
        let manifest = super::workspace_root().join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap_or_default();
        assert!(text.contains("[workspace]"), "{}", manifest.display());
    }
}
