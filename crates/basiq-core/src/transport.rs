//! The one seam between the pure core and the network.
//!
//! Transports move bytes: an [`http::Request`] in, an [`http::Response`] out. They do not retry,
//! authenticate or parse; the executors do that once for every operation. A host can plug in its
//! own transport (its own `reqwest::Client`, a proxying client, a fake in tests).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::error::TransportError;

/// A request as transports see it.
pub type HttpRequest = http::Request<Vec<u8>>;
/// A response as transports return it: the whole body, read.
pub type HttpResponse = http::Response<Vec<u8>>;

/// A boxed, `Send` future, so transports can be used as trait objects without extra crates.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An HTTP client for async hosts.
pub trait AsyncTransport: Send + Sync + fmt::Debug {
    /// Sends one request and reads the whole response. Non-2xx statuses are *responses*, not errors.
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>>;
}

/// An HTTP client for blocking hosts.
pub trait BlockingTransport: Send + Sync + fmt::Debug {
    /// Sends one request and reads the whole response. Non-2xx statuses are *responses*, not errors.
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError>;
}

impl<T: AsyncTransport + ?Sized> AsyncTransport for std::sync::Arc<T> {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        (**self).send(request)
    }
}

impl<T: BlockingTransport + ?Sized> BlockingTransport for std::sync::Arc<T> {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        (**self).send(request)
    }
}

/// What the executor allows one request, attached to every request it sends as an
/// [`http::Extensions`] entry (`request.extensions().get::<RequestLimits>()`). The built-in
/// transports honour it; a custom transport should too (the executor still refuses an over-size
/// body it returns, but only after it has been read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestLimits {
    /// The largest response body to read; beyond it the transport fails with
    /// [`TransportErrorKind::TooLarge`](crate::error::TransportErrorKind::TooLarge).
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

    /// The limits attached to `request`, if any.
    pub fn of<B>(request: &http::Request<B>) -> Option<Self> {
        request.extensions().get::<Self>().copied()
    }
}

/// The request's URL as the operation built it, attached to requests built by
/// [`operation::empty_request`](crate::operation::empty_request) /
/// [`json_request`](crate::operation::json_request) so a transport whose client speaks
/// [`url::Url`] (reqwest, ureq) need not print the `http::Uri` and parse it again. Use it
/// through [`RequestUrl::of`], which returns it only while it still agrees with the request's
/// URI (a layer in between may have rewritten that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestUrl(pub url::Url);

impl RequestUrl {
    /// The URL attached to `request`, if any and if it is the request's URI: same scheme,
    /// authority, path and query (compared as text, no allocation).
    pub fn of<B>(request: &http::Request<B>) -> Option<&url::Url> {
        let url = &request.extensions().get::<Self>()?.0;
        let uri = request.uri();
        let path_and_query = &url[url::Position::BeforePath..url::Position::AfterQuery];
        let agrees = uri.scheme_str() == Some(url.scheme())
            && uri.authority().map(http::uri::Authority::as_str) == Some(url.authority())
            && uri.path_and_query().map(http::uri::PathAndQuery::as_str) == Some(path_and_query);
        agrees.then_some(url)
    }
}

/// The `User-Agent` our transports send.
pub const USER_AGENT: &str = concat!("basiq-rs/", env!("CARGO_PKG_VERSION"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_url_is_offered_only_while_it_is_the_requests_uri() {
        let url = url::Url::parse("http://127.0.0.1:9/users/u1/transactions?limit=5").unwrap();
        let mut request = crate::operation::empty_request(http::Method::GET, &url).unwrap();
        assert_eq!(RequestUrl::of(&request), Some(&url));
        // A layer in between rewrote the URI: the attached URL is stale and not offered.
        *request.uri_mut() = "http://127.0.0.1:9/users/u2/transactions?limit=5"
            .parse()
            .unwrap();
        assert_eq!(RequestUrl::of(&request), None);
        assert_eq!(RequestUrl::of(&http::Request::new(())), None);
    }
}
