//! `cargo xtask ci` step "deps: no unused dependency".
//!
//! A dependency nobody uses still costs every user its compile time and its supply-chain risk,
//! and a dev-dependency nobody uses slows every test build. For each workspace member this reads
//! its manifest and fails when a declared dependency's crate name never appears as a path in the
//! sources that can use it:
//!
//! - `[dependencies]`: `src/` and `build.rs` (a crate used only by tests belongs in
//!   `[dev-dependencies]`);
//! - `[dev-dependencies]`: `src/` (unit tests), `tests/`, `benches/`, `examples/`.
//!
//! "Appears" means `name::`, `use name`, `extern crate name` or `name!` with the crate name in
//! its Rust spelling (`serde_json` for `serde-json`, the rename for `package = …`), outside
//! comments, also in modules included with `#[path = …]`. An entry of `[workspace.dependencies]`
//! that no member uses fails too (unless it is a member itself). A member
//! depending on itself (to turn on its own features in tests) is not a use to check.
//!
//! Dependencies that are declared only to pick features of another crate, and so never
//! appear by name, are listed in [`FEATURE_ONLY`] with the reason.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table};

/// `(member, dependency, why)`: declared for its features only, never named in code.
pub const FEATURE_ONLY: &[(&str, &str, &str)] = &[];

/// One dependency declared but not used.
#[derive(Debug, PartialEq, Eq)]
pub struct Unused {
    pub manifest: String,
    pub section: &'static str,
    pub name: String,
}

impl std::fmt::Display for Unused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: `{}` in [{}] is never used",
            self.manifest, self.name, self.section
        )
    }
}

/// Checks every member of the workspace at `root`.
pub fn check(root: &Path) -> Result<(), String> {
    let root_manifest = read_manifest(&root.join("Cargo.toml"))?;
    let members = members(&root_manifest);
    let mut unused = Vec::new();
    let mut used_from_workspace = BTreeSet::new();
    for member in &members {
        let dir = root.join(member);
        let manifest = read_manifest(&dir.join("Cargo.toml"))?;
        let package = manifest
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(Item::as_str)
            .unwrap_or_default()
            .to_owned();
        for (section, deps) in dependency_tables(&manifest) {
            for (key, spec) in deps.iter() {
                if spec_is_workspace(spec) {
                    used_from_workspace.insert(key.to_owned());
                }
                if key == package {
                    continue;
                }
                if FEATURE_ONLY
                    .iter()
                    .any(|(m, d, _)| *m == package && *d == key)
                {
                    continue;
                }
                let sources = sources_for(&dir, section);
                if !is_used(&rust_name(key), &sources) {
                    unused.push(Unused {
                        manifest: format!("{member}/Cargo.toml"),
                        section,
                        name: key.to_owned(),
                    });
                }
            }
        }
    }
    if let Some(workspace_deps) = root_manifest
        .get("workspace")
        .and_then(|w| w.get("dependencies"))
        .and_then(Item::as_table_like)
    {
        for (key, spec) in workspace_deps.iter() {
            // A member of this workspace, shared for the crates that will use it: no cost.
            let is_member = spec
                .as_table_like()
                .and_then(|t| t.get("path"))
                .and_then(Item::as_str)
                .is_some_and(|path| members.iter().any(|m| m == path));
            if !is_member && !used_from_workspace.contains(key) {
                unused.push(Unused {
                    manifest: "Cargo.toml".into(),
                    section: "workspace.dependencies",
                    name: key.to_owned(),
                });
            }
        }
    }
    if unused.is_empty() {
        println!("    {} members, every dependency is used", members.len());
        Ok(())
    } else {
        let list: Vec<String> = unused.iter().map(ToString::to_string).collect();
        Err(format!(
            "unused dependencies (remove them, move them to the section that uses them, or \
             list a feature-only one in xtask/src/unused_deps.rs FEATURE_ONLY):\n  {}",
            list.join("\n  ")
        ))
    }
}

