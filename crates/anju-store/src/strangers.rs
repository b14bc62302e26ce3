//! The per-estate stranger gallery (migration 0003): anonymous identities
//! for unknown faces, each kept as one template (the cluster's normalised
//! mean) with counts. No photos.

use crate::{Result, Store, StoreError};
use anju_core::Timestamp;
use sqlx::Row as _;

/// One stranger of an estate's gallery.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredStranger {
    /// `s-<estate>-<seq>`.
    pub id: String,
    pub estate: String,
    /// Embedder the centroid belongs to.
    pub model: String,
    pub seq: i64,
    pub centroid: Vec<f32>,
    /// Tracks merged into this stranger.
    pub samples: i64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn ts(ms: i64) -> Result<Timestamp> {
    chrono::DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms}")))
}

impl Store {
    /// The strangers of an estate for an embedder, by sequence number.
    ///
    /// # Errors
    /// Database errors, or rows that do not parse.
    pub async fn strangers(&self, estate: &str, model: &str) -> Result<Vec<StoredStranger>> {
        let rows = sqlx::query(
            "SELECT id, estate, model, seq, centroid, samples, first_seen_ms, last_seen_ms \
             FROM strangers WHERE estate = $1 AND model = $2 ORDER BY seq",
        )
        .bind(estate)
        .bind(model)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let b: Vec<u8> = r.try_get(4)?;
                if !b.len().is_multiple_of(4) {
                    return Err(StoreError::Corrupt("stranger centroid length".into()));
                }
                let centroid = b
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                Ok(StoredStranger {
                    id: r.try_get(0)?,
                    estate: r.try_get(1)?,
                    model: r.try_get(2)?,
                    seq: r.try_get(3)?,
                    centroid,
                    samples: r.try_get(5)?,
                    first_seen: ts(r.try_get(6)?)?,
                    last_seen: ts(r.try_get(7)?)?,
                })
            })
            .collect()
    }

    /// Deletes the strangers of an estate last seen before `before`
    /// (retention: an anonymous face template is kept only while it may
    /// still matter); returns how many.
    ///
    /// # Errors
    /// Database errors.
    pub async fn prune_strangers(&self, estate: &str, before: Timestamp) -> Result<u64> {
        let r = sqlx::query("DELETE FROM strangers WHERE estate = $1 AND last_seen_ms < $2")
            .bind(estate)
            .bind(before.timestamp_millis())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Inserts a stranger or updates its centroid, counts and last sighting.
    ///
    /// # Errors
    /// Database errors (a sequence number taken by another id: conflict).
    pub async fn upsert_stranger(&self, s: &StoredStranger) -> Result<()> {
        sqlx::query(
            "INSERT INTO strangers \
             (id, estate, model, seq, centroid, samples, first_seen_ms, last_seen_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET centroid = excluded.centroid, \
             samples = excluded.samples, last_seen_ms = excluded.last_seen_ms",
        )
        .bind(&s.id)
        .bind(&s.estate)
        .bind(&s.model)
        .bind(s.seq)
        .bind(to_bytes(&s.centroid))
        .bind(s.samples)
        .bind(s.first_seen.timestamp_millis())
        .bind(s.last_seen.timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn strangers_round_trip_and_update() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/s.db", dir.path().display());
        let store = Store::connect(&url).await.unwrap();
        let t0 = chrono::DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
        let mut s = StoredStranger {
            id: "s-FCY-1".into(),
            estate: "FCY".into(),
            model: "dlib_resnet128".into(),
            seq: 1,
            centroid: vec![0.6, 0.8],
            samples: 1,
            first_seen: t0,
            last_seen: t0,
        };
        store.upsert_stranger(&s).await.unwrap();
        s.samples = 2;
        s.centroid = vec![0.8, 0.6];
        s.last_seen = t0 + chrono::Duration::days(1);
        store.upsert_stranger(&s).await.unwrap();
        let got = store.strangers("FCY", "dlib_resnet128").await.unwrap();
        assert_eq!(got, vec![s]);
        assert!(store
            .strangers("XYZ", "dlib_resnet128")
            .await
            .unwrap()
            .is_empty());
    }
}
