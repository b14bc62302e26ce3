//! BlazeFace-style detector: letterbox, anchor decode, weighted NMS; full frame, ROI or tiles.

use image::RgbImage;
use ndarray::Array4;
use ort::session::Session;
use ort::value::TensorRef;

use crate::error::{Result, VisionError};
use crate::imgproc::{letterbox, Rect};
use crate::manifest::{DetectorSpec, Layout, ModelEntry, ModelManifest};

/// A detected face in source-image pixel coordinates.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Face {
    pub score: f32,
    /// `[x0, y0, x1, y1]`.
    pub bbox: [f32; 4],
    /// Keypoints `[x, y]` (edge-based continuous pixel coordinates): 0 right eye (image-left),
    /// 1 left eye, 2 nose tip, 3 mouth centre, 4/5 ear tragions.
    pub keypoints: Vec<[f32; 2]>,
}

impl Face {
    pub fn width(&self) -> f32 {
        self.bbox[2] - self.bbox[0]
    }
    pub fn height(&self) -> f32 {
        self.bbox[3] - self.bbox[1]
    }
    fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }
}

/// Where to run the detector on a frame.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum DetectRegion {
    /// The whole frame letterboxed to the detector input (faces below ≈ long_side/10 px are missed).
    Full,
    /// One region of interest (e.g. the gate area).
    Roi { x: u32, y: u32, w: u32, h: u32 },
    /// Overlapping square tiles of `tile` px plus the full frame; 640 px tiles at 192 input find
    /// faces down to ≈ 64 px.
    Tiles { tile: u32, overlap: f32 },
}

pub struct Detector {
    session: Session,
    spec: DetectorSpec,
    input_name: String,
    outputs: [String; 2],
    size: u32,
    layout: Layout,
    mean: [f32; 3],
    inv_std: [f32; 3],
    anchors: Vec<[f32; 2]>,
}

impl Detector {
    pub fn new(manifest: &ModelManifest, entry: &ModelEntry) -> Result<Self> {
        let spec = entry
            .detector
            .clone()
            .ok_or_else(|| VisionError::Model(format!("{} is not a detector", entry.name)))?;
        let (w, h) = entry.input_size();
        if w != h {
            return Err(VisionError::Model("detector input must be square".into()));
        }
        let mut anchors = Vec::new();
        for g in &spec.anchors {
            for y in 0..g.grid {
                for x in 0..g.grid {
                    for _ in 0..g.per_cell {
                        anchors.push([
                            (x as f32 + 0.5) / g.grid as f32,
                            (y as f32 + 0.5) / g.grid as f32,
                        ]);
                    }
                }
            }
        }
        let session = crate::runtime::session(&manifest.file(entry), 1)?;
        Ok(Detector {
            session,
            input_name: entry.input.name.clone(),
            outputs: [entry.output.names[0].clone(), entry.output.names[1].clone()],
            size: w,
            layout: entry.input.layout,
            mean: entry.input.mean,
            inv_std: entry.input.std.map(|s| 1.0 / s),
            anchors,
            spec,
        })
    }

    /// Detector input side in pixels.
    pub fn input_size(&self) -> u32 {
        self.size
    }

    /// Runs the detector on one rectangle of the image (letterboxed).
    pub fn detect_rect(&mut self, img: &RgbImage, rect: Rect) -> Result<Vec<Face>> {
        let Some(rect) = rect.clip(img) else {
            return Ok(Vec::new());
        };
        let s = self.size as usize;
        let (hwc, scale) = letterbox(img, rect, self.size);
        let mut x = match self.layout {
            Layout::Nhwc => Array4::<f32>::zeros((1, s, s, 3)),
            Layout::Nchw => Array4::<f32>::zeros((1, 3, s, s)),
        };
        {
            let buf = x
                .as_slice_mut()
                .ok_or_else(|| VisionError::Inference("non-contiguous input".into()))?;
            for (i, px) in hwc.chunks_exact(3).enumerate() {
                for c in 0..3 {
                    let v = (px[c] - self.mean[c]) * self.inv_std[c];
                    match self.layout {
                        Layout::Nhwc => buf[i * 3 + c] = v,
                        Layout::Nchw => buf[c * s * s + i] = v,
                    }
                }
            }
        }
        let input = TensorRef::from_array_view(&x).map_err(VisionError::ort)?;
        let out = self
            .session
            .run(ort::inputs![self.input_name.as_str() => input])
            .map_err(VisionError::ort)?;
        let (_, reg) = out[self.outputs[0].as_str()]
            .try_extract_tensor::<f32>()
            .map_err(VisionError::ort)?;
        let (_, cls) = out[self.outputs[1].as_str()]
            .try_extract_tensor::<f32>()
            .map_err(VisionError::ort)?;
        let n = self.anchors.len();
        if cls.len() != n || reg.len() % n != 0 {
            return Err(VisionError::Model(format!(
                "detector output sizes {} / {} do not match {} anchors",
                reg.len(),
                cls.len(),
                n
            )));
        }
        let stride = reg.len() / n;
        let nk = self.spec.keypoints.min((stride.saturating_sub(4)) / 2);
        let sz = self.size as f32;
        let mut cands = Vec::new();
        for (i, a) in self.anchors.iter().enumerate() {
            let score = 1.0 / (1.0 + (-cls[i].clamp(-100.0, 100.0)).exp());
            if score < self.spec.score_threshold {
                continue;
            }
            let r = &reg[i * stride..(i + 1) * stride];
            let (cx, cy) = (a[0] + r[0] / sz, a[1] + r[1] / sz);
            let (w, h) = (r[2] / sz, r[3] / sz);
            // Normalised letterbox coordinates -> source pixels.
            let k = sz / scale;
            let (ox, oy) = (rect.x as f32, rect.y as f32);
            let bbox = [
                (cx - w / 2.0) * k + ox,
                (cy - h / 2.0) * k + oy,
                (cx + w / 2.0) * k + ox,
                (cy + h / 2.0) * k + oy,
            ];
            let keypoints = (0..nk)
                .map(|j| {
                    [
                        (a[0] + r[4 + 2 * j] / sz) * k + ox,
                        (a[1] + r[5 + 2 * j] / sz) * k + oy,
                    ]
                })
                .collect();
            cands.push(Face {
                score,
                bbox,
                keypoints,
            });
        }
        Ok(weighted_nms(cands, self.spec.nms_iou))
    }

