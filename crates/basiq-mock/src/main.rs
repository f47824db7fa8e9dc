//! `basiq-mock`: run the emulator as a process (for the CLI, curl, other languages).

use std::io::Write;
use std::time::Duration;

use clap::Parser;

/// A behaviour-faithful Basiq API emulator on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "basiq-mock", version)]
struct Args {
    /// Port to listen on (0 = a random free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// API key to accept (default: a fixed, realistic base64 `uuid:uuid`).
    #[arg(long)]
    api_key: Option<String>,
    /// Token lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    token_ttl: u64,
    /// Where the Consent UI stand-in redirects after connecting.
    #[arg(long)]
    redirect_url: Option<String>,
}

fn main() {
    let args = Args::parse();
    let mut builder = basiq_mock::MockServer::builder()
        .port(args.port)
        .token_ttl(Duration::from_secs(args.token_ttl));
    if let Some(key) = args.api_key {
        builder = builder.api_key(key);
    }
    if let Some(url) = args.redirect_url {
        builder = builder.redirect_url(url);
    }
    let server = match builder.try_start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("basiq-mock: cannot start: {e}");
            std::process::exit(1);
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "BASIQ_URL={}", server.url());
    let _ = writeln!(out, "BASIQ_API_KEY={}", server.api_key());
    let _ = out.flush();
    drop(out);
    loop {
        std::thread::park();
    }
}
