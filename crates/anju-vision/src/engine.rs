//! The face engine: detection -> quality gates -> alignment -> embedding; enrolment; worker thread.

use std::path::PathBuf;
use std::sync::{mpsc, Arc};

use anju_backoff::TaskHealth;
use std::thread::JoinHandle;

use image::RgbImage;

use crate::detector::{DetectRegion, Detector, Face};
use crate::embedder::{Embedder, Template};
use crate::error::{Result, VisionError};
use crate::gallery::{Gallery, MatchThresholds};
use crate::imgproc::{laplacian_variance, warp_antialiased, Similarity};
use crate::landmarks::ShapePredictor;
use crate::manifest::{LandmarkEntry, ModelManifest, Role, Thresholds};

/// Quality gates deciding whether a face may be identified or only tracked.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityConfig {
    /// Minimum face width in source pixels to identify (MODELS.md: recognition drops below ≈ 64 px).
    pub min_identify_width_px: f32,
    /// Minimum Laplacian variance of the aligned chip's grey levels.
    pub min_sharpness: f32,
    /// Maximum |yaw|: nose offset from the eye midpoint along the eye line / eye distance
    /// (0 frontal, ≈ 0.5 at 45°).
    pub max_yaw: f32,
    /// Allowed pitch ratio: (nose − eyes) / (mouth − eyes) perpendicular to the eye line
    /// (≈ 0.5 frontal).
    pub pitch_range: [f32; 2],
    /// Maximum in-plane roll in degrees (alignment removes roll, but extreme roll means a bad pose).
    pub max_roll_deg: f32,
}

impl Default for QualityConfig {
    fn default() -> Self {
        QualityConfig {
            min_identify_width_px: 64.0,
            min_sharpness: 20.0,
            max_yaw: 0.45,
            pitch_range: [0.2, 0.85],
            max_roll_deg: 45.0,
        }
    }
}

/// What may be done with a detected face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaceUse {
    Identify,
    TrackOnly,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Quality {
    pub width_px: f32,
    pub sharpness: f32,
    pub yaw: f32,
    pub pitch: f32,
    pub roll_deg: f32,
    pub use_as: FaceUse,
    /// Gates that failed (empty when `use_as == Identify`).
    pub failed: Vec<&'static str>,
}

/// Pose estimate from the first four keypoints: (yaw, pitch, roll in degrees).
pub fn pose(kps: &[[f32; 2]]) -> Option<(f32, f32, f32)> {
    if kps.len() < 4 {
        return None;
    }
    let (re, le, nose, mouth) = (kps[0], kps[1], kps[2], kps[3]);
    let ex = le[0] - re[0];
    let ey = le[1] - re[1];
    let d = ex.hypot(ey);
    if d <= f32::EPSILON {
        return None;
    }
    let (ux, uy) = (ex / d, ey / d);
    let mid = [(re[0] + le[0]) / 2.0, (re[1] + le[1]) / 2.0];
    let (nx, ny) = (nose[0] - mid[0], nose[1] - mid[1]);
    let (mx, my) = (mouth[0] - mid[0], mouth[1] - mid[1]);
    let yaw = (nx * ux + ny * uy) / d;
    let perp = |x: f32, y: f32| -x * uy + y * ux;
    let mouth_perp = perp(mx, my);
    let pitch = if mouth_perp.abs() > f32::EPSILON {
        perp(nx, ny) / mouth_perp
    } else {
        0.0
    };
    let roll = ey.atan2(ex).to_degrees();
    Some((yaw, pitch, roll))
}

/// Engine configuration: which models, where to detect, flip averaging, quality gates.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// `models/manifest.toml`; `None` finds the repository's manifest.
    pub manifest: Option<PathBuf>,
    /// Detector / embedder names from the manifest; `None` uses the manifest defaults.
    pub detector: Option<String>,
    pub embedder: Option<String>,
    pub region: DetectRegion,
    /// Landmark model aligning the chips (from the manifest); `None` takes the manifest's default,
    /// `"none"` aligns on the detector's four keypoints.
    pub landmarks: Option<String>,
    /// Embed each chip and its mirror image (≈ +1–5 points TAR at 2× embedder cost).
    pub flip: bool,
    pub quality: QualityConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            manifest: None,
            detector: None,
            embedder: None,
            region: DetectRegion::Full,
            landmarks: None,
            flip: false,
            quality: QualityConfig::default(),
        }
    }
}

