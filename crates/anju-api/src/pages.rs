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
