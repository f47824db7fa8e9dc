//! [`ReqwestTransport`]: the default [`AsyncTransport`], one pooled `reqwest::Client`.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use basiq_core::engine::transport::{
    AsyncTransport, BoxFuture, HttpRequest, HttpResponse, USER_AGENT,
};
use basiq_core::error::{Error, TransportError, TransportErrorKind};

/// How long establishing a connection (TCP + TLS) may take by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole request may take by default: reqwest's total timeout, from starting to
/// connect until the response body has been read (the connect timeout applies within it).
/// Basiq's slowest documented calls (report creation, large transaction pages) answer well within
/// this.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest response body read when a request carries no
/// [`RequestLimits`](basiq_core::engine::transport::RequestLimits) (the executor always attaches them,
/// from `ExecutorConfig::max_response_bytes`). Basiq's biggest pages (500 transactions) are a few
/// MB; the cap only stops a broken or hostile server from exhausting memory.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// An [`AsyncTransport`] over one pooled [`reqwest::Client`] (rustls, HTTP/1.1 and HTTP/2).
///
/// Build it once and share it: the client's connection pool is what makes repeated calls cheap.
/// Status codes are never errors here — a 403 is a response the executor classifies — and a
/// failure below HTTP becomes a [`TransportError`] whose kind says whether the request may have
/// reached Basiq (`Connect`: certainly not; `Timeout`/`Io`: unknown).
///
/// **Redirects are never followed**: Basiq's API does not redirect, and following one would send
/// the request (a `POST /users` body, the bearer token, `user:pw@` credentials) to another origin
/// and hand its answer back as Basiq's. A 3xx comes back as a response, which the executor turns
/// into an [`ErrorKind::Redirect`](basiq_core::ErrorKind::Redirect) error with the call's ids. A
/// client passed to [`with_client`](Self::with_client) should be built with
/// `redirect(reqwest::redirect::Policy::none())`; if it follows one anyway, the answer is
/// refused (a transport error) rather than returned as Basiq's.
///
/// Each request's [`RequestLimits`](basiq_core::engine::transport::RequestLimits) cap the body read and
/// shorten the total timeout to what is left of the call's deadline.
#[derive(Clone)]
pub struct ReqwestTransport {
    client: Result<reqwest::Client, std::sync::Arc<str>>,
    /// The client's own total timeout, when this transport built the client: a request's
    /// deadline can only shorten it.
    timeout: Option<Duration>,
}

impl ReqwestTransport {
    /// A transport with the default timeouts ([`DEFAULT_CONNECT_TIMEOUT`],
    /// [`DEFAULT_REQUEST_TIMEOUT`]).
    ///
    /// Building a reqwest client only fails when the TLS backend cannot initialise; rather than
    /// panic, such a transport reports the failure on every `send` (use
    /// [`with_timeouts`](Self::with_timeouts) to see it up front).
    pub fn new() -> Self {
        match Self::with_timeouts(DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT) {
            Ok(transport) => transport,
            Err(e) => Self {
                client: Err(e.to_string().into()),
                timeout: None,
            },
        }
    }

    /// A transport with the given connect and whole-request timeouts.
    ///
    /// `connect` bounds connection setup (TCP and TLS); `request` is reqwest's total timeout for
    /// the whole exchange, from starting to connect until the response body has been read, so a
    /// call fails with a timeout after at most `request`.
    pub fn with_timeouts(connect: Duration, request: Duration) -> Result<Self, Error> {
        reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(connect)
            .timeout(request)
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map(|client| Self {
                client: Ok(client),
                timeout: Some(request),
            })
            .map_err(|e| Error::config(format!("cannot build the HTTP client: {e}")))
    }

    /// Uses the host's own client (its proxy, pool, TLS and timeout settings).
    pub fn with_client(client: reqwest::Client) -> Self {
        Self {
            client: Ok(client),
            timeout: None,
        }
    }
}

impl Default for ReqwestTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ReqwestTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestTransport")
            .field("ready", &self.client.is_ok())
            .finish_non_exhaustive()
    }
}

/// Sorts a reqwest failure into the kinds the executor reasons about.
fn kind_of(e: &reqwest::Error) -> TransportErrorKind {
    if e.is_connect() {
        // Includes connect timeouts: the request was never sent, so repeating it is safe.
        TransportErrorKind::Connect
    } else if e.is_timeout() {
        TransportErrorKind::Timeout
    } else if e.is_request() || e.is_body() || e.is_decode() {
        // The exchange broke after it started (reset, truncated body): outcome unknown.
        TransportErrorKind::Io
    } else {
        TransportErrorKind::Other
    }
}

