//! The single writer. SQLite takes one writer at a time, so every write goes through one
//! connection, owned by a thread of its own, which also commits writes in groups: while
//! a transaction runs, the writes that arrive queue up and then share the next one. A
//! failing write rolls back alone and its neighbours still commit. A caller hears its
//! result only after the commit that made it durable: with `synchronous = FULL` (the
//! default) that commit syncs the write-ahead log, once for the whole group.
//!
//! A write runs inside its own savepoint, so that it can be rolled back alone, unless it
//! fails, if at all, before it changes anything: a savepoint costs a copy of every page
//! its write touches, a fair share of a small write. Publishing (it saves its
//! idempotency key first, and a taken key changes nothing) and single-statement updates
//! (releases, cancellations) run without one: [`Writer::write_without_savepoint`]. Such a
//! write that does fail after a change (an I/O error) cannot be undone alone, so its
//! whole group is rolled back and fails.
//!
//! The connection is `rusqlite`'s, called directly on that thread: a statement is a
//! function call, with its prepared form cached, where an async driver would pass every
//! statement and row to a connection thread and back (two thread wake-ups each, which
//! were most of the cost of a write). Readers stay on the async pool.

use std::time::Duration;

use rusqlite::Connection;
use sqlx::SqliteConnection;
use tokio::sync::{mpsc, oneshot, watch};

use crate::StoreError;

/// Most writes committed together.
const MAX_GROUP: usize = 128;
/// How often the write-ahead log is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);
/// A group smaller than this, when the last commit ended less than [`BUSY_GAP`] ago,
/// waits [`BUSY_WAIT`] for more writes: under load a commit a tenth of a millisecond
/// later carries several times the writes, and an idle writer never waits.
const BUSY_GROUP: usize = 16;
const BUSY_GAP: Duration = Duration::from_millis(1);
const BUSY_WAIT: Duration = Duration::from_micros(100);
/// Prepared statements the writer keeps.
const STATEMENT_CACHE: usize = 64;

/// Tells a caller its outcome once the group's commit is known (`None`: committed;
/// otherwise why the group was not).
type Finish = Box<dyn FnOnce(Option<&str>) + Send>;
/// Runs a caller's statements; `true` when they succeeded.
type Work = Box<dyn FnOnce(&Connection) -> (bool, Finish) + Send>;

/// One caller's statements, run on the writer connection.
struct Job {
    work: Work,
    /// Whether the write runs in a savepoint of its own (see the module docs).
    savepoint: bool,
}

/// A handle to the writer thread.
#[derive(Clone, Debug)]
pub(super) struct Writer {
    queue: mpsc::Sender<Job>,
    /// Becomes `true` when the thread ends (it panicked, or every handle was dropped).
    stopped: watch::Receiver<bool>,
}

impl Writer {
    /// Starts the writer thread on `connection`. It stops when the last handle is dropped.
    pub(super) fn start(connection: Connection) -> Result<Self, StoreError> {
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let (queue, jobs) = mpsc::channel(4 * MAX_GROUP);
        let (stop, stopped) = watch::channel(false);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                // A panic drops the queue's receiver as it unwinds, so every caller waiting
                // and every later write hears `WriterStopped`; `stopped` tells the rest.
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&connection, jobs)));
                if let Err(panic) = ran {
                    let cause = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    tracing::error!(%cause, "the SQLite writer panicked: nothing more can be written");
                }
                let _ = stop.send(true);
            })
            .map_err(|error| {
                tracing::error!(%error, "cannot start the SQLite writer thread");
                StoreError::WriterStopped
            })?;
        Ok(Self { queue, stopped })
    }

    /// Whether the writer thread has ended: every write fails from then on.
    pub(super) fn stopped(&self) -> bool {
        *self.stopped.borrow() || self.queue.is_closed()
    }

    /// Completes when the writer thread ends.
    pub(super) async fn wait_stopped(&self) {
        let mut stopped = self.stopped.clone();
        // An error means the thread is gone without a word, which is stopped too.
        let _ = stopped.wait_for(|stopped| *stopped).await;
    }

    /// Runs `write` in a transaction (shared with other writes) and answers its result
    /// once committed. A failing `write` is rolled back alone, whatever it changed.
    pub(super) async fn write<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(write, true).await
    }

    /// Like [`Writer::write`] without a savepoint, for a write whose checks come before
    /// its changes: when it fails before changing anything, nothing needs undoing; when
    /// it fails after a change (an I/O error, say), its whole group is rolled back and
    /// every write in it fails.
    pub(super) async fn write_without_savepoint<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(write, false).await
    }

    async fn submit<T, F>(&self, write: F, savepoint: bool) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let work: Work = Box::new(move |connection| {
            let result = write(connection);
            let ok = result.is_ok();
            let finish: Finish = Box::new(move |commit_error| {
                let outcome = match (result, commit_error) {
                    (Ok(value), None) => Ok(value),
                    (Ok(_), Some(error)) => Err(StoreError::Commit(error.to_owned())),
                    (Err(error), _) => Err(error),
                };
                let _ = answer.send(outcome);
            });
            (ok, finish)
        });
        self.queue
            .send(Job { work, savepoint })
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answered.await.map_err(|_| StoreError::WriterStopped)?
    }
}

