//! The recorder's batching, answers, retries and flush, over a fake of its one store
//! call.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookrelay_core::alert::AlertPolicy;
use hookrelay_core::delivery::{DeliveryAttempt, NextStep};
use hookrelay_core::{DeliveryId, Timestamp, WebhookId};
use hookrelay_store::{AttemptResult, Lease, StoreError};
use tokio::sync::oneshot::error::TryRecvError;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;

use super::{AttemptRecorder, Recorder, ToRecorder, RECORD_BATCH, RECORD_TRIES};
use crate::delivery::status::EngineStatus;
use crate::delivery::Wakeup;

/// Records nothing; tells the test the size of every call, may hold each call until the
/// test lets one through, and fails the first `failures` calls.
#[derive(Clone)]
struct FakeRecorder {
    calls: mpsc::UnboundedSender<usize>,
    gate: Arc<Semaphore>,
    failures: Arc<Mutex<u32>>,
    alerts_queued: u32,
}

impl AttemptRecorder for FakeRecorder {
    async fn record_attempts(&self, results: &[AttemptResult], _: &AlertPolicy) -> Result<u32, StoreError> {
        let _ = self.calls.send(results.len());
        self.gate.acquire().await.expect("the gate stays open").forget();
        let mut failures = self.failures.lock().expect("not poisoned");
        if *failures > 0 {
            *failures -= 1;
            return Err(StoreError::Commit("the fake failed".into()));
        }
        Ok(self.alerts_queued)
    }
}

struct Harness {
    sender: mpsc::Sender<ToRecorder>,
    calls: mpsc::UnboundedReceiver<usize>,
    gate: Arc<Semaphore>,
    status: EngineStatus,
    alerts: Wakeup,
    task: Option<JoinHandle<()>>,
}

impl Harness {
    /// A recorder whose calls each wait for a permit of `gate` (none yet when `held`),
    /// failing the first `failures`, not started until [`Harness::start`].
    fn new(
        held: bool,
        failures: u32,
        alerts_queued: u32,
    ) -> (Self, Recorder<FakeRecorder>, mpsc::Receiver<ToRecorder>) {
        let (calls_tx, calls) = mpsc::unbounded_channel();
        let gate = Arc::new(Semaphore::new(if held { 0 } else { Semaphore::MAX_PERMITS }));
        let status = EngineStatus::new(Wakeup::default());
        let alerts = Wakeup::default();
        let recorder = Recorder {
            store: FakeRecorder {
                calls: calls_tx,
                gate: gate.clone(),
                failures: Arc::new(Mutex::new(failures)),
                alerts_queued,
            },
            policy: AlertPolicy::default(),
            status: status.clone(),
            alerts: alerts.clone(),
        };
        let (sender, results) = mpsc::channel(2 * RECORD_BATCH);
        let harness = Self {
            sender,
            calls,
            gate,
            status,
            alerts,
            task: None,
        };
        (harness, recorder, results)
    }

    fn start(&mut self, recorder: Recorder<FakeRecorder>, results: mpsc::Receiver<ToRecorder>) {
        self.task = Some(tokio::spawn(recorder.run(results)));
    }

    /// Sends a result as a worker does, counting it unrecorded first.
    async fn send(&self) -> oneshot::Receiver<()> {
        let (recorded, recording) = oneshot::channel();
        self.status.unrecorded().add(1);
        self.sender
            .send(ToRecorder::Result(result(), recorded))
            .await
            .expect("the recorder runs");
        recording
    }

    async fn flush(&self) -> oneshot::Receiver<()> {
        let (flushed, flushing) = oneshot::channel();
        self.sender
            .send(ToRecorder::Flush(flushed))
            .await
            .expect("the recorder runs");
        flushing
    }

    /// The size of the next store call, once it has started.
    async fn next_call(&mut self) -> usize {
        self.calls.recv().await.expect("the recorder called the store")
    }
}

fn result() -> AttemptResult {
    let now = Timestamp::now();
    AttemptResult {
        delivery_id: DeliveryId::generate(),
        webhook_id: WebhookId::generate(),
        attempt: DeliveryAttempt {
            attempt: 1,
            start_time: now,
            duration_ms: 3,
            status_code: Some(200),
            error_kind: None,
            response_body: None,
        },
        next: NextStep::Succeeded,
        finish_time: now,
        claimed_update_time: now,
        lease: Lease {
            owner: "node-test".into(),
            until: now,
        },
    }
}

