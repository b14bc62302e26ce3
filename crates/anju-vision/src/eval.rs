//! `anju eval faces`: verification metrics of the face pipeline on a labelled folder.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::embedder::Template;
use crate::engine::{EngineConfig, FaceEngine};
use crate::error::{Result, VisionError};

/// The JSON printed by `anju eval faces` (DESIGN §6).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    pub images: usize,
    pub faces_detected: usize,
    pub pairs_same: usize,
    pub pairs_diff: usize,
    #[serde(rename = "tar_at_far_1e-2")]
    pub tar_at_far_1e2: f64,
    #[serde(rename = "tar_at_far_1e-3")]
    pub tar_at_far_1e3: f64,
    pub eer: f64,
    #[serde(rename = "threshold_at_far_1e-2")]
    pub threshold_at_far_1e2: f64,
    #[serde(rename = "threshold_at_far_1e-3")]
    pub threshold_at_far_1e3: f64,
    /// Median milliseconds per image with a face: decode excluded, detection + alignment + embedding.
    pub ms_per_face: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lfw_accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lfw_accuracy_std: Option<f64>,
    /// How the chips were aligned: `dlib_5point` or `blazeface_4point`.
    pub alignment: String,
    /// Verification with both sides flip-averaged.
    pub flip: bool,
    /// Open-set 1:N identification, one entry per `--gallery-per-identity K`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub identification: Vec<OneToN>,
}

pub use crate::gallery::PersonRule;

/// Open-set identification at one false-positive identification rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AtFpir {
    /// Share of non-mated searches (the probe's own identity left out of the gallery) whose best
    /// score passes the threshold.
    pub fpir: f64,
    pub threshold: f64,
    /// Share of mated probes whose best match is their own identity above the threshold.
    pub rank1: f64,
    /// Share of mated probes given another person's identity (best match another person above the
    /// threshold): what `credential_misuse` turns into a false alarm, or lets pass.
    pub wrong_identity: f64,
    /// The same two with the gallery's margin rule (best − second-best ≥ margin, else ambiguous).
    pub rank1_with_margin: f64,
    pub wrong_identity_with_margin: f64,
}

/// `anju eval faces --gallery-per-identity K`: K photos of each identity enrolled (flip-averaged,
/// as enrolment does), every other photo probed (as a camera sees it: one view) against the
/// whole gallery.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OneToN {
    pub gallery_per_identity: usize,
    pub rule: PersonRule,
    pub gallery_identities: usize,
    pub gallery_templates: usize,
    /// Mated probes (their identity is enrolled).
    pub probes: usize,
    /// Probes in which no face was found (counted as not identified).
    pub probes_without_face: usize,
    /// The margin the gallery's rule uses (the embedder's, from the manifest).
    pub margin: f64,
    /// Closed-set rank-1: share of mated probes whose best match is their own identity, at any
    /// score (no threshold: the discrimination alone, free of the noisy tail that sets a
    /// threshold at a low FPIR on a few hundred searches).
    pub rank1_closed_set: f64,
    pub at: Vec<AtFpir>,
}

/// Lists `(path, identity)`: from `labels.csv` (`file,identity[,...]`) if present, else one
/// sub-folder per identity holding .jpg/.jpeg/.png files.
pub fn list_labelled(dir: &Path) -> Result<Vec<(PathBuf, String)>> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| VisionError::Io { path, source }
    };
    let labels = dir.join("labels.csv");
    let mut out = Vec::new();
    if labels.is_file() {
        let text = std::fs::read_to_string(&labels).map_err(io(&labels))?;
        let mut lines = text.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .collect();
        let fi = header.iter().position(|h| *h == "file");
        let ii = header.iter().position(|h| *h == "identity");
        let (Some(fi), Some(ii)) = (fi, ii) else {
            return Err(VisionError::Invalid(format!(
                "{}: needs columns file,identity",
                labels.display()
            )));
        };
        for line in lines.filter(|l| !l.trim().is_empty()) {
            let cols: Vec<&str> = line.split(',').map(str::trim).collect();
            match (cols.get(fi), cols.get(ii)) {
                (Some(f), Some(i)) => out.push((dir.join(f), (*i).to_owned())),
                _ => {
                    return Err(VisionError::Invalid(format!(
                        "{}: bad line {line:?}",
                        labels.display()
                    )))
                }
            }
        }
        return Ok(out);
    }
    let mut idents: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    idents.sort();
    for d in idents {
        let name = d
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
            .map_err(io(&d))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png")
                })
            })
            .collect();
        files.sort();
        out.extend(files.into_iter().map(|f| (f, name.clone())));
    }
    Ok(out)
}

