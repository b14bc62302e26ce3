//! `anju edge`: the worker of one estate, wired together.
//!
//! ```text
//! broker ─poll loop─▶ mpsc(N, block) ─▶ worker ─▶ local SQLite store ─▶ forwarder ─▶ central store
//!                                        │  ▲                 (outbox)
//!          decisions, alerts ◀───────────┘  └── mpsc(N, block) ◀── cameras (sightings)
//! ```

use crate::outbox::{ForwardStats, Forwarder};
use crate::worker::{IngestStats, Worker, WorkerConfig};
use anju_backoff::Tasks;
use anju_bus::mqtt::{poll_loop, LinkStats, MqttConfig, DEFAULT_MQTT_URL};
use anju_bus::topic;
use anju_camera::RtspTransport;
use anju_core::{Registry, Tz};
use anju_faces::LocalInput;
use anju_rules::RulesConfig;
use anju_store::Store;
use anyhow::Context as _;
use rumqttc::AsyncClient;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, Instrument as _};

/// Options of `anju edge --site FILE --estate CODE [--db URL] [--mqtt URL]`.
#[derive(Clone)]
pub struct EdgeOptions {
    /// The site file.
    pub site: PathBuf,
    /// The estate this worker serves.
    pub estate: String,
    /// The central store (`sqlite://…` or `postgres://…`). `None`: the local
    /// store is the only one (no forwarding).
    pub db: Option<String>,
    /// The MQTT broker, `mqtt://host:port`.
    pub mqtt: String,
    /// Where the local outbox store lives (`<data_dir>/edge-<estate>.db`).
    pub data_dir: PathBuf,
    /// Rule thresholds.
    pub rules: RulesConfig,
    /// MQTT client id; default `anju-edge-<estate>` (stable, so the broker
    /// keeps the session across restarts).
    pub client_id: Option<String>,
    /// How RTP reaches the worker from the cameras (`--rtsp-transport`).
    pub rtsp_transport: RtspTransport,
    /// Face analysis of the cameras' frames.
    #[cfg(feature = "rtsp")]
    pub analysis: anju_faces::analysis::AnalysisConfig,
    /// Where the edge's supervised tasks are registered (shared with the
    /// API's `/readyz` and `/metrics` when one process runs both).
    pub tasks: Arc<Tasks>,
    /// Device timestamps outside this window are dead letters.
    pub ts_window: anju_core::TsWindow,
    /// QR signing keys trusted besides the site's `[qr]` keys (the demo's
    /// own key for its simulated visitor passes).
    pub qr_keys: Vec<anju_rules::qr::VerifyingKey>,
    /// How often the central store's registry counter is polled; when it
    /// moved (a card reported lost, a household moved out, a watch-list
    /// change, a re-import) the registry is reloaded into the rules. Zero:
    /// never (the site file's registry until restart).
    pub registry_refresh: Duration,
}

impl std::fmt::Debug for EdgeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeOptions")
            .field("site", &self.site)
            .field("estate", &self.estate)
            .field("db", &self.db.as_deref().map(anju_store::redact_url))
            .field("mqtt", &self.mqtt)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl EdgeOptions {
    pub fn new(site: impl Into<PathBuf>, estate: impl Into<String>) -> Self {
        Self {
            site: site.into(),
            estate: estate.into(),
            db: None,
            mqtt: DEFAULT_MQTT_URL.to_owned(),
            data_dir: PathBuf::from("data"),
            rules: RulesConfig::default(),
            client_id: None,
            rtsp_transport: RtspTransport::Tcp,
            #[cfg(feature = "rtsp")]
            analysis: anju_faces::analysis::AnalysisConfig::default(),
            tasks: Tasks::new(),
            ts_window: anju_core::TsWindow::default(),
            qr_keys: Vec::new(),
            registry_refresh: Duration::from_secs(5),
        }
    }

    /// URL of the local outbox store.
    pub fn local_url(&self) -> String {
        format!(
            "sqlite://{}/edge-{}.db",
            self.data_dir.display(),
            self.estate
        )
    }
}

