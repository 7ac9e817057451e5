//! [`OcpClient`]: the OCP task endpoints over the core HTTP layer.

use std::sync::Arc;

use futures::Stream;
use serde::de::DeserializeOwned;
use tasktrack_core::http::{
    Authenticate, ClientOptions, ConfigureHttp, ErrorAnswer, ErrorBodyParser, HttpClient,
    HttpRequest, VendorError,
};
use tasktrack_core::paging::{walk_offsets, OffsetPage, PageLimits};
use tasktrack_core::{Error, HttpError, Result, Secret};

use crate::auth::{BasicAuth, SessionAuth};
use crate::model::{
    BasicTaskInstance, Envelope, OcpTaskStatus, Paged, SubtaskInstance, SubtaskLog, TaskType,
    WrappedTaskInstance,
};

const PROVIDER: &str = "ocp";
/// The largest page OCP serves.
pub const MAX_PAGE_SIZE: u32 = 2000;

/// OCP's error answers: an envelope with `error {code, message}` and `traceId`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OcpErrors;

impl ErrorBodyParser for OcpErrors {
    fn parse(&self, answer: &ErrorAnswer<'_>) -> VendorError {
        let env: Option<Envelope<serde_json::Value>> = serde_json::from_slice(answer.body).ok();
        let (code, message, trace) = match env {
            Some(e) => {
                let (code, message) = e
                    .error
                    .map(|x| {
                        // ApiError.debugMessage: the cause, when it adds something.
                        let debug = x.extra.get("debugMessage").and_then(|d| d.as_str());
                        let message = match (x.message, debug) {
                            (Some(m), Some(d)) if !d.is_empty() && d != m => {
                                Some(format!("{m} ({d})"))
                            }
                            (m, _) => m,
                        };
                        (x.code.map(|c| c.0), message)
                    })
                    .unwrap_or_default();
                (code, message, e.trace_id)
            }
            None => (None, None, None),
        };
        VendorError::new(code, message).with_request_id(trace)
    }
}

/// Filters of `GET /api/v2/tasks/instances`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskQuery {
    /// Name, fuzzy.
    pub name: Option<String>,
    /// Statuses (repeatable).
    pub status: Vec<OcpTaskStatus>,
    /// Type.
    pub task_type: Option<TaskType>,
    /// Cluster name, fuzzy.
    pub cluster_name: Option<String>,
    /// Cluster id.
    pub cluster_id: Option<u64>,
    /// Tenant name (with a cluster id).
    pub tenant_name: Option<String>,
    /// Tenant id.
    pub tenant_id: Option<u64>,
    /// Host id.
    pub host_id: Option<u64>,
    /// Page number, from 1.
    pub page: Option<u32>,
    /// Page size (at most 2000; default 10).
    pub size: Option<u32>,
    /// Sort, e.g. `id,asc`.
    pub sort: Option<String>,
}

/// Where the task API lives: OCP serves `/api/v2/tasks/instances` (the
/// seed document, obdiag), ocp-express `/api/v1/tasks/instances`.
pub const OCP_API: &str = "/api/v2";
/// ocp-express's API prefix.
pub const OCP_EXPRESS_API: &str = "/api/v1";

/// Builds an [`OcpClient`].
#[derive(Debug)]
pub struct OcpClientBuilder {
    base: String,
    api: String,
    user: String,
    password: Secret,
    session_login: bool,
    options: ClientOptions,
}

impl ConfigureHttp for OcpClientBuilder {
    fn client_options_mut(&mut self) -> &mut ClientOptions {
        &mut self.options
    }
}

