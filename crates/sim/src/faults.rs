//! Fault injection and request counting, per simulator and per route.
//!
//! A route is named by its method and axum path pattern, e.g.
//! `GET /api/tasks/{id}`; rules may name a route, a pattern (any method), or
//! `*` for every route.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// One kind of misbehaviour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer this status in the vendor's error style (500, 502, 503, 429…),
    /// with `Retry-After` seconds when given.
    Status {
        /// HTTP status.
        status: u16,
        /// `Retry-After` in seconds.
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// Wait this long (real time) before answering normally.
    Latency {
        /// Milliseconds.
        ms: u64,
    },
    /// Start a 200 answer, then close the connection mid-body.
    DropConnection,
    /// Answer normally but cut the body in half (valid HTTP, broken JSON).
    Truncated,
    /// Answer a proxy's HTML error page with this status.
    Html {
        /// HTTP status.
        status: u16,
    },
}

impl Fault {
    /// `Status` without `Retry-After`.
    pub fn status(status: u16) -> Self {
        Fault::Status {
            status,
            retry_after: None,
        }
    }
    /// 429 with `Retry-After`.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Fault::Status {
            status: 429,
            retry_after: Some(retry_after_secs),
        }
    }
    /// Added latency.
    pub fn latency(d: Duration) -> Self {
        Fault::Latency {
            ms: d.as_millis().try_into().unwrap_or(u64::MAX),
        }
    }
}

/// A fault on some route for some number of requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    /// `*`, a path pattern, or `METHOD pattern`.
    pub route: String,
    /// What to do.
    pub fault: Fault,
    /// For how many matching requests; `None` until cleared.
    #[serde(default)]
    pub times: Option<u32>,
}

impl FaultRule {
    fn matches(&self, key: &str) -> bool {
        self.route == "*"
            || self.route == key
            || key
                .split_once(' ')
                .is_some_and(|(_, pattern)| pattern == self.route)
    }
}

/// The active fault rules of one simulator. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<Mutex<Vec<FaultRule>>>);

impl Faults {
    fn lock(&self) -> MutexGuard<'_, Vec<FaultRule>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a rule; rules apply in the order added.
    pub fn add(&self, rule: FaultRule) {
        self.lock().push(rule);
    }

    /// The next `n` requests to `route` get `fault`.
    pub fn next(&self, n: u32, route: impl Into<String>, fault: Fault) {
        self.add(FaultRule {
            route: route.into(),
            fault,
            times: Some(n),
        });
    }

    /// Every request to `route` gets `fault` until [`clear`](Self::clear).
    pub fn always(&self, route: impl Into<String>, fault: Fault) {
        self.add(FaultRule {
            route: route.into(),
            fault,
            times: None,
        });
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The rules still active.
    pub fn rules(&self) -> Vec<FaultRule> {
        self.lock().clone()
    }

    pub(crate) fn take(&self, key: &str) -> Option<Fault> {
        let mut rules = self.lock();
        let i = rules.iter().position(|r| r.matches(key))?;
        let fault = rules[i].fault.clone();
        if let Some(times) = rules[i].times.as_mut() {
            *times = times.saturating_sub(1);
            if *times == 0 {
                rules.remove(i);
            }
        }
        Some(fault)
    }
}

/// Requests received, per route (`METHOD pattern`). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<BTreeMap<String, u64>>>);

impl RequestLog {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, u64>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn hit(&self, key: &str) {
        *self.lock().entry(key.to_owned()).or_default() += 1;
    }

    /// Counts per route.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.lock().clone()
    }

    /// Requests to one route (`METHOD pattern`, or a pattern for any method).
    pub fn count(&self, route: &str) -> u64 {
        self.lock()
            .iter()
            .filter(|(k, _)| {
                k.as_str() == route || k.split_once(' ').is_some_and(|(_, p)| p == route)
            })
            .map(|(_, v)| v)
            .sum()
    }

    /// Requests in all.
    pub fn total(&self) -> u64 {
        self.lock().values().sum()
    }

    /// Forgets the counts.
    pub fn reset(&self) {
        self.lock().clear();
    }
}
