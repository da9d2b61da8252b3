//! The commands that call a running server through the SDK: `webhook`, `events`,
//! `deliveries`. Connection settings come from flags or `HOOKRELAY_URL`,
//! `HOOKRELAY_SPACE_ID` and `HOOKRELAY_TOKEN`.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use futures_util::TryStreamExt;
use hookrelay_client::{
    ApiRelease, Client, CreateWebhook, Delivery, DeliveryListParams, Event, EventObject, ListParams,
    NewVerificationMethod, PublishEvent, UpdateWebhook, VerificationMethod, Webhook,
};
use serde_json::{Map, Value};

use crate::output;

/// How to reach the server, and how to print.
#[derive(Args)]
pub struct Connection {
    /// The hookrelay server's base URL.
    #[arg(
        long = "server",
        env = "HOOKRELAY_URL",
        default_value = "http://127.0.0.1:8080",
        global = true,
        value_name = "URL"
    )]
    server: String,
    /// Your space, `spc-…`.
    #[arg(long, env = "HOOKRELAY_SPACE_ID", global = true)]
    space_id: Option<String>,
    /// Your access token.
    #[arg(long, env = "HOOKRELAY_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Print the API's JSON answer instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

impl Connection {
    fn client(&self) -> anyhow::Result<Client> {
        let space = self
            .space_id
            .clone()
            .context("no space: give --space-id or set HOOKRELAY_SPACE_ID")?;
        let token = self
            .token
            .clone()
            .context("no token: give --token or set HOOKRELAY_TOKEN")?;
        Ok(Client::builder(space, token).base_url(&self.server).build()?)
    }
}

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
    /// Send a signed `webhook.test` event to a webhook.
    Test {
        /// The webhook, `whk-…`.
        id: String,
    },
}

#[derive(Args)]
struct CreateArgs {
    /// Name (1–100 characters).
    #[arg(long)]
    name: String,
    /// Where deliveries go (absolute http or https URL).
    #[arg(long)]
    url: String,
    /// An event to subscribe to; repeat for more.
    #[arg(long = "event", required = true, value_name = "EVENT")]
    events: Vec<String>,
    /// Payload release.
    #[arg(long, default_value = "caph", value_parser = ["caph", "siriusb"])]
    api_release: String,
    /// Sign with HS256 and this secret (32–256 characters). Default: a generated secret.
    #[arg(long, conflicts_with = "es256", value_name = "SECRET")]
    hs256_secret: Option<String>,
    /// Sign with ES256: the server generates the key pair and prints the public key.
    #[arg(long)]
    es256: bool,
    /// A header sent with every delivery; repeat for more.
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = key_value)]
    headers: Vec<(String, String)>,
    /// An address told about repeated failures (at most 2).
    #[arg(long = "alert-email", value_name = "EMAIL")]
    alert_emails: Vec<String>,
    /// A metadata entry; repeat for more.
    #[arg(long = "metadata", value_name = "KEY=VALUE", value_parser = key_value)]
    metadata: Vec<(String, String)>,
    /// Create it enabled (the default).
    #[arg(long, conflicts_with = "disabled")]
    enabled: bool,
    /// Create it disabled.
    #[arg(long)]
    disabled: bool,
    /// Idempotency-Key for the request (default: a random one).
    #[arg(long)]
    idempotency_key: Option<String>,
}

#[derive(Args)]
struct UpdateArgs {
    /// The webhook, `whk-…`.
    id: String,
    /// New name.
    #[arg(long)]
    name: Option<String>,
    /// New URL.
    #[arg(long)]
    url: Option<String>,
    /// Subscribe to exactly these events (repeat); replaces the current list.
    #[arg(long = "event", value_name = "EVENT")]
    events: Vec<String>,
    /// New payload release.
    #[arg(long, value_parser = ["caph", "siriusb"])]
    api_release: Option<String>,
    /// Replace the headers with these (repeat).
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = key_value)]
    headers: Vec<(String, String)>,
    /// Remove every custom header.
    #[arg(long, conflicts_with = "headers")]
    clear_headers: bool,
    /// Replace the alert e-mails with these (repeat).
    #[arg(long = "alert-email", value_name = "EMAIL")]
    alert_emails: Vec<String>,
    /// Remove every alert e-mail.
    #[arg(long, conflicts_with = "alert_emails")]
    clear_alert_emails: bool,
    /// Replace the metadata with these entries (repeat).
    #[arg(long = "metadata", value_name = "KEY=VALUE", value_parser = key_value)]
    metadata: Vec<(String, String)>,
    /// Remove all metadata.
    #[arg(long, conflicts_with = "metadata")]
    clear_metadata: bool,
    /// Enable the webhook.
    #[arg(long, conflicts_with = "disabled")]
    enabled: bool,
    /// Disable the webhook.
    #[arg(long)]
    disabled: bool,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))
}

fn release(name: &str) -> ApiRelease {
    if name == "siriusb" {
        ApiRelease::Siriusb
    } else {
        ApiRelease::Caph
    }
}

