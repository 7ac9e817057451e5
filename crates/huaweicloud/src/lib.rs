//! # tasktrack-huaweicloud
//!
//! What the Huawei Cloud adapters (`tasktrack-kps`, `tasktrack-dcs`) share:
//! endpoint resolution per service and region, the project id, the two
//! credentials (an IAM token in `X-Auth-Token`, or AK/SK request signing as
//! the official SDKs do it, [`Signer`]), and the error body
//! (`error_code`, `error_msg`, `error_ext_msg`, `X-Request-Id`). It has no
//! provider of its own.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod iam;
pub mod lenient;
mod signer;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use reqwest::header::HeaderValue;
use tasktrack_core::http::{
    credential_header, request_id_header, Authenticate, ClientOptions, ErrorAnswer,
    ErrorBodyParser, HttpClient, VendorError,
};
use tasktrack_core::{Error, Result, Secret};

pub use config::HuaweiConfig;
pub use iam::IamPassword;
pub use signer::{
    canonical_query, canonical_request, canonical_uri, signature, SignedHeaders, Signer,
    SigningInput, ALGORITHM, DATE_FORMAT, X_SDK_CONTENT_SHA256, X_SDK_DATE,
};
pub use tasktrack_core::http::ConfigureHttp;

/// The public endpoint of `service` in `region`:
/// `https://{host}.{region}.myhuaweicloud.com`, where KPS is served by the
/// `kms` host (as the SDKs' region tables say) and other services by their
/// own name.
pub fn endpoint(service: &str, region: &str) -> String {
    let host = match service {
        "kps" => "kms",
        other => other,
    };
    format!("https://{host}.{region}.myhuaweicloud.com")
}

/// The IAM endpoint of `region`: `https://iam.{region}.myhuaweicloud.com`
/// (the SDKs' region table; `HUAWEICLOUD_SDK_IAM_ENDPOINT` overrides it in
/// [`ServiceConfig::from_env`]).
pub fn iam_endpoint(region: &str) -> String {
    format!("https://iam.{region}.myhuaweicloud.com")
}

/// How to authenticate.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credentials {
    /// An IAM token (`X-Subject-Token` of IAM's token API), sent as
    /// `X-Auth-Token`. It expires after 24 h and is not renewed: prefer
    /// [`Credentials::Password`] for long-running trackers.
    Token(Secret),
    /// An access key / secret key pair: every request is signed.
    AkSk {
        /// Access key id.
        ak: String,
        /// Secret access key.
        sk: Secret,
    },
    /// Temporary AK/SK (from an agency, or an ECS's metadata service) with
    /// its security token: every request is signed and carries
    /// `X-Security-Token`, as the SDKs' `BasicCredentials` send it.
    Temporary {
        /// Temporary access key id.
        ak: String,
        /// Temporary secret access key.
        sk: Secret,
        /// The security token that goes with them.
        security_token: Secret,
    },
    /// An IAM user's password: a token is fetched from IAM (the service
    /// config's `iam_endpoint`) on first use, fetched again an hour before
    /// it expires, and at once when a service answers 401.
    Password(IamPassword),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Token(t) => f.debug_tuple("Token").field(t).finish(),
            Credentials::AkSk { ak, .. } => {
                let shown: String = ak.chars().take(4).collect();
                f.debug_struct("AkSk")
                    .field("ak", &format_args!("{shown}***"))
                    .field("sk", &"***")
                    .finish()
            }
            Credentials::Temporary { ak, .. } => {
                let shown: String = ak.chars().take(4).collect();
                f.debug_struct("Temporary")
                    .field("ak", &format_args!("{shown}***"))
                    .field("sk", &"***")
                    .field("security_token", &"***")
                    .finish()
            }
            Credentials::Password(p) => f.debug_tuple("Password").field(p).finish(),
        }
    }
}

