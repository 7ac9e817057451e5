//! `[[notify]]` sections: where notifications go, for which events.

use std::time::Duration;

use serde::Deserialize;
use tasktrack_core::{Secret, TaskEvent, TaskEventKind, TaskState};

use crate::args::{duration, DurationBounds};

/// The events a sink may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum On {
    /// A task ended `failed`.
    Failed,
    /// A task ended `succeeded`.
    Succeeded,
    /// A task ended `cancelled`.
    Cancelled,
    /// Tracking gave up (deadline, error budget, a permanent error).
    GaveUp,
    /// A task stopped changing for its policy's `stall_after`.
    Stalled,
}

impl On {
    /// What `event` is, if it is one a sink can ask for.
    pub fn of(event: &TaskEvent) -> Option<On> {
        match &event.kind {
            TaskEventKind::Changed { snapshot } => match snapshot.state {
                TaskState::Failed => Some(On::Failed),
                TaskState::Succeeded => Some(On::Succeeded),
                TaskState::Cancelled => Some(On::Cancelled),
                _ => None,
            },
            TaskEventKind::GaveUp { .. } => Some(On::GaveUp),
            TaskEventKind::Stalled { .. } => Some(On::Stalled),
        }
    }

    /// The name written in `on = [...]` and sent with the notification.
    pub fn name(self) -> &'static str {
        match self {
            On::Failed => "failed",
            On::Succeeded => "succeeded",
            On::Cancelled => "cancelled",
            On::GaveUp => "gave_up",
            On::Stalled => "stalled",
        }
    }
}

/// How a sink is reached.
#[derive(Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// `POST url` with the notification as JSON; with a `secret`, an
    /// `X-Tasktrack-Signature: sha256=HEX` HMAC of the body.
    Webhook {
        /// Where to post.
        url: Secret,
        /// The HMAC-SHA256 key.
        #[serde(default)]
        secret: Option<Secret>,
    },
    /// A Slack incoming webhook (`{"text": …}`); its URL is a credential.
    Slack {
        /// The incoming-webhook URL.
        url: Secret,
    },
    /// Runs `program` with `args`, the notification as JSON on stdin; exit
    /// status 0 acknowledges it.
    Command {
        /// The program.
        program: String,
        /// Its arguments.
        #[serde(default)]
        args: Vec<String>,
    },
}

impl std::fmt::Debug for Target {
    // URLs of webhooks carry tokens (Slack's always do): only the kind.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Target::Webhook { .. } => "webhook",
            Target::Slack { .. } => "slack",
            Target::Command { .. } => "command",
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Filters {
    name: Option<String>,
    on: Vec<On>,
    #[serde(default)]
    backends: Vec<String>,
    #[serde(default)]
    kinds: Vec<String>,
    max_backoff: Option<String>,
    give_up_after: Option<String>,
    backfill: Option<String>,
}

/// One `[[notify]]` section, checked.
#[derive(Debug, Clone)]
pub struct Sink {
    /// Its name: the key of its cursor and role in the store.
    pub name: String,
    /// How it is reached.
    pub target: Target,
    /// The events it gets.
    pub on: Vec<On>,
    /// Only these backends (all when empty).
    pub backends: Vec<String>,
    /// Only these task kinds (all when empty).
    pub kinds: Vec<String>,
    /// The longest wait between two attempts (default 60 s).
    pub max_backoff: Duration,
    /// How long one notification is retried before it is given up (default 1 h).
    pub give_up_after: Duration,
    /// A new sink (no cursor in the store yet) gets the events of this
    /// long before it first runs (default 10 min), not the whole log.
    pub backfill: Duration,
}

const BACKOFF: DurationBounds = DurationBounds {
    min: Duration::from_millis(10),
    max: Duration::from_secs(3600),
};
const GIVE_UP: DurationBounds = DurationBounds {
    min: Duration::from_millis(100),
    max: Duration::from_secs(7 * 86_400),
};
const BACKFILL: DurationBounds = DurationBounds {
    min: Duration::ZERO,
    max: Duration::from_secs(30 * 86_400),
};

impl Sink {
    /// The `index`-th `[[notify]]` table (`${NAME}`s already expanded).
    pub fn parse(index: usize, table: toml::Table) -> Result<Sink, String> {
        let mut filters = table;
        let mut target = toml::Table::new();
        for key in ["kind", "url", "secret", "program", "args"] {
            if let Some(v) = filters.remove(key) {
                target.insert(key.to_owned(), v);
            }
        }
        let target: Target = toml::Value::Table(target)
            .try_into()
            .map_err(|e: toml::de::Error| first_line(&e))?;
        let f: Filters = toml::Value::Table(filters)
            .try_into()
            .map_err(|e: toml::de::Error| first_line(&e))?;
        let kind = format!("{target:?}");
        let name = f.name.unwrap_or_else(|| format!("{kind}-{}", index + 1));
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(format!(
                "name {:?} must be 1 to 64 letters, digits, - or _",
                crate::output::terminal_safe(&name)
            ));
        }
        if f.on.is_empty() {
            return Err(
                "on = [...] names no event (failed, succeeded, cancelled, gave_up, stalled)".into(),
            );
        }
        match &target {
            Target::Webhook { url, .. } | Target::Slack { url } => check_url(url.expose())?,
            Target::Command { program, .. } if program.trim().is_empty() => {
                return Err("program is empty".into())
            }
            Target::Command { .. } => {}
        }
        let parse = |field: &str, value: Option<String>, bounds, default| match value {
            None => Ok(default),
            Some(v) => duration(&v, bounds).map_err(|e| format!("{field}: {e}")),
        };
        Ok(Sink {
            name,
            target,
            on: f.on,
            backends: f.backends,
            kinds: f.kinds,
            max_backoff: parse(
                "max_backoff",
                f.max_backoff,
                BACKOFF,
                Duration::from_secs(60),
            )?,
            give_up_after: parse(
                "give_up_after",
                f.give_up_after,
                GIVE_UP,
                Duration::from_secs(3600),
            )?,
            backfill: parse("backfill", f.backfill, BACKFILL, Duration::from_secs(600))?,
        })
    }

