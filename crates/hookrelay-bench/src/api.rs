//! The few API calls a run makes (create and delete webhooks, publish events), made
//! with plain reqwest rather than the SDK so that the harness measures the server and
//! not the SDK's retry policy, and so a publish's latency is one request's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use axum::body::Bytes;
use rand::distributions::Alphanumeric;
use rand::Rng;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{json, Value};

/// Tries for one publish; retries reuse the Idempotency-Key, so none can double an event.
const PUBLISH_TRIES: u32 = 5;

/// A client for one server and space.
#[derive(Clone)]
pub struct Api {
    client: Client,
    base: String,
    space: String,
    token: String,
}

/// One accepted publish.
#[derive(Clone, Debug)]
pub struct Published {
    pub event_id: String,
    /// When the first try was sent.
    pub start: Instant,
    /// From the first try's send to the accepted answer's last byte.
    pub latency: Duration,
}

impl Api {
    pub fn new(base: &str, space: &str, token: &str) -> Result<Self> {
        let client = Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            client,
            base: base.to_owned(),
            space: space.to_owned(),
            token: token.to_owned(),
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("Monime-Space-Id", &self.space)
    }

    /// POST /v1/webhooks for `payment.completed` with an HS256 secret; the new id.
    pub async fn create_webhook(&self, name: &str, url: &str, secret: &str, key: &str) -> Result<String> {
        let body = json!({
            "name": name,
            "url": url,
            "events": ["payment.completed"],
            "verificationMethod": {"type": "HS256", "secret": secret},
        });
        let response = self
            .request(reqwest::Method::POST, "/v1/webhooks")
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .context("POST /v1/webhooks")?;
        let answer = json_answer(response).await.context("creating a webhook")?;
        result_id(&answer)
    }

    /// Any call answered with JSON: `body` sent as JSON if given, under `key` if given.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value> {
        let mut request = self.request(method.clone(), path);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.with_context(|| format!("{method} {path}"))?;
        json_answer(response).await.with_context(|| format!("{method} {path}"))
    }

    /// PUT /v1/webhooks/{id}/settings with `settings` (a partial update).
    pub async fn put_settings(&self, id: &str, settings: &Value) -> Result<()> {
        let response = self
            .request(reqwest::Method::PUT, &format!("/v1/webhooks/{id}/settings"))
            .json(settings)
            .send()
            .await?;
        json_answer(response)
            .await
            .with_context(|| format!("settings of {id}"))?;
        Ok(())
    }

    /// DELETE /v1/webhooks/{id} (cleaning up on a database that outlives the run).
    pub async fn delete_webhook(&self, id: &str) -> Result<()> {
        let response = self
            .request(reqwest::Method::DELETE, &format!("/v1/webhooks/{id}"))
            .send()
            .await?;
        json_answer(response).await.with_context(|| format!("deleting {id}"))?;
        Ok(())
    }

    /// POST /v1/events; retries transport errors, 409 (key in progress), 429 and 5xx.
    pub async fn publish(&self, key: &str, body: String) -> Result<Published> {
        // Shared, not copied, by each try.
        let body = Bytes::from(body);
        let start = Instant::now();
        // Made only when a try fails: an `anyhow` error captures a backtrace when
        // RUST_BACKTRACE is set, which would cost every publish the time of an unwind.
        let mut last_error = None;
        for attempt in 1..=PUBLISH_TRIES {
            if attempt > 1 {
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
            let sent = self
                .request(reqwest::Method::POST, "/v1/events")
                .header("Idempotency-Key", key)
                .header("Content-Type", "application/json")
                .body(body.clone())
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(error) => {
                    last_error = Some(anyhow!(error).context("POST /v1/events"));
                    continue;
                }
            };
            let status = response.status();
            let retryable =
                status == StatusCode::CONFLICT || status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
            match answered_id(response).await {
                Ok(event_id) => {
                    return Ok(Published {
                        event_id,
                        start,
                        latency: start.elapsed(),
                    })
                }
                Err(error) if retryable => last_error = Some(error),
                Err(error) => return Err(error.context("POST /v1/events")),
            }
        }
        let last_error = last_error.unwrap_or_else(|| anyhow!("no try made"));
        Err(last_error.context(format!("publishing failed after {PUBLISH_TRIES} tries")))
    }
}

/// The JSON answer of a 2xx; an error naming the status and body otherwise.
async fn json_answer(response: reqwest::Response) -> Result<Value> {
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("{status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("not JSON ({status}): {text}"))
}

/// `result.id` of a 2xx JSON answer, read without building the whole document (the
/// harness shares the machine with the server, so its own work is kept small).
async fn answered_id(response: reqwest::Response) -> Result<String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        result: Identified,
    }
    #[derive(serde::Deserialize)]
    struct Identified {
        id: String,
    }
    let status = response.status();
    let bytes = response.bytes().await?;
    if !status.is_success() {
        bail!("{status}: {}", String::from_utf8_lossy(&bytes));
    }
    let answer: Answer = serde_json::from_slice(&bytes)
        .with_context(|| format!("no result.id in ({status}): {}", String::from_utf8_lossy(&bytes)))?;
    Ok(answer.result.id)
}

fn result_id(answer: &Value) -> Result<String> {
    answer["result"]["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no result.id in {answer}"))
}

