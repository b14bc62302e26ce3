//! The durable outbox of an edge worker.
//!
//! The worker writes to a local SQLite store first: events (device events,
//! sightings, and the passages fusion judged) through the store's
//! idempotent insert, best-face snapshots under their keys, and the
//! findings of its instant rules appended to the outbox (`edge_findings`).
//! The [`Forwarder`] copies them to the central
//! store in local order, remembering how far it got (outbox cursors): events
//! by the central store's own idempotency key, findings into the central
//! inbox keyed by (origin, local sequence) — so a copy repeated after a
//! crash is stored once either way. The central analyzer alone turns
//! findings into alerts: nothing the edge sends can reopen, close or edit
//! an alert a person has decided on. While the central store is unreachable
//! the forwarder retries with capped backoff and the worker keeps working
//! on the local store; nothing is dropped, and delivery resumes in order.

use anju_backoff::Backoff;
use anju_core::Event;
use anju_store::{Store, StoreError};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

const CURSOR_EVENTS: &str = "events";
const CURSOR_FINDINGS: &str = "findings";
const CURSOR_SNAPSHOTS: &str = "snapshots";
/// Snapshots per round (tens of KB each).
const SNAPSHOT_BATCH: i64 = 20;

/// Progress counters of a forwarder.
#[derive(Debug, Default)]
pub struct ForwardStats {
    /// Events copied (including ones the central store already had).
    pub events: AtomicU64,
    pub findings: AtomicU64,
    /// Best-face snapshots copied.
    pub snapshots: AtomicU64,
    /// Failed attempts (central store down or failing).
    pub failures: AtomicU64,
    /// Local event id up to which everything is delivered.
    pub events_cursor: AtomicI64,
}

/// Copies the local outbox to the central store. See the module docs.
#[derive(Debug)]
pub struct Forwarder {
    local: Store,
    central_url: String,
    /// Names this outbox in the central inbox (the edge's MQTT client id).
    origin: String,
    batch: i64,
    idle: Duration,
    stats: Arc<ForwardStats>,
}

impl Forwarder {
    pub fn new(local: Store, central_url: impl Into<String>, origin: impl Into<String>) -> Self {
        Self {
            local,
            central_url: central_url.into(),
            origin: origin.into(),
            batch: 500,
            idle: Duration::from_millis(200),
            stats: Arc::new(ForwardStats::default()),
        }
    }

    pub fn stats(&self) -> Arc<ForwardStats> {
        self.stats.clone()
    }

    /// The same forwarder counting into `stats` (a restarted forwarder
    /// keeps its counters).
    #[must_use]
    pub fn with_stats(mut self, stats: Arc<ForwardStats>) -> Self {
        self.stats = stats;
        self
    }

    /// Forwards until cancelled: connects (with backoff) to the central
    /// store, then delivers whatever the local store has beyond the cursors.
    ///
    /// # Errors
    /// Only local-store errors that are not transient (the outbox itself is
    /// broken); central failures are retried forever.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), StoreError> {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        let mut central: Option<Store> = None;
        loop {
            if cancel.is_cancelled() {
                break;
            }
            let c = match &central {
                Some(c) => c.clone(),
                None => {
                    let r = tokio::select! {
                        biased;
                        _ = cancel.cancelled() => break,
                        r = Store::connect(&self.central_url) => r,
                    };
                    match r {
                        Ok(c) => {
                            info!(url = %anju_store::redact_url(&self.central_url), "Connected to the central store.");
                            central = Some(c.clone());
                            c
                        }
                        Err(e) => {
                            self.stats.failures.fetch_add(1, Ordering::Relaxed);
                            warn!(error = %e, "Central store unreachable; retrying.");
                            if !backoff.wait(&cancel).await {
                                break;
                            }
                            continue;
                        }
                    }
                }
            };
            let r = tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                r = self.forward_once(&c) => r,
            };
            match r {
                Ok(0) => {
                    backoff.reset();
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(self.idle) => {}
                    }
                }
                Ok(_) => backoff.reset(),
                Err(e) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    warn!(error = %e, "Forwarding failed; retrying with backoff.");
                    if !backoff.wait(&cancel).await {
                        break;
                    }
                }
            }
        }
        if let Some(c) = central {
            c.close().await;
        }
        Ok(())
    }

    /// One round: a batch of events, then a batch of findings. Returns how
    /// many items were delivered.
    ///
    /// # Errors
    /// Local or central store errors (nothing past the error is marked
    /// delivered).
    pub async fn forward_once(&self, central: &Store) -> Result<usize, StoreError> {
        let mut done = 0;
        // Events, in local id order.
        let from = self.local.outbox_cursor(CURSOR_EVENTS).await?;
        let rows = self.local.local_events_after(from, self.batch).await?;
        if let Some((last_id, _, _)) = rows.last() {
            let last_id = *last_id;
            let mut evs = Vec::with_capacity(rows.len());
            for (id, payload, estate) in &rows {
                match serde_json::from_str::<Event>(payload) {
                    Ok(mut ev) => {
                        if ev.estate().is_none() {
                            ev.set_estate(estate.as_str().into());
                        }
                        evs.push(ev);
                    }
                    Err(e) => {
                        error!(id, error = %e, "Unreadable local event skipped by the forwarder.");
                    }
                }
            }
            central.insert_events(&evs).await?;
            self.local.set_outbox_cursor(CURSOR_EVENTS, last_id).await?;
            self.stats
                .events
                .fetch_add(evs.len() as u64, Ordering::Relaxed);
            self.stats.events_cursor.store(last_id, Ordering::Relaxed);
            done += rows.len();
        }
        // Snapshots before the findings that cite them, so that an alert's
        // evidence image is there when the alert is.
        let from = self.local.outbox_cursor(CURSOR_SNAPSHOTS).await?;
        let rows = self.local.snapshots_after(from, SNAPSHOT_BATCH).await?;
        if let Some((last, _)) = rows.last() {
            let last = *last;
            let snaps: Vec<_> = rows.into_iter().map(|(_, s)| s).collect();
            central.insert_snapshots(&snaps).await?;
            self.local.set_outbox_cursor(CURSOR_SNAPSHOTS, last).await?;
            self.stats
                .snapshots
                .fetch_add(snaps.len() as u64, Ordering::Relaxed);
            done += snaps.len();
        }
        // Findings, in outbox order, into the central inbox.
        let from = self.local.outbox_cursor(CURSOR_FINDINGS).await?;
        let rows = self.local.outbox_findings_after(from, self.batch).await?;
        if let Some((last, _)) = rows.last() {
            let last = *last;
            let mut items = Vec::with_capacity(rows.len());
            for (seq, payload) in rows {
                match serde_json::from_str::<anju_rules::Finding>(&payload) {
                    Ok(f) => items.push((seq, f.estate.as_str().to_owned(), payload)),
                    Err(e) => {
                        error!(seq, error = %e, "Unreadable finding skipped by the forwarder.")
                    }
                }
            }
            central.insert_findings(&self.origin, &items).await?;
            self.local.set_outbox_cursor(CURSOR_FINDINGS, last).await?;
            self.stats
                .findings
                .fetch_add(items.len() as u64, Ordering::Relaxed);
            done += items.len().max(1);
        }
        Ok(done)
    }
}