impl OcpClientBuilder {
    /// The API prefix: [`OCP_API`] (`/api/v2`, the default) or
    /// [`OCP_EXPRESS_API`] (`/api/v1`).
    pub fn with_api_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.api = prefix.into().trim_end_matches('/').to_owned();
        self
    }
    /// Signs in through ocp-express's login form and sends its session
    /// cookie instead of HTTP Basic: for servers with Basic disabled. The
    /// session is opened on the first call and again whenever one is
    /// refused with 401.
    pub fn with_session_login(mut self) -> Self {
        self.session_login = true;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<OcpClient> {
        let auth: Arc<dyn Authenticate> = if self.session_login {
            Arc::new(SessionAuth::new(&self.user, &self.password))
        } else {
            Arc::new(BasicAuth::new(&self.user, &self.password))
        };
        let http = HttpClient::builder(PROVIDER, self.base)
            .with_options(self.options)
            .with_auth(auth)
            .with_error_parser(Arc::new(OcpErrors));
        if !self.api.starts_with('/') || self.api.contains("..") {
            return Err(Error::invalid_input(
                PROVIDER,
                format!("API prefix {:?} must be a path such as /api/v2", self.api),
            ));
        }
        Ok(OcpClient {
            http: http.build()?,
            tasks: format!("{}/tasks/instances", self.api),
            express: self.api == OCP_EXPRESS_API,
        })
    }
}

/// An OCP client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct OcpClient {
    http: HttpClient,
    /// `{prefix}/tasks/instances`.
    tasks: String,
    /// ocp-express names the name filter `keyword`.
    express: bool,
}

/// A failed envelope on a 2xx answer (`successful: false`) as a typed error
/// keeping the trace id.
fn envelope_error<T>(method: &str, path: &str, env: &Envelope<T>) -> Error {
    let mut e = HttpError::new(
        PROVIDER,
        method,
        path,
        env.status
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(200),
    );
    if let Some(err) = &env.error {
        e.vendor_code = err.code.as_ref().map(|c| c.0.clone());
        e.vendor_message = err.message.clone();
    }
    e.request_id = env.trace_id.clone();
    e.into()
}

impl OcpClient {
    /// A client for `base_url` (e.g. `http://ocp.example.com:8080`) with
    /// HTTP Basic credentials.
    pub fn builder(base_url: impl Into<String>, user: &str, password: &Secret) -> OcpClientBuilder {
        OcpClientBuilder {
            base: base_url.into(),
            api: OCP_API.to_owned(),
            user: user.to_owned(),
            password: password.clone(),
            session_login: false,
            options: ClientOptions::default(),
        }
    }

    async fn call<T: DeserializeOwned>(&self, req: HttpRequest, what: &str) -> Result<Envelope<T>> {
        let (method, path) = (req.method().to_string(), req.path().to_owned());
        let env: Envelope<T> = self.http.send_json(req, what).await?;
        if env.successful == Some(false) || env.error.is_some() {
            return Err(envelope_error(&method, &path, &env));
        }
        Ok(env)
    }

    async fn data<T: DeserializeOwned>(&self, req: HttpRequest, what: &str) -> Result<T> {
        let env = self.call::<T>(req, what).await?;
        env.data
            .ok_or_else(|| Error::decode(PROVIDER, what, "data", "the envelope has no data"))
    }

    fn not_found(id: u64, e: Error) -> Error {
        e.rename_not_found(|| format!("task instance {id}"))
    }

    /// `GET /api/v2/tasks/instances` with every documented filter.
    pub async fn list(&self, q: &TaskQuery) -> Result<Paged<BasicTaskInstance>> {
        let name_param = if self.express { "keyword" } else { "name" };
        let mut req = HttpRequest::get(self.tasks.clone())
            .with_query_opt(name_param, q.name.as_ref())
            .with_query_opt("type", q.task_type.as_ref().map(TaskType::as_str))
            .with_query_opt("clusterName", q.cluster_name.as_ref())
            .with_query_opt("clusterId", q.cluster_id)
            .with_query_opt("tenantName", q.tenant_name.as_ref())
            .with_query_opt("tenantId", q.tenant_id)
            .with_query_opt("hostId", q.host_id)
            .with_query_opt("page", q.page)
            .with_query_opt("size", q.size.map(|s| s.min(MAX_PAGE_SIZE)))
            .with_query_opt("sort", q.sort.as_ref());
        for s in &q.status {
            req = req.with_query("status", s.as_str());
        }
        self.data(req, "task instance list").await
    }

