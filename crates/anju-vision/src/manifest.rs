//! `models/manifest.toml`: which ONNX files exist, what they expect and produce.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Result, VisionError};

/// The whole manifest file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    pub schema: u32,
    pub default_detector: String,
    pub default_embedder: String,
    /// The landmark model aligning chips (`None`: BlazeFace's four keypoints).
    #[serde(default)]
    pub default_landmarks: Option<String>,
    #[serde(rename = "model")]
    pub models: Vec<ModelEntry>,
    /// Landmark models (not ONNX: their own file format).
    #[serde(default, rename = "landmarks")]
    pub landmark_models: Vec<LandmarkEntry>,
    /// Directory of the manifest; model files are relative to it.
    #[serde(skip)]
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Detector,
    Embedder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Layout {
    #[serde(rename = "NHWC")]
    Nhwc,
    #[serde(rename = "NCHW")]
    Nchw,
}

/// One `[[model]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub name: String,
    pub role: Role,
    pub file: String,
    pub sha256: String,
    pub source: String,
    #[serde(default)]
    pub source_sha256: Option<String>,
    pub licence: String,
    #[serde(default)]
    pub licence_file: Option<String>,
    pub input: InputSpec,
    pub output: OutputSpec,
    #[serde(default)]
    pub detector: Option<DetectorSpec>,
    #[serde(default)]
    pub embedder: Option<EmbedderSpec>,
    #[serde(default)]
    pub thresholds: Option<Thresholds>,
}

/// Input tensor: `x' = (x - mean) / std` per channel, x in 0..255.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub name: String,
    /// -1 marks a dynamic dimension.
    pub shape: Vec<i64>,
    pub layout: Layout,
    #[serde(default = "default_color")]
    pub color: String,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    #[serde(default)]
    pub resize: Option<String>,
}

fn default_color() -> String {
    "RGB".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    pub names: Vec<String>,
    pub dims: Vec<Vec<i64>>,
}

/// One anchor grid: `grid × grid` cells, `per_cell` anchors each, centred in the cell.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorGrid {
    pub grid: u32,
    pub per_cell: u32,
}

/// BlazeFace-style detector decoding.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorSpec {
    pub anchors: Vec<AnchorGrid>,
    pub keypoints: usize,
    pub score_threshold: f32,
    pub nms_iou: f32,
    #[serde(default = "default_min_face_input")]
    pub min_face_input_px: f32,
}

fn default_min_face_input() -> f32 {
    20.0
}

/// Embedder alignment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedderSpec {
    pub dim: usize,
    /// Right eye, left eye, nose tip, mouth centre, in chip pixels (centre-indexed).
    pub template: [[f32; 2]; 4],
    pub template_size: [u32; 2],
    /// Where a 5-point landmark model's points go in the chip (centre-indexed chip pixels), when
    /// the embedder was trained on chips cut from them.
    #[serde(default)]
    pub template5: Option<[[f32; 2]; 5]>,
    /// dlib's chip extraction maps its box onto pixels `0..size-1`: the similarity onto the
    /// template is scaled by `(size - 1) / size` about the chip's origin.
    #[serde(default)]
    pub dlib_chip: bool,
}

/// A landmark model: dlib's regression-tree shape predictor (`models/convert_shape5.py`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LandmarkEntry {
    pub name: String,
    pub file: String,
    pub sha256: String,
    pub source: String,
    #[serde(default)]
    pub source_sha256: Option<String>,
    pub licence: String,
    #[serde(default)]
    pub licence_file: Option<String>,
    /// Landmarks it returns (5: eye corners and the base of the nose).
    pub points: usize,
    /// The box the predictor was trained on, from the detector's box: width × `box_scale`,
    /// centre moved by `box_offset` × width.
    pub box_scale: f32,
    pub box_offset: [f32; 2],
}

/// Cosine-similarity thresholds of an embedder.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub far_1e2: f32,
    pub far_1e3: f32,
    pub margin: f32,
}

impl ModelManifest {
    /// Reads and validates a manifest file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| VisionError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut m: ModelManifest = toml::from_str(&text)
            .map_err(|e| VisionError::Model(format!("{}: {e}", path.display())))?;
        m.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        m.validate()?;
        Ok(m)
    }

    /// The manifest committed in the repository (`<repo>/models/manifest.toml`), found from the
    /// current directory, the executable or this crate's source directory.
    pub fn default_path() -> Result<PathBuf> {
        let mut roots = Vec::new();
        if let Ok(cwd) = std::env::current_dir() {
            roots.push(cwd);
        }
        if let Ok(exe) = std::env::current_exe() {
            roots.push(exe);
        }
        roots.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        for root in roots {
            for dir in root.ancestors() {
                let p = dir.join("models").join("manifest.toml");
                if p.is_file() {
                    return Ok(p);
                }
            }
        }
        Err(VisionError::Model(
            "models/manifest.toml not found from the current directory or the executable".into(),
        ))
    }

    fn validate(&self) -> Result<()> {
        for m in &self.models {
            let bad = |what: &str| Err(VisionError::Model(format!("model {}: {what}", m.name)));
            match m.role {
                Role::Detector => {
                    let Some(d) = &m.detector else {
                        return bad("role detector needs a [model.detector] table");
                    };
                    if m.output.names.len() != 2 {
                        return bad("a detector needs two outputs: regressors, scores");
                    }
                    if d.anchors.is_empty() {
                        return bad("no anchors");
                    }
                    if m.input.shape.len() != 4 {
                        return bad("input shape must have 4 dims");
                    }
                }
                Role::Embedder => {
                    if m.embedder.is_none() {
                        return bad("role embedder needs a [model.embedder] table");
                    }
                    if m.input.shape.len() != 4 || m.output.names.len() != 1 {
                        return bad("embedder needs a 4-d input and one output");
                    }
                }
            }
        }
        self.model(&self.default_detector, Role::Detector)?;
        self.model(&self.default_embedder, Role::Embedder)?;
        for l in &self.landmark_models {
            if l.points != 5 || l.box_scale.is_nan() || l.box_scale <= 0.0 {
                return Err(VisionError::Model(format!(
                    "landmarks {}: 5 points and a positive box_scale are supported",
                    l.name
                )));
            }
        }
        if let Some(name) = &self.default_landmarks {
            self.landmarks(name)?;
        }
        Ok(())
    }

    /// Looks up a landmark model by name.
    pub fn landmarks(&self, name: &str) -> Result<&LandmarkEntry> {
        self.landmark_models
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| {
                VisionError::Model(format!("no landmark model named {name:?} in the manifest"))
            })
    }

    /// Looks up a model by name and role.
    pub fn model(&self, name: &str, role: Role) -> Result<&ModelEntry> {
        self.models
            .iter()
            .find(|m| m.name == name && m.role == role)
            .ok_or_else(|| {
                VisionError::Model(format!("no {role:?} model named {name:?} in the manifest"))
            })
    }

    /// Absolute path of a model file.
    pub fn file(&self, m: &ModelEntry) -> PathBuf {
        self.dir.join(&m.file)
    }
}

impl ModelEntry {
    /// Spatial input size `(width, height)`.
    pub fn input_size(&self) -> (u32, u32) {
        let s = &self.input.shape;
        let (h, w) = match self.input.layout {
            Layout::Nhwc => (s[1], s[2]),
            Layout::Nchw => (s[2], s[3]),
        };
        (w.max(1) as u32, h.max(1) as u32)
    }
}