    /// What `event` is for this sink, if the sink wants it.
    pub fn wants(&self, event: &TaskEvent) -> Option<On> {
        let on = On::of(event)?;
        let backend_ok = self.backends.is_empty() || self.backends.contains(&event.provider);
        let kind_ok = self.kinds.is_empty()
            || event
                .snapshot()
                .and_then(|s| s.kind.as_deref())
                .is_some_and(|kind| self.kinds.iter().any(|k| k == kind));
        (self.on.contains(&on) && backend_ok && kind_ok).then_some(on)
    }

    /// The store role (and checkpoint) of this sink.
    pub fn role(&self) -> String {
        format!("notify:{}", self.name)
    }
}

fn check_url(url: &str) -> Result<(), String> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        // The URL itself is a credential: not repeated.
        _ => Err("url must be an http:// or https:// URL with a host".into()),
    }
}

fn first_line(e: &toml::de::Error) -> String {
    crate::output::terminal_safe(e.message().lines().next().unwrap_or_default()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tasktrack_core::{TaskSnapshot, TaskState};

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    fn event(provider: &str, state: TaskState, kind: &str) -> TaskEvent {
        let mut snapshot = TaskSnapshot::new(provider, "42", state);
        snapshot.kind = Some(kind.to_owned());
        TaskEvent::new(
            provider,
            "42",
            Some(TaskState::Running),
            TaskEventKind::Changed {
                snapshot: Box::new(snapshot),
            },
        )
    }

    #[test]
    fn a_webhook_sink_with_filters_picks_its_events() {
        let sink = Sink::parse(
            0,
            table(
                r#"kind = "webhook"
                url = "https://hooks.example.com/t"
                secret = "k"
                on = ["failed", "gave_up"]
                backends = ["pve"]
                kinds = ["vzdump"]
                max_backoff = "5s""#,
            ),
        )
        .unwrap();
        assert_eq!(sink.name, "webhook-1");
        assert_eq!(sink.role(), "notify:webhook-1");
        assert_eq!(sink.max_backoff, Duration::from_secs(5));
        assert_eq!(sink.give_up_after, Duration::from_secs(3600));
        assert_eq!(
            sink.wants(&event("pve", TaskState::Failed, "vzdump")),
            Some(On::Failed)
        );
        assert_eq!(
            sink.wants(&event("pve", TaskState::Succeeded, "vzdump")),
            None
        );
        assert_eq!(sink.wants(&event("ocp", TaskState::Failed, "vzdump")), None);
        assert_eq!(
            sink.wants(&event("pve", TaskState::Failed, "qmstart")),
            None
        );
        assert_eq!(
            format!("{:?}", sink.target),
            "webhook",
            "no URL or secret in Debug"
        );
    }

    #[test]
    fn bad_sections_are_refused_without_echoing_the_url() {
        let refused = |text: &str| Sink::parse(0, table(text)).unwrap_err();
        assert!(refused(r#"kind = "pager""#).contains("pager"));
        let e = refused(
            r#"kind = "slack"
            url = "ftp://hooks.slack.com/services/T000/B000/XXXXSECRET"
            on = ["failed"]"#,
        );
        assert!(!e.contains("XXXXSECRET"), "{e}");
        assert!(refused(
            r#"kind = "command"
            program = "notify-send"
            on = []"#
        )
        .contains("no event"));
        assert!(refused(
            r#"kind = "command"
            program = "x"
            on = ["failed"]
            name = "has space""#
        )
        .contains("letters"));
        assert!(refused(
            r#"kind = "command"
            program = "x"
            on = ["exploded"]"#
        )
        .contains("exploded"));
        assert!(refused(
            r#"kind = "command"
            program = "x"
            on = ["failed"]
            max_backoff = "1e30""#
        )
        .contains("max_backoff"));
        assert!(refused(
            r#"kind = "command"
            program = "x"
            on = ["failed"]
            colour = "red""#
        )
        .contains("colour"));
    }
}
