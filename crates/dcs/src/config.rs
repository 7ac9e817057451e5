//! [`DcsConfig`]: a Huawei Cloud DCS backend as a config file writes it.

use std::sync::Arc;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use tasktrack_core::{BackendConfig, DynTaskProvider, Result};
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
#[derive(Debug, Clone)]
pub struct DcsConfig {
    /// The endpoint, project, credentials and HTTP settings, at the top
    /// level of the backend's table.
    pub service: HuaweiConfig,
    /// Instances whose task lists are read.
    pub instances: Vec<String>,
}

/// `instances` beside a [`HuaweiConfig`]'s fields, unknown fields still
/// refused: `#[serde(flatten)]` would accept any field (serde cannot
/// combine it with `deny_unknown_fields`).
impl<'de> Deserialize<'de> for DcsConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let mut table = serde_json::Map::deserialize(deserializer)?;
        let instances = match table.remove("instances") {
            Some(v) => Vec::<String>::deserialize(v)
                .map_err(|e| D::Error::custom(format_args!("instances: {e}")))?,
            None => Vec::new(),
        };
        let service = HuaweiConfig::deserialize(serde_json::Value::Object(table))
            .map_err(|e| D::Error::custom(format_args!("{e} (or `instances`)")))?;
        Ok(DcsConfig { service, instances })
    }
}

impl BackendConfig for DcsConfig {
    const KIND: &'static str = "dcs";
    const ID_SYNTAX: &'static str =
        "INSTANCE_ID/TASK_ID (or TASK_ID when one instance is configured)";

    /// `HUAWEICLOUD_DCS_ENDPOINT`, `HUAWEICLOUD_PROJECT_ID`, the
    /// credentials' variables, and `DCS_INSTANCES` (comma-separated).
    fn from_env() -> Result<Self> {
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
            service: HuaweiConfig::from_env("dcs", "HUAWEICLOUD_DCS_ENDPOINT")?,
            instances,
        })
    }

    fn limit_requests(&mut self, max: u64) {
        self.service.http.limit_requests(max);
    }

    fn share_budget(&mut self, store: Arc<dyn tasktrack_core::TrackStore>) {
        self.service.http.share_budget(store);
    }

    fn provider(&self, name: &str) -> Result<Arc<dyn DynTaskProvider>> {
        let client = DcsClient::new(&self.service.service("dcs", name)?)?;
        Ok(Arc::new(
            DcsProvider::new(client)
                .with_instances(self.instances.clone())
                .with_name(name),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> std::result::Result<DcsConfig, String> {
        DcsConfig::deserialize(v).map_err(|e| e.to_string())
    }

    #[test]
    fn instances_sit_beside_the_service_fields_and_unknown_fields_are_refused() {
        let c = parse(json!({
            "endpoint": "https://dcs.example",
            "project_id": "p",
            "token": "t",
            "instances": ["i1", "i2"],
            "http": {"timeout": "5s"},
        }))
        .unwrap();
        assert_eq!(c.instances, ["i1", "i2"]);
        assert_eq!(c.service.endpoint.as_deref(), Some("https://dcs.example"));
        assert!(c.service.token.is_some());
        let bare = parse(json!({"endpoint": "https://dcs.example", "project_id": "p"})).unwrap();
        assert!(bare.instances.is_empty());

        let err = parse(json!({"endpoint": "e", "project_id": "p", "instance": ["i1"]}));
        assert!(err.as_ref().unwrap_err().contains("instance"), "{err:?}");
        let err = parse(json!({"endpoint": "e", "project_id": "p", "instances": "i1"}));
        assert!(
            err.as_ref().unwrap_err().starts_with("instances:"),
            "{err:?}"
        );
        // Neither an endpoint nor a region: said when the client is built.
        let neither = parse(json!({"project_id": "p", "token": "t"})).unwrap();
        let err = neither
            .service
            .service("dcs", "dcs")
            .unwrap_err()
            .to_string();
        assert!(err.contains("region") && err.contains("endpoint"), "{err}");
    }
}
