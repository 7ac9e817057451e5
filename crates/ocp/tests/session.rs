//! OCP's session sign-in against the OCP simulator with HTTP Basic
//! disabled: the login form with the RSA-encrypted password, the
//! `JSESSIONID` cookie, and a new session when one expires.

use std::time::Duration;

use tasktrack_core::http::RetryPolicy;
use tasktrack_core::{BackendConfig, Error, Secret};
use tasktrack_ocp::{ConfigureHttp, OcpClient, OcpConfig, OCP_EXPRESS_API};
use tasktrack_sim::ocp::{Ocp, OcpSubtaskSpec, OcpTaskSpec};
use tasktrack_sim::{SimBuilder, SimHandle};

const PASSWORD: &str = "ocp-session-password";
const LOGIN: &str = "POST /api/v1/login";
const LOGIN_KEY: &str = "GET /api/v1/loginKey";

async fn start() -> (SimHandle, Ocp, u64) {
    let ocp = Ocp::new("admin", PASSWORD)
        .with_session_login()
        .without_basic_auth();
    let sim = SimBuilder::new(ocp.clone()).start().await.unwrap();
    let id = ocp.create(OcpTaskSpec::new(
        "Backup tenant",
        vec![OcpSubtaskSpec::new(
            "Backup data",
            Duration::from_secs(3600),
            &[],
        )],
    ));
    (sim, ocp, id)
}

fn client(sim: &SimHandle, password: &str, session: bool) -> OcpClient {
    let mut b = OcpClient::builder(sim.base_url(), "admin", &Secret::new(password))
        .with_api_prefix(OCP_EXPRESS_API)
        .with_retry(RetryPolicy::none());
    if session {
        b = b.with_session_login();
    }
    b.build().unwrap()
}

#[tokio::test]
async fn a_session_is_opened_once_and_serves_every_call() {
    let (sim, _ocp, id) = start().await;
    let c = client(&sim, PASSWORD, true);
    for _ in 0..3 {
        assert_eq!(c.task(id).await.unwrap().id, id);
    }
    assert_eq!(sim.requests().count(LOGIN_KEY), 1);
    assert_eq!(sim.requests().count(LOGIN), 1, "one sign-in for every call");
    // With Basic disabled, the Basic client is refused.
    let basic = client(&sim, PASSWORD, false);
    assert!(matches!(basic.task(id).await, Err(Error::Auth { .. })));
}

#[tokio::test]
async fn an_expired_session_is_opened_again_and_the_call_repeated() {
    let (sim, ocp, id) = start().await;
    let c = client(&sim, PASSWORD, true);
    c.task(id).await.unwrap();
    ocp.sessions().expire_all();
    c.task(id).await.unwrap();
    assert_eq!(
        sim.requests().count(LOGIN),
        2,
        "signed in again after the 401"
    );
    assert_eq!(ocp.sessions().len(), 1);
}

#[tokio::test]
async fn a_wrong_password_fails_the_sign_in_without_showing_it() {
    let (sim, _ocp, id) = start().await;
    let wrong = "not-the-ocp-password";
    let err = client(&sim, wrong, true).task(id).await.unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("Bad credentials"), "{text}");
    assert!(!text.contains(wrong), "{text}");
}

#[test]
fn a_config_chooses_the_login() {
    let config = |login: &str| -> OcpConfig {
        serde_json::from_value(serde_json::json!({
            "url": "http://ocp.example.com:8080",
            "user": "admin",
            "password": PASSWORD,
            "login": login,
        }))
        .unwrap()
    };
    assert!(config("session").provider("ocp").is_ok());
    assert!(config("basic").provider("ocp").is_ok());
    let err = config("kerberos")
        .provider("ocp")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("\"basic\" or \"session\""), "{err}");
}
