//! Sessions, login limits and the workflow table (issue 12): attempts are
//! counted before the password is verified, per user, per client address
//! and overall, with a cap on concurrent verifications; logout and
//! revocation end tokens (and live streams); a user's role and scope are
//! re-read on every request; who may take which workflow step is one table.
#![allow(clippy::unwrap_used)]

mod common;

use anju_api::hash_password;
use anju_core::*;
use anju_store::Backend;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use chrono::Utc;
use common::*;
use http_body_util::BodyExt;
use serde_json::json;
use std::time::Duration;
use tower::ServiceExt;

async fn login(ctx: &Ctx, user: &str, password: &str) -> (StatusCode, serde_json::Value) {
    call(
        ctx,
        None,
        "POST",
        "/api/v1/auth/login",
        Some(json!({"username": user, "password": password})),
    )
    .await
}

async fn with_token(ctx: &Ctx, token: &str, method: &str, uri: &str) -> StatusCode {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    ctx.app().oneshot(req).await.unwrap().status()
}

async fn login_limits(backend: Backend) {
    let ctx = setup(backend).await;
    // A user name longer than 64 characters is refused before anything.
    let (st, v) = login(&ctx, &"u".repeat(65), "x").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    // Sprayed user names from one address: each unknown name fails once,
    // and after 20 failures the address is refused whatever the name.
    let mut refused = 0;
    for i in 0..25 {
        let (st, v) = login(&ctx, &format!("nobody-{i}"), "guess").await;
        match st {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(v["error"]["code"], "too_many_attempts", "{v}");
                assert!(v["error"]["message"].as_str().unwrap().contains("address"));
                refused += 1;
            }
            other => panic!("{other}: {v}"),
        }
    }
    assert_eq!(refused, 5, "the 21st to 25th sprayed names");
    // Even the right password of a real user is refused from that address.
    let (st, _) = login(&ctx, "admin", "pw-demo").await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    ctx.t.cleanup().await;
}

async fn concurrent_wrong_passwords_are_limited(backend: Backend) {
    let ctx = setup(backend).await;
    // 40 wrong passwords at once for one user: attempts are counted before
    // verification, so at most a handful are verified and the rest get 429
    // (before this, all 40 were verified and answered 401).
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let app = ctx.app();
            tokio::spawn(async move {
                let req = Request::builder()
                    .method("POST")
                    .uri("/api/v1/auth/login")
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(
                        json!({"username": "operator", "password": "wrong"}).to_string(),
                    ))
                    .unwrap();
                app.oneshot(req).await.unwrap().status()
            })
        })
        .collect();
    let mut unauthorized = 0;
    let mut limited = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::UNAUTHORIZED => unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("{other}"),
        }
    }
    assert!(unauthorized <= 5, "{unauthorized} verified");
    assert_eq!(unauthorized + limited, 40);
    ctx.t.cleanup().await;
}

