//! Evidence images (DESIGN "Contract — evidence images"): a snapshot is
//! served to a caller an alert of whose scope cites it; the photo a person
//! was enrolled from to a caller whose scope holds the person. Each read is
//! audited (who, when, which image, which alert); an image past its
//! retention is 404.

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

/// Personal data: never in a shared cache, not kept by the browser.
pub(crate) fn image(content_type: &str, bytes: Vec<u8>) -> Response {
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    r
}

/// An audit record with a detail (the one audit writer: `alerts::audit`).
async fn audit(state: &AppState, auth: &AuthUser, action: &str, object: String, detail: String) {
    crate::alerts::audit(state, auth, action, object, Some(detail)).await;
}

/// `GET /snapshots/{key}`: the JPEG of a best-face snapshot.
pub async fn snapshot(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("snapshot {key} not found"));
    if !anju_store::valid_snapshot_key(&key) {
        return Err(not_found());
    }
    let url = anju_store::snapshot_url(&key);
    let Some(alert) = state.store.alert_citing(&url, &auth.scope).await? else {
        return Err(not_found());
    };
    let Some(snap) = state.store.get_snapshot(&key).await? else {
        return Err(not_found());
    };
    audit(
        &state,
        &auth,
        "read_snapshot",
        format!("snapshot:{key}"),
        format!("alert {alert}"),
    )
    .await;
    Ok(image("image/jpeg", snap.jpeg))
}

/// `GET /persons/{id}/photo`: the photo the person's face was enrolled
/// from, to put beside a snapshot.
pub async fn person_photo(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(pid): Path<String>,
) -> Result<Response, ApiError> {
    if state.store.get_person(&pid, &auth.scope).await?.is_empty() {
        return Err(ApiError::not_found(format!("person {pid} not found")));
    }
    let Some((ct, photo)) = state.store.person_photo(&pid).await? else {
        return Err(ApiError::not_found(format!(
            "person {pid} has no enrolled photo"
        )));
    };
    audit(
        &state,
        &auth,
        "read_person_photo",
        format!("person:{pid}"),
        format!("{} bytes", photo.len()),
    )
    .await;
    Ok(image(&ct, photo))
}
