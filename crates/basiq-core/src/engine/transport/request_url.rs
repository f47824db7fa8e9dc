//! A request's URL, in the form its transport takes it.
//!
//! reqwest addresses a request by [`Url`]; ureq 2 by text, which it parses itself. Building a
//! `Url` for ureq costs about four times what writing the same text does (url re-parses every
//! segment it appends), and parsing text for reqwest costs about twice what building the `Url`
//! does. So [`endpoint`](crate::engine::operation::endpoint) writes whichever form the executor's
//! transport asks for ([`UrlForm`]), and both forms give the same URL, character for character.

use std::fmt;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use url::{form_urlencoded, Position, Url};

/// The form a transport takes a request's URL in ([`AsyncTransport::url_form`],
/// [`BlockingTransport::url_form`]).
///
/// [`AsyncTransport::url_form`]: super::AsyncTransport::url_form
/// [`BlockingTransport::url_form`]: super::BlockingTransport::url_form
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UrlForm {
    /// A parsed [`Url`] (reqwest, or anything built on it).
    #[default]
    Parsed,
    /// The URL's text (ureq 2, which parses it once itself).
    Text,
}

/// Where a request goes: a [`Url`], or the exact text of one (see [`UrlForm`]).
///
/// Either form answers the questions the SDK and a transport ask (the text, host, port, path,
/// query) without parsing; [`RequestUrl::into_url`] parses the text form only when a transport
/// that needs a `Url` is handed one.
#[derive(Clone)]
pub struct RequestUrl(Repr);

#[derive(Clone)]
enum Repr {
    Parsed(Url),
    Text(TextUrl),
}

/// The text of a URL written from a parsed base, with the offsets the base's parse found (the
/// text up to the path is the base's own).
#[derive(Clone)]
struct TextUrl {
    text: String,
    /// As in [`TextBase`].
    host: (u32, u32),
    port: Option<u16>,
    path_start: u32,
    query_start: Option<usize>,
}

/// What url percent-encodes in a segment it appends to an `http`/`https` URL
/// (`SPECIAL_PATH_SEGMENT` in url's parser: the path set, `/`, `%` and `\`).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'#')
    .add(b'?')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'%')
    .add(b'\\');

/// The bytes `SEGMENT` leaves as they are: visible ASCII but for the set's punctuation. A table
/// lookup is several times faster than percent-encoding's iterator, which the ids in every path
/// would pay for.
static KEPT: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = matches!(
            b as u8,
            b'!' | b'$' | b'&'..=b'.' | b'0'..=b';' | b'=' | b'@'..=b'[' | b']'..=b'_' | b'a'..=b'z' | b'|' | b'~'
        );
        b += 1;
    }
    table
};

fn is_kept(b: u8) -> bool {
    KEPT[usize::from(b)]
}

/// What writing URLs as text against one base needs from it, worked out once for the base (an
/// executor's, for all its requests): the end of the text the segments follow, and the offsets
/// of its host and path that url's parse found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TextBase {
    /// The base up to its path's end, one trailing `/` left off.
    prefix_len: usize,
    // Offsets in the base's part of the text, which url itself keeps as `u32`: a request held
    // in a call's future stays the size of one with a parsed `Url`.
    host: (u32, u32),
    port: Option<u16>,
    path_start: u32,
}

impl TextBase {
    /// `None` when url's own rules for appending segments to `base` would do more than encode
    /// and join them (a non-`http(s)` scheme, a base that cannot have a path, or one whose path
    /// ends in `//`), so its URLs are always built parsed.
    pub(crate) fn of(base: &Url) -> Option<Self> {
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return None;
        }
        // url drops one empty last segment (`pop_if_empty`) and then adds a `/` before each
        // segment unless the path is left as exactly `/` (a base path ending in `//`).
        let prefix = &base[..Position::AfterPath];
        let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
        let path_start = base[..Position::BeforePath].len();
        if prefix.len() == path_start + 1 {
            return None;
        }
        Some(Self {
            prefix_len: prefix.len(),
            host: (
                u32::try_from(base[..Position::BeforeHost].len()).ok()?,
                u32::try_from(base[..Position::AfterHost].len()).ok()?,
            ),
            port: base.port_or_known_default(),
            path_start: u32::try_from(path_start).ok()?,
        })
    }
}

