//! Reads of personal data that come in bulk — pages of alerts with their
//! evidence, alerts delivered on a live stream — counted per user and
//! written to the audit once a minute as one entry each (issue 12: such
//! reads are reads of personal data), instead of one audit row per request
//! on the hottest path. Single-object reads (a person, an alert's detail, a
//! snapshot) are audited one by one where they happen.

use anju_store::{AuditEntry, Store};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// How often counted reads are written to the audit.
pub const FLUSH_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Tally {
    requests: u64,
    items: u64,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
}

/// Counted reads not yet written, by user and action.
#[derive(Debug, Default)]
pub struct ReadTally {
    open: Mutex<HashMap<(String, &'static str), Tally>>,
}

impl ReadTally {
    /// One read by `user` of `items` objects (`action`: `read_alert_page`,
    /// `read_alert_stream`).
    pub fn count(&self, user: &str, action: &'static str, items: u64) {
        let now = Utc::now();
        let mut m = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let t = m.entry((user.to_owned(), action)).or_insert(Tally {
            requests: 0,
            items: 0,
            first: now,
            last: now,
        });
        t.requests += 1;
        t.items += items;
        t.last = now;
    }

    /// Writes what was counted as audit entries (one per user and action);
    /// what cannot be written is kept for the next flush.
    pub async fn flush(&self, store: &Store) {
        let taken: Vec<_> = std::mem::take(
            &mut *self
                .open
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_iter()
        .collect();
        for ((user, action), t) in taken {
            let e = AuditEntry {
                at: t.last,
                user: user.clone(),
                action: action.to_owned(),
                object: "alerts".into(),
                detail: Some(format!(
                    "{} requests, {} alerts with evidence, {} to {}",
                    t.requests,
                    t.items,
                    t.first.to_rfc3339(),
                    t.last.to_rfc3339()
                )),
            };
            if let Err(err) = store.audit(&e).await {
                tracing::warn!(error = %err, "Read audit not written; kept for the next flush.");
                let mut m = self
                    .open
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let k = m.entry((user, action)).or_insert(Tally {
                    requests: 0,
                    items: 0,
                    first: t.first,
                    last: t.last,
                });
                k.requests += t.requests;
                k.items += t.items;
                k.first = k.first.min(t.first);
            }
        }
    }
}
