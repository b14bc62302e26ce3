//! Alerts (list, detail, workflow) and field notices.

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{id, Body, Q};
use crate::pages;
use crate::{json, AppState};
use anju_core::{
    Action, Alert, AlertCode, AlertStatus, Outcome, Timestamp, Transition, WorkflowError,
};
use anju_store::{AlertFilter, AuditEntry, Notice, NoticeStatus, Scope};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Largest page of `GET /alerts`.
pub const MAX_LIMIT: i64 = 500;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    status: Option<String>,
    code: Option<String>,
    estate: Option<String>,
    since: Option<String>,
    before: Option<String>,
    limit: Option<String>,
}

pub(crate) fn parse_ts(what: &str, s: &str) -> Result<Timestamp, ApiError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::bad_request(format!(
                "{what} must be an RFC 3339 time such as 2026-03-01T08:00:00+08:00, got {s:?}"
            ))
        })
}

fn parse_filter(q: &ListQuery) -> Result<AlertFilter, ApiError> {
    let status = q
        .status
        .as_deref()
        .map(|s| {
            AlertStatus::parse(s).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unknown status {s:?}: use open, acknowledged, dispatched, resolved or dismissed"
                ))
            })
        })
        .transpose()?;
    let code = q
        .code
        .as_deref()
        .map(|s| {
            AlertCode::parse(s)
                .ok_or_else(|| ApiError::bad_request(format!("unknown alert code {s:?}")))
        })
        .transpose()?;
    let since = q
        .since
        .as_deref()
        .map(|s| parse_ts("since", s))
        .transpose()?;
    let before_id = q
        .before
        .as_deref()
        .map(|s| {
            s.parse::<i64>().ok().filter(|id| *id >= 1).ok_or_else(|| {
                ApiError::bad_request(format!("before must be an alert id, got {s:?}"))
            })
        })
        .transpose()?;
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "limit must be between 1 and {MAX_LIMIT}, got {s:?}"
                )))
            }
        },
    };
    Ok(AlertFilter {
        status,
        code,
        estate: crate::registry::code_param("estate", q.estate.as_deref())?.map(str::to_owned),
        since,
        before_id,
        limit,
    })
}

/// `GET /alerts?status&code&estate&since&before&limit` → newest first.
///
/// Pages are reused while current and carry an `ETag` (see `pages`).
pub async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    Q(q): Q<ListQuery>,
) -> Result<Response, ApiError> {
    let f = parse_filter(&q)?;
    // Read before the page is built (as the request began): a kept page is
    // never older than its version.
    let version = auth.version;
    let key = format!("{:?}|{f:?}", auth.scope);
    let tag = pages::etag(&key, version);
    let m = &state.metrics;
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| pages::matches(v, &tag))
    {
        m.alert_page_not_modified.inc();
        return Ok(page_response(StatusCode::NOT_MODIFIED, &tag, Bytes::new()));
    }
    if let Some((body, n)) = state.pages.get(&key, version) {
        m.alert_page_hits.inc();
        state
            .reads
            .count(auth.user.name.as_str(), "read_alert_page", n);
        return Ok(page_response(StatusCode::OK, &tag, body));
    }
    // A page further back is cut from the replica's index of recent
    // alerts when it holds the whole page (see `index`).
    if let Some((body, n)) = state
        .index
        .page(&state.store, &f, &auth.scope, version)
        .await
    {
        m.alert_page_index.inc();
        state
            .reads
            .count(auth.user.name.as_str(), "read_alert_page", n);
        // Not kept in the page cache: cutting it again costs about as much
        // as finding it there, and pages far back are many.
        return Ok(page_response(StatusCode::OK, &tag, body));
    }
    m.alert_page_misses.inc();
    // The stored evidence goes through as it is (`list_alerts_json`): the
    // page is `{"alerts": [...], "next_before": id}` (absent on the last page).
    let page = state.store.list_alerts_json(&f, &auth.scope).await?;
    let n = page.count as u64;
    state
        .reads
        .count(auth.user.name.as_str(), "read_alert_page", n);
    let next_before = if i64::try_from(page.count).unwrap_or(i64::MAX) == f.limit {
        page.last_id
    } else {
        None
    };
    let mut body = Vec::with_capacity(page.json.len() + 40);
    body.extend_from_slice(b"{\"alerts\":");
    body.extend_from_slice(page.json.as_bytes());
    if let Some(b) = next_before {
        body.extend_from_slice(format!(",\"next_before\":{b}").as_bytes());
    }
    body.push(b'}');
    let body = Bytes::from(body);
    state.pages.put(key, version, body.clone(), n);
    Ok(page_response(StatusCode::OK, &tag, body))
}

