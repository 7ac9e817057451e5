#![no_main]
//! Any body as a KPS list or task, or a DCS progress or task list.
use libfuzzer_sys::fuzz_target;
use tasktrack_core::http::decode_json;
use tasktrack_core::TaskStatus;
use tasktrack_dcs::{BackgroundTaskList, DcsTask, DcsTaskId, DcsTaskProgress};
use tasktrack_kps::{FailedTask, KeypairTask, RunningTask, TaskList};

fuzz_target!(|data: &[u8]| {
    let _ = decode_json::<TaskList<FailedTask>>("kps", "failed", data);
    let _ = decode_json::<TaskList<RunningTask>>("kps", "running", data);
    if let Ok(t) = decode_json::<KeypairTask>("kps", "task", data) {
        let _ = (t.task_status.phase(), t.task_status.operation());
    }
    if let Ok(p) = decode_json::<DcsTaskProgress>("dcs", "progress", data) {
        let task = DcsTask { id: DcsTaskId::new("i", "t"), progress: Some(p), background: None };
        let _ = task.snapshot("dcs", "i/t");
    }
    if let Ok(list) = decode_json::<BackgroundTaskList>("dcs", "list", data) {
        for b in list.tasks_with_defaults() {
            let task = DcsTask { id: DcsTaskId::new("i", b.id.clone()), progress: None, background: Some(b) };
            let _ = task.snapshot("dcs", "i/t");
        }
    }
});
