//! A receiver: an axum handler that verifies each delivery before trusting it, answers
//! 2xx to verified ones, and prints one line each.
//!
//! `PORT` (default 4000), and `WEBHOOK_SECRET` (HS256) or `WEBHOOK_PUBLIC_KEY_FILE` (ES256).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hookrelay_client::verify::{Verifier, SIGNATURE_HEADER};

async fn receive(State(verifier): State<Verifier>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match verifier.verify(&body, signature) {
        Ok(event) => {
            // De-duplicate on event.id: delivery is at-least-once.
            println!("verified {} {}", event.event.name, event.event.id);
            StatusCode::NO_CONTENT
        }
        Err(error) => {
            println!("rejected {}", error.kind());
            StatusCode::BAD_REQUEST
        }
    }
}

#[tokio::main]
async fn main() {
    let verifier = match (
        std::env::var("WEBHOOK_SECRET"),
        std::env::var("WEBHOOK_PUBLIC_KEY_FILE"),
    ) {
        (Ok(secret), _) => Verifier::hs256(secret),
        (_, Ok(path)) => {
            Verifier::es256(&std::fs::read_to_string(path).expect("read the public key")).expect("a PEM public key")
        }
        _ => panic!("set WEBHOOK_SECRET or WEBHOOK_PUBLIC_KEY_FILE"),
    };
    let port = std::env::var("PORT").unwrap_or_else(|_| "4000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .expect("bind");
    println!("listening on http://{}", listener.local_addr().expect("address"));
    let app = Router::new().route("/webhooks", post(receive)).with_state(verifier);
    axum::serve(listener, app).await.expect("serve");
}