/// A running MQTT ingest: its counters, the way in for in-process events,
/// the MQTT client (for publishing) and its tasks.
#[derive(Debug)]
pub struct IngestHandle {
    pub stats: Arc<IngestStats>,
    pub link: Arc<LinkStats>,
    /// In-process events (camera sightings, track notices) into the same
    /// worker.
    pub inject: mpsc::Sender<LocalInput>,
    pub client: AsyncClient,
    pub tasks: Vec<JoinHandle<()>>,
    /// The registry the worker's rules use; replace it with
    /// [`RegistryHandle::replace`].
    pub registry: RegistryHandle,
}

/// The registry an ingest worker's rules use. A restarted worker starts
/// from the latest one.
#[derive(Debug, Clone)]
pub struct RegistryHandle {
    current: Arc<std::sync::RwLock<Arc<Registry>>>,
    inject: mpsc::Sender<LocalInput>,
}

impl RegistryHandle {
    fn get(&self) -> Arc<Registry> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Hands a newer registry to the running worker (credentials,
    /// registrations, watch list; devices stay as started).
    pub async fn replace(&self, reg: Arc<Registry>) {
        match self.current.write() {
            Ok(mut g) => *g = reg.clone(),
            Err(p) => *p.into_inner() = reg.clone(),
        }
        if self.inject.send(LocalInput::Registry(reg)).await.is_err() {
            tracing::warn!("Registry not handed to the ingest worker: it has stopped.");
        }
    }
}

impl IngestHandle {
    /// Waits for the tasks (after the token was cancelled).
    pub async fn join(self) {
        for t in self.tasks {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "An ingest task failed.");
            }
        }
    }
}

/// Starts the poll loop and the worker of one estate, each supervised
/// (`mqtt:<estate>`, `ingest:<estate>` in `tasks`): a failure or a panic is
/// logged, counted, and the loop started again after a backoff on the same
/// channels — the broker session and the queued messages survive it. A
/// restarted worker begins with a fresh rules engine (pending correlations
/// of the moment are lost, which the log says); stored events are not.
///
/// # Errors
/// A bad MQTT URL.
#[allow(clippy::too_many_arguments)]
pub fn spawn_ingest(
    mqtt: &MqttConfig,
    worker: WorkerConfig,
    registry: Arc<Registry>,
    tz: Tz,
    rules: RulesConfig,
    store: Store,
    tasks: &Tasks,
    cancel: CancellationToken,
) -> anyhow::Result<IngestHandle> {
    let (client, eventloop) = AsyncClient::new(mqtt.options(true)?, mqtt.channel);
    let (tx, rx) = mpsc::channel(mqtt.channel);
    let (inject, local_rx) = mpsc::channel(mqtt.channel);
    let link = Arc::new(LinkStats::default());
    let estate = worker.estate.clone();
    let stats = Arc::new(IngestStats::default());
    let span = tracing::info_span!("mqtt", estate = %estate);
    let eventloop = Arc::new(tokio::sync::Mutex::new(eventloop));
    let poll = {
        let (client, link, c) = (client.clone(), link.clone(), cancel.clone());
        let topics = topic::subscriptions(&estate);
        tokio::spawn(
            anju_backoff::supervise(
                tasks.register(format!("mqtt:{estate}")),
                cancel.clone(),
                move || {
                    let (client, el, topics, tx, link, c) = (
                        client.clone(),
                        eventloop.clone(),
                        topics.clone(),
                        tx.clone(),
                        link.clone(),
                        c.clone(),
                    );
                    async move {
                        let mut el = el.lock().await;
                        poll_loop(client, &mut el, topics, tx, link, c).await;
                        Ok::<(), std::convert::Infallible>(())
                    }
                },
            )
            .instrument(span.clone()),
        )
    };
    let receivers = Arc::new(tokio::sync::Mutex::new((rx, local_rx)));
    let current = RegistryHandle {
        current: Arc::new(std::sync::RwLock::new(registry)),
        inject: inject.clone(),
    };
    let registry = current.clone();
    let work = {
        let (client, st, c) = (client.clone(), stats.clone(), cancel.clone());
        let mut first = true;
        tokio::spawn(
            anju_backoff::supervise(
                tasks.register(format!("ingest:{estate}")),
                cancel,
                move || {
                    if !std::mem::take(&mut first) {
                        tracing::warn!(
                            "The ingest worker restarts with a fresh rules engine: correlations pending at the failure are not judged."
                        );
                    }
                    let w = Worker::new(
                        worker.clone(),
                        registry.get(),
                        tz,
                        rules.clone(),
                        store.clone(),
                        client.clone(),
                    )
                    .with_stats(st.clone());
                    let (receivers, c) = (receivers.clone(), c.clone());
                    async move {
                        let mut g = receivers.lock().await;
                        let (mqtt, local) = &mut *g;
                        w.run(mqtt, local, c).await;
                        Ok::<(), std::convert::Infallible>(())
                    }
                },
            )
            .instrument(span),
        )
    };
    Ok(IngestHandle {
        stats,
        link,
        inject,
        client,
        tasks: vec![poll, work],
        registry: current,
    })
}

