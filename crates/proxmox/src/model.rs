//! The Proxmox VE task API's shapes, kept faithful: unknown fields and
//! values are preserved, never rejected.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use tasktrack_core::{Failure, TaskState, TaskStatus};

use crate::upid::Upid;

/// `status` of a task: `running` or `stopped`, or a value this crate does
/// not know yet (kept verbatim).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub enum RunState {
    /// The worker is alive.
    Running,
    /// The worker ended; see `exitstatus`.
    Stopped,
    /// Anything else, kept verbatim.
    Unknown(String),
}

impl From<&str> for RunState {
    fn from(s: &str) -> Self {
        match s {
            "running" => RunState::Running,
            "stopped" => RunState::Stopped,
            other => RunState::Unknown(other.to_owned()),
        }
    }
}

impl From<RunState> for String {
    fn from(s: RunState) -> String {
        s.as_str().to_owned()
    }
}

impl RunState {
    /// The wire value.
    pub fn as_str(&self) -> &str {
        match self {
            RunState::Running => "running",
            RunState::Stopped => "stopped",
            RunState::Unknown(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for RunState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(RunState::from(String::deserialize(d)?.as_str()))
    }
}

/// A finished task's `exitstatus`, with its meaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct ExitStatus(String);

/// What an [`ExitStatus`] means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// `OK`.
    Ok,
    /// `WARNINGS: N`: finished with N warnings, not a failure.
    Warnings(u32),
    /// Anything else: the error text.
    Error,
}

impl From<String> for ExitStatus {
    fn from(s: String) -> Self {
        ExitStatus(s)
    }
}

impl From<ExitStatus> for String {
    fn from(e: ExitStatus) -> String {
        e.0
    }
}

impl ExitStatus {
    /// The text as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What it means.
    pub fn kind(&self) -> ExitKind {
        if self.0 == "OK" {
            return ExitKind::Ok;
        }
        match self
            .0
            .strip_prefix("WARNINGS: ")
            .map(|n| n.trim().parse::<u32>())
        {
            Some(Ok(n)) => ExitKind::Warnings(n),
            _ => ExitKind::Error,
        }
    }
}

/// `GET /nodes/{node}/tasks/{upid}/status`, or a task-list entry turned into
/// the same shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProxmoxTask {
    /// The UPID as the server wrote it.
    #[serde(default)]
    pub upid: Option<String>,
    /// Node.
    #[serde(default)]
    pub node: Option<String>,
    /// Worker pid.
    #[serde(default)]
    pub pid: Option<u64>,
    /// Worker process start.
    #[serde(default)]
    pub pstart: Option<u64>,
    /// Start, epoch seconds.
    #[serde(default)]
    pub starttime: Option<i64>,
    /// End, epoch seconds (task lists only).
    #[serde(default)]
    pub endtime: Option<i64>,
    /// Task type.
    #[serde(default, rename = "type")]
    pub task_type: Option<String>,
    /// Object id.
    #[serde(default)]
    pub id: Option<String>,
    /// Who started it.
    #[serde(default)]
    pub user: Option<String>,
    /// `running` / `stopped`.
    pub status: RunState,
    /// Set once stopped.
    #[serde(default)]
    pub exitstatus: Option<ExitStatus>,
    /// Fields this crate does not model, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
    /// Percent done, read from the task's log by the provider (the status
    /// answer has none).
    #[serde(skip)]
    pub log_percent: Option<f32>,
    /// The `WARN:` lines of the task's log, message only, read by the
    /// provider while it runs and when it ends with `WARNINGS: N` (the
    /// first [`WARNINGS_KEPT`](crate::WARNINGS_KEPT)).
    #[serde(skip)]
    pub log_warnings: Vec<String>,
}

/// One entry of `GET /nodes/{node}/tasks` or `GET /cluster/tasks`.
///
/// What real PVE sends (pve-manager `PVE/API2/Tasks.pm`, `node_tasks`):
/// archived tasks carry `endtime` and `status` = their exit status (`OK`,
/// `WARNINGS: N`, an error text); tasks still in the active file (with
/// `source=active` or `all`) carry no `endtime`, `saved: "0"` and `status:
/// "RUNNING"`, even for a moment after their worker ended, until the reaper
/// archives them. So an entry only says a task ended when it has an
/// `endtime` and an exit status: see [`TaskListEntry::listed_state`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskListEntry {
    /// The UPID.
    pub upid: String,
    /// Node.
    #[serde(default)]
    pub node: Option<String>,
    /// Worker pid (absent for finished tasks of `/cluster/tasks`).
    #[serde(default)]
    pub pid: Option<u64>,
    /// Worker process start.
    #[serde(default)]
    pub pstart: Option<u64>,
    /// Start, epoch seconds.
    #[serde(default)]
    pub starttime: Option<i64>,
    /// End, epoch seconds (archived tasks).
    #[serde(default)]
    pub endtime: Option<i64>,
    /// Task type (`worker_type` on Proxmox Backup Server).
    #[serde(default, rename = "type", alias = "worker_type")]
    pub task_type: Option<String>,
    /// Object id (`worker_id` on Proxmox Backup Server).
    #[serde(default, alias = "worker_id")]
    pub id: Option<String>,
    /// Who started it (the user part, for an API token's tasks).
    #[serde(default)]
    pub user: Option<String>,
    /// The API token that started it (`root@pam!ci` is `user` `root@pam`,
    /// `tokenid` `ci`).
    #[serde(default)]
    pub tokenid: Option<String>,
    /// `RUNNING` for an active task, the exit status text of an archived one.
    #[serde(default)]
    pub status: Option<String>,
    /// Fields this crate does not model (e.g. `saved`), kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// What a task-list entry proves about its task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListedState {
    /// Still in the active list (no end time): running, or ended a moment
    /// ago and not archived yet. Either way, not finished as far as the
    /// list can tell.
    Running,
    /// Archived: ended with this exit status.
    Ended(ExitStatus),
    /// An end time without an exit status: ask `/status`.
    Inconclusive,
}

