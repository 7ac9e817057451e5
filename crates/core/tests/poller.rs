//! Poller behaviour on a virtual timeline: no real sleeps.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tasktrack_core::{
    async_trait, Clock, Error, Failure, ManualClock, MemoryFault, MemoryProvider, PollPolicy,
    Poller, Result, ScriptOutcome, TaskHandle, TaskProvider, TaskScript, TaskState, TaskStatus,
};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn setup(policy: PollPolicy) -> (ManualClock, Arc<MemoryProvider>, Poller<MemoryProvider>) {
    let clock = ManualClock::new();
    let provider = Arc::new(MemoryProvider::with_clock(
        "memory",
        Arc::new(clock.clone()),
    ));
    let poller = Poller::new(provider.clone(), policy)
        .with_clock(Arc::new(clock.clone()))
        .with_jitter_source(Arc::new(|| 0.5));
    (clock, provider, poller)
}

#[tokio::test]
async fn wait_walks_pending_running_succeeded() {
    let (clock, provider, poller) = setup(PollPolicy::fixed(secs(1)));
    let id = provider.start(TaskScript::new("backup", secs(5)).with_pending_for(secs(2)));
    let states: Vec<TaskState> = poller.watch(&id).map(|r| r.unwrap().state).collect().await;
    assert_eq!(states.first(), Some(&TaskState::Pending));
    assert_eq!(states.last(), Some(&TaskState::Succeeded));
    assert!(states.contains(&TaskState::Running));
    assert_eq!(
        clock.elapsed(),
        secs(7),
        "finished exactly when the script says"
    );

    let id = provider.start(TaskScript::new("backup", secs(3)));
    let outcome = poller.wait(&id).await.unwrap();
    assert_eq!(outcome.state(), TaskState::Succeeded);
    assert_eq!(outcome.polls, 4, "t=0,1,2,3");
    assert_eq!(outcome.elapsed, secs(3));
    assert!(outcome.into_result().is_ok());
}

#[tokio::test]
async fn watch_yields_first_status_before_sleeping_and_only_changes() {
    let (clock, provider, poller) = setup(PollPolicy::fixed(secs(1)));
    let id = provider.start(TaskScript::new("x", secs(100)));
    let mut stream = std::pin::pin!(poller.watch(&id));
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.state, TaskState::Running);
    assert_eq!(
        clock.elapsed(),
        Duration::ZERO,
        "no sleep before the first poll"
    );
    // Progress changes every second for this task, so each poll is a change.
    let second = stream.next().await.unwrap().unwrap();
    assert!(second.percent > first.percent);
}

/// A provider whose status never changes: watch must not repeat it.
struct Constant {
    calls: Mutex<u32>,
    hint: Option<Duration>,
}

#[derive(Debug, Clone)]
struct Still(Option<Duration>, u32);

impl TaskStatus for Still {
    fn state(&self) -> TaskState {
        if self.1 >= 5 {
            TaskState::Succeeded
        } else {
            TaskState::Running
        }
    }
    fn vendor_state(&self) -> String {
        self.state().to_string()
    }
    fn poll_hint(&self) -> Option<Duration> {
        self.0
    }
}

#[async_trait]
impl TaskProvider for Constant {
    type Id = u32;
    type Status = Still;
    fn name(&self) -> &str {
        "constant"
    }
    async fn status(&self, _id: &u32) -> Result<Still> {
        let mut c = self.calls.lock().unwrap();
        *c += 1;
        Ok(Still(self.hint, *c))
    }
}

