//! The ingest worker of one estate: validates what the poll loop hands over,
//! writes good events in batches, records the bad ones as dead letters,
//! acknowledges only after the write committed, answers QR scans, and runs
//! the rules engine of its role: at an edge that forwards to a centre
//! ([`Role::Edge`]), fusion and the instant rules — each alert published on
//! MQTT at once, each finding and passage queued in the durable outbox for
//! the central analyzer, which alone owns the alerts' lifecycle; alone (no
//! central store), every rule.
//!
//! Delivery: at-least-once from the broker (QoS 1, manual acks, persistent
//! session) plus the store's idempotent insert by (estate, device,
//! event_id) gives effectively-once storage. Redelivered events are also
//! kept from the rules by a bounded memory of recent keys.

use anju_backoff::Backoff;
use anju_bus::topic::{self, DeviceBook};
use anju_core::{Alert, AlertId, EstateCode, Event, Registry, Tz};
use anju_faces::LocalInput;
use anju_rules::engine::Role;
use anju_rules::qr::{PassChecker, QrVerdict, QrVerifier};
use anju_rules::{Engine, RulesConfig};
use anju_store::{Store, StoreError};
use rumqttc::{AsyncClient, Publish, QoS};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// Counters of the worker (monotonic).
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Messages taken from the hand-off channel.
    pub messages: AtomicU64,
    /// Events newly stored.
    pub stored: AtomicU64,
    /// Valid events already stored before (redeliveries, repeats).
    pub duplicates: AtomicU64,
    /// Messages rejected to the dead-letter table.
    pub dead_letters: AtomicU64,
    /// Rejected messages over their device's dead-letter rate: counted,
    /// summarised, not written one by one.
    pub dead_letters_suppressed: AtomicU64,
    /// Messages acknowledged to the broker.
    pub acked: AtomicU64,
    /// Alerts stored and published.
    pub alerts: AtomicU64,
    /// QR decisions published.
    pub decisions: AtomicU64,
    /// Store calls retried after a transient error.
    pub store_retries: AtomicU64,
    /// Acks and publishes waiting for room in the MQTT client's request
    /// channel (a gauge).
    pub outgoing_waiting: AtomicU64,
    /// Outgoing publishes dropped because the waiting queue was full (the
    /// broker has been unreachable for long; alerts stay in the store).
    pub outgoing_dropped: AtomicU64,
}

impl IngestStats {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// What the worker needs to know about its estate.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub estate: String,
    /// Most messages written in one transaction.
    pub max_batch: usize,
    /// Run the instant rules (anju-rules) and publish alerts.
    pub rules: bool,
    /// The engine's role: [`Role::Edge`] when a central store owns the
    /// alerts (findings and passages go to the outbox), [`Role::All`] for a
    /// worker that is the only one.
    pub role: Role,
    /// How often the rules' clock is advanced to the wall clock.
    pub tick: Duration,
    /// QR pass checker (keys, revocations) for scan decisions and the
    /// rules; see [`pass_checker_for_site`]. Default: no keys, every pass
    /// denied (`unverifiable`).
    pub qr: PassChecker,
    /// Device timestamps outside this window around the worker's clock are
    /// dead letters (`ts_out_of_range`).
    pub ts_window: anju_core::TsWindow,
    /// Rejected messages written one by one per device (beyond it they
    /// are counted and summarised every [`HOUSEKEEPING_EVERY`]).
    pub dead_letter_limit: crate::dead_letters::DeadLetterLimit,
    /// How long dead letters and this worker's stored events are kept
    /// (pruned hourly; the site's `[retention]`).
    pub retention: anju_core::Retention,
}

/// How often suppressed rejects are summarised (and, every 60th time, old
/// dead letters pruned).
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);

impl WorkerConfig {
    pub fn new(estate: impl Into<String>) -> Self {
        Self {
            estate: estate.into(),
            max_batch: 512,
            rules: true,
            role: Role::All,
            tick: Duration::from_millis(500),
            qr: PassChecker::new(),
            ts_window: anju_core::TsWindow::default(),
            dead_letter_limit: crate::dead_letters::DeadLetterLimit::default(),
            retention: anju_core::Retention::default(),
        }
    }
}

