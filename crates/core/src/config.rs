//! [`BackendConfig`]: how an adapter crate makes itself configurable. Each
//! exports one `serde::Deserialize` config whose fields are what a config
//! file's `[backends.NAME]` table holds besides `kind`, and one way into a
//! ready provider; a front end (the `tasktrack` CLI, a dashboard of your
//! own) keeps a list of kinds and dispatches once.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::{DynTaskProvider, Error, MemoryProvider, Result, ScriptOutcome, TaskScript};

/// A backend's configuration, as its adapter crate defines it.
pub trait BackendConfig: DeserializeOwned + Send + Sync + 'static {
    /// The `kind` that names this backend in a config file.
    const KIND: &'static str;
    /// What a task id of this backend looks like, for error messages.
    const ID_SYNTAX: &'static str;
    /// The configuration read from environment variables (each adapter
    /// documents their names).
    fn from_env() -> Result<Self>;
    /// A ready provider registered under `name`.
    fn provider(&self, name: &str) -> Result<Arc<dyn DynTaskProvider>>;
    /// Bounds the requests the provider's client sends over its life to at
    /// most `max` (a front end's one-shot commands use this). Backends that
    /// make no requests ignore it.
    fn limit_requests(&mut self, max: u64) {
        let _ = max;
    }
    /// Shares the backend's request budget (its `http.max_requests_per_second`)
    /// with every replica using `store`. Backends that make no requests
    /// ignore it.
    fn share_budget(&mut self, store: Arc<dyn crate::TrackStore>) {
        let _ = store;
    }
}

/// Reads a required environment variable; the error names it, never a value.
pub fn env_var(provider: &str, name: &str) -> Result<String> {
    std::env::var(name).map_err(|_| {
        Error::invalid_input(provider, format!("environment variable {name} is not set"))
    })
}

/// Reads an optional environment variable.
pub fn env_var_opt(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `kind = "memory"`: the in-memory provider, with scripted tasks that start
/// when the provider is built. For trying a front end without a backend,
/// and the proof that a kind is one entry in a front end's list.
///
/// ```toml
/// [backends.mem]
/// kind = "memory"
/// tasks = [{ kind = "backup", seconds = 2 }, { kind = "restore", seconds = 1, fails = true }]
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MemoryConfig {
    /// Tasks started at build time, numbered from 1.
    #[serde(default)]
    pub tasks: Vec<MemoryTaskConfig>,
}

/// One scripted task of a [`MemoryConfig`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MemoryTaskConfig {
    /// Its kind.
    pub kind: String,
    /// How long it runs (at most a day).
    pub seconds: u32,
    /// Whether it fails at the end.
    #[serde(default)]
    pub fails: bool,
}

impl BackendConfig for MemoryConfig {
    const KIND: &'static str = "memory";
    const ID_SYNTAX: &'static str = "a task number (1, 2, ...)";

    fn from_env() -> Result<Self> {
        Ok(MemoryConfig::default())
    }

    fn provider(&self, name: &str) -> Result<Arc<dyn DynTaskProvider>> {
        let provider = MemoryProvider::new(name);
        for task in &self.tasks {
            if task.seconds > 86_400 {
                return Err(Error::invalid_input(
                    name,
                    "a memory task runs at most 86400 seconds",
                ));
            }
            let mut script = TaskScript::new(&task.kind, Duration::from_secs(task.seconds.into()));
            if task.fails {
                script = script.with_outcome(ScriptOutcome::failed("E", "scripted failure"));
            }
            provider.start(script);
        }
        Ok(Arc::new(provider))
    }
}
