//! [`OcpConfig`]: an OceanBase OCP backend as a config file writes it.

use std::sync::Arc;
use tasktrack_core::http::ConfigureHttp;

use serde::Deserialize;
use tasktrack_core::config::env_var;
use tasktrack_core::http::HttpConfig;
use tasktrack_core::{BackendConfig, DynTaskProvider, Result, Secret};

use crate::{OcpClient, OcpProvider};

/// `kind = "ocp"`:
///
/// ```toml
/// [backends.ocp]
/// kind = "ocp"
/// url = "http://ocp.example.com:8080"
/// user = "admin"
/// password = "${OCP_PASSWORD}"
/// login = "session"          # the login form and its cookie (default "basic")
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OcpConfig {
    /// The OCP server, e.g. `http://ocp.example.com:8080`.
    pub url: String,
    /// User (HTTP Basic).
    pub user: String,
    /// Password.
    pub password: Secret,
    /// `"basic"` (HTTP Basic on every call, the default) or `"session"`
    /// (the login form and its session cookie, where Basic is disabled).
    pub login: Option<String>,
    /// Timeouts, limits, redirects, TLS.
    #[serde(default)]
    pub http: HttpConfig,
}

impl BackendConfig for OcpConfig {
    const KIND: &'static str = "ocp";
    const ID_SYNTAX: &'static str = "an OCP task instance id (a number)";

    /// `OCP_URL`, `OCP_USER`, `OCP_PASSWORD`.
    fn from_env() -> Result<Self> {
        Ok(OcpConfig {
            url: env_var("ocp", "OCP_URL")?,
            user: env_var("ocp", "OCP_USER")?,
            password: Secret::new(env_var("ocp", "OCP_PASSWORD")?),
            login: tasktrack_core::config::env_var_opt("OCP_LOGIN"),
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
        let mut builder = OcpClient::builder(&self.url, &self.user, &self.password)
            .with_options(self.http.options(name)?);
        match self.login.as_deref().map(str::trim) {
            None | Some("basic") => {}
            Some("session") => builder = builder.with_session_login(),
            Some(other) => {
                return Err(tasktrack_core::Error::invalid_input(
                    name,
                    format!("login is {other:?}; use \"basic\" or \"session\""),
                ))
            }
        }
        let client = builder.build()?;
        Ok(Arc::new(OcpProvider::new(client).with_name(name)))
    }
}