async fn logout_revoke_and_demotion(backend: Backend) {
    let ctx = setup(backend).await;
    let alerts = "/api/v1/alerts";
    // Logout ends the session.
    let (_, v) = login(&ctx, "operator", "pw-demo").await;
    let t = v["token"].as_str().unwrap().to_owned();
    assert_eq!(with_token(&ctx, &t, "GET", alerts).await, StatusCode::OK);
    assert_eq!(
        with_token(&ctx, &t, "POST", "/api/v1/auth/logout").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        with_token(&ctx, &t, "GET", alerts).await,
        StatusCode::UNAUTHORIZED
    );
    // An administrator revokes every session of a user; others may not.
    let (_, v) = login(&ctx, "supervisor", "pw-demo").await;
    let t2 = v["token"].as_str().unwrap().to_owned();
    let (st, _) = call(
        &ctx,
        Some("operator"),
        "POST",
        "/api/v1/auth/revoke",
        Some(json!({"username": "supervisor"})),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, v) = call(
        &ctx,
        Some("admin"),
        "POST",
        "/api/v1/auth/revoke",
        Some(json!({"username": "supervisor"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["revoked"], 2, "the setup's token and this one");
    assert_eq!(
        with_token(&ctx, &t2, "GET", alerts).await,
        StatusCode::UNAUTHORIZED
    );
    // A demoted user's token acts with the new role and scope at once.
    let op = ctx.tokens["operator"].clone();
    let a = ctx.alert_in;
    ctx.store()
        .put_user(
            &User {
                name: "operator".into(),
                role: Role::FieldStaff,
                all_estates: false,
                estates: vec![],
                grids: vec![("FCY".into(), "G9".into())],
            },
            &hash_password("pw-demo"),
        )
        .await
        .unwrap();
    assert_eq!(
        with_token(&ctx, &op, "GET", &format!("/api/v1/alerts/{a}")).await,
        StatusCode::NOT_FOUND,
        "the old scope is gone"
    );
    assert_eq!(
        with_token(&ctx, &op, "POST", &format!("/api/v1/alerts/{a}/ack")).await,
        StatusCode::NOT_FOUND
    );
    ctx.t.cleanup().await;
}

async fn live_stream_ends_on_revocation(backend: Backend) {
    let ctx = setup(backend).await;
    let (_, v) = login(&ctx, "operator", "pw-demo").await;
    let t = v["token"].as_str().unwrap().to_owned();
    let req = Request::builder()
        .uri("/api/v1/alerts/stream")
        .header(header::AUTHORIZATION, format!("Bearer {t}"))
        .body(Body::empty())
        .unwrap();
    let resp = ctx.app().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let revoked = call(
        &ctx,
        Some("admin"),
        "POST",
        "/api/v1/auth/revoke",
        Some(json!({"username": "operator"})),
    )
    .await;
    assert_eq!(revoked.0, StatusCode::OK);
    // The stream ends (a keep-alive comment may come first) within the
    // token re-check period.
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(frame) = body.frame().await {
            frame.unwrap();
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its revoked token");
    ctx.t.cleanup().await;
}

async fn workflow_table(backend: Backend) {
    let ctx = setup(backend).await;
    let a = ctx.alert_in;
    let u = |act: &str| format!("/api/v1/alerts/{a}/{act}");
    // Field staff may not resolve an alert themselves (false_alarm would
    // also start the quiet period).
    let (st, v) = call(
        &ctx,
        Some("field"),
        "POST",
        &u("resolve"),
        Some(json!({"outcome": "false_alarm"})),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    // The dispatch assignee must be a field-staff user of the building's
    // grid.
    let due = (Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    for (assignee, why) in [("nobody", "not a user"), ("operator", "not field staff")] {
        let (st, v) = call(
            &ctx,
            Some("operator"),
            "POST",
            &u("dispatch"),
            Some(json!({"assignee": assignee, "due": due})),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{assignee}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(why), "{v}");
    }
    ctx.store()
        .put_user(
            &User {
                name: "field-g2".into(),
                role: Role::FieldStaff,
                all_estates: false,
                estates: vec![],
                grids: vec![("FCY".into(), "G2".into())],
            },
            &hash_password("pw-demo"),
        )
        .await
        .unwrap();
    let (st, v) = call(
        &ctx,
        Some("operator"),
        "POST",
        &u("dispatch"),
        Some(json!({"assignee": "field-g2", "due": due})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "another grid's staff: {v}");
    let (st, v) = call(
        &ctx,
        Some("operator"),
        "POST",
        &u("dispatch"),
        Some(json!({"assignee": "field-a", "due": due})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let nid = v["notice"]["id"].as_i64().unwrap();
    // Only the assignee (or a supervisor) records the visit's result: not
    // another field-staff user of the same grid, not an operator.
    for who in ["field", "operator"] {
        let (st, v) = call(
            &ctx,
            Some(who),
            "POST",
            &format!("/api/v1/notices/{nid}/result"),
            Some(json!({"outcome": "false_alarm"})),
        )
        .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{who}: {v}");
    }
    let (st, v) = call(
        &ctx,
        Some("supervisor"),
        "POST",
        &format!("/api/v1/notices/{nid}/result"),
        Some(json!({"outcome": "confirmed", "text": "visited"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    ctx.t.cleanup().await;
}

/// One login over a real connection (so the server sees a peer address),
/// with an optional `X-Forwarded-For`; the status code.
async fn login_over_tcp(addr: std::net::SocketAddr, user: &str, forwarded: Option<&str>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = json!({"username": user, "password": "wrong"}).to_string();
    let mut req = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(f) = forwarded {
        req.push_str(&format!("X-Forwarded-For: {f}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf)
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

/// The client address that login limits count against comes from the
/// configured header only when the peer is a trusted proxy; from anyone
/// else the header is ignored (a client cannot pick a fresh address for
/// every guess).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_address_from_a_trusted_proxy_only() {
    let serve = |trusted: bool| async move {
        let t = anju_store::testutil::TestStore::new(Backend::Sqlite)
            .await
            .unwrap();
        let cfg = anju_api::ApiConfig {
            login_max_failures_per_addr: 3,
            client_ip_header: Some("X-Forwarded-For".into()),
            trusted_proxies: if trusted {
                vec!["127.0.0.1".parse().unwrap()]
            } else {
                vec![]
            },
            ..anju_api::ApiConfig::default()
        };
        let state = anju_api::AppState::new(t.store.clone(), cfg);
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(anju_api::serve(l, state, std::future::pending()));
        (t, addr)
    };
    // Behind a trusted proxy: each forwarded client has its own count, so a
    // fourth sprayed name from another client is still checked (401).
    let (t, addr) = serve(true).await;
    for i in 0..3 {
        assert_eq!(
            login_over_tcp(addr, &format!("u{i}"), Some("10.0.0.1")).await,
            401
        );
    }
    assert_eq!(login_over_tcp(addr, "u9", Some("10.0.0.1")).await, 429);
    assert_eq!(login_over_tcp(addr, "u9", Some("10.0.0.2")).await, 401);
    // The rightmost address (the one the proxy added) counts, not one the
    // client put in front.
    assert_eq!(
        login_over_tcp(addr, "u9", Some("1.2.3.4, 10.0.0.1")).await,
        429
    );
    t.cleanup().await;
    // No trusted proxy: the header is ignored, every guess counts against
    // the connection's address.
    let (t, addr) = serve(false).await;
    for i in 0..3 {
        let ip = format!("10.0.0.{i}");
        assert_eq!(login_over_tcp(addr, &format!("u{i}"), Some(&ip)).await, 401);
    }
    assert_eq!(login_over_tcp(addr, "u9", Some("10.9.9.9")).await, 429);
    t.cleanup().await;
}

/// Sessions live in the store (issue 16): a second replica (another
/// `AppState` on the same store) accepts a token the first issued; a
/// logout on one ends the session on the other (at once when it had not
/// read it, within the recheck period when it had); revoking a user ends
/// their sessions everywhere; only the token's hash is stored.
async fn sessions_shared_by_replicas(backend: Backend) {
    let ctx = setup(backend).await;
    let b = anju_api::AppState::new(ctx.store().clone(), anju_api::ApiConfig::default());
    let on_b = |token: String,
                method: &'static str,
                uri: &'static str,
                body: Option<serde_json::Value>| {
        let app = anju_api::router(b.clone());
        async move {
            let mut r = Request::builder()
                .method(method)
                .uri(uri)
                .header(header::AUTHORIZATION, format!("Bearer {token}"));
            let body = match body {
                Some(v) => {
                    r = r.header(header::CONTENT_TYPE, "application/json");
                    Body::from(v.to_string())
                }
                None => Body::empty(),
            };
            app.oneshot(r.body(body).unwrap()).await.unwrap().status()
        }
    };
    let (st, v) = login(&ctx, "operator", "pw-demo").await;
    assert_eq!(st, StatusCode::OK);
    let token = v["token"].as_str().unwrap().to_owned();
    assert_eq!(
        on_b(token.clone(), "GET", "/api/v1/estates", None).await,
        StatusCode::OK,
        "another replica accepts it"
    );
    // Logged out on A: B, which read the session a moment ago, follows
    // within the recheck period.
    assert_eq!(
        with_token(&ctx, &token, "POST", "/api/v1/auth/logout").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        with_token(&ctx, &token, "GET", "/api/v1/estates").await,
        StatusCode::UNAUTHORIZED
    );
    tokio::time::sleep(std::time::Duration::from_millis(5_500)).await;
    assert_eq!(
        on_b(token.clone(), "GET", "/api/v1/estates", None).await,
        StatusCode::UNAUTHORIZED
    );
    // A session A has read, revoked through B: A follows within the
    // recheck period.
    let (_, v) = login(&ctx, "operator", "pw-demo").await;
    let t2 = v["token"].as_str().unwrap().to_owned();
    assert_eq!(
        with_token(&ctx, &t2, "GET", "/api/v1/estates").await,
        StatusCode::OK
    );
    let st = on_b(
        ctx.tokens["admin"].clone(),
        "POST",
        "/api/v1/auth/revoke",
        Some(json!({"username": "operator"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(5_500)).await;
    assert_eq!(
        with_token(&ctx, &t2, "GET", "/api/v1/estates").await,
        StatusCode::UNAUTHORIZED
    );
}

on_both_backends!(
    login_limits,
    concurrent_wrong_passwords_are_limited,
    logout_revoke_and_demotion,
    live_stream_ends_on_revocation,
    workflow_table,
    sessions_shared_by_replicas
);
