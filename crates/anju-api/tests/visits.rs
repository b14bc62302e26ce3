//! The units view and the field staff's visit photos (issue 13), on both
//! backends: scope, policy, validation, audit.
#![allow(clippy::unwrap_used)]

mod common;

use anju_core::*;
use anju_store::Backend;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use chrono::{Duration, Utc};
use common::{call, raw, setup, Ctx};
use http_body_util::BodyExt;
use tower::ServiceExt;

const JPEG: &[u8] = &[
    0xff, 0xd8, 0xff, 0xe0, 0, 16, b'J', b'F', b'I', b'F', 0xff, 0xd9,
];

async fn upload(
    ctx: &Ctx,
    role: &str,
    notice: i64,
    body: &[u8],
) -> (StatusCode, serde_json::Value) {
    let req = Request::builder()
        .method("POST")
        .uri(format!("/api/v1/notices/{notice}/photos"))
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", ctx.tokens[role]),
        )
        .header(header::CONTENT_TYPE, "image/jpeg")
        .body(Body::from(body.to_vec()))
        .unwrap();
    let resp = ctx.app().oneshot(req).await.unwrap();
    let st = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (st, serde_json::from_slice(&bytes).unwrap_or_default())
}

/// Photos of a visit: added while the notice is open by whoever may record
/// its result, listed with the notice and the alert, served to whoever may
/// see the notice (audited), refused when not an image, beyond six, on a
/// closed notice, or outside the caller's scope.
async fn visit_photos(backend: Backend) {
    let ctx = setup(backend).await;
    let n = ctx.notice_b2; // FCY building 2, grid G2: not the field user's.
    let (st, _) = upload(&ctx, "field", n, JPEG).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "outside the field user's grids");
    let (st, _) = upload(&ctx, "operator", n, JPEG).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "operators do not record visits");
    let (st, v) = upload(&ctx, "supervisor", n, b"<html>not a photo").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = upload(&ctx, "supervisor", n, JPEG).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let url = v["url"].as_str().unwrap().to_owned();
    assert_eq!(url, format!("/api/v1/notices/{n}/photos/{}", v["id"]));
    // Listed with the notice and on the alert.
    let (_, list) = call(&ctx, Some("supervisor"), "GET", "/api/v1/notices", None).await;
    let row = list["notices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == n)
        .unwrap()
        .clone();
    assert_eq!(row["photos"], serde_json::json!([url.clone()]));
    let (_, detail) = call(
        &ctx,
        Some("operator"),
        "GET",
        &format!("/api/v1/alerts/{}", ctx.alert_b2),
        None,
    )
    .await;
    assert_eq!(
        detail["notices"][0]["photos"],
        serde_json::json!([url.clone()])
    );
    // Served and audited; 404 outside the scope.
    let (st, h, body) = raw(&ctx, Some("operator"), "GET", &url, None, &[]).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "image/jpeg");
    assert_eq!(h[header::CACHE_CONTROL], "private, no-store");
    assert_eq!(body, JPEG);
    let (st, _, _) = raw(&ctx, Some("field"), "GET", &url, None, &[]).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let other = format!("/api/v1/notices/{}/photos/{}", ctx.notice_xyz, v["id"]);
    let (st, _, _) = raw(&ctx, Some("admin"), "GET", &other, None, &[]).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "another estate's notice");
    let audit = ctx.store().audit_entries(100).await.unwrap();
    assert!(audit.iter().any(|e| e.user == "supervisor"
        && e.action == "visit_photo_add"
        && e.object == format!("notice:{n}")));
    assert!(audit.iter().any(|e| e.user == "operator"
        && e.action == "read_visit_photo"
        && e.object == format!("notice:{n}")));
    // At most six.
    for _ in 1..6 {
        assert_eq!(
            upload(&ctx, "supervisor", n, JPEG).await.0,
            StatusCode::CREATED
        );
    }
    assert_eq!(
        upload(&ctx, "supervisor", n, JPEG).await.0,
        StatusCode::CONFLICT
    );
    // A closed notice takes no more.
    let (st, v) = call(
        &ctx,
        Some("supervisor"),
        "POST",
        &format!("/api/v1/notices/{n}/result"),
        Some(serde_json::json!({"outcome": "confirmed", "text": "visited"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        upload(&ctx, "supervisor", n, JPEG).await.0,
        StatusCode::CONFLICT
    );
    ctx.t.cleanup().await;
}

fn passage(card: &str, ts: Timestamp, credited: bool, id: &str) -> Event {
    Event::Passage {
        estate: Some("FCY".into()),
        device: "gr-n1".into(),
        body: Passage {
            event_id: format!("{id}:passage").into(),
            ts,
            access_event_id: id.into(),
            credential: CredentialRef {
                kind: CredentialKind::Card,
                id: card.into(),
            },
            holder_credited: credited,
            persons: vec![],
            strangers: if credited {
                vec![]
            } else {
                vec!["s-FCY-9".into()]
            },
        },
    }
}

/// The units view: each unit in scope with its occupants' last credited
/// passage and last sighting; a passage others made on the card is not the
/// holder's activity.
async fn unit_activity(backend: Backend) {
    let ctx = setup(backend).await;
    let now = Utc::now();
    let (d3, d1) = (now - Duration::days(3), now - Duration::days(1));
    let events = vec![
        passage("C-FCY-P1", d3, true, "a1"),
        // Someone else on the same card later: not the holder's activity.
        passage("C-FCY-P1", d1, false, "a2"),
        Event::Sighting {
            estate: Some("FCY".into()),
            body: Sighting {
                event_id: Some("s1".into()),
                ts: d1,
                camera: "cam-n1".into(),
                person: Some("FCY-P2".into()),
                stranger: None,
                score: Some(0.9),
                direction: None,
                snapshot: None,
            },
        },
    ];
    ctx.store().insert_events(&events).await.unwrap();
    let (st, v) = call(
        &ctx,
        Some("supervisor"),
        "GET",
        "/api/v1/units/activity",
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let units = v["units"].as_array().unwrap();
    let keys: Vec<String> = units
        .iter()
        .map(|u| {
            format!(
                "{}/{}/{}",
                u["estate"].as_str().unwrap(),
                u["building"].as_str().unwrap(),
                u["unit"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(keys, ["FCY/1/101", "FCY/2/101"], "only the caller's estate");
    let ms = |v: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    let u1 = &units[0];
    assert_eq!(u1["occupants"][0]["person"], "FCY-P1");
    assert_eq!(
        ms(&u1["occupants"][0]["last_access"]),
        d3.timestamp_millis()
    );
    assert!(u1["occupants"][0]["last_sighting"].is_null());
    assert_eq!(ms(&u1["last_activity"]), d3.timestamp_millis());
    let u2 = &units[1];
    assert_eq!(
        ms(&u2["occupants"][0]["last_sighting"]),
        d1.timestamp_millis()
    );
    assert!(u2["occupants"][0]["last_access"].is_null());
    // Field staff: their grid's building only; paging; bad filters.
    let (_, v) = call(&ctx, Some("field"), "GET", "/api/v1/units/activity", None).await;
    assert_eq!(v["units"].as_array().unwrap().len(), 1);
    assert_eq!(v["units"][0]["building"], "1");
    let (_, v) = call(
        &ctx,
        Some("admin"),
        "GET",
        "/api/v1/units/activity?limit=1",
        None,
    )
    .await;
    assert_eq!(v["units"].as_array().unwrap().len(), 1);
    assert_eq!(v["next_offset"], 1);
    let (st, _) = call(
        &ctx,
        Some("admin"),
        "GET",
        "/api/v1/units/activity?estate=a%20b",
        None,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = call(&ctx, None, "GET", "/api/v1/units/activity", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    ctx.t.cleanup().await;
}

/// Consent to face recognition: only administrators record it; withdrawn,
/// the person's templates, enrolled photo and recognised sightings'
/// snapshots are gone (the snapshot answers 404), the decision shows on the
/// person and in the audit; enrolment is refused until consent is given
/// again; another estate's person is not found.
async fn face_consent(backend: Backend) {
    let ctx = setup(backend).await;
    let store = ctx.store();
    store
        .add_face_template("FCY-P1", "dlib_resnet128+dlib_shape5", &[0.5; 128], "test")
        .await
        .unwrap();
    store
        .put_person_photo("FCY-P1", "image/jpeg", JPEG, Utc::now())
        .await
        .unwrap();
    let key = "FCY.cam-n1.2000.1";
    store
        .insert_snapshots(&[anju_store::Snapshot {
            key: key.into(),
            estate: "FCY".into(),
            camera: "cam-n1".into(),
            taken_at: Utc::now(),
            jpeg: JPEG.to_vec(),
        }])
        .await
        .unwrap();
    let url = anju_store::snapshot_url(key);
    let sighting = Event::Sighting {
        estate: Some("FCY".into()),
        body: Sighting {
            event_id: Some("s-consent".into()),
            ts: Utc::now(),
            camera: "cam-n1".into(),
            person: Some("FCY-P1".into()),
            stranger: None,
            score: Some(0.97),
            direction: None,
            snapshot: Some(url.clone()),
        },
    };
    store.insert_events(&[sighting]).await.unwrap();
    let mut a = common::alert(
        "FCY",
        "1",
        AlertCode::WatchlistHit,
        Subject::Person("FCY-P1".into()),
    );
    let mut e = Evidence::new(Utc::now(), "sighting");
    e.snapshot = Some(url.clone());
    a.evidence.push(e);
    store.insert_alert(&a).await.unwrap();
    assert_eq!(
        raw(&ctx, Some("operator"), "GET", &url, None, &[]).await.0,
        StatusCode::OK
    );

    let path = "/api/v1/persons/FCY-P1/consent";
    let body = serde_json::json!({"face": false, "note": "撤回人脸授权（书面）"});
    let (st, _) = call(&ctx, Some("supervisor"), "POST", path, Some(body.clone())).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = call(
        &ctx,
        Some("admin"),
        "POST",
        "/api/v1/persons/XYZ-P1/consent",
        Some(body.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "another estate's person");
    let (st, _) = call(
        &ctx,
        Some("admin"),
        "POST",
        path,
        Some(serde_json::json!({})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let long = serde_json::json!({"face": false, "note": "x".repeat(501)});
    let (st, _) = call(&ctx, Some("admin"), "POST", path, Some(long)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "a note over 500 characters");
    let (st, v) = call(&ctx, Some("admin"), "POST", path, Some(body)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["templates_deleted"], 1);
    assert_eq!(v["photo_deleted"], true);
    assert_eq!(v["snapshots_deleted"], 1);
    assert!(store
        .face_templates("dlib_resnet128+dlib_shape5")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        raw(&ctx, Some("operator"), "GET", &url, None, &[]).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        raw(
            &ctx,
            Some("operator"),
            "GET",
            "/api/v1/persons/FCY-P1/photo",
            None,
            &[]
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let (_, p) = call(&ctx, Some("admin"), "GET", "/api/v1/persons/FCY-P1", None).await;
    assert_eq!(p["face_consent"]["consent"], false, "{p}");
    assert_eq!(p["face_consent"]["by"], "admin");
    let audit = store.audit_entries(100).await.unwrap();
    assert!(audit.iter().any(|e| e.user == "admin"
        && e.action == "face_consent_withdrawn"
        && e.object == "person:FCY-P1"
        && e.detail
            .as_deref()
            .is_some_and(|d| d.contains("1 templates"))));
    // Enrolment is refused (before any face engine is asked) until consent is given again.
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/persons/FCY-P1/faces")
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", ctx.tokens["admin"]),
        )
        .header(header::CONTENT_TYPE, "image/jpeg")
        .body(Body::from(JPEG.to_vec()))
        .unwrap();
    let resp = ctx.app().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let (st, v) = call(
        &ctx,
        Some("admin"),
        "POST",
        path,
        Some(serde_json::json!({"face": true})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["templates_deleted"], 0);
    ctx.t.cleanup().await;
}

on_both_backends!(visit_photos, unit_activity, face_consent);
