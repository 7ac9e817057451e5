//! What a Proxmox Backup Server task is on disk: its UPID as
//! `pbs-api-types` writes and parses it (with the task counter and the
//! worker id escaped as a systemd unit name), its log file, and the exit
//! status read back from the log's last line.

use crate::engine::TaskView;
use crate::proxmox::tasks;

/// A UPID as `pbs-api-types` writes and parses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Upid {
    pub(super) node: String,
    pub(super) pid: u64,
    pub(super) pstart: u64,
    pub(super) starttime: i64,
    pub(super) worker_type: String,
    pub(super) worker_id: String,
    pub(super) auth_id: String,
}

/// `proxmox_sys::systemd::escape_unit(s, false)`, as a UPID's worker id is
/// written: `/` becomes `-`, anything but ASCII alphanumerics, `_` and a
/// non-leading `.` becomes `\xNN` (lowercase hex, no padding).
pub(super) fn escape_unit(s: &str) -> String {
    let mut out = String::new();
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str(&format!("\\x{b:0x}")),
            b'_' | b'.' => out.push(b as char),
            b if b.is_ascii_alphanumeric() => out.push(b as char),
            b => out.push_str(&format!("\\x{b:0x}")),
        }
    }
    out
}

/// `proxmox_sys::systemd::unescape_unit`: `-` is `/`, `\xNN` a byte.
fn unescape_unit(s: &str) -> Option<String> {
    let mut bytes = Vec::new();
    let mut rest = s.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        match b {
            b'-' => {
                bytes.push(b'/');
                rest = tail;
            }
            b'\\' => {
                let hex = tail.strip_prefix(b"x")?.get(..2)?;
                bytes.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                rest = &tail[3..];
            }
            b => {
                bytes.push(b);
                rest = tail;
            }
        }
    }
    String::from_utf8(bytes).ok()
}

pub(super) fn parse_upid(text: &str) -> Option<Upid> {
    let fields: Vec<&str> = text
        .strip_prefix("UPID:")?
        .strip_suffix(':')?
        .split(':')
        .collect();
    let [node, pid, pstart, task_no, starttime, worker_type, worker_id, auth_id] = fields[..]
    else {
        return None;
    };
    let hex = |s: &str, width: usize| {
        (s.len() == width)
            .then(|| u64::from_str_radix(s, 16).ok())
            .flatten()
    };
    hex(task_no, 8)?;
    let ok = !node.is_empty() && !worker_type.is_empty() && auth_id.contains('@');
    ok.then_some(())?;
    Some(Upid {
        node: node.to_owned(),
        pid: hex(pid, 8)?,
        pstart: hex(pstart, 8)?,
        starttime: i64::try_from(hex(starttime, 8)?).ok()?,
        worker_type: worker_type.to_owned(),
        worker_id: unescape_unit(worker_id)?,
        auth_id: auth_id.to_owned(),
    })
}

/// The task's log file: what the worker wrote, and its `TASK …` line once
/// it ended (the same lines proxmox-rest-server's `WorkerTask` writes).
pub(super) fn log_file(view: &TaskView) -> Vec<String> {
    let mut log = view.log.clone();
    if view.state.is_finished() {
        log.extend(tasks::missing_warnings(view));
        log.extend(tasks::final_line(view));
    }
    log
}

/// `upid_read_status`: the last line's state, `unknown` without one.
pub(super) fn exit_status(log: &[String]) -> String {
    match log.last().map(String::as_str) {
        Some("TASK OK") => "OK".to_owned(),
        Some(l) if l.starts_with("TASK WARNINGS: ") => l["TASK ".len()..].to_owned(),
        Some(l) if l.starts_with("TASK ERROR: ") => l["TASK ERROR: ".len()..].to_owned(),
        _ => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upids_parse_in_the_pbs_form_only() {
        let u =
            parse_upid("UPID:pbs1:00001234:0001ABCD:00000007:65A1B2C3:backup:store1:root@pam!ci:")
                .unwrap();
        assert_eq!(
            (
                u.node.as_str(),
                u.pid,
                u.worker_id.as_str(),
                u.auth_id.as_str()
            ),
            ("pbs1", 0x1234, "store1", "root@pam!ci")
        );
        for bad in [
            // The PVE form has no task counter.
            "UPID:pve1:000AE992:00A21BA7:618C1D55:vzdump:100:root@pam:",
            "UPID:pbs1:1234:0001ABCD:00000007:65A1B2C3:backup:x:root@pam:",
            "UPID:pbs1:00001234:0001ABCD:00000007:65A1B2C3:backup:x:root@pam",
            "nonsense",
        ] {
            assert!(parse_upid(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn worker_ids_are_escaped_as_systemd_units() {
        assert_eq!(escape_unit("store1:vm/100"), "store1\\x3avm-100");
        assert_eq!(escape_unit(".hidden-name"), "\\x2ehidden\\x2dname");
        for id in ["store1:vm/100", "a_b.c", "ns/x:y"] {
            assert_eq!(unescape_unit(&escape_unit(id)).as_deref(), Some(id));
        }
        assert_eq!(unescape_unit("bad\\x"), None);
    }

    #[test]
    fn exit_status_reads_the_last_line_or_says_unknown() {
        let lines = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(exit_status(&lines(&["x", "TASK OK"])), "OK");
        assert_eq!(exit_status(&lines(&["TASK WARNINGS: 2"])), "WARNINGS: 2");
        assert_eq!(exit_status(&lines(&["TASK ERROR: no space"])), "no space");
        assert_eq!(exit_status(&lines(&["still writing"])), "unknown");
        assert_eq!(exit_status(&[]), "unknown");
    }
}
