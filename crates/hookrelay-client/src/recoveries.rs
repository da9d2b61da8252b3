//! `client.recoveries()`: retrying a webhook's failed deliveries in bulk.

use reqwest::Method;

use crate::client::Client;
use crate::error::Error;
use crate::resources::{page_query, NO_BODY};
use crate::types::{ApiListResponse, ApiResponse, CreateRecovery, ListParams, Recovery};

/// `client.recoveries()`: creating needs `deliveries:write`, reading `deliveries:read`.
#[derive(Clone, Copy, Debug)]
pub struct RecoveryApi<'a> {
    client: &'a Client,
}

impl<'a> RecoveryApi<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Self { client }
    }

    /// Starts a recovery of the webhook's deliveries that ended failed (or cancelled) in
    /// the window, answered at once as it starts (with a generated `Idempotency-Key`,
    /// the same on every retry); follow it with [`Self::get`].
    pub async fn create(&self, webhook_id: &str, recovery: &CreateRecovery) -> Result<ApiResponse<Recovery>, Error> {
        let path = format!("/v1/webhooks/{webhook_id}/recoveries");
        self.client.call(Method::POST, &path, &[], Some(recovery), None).await
    }

    /// [`Self::create`] under your own `Idempotency-Key`: repeating it answers the first
    /// result.
    pub async fn create_with_idempotency_key(
        &self,
        webhook_id: &str,
        recovery: &CreateRecovery,
        key: impl Into<String>,
    ) -> Result<ApiResponse<Recovery>, Error> {
        let path = format!("/v1/webhooks/{webhook_id}/recoveries");
        self.client
            .call(Method::POST, &path, &[], Some(recovery), Some(key.into()))
            .await
    }

    /// One page of the webhook's recoveries, newest first.
    pub async fn list(&self, webhook_id: &str, params: ListParams) -> Result<ApiListResponse<Recovery>, Error> {
        let query = page_query(params.limit, params.after.as_deref());
        let path = format!("/v1/webhooks/{webhook_id}/recoveries");
        self.client.call(Method::GET, &path, &query, NO_BODY, None).await
    }

    /// A recovery and its progress.
    pub async fn get(&self, webhook_id: &str, recovery_id: &str) -> Result<ApiResponse<Recovery>, Error> {
        let path = format!("/v1/webhooks/{webhook_id}/recoveries/{recovery_id}");
        self.client.call(Method::GET, &path, &[], NO_BODY, None).await
    }
}
