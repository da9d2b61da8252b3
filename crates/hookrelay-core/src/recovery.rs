//! Bulk recovery (`POST /v1/webhooks/{id}/recoveries`): every delivery of one webhook
//! that ended failed (or cancelled) within a time window is retried, as a manual retry
//! would ([`crate::delivery::requeue`]). The store walks the webhook's deliveries in
//! batches along their position (`seq`), and each batch decides here, row by row, what
//! becomes of them.

use serde_json::Value;

use crate::delivery::{requeue, DeliveryStatus, Requeue};
use crate::id::{RecoveryId, SpaceId, WebhookId};
use crate::timestamp::Timestamp;
use crate::validation::ValidationErrors;
use crate::webhook::fields::{nullable, reject_unknown_fields, required, type_error};

/// Fields a recovery request may carry.
pub const RECOVERY_FIELDS: &[&str] = &["since", "until", "statuses"];

/// The statuses a recovery may retry, and its default: the deliveries that ended
/// without reaching the receiver. `failed` ran out of attempts (or got a 410);
/// `cancelled` was dropped because its webhook was disabled, the usual fate of an
/// outage's backlog. `pending` ones are queued already and `succeeded` ones arrived.
pub const RECOVERABLE: [DeliveryStatus; 2] = [DeliveryStatus::Failed, DeliveryStatus::Cancelled];

/// Deliveries one batch reads, unless the server is set otherwise.
pub const BATCH_SIZE: u32 = 500;

/// A valid recovery request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryDraft {
    /// Deliveries that ended at or after this time…
    pub since: Timestamp,
    /// …and before this one (the request's time when not given).
    pub until: Timestamp,
    /// Of these statuses (a subset of [`RECOVERABLE`], without repeats, in its order).
    pub statuses: Vec<DeliveryStatus>,
}

impl RecoveryDraft {
    /// Parses a request body received at `now`, reporting every broken rule.
    pub fn parse(body: &Value, now: Timestamp) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let Some(object) = body.as_object() else {
            return Err(ValidationErrors::single(
                "body",
                "type",
                "the request body must be a JSON object",
            ));
        };
        reject_unknown_fields(object, RECOVERY_FIELDS, "", &mut errors);
        let since = required(object, "since", &mut errors).and_then(|v| parse_time("since", v, &mut errors));
        let until = nullable(object, "until").and_then(|v| parse_time("until", v, &mut errors));
        let statuses = match nullable(object, "statuses") {
            None => Some(RECOVERABLE.to_vec()),
            Some(value) => parse_statuses(value, &mut errors),
        };
        if let Some(until) = until {
            if until > now {
                errors.push("until", "not_future", "until must not be in the future");
            }
        }
        if let Some(since) = since {
            match until {
                Some(until) if since >= until => errors.push("until", "after_since", "until must be later than since"),
                None if since >= now => errors.push("since", "not_future", "since must be in the past"),
                _ => {}
            }
        }
        match (since, statuses) {
            (Some(since), Some(statuses)) if errors.is_empty() => Ok(Self {
                since,
                until: until.unwrap_or(now),
                statuses,
            }),
            _ => Err(errors),
        }
    }

    /// What a recovery does with one of its webhook's deliveries.
    pub fn sort(&self, delivery: &Candidate) -> Verdict {
        let in_window = self.since <= delivery.update_time && delivery.update_time < self.until;
        if !in_window || !self.statuses.contains(&delivery.status) {
            return Verdict::Pass;
        }
        match requeue(delivery.data_removed, delivery.now) {
            Some(requeued) => Verdict::Requeue(requeued),
            None => Verdict::Skip,
        }
    }

    /// The statuses as the API and the database name them, comma-separated.
    pub fn statuses_text(&self) -> String {
        self.statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
    }

    /// From [`Self::statuses_text`]; `None` if a name is unknown.
    pub fn parse_statuses_text(text: &str) -> Option<Vec<DeliveryStatus>> {
        text.split(',').map(DeliveryStatus::parse).collect()
    }
}

