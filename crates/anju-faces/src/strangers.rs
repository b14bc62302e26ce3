//! The per-estate stranger gallery: unknown tracks' mean templates are
//! clustered incrementally (join the nearest stranger when the cosine
//! similarity reaches the threshold, else start `s-<estate>-<n>`), so the
//! same unknown face gets the same anonymous id over days. Persisted in the
//! local store (templates and counts only, no photos) through
//! [`anju_store::Store::upsert_stranger`].

use crate::tracker::{cosine, normalise};
use anju_core::Timestamp;
use anju_store::StoredStranger;

/// The strangers of one estate for one embedder.
#[derive(Debug, Clone)]
pub struct StrangerGallery {
    pub estate: String,
    pub model: String,
    /// Minimum cosine similarity to join an existing stranger.
    pub threshold: f32,
    strangers: Vec<StoredStranger>,
    next_seq: i64,
}

/// The outcome of [`StrangerGallery::assign`]: the stranger (as it must be
/// stored now), whether it is new, and the similarity to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Assigned {
    pub stranger: StoredStranger,
    pub created: bool,
    pub similarity: f32,
}

impl StrangerGallery {
    pub fn new(
        estate: impl Into<String>,
        model: impl Into<String>,
        threshold: f32,
        stored: Vec<StoredStranger>,
    ) -> Self {
        let next_seq = stored.iter().map(|s| s.seq).max().unwrap_or(0) + 1;
        Self {
            estate: estate.into(),
            model: model.into(),
            threshold,
            strangers: stored,
            next_seq,
        }
    }

    /// Forgets the strangers last seen before `cutoff` (retention); a face
    /// seen again later is a new stranger. Returns how many.
    pub fn forget_before(&mut self, cutoff: Timestamp) -> usize {
        let before = self.strangers.len();
        self.strangers.retain(|s| s.last_seen >= cutoff);
        before - self.strangers.len()
    }

    pub fn len(&self) -> usize {
        self.strangers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.strangers.is_empty()
    }

    /// Assigns a (normalised) template seen at `ts` to a stranger; `None`
    /// for a template of the wrong dimension or a zero vector.
    pub fn assign(&mut self, template: &[f32], ts: Timestamp) -> Option<Assigned> {
        let t = normalise(template.to_vec())?;
        let nearest = self
            .strangers
            .iter()
            .enumerate()
            .filter(|(_, s)| s.centroid.len() == t.len())
            .map(|(i, s)| (i, cosine(&s.centroid, &t)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((i, sim)) = nearest {
            if sim >= self.threshold {
                let s = &mut self.strangers[i];
                // Running mean of the members, kept normalised.
                let n = s.samples.max(1) as f32;
                let mean: Vec<f32> = s.centroid.iter().zip(&t).map(|(c, x)| c * n + x).collect();
                if let Some(m) = normalise(mean) {
                    s.centroid = m;
                }
                s.samples += 1;
                if ts > s.last_seen {
                    s.last_seen = ts;
                }
                return Some(Assigned {
                    stranger: s.clone(),
                    created: false,
                    similarity: sim,
                });
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let s = StoredStranger {
            id: format!("s-{}-{seq}", self.estate),
            estate: self.estate.clone(),
            model: self.model.clone(),
            seq,
            centroid: t,
            samples: 1,
            first_seen: ts,
            last_seen: ts,
        };
        self.strangers.push(s.clone());
        Some(Assigned {
            stranger: s,
            created: true,
            similarity: nearest.map_or(0.0, |n| n.1),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn v(seed: f32) -> Vec<f32> {
        normalise((0..128).map(|i| (seed * (i as f32 + 1.0)).sin()).collect()).unwrap()
    }

    fn noisy(a: &[f32], k: usize) -> Vec<f32> {
        let w: Vec<f32> = a
            .iter()
            .enumerate()
            .map(|(i, x)| x + 0.02 * ((i * 7 + k) as f32).cos())
            .collect();
        normalise(w).unwrap()
    }

    #[tokio::test]
    async fn same_face_same_id_over_restarts() {
        let t0 = chrono::DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
        let mut g = StrangerGallery::new("FCY", "m", 0.95, Vec::new());
        let (a, b) = (v(0.3), v(1.7));
        let x = g.assign(&noisy(&a, 1), t0).unwrap();
        assert!(x.created);
        assert_eq!(x.stranger.id, "s-FCY-1");
        let y = g.assign(&noisy(&b, 2), t0).unwrap();
        assert_eq!(y.stranger.id, "s-FCY-2");
        let z = g.assign(&noisy(&a, 3), t0).unwrap();
        assert!(!z.created);
        assert_eq!(z.stranger.id, "s-FCY-1");
        assert_eq!(z.stranger.samples, 2);
        assert!(z.similarity > 0.95);

        // Persist, reload (another day, a restarted worker): same ids, new ones continue.
        let dir = tempfile::tempdir().unwrap();
        let store = anju_store::Store::connect(&format!("sqlite://{}/l.db", dir.path().display()))
            .await
            .unwrap();
        for s in [&y.stranger, &z.stranger] {
            store.upsert_stranger(s).await.unwrap();
        }
        let stored = store.strangers("FCY", "m").await.unwrap();
        let mut g2 = StrangerGallery::new("FCY", "m", 0.95, stored);
        assert_eq!(g2.len(), 2);
        let day2 = t0 + chrono::Duration::days(1);
        let again = g2.assign(&noisy(&b, 9), day2).unwrap();
        assert_eq!(again.stranger.id, "s-FCY-2");
        assert_eq!(again.stranger.last_seen, day2);
        assert_eq!(again.stranger.first_seen, t0);
        let new = g2.assign(&v(2.9), day2).unwrap();
        assert_eq!(new.stranger.id, "s-FCY-3");
        assert!(g2.assign(&[0.0; 128], day2).is_none());
    }

    #[test]
    fn forgets_strangers_past_their_retention() {
        let mut g = StrangerGallery::new("FCY", "m", 0.5, Vec::new());
        let t0: Timestamp = "2026-03-01T08:00:00Z".parse().unwrap();
        let a = [1.0, 0.0, 0.0, 0.0];
        let b = [0.0, 1.0, 0.0, 0.0];
        g.assign(&a, t0).unwrap();
        g.assign(&b, t0 + chrono::Duration::days(20)).unwrap();
        assert_eq!(g.forget_before(t0 + chrono::Duration::days(10)), 1);
        assert_eq!(g.len(), 1);
        // The forgotten face is a new stranger when it comes back.
        let again = g.assign(&a, t0 + chrono::Duration::days(21)).unwrap();
        assert!(again.created);
    }
}
