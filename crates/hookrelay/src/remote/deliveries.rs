//! `hookrelay deliveries`: list, get, retry.

use clap::{Args, Subcommand};
use hookrelay_client::{Delivery, DeliveryListParams};

use super::{or_dash, print_one, print_page, Connection};
use crate::output;

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
            print_page(json, &response, delivery_table);
        }
        DeliveryCommand::Get { webhook, id } => {
            print_one(json, &api.get(&webhook, &id).await?, show_delivery);
        }
        DeliveryCommand::Retry { webhook, id } => {
            print_one(json, &api.retry(&webhook, &id).await?, show_delivery);
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
                or_dash(&d.next_attempt_time),
            ]
        })
        .collect();
    output::table(&["ID", "EVENT", "STATUS", "ATTEMPTS", "NEXT ATTEMPT"], &rows);
}

pub(super) fn show_delivery(delivery: &Delivery) {
    output::fields(&[
        ("id", delivery.id.clone()),
        ("webhook", delivery.webhook_id.clone()),
        ("event", format!("{} {}", delivery.event_name, delivery.event_id)),
        ("status", delivery.status.clone()),
        ("attempts", delivery.attempt_count.to_string()),
        ("nextAttempt", or_dash(&delivery.next_attempt_time)),
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
                    or_dash(&a.error_kind),
                    body.replace('\n', " "),
                ]
            })
            .collect();
        output::table(&["#", "STARTED", "MS", "STATUS", "ERROR", "RESPONSE"], &rows);
    }
}
