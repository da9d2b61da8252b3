//! What the store's two-backend test files share: a fresh PostgreSQL database per test
//! on a real server (`HOOKRELAY_TEST_POSTGRES_URL`, or the `test` database on 127.0.0.1),
//! which must be reachable: a skipped test would hide that it never ran.

// Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use hookrelay_core::seal::{MasterKey, SecretCipher};
use hookrelay_core::DeliveryId;
use hookrelay_store::{PostgresStore, SqliteStore, Store};
use sqlx::{Connection, Executor, PgConnection};

pub fn admin_url() -> String {
    std::env::var("HOOKRELAY_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Runs `test` with the URL of a new PostgreSQL database and a directory for SQLite,
/// then drops the database whatever the outcome.
pub async fn with_databases<F, Fut>(test: F)
where
    F: FnOnce(String, tempfile::TempDir) -> Fut,
    Fut: Future<Output = ()>,
{
    let url = admin_url();
    let mut admin = match tokio::time::timeout(Duration::from_secs(15), PgConnection::connect(&url)).await {
        Ok(Ok(connection)) => connection,
        other => panic!("PostgreSQL is not reachable at {url} ({other:?}); these tests need it"),
    };
    let name = format!(
        "hr_{}",
        DeliveryId::generate().as_str()[DeliveryId::PREFIX.len()..].to_ascii_lowercase()
    );
    admin.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
    let database = format!("{}/{name}", url.rsplit_once('/').unwrap().0);
    let dir = tempfile::tempdir().unwrap();
    let outcome = AssertUnwindSafe(test(database, dir)).catch_unwind().await;
    admin
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Both backends, opened with one key; PostgreSQL with a pool of `connections`.
pub async fn both(url: &str, dir: &Path, connections: u32) -> Vec<(&'static str, Arc<dyn Store>)> {
    let cipher = SecretCipher::new(&MasterKey::generate());
    let sqlite = SqliteStore::open(&dir.join("hr.db"), cipher.clone()).await.unwrap();
    let postgres = PostgresStore::open(url, cipher, connections).await.unwrap();
    vec![("SQLite", Arc::new(sqlite)), ("PostgreSQL", Arc::new(postgres))]
}
