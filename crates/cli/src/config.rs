//! `tasktrack.toml`: named backends, each a `kind` and that kind's own
//! configuration, as its adapter crate defines it ([`BackendConfig`]).
//!
//! ```toml
//! [backends.pve]
//! kind = "proxmox"
//! url = "https://pve1.example.com:8006"
//! token = "${PVE_TOKEN}"            # USER@REALM!TOKENID=SECRET, from the environment
//! ca_cert = "/etc/pve/pve-root-ca.pem"
//!
//! [backends.pve.http]               # any backend: timeouts, limits, redirects, TLS
//! timeout = "30s"
//! max_body_bytes = 33554432
//! redirects = "never"               # or "same-origin" (reads only)
//! ```
//!
//! Any string value written `${NAME}` is read from the environment variable
//! `NAME`; values are never printed.
//!
//! Adding a kind is one line in [`KINDS`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use tasktrack_core::{BackendConfig, DynTaskProvider, MemoryConfig};
use tasktrack_dcs::DcsConfig;
use tasktrack_kps::KpsConfig;
use tasktrack_ocp::OcpConfig;
use tasktrack_proxmox::{PbsConfig, ProxmoxConfig};

use crate::error::CliError;
use crate::output::terminal_safe;

/// Builds a provider from a backend's name, its table and a request budget.
/// What a front end adds to every backend it builds.
#[derive(Clone, Default)]
pub struct BuildOptions {
    /// Requests each client may send over its life.
    pub request_budget: Option<u64>,
    /// The store request budgets are shared through.
    pub shared_budget: Option<Arc<dyn tasktrack_core::TrackStore>>,
}

impl std::fmt::Debug for BuildOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildOptions")
            .field("request_budget", &self.request_budget)
            .field("shared_budget", &self.shared_budget.is_some())
            .finish()
    }
}

type BuildFn = fn(&str, toml::Table, &BuildOptions) -> Result<Arc<dyn DynTaskProvider>, CliError>;

/// One kind of backend: its name, its id syntax, and how its table becomes
/// a provider.
pub struct Kind {
    /// The `kind` value.
    pub name: &'static str,
    /// What a task id looks like.
    pub id_syntax: &'static str,
    build: BuildFn,
}

const fn kind<C: BackendConfig>() -> Kind {
    Kind {
        name: C::KIND,
        id_syntax: C::ID_SYNTAX,
        build: build_kind::<C>,
    }
}

/// Every kind a config may name.
pub const KINDS: &[Kind] = &[
    kind::<ProxmoxConfig>(),
    kind::<PbsConfig>(),
    kind::<KpsConfig>(),
    kind::<DcsConfig>(),
    kind::<OcpConfig>(),
    kind::<MemoryConfig>(),
];

fn kind_names() -> String {
    KINDS
        .iter()
        .map(|k| format!("{:?}", k.name))
        .collect::<Vec<_>>()
        .join(" | ")
}

fn build_kind<C: BackendConfig>(
    name: &str,
    table: toml::Table,
    options: &BuildOptions,
) -> Result<Arc<dyn DynTaskProvider>, CliError> {
    let mut config: C = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| {
            CliError::usage(
                format!(
                    "backend {name} ({}): {}",
                    C::KIND,
                    terminal_safe(e.message().lines().next().unwrap_or_default())
                ),
                format!(
                    "see the [backends.NAME] example for kind = {:?} in the README",
                    C::KIND
                ),
            )
        })?;
    if let Some(n) = options.request_budget {
        config.limit_requests(n);
    }
    if let Some(store) = &options.shared_budget {
        config.share_budget(store.clone());
    }
    Ok(config.provider(name)?)
}

/// One backend: its kind and the rest of its table, `${NAME}`s expanded
/// only when it is built.
#[derive(Clone)]
pub struct Backend {
    kind: &'static Kind,
    table: toml::Table,
}

