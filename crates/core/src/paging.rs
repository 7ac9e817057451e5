//! Walking an offset-paged list, whatever the server does: one paginator
//! for every vendor (KPS `offset`/`limit`, DCS `offset`/`limit`, OCP
//! `page`/`size`), and one meaning of a listing's `limit` ([`slice_page`]).
//!
//! A walk stops at an empty page, a short page, the offset reaching the
//! server's total, or a page that adds no item not seen before (a server
//! answering the same page forever). It never yields an item twice, and it
//! never walks past [`PageLimits`]: reaching a bound before the end is an
//! [`Error::Limit`], so a truncated listing is never mistaken for a whole
//! one.

use std::collections::HashSet;
use std::future::Future;
use std::hash::Hash;

use futures::{Stream, StreamExt};

use crate::error::{Error, Result};
use crate::provider::{TaskFilter, TaskPage};

/// One page as the server answered it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OffsetPage<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// How many items the whole list has, when the server says.
    pub total: Option<u64>,
}

impl<T> OffsetPage<T> {
    /// A page of `items` from a list of `total` items, when the server says.
    pub fn new(items: Vec<T>, total: Option<u64>) -> Self {
        OffsetPage { items, total }
    }
}

/// The bounds of one walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PageLimits {
    /// Items asked for per page.
    pub page_size: u32,
    /// Pages fetched at most. Default 1,000.
    pub max_pages: u32,
    /// Items yielded at most. Default 1,000,000.
    pub max_items: u64,
}

impl PageLimits {
    /// Pages of `page_size` items, with the default bounds.
    pub fn new(page_size: u32) -> Self {
        PageLimits {
            page_size: page_size.max(1),
            max_pages: 1_000,
            max_items: 1_000_000,
        }
    }
}

struct Walk<F, K> {
    fetch: F,
    key: K,
    provider: String,
    limits: PageLimits,
    offset: u64,
    pages: u32,
    yielded: u64,
    done: bool,
}

/// Walks a list page by page: `fetch(offset, limit)` asks for one page,
/// `key` names an item (duplicates across pages are dropped: lists shrink
/// and grow while they are walked).
pub fn walk_offsets<'a, T, Id, F, Fut, K>(
    provider: &str,
    limits: PageLimits,
    fetch: F,
    key: K,
) -> impl Stream<Item = Result<T>> + Send + 'a
where
    T: Send + 'a,
    Id: Hash + Eq + Send + 'a,
    F: FnMut(u64, u32) -> Fut + Send + 'a,
    Fut: Future<Output = Result<OffsetPage<T>>> + Send + 'a,
    K: Fn(&T) -> Id + Send + 'a,
{
    walk_offset_pages(provider, limits, fetch, key).flat_map(futures::stream::iter)
}

/// [`walk_offsets`] a page at a time: each item is one page's fresh items
/// (an error ends it), for a reader that stops after the page holding what
/// it looks for and keeps the rest of that page.
pub fn walk_offset_pages<'a, T, Id, F, Fut, K>(
    provider: &str,
    limits: PageLimits,
    fetch: F,
    key: K,
) -> impl Stream<Item = Vec<Result<T>>> + Send + 'a
where
    T: Send + 'a,
    Id: Hash + Eq + Send + 'a,
    F: FnMut(u64, u32) -> Fut + Send + 'a,
    Fut: Future<Output = Result<OffsetPage<T>>> + Send + 'a,
    K: Fn(&T) -> Id + Send + 'a,
{
    let walk = Walk {
        fetch,
        key,
        provider: provider.to_owned(),
        limits,
        offset: 0,
        pages: 0,
        yielded: 0,
        done: false,
    };
    futures::stream::unfold((walk, HashSet::new()), |(mut w, mut seen)| async move {
        if w.done {
            return None;
        }
        if w.pages >= w.limits.max_pages {
            w.done = true;
            let e = Error::limit(
                &w.provider,
                format!(
                    "stopped listing after {} pages of {}; the list is longer than tasktrack reads",
                    w.limits.max_pages, w.limits.page_size
                ),
            );
            return Some((vec![Err(e)], (w, seen)));
        }
        let page = match (w.fetch)(w.offset, w.limits.page_size).await {
            Ok(p) => p,
            Err(e) => {
                w.done = true;
                return Some((vec![Err(e)], (w, seen)));
            }
        };
        w.pages += 1;
        let got = page.items.len() as u64;
        w.offset += got;
        let mut fresh = Vec::with_capacity(page.items.len());
        for item in page.items {
            if seen.insert((w.key)(&item)) {
                fresh.push(Ok(item));
            }
        }
        let over = w.yielded + fresh.len() as u64 > w.limits.max_items;
        if over {
            fresh.truncate(w.limits.max_items.saturating_sub(w.yielded) as usize);
            fresh.push(Err(Error::limit(
                &w.provider,
                format!("stopped listing after {} items", w.limits.max_items),
            )));
        }
        w.yielded += fresh.len() as u64;
        w.done = over
            || got == 0
            || got < u64::from(w.limits.page_size)
            || page.total.is_some_and(|t| w.offset >= t)
            || fresh.is_empty();
        Some((fresh, (w, seen)))
    })
}

