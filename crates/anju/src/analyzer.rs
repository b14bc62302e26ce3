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
//! Estates are leased (issue 16): several `anju serve` replicas on one
//! PostgreSQL share them, each analyzing a fair share (estates ÷ replicas,
//! rounded up) with one engine per estate it holds. When a replica dies its
//! leases free and the others take its estates over at their next look
//! (every few seconds); when one joins, those above their share give
//! estates up to it.
//!
//! Taking an estate, the analyzer rebuilds its engine's state from the
//! last `warmup` of the estate's stored events. Alerts the engine raises
//! during that warm-up are stored only if they are newer than anything
//! already stored for the estate, so a restart or a takeover neither
//! duplicates alerts nor loses findings that came due meanwhile.

use anju_core::{Alert, Clock, Registry, SystemClock, Tz};
use anju_rules::engine::Role;
use anju_rules::{Engine, Finding, RulesConfig};
use anju_store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Where alerts go besides the store (the API's live feed, MQTT).
pub type Publish = Arc<dyn Fn(Alert) + Send + Sync>;

/// How often the leases are checked and the estates shared out again.
const BALANCE_EVERY: Duration = Duration::from_secs(3);

/// Batches of events (and of findings) one step reads at most.
const STEP_BATCHES: usize = 20;

pub struct Analyzer {
    store: Store,
    registry: Arc<Registry>,
    tz: Tz,
    rules: RulesConfig,
    warmup: chrono::Duration,
    ts_window: anju_core::TsWindow,
    leases: anju_store::Leases,
    /// One engine per estate this replica holds the lease of.
    engines: BTreeMap<String, Engine>,
    last_id: i64,
    /// The last finding of the inbox fed to the engines.
    last_finding: i64,
    publish: Publish,
    clock: Arc<dyn Clock>,
    /// Events fetched per poll.
    batch: i64,
    /// After a dismissal or a false alarm, the same finding stays quiet this
    /// long (the rules' `quiet_period_days`).
    quiet: chrono::Duration,
    /// The store's registry counter when the registry was read: when it
    /// moves (API writes, a re-import) the registry is reloaded.
    registry_version: i64,
    /// Whether "standing by" was said since the last estate was held.
    said_standby: bool,
}

impl Analyzer {
    /// Takes this replica's leases, then its share of the estates, and
    /// warms their engines up from the store.
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
        let leases = store.leases().await?;
        let mut a = Analyzer {
            registry_version,
            quiet,
            store,
            registry,
            tz,
            rules,
            warmup,
            ts_window,
            leases,
            engines: BTreeMap::new(),
            last_id: 0,
            last_finding: 0,
            publish,
            clock,
            batch: 5_000,
            said_standby: false,
        };
        a.balance().await?;
        Ok(a)
    }

    /// The estates this replica analyzes now.
    #[cfg(test)]
    pub fn estates(&self) -> impl Iterator<Item = &str> {
        self.engines.keys().map(String::as_str)
    }

    /// Checks the leases and shares the estates out: gives up those above
    /// this replica's fair share (or gone from the registry), takes free
    /// ones up to it and warms them up.
    ///
    /// # Errors
    /// The leases were lost (their connection dropped: other replicas may
    /// hold the estates now), or store errors.
    async fn balance(&mut self) -> anyhow::Result<()> {
        if !self.leases.check().await {
            anyhow::bail!(
                "the analyzer's leases were lost (their store connection dropped); taking them again"
            );
        }
        let estates: Vec<String> = self
            .registry
            .estates
            .iter()
            .map(|e| e.code.as_str().to_owned())
            .collect();
        let replicas = self.leases.replicas().await?;
        let fair = estates.len().div_ceil(replicas);
        let gone: Vec<String> = self
            .engines
            .keys()
            .filter(|k| !estates.contains(k))
            .cloned()
            .collect();
        let mut given = gone;
        while self.engines.len().saturating_sub(given.len()) > fair {
            let Some(last) = self.engines.keys().rev().find(|k| !given.contains(k)) else {
                break;
            };
            given.push(last.clone());
        }
        for e in &given {
            self.leases.give_up(e).await?;
            self.engines.remove(e);
        }
        if !given.is_empty() {
            tracing::info!(
                gave_up = ?given,
                replicas,
                "Estates given up to the other replicas (a fair share is {fair})."
            );
        }
        // Replicas starting together try different estates first.
        let start = std::process::id() as usize % estates.len().max(1);
        let mut gained = Vec::new();
        for e in estates.iter().cycle().skip(start).take(estates.len()) {
            if self.engines.len() + gained.len() >= fair {
                break;
            }
            if !self.engines.contains_key(e) && self.leases.try_take(e).await? {
                gained.push(e.clone());
            }
        }
        if !gained.is_empty() {
            self.warm(&gained).await?;
            self.said_standby = false;
            tracing::info!(
                estates = ?self.engines.keys().collect::<Vec<_>>(),
                gained = ?gained,
                replicas,
                "This replica runs the analyzer for these estates (it holds their leases)."
            );
        } else if self.engines.is_empty() && !std::mem::replace(&mut self.said_standby, true) {
            tracing::info!(
                replicas,
                "Other replicas run the analyzer for every estate; this one stands by to take over."
            );
        }
        Ok(())
    }

    /// New engines for `estates`, warmed up from the stored events and
    /// findings of the warm-up window; the tails go on from where they
    /// are (or from the store's end when these are the first estates).
    async fn warm(&mut self, estates: &[String]) -> anyhow::Result<()> {
        let began = std::time::Instant::now();
        let now = self.clock.now();
        let since = now.checked_sub_signed(self.warmup).unwrap_or(now);
        // Bounded at now: an event a broken or forged clock dated in the
        // future (stored before the edges checked timestamps) neither moves
        // the rules' clock nor is replayed.
        let until = now.checked_add_signed(self.ts_window.future).unwrap_or(now);
        let first = self.engines.is_empty();
        let (upto, upto_finding) = if first {
            (
                self.store.max_event_id().await?,
                self.store.max_finding_id().await?,
            )
        } else {
            (self.last_id, self.last_finding)
        };
        let mut fresh: BTreeMap<String, (Engine, Option<anju_core::Timestamp>)> = BTreeMap::new();
        for e in estates {
            let engine = Engine::new(self.registry.clone(), self.tz, self.rules.clone())
                .with_role(Role::Centre);
            let newest = self.store.latest_alert_update(e).await?;
            fresh.insert(e.clone(), (engine, newest));
        }
        let mut out: Vec<(Alert, Option<anju_core::Timestamp>)> = Vec::new();
        // The events of the window stored so far, in row order (only the
        // window's months are read on PostgreSQL).
        let (mut after, mut n) = (0i64, 0usize);
        loop {
            let rows = self
                .store
                .events_in_window(after, upto, since, until, self.batch)
                .await?;
            let Some((last, _)) = rows.last() else { break };
            after = *last;
            let mut evs: Vec<_> = rows.into_iter().map(|(_, e)| e).collect();
            evs.sort_by_key(anju_core::Event::ts);
            for ev in &evs {
                let Some(est) = estate_of(&self.registry, ev) else {
                    continue;
                };
                if let Some((engine, newest)) = fresh.get_mut(est.as_str()) {
                    n += 1;
                    for alert in own(est.as_str(), engine.ingest_at(ev, now)) {
                        out.push((alert, *newest));
                    }
                }
            }
            self.persist_new(&mut out).await?;
        }
        // The findings of the warm-up window (alerts already stored only
        // get evidence they lack); older ones are skipped.
        let (mut after, mut m) = (0i64, 0usize);
        'findings: loop {
            let rows = self.store.findings_after(after, self.batch).await?;
            let Some((last, _)) = rows.last() else { break };
            after = *last;
            for (id, payload) in rows {
                if !first && id > upto_finding {
                    break 'findings;
                }
                if first {
                    self.last_finding = id;
                }
                let Some(f) = parse_finding(id, &payload) else {
                    continue;
                };
                if f.at < since || f.at > until {
                    continue;
                }
                let est = f.estate.clone();
                if let Some((engine, newest)) = fresh.get_mut(est.as_str()) {
                    m += 1;
                    for alert in own(est.as_str(), engine.accept(f)) {
                        out.push((alert, *newest));
                    }
                }
            }
            self.persist_new(&mut out).await?;
        }
        if first {
            self.last_id = upto;
        }
        tracing::info!(
            estates = ?estates,
            events = n,
            findings = m,
            last_id = self.last_id,
            elapsed_ms = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX),
            "Analyzer warmed up."
        );
        self.engines
            .extend(fresh.into_iter().map(|(k, (engine, _))| (k, engine)));
        Ok(())
    }

    /// Stores the warm-up's alerts that are newer than what was stored
    /// for their estate when it was taken.
    async fn persist_new(
        &mut self,
        out: &mut Vec<(Alert, Option<anju_core::Timestamp>)>,
    ) -> anyhow::Result<()> {
        for (alert, newest) in std::mem::take(out) {
            if newest.is_none_or(|t| alert.updated_at > t) {
                self.persist(alert).await?;
            }
        }
        Ok(())
    }

    /// Polls for new events and findings and advances time until `shutdown`
    /// is cancelled; every few seconds checks the leases and shares the
    /// estates out again.
    ///
    /// # Errors
    /// The leases were lost, or the store keeps failing in a way that is
    /// not transient.
    pub async fn run(
        mut self,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut balanced = tokio::time::Instant::now();
        let r = loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break Ok(()),
                _ = tick.tick() => {}
            }
            let mut r = self.step().await.map(|_| ());
            if r.is_ok() && balanced.elapsed() >= BALANCE_EVERY {
                balanced = tokio::time::Instant::now();
                r = self.balance().await;
            }
            if let Err(e) = r {
                if e.downcast_ref::<anju_store::StoreError>()
                    .is_some_and(|s| s.is_transient())
                    && self.leases.check().await
                {
                    tracing::warn!(error = %e, "Store unavailable; the analyzer will retry.");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                } else {
                    break Err(e);
                }
            }
        };
        self.leases.release().await;
        r
    }

    /// One poll: new events and findings of the estates held through their
    /// engines, then wall-clock time.
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
                self.registry = Arc::new(reg);
                for engine in self.engines.values_mut() {
                    for p in engine.reload_registry(self.registry.clone()) {
                        tracing::error!(problem = %p, "Stored rule thresholds ignored.");
                    }
                }
            }
        }
        if self.engines.is_empty() {
            // Standing by: the tails start where the store is when an
            // estate is taken.
            return Ok(0);
        }
        let mut total = 0;
        let mut out: Vec<Alert> = Vec::new();
        // A backlog is worked off over several steps, so that the leases
        // are checked between them.
        for _ in 0..STEP_BATCHES {
            let rows = self.store.events_after(self.last_id, self.batch).await?;
            let Some((last, _)) = rows.last() else { break };
            let last = *last;
            let mut evs: Vec<_> = rows.into_iter().map(|(_, e)| e).collect();
            evs.sort_by_key(anju_core::Event::ts);
            let now = self.clock.now();
            for ev in &evs {
                let Some(est) = estate_of(&self.registry, ev) else {
                    continue;
                };
                let Some(engine) = self.engines.get_mut(est.as_str()) else {
                    continue;
                };
                // At the analyzer's clock: a stored event dated in the
                // future never moves the rules' clock.
                out.extend(own(est.as_str(), engine.ingest_at(ev, now)));
            }
            self.persist_held(&mut out).await?;
            total += evs.len();
            self.last_id = last;
        }
        for _ in 0..STEP_BATCHES {
            let rows = self
                .store
                .findings_after(self.last_finding, self.batch)
                .await?;
            let Some((last, _)) = rows.last() else { break };
            let last = *last;
            for (id, payload) in rows {
                if let Some(f) = parse_finding(id, &payload) {
                    let est = f.estate.clone();
                    if let Some(engine) = self.engines.get_mut(est.as_str()) {
                        out.extend(own(est.as_str(), engine.accept(f)));
                    }
                }
                total += 1;
            }
            self.persist_held(&mut out).await?;
            self.last_finding = last;
        }
        let now = self.clock.now();
        for (est, engine) in &mut self.engines {
            if engine.now().is_none_or(|t| t < now) {
                out.extend(own(est, engine.advance_to(now)));
            }
        }
        self.persist_held(&mut out).await?;
        Ok(total)
    }

    async fn persist_held(&mut self, out: &mut Vec<Alert>) -> anyhow::Result<()> {
        for alert in std::mem::take(out) {
            self.persist(alert).await?;
        }
        Ok(())
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

/// The alerts an engine raised about its own estate (an engine knows the
/// whole registry; what it would say about another estate's units is that
/// estate's analyzer's to say).
fn own(estate: &str, alerts: Vec<Alert>) -> impl Iterator<Item = Alert> + '_ {
    alerts
        .into_iter()
        .filter(move |a| a.estate.as_str() == estate)
}

