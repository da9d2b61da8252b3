//! The single writer. SQLite takes one writer at a time, so every write goes through one
//! connection owned by this task, which also commits writes in groups: while a
//! transaction runs, the writes that arrive queue up and then share the next one. Each
//! write runs inside its own savepoint, so one failing write (an idempotency conflict,
//! say) rolls back alone and its neighbours still commit. A caller hears its result only
//! after the commit that made it durable.

use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use crate::StoreError;

/// Most writes committed together.
const MAX_GROUP: usize = 128;
/// How often the write-ahead log is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Tells a caller its outcome once the group's commit is known (`None`: committed).
type Finish = Box<dyn FnOnce(Option<&sqlx::Error>) + Send>;
/// One caller's statements, run on the writer connection; `true` when they succeeded.
type Work = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, (bool, Finish)> + Send>;

/// A handle to the writer task.
#[derive(Clone, Debug)]
pub(super) struct Writer {
    queue: mpsc::Sender<Work>,
}

impl Writer {
    /// Starts the writer task on `connection`.
    pub(super) fn start(connection: SqliteConnection) -> Self {
        let (queue, jobs) = mpsc::channel(4 * MAX_GROUP);
        tokio::spawn(run(connection, jobs));
        Self { queue }
    }

    /// Runs `write` in a transaction (shared with other writes) and answers its result
    /// once committed.
    pub(super) async fn write<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let work: Work = Box::new(move |connection| {
            Box::pin(async move {
                let result = write(connection).await;
                let ok = result.is_ok();
                let finish: Finish = Box::new(move |commit_error| {
                    let outcome = match (result, commit_error) {
                        (Ok(value), None) => Ok(value),
                        (Ok(_), Some(error)) => Err(StoreError::Commit(error.to_string())),
                        (Err(error), _) => Err(error),
                    };
                    let _ = answer.send(outcome);
                });
                (ok, finish)
            })
        });
        self.queue.send(work).await.map_err(|_| StoreError::WriterStopped)?;
        answered.await.map_err(|_| StoreError::WriterStopped)?
    }
}

async fn run(mut connection: SqliteConnection, mut jobs: mpsc::Receiver<Work>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while jobs.recv_many(&mut group, MAX_GROUP).await > 0 {
        commit_group(&mut connection, &mut group).await;
    }
}

/// Commits (and empties) `group`.
fn commit_group<'a>(connection: &'a mut SqliteConnection, group: &'a mut Vec<Work>) -> BoxFuture<'a, ()> {
    Box::pin(commit(connection, group))
}

async fn commit(connection: &mut SqliteConnection, group: &mut Vec<Work>) {
    if let Err(error) = execute(connection, "BEGIN IMMEDIATE").await {
        tracing::error!(%error, "cannot begin a write transaction");
        // Dropping the work drops its answer channel: callers get `WriterStopped`.
        group.clear();
        return;
    }
    // A lone write needs no savepoint: the transaction is its own.
    let alone = group.len() == 1;
    let mut finishes = Vec::with_capacity(group.len());
    let mut any_ok = false;
    let mut broken = None;
    for work in group.drain(..) {
        if broken.is_some() {
            // Dropped unrun: its caller hears `WriterStopped`.
            continue;
        }
        if !alone {
            if let Err(error) = execute(connection, "SAVEPOINT write").await {
                broken = Some(error);
                continue;
            }
        }
        let (ok, finish) = work(connection).await;
        finishes.push(finish);
        any_ok |= ok;
        if !alone {
            let ended = match ok {
                true => execute(connection, "RELEASE write").await,
                false => match execute(connection, "ROLLBACK TO write").await {
                    Ok(()) => execute(connection, "RELEASE write").await,
                    Err(error) => Err(error),
                },
            };
            // SQLite may have rolled the whole transaction back (disk full, I/O error):
            // then nothing in this group can be trusted, so none of it is kept.
            if let Err(error) = ended {
                broken = Some(error);
            }
        }
    }
    if let Some(error) = broken {
        tracing::error!(%error, "a write failed in a way that spoils its transaction; rolling the group back");
        let _ = execute(connection, "ROLLBACK").await;
        finishes.into_iter().for_each(|finish| finish(Some(&error)));
        return;
    }
    let end = if any_ok { "COMMIT" } else { "ROLLBACK" };
    match execute(connection, end).await {
        Ok(()) => finishes.into_iter().for_each(|finish| finish(None)),
        Err(error) => {
            tracing::error!(%error, "a write transaction failed to commit");
            let _ = execute(connection, "ROLLBACK").await;
            finishes.into_iter().for_each(|finish| finish(Some(&error)));
        }
    }
}

/// Runs fixed SQL. Boxed, so the spawned writer future stays `Send` for any lifetime.
fn execute<'c>(connection: &'c mut SqliteConnection, sql: &'static str) -> BoxFuture<'c, Result<(), sqlx::Error>> {
    Box::pin(async move { sqlx::query(sql).execute(connection).await.map(|_| ()) })
}

/// Checkpoints the write-ahead log on `connection` every [`CHECKPOINT_EVERY`] while
/// `writer` runs. PASSIVE checkpoints wait for nobody: readers and the writer go on,
/// and what a reader still needs is left for the next round.
pub(super) fn checkpoint_in_background(mut connection: SqliteConnection, writer: &Writer) {
    let writer = writer.queue.downgrade();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(CHECKPOINT_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if writer.upgrade().is_none() {
                return;
            }
            if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&mut connection)
                .await
            {
                tracing::warn!(%error, "checkpointing the write-ahead log failed");
            }
        }
    });
}
