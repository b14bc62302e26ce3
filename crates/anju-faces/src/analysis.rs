//! Face analysis of camera frames (feature `analysis`): per camera, sampled
//! frames are taken from the latest-frame slot, analysed by the face engine
//! on its own thread ([`FaceWorker::try_submit`]; refused frames are
//! counted), tracked ([`crate::tracker`]), and reported as they live: a
//! track is announced when it opens, decided as soon as it has a few
//! identifiable faces (or at its end) — a `Sighting` of a person (agreement
//! of the track's best faces against the estate gallery) or of a stranger
//! (the estate's stranger gallery), with a direction and a snapshot JPEG of
//! the best face — and announced again when it closes. Fusion at the
//! worker waits for a track's decision before judging a credential event
//! beside it. Sightings go into the worker like MQTT events (local outbox
//! store → rules).

use crate::input::LocalInput;
use crate::strangers::StrangerGallery;
use crate::tracker::{self, Detection, TrackDecision, Tracker, TrackerConfig, Vote};
use anju_camera::{Frame, FrameSlot};
use anju_core::{Direction, Event, EventId, FacesDirection, Registry, Sighting};
use anju_store::Store;
use anju_vision::{
    Decision, EngineConfig, FaceEngine, FaceObservation, FaceWorker, Gallery, Template, VisionError,
};
use image::RgbImage;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// The key of the templates the store holds (`face_templates.model`): the
/// embedder and the landmarks its chips were aligned on.
pub const DEFAULT_MODEL: &str = anju_vision::DEFAULT_TEMPLATE_KEY;

/// Settings of the camera analysis.
#[derive(Debug, Clone)]
pub struct AnalysisConfig {
    pub engine: EngineConfig,
    /// Face-engine threads shared by the estate's cameras (0: one per core).
    pub engine_threads: usize,
    /// Embedder name of the stored templates.
    pub model: String,
    pub tracker: TrackerConfig,
    /// Least number of agreeing faces for a decision.
    pub min_votes: usize,
    /// Vertical motion (face heights) needed to infer a direction.
    pub min_motion: f32,
    /// Direction of a face moving down the image; `None`: only the camera's
    /// `faces` setting gives the direction.
    pub down_is: Option<Direction>,
    /// Stranger clustering threshold (cosine); `None`: the embedder's
    /// FAR 1e-3 threshold.
    pub stranger_threshold: Option<f32>,
    /// A folder of snapshot files an older version wrote (`anju edge`:
    /// `<data_dir>/snapshots`), pruned by the retention task. Snapshots
    /// are now kept in the local store.
    pub snapshots: Option<PathBuf>,
    /// Snapshots older than this many days are deleted; 0 keeps none (and
    /// evidence then has no face image).
    pub snapshot_retention_days: u32,
    /// Stranger templates not seen for this many days are forgotten (in
    /// memory and in the local store).
    pub stranger_retention_days: u32,
    /// With no frame for this long, the tracker counts a missed frame.
    pub idle_tick: Duration,
    /// How often `anju edge` reloads the enrolled templates (new enrolments,
    /// a central store that was unreachable at start).
    pub gallery_refresh: Duration,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self {
            engine: EngineConfig::default(),
            engine_threads: 0,
            model: DEFAULT_MODEL.to_owned(),
            tracker: TrackerConfig::default(),
            min_votes: 1,
            min_motion: 0.5,
            down_is: None,
            stranger_threshold: None,
            snapshots: None,
            snapshot_retention_days: 7,
            stranger_retention_days: 30,
            idle_tick: Duration::from_secs(1),
            gallery_refresh: Duration::from_secs(60),
        }
    }
}

/// Counters of the analysis of one estate (all cameras).
#[derive(Debug, Default)]
pub struct AnalysisStats {
    pub frames_analysed: AtomicU64,
    /// Frames refused because the face engine's queue was full.
    pub frames_dropped: AtomicU64,
    pub faces: AtomicU64,
    /// Faces good enough to identify, embedded (the costly step).
    pub templates: AtomicU64,
    pub tracks_closed: AtomicU64,
    pub sightings_person: AtomicU64,
    pub sightings_stranger: AtomicU64,
    /// Tracks without agreement (or without identifiable faces).
    pub undecided: AtomicU64,
    pub errors: AtomicU64,
}

