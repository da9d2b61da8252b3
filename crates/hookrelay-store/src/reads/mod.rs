//! [`ReadStore`], implemented once for every backend that reads through a sqlx pool
//! ([`ReadingBackend`]): a backend writes its own way, but reads as the other does.

mod pool;

use async_trait::async_trait;
use hookrelay_core::access::{AccessToken, Grant};
use hookrelay_core::alert::Alert;
use hookrelay_core::delivery::{Delivery, DeliveryStatus};
use hookrelay_core::retention::Erasure;
use hookrelay_core::seal::SecretCipher;
use hookrelay_core::{DeliveryId, ErasureId, EventId, SpaceId, Timestamp, Webhook, WebhookId};

pub(crate) use pool::{Arg, ReadPool};

use crate::rows::Columns;
use crate::rows::{
    decode_access_token, decode_alert, decode_attempt, decode_delivery, decode_erasure, decode_event, decode_grant,
    decode_idempotency, decode_node, decode_space, decode_webhook, page, ALERT_COLUMNS, ATTEMPT_COLUMNS,
    DELIVERY_COLUMNS, ERASURE_COLUMNS, EVENT_COLUMNS, GRANT_COLUMNS, NODE_COLUMNS, SPACE_COLUMNS, TOKEN_COLUMNS,
    WEBHOOK_COLUMNS,
};
use crate::{
    Backlog, DeliveryDetail, IdempotencyRecord, NodeRecord, Page, ReadStore, SpaceSummary, StoreError, StoredEvent,
};

/// A backend whose reads run on a sqlx pool, opening sealed values with its cipher.
pub(crate) trait ReadingBackend: Send + Sync {
    type Pool: ReadPool;

    /// The pool reads run on.
    fn read_pool(&self) -> &Self::Pool;

    /// What opens sealed values.
    fn cipher(&self) -> &SecretCipher;

    /// The nodes, when the backend serves one node and knows it without a table
    /// (SQLite); `None` reads the `nodes` table.
    fn nodes_in_memory(&self) -> Option<Vec<NodeRecord>> {
        None
    }
}

/// `after` as the bound of a `seq < $n` page query: no cursor starts at the newest.
fn before(after: Option<i64>) -> Arg<'static> {
    Arg::Int(after.unwrap_or(i64::MAX))
}

/// `limit` plus one: the extra row tells whether another page exists.
fn one_more(limit: u32) -> Arg<'static> {
    Arg::Int(i64::from(limit) + 1)
}

#[async_trait]
impl<B: ReadingBackend> ReadStore for B {
    async fn has_spaces(&self) -> Result<bool, StoreError> {
        let sql = "SELECT id FROM spaces LIMIT 1";
        Ok(self.read_pool().fetch_optional(sql, &[]).await?.is_some())
    }

