//! [`Upid`]: the Proxmox task handle.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tasktrack_core::Error;

/// A Proxmox unique process id: the handle every Proxmox VE (and Proxmox
/// Backup Server) write answers with.
///
/// Two forms are accepted:
///
/// * PVE: `UPID:node:PID:PSTART:STARTTIME:type:id:user@realm:`
/// * PBS: `UPID:node:PID:PSTART:COUNTER:STARTTIME:type:id:user@realm:`
///
/// optionally followed, as proxmoxer allows, by a comment after the last
/// colon. The form is told by where the `user@realm` field stands: it is
/// always the second-to-last field, so an `id` with colons in it still
/// parses. Hex is case-insensitive on input.
///
/// `Display` gives back exactly the string that was parsed; a `Upid` built
/// with [`Upid::new`] formats as Proxmox does (upper-case hex, 8 digits
/// minimum). Equality and hashing ignore hex case.
///
/// ```
/// use tasktrack_proxmox::Upid;
/// let upid: Upid = "UPID:pve1:000AE992:00A21BA7:618C1D55:vzdump:100:root@pam:".parse()?;
/// assert_eq!(upid.node(), "pve1");
/// assert_eq!(upid.pid(), 715154);
/// assert_eq!(upid.task_type(), "vzdump");
/// assert_eq!(upid.id(), "100");
/// assert_eq!(upid.user(), "root@pam");
/// assert_eq!(upid.to_string(), "UPID:pve1:000AE992:00A21BA7:618C1D55:vzdump:100:root@pam:");
/// # Ok::<(), tasktrack_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Upid {
    raw: String,
    node: String,
    pid: u32,
    pstart: u64,
    task_counter: Option<u64>,
    starttime: i64,
    task_type: String,
    id: String,
    user: String,
    comment: String,
}

fn invalid(input: &str, why: impl fmt::Display) -> Error {
    Error::invalid_input(
        "proxmox",
        format!(
            "malformed UPID {input:?}: {why}; expected UPID:node:PID:PSTART:STARTTIME:type:id:user@realm:"
        ),
    )
}

fn hex<T: TryFrom<u64>>(input: &str, field: &str, text: &str) -> Result<T, Error> {
    if text.is_empty() {
        return Err(invalid(input, format!("{field} is empty")));
    }
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(
            input,
            format!("{field} {text:?} is not hexadecimal"),
        ));
    }
    let value = u64::from_str_radix(text, 16)
        .map_err(|_| invalid(input, format!("{field} {text:?} is too large")))?;
    T::try_from(value).map_err(|_| invalid(input, format!("{field} {text:?} is too large")))
}

/// A host name: a letter or digit, then letters, digits, `-` and `.`
/// (PVE's own `pve_verify_node_name` is stricter, without dots; a PBS node
/// may be a dotted host name). Never `.` or `..`, which would change the
/// request path.
fn node_name_ok(node: &str) -> bool {
    let b = node.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.')
}

fn is_hex8(text: &str) -> bool {
    text.len() == 8 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

impl FromStr for Upid {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        if s.chars().any(char::is_whitespace) {
            return Err(invalid(s, "it contains whitespace"));
        }
        // PVE's pattern allows no '/' in any field (`[^:\s/]`), and a node
        // name becomes a path segment of its own.
        if s.chars().any(|c| c == '/' || c.is_control()) {
            return Err(invalid(s, "it contains '/' or a control character"));
        }
        let rest = s
            .strip_prefix("UPID:")
            .ok_or_else(|| invalid(s, "it does not start with \"UPID:\""))?;
        let fields: Vec<&str> = rest.split(':').collect();
        // node, pid, pstart, starttime, type, id, user, comment: 8 at least.
        if fields.len() < 8 {
            if fields.last().is_some_and(|f| f.contains('@')) {
                return Err(invalid(s, "the trailing colon after user@realm is missing"));
            }
            return Err(invalid(
                s,
                format!("it has {} fields, at least 8 are needed", fields.len()),
            ));
        }
        let n = fields.len();
        let (user, comment) = (fields[n - 2], fields[n - 1]);
        if !user.contains('@') {
            if comment.contains('@') {
                return Err(invalid(s, "the trailing colon after user@realm is missing"));
            }
            return Err(invalid(
                s,
                format!("the user field {user:?} is not user@realm"),
            ));
        }
        let (name, realm) = user.split_once('@').unwrap_or_default();
        if name.is_empty() || realm.is_empty() || realm.starts_with('!') {
            return Err(invalid(
                s,
                format!("the user field {user:?} is not user@realm"),
            ));
        }
        let node = fields[0];
        if node.is_empty() {
            return Err(invalid(s, "node is empty"));
        }
        if !node_name_ok(node) {
            return Err(invalid(
                s,
                format!("node {node:?} is not a host name (letters, digits, '-' and '.')"),
            ));
        }
        let pid: u32 = hex(s, "PID", fields[1])?;
        let pstart: u64 = hex(s, "PSTART", fields[2])?;
        // With the user at position 6 (0-based, after the node) the PVE form
        // is certain. Further right, the extra fields are either the PBS
        // counter or colons inside the id: the PBS form has two 8-digit hex
        // fields where PVE has starttime and type.
        let user_at = n - 2;
        let pbs = user_at >= 7 && is_hex8(fields[3]) && is_hex8(fields[4]);
        let (task_counter, starttime_at) = if pbs {
            (Some(hex::<u64>(s, "task counter", fields[3])?), 4)
        } else {
            (None, 3)
        };
        let starttime: u32 = hex(s, "STARTTIME", fields[starttime_at])?;
        let task_type = fields[starttime_at + 1];
        if task_type.is_empty() {
            return Err(invalid(s, "type is empty"));
        }
        let id = fields[starttime_at + 2..user_at].join(":");
        Ok(Upid {
            raw: s.to_owned(),
            node: node.to_owned(),
            pid,
            pstart,
            task_counter,
            starttime: i64::from(starttime),
            task_type: task_type.to_owned(),
            id,
            user: user.to_owned(),
            comment: comment.to_owned(),
        })
    }
}

