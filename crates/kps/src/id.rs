//! [`KpsTaskId`]: a KPS task id, checked before it reaches a path.

use std::fmt;
use std::str::FromStr;

use tasktrack_core::Error;

/// A KPS task id: a UUID-like token of letters, digits, `-` and `_`
/// (at most 128 characters), as the `task_id` KPS hands out. Anything else
/// (a `..`, a `/`, a space) is refused before any request names it.
///
/// ```
/// use tasktrack_kps::KpsTaskId;
/// let id: KpsTaskId = "aee8d2fe-5484-4753-0000-000000000001".parse()?;
/// assert_eq!(id.as_str(), "aee8d2fe-5484-4753-0000-000000000001");
/// assert!("..".parse::<KpsTaskId>().is_err());
/// # Ok::<(), tasktrack_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KpsTaskId(String);

impl KpsTaskId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KpsTaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for KpsTaskId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let ok = !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(KpsTaskId(s.to_owned()))
        } else {
            Err(Error::invalid_input(
                "kps",
                format!(
                    "malformed KPS task id {s:?}: expected letters, digits, '-' and '_' (a task_id such as aee8d2fe-5484-4753-0000-000000000001)"
                ),
            ))
        }
    }
}

impl AsRef<str> for KpsTaskId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
