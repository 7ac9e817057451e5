//! What operators and their tools ask a running `serve` or `worker`:
//! `/metrics` (Prometheus text), `/healthz` (the process answers) and
//! `/readyz` (its store answers).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tasktrack_core::TrackStore;

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder once per process (the tracker's metrics
/// go nowhere until then); `None` when another recorder is installed.
pub fn recorder() -> Option<PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let handle = PrometheusBuilder::new().install_recorder().ok()?;
            tasktrack_core::describe_metrics();
            crate::notify::describe_metrics();
            let upkeep = handle.clone();
            // Histograms are drained in the background, so /metrics stays
            // cheap and memory stays flat over weeks.
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    upkeep.run_upkeep();
                }
            });
            Some(handle)
        })
        .clone()
}

/// The routes, with `store` checked by `/readyz` when there is one.
pub fn router<S: Clone + Send + Sync + 'static>(store: Option<Arc<dyn TrackStore>>) -> Router<S> {
    let handle = recorder();
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let handle = handle.clone();
                async move {
                    match handle {
                        Some(h) => (
                            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                            h.render(),
                        )
                            .into_response(),
                        None => (StatusCode::NOT_FOUND, "no metrics recorder").into_response(),
                    }
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(move || ready(store.clone())))
}

async fn ready(store: Option<Arc<dyn TrackStore>>) -> Response {
    let Some(store) = store else {
        return "ready\n".into_response();
    };
    match tokio::time::timeout(Duration::from_secs(2), store.last_cursor()).await {
        Ok(Ok(_)) => "ready\n".into_response(),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the store does not answer: {}\n",
                first_line(&e.to_string())
            ),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the store did not answer within 2s\n",
        )
            .into_response(),
    }
}

fn first_line(s: &str) -> String {
    crate::output::terminal_safe(s.lines().next().unwrap_or_default()).into_owned()
}

/// Serves the routes alone on `addr` (`worker --metrics-listen`); the
/// bound address.
pub async fn serve(
    addr: std::net::SocketAddr,
    store: Option<Arc<dyn TrackStore>>,
) -> Result<std::net::SocketAddr, crate::error::CliError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        crate::error::CliError::usage(
            format!("cannot listen on {addr}: {e}"),
            "pick another --metrics-listen address",
        )
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| crate::error::CliError::usage(e.to_string(), "try again"))?;
    let app: Router = router(store);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(bound)
}
