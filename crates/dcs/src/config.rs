//! [`DcsConfig`]: a Huawei Cloud DCS backend as a config file writes it.

use std::sync::Arc;

use serde::Deserialize;
use tasktrack_core::http::HttpConfig;
use tasktrack_core::{BackendConfig, DynTaskProvider, Result, Secret};
use tasktrack_huaweicloud::HuaweiConfig;

use crate::{DcsClient, DcsProvider};

/// `kind = "dcs"`: a [`HuaweiConfig`]'s fields and the instances whose
/// task lists `list` and `watch` read.
///
/// ```toml
/// [backends.dcs]
/// kind = "dcs"
/// endpoint = "https://dcs.cn-north-4.myhuaweicloud.com"
/// project_id = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
/// ak = "${CLOUD_SDK_AK}"
/// sk = "${CLOUD_SDK_SK}"
/// instances = ["5560df16-cebf-4473-95c4-d1b573c16e79"]
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DcsConfig {
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
    /// Instances whose task lists are read.
    #[serde(default)]
    pub instances: Vec<String>,
    /// Timeouts, limits, redirects, TLS.
    #[serde(default)]
    pub http: HttpConfig,
}

impl DcsConfig {
    fn service(&self) -> HuaweiConfig {
        HuaweiConfig {
            endpoint: self.endpoint.clone(),
            project_id: self.project_id.clone(),
            ak: self.ak.clone(),
            sk: self.sk.clone(),
            token: self.token.clone(),
            http: self.http.clone(),
        }
    }
}

impl BackendConfig for DcsConfig {
    const KIND: &'static str = "dcs";
    const ID_SYNTAX: &'static str =
        "INSTANCE_ID/TASK_ID (or TASK_ID when one instance is configured)";

    /// `HUAWEICLOUD_DCS_ENDPOINT`, `HUAWEICLOUD_PROJECT_ID`, the
    /// credentials' variables, and `DCS_INSTANCES` (comma-separated).
    fn from_env() -> Result<Self> {
        let h = HuaweiConfig::from_env("dcs", "HUAWEICLOUD_DCS_ENDPOINT")?;
        let instances = std::env::var("DCS_INSTANCES")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(DcsConfig {
            endpoint: h.endpoint,
            project_id: h.project_id,
            ak: h.ak,
            sk: h.sk,
            token: h.token,
            instances,
            http: h.http,
        })
    }

    fn limit_requests(&mut self, max: u64) {
        self.http.limit_requests(max);
    }

    fn share_budget(&mut self, store: Arc<dyn tasktrack_core::TrackStore>) {
        self.http.share_budget(store);
    }

    fn provider(&self, name: &str) -> Result<Arc<dyn DynTaskProvider>> {
        let client = DcsClient::new(&self.service().service(name)?)?;
        Ok(Arc::new(
            DcsProvider::new(client)
                .with_instances(self.instances.clone())
                .with_name(name),
        ))
    }
}
