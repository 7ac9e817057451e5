//! Every branch of the poll decision, once.

use super::*;
use crate::HttpError;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn policy() -> PollPolicy {
    PollPolicy::default()
        .with_initial_interval(secs(1))
        .with_max_interval(secs(8))
        .with_multiplier(2.0)
        .with_jitter(0.0)
        .with_error_budget(2)
        .with_deadline(Some(secs(60)))
        .with_max_polls(Some(5))
        .with_hint_floor(secs(1))
}

fn snap(state: TaskState, title: &str) -> TaskSnapshot {
    let mut s = TaskSnapshot::new("p", "1", state);
    s.title = Some(title.into());
    s
}

fn transient() -> Error {
    HttpError::new("p", "GET", "/t", 503).into()
}

#[test]
fn the_first_answer_is_a_change_and_a_repeat_is_not() {
    let p = policy();
    let mut c = PollCursor::new(&p, Instant::now());
    assert!(matches!(
        c.observe(&p, Instant::now(), Ok(snap(TaskState::Running, "a"))),
        Next::Changed(_)
    ));
    assert_eq!(c.interval(), secs(1), "a change keeps the interval");
    assert!(matches!(
        c.observe(&p, Instant::now(), Ok(snap(TaskState::Running, "a"))),
        Next::Unchanged
    ));
    assert_eq!(c.interval(), secs(2), "no change backs off");
    match c.observe(&p, Instant::now(), Ok(snap(TaskState::Running, "b"))) {
        Next::Changed(s) => assert_eq!(s.title.as_deref(), Some("b")),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.last_state(), Some(TaskState::Running));
}

#[test]
fn a_resumed_cursor_knows_the_last_answer_without_keeping_it() {
    let p = policy();
    let mut before = snap(TaskState::Running, "a");
    before.steps = vec![
        step("copy", TaskState::Running),
        step("verify", TaskState::Pending),
    ];
    let mut c = PollCursor::resumed(&p, Instant::now(), Some(&before));
    assert_eq!(c.last_state(), Some(TaskState::Running));
    assert!(
        matches!(
            c.observe(&p, Instant::now(), Ok(before.clone())),
            Next::Unchanged
        ),
        "the stored answer again is no change"
    );
    let mut after = before.clone();
    after.steps[1].state = TaskState::Running;
    assert!(
        matches!(c.observe(&p, Instant::now(), Ok(after)), Next::Changed(_)),
        "a nested step state is part of the fingerprint"
    );
}

