//! Heartbeats on SQLite: one node serves the file (`serve` locks it), so no other node
//! could take its work over, and at start it takes back every claim a previous run left.
//! Its heartbeat is kept in memory, for [`crate::ReadStore::nodes`], and it never needs
//! to stop starting attempts for want of one.

use std::time::Duration;

use async_trait::async_trait;
use hookrelay_core::Timestamp;

use super::SqliteStore;
use crate::{NodeBeat, NodeRecord, NodeStore, StoreError};

#[async_trait]
impl NodeStore for SqliteStore {
    fn shared_by_nodes(&self) -> bool {
        false
    }

    async fn beat(&self, node: &NodeBeat) -> Result<Vec<String>, StoreError> {
        let record = NodeRecord {
            node: node.clone(),
            heartbeat: Timestamp::now(),
        };
        *self.node.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(record);
        Ok(Vec::new())
    }

    async fn forget_nodes(&self, _silent_for: Duration) -> Result<u64, StoreError> {
        Ok(0)
    }
}

/// This node, once it has had a heartbeat.
pub(super) fn this_node(store: &SqliteStore) -> Vec<NodeRecord> {
    let node = store.node.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    node.iter().cloned().collect()
}
