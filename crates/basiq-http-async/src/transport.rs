//! [`ReqwestTransport`]: the default [`AsyncTransport`], one pooled `reqwest::Client`.

use std::fmt;
use std::time::Duration;

use basiq_core::error::{Error, TransportError, TransportErrorKind};
use basiq_core::transport::{AsyncTransport, BoxFuture, HttpRequest, HttpResponse, USER_AGENT};

/// How long establishing a connection (TCP + TLS) may take by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole request may take by default: reqwest's total timeout, from starting to
/// connect until the response body has been read (the connect timeout applies within it).
/// Basiq's slowest documented calls (report creation, large transaction pages) answer well within
/// this.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest response body read. Basiq's biggest pages (500 transactions) are a few MB; the cap
/// only stops a broken or hostile server from exhausting memory.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// An [`AsyncTransport`] over one pooled [`reqwest::Client`] (rustls, HTTP/1.1 and HTTP/2).
///
/// Build it once and share it: the client's connection pool is what makes repeated calls cheap.
/// Status codes are never errors here — a 403 is a response the executor classifies — and a
/// failure below HTTP becomes a [`TransportError`] whose kind says whether the request may have
/// reached Basiq (`Connect`: certainly not; `Timeout`/`Io`: unknown).
#[derive(Clone)]
pub struct ReqwestTransport {
    client: Result<reqwest::Client, std::sync::Arc<str>>,
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
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map(Self::with_client)
            .map_err(|e| Error::config(format!("cannot build the HTTP client: {e}")))
    }

    /// Uses the host's own client (its proxy, pool, TLS and timeout settings).
    pub fn with_client(client: reqwest::Client) -> Self {
        Self { client: Ok(client) }
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
struct BodyTooLarge(usize);

impl fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "response body exceeds {} bytes", self.0)
    }
}

impl std::error::Error for BodyTooLarge {}

async fn send(
    client: &reqwest::Client,
    request: HttpRequest,
) -> Result<HttpResponse, TransportError> {
    let request = reqwest::Request::try_from(request)
        .map_err(|e| TransportError::new(TransportErrorKind::Other, e))?;
    let mut response = client.execute(request).await.map_err(transport_error)?;

    let declared = response
        .content_length()
        .and_then(|n| usize::try_from(n).ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(TransportError::new(
            TransportErrorKind::Other,
            BodyTooLarge(MAX_BODY_BYTES),
        ));
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(1024 * 1024));
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(TransportError::new(
                TransportErrorKind::Other,
                BodyTooLarge(MAX_BODY_BYTES),
            ));
        }
        body.extend_from_slice(&chunk);
    }

    let mut out = http::Response::new(body);
    *out.status_mut() = response.status();
    *out.version_mut() = response.version();
    *out.headers_mut() = std::mem::take(response.headers_mut());
    Ok(out)
}

impl AsyncTransport for ReqwestTransport {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            match &self.client {
                Ok(client) => send(client, request).await,
                Err(message) => Err(TransportError::new(
                    TransportErrorKind::Other,
                    format!("the HTTP client could not be built: {message}"),
                )),
            }
        })
    }
}