fn run(connection: &Connection, mut jobs: mpsc::Receiver<Job>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut last_commit = std::time::Instant::now();
    while let Some(work) = jobs.blocking_recv() {
        group.push(work);
        drain(&mut jobs, &mut group);
        // A commit costs about the same for one write as for many (it writes the pages
        // they share), so let the threads that are about to queue writes do it first.
        // With nothing else to run, the yield returns at once.
        if group.len() < MAX_GROUP {
            std::thread::yield_now();
            drain(&mut jobs, &mut group);
        }
        if group.len() < BUSY_GROUP && last_commit.elapsed() < BUSY_GAP {
            std::thread::sleep(BUSY_WAIT);
            drain(&mut jobs, &mut group);
        }
        commit(connection, &mut group);
        last_commit = std::time::Instant::now();
    }
}

/// Moves queued writes into `group`, up to [`MAX_GROUP`].
fn drain(jobs: &mut mpsc::Receiver<Job>, group: &mut Vec<Job>) {
    while group.len() < MAX_GROUP {
        match jobs.try_recv() {
            Ok(work) => group.push(work),
            Err(_) => break,
        }
    }
}

/// Commits (and empties) `group`.
fn commit(connection: &Connection, group: &mut Vec<Job>) {
    if let Err(error) = execute(connection, "BEGIN IMMEDIATE") {
        tracing::error!(%error, "cannot begin a write transaction");
        // Dropping the work drops its answer channel: callers get `WriterStopped`.
        group.clear();
        return;
    }
    // A lone write needs no savepoint: the transaction is its own.
    let alone = group.len() == 1;
    let mut finishes = Vec::with_capacity(group.len());
    let mut any_ok = false;
    let mut broken: Option<String> = None;
    for job in group.drain(..) {
        if broken.is_some() {
            // Dropped unrun: its caller hears `WriterStopped`.
            continue;
        }
        let savepoint = job.savepoint && !alone;
        if savepoint {
            if let Err(error) = execute(connection, "SAVEPOINT write") {
                broken = Some(error.to_string());
                continue;
            }
        }
        let changes_before = connection.total_changes();
        let (ok, finish) = (job.work)(connection);
        finishes.push(finish);
        any_ok |= ok;
        if savepoint {
            let ended = match ok {
                true => execute(connection, "RELEASE write"),
                false => execute(connection, "ROLLBACK TO write").and_then(|()| execute(connection, "RELEASE write")),
            };
            // SQLite may have rolled the whole transaction back (disk full, I/O error):
            // then nothing in this group can be trusted, so none of it is kept.
            if let Err(error) = ended {
                broken = Some(error.to_string());
            }
        } else if !ok && !alone {
            if connection.is_autocommit() {
                broken = Some("SQLite rolled the transaction back".to_owned());
            } else if connection.total_changes() != changes_before {
                broken = Some("a write without a savepoint failed after changing rows".to_owned());
            }
        }
    }
    if let Some(error) = broken {
        tracing::error!(%error, "a write failed in a way that spoils its transaction; rolling the group back");
        let _ = execute(connection, "ROLLBACK");
        finishes.into_iter().for_each(|finish| finish(Some(&error)));
        return;
    }
    let end = if any_ok { "COMMIT" } else { "ROLLBACK" };
    match execute(connection, end) {
        Ok(()) => finishes.into_iter().for_each(|finish| finish(None)),
        Err(error) => {
            tracing::error!(%error, "a write transaction failed to commit");
            let _ = execute(connection, "ROLLBACK");
            let error = error.to_string();
            finishes.into_iter().for_each(|finish| finish(Some(&error)));
        }
    }
}

