//! [`HuaweiConfig`]: what every Huawei Cloud service backend's config holds
//! (endpoint, project, AK/SK or token, HTTP settings); KPS's and DCS's
//! configs are built on it.

use serde::Deserialize;
use tasktrack_core::http::HttpConfig;
use tasktrack_core::{Error, Result, Secret};

use crate::{Credentials, ServiceConfig};

/// A Huawei Cloud service endpoint with its credentials:
///
/// ```toml
/// endpoint = "https://kms.cn-north-4.myhuaweicloud.com"
/// project_id = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
/// ak = "${CLOUD_SDK_AK}"
/// sk = "${CLOUD_SDK_SK}"        # or: token = "${HUAWEICLOUD_TOKEN}"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HuaweiConfig {
    /// The service endpoint.
    pub endpoint: String,
    /// Project id.
    pub project_id: String,
    /// Access key.
    pub ak: Option<Secret>,
    /// Secret key.
    pub sk: Option<Secret>,
    /// An IAM token instead of AK/SK.
    pub token: Option<Secret>,
    /// Timeouts, limits, redirects, TLS.
    #[serde(default)]
    pub http: HttpConfig,
}

impl HuaweiConfig {
    /// From `endpoint_var`, `HUAWEICLOUD_PROJECT_ID` and the credentials'
    /// variables ([`Credentials::from_env`]).
    pub fn from_env(provider: &str, endpoint_var: &str) -> Result<Self> {
        let service = ServiceConfig::from_env(provider, endpoint_var)?;
        let (ak, sk, token) = match service.credentials.clone() {
            Credentials::AkSk { ak, sk } => (Some(Secret::new(ak)), Some(sk), None),
            Credentials::Token(t) => (None, None, Some(t)),
        };
        Ok(HuaweiConfig {
            endpoint: service.endpoint,
            project_id: service.project_id,
            ak,
            sk,
            token,
            http: HttpConfig::default(),
        })
    }

    /// The service settings a client is built from, under `name`.
    pub fn service(&self, name: &str) -> Result<ServiceConfig> {
        let credentials = match (&self.ak, &self.sk, &self.token) {
            (Some(ak), Some(sk), _) => Credentials::aksk(ak.expose(), sk.clone()),
            (None, None, Some(token)) => Credentials::token(token.clone()),
            _ => return Err(Error::invalid_input(
                name,
                "set ak and sk, or token (e.g. ak = \"${CLOUD_SDK_AK}\", sk = \"${CLOUD_SDK_SK}\")",
            )),
        };
        let mut service = ServiceConfig::new(name, &self.endpoint, &self.project_id, credentials);
        service.options = self.http.options(name)?;
        Ok(service)
    }
}
