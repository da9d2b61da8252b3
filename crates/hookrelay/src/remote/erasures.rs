//! `hookrelay erasures`: erase the data of an object's events through the API (what a
//! GDPR request needs; your token needs `events:erase`), and list or read the records.

use clap::{Args, Subcommand};
use hookrelay_client::{CreateErasure, Erasure, ListParams};

use super::{or_dash, print_page, print_row, Connection};
use crate::output;

#[derive(Args)]
pub struct ErasureArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: ErasureCommand,
}

#[derive(Subcommand)]
enum ErasureCommand {
    /// Erase the data of every event of an object (and its attempts' response bodies),
    /// cancelling their pending deliveries; prints the record.
    Create {
        /// The object, `object.id` as published.
        #[arg(long)]
        object_id: String,
        /// Only events published at or after this time, RFC 3339.
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// Only events published before this time, RFC 3339.
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
        /// Idempotency-Key for the request (default: a random one).
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// List your space's erasure records, newest first.
    List {
        /// Records per page (1–50).
        #[arg(long)]
        limit: Option<u32>,
        /// Continue after this cursor.
        #[arg(long)]
        after: Option<String>,
    },
    /// Show one erasure record.
    Get {
        /// The erasure's id, `ers-…`.
        id: String,
    },
}

pub async fn erasures(args: ErasureArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let json = args.connection.json;
    let api = client.erasures();
    match args.command {
        ErasureCommand::Create {
            object_id,
            from,
            to,
            idempotency_key,
        } => {
            let erasure = CreateErasure { object_id, from, to };
            let response = match idempotency_key {
                Some(key) => api.create_with_idempotency_key(&erasure, key).await?,
                None => api.create(&erasure).await?,
            };
            print_row(json, &response, erasure_table);
        }
        ErasureCommand::List { limit, after } => {
            let response = api.list(ListParams { limit, after }).await?;
            print_page(json, &response, erasure_table);
        }
        ErasureCommand::Get { id } => {
            let response = api.get(&id).await?;
            print_row(json, &response, erasure_table);
        }
    }
    Ok(())
}

fn erasure_table(erasures: &[Erasure]) {
    let rows: Vec<Vec<String>> = erasures
        .iter()
        .map(|e| {
            vec![
                e.id.clone(),
                e.object_id.clone(),
                or_dash(&e.from),
                or_dash(&e.to),
                e.events_erased.to_string(),
                e.deliveries_cancelled.to_string(),
                e.create_time.clone(),
            ]
        })
        .collect();
    output::table(
        &[
            "ID",
            "OBJECT",
            "FROM",
            "TO",
            "EVENTS ERASED",
            "DELIVERIES CANCELLED",
            "CREATED",
        ],
        &rows,
    );
}
