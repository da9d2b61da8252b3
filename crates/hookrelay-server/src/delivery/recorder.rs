//! The recorder task: records what the workers' attempts did, whatever has gathered in
//! one store call, and answers each worker once its attempt is recorded.
//!
//! So a commit's latency overlaps the next request's instead of adding to it, and many
//! workers' attempts share a transaction. An attempt's delivery stays leased until it is
//! recorded, so nothing else takes it meanwhile; a batch that cannot be recorded is
//! left to its leases, and its deliveries are attempted again when they run out.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hookrelay_core::alert::AlertPolicy;
use hookrelay_store::{AttemptResult, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

use super::status::EngineStatus;
use super::Wakeup;
use crate::error_chain;
use crate::telemetry::metrics::{self, DbOperation};

/// Tries to record attempts before leaving their deliveries to their leases.
pub(super) const RECORD_TRIES: u32 = 5;
/// Most attempt results recorded in one store call.
pub(super) const RECORD_BATCH: usize = 512;
/// Pause after the first failed try to record; each one after doubles it.
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(50);

/// What workers send the recorder.
pub(super) enum ToRecorder {
    /// A result, and who to tell once it is recorded (or given up on).
    Result(AttemptResult, oneshot::Sender<()>),
    /// Answered once everything sent before it is recorded; the recorder then stops.
    Flush(oneshot::Sender<()>),
}

/// Where attempts are recorded: the store, which writes them with their deliveries'
/// next states and the webhooks' health in one transaction, and answers how many alerts
/// that queued.
pub(super) trait AttemptRecorder: Send + Sync + 'static {
    fn record_attempts(
        &self,
        results: &[AttemptResult],
        policy: &AlertPolicy,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send;
}

impl AttemptRecorder for Arc<dyn Store> {
    async fn record_attempts(&self, results: &[AttemptResult], policy: &AlertPolicy) -> Result<u32, StoreError> {
        self.as_ref().record_attempts(results, policy).await
    }
}

/// The recorder task's state.
pub(super) struct Recorder<R> {
    pub(super) store: R,
    pub(super) policy: AlertPolicy,
    /// Counts results down as they are recorded, and wakes the claim loop after.
    pub(super) status: EngineStatus,
    /// Woken when recording queued alerts.
    pub(super) alerts: Wakeup,
}

impl<R: AttemptRecorder> Recorder<R> {
    /// Records results in batches until flushed (or until every sender is gone).
    pub(super) async fn run(self, mut results: mpsc::Receiver<ToRecorder>) {
        let mut messages = Vec::with_capacity(RECORD_BATCH);
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        let mut waiting = Vec::with_capacity(RECORD_BATCH);
        while results.recv_many(&mut messages, RECORD_BATCH).await > 0 {
            let mut flushed = None;
            for message in messages.drain(..) {
                match message {
                    ToRecorder::Result(result, recorded) => {
                        batch.push(result);
                        waiting.push(recorded);
                    }
                    ToRecorder::Flush(answer) => flushed = Some(answer),
                }
            }
            if !batch.is_empty() {
                self.record_batch(&batch).await;
                self.status.unrecorded().sub(batch.len());
                // Recorded deliveries may be due at a time the claim loop has not seen
                // (they were leased until now): a retry, or a manual retry the record kept.
                self.status.wakeup().wake();
                batch.clear();
                waiting.drain(..).for_each(|recorded| {
                    let _ = recorded.send(());
                });
            }
            if let Some(answer) = flushed {
                let _ = answer.send(());
                return;
            }
        }
    }

    async fn record_batch(&self, batch: &[AttemptResult]) {
        let mut pause = FIRST_RETRY_PAUSE;
        for tries_left in (0..RECORD_TRIES).rev() {
            let record = self.store.record_attempts(batch, &self.policy);
            match metrics::time_db(DbOperation::Record, record).await {
                Ok(queued) => {
                    batch.iter().for_each(|result| metrics::attempt_recorded(&result.next));
                    metrics::alerts_queued(queued);
                    if queued > 0 {
                        self.alerts.wake();
                    }
                    return;
                }
                Err(error) if tries_left > 0 => {
                    tracing::warn!(error = %error_chain(&error), "recording attempts failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(error) => {
                    tracing::error!(
                        error = %error_chain(&error),
                        attempts = batch.len(),
                        "recording attempts failed; their deliveries will be attempted again when their leases run out"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