/// What [`run_edge`] started, for tests and monitoring.
#[derive(Debug)]
pub struct EdgeHandle {
    pub ingest: IngestHandle,
    pub forward: Option<Arc<ForwardStats>>,
    pub local: Store,
    /// The cameras' face analysis (`None`: no cameras, or the face engine
    /// could not start).
    #[cfg(feature = "rtsp")]
    pub analysis: Option<Arc<anju_faces::analysis::Analysis>>,
    forwarder: Option<JoinHandle<()>>,
}

impl EdgeHandle {
    pub async fn join(self) {
        self.ingest.join().await;
        if let Some(f) = self.forwarder {
            if let Err(e) = f.await {
                tracing::error!(error = %e, "The forwarder task failed.");
            }
        }
        self.local.close().await;
    }
}

/// Starts an edge worker and returns at once.
///
/// # Errors
/// An unloadable site, an unknown estate, a local store that cannot be
/// opened, a bad MQTT URL.
pub async fn start_edge(
    opts: EdgeOptions,
    cancel: CancellationToken,
) -> anyhow::Result<EdgeHandle> {
    let site = anju_site::load(&opts.site).map_err(|e| anyhow::anyhow!("{e}"))?;
    anyhow::ensure!(
        site.registry
            .estates
            .iter()
            .any(|e| e.code.as_str() == opts.estate),
        "estate {:?} is not in the site file {}",
        opts.estate,
        opts.site.display()
    );
    let local_url = opts.local_url();
    let local = Store::connect(&local_url)
        .await
        .with_context(|| format!("opening the local store {local_url}"))?;
    let client_id = opts
        .client_id
        .clone()
        .unwrap_or_else(|| format!("anju-edge-{}", opts.estate));
    let (forward, forwarder) = match &opts.db {
        Some(url) => {
            // Supervised: a forwarder whose local store failed (or that
            // panicked) is logged, counted and started again after a backoff.
            let stats = Arc::new(ForwardStats::default());
            let health = opts.tasks.register(format!("forwarder:{}", opts.estate));
            let (local_f, url_f, origin, st) =
                (local.clone(), url.clone(), client_id.clone(), stats.clone());
            let c = cancel.clone();
            let span = tracing::info_span!("forwarder", estate = %opts.estate);
            let h = tokio::spawn(
                anju_backoff::supervise(health, cancel.clone(), move || {
                    let f = Forwarder::new(local_f.clone(), url_f.clone(), origin.clone())
                        .with_stats(st.clone());
                    f.run(c.clone())
                })
                .instrument(span),
            );
            (Some(stats), Some(h))
        }
        None => (None, None),
    };
    let mut mqtt = MqttConfig::new(opts.mqtt.clone(), client_id);
    mqtt.username = std::env::var("ANJU_MQTT_USERNAME").ok();
    mqtt.password = std::env::var("ANJU_MQTT_PASSWORD").ok();
    let mut wcfg = WorkerConfig::new(opts.estate.clone());
    // With a central store, the centre owns the alerts: this edge fuses,
    // raises the instant rules and forwards findings and passages.
    wcfg.role = if opts.db.is_some() {
        anju_rules::engine::Role::Edge
    } else {
        anju_rules::engine::Role::All
    };
    wcfg.qr = crate::worker::pass_checker_for_site(&site, &opts.qr_keys)?;
    wcfg.ts_window = opts.ts_window;
    wcfg.retention = site.retention;
    #[cfg(feature = "rtsp")]
    let cancel_cams = cancel.clone();
    let cancel_reg = cancel.clone();
    let ingest = spawn_ingest(
        &mqtt,
        wcfg,
        Arc::new(site.registry.clone()),
        site.timezone,
        opts.rules.clone(),
        local.clone(),
        &opts.tasks,
        cancel,
    )?;
    if let Some(url) = &opts.db {
        spawn_registry_refresh(
            url.clone(),
            opts.registry_refresh,
            ingest.registry.clone(),
            &opts.tasks,
            &opts.estate,
            cancel_reg,
        );
    }
    #[cfg(feature = "rtsp")]
    let analysis = match start_analysis(
        &opts,
        site.retention,
        &site.registry,
        &local,
        &ingest.inject,
    )
    .await
    {
        Some((a, source)) => {
            opts.tasks.adopt(a.engine_health());
            a.spawn_retention(cancel_cams.clone());
            spawn_gallery_refresh(
                source,
                opts.analysis.gallery_refresh,
                site.registry.clone(),
                a.clone(),
                cancel_cams.clone(),
            );
            Some(a)
        }
        None => None,
    };
    #[cfg(feature = "rtsp")]
    start_cameras(
        &site.registry,
        &opts.estate,
        opts.rtsp_transport,
        &ingest.inject,
        analysis.as_ref(),
        &opts.tasks,
        &cancel_cams,
    );
    info!(estate = %opts.estate, mqtt = %opts.mqtt, local = %local_url, "Edge worker running.");
    Ok(EdgeHandle {
        ingest,
        forward,
        local,
        #[cfg(feature = "rtsp")]
        analysis,
        forwarder,
    })
}

