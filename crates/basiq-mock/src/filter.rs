//! Basiq's collection filter syntax (basiq-api.md §7), parsed strictly so the SDK's filter builder meets
//! the same pushback the real API gives.
//!
//! Grammar (whitespace allowed around commas and parentheses):
//! ```text
//! filter  := clause ( ',' clause )*            -- AND of all clauses
//! clause  := path '.' op '(' value ( ',' value )* ')'
//! path    := ident ( '.' ident )+              -- e.g. transaction.postDate, connector.institution.tier
//! op      := eq | ne | gt | gteq | lt | lteq | bt | in
//! value   := "'" any character except "'" "'"
//! ```
//! `bt` takes exactly two values (inclusive range), `in` one or more, the others exactly one.
//! The query extractor has already percent-decoded the string.
//!
//! The parser is generic (no field list); each endpoint validates the fields and operators it
//! supports with [`Filter::validate`], so connections, jobs and connectors can reuse it.

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `eq('v')`
    Eq,
    /// `ne('v')`
    Ne,
    /// `gt('v')`
    Gt,
    /// `gteq('v')`
    Gteq,
    /// `lt('v')`
    Lt,
    /// `lteq('v')`
    Lteq,
    /// `bt('a','b')`, inclusive on both ends.
    Bt,
    /// `in('a','b',…)`
    In,
}

impl Op {
    fn from_name(name: &str) -> Option<Op> {
        Some(match name {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "gteq" => Op::Gteq,
            "lt" => Op::Lt,
            "lteq" => Op::Lteq,
            "bt" => Op::Bt,
            "in" => Op::In,
            _ => return None,
        })
    }

    /// The operator's name as written in a filter.
    pub fn name(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Gt => "gt",
            Op::Gteq => "gteq",
            Op::Lt => "lt",
            Op::Lteq => "lteq",
            Op::Bt => "bt",
            Op::In => "in",
        }
    }

    /// All operators, for endpoints that accept any.
    pub const ALL: &'static [Op] = &[
        Op::Eq,
        Op::Ne,
        Op::Gt,
        Op::Gteq,
        Op::Lt,
        Op::Lteq,
        Op::Bt,
        Op::In,
    ];
}

/// One `path.op(values)` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// The dotted field path, e.g. `transaction.postDate`.
    pub field: String,
    /// The operator.
    pub op: Op,
    /// The unquoted values (one, two for `bt`, one or more for `in`).
    pub values: Vec<String>,
}

/// A parsed filter: all clauses must match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    /// The clauses, in the order written.
    pub clauses: Vec<Clause>,
}

/// Why a filter was rejected; the message goes into the 400 `parameter-not-valid` detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    message: String,
}

impl FilterError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// Human-readable reason.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid filter: {}", self.message)
    }
}

impl std::error::Error for FilterError {}

/// A cursor over the characters of the input, tracking the byte offset for error messages.
struct Scanner<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<char> {
        self.src.get(self.pos..)?.chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn expect(&mut self, want: char) -> Result<(), FilterError> {
        self.skip_ws();
        match self.bump() {
            Some(c) if c == want => Ok(()),
            Some(c) => Err(FilterError::new(format!(
                "expected '{want}' at offset {}, found '{c}'",
                self.pos - c.len_utf8()
            ))),
            None => Err(FilterError::new(format!(
                "expected '{want}' but the filter ended"
            ))),
        }
    }

