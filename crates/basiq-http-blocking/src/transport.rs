//! [`UreqTransport`]: the default [`BlockingTransport`], one `ureq::Agent`. No tokio anywhere.
//!
//! Built on ureq **2.12**, not ureq 3: ureq 3's protocol layer (`ureq-proto`) hex-dumps every
//! request head, response head and response body at TRACE through the `log` crate, with no option
//! to turn it off, so any host that bridges `log` at TRACE would log the API key, bearer tokens,
//! the `/token` answer and MFA answers. ureq 2 logs the request head at DEBUG with
//! `Authorization` masked and never logs a body (see the workspace `Cargo.toml`, and the test
//! `crates/basiq/tests/trace_logs.rs` that scans a TRACE log, hex dumps reassembled).

use std::fmt;
use std::io::{self, Read};
use std::time::Duration;

use basiq_core::engine::transport::{
    BlockingTransport, HttpRequest, HttpResponse, RequestLimits, UrlForm, USER_AGENT,
};
use basiq_core::error::{TransportError, TransportErrorKind};

/// How long establishing a connection (TCP + TLS) may take by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole request may take by default: from starting to connect until the response
/// body has been read (see [`UreqTransport::with_timeouts`]).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How many idle connections the built-in agent keeps for reuse. Every request goes to one host
/// (Basiq's API), and ureq's default of one idle connection per host would make threads sharing
/// a client open a new connection (TCP and TLS) for most of their concurrent requests.
pub const DEFAULT_IDLE_CONNECTIONS: usize = 32;
/// The largest response body read when a request carries no [`RequestLimits`] (the executor
/// always attaches them, from `ExecutorConfig::max_response_bytes`). Basiq's biggest pages are a
/// few MB; the cap only stops a broken or hostile server from exhausting memory.
pub const MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// A [`BlockingTransport`] over one [`ureq::Agent`] (rustls, connection pool shared by clones).
///
/// 4xx/5xx come back as responses for the executor to classify, with Basiq's error body intact.
///
/// **Redirects are never followed**: Basiq's API does not redirect, and following one would send
/// the request (a `POST /users` body, the bearer token, `user:pw@` credentials) to another origin
/// and hand its answer back as Basiq's. A 3xx comes back as a response, which the executor turns
/// into an [`ErrorKind::Redirect`](basiq_core::ErrorKind::Redirect) error with the call's ids. An
/// agent passed to [`with_agent`](Self::with_agent) should be built with `.redirects(0)`; if it
/// follows one anyway, the answer is refused (a transport error) rather than returned as Basiq's.
///
/// Each request's [`RequestLimits`] cap the body read and shorten the request's overall timeout
/// to what is left of the call's deadline.
///
/// **Response headers**: the response carries the headers the SDK acts on — `Retry-After`, which
/// the executor honours on 429 and 503, looked for only in an answer that is not a success — and
/// no others. ureq 2 hands out a response's headers only by name (every name copied into a fresh
/// `Vec<String>`, each value found by scanning every line), so copying all of them into an
/// `http::HeaderMap` would cost each request N + 5 allocations and about 9k instructions — more
/// than everything else the SDK adds to a raw ureq call — for headers nothing reads. A host that
/// wraps this transport and wants every line (in order, repeated names included) asks for them
/// with [`with_all_response_headers`](Self::with_all_response_headers).
///
/// **Proxies**: the built-in agent does not read `HTTP(S)_PROXY` from the environment (ureq 2
/// would not honour `NO_PROXY`, so loopback traffic would go through the proxy). Behind a proxy,
/// pass an agent: `UreqTransport::with_agent(ureq::AgentBuilder::new().proxy(proxy).redirects(0).build())`.
#[derive(Clone)]
pub struct UreqTransport {
    agent: ureq::Agent,
    /// The agent's own overall timeout, when this transport built the agent: a request's deadline
    /// can only shorten it.
    timeout: Option<Duration>,
    /// Copy every response header line, not only the ones the SDK reads.
    all_headers: bool,
}

impl UreqTransport {
    /// A transport with the default timeouts ([`DEFAULT_CONNECT_TIMEOUT`],
    /// [`DEFAULT_REQUEST_TIMEOUT`]).
    pub fn new() -> Self {
        Self::with_timeouts(DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT)
    }

