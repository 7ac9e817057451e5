//! [`KpsConfig`]: a Huawei Cloud KPS backend as a config file writes it.

use std::sync::Arc;

use serde::Deserialize;
use tasktrack_core::{BackendConfig, DynTaskProvider, Result};
use tasktrack_huaweicloud::HuaweiConfig;

use crate::{KpsClient, KpsProvider};

/// `kind = "kps"`: the fields of a [`HuaweiConfig`].
///
/// ```toml
/// [backends.kps]
/// kind = "kps"
/// endpoint = "https://kms.cn-north-4.myhuaweicloud.com"
/// project_id = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
/// ak = "${CLOUD_SDK_AK}"
/// sk = "${CLOUD_SDK_SK}"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct KpsConfig(pub HuaweiConfig);

impl BackendConfig for KpsConfig {
    const KIND: &'static str = "kps";
    const ID_SYNTAX: &'static str = "a KPS task id (letters, digits and dashes)";

    /// `HUAWEICLOUD_KPS_ENDPOINT`, `HUAWEICLOUD_PROJECT_ID`, and
    /// `CLOUD_SDK_AK` with `CLOUD_SDK_SK` or `HUAWEICLOUD_TOKEN`.
    fn from_env() -> Result<Self> {
        HuaweiConfig::from_env("kps", "HUAWEICLOUD_KPS_ENDPOINT").map(KpsConfig)
    }

    fn limit_requests(&mut self, max: u64) {
        self.0.http.limit_requests(max);
    }

    fn share_budget(&mut self, store: Arc<dyn tasktrack_core::TrackStore>) {
        self.0.http.share_budget(store);
    }

    fn provider(&self, name: &str) -> Result<Arc<dyn DynTaskProvider>> {
        let client = KpsClient::new(&self.0.service("kps", name)?)?;
        Ok(Arc::new(KpsProvider::new(client).with_name(name)))
    }
}
