//! `mock`: serve the emulator as a process (for scripts, curl, other languages).

use basiq::clock::ManualClock;
use basiq_mock::MockServer;
use serde_json::json;

use crate::cli::MockArgs;
use crate::output::{CliError, Output, EXIT_OK};
use crate::session::Interrupt;

pub(crate) fn run(args: &MockArgs, out: Output, interrupt: &Interrupt) -> Result<i32, CliError> {
    let mut builder = MockServer::builder()
        .port(args.port)
        .token_ttl(args.token_ttl);
    if let Some(key) = &args.api_key {
        builder = builder.api_key(key.clone());
    }
    if let Some(url) = &args.redirect_url {
        builder = builder.redirect_url(url.clone());
    }
    if args.virtual_clock {
        builder = builder.clock(ManualClock::starting_now());
    }
    let server = builder
        .try_start()
        .map_err(|e| CliError::other(format!("cannot start the emulator: {e}")))?;
    // The emulator's own test key, printed so a shell can `eval` these lines; never a Basiq key.
    if out.json {
        out.json(&json!({ "BASIQ_URL": server.url(), "BASIQ_API_KEY": server.api_key() }));
    } else {
        out.line(format!("BASIQ_URL={}", server.url()));
        out.line(format!("BASIQ_API_KEY={}", server.api_key()));
    }
    out.note("Serving the Basiq emulator on 127.0.0.1; Ctrl-C stops it.");
    while !interrupt.is_set() {
        interrupt.wait_for(std::time::Duration::from_secs(3600));
    }
    drop(server);
    Ok(EXIT_OK)
}