impl std::fmt::Debug for Backend {
    // The table holds credentials: only its keys are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("kind", &self.kind.name)
            .field("fields", &self.table.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Backend {
    /// The kind's name.
    pub fn kind(&self) -> &'static str {
        self.kind.name
    }

    /// What a task id looks like for this kind.
    pub fn id_form(&self) -> &'static str {
        self.kind.id_syntax
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    backends: BTreeMap<String, toml::Table>,
    #[serde(default)]
    notify: Vec<toml::Table>,
}

/// A loaded configuration.
#[derive(Debug)]
pub struct Config {
    /// Where it was read from.
    pub path: PathBuf,
    /// Backends by name.
    pub backends: BTreeMap<String, Backend>,
    /// What every backend is built with.
    build: BuildOptions,
    /// `[[notify]]` sections, `${NAME}`s expanded and checked when a
    /// service starts ([`Config::sinks`]).
    notify: Vec<toml::Table>,
}

/// `./tasktrack.toml` when it exists, else the user's config directory's.
fn default_path() -> PathBuf {
    let here = PathBuf::from("tasktrack.toml");
    if here.exists() {
        return here;
    }
    let dir = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    match dir {
        Some(d) if d.join("tasktrack/tasktrack.toml").exists() => {
            d.join("tasktrack/tasktrack.toml")
        }
        _ => here,
    }
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// Expands every `${NAME}` in every string of `value` from the environment
/// (`url = "https://${PVE_HOST}:8006"` works); the error names the variable
/// and the field, never a value.
fn expand(backend: &str, field: &str, value: &mut toml::Value) -> Result<(), CliError> {
    match value {
        toml::Value::String(s) => *s = expand_str(backend, field, s)?,
        toml::Value::Array(items) => {
            for item in items {
                expand(backend, field, item)?;
            }
        }
        toml::Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                expand(backend, &format!("{field}.{key}"), item)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn expand_str(backend: &str, field: &str, text: &str) -> Result<String, CliError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| {
            CliError::usage(
                format!("{backend}: {field} has a `${{` without its `}}`"),
                "write ${NAME} to read the environment variable NAME",
            )
        })?;
        let var = &after[..end];
        let valid = !var.is_empty()
            && !var.starts_with(|c: char| c.is_ascii_digit())
            && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(CliError::usage(
                format!(
                    "{backend}: {field} names the variable {:?}, which is not a variable name",
                    terminal_safe(var)
                ),
                "write ${NAME} with letters, digits and _",
            ));
        }
        let value = std::env::var(var).map_err(|_| {
            CliError::usage(
                format!("{backend}: environment variable {var} (for {field}) is not set"),
                format!("export {var}=... or write the value in the config"),
            )
        })?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl Config {
    /// The config at `path`, else `$TASKTRACK_CONFIG` (handled by clap),
    /// else `./tasktrack.toml`, else the user's
    /// `$XDG_CONFIG_HOME/tasktrack/tasktrack.toml` (`~/.config/…`).
    pub fn load(path: Option<&Path>) -> Result<Config, CliError> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => default_path(),
        };
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
        let invalid = |at: String, why: String| {
            CliError::usage(
                format!("config {} is invalid{at}: {why}", path.display()),
                format!(
                    "each [backends.NAME] needs kind = {} and its fields",
                    kind_names()
                ),
            )
        };
        let file: File = toml::from_str(text).map_err(|e| {
            let first = e.message().lines().next().unwrap_or_default();
            let at = e
                .span()
                .map(|s| {
                    let (line, column) = line_column(text, s.start);
                    format!(" at line {line}, column {column}")
                })
                .unwrap_or_default();
            invalid(at, terminal_safe(first).into_owned())
        })?;
        let mut backends = BTreeMap::new();
        for (name, mut table) in file.backends {
            let kind = match table.remove("kind") {
                Some(toml::Value::String(k)) => {
                    KINDS.iter().find(|known| known.name == k).ok_or_else(|| {
                        invalid(
                            String::new(),
                            format!(
                                "backend {}: unknown kind {:?}",
                                terminal_safe(&name),
                                terminal_safe(&k)
                            ),
                        )
                    })?
                }
                _ => {
                    return Err(invalid(
                        String::new(),
                        format!("backend {} has no kind", terminal_safe(&name)),
                    ))
                }
            };
            backends.insert(name, Backend { kind, table });
        }
        Ok(Config {
            path,
            backends,
            build: BuildOptions::default(),
            notify: file.notify,
        })
    }