impl TaskListEntry {
    /// Only an `endtime` with an exit status is evidence that a task ended;
    /// `status: "RUNNING"` (or no status) without one means running.
    pub fn listed_state(&self) -> ListedState {
        let status = self
            .status
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("running"));
        match (self.endtime, status) {
            (Some(_), Some(s)) => ListedState::Ended(ExitStatus(s.to_owned())),
            (Some(_), None) => ListedState::Inconclusive,
            (None, _) => ListedState::Running,
        }
    }

    /// The entry as a status. An inconclusive entry is `stopped` without an
    /// exit status, which maps to [`TaskState::Unknown`], never to a guess.
    pub fn to_status(&self) -> ProxmoxTask {
        self.clone().into_status()
    }

    /// [`to_status`](Self::to_status), moving the entry's fields instead of
    /// copying them (a batch answers thousands of tasks from one list).
    pub fn into_status(self) -> ProxmoxTask {
        let (status, exitstatus) = match self.listed_state() {
            ListedState::Running => (RunState::Running, None),
            ListedState::Ended(e) => (RunState::Stopped, Some(e)),
            ListedState::Inconclusive => (RunState::Stopped, None),
        };
        let mut extra = self.extra;
        if let Some(t) = self.tokenid {
            extra.insert("tokenid".into(), serde_json::Value::String(t));
        }
        ProxmoxTask {
            upid: Some(self.upid),
            node: self.node,
            pid: self.pid,
            pstart: self.pstart,
            starttime: self.starttime,
            endtime: self.endtime,
            task_type: self.task_type,
            id: self.id,
            user: self.user,
            status,
            exitstatus,
            extra,
            log_percent: None,
            log_warnings: Vec::new(),
        }
    }
}

/// One line of `GET /nodes/{node}/tasks/{upid}/log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProxmoxLogLine {
    /// Line number, from 1.
    pub n: u64,
    /// Text.
    pub t: String,
}

