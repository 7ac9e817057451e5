//! [`ProxmoxProvider`]: Proxmox VE tasks as a tasktrack provider.

use std::collections::{BTreeMap, HashMap};

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use tasktrack_core::paging::slice_page;
use tasktrack_core::{
    ActionReceipt, Capabilities, Error, LogLine, LogRange, PollPolicy, Poller, Result, TaskAction,
    TaskFilter, TaskPage, TaskProvider, TaskStatus,
};

use crate::client::{LogPage, NodeTaskQuery, ProxmoxClient, TaskSource};
use crate::model::{ListedState, ProxmoxLogLine, ProxmoxTask, TaskListEntry};
use crate::product::ProxmoxProduct;
use crate::upid::Upid;

/// Lines fetched per request when reading a whole log.
const LOG_PAGE: u64 = 500;
/// Pages of a log read at most (a million lines): a server that claims an
/// endless log, or pages that never end, stops here.
const MAX_LOG_PAGES: u64 = 2_000;
/// Fallback `status` calls in flight at once.
const FALLBACK_CONCURRENCY: usize = 8;

/// Proxmox VE tasks: `Id` is the [`Upid`], so the node is never asked for
/// twice.
///
/// `status_many` answers many UPIDs with one `GET /nodes/{node}/tasks`
/// (`source=all`, `since` the oldest wanted start) per node, and asks
/// `/status` only for the UPIDs that list did not contain.
#[derive(Debug, Clone)]
pub struct ProxmoxProvider {
    name: String,
    client: ProxmoxClient,
    /// Per running task waited on one by one: how far its log is read
    /// and what it said, so each poll reads only what is new.
    log_progress: std::sync::Arc<std::sync::Mutex<LogPositions>>,
}

/// By UPID: how far its log is read and what it said.
type LogPositions = HashMap<String, LogRead>;

/// What a task's log said up to line `next`.
#[derive(Debug, Clone, Default)]
struct LogRead {
    next: u64,
    percent: Option<f32>,
    warnings: Vec<String>,
}

/// Warning messages kept per task (the count, `WARNINGS: N`, is always
/// exact), and characters kept per message: a log is vendor text of any
/// size.
pub const WARNINGS_KEPT: usize = 50;
const WARNING_CHARS: usize = 1_000;

/// Log lines read per request, and requests per poll at most while a task
/// runs; once it ends with warnings, up to `FINAL_PAGES` more are read for
/// the rest of them.
const PROGRESS_PAGE: u64 = 500;
const PROGRESS_PAGES: usize = 4;
const FINAL_PAGES: usize = 20;
/// Tasks whose log position is remembered at once.
const PROGRESS_TASKS: usize = 10_000;