/// The QR pass checker of a site: the keys and revocations of its `[qr]`
/// table (key files relative to the site file). Without keys it fails
/// closed — every pass is denied as `unverifiable` — unless the table sets
/// `allow_unsigned = true`, which is logged as an error at every start.
///
/// # Errors
/// A malformed `[qr]` table or key, an unreadable key file.
pub fn pass_checker_for_site(
    site: &anju_site::Site,
    extra_keys: &[anju_rules::qr::VerifyingKey],
) -> anyhow::Result<PassChecker> {
    use anyhow::Context as _;
    let cfg: anju_rules::qr::QrConfig = match site.file.qr.clone() {
        Some(v) => v
            .try_into()
            .with_context(|| format!("[qr] in {}", site.path.display()))?,
        None => anju_rules::qr::QrConfig::default(),
    };
    let mut checker = crate::qr_keys::pass_checker(&cfg, site.path.parent())
        .with_context(|| format!("[qr] in {}", site.path.display()))?;
    for k in extra_keys {
        checker.add_key(*k);
    }
    if checker.accepts_unsigned() {
        error!(
            site = %site.path.display(),
            "[qr] allow_unsigned = true and no public_keys: QR pass signatures are NOT checked; anyone who can print a QR code gets in."
        );
    } else if !checker.checks_signatures() {
        warn!(
            site = %site.path.display(),
            "No [qr] public_keys in the site file: every QR pass is denied (unverifiable)."
        );
    }
    Ok(checker)
}

/// The live rules engine's pass check, at this worker's clock like the
/// decision (a replay checks at the events' own times).
struct AtEdgeClock(PassChecker);

impl QrVerifier for AtEdgeClock {
    fn verify(&mut self, code: &str, _at: anju_core::Timestamp) -> QrVerdict {
        self.0.verify(code, chrono::Utc::now())
    }

    fn revoke(&mut self, ids: &std::collections::BTreeSet<String>) {
        self.0.revoke(ids);
    }
}

/// A scanner clock further off than this (seconds) is logged.
const SCANNER_SKEW_WARN_S: i64 = 120;

/// QR decision as published on `…/qr/{device}/decision`.
#[derive(Debug, Clone, Serialize)]
pub struct QrDecision {
    pub event_id: String,
    pub decision: &'static str,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass_id: Option<String>,
}

/// Bounded memory of recently seen event keys (and the QR answer given).
#[derive(Debug, Default)]
struct Recent {
    map: HashMap<String, Option<Vec<u8>>>,
    order: VecDeque<String>,
}

const RECENT_CAP: usize = 100_000;

impl Recent {
    fn insert(&mut self, key: String) -> bool {
        if self.map.contains_key(&key) {
            return false;
        }
        if self.order.len() >= RECENT_CAP {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
        self.order.push_back(key.clone());
        self.map.insert(key, None);
        true
    }
}

fn recent_key(ev: &Event) -> String {
    match ev.event_id() {
        Some(id) => format!("{}/{}", ev.device(), id),
        None => format!(
            "{}/{}@{}",
            ev.device(),
            ev.kind().as_str(),
            ev.ts().timestamp_millis()
        ),
    }
}

/// The worker. Build with [`Worker::new`], then [`Worker::run`].
pub struct Worker {
    cfg: WorkerConfig,
    estate: EstateCode,
    book: DeviceBook,
    store: Store,
    client: AsyncClient,
    engine: Option<Engine>,
    qr: PassChecker,
    recent: Recent,
    alert_ids: HashMap<AlertId, AlertId>,
    /// Acks and publishes not yet taken by rumqttc's request channel, in
    /// order. The worker never awaits that channel: the poll loop may be
    /// blocked handing the worker a publish while the channel is full of the
    /// worker's acks, and awaiting it then is a deadlock (seen under a
    /// backlog of 20,000 events: both sides waited, the broker dropped the
    /// connection for a missed keep-alive). Flushed before every batch and
    /// every few milliseconds while not empty.
    outgoing: VecDeque<Outgoing>,
    stats: Arc<IngestStats>,
    gate: crate::dead_letters::DeadLetterGate,
    housekeeping: (std::time::Instant, u32),
}

/// Most outgoing requests kept waiting; beyond it the oldest publish (never
/// an ack) is dropped.
const MAX_OUTGOING: usize = 65_536;

/// A request for the MQTT client.
#[derive(Debug)]
enum Outgoing {
    Ack(Publish),
    Publish {
        topic: String,
        payload: Vec<u8>,
        kind: OutKind,
    },
}

#[derive(Debug, Clone, Copy)]
enum OutKind {
    Alert,
    Decision,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("estate", &self.estate)
            .finish_non_exhaustive()
    }
}