    /// The same configuration with each client bounded to `n` requests.
    pub fn with_request_budget(mut self, n: u64) -> Config {
        self.build.request_budget = Some(n);
        self
    }

    /// The same configuration with request budgets shared through `store`
    /// (what `worker` and `serve --store` do).
    pub fn with_shared_budget(mut self, store: Arc<dyn tasktrack_core::TrackStore>) -> Config {
        self.build.shared_budget = Some(store);
        self
    }

    /// The backend named `name`.
    pub fn backend(&self, name: &str) -> Result<&Backend, CliError> {
        self.backends.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.backends.keys().map(String::as_str).collect();
            CliError::usage(
                format!("unknown backend {:?}", terminal_safe(name)),
                if known.is_empty() {
                    format!("{} defines no backend", self.path.display())
                } else {
                    format!("configured backends: {}", known.join(", "))
                },
            )
        })
    }

    /// The `[[notify]]` sinks, their `${NAME}`s expanded, each checked.
    pub fn sinks(&self) -> Result<Vec<crate::notify::Sink>, CliError> {
        let mut sinks: Vec<crate::notify::Sink> = Vec::new();
        for (i, table) in self.notify.iter().enumerate() {
            let section = format!("[[notify]] #{}", i + 1);
            let invalid = |why: String| {
                CliError::usage(
                    format!("config {} is invalid: {section}: {why}", self.path.display()),
                    "a sink needs kind = \"webhook\" | \"slack\" | \"command\", its url or program, and on = [...]",
                )
            };
            let mut table = table.clone();
            for (key, value) in table.iter_mut() {
                expand(&section, key, value)?;
            }
            let sink = crate::notify::Sink::parse(i, table).map_err(invalid)?;
            if sinks.iter().any(|s| s.name == sink.name) {
                return Err(invalid(format!("another sink is named {}", sink.name)));
            }
            sinks.push(sink);
        }
        Ok(sinks)
    }

    /// A provider for the backend named `name`, ready to use.
    pub fn provider(&self, name: &str) -> Result<Arc<dyn DynTaskProvider>, CliError> {
        let backend = self.backend(name)?;
        let mut table = backend.table.clone();
        for (key, value) in table.iter_mut() {
            expand(&format!("backend {name}"), key, value)?;
        }
        (backend.kind.build)(name, table, &self.build)
    }
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
    fn errors_point_at_line_and_column() {
        assert_eq!(line_column("a\nbc\nd", 0), (1, 1));
        assert_eq!(line_column("a\nbc\nd", 3), (2, 2));
        assert_eq!(line_column("a\nbc\nd", 99), (3, 2));
        let e = Config::parse("t.toml".into(), "[backends.x]\nkind = \"ocp\"\nurl = = 3\n")
            .unwrap_err();
        assert!(e.to_string().contains("at line 3, column"), "{e}");
    }

    #[test]
    fn variables_expand_inside_strings() {
        std::env::set_var("TT_CFG_TEST_HOST", "pve.example.com");
        assert_eq!(
            expand_str("b", "url", "https://${TT_CFG_TEST_HOST}:8006/x").unwrap(),
            "https://pve.example.com:8006/x"
        );
        assert_eq!(expand_str("b", "url", "plain").unwrap(), "plain");
        for bad in [
            "${",
            "a${TT_CFG_TEST_HOST",
            "${1X}",
            "${A-B}",
            "${}",
            "${TT_CFG_NOT_SET_XYZ}",
        ] {
            assert!(expand_str("b", "url", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_a_value() {
        let config = Config::parse(
            "t.toml".into(),
            "[backends.o]\nkind = \"ocp\"\nurl = \"http://h\"\nuser = \"u\"\npassword = \"pw-value-123\"\n",
        )
        .unwrap();
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("pw-value-123") && shown.contains("password"),
            "{shown}"
        );
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
