//! Tracker behaviour under tokio's paused clock: deterministic, no real waits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tasktrack_core::{
    async_trait, DynTaskProvider, Error, MemoryProvider, MemoryTask, PollPolicy, Result,
    ScriptOutcome, TaskEventKind, TaskProvider, TaskScript, TaskState, Tracker,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(start_paused = true)]
async fn a_thousand_tasks_each_reported_exactly_once() {
    let provider = Arc::new(MemoryProvider::new("memory"));
    let (tracker, mut events) = Tracker::builder()
        .with_provider("memory", provider.clone())
        .with_policy(PollPolicy::fixed(ms(100)))
        .build();
    let mut expected = HashMap::new();
    for i in 0..1000u64 {
        let outcome = match i % 4 {
            0 => ScriptOutcome::failed("E1", "boom"),
            1 => ScriptOutcome::Cancelled,
            _ => ScriptOutcome::Succeeded,
        };
        let id = provider
            .start(TaskScript::new("job", ms(10 * (i % 97) + 1)).with_outcome(outcome.clone()));
        expected.insert(id.to_string(), outcome);
        tracker.track("memory", &id.to_string()).unwrap();
    }
    let mut terminal: HashMap<String, TaskState> = HashMap::new();
    while terminal.len() < 1000 {
        let ev = events
            .next()
            .await
            .expect("stream stays open while tracking");
        if ev.is_final() {
            let state = ev.state().expect("no task gives up here");
            assert!(
                terminal.insert(ev.id.clone(), state).is_none(),
                "task {} reported terminal twice",
                ev.id
            );
        }
    }
    for (id, outcome) in &expected {
        let want = match outcome {
            ScriptOutcome::Failed { .. } => TaskState::Failed,
            ScriptOutcome::Cancelled => TaskState::Cancelled,
            _ => TaskState::Succeeded,
        };
        assert_eq!(terminal[id], want, "task {id}");
    }
    // Nothing more arrives and the schedule is empty.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(tracker.stats().tracked, 0);
    assert!(futures::FutureExt::now_or_never(events.next()).is_none());
}

#[tokio::test(start_paused = true)]
async fn events_carry_previous_state_and_changes_only() {
    let provider = Arc::new(MemoryProvider::new("memory"));
    let (tracker, mut events) = Tracker::builder()
        .with_provider("memory", provider.clone())
        .with_policy(PollPolicy::fixed(ms(100)))
        .build();
    let id = provider.start(TaskScript::new("job", ms(250)).with_pending_for(ms(150)));
    tracker.track("memory", &id.to_string()).unwrap();
    tracker.track("memory", &id.to_string()).unwrap(); // deduplicated
    let mut seen = Vec::new();
    loop {
        let ev = events.next().await.unwrap();
        let TaskEventKind::Changed { snapshot } = &ev.kind else {
            panic!("{ev:?}")
        };
        seen.push((ev.previous, snapshot.state));
        if ev.is_final() {
            break;
        }
    }
    assert_eq!(seen.first(), Some(&(None, TaskState::Pending)));
    assert_eq!(seen.last().map(|s| s.1), Some(TaskState::Succeeded));
    for pair in seen.windows(2) {
        assert_eq!(pair[1].0, Some(pair[0].1), "previous is the last state");
    }
    let json = serde_json::to_value(&seen).unwrap();
    assert!(json.is_array());
}