impl Upid {
    /// A PVE-form UPID from its parts, formatted as Proxmox does.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        node: &str,
        pid: u32,
        pstart: u64,
        starttime: i64,
        task_type: &str,
        id: &str,
        user: &str,
    ) -> Result<Upid, Error> {
        Self::from_parts(node, pid, pstart, None, starttime, task_type, id, user)
    }

    /// A PBS-form UPID (with a task counter) from its parts.
    #[allow(clippy::too_many_arguments)]
    pub fn new_pbs(
        node: &str,
        pid: u32,
        pstart: u64,
        task_counter: u64,
        starttime: i64,
        task_type: &str,
        id: &str,
        user: &str,
    ) -> Result<Upid, Error> {
        Self::from_parts(
            node,
            pid,
            pstart,
            Some(task_counter),
            starttime,
            task_type,
            id,
            user,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn from_parts(
        node: &str,
        pid: u32,
        pstart: u64,
        task_counter: Option<u64>,
        starttime: i64,
        task_type: &str,
        id: &str,
        user: &str,
    ) -> Result<Upid, Error> {
        let counter = task_counter
            .map(|c| format!("{c:08X}:"))
            .unwrap_or_default();
        let raw = format!(
            "UPID:{node}:{pid:08X}:{pstart:08X}:{counter}{starttime:08X}:{task_type}:{id}:{user}:"
        );
        // Parsing the result validates every part with one set of rules.
        let parsed: Upid = raw.parse()?;
        if parsed.starttime != starttime || parsed.node != node || parsed.id != id {
            return Err(invalid(&raw, "a part contains a colon or is out of range"));
        }
        Ok(parsed)
    }

    /// The node that runs the task.
    pub fn node(&self) -> &str {
        &self.node
    }
    /// The worker's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }
    /// The worker's process start (clock ticks since boot).
    pub fn pstart(&self) -> u64 {
        self.pstart
    }
    /// The Proxmox Backup Server task counter, for the PBS form.
    pub fn task_counter(&self) -> Option<u64> {
        self.task_counter
    }
    /// Start time, epoch seconds.
    pub fn starttime(&self) -> i64 {
        self.starttime
    }
    /// Start time.
    pub fn started_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.starttime, 0).unwrap_or_default()
    }
    /// The task type (`vzdump`, `qmigrate`, …).
    pub fn task_type(&self) -> &str {
        &self.task_type
    }
    /// The object the task works on (often a VM id); empty when none.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The id as a VM id, when it is numeric.
    pub fn vmid(&self) -> Option<u32> {
        self.id.parse().ok()
    }
    /// `user@realm`, with `!tokenid` when an API token started the task.
    pub fn user(&self) -> &str {
        &self.user
    }
    /// proxmoxer's extra field after the user; empty when absent.
    pub fn comment(&self) -> &str {
        &self.comment
    }
    /// The string as given.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    fn key(&self) -> (&str, u32, u64, Option<u64>, i64, &str, &str, &str, &str) {
        (
            &self.node,
            self.pid,
            self.pstart,
            self.task_counter,
            self.starttime,
            &self.task_type,
            &self.id,
            &self.user,
            &self.comment,
        )
    }
}

impl PartialEq for Upid {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Upid {}

impl Hash for Upid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl fmt::Display for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl Serialize for Upid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for Upid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
