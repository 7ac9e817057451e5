//! `tasktrack-bench`: tasktrack's `Tracker` against the naive polling loop,
//! over real loopback HTTP against the simulators.
//!
//! `cargo run --release -p tasktrack-bench` runs every scenario and prints
//! the table; `--scale` shrinks durations and intervals alike. The
//! simulators run in one child process and each measured client in another,
//! so the CPU time and peak memory reported are the client's alone.
//!
//! `cargo run --release -p tasktrack-bench -- soak --minutes 30` is the long
//! soak (not run in CI).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::{Parser, Subcommand, ValueEnum};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tasktrack_core::{DynTaskProvider, PollPolicy, Secret, Tracker};
use tasktrack_dcs::{DcsClient, DcsProvider};
use tasktrack_huaweicloud::{Credentials, ServiceConfig};
use tasktrack_kps::{KpsClient, KpsProvider};
use tasktrack_ocp::{OcpClient, OcpProvider};
use tasktrack_proxmox::{ProxmoxProvider, PveClient, PveCredentials};
use tasktrack_sim::dcs::Dcs;
use tasktrack_sim::huawei::HuaweiAuth;
use tasktrack_sim::kps::Kps;
use tasktrack_sim::ocp::Ocp;
use tasktrack_sim::proxmox::Proxmox;
use tasktrack_sim::{Fault, FaultRule, SimBuilder};

const PROJECT: &str = "bench-project";
const INSTANCE: &str = "bench-instance";

#[derive(Parser)]
#[command(
    name = "tasktrack-bench",
    about = "Tracker vs the naive polling loop, over loopback HTTP"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Multiplies task durations (1-60 s) and poll intervals (2 s).
    #[arg(long, default_value_t = 1.0, global = true)]
    scale: f64,
    /// Only these scenarios (default: all).
    #[arg(long = "scenario", value_enum, global = true)]
    scenarios: Vec<Scenario>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Long soak: 10,000 tasks with faults sprinkled, then a fault-free drain;
    /// RSS at start and end.
    Soak {
        /// Minutes to run.
        #[arg(long, default_value_t = 30)]
        minutes: u64,
    },
    /// 10,000 tasks tracked by 3 replicas on Redis vs one in-memory tracker.
    Store {
        /// Tasks in the workload.
        #[arg(long, default_value_t = 10_000)]
        tasks: usize,
    },
    /// (internal) Serve the four simulators.
    #[command(hide = true)]
    Sims,
    /// (internal) Track the tasks of a plan file and report.
    #[command(hide = true)]
    Client {
        /// The plan.
        plan: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
enum Scenario {
    /// 1,000 Proxmox tasks over 3 nodes.
    Proxmox,
    /// 1,000 OCP tasks.
    Ocp,
    /// 200 DCS tasks.
    Dcs,
    /// 10,000 tasks across all four.
    Mixed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Mode {
    Naive,
    Tracker,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Urls {
    proxmox: String,
    kps: String,
    dcs: String,
    ocp: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PlannedTask {
    backend: String,
    id: String,
    /// When the simulator finishes it (epoch ms).
    finish_ms: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Plan {
    urls: Urls,
    mode: Mode,
    interval_ms: u64,
    tasks: Vec<PlannedTask>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Report {
    detected: usize,
    latencies_ms: Vec<i64>,
    cpu_s: f64,
    updates: u64,
    rss_start: usize,
    rss_peak: usize,
}

fn rss() -> usize {
    memory_stats::memory_stats().map_or(0, |m| m.physical_mem)
}

/// Peak resident memory of this process (VmHWM), Linux only.
fn rss_peak() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<usize>().ok())
        })
        .map_or_else(rss, |kb| kb * 1024)
}

fn providers(urls: &Urls) -> Vec<(&'static str, Arc<dyn DynTaskProvider>)> {
    let huawei = |name: &str, url: &str| {
        ServiceConfig::new(name, url, PROJECT, Credentials::aksk("BENCHAK", "bench-sk"))
    };
    let build = || -> tasktrack_core::Result<Vec<(&'static str, Arc<dyn DynTaskProvider>)>> {
        Ok(vec![
            (
                "proxmox",
                Arc::new(ProxmoxProvider::new(
                    PveClient::builder(
                        &urls.proxmox,
                        PveCredentials::api_token("root@pam!bench", "bench"),
                    )
                    .build()?,
                )),
            ),
            (
                "kps",
                Arc::new(KpsProvider::new(KpsClient::new(&huawei("kps", &urls.kps))?)),
            ),
            (
                "dcs",
                Arc::new(DcsProvider::new(DcsClient::new(&huawei("dcs", &urls.dcs))?)),
            ),
            (
                "ocp",
                Arc::new(OcpProvider::new(
                    OcpClient::builder(&urls.ocp, "admin", &Secret::new("bench")).build()?,
                )),
            ),
        ])
    };
    build().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    })
}