#[tokio::test(start_paused = true)]
async fn vanished_and_untracked_tasks() {
    let provider = Arc::new(MemoryProvider::new("memory"));
    let (tracker, mut events) = Tracker::builder()
        .with_provider("memory", provider.clone())
        .with_policy(PollPolicy::fixed(ms(100)))
        .build();
    let gone = provider.start(TaskScript::new("job", Duration::from_secs(60)));
    let dropped = provider.start(TaskScript::new("job", Duration::from_secs(60)));
    tracker.track("memory", &gone.to_string()).unwrap();
    tracker.track("memory", &dropped.to_string()).unwrap();
    for _ in 0..2 {
        assert_eq!(
            events.next().await.unwrap().state(),
            Some(TaskState::Running)
        );
    }
    tracker.untrack("memory", &dropped.to_string()).unwrap();
    provider.vanish(gone);
    let ev = events.next().await.unwrap();
    assert_eq!(ev.id, gone.to_string());
    match &ev.kind {
        TaskEventKind::GaveUp {
            error_kind,
            message,
        } => {
            assert_eq!(error_kind, "not_found");
            assert!(message.contains("memory"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(ev.previous, Some(TaskState::Running));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(tracker.stats().tracked, 0);
}

#[tokio::test]
async fn bad_names_and_ids_are_refused_up_front() {
    let provider = Arc::new(MemoryProvider::new("memory"));
    let (tracker, _events) = Tracker::builder()
        .with_provider("memory", provider.clone())
        .with_provider("other", Arc::new(MemoryProvider::new("other")))
        .build();
    let err = tracker.track("nope", "1").unwrap_err();
    assert!(
        err.to_string().contains("registered: memory, other"),
        "{err}"
    );
    let err = tracker.track("memory", "UPID:x").unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }));
    assert!(
        err.to_string().contains("malformed task id \"UPID:x\""),
        "{err}"
    );
}

/// Counts `status_many` calls to show the tracker batches due ids.
struct Batching {
    inner: MemoryProvider,
    calls: AtomicUsize,
}

#[async_trait]
impl TaskProvider for Batching {
    type Id = u64;
    type Status = MemoryTask;
    fn name(&self) -> &str {
        "batching"
    }
    fn capabilities(&self) -> tasktrack_core::Capabilities {
        tasktrack_core::Capabilities::NONE.with_batch_status()
    }
    async fn status(&self, id: &u64) -> Result<MemoryTask> {
        self.inner.status(id).await
    }
    async fn status_many(&self, ids: &[u64]) -> Vec<Result<MemoryTask>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut out = Vec::new();
        for id in ids {
            out.push(self.inner.status(id).await);
        }
        out
    }
}

#[tokio::test(start_paused = true)]
async fn due_tasks_are_grouped_into_batches() {
    let provider = Arc::new(Batching {
        inner: MemoryProvider::new("batching"),
        calls: AtomicUsize::new(0),
    });
    let (tracker, mut events) = Tracker::builder()
        .with_provider("b", provider.clone() as Arc<dyn DynTaskProvider>)
        .with_policy(PollPolicy::fixed(ms(100)))
        .with_batch_size(100)
        .build();
    for _ in 0..300 {
        let id = provider.inner.start(TaskScript::new("job", ms(450)));
        tracker.track("b", &id.to_string()).unwrap();
    }
    let mut finals = 0;
    while finals < 300 {
        if events.next().await.unwrap().is_final() {
            finals += 1;
        }
    }
    let calls = provider.calls.load(Ordering::Relaxed);
    let updates = tracker.stats().status_updates as usize;
    assert!(updates >= 300 * 5, "each task polled ~5 times: {updates}");
    assert!(
        calls * 50 <= updates,
        "{calls} batches for {updates} updates"
    );
}

/// The tracker and the poller share one poll decision: the deadline and
/// the poll count end a task with the polls it took, as `Poller` does.
#[tokio::test(start_paused = true)]
async fn deadlines_and_poll_counts_end_tasks_with_their_polls() {
    let provider = Arc::new(MemoryProvider::new("memory"));
    let (tracker, mut events) = Tracker::builder()
        .with_provider("memory", provider.clone())
        .with_policy(
            PollPolicy::fixed(ms(100))
                .with_deadline(Some(ms(1_000)))
                .with_max_polls(Some(4)),
        )
        .build();
    let id = provider.start(TaskScript::new("job", Duration::from_secs(3600)));
    tracker.track("memory", &id.to_string()).unwrap();
    let gave_up = loop {
        let ev = events.next().await.unwrap();
        if let TaskEventKind::GaveUp {
            error_kind,
            message,
        } = ev.kind
        {
            break (error_kind, message);
        }
    };
    assert_eq!(gave_up.0, "timeout");
    assert!(gave_up.1.contains("4 polls"), "{}", gave_up.1);
    assert_eq!(provider.status_calls(), 4, "no poll past the count");
}

#[derive(Debug, Clone)]
struct Stuck;

impl tasktrack_core::TaskStatus for Stuck {
    fn state(&self) -> TaskState {
        TaskState::Running
    }
    fn vendor_state(&self) -> String {
        "running at 40%".into()
    }
}

struct StuckProvider;

#[async_trait]
impl TaskProvider for StuckProvider {
    type Id = u64;
    type Status = Stuck;
    fn name(&self) -> &str {
        "stuck"
    }
    async fn status(&self, _id: &u64) -> Result<Stuck> {
        Ok(Stuck)
    }
}

