//! A node's tasks as pve-manager and pve-common keep them: the UPID
//! (`PVE::UPID::decode`), the worker's log file ending in `TASK OK` /
//! `TASK WARNINGS: N` / `TASK ERROR: …` (`PVE::RESTEnvironment::fork_worker`),
//! the exit status read back from its last line (`PVE::UPID::read_status`),
//! the *active* file (`/var/log/pve/tasks/active`: running workers, and
//! finished ones until the reaper archives them) and the *index* of
//! archived tasks (`/var/log/pve/tasks/index`, read backwards: the most
//! recently archived first).
//!
//! The simulated reaper archives a task `archive_lag` after its worker ends
//! (0 by default: pvedaemon's SIGCHLD handler runs `active_workers` at once;
//! pvestatd catches up every 10 s for workers whose parent died). Until then
//! the task stays in the active file without an end time, so the task list
//! still reports it `RUNNING` while `/status` already says `stopped`.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use regex::Regex;
use serde_json::{json, Map, Value};

use crate::engine::{SimState, TaskView};

/// `PVE::UPID::decode`'s pattern, verbatim.
fn upid_pattern() -> &'static Regex {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    PATTERN.get_or_init(|| {
        Regex::new(
            r"^UPID:([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$",
        )
        .expect("the UPID pattern is a valid regex")
    })
}

/// The fields of a UPID, as `PVE::UPID::decode` returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub node: String,
    pub pid: u64,
    pub pstart: u64,
    pub starttime: i64,
    pub task_type: String,
    pub id: String,
    pub user: String,
}

/// Decodes a UPID, or `None` where pve-common would say
/// `unable to parse worker upid`.
pub(crate) fn decode(upid: &str) -> Option<Decoded> {
    let c = upid_pattern().captures(upid)?;
    let hex = |i: usize| u64::from_str_radix(c.get(i)?.as_str(), 16).ok();
    Some(Decoded {
        node: c.get(1)?.as_str().to_owned(),
        pid: hex(3)?,
        pstart: hex(4)?,
        starttime: i64::try_from(hex(5)?).ok()?,
        task_type: c.get(6)?.as_str().to_owned(),
        id: c.get(7)?.as_str().to_owned(),
        user: c.get(8)?.as_str().to_owned(),
    })
}

/// `convert_token_task`: a token's tasks are shown as `user` plus `tokenid`.
fn split_token(user: &str) -> (&str, Option<&str>) {
    match user.split_once('!') {
        Some((u, t)) if u.contains('@') && !t.is_empty() => (u, Some(t)),
        _ => (user, None),
    }
}

/// How a task looks on its node at one moment.
#[derive(Debug, Clone)]
pub(crate) struct NodeTask {
    pub upid: String,
    pub fields: Decoded,
    /// The worker process is alive (`read_proc_starttime` matches `pstart`).
    pub running: bool,
    /// The log file's lines, the final `TASK …` line included once written.
    pub log: Vec<String>,
    /// When the worker ended.
    pub ended: Option<DateTime<Utc>>,
    /// Archived into the index (`saved` in the active file).
    pub saved: bool,
    /// Creation order on the node.
    pub order: usize,
}

/// The final line a worker writes, or `None` for one killed too hard to
/// write it (`final_line` attribute set to empty).
pub(crate) fn final_line(v: &TaskView) -> Option<String> {
    if let Some(custom) = v.attrs.get("final_line") {
        return (!custom.is_empty()).then(|| custom.clone());
    }
    Some(match v.state {
        SimState::Succeeded if v.warnings > 0 => format!("TASK WARNINGS: {}", v.warnings),
        SimState::Succeeded => "TASK OK".to_owned(),
        // The worker's SIGTERM handler dies with "received interrupt".
        SimState::Cancelled => "TASK ERROR: received interrupt".to_owned(),
        SimState::Failed => {
            let message = v
                .failure
                .as_ref()
                .map_or("unexpected error", |f| f.message.as_str());
            format!("TASK ERROR: {}", message.replace('\n', " "))
        }
        SimState::Pending | SimState::Running => return None,
    })
}