fn page_response(status: StatusCode, tag: &str, body: Bytes) -> Response {
    let mut r = Response::new(axum::body::Body::from(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    if status == StatusCode::OK {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    // Personal data: no shared caches; clients revalidate with the ETag.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    r
}

#[derive(Serialize)]
struct AlertDetail {
    #[serde(flatten)]
    alert: Alert,
    transitions: Vec<Transition>,
    /// With the URLs of their visit photos.
    notices: Vec<serde_json::Value>,
    /// Links of the evidence snapshots.
    snapshots: Vec<String>,
    /// The registered person the alert is about (its person, or the
    /// holder of its credential) with a link to their enrolled photo when
    /// there is one: what an operator compares the snapshot with.
    registered: Option<Registered>,
}

#[derive(Serialize)]
struct Registered {
    person: String,
    photo: Option<String>,
}

async fn notices_of(
    state: &AppState,
    alert: i64,
    scope: &Scope,
    only_open: bool,
) -> Result<Vec<Notice>, ApiError> {
    // One alert's notices only (not every notice in scope, filtered here).
    Ok(state
        .store
        .list_notices(
            scope,
            only_open,
            Some(alert),
            anju_store::Page::new(Some(anju_store::Page::MAX_LIMIT), None),
        )
        .await?)
}

pub(crate) async fn audit(
    state: &AppState,
    user: &AuthUser,
    action: &str,
    object: String,
    detail: Option<String>,
) {
    let e = AuditEntry {
        at: Utc::now(),
        user: user.user.name.0.clone(),
        action: action.to_owned(),
        object,
        detail,
    };
    if let Err(err) = state.store.audit(&e).await {
        tracing::error!(error = %err, action, "audit write failed");
    }
}

/// `GET /alerts/{id}`: the alert with its transitions, notices and snapshot
/// links (reading snapshots is audited).
pub async fn detail(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let aid = id(&raw, "alert")?;
    let alert = state
        .store
        .get_alert(aid, &auth.scope)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("alert {aid} not found")))?;
    let transitions = state.store.transitions(aid).await?;
    let notices = notices_of(&state, aid, &auth.scope, false).await?;
    let notices = crate::visits::with_photos(&state, &notices).await?;
    let snapshots: Vec<String> = alert
        .evidence
        .iter()
        .filter_map(|e| e.snapshot.clone())
        .collect();
    if !snapshots.is_empty() || matches!(alert.subject, anju_core::Subject::Person(_)) {
        audit(
            &state,
            &auth,
            "read_alert_evidence",
            format!("alert:{aid}"),
            Some(format!(
                "subject {}; snapshots {}",
                alert.subject.key(),
                snapshots.join(" ")
            )),
        )
        .await;
    }
    let person = match &alert.subject {
        anju_core::Subject::Person(p) => Some(p.as_str().to_owned()),
        anju_core::Subject::Credential(c) => state.store.credential_holder(c.as_str()).await?,
        _ => None,
    };
    let registered = match person {
        // Only a person the caller may see.
        Some(p) if !state.store.get_person(&p, &auth.scope).await?.is_empty() => {
            let photo = state
                .store
                .has_person_photo(&p)
                .await?
                .then(|| format!("/api/v1/persons/{p}/photo"));
            Some(Registered { person: p, photo })
        }
        _ => None,
    };
    Ok(json(AlertDetail {
        alert,
        transitions,
        notices,
        snapshots,
        registered,
    }))
}

/// Body of `POST /alerts/{id}/{action}`.
#[derive(Deserialize, Default)]
pub struct ActionBody {
    reason: Option<String>,
    outcome: Option<String>,
    assignee: Option<String>,
    /// RFC 3339 due time of the notice (dispatch).
    due: Option<String>,
}

fn parse_action(s: &str) -> Result<Action, ApiError> {
    match s {
        "ack" => Ok(Action::Ack),
        "dispatch" => Ok(Action::Dispatch),
        "resolve" => Ok(Action::Resolve),
        "dismiss" => Ok(Action::Dismiss),
        o => Err(ApiError::not_found(format!(
            "unknown action {o:?}: use ack, dispatch, resolve or dismiss"
        ))),
    }
}

fn parse_outcome(s: &str) -> Result<Outcome, ApiError> {
    Outcome::parse(s).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown outcome {s:?}: use confirmed, false_alarm or no_action"
        ))
    })
}

fn workflow_err(e: WorkflowError) -> ApiError {
    match e {
        WorkflowError::ReasonRequired(w) => ApiError::bad_request(format!("{w} requires a reason")),
        e @ WorkflowError::InvalidTransition { .. } => {
            let mut err = ApiError::conflict(e.to_string());
            err.code = "invalid_transition";
            err
        }
    }
}