/// Child: the four simulators in one process, URLs on stdout, until killed.
async fn serve_sims() -> ExitCode {
    let huawei = || HuaweiAuth::new(PROJECT).aksk("BENCHAK", "bench-sk");
    let started = async {
        Ok::<_, std::io::Error>(Urls {
            proxmox: SimBuilder::new(
                Proxmox::new(["pve1", "pve2", "pve3"]).api_token("root@pam!bench", "bench"),
            )
            .start()
            .await
            .map(leak)?,
            kps: SimBuilder::new(Kps::new(huawei()))
                .start()
                .await
                .map(leak)?,
            dcs: SimBuilder::new(Dcs::new(huawei(), [INSTANCE]))
                .start()
                .await
                .map(leak)?,
            ocp: SimBuilder::new(Ocp::new("admin", "bench"))
                .start()
                .await
                .map(leak)?,
        })
    };
    match started.await {
        Ok(urls) => {
            println!("{}", serde_json::to_string(&urls).unwrap_or_default());
            let _ = std::io::stdout().flush();
            std::future::pending::<()>().await;
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot start the simulators: {e}");
            ExitCode::from(2)
        }
    }
}

/// Keeps a simulator running for the life of the process; its URL.
fn leak(sim: tasktrack_sim::SimHandle) -> String {
    let url = sim.base_url();
    std::mem::forget(sim);
    url
}

/// Child: tracks a plan's tasks, naive or with the Tracker; a report on stdout.
async fn client(plan_path: &str) -> ExitCode {
    let plan: Plan = match std::fs::read(plan_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: bad plan {plan_path}: {e}");
            return ExitCode::from(2);
        }
    };
    let providers = providers(&plan.urls);
    let finish: HashMap<(String, String), i64> = plan
        .tasks
        .iter()
        .map(|t| ((t.backend.clone(), t.id.clone()), t.finish_ms))
        .collect();
    let interval = Duration::from_millis(plan.interval_ms.max(1));
    let rss_start = rss();
    let cpu = cpu_time::ProcessTime::now();
    let mut report = Report {
        rss_start,
        ..Report::default()
    };
    match plan.mode {
        Mode::Naive => {
            // The PVE guide's wait_task: one task per tracked id, one status
            // GET every interval, until it ends.
            let by_name: HashMap<&str, Arc<dyn DynTaskProvider>> =
                providers.iter().cloned().collect();
            let updates = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let handles: Vec<_> = plan
                .tasks
                .iter()
                .map(|t| {
                    let p = by_name[t.backend.as_str()].clone();
                    let (id, due) = (t.id.clone(), t.finish_ms);
                    let updates = updates.clone();
                    tokio::spawn(async move {
                        loop {
                            let answer = p.snapshot(&id).await;
                            updates.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if answer.as_ref().is_ok_and(|s| s.state.is_terminal()) {
                                return Some(Utc::now().timestamp_millis() - due);
                            }
                            tokio::time::sleep(interval).await;
                        }
                    })
                })
                .collect();
            for h in handles {
                if let Ok(Some(latency)) = h.await {
                    report.latencies_ms.push(latency);
                }
            }
            report.updates = updates.load(std::sync::atomic::Ordering::Relaxed);
        }
        Mode::Tracker => {
            let mut builder = Tracker::builder()
                .policy(
                    PollPolicy::fixed(interval)
                        .with_deadline(None)
                        .with_error_budget(20),
                )
                .batch_size(5000);
            for (name, p) in &providers {
                builder = builder.provider(*name, p.clone());
            }
            let (tracker, mut events) = builder.build();
            for t in &plan.tasks {
                if let Err(e) = tracker.track(&t.backend, &t.id) {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            }
            while report.latencies_ms.len() < plan.tasks.len() {
                let Some(ev) = events.next().await else { break };
                if ev.is_final() {
                    let due = finish
                        .get(&(ev.provider.clone(), ev.id.clone()))
                        .copied()
                        .unwrap_or_default();
                    report
                        .latencies_ms
                        .push(Utc::now().timestamp_millis() - due);
                }
            }
            report.updates = tracker.stats().status_updates;
        }
    }
    report.detected = report.latencies_ms.len();
    report.cpu_s = cpu.elapsed().as_secs_f64();
    report.rss_peak = rss_peak();
    println!("{}", serde_json::to_string(&report).unwrap_or_default());
    ExitCode::SUCCESS
}

