//! Registry import (upsert, transactional) and loading.

use crate::{parse, values_clause_for, Result, Row, Store, StoreError};
use anju_core::{
    Building, Credential, CredentialKind, CredentialStatus, Device, DeviceKind, Entrance,
    EntranceKind, Estate, FacesDirection, Grid, Person, PersonRole, Registry, Unit, UnitKey,
    WatchEntry,
};
use chrono::NaiveDate;
use serde::Serialize;
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, Row as _};

/// Counts after an import, as `anju import` prints them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub estates: i64,
    pub buildings: i64,
    pub units: i64,
    pub households: i64,
    pub persons: i64,
    pub credentials: i64,
    pub devices: i64,
    pub watchlist: i64,
    pub faces: i64,
}

type Q<'q> = Query<'q, Any, AnyArguments<'q>>;

/// Largest number of bound parameters per statement (SQLite's default limit
/// is 32,766; PostgreSQL's 65,535).
const MAX_PARAMS: usize = 30_000;

fn date_s(d: Option<NaiveDate>) -> Option<String> {
    d.map(|d| d.format("%Y-%m-%d").to_string())
}

fn credential_status(s: &str) -> Result<CredentialStatus> {
    CredentialStatus::parse(s)
        .ok_or_else(|| StoreError::Corrupt(format!("credential status {s:?}")))
}

/// Bumps the `registry` change counter, which edges and analyzers poll to
/// reload the registry without a restart. Call inside the writing
/// transaction.
pub(crate) async fn bump_registry(tx: &mut sqlx::Transaction<'_, Any>) -> Result<()> {
    sqlx::query("UPDATE change_counters SET n = n + 1 WHERE name = 'registry'")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn entrance_kind(s: &str) -> Result<EntranceKind> {
    match s {
        "estate_gate" => Ok(EntranceKind::EstateGate),
        "building_door" => Ok(EntranceKind::BuildingDoor),
        o => Err(StoreError::Corrupt(format!("entrance kind {o:?}"))),
    }
}

pub(crate) fn faces_s(f: FacesDirection) -> &'static str {
    match f {
        FacesDirection::In => "in",
        FacesDirection::Out => "out",
        FacesDirection::Both => "both",
    }
}