    /// A transport with the given connect timeout and whole-request timeout.
    ///
    /// `connect` bounds connection setup (TCP and TLS). `request` bounds the whole exchange, from
    /// starting to connect until the response body has been read, so a call fails with a timeout
    /// after at most `request` — a server dripping its body byte by byte included.
    pub fn with_timeouts(connect: Duration, request: Duration) -> Self {
        let agent = ureq::AgentBuilder::new()
            .user_agent(USER_AGENT)
            .timeout_connect(connect)
            .timeout(request)
            .redirects(0)
            .max_idle_connections(DEFAULT_IDLE_CONNECTIONS)
            .max_idle_connections_per_host(DEFAULT_IDLE_CONNECTIONS)
            // `native-roots` (ureq's `native-certs`): the operating system's trust store
            // (corporate roots included) instead of the bundled Mozilla roots; still rustls.
            .build();
        Self {
            agent,
            timeout: Some(request),
            all_headers: false,
        }
    }

    /// Uses the host's own agent (its proxy, TLS and pool settings). Build it with
    /// `.redirects(0)` (see the type's docs) and, if threads share the client,
    /// `.max_idle_connections_per_host(`[`DEFAULT_IDLE_CONNECTIONS`]`)`: ureq keeps one by
    /// default.
    pub fn with_agent(agent: ureq::Agent) -> Self {
        Self {
            agent,
            timeout: None,
            all_headers: false,
        }
    }

    /// Copies every response header line into the response (in order, repeated names included),
    /// not only `Retry-After`: for a host that wraps this transport and reads headers the SDK does
    /// not (see the type's docs for what it costs).
    ///
    /// ```
    /// use basiq_http_blocking::UreqTransport;
    ///
    /// let transport = UreqTransport::new().with_all_response_headers();
    /// # let _ = transport;
    /// ```
    pub fn with_all_response_headers(mut self) -> Self {
        self.all_headers = true;
        self
    }

    fn run(
        &self,
        request: HttpRequest,
        limits: Option<RequestLimits>,
    ) -> Result<ureq::Response, TransportError> {
        let (method, url, headers, body) = request.into_parts();
        // ureq takes the URL as text (and parses it once): the operation's own, moved. Our
        // executors have it written as text for this transport (`url_form`), not parsed.
        let url = url.into_string();
        let mut call = self.agent.request(method.as_str(), &url);
        for (name, value) in &headers {
            // ureq 2 refuses a value outside visible ASCII, space and tab, and quotes the whole
            // line in its error: `to_str` refuses the same values first.
            let value = value.to_str().map_err(|_| {
                // Never quote the value: it may be a credential.
                TransportError::new(
                    TransportErrorKind::Other,
                    format!("header {name} is not visible ASCII and cannot be sent"),
                )
            })?;
            call = call.set(name.as_str(), value);
        }
        if let Some(left) = limits.and_then(|l| l.timeout) {
            call = call.timeout(self.timeout.map_or(left, |own| own.min(left)));
        }
        // An empty body is sent as *no* body, so a GET or DELETE carries no `Content-Length: 0`.
        let result = if body.is_empty() {
            call.call()
        } else {
            call.send_bytes(&body)
        };
        let response = match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(ureq::Error::Transport(e)) => return Err(transport_error(e)),
        };
        // Our own agent never follows redirects (`.redirects(0)`); a host's agent might, so only
        // then is the answer's URL compared with the one sent.
        let own_agent = self.timeout.is_some();
        if !own_agent && url::Url::parse(response.get_url()).ok() != url::Url::parse(&url).ok() {
            // A host-supplied agent followed a redirect: this is not Basiq's answer.
            return Err(TransportError::new(
                TransportErrorKind::Other,
                format!(
                    "the HTTP agent followed a redirect (status {}); Basiq's API never redirects, build the agent with .redirects(0)",
                    response.status()
                ),
            ));
        }
        Ok(response)
    }
}

impl Default for UreqTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for UreqTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UreqTransport")
            .field("timeout", &self.timeout)
            .field("all_headers", &self.all_headers)
            .finish_non_exhaustive()
    }
}

/// Sorts a ureq failure into the kinds the executor reasons about.
fn kind_of(e: &ureq::Transport) -> TransportErrorKind {
    use TransportErrorKind::{Connect, Io, Other, Timeout};
    let io_kind = std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<io::Error>())
        .map(io::Error::kind);
    match e.kind() {
        // Nothing was sent: resolving, connecting, the proxy or the TLS handshake failed.
        ureq::ErrorKind::Dns
        | ureq::ErrorKind::ConnectionFailed
        | ureq::ErrorKind::ProxyConnect
        | ureq::ErrorKind::ProxyUnauthorized => Connect,
        ureq::ErrorKind::Io => match io_kind {
            Some(
                io::ErrorKind::ConnectionRefused
                | io::ErrorKind::HostUnreachable
                | io::ErrorKind::NetworkUnreachable
                | io::ErrorKind::NetworkDown
                | io::ErrorKind::AddrNotAvailable,
            ) => Connect,
            Some(io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => Timeout,
            _ => Io,
        },
        // A malformed or cut-off answer: the exchange started, its outcome is unknown.
        ureq::ErrorKind::BadStatus | ureq::ErrorKind::BadHeader => Io,
        _ => Other,
    }
}

