//! Registry writes of the administration API (issue 15): credentials,
//! households and persons, the watch list.
//!
//! Every write is one transaction that checks the version the caller read
//! (optimistic concurrency: [`StoreError::Stale`] when another write came
//! first), changes the rows, appends an audit record naming the person with
//! the value before and after, and bumps the `registry` change counter that
//! running edges and analyzers poll. Callers check scope and role; the store
//! checks references (the unit exists, the person exists).

use crate::alerts::scope_sql;
use crate::registry::{bump_registry, person_from_row};
use crate::{from_ms, ms, Result, Scope, Store, StoreError};
use anju_core::{
    Credential, CredentialKind, CredentialStatus, Person, PersonRole, Timestamp, UnitKey,
    WatchEntry,
};
use chrono::NaiveDate;
use serde::Serialize;
use sqlx::{Any, Row as _, Transaction};

/// Who makes a change and when; the audit records it with the change.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub by: &'a str,
    pub at: Timestamp,
}

/// A credential as the administration API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredCredential {
    pub kind: String,
    pub id: String,
    pub person: String,
    pub valid_from: Option<String>,
    pub valid_to: Option<String>,
    pub status: CredentialStatus,
    pub status_at: Option<Timestamp>,
    pub status_by: Option<String>,
    pub status_note: Option<String>,
    /// The `ETag`.
    pub version: i64,
}

/// A watch-list entry with who added it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredWatch {
    pub person: String,
    pub name: String,
    pub reason: String,
    pub expires: Option<String>,
    pub added_by: Option<String>,
    pub added_at: Option<Timestamp>,
    pub version: i64,
}

/// Fields of a person that an administrator may change in place (the
/// current registration's row). `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PersonPatch {
    pub name: Option<String>,
    pub id_number: Option<String>,
    pub phone: Option<String>,
    /// `Some(None)` clears it.
    pub birth_year: Option<Option<i32>>,
    pub lives_alone: Option<bool>,
    pub role: Option<PersonRole>,
}

impl PersonPatch {
    pub fn is_empty(&self) -> bool {
        *self == PersonPatch::default()
    }
}

/// What deleting a person removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PersonDeleted {
    pub registrations: u64,
    pub credentials: u64,
    pub templates: u64,
    pub photo: bool,
    pub snapshots: u64,
    pub watchlist: bool,
}

const CRED_COLS: &str = "kind, credential_id, person_id, valid_from, valid_to, status, \
                         status_at_ms, status_by, status_note, version";

fn cred_from_row(r: &crate::Row) -> Result<StoredCredential> {
    let status: String = r.try_get(5)?;
    Ok(StoredCredential {
        kind: r.try_get(0)?,
        id: r.try_get(1)?,
        person: r.try_get(2)?,
        valid_from: r.try_get(3)?,
        valid_to: r.try_get(4)?,
        status: CredentialStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("credential status {status:?}")))?,
        status_at: r.try_get::<Option<i64>, _>(6)?.map(from_ms).transpose()?,
        status_by: r.try_get(7)?,
        status_note: r.try_get(8)?,
        version: r.try_get(9)?,
    })
}

const WATCH_COLS: &str = "person_id, name, reason, expires, added_by, added_at_ms, version";

fn watch_from_row(r: &crate::Row) -> Result<StoredWatch> {
    Ok(StoredWatch {
        person: r.try_get(0)?,
        name: r.try_get(1)?,
        reason: r.try_get(2)?,
        expires: r.try_get(3)?,
        added_by: r.try_get(4)?,
        added_at: r.try_get::<Option<i64>, _>(5)?.map(from_ms).transpose()?,
        version: r.try_get(6)?,
    })
}

