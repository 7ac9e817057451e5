//! `tasktrack-bench layers`: where one status update's client CPU goes.
//! The same requests (OCP task status, [`IN_FLIGHT`] at once, against the
//! simulators in their own process) made through one more layer at a time,
//! from a bare hyper client up to the provider's snapshot with the
//! tracker's change fingerprint; each layer's CPU per request is the
//! median of a few rounds, taken in this process.

use std::sync::Arc;

use serde::Deserialize;
use tasktrack_core::{DynTaskProvider, Secret};
use tasktrack_ocp::{OcpClient, OcpProvider, WrappedTaskInstance};

use crate::floor::{basic_authorization, drive, two_fields, IN_FLIGHT, REQUESTS};
use crate::throughput::{start_sim_process, OCP_PASSWORD, OCP_USER};

/// One step up the stack, measured on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Layer {
    Hyper,
    Reqwest,
    ReqwestTyped,
    ReqwestTypedWithPath,
    Client,
    Snapshot,
    Fingerprint,
}

const LAYERS: [Layer; 7] = [
    Layer::Hyper,
    Layer::Reqwest,
    Layer::ReqwestTyped,
    Layer::ReqwestTypedWithPath,
    Layer::Client,
    Layer::Snapshot,
    Layer::Fingerprint,
];

impl Layer {
    fn describe(self) -> &'static str {
        match self {
            Layer::Hyper => "bare hyper, two-field decode (the floor)",
            Layer::Reqwest => "reqwest, two-field decode",
            Layer::ReqwestTyped => "reqwest, the full typed model (serde_json)",
            Layer::ReqwestTypedWithPath => {
                "reqwest, the full typed model through serde_path_to_error (the decode before this change)"
            }
            Layer::Client => {
                "OcpClient::task: the project's HTTP layer (auth, retry, limits, errors, typed decode)"
            }
            Layer::Snapshot => "OcpProvider as DynTaskProvider::snapshot (id parse, snapshot)",
            Layer::Fingerprint => {
                "snapshot plus its fingerprint (all the Tracker keeps of an answer)"
            }
        }
    }
}

#[derive(Deserialize)]
struct Data<T> {
    data: T,
}

/// Runs the table: `rounds` rounds of every layer (of `only`'s, when given).
pub(crate) async fn layers(rounds: usize, only: &[Layer]) -> Result<(), String> {
    let sims = start_sim_process()?;
    let mut ids = Vec::new();
    for i in 0..1000 {
        // Running for an hour: every answer in the run is the same.
        let spec = serde_json::json!({"kind": "job", "duration_ms": 3_600_000u64,
            "attrs": {"id": (100 + i % 900).to_string()}});
        ids.push(sims.create("ocp", spec).await?);
    }
    let base = sims.urls.ocp.clone();
    let mut per_layer: Vec<Vec<f64>> = vec![Vec::new(); LAYERS.len()];
    for round in 0..rounds {
        for (i, layer) in LAYERS.iter().enumerate() {
            if !only.is_empty() && !only.contains(layer) {
                continue;
            }
            eprintln!("round {} of {rounds}: {:?}", round + 1, layer);
            let cpu = cpu_time::ProcessTime::now();
            let done = run(*layer, &base, &ids).await?;
            per_layer[i].push(cpu.elapsed().as_secs_f64() * 1e6 / done.max(1) as f64);
        }
    }
    println!(
        "\nclient CPU per OCP status request, {IN_FLIGHT} in flight, {REQUESTS} requests a round, median of {rounds} rounds\n"
    );
    println!("| layer | µs / request | added by this layer |");
    println!("|---|---:|---:|");
    let mut previous: Option<f64> = None;
    for (layer, samples) in LAYERS.iter().zip(per_layer.iter_mut()) {
        if samples.is_empty() {
            continue;
        }
        samples.sort_by(f64::total_cmp);
        let median = samples[samples.len() / 2];
        let added = previous.map_or("-".to_owned(), |p| format!("{:+.1} µs", median - p));
        println!("| {} | {median:.1} | {added} |", layer.describe());
        // The path-tracking decode is an alternative, not a step under the
        // client: the next layer is compared with the plain decode.
        if !matches!(layer, Layer::ReqwestTypedWithPath) {
            previous = Some(median);
        }
    }
    Ok(())
}

