//! Every metric hookrelay exports, declared here once, and the one place that records
//! them: the rest of the server calls these functions, never the `metrics` macros.
//!
//! Labels are bounded: outcomes, operations and kinds from fixed lists, never an event,
//! webhook or space id. Counters count what this process did (sum them across nodes);
//! the backlog gauges count the whole database, read again at every scrape.

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hookrelay_core::delivery::NextStep;
use hookrelay_core::retention::Removed;
use hookrelay_core::Timestamp;
use hookrelay_store::{AlertOutcome, Store};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Events published (test events excluded).
pub const EVENTS_PUBLISHED: &str = "hookrelay_events_published_total";
/// Deliveries that reached an outcome, by `outcome`.
pub const DELIVERIES: &str = "hookrelay_deliveries_total";
/// How long attempts took, by `result` (`success`, `failure`).
pub const ATTEMPT_DURATION: &str = "hookrelay_attempt_duration_seconds";
/// Attempts this node is making now.
pub const ATTEMPTS_IN_FLIGHT: &str = "hookrelay_attempts_in_flight";
/// Pending deliveries whose time has come, in the whole database.
pub const DELIVERIES_DUE: &str = "hookrelay_deliveries_due";
/// How long the oldest due delivery has waited past its time.
pub const OLDEST_DUE_AGE: &str = "hookrelay_oldest_due_age_seconds";
/// Alert e-mails queued by recorded attempts.
pub const ALERTS_QUEUED: &str = "hookrelay_alerts_queued_total";
/// Alerts the alerter finished, by `result` (`sent`, `retry`, `skipped`).
pub const ALERTS_FINISHED: &str = "hookrelay_alerts_finished_total";
/// Webhooks disabled by their failures (410, failing too long).
pub const WEBHOOKS_AUTO_DISABLED: &str = "hookrelay_webhooks_auto_disabled_total";
/// Webhooks disabled now, in the whole database.
pub const WEBHOOKS_DISABLED: &str = "hookrelay_webhooks_disabled";
/// How long database operations took, by `operation`.
pub const DB_OPERATION_DURATION: &str = "hookrelay_db_operation_duration_seconds";
/// Rows the retention cleaner deleted, by `kind`.
pub const RETENTION_DELETED: &str = "hookrelay_retention_deleted_total";
/// Payloads the retention cleaner dropped, by `kind`.
pub const RETENTION_PAYLOADS_REMOVED: &str = "hookrelay_retention_payloads_removed_total";
/// SQLite pages the retention cleaner gave back to the file system.
pub const RETENTION_PAGES_RECLAIMED: &str = "hookrelay_retention_pages_reclaimed_total";
/// When this node's retention cleaner last finished a run.
pub const RETENTION_LAST_RUN: &str = "hookrelay_retention_last_run_timestamp_seconds";
/// Whether the last scrape could read the backlog (1) or not (0).
pub const BACKLOG_READ_OK: &str = "hookrelay_backlog_read_ok";

/// Every metric name (a unit test checks that each is exported).
pub const ALL: &[&str] = &[
    EVENTS_PUBLISHED,
    DELIVERIES,
    ATTEMPT_DURATION,
    ATTEMPTS_IN_FLIGHT,
    DELIVERIES_DUE,
    OLDEST_DUE_AGE,
    ALERTS_QUEUED,
    ALERTS_FINISHED,
    WEBHOOKS_AUTO_DISABLED,
    WEBHOOKS_DISABLED,
    DB_OPERATION_DURATION,
    RETENTION_DELETED,
    RETENTION_PAYLOADS_REMOVED,
    RETENTION_PAGES_RECLAIMED,
    RETENTION_LAST_RUN,
    BACKLOG_READ_OK,
];

const OUTCOMES: [&str; 4] = ["succeeded", "failed", "retried", "cancelled"];
const RETENTION_DELETED_KINDS: [&str; 5] = ["events", "deliveries", "attempts", "alerts", "idempotency_keys"];
const RETENTION_PAYLOAD_KINDS: [&str; 2] = ["event_data", "response_bodies"];
const ALERT_RESULTS: [&str; 4] = ["sent", "retry", "skipped", "suppressed"];

/// Attempt durations from a fast receiver to the attempt timeout's range.
const ATTEMPT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0,
];
/// Database operations, from a cached read to a stuck lock.
const DB_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// A store call timed by [`time_db`]: a fixed list, so the label stays bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbOperation {
    /// Writing an event and its deliveries.
    Publish,
    /// Claiming due deliveries.
    Claim,
    /// Recording a batch of attempts.
    Record,
    /// Claiming due alerts.
    ClaimAlerts,
    /// Recording how an alert's sending ended.
    FinishAlert,
    /// Counting the backlog for these metrics.
    Backlog,
    /// Writing this node's heartbeat (one given up at the fence's limit counts its wait).
    Heartbeat,
}

impl DbOperation {
    const ALL: [Self; 7] = [
        Self::Publish,
        Self::Claim,
        Self::Record,
        Self::ClaimAlerts,
        Self::FinishAlert,
        Self::Backlog,
        Self::Heartbeat,
    ];

