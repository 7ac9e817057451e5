//! # tasktrack-dcs
//!
//! Huawei Cloud DCS (distributed cache service) background tasks: the
//! progress query (percent, remaining time, steps and sub-steps), the
//! background task list, and [`DcsProvider`], whose state is derived from
//! the step statuses and whose poll hint is `remain_time`.
//!
//! ```
//! use tasktrack_core::{TaskState, TaskStatus};
//! use tasktrack_dcs::{DcsTask, DcsTaskId, DcsTaskProgress};
//!
//! let body = r#"{"progress": 30, "remain_time": 100, "step_details": [
//!   {"step_name": "precheck", "step_status": "FINISH", "begin_time": "2022-09-01 11:52:24"},
//!   {"step_name": "migrate", "step_status": "EXECUTING", "begin_time": "2020-06-17T07:38:42.503Z"}]}"#;
//! let progress: DcsTaskProgress = serde_json::from_str(body).unwrap();
//! let task = DcsTask { id: "inst/task".parse().unwrap(), progress: Some(progress), background: None };
//! assert_eq!(task.state(), TaskState::Running);
//! assert_eq!(task.poll_hint(), Some(std::time::Duration::from_secs(100)));
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod config;
mod model;
mod provider;

pub use client::{BackgroundTaskQuery, DcsClient};
pub use config::DcsConfig;
pub use model::{
    parse_time, BackgroundTask, BackgroundTaskList, DcsStepStatus, DcsTaskProgress, StepDetail,
    SubStepDetail, TaskDetails,
};
pub use provider::{DcsProvider, DcsTask, DcsTaskId};
pub use tasktrack_core::http::ConfigureHttp;
