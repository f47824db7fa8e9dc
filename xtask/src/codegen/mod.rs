//! `cargo xtask codegen [--check]`: generates basiq-core's models and operations from our
//! OpenAPI document.
//!
//! Pipeline: [`spec::parse`] reads `fixtures/openapi/basiq.yaml` into a small checked model
//! (rejecting any construct it does not understand, with the place it found it), then
//! [`emit`] prints Rust with `quote!` + `prettyplease`. Everything iterates in document order,
//! so the same document always yields the same bytes. See docs/codegen.md.

mod emit;
mod facade;
mod spec;
mod yaml;

use std::fmt;
use std::fs;
use std::path::Path;

/// The document, relative to the workspace root.
pub const SPEC_PATH: &str = "fixtures/openapi/basiq.yaml";

/// A problem in the document (or in reading or writing files), with where it is.
#[derive(Debug)]
pub struct Error {
    at: String,
    message: String,
}

impl Error {
    /// An error at a place: a dotted path into the document, or a file path.
    pub fn at(at: &str, message: String) -> Self {
        Self {
            at: at.to_owned(),
            message,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.at.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.at, self.message)
        }
    }
}

impl std::error::Error for Error {}

/// One generated file: where it goes (relative to the workspace root) and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub path: &'static str,
    pub contents: String,
}

/// Generates every file from the document text. Pure: no IO, so tests can feed it anything.
pub fn generate_from_str(spec_text: &str) -> Result<Vec<Generated>, Error> {
    let api = spec::parse(spec_text).map_err(|e| Error {
        at: format!("{SPEC_PATH}: {}", e.at),
        message: e.message,
    })?;
    Ok(vec![
        Generated {
            path: "crates/basiq-core/src/api/models.rs",
            contents: emit::models(&api, SPEC_PATH)?,
        },
        Generated {
            path: "crates/basiq-core/src/api/operations.rs",
            contents: emit::operations(&api, SPEC_PATH)?,
        },
        Generated {
            path: "crates/basiq/src/endpoints.rs",
            contents: facade::endpoints(&api, SPEC_PATH)?,
        },
    ])
}

/// Reads the document under `root` and generates every file.
pub fn generate(root: &Path) -> Result<Vec<Generated>, Error> {
    let spec_path = root.join(SPEC_PATH);
    let text = fs::read_to_string(&spec_path).map_err(|e| {
        Error::at(
            &spec_path.display().to_string(),
            format!("cannot read: {e}"),
        )
    })?;
    generate_from_str(&text)
}

/// The generated files whose contents on disk differ from `files` (missing files included).
pub fn stale(root: &Path, files: &[Generated]) -> Vec<&'static str> {
    files
        .iter()
        .filter(|file| {
            fs::read_to_string(root.join(file.path)).map_or(true, |disk| disk != file.contents)
        })
        .map(|file| file.path)
        .collect()
}

/// `codegen --check`: regenerates in memory and fails, naming the files, if any is stale.
pub fn check(root: &Path) -> Result<(), Error> {
    let files = generate(root)?;
    let stale = stale(root, &files);
    if stale.is_empty() {
        Ok(())
    } else {
        Err(Error::at(
            "",
            format!(
                "generated files are stale (out of date with {SPEC_PATH}): {}\n\
                 run `cargo xtask codegen` and commit the result",
                stale.join(", ")
            ),
        ))
    }
}

/// `codegen`: writes the files that changed; returns the paths written.
pub fn write(root: &Path) -> Result<Vec<&'static str>, Error> {
    let files = generate(root)?;
    let stale = stale(root, &files);
    for file in files.iter().filter(|f| stale.contains(&f.path)) {
        let path = root.join(file.path);
        fs::write(&path, &file.contents)
            .map_err(|e| Error::at(&path.display().to_string(), format!("cannot write: {e}")))?;
    }
    Ok(stale)
}

#[cfg(test)]
mod tests;
