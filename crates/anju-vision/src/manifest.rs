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
    #[serde(rename = "model")]
    pub models: Vec<ModelEntry>,
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
        Ok(())
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