#[test]
fn a_hint_sets_the_interval_and_is_not_a_change() {
    let p = policy();
    let mut c = PollCursor::new(&p, Instant::now());
    let mut s = snap(TaskState::Running, "a");
    s.poll_hint = Some(secs(5));
    match c.observe(&p, Instant::now(), Ok(s.clone())) {
        Next::Changed(reported) => assert_eq!(reported.poll_hint, None, "hint removed"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.interval(), secs(5));
    s.poll_hint = Some(secs(3));
    assert!(
        matches!(c.observe(&p, Instant::now(), Ok(s)), Next::Unchanged),
        "only the hint moved"
    );
    assert_eq!(c.interval(), secs(3));
    assert!(c.hinted());
    let s = snap(TaskState::Running, "a");
    assert!(matches!(
        c.observe(&p, Instant::now(), Ok(s)),
        Next::Unchanged
    ));
    assert!(
        !c.hinted(),
        "an answer without a hint: the policy's interval"
    );
}

#[test]
fn terminal_answers_stop_changed_or_not() {
    let p = policy();
    let mut c = PollCursor::new(&p, Instant::now());
    let done = snap(TaskState::Succeeded, "a");
    assert!(matches!(
        c.observe(&p, Instant::now(), Ok(done.clone())),
        Next::Terminal { changed: true, .. }
    ));
    assert!(matches!(
        c.observe(&p, Instant::now(), Ok(done)),
        Next::Terminal { changed: false, .. }
    ));
}

#[test]
fn transient_errors_spend_the_budget_then_stop() {
    let p = policy();
    let mut c = PollCursor::new(&p, Instant::now());
    assert!(matches!(
        c.observe(&p, Instant::now(), Err(transient())),
        Next::Retry
    ));
    assert!(c.last_error().unwrap().contains("503"));
    assert!(matches!(
        c.observe(&p, Instant::now(), Err(transient())),
        Next::Retry
    ));
    assert!(
        matches!(
            c.observe(&p, Instant::now(), Err(transient())),
            Next::Stop(_)
        ),
        "budget of 2"
    );
    // A good answer resets the budget and clears the error.
    let mut c = PollCursor::new(&p, Instant::now());
    assert!(matches!(
        c.observe(&p, Instant::now(), Err(transient())),
        Next::Retry
    ));
    assert!(matches!(
        c.observe(&p, Instant::now(), Ok(snap(TaskState::Running, "a"))),
        Next::Changed(_)
    ));
    assert_eq!(c.last_error(), None);
    assert!(matches!(
        c.observe(&p, Instant::now(), Err(transient())),
        Next::Retry
    ));
    assert!(matches!(
        c.observe(&p, Instant::now(), Err(transient())),
        Next::Retry
    ));
}

#[test]
fn a_permanent_error_stops_at_once() {
    let p = policy().with_not_found_grace(Duration::ZERO);
    let mut c = PollCursor::new(&p, Instant::now());
    let e = Error::not_found("p", "1");
    assert!(matches!(
        c.observe(&p, Instant::now(), Err(e)),
        Next::Stop(Error::NotFound { .. })
    ));
    let auth = Error::Auth {
        provider: "p".into(),
        status: 401,
        message: "no".into(),
    };
    assert!(matches!(
        c.observe(&p, Instant::now(), Err(auth)),
        Next::Stop(_)
    ));
}

#[test]
fn a_task_not_found_right_after_tracking_began_gets_a_grace() {
    let p = policy().with_not_found_grace(secs(10));
    let t0 = Instant::now();
    let mut c = PollCursor::new(&p, t0);
    let missing = || Err(Error::not_found("p", "1"));
    assert!(matches!(
        c.observe(&p, t0 + secs(1), missing()),
        Next::Retry
    ));
    assert!(matches!(
        c.observe(&p, t0 + secs(9), missing()),
        Next::Retry
    ));
    assert!(
        matches!(c.observe(&p, t0 + secs(10), missing()), Next::Stop(_)),
        "grace over"
    );
    // Once seen, a task that goes missing has vanished: no grace.
    let mut c = PollCursor::new(&p, t0);
    assert!(matches!(
        c.observe(&p, t0, Ok(snap(TaskState::Running, "a"))),
        Next::Changed(_)
    ));
    assert!(matches!(
        c.observe(&p, t0 + secs(1), missing()),
        Next::Stop(_)
    ));
}

#[test]
fn a_stall_is_reported_once_and_a_change_ends_it() {
    let p = policy().with_stall_after(Some(secs(30)), false);
    let t0 = Instant::now();
    let mut c = PollCursor::new(&p, t0);
    let running = |title: &str| Ok(snap(TaskState::Running, title));
    assert!(matches!(c.observe(&p, t0, running("a")), Next::Changed(_)));
    assert!(matches!(
        c.observe(&p, t0 + secs(20), running("a")),
        Next::Unchanged
    ));
    assert_eq!(c.stall(&p, t0 + secs(20)), None);
    assert_eq!(c.stall(&p, t0 + secs(31)), Some(secs(31)));
    assert_eq!(c.stall(&p, t0 + secs(60)), None, "once per stall");
    assert!(matches!(
        c.observe(&p, t0 + secs(61), running("b")),
        Next::Changed(_)
    ));
    assert_eq!(c.stall(&p, t0 + secs(80)), None);
    assert_eq!(c.stall(&p, t0 + secs(91)), Some(secs(30)), "a new stall");
    let never = policy();
    let mut c = PollCursor::new(&never, t0);
    assert_eq!(c.stall(&never, t0 + secs(1_000_000)), None);
}

fn step(name: &str, state: TaskState) -> crate::Step {
    crate::Step::new(name, name, state)
}

#[test]
fn phase_limits_count_from_entering_the_state_or_step() {
    let p = policy().with_phase_limits(Some(secs(10)), Some(secs(100)), Some(secs(30)));
    let t0 = Instant::now();
    let mut c = PollCursor::new(&p, t0);
    assert_eq!(c.overrun(&p, t0 + secs(1000)), None, "nothing seen yet");
    c.observe(&p, t0, Ok(snap(TaskState::Pending, "q")));
    assert_eq!(c.overrun(&p, t0 + secs(9)), None);
    let why = c.overrun(&p, t0 + secs(10)).unwrap();
    assert!(
        why.contains("pending for 10s") && why.contains("pending_for"),
        "{why}"
    );
    // Running since 5 s; changes of progress do not restart the clock.
    let mut with_steps = snap(TaskState::Running, "a");
    with_steps.steps = vec![
        step("copy", TaskState::Running),
        step("verify", TaskState::Pending),
    ];
    c.observe(&p, t0 + secs(5), Ok(with_steps.clone()));
    with_steps.title = Some("b".into());
    c.observe(&p, t0 + secs(20), Ok(with_steps.clone()));
    assert_eq!(c.overrun(&p, t0 + secs(34)), None);
    let why = c.overrun(&p, t0 + secs(35)).unwrap();
    assert!(why.contains("\"copy\" ran for 30s"), "{why}");
    // The next step gets its own 30 s.
    with_steps.steps = vec![
        step("copy", TaskState::Succeeded),
        step("verify", TaskState::Running),
    ];
    c.observe(&p, t0 + secs(36), Ok(with_steps));
    assert_eq!(c.overrun(&p, t0 + secs(60)), None);
    let why = c.overrun(&p, t0 + secs(105)).unwrap();
    assert!(
        why.contains("running for 1m 40s") || why.contains("running for 100s"),
        "{why}"
    );
    assert_eq!(
        c.overrun(&policy(), t0 + secs(1_000_000)),
        None,
        "no limits, no overrun"
    );
}

#[test]
fn the_deadline_and_the_poll_count_expire_it() {
    let p = policy();
    let t0 = Instant::now();
    let mut c = PollCursor::new(&p, t0);
    assert!(!c.expired(&p, t0 + secs(59)));
    assert_eq!(c.time_left(&p, t0 + secs(50)), Some(secs(10)));
    assert!(c.expired(&p, t0 + secs(60)), "deadline");
    for _ in 0..5 {
        c.begin_poll();
    }
    assert!(c.expired(&p, t0), "max polls");
    let e = c.timeout("p", "1", t0 + secs(3), None);
    assert!(
        matches!(e, Error::Timeout { polls: 5, .. }),
        "the timeout counts the polls: {e}"
    );
    let unbounded = PollPolicy::default()
        .with_deadline(None)
        .with_max_polls(None);
    let c = PollCursor::new(&unbounded, t0);
    assert!(!c.expired(&unbounded, t0 + secs(1_000_000)));
    assert_eq!(c.time_left(&unbounded, t0), None);
}
