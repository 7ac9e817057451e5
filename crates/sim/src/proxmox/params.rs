//! Parameter verification as `PVE::JSONSchema::validate` does it
//! (pve-common `src/PVE/JSONSchema.pm`: `check_type`, `check_prop`,
//! `check_object`), for the parameters the task endpoints declare in
//! pve-manager's `PVE/API2/Tasks.pm`.
//!
//! Every failure is collected per parameter and answered at once as
//! `400 Parameter verification failed.` with an `errors` object, exactly
//! like pveproxy; unknown parameters are refused
//! (`additionalProperties => 0`).

use std::collections::BTreeMap;

use axum::response::Response;
use serde_json::{json, Map, Value};

use super::reply;

/// What a parameter must look like.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// `type => 'integer'`, with an optional `minimum`.
    Integer { minimum: Option<i64> },
    /// `type => 'boolean'`: only `0` or `1` on the wire (`check_type`).
    Boolean,
    /// `type => 'string'` without a format.
    Text,
    /// `type => 'string', enum => [...]`.
    Enum(&'static [&'static str]),
    /// `format => 'pve-task-status-type-list'`.
    StatusList,
    /// `get_standard_option('pve-vmid')`: an integer matching
    /// `^[1-9][0-9]{2,8}$` (`pve_verify_vmid`).
    Vmid,
    /// `get_standard_option('pve-node')` (`pve_verify_node_name`).
    Node,
}

/// The declared parameters of one endpoint (path parameters included).
pub(crate) type Schema = &'static [(&'static str, Kind)];

/// `GET /nodes/{node}/tasks`.
pub(crate) const NODE_TASKS: Schema = &[
    ("node", Kind::Node),
    ("start", Kind::Integer { minimum: Some(0) }),
    ("limit", Kind::Integer { minimum: Some(0) }),
    ("userfilter", Kind::Text),
    ("typefilter", Kind::Text),
    ("vmid", Kind::Vmid),
    ("errors", Kind::Boolean),
    ("source", Kind::Enum(&["archive", "active", "all"])),
    ("since", Kind::Integer { minimum: None }),
    ("until", Kind::Integer { minimum: None }),
    ("statusfilter", Kind::StatusList),
];

/// `GET /nodes/{node}/tasks/{upid}/log`.
pub(crate) const TASK_LOG: Schema = &[
    ("node", Kind::Node),
    ("upid", Kind::Text),
    ("start", Kind::Integer { minimum: Some(0) }),
    ("limit", Kind::Integer { minimum: Some(0) }),
    ("download", Kind::Boolean),
];

/// Endpoints that take only `node` and `upid`.
pub(crate) const NODE_UPID: Schema = &[("node", Kind::Node), ("upid", Kind::Text)];

/// `is_integer`: `^\s*[+-]?\d+\s*$`.
fn integer(value: &str) -> Option<i64> {
    let t = value.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.trim_start_matches('+').parse().ok()
}

/// `^([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)$`
pub(crate) fn node_name_ok(node: &str) -> bool {
    let b = node.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// `PVE::Tools::split_list`: values separated by `,`, `;` or whitespace.
pub(crate) fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c == ',' || c == ';' || c == '\0' || c.is_whitespace())
        .filter(|v| !v.is_empty())
}

