//! Wide fan-outs in SQLite, written in chunks.
//!
//! Every write goes through the one writer, so a publish writing thousands of
//! deliveries in one job would hold every other space's writes behind it for as long as
//! all those inserts take. A publish with more than [`STAGE_CHUNK`] subscribers is
//! written in separate jobs of that many, and other writes go in between: one waits for
//! a chunk at most, not for the whole fan-out.
//!
//! - the first job saves the idempotency record, the event and the first chunk, and
//!   lists the event in `staged_events` with every webhook it goes to;
//! - each next job writes one chunk and how far it got; the last one removes the row.
//!
//! Claims skip the deliveries of a listed event (`claim.rs`), so none is attempted
//! before all are written: the engine sees the fan-out whole or not at all. A crash in
//! between leaves the row, and the next start writes the rest before serving
//! ([`finish_staged`]), so a publish whose record was saved, and which a retry may have
//! been answered with, is always completed. While it is being
//! written, lists may show the event with part of its deliveries, all pending.
//! PostgreSQL needs none of this: its publish is one statement, and other spaces' writes
//! do not wait for it.

use std::sync::Arc;
use std::time::Duration;

use hookrelay_core::event::Event;
use rusqlite::{params, Connection};

use super::events::{delivery_key, insert_deliveries, insert_event};
use super::idempotency::save_idempotency;
use super::SqliteStore;
use crate::rows::{corrupt, to_json};
use crate::{IdempotencyRecord, StoreError};

/// Deliveries written per job of a staged fan-out; fan-outs of this many or fewer are
/// written in one job.
pub(super) const STAGE_CHUNK: usize = 250;
/// Tries for each later chunk: a job fails with its whole group when a neighbour's
/// write fails, which trying again gets past.
const CHUNK_TRIES: u32 = 3;

/// Writes `webhooks[from..]`'s deliveries up to the next chunk boundary, and records how
/// far the fan-out got, or ends it.
fn write_chunk(
    connection: &Connection,
    event: (&str, &str, i64),
    webhooks: &[String],
    from: usize,
) -> Result<(), StoreError> {
    let to = (from + STAGE_CHUNK).min(webhooks.len());
    insert_deliveries(connection, event, &webhooks[from..to])?;
    let (event_id, ..) = event;
    if to == webhooks.len() {
        connection
            .prepare_cached("DELETE FROM staged_events WHERE event_id = ?")?
            .execute([event_id])?;
    } else {
        connection
            .prepare_cached("UPDATE staged_events SET written = ? WHERE event_id = ?")?
            .execute(params![to as i64, event_id])?;
    }
    Ok(())
}