/// TAR at a FAR, and the threshold: accept when score > threshold, where threshold is the
/// `floor(far·n)`-th highest impostor score.
pub fn tar_at_far(same: &[f32], diff_desc: &[f32], far: f64) -> (f64, f64) {
    if same.is_empty() || diff_desc.is_empty() {
        return (0.0, 0.0);
    }
    let k = (far * diff_desc.len() as f64).floor() as usize;
    let thr = diff_desc.get(k).copied().unwrap_or(f32::NEG_INFINITY);
    let tar = same.iter().filter(|&&s| s > thr).count() as f64 / same.len() as f64;
    (tar, f64::from(thr))
}

/// Equal error rate (FRR = share of genuine < t, FAR = share of impostors ≥ t).
pub fn eer(same: &[f32], diff: &[f32]) -> f64 {
    if same.is_empty() || diff.is_empty() {
        return 0.0;
    }
    let mut s = same.to_vec();
    let mut d = diff.to_vec();
    s.sort_by(f32::total_cmp);
    d.sort_by(f32::total_cmp);
    let mut ts: Vec<f32> = s.iter().chain(&d).copied().collect();
    ts.sort_by(f32::total_cmp);
    ts.dedup();
    let (ns, nd) = (s.len() as f64, d.len() as f64);
    let mut best = (f64::INFINITY, 0.0);
    for t in ts {
        let frr = s.partition_point(|&x| x < t) as f64 / ns;
        let far = (d.len() - d.partition_point(|&x| x < t)) as f64 / nd;
        if (frr - far).abs() < best.0 {
            best = ((frr - far).abs(), (frr + far) / 2.0);
        }
    }
    best.1
}

