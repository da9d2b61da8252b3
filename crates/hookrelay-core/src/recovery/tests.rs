use serde_json::json;

use super::*;

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

fn now() -> Timestamp {
    at("2026-06-01T12:00:00Z")
}

fn fields(errors: &ValidationErrors) -> Vec<(&str, &str)> {
    errors.0.iter().map(|e| (e.field.as_str(), e.rule)).collect()
}

#[test]
fn since_alone_recovers_failed_and_cancelled_up_to_now() {
    let draft = RecoveryDraft::parse(&json!({"since": "2026-06-01T00:00:00Z"}), now()).unwrap();
    assert_eq!(draft.since, at("2026-06-01T00:00:00Z"));
    assert_eq!(draft.until, now());
    assert_eq!(draft.statuses, RECOVERABLE.to_vec());
    assert_eq!(draft.statuses_text(), "failed,cancelled");
    assert_eq!(
        RecoveryDraft::parse_statuses_text("failed,cancelled"),
        Some(RECOVERABLE.to_vec())
    );
}

#[test]
fn statuses_are_kept_in_their_own_order_without_repeats() {
    let body = json!({"since": "2026-06-01T00:00:00Z", "until": "2026-06-01T06:00:00Z",
                      "statuses": ["cancelled", "failed", "cancelled"]});
    let draft = RecoveryDraft::parse(&body, now()).unwrap();
    assert_eq!(draft.until, at("2026-06-01T06:00:00Z"));
    assert_eq!(draft.statuses, vec![DeliveryStatus::Failed, DeliveryStatus::Cancelled]);
    let body = json!({"since": "2026-06-01T00:00:00Z", "statuses": ["failed"]});
    assert_eq!(
        RecoveryDraft::parse(&body, now()).unwrap().statuses,
        vec![DeliveryStatus::Failed]
    );
}

#[test]
fn broken_requests_name_each_field_and_rule() {
    let cases = [
        (json!({}), vec![("since", "required")]),
        (json!({"since": "yesterday"}), vec![("since", "format")]),
        (json!({"since": 5}), vec![("since", "type")]),
        (json!({"since": "2026-06-02T00:00:00Z"}), vec![("since", "not_future")]),
        (
            json!({"since": "2026-06-01T00:00:00Z", "until": "2026-06-01T00:00:00Z"}),
            vec![("until", "after_since")],
        ),
        (
            json!({"since": "2026-06-01T00:00:00Z", "until": "2026-06-01T13:00:00Z"}),
            vec![("until", "not_future")],
        ),
        (
            json!({"since": "2026-06-01T00:00:00Z", "statuses": ["pending"]}),
            vec![("statuses[0]", "enum")],
        ),
        (
            json!({"since": "2026-06-01T00:00:00Z", "statuses": ["failed", "lost"]}),
            vec![("statuses[1]", "enum")],
        ),
        (
            json!({"since": "2026-06-01T00:00:00Z", "statuses": []}),
            vec![("statuses", "min_items")],
        ),
        (
            json!({"since": "2026-06-01T00:00:00Z", "statuses": "failed"}),
            vec![("statuses", "type")],
        ),
        (
            json!({"since": "2026-06-01T00:00:00Z", "webhookId": "x"}),
            vec![("webhookId", "unknown_field")],
        ),
    ];
    for (body, expected) in cases {
        let errors = RecoveryDraft::parse(&body, now()).unwrap_err();
        assert_eq!(fields(&errors), expected, "{body}");
    }
    let errors = RecoveryDraft::parse(&json!([]), now()).unwrap_err();
    assert_eq!(fields(&errors), vec![("body", "type")]);
}

#[test]
fn a_batch_requeues_what_ended_in_the_window_with_a_chosen_status() {
    let body = json!({"since": "2026-06-01T00:00:00Z", "until": "2026-06-01T06:00:00Z", "statuses": ["failed"]});
    let draft = RecoveryDraft::parse(&body, now()).unwrap();
    let candidate = |status, update_time, data_removed| Candidate {
        status,
        update_time,
        data_removed,
        now: now(),
    };
    let inside = at("2026-06-01T03:00:00Z");
    let requeued = Verdict::Requeue(requeue(false, now()).unwrap());
    assert_eq!(draft.sort(&candidate(DeliveryStatus::Failed, inside, false)), requeued);
    assert_eq!(
        draft.sort(&candidate(DeliveryStatus::Failed, draft.since, false)),
        requeued
    );
    assert_eq!(
        draft.sort(&candidate(DeliveryStatus::Failed, draft.until, false)),
        Verdict::Pass
    );
    assert_eq!(
        draft.sort(&candidate(DeliveryStatus::Failed, draft.since.plus_micros(-1), false)),
        Verdict::Pass
    );
    assert_eq!(
        draft.sort(&candidate(DeliveryStatus::Failed, inside, true)),
        Verdict::Skip
    );
    for other in [
        DeliveryStatus::Cancelled,
        DeliveryStatus::Pending,
        DeliveryStatus::Succeeded,
    ] {
        assert_eq!(draft.sort(&candidate(other, inside, false)), Verdict::Pass, "{other:?}");
    }
    let mut counts = RecoveryCounts::default();
    for verdict in [requeued, Verdict::Skip, Verdict::Pass, requeued] {
        counts.count(verdict);
    }
    assert_eq!(
        counts,
        RecoveryCounts {
            matched: 3,
            requeued: 2,
            skipped: 1
        }
    );
}

#[test]
fn statuses_round_trip() {
    for status in [
        RecoveryStatus::Running,
        RecoveryStatus::Completed,
        RecoveryStatus::Cancelled,
    ] {
        assert_eq!(RecoveryStatus::parse(status.as_str()), Some(status));
    }
    assert_eq!(RecoveryStatus::parse("done"), None);
}

#[test]
fn a_short_batch_ends_the_walk() {
    assert_eq!(advance(500, 500, Some(812), 9_000), (812, RecoveryStatus::Running));
    assert_eq!(advance(499, 500, Some(812), 9_000), (9_000, RecoveryStatus::Completed));
    assert_eq!(advance(0, 500, None, 9_000), (9_000, RecoveryStatus::Completed));
}
