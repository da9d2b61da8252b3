//! One handle per API resource, mirroring the seed's `client.webhook.create(…)`.

use std::future::Future;

use futures_util::stream::{self, Stream, TryStreamExt};
use reqwest::Method;

use crate::client::Client;
use crate::error::Error;
use crate::settings::{UpdateWebhookSettings, WebhookSettings};
use crate::types::{
    Alert, ApiListResponse, ApiResponse, CreateToken, CreateWebhook, CreatedToken, Delivery, DeliveryListParams, Event,
    ListParams, PublishEvent, Token, UpdateWebhook, Webhook,
};

pub(crate) const NO_BODY: Option<&()> = None;

pub(crate) fn page_query(limit: Option<u32>, after: Option<&str>) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    if let Some(limit) = limit {
        query.push(("limit", limit.to_string()));
    }
    if let Some(after) = after {
        query.push(("after", after.to_owned()));
    }
    query
}

/// Every item of a list, fetching pages of 50 with `fetch` and following their `next`
/// cursors until the last page.
pub(crate) fn every_item<'a, T, F, Fut>(fetch: F) -> impl Stream<Item = Result<T, Error>> + 'a
where
    T: 'a,
    F: Fn(ListParams) -> Fut + 'a,
    Fut: Future<Output = Result<ApiListResponse<T>, Error>> + 'a,
{
    // State: the cursor to fetch next; `None` once the last page was fetched.
    stream::try_unfold(Some(None::<String>), move |cursor| {
        let page = cursor.map(|after| fetch(ListParams { limit: Some(50), after }));
        async move {
            let Some(page) = page else {
                return Ok(None);
            };
            let page = page.await?;
            let next = page.pagination.next.map(Some);
            Ok(Some((stream::iter(page.result.into_iter().map(Ok)), next)))
        }
    })
    .try_flatten()
}

/// `DELETE path`, whose answer has no `result`.
async fn delete(client: &Client, path: &str) -> Result<ApiResponse<()>, Error> {
    #[derive(serde::Deserialize)]
    struct Deleted {
        success: bool,
        messages: Vec<serde_json::Value>,
    }
    let deleted: Deleted = client.call(Method::DELETE, path, &[], NO_BODY, None).await?;
    Ok(ApiResponse {
        success: deleted.success,
        messages: deleted.messages,
        result: (),
    })
}

/// `client.webhook()`.
#[derive(Clone, Copy, Debug)]
pub struct WebhookApi<'a> {
    client: &'a Client,
}

impl<'a> WebhookApi<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Self { client }
    }

    /// Creates a webhook (with a generated `Idempotency-Key`).
    pub async fn create(&self, webhook: &CreateWebhook) -> Result<ApiResponse<Webhook>, Error> {
        self.client
            .call(Method::POST, "/v1/webhooks", &[], Some(webhook), None)
            .await
    }

    /// Creates a webhook under your own `Idempotency-Key`: repeating the call with the same
    /// key and body answers the first result and creates nothing.
    pub async fn create_with_idempotency_key(
        &self,
        webhook: &CreateWebhook,
        key: impl Into<String>,
    ) -> Result<ApiResponse<Webhook>, Error> {
        self.client
            .call(Method::POST, "/v1/webhooks", &[], Some(webhook), Some(key.into()))
            .await
    }

    /// Gets a webhook.
    pub async fn get(&self, id: &str) -> Result<ApiResponse<Webhook>, Error> {
        self.client
            .call(Method::GET, &format!("/v1/webhooks/{id}"), &[], NO_BODY, None)
            .await
    }

    /// One page of webhooks, newest first.
    pub async fn list(&self, params: ListParams) -> Result<ApiListResponse<Webhook>, Error> {
        let query = page_query(params.limit, params.after.as_deref());
        self.client
            .call(Method::GET, "/v1/webhooks", &query, NO_BODY, None)
            .await
    }

    /// Every webhook, following `next` cursors page by page.
    pub fn list_all(&self) -> impl Stream<Item = Result<Webhook, Error>> + 'a {
        let api = *self;
        every_item(move |params| async move { api.list(params).await })
    }

    /// Changes only the fields set.
    pub async fn update(&self, id: &str, update: &UpdateWebhook) -> Result<ApiResponse<Webhook>, Error> {
        self.client
            .call(Method::PATCH, &format!("/v1/webhooks/{id}"), &[], Some(update), None)
            .await
    }

    /// The webhook's delivery settings.
    pub async fn settings(&self, id: &str) -> Result<ApiResponse<WebhookSettings>, Error> {
        self.client
            .call(Method::GET, &format!("/v1/webhooks/{id}/settings"), &[], NO_BODY, None)
            .await
    }

    /// Changes only the settings named; answers them all as they now stand.
    pub async fn update_settings(
        &self,
        id: &str,
        update: &UpdateWebhookSettings,
    ) -> Result<ApiResponse<WebhookSettings>, Error> {
        self.client
            .call(
                Method::PUT,
                &format!("/v1/webhooks/{id}/settings"),
                &[],
                Some(update),
                None,
            )
            .await
    }

    /// Deletes a webhook.
    pub async fn delete(&self, id: &str) -> Result<ApiResponse<()>, Error> {
        delete(self.client, &format!("/v1/webhooks/{id}")).await
    }

    /// One page of the alert e-mails raised about a webhook, newest first, sent or not.
    pub async fn alerts(&self, id: &str, params: ListParams) -> Result<ApiListResponse<Alert>, Error> {
        let query = page_query(params.limit, params.after.as_deref());
        self.client
            .call(Method::GET, &format!("/v1/webhooks/{id}/alerts"), &query, NO_BODY, None)
            .await
    }

    /// Every alert raised about a webhook, following `next` cursors page by page.
    pub fn alerts_all(&self, id: impl Into<String>) -> impl Stream<Item = Result<Alert, Error>> + 'a {
        let (api, id) = (*self, id.into());
        every_item(move |params| {
            let id = id.clone();
            async move { api.alerts(&id, params).await }
        })
    }

    /// Sends a signed `webhook.test` event to this webhook alone.
    pub async fn test(&self, id: &str) -> Result<ApiResponse<Delivery>, Error> {
        self.client
            .call(Method::POST, &format!("/v1/webhooks/{id}/test"), &[], NO_BODY, None)
            .await
    }
}

