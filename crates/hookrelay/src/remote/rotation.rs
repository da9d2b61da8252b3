//! `hookrelay webhook rotate`, `rotation` and `end-rotation`: a webhook's signing key
//! rotated with an overlap, its state, and the overlap ended early. A chosen HS256
//! secret is read from standard input, never from the command line.

use std::io::Read;

use anyhow::Context;
use clap::Args;
use hookrelay_client::{ApiResponse, KeyRotation, RotateWebhook, RotatedWebhook, WebhookApi};

use super::print_one;
use crate::output;

#[derive(Args)]
pub(super) struct RotateArgs {
    /// The webhook, `whk-…`.
    id: String,
    /// HS256: read the new secret (32–256 characters) from standard input; by default
    /// the server generates one (and prints it).
    #[arg(long)]
    secret_stdin: bool,
    /// How long the old key keeps signing beside the new one (e.g. 1h, 30m; 0s for
    /// none; at most 7d). Default: 24h.
    #[arg(long, value_name = "DURATION")]
    overlap: Option<String>,
    /// Idempotency-Key for the request (default: a random one).
    #[arg(long)]
    idempotency_key: Option<String>,
}

/// Rotates and prints the webhook with its new key and the rotation.
pub(super) async fn rotate(api: WebhookApi<'_>, args: RotateArgs, json: bool) -> anyhow::Result<()> {
    let secret = args.secret_stdin.then(read_secret).transpose()?;
    let request = RotateWebhook {
        secret,
        overlap: args.overlap,
    };
    let response = match args.idempotency_key {
        Some(key) => api.rotate_with_idempotency_key(&args.id, &request, key).await?,
        None => api.rotate(&args.id, &request).await?,
    };
    print_one(json, &response, |rotated: &RotatedWebhook| {
        super::webhook::show_webhook(&rotated.webhook);
        println!();
        show_rotation(&rotated.rotation);
    });
    Ok(())
}

/// Prints a rotation state answer.
pub(super) fn print_rotation(json: bool, response: &ApiResponse<KeyRotation>) {
    print_one(json, response, show_rotation);
}

fn read_secret() -> anyhow::Result<String> {
    let mut secret = String::new();
    std::io::stdin()
        .read_to_string(&mut secret)
        .context("cannot read the secret from standard input")?;
    Ok(secret.trim_end_matches(['\r', '\n']).to_owned())
}

fn show_rotation(rotation: &KeyRotation) {
    let dash = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_owned());
    output::fields(&[
        ("webhookId", rotation.webhook_id.clone()),
        ("currentKeyId", rotation.current_key_id.clone()),
        ("previousKeyId", dash(&rotation.previous_key_id)),
        ("overlapEndTime", dash(&rotation.overlap_end_time)),
    ]);
}