impl Credentials {
    /// AK/SK credentials.
    pub fn aksk(ak: impl Into<String>, sk: impl Into<Secret>) -> Self {
        Credentials::AkSk {
            ak: ak.into(),
            sk: sk.into(),
        }
    }

    /// An IAM token.
    pub fn token(token: impl Into<Secret>) -> Self {
        Credentials::Token(token.into())
    }

    /// Temporary AK/SK with their security token.
    pub fn temporary(
        ak: impl Into<String>,
        sk: impl Into<Secret>,
        security_token: impl Into<Secret>,
    ) -> Self {
        Credentials::Temporary {
            ak: ak.into(),
            sk: sk.into(),
            security_token: security_token.into(),
        }
    }

    /// An IAM user's password, exchanged for tokens.
    pub fn password(
        domain: impl Into<String>,
        user: impl Into<String>,
        password: impl Into<Secret>,
    ) -> Self {
        Credentials::Password(IamPassword {
            domain: domain.into(),
            user: user.into(),
            password: password.into(),
        })
    }

    /// From the environment, like the SDK examples: `CLOUD_SDK_AK` and
    /// `CLOUD_SDK_SK` (with `CLOUD_SDK_SECURITY_TOKEN` for temporary ones),
    /// else `HUAWEICLOUD_TOKEN`.
    pub fn from_env() -> Result<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        match (
            var("CLOUD_SDK_AK"),
            var("CLOUD_SDK_SK"),
            var("HUAWEICLOUD_TOKEN"),
        ) {
            (Some(ak), Some(sk), _) => Ok(match var("CLOUD_SDK_SECURITY_TOKEN") {
                Some(t) => Self::temporary(ak, sk, t),
                None => Self::aksk(ak, sk),
            }),
            (None, None, Some(token)) => Ok(Self::token(token)),
            (Some(_), None, _) | (None, Some(_), _) => Err(Error::invalid_input(
                "huaweicloud",
                "set both CLOUD_SDK_AK and CLOUD_SDK_SK (or HUAWEICLOUD_TOKEN instead)",
            )),
            (None, None, None) => Err(Error::invalid_input(
                "huaweicloud",
                "no credentials: set CLOUD_SDK_AK and CLOUD_SDK_SK, or HUAWEICLOUD_TOKEN",
            )),
        }
    }
}

/// The [`Authenticate`] hook: `X-Auth-Token` (given, or fetched from IAM
/// with a password), or `X-Project-Id` plus an AK/SK signature (and
/// `X-Security-Token` for temporary keys).
#[derive(Debug)]
pub struct HuaweiAuth {
    credentials: Credentials,
    project_id: String,
    tokens: Option<Arc<iam::TokenSource>>,
}

impl HuaweiAuth {
    /// Credentials for `project_id`. [`Credentials::Password`] needs an IAM
    /// client: build through [`ServiceConfig::http_client`].
    pub fn new(credentials: Credentials, project_id: impl Into<String>) -> Self {
        HuaweiAuth {
            credentials,
            project_id: project_id.into(),
            tokens: None,
        }
    }
}

#[async_trait]
impl Authenticate for HuaweiAuth {
    async fn authenticate(&self, request: &mut reqwest::Request) -> Result<()> {
        let signed = |request: &mut reqwest::Request, ak: &str, sk: &Secret| -> Result<()> {
            let project = HeaderValue::from_str(&self.project_id)
                .map_err(|_| Error::invalid_input("huaweicloud", "bad project id"))?;
            request.headers_mut().insert("x-project-id", project);
            Signer::new(ak.to_owned(), sk.clone()).sign_reqwest(request, Utc::now())
        };
        match &self.credentials {
            Credentials::Token(token) => {
                let v = credential_header("huaweicloud", "token", token.expose())?;
                request.headers_mut().insert("x-auth-token", v);
            }
            Credentials::AkSk { ak, sk } => signed(request, ak, sk)?,
            Credentials::Temporary {
                ak,
                sk,
                security_token,
            } => {
                // Set before signing: the signature covers it, as the SDKs'.
                let v =
                    credential_header("huaweicloud", "security token", security_token.expose())?;
                request.headers_mut().insert("x-security-token", v);
                signed(request, ak, sk)?;
            }
            Credentials::Password(_) => {
                let source = self.tokens.as_ref().ok_or_else(|| {
                    Error::invalid_input("huaweicloud", "password sign-in needs an IAM endpoint")
                })?;
                let token = source.token().await?;
                let v = credential_header("huaweicloud", "token", token.expose())?;
                request.headers_mut().insert("x-auth-token", v);
            }
        }
        Ok(())
    }

