//! What a vendor plugs into a simulator, and what its routes share.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use axum::Router;

use crate::auth::AuthState;
use crate::clock::SimClock;
use crate::engine::{TaskEngine, TaskSpec};
use crate::faults::{Faults, RequestLog};
use crate::store::TaskStore;

/// One vendor's wire protocol.
pub trait Vendor: Send + Sync + 'static {
    /// Short name (`generic`, `proxmox`, …).
    fn name(&self) -> &'static str;
    /// The vendor's routes over the shared context.
    fn router(&self, ctx: SimContext) -> Router;
    /// An error answer in the vendor's style (used by injected faults too).
    fn error_response(&self, status: StatusCode, message: &str) -> Response;
    /// Creates a scripted task, with an id in the vendor's format.
    fn create_task(&self, ctx: &SimContext, spec: TaskSpec) -> String {
        ctx.engine.create(spec)
    }
    /// The store of a vendor that keeps its tasks itself (OCP's DAGs), made
    /// with its clock when the vendor was; `None` (the default) when its
    /// tasks are the scripted engine's.
    fn task_store(&self) -> Option<Arc<dyn TaskStore>> {
        None
    }
}

/// What every route of a simulator shares. Cheap to clone.
#[derive(Clone)]
pub struct SimContext {
    /// Scripted tasks.
    pub engine: TaskEngine,
    /// Fault rules.
    pub faults: Faults,
    /// Request counts.
    pub requests: RequestLog,
    /// Credential expiry.
    pub auth: AuthState,
    /// Every task the vendor serves: the engine, or the vendor's own store.
    pub tasks: Arc<dyn TaskStore>,
    pub(crate) vendor: Arc<dyn Vendor>,
}

impl std::fmt::Debug for SimContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimContext")
            .field("vendor", &self.vendor.name())
            .field("tasks", &self.tasks.len())
            .finish_non_exhaustive()
    }
}

impl SimContext {
    /// The simulator's clock.
    pub fn clock(&self) -> &SimClock {
        self.tasks.clock()
    }
    /// An error answer in the vendor's style.
    pub fn error_response(&self, status: StatusCode, message: &str) -> Response {
        self.vendor.error_response(status, message)
    }
    /// Creates a scripted task with a vendor-format id.
    pub fn create_task(&self, spec: TaskSpec) -> String {
        self.vendor.create_task(self, spec)
    }
}