fn load(path: &Path) -> Result<image::RgbImage> {
    let bytes = std::fs::read(path).map_err(|source| VisionError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    crate::engine::decode_photo(&bytes)
        .map_err(|e| VisionError::Decode(format!("{}: {e}", path.display())))
}

struct Embedded {
    /// The chip alone (what a camera frame gives).
    template: Option<Template>,
    /// Averaged with its mirror image (what enrolment stores with flip).
    flipped: Option<Template>,
    ms: Option<f64>,
}

fn embed_all(engine: &mut FaceEngine, files: &[PathBuf], progress: bool) -> Result<Vec<Embedded>> {
    let mut out = Vec::with_capacity(files.len());
    let mut err = std::io::stderr();
    for (i, f) in files.iter().enumerate() {
        let img = match load(f) {
            Ok(img) => img,
            Err(e) => {
                // An unreadable photo counts as an image without a face.
                crate::engine::discard(writeln!(err, "\nskipping: {e}"));
                out.push(Embedded {
                    template: None,
                    flipped: None,
                    ms: None,
                });
                continue;
            }
        };
        out.push(match engine.embed_largest_views(&img)? {
            Some((t, f, ms)) => Embedded {
                template: Some(t),
                flipped: f,
                ms: Some(ms),
            },
            None => Embedded {
                template: None,
                flipped: None,
                ms: None,
            },
        });
        if progress {
            crate::engine::discard(write!(err, "\rfaces: {}/{}", i + 1, files.len()));
            crate::engine::discard(err.flush());
        }
    }
    if progress {
        crate::engine::discard(writeln!(err));
    }
    Ok(out)
}

fn sim(a: &Embedded, b: &Embedded, flip: bool) -> f32 {
    let pick = |e: &Embedded| {
        if flip {
            e.flipped.clone()
        } else {
            e.template.clone()
        }
    };
    match (&pick(a), &pick(b)) {
        (Some(x), Some(y)) => x.similarity(y),
        // A missed face counts as a non-match.
        _ => -1.0,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// A pair of the LFW `pairs.txt` format with its fold.
#[derive(Debug, Clone, PartialEq)]
pub struct LfwPair {
    pub a: PathBuf,
    pub b: PathBuf,
    pub same: bool,
    pub fold: usize,
}

/// Parses LFW `pairs.txt`: optional `folds pairs_per_fold` header, then `name i j` and
/// `name1 i name2 j`; images are `DIR/name/name_%04d.jpg`. Without a header, 10 equal folds.
pub fn parse_pairs(dir: &Path, text: &str) -> Result<Vec<LfwPair>> {
    let mut lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut per_fold = None;
    if let Some(first) = lines.first() {
        let f: Vec<&str> = first.split_whitespace().collect();
        if f.len() == 2 && f.iter().all(|x| x.parse::<usize>().is_ok()) {
            let folds: usize = f[0].parse().unwrap_or(10);
            let n: usize = f[1].parse().unwrap_or(0);
            per_fold = Some((folds.max(1), n));
            lines.remove(0);
        }
    }
    let img = |name: &str, i: &str| -> Result<PathBuf> {
        let n: u32 = i
            .parse()
            .map_err(|_| VisionError::Invalid(format!("bad image number {i:?}")))?;
        Ok(dir.join(name).join(format!("{name}_{n:04}.jpg")))
    };
    let total = lines.len();
    let fold_len = match per_fold {
        Some((_, n)) if n > 0 => 2 * n,
        Some((folds, _)) => total.div_ceil(folds),
        None => total.div_ceil(10),
    }
    .max(1);
    let mut out = Vec::with_capacity(total);
    for (k, l) in lines.iter().enumerate() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (a, b, same) = match f.as_slice() {
            [n, i, j] => (img(n, i)?, img(n, j)?, true),
            [n1, i, n2, j] => (img(n1, i)?, img(n2, j)?, false),
            _ => return Err(VisionError::Invalid(format!("bad pairs line {l:?}"))),
        };
        out.push(LfwPair {
            a,
            b,
            same,
            fold: k / fold_len,
        });
    }
    Ok(out)
}

/// 10-fold accuracy: per fold the threshold maximising accuracy on the other folds is applied.
pub fn kfold_accuracy(scores: &[(f32, bool, usize)]) -> (f64, f64) {
    let folds = scores.iter().map(|s| s.2).max().map_or(0, |m| m + 1);
    let acc = |set: &[(f32, bool, usize)], t: f32| {
        set.iter().filter(|(s, same, _)| (*s > t) == *same).count() as f64 / set.len().max(1) as f64
    };
    let mut accs = Vec::new();
    for k in 0..folds {
        let train: Vec<_> = scores.iter().copied().filter(|s| s.2 != k).collect();
        let test: Vec<_> = scores.iter().copied().filter(|s| s.2 == k).collect();
        if test.is_empty() {
            continue;
        }
        let mut cands: Vec<f32> = train.iter().map(|s| s.0).collect();
        cands.push(-1.0);
        cands.sort_by(f32::total_cmp);
        cands.dedup();
        let mut best = (-1.0, 0.0f32);
        for t in cands {
            let a = acc(&train, t);
            if a > best.0 {
                best = (a, t);
            }
        }
        accs.push(acc(&test, best.1));
    }
    let n = accs.len().max(1) as f64;
    let mean = accs.iter().sum::<f64>() / n;
    let var = accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Open-set 1:N identification over embedded photos (see [`OneToN`]). Per identity, the first
/// `k` photos with a face are the gallery (identities with no photo left to probe stay enrolled
/// as distractors); the rest are probes.
fn one_to_n(ids: &[String], emb: &[Embedded], k: usize, rule: PersonRule, margin: f32) -> OneToN {
    // Identities in first-seen order, their photo indices in order.
    let mut order: Vec<&str> = Vec::new();
    let mut photos: std::collections::HashMap<&str, Vec<usize>> = Default::default();
    for (i, id) in ids.iter().enumerate() {
        photos
            .entry(id.as_str())
            .or_insert_with(|| {
                order.push(id.as_str());
                Vec::new()
            })
            .push(i);
    }
    // Gallery: per person, its templates (flip-averaged, like enrolment).
    let mut gallery: Vec<(usize, Vec<Template>)> = Vec::new();
    let mut probes: Vec<(usize, Option<&Template>)> = Vec::new();
    for (p, id) in order.iter().enumerate() {
        let idx = &photos[id];
        let enrolled: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|&i| emb[i].flipped.is_some())
            .take(k)
            .collect();
        let ts: Vec<Template> = enrolled
            .iter()
            .filter_map(|&i| emb[i].flipped.clone())
            .collect();
        if ts.is_empty() {
            continue;
        }
        for &i in idx.iter().filter(|i| !enrolled.contains(i)) {
            probes.push((p, emb[i].template.as_ref()));
        }
        let ts = match rule {
            PersonRule::BestOfTemplates => ts,
            PersonRule::MeanTemplate => {
                let mut m = vec![0f32; ts[0].0.len()];
                for t in &ts {
                    m.iter_mut().zip(&t.0).for_each(|(a, b)| *a += b);
                }
                Template::from_raw(m).into_iter().collect()
            }
        };
        gallery.push((p, ts));
    }
    let templates = gallery.iter().map(|(_, t)| t.len()).sum();
    // Per probe: best and second-best person (mated search), and the best other person
    // (non-mated search: own identity left out).
    struct Search {
        best_is_own: bool,
        best: f32,
        second: f32,
        other: f32,
    }
    let mut searches: Vec<Option<Search>> = Vec::new();
    for (own, t) in &probes {
        let Some(t) = t else {
            searches.push(None);
            continue;
        };
        let mut scores: Vec<(f32, bool)> = gallery
            .iter()
            .map(|(p, ts)| {
                let s = ts
                    .iter()
                    .map(|g| g.similarity(t))
                    .fold(f32::NEG_INFINITY, f32::max);
                (s, p == own)
            })
            .collect();
        scores.sort_by(|a, b| b.0.total_cmp(&a.0));
        let others: Vec<f32> = scores.iter().filter(|s| !s.1).map(|s| s.0).collect();
        searches.push(Some(Search {
            best_is_own: scores.first().is_some_and(|s| s.1),
            best: scores.first().map_or(-1.0, |s| s.0),
            second: scores.get(1).map_or(-1.0, |s| s.0),
            other: others.first().copied().unwrap_or(-1.0),
        }));
    }
    let n = probes.len().max(1) as f64;
    let mut non_mated: Vec<f32> = searches.iter().flatten().map(|s| s.other).collect();
    non_mated.sort_by(|a, b| b.total_cmp(a));
    let at = [1e-2, 1e-3]
        .iter()
        .map(|&fpir| {
            let (_, thr) = tar_at_far(&[0.0], &non_mated, fpir);
            let thr = thr as f32;
            let count = |f: &dyn Fn(&Search) -> bool| {
                searches.iter().flatten().filter(|s| f(s)).count() as f64 / n
            };
            AtFpir {
                fpir,
                threshold: round4(f64::from(thr)),
                rank1: round4(count(&|s| s.best_is_own && s.best > thr)),
                wrong_identity: round4(count(&|s| !s.best_is_own && s.best > thr)),
                rank1_with_margin: round4(count(&|s| {
                    s.best_is_own && s.best > thr && s.best - s.second >= margin
                })),
                wrong_identity_with_margin: round4(count(&|s| {
                    !s.best_is_own && s.best > thr && s.best - s.second >= margin
                })),
            }
        })
        .collect();
    OneToN {
        gallery_per_identity: k,
        rule,
        gallery_identities: gallery.len(),
        gallery_templates: templates,
        probes: probes.len(),
        probes_without_face: probes.iter().filter(|(_, t)| t.is_none()).count(),
        margin: round4(f64::from(margin)),
        rank1_closed_set: round4(
            searches.iter().flatten().filter(|s| s.best_is_own).count() as f64 / n,
        ),
        at,
    }
}

/// Runs the default face pipeline (largest face per image) over `dir` and computes the
/// verification metrics over all image pairs; with `pairs`, also the LFW 10-fold accuracy.
pub fn eval_faces(dir: &Path, pairs: Option<&Path>, progress: bool) -> Result<EvalReport> {
    eval_faces_with(EngineConfig::default(), dir, pairs, progress)
}

/// [`eval_faces`] with an explicit engine configuration (e.g. `flip: true`).
pub fn eval_faces_with(
    config: EngineConfig,
    dir: &Path,
    pairs: Option<&Path>,
    progress: bool,
) -> Result<EvalReport> {
    eval_faces_full(config, dir, pairs, &[], progress)
}

/// [`eval_faces_with`] plus open-set 1:N identification with `k` enrolled photos per identity
/// for each `k` in `gallery_per_identity` (both comparison rules).
pub fn eval_faces_full(
    config: EngineConfig,
    dir: &Path,
    pairs: Option<&Path>,
    gallery_per_identity: &[usize],
    progress: bool,
) -> Result<EvalReport> {
    let flip = config.flip;
    let mut engine = FaceEngine::new(config)?;
    let alignment = if engine.has_landmarks() {
        "dlib_5point"
    } else {
        "blazeface_4point"
    };
    let margin = engine.thresholds().margin;
    let items = list_labelled(dir)?;
    if items.is_empty() {
        return Err(VisionError::Invalid(format!(
            "no images in {}",
            dir.display()
        )));
    }
    let files: Vec<PathBuf> = items.iter().map(|(p, _)| p.clone()).collect();
    let emb = embed_all(&mut engine, &files, progress)?;
    let mut same = Vec::new();
    let mut diff = Vec::new();
    for i in 0..items.len() {
        for j in i + 1..items.len() {
            let s = sim(&emb[i], &emb[j], flip);
            if items[i].1 == items[j].1 {
                same.push(s);
            } else {
                diff.push(s);
            }
        }
    }
    let mut diff_desc = diff.clone();
    diff_desc.sort_by(|a, b| b.total_cmp(a));
    let (t2, thr2) = tar_at_far(&same, &diff_desc, 1e-2);
    let (t3, thr3) = tar_at_far(&same, &diff_desc, 1e-3);
    let mut report = EvalReport {
        images: items.len(),
        faces_detected: emb.iter().filter(|e| e.template.is_some()).count(),
        pairs_same: same.len(),
        pairs_diff: diff.len(),
        tar_at_far_1e2: round4(t2),
        tar_at_far_1e3: round4(t3),
        eer: round4(eer(&same, &diff)),
        threshold_at_far_1e2: round4(thr2),
        threshold_at_far_1e3: round4(thr3),
        ms_per_face: (median(emb.iter().filter_map(|e| e.ms).collect()) * 100.0).round() / 100.0,
        lfw_accuracy: None,
        lfw_accuracy_std: None,
        alignment: alignment.to_owned(),
        flip,
        identification: Vec::new(),
    };
    let ids: Vec<String> = items.iter().map(|(_, id)| id.clone()).collect();
    for &k in gallery_per_identity {
        for rule in [PersonRule::BestOfTemplates, PersonRule::MeanTemplate] {
            if k == 1 && rule == PersonRule::MeanTemplate {
                continue; // the same as best-of with one template
            }
            report
                .identification
                .push(one_to_n(&ids, &emb, k.max(1), rule, margin));
        }
    }
    if let Some(pairs) = pairs {
        let text = std::fs::read_to_string(pairs).map_err(|source| VisionError::Io {
            path: pairs.to_path_buf(),
            source,
        })?;
        let list = parse_pairs(dir, &text)?;
        let mut uniq: Vec<PathBuf> = list
            .iter()
            .flat_map(|p| [p.a.clone(), p.b.clone()])
            .collect();
        uniq.sort();
        uniq.dedup();
        let emb = embed_all(&mut engine, &uniq, progress)?;
        let find = |p: &PathBuf| uniq.binary_search(p).ok().map(|i| &emb[i]);
        let mut scores = Vec::with_capacity(list.len());
        for p in &list {
            let s = match (find(&p.a), find(&p.b)) {
                (Some(a), Some(b)) => sim(a, b, flip),
                _ => -1.0,
            };
            scores.push((s, p.same, p.fold));
        }
        let (acc, std) = kfold_accuracy(&scores);
        report.lfw_accuracy = Some(round4(acc));
        report.lfw_accuracy_std = Some(round4(std));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_parse_and_folds() {
        let text = "2 1\nA 1 2\nA 1 B 3\nC 1 2\nC 2 D 1\n";
        let p = parse_pairs(Path::new("/d"), text).expect("parse");
        assert_eq!(p.len(), 4);
        assert_eq!(p[0].a, PathBuf::from("/d/A/A_0001.jpg"));
        assert!(p[0].same && !p[1].same);
        assert_eq!(
            p.iter().map(|x| x.fold).collect::<Vec<_>>(),
            vec![0, 0, 1, 1]
        );
    }

    fn emb(v: &[f32]) -> Embedded {
        let t = Template::from_raw(v.to_vec());
        Embedded {
            template: t.clone(),
            flipped: t,
            ms: None,
        }
    }

    /// Open-set 1:N on hand-made templates: two photos per identity (K = 1: one enrolled, one
    /// probed). `c`'s probe looks like `a`: with a threshold below that score it is a wrong
    /// identity; a probe without a face is not identified.
    #[test]
    fn one_to_n_counts_rank1_and_wrong_identities() {
        let ids: Vec<String> = ["a", "a", "b", "b", "c", "c", "d", "d"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let mut e = vec![
            emb(&[1.0, 0.0, 0.0, 0.0]),
            emb(&[0.95, 0.31, 0.0, 0.0]),
            emb(&[0.0, 1.0, 0.0, 0.0]),
            emb(&[0.0, 0.96, 0.28, 0.0]),
            emb(&[0.0, 0.0, 1.0, 0.0]),
            emb(&[0.9, 0.0, 0.43, 0.0]),
            emb(&[0.0, 0.0, 0.0, 1.0]),
            emb(&[0.0, 0.0, 0.0, 1.0]),
        ];
        e[7] = Embedded {
            template: None,
            flipped: None,
            ms: None,
        };
        let r = one_to_n(&ids, &e, 1, PersonRule::BestOfTemplates, 0.0);
        assert_eq!((r.gallery_identities, r.gallery_templates), (4, 4));
        assert_eq!((r.probes, r.probes_without_face), (4, 1));
        // Non-mated best scores: the highest is c's probe vs a (0.9023 once normalised).
        let at = &r.at[0];
        assert!((at.threshold - 0.9023).abs() < 1e-3, "{at:?}");
        // a (0.95) and b (0.96) identified above 0.9; c's probe goes to a at 0.9 — not above it.
        assert_eq!(at.rank1, 0.5);
        assert_eq!(at.wrong_identity, 0.0);
    }

    #[test]
    fn metrics() {
        let same = [0.9, 0.8, 0.95, 0.5];
        let mut diff: Vec<f32> = (0..100).map(|i| i as f32 / 200.0).collect();
        diff.sort_by(|a, b| b.total_cmp(a));
        let (tar, thr) = tar_at_far(&same, &diff, 1e-2);
        assert!((thr - 0.49).abs() < 1e-6);
        assert_eq!(tar, 1.0);
        assert!(eer(&same, &diff) < 0.05);
        let scores: Vec<(f32, bool, usize)> = (0..40)
            .map(|i| (if i % 2 == 0 { 0.9 } else { 0.1 }, i % 2 == 0, i % 10))
            .collect();
        assert_eq!(kfold_accuracy(&scores).0, 1.0);
    }
}
