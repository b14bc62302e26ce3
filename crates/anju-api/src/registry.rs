//! Registry endpoints: estates, units, persons (masked unless admin; every
//! read audited), credentials, devices with health, face enrolment.

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::Q;
use crate::{json, AppState};
use anju_core::{mask_credential, mask_id_number, mask_phone, Person, Role};
use anju_store::{Page, PersonFilter};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;

/// `GET /estates`.
pub async fn estates(State(state): State<AppState>, auth: AuthUser) -> Result<Response, ApiError> {
    Ok(json(serde_json::json!({
        "estates": state.store.list_estates(&auth.scope).await?
    })))
}

/// `limit` (1..=1000, default 100) and `offset` of a list.
#[derive(Deserialize, Default)]
pub struct PageQuery {
    limit: Option<i64>,
    offset: Option<i64>,
}

impl PageQuery {
    pub(crate) fn page(&self) -> Result<Page, ApiError> {
        page_of(self.limit, self.offset)
    }
}

/// A site code given as a filter (`estate`, `building`, `unit`): 1 to 64
/// letters, digits, `-` and `_`, as the site file allows (400 otherwise:
/// such a value can match nothing, and saying so beats an empty list).
pub(crate) fn code_param<'a>(name: &str, v: Option<&'a str>) -> Result<Option<&'a str>, ApiError> {
    match v {
        Some(c)
            if c.is_empty()
                || c.len() > 64
                || !c
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_') =>
        {
            Err(ApiError::bad_request(format!(
                "{name} must be a code of 1 to 64 letters, digits, - and _, got {c:?}"
            )))
        }
        v => Ok(v),
    }
}

/// A person id given as a filter: 1 to 64 characters.
pub(crate) fn person_param(v: Option<&str>) -> Result<Option<&str>, ApiError> {
    match v {
        Some(p) if p.is_empty() || p.chars().count() > 64 => Err(ApiError::bad_request(
            "person must be a person id of 1 to 64 characters",
        )),
        v => Ok(v),
    }
}

/// Most rows a list may skip.
pub(crate) const MAX_OFFSET: i64 = 1_000_000_000;

/// The page a list's `limit` and `offset` ask for (400 when out of range).
/// (Not a flattened struct: query strings carry only text, which serde's
/// flatten cannot turn into numbers.)
pub(crate) fn page_of(limit: Option<i64>, offset: Option<i64>) -> Result<Page, ApiError> {
    if limit.is_some_and(|l| !(1..=Page::MAX_LIMIT).contains(&l)) {
        return Err(ApiError::bad_request(format!(
            "limit must be 1..={}",
            Page::MAX_LIMIT
        )));
    }
    if offset.is_some_and(|o| !(0..=MAX_OFFSET).contains(&o)) {
        return Err(ApiError::bad_request(format!(
            "offset must be 0 to {MAX_OFFSET}"
        )));
    }
    Ok(Page::new(limit, offset))
}

/// A page of `key`: the rows and, when the page is full, `next_offset`.
pub(crate) fn paged<T: serde::Serialize>(key: &str, rows: &[T], page: Page) -> Response {
    let mut o = serde_json::Map::new();
    o.insert(
        key.to_owned(),
        serde_json::to_value(rows).unwrap_or(serde_json::Value::Null),
    );
    if let Some(next) = page.next(rows.len()) {
        o.insert("next_offset".into(), next.into());
    }
    json(serde_json::Value::Object(o))
}