fn transport_error(e: ureq::Transport) -> TransportError {
    TransportError::new(kind_of(&e), e)
}

fn io_error(e: io::Error) -> TransportError {
    let kind = match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => TransportErrorKind::Timeout,
        _ => TransportErrorKind::Io,
    };
    TransportError::new(kind, e)
}

#[derive(Debug)]
struct BodyTooLarge(u64);

impl fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "response body exceeds {} bytes", self.0)
    }
}

impl std::error::Error for BodyTooLarge {}

/// The response header the SDK reads: `Retry-After` (its first line, as the executor reads it),
/// looked for only in an answer that is not a success — it means something with a 3xx, 429 or
/// 503 (RFC 9110 §10.2.3), and ureq finds a header by scanning every line.
fn retry_after(response: &ureq::Response) -> Option<http::HeaderValue> {
    if (200..300).contains(&response.status()) {
        return None;
    }
    let value = response.header(http::header::RETRY_AFTER.as_str())?;
    http::HeaderValue::from_str(value).ok()
}

/// ureq's response headers as an `http::HeaderMap`, every line of every name in order. The
/// values are copied into one shared buffer (one allocation for all of them, not one each);
/// ureq lower-cased the names, so the standard ones need no allocation. A line `http` would
/// refuse is left out.
fn copy_headers(response: &ureq::Response) -> http::HeaderMap {
    /// Enough for the value bytes of a typical answer; a bigger head grows the buffer once.
    const VALUES: usize = 512;
    let names = response.headers_names();
    let mut buffer = bytes::BytesMut::with_capacity(VALUES);
    let mut headers = http::HeaderMap::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        // One pass per name, for all its lines (ureq looks a name up by scanning every line).
        if names[..i].contains(name) {
            continue;
        }
        let Ok(header) = http::HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        let mut add = |value: &str| {
            buffer.extend_from_slice(value.as_bytes());
            if let Ok(value) = http::HeaderValue::from_maybe_shared(buffer.split().freeze()) {
                headers.append(header.clone(), value);
            }
        };
        if names[i + 1..].contains(name) {
            response.all(name).into_iter().for_each(&mut add);
        } else if let Some(value) = response.header(name) {
            add(value);
        }
    }
    headers
}

/// The headers a response keeps: every line (a host's choice), or only what the SDK reads, put
/// into the response's own map (none is made or dropped for an answer without it).
enum Kept {
    All(http::HeaderMap),
    RetryAfter(Option<http::HeaderValue>),
}

/// The response as an `http` response, its body read up to `max` bytes.
fn read_response(
    response: ureq::Response,
    max: u64,
    all_headers: bool,
) -> Result<HttpResponse, TransportError> {
    let too_large = || TransportError::new(TransportErrorKind::TooLarge, BodyTooLarge(max));
    let status = http::StatusCode::from_u16(response.status())
        .map_err(|e| TransportError::new(TransportErrorKind::Io, e))?;
    let headers = if all_headers {
        Kept::All(copy_headers(&response))
    } else {
        Kept::RetryAfter(retry_after(&response))
    };
    let declared = response
        .header(http::header::CONTENT_LENGTH.as_str())
        .and_then(|n| n.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let capacity = usize::try_from(declared.unwrap_or(0).min(1024 * 1024)).unwrap_or(0);
    let mut body = Vec::with_capacity(capacity);
    response
        .into_reader()
        .take(max.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(io_error)?;
    if u64::try_from(body.len()).unwrap_or(u64::MAX) > max {
        return Err(too_large());
    }
    let mut out = http::Response::new(body);
    *out.status_mut() = status;
    match headers {
        Kept::All(all) => *out.headers_mut() = all,
        Kept::RetryAfter(Some(value)) => {
            out.headers_mut().insert(http::header::RETRY_AFTER, value);
        }
        Kept::RetryAfter(None) => {}
    }
    Ok(out)
}

impl BlockingTransport for UreqTransport {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let limits = request.limits();
        let max = limits.map_or(MAX_BODY_BYTES, |l| l.max_response_bytes);
        let response = self.run(request, limits)?;
        read_response(response, max, self.all_headers)
    }

    /// ureq 2 takes a URL as text and parses it itself: a parsed one would be printed and
    /// parsed again.
    fn url_form(&self) -> UrlForm {
        UrlForm::Text
    }
}
