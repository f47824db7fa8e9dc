//! `cargo xtask ci` step "docs: every cited document is in the repository".
//!
//! Code comments and docs cite documents (`docs/basiq-api.md §4.3`, `[codegen](codegen.md)`).
//! A citation of a file a reader cannot open — the founders' notes outside the repository, a
//! renamed page — is a dead end, so every tracked text file is scanned for:
//!
//! - a Markdown file name (`something.md`, with or without a path) that matches no tracked file
//!   (relative to the citing file, to the repository root, or by file name), URLs excepted: they
//!   name documents elsewhere on purpose;
//! - the ways documents outside the repository used to be cited.
//!
//! This file is the one exception: its tests cite missing documents on purpose.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Citation forms of documents that live outside the repository.
const OUTSIDE: &[&str] = &[
    concat!("basiq-api", "-facts"),
    concat!("DESIGN", ".md"),
    concat!("DESIGN ", "§"),
    concat!("facts ", "§"),
    concat!("/work", "/shared"),
];

/// Where this check lives (its tests are made of dead citations).
const THIS_FILE: &str = "xtask/src/citations.rs";

/// One citation that leads nowhere.
#[derive(Debug, PartialEq, Eq)]
pub struct DeadCitation {
    pub file: String,
    pub line: usize,
    pub cited: String,
}

impl std::fmt::Display for DeadCitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: cites `{}`, which is not in the repository",
            self.file, self.line, self.cited
        )
    }
}

/// Scans every file `git ls-files` lists under `root`.
pub fn check(root: &Path) -> Result<(), String> {
    let output = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run git ls-files: {e}"))?;
    if !output.status.success() {
        return Err(format!("git ls-files exited with {}", output.status));
    }
    let tracked: Vec<String> = output
        .stdout
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let mut dead = Vec::new();
    for file in tracked.iter().filter(|f| *f != THIS_FILE) {
        // Binary or unreadable (a symlink to a directory, a deleted file): nothing to cite.
        let Ok(text) = std::fs::read_to_string(root.join(file)) else {
            continue;
        };
        dead.extend(dead_citations(file, &text, &tracked));
    }
    if dead.is_empty() {
        println!(
            "    {} tracked files, every cited document exists",
            tracked.len()
        );
        Ok(())
    } else {
        let list: Vec<String> = dead.iter().map(ToString::to_string).collect();
        Err(format!(
            "{} citation(s) of documents that are not in the repository (cite docs/basiq-api.md \
             or docs/architecture.md instead):\n  {}",
            dead.len(),
            list.join("\n  ")
        ))
    }
}

/// The dead citations in `text` (the contents of `file`), given every tracked path.
pub fn dead_citations(file: &str, text: &str, tracked: &[String]) -> Vec<DeadCitation> {
    let names: BTreeSet<&str> = tracked
        .iter()
        .map(|p| p.rsplit('/').next().unwrap_or(p))
        .collect();
    let dir = file.rsplit_once('/').map_or("", |(dir, _)| dir);
    let mut dead = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = without_urls(line);
        for outside in OUTSIDE {
            if line.contains(outside) {
                dead.push(DeadCitation {
                    file: file.to_owned(),
                    line: line_no,
                    cited: (*outside).to_owned(),
                });
            }
        }
        for cited in markdown_names(&line) {
            if !resolves(cited, dir, tracked, &names) {
                dead.push(DeadCitation {
                    file: file.to_owned(),
                    line: line_no,
                    cited: cited.to_owned(),
                });
            }
        }
    }
    dead
}

/// `line` with every `http://…` / `https://…` URL blanked out.
fn without_urls(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = [rest.find("http://"), rest.find("https://")]
        .into_iter()
        .flatten()
        .min()
    {
        let (before, url) = rest.split_at(at);
        out.push_str(before);
        out.push(' ');
        let end = url
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '>' | '"' | '\'' | '`'))
            .unwrap_or(url.len());
        rest = &url[end..];
    }
    out.push_str(rest);
    out
}

/// Path-like words ending in `.md` (`docs/x.md`, `../README.md`, `x.md#anchor` → `x.md`).
fn markdown_names(line: &str) -> Vec<&str> {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '_' | '-')))
        .map(|word| word.trim_end_matches('.'))
        .filter(|word| {
            word.len() > 3
                && word.ends_with(".md")
                && word[..word.len() - 3]
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
        .collect()
}

fn resolves(cited: &str, dir: &str, tracked: &[String], names: &BTreeSet<&str>) -> bool {
    let cited = cited.trim_start_matches("./");
    if !cited.contains('/') {
        return names.contains(cited);
    }
    let from_dir = normalize(&format!("{dir}/{cited}"));
    let from_root = normalize(cited);
    tracked.iter().any(|path| {
        Some(path.as_str()) == from_dir.as_deref()
            || Some(path.as_str()) == from_root.as_deref()
            // `crates/basiq/README.md` cited as `basiq/README.md`, a path below some folder.
            || path.ends_with(&format!("/{cited}"))
    })
}

/// `a/b/../c` → `a/c`; `None` when `..` climbs out of the repository.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracked() -> Vec<String> {
        [
            "README.md",
            "docs/basiq-api.md",
            "docs/codegen.md",
            "crates/basiq/README.md",
        ]
        .map(String::from)
        .to_vec()
    }

    fn cited(file: &str, text: &str) -> Vec<String> {
        dead_citations(file, text, &tracked())
            .into_iter()
            .map(|d| d.cited)
            .collect()
    }

    #[test]
    fn citations_of_tracked_documents_pass() {
        let text = "see docs/basiq-api.md §4.3, [codegen](codegen.md#scope), ../README.md,\n\
                    `basiq-api.md §7`, crates/basiq/README.md and basiq/README.md.";
        assert_eq!(cited("docs/architecture.md", text), Vec::<String>::new());
        assert_eq!(
            cited("crates/basiq/src/lib.rs", "(../README.md)"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_missing_document_is_reported_with_its_line() {
        let dead = dead_citations("docs/a.md", "ok\nsee [x](docs/gone.md)\n", &tracked());
        assert_eq!(
            dead,
            vec![DeadCitation {
                file: "docs/a.md".into(),
                line: 2,
                cited: "docs/gone.md".into()
            }]
        );
        assert_eq!(
            cited("docs/a.md", "../../outside.md"),
            vec!["../../outside.md"]
        );
    }

    #[test]
    fn documents_outside_the_repository_are_reported_however_cited() {
        let facts = format!("{}{}", "facts ", "§4.3");
        let design = format!("(DESIGN{} §2)", ".md");
        let shared = format!("{}{}", "/work/shared/", "x.json");
        for text in [facts, design, shared] {
            assert!(!cited("src/lib.rs", &text).is_empty(), "{text}");
        }
    }

    #[test]
    fn urls_are_not_citations_of_repository_files() {
        let text =
            "<https://github.com/basiqio-oss/Basiq-docs/blob/v3.0/reference/testing.md> and \
                    [x](https://example.com/a/b.md)";
        assert_eq!(cited("docs/a.md", text), Vec::<String>::new());
        assert_eq!(
            cited("docs/a.md", "https://x.io/a.md gone.md"),
            vec!["gone.md"]
        );
    }

    #[test]
    fn words_that_merely_end_in_md_are_not_file_names() {
        assert_eq!(cited("a.rs", "cmd .md a.md.bak"), Vec::<String>::new());
        assert_eq!(cited("a.rs", "see notes.md."), vec!["notes.md"]);
    }
}
