//! `tasktrack serve` and the clean shutdown every long-running command uses.

use std::sync::Arc;

use futures::StreamExt;
use tasktrack_core::{TrackStore, Tracker};

use super::fleet::scheduler_died;
use crate::config::Config;
use crate::error::CliError;
use crate::output::out;

/// What `tasktrack serve` was asked for.
pub struct ServeOptions {
    /// Address to listen on.
    pub listen: std::net::SocketAddr,
    /// Shared tracked set and event log.
    pub store: Option<Arc<dyn TrackStore>>,
    /// Whether control actions are allowed.
    pub allow_actions: bool,
    /// The bearer token.
    pub token: Option<tasktrack_core::Secret>,
    /// Connections held at once.
    pub max_connections: usize,
    /// Where people reach the server, for the `Host` check.
    pub public_url: Option<url::Url>,
}

/// `tasktrack serve`: the web dashboard over every configured backend.
pub async fn serve(config: &Config, options: ServeOptions) -> Result<(), CliError> {
    let mut named = Vec::new();
    let mut builder = Tracker::builder();
    let owner = builder.owner().to_owned();
    if let Some(s) = &options.store {
        builder = builder.with_store(s.clone());
    }
    let sinks = config.sinks()?;
    let (stop_notifying, notify_stop) = tokio::sync::watch::channel(false);
    let notifiers = match (&options.store, sinks.is_empty()) {
        (_, true) => Vec::new(),
        (Some(store), false) => crate::notify::spawn(
            sinks,
            store.clone(),
            owner,
            std::time::Duration::from_secs(15),
            notify_stop,
        )?,
        (None, false) => {
            return Err(CliError::usage(
                "[[notify]] sinks read the store's event log, and serve has no store",
                "pass --store file:./tasktrack.db (or redis://…)",
            ))
        }
    };
    for name in config.backends.keys() {
        let p = config.provider(name)?;
        builder = builder.with_provider(name.clone(), p.clone());
        named.push((name.clone(), p));
    }
    let (tracker, mut events) = builder.build();
    let dashboard = crate::web::Dashboard::new(
        named.clone(),
        options.store,
        options.allow_actions,
        options.token,
    );
    let bound = crate::web::start(
        dashboard.clone(),
        options.listen,
        options.max_connections,
        options.public_url.as_ref(),
    )
    .await?;
    let _ = out!(
        "dashboard: http://{bound}/ ({} backend(s); Ctrl-C stops)",
        named.len()
    );
    // Each backend is listed on its own, off this loop: a slow one cannot
    // hold up the events of the others.
    let listings: Vec<_> = named
        .iter()
        .filter(|(_, p)| p.provider_capabilities().list)
        .map(|(name, p)| {
            crate::web::relist::spawn(
                dashboard.clone(),
                tracker.clone(),
                name.clone(),
                p.clone(),
                crate::web::relist::EVERY,
                crate::web::relist::TIMEOUT,
            )
        })
        .collect();
    let stop = shutdown_signal();
    tokio::pin!(stop);
    let result = loop {
        tokio::select! {
            e = events.next() => match e {
                Some(event) => dashboard.publish(&event),
                None => break Err(scheduler_died()),
            },
            _ = &mut stop => {
                exit_on_second_signal();
                break Ok(());
            }
        }
    };
    for listing in listings {
        listing.abort();
    }
    stop_within(&tracker).await;
    let _ = stop_notifying.send(true);
    crate::notify::join(notifiers).await;
    result
}

/// How long a clean shutdown may take: in-flight polls finish, leases are
/// released and the store is flushed, or the process exits anyway.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Stops `tracker` (polls in flight finish, leases are released), giving up
/// after [`SHUTDOWN_GRACE`].
pub async fn stop_within(tracker: &Tracker) {
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.stop())
        .await
        .is_err()
    {
        tracing::warn!("the tracker did not stop within {SHUTDOWN_GRACE:?}; exiting anyway");
    }
}

/// After the first signal, a second one exits at once (status 130).
pub fn exit_on_second_signal() {
    tokio::spawn(async {
        shutdown_signal().await;
        std::process::exit(130);
    });
}

/// Resolves on Ctrl-C or SIGTERM: either is a clean shutdown.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