impl RequestUrl {
    /// `base` with `segments` appended, written as text (`text` is what [`TextBase::of`] found
    /// for `base`): `None` when url's own rules for appending them would do more than encode and
    /// join them (no segment, an empty, `.` or `..` segment, a control character), so the caller
    /// builds the [`Url`] instead and the two forms never differ.
    pub(crate) fn text_endpoint(base: &Url, text: &TextBase, segments: &[&str]) -> Option<Self> {
        let plain = |s: &&str| !s.is_empty() && *s != "." && *s != "..";
        if segments.is_empty() || !segments.iter().all(plain) {
            return None;
        }
        let prefix = base.as_str().get(..text.prefix_len)?;
        let more: usize = segments.iter().map(|s| s.len() + 1).sum();
        let mut url = String::with_capacity(prefix.len() + more);
        url.push_str(prefix);
        for segment in segments {
            url.push('/');
            if segment.bytes().all(is_kept) {
                // Ids and path words: nothing to encode, copied at once.
                url.push_str(segment);
            } else if segment.chars().any(char::is_control) {
                return None;
            } else {
                url.extend(utf8_percent_encode(segment, SEGMENT));
            }
        }
        Some(Self(Repr::Text(TextUrl {
            text: url,
            host: text.host,
            port: text.port,
            path_start: text.path_start,
            query_start: None,
        })))
    }

    /// Appends `pairs` as the query, form-encoded, as [`Url::query_pairs_mut`] does; the URL
    /// must not have a query yet (endpoints never do).
    pub(crate) fn append_query<'a>(&mut self, pairs: impl Iterator<Item = (&'a str, &'a str)>) {
        match &mut self.0 {
            Repr::Parsed(url) => {
                url.query_pairs_mut().extend_pairs(pairs);
            }
            Repr::Text(t) => {
                let start = t.text.len() + 1;
                t.text.push('?');
                t.query_start = Some(start);
                form_urlencoded::Serializer::for_suffix(&mut t.text, start)
                    .extend_pairs(pairs)
                    .finish();
            }
        }
    }

    /// The form this URL is in.
    pub fn form(&self) -> UrlForm {
        match self.0 {
            Repr::Parsed(_) => UrlForm::Parsed,
            Repr::Text(_) => UrlForm::Text,
        }
    }

    /// The whole URL as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Parsed(url) => url.as_str(),
            Repr::Text(t) => &t.text,
        }
    }

    /// The host as written in the URL (as [`Url::host_str`]).
    pub fn host_str(&self) -> Option<&str> {
        match &self.0 {
            Repr::Parsed(url) => url.host_str(),
            Repr::Text(t) => {
                let (start, end) = (t.host.0 as usize, t.host.1 as usize);
                t.text.get(start..end).filter(|h| !h.is_empty())
            }
        }
    }

    /// The port, or the scheme's default (as [`Url::port_or_known_default`]).
    pub fn port_or_known_default(&self) -> Option<u16> {
        match &self.0 {
            Repr::Parsed(url) => url.port_or_known_default(),
            Repr::Text(t) => t.port,
        }
    }

    /// The path, percent-encoded (as [`Url::path`]).
    pub fn path(&self) -> &str {
        match &self.0 {
            Repr::Parsed(url) => url.path(),
            Repr::Text(t) => {
                let end = t.query_start.map_or(t.text.len(), |q| q - 1);
                t.text.get(t.path_start as usize..end).unwrap_or_default()
            }
        }
    }

    /// The query, form-encoded, without the `?` (as [`Url::query`]).
    pub fn query(&self) -> Option<&str> {
        match &self.0 {
            Repr::Parsed(url) => url.query(),
            Repr::Text(t) => t.query_start.and_then(|q| t.text.get(q..)),
        }
    }

    /// The URL parsed: free for the parsed form; the text form is parsed (it always parses:
    /// it was written from a parsed base by url's own encoding rules).
    pub fn into_url(self) -> Result<Url, url::ParseError> {
        match self.0 {
            Repr::Parsed(url) => Ok(url),
            Repr::Text(t) => Url::parse(&t.text),
        }
    }

    /// A parsed copy (see [`RequestUrl::into_url`]).
    pub fn to_url(&self) -> Result<Url, url::ParseError> {
        self.clone().into_url()
    }

    /// The URL's text, moved out (no copy in either form).
    pub fn into_string(self) -> String {
        match self.0 {
            Repr::Parsed(url) => url.into(),
            Repr::Text(t) => t.text,
        }
    }
}

impl From<Url> for RequestUrl {
    fn from(url: Url) -> Self {
        Self(Repr::Parsed(url))
    }
}

/// Two URLs are equal when their text is, whatever their forms.
impl PartialEq for RequestUrl {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for RequestUrl {}

impl fmt::Display for RequestUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::engine::operation::{endpoint, with_query, ApiBase};

