//! Recording attempts, as pure rules: which results of a batch count, what state each
//! moves its delivery to, and in what order their webhooks' health must be applied.
//! Both storage backends record a batch by this plan, so they cannot drift apart.
//!
//! A result counts only while its delivery is still under the lease it was attempted
//! under. One whose lease was taken over (its node was judged dead, or the lease ran out
//! and another claim took it) is kept as history and changes nothing else: the
//! delivery's state and its webhook's health follow the lease's new holder.

use std::collections::HashSet;

use crate::alert::{on_attempt, AlertKind, AlertPolicy, AttemptSummary, WebhookHealth};
use crate::delivery::{DeliveryAttempt, DeliveryStatus, NextStep, RetrySchedule};
use crate::id::{DeliveryId, WebhookId};
use crate::timestamp::Timestamp;
use crate::webhook_settings::WebhookSettings;

/// The schedule a webhook's failed attempts are retried by: its own when it has one,
/// else the server's (`retry_schedule`). Retry-After and jitter apply to either alike.
pub fn retry_schedule<'a>(webhook: &'a WebhookSettings, server: &'a RetrySchedule) -> &'a RetrySchedule {
    webhook.retry_schedule.as_ref().unwrap_or(server)
}

/// The outcome of one attempt, to be recorded.
#[derive(Clone, Debug)]
pub struct AttemptResult {
    /// The delivery attempted.
    pub delivery_id: DeliveryId,
    /// Its webhook.
    pub webhook_id: WebhookId,
    /// The attempt log entry.
    pub attempt: DeliveryAttempt,
    /// What happens next.
    pub next: NextStep,
    /// When the attempt finished.
    pub finish_time: Timestamp,
    /// The delivery's update time when it was claimed: a record finding it changed since
    /// (a manual retry while the attempt was in flight) keeps the delivery pending.
    pub claimed_update_time: Timestamp,
    /// The lease the attempt was made under.
    pub lease: Lease,
}

/// A claim's hold on a delivery: who took it, and until when.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The claiming node's id.
    pub owner: String,
    /// When the lease runs out.
    pub until: Timestamp,
}

impl AttemptResult {
    /// The status and next due time the attempt moves its delivery to (before the
    /// record's own checks: a delivery cancelled or retried meanwhile keeps its state).
    pub fn next_state(&self) -> (DeliveryStatus, Option<Timestamp>) {
        match self.next {
            NextStep::Succeeded => (DeliveryStatus::Succeeded, None),
            NextStep::RetryAt(time) => (DeliveryStatus::Pending, Some(time)),
            NextStep::Failed { .. } => (DeliveryStatus::Failed, None),
        }
    }

    /// Whether the attempt succeeded.
    pub fn succeeded(&self) -> bool {
        matches!(self.next, NextStep::Succeeded)
    }

    /// The key that makes an attempt unique: its delivery and number.
    pub fn key(&self) -> (&str, u32) {
        (self.delivery_id.as_str(), self.attempt.attempt)
    }

    /// Whether the delivery is still under the lease this attempt was made under, given
    /// its lease now (`None` when it has none: the lease was released, or the delivery
    /// recorded, since). Only then does the result count.
    pub fn holds_lease(&self, now: Option<(&str, Timestamp)>) -> bool {
        now.is_some_and(|(owner, until)| owner == self.lease.owner && until == self.lease.until)
    }

    /// Applies this failed attempt to its webhook's health.
    pub fn apply_failure(&self, health: &mut WebhookHealth, policy: &AlertPolicy) -> FailureEffects {
        debug_assert!(!self.succeeded(), "a success clears health instead");
        let summary = AttemptSummary {
            start_time: self.attempt.start_time,
            succeeded: false,
            delivery_exhausted: matches!(self.next, NextStep::Failed { .. }),
            status_code: self.attempt.status_code,
            error_kind: self.attempt.error_kind,
            response_body: self.attempt.response_body.as_deref(),
        };
        let change = on_attempt(health, &summary, self.finish_time, policy);
        let gone = matches!(self.next, NextStep::Failed { disable_webhook: true });
        FailureEffects {
            disable: gone || change.disable,
            // Only the attempt that actually disables the webhook says so (see `alerts`).
            alerts: change
                .alerts
                .into_iter()
                .filter(|k| *k != AlertKind::Disabled)
                .collect(),
        }
    }
}

/// What a failed attempt does to its webhook beyond its health record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureEffects {
    /// Whether to disable the webhook (failing for too long, or 410 Gone).
    pub disable: bool,
    alerts: Vec<AlertKind>,
}