impl Worker {
    pub fn new(
        cfg: WorkerConfig,
        registry: Arc<Registry>,
        tz: Tz,
        rules: RulesConfig,
        store: Store,
        client: AsyncClient,
    ) -> Self {
        let book = DeviceBook::new(&registry, &cfg.estate);
        let gate = crate::dead_letters::DeadLetterGate::new(cfg.dead_letter_limit);
        // A pass is valid only for units of this worker's estate.
        let mut qr = cfg.qr.clone().for_estate(&cfg.estate);
        // Passes revoked through the API (a restarted worker starts from the
        // latest registry, which carries them).
        qr.revoke(&registry.qr_revoked);
        let engine = cfg.rules.then(|| {
            Engine::with_qr_verifier(registry, tz, rules, Box::new(AtEdgeClock(qr.clone())))
                .with_role(cfg.role)
        });
        Self {
            estate: cfg.estate.as_str().into(),
            cfg,
            book,
            store,
            client,
            engine,
            qr,
            recent: Recent::default(),
            alert_ids: HashMap::new(),
            gate,
            housekeeping: (std::time::Instant::now(), 0),
            outgoing: VecDeque::new(),
            stats: Arc::new(IngestStats::default()),
        }
    }

    pub fn stats(&self) -> Arc<IngestStats> {
        self.stats.clone()
    }

    /// Counts into `stats` (kept across a supervised restart).
    #[must_use]
    pub fn with_stats(mut self, stats: Arc<IngestStats>) -> Self {
        self.stats = stats;
        self
    }

    /// Processes until `cancel` fires. `mqtt` carries publishes from the
    /// poll loop; `local` carries events produced in-process (camera
    /// sightings), stored and fed to the rules like device events.
    pub async fn run(
        mut self,
        mqtt: &mut mpsc::Receiver<Publish>,
        local: &mut mpsc::Receiver<LocalInput>,
        cancel: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(self.cfg.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        info!(estate = %self.estate, "Ingest worker started.");
        loop {
            self.flush_outgoing();
            let retry_outgoing = !self.outgoing.is_empty();
            let due_in = self
                .engine
                .as_ref()
                .and_then(Engine::next_due)
                .and_then(|t| {
                    let d = (t - chrono::Utc::now()).to_std().unwrap_or_default();
                    (d < self.cfg.tick).then_some(d + Duration::from_millis(1))
                });
            let ok = tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                () = tokio::time::sleep(Duration::from_millis(2)), if retry_outgoing => true,
                Some(p) = mqtt.recv() => {
                    let mut batch = vec![p];
                    while batch.len() < self.cfg.max_batch {
                        match mqtt.try_recv() {
                            Ok(p) => batch.push(p),
                            Err(_) => break,
                        }
                    }
                    self.handle_publishes(batch, &cancel).await
                }
                Some(ev) = local.recv() => {
                    let mut batch = vec![ev];
                    while batch.len() < self.cfg.max_batch {
                        match local.try_recv() {
                            Ok(ev) => batch.push(ev),
                            Err(_) => break,
                        }
                    }
                    self.handle_local(batch, &cancel).await
                }
                // A timer due before the next tick (a grant's window ending)
                // fires at its time, not up to a tick later.
                () = tokio::time::sleep(due_in.unwrap_or_default()), if due_in.is_some() => {
                    if let Some(engine) = &mut self.engine {
                        let alerts = engine.advance_to(chrono::Utc::now());
                        self.emit_alerts(alerts, &cancel).await
                    } else {
                        true
                    }
                }
                _ = tick.tick() => {
                    self.housekeeping().await;
                    if let Some(engine) = &mut self.engine {
                        let alerts = engine.advance_to(chrono::Utc::now());
                        self.emit_alerts(alerts, &cancel).await
                    } else {
                        true
                    }
                }
            };
            if !ok {
                break;
            }
        }
        info!(estate = %self.estate, "Ingest worker stopped.");
    }

