//! The HTTP client: authentication, retries with backoff, idempotency keys.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Error;
use crate::redact::Redacted;
use crate::resources::{DeliveryApi, EventApi, TokenApi, WebhookApi};

/// A client for one space of a hookrelay server. Cheap to clone. `Debug` shows the base
/// URL and the space, never the token.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: String,
    space_id: String,
    token: String,
    max_retries: u32,
    backoff_base: Duration,
    backoff_max: Duration,
}

/// Builds a [`Client`]. `Debug` never shows the token.
#[derive(Clone)]
pub struct ClientBuilder {
    space_id: String,
    token: String,
    base_url: String,
    timeout: Duration,
    max_retries: u32,
    backoff_base: Duration,
    backoff_max: Duration,
}

impl ClientBuilder {
    /// The server, e.g. `https://hooks.example.com` (default `http://127.0.0.1:8080`).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Time one request may take (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Retries after a network error, a timeout, a 429 or a 5xx (default 2).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// First retry delay, doubled each time up to `max` (defaults 200 ms and 10 s).
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max;
        self
    }

    /// The client.
    pub fn build(self) -> Result<Client, Error> {
        let base_url = self.base_url.trim_end_matches('/').to_owned();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(Error::Config(format!(
                "base URL {base_url:?} must start with http:// or https://"
            )));
        }
        if !self.space_id.starts_with("spc-") {
            return Err(Error::Config(format!(
                "space id {:?} must start with spc-",
                self.space_id
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .user_agent(concat!("hookrelay-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base_url,
                space_id: self.space_id,
                token: self.token,
                max_retries: self.max_retries,
                backoff_base: self.backoff_base,
                backoff_max: self.backoff_max,
            }),
        })
    }
}

impl Client {
    /// A client for `space_id` with `token`, on `http://127.0.0.1:8080`.
    pub fn new(space_id: impl Into<String>, token: impl Into<String>) -> Result<Self, Error> {
        Self::builder(space_id, token).build()
    }

    /// A client configured by the environment, like the `hookrelay` CLI:
    /// `HOOKRELAY_URL` (default `http://127.0.0.1:8080`), `HOOKRELAY_SPACE_ID`, `HOOKRELAY_TOKEN`.
    pub fn from_env() -> Result<Self, Error> {
        let var = |name: &str| std::env::var(name).map_err(|_| Error::Config(format!("{name} is not set")));
        let mut builder = Self::builder(var("HOOKRELAY_SPACE_ID")?, var("HOOKRELAY_TOKEN")?);
        if let Ok(url) = std::env::var("HOOKRELAY_URL") {
            builder = builder.base_url(url);
        }
        builder.build()
    }

    /// Starts building a client.
    pub fn builder(space_id: impl Into<String>, token: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            space_id: space_id.into(),
            token: token.into(),
            base_url: "http://127.0.0.1:8080".into(),
            timeout: Duration::from_secs(30),
            max_retries: 2,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
        }
    }

    /// Webhooks: create, get, list, update, delete, test, and their alerts.
    pub fn webhook(&self) -> WebhookApi<'_> {
        WebhookApi::new(self)
    }

    /// Events: publish, get, list.
    pub fn events(&self) -> EventApi<'_> {
        EventApi::new(self)
    }

    /// Delivery history: list, get, retry.
    pub fn deliveries(&self) -> DeliveryApi<'_> {
        DeliveryApi::new(self)
    }

    /// Access tokens: create, list, revoke.
    pub fn tokens(&self) -> TokenApi<'_> {
        TokenApi::new(self)
    }

    /// Bulk recoveries of a webhook's failed deliveries: create, list, get.
    pub fn recoveries(&self) -> crate::recoveries::RecoveryApi<'_> {
        crate::recoveries::RecoveryApi::new(self)
    }

    /// Erasures of events' data: create, list, get.
    pub fn erasures(&self) -> crate::erasures::ErasureApi<'_> {
        crate::erasures::ErasureApi::new(self)
    }

    /// Sends a request, retrying transient failures. A POST always carries an
    /// `Idempotency-Key` (the caller's, or a new random one), the same on every retry.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&(impl Serialize + ?Sized)>,
        idempotency_key: Option<String>,
    ) -> Result<T, Error> {
        let inner = &self.inner;
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| Error::Decode(e.to_string()))?;
        let key = (method == Method::POST).then(|| idempotency_key.unwrap_or_else(new_idempotency_key));
        let url = format!("{}{}", inner.base_url, path);
        let mut retry = 0;
        loop {
            let mut request = inner
                .http
                .request(method.clone(), &url)
                .bearer_auth(&inner.token)
                .header("Monime-Space-Id", &inner.space_id)
                .query(query);
            if let Some(key) = &key {
                request = request.header("Idempotency-Key", key);
            }
            if let Some(body) = &body {
                request = request.header(CONTENT_TYPE, "application/json").body(body.clone());
            }
            let (error, retry_after) = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let bytes = match response.bytes().await {
                        Ok(bytes) => bytes,
                        Err(error) => return Err(network(error)),
                    };
                    if status.is_success() {
                        return serde_json::from_slice(&bytes).map_err(|e| Error::Decode(e.to_string()));
                    }
                    (Error::from_response(status.as_u16(), &bytes), retry_after)
                }
                Err(error) => (network(error), None),
            };
            if retry >= inner.max_retries || !error.is_transient() {
                return Err(error);
            }
            let backoff = inner
                .backoff_base
                .saturating_mul(1 << retry.min(16))
                .min(inner.backoff_max);
            // Full jitter keeps many clients from retrying in step.
            let mut delay = backoff.mul_f64(rand::thread_rng().gen_range(0.5..=1.0));
            if let Some(asked) = retry_after {
                delay = delay.max(asked.min(inner.backoff_max));
            }
            tokio::time::sleep(delay).await;
            retry += 1;
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Inner {
            http: _,
            base_url,
            space_id,
            token: _,
            max_retries,
            backoff_base,
            backoff_max,
        } = self.inner.as_ref();
        f.debug_struct("Client")
            .field("base_url", base_url)
            .field("space_id", space_id)
            .field("token", &Redacted)
            .field("max_retries", max_retries)
            .field("backoff_base", backoff_base)
            .field("backoff_max", backoff_max)
            .finish()
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            space_id,
            token: _,
            base_url,
            timeout,
            max_retries,
            backoff_base,
            backoff_max,
        } = self;
        f.debug_struct("ClientBuilder")
            .field("base_url", base_url)
            .field("space_id", space_id)
            .field("token", &Redacted)
            .field("timeout", timeout)
            .field("max_retries", max_retries)
            .field("backoff_base", backoff_base)
            .field("backoff_max", backoff_max)
            .finish()
    }
}

fn network(error: reqwest::Error) -> Error {
    if error.is_timeout() {
        Error::Timeout
    } else {
        Error::Network(error)
    }
}

fn new_idempotency_key() -> String {
    let random: u128 = rand::thread_rng().gen();
    format!("hrc-{random:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "hrt_token-that-must-never-print";

    #[test]
    fn debug_shows_the_server_and_space_but_not_the_token() {
        let builder = Client::builder("spc-shown", TOKEN).base_url("https://hooks.example.com");
        let client = builder.clone().build().expect("a valid configuration");
        for text in [
            format!("{client:?}"),
            format!("{builder:?}"),
            format!("{:?}", client.webhook()),
        ] {
            assert!(!text.contains(TOKEN), "the token printed: {text}");
            assert!(
                text.contains("https://hooks.example.com") && text.contains("spc-shown"),
                "{text}"
            );
        }
    }
}
