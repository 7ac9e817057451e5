//! The live unified table: one row per task, updated in place.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use console::style;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
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
        return match s.warning_messages.first() {
            Some(first) => format!("{w} warning(s), first: {first}"),
            None => format!("{w} warning(s)"),
        };
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

fn spinner(since: Instant) -> String {
    const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    let frame = (since.elapsed().as_millis() / 120) as usize % FRAMES.len();
    format!("{:<27}", FRAMES[frame])
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
            match (self.percent, self.state) {
                // No percent to show: a spinner says it is alive.
                (None, Some(TaskState::Running)) => spinner(self.first_seen),
                (percent, _) => bar(percent),
            },
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

/// Finished rows stay this long before they fold into the summary line.
const FOLD_AFTER: Duration = Duration::from_secs(30);

/// Where a row sorts: failed first, then running, pending, unknown, and the
/// finished ones last.
fn rank(state: Option<TaskState>) -> u8 {
    match state {
        Some(TaskState::Failed) => 0,
        Some(TaskState::Running) => 1,
        Some(TaskState::Pending) | None => 2,
        Some(TaskState::Cancelled) => 4,
        Some(TaskState::Succeeded) => 5,
        Some(_) => 3,
    }
}

/// The table as lines, sorted failed and running first (newest first
/// within a state), finished successes and cancellations folded into one
/// summary line once they have been shown for [`FOLD_AFTER`], cut to
/// `height` lines and `width` columns.
fn layout(rows: &[Row], colour: bool, height: usize, width: usize) -> Vec<String> {
    let mut order: Vec<&Row> = rows.iter().collect();
    order.sort_by(|a, b| {
        rank(a.state)
            .cmp(&rank(b.state))
            .then(b.started_at.cmp(&a.started_at))
            .then(b.first_seen.cmp(&a.first_seen))
    });
    let folds = |r: &Row| {
        matches!(r.state, Some(TaskState::Succeeded | TaskState::Cancelled))
            && r.finished.is_some_and(|f| f.elapsed() >= FOLD_AFTER)
    };
    let (folded, shown): (Vec<&Row>, Vec<&Row>) = order.into_iter().partition(|r| folds(r));
    let mut lines = vec![if colour {
        style(header()).bold().to_string()
    } else {
        header()
    }];
    // The header, the rows, and a line for what is left out.
    let room = height.saturating_sub(2).max(1);
    let cut = shown.len() > room;
    let visible = if cut {
        room.saturating_sub(1).max(1)
    } else {
        shown.len()
    };
    lines.extend(
        shown
            .iter()
            .take(visible)
            .map(|r| r.render(colour).trim_end().to_owned()),
    );
    let mut left = Vec::new();
    if cut {
        let hidden = &shown[visible..];
        left.push(format!("{} more ({})", hidden.len(), count_states(hidden)));
    }
    if !folded.is_empty() {
        left.push(format!(
            "{} done earlier ({})",
            folded.len(),
            count_states(&folded)
        ));
    }
    if !left.is_empty() {
        let line = format!("… {}", left.join("; "));
        lines.push(if colour {
            style(line).dim().to_string()
        } else {
            line
        });
    }
    lines
        .into_iter()
        .map(|l| console::truncate_str(&l, width, "…").into_owned())
        .collect()
}

fn count_states(rows: &[&Row]) -> String {
    let mut counts: Vec<(u8, &'static str, usize)> = Vec::new();
    for r in rows {
        let name = r.state.map_or("pending", TaskState::as_str);
        match counts.iter_mut().find(|(_, n, _)| *n == name) {
            Some(c) => c.2 += 1,
            None => counts.push((rank(r.state), name, 1)),
        }
    }
    counts.sort();
    counts
        .iter()
        .map(|(_, name, n)| format!("{n} {name}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The live table on the terminal (stderr), redrawn as one screen with
/// indicatif: sorted, folded and fitted to the terminal's size. Invisible
/// when stderr is not a terminal, in which case only the final table is
/// printed.
pub struct LiveTable {
    screen: ProgressBar,
    rows: Vec<Row>,
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
        let colour = visible && console::Term::stderr().is_term();
        let screen = ProgressBar::with_draw_target(Some(1), target).with_style(
            ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let table = LiveTable {
            screen,
            rows: Vec::new(),
            index: HashMap::new(),
            colour,
        };
        table.redraw();
        table
    }

    fn redraw(&self) {
        if self.screen.is_hidden() {
            return;
        }
        let (height, width) = console::Term::stderr().size();
        let lines = layout(&self.rows, self.colour, height.into(), width.into());
        self.screen.set_message(lines.join("\n"));
    }

    /// Adds a row for a task not seen yet.
    pub fn ensure(&mut self, backend: &str, id: &str) -> usize {
        let key = (backend.to_owned(), id.to_owned());
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        self.rows.push(Row::new(backend, id));
        self.index.insert(key, self.rows.len() - 1);
        self.redraw();
        self.rows.len() - 1
    }

    /// Applies an event to its row.
    pub fn apply(&mut self, event: &TaskEvent) {
        let i = self.ensure(&event.provider, &event.id);
        let row = &mut self.rows[i];
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
        self.redraw();
    }

    /// Shows a snapshot (e.g. from a listing) without an event.
    pub fn show(&mut self, snapshot: &TaskSnapshot) {
        let i = self.ensure(&snapshot.provider, &snapshot.id);
        self.rows[i].apply(snapshot);
        self.redraw();
    }

    /// Redraws: elapsed times, spinners, folding.
    pub fn tick(&mut self) {
        self.redraw();
    }

    /// Prints a line above the table.
    pub fn note(&self, line: &str) {
        if self.screen.is_hidden() {
            crate::output::note!("{line}");
        } else {
            self.screen.println(terminal_safe(line));
        }
    }

    /// Clears the live drawing and returns the final table as plain text:
    /// every row, sorted as on screen.
    pub fn finish(self) -> String {
        self.screen.finish_and_clear();
        layout(&self.rows, false, usize::MAX, usize::MAX).join("\n")
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
        let mut s = TaskSnapshot::new("pve", "1", state);
        s.kind = Some("vzdump".into());
        s.started_at = started.map(at);
        s.finished_at = finished.map(at);
        s
    }

    #[test]
    fn a_warned_tasks_message_gives_the_first_warning() {
        let mut s = snapshot(TaskState::Succeeded, Some(10), Some(1));
        s.warnings = Some(2);
        assert_eq!(message_of(&s), "2 warning(s)");
        s.warning_messages = vec!["storage local is 95% full".into(), "second".into()];
        assert_eq!(
            message_of(&s),
            "2 warning(s), first: storage local is 95% full"
        );
    }

    #[test]
    fn the_screen_sorts_folds_and_fits() {
        let mut rows: Vec<Row> = Vec::new();
        for (i, state) in [
            TaskState::Succeeded,
            TaskState::Running,
            TaskState::Failed,
            TaskState::Pending,
            TaskState::Running,
        ]
        .into_iter()
        .enumerate()
        {
            let mut s = snapshot(state, Some(100 - i as i64), None);
            s.id = format!("t{i}");
            rows.push(Row::from_snapshot(&s));
        }
        let ids = |lines: &[String]| -> Vec<String> {
            lines[1..]
                .iter()
                .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
                .collect()
        };
        let all = layout(&rows, false, 100, 200);
        assert_eq!(
            ids(&all),
            ["t2", "t4", "t1", "t3", "t0"],
            "failed, running (newest first), pending, done"
        );
        // A success shown long enough folds into the summary.
        rows[0].finished = Instant::now().checked_sub(FOLD_AFTER + Duration::from_secs(1));
        let folded = layout(&rows, false, 100, 200);
        assert_eq!(folded.len(), 1 + 4 + 1);
        assert_eq!(folded.last().unwrap(), "… 1 done earlier (1 succeeded)");
        // Five lines of terminal: the header, two rows, what is left out.
        let fitted = layout(&rows, false, 5, 200);
        assert_eq!(fitted.len(), 4, "{fitted:?}");
        assert!(
            fitted[3].starts_with("… 2 more (1 running, 1 pending); 1 done earlier"),
            "{fitted:?}"
        );
        let narrow = layout(&rows, false, 100, 40);
        assert!(narrow.iter().all(|l| l.chars().count() <= 40), "{narrow:?}");
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
