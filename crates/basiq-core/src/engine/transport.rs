//! The one seam between the pure core and the network.
//!
//! Transports move bytes: an [`HttpRequest`] in (method, URL, headers, body and the executor's
//! [`RequestLimits`]), an [`http::Response`] out. They do not retry, authenticate or parse; the
//! executors do that once for every operation. A host can plug in its own transport (its own
//! `reqwest::Client`, a proxying client, a fake in tests).
//!
//! The request is our own small type rather than an `http::Request` because neither built-in
//! client addresses a request by `http::Uri` (reqwest takes a [`Url`], ureq text): a `Uri` would
//! be parsed only to be printed and parsed again, and the limits would need an extensions map —
//! work every request paid for and nothing used. Its URL is a [`RequestUrl`], in the form the
//! transport asks for ([`UrlForm`]). A transport built on the `http` types converts with
//! [`HttpRequest::into_http`]. Its headers are a [`RequestHeaders`], not an `http::HeaderMap`,
//! for the same reason: the two or three lines of a Basiq request are kept inline (a map
//! allocates twice on its first insert), and ureq takes them one line at a time.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use http::Method;
use url::Url;

use crate::error::{TransportError, TransportErrorKind};

mod headers;
mod request_url;

pub use headers::RequestHeaders;
pub(crate) use request_url::TextBase;
pub use request_url::{RequestUrl, UrlForm};

/// A request as transports see it: what an operation built (method, [`RequestUrl`], headers, body),
/// authorized by the executor, with the [`RequestLimits`] the executor allows it.
///
/// `Debug` shows the method, URL, headers (the `Authorization` value is marked sensitive, so
/// `http` prints it as `Sensitive`) and the body's *length*: a body can carry an MFA answer.
#[derive(Clone)]
pub struct HttpRequest {
    method: Method,
    url: RequestUrl,
    headers: RequestHeaders,
    body: Vec<u8>,
    limits: Option<RequestLimits>,
}

impl HttpRequest {
    /// A request with no headers, no body and no limits.
    pub fn new(method: Method, url: impl Into<RequestUrl>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: RequestHeaders::new(),
            body: Vec::new(),
            limits: None,
        }
    }

    /// The request's method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The URL the request goes to.
    pub fn url(&self) -> &RequestUrl {
        &self.url
    }

    /// The URL, to replace it (a layer that rewrites where requests go:
    /// `*request.url_mut() = url.into()` with a [`Url`]).
    pub fn url_mut(&mut self) -> &mut RequestUrl {
        &mut self.url
    }

    /// The request's headers.
    pub fn headers(&self) -> &RequestHeaders {
        &self.headers
    }

    /// The headers, to add or change one.
    pub fn headers_mut(&mut self) -> &mut RequestHeaders {
        &mut self.headers
    }

    /// The body (empty for a request without one).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body, to replace it.
    pub fn body_mut(&mut self) -> &mut Vec<u8> {
        &mut self.body
    }

    /// The body, moved out.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// What the executor allows this request (`None` for a request no executor has sent).
    pub fn limits(&self) -> Option<RequestLimits> {
        self.limits
    }

    /// Attaches the limits a transport must honour (the executors do this before sending).
    pub fn set_limits(&mut self, limits: RequestLimits) {
        self.limits = Some(limits);
    }

    /// The parts, moved out: method, URL, headers, body. A client that takes an
    /// [`http::HeaderMap`] gets one with `HeaderMap::from(headers)`.
    pub fn into_parts(self) -> (Method, RequestUrl, RequestHeaders, Vec<u8>) {
        (self.method, self.url, self.headers, self.body)
    }

    /// The request as an [`http::Request`], for a transport built on the `http` types (hyper,
    /// tower); the limits travel as an [`http::Extensions`] entry ([`RequestLimits::of`]).
    pub fn into_http(self) -> Result<http::Request<Vec<u8>>, TransportError> {
        let uri = http::Uri::try_from(self.url.as_str())
            .map_err(|e| TransportError::new(TransportErrorKind::Other, e))?;
        let mut request = http::Request::new(self.body);
        *request.method_mut() = self.method;
        *request.uri_mut() = uri;
        *request.headers_mut() = self.headers.into();
        if let Some(limits) = self.limits {
            request.extensions_mut().insert(limits);
        }
        Ok(request)
    }
}

impl TryFrom<http::Request<Vec<u8>>> for HttpRequest {
    type Error = url::ParseError;

    /// An `http` request as ours: its URI must be absolute (`https://host/path`); limits
    /// attached as an extension come along.
    fn try_from(request: http::Request<Vec<u8>>) -> Result<Self, Self::Error> {
        let limits = RequestLimits::of(&request);
        let (parts, body) = request.into_parts();
        Ok(Self {
            method: parts.method,
            url: Url::parse(&parts.uri.to_string())?.into(),
            headers: parts.headers.into(),
            body,
            limits,
        })
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url.as_str())
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .field("limits", &self.limits)
            .finish()
    }
}

