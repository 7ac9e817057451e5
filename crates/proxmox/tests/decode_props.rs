//! Arbitrary JSON never panics the Proxmox decoders or the state mapping.
use proptest::prelude::*;
use tasktrack_core::TaskStatus;
use tasktrack_proxmox::{decode_log, ProxmoxLogLine, ProxmoxTask, TaskListEntry};

const KEYS: &[&str] = &[
    "upid",
    "status",
    "exitstatus",
    "pid",
    "pstart",
    "starttime",
    "endtime",
    "type",
    "id",
    "user",
    "node",
    "n",
    "t",
    "data",
    "total",
];

proptest! {
    #[test]
    fn arbitrary_json_never_panics(v in tasktrack_testkit::arbitrary_json(KEYS)) {
        if let Ok(s) = serde_json::from_value::<ProxmoxTask>(v.clone()) {
            let _ = s.snapshot("proxmox", "x");
        }
        if let Ok(list) = serde_json::from_value::<Vec<TaskListEntry>>(v.clone()) {
            list.iter().for_each(|e| { let _ = e.to_status().snapshot("proxmox", &e.upid); });
        }
        if let Ok(lines) = serde_json::from_value::<Vec<ProxmoxLogLine>>(v) {
            let _ = decode_log(&lines);
        }
    }
}
