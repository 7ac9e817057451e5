//! The store side of the scheduler: write-through of tracked tasks, shard
//! leases shared with other replicas, and the event log.

use chrono::{DateTime, Utc};

use super::{Scheduler, Slot};
use crate::event::TaskEvent;
use crate::store::{shard_of, TrackedEntry};

impl Scheduler {
    /// A `track` command: write the entry through to the store and track it
    /// here when this replica holds its shard (otherwise its holder will).
    pub(super) async fn track(&mut self, provider: usize, id: String, since: DateTime<Utc>) {
        let Some(st) = &mut self.store else {
            self.insert(provider, id, since, None);
            return;
        };
        let name = self.providers[provider].name.to_string();
        let shard = shard_of(&name, &id, st.store.shards());
        let entry = TrackedEntry {
            provider: name,
            id: id.clone(),
            tracked_at: since,
            last: None,
            next_due: Utc::now(),
        };
        if let Err(e) = st.store.put(&entry).await {
            super::metrics::store_error("put");
            tracing::warn!(error = %e, task = %id, "could not save a tracked task to the store; tracking it here only");
            self.insert(provider, id, since, None);
            return;
        }
        if st.held.contains_key(&shard) {
            self.insert(provider, id, since, None);
        }
    }

    /// Keeps this replica's share of shards: heartbeat, renew, shed extras,
    /// claim free ones, reload shards that changed, resend unsent events.
    pub(super) async fn lease_tick(&mut self) {
        let Some(st) = &mut self.store else { return };
        let (store, owner, ttl) = (st.store.clone(), st.owner.clone(), st.ttl);
        let unsent = std::mem::take(&mut st.unsent);
        for (i, event) in unsent.iter().enumerate() {
            if let Err(e) = store.append(event).await {
                super::metrics::store_error("append");
                tracing::debug!(error = %e, "store still unavailable for events");
                st.unsent.extend(unsent[i..].iter().cloned());
                break;
            }
        }
        let live = match store.heartbeat(&owner, ttl).await {
            Ok(n) => n.max(1),
            Err(e) => {
                super::metrics::store_error("heartbeat");
                tracing::warn!(error = %e, "store unavailable; tracking the tasks already held");
                return;
            }
        };
        let shards = store.shards();
        let target = share(shards, live);
        let mut lost = Vec::new();
        let held: Vec<u32> = st.held.keys().copied().collect();
        if !held.is_empty() {
            match store.acquire_many(&owner, &held, ttl, usize::MAX).await {
                Ok(answers) => lost.extend(
                    held.iter()
                        .zip(answers)
                        .filter(|(_, renewed)| !renewed)
                        .map(|(s, _)| *s),
                ),
                Err(e) => {
                    super::metrics::store_error("renew");
                    tracing::debug!(error = %e, "lease renewal failed; keeping the shards for now");
                }
            }
        }
        let held_now: Vec<u32> = st.held.keys().copied().collect();
        let extra = shed(&held_now, &lost, target);
        if !extra.is_empty() {
            // One round trip: on a slow link, one release per shard would
            // outlast the leases being kept.
            if let Err(e) = store.release_many(&owner, &extra).await {
                super::metrics::store_error("release");
                tracing::debug!(error = %e, "could not release shards; they lapse by themselves");
            }
            lost.extend(extra);
        }
        for shard in &lost {
            st.held.remove(shard);
        }
        let mut claimed = Vec::new();
        let need = target.saturating_sub(st.held.len());
        if need > 0 {
            let held_now: Vec<u32> = st.held.keys().copied().collect();
            let candidates = claim_order(shard_of(&owner, "", shards), shards, &held_now);
            match store.acquire_many(&owner, &candidates, ttl, need).await {
                Ok(answers) => claimed.extend(
                    candidates
                        .iter()
                        .zip(answers)
                        .filter(|(_, got)| *got)
                        .map(|(s, _)| *s),
                ),
                Err(e) => {
                    super::metrics::store_error("claim");
                    tracing::debug!(error = %e, "could not claim free shards this round");
                }
            }
        }
        let held: Vec<u32> = st.held.keys().copied().collect();
        let versions = store.versions(&held).await.unwrap_or_default();
        let mut reload: Vec<u32> = held
            .iter()
            .zip(versions)
            .filter(|(s, v)| st.held.get(s) != Some(v))
            .map(|(s, _)| *s)
            .collect();
        reload.extend(claimed.iter().copied());
        for shard in lost {
            self.drop_shard(shard);
        }
        self.load_shards(&reload).await;
        // After the claims and loads, before any poll of what they brought.
        if let Some(st) = &self.store {
            super::metrics::leases(st.held.len(), live);
        }
    }

    /// Loads shards just taken or changed: two round trips whatever their
    /// number (versions first, so a put racing the load reloads next time).
    pub(super) async fn load_shards(&mut self, shards: &[u32]) {
        if shards.is_empty() {
            return;
        }
        let Some(st) = &mut self.store else { return };
        let store = st.store.clone();
        let versions = store.versions(shards).await.unwrap_or_default();
        let loaded = match store.entries_many(shards).await {
            Ok(e) => e,
            Err(e) => {
                super::metrics::store_error("load");
                tracing::warn!(shards = shards.len(), error = %e, "could not load shards; will retry");
                return;
            }
        };
        for (i, (&shard, entries)) in shards.iter().zip(loaded).enumerate() {
            if let Some(st) = &mut self.store {
                st.held.insert(shard, versions.get(i).copied().unwrap_or(0));
            }
            self.insert_loaded(entries);
        }
    }