fn transport_error(e: reqwest::Error) -> TransportError {
    TransportError::new(kind_of(&e), e)
}

#[derive(Debug)]
struct BodyTooLarge(u64);

impl fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "response body exceeds {} bytes", self.0)
    }
}

impl std::error::Error for BodyTooLarge {}

/// A request handed to reqwest, waiting for its answer. Everything about the request is done
/// before the first wait, so the boxed future holds only what the wait needs (reqwest keeps the
/// request in its own box): well under 1 KiB, which glibc serves from its per-thread cache
/// instead of taking an arena lock that other threads then wait on (about 1.3 KiB before).
struct InFlight<F> {
    pending: F,
    max: u64,
    /// The URL sent, kept only for a host's client (which might follow a redirect).
    sent_to: Option<reqwest::Url>,
}

fn start(
    client: &reqwest::Client,
    own_timeout: Option<Duration>,
    request: HttpRequest,
) -> Result<InFlight<impl Future<Output = reqwest::Result<reqwest::Response>>>, TransportError> {
    let limits = request.limits();
    let max = limits.map_or(MAX_BODY_BYTES as u64, |l| l.max_response_bytes);
    let mut request = reqwest_request(request)?;
    if let Some(left) = limits.and_then(|l| l.timeout) {
        // A request's timeout replaces the client's total timeout in reqwest, so it is set only
        // when it is the shorter: setting one allocates the request's extensions (a map), and
        // a call's first request usually has more left (150 s) than the client allows (60 s).
        if own_timeout.is_none_or(|own| left < own) {
            *request.timeout_mut() = Some(left);
        }
    }
    // Our own client never follows redirects; a host's client might, so its answer's URL is
    // compared with the one sent (only then is it kept).
    let own_client = own_timeout.is_some();
    let sent_to = (!own_client).then(|| request.url().clone());
    Ok(InFlight {
        pending: client.execute(request),
        max,
        sent_to,
    })
}

async fn finish(
    in_flight: InFlight<impl Future<Output = reqwest::Result<reqwest::Response>>>,
) -> Result<HttpResponse, TransportError> {
    let InFlight {
        pending,
        max,
        sent_to,
    } = in_flight;
    let too_large = || TransportError::new(TransportErrorKind::TooLarge, BodyTooLarge(max));
    let mut response = pending.await.map_err(transport_error)?;
    if sent_to.is_some_and(|sent_to| response.url() != &sent_to) {
        // A host-supplied client followed a redirect: this is not Basiq's answer.
        return Err(TransportError::new(
            TransportErrorKind::Other,
            format!(
                "the HTTP client followed a redirect (status {}); Basiq's API never redirects, build the client with redirect::Policy::none()",
                response.status()
            ),
        ));
    }

    let declared = response.content_length();
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let capacity = declared.unwrap_or(0).min(1024 * 1024);
    let mut body = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if (body.len() + chunk.len()) as u64 > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }

    let mut out = http::Response::new(body);
    *out.status_mut() = response.status();
    *out.version_mut() = response.version();
    *out.headers_mut() = std::mem::take(response.headers_mut());
    Ok(out)
}

/// `request` as reqwest's: the operation's `Url`, headers and body moved, not copied. Our
/// executors build URLs parsed for this transport ([`AsyncTransport::url_form`]); one in text
/// form (from a host's layer) is parsed here.
fn reqwest_request(request: HttpRequest) -> Result<reqwest::Request, TransportError> {
    let (method, url, headers, body) = request.into_parts();
    let url = url
        .into_url()
        .map_err(|e| TransportError::new(TransportErrorKind::Other, e))?;
    let mut out = reqwest::Request::new(method, url);
    *out.headers_mut() = headers.into();
    *out.body_mut() = Some(body.into());
    Ok(out)
}

impl AsyncTransport for ReqwestTransport {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        // reqwest starts the request (and its timer) when first polled, inside the runtime.
        Box::pin(async move {
            match &self.client {
                Ok(client) => finish(start(client, self.timeout, request)?).await,
                Err(message) => Err(TransportError::new(
                    TransportErrorKind::Other,
                    format!("the HTTP client could not be built: {message}"),
                )),
            }
        })
    }
}
