#![no_main]
//! Any string: parsing never panics, and what parses displays back exactly
//! and parses again to an equal UPID.
use libfuzzer_sys::fuzz_target;
use tasktrack_proxmox::Upid;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(upid) = text.parse::<Upid>() {
        assert_eq!(upid.to_string(), text);
        let again: Upid = upid.to_string().parse().expect("display output parses");
        assert_eq!(again, upid);
        let _ = (upid.started_at(), upid.vmid(), upid.task_counter());
    }
});
