//! Registry writes (issue 15) on both backends: validation errors, the
//! audit (before → after, in the person's history), optimistic concurrency
//! (428 without If-Match, 412 on a stale one), and the authorisation matrix
//! of every write × role × foreign estate.
#![allow(clippy::unwrap_used)]

mod common;

use anju_core::*;
use anju_store::Backend;
use axum::http::{header, StatusCode};
use common::{call, raw, setup, Ctx};
use serde_json::{json, Value};

/// A request with `If-Match` (when given); status, ETag, JSON body.
async fn send(
    ctx: &Ctx,
    role: &str,
    method: &str,
    uri: &str,
    body: Option<Value>,
    if_match: Option<&str>,
) -> (StatusCode, Option<String>, Value) {
    let h: Vec<(&str, &str)> = if_match.map(|m| vec![("If-Match", m)]).unwrap_or_default();
    let (st, headers, bytes) = raw(ctx, Some(role), method, uri, body, &h).await;
    let etag = headers
        .get(header::ETAG)
        .map(|v| v.to_str().unwrap().to_owned());
    (
        st,
        etag,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The current ETag of an object, read by the city administrator.
async fn tag(ctx: &Ctx, uri: &str) -> String {
    let (st, etag, v) = send(ctx, "city", "GET", uri, None, None).await;
    assert_eq!(st, StatusCode::OK, "{uri}: {v}");
    etag.unwrap()
}

/// Adds `city`, an administrator of every estate, to the test's users.
async fn with_city_admin(backend: Backend) -> Ctx {
    let mut ctx = setup(backend).await;
    let u = User {
        name: "city".into(),
        role: Role::Admin,
        all_estates: true,
        estates: vec![],
        grids: vec![],
    };
    ctx.store()
        .put_user(&u, &anju_api::hash_password("pw-demo"))
        .await
        .unwrap();
    let (st, v) = call(
        &ctx,
        None,
        "POST",
        "/api/v1/auth/login",
        Some(json!({"username": "city", "password": "pw-demo"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    ctx.tokens
        .insert("city", v["token"].as_str().unwrap().to_owned());
    ctx
}

async fn history(ctx: &Ctx, person: &str) -> Vec<Value> {
    let (st, _, v) = send(
        ctx,
        "city",
        "GET",
        &format!("/api/v1/persons/{person}/history"),
        None,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["history"].as_array().unwrap().clone()
}

/// Issue, report lost, suspend, revoke: validation, ETags, 412/428, the
/// audit, and what a supervisor may do.
async fn credentials(backend: Backend) {
    let ctx = with_city_admin(backend).await;
    let uri = "/api/v1/credentials/card/C-FCY-P1";
    let (st, etag, v) = send(&ctx, "admin", "GET", uri, None, None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "active");
    let t0 = etag.unwrap();
    assert_eq!(
        send(&ctx, "operator", "GET", uri, None, None).await.0,
        StatusCode::FORBIDDEN
    );
    let status = format!("{uri}/status");
    // Validation, then the preconditions.
    let (st, _, v) = send(
        &ctx,
        "admin",
        "POST",
        &status,
        Some(json!({"status": "stolen"})),
        Some(&t0),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("lost"),
        "{v}"
    );
    let lost = Some(json!({"status": "lost", "note": "tenant called"}));
    let (st, _, v) = send(&ctx, "admin", "POST", &status, lost.clone(), None).await;
    assert_eq!(st, StatusCode::PRECONDITION_REQUIRED, "{v}");
    let (st, _, v) = send(&ctx, "admin", "POST", &status, lost.clone(), Some("\"99\"")).await;
    assert_eq!(st, StatusCode::PRECONDITION_FAILED, "{v}");
    let (st, _, v) = send(
        &ctx,
        "admin",
        "POST",
        &status,
        lost.clone(),
        Some("garbage"),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "not an ETag: {v}");
    let (st, t1, v) = send(&ctx, "admin", "POST", &status, lost.clone(), Some(&t0)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "lost");
    assert_eq!(v["status_by"], "admin");
    let t1 = t1.unwrap();
    assert_ne!(t1, t0);
    // The same ETag twice: the second write lost the race.
    let (st, _, _) = send(&ctx, "admin", "POST", &status, lost.clone(), Some(&t0)).await;
    assert_eq!(st, StatusCode::PRECONDITION_FAILED);
    // Supervisors report lost or suspended, nothing else.
    let (st, _, _) = send(
        &ctx,
        "supervisor",
        "POST",
        &status,
        Some(json!({"status": "active"})),
        Some(&t1),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, t2, v) = send(
        &ctx,
        "supervisor",
        "POST",
        &status,
        Some(json!({"status": "suspended"})),
        Some(&t1),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Listed with its status.
    let (_, list) = call(
        &ctx,
        Some("admin"),
        "GET",
        "/api/v1/credentials?person=FCY-P1",
        None,
    )
    .await;
    assert_eq!(list["credentials"][0]["status"], "suspended", "{list}");
    // Audited with the person, before → after.
    let h = history(&ctx, "FCY-P1").await;
    assert_eq!(h[0]["action"], "credential_suspended");
    assert_eq!(h[0]["by"], "supervisor");
    assert_eq!(h[1]["action"], "credential_lost");
    assert_eq!(h[1]["detail"]["before"]["status"], "active");
    assert_eq!(h[1]["detail"]["after"]["status"], "lost");
    assert_eq!(h[1]["detail"]["note"], "tenant called");
    // Re-importing the ledger keeps the recorded status.
    ctx.store()
        .import_registry(&common::registry())
        .await
        .unwrap();
    let (_, etag, v) = send(&ctx, "admin", "GET", uri, None, None).await;
    assert_eq!(v["status"], "suspended", "{v}");
    assert_eq!(etag, t2, "an unchanged credential keeps its version");
    let reg = ctx.store().load_registry().await.unwrap();
    let c = reg
        .credentials
        .iter()
        .find(|c| c.id.as_str() == "C-FCY-P1")
        .unwrap();
    assert_eq!(c.status, CredentialStatus::Suspended);

    // Issuing.
    let issue = |id: &str, person: &str| json!({"kind": "card", "id": id, "person": person});
    let (st, etag, v) = send(
        &ctx,
        "admin",
        "POST",
        "/api/v1/credentials",
        Some(issue("C-NEW", "FCY-P1")),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(etag.as_deref(), Some("\"1\""));
    assert_eq!(v["status"], "active");
    let (st, _, _) = send(
        &ctx,
        "admin",
        "POST",
        "/api/v1/credentials",
        Some(issue("C-NEW", "FCY-P2")),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, _, _) = send(
        &ctx,
        "admin",
        "POST",
        "/api/v1/credentials",
        Some(issue("C-X", "XYZ-P1")),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "another estate's person");
    let (st, _, _) = send(
        &ctx,
        "admin",
        "POST",
        "/api/v1/credentials",
        Some(issue("C-X", "NOBODY")),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    for bad in [
        json!({"kind": "iris", "id": "C-Y", "person": "FCY-P1"}),
        json!({"kind": "card", "id": "", "person": "FCY-P1"}),
        json!({"kind": "card", "id": "C-Y", "person": "FCY-P1", "valid_from": "2026-02-30"}),
        json!({"kind": "card", "id": "C-Y", "person": "FCY-P1", "valid_from": "2026-03-01", "valid_to": "2026-02-01"}),
        json!({"kind": "card", "id": "C-Y", "person": "FCY-P1", "colour": "red"}),
        json!({"kind": "card", "person": "FCY-P1"}),
    ] {
        let (st, _, v) = send(
            &ctx,
            "admin",
            "POST",
            "/api/v1/credentials",
            Some(bad.clone()),
            None,
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let h = history(&ctx, "FCY-P1").await;
    assert_eq!(h[0]["action"], "credential_issued");
    assert_eq!(h[0]["detail"]["after"]["id"], "C-NEW");
}

/// A person changed, moved out, registered in another unit, erased.
async fn persons(backend: Backend) {
    let ctx = with_city_admin(backend).await;
    let uri = "/api/v1/persons/FCY-P1";
    let (st, etag, _) = send(&ctx, "admin", "GET", uri, None, None).await;
    assert_eq!(st, StatusCode::OK);
    let t0 = etag.unwrap();
    // Validated like the importer.
    for (bad, word) in [
        (json!({"id_number": "110105194912310021"}), "check"),
        (json!({"phone": "call me"}), "phone"),
        (json!({"birth_year": 1800}), "birth year"),
        (json!({"role": "landlord"}), "tenant, member or cohabitant"),
        (json!({"name": ""}), "empty"),
        (json!({}), "nothing to change"),
        (json!({"nickname": "x"}), "unknown field"),
    ] {
        let (st, _, v) = send(&ctx, "admin", "PATCH", uri, Some(bad.clone()), Some(&t0)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
        let msg = v["error"]["message"].as_str().unwrap().to_lowercase();
        assert!(msg.contains(word), "{bad}: {msg}");
    }
    let rename = Some(json!({"name": "张三丰", "phone": "13900000000"}));
    assert_eq!(
        send(&ctx, "admin", "PATCH", uri, rename.clone(), None)
            .await
            .0,
        StatusCode::PRECONDITION_REQUIRED
    );
    let (st, t1, v) = send(&ctx, "admin", "PATCH", uri, rename.clone(), Some(&t0)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["records"][0]["name"], "张三丰");
    let t1 = t1.unwrap();
    assert_eq!(t1, tag(&ctx, uri).await, "the answer's ETag is the GET's");
    assert_eq!(
        send(&ctx, "admin", "PATCH", uri, rename, Some(&t0)).await.0,
        StatusCode::PRECONDITION_FAILED
    );
    // A supervisor marks an elderly person as living alone, nothing else.
    let (st, _, _) = send(
        &ctx,
        "supervisor",
        "PATCH",
        uri,
        Some(json!({"name": "x"})),
        Some(&t1),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, t2, v) = send(
        &ctx,
        "supervisor",
        "PATCH",
        uri,
        Some(json!({"lives_alone": true})),
        Some(&t1),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["records"][0]["lives_alone"], true);
    let h = history(&ctx, "FCY-P1").await;
    assert_eq!(h[0]["action"], "person_changed");
    assert_eq!(
        h[0]["detail"],
        json!({"before": {"lives_alone": false}, "after": {"lives_alone": true}})
    );
    assert_eq!(h[1]["detail"]["before"]["name"], "张三");
    assert_eq!(h[1]["detail"]["after"]["name"], "张三丰");
    assert_eq!(
        h[1]["detail"]["after"]["phone"], "(changed)",
        "no phone numbers in the audit"
    );

    // Moving out keeps the record and revokes the cards.
    let today = chrono::Utc::now().date_naive();
    let mv = format!("{uri}/move-out");
    let (st, _, _) = send(
        &ctx,
        "admin",
        "POST",
        &mv,
        Some(json!({"lease_end": "2019-01-01"})),
        t2.as_deref(),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "before the lease started");
    let (st, t3, v) = send(
        &ctx,
        "admin",
        "POST",
        &mv,
        Some(json!({"lease_end": today.to_string()})),
        t2.as_deref(),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["records"][0]["lease_end"], today.to_string());
    let (_, _, c) = send(
        &ctx,
        "admin",
        "GET",
        "/api/v1/credentials/card/C-FCY-P1",
        None,
        None,
    )
    .await;
    assert_eq!(c["status"], "revoked");
    let (st, _, _) = send(
        &ctx,
        "admin",
        "POST",
        &mv,
        Some(json!({"lease_end": today.to_string()})),
        t3.as_deref(),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "not registered any more");

    // Registered again, joining the household of building 2.
    let reg = |pid: &str, estate: &str, building: &str, household: &str| {
        json!({
            "person_id": pid, "estate": estate, "building": building, "unit": "101",
            "household": household, "name": "张三丰", "role": "member",
            "id_number": "11010519491231002X", "lease_start": today.to_string(),
        })
    };
    let post = |b: Value| send(&ctx, "admin", "POST", "/api/v1/persons", Some(b), None);
    assert_eq!(
        post(reg("FCY-P1", "FCY", "2", "FCY-H1")).await.0,
        StatusCode::CONFLICT,
        "household H1 is 1/101's"
    );
    assert_eq!(
        post(reg("FCY-P2", "FCY", "1", "FCY-H1")).await.0,
        StatusCode::CONFLICT,
        "P2 lives in 2/101"
    );
    assert_eq!(
        post(reg("FCY-N", "XYZ", "1", "XYZ-H1")).await.0,
        StatusCode::NOT_FOUND,
        "another estate"
    );
    assert_eq!(
        post(reg("XYZ-P1", "FCY", "1", "FCY-H1")).await.0,
        StatusCode::CONFLICT,
        "another estate's person"
    );
    let mut nounit = reg("FCY-N", "FCY", "1", "FCY-HN");
    nounit["unit"] = json!("999");
    assert_eq!(post(nounit).await.0, StatusCode::NOT_FOUND);
    let mut badid = reg("FCY-N", "FCY", "1", "FCY-HN");
    badid["id_number"] = json!("110105194912310021");
    assert_eq!(post(badid).await.0, StatusCode::BAD_REQUEST);
    let mut early = reg("FCY-P1", "FCY", "2", "FCY-H2");
    early["lease_start"] = json!("2019-06-01");
    assert_eq!(
        post(early).await.0,
        StatusCode::CONFLICT,
        "before the last registration"
    );
    let (st, t4, v) = post(reg("FCY-P1", "FCY", "2", "FCY-H2")).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        v["records"].as_array().unwrap().len(),
        2,
        "history kept: {v}"
    );
    assert_ne!(t4, t3);
    let actions: Vec<String> = history(&ctx, "FCY-P1")
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        &actions[..3],
        ["person_registered", "person_moved_out", "person_changed"],
        "{actions:?}"
    );

    // Erasure: If-Match and a reason, then gone, with its history kept.
    let del = "/api/v1/persons/FCY-P2";
    let t = tag(&ctx, del).await;
    assert_eq!(
        send(&ctx, "admin", "DELETE", del, None, Some(&t)).await.0,
        StatusCode::BAD_REQUEST,
        "no reason"
    );
    let with_reason = format!("{del}?reason=tenant%20request");
    assert_eq!(
        send(&ctx, "admin", "DELETE", &with_reason, None, None)
            .await
            .0,
        StatusCode::PRECONDITION_REQUIRED
    );
    let (st, _, v) = send(&ctx, "admin", "DELETE", &with_reason, None, Some(&t)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["deleted"]["registrations"], 1);
    assert_eq!(v["deleted"]["credentials"], 1);
    assert_eq!(
        send(&ctx, "admin", "GET", del, None, None).await.0,
        StatusCode::NOT_FOUND
    );
    let reg = ctx.store().load_registry().await.unwrap();
    assert!(reg.persons.iter().all(|p| p.id.as_str() != "FCY-P2"));
    assert!(reg
        .credentials
        .iter()
        .all(|c| c.person.as_str() != "FCY-P2"));
    let h = history(&ctx, "FCY-P2").await;
    assert_eq!(h[0]["action"], "person_deleted");
    assert_eq!(h[0]["by"], "admin");
    assert_eq!(h[0]["detail"]["reason"], "tenant request");
    // Gone from an estate administrator's view too.
    let (st, _, _) = send(
        &ctx,
        "admin",
        "GET",
        "/api/v1/persons/FCY-P2/history",
        None,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // FCY-P1 moves to XYZ (the city's administrator): FCY's administrator
    // still sees the FCY registrations but may change nothing — the record
    // is XYZ's office's now.
    let t = tag(&ctx, uri).await;
    let (st, _, v) = send(
        &ctx,
        "city",
        "POST",
        &mv,
        Some(json!({"lease_end": today.to_string()})),
        Some(&t),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let moved = json!({
        "person_id": "FCY-P1", "estate": "XYZ", "building": "1", "unit": "101",
        "household": "XYZ-H1", "name": "张三丰", "role": "member",
        "id_number": "11010519491231002X",
        "lease_start": (today + chrono::Duration::days(1)).to_string(),
    });
    let (st, _, v) = send(&ctx, "city", "POST", "/api/v1/persons", Some(moved), None).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let t = tag(&ctx, uri).await;
    let (st, _, v) = send(&ctx, "admin", "GET", uri, None, None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        v["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["unit"]["estate"] == "FCY"),
        "{v}"
    );
    for (method, u, body) in [
        ("PATCH", uri.to_owned(), Some(json!({"name": "x"}))),
        (
            "POST",
            mv.clone(),
            Some(json!({"lease_end": today.to_string()})),
        ),
        ("DELETE", format!("{uri}?reason=x"), None),
    ] {
        let (st, _, v) = send(&ctx, "admin", method, &u, body, Some(&t)).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{method} {u}: {v}");
    }
    let (st, _, v) = send(
        &ctx,
        "admin",
        "POST",
        "/api/v1/credentials",
        Some(json!({"kind": "card", "id": "C-NEW2", "person": "FCY-P1"})),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
}

/// The watch list: administrators of every estate write it.
async fn watchlist(backend: Backend) {
    let ctx = with_city_admin(backend).await;
    let entry =
        json!({"person": "W9", "name": "李四", "reason": "court order", "expires": "2099-12-31"});
    let (st, _, _) = send(
        &ctx,
        "admin",
        "POST",
        "/api/v1/watchlist",
        Some(entry.clone()),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "an estate's administrator");
    let (st, etag, v) = send(
        &ctx,
        "city",
        "POST",
        "/api/v1/watchlist",
        Some(entry.clone()),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["expires"], "2099-12-31");
    assert_eq!(v["added_by"], "city");
    assert_eq!(
        send(&ctx, "city", "POST", "/api/v1/watchlist", Some(entry), None)
            .await
            .0,
        StatusCode::CONFLICT
    );
    let (st, _, _) = send(
        &ctx,
        "city",
        "POST",
        "/api/v1/watchlist",
        Some(json!({"person": "W8", "name": "x", "reason": "y", "expires": "2001-01-01"})),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "expired already");
    let (st, _, _) = send(
        &ctx,
        "city",
        "POST",
        "/api/v1/watchlist",
        Some(json!({"person": "W8", "name": "x"})),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "no reason");
    let (st, _, v) = send(&ctx, "city", "GET", "/api/v1/watchlist", None, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["watchlist"][0]["person"], "W9");
    // City-wide names: not for one estate's operators.
    assert_eq!(
        send(&ctx, "operator", "GET", "/api/v1/watchlist", None, None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&ctx, "field", "GET", "/api/v1/watchlist", None, None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let reg = ctx.store().load_registry().await.unwrap();
    assert_eq!(
        reg.watchlist[0].expires,
        chrono::NaiveDate::from_ymd_opt(2099, 12, 31)
    );
    let del = "/api/v1/watchlist/W9?reason=lifted";
    assert_eq!(
        send(
            &ctx,
            "city",
            "DELETE",
            "/api/v1/watchlist/W9",
            None,
            etag.as_deref()
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        send(&ctx, "city", "DELETE", del, None, Some("\"7\""))
            .await
            .0,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        send(&ctx, "city", "DELETE", del, None, etag.as_deref())
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&ctx, "city", "GET", "/api/v1/watchlist/W9", None, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let h = history(&ctx, "W9").await;
    assert_eq!(h[0]["action"], "watchlist_removed");
    assert_eq!(h[0]["detail"]["why"], "lifted");
    assert_eq!(h[1]["action"], "watchlist_added");
}

/// Every write × every role × own estate / foreign estate. Users other than
/// `city` are scoped to FCY (field staff to its grid G1: building 1); XYZ
/// is foreign. Expected: 404 for an object outside the caller's scope
/// (whatever the role), 403 for a role that may not write it, success
/// otherwise. Roles run from the least to the most privileged so that the
/// successful writes come last.
async fn authorisation_matrix(backend: Backend) {
    let ctx = with_city_admin(backend).await;
    struct W {
        name: &'static str,
        method: &'static str,
        /// URI for an object of `estate`.
        uri: fn(&str) -> String,
        body: fn(&str, &str) -> Option<Value>,
        /// URI whose GET gives the ETag to send (None: no If-Match).
        etag: Option<fn(&str) -> String>,
    }
    let writes = [
        W {
            name: "issue",
            method: "POST",
            uri: |_| "/api/v1/credentials".into(),
            body: |e, r| {
                Some(
                    json!({"kind": "card", "id": format!("C-{e}-{r}"), "person": format!("{e}-P1")}),
                )
            },
            etag: None,
        },
        W {
            name: "card status",
            method: "POST",
            uri: |e| format!("/api/v1/credentials/card/C-{e}-P1/status"),
            body: |_, _| Some(json!({"status": "lost"})),
            etag: Some(|e| format!("/api/v1/credentials/card/C-{e}-P1")),
        },
        W {
            name: "patch person",
            method: "PATCH",
            uri: |e| format!("/api/v1/persons/{e}-P1"),
            body: |_, _| Some(json!({"lives_alone": true})),
            etag: Some(|e| format!("/api/v1/persons/{e}-P1")),
        },
        W {
            name: "register",
            method: "POST",
            uri: |_| "/api/v1/persons".into(),
            body: |e, r| {
                Some(
                    json!({"person_id": format!("{e}-new-{r}"), "estate": e, "building": "1", "unit": "101", "household": format!("{e}-H1"), "name": "新人", "role": "member", "id_number": "11010519491231002X", "lease_start": chrono::Utc::now().date_naive().to_string()}),
                )
            },
            etag: None,
        },
        W {
            name: "consent",
            method: "POST",
            uri: |e| format!("/api/v1/persons/{e}-P1/consent"),
            body: |_, _| Some(json!({"face": true})),
            etag: None,
        },
        W {
            name: "move out",
            method: "POST",
            uri: |e| format!("/api/v1/persons/{e}-P1/move-out"),
            body: |_, _| {
                Some(
                    json!({"lease_end": chrono::Utc::now().date_naive().to_string(), "revoke_credentials": false}),
                )
            },
            etag: Some(|e| format!("/api/v1/persons/{e}-P1")),
        },
        W {
            name: "delete person",
            method: "DELETE",
            uri: |e| format!("/api/v1/persons/{e}-P2?reason=matrix"),
            body: |_, _| None,
            etag: Some(|e| format!("/api/v1/persons/{e}-P2")),
        },
        W {
            name: "watch add",
            method: "POST",
            uri: |_| "/api/v1/watchlist".into(),
            body: |e, r| {
                Some(json!({"person": format!("W-{e}-{r}"), "name": "x", "reason": "matrix"}))
            },
            etag: None,
        },
        W {
            name: "watch remove",
            method: "DELETE",
            uri: |_| "/api/v1/watchlist/W-city?reason=matrix".into(),
            body: |_, _| None,
            etag: Some(|_| "/api/v1/watchlist/W-city".into()),
        },
        W {
            name: "entrance add",
            method: "POST",
            uri: |_| "/api/v1/entrances".into(),
            body: |e, r| {
                Some(json!({"estate": e, "code": format!("gate-{r}"), "kind": "estate_gate"}))
            },
            etag: None,
        },
        W {
            name: "device add",
            method: "POST",
            uri: |_| "/api/v1/devices".into(),
            body: |e, r| {
                Some(
                    json!({"estate": e, "id": format!("gr-{e}-{r}"), "kind": "reader", "entrance": "north-gate"}),
                )
            },
            etag: None,
        },
        W {
            name: "device remove",
            method: "DELETE",
            uri: |e| {
                format!(
                    "/api/v1/devices/{e}/{}gr-b1",
                    if e == "FCY" { "" } else { "x-" }
                )
            },
            body: |_, _| None,
            etag: Some(|e| {
                format!(
                    "/api/v1/devices/{e}/{}gr-b1",
                    if e == "FCY" { "" } else { "x-" }
                )
            }),
        },
        W {
            name: "user create",
            method: "POST",
            uri: |_| "/api/v1/users".into(),
            body: |e, r| {
                Some(
                    json!({"name": format!("u-{e}-{r}"), "role": "operator", "estates": [e], "password": "a-long-password"}),
                )
            },
            etag: None,
        },
        W {
            name: "user change",
            method: "PATCH",
            uri: |e| format!("/api/v1/users/op-{e}"),
            body: |_, _| Some(json!({"role": "supervisor"})),
            etag: Some(|e| format!("/api/v1/users/op-{e}")),
        },
        W {
            name: "user delete",
            method: "DELETE",
            uri: |e| format!("/api/v1/users/del-{e}"),
            body: |_, _| None,
            etag: Some(|e| format!("/api/v1/users/del-{e}")),
        },
    ];
    for e in ["FCY", "XYZ"] {
        for name in [format!("op-{e}"), format!("del-{e}")] {
            let (st, _, v) = send(&ctx, "city", "POST", "/api/v1/users", Some(json!({"name": name, "role": "operator", "estates": [e], "password": "a-long-password"})), None).await;
            assert_eq!(st, StatusCode::CREATED, "{v}");
        }
    }
    let (st, _, _) = send(
        &ctx,
        "city",
        "POST",
        "/api/v1/watchlist",
        Some(json!({"person": "W-city", "name": "x", "reason": "matrix"})),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let ok = |s: StatusCode| s.is_success();
    let mut failures = Vec::new();
    for w in &writes {
        for estate in ["XYZ", "FCY"] {
            for role in ["operator", "field", "supervisor", "admin"] {
                let uri = (w.uri)(estate);
                let etag = match w.etag {
                    Some(f) => {
                        let (st, etag, _) = send(&ctx, "city", "GET", &f(estate), None, None).await;
                        assert_eq!(st, StatusCode::OK, "{}: {}", w.name, f(estate));
                        etag
                    }
                    None => None,
                };
                let (st, _, v) = send(
                    &ctx,
                    role,
                    w.method,
                    &uri,
                    (w.body)(estate, role),
                    etag.as_deref(),
                )
                .await;
                let foreign = estate == "XYZ";
                // Field staff see FCY building 1 only: P2 (building 2) is
                // outside their scope.
                let out_of_scope = foreign || (role == "field" && w.name == "delete person");
                let by_path = !matches!(
                    w.name,
                    "issue"
                        | "register"
                        | "watch add"
                        | "watch remove"
                        | "user create"
                        | "entrance add"
                        | "device add"
                );
                // Users: administrators only, asked before anything else
                // (403 says nothing about whether a user exists).
                let users = w.name.starts_with("user");
                let may = match (w.name, role) {
                    ("card status" | "patch person", "supervisor" | "admin") => true,
                    ("watch add" | "watch remove", _) => false,
                    (_, "admin") => true,
                    _ => false,
                };
                let out_of_scope = out_of_scope && !(users && role == "field");
                let expect = if users && role != "admin" {
                    "403"
                } else if users && foreign && w.name == "user create" {
                    // Granting an estate outside one's scope.
                    "403"
                } else if out_of_scope && by_path {
                    "404"
                } else if !may {
                    "403"
                } else if foreign {
                    "404"
                } else {
                    "2xx"
                };
                let got_ok = match expect {
                    "404" => st == StatusCode::NOT_FOUND,
                    "403" => st == StatusCode::FORBIDDEN,
                    _ => ok(st),
                };
                if !got_ok {
                    failures.push(format!(
                        "{} {estate} as {role}: expected {expect}, got {st} {v}",
                        w.name
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A ledger row of the test registry, as the importer reads it.
fn row(building: &str, phone: &str, lease_end: &str) -> String {
    format!(
        "FCY,{building},101,50,FCY-H{building},FCY-P{building},张三,tenant,11010519491231002X,{phone},1949,0,2020-01-01,{lease_end}\n"
    )
}

async fn upload(ctx: &Ctx, role: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let req = axum::http::Request::builder()
        .method("POST")
        .uri("/api/v1/ledger/dry-run")
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", ctx.tokens[role]),
        )
        .header(header::CONTENT_TYPE, "text/csv")
        .body(axum::body::Body::from(body))
        .unwrap();
    use tower::ServiceExt;
    let resp = ctx.app().oneshot(req).await.unwrap();
    let st = resp.status();
    use http_body_util::BodyExt;
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (st, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// The dry-run upload: an unchanged ledger changes nothing; a changed one
/// lists exactly its changes; a broken one lists its errors by line and
/// column; another estate's rows are errors for an estate administrator;
/// XLSX is read like CSV; nothing is written.
async fn ledger_dry_run(backend: Backend) {
    let ctx = with_city_admin(backend).await;
    let header = anju_site_header();
    let same = format!(
        "{header}{}{}",
        row("1", "13812345678", ""),
        row("2", "13812345678", "")
    );
    let (st, v) = upload(&ctx, "admin", same.clone().into_bytes()).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["would_change"], false, "{v}");
    assert!(
        v["persons"]["kept_not_in_file"]
            .as_array()
            .unwrap()
            .is_empty(),
        "XYZ's rows are not shown: {v}"
    );
    // A new phone for P1, P2 moving out, a new member in 1/101.
    let changed = format!(
        "{header}{}{}FCY,1,101,50,FCY-H1,FCY-P9,李四,member,11010519491231002X,,1990,0,2026-01-01,\n",
        row("1", "13900000000", ""),
        row("2", "13812345678", "2026-06-30"),
    );
    let (st, v) = upload(&ctx, "admin", changed.into_bytes()).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["would_change"], true);
    assert_eq!(v["persons"]["added"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["persons"]["added"][0]["id"], "FCY-P9");
    assert_eq!(v["persons"]["changed"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["moved_out"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["moved_out"][0]["person"], "FCY-P2");
    assert!(v["units"]["added"].as_array().unwrap().is_empty(), "{v}");
    // Nothing written.
    let reg = ctx.store().load_registry().await.unwrap();
    assert!(reg
        .persons
        .iter()
        .all(|p| p.id.as_str() != "FCY-P9" && p.lease_end.is_none()));
    // Errors by line and column; another estate's row is one of them.
    let broken = format!(
        "{header}{}FCY,1,101,50,FCY-H1,FCY-P1,张三,tenant,110105194912310021,,1949,0,2020-01-01,\nXYZ,1,101,50,XYZ-H1,XYZ-P1,张三,tenant,11010519491231002X,,1949,0,2020-01-01,\n",
        row("2", "13812345678", "")
    );
    let (st, v) = upload(&ctx, "admin", broken.clone().into_bytes()).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["valid"], false, "{v}");
    let errs = v["errors"].as_array().unwrap();
    assert!(
        errs.iter()
            .any(|e| e["line"] == 3 && e["field"] == "id_number"),
        "{v}"
    );
    assert!(
        errs.iter()
            .any(|e| e["line"] == 4 && e["field"] == "estate"),
        "{v}"
    );
    // The city administrator may check every estate's rows.
    let (_, v) = upload(&ctx, "city", broken.into_bytes()).await;
    let errs = v["errors"].as_array().unwrap();
    assert!(!errs.iter().any(|e| e["line"] == 4), "{v}");
    // XLSX, as `anju export` writes it.
    let dir = std::env::temp_dir().join(format!("anju-ledger-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{backend:?}.xlsx"));
    let rows: Vec<Vec<String>> = same
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    anju_site::export::write_xlsx(&path, &anju_site_columns(), &rows).unwrap();
    let (st, v) = upload(&ctx, "admin", std::fs::read(&path).unwrap()).await;
    std::fs::remove_file(&path).ok();
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["would_change"], false, "{v}");
    // Administrators only; an empty body is refused.
    assert_eq!(
        upload(&ctx, "supervisor", same.into_bytes()).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        upload(&ctx, "admin", Vec::new()).await.0,
        StatusCode::BAD_REQUEST
    );
}

fn anju_site_columns() -> Vec<&'static str> {
    anju_site::LEDGER_COLUMNS.to_vec()
}

fn anju_site_header() -> String {
    anju_site_columns().join(",") + "\n"
}

async fn login_as(ctx: &Ctx, user: &str, password: &str) -> (StatusCode, Value) {
    call(
        ctx,
        None,
        "POST",
        "/api/v1/auth/login",
        Some(json!({"username": user, "password": password})),
    )
    .await
}

/// Users and roles: an estate's administrator manages users of their
/// estates only and grants no more than their own scope; changes are
/// audited, guarded by If-Match, effective at the next request; a new
/// password or a deletion ends the user's sessions.
async fn users(backend: Backend) {
    let mut ctx = with_city_admin(backend).await;
    let (st, _, v) = send(&ctx, "admin", "GET", "/api/v1/users", None, None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let names: Vec<&str> = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"operator") && !names.contains(&"city"),
        "{names:?}"
    );
    assert_eq!(
        send(&ctx, "admin", "GET", "/api/v1/users/city", None, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&ctx, "supervisor", "GET", "/api/v1/users", None, None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let new = |extra: Value| {
        let mut b = json!({"name": "op2", "role": "operator", "estates": ["FCY"], "password": "op2-password"});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (bad, st) in [
        (json!({"estates": ["XYZ"]}), StatusCode::FORBIDDEN),
        (json!({"all_estates": true}), StatusCode::FORBIDDEN),
        (json!({"estates": ["NOPE"]}), StatusCode::BAD_REQUEST),
        (json!({"role": "boss"}), StatusCode::BAD_REQUEST),
        (json!({"password": "short"}), StatusCode::BAD_REQUEST),
        (json!({"role": "field_staff"}), StatusCode::BAD_REQUEST),
        (
            json!({"role": "field_staff", "grids": ["FCY:G9"]}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"estates": []}), StatusCode::BAD_REQUEST),
    ] {
        let (got, _, v) = send(
            &ctx,
            "admin",
            "POST",
            "/api/v1/users",
            Some(new(bad.clone())),
            None,
        )
        .await;
        assert_eq!(got, st, "{bad}: {v}");
    }
    let (st, etag, v) = send(
        &ctx,
        "admin",
        "POST",
        "/api/v1/users",
        Some(new(json!({}))),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["role"], "operator");
    assert!(v.get("password_hash").is_none(), "{v}");
    assert_eq!(
        send(
            &ctx,
            "admin",
            "POST",
            "/api/v1/users",
            Some(new(json!({}))),
            None
        )
        .await
        .0,
        StatusCode::CONFLICT
    );
    let (st, v) = login_as(&ctx, "op2", "op2-password").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    ctx.tokens
        .insert("op2", v["token"].as_str().unwrap().to_owned());
    let card = "/api/v1/credentials/card/C-FCY-P1";
    assert_eq!(
        send(&ctx, "op2", "GET", card, None, None).await.0,
        StatusCode::FORBIDDEN
    );
    // Promoted: effective at the next request.
    let uri = "/api/v1/users/op2";
    let promote = Some(json!({"role": "supervisor"}));
    assert_eq!(
        send(&ctx, "admin", "PATCH", uri, promote.clone(), None)
            .await
            .0,
        StatusCode::PRECONDITION_REQUIRED
    );
    assert_eq!(
        send(&ctx, "admin", "PATCH", uri, promote.clone(), Some("\"9\""))
            .await
            .0,
        StatusCode::PRECONDITION_FAILED
    );
    let (st, etag2, v) = send(&ctx, "admin", "PATCH", uri, promote, etag.as_deref()).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        send(&ctx, "op2", "GET", card, None, None).await.0,
        StatusCode::OK
    );
    // A new password ends the sessions.
    let (st, etag3, _) = send(
        &ctx,
        "admin",
        "PATCH",
        uri,
        Some(json!({"password": "op2-new-password"})),
        etag2.as_deref(),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        send(&ctx, "op2", "GET", card, None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_as(&ctx, "op2", "op2-password").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_as(&ctx, "op2", "op2-new-password").await.0,
        StatusCode::OK
    );
    // Nobody takes away their own administration.
    let me = tag(&ctx, "/api/v1/users/admin").await;
    let (st, _, _) = send(
        &ctx,
        "admin",
        "PATCH",
        "/api/v1/users/admin",
        Some(json!({"role": "operator"})),
        Some(&me),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(
        send(
            &ctx,
            "admin",
            "DELETE",
            "/api/v1/users/admin",
            None,
            Some(&me)
        )
        .await
        .0,
        StatusCode::CONFLICT
    );
    // Deleted: gone, and so is the login.
    assert_eq!(
        send(&ctx, "admin", "DELETE", uri, None, etag3.as_deref())
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        login_as(&ctx, "op2", "op2-new-password").await.0,
        StatusCode::UNAUTHORIZED
    );
    let audit = ctx.store().audit_entries(50).await.unwrap();
    let actions: Vec<&str> = audit
        .iter()
        .filter(|e| e.object == "user:op2")
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "user_deleted",
            "user_changed",
            "user_changed",
            "user_created"
        ],
        "{audit:?}"
    );
    let changed = audit
        .iter()
        .rev()
        .find(|e| e.action == "user_changed")
        .unwrap();
    let d: Value = serde_json::from_str(changed.detail.as_deref().unwrap()).unwrap();
    assert_eq!(d["before"]["role"], "operator");
    assert_eq!(d["after"]["role"], "supervisor");
    assert!(
        audit
            .iter()
            .all(|e| !e.detail.as_deref().unwrap_or("").contains("argon2")),
        "no hashes in the audit"
    );
}

/// Per-estate rule thresholds: checked as the rules check them, If-Match
/// ("0" before any), audited, in the registry edges and analyzers reload.
async fn estate_rules(backend: Backend) {
    let ctx = with_city_admin(backend).await;
    let uri = "/api/v1/estates/FCY/rules";
    let (st, etag, v) = send(&ctx, "admin", "GET", uri, None, None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(etag.as_deref(), Some("\"0\""));
    assert_eq!(v["thresholds"]["denied_burst_count"], 5);
    assert!(v["overrides"].is_null());
    assert_eq!(
        send(&ctx, "supervisor", "GET", uri, None, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send(&ctx, "operator", "GET", uri, None, None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(
            &ctx,
            "admin",
            "GET",
            "/api/v1/estates/XYZ/rules",
            None,
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    for (bad, word) in [
        (json!({"nope": 1}), "unknown threshold"),
        (json!({"evening_hour": 30}), "evening_hour"),
        (
            json!({"vacancy_violation_days": 10}),
            "vacancy_violation_days",
        ),
        (
            json!({"denied_burst_count": "two"}),
            "invalid threshold value",
        ),
        (json!({"correlation_window_s": 0}), "correlation_window_s"),
        (json!([1, 2]), "JSON object"),
    ] {
        let (st, _, v) = send(&ctx, "admin", "PUT", uri, Some(bad.clone()), Some("\"0\"")).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(word),
            "{bad}: {v}"
        );
    }
    let two = Some(json!({"denied_burst_count": 2}));
    assert_eq!(
        send(&ctx, "admin", "PUT", uri, two.clone(), None).await.0,
        StatusCode::PRECONDITION_REQUIRED
    );
    assert_eq!(
        send(&ctx, "supervisor", "PUT", uri, two.clone(), Some("\"0\""))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (st, etag, v) = send(&ctx, "admin", "PUT", uri, two.clone(), Some("\"0\"")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(etag.as_deref(), Some("\"1\""));
    assert_eq!(v["thresholds"]["denied_burst_count"], 2);
    assert_eq!(
        v["thresholds"]["elderly_hours"], 48,
        "the others stay the site's"
    );
    assert_eq!(
        send(&ctx, "admin", "PUT", uri, two, Some("\"0\"")).await.0,
        StatusCode::PRECONDITION_FAILED
    );
    let (_, _, v) = send(&ctx, "supervisor", "GET", uri, None, None).await;
    assert_eq!(v["overrides"], json!({"denied_burst_count": 2}));
    assert_eq!(v["updated_by"], "admin");
    let reg = ctx.store().load_registry().await.unwrap();
    assert_eq!(
        reg.rules.get(&EstateCode::from("FCY")),
        Some(&json!({"denied_burst_count": 2}))
    );
    let audit = ctx.store().audit_entries(10).await.unwrap();
    let e = audit
        .iter()
        .find(|e| e.action == "estate_rules_set")
        .unwrap();
    assert_eq!(e.user, "admin");
    assert_eq!(e.object, "estate:FCY");
    // Back to the site's.
    let (st, _, v) = send(&ctx, "admin", "PUT", uri, Some(json!({})), etag.as_deref()).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["thresholds"]["denied_burst_count"], 5);
}

/// Entrances and devices: validated like the site file, scoped, audited,
/// removal guarded by If-Match; in the registry the edges reload.
async fn devices(backend: Backend) {
    let ctx = with_city_admin(backend).await;
    for (bad, st) in [
        (
            json!({"estate": "FCY", "code": "g 2", "kind": "estate_gate"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"estate": "FCY", "code": "g2", "kind": "window"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"estate": "FCY", "code": "g2", "kind": "building_door"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"estate": "FCY", "code": "g2", "kind": "building_door", "building": "9"}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"estate": "XYZ", "code": "g2", "kind": "estate_gate"}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"estate": "FCY", "code": "north-gate", "kind": "estate_gate"}),
            StatusCode::CONFLICT,
        ),
    ] {
        let (got, _, v) = send(
            &ctx,
            "admin",
            "POST",
            "/api/v1/entrances",
            Some(bad.clone()),
            None,
        )
        .await;
        assert_eq!(got, st, "{bad}: {v}");
    }
    let door =
        json!({"estate": "FCY", "code": "b2-door", "kind": "building_door", "building": "2"});
    let (st, _, v) = send(&ctx, "admin", "POST", "/api/v1/entrances", Some(door), None).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    for (bad, st) in [
        (
            json!({"estate": "FCY", "id": "gr-b2", "kind": "turnstile", "entrance": "b2-door"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"estate": "FCY", "id": "cam-b2", "kind": "camera", "entrance": "b2-door"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"estate": "FCY", "id": "cam-b2", "kind": "camera", "entrance": "b2-door", "url": "rtsp://u:p@10.0.0.9/s"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"estate": "FCY", "id": "gr-b2", "kind": "reader", "entrance": "b2-door", "url": "rtsp://10.0.0.9/s"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"estate": "FCY", "id": "gr-b2", "kind": "reader", "entrance": "nowhere"}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"estate": "FCY", "id": "gr-b1", "kind": "reader", "entrance": "b2-door"}),
            StatusCode::CONFLICT,
        ),
    ] {
        let (got, _, v) = send(
            &ctx,
            "admin",
            "POST",
            "/api/v1/devices",
            Some(bad.clone()),
            None,
        )
        .await;
        assert_eq!(got, st, "{bad}: {v}");
    }
    let reader = json!({"estate": "FCY", "id": "gr-b2", "kind": "reader", "entrance": "b2-door"});
    let (st, etag, v) = send(&ctx, "admin", "POST", "/api/v1/devices", Some(reader), None).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let camera = json!({"estate": "FCY", "id": "cam-b2", "kind": "camera", "entrance": "b2-door", "url": "rtsp://10.0.0.9/s", "faces": "in"});
    let (st, _, v) = send(&ctx, "admin", "POST", "/api/v1/devices", Some(camera), None).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let reg = ctx.store().load_registry().await.unwrap();
    assert!(reg
        .devices
        .iter()
        .any(|d| d.id.as_str() == "gr-b2" && d.entrance.as_str() == "b2-door"));
    assert!(reg
        .entrances
        .iter()
        .any(|e| e.code.as_str() == "b2-door"
            && e.building.as_ref().map(|b| b.as_str()) == Some("2")));
    let uri = "/api/v1/devices/FCY/gr-b2";
    assert_eq!(
        send(&ctx, "admin", "DELETE", uri, None, None).await.0,
        StatusCode::PRECONDITION_REQUIRED
    );
    assert_eq!(
        send(&ctx, "admin", "DELETE", uri, None, Some("\"5\""))
            .await
            .0,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        send(&ctx, "admin", "DELETE", uri, None, etag.as_deref())
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&ctx, "admin", "DELETE", uri, None, etag.as_deref())
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let audit = ctx.store().audit_entries(20).await.unwrap();
    let actions: Vec<&str> = audit
        .iter()
        .map(|e| e.action.as_str())
        .filter(|a| a.starts_with("device") || a.starts_with("entrance"))
        .collect();
    assert_eq!(
        actions,
        [
            "device_removed",
            "device_added",
            "device_added",
            "entrance_added"
        ]
    );
}

/// QR passes: issued for a unit in scope (visitor by operators, resident
/// by administrators), printed as PNG, revoked with If-Match into the
/// registry the edges reload; 501 without a signing key.
async fn qr_passes(backend: Backend) {
    let mut ctx = with_city_admin(backend).await;
    let in_a_day = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let visitor = json!({"unit": "FCY/1/101", "kind": "visitor", "valid_to": in_a_day});
    let (st, _, _) = send(
        &ctx,
        "operator",
        "POST",
        "/api/v1/qr/passes",
        Some(visitor.clone()),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_IMPLEMENTED, "no signing key");
    ctx.state = ctx
        .state
        .clone()
        .with_qr_signer(anju_rules::qr::SigningKey::from_bytes(&[7; 32]));
    let (st, etag, v) = send(
        &ctx,
        "operator",
        "POST",
        "/api/v1/qr/passes",
        Some(visitor.clone()),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert!(v["code"].as_str().unwrap().starts_with("AJ1."), "{v}");
    assert_eq!(v["issued_by"], "operator");
    let id = v["id"].as_str().unwrap().to_owned();
    // The code verifies with the key's public half.
    let mut checker = anju_rules::qr::PassChecker::new();
    checker.add_key(anju_rules::qr::SigningKey::from_bytes(&[7; 32]).verifying_key());
    use anju_rules::qr::QrVerifier as _;
    assert!(
        matches!(
            checker.verify(v["code"].as_str().unwrap(), chrono::Utc::now()),
            anju_rules::qr::QrVerdict::Valid(_)
        ),
        "signed with the server's key"
    );
    let (st, headers, png) = raw(
        &ctx,
        Some("operator"),
        "GET",
        &format!("/api/v1/qr/passes/{id}/png"),
        None,
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "image/png");
    assert!(png.starts_with(b"\x89PNG"));
    for (bad, st) in [
        (
            json!({"unit": "FCY/1/101", "kind": "resident", "valid_to": in_a_day}),
            StatusCode::FORBIDDEN,
        ),
        (
            json!({"unit": "XYZ/1/101", "kind": "visitor", "valid_to": in_a_day}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"unit": "FCY/1/999", "kind": "visitor", "valid_to": in_a_day}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"unit": "FCY-1-101", "kind": "visitor", "valid_to": in_a_day}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"unit": "FCY/1/101", "kind": "guest", "valid_to": in_a_day}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"unit": "FCY/1/101", "kind": "visitor", "valid_to": "2020-01-01T00:00:00Z"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"unit": "FCY/1/101", "kind": "visitor", "valid_to": "2099-01-01T00:00:00Z"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"unit": "FCY/1/101", "kind": "visitor"}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (got, _, v) = send(
            &ctx,
            "operator",
            "POST",
            "/api/v1/qr/passes",
            Some(bad.clone()),
            None,
        )
        .await;
        assert_eq!(got, st, "{bad}: {v}");
    }
    assert_eq!(
        send(
            &ctx,
            "field",
            "POST",
            "/api/v1/qr/passes",
            Some(visitor),
            None
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let resident =
        json!({"unit": "FCY/1/101", "kind": "resident", "valid_to": in_a_day, "single_use": true});
    let (st, etag_r, v) = send(
        &ctx,
        "admin",
        "POST",
        "/api/v1/qr/passes",
        Some(resident),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let rid = v["id"].as_str().unwrap().to_owned();
    // Revocation.
    let rev = format!("/api/v1/qr/passes/{id}/revoke");
    assert_eq!(
        send(&ctx, "operator", "POST", &rev, None, None).await.0,
        StatusCode::PRECONDITION_REQUIRED
    );
    let other = format!("/api/v1/qr/passes/{rid}/revoke");
    assert_eq!(
        send(&ctx, "operator", "POST", &other, None, etag_r.as_deref())
            .await
            .0,
        StatusCode::FORBIDDEN,
        "not theirs"
    );
    let (st, _, v) = send(&ctx, "operator", "POST", &rev, None, etag.as_deref()).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["revoked"], true);
    assert_eq!(
        send(&ctx, "operator", "POST", &rev, None, etag.as_deref())
            .await
            .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        send(
            &ctx,
            "operator",
            "GET",
            "/api/v1/qr/passes/nope",
            None,
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let reg = ctx.store().load_registry().await.unwrap();
    assert!(
        reg.qr_revoked.contains(&id) && !reg.qr_revoked.contains(&rid),
        "{:?}",
        reg.qr_revoked
    );
    let audit = ctx.store().audit_entries(20).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "qr_pass_revoked" && e.object == format!("qr_pass:{id}")));
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "qr_pass_issued")
            .count(),
        2
    );
}

on_both_backends!(
    credentials,
    persons,
    watchlist,
    authorisation_matrix,
    ledger_dry_run,
    users,
    estate_rules,
    devices,
    qr_passes
);
