//! [`RequestHeaders`]: a request's few header lines, held inline.

use std::fmt;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use smallvec::SmallVec;

/// Lines held without allocating: a Basiq request carries `Accept`, `Authorization` and, with a
/// body, `Content-Type`.
const INLINE_LINES: usize = 3;

/// A request's header lines, in the order they were added.
///
/// Not an [`http::HeaderMap`]: a map allocates its index and its entries on the first insert,
/// two allocations and two hashes per request for the two or three lines every Basiq request
/// carries, and ureq takes its lines one by one anyway. Up to three lines live inside the
/// request; more spill to the heap. Names compare case-insensitively, as HTTP's do.
/// [`HeaderMap::from`] gives the map for a client that takes one (reqwest).
///
/// `Debug` prints values as `http` does: a value marked sensitive (`Authorization`) as
/// `Sensitive`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RequestHeaders {
    lines: SmallVec<[(HeaderName, HeaderValue); INLINE_LINES]>,
}

impl RequestHeaders {
    /// No lines.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many lines there are (a repeated name counts each time).
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The first value for `name`.
    pub fn get(&self, name: impl AsRef<str>) -> Option<&HeaderValue> {
        let name = name.as_ref();
        self.lines
            .iter()
            .find(|(n, _)| n.as_str().eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every value for `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a HeaderValue> + 'a {
        self.lines
            .iter()
            .filter(move |(n, _)| n.as_str().eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Sets `name` to `value`, replacing every line of that name (as [`HeaderMap::insert`]);
    /// returns the first value replaced. The line keeps the place of the first one it replaces.
    pub fn insert(&mut self, name: HeaderName, value: HeaderValue) -> Option<HeaderValue> {
        match self.lines.iter().position(|(n, _)| *n == name) {
            Some(at) => {
                let old = std::mem::replace(&mut self.lines[at].1, value);
                let mut index = 0;
                self.lines.retain(|(n, _)| {
                    index += 1;
                    index <= at + 1 || *n != name
                });
                Some(old)
            }
            None => {
                self.lines.push((name, value));
                None
            }
        }
    }

    /// Adds a line, keeping any of the same name (as [`HeaderMap::append`]).
    pub fn append(&mut self, name: HeaderName, value: HeaderValue) {
        self.lines.push((name, value));
    }

    /// Removes every line named `name`; returns the first value removed.
    pub fn remove(&mut self, name: impl AsRef<str>) -> Option<HeaderValue> {
        let name = name.as_ref();
        let first = self.get(name).cloned();
        self.lines
            .retain(|(n, _)| !n.as_str().eq_ignore_ascii_case(name));
        first
    }

    /// The lines, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&HeaderName, &HeaderValue)> {
        self.into_iter()
    }
}

impl IntoIterator for RequestHeaders {
    type Item = (HeaderName, HeaderValue);
    type IntoIter = smallvec::IntoIter<[(HeaderName, HeaderValue); INLINE_LINES]>;

    fn into_iter(self) -> Self::IntoIter {
        self.lines.into_iter()
    }
}

/// One line as `(name, value)` references.
type LineRefs<'a> = (&'a HeaderName, &'a HeaderValue);

impl<'a> IntoIterator for &'a RequestHeaders {
    type Item = LineRefs<'a>;
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (HeaderName, HeaderValue)>,
        fn(&'a (HeaderName, HeaderValue)) -> LineRefs<'a>,
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.lines.iter().map(|(n, v)| (n, v))
    }
}

impl Extend<(HeaderName, HeaderValue)> for RequestHeaders {
    /// Appends each line (repeated names kept).
    fn extend<T: IntoIterator<Item = (HeaderName, HeaderValue)>>(&mut self, lines: T) {
        self.lines.extend(lines);
    }
}

impl FromIterator<(HeaderName, HeaderValue)> for RequestHeaders {
    fn from_iter<T: IntoIterator<Item = (HeaderName, HeaderValue)>>(lines: T) -> Self {
        Self {
            lines: lines.into_iter().collect(),
        }
    }
}

impl From<HeaderMap> for RequestHeaders {
    /// Every line of the map, repeated names included.
    fn from(map: HeaderMap) -> Self {
        let mut lines = SmallVec::with_capacity(map.len());
        let mut last = None;
        for (name, value) in map {
            // `HeaderMap`'s owned iterator names only the first of a name's values.
            let name = match name {
                Some(name) => {
                    last = Some(name.clone());
                    name
                }
                None => match &last {
                    Some(name) => name.clone(),
                    None => continue,
                },
            };
            lines.push((name, value));
        }
        Self { lines }
    }
}

impl From<RequestHeaders> for HeaderMap {
    /// Every line, appended in order (repeated names kept).
    fn from(headers: RequestHeaders) -> Self {
        // Sized as `HeaderMap` sizes itself on a first insert (room for six lines), not to
        // the lines given: an HTTP client adds its own (`User-Agent`, `Host`) to this map, and
        // a map sized to fit exactly would grow, two more allocations, on the first of them.
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(name, value);
        }
        map
    }
}

impl fmt::Debug for RequestHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};

    use super::*;

    fn value(v: &'static str) -> HeaderValue {
        HeaderValue::from_static(v)
    }

    #[test]
    fn insert_replaces_every_line_of_the_name_in_the_first_ones_place() {
        let mut headers: RequestHeaders = [
            (ACCEPT, value("a")),
            (CONTENT_TYPE, value("c")),
            (ACCEPT, value("b")),
        ]
        .into_iter()
        .collect();
        assert_eq!(headers.insert(ACCEPT, value("json")), Some(value("a")));
        let lines: Vec<_> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.clone()))
            .collect();
        assert_eq!(
            lines,
            [("accept", value("json")), ("content-type", value("c"))]
        );
        assert_eq!(headers.insert(AUTHORIZATION, value("t")), None);
        assert_eq!(headers.len(), 3);
    }

    #[test]
    fn names_are_found_whatever_their_case() {
        let mut headers = RequestHeaders::new();
        headers.insert(CONTENT_TYPE, value("application/json"));
        assert_eq!(headers.get("Content-Type").unwrap(), "application/json");
        assert_eq!(headers.get(CONTENT_TYPE), Some(&value("application/json")));
        assert_eq!(headers.get("accept"), None);
        assert_eq!(
            headers.remove("CONTENT-type"),
            Some(value("application/json"))
        );
        assert!(headers.is_empty());
    }

    #[test]
    fn lines_beyond_the_inline_ones_are_kept_in_order() {
        let names: Vec<HeaderName> = (0..7)
            .map(|i| HeaderName::try_from(format!("x-{i}")).unwrap())
            .collect();
        let mut headers = RequestHeaders::new();
        for name in &names {
            headers.append(name.clone(), value("v"));
        }
        headers.append(names[0].clone(), value("again"));
        assert_eq!(headers.len(), 8);
        let all: Vec<_> = headers.get_all("x-0").collect();
        assert_eq!(all, [&value("v"), &value("again")]);
        assert_eq!(headers.remove("x-0"), Some(value("v")));
        let left: Vec<_> = headers.iter().map(|(n, _)| n.as_str().to_owned()).collect();
        assert_eq!(left, ["x-1", "x-2", "x-3", "x-4", "x-5", "x-6"]);
    }

    #[test]
    fn a_header_map_round_trip_keeps_repeated_names() {
        let headers: RequestHeaders = [
            (ACCEPT, value("a")),
            (AUTHORIZATION, value("t")),
            (ACCEPT, value("b")),
        ]
        .into_iter()
        .collect();
        let map = HeaderMap::from(headers.clone());
        let accepts: Vec<_> = map.get_all(ACCEPT).iter().collect();
        assert_eq!(accepts, [&value("a"), &value("b")]);
        let back = RequestHeaders::from(map);
        assert_eq!(back.len(), 3);
        assert_eq!(back.get_all("accept").count(), 2);
        assert_eq!(back.get("authorization").unwrap(), "t");
    }

    proptest::proptest! {
        /// Any run of inserts, appends and removes leaves the same values, in the same order,
        /// under every name as it leaves in an `http::HeaderMap`; converting either way keeps them.
        #[test]
        fn behaves_as_a_header_map(ops in proptest::collection::vec((0u8..3, 0usize..3, 0u8..4), 0..40)) {
            let names = [ACCEPT, AUTHORIZATION, CONTENT_TYPE];
            let mut ours = RequestHeaders::new();
            let mut map = HeaderMap::new();
            for (op, name, v) in ops {
                let (name, value) = (names[name].clone(), HeaderValue::from(u16::from(v)));
                match op {
                    0 => proptest::prop_assert_eq!(
                        ours.insert(name.clone(), value.clone()),
                        map.insert(name, value)
                    ),
                    1 => {
                        ours.append(name.clone(), value.clone());
                        map.append(name, value);
                    }
                    _ => proptest::prop_assert_eq!(ours.remove(&name), map.remove(&name)),
                }
            }
            proptest::prop_assert_eq!(ours.len(), map.len());
            let back = HeaderMap::from(ours.clone());
            let round = RequestHeaders::from(map.clone());
            for name in &names {
                let expected: Vec<_> = map.get_all(name).iter().collect();
                proptest::prop_assert_eq!(ours.get_all(name.as_str()).collect::<Vec<_>>(), expected.clone());
                proptest::prop_assert_eq!(back.get_all(name).iter().collect::<Vec<_>>(), expected.clone());
                proptest::prop_assert_eq!(round.get_all(name.as_str()).collect::<Vec<_>>(), expected.clone());
                proptest::prop_assert_eq!(ours.get(name), map.get(name));
            }
        }
    }

    #[test]
    fn debug_hides_a_sensitive_value() {
        let mut secret = value("Bearer tok-secret");
        secret.set_sensitive(true);
        let mut headers = RequestHeaders::new();
        headers.insert(AUTHORIZATION, secret);
        headers.insert(ACCEPT, value("application/json"));
        let shown = format!("{headers:?}");
        assert!(!shown.contains("tok-secret"), "{shown}");
        assert!(shown.contains("Sensitive"), "{shown}");
        assert!(shown.contains("application/json"), "{shown}");
    }
}
