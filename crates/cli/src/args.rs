//! Argument parsers with bounds: a value outside them is a usage error
//! (clap prints it and exits 2) before anything runs.

use std::time::Duration;

use tasktrack_core::{human_duration, TaskState};

/// Bounds of a duration argument.
#[derive(Debug, Clone, Copy)]
pub struct DurationBounds {
    /// Shortest accepted.
    pub min: Duration,
    /// Longest accepted.
    pub max: Duration,
}

const SEC: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);

/// `wait --timeout`: up to 30 days.
pub const TIMEOUT: DurationBounds = DurationBounds {
    min: Duration::from_millis(100),
    max: Duration::from_secs(30 * 86_400),
};
/// `wait --interval`: no faster than 100 ms (a zero interval would hammer
/// the server), no slower than an hour.
pub const INTERVAL: DurationBounds = DurationBounds {
    min: Duration::from_millis(100),
    max: HOUR,
};
/// `worker --lease-ttl`: 1 s to 1 h.
pub const LEASE_TTL: DurationBounds = DurationBounds {
    min: SEC,
    max: HOUR,
};

/// Parses `90s`, `5m`, `1h30m`, `250ms` or a plain number of seconds
/// (`1.5`), within `bounds`.
pub fn duration(s: &str, bounds: DurationBounds) -> Result<Duration, String> {
    let s = s.trim();
    let parsed = match s.parse::<f64>() {
        // Compared as floats first: `1e30` or `inf` must not reach a
        // conversion that panics or saturates silently.
        Ok(secs) if secs.is_finite() => {
            if secs < 0.0 || secs > bounds.max.as_secs_f64() {
                return Err(out_of_bounds(bounds));
            }
            Duration::try_from_secs_f64(secs).map_err(|_| out_of_bounds(bounds))?
        }
        Ok(_) => return Err(out_of_bounds(bounds)),
        Err(_) => humantime::parse_duration(s)
            .map_err(|e| format!("{e} (e.g. 90s, 5m, 1h30m, or a number of seconds)"))?,
    };
    if parsed < bounds.min || parsed > bounds.max {
        return Err(out_of_bounds(bounds));
    }
    Ok(parsed)
}

fn out_of_bounds(bounds: DurationBounds) -> String {
    format!(
        "must be between {} and {}",
        human_duration(bounds.min),
        human_duration(bounds.max)
    )
}

/// `wait --timeout`.
pub fn timeout(s: &str) -> Result<Duration, String> {
    duration(s, TIMEOUT)
}

/// `wait --interval`.
pub fn interval(s: &str) -> Result<Duration, String> {
    duration(s, INTERVAL)
}

/// `worker --lease-ttl`.
pub fn lease_ttl(s: &str) -> Result<Duration, String> {
    duration(s, LEASE_TTL)
}

/// `serve --max-connections`: 1 to 100,000.
pub fn max_connections(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=100_000).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a connection count from 1 to 100000")),
    }
}

/// `serve --public-url`: an `http` or `https` URL with a host.
pub fn public_url(s: &str) -> Result<url::Url, String> {
    match url::Url::parse(s.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(u),
        _ => Err(
            "must be an http:// or https:// URL with a host, e.g. https://tasks.example.com".into(),
        ),
    }
}

/// Task ids from the command line, `-` replaced by the whitespace-separated
/// ids on stdin (at most 100,000 of them).
pub fn with_stdin_ids(ids: Vec<String>) -> Result<Vec<String>, crate::error::CliError> {
    use std::io::Read;
    let mut out = Vec::new();
    for id in ids {
        if id != "-" {
            out.push(id);
            continue;
        }
        let mut text = String::new();
        std::io::stdin()
            .take(64 << 20)
            .read_to_string(&mut text)
            .map_err(|e| {
                crate::error::CliError::usage(
                    format!("cannot read ids from stdin: {e}"),
                    "pipe task ids, one per line",
                )
            })?;
        out.extend(text.split_whitespace().map(str::to_owned));
    }
    if out.is_empty() {
        return Err(crate::error::CliError::usage(
            "no task id given",
            "name at least one id, or pipe them with -",
        ));
    }
    if out.len() > 100_000 {
        return Err(crate::error::CliError::usage(
            format!("{} task ids", out.len()),
            "wait for at most 100000 tasks at once",
        ));
    }
    Ok(out)
}

/// `list --state`.
pub fn state(s: &str) -> Result<TaskState, String> {
    s.parse::<TaskState>().map_err(|e| e.to_string())
}

/// `demo --time-scale`: a positive factor up to 100.
pub fn time_scale(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 && f <= 100.0 => Ok(f),
        _ => Err("must be a number above 0 and at most 100 (e.g. 0.5)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spans_and_numbers_within_bounds() {
        assert_eq!(timeout("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(timeout("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(timeout("30days"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(interval("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(lease_ttl("15s"), Ok(Duration::from_secs(15)));
    }

    #[test]
    fn what_used_to_panic_is_a_usage_error() {
        for bad in ["1e30", "1e300", "inf", "NaN", "-1", "31days", "1e19"] {
            let e = timeout(bad).unwrap_err();
            assert!(e.contains("between 100ms and 30d"), "{bad}: {e}");
        }
        assert!(interval("0").unwrap_err().contains("between 100ms and 1h"));
        assert!(interval("1e25").is_err());
        assert!(lease_ttl("1e19").unwrap_err().contains("between 1s and 1h"));
        assert!(lease_ttl("500ms").is_err());
        assert!(timeout("soon").unwrap_err().contains("e.g."));
        assert!(time_scale("1e300").is_err());
        assert!(time_scale("0").is_err());
    }

    proptest! {
        #[test]
        fn any_text_parses_or_is_refused_without_panic(s in "\\PC{0,24}") {
            for parse in [timeout, interval, lease_ttl] {
                if let Ok(d) = parse(&s) {
                    prop_assert!(d >= Duration::from_millis(100));
                    prop_assert!(d <= TIMEOUT.max);
                }
            }
            let _ = time_scale(&s);
            let _ = state(&s);
        }

        #[test]
        fn any_number_is_in_bounds_or_refused(x in proptest::num::f64::ANY) {
            if let Ok(d) = timeout(&x.to_string()) {
                prop_assert!(d >= TIMEOUT.min && d <= TIMEOUT.max);
            }
            if let Ok(d) = lease_ttl(&format!("{x:e}")) {
                prop_assert!(d >= LEASE_TTL.min && d <= LEASE_TTL.max);
            }
        }
    }
}
