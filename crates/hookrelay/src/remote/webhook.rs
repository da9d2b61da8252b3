//! `hookrelay webhook`: create, get, list, update, delete, settings, test, the alerts
//! raised, key rotation (`rotation.rs`) and bulk recoveries of failed deliveries.

use anyhow::bail;
use clap::{Args, Subcommand};
use futures_util::TryStreamExt;
use hookrelay_client::{Alert, ListParams, UpdateWebhook, VerificationMethod, Webhook};
use serde_json::Value;

use super::deliveries::show_delivery;
use super::recoveries;
use super::rotation::{print_rotation, rotate, RotateArgs};
use super::webhook_args::{CreateArgs, UpdateArgs};
use super::webhook_settings::{self, SettingsArgs};
use super::{print_one, print_page, Connection};
use crate::output;

#[derive(Args)]
pub struct WebhookArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: WebhookCommand,
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Create a webhook.
    Create(CreateArgs),
    /// Show a webhook.
    Get {
        /// The webhook, `whk-…`.
        id: String,
    },
    /// List webhooks, newest first.
    List {
        /// Webhooks per page (1–50).
        #[arg(long)]
        limit: Option<u32>,
        /// Continue after this cursor (a previous page's `next`).
        #[arg(long)]
        after: Option<String>,
        /// Follow every page.
        #[arg(long, conflicts_with = "after")]
        all: bool,
    },
    /// Change a webhook; only the flags given change.
    Update(UpdateArgs),
    /// Delete a webhook.
    Delete {
        /// The webhook, `whk-…`.
        id: String,
    },
    /// Show a webhook's delivery settings, or change those the flags name.
    Settings(SettingsArgs),
    /// Send a signed `webhook.test` event to a webhook.
    Test {
        /// The webhook, `whk-…`.
        id: String,
    },
    /// List the alert e-mails raised about a webhook, newest first, sent or not.
    Alerts {
        /// The webhook, `whk-…`.
        id: String,
        /// Alerts per page (1–50).
        #[arg(long)]
        limit: Option<u32>,
        /// Continue after this cursor.
        #[arg(long)]
        after: Option<String>,
    },
    /// Rotate a webhook's signing key; the old key keeps signing for the overlap.
    Rotate(RotateArgs),
    /// Show a webhook's key rotation: current key id, and the old key's id and end
    /// time while its overlap lasts.
    Rotation {
        /// The webhook, `whk-…`.
        id: String,
    },
    /// End a webhook's key rotation overlap now: only the current key signs.
    EndRotation {
        /// The webhook, `whk-…`.
        id: String,
    },
    /// Retry, in the background, every delivery of a webhook that ended failed (or
    /// cancelled) in a time window; prints the recovery as it starts.
    Recover {
        /// The webhook, `whk-…`.
        id: String,
        /// Deliveries that ended at or after this time, RFC 3339.
        #[arg(long, value_name = "TIME")]
        since: String,
        /// …and before this time, RFC 3339 (default: now).
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Only deliveries of this status, `failed` or `cancelled` (repeatable; default both).
        #[arg(long = "status", value_name = "STATUS")]
        statuses: Vec<String>,
        /// Idempotency-Key for the request (default: a random one).
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Show a recovery and its progress.
    Recovery {
        /// The webhook, `whk-…`.
        id: String,
        /// The recovery, `rcv-…`.
        recovery_id: String,
    },
    /// List a webhook's recoveries, newest first.
    Recoveries {
        /// The webhook, `whk-…`.
        id: String,
        /// Recoveries per page (1–50).
        #[arg(long)]
        limit: Option<u32>,
        /// Continue after this cursor.
        #[arg(long)]
        after: Option<String>,
    },
}

