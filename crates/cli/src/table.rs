//! The live unified table: one row per task, updated in place.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use console::style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tasktrack_core::{TaskEvent, TaskEventKind, TaskSnapshot, TaskState};

use crate::output::terminal_safe;

/// One row's data.
#[derive(Debug, Clone)]
pub struct Row {
    /// Backend name.
    pub backend: String,
    /// Full task id.
    pub id: String,
    /// Kind of work.
    pub kind: String,
    /// Normalized state, when known.
    pub state: Option<TaskState>,
    /// Percent done, when the backend says.
    pub percent: Option<f32>,
    /// Failure, warnings or current step.
    pub message: String,
    first_seen: Instant,
    finished: Option<Instant>,
    /// The task's own start and end, when the backend reports them.
    started_at: Option<chrono::DateTime<chrono::Utc>>,
    finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Terminal when first seen: with no times of its own, its duration is
    /// unknown.
    ended_before_seen: bool,
}

/// Shortens an id for a column: a UPID to `node:pid`, anything long to its
/// start and end.
pub fn short_id(id: &str) -> String {
    if let Some(rest) = id.strip_prefix("UPID:") {
        let mut fields = rest.split(':');
        if let (Some(node), Some(pid)) = (fields.next(), fields.next()) {
            return format!("{node}:{pid}");
        }
    }
    let id = id.rsplit('/').next().unwrap_or(id);
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 14 {
        return id.to_owned();
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 7..].iter().collect();
    format!("{head}…{tail}")
}

