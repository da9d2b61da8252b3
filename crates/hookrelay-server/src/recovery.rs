//! The recovery runner: takes a running recovery under a lease and walks it batch by
//! batch (`RecoveryStore::recover_batch`, each one transaction), pausing between
//! batches so publishes and claims interleave with it, until it completes; then the next.
//! Woken when a recovery is created; it also looks every [`POLL`] for recoveries whose
//! runner died (a lease that ran out, or on PostgreSQL a node judged dead).

use std::sync::Arc;
use std::time::Duration;

use hookrelay_core::recovery::RecoveryStatus;
use hookrelay_core::{RecoveryId, Timestamp};
use hookrelay_store::{Store, StoreError};

use crate::delivery::Wakeup;

/// How a recovery runs.
#[derive(Clone, Copy, Debug)]
pub struct RecoveryConfig {
    /// Deliveries one batch reads.
    pub batch_size: u32,
    /// Time between batches.
    pub pause: Duration,
}

/// How long a runner holds a recovery without finishing a batch.
const LEASE: Duration = Duration::from_secs(60);
/// How often an idle runner looks for recoveries left by other runners.
const POLL: Duration = Duration::from_secs(5);

/// The runner's task.
pub struct Runner {
    store: Arc<dyn Store>,
    config: RecoveryConfig,
    /// The lease owner: this node's id, so that PostgreSQL takes the leases of a node
    /// judged dead at once.
    owner: String,
    /// Woken when a recovery is created.
    recoveries: Wakeup,
    /// The delivery engine, woken when a batch retried deliveries.
    engine: Wakeup,
}

impl Runner {
    /// A runner for node `owner`.
    pub fn new(
        store: Arc<dyn Store>,
        config: RecoveryConfig,
        owner: String,
        recoveries: Wakeup,
        engine: Wakeup,
    ) -> Self {
        Self {
            store,
            config,
            owner,
            recoveries,
            engine,
        }
    }

    /// Runs recoveries until the task is aborted.
    pub async fn run_forever(self) {
        loop {
            let now = Timestamp::now();
            match self.store.claim_recovery(&self.owner, now, now.plus(LEASE)).await {
                Ok(Some(id)) => {
                    if let Err(error) = self.run(&id).await {
                        tracing::warn!(recovery = %id, error = %crate::error_chain(&error), "a recovery batch failed; it is tried again");
                        tokio::time::sleep(POLL).await;
                    }
                }
                Ok(None) => {
                    tokio::select! {
                        () = self.recoveries.woken() => {}
                        () = tokio::time::sleep(POLL) => {}
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %crate::error_chain(&error), "claiming a recovery failed; it is tried again");
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }

    /// Walks one recovery to its end, or until another runner holds it.
    async fn run(&self, id: &RecoveryId) -> Result<(), StoreError> {
        loop {
            let now = Timestamp::now();
            let batch = self
                .store
                .recover_batch(id, &self.owner, now, now.plus(LEASE), self.config.batch_size)
                .await?;
            let Some(progress) = batch else {
                return Ok(());
            };
            if progress.requeued_now > 0 {
                self.engine.wake();
            }
            if progress.status != RecoveryStatus::Running {
                tracing::info!(
                    recovery = %id,
                    status = progress.status.as_str(),
                    matched = progress.counts.matched,
                    requeued = progress.counts.requeued,
                    skipped = progress.counts.skipped,
                    "recovery finished"
                );
                return Ok(());
            }
            tokio::time::sleep(self.config.pause).await;
        }
    }
}
