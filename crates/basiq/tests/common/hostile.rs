//! A scripted HTTP/1.1 server on 127.0.0.1 that answers what a test tells it to — redirects,
//! echoes of the request's credentials, oversize or dripping bodies, malformed tokens — to check
//! the SDK against a broken or hostile server. One request per connection (`Connection: close`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the server received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Header names lowercased.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
}

/// How to answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send the body one byte at a time with this pause in between.
    pub drip: Option<Duration>,
    /// Announce this `Content-Length` instead of the body's.
    pub declared_length: Option<usize>,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into(),
            drip: None,
            declared_length: None,
        }
    }

    pub fn json(status: u16, value: serde_json::Value) -> Self {
        Self::new(status, value.to_string())
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn drip(mut self, every: Duration) -> Self {
        self.drip = Some(every);
        self
    }

    /// A `/token` answer carrying `token`.
    pub fn token(token: &str) -> Self {
        Self::json(
            200,
            serde_json::json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600}),
        )
    }
}

type Handler = dyn Fn(&Received) -> Reply + Send + Sync;

#[derive(Clone)]
pub struct Hostile {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    /// Bodies that could not be written to the end (the client hung up first).
    cut_short: Arc<Mutex<u32>>,
}

impl Hostile {
    pub fn start(handler: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let cut_short = Arc::new(Mutex::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (log, cut) = (received.clone(), cut_short.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (handler, log, cut) = (handler.clone(), log.clone(), cut.clone());
                std::thread::spawn(move || serve(stream, &*handler, &log, &cut));
            }
        });
        Self {
            url,
            received,
            cut_short,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// How many requests were `"METHOD /path"`.
    pub fn count(&self, route: &str) -> usize {
        self.received()
            .iter()
            .filter(|r| format!("{} {}", r.method, r.path) == route)
            .count()
    }

    pub fn cut_short(&self) -> u32 {
        *self.cut_short.lock().unwrap()
    }
}

fn serve(stream: TcpStream, handler: &Handler, log: &Mutex<Vec<Received>>, cut: &Mutex<u32>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length = headers
        .get("content-length")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let request = Received {
        method,
        path,
        headers,
        body,
    };
    let reply = handler(&request);
    log.lock().unwrap().push(request);

    let mut out = stream;
    let mut head = format!(
        "HTTP/1.1 {} Scripted\r\nConnection: close\r\n",
        reply.status
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let length = reply.declared_length.unwrap_or(reply.body.len());
    head.push_str(&format!("Content-Length: {length}\r\n\r\n"));
    if out.write_all(head.as_bytes()).is_err() {
        return;
    }
    let complete = match reply.drip {
        None => out.write_all(&reply.body).is_ok(),
        Some(every) => reply.body.iter().all(|b| {
            std::thread::sleep(every);
            out.write_all(&[*b]).and_then(|()| out.flush()).is_ok()
        }),
    };
    if !complete {
        *cut.lock().unwrap() += 1;
    }
    let _ = out.flush();
}
