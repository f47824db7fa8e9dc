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

/// The `User-Agent` our transports send.
pub const USER_AGENT: &str = concat!("basiq-rs/", env!("CARGO_PKG_VERSION"));
