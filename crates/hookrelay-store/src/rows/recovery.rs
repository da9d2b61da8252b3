//! Recovery records as both backends store them.

use hookrelay_core::recovery::{Recovery, RecoveryCounts, RecoveryDraft, RecoveryStatus};
use hookrelay_core::{RecoveryId, SpaceId, Timestamp, WebhookId};

use super::decode::id;
use super::{corrupt, Columns};
use crate::StoreError;

/// The columns of `recoveries` that [`decode_recovery`] reads.
pub(crate) const RECOVERY_COLUMNS: &str = "seq, id, space_id, webhook_id, since_time, until_time, statuses, status, \
     matched, requeued, skipped, create_time, finish_time";

/// A `recoveries` row.
pub(crate) fn decode_recovery(row: &impl Columns) -> Result<Recovery, StoreError> {
    let count = |column: &str| row.int(column).map(|n| u64::try_from(n).unwrap_or(0));
    let statuses = row.text("statuses")?;
    let status = row.text("status")?;
    Ok(Recovery {
        id: id(row, "id", RecoveryId::parse)?,
        space_id: id(row, "space_id", SpaceId::parse)?,
        webhook_id: id(row, "webhook_id", WebhookId::parse)?,
        draft: RecoveryDraft {
            since: Timestamp::from_micros(row.int("since_time")?),
            until: Timestamp::from_micros(row.int("until_time")?),
            statuses: RecoveryDraft::parse_statuses_text(&statuses).ok_or_else(|| corrupt("statuses", &statuses))?,
        },
        status: RecoveryStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        counts: RecoveryCounts {
            matched: count("matched")?,
            requeued: count("requeued")?,
            skipped: count("skipped")?,
        },
        create_time: Timestamp::from_micros(row.int("create_time")?),
        finish_time: row.opt_int("finish_time")?.map(Timestamp::from_micros),
    })
}

/// A count as the database stores it.
pub(crate) fn stored_count(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}
