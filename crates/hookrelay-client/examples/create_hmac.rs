//! Seed example "create with HMAC verification".
//! Run with HOOKRELAY_URL, HOOKRELAY_SPACE_ID and HOOKRELAY_TOKEN set.

use hookrelay_client::{ApiRelease, Client, CreateWebhook, NewVerificationMethod};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), hookrelay_client::Error> {
    let client = Client::from_env()?;
    let response = client
        .webhook()
        .create(&CreateWebhook {
            name: "Production Webhook".into(),
            url: "https://yoursite.com/webhooks/monime".into(),
            api_release: ApiRelease::Caph,
            events: vec![
                "payment.completed".into(),
                "payment.failed".into(),
                "payout.completed".into(),
            ],
            verification_method: Some(NewVerificationMethod::Hs256 {
                secret: "your-32-character-minimum-secret-key-here".into(),
            }),
            alert_emails: Some(vec!["alerts@yoursite.com".into()]),
            metadata: json!({"environment": "production"}).as_object().cloned(),
            ..Default::default()
        })
        .await?;
    println!("{}", serde_json::to_string(&response).expect("serialises"));
    Ok(())
}