fn metadata(entries: Vec<(String, String)>) -> Map<String, Value> {
    entries.into_iter().map(|(k, v)| (k, Value::String(v))).collect()
}

pub async fn webhook(args: WebhookArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let json = args.connection.json;
    let api = client.webhook();
    match args.command {
        WebhookCommand::Create(create) => {
            let request = CreateWebhook {
                name: create.name,
                url: create.url,
                api_release: release(&create.api_release),
                events: create.events,
                enabled: create.disabled.then_some(false),
                verification_method: match (create.hs256_secret, create.es256) {
                    (Some(secret), _) => Some(NewVerificationMethod::Hs256 { secret }),
                    (None, true) => Some(NewVerificationMethod::Es256),
                    (None, false) => None,
                },
                headers: (!create.headers.is_empty()).then(|| create.headers.into_iter().collect()),
                alert_emails: (!create.alert_emails.is_empty()).then_some(create.alert_emails),
                metadata: (!create.metadata.is_empty()).then(|| metadata(create.metadata)),
            };
            let response = match create.idempotency_key {
                Some(key) => api.create_with_idempotency_key(&request, key).await?,
                None => api.create(&request).await?,
            };
            if json {
                output::json(&response);
            } else {
                show_webhook(&response.result);
            }
        }
        WebhookCommand::Get { id } => {
            let response = api.get(&id).await?;
            if json {
                output::json(&response);
            } else {
                show_webhook(&response.result);
            }
        }
        WebhookCommand::List { limit, after, all } => {
            if all {
                let webhooks: Vec<Webhook> = api.list_all().try_collect().await?;
                if json {
                    output::json(&webhooks);
                } else {
                    webhook_table(&webhooks);
                }
            } else {
                let response = api.list(ListParams { limit, after }).await?;
                if json {
                    output::json(&response);
                } else {
                    webhook_table(&response.result);
                    if let Some(next) = &response.pagination.next {
                        println!("\nmore: --after {next}");
                    }
                }
            }
        }
        WebhookCommand::Update(update) => {
            let request = UpdateWebhook {
                name: update.name,
                url: update.url,
                enabled: match (update.enabled, update.disabled) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                },
                api_release: update.api_release.as_deref().map(release),
                events: (!update.events.is_empty()).then_some(update.events),
                headers: if update.clear_headers {
                    Some(BTreeMap::new())
                } else {
                    (!update.headers.is_empty()).then(|| update.headers.into_iter().collect())
                },
                alert_emails: if update.clear_alert_emails {
                    Some(Vec::new())
                } else {
                    (!update.alert_emails.is_empty()).then_some(update.alert_emails)
                },
                metadata: if update.clear_metadata {
                    Some(Map::new())
                } else {
                    (!update.metadata.is_empty()).then(|| metadata(update.metadata))
                },
            };
            if request == UpdateWebhook::default() {
                bail!("nothing to change: give at least one of --name, --url, --event, --enabled, --disabled, …");
            }
            let response = api.update(&update.id, &request).await?;
            if json {
                output::json(&response);
            } else {
                show_webhook(&response.result);
            }
        }
        WebhookCommand::Delete { id } => {
            let response = api.delete(&id).await?;
            if json {
                output::json(&response);
            } else {
                println!("deleted {id}");
            }
        }
        WebhookCommand::Test { id } => {
            let response = api.test(&id).await?;
            if json {
                output::json(&response);
            } else {
                show_delivery(&response.result);
            }
        }
    }
    Ok(())
}

fn show_webhook(webhook: &Webhook) {
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

#[derive(Args)]
pub struct EventArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: EventCommand,
}

#[derive(Subcommand)]
enum EventCommand {
    /// Publish an event to every subscribed webhook.
    Publish {
        /// The event name, e.g. payment.completed.
        name: String,
        /// The id of the object the event is about, e.g. pmt-123.
        #[arg(long)]
        object_id: String,
        /// The type of that object, e.g. payment.
        #[arg(long)]
        object_type: String,
        /// The object as JSON, inline or `@file.json`.
        #[arg(long, default_value = "{}")]
        data: String,
        /// Idempotency-Key for the request (default: a random one).
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Show an event.
    Get {
        /// The event, `evt-…`.
        id: String,
    },
    /// List events, newest first.
    List {
        /// Events per page (1–50).
        #[arg(long)]
        limit: Option<u32>,
        /// Continue after this cursor.
        #[arg(long)]
        after: Option<String>,
    },
}

pub async fn events(args: EventArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let json = args.connection.json;
    let api = client.events();
    match args.command {
        EventCommand::Publish {
            name,
            object_id,
            object_type,
            data,
            idempotency_key,
        } => {
            let text = match data.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?,
                None => data,
            };
            let data: Value = serde_json::from_str(&text).context("--data is not JSON")?;
            let event = PublishEvent {
                name,
                object: EventObject {
                    id: object_id,
                    object_type,
                },
                data,
            };
            let response = match idempotency_key {
                Some(key) => api.publish_with_idempotency_key(&event, key).await?,
                None => api.publish(&event).await?,
            };
            if json {
                output::json(&response);
            } else {
                println!(
                    "published {} ({}) to {} webhook(s)",
                    response.result.id, response.result.name, response.result.delivery_count
                );
            }
        }
        EventCommand::Get { id } => {
            let response = api.get(&id).await?;
            if json {
                output::json(&response);
            } else {
                event_table(std::slice::from_ref(&response.result));
            }
        }
        EventCommand::List { limit, after } => {
            let response = api.list(ListParams { limit, after }).await?;
            if json {
                output::json(&response);
            } else {
                event_table(&response.result);
                if let Some(next) = &response.pagination.next {
                    println!("\nmore: --after {next}");
                }
            }
        }
    }
    Ok(())
}

