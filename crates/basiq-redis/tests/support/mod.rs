//! A real `redis-server` on a random 127.0.0.1 port for the tests, and the emulator's clock
//! read over HTTP (so separate processes share the emulator's virtual time).
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` this test started; killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
}

impl RedisServer {
    /// Starts one, or `None` (with a loud message) when `redis-server` is not installed. Under
    /// `CI=true` a missing server fails the test: CI installs it.
    pub fn start() -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        Self::start_on(port)
    }

    /// Starts one on `port` (to restart after a kill).
    pub fn start_on(port: u16) -> Option<Self> {
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .args(["--enable-debug-command", "yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("redis-server is required under CI=true: {e}")
            }
            Err(e) => {
                eprintln!(
                    "\n!!!!! SKIPPING: redis-server not found ({e}); install it (apt-get install redis-server) to run the fleet tests !!!!!\n"
                );
                return None;
            }
        };
        let server = Self {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if server.ping() {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not answer on port {port}");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn ping(&self) -> bool {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_ok()
    }

    /// Runs a command on the server (test control: FLUSHALL, KEYS, …).
    pub fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        let client = redis::Client::open(self.url()).unwrap();
        let mut connection = client.get_connection().unwrap();
        cmd.query(&mut connection).unwrap()
    }

    /// Kills it (as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The emulator's clock, read over HTTP: child processes share the parent's virtual time.
#[derive(Debug, Clone)]
pub struct EmulatorClock {
    pub url: String,
}

impl basiq::clock::Clock for EmulatorClock {
    fn now(&self) -> time::OffsetDateTime {
        let body: serde_json::Value = ureq::get(&format!("{}/__admin/clock", self.url))
            .call()
            .expect("emulator clock")
            .into_json()
            .expect("clock json");
        time::OffsetDateTime::parse(
            body["now"].as_str().unwrap_or_default(),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("rfc3339")
    }
}

/// Moves the emulator's virtual clock.
pub fn advance(url: &str, seconds: f64) {
    ureq::post(&format!("{url}/__admin/clock/advance"))
        .send_json(serde_json::json!({ "seconds": seconds }))
        .expect("advance");
}