impl AnalysisStats {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// What the cameras of one estate share.
pub struct Analysis {
    pub estate: String,
    pub cfg: AnalysisConfig,
    pub worker: Arc<FaceWorker>,
    /// The enrolled faces and the fingerprint of the templates they were
    /// built from; swapped whole by [`Analysis::refresh_gallery`].
    gallery: std::sync::RwLock<(u64, Arc<Gallery>)>,
    pub strangers: Arc<Mutex<StrangerGallery>>,
    /// The local (outbox) store: the stranger gallery lives there.
    pub local: Store,
    pub inject: mpsc::Sender<LocalInput>,
    pub stats: Arc<AnalysisStats>,
}

impl std::fmt::Debug for Analysis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analysis")
            .field("estate", &self.estate)
            .field("gallery", &self.gallery().len())
            .finish_non_exhaustive()
    }
}

/// Adds the estate's enrolled templates to `gallery`: occupants of the
/// estate's units, and watch-list persons (flagged). Returns how many.
pub fn fill_gallery(
    gallery: &mut Gallery,
    registry: &Registry,
    estate: &str,
    templates: &[(String, Vec<f32>)],
) -> usize {
    use std::collections::HashSet;
    let occupants: HashSet<&str> = registry
        .persons
        .iter()
        .filter(|p| p.unit.estate.as_str() == estate)
        .map(|p| p.id.as_str())
        .collect();
    let watch: HashSet<&str> = registry
        .watchlist
        .iter()
        .map(|w| w.person.as_str())
        .collect();
    let mut n = 0;
    for (person, v) in templates {
        let (occ, w) = (
            occupants.contains(person.as_str()),
            watch.contains(person.as_str()),
        );
        if !occ && !w {
            continue;
        }
        let Some(t) = Template::from_raw(v.clone()) else {
            continue;
        };
        if gallery.add(person, w, &t).is_ok() {
            n += 1;
        }
    }
    n
}

/// A fingerprint of a template list (persons and vectors, in order).
fn templates_fingerprint(templates: &[(String, Vec<f32>)]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    templates.len().hash(&mut h);
    for (person, v) in templates {
        person.hash(&mut h);
        for x in v {
            x.to_bits().hash(&mut h);
        }
    }
    h.finish()
}

/// Frames the face engine's queue holds. Each camera has at most one
/// frame in the engine at a time (it awaits the result before taking the
/// next from its latest-frame slot), so the queue holds at most one frame
/// per camera and a frame waits at most one analysis per other camera: a
/// camera is refused only beyond this many cameras per engine. Too small a
/// queue (it was 4) refused frames whenever more cameras than that sampled
/// at the same moment, with the engine mostly idle (bench/README.md, "Edge
/// ingest"). When the engine cannot keep up, frames are overwritten in the
/// slots instead (counted per camera as `slot.dropped`): the freshest frame
/// is analysed, and the lag stays bounded.
pub const ENGINE_QUEUE: usize = 64;