impl FailureEffects {
    /// The alerts to queue, given whether disabling took effect: only the attempt that
    /// disabled the webhook tells its owners (another attempt in flight at the time, or a
    /// webhook someone disabled already, must not send a second "disabled" mail), and
    /// then with one e-mail that says it all.
    pub fn alerts(&self, disabled: bool) -> Vec<AlertKind> {
        if disabled {
            vec![AlertKind::Disabled]
        } else {
            self.alerts.clone()
        }
    }
}

/// The alert a success queues, given what clearing its webhook's health record found:
/// `Some(alerted)` when there was a record. Only owners told it was failing hear it
/// recovered.
pub fn on_success(cleared: Option<bool>) -> Option<AlertKind> {
    (cleared == Some(true)).then_some(AlertKind::Recovered)
}

/// How a batch of results is recorded.
#[derive(Debug, Default)]
pub struct RecordPlan<'a> {
    /// Results whose webhooks had only successes in the batch: their deliveries move on
    /// in any order, and nothing they do disables a webhook.
    pub together: Vec<&'a AttemptResult>,
    /// Results of webhooks with a failure in the batch, in the batch's order: each
    /// delivery moves on and then its result is applied to its webhook's health (a
    /// failure may disable the webhook, which cancels its pending deliveries, so the
    /// order matters).
    pub in_order: Vec<&'a AttemptResult>,
    /// The webhooks of `together` and the finish time of their first success: each
    /// clears its health record once (the later successes find nothing to clear).
    pub recoveries: Vec<(&'a WebhookId, Timestamp)>,
    /// Results whose lease was taken over: their attempts are stored, as what happened,
    /// and nothing else changes.
    pub history: Vec<&'a AttemptResult>,
}

impl<'a> RecordPlan<'a> {
    /// Every result whose attempt is stored: those that count, then the history.
    pub fn attempts(&self) -> impl Iterator<Item = &'a AttemptResult> + '_ {
        self.together.iter().chain(&self.in_order).chain(&self.history).copied()
    }
}

