//! Percent done, read from a running task's log: PVE's status answer has
//! none, but the workers print it, as its web UI shows.
//!
//! The line shapes, from pve-manager / qemu-server / pve-storage:
//!
//! * `vzdump`: `INFO:  15% (4.8 GiB of 32.0 GiB) in 30s, read: …`
//! * `qemu-img convert` (clone to another storage, import, move disk) and
//!   drive mirrors (clone, migrate, move disk):
//!   `transferred 1.0 GiB of 32.0 GiB (3.12%)`, also with `drive-scsi0: `
//!   in front and `in 10s` behind;
//! * older clones and migrations: `progression: 79.22 %`;
//! * `qmrestore` of a vma archive: `progress 15% (read 4831838208 bytes, duration 30 sec)`.
//!
//! A line of any other shape says nothing about progress, whatever `%` it
//! holds (`WARN: … 100% full`).

/// The percent a log line reports, if it is one of the shapes above.
pub fn percent_of(line: &str) -> Option<f32> {
    let line = line.trim();
    // vzdump: INFO: N% (
    if let Some(rest) = line.strip_prefix("INFO:") {
        let rest = rest.trim_start();
        let (number, after) = rest.split_once('%')?;
        return after.starts_with(" (").then(|| parse(number)).flatten();
    }
    if let Some(rest) = line.strip_prefix("progress ") {
        let (number, after) = rest.split_once('%')?;
        return after.starts_with(" (").then(|| parse(number)).flatten();
    }
    if let Some(at) = line.find("progression: ") {
        let rest = &line[at + "progression: ".len()..];
        let number = rest
            .strip_suffix('%')
            .or_else(|| rest.split_once(" %").map(|(n, _)| n))?;
        return parse(number);
    }
    if line.contains("transferred ") {
        let open = line.rfind('(')?;
        let number = line[open + 1..].split_once("%)")?.0;
        return parse(number);
    }
    None
}

fn parse(number: &str) -> Option<f32> {
    let n: f32 = number.trim().parse().ok()?;
    (n.is_finite() && (0.0..=100.0).contains(&n)).then_some(n)
}

/// The message of a warning line: `PVE::RESTEnvironment::warn` prints
/// each warning a worker counts as `WARN: <message>` (vzdump's
/// `debugmsg('warn', …)` goes through it, one line per line of the
/// message), so these lines are what `WARNINGS: N` counts.
pub fn warning_of(line: &str) -> Option<&str> {
    let message = line.strip_prefix("WARN: ")?.trim_end();
    (!message.is_empty()).then_some(message)
}

/// The last percent reported in `lines`, if any.
pub fn last_percent<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<f32> {
    lines.into_iter().filter_map(percent_of).last()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_lines_give_their_message() {
        assert_eq!(
            warning_of("WARN: storage local is 100% full"),
            Some("storage local is 100% full")
        );
        assert_eq!(warning_of("WARN: "), None);
        assert_eq!(warning_of("INFO: WARN: nested"), None);
        assert_eq!(warning_of("WARNINGS: 2"), None);
    }

    #[test]
    fn each_task_types_progress_line_is_read() {
        assert_eq!(
            percent_of(
                "INFO:  15% (4.8 GiB of 32.0 GiB) in 30s, read: 163.8 MiB/s, write: 155.5 MiB/s"
            ),
            Some(15.0)
        );
        assert_eq!(
            percent_of("transferred 1.0 GiB of 32.0 GiB (3.12%)"),
            Some(3.12)
        );
        assert_eq!(
            percent_of("drive-scsi0: transferred 25.6 GiB of 32.0 GiB (79.96%) in 2m 10s"),
            Some(79.96)
        );
        assert_eq!(percent_of("progression: 79.22 %"), Some(79.22));
        assert_eq!(
            percent_of("progress 15% (read 4831838208 bytes, duration 30 sec)"),
            Some(15.0)
        );
    }

    #[test]
    fn other_lines_with_a_percent_say_nothing() {
        for line in [
            "WARN: storage local is 100% full",
            "INFO: starting new backup job: vzdump 100 --mode snapshot",
            "INFO: 250% (x)",
            "transferred a lot (NaN%)",
            "progression: -3 %",
            "",
        ] {
            assert_eq!(percent_of(line), None, "{line:?}");
        }
    }
}
