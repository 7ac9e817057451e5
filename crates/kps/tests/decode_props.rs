//! Arbitrary JSON never panics the KPS decoders.
use proptest::prelude::*;
use tasktrack_kps::{FailedTask, KeypairTask, RunningTask, TaskList};

const KEYS: &[&str] = &[
    "total",
    "tasks",
    "task_id",
    "operate_type",
    "task_time",
    "task_error_code",
    "task_error_msg",
    "server_name",
    "server_id",
    "keypair_name",
    "task_status",
];

proptest! {
    #[test]
    fn arbitrary_json_never_panics(v in tasktrack_testkit::arbitrary_json(KEYS)) {
        let _ = serde_json::from_value::<TaskList<FailedTask>>(v.clone());
        let _ = serde_json::from_value::<TaskList<RunningTask>>(v.clone());
        if let Ok(t) = serde_json::from_value::<KeypairTask>(v) {
            let _ = (t.task_status.phase(), t.task_status.operation());
        }
    }
}
