//! What reaches a person's terminal: vendor text with its control
//! characters made visible, and stdout writes that end quietly when the
//! reader has gone (`tasktrack logs … | head -1`).

use std::borrow::Cow;
use std::fmt;
use std::io::{ErrorKind, Write};

use crate::error::CliError;

/// True for characters that steer a terminal instead of printing: C0
/// controls (tab excepted), DEL, C1 controls (U+0080–U+009F, which some
/// terminals read as ESC sequences) and the bidirectional overrides and
/// isolates that reorder what is shown.
fn steers_terminal(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every terminal-steering character written as a visible
/// escape (`\x1b`, `\u{202e}`): an OSC 52 clipboard write or a "clear
/// screen" in a Proxmox guest's log is shown, not obeyed. Borrowed when
/// there is nothing to escape. JSON output does not go through this: it
/// keeps vendor text verbatim.
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(steers_terminal) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !steers_terminal(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// Writes one line to stdout, escaped with [`terminal_safe`]. A reader
/// that has gone away ([`ErrorKind::BrokenPipe`]) is [`CliError::Closed`],
/// which ends the command quietly; other write errors are reported.
pub fn write_line(args: fmt::Arguments<'_>) -> Result<(), CliError> {
    let text = args.to_string();
    write_stdout(&terminal_safe(&text))
}

/// `text` escaped line by line with [`terminal_safe`]: its own line breaks
/// stay line breaks (a table's rows), every other steering character is
/// shown. For text this program laid out, whose vendor parts were escaped
/// where they were put in (a table's cells).
pub fn terminal_safe_lines(text: &str) -> String {
    text.split('\n')
        .map(terminal_safe)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes lines this program laid out (a final table) to stdout, each
/// escaped with [`terminal_safe`]; see [`terminal_safe_lines`].
pub fn write_block(text: &str) -> Result<(), CliError> {
    write_stdout(&terminal_safe_lines(text))
}

/// Writes one JSON line to stdout, verbatim.
pub fn json<T: serde::Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string(value).map_err(|e| {
        CliError::usage(format!("cannot encode JSON output: {e}"), "report this bug")
    })?;
    write_stdout(&text)
}

fn write_stdout(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| match e.kind() {
            ErrorKind::BrokenPipe => CliError::Closed,
            _ => CliError::usage(
                format!("cannot write to standard output: {e}"),
                "check where the output goes",
            ),
        })
}

/// Writes one line to stderr, escaped; errors are ignored (there is
/// nowhere left to report them).
pub fn write_note(args: fmt::Arguments<'_>) {
    let text = args.to_string();
    let _ = writeln!(std::io::stderr().lock(), "{}", terminal_safe(&text));
}

/// `println!` through [`write_line`]: `out!(…)?` in a command.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_line(format_args!($($arg)*))
    };
}

/// `eprintln!` through [`write_note`].
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::output::write_note(format_args!($($arg)*))
    };
}

pub(crate) use {note, out};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_what_steers_a_terminal() {
        assert_eq!(terminal_safe("plain\ttext ✓"), "plain\ttext ✓");
        assert!(matches!(terminal_safe("plain"), Cow::Borrowed(_)));
        assert_eq!(
            terminal_safe("\u{1b}]52;c;aGVsbG8=\u{7}x"),
            "\\x1b]52;c;aGVsbG8=\\x07x"
        );
        assert_eq!(terminal_safe("\u{1b}[2J\r\n"), "\\x1b[2J\\x0d\\x0a");
        assert_eq!(
            terminal_safe_lines("ROW 1\nROW\u{1b}[2J 2\r\n\nend"),
            "ROW 1\nROW\\x1b[2J 2\\x0d\n\nend",
            "line breaks stay, everything else is shown"
        );
        assert_eq!(terminal_safe("a\u{9b}31m"), "a\\u{9b}31m");
        assert_eq!(terminal_safe("x\u{7f}"), "x\\x7f");
        assert_eq!(terminal_safe("abc\u{202e}fed"), "abc\\u{202e}fed");
    }

    proptest! {
        #[test]
        fn nothing_steering_survives(s in "\\PC*|[\\x00-\\x1f\\x7f-\\u{9f}\\u{202a}-\\u{202e}a]{0,40}") {
            let safe = terminal_safe(&s);
            prop_assert!(!safe.chars().any(steers_terminal));
        }
    }
}
