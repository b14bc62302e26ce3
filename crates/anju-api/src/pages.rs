//! Serialized alert-list pages, reused while they are current.
//!
//! Operators' dashboards poll the same few alert lists; building a page of
//! 50 alerts (read, parse evidence, serialise ~17 KB of JSON) costs far more
//! than the HTTP exchange. A page is kept under the store's
//! [`alerts_version`](anju_store::Store::alerts_version) — a counter that
//! every committed alert or building write bumps, from any process — read
//! *before* the page is built, so a kept page is never older than its
//! version; a request whose version differs rebuilds it. The key is the
//! caller's scope and the normalised filter, so no caller ever gets a page
//! built for another scope. The version and key also make the page's
//! `ETag`: a client that sends it back in `If-None-Match` gets a 304.

use axum::body::Bytes;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

/// Pages kept at most (each up to [`MAX_PAGE_BYTES`]).
const MAX_PAGES: usize = 128;
/// Larger pages are served but not kept.
const MAX_PAGE_BYTES: usize = 1 << 20;

#[derive(Default)]
pub(crate) struct PageCache {
    /// key → (version, body, alerts on the page).
    pages: Mutex<HashMap<String, (i64, Bytes, u64)>>,
}

impl PageCache {
    /// The page of `key` if it was built at `version`, with how many
    /// alerts it holds.
    pub(crate) fn get(&self, key: &str, version: i64) -> Option<(Bytes, u64)> {
        let pages = self
            .pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match pages.get(key) {
            Some((v, body, n)) if *v == version => Some((body.clone(), *n)),
            _ => None,
        }
    }

    /// Keeps `body` as the page of `key` at `version`.
    pub(crate) fn put(&self, key: String, version: i64, body: Bytes, alerts: u64) {
        if body.len() > MAX_PAGE_BYTES {
            return;
        }
        let mut pages = self
            .pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pages.len() >= MAX_PAGES && !pages.contains_key(&key) {
            // Outdated pages go first; if all are current, start over.
            pages.retain(|_, (v, _, _)| *v == version);
            if pages.len() >= MAX_PAGES {
                pages.clear();
            }
        }
        pages.insert(key, (version, body, alerts));
    }
}

/// Windows kept at most (each up to [`MAX_WINDOW_BYTES`]).
const MAX_WINDOWS: usize = 16;
/// Larger windows are not kept.
const MAX_WINDOW_BYTES: usize = 4 << 20;
/// Alerts in a window: the newest of a scope and filter.
pub(crate) const WINDOW_ALERTS: i64 = 1_000;

/// The newest [`WINDOW_ALERTS`] alerts of one scope and filter, as the
/// store wrote them (one JSON object each, newest first), at one version:
/// a page further back (`before` a cursor) is cut from it instead of built
/// by the store, as long as the window holds the whole page. Operators
/// page back through recent alerts; a cursor past the window goes to the
/// store as before. A window is built at the second page further back of
/// its scope and filter at one version (see [`WindowUse`]).
pub(crate) struct Window {
    json: String,
    rows: Vec<(i64, std::ops::Range<usize>)>,
    /// Fewer than [`WINDOW_ALERTS`] matched: the window holds them all.
    complete: bool,
}

impl Window {
    pub(crate) fn new(page: anju_store::AlertPageJson, asked: i64) -> Window {
        let complete = i64::try_from(page.count).unwrap_or(i64::MAX) < asked;
        Window {
            json: page.json,
            rows: page.rows,
            complete,
        }
    }

    /// The page of at most `limit` alerts with ids below `before`, as the
    /// store would answer it (`{"alerts":[…]}` with `next_before` when the
    /// page is full), and how many alerts it holds; `None` when the window
    /// does not hold the whole page.
    pub(crate) fn page(&self, before: i64, limit: i64) -> Option<(Bytes, u64)> {
        let limit = usize::try_from(limit).ok()?;
        // Newest first: the rows below the cursor start here.
        let from = self.rows.partition_point(|(id, _)| *id >= before);
        let rows = self.rows.get(from..)?;
        let take = rows.len().min(limit);
        if take < limit && !self.complete {
            return None;
        }
        let page = rows.get(..take)?;
        let bytes: usize = page.iter().map(|(_, r)| r.len() + 1).sum();
        let mut body = Vec::with_capacity(bytes + 48);
        body.extend_from_slice(b"{\"alerts\":[");
        for (i, (_, r)) in page.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(self.json.get(r.clone())?.as_bytes());
        }
        body.push(b']');
        if take == limit {
            if let Some((last, _)) = page.last() {
                body.extend_from_slice(format!(",\"next_before\":{last}").as_bytes());
            }
        }
        body.push(b'}');
        Some((Bytes::from(body), take as u64))
    }
}

