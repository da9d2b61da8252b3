use std::time::Duration;

use super::*;

const DAY: Duration = Duration::from_secs(86_400);

fn event(seq: i64, age_micros: i64, deliveries: u64, unfinished: bool) -> EventAge {
    EventAge {
        seq,
        create_time: Timestamp::from_micros(age_micros),
        deliveries,
        unfinished,
        data_removed: false,
    }
}

#[test]
fn payloads_must_go_before_their_events() {
    let policy = |payload| RetentionPolicy {
        retention: 7 * DAY,
        payload_retention: payload,
    };
    assert!(policy(None).check().is_ok());
    assert!(policy(Some(DAY)).check().is_ok());
    let error = policy(Some(7 * DAY)).check().unwrap_err();
    assert!(error.contains("must be shorter than retention"), "{error}");
    assert!(policy(Some(8 * DAY)).check().is_err());
}

#[test]
fn cutoffs_count_back_from_now_and_a_space_overrides_the_server() {
    let now = Timestamp::from_micros(100 * 86_400_000_000);
    let server = RetentionPolicy {
        retention: 30 * DAY,
        payload_retention: Some(DAY),
    };
    let cutoffs = server.cutoffs(now);
    assert_eq!(cutoffs.delete_before, now.minus(30 * DAY));
    assert_eq!(cutoffs.expire_payload_before, Some(now.minus(DAY)));

    let own = server.for_space(SpaceRetention {
        retention: Some(7 * DAY),
        payload_retention: None,
    });
    assert_eq!(own.retention, 7 * DAY);
    assert_eq!(own.payload_retention, Some(DAY), "the server's payload period stays");

    // A space's retention shorter than the server's payload period: payloads go with
    // their events, and no separate expiry is planned.
    let short = server.for_space(SpaceRetention {
        retention: Some(DAY / 2),
        payload_retention: None,
    });
    assert_eq!(short.cutoffs(now).expire_payload_before, None);
}

#[test]
fn deletion_takes_finished_old_events_and_stops_at_the_first_young_one() {
    let cutoff = Timestamp::from_micros(100);
    let events = [
        event(1, 10, 2, false),
        event(2, 20, 1, true), // still being delivered: kept, passed over
        event(3, 30, 0, false),
        event(4, 100, 1, false), // published at the cutoff: too young
        event(5, 40, 1, false),
    ];
    let plan = plan_deletion(&events, 0, 200, cutoff);
    assert_eq!(plan.chosen, vec![1, 3]);
    assert_eq!(plan.next_after, 3);
    assert!(plan.done);
}

#[test]
fn a_full_batch_of_old_events_is_not_the_end() {
    let cutoff = Timestamp::from_micros(1_000);
    let events: Vec<_> = (1..=4).map(|seq| event(seq, seq, 1, seq == 4)).collect();
    let plan = plan_deletion(&events, 0, 4, cutoff);
    assert_eq!(plan.chosen, vec![1, 2, 3]);
    assert_eq!(plan.next_after, 4, "the unfinished one is passed over");
    assert!(!plan.done, "the batch was full: more may follow");
    let plan = plan_deletion(&events[..3], 0, 4, cutoff);
    assert!(plan.done, "a short batch read the last events");
}

#[test]
fn a_batch_holds_a_bounded_number_of_deliveries_but_always_one_event() {
    let cutoff = Timestamp::from_micros(1_000);
    let half = DELIVERIES_PER_BATCH / 2;
    let events = [
        event(1, 1, half, false),
        event(2, 2, half, false),
        event(3, 3, 1, false),
    ];
    let plan = plan_deletion(&events, 0, 200, cutoff);
    assert_eq!(plan.chosen, vec![1, 2]);
    assert_eq!(plan.next_after, 2, "the next batch starts at the event left out");
    assert!(!plan.done);

    let wide = [event(7, 1, DELIVERIES_PER_BATCH * 3, false), event(8, 2, 1, false)];
    let plan = plan_deletion(&wide, 6, 200, cutoff);
    assert_eq!(plan.chosen, vec![7], "an event wider than a batch goes alone");
    assert_eq!(plan.next_after, 7);
}

#[test]
fn nothing_old_enough_changes_nothing() {
    let plan = plan_deletion(&[event(9, 500, 1, false)], 8, 200, Timestamp::from_micros(100));
    assert_eq!(
        plan,
        BatchPlan {
            chosen: vec![],
            next_after: 8,
            waiting: vec![],
            done: true
        }
    );
    let plan = plan_deletion(&[], 8, 200, Timestamp::from_micros(100));
    assert!(plan.done && plan.chosen.is_empty());
}

#[test]
fn payload_expiry_skips_removed_and_unfinished_events() {
    let cutoff = Timestamp::from_micros(100);
    let mut removed = event(2, 20, 1, false);
    removed.data_removed = true;
    let events = [
        event(1, 10, 1, false),
        removed,
        event(3, 30, 1, true),
        event(4, 40, 5, false),
        event(5, 200, 1, false),
    ];
    let plan = plan_payload_expiry(&events, 0, 200, cutoff);
    assert_eq!(plan.chosen, vec![1, 4]);
    assert_eq!(plan.waiting, vec![3], "looked at again later");
    assert_eq!(plan.next_after, 4);
    assert!(plan.done);
}

#[test]
fn removed_counts_add_up() {
    let mut total = Removed::default();
    assert!(!total.deleted_any());
    total.add(Removed {
        events: 1,
        deliveries: 2,
        attempts: 3,
        payloads: 0,
        response_bodies: 0,
        alerts: 0,
    });
    total.add(Removed {
        payloads: 4,
        response_bodies: 5,
        ..Removed::default()
    });
    assert_eq!(
        total,
        Removed {
            events: 1,
            deliveries: 2,
            attempts: 3,
            payloads: 4,
            response_bodies: 5,
            alerts: 0
        }
    );
    assert!(total.deleted_any());
}