pub async fn webhook(args: WebhookArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let json = args.connection.json;
    let api = client.webhook();
    match args.command {
        WebhookCommand::Create(create) => {
            let (request, key) = create.into_request();
            let response = match key {
                Some(key) => api.create_with_idempotency_key(&request, key).await?,
                None => api.create(&request).await?,
            };
            print_one(json, &response, show_webhook);
        }
        WebhookCommand::Get { id } => print_one(json, &api.get(&id).await?, show_webhook),
        WebhookCommand::List { limit, after, all } => {
            if all {
                let webhooks: Vec<Webhook> = api.list_all().try_collect().await?;
                if json {
                    output::json(&webhooks);
                } else {
                    webhook_table(&webhooks);
                }
            } else {
                print_page(json, &api.list(ListParams { limit, after }).await?, webhook_table);
            }
        }
        WebhookCommand::Update(update) => {
            let (id, request) = update.into_request();
            if request == UpdateWebhook::default() {
                bail!("nothing to change: give at least one of --name, --url, --event, --enabled, --disabled, …");
            }
            print_one(json, &api.update(&id, &request).await?, show_webhook);
        }
        WebhookCommand::Delete { id } => {
            let response = api.delete(&id).await?;
            print_one(json, &response, |()| println!("deleted {id}"));
        }
        WebhookCommand::Settings(settings) => webhook_settings::settings(api, settings, json).await?,
        WebhookCommand::Test { id } => print_one(json, &api.test(&id).await?, show_delivery),
        WebhookCommand::Alerts { id, limit, after } => {
            print_page(json, &api.alerts(&id, ListParams { limit, after }).await?, alert_table);
        }
        WebhookCommand::Rotate(args) => rotate(api, args, json).await?,
        WebhookCommand::Rotation { id } => print_rotation(json, &api.rotation(&id).await?),
        WebhookCommand::EndRotation { id } => print_rotation(json, &api.end_rotation(&id).await?),
        WebhookCommand::Recover {
            id,
            since,
            until,
            statuses,
            idempotency_key,
        } => {
            let request = recoveries::RecoverRequest {
                id,
                since,
                until,
                statuses,
                idempotency_key,
            };
            recoveries::recover(&client, json, request).await?;
        }
        WebhookCommand::Recovery { id, recovery_id } => recoveries::show(&client, json, &id, &recovery_id).await?,
        WebhookCommand::Recoveries { id, limit, after } => {
            recoveries::list(&client, json, &id, ListParams { limit, after }).await?;
        }
    }
    Ok(())
}

pub(super) fn show_webhook(webhook: &Webhook) {
    let (method, key) = match &webhook.verification_method {
        VerificationMethod::Hs256 { secret } => ("HS256", ("secret", secret.clone())),
        VerificationMethod::Es256 { public_key } => ("ES256", ("publicKey", public_key.trim_end().to_owned())),
    };
    let map = |pairs: Vec<String>| {
        if pairs.is_empty() {
            "-".to_owned()
        } else {
            pairs.join("\n")
        }
    };
    output::fields(&[
        ("id", webhook.id.clone()),
        ("name", webhook.name.clone()),
        ("url", webhook.url.clone()),
        ("enabled", webhook.enabled.to_string()),
        (
            "apiRelease",
            serde_json::to_value(webhook.api_release)
                .map(|v| v.as_str().unwrap_or_default().to_owned())
                .unwrap_or_default(),
        ),
        ("events", webhook.events.join(", ")),
        ("verification", method.to_owned()),
        key,
        (
            "headers",
            map(webhook.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect()),
        ),
        ("alertEmails", map(webhook.alert_emails.clone())),
        (
            "metadata",
            map(webhook
                .metadata
                .iter()
                .map(|(k, v)| match v {
                    Value::String(text) => format!("{k}={text}"),
                    other => format!("{k}={other}"),
                })
                .collect()),
        ),
        ("createTime", webhook.create_time.clone()),
        ("updateTime", webhook.update_time.clone().unwrap_or_default()),
    ]);
}

fn webhook_table(webhooks: &[Webhook]) {
    let rows: Vec<Vec<String>> = webhooks
        .iter()
        .map(|w| {
            vec![
                w.id.clone(),
                w.name.clone(),
                if w.enabled { "yes" } else { "no" }.to_owned(),
                w.events.len().to_string(),
                w.url.clone(),
            ]
        })
        .collect();
    output::table(&["ID", "NAME", "ENABLED", "EVENTS", "URL"], &rows);
}

fn alert_table(alerts: &[Alert]) {
    let rows: Vec<Vec<String>> = alerts
        .iter()
        .map(|a| {
            let error: String = a.last_error.as_deref().unwrap_or("-").chars().take(60).collect();
            vec![
                a.id.clone(),
                a.kind.clone(),
                a.status.clone(),
                a.attempts.to_string(),
                a.create_time.clone(),
                a.recipients.join(", "),
                error.replace('\n', " "),
            ]
        })
        .collect();
    output::table(
        &[
            "ID",
            "KIND",
            "STATUS",
            "ATTEMPTS",
            "CREATED",
            "RECIPIENTS",
            "LAST ERROR",
        ],
        &rows,
    );
}