    /// The `operation` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::Claim => "claim",
            Self::Record => "record",
            Self::ClaimAlerts => "claim_alerts",
            Self::FinishAlert => "finish_alert",
            Self::Backlog => "backlog",
            Self::Heartbeat => "heartbeat",
        }
    }
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder (once; later calls return the same handle) and
/// creates every series at zero, so dashboards and alert rules find them from the start.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(ATTEMPT_DURATION.to_owned()), ATTEMPT_BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(DB_OPERATION_DURATION.to_owned()), DB_BUCKETS))
            .expect("the bucket lists are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will stay empty");
        }
        describe();
        create_series();
        handle
    })
}

fn describe() {
    describe_counter!(EVENTS_PUBLISHED, "Events published (test events excluded).");
    describe_counter!(
        DELIVERIES,
        "Deliveries by outcome: succeeded, failed (out of attempts), retried (an attempt failed, another is due), cancelled."
    );
    describe_histogram!(
        ATTEMPT_DURATION,
        Unit::Seconds,
        "Delivery attempts' duration, by result."
    );
    describe_gauge!(ATTEMPTS_IN_FLIGHT, "Attempts this node is making now.");
    describe_gauge!(
        DELIVERIES_DUE,
        "Pending deliveries whose time has come (whole database)."
    );
    describe_gauge!(
        OLDEST_DUE_AGE,
        Unit::Seconds,
        "How long the oldest due delivery has waited (whole database)."
    );
    describe_counter!(ALERTS_QUEUED, "Alert e-mails queued by recorded attempts.");
    describe_counter!(
        ALERTS_FINISHED,
        "Alerts the alerter finished, by result: sent, retry, skipped (e-mail off)."
    );
    describe_counter!(
        WEBHOOKS_AUTO_DISABLED,
        "Webhooks disabled by their failures (410 or failing too long)."
    );
    describe_gauge!(WEBHOOKS_DISABLED, "Webhooks disabled now (whole database).");
    describe_histogram!(
        DB_OPERATION_DURATION,
        Unit::Seconds,
        "Database operations' duration, by operation."
    );
    describe_counter!(RETENTION_DELETED, "Rows the retention cleaner deleted, by kind.");
    describe_counter!(
        RETENTION_PAYLOADS_REMOVED,
        "Payloads the retention cleaner dropped: events' data, attempts' response bodies."
    );
    describe_counter!(
        RETENTION_PAGES_RECLAIMED,
        "SQLite pages the retention cleaner gave back to the file system."
    );
    describe_gauge!(
        RETENTION_LAST_RUN,
        Unit::Seconds,
        "When this node's retention cleaner last finished a run (0: not yet)."
    );
    describe_gauge!(
        BACKLOG_READ_OK,
        "1 when the last scrape read the backlog gauges, 0 when the read failed."
    );
}

fn create_series() {
    counter!(EVENTS_PUBLISHED).absolute(0);
    for outcome in OUTCOMES {
        counter!(DELIVERIES, "outcome" => outcome).absolute(0);
    }
    for result in ALERT_RESULTS {
        counter!(ALERTS_FINISHED, "result" => result).absolute(0);
    }
    counter!(ALERTS_QUEUED).absolute(0);
    counter!(WEBHOOKS_AUTO_DISABLED).absolute(0);
    for kind in RETENTION_DELETED_KINDS {
        counter!(RETENTION_DELETED, "kind" => kind).absolute(0);
    }
    for kind in RETENTION_PAYLOAD_KINDS {
        counter!(RETENTION_PAYLOADS_REMOVED, "kind" => kind).absolute(0);
    }
    counter!(RETENTION_PAGES_RECLAIMED).absolute(0);
    for name in [
        ATTEMPTS_IN_FLIGHT,
        DELIVERIES_DUE,
        OLDEST_DUE_AGE,
        WEBHOOKS_DISABLED,
        BACKLOG_READ_OK,
        RETENTION_LAST_RUN,
    ] {
        gauge!(name).set(0.0);
    }
    for result in ["success", "failure"] {
        drop(histogram!(ATTEMPT_DURATION, "result" => result));
    }
    for operation in DbOperation::ALL {
        // Registered without a sample, so every operation's series is listed from the start.
        drop(histogram!(DB_OPERATION_DURATION, "operation" => operation.as_str()));
    }
}

/// An event was published.
pub fn event_published() {
    counter!(EVENTS_PUBLISHED).increment(1);
}

/// An attempt was recorded with this next step.
pub fn attempt_recorded(next: &NextStep) {
    let outcome = match next {
        NextStep::Succeeded => "succeeded",
        NextStep::RetryAt(_) => "retried",
        NextStep::Failed { .. } => "failed",
    };
    counter!(DELIVERIES, "outcome" => outcome).increment(1);
}

/// Recorded attempts queued `count` alerts.
pub fn alerts_queued(count: u32) {
    counter!(ALERTS_QUEUED).increment(u64::from(count));
}

