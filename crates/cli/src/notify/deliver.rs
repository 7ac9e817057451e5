//! One delivery attempt to one sink: the body every kind is built from, and
//! what counts as acknowledged.

use std::process::Stdio;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tasktrack_core::TaskEvent;
use tokio::io::AsyncWriteExt;

use super::config::{On, Sink, Target};

/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// The notification: what happened in one line, and the event itself.
pub fn body(sink: &Sink, delivery: &str, on: On, event: &TaskEvent) -> Value {
    json!({
        "sink": sink.name,
        "delivery": delivery,
        "event": on.name(),
        "backend": event.provider,
        "id": event.id,
        "summary": summary(on, event),
        "task_event": event,
    })
}

/// `pve task UPID:… (vzdump) failed: boom`, with no control characters.
pub fn summary(on: On, event: &TaskEvent) -> String {
    let kind = event
        .snapshot()
        .and_then(|s| s.kind.as_deref())
        .map(|k| format!(" ({k})"))
        .unwrap_or_default();
    let why = match &event.kind {
        tasktrack_core::TaskEventKind::Changed { snapshot } => snapshot
            .failure
            .as_ref()
            .map(|f| format!(": {}", f.message))
            .unwrap_or_default(),
        tasktrack_core::TaskEventKind::GaveUp { message, .. } => format!(": {message}"),
        tasktrack_core::TaskEventKind::Stalled { unchanged_for_secs } => {
            format!(": unchanged for {unchanged_for_secs} s")
        }
    };
    let line = format!(
        "{} task {}{kind} {}{why}",
        event.provider,
        event.id,
        on.name().replace('_', " ")
    );
    line.chars().filter(|c| !c.is_control()).collect()
}

/// Why an attempt was not acknowledged: one line, never the URL.
pub type Refusal = String;

/// Sends `body` once.
pub async fn attempt(http: &reqwest::Client, sink: &Sink, body: &Value) -> Result<(), Refusal> {
    match &sink.target {
        Target::Webhook { url, secret } => {
            let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
            let mut req = http
                .post(url.expose())
                .header("content-type", "application/json")
                .header(
                    "x-tasktrack-delivery",
                    body["delivery"].as_str().unwrap_or(""),
                )
                .header("x-tasktrack-event", body["event"].as_str().unwrap_or(""));
            if let Some(secret) = secret {
                req = req.header("x-tasktrack-signature", signature(secret.expose(), &bytes)?);
            }
            post(req.body(bytes)).await
        }
        Target::Slack { url } => {
            let text = body["summary"].as_str().unwrap_or_default();
            post(http.post(url.expose()).json(&json!({ "text": text }))).await
        }
        Target::Command { program, args } => run(program, args, body).await,
    }
}

/// `sha256=HEX` of HMAC-SHA256(`secret`, `body`), as GitHub signs webhooks.
pub fn signature(secret: &str, body: &[u8]) -> Result<String, Refusal> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| "the signing secret cannot be used as an HMAC key".to_owned())?;
    mac.update(body);
    Ok(format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

async fn post(req: reqwest::RequestBuilder) -> Result<(), Refusal> {
    match req.send().await {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(format!("answered {}", resp.status())),
        // Without the URL: a webhook URL is a credential.
        Err(e) => Err(e.without_url().to_string()),
    }
}

async fn run(program: &str, args: &[String], body: &Value) -> Result<(), Refusal> {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let input = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    let finished = async {
        if let Some(mut stdin) = child.stdin.take() {
            // A program that does not read its input still decides by its
            // exit status.
            let _ = stdin.write_all(&input).await;
        }
        child.wait().await
    };
    match tokio::time::timeout(ATTEMPT_TIMEOUT, finished).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!("{program} exited with {status}")),
        Ok(Err(e)) => Err(format!("{program}: {e}")),
        Err(_) => Err(format!(
            "{program} ran longer than {} s",
            ATTEMPT_TIMEOUT.as_secs()
        )),
    }
}

/// The client every HTTP sink shares: no redirects (a credential-bearing
/// URL must not be followed elsewhere), bounded time.
pub fn http_client() -> Result<reqwest::Client, Refusal> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("tasktrack/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the notification client: {e}"))
}