    /// A password sign-in fetches a new token after a 401 (revoked, or
    /// expired early); the other credentials cannot be renewed here.
    async fn refresh(&self, _client: &HttpClient) -> Result<bool> {
        match &self.tokens {
            Some(source) => {
                source.renew().await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// Huawei Cloud's error body, read the way the SDKs' own
/// `DefaultExceptionHandler` reads it (huaweicloud-sdk-python-v3
/// `huaweicloudsdkcore/exceptions/exception_handler.py`): `error_code` +
/// `error_msg` (DCS adds `error_ext_msg`), else `errorCode` + `errorMsg`,
/// else `code` + `message`, else the same one level down (`{"error":
/// {"code", "message"}}`); the request id from `X-Request-Id`. Codes sent
/// as numbers are kept as their text.
#[derive(Debug, Clone, Copy, Default)]
pub struct HuaweiErrors;

fn text(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// The code and message of an error object, by the SDK's precedence.
fn code_and_message(
    obj: &serde_json::Map<String, serde_json::Value>,
    depth: u8,
) -> Option<(Option<String>, Option<String>)> {
    for (code, message) in [
        ("error_code", "error_msg"),
        ("errorCode", "errorMsg"),
        ("code", "message"),
    ] {
        if obj.contains_key(code) && obj.contains_key(message) {
            let mut msg = text(obj.get(message));
            if let (Some(m), Some(ext)) = (&msg, text(obj.get("error_ext_msg"))) {
                if !ext.is_empty() {
                    msg = Some(format!("{m} ({ext})"));
                }
            }
            return Some((text(obj.get(code)), msg));
        }
    }
    if depth == 0 {
        return None;
    }
    obj.values()
        .filter_map(|v| v.as_object())
        .find_map(|inner| code_and_message(inner, depth - 1))
}

impl ErrorBodyParser for HuaweiErrors {
    fn parse(&self, answer: &ErrorAnswer<'_>) -> VendorError {
        let body: Option<serde_json::Value> = serde_json::from_slice(answer.body).ok();
        let (code, message) = body
            .as_ref()
            .and_then(|b| b.as_object())
            .and_then(|o| code_and_message(o, 2))
            .unwrap_or_default();
        VendorError::new(code, message).with_request_id(request_id_header(answer.headers))
    }
}

/// Settings to reach one Huawei Cloud service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Provider name used in errors and spans (`kps`, `dcs`).
    pub provider: String,
    /// Base URL, e.g. `https://kms.cn-north-4.myhuaweicloud.com`.
    pub endpoint: String,
    /// Project id (in every path).
    pub project_id: String,
    /// Credentials.
    pub credentials: Credentials,
    /// Timeouts, retry of idempotent reads, TLS, proxy, redirects, limits.
    pub options: ClientOptions,
    /// Where [`Credentials::Password`] gets its tokens (see
    /// [`iam_endpoint`]); unused by the other credentials.
    pub iam_endpoint: Option<String>,
    /// The clock token lifetimes are measured on (default: tokio's).
    pub clock: Option<tasktrack_core::SharedClock>,
}

impl ConfigureHttp for ServiceConfig {
    fn client_options_mut(&mut self) -> &mut ClientOptions {
        &mut self.options
    }
}

impl ServiceConfig {
    /// A config with the default [`ClientOptions`] (30 s timeout, 3
    /// retries of reads, no redirects, a 32 MiB body limit).
    pub fn new(
        provider: impl Into<String>,
        endpoint: impl Into<String>,
        project_id: impl Into<String>,
        credentials: Credentials,
    ) -> Self {
        ServiceConfig {
            provider: provider.into(),
            endpoint: endpoint.into(),
            project_id: project_id.into(),
            credentials,
            options: ClientOptions::default(),
            iam_endpoint: None,
            clock: None,
        }
    }

    /// From the environment: `endpoint_var` (e.g. `HUAWEICLOUD_KPS_ENDPOINT`),
    /// `HUAWEICLOUD_PROJECT_ID`, and [`Credentials::from_env`].
    pub fn from_env(provider: &str, endpoint_var: &str) -> Result<Self> {
        let var = |k: &str| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::invalid_input(provider, format!("{k} is not set")))
        };
        let mut config = Self::new(
            provider,
            var(endpoint_var)?,
            var("HUAWEICLOUD_PROJECT_ID")?,
            Credentials::from_env()?,
        );
        config.iam_endpoint = std::env::var("HUAWEICLOUD_SDK_IAM_ENDPOINT")
            .ok()
            .filter(|v| !v.is_empty());
        Ok(config)
    }

    /// Where password sign-ins get their tokens.
    pub fn with_iam_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.iam_endpoint = Some(endpoint.into());
        self
    }

    /// The clock token lifetimes are measured on.
    pub fn with_clock(mut self, clock: tasktrack_core::SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The HTTP client for this service. A password sign-in gets a second
    /// client, to the IAM endpoint only, with the same options; the
    /// password goes nowhere else.
    pub fn http_client(&self) -> Result<HttpClient> {
        if self.project_id.is_empty() || self.project_id.contains('/') {
            return Err(Error::invalid_input(
                &self.provider,
                format!("bad project id {:?}", self.project_id),
            ));
        }
        let mut auth = HuaweiAuth::new(self.credentials.clone(), self.project_id.clone());
        if let Credentials::Password(login) = &self.credentials {
            let iam_url = self.iam_endpoint.as_deref().ok_or_else(|| {
                Error::invalid_input(
                    &self.provider,
                    "password sign-in needs the IAM endpoint: set region (or iam_endpoint)",
                )
            })?;
            let clock = self
                .clock
                .clone()
                .unwrap_or_else(|| Arc::new(tasktrack_core::TokioClock));
            let iam = HttpClient::builder(format!("{}-iam", self.provider), iam_url)
                .with_options(self.options.clone())
                .with_error_parser(Arc::new(HuaweiErrors))
                .with_clock(clock.clone())
                .build()?;
            auth.tokens = Some(iam::TokenSource::new(
                iam,
                login.clone(),
                self.project_id.clone(),
                clock,
            ));
        }
        let mut builder = HttpClient::builder(&self.provider, &self.endpoint)
            .with_options(self.options.clone())
            .with_auth(Arc::new(auth))
            .with_error_parser(Arc::new(HuaweiErrors));
        if let Some(clock) = &self.clock {
            builder = builder.with_clock(clock.clone());
        }
        builder.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_follow_the_sdk_region_tables() {
        assert_eq!(
            endpoint("kps", "cn-north-4"),
            "https://kms.cn-north-4.myhuaweicloud.com"
        );
        assert_eq!(
            endpoint("dcs", "ap-southeast-1"),
            "https://dcs.ap-southeast-1.myhuaweicloud.com"
        );
    }

    #[test]
    fn credentials_never_show_secrets() {
        let c = Credentials::aksk("AKIDEXAMPLE123", "very-secret-key");
        let text = format!("{c:?}");
        assert!(
            !text.contains("very-secret-key") && !text.contains("AKIDEXAMPLE123"),
            "{text}"
        );
        let t = Credentials::token("MIIToken-value");
        assert!(!format!("{t:?}").contains("MIIToken-value"));
    }
}
