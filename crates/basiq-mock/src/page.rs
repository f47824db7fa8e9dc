//! Cursor pagination as Basiq does it (basiq-api.md §7): `limit` (default and maximum 500), an opaque
//! cursor carried in `links.next` as an absolute URL, no page numbers, and `next` absent on the
//! last page.
//!
//! The cursor encodes the offset into the (deterministic, see `data.rs`) result list plus a hash
//! of the user and the raw filter, sealed with a checksum. The SDK must treat it as opaque and
//! follow `links.next` verbatim: a cursor that was edited, or replayed with a different filter or
//! for another user, is answered with 400 `parameter-not-valid` instead of silently returning a
//! wrong page.
//!
//! List body: `{type:"list", count, size, data, links:{self, next?}}` where `count` is the number
//! of items in this page and `size` the number of items matching over all pages (Basiq's specs
//! describe both loosely; this is the emulator's reading).

use serde::Deserialize;
use serde_json::{json, Value};

use crate::data::hash_parts;

/// Page size when `limit` is absent.
pub const DEFAULT_LIMIT: usize = 500;
/// Largest accepted `limit`.
pub const MAX_LIMIT: usize = 500;

/// Query parameters of a paginated list. Kept as strings so that a bad `limit` becomes a
/// Basiq-format 400 instead of axum's plain-text rejection.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListQuery {
    /// Page size, `1..=500`.
    pub limit: Option<String>,
    /// Opaque cursor from a previous page's `links.next`.
    pub next: Option<String>,
    /// Basiq filter expression (already percent-decoded).
    pub filter: Option<String>,
}

/// A rejected query parameter; becomes 400 `parameter-not-valid` with `source.parameter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageError {
    /// The offending query parameter (`limit`, `next` or `filter`).
    pub parameter: &'static str,
    /// Why it was rejected.
    pub detail: String,
}

/// Validates `limit`: absent → 500; otherwise an integer in `1..=500`.
pub fn parse_limit(raw: Option<&str>) -> Result<usize, PageError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT);
    };
    let bad = || PageError {
        parameter: "limit",
        detail: format!("limit must be an integer between 1 and {MAX_LIMIT}, got '{raw}'"),
    };
    let n: usize = raw.trim().parse().map_err(|_| bad())?;
    if (1..=MAX_LIMIT).contains(&n) {
        Ok(n)
    } else {
        Err(bad())
    }
}

const CURSOR_VERSION: u8 = 1;
const CURSOR_KEY: &[u8] = b"basiq-mock cursor v1";

/// What a cursor is bound to: the list (path) and the raw filter, so it cannot be replayed
/// against another user or another filter.
pub fn scope_hash(list_path: &str, filter: Option<&str>) -> u64 {
    hash_parts(&[
        b"scope",
        list_path.as_bytes(),
        filter.unwrap_or("").as_bytes(),
    ])
}

fn mac(body: &[u8]) -> u64 {
    hash_parts(&[CURSOR_KEY, body])
}

/// Encodes an offset for the given scope as an opaque base64url string.
pub fn encode_cursor(offset: usize, scope: u64) -> String {
    let mut body = Vec::with_capacity(25);
    body.push(CURSOR_VERSION);
    body.extend_from_slice(&(offset as u64).to_be_bytes());
    body.extend_from_slice(&scope.to_be_bytes());
    let tag = mac(&body);
    body.extend_from_slice(&tag.to_be_bytes());
    b64url_encode(&body)
}

