//! Arbitrary JSON never panics the DCS decoders or the state derivation.
use proptest::prelude::*;
use tasktrack_core::TaskStatus;
use tasktrack_dcs::{BackgroundTaskList, DcsTask, DcsTaskId, DcsTaskProgress};

const KEYS: &[&str] = &[
    "progress",
    "remain_time",
    "step_details",
    "step_id",
    "step_name",
    "step_status",
    "begin_time",
    "end_time",
    "error_code",
    "sub_step_details",
    "sub_step_status",
    "detail",
    "task_count",
    "tasks",
    "id",
    "name",
    "details",
    "status",
    "created_at",
];

proptest! {
    #[test]
    fn arbitrary_json_never_panics(v in tasktrack_testkit::arbitrary_json(KEYS)) {
        if let Ok(p) = serde_json::from_value::<DcsTaskProgress>(v.clone()) {
            let task = DcsTask { id: DcsTaskId::new("i", "t"), progress: Some(p), background: None };
            let _ = task.snapshot("dcs", "i/t");
        }
        if let Ok(list) = serde_json::from_value::<BackgroundTaskList>(v) {
            for b in list.tasks_with_defaults() {
                let _ = DcsTask { id: DcsTaskId::new("i", "t"), progress: None, background: Some(b) }.snapshot("dcs", "i/t");
            }
        }
    }
}
