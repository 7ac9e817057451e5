//! Where a person's and a collector's log lines go, and what a panic prints.

use crate::output;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line each.
    Text,
    /// One JSON object each.
    Json,
}

/// The log filter: RUST_LOG if set, else from -v / -q; services log
/// warnings by default, one-shot commands nothing (they print one clear
/// line per problem themselves).
pub fn filter(quiet: bool, verbose: u8, service: bool) -> tracing_subscriber::EnvFilter {
    if let Ok(f) = tracing_subscriber::EnvFilter::try_from_default_env() {
        return f;
    }
    let level = match (quiet, verbose, service) {
        (true, _, _) => "off",
        (false, 0, true) => "warn",
        (false, 0, false) => "off",
        (false, 1, _) => "info",
        (false, 2, _) => "debug",
        _ => "trace",
    };
    tracing_subscriber::EnvFilter::new(level)
}

/// What logging set up that must be finished before exit.
pub struct Telemetry {
    #[cfg(feature = "otel")]
    export: Option<crate::telemetry::Export>,
}

impl Telemetry {
    /// Flushes spans still waiting for export (a no-op without the `otel`
    /// feature or an endpoint).
    pub async fn shutdown(self) {
        #[cfg(feature = "otel")]
        if let Some(export) = self.export {
            export.shutdown().await;
        }
    }
}

/// Installs the log writer on stderr (text or JSON, filtered by
/// [`filter`]) and, with the `otel` feature and an OTLP endpoint in the
/// environment, the span exporter, whose filter is its own: spans go to a
/// collector even when no log line goes to stderr.
pub fn init(format: LogFormat, quiet: bool, verbose: u8, service: bool) -> Telemetry {
    use tracing_subscriber::prelude::*;
    let writer = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let logs =
        tracing_subscriber::registry().with(writer.with_filter(filter(quiet, verbose, service)));
    #[cfg(feature = "otel")]
    if let Some((export_layer, export)) = crate::telemetry::layer() {
        logs.with(export_layer).init();
        return Telemetry {
            export: Some(export),
        };
    }
    logs.init();
    Telemetry {
        #[cfg(feature = "otel")]
        export: None,
    }
}

/// One line instead of a panic's report: a person sees what happened and
/// what to do, never a backtrace.
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        // redb panics on some damaged pages; the file store catches them
        // and reports the file in one line of its own.
        if info.location().is_some_and(|l| l.file().contains("redb")) {
            return;
        }
        let payload = info.payload();
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        output::note!(
            "error: tasktrack hit a bug ({}{at}); please report it with the command that was run",
            text.lines().next().unwrap_or_default()
        );
    }));
}
