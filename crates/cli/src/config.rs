//! `tasktrack.toml`: named backends of the four kinds.
//!
//! ```toml
//! [backends.pve]
//! kind = "proxmox"
//! url = "https://pve1.example.com:8006"
//! token = "${PVE_TOKEN}"            # USER@REALM!TOKENID=SECRET, from the environment
//! ca_cert = "/etc/pve/pve-root-ca.pem"
//! ```
//!
//! Any string value written `${NAME}` is read from the environment variable
//! `NAME`; values are never printed.
//!
//! Every backend also takes an optional `http` table:
//!
//! ```toml
//! [backends.pve.http]
//! timeout = "30s"                   # per request, 1 s to 10 min
//! max_body_bytes = 33554432         # largest answer read, 1 KiB to 1 GiB
//! redirects = "never"               # or "same-origin" (reads only)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use tasktrack_core::http::{ClientOptions, RedirectPolicy};
use tasktrack_core::{DynTaskProvider, Secret};
use tasktrack_dcs::{DcsClient, DcsProvider};
use tasktrack_huaweicloud::{Credentials, ServiceConfig};
use tasktrack_kps::{KpsClient, KpsProvider};
use tasktrack_ocp::{OcpClient, OcpProvider};
use tasktrack_proxmox::{ProxmoxProvider, PveClient, PveCredentials};

use crate::error::CliError;

/// One backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Backend {
    /// Proxmox VE.
    Proxmox {
        /// `https://host:8006`.
        url: String,
        /// `USER@REALM!TOKENID=SECRET`.
        token: Option<String>,
        /// `user@realm` for ticket login.
        user: Option<String>,
        /// Password for ticket login.
        password: Option<String>,
        /// Extra root CA (PEM file).
        ca_cert: Option<PathBuf>,
        /// Accept any certificate (dangerous).
        #[serde(default)]
        insecure: bool,
        /// HTTP limits and redirect policy.
        #[serde(default)]
        http: HttpSettings,
    },
    /// Huawei Cloud KPS.
    Kps {
        /// e.g. `https://kms.cn-north-4.myhuaweicloud.com`.
        endpoint: String,
        /// Project id.
        project_id: String,
        /// Access key.
        ak: Option<String>,
        /// Secret key.
        sk: Option<String>,
        /// IAM token instead of AK/SK.
        token: Option<String>,
        /// HTTP limits and redirect policy.
        #[serde(default)]
        http: HttpSettings,
    },
    /// Huawei Cloud DCS.
    Dcs {
        /// e.g. `https://dcs.cn-north-4.myhuaweicloud.com`.
        endpoint: String,
        /// Project id.
        project_id: String,
        /// Access key.
        ak: Option<String>,
        /// Secret key.
        sk: Option<String>,
        /// IAM token instead of AK/SK.
        token: Option<String>,
        /// Instances whose task lists `list` and `watch` read.
        #[serde(default)]
        instances: Vec<String>,
        /// HTTP limits and redirect policy.
        #[serde(default)]
        http: HttpSettings,
    },
    /// OceanBase OCP.
    Ocp {
        /// e.g. `http://ocp.example.com:8080`.
        url: String,
        /// User.
        user: String,
        /// Password.
        password: String,
        /// HTTP limits and redirect policy.
        #[serde(default)]
        http: HttpSettings,
    },
}

impl Backend {
    /// The kind's name.
    pub fn kind(&self) -> &'static str {
        match self {
            Backend::Proxmox { .. } => "proxmox",
            Backend::Kps { .. } => "kps",
            Backend::Dcs { .. } => "dcs",
            Backend::Ocp { .. } => "ocp",
        }
    }

    /// What a task id looks like for this kind.
    pub fn id_form(&self) -> &'static str {
        match self {
            Backend::Proxmox { .. } => "a UPID, UPID:node:PID:PSTART:STARTTIME:type:id:user@realm:",
            Backend::Kps { .. } => "a KPS task id",
            Backend::Dcs { .. } => "INSTANCE_ID/TASK_ID",
            Backend::Ocp { .. } => "an OCP task instance id (a number)",
        }
    }
}

/// A backend's `http` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Per-request timeout, e.g. `"30s"`.
    timeout: Option<String>,
    /// The largest answer body read.
    max_body_bytes: Option<u64>,
    /// `"never"` (the default) or `"same-origin"`.
    redirects: Option<String>,
}