impl Analysis {
    /// Starts the face engine thread, builds the estate gallery from
    /// `templates` and loads the stranger gallery from the local store.
    ///
    /// # Errors
    /// The face engine cannot start (ONNX Runtime or models missing), the
    /// local store fails.
    pub async fn start(
        estate: &str,
        cfg: AnalysisConfig,
        registry: &Registry,
        templates: &[(String, Vec<f32>)],
        local: Store,
        inject: mpsc::Sender<LocalInput>,
    ) -> anyhow::Result<Arc<Self>> {
        let engine_cfg = cfg.engine.clone();
        let est = estate.to_owned();
        let threads = anju_vision::engine_threads(cfg.engine_threads);
        info!(%estate, threads, "Starting the face engines.");
        let (worker, mut gallery, thresholds, key) = tokio::task::spawn_blocking(move || {
            let w = FaceWorker::spawn_pool(engine_cfg, ENGINE_QUEUE, threads)?;
            let (g, t, key) = w.call(move |e: &mut FaceEngine| {
                (e.new_gallery(&est), e.thresholds(), e.template_key())
            })?;
            Ok::<_, VisionError>((w, g, t, key))
        })
        .await??;
        if key != cfg.model {
            error!(engine = %key, templates = %cfg.model, "The face engine makes templates of another kind than the ones loaded: nobody will be recognised. Re-enrol (anju import) or configure the engine that made them.");
        }
        let n = fill_gallery(&mut gallery, registry, estate, templates);
        // The rules judge misuse by faces only for households the cameras can recognise.
        if inject.send(enrolled(&gallery)).await.is_err() {
            warn!(%estate, "The ingest worker is gone; enrolled faces not announced.");
        }
        let stored = local.strangers(estate, &cfg.model).await?;
        let threshold = cfg.stranger_threshold.unwrap_or(thresholds.far_1e3);
        let strangers = StrangerGallery::new(estate, cfg.model.clone(), threshold, stored);
        info!(
            estate,
            templates = n,
            strangers = strangers.len(),
            "Face analysis ready."
        );
        Ok(Arc::new(Self {
            estate: estate.to_owned(),
            cfg,
            worker: Arc::new(worker),
            gallery: std::sync::RwLock::new((templates_fingerprint(templates), Arc::new(gallery))),
            strangers: Arc::new(Mutex::new(strangers)),
            local,
            inject,
            stats: Arc::new(AnalysisStats::default()),
        }))
    }

    /// Another view of the same estate's analysis with its own counters:
    /// the same engine worker, stranger gallery and stores, and the enrolled
    /// gallery as of now (later [`Analysis::refresh_gallery`] calls on
    /// `self` do not reach it). Used to count per camera (benchmarks).
    #[must_use]
    pub fn sibling(&self) -> Self {
        Self {
            estate: self.estate.clone(),
            cfg: self.cfg.clone(),
            worker: self.worker.clone(),
            gallery: std::sync::RwLock::new(self.gallery_entry()),
            strangers: self.strangers.clone(),
            local: self.local.clone(),
            inject: self.inject.clone(),
            stats: Arc::new(AnalysisStats::default()),
        }
    }

    /// The gallery of enrolled faces in use now.
    pub fn gallery(&self) -> Arc<Gallery> {
        self.gallery_entry().1
    }

