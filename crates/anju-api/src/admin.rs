//! Registry writes (issue 15): credentials issued, suspended, revoked and
//! reported lost; persons registered, changed, moved out and deleted; the
//! watch list. Each write is:
//!
//! - **authorised** by role (administrators; supervisors may report a card
//!   lost or suspended and mark a person as living alone) and **scoped**
//!   (anything outside the caller's estates answers 404 as if it did not
//!   exist);
//! - **validated** with the importer's own field checks
//!   ([`anju_site::fields`]), so what the API accepts imports back;
//! - **guarded** by optimistic concurrency: `GET` answers an `ETag`, a write
//!   to an existing object must send it back in `If-Match` (428 without it,
//!   412 when another write came first);
//! - **audited** in the same transaction (who, when, before → after), and
//!   visible in the person's history (`GET /persons/{id}/history`);
//! - **announced** to running edges and the analyzer through the store's
//!   registry counter (a card reported lost is blocked at the gate within
//!   seconds, without a restart).

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{Body, Q};
use crate::{json, AppState};
use anju_core::{Credential, CredentialKind, CredentialStatus, Person, Role, UnitKey};
use anju_site::fields;
use anju_store::{Change, PersonPatch, Scope, StoreError};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, Utc};
use serde::Deserialize;

/// A strong `ETag` for a version.
fn etag(v: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{v}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// `body` with `ETag: "v"` (and `status`).
pub(crate) fn with_etag(status: StatusCode, v: i64, body: serde_json::Value) -> Response {
    let mut r = (status, json(body)).into_response();
    r.headers_mut().insert(header::ETAG, etag(v));
    r
}

/// The version an `If-Match` header names: 428 without one (a write to an
/// existing object must say which state it saw), 400 for a value that is
/// not an ETag as this API writes them (`"3"`, or `W/"3"`).
pub(crate) fn if_match(headers: &HeaderMap) -> Result<i64, ApiError> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "precondition_required",
            "If-Match is required: GET the object and send its ETag",
        ));
    };
    let s = v.to_str().unwrap_or("").trim();
    let s = s.strip_prefix("W/").unwrap_or(s);
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|_| s.len() <= 20)
        .ok_or_else(|| {
            ApiError::bad_request("If-Match must be an ETag as this API gives them, e.g. \"3\"")
        })
}

fn stale() -> ApiError {
    ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
        "the object changed since it was read (If-Match does not match its ETag): read it again",
    )
}

/// Store errors of a write: a lost compare-and-set is 412.
pub(crate) fn write_err(e: StoreError) -> ApiError {
    match e {
        StoreError::Stale => stale(),
        e => e.into(),
    }
}

fn change(auth: &AuthUser) -> Change<'_> {
    Change {
        by: auth.user.name.as_str(),
        at: Utc::now(),
    }
}

/// 400 naming the field.
fn field<T>(name: &str, r: Result<T, String>) -> Result<T, ApiError> {
    r.map_err(|m| ApiError::bad_request(format!("{name}: {m}")))
}

fn required<'a>(name: &str, v: &'a Option<String>) -> Result<&'a str, ApiError> {
    v.as_deref()
        .ok_or_else(|| ApiError::bad_request(format!("{name} is required")))
}

fn note(v: Option<String>) -> Result<Option<String>, ApiError> {
    match v.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()) {
        Some(n) if n.chars().count() > 500 => Err(ApiError::bad_request(
            "note may have at most 500 characters",
        )),
        n => Ok(n),
    }
}

fn kind_param(s: &str) -> Result<CredentialKind, ApiError> {
    CredentialKind::parse(s).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown credential kind {s:?} (card, face, qr or pin)"
        ))
    })
}

/// A credential id or person id: 1 to 64 characters, no control
/// characters.
fn id_text<'a>(name: &str, s: &'a str) -> Result<&'a str, ApiError> {
    field(name, fields::text(s, 64))
}

/// The registrations of a person the caller may write: their latest
/// registration (where they live now, or last lived) is in the caller's
/// scope. 404 otherwise — also for a person who once lived in one of the
/// caller's estates and lives elsewhere now: that record is another
/// office's to change.
async fn writable_person(
    state: &AppState,
    auth: &AuthUser,
    pid: &str,
) -> Result<Vec<Person>, ApiError> {
    let rows = state.store.get_person(pid, &Scope::all()).await?;
    // In scope as the caller's reads are (estates, and for field staff
    // their grids' buildings).
    let visible = state.store.get_person(pid, &auth.scope).await?;
    match rows.last() {
        Some(p)
            if visible
                .iter()
                .any(|v| v.lease_start == p.lease_start && v.unit == p.unit) =>
        {
            Ok(rows)
        }
        _ => Err(ApiError::not_found(format!("person {pid} not found"))),
    }
}

