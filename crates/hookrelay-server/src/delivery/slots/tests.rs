//! Slot accounting, with numbers for deliveries and `()` for permits: no store, no HTTP.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::WebhookSlots;
use crate::delivery::limit::{LoadSignal, INITIAL_IN_FLIGHT};
use crate::delivery::status::EngineStatus;
use crate::delivery::{Wakeup, QUEUED_CAPS};

fn slots(ceiling: u32) -> (WebhookSlots<u32>, EngineStatus) {
    let status = EngineStatus::new(Wakeup::default());
    (WebhookSlots::new(ceiling, status.clone()), status)
}

/// A permit source with `n` permits.
fn permits(n: &mut u32) -> impl FnMut() -> Option<()> + '_ {
    move || {
        let left = n.checked_sub(1)?;
        *n = left;
        Some(())
    }
}

/// Raises the limit by one: a round of quick successes.
fn raise(slots: &mut WebhookSlots<u32>) {
    let now = Instant::now();
    let round = slots.limit.current();
    for _ in 0..round {
        slots.limit.answered(LoadSignal::Room, now, now);
    }
}

#[test]
fn deliveries_take_free_slots_and_queue_behind_the_webhooks_workers() {
    let (mut slots, status) = slots(12);
    let mut free = 100;
    let started: Vec<u32> = (0..14)
        .filter_map(|d| slots.admit(d, permits(&mut free)))
        .map(|(d, ())| d)
        .collect();
    assert_eq!(
        started,
        (0..INITIAL_IN_FLIGHT).collect::<Vec<_>>(),
        "the first ten start"
    );
    assert_eq!((slots.in_flight, slots.queued.len()), (10, 4));
    assert_eq!((status.in_flight().get(), status.queued().get()), (10, 4));
    assert_eq!(free, 90, "a permit for each started delivery only");
}

#[test]
fn take_up_to_limit_fills_the_slots_a_rise_opened_while_permits_last() {
    let (mut slots, status) = slots(12);
    let mut free = 100;
    for d in 0..14 {
        slots.admit(d, permits(&mut free));
    }
    let mut started = Vec::new();
    slots.take_up_to_limit(permits(&mut free), &mut started);
    assert!(started.is_empty(), "no slot below the limit of ten is free");

    raise(&mut slots);
    raise(&mut slots);
    assert_eq!(slots.limit.current(), 12);
    let mut none = 0;
    slots.take_up_to_limit(permits(&mut none), &mut started);
    assert!(started.is_empty(), "no permit, no start");
    let mut one = 1;
    slots.take_up_to_limit(permits(&mut one), &mut started);
    assert_eq!(started, vec![(10, ())], "one permit, one start, the oldest queued");
    slots.take_up_to_limit(permits(&mut free), &mut started);
    assert_eq!(started, vec![(10, ()), (11, ())], "then up to the limit, not beyond");
    assert_eq!((slots.in_flight, slots.queued.len()), (12, 2));
    assert_eq!((status.in_flight().get(), status.queued().get()), (12, 2));
}

#[test]
fn a_webhook_is_saturated_when_its_slots_and_queue_hold_its_limit_three_times() {
    let (mut slots, _) = slots(10);
    let mut free = 100;
    let mark = (1 + QUEUED_CAPS) * INITIAL_IN_FLIGHT;
    for d in 0..mark - 1 {
        slots.admit(d, permits(&mut free));
    }
    assert!(!slots.saturated(), "one short of the mark");
    slots.admit(mark, permits(&mut free));
    assert!(slots.saturated());
    // A cut limit lowers the mark: ten in flight are more than three limits of two.
    let (mut cut, _) = self::slots(10);
    for d in 0..INITIAL_IN_FLIGHT {
        cut.admit(d, permits(&mut free));
    }
    assert!(!cut.saturated());
    let now = Instant::now();
    cut.limit.answered(LoadSignal::Overloaded, now, now);
    let later = now + Duration::from_millis(1);
    cut.limit.answered(LoadSignal::Overloaded, later, later);
    assert_eq!(cut.limit.current(), 2);
    assert!(cut.saturated());
}

