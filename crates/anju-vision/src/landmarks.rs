//! dlib's 5-point face landmarks (eye corners and the base of the nose): an ensemble of regression
//! trees (Kazemi & Sullivan 2014) evaluated in Rust, from the flat file `models/convert_shape5.py`
//! writes out of dlib's `shape_predictor_5_face_landmarks.dat` (public domain).
//!
//! The dlib ResNet embedder was trained on chips cut from these five points; aligning on
//! BlazeFace's four coarse keypoints instead places the chip differently (issue 14). The predictor
//! reproduces dlib's `shape_predictor::operator()` exactly (golden test against the Python
//! reference, which matches dlib itself), except that points stay fractional where dlib rounds
//! them to whole pixels.

use std::path::Path;

use image::RgbImage;

use crate::error::{Result, VisionError};
use crate::imgproc::Similarity;

/// A regression tree: complete binary tree of splits, leaves in order.
#[derive(Debug, Clone)]
struct Tree {
    /// `(idx1, idx2, threshold)`: go left when `f[idx1] - f[idx2] > threshold`.
    splits: Vec<(u32, u32, f32)>,
    /// One shape increment (`2 × points`) per leaf.
    leaves: Vec<f32>,
}

#[derive(Debug, Clone)]
struct Cascade {
    /// Per feature pixel: the landmark it is anchored to and its offset in the mean shape's frame.
    anchors: Vec<u32>,
    deltas: Vec<[f32; 2]>,
    trees: Vec<Tree>,
}

/// dlib's `shape_predictor`.
#[derive(Debug, Clone)]
pub struct ShapePredictor {
    /// Mean shape in the box's unit square, `[x0, y0, x1, y1, …]`.
    initial: Vec<f32>,
    cascades: Vec<Cascade>,
}

struct Bytes<'a> {
    b: &'a [u8],
    i: usize,
}