/// A task that stops changing is reported stalled once and kept, or given
/// up when the policy says so.
#[tokio::test(start_paused = true)]
async fn a_task_that_stops_changing_is_reported_stalled() {
    let policy = PollPolicy::fixed(ms(1_000)).with_stall_after(Some(ms(5_000)), false);
    let (tracker, mut events) = Tracker::builder()
        .with_provider("stuck", Arc::new(StuckProvider))
        .with_policy(policy.clone())
        .build();
    tracker.track("stuck", "1").unwrap();
    let stalled = loop {
        let ev = events.next().await.unwrap();
        if let TaskEventKind::Stalled { unchanged_for_secs } = ev.kind {
            break unchanged_for_secs;
        }
    };
    assert!(stalled >= 5, "{stalled}");
    // Still tracked, and reported only once per stall.
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(tracker.stats().tracked, 1);
    assert!(futures::FutureExt::now_or_never(events.next()).is_none());

    let (tracker, mut events) = Tracker::builder()
        .with_provider("stuck", Arc::new(StuckProvider))
        .with_policy(policy.with_stall_after(Some(ms(5_000)), true))
        .build();
    tracker.track("stuck", "1").unwrap();
    let message = loop {
        let ev = events.next().await.unwrap();
        if let TaskEventKind::GaveUp { message, .. } = ev.kind {
            break message;
        }
    };
    assert!(message.contains("stalled"), "{message}");
    assert_eq!(tracker.stats().tracked, 0);
}

/// Running, and different on every poll: a stall never comes, only a
/// phase limit ends it.
#[derive(Default)]
struct Busy(std::sync::atomic::AtomicU64);

#[derive(Debug, Clone)]
struct Moving(u64);

impl tasktrack_core::TaskStatus for Moving {
    fn state(&self) -> TaskState {
        TaskState::Running
    }
    fn vendor_state(&self) -> String {
        format!("copied {} GiB", self.0)
    }
}

#[async_trait]
impl TaskProvider for Busy {
    type Id = u64;
    type Status = Moving;
    fn name(&self) -> &str {
        "busy"
    }
    async fn status(&self, _id: &u64) -> Result<Moving> {
        Ok(Moving(
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
        ))
    }
}

/// `running_for` gives a task up however much it changes, in the tracker
/// and in the poller alike, naming the limit.
#[tokio::test(start_paused = true)]
async fn a_task_running_past_running_for_is_given_up_naming_the_limit() {
    let policy = PollPolicy::fixed(ms(1_000))
        .with_stall_after(Some(ms(3_000)), true)
        .with_phase_limits(None, Some(ms(10_000)), None);
    let (tracker, mut events) = Tracker::builder()
        .with_provider("busy", Arc::new(Busy::default()))
        .with_policy(policy.clone())
        .build();
    tracker.track("busy", "1").unwrap();
    let (changes, gave_up) = {
        let mut changes = 0;
        loop {
            let ev = events.next().await.unwrap();
            match ev.kind {
                TaskEventKind::Changed { .. } => changes += 1,
                TaskEventKind::GaveUp {
                    error_kind,
                    message,
                } => break (changes, (error_kind, message)),
                TaskEventKind::Stalled { .. } => panic!("it changes on every poll"),
            }
        }
    };
    assert!(changes >= 10, "it kept changing: {changes}");
    assert_eq!(gave_up.0, "timeout");
    assert!(gave_up.1.contains("running_for is 10s"), "{}", gave_up.1);
    assert_eq!(tracker.stats().tracked, 0);

    let poller: tasktrack_core::Poller<Busy> = tasktrack_core::Poller::new(Busy::default(), policy);
    let err = poller.wait(&1).await.unwrap_err();
    assert!(
        matches!(err, tasktrack_core::Error::Timeout { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("running_for is 10s"), "{err}");
}

/// A provider that answers any number of ids with one request, counting
/// requests and ids.
#[derive(Default)]
struct Gathering {
    requests: AtomicUsize,
    answered: AtomicUsize,
}

#[async_trait]
impl TaskProvider for Gathering {
    type Id = u64;
    type Status = Stuck;
    fn name(&self) -> &str {
        "gathering"
    }
    fn capabilities(&self) -> tasktrack_core::Capabilities {
        tasktrack_core::Capabilities::NONE.with_batch_status()
    }
    async fn status(&self, _id: &u64) -> Result<Stuck> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.answered.fetch_add(1, Ordering::SeqCst);
        Ok(Stuck)
    }
    async fn status_many(&self, ids: &[u64]) -> Vec<Result<Stuck>> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.answered.fetch_add(ids.len(), Ordering::SeqCst);
        ids.iter().map(|_| Ok(Stuck)).collect()
    }
}

