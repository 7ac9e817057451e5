//! Type erasure: [`DynTaskProvider`], the object-safe twin of
//! [`TaskProvider`] that every provider is through a blanket impl, and
//! [`ErasedProvider`], which turns one back into a `TaskProvider` with
//! string ids.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::model::{TaskSnapshot, TaskStatus};
use crate::provider::{
    ActionReceipt, Capabilities, LogLine, LogRange, TaskAction, TaskFilter, TaskPage, TaskProvider,
};

/// The object-safe form of [`TaskProvider`]: string ids in, [`TaskSnapshot`]s
/// out. Every `TaskProvider` is a `DynTaskProvider` through a blanket impl, so
/// a dashboard can hold `Arc<dyn DynTaskProvider>` of mixed vendors.
///
/// Its methods have their own names (`snapshot`, not `status`) so that both
/// traits can be in scope at once without every call becoming ambiguous.
#[async_trait]
pub trait DynTaskProvider: Send + Sync + 'static {
    /// See [`TaskProvider::name`].
    fn provider_name(&self) -> &str;
    /// See [`TaskProvider::capabilities`].
    fn provider_capabilities(&self) -> Capabilities;
    /// Parses and re-formats an id, so a malformed id is refused before any
    /// request ([`Error::InvalidInput`]).
    fn canonical_id(&self, id: &str) -> Result<String>;
    /// The task's current [`TaskSnapshot`]; see [`TaskProvider::status`].
    async fn snapshot(&self, id: &str) -> Result<TaskSnapshot>;
    /// Snapshots of many tasks in `ids` order; see [`TaskProvider::status_many`].
    async fn snapshot_many(&self, ids: &[String]) -> Vec<Result<TaskSnapshot>>;
    /// One page of snapshots; see [`TaskProvider::list`].
    async fn list_snapshots(&self, filter: &TaskFilter) -> Result<TaskPage<TaskSnapshot>>;
    /// Log lines; see [`TaskProvider::logs`].
    async fn log_lines(&self, id: &str, range: LogRange) -> Result<Vec<LogLine>>;
    /// Sends a control action; see [`TaskProvider::act`].
    async fn perform(&self, id: &str, action: TaskAction) -> Result<ActionReceipt>;
}

#[async_trait]
impl<P: TaskProvider> DynTaskProvider for P {
    fn provider_name(&self) -> &str {
        self.name()
    }

    fn provider_capabilities(&self) -> Capabilities {
        self.capabilities()
    }

    fn canonical_id(&self, id: &str) -> Result<String> {
        self.parse_id(id).map(|id| id.to_string())
    }

    async fn snapshot(&self, id: &str) -> Result<TaskSnapshot> {
        let typed = self.parse_id(id)?;
        let status = self.status(&typed).await?;
        Ok(status.snapshot(self.name(), &typed.to_string()))
    }

    async fn snapshot_many(&self, ids: &[String]) -> Vec<Result<TaskSnapshot>> {
        let name = self.name();
        // Parse everything first; only the valid ids go to the provider
        // (moved, not copied: a batch holds thousands), and the answers are
        // woven back into the caller's order around the ids that failed.
        let mut valid: Vec<P::Id> = Vec::with_capacity(ids.len());
        let mut refused: VecDeque<(usize, Error)> = ids
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match self.parse_id(s) {
                Ok(id) => {
                    valid.push(id);
                    None
                }
                Err(e) => Some((i, e)),
            })
            .collect();
        let mut answers = self.status_many(&valid).await.into_iter();
        let mut valid_iter = valid.iter();
        (0..ids.len())
            .map(|i| {
                if refused.front().is_some_and(|(at, _)| *at == i) {
                    if let Some((_, e)) = refused.pop_front() {
                        return Err(e);
                    }
                }
                let id = valid_iter
                    .next()
                    .map(|id| id.to_string())
                    .unwrap_or_default();
                match answers.next() {
                    Some(r) => r.map(|s| s.snapshot(name, &id)),
                    None => Err(Error::decode(
                        name,
                        "status_many answer",
                        ".",
                        "provider returned fewer answers than ids",
                    )),
                }
            })
            .collect()
    }

    async fn list_snapshots(&self, filter: &TaskFilter) -> Result<TaskPage<TaskSnapshot>> {
        let name = self.name();
        let page = self.list(filter).await?;
        // A listing names each task once, even when the backend repeats
        // one (pages shifting while read, or a hostile server): consumers
        // count rows as tasks.
        let mut seen = HashSet::new();
        Ok(TaskPage {
            items: page
                .items
                .into_iter()
                .map(|(id, s)| (id.to_string(), s))
                .filter(|(id, _)| seen.insert(id.clone()))
                .map(|(id, s)| s.snapshot(name, &id))
                .collect(),
            next_cursor: page.next_cursor,
            total: page.total,
        })
    }

    async fn log_lines(&self, id: &str, range: LogRange) -> Result<Vec<LogLine>> {
        let typed = self.parse_id(id)?;
        self.logs(&typed, range).await
    }

    async fn perform(&self, id: &str, action: TaskAction) -> Result<ActionReceipt> {
        let typed = self.parse_id(id)?;
        self.act(&typed, action).await
    }
}

/// A [`DynTaskProvider`] seen as a [`TaskProvider`] (string ids,
/// [`TaskSnapshot`] statuses), so the typed [`Poller`](crate::Poller) works
/// on providers chosen at run time (from a config file, say).
#[derive(Clone)]
pub struct ErasedProvider(pub Arc<dyn DynTaskProvider>);

impl fmt::Debug for ErasedProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ErasedProvider")
            .field(&self.0.provider_name())
            .finish()
    }
}

#[async_trait]
impl TaskProvider for ErasedProvider {
    type Id = String;
    type Status = TaskSnapshot;

    fn name(&self) -> &str {
        self.0.provider_name()
    }
    fn capabilities(&self) -> Capabilities {
        self.0.provider_capabilities()
    }
    async fn status(&self, id: &String) -> Result<TaskSnapshot> {
        self.0.snapshot(id).await
    }
    async fn status_many(&self, ids: &[String]) -> Vec<Result<TaskSnapshot>> {
        self.0.snapshot_many(ids).await
    }
    async fn list(&self, filter: &TaskFilter) -> Result<TaskPage<(String, TaskSnapshot)>> {
        let page = self.0.list_snapshots(filter).await?;
        Ok(TaskPage {
            items: page.items.into_iter().map(|s| (s.id.clone(), s)).collect(),
            next_cursor: page.next_cursor,
            total: page.total,
        })
    }
    async fn logs(&self, id: &String, range: LogRange) -> Result<Vec<LogLine>> {
        self.0.log_lines(id, range).await
    }
    async fn act(&self, id: &String, action: TaskAction) -> Result<ActionReceipt> {
        self.0.perform(id, action).await
    }
}
