//! `client.erasures()`: erasing the data of an object's events (GDPR requests).

use futures_util::stream::Stream;
use reqwest::Method;

use crate::client::Client;
use crate::error::Error;
use crate::resources::{every_item, page_query, NO_BODY};
use crate::types::{ApiListResponse, ApiResponse, CreateErasure, Erasure, ListParams};

/// `client.erasures()`: the calling token needs `events:erase`.
#[derive(Clone, Copy, Debug)]
pub struct ErasureApi<'a> {
    client: &'a Client,
}

impl<'a> ErasureApi<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Self { client }
    }

    /// Erases the data of every event of the object (in the range, if given), cancels
    /// their pending deliveries, and answers the record (with a generated
    /// `Idempotency-Key`, the same on every retry).
    pub async fn create(&self, erasure: &CreateErasure) -> Result<ApiResponse<Erasure>, Error> {
        self.client
            .call(Method::POST, "/v1/erasures", &[], Some(erasure), None)
            .await
    }

    /// [`Self::create`] under your own `Idempotency-Key`: repeating it answers the first
    /// result.
    pub async fn create_with_idempotency_key(
        &self,
        erasure: &CreateErasure,
        key: impl Into<String>,
    ) -> Result<ApiResponse<Erasure>, Error> {
        self.client
            .call(Method::POST, "/v1/erasures", &[], Some(erasure), Some(key.into()))
            .await
    }

    /// One page of the space's erasure records, newest first.
    pub async fn list(&self, params: ListParams) -> Result<ApiListResponse<Erasure>, Error> {
        let query = page_query(params.limit, params.after.as_deref());
        self.client
            .call(Method::GET, "/v1/erasures", &query, NO_BODY, None)
            .await
    }

    /// Every erasure record of the space, following `next` cursors page by page.
    pub fn list_all(&self) -> impl Stream<Item = Result<Erasure, Error>> + 'a {
        let api = *self;
        every_item(move |params| async move { api.list(params).await })
    }

    /// One erasure record.
    pub async fn get(&self, id: &str) -> Result<ApiResponse<Erasure>, Error> {
        self.client
            .call(Method::GET, &format!("/v1/erasures/{id}"), &[], NO_BODY, None)
            .await
    }
}
