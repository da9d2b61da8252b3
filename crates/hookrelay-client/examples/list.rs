//! Seed example "list": one page with its pagination, then every webhook via `list_all`.

use futures_util::TryStreamExt;
use hookrelay_client::Client;

#[tokio::main]
async fn main() -> Result<(), hookrelay_client::Error> {
    let client = Client::from_env()?;
    let response = client.webhook().list(Default::default()).await?;
    println!("{}", serde_json::to_string(&response).expect("serialises"));
    let all: Vec<_> = client.webhook().list_all().try_collect().await?;
    eprintln!("{} webhooks in all", all.len());
    Ok(())
}
