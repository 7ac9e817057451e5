//! # tasktrack-ocp
//!
//! OceanBase OCP task instances: every documented shape and endpoint
//! ([`OcpClient`]: list, detail, retry, rollback, subtask cancel / retry /
//! skip, subtask logs), and [`OcpProvider`], whose subtasks become steps
//! ordered by `seriesId` with their DAG kept, and whose control actions are
//! refused locally when the task's state makes them impossible.
//!
//! ```no_run
//! use tasktrack_core::{PollPolicy, Poller, Secret, TaskAction, TaskProvider};
//! use tasktrack_ocp::{OcpClient, OcpProvider};
//!
//! # async fn run() -> tasktrack_core::Result<()> {
//! let client = OcpClient::builder("http://ocp.example.com:8080", "admin", &Secret::new("password")).build()?;
//! let provider = OcpProvider::new(client);
//! let outcome = Poller::new(provider.clone(), PollPolicy::default()).wait(&1000).await?;
//! if outcome.state().is_unsuccessful() {
//!     provider.act(&1000, TaskAction::Retry).await?; // refused locally unless the task FAILED
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod auth;
mod client;
mod config;
pub mod model;
mod provider;

pub use client::{
    OcpClient, OcpClientBuilder, OcpErrors, TaskQuery, MAX_PAGE_SIZE, OCP_API, OCP_EXPRESS_API,
};
pub use config::OcpConfig;
pub use model::{
    BasicSubtaskInstance, BasicTaskInstance, Cluster, ClusterType, Creator, Envelope,
    OcpTaskStatus, Operation, PageInfo, Paged, SubtaskInstance, SubtaskStatus, TaskType, Tenant,
    TenantInfo, TenantMode, WrappedTaskInstance,
};
pub use provider::{all_tasks, OcpProvider, OcpTask};
pub use tasktrack_core::http::ConfigureHttp;
