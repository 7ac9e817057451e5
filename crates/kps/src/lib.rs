//! # tasktrack-kps
//!
//! Huawei Cloud KPS (key pair service) tasks: the failed and running task
//! lists (offset paging, walked as a `Stream` robust to a shrinking list),
//! the single-task query, deletion of failed-task records, and
//! [`KpsProvider`] for tracking.
//!
//! ```no_run
//! use futures::TryStreamExt;
//! use tasktrack_kps::KpsClient;
//!
//! # async fn run() -> tasktrack_core::Result<()> {
//! // HUAWEICLOUD_KPS_ENDPOINT, HUAWEICLOUD_PROJECT_ID, CLOUD_SDK_AK / CLOUD_SDK_SK
//! let client = KpsClient::from_env()?;
//! let failed: Vec<_> = client.failed_tasks(1000).try_collect().await?;
//! for t in failed {
//!     println!("{} {:?} {:?}", t.task_id, t.operate_type, t.task_error_msg);
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod config;
mod failed_lookup;
mod id;
mod model;
mod provider;

pub use client::{KpsClient, DEFAULT_LIMIT};
pub use config::KpsConfig;
pub use id::KpsTaskId;
pub use model::{
    FailedTask, KeypairTask, KpsOperation, KpsPhase, KpsTaskState, RunningTask, TaskList,
};
pub use provider::{KpsProvider, KpsTask};
pub use tasktrack_core::http::ConfigureHttp;
