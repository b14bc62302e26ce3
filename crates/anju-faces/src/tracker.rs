//! Face tracking across frames (pure: no I/O, no models), so that one
//! passage through an entrance gives one decision.
//!
//! - Association per frame: a detection joins the track whose last box it
//!   overlaps (IoU) or whose recent template it resembles (cosine), best
//!   pairs first (greedy). Two templates that clearly disagree forbid the
//!   pair even when the boxes overlap (two people crossing).
//! - A track is closed after `max_missed` frames without a hit and handed
//!   back as a [`ClosedTrack`] with its best-quality templates, the payload
//!   (e.g. a snapshot crop) of its best face, and its motion.
//! - [`decide`] turns the best templates into one decision by agreement,
//!   as soon as a live track has enough of them ([`Tracker::ready`]) —
//!   a person standing at a gate for ten seconds is identified in the first
//!   second, not when the track closes — and again at close for a track
//!   that never got there.
//! - New tracks are announced ([`Tracker::take_opened`]) so that fusion can
//!   wait for their decision.

use anju_core::{Direction, Timestamp};

/// Tracker settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerConfig {
    /// Minimum IoU of the last box and a detection to associate by position.
    pub iou_min: f32,
    /// Minimum cosine similarity to associate by appearance alone.
    pub sim_min: f32,
    /// Below this cosine, a pair is never associated, whatever the overlap.
    /// Just under the embedder's identity thresholds (FAR 1e-2 ≈ 0.94 for
    /// dlib ResNet): a second person stepping into the first one's place
    /// must start a track of their own (a tailgater hidden in the tenant's
    /// track is a missed alert), while one person split in two tracks only
    /// gives the same identity twice.
    pub sim_reject: f32,
    /// Frames without a hit after which a track is closed.
    pub max_missed: u32,
    /// Templates kept per track (the best by quality).
    pub best_k: usize,
    /// A track is closed (and a new one started) after this many hits, so
    /// that someone lingering in view still yields decisions.
    pub max_hits: u32,
    /// A live track is decided once it has this many identifiable faces
    /// (0: only when it closes).
    pub decide_after: usize,
}

impl Default for TrackerConfig {
    /// Defaults for the dlib ResNet embedder (same-person cosine ≈ 0.95+).
    fn default() -> Self {
        Self {
            iou_min: 0.2,
            sim_min: 0.93,
            sim_reject: 0.90,
            max_missed: 5,
            best_k: 5,
            max_hits: 50,
            decide_after: 3,
        }
    }
}

/// One face found in one frame.
#[derive(Debug, Clone)]
pub struct Detection<P> {
    /// `[x0, y0, x1, y1]` in frame pixels.
    pub bbox: [f32; 4],
    /// Rank of this face for identification (higher is better); only faces
    /// with a template are ranked for identity.
    pub quality: f32,
    /// L2-normalised template, when the face passed the quality gates.
    pub template: Option<Vec<f32>>,
    /// Kept for the best face of the track (e.g. a crop for the snapshot).
    pub payload: P,
}

/// A track that ended.
#[derive(Debug, Clone)]
pub struct ClosedTrack<P> {
    pub id: u64,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    /// Frames with a detection.
    pub hits: u32,
    pub first_bbox: [f32; 4],
    pub last_bbox: [f32; 4],
    /// The best templates by quality, best first, with their quality.
    pub best: Vec<(f32, Vec<f32>)>,
    /// Payload of the best face (the best with a template, else the largest).
    pub best_payload: Option<(f32, P)>,
    /// When the best face was seen.
    pub best_ts: Timestamp,
    /// Identity already decided while the track lived ([`Tracker::mark_decided`]).
    pub decided: bool,
    /// Faces with a template so far.
    pub templated: u32,
}

