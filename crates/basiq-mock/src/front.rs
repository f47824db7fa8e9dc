//! The emulator's front door: the listener `axum::serve` accepts from, so that even the answers
//! hyper writes by itself carry Basiq's error body.
//!
//! hyper refuses a request it cannot parse before any route or middleware sees it: a URI over its
//! hard-coded 65,534-byte limit (414), a header section over its buffer (431) or a malformed
//! request line or header (400). It answers those with a bare head and `content-length: 0`.
//! Basiq answers every failure with its JSON error list, and an SDK must be tested against that,
//! so each accepted connection is wrapped in [`FrontStream`], which recognises such an automatic
//! head as hyper writes it and sends a Basiq error response in its place. Routes never answer
//! 400/414/431 without a body (every route error is an `ApiError`), so nothing else is touched.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::error::ApiError;

/// A TCP listener whose connections answer hyper's automatic errors in Basiq's format.
pub(crate) struct FrontListener(pub(crate) TcpListener);

impl axum::serve::Listener for FrontListener {
    type Io = FrontStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => return (FrontStream::new(stream), addr),
                // A peer that hung up before we accepted it: take the next one.
                Err(e) if is_connection_error(&e) => {}
                // Out of file descriptors and the like: back off, as axum's own listener does.
                Err(e) => {
                    tracing::error!("basiq-mock accept error: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// One accepted connection. Reads pass through; a write that is exactly one of hyper's automatic
/// error heads is replaced by a Basiq error response (sent on the next flush or write).
pub(crate) struct FrontStream {
    inner: TcpStream,
    /// A replacement response not yet fully written, and how much of it has been.
    pending: Option<(Vec<u8>, usize)>,
}

impl FrontStream {
    fn new(inner: TcpStream) -> Self {
        Self {
            inner,
            pending: None,
        }
    }

    /// Writes what is left of a replacement response; `Ready(Ok)` once nothing is left.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.pending {
            if *written == bytes.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for FrontStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FrontStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_drain(cx))?;
        if let Some(status) = automatic_error_status(buf) {
            // hyper wrote the whole head; what goes on the wire instead is ours.
            self.pending = Some((basiq_error_response(status), 0));
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    /// Vectored, so hyper hands a large body over as it is rather than copying it behind the head
    /// into one buffer (its strategy when the stream cannot write vectored).
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // An automatic error head comes alone (it has no body): one slice, checked as above.
        let mut written = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (written.next(), written.next()) {
            return self.poll_write(cx, only);
        }
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The status of `buf` if it is exactly one automatic error head of hyper's: a 400, 414 or 431
/// status line, headers with `content-length: 0`, nothing after the blank line.
fn automatic_error_status(buf: &[u8]) -> Option<StatusCode> {
    let status = match buf.get(..13)? {
        b"HTTP/1.1 400 " | b"HTTP/1.0 400 " => StatusCode::BAD_REQUEST,
        b"HTTP/1.1 414 " | b"HTTP/1.0 414 " => StatusCode::URI_TOO_LONG,
        b"HTTP/1.1 431 " | b"HTTP/1.0 431 " => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        _ => return None,
    };
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    if head_end != buf.len() {
        return None;
    }
    let head = std::str::from_utf8(buf).ok()?;
    let empty_body = head
        .split("\r\n")
        .any(|line| line.eq_ignore_ascii_case("content-length: 0"));
    empty_body.then_some(status)
}

/// A complete HTTP/1.1 response with Basiq's error body. The connection closes after it, as
/// hyper closes it after an automatic error.
fn basiq_error_response(status: StatusCode) -> Vec<u8> {
    let (code, title, detail) = match status {
        StatusCode::URI_TOO_LONG => (
            "uri-too-long",
            "URI too long",
            "The request URI is longer than the server accepts.",
        ),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
            "request-header-fields-too-large",
            "Request header fields too large",
            "The request's headers are larger than the server accepts.",
        ),
        _ => (
            "invalid-content",
            "Invalid content",
            "The request could not be parsed as HTTP.",
        ),
    };
    let body = ApiError::new(status, code, title, detail)
        .body()
        .to_string();
    let reason = status.canonical_reason().unwrap_or("Error");
    format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        status.as_u16(),
        body.len(),
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_only_hypers_bodiless_error_heads() {
        let head = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 00:00:00 GMT\r\n\r\n";
        assert_eq!(automatic_error_status(head), Some(StatusCode::URI_TOO_LONG));
        let bad = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(automatic_error_status(bad), Some(StatusCode::BAD_REQUEST));
        // A route's 400 carries a body: untouched.
        let route = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(automatic_error_status(route), None);
        // A head alone that announces a body (the body follows in the next write): untouched.
        let head_only = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 120\r\n\r\n";
        assert_eq!(automatic_error_status(head_only), None);
        // Other statuses and partial heads: untouched.
        assert_eq!(
            automatic_error_status(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"),
            None
        );
        assert_eq!(automatic_error_status(b"HTTP/1.1 414 URI"), None);
        assert_eq!(automatic_error_status(b""), None);
    }

    #[test]
    fn the_replacement_is_a_complete_basiq_error_response() {
        let bytes = basiq_error_response(StatusCode::URI_TOO_LONG);
        let text = String::from_utf8(bytes).unwrap_or_default();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        assert_eq!(json["type"], "list");
        assert_eq!(json["data"][0]["code"], "uri-too-long");
        assert!(json["data"][0]["source"].is_null());
        assert!(json["correlationId"].is_string());
    }
}
