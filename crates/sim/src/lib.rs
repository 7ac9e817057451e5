//! # tasktrack-sim
//!
//! Embedded HTTP simulators of the task APIs tasktrack speaks. Each vendor
//! module is an independent implementation of that vendor's wire protocol,
//! written from the vendor's documents and checked against the vendor's own
//! code (it shares no model with the adapters, so a bug in one cannot hide
//! in the other).
//!
//! What every simulator shares lives here: the [`SimBuilder`] that starts a
//! server on `127.0.0.1:0` and returns a [`SimHandle`]; the scripted-task
//! [`TaskEngine`] whose state is computed from a [`SimClock`] (real time, or
//! a manual clock a test advances); [`Faults`] injected per route (status
//! codes, `Retry-After`, latency, dropped connections, truncated bodies,
//! HTML error pages); a [`RequestLog`] counting requests per route; and
//! [`AuthState`] for credentials that expire.
//!
//! ```
//! use std::time::Duration;
//! use tasktrack_sim::{generic::Generic, Fault, SimBuilder, TaskSpec};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let sim = SimBuilder::new(Generic::new("token")).start().await?;
//! let id = sim.create_task(TaskSpec::new("backup", Duration::from_secs(5)));
//! sim.faults().next(1, "GET /api/tasks/{id}", Fault::status(503));
//! println!("GET {}/api/tasks/{id}", sim.base_url());
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod auth;
mod clock;
mod context;
pub mod dcs;
mod engine;
mod fault_layer;
mod faults;
pub mod generic;
pub mod huawei;
pub mod iam;
pub mod kps;
pub mod ocp;
pub mod pbs;
pub mod proxmox;
pub mod replay;
mod server;
pub mod standalone;
mod store;
mod task_spec;
mod task_view;

pub use auth::AuthState;
pub use clock::SimClock;
pub use context::{SimContext, Vendor};
pub use engine::{
    EngineError, SimFailure, SimOutcome, SimState, StepSpec, StepView, TaskEngine, TaskSpec,
    TaskView,
};
pub use faults::{Fault, FaultRule, Faults, RequestLog};
pub use server::{SimBuilder, SimHandle};
pub use store::TaskStore;