/// True when `text` has the shape [`short_id`] gives a long id
/// (`node:PID`, or `head…tail`): only such text is looked up in a listing,
/// so a mistyped or hostile id costs no request.
pub fn is_short_form(text: &str) -> bool {
    let word = |w: &str, max: usize| {
        !w.is_empty()
            && w.len() <= max
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if let Some((head, tail)) = text.split_once('\u{2026}') {
        return word(head, 6) && word(tail, 7);
    }
    match text.split_once(':') {
        Some((node, pid)) => {
            word(node, 64) && pid.len() == 8 && pid.bytes().all(|b| b.is_ascii_hexdigit())
        }
        None => false,
    }
}

fn message_of(s: &TaskSnapshot) -> String {
    if let Some(f) = &s.failure {
        return f.to_string();
    }
    if let Some(w) = s.warnings.filter(|w| *w > 0) {
        return format!("{w} warning(s)");
    }
    if let Some(op) = s
        .attributes
        .get("operation")
        .filter(|op| op.as_str() != "EXECUTE")
    {
        return format!("operation {op}");
    }
    let running: Vec<&str> = s
        .steps
        .iter()
        .filter(|st| st.state == TaskState::Running)
        .map(|st| st.name.as_str())
        .collect();
    running.join(", ")
}

fn bar(percent: Option<f32>) -> String {
    match percent {
        Some(p) => {
            let filled = ((p / 100.0) * 20.0).round().clamp(0.0, 20.0) as usize;
            format!(
                "[{}{}] {:>3.0}%",
                "#".repeat(filled),
                "-".repeat(20 - filled),
                p
            )
        }
        None => " ".repeat(27),
    }
}

fn state_text(state: Option<TaskState>, colour: bool) -> String {
    let text = format!("{:<9}", state.map_or("-", TaskState::as_str));
    if !colour {
        return text;
    }
    match state {
        Some(TaskState::Succeeded) => style(text).green().to_string(),
        Some(TaskState::Failed) => style(text).red().to_string(),
        Some(TaskState::Cancelled) => style(text).magenta().to_string(),
        Some(TaskState::Running) => style(text).cyan().to_string(),
        Some(TaskState::Unknown) => style(text).yellow().to_string(),
        _ => style(text).dim().to_string(),
    }
}

fn elapsed(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:>5.1}s")
    } else {
        format!("{:>3}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

impl Row {
    fn new(backend: &str, id: &str) -> Row {
        Row {
            backend: backend.to_owned(),
            id: id.to_owned(),
            kind: String::new(),
            state: None,
            percent: None,
            message: String::new(),
            first_seen: Instant::now(),
            finished: None,
            started_at: None,
            finished_at: None,
            ended_before_seen: false,
        }
    }

    /// A row showing one snapshot.
    pub fn from_snapshot(s: &TaskSnapshot) -> Row {
        let mut row = Row::new(&s.provider, &s.id);
        row.apply(s);
        row
    }

    fn apply(&mut self, s: &TaskSnapshot) {
        // DCS's progress answer names no kind: its first step says what it is.
        self.kind = s
            .kind
            .clone()
            .or_else(|| s.title.clone())
            .or_else(|| s.steps.first().map(|st| st.name.clone()))
            .unwrap_or_default();
        if self.state.is_none() {
            self.ended_before_seen = s.state.is_terminal();
        }
        self.state = Some(s.state);
        self.percent = s.progress.as_ref().and_then(|p| p.percent);
        self.message = message_of(s);
        self.started_at = s.started_at.or(self.started_at);
        self.finished_at = s.finished_at;
        if s.state.is_terminal() {
            self.finished.get_or_insert_with(Instant::now);
        } else {
            self.finished = None;
        }
    }

    /// How long the task ran: from its own start and end when the backend
    /// reports them, else from when this command saw it; `None` for a task
    /// over before it was first seen with no times of its own.
    fn took(&self) -> Option<Duration> {
        if let Some(start) = self.started_at {
            let end = match (self.finished_at, self.finished) {
                (Some(end), _) => end,
                (None, Some(seen_end)) => {
                    chrono::Utc::now()
                        - chrono::Duration::from_std(seen_end.elapsed()).unwrap_or_default()
                }
                (None, None) => chrono::Utc::now(),
            };
            return Some((end - start).to_std().unwrap_or_default());
        }
        if self.ended_before_seen {
            return None;
        }
        Some(self.finished.unwrap_or_else(Instant::now) - self.first_seen)
    }

    /// The row as one line.
    pub fn render(&self, colour: bool) -> String {
        let took = self.took().map_or_else(|| format!("{:>6}", "-"), elapsed);
        // Vendor text is escaped here, before the colours are added.
        let kind: String = self.kind.chars().take(18).collect();
        format!(
            "{:<8} {:<15} {:<18} {} {} {}  {}",
            terminal_safe(&self.backend),
            terminal_safe(&short_id(&self.id)),
            terminal_safe(&kind),
            state_text(self.state, colour),
            bar(self.percent),
            took,
            terminal_safe(&self.message)
        )
    }
}

/// The header line.
pub fn header() -> String {
    format!(
        "{:<8} {:<15} {:<18} {:<9} {:<27} {:>6}  {}",
        "BACKEND", "ID", "KIND", "STATE", "PROGRESS", "ELAPSED", "MESSAGE"
    )
}

/// Rows drawn on the terminal (stderr) with indicatif; invisible when stderr
/// is not a terminal, in which case only the final table is printed.
pub struct LiveTable {
    multi: MultiProgress,
    /// Kept alive: indicatif removes a bar once it is dropped.
    header: ProgressBar,
    rows: Vec<(Row, ProgressBar)>,
    index: HashMap<(String, String), usize>,
    colour: bool,
}

impl LiveTable {
    /// A table drawn when `visible` and stderr is a terminal.
    pub fn new(visible: bool) -> LiveTable {
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let colour = visible && console::Term::stderr().is_term();
        let head = multi.add(
            ProgressBar::new(1).with_style(
                ProgressStyle::with_template("{wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
        );
        head.set_message(style(header()).bold().to_string());
        LiveTable {
            multi,
            header: head,
            rows: Vec::new(),
            index: HashMap::new(),
            colour,
        }
    }

    /// Adds a row for a task not seen yet.
    pub fn ensure(&mut self, backend: &str, id: &str) -> usize {
        let key = (backend.to_owned(), id.to_owned());
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let bar = self.multi.add(
            ProgressBar::new(1).with_style(
                ProgressStyle::with_template("{wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
        );
        let row = Row::new(backend, id);
        bar.set_message(row.render(self.colour));
        self.rows.push((row, bar));
        self.index.insert(key, self.rows.len() - 1);
        self.rows.len() - 1
    }

    /// Applies an event to its row.
    pub fn apply(&mut self, event: &TaskEvent) {
        let i = self.ensure(&event.provider, &event.id);
        let colour = self.colour;
        let (row, bar) = &mut self.rows[i];
        match &event.kind {
            TaskEventKind::Changed { snapshot } => row.apply(snapshot),
            TaskEventKind::GaveUp { message, .. } => {
                row.state = Some(TaskState::Unknown);
                row.message = format!("gave up: {message}");
                row.finished.get_or_insert_with(Instant::now);
            }
            TaskEventKind::Stalled { unchanged_for_secs } => {
                row.message = format!(
                    "stalled: no change for {}",
                    tasktrack_core::human_duration(Duration::from_secs(*unchanged_for_secs))
                );
            }
        }
        bar.set_message(row.render(colour));
    }

    /// Shows a snapshot (e.g. from a listing) without an event.
    pub fn show(&mut self, snapshot: &TaskSnapshot) {
        let i = self.ensure(&snapshot.provider, &snapshot.id);
        let colour = self.colour;
        let (row, bar) = &mut self.rows[i];
        row.apply(snapshot);
        bar.set_message(row.render(colour));
    }

    /// Redraws elapsed times of unfinished rows.
    pub fn tick(&mut self) {
        for (row, bar) in &self.rows {
            if row.finished.is_none() {
                bar.set_message(row.render(self.colour));
            }
        }
    }

    /// Prints a line above the table.
    pub fn note(&self, line: &str) {
        if self.multi.is_hidden() {
            crate::output::note!("{line}");
        } else {
            let _ = self.multi.println(terminal_safe(line));
        }
    }

    /// Clears the live drawing and returns the final table as plain text.
    pub fn finish(self) -> String {
        self.header.finish_and_clear();
        for (_, bar) in &self.rows {
            bar.finish_and_clear();
        }
        let _ = self.multi.clear();
        let mut out = header();
        for (row, _) in &self.rows {
            out.push('\n');
            out.push_str(row.render(false).trim_end());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_shortened_readably() {
        assert_eq!(
            short_id("UPID:pve1:001001F3:00A21BA8:6B07B3AD:vzdump:100:root@pam:"),
            "pve1:001001F3"
        );
        assert_eq!(short_id("1042"), "1042");
        assert_eq!(
            short_id("inst-1/8abf6e1e72c12e7c0172c15b00000001"),
            "8abf6e…0000001"
        );
        assert_eq!(bar(Some(50.0)), "[##########----------]  50%");
        for short in ["pve1:001001F3", "8abf6e…0000001"] {
            assert!(is_short_form(short), "{short}");
        }
        for other in [
            "..",
            "../..",
            "inst/.",
            "a/b",
            "pve1:zz",
            "UPID:..:0",
            "x…",
            "<b>…x",
        ] {
            assert!(!is_short_form(other), "{other}");
        }
    }

    fn snapshot(state: TaskState, started: Option<i64>, finished: Option<i64>) -> TaskSnapshot {
        let at = |secs_ago: i64| chrono::Utc::now() - chrono::Duration::seconds(secs_ago);
        TaskSnapshot {
            provider: "pve".into(),
            id: "1".into(),
            state,
            vendor_state: state.to_string(),
            kind: Some("vzdump".into()),
            title: None,
            progress: None,
            failure: None,
            warnings: None,
            started_at: started.map(at),
            finished_at: finished.map(at),
            steps: Vec::new(),
            poll_hint: None,
            attributes: Default::default(),
        }
    }

    #[test]
    fn elapsed_comes_from_the_tasks_own_times() {
        // Started 90 s ago, finished 30 s ago: it ran 60 s, whenever seen.
        let done = Row::from_snapshot(&snapshot(TaskState::Succeeded, Some(90), Some(30)));
        assert_eq!(done.took().map(|d| d.as_secs()), Some(60));
        assert!(
            done.render(false).contains("1m00s"),
            "{}",
            done.render(false)
        );
        let running = Row::from_snapshot(&snapshot(TaskState::Running, Some(125), None));
        assert!((125..=127).contains(&running.took().unwrap().as_secs()));
        // Over before it was seen, with no times: unknown, not 0.0s.
        let unknown = Row::from_snapshot(&snapshot(TaskState::Failed, None, None));
        assert_eq!(unknown.took(), None);
        assert!(!unknown.render(false).contains("0.0s"));
    }
}