/// The estate an event belongs to: its own, or its device's.
fn estate_of<'r>(
    registry: &'r Registry,
    ev: &'r anju_core::Event,
) -> Option<&'r anju_core::EstateCode> {
    ev.estate().or_else(|| {
        registry
            .devices
            .iter()
            .find(|d| &d.id == ev.device())
            .map(|d| &d.estate)
    })
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

    /// Two replicas on one PostgreSQL share five estates (three and two),
    /// a finding is stored by its estate's holder only, and when one
    /// replica goes the other takes every estate over.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replicas_share_the_estates_on_postgres() {
        let t = TestStore::new(anju_store::Backend::Postgres).await.unwrap();
        let site = anju_site::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/example/site.toml"
        )))
        .unwrap();
        let mut reg = site.registry.clone();
        for code in ["E2", "E3", "E4", "E5"] {
            reg.estates.push(anju_core::Estate {
                code: code.into(),
                name: code.into(),
                office: "test".into(),
            });
        }
        t.store.import_registry(&reg).await.unwrap();
        let all: Vec<String> = reg.estates.iter().map(|e| e.code.to_string()).collect();
        let start = || async {
            let publish: Publish = Arc::new(|_| {});
            Analyzer::start(
                t.store.clone(),
                Arc::new(reg.clone()),
                site.timezone,
                RulesConfig::default(),
                publish,
                chrono::Duration::days(30),
                anju_core::TsWindow::default(),
            )
            .await
            .unwrap()
        };
        let held = |a: &Analyzer| a.estates().map(str::to_owned).collect::<Vec<_>>();
        // Alone, the first replica takes every estate.
        let mut a = start().await;
        assert_eq!(held(&a).len(), 5);
        // A second one joins: the first gives up above its share (3), the
        // second takes what is free.
        let mut b = start().await;
        assert!(held(&b).is_empty(), "nothing free yet: {:?}", held(&b));
        a.balance().await.unwrap();
        b.balance().await.unwrap();
        let (ha, hb) = (held(&a), held(&b));
        assert_eq!((ha.len(), hb.len()), (3, 2), "{ha:?} {hb:?}");
        let mut union: Vec<String> = ha.iter().chain(&hb).cloned().collect();
        union.sort();
        let mut want = all.clone();
        want.sort();
        assert_eq!(union, want);
        // A finding of FCY: stored by its holder, once.
        let now = chrono::Utc::now();
        forward_door(&t.store, 1, now).await;
        a.step().await.unwrap();
        b.step().await.unwrap();
        let alerts = t
            .store
            .list_alerts(
                &anju_store::AlertFilter::default(),
                &anju_store::Scope::all(),
            )
            .await
            .unwrap();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        // The holder of FCY goes (its lease connection closes, as when the
        // process dies); the other takes all five over.
        let (gone, mut stays) = if ha.iter().any(|e| e == "FCY") {
            (a, b)
        } else {
            (b, a)
        };
        gone.leases.release().await;
        let t0 = std::time::Instant::now();
        while held(&stays).len() < 5 {
            assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", held(&stays));
            tokio::time::sleep(Duration::from_millis(100)).await;
            stays.balance().await.unwrap();
        }
        // Its warm-up does not open the stored finding again; new evidence
        // attaches to it.
        forward_door(&t.store, 2, now + chrono::Duration::seconds(5)).await;
        stays.step().await.unwrap();
        let alerts = t
            .store
            .list_alerts(
                &anju_store::AlertFilter::default(),
                &anju_store::Scope::all(),
            )
            .await
            .unwrap();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].evidence.len(), 2, "{:?}", alerts[0].evidence);
        stays.leases.release().await;
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