/// Joins log lines in `n` order into one text, like proxmoxer's
/// `Tasks.decode_log` (lines can arrive out of order in JSON).
pub fn decode_log(lines: &[ProxmoxLogLine]) -> String {
    let mut sorted: Vec<&ProxmoxLogLine> = lines.iter().collect();
    sorted.sort_by_key(|l| l.n);
    sorted
        .iter()
        .map(|l| l.t.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

impl ProxmoxTask {
    /// The exit status meaning, once stopped.
    pub fn exit_kind(&self) -> Option<ExitKind> {
        self.exitstatus.as_ref().map(ExitStatus::kind)
    }

    /// The parsed UPID, when the server sent a well-formed one.
    pub fn parsed_upid(&self) -> Option<Upid> {
        self.upid.as_deref()?.parse().ok()
    }
}

impl TaskStatus for ProxmoxTask {
    fn progress(&self) -> Option<tasktrack_core::Progress> {
        self.log_percent.map(tasktrack_core::Progress::percent)
    }
    fn state(&self) -> TaskState {
        match (&self.status, self.exit_kind()) {
            (RunState::Running, _) => TaskState::Running,
            (RunState::Stopped, Some(ExitKind::Ok | ExitKind::Warnings(_))) => TaskState::Succeeded,
            (RunState::Stopped, Some(ExitKind::Error)) => TaskState::Failed,
            // Stopped without an exit status, or a status we do not know:
            // keep looking rather than guess.
            (RunState::Stopped, None) | (RunState::Unknown(_), _) => TaskState::Unknown,
        }
    }

    fn vendor_state(&self) -> String {
        match &self.exitstatus {
            Some(e) => format!("{}: {}", self.status.as_str(), e.as_str()),
            None => self.status.as_str().to_owned(),
        }
    }

    fn failure(&self) -> Option<Failure> {
        match (self.state(), &self.exitstatus) {
            (TaskState::Failed, Some(e)) => Some(Failure::new(e.as_str())),
            _ => None,
        }
    }

    fn warning_messages(&self) -> Vec<String> {
        self.log_warnings.clone()
    }
    fn warnings(&self) -> Option<u32> {
        match self.exit_kind() {
            Some(ExitKind::Warnings(n)) => Some(n),
            _ => None,
        }
    }

    fn started_at(&self) -> Option<DateTime<Utc>> {
        self.starttime.and_then(|t| DateTime::from_timestamp(t, 0))
    }

    fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.endtime.and_then(|t| DateTime::from_timestamp(t, 0))
    }

    fn kind(&self) -> Option<String> {
        self.task_type.clone()
    }

    fn title(&self) -> Option<String> {
        let kind = self.task_type.as_deref()?;
        Some(
            match (
                self.id.as_deref().filter(|i| !i.is_empty()),
                self.node.as_deref(),
            ) {
                (Some(id), Some(node)) => format!("{kind} {id} on {node}"),
                (Some(id), None) => format!("{kind} {id}"),
                (None, Some(node)) => format!("{kind} on {node}"),
                (None, None) => kind.to_owned(),
            },
        )
    }

    fn attributes(&self) -> BTreeMap<String, String> {
        let mut a = BTreeMap::new();
        for (k, v) in [
            ("node", &self.node),
            ("user", &self.user),
            ("upid", &self.upid),
        ] {
            if let Some(v) = v {
                a.insert(k.to_owned(), v.clone());
            }
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_meanings() {
        assert_eq!(ExitStatus::from("OK".to_string()).kind(), ExitKind::Ok);
        assert_eq!(
            ExitStatus::from("WARNINGS: 3".to_string()).kind(),
            ExitKind::Warnings(3)
        );
        assert_eq!(
            ExitStatus::from("WARNINGS: x".to_string()).kind(),
            ExitKind::Error
        );
        assert_eq!(
            ExitStatus::from("interrupted by signal".to_string()).kind(),
            ExitKind::Error
        );
    }

    #[test]
    fn state_mapping() {
        let status = |json: &str| serde_json::from_str::<ProxmoxTask>(json).unwrap();
        let s = status(r#"{"status":"running","pid":1}"#);
        assert_eq!(s.state(), TaskState::Running);
        let s = status(r#"{"status":"stopped","exitstatus":"OK"}"#);
        assert_eq!((s.state(), s.warnings()), (TaskState::Succeeded, None));
        let s = status(r#"{"status":"stopped","exitstatus":"WARNINGS: 2"}"#);
        assert_eq!((s.state(), s.warnings()), (TaskState::Succeeded, Some(2)));
        assert_eq!(
            s.snapshot("p", "u").warnings,
            Some(2),
            "visible in the snapshot"
        );
        let s =
            status(r#"{"status":"stopped","exitstatus":"command 'vzdump' failed: exit code 2"}"#);
        assert_eq!(s.state(), TaskState::Failed);
        assert_eq!(
            s.failure().unwrap().message,
            "command 'vzdump' failed: exit code 2"
        );
        let s = status(r#"{"status":"paused","new_field":[1]}"#);
        assert_eq!(s.state(), TaskState::Unknown);
        assert_eq!(s.vendor_state(), "paused");
        assert!(s.extra.contains_key("new_field"));
        let s = status(r#"{"status":"stopped"}"#);
        assert_eq!(
            s.state(),
            TaskState::Unknown,
            "no exit status yet: not a guess"
        );
    }

    #[test]
    fn list_entries_end_only_with_evidence() {
        let entry = |json: &str| serde_json::from_str::<TaskListEntry>(json).unwrap();
        let active = entry(
            r#"{"upid":"UPID:pve1:1:2:3:vzdump:1:root@pam:","status":"RUNNING","saved":"0"}"#,
        );
        assert_eq!(active.listed_state(), ListedState::Running);
        assert_eq!(active.to_status().state(), TaskState::Running);
        assert!(active.to_status().failure().is_none());
        let bare = entry(r#"{"upid":"UPID:pve1:1:2:3:vzdump:1:root@pam:"}"#);
        assert_eq!(bare.to_status().state(), TaskState::Running);
        let done = entry(r#"{"upid":"u","endtime":5,"status":"job errors"}"#);
        assert_eq!(done.to_status().state(), TaskState::Failed);
        let odd = entry(r#"{"upid":"u","endtime":5}"#);
        assert_eq!(odd.listed_state(), ListedState::Inconclusive);
        assert_eq!(odd.to_status().state(), TaskState::Unknown);
        let token =
            entry(r#"{"upid":"u","user":"root@pam","tokenid":"ci","endtime":5,"status":"OK"}"#);
        assert_eq!(token.to_status().state(), TaskState::Succeeded);
        for e in [active, bare, done, odd, token] {
            assert_eq!(e.to_status(), e.clone().into_status());
        }
        let moved = entry(r#"{"upid":"u","tokenid":"ci","saved":"0"}"#).into_status();
        assert_eq!(moved.extra["tokenid"], "ci");
        assert_eq!(moved.extra["saved"], "0");
    }

    #[test]
    fn decode_log_sorts_by_line_number() {
        let lines: Vec<ProxmoxLogLine> =
            serde_json::from_str(r#"[{"n":2,"t":"b"},{"t":"TASK OK","n":3},{"n":1,"t":"a"}]"#)
                .unwrap();
        assert_eq!(decode_log(&lines), "a\nb\nTASK OK");
    }
}
