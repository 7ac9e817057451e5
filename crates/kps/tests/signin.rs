//! Huawei Cloud sign-in as operators use it, against the KPS simulator and
//! the IAM route served beside it: an IAM password exchanged for tokens
//! that are renewed before they expire and after a 401, and temporary
//! AK/SK with `X-Security-Token`.

use std::time::Duration;

use tasktrack_core::http::RetryPolicy;
use tasktrack_core::{Error, ManualClock, TaskProvider};
use tasktrack_huaweicloud::{Credentials, HuaweiConfig, ServiceConfig};
use tasktrack_kps::{KpsClient, KpsProvider, KpsTaskId};
use tasktrack_sim::huawei::HuaweiAuth;
use tasktrack_sim::kps::Kps;
use tasktrack_sim::{SimBuilder, SimClock, SimHandle, TaskSpec};

const PROJECT: &str = "a4d31cb6-3d72-4fdc-8ec9-6e3a41e47f71";
const DOMAIN: &str = "sim-account";
const USER: &str = "ops";
const PASSWORD: &str = "iam-password-value";
const TEMP_AK: &str = "SIMTEMPORARYAK01";
const TEMP_SK: &str = "sim-temporary-secret";
const SECURITY_TOKEN: &str = "sim-security-token-value";
const TOKENS: &str = "POST /v3/auth/tokens";
const TASK: &str = "GET /v3/{project_id}/tasks/{task_id}";

async fn start(clock: &ManualClock) -> (SimHandle, HuaweiAuth) {
    let auth = HuaweiAuth::new(PROJECT)
        .with_iam_user(DOMAIN, USER, PASSWORD)
        .with_temporary_aksk(TEMP_AK, TEMP_SK, SECURITY_TOKEN);
    let sim = SimBuilder::new(Kps::new(auth.clone()))
        .with_clock(SimClock::manual(clock.clone()))
        .start()
        .await
        .unwrap();
    (sim, auth)
}

/// A backend as a config file writes it: a region (whose endpoints are
/// pointed at the simulator here) and an IAM user's password.
fn password_backend(sim: &SimHandle, clock: &ManualClock, password: &str) -> ServiceConfig {
    let config: HuaweiConfig = serde_json::from_value(serde_json::json!({
        "region": "cn-north-4",
        "endpoint": sim.base_url(),
        "iam_endpoint": sim.base_url(),
        "project_id": PROJECT,
        "domain": DOMAIN,
        "user": USER,
        "password": password,
    }))
    .unwrap();
    let mut service = config
        .service("kps", "kps")
        .unwrap()
        .with_clock(std::sync::Arc::new(clock.clone()));
    service.options.retry = RetryPolicy::none();
    service
}

fn task(sim: &SimHandle) -> KpsTaskId {
    sim.create_task(TaskSpec::new("reset", Duration::from_secs(1_000_000)))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_password_backend_signs_in_once_and_renews_its_token_before_it_expires() {
    let clock = ManualClock::new();
    let (sim, auth) = start(&clock).await;
    let id = task(&sim);
    let kps = KpsProvider::new(KpsClient::new(&password_backend(&sim, &clock, PASSWORD)).unwrap());
    for _ in 0..3 {
        kps.status(&id).await.unwrap();
    }
    assert_eq!(
        sim.requests().count(TOKENS),
        1,
        "one sign-in serves every request"
    );
    assert_eq!(auth.iam.issued(), 1);

    // 23 h 5 min later the token has under an hour left: the next request
    // signs in again first, so the service never sees the old one refused.
    clock.advance(Duration::from_secs(23 * 3600 + 300));
    sim.requests().reset();
    kps.status(&id).await.unwrap();
    assert_eq!(sim.requests().count(TOKENS), 1, "renewed before expiry");
    assert_eq!(
        sim.requests().count(TASK),
        1,
        "the status request went once, not refused first"
    );
}

#[tokio::test]
async fn a_revoked_token_is_replaced_after_the_401_and_the_request_sent_again() {
    let clock = ManualClock::new();
    let (sim, auth) = start(&clock).await;
    let id = task(&sim);
    let kps = KpsProvider::new(KpsClient::new(&password_backend(&sim, &clock, PASSWORD)).unwrap());
    kps.status(&id).await.unwrap();
    auth.iam.revoke_all();
    sim.requests().reset();
    kps.status(&id).await.unwrap();
    assert_eq!(
        sim.requests().count(TOKENS),
        1,
        "signed in again after the 401"
    );
    assert_eq!(sim.requests().count(TASK), 2, "refused once, then answered");
}

#[tokio::test]
async fn a_wrong_password_is_an_auth_error_that_never_shows_it() {
    let clock = ManualClock::new();
    let (sim, _auth) = start(&clock).await;
    let id = task(&sim);
    let wrong = "not-the-iam-password";
    let kps = KpsProvider::new(KpsClient::new(&password_backend(&sim, &clock, wrong)).unwrap());
    let err = kps.status(&id).await.unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("username or password is wrong"), "{text}");
    assert!(!text.contains(wrong), "{text}");
    assert_eq!(
        sim.requests().count(TASK),
        0,
        "no service request without a token"
    );
}

#[tokio::test]
async fn temporary_keys_are_signed_with_their_security_token() {
    let clock = ManualClock::new();
    let (sim, _auth) = start(&clock).await;
    let id = task(&sim);
    let config = |creds| {
        let mut c = ServiceConfig::new("kps", sim.base_url(), PROJECT, creds);
        c.options.retry = RetryPolicy::none();
        KpsProvider::new(KpsClient::new(&c).unwrap())
    };
    let temporary = config(Credentials::temporary(TEMP_AK, TEMP_SK, SECURITY_TOKEN));
    temporary.status(&id).await.unwrap();
    // The same keys without the token, or with another, are refused.
    let bare = config(Credentials::aksk(TEMP_AK, TEMP_SK));
    assert!(matches!(bare.status(&id).await, Err(Error::Auth { .. })));
    let other = config(Credentials::temporary(TEMP_AK, TEMP_SK, "another-token"));
    let err = other.status(&id).await.unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    assert!(!format!("{err:?}").contains("another-token"));
}

#[test]
fn a_region_gives_the_service_and_iam_endpoints() {
    let config: HuaweiConfig = serde_json::from_value(serde_json::json!({
        "region": "cn-north-4",
        "project_id": PROJECT,
        "domain": DOMAIN,
        "user": USER,
        "password": PASSWORD,
    }))
    .unwrap();
    let service = config.service("kps", "kps").unwrap();
    assert_eq!(service.endpoint, "https://kms.cn-north-4.myhuaweicloud.com");
    assert_eq!(
        service.iam_endpoint.as_deref(),
        Some("https://iam.cn-north-4.myhuaweicloud.com")
    );
    assert!(!format!("{service:?}").contains(PASSWORD));
    for bad in [
        serde_json::json!({"project_id": PROJECT, "domain": DOMAIN, "user": USER, "password": PASSWORD}),
        serde_json::json!({"region": "cn-north-4/../x", "project_id": PROJECT, "token": "t"}),
        serde_json::json!({"region": "cn-north-4", "project_id": PROJECT, "token": "t", "password": PASSWORD}),
    ] {
        let config: HuaweiConfig = serde_json::from_value(bad.clone()).unwrap();
        let err = config.service("kps", "kps").unwrap_err().to_string();
        assert!(!err.contains(PASSWORD), "{err}");
        assert!(
            err.starts_with("kps") || err.contains("kps"),
            "{bad}: {err}"
        );
    }
}
