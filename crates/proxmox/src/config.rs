//! [`ProxmoxConfig`] and [`PbsConfig`]: a Proxmox VE or Proxmox Backup
//! Server backend as a config file writes it.

use std::sync::Arc;
use tasktrack_core::http::ConfigureHttp;

use serde::Deserialize;
use tasktrack_core::config::{env_var, env_var_opt};
use tasktrack_core::http::HttpConfig;
use tasktrack_core::{BackendConfig, DynTaskProvider, Error, Result, Secret};

use crate::{ProxmoxClient, ProxmoxCredentials, ProxmoxProduct, ProxmoxProvider};

/// `kind = "proxmox"`:
///
/// ```toml
/// [backends.pve]
/// kind = "proxmox"
/// url = "https://pve1.example.com:8006"
/// token = "${PVE_TOKEN}"            # USER@REALM!TOKENID=SECRET
/// # or: user = "root@pam" and password = "${PVE_PASSWORD}" (ticket login)
/// ca_cert = "/etc/pve/pve-root-ca.pem"
/// # or pin the node's certificate: fingerprint = "AA:BB:…" (32 bytes)
/// ```
///
/// `ca_cert`, `fingerprint` and `insecure` may also be written in the
/// `http` table, as for every HTTP backend.
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
    /// Trust exactly the certificate with this SHA-256 fingerprint
    /// (`AA:BB:…`: PVE's node certificate page, `proxmox-backup-manager
    /// cert info`), self-signed or not.
    pub fingerprint: Option<String>,
    /// Timeouts, limits, redirects, TLS.
    #[serde(default)]
    pub http: HttpConfig,
}

impl ProxmoxConfig {
    fn credentials(&self, product: ProxmoxProduct, name: &str) -> Result<ProxmoxCredentials> {
        let form = match product {
            ProxmoxProduct::BackupServer => "USER@REALM!TOKENID:SECRET",
            _ => "USER@REALM!TOKENID=SECRET",
        };
        match (&self.token, &self.user, &self.password) {
            (Some(token), _, _) if product == ProxmoxProduct::BackupServer => {
                ProxmoxCredentials::parse_pbs_token(token.expose())
            }
            (Some(token), _, _) => ProxmoxCredentials::parse_token(token.expose()),
            (None, Some(user), Some(password)) => {
                Ok(ProxmoxCredentials::password(user.clone(), password.clone()))
            }
            _ => Err(Error::invalid_input(
                name,
                format!("set token ({form}), or user and password"),
            )),
        }
    }
}

impl BackendConfig for ProxmoxConfig {
    const KIND: &'static str = "proxmox";
    const ID_SYNTAX: &'static str = "a UPID, UPID:node:PID:PSTART:STARTTIME:type:id:user@realm:";

    /// `PVE_URL`, and `PVE_TOKEN` or `PVE_USER` with `PVE_PASSWORD`.
    fn from_env() -> Result<Self> {
        ProxmoxConfig::from_env_prefixed("proxmox", "PVE")
    }

    fn limit_requests(&mut self, max: u64) {
        self.http.limit_requests(max);
    }

    fn share_budget(&mut self, store: Arc<dyn tasktrack_core::TrackStore>) {
        self.http.share_budget(store);
    }

    fn provider(&self, name: &str) -> Result<Arc<dyn DynTaskProvider>> {
        self.provider_for(ProxmoxProduct::VirtualEnvironment, name)
    }
}

impl ProxmoxConfig {
    /// `{prefix}_URL`, `_TOKEN`, `_USER`, `_PASSWORD`, `_CA_CERT`, `_FINGERPRINT`.
    fn from_env_prefixed(provider: &str, prefix: &str) -> Result<Self> {
        let opt = |name: &str| env_var_opt(&format!("{prefix}_{name}"));
        Ok(ProxmoxConfig {
            url: env_var(provider, &format!("{prefix}_URL"))?,
            token: opt("TOKEN").map(Secret::new),
            user: opt("USER"),
            password: opt("PASSWORD").map(Secret::new),
            ca_cert: opt("CA_CERT").map(Into::into),
            insecure: false,
            fingerprint: opt("FINGERPRINT"),
            http: HttpConfig::default(),
        })
    }

    fn provider_for(
        &self,
        product: ProxmoxProduct,
        name: &str,
    ) -> Result<Arc<dyn DynTaskProvider>> {
        let mut http = self.http.clone();
        http.ca_cert = http.ca_cert.or_else(|| self.ca_cert.clone());
        http.insecure |= self.insecure;
        http.fingerprint = http.fingerprint.or_else(|| self.fingerprint.clone());
        let client = ProxmoxClient::builder(&self.url, self.credentials(product, name)?)
            .with_product(product)
            .with_options(http.options(name)?)
            .build()?;
        Ok(Arc::new(ProxmoxProvider::new(client).with_name(name)))
    }
}

/// `kind = "pbs"`: a Proxmox Backup Server, with the same fields as
/// [`ProxmoxConfig`] and its own token form:
///
/// ```toml
/// [backends.backup]
/// kind = "pbs"
/// url = "https://pbs.example.com:8007"
/// token = "${PBS_TOKEN}"            # USER@REALM!TOKENID:SECRET
/// # or: user = "backup@pbs" and password = "${PBS_PASSWORD}" (ticket login)
/// fingerprint = "AA:BB:…"          # the server's certificate, pinned (PBS_FINGERPRINT)
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct PbsConfig(pub ProxmoxConfig);

impl BackendConfig for PbsConfig {
    const KIND: &'static str = "pbs";
    const ID_SYNTAX: &'static str =
        "a UPID, UPID:node:PID:PSTART:TASKNO:STARTTIME:type:id:user@realm: (Proxmox Backup Server)";

    /// `PBS_URL`, and `PBS_TOKEN` or `PBS_USER` with `PBS_PASSWORD`.
    fn from_env() -> Result<Self> {
        ProxmoxConfig::from_env_prefixed("pbs", "PBS").map(PbsConfig)
    }

    fn limit_requests(&mut self, max: u64) {
        self.0.limit_requests(max);
    }

    fn share_budget(&mut self, store: Arc<dyn tasktrack_core::TrackStore>) {
        self.0.share_budget(store);
    }

    fn provider(&self, name: &str) -> Result<Arc<dyn DynTaskProvider>> {
        self.0.provider_for(ProxmoxProduct::BackupServer, name)
    }
}