    fn ident(&mut self) -> &'a str {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            self.bump();
        }
        self.src.get(start..self.pos).unwrap_or("")
    }

    fn quoted(&mut self) -> Result<String, FilterError> {
        self.skip_ws();
        match self.bump() {
            Some('\'') => {}
            Some(c) => {
                return Err(FilterError::new(format!(
                    "values must be single-quoted, found '{c}' at offset {}",
                    self.pos - c.len_utf8()
                )))
            }
            None => return Err(FilterError::new("expected a quoted value")),
        }
        let start = self.pos;
        loop {
            match self.bump() {
                Some('\'') => {
                    return Ok(self.src.get(start..self.pos - 1).unwrap_or("").to_string())
                }
                Some(_) => {}
                None => return Err(FilterError::new("unterminated quoted value")),
            }
        }
    }

    fn clause(&mut self) -> Result<Clause, FilterError> {
        self.skip_ws();
        let mut segments = Vec::new();
        loop {
            let seg = self.ident();
            if seg.is_empty() {
                return Err(match self.peek() {
                    Some(c) => FilterError::new(format!(
                        "expected a field name at offset {}, found '{c}'",
                        self.pos
                    )),
                    None => FilterError::new("expected a field name but the filter ended"),
                });
            }
            segments.push(seg);
            match self.peek() {
                Some('.') => {
                    self.bump();
                }
                _ => break,
            }
        }
        let Some((op_name, path)) = segments.split_last() else {
            return Err(FilterError::new("empty clause"));
        };
        if path.len() < 2 {
            return Err(FilterError::new(format!(
                "'{}' is not <entity>.<property>.<operator>(...)",
                segments.join(".")
            )));
        }
        let op = Op::from_name(op_name)
            .ok_or_else(|| FilterError::new(format!("unknown operator '{op_name}'")))?;
        self.expect('(')?;
        let mut values = vec![self.quoted()?];
        loop {
            self.skip_ws();
            match self.bump() {
                Some(',') => values.push(self.quoted()?),
                Some(')') => break,
                Some(c) => {
                    return Err(FilterError::new(format!(
                        "expected ',' or ')' at offset {}, found '{c}'",
                        self.pos - c.len_utf8()
                    )))
                }
                None => return Err(FilterError::new("unbalanced parenthesis")),
            }
        }
        let arity_ok = match op {
            Op::Bt => values.len() == 2,
            Op::In => !values.is_empty(),
            _ => values.len() == 1,
        };
        if !arity_ok {
            return Err(FilterError::new(format!(
                "operator '{}' does not take {} value(s)",
                op.name(),
                values.len()
            )));
        }
        Ok(Clause {
            field: path.join("."),
            op,
            values,
        })
    }
}

/// Parses a filter string. Never panics; every malformed input is a [`FilterError`].
pub fn parse(s: &str) -> Result<Filter, FilterError> {
    let mut sc = Scanner { src: s, pos: 0 };
    sc.skip_ws();
    if sc.peek().is_none() {
        return Err(FilterError::new("the filter is empty"));
    }
    let mut clauses = vec![sc.clause()?];
    loop {
        sc.skip_ws();
        match sc.bump() {
            None => break,
            Some(',') => clauses.push(sc.clause()?),
            Some(c) => {
                return Err(FilterError::new(format!(
                    "expected ',' between clauses at offset {}, found '{c}'",
                    sc.pos - c.len_utf8()
                )))
            }
        }
    }
    Ok(Filter { clauses })
}

impl Filter {
    /// Checks every clause against the fields and operators an endpoint supports; the emulator
    /// answers 400 `parameter-not-valid` with this message otherwise (an unsupported field must
    /// not silently match everything, or an SDK typo would go unnoticed).
    pub fn validate(&self, fields: &[&str], ops: &[Op]) -> Result<(), FilterError> {
        for c in &self.clauses {
            if !fields.contains(&c.field.as_str()) {
                return Err(FilterError::new(format!(
                    "unsupported filter field '{}'; supported: {}",
                    c.field,
                    fields.join(", ")
                )));
            }
            if !ops.contains(&c.op) {
                return Err(FilterError::new(format!(
                    "operator '{}' is not supported here",
                    c.op.name()
                )));
            }
        }
        Ok(())
    }