/// What to do about a page further back.
pub(crate) enum WindowUse {
    /// Cut it from this window (current).
    Cut(std::sync::Arc<Window>),
    /// Build the window: a page further back of this scope and filter was
    /// asked for before at this version.
    Build,
    /// Ask the store for the page alone: the first such page at this
    /// version (while alerts change faster than anyone pages back, a
    /// window would be built for nothing), or the window is too large to
    /// keep.
    Store,
}

enum Slot {
    /// A page further back was asked for at this version.
    Asked(i64),
    /// Being built at this version (by one request; the others meanwhile
    /// go to the store).
    Building(i64),
    Built(i64, std::sync::Arc<Window>),
    /// Built at this version and too large to keep.
    TooLarge(i64),
}

#[derive(Default)]
pub(crate) struct WindowCache {
    windows: Mutex<HashMap<String, Slot>>,
}

impl WindowCache {
    /// How to answer a page further back of `key` at `version`.
    pub(crate) fn decide(&self, key: &str, version: i64) -> WindowUse {
        let mut w = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match w.get(key) {
            Some(Slot::Built(v, win)) if *v == version => WindowUse::Cut(win.clone()),
            Some(Slot::Asked(v)) if *v == version => {
                w.insert(key.to_owned(), Slot::Building(version));
                WindowUse::Build
            }
            Some(Slot::TooLarge(v) | Slot::Building(v)) if *v == version => WindowUse::Store,
            _ => {
                make_room(&mut w, key, version);
                w.insert(key.to_owned(), Slot::Asked(version));
                WindowUse::Store
            }
        }
    }

    /// Keeps `win` as the window of `key` at `version` (a marker only when
    /// it is too large to keep).
    pub(crate) fn put(&self, key: String, version: i64, win: std::sync::Arc<Window>) {
        let mut w = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        make_room(&mut w, &key, version);
        let slot = if win.json.len() > MAX_WINDOW_BYTES {
            Slot::TooLarge(version)
        } else {
            Slot::Built(version, win)
        };
        w.insert(key, slot);
    }
}

/// At most [`MAX_WINDOWS`] slots: outdated ones go first; if all are
/// current, start over.
fn make_room(w: &mut HashMap<String, Slot>, key: &str, version: i64) {
    if w.len() >= MAX_WINDOWS && !w.contains_key(key) {
        w.retain(|_, s| match s {
            Slot::Asked(v) | Slot::Building(v) | Slot::Built(v, _) | Slot::TooLarge(v) => {
                *v == version
            }
        });
        if w.len() >= MAX_WINDOWS {
            w.clear();
        }
    }
}

/// The entity tag of the page of `key` at `version`.
pub(crate) fn etag(key: &str, version: i64) -> String {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    format!("\"a{version}-{:016x}\"", h.finish())
}

/// Whether an `If-None-Match` header value names `tag` (or is `*`).
pub(crate) fn matches(if_none_match: &str, tag: &str) -> bool {
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == tag || t.strip_prefix("W/").is_some_and(|weak| weak == tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_kept_per_key_and_version() {
        let c = PageCache::default();
        c.put("k".into(), 3, Bytes::from_static(b"v3"), 1);
        assert_eq!(
            c.get("k", 3).map(|(b, n)| (b.to_vec(), n)),
            Some((b"v3".to_vec(), 1))
        );
        assert_eq!(c.get("k", 4), None);
        assert_eq!(c.get("other", 3), None);
        for i in 0..(MAX_PAGES as i64 + 10) {
            c.put(format!("p{i}"), 5, Bytes::from_static(b"x"), 1);
        }
        let n = c
            .pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        assert!(n <= MAX_PAGES, "{n}");
        c.put(
            "big".into(),
            5,
            Bytes::from(vec![0u8; MAX_PAGE_BYTES + 1]),
            1,
        );
        assert_eq!(c.get("big", 5), None);
    }

    #[test]
    fn etags() {
        let t = etag("scope|filter", 7);
        assert_ne!(t, etag("scope|filter", 8));
        assert_ne!(t, etag("other|filter", 7));
        assert!(matches(&t, &t));
        assert!(matches(&format!("\"x\", W/{t}"), &t));
        assert!(matches("*", &t));
        assert!(!matches("\"a7-0\"", &t));
    }
}