async fn run(layer: Layer, base: &str, ids: &[String]) -> Result<u64, String> {
    let urls: Arc<Vec<String>> = Arc::new(
        ids.iter()
            .map(|id| format!("{base}/api/v2/tasks/instances/{id}"))
            .collect(),
    );
    let reqwest_get = {
        let http = reqwest::Client::new();
        let authorization = Arc::new(basic_authorization());
        let urls = urls.clone();
        move |n: usize| {
            let request = http
                .get(&urls[n % urls.len()])
                .header("authorization", authorization.as_str());
            async move {
                let answer = request.send().await.map_err(|e| e.to_string())?;
                if !answer.status().is_success() {
                    return Err(format!("status {}", answer.status()));
                }
                answer.bytes().await.map_err(|e| e.to_string())
            }
        }
    };
    match layer {
        Layer::Hyper => crate::floor::run(base, ids).await,
        Layer::Reqwest => {
            drive(REQUESTS, move |n| {
                let get = reqwest_get(n);
                async move { two_fields(&get.await?) }
            })
            .await
        }
        Layer::ReqwestTyped | Layer::ReqwestTypedWithPath => {
            let with_path = matches!(layer, Layer::ReqwestTypedWithPath);
            drive(REQUESTS, move |n| {
                let get = reqwest_get(n);
                async move { typed(&get.await?, with_path) }
            })
            .await
        }
        Layer::Client => {
            let client = Arc::new(ocp_client(base)?);
            let ids = numeric(ids)?;
            drive(REQUESTS, move |n| {
                let (client, id) = (client.clone(), ids[n % ids.len()]);
                async move {
                    let task = client.task(id).await.map_err(|e| e.to_string())?;
                    std::hint::black_box(task);
                    Ok(())
                }
            })
            .await
        }
        Layer::Snapshot | Layer::Fingerprint => {
            let provider: Arc<dyn DynTaskProvider> = Arc::new(OcpProvider::new(ocp_client(base)?));
            let ids: Arc<Vec<String>> = Arc::new(ids.to_vec());
            let fingerprint = matches!(layer, Layer::Fingerprint);
            drive(REQUESTS, move |n| {
                let (provider, ids) = (provider.clone(), ids.clone());
                async move {
                    let snapshot = provider
                        .snapshot(&ids[n % ids.len()])
                        .await
                        .map_err(|e| e.to_string())?;
                    if fingerprint {
                        std::hint::black_box(snapshot.fingerprint());
                    }
                    std::hint::black_box(snapshot);
                    Ok(())
                }
            })
            .await
        }
    }
}

/// Decodes an OCP task detail into the full typed model.
fn typed(body: &[u8], with_path: bool) -> Result<(), String> {
    let value: Data<WrappedTaskInstance> = if with_path {
        let de = &mut serde_json::Deserializer::from_slice(body);
        serde_path_to_error::deserialize(de).map_err(|e| e.to_string())?
    } else {
        serde_json::from_slice(body).map_err(|e| e.to_string())?
    };
    std::hint::black_box(value.data);
    Ok(())
}

fn ocp_client(base: &str) -> Result<OcpClient, String> {
    OcpClient::builder(base, OCP_USER, &Secret::new(OCP_PASSWORD))
        .build()
        .map_err(|e| e.to_string())
}

fn numeric(ids: &[String]) -> Result<Arc<Vec<u64>>, String> {
    ids.iter()
        .map(|id| id.parse().map_err(|_| format!("not an OCP task id: {id}")))
        .collect::<Result<_, _>>()
        .map(Arc::new)
}
