//! The erased provider's batch: answers in the caller's order, ids it cannot
//! parse answered as errors in their places.

use std::time::Duration;

use tasktrack_core::{DynTaskProvider, Error, MemoryProvider, TaskScript, TaskState};

#[tokio::test]
async fn a_batch_answers_each_id_in_its_place_and_refuses_the_malformed_ones() {
    let p = MemoryProvider::new("mem");
    let a = p.start(TaskScript::new("a", Duration::from_secs(60)));
    let b = p.start(TaskScript::new("b", Duration::from_secs(60)));
    let ids: Vec<String> = vec![
        "not-a-number".into(),
        a.to_string(),
        "-1".into(),
        "".into(),
        b.to_string(),
        "999999".into(),
        "x".into(),
    ];
    let answers = DynTaskProvider::snapshot_many(&p, &ids).await;
    assert_eq!(answers.len(), ids.len());
    for i in [0, 2, 3, 6] {
        assert!(
            matches!(answers[i], Err(Error::InvalidInput { .. })),
            "{i}: {:?}",
            answers[i]
        );
    }
    let first = answers[1].as_ref().unwrap();
    let second = answers[4].as_ref().unwrap();
    assert_eq!(
        (first.id.as_str(), second.id.as_str()),
        (&*a.to_string(), &*b.to_string())
    );
    assert_eq!(first.kind.as_deref(), Some("a"));
    assert_eq!(second.kind.as_deref(), Some("b"));
    assert_ne!(first.state, TaskState::Succeeded);
    assert!(matches!(answers[5], Err(Error::NotFound { .. })));
}