impl SqliteStore {
    /// Publishes `event` to `webhooks` in chunks (see the module docs).
    pub(super) async fn publish_staged(
        &self,
        event: Arc<Event>,
        record: Option<IdempotencyRecord>,
        webhooks: Arc<[String]>,
    ) -> Result<(), StoreError> {
        let (first, all) = (event.clone(), webhooks.clone());
        // No savepoint: the key is saved first, and a taken key fails before any change.
        self.writer
            .write_without_savepoint(move |connection| {
                if let Some(record) = &record {
                    save_idempotency(connection, record)?;
                }
                insert_event(connection, &first, all.len())?;
                connection.execute(
                    "INSERT INTO staged_events (event_id, webhooks, written) VALUES (?, ?, 0)",
                    params![first.id.as_str(), to_json(&all)],
                )?;
                write_chunk(connection, delivery_key(&first), &all, 0)
            })
            .await?;
        for from in (STAGE_CHUNK..webhooks.len()).step_by(STAGE_CHUNK) {
            let mut tries = 0;
            loop {
                let (chunk_event, all) = (event.clone(), webhooks.clone());
                let written = self
                    .writer
                    .write_without_savepoint(move |connection| {
                        write_chunk(connection, delivery_key(&chunk_event), &all, from)
                    })
                    .await;
                tries += 1;
                match written {
                    Ok(()) => break,
                    // The fan-out stays listed: the next start finishes it.
                    Err(error) if tries >= CHUNK_TRIES => return Err(error),
                    Err(error) => {
                        tracing::warn!(event = %event.id, %error, "writing part of a fan-out failed; trying again");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Writes the rest of every fan-out a crash interrupted, and ends each; how many there
/// were. For a start, before anything claims: one job, however wide.
pub(super) fn finish_staged(connection: &Connection) -> Result<usize, StoreError> {
    let staged: Vec<(String, String, i64, String, i64)> = connection
        .prepare(
            "SELECT s.event_id, s.webhooks, s.written, e.space_id, e.create_time
             FROM staged_events s JOIN events e ON e.id = s.event_id",
        )?
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
        })?
        .collect::<Result<_, _>>()?;
    for (event_id, webhooks, written, space_id, created) in &staged {
        let webhooks: Vec<String> =
            serde_json::from_str(webhooks).map_err(|e| corrupt("staged webhooks", &e.to_string()))?;
        let from = usize::try_from(*written).unwrap_or(0).min(webhooks.len());
        insert_deliveries(connection, (event_id, space_id, *created), &webhooks[from..])?;
        connection.execute("DELETE FROM staged_events WHERE event_id = ?", [event_id])?;
    }
    Ok(staged.len())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use hookrelay_core::event::EventObject;
    use hookrelay_core::seal::{MasterKey, SecretCipher};
    use hookrelay_core::{ApiRelease, EventId, SpaceId, Timestamp, VerificationMethod, Webhook, WebhookId};
    use serde_json::value::RawValue;

    use super::*;
    use crate::{ClaimRequest, ClaimStore, EventStore, ReadStore, SpaceStore, WebhookStore};

    fn webhook(space: &SpaceId) -> Webhook {
        Webhook {
            id: WebhookId::generate(),
            space_id: space.clone(),
            name: "w".into(),
            url: "https://receiver.example.com/hook".into(),
            enabled: true,
            events: vec!["payment.completed".into()],
            api_release: ApiRelease::Caph,
            verification: VerificationMethod::Hs256 {
                secret: "whsec_0123456789abcdef0123456789abcdef".into(),
            },
            headers: Default::default(),
            alert_emails: Vec::new(),
            metadata: Default::default(),
            create_time: Timestamp::now(),
            update_time: Timestamp::now(),
            settings: Default::default(),
        }
    }

    fn event(space: &SpaceId) -> Event {
        Event {
            id: EventId::generate(),
            space_id: space.clone(),
            name: "payment.completed".into(),
            object: EventObject {
                id: "pmt-1".into(),
                object_type: "payment".into(),
            },
            data: RawValue::from_string("{}".into()).unwrap(),
            create_time: Timestamp::now(),
            trace_parent: None,
        }
    }

    fn claim() -> ClaimRequest {
        let now = Timestamp::now().plus(Duration::from_secs(1));
        ClaimRequest {
            now,
            lease_until: now.plus(Duration::from_secs(60)),
            owner: "test".into(),
            limit: 10_000,
            per_webhook: 10,
            skip_webhooks: Vec::new(),
        }
    }

    /// A store with a space of `n` webhooks subscribed to `payment.completed`.
    async fn store_with_webhooks(dir: &std::path::Path, n: usize) -> (SqliteStore, SpaceId, Vec<String>) {
        let store = SqliteStore::open(&dir.join("s.db"), SecretCipher::new(&MasterKey::generate()))
            .await
            .unwrap();
        let space = SpaceId::generate();
        store.ensure_space(&space).await.unwrap();
        let mut ids = Vec::new();
        for _ in 0..n {
            let hook = webhook(&space);
            store.create_webhook(&hook, None).await.unwrap();
            ids.push(hook.id.to_string());
        }
        (store, space, ids)
    }

    #[tokio::test]
    async fn a_wide_fan_out_is_written_whole_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let wide = STAGE_CHUNK * 2 + 7;
        let (store, space, hooks) = store_with_webhooks(dir.path(), wide).await;
        let published = event(&space);
        assert_eq!(store.publish_event(&published, None).await.unwrap() as usize, wide);
        let claimed = store.claim_deliveries(&claim()).await.unwrap();
        let reached: HashSet<String> = claimed.iter().map(|c| c.webhook.id.to_string()).collect();
        assert_eq!(
            reached,
            hooks.into_iter().collect::<HashSet<_>>(),
            "one delivery to each webhook"
        );
        assert_eq!(claimed.len(), wide);
        let staged: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM staged_events")
            .fetch_one(&store.readers)
            .await
            .unwrap();
        assert_eq!(staged, 0, "the fan-out is no longer listed");
        let stored = store.get_event(&space, &published.id).await.unwrap().unwrap();
        assert_eq!(stored.delivery_count as usize, wide);
    }

    #[tokio::test]
    async fn an_interrupted_fan_out_is_not_claimed_and_is_finished_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let (store, space, hooks) = store_with_webhooks(dir.path(), STAGE_CHUNK + 3).await;
        // What a crash after the first job leaves: the event, its first chunk, listed.
        let (published, webhooks) = (event(&space), hooks.clone());
        store
            .writer
            .write(move |connection| {
                insert_event(connection, &published, webhooks.len())?;
                connection.execute(
                    "INSERT INTO staged_events (event_id, webhooks, written) VALUES (?, ?, 0)",
                    params![published.id.as_str(), to_json(&webhooks)],
                )?;
                write_chunk(connection, delivery_key(&published), &webhooks, 0)
            })
            .await
            .unwrap();
        assert!(
            store.claim_deliveries(&claim()).await.unwrap().is_empty(),
            "none is attempted"
        );
        let due = store.next_due_time(claim().now, &[]).await.unwrap();
        assert_eq!(due, None, "nor counted as due");

        let finished = store.writer.write(finish_staged).await.unwrap();
        assert_eq!(finished, 1);
        let claimed = store.claim_deliveries(&claim()).await.unwrap();
        let reached: HashSet<String> = claimed.iter().map(|c| c.webhook.id.to_string()).collect();
        assert_eq!(reached, hooks.into_iter().collect::<HashSet<_>>());
        assert_eq!(claimed.len(), STAGE_CHUNK + 3, "each webhook once");
        assert_eq!(store.writer.write(finish_staged).await.unwrap(), 0);
    }
}