fn check(kind: Kind, value: &str) -> Result<(), String> {
    let type_error = |ty: &str| format!("type check ('{ty}') failed - got '{value}'");
    match kind {
        Kind::Text => Ok(()),
        Kind::Boolean => match value {
            "0" | "1" => Ok(()),
            _ => Err(type_error("boolean")),
        },
        Kind::Integer { minimum } => {
            let n = integer(value).ok_or_else(|| type_error("integer"))?;
            match minimum {
                Some(min) if n < min => Err(format!("value must have a minimum value of {min}")),
                _ => Ok(()),
            }
        }
        Kind::Vmid => {
            integer(value).ok_or_else(|| type_error("integer"))?;
            let digits = value.as_bytes();
            let shaped = (3..=9).contains(&digits.len())
                && digits[0] != b'0'
                && digits.iter().all(u8::is_ascii_digit);
            if !shaped {
                return Err("invalid format - value does not look like a valid VM ID\n".into());
            }
            Ok(())
        }
        Kind::Node => {
            if node_name_ok(value) {
                Ok(())
            } else {
                Err("invalid format - value does not look like a valid node name\n".into())
            }
        }
        Kind::Enum(values) => {
            if values.contains(&value) {
                Ok(())
            } else {
                Err(format!(
                    "value '{value}' does not have a value in the enumeration '{}'",
                    values.join(", ")
                ))
            }
        }
        Kind::StatusList => {
            for status in split_list(value) {
                let known = ["ok", "error", "warning", "unknown"]
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(status));
                if !known {
                    return Err(format!("invalid format - invalid status '{status}'\n"));
                }
            }
            Ok(())
        }
    }
}

/// Checks `query` (plus the path parameters in `path`) against `schema`;
/// the accepted parameters, or pveproxy's 400.
pub(crate) fn validate(
    schema: Schema,
    path: &[(&str, &str)],
    query: &[(String, String)],
) -> Result<BTreeMap<String, String>, Box<Response>> {
    let mut errors = Map::new();
    let mut accepted = BTreeMap::new();
    for (name, value) in path {
        if let Some((_, kind)) = schema.iter().find(|(p, _)| p == name) {
            if let Err(why) = check(*kind, value) {
                errors.insert((*name).to_owned(), Value::String(why));
            }
        }
        accepted.insert((*name).to_owned(), (*value).to_owned());
    }
    for (name, value) in query {
        if let Some(in_path) = path.iter().find(|(p, _)| p == name) {
            // rest_handler: a query parameter repeating a path parameter
            // must agree with it.
            if in_path.1 != value {
                errors.insert(
                    name.clone(),
                    json!("duplicate parameter (already defined in URI) with conflicting values!"),
                );
            }
            continue;
        }
        let Some((_, kind)) = schema.iter().find(|(p, _)| p == name) else {
            errors.insert(
                name.clone(),
                json!("property is not defined in schema and the schema does not allow additional properties"),
            );
            continue;
        };
        match check(*kind, value) {
            Ok(()) => {
                accepted.insert(name.clone(), value.clone());
            }
            Err(why) => {
                errors.insert(name.clone(), Value::String(why));
            }
        }
    }
    if errors.is_empty() {
        Ok(accepted)
    } else {
        Err(Box::new(reply::param_error(errors)))
    }
}

/// An accepted integer parameter (already checked).
pub(crate) fn int(params: &BTreeMap<String, String>, name: &str) -> Option<i64> {
    params.get(name).and_then(|v| integer(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn values_are_checked_like_jsonschema() {
        assert!(validate(
            NODE_TASKS,
            &[("node", "pve1")],
            &q(&[("limit", "0"), ("errors", "1")])
        )
        .is_ok());
        for bad in [
            ("limit", "-1"),
            ("start", "x"),
            ("errors", "true"),
            ("source", "everything"),
            ("statusfilter", "ok,broken"),
            ("vmid", "7"),
            ("frobnicate", "1"),
        ] {
            assert!(
                validate(NODE_TASKS, &[("node", "pve1")], &q(&[bad])).is_err(),
                "{bad:?}"
            );
        }
        assert!(validate(
            NODE_TASKS,
            &[("node", "pve1")],
            &q(&[("statusfilter", "OK;warning error")])
        )
        .is_ok());
        assert!(validate(NODE_TASKS, &[("node", "pve1")], &q(&[("node", "pve2")])).is_err());
        assert_eq!(integer(" +12 "), Some(12));
        assert_eq!(integer("1e3"), None);
    }
}
