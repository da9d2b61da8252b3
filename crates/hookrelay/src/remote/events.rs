//! `hookrelay events`: publish, get, list.

use anyhow::Context;
use clap::{Args, Subcommand};
use hookrelay_client::{Event, EventObject, ListParams, PublishEvent};
use serde_json::Value;

use super::{print_one, print_page, print_row, Connection};
use crate::output;

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
            print_one(json, &response, |event| {
                println!(
                    "published {} ({}) to {} webhook(s)",
                    event.id, event.name, event.delivery_count
                );
            });
        }
        EventCommand::Get { id } => {
            let response = api.get(&id).await?;
            print_row(json, &response, event_table);
        }
        EventCommand::List { limit, after } => {
            let response = api.list(ListParams { limit, after }).await?;
            print_page(json, &response, event_table);
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