/// `WARN:` lines for the warnings the script counted but did not write:
/// a worker's `WARNINGS: N` counts the lines `PVE::RESTEnvironment::warn`
/// printed, so a log with fewer would be one no real node writes.
pub(crate) fn missing_warnings(v: &TaskView) -> Vec<String> {
    if v.state != SimState::Succeeded || v.attrs.contains_key("final_line") {
        return Vec::new();
    }
    let written = v.log.iter().filter(|l| l.starts_with("WARN: ")).count();
    // A script may count more warnings than a log file is worth writing.
    (written..(v.warnings as usize).min(10_000))
        .map(|i| format!("WARN: simulated warning {}", i + 1))
        .collect()
}

/// `PVE::UPID::read_status` over the last line of the log.
pub(crate) fn read_status(last: Option<&str>) -> String {
    match last {
        Some("TASK OK") => "OK".to_owned(),
        Some(l) if l.starts_with("TASK ERROR: ") && l.len() > "TASK ERROR: ".len() => {
            l["TASK ERROR: ".len()..].to_owned()
        }
        Some(l) if is_warnings(l.strip_prefix("TASK ").unwrap_or("")) => {
            l["TASK ".len()..].to_owned()
        }
        _ => "unexpected status".to_owned(),
    }
}

fn is_warnings(s: &str) -> bool {
    s.strip_prefix("WARNINGS: ")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `PVE::UPID::normalize_status_type`.
pub(crate) fn status_type(status: Option<&str>) -> &'static str {
    match status {
        None | Some("") => "unknown",
        Some("OK") => "ok",
        Some(s) if is_warnings(s) => "warning",
        Some("unexpected status") => "unknown",
        Some(_) => "error",
    }
}

impl NodeTask {
    /// The task `view` as its node sees it `now`, archived `lag` after its end.
    pub(crate) fn from_view(
        view: &TaskView,
        order: usize,
        now: DateTime<Utc>,
        lag: chrono::Duration,
    ) -> Option<NodeTask> {
        let fields = decode(&view.id)?;
        let running = !view.state.is_finished();
        let mut log = view.log.clone();
        if !running {
            log.extend(missing_warnings(view));
            log.extend(final_line(view));
        }
        let ended = if running { None } else { view.finished_at };
        Some(NodeTask {
            upid: view.id.clone(),
            fields,
            running,
            log,
            ended,
            saved: ended.is_some_and(|e| now >= e + lag),
            order,
        })
    }

    /// The exit status, once stopped.
    pub(crate) fn exitstatus(&self) -> Option<String> {
        (!self.running).then(|| read_status(self.log.last().map(String::as_str)))
    }

    fn base(&self) -> Map<String, Value> {
        let f = &self.fields;
        let (user, tokenid) = split_token(&f.user);
        let mut m = Map::new();
        m.insert("upid".into(), json!(self.upid));
        m.insert("node".into(), json!(f.node));
        m.insert("pid".into(), json!(f.pid));
        m.insert("pstart".into(), json!(f.pstart));
        m.insert("starttime".into(), json!(f.starttime));
        m.insert("type".into(), json!(f.task_type));
        m.insert("id".into(), json!(f.id));
        m.insert("user".into(), json!(user));
        if let Some(t) = tokenid {
            m.insert("tokenid".into(), json!(t));
        }
        m
    }

    /// `read_task_status`'s answer.
    pub(crate) fn status_json(&self) -> Value {
        let mut m = self.base();
        match self.exitstatus() {
            None => {
                m.insert("status".into(), json!("running"));
            }
            Some(e) => {
                m.insert("status".into(), json!("stopped"));
                m.insert("exitstatus".into(), json!(e));
            }
        }
        Value::Object(m)
    }

    /// The user a filter sees (after `convert_token_task`).
    pub(crate) fn filter_user(&self) -> &str {
        split_token(&self.fields.user).0
    }

    /// An entry of the index (`parse_line`): end time and exit status.
    pub(crate) fn archive_entry(&self) -> Value {
        let mut m = self.base();
        if let Some(end) = self.ended {
            m.insert("endtime".into(), json!(end.timestamp()));
        }
        if let Some(e) = self.exitstatus() {
            m.insert("status".into(), json!(e));
        }
        Value::Object(m)
    }

    /// An entry of the active file not yet archived: no end time, `saved`
    /// `"0"`, and `status` set to `RUNNING` after filtering.
    pub(crate) fn active_entry(&self) -> Value {
        let mut m = self.base();
        m.insert("saved".into(), json!("0"));
        m.insert("status".into(), json!("RUNNING"));
        Value::Object(m)
    }