/// The 409 of a workflow step that lost the compare-and-set: the alert's
/// status is no longer the one the step was checked against.
async fn changed_meanwhile(state: &AppState, auth: &AuthUser, id: i64) -> ApiError {
    let now = match state.store.get_alert(id, &auth.scope).await {
        Ok(Some(a)) => format!(" (now {})", a.status.as_str()),
        Ok(None) => String::new(),
        Err(e) => {
            tracing::warn!(alert = id, error = %e, "re-reading an alert after a lost transition");
            String::new()
        }
    };
    ApiError::conflict(format!("alert {id} changed meanwhile{now}"))
}

/// Applies a workflow step as compare-and-set from the status that was read
/// (`alert.status`): of two concurrent steps from the same state one wins,
/// the other answers 409 `conflict` and changes nothing. Only the winner
/// records the transition, audits and publishes it on the live feed.
async fn transition(
    state: &AppState,
    auth: &AuthUser,
    mut alert: Alert,
    action: Action,
    reason: Option<String>,
    outcome: Option<Outcome>,
) -> Result<Alert, ApiError> {
    let from = alert.status;
    let to = from.apply(action).map_err(workflow_err)?;
    let now = Utc::now();
    let won = state
        .store
        .transition_alert(alert.id, from, to, reason.as_deref(), outcome, now)
        .await?;
    if !won {
        return Err(changed_meanwhile(state, auth, alert.id).await);
    }
    // The row as it is now (with any evidence the analyzer attached since it
    // was read); the step's own fields if it cannot be read back.
    match state.store.get_alert(alert.id, &Scope::all()).await {
        Ok(Some(current)) => alert = current,
        Ok(None) | Err(_) => {
            alert.status = to;
            alert.updated_at = now;
            if reason.is_some() {
                alert.reason.clone_from(&reason);
            }
            if outcome.is_some() {
                alert.outcome = outcome;
            }
        }
    }
    state
        .store
        .record_transition(&Transition {
            alert_id: alert.id,
            from,
            to,
            by: auth.user.name.clone(),
            at: now,
            reason: reason.clone(),
        })
        .await?;
    audit(
        state,
        auth,
        &format!("alert_{}", to.as_str()),
        format!("alert:{}", alert.id),
        reason,
    )
    .await;
    state.publish(alert.clone());
    Ok(alert)
}

/// `POST /alerts/{id}/{ack|dispatch|resolve|dismiss}`.
pub async fn act(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((raw, action)): Path<(String, String)>,
    Body(body): Body<ActionBody>,
) -> Result<Response, ApiError> {
    let aid = id(&raw, "alert")?;
    let action = parse_action(&action)?;
    let alert = state
        .store
        .get_alert(aid, &auth.scope)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("alert {aid} not found")))?;
    let reason = body
        .reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    crate::policy::require(
        &auth,
        match action {
            Action::Ack => crate::policy::Step::Ack,
            Action::Dispatch => crate::policy::Step::Dispatch,
            Action::Resolve => crate::policy::Step::Resolve,
            Action::Dismiss => crate::policy::Step::Dismiss,
        },
    )?;
    let mut outcome = None;
    match action {
        Action::Dismiss if reason.is_none() => {
            return Err(workflow_err(WorkflowError::ReasonRequired("dismiss")))
        }
        Action::Resolve => {
            let o = body
                .outcome
                .as_deref()
                .ok_or_else(|| ApiError::bad_request("resolve requires an outcome"))?;
            outcome = Some(parse_outcome(o)?);
        }
        _ => {}
    }
    // Check the step and the notice's terms before any side effect.
    alert.status.apply(action).map_err(workflow_err)?;
    let now = Utc::now();
    let mut dispatch = None;
    if action == Action::Dispatch {
        let due = match body.due.as_deref() {
            Some(s) => {
                let d = parse_ts("due", s)?;
                if d <= now {
                    return Err(ApiError::bad_request("due must be in the future"));
                }
                d
            }
            None => {
                let span = if alert.code == AlertCode::ElderlyNoActivity {
                    state.config.elderly_due
                } else {
                    state.config.default_due
                };
                now + chrono::Duration::from_std(span)
                    .map_err(|_| ApiError::internal("bad default due span"))?
            }
        };
        let assignee = body
            .assignee
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty());
        if let Some(a) = &assignee {
            crate::policy::check_assignee(&state, &alert, a).await?;
        }
        dispatch = Some((assignee, due));
    }
    let closing = matches!(action, Action::Resolve | Action::Dismiss);
    let updated = transition(&state, &auth, alert, action, reason.clone(), outcome).await?;
    // The notice only once the dispatch has won: a losing one creates none.
    // Should creating it fail now, the error is answered and the alert stays
    // dispatched, with its transition recorded, but without a notice —
    // accepted: the reverse order would leave a notice behind for a dispatch
    // that lost.
    let mut notice = None;
    if let Some((assignee, due)) = dispatch {
        notice = Some(
            state
                .store
                .create_notice(&updated, assignee.as_deref(), due, now)
                .await?,
        );
    }
    if closing {
        for n in notices_of(&state, aid, &Scope::all(), true).await? {
            let o = outcome.unwrap_or(Outcome::NoAction);
            if let Err(e) = state
                .store
                .close_notice(n.id, o, reason.as_deref(), now)
                .await
            {
                tracing::warn!(notice = n.id, error = %e, "closing notice of a closed alert");
            }
        }
    }
    let mut v = serde_json::to_value(&updated)
        .map_err(|e| ApiError::internal(format!("alert JSON: {e}")))?;
    if let (Some(n), Some(obj)) = (notice, v.as_object_mut()) {
        obj.insert(
            "notice".into(),
            serde_json::to_value(n).unwrap_or(serde_json::Value::Null),
        );
    }
    Ok(json(v))
}

