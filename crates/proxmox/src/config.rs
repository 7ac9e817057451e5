//! [`ProxmoxConfig`]: a Proxmox VE backend as a config file writes it.

use std::sync::Arc;
use tasktrack_core::http::ConfigureHttp;

use serde::Deserialize;
use tasktrack_core::config::{env_var, env_var_opt};
use tasktrack_core::http::HttpConfig;
use tasktrack_core::{BackendConfig, DynTaskProvider, Error, Result, Secret};

use crate::{ProxmoxClient, ProxmoxCredentials, ProxmoxProvider};

/// `kind = "proxmox"`:
///
/// ```toml
/// [backends.pve]
/// kind = "proxmox"
/// url = "https://pve1.example.com:8006"
/// token = "${PVE_TOKEN}"            # USER@REALM!TOKENID=SECRET
/// # or: user = "root@pam" and password = "${PVE_PASSWORD}" (ticket login)
/// ca_cert = "/etc/pve/pve-root-ca.pem"
/// ```
///
/// `ca_cert` and `insecure` may also be written in the `http` table, as for
/// every HTTP backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxmoxConfig {
    /// `https://host:8006`.
    pub url: String,
    /// `USER@REALM!TOKENID=SECRET`.
    pub token: Option<Secret>,
    /// `user@realm`, for ticket login.
    pub user: Option<String>,
    /// The password, for ticket login.
    pub password: Option<Secret>,
    /// A root CA to trust (the cluster's `pve-root-ca.pem`).
    pub ca_cert: Option<std::path::PathBuf>,
    /// **Dangerous**: accept any certificate.
    #[serde(default)]
    pub insecure: bool,
    /// Timeouts, limits, redirects, TLS.
    #[serde(default)]
    pub http: HttpConfig,
}

impl ProxmoxConfig {
    fn credentials(&self, name: &str) -> Result<ProxmoxCredentials> {
        match (&self.token, &self.user, &self.password) {
            (Some(token), _, _) => ProxmoxCredentials::parse_token(token.expose()),
            (None, Some(user), Some(password)) => {
                Ok(ProxmoxCredentials::password(user.clone(), password.clone()))
            }
            _ => Err(Error::invalid_input(
                name,
                "set token (USER@REALM!TOKENID=SECRET), or user and password",
            )),
        }
    }
}

impl BackendConfig for ProxmoxConfig {
    const KIND: &'static str = "proxmox";
    const ID_SYNTAX: &'static str = "a UPID, UPID:node:PID:PSTART:STARTTIME:type:id:user@realm:";

    /// `PVE_URL`, and `PVE_TOKEN` or `PVE_USER` with `PVE_PASSWORD`.
    fn from_env() -> Result<Self> {
        Ok(ProxmoxConfig {
            url: env_var("proxmox", "PVE_URL")?,
            token: env_var_opt("PVE_TOKEN").map(Secret::new),
            user: env_var_opt("PVE_USER"),
            password: env_var_opt("PVE_PASSWORD").map(Secret::new),
            ca_cert: env_var_opt("PVE_CA_CERT").map(Into::into),
            insecure: false,
            http: HttpConfig::default(),
        })
    }

    fn limit_requests(&mut self, max: u64) {
        self.http.limit_requests(max);
    }

    fn share_budget(&mut self, store: Arc<dyn tasktrack_core::TrackStore>) {
        self.http.share_budget(store);
    }

    fn provider(&self, name: &str) -> Result<Arc<dyn DynTaskProvider>> {
        let mut http = self.http.clone();
        http.ca_cert = http.ca_cert.or_else(|| self.ca_cert.clone());
        http.insecure |= self.insecure;
        let client = ProxmoxClient::builder(&self.url, self.credentials(name)?)
            .with_options(http.options(name)?)
            .build()?;
        Ok(Arc::new(ProxmoxProvider::new(client).with_name(name)))
    }
}
