//! The durable outbox of an edge worker.
//!
//! The worker writes to a local SQLite store first (events through the
//! store's idempotent insert, alert changes appended to `edge_alert_log`).
//! The [`Forwarder`] copies both to the central store in local id order,
//! remembering how far it got in `edge_forward_cursor`: events by the
//! central store's own idempotency key (so a copy repeated after a crash is
//! stored once), alerts by a local→central id map (an insert repeated after
//! a crash meets the "active alert exists" conflict and becomes an update).
//! While the central store is unreachable the forwarder retries with capped
//! backoff and the worker keeps working on the local store; nothing is
//! dropped, and delivery resumes in order.

use crate::backoff::Backoff;
use crate::worker::upsert_alert;
use anju_core::{Alert, Event};
use anju_store::{Store, StoreError};
use sqlx::Row as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

const CURSOR_EVENTS: &str = "events";
const CURSOR_ALERTS: &str = "alerts";

/// Creates the outbox tables in the local store (idempotent).
///
/// # Errors
/// Database errors.
pub async fn ensure_schema(local: &Store) -> Result<(), StoreError> {
    for sql in [
        "CREATE TABLE IF NOT EXISTS edge_alert_log (\
         seq INTEGER PRIMARY KEY AUTOINCREMENT, local_id BIGINT NOT NULL, payload TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS edge_forward_cursor (\
         name TEXT PRIMARY KEY, last_id BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS edge_alert_map (\
         local_id BIGINT PRIMARY KEY, central_id BIGINT NOT NULL)",
    ] {
        sqlx::query(sql).execute(local.pool()).await?;
    }
    Ok(())
}

/// Appends an alert (as stored locally) to the forwarding log.
///
/// # Errors
/// Database errors.
pub async fn log_alert(local: &Store, a: &Alert) -> Result<(), StoreError> {
    let payload = serde_json::to_string(a)
        .map_err(|e| StoreError::Corrupt(format!("alert not serialisable: {e}")))?;
    sqlx::query("INSERT INTO edge_alert_log (local_id, payload) VALUES ($1, $2)")
        .bind(a.id)
        .bind(payload)
        .execute(local.pool())
        .await?;
    Ok(())
}

async fn cursor(local: &Store, name: &str) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT last_id FROM edge_forward_cursor WHERE name = $1")
        .bind(name)
        .fetch_optional(local.pool())
        .await?;
    Ok(match row {
        Some(r) => r.try_get(0)?,
        None => 0,
    })
}

async fn set_cursor(local: &Store, name: &str, id: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO edge_forward_cursor (name, last_id) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET last_id = excluded.last_id",
    )
    .bind(name)
    .bind(id)
    .execute(local.pool())
    .await?;
    Ok(())
}

/// Progress counters of a forwarder.
#[derive(Debug, Default)]
pub struct ForwardStats {
    /// Events copied (including ones the central store already had).
    pub events: AtomicU64,
    pub alerts: AtomicU64,
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
    batch: i64,
    idle: Duration,
    stats: Arc<ForwardStats>,
}

impl Forwarder {
    pub fn new(local: Store, central_url: impl Into<String>) -> Self {
        Self {
            local,
            central_url: central_url.into(),
            batch: 500,
            idle: Duration::from_millis(200),
            stats: Arc::new(ForwardStats::default()),
        }
    }

    pub fn stats(&self) -> Arc<ForwardStats> {
        self.stats.clone()
    }

    /// Forwards until cancelled: connects (with backoff) to the central
    /// store, then delivers whatever the local store has beyond the cursors.
    ///
    /// # Errors
    /// Only local-store errors that are not transient (the outbox itself is
    /// broken); central failures are retried forever.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), StoreError> {
        ensure_schema(&self.local).await?;
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

    /// One round: a batch of events, then a batch of alert changes. Returns
    /// how many items were delivered.
    ///
    /// # Errors
    /// Local or central store errors (nothing past the error is marked
    /// delivered).
    pub async fn forward_once(&self, central: &Store) -> Result<usize, StoreError> {
        let mut done = 0;
        // Events, in local id order.
        let from = cursor(&self.local, CURSOR_EVENTS).await?;
        let rows = sqlx::query(
            "SELECT id, payload, estate FROM events WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(from)
        .bind(self.batch)
        .fetch_all(self.local.pool())
        .await?;
        if let Some(last) = rows.last() {
            let last_id: i64 = last.try_get(0)?;
            let mut evs = Vec::with_capacity(rows.len());
            for r in &rows {
                let payload: String = r.try_get(1)?;
                match serde_json::from_str::<Event>(&payload) {
                    Ok(mut ev) => {
                        if ev.estate().is_none() {
                            let estate: String = r.try_get(2)?;
                            ev.set_estate(estate.into());
                        }
                        evs.push(ev)
                    }
                    Err(e) => {
                        let id: i64 = r.try_get(0)?;
                        error!(id, error = %e, "Unreadable local event skipped by the forwarder.");
                    }
                }
            }
            central.insert_events(&evs).await?;
            set_cursor(&self.local, CURSOR_EVENTS, last_id).await?;
            self.stats
                .events
                .fetch_add(evs.len() as u64, Ordering::Relaxed);
            self.stats.events_cursor.store(last_id, Ordering::Relaxed);
            done += rows.len();
        }
        // Alert changes, in log order.
        let from = cursor(&self.local, CURSOR_ALERTS).await?;
        let rows = sqlx::query(
            "SELECT seq, local_id, payload FROM edge_alert_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(from)
        .bind(self.batch)
        .fetch_all(self.local.pool())
        .await?;
        for r in &rows {
            let seq: i64 = r.try_get(0)?;
            let local_id: i64 = r.try_get(1)?;
            let payload: String = r.try_get(2)?;
            match serde_json::from_str::<Alert>(&payload) {
                Ok(mut a) => {
                    let mapped =
                        sqlx::query("SELECT central_id FROM edge_alert_map WHERE local_id = $1")
                            .bind(local_id)
                            .fetch_optional(self.local.pool())
                            .await?;
                    let central_id = match mapped {
                        Some(m) => {
                            a.id = m.try_get(0)?;
                            match central.update_alert(&a).await {
                                Ok(()) => a.id,
                                Err(StoreError::NotFound) => upsert_alert(central, a).await?.id,
                                Err(e) => return Err(e),
                            }
                        }
                        None => upsert_alert(central, a).await?.id,
                    };
                    sqlx::query(
                        "INSERT INTO edge_alert_map (local_id, central_id) VALUES ($1, $2) \
                         ON CONFLICT (local_id) DO UPDATE SET central_id = excluded.central_id",
                    )
                    .bind(local_id)
                    .bind(central_id)
                    .execute(self.local.pool())
                    .await?;
                    self.stats.alerts.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => error!(seq, error = %e, "Unreadable alert log entry skipped."),
            }
            set_cursor(&self.local, CURSOR_ALERTS, seq).await?;
            done += 1;
        }
        Ok(done)
    }
}
