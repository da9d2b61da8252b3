//! Where the database is, parsed from the configured URL.

use std::path::PathBuf;

use crate::StoreError;

/// Where the database is.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database, as a `postgres://` or `postgresql://` URL (it may hold a password).
    Postgres(String),
}

impl DatabaseLocation {
    /// Parses `sqlite://PATH` or `sqlite:PATH` (`sqlite:///abs/path` for an absolute path),
    /// or a `postgres://…` / `postgresql://…` URL, kept whole for the driver.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        if let Some(rest) = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
        {
            if rest.is_empty() {
                return Err(StoreError::UnsupportedDatabase(url.to_owned()));
            }
            return Ok(Self::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StoreError::UnsupportedDatabase(url.to_owned()))?;
        if path.is_empty() {
            return Err(StoreError::UnsupportedDatabase(url.to_owned()));
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }
}

// By hand rather than derived: configuration is logged, and a PostgreSQL URL may carry a password.
impl std::fmt::Debug for DatabaseLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Self::Postgres(url) => f.debug_tuple("Postgres").field(&redact_password(url)).finish(),
        }
    }
}

/// `url` with the password in its user info (`user:password@`) replaced by `***`.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    match authority
        .rsplit_once('@')
        .and_then(|(info, host)| Some((info.split_once(':')?.0, host)))
    {
        Some((user, host)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_database_urls() {
        assert_eq!(
            DatabaseLocation::parse("sqlite:///var/lib/hr.db").unwrap(),
            DatabaseLocation::Sqlite(PathBuf::from("/var/lib/hr.db"))
        );
        for url in [
            "postgres://hr@db:5432/hookrelay",
            "postgresql://hr:pw@db/hookrelay?sslmode=require",
        ] {
            assert_eq!(
                DatabaseLocation::parse(url).unwrap(),
                DatabaseLocation::Postgres(url.to_owned())
            );
        }
        for bad in ["postgres://", "mysql://db/x", "sqlite:", "db.sqlite"] {
            assert!(DatabaseLocation::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_hides_postgres_passwords() {
        let location = DatabaseLocation::parse("postgres://hr:s3cret@db:5432/hookrelay?sslmode=require").unwrap();
        assert_eq!(
            format!("{location:?}"),
            r#"Postgres("postgres://hr:***@db:5432/hookrelay?sslmode=require")"#
        );
        let plain = DatabaseLocation::parse("postgres://hr@db/hookrelay").unwrap();
        assert_eq!(format!("{plain:?}"), r#"Postgres("postgres://hr@db/hookrelay")"#);
    }
}
