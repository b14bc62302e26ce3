//! Events (idempotent batched writes) and dead letters.

use crate::{from_ms, ms, values_clause_for, Backend, Result, Store, StoreError};
use anju_core::{Event, Timestamp};
use serde::Serialize;
use sqlx::Row as _;

/// An event ready to be stored: the event with its estate resolved.
pub type StoredEvent = Event;

/// Something rejected at ingest, kept with the reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    pub id: i64,
    pub received_at: Timestamp,
    /// `mqtt`, `replay`, `api`, ...
    pub source: String,
    /// MQTT topic, file:line, request path.
    pub topic: String,
    /// The payload as received (lossy UTF-8 for display).
    pub payload: String,
    pub reason: String,
}

/// Counts by kind, for tests and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EventCounts {
    pub total: i64,
}

const COLS: usize = 13;
/// Rows per INSERT statement (13 parameters each).
const BATCH_ROWS: usize = 1_000;

/// The idempotency key of an event: the device's `event_id`, or for events
/// without one (status reports, sightings from replay files) a key derived
/// from what they say.
pub fn event_key(ev: &Event) -> String {
    match ev.event_id() {
        Some(id) => id.0.clone(),
        None => match ev {
            Event::Sighting { body, .. } => format!(
                "sighting@{}:{}:{}",
                body.ts.timestamp_millis(),
                body.person.as_ref().map_or("", |p| p.as_str()),
                body.stranger.as_ref().map_or("", |s| s.as_str())
            ),
            other => format!(
                "{}@{}",
                other.kind().as_str(),
                other.ts().timestamp_millis()
            ),
        },
    }
}