struct SimProcess {
    child: std::process::Child,
    urls: Urls,
    http: reqwest::Client,
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sim_process() -> Result<SimProcess, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .arg("sims")
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let urls: Urls =
        serde_json::from_str(line.trim()).map_err(|e| format!("simulators did not start: {e}"))?;
    Ok(SimProcess {
        child,
        urls,
        http: reqwest::Client::new(),
    })
}

impl SimProcess {
    fn url(&self, backend: &str) -> &str {
        match backend {
            "proxmox" => &self.urls.proxmox,
            "kps" => &self.urls.kps,
            "dcs" => &self.urls.dcs,
            _ => &self.urls.ocp,
        }
    }

    async fn requests(&self, backend: &str) -> u64 {
        let counts: BTreeMap<String, u64> = match self
            .http
            .get(format!("{}/_sim/requests", self.url(backend)))
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => BTreeMap::new(),
        };
        counts.values().sum()
    }

    async fn create(&self, backend: &str, spec: serde_json::Value) -> Result<String, String> {
        let r = self
            .http
            .post(format!("{}/_sim/tasks", self.url(backend)))
            .json(&spec)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let v: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
        let id = v["id"].as_str().ok_or("no id")?.to_owned();
        Ok(if backend == "dcs" {
            format!("{INSTANCE}/{id}")
        } else {
            id
        })
    }

    async fn fault(&self, backend: &str, rule: &FaultRule) {
        let _ = self
            .http
            .post(format!("{}/_sim/faults", self.url(backend)))
            .json(rule)
            .send()
            .await;
    }
}