    async fn find_access_token(&self, digest: &[u8; 32]) -> Result<Option<(Grant, Vec<u8>)>, StoreError> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM access_tokens t JOIN spaces s ON s.id = t.space_id WHERE t.token_digest = $1"
        );
        let row = self.read_pool().fetch_optional(&sql, &[Arg::Blob(digest)]).await?;
        row.as_ref().map(decode_grant).transpose()
    }

    async fn list_tokens(
        &self,
        space: &SpaceId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<AccessToken>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM access_tokens WHERE space_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
        );
        let args = [Arg::Text(space.as_str()), before(after), one_more(limit)];
        let rows = self.read_pool().fetch_all(&sql, &args).await?;
        page(rows, limit, decode_access_token)
    }

    async fn list_spaces(&self) -> Result<Vec<SpaceSummary>, StoreError> {
        let sql = format!("SELECT {SPACE_COLUMNS} FROM spaces s ORDER BY s.create_time, s.id");
        let rows = self.read_pool().fetch_all(&sql, &[]).await?;
        rows.iter().map(decode_space).collect()
    }

    async fn find_idempotency_record(
        &self,
        space: &SpaceId,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let sql = "SELECT fingerprint, status, body, create_time, expire_time FROM idempotency_keys
                   WHERE space_id = $1 AND key = $2 AND expire_time > $3";
        let args = [Arg::Text(space.as_str()), Arg::Text(key), Arg::Int(now.as_micros())];
        let row = self.read_pool().fetch_optional(sql, &args).await?;
        row.map(|row| decode_idempotency(self.cipher(), &row, space, key))
            .transpose()
    }

    async fn list_webhooks(
        &self,
        space: &SpaceId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<Webhook>, StoreError> {
        let sql = format!(
            "SELECT {} FROM webhooks WHERE space_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
            *WEBHOOK_COLUMNS
        );
        let args = [Arg::Text(space.as_str()), before(after), one_more(limit)];
        let rows = self.read_pool().fetch_all(&sql, &args).await?;
        page(rows, limit, |row| decode_webhook(self.cipher(), row))
    }

    async fn get_event(&self, space: &SpaceId, id: &EventId) -> Result<Option<StoredEvent>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = $1 AND space_id = $2");
        let args = [Arg::Text(id.as_str()), Arg::Text(space.as_str())];
        let row = self.read_pool().fetch_optional(&sql, &args).await?;
        row.as_ref().map(decode_event).transpose()
    }

    async fn list_events(
        &self,
        space: &SpaceId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<StoredEvent>, StoreError> {
        let sql =
            format!("SELECT {EVENT_COLUMNS} FROM events WHERE space_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3");
        let args = [Arg::Text(space.as_str()), before(after), one_more(limit)];
        let rows = self.read_pool().fetch_all(&sql, &args).await?;
        page(rows, limit, decode_event)
    }

    async fn list_deliveries(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        status: Option<DeliveryStatus>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<Delivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.webhook_id = $1 AND d.space_id = $2 AND (CAST($3 AS TEXT) IS NULL OR d.status = $3)
               AND d.seq < $4
             ORDER BY d.seq DESC LIMIT $5"
        );
        let args = [
            Arg::Text(webhook.as_str()),
            Arg::Text(space.as_str()),
            Arg::OptText(status.map(DeliveryStatus::as_str)),
            before(after),
            one_more(limit),
        ];
        let rows = self.read_pool().fetch_all(&sql, &args).await?;
        page(rows, limit, decode_delivery)
    }

    async fn get_delivery(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        id: &DeliveryId,
    ) -> Result<Option<DeliveryDetail>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.id = $1 AND d.webhook_id = $2 AND d.space_id = $3"
        );
        let args = [
            Arg::Text(id.as_str()),
            Arg::Text(webhook.as_str()),
            Arg::Text(space.as_str()),
        ];
        let Some(row) = self.read_pool().fetch_optional(&sql, &args).await? else {
            return Ok(None);
        };
        // Two attempts may share a number: one made by a node whose lease was taken over.
        let sql = format!(
            "SELECT {ATTEMPT_COLUMNS} FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt, start_time"
        );
        let attempts = self.read_pool().fetch_all(&sql, &[Arg::Text(id.as_str())]).await?;
        Ok(Some(DeliveryDetail {
            delivery: decode_delivery(&row)?,
            attempts: attempts.iter().map(decode_attempt).collect::<Result<_, _>>()?,
        }))
    }

    async fn list_alerts(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<Alert>, StoreError> {
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE webhook_id = $1 AND space_id = $2 AND seq < $3
             ORDER BY seq DESC LIMIT $4"
        );
        let args = [
            Arg::Text(webhook.as_str()),
            Arg::Text(space.as_str()),
            before(after),
            one_more(limit),
        ];
        let rows = self.read_pool().fetch_all(&sql, &args).await?;
        page(rows, limit, decode_alert)
    }

    async fn list_erasures(
        &self,
        space: &SpaceId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<Erasure>, StoreError> {
        let sql = format!(
            "SELECT {ERASURE_COLUMNS} FROM erasures WHERE space_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
        );
        let args = [Arg::Text(space.as_str()), before(after), one_more(limit)];
        let rows = self.read_pool().fetch_all(&sql, &args).await?;
        page(rows, limit, decode_erasure)
    }

    async fn get_erasure(&self, space: &SpaceId, id: &ErasureId) -> Result<Option<Erasure>, StoreError> {
        let sql = format!("SELECT {ERASURE_COLUMNS} FROM erasures WHERE id = $1 AND space_id = $2");
        let args = [Arg::Text(id.as_str()), Arg::Text(space.as_str())];
        let row = self.read_pool().fetch_optional(&sql, &args).await?;
        row.as_ref().map(decode_erasure).transpose()
    }

    async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        if let Some(nodes) = self.nodes_in_memory() {
            return Ok(nodes);
        }
        let sql = format!("SELECT {NODE_COLUMNS} FROM nodes ORDER BY started_time, id");
        let rows = self.read_pool().fetch_all(&sql, &[]).await?;
        rows.iter().map(decode_node).collect()
    }

    async fn backlog(&self, now: Timestamp) -> Result<Backlog, StoreError> {
        let sql = "SELECT
                 (SELECT COUNT(*) FROM deliveries WHERE status = 'pending' AND next_attempt_time <= $1) AS due,
                 (SELECT MIN(next_attempt_time) FROM deliveries
                      WHERE status = 'pending' AND next_attempt_time <= $1) AS oldest_due,
                 (SELECT COUNT(*) FROM webhooks WHERE enabled = FALSE) AS disabled_webhooks";
        let row = self
            .read_pool()
            .fetch_optional(sql, &[Arg::Int(now.as_micros())])
            .await?;
        let row = row.ok_or_else(|| StoreError::Corrupt("the backlog query answered no row".to_owned()))?;
        let count = |column| row.int(column).map(|n| u64::try_from(n).unwrap_or(0));
        Ok(Backlog {
            due: count("due")?,
            oldest_due: row.opt_int("oldest_due")?.map(Timestamp::from_micros),
            disabled_webhooks: count("disabled_webhooks")?,
        })
    }
}