/// A unique-key violation (a concurrent write won) as
/// [`StoreError::Conflict`]; other errors as they are.
fn unique_violation(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what()),
        _ => e.into(),
    }
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Appends the audit record of a registry write inside its transaction.
pub(crate) async fn audit_tx(
    tx: &mut Transaction<'_, Any>,
    change: Change<'_>,
    action: &str,
    object: &str,
    person: impl Into<Option<&str>>,
    detail: serde_json::Value,
) -> Result<()> {
    let person: Option<&str> = person.into();
    sqlx::query(
        "INSERT INTO audit_log (at_ms, user_name, action, object, detail, person_id) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(ms(change.at))
    .bind(change.by.to_owned())
    .bind(action.to_owned())
    .bind(object.to_owned())
    .bind(detail.to_string())
    .bind(person.map(str::to_owned))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The person's registration rows, oldest first, inside a transaction.
async fn person_rows(tx: &mut Transaction<'_, Any>, id: &str) -> Result<Vec<(Person, i64)>> {
    sqlx::query(
        "SELECT person_id, lease_start, estate, building, unit, household, name, role, \
         id_number, phone, birth_year, lives_alone, lease_end, version FROM persons \
         WHERE person_id = $1 ORDER BY lease_start",
    )
    .bind(id.to_owned())
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|r| Ok((person_from_row(r)?, r.try_get::<i64, _>(13)?)))
    .collect()
}

/// The person's ETag: the version of their latest registration (every
/// write to the person changes it).
pub fn person_etag(rows: &[(Person, i64)]) -> Option<i64> {
    rows.last().map(|(_, v)| *v)
}

impl Store {
    /// A transaction that holds the write lock from its first statement on
    /// SQLite (as `BEGIN IMMEDIATE` would): these writes read, then write,
    /// and a deferred transaction whose snapshot another writer overtook
    /// meanwhile would fail with `SQLITE_BUSY_SNAPSHOT` instead of waiting
    /// its turn. On PostgreSQL an ordinary transaction.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>> {
        let mut tx = self.pool.begin().await?;
        if self.backend == crate::Backend::Sqlite {
            sqlx::query("UPDATE change_counters SET n = n WHERE name = 'registry'")
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// The `registry` change counter (moves with every registry write).
    ///
    /// # Errors
    /// Database errors.
    pub async fn registry_version(&self) -> Result<i64> {
        Ok(
            sqlx::query("SELECT n FROM change_counters WHERE name = 'registry'")
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get::<i64, _>(0))
                .transpose()?
                .unwrap_or(0),
        )
    }

    /// The person's ETag (the version of their latest registration).
    ///
    /// # Errors
    /// Database errors.
    pub async fn person_version(&self, id: &str) -> Result<Option<i64>> {
        Ok(sqlx::query(
            "SELECT version FROM persons WHERE person_id = $1 ORDER BY lease_start DESC LIMIT 1",
        )
        .bind(id.to_owned())
        .fetch_optional(&self.pool)
        .await?
        .map(|r| r.try_get::<i64, _>(0))
        .transpose()?)
    }

    /// A credential whose holder is registered within `scope`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn get_credential(
        &self,
        kind: CredentialKind,
        id: &str,
        scope: &Scope,
    ) -> Result<Option<StoredCredential>> {
        let mut n = 3;
        let (sc, binds) = scope_sql(scope, &mut n);
        let sql = format!(
            "SELECT {CRED_COLS} FROM credentials c WHERE kind = $1 AND credential_id = $2 \
             AND c.person_id IN (SELECT person_id FROM persons WHERE 1 = 1{sc})"
        );
        let mut q = sqlx::query(&sql).bind(kind.as_str()).bind(id.to_owned());
        for b in binds {
            q = q.bind(b);
        }
        q.fetch_optional(&self.pool)
            .await?
            .map(|r| cred_from_row(&r))
            .transpose()
    }

    /// Issues a credential to a registered person.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the credential exists (of anyone);
    /// [`StoreError::NotFound`] when the person has no current registration;
    /// database errors.
    pub async fn issue_credential(
        &self,
        c: &Credential,
        note: Option<&str>,
        change: Change<'_>,
    ) -> Result<StoredCredential> {
        let mut tx = self.begin_write().await?;
        let rows = person_rows(&mut tx, c.person.as_str()).await?;
        if !rows.iter().any(|(p, _)| p.lease_end.is_none()) {
            return Err(StoreError::NotFound);
        }
        let exists =
            sqlx::query("SELECT 1 FROM credentials WHERE kind = $1 AND credential_id = $2")
                .bind(c.kind.as_str())
                .bind(c.id.as_str().to_owned())
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_some() {
            return Err(StoreError::Conflict(format!(
                "{} credential {} exists",
                c.kind, c.id
            )));
        }
        sqlx::query(
            "INSERT INTO credentials (kind, credential_id, person_id, valid_from, valid_to, \
             status, status_at_ms, status_by, status_note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(c.kind.as_str())
        .bind(c.id.as_str().to_owned())
        .bind(c.person.as_str().to_owned())
        .bind(c.valid_from.map(day))
        .bind(c.valid_to.map(day))
        .bind(c.status.as_str())
        .bind(ms(change.at))
        .bind(change.by.to_owned())
        .bind(note.map(str::to_owned))
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, || format!("{} credential {} exists", c.kind, c.id)))?;
        let stored = read_credential(&mut tx, c.kind, c.id.as_str()).await?;
        audit_tx(
            &mut tx,
            change,
            "credential_issued",
            &format!("credential:{}:{}", c.kind, c.id),
            c.person.as_str(),
            serde_json::json!({"before": null, "after": &stored, "note": note}),
        )
        .await?;
        bump_registry(&mut tx).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Records a credential's status (lost, suspended, revoked, active
    /// again) if its version is still `if_version`.
    ///
    /// # Errors
    /// [`StoreError::Stale`] when another write came first;
    /// [`StoreError::NotFound`]; database errors.
    pub async fn set_credential_status(
        &self,
        kind: CredentialKind,
        id: &str,
        status: CredentialStatus,
        note: Option<&str>,
        if_version: i64,
        change: Change<'_>,
    ) -> Result<StoredCredential> {
        let mut tx = self.begin_write().await?;
        let before = read_credential(&mut tx, kind, id).await?;
        let done = sqlx::query(
            "UPDATE credentials SET status = $1, status_at_ms = $2, status_by = $3, \
             status_note = $4, version = version + 1 \
             WHERE kind = $5 AND credential_id = $6 AND version = $7",
        )
        .bind(status.as_str())
        .bind(ms(change.at))
        .bind(change.by.to_owned())
        .bind(note.map(str::to_owned))
        .bind(kind.as_str())
        .bind(id.to_owned())
        .bind(if_version)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Stale);
        }
        let after = read_credential(&mut tx, kind, id).await?;
        audit_tx(
            &mut tx,
            change,
            &format!("credential_{}", status.as_str()),
            &format!("credential:{kind}:{id}"),
            after.person.as_str(),
            serde_json::json!({
                "before": {"status": before.status},
                "after": {"status": after.status},
                "note": note,
            }),
        )
        .await?;
        bump_registry(&mut tx).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Changes fields of a person's current (latest) registration.
    ///
    /// # Errors
    /// [`StoreError::Stale`], [`StoreError::NotFound`], database errors.
    pub async fn update_person(
        &self,
        id: &str,
        patch: &PersonPatch,
        if_version: i64,
        change: Change<'_>,
    ) -> Result<Vec<(Person, i64)>> {
        let mut tx = self.begin_write().await?;
        let rows = person_rows(&mut tx, id).await?;
        let Some((before, _)) = rows.last().cloned() else {
            return Err(StoreError::NotFound);
        };
        let mut after = before.clone();
        if let Some(v) = &patch.name {
            after.name.clone_from(v);
        }
        if let Some(v) = &patch.id_number {
            after.id_number.clone_from(v);
        }
        if let Some(v) = &patch.phone {
            after.phone.clone_from(v);
        }
        if let Some(v) = patch.birth_year {
            after.birth_year = v;
        }
        if let Some(v) = patch.lives_alone {
            after.lives_alone = v;
        }
        if let Some(v) = patch.role {
            after.role = v;
        }
        let done = sqlx::query(
            "UPDATE persons SET name = $1, id_number = $2, phone = $3, birth_year = $4, \
             lives_alone = $5, role = $6, version = version + 1 \
             WHERE person_id = $7 AND lease_start = $8 AND version = $9",
        )
        .bind(after.name.clone())
        .bind(after.id_number.clone())
        .bind(after.phone.clone())
        .bind(after.birth_year.map(i64::from))
        .bind(i64::from(after.lives_alone))
        .bind(after.role.as_str())
        .bind(id.to_owned())
        .bind(day(before.lease_start))
        .bind(if_version)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Stale);
        }
        audit_tx(
            &mut tx,
            change,
            "person_changed",
            &format!("person:{id}"),
            id,
            serde_json::json!({
                "before": changed_fields(&before, &after, true),
                "after": changed_fields(&before, &after, false),
            }),
        )
        .await?;
        bump_registry(&mut tx).await?;
        let rows = person_rows(&mut tx, id).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Registers a person in a unit from `lease_start` (a household moving
    /// in, a member joining one). The person must not be registered
    /// anywhere today (move them out first); the unit must exist and the
    /// household, if it has members, must live in that unit.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] (registered elsewhere, or the household is
    /// another unit's), [`StoreError::NotFound`] (no such unit), database
    /// errors.
    pub async fn register_person(
        &self,
        p: &Person,
        change: Change<'_>,
    ) -> Result<Vec<(Person, i64)>> {
        let mut tx = self.begin_write().await?;
        let unit =
            sqlx::query("SELECT 1 FROM units WHERE estate = $1 AND building = $2 AND unit = $3")
                .bind(p.unit.estate.as_str().to_owned())
                .bind(p.unit.building.as_str().to_owned())
                .bind(p.unit.unit.as_str().to_owned())
                .fetch_optional(&mut *tx)
                .await?;
        if unit.is_none() {
            return Err(StoreError::NotFound);
        }
        let rows = person_rows(&mut tx, p.id.as_str()).await?;
        if let Some((cur, _)) = rows.iter().find(|(r, _)| r.lease_end.is_none()) {
            return Err(StoreError::Conflict(format!(
                "person {} is registered in {} since {}; move them out first",
                p.id, cur.unit, cur.lease_start
            )));
        }
        if let Some((last, _)) = rows
            .iter()
            .rev()
            .find(|(r, _)| r.lease_start >= p.lease_start)
        {
            return Err(StoreError::Conflict(format!(
                "person {} has a registration from {}; a new one must start later",
                p.id, last.lease_start
            )));
        }
        if let Some((last, _)) = rows.last() {
            if last.lease_end.is_some_and(|e| e > p.lease_start) {
                return Err(StoreError::Conflict(format!(
                    "person {}'s registration in {} ends {}, after {}",
                    p.id,
                    last.unit,
                    last.lease_end.map(day).unwrap_or_default(),
                    p.lease_start
                )));
            }
        }
        let other = sqlx::query(
            "SELECT estate, building, unit FROM persons WHERE household = $1 \
             AND NOT (estate = $2 AND building = $3 AND unit = $4) LIMIT 1",
        )
        .bind(p.household.as_str().to_owned())
        .bind(p.unit.estate.as_str().to_owned())
        .bind(p.unit.building.as_str().to_owned())
        .bind(p.unit.unit.as_str().to_owned())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(r) = other {
            let u = UnitKey::new(
                r.try_get::<String, _>(0)?,
                r.try_get::<String, _>(1)?,
                r.try_get::<String, _>(2)?,
            );
            return Err(StoreError::Conflict(format!(
                "household {} is in unit {u}",
                p.household
            )));
        }
        let version = rows.iter().map(|(_, v)| *v).max().unwrap_or(0) + 1;
        sqlx::query(
            "INSERT INTO persons (person_id, lease_start, estate, building, unit, household, \
             name, role, id_number, phone, birth_year, lives_alone, lease_end, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, $13)",
        )
        .bind(p.id.as_str().to_owned())
        .bind(day(p.lease_start))
        .bind(p.unit.estate.as_str().to_owned())
        .bind(p.unit.building.as_str().to_owned())
        .bind(p.unit.unit.as_str().to_owned())
        .bind(p.household.as_str().to_owned())
        .bind(p.name.clone())
        .bind(p.role.as_str())
        .bind(p.id_number.clone())
        .bind(p.phone.clone())
        .bind(p.birth_year.map(i64::from))
        .bind(i64::from(p.lives_alone))
        .bind(version)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, || format!("person {} was registered meanwhile", p.id)))?;
        audit_tx(
            &mut tx,
            change,
            "person_registered",
            &format!("person:{}", p.id),
            p.id.as_str(),
            serde_json::json!({
                "before": rows.last().map(|(r, _)| serde_json::json!({"unit": r.unit.to_string(), "lease_end": r.lease_end})),
                "after": {"unit": p.unit.to_string(), "household": p.household, "role": p.role.as_str(), "lease_start": p.lease_start},
            }),
        )
        .await?;
        bump_registry(&mut tx).await?;
        let rows = person_rows(&mut tx, p.id.as_str()).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Ends a person's current registration on `lease_end` (exclusive: the
    /// first day they no longer live there). The rows stay: the household's
    /// history is kept. With `revoke_credentials` their active credentials
    /// are revoked in the same transaction.
    ///
    /// # Errors
    /// [`StoreError::Stale`], [`StoreError::NotFound`] (not registered
    /// today), [`StoreError::Conflict`] (`lease_end` before the lease
    /// started), database errors.
    pub async fn move_out(
        &self,
        id: &str,
        lease_end: NaiveDate,
        revoke_credentials: bool,
        if_version: i64,
        change: Change<'_>,
    ) -> Result<(Vec<(Person, i64)>, u64)> {
        let mut tx = self.begin_write().await?;
        let rows = person_rows(&mut tx, id).await?;
        let Some((cur, _)) = rows
            .iter()
            .rev()
            .find(|(r, _)| r.lease_end.is_none())
            .cloned()
        else {
            return Err(StoreError::NotFound);
        };
        if lease_end < cur.lease_start {
            return Err(StoreError::Conflict(format!(
                "lease_end {lease_end} is before the lease started ({})",
                cur.lease_start
            )));
        }
        if person_etag(&rows) != Some(if_version) {
            return Err(StoreError::Stale);
        }
        let done = sqlx::query(
            "UPDATE persons SET lease_end = $1, version = version + 1 \
             WHERE person_id = $2 AND lease_start = $3 AND version = $4",
        )
        .bind(day(lease_end))
        .bind(id.to_owned())
        .bind(day(cur.lease_start))
        .bind(if_version)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Stale);
        }
        let revoked = if revoke_credentials {
            sqlx::query(
                "UPDATE credentials SET status = 'revoked', status_at_ms = $1, status_by = $2, \
                 status_note = 'moved out', version = version + 1 \
                 WHERE person_id = $3 AND status = 'active'",
            )
            .bind(ms(change.at))
            .bind(change.by.to_owned())
            .bind(id.to_owned())
            .execute(&mut *tx)
            .await?
            .rows_affected()
        } else {
            0
        };
        audit_tx(
            &mut tx,
            change,
            "person_moved_out",
            &format!("person:{id}"),
            id,
            serde_json::json!({
                "before": {"unit": cur.unit.to_string(), "lease_end": null},
                "after": {"unit": cur.unit.to_string(), "lease_end": lease_end},
                "credentials_revoked": revoked,
            }),
        )
        .await?;
        bump_registry(&mut tx).await?;
        let rows = person_rows(&mut tx, id).await?;
        tx.commit().await?;
        Ok((rows, revoked))
    }

    /// Deletes a person (PIPL erasure): their registrations, credentials,
    /// face templates, enrolled photo, recognised sightings' snapshots,
    /// consent record and watch-list entry. Their events stay as the
    /// retention keeps them (movements are not registry data); the audit
    /// keeps the deletion, with counts and no personal data.
    ///
    /// # Errors
    /// [`StoreError::Stale`], [`StoreError::NotFound`], database errors.
    pub async fn delete_person(
        &self,
        id: &str,
        if_version: i64,
        reason: &str,
        change: Change<'_>,
    ) -> Result<PersonDeleted> {
        let mut tx = self.begin_write().await?;
        let rows = person_rows(&mut tx, id).await?;
        if rows.is_empty() {
            return Err(StoreError::NotFound);
        }
        // Compare-and-set on the latest registration (its row lock holds a
        // concurrent writer off until this transaction ends).
        let latest = rows
            .last()
            .map(|(p, _)| day(p.lease_start))
            .unwrap_or_default();
        let locked = sqlx::query(
            "UPDATE persons SET version = version + 1 \
             WHERE person_id = $1 AND lease_start = $2 AND version = $3",
        )
        .bind(id.to_owned())
        .bind(latest)
        .bind(if_version)
        .execute(&mut *tx)
        .await?;
        if locked.rows_affected() == 0 {
            return Err(StoreError::Stale);
        }
        let pid = id.to_owned();
        let mut out = PersonDeleted {
            registrations: sqlx::query("DELETE FROM persons WHERE person_id = $1")
                .bind(pid.clone())
                .execute(&mut *tx)
                .await?
                .rows_affected(),
            credentials: sqlx::query("DELETE FROM credentials WHERE person_id = $1")
                .bind(pid.clone())
                .execute(&mut *tx)
                .await?
                .rows_affected(),
            watchlist: sqlx::query("DELETE FROM watchlist WHERE person_id = $1")
                .bind(pid.clone())
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0,
            ..Default::default()
        };
        let faces = crate::images::delete_faces(&mut tx, id).await?;
        out.templates = faces.templates_deleted;
        out.photo = faces.photo_deleted;
        out.snapshots = faces.snapshots_deleted;
        sqlx::query("DELETE FROM face_consent WHERE person_id = $1")
            .bind(pid.clone())
            .execute(&mut *tx)
            .await?;
        // Earlier records of the person's changes may quote their name: kept
        // as facts (who changed what when), without the values.
        sqlx::query(
            "UPDATE audit_log SET detail = '{\"redacted\":\"person deleted\"}' \
             WHERE person_id = $1 AND action = 'person_changed'",
        )
        .bind(pid.clone())
        .execute(&mut *tx)
        .await?;
        audit_tx(
            &mut tx,
            change,
            "person_deleted",
            &format!("person:{id}"),
            id,
            serde_json::json!({"deleted": &out, "reason": reason}),
        )
        .await?;
        bump_registry(&mut tx).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// The audit records that concern a person (registry writes, consent,
    /// deletion), newest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn person_history(&self, id: &str, limit: i64) -> Result<Vec<crate::AuditEntry>> {
        sqlx::query(
            "SELECT at_ms, user_name, action, object, detail FROM audit_log \
             WHERE person_id = $1 ORDER BY at_ms DESC, id DESC LIMIT $2",
        )
        .bind(id.to_owned())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(crate::AuditEntry {
                at: from_ms(r.try_get(0)?)?,
                user: r.try_get(1)?,
                action: r.try_get(2)?,
                object: r.try_get(3)?,
                detail: r.try_get(4)?,
            })
        })
        .collect()
    }

    /// The watch list.
    ///
    /// # Errors
    /// Database errors.
    pub async fn watchlist(&self) -> Result<Vec<StoredWatch>> {
        sqlx::query(&format!(
            "SELECT {WATCH_COLS} FROM watchlist ORDER BY person_id"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(watch_from_row)
        .collect()
    }

    /// One watch-list entry.
    ///
    /// # Errors
    /// Database errors.
    pub async fn watch_entry(&self, person: &str) -> Result<Option<StoredWatch>> {
        sqlx::query(&format!(
            "SELECT {WATCH_COLS} FROM watchlist WHERE person_id = $1"
        ))
        .bind(person.to_owned())
        .fetch_optional(&self.pool)
        .await?
        .map(|r| watch_from_row(&r))
        .transpose()
    }

    /// Adds a person to the watch list.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when they are on it; database errors.
    pub async fn add_watch(&self, w: &WatchEntry, change: Change<'_>) -> Result<StoredWatch> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "INSERT INTO watchlist (person_id, name, reason, expires, added_by, added_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (person_id) DO NOTHING",
        )
        .bind(w.person.as_str().to_owned())
        .bind(w.name.clone())
        .bind(w.reason.clone())
        .bind(w.expires.map(day))
        .bind(change.by.to_owned())
        .bind(ms(change.at))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "{} is on the watch list",
                w.person
            )));
        }
        let row = sqlx::query(&format!(
            "SELECT {WATCH_COLS} FROM watchlist WHERE person_id = $1"
        ))
        .bind(w.person.as_str().to_owned())
        .fetch_one(&mut *tx)
        .await?;
        let stored = watch_from_row(&row)?;
        audit_tx(
            &mut tx,
            change,
            "watchlist_added",
            &format!("watchlist:{}", w.person),
            w.person.as_str(),
            serde_json::json!({"before": null, "after": {"reason": w.reason, "expires": w.expires}}),
        )
        .await?;
        bump_registry(&mut tx).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Takes a person off the watch list.
    ///
    /// # Errors
    /// [`StoreError::Stale`], [`StoreError::NotFound`], database errors.
    pub async fn remove_watch(
        &self,
        person: &str,
        if_version: i64,
        reason: &str,
        change: Change<'_>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let Some(before) = sqlx::query(&format!(
            "SELECT {WATCH_COLS} FROM watchlist WHERE person_id = $1"
        ))
        .bind(person.to_owned())
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| watch_from_row(&r))
        .transpose()?
        else {
            return Err(StoreError::NotFound);
        };
        let done = sqlx::query("DELETE FROM watchlist WHERE person_id = $1 AND version = $2")
            .bind(person.to_owned())
            .bind(if_version)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Stale);
        }
        audit_tx(
            &mut tx,
            change,
            "watchlist_removed",
            &format!("watchlist:{person}"),
            person,
            serde_json::json!({
                "before": {"reason": before.reason, "expires": before.expires},
                "after": null,
                "why": reason,
            }),
        )
        .await?;
        bump_registry(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn read_credential(
    tx: &mut Transaction<'_, Any>,
    kind: CredentialKind,
    id: &str,
) -> Result<StoredCredential> {
    sqlx::query(&format!(
        "SELECT {CRED_COLS} FROM credentials WHERE kind = $1 AND credential_id = $2"
    ))
    .bind(kind.as_str())
    .bind(id.to_owned())
    .fetch_optional(&mut **tx)
    .await?
    .map(|r| cred_from_row(&r))
    .transpose()?
    .ok_or(StoreError::NotFound)
}

/// The fields that differ between `a` and `b`, with `a`'s values (or
/// `b`'s when `!before`). ID numbers and phones are personal data: the
/// audit notes that they changed, not their values.
fn changed_fields(a: &Person, b: &Person, before: bool) -> serde_json::Value {
    let pick = |x: serde_json::Value, y: serde_json::Value| if before { x } else { y };
    let mut o = serde_json::Map::new();
    if a.name != b.name {
        o.insert(
            "name".into(),
            pick(a.name.clone().into(), b.name.clone().into()),
        );
    }
    if a.id_number != b.id_number {
        o.insert("id_number".into(), "(changed)".into());
    }
    if a.phone != b.phone {
        o.insert("phone".into(), "(changed)".into());
    }
    if a.birth_year != b.birth_year {
        o.insert(
            "birth_year".into(),
            pick(a.birth_year.into(), b.birth_year.into()),
        );
    }
    if a.lives_alone != b.lives_alone {
        o.insert(
            "lives_alone".into(),
            pick(a.lives_alone.into(), b.lives_alone.into()),
        );
    }
    if a.role != b.role {
        o.insert(
            "role".into(),
            pick(a.role.as_str().into(), b.role.as_str().into()),
        );
    }
    serde_json::Value::Object(o)
}

/// An estate's thresholds as an administrator set them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredRules {
    pub overrides: serde_json::Value,
    pub version: i64,
    pub updated_by: String,
    pub updated_at: Timestamp,
}

