//! The key-rotation migration on both backends: webhooks stored before it get a key id
//! each (distinct, `key-` and hex), and no previous key. The schema before it is built by
//! running the earlier migration files themselves.

mod common;

use common::with_databases;

use std::collections::HashSet;
use std::path::Path;

use sqlx::{Connection, PgConnection, Row, SqliteConnection};

const MIGRATIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");

/// The SQL of `backend`'s migration files, in order, split at the one named `first_new`.
fn migrations(backend: &str, first_new: &str) -> (String, String) {
    let mut files: Vec<_> = std::fs::read_dir(Path::new(MIGRATIONS).join(backend))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    let (mut before, mut from) = (String::new(), String::new());
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let target = if name.as_str() < first_new {
            &mut before
        } else {
            &mut from
        };
        target.push_str(&std::fs::read_to_string(&file).unwrap());
        target.push('\n');
    }
    (before, from)
}

const WEBHOOK: &str = "INSERT INTO webhooks (id, space_id, name, url, enabled, events, api_release, verification_type,
     secret_sealed, public_key, headers_sealed, alert_emails, metadata, create_time, update_time)
     VALUES ($1, 'spc-old', 'old', 'https://example.com/h', true, '[]', 'caph', 'HS256', $2, NULL, $2, '[]', '{}', 0, 0)";

fn assert_ids(rows: Vec<(String, Option<String>)>) {
    assert_eq!(rows.len(), 3);
    let ids: HashSet<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), 3, "distinct: {rows:?}");
    for (id, previous) in &rows {
        let suffix = id.strip_prefix("key-").unwrap_or_else(|| panic!("{id}"));
        assert!(
            suffix.len() == 32 && suffix.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
        assert!(hookrelay_core::KeyId::parse(id).is_some(), "{id}");
        assert_eq!(previous, &None);
    }
}

#[tokio::test]
async fn webhooks_from_before_key_ids_get_one_each() {
    with_databases(|url, dir| async move {
        let (before, from) = migrations("sqlite", "0015");
        let file = dir.path().join("old.db");
        let mut sqlite = SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", file.display()))
            .await
            .unwrap();
        sqlx::raw_sql(&before).execute(&mut sqlite).await.unwrap();
        sqlx::query("INSERT INTO spaces (id, create_time) VALUES ('spc-old', 0)")
            .execute(&mut sqlite)
            .await
            .unwrap();
        for id in ["whk-a", "whk-b", "whk-c"] {
            let sealed: &[u8] = b"sealed";
            sqlx::query(WEBHOOK)
                .bind(id)
                .bind(sealed)
                .execute(&mut sqlite)
                .await
                .unwrap();
        }
        sqlx::raw_sql(&from).execute(&mut sqlite).await.unwrap();
        let rows = sqlx::query("SELECT key_id, previous_key_id FROM webhooks")
            .fetch_all(&mut sqlite)
            .await
            .unwrap();
        assert_ids(rows.iter().map(|row| (row.get(0), row.get(1))).collect());

        let (before, from) = migrations("postgres", "0013");
        let mut postgres = PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(&before).execute(&mut postgres).await.unwrap();
        sqlx::query("INSERT INTO spaces (id, create_time) VALUES ('spc-old', 0)")
            .execute(&mut postgres)
            .await
            .unwrap();
        for id in ["whk-a", "whk-b", "whk-c"] {
            let sealed: &[u8] = b"sealed";
            let insert = WEBHOOK.replace("'[]', 'caph'", "'[]'::jsonb, 'caph'");
            sqlx::query(&insert)
                .bind(id)
                .bind(sealed)
                .execute(&mut postgres)
                .await
                .unwrap();
        }
        sqlx::raw_sql(&from).execute(&mut postgres).await.unwrap();
        let rows = sqlx::query("SELECT key_id, previous_key_id FROM webhooks")
            .fetch_all(&mut postgres)
            .await
            .unwrap();
        assert_ids(rows.iter().map(|row| (row.get(0), row.get(1))).collect());
    })
    .await;
}