fn parse_time(field: &'static str, value: &Value, errors: &mut ValidationErrors) -> Option<Timestamp> {
    let Some(text) = value.as_str() else {
        type_error(field, "an RFC 3339 date-time string", errors);
        return None;
    };
    let parsed = Timestamp::parse_rfc3339(text);
    if parsed.is_none() {
        let message = format!("{field} must be an RFC 3339 date-time with an offset, e.g. 2030-01-01T00:00:00Z");
        errors.push(field, "format", message);
    }
    parsed
}

fn parse_statuses(value: &Value, errors: &mut ValidationErrors) -> Option<Vec<DeliveryStatus>> {
    let Some(items) = value.as_array() else {
        type_error("statuses", "an array of strings", errors);
        return None;
    };
    if items.is_empty() {
        errors.push("statuses", "min_items", "statuses must name at least one status");
        return None;
    }
    let mut chosen = Vec::new();
    for (n, item) in items.iter().enumerate() {
        let status = item
            .as_str()
            .and_then(DeliveryStatus::parse)
            .filter(|s| RECOVERABLE.contains(s));
        match status {
            Some(status) => chosen.push(status),
            None => errors.push(
                format!("statuses[{n}]"),
                "enum",
                "each status must be one of: failed, cancelled",
            ),
        }
    }
    let statuses: Vec<DeliveryStatus> = RECOVERABLE.into_iter().filter(|s| chosen.contains(s)).collect();
    (chosen.len() == items.len()).then_some(statuses)
}

/// Where a batch that read `read` deliveries (at most `limit`, the last at position
/// `last_read`) leaves a walk that ends at `end`: the next batch reads after the last
/// one read, and a batch that read fewer than `limit` found nothing more.
pub fn advance(read: usize, limit: u32, last_read: Option<i64>, end: i64) -> (i64, RecoveryStatus) {
    match last_read {
        Some(last) if read >= limit as usize => (last, RecoveryStatus::Running),
        _ => (end, RecoveryStatus::Completed),
    }
}

/// What a batch reads of a delivery, and when it reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Its status.
    pub status: DeliveryStatus,
    /// When it last changed: for a finished delivery, when it ended.
    pub update_time: Timestamp,
    /// Whether its event's data was removed.
    pub data_removed: bool,
    /// The batch's time.
    pub now: Timestamp,
}

/// What becomes of a delivery a recovery reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not one it recovers (another status, or outside the window): untouched, uncounted.
    Pass,
    /// Matched, but its event's data is gone: counted as skipped.
    Skip,
    /// Matched and retried.
    Requeue(Requeue),
}

/// Where a recovery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryStatus {
    /// Batches remain.
    Running,
    /// Every delivery in the window was read.
    Completed,
    /// Its webhook was deleted or disabled before it finished; what it did stays done.
    Cancelled,
}

impl RecoveryStatus {
    /// The wire and database name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }

    /// From the wire and database name.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Running, Self::Completed, Self::Cancelled]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// What a recovery has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoveryCounts {
    /// Deliveries in the window with one of its statuses.
    pub matched: u64,
    /// Of those, retried.
    pub requeued: u64,
    /// Of those, left as they were: their event's data was removed.
    pub skipped: u64,
}

impl RecoveryCounts {
    /// Counts one verdict.
    pub fn count(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Pass => {}
            Verdict::Skip => {
                self.matched += 1;
                self.skipped += 1;
            }
            Verdict::Requeue(_) => {
                self.matched += 1;
                self.requeued += 1;
            }
        }
    }
}

/// A recovery and its progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// Its id.
    pub id: RecoveryId,
    /// The space it recovers in.
    pub space_id: SpaceId,
    /// The webhook whose deliveries it retries.
    pub webhook_id: WebhookId,
    /// What was asked.
    pub draft: RecoveryDraft,
    /// Where it stands.
    pub status: RecoveryStatus,
    /// What it did so far.
    pub counts: RecoveryCounts,
    /// When it was asked for.
    pub create_time: Timestamp,
    /// When it completed or was cancelled.
    pub finish_time: Option<Timestamp>,
}

#[cfg(test)]
mod tests;
