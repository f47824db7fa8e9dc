//! A thin, path-tracking view over `serde_norway::Value`.
//!
//! Every accessor knows where it is in the document (`paths./users.post.responses.201`), so an
//! unexpected construct becomes an error that names its place instead of a panic or a silently
//! ignored key. Maps keep the YAML's order (serde_norway's `Mapping` is order-preserving), which
//! is what makes the generated code deterministic.

use serde_norway::{Mapping, Value};

use super::Error;

/// A YAML mapping and where it sits in the document.
#[derive(Debug, Clone)]
pub struct Obj<'a> {
    map: &'a Mapping,
    at: String,
}

/// A mapping entry: its key as text and the value with its path.
pub struct Entry<'a> {
    pub key: String,
    pub at: String,
    pub value: &'a Value,
}

impl<'a> Obj<'a> {
    /// Views `value` as a mapping, or errors naming `at`.
    pub fn new(value: &'a Value, at: impl Into<String>) -> Result<Self, Error> {
        let at = at.into();
        match value {
            Value::Mapping(map) => Ok(Self { map, at }),
            other => Err(Error::at(
                &at,
                format!("expected a mapping, found {}", kind(other)),
            )),
        }
    }

    /// Where this mapping is.
    pub fn at(&self) -> &str {
        &self.at
    }

    /// The path of a child key.
    pub fn child(&self, key: &str) -> String {
        if self.at.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.at)
        }
    }

    /// Fails on any key outside `allowed`: an unsupported construct must be loud, not ignored.
    pub fn only(&self, allowed: &[&str]) -> Result<(), Error> {
        for (key, _) in self.map {
            let key = key_text(key, &self.at)?;
            if !allowed.contains(&key.as_str()) {
                return Err(Error::at(
                    &self.at,
                    format!(
                        "unsupported key `{key}` (supported here: {})",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether `key` is present.
    pub fn has(&self, key: &str) -> bool {
        self.map.get(key).is_some()
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    /// An optional string.
    pub fn str(&self, key: &str) -> Result<Option<&'a str>, Error> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(Error::at(
                &self.child(key),
                format!("expected a string, found {}", kind(other)),
            )),
        }
    }

    /// A required string.
    pub fn req_str(&self, key: &str) -> Result<&'a str, Error> {
        self.str(key)?
            .ok_or_else(|| Error::at(&self.at, format!("missing required key `{key}`")))
    }

    /// An optional boolean.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, Error> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(Error::at(
                &self.child(key),
                format!("expected true or false, found {}", kind(other)),
            )),
        }
    }

    /// An optional number, as `f64` (only used for `minimum`).
    pub fn number(&self, key: &str) -> Result<Option<f64>, Error> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .map(Some)
                .ok_or_else(|| Error::at(&self.child(key), "number out of range".to_owned())),
            Some(other) => Err(Error::at(
                &self.child(key),
                format!("expected a number, found {}", kind(other)),
            )),
        }
    }

    /// An optional list of strings.
    pub fn str_list(&self, key: &str) -> Result<Option<Vec<&'a str>>, Error> {
        let Some(value) = self.map.get(key) else {
            return Ok(None);
        };
        let at = self.child(key);
        let Value::Sequence(items) = value else {
            return Err(Error::at(
                &at,
                format!("expected a list, found {}", kind(value)),
            ));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.as_str()),
                other => Err(Error::at(
                    &format!("{at}[{i}]"),
                    format!("expected a string, found {}", kind(other)),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// An optional list of values.
    pub fn seq(&self, key: &str) -> Result<Option<&'a [Value]>, Error> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Sequence(items)) => Ok(Some(items.as_slice())),
            Some(other) => Err(Error::at(
                &self.child(key),
                format!("expected a list, found {}", kind(other)),
            )),
        }
    }

    /// The entries of the mapping under `key` (empty when absent), in document order.
    pub fn entries(&self, key: &str) -> Result<Vec<Entry<'a>>, Error> {
        let Some(value) = self.map.get(key) else {
            return Ok(Vec::new());
        };
        let at = self.child(key);
        let Value::Mapping(map) = value else {
            return Err(Error::at(
                &at,
                format!("expected a mapping, found {}", kind(value)),
            ));
        };
        map.iter()
            .map(|(k, v)| {
                let key = key_text(k, &at)?;
                Ok(Entry {
                    at: format!("{at}.{key}"),
                    key,
                    value: v,
                })
            })
            .collect()
    }
}

/// A mapping key as text. Numeric keys (an unquoted `200:`) are accepted as their digits.
fn key_text(key: &Value, at: &str) -> Result<String, Error> {
    match key {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(Error::at(
            at,
            format!("expected string keys, found a {} key", kind(other)),
        )),
    }
}

/// A short name for a YAML value's kind, for error messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}
