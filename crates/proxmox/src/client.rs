//! [`ProxmoxClient`]: the Proxmox VE task endpoints over the core HTTP layer.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use tasktrack_core::http::{
    encode_segment, ClientOptions, ConfigureHttp, ErrorAnswer, ErrorBodyParser, HttpClient,
    HttpRequest, VendorError,
};
use tasktrack_core::{Error, Result};
use tracing::Instrument;

use crate::auth::{ProxmoxCredentials, PveAuth};
use crate::model::{ProxmoxLogLine, ProxmoxTask, TaskListEntry};
use crate::product::ProxmoxProduct;
use crate::upid::Upid;

/// PVE's error answers (pve-http-server `AnyEvent.pm`, `Formatter/Standard.pm`):
/// the status line's reason phrase holds the message's first line
/// (`400 Parameter verification failed.`, `401 Authentication failed!`);
/// the JSON body is `{"data": null}`, since libpve-http-server 5.2 with the
/// full `message`, and with an `errors` object per parameter on 400s; 401s
/// have no body at all, and server-level errors have the message as a plain
/// text body. Each distinct part is said once.
#[derive(Debug, Clone, Copy, Default)]
pub struct PveErrors;

impl ErrorBodyParser for PveErrors {
    fn parse(&self, answer: &ErrorAnswer<'_>) -> VendorError {
        #[derive(Deserialize)]
        struct Body {
            #[serde(default)]
            errors: Option<BTreeMap<String, serde_json::Value>>,
            #[serde(default)]
            message: Option<String>,
        }
        let mut parts: Vec<String> = Vec::new();
        let mut push = |part: &str| {
            let part = part.trim();
            let known = parts
                .iter()
                .any(|p| p.trim_end_matches('.') == part.trim_end_matches('.'));
            if !part.is_empty() && !known {
                parts.push(part.to_owned());
            }
        };
        if let Some(reason) = answer.reason {
            push(reason);
        }
        match serde_json::from_slice::<Body>(answer.body) {
            Ok(body) => {
                if let Some(m) = &body.message {
                    push(m);
                }
                for (param, msg) in body.errors.unwrap_or_default() {
                    let msg = msg
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| msg.to_string());
                    push(&format!("{param}: {}", msg.trim()));
                }
            }
            // `error()` writes the message itself as the body.
            Err(_) if !answer.body.is_empty() && answer.body.len() <= 512 => {
                let text = String::from_utf8_lossy(answer.body);
                if !text.trim_start().starts_with('<') {
                    push(text.lines().next().unwrap_or_default());
                }
            }
            Err(_) => {}
        }
        VendorError::new(None, (!parts.is_empty()).then(|| parts.join("; ")))
    }
}

/// Which tasks `GET /nodes/{node}/tasks` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskSource {
    /// Finished tasks (the server's default).
    Archive,
    /// Running tasks.
    Active,
    /// Both.
    All,
}

impl TaskSource {
    fn as_str(self) -> &'static str {
        match self {
            TaskSource::Archive => "archive",
            TaskSource::Active => "active",
            TaskSource::All => "all",
        }
    }
}

/// The filters of `GET /nodes/{node}/tasks`; `None` leaves the server default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeTaskQuery {
    /// Offset.
    pub start: Option<u64>,
    /// Page size (server default 50).
    pub limit: Option<u64>,
    /// Only tasks started at or after this epoch second.
    pub since: Option<i64>,
    /// Only tasks started before this epoch second.
    pub until: Option<i64>,
    /// Comma-separated states (`ok`, `warning`, `error`, `unknown`).
    pub statusfilter: Option<String>,
    /// Only this task type.
    pub typefilter: Option<String>,
    /// Only this user.
    pub userfilter: Option<String>,
    /// Only this VM id.
    pub vmid: Option<u32>,
    /// Only failed tasks.
    pub errors: bool,
    /// Archive, active or all.
    pub source: Option<TaskSource>,
}

/// A page of a task list.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskListPage {
    /// Entries.
    pub entries: Vec<TaskListEntry>,
    /// Total matching entries, when the server says.
    pub total: Option<u64>,
}

/// A page of a task log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    /// Lines, sorted by `n`.
    pub lines: Vec<ProxmoxLogLine>,
    /// Lines in the whole log, when the server says (PVE leaves `total` out
    /// when it is 0).
    pub total: Option<u64>,
}

/// What `dump_logfile` answers for a log file it cannot open.
const UNOPENABLE: &str = "unable to open file - ";

