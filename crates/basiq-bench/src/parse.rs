//! Decoding one 500-transaction page (as the emulator sends it): the SDK's operation
//! (`ListTransactions::parse`: status check, then the lenient models) against `serde_json`
//! straight into the same model, and into an untyped `serde_json::Value`.

use std::time::Instant;

use basiq::models::TransactionList;
use basiq::operation::Operation;
use basiq::operations::ListTransactions;

use crate::{median, report, Env, Target};

/// Times each decoder over the same bytes, in alternating rounds.
pub fn run(env: &Env) -> Result<(), String> {
    let admin = env.admin();
    admin.reset()?;
    let token = admin.token()?;
    let user = admin.user_with_connections(&token, 1)?;
    let (status, body) =
        admin.get_bytes(&format!("/users/{user}/transactions?limit=500"), &token)?;
    let user_id = basiq::id::UserId::new(user.as_str()).map_err(|e| e.to_string())?;
    let op = ListTransactions::new(user_id);
    let response = || {
        http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(body.clone())
            .expect("response")
    };
    let count = op.parse(response()).map_err(|e| e.to_string())?.data.len();
    if count != 500 {
        return Err(format!("the page has {count} transactions, not 500"));
    }

    let (rounds, per_round) = if env.quick { (7, 20) } else { (15, 40) };
    let (mut sdk, mut typed, mut untyped) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        // The response is built outside the timed part (the SDK receives it built).
        let responses: Vec<_> = (0..per_round).map(|_| response()).collect();
        let t = Instant::now();
        for r in responses {
            std::hint::black_box(op.parse(r).expect("sdk parse"));
        }
        sdk.push(t.elapsed().as_secs_f64() * 1e6 / f64::from(per_round));

        let t = Instant::now();
        for _ in 0..per_round {
            let list: TransactionList = serde_json::from_slice(&body).expect("serde_json");
            std::hint::black_box(list);
        }
        typed.push(t.elapsed().as_secs_f64() * 1e6 / f64::from(per_round));

        let t = Instant::now();
        for _ in 0..per_round {
            let value: serde_json::Value = serde_json::from_slice(&body).expect("serde_json");
            std::hint::black_box(value);
        }
        untyped.push(t.elapsed().as_secs_f64() * 1e6 / f64::from(per_round));
    }
    let sdk = median(sdk);
    report(
        &format!(
            "parse a 500-transaction page ({} KB) vs serde_json into the same model",
            body.len() / 1024
        ),
        sdk,
        median(typed),
        "us",
        Target::None,
    );
    report(
        "parse a 500-transaction page vs serde_json::Value",
        sdk,
        median(untyped),
        "us",
        Target::None,
    );
    Ok(())
}