/// Runs an edge worker until `cancel` fires, then drains and returns.
///
/// # Errors
/// As [`start_edge`].
pub async fn run_edge(opts: EdgeOptions, cancel: CancellationToken) -> anyhow::Result<()> {
    let h = start_edge(opts, cancel.clone()).await?;
    let mut every = tokio::time::interval(PROGRESS_EVERY);
    every.tick().await;
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = every.tick() => log_progress(&h),
        }
    }
    h.join().await;
    Ok(())
}

/// How often a running edge logs its counters.
const PROGRESS_EVERY: Duration = Duration::from_secs(60);

/// One line of counters (since start) for operators reading the log.
fn log_progress(h: &EdgeHandle) {
    let (s, l) = (&h.ingest.stats, &h.ingest.link);
    let g = IngestStats::get;
    let forwarded = h.forward.as_ref().map(|f| g(&f.events));
    let forward_failures = h.forward.as_ref().map(|f| g(&f.failures));
    info!(
        connects = g(&l.connects),
        received = g(&l.received),
        stored = g(&s.stored),
        duplicates = g(&s.duplicates),
        dead_letters = g(&s.dead_letters),
        acked = g(&s.acked),
        mqtt_waiting = g(&s.outgoing_waiting),
        alerts = g(&s.alerts),
        decisions = g(&s.decisions),
        forwarded,
        forward_failures,
        "Edge progress."
    );
    #[cfg(feature = "rtsp")]
    if let Some(a) = &h.analysis {
        let st = &a.stats;
        info!(
            frames_analysed = g(&st.frames_analysed),
            frames_refused = g(&st.frames_dropped),
            faces = g(&st.faces),
            tracks = g(&st.tracks_closed),
            persons = g(&st.sightings_person),
            strangers = g(&st.sightings_stranger),
            "Face analysis progress."
        );
    }
}

/// Starts the face analysis when the estate has cameras: enrolled templates
/// from the central store (`--db`; the local one without it), the stranger
/// gallery from the local store. Failures are logged; the cameras then run
/// without analysis (health only).
#[cfg(feature = "rtsp")]
async fn start_analysis(
    opts: &EdgeOptions,
    retention: anju_core::Retention,
    registry: &Registry,
    local: &Store,
    inject: &mpsc::Sender<LocalInput>,
) -> Option<(Arc<anju_faces::analysis::Analysis>, TemplateSource)> {
    let has_cameras = registry.devices.iter().any(|d| {
        d.estate.as_str() == opts.estate
            && d.kind == anju_core::DeviceKind::Camera
            && d.url.is_some()
    });
    if !has_cameras {
        return None;
    }
    let mut source = TemplateSource {
        db: opts.db.clone(),
        central: None,
        local: local.clone(),
        model: opts.analysis.model.clone(),
    };
    let templates = source.load().await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "Enrolled faces not loaded: every face is a stranger until they are (retried every {:?}).", opts.analysis.gallery_refresh);
            Vec::new()
        });
    let mut cfg = opts.analysis.clone();
    cfg.snapshot_retention_days = retention.snapshots_days;
    cfg.stranger_retention_days = retention.strangers_days;
    if cfg.snapshots.is_none() {
        cfg.snapshots = Some(opts.data_dir.join("snapshots"));
    }
    match anju_faces::analysis::Analysis::start(
        &opts.estate,
        cfg,
        registry,
        &templates,
        local.clone(),
        inject.clone(),
    )
    .await
    {
        Ok(a) => Some((a, source)),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "Face analysis not started: cameras run for health only.");
            None
        }
    }
}

