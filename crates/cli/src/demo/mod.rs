//! `tasktrack demo`: four simulated backends, about forty tasks, one tracker,
//! a live unified table and a summary.

mod backends;
mod workload;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use tasktrack_core::{PollPolicy, TaskAction, TaskEvent, TaskState, Tracker};

use crate::error::CliError;
use crate::table::LiveTable;

pub use backends::example_config;
use backends::{providers, start_sims};
use workload::{create_tasks, Remedy};

/// The demo's options.
#[derive(Debug, Clone, Copy)]
pub struct DemoOptions {
    /// One JSON event per line on stdout instead of the table.
    pub json: bool,
    /// Multiplies every task duration (1.0: about 30 s in all).
    pub time_scale: f64,
    /// Also serve the web dashboard here, and keep serving after the run.
    pub web: Option<std::net::SocketAddr>,
}

#[derive(Serialize)]
struct Summary {
    /// Final state counts per backend.
    states: BTreeMap<String, BTreeMap<String, u64>>,
    /// HTTP requests each simulator received.
    requests: BTreeMap<String, u64>,
    /// Demo actions taken.
    actions: Vec<String>,
    /// Seconds the run took.
    seconds: f64,
}

fn summary_text(s: &Summary) -> String {
    let states = ["succeeded", "failed", "cancelled", "unknown"];
    let mut out = format!(
        "{:<8} {:>9} {:>7} {:>9} {:>8} {:>9}\n",
        "BACKEND", "SUCCEEDED", "FAILED", "CANCELLED", "GAVE UP", "REQUESTS"
    );
    for (backend, counts) in &s.states {
        let c = |k: &str| counts.get(k).copied().unwrap_or(0);
        out.push_str(&format!(
            "{:<8} {:>9} {:>7} {:>9} {:>8} {:>9}\n",
            backend,
            c(states[0]),
            c(states[1]),
            c(states[2]),
            c("gave_up"),
            s.requests.get(backend).copied().unwrap_or(0)
        ));
    }
    for a in &s.actions {
        out.push_str(&format!("demo action: {a}\n"));
    }
    out.push_str(&format!(
        "{} tasks tracked in {:.1} s",
        s.states.values().flat_map(|c| c.values()).sum::<u64>(),
        s.seconds
    ));
    out
}

/// Runs the demo.
pub async fn run(opts: DemoOptions) -> Result<(), CliError> {
    let started = std::time::Instant::now();
    let sims = start_sims().await?;
    let workload = create_tasks(&sims, opts.time_scale);
    let scaled =
        |ms: u64| Duration::from_secs_f64((ms as f64 / 1000.0 * opts.time_scale).max(0.02));
    let policy = PollPolicy::default()
        .with_initial_interval(scaled(500))
        .with_max_interval(scaled(2000))
        .with_hint_floor(scaled(250))
        .with_deadline(None);
    let mut builder = Tracker::builder().with_policy(policy);
    let providers = providers(&sims)?;
    for (name, p) in &providers {
        builder = builder.with_provider(*name, p.clone());
    }
    let (tracker, mut events) = builder.build();
    let dashboard = match opts.web {
        Some(addr) => {
            let named = providers
                .iter()
                .map(|(n, p)| ((*n).to_owned(), p.clone()))
                .collect();
            let d = crate::web::Dashboard::new(named, None, false, None);
            let bound =
                crate::web::start(d.clone(), addr, crate::web::DEFAULT_MAX_CONNECTIONS, None)
                    .await?;
            let _ = crate::output::out!("dashboard: http://{bound}/");
            Some(d)
        }
        None => None,
    };
    let mut table = LiveTable::new(!opts.json);
    for (backend, id) in &workload.tasks {
        table.ensure(backend, id);
        tracker.track(backend, id)?;
    }
    let ocp = providers
        .iter()
        .find(|(n, _)| *n == "ocp")
        .map(|(_, p)| p.clone());
    let mut remedied: HashSet<String> = HashSet::new();
    let mut finals: HashMap<(String, String), String> = HashMap::new();
    let mut actions = Vec::new();
    let total = workload.tasks.len();
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    while finals.len() < total {
        let event: TaskEvent = tokio::select! {
            e = events.next() => match e {
                Some(e) => e,
                None => break,
            },
            _ = ticker.tick() => {
                table.tick();
                continue;
            }
        };
        if opts.json {
            let _ = crate::output::json(&event);
        }
        table.apply(&event);
        if let Some(d) = &dashboard {
            d.publish(&event);
        }
        let key = (event.provider.clone(), event.id.clone());
        if !event.is_final() {
            continue;
        }
        // The demo's own remediation: one OCP task retried, one skipped.
        let remedy = workload
            .remedies
            .get(&event.id)
            .filter(|_| event.provider == "ocp");
        if let (Some(remedy), Some(TaskState::Failed), Some(ocp)) = (remedy, event.state(), &ocp) {
            if remedied.insert(event.id.clone()) {
                let action = match remedy {
                    Remedy::Retry => TaskAction::Retry,
                    Remedy::SkipFailedStep => {
                        let step = event
                            .snapshot()
                            .and_then(|s| s.steps.iter().find(|st| st.state == TaskState::Failed))
                            .map(|st| st.id.clone())
                            .unwrap_or_default();
                        TaskAction::SkipStep(step)
                    }
                };
                let done = format!("{action} on ocp task {}", event.id);
                match ocp.perform(&event.id, action).await {
                    Ok(_) => {
                        table.note(&format!("demo: {done}"));
                        actions.push(done);
                        tracker.track("ocp", &event.id)?;
                        continue;
                    }
                    Err(e) => table.note(&format!("demo: {done} refused: {e}")),
                }
            }
        }
        let state = match event.state() {
            Some(s) => s.as_str().to_owned(),
            None => "gave_up".to_owned(),
        };
        finals.insert(key, state);
    }
    tracker.shutdown();
    let mut states: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for ((backend, _), state) in &finals {
        *states
            .entry(backend.clone())
            .or_default()
            .entry(state.clone())
            .or_default() += 1;
    }
    let requests = [
        ("proxmox", &sims.proxmox),
        ("kps", &sims.kps),
        ("dcs", &sims.dcs),
        ("ocp", &sims.ocp),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_owned(), s.requests().total()))
    .collect();
    let summary = Summary {
        states,
        requests,
        actions,
        seconds: started.elapsed().as_secs_f64(),
    };
    let final_table = table.finish();
    if opts.json {
        crate::output::note!("{}", serde_json::to_string(&summary).unwrap_or_default());
    } else {
        crate::output::write_block(&format!("{final_table}\n\n{}", summary_text(&summary)))?;
    }
    if dashboard.is_some() {
        let _ = crate::output::out!("the demo has ended; the dashboard stays up until Ctrl-C");
        let _ = tokio::signal::ctrl_c().await;
    }
    Ok(())
}