#[derive(Deserialize, Default)]
pub struct UnitQuery {
    estate: Option<String>,
    building: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `GET /units?estate&building&limit&offset`.
pub async fn units(
    State(state): State<AppState>,
    auth: AuthUser,
    Q(q): Q<UnitQuery>,
) -> Result<Response, ApiError> {
    let page = page_of(q.limit, q.offset)?;
    let units = state
        .store
        .list_units(
            &auth.scope,
            code_param("estate", q.estate.as_deref())?,
            code_param("building", q.building.as_deref())?,
            page,
        )
        .await?;
    Ok(paged("units", &units, page))
}

/// `GET /units/activity?estate&building&limit&offset`: units with their
/// registered occupants today and when each was last active (last credited
/// passage, last recognised sighting) — where vacancy and sublet start.
/// Movements are personal data: the read is counted in the audit.
pub async fn unit_activity(
    State(state): State<AppState>,
    auth: AuthUser,
    Q(q): Q<UnitQuery>,
) -> Result<Response, ApiError> {
    let page = page_of(q.limit, q.offset)?;
    let estate = code_param("estate", q.estate.as_deref())?;
    let tz = state.config.tz_for(estate.unwrap_or(""));
    let today = Utc::now().with_timezone(&tz).date_naive().to_string();
    let units = state
        .store
        .unit_activity(
            &auth.scope,
            estate,
            code_param("building", q.building.as_deref())?,
            &today,
            page,
        )
        .await?;
    let people: usize = units.iter().map(|u| u.occupants.len()).sum();
    state
        .reads
        .count(auth.user.name.as_str(), "read_unit_activity", people as u64);
    Ok(paged("units", &units, page))
}

/// `GET /devices?limit&offset`: registered devices with last seen time and
/// status.
pub async fn devices(
    State(state): State<AppState>,
    auth: AuthUser,
    Q(q): Q<PageQuery>,
) -> Result<Response, ApiError> {
    let now = Utc::now();
    let page = q.page()?;
    let list = state.store.list_devices(&auth.scope, page).await?;
    let v: Vec<serde_json::Value> = list
        .into_iter()
        .map(|d| {
            let age = d.last_seen.map(|t| (now - t).num_seconds());
            let mut j = serde_json::to_value(&d).unwrap_or(serde_json::Value::Null);
            if let Some(o) = j.as_object_mut() {
                o.insert("seconds_since_seen".into(), serde_json::json!(age));
            }
            j
        })
        .collect();
    Ok(paged("devices", &v, page))
}

pub(crate) fn masked(mut p: Person, role: Role) -> Person {
    if !role.sees_personal_identifiers() {
        p.id_number = mask_id_number(&p.id_number);
        p.phone = mask_phone(&p.phone);
    }
    p
}

/// Credential ids masked for roles that do not administer the registry.
fn masked_credentials(
    mut list: Vec<anju_store::CredentialListRow>,
    role: Role,
) -> Vec<anju_store::CredentialListRow> {
    if !role.sees_personal_identifiers() {
        for c in &mut list {
            c.id = mask_credential(&c.id);
        }
    }
    list
}

/// An audit record with a detail (the one audit writer: `alerts::audit`).
async fn audit(state: &AppState, auth: &AuthUser, action: &str, object: String, detail: String) {
    crate::alerts::audit(state, auth, action, object, Some(detail)).await;
}

#[derive(Deserialize, Default)]
pub struct PersonQuery {
    estate: Option<String>,
    building: Option<String>,
    unit: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

fn num(what: &str, v: Option<&str>, default: i64, min: i64, max: i64) -> Result<i64, ApiError> {
    match v {
        None => Ok(default),
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(format!(
                "{what} must be an integer between {min} and {max}, got {s:?}"
            ))),
        },
    }
}

/// `GET /persons?estate&building&unit&limit&offset` (audited).
pub async fn persons(
    State(state): State<AppState>,
    auth: AuthUser,
    Q(q): Q<PersonQuery>,
) -> Result<Response, ApiError> {
    let f = PersonFilter {
        limit: num("limit", q.limit.as_deref(), 100, 1, 1000)?,
        offset: num("offset", q.offset.as_deref(), 0, 0, MAX_OFFSET)?,
        estate: code_param("estate", q.estate.as_deref())?.map(str::to_owned),
        building: code_param("building", q.building.as_deref())?.map(str::to_owned),
        unit: code_param("unit", q.unit.as_deref())?.map(str::to_owned),
    };
    let list = state.store.list_persons(&auth.scope, &f).await?;
    let ids: Vec<&str> = list.iter().map(|p| p.id.as_str()).collect();
    audit(
        &state,
        &auth,
        "read_person",
        "persons".into(),
        format!(
            "list estate={:?} building={:?} unit={:?}: {}",
            f.estate,
            f.building,
            f.unit,
            ids.join(",")
        ),
    )
    .await;
    let role = auth.role();
    let list: Vec<Person> = list.into_iter().map(|p| masked(p, role)).collect();
    Ok(json(serde_json::json!({ "persons": list })))
}

/// `GET /persons/{id}`: the person's ledger rows and credentials (audited).
pub async fn person(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(pid): Path<String>,
) -> Result<Response, ApiError> {
    let rows = state.store.get_person(&pid, &auth.scope).await?;
    if rows.is_empty() {
        return Err(ApiError::not_found(format!("person {pid} not found")));
    }
    audit(
        &state,
        &auth,
        "read_person",
        format!("person:{pid}"),
        format!("{} ledger rows", rows.len()),
    )
    .await;
    let credentials = state
        .store
        .list_credentials(
            &auth.scope,
            Some(&pid),
            Page::new(Some(Page::MAX_LIMIT), None),
        )
        .await?;
    let role = auth.role();
    let rows: Vec<Person> = rows.into_iter().map(|p| masked(p, role)).collect();
    let credentials = masked_credentials(credentials, role);
    let consent = state.store.face_consent(&pid).await?;
    let version = state.store.person_version(&pid).await?.unwrap_or(0);
    let mut r = json(serde_json::json!({
        "id": pid,
        "records": rows,
        "credentials": credentials,
        "face_consent": consent,
    }));
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("\"{version}\"")) {
        r.headers_mut().insert(axum::http::header::ETAG, v);
    }
    Ok(r)
}

