//! Pacing a claim in PostgreSQL (`crate::pace`): debits each rate-limited webhook's
//! bucket and gives back the deliveries its tokens do not cover, in one transaction.
//! Every node's claims lock the same bucket rows (in webhook order, so two claims
//! cannot deadlock), so the nodes together stay within the webhook's rate.

use std::collections::HashMap;

use async_trait::async_trait;

use hookrelay_core::pace::{debit, StoredBucket};
use hookrelay_core::Timestamp;
use sqlx::{Postgres, Transaction};

use super::PostgresStore;
use crate::pace::{paced, split, PacedClaims, Want};
use crate::{ClaimRequest, ClaimedDelivery, StoreError};

#[async_trait]
impl PacedClaims for PostgresStore {
    async fn claim_leased(&self, request: &ClaimRequest) -> Result<(usize, Vec<ClaimedDelivery>), StoreError> {
        self.lease_due(request).await
    }

    async fn debit_and_give_back(
        &self,
        request: &ClaimRequest,
        wants: Vec<Want>,
        claimed: &[ClaimedDelivery],
    ) -> Result<HashMap<String, u32>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut granted = HashMap::with_capacity(wants.len());
        for want in &wants {
            granted.insert(want.webhook_id.clone(), debit_one(&mut tx, request.now, want).await?);
        }
        let (_, surplus) = split(claimed.iter().collect(), |d| paced(d), &granted);
        let ids: Vec<&str> = surplus.iter().map(|d| d.delivery_id.as_str()).collect();
        sqlx::query(
            "UPDATE deliveries SET lease_until = NULL, lease_owner = NULL
             WHERE id = ANY($1) AND lease_owner = $2 AND lease_until = $3",
        )
        .bind(&ids)
        .bind(&request.owner)
        .bind(request.lease_until.as_micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(granted)
    }
}

/// Debits one webhook's bucket at `now` under its row lock; answers how many it grants.
async fn debit_one(tx: &mut Transaction<'_, Postgres>, now: Timestamp, want: &Want) -> Result<u32, StoreError> {
    // A bucket never used is full: a negative count says so until the first debit.
    sqlx::query(
        "INSERT INTO webhook_pace (webhook_id, millionths, counted_at, ready_at) VALUES ($1, -1, 0, 0)
         ON CONFLICT (webhook_id) DO NOTHING",
    )
    .bind(&want.webhook_id)
    .execute(&mut **tx)
    .await?;
    let (millionths, counted_at): (i64, i64) =
        sqlx::query_as("SELECT millionths, counted_at FROM webhook_pace WHERE webhook_id = $1 FOR UPDATE")
            .bind(&want.webhook_id)
            .fetch_one(&mut **tx)
            .await?;
    let stored = (millionths >= 0).then(|| StoredBucket {
        millionths,
        counted_at: Timestamp::from_micros(counted_at),
    });
    let debit = debit(stored, want.rate, want.wanted, now);
    sqlx::query("UPDATE webhook_pace SET millionths = $2, counted_at = $3, ready_at = $4 WHERE webhook_id = $1")
        .bind(&want.webhook_id)
        .bind(debit.bucket.millionths)
        .bind(debit.bucket.counted_at.as_micros())
        .bind(debit.ready_at.as_micros())
        .execute(&mut **tx)
        .await?;
    Ok(debit.granted)
}