/// Decodes a cursor made by [`encode_cursor`] for the same scope.
pub fn decode_cursor(cursor: &str, scope: u64) -> Result<usize, PageError> {
    let bad = |why: &str| PageError {
        parameter: "next",
        detail: format!("the pagination cursor is not valid ({why}); follow links.next as given"),
    };
    let bytes = b64url_decode(cursor).ok_or_else(|| bad("not base64url"))?;
    if bytes.len() != 25 || bytes.first() != Some(&CURSOR_VERSION) {
        return Err(bad("wrong length or version"));
    }
    let (body, tag) = bytes.split_at(17);
    let be = |s: &[u8]| -> Option<u64> { Some(u64::from_be_bytes(s.try_into().ok()?)) };
    if be(tag) != Some(mac(body)) {
        return Err(bad("checksum mismatch"));
    }
    if be(body.get(9..17).unwrap_or_default()) != Some(scope) {
        return Err(bad("issued for a different list or filter"));
    }
    let offset = be(body.get(1..9).unwrap_or_default()).ok_or_else(|| bad("truncated"))?;
    usize::try_from(offset).map_err(|_| bad("offset out of range"))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url; a few lines rather than a dependency for a 25-byte token.
fn b64url_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let idx = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(B64[idx as usize]));
        }
    }
    out
}

fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    let vals: Vec<u32> = s
        .bytes()
        .map(|c| B64.iter().position(|&b| b == c).map(|p| p as u32))
        .collect::<Option<_>>()?;
    let mut out = Vec::with_capacity(vals.len() * 3 / 4);
    for chunk in vals.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, v)| acc | (v << (18 - 6 * i)));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    // Reject non-canonical encodings (stray low bits), so every cursor has one spelling.
    (b64url_encode(&out) == s).then_some(out)
}

fn url_with_query(list_url: &str, pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return list_url.to_string();
    }
    match serde_urlencoded::to_string(pairs) {
        Ok(q) => format!("{list_url}?{q}"),
        Err(_) => list_url.to_string(),
    }
}

/// Cuts one page out of `items` (already filtered and sorted) and builds the list body.
///
/// `list_url` is the absolute URL of the collection without a query (e.g.
/// `http://127.0.0.1:1234/users/u1/transactions`); `list_path` its path, which scopes the cursor.
pub fn page<T: std::borrow::Borrow<Value>>(
    items: Vec<T>,
    query: &ListQuery,
    list_url: &str,
    list_path: &str,
) -> Result<Value, PageError> {
    let size = items.len();
    page_window(size, query, list_url, list_path, |offset, limit| {
        items
            .iter()
            .skip(offset)
            .take(limit)
            .map(|v| v.borrow().clone())
            .collect()
    })
}

