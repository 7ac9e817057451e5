//! The throughput benchmark: simulators in another process, providers
//! polling them, the table of figures.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::{Mode, Scenario, INSTANCE, PROJECT};
use chrono::Utc;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tasktrack_core::{DynTaskProvider, PollPolicy, Secret, Tracker};
use tasktrack_dcs::{DcsClient, DcsProvider};
use tasktrack_huaweicloud::{Credentials, ServiceConfig};
use tasktrack_kps::{KpsClient, KpsProvider};
use tasktrack_ocp::{OcpClient, OcpProvider};
use tasktrack_proxmox::{ProxmoxClient, ProxmoxCredentials, ProxmoxProvider};
use tasktrack_sim::dcs::Dcs;
use tasktrack_sim::huawei::HuaweiAuth;
use tasktrack_sim::kps::Kps;
use tasktrack_sim::ocp::Ocp;
use tasktrack_sim::proxmox::Proxmox;
use tasktrack_sim::{FaultRule, SimBuilder};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Urls {
    pub(crate) proxmox: String,
    pub(crate) kps: String,
    pub(crate) dcs: String,
    pub(crate) ocp: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PlannedTask {
    pub(crate) backend: String,
    pub(crate) id: String,
    /// When the simulator finishes it (epoch ms).
    pub(crate) finish_ms: i64,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Plan {
    pub(crate) urls: Urls,
    pub(crate) mode: Mode,
    pub(crate) interval_ms: u64,
    pub(crate) policy: crate::Policy,
    pub(crate) scale: f64,
    pub(crate) tasks: Vec<PlannedTask>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Report {
    pub(crate) detected: usize,
    pub(crate) latencies_ms: Vec<i64>,
    /// The same latencies by backend (mixed runs tell which one is late).
    #[serde(default)]
    pub(crate) by_backend: BTreeMap<String, Vec<i64>>,
    pub(crate) cpu_s: f64,
    pub(crate) updates: u64,
    pub(crate) rss_start: usize,
    pub(crate) rss_peak: usize,
    /// The tracker's schedule lag p99 (a bucket bound), ms.
    pub(crate) lag_p99_ms: Option<u64>,
    /// How far the tracker stretched intervals at the end (percent).
    #[serde(default)]
    pub(crate) stretch_percent: Option<u64>,
    /// The most it stretched them, as seen at each task's end (percent).
    #[serde(default)]
    pub(crate) stretch_percent_max: Option<u64>,
    /// Polls it scheduled later than the policy asked for.
    #[serde(default)]
    pub(crate) stretched_polls: Option<u64>,
    /// Its scheduled polls by lateness (`LAG_BUCKETS_MS`, then later).
    #[serde(default)]
    pub(crate) lag_counts: Option<Vec<u64>>,
}

impl Report {
    /// A task of `backend` was seen to end `latency_ms` after it did.
    fn detected_at(&mut self, backend: String, latency_ms: i64) {
        self.latencies_ms.push(latency_ms);
        self.by_backend.entry(backend).or_default().push(latency_ms);
    }
}

/// The OCP simulator's account in the bench.
pub(crate) const OCP_USER: &str = "admin";
/// Its password.
pub(crate) const OCP_PASSWORD: &str = "bench";

pub(crate) fn rss() -> usize {
    memory_stats::memory_stats().map_or(0, |m| m.physical_mem)
}

/// Peak resident memory of this process (VmHWM), Linux only.
pub(crate) fn rss_peak() -> usize {
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

pub(crate) fn providers(urls: &Urls) -> Vec<(&'static str, Arc<dyn DynTaskProvider>)> {
    let huawei = |name: &str, url: &str| {
        ServiceConfig::new(name, url, PROJECT, Credentials::aksk("BENCHAK", "bench-sk"))
    };
    let build = || -> tasktrack_core::Result<Vec<(&'static str, Arc<dyn DynTaskProvider>)>> {
        Ok(vec![
            (
                "proxmox",
                Arc::new(ProxmoxProvider::new(
                    ProxmoxClient::builder(
                        &urls.proxmox,
                        ProxmoxCredentials::api_token("root@pam!bench", "bench"),
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
                    OcpClient::builder(&urls.ocp, OCP_USER, &Secret::new(OCP_PASSWORD)).build()?,
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
pub(crate) async fn serve_sims() -> ExitCode {
    let huawei = || HuaweiAuth::new(PROJECT).with_aksk("BENCHAK", "bench-sk");
    let started = async {
        Ok::<_, std::io::Error>(Urls {
            proxmox: SimBuilder::new(
                Proxmox::new(["pve1", "pve2", "pve3"]).with_api_token("root@pam!bench", "bench"),
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
            ocp: SimBuilder::new(Ocp::new(OCP_USER, OCP_PASSWORD))
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
pub(crate) fn leak(sim: tasktrack_sim::SimHandle) -> String {
    let url = sim.base_url();
    std::mem::forget(sim);
    url
}

/// Child: tracks a plan's tasks, naive or with the Tracker; a report on stdout.
pub(crate) async fn client(plan_path: &str) -> ExitCode {
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
        Mode::Proxmoxer | Mode::ProxmoxerDefault => {
            eprintln!("error: the proxmoxer peer runs in python3, not in this client");
            return ExitCode::from(2);
        }
        Mode::Floor => {
            let ids: Vec<String> = plan.tasks.iter().map(|t| t.id.clone()).collect();
            match crate::floor::run(&plan.urls.ocp, &ids).await {
                Ok(n) => report.updates = n,
                Err(e) => {
                    eprintln!("error: the floor failed: {e}");
                    return ExitCode::from(2);
                }
            }
        }
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
                    let (backend, updates) = (t.backend.clone(), updates.clone());
                    tokio::spawn(async move {
                        loop {
                            let answer = p.snapshot(&id).await;
                            updates.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if answer.as_ref().is_ok_and(|s| s.state.is_terminal()) {
                                return Some((backend, Utc::now().timestamp_millis() - due));
                            }
                            tokio::time::sleep(interval).await;
                        }
                    })
                })
                .collect();
            for h in handles {
                if let Ok(Some((backend, latency))) = h.await {
                    report.detected_at(backend, latency);
                }
            }
            report.updates = updates.load(std::sync::atomic::Ordering::Relaxed);
        }
        Mode::Tracker => {
            let policy = match plan.policy {
                crate::Policy::Fixed => PollPolicy::fixed(interval).with_error_budget(20),
                // What a user gets, its intervals scaled with the workload.
                crate::Policy::Default => {
                    let d = PollPolicy::default();
                    d.clone()
                        .with_initial_interval(d.initial_interval.mul_f64(plan.scale))
                        .with_max_interval(d.max_interval.mul_f64(plan.scale))
                }
            };
            let mut builder = Tracker::builder()
                .with_policy(policy.with_deadline(None))
                .with_batch_size(5000);
            for (name, p) in &providers {
                builder = builder.with_provider(*name, p.clone());
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
                    let stretch = tracker.stats().stretch_percent;
                    report.stretch_percent_max = report.stretch_percent_max.max(Some(stretch));
                    let due = finish
                        .get(&(ev.provider.clone(), ev.id.clone()))
                        .copied()
                        .unwrap_or_default();
                    report.detected_at(ev.provider, Utc::now().timestamp_millis() - due);
                }
            }
            let stats = tracker.stats();
            report.updates = stats.status_updates;
            report.stretch_percent = Some(stats.stretch_percent);
            report.stretched_polls = Some(stats.stretched_polls);
            report.lag_counts = Some(stats.schedule_lag.counts.to_vec());
            report.lag_p99_ms = stats
                .schedule_lag
                .quantile(0.99)
                .map(|d| d.as_millis() as u64);
        }
    }
    report.detected = report.latencies_ms.len();
    report.cpu_s = cpu.elapsed().as_secs_f64();
    report.rss_peak = rss_peak();
    println!("{}", serde_json::to_string(&report).unwrap_or_default());
    ExitCode::SUCCESS
}

pub(crate) struct SimProcess {
    pub(crate) child: std::process::Child,
    pub(crate) urls: Urls,
    pub(crate) http: reqwest::Client,
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start_sim_process() -> Result<SimProcess, String> {
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
    pub(crate) fn url(&self, backend: &str) -> &str {
        match backend {
            "proxmox" => &self.urls.proxmox,
            "kps" => &self.urls.kps,
            "dcs" => &self.urls.dcs,
            _ => &self.urls.ocp,
        }
    }

    pub(crate) async fn requests(&self, backend: &str) -> u64 {
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

    pub(crate) async fn create(
        &self,
        backend: &str,
        spec: serde_json::Value,
    ) -> Result<String, String> {
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

    pub(crate) async fn fault(&self, backend: &str, rule: &FaultRule) {
        let _ = self
            .http
            .post(format!("{}/_sim/faults", self.url(backend)))
            .json(rule)
            .send()
            .await;
    }
}

/// Durations spread evenly over 1-60 s (scaled); a quarter of tasks fail.
pub(crate) fn spec(backend: &str, i: usize, scale: f64) -> (serde_json::Value, u64) {
    let secs = 1.0 + (i * 7919 % 60) as f64;
    let ms = (secs * 1000.0 * scale) as u64;
    let fail = i.is_multiple_of(4);
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

pub(crate) fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub(crate) struct Row {
    pub(crate) scenario: String,
    pub(crate) mode: Mode,
    pub(crate) tasks: usize,
    pub(crate) requests: u64,
    pub(crate) report: Report,
}

pub(crate) async fn measure(
    sims: &SimProcess,
    scenario: Scenario,
    mode: Mode,
    scale: f64,
    policy: crate::Policy,
) -> Result<Row, String> {
    let mix: Vec<(&str, usize)> = match scenario {
        Scenario::Proxmox if mode == Mode::ProxmoxerDefault => vec![("proxmox", 100)],
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
    let interval_ms = client_interval_ms(mode, scale);
    let plan = Plan {
        urls: sims.urls.clone(),
        mode,
        interval_ms,
        policy,
        scale,
        tasks,
    };
    let path = std::env::temp_dir().join(format!(
        "tasktrack-bench-{}-{scenario:?}-{mode:?}.json",
        std::process::id()
    ));
    std::fs::write(&path, serde_json::to_vec(&plan).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let out = client_command(mode, &path, interval_ms).and_then(|mut c| {
        c.output()
            .map_err(|e| format!("cannot start the client: {e}"))
    });
    let _ = std::fs::remove_file(&path);
    // The peer's script, when one was written beside the plan.
    let _ = std::fs::remove_file(path.with_extension("py"));
    let out = out?;
    if !out.status.success() {
        return Err(format!(
            "client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // What the client said on stderr (warnings, diagnostics) is passed on.
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let mut report: Report =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("bad report: {e}"))?;
    report.latencies_ms.sort_unstable();
    for latencies in report.by_backend.values_mut() {
        latencies.sort_unstable();
    }
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

/// The peer's script, written out next to the plan when it runs.
const PROXMOXER_PEER: &str = include_str!("../proxmoxer_peer.py");

/// How often a client polls: the naive loop and proxmoxer every 2 s,
/// proxmoxer's default 1 s, both scaled.
pub(crate) fn client_interval_ms(mode: Mode, scale: f64) -> u64 {
    let secs = if mode == Mode::ProxmoxerDefault {
        1.0
    } else {
        2.0
    };
    (secs * 1000.0 * scale) as u64
}

/// The measured client: this binary's `client`, or python3 running the
/// proxmoxer peer.
fn client_command(mode: Mode, plan: &std::path::Path, interval_ms: u64) -> Result<Command, String> {
    if matches!(mode, Mode::Proxmoxer | Mode::ProxmoxerDefault) {
        let script = plan.with_extension("py");
        std::fs::write(&script, PROXMOXER_PEER).map_err(|e| e.to_string())?;
        let mut c = Command::new("python3");
        c.arg(script)
            .arg(plan)
            .arg(format!("{:.3}", interval_ms as f64 / 1000.0));
        return Ok(c);
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // A profile of the Tracker's client alone (the simulators run in
    // another process): `perf record` with DWARF call graphs, written to
    // the path the variable names.
    if let (Mode::Tracker, Some(out)) = (mode, std::env::var_os("TASKTRACK_BENCH_PERF")) {
        let mut c = Command::new("perf");
        c.args(["record", "-F", "199", "--call-graph", "dwarf,32768", "-o"])
            .arg(out)
            .arg("--")
            .arg(exe)
            .arg("client")
            .arg(plan);
        return Ok(c);
    }
    // Any other tool that takes a command line (`heaptrack -o /tmp/ht`,
    // `valgrind --tool=massif`): its words, then the Tracker's client.
    if let (Mode::Tracker, Some(wrap)) = (mode, std::env::var_os("TASKTRACK_BENCH_WRAP")) {
        let wrap = wrap.to_string_lossy().into_owned();
        let mut words = wrap.split_whitespace();
        let tool = words
            .next()
            .ok_or("TASKTRACK_BENCH_WRAP is set but names no command")?;
        let mut c = Command::new(tool);
        c.args(words).arg(exe).arg("client").arg(plan);
        return Ok(c);
    }
    let mut c = Command::new(exe);
    c.arg("client").arg(plan);
    Ok(c)
}