impl<P> ClosedTrack<P> {
    /// Vertical motion of the face centre from first to last sighting, in
    /// face heights (positive: moving down the image).
    pub fn vertical_motion(&self) -> f32 {
        let cy = |b: &[f32; 4]| (b[1] + b[3]) / 2.0;
        let h = ((self.first_bbox[3] - self.first_bbox[1])
            + (self.last_bbox[3] - self.last_bbox[1]))
            / 2.0;
        if h <= f32::EPSILON {
            return 0.0;
        }
        (cy(&self.last_bbox) - cy(&self.first_bbox)) / h
    }

    /// Mean of the best templates, L2-normalised (`None` without templates).
    pub fn mean_template(&self) -> Option<Vec<f32>> {
        let dim = self.best.first()?.1.len();
        let mut m = vec![0f32; dim];
        for (_, t) in &self.best {
            for (a, b) in m.iter_mut().zip(t) {
                *a += b;
            }
        }
        normalise(m)
    }
}

/// L2-normalises (`None` for a zero or non-finite vector).
pub fn normalise(mut v: Vec<f32>) -> Option<Vec<f32>> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if !n.is_finite() || n <= f32::EPSILON {
        return None;
    }
    v.iter_mut().for_each(|x| *x /= n);
    Some(v)
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Intersection over union of two boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let ix = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let iy = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = ix * iy;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= f32::EPSILON {
        0.0
    } else {
        inter / union
    }
}

#[derive(Debug)]
struct Track<P> {
    closed: ClosedTrack<P>,
    /// Template of the latest face that had one (appearance association).
    recent: Option<Vec<f32>>,
    missed: u32,
    /// `templated` at the last decision attempt.
    tried: u32,
}

/// The tracker of one camera.
#[derive(Debug)]
pub struct Tracker<P> {
    cfg: TrackerConfig,
    tracks: Vec<Track<P>>,
    next_id: u64,
    /// Tracks opened since the last [`Tracker::take_opened`].
    opened: Vec<(u64, Timestamp)>,
}

impl<P> Tracker<P> {
    pub fn new(cfg: TrackerConfig) -> Self {
        Self {
            cfg,
            tracks: Vec::new(),
            next_id: 1,
            opened: Vec::new(),
        }
    }

    /// Tracks opened since the last call: (id, first seen).
    pub fn take_opened(&mut self) -> Vec<(u64, Timestamp)> {
        std::mem::take(&mut self.opened)
    }

    /// Live tracks to decide now: undecided, with at least `decide_after`
    /// identifiable faces and more than at the last attempt (each is
    /// returned once per new face until [`Tracker::mark_decided`]).
    pub fn ready(&mut self) -> Vec<ClosedTrack<P>>
    where
        P: Clone,
    {
        let need = self.cfg.decide_after;
        if need == 0 {
            return Vec::new();
        }
        let mut out = Vec::new();
        for t in &mut self.tracks {
            let c = &t.closed;
            if !c.decided && c.templated as usize >= need && c.templated > t.tried {
                t.tried = c.templated;
                out.push(c.clone());
            }
        }
        out
    }

    /// Records that a live track's identity was decided (it is not decided
    /// again when it closes).
    pub fn mark_decided(&mut self, id: u64) {
        if let Some(t) = self.tracks.iter_mut().find(|t| t.closed.id == id) {
            t.closed.decided = true;
        }
    }

    /// Open tracks.
    pub fn open(&self) -> usize {
        self.tracks.len()
    }

