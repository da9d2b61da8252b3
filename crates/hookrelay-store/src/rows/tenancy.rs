//! Tokens and spaces from the rows of either backend.

use hookrelay_core::access::{AccessToken, Grant, Scopes};
use hookrelay_core::quota::QuotaOverrides;
use hookrelay_core::retention::SpaceRetention;
use hookrelay_core::{SpaceId, Timestamp, TokenId};

use super::decode::id;
use super::{corrupt, Columns};
use crate::{SpaceSummary, StoreError};

/// The columns of `access_tokens` that [`decode_access_token`] reads.
pub(crate) const TOKEN_COLUMNS: &str =
    "seq, id, space_id, name, scopes, prefix, create_time, last_used_time, expire_time";

/// The columns of an `access_tokens t` joined with its `spaces s` that [`decode_grant`]
/// reads.
pub(crate) const GRANT_COLUMNS: &str = "t.id, t.space_id, t.token_digest, t.scopes, t.expire_time, \
     t.last_used_time, s.disabled, s.max_webhooks, s.max_publish_rate, s.max_fan_out";

/// The columns of `spaces s` that [`decode_space`] reads, with its webhooks and tokens
/// counted.
pub(crate) const SPACE_COLUMNS: &str = "s.id, s.create_time, s.disabled, s.max_webhooks, s.max_publish_rate, \
     s.max_fan_out, s.retention_micros, s.payload_retention_micros, (SELECT COUNT(*) FROM webhooks w WHERE w.space_id = s.id) AS webhooks, \
     (SELECT COUNT(*) FROM access_tokens t WHERE t.space_id = s.id) AS tokens";

fn scopes(row: &impl Columns) -> Result<Scopes, StoreError> {
    let text = row.text("scopes")?;
    Scopes::from_json(&text).ok_or_else(|| corrupt("scopes", &text))
}

fn opt_time(row: &impl Columns, column: &str) -> Result<Option<Timestamp>, StoreError> {
    Ok(row.opt_int(column)?.map(Timestamp::from_micros))
}

/// A nullable duration column in microseconds; a negative one reads as zero.
fn opt_duration(row: &impl Columns, column: &str) -> Result<Option<std::time::Duration>, StoreError> {
    Ok(row
        .opt_int(column)?
        .map(|micros| std::time::Duration::from_micros(u64::try_from(micros).unwrap_or(0))))
}

/// A nullable quota column; a value beyond `u32` reads as the largest.
fn quota(row: &impl Columns, column: &str) -> Result<Option<u32>, StoreError> {
    Ok(row
        .opt_int(column)?
        .map(|n| u32::try_from(n.max(0)).unwrap_or(u32::MAX)))
}

fn quotas(row: &impl Columns) -> Result<QuotaOverrides, StoreError> {
    Ok(QuotaOverrides {
        max_webhooks: quota(row, "max_webhooks")?,
        max_publish_rate: quota(row, "max_publish_rate")?,
        max_fan_out: quota(row, "max_fan_out")?,
    })
}

/// A token's grant and its stored digest, from [`GRANT_COLUMNS`].
pub(crate) fn decode_grant(row: &impl Columns) -> Result<(Grant, Vec<u8>), StoreError> {
    let grant = Grant {
        token_id: id(row, "id", TokenId::parse)?,
        space_id: id(row, "space_id", SpaceId::parse)?,
        scopes: scopes(row)?,
        expire_time: opt_time(row, "expire_time")?,
        last_used_time: opt_time(row, "last_used_time")?,
        space_disabled: row.flag("disabled")?,
        quotas: quotas(row)?,
    };
    Ok((grant, row.blob("token_digest")?))
}

/// A token's record, from [`TOKEN_COLUMNS`].
pub(crate) fn decode_access_token(row: &impl Columns) -> Result<AccessToken, StoreError> {
    Ok(AccessToken {
        id: id(row, "id", TokenId::parse)?,
        space_id: id(row, "space_id", SpaceId::parse)?,
        name: row.text("name")?,
        scopes: scopes(row)?,
        prefix: row.text("prefix")?,
        create_time: Timestamp::from_micros(row.int("create_time")?),
        last_used_time: opt_time(row, "last_used_time")?,
        expire_time: opt_time(row, "expire_time")?,
    })
}

/// A space with its counts, from [`SPACE_COLUMNS`].
pub(crate) fn decode_space(row: &impl Columns) -> Result<SpaceSummary, StoreError> {
    let count = |column: &str| row.int(column).map(|n| u64::try_from(n).unwrap_or(0));
    Ok(SpaceSummary {
        id: id(row, "id", SpaceId::parse)?,
        create_time: Timestamp::from_micros(row.int("create_time")?),
        disabled: row.flag("disabled")?,
        quotas: quotas(row)?,
        retention: SpaceRetention {
            retention: opt_duration(row, "retention_micros")?,
            payload_retention: opt_duration(row, "payload_retention_micros")?,
        },
        webhooks: count("webhooks")?,
        tokens: count("tokens")?,
    })
}