impl LogPage {
    /// True when the page is pve-common's answer for a log file the node
    /// does not have (an unknown UPID, or the wrong node): one line
    /// `unable to open file - …` and a total of 1. A real log could start
    /// with that text, so callers confirm with `/status` before calling the
    /// task unknown.
    pub fn missing_file(&self) -> bool {
        self.total.is_none_or(|t| t == 1)
            && matches!(self.lines.as_slice(), [only] if only.n == 1 && only.t.starts_with(UNOPENABLE))
    }

    /// True when the page is the `no content` line PVE sends for an empty
    /// log (an ExtJS workaround), not a line the task wrote.
    pub fn is_placeholder(&self) -> bool {
        self.total.is_none_or(|t| t == 1)
            && matches!(self.lines.as_slice(), [only] if only.n == 1 && only.t == "no content")
    }
}

/// PVE's answer wrapper: `{"data": …, "total": n}`.
#[derive(Deserialize)]
pub(crate) struct Envelope<T> {
    pub(crate) data: T,
    #[serde(default)]
    pub(crate) total: Option<u64>,
}

/// Builds a [`ProxmoxClient`].
#[derive(Debug)]
pub struct ProxmoxClientBuilder {
    base: String,
    product: ProxmoxProduct,
    credentials: ProxmoxCredentials,
    options: ClientOptions,
}

impl ConfigureHttp for ProxmoxClientBuilder {
    fn client_options_mut(&mut self) -> &mut ClientOptions {
        &mut self.options
    }
}

impl ProxmoxClientBuilder {
    /// Which server this is (default Proxmox VE); see [`ProxmoxProduct`].
    pub fn with_product(mut self, product: ProxmoxProduct) -> Self {
        self.product = product;
        self
    }

    /// Builds the client. No request is made yet.
    pub fn build(self) -> Result<ProxmoxClient> {
        let product = self.product;
        let auth = Arc::new(PveAuth::new(product, self.credentials));
        let http = HttpClient::builder(product.provider_name(), api_base(&self.base))
            .with_options(self.options)
            .with_auth(auth.clone())
            .with_error_parser(Arc::new(PveErrors))
            .build()?;
        Ok(ProxmoxClient {
            http,
            auth,
            product,
        })
    }
}

/// `https://host:8006` → `https://host:8006/api2/json` (kept when given).
fn api_base(base: &str) -> String {
    let trimmed = base.trim_end_matches('/');
    if trimmed.ends_with("/api2/json") {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/api2/json")
    }
}

/// A Proxmox VE (or Proxmox Backup Server) API client for the task
/// endpoints. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ProxmoxClient {
    http: HttpClient,
    auth: Arc<PveAuth>,
    product: ProxmoxProduct,
}

/// PVE answers a well-formed UPID it has no log file for with
/// `400 Parameter verification failed.` and `errors.upid = "no such task"`
/// (pve-manager `PVE/API2/Tasks.pm`, `read_task_status` / `stop_task`), and
/// one it cannot parse (the PBS form, say) with `unable to parse worker
/// upid`.
fn not_found_for(product: ProxmoxProduct, upid: &Upid, e: Error) -> Error {
    let provider = product.provider_name();
    match &e {
        Error::Http(h) if h.status == 400 => {
            let message = h.vendor_message.as_deref().unwrap_or_default();
            if message.contains("no such task") {
                return Error::not_found(provider, format!("task {upid} on node {}", upid.node()));
            }
            if message.contains("unable to parse worker upid") {
                return Error::invalid_input(
                    provider,
                    format!("the server cannot parse the UPID {upid}; a Proxmox Backup Server UPID needs a PBS backend"),
                );
            }
            e
        }
        Error::NotFound { .. } => {
            Error::not_found(provider, format!("task {upid} on node {}", upid.node()))
        }
        _ => e,
    }
}

impl ProxmoxClient {
    /// A client for `base_url` (`https://host:8006`, with or without
    /// `/api2/json`).
    pub fn builder(
        base_url: impl Into<String>,
        credentials: ProxmoxCredentials,
    ) -> ProxmoxClientBuilder {
        ProxmoxClientBuilder {
            base: base_url.into(),
            product: ProxmoxProduct::VirtualEnvironment,
            credentials,
            options: ClientOptions::default(),
        }
    }

    /// A client for a Proxmox Backup Server at `base_url`
    /// (`https://host:8007`): [`builder`](Self::builder) with
    /// [`ProxmoxProduct::BackupServer`].
    pub fn pbs_builder(
        base_url: impl Into<String>,
        credentials: ProxmoxCredentials,
    ) -> ProxmoxClientBuilder {
        Self::builder(base_url, credentials).with_product(ProxmoxProduct::BackupServer)
    }