/// A response as transports return it: the whole body, read.
pub type HttpResponse = http::Response<Vec<u8>>;

/// A boxed, `Send` future, so transports can be used as trait objects without extra crates.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An HTTP client for async hosts.
pub trait AsyncTransport: Send + Sync + fmt::Debug {
    /// Sends one request and reads the whole response. Non-2xx statuses are *responses*, not errors.
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>>;

    /// The form this transport takes URLs in: operations write each request's URL in it, so no
    /// URL is built in one form only to be converted. A parsed [`Url`] unless overridden (a
    /// client that takes text, as ureq 2 does, answers [`UrlForm::Text`]).
    fn url_form(&self) -> UrlForm {
        UrlForm::Parsed
    }
}

/// An HTTP client for blocking hosts.
pub trait BlockingTransport: Send + Sync + fmt::Debug {
    /// Sends one request and reads the whole response. Non-2xx statuses are *responses*, not errors.
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError>;

    /// The form this transport takes URLs in (see [`AsyncTransport::url_form`]).
    fn url_form(&self) -> UrlForm {
        UrlForm::Parsed
    }
}

impl<T: AsyncTransport + ?Sized> AsyncTransport for std::sync::Arc<T> {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        (**self).send(request)
    }

    fn url_form(&self) -> UrlForm {
        (**self).url_form()
    }
}

impl<T: BlockingTransport + ?Sized> BlockingTransport for std::sync::Arc<T> {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        (**self).send(request)
    }

    fn url_form(&self) -> UrlForm {
        (**self).url_form()
    }
}

/// What the executor allows one request, attached to every request it sends
/// ([`HttpRequest::limits`]). The built-in transports honour it; a custom transport should too
/// (the executor still refuses an over-size body it returns, but only after it has been read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestLimits {
    /// The largest response body to read; beyond it the transport fails with
    /// [`TransportErrorKind::TooLarge`].
    pub max_response_bytes: u64,
    /// How long this request may take in all (connect, send, wait, read the whole body), what
    /// is left of the call's overall deadline. `None`: only the transport's own timeouts apply.
    pub timeout: Option<Duration>,
}

impl RequestLimits {
    /// Limits with a body cap and an optional time budget.
    pub fn new(max_response_bytes: u64, timeout: Option<Duration>) -> Self {
        Self {
            max_response_bytes,
            timeout,
        }
    }

    /// The limits attached to an `http` request as an extension ([`HttpRequest::into_http`]
    /// puts them there), if any.
    pub fn of<B>(request: &http::Request<B>) -> Option<Self> {
        request.extensions().get::<Self>().copied()
    }
}

/// The `User-Agent` our transports send.
pub const USER_AGENT: &str = concat!("basiq-rs/", env!("CARGO_PKG_VERSION"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converting_to_http_and_back_keeps_every_part() {
        let url = Url::parse("http://127.0.0.1:9/users/u1/transactions?limit=5").unwrap();
        let mut request = HttpRequest::new(Method::POST, url.clone());
        request
            .headers_mut()
            .insert(http::header::ACCEPT, "application/json".parse().unwrap());
        *request.body_mut() = b"{}".to_vec();
        let limits = RequestLimits::new(10, Some(Duration::from_secs(3)));
        request.set_limits(limits);

        let http = request.into_http().unwrap();
        assert_eq!(http.uri(), url.as_str());
        assert_eq!(RequestLimits::of(&http), Some(limits));
        let back = HttpRequest::try_from(http).unwrap();
        assert_eq!(back.method(), Method::POST);
        assert_eq!(back.url().as_str(), url.as_str());
        assert_eq!(back.headers().get("accept").unwrap(), "application/json");
        assert_eq!(back.body(), b"{}");
        assert_eq!(back.limits(), Some(limits));
        // A relative URI has no URL to send to.
        assert!(HttpRequest::try_from(http::Request::new(Vec::new())).is_err());
    }

    #[test]
    fn debug_shows_the_body_length_never_the_body_or_the_token() {
        let mut request =
            HttpRequest::new(Method::POST, Url::parse("http://h/jobs/j/mfa").unwrap());
        *request.body_mut() = br#"{"mfa-response":["123456"]}"#.to_vec();
        let mut bearer = http::HeaderValue::from_static("Bearer tok-secret");
        bearer.set_sensitive(true);
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, bearer);
        let shown = format!("{request:?}");
        assert!(!shown.contains("123456"), "{shown}");
        assert!(!shown.contains("tok-secret"), "{shown}");
        assert!(shown.contains("body_len: 27"), "{shown}");
    }
}