/// One face found in a frame.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FaceObservation {
    pub face: Face,
    pub quality: Quality,
    /// Present when `quality.use_as == Identify`.
    pub template: Option<Template>,
}

/// Why a photo cannot be enrolled.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error("the photo cannot be decoded: {0}")]
    Decode(String),
    #[error("no face found in the photo")]
    NoFace,
    #[error("{0} usable faces found; the photo must show exactly one person")]
    MultipleFaces(usize),
    #[error("the face is not usable ({}): take a sharper, frontal, closer photo", .0.join(", "))]
    Unusable(Vec<&'static str>),
    #[error(transparent)]
    Engine(#[from] VisionError),
}

/// Owns the ONNX sessions. `Send` (not `Sync`): use it from one dedicated thread, e.g. through
/// [`FaceWorker`]; never call it on an async runtime thread.
pub struct FaceEngine {
    detector: Detector,
    embedder: Embedder,
    /// dlib's 5-point landmarks and the box they expect, when aligning on them.
    landmarks: Option<(ShapePredictor, LandmarkEntry)>,
    embedder_name: String,
    config: EngineConfig,
    thresholds: Thresholds,
}

const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<FaceEngine>();
};

impl FaceEngine {
    /// Loads ONNX Runtime (see [`crate::runtime`]) and the models named in `config`.
    pub fn new(config: EngineConfig) -> Result<Self> {
        let path = match &config.manifest {
            Some(p) => p.clone(),
            None => ModelManifest::default_path()?,
        };
        let manifest = ModelManifest::load(&path)?;
        let det = manifest.model(
            config
                .detector
                .as_deref()
                .unwrap_or(&manifest.default_detector),
            Role::Detector,
        )?;
        let emb = manifest.model(
            config
                .embedder
                .as_deref()
                .unwrap_or(&manifest.default_embedder),
            Role::Embedder,
        )?;
        let detector = Detector::new(&manifest, det)?;
        let embedder = Embedder::new(&manifest, emb)?;
        let thresholds = embedder.thresholds();
        let name = match config.landmarks.as_deref() {
            Some("none") => None,
            Some(n) => Some(n.to_owned()),
            None => manifest.default_landmarks.clone(),
        };
        let landmarks = match name {
            Some(n) if embedder.spec().template5.is_some() => {
                let entry = manifest.landmarks(&n)?.clone();
                let sp = ShapePredictor::load(&manifest.dir.join(&entry.file))?;
                Some((sp, entry))
            }
            Some(n) => {
                return Err(VisionError::Model(format!(
                    "landmarks {n:?} need the embedder's template5"
                )))
            }
            None => None,
        };
        Ok(FaceEngine {
            embedder_name: emb.name.clone(),
            detector,
            embedder,
            landmarks,
            config,
            thresholds,
        })
    }

    /// Whether chips are aligned on a landmark model's points.
    pub fn has_landmarks(&self) -> bool {
        self.landmarks.is_some()
    }