    /// True when every clause matches. `resolve` maps a field path to the item's value; a
    /// missing/null value matches nothing (not even `ne`), like SQL NULL.
    pub fn matches(&self, resolve: impl Fn(&str) -> Option<String>) -> bool {
        self.clauses.iter().all(|c| {
            let Some(actual) = resolve(&c.field) else {
                return false;
            };
            let cmp = |v: &String| compare(&actual, v);
            match c.op {
                Op::Eq => c.values.first().is_some_and(|v| cmp(v) == Ordering::Equal),
                Op::Ne => c.values.first().is_some_and(|v| cmp(v) != Ordering::Equal),
                Op::Gt => c
                    .values
                    .first()
                    .is_some_and(|v| cmp(v) == Ordering::Greater),
                Op::Gteq => c.values.first().is_some_and(|v| cmp(v) != Ordering::Less),
                Op::Lt => c.values.first().is_some_and(|v| cmp(v) == Ordering::Less),
                Op::Lteq => c
                    .values
                    .first()
                    .is_some_and(|v| cmp(v) != Ordering::Greater),
                Op::Bt => match (c.values.first(), c.values.get(1)) {
                    (Some(lo), Some(hi)) => {
                        cmp(lo) != Ordering::Less && cmp(hi) != Ordering::Greater
                    }
                    _ => false,
                },
                Op::In => c.values.iter().any(|v| cmp(v) == Ordering::Equal),
            }
        })
    }
}

/// `YYYY-MM-DD` prefix of a date or RFC 3339 timestamp.
fn date_prefix(s: &str) -> Option<&str> {
    let p = s.get(..10)?;
    let b = p.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    (digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10)).then_some(p)
}

