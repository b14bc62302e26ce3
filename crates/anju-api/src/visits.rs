//! A grid manager's visit photos (issue 13): taken on the visit of a
//! notice, uploaded from the phone while the notice is open by whoever may
//! record its result, kept with the notice and served — scoped and audited
//! like every image — to anyone who may see the notice.

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::AppState;
use anju_store::Notice;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;

/// Photos one visit may carry.
pub const MAX_PHOTOS: usize = 6;
/// Bytes one photo may have (phones take large ones; the body limit of the
/// route is the same).
pub const MAX_BYTES: usize = 8 * 1024 * 1024;

/// The notice's URL of a photo.
pub fn photo_url(notice: i64, id: i64) -> String {
    format!("/api/v1/notices/{notice}/photos/{id}")
}

/// Notices as JSON, each with the URLs of its visit photos.
pub async fn with_photos(
    state: &AppState,
    notices: &[Notice],
) -> Result<Vec<serde_json::Value>, ApiError> {
    let ids: Vec<i64> = notices.iter().map(|n| n.id).collect();
    let mut by_notice = state.store.visit_photo_ids(&ids).await?;
    let mut out = Vec::with_capacity(notices.len());
    for n in notices {
        let photos: Vec<String> = by_notice
            .remove(&n.id)
            .unwrap_or_default()
            .into_iter()
            .map(|p| photo_url(n.id, p))
            .collect();
        let mut v = serde_json::to_value(n).map_err(|e| ApiError::internal(e.to_string()))?;
        if let Some(o) = v.as_object_mut() {
            o.insert("photos".into(), photos.into());
        }
        out.push(v);
    }
    Ok(out)
}

async fn notice_in_scope(state: &AppState, auth: &AuthUser, raw: &str) -> Result<Notice, ApiError> {
    let nid = crate::extract::id(raw, "notice")?;
    state
        .store
        .get_notice(nid, &auth.scope)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("notice {nid} not found")))
}

/// `POST /notices/{id}/photos` (body: a JPEG or PNG): a photo of the visit.
pub async fn upload(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let notice = notice_in_scope(&state, &auth, &raw).await?;
    crate::policy::require_notice_result(&auth, &notice)?;
    if notice.status == anju_store::NoticeStatus::Done {
        return Err(ApiError::conflict(format!(
            "notice {} is already closed",
            notice.id
        )));
    }
    let kind = if body.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if body.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "image/jpeg"
    } else {
        return Err(ApiError::bad_request(
            "the body must be a JPEG or PNG photo",
        ));
    };
    if body.len() > MAX_BYTES {
        return Err(ApiError::bad_request(format!(
            "a photo may have at most {MAX_BYTES} bytes"
        )));
    }
    let Some(id) = state
        .store
        .add_visit_photo(notice.id, kind, &body, Utc::now(), MAX_PHOTOS as i64)
        .await?
    else {
        return Err(ApiError::conflict(format!(
            "a visit carries at most {MAX_PHOTOS} photos"
        )));
    };
    crate::alerts::audit(
        &state,
        &auth,
        "visit_photo_add",
        format!("notice:{}", notice.id),
        Some(format!("photo {id}, {} bytes", body.len())),
    )
    .await;
    let url = photo_url(notice.id, id);
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({"id": id, "url": url})),
    )
        .into_response())
}

/// `GET /notices/{id}/photos/{photo}`: one photo of the visit.
pub async fn photo(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((raw, pid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let notice = notice_in_scope(&state, &auth, &raw).await?;
    let pid = crate::extract::id(&pid, "photo")?;
    let Some((ct, bytes)) = state.store.visit_photo(notice.id, pid).await? else {
        return Err(ApiError::not_found(format!("photo {pid} not found")));
    };
    crate::alerts::audit(
        &state,
        &auth,
        "read_visit_photo",
        format!("notice:{}", notice.id),
        Some(format!("photo {pid}")),
    )
    .await;
    Ok(crate::images::image(&ct, bytes))
}