    /// Feeds one analysed frame; returns the tracks that ended with it.
    pub fn update(&mut self, ts: Timestamp, dets: Vec<Detection<P>>) -> Vec<ClosedTrack<P>> {
        // Candidate pairs with a score: appearance matches rank above
        // position-only matches.
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, t) in self.tracks.iter().enumerate() {
            for (di, d) in dets.iter().enumerate() {
                let sim = match (&t.recent, &d.template) {
                    (Some(a), Some(b)) => Some(cosine(a, b)),
                    _ => None,
                };
                if sim.is_some_and(|s| s < self.cfg.sim_reject) {
                    continue;
                }
                let o = iou(&t.closed.last_bbox, &d.bbox);
                let score = match sim {
                    Some(s) if s >= self.cfg.sim_min => 2.0 + s + o,
                    _ if o >= self.cfg.iou_min => o,
                    _ => continue,
                };
                pairs.push((score, ti, di));
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut track_hit = vec![false; self.tracks.len()];
        let mut det_of: Vec<Option<usize>> = vec![None; dets.len()];
        for (_, ti, di) in pairs {
            if !track_hit[ti] && det_of[di].is_none() {
                track_hit[ti] = true;
                det_of[di] = Some(ti);
            }
        }
        for (di, d) in dets.into_iter().enumerate() {
            match det_of[di] {
                Some(ti) => {
                    let k = self.cfg.best_k;
                    let t = &mut self.tracks[ti];
                    t.missed = 0;
                    absorb(&mut t.closed, &mut t.recent, ts, d, k);
                }
                None => {
                    let id = self.next_id;
                    self.next_id += 1;
                    let mut closed = ClosedTrack {
                        id,
                        first_ts: ts,
                        last_ts: ts,
                        hits: 0,
                        first_bbox: d.bbox,
                        last_bbox: d.bbox,
                        best: Vec::new(),
                        best_payload: None,
                        best_ts: ts,
                        decided: false,
                        templated: 0,
                    };
                    let mut recent = None;
                    absorb(&mut closed, &mut recent, ts, d, self.cfg.best_k);
                    self.opened.push((id, ts));
                    self.tracks.push(Track {
                        closed,
                        recent,
                        missed: 0,
                        tried: 0,
                    });
                    track_hit.push(true);
                }
            }
        }
        for (t, hit) in self.tracks.iter_mut().zip(&track_hit) {
            if !hit {
                t.missed += 1;
            }
        }
        let (max, max_hits) = (self.cfg.max_missed, self.cfg.max_hits.max(1));
        let (ended, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.tracks)
            .into_iter()
            .partition(|t| t.missed > max || t.closed.hits >= max_hits);
        self.tracks = open;
        ended.into_iter().map(|t| t.closed).collect()
    }

    /// Closes every open track (stream ended, shutdown).
    pub fn flush(&mut self) -> Vec<ClosedTrack<P>> {
        std::mem::take(&mut self.tracks)
            .into_iter()
            .map(|t| t.closed)
            .collect()
    }
}

fn absorb<P>(
    c: &mut ClosedTrack<P>,
    recent: &mut Option<Vec<f32>>,
    ts: Timestamp,
    d: Detection<P>,
    best_k: usize,
) {
    c.hits += 1;
    c.last_ts = ts;
    c.last_bbox = d.bbox;
    // Payload rank: faces with a template first (by quality, ≥ 2), then by
    // size (< 1).
    let area = (d.bbox[2] - d.bbox[0]).max(0.0) * (d.bbox[3] - d.bbox[1]).max(0.0);
    let rank = if d.template.is_some() {
        2.0 + d.quality.max(0.0)
    } else {
        area / (area + 1e4)
    };
    if c.best_payload.as_ref().is_none_or(|(r, _)| rank > *r) {
        c.best_payload = Some((rank, d.payload));
        c.best_ts = ts;
    }
    if let Some(t) = d.template {
        c.templated += 1;
        *recent = Some(t.clone());
        let pos = c
            .best
            .iter()
            .position(|(q, _)| d.quality > *q)
            .unwrap_or(c.best.len());
        if pos < best_k {
            c.best.insert(pos, (d.quality, t));
            c.best.truncate(best_k);
        }
    }
}

/// How one template of a track was identified against the gallery.
#[derive(Debug, Clone, PartialEq)]
pub enum Vote {
    /// Identified as this person with this similarity.
    Person(String, f32),
    /// Above threshold but not clearly one person.
    Ambiguous,
    Unknown,
}

/// The decision of a whole track.
#[derive(Debug, Clone, PartialEq)]
pub enum TrackDecision {
    /// The person most votes agree on, with the mean similarity of those votes.
    Person(String, f32),
    /// Most votes say unknown: a stranger.
    Stranger,
    /// No agreement (or nothing to decide on): no sighting.
    Undecided,
}

/// Identity by agreement: a person when a strict majority of the track's
/// best faces (and at least `min_votes` of them) identify that same person;
/// a stranger when a strict majority is unknown; else undecided.
pub fn decide(votes: &[Vote], min_votes: usize) -> TrackDecision {
    let n = votes.len();
    if n == 0 {
        return TrackDecision::Undecided;
    }
    let mut tally: Vec<(&str, usize, f32)> = Vec::new();
    let mut unknown = 0usize;
    for v in votes {
        match v {
            Vote::Person(p, s) => match tally.iter_mut().find(|(q, _, _)| q == p) {
                Some(e) => {
                    e.1 += 1;
                    e.2 += s;
                }
                None => tally.push((p, 1, *s)),
            },
            Vote::Unknown => unknown += 1,
            Vote::Ambiguous => {}
        }
    }
    let top = tally
        .iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(a.2.total_cmp(&b.2)));
    if let Some((p, c, s)) = top {
        if *c * 2 > n && *c >= min_votes.max(1) {
            return TrackDecision::Person((*p).to_owned(), s / *c as f32);
        }
    }
    if unknown * 2 > n && unknown >= min_votes.max(1) {
        return TrackDecision::Stranger;
    }
    TrackDecision::Undecided
}

