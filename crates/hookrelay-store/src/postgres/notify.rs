//! Telling other nodes that work is due.
//!
//! A transaction that runs `NOTIFY` takes a database-wide lock when it commits and holds
//! it until its commit is flushed, so that notifications arrive in commit order
//! (`PreCommit_Notify` in PostgreSQL's `async.c`). Transactions that notify therefore
//! commit one at a time, each waiting for its own flush: with every publish notifying,
//! 32 concurrent publishers got no group commit at all. So writes do not notify
//! themselves: after their commit they ask one task to, and that task folds a burst of
//! asks into one `NOTIFY`. A listener only needs to hear that there is work, not how
//! much; a node that misses it (it was down, the notification failed) finds the work at
//! its next idle poll.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

/// The channel on which nodes tell each other that work is due.
pub(crate) const WORK_CHANNEL: &str = "hookrelay_work";

/// Sends `NOTIFY`s on [`WORK_CHANNEL`] for the writes that ask for one, at most one at a
/// time. Dropping it stops the sender.
#[derive(Debug)]
pub(super) struct WorkNotifier {
    asked: Arc<Notify>,
    sender: AbortHandle,
}

impl WorkNotifier {
    pub(super) fn start(pool: PgPool) -> Self {
        let asked = Arc::new(Notify::new());
        let sender = tokio::spawn(send_notifications(pool, asked.clone())).abort_handle();
        Self { asked, sender }
    }

    /// Asks for a notification; call it after the commit that stored the work, so that
    /// nobody looks before the rows are visible. Asks made while one is being sent are
    /// answered together by the next.
    pub(super) fn work_stored(&self) {
        self.asked.notify_one();
    }
}

impl Drop for WorkNotifier {
    fn drop(&mut self) {
        self.sender.abort();
    }
}

async fn send_notifications(pool: PgPool, asked: Arc<Notify>) {
    loop {
        // `notify_one` leaves a permit when nobody waits: an ask that came in while the
        // last notification was being sent is answered by the next one.
        asked.notified().await;
        if let Err(error) = sqlx::query("SELECT pg_notify($1, '')")
            .bind(WORK_CHANNEL)
            .execute(&pool)
            .await
        {
            tracing::warn!(%error, "telling other nodes of new work failed; they find it at their next poll");
        }
    }
}
