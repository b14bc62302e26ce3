//! The units view (issue 13): each unit's registered occupants today and
//! when each was last active — their last credited passage (a use of one
//! of their credentials that the edge judged to be theirs, migration 0009)
//! and their last recognised sighting. Where these stop is where vacancy
//! and sublet suspicion start. And the photos a grid manager takes on a
//! visit, kept with the notice.

use crate::{from_ms, ms, Page, Result, Scope, Store};
use anju_core::Timestamp;
use serde::Serialize;
use sqlx::Row as _;

/// One registered occupant of a unit and their last activity.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OccupantActivity {
    pub person: String,
    pub name: String,
    pub role: String,
    pub lives_alone: bool,
    /// The last passage on one of their credentials credited to them.
    pub last_access: Option<Timestamp>,
    /// The last time a camera recognised them.
    pub last_sighting: Option<Timestamp>,
}

/// A unit with its occupants' last activity.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UnitActivity {
    pub estate: String,
    pub building: String,
    pub unit: String,
    pub area_m2: Option<f64>,
    pub occupants: Vec<OccupantActivity>,
    /// The latest activity of any occupant (`None`: none on record).
    pub last_activity: Option<Timestamp>,
}

impl Store {
    /// A page of units within `scope` (optionally of one estate and
    /// building) with their occupants on `today` (`YYYY-MM-DD`) and each
    /// occupant's last activity.
    ///
    /// # Errors
    /// Database errors or rows that do not parse.
    pub async fn unit_activity(
        &self,
        scope: &Scope,
        estate: Option<&str>,
        building: Option<&str>,
        today: &str,
        page: Page,
    ) -> Result<Vec<UnitActivity>> {
        let (units_sql, binds, day) = crate::reports::units_page_sql(scope, estate, building);
        // The occupants of the page's units today, each with two indexed
        // lookups (the last credited passage on any of their credentials,
        // the last sighting).
        let sql = format!(
            "SELECT u.estate, u.building, u.unit, u.area_m2, p.person_id, p.name, p.role, p.lives_alone, \
             (SELECT MAX(e.ts_ms) FROM credentials c JOIN events e \
                ON e.kind = 'passage' AND e.credential_id = c.credential_id \
               AND e.credential_kind = c.kind AND e.result = 'credited' AND e.estate = u.estate \
              WHERE c.person_id = p.person_id), \
             (SELECT MAX(e.ts_ms) FROM events e WHERE e.person_id = p.person_id AND e.estate = u.estate) \
             FROM ({units_sql}) u \
             LEFT JOIN persons p ON p.estate = u.estate AND p.building = u.building AND p.unit = u.unit \
               AND p.lease_start <= ${day} AND (p.lease_end IS NULL OR p.lease_end > ${day}) \
             ORDER BY u.estate, u.building, u.unit, p.person_id"
        );
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(b);
        }
        q = q.bind(page.limit).bind(page.offset).bind(today.to_owned());
        let rows = q.fetch_all(&self.pool).await?;
        let mut out: Vec<UnitActivity> = Vec::new();
        for r in &rows {
            let key = (
                r.try_get::<String, _>(0)?,
                r.try_get::<String, _>(1)?,
                r.try_get::<String, _>(2)?,
            );
            let same = out.last().is_some_and(|u| {
                (u.estate.as_str(), u.building.as_str(), u.unit.as_str())
                    == (key.0.as_str(), key.1.as_str(), key.2.as_str())
            });
            if !same {
                out.push(UnitActivity {
                    estate: key.0,
                    building: key.1,
                    unit: key.2,
                    area_m2: r.try_get(3)?,
                    occupants: Vec::new(),
                    last_activity: None,
                });
            }
            let Some(person) = r.try_get::<Option<String>, _>(4)? else {
                continue;
            };
            let last_access = r.try_get::<Option<i64>, _>(8)?.map(from_ms).transpose()?;
            let last_sighting = r.try_get::<Option<i64>, _>(9)?.map(from_ms).transpose()?;
            let Some(u) = out.last_mut() else { continue };
            u.last_activity = [u.last_activity, last_access, last_sighting]
                .into_iter()
                .flatten()
                .max();
            u.occupants.push(OccupantActivity {
                person,
                name: r.try_get::<Option<String>, _>(5)?.unwrap_or_default(),
                role: r.try_get::<Option<String>, _>(6)?.unwrap_or_default(),
                lives_alone: r.try_get::<Option<i64>, _>(7)?.unwrap_or(0) != 0,
                last_access,
                last_sighting,
            });
        }
        Ok(out)
    }

    /// Adds a photo taken on the visit of `notice` unless it already has
    /// `max`; returns its id, `None` when full. Counting and inserting are one
    /// step (concurrent uploads cannot pass the limit together).
    ///
    /// # Errors
    /// Database errors.
    pub async fn add_visit_photo(
        &self,
        notice: i64,
        content_type: &str,
        photo: &[u8],
        taken_at: Timestamp,
        max: i64,
    ) -> Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
        if self.backend == crate::Backend::Postgres {
            // One upload per notice at a time (SQLite's writer lock does this there).
            sqlx::query("SELECT pg_advisory_xact_lock(7314, CAST($1 AS INTEGER))")
                .bind(notice.rem_euclid(i64::from(i32::MAX)))
                .execute(&mut *tx)
                .await?;
        }
        let row = sqlx::query(
            "INSERT INTO notice_photos (notice_id, content_type, photo, taken_ms) \
             SELECT $1, $2, $3, $4 \
             WHERE (SELECT COUNT(*) FROM notice_photos WHERE notice_id = $1) < $5 RETURNING id",
        )
        .bind(notice)
        .bind(content_type.to_owned())
        .bind(photo.to_vec())
        .bind(ms(taken_at))
        .bind(max)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.map(|r| r.try_get(0)).transpose().map_err(Into::into)
    }

    /// The photo ids of each of `notices`' visits, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn visit_photo_ids(
        &self,
        notices: &[i64],
    ) -> Result<std::collections::HashMap<i64, Vec<i64>>> {
        let mut out: std::collections::HashMap<i64, Vec<i64>> = Default::default();
        for chunk in notices.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT notice_id, id FROM notice_photos WHERE notice_id IN ({}) ORDER BY id",
                marks.join(",")
            );
            let mut q = sqlx::query(&sql);
            for n in chunk {
                q = q.bind(*n);
            }
            for r in q.fetch_all(&self.pool).await? {
                out.entry(r.try_get(0)?).or_default().push(r.try_get(1)?);
            }
        }
        Ok(out)
    }

    /// One visit photo of `notice`: `(content type, bytes)`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn visit_photo(&self, notice: i64, id: i64) -> Result<Option<(String, Vec<u8>)>> {
        let row = sqlx::query(
            "SELECT content_type, photo FROM notice_photos WHERE notice_id = $1 AND id = $2",
        )
        .bind(notice)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }
}
