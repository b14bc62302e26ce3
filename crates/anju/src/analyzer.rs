//! The analyzer of `anju serve`, the one owner of the alerts' lifecycle
//! (DESIGN §6a): it tails the event table (with the edges' passages) into
//! the pure rules engine in its centre role ([`Role::Centre`]: the
//! occupancy rules over the history) on wall-clock time, tails the findings
//! the edges forward (their instant rules: fusion, doors, QR, devices) into
//! the same alert book, and stores every alert opened or updated —
//! attaching new evidence to the active alert of the same estate, code and
//! subject, which may meanwhile have been acknowledged or dispatched by an
//! operator. Evidence is attached without touching the workflow state, so
//! nothing it writes undoes a person's decision; a finding whose alert a
//! person dismissed (or resolved as a false alarm) stays quiet for the
//! quiet period, whichever edge or rule it came from.
//!
//! At start it rebuilds the engine's state from the last `warmup` of stored
//! events. Alerts the engine raises during that warm-up are stored only if
//! they are newer than anything already stored, so a restart neither
//! duplicates alerts nor loses findings that came due while it was down.

use anju_core::{Alert, Clock, Registry, SystemClock, Tz};
use anju_rules::engine::Role;
use anju_rules::{Engine, Finding, RulesConfig};
use anju_store::Store;
use std::sync::Arc;
use std::time::Duration;

/// Where alerts go besides the store (the API's live feed, MQTT).
pub type Publish = Arc<dyn Fn(Alert) + Send + Sync>;

