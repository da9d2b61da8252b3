//! Retention against real databases: a SQLite file gives the space of deleted history
//! back, and on PostgreSQL a cleaner batch does nothing while another node's cleaner
//! holds the lock. The PostgreSQL server is as in `tests/postgres.rs`.

mod common;

use common::with_databases;
use std::path::Path;
use std::time::{Duration, Instant};

use hookrelay_core::event::{Event, EventObject};
use hookrelay_core::retention::VACUUM_PAGES_PER_STEP;
use hookrelay_core::seal::{MasterKey, SecretCipher};
use hookrelay_core::{EventId, SpaceId, Timestamp};
use hookrelay_store::traits::*;
use hookrelay_store::{PostgresStore, SqliteStore, CLEANER_LOCK};
use serde_json::value::RawValue;
use sqlx::{Connection, Executor, PgConnection};

fn cipher() -> SecretCipher {
    SecretCipher::new(&MasterKey::generate())
}

fn event(space: &SpaceId, object: &str, data: String, at: Timestamp) -> Event {
    Event {
        id: EventId::generate(),
        space_id: space.clone(),
        name: "payment.completed".to_owned(),
        object: EventObject {
            id: object.to_owned(),
            object_type: "payment".to_owned(),
        },
        data: RawValue::from_string(data).unwrap(),
        create_time: at,
        trace_parent: None,
    }
}

/// Deletes everything older than `cutoff` in the space, batch by batch.
async fn delete_all(store: &dyn Store, space: &SpaceId, cutoff: Timestamp) -> u64 {
    let (mut after, mut events) = (0, 0);
    loop {
        let batch = store
            .delete_expired(space, after, cutoff)
            .await
            .unwrap()
            .expect("not locked");
        events += batch.removed.events;
        if batch.done {
            return events;
        }
        after = batch.next_after;
    }
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Polls until `done` holds of the file's size; the size then. Panics after 20 s.
async fn wait_for_size(path: &Path, done: impl Fn(u64) -> bool) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let size = file_size(path);
        if done(size) {
            return size;
        }
        assert!(Instant::now() < deadline, "{} stayed at {size} bytes", path.display());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_sqlite_file_gives_the_space_of_deleted_history_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let store = SqliteStore::open(&path, cipher()).await.unwrap();
    let space = SpaceId::parse("spc-big").unwrap();
    store.create_space(&space).await.unwrap();
    let published = Timestamp::now();
    let data = format!(r#"{{"blob":"{}"}}"#, "x".repeat(16 * 1024));
    for _ in 0..1500 {
        store
            .publish_event(&event(&space, "o", data.clone(), published), None)
            .await
            .unwrap();
    }
    // The background checkpoint copies the log into the file: about 24 MiB of data.
    let full = wait_for_size(&path, |size| size > 20 << 20).await;

    assert_eq!(delete_all(&store, &space, published.plus_micros(1)).await, 1500);
    let mut freed = 0;
    loop {
        let step = store.reclaim_space(VACUUM_PAGES_PER_STEP).await.unwrap();
        assert!(step <= u64::from(VACUUM_PAGES_PER_STEP));
        freed += step;
        if step < u64::from(VACUUM_PAGES_PER_STEP) {
            break;
        }
    }
    assert!(freed > 4000, "only {freed} pages freed");
    let shrunk = wait_for_size(&path, |size| size < full / 10).await;
    println!("file size: {full} bytes full, {shrunk} bytes after deleting and reclaiming");
    assert_eq!(
        store.reclaim_space(VACUUM_PAGES_PER_STEP).await.unwrap(),
        0,
        "nothing left to free"
    );
}

#[tokio::test]
async fn an_existing_sqlite_file_is_switched_to_incremental_vacuum_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let mut old = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        old.execute("CREATE TABLE filler (v BLOB); INSERT INTO filler VALUES (zeroblob(100000));")
            .await
            .unwrap();
        let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
            .fetch_one(&mut old)
            .await
            .unwrap();
        assert_eq!(mode, 0, "a file made without the mode");
    }
    drop(SqliteStore::open(&path, cipher()).await.unwrap());
    let mut reopened = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
        .fetch_one(&mut reopened)
        .await
        .unwrap();
    assert_eq!(mode, 2, "INCREMENTAL");
}

#[tokio::test]
async fn a_postgres_cleaner_batch_skips_while_another_node_cleans() {
    with_databases(|url, _dir| async move {
        let store = PostgresStore::open(&url, cipher(), 4).await.unwrap();
        let space = SpaceId::parse("spc-lock").unwrap();
        store.create_space(&space).await.unwrap();
        let published = Timestamp::now();
        store
            .publish_event(&event(&space, "o", "{}".to_owned(), published), None)
            .await
            .unwrap();
        let cutoff = published.plus_micros(1);

        // Another node's cleaner, in the middle of a batch.
        let mut other = PgConnection::connect(&url).await.unwrap();
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(CLEANER_LOCK)
            .execute(&mut other)
            .await
            .unwrap();
        assert!(store.delete_expired(&space, 0, cutoff).await.unwrap().is_none());
        assert!(store
            .expire_payloads(&space, 0, cutoff, cutoff)
            .await
            .unwrap()
            .is_none());
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(CLEANER_LOCK)
            .execute(&mut other)
            .await
            .unwrap();

        let batch = store
            .delete_expired(&space, 0, cutoff)
            .await
            .unwrap()
            .expect("the lock is free");
        assert_eq!(batch.removed.events, 1);
        assert!(batch.done);
    })
    .await;
}
