//! # tasktrack-testkit
//!
//! One conformance suite for every [`TaskProvider`]: the vendor adapters run
//! it against their simulators, and a custom provider runs it the same way.
//! Implement [`Harness`] (how to make tasks with chosen outcomes in your
//! backend, how its time moves, how to make it fail for a while) and call
//! [`run`]:
//!
//! ```
//! use tasktrack_testkit::{run, MemoryHarness};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let report = run(&MemoryHarness::new()).await;
//! report.assert_passed();
//! # }
//! ```
//!
//! The checks (from the design's "Conformance"): a running task is seen
//! running, then terminal; failures carry code and message; an unknown id is
//! `NotFound`; `status_many` agrees with `status` for found and unknown ids;
//! `list`, `logs` and each action work exactly when their capability flag
//! says so and are `Unsupported` otherwise; snapshots survive JSON; with
//! transient faults injected the poller still reaches the right terminal
//! state within its error budget, and gives up with a transient error past
//! it.
#![forbid(unsafe_code)]

mod harness;
mod memory;
mod report;
mod suite;

pub use harness::{Expected, Harness, ScriptedTask};
pub use memory::MemoryHarness;
pub use report::{Check, CheckOutcome, Report};
pub use suite::run;

#[doc(no_inline)]
pub use tasktrack_core::TaskProvider;