impl Store {
    /// Loads or updates the registry in one transaction: estates, grids,
    /// buildings, entrances, devices and units are upserted; person rows are
    /// upserted by (person, lease start) and never deleted, so a household that
    /// moved out keeps its history; credentials are replaced by the file's.
    ///
    /// # Errors
    /// Database errors; nothing is written then.
    pub async fn import_registry(&self, reg: &Registry) -> Result<ImportSummary> {
        let mut tx = self.pool.begin().await?;
        for e in &reg.estates {
            sqlx::query(
                "INSERT INTO estates (code, name, office) VALUES ($1, $2, $3) \
                 ON CONFLICT (code) DO UPDATE SET name = excluded.name, office = excluded.office",
            )
            .bind(e.code.as_str())
            .bind(&e.name)
            .bind(&e.office)
            .execute(&mut *tx)
            .await?;
        }
        for g in &reg.grids {
            let staff = serde_json::to_string(&g.staff).unwrap_or_else(|_| "[]".into());
            sqlx::query(
                "INSERT INTO grids (estate, code, staff) VALUES ($1, $2, $3) \
                 ON CONFLICT (estate, code) DO UPDATE SET staff = excluded.staff",
            )
            .bind(g.estate.as_str())
            .bind(g.code.as_str())
            .bind(staff)
            .execute(&mut *tx)
            .await?;
        }
        for b in &reg.buildings {
            sqlx::query(
                "INSERT INTO buildings (estate, code, grid) VALUES ($1, $2, $3) \
                 ON CONFLICT (estate, code) DO UPDATE SET grid = excluded.grid",
            )
            .bind(b.estate.as_str())
            .bind(b.code.as_str())
            .bind(b.grid.as_ref().map(|g| g.0.clone()))
            .execute(&mut *tx)
            .await?;
        }
        for n in &reg.entrances {
            sqlx::query(
                "INSERT INTO entrances (estate, code, kind, building) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (estate, code) DO UPDATE SET kind = excluded.kind, building = excluded.building",
            )
            .bind(n.estate.as_str())
            .bind(n.code.as_str())
            .bind(n.kind.as_str())
            .bind(n.building.as_ref().map(|b| b.0.clone()))
            .execute(&mut *tx)
            .await?;
        }
        for d in &reg.devices {
            sqlx::query(
                "INSERT INTO devices (estate, id, kind, entrance, url, faces) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (estate, id) DO UPDATE SET kind = excluded.kind, \
                 entrance = excluded.entrance, url = excluded.url, faces = excluded.faces, \
                 version = devices.version + 1",
            )
            .bind(d.estate.as_str())
            .bind(d.id.as_str())
            .bind(d.kind.as_str())
            .bind(d.entrance.as_str())
            .bind(d.url.clone())
            .bind(d.faces.map(faces_s))
            .execute(&mut *tx)
            .await?;
        }
        for chunk in reg.units.chunks(MAX_PARAMS / 4) {
            let sql = format!(
                "INSERT INTO units (estate, building, unit, area_m2) VALUES {} \
                 ON CONFLICT (estate, building, unit) DO UPDATE SET area_m2 = excluded.area_m2",
                values_clause_for(self.backend, chunk.len(), 4)
            );
            let mut q: Q<'_> = sqlx::query(&sql);
            for u in chunk {
                q = q
                    .bind(u.key.estate.as_str())
                    .bind(u.key.building.as_str())
                    .bind(u.key.unit.as_str())
                    .bind(u.area_m2);
            }
            q.execute(&mut *tx).await?;
        }
        // Ended registrations first: a person who moved has their old row
        // closed before their new current one goes in (one current
        // registration per person, a unique index).
        let mut persons: Vec<&Person> = reg.persons.iter().collect();
        persons.sort_by_key(|p| p.lease_end.is_none());
        for chunk in persons.chunks(MAX_PARAMS / 13) {
            let sql = format!(
                "INSERT INTO persons (person_id, lease_start, estate, building, unit, household, \
                 name, role, id_number, phone, birth_year, lives_alone, lease_end) VALUES {} \
                 ON CONFLICT (person_id, lease_start) DO UPDATE SET estate = excluded.estate, \
                 building = excluded.building, unit = excluded.unit, household = excluded.household, \
                 name = excluded.name, role = excluded.role, id_number = excluded.id_number, \
                 phone = excluded.phone, birth_year = excluded.birth_year, \
                 lives_alone = excluded.lives_alone, lease_end = excluded.lease_end",
                values_clause_for(self.backend, chunk.len(), 13)
            );
            let mut q: Q<'_> = sqlx::query(&sql);
            for p in chunk {
                q = q
                    .bind(p.id.as_str())
                    .bind(p.lease_start.format("%Y-%m-%d").to_string())
                    .bind(p.unit.estate.as_str())
                    .bind(p.unit.building.as_str())
                    .bind(p.unit.unit.as_str())
                    .bind(p.household.as_str())
                    .bind(p.name.as_str())
                    .bind(p.role.as_str())
                    .bind(p.id_number.as_str())
                    .bind(p.phone.as_str())
                    .bind(p.birth_year.map(i64::from))
                    .bind(i64::from(p.lives_alone))
                    .bind(date_s(p.lease_end));
            }
            q.execute(&mut *tx).await.map_err(|e| match &e {
                sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(
                    "a person would have two current registrations: the stored one is not in \
                     the ledger any more — give it its lease_end in the ledger (or move the \
                     person out through the API) before registering them again"
                        .into(),
                ),
                _ => e.into(),
            })?;
        }
        // Every person's ETag (their latest registration's version) moves
        // past all their versions: an import may have changed any of them,
        // and a new row starts at 1, so an If-Match read before the import
        // never matches after it.
        sqlx::query(
            "UPDATE persons SET version = (SELECT MAX(p2.version) FROM persons p2 \
             WHERE p2.person_id = persons.person_id) + 1 \
             WHERE lease_start = (SELECT MAX(p3.lease_start) FROM persons p3 \
             WHERE p3.person_id = persons.person_id)",
        )
        .execute(&mut *tx)
        .await?;
        // Credentials and the watch list are the file's: rows it no longer
        // lists are deleted, the others upserted — keeping what was recorded
        // through the API (a card's status; a watch entry's expiry), which
        // the ledger has no columns for. A credential given to another
        // person starts active again.
        sqlx::query("CREATE TEMPORARY TABLE IF NOT EXISTS import_keys (kind TEXT, id TEXT)")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM import_keys")
            .execute(&mut *tx)
            .await?;
        for chunk in reg.credentials.chunks(MAX_PARAMS / 2) {
            let sql = format!(
                "INSERT INTO import_keys (kind, id) VALUES {}",
                values_clause_for(self.backend, chunk.len(), 2)
            );
            let mut q: Q<'_> = sqlx::query(&sql);
            for c in chunk {
                q = q.bind(c.kind.as_str()).bind(c.id.as_str());
            }
            q.execute(&mut *tx).await?;
        }
        for w in &reg.watchlist {
            sqlx::query("INSERT INTO import_keys (kind, id) VALUES ('watch', $1)")
                .bind(w.person.as_str())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "DELETE FROM credentials WHERE NOT EXISTS (SELECT 1 FROM import_keys k \
             WHERE k.kind = credentials.kind AND k.id = credentials.credential_id)",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM watchlist WHERE NOT EXISTS (SELECT 1 FROM import_keys k \
             WHERE k.kind = 'watch' AND k.id = watchlist.person_id)",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM import_keys")
            .execute(&mut *tx)
            .await?;
        for chunk in reg.credentials.chunks(MAX_PARAMS / 5) {
            let sql = format!(
                "INSERT INTO credentials (kind, credential_id, person_id, valid_from, valid_to) VALUES {} \
                 ON CONFLICT (kind, credential_id) DO UPDATE SET \
                 status = CASE WHEN credentials.person_id = excluded.person_id \
                 THEN credentials.status ELSE 'active' END, \
                 version = credentials.version + CASE WHEN credentials.person_id = excluded.person_id \
                 AND credentials.valid_from IS NOT DISTINCT FROM excluded.valid_from \
                 AND credentials.valid_to IS NOT DISTINCT FROM excluded.valid_to THEN 0 ELSE 1 END, \
                 person_id = excluded.person_id, valid_from = excluded.valid_from, \
                 valid_to = excluded.valid_to",
                values_clause_for(self.backend, chunk.len(), 5)
            );
            let mut q: Q<'_> = sqlx::query(&sql);
            for c in chunk {
                q = q
                    .bind(c.kind.as_str())
                    .bind(c.id.as_str())
                    .bind(c.person.as_str())
                    .bind(date_s(c.valid_from))
                    .bind(date_s(c.valid_to));
            }
            q.execute(&mut *tx).await?;
        }
        for w in &reg.watchlist {
            sqlx::query(
                "INSERT INTO watchlist (person_id, name, reason) VALUES ($1, $2, $3) \
                 ON CONFLICT (person_id) DO UPDATE SET name = excluded.name, reason = excluded.reason, \
                 version = watchlist.version + CASE WHEN watchlist.name = excluded.name \
                 AND watchlist.reason = excluded.reason THEN 0 ELSE 1 END",
            )
                .bind(w.person.as_str())
                .bind(&w.name)
                .bind(&w.reason)
                .execute(&mut *tx)
                .await?;
        }
        bump_registry(&mut tx).await?;
        tx.commit().await?;
        self.raise_feed().await;
        self.registry_summary().await
    }

