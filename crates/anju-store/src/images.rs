//! Evidence images (migration 0008): best-face snapshots, written by an
//! edge under a key it chooses and forwarded to the central store, and the
//! photo each person's face was enrolled from. Served through the API only
//! (DESIGN "Contract — evidence images"), never as a path of a disk.

use crate::alerts::scope_sql;
use crate::{from_ms, Result, Scope, Store};
use anju_core::{AlertId, Timestamp};
use sqlx::Row as _;

/// One best-face snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// `ESTATE.CAMERA.MILLIS.TRACK`: unique, URL-safe, chosen by the edge.
    pub key: String,
    pub estate: String,
    pub camera: String,
    pub taken_at: Timestamp,
    pub jpeg: Vec<u8>,
}

/// The content type of a photo from its first bytes: PNG, else JPEG (the
/// two formats enrolment takes).
pub fn photo_content_type(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(b"\x89PNG") {
        "image/png"
    } else {
        "image/jpeg"
    }
}

/// The API path of a snapshot, as evidence carries it.
pub fn snapshot_url(key: &str) -> String {
    format!("/api/v1/snapshots/{key}")
}

/// Whether `key` has the shape of a snapshot key (letters, digits, `-`,
/// `_`, `.`; 1 to 200 characters).
pub fn valid_snapshot_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 200
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn snapshot_from_row(r: &crate::Row) -> Result<Snapshot> {
    Ok(Snapshot {
        key: r.try_get(0)?,
        estate: r.try_get(1)?,
        camera: r.try_get(2)?,
        taken_at: from_ms(r.try_get(3)?)?,
        jpeg: r.try_get(4)?,
    })
}

