//! Operations: one value per endpoint call, with no IO.
//!
//! An [`Operation`] knows how to build its request and how to read the answer. Executors (async
//! and blocking) run any operation — authenticate, send, classify, retry, attach ids — so no
//! endpoint is written twice.

use std::time::Duration;

use http::{header, HeaderValue, Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use url::Url;

use crate::engine::transport::{HttpRequest, HttpResponse, RequestUrl, TextBase, UrlForm};
use crate::error::{Error, ErrorContext};
use crate::id::UserId;

/// How an operation authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Authentication {
    /// The request carries its own credentials (`POST /token`).
    None,
    /// The executor adds `Authorization: Bearer <server token>` (the globally cached one).
    ServerToken,
    /// The executor fetches a fresh `CLIENT_ACCESS` token bound to this user and sends
    /// `Authorization: Bearer <client token>` — never the server token, and the client token is
    /// never cached (`POST /jobs/{jobId}/mfa` needs one: basiq-api.md §1, §4.1).
    ClientToken(UserId),
}

/// One API call, described without doing any IO.
pub trait Operation {
    /// What a successful call returns.
    type Output;

    /// Builds the request against `base` (e.g. `https://au-api.basiq.io`), without the bearer
    /// token, its URL written with [`endpoint`] (which honours the base's [`UrlForm`]).
    fn request(&self, base: &ApiBase) -> Result<HttpRequest, Error>;

    /// Reads the answer. Non-success statuses become [`Error`]s.
    fn parse(&self, response: HttpResponse) -> Result<Self::Output, Error>;

    /// Whether sending the request twice is harmless. GETs and DELETEs are; `POST …/refresh` and
    /// anything that creates state is not, so executors never repeat it after an ambiguous failure.
    fn is_idempotent(&self) -> bool;

    /// The ids the call is about, attached to every error it produces.
    fn context(&self) -> ErrorContext {
        ErrorContext::default()
    }

    /// How the executor authenticates the request.
    fn authentication(&self) -> Authentication {
        Authentication::ServerToken
    }
}

/// Where the API lives, and the [`UrlForm`] the executor's transport takes URLs in: what every
/// [`Operation::request`] builds against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiBase {
    url: Url,
    form: UrlForm,
    /// How URLs are written on this base in the text form, worked out once; `None` for the
    /// parsed form, or a base whose URLs are always built parsed.
    text: Option<TextBase>,
}

impl ApiBase {
    /// `url`, with URLs built in `form`.
    pub fn new(url: Url, form: UrlForm) -> Self {
        let text = match form {
            UrlForm::Text => TextBase::of(&url),
            UrlForm::Parsed => None,
        };
        Self { url, form, text }
    }

    /// The base URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The form URLs are built in.
    pub fn form(&self) -> UrlForm {
        self.form
    }
}

/// A base whose URLs are built parsed (the form every transport takes unless it says otherwise).
impl From<Url> for ApiBase {
    fn from(url: Url) -> Self {
        Self::new(url, UrlForm::Parsed)
    }
}

/// `base` joined with path segments, each percent-encoded as one segment, in the base's form.
///
/// The parsed form is grown in place from a clone of the base (joining a string and parsing it
/// costs about three times the instructions: the host is parsed again). The text form is written
/// directly (a quarter of the instructions), except where url's rules would do more than encode
/// and join: that URL is built parsed (a transport taking text reads it with
/// [`RequestUrl::into_string`] at no cost), so both forms always give the same URL.
pub fn endpoint(base: &ApiBase, segments: &[&str]) -> Result<RequestUrl, Error> {
    if let Some(text) = &base.text {
        if let Some(url) = RequestUrl::text_endpoint(&base.url, text, segments) {
            return Ok(url);
        }
    }
    let mut url = base.url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| Error::config(format!("base URL {} cannot have a path", base.url)))?
        .pop_if_empty()
        .extend(segments);
    Ok(url.into())
}

/// Appends query pairs (form-encoded) to an [`endpoint`], skipping `None` values.
pub fn with_query(mut url: RequestUrl, pairs: &[(&str, Option<&str>)]) -> RequestUrl {
    if pairs.iter().any(|(_, v)| v.is_some()) {
        url.append_query(pairs.iter().filter_map(|&(k, v)| Some((k, v?))));
    }
    url
}

/// A request with no body that asks for JSON.
pub fn empty_request(method: Method, url: impl Into<RequestUrl>) -> HttpRequest {
    let mut request = HttpRequest::new(method, url);
    request
        .headers_mut()
        .insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    request
}

/// A request with a JSON body.
pub fn json_request<T: Serialize + ?Sized>(
    method: Method,
    url: impl Into<RequestUrl>,
    body: &T,
) -> Result<HttpRequest, Error> {
    let bytes = serde_json::to_vec(body)
        .map_err(|e| Error::invalid_input(format!("cannot encode request body: {e}")))?;
    let mut request = empty_request(method, url);
    request.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    *request.body_mut() = bytes;
    Ok(request)
}