    /// An entry of `/cluster/tasks` (the broadcast task list of
    /// `active_workers`: running workers keep `pid`, finished ones lose it
    /// and carry `endtime` and `status`; `pstart` is dropped from both).
    pub(crate) fn cluster_entry(&self) -> Value {
        let mut m = self.base();
        m.remove("pstart");
        if self.saved {
            m.remove("pid");
            m.insert("saved".into(), json!(1));
            if let Some(end) = self.ended {
                m.insert("endtime".into(), json!(end.timestamp()));
            }
            if let Some(e) = self.exitstatus() {
                m.insert("status".into(), json!(e));
            }
        } else {
            m.insert("saved".into(), json!("0"));
        }
        Value::Object(m)
    }
}

/// `PVE::Tools::dump_logfile($filename, $start, $limit)`: (total, lines).
/// `limit == 0` reads to the end; an empty file gives one `no content`
/// line (an ExtJS workaround); a missing file one `unable to open file`
/// line.
pub(crate) fn dump_log(file: Option<&[String]>, start: u64, limit: u64) -> (usize, Vec<Value>) {
    let Some(lines) = file else {
        return (
            1,
            vec![json!({"n": 1, "t": "unable to open file - No such file or directory"})],
        );
    };
    let read_until_end = limit == 0;
    let mut left = limit;
    let mut out = Vec::new();
    let mut count: u64 = 0;
    for line in lines {
        let skipped = count < start;
        count += 1;
        if skipped {
            continue;
        }
        if !read_until_end {
            if left == 0 {
                continue;
            }
            left -= 1;
        }
        out.push(json!({"n": count, "t": line}));
    }
    if count == 0 {
        count = 1;
        out.push(json!({"n": 1, "t": "no content"}));
    }
    (usize::try_from(count).unwrap_or(usize::MAX), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upids_decode_like_pve_common() {
        let d = decode("UPID:pve1:000AE992:00A21BA7:618C1D55:vzdump:100:root@pam:").unwrap();
        assert_eq!(
            (d.node.as_str(), d.pid, d.id.as_str()),
            ("pve1", 0xAE992, "100")
        );
        assert!(decode("UPID:pve1:000AE992:00A21BA7:618C1D55:aptupdate::root@pam:").is_some());
        for bad in [
            "UPID:nonsense",
            "UPID:pve1:AE992:00A21BA7:618C1D55:vzdump:100:root@pam:",
            "UPID:pve1:000AE992:00A21BA7:618C1D55:vzdump:100:root@pam",
            // The PBS form (with a task counter) is not a PVE UPID.
            "UPID:pbs:000AE992:00A21BA7:00000001:618C1D55:backup:host:root@pam:",
        ] {
            assert!(decode(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn exit_status_comes_from_the_last_line() {
        assert_eq!(read_status(Some("TASK OK")), "OK");
        assert_eq!(read_status(Some("TASK WARNINGS: 3")), "WARNINGS: 3");
        assert_eq!(read_status(Some("TASK ERROR: disk full")), "disk full");
        assert_eq!(read_status(Some("INFO: still going")), "unexpected status");
        assert_eq!(read_status(None), "unexpected status");
        assert_eq!(status_type(Some("WARNINGS: 2")), "warning");
        assert_eq!(status_type(None), "unknown");
        assert_eq!(status_type(Some("unexpected status")), "unknown");
        assert_eq!(status_type(Some("job errors")), "error");
    }

    #[test]
    fn log_dumping_follows_dump_logfile() {
        let lines: Vec<String> = (1..=5).map(|i| format!("l{i}")).collect();
        let (total, page) = dump_log(Some(&lines), 1, 2);
        assert_eq!(total, 5);
        assert_eq!(
            page,
            vec![json!({"n": 2, "t": "l2"}), json!({"n": 3, "t": "l3"})]
        );
        let (_, rest) = dump_log(Some(&lines), 3, 0);
        assert_eq!(rest.len(), 2, "limit=0 reads to the end");
        let (total, none) = dump_log(Some(&[]), 0, 50);
        assert_eq!((total, none), (1, vec![json!({"n": 1, "t": "no content"})]));
        let (total, missing) = dump_log(None, 0, 50);
        assert_eq!(total, 1);
        assert!(missing[0]["t"]
            .as_str()
            .unwrap()
            .starts_with("unable to open file"));
        let (total, past) = dump_log(Some(&lines), 10, 5);
        assert_eq!((total, past.len()), (5, 0));
    }
}