pub struct Analyzer {
    store: Store,
    engine: Engine,
    last_id: i64,
    /// The last finding of the inbox fed to the engine.
    last_finding: i64,
    publish: Publish,
    clock: Arc<dyn Clock>,
    /// Events fetched per poll.
    batch: i64,
    /// After a dismissal or a false alarm, the same finding stays quiet this
    /// long (the rules' `quiet_period_days`).
    quiet: chrono::Duration,
    /// The store's registry counter when the engine's registry was read:
    /// when it moves (API writes, a re-import) the registry is reloaded.
    registry_version: i64,
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
        ts_window: anju_core::TsWindow,
    ) -> anyhow::Result<Analyzer> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let quiet = chrono::Duration::days(i64::from(rules.defaults.quiet_period_days));
        // The store's registry as of now (a restart after API writes must
        // not judge with the one read when the process started).
        let registry_version = store.registry_version().await?;
        let registry = match store.load_registry().await? {
            r if !r.estates.is_empty() => Arc::new(r),
            _ => registry,
        };
        let mut a = Analyzer {
            registry_version,
            quiet,
            store,
            engine: Engine::new(registry, tz, rules).with_role(Role::Centre),
            last_id: 0,
            last_finding: 0,
            publish,
            clock,
            batch: 5_000,
        };
        let now = a.clock.now();
        let since = now.checked_sub_signed(warmup).unwrap_or(now);
        // Bounded at now: an event a broken or forged clock dated in the
        // future (stored before the edges checked timestamps) neither moves
        // the rules' clock nor is replayed.
        let until = now.checked_add_signed(ts_window.future).unwrap_or(now);
        let newest_stored = a.store.latest_alert_update().await?;
        // The events of the window stored so far, in row order (only the
        // window's months are read on PostgreSQL); the tail goes on after
        // the last row there was at the start.
        let upto = a.store.max_event_id().await?;
        let mut n = 0usize;
        loop {
            let rows = a
                .store
                .events_in_window(a.last_id, upto, since, until, a.batch)
                .await?;
            let Some((last, _)) = rows.last() else { break };
            a.last_id = *last;
            let mut evs: Vec<_> = rows.into_iter().map(|(_, e)| e).collect();
            evs.sort_by_key(anju_core::Event::ts);
            for ev in &evs {
                n += 1;
                for alert in a.engine.ingest_at(ev, now) {
                    if newest_stored.is_none_or(|t| alert.updated_at > t) {
                        a.persist(alert).await?;
                    }
                }
            }
        }
        a.last_id = upto;
        // The findings of the warm-up window go into the book (alerts already
        // stored only get evidence they lack); older ones are skipped.
        let mut m = 0usize;
        loop {
            let rows = a.store.findings_after(a.last_finding, a.batch).await?;
            let Some((last, _)) = rows.last() else { break };
            a.last_finding = *last;
            for (id, payload) in rows {
                let Some(f) = parse_finding(id, &payload) else {
                    continue;
                };
                if f.at < since || f.at > until {
                    continue;
                }
                m += 1;
                for alert in a.engine.accept(f) {
                    if newest_stored.is_none_or(|t| alert.updated_at > t) {
                        a.persist(alert).await?;
                    }
                }
            }
        }
        tracing::info!(
            events = n,
            findings = m,
            last_id = a.last_id,
            "Analyzer warmed up."
        );
        Ok(a)
    }

    /// As [`Analyzer::run`], while `lease` is held: checked every few
    /// seconds, and when it is gone (its connection dropped: another replica
    /// may hold it now) the analyzer stops with an error, so that its
    /// supervisor tries to take the lease again rather than two analyzers
    /// running at once.
    ///
    /// # Errors
    /// The lease was lost, or as [`Analyzer::run`].
    pub async fn run_leased(
        self,
        shutdown: tokio_util::sync::CancellationToken,
        mut lease: anju_store::Lease,
    ) -> anyhow::Result<()> {
        let inner = shutdown.child_token();
        let mut run = tokio::spawn(self.run(inner.clone()));
        let mut tick = tokio::time::interval(Duration::from_secs(3));
        tick.tick().await;
        let ended = loop {
            tokio::select! {
                r = &mut run => break Some(r),
                () = shutdown.cancelled() => break None,
                _ = tick.tick() => {
                    if !lease.check().await {
                        // At once, mid-step: another replica may hold the
                        // lease now.
                        run.abort();
                        anyhow::bail!("the analyzer's lease was lost (its store connection dropped); taking it again");
                    }
                }
            }
        };
        inner.cancel();
        let r = match ended {
            Some(r) => r,
            None => run.await,
        };
        lease.release().await;
        r.map_err(|e| anyhow::anyhow!("analyzer task: {e}"))?
    }

    /// Polls for new events and findings and advances time until `shutdown`
    /// is cancelled.
    ///
    /// # Errors
    /// Only when the store keeps failing in a way that is not transient.
    pub async fn run(
        mut self,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
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
        let v = self.store.registry_version().await?;
        if v != self.registry_version {
            let reg = self.store.load_registry().await?;
            self.registry_version = v;
            if !reg.estates.is_empty() {
                tracing::info!(
                    persons = reg.persons.len(),
                    credentials = reg.credentials.len(),
                    "Registry changed in the store; the analyzer's rules reloaded it."
                );
                for p in self.engine.reload_registry(Arc::new(reg)) {
                    tracing::error!(problem = %p, "Stored rule thresholds ignored.");
                }
            }
        }
        let mut total = 0;
        loop {
            let rows = self.store.events_after(self.last_id, self.batch).await?;
            let Some((last, _)) = rows.last() else { break };
            let last = *last;
            let mut evs: Vec<_> = rows.into_iter().map(|(_, e)| e).collect();
            evs.sort_by_key(anju_core::Event::ts);
            let now = self.clock.now();
            for ev in &evs {
                // At the analyzer's clock: a stored event dated in the
                // future never moves the rules' clock.
                for alert in self.engine.ingest_at(ev, now) {
                    self.persist(alert).await?;
                }
            }
            total += evs.len();
            self.last_id = last;
        }
        loop {
            let rows = self
                .store
                .findings_after(self.last_finding, self.batch)
                .await?;
            let Some((last, _)) = rows.last() else { break };
            let last = *last;
            for (id, payload) in rows {
                if let Some(f) = parse_finding(id, &payload) {
                    for alert in self.engine.accept(f) {
                        self.persist(alert).await?;
                    }
                }
                total += 1;
            }
            self.last_finding = last;
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
        let stored = match attach(&self.store, &a).await? {
            Some(cur) => cur,
            None => {
                if is_quiet(&self.store, self.quiet, &a).await? {
                    return Ok(());
                }
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
                        match attach(&self.store, &a).await? {
                            Some(cur) => cur,
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

/// A finding of the inbox; a malformed one is logged and skipped.
fn parse_finding(id: i64, payload: &str) -> Option<Finding> {
    match serde_json::from_str(payload) {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::error!(id, error = %e, "Unreadable forwarded finding skipped.");
            None
        }
    }
}

/// Merges `a` into the active stored alert of the same finding, if there is
/// one, and returns the stored form. Only evidence, severity and times are
/// written, and only while the alert is still active: an operator's closing
/// it meanwhile wins (then `None`, as if there were none).
async fn attach(store: &Store, a: &Alert) -> anyhow::Result<Option<Alert>> {
    let Some(mut cur) = store
        .find_active_alert(a.estate.as_str(), a.code, &a.subject)
        .await?
    else {
        return Ok(None);
    };
    merge_into(&mut cur, a);
    if !store.attach_to_alert(&cur).await? {
        return Ok(None);
    }
    Ok(Some(cur))
}

/// Whether an operator closed this finding as dismissed or false alarm less
/// than the quiet period ago (the API records those transitions in the
/// store; the engine does not see them).
async fn is_quiet(store: &Store, quiet: chrono::Duration, a: &Alert) -> anyhow::Result<bool> {
    let Some(closed) = store
        .latest_closed_alert(a.estate.as_str(), a.code, &a.subject)
        .await?
    else {
        return Ok(false);
    };
    let suppressing = closed.status == anju_core::AlertStatus::Dismissed
        || closed.outcome == Some(anju_core::Outcome::FalseAlarm);
    Ok(suppressing && a.updated_at < closed.updated_at + quiet)
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

#[cfg(test)]
mod tests {
    use super::*;
    use anju_core::{AlertCode, AlertStatus, Evidence, Severity, Subject};
    use anju_store::testutil::TestStore;
    use std::sync::Mutex;

    /// An edge forwards its door_forced finding (seq `n`) to the inbox.
    async fn forward_door(store: &Store, n: i64, at: chrono::DateTime<chrono::Utc>) {
        let mut e = Evidence::new(at, "door");
        e.event_id = Some(format!("d{n}").as_str().into());
        e.device = Some("gr-b2".into());
        let f = Finding {
            code: AlertCode::DoorForced,
            severity: Severity::High,
            estate: "FCY".into(),
            building: None,
            unit: None,
            subject: Subject::Device("gr-b2".into()),
            at,
            evidence: vec![e],
        };
        let json = serde_json::to_string(&f).unwrap();
        store
            .insert_findings("edge-FCY", &[(n, "FCY".to_owned(), json)])
            .await
            .unwrap();
    }

    async fn analyzer_flow(backend: anju_store::Backend) {
        let t = TestStore::new(backend).await.unwrap();
        let site = anju_site::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/example/site.toml"
        )))
        .unwrap();
        t.store.import_registry(&site.registry).await.unwrap();
        let seen: Arc<Mutex<Vec<Alert>>> = Arc::default();
        let sink = seen.clone();
        let publish: Publish = Arc::new(move |a| sink.lock().unwrap().push(a));
        let mut an = Analyzer::start(
            t.store.clone(),
            Arc::new(site.registry.clone()),
            site.timezone,
            RulesConfig::default(),
            publish,
            chrono::Duration::days(30),
            anju_core::TsWindow::default(),
        )
        .await
        .unwrap();
        let now = chrono::Utc::now();
        forward_door(&t.store, 1, now).await;
        an.step().await.unwrap();
        let stored = t
            .store
            .find_active_alert(
                "FCY",
                AlertCode::DoorForced,
                &anju_core::Subject::Device("gr-b2".into()),
            )
            .await
            .unwrap()
            .expect("door_forced stored");
        assert_eq!(seen.lock().unwrap().last().unwrap().id, stored.id);
        // An operator acknowledges; new evidence attaches, the status stays.
        let mut acked = stored.clone();
        acked.status = AlertStatus::Acknowledged;
        t.store.update_alert(&acked).await.unwrap();
        forward_door(&t.store, 2, now + chrono::Duration::seconds(30)).await;
        an.step().await.unwrap();
        let cur = t
            .store
            .get_alert(stored.id, &anju_store::Scope::all())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cur.status, AlertStatus::Acknowledged);
        assert!(cur.evidence.len() > stored.evidence.len(), "{cur:?}");
        // Dismissed: the same finding stays quiet for the quiet period.
        let mut dismissed = cur.clone();
        dismissed.status = AlertStatus::Dismissed;
        dismissed.reason = Some("maintenance crew".into());
        t.store.update_alert(&dismissed).await.unwrap();
        forward_door(&t.store, 3, now + chrono::Duration::seconds(60)).await;
        // The same finding forwarded twice (an edge that crashed before its
        // cursor moved) is one finding.
        forward_door(&t.store, 3, now + chrono::Duration::seconds(60)).await;
        an.step().await.unwrap();
        let all = t
            .store
            .list_alerts(
                &anju_store::AlertFilter::default(),
                &anju_store::Scope::all(),
            )
            .await
            .unwrap();
        assert_eq!(
            all.len(),
            1,
            "no new alert during the quiet period: {all:?}"
        );
        t.cleanup().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn analyzer_on_sqlite() {
        analyzer_flow(anju_store::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn analyzer_on_postgres() {
        analyzer_flow(anju_store::Backend::Postgres).await;
    }
}
