//! [`HuaweiConfig`]: what every Huawei Cloud service backend's config holds
//! (region or endpoint, project, credentials, HTTP settings); KPS's and
//! DCS's configs are built on it.

use serde::Deserialize;
use tasktrack_core::http::HttpConfig;
use tasktrack_core::{Error, Result, Secret};

use crate::{endpoint, iam_endpoint, Credentials, ServiceConfig};

/// A Huawei Cloud service with its credentials:
///
/// ```toml
/// region = "cn-north-4"                 # endpoints follow; or endpoint = "https://…"
/// project_id = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
/// ak = "${CLOUD_SDK_AK}"
/// sk = "${CLOUD_SDK_SK}"
/// # security_token = "${CLOUD_SDK_SECURITY_TOKEN}"  (temporary AK/SK)
/// # or: token = "${HUAWEICLOUD_TOKEN}"              (an IAM token, not renewed)
/// # or: domain = "my-account", user = "ops", password = "${HUAWEICLOUD_PASSWORD}"
/// #     (IAM sign-in: tokens fetched from IAM and renewed before they expire)
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HuaweiConfig {
    /// The region, e.g. `cn-north-4`: the service and IAM endpoints follow
    /// from it unless given.
    pub region: Option<String>,
    /// The service endpoint (default: from `region`).
    pub endpoint: Option<String>,
    /// Project id.
    pub project_id: String,
    /// Access key.
    pub ak: Option<Secret>,
    /// Secret key.
    pub sk: Option<Secret>,
    /// The security token of temporary AK/SK.
    pub security_token: Option<Secret>,
    /// An IAM token instead of AK/SK.
    pub token: Option<Secret>,
    /// The account (domain) name, for an IAM password sign-in.
    pub domain: Option<String>,
    /// The IAM user name, for a password sign-in.
    pub user: Option<String>,
    /// The IAM user's password.
    pub password: Option<Secret>,
    /// The IAM endpoint (default: from `region`).
    pub iam_endpoint: Option<String>,
    /// Timeouts, limits, redirects, TLS.
    #[serde(default)]
    pub http: HttpConfig,
}

impl HuaweiConfig {
    /// From `endpoint_var`, `HUAWEICLOUD_PROJECT_ID` and the credentials'
    /// variables ([`Credentials::from_env`]).
    pub fn from_env(provider: &str, endpoint_var: &str) -> Result<Self> {
        let service = ServiceConfig::from_env(provider, endpoint_var)?;
        let mut config = HuaweiConfig {
            region: None,
            endpoint: Some(service.endpoint),
            project_id: service.project_id,
            ak: None,
            sk: None,
            security_token: None,
            token: None,
            domain: None,
            user: None,
            password: None,
            iam_endpoint: service.iam_endpoint,
            http: HttpConfig::default(),
        };
        match service.credentials {
            Credentials::AkSk { ak, sk } => {
                (config.ak, config.sk) = (Some(Secret::new(ak)), Some(sk))
            }
            Credentials::Temporary {
                ak,
                sk,
                security_token,
            } => {
                (config.ak, config.sk) = (Some(Secret::new(ak)), Some(sk));
                config.security_token = Some(security_token);
            }
            Credentials::Token(t) => config.token = Some(t),
            Credentials::Password(p) => {
                config.domain = Some(p.domain);
                config.user = Some(p.user);
                config.password = Some(p.password);
            }
        }
        Ok(config)
    }

    fn credentials(&self, name: &str) -> Result<Credentials> {
        let login = (&self.domain, &self.user, &self.password);
        match (&self.ak, &self.sk, &self.token, login) {
            (Some(ak), Some(sk), None, (None, None, None)) => Ok(match &self.security_token {
                Some(t) => Credentials::temporary(ak.expose(), sk.clone(), t.clone()),
                None => Credentials::aksk(ak.expose(), sk.clone()),
            }),
            (None, None, Some(token), (None, None, None)) => Ok(Credentials::token(token.clone())),
            (None, None, None, (Some(domain), Some(user), Some(password))) => {
                Ok(Credentials::password(domain, user, password.clone()))
            }
            _ => Err(Error::invalid_input(
                name,
                "set one of: ak and sk (and security_token for temporary keys); token; or domain, user and password",
            )),
        }
    }

    /// The settings a client of `service` (`kps`, `dcs`) is built from,
    /// under the backend name `name`: the endpoint given, else the region's.
    pub fn service(&self, service: &str, name: &str) -> Result<ServiceConfig> {
        let credentials = self.credentials(name)?;
        if self.security_token.is_some() && self.ak.is_none() {
            return Err(Error::invalid_input(
                name,
                "security_token goes with ak and sk",
            ));
        }
        let region = self
            .region
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        if let Some(r) = region {
            let valid = r.len() <= 64 && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !valid {
                return Err(Error::invalid_input(
                    name,
                    format!("region {r:?} is not a region name (e.g. cn-north-4)"),
                ));
            }
        }
        let url = match (&self.endpoint, region) {
            (Some(e), _) => e.clone(),
            (None, Some(r)) => endpoint(service, r),
            (None, None) => {
                return Err(Error::invalid_input(
                    name,
                    "set region (e.g. cn-north-4) or endpoint",
                ))
            }
        };
        let mut config = ServiceConfig::new(name, url, &self.project_id, credentials);
        config.iam_endpoint = self
            .iam_endpoint
            .clone()
            .or_else(|| region.map(iam_endpoint));
        config.options = self.http.options(name)?;
        Ok(config)
    }
}
