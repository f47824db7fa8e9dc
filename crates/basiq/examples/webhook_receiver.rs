//! A webhook receiver: trust a message only when Basiq signed it, recently, then act on it.
//!
//! ```text
//! cargo run -p basiq --example webhook_receiver
//! ```
//!
//! The receiver is a minimal HTTP endpoint on 127.0.0.1 (plain `std::net`, so the example needs
//! no web framework; an application uses its own, or `basiq::webhooks::axum::endpoint`). Each
//! request's raw body and headers go to a `basiq::webhooks::WebhookReceiver` holding the
//! endpoint's `whsec_` secret: it verifies the signature and the 5-minute window, de-duplicates
//! by `webhook-id` (Basiq retries until it gets a 2xx) and hands over a typed event; the answer
//! is 204 for a message handled (or already handled), 401 for one Basiq did not sign just now,
//! 400 for a malformed one. Set `BASIQ_WEBHOOK_SECRET` to your endpoint's secret and
//! `BASIQ_WEBHOOK_PORT` to serve real deliveries (it then runs until stopped); without them the
//! example signs and posts four messages to itself — a good one, the same one again (a retry),
//! a tampered one and a replayed one — and exits.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

use basiq::webhooks::{self, Receipt, WebhookEvent, WebhookReceiver, WebhookSecret};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use time::OffsetDateTime;

/// What the endpoint does with one delivery.
fn handle(receiver: &WebhookReceiver, headers: &HeaderMap, body: &[u8]) -> StatusCode {
    match receiver.receive(headers, body) {
        Ok(Receipt::New(delivery)) => {
            match delivery.event() {
                WebhookEvent::ConnectionInvalidated(details) => println!(
                    "   connection invalidated: ask the user to reconnect ({:?})",
                    details.subject.connection_id
                ),
                WebhookEvent::TransactionsUpdated(details) => println!(
                    "   new transactions for {:?}: read them (Basiq refreshed, no refresh needed)",
                    details.subject.user_id
                ),
                WebhookEvent::ConsentRevoked(_) | WebhookEvent::ConsentExpired(_) => {
                    println!(
                        "   consent ended: purge (client.consent_lifecycle) and delete local data"
                    )
                }
                other => println!(
                    "   event {}: {}",
                    other.event_type(),
                    other.message().links.event
                ),
            }
            // Handled: remembered, so Basiq's retries of this message are not handled again.
            match delivery.ack() {
                Ok(()) => StatusCode::NO_CONTENT,
                Err(_) => StatusCode::SERVICE_UNAVAILABLE,
            }
        }
        Ok(Receipt::Duplicate { webhook_id }) => {
            println!("   {webhook_id} was handled already: acknowledged, not handled again");
            StatusCode::NO_CONTENT
        }
        // Not from Basiq, tampered with, replayed or malformed. The error never holds the secret.
        Err(refused) => {
            println!("   refused: {refused}");
            refused.status()
        }
    }
}

/// Reads one HTTP/1.1 request (headers and a `Content-Length` body) and answers it.
fn serve_one(receiver: &WebhookReceiver, stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?; // request line
    let mut headers = HeaderMap::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.trim().as_bytes()),
                HeaderValue::from_str(value.trim()),
            ) {
                headers.append(name, value);
            }
        }
    }
    let length = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .unwrap_or(0)
        .min(1024 * 1024);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let status = handle(receiver, &headers, &body);
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {} {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let configured = std::env::var("BASIQ_WEBHOOK_SECRET").ok();
    let secret = WebhookSecret::new(
        configured
            .as_deref()
            .unwrap_or("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    )?;
    let port: u16 = std::env::var("BASIQ_WEBHOOK_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let receiver = WebhookReceiver::new(secret);
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    let address = listener.local_addr()?;
    println!("webhook endpoint at http://{address}/basiq/webhooks");

    if configured.is_some() && port != 0 {
        for stream in listener.incoming() {
            if let Err(e) = serve_one(&receiver, stream?) {
                println!("   bad request: {e}");
            }
        }
        return Ok(());
    }

    // Demo: Basiq's side, played by this process.
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        for stream in listener.incoming().take(4) {
            serve_one(&receiver, stream?)?;
        }
        Ok(())
    });
    let signing = WebhookSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
    let body = br#"{"eventTypeId":"transactions.updated","eventId":"e1","links":{"event":"https://au-api.basiq.io/events/e1","eventEntity":"https://au-api.basiq.io/users/u1/transactions"}}"#;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let an_hour_ago = now - 3600;
    let cases: [(&str, i64, &[u8]); 4] = [
        ("signed by Basiq just now", now, body),
        ("the same message again (Basiq retrying)", now, body),
        ("body changed after signing", now, &body[..body.len() - 2]),
        ("replayed an hour later", an_hour_ago, body),
    ];
    let url = format!("http://{address}/basiq/webhooks");
    for (what, timestamp, sent) in cases {
        println!("{what}:");
        let signature = webhooks::sign(&signing, "msg_1", timestamp, body);
        // ureq 2 reports 4xx/5xx as `Error::Status`; the status is what we print either way.
        let answer = ureq::post(&url)
            .set("webhook-id", "msg_1")
            .set("webhook-timestamp", &timestamp.to_string())
            .set("webhook-signature", &signature)
            .send_bytes(sent);
        let status = match answer {
            Ok(response) => response.status(),
            Err(ureq::Error::Status(code, _)) => code,
            Err(e) => return Err(e.into()),
        };
        println!("   -> {status}");
    }
    server
        .join()
        .map_err(|_| "the receiver thread panicked")??;
    Ok(())
}
