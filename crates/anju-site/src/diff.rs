//! What importing a site would change in a stored registry (`anju import --dry-run`, issue 15):
//! per kind of record, what is added, what changes (before → after) and what the import removes
//! or leaves. It follows the importer's rules (`Store::import_registry`): estates, grids,
//! buildings, entrances, devices and units are upserted and never deleted; ledger rows are
//! upserted by (person, lease start) and never deleted, so a household that moved out keeps its
//! history; credentials and the watch list are replaced by the file's.

use anju_core::Registry;
use serde::Serialize;
use std::collections::BTreeMap;

/// Changes of one kind of record.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Changes {
    pub added: Vec<serde_json::Value>,
    /// `{"key", "before", "after"}`.
    pub changed: Vec<serde_json::Value>,
    /// Removed by the import (credentials, watch list).
    pub removed: Vec<serde_json::Value>,
    /// Stored but not in the file, and kept (the importer never deletes these).
    pub kept_not_in_file: Vec<serde_json::Value>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

/// The dry run's answer.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct RegistryDiff {
    pub estates: Changes,
    pub grids: Changes,
    pub buildings: Changes,
    pub entrances: Changes,
    pub devices: Changes,
    pub units: Changes,
    /// Ledger rows (person, lease start).
    pub persons: Changes,
    /// Ledger rows whose lease now ends (a subset of `persons.changed`): households moving out.
    pub moved_out: Vec<serde_json::Value>,
    pub credentials: Changes,
    pub watchlist: Changes,
}

impl RegistryDiff {
    /// Whether the import would change nothing.
    pub fn is_empty(&self) -> bool {
        [
            &self.estates,
            &self.grids,
            &self.buildings,
            &self.entrances,
            &self.devices,
            &self.units,
            &self.persons,
            &self.credentials,
            &self.watchlist,
        ]
        .iter()
        .all(|c| c.is_empty())
    }

    /// The changes importing `new` would make to `stored`.
    pub fn between(stored: &Registry, new: &Registry) -> Self {
        // What the ledger has no columns for (a credential's recorded status,
        // a watch entry's expiry) the import keeps: compare the file's rows
        // with those values as the import would leave them.
        let status: BTreeMap<(&str, &str), (&str, anju_core::CredentialStatus)> = stored
            .credentials
            .iter()
            .map(|c| {
                (
                    (c.kind.as_str(), c.id.as_str()),
                    (c.person.as_str(), c.status),
                )
            })
            .collect();
        let expires: BTreeMap<&str, Option<chrono::NaiveDate>> = stored
            .watchlist
            .iter()
            .map(|w| (w.person.as_str(), w.expires))
            .collect();
        let mut new = new.clone();
        for c in &mut new.credentials {
            c.status = match status.get(&(c.kind.as_str(), c.id.as_str())) {
                Some((person, s)) if *person == c.person.as_str() => *s,
                _ => anju_core::CredentialStatus::Active,
            };
        }
        for w in &mut new.watchlist {
            w.expires = expires.get(w.person.as_str()).copied().flatten();
        }
        let new = &new;
        let mut d = RegistryDiff {
            estates: diff(&stored.estates, &new.estates, |e| e.code.to_string(), false),
            grids: diff(
                &stored.grids,
                &new.grids,
                |g| format!("{}/{}", g.estate, g.code),
                false,
            ),
            buildings: diff(
                &stored.buildings,
                &new.buildings,
                |b| format!("{}/{}", b.estate, b.code),
                false,
            ),
            entrances: diff(
                &stored.entrances,
                &new.entrances,
                |e| format!("{}/{}", e.estate, e.code),
                false,
            ),
            devices: diff(
                &stored.devices,
                &new.devices,
                |x| format!("{}/{}", x.estate, x.id),
                false,
            ),
            units: diff(&stored.units, &new.units, |u| u.key.to_string(), false),
            persons: diff(
                &stored.persons,
                &new.persons,
                |p| format!("{}@{}", p.id, p.lease_start),
                false,
            ),
            moved_out: Vec::new(),
            credentials: diff(
                &stored.credentials,
                &new.credentials,
                |c| format!("{}:{}", c.kind.as_str(), c.id),
                true,
            ),
            watchlist: diff(
                &stored.watchlist,
                &new.watchlist,
                |w| w.person.to_string(),
                true,
            ),
        };
        let before: BTreeMap<String, &anju_core::registry::Person> = stored
            .persons
            .iter()
            .map(|p| (format!("{}@{}", p.id, p.lease_start), p))
            .collect();
        for p in &new.persons {
            let key = format!("{}@{}", p.id, p.lease_start);
            if let (Some(old), Some(end)) = (before.get(&key), p.lease_end) {
                if old.lease_end.is_none() {
                    d.moved_out.push(serde_json::json!({
                        "person": p.id, "unit": p.unit.to_string(), "lease_end": end,
                    }));
                }
            }
        }
        d
    }
}

