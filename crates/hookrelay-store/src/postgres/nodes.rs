//! Heartbeats in PostgreSQL: the `nodes` table, stamped by the database's clock so that
//! nodes whose clocks differ still agree on who is dead.

use std::time::Duration;

use async_trait::async_trait;

use super::PostgresStore;
use crate::{NodeBeat, NodeStore, StoreError};

/// The database's clock, in microseconds since the epoch: heartbeats are written and
/// judged by it, never by a node's own clock. A macro, so queries can `concat!` it.
macro_rules! database_now {
    () => {
        "CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000000 AS BIGINT)"
    };
}

/// The ids of the nodes judged dead: their heartbeat is older than their own timeout.
/// An array, evaluated once per statement; `d.lease_owner = ANY(...)` then tells a
/// delivery leased by one of them.
macro_rules! dead_nodes {
    () => {
        concat!(
            "ARRAY(SELECT id FROM nodes WHERE heartbeat_time + timeout_micros < ",
            $crate::postgres::nodes::database_now!(),
            ")"
        )
    };
}

pub(super) use {database_now, dead_nodes};

/// Microseconds in `duration`, at most `i64::MAX`.
fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

#[async_trait]
impl NodeStore for PostgresStore {
    fn shared_by_nodes(&self) -> bool {
        true
    }

    async fn beat(&self, node: &NodeBeat) -> Result<Vec<String>, StoreError> {
        // One round trip: the heartbeat, and (as the statement began, before it) the
        // other nodes that are dead.
        let dead: Vec<String> = sqlx::query_scalar(concat!(
            "WITH beat AS (
                 INSERT INTO nodes (id, host, pid, started_time, heartbeat_time, timeout_micros)
                 VALUES ($1, $2, $3, $4, ",
            database_now!(),
            ", $5)
                 ON CONFLICT (id) DO UPDATE
                     SET heartbeat_time = EXCLUDED.heartbeat_time, timeout_micros = EXCLUDED.timeout_micros
             )
             SELECT id FROM nodes WHERE id <> $1 AND heartbeat_time + timeout_micros < ",
            database_now!(),
            " ORDER BY id"
        ))
        .bind(&node.id)
        .bind(&node.host)
        .bind(i64::from(node.pid))
        .bind(node.started.as_micros())
        .bind(micros(node.timeout))
        .fetch_all(&self.pool)
        .await?;
        Ok(dead)
    }

    async fn forget_nodes(&self, silent_for: Duration) -> Result<u64, StoreError> {
        let forgotten = sqlx::query(concat!(
            "DELETE FROM nodes WHERE heartbeat_time < ",
            database_now!(),
            " - $1"
        ))
        .bind(micros(silent_for))
        .execute(&self.pool)
        .await?;
        Ok(forgotten.rows_affected())
    }
}
