//! Erasure records as both backends store them.

use hookrelay_core::retention::{Erasure, ErasureDraft};
use hookrelay_core::{ErasureId, SpaceId, Timestamp};

use super::decode::id;
use super::Columns;
use crate::StoreError;

/// The columns of `erasures` that [`decode_erasure`] reads.
pub(crate) const ERASURE_COLUMNS: &str =
    "seq, id, space_id, object_id, from_time, to_time, events_erased, deliveries_cancelled, create_time";

/// An `erasures` row.
pub(crate) fn decode_erasure(row: &impl Columns) -> Result<Erasure, StoreError> {
    let count = |column: &str| row.int(column).map(|n| u64::try_from(n).unwrap_or(0));
    Ok(Erasure {
        id: id(row, "id", ErasureId::parse)?,
        space_id: id(row, "space_id", SpaceId::parse)?,
        draft: ErasureDraft {
            object_id: row.text("object_id")?,
            from: row.opt_int("from_time")?.map(Timestamp::from_micros),
            to: row.opt_int("to_time")?.map(Timestamp::from_micros),
        },
        events_erased: count("events_erased")?,
        deliveries_cancelled: count("deliveries_cancelled")?,
        create_time: Timestamp::from_micros(row.int("create_time")?),
    })
}