impl Store {
    /// Stores snapshots; a key already stored is left as it is (a repeated
    /// forward). Returns how many were new.
    ///
    /// # Errors
    /// Database errors.
    pub async fn insert_snapshots(&self, snaps: &[Snapshot]) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let mut n = 0;
        for s in snaps {
            let r = sqlx::query(
                "INSERT INTO snapshots (snap_key, estate, camera, taken_ms, jpeg) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (snap_key) DO NOTHING",
            )
            .bind(&s.key)
            .bind(&s.estate)
            .bind(&s.camera)
            .bind(s.taken_at.timestamp_millis())
            .bind(&s.jpeg)
            .execute(&mut *tx)
            .await?;
            n += r.rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Snapshots stored after row id `after`, in id order (the forwarder's
    /// outbox), at most `limit`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn snapshots_after(&self, after: i64, limit: i64) -> Result<Vec<(i64, Snapshot)>> {
        let rows = sqlx::query(
            "SELECT snap_key, estate, camera, taken_ms, jpeg, id FROM snapshots \
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(5)?, snapshot_from_row(r)?)))
            .collect()
    }

    /// One snapshot by key (whoever may see it: see
    /// [`Store::alert_citing`]).
    ///
    /// # Errors
    /// Database errors.
    pub async fn get_snapshot(&self, key: &str) -> Result<Option<Snapshot>> {
        let row = sqlx::query(
            "SELECT snap_key, estate, camera, taken_ms, jpeg FROM snapshots WHERE snap_key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(snapshot_from_row).transpose()
    }

    /// An alert within `scope` whose evidence cites `text` (a snapshot's
    /// URL): what lets a caller see that snapshot, and which alert the
    /// audit names. The newest such alert.
    ///
    /// # Errors
    /// Database errors.
    pub async fn alert_citing(&self, text: &str, scope: &Scope) -> Result<Option<AlertId>> {
        let mut n = 2;
        let (sc, binds) = scope_sql(scope, &mut n);
        // The cited text is matched as a JSON string value: quotes around
        // it, so a key cannot match the prefix of a longer one.
        let sql = format!(
            "SELECT id FROM alerts WHERE evidence LIKE $1 ESCAPE '\\'{sc} ORDER BY id DESC LIMIT 1"
        );
        let mut escaped = String::with_capacity(text.len());
        for c in text.chars() {
            if matches!(c, '%' | '_' | '\\') {
                escaped.push('\\');
            }
            escaped.push(c);
        }
        let like = format!("%\"{escaped}\"%");
        let mut q = sqlx::query(&sql).bind(like);
        for b in binds {
            q = q.bind(b);
        }
        let row = q.fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Deletes snapshots taken before `before` (retention); returns how
    /// many.
    ///
    /// # Errors
    /// Database errors.
    pub async fn prune_snapshot_images(&self, before: Timestamp) -> Result<u64> {
        let r = sqlx::query("DELETE FROM snapshots WHERE taken_ms < $1")
            .bind(before.timestamp_millis())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Evidence written before evidence images cited snapshots by a file
    /// path of the edge's disk, which no operator could open: such
    /// references are removed (with a note), so that evidence only ever
    /// carries API paths. Returns how many alerts were rewritten.
    ///
    /// # Errors
    /// Database errors, or stored evidence that does not parse.
    pub async fn migrate_snapshot_paths(&self) -> Result<u64> {
        let rows =
            sqlx::query("SELECT id, evidence FROM alerts WHERE evidence LIKE '%\"snapshot\":\"%'")
                .fetch_all(&self.pool)
                .await?;
        let mut n = 0;
        for r in &rows {
            let id: i64 = r.try_get(0)?;
            let text: String = r.try_get(1)?;
            let mut ev: Vec<anju_core::Evidence> = serde_json::from_str(&text)
                .map_err(|e| crate::StoreError::Corrupt(format!("evidence of alert {id}: {e}")))?;
            let mut changed = false;
            for e in &mut ev {
                if e.snapshot
                    .as_deref()
                    .is_some_and(|p| !p.starts_with("/api/v1/"))
                {
                    e.snapshot = None;
                    let note = "face image not kept (stored as a file path before evidence images)";
                    e.note = Some(match e.note.take() {
                        Some(n) => format!("{n}; {note}"),
                        None => note.to_owned(),
                    });
                    changed = true;
                }
            }
            if changed {
                let json = serde_json::to_string(&ev)
                    .map_err(|e| crate::StoreError::Corrupt(format!("evidence: {e}")))?;
                sqlx::query("UPDATE alerts SET evidence = $1 WHERE id = $2")
                    .bind(json)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Keeps the photo a person's face was enrolled from (replacing an
    /// earlier one).
    ///
    /// # Errors
    /// Database errors.
    pub async fn put_person_photo(
        &self,
        person: &str,
        content_type: &str,
        photo: &[u8],
        at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO person_photos (person_id, content_type, photo, enrolled_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (person_id) DO UPDATE SET \
             content_type = excluded.content_type, photo = excluded.photo, \
             enrolled_ms = excluded.enrolled_ms",
        )
        .bind(person)
        .bind(content_type)
        .bind(photo)
        .bind(at.timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The registered holder of a credential (any kind), if any.
    ///
    /// # Errors
    /// Database errors.
    pub async fn credential_holder(&self, credential: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT person_id FROM credentials WHERE credential_id = $1 ORDER BY kind LIMIT 1",
        )
        .bind(credential)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Whether the person has an enrolled photo.
    ///
    /// # Errors
    /// Database errors.
    pub async fn has_person_photo(&self, person: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM person_photos WHERE person_id = $1")
            .bind(person)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// The photo a person was enrolled from: content type and bytes (the
    /// caller checks the person is in scope).
    ///
    /// # Errors
    /// Database errors.
    pub async fn person_photo(&self, person: &str) -> Result<Option<(String, Vec<u8>)>> {
        let row = sqlx::query("SELECT content_type, photo FROM person_photos WHERE person_id = $1")
            .bind(person)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }
}

/// What withdrawing a person's consent to face recognition deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ConsentWithdrawn {
    pub templates_deleted: u64,
    pub photo_deleted: bool,
    pub snapshots_deleted: u64,
}

/// A person's recorded consent to face recognition.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FaceConsent {
    pub consent: bool,
    pub at: Timestamp,
    pub by: String,
    pub note: Option<String>,
}

impl Store {
    /// Records `person`'s consent to face recognition. Withdrawn (`given`
    /// false), the person's face templates, enrolled photo and the snapshots
    /// of their recognised sightings are deleted in the same transaction:
    /// galleries drop them at their next reload, and the API answers 404 for
    /// the images.
    ///
    /// # Errors
    /// Database errors (then nothing changed).
    pub async fn set_face_consent(
        &self,
        person: &str,
        given: bool,
        by: &str,
        at: Timestamp,
        note: Option<&str>,
    ) -> Result<ConsentWithdrawn> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO face_consent (person_id, consent, at_ms, by_user, note) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (person_id) DO UPDATE SET \
             consent = excluded.consent, at_ms = excluded.at_ms, by_user = excluded.by_user, \
             note = excluded.note",
        )
        .bind(person.to_owned())
        .bind(i64::from(given))
        .bind(crate::ms(at))
        .bind(by.to_owned())
        .bind(note.map(str::to_owned))
        .execute(&mut *tx)
        .await?;
        let out = if given {
            ConsentWithdrawn::default()
        } else {
            delete_faces(&mut tx, person).await?
        };
        tx.commit().await?;
        Ok(out)
    }

    /// The person's recorded consent to face recognition, if any.
    ///
    /// # Errors
    /// Database errors.
    pub async fn face_consent(&self, person: &str) -> Result<Option<FaceConsent>> {
        let row = sqlx::query(
            "SELECT consent, at_ms, by_user, note FROM face_consent WHERE person_id = $1",
        )
        .bind(person.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(FaceConsent {
                consent: r.try_get::<i64, _>(0)? != 0,
                at: from_ms(r.try_get(1)?)?,
                by: r.try_get(2)?,
                note: r.try_get(3)?,
            })
        })
        .transpose()
    }
}

/// Deletes a person's face templates, enrolled photo and the snapshots of
/// their recognised sightings (consent withdrawn, person deleted), inside
/// the caller's transaction.
pub(crate) async fn delete_faces(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    person: &str,
) -> Result<ConsentWithdrawn> {
    let mut out = ConsentWithdrawn {
        templates_deleted: sqlx::query("DELETE FROM face_templates WHERE person_id = $1")
            .bind(person.to_owned())
            .execute(&mut **tx)
            .await?
            .rows_affected(),
        photo_deleted: sqlx::query("DELETE FROM person_photos WHERE person_id = $1")
            .bind(person.to_owned())
            .execute(&mut **tx)
            .await?
            .rows_affected()
            > 0,
        ..Default::default()
    };
    // The snapshots of the person's recognised sightings, by the key
    // their evidence cites.
    let rows = sqlx::query(
        "SELECT payload FROM events WHERE person_id = $1 AND kind = 'sighting' \
             AND payload LIKE '%/api/v1/snapshots/%'",
    )
    .bind(person.to_owned())
    .fetch_all(&mut **tx)
    .await?;
    for r in rows {
        let payload: String = r.try_get(0)?;
        let Ok(ev) = serde_json::from_str::<anju_core::Event>(&payload) else {
            continue;
        };
        let anju_core::Event::Sighting { body, .. } = ev else {
            continue;
        };
        let Some(key) = body
            .snapshot
            .as_deref()
            .and_then(|u| u.strip_prefix("/api/v1/snapshots/"))
        else {
            continue;
        };
        out.snapshots_deleted += sqlx::query("DELETE FROM snapshots WHERE snap_key = $1")
            .bind(key.to_owned())
            .execute(&mut **tx)
            .await?
            .rows_affected();
    }
    Ok(out)
}