/// An exact decimal as (mantissa, scale-adjusted) i128 with 18 fractional digits; `None` when
/// the text is not a plain decimal. Money is never compared as f64.
fn decimal(s: &str) -> Option<i128> {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if int.len() > 19 || frac.len() > 18 {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int_v: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut frac_v: i128 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    for _ in frac.len()..18 {
        frac_v *= 10;
    }
    let v = int_v
        .checked_mul(1_000_000_000_000_000_000)?
        .checked_add(frac_v)?;
    Some(if neg { -v } else { v })
}

/// Compares an item's value with a filter value: as dates when both start with `YYYY-MM-DD`
/// (so `'2024-01-05'` equals `"2024-01-05T00:00:00Z"`), as exact decimals when both are numbers
/// (so `'10'` > `'9.5'`), otherwise as plain strings.
pub fn compare(actual: &str, wanted: &str) -> Ordering {
    if let (Some(a), Some(w)) = (date_prefix(actual), date_prefix(wanted)) {
        return a.cmp(w);
    }
    if let (Some(a), Some(w)) = (decimal(actual), decimal(wanted)) {
        return a.cmp(&w);
    }
    actual.cmp(wanted)
}

/// Fields a transactions filter may use (basiq-api.md §7, plus `connection.id`).
pub const TRANSACTION_FIELDS: &[&str] = &[
    "account.id",
    "transaction.postDate",
    "transaction.status",
    "institution.id",
    "transaction.direction",
    "transaction.class",
    "connection.id",
];

/// Fields an accounts filter may use (basiq-api.md §7: eq/ne only).
pub const ACCOUNT_FIELDS: &[&str] = &["account.id", "connection.id", "institution.id"];

/// Operators the accounts endpoint accepts.
pub const ACCOUNT_OPS: &[Op] = &[Op::Eq, Op::Ne];

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Resolves a transaction filter path to the transaction's value (`None` for null or unknown).
pub fn field_of_transaction(tx: &Value, path: &str) -> Option<String> {
    match path {
        "account.id" => str_field(tx, "account"),
        "transaction.postDate" => str_field(tx, "postDate"),
        "transaction.status" => str_field(tx, "status"),
        "institution.id" => str_field(tx, "institution"),
        "transaction.direction" => str_field(tx, "direction"),
        "transaction.class" => str_field(tx, "class"),
        "connection.id" => str_field(tx, "connection"),
        _ => None,
    }
}

/// Resolves an account filter path to the account's value.
pub fn field_of_account(account: &Value, path: &str) -> Option<String> {
    match path {
        "account.id" => str_field(account, "id"),
        "connection.id" => str_field(account, "connection"),
        "institution.id" => str_field(account, "institution"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(s: &str) -> Filter {
        match parse(s) {
            Ok(f) => f,
            Err(e) => panic!("{s:?}: {e}"),
        }
    }

    #[test]
    fn parses_documented_example() {
        let f = ok("transaction.postDate.bt('2018-01-28','2018-02-27'),account.id.eq('aef3g')");
        assert_eq!(f.clauses.len(), 2);
        assert_eq!(f.clauses[0].field, "transaction.postDate");
        assert_eq!(f.clauses[0].op, Op::Bt);
        assert_eq!(f.clauses[0].values, vec!["2018-01-28", "2018-02-27"]);
        assert_eq!(f.clauses[1].values, vec!["aef3g"]);
    }

    #[test]
    fn parses_connector_style_and_whitespace() {
        let f = ok(" connector.institution.tier.in('1', '2') , connector.stage.eq('live') ");
        assert_eq!(f.clauses[0].field, "connector.institution.tier");
        assert_eq!(f.clauses[0].op, Op::In);
        assert_eq!(f.clauses[0].values, vec!["1", "2"]);
        let f = ok("a.b.eq('with space, comma (and) parens')");
        assert_eq!(f.clauses[0].values[0], "with space, comma (and) parens");
        let f = ok("a.b.eq('')");
        assert_eq!(f.clauses[0].values[0], "");
        let f = ok("a.b.eq('日本')");
        assert_eq!(f.clauses[0].values[0], "日本");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "   ",
            ",",
            "a.b.eq('x'),",
            ",a.b.eq('x')",
            "a.b.eq('x')  a.c.eq('y')",
            "a.b.eq('x'",
            "a.b.eq('x",
            "a.b.eq(x)",
            "a.b.eq(\"x\")",
            "a.b.eq()",
            "a.b.eq",
            "a.b.eq(",
            "a.b.eq)'x'(",
            "a.b.eq('x'))",
            "a.b.eq(('x'))",
            "a.b.like('x')",
            "a.b.EQ('x')",
            "a.eq('x')",
            "eq('x')",
            ".a.b.eq('x')",
            "a..b.eq('x')",
            "a.b..eq('x')",
            "a.b.eq.('x')",
            "a.b.eq('x','y')",
            "a.b.bt('x')",
            "a.b.bt('x','y','z')",
            "a.b.in()",
            "a.b.eq('x';'y')",
            "a.b.eq('x')'",
            "'",
            "(",
            ")",
            "a.b c.eq('x')",
            "a.b.eq('x') extra",
            "\u{0}",
            "a.b.é('x')",
        ] {
            assert!(parse(bad).is_err(), "should reject {bad:?}");
        }
    }

    #[test]
    fn error_messages_are_useful() {
        let e = parse("a.b.like('x')").unwrap_err();
        assert!(e.message().contains("like"), "{e}");
        let e = parse("a.b.eq('x'").unwrap_err();
        assert!(e.message().contains("parenthesis"), "{e}");
        let e = parse("a.b.eq('x").unwrap_err();
        assert!(e.message().contains("unterminated"), "{e}");
    }

    #[test]
    fn validate_fields_and_ops() {
        let f = ok("transaction.amount.eq('1')");
        assert!(f.validate(TRANSACTION_FIELDS, Op::ALL).is_err());
        let f = ok("account.id.gt('1')");
        assert!(f.validate(ACCOUNT_FIELDS, ACCOUNT_OPS).is_err());
        let f = ok("account.id.ne('1'),connection.id.eq('c')");
        assert!(f.validate(ACCOUNT_FIELDS, ACCOUNT_OPS).is_ok());
    }

    #[test]
    fn compare_semantics() {
        assert_eq!(
            compare("2024-01-05T00:00:00Z", "2024-01-05"),
            Ordering::Equal
        );
        assert_eq!(
            compare("2024-01-06T00:00:00Z", "2024-01-05"),
            Ordering::Greater
        );
        assert_eq!(compare("10", "9.5"), Ordering::Greater);
        assert_eq!(compare("-124.69", "-124.690"), Ordering::Equal);
        assert_eq!(compare("-1", "0"), Ordering::Less);
        assert_eq!(compare("debit", "credit"), Ordering::Greater);
        assert_eq!(compare("abc", "10"), Ordering::Greater);
        assert_eq!(compare("99999999999999999999999", "1"), Ordering::Greater); // too long: string compare
        assert!(decimal(".").is_none());
        assert!(decimal("-").is_none());
        assert!(decimal("1e5").is_none());
        assert_eq!(decimal(".5"), decimal("0.5"));
    }

    #[test]
    fn matches_transactions() {
        let tx = json!({
            "id": "t1", "account": "a1", "postDate": "2024-02-10T00:00:00Z", "status": "posted",
            "institution": "AU00000", "direction": "debit", "class": "payment", "connection": "c1"
        });
        let m = |s: &str| ok(s).matches(|p| field_of_transaction(&tx, p));
        assert!(m("transaction.postDate.bt('2024-02-10','2024-02-11')"));
        assert!(m("transaction.postDate.bt('2024-02-01','2024-02-10')"));
        assert!(!m("transaction.postDate.bt('2024-02-11','2024-02-20')"));
        assert!(m(
            "transaction.postDate.gteq('2024-02-10'),transaction.postDate.lt('2024-02-11')"
        ));
        assert!(!m("transaction.postDate.gt('2024-02-10')"));
        assert!(m("transaction.direction.eq('debit'),account.id.eq('a1')"));
        assert!(!m("transaction.direction.eq('debit'),account.id.eq('a2')"));
        assert!(m("transaction.class.in('refund','payment')"));
        assert!(m("connection.id.ne('c2')"));
        assert!(m(
            "institution.id.eq('AU00000'),transaction.status.eq('posted')"
        ));
        let pending = json!({"postDate": null, "status": "pending"});
        let f = ok("transaction.postDate.ne('2024-01-01')");
        assert!(!f.matches(|p| field_of_transaction(&pending, p)));
    }

    #[test]
    fn matches_accounts() {
        let a = json!({"id": "a1", "connection": "c1", "institution": "AU00000"});
        let f = ok("account.id.eq('a1'),connection.id.eq('c1'),institution.id.ne('AU1')");
        assert!(f.matches(|p| field_of_account(&a, p)));
        assert_eq!(field_of_account(&a, "account.name"), None);
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(s in ".{0,64}") {
                let _ = parse(&s);
            }

            #[test]
            fn never_panics_on_filter_alphabet(s in "[a-z.()',\\- ]{0,48}") {
                if let Ok(f) = parse(&s) {
                    let _ = f.matches(|_| Some("2024-01-01".to_string()));
                }
            }

            #[test]
            fn roundtrips_wellformed(
                field in "[a-z]{1,8}\\.[a-zA-Z]{1,8}",
                v in "[^']{0,12}",
                w in "[^']{0,12}",
            ) {
                let s = format!("{field}.bt('{v}','{w}'),{field}.eq('{v}')");
                let f = parse(&s).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(f.clauses.len(), 2);
                prop_assert_eq!(&f.clauses[0].values, &vec![v.clone(), w]);
                prop_assert_eq!(&f.clauses[1].field, &field);
            }

            #[test]
            fn compare_is_antisymmetric(a in "[0-9.\\-]{0,8}|[0-9]{4}-[0-9]{2}-[0-9]{2}", b in "[0-9.\\-]{0,8}") {
                prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
            }
        }
    }
}