impl Bytes<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.i.checked_add(n).filter(|e| *e <= self.b.len());
        let Some(end) = end else {
            return Err(VisionError::Model("landmark model truncated".into()));
        };
        let s = &self.b[self.i..end];
        self.i = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn f32(&mut self) -> Result<f32> {
        let s = self.take(4)?;
        Ok(f32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    /// A count that must fit what is left of the file (`unit` bytes per item).
    fn count(&mut self, unit: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(unit) > self.b.len() - self.i {
            return Err(VisionError::Model(
                "landmark model: count beyond the file".into(),
            ));
        }
        Ok(n)
    }
}

impl ShapePredictor {
    /// Reads the flat file of `models/convert_shape5.py`.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| VisionError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&bytes).map_err(|e| VisionError::Model(format!("{}: {e}", path.display())))
    }

    /// Parses the flat file, checking every index against the model's sizes.
    pub fn parse(b: &[u8]) -> Result<Self> {
        let mut r = Bytes { b, i: 0 };
        if r.take(8)? != b"ANJUSP01" {
            return Err(VisionError::Model(
                "not an anju shape-predictor file".into(),
            ));
        }
        let points = r.count(8)?;
        if points == 0 {
            return Err(VisionError::Model("no landmarks".into()));
        }
        let n2 = points * 2;
        let initial = (0..n2).map(|_| r.f32()).collect::<Result<Vec<_>>>()?;
        let mut cascades = Vec::new();
        for _ in 0..r.count(4)? {
            let nf = r.count(12)?;
            let anchors = (0..nf).map(|_| r.u32()).collect::<Result<Vec<_>>>()?;
            if anchors.iter().any(|a| *a as usize >= points) {
                return Err(VisionError::Model("anchor beyond the landmarks".into()));
            }
            let deltas = (0..nf)
                .map(|_| Ok([r.f32()?, r.f32()?]))
                .collect::<Result<Vec<_>>>()?;
            let mut trees = Vec::new();
            for _ in 0..r.count(8)? {
                let ns = r.count(12)?;
                let splits = (0..ns)
                    .map(|_| Ok((r.u32()?, r.u32()?, r.f32()?)))
                    .collect::<Result<Vec<_>>>()?;
                if splits
                    .iter()
                    .any(|(a, b, _)| *a as usize >= nf || *b as usize >= nf)
                {
                    return Err(VisionError::Model("split feature beyond the pixels".into()));
                }
                let nl = r.count(4 * n2)?;
                if nl != ns + 1 {
                    return Err(VisionError::Model(
                        "a tree needs one leaf more than splits".into(),
                    ));
                }
                let leaves = (0..nl * n2).map(|_| r.f32()).collect::<Result<Vec<_>>>()?;
                trees.push(Tree { splits, leaves });
            }
            cascades.push(Cascade {
                anchors,
                deltas,
                trees,
            });
        }
        if r.i != b.len() {
            return Err(VisionError::Model("trailing bytes".into()));
        }
        Ok(ShapePredictor { initial, cascades })
    }

    /// Number of landmarks.
    pub fn points(&self) -> usize {
        self.initial.len() / 2
    }

    /// The landmarks of the face in `rect` (`[left, top, right, bottom]`, dlib's inclusive
    /// whole-pixel box), in centre-indexed pixel coordinates.
    pub fn predict(&self, img: &RgbImage, rect: [f32; 4]) -> Vec<[f32; 2]> {
        let [l, t, r, b] = rect;
        let to_img = |x: f32, y: f32| [l + x * (r - l), t + y * (b - t)];
        let (w, h) = (i64::from(img.width()), i64::from(img.height()));
        let raw = img.as_raw();
        let n = self.points();
        let mean: Vec<[f64; 2]> = (0..n)
            .map(|i| {
                [
                    f64::from(self.initial[2 * i]),
                    f64::from(self.initial[2 * i + 1]),
                ]
            })
            .collect();
        let mut shape = self.initial.clone();
        let mut features: Vec<f32> = Vec::new();
        for c in &self.cascades {
            // The similarity from the mean shape to the current one (its 2×2 part) carries the
            // feature offsets along with the face's rotation and scale.
            let cur: Vec<[f64; 2]> = (0..n)
                .map(|i| [f64::from(shape[2 * i]), f64::from(shape[2 * i + 1])])
                .collect();
            let (ma, mb) =
                Similarity::umeyama(&mean, &cur).map_or((1.0, 0.0), |s| (s.a as f32, s.b as f32));
            features.clear();
            for (a, d) in c.anchors.iter().zip(&c.deltas) {
                let a = *a as usize;
                let x = ma * d[0] - mb * d[1] + shape[2 * a];
                let y = mb * d[0] + ma * d[1] + shape[2 * a + 1];
                let [px, py] = to_img(x, y);
                // dlib converts to a whole pixel by rounding half up.
                let (px, py) = ((px + 0.5).floor() as i64, (py + 0.5).floor() as i64);
                features.push(if px >= 0 && px < w && py >= 0 && py < h {
                    let i = (py as usize * w as usize + px as usize) * 3;
                    // dlib's grey level of an RGB pixel: the integer mean.
                    ((u32::from(raw[i]) + u32::from(raw[i + 1]) + u32::from(raw[i + 2])) / 3) as f32
                } else {
                    0.0
                });
            }
            for tree in &c.trees {
                let mut i = 0usize;
                while i < tree.splits.len() {
                    let (a, b, th) = tree.splits[i];
                    i = if features[a as usize] - features[b as usize] > th {
                        2 * i + 1
                    } else {
                        2 * i + 2
                    };
                }
                let leaf = (i - tree.splits.len()) * shape.len();
                for (s, d) in shape
                    .iter_mut()
                    .zip(&tree.leaves[leaf..leaf + self.initial.len()])
                {
                    *s += d;
                }
            }
        }
        (0..n)
            .map(|i| to_img(shape[2 * i], shape[2 * i + 1]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_broken_files() {
        assert!(ShapePredictor::parse(b"nope").is_err());
        let mut b = b"ANJUSP01".to_vec();
        b.extend(5u32.to_le_bytes());
        assert!(ShapePredictor::parse(&b).is_err(), "truncated");
        b.extend(std::iter::repeat_n(0u8, 40));
        b.extend(u32::MAX.to_le_bytes());
        assert!(
            ShapePredictor::parse(&b).is_err(),
            "a count beyond the file"
        );
    }
}
