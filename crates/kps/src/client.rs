//! [`KpsClient`]: the KPS task endpoints.

use std::borrow::Cow;

use futures::{Stream, StreamExt, TryStreamExt};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use tasktrack_core::http::{decode_json, path_segment, HttpClient, HttpRequest};
use tasktrack_core::paging::{walk_offset_pages, OffsetPage, PageLimits};
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
            project: path_segment("kps", "project id", &config.project_id)?,
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
            .with_query("limit", limit)
            .with_query("offset", offset);
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
        let req = HttpRequest::get(self.path(&format!(
            "/tasks/{}",
            path_segment("kps", "task id", task_id)?
        )));
        self.http.send_json(req, "key pair task").await
    }

    /// `DELETE /v3/{project_id}/failed-tasks/{task_id}`: forgets one failed
    /// task's record (the key pair and server are untouched). Never retried.
    pub async fn delete_failed(&self, task_id: &str) -> Result<()> {
        let req = HttpRequest::delete(self.path(&format!(
            "/failed-tasks/{}",
            path_segment("kps", "task id", task_id)?
        )));
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

    /// Every entry of the list at `tail`, walking `offset` page by page
    /// (see [`walk_offsets`](tasktrack_core::paging::walk_offsets) for where it stops); `id` names an entry.
    fn walk<T: DeserializeOwned + Send + 'static>(
        &self,
        tail: &'static str,
        what: &'static str,
        page_size: u32,
        id: fn(&T) -> String,
    ) -> impl Stream<Item = Result<T>> + Send + '_ {
        self.walk_pages(tail, what, page_size, id)
            .flat_map(futures::stream::iter)
    }

    /// [`walk`](Self::walk) a page at a time.
    fn walk_pages<T: DeserializeOwned + Send + 'static>(
        &self,
        tail: &'static str,
        what: &'static str,
        page_size: u32,
        id: fn(&T) -> String,
    ) -> impl Stream<Item = Vec<Result<T>>> + Send + '_ {
        walk_offset_pages(
            "kps",
            PageLimits::new(page_size),
            move |offset, limit| async move {
                let page = self.page(tail, limit, offset, what).await?;
                Ok(offset_page(page))
            },
            id,
        )
    }

    /// Every failed task, walking `offset` page by page (see
    /// [`walk_offsets`](tasktrack_core::paging::walk_offsets) for where it stops).
    pub fn failed_tasks(
        &self,
        page_size: u32,
    ) -> impl Stream<Item = Result<FailedTask>> + Send + '_ {
        self.walk(
            "/failed-tasks",
            "failed task list",
            page_size,
            |t: &FailedTask| t.task_id.clone(),
        )
    }

    /// The failed task `task_id`, walking the failed-task list as
    /// [`failed_tasks`](Self::failed_tasks) does but decoding only each
    /// entry's id, and the whole entry only for the one it finds: the list
    /// holds every failed task of the project, and a task that failed is
    /// looked up in it once for its error code and message.
    pub async fn find_failed(&self, task_id: &str, page_size: u32) -> Result<Option<FailedTask>> {
        let entries = self
            .failed_entry_pages(page_size)
            .flat_map(futures::stream::iter);
        let mut entries = std::pin::pin!(entries);
        while let Some(entry) = entries.try_next().await? {
            if entry.task_id == task_id {
                return decode_failed(&entry.json).map(Some);
            }
        }
        Ok(None)
    }

    /// The failed-task list a page at a time, with only each entry's id
    /// decoded.
    pub(crate) fn failed_entry_pages(
        &self,
        page_size: u32,
    ) -> impl Stream<Item = Vec<Result<ListedEntry>>> + Send + '_ {
        self.walk_pages(
            "/failed-tasks",
            "failed task list",
            page_size,
            |e: &ListedEntry| e.task_id.clone(),
        )
    }

    /// Every running task, walking `offset` page by page.
    pub fn running_tasks(
        &self,
        page_size: u32,
    ) -> impl Stream<Item = Result<RunningTask>> + Send + '_ {
        self.walk(
            "/running-tasks",
            "running task list",
            page_size,
            |t: &RunningTask| t.task_id.clone(),
        )
    }
}

/// A list entry as its JSON text, with only its `task_id` decoded.
pub(crate) struct ListedEntry {
    pub(crate) task_id: String,
    pub(crate) json: Box<RawValue>,
}

/// A failed-task entry kept as its JSON text.
pub(crate) fn decode_failed(json: &RawValue) -> Result<FailedTask> {
    decode_json("kps", "failed task", json.get().as_bytes())
}

impl<'de> Deserialize<'de> for ListedEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Id<'a> {
            #[serde(borrow)]
            task_id: Cow<'a, str>,
        }
        let json = Box::<RawValue>::deserialize(deserializer)?;
        let id: Id<'_> = serde_json::from_str(json.get()).map_err(D::Error::custom)?;
        Ok(ListedEntry {
            task_id: id.task_id.into_owned(),
            json,
        })
    }
}

fn offset_page<T>(page: TaskList<T>) -> OffsetPage<T> {
    OffsetPage::new(page.tasks, page.total.map(|t| t.max(0) as u64))
}

/// Makes a 404 on a task id a [`Error::NotFound`] naming the task.
pub(crate) fn task_not_found(id: &str, e: Error) -> Error {
    e.rename_not_found(|| format!("key pair task {id}"))
}