    /// Counts of what the store holds now.
    ///
    /// # Errors
    /// Database errors.
    pub async fn registry_summary(&self) -> Result<ImportSummary> {
        let row = sqlx::query(
            "SELECT \
             (SELECT COUNT(*) FROM estates), \
             (SELECT COUNT(*) FROM buildings), \
             (SELECT COUNT(*) FROM units), \
             (SELECT COUNT(DISTINCT household) FROM persons), \
             (SELECT COUNT(DISTINCT person_id) FROM persons), \
             (SELECT COUNT(*) FROM credentials), \
             (SELECT COUNT(*) FROM devices), \
             (SELECT COUNT(*) FROM watchlist), \
             (SELECT COUNT(*) FROM face_templates)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(ImportSummary {
            estates: row.try_get(0)?,
            buildings: row.try_get(1)?,
            units: row.try_get(2)?,
            households: row.try_get(3)?,
            persons: row.try_get(4)?,
            credentials: row.try_get(5)?,
            devices: row.try_get(6)?,
            watchlist: row.try_get(7)?,
            faces: row.try_get(8)?,
        })
    }

    /// Loads the whole registry (the edge worker and analyzer keep it in
    /// memory; it is small: thousands of units per estate).
    ///
    /// # Errors
    /// Database errors, or rows that do not parse.
    pub async fn load_registry(&self) -> Result<Registry> {
        let mut reg = Registry::default();
        for r in sqlx::query("SELECT code, name, office FROM estates ORDER BY code")
            .fetch_all(&self.pool)
            .await?
        {
            reg.estates.push(Estate {
                code: r.try_get::<String, _>(0)?.into(),
                name: r.try_get(1)?,
                office: r.try_get(2)?,
            });
        }
        for r in sqlx::query("SELECT estate, code, staff FROM grids ORDER BY estate, code")
            .fetch_all(&self.pool)
            .await?
        {
            let staff: String = r.try_get(2)?;
            reg.grids.push(Grid {
                estate: r.try_get::<String, _>(0)?.into(),
                code: r.try_get::<String, _>(1)?.into(),
                staff: serde_json::from_str(&staff)
                    .map_err(|e| StoreError::Corrupt(format!("grid staff: {e}")))?,
            });
        }
        for r in sqlx::query("SELECT estate, code, grid FROM buildings ORDER BY estate, code")
            .fetch_all(&self.pool)
            .await?
        {
            reg.buildings.push(Building {
                estate: r.try_get::<String, _>(0)?.into(),
                code: r.try_get::<String, _>(1)?.into(),
                grid: r.try_get::<Option<String>, _>(2)?.map(Into::into),
            });
        }
        for r in
            sqlx::query("SELECT estate, code, kind, building FROM entrances ORDER BY estate, code")
                .fetch_all(&self.pool)
                .await?
        {
            reg.entrances.push(Entrance {
                estate: r.try_get::<String, _>(0)?.into(),
                code: r.try_get::<String, _>(1)?.into(),
                kind: entrance_kind(&r.try_get::<String, _>(2)?)?,
                building: r.try_get::<Option<String>, _>(3)?.map(Into::into),
            });
        }
        for r in sqlx::query(
            "SELECT estate, id, kind, entrance, url, faces FROM devices ORDER BY estate, id",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let kind: String = r.try_get(2)?;
            let faces: Option<String> = r.try_get(5)?;
            reg.devices.push(Device {
                estate: r.try_get::<String, _>(0)?.into(),
                id: r.try_get::<String, _>(1)?.into(),
                kind: DeviceKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("device kind {kind:?}")))?,
                entrance: r.try_get::<String, _>(3)?.into(),
                url: r.try_get(4)?,
                faces: match faces.as_deref() {
                    None => None,
                    Some("in") => Some(FacesDirection::In),
                    Some("out") => Some(FacesDirection::Out),
                    Some(_) => Some(FacesDirection::Both),
                },
            });
        }
        for r in sqlx::query(
            "SELECT estate, building, unit, area_m2 FROM units ORDER BY estate, building, unit",
        )
        .fetch_all(&self.pool)
        .await?
        {
            reg.units.push(Unit {
                key: UnitKey::new(
                    r.try_get::<String, _>(0)?,
                    r.try_get::<String, _>(1)?,
                    r.try_get::<String, _>(2)?,
                ),
                area_m2: r.try_get(3)?,
            });
        }
        for r in sqlx::query(
            "SELECT person_id, lease_start, estate, building, unit, household, name, role, \
             id_number, phone, birth_year, lives_alone, lease_end FROM persons ORDER BY person_id, lease_start",
        )
        .fetch_all(&self.pool)
        .await?
        {
            reg.persons.push(person_from_row(&r)?);
        }
        for r in sqlx::query(
            "SELECT kind, credential_id, person_id, valid_from, valid_to, status FROM credentials \
             ORDER BY kind, credential_id",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let kind: String = r.try_get(0)?;
            reg.credentials.push(Credential {
                kind: CredentialKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("credential kind {kind:?}")))?,
                id: r.try_get::<String, _>(1)?.into(),
                person: r.try_get::<String, _>(2)?.into(),
                valid_from: opt_date(r.try_get(3)?)?,
                valid_to: opt_date(r.try_get(4)?)?,
                status: credential_status(&r.try_get::<String, _>(5)?)?,
            });
        }
        for r in
            sqlx::query("SELECT person_id, name, reason, expires FROM watchlist ORDER BY person_id")
                .fetch_all(&self.pool)
                .await?
        {
            reg.watchlist.push(WatchEntry {
                person: r.try_get::<String, _>(0)?.into(),
                name: r.try_get(1)?,
                reason: r.try_get(2)?,
                expires: opt_date(r.try_get(3)?)?,
            });
        }
        for r in sqlx::query(
            "SELECT id FROM qr_passes WHERE revoked_at_ms IS NOT NULL AND valid_to_ms > $1",
        )
        .bind(chrono::Utc::now().timestamp_millis())
        .fetch_all(&self.pool)
        .await?
        {
            reg.qr_revoked.insert(r.try_get(0)?);
        }
        for r in sqlx::query("SELECT estate, overrides FROM estate_rules ORDER BY estate")
            .fetch_all(&self.pool)
            .await?
        {
            let o: String = r.try_get(1)?;
            reg.rules.insert(
                r.try_get::<String, _>(0)?.into(),
                serde_json::from_str(&o)
                    .map_err(|e| StoreError::Corrupt(format!("estate rules: {e}")))?,
            );
        }
        Ok(reg)
    }

    /// Stores a face template (L2-normalised f32 vector) for a person.
    ///
    /// # Errors
    /// Database errors.
    pub async fn add_face_template(
        &self,
        person: &str,
        model: &str,
        vector: &[f32],
        source: &str,
    ) -> Result<i64> {
        let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
        let row = sqlx::query(
            "INSERT INTO face_templates (person_id, model, vector, source, created_ms) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(person)
        .bind(model)
        .bind(bytes)
        .bind(source)
        .bind(chrono::Utc::now().timestamp_millis())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// All face templates of a model: `(person, vector)`.
    ///
    /// # Errors
    /// Database errors.
    /// How many templates each template key holds (`face_templates.model`):
    /// templates of a key the engine no longer makes must be re-enrolled.
    ///
    /// # Errors
    /// Database errors.
    pub async fn face_template_keys(&self) -> Result<Vec<(String, i64)>> {
        sqlx::query("SELECT model, COUNT(*) FROM face_templates GROUP BY model ORDER BY model")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    pub async fn face_templates(&self, model: &str) -> Result<Vec<(String, Vec<f32>)>> {
        let rows = sqlx::query(
            "SELECT person_id, vector FROM face_templates WHERE model = $1 ORDER BY id",
        )
        .bind(model)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let b: Vec<u8> = r.try_get(1)?;
                let v = b
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                Ok((r.try_get(0)?, v))
            })
            .collect()
    }
}

fn opt_date(s: Option<String>) -> Result<Option<NaiveDate>> {
    s.map(|s| {
        NaiveDate::parse_from_str(&s, "%Y-%m-%d")
            .map_err(|_| StoreError::Corrupt(format!("date {s:?}")))
    })
    .transpose()
}

pub(crate) fn person_from_row(r: &Row) -> Result<Person> {
    let role: String = r.try_get(7)?;
    let lease_start: String = r.try_get(1)?;
    Ok(Person {
        id: r.try_get::<String, _>(0)?.into(),
        unit: UnitKey::new(
            r.try_get::<String, _>(2)?,
            r.try_get::<String, _>(3)?,
            r.try_get::<String, _>(4)?,
        ),
        household: r.try_get::<String, _>(5)?.into(),
        name: r.try_get(6)?,
        role: PersonRole::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
        id_number: r.try_get(8)?,
        phone: r.try_get(9)?,
        birth_year: r
            .try_get::<Option<i64>, _>(10)?
            .and_then(|y| i32::try_from(y).ok()),
        lives_alone: r.try_get::<i64, _>(11)? != 0,
        lease_start: parse::<NaiveDate>("lease_start", &lease_start)?,
        lease_end: opt_date(r.try_get(12)?)?,
    })
}