#[derive(Deserialize, Default)]
pub struct ConsentBody {
    face: Option<bool>,
    note: Option<String>,
}

/// `POST /persons/{id}/consent {"face": bool, "note"}` (administrators): the
/// person's consent to face recognition. Withdrawn, their templates, enrolled
/// photo and recognised sightings' snapshots are deleted at once (the edges'
/// galleries drop them at their next reload); their cards keep working — a
/// household without an enrolled face is never judged by faces. Audited.
pub async fn consent(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(pid): Path<String>,
    crate::extract::Body(body): crate::extract::Body<ConsentBody>,
) -> Result<Response, ApiError> {
    if state.store.get_person(&pid, &auth.scope).await?.is_empty() {
        return Err(ApiError::not_found(format!("person {pid} not found")));
    }
    auth.require(&[Role::Admin], "record consent")?;
    let face = body
        .face
        .ok_or_else(|| ApiError::bad_request("face (true or false) is required"))?;
    if body.note.as_ref().is_some_and(|n| n.chars().count() > 500) {
        return Err(ApiError::bad_request(
            "note may have at most 500 characters",
        ));
    }
    let note = body
        .note
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    let done = state
        .store
        .set_face_consent(
            &pid,
            face,
            auth.user.name.as_str(),
            Utc::now(),
            note.as_deref(),
        )
        .await?;
    audit(
        &state,
        &auth,
        if face {
            "face_consent_given"
        } else {
            "face_consent_withdrawn"
        },
        format!("person:{pid}"),
        format!(
            "{} templates, photo {}, {} snapshots deleted{}",
            done.templates_deleted,
            if done.photo_deleted {
                "deleted"
            } else {
                "none"
            },
            done.snapshots_deleted,
            note.as_deref()
                .map(|n| format!("; {n}"))
                .unwrap_or_default()
        ),
    )
    .await;
    Ok(json(serde_json::json!({
        "person": pid,
        "face": face,
        "templates_deleted": done.templates_deleted,
        "photo_deleted": done.photo_deleted,
        "snapshots_deleted": done.snapshots_deleted,
    })))
}

#[derive(Deserialize, Default)]
pub struct CredentialQuery {
    person: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `GET /credentials?person&limit&offset`.
pub async fn credentials(
    State(state): State<AppState>,
    auth: AuthUser,
    Q(q): Q<CredentialQuery>,
) -> Result<Response, ApiError> {
    let page = page_of(q.limit, q.offset)?;
    let list = state
        .store
        .list_credentials(&auth.scope, person_param(q.person.as_deref())?, page)
        .await?;
    let list = masked_credentials(list, auth.role());
    Ok(paged("credentials", &list, page))
}

/// `POST /persons/{id}/faces` (body: the photo, JPEG or PNG): enrols a face
/// template when an enroller is configured, else 501.
pub async fn faces(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(pid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if state.store.get_person(&pid, &auth.scope).await?.is_empty() {
        return Err(ApiError::not_found(format!("person {pid} not found")));
    }
    auth.require(&[Role::Admin], "enrol faces")?;
    if state
        .store
        .face_consent(&pid)
        .await?
        .is_some_and(|c| !c.consent)
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "consent_withdrawn",
            format!("person {pid} withdrew consent to face recognition: record it again first (POST /persons/{pid}/consent)"),
        ));
    }
    let Some(enrol) = state.enroller.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "not_implemented",
            "face enrolment by upload is not available in this server: enrol photos with \
             `anju import` (photos/<person_id>/*.jpg)",
        ));
    };
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "the body must be a JPEG or PNG photo",
        ));
    }
    let photo = body.clone();
    let (model, vector) = tokio::task::spawn_blocking(move || enrol(&body))
        .await
        .map_err(|e| ApiError::internal(format!("enrolment failed: {e}")))?
        .map_err(|why| {
            let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unusable_photo", why);
            e.code = "unusable_photo";
            e
        })?;
    let tid = state
        .store
        .add_face_template(&pid, &model, &vector, "api")
        .await?;
    let content_type = anju_store::photo_content_type(&photo);
    state
        .store
        .put_person_photo(&pid, content_type, &photo, Utc::now())
        .await?;
    if state.store.face_consent(&pid).await?.is_none() {
        // Enrolment records the consent it was given under.
        state
            .store
            .set_face_consent(
                &pid,
                true,
                auth.user.name.as_str(),
                Utc::now(),
                Some("recorded at enrolment"),
            )
            .await?;
    }
    audit(
        &state,
        &auth,
        "enrol_face",
        format!("person:{pid}"),
        format!("template {tid} ({model})"),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({"template_id": tid, "model": model})),
    )
        .into_response())
}
