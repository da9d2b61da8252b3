//! Running a read statement on either backend's sqlx pool. The SQL is written once for
//! both: `$1`-style placeholders (SQLite reads them as numbered parameters) and
//! `CAST(… AS TEXT)` where PostgreSQL needs a type.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{PgPool, SqlitePool};

use crate::rows::Columns;
use crate::StoreError;

/// A parameter of a read statement.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Arg<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
    Blob(&'a [u8]),
}

/// A pool that runs read statements, with rows that decode through [`Columns`].
#[async_trait]
pub(crate) trait ReadPool: Send + Sync {
    type Row: Columns + Send;

    /// Every row `sql` answers with `args`.
    async fn fetch_all(&self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<Self::Row>, StoreError>;

    /// The row `sql` answers with `args`, if any.
    async fn fetch_optional(&self, sql: &str, args: &[Arg<'_>]) -> Result<Option<Self::Row>, StoreError>;
}

/// Implements [`ReadPool`] for one backend's pool type, whose rows are `$row`.
macro_rules! read_pool_for {
    ($pool:ty, $row:ty) => {
        #[async_trait]
        impl ReadPool for $pool {
            type Row = $row;

            async fn fetch_all(&self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<$row>, StoreError> {
                let mut query = sqlx::query(sql);
                for arg in args {
                    query = match *arg {
                        Arg::Text(text) => query.bind(text),
                        Arg::OptText(text) => query.bind(text),
                        Arg::Int(int) => query.bind(int),
                        Arg::Blob(blob) => query.bind(blob),
                    };
                }
                Ok(query.fetch_all(self).await?)
            }

            async fn fetch_optional(&self, sql: &str, args: &[Arg<'_>]) -> Result<Option<$row>, StoreError> {
                Ok(self.fetch_all(sql, args).await?.into_iter().next())
            }
        }
    };
}

read_pool_for!(SqlitePool, SqliteRow);
read_pool_for!(PgPool, PgRow);