    /// Runs the detector according to `region`.
    pub fn detect(&mut self, img: &RgbImage, region: &DetectRegion) -> Result<Vec<Face>> {
        match *region {
            DetectRegion::Full => self.detect_rect(img, Rect::full(img)),
            DetectRegion::Roi { x, y, w, h } => self.detect_rect(img, Rect { x, y, w, h }),
            DetectRegion::Tiles { tile, overlap } => {
                let mut all = self.detect_rect(img, Rect::full(img))?;
                for r in tiles(img.width(), img.height(), tile, overlap) {
                    all.extend(self.detect_rect(img, r)?);
                }
                Ok(merge(all, self.spec.nms_iou))
            }
        }
    }
}

/// Overlapping square tiles covering a `w × h` frame (none if the frame fits in one tile).
pub fn tiles(w: u32, h: u32, tile: u32, overlap: f32) -> Vec<Rect> {
    let tile = tile.max(16);
    if w <= tile && h <= tile {
        return Vec::new();
    }
    let step = ((tile as f32) * (1.0 - overlap.clamp(0.0, 0.9))).max(1.0) as u32;
    let starts = |len: u32| {
        let mut v = Vec::new();
        if len <= tile {
            v.push(0);
            return v;
        }
        let mut s = 0;
        loop {
            if s + tile >= len {
                v.push(len - tile);
                break;
            }
            v.push(s);
            s += step;
        }
        v
    };
    let (xs, ys) = (starts(w), starts(h));
    let mut out = Vec::new();
    for &y in &ys {
        for &x in &xs {
            out.push(Rect {
                x,
                y,
                w: tile.min(w),
                h: tile.min(h),
            });
        }
    }
    out
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    inter / (area(a) + area(b) - inter + 1e-12)
}

/// Weighted NMS (BlazeFace): clusters by IoU with the best remaining box, averages boxes and
/// keypoints weighted by score, keeps the best score.
pub fn weighted_nms(mut cands: Vec<Face>, iou_thr: f32) -> Vec<Face> {
    cands.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut used = vec![false; cands.len()];
    let mut out = Vec::new();
    for i in 0..cands.len() {
        if used[i] {
            continue;
        }
        let mut wsum = 0.0;
        let mut bbox = [0f32; 4];
        let mut kps = vec![[0f32; 2]; cands[i].keypoints.len()];
        for j in i..cands.len() {
            if used[j] || (j != i && iou(&cands[i].bbox, &cands[j].bbox) <= iou_thr) {
                continue;
            }
            used[j] = true;
            let w = cands[j].score;
            wsum += w;
            for (b, v) in bbox.iter_mut().zip(cands[j].bbox) {
                *b += v * w;
            }
            for (k, v) in kps.iter_mut().zip(&cands[j].keypoints) {
                k[0] += v[0] * w;
                k[1] += v[1] * w;
            }
        }
        for b in &mut bbox {
            *b /= wsum;
        }
        for k in &mut kps {
            k[0] /= wsum;
            k[1] /= wsum;
        }
        out.push(Face {
            score: cands[i].score,
            bbox,
            keypoints: kps,
        });
    }
    out
}

/// Merges detections from several tiles: plain NMS keeping the best-scoring, larger-context box.
fn merge(mut all: Vec<Face>, iou_thr: f32) -> Vec<Face> {
    all.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.area().total_cmp(&a.area()))
    });
    let mut out: Vec<Face> = Vec::new();
    for f in all {
        if out.iter().all(|o| iou(&o.bbox, &f.bbox) <= iou_thr) {
            out.push(f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_1080p() {
        let t = tiles(1920, 1080, 640, 0.25);
        assert!(t.iter().all(|r| r.x + r.w <= 1920 && r.y + r.h <= 1080));
        assert!(t.iter().any(|r| r.x + r.w == 1920));
        assert!(t.iter().any(|r| r.y + r.h == 1080));
        assert!(tiles(600, 400, 640, 0.25).is_empty());
    }

    #[test]
    fn weighted_nms_averages_cluster() {
        let f = |s, x| Face {
            score: s,
            bbox: [x, 0.0, x + 10.0, 10.0],
            keypoints: vec![[x, 0.0]],
        };
        let out = weighted_nms(vec![f(0.9, 0.0), f(0.6, 1.0), f(0.8, 50.0)], 0.3);
        assert_eq!(out.len(), 2);
        assert!((out[0].bbox[0] - 0.4).abs() < 1e-5);
        assert_eq!(out[1].bbox[0], 50.0);
    }
}