/// `Retry-After` in seconds, when present and sane.
pub fn retry_after(response: &HttpResponse) -> Option<Duration> {
    response
        .headers()
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Turns a response whose status is not in `ok` into an error.
pub fn check_status(response: &HttpResponse, ok: &[u16]) -> Result<(), Error> {
    if ok.contains(&response.status().as_u16()) {
        Ok(())
    } else {
        Err(Error::from_response(
            response.status(),
            response.body(),
            retry_after(response),
        ))
    }
}

/// Checks the status, then decodes the JSON body.
pub fn parse_json<T: DeserializeOwned>(response: &HttpResponse, ok: &[u16]) -> Result<T, Error> {
    check_status(response, ok)?;
    decode_json(response.status(), response.body())
}

/// Decodes a JSON body, naming the status on failure.
///
/// The message keeps serde's expectation and position but never a string value taken from the
/// body (serde quotes one as `string "…"`): an answer of an unexpected shape can carry a token
/// (a `/token` reply that is a bare string) or personal data, and errors get logged.
pub fn decode_json<T: DeserializeOwned>(status: StatusCode, body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::decode(status, redact_strings(&e.to_string())))
}

/// Replaces every `string "…"` (Debug-quoted, so inner quotes are escaped) in a serde message
/// with `string [REDACTED]`.
fn redact_strings(message: &str) -> String {
    const MARK: &str = "string \"";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(MARK) {
        let (before, quoted) = rest.split_at(at);
        out.push_str(before);
        out.push_str("string [REDACTED]");
        let value = quoted.get(MARK.len()..).unwrap_or_default();
        let mut escaped = false;
        let close = value.char_indices().find_map(|(i, c)| match c {
            _ if escaped => {
                escaped = false;
                None
            }
            '\\' => {
                escaped = true;
                None
            }
            '"' => Some(i),
            _ => None,
        });
        rest = close.and_then(|i| value.get(i + 1..)).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_refuses_a_base_that_cannot_have_a_path() {
        let base = Url::parse("mailto:someone@example.com").unwrap();
        for form in [UrlForm::Parsed, UrlForm::Text] {
            assert!(endpoint(&ApiBase::new(base.clone(), form), &["users"]).is_err());
        }
    }

    #[test]
    fn endpoint_encodes_segments_and_keeps_base_path() {
        for form in [UrlForm::Parsed, UrlForm::Text] {
            let base = ApiBase::new(Url::parse("http://127.0.0.1:9/prefix/").unwrap(), form);
            let url = endpoint(&base, &["users", "a b"]).unwrap();
            assert_eq!(url.form(), form);
            assert_eq!(url.as_str(), "http://127.0.0.1:9/prefix/users/a%20b");
            assert_eq!(url.path(), "/prefix/users/a%20b");
            let base = ApiBase::new(Url::parse("https://au-api.basiq.io").unwrap(), form);
            let url = with_query(
                endpoint(&base, &["token"]).unwrap(),
                &[("a", Some("1 2")), ("b", None)],
            );
            assert_eq!(url.as_str(), "https://au-api.basiq.io/token?a=1+2");
            assert_eq!(url.host_str(), Some("au-api.basiq.io"));
            assert_eq!(url.port_or_known_default(), Some(443));
            assert_eq!(url.query(), Some("a=1+2"));
        }
    }

    #[test]
    fn decode_errors_never_quote_a_string_from_the_body() {
        let err = decode_json::<u64>(StatusCode::OK, br#""eyJ.secret\"quoted\".sig""#).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(!shown.contains("sig"), "{shown}");
        assert!(shown.contains("string [REDACTED], expected u64"), "{shown}");
        // Two values, and one cut short: every one redacted, the rest of the message kept.
        assert_eq!(
            redact_strings(r#"invalid type: string "a\"b", expected string "c" at line 1"#),
            "invalid type: string [REDACTED], expected string [REDACTED] at line 1"
        );
        assert_eq!(
            redact_strings(r#"x string "unterminated"#),
            "x string [REDACTED]"
        );
        assert_eq!(redact_strings("missing field `id`"), "missing field `id`");
    }

    #[test]
    fn a_token_answer_of_the_wrong_shape_does_not_leak_the_token() {
        let op = crate::policy::token::PostToken::server(crate::secret::ApiKey::new("k"));
        for body in [
            r#""eyJhbGciOi.payload.sig""#,
            r#"{"access_token":"eyJhbGciOi.payload.sig","expires_in":"3600"}"#,
            r#"{"access_token":"eyJhbGciOi.payload.sig","expires_in":0}"#,
        ] {
            let response = http::Response::builder()
                .status(200)
                .body(body.as_bytes().to_vec())
                .unwrap();
            let err = op.parse(response).unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(matches!(err, Error::Decode { .. }), "{shown}");
            assert!(!shown.contains("eyJhbGciOi"), "{body}: {shown}");
        }
    }

    #[test]
    fn non_base_url_is_a_config_error() {
        let base = Url::parse("mailto:x@y").unwrap().into();
        assert!(matches!(endpoint(&base, &["x"]), Err(Error::Config { .. })));
    }
}
