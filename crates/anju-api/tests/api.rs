//! Workflow, SSE, reports, bad requests, login limits, health and metrics.
#![allow(clippy::unwrap_used)]

mod common;

use anju_core::*;
use anju_store::{Backend, Store};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use chrono::{TimeZone, Utc};
use common::*;
use http_body_util::BodyExt;
use serde_json::json;
use std::time::Duration;
use tower::ServiceExt;

async fn workflow(backend: Backend) {
    let ctx = setup(backend).await;
    let a = ctx.alert_in;
    let u = |act: &str| format!("/api/v1/alerts/{a}/{act}");
    // Field staff may not ack or dispatch.
    let (st, v) = call(&ctx, Some("field"), "POST", &u("ack"), None).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"]["code"], "forbidden");
    let (st, _) = call(&ctx, Some("field"), "POST", &u("dispatch"), None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // Dismiss requires a reason.
    let (st, v) = call(
        &ctx,
        Some("operator"),
        "POST",
        &u("dismiss"),
        Some(json!({})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("reason"));
    // Resolve requires a known outcome.
    let (st, _) = call(
        &ctx,
        Some("operator"),
        "POST",
        &u("resolve"),
        Some(json!({"outcome": "maybe"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // ack → dispatch (notice for the building's grid with a due date).
    let (st, v) = call(
        &ctx,
        Some("operator"),
        "POST",
        &u("ack"),
        Some(json!({"reason": "seen"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "acknowledged");
    let (st, v) = call(&ctx, Some("operator"), "POST", &u("ack"), None).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "invalid_transition");
    let due = (Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let (st, v) = call(
        &ctx,
        Some("operator"),
        "POST",
        &u("dispatch"),
        Some(json!({"assignee": "field", "due": due, "reason": "visit"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "dispatched");
    assert_eq!(v["notice"]["grid"], "G1");
    assert_eq!(v["notice"]["assignee"], "field");
    let nid = v["notice"]["id"].as_i64().unwrap();
    // Field staff see it and record the visit, which resolves the alert.
    let (_, v) = call(
        &ctx,
        Some("field"),
        "GET",
        "/api/v1/notices?status=open",
        None,
    )
    .await;
    let list = v["notices"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{v}");
    assert_eq!(list[0]["id"], nid);
    let (st, _) = call(
        &ctx,
        Some("field"),
        "POST",
        &format!("/api/v1/notices/{nid}/result"),
        Some(json!({"text": "x"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, v) = call(
        &ctx,
        Some("field"),
        "POST",
        &format!("/api/v1/notices/{nid}/result"),
        Some(json!({"outcome": "confirmed", "text": "租客承认转租"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["notice"]["status"], "done");
    assert_eq!(v["alert"]["status"], "resolved");
    assert_eq!(v["alert"]["outcome"], "confirmed");
    let (st, _) = call(
        &ctx,
        Some("field"),
        "POST",
        &format!("/api/v1/notices/{nid}/result"),
        Some(json!({"outcome": "confirmed"})),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
    // Every transition recorded with who and why.
    let (_, v) = call(
        &ctx,
        Some("supervisor"),
        "GET",
        &format!("/api/v1/alerts/{a}"),
        None,
    )
    .await;
    let tr = v["transitions"].as_array().unwrap();
    let steps: Vec<(&str, &str, &str)> = tr
        .iter()
        .map(|t| {
            (
                t["from"].as_str().unwrap(),
                t["to"].as_str().unwrap(),
                t["by"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            ("open", "acknowledged", "operator"),
            ("acknowledged", "dispatched", "operator"),
            ("dispatched", "resolved", "field"),
        ]
    );
    assert_eq!(tr[2]["reason"], "租客承认转租");
    // A resolved alert cannot be dismissed.
    let (st, _) = call(
        &ctx,
        Some("operator"),
        "POST",
        &u("dismiss"),
        Some(json!({"reason": "x"})),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
    // Dismiss with a reason works on an open one (XYZ is foreign; use b2).
    let b2 = ctx.alert_b2;
    let (st, v) = call(
        &ctx,
        Some("operator"),
        "POST",
        &format!("/api/v1/alerts/{b2}/dismiss"),
        Some(json!({"reason": "duplicate"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "dismissed");
    assert_eq!(v["reason"], "duplicate");
    // Filters.
    let (_, v) = call(
        &ctx,
        Some("operator"),
        "GET",
        "/api/v1/alerts?status=resolved",
        None,
    )
    .await;
    assert_eq!(v["alerts"].as_array().unwrap().len(), 1);
    let (_, v) = call(
        &ctx,
        Some("operator"),
        "GET",
        "/api/v1/alerts?code=tailgating",
        None,
    )
    .await;
    assert_eq!(v["alerts"].as_array().unwrap().len(), 0);
    ctx.t.cleanup().await;
}

/// One POST through a clone of the router, on its own task.
fn spawn_post(
    app: axum::Router,
    token: String,
    uri: String,
    body: serde_json::Value,
    go: std::sync::Arc<tokio::sync::Barrier>,
) -> tokio::task::JoinHandle<(StatusCode, serde_json::Value)> {
    tokio::spawn(async move {
        let req = Request::builder()
            .method("POST")
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        go.wait().await;
        let resp = app.oneshot(req).await.unwrap();
        let st = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (st, serde_json::from_slice(&bytes).unwrap_or_default())
    })
}

/// Two dispatches of the same open alert at once: one wins (200, one
/// notice, one transition, one audit record), the other gets 409 and
/// leaves nothing behind. Usually both read `open` and the compare-and-set
/// decides (`conflict`); if one finishes before the other reads, the step
/// itself is refused (`invalid_transition`). Several rounds, so that the
/// race is met.
async fn concurrent_dispatch_has_one_winner(backend: Backend) {
    let ctx = setup(backend).await;
    let mut ids = vec![ctx.alert_in];
    for i in 0..9 {
        let a = ctx
            .store()
            .insert_alert(&alert(
                "FCY",
                "1",
                AlertCode::Tailgating,
                Subject::Unit(format!("FCY/1/{i}")),
            ))
            .await
            .unwrap();
        ids.push(a.id);
    }
    let due = (Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let mut lost_cas = 0;
    for &a in &ids {
        let go = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let tasks: Vec<_> = ["field-a", "field-b"]
            .into_iter()
            .map(|assignee| {
                spawn_post(
                    ctx.app(),
                    ctx.tokens["operator"].clone(),
                    format!("/api/v1/alerts/{a}/dispatch"),
                    json!({"assignee": assignee, "due": due}),
                    go.clone(),
                )
            })
            .collect();
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        answers.sort_by_key(|(st, _)| st.as_u16());
        let [(ok, won), (st, lost)] = &answers[..] else {
            unreachable!()
        };
        assert_eq!(*ok, StatusCode::OK, "{won}");
        assert_eq!(won["status"], "dispatched");
        assert_eq!(*st, StatusCode::CONFLICT, "{lost}");
        let code = lost["error"]["code"].as_str().unwrap();
        assert!(code == "conflict" || code == "invalid_transition", "{lost}");
        if code == "conflict" {
            lost_cas += 1;
            let msg = lost["error"]["message"].as_str().unwrap();
            assert_eq!(msg, format!("alert {a} changed meanwhile (now dispatched)"));
        }
        // Exactly one notice, the winner's.
        let notices: Vec<_> = ctx
            .store()
            .list_notices(
                &anju_store::Scope::all(),
                false,
                None,
                anju_store::Page::default(),
            )
            .await
            .unwrap()
            .into_iter()
            .filter(|n| n.alert_id == a)
            .collect();
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert_eq!(notices[0].id, won["notice"]["id"].as_i64().unwrap());
        assert_eq!(
            notices[0].assignee.as_deref(),
            won["notice"]["assignee"].as_str()
        );
        let tr = ctx.store().transitions(a).await.unwrap();
        assert_eq!(tr.len(), 1, "{tr:?}");
        assert_eq!(
            (tr[0].from, tr[0].to),
            (AlertStatus::Open, AlertStatus::Dispatched)
        );
    }
    let audits = ctx.store().audit_entries(1000).await.unwrap();
    for &a in &ids {
        let n = audits
            .iter()
            .filter(|e| e.action == "alert_dispatched" && e.object == format!("alert:{a}"))
            .count();
        assert_eq!(n, 1, "alert {a}: one audit record, the winner's");
    }
    assert!(lost_cas > 0, "no race met the compare-and-set");
    eprintln!(
        "{backend:?}: {lost_cas} of {} races decided by the compare-and-set",
        ids.len()
    );
    ctx.t.cleanup().await;
}

async fn pagination(backend: Backend) {
    let ctx = setup(backend).await;
    for i in 0..5 {
        ctx.store()
            .insert_alert(&alert(
                "FCY",
                "1",
                AlertCode::DeviceOffline,
                Subject::Device(format!("d{i}").into()),
            ))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut uri = "/api/v1/alerts?limit=2&estate=FCY".to_owned();
    loop {
        let (st, v) = call(&ctx, Some("operator"), "GET", &uri, None).await;
        assert_eq!(st, StatusCode::OK);
        for a in v["alerts"].as_array().unwrap() {
            seen.push(a["id"].as_i64().unwrap());
        }
        match v["next_before"].as_i64() {
            Some(b) => uri = format!("/api/v1/alerts?limit=2&estate=FCY&before={b}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "{seen:?}");
    let mut sorted = seen.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first, no repeats");
    ctx.t.cleanup().await;
}

/// The alert list is reused while current, revalidates with its ETag, and
/// changes as soon as any writer (here a second store on the same database,
/// as the analyzer or an edge forwarder in another process would be) commits
/// an alert change and the API's store has seen it (at once on SQLite, by
/// notification on PostgreSQL); each scope gets its own page.
async fn page_reuse_and_etag(backend: Backend) {
    let ctx = setup(backend).await;
    let uri = "/api/v1/alerts?estate=FCY&limit=50";
    let (st, h, body) = raw(&ctx, Some("operator"), "GET", uri, None, &[]).await;
    assert_eq!(st, StatusCode::OK);
    let tag = h["etag"].to_str().unwrap().to_owned();
    assert_eq!(h["cache-control"], "private, no-cache");
    let (st, h2, body2) = raw(&ctx, Some("operator"), "GET", uri, None, &[]).await;
    assert_eq!((st, &body2), (StatusCode::OK, &body));
    assert_eq!(h2["etag"].to_str().unwrap(), tag);
    let (st, _, empty) = raw(
        &ctx,
        Some("operator"),
        "GET",
        uri,
        None,
        &[("if-none-match", &tag)],
    )
    .await;
    assert_eq!(st, StatusCode::NOT_MODIFIED);
    assert!(empty.is_empty());
    // Field staff (grid G1) at the same URL: their own, smaller page.
    let (_, hf, field) = raw(&ctx, Some("field"), "GET", uri, None, &[]).await;
    assert_ne!(hf["etag"].to_str().unwrap(), tag);
    let n = |b: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(b).unwrap()["alerts"]
            .as_array()
            .unwrap()
            .len()
    };
    assert!(n(&field) < n(&body), "field staff see fewer alerts");

    // Another process's commit reaches the API's store at once on SQLite,
    // with the change notification on PostgreSQL (milliseconds).
    async fn seen(store: &Store, old: i64) {
        let t0 = std::time::Instant::now();
        while store.alerts_version().await.unwrap() == old {
            assert!(t0.elapsed().as_secs() < 20, "change never seen");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    let other = Store::connect(&ctx.t.url).await.unwrap();
    let before = ctx.t.store.alerts_version().await.unwrap();
    let a = other
        .insert_alert(&alert(
            "FCY",
            "1",
            AlertCode::DoorForced,
            Subject::Device("gr-x".into()),
        ))
        .await
        .unwrap();
    seen(&ctx.t.store, before).await;
    let (st, h3, body3) = raw(
        &ctx,
        Some("operator"),
        "GET",
        uri,
        None,
        &[("if-none-match", &tag)],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "a new alert invalidates the page");
    assert_ne!(h3["etag"].to_str().unwrap(), tag);
    let v: serde_json::Value = serde_json::from_slice(&body3).unwrap();
    assert_eq!(v["alerts"][0]["id"].as_i64(), Some(a.id));
    assert_eq!(n(&body3), n(&body) + 1);
    // A status change by the other writer shows too.
    let mut a2 = a.clone();
    a2.status = AlertStatus::Acknowledged;
    let before = ctx.t.store.alerts_version().await.unwrap();
    other.update_alert(&a2).await.unwrap();
    seen(&ctx.t.store, before).await;
    let (_, _, body4) = raw(&ctx, Some("operator"), "GET", uri, None, &[]).await;
    let v: serde_json::Value = serde_json::from_slice(&body4).unwrap();
    assert_eq!(v["alerts"][0]["status"], "acknowledged");
    other.close().await;
    let (_, m) = call(&ctx, None, "GET", "/metrics", None).await;
    let m = m.as_str().unwrap_or_default().to_owned();
    assert!(m.contains("anju_alert_page_cache_hits_total 1"), "{m}");
    assert!(m.contains("anju_alert_page_not_modified_total 1"), "{m}");
    ctx.t.cleanup().await;
}

/// Reads SSE frames until an `alert` event; returns `(id, data)`.
async fn next_alert(body: &mut Body) -> (String, serde_json::Value) {
    let mut buf = String::new();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("SSE event within 10 s")
            .expect("stream open")
            .unwrap();
        if let Ok(d) = frame.into_data() {
            buf.push_str(std::str::from_utf8(&d).unwrap());
        }
        while let Some(end) = buf.find("\n\n") {
            let ev: String = buf[..end].to_owned();
            buf.drain(..end + 2);
            if ev.lines().any(|l| l == "event: alert") {
                let id = ev
                    .lines()
                    .find_map(|l| l.strip_prefix("id: "))
                    .unwrap()
                    .to_owned();
                let data = ev.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
                return (id, serde_json::from_str(data).unwrap());
            }
        }
    }
}

async fn open_stream(ctx: &Ctx, role: &str, last: Option<&str>) -> Body {
    let mut b = Request::builder().uri("/api/v1/alerts/stream").header(
        header::AUTHORIZATION,
        format!("Bearer {}", ctx.tokens[role]),
    );
    if let Some(l) = last {
        b = b.header("Last-Event-ID", l);
    }
    let resp = ctx
        .app()
        .oneshot(b.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    resp.into_body()
}

async fn sse(backend: Backend) {
    let ctx = setup(backend).await;
    let mut op = open_stream(&ctx, "operator", None).await;
    let mut field = open_stream(&ctx, "field", None).await;
    let mk = |e: &str, b: &str, id: i64| {
        let mut a = alert(
            e,
            b,
            AlertCode::Tailgating,
            Subject::Stranger(format!("s{id}").into()),
        );
        a.id = id;
        a
    };
    // Foreign estate, then foreign grid, then in scope of both.
    ctx.state.publish(mk("XYZ", "1", 901));
    ctx.state.publish(mk("FCY", "2", 902));
    ctx.state.publish(mk("FCY", "1", 903));
    let (id, a) = next_alert(&mut op).await;
    assert_eq!(a["id"], 902, "operator skips XYZ");
    assert_eq!(id, "2");
    let (id3, a) = next_alert(&mut op).await;
    assert_eq!((id3.as_str(), a["id"].as_i64()), ("3", Some(903)));
    let (_, a) = next_alert(&mut field).await;
    assert_eq!(a["id"], 903, "field staff see only their grid");
    assert_eq!(a["title_en"], "Tailgating after a granted entry");
    // Workflow actions publish too.
    let (st, _) = call(
        &ctx,
        Some("operator"),
        "POST",
        &format!("/api/v1/alerts/{}/ack", ctx.alert_in),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (_, a) = next_alert(&mut op).await;
    assert_eq!(a["id"], ctx.alert_in);
    assert_eq!(a["status"], "acknowledged");
    // Resume: after id 2 the ring replays 3 and 4.
    let mut again = open_stream(&ctx, "operator", Some("2")).await;
    let (id, a) = next_alert(&mut again).await;
    assert_eq!((id.as_str(), a["id"].as_i64()), ("3", Some(903)));
    let (id, _) = next_alert(&mut again).await;
    assert_eq!(id, "4");
    // Bad Last-Event-ID is a 400.
    let (st, _, _) = raw(
        &ctx,
        Some("operator"),
        "GET",
        "/api/v1/alerts/stream",
        None,
        &[("Last-Event-ID", "x")],
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // Shutdown ends open streams.
    assert!(ctx.state.metrics.sse_clients() >= 3);
    ctx.state.close_streams();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(f) = op.frame().await {
            if f.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(end.is_ok(), "stream ends on shutdown");
    ctx.t.cleanup().await;
}

fn ev_access(
    id: &str,
    device: &str,
    t: Timestamp,
    kind: CredentialKind,
    granted: bool,
    dir: Direction,
) -> Event {
    Event::Access {
        estate: Some("FCY".into()),
        device: device.into(),
        body: AccessEvent {
            event_id: id.into(),
            ts: t,
            credential: CredentialRef {
                kind,
                id: "C-FCY-P1".into(),
            },
            result: if granted {
                AccessResult::Granted
            } else {
                AccessResult::Denied
            },
            direction: dir,
            reason: None,
        },
    }
}

fn sighting(id: &str, t: Timestamp, person: Option<&str>, stranger: Option<&str>) -> Event {
    Event::Sighting {
        estate: Some("FCY".into()),
        body: Sighting {
            event_id: Some(id.into()),
            ts: t,
            camera: "cam-n1".into(),
            person: person.map(Into::into),
            stranger: stranger.map(Into::into),
            score: None,
            direction: Some(Direction::In),
            snapshot: None,
        },
    }
}

fn status(t: Timestamp, online: bool) -> Event {
    Event::Status {
        estate: Some("FCY".into()),
        device: "gr-n1".into(),
        body: StatusEvent { ts: t, online },
    }
}

async fn report(backend: Backend) {
    let ctx = setup(backend).await;
    let tz = Tz::Asia__Shanghai;
    let l = |d: u32, h: u32, m: u32| {
        tz.with_ymd_and_hms(2026, 3, d, h, m, 0)
            .unwrap()
            .with_timezone(&Utc)
    };
    use CredentialKind::*;
    use Direction::*;
    let evs = vec![
        ev_access("e0", "gr-n1", l(1, 0, 10), Card, true, In), // 00:10 local: in
        ev_access("e1", "gr-n1", l(1, 8, 1), Card, true, In),
        ev_access("e2", "gr-n1", l(1, 8, 2), Card, true, In),
        ev_access("e3", "gr-n1", l(1, 8, 3), Qr, true, In),
        ev_access("e4", "gr-n1", l(1, 8, 30), Card, false, In),
        ev_access("e5", "gr-b1", l(1, 18, 0), Face, true, Out),
        ev_access("e6", "gr-b1", l(1, 18, 5), Face, true, Out),
        ev_access("x1", "gr-n1", l(2, 0, 0), Card, true, In), // next day: out of window
        sighting("s1", l(1, 8, 1), Some("FCY-P1"), None),
        sighting("s2", l(1, 9, 1), Some("FCY-P1"), None),
        sighting("s3", l(1, 9, 2), None, Some("stranger-7")),
        sighting("s4", l(1, 9, 3), Some("VISITOR-9"), None),
        status(l(1, 0, 0) - chrono::Duration::hours(4), true),
        status(l(1, 12, 0), false),
        status(l(1, 18, 0), true),
    ];
    let mut evs = evs;
    // One event before the window (23:30 local the day before).
    let prev = tz
        .with_ymd_and_hms(2026, 2, 28, 23, 30, 0)
        .unwrap()
        .with_timezone(&Utc);
    evs.push(ev_access("p1", "gr-n1", prev, Card, true, In));
    // A door event and a QR scan in the window, one of each before it.
    for (id, t) in [("d1", l(1, 7, 0)), ("d2", prev)] {
        evs.push(Event::Door {
            estate: Some("FCY".into()),
            device: "gr-n1".into(),
            body: DoorEvent {
                event_id: id.into(),
                ts: t,
                state: DoorState::Forced,
            },
        });
        evs.push(Event::QrScan {
            estate: Some("FCY".into()),
            device: "gr-n1".into(),
            body: QrScanEvent {
                event_id: format!("q{id}").into(),
                ts: t,
                code: "ANJU1.x".into(),
            },
        });
    }
    ctx.store().insert_events(&evs).await.unwrap();
    // Alerts: one opened and resolved that day.
    let mut a = alert(
        "FCY",
        "1",
        AlertCode::CredentialMisuse,
        Subject::Credential("C-FCY-P1".into()),
    );
    a.opened_at = l(1, 8, 3);
    a.updated_at = a.opened_at;
    let a = ctx.store().insert_alert(&a).await.unwrap();
    ctx.store()
        .record_transition(&Transition {
            alert_id: a.id,
            from: AlertStatus::Open,
            to: AlertStatus::Resolved,
            by: "operator".into(),
            at: l(1, 10, 0),
            reason: None,
        })
        .await
        .unwrap();

    let (st, v) = call(
        &ctx,
        Some("supervisor"),
        "GET",
        "/api/v1/reports/access?estate=FCY&date=2026-03-01",
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["timezone"], "Asia/Shanghai");
    assert_eq!(v["totals"]["access"], 7);
    assert_eq!(v["totals"]["granted"], 6);
    assert_eq!(v["totals"]["denied"], 1);
    assert_eq!(
        v["events"],
        7 + 4 + 2 + 2,
        "accesses, sightings, statuses, door and QR events in window"
    );
    let h8 = &v["by_hour"][8];
    assert_eq!(
        (
            h8["label"].as_str(),
            h8["granted"].as_i64(),
            h8["denied"].as_i64(),
            h8["in"].as_i64()
        ),
        (Some("08:00"), Some(3), Some(1), Some(4))
    );
    assert_eq!(v["by_hour"][0]["granted"], 1);
    assert_eq!(v["by_hour"][18]["out"], 2);
    assert_eq!(v["by_hour"].as_array().unwrap().len(), 24);
    let ents = v["by_entrance"].as_array().unwrap();
    let b1 = ents.iter().find(|e| e["entrance"] == "b1-door").unwrap();
    assert_eq!(
        (b1["out"].as_i64(), b1["granted"].as_i64()),
        (Some(2), Some(2))
    );
    let creds = v["credentials"].as_array().unwrap();
    let card = creds.iter().find(|c| c["kind"] == "card").unwrap();
    assert_eq!(
        (card["granted"].as_i64(), card["denied"].as_i64()),
        (Some(3), Some(1))
    );
    let s = &v["sightings"];
    assert_eq!(
        (s["resident_sightings"].as_i64(), s["residents"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        (s["visitor_sightings"].as_i64(), s["unknown"].as_i64()),
        (Some(1), Some(1))
    );
    // The fixture's two FCY sublet alerts were opened that day too.
    let al = v["alerts"].as_array().unwrap();
    assert_eq!(al.len(), 2, "{al:?}");
    let cm = al
        .iter()
        .find(|a| a["code"] == "credential_misuse")
        .unwrap();
    assert_eq!(
        (cm["opened"].as_i64(), cm["resolved"].as_i64()),
        (Some(1), Some(1))
    );
    let sub = al.iter().find(|a| a["code"] == "sublet_suspected").unwrap();
    assert_eq!(
        (sub["opened"].as_i64(), sub["resolved"].as_i64()),
        (Some(2), Some(0))
    );
    let dev = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device"] == "gr-n1")
        .unwrap()
        .clone();
    assert!(
        (dev["uptime"].as_f64().unwrap() - 0.75).abs() < 1e-9,
        "{dev}"
    );
    assert_eq!(dev["outages"], 1);

    // CSV by Accept header, with BOM.
    let (st, h, body) = raw(
        &ctx,
        Some("supervisor"),
        "GET",
        "/api/v1/reports/access?estate=FCY&date=2026-03-01",
        None,
        &[("Accept", "text/csv")],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(h[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert_eq!(&body[..3], b"\xEF\xBB\xBF");
    let text = String::from_utf8(body[3..].to_vec()).unwrap();
    assert!(text.starts_with("section,key,hour,direction,metric,value\r\n"));
    assert!(
        text.contains("traffic,north-gate,08:00,in,granted,3\r\n"),
        "{text}"
    );
    assert!(text.contains("traffic,north-gate,08:00,in,denied,1\r\n"));
    assert!(text.contains("sightings,resident,,,distinct,1\r\n"));
    assert!(text.contains("devices,gr-n1,,,uptime,0.7500\r\n"));
    assert!(text.contains("summary,FCY,,,granted,6\r\n"));
    // Printable page with an inline SVG chart.
    let (st, h, body) = raw(
        &ctx,
        Some("operator"),
        "GET",
        "/api/v1/reports/access?estate=FCY&date=2026-03-01&format=html",
        None,
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(h[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains("<svg") && page.contains("north-gate"));
    // Field staff may not read reports.
    let (st, _) = call(
        &ctx,
        Some("field"),
        "GET",
        "/api/v1/reports/access?estate=FCY&date=2026-03-01",
        None,
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // Devices: last seen from events.
    let (_, v) = call(&ctx, Some("operator"), "GET", "/api/v1/devices", None).await;
    let d = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "gr-n1")
        .unwrap()
        .clone();
    assert_eq!(d["last_seen"], json!(l(2, 0, 0)));
    assert_eq!(d["online"], true);
    ctx.t.cleanup().await;
}

async fn bad_requests(backend: Backend) {
    let ctx = setup(backend).await;
    for (m, u, body) in [
        ("GET", "/api/v1/alerts?status=bogus", None),
        ("GET", "/api/v1/alerts?code=bogus", None),
        ("GET", "/api/v1/alerts?since=yesterday", None),
        ("GET", "/api/v1/alerts?limit=0", None),
        ("GET", "/api/v1/alerts?limit=abc", None),
        ("GET", "/api/v1/alerts?before=x", None),
        ("GET", "/api/v1/alerts/abc", None),
        ("POST", "/api/v1/alerts/abc/ack", None),
        ("GET", "/api/v1/reports/access?estate=FCY", None),
        ("GET", "/api/v1/reports/access?date=2026-03-01", None),
        (
            "GET",
            "/api/v1/reports/access?estate=FCY&date=2026-13-01",
            None,
        ),
        (
            "GET",
            "/api/v1/reports/access?estate=FCY&date=2026-03-01&format=pdf",
            None,
        ),
        ("GET", "/api/v1/notices?status=x", None),
        ("GET", "/api/v1/persons?limit=-1", None),
    ] {
        let (st, v) = call(&ctx, Some("operator"), m, u, body).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{m} {u}: {v}");
        assert_eq!(v["error"]["code"], "bad_request", "{u}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    }
    // Malformed JSON body.
    let req = Request::builder()
        .method("POST")
        .uri(format!("/api/v1/alerts/{}/dismiss", ctx.alert_in))
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", ctx.tokens["operator"]),
        )
        .body(Body::from("{not json"))
        .unwrap();
    let resp = ctx.app().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // Unknown action is a 404; unknown route a JSON 404.
    let (st, _) = call(
        &ctx,
        Some("operator"),
        "POST",
        &format!("/api/v1/alerts/{}/explode", ctx.alert_in),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, v) = call(&ctx, Some("operator"), "GET", "/api/v1/nothing", None).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    // Login: missing fields 400, wrong password 401, then rate limited 429.
    let (st, _) = call(&ctx, None, "POST", "/api/v1/auth/login", Some(json!({}))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    for _ in 0..5 {
        let (st, v) = call(
            &ctx,
            None,
            "POST",
            "/api/v1/auth/login",
            Some(json!({"username": "operator", "password": "no"})),
        )
        .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    }
    let (st, h, _) = raw(
        &ctx,
        None,
        "POST",
        "/api/v1/auth/login",
        Some(json!({"username": "operator", "password": "pw-demo"})),
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    assert!(h.contains_key(header::RETRY_AFTER));
    // Another user is not affected.
    let (st, _) = call(
        &ctx,
        None,
        "POST",
        "/api/v1/auth/login",
        Some(json!({"username": "admin", "password": "pw-demo"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    // Faces: 501 without an enroller (admin), 403 for others.
    let (st, v) = call(
        &ctx,
        Some("admin"),
        "POST",
        "/api/v1/persons/FCY-P1/faces",
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_IMPLEMENTED, "{v}");
    let (st, _) = call(
        &ctx,
        Some("operator"),
        "POST",
        "/api/v1/persons/FCY-P1/faces",
        None,
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    ctx.t.cleanup().await;
}

async fn health_metrics_openapi(backend: Backend) {
    let ctx = setup(backend).await;
    let (st, _) = call(&ctx, None, "GET", "/healthz", None).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = call(&ctx, None, "GET", "/readyz", None).await;
    assert_eq!(st, StatusCode::OK);
    let _ = call(&ctx, Some("operator"), "GET", "/api/v1/alerts", None).await;
    let (st, headers, body) = raw(&ctx, None, "GET", "/metrics", None, &[]).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let m = String::from_utf8(body).unwrap();
    assert!(
        m.contains(
            "anju_http_requests_total{method=\"GET\",route=\"/api/v1/alerts\",status=\"200\"}"
        ),
        "{m}"
    );
    assert!(m.contains("anju_sse_clients 0"));
    // A made-up method is counted as "other", never as a label of its own.
    let _ = raw(&ctx, None, "FROBNICATE", "/healthz", None, &[]).await;
    let (_, _, body) = raw(&ctx, None, "GET", "/metrics", None, &[]).await;
    let m = String::from_utf8(body).unwrap();
    assert!(!m.contains("FROBNICATE"), "{m}");
    assert!(m.contains("method=\"other\""), "{m}");
    assert!(m.contains("anju_logins_total 4"));
    let (st, v) = call(&ctx, None, "GET", "/api/v1/openapi.json", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["openapi"], "3.0.3");
    for p in [
        "/alerts",
        "/alerts/{id}/dismiss",
        "/alerts/stream",
        "/reports/access",
        "/persons/{id}/faces",
        "/notices/{id}/result",
    ] {
        assert!(v["paths"][p].is_object(), "{p}");
    }
    // A supervised task that keeps failing makes /readyz 503 naming it,
    // and /metrics counts its restarts; once it runs again, ready again.
    let fail = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let cancel = tokio_util::sync::CancellationToken::new();
    let health = ctx.state.tasks.register("ingest:TEST");
    let (f, c) = (fail.clone(), cancel.clone());
    let sup = tokio::spawn(anju_backoff::supervise(
        health.clone(),
        cancel.clone(),
        move || {
            let (f, c) = (f.clone(), c.clone());
            async move {
                if f.load(std::sync::atomic::Ordering::Relaxed) {
                    return Err("the broker said no".to_owned());
                }
                c.cancelled().await;
                Ok(())
            }
        },
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while health.restarts() < 3 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (st, v) = call(&ctx, None, "GET", "/readyz", None).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    let msg = v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        msg.contains("ingest:TEST") && msg.contains("the broker said no"),
        "{v}"
    );
    let (_, _, body) = raw(&ctx, None, "GET", "/metrics", None, &[]).await;
    let m = String::from_utf8(body).unwrap();
    assert!(m.contains("anju_task_up{task=\"ingest:TEST\"} 0"), "{m}");
    let restarts = m
        .lines()
        .find_map(|l| l.strip_prefix("anju_task_restarts_total{task=\"ingest:TEST\"} "))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_default();
    assert!(restarts >= 3, "{m}");
    fail.store(false, std::sync::atomic::Ordering::Relaxed);
    while !health.is_up() {
        assert!(std::time::Instant::now() < deadline + std::time::Duration::from_secs(30));
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (st, v) = call(&ctx, None, "GET", "/readyz", None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    cancel.cancel();
    sup.await.unwrap();
    // The store going away makes /readyz 503.
    ctx.store().close().await;
    let (st, v) = call(&ctx, None, "GET", "/readyz", None).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    ctx.t.cleanup().await;
}

/// Pages of alerts (served fresh or from the page cache) and alerts
/// delivered on a live stream are reads of personal data: counted per user
/// and written to the audit (once a minute; flushed here directly).
async fn bulk_reads_are_audited(backend: Backend) {
    let ctx = setup(backend).await;
    for _ in 0..2 {
        let (st, v) = call(&ctx, Some("operator"), "GET", "/api/v1/alerts", None).await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }
    {
        let req = Request::builder()
            .uri("/api/v1/alerts/stream")
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", ctx.tokens["supervisor"]),
            )
            .body(Body::empty())
            .unwrap();
        let resp = ctx.app().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let mut a = common::alert(
            "FCY",
            "1",
            AlertCode::DoorForced,
            Subject::Device("gr-b1".into()),
        );
        a.id = 99;
        ctx.state.publish(a);
        let mut body = resp.into_body();
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .unwrap();
        assert!(frame.is_some());
        // The stream ends here (dropped).
    }
    ctx.state.reads.flush(ctx.store()).await;
    let audit = ctx.store().audit_entries(100).await.unwrap();
    let page = audit
        .iter()
        .find(|e| e.user == "operator" && e.action == "read_alert_page")
        .expect("alert pages audited");
    assert!(
        page.detail.as_deref().unwrap().starts_with("2 requests"),
        "{page:?}"
    );
    let stream = audit
        .iter()
        .find(|e| e.user == "supervisor" && e.action == "read_alert_stream")
        .expect("stream audited");
    assert!(
        stream.detail.as_deref().unwrap().contains("1 alerts"),
        "{stream:?}"
    );
    ctx.t.cleanup().await;
}

/// Evidence images: a snapshot cited by an alert is served (image/jpeg,
/// audited with the alert) to whoever may see that alert, 404 to others and
/// once retention deleted it; the enrolled photo likewise by person.
async fn evidence_images(backend: Backend) {
    let ctx = setup(backend).await;
    let key = "FCY.cam-n1.1000.7";
    let jpeg = vec![0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9];
    ctx.store()
        .insert_snapshots(&[anju_store::Snapshot {
            key: key.into(),
            estate: "FCY".into(),
            camera: "cam-n1".into(),
            taken_at: Utc::now(),
            jpeg: jpeg.clone(),
        }])
        .await
        .unwrap();
    let url = format!("/api/v1/snapshots/{key}");
    // Not cited by any alert yet: nobody sees it.
    let (st, _, _) = raw(&ctx, Some("admin"), "GET", &url, None, &[]).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let mut a = common::alert(
        "FCY",
        "1",
        AlertCode::CredentialMisuse,
        Subject::Credential("C9".into()),
    );
    let mut e = Evidence::new(Utc::now(), "sighting");
    e.snapshot = Some(url.clone());
    a.evidence.push(e);
    let a = ctx.store().insert_alert(&a).await.unwrap();
    for role in ["operator", "field"] {
        let (st, h, body) = raw(&ctx, Some(role), "GET", &url, None, &[]).await;
        assert_eq!(st, StatusCode::OK, "{role}");
        assert_eq!(h[header::CONTENT_TYPE], "image/jpeg");
        assert_eq!(h[header::CACHE_CONTROL], "private, no-store");
        assert_eq!(body, jpeg);
    }
    let audit = ctx.store().audit_entries(100).await.unwrap();
    assert!(audit.iter().any(|e| e.user == "field"
        && e.action == "read_snapshot"
        && e.object == format!("snapshot:{key}")
        && e.detail.as_deref() == Some(&format!("alert {}", a.id))));
    // Retention deleted it: 404.
    ctx.store()
        .prune_snapshot_images(Utc::now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    let (st, _, _) = raw(&ctx, Some("operator"), "GET", &url, None, &[]).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _, _) = raw(
        &ctx,
        Some("operator"),
        "GET",
        "/api/v1/snapshots/..%2Fetc",
        None,
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // The enrolled photo.
    let photo = "/api/v1/persons/FCY-P1/photo";
    let (st, _, _) = raw(&ctx, Some("operator"), "GET", photo, None, &[]).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "no photo yet");
    ctx.store()
        .put_person_photo("FCY-P1", "image/png", b"\x89PNG..", Utc::now())
        .await
        .unwrap();
    let (st, h, body) = raw(&ctx, Some("operator"), "GET", photo, None, &[]).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "image/png");
    assert_eq!(body, b"\x89PNG..");
    let audit = ctx.store().audit_entries(100).await.unwrap();
    assert!(audit.iter().any(|e| e.user == "operator"
        && e.action == "read_person_photo"
        && e.object == "person:FCY-P1"));
    ctx.t.cleanup().await;
}

/// `/notices`, `/units`, `/devices` and `/credentials` are paged:
/// `limit`/`offset`, `next_offset` while a page comes back full.
async fn list_paging(backend: Backend) {
    let ctx = setup(backend).await;
    for (path, key) in [
        ("/api/v1/devices", "devices"),
        ("/api/v1/units", "units"),
        ("/api/v1/credentials", "credentials"),
        ("/api/v1/notices", "notices"),
    ] {
        let (st, all) = call(&ctx, Some("admin"), "GET", path, None).await;
        assert_eq!(st, StatusCode::OK, "{path}: {all}");
        let total = all[key].as_array().unwrap().len();
        let mut seen = Vec::new();
        let mut offset = 0;
        loop {
            let (st, v) = call(
                &ctx,
                Some("admin"),
                "GET",
                &format!("{path}?limit=1&offset={offset}"),
                None,
            )
            .await;
            assert_eq!(st, StatusCode::OK, "{path}: {v}");
            let rows = v[key].as_array().unwrap();
            assert!(rows.len() <= 1, "{path}: {v}");
            seen.extend(rows.iter().cloned());
            match v["next_offset"].as_i64() {
                Some(n) => offset = n,
                None => break,
            }
            assert!(seen.len() <= total + 1, "{path} pages forever");
        }
        assert_eq!(seen.len(), total, "{path}");
        assert_eq!(serde_json::Value::Array(seen), all[key], "{path}");
        for bad in ["limit=0", "limit=1001", "offset=-1", "limit=x"] {
            let (st, v) = call(&ctx, Some("admin"), "GET", &format!("{path}?{bad}"), None).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{path}?{bad}: {v}");
        }
    }
    ctx.t.cleanup().await;
}

/// One real listener: serve() with graceful shutdown while an SSE client is
/// connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_and_shut_down() {
    let ctx = setup(Backend::Sqlite).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(anju_api::serve(listener, ctx.state.clone(), async {
        rx.await.ok();
    }));
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /api/v1/alerts/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        ctx.tokens["operator"]
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).await.unwrap();
    assert!(std::str::from_utf8(&buf[..n])
        .unwrap()
        .starts_with("HTTP/1.1 200"));
    tx.send(()).unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), server).await;
    assert!(r.is_ok(), "server stops despite an open SSE stream");
    ctx.t.cleanup().await;
}

/// Pages further back are cut from the replica's index of recent alerts
/// (here its newest 1,000) when it holds the whole page, else built by the
/// store: either way byte for byte the store's own answer, for cursors near
/// the top, at the index's edge and past it, each limit, scope (another
/// estate's alerts mixed in) and filter — and still after alerts change
/// (resolved, opened) behind the index's back, which it reads at the next
/// request (migration 0017's numbering).
async fn pages_back_match_the_store(backend: Backend) {
    use anju_store::{AlertFilter, Scope};
    let ctx = common::setup_with(
        backend,
        anju_api::ApiConfig {
            alert_index_max: 1_000,
            ..Default::default()
        },
    )
    .await;
    let n = 1_030; // past the index's 1,000
    let mut ids = Vec::new();
    for i in 0..n {
        let (b, code) = if i % 3 == 0 {
            ("2", AlertCode::Tailgating)
        } else {
            ("1", AlertCode::DeviceOffline)
        };
        // Every fifth alert is another estate's, outside the users' scope.
        let estate = if i % 5 == 4 { "XYZ" } else { "FCY" };
        let mut a = alert(estate, b, code, Subject::Device(format!("w{i}").into()));
        let mut e = Evidence::new(a.opened_at, "swipe");
        e.note = Some(format!("引号 \"{i}\" \\ back\nline \u{1F600}"));
        a.evidence.push(e);
        ids.push(ctx.store().insert_alert(&a).await.unwrap());
    }
    let fcy = || Scope {
        all_estates: false,
        estates: vec!["FCY".into()],
        grids: vec![],
    };
    let g1 = Scope {
        grids: vec![("FCY".into(), "G1".into())],
        ..fcy()
    };
    let newest = ids.last().unwrap().id;
    let mut cursors: Vec<i64> = (newest - 40..=newest + 1).step_by(3).collect();
    cursors.extend([
        newest - 660,
        newest - 990,
        newest - 995,
        newest - 1000,
        newest - 1010,
        2,
        1,
    ]);
    let later = Utc.with_ymd_and_hms(2026, 3, 1, 3, 0, 0).unwrap();
    let sweep = |filters: Vec<(&'static str, AlertFilter)>| {
        let (ctx, cursors, g1) = (&ctx, &cursors, g1.clone());
        async move {
            for (user, scope) in [("operator", fcy()), ("field", g1)] {
                for (q, f0) in &filters {
                    for &before in cursors {
                        for limit in [1, 7, 50] {
                            let uri = format!("/api/v1/alerts?limit={limit}&before={before}{q}");
                            let (st, _, body) = raw(ctx, Some(user), "GET", &uri, None, &[]).await;
                            assert_eq!(st, StatusCode::OK, "{uri}");
                            let f = AlertFilter {
                                before_id: Some(before),
                                limit,
                                ..f0.clone()
                            };
                            let page = ctx.store().list_alerts_json(&f, &scope).await.unwrap();
                            let mut want = format!("{{\"alerts\":{}", page.json);
                            if i64::try_from(page.count).unwrap() == limit {
                                if let Some(b) = page.last_id {
                                    want.push_str(&format!(",\"next_before\":{b}"));
                                }
                            }
                            want.push('}');
                            assert_eq!(String::from_utf8_lossy(&body), want, "{user} {uri}");
                        }
                    }
                }
            }
        }
    };
    let fcy_only = || AlertFilter {
        estate: Some("FCY".into()),
        ..Default::default()
    };
    sweep(vec![
        ("&estate=FCY", fcy_only()),
        ("", AlertFilter::default()),
        (
            "&estate=FCY&code=tailgating",
            AlertFilter {
                code: Some(AlertCode::Tailgating),
                ..fcy_only()
            },
        ),
    ])
    .await;
    let index_pages = |m: &str| -> u64 {
        m.lines()
            .find_map(|l| l.strip_prefix("anju_alert_page_index_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let (_, m) = call(&ctx, None, "GET", "/metrics", None).await;
    let first = index_pages(m.as_str().unwrap_or_default());
    assert!(first > 0, "no page came from the index");
    // Behind the index's back: every 7th alert of the newest 200 resolved
    // an hour later, three opened.
    for (k, a) in ids.iter().rev().take(200).step_by(7).enumerate() {
        let mut a = a.clone();
        a.status = AlertStatus::Resolved;
        // Half of them exactly at `since` below.
        a.updated_at = later + chrono::Duration::seconds(i64::try_from(k % 2).unwrap());
        a.evidence.push(Evidence::new(later, "resolved"));
        ctx.store().update_alert(&a).await.unwrap();
    }
    for i in 0..3 {
        ctx.store()
            .insert_alert(&alert(
                "FCY",
                "2",
                AlertCode::Tailgating,
                Subject::Device(format!("late{i}").into()),
            ))
            .await
            .unwrap();
    }
    sweep(vec![
        ("", AlertFilter::default()),
        (
            "&status=open",
            AlertFilter {
                status: Some(AlertStatus::Open),
                ..Default::default()
            },
        ),
        (
            "&estate=FCY&status=resolved&code=tailgating",
            AlertFilter {
                code: Some(AlertCode::Tailgating),
                status: Some(AlertStatus::Resolved),
                ..fcy_only()
            },
        ),
        (
            // At the resolved alerts' time: updated at or after.
            "&since=2026-03-01T03:00:00Z",
            AlertFilter {
                since: Some(later),
                ..Default::default()
            },
        ),
    ])
    .await;
    let (_, m) = call(&ctx, None, "GET", "/metrics", None).await;
    assert!(index_pages(m.as_str().unwrap_or_default()) > first);
    ctx.t.cleanup().await;
}

on_both_backends!(
    workflow,
    concurrent_dispatch_has_one_winner,
    pagination,
    page_reuse_and_etag,
    sse,
    report,
    bad_requests,
    health_metrics_openapi,
    list_paging,
    bulk_reads_are_audited,
    evidence_images,
    pages_back_match_the_store
);
