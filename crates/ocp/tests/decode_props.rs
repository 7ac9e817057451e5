//! Arbitrary JSON never panics the OCP decoders or the state mapping.
use proptest::prelude::*;
use tasktrack_core::TaskStatus;
use tasktrack_ocp::{BasicTaskInstance, Envelope, Paged, WrappedTaskInstance};

const KEYS: &[&str] = &[
    "data",
    "successful",
    "traceId",
    "status",
    "error",
    "code",
    "message",
    "contents",
    "page",
    "id",
    "name",
    "subtasks",
    "seriesId",
    "operation",
    "upstreams",
    "downstream",
    "startTime",
    "finishTime",
    "prohibitRollback",
    "paralleIdx",
    "runTime",
];

proptest! {
    #[test]
    fn arbitrary_json_never_panics(v in tasktrack_testkit::arbitrary_json(KEYS)) {
        if let Ok(env) = serde_json::from_value::<Envelope<WrappedTaskInstance>>(v.clone()) {
            if let Some(t) = env.data {
                let _ = t.snapshot("ocp", "1");
            }
        }
        if let Ok(env) = serde_json::from_value::<Envelope<Paged<BasicTaskInstance>>>(v) {
            for b in env.data.map(|p| p.contents).unwrap_or_default() {
                let _ = WrappedTaskInstance::from(b).snapshot("ocp", "1");
            }
        }
    }
}