/// Durations spread evenly over 1-60 s (scaled); a quarter of tasks fail.
fn spec(backend: &str, i: usize, scale: f64) -> (serde_json::Value, u64) {
    let secs = 1.0 + (i * 7919 % 60) as f64;
    let ms = (secs * 1000.0 * scale) as u64;
    let fail = i % 4 == 0;
    let outcome = if fail {
        serde_json::json!({"outcome": "failure", "code": "E1", "message": "scripted failure"})
    } else {
        serde_json::json!({"outcome": "success"})
    };
    let spec = match backend {
        "dcs" => serde_json::json!({"kind": "ChangeInstanceSpec", "steps": [
            {"name": "precheck", "duration_ms": ms / 2},
            {"name": "apply", "duration_ms": ms - ms / 2, "outcome": outcome, "substeps": ["a", "b"]}]}),
        _ => {
            serde_json::json!({"kind": "job", "duration_ms": ms, "outcome": outcome, "attrs": {"id": (100 + i % 900).to_string()}})
        }
    };
    (spec, ms)
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Row {
    scenario: String,
    mode: Mode,
    tasks: usize,
    requests: u64,
    report: Report,
}

async fn measure(
    sims: &SimProcess,
    scenario: Scenario,
    mode: Mode,
    scale: f64,
) -> Result<Row, String> {
    let mix: Vec<(&str, usize)> = match scenario {
        Scenario::Proxmox => vec![("proxmox", 1000)],
        Scenario::Ocp => vec![("ocp", 1000)],
        Scenario::Dcs => vec![("dcs", 200)],
        Scenario::Mixed => vec![
            ("proxmox", 2500),
            ("kps", 2500),
            ("dcs", 2500),
            ("ocp", 2500),
        ],
    };
    let mut tasks = Vec::new();
    let backends: Vec<&str> = mix.iter().map(|(b, _)| *b).collect();
    let mut before = 0;
    for b in &backends {
        before += sims.requests(b).await;
    }
    let creation =
        futures::stream::iter(mix.iter().flat_map(|(b, n)| (0..*n).map(move |i| (*b, i))))
            .map(|(backend, i)| async move {
                let (spec, ms) = spec(backend, i, scale);
                let id = sims.create(backend, spec).await?;
                Ok::<_, String>(PlannedTask {
                    backend: backend.to_owned(),
                    id,
                    finish_ms: Utc::now().timestamp_millis() + ms as i64,
                })
            })
            .buffer_unordered(32)
            .collect::<Vec<_>>()
            .await;
    for t in creation {
        tasks.push(t?);
    }
    let interval_ms = (2000.0 * scale) as u64;
    let plan = Plan {
        urls: sims.urls.clone(),
        mode,
        interval_ms,
        tasks,
    };
    let path = std::env::temp_dir().join(format!(
        "tasktrack-bench-{}-{scenario:?}-{mode:?}.json",
        std::process::id()
    ));
    std::fs::write(&path, serde_json::to_vec(&plan).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .arg("client")
        .arg(&path)
        .output()
        .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&path);
    if !out.status.success() {
        return Err(format!(
            "client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut report: Report =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("bad report: {e}"))?;
    report.latencies_ms.sort_unstable();
    let mut after = 0;
    for b in &backends {
        after += sims.requests(b).await;
    }
    // The simulators also counted the control API? No: /_sim routes are not counted.
    Ok(Row {
        scenario: format!("{scenario:?}").to_lowercase(),
        mode,
        tasks: plan.tasks.len(),
        requests: after - before,
        report,
    })
}

fn print_table(rows: &[Row], scale: f64) {
    println!(
        "\ntasktrack-bench (durations {:.2}-{:.1} s, naive interval {:.2} s; client CPU and memory measured in its own process)\n",
        scale,
        60.0 * scale,
        2.0 * scale
    );
    println!(
        "| scenario | client | tasks | HTTP requests | detect p50 | p95 | max | client CPU | CPU / update | peak RSS | RSS / task |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let lat = &r.report.latencies_ms;
        let growth = r.report.rss_peak.saturating_sub(r.report.rss_start);
        println!(
            "| {} | {} | {} | {} | {} ms | {} ms | {} ms | {:.2} s | {:.1} µs | {:.1} MiB | {:.0} B |",
            r.scenario,
            if r.mode == Mode::Naive { "naive loop" } else { "Tracker" },
            r.tasks,
            r.requests,
            percentile(lat, 0.5),
            percentile(lat, 0.95),
            lat.last().copied().unwrap_or(0),
            r.report.cpu_s,
            r.report.cpu_s * 1e6 / r.report.updates.max(1) as f64,
            r.report.rss_peak as f64 / 1048576.0,
            growth as f64 / r.tasks.max(1) as f64,
        );
        if r.report.detected != r.tasks {
            println!(
                "|  | MISSING | {} of {} tasks detected | | | | | | | | |",
                r.report.detected, r.tasks
            );
        }
    }
    for pair in rows.chunks(2) {
        if let [naive, tracker] = pair {
            println!(
                "{}: the Tracker made {:.0}x fewer requests; p95 detection {} ms vs {} ms",
                tracker.scenario,
                naive.requests as f64 / tracker.requests.max(1) as f64,
                percentile(&tracker.report.latencies_ms, 0.95),
                percentile(&naive.report.latencies_ms, 0.95)
            );
        }
    }
}

async fn soak(minutes: u64) -> Result<(), String> {
    let sims = start_sim_process()?;
    let tasks_n = 10_000usize;
    let backends = ["proxmox", "kps", "dcs", "ocp"];
    let span = minutes as f64 * 60.0;
    let mut tasks = Vec::new();
    for i in 0..tasks_n {
        let backend = backends[i % 4];
        let scale = span / 61.0; // spreads 1-60 (x scale) over the soak
        let (spec, _) = spec(backend, i, scale);
        tasks.push((backend, sims.create(backend, spec).await?));
    }
    let providers = providers(&sims.urls);
    let mut builder = Tracker::builder()
        .policy(
            PollPolicy::default()
                .with_deadline(None)
                .with_error_budget(50),
        )
        .batch_size(5000);
    for (name, p) in &providers {
        builder = builder.provider(*name, p.clone());
    }
    let (tracker, mut events) = builder.build();
    for (b, id) in &tasks {
        tracker.track(b, id).map_err(|e| e.to_string())?;
    }
    let start_rss = rss();
    println!(
        "soak: {tasks_n} tasks over {minutes} min; start RSS {:.1} MiB",
        start_rss as f64 / 1048576.0
    );
    let started = Instant::now();
    let mut finals = 0usize;
    let mut ended: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
    let mut next_fault = Instant::now();
    let mut next_report = Instant::now() + Duration::from_secs(60);
    let faults = [
        Fault::status(503),
        Fault::DropConnection,
        Fault::Truncated,
        Fault::too_many_requests(1),
        Fault::Html { status: 502 },
    ];
    let mut k = 0;
    while finals < tasks_n && started.elapsed() < Duration::from_secs(minutes * 60 + 120) {
        // Faults come at a fixed rate, so near the end the few tasks left
        // would take every one of them; the grace period after the window
        // is fault-free so the survivors can drain.
        let in_window = started.elapsed() < Duration::from_secs(minutes * 60);
        if in_window && Instant::now() >= next_fault {
            let rule = FaultRule {
                route: "*".into(),
                fault: faults[k % faults.len()].clone(),
                times: Some(5),
            };
            sims.fault(backends[k % 4], &rule).await;
            k += 1;
            next_fault = Instant::now() + Duration::from_secs(3);
        }
        if Instant::now() >= next_report {
            println!(
                "  {:>4.0} min: {finals} ended, RSS {:.1} MiB",
                started.elapsed().as_secs_f64() / 60.0,
                rss() as f64 / 1048576.0
            );
            next_report += Duration::from_secs(60);
        }
        match tokio::time::timeout(Duration::from_secs(1), events.next()).await {
            Ok(Some(ev)) if ev.is_final() => {
                finals += 1;
                ended.insert((ev.provider.clone(), ev.id.clone()));
            }
            Ok(None) => break,
            _ => {}
        }
    }
    let stats = tracker.stats();
    let still = usize::try_from(stats.tracked).unwrap_or(usize::MAX);
    for (b, id) in tasks
        .iter()
        .filter(|(b, id)| !ended.contains(&((*b).to_owned(), id.clone())))
    {
        let now = match providers.iter().find(|(n, _)| n == b) {
            Some((_, p)) => match p.snapshot(id).await {
                Ok(s) => format!("{:?} (vendor state {})", s.state, s.vendor_state),
                Err(e) => format!("error: {e}"),
            },
            None => "no provider".into(),
        };
        println!("  not ended: {b} {id}; backend now says {now}");
    }
    println!(
        "  tracker still tracks {} task(s); {} status updates",
        stats.tracked, stats.status_updates
    );
    println!(
        "soak: {finals} of {tasks_n} tasks ended ({} lost); RSS start {:.1} MiB, end {:.1} MiB",
        tasks_n - finals - still.min(tasks_n - finals),
        start_rss as f64 / 1048576.0,
        rss() as f64 / 1048576.0
    );
    if finals == tasks_n {
        Ok(())
    } else if finals + still == tasks_n {
        Err(format!(
            "{still} task(s) still tracked after the drain period"
        ))
    } else {
        Err("tasks were lost".into())
    }
}

async fn redis_commands(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(conn)
        .await
        .unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn create_mix(
    sims: &SimProcess,
    n: usize,
    scale: f64,
) -> Result<Vec<(String, String)>, String> {
    let backends = ["proxmox", "kps", "dcs", "ocp"];
    let created = futures::stream::iter((0..n).map(|i| (backends[i % 4], i)))
        .map(|(b, i)| async move {
            let (spec, _) = spec(b, i, scale);
            sims.create(b, spec).await.map(|id| (b.to_owned(), id))
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    created.into_iter().collect()
}

/// One in-memory tracker, then three replicas on Redis (one killed midway),
/// over the same kind of workload.
async fn store_bench(n: usize, scale: f64) -> Result<(), String> {
    use tasktrack_core::TrackStore;
    let sims = start_sim_process()?;
    let redis = tasktrack_redis::testing::RedisServer::start(
        tasktrack_redis::testing::free_port().map_err(|e| e.to_string())?,
        None,
    )
    .map_err(|e| e.to_string())?;
    let providers = providers(&sims.urls);
    let interval = Duration::from_millis((2000.0 * scale) as u64);
    let policy = PollPolicy::fixed(interval)
        .with_deadline(None)
        .with_error_budget(50);

    // Memory: one tracker, no store.
    let work = create_mix(&sims, n, scale).await?;
    let mut builder = Tracker::builder().policy(policy.clone()).batch_size(5000);
    for (name, p) in &providers {
        builder = builder.provider(*name, p.clone());
    }
    let (tracker, mut events) = builder.build();
    let cpu = cpu_time::ProcessTime::now();
    for (b, id) in &work {
        tracker.track(b, id).map_err(|e| e.to_string())?;
    }
    let mut done = 0;
    while done < n {
        match events.next().await {
            Some(e) if e.is_final() => done += 1,
            Some(_) => {}
            None => break,
        }
    }
    let memory_cpu = cpu.elapsed().as_secs_f64();
    let memory_updates = tracker.stats().status_updates;
    tracker.stop().await;

    // Redis: three replicas share the set; one dies a third of the way in.
    let work = create_mix(&sims, n, scale).await?;
    let client = redis::Client::open(redis.url()).map_err(|e| e.to_string())?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let ttl = Duration::from_secs(2);
    let mut replicas = Vec::new();
    let mut streams = Vec::new();
    for owner in ["r1", "r2", "r3"] {
        let store = tasktrack_redis::RedisStore::connect(&redis.url())
            .await
            .map_err(|e| e.to_string())?;
        let mut builder = Tracker::builder()
            .policy(policy.clone())
            .batch_size(5000)
            .store(Arc::new(store))
            .owner(owner)
            .lease_ttl(ttl);
        for (name, p) in &providers {
            builder = builder.provider(*name, p.clone());
        }
        let (t, e) = builder.build();
        replicas.push(t);
        streams.push(e.boxed());
    }
    let writer = tasktrack_redis::RedisStore::connect(&redis.url())
        .await
        .map_err(|e| e.to_string())?;
    for (b, id) in &work {
        writer
            .put(&tasktrack_core::TrackedEntry::new(b.clone(), id.clone()))
            .await
            .map_err(|e| e.to_string())?;
    }
    let commands_before = redis_commands(&mut conn).await;
    let cpu = cpu_time::ProcessTime::now();
    let mut merged = futures::stream::select_all(streams);
    let mut finals = 0usize;
    let mut killed: Option<(Instant, Vec<u32>)> = None;
    let mut takeover: Option<Duration> = None;
    let mut last_check = Instant::now();
    loop {
        if let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(200), merged.next()).await {
            finals += usize::from(e.is_final());
        }
        if killed.is_none() && finals >= n / 3 {
            let mut held = Vec::new();
            for shard in 0..64u32 {
                let h: Option<String> = redis::cmd("GET")
                    .arg(format!("tasktrack:lease:{shard}"))
                    .query_async(&mut conn)
                    .await
                    .unwrap_or(None);
                if h.as_deref() == Some("r2") {
                    held.push(shard);
                }
            }
            replicas[1].kill();
            killed = Some((Instant::now(), held));
        }
        if let (Some((at, held)), None) = (&killed, takeover) {
            if last_check.elapsed() > Duration::from_millis(50) {
                last_check = Instant::now();
                let mut all_moved = true;
                for shard in held {
                    let h: Option<String> = redis::cmd("GET")
                        .arg(format!("tasktrack:lease:{shard}"))
                        .query_async(&mut conn)
                        .await
                        .unwrap_or(None);
                    all_moved &= h.is_some_and(|h| h != "r2");
                }
                if all_moved {
                    takeover = Some(at.elapsed());
                }
            }
        }
        let logged = redis::cmd("XLEN")
            .arg("tasktrack:events")
            .query_async::<u64>(&mut conn)
            .await
            .unwrap_or(0);
        if killed.is_some() && takeover.is_some() && finals + 5 >= n && logged > 0 {
            // The log is the record: count its finals once the fleet is quiet.
            let store = tasktrack_redis::RedisStore::connect(&redis.url())
                .await
                .map_err(|e| e.to_string())?;
            let mut cursor = "0".to_owned();
            let mut logged_finals = 0;
            loop {
                let page = store.read(&cursor, 5000).await.map_err(|e| e.to_string())?;
                let Some((last, _)) = page.last() else { break };
                cursor = last.clone();
                logged_finals += page.iter().filter(|(_, e)| e.is_final()).count();
            }
            if logged_finals >= n {
                break;
            }
        }
    }
    let redis_cpu = cpu.elapsed().as_secs_f64();
    let commands = redis_commands(&mut conn).await - commands_before;
    let redis_updates: u64 = replicas.iter().map(|t| t.stats().status_updates).sum();
    for (i, t) in replicas.iter().enumerate() {
        if i != 1 {
            t.stop().await;
        }
    }
    println!("\ntasktrack-bench store ({n} mixed tasks, durations {:.2}-{:.1} s, poll every {:.2} s, lease TTL {} s)\n", scale, 60.0 * scale, 2.0 * scale, ttl.as_secs());
    println!("| tracker | status updates | tracker CPU | CPU / update | Redis commands | commands / update | takeover after a replica dies |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "| 1 replica, memory | {memory_updates} | {memory_cpu:.2} s | {:.1} µs | - | - | - |",
        memory_cpu * 1e6 / memory_updates.max(1) as f64
    );
    println!(
        "| 3 replicas, Redis | {redis_updates} | {redis_cpu:.2} s | {:.1} µs | {commands} | {:.2} | {:.2} s |",
        redis_cpu * 1e6 / redis_updates.max(1) as f64,
        commands as f64 / redis_updates.max(1) as f64,
        takeover.map_or(f64::NAN, |d| d.as_secs_f64())
    );
    println!("(CPU is this process: the trackers and their HTTP clients; the simulators run in another process.)");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Diagnostics on demand: `RUST_LOG=tasktrack_core=trace` logs to stderr.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    if !(cli.scale.is_finite() && cli.scale > 0.0) {
        eprintln!("error: --scale must be a positive number");
        return ExitCode::from(2);
    }
    match cli.command {
        Some(Cmd::Sims) => return serve_sims().await,
        Some(Cmd::Client { plan }) => return client(&plan).await,
        Some(Cmd::Store { tasks }) => {
            return match store_bench(tasks, cli.scale).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Cmd::Soak { minutes }) => {
            return match soak(minutes).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        None => {}
    }
    let scenarios = if cli.scenarios.is_empty() {
        vec![
            Scenario::Proxmox,
            Scenario::Ocp,
            Scenario::Dcs,
            Scenario::Mixed,
        ]
    } else {
        cli.scenarios.clone()
    };
    let sims = match start_sim_process() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut rows = Vec::new();
    for scenario in scenarios {
        for mode in [Mode::Naive, Mode::Tracker] {
            eprintln!("running {scenario:?} with the {mode:?} client...");
            match measure(&sims, scenario, mode, cli.scale).await {
                Ok(row) => rows.push(row),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    print_table(&rows, cli.scale);
    ExitCode::SUCCESS
}
