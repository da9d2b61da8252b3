//! The PostgreSQL backend: the same [`Store`] as SQLite's, for several hookrelay nodes
//! sharing one database.
//!
//! It implements the same traits as `sqlite/`, each in its own file; what differs is
//! what many writers need.
//! Rows that a read-modify-write depends on are locked (`FOR UPDATE`), claims take rows
//! `FOR UPDATE SKIP LOCKED` so two nodes never claim one delivery or alert, and no lease
//! is released at start ([`Store::release_orphaned_claims`] releases none): another node
//! may hold it, and an expired lease is claimable anyway, as is one of a node whose
//! heartbeat went stale (`nodes`).
//!
//! Commits are durable before they are answered: sessions run with `synchronous_commit`
//! on unless the URL's `options` set it (a server or database that turns it off is
//! overruled, and a URL that does is warned about).
//!
//! The connection speaks TLS as the URL's `sslmode` asks (libpq's names; without one,
//! `prefer`: TLS when the server offers it). Only `verify-ca` and `verify-full` check
//! who answers, so a server reached over a network without them is warned about.

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use hookrelay_core::seal::SecretCipher;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{PgPool, Postgres, Transaction};

use crate::{IdempotencyRecord, Store, StoreError};

/// Saves an idempotency record, parameters `$1` to `$7` ([`bind_idempotency`]); no row
/// when `$2` (the key) is null. One statement: an expired record for the same key gives
/// way to the new one, a live one keeps the key. A concurrent insert of the same key makes
/// this one wait for it: if it commits, its record is live and the key is taken.
macro_rules! save_idempotency_key {
    () => {
        "INSERT INTO idempotency_keys (space_id, key, fingerprint, status, body, create_time, expire_time)
         SELECT $1, $2, $3, $4, $5, $6, $7 WHERE $2::text IS NOT NULL
         ON CONFLICT (space_id, key) DO UPDATE
             SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status, body = EXCLUDED.body,
                 create_time = EXCLUDED.create_time, expire_time = EXCLUDED.expire_time
             WHERE idempotency_keys.expire_time <= EXCLUDED.create_time"
    };
}

mod alerts;
mod claim;
mod deliveries;
mod events;
mod health;
mod idempotency;
mod nodes;
mod notify;
mod pace;
mod record;
mod retention;
mod spaces;
mod tokens;
mod webhooks;

use notify::WorkNotifier;
pub use retention::CLEANER_LOCK;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A store in one PostgreSQL database, shared by any number of nodes.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
    cipher: SecretCipher,
    /// Tells other nodes, after the commit, that a write stored due work.
    notifier: Arc<WorkNotifier>,
}

/// Warns when a server off this machine is reached without checking its certificate.
fn warn_if_unverified(options: &PgConnectOptions) {
    if let Some(host) = unverified_remote_host(options) {
        tracing::warn!(
            host,
            "the PostgreSQL server's certificate is not checked: add sslmode=verify-full \
             (and sslrootcert=PATH for a private CA) to the database URL"
        );
    }
}

/// The server's host, if it is off this machine and its certificate is not checked:
/// below `verify-ca` the connection is encrypted at best, and anyone on the path could
/// pose as the database (and read webhook payloads on their way).
fn unverified_remote_host(options: &PgConnectOptions) -> Option<&str> {
    let verified = matches!(options.get_ssl_mode(), PgSslMode::VerifyCa | PgSslMode::VerifyFull);
    let host = options.get_host();
    let local = options.get_socket().is_some()
        || host.starts_with('/')
        || host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!verified && !local).then_some(host)
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://…`) with a pool of at most
    /// `max_connections`, and migrates it. The database itself must exist.
    pub async fn open(url: &str, cipher: SecretCipher, max_connections: u32) -> Result<Self, StoreError> {
        let mut options = PgConnectOptions::from_str(url)?;
        if options.get_application_name().is_none() {
            // So operators can tell hookrelay's sessions apart in `pg_stat_activity`.
            options = options.application_name("hookrelay");
        }
        warn_if_unverified(&options);
        let commits_chosen = chooses_synchronous_commit(&options);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if !commits_chosen {
                        keep_commits_durable(connection).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        report_commit_durability(&pool).await?;
        // Nodes starting together are serialised by the migrator's advisory lock.
        MIGRATOR.run(&pool).await?;
        let notifier = Arc::new(WorkNotifier::start(pool.clone()));
        Ok(Self { pool, cipher, notifier })
    }
}