impl HttpSettings {
    /// The client options these settings give, checked.
    fn options(&self, backend: &str) -> Result<ClientOptions, CliError> {
        let mut options = ClientOptions::default();
        let bad = |field: &str, why: String| {
            CliError::usage(
                format!("backend {backend}: http.{field} {why}"),
                "see the [backends.NAME.http] example in `tasktrack --help` or the README",
            )
        };
        if let Some(t) = &self.timeout {
            let bounds = crate::args::DurationBounds {
                min: std::time::Duration::from_secs(1),
                max: std::time::Duration::from_secs(600),
            };
            options.timeout = crate::args::duration(t, bounds).map_err(|e| bad("timeout", e))?;
        }
        if let Some(n) = self.max_body_bytes {
            if !(1024..=1 << 30).contains(&n) {
                return Err(bad(
                    "max_body_bytes",
                    "must be between 1024 and 1073741824".into(),
                ));
            }
            options.max_body_bytes = usize::try_from(n).unwrap_or(usize::MAX);
        }
        options.redirects = match self.redirects.as_deref() {
            None | Some("never") => RedirectPolicy::None,
            Some("same-origin") => RedirectPolicy::SameOrigin,
            Some(other) => {
                return Err(bad(
                    "redirects",
                    format!(
                        "is {:?}; use \"never\" or \"same-origin\"",
                        crate::output::terminal_safe(other)
                    ),
                ))
            }
        };
        Ok(options)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    backends: BTreeMap<String, Backend>,
}

/// A loaded configuration.
#[derive(Debug)]
pub struct Config {
    /// Where it was read from.
    pub path: PathBuf,
    /// Backends by name.
    pub backends: BTreeMap<String, Backend>,
    /// Requests each backend's client may send in this process, if bounded.
    pub request_budget: Option<u64>,
}

/// Expands `${NAME}` from the environment; the error names the variable,
/// never a value.
fn expand(backend: &str, field: &str, value: &str) -> Result<String, CliError> {
    match value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
        Some(var) => std::env::var(var).map_err(|_| {
            CliError::usage(
                format!("backend {backend}: environment variable {var} (for {field}) is not set"),
                format!("export {var}=... or write the value in the config"),
            )
        }),
        None => Ok(value.to_owned()),
    }
}

fn opt(backend: &str, field: &str, value: &Option<String>) -> Result<Option<String>, CliError> {
    value
        .as_deref()
        .map(|v| expand(backend, field, v))
        .transpose()
}

impl Config {
    /// The config at `path`, else `$TASKTRACK_CONFIG` (handled by clap),
    /// else `./tasktrack.toml`.
    pub fn load(path: Option<&Path>) -> Result<Config, CliError> {
        let path = path
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("tasktrack.toml"));
        let text = std::fs::read_to_string(&path).map_err(|e| {
            CliError::usage(
                format!("cannot read config {}: {e}", path.display()),
                "pass --config FILE or set TASKTRACK_CONFIG; `tasktrack demo --print-config` shows an example",
            )
        })?;
        Config::parse(path, &text)
    }

    /// A configuration from its text (`path` names it in errors).
    pub fn parse(path: PathBuf, text: &str) -> Result<Config, CliError> {
        let file: File = toml::from_str(text).map_err(|e| {
            let first = e.message().lines().next().unwrap_or_default().to_owned();
            let at = e.span().map(|s| format!(" at byte {}", s.start)).unwrap_or_default();
            CliError::usage(
                format!("config {} is invalid{at}: {first}", path.display()),
                "each [backends.NAME] needs kind = \"proxmox\" | \"kps\" | \"dcs\" | \"ocp\" and its fields",
            )
        })?;
        Ok(Config {
            path,
            backends: file.backends,
            request_budget: None,
        })
    }

    /// The same configuration with each client bounded to `n` requests.
    pub fn with_request_budget(mut self, n: u64) -> Config {
        self.request_budget = Some(n);
        self
    }

    /// The backend named `name`.
    pub fn backend(&self, name: &str) -> Result<&Backend, CliError> {
        self.backends.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.backends.keys().map(String::as_str).collect();
            CliError::usage(
                format!("unknown backend {name:?}"),
                if known.is_empty() {
                    format!("{} defines no backend", self.path.display())
                } else {
                    format!("configured backends: {}", known.join(", "))
                },
            )
        })
    }

    /// A provider for the backend named `name`, ready to use.
    pub fn provider(&self, name: &str) -> Result<Arc<dyn DynTaskProvider>, CliError> {
        build(name, self.backend(name)?, self.request_budget)
    }
}

/// The service settings KPS and DCS backends share.
fn huawei_service(
    name: &str,
    endpoint: &str,
    project_id: &str,
    ak: &Option<String>,
    sk: &Option<String>,
    token: &Option<String>,
) -> Result<ServiceConfig, CliError> {
    // Checked in the order the fields are written in the file.
    let endpoint = expand(name, "endpoint", endpoint)?;
    let project_id = expand(name, "project_id", project_id)?;
    let credentials = match (
        opt(name, "ak", ak)?,
        opt(name, "sk", sk)?,
        opt(name, "token", token)?,
    ) {
        (Some(ak), Some(sk), _) => Credentials::aksk(ak, sk),
        (None, None, Some(token)) => Credentials::token(token),
        _ => {
            return Err(CliError::usage(
                format!("backend {name}: set ak and sk, or token"),
                "e.g. ak = \"${CLOUD_SDK_AK}\" and sk = \"${CLOUD_SDK_SK}\"",
            ))
        }
    };
    Ok(ServiceConfig::new(name, endpoint, project_id, credentials))
}

