//! [`KpsClient`]: the KPS task endpoints.

use std::collections::HashSet;

use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use tasktrack_core::http::{encode_segment, HttpClient, HttpRequest};
use tasktrack_core::{Error, Result};
use tasktrack_huaweicloud::ServiceConfig;

use crate::model::{FailedTask, KeypairTask, RunningTask, TaskList};

/// The document's default page size.
pub const DEFAULT_LIMIT: u32 = 1000;

/// A KPS client for one project. Cheap to clone.
#[derive(Debug, Clone)]
pub struct KpsClient {
    http: HttpClient,
    project: String,
}

impl KpsClient {
    /// A client from a service config (endpoint, project, credentials).
    pub fn new(config: &ServiceConfig) -> Result<Self> {
        Ok(KpsClient {
            http: config.http_client()?,
            project: encode_segment(&config.project_id),
        })
    }

    /// From the environment: `HUAWEICLOUD_KPS_ENDPOINT`,
    /// `HUAWEICLOUD_PROJECT_ID`, `CLOUD_SDK_AK` + `CLOUD_SDK_SK` or
    /// `HUAWEICLOUD_TOKEN`.
    pub fn from_env() -> Result<Self> {
        Self::new(&ServiceConfig::from_env("kps", "HUAWEICLOUD_KPS_ENDPOINT")?)
    }

    fn path(&self, tail: &str) -> String {
        format!("/v3/{}{tail}", self.project)
    }

    async fn page<T: DeserializeOwned>(
        &self,
        tail: &str,
        limit: u32,
        offset: u64,
        what: &str,
    ) -> Result<TaskList<T>> {
        let req = HttpRequest::get(self.path(tail))
            .query("limit", limit)
            .query("offset", offset);
        self.http.send_json(req, what).await
    }

    /// `GET /v3/{project_id}/failed-tasks?limit=&offset=`.
    pub async fn list_failed(&self, limit: u32, offset: u64) -> Result<TaskList<FailedTask>> {
        self.page("/failed-tasks", limit, offset, "failed task list")
            .await
    }

    /// `GET /v3/{project_id}/running-tasks?limit=&offset=`.
    pub async fn list_running(&self, limit: u32, offset: u64) -> Result<TaskList<RunningTask>> {
        self.page("/running-tasks", limit, offset, "running task list")
            .await
    }

    /// `GET /v3/{project_id}/tasks/{task_id}`.
    pub async fn task(&self, task_id: &str) -> Result<KeypairTask> {
        let req = HttpRequest::get(self.path(&format!("/tasks/{}", encode_segment(task_id))));
        self.http.send_json(req, "key pair task").await
    }

    /// `DELETE /v3/{project_id}/failed-tasks/{task_id}`: forgets one failed
    /// task's record (the key pair and server are untouched). Never retried.
    pub async fn delete_failed(&self, task_id: &str) -> Result<()> {
        let req =
            HttpRequest::delete(self.path(&format!("/failed-tasks/{}", encode_segment(task_id))));
        self.http.send(req).await.map(|_| ())
    }

    /// `DELETE /v3/{project_id}/failed-tasks`: forgets every failed task's
    /// record. Never retried.
    pub async fn delete_all_failed(&self) -> Result<()> {
        self.http
            .send(HttpRequest::delete(self.path("/failed-tasks")))
            .await
            .map(|_| ())
    }

    /// Every failed task, walking `offset` page by page until `total`.
    pub fn failed_tasks(
        &self,
        page_size: u32,
    ) -> impl Stream<Item = Result<FailedTask>> + Send + '_ {
        walk(
            page_size,
            move |limit, offset| self.list_failed(limit, offset),
            |t: &FailedTask| t.task_id.clone(),
        )
    }

    /// Every running task, walking `offset` page by page until `total`.
    pub fn running_tasks(
        &self,
        page_size: u32,
    ) -> impl Stream<Item = Result<RunningTask>> + Send + '_ {
        walk(
            page_size,
            move |limit, offset| self.list_running(limit, offset),
            |t: &RunningTask| t.task_id.clone(),
        )
    }
}

/// Walks an offset-paged list. Robust to a list that shrinks while it is
/// walked (tasks deleted or finished): it stops at an empty page or when the
/// offset reaches the latest `total`, never yields a task twice, and never
/// loops past `total` pages.
fn walk<'a, T, F, Fut, K>(
    page_size: u32,
    fetch: F,
    key: K,
) -> impl Stream<Item = Result<T>> + Send + 'a
where
    T: Send + 'a,
    F: Fn(u32, u64) -> Fut + Send + Sync + 'a,
    Fut: std::future::Future<Output = Result<TaskList<T>>> + Send + 'a,
    K: Fn(&T) -> String + Send + Sync + 'a,
{
    let page_size = page_size.max(1);
    struct State {
        offset: u64,
        seen: HashSet<String>,
        done: bool,
        pages: u64,
    }
    let state = State {
        offset: 0,
        seen: HashSet::new(),
        done: false,
        pages: 0,
    };
    let fetch = std::sync::Arc::new(fetch);
    let key = std::sync::Arc::new(key);
    futures::stream::unfold(state, move |mut st| {
        let fetch = fetch.clone();
        let key = key.clone();
        async move {
            if st.done {
                return None;
            }
            let page = match fetch(page_size, st.offset).await {
                Ok(p) => p,
                Err(e) => {
                    st.done = true;
                    return Some((vec![Err(e)], st));
                }
            };
            st.pages += 1;
            let got = page.tasks.len() as u64;
            st.offset += got;
            let total = page.total.map(|t| t.max(0) as u64);
            let max_pages = total.map_or(u64::MAX, |t| t / u64::from(page_size) + 2);
            if got == 0
                || total.is_some_and(|t| st.offset >= t)
                || got < u64::from(page_size)
                || st.pages >= max_pages
            {
                st.done = true;
            }
            let fresh: Vec<Result<T>> = page
                .tasks
                .into_iter()
                .filter(|t| st.seen.insert(key(t)))
                .map(Ok)
                .collect();
            Some((fresh, st))
        }
    })
    .flat_map(futures::stream::iter)
}

/// Makes a 404 on a task id a [`Error::NotFound`] naming the task.
pub(crate) fn task_not_found(id: &str, e: Error) -> Error {
    match e {
        Error::NotFound { provider, .. } => {
            Error::not_found(provider, format!("key pair task {id}"))
        }
        other => other,
    }
}
