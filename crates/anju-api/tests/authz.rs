//! Authorisation matrix: every object endpoint × every role × an object of a
//! foreign estate (XYZ) or, for field staff, a foreign grid (FCY/2) → never
//! readable or writable (404, absent from lists). Runs on SQLite and
//! PostgreSQL.
#![allow(clippy::unwrap_used)]

mod common;

use anju_store::Backend;
use axum::http::StatusCode;
use common::*;
use serde_json::json;

fn ids(v: &serde_json::Value, key: &str, field: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .iter()
        .map(|x| match &x[field] {
            serde_json::Value::String(s) => s.clone(),
            o => o.to_string(),
        })
        .collect()
}

async fn matrix(backend: Backend) {
    let ctx = setup(backend).await;
    for role in ROLES {
        let field = role == "field";
        // Foreign objects for this role.
        let mut foreign_alerts = vec![ctx.alert_xyz];
        let mut foreign_notices = vec![ctx.notice_xyz];
        let mut foreign_persons = vec!["XYZ-P1", "XYZ-P2"];
        if field {
            foreign_alerts.push(ctx.alert_b2);
            foreign_notices.push(ctx.notice_b2);
            foreign_persons.push("FCY-P2");
        }
        let r = Some(role);

        // The in-scope object is visible (the matrix is not vacuous).
        let (st, _) = call(
            &ctx,
            r,
            "GET",
            &format!("/api/v1/alerts/{}", ctx.alert_in),
            None,
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{role} own alert");
        let (st, _) = call(&ctx, r, "GET", "/api/v1/persons/FCY-P1", None).await;
        assert_eq!(st, StatusCode::OK, "{role} own person");

        for a in &foreign_alerts {
            let (st, v) = call(&ctx, r, "GET", &format!("/api/v1/alerts/{a}"), None).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{role} GET alert {a}: {v}");
            assert_eq!(v["error"]["code"], "not_found");
            for (action, body) in [
                ("ack", json!({})),
                ("dispatch", json!({"assignee": "x"})),
                ("resolve", json!({"outcome": "confirmed"})),
                ("dismiss", json!({"reason": "test"})),
            ] {
                let (st, v) = call(
                    &ctx,
                    r,
                    "POST",
                    &format!("/api/v1/alerts/{a}/{action}"),
                    Some(body),
                )
                .await;
                assert_eq!(st, StatusCode::NOT_FOUND, "{role} {action} alert {a}: {v}");
            }
        }
        for n in &foreign_notices {
            let (st, v) = call(
                &ctx,
                r,
                "POST",
                &format!("/api/v1/notices/{n}/result"),
                Some(json!({"outcome": "confirmed", "text": "x"})),
            )
            .await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{role} notice {n}: {v}");
        }
        for p in &foreign_persons {
            let (st, _) = call(&ctx, r, "GET", &format!("/api/v1/persons/{p}"), None).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{role} person {p}");
            let (st, _) = call(&ctx, r, "POST", &format!("/api/v1/persons/{p}/faces"), None).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{role} faces {p}");
        }
        let (st, _) = call(
            &ctx,
            r,
            "GET",
            "/api/v1/reports/access?estate=XYZ&date=2026-03-01",
            None,
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{role} foreign report");

        // Lists never contain foreign objects.
        let (_, v) = call(&ctx, r, "GET", "/api/v1/alerts", None).await;
        let got = ids(&v, "alerts", "id");
        for a in &foreign_alerts {
            assert!(!got.contains(&a.to_string()), "{role} sees alert {a}");
        }
        assert!(got.contains(&ctx.alert_in.to_string()));
        let (_, v) = call(&ctx, r, "GET", "/api/v1/alerts?estate=XYZ", None).await;
        assert!(ids(&v, "alerts", "id").is_empty(), "{role} XYZ alerts");
        let (_, v) = call(&ctx, r, "GET", "/api/v1/notices", None).await;
        let got = ids(&v, "notices", "id");
        for n in &foreign_notices {
            assert!(!got.contains(&n.to_string()), "{role} sees notice {n}");
        }
        let (_, v) = call(&ctx, r, "GET", "/api/v1/persons", None).await;
        let got = ids(&v, "persons", "id");
        assert!(got.contains(&"FCY-P1".to_owned()), "{role}: {got:?}");
        for p in &foreign_persons {
            assert!(!got.contains(&(*p).to_owned()), "{role} sees person {p}");
        }
        let (_, v) = call(&ctx, r, "GET", "/api/v1/credentials", None).await;
        let got = ids(&v, "credentials", "person");
        assert!(got.contains(&"FCY-P1".to_owned()), "{role}: {got:?}");
        for p in &foreign_persons {
            assert!(
                !got.contains(&(*p).to_owned()),
                "{role} sees credential of {p}"
            );
        }
        let (_, v) = call(&ctx, r, "GET", "/api/v1/units", None).await;
        let units = v["units"].as_array().unwrap();
        assert!(!units.is_empty());
        assert!(
            units.iter().all(|u| u["key"]["estate"] == "FCY"),
            "{role} units"
        );
        if field {
            assert!(
                units.iter().all(|u| u["key"]["building"] == "1"),
                "field units"
            );
        }
        let (_, v) = call(&ctx, r, "GET", "/api/v1/estates", None).await;
        assert_eq!(ids(&v, "estates", "code"), vec!["FCY".to_owned()], "{role}");
        let (_, v) = call(&ctx, r, "GET", "/api/v1/devices", None).await;
        let devs = v["devices"].as_array().unwrap();
        assert!(!devs.is_empty());
        assert!(devs.iter().all(|d| d["estate"] == "FCY"), "{role} devices");

        // Masking: only admins see full ID numbers and phones.
        let (_, v) = call(&ctx, r, "GET", "/api/v1/persons/FCY-P1", None).await;
        let idn = v["records"][0]["id_number"].as_str().unwrap();
        if role == "admin" {
            assert_eq!(idn, "11010519491231002X");
        } else {
            assert_eq!(idn, "1101**************");
            assert_eq!(v["records"][0]["phone"], "138****5678");
            for c in v["credentials"].as_array().unwrap() {
                let id = c["id"].as_str().unwrap();
                assert!(id.starts_with('*'), "{role} sees credential {id}");
            }
        }
    }
    // Every person read was audited with who and what.
    let audit = ctx.store().audit_entries(1000).await.unwrap();
    for role in ROLES {
        assert!(
            audit.iter().any(|e| e.user == role
                && e.action == "read_person"
                && e.object == "person:FCY-P1"),
            "audit of {role}"
        );
    }
    ctx.t.cleanup().await;
}

/// Unauthenticated calls are 401 JSON errors on every object endpoint.
async fn anonymous(backend: Backend) {
    let ctx = setup(backend).await;
    for (m, u) in [
        ("GET", "/api/v1/alerts"),
        ("GET", "/api/v1/alerts/1"),
        ("POST", "/api/v1/alerts/1/ack"),
        ("GET", "/api/v1/alerts/stream"),
        ("GET", "/api/v1/notices"),
        ("POST", "/api/v1/notices/1/result"),
        ("GET", "/api/v1/reports/access?estate=FCY&date=2026-03-01"),
        ("GET", "/api/v1/devices"),
        ("GET", "/api/v1/estates"),
        ("GET", "/api/v1/units"),
        ("GET", "/api/v1/persons"),
        ("GET", "/api/v1/persons/FCY-P1"),
        ("POST", "/api/v1/persons/FCY-P1/faces"),
        ("GET", "/api/v1/credentials"),
    ] {
        let (st, v) = call(&ctx, None, m, u, None).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{m} {u}: {v}");
        assert_eq!(v["error"]["code"], "unauthorized");
    }
    ctx.t.cleanup().await;
}

on_both_backends!(matrix, anonymous);