/// Builds the provider of one backend.
pub fn build(
    name: &str,
    backend: &Backend,
    request_budget: Option<u64>,
) -> Result<Arc<dyn DynTaskProvider>, CliError> {
    let options = |http: &HttpSettings| {
        http.options(name).map(|mut o| {
            o.max_requests = request_budget;
            o
        })
    };
    Ok(match backend {
        Backend::Proxmox {
            url,
            token,
            user,
            password,
            ca_cert,
            insecure,
            http,
        } => {
            let credentials = match (
                opt(name, "token", token)?,
                opt(name, "user", user)?,
                opt(name, "password", password)?,
            ) {
                (Some(token), _, _) => PveCredentials::parse_token(&token)?,
                (None, Some(user), Some(password)) => PveCredentials::password(user, password),
                _ => {
                    return Err(CliError::usage(
                        format!("backend {name}: set token, or user and password"),
                        "token = \"${PVE_TOKEN}\" with PVE_TOKEN=USER@REALM!TOKENID=SECRET",
                    ))
                }
            };
            let mut client = PveClient::builder(expand(name, "url", url)?, credentials)
                .options(options(http)?)
                .danger_accept_invalid_certs(*insecure);
            if let Some(path) = ca_cert {
                let pem = std::fs::read(path).map_err(|e| {
                    CliError::usage(
                        format!(
                            "backend {name}: cannot read ca_cert {}: {e}",
                            path.display()
                        ),
                        "point ca_cert at a PEM file",
                    )
                })?;
                client = client.add_root_certificate_pem(&pem);
            }
            Arc::new(ProxmoxProvider::new(client.build()?).with_name(name))
        }
        Backend::Kps {
            endpoint,
            project_id,
            ak,
            sk,
            token,
            http,
        } => {
            let mut config = huawei_service(name, endpoint, project_id, ak, sk, token)?;
            config.options = options(http)?;
            Arc::new(KpsProvider::new(KpsClient::new(&config)?).with_name(name))
        }
        Backend::Dcs {
            endpoint,
            project_id,
            ak,
            sk,
            token,
            instances,
            http,
        } => {
            let mut config = huawei_service(name, endpoint, project_id, ak, sk, token)?;
            config.options = options(http)?;
            Arc::new(
                DcsProvider::new(DcsClient::new(&config)?)
                    .with_instances(instances.clone())
                    .with_name(name),
            )
        }
        Backend::Ocp {
            url,
            user,
            password,
            http,
        } => {
            let password = Secret::new(expand(name, "password", password)?);
            let client = OcpClient::builder(
                expand(name, "url", url)?,
                &expand(name, "user", user)?,
                &password,
            )
            .options(options(http)?)
            .build()?;
            Arc::new(OcpProvider::new(client).with_name(name))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn with_http(http: &str) -> Result<Arc<dyn DynTaskProvider>, CliError> {
        let text = format!(
            "[backends.o]\nkind = \"ocp\"\nurl = \"http://127.0.0.1:1\"\nuser = \"u\"\npassword = \"p\"\n[backends.o.http]\n{http}\n"
        );
        let config = Config::parse("t.toml".into(), &text)?;
        config.provider("o")
    }

    #[test]
    fn http_settings_are_checked() {
        assert!(
            with_http("timeout = \"5s\"\nmax_body_bytes = 4096\nredirects = \"same-origin\"")
                .is_ok()
        );
        for bad in [
            "timeout = \"0s\"",
            "timeout = \"1e300\"",
            "max_body_bytes = 1",
            "max_body_bytes = 9999999999999",
            "redirects = \"always\"",
            "retries = 3",
        ] {
            let e = with_http(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(matches!(e, CliError::Usage { .. }), "{bad}");
        }
    }

    proptest! {
        // cargo-fuzz style: any text is a config or a usage error, never a panic.
        #[test]
        fn any_text_parses_or_is_a_usage_error(text in "\\PC{0,300}") {
            if let Ok(config) = Config::parse("t.toml".into(), &text) {
                for name in config.backends.keys() {
                    let _ = config.provider(name);
                }
            }
        }

        #[test]
        fn any_http_values_are_settings_or_usage_errors(
            timeout in "\\PC{0,20}",
            max in proptest::num::i64::ANY,
            redirects in "\\PC{0,12}",
        ) {
            let http = format!(
                "timeout = {}\nmax_body_bytes = {max}\nredirects = {}",
                toml::Value::String(timeout),
                toml::Value::String(redirects)
            );
            if let Err(e) = with_http(&http) {
                prop_assert!(matches!(e, CliError::Usage { .. }), "not a usage error");
            }
        }
    }
}