/// [`page`] over a list of `size` items that renders only the page: `window(offset, limit)`
/// returns the items at `[offset, offset + limit)` (fewer at the end).
pub fn page_window(
    size: usize,
    query: &ListQuery,
    list_url: &str,
    list_path: &str,
    window: impl FnOnce(usize, usize) -> Vec<Value>,
) -> Result<Value, PageError> {
    let limit = parse_limit(query.limit.as_deref())?;
    let filter = query.filter.as_deref();
    let scope = scope_hash(list_path, filter);
    let offset = match query.next.as_deref() {
        Some(c) => decode_cursor(c, scope)?,
        None => 0,
    };
    let end = offset.saturating_add(limit).min(size);
    let data = if offset < end {
        window(offset, end - offset)
    } else {
        Vec::new()
    };

    let mut self_pairs: Vec<(&str, &str)> = Vec::new();
    if let Some(n) = query.next.as_deref() {
        self_pairs.push(("next", n));
    }
    if let Some(l) = query.limit.as_deref() {
        self_pairs.push(("limit", l));
    }
    if let Some(f) = filter {
        self_pairs.push(("filter", f));
    }
    let mut links = json!({ "self": url_with_query(list_url, &self_pairs) });
    if end < size {
        let cursor = encode_cursor(end, scope);
        let limit_s = limit.to_string();
        let mut pairs: Vec<(&str, &str)> = vec![("next", &cursor), ("limit", &limit_s)];
        if let Some(f) = filter {
            pairs.push(("filter", f));
        }
        links["next"] = Value::String(url_with_query(list_url, &pairs));
    }
    Ok(json!({
        "type": "list",
        "count": data.len(),
        "size": size,
        "data": data,
        "links": links,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const URL: &str = "http://127.0.0.1:9/users/u1/transactions";
    const PATH: &str = "/users/u1/transactions";

    fn items(n: usize) -> Vec<Value> {
        (0..n).map(|i| json!({ "id": i })).collect()
    }

    fn next_query(body: &Value) -> Option<ListQuery> {
        let next = body["links"]["next"].as_str()?;
        let q = next.split_once('?')?.1;
        serde_urlencoded::from_str(q).ok()
    }

    #[test]
    fn limit_validation() {
        assert_eq!(parse_limit(None), Ok(500));
        assert_eq!(parse_limit(Some("1")), Ok(1));
        assert_eq!(parse_limit(Some("500")), Ok(500));
        for bad in [
            "0",
            "501",
            "-1",
            "abc",
            "",
            "1.5",
            "99999999999999999999999",
        ] {
            let e = parse_limit(Some(bad)).unwrap_err();
            assert_eq!(e.parameter, "limit");
        }
    }

    #[test]
    fn walk_all_pages() {
        for (n, limit) in [
            (0, 500),
            (1, 500),
            (500, 500),
            (501, 500),
            (1234, 500),
            (10, 3),
        ] {
            let mut q = ListQuery {
                limit: Some(limit.to_string()),
                filter: Some("transaction.status.eq('posted')".into()),
                ..Default::default()
            };
            let mut seen = Vec::new();
            let mut pages = 0;
            loop {
                let body = page(items(n), &q, URL, PATH).unwrap();
                pages += 1;
                let data = body["data"].as_array().unwrap();
                assert_eq!(body["count"], data.len());
                assert_eq!(body["size"], n);
                seen.extend(data.iter().map(|v| v["id"].as_u64().unwrap()));
                match next_query(&body) {
                    Some(nq) => {
                        assert_eq!(nq.filter, q.filter, "filter carried over");
                        q = nq;
                    }
                    None => {
                        assert!(body["links"].get("next").is_none());
                        break;
                    }
                }
            }
            assert_eq!(seen, (0..n as u64).collect::<Vec<_>>());
            assert_eq!(pages, n.div_ceil(limit).max(1));
        }
    }

    #[test]
    fn next_is_absolute_with_cursor() {
        let body = page(items(600), &ListQuery::default(), URL, PATH).unwrap();
        let next = body["links"]["next"].as_str().unwrap();
        assert!(next.starts_with("http://127.0.0.1:9/users/u1/transactions?next="));
        assert!(next.contains("&limit=500"));
        assert_eq!(body["links"]["self"], URL);
    }

    #[test]
    fn tampered_cursor_rejected() {
        let scope = scope_hash(PATH, None);
        let c = encode_cursor(500, scope);
        assert_eq!(decode_cursor(&c, scope), Ok(500));
        // Another filter or another user's list.
        assert!(decode_cursor(&c, scope_hash(PATH, Some("x.y.eq('1')"))).is_err());
        assert!(decode_cursor(&c, scope_hash("/users/u2/transactions", None)).is_err());
        // Every single-character edit is caught.
        for i in 0..c.len() {
            for repl in ['A', 'z', '0', '-', '_'] {
                let mut t: Vec<char> = c.chars().collect();
                if t[i] == repl {
                    continue;
                }
                t[i] = repl;
                let t: String = t.into_iter().collect();
                assert!(decode_cursor(&t, scope).is_err(), "{t}");
            }
        }
        for junk in [
            "",
            "=",
            "abc",
            "%%%",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "😀",
        ] {
            assert!(decode_cursor(junk, scope).is_err());
        }
        let e = page(
            items(10),
            &ListQuery {
                next: Some("nope".into()),
                ..Default::default()
            },
            URL,
            PATH,
        )
        .unwrap_err();
        assert_eq!(e.parameter, "next");
    }

    proptest! {
        #[test]
        fn b64_roundtrip(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let s = b64url_encode(&bytes);
            prop_assert_eq!(b64url_decode(&s), Some(bytes));
        }

        #[test]
        fn decode_never_panics(s in ".{0,60}") {
            let _ = decode_cursor(&s, 7);
        }
    }
}