/// The one meaning of [`TaskFilter::limit`] and [`TaskFilter::cursor`] for
/// providers that read a whole list and cut it: the cursor is an offset
/// into `items` (`"0"` when absent), `limit: None` means *all the rest*.
/// A malformed cursor is [`Error::InvalidInput`].
pub fn slice_page<T>(provider: &str, filter: &TaskFilter, items: Vec<T>) -> Result<TaskPage<T>> {
    let offset: usize = match &filter.cursor {
        Some(c) => c.parse().map_err(|_| {
            Error::invalid_input(
                provider,
                format!("bad list cursor {c:?}: expected a number"),
            )
        })?,
        None => 0,
    };
    let total = items.len();
    let limit = filter.limit.unwrap_or(usize::MAX);
    let page: Vec<T> = items.into_iter().skip(offset).take(limit).collect();
    let next = offset.saturating_add(page.len());
    Ok(TaskPage {
        next_cursor: (next < total && !page.is_empty()).then(|| next.to_string()),
        total: Some(total as u64),
        items: page,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<F>(limits: PageLimits, f: F) -> Vec<Result<u32>>
    where
        F: FnMut(u64, u32) -> OffsetPage<u32> + Send,
    {
        let f = std::sync::Mutex::new(f);
        futures::executor::block_on(
            walk_offsets(
                "p",
                limits,
                |o, l| {
                    let page = (f.lock().unwrap())(o, l);
                    async move { Ok(page) }
                },
                |i: &u32| *i,
            )
            .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn walks_to_the_total_and_stops_at_a_short_page() {
        let all: Vec<u32> = (0..25).collect();
        let got = run(PageLimits::new(10), |o, l| OffsetPage {
            items: all
                .iter()
                .skip(o as usize)
                .take(l as usize)
                .copied()
                .collect(),
            total: Some(25),
        });
        let got: Vec<u32> = got.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(got, all);
    }

    #[test]
    fn pages_come_whole_and_a_reader_may_stop_after_one() {
        let all: Vec<u32> = (0..25).collect();
        let calls = std::sync::atomic::AtomicU32::new(0);
        let pages = walk_offset_pages(
            "p",
            PageLimits::new(10),
            |o, l| {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let items = all.iter().skip(o as usize).take(l as usize).copied();
                let page = OffsetPage {
                    items: items.collect(),
                    total: Some(25),
                };
                async move { Ok(page) }
            },
            |i: &u32| *i,
        );
        let first_two: Vec<Vec<u32>> = futures::executor::block_on(
            pages
                .take(2)
                .map(|p| p.into_iter().map(|r| r.unwrap()).collect())
                .collect(),
        );
        assert_eq!(first_two, vec![all[..10].to_vec(), all[10..20].to_vec()]);
        assert_eq!(calls.into_inner(), 2, "the third page was never asked for");
    }

    #[test]
    fn a_server_repeating_a_page_forever_is_walked_once() {
        let mut calls = 0;
        let got = run(PageLimits::new(3), |_, _| {
            calls += 1;
            OffsetPage {
                items: vec![1, 2, 3],
                total: None,
            }
        });
        assert_eq!(got.len(), 3);
        assert_eq!(calls, 2, "the second page added nothing");
    }

    #[test]
    fn endless_new_pages_hit_the_bound_as_an_error() {
        let limits = PageLimits {
            page_size: 2,
            max_pages: 5,
            max_items: 1000,
        };
        let got = run(limits, |o, _| OffsetPage {
            items: vec![o as u32, o as u32 + 1],
            total: Some(u64::MAX),
        });
        assert_eq!(got.iter().filter(|r| r.is_ok()).count(), 10);
        assert!(matches!(got.last(), Some(Err(Error::Limit { .. }))));
    }

    #[test]
    fn slicing_has_one_meaning_of_limit() {
        let f = TaskFilter::default();
        let page = slice_page("p", &f, vec![1, 2, 3]).unwrap();
        assert_eq!((page.items.len(), page.next_cursor), (3, None));
        let f = TaskFilter {
            limit: Some(2),
            ..TaskFilter::default()
        };
        let page = slice_page("p", &f, vec![1, 2, 3]).unwrap();
        assert_eq!(page.next_cursor.as_deref(), Some("2"));
        let f = TaskFilter {
            cursor: Some("x".into()),
            ..TaskFilter::default()
        };
        assert!(slice_page("p", &f, vec![1]).is_err());
    }
}