/// Whether the URL's `options` set `synchronous_commit` themselves: then the sessions
/// run as they say.
fn chooses_synchronous_commit(options: &PgConnectOptions) -> bool {
    options.get_options().is_some_and(|o| o.contains("synchronous_commit"))
}

/// Turns `synchronous_commit` back on in a session where the server's or database's
/// settings turned it off: an answered publish must survive a crash of the database
/// server. Stronger settings (`remote_apply`, ...) stay as they are.
async fn keep_commits_durable(connection: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    let setting: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&mut *connection)
        .await?;
    if setting == "off" {
        sqlx::query("SET synchronous_commit = on").execute(connection).await?;
    }
    Ok(())
}

/// Says at start how commits reach the disk; warns when the URL turned that off.
async fn report_commit_durability(pool: &PgPool) -> Result<(), StoreError> {
    let setting: String = sqlx::query_scalar("SHOW synchronous_commit").fetch_one(pool).await?;
    if setting == "off" {
        tracing::warn!(
            synchronous_commit = %setting,
            "PostgreSQL commits are answered before they are on disk: a crash of the database server may lose \
             the last answered publishes"
        );
    } else {
        tracing::info!(synchronous_commit = %setting, "PostgreSQL commits are on disk before they are answered");
    }
    Ok(())
}

/// Binds `record` (sealed) as `$1` to `$7` of [`save_idempotency_key`], or nulls.
pub(crate) fn bind_idempotency<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    record: Option<&'q IdempotencyRecord>,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(record.map(|r| r.space_id.as_str()))
        .bind(record.map(|r| r.key.as_str()))
        .bind(record.map(|r| r.fingerprint.as_slice()))
        .bind(record.map(|r| i64::from(r.status)))
        .bind(record.map(|r| r.body.as_slice()))
        .bind(record.map(|r| r.create_time.as_micros()))
        .bind(record.map(|r| r.expire_time.as_micros()))
}

/// Saves an idempotency record (its body sealed: `rows::seal_idempotency`) in `tx`;
/// a live record for the key fails with [`StoreError::IdempotencyKeyTaken`].
async fn save_idempotency(tx: &mut Transaction<'_, Postgres>, record: &IdempotencyRecord) -> Result<(), StoreError> {
    let inserted = bind_idempotency(sqlx::query(save_idempotency_key!()), Some(record))
        .execute(&mut **tx)
        .await?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::IdempotencyKeyTaken);
    }
    Ok(())
}

impl crate::reads::ReadingBackend for PostgresStore {
    type Pool = PgPool;

    fn read_pool(&self) -> &PgPool {
        &self.pool
    }

    fn cipher(&self) -> &SecretCipher {
        &self.cipher
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn broken(&self) -> StoreError {
        // A pool reconnects by itself: a database that does not answer now may later.
        std::future::pending().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_server_is_unverified_below_verify_ca() {
        let host = |url: &str| unverified_remote_host(&PgConnectOptions::from_str(url).unwrap()).map(str::to_owned);
        assert_eq!(
            host("postgres://u@db.example.com/app").as_deref(),
            Some("db.example.com")
        );
        assert_eq!(
            host("postgres://u@10.0.0.5/app?sslmode=require").as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(host("postgres://u@db.example.com/app?sslmode=verify-full"), None);
        assert_eq!(host("postgres://u@db.example.com/app?sslmode=verify-ca"), None);
        assert_eq!(host("postgres://u@127.0.0.1/app"), None, "loopback");
        assert_eq!(host("postgres://u@[::1]/app"), None, "loopback");
        assert_eq!(host("postgres://u@localhost/app?sslmode=disable"), None);
        assert_eq!(host("postgres://u@%2Fvar%2Frun%2Fpostgresql/app"), None, "a socket");
    }
}