#[tokio::test]
async fn unchanged_statuses_are_not_repeated_and_backoff_grows() {
    let clock = ManualClock::new();
    let provider = Constant {
        calls: Mutex::new(0),
        hint: None,
    };
    let policy = PollPolicy::default()
        .with_initial_interval(secs(1))
        .with_multiplier(2.0)
        .with_max_interval(secs(4))
        .with_jitter(0.5);
    // Jitter fixed at the top of its range: each sleep is 1.5 x the interval.
    let poller = Poller::new(provider, policy)
        .with_clock(Arc::new(clock.clone()))
        .with_jitter_source(Arc::new(|| 1.0));
    let items: Vec<_> = poller.watch(&1).collect().await;
    assert_eq!(items.len(), 2, "first status and the terminal one only");
    // The first poll is a change (interval stays 1 s); then 2, 4, 4 (capped).
    // Sleeps: (1 + 2 + 4 + 4) * 1.5 = 16.5 s before the 5th poll.
    assert_eq!(clock.elapsed(), Duration::from_millis(16_500));
}

#[tokio::test]
async fn server_hint_is_honoured_within_floor_and_max() {
    let clock = ManualClock::new();
    let provider = Constant {
        calls: Mutex::new(0),
        hint: Some(Duration::from_millis(1)),
    };
    let policy = PollPolicy::fixed(secs(10)).with_hint_floor(Duration::from_millis(300));
    let poller = Poller::new(provider, policy).with_clock(Arc::new(clock.clone()));
    let outcome = poller.wait(&1).await.unwrap();
    assert_eq!(outcome.polls, 5);
    assert_eq!(
        clock.elapsed(),
        Duration::from_millis(1200),
        "4 sleeps at the 300 ms floor"
    );
}

#[tokio::test]
async fn deadline_is_checked_while_running() {
    let (clock, provider, poller) = setup(PollPolicy::fixed(secs(2)).with_deadline(Some(secs(9))));
    let id = provider.start(TaskScript::new("long", secs(100)));
    let err = poller.wait(&id).await.unwrap_err();
    match err {
        Error::Timeout {
            elapsed,
            polls,
            ref id,
            ..
        } => {
            assert_eq!(elapsed, secs(9));
            assert_eq!(polls, 5, "t=0,2,4,6,8");
            assert_eq!(id, "1");
        }
        other => panic!("expected timeout, got {other:?}"),
    }
    assert!(clock.elapsed() <= secs(9), "never sleeps past the deadline");
    let (_c, provider, poller) = setup(PollPolicy::fixed(secs(1)).with_max_polls(Some(3)));
    let id = provider.start(TaskScript::new("long", secs(100)));
    assert!(matches!(
        poller.wait(&id).await,
        Err(Error::Timeout { polls: 3, .. })
    ));
}

#[tokio::test]
async fn transient_errors_are_tolerated_up_to_the_budget() {
    let (_clock, provider, poller) = setup(PollPolicy::fixed(secs(1)).with_error_budget(3));
    let id = provider.start(TaskScript::new("x", secs(2)));
    provider.fail_next(3, MemoryFault::Unavailable);
    let outcome = poller.wait(&id).await.unwrap();
    assert_eq!(outcome.state(), TaskState::Succeeded);
    assert_eq!(outcome.polls, 4, "three 503s then one answer at t=3");

    let id = provider.start(TaskScript::new("x", secs(2)));
    provider.fail_next(2, MemoryFault::Transport);
    provider.fail_next(2, MemoryFault::Unavailable);
    let before = provider.status_calls();
    let err = poller.wait(&id).await.unwrap_err();
    assert!(
        err.is_retryable(),
        "gives up with the transient error: {err}"
    );
    assert_eq!(
        provider.status_calls() - before,
        4,
        "budget 3 + the one past it"
    );
}

