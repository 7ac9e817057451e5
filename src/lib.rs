//! # tasktrack
//!
//! Track long-running tasks on heterogeneous infrastructure (Proxmox VE,
//! Huawei Cloud KPS and DCS, OceanBase OCP, or your own backend) through one
//! abstraction. This facade re-exports [`tasktrack_core`]; each vendor
//! adapter is a cargo feature of the same name.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use futures::StreamExt;
//! use tasktrack::{MemoryProvider, PollPolicy, TaskScript, Tracker};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> tasktrack::Result<()> {
//! let backups = Arc::new(MemoryProvider::new("backups"));
//! let (tracker, mut events) = Tracker::builder()
//!     .with_provider("backups", backups.clone())
//!     .with_policy(PollPolicy::fixed(Duration::from_millis(10)))
//!     .build();
//! let id = backups.start(TaskScript::new("vzdump", Duration::from_millis(30)));
//! tracker.track("backups", &id.to_string())?;
//! while let Some(event) = events.next().await {
//!     println!("{} {} -> {:?}", event.provider, event.id, event.state());
//!     if event.is_final() {
//!         break;
//!     }
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use tasktrack_core::*;

/// Huawei Cloud shared layer (features `kps`, `dcs`): see [`tasktrack_huaweicloud`].
#[cfg(any(feature = "kps", feature = "dcs"))]
pub use tasktrack_huaweicloud as huaweicloud;

/// Huawei Cloud KPS (feature `kps`): see [`tasktrack_kps`].
#[cfg(feature = "kps")]
pub use tasktrack_kps as kps;

/// Huawei Cloud DCS (feature `dcs`): see [`tasktrack_dcs`].
#[cfg(feature = "dcs")]
pub use tasktrack_dcs as dcs;

/// OceanBase OCP (feature `ocp`): see [`tasktrack_ocp`].
#[cfg(feature = "ocp")]
pub use tasktrack_ocp as ocp;

/// Proxmox VE (feature `proxmox`): see [`tasktrack_proxmox`].
#[cfg(feature = "proxmox")]
pub use tasktrack_proxmox as proxmox;

/// The README's code blocks, compiled and run as doc tests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
