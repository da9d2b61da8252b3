//! `hookrelay listen`: a local receiver for development. It verifies each delivery as a
//! production receiver must, answers 2xx only to verified ones, and prints one line per
//! request. During a key rotation it holds the old and the new key (`--previous-secret`,
//! `--public-key-file` twice) or follows the webhook's JWKS (`--jwks-url`), and accepts a
//! delivery if any of its signatures verifies.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use clap::Args;
use hookrelay_client::verify::{
    standard_webhooks, ReceivedHeaders, Verifier, VerifyError, WebhookEvent, KEY_ID_HEADER, SIGNATURE_HEADER,
};
use hookrelay_client::JwksVerifier;

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
        conflicts_with_all = ["public_key_file", "jwks_url"],
        required_unless_present_any = ["public_key_file", "jwks_url"]
    )]
    secret: Option<String>,
    /// During a rotation's overlap: the HS256 secret it retired, also accepted.
    #[arg(
        long,
        env = "HOOKRELAY_LISTEN_PREVIOUS_SECRET",
        hide_env_values = true,
        requires = "secret"
    )]
    previous_secret: Option<String>,
    /// A file with the webhook's ES256 public key (PEM, as `verificationMethod.publicKey`);
    /// give it twice during a rotation (any of them verifies).
    #[arg(long, value_name = "FILE", conflicts_with = "jwks_url")]
    public_key_file: Vec<PathBuf>,
    /// The webhook's (or its space's) JWKS URL: ES256 keys fetched, cached, and fetched
    /// again when a delivery names a key id the set did not have.
    #[arg(long, value_name = "URL")]
    jwks_url: Option<String>,
    /// Largest accepted distance between the signature's time and now, in seconds.
    #[arg(long, default_value_t = 300)]
    tolerance: u64,
}

/// How deliveries are checked.
#[derive(Clone)]
enum Check {
    Keys(Verifier),
    Jwks(JwksVerifier),
}

impl Check {
    async fn verify(&self, body: &[u8], headers: &HeaderMap) -> Result<WebhookEvent, VerifyError> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let signature = header(SIGNATURE_HEADER).unwrap_or("");
        // A webhook whose `format` is `standard-webhooks` sends its headers instead.
        if let (Self::Keys(verifier), Some(standard)) = (self, header(standard_webhooks::SIGNATURE_HEADER)) {
            let received = ReceivedHeaders {
                id: header(standard_webhooks::ID_HEADER).unwrap_or(""),
                timestamp: header(standard_webhooks::TIMESTAMP_HEADER).unwrap_or(""),
                signature: standard,
            };
            return verifier.verify_standard(body, received);
        }
        match self {
            Self::Keys(verifier) => verifier.verify(body, signature),
            Self::Jwks(verifier) => verifier.verify(body, signature, header(KEY_ID_HEADER)).await,
        }
    }
}

async fn check(args: &ListenArgs) -> anyhow::Result<Check> {
    let tolerance = Duration::from_secs(args.tolerance);
    if let Some(url) = &args.jwks_url {
        let options = hookrelay_client::JwksOptions {
            tolerance,
            ..Default::default()
        };
        let verifier = JwksVerifier::with_options(url.clone(), options)
            .await
            .with_context(|| format!("cannot use the key set at {url}"))?;
        return Ok(Check::Jwks(verifier));
    }
    let verifier = match (&args.secret, args.public_key_file.as_slice()) {
        (Some(secret), _) => {
            let verifier = Verifier::hs256(secret);
            match &args.previous_secret {
                Some(previous) => verifier.or_hs256(previous),
                None => verifier,
            }
        }
        (None, [first, more @ ..]) => {
            let mut verifier = Verifier::es256(&read_pem(first)?)
                .with_context(|| format!("{} holds no ES256 public key", first.display()))?;
            for path in more {
                verifier = verifier
                    .or_es256(&read_pem(path)?)
                    .with_context(|| format!("{} holds no ES256 public key", path.display()))?;
            }
            verifier
        }
        (None, []) => anyhow::bail!("give --secret, --public-key-file or --jwks-url"),
    };
    Ok(Check::Keys(verifier.with_tolerance(tolerance)))
}

fn read_pem(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

pub async fn listen(args: ListenArgs) -> anyhow::Result<()> {
    let verifier = check(&args).await?;
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    println!("listening on http://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let app = axum::Router::new().fallback(receive).with_state(verifier);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn receive(State(verifier): State<Check>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned()
    };
    let now = hookrelay_core::Timestamp::now();
    let attempt = header("Monime-Delivery-Attempt");
    let (line, status) = match verifier.verify(&body, &headers).await {
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
