//! Face embedder: aligned chips -> L2-normalised templates (batched).

use ndarray::Array4;
use ort::session::Session;
use ort::value::TensorRef;

use crate::error::{Result, VisionError};
use crate::manifest::{EmbedderSpec, Layout, ModelEntry, ModelManifest, Thresholds};

/// An L2-normalised face embedding; compare two with [`Template::similarity`] (cosine).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Template(pub Vec<f32>);

impl Template {
    /// Normalises `v` to unit length (`None` for a zero or non-finite vector).
    pub fn from_raw(mut v: Vec<f32>) -> Option<Self> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if !n.is_finite() || n <= f32::EPSILON {
            return None;
        }
        v.iter_mut().for_each(|x| *x /= n);
        Some(Template(v))
    }

    /// Cosine similarity (dot product of unit vectors).
    pub fn similarity(&self, other: &Template) -> f32 {
        crate::gallery::dot(&self.0, &other.0)
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }
}

pub struct Embedder {
    session: Session,
    spec: EmbedderSpec,
    thresholds: Thresholds,
    input_name: String,
    output_name: String,
    layout: Layout,
    mean: [f32; 3],
    inv_std: [f32; 3],
    fixed_batch: Option<usize>,
}

impl Embedder {
    pub fn new(manifest: &ModelManifest, entry: &ModelEntry) -> Result<Self> {
        let spec = entry
            .embedder
            .clone()
            .ok_or_else(|| VisionError::Model(format!("{} is not an embedder", entry.name)))?;
        let (w, h) = entry.input_size();
        if [w, h] != spec.template_size {
            return Err(VisionError::Model(format!(
                "{}: input {w}x{h} differs from template_size {:?}",
                entry.name, spec.template_size
            )));
        }
        let session = crate::runtime::session(&manifest.file(entry), 1)?;
        Ok(Embedder {
            session,
            thresholds: entry.thresholds.unwrap_or(Thresholds {
                far_1e2: 0.5,
                far_1e3: 0.6,
                margin: 0.0,
            }),
            input_name: entry.input.name.clone(),
            output_name: entry.output.names[0].clone(),
            layout: entry.input.layout,
            mean: entry.input.mean,
            inv_std: entry.input.std.map(|s| 1.0 / s),
            fixed_batch: (entry.input.shape[0] > 0).then_some(entry.input.shape[0] as usize),
            spec,
        })
    }

    pub fn spec(&self) -> &EmbedderSpec {
        &self.spec
    }

    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// Chip size `(w, h)`.
    pub fn chip_size(&self) -> (u32, u32) {
        (self.spec.template_size[0], self.spec.template_size[1])
    }

    /// Raw (un-normalised) embeddings of HWC RGB 0..255 chips, in one batch (or in fixed-size
    /// batches when the model has a fixed batch dimension).
    pub fn embed_raw(&mut self, chips: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
        let (w, h) = self.chip_size();
        let (w, h) = (w as usize, h as usize);
        let per = w * h * 3;
        if let Some(bad) = chips.iter().find(|c| c.len() != per) {
            return Err(VisionError::Invalid(format!(
                "chip has {} values, expected {per}",
                bad.len()
            )));
        }
        let batch = self.fixed_batch.unwrap_or(chips.len().max(1));
        let mut out = Vec::with_capacity(chips.len());
        for group in chips.chunks(batch) {
            let mut x = match self.layout {
                Layout::Nhwc => Array4::<f32>::zeros((batch, h, w, 3)),
                Layout::Nchw => Array4::<f32>::zeros((batch, 3, h, w)),
            };
            {
                let buf = x
                    .as_slice_mut()
                    .ok_or_else(|| VisionError::Inference("non-contiguous input".into()))?;
                for (n, chip) in group.iter().enumerate() {
                    let base = n * per;
                    for (i, px) in chip.chunks_exact(3).enumerate() {
                        for c in 0..3 {
                            let v = (px[c] - self.mean[c]) * self.inv_std[c];
                            match self.layout {
                                Layout::Nhwc => buf[base + i * 3 + c] = v,
                                Layout::Nchw => buf[base + c * w * h + i] = v,
                            }
                        }
                    }
                }
            }
            let input = TensorRef::from_array_view(&x).map_err(VisionError::ort)?;
            let res = self
                .session
                .run(ort::inputs![self.input_name.as_str() => input])
                .map_err(VisionError::ort)?;
            let (_, e) = res[self.output_name.as_str()]
                .try_extract_tensor::<f32>()
                .map_err(VisionError::ort)?;
            let dim = self.spec.dim;
            if e.len() < group.len() * dim {
                return Err(VisionError::Model(format!(
                    "embedder returned {} values",
                    e.len()
                )));
            }
            out.extend(e.chunks_exact(dim).take(group.len()).map(<[f32]>::to_vec));
        }
        Ok(out)
    }

    /// Templates for aligned chips. With `flip`, each chip and its mirror image are embedded
    /// (one batch) and the sum is normalised.
    pub fn embed(&mut self, chips: &[Vec<f32>], flip: bool) -> Result<Vec<Option<Template>>> {
        let (w, h) = self.chip_size();
        let mut inputs: Vec<Vec<f32>> = Vec::new();
        let refs: Vec<&[f32]> = if flip {
            inputs.extend(chips.iter().map(|c| mirror(c, w as usize, h as usize)));
            chips
                .iter()
                .map(Vec::as_slice)
                .chain(inputs.iter().map(Vec::as_slice))
                .collect()
        } else {
            chips.iter().map(Vec::as_slice).collect()
        };
        let raw = self.embed_raw(&refs)?;
        let n = chips.len();
        Ok((0..n)
            .map(|i| {
                if flip {
                    flip_average(raw[i].clone(), raw[n + i].clone())
                        .or_else(|| Template::from_raw(raw[i].clone()))
                } else {
                    Template::from_raw(raw[i].clone())
                }
            })
            .collect())
    }
}

/// The template of a chip and its mirror image: each raw embedding normalised first, so both
/// views weigh the same, then their sum normalised (`None` when either is zero).
pub fn flip_average(chip: Vec<f32>, mirrored: Vec<f32>) -> Option<Template> {
    let (a, b) = (Template::from_raw(chip)?, Template::from_raw(mirrored)?);
    Template::from_raw(a.0.iter().zip(&b.0).map(|(x, y)| x + y).collect())
}

/// Horizontal mirror of an HWC RGB chip.
pub fn mirror(chip: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0f32; chip.len()];
    for y in 0..h {
        for x in 0..w {
            let s = (y * w + x) * 3;
            let d = (y * w + (w - 1 - x)) * 3;
            out[d..d + 3].copy_from_slice(&chip[s..s + 3]);
        }
    }
    out
}