impl Store {
    /// The thresholds set for `estate` through the API, if any.
    ///
    /// # Errors
    /// Database errors, a corrupt row.
    pub async fn estate_rules(&self, estate: &str) -> Result<Option<StoredRules>> {
        let Some(r) = sqlx::query(
            "SELECT overrides, version, updated_by, updated_at_ms FROM estate_rules WHERE estate = $1",
        )
        .bind(estate.to_owned())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let o: String = r.try_get(0)?;
        Ok(Some(StoredRules {
            overrides: serde_json::from_str(&o)
                .map_err(|e| StoreError::Corrupt(format!("estate rules: {e}")))?,
            version: r.try_get(1)?,
            updated_by: r.try_get(2)?,
            updated_at: from_ms(r.try_get(3)?)?,
        }))
    }

    /// Sets `estate`'s thresholds (the caller checked them) if the stored
    /// version is still `if_version` (0: none stored yet); an empty object
    /// removes them. Audited; running edges and analyzers take them at
    /// their next registry reload.
    ///
    /// # Errors
    /// [`StoreError::Stale`], database errors.
    pub async fn set_estate_rules(
        &self,
        estate: &str,
        overrides: &serde_json::Value,
        if_version: i64,
        change: Change<'_>,
    ) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        let before = sqlx::query("SELECT overrides, version FROM estate_rules WHERE estate = $1")
            .bind(estate.to_owned())
            .fetch_optional(&mut *tx)
            .await?;
        let (old, v): (Option<String>, i64) = match &before {
            Some(r) => (Some(r.try_get(0)?), r.try_get(1)?),
            None => (None, 0),
        };
        if v != if_version {
            return Err(StoreError::Stale);
        }
        let empty = overrides.as_object().is_some_and(serde_json::Map::is_empty);
        let next = v + 1;
        if before.is_none() {
            sqlx::query(
                "INSERT INTO estate_rules (estate, overrides, version, updated_by, updated_at_ms) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(estate.to_owned())
            .bind(overrides.to_string())
            .bind(next)
            .bind(change.by.to_owned())
            .bind(ms(change.at))
            .execute(&mut *tx)
            .await
            .map_err(|e| match unique_violation(e, String::new) {
                StoreError::Conflict(_) => StoreError::Stale,
                e => e,
            })?;
        } else {
            let done = sqlx::query(
                "UPDATE estate_rules SET overrides = $1, version = $2, updated_by = $3, \
                 updated_at_ms = $4 WHERE estate = $5 AND version = $6",
            )
            .bind(if empty {
                "{}".to_owned()
            } else {
                overrides.to_string()
            })
            .bind(next)
            .bind(change.by.to_owned())
            .bind(ms(change.at))
            .bind(estate.to_owned())
            .bind(v)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Stale);
            }
        }
        audit_tx(
            &mut tx,
            change,
            "estate_rules_set",
            &format!("estate:{estate}"),
            None,
            serde_json::json!({
                "before": old.and_then(|o| serde_json::from_str::<serde_json::Value>(&o).ok()),
                "after": overrides,
            }),
        )
        .await?;
        bump_registry(&mut tx).await?;
        tx.commit().await?;
        Ok(next)
    }
}

