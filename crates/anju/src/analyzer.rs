//! The analyzer of `anju serve`: tails the event table, feeds the pure rules
//! engine ([`anju_rules::Engine`]) on wall-clock time, and stores every alert
//! opened or updated — attaching new evidence to the active alert of the same
//! estate, code and subject, which may meanwhile have been acknowledged or
//! dispatched by an operator.
//!
//! At start it rebuilds the engine's state from the last `warmup` of stored
//! events. Alerts the engine raises during that warm-up are stored only if
//! they are newer than anything already stored, so a restart neither
//! duplicates alerts nor loses findings that came due while it was down.

use anju_core::{Alert, Clock, Registry, SystemClock, Tz};
use anju_rules::{Engine, RulesConfig};
use anju_store::Store;
use std::sync::Arc;
use std::time::Duration;

/// Where alerts go besides the store (the API's live feed, MQTT).
pub type Publish = Arc<dyn Fn(Alert) + Send + Sync>;

pub struct Analyzer {
    store: Store,
    engine: Engine,
    last_id: i64,
    publish: Publish,
    clock: Arc<dyn Clock>,
    /// Events fetched per poll.
    batch: i64,
}

impl Analyzer {
    /// Builds the engine and warms it up from the store.
    ///
    /// # Errors
    /// Store errors.
    pub async fn start(
        store: Store,
        registry: Arc<Registry>,
        tz: Tz,
        rules: RulesConfig,
        publish: Publish,
        warmup: chrono::Duration,
    ) -> anyhow::Result<Analyzer> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let mut a = Analyzer {
            store,
            engine: Engine::new(registry, tz, rules),
            last_id: 0,
            publish,
            clock,
            batch: 5_000,
        };
        let since = a.clock.now() - warmup;
        let newest_stored = a.store.latest_alert_update().await?;
        let mut n = 0usize;
        loop {
            let rows = a.store.events_after(a.last_id, a.batch).await?;
            let Some((last, _)) = rows.last() else { break };
            a.last_id = *last;
            let mut evs: Vec<_> = rows
                .into_iter()
                .map(|(_, e)| e)
                .filter(|e| e.ts() >= since)
                .collect();
            evs.sort_by_key(anju_core::Event::ts);
            for ev in &evs {
                n += 1;
                for alert in a.engine.ingest(ev) {
                    if newest_stored.is_none_or(|t| alert.updated_at > t) {
                        a.persist(alert).await?;
                    }
                }
            }
        }
        tracing::info!(events = n, last_id = a.last_id, "Analyzer warmed up.");
        Ok(a)
    }

    /// Polls for new events and advances time until `shutdown` resolves.
    ///
    /// # Errors
    /// Only when the store keeps failing in a way that is not transient.
    pub async fn run(
        mut self,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.step().await {
                if e.downcast_ref::<anju_store::StoreError>()
                    .is_some_and(|s| s.is_transient())
                {
                    tracing::warn!(error = %e, "Store unavailable; the analyzer will retry.");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                } else {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// One poll: new events through the engine, then wall-clock time.
    ///
    /// # Errors
    /// Store errors.
    pub async fn step(&mut self) -> anyhow::Result<usize> {
        let mut total = 0;
        loop {
            let rows = self.store.events_after(self.last_id, self.batch).await?;
            let Some((last, _)) = rows.last() else { break };
            let last = *last;
            let mut evs: Vec<_> = rows.into_iter().map(|(_, e)| e).collect();
            evs.sort_by_key(anju_core::Event::ts);
            for ev in &evs {
                for alert in self.engine.ingest(ev) {
                    self.persist(alert).await?;
                }
            }
            total += evs.len();
            self.last_id = last;
        }
        let now = self.clock.now();
        if self.engine.now().is_none_or(|t| t < now) {
            for alert in self.engine.advance_to(now) {
                self.persist(alert).await?;
            }
        }
        Ok(total)
    }

    /// Stores an engine alert: onto the active alert of the same finding, or
    /// as a new one. The stored form (with its store id and workflow state)
    /// is published.
    async fn persist(&mut self, a: Alert) -> anyhow::Result<()> {
        let stored = match self
            .store
            .find_active_alert(a.estate.as_str(), a.code, &a.subject)
            .await?
        {
            Some(mut cur) => {
                merge_into(&mut cur, &a);
                self.store.update_alert(&cur).await?;
                cur
            }
            None => {
                let mut fresh = a.clone();
                // The workflow state lives in the store; a finding the
                // engine still tracks but an operator closed opens anew.
                fresh.status = anju_core::AlertStatus::Open;
                fresh.outcome = None;
                fresh.reason = None;
                match self.store.insert_alert(&fresh).await {
                    Ok(s) => s,
                    // Another analyzer inserted it first: attach instead.
                    Err(anju_store::StoreError::Conflict(_)) => {
                        match self
                            .store
                            .find_active_alert(a.estate.as_str(), a.code, &a.subject)
                            .await?
                        {
                            Some(mut cur) => {
                                merge_into(&mut cur, &a);
                                self.store.update_alert(&cur).await?;
                                cur
                            }
                            None => return Ok(()),
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        (self.publish)(stored);
        Ok(())
    }
}

/// New evidence (deduplicated by time and kind), a possibly higher severity
/// and the later update time go onto the stored alert; its workflow state is
/// kept.
fn merge_into(cur: &mut Alert, new: &Alert) {
    for e in &new.evidence {
        if !cur.evidence.iter().any(|x| {
            x.ts == e.ts && x.kind == e.kind && x.event_id == e.event_id && x.note == e.note
        }) {
            cur.evidence.push(e.clone());
        }
    }
    let cap = 50;
    if cur.evidence.len() > cap {
        let drop = cur.evidence.len() - cap;
        cur.evidence.drain(..drop);
    }
    cur.severity = cur.severity.max(new.severity);
    cur.updated_at = cur.updated_at.max(new.updated_at);
    if cur.building.is_none() {
        cur.building = new.building.clone();
    }
    if cur.unit.is_none() {
        cur.unit = new.unit.clone();
    }
}