/// Passage direction of a track: from its vertical motion when it moved at
/// least `min_motion` face heights (`down` is the direction of a face moving
/// down the image, i.e. towards a camera mounted above the passage), else
/// the camera's fixed direction, if any.
pub fn direction(
    motion: f32,
    min_motion: f32,
    down: Option<Direction>,
    fixed: Option<Direction>,
) -> Option<Direction> {
    let flip = |d: Direction| match d {
        Direction::In => Direction::Out,
        Direction::Out => Direction::In,
    };
    match down {
        Some(d) if motion >= min_motion => Some(d),
        Some(d) if motion <= -min_motion => Some(flip(d)),
        _ => fixed,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    fn ts(i: i64) -> Timestamp {
        Utc.timestamp_opt(1_700_000_000, 0).unwrap() + Duration::milliseconds(200 * i)
    }

    fn unit(seed: f32, dim: usize) -> Vec<f32> {
        normalise((0..dim).map(|i| (seed * (i as f32 + 1.0)).sin()).collect()).unwrap()
    }

    /// `a` perturbed a little (cosine stays high).
    fn near(a: &[f32], eps: f32, k: usize) -> Vec<f32> {
        let v: Vec<f32> = a
            .iter()
            .enumerate()
            .map(|(i, x)| x + eps * ((i + k) as f32).cos())
            .collect();
        normalise(v).unwrap()
    }

    fn det(x: f32, y: f32, q: f32, t: Option<Vec<f32>>, tag: u32) -> Detection<u32> {
        Detection {
            bbox: [x, y, x + 80.0, y + 100.0],
            quality: q,
            template: t,
            payload: tag,
        }
    }

    #[test]
    fn iou_basics() {
        let a = [0.0, 0.0, 10.0, 10.0];
        assert!((iou(&a, &a) - 1.0).abs() < 1e-6);
        assert_eq!(iou(&a, &[20.0, 20.0, 30.0, 30.0]), 0.0);
        assert!((iou(&a, &[5.0, 0.0, 15.0, 10.0]) - 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn one_passage_one_track_with_best_faces_and_direction() {
        let mut tr = Tracker::new(TrackerConfig::default());
        let p = unit(0.3, 128);
        let mut closed = Vec::new();
        // A face walks down the image for 8 frames; quality rises then falls.
        for i in 0..8 {
            let q = [0.2, 0.5, 0.9, 0.7, 0.95, 0.4, 0.3, 0.1][i];
            let t = (i != 1).then(|| near(&p, 0.02, i));
            let d = det(
                100.0 + i as f32 * 3.0,
                50.0 + i as f32 * 25.0,
                q,
                t,
                i as u32,
            );
            closed.extend(tr.update(ts(i as i64), vec![d]));
        }
        assert!(closed.is_empty());
        assert_eq!(tr.open(), 1);
        for i in 8..8 + 5 {
            assert!(tr.update(ts(i), vec![]).is_empty(), "frame {i}");
        }
        let closed = tr.update(ts(13), vec![]);
        assert_eq!(closed.len(), 1);
        let c = &closed[0];
        assert_eq!(c.hits, 8);
        assert_eq!(c.best.len(), 5);
        let qs: Vec<f32> = c.best.iter().map(|b| b.0).collect();
        assert_eq!(qs, vec![0.95, 0.9, 0.7, 0.4, 0.3]);
        assert_eq!(c.best_payload.as_ref().map(|p| p.1), Some(4));
        assert!(c.vertical_motion() > 1.5);
        assert_eq!(
            direction(c.vertical_motion(), 0.5, Some(Direction::In), None),
            Some(Direction::In)
        );
        assert!(cosine(&c.mean_template().unwrap(), &p) > 0.99);
        assert_eq!(c.first_ts, ts(0));
        assert_eq!(c.last_ts, ts(7));
        assert_eq!(tr.open(), 0);
    }

    #[test]
    fn two_people_crossing_stay_apart_by_appearance() {
        let mut tr = Tracker::new(TrackerConfig::default());
        let (a, b) = (unit(0.3, 128), unit(1.7, 128));
        assert!(cosine(&a, &b) < 0.5);
        // A moves right, B moves left; they overlap in the middle frames.
        for i in 0..7 {
            let xa = 50.0 + i as f32 * 30.0;
            let xb = 230.0 - i as f32 * 30.0;
            let da = det(xa, 100.0, 0.5, Some(near(&a, 0.02, i)), 1);
            let db = det(xb, 100.0, 0.5, Some(near(&b, 0.02, i)), 2);
            assert!(tr.update(ts(i as i64), vec![db, da]).is_empty());
        }
        let closed = tr.flush();
        assert_eq!(closed.len(), 2);
        for c in &closed {
            assert_eq!(c.hits, 7);
            let m = c.mean_template().unwrap();
            let tag = c.best_payload.as_ref().unwrap().1;
            let expect = if tag == 1 { &a } else { &b };
            assert!(cosine(&m, expect) > 0.99, "track {} mixed identities", c.id);
        }
    }

    #[test]
    fn a_face_that_jumps_is_kept_by_appearance_and_track_only_faces_by_position() {
        let mut tr = Tracker::new(TrackerConfig::default());
        let a = unit(0.9, 128);
        tr.update(ts(0), vec![det(0.0, 0.0, 0.5, Some(a.clone()), 0)]);
        // No overlap with the last box, same appearance: same track.
        tr.update(
            ts(1),
            vec![det(300.0, 0.0, 0.5, Some(near(&a, 0.02, 1)), 1)],
        );
        // No template (failed quality gates), overlapping: same track.
        tr.update(ts(2), vec![det(310.0, 5.0, 0.0, None, 2)]);
        assert_eq!(tr.open(), 1);
        // Far away and no template: a new track.
        tr.update(ts(3), vec![det(600.0, 300.0, 0.0, None, 3)]);
        assert_eq!(tr.open(), 2);
        let closed = tr.flush();
        assert_eq!(closed[0].hits, 3);
        assert_eq!(closed[1].hits, 1);
        assert!(closed[1].best.is_empty());
        assert!(closed[1].mean_template().is_none());
    }

    #[test]
    fn overlapping_boxes_with_different_faces_are_not_joined() {
        let mut tr = Tracker::new(TrackerConfig::default());
        tr.update(ts(0), vec![det(0.0, 0.0, 0.5, Some(unit(0.3, 64)), 0)]);
        tr.update(ts(1), vec![det(5.0, 0.0, 0.5, Some(unit(1.7, 64)), 1)]);
        assert_eq!(tr.open(), 2);
    }

    #[test]
    fn a_lingering_face_yields_a_track_every_max_hits() {
        let cfg = TrackerConfig {
            max_hits: 4,
            ..TrackerConfig::default()
        };
        let mut tr = Tracker::new(cfg);
        let a = unit(0.9, 128);
        let mut closed = Vec::new();
        for i in 0..10 {
            closed.extend(tr.update(ts(i), vec![det(0.0, 0.0, 0.5, Some(a.clone()), 0)]));
        }
        assert_eq!(closed.len(), 2);
        assert!(closed.iter().all(|c| c.hits == 4));
        assert_eq!(closed[1].first_ts, ts(4));
        assert_eq!(tr.open(), 1);
    }

    #[test]
    fn a_live_track_is_announced_and_ready_to_decide_after_three_faces() {
        let mut tr = Tracker::new(TrackerConfig::default());
        let a = unit(0.9, 128);
        tr.update(ts(0), vec![det(0.0, 0.0, 0.5, Some(a.clone()), 0)]);
        assert_eq!(tr.take_opened(), vec![(1, ts(0))]);
        assert!(tr.take_opened().is_empty());
        tr.update(ts(1), vec![det(2.0, 0.0, 0.5, None, 1)]);
        tr.update(ts(2), vec![det(4.0, 0.0, 0.6, Some(near(&a, 0.02, 2)), 2)]);
        assert!(
            tr.ready().is_empty(),
            "two identifiable faces are not enough"
        );
        tr.update(ts(3), vec![det(6.0, 0.0, 0.7, Some(near(&a, 0.02, 3)), 3)]);
        let r = tr.ready();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].templated, 3);
        // Not offered again without a new face; offered again with one
        // while undecided; never after it was decided.
        assert!(tr.ready().is_empty());
        tr.update(ts(4), vec![det(8.0, 0.0, 0.7, Some(near(&a, 0.02, 4)), 4)]);
        assert_eq!(tr.ready().len(), 1);
        tr.mark_decided(1);
        tr.update(ts(5), vec![det(9.0, 0.0, 0.7, Some(near(&a, 0.02, 5)), 5)]);
        assert!(tr.ready().is_empty());
        let closed = tr.flush();
        assert!(closed[0].decided);
        assert!(tr.take_opened().is_empty());
    }

    #[test]
    fn decisions_by_agreement() {
        let p = |s: &str, x: f32| Vote::Person(s.into(), x);
        assert_eq!(
            decide(&[p("a", 0.96), p("a", 0.98), Vote::Unknown], 2),
            TrackDecision::Person("a".into(), 0.97)
        );
        assert_eq!(
            decide(&[p("a", 0.96), p("b", 0.98), Vote::Unknown], 1),
            TrackDecision::Undecided
        );
        assert_eq!(
            decide(&[Vote::Unknown, Vote::Unknown, Vote::Ambiguous], 2),
            TrackDecision::Stranger
        );
        assert_eq!(decide(&[p("a", 0.97)], 2), TrackDecision::Undecided);
        assert_eq!(
            decide(&[p("a", 0.97)], 1),
            TrackDecision::Person("a".into(), 0.97)
        );
        assert_eq!(decide(&[], 1), TrackDecision::Undecided);
    }

    #[test]
    fn direction_from_motion_or_camera() {
        let d = Some(Direction::In);
        assert_eq!(direction(1.0, 0.5, d, None), Some(Direction::In));
        assert_eq!(direction(-1.0, 0.5, d, None), Some(Direction::Out));
        assert_eq!(
            direction(0.1, 0.5, d, Some(Direction::Out)),
            Some(Direction::Out)
        );
        assert_eq!(
            direction(2.0, 0.5, None, Some(Direction::In)),
            Some(Direction::In)
        );
        assert_eq!(direction(0.0, 0.5, None, None), None);
    }
}
