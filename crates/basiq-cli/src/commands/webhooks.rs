//! `webhooks verify`: is this message from Basiq, and recent?

use std::io::Read;

use basiq::webhooks::{Verifier, WebhookSecret};
use serde_json::json;

use crate::cli::WebhooksCommand;
use crate::output::{CliError, Output, EXIT_ATTENTION, EXIT_OK};

pub(crate) fn run(cmd: &WebhooksCommand, out: Output) -> Result<i32, CliError> {
    let WebhooksCommand::Verify {
        secret_env,
        id,
        timestamp,
        signature,
        tolerance,
    } = cmd;
    // The secret comes from the environment only (an argument would show in the process list),
    // and is never printed: errors name the variable, not its value.
    let raw = std::env::var(secret_env).map_err(|_| {
        CliError::usage(format!(
            "{secret_env} is not set (it should hold the whsec_… secret)"
        ))
    })?;
    let secret = WebhookSecret::new(&raw).map_err(|e| {
        CliError::usage(format!("{secret_env} does not hold a webhook secret: {e}"))
    })?;
    drop(raw);
    let mut body = Vec::new();
    std::io::stdin()
        .read_to_end(&mut body)
        .map_err(|e| CliError::other(format!("cannot read the body from stdin: {e}")))?;
    let verdict = Verifier::new().with_tolerance(*tolerance).verify_parts(
        &secret,
        id,
        timestamp,
        signature,
        &body,
        time::OffsetDateTime::now_utc(),
    );
    match verdict {
        Ok(message) => {
            if out.json {
                out.json(&json!({ "valid": true, "message": message }));
            } else {
                out.line(format!(
                    "{} signed by Basiq: {} (event {}, about {})",
                    out.good("✔"),
                    message.event_type_id,
                    message.event_id,
                    message.links.event_entity
                ));
            }
            Ok(EXIT_OK)
        }
        Err(e) => {
            if out.json {
                out.json(&json!({ "valid": false, "error": e.to_string() }));
            } else {
                out.line(format!("{} not verified: {e}", out.bad("✘")));
            }
            Ok(EXIT_ATTENTION)
        }
    }
}
