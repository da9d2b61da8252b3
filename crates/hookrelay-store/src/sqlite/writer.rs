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
    // A lone write needs no savepoint: the transaction is its own.
    let alone = group.len() == 1;
    let begin = if alone {
        "BEGIN IMMEDIATE"
    } else {
        "BEGIN IMMEDIATE; SAVEPOINT write"
    };
    if let Err(error) = execute(connection, begin).await {
        tracing::error!(%error, "cannot begin a write transaction");
        let _ = execute(connection, "ROLLBACK").await;
        // Dropping the work drops its answer channel: callers get `WriterStopped`.
        group.clear();
        return;
    }
    let mut finishes = Vec::with_capacity(group.len());
    let mut any_ok = false;
    let mut broken = None;
    // How the previous write ended, until its savepoint is closed. Closing one and
    // opening the next is one round trip to the connection's thread; a failed write is
    // rolled back to the start of its savepoint, which the next write then reuses, and
    // the last savepoint is closed by the commit.
    let mut previous_ok = None;
    for work in group.drain(..) {
        if broken.is_some() {
            // Dropped unrun: its caller hears `WriterStopped`.
            continue;
        }
        if let Some(ok) = previous_ok.take() {
            let boundary = if ok {
                "RELEASE write; SAVEPOINT write"
            } else {
                "ROLLBACK TO write"
            };
            if let Err(error) = execute(connection, boundary).await {
                broken = Some(error);
                continue;
            }
        }
        let (ok, finish) = work(connection).await;
        finishes.push(finish);
        any_ok |= ok;
        if !alone {
            previous_ok = Some(ok);
        }
    }
    if broken.is_none() && previous_ok == Some(false) {
        if let Err(error) = execute(connection, "ROLLBACK TO write").await {
            broken = Some(error);
        }
    }
    // SQLite may have rolled the whole transaction back (disk full, I/O error): then
    // nothing in this group can be trusted, so none of it is kept.
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

#[cfg(test)]
mod tests {
    use sqlx::{Connection, SqliteConnection};

    use super::Writer;
    use crate::StoreError;

    async fn insert(writer: &Writer, value: i64, fail: bool) -> Result<(), StoreError> {
        writer
            .write(move |connection| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO t (v) VALUES (?)")
                        .bind(value)
                        .execute(&mut *connection)
                        .await?;
                    if fail {
                        // A failure after a statement that succeeded: its row must go too.
                        sqlx::query("INSERT INTO t (v) VALUES (?)")
                            .bind(value)
                            .execute(&mut *connection)
                            .await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    /// Writes queued together share a transaction, and each failing one (first, middle
    /// or last in its group) is undone alone.
    #[tokio::test(flavor = "current_thread")]
    async fn a_failing_write_in_a_group_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
        let mut connection = SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE t (v INTEGER PRIMARY KEY)")
            .execute(&mut connection)
            .await
            .unwrap();
        let writer = Writer::start(connection);
        // On one thread, the writer task runs only once all of these are queued.
        let plan = [(1, true), (2, false), (3, true), (4, true), (5, false), (6, true)];
        let results =
            futures_util::future::join_all(plan.iter().map(|&(value, fail)| insert(&writer, value, fail))).await;
        for ((value, fail), result) in plan.iter().zip(&results) {
            assert_eq!(result.is_err(), *fail, "write {value}: {result:?}");
        }
        let kept: Vec<i64> = writer
            .write(|connection| {
                Box::pin(async move {
                    Ok(sqlx::query_scalar("SELECT v FROM t ORDER BY v")
                        .fetch_all(connection)
                        .await?)
                })
            })
            .await
            .unwrap();
        assert_eq!(kept, vec![2, 5]);
        // A group where every write fails leaves nothing, and the writer goes on.
        let results = futures_util::future::join_all([insert(&writer, 7, true), insert(&writer, 8, true)]).await;
        assert!(results.iter().all(Result::is_err));
        insert(&writer, 9, false).await.unwrap();
        let count: i64 = writer
            .write(|connection| {
                Box::pin(async move {
                    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM t")
                        .fetch_one(connection)
                        .await?)
                })
            })
            .await
            .unwrap();
        assert_eq!(count, 3);
    }
}
