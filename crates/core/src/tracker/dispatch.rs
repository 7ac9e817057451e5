//! Applying a batch of answers: events, terminal logging, giving up.

use std::sync::atomic::Ordering;

use chrono::Utc;
use tokio::time::Instant;

use super::{live, BatchResult, Entry, Scheduler, Slot};
use crate::cursor::Next;
use crate::error::Error;
use crate::event::{TaskEvent, TaskEventKind};
use crate::model::TaskSnapshot;

impl Scheduler {
    pub(super) async fn give_up_deadline(&mut self, slot: Slot, now: Instant) {
        let Some(entry) = self.entries[slot as usize].as_ref() else {
            return;
        };
        let err = entry
            .cursor
            .timeout(&self.providers[entry.provider].name, &entry.id, now, None);
        self.finish_with_error(slot, &err).await;
    }

    /// Gives the task in `slot` up when it has overrun a phase limit of its
    /// policy: `None` when it has not, else whether the scheduler goes on
    /// (false: the event reader is gone).
    async fn overran(&mut self, slot: Slot, now: Instant) -> Option<bool> {
        let entry = self.entries[slot as usize].as_ref()?;
        let provider = &self.providers[entry.provider];
        let why = entry.cursor.overrun(&provider.policy, now)?;
        let err = entry
            .cursor
            .timeout(&provider.name, &entry.id, now, Some(why));
        Some(self.finish_with_error(slot, &err).await)
    }

    /// Applies a batch of answers; false when the event reader is gone for
    /// good and the scheduler should stop.
    pub(super) async fn apply(&mut self, batch: BatchResult) -> bool {
        let now = self.clock.now();
        let dispatched = batch.dispatched;
        let provider_name = self.providers[batch.provider].name.clone();
        let mut answers = batch.answers.into_iter();
        for (slot, generation) in batch.slots {
            let answer = answers.next().unwrap_or_else(|| {
                Err(Error::decode(
                    &*provider_name,
                    "status_many answer",
                    ".",
                    "provider returned fewer answers than ids",
                ))
            });
            let Some(entry) = live(&mut self.entries, &self.generations, slot, generation) else {
                continue;
            };
            entry.in_flight = false;
            self.counters.status_updates.fetch_add(1, Ordering::Relaxed);
            tracing::trace!(provider = %provider_name, task = %entry.id, answer = ?answer.as_ref().map(|s| s.state), "status answer");
            super::metrics::answer(&provider_name, &answer);
            let previous = entry.cursor.last_state();
            let next = entry
                .cursor
                .observe(&self.providers[entry.provider].policy, now, answer);
            let changed_event = |entry: &Entry, snapshot: Box<TaskSnapshot>| TaskEvent {
                provider: provider_name.to_string(),
                id: entry.id.to_string(),
                previous,
                kind: TaskEventKind::Changed { snapshot },
                at: Utc::now(),
            };
            if let Next::Changed(snapshot)
            | Next::Terminal {
                snapshot,
                changed: true,
            } = &next
            {
                super::metrics::transition(
                    &provider_name,
                    snapshot,
                    now.saturating_duration_since(entry.cursor.started()),
                );
            }
            match next {
                Next::Terminal { snapshot, .. } => {
                    // With a store the terminal event is logged at most
                    // once across replicas; unlogged (store down), the
                    // task is polled again and the append retried.
                    let event = changed_event(entry, snapshot);
                    let unacked = entry.final_unacked;
                    match self.log_final(&event).await {
                        // Report it when logged now, or logged by an
                        // earlier attempt of this replica whose answer
                        // was lost; stay silent when another logged it.
                        Some(logged_now) => {
                            self.remove_slot(slot);
                            if (logged_now || unacked) && !self.emit(event).await {
                                return false;
                            }
                        }
                        None => {
                            if let Some(e) = self.entries[slot as usize].as_mut() {
                                e.final_unacked = true;
                            }
                            self.reschedule(slot, dispatched, now)
                        }
                    }
                }
                Next::Changed(snapshot) => {
                    let event = changed_event(entry, snapshot);
                    self.log_change(&event, slot).await;
                    if !self.emit(event).await {
                        return false;
                    }
                    match self.overran(slot, now).await {
                        None => self.reschedule(slot, dispatched, now),
                        Some(true) => {}
                        Some(false) => return false,
                    }
                }
                Next::Unchanged | Next::Retry => {
                    if matches!(next, Next::Retry) {
                        tracing::debug!(provider = %provider_name, task = %entry.id, error = entry.cursor.last_error().unwrap_or_default(), "transient error while tracking");
                    }
                    match self.overran(slot, now).await {
                        None => {}
                        Some(true) => continue,
                        Some(false) => return false,
                    }
                    let Some(entry) = self.entries[slot as usize].as_mut() else {
                        continue;
                    };
                    let policy = &self.providers[entry.provider].policy;
                    let give_up = policy.give_up_on_stall;
                    match entry.cursor.stall(policy, now) {
                        Some(unchanged) if give_up => {
                            let e = entry.cursor.timeout(
                                &provider_name,
                                &entry.id,
                                now,
                                Some(format!(
                                    "the task stalled: nothing changed for {}",
                                    crate::error::human_duration(unchanged)
                                )),
                            );
                            super::metrics::stalled(&provider_name);
                            if !self.finish_with_error(slot, &e).await {
                                return false;
                            }
                        }
                        Some(unchanged) => {
                            super::metrics::stalled(&provider_name);
                            let event = TaskEvent {
                                provider: provider_name.to_string(),
                                id: entry.id.to_string(),
                                previous: entry.cursor.last_state(),
                                kind: TaskEventKind::Stalled {
                                    unchanged_for_secs: unchanged.as_secs(),
                                },
                                at: Utc::now(),
                            };
                            self.reschedule(slot, dispatched, now);
                            if !self.emit(event).await {
                                return false;
                            }
                        }
                        None => self.reschedule(slot, dispatched, now),
                    }
                }
                Next::Stop(e) => {
                    if !self.finish_with_error(slot, &e).await {
                        return false;
                    }
                }
            }
        }
        true
    }

    pub(super) async fn finish_with_error(&mut self, slot: Slot, err: &Error) -> bool {
        let Some(entry) = self.entries[slot as usize].as_ref() else {
            return true;
        };
        super::metrics::gave_up(&self.providers[entry.provider].name, err.kind());
        let event = TaskEvent {
            provider: self.providers[entry.provider].name.to_string(),
            id: entry.id.to_string(),
            previous: entry.cursor.last_state(),
            kind: TaskEventKind::GaveUp {
                error_kind: err.kind().to_owned(),
                message: err.to_string(),
            },
            at: Utc::now(),
        };
        self.remove_slot(slot);
        match self.log_final(&event).await {
            Some(false) => true,
            Some(true) => self.emit(event).await,
            None => {
                // The store is down and the task cannot be polled again to
                // find out: report it, and log it when the store is back.
                if let Some(st) = &mut self.store {
                    st.unsent.push(event.clone());
                }
                self.emit(event).await
            }
        }
    }

    pub(super) async fn emit(&mut self, event: TaskEvent) -> bool {
        self.counters.events.fetch_add(1, Ordering::Relaxed);
        self.events.send(event).await.is_ok()
    }
}
