//! Seed example "create with custom headers".

use std::collections::BTreeMap;

use hookrelay_client::{ApiRelease, Client, CreateWebhook, NewVerificationMethod};

#[tokio::main]
async fn main() -> Result<(), hookrelay_client::Error> {
    let client = Client::from_env()?;
    let headers = BTreeMap::from([
        ("X-Custom-Auth".to_string(), "your-auth-token-here".to_string()),
        ("X-Environment".to_string(), "production".to_string()),
    ]);
    let response = client
        .webhook()
        .create(&CreateWebhook {
            name: "Authenticated Webhook".into(),
            url: "https://yoursite.com/webhooks/monime".into(),
            api_release: ApiRelease::Caph,
            events: vec!["payment.completed".into(), "checkout_session.completed".into()],
            verification_method: Some(NewVerificationMethod::Hs256 {
                secret: "minimum-32-character-secret-for-production".into(),
            }),
            headers: Some(headers),
            ..Default::default()
        })
        .await?;
    println!("{}", serde_json::to_string(&response).expect("serialises"));
    Ok(())
}
