//! The dashboard's event feed and its SSE ids.
//!
//! With a store, an event's id is its store cursor: a page that reconnects
//! with `Last-Event-ID` gets exactly what the store logged after it, across
//! restarts of this server and whichever replica logged it. Without one,
//! ids are `s<stream>-<n>` from a ring buffer of recent events, and the
//! stream id is new each time the server starts, so a page that still
//! holds an id from an earlier process is sent only what is new.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::Stream;
use tasktrack_core::{cursor_position, TaskEvent, TrackStore};
use tokio::sync::{broadcast, Notify};

/// Events kept for a page that reconnects (local mode) and buffered per
/// live page before it counts as lagging.
const RECENT: usize = 4096;
/// Events read from the store per page of a replay or of the tail.
const PAGE: usize = 500;

/// One event as a page receives it.
#[derive(Clone)]
pub struct Item {
    /// The SSE id.
    pub id: String,
    /// Where it sits in the feed, for skipping what a replay already sent.
    position: (u64, u64),
    /// The event.
    pub event: TaskEvent,
}

/// A `Last-Event-ID` that no feed of this server could have written.
#[derive(Debug)]
pub struct BadEventId;

enum Source {
    Store {
        store: Arc<dyn TrackStore>,
        wake: Arc<Notify>,
    },
    Local {
        stream: String,
        recent: Mutex<(u64, VecDeque<Item>)>,
    },
}

/// Where SSE events come from.
pub struct Feed {
    source: Source,
    live: broadcast::Sender<Item>,
}

impl Feed {
    /// A feed over `store`'s log, or a process-local one without a store.
    pub fn new(store: Option<Arc<dyn TrackStore>>) -> Feed {
        let (live, _) = broadcast::channel(RECENT);
        let source = match store {
            Some(store) => Source::Store {
                store,
                wake: Arc::new(Notify::new()),
            },
            None => Source::Local {
                stream: format!("s{:08x}", rand::random::<u32>()),
                recent: Mutex::new((0, VecDeque::with_capacity(RECENT))),
            },
        };
        Feed { source, live }
    }

    /// The store events come from, if any.
    pub fn store(&self) -> Option<Arc<dyn TrackStore>> {
        match &self.source {
            Source::Store { store, .. } => Some(store.clone()),
            Source::Local { .. } => None,
        }
    }

    /// Whether events come from a store's log.
    pub fn is_store(&self) -> bool {
        matches!(self.source, Source::Store { .. })
    }

    /// A tracker emitted `event`. In store mode the tracker has logged it
    /// already and the tail picks it up with its cursor.
    pub fn publish(&self, event: &TaskEvent) {
        match &self.source {
            Source::Store { wake, .. } => wake.notify_one(),
            Source::Local { stream, recent } => {
                let mut recent = recent.lock().unwrap_or_else(|p| p.into_inner());
                recent.0 += 1;
                let n = recent.0;
                let item = Item {
                    id: format!("{stream}-{n}"),
                    position: (n, 0),
                    event: event.clone(),
                };
                if recent.1.len() == RECENT {
                    recent.1.pop_front();
                }
                recent.1.push_back(item.clone());
                // Sent under the lock, so a page subscribing under it sees
                // each event either in its replay or live, never both.
                let _ = self.live.send(item);
            }
        }
    }