/// Where the enrolled templates come from: the central store (`db`), else
/// the local one. The central connection is opened on first use and kept
/// for the refreshes (opening a store runs its migration check); a failure
/// drops it, and the next load reconnects.
#[cfg(feature = "rtsp")]
struct TemplateSource {
    db: Option<String>,
    central: Option<Store>,
    local: Store,
    model: String,
}

#[cfg(feature = "rtsp")]
impl TemplateSource {
    /// The enrolled templates of the model; 15 s at most.
    async fn load(&mut self) -> anyhow::Result<Vec<(String, Vec<f32>)>> {
        let load = async {
            let Some(url) = &self.db else {
                return self.local.face_templates(&self.model).await;
            };
            let central = match &mut self.central {
                Some(c) => c,
                slot @ None => slot.insert(Store::connect(url).await?),
            };
            let t = central.face_templates(&self.model).await?;
            if t.is_empty() {
                // Enrolled with another engine (e.g. before chips were aligned on dlib's
                // five points): those templates are not comparable, and nobody would be
                // recognised without a word.
                for (key, n) in central.face_template_keys().await? {
                    if key != self.model {
                        tracing::error!(templates = n, key = %key, engine = %self.model, "Face templates were enrolled with another engine and are not used: re-enrol the photos (anju import, or POST /persons/{{id}}/faces).");
                    }
                }
            }
            Ok(t)
        };
        let r = match tokio::time::timeout(Duration::from_secs(15), load).await {
            Ok(r) => r.map_err(anyhow::Error::from),
            Err(_) => Err(anyhow::anyhow!("the store did not answer in 15 s")),
        };
        if r.is_err() {
            if let Some(c) = self.central.take() {
                c.close().await;
            }
        }
        r
    }
}

/// Reloads the enrolled templates every `every` and swaps the gallery when
/// they changed (enrolments made after start, or a central store that was
/// unreachable at start).
#[cfg(feature = "rtsp")]
fn spawn_gallery_refresh(
    mut source: TemplateSource,
    every: Duration,
    registry: Registry,
    analysis: Arc<anju_faces::analysis::Analysis>,
    cancel: CancellationToken,
) {
    if every.is_zero() {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            match source.load().await {
                Ok(t) => {
                    if let Err(e) = analysis.refresh_gallery(&registry, &t).await {
                        tracing::warn!(error = %e, "Face gallery not reloaded.");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Enrolled faces not reloaded; the current gallery stays.")
                }
            }
        }
        if let Some(c) = source.central.take() {
            c.close().await;
        }
    });
}

