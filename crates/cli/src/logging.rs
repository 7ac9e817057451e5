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