    /// Which server this client speaks to.
    pub fn product(&self) -> ProxmoxProduct {
        self.product
    }

    fn task_path(&self, upid: &Upid, tail: &str) -> String {
        format!(
            "/nodes/{}/tasks/{}{tail}",
            encode_segment(self.product.path_node(upid.node())),
            encode_segment(upid.as_str())
        )
    }

    /// The underlying HTTP client.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// Logs in now (password credentials); otherwise the first request does.
    pub async fn login(&self) -> Result<()> {
        self.auth.login(&self.http).await
    }

    async fn get<T: DeserializeOwned>(&self, req: HttpRequest, what: &str) -> Result<Envelope<T>> {
        self.http.send_json(req, what).await
    }

    /// `GET /nodes/{node}/tasks/{upid}/status`.
    pub async fn task_status(&self, upid: &Upid) -> Result<ProxmoxTask> {
        let span = tracing::debug_span!(
            "pve_task_status",
            node = upid.node(),
            upid = %upid,
            vmid = upid.vmid(),
            exitstatus = tracing::field::Empty,
        );
        async {
            let env: Envelope<ProxmoxTask> = self
                .get(
                    HttpRequest::get(self.task_path(upid, "/status")),
                    "task status",
                )
                .await
                .map_err(|e| not_found_for(self.product, upid, e))?;
            if let Some(e) = &env.data.exitstatus {
                tracing::Span::current().record("exitstatus", e.as_str());
            }
            if self.product == ProxmoxProduct::BackupServer
                && env
                    .data
                    .exitstatus
                    .as_ref()
                    .is_some_and(|e| e.as_str() == "unknown")
            {
                self.confirm_pbs_task(upid).await?;
            }
            Ok(env.data)
        }
        .instrument(span)
        .await
    }

    /// PBS answers a UPID it never ran as `stopped` with exit status
    /// `unknown` (`upid_read_status` failing falls back to it), as it does
    /// a worker that died without its last line. Only the first has no log
    /// file, and reading it fails with `No such file or directory`.
    async fn confirm_pbs_task(&self, upid: &Upid) -> Result<()> {
        match self.task_log(upid, 0, 1).await {
            Err(Error::Http(h))
                if h.status == 400
                    && h.vendor_message
                        .as_deref()
                        .is_some_and(|m| m.contains("No such file or directory")) =>
            {
                Err(Error::not_found(
                    self.product.provider_name(),
                    format!("task {upid}"),
                ))
            }
            // A log that cannot be read for another reason leaves the
            // status as the server gave it.
            _ => Ok(()),
        }
    }

    /// `GET /nodes/{node}/tasks/{upid}/log?start=&limit=`: `limit` lines
    /// from line `start` (0-based). As on PVE, `limit = 0` means *to the
    /// end of the log*, not zero lines.
    ///
    /// The page is what the server sent, with two of pve-common's
    /// `dump_logfile` artefacts made explicit: a UPID the node has no log
    /// file for answers `200` with the single line `unable to open file -
    /// …` (see [`LogPage::missing_file`]), and an empty log answers the
    /// single line `no content` (see [`LogPage::is_placeholder`]).
    pub async fn task_log(&self, upid: &Upid, start: u64, limit: u64) -> Result<LogPage> {
        let req = HttpRequest::get(self.task_path(upid, "/log"))
            .with_query("start", self.product.log_start(start))
            .with_query("limit", limit);
        let span = tracing::debug_span!("pve_task_log", node = upid.node(), upid = %upid, vmid = upid.vmid());
        let env: Envelope<Vec<ProxmoxLogLine>> =
            self.get(req, "task log")
                .instrument(span)
                .await
                .map_err(|e| not_found_for(self.product, upid, e))?;
        let mut lines = env.data;
        lines.sort_by_key(|l| l.n);
        Ok(LogPage {
            lines,
            total: env.total,
        })
    }

    /// `GET /nodes/{node}/tasks` with every documented filter. On Proxmox
    /// Backup Server the node is `localhost` whatever is given, `source` is
    /// sent as PBS has it (`running=1` for active tasks only; archived and
    /// active tasks are listed together otherwise) and `vmid` is refused.
    pub async fn node_tasks(&self, node: &str, q: &NodeTaskQuery) -> Result<TaskListPage> {
        let req = self.node_tasks_request(node, q)?;
        let span = tracing::debug_span!("pve_node_tasks", node);
        let env: Envelope<Vec<TaskListEntry>> =
            self.get(req, "node task list").instrument(span).await?;
        Ok(TaskListPage {
            entries: env.data,
            total: env.total,
        })
    }

