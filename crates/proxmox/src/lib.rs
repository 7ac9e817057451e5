//! # tasktrack-proxmox
//!
//! Proxmox VE task tracking: the [`Upid`] handle, a [`ProxmoxClient`] for the
//! task endpoints (API token or ticket auth, TLS options for PVE's
//! self-signed certificates), and [`ProxmoxProvider`], which batches the
//! status of many UPIDs into one task-list request per node.
//!
//! ```no_run
//! use std::time::Duration;
//! use tasktrack_core::{PollPolicy, Poller};
//! use tasktrack_proxmox::{ConfigureHttp, ProxmoxClient, ProxmoxCredentials, ProxmoxProvider, Upid};
//!
//! # async fn run() -> tasktrack_core::Result<()> {
//! let client = ProxmoxClient::builder(
//!     "https://pve.example.com:8006",
//!     ProxmoxCredentials::parse_token("root@pam!ci=00000000-0000-0000-0000-000000000000")?,
//! )
//! .with_root_certificate_pem(&std::fs::read("pve-root-ca.pem").unwrap_or_default())
//! .build()?;
//! let provider = ProxmoxProvider::new(client);
//! let upid: Upid = "UPID:pve1:000AE992:00A21BA7:618C1D55:vzdump:100:root@pam:".parse()?;
//! let outcome = Poller::new(provider, PollPolicy::default()).wait(&upid).await?;
//! outcome.into_result()?; // a failed task: Error::TaskFailed with the log tail
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod auth;
mod client;
mod config;
mod list_decode;
mod model;
mod product;
pub mod progress;
mod provider;
mod upid;

pub use auth::ProxmoxCredentials;
pub use client::{
    LogPage, NodeTaskQuery, ProxmoxClient, ProxmoxClientBuilder, PveErrors, TaskListPage,
    TaskSource,
};
pub use config::{PbsConfig, ProxmoxConfig};
pub use model::{
    decode_log, ExitKind, ExitStatus, ListedState, ProxmoxLogLine, ProxmoxTask, RunState,
    TaskListEntry,
};
pub use product::ProxmoxProduct;
pub use provider::{ProxmoxProvider, WARNINGS_KEPT};
pub use tasktrack_core::http::ConfigureHttp;
pub use upid::Upid;