impl Store {
    /// Adds an entrance to an estate (a building door names an existing
    /// building).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] (no such estate or building),
    /// [`StoreError::Conflict`] (the code is taken), database errors.
    pub async fn add_entrance(&self, e: &anju_core::Entrance, change: Change<'_>) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let ok = match &e.building {
            Some(b) => sqlx::query("SELECT 1 FROM buildings WHERE estate = $1 AND code = $2")
                .bind(e.estate.as_str().to_owned())
                .bind(b.as_str().to_owned())
                .fetch_optional(&mut *tx)
                .await?
                .is_some(),
            None => sqlx::query("SELECT 1 FROM estates WHERE code = $1")
                .bind(e.estate.as_str().to_owned())
                .fetch_optional(&mut *tx)
                .await?
                .is_some(),
        };
        if !ok {
            return Err(StoreError::NotFound);
        }
        let done = sqlx::query(
            "INSERT INTO entrances (estate, code, kind, building) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (estate, code) DO NOTHING",
        )
        .bind(e.estate.as_str().to_owned())
        .bind(e.code.as_str().to_owned())
        .bind(e.kind.as_str())
        .bind(e.building.as_ref().map(|b| b.as_str().to_owned()))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "entrance {}/{} exists",
                e.estate, e.code
            )));
        }
        audit_tx(
            &mut tx,
            change,
            "entrance_added",
            &format!("entrance:{}/{}", e.estate, e.code),
            None,
            serde_json::json!({"before": null, "after": e}),
        )
        .await?;
        bump_registry(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds a device (reader, scanner, camera) at an existing entrance.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] (no such entrance), [`StoreError::Conflict`]
    /// (the id is taken in the estate), database errors.
    pub async fn add_device(&self, d: &anju_core::Device, change: Change<'_>) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        let entrance = sqlx::query("SELECT 1 FROM entrances WHERE estate = $1 AND code = $2")
            .bind(d.estate.as_str().to_owned())
            .bind(d.entrance.as_str().to_owned())
            .fetch_optional(&mut *tx)
            .await?;
        if entrance.is_none() {
            return Err(StoreError::NotFound);
        }
        // Device ids are unique across the site (they name MQTT topics' devices
        // and the rules look devices up by id).
        let taken = sqlx::query("SELECT estate FROM devices WHERE id = $1")
            .bind(d.id.as_str().to_owned())
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(r) = taken {
            let e: String = r.try_get(0)?;
            return Err(StoreError::Conflict(if e == d.estate.as_str() {
                format!("device {}/{} exists", d.estate, d.id)
            } else {
                format!(
                    "device id {} is taken (device ids are unique across the site)",
                    d.id
                )
            }));
        }
        let done = sqlx::query(
            "INSERT INTO devices (estate, id, kind, entrance, url, faces) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (estate, id) DO NOTHING",
        )
        .bind(d.estate.as_str().to_owned())
        .bind(d.id.as_str().to_owned())
        .bind(d.kind.as_str())
        .bind(d.entrance.as_str().to_owned())
        .bind(d.url.clone())
        .bind(d.faces.map(crate::registry::faces_s))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "device {}/{} exists",
                d.estate, d.id
            )));
        }
        audit_tx(
            &mut tx,
            change,
            "device_added",
            &format!("device:{}/{}", d.estate, d.id),
            None,
            serde_json::json!({"before": null, "after": d}),
        )
        .await?;
        bump_registry(&mut tx).await?;
        tx.commit().await?;
        Ok(1)
    }

    /// A device's version (its `ETag`), if it exists.
    ///
    /// # Errors
    /// Database errors.
    pub async fn device_version(&self, estate: &str, id: &str) -> Result<Option<i64>> {
        Ok(
            sqlx::query("SELECT version FROM devices WHERE estate = $1 AND id = $2")
                .bind(estate.to_owned())
                .bind(id.to_owned())
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get::<i64, _>(0))
                .transpose()?,
        )
    }

    /// Removes a device (decommissioned): its messages become dead letters
    /// at the edges' next reload; its stored events stay.
    ///
    /// # Errors
    /// [`StoreError::Stale`], [`StoreError::NotFound`], database errors.
    pub async fn remove_device(
        &self,
        estate: &str,
        id: &str,
        if_version: i64,
        change: Change<'_>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done =
            sqlx::query("DELETE FROM devices WHERE estate = $1 AND id = $2 AND version = $3")
                .bind(estate.to_owned())
                .bind(id.to_owned())
                .bind(if_version)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            let exists = sqlx::query("SELECT 1 FROM devices WHERE estate = $1 AND id = $2")
                .bind(estate.to_owned())
                .bind(id.to_owned())
                .fetch_optional(&mut *tx)
                .await?;
            return Err(if exists.is_some() {
                StoreError::Stale
            } else {
                StoreError::NotFound
            });
        }
        audit_tx(
            &mut tx,
            change,
            "device_removed",
            &format!("device:{estate}/{id}"),
            None,
            serde_json::json!({"before": {"estate": estate, "id": id}, "after": null}),
        )
        .await?;
        bump_registry(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A QR pass issued through the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredPass {
    pub id: String,
    pub estate: String,
    pub unit: String,
    pub kind: String,
    pub valid_from: Timestamp,
    pub valid_to: Timestamp,
    pub single_use: bool,
    /// The signed code (what the QR symbol holds).
    pub code: String,
    pub issued_by: String,
    pub issued_at: Timestamp,
    pub revoked_by: Option<String>,
    pub revoked_at: Option<Timestamp>,
    pub version: i64,
}

const PASS_COLS: &str = "id, estate, unit, kind, valid_from_ms, valid_to_ms, single_use, code, \
                         issued_by, issued_at_ms, revoked_by, revoked_at_ms, version";

fn pass_from_row(r: &crate::Row) -> Result<StoredPass> {
    Ok(StoredPass {
        id: r.try_get(0)?,
        estate: r.try_get(1)?,
        unit: r.try_get(2)?,
        kind: r.try_get(3)?,
        valid_from: from_ms(r.try_get(4)?)?,
        valid_to: from_ms(r.try_get(5)?)?,
        single_use: r.try_get::<i64, _>(6)? != 0,
        code: r.try_get(7)?,
        issued_by: r.try_get(8)?,
        issued_at: from_ms(r.try_get(9)?)?,
        revoked_by: r.try_get(10)?,
        revoked_at: r.try_get::<Option<i64>, _>(11)?.map(from_ms).transpose()?,
        version: r.try_get(12)?,
    })
}

impl Store {
    /// Records a pass issued through the API (audited).
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the id exists; database errors.
    pub async fn add_pass(&self, p: &StoredPass, change: Change<'_>) -> Result<StoredPass> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "INSERT INTO qr_passes (id, estate, unit, kind, valid_from_ms, valid_to_ms, single_use, \
             code, issued_by, issued_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(p.id.clone())
        .bind(p.estate.clone())
        .bind(p.unit.clone())
        .bind(p.kind.clone())
        .bind(ms(p.valid_from))
        .bind(ms(p.valid_to))
        .bind(i64::from(p.single_use))
        .bind(p.code.clone())
        .bind(change.by.to_owned())
        .bind(ms(change.at))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("pass {} exists", p.id)));
        }
        audit_tx(
            &mut tx,
            change,
            "qr_pass_issued",
            &format!("qr_pass:{}", p.id),
            None,
            serde_json::json!({"unit": p.unit, "kind": p.kind, "valid_from": p.valid_from, "valid_to": p.valid_to, "single_use": p.single_use}),
        )
        .await?;
        let row = sqlx::query(&format!("SELECT {PASS_COLS} FROM qr_passes WHERE id = $1"))
            .bind(p.id.clone())
            .fetch_one(&mut *tx)
            .await?;
        let stored = pass_from_row(&row)?;
        tx.commit().await?;
        Ok(stored)
    }

    /// A pass issued through the API.
    ///
    /// # Errors
    /// Database errors.
    pub async fn get_pass(&self, id: &str) -> Result<Option<StoredPass>> {
        sqlx::query(&format!("SELECT {PASS_COLS} FROM qr_passes WHERE id = $1"))
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await?
            .map(|r| pass_from_row(&r))
            .transpose()
    }

    /// Revokes a pass if its version is still `if_version` (audited; the
    /// edges refuse it after their next registry reload).
    ///
    /// # Errors
    /// [`StoreError::Stale`], [`StoreError::NotFound`], database errors.
    pub async fn revoke_pass(
        &self,
        id: &str,
        if_version: i64,
        change: Change<'_>,
    ) -> Result<StoredPass> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE qr_passes SET revoked_by = $1, revoked_at_ms = $2, version = version + 1 \
             WHERE id = $3 AND version = $4 AND revoked_at_ms IS NULL",
        )
        .bind(change.by.to_owned())
        .bind(ms(change.at))
        .bind(id.to_owned())
        .bind(if_version)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!("SELECT {PASS_COLS} FROM qr_passes WHERE id = $1"))
            .bind(id.to_owned())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound);
        };
        if done.rows_affected() == 0 {
            let revoked: Option<i64> = row.try_get(11)?;
            return Err(if revoked.is_some() {
                StoreError::Conflict(format!("pass {id} is revoked already"))
            } else {
                StoreError::Stale
            });
        }
        audit_tx(
            &mut tx,
            change,
            "qr_pass_revoked",
            &format!("qr_pass:{id}"),
            None,
            serde_json::json!({"before": {"revoked": false}, "after": {"revoked": true}}),
        )
        .await?;
        bump_registry(&mut tx).await?;
        let stored = pass_from_row(&row)?;
        tx.commit().await?;
        Ok(stored)
    }
}

impl Store {
    /// Whether the unit exists.
    ///
    /// # Errors
    /// Database errors.
    pub async fn unit_exists(&self, estate: &str, building: &str, unit: &str) -> Result<bool> {
        Ok(
            sqlx::query("SELECT 1 FROM units WHERE estate = $1 AND building = $2 AND unit = $3")
                .bind(estate.to_owned())
                .bind(building.to_owned())
                .bind(unit.to_owned())
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }
}