    /// [`node_tasks`](Self::node_tasks) with only the entries whose UPID
    /// `keep` admits decoded and returned; the others are read only as far
    /// as their `upid`, and one without a string `upid` is passed over.
    pub async fn node_tasks_matching(
        &self,
        node: &str,
        q: &NodeTaskQuery,
        keep: impl Fn(&str) -> bool,
    ) -> Result<TaskListPage> {
        let req = self.node_tasks_request(node, q)?;
        let span = tracing::debug_span!("pve_node_tasks", node);
        let answer = self.http.send(req).instrument(span).await?;
        crate::list_decode::entries_matching(self.product.provider_name(), &answer.body, keep)
    }

    fn node_tasks_request(&self, node: &str, q: &NodeTaskQuery) -> Result<HttpRequest> {
        match self.product {
            ProxmoxProduct::VirtualEnvironment => Ok(self.pve_node_tasks(node, q)),
            ProxmoxProduct::BackupServer => self.pbs_node_tasks(q),
        }
    }

    fn pve_node_tasks(&self, node: &str, q: &NodeTaskQuery) -> HttpRequest {
        HttpRequest::get(format!("/nodes/{}/tasks", encode_segment(node)))
            .with_query_opt("start", q.start)
            .with_query_opt("limit", q.limit)
            .with_query_opt("since", q.since)
            .with_query_opt("until", q.until)
            .with_query_opt("statusfilter", q.statusfilter.as_ref())
            .with_query_opt("typefilter", q.typefilter.as_ref())
            .with_query_opt("userfilter", q.userfilter.as_ref())
            .with_query_opt("vmid", q.vmid)
            .with_query_opt("errors", q.errors.then_some(1))
            .with_query_opt("source", q.source.map(TaskSource::as_str))
    }

    /// proxmox-backup `src/api2/node/tasks.rs` `list_tasks`: `statusfilter`
    /// is an array (one parameter per value), and unknown parameters are
    /// refused by its schema, so only what PBS has is sent.
    fn pbs_node_tasks(&self, q: &NodeTaskQuery) -> Result<HttpRequest> {
        if q.vmid.is_some() {
            return Err(Error::invalid_input(
                self.product.provider_name(),
                "Proxmox Backup Server task lists have no vmid filter",
            ));
        }
        let mut req = HttpRequest::get("/nodes/localhost/tasks")
            .with_query_opt("start", q.start)
            .with_query_opt("limit", q.limit)
            .with_query_opt("since", q.since)
            .with_query_opt("until", q.until)
            .with_query_opt("typefilter", q.typefilter.as_ref())
            .with_query_opt("userfilter", q.userfilter.as_ref())
            .with_query_opt("errors", q.errors.then_some(1))
            .with_query_opt(
                "running",
                (q.source == Some(TaskSource::Active)).then_some(1),
            );
        for state in q.statusfilter.iter().flat_map(|s| s.split(',')) {
            if !state.trim().is_empty() {
                req = req.with_query("statusfilter", state.trim());
            }
        }
        Ok(req)
    }

    /// Recent tasks: `GET /cluster/tasks` on Proxmox VE (the whole
    /// cluster's), the newest 1,000 of `GET /nodes/localhost/tasks` on
    /// Proxmox Backup Server (which has no cluster).
    pub async fn recent_tasks(&self) -> Result<Vec<TaskListEntry>> {
        match self.product {
            ProxmoxProduct::VirtualEnvironment => self.cluster_tasks().await,
            ProxmoxProduct::BackupServer => {
                let query = NodeTaskQuery {
                    limit: Some(1000),
                    ..NodeTaskQuery::default()
                };
                Ok(self.node_tasks("localhost", &query).await?.entries)
            }
        }
    }

    /// `GET /cluster/tasks`: recent tasks of the whole cluster (Proxmox VE).
    pub async fn cluster_tasks(&self) -> Result<Vec<TaskListEntry>> {
        let env: Envelope<Vec<TaskListEntry>> = self
            .get(HttpRequest::get("/cluster/tasks"), "cluster task list")
            .await?;
        Ok(env.data)
    }

    /// `DELETE /nodes/{node}/tasks/{upid}`: stops a running task. Sent once,
    /// never retried.
    pub async fn stop_task(&self, upid: &Upid) -> Result<()> {
        let span = tracing::info_span!("pve_stop_task", node = upid.node(), upid = %upid, vmid = upid.vmid());
        self.http
            .send(HttpRequest::delete(self.task_path(upid, "")))
            .instrument(span)
            .await
            .map_err(|e| not_found_for(self.product, upid, e))?;
        Ok(())
    }
}
