//! [`DcsClient`]: the DCS background-task endpoints.

use chrono::{DateTime, Utc};
use tasktrack_core::http::{path_segment, HttpClient, HttpRequest};
use tasktrack_core::{Error, Result};
use tasktrack_huaweicloud::ServiceConfig;
use tracing::Instrument;

use crate::model::{BackgroundTaskList, DcsTaskProgress};

/// A DCS client for one project. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DcsClient {
    http: HttpClient,
    project: String,
}

/// Filters of the background task list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackgroundTaskQuery {
    /// Offset.
    pub offset: Option<u64>,
    /// Page size.
    pub limit: Option<u32>,
    /// Only tasks started at or after (sent as `yyyyMMddHHmmss`, UTC).
    pub start_time: Option<DateTime<Utc>>,
    /// Only tasks started at or before.
    pub end_time: Option<DateTime<Utc>>,
}

fn compact(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d%H%M%S").to_string()
}

/// A missing task: DCS answers `400` with `error_code` `DCS.4133` (the code
/// terraform-provider-huaweicloud converts into "deleted"), or a 404.
fn task_not_found(instance_id: &str, task_id: &str, e: Error) -> Error {
    let e = match e {
        Error::Http(h) if h.status == 400 && h.vendor_code.as_deref() == Some("DCS.4133") => {
            Error::not_found(h.provider.clone(), "")
        }
        other => other,
    };
    e.rename_not_found(|| format!("task {task_id} of instance {instance_id}"))
}

impl DcsClient {
    /// A client from a service config.
    pub fn new(config: &ServiceConfig) -> Result<Self> {
        Ok(DcsClient {
            http: config.http_client()?,
            project: path_segment("dcs", "project id", &config.project_id)?,
        })
    }

    /// From the environment: `HUAWEICLOUD_DCS_ENDPOINT`,
    /// `HUAWEICLOUD_PROJECT_ID`, `CLOUD_SDK_AK` + `CLOUD_SDK_SK` or
    /// `HUAWEICLOUD_TOKEN`.
    pub fn from_env() -> Result<Self> {
        Self::new(&ServiceConfig::from_env("dcs", "HUAWEICLOUD_DCS_ENDPOINT")?)
    }

    /// `GET /v2/{project_id}/instances/{instance_id}/tasks/{task_id}/progress`.
    pub async fn progress(&self, instance_id: &str, task_id: &str) -> Result<DcsTaskProgress> {
        let path = format!(
            "/v2/{}/instances/{}/tasks/{}/progress",
            self.project,
            path_segment("dcs", "instance id", instance_id)?,
            path_segment("dcs", "task id", task_id)?
        );
        let span = tracing::debug_span!("dcs_progress", instance_id, task_id);
        self.http
            .send_json(HttpRequest::get(path), "task progress")
            .instrument(span)
            .await
            .map_err(|e| task_not_found(instance_id, task_id, e))
    }

    /// `DELETE /v2/{project_id}/instances/{instance_id}/tasks/{task_id}`:
    /// removes a background task's record (the instance is untouched).
    /// Sent once, never retried.
    pub async fn delete_background_task(&self, instance_id: &str, task_id: &str) -> Result<()> {
        let path = format!(
            "/v2/{}/instances/{}/tasks/{}",
            self.project,
            path_segment("dcs", "instance id", instance_id)?,
            path_segment("dcs", "task id", task_id)?
        );
        self.http
            .send(HttpRequest::delete(path))
            .await
            .map(|_| ())
            .map_err(|e| task_not_found(instance_id, task_id, e))
    }

    /// `GET /v2/{project_id}/tasks`: the project's task centre, every
    /// instance's background tasks (`limit` 1..=1000).
    pub async fn center_tasks(&self, q: &BackgroundTaskQuery) -> Result<BackgroundTaskList> {
        let req = HttpRequest::get(format!("/v2/{}/tasks", self.project))
            .with_query_opt("offset", q.offset)
            .with_query_opt("limit", q.limit.map(|l| l.clamp(1, 1000)))
            .with_query_opt("start_time", q.start_time.map(compact))
            .with_query_opt("end_time", q.end_time.map(compact));
        self.http.send_json(req, "task centre list").await
    }

    /// `GET /v2/{project_id}/instances/{instance_id}/tasks`.
    pub async fn background_tasks(
        &self,
        instance_id: &str,
        q: &BackgroundTaskQuery,
    ) -> Result<BackgroundTaskList> {
        let req = HttpRequest::get(format!(
            "/v2/{}/instances/{}/tasks",
            self.project,
            path_segment("dcs", "instance id", instance_id)?
        ))
        .with_query_opt("offset", q.offset)
        .with_query_opt("limit", q.limit)
        .with_query_opt("start_time", q.start_time.map(compact))
        .with_query_opt("end_time", q.end_time.map(compact));
        self.http.send_json(req, "background task list").await
    }
}