#[derive(Deserialize, Default)]
pub struct NoticeQuery {
    /// `open` (default: all).
    status: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `GET /notices?status=open` — field staff see the notices of their grids.
pub async fn notices(
    State(state): State<AppState>,
    auth: AuthUser,
    Q(q): Q<NoticeQuery>,
) -> Result<Response, ApiError> {
    let only_open = match q.status.as_deref() {
        None | Some("all") => false,
        Some("open") => true,
        Some(o) => {
            return Err(ApiError::bad_request(format!(
                "status must be open or all, got {o:?}"
            )))
        }
    };
    let page = crate::registry::page_of(q.limit, q.offset)?;
    let list = state
        .store
        .list_notices(&auth.scope, only_open, None, page)
        .await?;
    let list = crate::visits::with_photos(&state, &list).await?;
    Ok(crate::registry::paged("notices", &list, page))
}

#[derive(Deserialize, Default)]
pub struct ResultBody {
    outcome: Option<String>,
    text: Option<String>,
}

/// `POST /notices/{id}/result {"outcome","text"}`: records the visit and
/// resolves the alert.
pub async fn notice_result(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
    Body(body): Body<ResultBody>,
) -> Result<Response, ApiError> {
    let nid = id(&raw, "notice")?;
    let notice = state
        .store
        .get_notice(nid, &auth.scope)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("notice {nid} not found")))?;
    crate::policy::require_notice_result(&auth, &notice)?;
    let outcome = parse_outcome(
        body.outcome
            .as_deref()
            .ok_or_else(|| ApiError::bad_request("outcome is required"))?,
    )?;
    if notice.status == NoticeStatus::Done {
        return Err(ApiError::conflict(format!(
            "notice {nid} is already closed"
        )));
    }
    let text = body
        .text
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    let now = Utc::now();
    state
        .store
        .close_notice(nid, outcome, text.as_deref(), now)
        .await
        .map_err(|e| match e {
            anju_store::StoreError::NotFound => {
                ApiError::conflict(format!("notice {nid} is already closed"))
            }
            e => e.into(),
        })?;
    audit(
        &state,
        &auth,
        "notice_result",
        format!("notice:{nid}"),
        Some(format!(
            "{}: {}",
            outcome.as_str(),
            text.as_deref().unwrap_or("")
        )),
    )
    .await;
    let mut alert_json = serde_json::Value::Null;
    // Resolve the alert unless it is closed already. Losing the
    // compare-and-set to another step means the alert moved meanwhile: read
    // it again (closed by someone else: the visit's result still stands).
    let mut attempts = 0;
    while let Some(alert) = state
        .store
        .get_alert(notice.alert_id, &Scope::all())
        .await?
    {
        if !alert.status.is_active() {
            alert_json = serde_json::to_value(alert).unwrap_or(serde_json::Value::Null);
            break;
        }
        attempts += 1;
        match transition(
            &state,
            &auth,
            alert,
            Action::Resolve,
            text.clone(),
            Some(outcome),
        )
        .await
        {
            Ok(alert) => {
                alert_json = serde_json::to_value(alert).unwrap_or(serde_json::Value::Null);
                break;
            }
            Err(e) if e.code == "conflict" && attempts < 3 => continue,
            Err(e) => return Err(e),
        }
    }
    let notice = state.store.get_notice(nid, &Scope::all()).await?;
    Ok(json(
        serde_json::json!({ "notice": notice, "alert": alert_json }),
    ))
}