    /// Bases as hosts configure them: both schemes, named, IPv4 and IPv6 hosts, default and
    /// explicit ports, with and without a path prefix (trailing slash, doubled slash, an
    /// encoded one), a query and a fragment (which endpoints drop).
    fn base() -> impl Strategy<Value = Url> {
        (
            prop::sample::select(vec!["http", "https", "HTTPS"]),
            prop::sample::select(vec![
                "au-api.basiq.io",
                "127.0.0.1",
                "[::1]",
                "Host.Example",
            ]),
            prop::sample::select(vec!["", ":443", ":80", ":8080"]),
            prop::sample::select(vec![
                "", "/", "/v3", "/v3/", "//", "/a//", "/a%20b/", "/x/y",
            ]),
            prop::sample::select(vec!["", "?q=1", "#top", "?q#f"]),
        )
            .prop_map(|(scheme, host, port, path, rest)| {
                Url::parse(&format!("{scheme}://{host}{port}{path}{rest}")).expect("valid base")
            })
    }

    /// Segments with everything url treats specially: separators, `%`, dots, controls (tab
    /// and newline are dropped by url), non-ASCII, empty.
    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9-]{1,12}",
            prop::sample::select(vec![".", "..", "", "%2e", "%2E%2e", ".x", "a\tb", "\n"])
                .prop_map(str::to_owned),
            "\\PC{0,6}",
            "[ -~\u{7f}\u{80}-\u{9f}é\u{1F600}/?#%\\\\]{0,8}",
        ]
    }

    proptest! {
        #[test]
        fn text_and_parsed_forms_give_the_same_url(
            base in base(),
            segments in prop::collection::vec(segment(), 0..4),
            pairs in prop::collection::vec(("[a-z&=+ ]{1,4}", prop::option::of("\\PC{0,6}")), 0..3),
        ) {
            let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
            let pairs: Vec<(&str, Option<&str>)> =
                pairs.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
            let build = |form| {
                let base = ApiBase::new(base.clone(), form);
                with_query(endpoint(&base, &segments).expect("http base"), &pairs)
            };
            let parsed = build(UrlForm::Parsed);
            let text = build(UrlForm::Text);
            prop_assert_eq!(text.as_str(), parsed.as_str());
            prop_assert_eq!(text.host_str(), parsed.host_str());
            prop_assert_eq!(text.port_or_known_default(), parsed.port_or_known_default());
            prop_assert_eq!(text.path(), parsed.path());
            prop_assert_eq!(text.query(), parsed.query());
            let url = parsed.clone().into_url().expect("parsed");
            prop_assert_eq!(text.to_url().expect("text parses"), url.clone());
            prop_assert_eq!(text.into_string(), String::from(url));
        }
    }

    #[test]
    fn a_request_url_is_no_larger_than_a_url() {
        // Every async call's future holds its request: the text form must not grow it.
        assert_eq!(
            std::mem::size_of::<RequestUrl>(),
            std::mem::size_of::<Url>()
        );
    }

    #[test]
    fn kept_bytes_are_those_percent_encoding_keeps() {
        for b in 0..=u8::MAX {
            let one = [b];
            let Ok(text) = std::str::from_utf8(&one) else {
                assert!(!is_kept(b));
                continue;
            };
            let encoded = utf8_percent_encode(text, SEGMENT).to_string();
            assert_eq!(is_kept(b), encoded == text, "byte {b:#04x}");
        }
    }

    #[test]
    fn plain_segments_are_written_as_text_and_the_rest_built_parsed() {
        let base = ApiBase::new(
            Url::parse("https://au-api.basiq.io/").unwrap(),
            UrlForm::Text,
        );
        let url = endpoint(&base, &["users", "ea3a81", "a b/c"]).unwrap();
        assert_eq!(url.form(), UrlForm::Text);
        assert_eq!(
            url.as_str(),
            "https://au-api.basiq.io/users/ea3a81/a%20b%2Fc"
        );
        for odd in [&["users", ".."][..], &["", "x"], &["a\tb"]] {
            assert_eq!(
                endpoint(&base, odd).unwrap().form(),
                UrlForm::Parsed,
                "{odd:?}"
            );
        }
        let doubled = ApiBase::new(Url::parse("https://h//").unwrap(), UrlForm::Text);
        assert_eq!(endpoint(&doubled, &["x"]).unwrap().form(), UrlForm::Parsed);
        let parsed = RequestUrl::from(Url::parse("https://h/a?b=1").unwrap());
        assert_eq!(parsed, url::Url::parse("https://h/a?b=1").unwrap().into());
        assert_eq!(
            format!("{parsed} {parsed:?}"),
            r#"https://h/a?b=1 "https://h/a?b=1""#
        );
    }
}