/// The alerter finished an alert so.
pub fn alert_finished(outcome: &AlertOutcome) {
    let result = match outcome {
        AlertOutcome::Sent => "sent",
        AlertOutcome::Retry { .. } => "retry",
        AlertOutcome::Skipped => "skipped",
        AlertOutcome::Suppressed => "suppressed",
    };
    counter!(ALERTS_FINISHED, "result" => result).increment(1);
}

/// An attempt in flight, counted in [`ATTEMPTS_IN_FLIGHT`] until dropped (also when
/// the attempt is cut off).
pub struct AttemptInFlight {
    started: Instant,
}

impl AttemptInFlight {
    /// An attempt starts.
    pub fn start() -> Self {
        gauge!(ATTEMPTS_IN_FLIGHT).increment(1.0);
        Self {
            started: Instant::now(),
        }
    }

    /// It ended; its duration goes to the histogram.
    pub fn finish(self, succeeded: bool) {
        let result = if succeeded { "success" } else { "failure" };
        histogram!(ATTEMPT_DURATION, "result" => result).record(self.started.elapsed());
    }
}

impl Drop for AttemptInFlight {
    fn drop(&mut self) {
        gauge!(ATTEMPTS_IN_FLIGHT).decrement(1.0);
    }
}

/// Times a store call: the one helper every timed operation goes through.
pub async fn time_db<T>(operation: DbOperation, call: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let outcome = call.await;
    histogram!(DB_OPERATION_DURATION, "operation" => operation.as_str()).record(started.elapsed());
    outcome
}

/// The retention cleaner finished a run at `at`: it removed `removed`, gave `pages`
/// back to the file system and forgot `idempotency_keys` expired keys.
pub fn cleaner_ran(removed: &Removed, pages: u64, idempotency_keys: u64, at: Timestamp) {
    let deleted = [
        removed.events,
        removed.deliveries,
        removed.attempts,
        removed.alerts,
        idempotency_keys,
    ];
    for (kind, count) in RETENTION_DELETED_KINDS.into_iter().zip(deleted) {
        counter!(RETENTION_DELETED, "kind" => kind).increment(count);
    }
    let dropped = [removed.payloads, removed.response_bodies];
    for (kind, count) in RETENTION_PAYLOAD_KINDS.into_iter().zip(dropped) {
        counter!(RETENTION_PAYLOADS_REMOVED, "kind" => kind).increment(count);
    }
    counter!(RETENTION_PAGES_RECLAIMED).increment(pages);
    gauge!(RETENTION_LAST_RUN).set(at.as_micros() as f64 / 1e6);
}

/// The scrape's answer: the backlog gauges read again, the store's counts copied, every
/// metric in Prometheus' text format.
pub async fn render(store: &dyn Store) -> String {
    let handle = install();
    refresh_backlog(store).await;
    let activity = hookrelay_store::activity::snapshot();
    counter!(DELIVERIES, "outcome" => "cancelled").absolute(activity.deliveries_cancelled);
    counter!(WEBHOOKS_AUTO_DISABLED).absolute(activity.webhooks_auto_disabled);
    handle.run_upkeep();
    handle.render()
}

async fn refresh_backlog(store: &dyn Store) {
    let now = Timestamp::now();
    match time_db(DbOperation::Backlog, store.backlog(now)).await {
        Ok(backlog) => {
            gauge!(DELIVERIES_DUE).set(backlog.due as f64);
            gauge!(OLDEST_DUE_AGE).set(oldest_due_age(backlog.oldest_due, now).as_secs_f64());
            gauge!(WEBHOOKS_DISABLED).set(backlog.disabled_webhooks as f64);
            gauge!(BACKLOG_READ_OK).set(1.0);
        }
        Err(error) => {
            tracing::warn!(error = %crate::error_chain(&error), "reading the backlog for /metrics failed");
            gauge!(BACKLOG_READ_OK).set(0.0);
        }
    }
}

/// How long the oldest due delivery has waited at `now`; zero with none due.
pub fn oldest_due_age(oldest_due: Option<Timestamp>, now: Timestamp) -> Duration {
    let waited = oldest_due.map_or(0, |due| now.as_micros().saturating_sub(due.as_micros()));
    Duration::from_micros(u64::try_from(waited).unwrap_or(0))
}

/// Runs the recorder's upkeep (histogram buckets drained) every few seconds, so memory
/// stays bounded when nobody scrapes.
pub async fn upkeep() {
    let handle = install();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_due_age_is_zero_without_a_due_delivery_and_never_negative() {
        let now = Timestamp::from_micros(10_000_000);
        assert_eq!(oldest_due_age(None, now), Duration::ZERO);
        assert_eq!(
            oldest_due_age(Some(Timestamp::from_micros(11_000_000)), now),
            Duration::ZERO
        );
        assert_eq!(
            oldest_due_age(Some(Timestamp::from_micros(7_500_000)), now),
            Duration::from_millis(2500)
        );
    }

    #[test]
    fn every_metric_is_exported_from_the_start() {
        let text = install().render();
        for name in ALL {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} missing from:\n{text}"
            );
        }
    }

    #[test]
    fn operation_labels_are_distinct() {
        let mut labels: Vec<_> = DbOperation::ALL.iter().map(|o| o.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), DbOperation::ALL.len());
    }
}