/// Starts the estate's cameras and a health watch that reports a camera
/// without frames for 60 s as offline (a `status` event into the worker,
/// which the rules turn into `device_offline`), and back online.
#[cfg(feature = "rtsp")]
fn start_cameras(
    registry: &Registry,
    estate: &str,
    transport: RtspTransport,
    inject: &mpsc::Sender<LocalInput>,
    analysis: Option<&Arc<anju_faces::analysis::Analysis>>,
    tasks: &Tasks,
    cancel: &CancellationToken,
) {
    use anju_camera::rtsp::CameraConfig;
    use anju_camera::CameraSource as _;
    let user = std::env::var("ANJU_RTSP_USERNAME").ok();
    let pass = std::env::var("ANJU_RTSP_PASSWORD").ok();
    for d in registry
        .devices
        .iter()
        .filter(|d| d.estate.as_str() == estate && d.kind == anju_core::DeviceKind::Camera)
    {
        let Some(url) = &d.url else { continue };
        let mut cfg = CameraConfig::new(d.id.as_str(), url.clone());
        cfg.username = user.clone();
        cfg.password = pass.clone();
        cfg.transport = transport;
        let cam = match cfg.spawn(cancel.clone()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(camera = %d.id, error = %format!("{e:#}"), "Camera not started.");
                continue;
            }
        };
        if let Some(a) = analysis {
            // Supervised: a frame the engine fails on ends this camera's
            // analysis run, which is then down (in /readyz) and restarted.
            let (a, id, faces, slot, c) = (
                a.clone(),
                d.id.to_string(),
                d.faces,
                cam.slot.clone(),
                cancel.clone(),
            );
            tokio::spawn(
                anju_backoff::supervise(
                    tasks.register(format!("faces:{}", d.id)),
                    cancel.clone(),
                    move || {
                        a.clone()
                            .run_camera(id.clone(), faces, slot.clone(), c.clone())
                    },
                )
                .instrument(tracing::info_span!("faces", camera = %d.id)),
            );
        }
        let analysed = analysis.is_some();
        let (inject, cancel, id) = (inject.clone(), cancel.clone(), d.id.clone());
        tokio::spawn(async move {
            let started = chrono::Utc::now();
            let mut online: Option<bool> = None;
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => break,
                    _ = tick.tick() => {}
                }
                // Without analysis, keep the slot from counting every frame
                // as dropped.
                if !analysed {
                    cam.slot.try_take();
                }
                let now = chrono::Utc::now();
                let off = cam
                    .health
                    .is_offline(now, started, std::time::Duration::from_secs(60));
                if online != Some(!off) && (off || cam.health.last_frame().is_some()) {
                    online = Some(!off);
                    let ev = anju_core::Event::Status {
                        estate: None,
                        device: id.clone(),
                        body: anju_core::StatusEvent {
                            ts: now,
                            online: !off,
                        },
                    };
                    if inject.send(ev.into()).await.is_err() {
                        break;
                    }
                }
            }
        });
    }
}

/// Polls the central store's registry counter every `every` and, when it
/// moved since the last load (and once at start, to pick up what was
/// written through the API since the site file), loads the registry and
/// hands it to the worker: a card reported lost is blocked at this edge
/// seconds later, without a restart. Supervised (`registry:<estate>`); a
/// store that does not answer is logged and tried again at the next tick.
fn spawn_registry_refresh(
    url: String,
    every: Duration,
    handle: RegistryHandle,
    tasks: &Tasks,
    estate: &str,
    cancel: CancellationToken,
) {
    if every.is_zero() {
        return;
    }
    let seen = Arc::new(std::sync::atomic::AtomicI64::new(i64::MIN));
    let c = cancel.clone();
    tokio::spawn(
        anju_backoff::supervise(
            tasks.register(format!("registry:{estate}")),
            cancel,
            move || {
                let (url, handle, seen, cancel) =
                    (url.clone(), handle.clone(), seen.clone(), c.clone());
                async move {
                    registry_refresh_loop(&url, every, &handle, &seen, &cancel).await;
                    Ok::<(), std::convert::Infallible>(())
                }
            },
        )
        .instrument(tracing::info_span!("registry", estate = %estate)),
    );
}

async fn registry_refresh_loop(
    url: &str,
    every: Duration,
    handle: &RegistryHandle,
    seen: &std::sync::atomic::AtomicI64,
    cancel: &CancellationToken,
) {
    use std::sync::atomic::Ordering;
    let mut central: Option<Store> = None;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        let step = async {
            let store = match &mut central {
                Some(c) => c,
                slot @ None => slot.insert(Store::connect(url).await?),
            };
            let v = store.registry_version().await?;
            if v == seen.load(Ordering::Relaxed) {
                return Ok::<_, anju_store::StoreError>(None);
            }
            let reg = store.load_registry().await?;
            Ok(Some((v, reg)))
        };
        match tokio::time::timeout(Duration::from_secs(30), step).await {
            Ok(Ok(None)) => {}
            Ok(Ok(Some((v, reg)))) => {
                seen.store(v, Ordering::Relaxed);
                if reg.estates.is_empty() {
                    // Not imported yet: the site file's registry stays.
                    continue;
                }
                handle.replace(Arc::new(reg)).await;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "Registry not reloaded from the central store; tried again shortly.");
                if let Some(c) = central.take() {
                    c.close().await;
                }
            }
            Err(_) => {
                tracing::warn!("The central store did not answer the registry reload in 30 s.");
                if let Some(c) = central.take() {
                    c.close().await;
                }
            }
        }
    }
    if let Some(c) = central.take() {
        c.close().await;
    }
}
