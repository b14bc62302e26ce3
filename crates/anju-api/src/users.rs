//! Users and roles (issue 15), for administrators: list, create, change
//! (role, estates, field staff's grids — the grids' staff —, password),
//! delete. An administrator manages only users within their own scope and
//! grants no more than it: an estate's administrator sees and creates users
//! of their estates only, never one of every estate. Writes are audited,
//! guarded by `ETag` / `If-Match` like the registry's, and take effect at
//! the user's next request (role and scope are re-read on every request);
//! a deleted user's or a changed password's sessions end at once.

use crate::admin::{if_match, with_etag, write_err};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::Body;
use crate::{json, AppState};
use anju_core::{EstateCode, GridCode, Role, User};
use anju_site::fields;
use anju_store::{Change, UserPatch, VersionedUser};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;

/// Shortest password an administrator may set (as `anju user add`).
const MIN_PASSWORD: usize = 8;

/// Whether `caller` administers `u`: every estate `u` may see is one of
/// the caller's.
fn manages(caller: &AuthUser, u: &User) -> bool {
    if caller.scope.all_estates {
        return true;
    }
    !u.all_estates
        && u.estates
            .iter()
            .chain(u.grids.iter().map(|(e, _)| e))
            .all(|e| caller.scope.allows_estate(e.as_str()))
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("user {name} not found"))
}

async fn managed(
    state: &AppState,
    caller: &AuthUser,
    name: &str,
) -> Result<VersionedUser, ApiError> {
    caller.require(&[Role::Admin], "manage users")?;
    match state.store.versioned_user(name).await? {
        Some(u) if manages(caller, &u.user) => Ok(u),
        _ => Err(not_found(name)),
    }
}

/// `GET /users` (administrators): the users they manage.
pub async fn list(State(state): State<AppState>, auth: AuthUser) -> Result<Response, ApiError> {
    auth.require(&[Role::Admin], "manage users")?;
    let users: Vec<VersionedUser> = state
        .store
        .list_users()
        .await?
        .into_iter()
        .filter(|u| manages(&auth, &u.user))
        .collect();
    Ok(json(serde_json::json!({ "users": users })))
}

/// `GET /users/{name}`: one user with its `ETag`.
pub async fn get(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let u = managed(&state, &auth, &name).await?;
    let v = u.version;
    Ok(with_etag(
        StatusCode::OK,
        v,
        serde_json::to_value(u).unwrap_or_default(),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UserBody {
    name: Option<String>,
    role: Option<String>,
    all_estates: Option<bool>,
    estates: Option<Vec<String>>,
    /// Field staff: `"ESTATE:GRID"`.
    grids: Option<Vec<String>>,
    password: Option<String>,
}

struct Checked {
    role: Option<Role>,
    estates: Option<Vec<EstateCode>>,
    grids: Option<Vec<(EstateCode, GridCode)>>,
    password_hash: Option<String>,
}

/// Validates what a body sets: known role, existing estates and grids, a
/// scope within the caller's, a password long enough (hashed off the
/// async threads).
async fn check(state: &AppState, caller: &AuthUser, b: &UserBody) -> Result<Checked, ApiError> {
    let role = b
        .role
        .as_deref()
        .map(|r| {
            Role::parse(r).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unknown role {r:?} (admin, supervisor, operator or field_staff)"
                ))
            })
        })
        .transpose()?;
    if b.all_estates == Some(true) && !caller.scope.all_estates {
        return Err(ApiError::forbidden(
            "only an administrator of every estate may grant every estate",
        ));
    }
    let mut estates = None;
    if let Some(list) = &b.estates {
        let mut out = Vec::new();
        for e in list {
            crate::registry::code_param("estates", Some(e))?;
            if !state.store.estate_exists(e).await? {
                return Err(ApiError::bad_request(format!("unknown estate {e:?}")));
            }
            if !caller.scope.allows_estate(e) {
                return Err(ApiError::forbidden(format!(
                    "estate {e} is outside your scope"
                )));
            }
            out.push(EstateCode::from(e.as_str()));
        }
        estates = Some(out);
    }
    let mut grids = None;
    if let Some(list) = &b.grids {
        let mut out = Vec::new();
        for g in list {
            let Some((e, c)) = g.split_once(':') else {
                return Err(ApiError::bad_request(format!(
                    "grid {g:?} must be ESTATE:GRID"
                )));
            };
            if !state.store.grid_exists(e, c).await? {
                return Err(ApiError::bad_request(format!("unknown grid {g:?}")));
            }
            if !caller.scope.allows_estate(e) {
                return Err(ApiError::forbidden(format!(
                    "estate {e} is outside your scope"
                )));
            }
            out.push((EstateCode::from(e), GridCode::from(c)));
        }
        grids = Some(out);
    }
    let password_hash = match &b.password {
        None => None,
        Some(p) if p.chars().count() < MIN_PASSWORD || p.len() > 1024 => {
            return Err(ApiError::bad_request(format!(
                "the password must have {MIN_PASSWORD} to 1024 characters"
            )))
        }
        Some(p) => {
            let p = p.clone();
            Some(
                tokio::task::spawn_blocking(move || crate::hash_password(&p))
                    .await
                    .map_err(|e| ApiError::internal(format!("hashing: {e}")))?,
            )
        }
    };
    Ok(Checked {
        role,
        estates,
        grids,
        password_hash,
    })
}