fn read_manifest(path: &Path) -> Result<DocumentMut, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.parse::<DocumentMut>()
        .map_err(|e| format!("cannot parse {}: {e}", path.display()))
}

fn members(root: &DocumentMut) -> Vec<String> {
    root.get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(Item::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// `[dependencies]`, `[dev-dependencies]`, `[build-dependencies]`, and the same under
/// `[target.'cfg(..)']`.
fn dependency_tables(manifest: &DocumentMut) -> Vec<(&'static str, &dyn toml_edit::TableLike)> {
    const SECTIONS: [&str; 3] = ["dependencies", "dev-dependencies", "build-dependencies"];
    let mut tables: Vec<&Table> = vec![manifest.as_table()];
    if let Some(targets) = manifest.get("target").and_then(Item::as_table) {
        tables.extend(targets.iter().filter_map(|(_, target)| target.as_table()));
    }
    let mut out = Vec::new();
    for table in tables {
        for section in SECTIONS {
            if let Some(deps) = table.get(section).and_then(Item::as_table_like) {
                out.push((section, deps));
            }
        }
    }
    out
}

fn spec_is_workspace(spec: &Item) -> bool {
    spec.as_table_like()
        .and_then(|t| t.get("workspace"))
        .and_then(Item::as_bool)
        .unwrap_or(false)
}

/// How Rust code names the crate: `-` becomes `_` (a `package = …` rename is the key itself).
fn rust_name(key: &str) -> String {
    key.replace('-', "_")
}

/// The source files a dependency of `section` may be used from.
fn sources_for(dir: &Path, section: &str) -> Vec<PathBuf> {
    let folders: &[&str] = match section {
        "dependencies" => &["src"],
        "build-dependencies" => &[],
        _ => &["src", "tests", "benches", "examples"],
    };
    let mut files = Vec::new();
    for folder in folders {
        rust_files(&dir.join(folder), &mut files);
    }
    if section != "dev-dependencies" {
        let build = dir.join("build.rs");
        if build.is_file() {
            files.push(build);
        }
    }
    files
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_used(name: &str, files: &[PathBuf]) -> bool {
    files.iter().any(|file| {
        std::fs::read_to_string(file).is_ok_and(|text| {
            mentions(name, &text)
                // A module included from elsewhere (`#[path = "../../x/tests/support/y.rs"]`)
                // is compiled as part of this file.
                || path_includes(&text).iter().any(|included| {
                    let included = file.parent().map_or_else(|| included.into(), |d| d.join(included));
                    std::fs::read_to_string(included).is_ok_and(|t| mentions(name, &t))
                })
        })
    })
}

/// The files `#[path = "…"]` attributes in `text` point at.
fn path_includes(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let rest = line
                .trim()
                .strip_prefix("#[path")?
                .trim_start()
                .strip_prefix('=')?;
            let quoted = rest.trim().strip_prefix('"')?;
            quoted.split('"').next().map(String::from)
        })
        .collect()
}

/// Whether `text` (Rust source) uses the crate `name` as a path, outside `//` comments.
pub fn mentions(name: &str, text: &str) -> bool {
    text.lines().any(|line| {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find(name) {
            let before = rest[..at].chars().next_back();
            let after = &rest[at + name.len()..];
            let starts_word = !before.is_some_and(|c| c.is_alphanumeric() || c == '_');
            let as_path = after.starts_with("::") || after.starts_with('!');
            let prefix = rest[..at].trim_end();
            let after_use = prefix.ends_with("use")
                || prefix.ends_with("extern crate")
                || prefix.ends_with("pub use");
            let ends_word = !after
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
            if starts_word && (as_path || (after_use && ends_word)) {
                return true;
            }
            rest = &rest[at + name.len()..];
        }
        false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_uses_and_macros_count_as_uses() {
        assert!(mentions("serde_json", "let v = serde_json::json!({});"));
        assert!(mentions("tokio", "#[tokio::main]"));
        assert!(mentions("hmac", "use hmac::{Hmac, Mac};"));
        assert!(mentions("base64", "use base64;"));
        assert!(mentions("quote", "let t = quote!(x);"));
        assert!(mentions("url", "    url::Url::parse(s)"));
    }

    #[test]
    fn names_in_comments_strings_or_other_words_do_not() {
        assert!(!mentions("url", "// url::Url is parsed elsewhere"));
        assert!(!mentions("url", "let base_url = x;"));
        assert!(!mentions("http", "let https = 1; let my_http::x = 2;"));
        assert!(!mentions("criterion", "fn bench() {}"));
        assert!(!mentions(
            "percent_encoding",
            "let percent_encoding_table = 1;"
        ));
    }

    /// A scratch workspace with one member that declares a dependency it never uses (and one
    /// it does): the check must fail, naming exactly the unused one; once it is used, pass.
    #[test]
    fn an_unused_dependency_fails_the_check() {
        let root = std::env::temp_dir().join(format!("xtask-unused-{}", std::process::id()));
        let member = root.join("crates/a");
        std::fs::create_dir_all(member.join("src")).unwrap();
        std::fs::create_dir_all(member.join("tests")).unwrap();
        std::fs::write(
            root.join("Cargo.toml"),
            "[workspace]\nmembers = [\"crates/a\"]\n\n[workspace.dependencies]\nserde = \"1\"\n\
             itoa = \"1\"\nnever = \"1\"\n",
        )
        .unwrap();
        std::fs::write(
            member.join("Cargo.toml"),
            "[package]\nname = \"a\"\n\n[dependencies]\nserde.workspace = true\n\
             percent-encoding = \"2\"\n\n[dev-dependencies]\nitoa.workspace = true\n",
        )
        .unwrap();
        std::fs::write(member.join("src/lib.rs"), "pub use serde::Serialize;\n").unwrap();
        std::fs::write(
            member.join("tests/t.rs"),
            "#[test] fn t() { itoa::Buffer::new(); }\n",
        )
        .unwrap();

        let error = check(&root).unwrap_err();
        assert!(
            error.contains("`percent-encoding` in [dependencies]"),
            "{error}"
        );
        assert!(
            error.contains("`never` in [workspace.dependencies]"),
            "{error}"
        );
        assert!(
            !error.contains("`serde`") && !error.contains("`itoa`"),
            "{error}"
        );

        std::fs::write(
            member.join("src/lib.rs"),
            "pub use serde::Serialize;\npub use percent_encoding::NON_ALPHANUMERIC;\n",
        )
        .unwrap();
        std::fs::write(
            root.join("Cargo.toml"),
            "[workspace]\nmembers = [\"crates/a\"]\n\n[workspace.dependencies]\nserde = \"1\"\n\
             itoa = \"1\"\n",
        )
        .unwrap();
        let result = check(&root);
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!(result, Ok(()));
    }

    #[test]
    fn a_dependency_used_only_by_tests_is_not_a_normal_dependency() {
        let root = std::env::temp_dir().join(format!("xtask-devonly-{}", std::process::id()));
        let member = root.join("m");
        std::fs::create_dir_all(member.join("src")).unwrap();
        std::fs::create_dir_all(member.join("tests")).unwrap();
        std::fs::write(root.join("Cargo.toml"), "[workspace]\nmembers = [\"m\"]\n").unwrap();
        std::fs::write(
            member.join("Cargo.toml"),
            "[package]\nname = \"m\"\n\n[dependencies]\nitoa = \"1\"\n",
        )
        .unwrap();
        std::fs::write(member.join("src/lib.rs"), "").unwrap();
        std::fs::write(member.join("tests/t.rs"), "use itoa::Buffer;\n").unwrap();
        let result = check(&root);
        let _ = std::fs::remove_dir_all(&root);
        assert!(result.unwrap_err().contains("`itoa` in [dependencies]"));
    }
}