    pub(super) fn insert_loaded(&mut self, entries: Vec<TrackedEntry>) {
        for entry in entries {
            let Some(provider) = self
                .providers
                .iter()
                .position(|p| *p.name == entry.provider)
            else {
                tracing::warn!(provider = %entry.provider, "the store tracks a task of a provider this tracker lacks; left for another replica");
                continue;
            };
            self.insert(provider, entry.id, entry.tracked_at, entry.last);
        }
    }

    pub(super) fn drop_shard(&mut self, shard: u32) {
        let slots: Vec<Slot> = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().filter(|e| e.shard == shard).map(|_| i as Slot))
            .collect();
        for slot in slots {
            self.remove_slot(slot);
        }
    }

    /// Logs a final event: `Some(true)` to emit it, `Some(false)` when
    /// another replica (or an earlier life of this one) already did, `None`
    /// when the store could not be reached (try again later).
    pub(super) async fn log_final(&mut self, event: &TaskEvent) -> Option<bool> {
        let Some(st) = &self.store else {
            return Some(true);
        };
        match st.store.append(event).await {
            Ok(Some(_)) => {
                if let Err(e) = st.store.remove(&event.provider, &event.id).await {
                    tracing::warn!(task = %event.id, error = %e, "could not remove a finished task from the store");
                }
                Some(true)
            }
            Ok(None) => {
                let _ = st.store.remove(&event.provider, &event.id).await;
                Some(false)
            }
            Err(e) => {
                super::metrics::store_error("append");
                tracing::warn!(task = %event.id, error = %e, "could not log a final event; will retry");
                None
            }
        }
    }

    /// Logs a non-final change and saves the entry's progress; when the
    /// store is down the event waits in `unsent` for the next lease tick.
    pub(super) async fn log_change(&mut self, event: &TaskEvent, slot: Slot) {
        let Some(st) = &mut self.store else { return };
        if let Err(e) = st.store.append(event).await {
            super::metrics::store_error("append");
            tracing::debug!(error = %e, "store unavailable; event kept for later");
            st.unsent.push(event.clone());
            return;
        }
        if let Some(entry) = self.entries[slot as usize].as_ref() {
            let saved = TrackedEntry {
                provider: event.provider.clone(),
                id: event.id.clone(),
                tracked_at: chrono::Duration::from_std(
                    self.clock
                        .now()
                        .saturating_duration_since(entry.cursor.started()),
                )
                .ok()
                .and_then(|age| Utc::now().checked_sub_signed(age))
                .unwrap_or_else(Utc::now),
                last: event.snapshot().cloned(),
                next_due: crate::time::wall_after(Utc::now(), entry.cursor.interval()),
            };
            if let Err(e) = st.store.update(&saved).await {
                super::metrics::store_error("update");
                tracing::debug!(error = %e, "could not save a task's progress");
            }
        }
    }
}

/// Shards each of `live` replicas should hold.
fn share(shards: u32, live: usize) -> usize {
    (shards as usize).div_ceil(live.max(1))
}

/// Which of `held` to give up so that what is kept (after the `lost` ones
/// go) is at most `target`: the highest-numbered first.
fn shed(held: &[u32], lost: &[u32], target: usize) -> Vec<u32> {
    let kept: Vec<u32> = held.iter().copied().filter(|s| !lost.contains(s)).collect();
    let excess = kept.len().saturating_sub(target);
    kept.into_iter().rev().take(excess).collect()
}

/// The shards a replica tries to claim, in order: from its own starting
/// point round the ring, so replicas do not all race for shard 0.
fn claim_order(start: u32, shards: u32, held: &[u32]) -> Vec<u32> {
    (0..shards)
        .map(|k| (start + k) % shards)
        .filter(|s| !held.contains(s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_live_replica_gets_an_even_share() {
        assert_eq!(share(64, 1), 64);
        assert_eq!(share(64, 2), 32);
        assert_eq!(share(64, 3), 22);
        assert_eq!(share(64, 0), 64, "no heartbeat answer counts as one");
        assert_eq!(share(64, 100), 1);
    }

    #[test]
    fn shedding_gives_up_the_excess_and_counts_lost_shards_as_gone() {
        let held: Vec<u32> = (0..64).collect();
        let extra = shed(&held, &[], 32);
        assert_eq!(extra.len(), 32);
        assert_eq!(extra.iter().min(), Some(&32), "the highest go");
        // Three lost in renewal: only 29 more go.
        assert_eq!(shed(&held, &[0, 1, 2], 32).len(), 29);
        assert!(shed(&held, &[63], 32).iter().all(|s| *s != 63));
        assert!(shed(&held[..10], &[], 32).is_empty());
    }

    #[test]
    fn claims_go_round_the_ring_from_the_replica_start() {
        assert_eq!(claim_order(62, 64, &[63, 0])[..3], [62, 1, 2]);
        assert_eq!(claim_order(0, 4, &[]), [0, 1, 2, 3]);
        assert!(claim_order(5, 8, &(0..8).collect::<Vec<_>>()).is_empty());
    }
}