/// With the default (jittered) policy every task has its own due time;
/// a batching provider still gets its due tasks in few requests, over
/// many ticks, not only the first.
#[tokio::test(start_paused = true)]
async fn due_tasks_of_a_batching_provider_are_gathered_with_the_default_policy() {
    let provider = Arc::new(Gathering::default());
    let (tracker, _events) = Tracker::builder()
        .with_provider("gathering", provider.clone())
        .with_policy(PollPolicy::default().with_deadline(None))
        .build();
    for id in 0..300 {
        tracker.track("gathering", &id.to_string()).unwrap();
    }
    // Past the first minute, once intervals have spread apart.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let (r0, a0) = (
        provider.requests.load(Ordering::SeqCst),
        provider.answered.load(Ordering::SeqCst),
    );
    tokio::time::sleep(Duration::from_secs(600)).await;
    let requests = provider.requests.load(Ordering::SeqCst) - r0;
    let answered = provider.answered.load(Ordering::SeqCst) - a0;
    println!("{answered} statuses in {requests} requests over 10 minutes");
    assert!(
        answered >= 300 * 15,
        "every task polled about every 30 s: {answered}"
    );
    assert!(
        answered >= requests * 30,
        "{answered} statuses in {requests} requests: batches fell apart"
    );
    // Every poll is counted by how late it ran; on a clock that never lags
    // (and with batches gathered early, not late) none ran late.
    let lag = tracker.stats().schedule_lag;
    assert!(lag.total() >= answered as u64, "{lag:?}");
    assert_eq!(
        lag.quantile(0.99),
        Some(Duration::from_millis(1)),
        "{lag:?}"
    );
}

/// A provider without batch status answering after `delay` (task 0 never,
/// when `silent_zero`), counting the requests in flight.
struct Paced {
    delay: Duration,
    silent_zero: bool,
    in_flight: AtomicUsize,
    most: AtomicUsize,
}