#[test]
fn workers_over_a_cut_limit_leave_and_the_last_one_takes_the_queue() {
    let (mut slots, status) = slots(10);
    let mut free = 100;
    for d in 0..15 {
        slots.admit(d, permits(&mut free));
    }
    // The receiver is overloaded: ten, then five, then two, then one allowed.
    let mut sent = Instant::now();
    while slots.limit.current() > 1 {
        sent += Duration::from_millis(1);
        slots.limit.answered(LoadSignal::Overloaded, sent, sent);
    }
    let mut started = Vec::new();
    let mut left = 0;
    for _ in 0..10 {
        let next = slots.after_attempt(None, false, true, permits(&mut free), &mut started);
        match next {
            None => left += 1,
            Some(d) => {
                assert_eq!((left, d), (9, 10), "nine leave, the tenth takes the oldest queued");
                break;
            }
        }
    }
    assert_eq!((slots.in_flight, slots.queued.len()), (1, 4));
    assert_eq!((status.in_flight().get(), status.queued().get()), (1, 4));
    for d in 11..15 {
        assert_eq!(
            slots.after_attempt(None, false, true, permits(&mut free), &mut started),
            Some(d)
        );
    }
    assert_eq!(
        slots.after_attempt(None, false, true, permits(&mut free), &mut started),
        None
    );
    assert!(slots.is_unused(), "the last worker left with nothing queued");
    assert_eq!((status.in_flight().get(), status.queued().get()), (0, 0));
    assert!(started.is_empty());
}

#[test]
fn stopping_workers_take_nothing_more_and_the_queue_drains_for_giving_back() {
    let (mut slots, status) = slots(10);
    let mut free = 100;
    for d in 0..12 {
        slots.admit(d, permits(&mut free));
    }
    let mut started = Vec::new();
    let now = Instant::now();
    assert_eq!(
        slots.after_attempt(
            Some((LoadSignal::Room, now)),
            true,
            false,
            permits(&mut free),
            &mut started
        ),
        None
    );
    assert_eq!(slots.drain_queued(), vec![10, 11]);
    assert_eq!((status.in_flight().get(), status.queued().get()), (10, 0));
}

/// Claims and workers in a random order, as the dispatcher and its workers make them,
/// over one webhook and a pool of permits: a delivery is never queued with no worker to
/// take it, permits are never lost, and the engine's gauges follow the slots.
#[test]
fn a_delivery_is_never_queued_with_no_worker() {
    const PERMITS: u32 = 24;
    for seed in 0..200 {
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut slots, status) = slots(rng.gen_range(1..=16));
        let mut pool = PERMITS;
        let mut next_delivery = 0;
        let mut clock = Instant::now();
        for step in 0..400 {
            clock += Duration::from_millis(1);
            if rng.gen_bool(0.4) {
                // A claim: permits reserved first, deliveries admitted with them, the
                // rest offered to queued deliveries, then given back.
                if slots.saturated() || pool == 0 {
                    continue;
                }
                let mut reserved = pool;
                pool = 0;
                for _ in 0..rng.gen_range(1..=12).min(reserved) {
                    slots.admit(next_delivery, permits(&mut reserved));
                    next_delivery += 1;
                }
                let mut started = Vec::new();
                slots.take_up_to_limit(permits(&mut reserved), &mut started);
                pool += reserved;
            } else if slots.in_flight > 0 {
                // A worker's attempt is answered: it goes on, or waits for its records
                // and looks once more, or leaves.
                let signal = [LoadSignal::Room, LoadSignal::Overloaded, LoadSignal::Nothing][rng.gen_range(0..3)];
                let sent = clock - Duration::from_millis(rng.gen_range(0..5));
                let mut started = Vec::new();
                let next = slots.after_attempt(Some((signal, sent)), false, false, permits(&mut pool), &mut started);
                if next.is_none()
                    && slots
                        .after_attempt(None, false, true, permits(&mut pool), &mut started)
                        .is_none()
                {
                    pool += 1;
                }
            }
            assert!(
                slots.queued.is_empty() || slots.in_flight > 0,
                "seed {seed} step {step}: {} queued, no worker",
                slots.queued.len()
            );
            assert_eq!(pool + slots.in_flight, PERMITS, "seed {seed} step {step}: permits lost");
            assert_eq!(status.in_flight().get(), slots.in_flight as usize);
            assert_eq!(status.queued().get(), slots.queued.len());
        }
    }
}