/// `len` random letters and digits.
pub fn random_text(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// The body of the `n`th event of a run: a completed payment, about 1 KiB of `data`,
/// shaped like what a payment platform sends (amounts, fees, channel, customer, metadata).
/// Written as text from a template, not built as a JSON tree and serialised: the harness
/// shares the 2 cores with the server, and building trees was most of a publisher's
/// own work. `run` is made of letters, digits and `-`, which need no escaping.
pub fn payment_event(run: &str, n: usize) -> String {
    let amount = 1_000 + (n as u64 * 7_919) % 500_000;
    let fee = amount / 100;
    let net = amount - fee - 50;
    let phone = n % 10_000_000;
    let customer = n % 50_000;
    format!(
        concat!(
            r#"{{"name":"payment.completed","object":{{"id":"pmt-{run}-{n:06}","type":"payment"}},"data":{{"#,
            r#""id":"pmt-{run}-{n:06}","status":"completed","amount":{{"currency":"SLE","value":{amount}}},"#,
            r#""fees":[{{"code":"processing","amount":{{"currency":"SLE","value":{fee}}}}},"#,
            r#"{{"code":"platform","amount":{{"currency":"SLE","value":50}}}}],"#,
            r#""netAmount":{{"currency":"SLE","value":{net}}},"orderNumber":"ORD-{n:08}","#,
            r#""reference":"INV-2026-{n:06}","financialAccountId":"fac-S2b7kQ9xLmN4pR8tV1wY3z","#,
            r#""financialTransactionReference":"ftr-{run}-{n:06}","checkoutSessionId":"cos-{run}-{n:06}","#,
            r#""channel":{{"type":"mobile_money","provider":"m17","accountNumber":"+2327{phone:07}","#,
            r#""accountName":"Aminata Kamara"}},"customer":{{"id":"cus-{customer:06}","name":"Aminata Kamara","#,
            r#""email":"aminata.kamara@example.com","phone":"+2327{phone:07}"}},"#,
            r#""ownershipGraph":{{"owner":{{"id":"spc-bench","type":"space"}},"#,
            r#""owners":[{{"id":"app-storefront","type":"app"}}]}},"#,
            r#""description":"Order payment: 2 x rice (25 kg), 1 x cooking oil (5 l), delivery to Freetown","#,
            r#""createTime":"2026-11-27T10:00:00.000Z","updateTime":"2026-11-27T10:00:02.500Z","#,
            r#""completeTime":"2026-11-27T10:00:02.500Z","metadata":{{"cartId":"cart-{n:08}","#,
            r#""storeId":"store-freetown-central","source":"hookrelay-bench","campaign":"november-promotion"}}}}}}"#,
        ),
        run = run,
        n = n,
        amount = amount,
        fee = fee,
        net = net,
        phone = phone,
        customer = customer,
    )
}

/// [`payment_event`] `n`, of the object `object` instead of one of its own.
pub fn payment_event_of(run: &str, n: usize, object: &str) -> String {
    let own = format!(r#""object":{{"id":"pmt-{run}-{n:06}""#);
    payment_event(run, n).replacen(&own, &format!(r#""object":{{"id":"{object}""#), 1)
}

/// Publishes `rate` events a second until `stop`, each on its own task so a slow answer
/// does not delay the next; the accepted publishes and how many failed.
pub async fn publish_steadily(
    api: Api,
    tag: String,
    rate: u32,
    stop: Arc<AtomicBool>,
) -> Result<(Vec<Published>, usize)> {
    let period = Duration::from_secs(1) / rate.max(1);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    let mut n = 0u32;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep_until(start + period * n).await;
        let (api, tag) = (api.clone(), tag.clone());
        let index = n as usize;
        tasks.push(tokio::spawn(async move {
            api.publish(&format!("bench-{tag}-{index}"), payment_event(&tag, index))
                .await
        }));
        n += 1;
    }
    let mut published = Vec::with_capacity(tasks.len());
    let mut failures = 0;
    for task in tasks {
        match task.await? {
            Ok(p) => published.push(p),
            Err(_) => failures += 1,
        }
    }
    Ok((published, failures))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_events_are_json_with_about_one_kib_of_data() {
        let event: Value = serde_json::from_str(&payment_event("abc-123", 123_456)).unwrap();
        assert_eq!(event["name"], "payment.completed");
        assert_eq!(event["object"], json!({"id": "pmt-abc-123-123456", "type": "payment"}));
        let data = &event["data"];
        assert_eq!(data["id"], "pmt-abc-123-123456");
        let amount = data["amount"]["value"].as_u64().unwrap();
        let fee = data["fees"][0]["amount"]["value"].as_u64().unwrap();
        assert_eq!(data["netAmount"]["value"].as_u64().unwrap(), amount - fee - 50);
        assert_eq!(data["customer"]["phone"], "+23270123456");
        let size = serde_json::to_vec(data).unwrap().len();
        assert!((900..=1_300).contains(&size), "data is {size} bytes");
    }

    #[test]
    fn an_event_of_a_given_object_names_it() {
        let event: Value = serde_json::from_str(&payment_event_of("abc", 7, "obj-3")).unwrap();
        assert_eq!(event["object"], json!({"id": "obj-3", "type": "payment"}));
        assert_eq!(event["data"]["id"], "pmt-abc-000007");
    }
}