/// Plans the record of `results`; `holds` tells whether a result's delivery is still
/// under its lease ([`AttemptResult::holds_lease`] on the delivery's lease now). Those
/// that do count, once each (a result repeated within the batch is dropped); the others
/// are [`RecordPlan::history`].
pub fn plan<'a>(results: &'a [AttemptResult], holds: impl Fn(&AttemptResult) -> bool) -> RecordPlan<'a> {
    let mut counted = HashSet::new();
    let mut history = Vec::new();
    let mut recorded: Vec<&AttemptResult> = Vec::new();
    for result in results {
        if !holds(result) {
            history.push(result);
        } else if counted.insert(result.key()) {
            recorded.push(result);
        }
    }
    let with_failures: HashSet<&WebhookId> = recorded
        .iter()
        .filter(|r| !r.succeeded())
        .map(|r| &r.webhook_id)
        .collect();
    let mut plan = RecordPlan {
        history,
        ..RecordPlan::default()
    };
    let mut recovering = HashSet::new();
    for result in recorded {
        if with_failures.contains(&result.webhook_id) {
            plan.in_order.push(result);
        } else {
            if recovering.insert(&result.webhook_id) {
                plan.recoveries.push((&result.webhook_id, result.finish_time));
            }
            plan.together.push(result);
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::ErrorKind;

    fn result(delivery: &str, attempt: u32, webhook: &str, next: NextStep, finish: i64) -> AttemptResult {
        AttemptResult {
            delivery_id: DeliveryId::parse(delivery).unwrap(),
            webhook_id: WebhookId::parse(webhook).unwrap(),
            attempt: DeliveryAttempt {
                attempt,
                start_time: Timestamp::from_micros(finish - 10),
                duration_ms: 0,
                status_code: (!matches!(next, NextStep::Succeeded)).then_some(500),
                error_kind: (!matches!(next, NextStep::Succeeded)).then_some(ErrorKind::HttpStatus),
                response_body: None,
            },
            next,
            finish_time: Timestamp::from_micros(finish),
            claimed_update_time: Timestamp::from_micros(0),
            lease: Lease {
                owner: "node-a".into(),
                until: Timestamp::from_micros(1_000),
            },
        }
    }

    fn all_hold(_: &AttemptResult) -> bool {
        true
    }

    #[test]
    fn webhooks_with_failures_go_in_order_and_the_others_recover_once() {
        let retry = NextStep::RetryAt(Timestamp::from_micros(99));
        let results = [
            result("dlv-1", 1, "whk-ok", NextStep::Succeeded, 10),
            result("dlv-2", 1, "whk-bad", retry, 11),
            result("dlv-3", 1, "whk-ok", NextStep::Succeeded, 12),
            result("dlv-4", 1, "whk-bad", NextStep::Succeeded, 13),
        ];
        let plan = plan(&results, all_hold);
        let ids = |list: &[&AttemptResult]| {
            list.iter()
                .map(|r| r.delivery_id.as_str().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&plan.together), ["dlv-1", "dlv-3"]);
        assert_eq!(ids(&plan.in_order), ["dlv-2", "dlv-4"]);
        assert_eq!(plan.recoveries.len(), 1);
        assert_eq!(plan.recoveries[0].0.as_str(), "whk-ok");
        assert_eq!(
            plan.recoveries[0].1,
            Timestamp::from_micros(10),
            "the first success's time"
        );
    }

    #[test]
    fn an_attempt_counts_once_and_only_under_its_lease() {
        let mut taken_over = result("dlv-2", 3, "whk-a", NextStep::Failed { disable_webhook: true }, 12);
        taken_over.lease.owner = "node-b".into();
        let results = [
            result("dlv-1", 1, "whk-a", NextStep::Succeeded, 10),
            result("dlv-1", 1, "whk-a", NextStep::Succeeded, 11),
            taken_over,
        ];
        let plan = plan(&results, |r| r.lease.owner == "node-a");
        assert_eq!(plan.together.len(), 1);
        assert_eq!(plan.together[0].finish_time, Timestamp::from_micros(10));
        assert!(plan.in_order.is_empty(), "the taken-over failure touches no health");
        assert_eq!(plan.history.len(), 1);
        assert_eq!(plan.history[0].delivery_id.as_str(), "dlv-2");
        let stored: Vec<i64> = plan.attempts().map(|r| r.finish_time.as_micros()).collect();
        assert_eq!(stored, [10, 12], "the repeat is dropped, the taken-over attempt kept");
    }

    #[test]
    fn a_lease_is_held_only_by_its_owner_until_its_own_end() {
        let attempt = result("dlv-1", 1, "whk-a", NextStep::Succeeded, 10);
        let until = attempt.lease.until;
        assert!(attempt.holds_lease(Some(("node-a", until))));
        assert!(!attempt.holds_lease(Some(("node-b", until))), "taken over");
        assert!(
            !attempt.holds_lease(Some(("node-a", until.plus_micros(1)))),
            "the same node's later claim, after this lease ran out"
        );
        assert!(!attempt.holds_lease(None), "recorded or released since");
    }

    #[test]
    fn a_disabling_failure_says_so_only_when_it_disabled() {
        let gone = result("dlv-1", 1, "whk-a", NextStep::Failed { disable_webhook: true }, 10);
        let mut health = WebhookHealth::default();
        let effects = gone.apply_failure(&mut health, &AlertPolicy::default());
        assert!(effects.disable);
        assert_eq!(effects.alerts(true), [AlertKind::Disabled]);
        // Disabled by someone else already: what is left is a delivery given up.
        assert_eq!(effects.alerts(false), [AlertKind::Failing]);
        assert_eq!(health.consecutive_failures, 1);
        assert_eq!(health.failed_deliveries, 1);
    }

    #[test]
    fn failing_for_too_long_disables_and_a_failing_alert_gives_way_to_it() {
        let policy = AlertPolicy {
            failing_after_attempts: 1,
            quiet_period: std::time::Duration::from_secs(1),
            disable_after: std::time::Duration::from_secs(60),
        };
        let mut health = WebhookHealth::default();
        let first = result("dlv-1", 1, "whk-a", NextStep::RetryAt(Timestamp::from_micros(0)), 10);
        let effects = first.apply_failure(&mut health, &policy);
        assert!(!effects.disable);
        assert_eq!(effects.alerts(false), [AlertKind::Failing]);
        let late = result(
            "dlv-1",
            2,
            "whk-a",
            NextStep::RetryAt(Timestamp::from_micros(0)),
            61_000_000,
        );
        let effects = late.apply_failure(&mut health, &policy);
        assert!(effects.disable);
        assert_eq!(effects.alerts(true), [AlertKind::Disabled]);
        assert!(effects.alerts(false).is_empty());
    }

    #[test]
    fn only_a_cleared_alerted_record_recovers() {
        assert_eq!(on_success(Some(true)), Some(AlertKind::Recovered));
        assert_eq!(on_success(Some(false)), None);
        assert_eq!(on_success(None), None);
    }

    #[test]
    fn next_states() {
        let at = Timestamp::from_micros(5);
        let state = |next| result("dlv-1", 1, "whk-a", next, 1).next_state();
        assert_eq!(state(NextStep::Succeeded), (DeliveryStatus::Succeeded, None));
        assert_eq!(state(NextStep::RetryAt(at)), (DeliveryStatus::Pending, Some(at)));
        assert_eq!(
            state(NextStep::Failed { disable_webhook: false }),
            (DeliveryStatus::Failed, None)
        );
    }
}
