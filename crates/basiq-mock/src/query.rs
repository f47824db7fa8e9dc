//! Query-string helpers and the small subset of Basiq's filter syntax the emulator's own list
//! endpoints need (`eq`, `ne`, `in` joined by commas = AND), e.g.
//! `connection.id.eq('ab63cd')` or `connector.status.in('major-outage','partial-outage')`.
//!
//! Anything unsupported is a 400 `parameter-not-valid`, never silently ignored: an SDK that
//! builds a wrong filter should find out in tests.

use crate::error::ApiError;

/// Filter operators supported here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    In,
}

/// One `field.op(values)` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Condition {
    pub(crate) field: String,
    pub(crate) op: Op,
    pub(crate) values: Vec<String>,
}

impl Condition {
    /// Whether `value` satisfies this term.
    pub(crate) fn matches(&self, value: &str) -> bool {
        match self.op {
            Op::Eq | Op::In => self.values.iter().any(|v| v == value),
            Op::Ne => self.values.iter().all(|v| v != value),
        }
    }
}

/// Splits on `sep` outside quotes and parentheses.
fn split_top(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None::<char>, 0usize);
    for (i, ch) in s.char_indices() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(ch),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, c) if c == sep && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn bad(filter: &str, why: &str) -> ApiError {
    ApiError::invalid("filter", format!("Invalid filter '{filter}': {why}"))
}

/// Parses a `filter` parameter into AND-ed conditions.
pub(crate) fn parse_filter(filter: &str) -> Result<Vec<Condition>, ApiError> {
    let mut out = Vec::new();
    for term in split_top(filter, ',') {
        let term = term.trim();
        if term.is_empty() {
            continue;
        }
        let open = term
            .find('(')
            .ok_or_else(|| bad(filter, "expected field.op('value')"))?;
        if !term.ends_with(')') {
            return Err(bad(filter, "missing closing parenthesis"));
        }
        let head = &term[..open];
        let args = &term[open + 1..term.len() - 1];
        let (field, op) = head
            .rsplit_once('.')
            .ok_or_else(|| bad(filter, "expected field.op('value')"))?;
        let op = match op {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "in" => Op::In,
            other => {
                return Err(bad(
                    filter,
                    &format!("operator '{other}' is not supported here"),
                ))
            }
        };
        let mut values = Vec::new();
        for raw in split_top(args, ',') {
            let raw = raw.trim();
            let unquoted = raw
                .strip_prefix('\'')
                .and_then(|r| r.strip_suffix('\''))
                .or_else(|| raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
                .unwrap_or(raw);
            values.push(unquoted.to_owned());
        }
        if values.is_empty() || (op != Op::In && values.len() != 1) {
            return Err(bad(filter, "wrong number of values"));
        }
        out.push(Condition {
            field: field.to_owned(),
            op,
            values,
        });
    }
    Ok(out)
}

/// Parses a raw query string into pairs; a malformed one is a 400.
pub(crate) fn pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    match raw {
        None => Ok(Vec::new()),
        Some(q) => serde_urlencoded::from_str(q)
            .map_err(|e| ApiError::invalid("query", format!("Query string is not valid: {e}"))),
    }
}

/// The value of one query parameter.
pub(crate) fn param(raw: Option<&str>, name: &str) -> Result<Option<String>, ApiError> {
    Ok(pairs(raw)?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v))
}

/// The parsed `filter` parameter, restricted to `allowed` field names.
pub(crate) fn filter(raw: Option<&str>, allowed: &[&str]) -> Result<Vec<Condition>, ApiError> {
    let Some(f) = param(raw, "filter")? else {
        return Ok(Vec::new());
    };
    let conds = parse_filter(&f)?;
    for c in &conds {
        if !allowed.contains(&c.field.as_str()) {
            return Err(bad(
                &f,
                &format!(
                    "field '{}' cannot be filtered on; use one of: {}",
                    c.field,
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(conds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_terms_and_lists() {
        let c = parse_filter("connection.id.eq('ab,6'),connector.status.in('a','b')")
            .unwrap_or_default();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].values, vec!["ab,6"]);
        assert_eq!(c[1].op, Op::In);
        assert!(c[1].matches("b"));
        assert!(parse_filter("nonsense").is_err());
        assert!(parse_filter("a.gt('1')").is_err());
    }
}
