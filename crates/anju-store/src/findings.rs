//! Findings and the alert lifecycle's writes (DESIGN §6a: one owner of the
//! alert lifecycle).
//!
//! * The central **inbox** (`findings`): what edge workers forward — code,
//!   subject, evidence as JSON — stored once per `(origin, origin_seq)`, read
//!   by the central analyzer in id order.
//! * The edge **outbox** (`edge_findings`, `edge_forward_cursor`, and the
//!   local `events` the forwarder copies): its SQL lives here, behind
//!   methods, so that the edge worker holds no query text of its own.
//! * Alert writes that cannot undo a person's decision: the analyzer
//!   attaches evidence only to an alert that is still active
//!   ([`Store::attach_to_alert`]), and workflow transitions are
//!   compare-and-set on the status ([`Store::transition_alert`]): of two
//!   concurrent transitions from the same state exactly one changes the row.
//!
//! Reading by "id greater than a cursor" needs ids that become visible in
//! ascending order. SQLite has one writer at a time, so they do; on
//! PostgreSQL a sequence value is taken at insert and the row becomes
//! visible at commit, so two concurrent inserters could commit out of order
//! and a reader could move its cursor past a row that commits a moment
//! later. The inserts below therefore lock their table against other
//! writers (reads go on) until commit on PostgreSQL.

use crate::{ms, values_clause_for, Backend, Result, Store, StoreError};
use anju_core::{Alert, AlertId, AlertStatus, Outcome, Timestamp};
use sqlx::Row as _;

/// Rows per multi-row `INSERT` of [`Store::insert_findings`] (5 columns each,
/// well under both backends' parameter limits).
const FINDINGS_CHUNK: usize = 200;