impl ProxmoxProvider {
    /// A provider over `client`, named `proxmox` (`pbs` for a Proxmox
    /// Backup Server client). Here against the
    /// simulator (`tasktrack-sim`); a real cluster is the same with its URL,
    /// token and CA certificate.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasktrack_core::{PollPolicy, Poller, TaskState};
    /// use tasktrack_proxmox::{ProxmoxClient, ProxmoxCredentials, ProxmoxProvider, Upid};
    /// use tasktrack_sim::{proxmox::Proxmox, SimBuilder, TaskSpec};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sim = SimBuilder::new(Proxmox::new(["pve1"]).with_api_token("root@pam!ci", "s3cret"))
    ///     .start()
    ///     .await?;
    /// let upid: Upid = sim.create_task(TaskSpec::new("vzdump", Duration::from_millis(50))).parse()?;
    ///
    /// let client = ProxmoxClient::builder(sim.base_url(), ProxmoxCredentials::parse_token("root@pam!ci=s3cret")?)
    ///     .build()?;
    /// let poller = Poller::new(ProxmoxProvider::new(client), PollPolicy::fixed(Duration::from_millis(20)));
    /// assert_eq!(poller.wait(&upid).await?.state(), TaskState::Succeeded);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(client: ProxmoxClient) -> Self {
        ProxmoxProvider {
            name: client.product().provider_name().into(),
            client,
            log_progress: Default::default(),
        }
    }

    /// Renames the provider (e.g. one per cluster).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The client.
    pub fn client(&self) -> &ProxmoxClient {
        &self.client
    }

    /// proxmoxer's `Tasks.blocking_status`: polls every `interval` until the
    /// task stops and returns its status, or `None` after `timeout`. Built on
    /// the core [`Poller`], so transient errors are tolerated and permanent
    /// ones returned at once. Prefer 1–3 s intervals (the PVE guide's
    /// advice) over proxmoxer's 10 ms default.
    pub async fn wait_task(
        &self,
        upid: &Upid,
        timeout: Duration,
        interval: Duration,
    ) -> Result<Option<ProxmoxTask>> {
        let policy = PollPolicy::fixed(interval).with_deadline(Some(timeout));
        match Poller::new(self.clone(), policy).wait(upid).await {
            Ok(outcome) => Ok(Some(outcome.status)),
            Err(Error::Timeout { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One log page, with PVE's placeholders resolved: the `unable to open
    /// file` line of an unknown UPID is confirmed with `/status` and becomes
    /// [`Error::NotFound`]; the `no content` line of an empty log becomes no
    /// line.
    async fn log_page(&self, id: &Upid, start: u64, limit: u64) -> Result<LogPage> {
        let page = self.client.task_log(id, start, limit).await?;
        if page.missing_file() {
            // Only a log whose first line happens to read so survives this.
            self.client.task_status(id).await?;
        } else if page.is_placeholder() {
            return Ok(LogPage {
                lines: Vec::new(),
                total: Some(0),
            });
        }
        Ok(page)
    }

    /// The whole log: one `limit=0` request. A server that answers it with
    /// no line while its total says there are some (PVE before `limit=0`
    /// meant "to the end") is read page by page instead, at most as many
    /// pages as the total needs, stopping at a page that adds nothing.
    async fn whole_log(&self, id: &Upid) -> Result<LogPage> {
        let first = self.log_page(id, 0, 0).await?;
        let total = first.total.unwrap_or(0);
        if !first.lines.is_empty() || total == 0 {
            return Ok(first);
        }
        let mut lines: Vec<ProxmoxLogLine> = Vec::new();
        for _ in 0..=(total / LOG_PAGE).min(MAX_LOG_PAGES) {
            let page = self.log_page(id, lines.len() as u64, LOG_PAGE).await?;
            let before = lines.len();
            let last = lines.last().map_or(0, |l| l.n);
            lines.extend(page.lines.into_iter().filter(|l| l.n > last));
            if lines.len() == before || lines.len() as u64 >= total {
                break;
            }
        }
        Ok(LogPage {
            lines,
            total: Some(total),
        })
    }

    async fn node_batch(
        &self,
        node: &str,
        wanted: &[&Upid],
    ) -> Result<HashMap<String, TaskListEntry>> {
        let since = wanted
            .iter()
            .map(|u| u.starttime())
            .min()
            .unwrap_or_default();
        let limit = (wanted.len() as u64 * 4 + 500).min(10_000);
        let query = NodeTaskQuery {
            since: Some(since),
            limit: Some(limit),
            source: Some(TaskSource::All),
            ..NodeTaskQuery::default()
        };
        // Only the wanted entries are decoded and kept, matched by their
        // text as PVE prints it (the list carries every task of the node
        // since the oldest wanted start, most of them not asked for). A
        // wanted UPID written otherwise (lowercase hex) is not matched here
        // and is asked about on its own.
        let wanted: std::collections::HashSet<&str> = wanted.iter().map(|u| u.as_str()).collect();
        let page = self
            .client
            .node_tasks_matching(node, &query, |upid| wanted.contains(upid))
            .await?;
        Ok(page
            .entries
            .into_iter()
            .map(|e| (e.upid.clone(), e))
            .collect())
    }
}

impl ProxmoxProvider {
    fn lock_progress(&self) -> std::sync::MutexGuard<'_, LogPositions> {
        // Plain numbers: a panic elsewhere cannot leave them half-written.
        self.log_progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the log lines written since the last poll, at most `pages`
    /// requests, and returns what the log has said so far. A log that
    /// cannot be read leaves what was known: progress and warning texts
    /// are advice, the status is what counts.
    async fn read_log(&self, id: &Upid, pages: usize) -> LogRead {
        let key = id.to_string();
        let known = self.lock_progress().get(&key).cloned().unwrap_or_default();
        let read = self.read_log_from(id, known, pages).await;
        let mut known = self.lock_progress();
        if known.len() >= PROGRESS_TASKS && !known.contains_key(&key) {
            known.clear();
        }
        known.insert(key, read.clone());
        read
    }

    /// The last read of an ended task's log: from where the polls left
    /// off, and nothing kept for it afterwards.
    async fn read_final_log(&self, id: &Upid, pages: usize) -> LogRead {
        let known = self.forget_log(id).unwrap_or_default();
        self.read_log_from(id, known, pages).await
    }

    fn forget_log(&self, id: &Upid) -> Option<LogRead> {
        self.lock_progress().remove(&id.to_string())
    }

    async fn read_log_from(&self, id: &Upid, mut read: LogRead, pages: usize) -> LogRead {
        for _ in 0..pages {
            let Ok(page) = self.client.task_log(id, read.next, PROGRESS_PAGE).await else {
                break;
            };
            if page.missing_file() || page.is_placeholder() {
                break;
            }
            for line in &page.lines {
                let text = line.t.as_str();
                if let Some(p) = crate::progress::percent_of(text) {
                    read.percent = Some(p);
                } else if let Some(w) = crate::progress::warning_of(text) {
                    if read.warnings.len() < WARNINGS_KEPT {
                        read.warnings.push(w.chars().take(WARNING_CHARS).collect());
                    }
                }
            }
            let last = page.lines.iter().map(|l| l.n).max();
            // `n` counts from 1 and `start` from 0: the next start is the
            // last line's number.
            read.next = last.unwrap_or(read.next).max(read.next);
            if (page.lines.len() as u64) < PROGRESS_PAGE {
                break;
            }
        }
        read
    }

    /// Fills in what the log says: percent while running, the warning
    /// texts once ended with warnings. Other ended tasks read nothing
    /// (a failure's tail is the poller's to read).
    async fn add_log_facts(&self, id: &Upid, status: &mut ProxmoxTask) {
        if status.status == crate::RunState::Running {
            let read = self.read_log(id, PROGRESS_PAGES).await;
            status.log_percent = read.percent;
            status.log_warnings = read.warnings;
            return;
        }
        if status.warnings().is_some_and(|n| n > 0) {
            status.log_warnings = self.read_final_log(id, FINAL_PAGES).await.warnings;
        } else {
            self.forget_log(id);
        }
    }
}

#[async_trait]
impl TaskProvider for ProxmoxProvider {
    type Id = Upid;
    type Status = ProxmoxTask;

    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .with_list()
            .with_logs()
            .with_batch_status()
            .with_cancel()
    }

    /// A UPID of the server's own form: Proxmox Backup Server's carry a
    /// task counter, Proxmox VE's do not, and each server refuses the
    /// other's; this says so before any request.
    fn parse_id(&self, text: &str) -> Result<Upid> {
        let upid: Upid = tasktrack_core::parse_task_id(&self.name, text)?;
        let product = self.client.product();
        let pbs_form = upid.task_counter().is_some();
        if pbs_form != (product == ProxmoxProduct::BackupServer) {
            let form = if pbs_form {
                "a Proxmox Backup Server"
            } else {
                "a Proxmox VE"
            };
            return Err(Error::invalid_input(
                &self.name,
                format!(
                    "{upid} is {form} UPID; this backend is {}",
                    product.display_name()
                ),
            ));
        }
        Ok(upid)
    }

    /// The status, with the percent its log reports while it runs (read
    /// incrementally: one request per poll once caught up). A batch of
    /// statuses ([`status_many`](Self::status_many)) reads no logs of
    /// running tasks: the tracker's one list request per node stays one.
    /// A task that ended with `WARNINGS: N` has its log read once, either
    /// way, for what the warnings said ([`TaskStatus::warning_messages`]).
    async fn status(&self, id: &Upid) -> Result<ProxmoxTask> {
        let mut status = self.client.task_status(id).await?;
        self.add_log_facts(id, &mut status).await;
        Ok(status)
    }

    async fn status_many(&self, ids: &[Upid]) -> Vec<Result<ProxmoxTask>> {
        let mut by_node: BTreeMap<&str, Vec<&Upid>> = BTreeMap::new();
        for id in ids {
            by_node.entry(id.node()).or_default().push(id);
        }
        let lists = futures::future::join_all(
            by_node
                .iter()
                .map(|(node, wanted)| async move { (*node, self.node_batch(node, wanted).await) }),
        )
        .await;
        let mut lists: HashMap<&str, Result<HashMap<String, TaskListEntry>>> =
            lists.into_iter().collect();
        let mut answers: Vec<Option<Result<ProxmoxTask>>> = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            match lists.get_mut(id.node()) {
                // An inconclusive entry (an end time without an exit
                // status) is asked about directly, like a missing one; so
                // is an id asked twice in one batch (its entry was taken).
                Some(Ok(found)) => match found.remove(id.as_str()) {
                    Some(entry) if entry.listed_state() != ListedState::Inconclusive => {
                        answers.push(Some(Ok(entry.into_status())))
                    }
                    _ => {
                        answers.push(None);
                        missing.push(i);
                    }
                },
                // One failed list request fails the ids it covered; falling
                // back to per-task calls during an outage would multiply load.
                Some(Err(e)) => answers.push(Some(Err(e.clone()))),
                None => {
                    answers.push(None);
                    missing.push(i);
                }
            }
        }
        let calls: Vec<_> = missing
            .iter()
            .map(|&i| async move { (i, self.status(&ids[i]).await) })
            .collect();
        let fallbacks: Vec<(usize, Result<ProxmoxTask>)> = futures::stream::iter(calls)
            .buffer_unordered(FALLBACK_CONCURRENCY)
            .collect()
            .await;
        for (i, r) in fallbacks {
            answers[i] = Some(r);
        }
        // A task that ended with warnings is seen ended once; what the
        // warnings said is read then (its log only, once per such task).
        let warned: Vec<usize> = answers
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a {
                Some(Ok(s)) if s.warnings().is_some_and(|n| n > 0) && s.log_warnings.is_empty() => {
                    Some(i)
                }
                _ => None,
            })
            .collect();
        let reads: Vec<(usize, Vec<String>)> =
            futures::stream::iter(warned.into_iter().map(|i| async move {
                (i, self.read_final_log(&ids[i], FINAL_PAGES).await.warnings)
            }))
            .buffer_unordered(FALLBACK_CONCURRENCY)
            .collect()
            .await;
        for (i, warnings) in reads {
            if let Some(Ok(s)) = &mut answers[i] {
                s.log_warnings = warnings;
            }
        }
        answers
            .into_iter()
            .map(|a| {
                a.unwrap_or_else(|| Err(Error::decode("proxmox", "batch status", ".", "no answer")))
            })
            .collect()
    }

    /// [`ProxmoxClient::recent_tasks`] (`GET /cluster/tasks` on Proxmox
    /// VE), filtered here by state, kind and start time. The cursor is an
    /// offset into that list.
    async fn list(&self, filter: &TaskFilter) -> Result<TaskPage<(Upid, ProxmoxTask)>> {
        let entries = self.client.recent_tasks().await?;
        let mut matching = Vec::new();
        for entry in entries {
            let Ok(upid) = entry.upid.parse::<Upid>() else {
                tracing::warn!(upid = %entry.upid, "cluster task list holds a malformed UPID; skipped");
                continue;
            };
            let status = entry.into_status();
            let kind_ok = filter
                .kind
                .as_deref()
                .is_none_or(|k| status.task_type.as_deref() == Some(k));
            let since_ok = filter.since.is_none_or(|s| upid.started_at() >= s);
            if filter.admits_state(status.state()) && kind_ok && since_ok {
                matching.push((upid, status));
            }
        }
        slice_page(&self.name, filter, matching)
    }

    /// Reads the log as PVE serves it: the whole log is one request
    /// (`limit=0` reads to the end); a tail asks for the total first. An
    /// unknown UPID (PVE answers it with one `unable to open file` line) is
    /// [`Error::NotFound`], and an empty log is empty (not PVE's `no
    /// content` placeholder).
    async fn logs(&self, id: &Upid, range: LogRange) -> Result<Vec<LogLine>> {
        let lines = match range {
            LogRange::Range { limit: 0, .. } | LogRange::Tail(0) => return Ok(Vec::new()),
            LogRange::Range { start, limit } => self.log_page(id, start, limit as u64).await?,
            LogRange::Tail(n) => {
                let probe = self.log_page(id, 0, 1).await?;
                match probe.total {
                    Some(total) if total > 0 => {
                        let start = total.saturating_sub(n as u64);
                        self.log_page(id, start, n as u64).await?
                    }
                    _ if probe.lines.is_empty() => probe,
                    _ => {
                        let all = self.whole_log(id).await?;
                        let from = all.lines.len().saturating_sub(n);
                        LogPage {
                            lines: all.lines[from..].to_vec(),
                            total: all.total,
                        }
                    }
                }
            }
            LogRange::All => self.whole_log(id).await?,
        };
        Ok(lines
            .lines
            .into_iter()
            .map(|l| LogLine::new(l.n, l.t))
            .collect())
    }

    /// `Cancel` stops the task (`DELETE /nodes/{node}/tasks/{upid}`); it then
    /// ends as failed with `received interrupt` (the worker's SIGTERM handler).
    async fn act(&self, id: &Upid, action: TaskAction) -> Result<ActionReceipt> {
        match action {
            TaskAction::Cancel => {
                self.client.stop_task(id).await?;
                Ok(ActionReceipt::accepted(action))
            }
            other => Err(Error::unsupported(&self.name, format!("action {other}"))),
        }
    }
}
