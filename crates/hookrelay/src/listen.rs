//! `hookrelay listen`: a local receiver for development. It verifies each delivery as a
//! production receiver must, answers 2xx only to verified ones, and prints one line per
//! request.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use clap::Args;
use hookrelay_client::verify::{Verifier, SIGNATURE_HEADER};

/// Where to listen and how to verify.
#[derive(Args)]
pub struct ListenArgs {
    /// Port to listen on (0 picks a free one; the address is printed first).
    #[arg(long, default_value_t = 4000)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The webhook's HS256 secret.
    #[arg(
        long,
        env = "HOOKRELAY_LISTEN_SECRET",
        hide_env_values = true,
        conflicts_with = "public_key_file",
        required_unless_present = "public_key_file"
    )]
    secret: Option<String>,
    /// A file with the webhook's ES256 public key (PEM, as `verificationMethod.publicKey`).
    #[arg(long, value_name = "FILE")]
    public_key_file: Option<PathBuf>,
    /// Largest accepted distance between the signature's time and now, in seconds.
    #[arg(long, default_value_t = 300)]
    tolerance: u64,
}

pub async fn listen(args: ListenArgs) -> anyhow::Result<()> {
    let verifier = match (&args.secret, &args.public_key_file) {
        (Some(secret), _) => Verifier::hs256(secret),
        (None, Some(path)) => {
            let pem = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            Verifier::es256(&pem).with_context(|| format!("{} holds no ES256 public key", path.display()))?
        }
        (None, None) => anyhow::bail!("give --secret or --public-key-file"),
    }
    .with_tolerance(Duration::from_secs(args.tolerance));
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    println!("listening on http://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let app = axum::Router::new().fallback(receive).with_state(verifier);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn receive(State(verifier): State<Verifier>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned()
    };
    let now = hookrelay_core::Timestamp::now();
    let attempt = header("Monime-Delivery-Attempt");
    let (line, status) = match verifier.verify(&body, &header(SIGNATURE_HEADER)) {
        Ok(event) => (
            format!(
                "{now}  {}  {}  attempt={attempt}  verified",
                event.event.name, event.event.id
            ),
            StatusCode::NO_CONTENT,
        ),
        Err(error) => (
            format!(
                "{now}  -  {}  attempt={attempt}  rejected: {}",
                header("Monime-Event-Id"),
                error.kind()
            ),
            StatusCode::BAD_REQUEST,
        ),
    };
    println!("{line}");
    status
}