    /// What stored templates are tagged with (`face_templates.model`): the embedder, and the
    /// landmark model its chips were aligned on. Templates of another key were made from other
    /// chips and are not compared with this engine's (re-enrol them).
    pub fn template_key(&self) -> String {
        match &self.landmarks {
            Some((_, e)) => format!("{}+{}", self.embedder_name, e.name),
            None => self.embedder_name.clone(),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The embedder's calibrated thresholds (from the manifest).
    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// An empty gallery for an estate with the embedder's dimension and default thresholds.
    pub fn new_gallery(&self, estate: &str) -> Gallery {
        Gallery::new(
            estate,
            self.embedder.spec().dim,
            MatchThresholds::from(self.thresholds),
        )
    }

    pub fn detector(&mut self) -> &mut Detector {
        &mut self.detector
    }

    pub fn embedder(&mut self) -> &mut Embedder {
        &mut self.embedder
    }

    /// Detects faces in the configured region.
    pub fn detect(&mut self, img: &RgbImage) -> Result<Vec<Face>> {
        let region = self.config.region;
        self.detector.detect(img, &region)
    }

    /// The landmarks the chip is aligned on: dlib's five points (centre-indexed pixels) when the
    /// engine has a landmark model, else `None` (the detector's keypoints are used).
    pub fn landmarks(&self, img: &RgbImage, face: &Face) -> Option<Vec<[f32; 2]>> {
        let (sp, e) = self.landmarks.as_ref()?;
        let w = face.width() * e.box_scale;
        let cx = (face.bbox[0] + face.bbox[2]) / 2.0 + e.box_offset[0] * face.width();
        let cy = (face.bbox[1] + face.bbox[3]) / 2.0 + e.box_offset[1] * face.width();
        if !(w.is_finite() && cx.is_finite() && cy.is_finite()) || w < 1.0 {
            return None;
        }
        // dlib's boxes are whole pixels.
        let rect = [cx - w / 2.0, cy - w / 2.0, cx + w / 2.0, cy + w / 2.0].map(f32::round);
        Some(sp.predict(img, rect))
    }

    /// The similarity transform from image pixels onto the embedder's chip: from dlib's five
    /// landmarks when the engine has them, else from the detector's four keypoints.
    pub fn alignment_in(&self, img: &RgbImage, face: &Face) -> Option<Similarity> {
        let spec = self.embedder.spec();
        if let (Some(points), Some(template)) = (self.landmarks(img, face), spec.template5) {
            let src: Vec<[f64; 2]> = points
                .iter()
                .map(|p| [f64::from(p[0]), f64::from(p[1])])
                .collect();
            let dst: Vec<[f64; 2]> = template
                .iter()
                .map(|p| [f64::from(p[0]), f64::from(p[1])])
                .collect();
            let mut t = Similarity::umeyama(&src, &dst)?;
            if spec.dlib_chip {
                let k = (f64::from(spec.template_size[0]) - 1.0) / f64::from(spec.template_size[0]);
                t = Similarity {
                    a: t.a * k,
                    b: t.b * k,
                    tx: t.tx * k,
                    ty: t.ty * k,
                };
            }
            return Some(t);
        }
        self.alignment(face)
    }

    /// The similarity transform from image pixels onto the embedder's 4-point template (the
    /// detector's keypoints).
    pub fn alignment(&self, face: &Face) -> Option<Similarity> {
        if face.keypoints.len() < 4 {
            return None;
        }
        // Keypoints are edge-based continuous coordinates; the template is centre-indexed.
        let src: Vec<[f64; 2]> = face.keypoints[..4]
            .iter()
            .map(|p| [f64::from(p[0]) - 0.5, f64::from(p[1]) - 0.5])
            .collect();
        let dst: Vec<[f64; 2]> = self
            .embedder
            .spec()
            .template
            .iter()
            .map(|p| [f64::from(p[0]), f64::from(p[1])])
            .collect();
        Similarity::umeyama(&src, &dst)
    }

    /// Aligned chip (HWC RGB f32 0..255) for a face.
    pub fn align(&self, img: &RgbImage, face: &Face) -> Option<Vec<f32>> {
        let t = self.alignment_in(img, face)?;
        let (w, h) = self.embedder.chip_size();
        Some(warp_antialiased(img, &t, w, h, false))
    }

    /// Quality of a face given its aligned chip.
    pub fn quality(&self, face: &Face, chip: &[f32]) -> Quality {
        let q = &self.config.quality;
        let (w, h) = self.embedder.chip_size();
        let sharpness = laplacian_variance(chip, w as usize, h as usize);
        let (yaw, pitch, roll) = pose(&face.keypoints).unwrap_or((f32::NAN, f32::NAN, f32::NAN));
        let width_px = face.width();
        let mut failed = Vec::new();
        if width_px.is_nan() || width_px < q.min_identify_width_px {
            failed.push("too small");
        }
        if sharpness.is_nan() || sharpness < q.min_sharpness {
            failed.push("blurred");
        }
        if yaw.is_nan()
            || yaw.abs() > q.max_yaw
            || pitch < q.pitch_range[0]
            || pitch > q.pitch_range[1]
        {
            failed.push("not frontal");
        }
        if roll.is_nan() || roll.abs() > q.max_roll_deg {
            failed.push("tilted");
        }
        let use_as = if failed.is_empty() {
            FaceUse::Identify
        } else {
            FaceUse::TrackOnly
        };
        Quality {
            width_px,
            sharpness,
            yaw,
            pitch,
            roll_deg: roll,
            use_as,
            failed,
        }
    }

    /// Embeds aligned chips in one batch (with flip averaging if configured).
    pub fn embed_chips(&mut self, chips: &[Vec<f32>]) -> Result<Vec<Option<Template>>> {
        if chips.is_empty() {
            return Ok(Vec::new());
        }
        let flip = self.config.flip;
        self.embedder.embed(chips, flip)
    }

    /// Full pipeline on a frame: every detected face with its quality; faces that pass the gates
    /// are embedded (one batch).
    pub fn analyze(&mut self, img: &RgbImage) -> Result<Vec<FaceObservation>> {
        let faces = self.detect(img)?;
        let mut obs = Vec::with_capacity(faces.len());
        let mut chips = Vec::new();
        let mut which = Vec::new();
        for face in faces {
            let Some(chip) = self.align(img, &face) else {
                continue;
            };
            let quality = self.quality(&face, &chip);
            if quality.use_as == FaceUse::Identify {
                which.push(obs.len());
                chips.push(chip);
            }
            obs.push(FaceObservation {
                face,
                quality,
                template: None,
            });
        }
        let templates = self.embed_chips(&chips)?;
        for (i, t) in which.into_iter().zip(templates) {
            obs[i].template = t;
        }
        Ok(obs)
    }

    /// The largest face of a photo (found as in [`FaceEngine::detect_photo`]) embedded twice:
    /// the chip alone, and averaged with its mirror image (as enrolment does with `flip`).
    /// Milliseconds of detection + landmarks + alignment + one embedding come with it.
    pub fn embed_largest_views(
        &mut self,
        img: &RgbImage,
    ) -> Result<Option<(Template, Option<Template>, f64)>> {
        let t0 = std::time::Instant::now();
        let Some((_, chip)) = self.largest_chip(img)? else {
            return Ok(None);
        };
        let raw = self.embedder.embed_raw(&[&chip])?;
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        let Some(raw) = raw.into_iter().next() else {
            return Ok(None);
        };
        let Some(plain) = Template::from_raw(raw.clone()) else {
            return Ok(None);
        };
        let (w, h) = self.embedder.chip_size();
        let mirrored = crate::embedder::mirror(&chip, w as usize, h as usize);
        let flipped = self
            .embedder
            .embed_raw(&[&mirrored])?
            .into_iter()
            .next()
            .and_then(|m| crate::embedder::flip_average(raw, m));
        Ok(Some((plain, flipped, ms)))
    }

    /// The largest face of a photo (found as in [`FaceEngine::detect_photo`]) and its chip.
    fn largest_chip(&mut self, img: &RgbImage) -> Result<Option<(Face, Vec<f32>)>> {
        let faces = self.detect_photo(img)?;
        let Some(face) = faces
            .into_iter()
            .max_by(|a, b| (a.width() * a.height()).total_cmp(&(b.width() * b.height())))
        else {
            return Ok(None);
        };
        Ok(self.align(img, &face).map(|chip| (face, chip)))
    }

    /// Faces in a photo (enrolment, evaluation): the whole photo, then overlapping tiles for small
    /// faces, then — only when both found nothing — a permissive pass over the photo framed in a
    /// black border (¼ and ½ of its size: a face filling the frame, or cut by it, gets the context
    /// the detector was trained with) and mirrored (BlazeFace scores a turned face differently
    /// from its mirror image), keeping the best-scoring face. Every development photo with one
    /// centred face yields it (issue 14: 4 of 800 were lost before).
    pub fn detect_photo(&mut self, img: &RgbImage) -> Result<Vec<Face>> {
        let faces = self.detector.detect(img, &DetectRegion::Full)?;
        if !faces.is_empty() {
            return Ok(faces);
        }
        let faces = self.detector.detect(
            img,
            &DetectRegion::Tiles {
                tile: 640,
                overlap: 0.25,
            },
        )?;
        if !faces.is_empty() {
            return Ok(faces);
        }
        // The detector sees 192 px anyway: a large photo is scaled down first, so that framing
        // it never costs more memory than a 1280-px picture.
        let side = img.width().max(img.height());
        let (base, scale) = if side > PERMISSIVE_SIDE {
            let s = PERMISSIVE_SIDE as f32 / side as f32;
            let (w, h) = (
                ((img.width() as f32 * s).round() as u32).max(1),
                ((img.height() as f32 * s).round() as u32).max(1),
            );
            (
                image::imageops::resize(img, w, h, image::imageops::FilterType::Triangle),
                s,
            )
        } else {
            (img.clone(), 1.0)
        };
        let mut best: Option<Face> = None;
        for (pad, mirror) in [
            (0.0, true),
            (0.25, false),
            (0.25, true),
            (0.5, false),
            (0.5, true),
        ] {
            let (framed, border) = frame(&base, pad, mirror);
            for f in self.detector.detect(&framed, &DetectRegion::Full)? {
                let mut f = unframe(f, border, framed.width() as f32, mirror);
                if scale != 1.0 {
                    f.bbox = f.bbox.map(|v| v / scale);
                    for k in &mut f.keypoints {
                        k[0] /= scale;
                        k[1] /= scale;
                    }
                }
                if best.as_ref().is_none_or(|b| f.score > b.score) {
                    best = Some(f);
                }
            }
        }
        Ok(best.into_iter().collect())
    }

    /// Template of the largest face regardless of quality gates (evaluation, offline use), found
    /// as in [`FaceEngine::detect_photo`].
    pub fn embed_largest(&mut self, img: &RgbImage) -> Result<Option<(Face, Template)>> {
        let Some((face, chip)) = self.largest_chip(img)? else {
            return Ok(None);
        };
        let t = self.embed_chips(&[chip])?.into_iter().next().flatten();
        Ok(t.map(|t| (face, t)))
    }

    /// Enrolment from one uploaded photo (JPEG/PNG bytes): exactly one usable face, else an error
    /// that says why. Tries the whole photo, then overlapping tiles for small faces.
    pub fn enrol_photo(&mut self, bytes: &[u8]) -> Result<Template, EnrolError> {
        let img = decode_photo(bytes).map_err(EnrolError::Decode)?;
        self.enrol_image(&img)
    }

    /// [`FaceEngine::enrol_photo`] on a decoded image.
    pub fn enrol_image(&mut self, img: &RgbImage) -> Result<Template, EnrolError> {
        let faces = self.detect_photo(img)?;
        if faces.is_empty() {
            return Err(EnrolError::NoFace);
        }
        let mut usable = Vec::new();
        let mut first_failure = None;
        for face in &faces {
            let Some(chip) = self.align(img, face) else {
                continue;
            };
            let q = self.quality(face, &chip);
            if q.use_as == FaceUse::Identify {
                usable.push(chip);
            } else if first_failure.is_none() {
                first_failure = Some(q.failed);
            }
        }
        match usable.len() {
            0 => Err(EnrolError::Unusable(first_failure.unwrap_or_default())),
            // Enrolment embeds the chip and its mirror image, whatever the camera pipeline does
            // (issue 14: flip averaging pays at enrolment, where time does not matter).
            1 => self
                .embedder
                .embed(&usable, true)?
                .into_iter()
                .next()
                .flatten()
                .ok_or_else(|| {
                    EnrolError::Engine(VisionError::Inference("empty embedding".into()))
                }),
            n => Err(EnrolError::MultipleFaces(n)),
        }
    }
}

/// Longer side a photo is scaled to before the permissive pass of [`FaceEngine::detect_photo`].
const PERMISSIVE_SIDE: u32 = 1280;

/// `img` in a black border of `pad` × its longer side on every side, mirrored if asked; returns
/// the framed image and the border width.
fn frame(img: &RgbImage, pad: f32, mirror: bool) -> (RgbImage, u32) {
    let border = (pad * img.width().max(img.height()) as f32).round() as u32;
    let src = if mirror {
        image::imageops::flip_horizontal(img)
    } else {
        img.clone()
    };
    if border == 0 {
        return (src, 0);
    }
    let mut out = RgbImage::new(img.width() + 2 * border, img.height() + 2 * border);
    image::imageops::replace(&mut out, &src, i64::from(border), i64::from(border));
    (out, border)
}

/// A face found in [`frame`]'s image, in the original image's coordinates (edge-based); a
/// mirrored face's left and right keypoints swap back.
fn unframe(mut f: Face, border: u32, framed_width: f32, mirror: bool) -> Face {
    let b = border as f32;
    if mirror {
        let [x0, y0, x1, y1] = f.bbox;
        f.bbox = [framed_width - x1, y0, framed_width - x0, y1];
        for k in &mut f.keypoints {
            k[0] = framed_width - k[0];
        }
        if f.keypoints.len() >= 2 {
            f.keypoints.swap(0, 1);
        }
        if f.keypoints.len() >= 6 {
            f.keypoints.swap(4, 5);
        }
    }
    f.bbox = [f.bbox[0] - b, f.bbox[1] - b, f.bbox[2] - b, f.bbox[3] - b];
    for k in &mut f.keypoints {
        k[0] -= b;
        k[1] -= b;
    }
    f
}

/// Largest photo side accepted for decoding (pixels).
pub const MAX_PHOTO_SIDE: u32 = 8192;
/// Most memory one photo's decoding may allocate.
pub const MAX_PHOTO_ALLOC: u64 = 256 << 20;

/// Decodes an uploaded or imported photo (JPEG, PNG, WebP) to RGB, refusing
/// — from its header, before any pixel is decoded — an image wider or
/// taller than [`MAX_PHOTO_SIDE`] or needing more than [`MAX_PHOTO_ALLOC`]
/// (a 162 KB 12000×12000 PNG once cost 8.5 s of engine time and 0.5 GB).
///
/// # Errors
/// Why the photo was refused, for the caller's message.
pub fn decode_photo(bytes: &[u8]) -> std::result::Result<RgbImage, String> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_PHOTO_SIDE);
    limits.max_image_height = Some(MAX_PHOTO_SIDE);
    limits.max_alloc = Some(MAX_PHOTO_ALLOC);
    reader.limits(limits);
    match reader.decode() {
        Ok(img) => Ok(img.to_rgb8()),
        Err(image::ImageError::Limits(e)) => Err(format!(
            "photo too large ({e}); at most {MAX_PHOTO_SIDE}×{MAX_PHOTO_SIDE} pixels"
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Explicitly ignores a result whose failure needs no handling (peer gone, thread finished).
pub(crate) fn discard<T, E>(_: std::result::Result<T, E>) {}

type Job = Box<dyn FnOnce(&mut FaceEngine) + Send>;

/// A dedicated inference thread owning a [`FaceEngine`]. Jobs run in order; the queue is bounded
/// (`submit` blocks when full, `try_submit` refuses). Async callers pass a reply closure that
/// sends into a oneshot channel, e.g.
/// `worker.submit(move |e| e.analyze(&img), move |r| { let _ = tx.send(r); })` then `rx.await`.
///
/// The thread is supervised (DESIGN §6a): a job that panics is logged and
/// counted in [`FaceWorker::health`] (its caller sees
/// [`VisionError::WorkerStopped`] for that one job), and the thread goes on
/// with the next job — one bad frame or photo never ends all analysis and
/// enrolment. The engine keeps no per-job state (galleries live with the
/// callers), so it is reused as it is.
pub struct FaceWorker {
    tx: Option<mpsc::SyncSender<Job>>,
    handles: Vec<JoinHandle<()>>,
    health: Arc<TaskHealth>,
}

/// Face-engine threads for `threads` (0: one per core the process may use).
pub fn engine_threads(threads: usize) -> usize {
    if threads > 0 {
        return threads;
    }
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

impl FaceWorker {
    /// Builds the engine on a new thread named `face-engine`; returns its construction error.
    pub fn spawn(config: EngineConfig, queue: usize) -> Result<Self> {
        Self::spawn_pool(config, queue, 1)
    }

    /// A pool of `threads` engines (each its own ONNX sessions, one intra-op thread each) taking
    /// jobs from one queue: frames of several cameras are analysed in parallel. Jobs keep no
    /// state in an engine, and a camera waits for each frame's result before sending the next,
    /// so its frames stay in order. Returns the first construction error.
    pub fn spawn_pool(config: EngineConfig, queue: usize, threads: usize) -> Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Job>(queue.max(1));
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let health = TaskHealth::new("face-engine");
        let live = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut handles = Vec::new();
        let threads = threads.max(1);
        for i in 0..threads {
            let (init_tx, init_rx) = mpsc::channel::<Result<()>>();
            let (h, rx, config, live) = (health.clone(), rx.clone(), config.clone(), live.clone());
            let name = if threads == 1 {
                "face-engine".to_owned()
            } else {
                format!("face-engine-{i}")
            };
            let handle = std::thread::Builder::new()
                .name(name)
                .spawn(move || {
                    let mut engine = match FaceEngine::new(config) {
                        Ok(e) => {
                            discard(init_tx.send(Ok(())));
                            e
                        }
                        Err(e) => {
                            discard(init_tx.send(Err(e)));
                            return;
                        }
                    };
                    live.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    h.set_up();
                    loop {
                        // One thread waits on the queue at a time; the lock is released
                        // before the job runs.
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(p) => p.into_inner().recv(),
                        };
                        let Ok(job) = job else { break };
                        let run = std::panic::AssertUnwindSafe(|| job(&mut engine));
                        if let Err(p) = std::panic::catch_unwind(run) {
                            let why = format!("a job panicked: {}", anju_backoff::panic_text(p));
                            tracing::error!(task = "face-engine", error = %why, "Face engine job failed; going on with the next job.");
                            h.failed(why);
                            h.set_up();
                        }
                    }
                    if live.fetch_sub(1, std::sync::atomic::Ordering::Relaxed) == 1 {
                        h.up.store(false, std::sync::atomic::Ordering::Relaxed);
                    }
                })
                .map_err(|e| VisionError::Inference(format!("spawning the face worker: {e}")))?;
            handles.push(handle);
            init_rx.recv().map_err(|_| VisionError::WorkerStopped)??;
        }
        Ok(FaceWorker {
            tx: Some(tx),
            handles,
            health,
        })
    }

    /// The engine thread's health: up while it runs, a restart counted for
    /// every job that panicked. Register it with a process's
    /// [`anju_backoff::Tasks`] to see it in `/readyz` and `/metrics`.
    pub fn health(&self) -> Arc<TaskHealth> {
        self.health.clone()
    }

    fn job<R: Send + 'static>(
        f: impl FnOnce(&mut FaceEngine) -> R + Send + 'static,
        reply: impl FnOnce(R) + Send + 'static,
    ) -> Job {
        Box::new(move |e: &mut FaceEngine| reply(f(e)))
    }

    /// Queues `f`; `reply` receives its result on the worker thread. Blocks while the queue is full.
    pub fn submit<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut FaceEngine) -> R + Send + 'static,
        reply: impl FnOnce(R) + Send + 'static,
    ) -> Result<()> {
        let tx = self.tx.as_ref().ok_or(VisionError::WorkerStopped)?;
        tx.send(Self::job(f, reply))
            .map_err(|_| VisionError::WorkerStopped)
    }

