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
#![cfg_attr(docsrs, feature(doc_cfg))]

mod harness;
mod memory;
mod report;
#[cfg(feature = "sim")]
pub mod sim;
pub mod store;
mod suite;

pub use harness::{Expected, Harness, ScriptedTask};
pub use memory::MemoryHarness;
pub use report::{Check, CheckOutcome, Report};
pub use suite::run;

#[doc(no_inline)]
pub use tasktrack_core::TaskProvider;

/// Arbitrary JSON documents for decoder tests: nested objects and arrays of
/// every JSON type, with keys drawn from `keys` (so generated objects hit the
/// fields a decoder looks for) and from random text.
pub fn arbitrary_json(
    keys: &'static [&'static str],
) -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    let key = prop_oneof![
        proptest::sample::select(keys).prop_map(str::to_owned),
        "[a-zA-Z_]{0,8}"
    ];
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".{0,24}".prop_map(serde_json::Value::from),
        proptest::sample::select(
            &[
                "RUNNING",
                "FAILED",
                "stopped",
                "OK",
                "WARNINGS: 2",
                "FINISH",
                "2024-05-01T10:00:00+08:00",
                "2022-09-01 11:52:24",
                "UPID:pve1:1:2:3:x:1:root@pam:"
            ][..]
        )
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(key.clone(), inner, 0..8)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}