/// Added / changed / removed-or-kept records of one kind, keyed by `key`; `replaced`: the
/// importer replaces this kind with the file's (stored records not in the file are removed).
fn diff<T: Serialize + PartialEq>(
    stored: &[T],
    new: &[T],
    key: impl Fn(&T) -> String,
    replaced: bool,
) -> Changes {
    let json = |t: &T| serde_json::to_value(t).unwrap_or(serde_json::Value::Null);
    let old: BTreeMap<String, &T> = stored.iter().map(|t| (key(t), t)).collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut c = Changes::default();
    for t in new {
        let k = key(t);
        seen.insert(k.clone());
        match old.get(&k) {
            None => c.added.push(json(t)),
            Some(o) if *o != t => c.changed.push(serde_json::json!({
                "key": k, "before": json(o), "after": json(t),
            })),
            Some(_) => {}
        }
    }
    for (k, o) in &old {
        if !seen.contains(k) {
            if replaced {
                c.removed.push(json(o));
            } else {
                c.kept_not_in_file.push(json(o));
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Registry {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        crate::load(&root.join("config/example/site.toml"))
            .map(|s| s.registry)
            .unwrap_or_default()
    }

    #[test]
    fn the_same_ledger_changes_nothing() {
        let r = example();
        assert!(!r.persons.is_empty());
        assert!(RegistryDiff::between(&r, &r).is_empty());
    }

    #[test]
    fn a_changed_ledger_lists_exactly_its_changes() {
        let old = example();
        let mut new = old.clone();
        // A household moves out, a phone number changes, a card is removed, a unit is added.
        let p = new
            .persons
            .iter_mut()
            .find(|p| p.id.as_str() == "P007")
            .unwrap_or_else(|| unreachable!());
        p.lease_end = chrono::NaiveDate::from_ymd_opt(2026, 12, 1);
        let q = new
            .persons
            .iter_mut()
            .find(|p| p.id.as_str() == "P001")
            .unwrap_or_else(|| unreachable!());
        q.phone = "13900000000".into();
        new.credentials.retain(|c| c.id.as_str() != "C1006");
        let mut u = new.units[0].clone();
        u.key.unit = "301".into();
        new.units.push(u);
        let d = RegistryDiff::between(&old, &new);
        assert_eq!(d.persons.changed.len(), 2, "{:?}", d.persons.changed);
        assert_eq!(d.moved_out.len(), 1);
        assert_eq!(d.moved_out[0]["person"], "P007");
        assert_eq!(d.credentials.removed.len(), 1);
        assert_eq!(d.credentials.removed[0]["id"], "C1006");
        assert_eq!(d.units.added.len(), 1);
        assert!(d.persons.added.is_empty() && d.estates.is_empty() && d.devices.is_empty());
        // Rows the file no longer has are kept (history), and said so.
        let mut fewer = old.clone();
        fewer.persons.retain(|p| p.id.as_str() != "P003");
        let d = RegistryDiff::between(&old, &fewer);
        assert!(d.is_empty());
        assert_eq!(d.persons.kept_not_in_file.len(), 1);
    }
}