// ---------------------------------------------------------------- credentials

/// `GET /credentials/{kind}/{id}` (administrators, supervisors): one
/// credential with its status, and its `ETag`.
pub async fn credential(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((kind, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let kind = kind_param(&kind)?;
    auth.require(
        &[Role::Admin, Role::Supervisor],
        "read a credential's record",
    )?;
    let c = state
        .store
        .get_credential(kind, &id, &auth.scope)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{kind} credential {id} not found")))?;
    let v = c.version;
    Ok(with_etag(
        StatusCode::OK,
        v,
        serde_json::to_value(c).unwrap_or_default(),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct IssueBody {
    kind: Option<String>,
    id: Option<String>,
    person: Option<String>,
    valid_from: Option<String>,
    valid_to: Option<String>,
    note: Option<String>,
}

/// `POST /credentials` (administrators): issues a card, face-terminal, QR
/// or PIN credential to a person registered in the caller's scope today.
/// 201 with the credential and its `ETag`; 409 when it exists.
pub async fn issue(
    State(state): State<AppState>,
    auth: AuthUser,
    Body(b): Body<IssueBody>,
) -> Result<Response, ApiError> {
    auth.require(&[Role::Admin], "issue credentials")?;
    let kind = kind_param(required("kind", &b.kind)?)?;
    let id = id_text("id", required("id", &b.id)?)?;
    let person = id_text("person", required("person", &b.person)?)?;
    let date = |name: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| field(name, fields::date(s)))
            .transpose()
    };
    let valid_from = date("valid_from", &b.valid_from)?;
    let valid_to = date("valid_to", &b.valid_to)?;
    if let (Some(f), Some(t)) = (valid_from, valid_to) {
        if t < f {
            return Err(ApiError::bad_request("valid_to is before valid_from"));
        }
    }
    let note = note(b.note)?;
    writable_person(&state, &auth, person).await?;
    let c = Credential {
        kind,
        id: id.into(),
        person: person.into(),
        valid_from,
        valid_to,
        status: CredentialStatus::Active,
    };
    let stored = match state
        .store
        .issue_credential(&c, note.as_deref(), change(&auth))
        .await
    {
        Err(StoreError::NotFound) => {
            return Err(ApiError::conflict(format!(
                "person {person} is not registered in any unit today"
            )))
        }
        r => r?,
    };
    let v = stored.version;
    let mut r = with_etag(
        StatusCode::CREATED,
        v,
        serde_json::to_value(stored).unwrap_or_default(),
    );
    if let Ok(loc) = HeaderValue::from_str(&format!(
        "{}/credentials/{kind}/{}",
        crate::API_PREFIX,
        urlencoding(id)
    )) {
        r.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(r)
}

/// Percent-encodes what a path segment cannot hold as is.
fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    status: Option<String>,
    note: Option<String>,
}

/// `POST /credentials/{kind}/{id}/status {"status", "note"}` with
/// `If-Match`: records a credential as `lost`, `suspended`, `revoked` or
/// `active` again. Administrators may set any; supervisors may report one
/// lost or suspended (a tenant calling the office). A blocked credential
/// used at a gate afterwards is a `blocked_credential_used` alert.
pub async fn set_status(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    Path((kind, id)): Path<(String, String)>,
    Body(b): Body<StatusBody>,
) -> Result<Response, ApiError> {
    let kind = kind_param(&kind)?;
    let holder = state
        .store
        .get_credential(kind, &id, &auth.scope)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{kind} credential {id} not found")))?
        .person;
    writable_person(&state, &auth, &holder)
        .await
        .map_err(|_| ApiError::not_found(format!("{kind} credential {id} not found")))?;
    auth.require(
        &[Role::Admin, Role::Supervisor],
        "change a credential's status",
    )?;
    let status = required("status", &b.status)?;
    let status = CredentialStatus::parse(status).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown status {status:?} (active, suspended, revoked or lost)"
        ))
    })?;
    let note = note(b.note)?;
    if auth.role() == Role::Supervisor
        && !matches!(status, CredentialStatus::Lost | CredentialStatus::Suspended)
    {
        return Err(ApiError::forbidden(
            "role supervisor may report a credential lost or suspended; revoking or re-activating it is for administrators",
        ));
    }
    let v = if_match(&headers)?;
    let stored = state
        .store
        .set_credential_status(kind, &id, status, note.as_deref(), v, change(&auth))
        .await
        .map_err(write_err)?;
    let v = stored.version;
    Ok(with_etag(
        StatusCode::OK,
        v,
        serde_json::to_value(stored).unwrap_or_default(),
    ))
}

