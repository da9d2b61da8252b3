//! Pacing a claim in SQLite (`crate::pace`): debits each rate-limited webhook's bucket
//! and gives back the deliveries its tokens do not cover, in one write.

use std::collections::HashMap;

use async_trait::async_trait;

use hookrelay_core::pace::{debit, StoredBucket};
use hookrelay_core::Timestamp;
use rusqlite::{params, OptionalExtension};

use super::{json_ids, SqliteStore};
use crate::pace::{paced, split, PacedClaims, Want};
use crate::{ClaimRequest, ClaimedDelivery, StoreError};

#[async_trait]
impl PacedClaims for SqliteStore {
    async fn claim_leased(&self, request: &ClaimRequest) -> Result<(usize, Vec<ClaimedDelivery>), StoreError> {
        self.lease_due(request).await
    }

    async fn debit_and_give_back(
        &self,
        request: &ClaimRequest,
        wants: Vec<Want>,
        claimed: &[ClaimedDelivery],
    ) -> Result<HashMap<String, u32>, StoreError> {
        let (now, lease) = (request.now, request.lease());
        // (limited webhook, delivery) in the claim's order, to split inside the write.
        let pairs: Vec<(Option<String>, String)> = claimed
            .iter()
            .map(|d| (paced(d).map(str::to_owned), d.delivery_id.as_str().to_owned()))
            .collect();
        self.writer
            .write(move |connection| {
                let granted = debit_all(connection, now, &wants)?;
                let (_, surplus) = split(pairs, |(webhook, _)| webhook.as_deref(), &granted);
                connection.execute(
                    "UPDATE deliveries SET lease_until = NULL, lease_owner = NULL
                     WHERE id IN (SELECT value FROM json_each(?1)) AND lease_owner = ?2 AND lease_until = ?3",
                    params![
                        json_ids(surplus.iter().map(|(_, id)| id.as_str())),
                        lease.owner,
                        lease.until.as_micros()
                    ],
                )?;
                Ok(granted)
            })
            .await
    }
}

/// Debits each wanted webhook's bucket at `now`; answers how many each was granted.
fn debit_all(
    connection: &rusqlite::Connection,
    now: Timestamp,
    wants: &[Want],
) -> Result<HashMap<String, u32>, StoreError> {
    let mut read = connection.prepare_cached("SELECT millionths, counted_at FROM webhook_pace WHERE webhook_id = ?")?;
    let mut write = connection.prepare_cached(
        "INSERT INTO webhook_pace (webhook_id, millionths, counted_at, ready_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (webhook_id) DO UPDATE
         SET millionths = excluded.millionths, counted_at = excluded.counted_at, ready_at = excluded.ready_at",
    )?;
    let mut granted = HashMap::with_capacity(wants.len());
    for want in wants {
        let stored = read
            .query_row([&want.webhook_id], |row| {
                Ok(StoredBucket {
                    millionths: row.get(0)?,
                    counted_at: Timestamp::from_micros(row.get(1)?),
                })
            })
            .optional()?;
        let debit = debit(stored, want.rate, want.wanted, now);
        write.execute(params![
            want.webhook_id,
            debit.bucket.millionths,
            debit.bucket.counted_at.as_micros(),
            debit.ready_at.as_micros()
        ])?;
        granted.insert(want.webhook_id.clone(), debit.granted);
    }
    Ok(granted)
}
