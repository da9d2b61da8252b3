//! Seed example "create with ECDSA verification": the server generates the P-256 key
//! pair and returns the PEM public key in `verificationMethod.publicKey`.

use hookrelay_client::{ApiRelease, Client, CreateWebhook, NewVerificationMethod};

#[tokio::main]
async fn main() -> Result<(), hookrelay_client::Error> {
    let client = Client::from_env()?;
    let response = client
        .webhook()
        .create(&CreateWebhook {
            name: "Secure ECDSA Webhook".into(),
            url: "https://yoursite.com/webhooks/monime-secure".into(),
            api_release: ApiRelease::Caph,
            events: vec![
                "payment.completed".into(),
                "payment.failed".into(),
                "payout.completed".into(),
                "payout.failed".into(),
            ],
            verification_method: Some(NewVerificationMethod::Es256),
            alert_emails: Some(vec!["security@yoursite.com".into()]),
            ..Default::default()
        })
        .await?;
    println!("{}", serde_json::to_string(&response).expect("serialises"));
    Ok(())
}
