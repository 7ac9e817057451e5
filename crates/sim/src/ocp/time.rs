//! Times as ocp-express writes them.

use chrono::{FixedOffset, Offset, SecondsFormat, Timelike};
use tokio::time::Instant;

use crate::clock::SimClock;

/// `OffsetDateTime` as Jackson's `InstantSerializer` writes it with
/// `ISO_OFFSET_DATE_TIME`: the server's zone (here UTC+8), the fraction
/// trimmed of trailing zeros and left out when zero.
pub(crate) fn iso(clock: &SimClock, at: Instant) -> String {
    let zone = FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| chrono::Utc.fix());
    let t = clock.wall(at).with_timezone(&zone);
    let whole = t.with_nanosecond(0).unwrap_or(t);
    let text = whole.to_rfc3339_opts(SecondsFormat::Secs, false);
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos == 0 {
        return text;
    }
    let fraction = format!("{nanos:09}");
    let fraction = fraction.trim_end_matches('0');
    // Insert the fraction before the offset (`+08:00`, six characters).
    let (date_time, offset) = text.split_at(text.len() - 6);
    format!("{date_time}.{fraction}{offset}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tasktrack_core::ManualClock;

    #[test]
    fn times_are_iso_with_a_trimmed_fraction() {
        let manual = ManualClock::new();
        let clock = SimClock::manual(manual.clone());
        let base = clock.now();
        let text = iso(&clock, base);
        assert!(text.ends_with("+08:00"), "{text}");
        let parsed = chrono::DateTime::parse_from_rfc3339(&text).unwrap();
        assert_eq!(parsed.with_timezone(&chrono::Utc), clock.wall(base));
        let fraction = text.split('.').nth(1).map(|f| f.trim_end_matches("+08:00"));
        assert!(fraction.is_none_or(|f| !f.ends_with('0')), "{text}");
    }
}
