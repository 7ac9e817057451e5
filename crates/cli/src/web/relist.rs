//! `serve`'s periodic listings: one task per backend, each with its own
//! timeout, so a slow or hanging backend marks only itself unhealthy while
//! the others' listings and every page's events go on.

use std::sync::Arc;
use std::time::Duration;

use tasktrack_core::{DynTaskProvider, TaskFilter, Tracker};
use tokio::task::JoinHandle;

use super::SharedDashboard;

/// How often each backend is listed.
pub const EVERY: Duration = Duration::from_secs(30);
/// How long one listing may take before the backend counts as unhealthy.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Lists `provider` now and then every `every`, showing what it lists and
/// tracking what still runs.
pub fn spawn(
    dashboard: SharedDashboard,
    tracker: Tracker,
    name: String,
    provider: Arc<dyn DynTaskProvider>,
    every: Duration,
    timeout: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let filter = TaskFilter::new().with_limit(500);
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let result = match tokio::time::timeout(timeout, provider.list_snapshots(&filter)).await
            {
                Ok(Ok(page)) => {
                    for s in page.items {
                        dashboard.show(&s);
                        // Tracking a task already tracked changes nothing.
                        if !s.state.is_terminal() {
                            let _ = tracker.track(&name, &s.id);
                        }
                    }
                    Ok(())
                }
                Ok(Err(e)) => Err(e.to_string().lines().next().unwrap_or_default().to_owned()),
                Err(_) => Err(format!(
                    "the listing took longer than {}",
                    humantime::format_duration(timeout)
                )),
            };
            if let Err(e) = &result {
                tracing::warn!(backend = %name, error = %e, "listing failed");
            }
            dashboard.set_health(&name, result);
        }
    })
}