    /// The gallery with its templates' fingerprint.
    fn gallery_entry(&self) -> (u64, Arc<Gallery>) {
        self.gallery
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Rebuilds the gallery from `templates` (as [`fill_gallery`]) when they
    /// differ from those it was built from, and swaps it in: tracks decided
    /// afterwards use it. Returns the new gallery's size, `None` when nothing
    /// changed.
    ///
    /// # Errors
    /// The face engine is gone.
    pub async fn refresh_gallery(
        &self,
        registry: &Registry,
        templates: &[(String, Vec<f32>)],
    ) -> anyhow::Result<Option<usize>> {
        let fp = templates_fingerprint(templates);
        if fp == self.gallery_entry().0 {
            return Ok(None);
        }
        let (worker, est) = (self.worker.clone(), self.estate.clone());
        let mut gallery = tokio::task::spawn_blocking(move || {
            worker.call(move |e: &mut FaceEngine| e.new_gallery(&est))
        })
        .await??;
        let n = fill_gallery(&mut gallery, registry, &self.estate, templates);
        let announce = enrolled(&gallery);
        *self
            .gallery
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (fp, Arc::new(gallery));
        info!(estate = %self.estate, templates = n, "Face gallery reloaded.");
        if self.inject.send(announce).await.is_err() {
            warn!(estate = %self.estate, "The ingest worker is gone; enrolled faces not announced.");
        }
        Ok(Some(n))
    }

    /// Starts the retention task (hourly): snapshots past their days are
    /// deleted, strangers not seen for their days forgotten, in memory and
    /// in the local store. Failures are logged and tried again next hour.
    pub fn spawn_retention(self: &Arc<Self>, cancel: CancellationToken) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => break,
                    _ = tick.tick() => {}
                }
                me.retention_pass().await;
            }
        });
    }

    /// One pass of the retention task.
    pub async fn retention_pass(&self) {
        if let Some(dir) = self.cfg.snapshots.clone() {
            let keep = Duration::from_secs(u64::from(self.cfg.snapshot_retention_days) * 86_400);
            if let Some(cutoff) = SystemTime::now().checked_sub(keep) {
                match tokio::task::spawn_blocking(move || prune_snapshots(&dir, cutoff)).await {
                    Ok(Ok(n)) if n > 0 => info!(deleted = n, "Old snapshots deleted."),
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => warn!(error = %e, "Snapshot retention failed."),
                    Err(e) => warn!(error = %e, "Snapshot retention task failed."),
                }
            }
        }
        if let Some(before) =
            anju_core::Retention::cutoff(chrono::Utc::now(), self.cfg.snapshot_retention_days)
        {
            match self.local.prune_snapshot_images(before).await {
                Ok(0) => {}
                Ok(n) => info!(
                    deleted = n,
                    "Stored snapshots past their retention deleted."
                ),
                Err(e) => warn!(error = %e, "Stored snapshots not pruned; tried again in an hour."),
            }
        }
        let Some(cutoff) =
            anju_core::Retention::cutoff(chrono::Utc::now(), self.cfg.stranger_retention_days)
        else {
            return;
        };
        let forgotten = self.strangers.lock().await.forget_before(cutoff);
        match self.local.prune_strangers(&self.estate, cutoff).await {
            Ok(n) if n > 0 || forgotten > 0 => {
                info!(
                    forgotten,
                    deleted = n,
                    "Strangers past their retention forgotten."
                );
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "Stranger retention failed; tried again in an hour."),
        }
    }

    /// Runs the analysis of one camera until `cancel` fires.
    ///
    /// # Errors
    /// A frame the engine failed on (the engine thread gone, an inference
    /// error): the camera's open tracks are closed and reported first. The
    /// caller supervises it (`faces:<camera>`), so the camera is unhealthy,
    /// not silently idle, until analysis runs again.
    pub async fn run_camera(
        self: Arc<Self>,
        camera: String,
        faces: Option<FacesDirection>,
        slot: Arc<FrameSlot>,
        cancel: CancellationToken,
    ) -> Result<(), VisionError> {
        let mut tracker: Tracker<Option<RgbImage>> = Tracker::new(self.cfg.tracker);
        let mut failure = None;
        loop {
            let frame = tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                f = tokio::time::timeout(self.cfg.idle_tick, slot.take()) => f.ok(),
            };
            let closed = match frame {
                None => tracker.update(chrono::Utc::now(), Vec::new()),
                Some(f) => match self.analyse(&f).await {
                    Ok(Some(dets)) => tracker.update(f.decoded_at, dets),
                    Ok(None) => continue,
                    Err(e) => {
                        self.stats.errors.fetch_add(1, Ordering::Relaxed);
                        error!(camera, error = %e, "Face analysis failed on a frame.");
                        failure = Some(e);
                        break;
                    }
                },
            };
            if !self.report(&camera, faces, &mut tracker, closed).await {
                return Ok(());
            }
        }
        let closed = tracker.flush();
        self.report(&camera, faces, &mut tracker, closed).await;
        failure.map_or(Ok(()), Err)
    }

    /// The face engine thread's health (for a process's task book).
    pub fn engine_health(&self) -> Arc<anju_backoff::TaskHealth> {
        self.worker.health()
    }

    /// Reports what the tracker learned from the last frame: tracks opened,
    /// live tracks decided, tracks closed (decided first if they were not
    /// yet). `false` when the worker is gone.
    async fn report(
        &self,
        camera: &str,
        faces: Option<FacesDirection>,
        tracker: &mut Tracker<Option<RgbImage>>,
        closed: Vec<tracker::ClosedTrack<Option<RgbImage>>>,
    ) -> bool {
        for (id, ts) in tracker.take_opened() {
            let key = track_key(camera, ts, id);
            let n = LocalInput::TrackOpened {
                camera: camera.to_owned(),
                key,
                ts,
            };
            if self.inject.send(n).await.is_err() {
                return false;
            }
        }
        for t in tracker.ready() {
            if let Some(ev) = self.decide(camera, faces, &t).await {
                tracker.mark_decided(t.id);
                if self.inject.send(ev.into()).await.is_err() {
                    return false;
                }
            }
        }
        for t in closed {
            self.stats.tracks_closed.fetch_add(1, Ordering::Relaxed);
            if !t.decided {
                match self.decide(camera, faces, &t).await {
                    Some(ev) => {
                        if self.inject.send(ev.into()).await.is_err() {
                            return false;
                        }
                    }
                    None => {
                        self.stats.undecided.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            let n = LocalInput::TrackClosed {
                camera: camera.to_owned(),
                key: track_key(camera, t.first_ts, t.id),
                ts: t.last_ts,
            };
            if self.inject.send(n).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Runs the engine on one frame; `Ok(None)` when the engine's queue was
    /// full (frame dropped) or the frame is malformed.
    async fn analyse(
        &self,
        f: &Frame,
    ) -> Result<Option<Vec<Detection<Option<RgbImage>>>>, VisionError> {
        let Some(img) = RgbImage::from_raw(f.width, f.height, f.rgb.clone()) else {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        };
        let (tx, rx) = oneshot::channel();
        let queued = self.worker.try_submit(
            move |e: &mut FaceEngine| e.analyze(&img).map(|obs| (obs, img)),
            move |r| {
                if tx.send(r).is_err() {
                    debug!("Analysis result not awaited.");
                }
            },
        )?;
        if !queued {
            self.stats.frames_dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        let (obs, img) = rx.await.map_err(|_| VisionError::WorkerStopped)??;
        self.stats.frames_analysed.fetch_add(1, Ordering::Relaxed);
        self.stats
            .faces
            .fetch_add(obs.len() as u64, Ordering::Relaxed);
        let embedded = obs.iter().filter(|o| o.template.is_some()).count();
        self.stats
            .templates
            .fetch_add(embedded as u64, Ordering::Relaxed);
        Ok(Some(obs.into_iter().map(|o| detection(o, &img)).collect()))
    }

    /// Decides a track (live or closed): its sighting, or `None` when its
    /// faces do not agree (yet).
    async fn decide(
        &self,
        camera: &str,
        faces: Option<FacesDirection>,
        t: &tracker::ClosedTrack<Option<RgbImage>>,
    ) -> Option<Event> {
        let gallery = self.gallery();
        let votes: Vec<Vote> = t
            .best
            .iter()
            .filter_map(|(_, v)| Template::from_raw(v.clone()))
            .map(|q| {
                let id = gallery.identify(&q);
                match (id.decision, id.best) {
                    (Decision::Identified, Some(m)) => Vote::Person(m.person_id, m.similarity),
                    (Decision::Ambiguous, _) => Vote::Ambiguous,
                    _ => Vote::Unknown,
                }
            })
            .collect();
        let (person, stranger, score) = match tracker::decide(&votes, self.cfg.min_votes) {
            TrackDecision::Person(p, s) => (Some(p), None, Some(s)),
            TrackDecision::Stranger => {
                let mean = t.mean_template()?;
                let a = self.strangers.lock().await.assign(&mean, t.best_ts)?;
                if let Err(e) = self.local.upsert_stranger(&a.stranger).await {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    warn!(error = %e, "Stranger not persisted.");
                }
                let score = (!a.created).then_some(a.similarity);
                (None, Some(a.stranger.id), score)
            }
            TrackDecision::Undecided => return None,
        };
        let fixed = match faces {
            Some(FacesDirection::In) => Some(Direction::In),
            Some(FacesDirection::Out) => Some(Direction::Out),
            _ => None,
        };
        let direction = match faces {
            // A camera that sees one direction only: that direction.
            Some(FacesDirection::In | FacesDirection::Out) => fixed,
            _ => tracker::direction(
                t.vertical_motion(),
                self.cfg.min_motion,
                self.cfg.down_is,
                None,
            ),
        };
        let ms = t.best_ts.timestamp_millis();
        let event_id = track_key(camera, t.first_ts, t.id);
        // The best face, kept in the local store (forwarded to the centre
        // with the events) and cited by its API path, never a disk path.
        let snapshot = match &t.best_payload {
            Some((_, Some(crop))) if self.cfg.snapshot_retention_days > 0 => {
                let key = format!("{}.{camera}.{ms}.{}", self.estate, t.id);
                let crop = crop.clone();
                match tokio::task::spawn_blocking(move || encode_jpeg(&crop)).await {
                    Ok(Ok(jpeg)) => {
                        let snap = anju_store::Snapshot {
                            key: key.clone(),
                            estate: self.estate.clone(),
                            camera: camera.to_owned(),
                            taken_at: t.best_ts,
                            jpeg,
                        };
                        match self.local.insert_snapshots(&[snap]).await {
                            Ok(_) => Some(anju_store::snapshot_url(&key)),
                            Err(e) => {
                                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                                warn!(error = %e, "Snapshot not stored.");
                                None
                            }
                        }
                    }
                    Ok(Err(e)) => {
                        warn!(error = %e, "Snapshot not encoded.");
                        None
                    }
                    Err(e) => {
                        warn!(error = %e, "Snapshot task failed.");
                        None
                    }
                }
            }
            _ => None,
        };
        if person.is_some() {
            self.stats.sightings_person.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats
                .sightings_stranger
                .fetch_add(1, Ordering::Relaxed);
        }
        let ev = Event::Sighting {
            estate: Some(self.estate.as_str().into()),
            body: Sighting {
                event_id: Some(EventId::new(event_id)),
                ts: t.best_ts,
                camera: camera.into(),
                person: person.map(Into::into),
                stranger: stranger.map(Into::into),
                score,
                direction,
                snapshot,
            },
        };
        debug!(camera, ?ev, "Sighting.");
        Some(ev)
    }
}

/// The key of a track, also its sighting's event id.
fn track_key(camera: &str, first: anju_core::Timestamp, id: u64) -> String {
    format!("{camera}-{}-{id}", first.timestamp_millis())
}

/// A face observation as a tracker detection, with a crop of the face
/// (30 % margin) as payload.
fn detection(o: FaceObservation, img: &RgbImage) -> Detection<Option<RgbImage>> {
    let b = o.face.bbox;
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    let q = &o.quality;
    let size = (q.width_px / 112.0).clamp(0.0, 1.5);
    let frontal = (1.0 - q.yaw.abs()).clamp(0.0, 1.0);
    let quality = if q.yaw.is_finite() {
        o.face.score * size * frontal
    } else {
        0.0
    };
    let crop = {
        let x0 = (b[0] - 0.3 * w).max(0.0);
        let y0 = (b[1] - 0.3 * h).max(0.0);
        let x1 = (b[2] + 0.3 * w).min(img.width() as f32);
        let y1 = (b[3] + 0.3 * h).min(img.height() as f32);
        (x1 > x0 + 1.0 && y1 > y0 + 1.0).then(|| {
            image::imageops::crop_imm(
                img,
                x0 as u32,
                y0 as u32,
                (x1 - x0) as u32,
                (y1 - y0) as u32,
            )
            .to_image()
        })
    };
    Detection {
        bbox: b,
        quality,
        template: o.template.map(|t| t.0),
        payload: crop,
    }
}

/// A face crop as JPEG (quality 85).
fn encode_jpeg(img: &RgbImage) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85).encode_image(img)?;
    Ok(out)
}

/// Deletes snapshot files last modified before `cutoff` (recursively) and
/// the folders left empty; returns how many files were deleted.
///
/// An entry that cannot be read or deleted (an I/O error, a file another
/// process holds, a folder without permission) is logged and skipped: the
/// rest is still pruned, so one bad file never keeps every later snapshot
/// past its retention.
///
/// # Errors
/// The top folder cannot be read (a missing folder is 0 deleted).
pub fn prune_snapshots(dir: &Path, cutoff: SystemTime) -> std::io::Result<usize> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut n = 0;
    for entry in rd {
        let step = || -> std::io::Result<usize> {
            let entry = entry?;
            let ft = entry.file_type()?;
            let p = entry.path();
            if ft.is_dir() {
                let k = prune_snapshots(&p, cutoff)?;
                if std::fs::read_dir(&p)?.next().is_none() {
                    std::fs::remove_dir(&p)?;
                }
                Ok(k)
            } else if ft.is_file() && entry.metadata()?.modified()? < cutoff {
                std::fs::remove_file(&p)?;
                Ok(1)
            } else {
                Ok(0)
            }
        };
        match step() {
            Ok(k) => n += k,
            Err(e) => {
                warn!(dir = %dir.display(), error = %e, "A snapshot entry could not be pruned; going on.")
            }
        }
    }
    Ok(n)
}

/// The gallery's persons, for the rules (see [`LocalInput::Enrolled`]).
fn enrolled(g: &anju_vision::Gallery) -> LocalInput {
    LocalInput::Enrolled(g.persons().iter().map(|p| p.person_id.clone()).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn prune_deletes_only_old_files_and_empty_folders() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("FCY/2024-01-01/a.jpg");
        let new = dir.path().join("FCY/2024-01-09/b.jpg");
        for p in [&old, &new] {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        let ten_days = SystemTime::now() - Duration::from_secs(10 * 86_400);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(ten_days)
            .unwrap();
        let cutoff = SystemTime::now() - Duration::from_secs(7 * 86_400);
        assert_eq!(prune_snapshots(dir.path(), cutoff).unwrap(), 1);
        assert!(!old.exists());
        assert!(!old.parent().unwrap().exists());
        assert!(new.exists());
        assert_eq!(
            prune_snapshots(&dir.path().join("none"), cutoff).unwrap(),
            0
        );
    }

    #[test]
    fn one_file_that_cannot_be_deleted_does_not_stop_the_pruning() {
        let dir = tempfile::tempdir().unwrap();
        let ten_days = SystemTime::now() - Duration::from_secs(10 * 86_400);
        let old = |p: &Path| {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
            std::fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(ten_days)
                .unwrap();
        };
        // An old snapshot that cannot be deleted (immutable: even root gets
        // EPERM), among twenty that can, in folders of their own.
        let stuck = dir.path().join("FCY/2024-01-01/stuck.jpg");
        old(&stuck);
        let immutable = std::process::Command::new("chattr")
            .arg("+i")
            .arg(&stuck)
            .status()
            .is_ok_and(|s| s.success());
        if !immutable {
            eprintln!("\n!!! SKIPPED: chattr +i is not available on this file system\n");
            return;
        }
        let others: Vec<_> = (0..20)
            .map(|i| dir.path().join(format!("FCY/2024-02-{:02}/s.jpg", i + 1)))
            .collect();
        for p in &others {
            old(p);
        }
        let cutoff = SystemTime::now() - Duration::from_secs(7 * 86_400);
        let n = prune_snapshots(dir.path(), cutoff);
        std::process::Command::new("chattr")
            .arg("-i")
            .arg(&stuck)
            .status()
            .unwrap();
        assert_eq!(n.unwrap(), 20);
        assert!(
            others.iter().all(|p| !p.exists()),
            "pruned past the stuck file"
        );
        assert!(stuck.exists());
    }

    #[test]
    fn jpeg_snapshot_is_encoded() {
        let img = RgbImage::from_pixel(40, 50, image::Rgb([200, 100, 50]));
        let jpeg = encode_jpeg(&img).unwrap();
        let back = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((back.width(), back.height()), (40, 50));
    }
}
