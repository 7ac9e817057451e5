//! The benchmark's report: the table and the `--json` object.

use std::collections::BTreeMap;

use crate::throughput::{client_interval_ms, percentile, Row};
use crate::Mode;

fn client_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Naive => "naive",
        Mode::Tracker => "tracker",
        Mode::Floor => "floor",
        Mode::Proxmoxer | Mode::ProxmoxerDefault => "proxmoxer",
    }
}

/// The client as the table names it.
fn client_label(mode: Mode) -> &'static str {
    match mode {
        Mode::Naive => "naive loop",
        Mode::Tracker => "Tracker",
        Mode::Floor => "floor",
        Mode::Proxmoxer => "proxmoxer (2 s)",
        Mode::ProxmoxerDefault => "proxmoxer (default 1 s)",
    }
}

/// One JSON object: per scenario and client, requests, CPU per update,
/// memory per task, detection and schedule lag, and the floor's CPU per
/// request measured in the same run.
pub(crate) fn json_report(
    rows: &[Row],
    floor: &Row,
    scale: f64,
    policy: crate::Policy,
) -> serde_json::Value {
    let floor_us = per_update_us(floor);
    let scenarios: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let lat = &r.report.latencies_ms;
            serde_json::json!({
                "scenario": r.scenario,
                "client": client_name(r.mode),
                "poll_interval_ms": (r.mode != Mode::Tracker).then(|| client_interval_ms(r.mode, scale)),
                "tasks": r.tasks,
                "detected": r.report.detected,
                "requests": r.requests,
                "client_cpu_s": r.report.cpu_s,
                "cpu_us_per_update": per_update_us(r),
                "cpu_vs_floor": per_update_us(r) / floor_us.max(f64::MIN_POSITIVE),
                "rss_peak_bytes": r.report.rss_peak,
                "rss_bytes_per_task": rss_per_task(r),
                "detect_p50_ms": percentile(lat, 0.5),
                "detect_p95_ms": percentile(lat, 0.95),
                "lag_p99_ms": r.report.lag_p99_ms,
                "detect_p95_ms_by_backend": r.report.by_backend.iter()
                    .map(|(b, l)| (b.clone(), percentile(l, 0.95)))
                    .collect::<BTreeMap<_, _>>(),
                "stretch_percent": r.report.stretch_percent,
                "stretch_percent_max": r.report.stretch_percent_max,
                "stretched_polls": r.report.stretched_polls,
                "lag_counts": r.report.lag_counts,
            })
        })
        .collect();
    serde_json::json!({
        "scale": scale,
        "policy": policy.name(),
        "floor_us_per_request": floor_us,
        "floor_requests": floor.report.updates,
        "scenarios": scenarios,
    })
}

/// Client CPU per status update (per request for the floor), µs.
fn per_update_us(r: &Row) -> f64 {
    r.report.cpu_s * 1e6 / r.report.updates.max(1) as f64
}

/// Peak RSS growth over the run per task, bytes.
fn rss_per_task(r: &Row) -> f64 {
    r.report.rss_peak.saturating_sub(r.report.rss_start) as f64 / r.tasks.max(1) as f64
}

pub(crate) fn print_table(rows: &[Row], floor: &Row, scale: f64, policy: crate::Policy) {
    println!(
        "\ntasktrack-bench (durations {:.2}-{:.1} s, naive interval {:.2} s, Tracker policy {}; client CPU and memory measured in its own process)\n",
        scale,
        60.0 * scale,
        2.0 * scale,
        policy.name()
    );
    println!(
        "| scenario | client | tasks | HTTP requests | detect p50 | p95 | max | client CPU | CPU / update | peak RSS | RSS / task | lag p99 |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let lat = &r.report.latencies_ms;
        println!(
            "| {} | {} | {} | {} | {} ms | {} ms | {} ms | {:.2} s | {:.1} µs | {:.1} MiB | {:.0} B | {} |",
            r.scenario,
            client_label(r.mode),
            r.tasks,
            r.requests,
            percentile(lat, 0.5),
            percentile(lat, 0.95),
            lat.last().copied().unwrap_or(0),
            r.report.cpu_s,
            per_update_us(r),
            r.report.rss_peak as f64 / 1048576.0,
            rss_per_task(r),
            match r.report.lag_p99_ms {
                Some(ms) => format!("≤ {ms} ms"),
                None if r.mode == Mode::Tracker => "> 10 s".to_owned(),
                None => "-".to_owned(),
            },
        );
        if r.report.detected != r.tasks {
            println!(
                "|  | MISSING | {} of {} tasks detected | | | | | | | | | |",
                r.report.detected, r.tasks
            );
        }
    }
    for tracker in rows.iter().filter(|r| r.mode == Mode::Tracker) {
        let p95 = |r: &Row| percentile(&r.report.latencies_ms, 0.95);
        for other in rows
            .iter()
            .filter(|r| r.scenario == tracker.scenario && r.mode != Mode::Tracker)
        {
            let per_task = |r: &Row, v: f64| v / r.tasks.max(1) as f64;
            println!(
                "{}: {} per task: {:.1}x the Tracker's requests, {:.1}x its CPU; p95 detection {} ms vs the Tracker's {} ms",
                tracker.scenario,
                client_label(other.mode),
                per_task(other, other.requests as f64)
                    / per_task(tracker, tracker.requests.max(1) as f64),
                per_task(other, other.report.cpu_s)
                    / per_task(tracker, tracker.report.cpu_s.max(f64::MIN_POSITIVE)),
                p95(other),
                p95(tracker)
            );
        }
    }
    let floor_us = per_update_us(floor);
    println!(
        "floor: a bare hyper client, {} in flight, {} OCP status requests: {:.1} µs each",
        crate::floor::IN_FLIGHT,
        floor.report.updates,
        floor_us
    );
    for r in rows.iter().filter(|r| r.mode == Mode::Tracker) {
        println!(
            "{}: the Tracker's CPU per update is {:.1}x the floor",
            r.scenario,
            per_update_us(r) / floor_us.max(f64::MIN_POSITIVE)
        );
    }
}
