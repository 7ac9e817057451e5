//! Decoding a node's task list for a batch: every entry's UPID is read, and
//! only the entries a batch asks about are decoded in full.
//!
//! A batch's list carries every task of the node since the oldest start it
//! asks about, most of them not asked for; decoding each in full (with its
//! unknown fields kept) cost most of a batched update and, at 10,000
//! tracked tasks, more than a megabyte at peak.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use tasktrack_core::http::decode_json;
use tasktrack_core::Result;

use crate::client::{Envelope, TaskListPage};
use crate::model::TaskListEntry;

const WHAT: &str = "node task list";

#[derive(Deserialize)]
struct UpidOnly<'a> {
    #[serde(borrow)]
    upid: Cow<'a, str>,
}

/// The entries of `body` (`{"data": [...], "total": n}`) whose UPID `keep`
/// admits. An entry without a string `upid` cannot be asked about and is
/// passed over; an admitted entry that does not decode, or a body that is
/// not such a list, is the typed decoder's
/// [`Error::Decode`](tasktrack_core::Error::Decode), with its path.
pub(crate) fn entries_matching(
    provider: &str,
    body: &[u8],
    keep: impl Fn(&str) -> bool,
) -> Result<TaskListPage> {
    let Ok(listed) = serde_json::from_slice::<Envelope<Vec<&RawValue>>>(body) else {
        let typed: Envelope<Vec<TaskListEntry>> = decode_json(provider, WHAT, body)?;
        return Ok(TaskListPage {
            entries: typed.data.into_iter().filter(|e| keep(&e.upid)).collect(),
            total: typed.total,
        });
    };
    let mut entries = Vec::new();
    for raw in listed.data {
        let Ok(entry) = serde_json::from_str::<UpidOnly<'_>>(raw.get()) else {
            continue;
        };
        if keep(&entry.upid) {
            entries.push(decode_json(provider, WHAT, raw.get().as_bytes())?);
        }
    }
    Ok(TaskListPage {
        entries,
        total: listed.total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "UPID:pve1:00001234:00A0B0C0:65000000:vzdump:100:root@pam:";
    const B: &str = "UPID:pve1:00001235:00A0B0C1:65000001:qmstart:101:root@pam:";

    #[test]
    fn only_admitted_entries_are_decoded_and_odd_others_are_passed_over() {
        let body = format!(
            r#"{{"total":5,"data":[
                {{"upid":"{A}","status":"OK","endtime":5,"saved":"1"}},
                {{"upid":"{B}","status":"RUNNING"}},
                {{"upid":12,"status":"odd"}},
                {{"no_upid":true}},
                {{"upid":"UPID:pve1:1:2:3:x:y:z:","pid":"not a number"}}
            ]}}"#
        );
        let page = entries_matching("proxmox", body.as_bytes(), |u| u == A).unwrap();
        assert_eq!(page.total, Some(5));
        assert_eq!(page.entries.len(), 1);
        assert_eq!(page.entries[0].upid, A);
        assert_eq!(page.entries[0].extra["saved"], "1");
        let both = entries_matching("proxmox", body.as_bytes(), |u| u == A || u == B).unwrap();
        assert_eq!(both.entries.len(), 2);
    }

    #[test]
    fn an_admitted_entry_that_does_not_decode_is_a_decode_error() {
        let body = r#"{"data":[{"upid":"u","pid":"not a number"}]}"#;
        let err = entries_matching("proxmox", body.as_bytes(), |_| true).unwrap_err();
        assert!(
            matches!(err, tasktrack_core::Error::Decode { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_body_that_is_not_a_list_is_a_decode_error_with_a_path() {
        for body in [
            "<html>502</html>",
            r#"{"data":null}"#,
            r#"{"data":[{"upid":"u"}"#,
        ] {
            let err = entries_matching("proxmox", body.as_bytes(), |_| true).unwrap_err();
            assert!(
                matches!(err, tasktrack_core::Error::Decode { .. }),
                "{body}: {err:?}"
            );
        }
        let escaped = r#"{"data":[{"upid":"UPID:pve1:1:2:3:vzdump:1:root\u0040pam:"}]}"#;
        let page = entries_matching("proxmox", escaped.as_bytes(), |u| {
            u == "UPID:pve1:1:2:3:vzdump:1:root@pam:"
        })
        .unwrap();
        assert_eq!(page.entries.len(), 1, "an escaped UPID still matches");
    }
}