#[tokio::test]
async fn permanent_errors_stop_at_once() {
    let (_clock, provider, poller) = setup(PollPolicy::fixed(secs(1)).with_error_budget(10));
    let id = provider.start(TaskScript::new("x", secs(5)));
    provider.fail_next(1, MemoryFault::Unauthorized);
    let before = provider.status_calls();
    let err = poller.wait(&id).await.unwrap_err();
    assert!(matches!(err, Error::Auth { status: 401, .. }), "{err:?}");
    assert_eq!(provider.status_calls() - before, 1);

    let err = poller.wait(&999).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn failure_carries_code_message_and_log_tail() {
    let (_clock, provider, poller) = setup(PollPolicy::fixed(secs(1)).with_log_tail_lines(2));
    let id = provider.start(
        TaskScript::new("migrate", secs(3))
            .with_log_lines(["copying disk", "disk full at 80%"])
            .with_outcome(ScriptOutcome::failed("E_NOSPC", "no space left")),
    );
    let outcome = poller.wait(&id).await.unwrap();
    assert_eq!(outcome.state(), TaskState::Failed);
    let tail: Vec<_> = outcome.log_tail.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(tail, ["disk full at 80%", "TASK ERROR: no space left"]);
    match outcome.into_result().unwrap_err() {
        Error::TaskFailed {
            failure,
            log_tail,
            cancelled,
            provider,
            id,
        } => {
            assert_eq!(failure, Failure::new("no space left").with_code("E_NOSPC"));
            assert_eq!(log_tail.len(), 2);
            assert!(!cancelled);
            assert_eq!((provider.as_str(), id.as_str()), ("memory", "1"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn cancel_through_the_poller() {
    let (clock, provider, poller) = setup(PollPolicy::fixed(secs(1)));
    let id = provider.start(TaskScript::new("x", secs(10)));
    clock.advance(secs(2));
    poller.cancel(&id).await.unwrap();
    let outcome = poller.wait(&id).await.unwrap();
    assert_eq!(outcome.state(), TaskState::Cancelled);
    assert!(matches!(
        outcome.into_result(),
        Err(Error::TaskFailed {
            cancelled: true,
            ..
        })
    ));

    let unsupported = Poller::new(
        Constant {
            calls: Mutex::new(0),
            hint: None,
        },
        PollPolicy::default(),
    );
    assert!(matches!(
        unsupported.cancel(&1).await,
        Err(Error::Unsupported { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn dropping_watch_or_wait_stops_polling() {
    let provider = Arc::new(MemoryProvider::new("memory"));
    let id = provider.start(TaskScript::new("x", secs(1000)));
    let poller: Poller<MemoryProvider> = Poller::new(provider.clone(), PollPolicy::fixed(secs(1)));

    let mut stream = Box::pin(poller.watch(&id));
    stream.next().await.unwrap().unwrap();
    stream.next().await.unwrap().unwrap();
    drop(stream);
    let calls = provider.status_calls();
    tokio::time::sleep(secs(60)).await;
    assert_eq!(
        provider.status_calls(),
        calls,
        "no poll after the stream is dropped"
    );

    let waiting = tokio::spawn({
        let poller = poller.clone();
        async move { poller.wait(&id).await }
    });
    tokio::time::sleep(Duration::from_millis(5500)).await;
    waiting.abort();
    let _ = waiting.await;
    let calls_after_abort = provider.status_calls();
    assert_eq!(calls_after_abort - calls, 6, "t=0..5");
    tokio::time::sleep(secs(60)).await;
    assert_eq!(provider.status_calls(), calls_after_abort);
}

#[tokio::test]
async fn resume_from_a_saved_handle() {
    let (_clock, provider, poller) = setup(PollPolicy::fixed(secs(1)));
    let id = provider.start(TaskScript::new("x", secs(4)));
    let saved = serde_json::to_string(&TaskHandle::new("memory", &id)).unwrap();
    // ... the process restarts ...
    let handle: TaskHandle = serde_json::from_str(&saved).unwrap();
    assert_eq!(handle.typed_id::<u64>().unwrap(), id);
    let outcome = poller.resume(&handle).await.unwrap();
    assert_eq!(outcome.state(), TaskState::Succeeded);
    let mut bad = handle.clone();
    bad.id = "not-a-number".into();
    assert!(matches!(
        poller.resume(&bad).await,
        Err(Error::InvalidInput { .. })
    ));
}

#[test]
fn manual_clock_is_a_clock() {
    fn takes(_: &dyn Clock) {}
    takes(&ManualClock::new());
}
