//! A consistent copy of a live SQLite database, for backups.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::StoreError;

/// Writes a copy of the database at `source` to `destination`, which must not exist:
/// everything committed when the copy starts, compacted, in one file (no `-wal`). The
/// copy is one read transaction (`VACUUM INTO`) on a read-only connection of its own, so
/// a server keeps publishing and delivering while it runs. Blocking: call it off the
/// async runtime.
pub fn backup(source: &Path, destination: &str) -> Result<(), StoreError> {
    let connection = Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    // A server holds the write lock for a commit at most; wait for it rather than fail.
    connection.busy_timeout(std::time::Duration::from_secs(30))?;
    connection.execute("VACUUM INTO ?1", [destination])?;
    Ok(())
}
