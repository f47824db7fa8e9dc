//! `cargo xtask ci` step "readme: the Use section works in a scratch crate".
//!
//! A new user copies the README's "Use" section into a crate of their own. This step does the
//! same outside the workspace: a directory holding `basiq-rs` (a link to this checkout, where
//! the README's path dependency expects it) and `app/`, whose `Cargo.toml` is the section's
//! TOML block and whose `src/main.rs` is its Rust block, verbatim. It builds the app and runs it
//! against the embedded emulator (`BASIQ_BASE_URL`, `BASIQ_API_KEY`), and fails unless it
//! exits successfully and printed what the README says it prints.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The two code blocks of the README's Use section.
#[derive(Debug, PartialEq, Eq)]
pub struct UseSection {
    pub manifest: String,
    pub program: String,
}

/// Extracts the first ```toml and the first ```rust block under `## Use`.
pub fn use_section(readme: &str) -> Result<UseSection, String> {
    let start = readme
        .find("\n## Use\n")
        .ok_or("README.md has no `## Use` section")?;
    let section = &readme[start + 1..];
    let section = section[3..]
        .find("\n## ")
        .map_or(section, |end| &section[..end + 3]);
    let manifest = code_block(section, "toml").ok_or("the Use section has no ```toml block")?;
    let program = code_block(section, "rust").ok_or("the Use section has no ```rust block")?;
    Ok(UseSection { manifest, program })
}

/// The first fenced block whose info string starts with `lang` (```rust,no_run counts as rust).
fn code_block(text: &str, lang: &str) -> Option<String> {
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        if info.split(',').next() != Some(lang) {
            continue;
        }
        let body: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.trim_start().starts_with("```"))
            .collect();
        return Some(body.join("\n") + "\n");
    }
    None
}

/// Builds and runs the README's program in a scratch crate next to a `basiq-rs` link to `root`.
pub fn check(root: &Path) -> Result<(), String> {
    let readme = std::fs::read_to_string(root.join("README.md"))
        .map_err(|e| format!("cannot read README.md: {e}"))?;
    let section = use_section(&readme)?;
    let scratch = std::env::temp_dir().join(format!("basiq-readme-{}", std::process::id()));
    let result = run_in(root, &scratch, &section);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn run_in(root: &Path, scratch: &Path, section: &UseSection) -> Result<(), String> {
    let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
    let _ = std::fs::remove_dir_all(scratch);
    let app = scratch.join("app");
    std::fs::create_dir_all(app.join("src")).map_err(|e| io("creating the scratch crate", e))?;
    link_checkout(root, &scratch.join("basiq-rs"))?;
    // Its own workspace (the empty table), so cargo never mistakes it for part of another.
    let manifest = format!(
        "[package]\nname = \"readme-app\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
         publish = false\n\n{}\n[workspace]\n",
        section.manifest
    );
    std::fs::write(app.join("Cargo.toml"), manifest).map_err(|e| io("writing Cargo.toml", e))?;
    std::fs::write(app.join("src/main.rs"), &section.program)
        .map_err(|e| io("writing src/main.rs", e))?;
    // The versions this checkout is tested with, as a user's first `cargo build` would pick
    // (cargo adds the app and drops what it does not need).
    std::fs::copy(root.join("Cargo.lock"), app.join("Cargo.lock"))
        .map_err(|e| io("copying Cargo.lock", e))?;

    let server = basiq_mock::MockServer::start();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    println!("    $ cd {} && cargo run", app.display());
    let output = Command::new(cargo)
        .args(["run", "--quiet"])
        .current_dir(&app)
        // Shares the workspace's build directory: the SDK's dependencies are already built.
        .env("CARGO_TARGET_DIR", target_dir(root))
        .env("BASIQ_API_KEY", server.api_key())
        .env("BASIQ_BASE_URL", server.url())
        .output()
        .map_err(|e| io("cannot start cargo", e))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "the README's program failed ({}):\n{stdout}{stderr}",
            output.status
        ));
    }
    print!("{}", indent(&stdout));
    if !stdout.contains("recent jobs") {
        return Err(format!(
            "the README's program did not print \"… has N recent jobs\":\n{stdout}"
        ));
    }
    if server.stats().token_requests != 1 {
        return Err(format!(
            "the README's program fetched {} tokens; one client caches one",
            server.stats().token_requests
        ));
    }
    Ok(())
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    | {l}\n")).collect()
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                root.join(dir)
            }
        })
        .unwrap_or_else(|| root.join("target"))
}

#[cfg(unix)]
fn link_checkout(root: &Path, link: &Path) -> Result<(), String> {
    std::os::unix::fs::symlink(root, link)
        .map_err(|e| format!("cannot link {} to the checkout: {e}", link.display()))
}

#[cfg(not(unix))]
fn link_checkout(root: &Path, link: &Path) -> Result<(), String> {
    std::os::windows::fs::symlink_dir(root, link)
        .map_err(|e| format!("cannot link {} to the checkout: {e}", link.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_use_section_yields_its_manifest_and_program() {
        let readme = "# x\n\n## Use\n\ntext\n\n```toml\n[dependencies]\nbasiq = \"0.1\"\n```\n\n\
                      ```rust,no_run\nfn main() {}\n```\n\n## Layout\n\n```rust\nnot this\n```\n";
        assert_eq!(
            use_section(readme),
            Ok(UseSection {
                manifest: "[dependencies]\nbasiq = \"0.1\"\n".into(),
                program: "fn main() {}\n".into(),
            })
        );
    }

    #[test]
    fn a_readme_without_the_blocks_is_an_error() {
        assert!(use_section("# x\n## Layout\n").is_err());
        assert!(use_section("# x\n\n## Use\n\n```toml\n[dependencies]\n```\n\n## Layout\n```rust\nfn main(){}\n```\n").is_err());
    }

    /// The repository's README really has the two blocks, the manifest depends on `basiq` by
    /// path next to the checkout, and the program reads the emulator's URL.
    #[test]
    fn this_repositorys_readme_has_a_runnable_use_section() {
        let root = crate::workspace_root();
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap_or_default();
        let section = use_section(&readme).unwrap_or_else(|e| panic!("{e}"));
        assert!(section
            .manifest
            .contains("basiq = { path = \"../basiq-rs/crates/basiq\" }"));
        assert!(section.program.contains("fn main()"));
        assert!(section.program.contains("BASIQ_BASE_URL"));
    }
}