#[tokio::test]
async fn results_sent_together_are_recorded_in_one_call_up_to_the_batch_size() {
    let (mut harness, recorder, results) = Harness::new(false, 0, 0);
    let mut answers = Vec::new();
    for _ in 0..RECORD_BATCH + 3 {
        answers.push(harness.send().await);
    }
    let flushing = harness.flush().await;
    harness.start(recorder, results);
    flushing.await.expect("flushed");
    assert_eq!(harness.next_call().await, RECORD_BATCH);
    assert_eq!(harness.next_call().await, 3);
    assert!(harness.calls.try_recv().is_err(), "two calls in all");
    for answer in answers {
        answer.await.expect("every sender is answered");
    }
    assert_eq!(harness.status.unrecorded().get(), 0);
    assert_eq!(
        harness.status.wakeup().generation(),
        2,
        "the claim loop is woken after each batch"
    );
}

#[tokio::test]
async fn each_sender_is_answered_once_its_batch_is_recorded() {
    let (mut harness, recorder, results) = Harness::new(true, 0, 0);
    harness.start(recorder, results);
    let mut first = harness.send().await;
    assert_eq!(harness.next_call().await, 1);
    // The first call is held: the next two gather behind it.
    let (mut second, mut third) = (harness.send().await, harness.send().await);
    assert_eq!(
        first.try_recv(),
        Err(TryRecvError::Empty),
        "answered before it was recorded"
    );
    assert_eq!(harness.status.unrecorded().get(), 3);
    harness.gate.add_permits(1);
    (&mut first).await.expect("answered once recorded");
    assert_eq!(
        harness.status.unrecorded().get(),
        2,
        "counted down before its sender is answered"
    );
    assert_eq!(harness.next_call().await, 2, "what gathered meanwhile goes in one call");
    assert_eq!(second.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(third.try_recv(), Err(TryRecvError::Empty));
    harness.gate.add_permits(1);
    second.await.expect("answered");
    third.await.expect("answered");
    assert_eq!(harness.status.unrecorded().get(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_record_is_tried_again_with_growing_pauses_then_given_up() {
    let (mut harness, recorder, results) = Harness::new(false, u32::MAX, 0);
    harness.start(recorder, results);
    let started = tokio::time::Instant::now();
    let answers = [harness.send().await, harness.send().await];
    let flushing = harness.flush().await;
    flushing.await.expect("flushed");
    let mut calls = Vec::new();
    while let Ok(size) = harness.calls.try_recv() {
        calls.push(size);
    }
    assert_eq!(calls, vec![2; RECORD_TRIES as usize], "tried {RECORD_TRIES} times");
    assert!(
        started.elapsed() >= Duration::from_millis(50 + 100 + 200 + 400),
        "paused between tries: {:?}",
        started.elapsed()
    );
    for answer in answers {
        answer
            .await
            .expect("given up on, and answered: its lease will bring it back");
    }
    assert_eq!(harness.status.unrecorded().get(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_record_that_fails_and_then_succeeds_wakes_the_alerter_for_what_it_queued() {
    let (mut harness, recorder, results) = Harness::new(false, 2, 1);
    harness.start(recorder, results);
    harness.send().await.await.expect("answered once recorded");
    let calls = [
        harness.next_call().await,
        harness.next_call().await,
        harness.next_call().await,
    ];
    assert_eq!(calls, [1, 1, 1], "two failures, then recorded");
    assert_eq!(harness.alerts.generation(), 1, "the alerter is woken once");
    assert!(harness.calls.try_recv().is_err());
}

#[tokio::test]
async fn a_flush_is_answered_after_everything_sent_before_it_and_stops_the_recorder() {
    let (mut harness, recorder, results) = Harness::new(true, 0, 0);
    harness.start(recorder, results);
    let first = harness.send().await;
    assert_eq!(harness.next_call().await, 1);
    let mut second = harness.send().await;
    let mut flushing = harness.flush().await;
    harness.gate.add_permits(1);
    first.await.expect("answered");
    assert_eq!(harness.next_call().await, 1, "the result sent before the flush");
    assert_eq!(
        flushing.try_recv(),
        Err(TryRecvError::Empty),
        "flushed before it was recorded"
    );
    harness.gate.add_permits(1);
    flushing.await.expect("flushed");
    assert_eq!(second.try_recv(), Ok(()), "recorded and answered before the flush");
    harness
        .task
        .take()
        .expect("started")
        .await
        .expect("the recorder stopped");
}
