//! The recent alerts of every estate, kept in memory by each API replica,
//! for alert pages further back (`GET /alerts?before=…`).
//!
//! The current page of a list is reused while nothing changed
//! ([`crate::pages`]); a page further back that nobody asked for before
//! would go to the store, a query per page. Instead each replica keeps the
//! newest alerts (up to [`ApiConfig::alert_index_max`](crate::ApiConfig))
//! as the store writes them for the list — one JSON object each, with the
//! columns the list filters on — and cuts such a page from memory, for any
//! estate scope and filter, byte for byte the store's answer.
//!
//! The index is kept current without rereading it: the store numbers each
//! alert's last write with the alert list's change counter in commit order
//! (migration 0017), so when a request's counter is past the index's, one
//! request reads the alerts written since
//! ([`Store::alert_index_changes`]) and applies them — inserts, changes of
//! status and evidence, deletions — while the others go to the store
//! meanwhile. More changes than the index holds (a replica idle for long)
//! reread the newest.
//!
//! The index holds every alert from its oldest id up (`floor`): a page
//! whose alerts lie at or above it is answered from memory; one reaching
//! below it (the archive), or a field-staff scope (filtered by the
//! buildings of a grid, which the index does not follow), goes to the
//! store as before.

use anju_store::{AlertFilter, IndexedAlert, Scope, Store};
use axum::body::Bytes;
use std::collections::BTreeMap;
use std::sync::RwLock;

/// Changes read at once before rereading the newest instead.
const MAX_CHANGES: i64 = 5_000;

#[derive(Default)]
struct Held {
    /// The change counter the index is current at (`None`: not read yet).
    version: Option<i64>,
    alerts: BTreeMap<i64, IndexedAlert>,
    /// Every alert with an id at or above this is held (0: all alerts).
    floor: i64,
}

pub(crate) struct AlertIndex {
    held: RwLock<Held>,
    /// One reader of the store at a time.
    refresh: tokio::sync::Mutex<()>,
    max: usize,
}

/// Whether `a` is on the list of `f` (but its cursor) for `scope`.
fn matches(a: &IndexedAlert, f: &AlertFilter, scope: &Scope) -> bool {
    f.status.is_none_or(|s| s == a.status)
        && f.code.is_none_or(|c| c == a.code)
        && f.estate.as_deref().is_none_or(|e| e == a.estate)
        && f.since.is_none_or(|t| a.updated_ms >= t.timestamp_millis())
        && (scope.all_estates || scope.estates.iter().any(|e| e.0 == a.estate))
}

impl AlertIndex {
    pub(crate) fn new(max: usize) -> AlertIndex {
        AlertIndex {
            held: RwLock::default(),
            refresh: tokio::sync::Mutex::new(()),
            max,
        }
    }

    /// The page of `f` (which has a cursor) for `scope`, as of at least
    /// `version` (the change counter read as the request began), when the
    /// index can answer it: `{"alerts":[…]}` with `next_before` when full,
    /// and how many alerts it holds. `None`: ask the store.
    ///
    /// A failure to bring the index up to date is logged and the page left
    /// to the store.
    pub(crate) async fn page(
        &self,
        store: &Store,
        f: &AlertFilter,
        scope: &Scope,
        version: i64,
    ) -> Option<(Bytes, u64)> {
        let before = f.before_id?;
        if self.max == 0 || !scope.grids.is_empty() {
            return None;
        }
        if self.version().is_none_or(|v| v < version) {
            // One request brings it up to date; the others meanwhile ask
            // the store.
            let _one = self.refresh.try_lock().ok()?;
            if self.version().is_none_or(|v| v < version) {
                if let Err(e) = self.catch_up(store).await {
                    // The store answers the page itself (and says what is
                    // wrong there, if anything); the next request tries again.
                    tracing::warn!(error = %e, "Index of recent alerts not brought up to date; pages further back go to the store.");
                    return None;
                }
            }
        }
        // Never older than the request.
        if self.version().is_none_or(|v| v < version) {
            return None;
        }
        self.cut(f, scope, before)
    }

    fn version(&self) -> Option<i64> {
        self.read().version
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Held> {
        self.held
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Held> {
        self.held
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads what was written since the index's version (or the newest
    /// alerts, the first time and after too many changes) and applies it.
    async fn catch_up(&self, store: &Store) -> anju_store::Result<()> {
        let max = i64::try_from(self.max).unwrap_or(i64::MAX);
        if let Some(v) = self.version() {
            if let Some(ch) = store.alert_index_changes(v, MAX_CHANGES.min(max)).await? {
                let mut h = self.write();
                for a in ch.alerts {
                    // An older alert than the index holds stays in the store.
                    if a.id >= h.floor {
                        h.alerts.insert(a.id, a);
                    }
                }
                for id in ch.gone {
                    h.alerts.remove(&id);
                }
                h.version = Some(h.version.map_or(ch.version, |v| v.max(ch.version)));
                trim(&mut h, self.max);
                return Ok(());
            }
        }
        let read = store.alert_index_newest(max).await?;
        let floor = if read.alerts.len() >= self.max {
            read.alerts.last().map_or(0, |a| a.id)
        } else {
            0
        };
        let alerts: BTreeMap<i64, IndexedAlert> =
            read.alerts.into_iter().map(|a| (a.id, a)).collect();
        let mut h = self.write();
        h.floor = floor;
        h.alerts = alerts;
        h.version = Some(read.version);
        trim(&mut h, self.max);
        Ok(())
    }

    /// The page before `before`, if the index holds all of it.
    fn cut(&self, f: &AlertFilter, scope: &Scope, before: i64) -> Option<(Bytes, u64)> {
        let limit = usize::try_from(f.limit).ok().filter(|l| *l > 0)?;
        let h = self.read();
        let mut page: Vec<&IndexedAlert> = Vec::with_capacity(limit.min(1024));
        for a in h.alerts.range(..before).rev().map(|(_, a)| a) {
            if matches(a, f, scope) {
                page.push(a);
                if page.len() == limit {
                    break;
                }
            }
        }
        // Short of a full page: the rest may lie below what is held.
        if page.len() < limit && h.floor > 1 {
            return None;
        }
        let bytes: usize = page.iter().map(|a| a.json.len() + 1).sum();
        let mut body = Vec::with_capacity(bytes + 48);
        body.extend_from_slice(b"{\"alerts\":[");
        for (i, a) in page.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(a.json.as_bytes());
        }
        body.push(b']');
        if page.len() == limit {
            if let Some(last) = page.last() {
                body.extend_from_slice(format!(",\"next_before\":{}", last.id).as_bytes());
            }
        }
        body.push(b'}');
        Some((Bytes::from(body), page.len() as u64))
    }
}

/// Keeps at most `max` alerts, the newest; the floor rises past those let go.
fn trim(h: &mut Held, max: usize) {
    while h.alerts.len() > max {
        if let Some((id, _)) = h.alerts.pop_first() {
            h.floor = h.floor.max(id.saturating_add(1));
        }
    }
}