impl Paced {
    fn new(delay: Duration, silent_zero: bool) -> Self {
        Paced {
            delay,
            silent_zero,
            in_flight: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl TaskProvider for Paced {
    type Id = u64;
    type Status = Stuck;
    fn name(&self) -> &str {
        "paced"
    }
    async fn status(&self, id: &u64) -> Result<Stuck> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        if self.silent_zero && *id == 0 {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(self.delay).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(Stuck)
    }
}

/// Tasks of a provider without batch status are asked one request each,
/// at most the window in flight, and every answer is applied as it
/// arrives: one that never comes holds up no other task.
#[tokio::test(start_paused = true)]
async fn single_requests_fill_a_window_and_one_slow_answer_holds_up_nothing() {
    let provider = Arc::new(Paced::new(ms(10), true));
    let (tracker, mut events) = Tracker::builder()
        .with_provider("paced", provider.clone())
        .with_policy(PollPolicy::fixed(ms(100)))
        .with_status_concurrency(8)
        .build();
    for id in 0..64 {
        tracker.track("paced", &id.to_string()).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut seen = std::collections::HashSet::new();
    while let Some(Some(ev)) = futures::FutureExt::now_or_never(events.next()) {
        seen.insert(ev.id);
    }
    assert_eq!(seen.len(), 63, "every task but the silent one reported");
    assert!(!seen.contains("0"));
    assert_eq!(
        provider.most.load(Ordering::SeqCst),
        8,
        "the window, filled"
    );
    let stats = tracker.stats();
    assert!(
        stats.status_updates >= 63 * 40,
        "the others kept their 100 ms schedule: {stats:?}"
    );
}

/// Without a window set, a provider without batch status gets 32 requests
/// in flight at most, and all 32 when that many are due.
#[tokio::test(start_paused = true)]
async fn the_default_window_is_32_requests_per_provider() {
    let provider = Arc::new(Paced::new(ms(10), false));
    let (tracker, _events) = Tracker::builder()
        .with_provider("paced", provider.clone())
        .with_policy(PollPolicy::fixed(ms(100)))
        .build();
    for id in 0..100 {
        tracker.track("paced", &id.to_string()).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(provider.most.load(Ordering::SeqCst), 32);
}

/// Asked for more polls than it answers, the tracker stretches every
/// interval and says so, instead of letting polls run ever later.
#[tokio::test(start_paused = true)]
async fn a_provider_that_cannot_keep_up_gets_stretched_intervals_in_stats() {
    let (tracker, _events) = Tracker::builder()
        .with_provider("paced", Arc::new(Paced::new(ms(50), false)))
        .with_policy(PollPolicy::fixed(ms(100)))
        .with_status_concurrency(2)
        .build();
    // 40 tasks every 100 ms is 400 answers a second; two at a time at
    // 50 ms each answer 40.
    for id in 0..40 {
        tracker.track("paced", &id.to_string()).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    let stats = tracker.stats();
    assert!(stats.stretched_polls > 0, "{stats:?}");
    assert!(stats.stretch_percent >= 800, "{stats:?}");
    assert_eq!(stats.first_poll_wait.total(), 40, "{stats:?}");
    // Stretched, the line empties: in the next minute no poll ran more
    // than 100 ms late (before the stretch, polls ran up to a second late).
    let before = stats.schedule_lag;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let after = tracker.stats().schedule_lag;
    assert!(after.total() > before.total() + 1000, "{after:?}");
    assert_eq!(
        after.counts[7..],
        before.counts[7..],
        "{after:?} after {before:?}"
    );
}

/// A burst of tasks tracked at once is demand from the start: when their
/// second polls begin to wait, the stretch is sized to all of them at once,
/// not raised step by step as their first answers come in while the polls
/// already scheduled run ever later (before, 30 % of these polls ran more
/// than 100 ms late, up to half a second).
#[tokio::test(start_paused = true)]
async fn a_burst_of_new_tasks_is_stretched_for_at_once_so_few_polls_run_late() {
    let (tracker, _events) = Tracker::builder()
        .with_provider("paced", Arc::new(Paced::new(ms(10), false)))
        .with_policy(PollPolicy::fixed(ms(250)))
        .with_status_concurrency(4)
        .build();
    // 1,000 tasks every 250 ms ask for 4,000 polls a second; four at a
    // time at 10 ms each answer 400.
    for id in 0..1000 {
        tracker.track("paced", &id.to_string()).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    let stats = tracker.stats();
    assert_eq!(stats.first_poll_wait.total(), 1000, "{stats:?}");
    assert!(stats.stretch_percent >= 800, "{stats:?}");
    let lag = stats.schedule_lag;
    let late: u64 = lag.counts[7..].iter().sum();
    assert!(
        late * 100 <= lag.total(),
        "at most 1 % of polls more than 100 ms late: {late} of {}: {lag:?}",
        lag.total()
    );
}

/// Running, with a hint of when to look again for task 0 only.
#[derive(Debug, Clone)]
struct MaybeHinted(bool);

impl tasktrack_core::TaskStatus for MaybeHinted {
    fn state(&self) -> TaskState {
        TaskState::Running
    }
    fn vendor_state(&self) -> String {
        "running".into()
    }
    fn poll_hint(&self) -> Option<Duration> {
        self.0.then(|| ms(100))
    }
}

/// Answers after 50 ms, two at a time; counts the polls of task 0.
#[derive(Default)]
struct SlowWithOneHint {
    polls_of_zero: AtomicUsize,
    polls: AtomicUsize,
}

#[async_trait]
impl TaskProvider for SlowWithOneHint {
    type Id = u64;
    type Status = MaybeHinted;
    fn name(&self) -> &str {
        "slow"
    }
    async fn status(&self, id: &u64) -> Result<MaybeHinted> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        if *id == 0 {
            self.polls_of_zero.fetch_add(1, Ordering::SeqCst);
        }
        tokio::time::sleep(ms(50)).await;
        Ok(MaybeHinted(*id == 0))
    }
}

/// A provider's hint of when to look again is kept while its other tasks'
/// intervals are stretched: it is the vendor's word on when there is
/// something to see, and stretching it only delays seeing a task end.
#[tokio::test(start_paused = true)]
async fn a_hinted_interval_is_not_stretched() {
    let provider = Arc::new(SlowWithOneHint::default());
    let (tracker, _events) = Tracker::builder()
        .with_provider("slow", provider.clone())
        .with_policy(PollPolicy::fixed(ms(100)))
        .with_status_concurrency(2)
        .build();
    // 40 tasks every 100 ms ask for 400 polls a second; the provider
    // answers 40.
    for id in 0..40 {
        tracker.track("slow", &id.to_string()).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        tracker.stats().stretch_percent >= 800,
        "{:?}",
        tracker.stats()
    );
    let (zero, all) = (
        provider.polls_of_zero.load(Ordering::SeqCst),
        provider.polls.load(Ordering::SeqCst),
    );
    let others = (all - zero) / 39;
    // Stretched, each other task is polled about every second; task 0
    // keeps its 100 ms hint, slowed only by its wait for a place.
    assert!(
        zero >= 4 * others,
        "task 0: {zero} polls, others {others} each"
    );
}
