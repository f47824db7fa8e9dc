//! [`UreqTransport`]: the default [`BlockingTransport`], one `ureq::Agent`. No tokio anywhere.

use std::fmt;
use std::io;
use std::time::Duration;

use basiq_core::error::{TransportError, TransportErrorKind};
use basiq_core::transport::{BlockingTransport, HttpRequest, HttpResponse, USER_AGENT};

/// How long establishing a connection (TCP + TLS) may take by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long each phase of a request may take by default: sending the request line and headers,
/// waiting for the response head, and reading the response body each get this much on their own
/// (see [`UreqTransport::with_timeouts`]); it is not a bound on the whole request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest response body read. Basiq's biggest pages are a few MB; the cap only stops a broken
/// or hostile server from exhausting memory.
pub const MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// A [`BlockingTransport`] over one [`ureq::Agent`] (rustls, connection pool shared by clones).
///
/// Every request is sent with `http_status_as_error(false)` — also on an agent supplied with
/// [`with_agent`](Self::with_agent) — so 4xx/5xx come back as responses for the executor to
/// classify, with Basiq's error body intact.
#[derive(Clone)]
pub struct UreqTransport {
    agent: ureq::Agent,
}

impl UreqTransport {
    /// A transport with the default timeouts ([`DEFAULT_CONNECT_TIMEOUT`],
    /// [`DEFAULT_REQUEST_TIMEOUT`]).
    pub fn new() -> Self {
        Self::with_timeouts(DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT)
    }

    /// A transport with the given connect timeout and per-phase request timeout.
    ///
    /// `connect` bounds connection setup (TCP and TLS). `request` bounds each of three phases
    /// separately — sending the request line and headers, waiting for the response head, reading
    /// the response body — so connecting and those phases together may take up to
    /// `connect + 3 × request` before the call fails with a timeout. DNS resolution and sending
    /// the request body have no limit of their own (ureq's defaults; Basiq's request bodies are
    /// small).
    ///
    /// Per-phase timeouts are used rather than ureq's `timeout_global`/`timeout_per_call`:
    /// measured with `cargo bench -p basiq --bench overhead`, those made every call on a pooled
    /// connection several times slower (hundreds of µs on loopback), while per-phase timeouts
    /// cost nothing and still stop a stalled server.
    pub fn with_timeouts(connect: Duration, request: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(USER_AGENT)
            .timeout_connect(Some(connect))
            .timeout_send_request(Some(request))
            .timeout_recv_response(Some(request))
            .timeout_recv_body(Some(request));
        // `native-roots`: the operating system verifies Basiq's certificate (its trust store,
        // corporate roots included) instead of the bundled Mozilla roots; still rustls.
        #[cfg(feature = "native-roots")]
        let config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                .build(),
        );
        let config = config.build();
        Self {
            agent: ureq::Agent::new_with_config(config),
        }
    }

    /// Uses the host's own agent (its proxy, TLS and pool settings).
    pub fn with_agent(agent: ureq::Agent) -> Self {
        Self { agent }
    }

    fn run(&self, request: HttpRequest) -> Result<http::Response<ureq::Body>, ureq::Error> {
        let (parts, body) = request.into_parts();
        // An empty body is sent as *no* body, so a GET or DELETE carries no `Content-Length: 0`.
        if body.is_empty() {
            self.run_with_body(http::Request::from_parts(parts, ()))
        } else {
            self.run_with_body(http::Request::from_parts(parts, body))
        }
    }

    /// Sends `request` with `http_status_as_error(false)`, also on a host-supplied agent.
    fn run_with_body(
        &self,
        request: http::Request<impl ureq::AsSendBody>,
    ) -> Result<http::Response<ureq::Body>, ureq::Error> {
        let request = self
            .agent
            .configure_request(request)
            .http_status_as_error(false)
            .build();
        self.agent.run(request)
    }
}

impl Default for UreqTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for UreqTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UreqTransport").finish_non_exhaustive()
    }
}

/// Sorts a ureq failure into the kinds the executor reasons about.
fn kind_of(e: &ureq::Error) -> TransportErrorKind {
    use TransportErrorKind::{Connect, Io, Other, Timeout};
    match e {
        // Nothing was sent: resolving, connecting or the TLS handshake failed.
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed | ureq::Error::Rustls(_) => {
            Connect
        }
        ureq::Error::Timeout(ureq::Timeout::Resolve | ureq::Timeout::Connect) => Connect,
        ureq::Error::Timeout(_) => Timeout,
        ureq::Error::Io(io) => match io.kind() {
            io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::NetworkDown
            | io::ErrorKind::AddrNotAvailable => Connect,
            io::ErrorKind::TimedOut => Timeout,
            _ => Io,
        },
        // A malformed or cut-off answer: the exchange started, its outcome is unknown.
        ureq::Error::Protocol(_) | ureq::Error::BodyStalled => Io,
        _ => Other,
    }
}

fn transport_error(e: ureq::Error) -> TransportError {
    TransportError::new(kind_of(&e), e)
}

impl BlockingTransport for UreqTransport {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let response = self.run(request).map_err(transport_error)?;
        let (parts, body) = response.into_parts();
        let body = body
            .into_with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_vec()
            .map_err(transport_error)?;
        Ok(http::Response::from_parts(parts, body))
    }
}
