//! `suite serve`: the emulator and a bare axum server in one process, apart from the benches.
//!
//! Prints `EMULATOR <url> <key>` and `BARE <url>` on stdout, then serves until stdin closes (or
//! the process is killed): `cargo xtask bench` reads the two lines and stops it at the end.
//!
//! The bare server is the floor for the emulator's throughput: the same runtime shape (a tokio
//! runtime with 2 workers, axum, `http1`), one route `GET /users/{id}` answering a fixed user
//! body of the shape the emulator sends, with no state, lock or auth.

use std::io::Read;
use std::net::SocketAddr;

use axum::extract::Path;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// A user with no connections, as the emulator renders it (the fields, not the values, matter).
fn user_body(id: &str) -> String {
    serde_json::json!({
        "type": "user",
        "id": id,
        "email": "bench@example.com",
        "mobile": "",
        "name": "Bench",
        "firstName": "Bench",
        "middleName": "",
        "lastName": "",
        "businessName": null,
        "businessIdNo": null,
        "businessIdNoType": null,
        "businessAddress": null,
        "verificationStatus": false,
        "verificationDate": null,
        "connections": { "type": "list", "count": 0, "data": [] },
        "accounts": { "type": "list", "count": 0, "data": [] },
        "links": {
            "self": format!("http://127.0.0.1/users/{id}"),
            "accounts": format!("http://127.0.0.1/users/{id}/accounts"),
            "connections": format!("http://127.0.0.1/users/{id}/connections"),
            "transactions": format!("http://127.0.0.1/users/{id}/transactions"),
            "auth_link": null,
        },
    })
    .to_string()
}

async fn bare_user(Path(id): Path<String>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], user_body(&id))
}

/// Runs both servers until stdin reaches its end.
pub fn run() -> Result<(), String> {
    let emulator = basiq_mock::MockServer::builder()
        .try_start()
        .map_err(|e| format!("cannot start the emulator: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(SocketAddr::from((
            [127, 0, 0, 1],
            0,
        ))))
        .map_err(|e| e.to_string())?;
    let bare = listener.local_addr().map_err(|e| e.to_string())?;
    runtime.spawn(async move {
        let app = Router::new().route("/users/{id}", get(bare_user));
        let _ = axum::serve(listener, app).await;
    });
    println!("EMULATOR {} {}", emulator.url(), emulator.api_key());
    println!("BARE http://{bare}");
    // Until xtask closes our stdin (or kills us).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(emulator);
    runtime.shutdown_background();
    Ok(())
}
