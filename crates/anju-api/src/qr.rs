//! QR passes through the API (issue 15): an office issues a visitor's or a
//! resident's pass for a unit in its scope, prints it (PNG) and revokes it.
//! Passes are signed with the server's key (`anju serve --qr-key FILE`, the
//! same format as `anju qr keygen`); edges trust its public key through the
//! site's `[qr] public_keys` and refuse a revoked pass after their next
//! registry reload. Without a key the endpoints answer 501.

use crate::admin::{if_match, with_etag, write_err};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::Body;
use crate::AppState;
use anju_core::Role;
use anju_rules::qr::{PassKind, PassPayload};
use anju_store::{Change, StoreError, StoredPass};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, SubsecRound, Utc};
use serde::Deserialize;

/// Longest validity of a pass issued through the API.
const MAX_DAYS: i64 = 366;

/// The code as a QR image: 8 pixels a module, a 4-module quiet zone.
///
/// # Errors
/// The code does not fit in a QR symbol, or PNG encoding failed.
pub fn qr_png(code: &str) -> Result<Vec<u8>, String> {
    const SCALE: u32 = 8;
    const QUIET: u32 = 4;
    let q = qrcode::QrCode::with_error_correction_level(code.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| format!("the code does not fit in a QR symbol: {e}"))?;
    let modules = u32::try_from(q.width()).map_err(|e| e.to_string())?;
    let colors = q.to_colors();
    let side = (modules + 2 * QUIET) * SCALE;
    let img = image::GrayImage::from_fn(side, side, |x, y| {
        let (mx, my) = (x / SCALE, y / SCALE);
        let dark = mx >= QUIET
            && my >= QUIET
            && mx < QUIET + modules
            && my < QUIET + modules
            && colors
                .get(((my - QUIET) * modules + (mx - QUIET)) as usize)
                .is_some_and(|c| *c == qrcode::Color::Dark);
        image::Luma([if dark { 0 } else { 255 }])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| e.to_string())?;
    Ok(out.into_inner())
}

fn change(auth: &AuthUser) -> Change<'_> {
    Change {
        by: auth.user.name.as_str(),
        at: Utc::now(),
    }
}