/// Runs fixed SQL with no parameters.
fn execute(connection: &Connection, sql: &'static str) -> Result<(), rusqlite::Error> {
    connection.prepare_cached(sql)?.execute([]).map(|_| ())
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
    use rusqlite::Connection;
    use tokio::task::JoinHandle;

    use super::Writer;
    use crate::StoreError;

    #[derive(Clone, Copy, PartialEq)]
    enum Fail {
        No,
        /// Before its first change.
        Before,
        /// After a change.
        After,
    }

    /// A writer on a fresh file with a table `t (v INTEGER PRIMARY KEY)`.
    fn writer(dir: &tempfile::TempDir) -> Writer {
        let connection = Connection::open(dir.path().join("w.db")).unwrap();
        connection
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER PRIMARY KEY)")
            .unwrap();
        Writer::start(connection).unwrap()
    }

    /// Inserts `value`, failing as `fail` says, with or without a savepoint.
    fn insert(writer: &Writer, value: i64, fail: Fail, savepoint: bool) -> JoinHandle<Result<(), StoreError>> {
        let writer = writer.clone();
        tokio::spawn(async move {
            let write = move |connection: &Connection| {
                if fail == Fail::Before {
                    return Err(StoreError::IdempotencyKeyTaken);
                }
                connection.execute("INSERT INTO t (v) VALUES (?)", [value])?;
                if fail == Fail::After {
                    // A failure after a statement that succeeded: its row must go too.
                    connection.execute("INSERT INTO t (v) VALUES (?)", [value])?;
                }
                Ok(())
            };
            match savepoint {
                true => writer.write(write).await,
                false => writer.write_without_savepoint(write).await,
            }
        })
    }

    /// Runs the writes of `plan` as one group (queued behind a write that holds the
    /// writer until they all are) and answers which succeeded.
    async fn one_group(writer: &Writer, plan: &[(i64, Fail)], savepoint: bool) -> Vec<bool> {
        let (started, start) = std::sync::mpsc::channel::<()>();
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let busy = writer.clone();
        let blocker = tokio::spawn(async move {
            busy.write(move |_| {
                started.send(()).unwrap();
                wait.recv().unwrap();
                Ok(())
            })
            .await
        });
        while start.try_recv().is_err() {
            tokio::task::yield_now().await;
        }
        let writes: Vec<_> = plan
            .iter()
            .map(|&(value, fail)| insert(writer, value, fail, savepoint))
            .collect();
        // Let every write reach the queue, then free the writer.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        go.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        let mut ok = Vec::new();
        for write in writes {
            ok.push(write.await.unwrap().is_ok());
        }
        ok
    }

    async fn kept(writer: &Writer) -> Vec<i64> {
        writer
            .write(|connection| {
                let mut select = connection.prepare("SELECT v FROM t ORDER BY v")?;
                let values = select.query_map([], |row| row.get(0))?.collect::<Result<_, _>>()?;
                Ok(values)
            })
            .await
            .unwrap()
    }

    /// Writes queued together share a transaction, and each failing one (first, middle
    /// or last in its group) is undone alone.
    #[tokio::test(flavor = "current_thread")]
    async fn a_failing_write_in_a_group_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir);
        let plan = [
            (1, Fail::After),
            (2, Fail::No),
            (3, Fail::After),
            (4, Fail::After),
            (5, Fail::No),
            (6, Fail::After),
        ];
        let ok = one_group(&writer, &plan, true).await;
        assert_eq!(ok, [false, true, false, false, true, false]);
        assert_eq!(kept(&writer).await, [2, 5]);
        // A lone failing write leaves nothing, and the writer goes on.
        assert!(insert(&writer, 7, Fail::After, true).await.unwrap().is_err());
        insert(&writer, 9, Fail::No, true).await.unwrap().unwrap();
        assert_eq!(kept(&writer).await, [2, 5, 9]);
    }

    /// A write that panics stops the writer for good, and says so: it and every later
    /// write fail, `stopped` is true and `wait_stopped` completes.
    #[tokio::test(flavor = "current_thread")]
    async fn a_panicking_write_stops_the_writer_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir);
        insert(&writer, 1, Fail::No, true).await.unwrap().unwrap();
        assert!(!writer.stopped());
        let panicked = writer
            .write(|_| -> Result<(), StoreError> { panic!("a bug in a write") })
            .await;
        assert!(matches!(panicked, Err(StoreError::WriterStopped)), "{panicked:?}");
        tokio::time::timeout(std::time::Duration::from_secs(10), writer.wait_stopped())
            .await
            .expect("the writer says it stopped");
        assert!(writer.stopped());
        let later = insert(&writer, 2, Fail::No, true).await.unwrap();
        assert!(matches!(later, Err(StoreError::WriterStopped)), "{later:?}");
    }

    /// Without savepoints: a write failing before its first change fails alone; one
    /// failing after a change takes its group down with it, and nothing of it is kept.
    #[tokio::test(flavor = "current_thread")]
    async fn a_write_without_savepoint_fails_alone_only_before_its_changes() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir);
        let ok = one_group(&writer, &[(1, Fail::No), (2, Fail::Before), (3, Fail::No)], false).await;
        assert_eq!(ok, [true, false, true]);
        assert_eq!(kept(&writer).await, [1, 3]);
        let ok = one_group(&writer, &[(4, Fail::No), (5, Fail::After), (6, Fail::No)], false).await;
        assert_eq!(ok, [false, false, false]);
        assert_eq!(kept(&writer).await, [1, 3]);
    }
}