    /// Like [`FaceWorker::submit`] but returns `Ok(false)` instead of blocking when the queue is
    /// full (lossy frames: the caller counts the drop).
    pub fn try_submit<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut FaceEngine) -> R + Send + 'static,
        reply: impl FnOnce(R) + Send + 'static,
    ) -> Result<bool> {
        let tx = self.tx.as_ref().ok_or(VisionError::WorkerStopped)?;
        match tx.try_send(Self::job(f, reply)) {
            Ok(()) => Ok(true),
            Err(mpsc::TrySendError::Full(_)) => Ok(false),
            Err(mpsc::TrySendError::Disconnected(_)) => Err(VisionError::WorkerStopped),
        }
    }

    /// Runs `f` on the worker and waits for the result (blocking; not for async threads).
    pub fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut FaceEngine) -> R + Send + 'static,
    ) -> Result<R> {
        let (rtx, rrx) = mpsc::sync_channel(1);
        self.submit(f, move |r| {
            discard(rtx.send(r));
        })?;
        rrx.recv().map_err(|_| VisionError::WorkerStopped)
    }
}

impl Drop for FaceWorker {
    fn drop(&mut self) {
        self.tx.take();
        for h in self.handles.drain(..) {
            discard(h.join());
        }
    }
}

#[cfg(test)]
mod frame_tests {
    use super::*;