    /// Validates, stores, acks, then runs decisions and rules. `false` when
    /// cancelled before the batch was committed (nothing acked then).
    async fn handle_publishes(&mut self, batch: Vec<Publish>, cancel: &CancellationToken) -> bool {
        self.stats
            .messages
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let mut good = Vec::with_capacity(batch.len());
        let now = chrono::Utc::now();
        for p in &batch {
            match topic::parse_message_at(
                &self.book,
                &p.topic,
                &p.payload,
                now,
                &self.cfg.ts_window,
            ) {
                Ok(ev) => good.push(ev),
                Err(reject) => {
                    let device = match topic::parse_topic(&p.topic) {
                        Ok((_, d, _)) if self.book.kind(d).is_some() => d,
                        _ => crate::dead_letters::UNKNOWN_DEVICE,
                    };
                    if !self.gate.admit(device, std::time::Instant::now()) {
                        self.stats
                            .dead_letters_suppressed
                            .fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let reason = reject.to_string();
                    warn!(topic = %p.topic, %reason, "Rejected a message to the dead letters.");
                    let store = self.store.clone();
                    let (t, payload) = (p.topic.clone(), p.payload.clone());
                    let r = retry(cancel, &self.stats, || {
                        let (store, t, payload, reason) =
                            (store.clone(), t.clone(), payload.clone(), reason.clone());
                        async move {
                            store
                                .insert_dead_letter("mqtt", &t, &payload, &reason)
                                .await
                        }
                    })
                    .await;
                    match r {
                        Ok(_) => {
                            self.stats.dead_letters.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(None) => return false,
                        Err(Some(e)) => {
                            error!(topic = %p.topic, error = %e, "Could not record a dead letter.");
                        }
                    }
                }
            }
        }
        let Some(fresh) = self.store_events(good, cancel).await else {
            return false;
        };
        for p in batch {
            self.send(Outgoing::Ack(p));
        }
        self.after_commit(fresh, cancel).await
    }

    /// Local inputs in order: runs of events are stored and ruled as a
    /// batch, track notices go to the engine between them.
    async fn handle_local(&mut self, batch: Vec<LocalInput>, cancel: &CancellationToken) -> bool {
        let mut events = Vec::new();
        for item in batch {
            match item {
                LocalInput::Event(mut ev) => {
                    if ev.estate().is_none() {
                        ev.set_estate(self.estate.clone());
                    }
                    events.push(ev);
                }
                notice => {
                    if !self.local_events(std::mem::take(&mut events), cancel).await {
                        return false;
                    }
                    let Some(engine) = &mut self.engine else {
                        continue;
                    };
                    let alerts = match &notice {
                        LocalInput::TrackOpened { camera, key, ts } => {
                            engine.track_opened(camera, key, *ts)
                        }
                        LocalInput::TrackClosed { camera, key, ts } => {
                            engine.track_closed(camera, key, *ts)
                        }
                        LocalInput::Enrolled(persons) => {
                            engine.set_enrolled(persons.iter().map(String::as_str));
                            Vec::new()
                        }
                        LocalInput::Registry(reg) => {
                            self.book = DeviceBook::new(reg, self.estate.as_str());
                            self.qr.revoke(&reg.qr_revoked);
                            for p in engine.reload_registry(reg.clone()) {
                                tracing::error!(problem = %p, "Stored rule thresholds ignored.");
                            }
                            tracing::info!(
                                persons = reg.persons.len(),
                                credentials = reg.credentials.len(),
                                "Registry reloaded from the central store."
                            );
                            Vec::new()
                        }
                        LocalInput::Event(_) => Vec::new(),
                    };
                    if !self.emit_alerts(alerts, cancel).await {
                        return false;
                    }
                }
            }
        }
        self.local_events(events, cancel).await
    }

    async fn local_events(&mut self, batch: Vec<Event>, cancel: &CancellationToken) -> bool {
        if batch.is_empty() {
            return true;
        }
        let Some(fresh) = self.store_events(batch, cancel).await else {
            return false;
        };
        self.after_commit(fresh, cancel).await
    }

    /// Writes events (retrying transient errors); returns those not seen
    /// before by this worker, or `None` when cancelled.
    async fn store_events(
        &mut self,
        events: Vec<Event>,
        cancel: &CancellationToken,
    ) -> Option<Vec<Event>> {
        if events.is_empty() {
            return Some(events);
        }
        let store = self.store.clone();
        let evs = Arc::new(events);
        let r = retry(cancel, &self.stats, || {
            let (store, evs) = (store.clone(), evs.clone());
            async move { store.insert_events(&evs).await }
        })
        .await;
        let events = Arc::try_unwrap(evs).unwrap_or_else(|a| (*a).clone());
        match r {
            Ok(n) => {
                self.stats.stored.fetch_add(n, Ordering::Relaxed);
                self.stats.duplicates.fetch_add(
                    events.len() as u64 - n.min(events.len() as u64),
                    Ordering::Relaxed,
                );
            }
            Err(None) => return None,
            Err(Some(e)) => {
                // Not transient: store one by one, dead-lettering failures.
                warn!(error = %e, "Batch write failed; writing one by one.");
                for ev in &events {
                    if let Err(e) = self.store.insert_events(std::slice::from_ref(ev)).await {
                        let payload = serde_json::to_vec(ev).unwrap_or_default();
                        if let Err(e2) = self
                            .store
                            .insert_dead_letter(
                                "mqtt",
                                ev.device().as_str(),
                                &payload,
                                &e.to_string(),
                            )
                            .await
                        {
                            error!(error = %e2, "Lost an event: neither stored nor dead-lettered.");
                        }
                        self.stats.dead_letters.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        Some(
            events
                .into_iter()
                .filter(|ev| self.recent.insert(recent_key(ev)))
                .collect(),
        )
    }

    async fn after_commit(&mut self, events: Vec<Event>, cancel: &CancellationToken) -> bool {
        for ev in &events {
            if let Event::QrScan { device, body, .. } = ev {
                // The validity window is checked against this worker's clock,
                // not the scanner's: a scanner whose clock is wrong (or
                // forged) must not extend a pass.
                let now = chrono::Utc::now();
                if (now - body.ts).num_seconds().abs() > SCANNER_SKEW_WARN_S {
                    warn!(
                        device = device.as_str(),
                        scanner_ts = %body.ts,
                        "QR scanner clock differs from the edge's by more than {SCANNER_SKEW_WARN_S} s; the pass is checked at the edge's time."
                    );
                }
                let d = match self.qr.verify(&body.code, now) {
                    QrVerdict::Valid(p) => QrDecision {
                        event_id: body.event_id.0.clone(),
                        decision: "grant",
                        reason: format!("valid {} pass", pass_kind(&p.kind)),
                        pass_id: Some(p.id),
                    },
                    QrVerdict::Invalid(r) => QrDecision {
                        event_id: body.event_id.0.clone(),
                        decision: "deny",
                        reason: r.as_str().to_owned(),
                        pass_id: None,
                    },
                };
                self.publish_decision(device.as_str(), &d);
            }
            if let Some(engine) = &mut self.engine {
                // At this worker's clock: a device's clock never moves the
                // rules' clock.
                let alerts = engine.ingest_at(ev, chrono::Utc::now());
                if !self.emit_alerts(alerts, cancel).await {
                    return false;
                }
            }
        }
        true
    }

    fn publish_decision(&mut self, device: &str, d: &QrDecision) {
        let Ok(json) = serde_json::to_vec(d) else {
            return;
        };
        let topic = topic::decision_topic(self.estate.as_str(), device);
        self.send(Outgoing::Publish {
            topic,
            payload: json,
            kind: OutKind::Decision,
        });
    }

    /// Queues an ack or publish behind those already waiting and sends what
    /// the client's request channel has room for.
    fn send(&mut self, o: Outgoing) {
        if self.outgoing.len() >= MAX_OUTGOING {
            if let Some(i) = self
                .outgoing
                .iter()
                .position(|o| matches!(o, Outgoing::Publish { .. }))
            {
                self.outgoing.remove(i);
                self.stats.outgoing_dropped.fetch_add(1, Ordering::Relaxed);
                warn!("MQTT client not draining; dropped the oldest waiting publish.");
            }
        }
        self.outgoing.push_back(o);
        self.flush_outgoing();
    }

    /// Hands waiting requests to the client, in order, until its channel is
    /// full. Never waits.
    fn flush_outgoing(&mut self) {
        while let Some(o) = self.outgoing.front() {
            let r = match o {
                Outgoing::Ack(p) => self.client.try_ack(p),
                Outgoing::Publish { topic, payload, .. } => {
                    self.client
                        .try_publish(topic.clone(), QoS::AtLeastOnce, false, payload.clone())
                }
            };
            if r.is_err() {
                // Full (the poll loop drains it), or the event loop is gone
                // (shutting down): either way, try again later.
                break;
            }
            let counter = match self.outgoing.pop_front() {
                Some(Outgoing::Ack(_)) => &self.stats.acked,
                Some(Outgoing::Publish {
                    kind: OutKind::Alert,
                    ..
                }) => &self.stats.alerts,
                Some(Outgoing::Publish {
                    kind: OutKind::Decision,
                    ..
                }) => &self.stats.decisions,
                None => break,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        self.stats
            .outgoing_waiting
            .store(self.outgoing.len() as u64, Ordering::Relaxed);
    }

    /// Stores (insert or update) and publishes alerts; queues the engine's
    /// findings and stores its passages for the centre (edge role). `false`
    /// if cancelled.
    async fn emit_alerts(&mut self, alerts: Vec<Alert>, cancel: &CancellationToken) -> bool {
        if !self.outbox_findings(cancel).await {
            return false;
        }
        for mut a in alerts {
            let engine_id = a.id;
            let stored = match self.alert_ids.get(&engine_id) {
                Some(&sid) => {
                    a.id = sid;
                    let (store, a2) = (self.store.clone(), a.clone());
                    retry(cancel, &self.stats, || {
                        let (store, a2) = (store.clone(), a2.clone());
                        async move { store.update_alert(&a2).await.map(|()| a2) }
                    })
                    .await
                }
                None => {
                    let (store, a2) = (self.store.clone(), a.clone());
                    retry(cancel, &self.stats, || {
                        let (store, a2) = (store.clone(), a2.clone());
                        async move { upsert_alert(&store, a2).await }
                    })
                    .await
                }
            };
            let a = match stored {
                Ok(s) => s,
                Err(None) => return false,
                Err(Some(e)) => {
                    error!(code = %a.code, error = %e, "Could not store an alert; publishing it anyway.");
                    a
                }
            };
            self.alert_ids.insert(engine_id, a.id);
            match serde_json::to_vec(&a) {
                Ok(json) => {
                    let topic = topic::alerts_topic(self.estate.as_str());
                    self.send(Outgoing::Publish {
                        topic,
                        payload: json,
                        kind: OutKind::Alert,
                    });
                }
                Err(e) => error!(error = %e, "Alert not serialisable."),
            }
        }
        true
    }
}

impl Worker {
    /// Every [`HOUSEKEEPING_EVERY`]: one summary dead letter per device
    /// whose rejects went over its rate; every hour, dead letters past
    /// their retention deleted. Failures are logged and tried next time.
    async fn housekeeping(&mut self) {
        let now = std::time::Instant::now();
        if now.saturating_duration_since(self.housekeeping.0) < HOUSEKEEPING_EVERY {
            return;
        }
        self.housekeeping = (now, self.housekeeping.1.wrapping_add(1));
        for (device, n) in self.gate.take_suppressed(now, Duration::from_secs(600)) {
            let reason = format!(
                "rate_limited: {n} more rejected messages from {device} in the last {} s were counted, not written one by one",
                HOUSEKEEPING_EVERY.as_secs()
            );
            warn!(%device, suppressed = n, "A device's rejected messages went over its dead-letter rate.");
            let topic = format!("anju/v1/{}/+/{device}/+", self.estate);
            if let Err(e) = self
                .store
                .insert_dead_letter("mqtt", &topic, b"", &reason)
                .await
            {
                error!(error = %e, "Could not record a dead-letter summary.");
            }
        }
        if self.housekeeping.1 % 60 == 1 {
            let now = chrono::Utc::now();
            let r = self.cfg.retention;
            if let Some(before) = anju_core::Retention::cutoff(now, r.dead_letters_days) {
                match self.store.prune_dead_letters(before).await {
                    Ok(0) => {}
                    Ok(n) => info!(deleted = n, "Old dead letters deleted."),
                    Err(e) => {
                        warn!(error = %e, "Old dead letters not deleted; tried again in an hour.")
                    }
                }
            }
            if let Some(before) = anju_core::Retention::cutoff(now, r.events_days) {
                match self.store.prune_events(before).await {
                    Ok(0) => {}
                    Ok(n) => info!(deleted = n, "Events past their retention deleted."),
                    Err(e) => warn!(error = %e, "Old events not deleted; tried again in an hour."),
                }
            }
        }
    }

    /// The engine's passages (stored as local events, forwarded with them)
    /// and findings (queued in the outbox), in the edge role.
    async fn outbox_findings(&mut self, cancel: &CancellationToken) -> bool {
        let Some(engine) = &mut self.engine else {
            return true;
        };
        let (passages, findings) = (engine.take_passages(), engine.take_findings());
        if !passages.is_empty() && self.store_events(passages, cancel).await.is_none() {
            return false;
        }
        for f in findings {
            let json = match serde_json::to_string(&f) {
                Ok(j) => j,
                Err(e) => {
                    error!(error = %e, "Finding not serialisable.");
                    continue;
                }
            };
            let store = self.store.clone();
            let r = retry(cancel, &self.stats, || {
                let (store, json) = (store.clone(), json.clone());
                async move { store.outbox_push_finding(&json).await }
            })
            .await;
            match r {
                Ok(_) => {}
                Err(None) => return false,
                Err(Some(e)) => {
                    error!(code = %f.code, error = %e, "Could not queue a finding for the centre.");
                }
            }
        }
        true
    }
}

fn pass_kind(k: &anju_rules::qr::PassKind) -> &'static str {
    match k {
        anju_rules::qr::PassKind::Resident => "resident",
        anju_rules::qr::PassKind::Visitor => "visitor",
    }
}

/// Inserts a new alert, or updates the active one of the same estate, code
/// and subject (after a restart the rules reopen what the store has open).
///
/// # Errors
/// Store errors.
pub async fn upsert_alert(store: &Store, mut a: Alert) -> Result<Alert, StoreError> {
    match store.insert_alert(&a).await {
        Ok(s) => Ok(s),
        Err(StoreError::Conflict(_)) => {
            match store
                .find_active_alert(a.estate.as_str(), a.code, &a.subject)
                .await?
            {
                Some(existing) => {
                    a.id = existing.id;
                    a.opened_at = existing.opened_at;
                    store.update_alert(&a).await?;
                    Ok(a)
                }
                None => store.insert_alert(&a).await,
            }
        }
        Err(e) => Err(e),
    }
}

/// Runs `f` until it succeeds, retrying transient store errors with
/// backoff. `Err(None)`: cancelled; `Err(Some(e))`: a permanent error.
pub(crate) async fn retry<T, F, Fut>(
    cancel: &CancellationToken,
    stats: &IngestStats,
    mut f: F,
) -> Result<T, Option<StoreError>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(10));
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() => {
                stats.store_retries.fetch_add(1, Ordering::Relaxed);
                warn!(error = %e, "Store unavailable; retrying.");
                if !backoff.wait(cancel).await {
                    return Err(None);
                }
            }
            Err(e) => return Err(Some(e)),
        }
    }
}