// -------------------------------------------------------------------- persons

/// The person's answer: their registrations (unmasked: only roles that see
/// identifiers write) with the ETag.
fn person_answer(
    status: StatusCode,
    auth: &AuthUser,
    id: &str,
    rows: &[(Person, i64)],
) -> Response {
    let v = anju_store::person_etag(rows).unwrap_or(0);
    let records: Vec<Person> = rows
        .iter()
        .filter(|(p, _)| auth.scope.allows_estate(p.unit.estate.as_str()))
        .map(|(p, _)| crate::registry::masked(p.clone(), auth.role()))
        .collect();
    with_etag(status, v, serde_json::json!({"id": id, "records": records}))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    name: Option<String>,
    id_number: Option<String>,
    phone: Option<String>,
    /// `null` clears it; absent leaves it.
    #[serde(default, deserialize_with = "double_option")]
    birth_year: Option<Option<i32>>,
    lives_alone: Option<bool>,
    role: Option<String>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i32>>, D::Error> {
    Option::<i32>::deserialize(d).map(Some)
}

/// `PATCH /persons/{id}` with `If-Match`: changes fields of the person's
/// current registration (name, ID number, phone, birth year, role,
/// `lives_alone`). Administrators may change any; supervisors only
/// `lives_alone` (who the elderly-care rule watches).
pub async fn patch_person(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(pid): Path<String>,
    Body(b): Body<PatchBody>,
) -> Result<Response, ApiError> {
    writable_person(&state, &auth, &pid).await?;
    auth.require(&[Role::Admin, Role::Supervisor], "change a person's record")?;
    let this_year = Utc::now().year();
    let patch = PersonPatch {
        name: b
            .name
            .as_deref()
            .map(|n| field("name", fields::text(n, 100)).map(str::to_owned))
            .transpose()?,
        id_number: b
            .id_number
            .as_deref()
            .map(|n| field("id_number", fields::id_number(n)))
            .transpose()?,
        phone: b
            .phone
            .as_deref()
            .map(|n| field("phone", fields::phone(n)))
            .transpose()?,
        birth_year: b
            .birth_year
            .map(|y| {
                y.map(|y| field("birth_year", fields::birth_year(y, this_year)))
                    .transpose()
            })
            .transpose()?,
        lives_alone: b.lives_alone,
        role: b
            .role
            .as_deref()
            .map(|r| field("role", fields::role(r)))
            .transpose()?,
    };
    if patch.is_empty() {
        return Err(ApiError::bad_request(
            "nothing to change: send name, id_number, phone, birth_year, role or lives_alone",
        ));
    }
    if auth.role() == Role::Supervisor
        && patch
            != (PersonPatch {
                lives_alone: patch.lives_alone,
                ..Default::default()
            })
    {
        return Err(ApiError::forbidden(
            "role supervisor may change lives_alone only; other fields are for administrators",
        ));
    }
    let v = if_match(&headers)?;
    let rows = state
        .store
        .update_person(&pid, &patch, v, change(&auth))
        .await
        .map_err(write_err)?;
    Ok(person_answer(StatusCode::OK, &auth, &pid, &rows))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    person_id: Option<String>,
    estate: Option<String>,
    building: Option<String>,
    unit: Option<String>,
    household: Option<String>,
    name: Option<String>,
    role: Option<String>,
    id_number: Option<String>,
    phone: Option<String>,
    birth_year: Option<i32>,
    lives_alone: Option<bool>,
    lease_start: Option<String>,
}

/// `POST /persons` (administrators): registers a person in a unit of the
/// caller's scope from `lease_start` — a household moving in, a member
/// joining one, a person who moved out registered again elsewhere. 201
/// with the person's registrations and `ETag`; 409 when they are registered
/// somewhere today or the household lives in another unit.
pub async fn register(
    State(state): State<AppState>,
    auth: AuthUser,
    Body(b): Body<RegisterBody>,
) -> Result<Response, ApiError> {
    auth.require(&[Role::Admin], "register persons")?;
    let estate = crate::registry::code_param("estate", Some(required("estate", &b.estate)?))?
        .unwrap_or_default();
    let building =
        crate::registry::code_param("building", Some(required("building", &b.building)?))?
            .unwrap_or_default();
    let unit = field("unit", fields::text(required("unit", &b.unit)?, 64))?;
    let p = Person {
        id: id_text("person_id", required("person_id", &b.person_id)?)?.into(),
        unit: UnitKey::new(estate, building, unit),
        household: field(
            "household",
            fields::text(required("household", &b.household)?, 64),
        )?
        .into(),
        name: field("name", fields::text(required("name", &b.name)?, 100))?.to_owned(),
        role: field("role", fields::role(required("role", &b.role)?))?,
        id_number: field(
            "id_number",
            fields::id_number(required("id_number", &b.id_number)?),
        )?,
        phone: field("phone", fields::phone(b.phone.as_deref().unwrap_or("")))?,
        birth_year: b
            .birth_year
            .map(|y| field("birth_year", fields::birth_year(y, Utc::now().year())))
            .transpose()?,
        lives_alone: b.lives_alone.unwrap_or(false),
        lease_start: field(
            "lease_start",
            fields::date(required("lease_start", &b.lease_start)?),
        )?,
        lease_end: None,
    };
    if !auth.scope.allows_estate(estate) {
        return Err(ApiError::not_found(format!("unit {} not found", p.unit)));
    }
    if !state
        .store
        .get_person(p.id.as_str(), &Scope::all())
        .await?
        .is_empty()
        && state
            .store
            .get_person(p.id.as_str(), &auth.scope)
            .await?
            .is_empty()
    {
        // Registered (now or before) only in estates the caller does not
        // administer: the person's record is not theirs to extend.
        return Err(ApiError::conflict(format!("person id {} is taken", p.id)));
    }
    let rows = match state.store.register_person(&p, change(&auth)).await {
        Err(StoreError::NotFound) => {
            return Err(ApiError::not_found(format!("unit {} not found", p.unit)))
        }
        r => r.map_err(write_err)?,
    };
    Ok(person_answer(
        StatusCode::CREATED,
        &auth,
        p.id.as_str(),
        &rows,
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MoveOutBody {
    lease_end: Option<String>,
    /// Revoke the person's active credentials too (default true).
    revoke_credentials: Option<bool>,
}

/// `POST /persons/{id}/move-out {"lease_end", "revoke_credentials"}` with
/// `If-Match` (administrators): ends the person's current registration on
/// `lease_end` (the first day they no longer live there); the record stays
/// in the unit's history. Their active credentials are revoked unless
/// `revoke_credentials` is false.
pub async fn move_out(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(pid): Path<String>,
    Body(b): Body<MoveOutBody>,
) -> Result<Response, ApiError> {
    writable_person(&state, &auth, &pid).await?;
    auth.require(&[Role::Admin], "move persons out")?;
    let end = field(
        "lease_end",
        fields::date(required("lease_end", &b.lease_end)?),
    )?;
    let v = if_match(&headers)?;
    let (rows, revoked) = match state
        .store
        .move_out(
            &pid,
            end,
            b.revoke_credentials.unwrap_or(true),
            v,
            change(&auth),
        )
        .await
    {
        Err(StoreError::NotFound) => {
            return Err(ApiError::conflict(format!(
                "person {pid} is not registered in any unit today"
            )))
        }
        r => r.map_err(write_err)?,
    };
    let mut r = person_answer(StatusCode::OK, &auth, &pid, &rows);
    if let Ok(h) = HeaderValue::from_str(&revoked.to_string()) {
        r.headers_mut().insert("x-credentials-revoked", h);
    }
    Ok(r)
}

#[derive(Deserialize, Default)]
pub struct ReasonQuery {
    reason: Option<String>,
}

fn reason(q: &ReasonQuery) -> Result<&str, ApiError> {
    match q.reason.as_deref().map(str::trim) {
        Some(r) if !r.is_empty() && r.chars().count() <= 500 => Ok(r),
        _ => Err(ApiError::bad_request(
            "reason (1 to 500 characters) is required",
        )),
    }
}

/// `DELETE /persons/{id}?reason=…` with `If-Match` (administrators): PIPL
/// erasure. Their registrations, credentials, face templates, enrolled
/// photo, recognised sightings' snapshots, consent record and watch-list
/// entry are deleted in one transaction; the deletion stays in their
/// history, with counts and the reason.
pub async fn delete_person(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(pid): Path<String>,
    Q(q): Q<ReasonQuery>,
) -> Result<Response, ApiError> {
    let rows = writable_person(&state, &auth, &pid).await?;
    auth.require(&[Role::Admin], "delete persons")?;
    if rows
        .iter()
        .any(|p| !auth.scope.allows_estate(p.unit.estate.as_str()))
    {
        return Err(ApiError::forbidden(
            "the person was registered in estates outside your scope: their erasure is for an administrator of all of them",
        ));
    }
    let why = reason(&q)?;
    let v = if_match(&headers)?;
    let done = state
        .store
        .delete_person(&pid, v, why, change(&auth))
        .await
        .map_err(write_err)?;
    Ok(json(serde_json::json!({"person": pid, "deleted": done})))
}

#[derive(Deserialize, Default)]
pub struct HistoryQuery {
    limit: Option<i64>,
}

/// `GET /persons/{id}/history` (administrators: it names credentials and
/// what changed): what was
/// recorded about the person — registry writes, consent, deletion — newest
/// first. Also after deletion (administrators with every estate in scope
/// then, as the person's estate is gone with them).
pub async fn history(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(pid): Path<String>,
    Q(q): Q<HistoryQuery>,
) -> Result<Response, ApiError> {
    auth.require(&[Role::Admin], "read a person's history")?;
    let limit = crate::registry::page_of(q.limit, None)?.limit;
    let visible = !state.store.get_person(&pid, &auth.scope).await?.is_empty()
        || (auth.scope.all_estates && auth.role() == Role::Admin);
    if !visible {
        return Err(ApiError::not_found(format!("person {pid} not found")));
    }
    let entries = state.store.person_history(&pid, limit).await?;
    if entries.is_empty() && state.store.get_person(&pid, &auth.scope).await?.is_empty() {
        return Err(ApiError::not_found(format!("person {pid} not found")));
    }
    let entries: Vec<serde_json::Value> = entries
        .into_iter()
        .map(|e| {
            serde_json::json!({
                "at": e.at,
                "by": e.user,
                "action": e.action,
                "object": e.object,
                "detail": e.detail.as_deref().and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok()).unwrap_or_else(|| e.detail.clone().into()),
            })
        })
        .collect();
    Ok(json(serde_json::json!({"person": pid, "history": entries})))
}

// ----------------------------------------------------------------- watch list

/// The watch list is the bureau's (public security's), not one estate's:
/// only administrators of every estate change it.
fn require_city_admin(auth: &AuthUser) -> Result<(), ApiError> {
    auth.require(&[Role::Admin], "change the watch list")?;
    if !auth.scope.all_estates {
        return Err(ApiError::forbidden(
            "the watch list covers every estate: only administrators of all estates change it",
        ));
    }
    Ok(())
}

/// The watch list names people city-wide: read by administrators,
/// supervisors and operators of every estate (an estate's staff see its
/// hits in their alerts, not the list).
fn require_watch_reader(auth: &AuthUser) -> Result<(), ApiError> {
    auth.require(
        &[Role::Admin, Role::Supervisor, Role::Operator],
        "read the watch list",
    )?;
    if !auth.scope.all_estates {
        return Err(ApiError::forbidden(
            "the watch list covers every estate: only staff of all estates read it",
        ));
    }
    Ok(())
}

/// `GET /watchlist` (administrators, supervisors, operators of every
/// estate).
pub async fn watchlist(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Response, ApiError> {
    require_watch_reader(&auth)?;
    let list = state.store.watchlist().await?;
    state
        .reads
        .count(auth.user.name.as_str(), "read_watchlist", list.len() as u64);
    Ok(json(serde_json::json!({"watchlist": list})))
}

/// `GET /watchlist/{person}`: one entry with its `ETag`.
pub async fn watch_entry(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(person): Path<String>,
) -> Result<Response, ApiError> {
    require_watch_reader(&auth)?;
    let w = state
        .store
        .watch_entry(&person)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{person} is not on the watch list")))?;
    let v = w.version;
    Ok(with_etag(
        StatusCode::OK,
        v,
        serde_json::to_value(w).unwrap_or_default(),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WatchBody {
    person: Option<String>,
    name: Option<String>,
    reason: Option<String>,
    expires: Option<String>,
}

/// `POST /watchlist {"person", "name", "reason", "expires"}`
/// (administrators of every estate): 201 with the entry and its `ETag`;
/// 409 when the person is on the list. `expires` is the last day it
/// applies.
pub async fn add_watch(
    State(state): State<AppState>,
    auth: AuthUser,
    Body(b): Body<WatchBody>,
) -> Result<Response, ApiError> {
    require_city_admin(&auth)?;
    let person = id_text("person", required("person", &b.person)?)?;
    let name = field("name", fields::text(required("name", &b.name)?, 100))?;
    let why = field("reason", fields::text(required("reason", &b.reason)?, 500))?;
    let expires = b
        .expires
        .as_deref()
        .map(|s| field("expires", fields::date(s)))
        .transpose()?;
    if expires.is_some_and(|d| d < Utc::now().date_naive()) {
        return Err(ApiError::bad_request("expires is in the past"));
    }
    let w = anju_core::WatchEntry {
        person: person.into(),
        name: name.to_owned(),
        reason: why.to_owned(),
        expires,
    };
    let stored = state.store.add_watch(&w, change(&auth)).await?;
    let v = stored.version;
    Ok(with_etag(
        StatusCode::CREATED,
        v,
        serde_json::to_value(stored).unwrap_or_default(),
    ))
}

/// `DELETE /watchlist/{person}?reason=…` with `If-Match` (administrators of
/// every estate).
pub async fn remove_watch(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(person): Path<String>,
    Q(q): Q<ReasonQuery>,
) -> Result<Response, ApiError> {
    require_city_admin(&auth)?;
    let why = reason(&q)?;
    let v = if_match(&headers)?;
    state
        .store
        .remove_watch(&person, v, why, change(&auth))
        .await
        .map_err(write_err)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ------------------------------------------------------------ ledger dry run

/// Largest ledger upload (a city's ledger is about 2 MB as CSV).
pub const MAX_LEDGER_BYTES: usize = 16 * 1024 * 1024;

/// `POST /ledger/dry-run` (administrators; body: the ledger as CSV or
/// XLSX, the importer's columns): what importing it would change among the
/// caller's estates — units and ledger rows added, changed (before →
/// after), households moving out, stored rows not in the file (kept) — or
/// every problem, located by line and column, exactly as `anju import`
/// reports them. Nothing is written; the upload is audited.
pub async fn ledger_dry_run(
    State(state): State<AppState>,
    auth: AuthUser,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    auth.require(&[Role::Admin], "check ledgers")?;
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "send the ledger (CSV or XLSX) as the request body",
        ));
    }
    let stored = state.store.load_registry().await?;
    let mut base = stored.clone();
    base.estates
        .retain(|e| auth.scope.allows_estate(e.code.as_str()));
    base.buildings
        .retain(|b| auth.scope.allows_estate(b.estate.as_str()));
    let checked = anju_site::check_ledger("ledger", &body, &base);
    let answer = match checked {
        Err(errors) => serde_json::json!({
            "dry_run": true,
            "valid": false,
            "errors": errors,
        }),
        Ok((units, persons)) => {
            let in_scope = |e: &anju_core::EstateCode| auth.scope.allows_estate(e.as_str());
            let before = anju_core::Registry {
                units: stored
                    .units
                    .iter()
                    .filter(|u| in_scope(&u.key.estate))
                    .cloned()
                    .collect(),
                persons: stored
                    .persons
                    .iter()
                    .filter(|p| in_scope(&p.unit.estate))
                    .cloned()
                    .collect(),
                ..Default::default()
            };
            let after = anju_core::Registry {
                units,
                persons,
                ..Default::default()
            };
            let d = anju_site::diff::RegistryDiff::between(&before, &after);
            serde_json::json!({
                "dry_run": true,
                "valid": true,
                "would_change": !(d.units.is_empty() && d.persons.is_empty()),
                "units": d.units,
                "persons": d.persons,
                "moved_out": d.moved_out,
            })
        }
    };
    crate::alerts::audit(
        &state,
        &auth,
        "ledger_dry_run",
        "ledger".into(),
        Some(format!("{} bytes, valid {}", body.len(), answer["valid"])),
    )
    .await;
    Ok(json(answer))
}

// ---------------------------------------------------------- rule thresholds

/// The estate in scope (404 otherwise).
async fn estate_in_scope(state: &AppState, auth: &AuthUser, code: &str) -> Result<(), ApiError> {
    crate::registry::code_param("estate", Some(code))?;
    if !auth.scope.allows_estate(code) || !state.store.estate_exists(code).await? {
        return Err(ApiError::not_found(format!("estate {code} not found")));
    }
    Ok(())
}

/// `GET /estates/{code}/rules` (administrators, supervisors): the
/// thresholds the estate's rules use — the site's `[rules]` with what an
/// administrator set over them — the overrides themselves, and the `ETag`
/// to change them with (`"0"` while none are set).
pub async fn estate_rules(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    estate_in_scope(&state, &auth, &code).await?;
    auth.require(&[Role::Admin, Role::Supervisor], "read rule thresholds")?;
    let base = state.config.rules.for_estate(&code);
    let stored = state.store.estate_rules(&code).await?;
    let effective = match &stored {
        Some(s) => base
            .with_overrides(&s.overrides)
            .unwrap_or_else(|_| base.clone()),
        None => base.clone(),
    };
    let v = stored.as_ref().map_or(0, |s| s.version);
    Ok(with_etag(
        StatusCode::OK,
        v,
        serde_json::json!({
            "estate": code,
            "thresholds": effective,
            "site": base,
            "overrides": stored.as_ref().map(|s| &s.overrides),
            "updated_by": stored.as_ref().map(|s| &s.updated_by),
            "updated_at": stored.as_ref().map(|s| s.updated_at),
        }),
    ))
}

/// `PUT /estates/{code}/rules` with `If-Match` (administrators of the
/// estate): a JSON object of threshold → value over the site's `[rules]`
/// (all of them at once; `{}` goes back to the site's). Checked like the
/// rules check them (400 naming the threshold); audited before → after;
/// running edges and the analyzer apply them at their next registry reload.
pub async fn set_estate_rules(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(code): Path<String>,
    Body(overrides): Body<serde_json::Value>,
) -> Result<Response, ApiError> {
    estate_in_scope(&state, &auth, &code).await?;
    auth.require(&[Role::Admin], "change rule thresholds")?;
    let base = state.config.rules.for_estate(&code);
    let effective = base
        .with_overrides(&overrides)
        .map_err(ApiError::bad_request)?;
    let v = if_match(&headers)?;
    let next = state
        .store
        .set_estate_rules(&code, &overrides, v, change(&auth))
        .await
        .map_err(write_err)?;
    Ok(with_etag(
        StatusCode::OK,
        next,
        serde_json::json!({"estate": code, "thresholds": effective, "overrides": overrides}),
    ))
}

// ------------------------------------------------------ entrances and devices

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EntranceBody {
    estate: Option<String>,
    code: Option<String>,
    kind: Option<String>,
    building: Option<String>,
}

fn site_code<'a>(name: &str, v: &'a Option<String>) -> Result<&'a str, ApiError> {
    field(name, fields::code(required(name, v)?))
}

/// `POST /entrances {"estate", "code", "kind", "building"}` (administrators
/// of the estate): an estate gate, or a building door of an existing
/// building. 201; 409 when the code is taken.
pub async fn add_entrance(
    State(state): State<AppState>,
    auth: AuthUser,
    Body(b): Body<EntranceBody>,
) -> Result<Response, ApiError> {
    auth.require(&[Role::Admin], "add entrances")?;
    let estate = site_code("estate", &b.estate)?;
    let code = site_code("code", &b.code)?;
    let kind = match required("kind", &b.kind)? {
        "estate_gate" => anju_core::EntranceKind::EstateGate,
        "building_door" => anju_core::EntranceKind::BuildingDoor,
        k => {
            return Err(ApiError::bad_request(format!(
                "kind: unknown entrance kind {k:?} (estate_gate or building_door)"
            )))
        }
    };
    let building = b
        .building
        .as_deref()
        .map(|x| field("building", fields::code(x)))
        .transpose()?;
    if (kind == anju_core::EntranceKind::BuildingDoor) != building.is_some() {
        return Err(ApiError::bad_request(
            "building: a building_door names its building; an estate_gate has none",
        ));
    }
    if !auth.scope.allows_estate(estate) {
        return Err(ApiError::not_found(format!("estate {estate} not found")));
    }
    let e = anju_core::Entrance {
        estate: estate.into(),
        code: code.into(),
        kind,
        building: building.map(Into::into),
    };
    match state.store.add_entrance(&e, change(&auth)).await {
        Err(StoreError::NotFound) => Err(ApiError::not_found(format!(
            "estate {estate}{} not found",
            building
                .map(|b| format!(" or building {b}"))
                .unwrap_or_default()
        ))),
        Err(e) => Err(e.into()),
        Ok(()) => Ok((
            StatusCode::CREATED,
            json(serde_json::to_value(&e).unwrap_or_default()),
        )
            .into_response()),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DeviceBody {
    estate: Option<String>,
    id: Option<String>,
    kind: Option<String>,
    entrance: Option<String>,
    url: Option<String>,
    faces: Option<String>,
}

/// `POST /devices {"estate", "id", "kind", "entrance", "url", "faces"}`
/// (administrators of the estate): a gate reader, QR scanner or camera at
/// an existing entrance. Readers and scanners are accepted by the running
/// edge at its next registry reload (seconds); a new camera's stream starts
/// when the edge next starts. 201 with its `ETag`.
pub async fn add_device(
    State(state): State<AppState>,
    auth: AuthUser,
    Body(b): Body<DeviceBody>,
) -> Result<Response, ApiError> {
    auth.require(&[Role::Admin], "add devices")?;
    let estate = site_code("estate", &b.estate)?;
    let id = site_code("id", &b.id)?;
    let entrance = site_code("entrance", &b.entrance)?;
    let kind = required("kind", &b.kind)?;
    let kind = anju_core::DeviceKind::parse(kind).ok_or_else(|| {
        ApiError::bad_request(format!(
            "kind: unknown device kind {kind:?} (reader, scanner or camera)"
        ))
    })?;
    let camera = kind == anju_core::DeviceKind::Camera;
    if camera != b.url.is_some() {
        return Err(ApiError::bad_request(
            "url: a camera has an rtsp:// URL; readers and scanners have none",
        ));
    }
    if let Some(u) = &b.url {
        field("url", fields::rtsp_url(u))?;
    }
    let faces = match b.faces.as_deref() {
        None => None,
        Some(_) if !camera => {
            return Err(ApiError::bad_request("faces: only cameras see faces"));
        }
        Some("in") => Some(anju_core::FacesDirection::In),
        Some("out") => Some(anju_core::FacesDirection::Out),
        Some("both") => Some(anju_core::FacesDirection::Both),
        Some(f) => {
            return Err(ApiError::bad_request(format!(
                "faces: {f:?} must be in, out or both"
            )))
        }
    };
    if !auth.scope.allows_estate(estate) {
        return Err(ApiError::not_found(format!("estate {estate} not found")));
    }
    let d = anju_core::Device {
        estate: estate.into(),
        id: id.into(),
        kind,
        entrance: entrance.into(),
        url: b.url.clone(),
        faces: faces.or(camera.then_some(anju_core::FacesDirection::Both)),
    };
    let v = match state.store.add_device(&d, change(&auth)).await {
        Err(StoreError::NotFound) => {
            return Err(ApiError::not_found(format!(
                "entrance {estate}/{entrance} not found"
            )))
        }
        r => r?,
    };
    Ok(with_etag(
        StatusCode::CREATED,
        v,
        serde_json::to_value(&d).unwrap_or_default(),
    ))
}

/// `GET /devices/{estate}/{id}` (administrators): the device's `ETag`.
pub async fn device(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((estate, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    auth.require(&[Role::Admin], "manage devices")?;
    let v = match state.store.device_version(&estate, &id).await? {
        Some(v) if auth.scope.allows_estate(&estate) => v,
        _ => {
            return Err(ApiError::not_found(format!(
                "device {estate}/{id} not found"
            )))
        }
    };
    Ok(with_etag(
        StatusCode::OK,
        v,
        serde_json::json!({"estate": estate, "id": id, "version": v}),
    ))
}

/// `DELETE /devices/{estate}/{id}` with `If-Match` (administrators of the
/// estate): a decommissioned device; its messages are dead letters after
/// the edge's next registry reload, its stored events stay.
pub async fn remove_device(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    Path((estate, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    if !auth.scope.allows_estate(&estate)
        || state.store.device_version(&estate, &id).await?.is_none()
    {
        return Err(ApiError::not_found(format!(
            "device {estate}/{id} not found"
        )));
    }
    auth.require(&[Role::Admin], "manage devices")?;
    let v = if_match(&headers)?;
    match state
        .store
        .remove_device(&estate, &id, v, change(&auth))
        .await
    {
        Err(StoreError::NotFound) => Err(ApiError::not_found(format!(
            "device {estate}/{id} not found"
        ))),
        r => r
            .map_err(write_err)
            .map(|()| StatusCode::NO_CONTENT.into_response()),
    }
}
