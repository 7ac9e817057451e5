//! The seam between a simulator's routes and wherever its tasks live: the
//! scripted [`TaskEngine`](crate::TaskEngine) for most vendors, OCP's DAG
//! store for OCP. The control API (`/_sim/tasks`) and
//! [`SimHandle::tasks`](crate::SimHandle::tasks) read every vendor's tasks
//! through it.

use crate::clock::SimClock;
use crate::engine::TaskView;

/// Where a simulator keeps its tasks.
pub trait TaskStore: Send + Sync + std::fmt::Debug + 'static {
    /// The clock the tasks move on, given when the store was made.
    fn clock(&self) -> &SimClock;
    /// Every task now, in creation order.
    fn list(&self) -> Vec<TaskView>;
    /// One task now, by its id as the vendor writes it.
    fn view(&self, id: &str) -> Option<TaskView>;
    /// Forgets a task, as a backend that lost it would (404 from then on).
    fn remove(&self, id: &str) -> bool;
    /// Number of tasks.
    fn len(&self) -> usize;
    /// True when there is no task.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl TaskStore for crate::engine::TaskEngine {
    fn clock(&self) -> &SimClock {
        crate::engine::TaskEngine::clock(self)
    }
    fn list(&self) -> Vec<TaskView> {
        crate::engine::TaskEngine::list(self)
    }
    fn view(&self, id: &str) -> Option<TaskView> {
        crate::engine::TaskEngine::view(self, id)
    }
    fn remove(&self, id: &str) -> bool {
        crate::engine::TaskEngine::remove(self, id)
    }
    fn len(&self) -> usize {
        crate::engine::TaskEngine::len(self)
    }
}