/// `client.events()`.
#[derive(Clone, Copy, Debug)]
pub struct EventApi<'a> {
    client: &'a Client,
}

impl<'a> EventApi<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Self { client }
    }

    /// Publishes an event (with a generated `Idempotency-Key`).
    pub async fn publish(&self, event: &PublishEvent) -> Result<ApiResponse<Event>, Error> {
        self.client
            .call(Method::POST, "/v1/events", &[], Some(event), None)
            .await
    }

    /// Publishes an event under your own `Idempotency-Key` (e.g. derived from the
    /// business event), so a retried publish never creates a second event.
    pub async fn publish_with_idempotency_key(
        &self,
        event: &PublishEvent,
        key: impl Into<String>,
    ) -> Result<ApiResponse<Event>, Error> {
        self.client
            .call(Method::POST, "/v1/events", &[], Some(event), Some(key.into()))
            .await
    }

    /// Gets an event.
    pub async fn get(&self, id: &str) -> Result<ApiResponse<Event>, Error> {
        self.client
            .call(Method::GET, &format!("/v1/events/{id}"), &[], NO_BODY, None)
            .await
    }

    /// One page of events, newest first.
    pub async fn list(&self, params: ListParams) -> Result<ApiListResponse<Event>, Error> {
        let query = page_query(params.limit, params.after.as_deref());
        self.client.call(Method::GET, "/v1/events", &query, NO_BODY, None).await
    }
}

/// `client.deliveries()`.
#[derive(Clone, Copy, Debug)]
pub struct DeliveryApi<'a> {
    client: &'a Client,
}

impl<'a> DeliveryApi<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Self { client }
    }

    /// One page of a webhook's deliveries, newest first.
    pub async fn list(&self, webhook_id: &str, params: DeliveryListParams) -> Result<ApiListResponse<Delivery>, Error> {
        let mut query = page_query(params.limit, params.after.as_deref());
        if let Some(status) = params.status {
            query.push(("status", status));
        }
        self.client
            .call(
                Method::GET,
                &format!("/v1/webhooks/{webhook_id}/deliveries"),
                &query,
                NO_BODY,
                None,
            )
            .await
    }

    /// A delivery with its attempt log.
    pub async fn get(&self, webhook_id: &str, delivery_id: &str) -> Result<ApiResponse<Delivery>, Error> {
        self.client
            .call(
                Method::GET,
                &format!("/v1/webhooks/{webhook_id}/deliveries/{delivery_id}"),
                &[],
                NO_BODY,
                None,
            )
            .await
    }

    /// Attempts a delivery again now, whatever its status.
    pub async fn retry(&self, webhook_id: &str, delivery_id: &str) -> Result<ApiResponse<Delivery>, Error> {
        self.client
            .call(
                Method::POST,
                &format!("/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"),
                &[],
                NO_BODY,
                None,
            )
            .await
    }
}

/// `client.tokens()`: the space's access tokens (the calling token needs `tokens:manage`).
#[derive(Clone, Copy, Debug)]
pub struct TokenApi<'a> {
    client: &'a Client,
}

impl<'a> TokenApi<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Self { client }
    }

    /// Creates a token (with a generated `Idempotency-Key`); the token is in the answer
    /// only. It can have only scopes the calling token has.
    pub async fn create(&self, token: &CreateToken) -> Result<ApiResponse<CreatedToken>, Error> {
        self.client
            .call(Method::POST, "/v1/tokens", &[], Some(token), None)
            .await
    }

    /// Creates a token under your own `Idempotency-Key`: repeating the call with the same
    /// key and body answers the first result (with the same token) and creates nothing.
    pub async fn create_with_idempotency_key(
        &self,
        token: &CreateToken,
        key: impl Into<String>,
    ) -> Result<ApiResponse<CreatedToken>, Error> {
        self.client
            .call(Method::POST, "/v1/tokens", &[], Some(token), Some(key.into()))
            .await
    }

    /// One page of the space's tokens, newest first.
    pub async fn list(&self, params: ListParams) -> Result<ApiListResponse<Token>, Error> {
        let query = page_query(params.limit, params.after.as_deref());
        self.client.call(Method::GET, "/v1/tokens", &query, NO_BODY, None).await
    }

    /// Every token of the space, following `next` cursors page by page.
    pub fn list_all(&self) -> impl Stream<Item = Result<Token, Error>> + 'a {
        let api = *self;
        every_item(move |params| async move { api.list(params).await })
    }

    /// Revokes a token: it is refused from then on, on every node within a second.
    pub async fn revoke(&self, id: &str) -> Result<ApiResponse<()>, Error> {
        delete(self.client, &format!("/v1/tokens/{id}")).await
    }
}