impl Store {
    /// Stores events in batches inside one transaction; an event already
    /// stored (same estate, device and key) is skipped. Returns how many were
    /// new. Every event must have its estate set.
    ///
    /// # Errors
    /// An event without an estate ([`StoreError::Conflict`]), or a database
    /// error (nothing of this call is stored then).
    pub async fn insert_events(&self, events: &[Event]) -> Result<u64> {
        if events.is_empty() {
            return Ok(0);
        }
        let now = chrono::Utc::now().timestamp_millis();
        let mut tx = self.pool.begin().await?;
        let mut inserted = 0;
        for chunk in events.chunks(BATCH_ROWS) {
            let sql = format!(
                "INSERT INTO events (estate, device, event_id, kind, ts_ms, credential_kind, \
                 credential_id, result, direction, person_id, stranger_id, payload, received_ms) \
                 VALUES {} ON CONFLICT {} DO NOTHING",
                values_clause_for(self.backend, chunk.len(), COLS),
                match self.backend {
                    Backend::Sqlite => "(estate, device, event_id)",
                    // Partitioned by month: the key includes the time.
                    Backend::Postgres => "(estate, device, event_id, ts_ms)",
                }
            );
            let mut q = sqlx::query(&sql);
            for ev in chunk {
                let estate = ev
                    .estate()
                    .ok_or_else(|| StoreError::Conflict("event without estate".into()))?;
                let payload = serde_json::to_string(ev)
                    .map_err(|e| StoreError::Corrupt(format!("event not serialisable: {e}")))?;
                let (ck, cid, result, dir, person, stranger) = match ev {
                    Event::Access { body, .. } => (
                        Some(body.credential.kind.as_str()),
                        Some(body.credential.id.0.clone()),
                        Some(body.result.as_str()),
                        Some(body.direction.as_str()),
                        None,
                        None,
                    ),
                    Event::Sighting { body, .. } => (
                        None,
                        None,
                        None,
                        body.direction.map(|d| d.as_str()),
                        body.person.as_ref().map(|p| p.0.clone()),
                        body.stranger.as_ref().map(|s| s.0.clone()),
                    ),
                    Event::Door { body, .. } => {
                        (None, None, Some(body.state.as_str()), None, None, None)
                    }
                    Event::Status { body, .. } => (
                        None,
                        None,
                        Some(if body.online { "online" } else { "offline" }),
                        None,
                        None,
                        None,
                    ),
                    Event::QrScan { .. } => (None, None, None, None, None, None),
                    // Derived at the edge from an access event (which carries
                    // its own result and direction): the result column is
                    // the judgement (migration 0009); its persons and
                    // strangers are lists, kept in the payload only.
                    Event::Passage { body, .. } => (
                        Some(body.credential.kind.as_str()),
                        Some(body.credential.id.0.clone()),
                        Some(if body.holder_credited {
                            "credited"
                        } else {
                            "not_credited"
                        }),
                        None,
                        None,
                        None,
                    ),
                };
                q = q
                    .bind(estate.as_str())
                    .bind(ev.device().as_str())
                    .bind(event_key(ev))
                    .bind(ev.kind().as_str())
                    .bind(ms(ev.ts()))
                    .bind(ck)
                    .bind(cid)
                    .bind(result)
                    .bind(dir)
                    .bind(person)
                    .bind(stranger)
                    .bind(payload)
                    .bind(now);
            }
            inserted += q.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// Number of stored events, of one estate or all.
    ///
    /// # Errors
    /// Database errors.
    pub async fn count_events(&self, estate: Option<&str>) -> Result<i64> {
        let row = match estate {
            Some(e) => {
                sqlx::query("SELECT COUNT(*) FROM events WHERE estate = $1")
                    .bind(e)
                    .fetch_one(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT COUNT(*) FROM events")
                    .fetch_one(&self.pool)
                    .await?
            }
        };
        Ok(row.try_get(0)?)
    }

    /// Events of an estate with `from <= ts < to`, in time order.
    ///
    /// # Errors
    /// Database errors or unparsable stored payloads.
    pub async fn events_between(
        &self,
        estate: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Event>> {
        let rows = sqlx::query(
            "SELECT payload FROM events WHERE estate = $1 AND ts_ms >= $2 AND ts_ms < $3 \
             ORDER BY ts_ms, id",
        )
        .bind(estate)
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let p: String = r.try_get(0)?;
                serde_json::from_str(&p)
                    .map_err(|e| StoreError::Corrupt(format!("stored event: {e}")))
            })
            .collect()
    }

    /// Records a rejected input with the reason.
    ///
    /// # Errors
    /// Database errors.
    pub async fn insert_dead_letter(
        &self,
        source: &str,
        topic: &str,
        payload: &[u8],
        reason: &str,
    ) -> Result<i64> {
        // Bounded rows: what was rejected is kept as evidence, not whole (a
        // 64 KiB junk payload stays 4 KiB here).
        let payload = &payload[..payload.len().min(MAX_DEAD_LETTER_PAYLOAD)];
        let topic = clip(topic, 512);
        let reason = clip(reason, 1024);
        let row = sqlx::query(
            "INSERT INTO dead_letters (received_ms, source, topic, payload, reason) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(chrono::Utc::now().timestamp_millis())
        .bind(source)
        .bind(topic)
        .bind(payload.to_vec())
        .bind(reason)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Deletes events (every kind: access, door, status, QR scans,
    /// sightings, passages) that happened before `before` (retention);
    /// returns how many.
    ///
    /// On PostgreSQL whole months past `before` go first, as partitions
    /// (with their access rollup), then the rows before `before` in the
    /// month it falls in.
    ///
    /// # Errors
    /// Database errors.
    pub async fn prune_events(&self, before: Timestamp) -> Result<u64> {
        let dropped: i64 = match self.backend {
            Backend::Sqlite => 0,
            Backend::Postgres => sqlx::query("SELECT anju_drop_event_partitions($1)")
                .bind(before.timestamp_millis())
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?,
        };
        let r = sqlx::query("DELETE FROM events WHERE ts_ms < $1")
            .bind(before.timestamp_millis())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() + u64::try_from(dropped).unwrap_or(0))
    }

    /// PostgreSQL: makes the events table's monthly partitions from the
    /// month of `from` through the month of `until` that do not exist yet
    /// (`anju serve` keeps three months ahead); returns how many it made.
    /// SQLite: nothing to do.
    ///
    /// # Errors
    /// Database errors.
    pub async fn prepare_event_partitions(&self, from: Timestamp, until: Timestamp) -> Result<u32> {
        match self.backend {
            Backend::Sqlite => Ok(0),
            Backend::Postgres => {
                let n: i32 = sqlx::query("SELECT anju_ensure_event_partitions($1, $2)")
                    .bind(from.timestamp_millis())
                    .bind(until.timestamp_millis())
                    .fetch_one(&self.pool)
                    .await?
                    .try_get(0)?;
                Ok(u32::try_from(n).unwrap_or(0))
            }
        }
    }

    /// PostgreSQL: the events table's partitions, oldest first, with their
    /// row counts (estimates from the planner's statistics). SQLite: none.
    ///
    /// # Errors
    /// Database errors.
    pub async fn event_partitions(&self) -> Result<Vec<(String, i64)>> {
        if self.backend == Backend::Sqlite {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT c.relname::TEXT, GREATEST(c.reltuples, 0)::BIGINT FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'events'::regclass ORDER BY c.relname",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Deletes dead letters received before `before` (retention); returns
    /// how many.
    ///
    /// # Errors
    /// Database errors.
    pub async fn prune_dead_letters(&self, before: Timestamp) -> Result<u64> {
        let r = sqlx::query("DELETE FROM dead_letters WHERE received_ms < $1")
            .bind(before.timestamp_millis())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// The most recent dead letters, newest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetter>> {
        let rows = sqlx::query(
            "SELECT id, received_ms, source, topic, payload, reason FROM dead_letters \
             ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let payload: Vec<u8> = r.try_get(4)?;
                Ok(DeadLetter {
                    id: r.try_get(0)?,
                    received_at: from_ms(r.try_get(1)?)?,
                    source: r.try_get(2)?,
                    topic: r.try_get(3)?,
                    payload: String::from_utf8_lossy(&payload).into_owned(),
                    reason: r.try_get(5)?,
                })
            })
            .collect()
    }
}

impl Store {
    /// Events stored after row id `after`, in row-id order, at most `limit`:
    /// the analyzer tails the event table with this.
    ///
    /// # Errors
    /// Database errors or unparsable stored payloads.
    pub async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<(i64, Event)>> {
        let rows = sqlx::query("SELECT id, payload FROM events WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        id_payload_rows(&rows)
    }

    /// Events with row ids in `(after, upto]` that happened within
    /// `[since, until]`, in row-id order, at most `limit`: the analyzer's
    /// warm-up. On PostgreSQL only the months of the window are read
    /// (partition pruning); rows outside the window are never decoded.
    ///
    /// # Errors
    /// Database errors or unparsable stored payloads.
    pub async fn events_in_window(
        &self,
        after: i64,
        upto: i64,
        since: Timestamp,
        until: Timestamp,
        limit: i64,
    ) -> Result<Vec<(i64, Event)>> {
        let rows = sqlx::query(
            "SELECT id, payload FROM events WHERE id > $1 AND id <= $2 \
             AND ts_ms >= $3 AND ts_ms <= $4 ORDER BY id LIMIT $5",
        )
        .bind(after)
        .bind(upto)
        .bind(ms(since))
        .bind(ms(until))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        id_payload_rows(&rows)
    }

    /// The highest event row id (0 when empty).
    ///
    /// # Errors
    /// Database errors.
    pub async fn max_event_id(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// The latest `updated_at` of any stored alert of `estate`, if any.
    ///
    /// # Errors
    /// Database errors.
    pub async fn latest_alert_update(&self, estate: &str) -> Result<Option<Timestamp>> {
        let row = sqlx::query("SELECT MAX(updated_ms) FROM alerts WHERE estate = $1")
            .bind(estate)
            .fetch_one(&self.pool)
            .await?;
        row.try_get::<Option<i64>, _>(0)?.map(from_ms).transpose()
    }
}

impl Store {
    /// The most recently closed (dismissed or resolved) alert of this estate,
    /// code and subject: the analyzer uses it to honour the quiet period
    /// after a dismissal or a false alarm.
    ///
    /// # Errors
    /// Database errors.
    pub async fn latest_closed_alert(
        &self,
        estate: &str,
        code: anju_core::AlertCode,
        subject: &anju_core::Subject,
    ) -> Result<Option<anju_core::Alert>> {
        let ids = sqlx::query(
            "SELECT id FROM alerts WHERE estate = $1 AND code = $2 AND subject = $3 \
             AND status IN ('dismissed', 'resolved') ORDER BY updated_ms DESC, id DESC LIMIT 1",
        )
        .bind(estate)
        .bind(code.as_str())
        .bind(subject.key())
        .fetch_optional(&self.pool)
        .await?;
        match ids {
            Some(r) => self.get_alert(r.try_get(0)?, &crate::Scope::all()).await,
            None => Ok(None),
        }
    }
}

/// Most payload bytes a dead letter keeps.
pub const MAX_DEAD_LETTER_PAYLOAD: usize = 4096;

/// `s` cut to at most `max` bytes on a character boundary.
fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `(id, payload)` rows decoded into events.
fn id_payload_rows(rows: &[crate::Row]) -> Result<Vec<(i64, Event)>> {
    rows.iter()
        .map(|r| {
            let p: String = r.try_get(1)?;
            let ev = serde_json::from_str(&p)
                .map_err(|e| StoreError::Corrupt(format!("stored event: {e}")))?;
            Ok((r.try_get(0)?, ev))
        })
        .collect()
}