    /// Every task matching `q`, page after page (`q.page` is ignored; see
    /// [`walk_offsets`] for where it stops).
    pub fn list_all(
        &self,
        q: TaskQuery,
    ) -> impl Stream<Item = Result<BasicTaskInstance>> + Send + '_ {
        let size = q.size.unwrap_or(100).clamp(1, MAX_PAGE_SIZE);
        walk_offsets(
            PROVIDER,
            PageLimits::new(size),
            move |offset, limit| {
                // Pages are numbered from 1 and all of one size.
                let query = TaskQuery {
                    page: Some(u32::try_from(offset / u64::from(limit) + 1).unwrap_or(u32::MAX)),
                    size: Some(limit),
                    ..q.clone()
                };
                async move {
                    let p = self.list(&query).await?;
                    Ok(OffsetPage::new(p.contents, Some(p.page.total_elements)))
                }
            },
            |t: &BasicTaskInstance| t.id,
        )
    }

    /// `GET /api/v2/tasks/instances/{id}`.
    pub async fn task(&self, id: u64) -> Result<WrappedTaskInstance> {
        self.data(
            HttpRequest::get(format!("{}/{id}", self.tasks)),
            "task instance",
        )
        .await
        .map_err(|e| Self::not_found(id, e))
    }

    /// `POST …/{id}/retry`: runs the failed subtasks again. Never retried.
    /// ocp-express answers the task; an answer without `data` is still an
    /// accepted retry (`None`).
    pub async fn retry(&self, id: u64) -> Result<Option<WrappedTaskInstance>> {
        let req = HttpRequest::post(format!("{}/{id}/retry", self.tasks));
        self.call(req, "retried task")
            .await
            .map(|env| env.data)
            .map_err(|e| Self::not_found(id, e))
    }

    /// `POST …/{id}/rollback`: rolls back from every failed subtask. Never
    /// retried. ocp-express's `TaskController` answers a `NoDataResponse`
    /// (no `data` key at all), the seed document the task: both are an
    /// accepted rollback.
    pub async fn rollback(&self, id: u64) -> Result<Option<WrappedTaskInstance>> {
        let req = HttpRequest::post(format!("{}/{id}/rollback", self.tasks));
        self.call(req, "rolled-back task")
            .await
            .map(|env| env.data)
            .map_err(|e| Self::not_found(id, e))
    }

    /// `POST …/{id}/subtasks/{sid}/cancel`: marks a running subtask failed. Never retried.
    pub async fn cancel_subtask(&self, id: u64, sid: u64) -> Result<()> {
        let req = HttpRequest::post(format!("{}/{id}/subtasks/{sid}/cancel", self.tasks));
        self.call::<serde_json::Value>(req, "subtask cancel")
            .await
            .map(|_| ())
            .map_err(|e| Self::not_found(id, e))
    }

    /// `POST …/{id}/subtasks/{sid}/retry`: runs a failed subtask again.
    /// Never retried. ocp-express answers the subtask (`None` when not).
    pub async fn retry_subtask(&self, id: u64, sid: u64) -> Result<Option<SubtaskInstance>> {
        let req = HttpRequest::post(format!("{}/{id}/subtasks/{sid}/retry", self.tasks));
        self.call(req, "retried subtask")
            .await
            .map(|env| env.data)
            .map_err(|e| Self::not_found(id, e))
    }

    /// `POST …/{id}/subtasks/{sid}/skip`: marks a failed subtask done. Never retried.
    pub async fn skip_subtask(&self, id: u64, sid: u64) -> Result<()> {
        let req = HttpRequest::post(format!("{}/{id}/subtasks/{sid}/skip", self.tasks));
        self.call::<serde_json::Value>(req, "subtask skip")
            .await
            .map(|_| ())
            .map_err(|e| Self::not_found(id, e))
    }

    /// `GET …/{id}/subtasks/{sid}/log`.
    pub async fn subtask_log(&self, id: u64, sid: u64) -> Result<String> {
        let req = HttpRequest::get(format!("{}/{id}/subtasks/{sid}/log", self.tasks));
        let log: SubtaskLog = self
            .data(req, "subtask log")
            .await
            .map_err(|e| Self::not_found(id, e))?;
        Ok(log.log)
    }
}
