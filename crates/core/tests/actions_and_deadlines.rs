//! Control actions are sent once, even when the answer is a transient error;
//! the deadline cuts a status request that never answers.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tasktrack_core::{
    async_trait, ActionReceipt, Capabilities, Error, HttpError, PollPolicy, Poller,
    RemediationPolicy, Result, TaskAction, TaskProvider, TaskState, TaskStatus,
};

/// A task that has failed (or runs, for `cancel`) and whose every action
/// answers 503, as a restarting server would.
#[derive(Default)]
struct Flaky {
    running: bool,
    hang_status: bool,
    actions: AtomicU32,
    statuses: AtomicU32,
}

#[derive(Debug, Clone)]
struct Fixed(TaskState);

impl TaskStatus for Fixed {
    fn state(&self) -> TaskState {
        self.0
    }
    fn vendor_state(&self) -> String {
        self.0.to_string()
    }
}

#[async_trait]
impl TaskProvider for Flaky {
    type Id = u32;
    type Status = Fixed;
    fn name(&self) -> &str {
        "flaky"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.with_cancel().with_retry()
    }
    async fn status(&self, _id: &u32) -> Result<Fixed> {
        self.statuses.fetch_add(1, Ordering::SeqCst);
        if self.hang_status {
            std::future::pending::<()>().await;
        }
        Ok(Fixed(if self.running {
            TaskState::Running
        } else {
            TaskState::Failed
        }))
    }
    async fn act(&self, _id: &u32, _action: TaskAction) -> Result<ActionReceipt> {
        self.actions.fetch_add(1, Ordering::SeqCst);
        Err(HttpError::new("flaky", "POST", "/action", 503).into())
    }
}

#[tokio::test(start_paused = true)]
async fn cancel_is_sent_once_even_when_the_answer_is_transient() {
    let provider = Arc::new(Flaky {
        running: true,
        ..Flaky::default()
    });
    let poller: Poller<Flaky> = Poller::new(provider.clone(), PollPolicy::default());
    let err = poller.cancel(&1).await.unwrap_err();
    assert!(err.is_retryable(), "the 503 comes back as it is: {err}");
    assert_eq!(provider.actions.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn remediation_sends_its_retry_once_even_when_the_answer_is_transient() {
    let provider = Arc::new(Flaky::default());
    let poller: Poller<Flaky> =
        Poller::new(provider.clone(), PollPolicy::fixed(Duration::from_secs(1)))
            .with_remediation(RemediationPolicy::retry_up_to(5));
    let err = poller.wait(&1).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(
        provider.actions.load(Ordering::SeqCst),
        1,
        "a retry action that failed is not sent again"
    );
}

#[tokio::test(start_paused = true)]
async fn the_deadline_cuts_a_status_request_that_never_answers() {
    let provider = Arc::new(Flaky {
        hang_status: true,
        ..Flaky::default()
    });
    let poller: Poller<Flaky> = Poller::new(
        provider.clone(),
        PollPolicy::default().with_deadline(Some(Duration::from_secs(5))),
    );
    let started = tokio::time::Instant::now();
    let err = poller.wait(&7).await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    match &err {
        Error::Timeout {
            polls, last_error, ..
        } => {
            assert_eq!(*polls, 1);
            assert!(
                last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("unanswered")),
                "{err}"
            );
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "flaky: gave up waiting for task 7 after 5s and 1 poll; the last poll failed: \
         a status request was still unanswered at the deadline"
    );
}