    /// A face found in a framed, mirrored photo comes back where it is in the photo, with its
    /// left and right keypoints in their places.
    #[test]
    fn unframe_undoes_border_and_mirror() {
        let img = RgbImage::new(200, 100);
        let (framed, border) = frame(&img, 0.25, true);
        assert_eq!((border, framed.width(), framed.height()), (50, 300, 200));
        // In the photo: box 20..60 × 30..70, right eye (image-left) at 30, left eye at 50.
        // Mirrored and framed: x' = 50 + (200 - x).
        let f = Face {
            score: 0.9,
            bbox: [190.0, 80.0, 230.0, 120.0],
            keypoints: vec![
                [200.0, 90.0],
                [220.0, 90.0],
                [210.0, 100.0],
                [210.0, 110.0],
                [192.0, 95.0],
                [228.0, 95.0],
            ],
        };
        let u = unframe(f, border, framed.width() as f32, true);
        assert_eq!(u.bbox, [20.0, 30.0, 60.0, 70.0]);
        assert_eq!(u.keypoints[0], [30.0, 40.0]);
        assert_eq!(u.keypoints[1], [50.0, 40.0]);
        assert_eq!(u.keypoints[4][0], 22.0);
        assert_eq!(u.keypoints[5][0], 58.0);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod decode_tests {
    #[test]
    fn a_huge_photo_is_refused_from_its_header() {
        // A 12000×12000 PNG header (IHDR) and nothing else: refused before
        // decoding, quickly and without the gigabytes.
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&12000u32.to_be_bytes());
        ihdr.extend_from_slice(&12000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(b"IHDR");
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc32(b"IHDR", &ihdr).to_be_bytes());
        let t = std::time::Instant::now();
        let e = super::decode_photo(&png).unwrap_err();
        assert!(e.contains("too large"), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
        // A small real image decodes.
        let img = image::RgbImage::from_pixel(4, 3, image::Rgb([9, 9, 9]));
        let mut buf = std::io::Cursor::new(Vec::new());
        img.write_to(&mut buf, image::ImageFormat::Png).unwrap();
        assert_eq!(
            super::decode_photo(buf.get_ref()).unwrap().dimensions(),
            (4, 3)
        );
    }

    fn crc32(kind: &[u8], data: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for b in kind.iter().chain(data) {
            c ^= u32::from(*b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
}