impl Store {
    /// Stores findings forwarded by the edge worker `origin`; `items` are
    /// `(origin_seq, estate, payload JSON)`. Idempotent on
    /// `(origin, origin_seq)`: an item already stored is ignored (a batch
    /// forwarded again after a crash is stored once). All in one
    /// transaction. Returns how many rows were newly inserted.
    ///
    /// # Errors
    /// Database errors (then nothing of the batch is stored).
    pub async fn insert_findings(
        &self,
        origin: &str,
        items: &[(i64, String, String)],
    ) -> Result<u64> {
        if items.is_empty() {
            return Ok(0);
        }
        let now = ms(chrono::Utc::now());
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            // Ids visible in commit order (module docs).
            sqlx::query("LOCK TABLE findings IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        let mut inserted = 0;
        for chunk in items.chunks(FINDINGS_CHUNK) {
            let sql = format!(
                "INSERT INTO findings (origin, origin_seq, estate, payload, received_ms) VALUES {} \
                 ON CONFLICT (origin, origin_seq) DO NOTHING",
                values_clause_for(self.backend, chunk.len(), 5)
            );
            let mut q = sqlx::query(&sql);
            for (seq, estate, payload) in chunk {
                q = q
                    .bind(origin.to_owned())
                    .bind(*seq)
                    .bind(estate.clone())
                    .bind(payload.clone())
                    .bind(now);
            }
            inserted += q.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// Up to `limit` findings with an id greater than `after`, as
    /// `(id, payload JSON)`, ascending by id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn findings_after(&self, after: i64, limit: i64) -> Result<Vec<(i64, String)>> {
        let rows =
            sqlx::query("SELECT id, payload FROM findings WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// The largest finding id stored, 0 when there is none (a consumer that
    /// starts from "now" begins after it).
    ///
    /// # Errors
    /// Database errors.
    pub async fn max_finding_id(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM findings")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Edge outbox: appends a finding (JSON) to be forwarded; returns its
    /// sequence number (ascending in push order).
    ///
    /// # Errors
    /// Database errors.
    pub async fn outbox_push_finding(&self, payload: &str) -> Result<i64> {
        const SQL: &str = "INSERT INTO edge_findings (payload) VALUES ($1) RETURNING seq";
        let row = if self.backend == Backend::Postgres {
            let mut tx = self.pool.begin().await?;
            // Sequence numbers visible in commit order (module docs).
            sqlx::query("LOCK TABLE edge_findings IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
            let row = sqlx::query(SQL)
                .bind(payload.to_owned())
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            row
        } else {
            sqlx::query(SQL)
                .bind(payload.to_owned())
                .fetch_one(&self.pool)
                .await?
        };
        Ok(row.try_get(0)?)
    }

    /// Edge outbox: up to `limit` findings with a sequence number greater
    /// than `after`, as `(seq, payload JSON)`, in push order.
    ///
    /// # Errors
    /// Database errors.
    pub async fn outbox_findings_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String)>> {
        let rows = sqlx::query(
            "SELECT seq, payload FROM edge_findings WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Edge outbox: how far the forwarder named `name` (`events`,
    /// `findings`, ...) has delivered; 0 when it never has.
    ///
    /// # Errors
    /// Database errors.
    pub async fn outbox_cursor(&self, name: &str) -> Result<i64> {
        let row = sqlx::query("SELECT last_id FROM edge_forward_cursor WHERE name = $1")
            .bind(name.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => r.try_get(0)?,
            None => 0,
        })
    }

    /// Edge outbox: records that the forwarder named `name` has delivered
    /// everything up to `id` (insert or overwrite).
    ///
    /// # Errors
    /// Database errors.
    pub async fn set_outbox_cursor(&self, name: &str, id: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO edge_forward_cursor (name, last_id) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET last_id = excluded.last_id",
        )
        .bind(name.to_owned())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Edge outbox: up to `limit` locally stored events with an id greater
    /// than `after`, as `(id, payload JSON, estate)`, ascending by id. The
    /// payload is returned unparsed so that the caller can skip a corrupt row
    /// instead of failing the batch.
    ///
    /// # Errors
    /// Database errors.
    pub async fn local_events_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String, String)>> {
        let rows = sqlx::query(
            "SELECT id, payload, estate FROM events WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    /// Attaches what the analyzer found to alert `a.id`: writes only its
    /// evidence, severity, `updated_at`, building and unit, and only while
    /// the stored alert is still active (`open`, `acknowledged`,
    /// `dispatched`). Never writes status, outcome or reason, so it cannot
    /// undo a person's decision. Returns `false` when no row matched (the
    /// alert was closed meanwhile, or is unknown): the caller opens a new
    /// alert if the finding still stands.
    ///
    /// # Errors
    /// Database errors.
    pub async fn attach_to_alert(&self, a: &Alert) -> Result<bool> {
        let evidence = serde_json::to_string(&a.evidence)
            .map_err(|e| StoreError::Corrupt(format!("evidence: {e}")))?;
        let r = sqlx::query(
            "UPDATE alerts SET evidence = $1, severity = $2, updated_ms = $3, building = $4, \
             unit = $5 WHERE id = $6 AND status IN ('open', 'acknowledged', 'dispatched')",
        )
        .bind(evidence)
        .bind(a.severity.as_str())
        .bind(ms(a.updated_at))
        .bind(a.building.as_ref().map(|b| b.0.clone()))
        .bind(a.unit.as_ref().map(|u| u.0.clone()))
        .bind(a.id)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        self.raise_feed().await;
        Ok(true)
    }

    /// Moves alert `id` from `from` to `to` if — and only if — its stored
    /// status is still `from` (compare-and-set): of two concurrent
    /// transitions from the same state exactly one returns `true`. Sets
    /// `updated_at` to `at`; `reason` and `outcome` overwrite the stored ones
    /// only when given. Returns `false` when the alert is unknown or its
    /// status is no longer `from` (read it again to tell which). The caller
    /// records the transition ([`Store::record_transition`]) when it won.
    ///
    /// # Errors
    /// Database errors.
    pub async fn transition_alert(
        &self,
        id: AlertId,
        from: AlertStatus,
        to: AlertStatus,
        reason: Option<&str>,
        outcome: Option<Outcome>,
        at: Timestamp,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE alerts SET status = $1, updated_ms = $2, reason = COALESCE($3, reason), \
             outcome = COALESCE($4, outcome) WHERE id = $5 AND status = $6",
        )
        .bind(to.as_str())
        .bind(ms(at))
        .bind(reason.map(str::to_owned))
        .bind(outcome.map(Outcome::as_str))
        .bind(id)
        .bind(from.as_str())
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        self.raise_feed().await;
        Ok(true)
    }
}