fn answer(status: StatusCode, p: StoredPass) -> Response {
    let v = p.version;
    let png = format!("{}/qr/passes/{}/png", crate::API_PREFIX, p.id);
    let mut j = serde_json::to_value(&p).unwrap_or_default();
    j["png"] = png.into();
    j["revoked"] = p.revoked_at.is_some().into();
    with_etag(status, v, j)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct IssueBody {
    /// `ESTATE/BUILDING/UNIT`.
    unit: Option<String>,
    kind: Option<String>,
    valid_from: Option<chrono::DateTime<chrono::FixedOffset>>,
    valid_to: Option<chrono::DateTime<chrono::FixedOffset>>,
    single_use: Option<bool>,
}

/// `POST /qr/passes {"unit", "kind", "valid_from", "valid_to",
/// "single_use"}`: a signed pass for a unit in the caller's scope —
/// visitor passes by operators, supervisors and administrators, resident
/// passes by administrators. 201 with the code, the PNG's URL and the
/// `ETag`; 501 when the server has no signing key.
pub async fn issue(
    State(state): State<AppState>,
    auth: AuthUser,
    Body(b): Body<IssueBody>,
) -> Result<Response, ApiError> {
    auth.require(
        &[Role::Admin, Role::Supervisor, Role::Operator],
        "issue QR passes",
    )?;
    let Some(key) = state.qr_signer.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "not_implemented",
            "this server has no QR signing key (anju serve --qr-key FILE)",
        ));
    };
    let kind = match b.kind.as_deref() {
        Some("visitor") => PassKind::Visitor,
        Some("resident") => {
            auth.require(&[Role::Admin], "issue resident passes")?;
            PassKind::Resident
        }
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "kind: {k:?} must be visitor or resident"
            )))
        }
        None => return Err(ApiError::bad_request("kind is required")),
    };
    let unit = b
        .unit
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("unit (ESTATE/BUILDING/UNIT) is required"))?;
    let parts: Vec<&str> = unit.split('/').collect();
    let [estate, building, number] = parts.as_slice() else {
        return Err(ApiError::bad_request(format!(
            "unit must be ESTATE/BUILDING/UNIT, got {unit:?}"
        )));
    };
    if !auth.scope.allows_estate(estate)
        || !state.store.unit_exists(estate, building, number).await?
    {
        return Err(ApiError::not_found(format!("unit {unit} not found")));
    }
    let now = Utc::now().trunc_subsecs(0);
    let nbf = b
        .valid_from
        .map_or(now, |t| t.with_timezone(&Utc).trunc_subsecs(0));
    let Some(exp) = b.valid_to.map(|t| t.with_timezone(&Utc).trunc_subsecs(0)) else {
        return Err(ApiError::bad_request("valid_to (RFC 3339) is required"));
    };
    if exp <= nbf || exp <= now {
        return Err(ApiError::bad_request(
            "valid_to must be after valid_from and in the future",
        ));
    }
    if exp.signed_duration_since(nbf) > Duration::days(MAX_DAYS) {
        return Err(ApiError::bad_request(format!(
            "a pass is valid for at most {MAX_DAYS} days"
        )));
    }
    let id = anju_rules::qr::random_pass_id()
        .map_err(|e| ApiError::internal(format!("pass id: {e}")))?;
    let pass = PassPayload {
        id: id.clone(),
        unit: unit.to_owned(),
        kind,
        nbf,
        exp,
        single_use: b.single_use.unwrap_or(false),
    };
    let code = anju_rules::qr::issue(&pass, &key)
        .map_err(|e| ApiError::internal(format!("signing the pass: {e}")))?;
    let stored = state
        .store
        .add_pass(
            &StoredPass {
                id,
                estate: (*estate).to_owned(),
                unit: unit.to_owned(),
                kind: match kind {
                    PassKind::Visitor => "visitor",
                    PassKind::Resident => "resident",
                }
                .to_owned(),
                valid_from: nbf,
                valid_to: exp,
                single_use: pass.single_use,
                code,
                issued_by: auth.user.name.as_str().to_owned(),
                issued_at: now,
                revoked_by: None,
                revoked_at: None,
                version: 1,
            },
            change(&auth),
        )
        .await?;
    Ok(answer(StatusCode::CREATED, stored))
}

async fn scoped(state: &AppState, auth: &AuthUser, id: &str) -> Result<StoredPass, ApiError> {
    auth.require(
        &[Role::Admin, Role::Supervisor, Role::Operator],
        "read QR passes",
    )?;
    match state.store.get_pass(id).await? {
        Some(p) if auth.scope.allows_estate(&p.estate) => Ok(p),
        _ => Err(ApiError::not_found(format!("pass {id} not found"))),
    }
}

/// `GET /qr/passes/{id}`: the pass with its `ETag`.
pub async fn get(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(answer(StatusCode::OK, scoped(&state, &auth, &id).await?))
}

/// `GET /qr/passes/{id}/png`: the pass as a QR image to print or send.
pub async fn png(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let p = scoped(&state, &auth, &id).await?;
    let png = qr_png(&p.code).map_err(ApiError::internal)?;
    let mut r = (StatusCode::OK, png).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(r)
}

/// `POST /qr/passes/{id}/revoke` with `If-Match`: the edges refuse the pass
/// (`qr_invalid`, revoked) after their next registry reload. Administrators
/// and supervisors; operators revoke the visitor passes they issued.
pub async fn revoke(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let p = scoped(&state, &auth, &id).await?;
    if auth.role() == Role::Operator && p.issued_by != auth.user.name.as_str() {
        return Err(ApiError::forbidden(
            "operators revoke the passes they issued; ask a supervisor",
        ));
    }
    let v = if_match(&headers)?;
    let stored = match state.store.revoke_pass(&id, v, change(&auth)).await {
        Err(StoreError::NotFound) => {
            return Err(ApiError::not_found(format!("pass {id} not found")))
        }
        r => r.map_err(write_err)?,
    };
    Ok(answer(StatusCode::OK, stored))
}
