//! `hookrelay webhook recover | recovery | recoveries`: retry a webhook's failed
//! deliveries in bulk through the API, and follow the recovery.

use hookrelay_client::{Client, CreateRecovery, ListParams, Recovery};

use super::{or_dash, print_page, print_row};
use crate::output;

/// What `hookrelay webhook recover` asks for.
pub struct RecoverRequest {
    pub id: String,
    pub since: String,
    pub until: Option<String>,
    pub statuses: Vec<String>,
    pub idempotency_key: Option<String>,
}

/// Starts a recovery and prints it as it starts.
pub async fn recover(client: &Client, json: bool, request: RecoverRequest) -> anyhow::Result<()> {
    let api = client.recoveries();
    let body = CreateRecovery {
        since: request.since,
        until: request.until,
        statuses: (!request.statuses.is_empty()).then_some(request.statuses),
    };
    let response = match request.idempotency_key {
        Some(key) => api.create_with_idempotency_key(&request.id, &body, key).await?,
        None => api.create(&request.id, &body).await?,
    };
    print_row(json, &response, recovery_table);
    Ok(())
}

/// Prints one recovery and its progress.
pub async fn show(client: &Client, json: bool, id: &str, recovery_id: &str) -> anyhow::Result<()> {
    let response = client.recoveries().get(id, recovery_id).await?;
    print_row(json, &response, recovery_table);
    Ok(())
}

/// Prints a page of the webhook's recoveries.
pub async fn list(client: &Client, json: bool, id: &str, params: ListParams) -> anyhow::Result<()> {
    let response = client.recoveries().list(id, params).await?;
    print_page(json, &response, recovery_table);
    Ok(())
}

fn recovery_table(recoveries: &[Recovery]) {
    let rows: Vec<Vec<String>> = recoveries
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.status.clone(),
                r.since.clone(),
                r.until.clone(),
                r.statuses.join(","),
                r.matched.to_string(),
                r.requeued.to_string(),
                r.skipped.to_string(),
                or_dash(&r.finish_time),
            ]
        })
        .collect();
    output::table(
        &[
            "ID", "STATUS", "SINCE", "UNTIL", "STATUSES", "MATCHED", "REQUEUED", "SKIPPED", "FINISHED",
        ],
        &rows,
    );
}
