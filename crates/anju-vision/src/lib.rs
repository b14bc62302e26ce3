//! Face engine of Anju: BlazeFace detection (full frame, ROI or tiles), quality gates, Umeyama
//! alignment, dlib ResNet-128 embedding through ONNX Runtime, per-estate gallery search,
//! enrolment and offline evaluation.
//!
//! Models are described by `models/manifest.toml` ([`ModelManifest`]). ONNX Runtime is loaded
//! at run time from the project venv (`bash models/setup-ort.sh`), see [`runtime`].
//! Inference is blocking: own a [`FaceEngine`] on a dedicated thread, or use [`FaceWorker`].

pub mod detector;
pub mod embedder;
pub mod engine;
pub mod error;
pub mod eval;
pub mod gallery;
pub mod imgproc;
pub mod landmarks;
pub mod manifest;
pub mod runtime;

/// The template key of the default engine (the manifest's embedder and landmarks):
/// [`FaceEngine::template_key`] of `EngineConfig::default()` with the committed manifest.
pub const DEFAULT_TEMPLATE_KEY: &str = "dlib_resnet128+dlib_shape5";

pub use detector::{DetectRegion, Detector, Face};
pub use embedder::{Embedder, Template};
pub use engine::{
    decode_photo, engine_threads, EngineConfig, EnrolError, FaceEngine, FaceObservation, FaceUse,
    FaceWorker, Quality, QualityConfig,
};
pub use error::{Result, VisionError};
pub use eval::{eval_faces, eval_faces_with, EvalReport};
pub use gallery::{
    Decision, Gallery, GalleryPerson, Identification, Match, MatchThresholds, PersonRule,
};
pub use landmarks::ShapePredictor;
pub use manifest::{ModelManifest, Thresholds};