/// What a user must have to see anything: field staff a grid, others
/// estates or every estate (400 otherwise).
fn coherent(u: &User) -> Result<(), ApiError> {
    if u.role == Role::FieldStaff && u.grids.is_empty() {
        return Err(ApiError::bad_request(
            "field_staff users need at least one grid (ESTATE:GRID)",
        ));
    }
    if !u.all_estates && u.estates.is_empty() && u.grids.is_empty() {
        return Err(ApiError::bad_request(
            "give estates or all_estates (users see only their estates)",
        ));
    }
    Ok(())
}

/// `POST /users {"name", "role", "estates" | "all_estates", "grids",
/// "password"}` (administrators): 201 with the user and its `ETag`; 409
/// when the name is taken.
pub async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    Body(b): Body<UserBody>,
) -> Result<Response, ApiError> {
    auth.require(&[Role::Admin], "manage users")?;
    let name = b
        .name
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("name is required"))?;
    let name = fields::text(name, 64).map_err(|m| ApiError::bad_request(format!("name: {m}")))?;
    if b.role.is_none() {
        return Err(ApiError::bad_request("role is required"));
    }
    if b.password.is_none() {
        return Err(ApiError::bad_request("password is required"));
    }
    let c = check(&state, &auth, &b).await?;
    let mut estates = c.estates.unwrap_or_default();
    let grids = c.grids.unwrap_or_default();
    for (e, _) in &grids {
        if !estates.contains(e) {
            estates.push(e.clone());
        }
    }
    let u = User {
        name: name.into(),
        role: c.role.unwrap_or(Role::Operator),
        all_estates: b.all_estates.unwrap_or(false),
        estates,
        grids,
    };
    coherent(&u)?;
    let hash = c.password_hash.unwrap_or_default();
    let stored = state
        .store
        .create_user(&u, &hash, change(&auth))
        .await
        .map_err(write_err)?;
    let v = stored.version;
    Ok(with_etag(
        StatusCode::CREATED,
        v,
        serde_json::to_value(stored).unwrap_or_default(),
    ))
}

fn change(auth: &AuthUser) -> Change<'_> {
    Change {
        by: auth.user.name.as_str(),
        at: Utc::now(),
    }
}

/// `PATCH /users/{name}` with `If-Match`: role, scope, grids, password.
/// An administrator cannot take away their own administration (409).
pub async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(name): Path<String>,
    Body(b): Body<UserBody>,
) -> Result<Response, ApiError> {
    let cur = managed(&state, &auth, &name).await?;
    if b.name.as_deref().is_some_and(|n| n != name) {
        return Err(ApiError::bad_request("a user cannot be renamed"));
    }
    let c = check(&state, &auth, &b).await?;
    let patch = UserPatch {
        role: c.role,
        all_estates: b.all_estates,
        estates: c.estates,
        grids: c.grids,
        password_hash: c.password_hash,
    };
    if patch == UserPatch::default() {
        return Err(ApiError::bad_request(
            "nothing to change: send role, estates, all_estates, grids or password",
        ));
    }
    let after = patch.applied_to(&cur.user);
    coherent(&after)?;
    let v = if_match(&headers)?;
    if name == auth.user.name.as_str()
        && (after.role != Role::Admin || (auth.scope.all_estates && !after.all_estates))
    {
        return Err(ApiError::conflict(
            "you cannot take away your own administration; ask another administrator",
        ));
    }
    let stored = state
        .store
        .update_user(&name, &patch, v, change(&auth))
        .await
        .map_err(write_err)?;
    if patch.password_hash.is_some() {
        state.auth.revoke_user(&name).await;
    }
    let v = stored.version;
    Ok(with_etag(
        StatusCode::OK,
        v,
        serde_json::to_value(stored).unwrap_or_default(),
    ))
}

/// `DELETE /users/{name}` with `If-Match`: the user and their sessions end.
pub async fn delete(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    managed(&state, &auth, &name).await?;
    let v = if_match(&headers)?;
    if name == auth.user.name.as_str() {
        return Err(ApiError::conflict("you cannot delete yourself"));
    }
    state
        .store
        .delete_user(&name, v, change(&auth))
        .await
        .map_err(write_err)?;
    state.auth.revoke_user(&name).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
