//! Seed example "update - disable". Set WEBHOOK_ID.

use hookrelay_client::{Client, UpdateWebhook};

#[tokio::main]
async fn main() -> Result<(), hookrelay_client::Error> {
    let client = Client::from_env()?;
    let webhook_id = std::env::var("WEBHOOK_ID").expect("set WEBHOOK_ID");
    let response = client
        .webhook()
        .update(
            &webhook_id,
            &UpdateWebhook {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await?;
    println!("{}", serde_json::to_string(&response).expect("serialises"));
    Ok(())
}
