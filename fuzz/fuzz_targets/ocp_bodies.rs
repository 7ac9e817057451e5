#![no_main]
//! Any body as an OCP task detail or task list.
use libfuzzer_sys::fuzz_target;
use tasktrack_core::http::decode_json;
use tasktrack_core::TaskStatus;
use tasktrack_ocp::{BasicTaskInstance, Envelope, Paged, WrappedTaskInstance};

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = decode_json::<Envelope<WrappedTaskInstance>>("ocp", "detail", data) {
        if let Some(t) = env.data {
            let _ = t.snapshot("ocp", "1");
            let _ = t.failed_subtasks();
        }
    }
    if let Ok(env) = decode_json::<Envelope<Paged<BasicTaskInstance>>>("ocp", "list", data) {
        for b in env.data.map(|p| p.contents).unwrap_or_default() {
            let _ = WrappedTaskInstance::from(b).snapshot("ocp", "1");
        }
    }
});