    /// Follows the store's log from its current end, handing each event to
    /// `seen` and to the live pages; ends when `owner` is dropped.
    pub async fn tail<T: Send + Sync + 'static>(
        owner: Weak<T>,
        feed: impl Fn(&T) -> &Feed + Send,
        seen: impl Fn(&T, &TaskEvent) + Send,
    ) {
        let mut cursor = None;
        loop {
            let Some(this) = owner.upgrade() else { return };
            let f = feed(&this);
            let Source::Store { store, wake } = &f.source else {
                return;
            };
            let (store, wake) = (store.clone(), wake.clone());
            let next = match &cursor {
                None => store.last_cursor().await.map(|c| {
                    cursor = Some(c);
                    Vec::new()
                }),
                Some(after) => store.read(after, PAGE).await,
            };
            match next {
                Ok(page) if !page.is_empty() => {
                    for (id, event) in page {
                        seen(&this, &event);
                        let position = cursor_position(&id).unwrap_or((u64::MAX, u64::MAX));
                        let _ = f.live.send(Item {
                            id: id.clone(),
                            position,
                            event,
                        });
                        cursor = Some(id);
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read the store's event log"),
            }
            // Woken by the local tracker at once; other replicas' events
            // show up within the tick.
            let wait = tokio::time::timeout(Duration::from_secs(1), wake.notified());
            drop(this);
            let _ = wait.await;
        }
    }

    /// The events a page that last saw `last_id` (if any) is sent: what
    /// followed it, then everything new.
    pub async fn subscribe(
        &self,
        last_id: Option<&str>,
    ) -> Result<impl Stream<Item = Item> + Send + 'static, BadEventId> {
        let (replay, live, after) = match &self.source {
            Source::Local { stream, recent } => {
                let after = match last_id {
                    None => None,
                    Some(id) => {
                        let (their_stream, n) = id.rsplit_once('-').ok_or(BadEventId)?;
                        let n: u64 = n.parse().map_err(|_| BadEventId)?;
                        let well_formed = their_stream.len() == 9
                            && their_stream.starts_with('s')
                            && their_stream[1..].bytes().all(|b| b.is_ascii_hexdigit());
                        if !well_formed {
                            return Err(BadEventId);
                        }
                        // Another process's id: nothing of it is here.
                        (their_stream == stream).then_some(n)
                    }
                };
                let recent = recent.lock().unwrap_or_else(|p| p.into_inner());
                let live = self.live.subscribe();
                let replay: Vec<Item> = match after {
                    Some(n) => recent
                        .1
                        .iter()
                        .filter(|i| i.position.0 > n)
                        .cloned()
                        .collect(),
                    None => Vec::new(),
                };
                (Replay::Items(replay.into()), live, None)
            }
            Source::Store { store, .. } => {
                let live = self.live.subscribe();
                match last_id {
                    None => (Replay::Items(VecDeque::new()), live, None),
                    Some(id) => {
                        let position = cursor_position(id).ok_or(BadEventId)?;
                        let end = store.last_cursor().await.unwrap_or_else(|_| "0".into());
                        let end_position = cursor_position(&end).unwrap_or((0, 0));
                        // An id of a shape this store never writes (a file
                        // store's `N` given to Redis, or the other way) is
                        // not a cursor of this log.
                        if end != "0" && id.contains('-') != end.contains('-') {
                            return Err(BadEventId);
                        }
                        if position > end_position || end == "0" {
                            // From another log, or one since emptied: only
                            // what is new is this log's to send.
                            (Replay::Items(VecDeque::new()), live, None)
                        } else {
                            (
                                Replay::Store {
                                    store: store.clone(),
                                    cursor: id.to_owned(),
                                    buffered: VecDeque::new(),
                                    done: false,
                                },
                                live,
                                Some(position),
                            )
                        }
                    }
                }
            }
        };
        Ok(futures::stream::unfold(
            (replay, live, after),
            |(mut replay, mut live, mut sent)| async move {
                if let Some(item) = replay.next().await {
                    sent = Some(item.position);
                    return Some((item, (replay, live, sent)));
                }
                loop {
                    match live.recv().await {
                        Ok(item) if sent.is_some_and(|s| item.position <= s) => continue,
                        Ok(item) => return Some((item, (replay, live, sent))),
                        // A page that fell behind misses events; it reloads
                        // the list on its next reconnect, so skip ahead.
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        ))
    }
}

/// What a reconnecting page is sent before the live events.
enum Replay {
    Items(VecDeque<Item>),
    Store {
        store: Arc<dyn TrackStore>,
        cursor: String,
        buffered: VecDeque<Item>,
        done: bool,
    },
}

impl Replay {
    /// The next replayed event, read from the store a page at a time so a
    /// long absence is not held in memory at once.
    async fn next(&mut self) -> Option<Item> {
        match self {
            Replay::Items(items) => items.pop_front(),
            Replay::Store {
                store,
                cursor,
                buffered,
                done,
            } => {
                if buffered.is_empty() && !*done {
                    match store.read(cursor, PAGE).await {
                        Ok(page) => {
                            *done = page.len() < PAGE;
                            for (id, event) in page {
                                let position = cursor_position(&id).unwrap_or((u64::MAX, u64::MAX));
                                cursor.clone_from(&id);
                                buffered.push_back(Item {
                                    id,
                                    position,
                                    event,
                                });
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot replay the store's event log");
                            *done = true;
                        }
                    }
                }
                buffered.pop_front()
            }
        }
    }
}