fn event_table(events: &[Event]) {
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.id.clone(),
                e.name.clone(),
                format!("{} {}", e.object.object_type, e.object.id),
                e.delivery_count.to_string(),
                e.create_time.clone(),
            ]
        })
        .collect();
    output::table(&["ID", "NAME", "OBJECT", "DELIVERIES", "CREATED"], &rows);
}

#[derive(Args)]
pub struct DeliveryArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: DeliveryCommand,
}

#[derive(Subcommand)]
enum DeliveryCommand {
    /// List a webhook's deliveries, newest first.
    List {
        /// The webhook, `whk-…`.
        #[arg(long)]
        webhook: String,
        /// Only deliveries in this state.
        #[arg(long, value_parser = ["pending", "succeeded", "failed", "cancelled"])]
        status: Option<String>,
        /// Deliveries per page (1–50).
        #[arg(long)]
        limit: Option<u32>,
        /// Continue after this cursor.
        #[arg(long)]
        after: Option<String>,
    },
    /// Show a delivery and its attempt log.
    Get {
        /// The webhook, `whk-…`.
        #[arg(long)]
        webhook: String,
        /// The delivery, `dlv-…`.
        id: String,
    },
    /// Attempt a delivery again now.
    Retry {
        /// The webhook, `whk-…`.
        #[arg(long)]
        webhook: String,
        /// The delivery, `dlv-…`.
        id: String,
    },
}

pub async fn deliveries(args: DeliveryArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let json = args.connection.json;
    let api = client.deliveries();
    match args.command {
        DeliveryCommand::List {
            webhook,
            status,
            limit,
            after,
        } => {
            let response = api.list(&webhook, DeliveryListParams { status, limit, after }).await?;
            if json {
                output::json(&response);
            } else {
                delivery_table(&response.result);
                if let Some(next) = &response.pagination.next {
                    println!("\nmore: --after {next}");
                }
            }
        }
        DeliveryCommand::Get { webhook, id } => {
            let response = api.get(&webhook, &id).await?;
            if json {
                output::json(&response);
            } else {
                show_delivery(&response.result);
            }
        }
        DeliveryCommand::Retry { webhook, id } => {
            let response = api.retry(&webhook, &id).await?;
            if json {
                output::json(&response);
            } else {
                show_delivery(&response.result);
            }
        }
    }
    Ok(())
}

fn delivery_table(deliveries: &[Delivery]) {
    let rows: Vec<Vec<String>> = deliveries
        .iter()
        .map(|d| {
            vec![
                d.id.clone(),
                d.event_name.clone(),
                d.status.clone(),
                d.attempt_count.to_string(),
                d.next_attempt_time.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    output::table(&["ID", "EVENT", "STATUS", "ATTEMPTS", "NEXT ATTEMPT"], &rows);
}

fn show_delivery(delivery: &Delivery) {
    output::fields(&[
        ("id", delivery.id.clone()),
        ("webhook", delivery.webhook_id.clone()),
        ("event", format!("{} {}", delivery.event_name, delivery.event_id)),
        ("status", delivery.status.clone()),
        ("attempts", delivery.attempt_count.to_string()),
        (
            "nextAttempt",
            delivery.next_attempt_time.clone().unwrap_or_else(|| "-".into()),
        ),
    ]);
    if let Some(attempts) = delivery.attempts.as_deref().filter(|a| !a.is_empty()) {
        println!();
        let rows: Vec<Vec<String>> = attempts
            .iter()
            .map(|a| {
                let body: String = a.response_body.as_deref().unwrap_or("").chars().take(60).collect();
                vec![
                    a.attempt.to_string(),
                    a.start_time.clone(),
                    a.duration_ms.to_string(),
                    a.status_code.map_or_else(|| "-".into(), |s| s.to_string()),
                    a.error_kind.clone().unwrap_or_else(|| "-".into()),
                    body.replace('\n', " "),
                ]
            })
            .collect();
        output::table(&["#", "STARTED", "MS", "STATUS", "ERROR", "RESPONSE"], &rows);
    }
}
