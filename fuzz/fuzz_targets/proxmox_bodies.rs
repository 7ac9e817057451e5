#![no_main]
//! Any body as a PVE status, task list or log: decoding gives a value or an
//! error, and a decoded status maps to a snapshot, without panicking.
use libfuzzer_sys::fuzz_target;
use tasktrack_core::http::decode_json;
use tasktrack_core::TaskStatus;
use tasktrack_proxmox::{decode_log, ProxmoxLogLine, ProxmoxTask, TaskListEntry};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = decode_json::<ProxmoxTask>("proxmox", "status", data) {
        let _ = s.snapshot("proxmox", "x");
        let _ = s.parsed_upid();
    }
    if let Ok(list) = decode_json::<Vec<TaskListEntry>>("proxmox", "list", data) {
        for e in list {
            let _ = e.to_status().snapshot("proxmox", &e.upid);
        }
    }
    if let Ok(lines) = decode_json::<Vec<ProxmoxLogLine>>("proxmox", "log", data) {
        let _ = decode_log(&lines);
    }
});
