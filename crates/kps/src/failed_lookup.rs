//! Looking a failed task up in the failed-task list, with one read of the
//! list shared by every lookup it can answer.
//!
//! The list holds every failed task of the project, and each task that
//! fails is looked up in it once, for its error code and message. Read per
//! lookup, a project where hundreds of tasks fail reads hundreds of
//! entries hundreds of times. Entries of failed tasks do not change, so a
//! read is kept: a lookup finds its task in the last read, or waits for a
//! read that began after it was asked (one read at a time; lookups that
//! queue behind it are answered by it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::lock::Mutex;
use futures::StreamExt;
use serde_json::value::RawValue;
use tasktrack_core::Result;

use crate::client::{decode_failed, KpsClient};
use crate::model::FailedTask;

/// Entries kept between reads at most: their JSON, a few hundred bytes
/// each. Past it a lookup reads the list as if nothing were kept.
const KEPT_AT_MOST: usize = 10_000;

#[derive(Debug, Default)]
pub(crate) struct FailedLookup {
    /// Orders lookups and reads: each takes the next number.
    tickets: AtomicU64,
    last: Mutex<LastRead>,
}

#[derive(Debug, Default)]
struct LastRead {
    /// The ticket the last whole read took when it began (0: none yet).
    /// An id it lacks is not on the list for a lookup asked before it.
    whole_since: u64,
    entries: HashMap<String, Box<RawValue>>,
}

impl FailedLookup {
    /// The entry of the failed task `id`, or `None` when a read of the
    /// list that began after this call lacks it.
    pub(crate) async fn find(
        &self,
        client: &KpsClient,
        id: &str,
        page_size: u32,
    ) -> Result<Option<FailedTask>> {
        let asked = self.ticket();
        let mut last = self.last.lock().await;
        if let Some(json) = last.entries.get(id) {
            return decode_failed(json).map(Some);
        }
        if last.whole_since > asked {
            return Ok(None);
        }
        let began = self.ticket();
        let mut pages = std::pin::pin!(client.failed_entry_pages(page_size));
        let mut read = HashMap::new();
        let mut found = None;
        // Page by page, to the end of the page holding `id`: the rest of
        // that page came with it and may answer the next lookups.
        while let Some(page) = pages.next().await {
            for entry in page {
                let entry = entry?;
                if entry.task_id == id {
                    found = Some(decode_failed(&entry.json)?);
                }
                if read.len() < KEPT_AT_MOST {
                    read.insert(entry.task_id, entry.json);
                }
            }
            if found.is_some() {
                break;
            }
        }
        if found.is_none() {
            // The whole list: it replaces what was kept (entries deleted
            // since go).
            *last = LastRead {
                whole_since: began,
                entries: read,
            };
        } else {
            // Stopped after the entry's page: what was read joins what was
            // kept.
            for (k, v) in read {
                if last.entries.len() >= KEPT_AT_MOST {
                    break;
                }
                last.entries.insert(k, v);
            }
        }
        Ok(found)
    }

    /// Drops what is kept of `id`, after this provider deleted it (a
    /// delete made elsewhere shows at the next whole read).
    pub(crate) async fn forget(&self, id: &str) {
        self.last.lock().await.entries.remove(id);
    }

    fn ticket(&self) -> u64 {
        self.tickets.fetch_add(1, Ordering::SeqCst) + 1
    }
}
